//! VGA register layout. Sources: IBM "VGA and XGA Technical Reference" (the register chapters:
//! sequencer, CRT controller, graphics controller, attribute controller, DAC), cited as [IBM]
//! with the register name, and QEMU v7.2 hw/display/vga.c / vga_regs.h where QEMU's behaviour
//! is what guests are tested against ([Q] with the function name).

// ---- I/O ports [IBM "I/O address map"; Q vga_ioport_read/write] ----
/// Attribute controller: index and data writes alternate through one flip-flop; reads of
/// 0x3c0 give the index, reads of 0x3c1 the data.
pub const PORT_ATTR_INDEX: u16 = 0x3c0;
pub const PORT_ATTR_DATA_READ: u16 = 0x3c1;
/// Write: miscellaneous output. Read: input status 0.
pub const PORT_MISC_WRITE: u16 = 0x3c2;
pub const PORT_SEQ_INDEX: u16 = 0x3c4;
pub const PORT_SEQ_DATA: u16 = 0x3c5;
/// DAC pixel mask (QEMU reads 0xff and ignores writes).
pub const PORT_DAC_MASK: u16 = 0x3c6;
/// Write: DAC read index. Read: DAC state (0 = writing, 3 = reading).
pub const PORT_DAC_READ_INDEX: u16 = 0x3c7;
pub const PORT_DAC_WRITE_INDEX: u16 = 0x3c8;
pub const PORT_DAC_DATA: u16 = 0x3c9;
/// Read: feature control (writes go to 0x3ba / 0x3da).
pub const PORT_FEATURE_READ: u16 = 0x3ca;
pub const PORT_MISC_READ: u16 = 0x3cc;
pub const PORT_GC_INDEX: u16 = 0x3ce;
pub const PORT_GC_DATA: u16 = 0x3cf;
/// CRTC index/data and input status 1 at their monochrome (0x3bx) and colour (0x3dx) homes;
/// misc output bit 0 selects which of the two decodes.
pub const PORT_CRTC_INDEX_MONO: u16 = 0x3b4;
pub const PORT_CRTC_DATA_MONO: u16 = 0x3b5;
pub const PORT_STATUS1_MONO: u16 = 0x3ba;
pub const PORT_CRTC_INDEX_COLOUR: u16 = 0x3d4;
pub const PORT_CRTC_DATA_COLOUR: u16 = 0x3d5;
pub const PORT_STATUS1_COLOUR: u16 = 0x3da;
/// The whole legacy block 0x3b0-0x3df, registered as one range.
pub const PORTS: (u16, u16) = (0x3b0, 0x30);

/// The legacy memory window 0xa0000-0xbffff [IBM "memory map select"].
pub const WINDOW_BASE: u64 = 0xa_0000;
pub const WINDOW_SIZE: u64 = 0x2_0000;

// ---- Miscellaneous output [IBM "Miscellaneous Output Register"] ----
/// Bit 0: I/O address select, 1 = colour (CRTC at 0x3d4, status at 0x3da).
pub const MISC_COLOUR: u8 = 0x01;

// ---- Input status 1 [IBM "Input Status Register 1"] ----
/// Bit 0 display enable (inactive), bit 3 vertical retrace. QEMU's default ("dumb") retrace
/// toggles both on every read, so any polling loop that waits for a change ends [Q
/// vga_dumb_retrace / vga_ioport_read].
pub const STATUS1_DISPLAY_INACTIVE: u8 = 0x01;
pub const STATUS1_VRETRACE: u8 = 0x08;

// ---- Sequencer [IBM "Sequencer Registers"] ----
pub const SEQ_COUNT: usize = 8;
pub const SEQ_CLOCKING: usize = 1;
pub const SEQ_MAP_MASK: usize = 2;
pub const SEQ_CHAR_MAP: usize = 3;
pub const SEQ_MEMORY_MODE: usize = 4;
/// Writable bits per sequencer register [Q sr_mask].
pub const SEQ_MASK: [u8; SEQ_COUNT] = [0x03, 0x3d, 0x0f, 0x3f, 0x0e, 0x00, 0x00, 0xff];
/// Clocking mode bit 0: 8-dot characters (clear: 9 dots).
pub const CLOCKING_8DOT: u8 = 0x01;
/// Clocking mode bit 3: dot clock divided by 2 (40-column and 320-pixel modes).
pub const CLOCKING_DOT_DIV2: u8 = 0x08;
/// Memory mode bit 2: odd/even host write addressing *disabled* when set.
pub const MEMORY_SEQUENTIAL: u8 = 0x04;
/// Memory mode bit 3: chain 4 (linear byte addressing across the four planes).
pub const MEMORY_CHAIN4: u8 = 0x08;

// ---- CRT controller [IBM "CRT Controller Registers"] ----
pub const CRTC_COUNT: usize = 256;
pub const CRTC_H_DISPLAY_END: usize = 0x01;
pub const CRTC_OVERFLOW: usize = 0x07;
pub const CRTC_MAX_SCAN: usize = 0x09;
pub const CRTC_CURSOR_START: usize = 0x0a;
pub const CRTC_CURSOR_END: usize = 0x0b;
pub const CRTC_START_HIGH: usize = 0x0c;
pub const CRTC_START_LOW: usize = 0x0d;
pub const CRTC_CURSOR_HIGH: usize = 0x0e;
pub const CRTC_CURSOR_LOW: usize = 0x0f;
pub const CRTC_V_RETRACE_END: usize = 0x11;
pub const CRTC_V_DISPLAY_END: usize = 0x12;
pub const CRTC_OFFSET: usize = 0x13;
pub const CRTC_MODE: usize = 0x17;
pub const CRTC_LINE_COMPARE: usize = 0x18;
/// Vertical retrace end bit 7: registers 0-7 are write-protected, except the line compare bit
/// (bit 4) of the overflow register [IBM "Vertical Retrace End Register"; Q vga_ioport_write].
pub const V_RETRACE_END_PROTECT: u8 = 0x80;
pub const OVERFLOW_LINE_COMPARE_8: u8 = 0x10;
/// Cursor start bit 5: cursor off.
pub const CURSOR_OFF: u8 = 0x20;
/// Max scan line bit 7: double scanning.
pub const MAX_SCAN_DOUBLE: u8 = 0x80;
/// Mode control bit 0 clear: scan line bit 0 replaces address bit 13 (CGA interleave); bit 1
/// clear: scan line bit 1 replaces address bit 14 (Hercules interleave).
pub const MODE_NO_CGA_INTERLEAVE: u8 = 0x01;
pub const MODE_NO_HGC_INTERLEAVE: u8 = 0x02;

// ---- Graphics controller [IBM "Graphics Controller Registers"] ----
pub const GC_COUNT: usize = 16;
pub const GC_SET_RESET: usize = 0;
pub const GC_ENABLE_SET_RESET: usize = 1;
pub const GC_COLOR_COMPARE: usize = 2;
pub const GC_ROTATE: usize = 3;
pub const GC_READ_MAP: usize = 4;
pub const GC_MODE: usize = 5;
pub const GC_MISC: usize = 6;
pub const GC_COLOR_DONT_CARE: usize = 7;
pub const GC_BIT_MASK: usize = 8;
/// Writable bits per graphics register [Q gr_mask].
pub const GC_MASK: [u8; GC_COUNT] = [0x0f, 0x0f, 0x0f, 0x1f, 0x03, 0x7b, 0x0f, 0x0f, 0xff, 0, 0, 0, 0, 0, 0, 0];
/// Mode bit 3: read mode 1 (colour compare).
pub const MODE_READ_COMPARE: u8 = 0x08;
/// Mode bit 4: odd/even host read addressing.
pub const MODE_ODD_EVEN: u8 = 0x10;
/// Mode bits 6:5: shift register mode (0 planar 16 colour, 1 CGA interleaved, 2/3 256 colour).
pub const MODE_SHIFT_SHIFT: u8 = 5;
/// Misc bit 0: graphics mode (clear: alphanumeric).
pub const MISC_GRAPHICS: u8 = 0x01;
/// Misc bits 3:2: memory map select.
pub const MISC_MAP_SHIFT: u8 = 2;

// ---- Attribute controller [IBM "Attribute Controller Registers"] ----
pub const ATTR_COUNT: usize = 0x15;
pub const ATTR_MODE: usize = 0x10;
pub const ATTR_PLANE_ENABLE: usize = 0x12;
pub const ATTR_COLOR_SELECT: usize = 0x14;
/// Index bit 5, Palette Address Source: while clear the palette is being loaded and the
/// screen shows nothing [IBM "Attribute Address Register"; Q vga_update_display GMODE_BLANK].
pub const ATTR_PAS: u8 = 0x20;
/// Mode bit 2: line graphics (9th dot of characters 0xc0-0xdf repeats the 8th).
pub const ATTR_MODE_LINE_GRAPHICS: u8 = 0x04;
/// Mode bit 3: attribute bit 7 blinks instead of selecting background intensity.
pub const ATTR_MODE_BLINK: u8 = 0x08;
/// Mode bit 7: palette bits 5:4 come from colour select bits 1:0.
pub const ATTR_MODE_P54: u8 = 0x80;

// ---- DAC [IBM "Video DAC"] ----
pub const DAC_ENTRIES: usize = 256;
/// DAC state read from 0x3c7.
pub const DAC_STATE_WRITE: u8 = 0;
pub const DAC_STATE_READ: u8 = 3;

// ---- Text mode ----
/// Character maps are 8 KiB apart in plane 2; each glyph has 32 scan lines
/// [IBM "Character Map Select Register"].
pub const FONT_MAP_STRIDE: usize = 8192;
pub const GLYPH_LINES: usize = 32;
/// The VGA's CRTC address counter has 16 bits, so planar addressing wraps at 64 Ki words of
/// four planes: 256 KiB of VRAM.
pub const PLANAR_SPAN: usize = 256 * 1024;
/// Blink periods. Hardware blinks the cursor every 16 frames and blinking characters every 32
/// (about 266 ms and 533 ms at 60 Hz) [IBM "Cursor Start Register" note].
pub const CURSOR_BLINK_NS: u64 = 266_666_666;
pub const CHAR_BLINK_NS: u64 = 533_333_333;
