//! The standard VGA (`-device VGA`, 1 MiB of VRAM) on its bus with BAR0, BAR2 and the ROM BAR
//! decoding, then arbitrary guest actions: VGA and DISPI port accesses of every size, legacy
//! window and BAR0/BAR2/ROM accesses, configuration writes (BARs move, decoding toggles),
//! refreshes into a framebuffer as the clock advances, and restores of arbitrary state images.
//! Nothing may panic or hang, and the framebuffer stays within what the VRAM can describe.
#![no_main]

use std::sync::{Arc, Mutex};

use devices::bus::IoBus;
use devices::clock::ManualClock;
use devices::display::stdvga::{self, StdVga, StdVgaOptions};
use devices::display::{Display, Framebuffer};
use devices::interrupt::{RecordingInterruptService, RecordingInterrupts};
use devices::memory::TestMemory;
use devices::pc::{DeviceBuilder, Platform};
use devices::snapshot::{restore_from, Snapshot};
use devices::vm_control::RecordingVmControl;
use libfuzzer_sys::fuzz_target;

const BAR0: u64 = 0xe000_0000;
const BAR2: u64 = 0xe010_0000;
const ROM: u64 = 0xe020_0000;

fn cfg(bus: &IoBus, reg: u8, v: u32) {
    bus.pio_write(0xcf8, &(0x8000_0000u32 | 2 << 11 | reg as u32).to_le_bytes());
    bus.pio_write(0xcfc, &v.to_le_bytes());
}

fn rig() -> (Arc<IoBus>, Arc<Mutex<StdVga>>, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(0));
    let platform = Platform {
        interrupts: Arc::new(RecordingInterruptService(RecordingInterrupts::new())),
        control: Arc::new(RecordingVmControl::default()),
        timers: devices::timer::ManualTimers::new(clock.clone()),
        dma_memory: Arc::new(TestMemory::new(4096)),
        vram: Arc::new(devices::display::HostVram),
    };
    let mut b = DeviceBuilder::new(platform);
    let mut rom = vec![0u8; 3000];
    rom[..2].copy_from_slice(&[0x55, 0xaa]);
    let options = StdVgaOptions { vgamem_mb: Some(1), slot: Some(2), rom: Some(rom) };
    let vga = stdvga::attach(&mut b, options).unwrap();
    let bus = b.bus.clone();
    cfg(&bus, 0x10, BAR0 as u32);
    cfg(&bus, 0x18, BAR2 as u32);
    cfg(&bus, 0x30, ROM as u32 | 1);
    cfg(&bus, 0x04, 0x3);
    (bus, vga, clock)
}

fuzz_target!(|data: &[u8]| {
    let (bus, vga, clock) = rig();
    let mut fb = Framebuffer::default();
    let mut refreshes = 0;
    // Each operation: kind, size selector, 4 address bytes, 4 value bytes.
    for op in data.chunks_exact(10) {
        let size = [1usize, 2, 4, 8, 3, 0][(op[1] % 6) as usize];
        let addr = u32::from_le_bytes(op[2..6].try_into().unwrap()) as u64;
        let value: Vec<u8> = op[6..10].iter().cycle().take(size).copied().collect();
        let mut buf = vec![0u8; size];
        let port = if addr & 0x100 != 0 { 0x1ce + (addr as u16 % 3) } else { 0x3b0 + (addr as u16 % 0x30) };
        match op[0] % 12 {
            0 => bus.pio_write(port, &value),
            1 => bus.pio_read(port, &mut buf),
            2 => bus.mmio_write(0xa_0000 + addr % 0x2_0000, &value),
            3 => bus.mmio_read(0xa_0000 + addr % 0x2_0000, &mut buf),
            4 => bus.mmio_write(BAR0 + addr % (1 << 20), &value),
            5 => bus.mmio_read(BAR0 + addr % (1 << 20), &mut buf),
            6 => bus.mmio_write(BAR2 + addr % 0x1000, &value),
            7 => bus.mmio_read(BAR2 + addr % 0x1000, &mut buf),
            8 => bus.mmio_read(ROM + addr % 0x1000, &mut buf),
            9 => cfg(&bus, op[2] & 0xfc, u32::from_le_bytes(op[6..10].try_into().unwrap())),
            10 if refreshes < 8 => {
                refreshes += 1;
                clock.advance_ns(addr << 10);
                vga.lock().unwrap().refresh(&mut fb);
                let pixels = fb.width() as usize * fb.height() as usize;
                assert!(pixels <= 16384 * 16384);
                fb.take_dirty();
            }
            11 => {
                let mut live = vga.lock().unwrap();
                let _ = restore_from(&mut *live, StdVga::VERSION, &data[..data.len().min(4096)]);
            }
            _ => {}
        }
    }
});
