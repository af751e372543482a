//! Register constants of the Cirrus Logic CLGD 5446 as QEMU emulates it (and as the Cirrus VGA
//! BIOS, Linux's `cirrus` DRM driver and Windows' inbox driver program it).
//!
//! Sources, cited per constant as `[tag path]`: **Q** = qemu/qemu v7.2 `hw/display/cirrus_vga.c`
//! (and `cirrus_vga_rop.h`, `cirrus_vga_rop2.h`); **L** = torvalds/linux
//! `drivers/gpu/drm/tiny/cirrus.c` and `include/video/cirrus.h`; **SB** = coreboot/seabios
//! `vgasrc/clext.c`. Register names follow Finn Thøgersen's VGADOC, which QEMU's comments cite.

// ---------------------------------------------------------------- PCI identity
/// Cirrus Logic [Q cirrus_vga_class_init: PCI_VENDOR_ID_CIRRUS].
pub const VENDOR_ID: u16 = 0x1013;
/// CLGD 5446 (QEMU's only PCI model) [Q CIRRUS_ID_CLGD5446 = 0x2e << 2].
pub const DEVICE_ID: u16 = 0x00b8;
/// Subsystem IDs QEMU gives every PCI device; Linux's `cirrus` DRM driver binds only to this
/// subsystem (or 5853:0001, Xen's old platform id), so it must be exactly this [L cirrus.c
/// pciidlist].
pub const SUBSYSTEM_VENDOR_ID: u16 = 0x1af4;
pub const SUBSYSTEM_ID: u16 = 0x1100;
/// PCI class: display controller, VGA compatible [Q PCI_CLASS_DISPLAY_VGA].
pub const CLASS_VGA: u32 = 0x03_00_00;

/// BAR0 is a 32 MiB prefetchable window: linear VRAM at 0 and the system-to-screen BitBLT
/// aperture at +16 MiB (4 MiB of it decoded) [Q pci_cirrus_vga_realize "cirrus-pci-bar0"].
pub const BAR0_SIZE: u64 = 32 << 20;
/// Where the BitBLT FIFO aperture starts in BAR0 [Q pci_cirrus_vga_realize, 0x1000000].
pub const BAR0_BITBLT_OFFSET: u64 = 16 << 20;
/// How much of it decodes [Q cirrus_init_common "cirrus-bitblt-mmio", 0x400000].
pub const BAR0_BITBLT_SIZE: u64 = 4 << 20;
/// BAR1: 4 KiB of MMIO, 0x000..0x0ff = ports 0x3c0..0x3ff (`offset + 0x3c0`), 0x100.. = the
/// BitBLT registers [Q cirrus_mmio_read/write, CIRRUS_PNPMMIO_SIZE; L cirrus.c SEQ_INDEX = 4].
pub const BAR1_SIZE: u64 = 0x1000;
pub const BAR1_BLT_OFFSET: u64 = 0x100;
pub const BAR1_PORT_BASE: u16 = 0x3c0;

/// The CLGD 5446 addresses 4 MiB of video memory: blit, bank and linear addresses wrap at that
/// size whatever `vgamem_mb` says (QEMU keeps the larger sizes for migration compatibility)
/// [Q cirrus_init_common real_vram_size; L CIRRUS_VRAM_SIZE].
pub const ADDRESSABLE_VRAM: usize = 4 << 20;
/// `vgamem_mb` values QEMU accepts; libxl passes 8 by default [Q pci_cirrus_vga_realize].
pub const VGAMEM_MB_ALLOWED: [u32; 3] = [4, 8, 16];
pub const VGAMEM_MB_DEFAULT: u32 = 4;
/// The VGA BIOS QEMU loads into the ROM BAR (SeaBIOS's Cirrus build, Debian package seabios)
/// [Q VGABIOS_CIRRUS_FILENAME].
pub const ROM_FILE: &str = "vgabios-cirrus.bin";

// ---------------------------------------------------------------- sequencer (0x3c4/0x3c5)
/// SR06 unlocks the extensions: writing 0x12 (after masking with 0x17) reads back 0x12,
/// anything else reads back 0x0f [Q cirrus_vga_write_sr case 0x06; SB clext.c cirrus_check].
pub const SR_UNLOCK: usize = 0x06;
pub const SR_UNLOCK_MASK: u8 = 0x17;
pub const SR_UNLOCK_KEY: u8 = 0x12;
pub const SR_UNLOCK_LOCKED: u8 = 0x0f;
/// SR07 extended sequencer mode: bit 0 = SVGA (extended) mode, bits 1..3 = pixel depth
/// [Q CIRRUS_SR7_*; L cirrus_format_set writes 0x11/0x17/0x15/0x19].
pub const SR_EXT_MODE: usize = 0x07;
pub const SR7_SVGA: u8 = 0x01;
pub const SR7_BPP_MASK: u8 = 0x0e;
pub const SR7_BPP_8: u8 = 0x00;
pub const SR7_BPP_16_DOUBLEVCLK: u8 = 0x02;
pub const SR7_BPP_24: u8 = 0x04;
pub const SR7_BPP_16: u8 = 0x06;
pub const SR7_BPP_32: u8 = 0x08;
/// SR0F DRAM control; reset value 0x98 on the 5446 (4 MiB, 64-bit bus) [Q cirrus_reset].
pub const SR_DRAM_CONTROL: usize = 0x0f;
/// Graphics cursor X (SR10) and Y (SR11): the register number's top 3 bits are the low 3 bits
/// of the coordinate (SR10/30/50/../F0) [Q cirrus_vga_write_sr case 0x10..].
pub const SR_CURSOR_X: usize = 0x10;
pub const SR_CURSOR_Y: usize = 0x11;
/// SR12 cursor attributes [Q CIRRUS_CURSOR_*].
pub const SR_CURSOR_ATTR: usize = 0x12;
pub const CURSOR_SHOW: u8 = 0x01;
/// DAC writes/reads reach the 16-entry hidden (cursor) palette [Q cirrus_vga_write_palette].
pub const CURSOR_HIDDEN_PEL: u8 = 0x02;
/// 64x64 cursor (else 32x32) [Q CIRRUS_CURSOR_LARGE].
pub const CURSOR_LARGE: u8 = 0x04;
/// SR13 cursor pattern address (in 256-byte units within the last 16 KiB of VRAM).
pub const SR_CURSOR_PATTERN: usize = 0x13;
/// SR15 memory size readback: 4 = 4 MiB [Q cirrus_reset].
pub const SR_MEMSIZE: usize = 0x15;
/// SR17 configuration readback and extended control: bit 2 enables memory-mapped BitBLT
/// registers, bit 6 puts them at the top of the linear window instead of 0xb8000; bits 3..5
/// are the read-only bus type (0x20 = PCI) [Q CIRRUS_MMIO_*, cirrus_vga_write_sr case 0x17].
pub const SR_CONFIG: usize = 0x17;
pub const SR17_MMIO_ENABLE: u8 = 0x04;
pub const SR17_MMIO_USE_PCIADDR: u8 = 0x40;
pub const SR17_READONLY: u8 = 0x38;
pub const SR17_BUSTYPE_PCI: u8 = 0x20;
/// SR1F BIOS write enable and MCLK select, reset 0x2d [Q cirrus_reset].
pub const SR_MCLK: usize = 0x1f;
/// Highest sequencer index with storage; indexes QEMU does not decode read 0xff.
pub const SR_COUNT: usize = 0x20;

// ---------------------------------------------------------------- graphics controller (0x3ce/0x3cf)
/// GR00/GR01 are 8 bits wide in extended modes (blit background/foreground colour byte 0);
/// the VGA core sees them masked to 4 bits [Q cirrus_shadow_gr0/gr1].
pub const GR_SET_RESET: usize = 0x00;
pub const GR_ENABLE_SET_RESET: usize = 0x01;
/// GR05 mode: Cirrus write modes 4 and 5 (colour expansion of CPU writes) in bits 0..2
/// [Q cirrus_vga_write_gr case 0x05, cirrus_mem_writeb_mode4and5_*].
pub const GR_MODE: usize = 0x05;
/// GR09/GR0A bank offsets 0 and 1 [Q cirrus_update_bank_ptr].
pub const GR_BANK0: usize = 0x09;
pub const GR_BANK1: usize = 0x0a;
/// GR0B graphics controller mode extensions [Q CIRRUS_BANKING_*, cirrus_vga_mem_write].
pub const GR_MODE_EXT: usize = 0x0b;
/// Two 32 KiB banks at 0xa0000 and 0xa8000 (else one 64 KiB bank; the second half is the
/// first bank + 32 KiB).
pub const GRB_DUAL_BANK: u8 = 0x01;
/// Offsets address 8 bytes per CPU byte ("by 8" addressing, with write modes 4/5 = 8 pixels).
pub const GRB_BY8: u8 = 0x02;
/// Extended write modes 4/5 enabled.
pub const GRB_EXT_WRITE_MODES: u8 = 0x04;
/// "By 16" addressing together with bit 2 (16-bit colour expansion) [Q 0x14 checks].
pub const GRB_BY16: u8 = 0x10;
/// Bank granularity 16 KiB (else 4 KiB).
pub const GRB_GRANULARITY_16K: u8 = 0x20;
/// Blit colour bytes 1..3 [Q cirrus_bitblt_fgcol/bgcol].
pub const GR_BG_1: usize = 0x10;
pub const GR_FG_1: usize = 0x11;
pub const GR_BG_2: usize = 0x12;
pub const GR_FG_2: usize = 0x13;
pub const GR_BG_3: usize = 0x14;
pub const GR_FG_3: usize = 0x15;
/// GR18: fastest memory configuration on reset [Q cirrus_reset].
pub const GR_MEMCFG: usize = 0x18;
/// BitBLT registers: width-1 (13 bits), height-1 (13 bits), destination/source pitch (13 bits),
/// destination/source address (22 bits) [Q cirrus_vga_write_gr masks 0x1f / 0x3f].
pub const GR_BLT_WIDTH: usize = 0x20;
pub const GR_BLT_HEIGHT: usize = 0x22;
pub const GR_BLT_DST_PITCH: usize = 0x24;
pub const GR_BLT_SRC_PITCH: usize = 0x26;
pub const GR_BLT_DST_ADDR: usize = 0x28;
pub const GR_BLT_SRC_ADDR: usize = 0x2c;
/// GR2F: destination left-edge skip (bits 0..2 pixels; 0..4 bytes at 24 bpp) and write mask.
pub const GR_BLT_SKIP: usize = 0x2f;
pub const GR_BLT_MODE: usize = 0x30;
pub const GR_BLT_STATUS: usize = 0x31;
pub const GR_BLT_ROP: usize = 0x32;
pub const GR_BLT_MODE_EXT: usize = 0x33;
pub const GR_BLT_TRANSPARENT: usize = 0x34;
pub const GR_BLT_TRANSPARENT_MASK: usize = 0x38;
/// GR indexes QEMU stores (reads of higher ones return 0xff) [Q cirrus_vga_read_gr 0x3a].
pub const GR_COUNT: usize = 0x3a;

/// GR30 BitBLT mode [Q CIRRUS_BLTMODE_*].
pub const BLTMODE_BACKWARDS: u8 = 0x01;
pub const BLTMODE_MEMSYSDEST: u8 = 0x02;
pub const BLTMODE_MEMSYSSRC: u8 = 0x04;
pub const BLTMODE_TRANSPARENTCOMP: u8 = 0x08;
pub const BLTMODE_PIXELWIDTH_MASK: u8 = 0x30;
pub const BLTMODE_PATTERNCOPY: u8 = 0x40;
pub const BLTMODE_COLOREXPAND: u8 = 0x80;
/// GR31 BitBLT start/status [Q CIRRUS_BLT_*]: drivers poll BUSY (and START) until clear.
pub const BLT_BUSY: u8 = 0x01;
pub const BLT_START: u8 = 0x02;
pub const BLT_RESET: u8 = 0x04;
pub const BLT_FIFOUSED: u8 = 0x10;
/// Start as soon as GR2A (destination address bits 16..21) is written.
pub const BLT_AUTOSTART: u8 = 0x80;
/// GR33 BitBLT mode extensions [Q CIRRUS_BLTMODEEXT_*].
pub const BLTMODEEXT_DWORDGRANULARITY: u8 = 0x01;
pub const BLTMODEEXT_COLOREXPINV: u8 = 0x02;
pub const BLTMODEEXT_SOLIDFILL: u8 = 0x04;

/// GR32 raster operations (the 16 binary ROPs, encoded as the Cirrus datasheet's codes; any
/// other value is a no-op) [Q CIRRUS_ROP_*, rop_to_index].
pub const ROP_0: u8 = 0x00;
pub const ROP_SRC_AND_DST: u8 = 0x05;
pub const ROP_NOP: u8 = 0x06;
pub const ROP_SRC_AND_NOTDST: u8 = 0x09;
pub const ROP_NOTDST: u8 = 0x0b;
pub const ROP_SRC: u8 = 0x0d;
pub const ROP_1: u8 = 0x0e;
pub const ROP_NOTSRC_AND_DST: u8 = 0x50;
pub const ROP_SRC_XOR_DST: u8 = 0x59;
pub const ROP_SRC_OR_DST: u8 = 0x6d;
pub const ROP_NOTSRC_OR_NOTDST: u8 = 0x90;
pub const ROP_SRC_NOTXOR_DST: u8 = 0x95;
pub const ROP_SRC_OR_NOTDST: u8 = 0xad;
pub const ROP_NOTSRC: u8 = 0xd0;
pub const ROP_NOTSRC_OR_DST: u8 = 0xd6;
pub const ROP_NOTSRC_AND_NOTDST: u8 = 0xda;

/// The BitBLT engine buffers one line of system-to-screen data: 2048 pixels of 4 bytes
/// [Q CIRRUS_BLTBUFSIZE]. Widths are at most 8192 bytes anyway (13-bit register).
pub const BLT_BUF_SIZE: usize = 2048 * 4;

// ---------------------------------------------------------------- memory-mapped BitBLT registers
/// Byte offsets in the MMIO block (BAR1 + 0x100, 0xb8000, or the last 256 bytes of the linear
/// window) and the GR register each aliases [Q CIRRUS_MMIO_*, cirrus_mmio_blt_read/write].
pub const MMIO_BLT_REGS: [(u8, usize); 30] = [
    (0x00, GR_SET_RESET), // background colour byte 0 (the 8-bit GR00 shadow)
    (0x01, GR_BG_1),
    (0x02, GR_BG_2),
    (0x03, GR_BG_3),
    (0x04, GR_ENABLE_SET_RESET), // foreground colour byte 0 (GR01 shadow)
    (0x05, GR_FG_1),
    (0x06, GR_FG_2),
    (0x07, GR_FG_3),
    (0x08, GR_BLT_WIDTH),
    (0x09, GR_BLT_WIDTH + 1),
    (0x0a, GR_BLT_HEIGHT),
    (0x0b, GR_BLT_HEIGHT + 1),
    (0x0c, GR_BLT_DST_PITCH),
    (0x0d, GR_BLT_DST_PITCH + 1),
    (0x0e, GR_BLT_SRC_PITCH),
    (0x0f, GR_BLT_SRC_PITCH + 1),
    (0x10, GR_BLT_DST_ADDR),
    (0x11, GR_BLT_DST_ADDR + 1),
    (0x12, GR_BLT_DST_ADDR + 2),
    (0x14, GR_BLT_SRC_ADDR),
    (0x15, GR_BLT_SRC_ADDR + 1),
    (0x16, GR_BLT_SRC_ADDR + 2),
    (0x17, GR_BLT_SKIP),
    (0x18, GR_BLT_MODE),
    (0x1a, GR_BLT_ROP),
    (0x1b, GR_BLT_MODE_EXT),
    (0x1c, GR_BLT_TRANSPARENT),
    (0x1d, GR_BLT_TRANSPARENT + 1),
    (0x20, GR_BLT_TRANSPARENT_MASK),
    (0x21, GR_BLT_TRANSPARENT_MASK + 1),
];
/// The status/start register sits apart from the others [Q CIRRUS_MMIO_BLTSTATUS].
pub const MMIO_BLT_STATUS: u8 = 0x40;
/// The legacy-window MMIO block at 0xb8000 (window offset 0x18000, 256 bytes) when SR17 has
/// MMIO enabled without USE_PCIADDR [Q cirrus_vga_mem_read 0x18000..0x18100].
pub const WINDOW_MMIO_OFFSET: u64 = 0x18000;
pub const WINDOW_MMIO_SIZE: u64 = 0x100;

// ---------------------------------------------------------------- CRTC (0x3d4/0x3d5)
/// CR13 offset (pitch / 8), extended by CR1B bit 4 as bit 8 [Q cirrus_get_offsets; L
/// cirrus_pitch_set].
pub const CR_OFFSET: usize = 0x13;
/// CR19 interlace end, CR1A miscellaneous control (bit 0 interlace doubles the height).
pub const CR_INTERLACE_END: usize = 0x19;
pub const CR_MISC_CONTROL: usize = 0x1a;
pub const CR1A_INTERLACE: u8 = 0x01;
/// CR1B extended display control: bit 0 = start address bit 16, bits 2..3 = bits 17..18,
/// bit 4 = offset bit 8 [Q cirrus_get_offsets; L cirrus_set_start_address].
pub const CR_EXT_DISPLAY: usize = 0x1b;
pub const CR1B_START_16: u8 = 0x01;
pub const CR1B_START_17_18: u8 = 0x0c;
pub const CR1B_OFFSET_8: u8 = 0x10;
pub const CR_SYNC_ADJUST: usize = 0x1c;
/// CR1D overlay extended control: bit 7 = start address bit 19.
pub const CR_OVERLAY: usize = 0x1d;
pub const CR1D_START_19: u8 = 0x80;
/// CR22 graphics data latches readback; CR24 attribute controller toggle readback (flip-flop
/// in bit 7); CR25 part status; CR26 attribute index readback; CR27 part ID (= the device id).
pub const CR_LATCH_READBACK: usize = 0x22;
pub const CR_AR_TOGGLE: usize = 0x24;
pub const CR_PART_STATUS: usize = 0x25;
pub const CR_AR_INDEX: usize = 0x26;
pub const CR_PART_ID: usize = 0x27;
pub const PART_ID_CLGD5446: u8 = 0xb8;
pub const CR_COUNT: usize = 0x28;

// ---------------------------------------------------------------- hidden DAC (0x3c6)
/// Four reads of the pixel mask port 0x3c6 open the hidden DAC register: the fifth read returns
/// it, a write after four reads sets it; any other access to 0x3c6..0x3c9 closes it again
/// [Q cirrus_read_hidden_dac / cirrus_write_hidden_dac; L wreg_hdr].
pub const HIDDEN_DAC_UNLOCK_READS: u8 = 4;
/// HDR low nibble in 16 bpp: 0 = 5:5:5 (Sierra), 1 = 5:6:5 (XGA) [Q cirrus_get_bpp16_depth;
/// L writes 0xc1 for RGB565].
pub const HDR_565: u8 = 0x01;
