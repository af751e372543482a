//! Drives the whole PC chipset through the one dispatch bus with arbitrary guest accesses:
//! port I/O of every size at every port (PCI configuration mechanism #1 included), MMIO, and
//! direct configuration accesses as Xen ioreqs make them. Nothing may panic or hang.
#![no_main]

use std::sync::{Arc, Mutex};

use devices::bus::{AddressSpace, BusDevice, IoBus};
use devices::chipset::{i440fx::I440fx, piix3::Piix3, piix4_pm};
use devices::clock::ManualClock;
use devices::interrupt::{InterruptLine, RecordingLine};
use devices::legacy::{cmos::Cmos, debug_port, i8042::I8042, reset, serial::Serial};
use devices::memory::TestMemory;
use devices::pci::PciAddress;
use devices::storage::block::MemoryBackend;
use devices::storage::ide::{IdeDriveConfig, Piix3Ide, LEGACY_PORT_RANGES, PIIX3_IDE_ADDRESS};
use devices::timer::ManualTimers;
use devices::vm_control::RecordingVmControl;
use libfuzzer_sys::fuzz_target;

fn line() -> Arc<dyn InterruptLine> {
    Arc::new(RecordingLine::default())
}

fn pc_bus() -> IoBus {
    let bus = IoBus::new();
    let vm = Arc::new(RecordingVmControl::default());
    let clock = Arc::new(ManualClock::new(1_700_000_000));
    let add = |base: u64, len: u64, name: &str, d: Arc<Mutex<dyn BusDevice>>| {
        bus.insert(AddressSpace::Io, base, len, name, d).unwrap()
    };
    bus.add_pci_device(PciAddress::new(0, 0, 0), Arc::new(Mutex::new(I440fx::new()))).unwrap();
    bus.add_pci_device(PciAddress::new(0, 1, 0), Arc::new(Mutex::new(Piix3::new()))).unwrap();
    let (pm, pm_io) = piix4_pm::new(line(), vm.clone(), clock.clone());
    bus.add_pci_device(PciAddress::new(0, 1, 3), pm).unwrap();
    add(piix4_pm::PM_BASE as u64, piix4_pm::PM_IO_LEN as u64, "pm", pm_io.clone());
    add(piix4_pm::GPE0_BLK as u64, piix4_pm::GPE0_BLK_LEN as u64, "gpe0", pm_io.clone());
    add(piix4_pm::SMI_CMD_PORT as u64, 2, "apm", Arc::new(Mutex::new(piix4_pm::ApmControl::new(pm_io))));
    let disk = Arc::new(MemoryBackend::new(vec![0x5a; 64 * 512], false));
    let cd = Arc::new(MemoryBackend::new(vec![0xa5; 8 * 2048], true));
    let drives = [[Some(IdeDriveConfig::disk(disk)), None], [Some(IdeDriveConfig::cdrom(Some(cd))), None]];
    let ide = Piix3Ide::new(drives, Arc::new(TestMemory::new(1 << 20)), [line(), line()]).unwrap();
    let legacy = ide.handle().legacy_ports();
    for (base, len, name) in LEGACY_PORT_RANGES {
        add(base, len, name, legacy.clone());
    }
    bus.add_pci_device(PIIX3_IDE_ADDRESS, Arc::new(Mutex::new(ide))).unwrap();
    add(0x70, 2, "cmos", Cmos::new_shared(&*ManualTimers::new(clock), line()));
    let kbd = Arc::new(Mutex::new(I8042::new(line(), line(), vm.clone())));
    add(0x60, 1, "i8042", kbd.clone());
    add(0x64, 1, "i8042", kbd);
    add(0x92, 1, "port92", Arc::new(Mutex::new(reset::SystemControlPortA::new(vm.clone()))));
    add(0xcf9, 1, "rcr", Arc::new(Mutex::new(reset::ResetControl::new(vm.clone()))));
    add(0xe9, 1, "debugcon", Arc::new(Mutex::new(debug_port::DebugConsole::new(None))));
    add(0xf4, 4, "debug-exit", Arc::new(Mutex::new(debug_port::DebugExit::new(0xf4, 4, vm))));
    add(0x3f8, 8, "com1", Arc::new(Mutex::new(Serial::new(0x3f8, line(), Box::new(std::io::sink())))));
    bus
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
