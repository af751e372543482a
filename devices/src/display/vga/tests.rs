//! The VGA core driven through its ports and window the way a VGA BIOS and a guest driver do.
//! The mode tables are SeaVGABIOS's standard ones (vgasrc/vgatables.c), so these tests render
//! what a booting guest renders.

use std::sync::Arc;

use super::spec::*;
use super::*;
use crate::clock::ManualClock;
use crate::display::{HostVram, Rect};

pub(crate) struct Bench {
    pub core: VgaCore,
    pub clock: Arc<ManualClock>,
    pub fb: Framebuffer,
}

pub(crate) fn bench(vram_size: usize) -> Bench {
    let clock = Arc::new(ManualClock::new(0));
    let vram = Vram::anonymous(vram_size).unwrap();
    let core = VgaCore::new(vram, Arc::new(HostVram), clock.clone());
    Bench { core, clock, fb: Framebuffer::default() }
}

/// A mode's register set: misc, sequencer 0-4, CRTC 0-0x18, attribute 0-0x14, GC 0-8.
pub(crate) struct ModeRegs {
    pub misc: u8,
    pub seq: [u8; 5],
    pub crtc: [u8; 25],
    pub attr: [u8; 20],
    pub gc: [u8; 9],
}

/// Mode 3: 80x25 text, 9x16 cells.
pub(crate) const MODE_3: ModeRegs = ModeRegs {
    misc: 0x67,
    seq: [0x03, 0x00, 0x03, 0x00, 0x02],
    crtc: [
        0x5f, 0x4f, 0x50, 0x82, 0x55, 0x81, 0xbf, 0x1f, 0x00, 0x4f, 0x0d, 0x0e, 0x00, 0x00, 0x00, 0x00, 0x9c, 0x8e,
        0x8f, 0x28, 0x1f, 0x96, 0xb9, 0xa3, 0xff,
    ],
    attr: [
        0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x14, 0x07, 0x38, 0x39, 0x3a, 0x3b, 0x3c, 0x3d, 0x3e, 0x3f, 0x0c, 0x00,
        0x0f, 0x08,
    ],
    gc: [0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x0e, 0x0f, 0xff],
};

/// Mode 12h: 640x480, 16 colours planar.
pub(crate) const MODE_12: ModeRegs = ModeRegs {
    misc: 0xe3,
    seq: [0x03, 0x01, 0x0f, 0x00, 0x06],
    crtc: [
        0x5f, 0x4f, 0x50, 0x82, 0x54, 0x80, 0x0b, 0x3e, 0x00, 0x40, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xea, 0x8c,
        0xdf, 0x28, 0x00, 0xe7, 0x04, 0xe3, 0xff,
    ],
    attr: [
        0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x14, 0x07, 0x38, 0x39, 0x3a, 0x3b, 0x3c, 0x3d, 0x3e, 0x3f, 0x01, 0x00,
        0x0f, 0x00,
    ],
    gc: [0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05, 0x0f, 0xff],
};

/// Mode 13h: 320x200, 256 colours chain-4 (shown as 640x400).
pub(crate) const MODE_13: ModeRegs = ModeRegs {
    misc: 0x63,
    seq: [0x03, 0x01, 0x0f, 0x00, 0x0e],
    crtc: [
        0x5f, 0x4f, 0x50, 0x82, 0x54, 0x80, 0xbf, 0x1f, 0x00, 0x41, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x9c, 0x8e,
        0x8f, 0x28, 0x40, 0x96, 0xb9, 0xa3, 0xff,
    ],
    attr: [
        0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x41, 0x00,
        0x0f, 0x00,
    ],
    gc: [0x00, 0x00, 0x00, 0x00, 0x00, 0x40, 0x05, 0x0f, 0xff],
};

impl Bench {
    pub fn out(&mut self, port: u16, v: u8) {
        self.core.io_write(port, v);
    }
    pub fn inb(&mut self, port: u16) -> u8 {
        self.core.io_read(port)
    }
    pub fn seq(&mut self, i: u8, v: u8) {
        self.core.io_write_bytes(PORT_SEQ_INDEX, &[i, v]);
    }
    pub fn gc(&mut self, i: u8, v: u8) {
        self.core.io_write_bytes(PORT_GC_INDEX, &[i, v]);
    }
    pub fn crtc(&mut self, i: u8, v: u8) {
        self.core.io_write_bytes(PORT_CRTC_INDEX_COLOUR, &[i, v]);
    }
    pub fn attr(&mut self, i: u8, v: u8) {
        self.inb(PORT_STATUS1_COLOUR);
        self.out(PORT_ATTR_INDEX, i);
        self.out(PORT_ATTR_INDEX, v);
    }
    pub fn dac(&mut self, index: u8, rgb: [u8; 3]) {
        self.out(PORT_DAC_WRITE_INDEX, index);
        for c in rgb {
            self.out(PORT_DAC_DATA, c);
        }
    }
    pub fn write(&mut self, gpa: u64, data: &[u8]) {
        self.core.mem_write_bytes(gpa - WINDOW_BASE, data);
    }
    pub fn read(&mut self, gpa: u64) -> u8 {
        self.core.mem_read(gpa - WINDOW_BASE)
    }

    /// Programs a mode the way SeaVGABIOS's stdvga_set_mode does, ending with PAS set.
    pub fn set_mode(&mut self, m: &ModeRegs) {
        self.out(PORT_MISC_WRITE, m.misc);
        for (i, &v) in m.seq.iter().enumerate() {
            self.seq(i as u8, v);
        }
        self.crtc(0x11, 0); // unprotect
        for (i, &v) in m.crtc.iter().enumerate() {
            self.crtc(i as u8, v);
        }
        self.inb(PORT_STATUS1_COLOUR);
        for (i, &v) in m.attr.iter().enumerate() {
            self.out(PORT_ATTR_INDEX, i as u8);
            self.out(PORT_ATTR_INDEX, v);
        }
        self.out(PORT_ATTR_INDEX, ATTR_PAS);
        for (i, &v) in m.gc.iter().enumerate() {
            self.gc(i as u8, v);
        }
    }

    /// Loads 16-line glyphs into character map 0 of plane 2 through planar writes.
    pub fn load_font(&mut self, glyphs: &[(u8, [u8; 16])]) {
        self.seq(2, 0x04);
        self.seq(4, 0x07);
        self.gc(4, 0x02);
        self.gc(5, 0x00);
        self.gc(6, 0x04);
        for (ch, rows) in glyphs {
            self.write(0xa0000 + *ch as u64 * 32, rows);
        }
        self.seq(2, 0x03);
        self.seq(4, 0x02);
        self.gc(4, 0x00);
        self.gc(5, 0x10);
        self.gc(6, 0x0e);
    }

    pub fn refresh(&mut self) -> Vec<Rect> {
        self.core.refresh(&mut self.fb);
        let d = self.fb.take_dirty();
        d.rects(self.fb.width(), self.fb.height())
    }

    pub fn pixel(&self, x: u32, y: u32) -> u32 {
        self.fb.row(y)[x as usize]
    }
}

const WHITE: u32 = 0xffffff;
const BLUE: u32 = 0x0000aa;
const GLYPH_BAR: [u8; 16] = [0x81, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01];

fn text_bench() -> Bench {
    let mut b = bench(256 * 1024);
    b.set_mode(&MODE_3);
    b.dac(0x01, [0, 0, 0x2a]);
    b.dac(0x3f, [0x3f, 0x3f, 0x3f]);
    b.load_font(&[(b'A', GLYPH_BAR), (0xc4, GLYPH_BAR)]);
    b
}

#[test]
fn text_mode_shows_the_font_from_plane_2_in_the_attribute_colours() {
    let mut b = text_bench();
    b.crtc(0x0a, 0x20); // cursor off
    b.write(0xb8000, &[b'A', 0x1f, 0xc4, 0x1f]);
    b.refresh();
    assert_eq!((b.fb.width(), b.fb.height()), (720, 400));
    // Line 0 of 'A' is 0x81: dots 0 and 7 white, the rest blue, the 9th dot background.
    let line0: Vec<u32> = (0..9).map(|x| b.pixel(x, 0)).collect();
    assert_eq!(line0, [WHITE, BLUE, BLUE, BLUE, BLUE, BLUE, BLUE, WHITE, BLUE]);
    assert!((0..8).all(|x| b.pixel(x, 1) == WHITE));
    assert_eq!(b.pixel(8, 1), BLUE, "9th dot of a letter is background");
    // 0xc4 is a line-graphics character: its 9th dot repeats the 8th (AR10 bit 2).
    assert_eq!(b.pixel(9 + 8, 1), WHITE);
    // Empty cells are black on black (attribute 0).
    assert_eq!(b.pixel(100, 100), 0);
}

#[test]
fn an_idle_text_screen_redraws_nothing_and_one_cell_dirties_only_its_tiles() {
    let mut b = text_bench();
    b.crtc(0x0a, 0x20);
    b.refresh();
    assert!(b.refresh().is_empty(), "nothing changed");
    // Row 10, column 40: pixels x 360..369, y 160..175.
    b.write(0xb8000 + (10 * 80 + 40) * 2, &[b'A', 0x1f]);
    let rects = b.refresh();
    assert_eq!(rects, vec![Rect::new(352, 160, 32, 16)]);
    assert_eq!(b.pixel(360, 161), WHITE);
}

#[test]
fn the_cursor_blinks_on_the_device_clock() {
    let mut b = text_bench();
    b.write(0xb8000, &[b' ', 0x1f]);
    b.crtc(0x0a, 14);
    b.crtc(0x0b, 15);
    b.crtc(0x0e, 0);
    b.crtc(0x0f, 0);
    b.refresh();
    assert_eq!(b.pixel(0, 14), WHITE, "cursor lines in the foreground colour");
    assert_eq!(b.pixel(0, 13), BLUE);
    b.clock.advance_ns(CURSOR_BLINK_NS);
    assert_eq!(b.refresh(), vec![Rect::new(0, 0, 16, 16)]);
    assert_eq!(b.pixel(0, 14), BLUE, "blinked off");
    // Moving the cursor redraws the old and new cells.
    b.clock.advance_ns(CURSOR_BLINK_NS);
    b.crtc(0x0f, 2);
    b.refresh();
    assert_eq!(b.pixel(18, 14), 0, "cursor on a black cell shows its (black) foreground");
}

#[test]
fn blinking_attributes_blink_and_intensity_is_background_when_blink_is_off() {
    let mut b = text_bench();
    b.crtc(0x0a, 0x20);
    b.write(0xb8000, &[b'A', 0x9f]); // blink, blue background, white foreground
    b.refresh();
    assert_eq!(b.pixel(0, 1), WHITE);
    b.clock.advance_ns(CHAR_BLINK_NS);
    b.refresh();
    assert_eq!(b.pixel(0, 1), BLUE, "blink phase off: foreground shows as background");
    // Blink disabled (AR10 bit 3 clear): bit 7 selects bright background 9 (DAC 0x39).
    b.dac(0x39, [0x15, 0x15, 0x3f]);
    b.attr(0x10, 0x04);
    b.out(PORT_ATTR_INDEX, ATTR_PAS);
    b.refresh();
    assert_eq!(b.pixel(1, 0), 0x5555ff);
}

#[test]
fn reading_input_status_resets_the_flip_flop_and_clearing_pas_blanks() {
    let mut b = text_bench();
    b.write(0xb8000, &[b'A', 0x1f]);
    b.refresh();
    // Leave the flip-flop in the data state, then read 0x3da: the next write is an index.
    b.out(PORT_ATTR_INDEX, 0x11);
    b.inb(PORT_STATUS1_COLOUR);
    b.out(PORT_ATTR_INDEX, 0x01); // index 1 with PAS clear
    assert_eq!(b.inb(PORT_ATTR_INDEX), 0x01);
    b.refresh();
    assert!(b.fb.pixels().iter().all(|&p| p == 0), "PAS clear: blank");
    b.out(PORT_ATTR_INDEX, 0x02); // data for index 1
    assert_eq!(b.inb(PORT_ATTR_DATA_READ), 0x02);
    b.out(PORT_ATTR_INDEX, ATTR_PAS);
    b.refresh();
    assert_eq!(b.pixel(0, 1), WHITE, "PAS set: the picture is back");
}

#[test]
fn input_status_retrace_toggles_so_polling_loops_end() {
    let mut b = text_bench();
    let a = b.inb(PORT_STATUS1_COLOUR) & STATUS1_VRETRACE;
    let c = b.inb(PORT_STATUS1_COLOUR) & STATUS1_VRETRACE;
    assert_ne!(a, c);
}

#[test]
fn misc_output_selects_the_colour_or_monochrome_crtc_ports() {
    let mut b = text_bench();
    b.crtc(0x0e, 0x12);
    assert_eq!(b.inb(PORT_CRTC_DATA_COLOUR), 0x12);
    assert_eq!(b.inb(PORT_CRTC_DATA_MONO), 0xff, "mono ports do not decode in colour mode");
    b.out(PORT_MISC_WRITE, 0x66);
    assert_eq!(b.inb(PORT_MISC_READ), 0x66);
    assert_eq!(b.inb(PORT_CRTC_DATA_COLOUR), 0xff);
    b.out(PORT_CRTC_INDEX_MONO, 0x0e);
    assert_eq!(b.inb(PORT_CRTC_DATA_MONO), 0x12);
}

#[test]
fn crtc_protect_bit_guards_registers_0_to_7_except_line_compare_bit_8() {
    let mut b = text_bench();
    b.crtc(0x11, 0x80);
    b.crtc(0x01, 0x27);
    b.crtc(0x07, 0x00);
    b.out(PORT_CRTC_INDEX_COLOUR, 0x01);
    assert_eq!(b.inb(PORT_CRTC_DATA_COLOUR), 0x4f);
    b.out(PORT_CRTC_INDEX_COLOUR, 0x07);
    assert_eq!(b.inb(PORT_CRTC_DATA_COLOUR), 0x0f, "only bit 4 changed");
    b.crtc(0x11, 0x00);
    b.crtc(0x01, 0x27);
    b.out(PORT_CRTC_INDEX_COLOUR, 0x01);
    assert_eq!(b.inb(PORT_CRTC_DATA_COLOUR), 0x27);
}

#[test]
fn dac_reads_and_writes_three_components_per_entry_and_auto_increments() {
    let mut b = bench(256 * 1024);
    b.out(PORT_DAC_WRITE_INDEX, 0xff);
    for v in [1, 2, 3, 4, 5, 6] {
        b.out(PORT_DAC_DATA, v);
    }
    assert_eq!(b.inb(PORT_DAC_WRITE_INDEX), 1, "wrapped past 255 to 0, then to 1");
    assert_eq!(b.inb(PORT_DAC_READ_INDEX), DAC_STATE_WRITE);
    b.out(PORT_DAC_READ_INDEX, 0xff);
    assert_eq!(b.inb(PORT_DAC_READ_INDEX), DAC_STATE_READ);
    let got: Vec<u8> = (0..6).map(|_| b.inb(PORT_DAC_DATA)).collect();
    assert_eq!(got, [1, 2, 3, 4, 5, 6]);
    // A partial write does not change the entry until its third component.
    b.out(PORT_DAC_WRITE_INDEX, 0);
    b.out(PORT_DAC_DATA, 9);
    b.out(PORT_DAC_READ_INDEX, 0);
    assert_eq!(b.inb(PORT_DAC_DATA), 4);
}

#[test]
fn planar_write_modes_latches_and_read_modes() {
    let mut b = bench(256 * 1024);
    b.set_mode(&MODE_12);
    // Write mode 0 with set/reset on planes 0 and 2 (colour 5) through bit mask 0xf0.
    b.gc(GC_SET_RESET as u8, 0x05);
    b.gc(GC_ENABLE_SET_RESET as u8, 0x0f);
    b.gc(GC_BIT_MASK as u8, 0xf0);
    b.write(0xa0000, &[0x00]);
    let word = |b: &Bench, a: usize| {
        let mut w = [0u8; 4];
        b.core.vram().read(a * 4, &mut w);
        w
    };
    assert_eq!(word(&b, 0), [0xf0, 0x00, 0xf0, 0x00]);
    // Read mode 0 reads the plane GR4 selects and loads the latches.
    b.gc(GC_READ_MAP as u8, 2);
    assert_eq!(b.read(0xa0000), 0xf0);
    // Write mode 1 copies the latches (a screen-to-screen copy).
    b.gc(GC_MODE as u8, 0x01);
    b.write(0xa0001, &[0x00]);
    assert_eq!(word(&b, 1), [0xf0, 0x00, 0xf0, 0x00]);
    // Write mode 2: the CPU byte's low nibble is the colour, through the bit mask; the rest
    // of each plane comes from the latches.
    b.gc(GC_MODE as u8, 0x02);
    b.gc(GC_BIT_MASK as u8, 0x0f);
    b.read(0xa0002);
    b.write(0xa0002, &[0x0a]);
    assert_eq!(word(&b, 2), [0x00, 0x0f, 0x00, 0x0f]);
    // Write mode 3: set/reset colour, bit mask ANDed with the rotated CPU byte.
    b.gc(GC_MODE as u8, 0x03);
    b.gc(GC_BIT_MASK as u8, 0xff);
    b.gc(GC_SET_RESET as u8, 0x0c);
    b.read(0xa0003);
    b.write(0xa0003, &[0x3c]);
    assert_eq!(word(&b, 3), [0x00, 0x00, 0x3c, 0x3c]);
    // Logical function XOR (GR3 bits 4:3 = 3) with the latches in write mode 0.
    b.gc(GC_MODE as u8, 0x00);
    b.gc(GC_ROTATE as u8, 0x18);
    b.gc(GC_ENABLE_SET_RESET as u8, 0);
    b.read(0xa0003);
    b.write(0xa0003, &[0xff]);
    assert_eq!(word(&b, 3), [0xff, 0xff, 0xc3, 0xc3]);
    // The map mask keeps planes out of a write.
    b.gc(GC_ROTATE as u8, 0);
    b.seq(2, 0x01);
    b.write(0xa0004, &[0xaa]);
    assert_eq!(word(&b, 4), [0xaa, 0, 0, 0]);
    // Read mode 1: bits where every plane matches colour compare 0x0c (planes 2 and 3).
    b.seq(2, 0x0f);
    b.gc(GC_MODE as u8, 0x08);
    b.gc(GC_COLOR_COMPARE as u8, 0x0c);
    b.gc(GC_COLOR_DONT_CARE as u8, 0x0f);
    assert_eq!(b.read(0xa0003), 0x00);
    assert_eq!(b.read(0xa0002), 0x00);
    b.gc(GC_COLOR_COMPARE as u8, 0x00);
    assert_eq!(b.read(0xa0002), 0xf0, "dots 0-3 are colour 0");
}

#[test]
fn mode_12h_planar_pixels_reach_the_framebuffer_through_the_attribute_palette() {
    let mut b = bench(256 * 1024);
    b.set_mode(&MODE_12);
    b.dac(0x3c, [0x3f, 0x15, 0x15]); // colour 12 = AR12 -> DAC 0x3c, light red
    b.gc(GC_SET_RESET as u8, 12);
    b.gc(GC_ENABLE_SET_RESET as u8, 0x0f);
    b.gc(GC_BIT_MASK as u8, 0x80);
    // Dot 0 of line 479 (80 bytes per line).
    b.read(0xa0000 + 479 * 80);
    b.write(0xa0000 + 479 * 80, &[0xff]);
    b.refresh();
    assert_eq!((b.fb.width(), b.fb.height()), (640, 480));
    assert_eq!(b.pixel(0, 479), 0xff5555);
    assert_eq!(b.pixel(1, 479), 0);
    assert!(b.refresh().is_empty(), "idle");
}

#[test]
fn mode_13h_chain4_bytes_are_palette_indexes_shown_doubled() {
    let mut b = bench(256 * 1024);
    b.set_mode(&MODE_13);
    b.dac(7, [0x3f, 0, 0]);
    b.write(0xa0000 + 199 * 320 + 319, &[7]);
    b.refresh();
    assert_eq!((b.fb.width(), b.fb.height()), (640, 400));
    for (x, y) in [(638, 398), (639, 398), (638, 399), (639, 399)] {
        assert_eq!(b.pixel(x, y), 0xff0000, "({x},{y})");
    }
    assert_eq!(b.pixel(637, 399), 0);
    // A palette change alone redraws.
    b.dac(7, [0, 0x3f, 0]);
    assert!(!b.refresh().is_empty());
    assert_eq!(b.pixel(639, 399), 0x00ff00);
    // Chain-4 reads return the byte.
    assert_eq!(b.read(0xa0000 + 199 * 320 + 319), 7);
}

#[test]
fn memory_map_select_decides_which_part_of_the_window_decodes() {
    let mut b = text_bench();
    // GR6 map 3 (0xb8000, 32 KiB): 0xa0000 does not decode.
    b.write(0xa0000, &[0x55]);
    assert_eq!(b.read(0xa0000), 0xff);
    b.write(0xb8000, &[0x41]);
    assert_eq!(b.read(0xb8000), 0x41);
    b.gc(6, 0x0a); // map 2: 0xb0000
    assert_eq!(b.read(0xb0000), 0x41);
    assert_eq!(b.read(0xb8000), 0xff);
}

#[test]
fn guest_controlled_geometry_never_panics() {
    let mut b = bench(64 * 1024);
    for v in [0u8, 0xff, 0x80, 0x1f] {
        b.set_mode(&MODE_3);
        for i in 0..0x19 {
            b.crtc(i, v);
        }
        b.refresh();
        b.set_mode(&MODE_12);
        for i in 0..0x19 {
            b.crtc(i, v);
        }
        b.gc(5, v & 0x60);
        b.seq(1, v);
        b.refresh();
    }
    for a in [0u64, 0x1ffff, 0x20000, u64::MAX] {
        b.core.mem_write(a, 1);
        b.core.mem_read(a);
    }
}

#[test]
fn registers_survive_save_and_restore() {
    let mut b = text_bench();
    b.out(PORT_ATTR_INDEX, 0x05); // flip-flop now "data"
    let mut w = StateWriter::new();
    b.core.save(&mut w);
    let bytes = w.into_bytes();
    let mut other = bench(256 * 1024);
    let mut r = StateReader::new("vga", 1, &bytes);
    let regs = VgaCore::load(&mut r).unwrap();
    r.finish().unwrap();
    other.core.apply(regs);
    assert_eq!(other.core.registers(), b.core.registers());
    let mut r = StateReader::new("vga", 1, &bytes[..bytes.len() - 1]);
    assert!(VgaCore::load(&mut r).is_err());
}

/// Mode 4: 320x200, 4 colours, CGA interleaved banks (shown as 640x400).
const MODE_4: ModeRegs = ModeRegs {
    misc: 0x63,
    seq: [0x03, 0x09, 0x03, 0x00, 0x02],
    crtc: [
        0x2d, 0x27, 0x28, 0x90, 0x2b, 0x80, 0xbf, 0x1f, 0x00, 0xc1, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x9c, 0x8e,
        0x8f, 0x14, 0x00, 0x96, 0xb9, 0xa2, 0xff,
    ],
    attr: [
        0x00, 0x13, 0x15, 0x17, 0x02, 0x04, 0x06, 0x07, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x01, 0x00,
        0x03, 0x00,
    ],
    gc: [0x00, 0x00, 0x00, 0x00, 0x00, 0x30, 0x0f, 0x0f, 0xff],
};

#[test]
fn cga_mode_4_interleaves_even_and_odd_rows_from_two_banks() {
    let mut b = bench(256 * 1024);
    b.set_mode(&MODE_4);
    b.dac(0x17, [0x3f, 0x3f, 0]);
    b.write(0xb8000, &[0xc0]); // row 0, pixel 0 = colour 3
    b.write(0xba000, &[0x30]); // row 1 (odd bank), pixel 1 = colour 3
    b.write(0xb8050 + 1, &[0x03]); // row 2, pixel 7 = colour 3 (odd byte: pixels 4-7)
    b.refresh();
    assert_eq!((b.fb.width(), b.fb.height()), (640, 400));
    let yellow = 0xffff00;
    for (x, y) in [(0, 0), (1, 1), (2, 2), (3, 3), (14, 4), (15, 5)] {
        assert_eq!(b.pixel(x, y), yellow, "({x},{y})");
    }
    for (x, y) in [(2, 0), (0, 2), (0, 4), (13, 4)] {
        assert_eq!(b.pixel(x, y), 0, "({x},{y})");
    }
}
