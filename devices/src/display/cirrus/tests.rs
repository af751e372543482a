//! The Cirrus card driven through its ports, window, BARs and configuration space the way the
//! Cirrus VGA BIOS, Linux's `cirrus` DRM driver and a blitting driver do.

use std::sync::{Arc, Mutex};

use super::*;
use crate::clock::ManualClock;
use crate::display::HostVram;
use crate::pci::PciDevice;

const BAR0: u64 = 0xe000_0000;
const BAR1: u64 = 0xe200_0000;

/// A VRAM service that maps (and records where), so the direct-mapping decisions show.
#[derive(Default)]
struct MappingVram {
    calls: Mutex<Vec<Option<u64>>>,
}
impl VramService for MappingVram {
    fn allocate(&self, size: usize) -> Result<Vram, crate::display::VramError> {
        Vram::anonymous(size)
    }
    fn map(&self, _vram: &Vram, gpa: Option<u64>) -> bool {
        self.calls.lock().unwrap().push(gpa);
        true
    }
    fn sync_dirty(&self, _vram: &Vram, dirty: &mut [u64]) -> bool {
        dirty.fill(!0);
        true
    }
}

fn card_with(service: Arc<dyn VramService>, rom: Option<&[u8]>) -> CirrusVga {
    let clock = Arc::new(ManualClock::new(0));
    CirrusVga::new(8, service, clock, rom, PciResources::none()).unwrap()
}

fn card() -> CirrusVga {
    let mut c = card_with(Arc::new(HostVram), Some(&[0x55, 0xaa, 0x40]));
    cfg_write(&mut c, 0x10, BAR0 as u32);
    cfg_write(&mut c, 0x14, BAR1 as u32);
    cfg_write(&mut c, 0x04, 0x3);
    c
}

fn cfg_write(c: &mut CirrusVga, offset: u16, v: u32) {
    PciDevice::config_write(c, offset, &v.to_le_bytes());
}
fn cfg_read(c: &mut CirrusVga, offset: u16) -> u32 {
    let mut b = [0u8; 4];
    PciDevice::config_read(c, offset, &mut b);
    u32::from_le_bytes(b)
}

fn outb(c: &mut CirrusVga, port: u16, v: u8) {
    BusDevice::write(c, port.into(), &[v]);
}
fn inb(c: &mut CirrusVga, port: u16) -> u8 {
    let mut b = [0];
    BusDevice::read(c, port.into(), &mut b);
    b[0]
}
fn sr(c: &mut CirrusVga, i: u8, v: u8) {
    outb(c, 0x3c4, i);
    outb(c, 0x3c5, v);
}
fn sr_read(c: &mut CirrusVga, i: u8) -> u8 {
    outb(c, 0x3c4, i);
    inb(c, 0x3c5)
}
fn gr(c: &mut CirrusVga, i: u8, v: u8) {
    outb(c, 0x3ce, i);
    outb(c, 0x3cf, v);
}
fn gr_read(c: &mut CirrusVga, i: u8) -> u8 {
    outb(c, 0x3ce, i);
    inb(c, 0x3cf)
}
fn cr_read(c: &mut CirrusVga, i: u8) -> u8 {
    outb(c, 0x3d4, i);
    inb(c, 0x3d5)
}
fn window_write(c: &mut CirrusVga, offset: u64, v: u8) {
    BusDevice::write(c, 0xa_0000 + offset, &[v]);
}
fn window_read(c: &mut CirrusVga, offset: u64) -> u8 {
    let mut b = [0];
    BusDevice::read(c, 0xa_0000 + offset, &mut b);
    b[0]
}
/// BAR1 as Linux's driver uses it: `mmio + (port - 0x3c0)`.
fn mmio_write(c: &mut CirrusVga, offset: u64, v: u8) {
    c.bar_write(1, offset, &[v]);
}
fn mmio_read(c: &mut CirrusVga, offset: u64) -> u8 {
    let mut b = [0];
    c.bar_read(1, offset, &mut b);
    b[0]
}

#[test]
fn pci_identity_is_the_one_linux_cirrus_binds_to() {
    let mut c = card();
    assert_eq!(cfg_read(&mut c, 0x00), 0x00b8_1013);
    assert_eq!(cfg_read(&mut c, 0x2c), 0x1100_1af4, "Linux's cirrus driver needs subsystem 1af4:1100");
    assert_eq!(cfg_read(&mut c, 0x08) >> 8, 0x03_00_00);
    // BAR sizing: 32 MiB prefetchable, 4 KiB, and a 2 KiB ROM (the 3-byte test ROM padded).
    cfg_write(&mut c, 0x10, !0);
    assert_eq!(cfg_read(&mut c, 0x10), 0xfe00_0008);
    cfg_write(&mut c, 0x14, !0);
    assert_eq!(cfg_read(&mut c, 0x14), 0xffff_f000);
    cfg_write(&mut c, 0x30, !0);
    assert_eq!(cfg_read(&mut c, 0x30), 0xffff_f801);
    cfg_write(&mut c, 0x30, 0xe300_0001);
    let mut rom = [0u8; 4];
    c.bar_read(crate::pci::config::ROM_BAR_INDEX, 0, &mut rom);
    assert_eq!(rom, [0x55, 0xaa, 0x40, 0]);
    assert!(CirrusVga::new(5, Arc::new(HostVram), Arc::new(ManualClock::new(0)), None, PciResources::none())
        .unwrap_err()
        .to_string()
        .contains("4, 8 or 16"));
}

#[test]
fn sequencer_extensions_unlock_and_read_back_as_qemu() {
    let mut c = card();
    assert_eq!(sr_read(&mut c, 0x06), 0x0f, "extensions start locked");
    sr(&mut c, 0x06, 0x12);
    assert_eq!(sr_read(&mut c, 0x06), 0x12);
    sr(&mut c, 0x06, 0x57); // & 0x17 = 0x17, not the key
    assert_eq!(sr_read(&mut c, 0x06), 0x0f);
    assert_eq!(sr_read(&mut c, 0x0f), 0x98);
    assert_eq!(sr_read(&mut c, 0x15), 0x04);
    assert_eq!(sr_read(&mut c, 0x1f), 0x2d);
    // SR17's bus type bits are read-only.
    sr(&mut c, 0x17, 0xff);
    assert_eq!(sr_read(&mut c, 0x17), 0xc7 | 0x20);
    // Undecoded indexes read all ones; standard ones still reach the VGA core.
    assert_eq!(sr_read(&mut c, 0x20), 0xff);
    sr(&mut c, 0x02, 0x0f);
    assert_eq!(sr_read(&mut c, 0x02), 0x0f);
    // The cursor position is written through SR10/30/.../F0, the index's top bits being the
    // low bits of the coordinate.
    sr(&mut c, 0xf0, 0x12);
    assert_eq!(c.ext.cursor_x, 0x12 << 3 | 7);
    assert_eq!(sr_read(&mut c, 0x10), 0x12);
    assert_eq!(sr_read(&mut c, 0x30), 0x12);
    sr(&mut c, 0x31, 0x34);
    assert_eq!(c.ext.cursor_y, 0x34 << 3 | 1);
}

#[test]
fn crtc_extensions_and_readbacks() {
    let mut c = card();
    outb(&mut c, 0x3c2, 0x01); // colour ports
    assert_eq!(cr_read(&mut c, 0x27), PART_ID_CLGD5446);
    outb(&mut c, 0x3d4, 0x27);
    outb(&mut c, 0x3d5, 0x00);
    assert_eq!(cr_read(&mut c, 0x27), PART_ID_CLGD5446, "the part id is read-only");
    outb(&mut c, 0x3d4, 0x1b);
    outb(&mut c, 0x3d5, 0x32);
    assert_eq!(cr_read(&mut c, 0x1b), 0x32);
    // CR24 shows the attribute flip-flop, CR26 the attribute index.
    inb(&mut c, 0x3da);
    outb(&mut c, 0x3c0, 0x31);
    assert_eq!(cr_read(&mut c, 0x24), 0x80);
    assert_eq!(cr_read(&mut c, 0x26), 0x31);
    assert_eq!(cr_read(&mut c, 0x30), 0xff);
    // Monochrome CRTC ports do not decode in colour mode.
    outb(&mut c, 0x3b4, 0x27);
    assert_eq!(inb(&mut c, 0x3b5), 0xff);
}

#[test]
fn hidden_dac_opens_after_four_reads_of_the_pixel_mask() {
    let mut c = card();
    // Linux's wreg_hdr: four reads of 0x3c6 then the value (after the VGA BIOS's mask write).
    mmio_write(&mut c, 0x06, 0xff);
    for _ in 0..4 {
        assert_eq!(mmio_read(&mut c, 0x06), 0xff);
    }
    mmio_write(&mut c, 0x06, 0xc1);
    assert_eq!(c.ext.hidden_dac, 0xc1);
    for _ in 0..4 {
        inb(&mut c, 0x3c6);
    }
    assert_eq!(inb(&mut c, 0x3c6), 0xc1, "the fifth read returns the hidden register");
    // An ordinary mask write (without the four reads) leaves it alone, and a read of 0x3c8
    // restarts the count.
    outb(&mut c, 0x3c6, 0x00);
    assert_eq!(c.ext.hidden_dac, 0xc1);
    inb(&mut c, 0x3c6);
    inb(&mut c, 0x3c6);
    inb(&mut c, 0x3c8);
    for _ in 0..4 {
        inb(&mut c, 0x3c6);
    }
    outb(&mut c, 0x3c6, 0xc5);
    assert_eq!(c.ext.hidden_dac, 0xc5);
}

#[test]
fn sr12_routes_the_dac_to_the_cursor_palette() {
    let mut c = card();
    outb(&mut c, 0x3c8, 0x0f);
    for v in [1, 2, 3] {
        outb(&mut c, 0x3c9, v);
    }
    sr(&mut c, 0x12, CURSOR_HIDDEN_PEL);
    outb(&mut c, 0x3c8, 0x1f); // index 0x1f & 0x0f = 15
    for v in [0x3f, 0x20, 0x10] {
        outb(&mut c, 0x3c9, v);
    }
    assert_eq!(&c.ext.hidden_palette[45..48], &[0x3f, 0x20, 0x10]);
    outb(&mut c, 0x3c7, 0x0f);
    assert_eq!([inb(&mut c, 0x3c9), inb(&mut c, 0x3c9), inb(&mut c, 0x3c9)], [0x3f, 0x20, 0x10]);
    sr(&mut c, 0x12, 0);
    outb(&mut c, 0x3c7, 0x0f);
    assert_eq!([inb(&mut c, 0x3c9), inb(&mut c, 0x3c9), inb(&mut c, 0x3c9)], [1, 2, 3], "the VGA palette is untouched");
}

#[test]
fn gr0_gr1_keep_eight_bits_for_the_blitter_while_the_vga_sees_four() {
    let mut c = card();
    gr(&mut c, 0x00, 0xab);
    gr(&mut c, 0x01, 0xcd);
    assert_eq!(gr_read(&mut c, 0x00), 0xab);
    assert_eq!(gr_read(&mut c, 0x01), 0xcd);
    assert_eq!(c.core.registers().gc[0], 0x0b);
    assert_eq!(c.core.registers().gc[1], 0x0d);
    gr(&mut c, 0x05, 0xff);
    assert_eq!(gr_read(&mut c, 0x05), 0x7f);
    gr(&mut c, 0x21, 0xff);
    assert_eq!(gr_read(&mut c, 0x21), 0x1f, "blit width is 13 bits");
    gr(&mut c, 0x2e, 0xff);
    assert_eq!(gr_read(&mut c, 0x2e), 0x3f, "blit addresses are 22 bits");
    assert_eq!(gr_read(&mut c, 0x3a), 0xff);
}

#[test]
fn banked_window_follows_gr9_gra_and_the_granularity() {
    let mut c = card();
    sr(&mut c, 0x07, SR7_SVGA);
    // Single bank, 4 KiB granularity: offset 2 = 8 KiB.
    gr(&mut c, 0x09, 2);
    window_write(&mut c, 0x10, 0x5a);
    assert_eq!(c.vram().read_u8(0x2010), 0x5a);
    assert_eq!(window_read(&mut c, 0x10), 0x5a);
    // The second half of a single 64 KiB bank is the same bank 32 KiB on.
    window_write(&mut c, 0x8000, 0x6b);
    assert_eq!(c.vram().read_u8(0x2000 + 0x8000), 0x6b);
    // 16 KiB granularity.
    gr(&mut c, 0x0b, GRB_GRANULARITY_16K);
    window_write(&mut c, 0x20, 0x7c);
    assert_eq!(c.vram().read_u8(0x8020), 0x7c);
    // Dual banks: 0xa8000 uses GR0A.
    gr(&mut c, 0x0b, GRB_GRANULARITY_16K | GRB_DUAL_BANK);
    gr(&mut c, 0x0a, 5);
    window_write(&mut c, 0x8001, 0x8d);
    assert_eq!(c.vram().read_u8(5 * 0x4000 + 1), 0x8d);
    // A bank past the addressable 4 MiB (255 * 16 KiB is just under it; its top falls off).
    gr(&mut c, 0x09, 0xff);
    window_write(&mut c, 0x4000, 0x11);
    assert_eq!(window_read(&mut c, 0x4000), 0xff, "bank offset + 16 KiB is past 4 MiB: not decoded");
    assert_eq!(c.vram().read_u8(ADDRESSABLE_VRAM), 0, "nothing written past the addressable VRAM");
    // Without SR07 bit 0 the window is the VGA's.
    sr(&mut c, 0x07, 0);
    sr(&mut c, 0x04, 0x08); // chain 4
    sr(&mut c, 0x02, 0x0f);
    window_write(&mut c, 0x3, 0x22);
    assert_eq!(c.vram().read_u8(3), 0x22);
}

#[test]
fn write_modes_4_and_5_expand_cpu_bytes_to_pixels() {
    let mut c = card();
    sr(&mut c, 0x07, SR7_SVGA);
    gr(&mut c, 0x0b, GRB_EXT_WRITE_MODES);
    gr(&mut c, 0x01, 0xee); // foreground
    gr(&mut c, 0x00, 0x11); // background
    gr(&mut c, 0x05, 0x05);
    window_write(&mut c, 0x100, 0b1010_0001);
    let mut got = [0u8; 8];
    c.vram().read(0x100, &mut got);
    assert_eq!(got, [0xee, 0x11, 0xee, 0x11, 0x11, 0x11, 0x11, 0xee]);
    gr(&mut c, 0x05, 0x04);
    window_write(&mut c, 0x100, 0b0100_0000);
    c.vram().read(0x100, &mut got);
    assert_eq!(got, [0xee, 0xee, 0xee, 0x11, 0x11, 0x11, 0x11, 0xee], "mode 4 leaves clear bits alone");
}

/// Linux's cirrus_mode_set + format/pitch set for `w` x `h` at `sr07`/`hdr` and `pitch` bytes,
/// through BAR1 as the driver does it (values from drivers/gpu/drm/tiny/cirrus.c).
fn linux_mode_set(c: &mut CirrusVga, w: u32, h: u32, sr07: u8, hdr: u8, pitch: u32) {
    let crt = |c: &mut CirrusVga, i: u8, v: u8| {
        mmio_write(c, 0x14, i);
        mmio_write(c, 0x15, v);
    };
    // (No write to 0x3c2: the driver relies on the colour decode the card starts with.)
    // The VGA BIOS's mode set wrote the pixel mask, which restarts the hidden-DAC count.
    outb(c, 0x3c6, 0xff);
    let vdispend = h - 1;
    crt(c, 0x11, 0x20);
    crt(c, 0x01, (w / 8 - 1) as u8);
    crt(c, 0x12, vdispend as u8);
    let mut ovf = 0x10;
    if vdispend & 0x100 != 0 {
        ovf |= 0x02;
    }
    if vdispend & 0x200 != 0 {
        ovf |= 0x40;
    }
    crt(c, 0x07, ovf);
    crt(c, 0x09, 0x40);
    crt(c, 0x17, 0x03);
    mmio_write(c, 0x04, 0x07);
    mmio_write(c, 0x05, sr07);
    mmio_write(c, 0x0e, 0x05);
    mmio_write(c, 0x0f, 0x40);
    mmio_write(c, 0x0e, 0x06);
    mmio_write(c, 0x0f, 0x01);
    for _ in 0..4 {
        mmio_read(c, 0x06);
    }
    mmio_write(c, 0x06, hdr);
    crt(c, 0x13, (pitch / 8) as u8);
    crt(c, 0x1b, 0x22 | ((pitch >> 7) & 0x10) as u8);
    crt(c, 0x0c, 0);
    crt(c, 0x0d, 0);
    crt(c, 0x1d, 0);
    // Unblank (PAS).
    inb(c, 0x3da);
    outb(c, 0x3c0, 0x20);
}

#[test]
fn linux_modesets_scan_out_the_linear_framebuffer_at_every_depth() {
    for (sr07, hdr, bpp, pixel, want) in [
        (0x19u8, 0xc5u8, 4usize, vec![0x56, 0x34, 0x12, 0x00], 0x12_3456u32),
        (0x15, 0xc5, 3, vec![0x56, 0x34, 0x12], 0x12_3456),
        (0x17, 0xc1, 2, vec![0x00, 0xf8], 0xff_0000), // RGB565 red
        (0x17, 0xc0, 2, vec![0x00, 0x7c], 0xff_0000), // RGB555 red
    ] {
        let mut c = card();
        let (w, h) = (640u32, 480u32);
        let pitch = w * bpp as u32;
        linux_mode_set(&mut c, w, h, sr07, hdr, pitch);
        // A pixel at (10, 20) through BAR0.
        let at = 20 * pitch as u64 + 10 * bpp as u64;
        c.bar_write(0, at, &pixel);
        let mut fb = Framebuffer::default();
        c.refresh(&mut fb);
        assert_eq!((fb.width(), fb.height()), (w, h), "sr07 {sr07:#x}");
        assert_eq!(fb.row(20)[10], want, "sr07 {sr07:#x} hdr {hdr:#x}");
        assert_eq!(fb.row(20)[11], 0);
        // A later write shows on the next refresh (the device tracks its own writes).
        c.bar_write(0, at + bpp as u64, &pixel);
        c.refresh(&mut fb);
        assert_eq!(fb.row(20)[11], want);
    }
}

#[test]
fn start_address_and_pitch_extensions_move_the_scanout() {
    let mut c = card();
    linux_mode_set(&mut c, 640, 480, 0x11, 0x00, 2056);
    assert_eq!(c.extended_scanout().unwrap().stride, 2056, "CR1B bit 4 is offset bit 8");
    // Start address in dwords, bits 16..19 in CR1B/CR1D (Linux's cirrus_set_start_address).
    let addr: u32 = 0x9_abcd;
    for (i, v) in [(0x0c, (addr >> 8) as u8), (0x0d, addr as u8)] {
        outb(&mut c, 0x3d4, i);
        outb(&mut c, 0x3d5, v);
    }
    outb(&mut c, 0x3d4, 0x1b);
    let cr1b = (inb(&mut c, 0x3d5) & 0xf2) | ((addr >> 16) & 1) as u8 | ((addr >> 15) & 0x0c) as u8;
    outb(&mut c, 0x3d5, cr1b);
    outb(&mut c, 0x3d4, 0x1d);
    outb(&mut c, 0x3d5, ((addr >> 12) & 0x80) as u8);
    assert_eq!(c.extended_scanout().unwrap().offset, addr as usize * 4);
}

#[allow(clippy::too_many_arguments)]
fn blit_regs(c: &mut CirrusVga, w: u16, h: u16, dst: u32, dpitch: u16, src: u32, spitch: u16, mode: u8, rop: u8) {
    let regs = [
        (0x20, (w - 1) as u8),
        (0x21, ((w - 1) >> 8) as u8),
        (0x22, (h - 1) as u8),
        (0x23, ((h - 1) >> 8) as u8),
        (0x24, dpitch as u8),
        (0x25, (dpitch >> 8) as u8),
        (0x26, spitch as u8),
        (0x27, (spitch >> 8) as u8),
        (0x28, dst as u8),
        (0x29, (dst >> 8) as u8),
        (0x2a, (dst >> 16) as u8),
        (0x2c, src as u8),
        (0x2d, (src >> 8) as u8),
        (0x2e, (src >> 16) as u8),
        (0x30, mode),
        (0x32, rop),
    ];
    for (i, v) in regs {
        gr(c, i, v);
    }
}

#[test]
fn port_blits_run_and_leave_the_status_idle() {
    let mut c = card();
    c.vram().write(0x1000, &[1, 2, 3, 4, 5, 6, 7, 8]);
    blit_regs(&mut c, 4, 2, 0x2000, 16, 0x1000, 4, 0, ROP_SRC);
    gr(&mut c, 0x31, BLT_START);
    assert_eq!(gr_read(&mut c, 0x31) & (BLT_START | BLT_BUSY), 0);
    let mut got = [0u8; 20];
    c.vram().read(0x2000, &mut got);
    assert_eq!(&got[..4], &[1, 2, 3, 4]);
    assert_eq!(&got[16..20], &[5, 6, 7, 8]);

    // A blit whose destination runs past VRAM is refused whole, and still completes: a driver
    // polling GR31 sees the engine idle.
    let before = c.vram().read_u8(0x3f_ffff);
    blit_regs(&mut c, 64, 2, 0x3f_fff0, 64, 0, 64, 0, ROP_1);
    gr(&mut c, 0x31, BLT_START);
    assert_eq!(gr_read(&mut c, 0x31) & (BLT_START | BLT_BUSY), 0);
    assert_eq!(c.vram().read_u8(0x3f_ffff), before);
    assert_eq!(c.vram().read_u8(0x40_0000), 0, "the 8 MiB card's upper half is not addressable by blits");

    // GR31 autostart: writing GR2A (which drivers write last) starts the blit.
    blit_regs(&mut c, 4, 1, 0x3000, 16, 0x1000, 4, 0, ROP_SRC);
    assert_eq!(c.vram().read_u8(0x3003), 0);
    gr(&mut c, 0x31, BLT_AUTOSTART);
    gr(&mut c, 0x2a, 0);
    assert_eq!(c.vram().read_u8(0x3003), 4);
}

#[test]
fn memory_mapped_blit_registers_in_bar1_and_at_0xb8000() {
    let mut c = card();
    // Solid fill with the foreground colour, all through BAR1 + 0x100.
    let set = |c: &mut CirrusVga, o: u64, v: u8| mmio_write(c, 0x100 + o, v);
    set(&mut c, 0x04, 0x77); // fg byte 0
    set(&mut c, 0x08, 7); // width - 1
    set(&mut c, 0x0a, 1); // height - 1
    set(&mut c, 0x0c, 0x20); // dst pitch
    set(&mut c, 0x10, 0x00);
    set(&mut c, 0x11, 0x40);
    set(&mut c, 0x12, 0x00);
    set(&mut c, 0x18, BLTMODE_PATTERNCOPY | BLTMODE_COLOREXPAND);
    set(&mut c, 0x1a, ROP_SRC);
    set(&mut c, 0x1b, BLTMODEEXT_SOLIDFILL);
    assert_eq!(mmio_read(&mut c, 0x100 + 0x08), 7);
    set(&mut c, 0x40, BLT_START);
    assert_eq!(mmio_read(&mut c, 0x140) & BLT_BUSY, 0);
    assert_eq!(c.vram().read_u8(0x4000 + 0x20 + 7), 0x77);
    assert_eq!(c.vram().read_u8(0x4000 + 8), 0);

    // At 0xb8000 once SR17 enables MMIO without USE_PCIADDR, in extended mode.
    sr(&mut c, 0x07, SR7_SVGA);
    assert_eq!(window_read(&mut c, 0x18008), 0xff, "not decoded until SR17 enables it");
    sr(&mut c, 0x17, SR17_MMIO_ENABLE);
    assert_eq!(window_read(&mut c, 0x18008), 7);
    window_write(&mut c, 0x18004, 0x55);
    assert_eq!(gr_read(&mut c, 0x01), 0x55);
    // With USE_PCIADDR they sit in the last 256 bytes of the linear window instead.
    sr(&mut c, 0x17, SR17_MMIO_ENABLE | SR17_MMIO_USE_PCIADDR);
    let mut b = [0];
    c.bar_read(0, (ADDRESSABLE_VRAM - 256 + 8) as u64, &mut b);
    assert_eq!(b[0], 7);
}

#[test]
fn system_to_screen_blits_take_their_data_through_the_window_and_bar0() {
    let mut c = card();
    sr(&mut c, 0x07, SR7_SVGA);
    blit_regs(&mut c, 6, 2, 0x500, 0x10, 0, 0, BLTMODE_MEMSYSSRC, ROP_SRC);
    gr(&mut c, 0x31, BLT_START);
    assert_ne!(gr_read(&mut c, 0x31) & BLT_BUSY, 0, "busy while waiting for data");
    // First line through the window (8 bytes: 6 padded to a dword), second through BAR0+16 MiB.
    BusDevice::write(&mut c, 0xa_0000, &[1, 2, 3, 4, 5, 6, 0, 0]);
    c.bar_write(0, BAR0_BITBLT_OFFSET, &[9, 8, 7, 6, 5, 4, 0, 0]);
    assert_eq!(gr_read(&mut c, 0x31) & BLT_BUSY, 0);
    let mut got = [0u8; 6];
    c.vram().read(0x500, &mut got);
    assert_eq!(got, [1, 2, 3, 4, 5, 6]);
    c.vram().read(0x510, &mut got);
    assert_eq!(got, [9, 8, 7, 6, 5, 4]);
    // The window is memory again afterwards.
    gr(&mut c, 0x09, 0);
    window_write(&mut c, 0x0, 0xaa);
    assert_eq!(c.vram().read_u8(0), 0xaa);

    // GR31 reset abandons a blit waiting for data.
    blit_regs(&mut c, 6, 2, 0x500, 0x10, 0, 0, BLTMODE_MEMSYSSRC, ROP_SRC);
    gr(&mut c, 0x31, BLT_START);
    gr(&mut c, 0x31, BLT_RESET);
    gr(&mut c, 0x31, 0);
    assert_eq!(gr_read(&mut c, 0x31) & BLT_BUSY, 0);
    window_write(&mut c, 0x1, 0xbb);
    assert_eq!(c.vram().read_u8(1), 0xbb);
}

#[test]
fn vram_is_mapped_into_bar0_only_while_no_access_needs_the_device() {
    let service = Arc::new(MappingVram::default());
    let mut c = card_with(service.clone(), None);
    cfg_write(&mut c, 0x10, BAR0 as u32);
    assert!(service.calls.lock().unwrap().is_empty(), "Memory Space is still off");
    cfg_write(&mut c, 0x04, 0x2);
    assert_eq!(*service.calls.lock().unwrap(), vec![Some(BAR0)]);
    // "By 8" addressing needs every linear access: unmapped, and mapped back after.
    gr(&mut c, 0x0b, GRB_BY8);
    gr(&mut c, 0x0b, 0);
    // MMIO at the top of the linear window likewise.
    sr(&mut c, 0x17, SR17_MMIO_ENABLE | SR17_MMIO_USE_PCIADDR);
    sr(&mut c, 0x17, 0);
    // Memory Space off unmaps.
    cfg_write(&mut c, 0x04, 0x0);
    assert_eq!(*service.calls.lock().unwrap(), vec![Some(BAR0), None, Some(BAR0), None, Some(BAR0), None]);
}

#[test]
fn state_round_trips_and_hostile_payloads_are_refused() {
    let mut c = card();
    linux_mode_set(&mut c, 640, 480, 0x19, 0xc5, 2560);
    c.bar_write(0, 100, &[1, 2, 3, 4]);
    gr(&mut c, 0x2f, 0x03);
    let saved = crate::snapshot::save_to_vec(&c);
    let mut d = card();
    crate::snapshot::restore_from(&mut d, CirrusVga::VERSION, &saved).unwrap();
    assert_eq!(d.ext, c.ext);
    assert_eq!(d.core.registers(), c.core.registers());
    assert_eq!(d.vram().read_u8(103), 4);
    let mut fb = Framebuffer::default();
    d.refresh(&mut fb);
    assert_eq!((fb.width(), fb.height()), (640, 480));
    crate::snapshot::fuzz::hostile_payloads(card, &saved);
}

#[test]
fn debians_cirrus_vga_bios_is_served_in_the_rom_bar_with_matching_ids() {
    // SeaBIOS's vgarom_setup needs 55 aa, PCIR ids equal to the device's and a zero checksum.
    let Ok(image) = std::fs::read("/usr/share/seabios/vgabios-cirrus.bin") else {
        eprintln!("skipped: /usr/share/seabios/vgabios-cirrus.bin not installed (package seabios)");
        return;
    };
    let mut c = card_with(Arc::new(HostVram), Some(&image));
    cfg_write(&mut c, 0x30, !0);
    assert_eq!(cfg_read(&mut c, 0x30), 0xffff_0001, "39424 bytes round up to a 64 KiB ROM BAR");
    cfg_write(&mut c, 0x30, 0xe300_0001);
    cfg_write(&mut c, 0x04, 0x2);
    let mut rom = vec![0u8; image.len()];
    c.bar_read(crate::pci::config::ROM_BAR_INDEX, 0, &mut rom);
    assert_eq!(&rom[..2], &[0x55, 0xaa]);
    let pcir = u16::from_le_bytes([rom[0x18], rom[0x19]]) as usize;
    assert_eq!(&rom[pcir..pcir + 4], b"PCIR");
    assert_eq!(u16::from_le_bytes([rom[pcir + 4], rom[pcir + 5]]), VENDOR_ID);
    assert_eq!(u16::from_le_bytes([rom[pcir + 6], rom[pcir + 7]]), DEVICE_ID);
    let declared = rom[2] as usize * 512;
    assert_eq!(rom[..declared].iter().fold(0u8, |a, &b| a.wrapping_add(b)), 0, "checksum");
}

#[test]
fn attach_wires_ports_window_bars_and_display_into_the_machine() {
    use crate::bus::AddressSpace;
    use crate::interrupt::{RecordingInterruptService, RecordingInterrupts};
    use crate::memory::TestMemory;
    use crate::pc::{DeviceBuilder, Platform};
    use crate::pci::PciAddress;
    use crate::vm_control::RecordingVmControl;
    let platform = Platform {
        interrupts: Arc::new(RecordingInterruptService(RecordingInterrupts::new())),
        control: Arc::new(RecordingVmControl::default()),
        timers: crate::timer::ManualTimers::new(Arc::new(ManualClock::new(0))),
        dma_memory: Arc::new(TestMemory::new(1 << 20)),
        vram: Arc::new(HostVram),
    };
    let mut b = DeviceBuilder::new(platform);
    let options = CirrusOptions { vgamem_mb: 8, slot: Some(2), rom: None };
    let card = attach(&mut b, options).unwrap();
    assert_eq!(b.displays().len(), 1);
    assert_eq!(b.saved().len(), 1);
    let bus = b.bus.clone();
    let io = bus.ranges(AddressSpace::Io);
    assert!(io.iter().any(|(base, len, _)| *base == 0x3b0 && *len == 0x30), "{io:?}");
    let mmio = bus.ranges(AddressSpace::Mmio);
    assert!(mmio.iter().any(|(base, len, _)| *base == 0xa_0000 && *len == 0x2_0000), "{mmio:?}");
    // Through the bus: the card answers at 00:02.0, its BAR0 reaches VRAM, its ports decode.
    let at = PciAddress::new(0, 2, 0);
    let mut id = [0u8; 4];
    bus.pci_config_read(at, 0, &mut id);
    assert_eq!(u32::from_le_bytes(id), 0x00b8_1013);
    bus.pci_config_write(at, 0x10, &(BAR0 as u32).to_le_bytes());
    bus.pci_config_write(at, 0x04, &2u32.to_le_bytes());
    bus.mmio_write(BAR0 + 0x1234, &[0xab]);
    assert_eq!(card.lock().unwrap().vram().read_u8(0x1234), 0xab);
    bus.pio_write(0x3c4, &[0x06, 0x12]); // outw: index then data
    let mut v = [0];
    bus.pio_read(0x3c5, &mut v);
    assert_eq!(v[0], 0x12);
    // A bad size is refused with the card named.
    let e = attach(&mut b, CirrusOptions { vgamem_mb: 3, slot: None, rom: None }).unwrap_err().to_string();
    assert!(e.contains("4, 8 or 16"), "{e}");
}
