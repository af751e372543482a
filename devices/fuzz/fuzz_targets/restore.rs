//! Restored device state is hostile input (a save file can be edited; in a stub domain the guest's
//! own domain carries it). Feeds arbitrary payloads to every device of the PC `build_pc` makes
//! (plus an edu test device and a standard VGA), each as the next section of a restore, then drives the restored
//! machine through its ports and configuration space. Nothing may panic or hang, a refused
//! payload must leave the device as it was (its saved state unchanged), and an accepted one must
//! save again as a payload the device accepts.
#![no_main]

use std::sync::Arc;

use devices::clock::ManualClock;
use devices::interrupt::{RecordingInterruptService, RecordingInterrupts};
use devices::memory::TestMemory;
use devices::pc::{build_pc, Pc, PcConfig, Platform};
use devices::storage::block::MemoryBackend;
use devices::storage::ide::IdeDriveConfig;
use devices::vm_control::RecordingVmControl;
use libfuzzer_sys::fuzz_target;

fn pc() -> Pc {
    let platform = Platform {
        interrupts: Arc::new(RecordingInterruptService(RecordingInterrupts::new())),
        control: Arc::new(RecordingVmControl::default()),
        timers: devices::timer::ManualTimers::new(Arc::new(ManualClock::new(1_700_000_000))),
        dma_memory: Arc::new(TestMemory::new(1 << 20)),
        vram: Arc::new(devices::display::HostVram),
    };
    let disk = Arc::new(MemoryBackend::new(vec![0x5a; 64 * 512], false));
    let cd = Arc::new(MemoryBackend::new(vec![0xa5; 8 * 2048], true));
    let config = PcConfig {
        ram_below_4g: 1 << 20,
        ram_above_4g: 0,
        boot_order: "cd".into(),
        cpus: 1,
        serial_outputs: vec![Box::new(std::io::sink()), Box::new(std::io::sink())],
        ide_drives: [[Some(IdeDriveConfig::disk(disk)), None], [Some(IdeDriveConfig::cdrom(Some(cd))), None]],
        xen_platform: None,
        ide_io_workers: None,
    };
    let mut pc = build_pc(config, platform).unwrap();
    pc.devices.add_pci_function("edu", None, devices::edu::Edu::new).unwrap();
    let vga = devices::display::stdvga::StdVgaOptions { vgamem_mb: Some(1), slot: None, rom: None };
    devices::display::stdvga::attach(&mut pc.devices, vga).unwrap();
    pc
}

fuzz_target!(|data: &[u8]| {
    let pc = pc();
    let saved = pc.devices.saved().to_vec();
    if saved.is_empty() {
        return;
    }
    // Sections: device selector byte, u16 length, payload. A valid payload of the selected
    // device with some bytes replaced is tried first when the selector's top bit is set, so
    // the fuzzer gets past the first fields.
    let mut rest = data;
    while rest.len() >= 3 {
        let which = rest[0] as usize % saved.len();
        let mutate = rest[0] & 0x80 != 0;
        let len = u16::from_le_bytes([rest[1], rest[2]]) as usize;
        rest = &rest[3..];
        let take = len.min(rest.len());
        let (chunk, tail) = rest.split_at(take);
        rest = tail;
        let mut dev = saved[which].device.lock().unwrap();
        let before = dev.save_state();
        let payload = if mutate {
            let mut p = before.clone();
            for pair in chunk.chunks(3) {
                if let [hi, lo, v] = *pair {
                    if !p.is_empty() {
                        let i = ((hi as usize) << 8 | lo as usize) % p.len();
                        p[i] = v;
                    }
                }
            }
            p
        } else {
            chunk.to_vec()
        };
        let version = dev.state_version();
        match dev.restore_state(version, &payload) {
            Err(_) => assert_eq!(dev.save_state(), before, "{}: a refused payload changed the device", dev.state_id()),
            Ok(()) => {
                let again = dev.save_state();
                dev.restore_state(version, &again)
                    .unwrap_or_else(|e| panic!("{}: its own saved state is refused: {e}", dev.state_id()));
            }
        }
    }
    // The restored machine still answers guest accesses without panicking.
    let bus = &pc.devices.bus;
    bus.resync_bars();
    let mut b = [0u8; 4];
    for port in [0x1f7u16, 0x177, 0x3f8, 0x3fd, 0x60, 0x64, 0x71, 0xb000, 0xafe0] {
        bus.pio_read(port, &mut b[..1]);
    }
    for dev in 0..4u32 {
        bus.pio_write(0xcf8, &(0x8000_0000u32 | dev << 11).to_le_bytes());
        bus.pio_read(0xcfc, &mut b);
    }
    bus.pio_write(0x1f7, &[0xec]); // IDENTIFY DEVICE on whatever state the drive is in
    bus.pio_read(0x1f0, &mut b[..2]);
});
