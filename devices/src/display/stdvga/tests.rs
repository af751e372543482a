//! The standard VGA driven as SeaVGABIOS and Linux's bochs-drm drive it: PCI config space, the
//! DISPI ports and BAR2, BAR0 accesses, the legacy window.

use std::sync::{Arc, Mutex};

use super::spec::*;
use super::*;
use crate::clock::ManualClock;
use crate::display::{HostVram, Rect, VramError};
use crate::pci::PciDevice;

const MIB: usize = 1 << 20;

fn card_with(vram_mb: usize, service: Arc<dyn VramService>, rom: Option<OptionRom>) -> StdVga {
    let vram = service.allocate(vram_mb * MIB).unwrap();
    StdVga::new(PciResources::none(), vram, service, Arc::new(ManualClock::new(0)), rom).unwrap()
}

fn card() -> StdVga {
    card_with(16, Arc::new(HostVram), None)
}

fn cfg_read32(v: &mut StdVga, offset: u16) -> u32 {
    let mut b = [0u8; 4];
    v.config_read(offset, &mut b);
    u32::from_le_bytes(b)
}

fn cfg_write32(v: &mut StdVga, offset: u16, value: u32) {
    v.config_write(offset, &value.to_le_bytes());
}

fn dispi(v: &mut StdVga, index: usize, value: u16) {
    v.dispi_port_write(PORT_DISPI_INDEX, &(index as u16).to_le_bytes());
    v.dispi_port_write(PORT_DISPI_DATA, &value.to_le_bytes());
}

fn dispi_get(v: &mut StdVga, index: usize) -> u16 {
    v.dispi_port_write(PORT_DISPI_INDEX, &(index as u16).to_le_bytes());
    let mut b = [0u8; 2];
    v.dispi_port_read(PORT_DISPI_DATA, &mut b);
    u16::from_le_bytes(b)
}

/// bochs-drm's bochs_hw_setmode sequence, then unblanking through 0x3c0.
fn set_mode(v: &mut StdVga, xres: u16, yres: u16, bpp: u16) {
    dispi(v, INDEX_ENABLE, 0);
    dispi(v, INDEX_BPP, bpp);
    dispi(v, INDEX_XRES, xres);
    dispi(v, INDEX_YRES, yres);
    dispi(v, INDEX_BANK, 0);
    dispi(v, INDEX_VIRT_WIDTH, xres);
    dispi(v, INDEX_VIRT_HEIGHT, 0xffff);
    dispi(v, INDEX_X_OFFSET, 0);
    dispi(v, INDEX_Y_OFFSET, 0);
    dispi(v, INDEX_ENABLE, ENABLE_ENABLED | ENABLE_LFB);
    unblank(v);
}

fn unblank(v: &mut StdVga) {
    v.core.io_write(0x3c2, 0x01);
    v.core.io_read(0x3da);
    v.core.io_write(0x3c0, 0x20);
}

fn refresh(v: &mut StdVga, fb: &mut Framebuffer) -> Vec<Rect> {
    v.refresh(fb);
    fb.take_dirty().rects(fb.width(), fb.height())
}

#[test]
fn pci_identity_and_bar_sizes_are_qemus() {
    let rom = OptionRom::new(&[0x55, 0xaa, 0, 0, 0, 0, 0, 0], VENDOR_ID, DEVICE_ID).unwrap();
    let mut v = card_with(16, Arc::new(HostVram), Some(rom));
    assert_eq!(cfg_read32(&mut v, 0x00), 0x1111_1234);
    assert_eq!(cfg_read32(&mut v, 0x08), 0x0300_0002, "class 0300, revision 2");
    assert_eq!(cfg_read32(&mut v, 0x2c), 0x1100_1af4);
    assert_eq!(cfg_read32(&mut v, 0x3c) >> 8 & 0xff, 0, "no interrupt pin");
    // The sizing protocol: all ones, read back the mask.
    for (bar, want) in [(0x10, 0xff00_0008), (0x14, 0), (0x18, 0xffff_f000)] {
        cfg_write32(&mut v, bar, 0xffff_ffff);
        assert_eq!(cfg_read32(&mut v, bar), want, "BAR at {bar:#x}");
    }
    cfg_write32(&mut v, 0x30, 0xffff_ffff);
    assert_eq!(cfg_read32(&mut v, 0x30), 0xffff_f801, "2 KiB ROM BAR with its enable bit");
}

#[test]
fn vgamem_is_clamped_and_rounded_up_to_a_power_of_two() {
    assert_eq!(vram_size(0), MIB);
    assert_eq!(vram_size(3), 4 * MIB);
    assert_eq!(vram_size(16), 16 * MIB);
    assert_eq!(vram_size(600), 512 * MIB);
}

#[test]
fn dispi_id_memory_size_and_getcaps() {
    let mut v = card();
    assert_eq!(dispi_get(&mut v, INDEX_ID), ID5);
    dispi(&mut v, INDEX_ID, ID0);
    assert_eq!(dispi_get(&mut v, INDEX_ID), ID0);
    dispi(&mut v, INDEX_ID, 0x1234);
    assert_eq!(dispi_get(&mut v, INDEX_ID), ID0, "only B0C0-B0C5 are taken");
    assert_eq!(dispi_get(&mut v, INDEX_VIDEO_MEMORY_64K), 256);
    dispi(&mut v, INDEX_XRES, 640);
    dispi(&mut v, INDEX_ENABLE, ENABLE_GETCAPS);
    assert_eq!(
        [dispi_get(&mut v, INDEX_XRES), dispi_get(&mut v, INDEX_YRES), dispi_get(&mut v, INDEX_BPP)],
        [MAX_XRES, MAX_YRES, MAX_BPP]
    );
    dispi(&mut v, INDEX_ENABLE, 0);
    assert_eq!(dispi_get(&mut v, INDEX_XRES), 640);
    assert_eq!(dispi_get(&mut v, 0x0b), 0, "no register past VIDEO_MEMORY_64K");
}

#[test]
fn a_32bpp_mode_scans_out_bar0_honouring_virt_width_and_offsets() {
    let mut v = card();
    set_mode(&mut v, 1024, 768, 32);
    assert_eq!(dispi_get(&mut v, INDEX_VIRT_HEIGHT), 4096, "16 MiB / 4096-byte lines");
    // A pixel at (10, 20) through trapped BAR0 writes.
    v.write_bar(VRAM_BAR, (20 * 1024 + 10) * 4, &0x00ab_cdefu32.to_le_bytes());
    let mut fb = Framebuffer::default();
    refresh(&mut v, &mut fb);
    assert_eq!((fb.width(), fb.height()), (1024, 768));
    assert_eq!(fb.row(20)[10], 0xabcdef);
    assert!(refresh(&mut v, &mut fb).is_empty(), "idle: nothing redrawn");
    v.write_bar(VRAM_BAR, (700 * 1024 + 1000) * 4, &0x0011_2233u32.to_le_bytes());
    assert_eq!(refresh(&mut v, &mut fb), vec![Rect::new(992, 688, 16, 16)]);
    // Page flip as bochs-drm does it: a wider virtual width and a Y offset.
    dispi(&mut v, INDEX_VIRT_WIDTH, 2048);
    dispi(&mut v, INDEX_Y_OFFSET, 100);
    dispi(&mut v, INDEX_X_OFFSET, 8);
    v.write_bar(VRAM_BAR, ((100 + 5) * 2048 + 8 + 3) * 4, &0x0044_5566u32.to_le_bytes());
    refresh(&mut v, &mut fb);
    assert_eq!(fb.row(5)[3], 0x445566);
}

#[test]
fn geometry_writes_are_clamped_the_way_qemu_does() {
    let mut v = card_with(1, Arc::new(HostVram), None);
    set_mode(&mut v, 1001, 600, 7);
    assert_eq!(dispi_get(&mut v, INDEX_XRES), 1000, "rounded down to a multiple of 8");
    assert_eq!(dispi_get(&mut v, INDEX_BPP), 8, "unknown depth becomes 8");
    assert_eq!(dispi_get(&mut v, INDEX_YRES), 600);
    dispi(&mut v, INDEX_BPP, 32);
    assert_eq!(dispi_get(&mut v, INDEX_YRES), 262, "1 MiB / 4000-byte lines");
    dispi(&mut v, INDEX_XRES, 0);
    assert_eq!(dispi_get(&mut v, INDEX_XRES), 8);
    assert_eq!(dispi_get(&mut v, INDEX_VIRT_WIDTH), 1000, "virtual width stays at least xres");
    dispi(&mut v, INDEX_XRES, 20000);
    assert_eq!(dispi_get(&mut v, INDEX_XRES), MAX_XRES);
    dispi(&mut v, INDEX_Y_OFFSET, 5000);
    assert_eq!(dispi_get(&mut v, INDEX_Y_OFFSET), 0, "an offset past VRAM resets both offsets");
    dispi(&mut v, INDEX_BANK, 0xff);
    assert_eq!(dispi_get(&mut v, INDEX_BANK), 15, "bank masked to VRAM / 64 KiB - 1");
    let mut fb = Framebuffer::default();
    v.refresh(&mut fb);
    assert!(fb.width() as usize * fb.height() as usize * 4 <= 2 * MIB);
}

#[test]
fn enabling_clears_the_visible_memory_unless_noclearmem() {
    let mut v = card();
    v.write_bar(VRAM_BAR, 0, &[1, 2, 3, 4]);
    dispi(&mut v, INDEX_XRES, 640);
    dispi(&mut v, INDEX_YRES, 480);
    dispi(&mut v, INDEX_BPP, 8);
    dispi(&mut v, INDEX_ENABLE, ENABLE_ENABLED | ENABLE_NOCLEARMEM);
    assert_eq!(v.core.vram().read_u8(0), 1);
    dispi(&mut v, INDEX_ENABLE, 0);
    dispi(&mut v, INDEX_ENABLE, ENABLE_ENABLED);
    assert_eq!(v.core.vram().read_u8(0), 0);
}

#[test]
fn banked_window_and_8bit_dac_in_an_8bpp_mode() {
    let mut v = card();
    dispi(&mut v, INDEX_XRES, 640);
    dispi(&mut v, INDEX_YRES, 480);
    dispi(&mut v, INDEX_BPP, 8);
    dispi(&mut v, INDEX_ENABLE, ENABLE_ENABLED | ENABLE_8BIT_DAC);
    unblank(&mut v);
    // Bank 4 = VRAM 256 KiB: line 409 (256 KiB / 640), pixel 384. SeaVGABIOS enables all
    // planes for packed-pixel modes (the map mask gates chain-4 writes).
    v.core.io_write_bytes(0x3c4, &[0x02, 0x0f]);
    dispi(&mut v, INDEX_BANK, 4);
    v.core.mem_write(0, 9);
    assert_eq!(v.core.vram().read_u8(4 << 16), 9);
    assert_eq!(v.core.mem_read(0), 9);
    // 8-bit DAC: components are used as they are.
    v.core.io_write(0x3c8, 9);
    for c in [0x80, 0x40, 0x20] {
        v.core.io_write(0x3c9, c);
    }
    let mut fb = Framebuffer::default();
    v.refresh(&mut fb);
    let at = 4 << 16;
    assert_eq!(fb.row((at / 640) as u32)[at % 640], 0x804020);
}

#[test]
fn bar2_has_dispi_vga_ports_and_qext_with_byte_order() {
    let mut v = card();
    let mut b2 = [0u8; 2];
    v.read_bar(MMIO_BAR, MMIO_DISPI, &mut b2);
    assert_eq!(u16::from_le_bytes(b2), ID5);
    for (i, val) in [(INDEX_BPP, 32u16), (INDEX_XRES, 64), (INDEX_YRES, 64), (INDEX_ENABLE, 0x41)] {
        v.write_bar(MMIO_BAR, MMIO_DISPI + 2 * i as u64, &val.to_le_bytes());
    }
    // Unblank through the VGA ports at 0x400: 0x3c2 at 0x402, 0x3da at 0x41a, 0x3c0 at 0x400.
    v.write_bar(MMIO_BAR, 0x402, &[0x01]);
    let mut b1 = [0u8; 1];
    v.read_bar(MMIO_BAR, 0x41a, &mut b1);
    v.write_bar(MMIO_BAR, 0x400, &[0x20]);
    // Empty and odd-sized accesses are harmless.
    v.write_bar(MMIO_BAR, MMIO_DISPI, &[]);
    v.read_bar(MMIO_BAR, MMIO_DISPI, &mut []);
    v.write_bar(MMIO_BAR, MMIO_QEXT_BYTE_ORDER, &[1, 2, 3]);
    let mut header = [0u8; 8];
    v.read_bar(MMIO_BAR, MMIO_EDID, &mut header);
    assert_eq!(header, [0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0], "an EDID header at 0");
    let mut b4 = [0u8; 4];
    v.read_bar(MMIO_BAR, MMIO_QEXT, &mut b4);
    assert_eq!(u32::from_le_bytes(b4), 8);
    v.read_bar(MMIO_BAR, MMIO_QEXT_BYTE_ORDER, &mut b4);
    assert_eq!(u32::from_le_bytes(b4), BYTE_ORDER_LITTLE);
    v.write_bar(VRAM_BAR, 0, &[0x11, 0x22, 0x33, 0x00]);
    let mut fb = Framebuffer::default();
    v.refresh(&mut fb);
    assert_eq!(fb.row(0)[0], 0x332211);
    v.write_bar(MMIO_BAR, MMIO_QEXT_BYTE_ORDER, &BYTE_ORDER_BIG.to_le_bytes());
    v.refresh(&mut fb);
    assert_eq!(fb.row(0)[0], 0x223300, "big-endian XRGB: bytes x r g b");
}

#[test]
fn clearing_pas_blanks_the_linear_scanout() {
    let mut v = card();
    set_mode(&mut v, 64, 64, 32);
    v.write_bar(VRAM_BAR, 0, &0xffffffu32.to_le_bytes());
    let mut fb = Framebuffer::default();
    v.refresh(&mut fb);
    assert_eq!(fb.row(0)[0], 0xffffff);
    v.core.io_read(0x3da);
    v.core.io_write(0x3c0, 0x00);
    v.refresh(&mut fb);
    assert_eq!(fb.row(0)[0], 0, "blanked");
    unblank(&mut v);
    v.refresh(&mut fb);
    assert_eq!(fb.row(0)[0], 0xffffff);
}

#[test]
fn disabling_vbe_returns_to_vga_rendering() {
    let mut v = card();
    set_mode(&mut v, 64, 64, 32);
    let mut fb = Framebuffer::default();
    v.refresh(&mut fb);
    assert_eq!(fb.width(), 64);
    dispi(&mut v, INDEX_ENABLE, 0);
    // VGA registers all zero: a 1-column text screen of 9x1 cells, 8 pixels... whatever the
    // CRTC says; what matters is that the VBE picture is gone.
    v.refresh(&mut fb);
    assert_ne!((fb.width(), fb.height()), (64, 64));
}

/// A backend that maps BAR0 and records where.
#[derive(Default)]
struct MappingVram {
    maps: Mutex<Vec<Option<u64>>>,
}

impl VramService for MappingVram {
    fn allocate(&self, size: usize) -> Result<Vram, VramError> {
        Vram::anonymous(size)
    }
    fn map(&self, _vram: &Vram, gpa: Option<u64>) -> bool {
        self.maps.lock().unwrap().push(gpa);
        gpa.is_some()
    }
    fn sync_dirty(&self, _vram: &Vram, dirty: &mut [u64]) -> bool {
        dirty[0] |= 1;
        true
    }
}

#[test]
fn bar0_is_mapped_through_the_vram_service_when_it_decodes() {
    let service = Arc::new(MappingVram::default());
    let mut v = card_with(16, service.clone(), None);
    cfg_write32(&mut v, 0x10, 0xe000_0000);
    assert!(service.maps.lock().unwrap().is_empty(), "memory decoding still off");
    v.config_write(0x04, &0x0003u16.to_le_bytes());
    assert!(v.bar0_mapped());
    cfg_write32(&mut v, 0x10, 0xd000_0000);
    v.config_write(0x04, &0x0000u16.to_le_bytes());
    assert_eq!(*service.maps.lock().unwrap(), vec![Some(0xe000_0000), Some(0xd000_0000), None]);
    assert!(!v.bar0_mapped());
    // The backend's dirty pages reach the scanout: page 0 is reported dirty on every sync.
    set_mode(&mut v, 64, 64, 32);
    let mut fb = Framebuffer::default();
    refresh(&mut v, &mut fb);
    v.core.vram().write(0, &0x123456u32.to_le_bytes()); // the guest, behind the device's back
    assert_eq!(refresh(&mut v, &mut fb), vec![Rect::new(0, 0, 16, 16)]);
    assert_eq!(fb.row(0)[0], 0x123456);
}

#[test]
fn the_rom_bar_serves_the_patched_image() {
    let mut image = vec![0u8; 40000];
    image[0] = 0x55;
    image[1] = 0xaa;
    let rom = OptionRom::new(&image, VENDOR_ID, DEVICE_ID).unwrap();
    let mut v = card_with(16, Arc::new(HostVram), Some(rom));
    cfg_write32(&mut v, 0x30, 0xffff_ffff);
    assert_eq!(cfg_read32(&mut v, 0x30), 0xffff_0001, "40000 bytes: a 64 KiB ROM BAR");
    let mut b = [0u8; 2];
    v.read_bar(ROM_BAR_INDEX, 0, &mut b);
    assert_eq!(b, [0x55, 0xaa]);
}

#[test]
fn state_round_trips_and_bad_state_is_refused() {
    let mut v = card();
    set_mode(&mut v, 64, 64, 32);
    v.write_bar(VRAM_BAR, 64 * 4 + 4, &0x00c0ffeeu32.to_le_bytes());
    let saved = crate::snapshot::DeviceState::save_state(&v);
    let mut w = card();
    crate::snapshot::DeviceState::restore_state(&mut w, StdVga::VERSION, &saved).unwrap();
    let mut fb = Framebuffer::default();
    w.refresh(&mut fb);
    assert_eq!((fb.width(), fb.height()), (64, 64));
    assert_eq!(fb.row(1)[1], 0xc0ffee);
    // Another VRAM size cannot take it.
    let mut small = card_with(4, Arc::new(HostVram), None);
    assert!(crate::snapshot::DeviceState::restore_state(&mut small, StdVga::VERSION, &saved).is_err());
    assert!(crate::snapshot::DeviceState::restore_state(&mut w, StdVga::VERSION, &saved[..100]).is_err());
}

#[test]
fn attached_to_a_machine_it_answers_on_the_bus_and_is_its_display() {
    use crate::interrupt::{RecordingInterruptService, RecordingInterrupts};
    use crate::memory::TestMemory;
    use crate::pc::Platform;
    use crate::vm_control::RecordingVmControl;
    let platform = Platform {
        interrupts: Arc::new(RecordingInterruptService(RecordingInterrupts::new())),
        control: Arc::new(RecordingVmControl::default()),
        timers: crate::timer::ManualTimers::new(Arc::new(ManualClock::new(0))),
        dma_memory: Arc::new(TestMemory::new(4096)),
        vram: Arc::new(HostVram),
    };
    let mut b = DeviceBuilder::new(platform);
    let rom = vec![0x55, 0xaa, 0, 0];
    let vga = attach(&mut b, StdVgaOptions { vgamem_mb: Some(8), slot: None, rom: Some(rom) }).unwrap();
    assert_eq!(b.displays().len(), 1);
    let bus = b.bus.clone();
    // Configuration mechanism #1: 00:02.0 is the VGA.
    let cfg = |reg: u32, v: Option<u32>| {
        bus.pio_write(0xcf8, &(0x8000_0000u32 | 2 << 11 | reg).to_le_bytes());
        let mut d = [0u8; 4];
        match v {
            Some(v) => bus.pio_write(0xcfc, &v.to_le_bytes()),
            None => bus.pio_read(0xcfc, &mut d),
        }
        u32::from_le_bytes(d)
    };
    assert_eq!(cfg(0, None), 0x1111_1234);
    cfg(0x10, Some(0xe000_0000));
    cfg(0x30, Some(0xe100_0001));
    cfg(0x04, Some(0x3));
    // DISPI through the ports, VRAM through BAR0, the ROM through its BAR.
    bus.pio_write(0x1ce, &(INDEX_VIDEO_MEMORY_64K as u16).to_le_bytes());
    let mut w = [0u8; 2];
    bus.pio_read(0x1cf, &mut w);
    assert_eq!(u16::from_le_bytes(w), 128);
    bus.mmio_write(0xe000_0010, &[7, 8]);
    assert_eq!(vga.lock().unwrap().core().vram().read_u8(0x11), 8);
    let mut sig = [0u8; 2];
    bus.mmio_read(0xe100_0000, &mut sig);
    assert_eq!(sig, [0x55, 0xaa]);
    // Text written at 0xb8000 after a sequencer/graphics setup through word port writes.
    bus.pio_write(0x3c4, &[0x02, 0x03]);
    bus.pio_write(0x3ce, &[0x05, 0x10]);
    bus.pio_write(0x3ce, &[0x06, 0x0e]);
    bus.mmio_write(0xb8000, &[b'h', 0x07, b'i', 0x07]);
    let mut text = [0u8; 4];
    bus.mmio_read(0xb8000, &mut text);
    assert_eq!(text, [b'h', 0x07, b'i', 0x07]);
    assert_eq!(vga.lock().unwrap().core().vram().read_u8(4), b'i', "odd/even: cell 1 is word 1");
}
