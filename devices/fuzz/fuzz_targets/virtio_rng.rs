//! virtio-rng-pci with a driver that already set it up (features, queue 0 in a 64 KiB guest
//! RAM, MSI-X on, DRIVER_OK), then arbitrary guest actions: RAM writes that build or corrupt
//! the rings, notifications, register and MSI-X table accesses of every size, configuration
//! writes, and restores of arbitrary state images. Nothing may panic or hang, and the device
//! never writes outside RAM.
#![no_main]

use std::sync::{Arc, Mutex};

use devices::bus::IoBus;
use devices::interrupt::{MsiSink, RecordingLine};
use devices::memory::{GuestMemory, TestMemory};
use devices::pci::function::PciResources;
use devices::pci::PciAddress;
use devices::snapshot::{restore_from, Snapshot};
use devices::virtio::pci::{VirtioPci, VirtioRngPci, NOTIFY_OFFSET};
use devices::virtio::rng::VirtioRng;
use devices::virtio::spec::*;
use libfuzzer_sys::fuzz_target;

const BAR4: u64 = 0xfe00_0000;
const BAR1: u64 = 0xfe10_0000;
const RAM: usize = 0x1_0000;

struct Dropped;
impl MsiSink for Dropped {
    fn send_msi(&self, _address: u64, _data: u32) {}
}

fn cfg(bus: &IoBus, reg: u8, v: u32) {
    bus.pio_write(0xcf8, &(0x8000_0000u32 | 3 << 11 | reg as u32).to_le_bytes());
    bus.pio_write(0xcfc, &v.to_le_bytes());
}

fn wr(bus: &IoBus, off: u64, len: usize, v: u64) {
    bus.mmio_write(BAR4 + off, &v.to_le_bytes()[..len]);
}

fn rig() -> (IoBus, Arc<Mutex<VirtioRngPci>>, Arc<TestMemory>) {
    let ram = Arc::new(TestMemory::new(RAM));
    let res = PciResources { intx: Arc::new(RecordingLine::default()), msi: Arc::new(Dropped), memory: ram.clone() };
    let dev = Arc::new(Mutex::new(VirtioPci::new(VirtioRng::default(), 2, res).unwrap()));
    let bus = IoBus::new();
    bus.add_pci_device(PciAddress::new(0, 3, 0), dev.clone()).unwrap();
    cfg(&bus, 0x20, BAR4 as u32);
    cfg(&bus, 0x14, BAR1 as u32);
    cfg(&bus, 0x04, 0x6);
    wr(&bus, COMMON_DEVICE_STATUS, 1, (STATUS_ACKNOWLEDGE | STATUS_DRIVER) as u64);
    wr(&bus, COMMON_DRIVER_FEATURE_SELECT, 4, 1);
    wr(&bus, COMMON_DRIVER_FEATURE, 4, 1);
    wr(&bus, COMMON_DEVICE_STATUS, 1, (STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK) as u64);
    wr(&bus, COMMON_QUEUE_DESC, 8, 0x1000);
    wr(&bus, COMMON_QUEUE_DRIVER, 8, 0x2000);
    wr(&bus, COMMON_QUEUE_DEVICE, 8, 0x3000);
    wr(&bus, COMMON_QUEUE_MSIX_VECTOR, 2, 1);
    wr(&bus, COMMON_QUEUE_ENABLE, 2, 1);
    let ok = STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK | STATUS_DRIVER_OK;
    wr(&bus, COMMON_DEVICE_STATUS, 1, ok as u64);
    (bus, dev, ram)
}

fuzz_target!(|data: &[u8]| {
    let (bus, dev, ram) = rig();
    // Each operation: kind, size selector, 2 offset bytes, 8 value bytes.
    for op in data.chunks_exact(12) {
        let size = [1usize, 2, 4, 8, 3][(op[1] % 5) as usize];
        let off = u16::from_le_bytes([op[2], op[3]]) as u64;
        let value = &op[4..12];
        let mut buf = vec![0u8; size];
        match op[0] % 8 {
            0 | 1 => {
                // Bias RAM writes towards the rings and their first buffers.
                let _ = ram.write(off % RAM as u64, value);
            }
            2 => bus.mmio_write(BAR4 + (off & 0x3fff), &value[..size]),
            3 => bus.mmio_read(BAR4 + (off & 0x3fff), &mut buf),
            4 => wr(&bus, NOTIFY_OFFSET + (off & 7), 2, 0),
            5 => bus.mmio_write(BAR1 + (off & 0xfff), &value[..size]),
            6 => cfg(&bus, op[2] & 0xfc, u32::from_le_bytes(value[..4].try_into().unwrap())),
            _ => {
                let mut live = dev.lock().unwrap();
                let _ = restore_from(&mut *live, VirtioRngPci::VERSION, &data[..data.len().min(512)]);
            }
        }
    }
});
