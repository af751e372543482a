//! Fuzzes the PIIX3 IDE function through everything a guest (and the host's media commands) can
//! touch: the legacy command/control ports of both channels, BAR4's bus-master registers, PCI
//! configuration space and guest RAM (PRD tables, packets, data buffers).
//!
//! Run: `cd devices/fuzz && cargo fuzz run ide` (on stable: `RUSTC_BOOTSTRAP=1 cargo fuzz run ide`).
//! The device must never panic or hang, whatever the sequence.
#![no_main]

use std::sync::{Arc, Mutex};

use devices::bus::{AddressSpace, IoBus};
use devices::interrupt::{InterruptLine, RecordingLine};
use devices::memory::{GuestMemory, TestMemory};
use devices::pci::config::PciIds;
use devices::pci::{BarRegion, ConfigSpace, PciAddress, PciDevice};
use devices::storage::block::{BlockBackend, MemoryBackend};
use devices::storage::ide::{IdeDriveConfig, Piix3Ide, LEGACY_PORT_RANGES, PIIX3_IDE_ADDRESS};
use libfuzzer_sys::fuzz_target;

const BM_BASE: u16 = 0xc000;
const MEM_SIZE: usize = 256 * 1024;
/// Ports the guest can reach: both command blocks, both control ports, BAR4.
const PORTS: [u16; 34] = {
    let mut p = [0u16; 34];
    let mut i = 0;
    while i < 8 {
        p[i] = 0x1f0 + i as u16;
        p[8 + i] = 0x170 + i as u16;
        i += 1;
    }
    p[16] = 0x3f6;
    p[17] = 0x376;
    let mut j = 0;
    while j < 16 {
        p[18 + j] = BM_BASE + j as u16;
        j += 1;
    }
    p
};

struct Function0(ConfigSpace);

impl PciDevice for Function0 {
    fn config_read(&mut self, offset: u16, data: &mut [u8]) {
        self.0.read(offset, data)
    }
    fn config_write(&mut self, offset: u16, data: &[u8]) {
        self.0.write(offset, data)
    }
    fn decoded_bars(&self) -> Vec<BarRegion> {
        Vec::new()
    }
}

fn medium(seed: u8) -> Arc<dyn BlockBackend> {
    let blocks = 1 + usize::from(seed % 24);
    Arc::new(MemoryBackend::new(vec![seed; blocks * 2048], true))
}

struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }
    fn u16(&mut self) -> Option<u16> {
        Some(u16::from(self.byte()?) | u16::from(self.byte()?) << 8)
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let Some(layout) = input.byte() else { return };
    let mem = Arc::new(TestMemory::new(MEM_SIZE));
    // Each position: empty, disk, empty CD-ROM or CD-ROM with a disc.
    let mut cds = Vec::new();
    let mut drives: [[Option<IdeDriveConfig>; 2]; 2] = Default::default();
    for (i, slot) in drives.iter_mut().flatten().enumerate() {
        *slot = match (layout >> (2 * i)) & 3 {
            0 => None,
            1 => Some(IdeDriveConfig::disk(Arc::new(MemoryBackend::new(vec![0x5a; 64 * 1024], false)))),
            2 => {
                cds.push((i / 2, i % 2));
                Some(IdeDriveConfig::cdrom(None))
            }
            _ => {
                cds.push((i / 2, i % 2));
                Some(IdeDriveConfig::cdrom(Some(medium(layout))))
            }
        };
    }
    let irqs: [Arc<RecordingLine>; 2] = Default::default();
    let lines: [Arc<dyn InterruptLine>; 2] = [irqs[0].clone(), irqs[1].clone()];
    let Ok(ide) = Piix3Ide::new(drives, mem.clone(), lines) else { return };
    let handle = ide.handle();
    let bus = IoBus::new();
    let ports = handle.legacy_ports();
    for (base, len, name) in LEGACY_PORT_RANGES {
        bus.insert(AddressSpace::Io, base, len, name, ports.clone()).unwrap();
    }
    let f0 =
        ConfigSpace::new(PciIds { vendor_id: 0x8086, device_id: 0x7000, multifunction: true, ..Default::default() });
    bus.add_pci_device(PciAddress::new(0, 1, 0), Arc::new(Mutex::new(Function0(f0)))).unwrap();
    bus.add_pci_device(PIIX3_IDE_ADDRESS, Arc::new(Mutex::new(ide))).unwrap();
    bus.pci_config_write(PIIX3_IDE_ADDRESS, 0x20, &(u32::from(BM_BASE) | 1).to_le_bytes());
    bus.pci_config_write(PIIX3_IDE_ADDRESS, 0x04, &5u16.to_le_bytes());

    // Bounded number of operations per input.
    for _ in 0..4096 {
        let Some(op) = input.byte() else { break };
        let Some(arg) = input.byte() else { break };
        let size = [1usize, 2, 4][usize::from(op >> 6) % 3];
        match op & 0x7 {
            0 | 1 => {
                let port = PORTS[usize::from(arg) % PORTS.len()];
                let mut v = [0u8; 4];
                for b in v.iter_mut().take(size) {
                    *b = input.byte().unwrap_or(0);
                }
                bus.pio_write(port, &v[..size]);
            }
            2 | 3 => {
                let port = PORTS[usize::from(arg) % PORTS.len()];
                let mut v = [0u8; 4];
                bus.pio_read(port, &mut v[..size]);
            }
            4 => {
                // Guest memory: 8 bytes anywhere (PRDs, buffers, or the PRD table itself).
                let Some(at) = input.u16() else { break };
                let gpa = (u64::from(at) << 2) % (MEM_SIZE as u64 - 8);
                let mut v = [0u8; 8];
                for b in &mut v {
                    *b = input.byte().unwrap_or(0);
                }
                let _ = mem.write(gpa, &v);
            }
            5 => {
                if let Some(&(ch, unit)) = cds.get(usize::from(arg) % cds.len().max(1)) {
                    if let Some(cd) = handle.cdrom(ch, unit) {
                        let _ = match op >> 3 & 7 {
                            0 => cd.eject(false),
                            1 => cd.eject(true),
                            2 => cd.insert(medium(arg)),
                            3 => cd.open_tray(op & 0x80 != 0),
                            4 => {
                                cd.close_tray();
                                Ok(())
                            }
                            5 => cd.remove_medium(),
                            6 => cd.insert_medium(medium(arg)),
                            _ => cd.change(medium(arg), true),
                        };
                    }
                }
                let _ = handle.query();
            }
            6 => {
                let offset = u16::from(arg) & !3;
                let v = u32::from(input.u16().unwrap_or(0)) | u32::from(input.u16().unwrap_or(0)) << 16;
                bus.pci_config_write(PIIX3_IDE_ADDRESS, offset, &v.to_le_bytes());
            }
            _ => {
                let mut v = [0u8; 4];
                bus.pci_config_read(PIIX3_IDE_ADDRESS, u16::from(arg) & !3, &mut v);
            }
        }
    }
});
