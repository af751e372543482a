//! QEMU's standard VGA (`-device VGA`): PCI identity, BAR layout and the Bochs VBE "DISPI"
//! interface. Sources: QEMU v7.2 docs/specs/standard-vga.rst, hw/display/vga-pci.c,
//! hw/display/vga.c (vbe_ioport_*, vbe_fixup_regs), include/hw/display/bochs-vbe.h; the
//! Linux bochs-drm driver (drivers/gpu/drm/tiny/bochs.c) and SeaVGABIOS (vgasrc/bochsvga.c)
//! are the guests these values are checked against.

/// 1234:1111, display controller / VGA compatible, revision 2 (QEMU's `qemu-extended-regs`
/// on, which gives the qext registers), subsystem 1af4:1100 (QEMU's default for every PCI
/// device; Linux's bochs-drm tags it "QEMU stdvga") [Q vga-pci.c; hw/pci/pci.c].
pub const VENDOR_ID: u16 = 0x1234;
pub const DEVICE_ID: u16 = 0x1111;
pub const REVISION: u8 = 2;
pub const CLASS: u8 = 0x03;
pub const SUBCLASS: u8 = 0x00;
pub const SUBSYSTEM_VENDOR_ID: u16 = 0x1af4;
pub const SUBSYSTEM_ID: u16 = 0x1100;

/// BAR0: prefetchable 32-bit memory, the VRAM (linear framebuffer).
pub const VRAM_BAR: u8 = 0;
/// BAR2: 4 KiB MMIO [Q docs/specs/standard-vga.rst "PCI spec"].
pub const MMIO_BAR: u8 = 2;
pub const MMIO_SIZE: u64 = 4096;
/// 0x000-0x3ff: EDID blob.
pub const MMIO_EDID: u64 = 0x000;
pub const MMIO_EDID_SIZE: u64 = 0x400;
/// 0x400-0x41f: VGA ports 0x3c0-0x3df.
pub const MMIO_VGA: u64 = 0x400;
pub const MMIO_VGA_SIZE: u64 = 0x20;
pub const MMIO_VGA_PORT_BASE: u16 = 0x3c0;
/// 0x500-0x515: DISPI register `i` as a 16-bit word at offset `2 * i`.
pub const MMIO_DISPI: u64 = 0x500;
pub const MMIO_DISPI_SIZE: u64 = 0x16 * 2;
/// 0x600: size of the qext region (reads 8); 0x604: framebuffer byte order.
pub const MMIO_QEXT: u64 = 0x600;
pub const QEXT_SIZE: u32 = 8;
pub const MMIO_QEXT_BYTE_ORDER: u64 = 0x604;
pub const BYTE_ORDER_LITTLE: u32 = 0x1e1e_1e1e;
pub const BYTE_ORDER_BIG: u32 = 0xbebe_bebe;

/// `vgamem_mb`: default 16, clamped to 1..=512 and rounded up to a power of two
/// [Q vga.c vga_common_init].
pub const VGAMEM_DEFAULT_MB: u64 = 16;
pub const VGAMEM_MIN_MB: u64 = 1;
pub const VGAMEM_MAX_MB: u64 = 512;

/// The ROM image QEMU loads for this device (SeaVGABIOS's stdvga build).
pub const ROM_FILE: &str = "vgabios-stdvga.bin";

// ---- DISPI [Q bochs-vbe.h] ----
/// Index port (16 bit) and data ports: 0x1cf on x86, 0x1d0 on every target.
pub const PORT_DISPI_INDEX: u16 = 0x1ce;
pub const PORT_DISPI_DATA: u16 = 0x1cf;
pub const PORT_DISPI_DATA_ALT: u16 = 0x1d0;
pub const DISPI_PORTS: (u16, u16) = (0x1ce, 3);

pub const INDEX_ID: usize = 0;
pub const INDEX_XRES: usize = 1;
pub const INDEX_YRES: usize = 2;
pub const INDEX_BPP: usize = 3;
pub const INDEX_ENABLE: usize = 4;
pub const INDEX_BANK: usize = 5;
pub const INDEX_VIRT_WIDTH: usize = 6;
pub const INDEX_VIRT_HEIGHT: usize = 7;
pub const INDEX_X_OFFSET: usize = 8;
pub const INDEX_Y_OFFSET: usize = 9;
/// Registers 0-9 are storage; index 10 reads the VRAM size in 64 KiB units.
pub const REGISTER_COUNT: usize = 10;
pub const INDEX_VIDEO_MEMORY_64K: usize = 10;

/// Writable IDs: 0xB0C0 to 0xB0C5; the device starts as ID5.
pub const ID0: u16 = 0xb0c0;
pub const ID5: u16 = 0xb0c5;

pub const ENABLE_ENABLED: u16 = 0x01;
/// While set, XRES/YRES/BPP read the maxima below.
pub const ENABLE_GETCAPS: u16 = 0x02;
pub const ENABLE_8BIT_DAC: u16 = 0x20;
pub const ENABLE_LFB: u16 = 0x40;
pub const ENABLE_NOCLEARMEM: u16 = 0x80;

pub const MAX_XRES: u16 = 16000;
pub const MAX_YRES: u16 = 12000;
pub const MAX_BPP: u16 = 32;
