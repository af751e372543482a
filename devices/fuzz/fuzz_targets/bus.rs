//! Drives the whole PC chipset through the one dispatch bus with arbitrary guest accesses:
//! port I/O of every size at every port (PCI configuration mechanism #1 included), MMIO, and
//! direct configuration accesses as Xen ioreqs make them. Nothing may panic or hang.
#![no_main]

use std::sync::{Arc, Mutex};

use devices::bus::IoBus;
use devices::clock::ManualClock;
use devices::interrupt::{RecordingInterruptService, RecordingInterrupts};
use devices::legacy::debug_port;
use devices::memory::TestMemory;
use devices::pc::{build_pc, PcConfig, Platform};
use devices::pci::PciAddress;
use devices::storage::block::MemoryBackend;
use devices::storage::ide::IdeDriveConfig;
use devices::vm_control::RecordingVmControl;
use libfuzzer_sys::fuzz_target;

/// The machine the binary builds (`devices::pc::build_pc`), with an ATA disk and a CD-ROM, the
/// xen-platform device, an edu test device and isa-debug-exit.
fn pc_bus() -> Arc<IoBus> {
    struct NoHost;
    impl devices::xen_platform::XenPlatformHost for NoHost {
        fn unplug(&self, _: devices::xen_platform::UnplugRequest) {}
        fn set_rom_lock(&self, _: bool) -> bool {
            true
        }
    }
    let vm = Arc::new(RecordingVmControl::default());
    let platform = Platform {
        interrupts: Arc::new(RecordingInterruptService(RecordingInterrupts::new())),
        control: vm.clone(),
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
        serial_outputs: vec![Box::new(std::io::sink())],
        ide_drives: [[Some(IdeDriveConfig::disk(disk)), None], [Some(IdeDriveConfig::cdrom(Some(cd))), None]],
        xen_platform: Some(Arc::new(NoHost)),
        ide_io_workers: None,
    };
    let mut pc = build_pc(config, platform).unwrap();
    pc.devices.add_pci_function("edu", None, devices::edu::Edu::new).unwrap();
    let vga = devices::display::stdvga::StdVgaOptions { vgamem_mb: Some(1), slot: None, rom: None };
    devices::display::stdvga::attach(&mut pc.devices, vga).unwrap();
    let exit = Arc::new(Mutex::new(debug_port::DebugExit::new(0xf4, 4, vm)));
    pc.devices.add_io("isa-debug-exit", (0xf4, 4), exit).unwrap();
    pc.devices.bus.clone()
}

fuzz_target!(|data: &[u8]| {
    let bus = pc_bus();
    // Each operation: kind, size selector, 8 address bytes, 4 value bytes.
    for op in data.chunks_exact(14) {
        let size = [1usize, 2, 4, 8, 3, 0][(op[1] % 6) as usize];
        let addr = u64::from_le_bytes(op[2..10].try_into().unwrap());
        let value = op[10..14].iter().cycle().take(size).copied().collect::<Vec<u8>>();
        let mut buf = vec![0u8; size];
        // Bias port numbers towards the ports that exist.
        let port = if op[0] & 0x80 != 0 { (addr as u16) & 0x0fff } else { addr as u16 };
        match op[0] % 8 {
            0 => bus.pio_read(port, &mut buf),
            1 => bus.pio_write(port, &value),
            2 => bus.mmio_read(addr, &mut buf),
            3 => bus.mmio_write(addr, &value),
            4 => bus.pci_config_read(
                PciAddress::new(0, (addr >> 8) as u8 & 0x1f, (addr >> 13) as u8 & 7),
                addr as u16 & 0x1ff,
                &mut buf,
            ),
            5 => bus.pci_config_write(
                PciAddress::new(0, (addr >> 8) as u8 & 0x1f, (addr >> 13) as u8 & 7),
                addr as u16 & 0x1ff,
                &value,
            ),
            6 => {
                // Configuration mechanism #1 as a guest uses it: address then data.
                bus.pio_write(0xcf8, &(0x8000_0000u32 | (addr as u32 & 0x00ff_fffc)).to_le_bytes());
                bus.pio_write(0xcfc + (addr as u16 & 3), &value);
            }
            _ => {
                bus.pio_write(0xcf8, &(0x8000_0000u32 | (addr as u32 & 0x00ff_fffc)).to_le_bytes());
                bus.pio_read(0xcfc, &mut buf);
            }
        }
    }
});
