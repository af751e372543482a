//! virtio-rng-pci driven the way Linux's virtio_pci and virtio_rng drive it: configuration
//! cycles on 0xcf8/0xcfc, the virtio structures in BAR4, the MSI-X table in BAR1, rings in fake
//! guest RAM.

use std::sync::{Arc, Mutex};

use super::pci::*;
use super::rng::{VirtioRng, MAX_BYTES_PER_REQUEST};
use super::spec::*;
use crate::bus::IoBus;
use crate::interrupt::RecordingLine;
use crate::memory::{GuestMemory, TestMemory, PAGE_SIZE};
use crate::pci::function::PciResources;
use crate::pci::PciAddress;
use crate::snapshot::{restore_from, save_to_vec, Snapshot};

const BAR4: u64 = 0xfe00_0000;
const BAR1: u64 = 0xfe10_0000;
const SLOT: u8 = 3;
const RAM: usize = 0x10_0000;
const DESC: u64 = 0x1000;
const AVAIL: u64 = 0x2000;
const USED: u64 = 0x3000;
const QUEUE_VECTOR: u16 = 1;
const CONFIG_VECTOR: u16 = 0;

type Messages = crate::interrupt::RecordingMsiSink;

struct Rig {
    bus: IoBus,
    dev: Arc<Mutex<VirtioRngPci>>,
    pin: Arc<RecordingLine>,
    msgs: Arc<Messages>,
    ram: Arc<TestMemory>,
    /// The driver's next available index.
    avail_idx: u16,
}

fn cfg_addr(reg: u8) -> [u8; 4] {
    (0x8000_0000u32 | (SLOT as u32) << 11 | reg as u32).to_le_bytes()
}

fn msi_data(vector: u16) -> u32 {
    0x4000 | vector as u32
}

impl Rig {
    fn new(vectors: u16) -> Rig {
        let pin = Arc::new(RecordingLine::default());
        let msgs = Arc::new(Messages::default());
        let ram = Arc::new(TestMemory::new(RAM));
        let res = PciResources { intx: pin.clone(), msi: msgs.clone(), memory: ram.clone() };
        let dev = Arc::new(Mutex::new(VirtioPci::new(VirtioRng::default(), vectors, res).unwrap()));
        Rig::with_device(dev, pin, msgs, ram)
    }
    fn with_device(
        dev: Arc<Mutex<VirtioRngPci>>,
        pin: Arc<RecordingLine>,
        msgs: Arc<Messages>,
        ram: Arc<TestMemory>,
    ) -> Rig {
        let bus = IoBus::new();
        bus.add_pci_device(PciAddress::new(0, 0, 0), Arc::new(Mutex::new(crate::chipset::i440fx::I440fx::new())))
            .unwrap();
        bus.add_pci_device(PciAddress::new(0, SLOT, 0), dev.clone()).unwrap();
        let r = Rig { bus, dev, pin, msgs, ram, avail_idx: 0 };
        r.cfg_write32(0x20, BAR4 as u32);
        r.cfg_write32(0x14, BAR1 as u32);
        r.cfg_write32(0x04, 0x6); // memory space + bus master (Linux: pci_enable_device + pci_set_master)
        r
    }
    fn cfg_read32(&self, reg: u8) -> u32 {
        self.bus.pio_write(0xcf8, &cfg_addr(reg));
        let mut d = [0u8; 4];
        self.bus.pio_read(0xcfc, &mut d);
        u32::from_le_bytes(d)
    }
    fn cfg_write32(&self, reg: u8, v: u32) {
        self.bus.pio_write(0xcf8, &cfg_addr(reg));
        self.bus.pio_write(0xcfc, &v.to_le_bytes());
    }
    fn rd(&self, off: u64, len: usize) -> u64 {
        let mut d = [0u8; 8];
        self.bus.mmio_read(BAR4 + off, &mut d[..len]);
        u64::from_le_bytes(d)
    }
    fn wr(&self, off: u64, len: usize, v: u64) {
        self.bus.mmio_write(BAR4 + off, &v.to_le_bytes()[..len]);
    }
    fn status(&self) -> u8 {
        self.rd(COMMON_DEVICE_STATUS, 1) as u8
    }
    fn set_status(&self, v: u8) {
        self.wr(COMMON_DEVICE_STATUS, 1, v as u64);
    }
    fn isr(&self) -> u8 {
        self.rd(ISR_OFFSET, 1) as u8
    }
    fn notify(&self, queue: u16) {
        self.wr(NOTIFY_OFFSET + queue as u64 * NOTIFY_OFF_MULTIPLIER as u64, 2, queue as u64);
    }
    /// (capability ID, offset) of every capability, walked as a guest does.
    fn capabilities(&self) -> Vec<(u8, u8)> {
        let mut out = Vec::new();
        let mut next = (self.cfg_read32(0x34) & 0xfc) as u8;
        while next != 0 && out.len() < 48 {
            let head = self.cfg_read32(next);
            out.push((head as u8, next));
            next = (head >> 8) as u8 & 0xfc;
        }
        out
    }
    /// Enables MSI-X and programs entries 0 and 1 unmasked (unless `mask_queue_vector`).
    fn enable_msix(&self, mask_queue_vector: bool) {
        for v in 0..2u64 {
            let e = BAR1 + v * 16;
            self.bus.mmio_write(e, &0xfee0_0000u32.to_le_bytes());
            self.bus.mmio_write(e + 4, &0u32.to_le_bytes());
            self.bus.mmio_write(e + 8, &msi_data(v as u16).to_le_bytes());
            let masked = mask_queue_vector && v == QUEUE_VECTOR as u64;
            self.bus.mmio_write(e + 12, &(masked as u32).to_le_bytes());
        }
        let cap = self.capabilities().iter().find(|c| c.0 == 0x11).unwrap().1;
        self.cfg_write32(cap, self.cfg_read32(cap) | 1 << 31);
    }
    /// Linux's virtio_pci probe: reset, ACKNOWLEDGE, DRIVER, features, FEATURES_OK, queue 0,
    /// DRIVER_OK (3.1.1). With `msix` the vectors are assigned as vp_find_vqs_msix does.
    fn init_driver(&self, msix: bool) {
        self.set_status(0);
        self.set_status(STATUS_ACKNOWLEDGE);
        self.set_status(STATUS_ACKNOWLEDGE | STATUS_DRIVER);
        self.wr(COMMON_DRIVER_FEATURE_SELECT, 4, 1);
        self.wr(COMMON_DRIVER_FEATURE, 4, 1); // VIRTIO_F_VERSION_1 (bit 32)
        self.set_status(STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK);
        assert_ne!(self.status() & STATUS_FEATURES_OK, 0);
        if msix {
            self.enable_msix(false);
            self.wr(COMMON_CONFIG_MSIX_VECTOR, 2, CONFIG_VECTOR as u64);
        }
        self.setup_queue(msix);
        self.set_status(STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK | STATUS_DRIVER_OK);
    }
    fn setup_queue(&self, msix: bool) {
        self.wr(COMMON_QUEUE_SELECT, 2, 0);
        self.wr(COMMON_QUEUE_DESC, 4, DESC);
        self.wr(COMMON_QUEUE_DESC + 4, 4, 0);
        self.wr(COMMON_QUEUE_DRIVER, 8, AVAIL);
        self.wr(COMMON_QUEUE_DEVICE, 4, USED);
        self.wr(COMMON_QUEUE_DEVICE + 4, 4, 0);
        if msix {
            self.wr(COMMON_QUEUE_MSIX_VECTOR, 2, QUEUE_VECTOR as u64);
        }
        self.wr(COMMON_QUEUE_ENABLE, 2, 1);
    }
    fn put_descriptor(&self, index: u16, addr: u64, len: u32, flags: u16, next: u16) {
        let mut d = [0u8; 16];
        d[0..8].copy_from_slice(&addr.to_le_bytes());
        d[8..12].copy_from_slice(&len.to_le_bytes());
        d[12..14].copy_from_slice(&flags.to_le_bytes());
        d[14..16].copy_from_slice(&next.to_le_bytes());
        self.ram.write(DESC + 16 * index as u64, &d).unwrap();
    }
    /// Makes chain `head` available (2.7.13) and notifies.
    fn offer(&mut self, head: u16) {
        let slot = (self.avail_idx % 8) as u64;
        self.ram.write(AVAIL + 4 + 2 * slot, &head.to_le_bytes()).unwrap();
        self.avail_idx = self.avail_idx.wrapping_add(1);
        self.ram.write(AVAIL + 2, &self.avail_idx.to_le_bytes()).unwrap();
        self.notify(0);
    }
    fn used_idx(&self) -> u16 {
        let mut b = [0u8; 2];
        self.ram.read(USED + 2, &mut b).unwrap();
        u16::from_le_bytes(b)
    }
    fn used_element(&self, slot: u64) -> (u32, u32) {
        let mut b = [0u8; 8];
        self.ram.read(USED + 4 + 8 * slot, &mut b).unwrap();
        (u32::from_le_bytes(b[..4].try_into().unwrap()), u32::from_le_bytes(b[4..].try_into().unwrap()))
    }
    fn bytes(&self, gpa: u64, len: usize) -> Vec<u8> {
        let mut v = vec![0; len];
        self.ram.read(gpa, &mut v).unwrap();
        v
    }
}

#[test]
fn identifies_as_a_modern_virtio_rng_with_its_structures_in_bar4() {
    let r = Rig::new(DEFAULT_MSIX_VECTORS);
    assert_eq!(r.cfg_read32(0), 0x1044_1af4, "1af4:1044, non-transitional entropy device (4.1.2)");
    assert_eq!(r.cfg_read32(8) & 0xff, 1, "revision 1");
    assert_eq!(r.cfg_read32(8) >> 24, 0xff, "class: other");
    assert_eq!(r.cfg_read32(0x2c), 0x1100_1af4, "subsystem 1af4:1100");
    assert_eq!(r.cfg_read32(0x3c) >> 8 & 0xff, 1, "INTA#");
    r.cfg_write32(0x20, 0xffff_ffff);
    assert_eq!(r.cfg_read32(0x20), !(VIRTIO_BAR_SIZE as u32 - 1), "BAR4: 16 KiB memory");
    r.cfg_write32(0x20, BAR4 as u32);
    let caps = r.capabilities();
    let mut virtio = Vec::new();
    for &(id, at) in &caps {
        if id == PCI_CAP_ID_VENDOR {
            let w0 = r.cfg_read32(at);
            let w1 = r.cfg_read32(at + 4);
            virtio.push(((w0 >> 24) as u8, w1 as u8, r.cfg_read32(at + 8), r.cfg_read32(at + 12)));
            if (w0 >> 24) as u8 == PCI_CAP_NOTIFY_CFG {
                assert_eq!((w0 >> 16) as u8, PCI_NOTIFY_CAP_LEN);
                assert_eq!(r.cfg_read32(at + 16), NOTIFY_OFF_MULTIPLIER);
            }
        }
    }
    virtio.sort();
    assert_eq!(
        virtio,
        vec![
            (PCI_CAP_COMMON_CFG, VIRTIO_BAR, COMMON_OFFSET as u32, COMMON_CFG_LEN as u32),
            (PCI_CAP_NOTIFY_CFG, VIRTIO_BAR, NOTIFY_OFFSET as u32, 4),
            (PCI_CAP_ISR_CFG, VIRTIO_BAR, ISR_OFFSET as u32, 1),
        ],
        "no device-specific structure: the entropy device has no configuration (5.4.4)"
    );
    let msix = caps.iter().find(|c| c.0 == 0x11).expect("MSI-X capability");
    assert_eq!(r.cfg_read32(msix.1) >> 16 & 0x7ff, 1, "2 vectors (N-1 encoded)");
    assert_eq!(r.cfg_read32(msix.1 + 4), MSIX_BAR as u32, "table at BAR1 offset 0");
    assert_eq!(r.rd(COMMON_NUM_QUEUES, 2), 1);
    assert_eq!(r.rd(COMMON_QUEUE_SIZE, 2), 8);

    // vectors=0: no MSI-X at all, INTx only.
    let r = Rig::new(0);
    assert!(r.capabilities().iter().all(|c| c.0 != 0x11));
    r.wr(COMMON_CONFIG_MSIX_VECTOR, 2, 0);
    assert_eq!(r.rd(COMMON_CONFIG_MSIX_VECTOR, 2), NO_VECTOR as u64, "a failed mapping reads NO_VECTOR");
}

#[test]
fn feature_negotiation_needs_version_1_and_only_offered_bits() {
    let r = Rig::new(2);
    r.wr(COMMON_DEVICE_FEATURE_SELECT, 4, 1);
    assert_eq!(r.rd(COMMON_DEVICE_FEATURE, 4), 1, "VIRTIO_F_VERSION_1 offered");
    r.wr(COMMON_DEVICE_FEATURE_SELECT, 4, 0);
    assert_eq!(r.rd(COMMON_DEVICE_FEATURE, 4), 0, "no ring features offered");
    r.wr(COMMON_DEVICE_FEATURE_SELECT, 4, 7);
    assert_eq!(r.rd(COMMON_DEVICE_FEATURE, 4), 0);

    // A legacy-minded driver (no VERSION_1): FEATURES_OK does not stick (3.1.1 step 6).
    r.set_status(STATUS_ACKNOWLEDGE | STATUS_DRIVER);
    r.set_status(STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK);
    assert_eq!(r.status(), STATUS_ACKNOWLEDGE | STATUS_DRIVER);
    // Asking for a feature not offered (EVENT_IDX) is refused too.
    r.wr(COMMON_DRIVER_FEATURE_SELECT, 4, 0);
    r.wr(COMMON_DRIVER_FEATURE, 4, F_EVENT_IDX);
    r.wr(COMMON_DRIVER_FEATURE_SELECT, 4, 1);
    r.wr(COMMON_DRIVER_FEATURE, 4, 1);
    r.set_status(STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK);
    assert_eq!(r.status() & STATUS_FEATURES_OK, 0);
    // VERSION_1 alone is accepted, and then the features are fixed.
    r.wr(COMMON_DRIVER_FEATURE_SELECT, 4, 0);
    r.wr(COMMON_DRIVER_FEATURE, 4, 0);
    r.set_status(STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK);
    assert_ne!(r.status() & STATUS_FEATURES_OK, 0);
    r.wr(COMMON_DRIVER_FEATURE, 4, F_EVENT_IDX);
    assert_eq!(r.rd(COMMON_DRIVER_FEATURE, 4), 0);
    assert_eq!(r.dev.lock().unwrap().driver_features(), F_VERSION_1);
    // Writing 0 resets everything.
    r.set_status(0);
    assert_eq!(r.status(), 0);
    assert_eq!(r.dev.lock().unwrap().driver_features(), 0);
}

#[test]
fn a_request_is_filled_with_random_bytes_dirty_tracked_and_signalled_by_its_msix_vector() {
    let mut r = Rig::new(2);
    r.init_driver(true);
    assert_eq!(r.status() & STATUS_DEVICE_NEEDS_RESET, 0);
    assert_eq!(r.rd(COMMON_QUEUE_MSIX_VECTOR, 2), QUEUE_VECTOR as u64);
    assert_eq!(r.rd(COMMON_QUEUE_ENABLE, 2), 1);
    // Two writable descriptors in two pages, the first chained to the second.
    r.put_descriptor(0, 0x8ff0, 16, DESC_F_WRITE | DESC_F_NEXT, 5);
    r.put_descriptor(5, 0x9000, 48, DESC_F_WRITE, 0);
    r.ram.take_dirty_pages();
    r.offer(0);
    assert_eq!(r.used_idx(), 1);
    assert_eq!(r.used_element(0), (0, 64), "head 0, 64 bytes written");
    let a = r.bytes(0x8ff0, 64);
    assert!(a.iter().any(|&b| b != 0), "random bytes arrived");
    let dirty = r.ram.take_dirty_pages();
    for page in [0x8ff0 / PAGE_SIZE, 0x9000 / PAGE_SIZE, USED / PAGE_SIZE] {
        assert!(dirty.contains(&page), "page {page:#x} dirty in {dirty:x?}");
    }
    assert_eq!(r.msgs.take(), vec![(0xfee0_0000, msi_data(QUEUE_VECTOR))]);
    assert!(!r.pin.level(), "no INTx while MSI-X is enabled");
    assert_eq!(r.isr(), 0, "the ISR is not used with MSI-X");
    // A second request gets different bytes.
    r.offer(0);
    assert_eq!(r.used_idx(), 2);
    assert_ne!(r.bytes(0x8ff0, 64), a);
    assert_eq!(r.msgs.take().len(), 1);
    // Readable descriptors are never written (2.7.4.1); a buffer larger than the per-request
    // bound gets the bound.
    r.put_descriptor(1, 0x20000, 32, 0, 0);
    r.ram.write(0x20000, &[0xaa; 32]).unwrap();
    r.put_descriptor(1, 0x20000, 32, DESC_F_NEXT, 2);
    r.put_descriptor(2, 0x40000, 0x2_0000, DESC_F_WRITE, 0);
    r.offer(1);
    assert_eq!(r.used_element(2), (1, MAX_BYTES_PER_REQUEST));
    assert_eq!(r.bytes(0x20000, 32), vec![0xaa; 32]);
    assert_eq!(r.bytes(0x40000 + MAX_BYTES_PER_REQUEST as u64, 16), vec![0; 16]);
}

#[test]
fn without_msix_the_device_raises_intx_until_the_isr_is_read() {
    let mut r = Rig::new(0);
    r.init_driver(false);
    r.put_descriptor(0, 0x8000, 64, DESC_F_WRITE, 0);
    r.offer(0);
    assert_eq!(r.used_idx(), 1);
    assert!(r.pin.level(), "INTA# asserted");
    assert_ne!(r.cfg_read32(4) >> 16 & 0x8, 0, "PCI Status shows the interrupt");
    assert_eq!(r.isr(), ISR_QUEUE, "ISR bit 0: a used buffer");
    assert!(!r.pin.level(), "reading the ISR deasserts it (4.1.4.5)");
    assert_eq!(r.isr(), 0, "and clears it");
    // The same device with MSI-X capable but not enabled by the driver behaves the same.
    let mut r = Rig::new(2);
    r.init_driver(false);
    r.put_descriptor(0, 0x8000, 64, DESC_F_WRITE, 0);
    r.offer(0);
    assert!(r.pin.level());
    assert!(r.msgs.take().is_empty());
    assert_eq!(r.isr(), ISR_QUEUE);
    // The driver may ask not to be interrupted (2.7.7.2).
    r.ram.write(AVAIL, &AVAIL_F_NO_INTERRUPT.to_le_bytes()).unwrap();
    r.offer(0);
    assert_eq!(r.used_idx(), 2);
    assert!(!r.pin.level());
}

#[test]
fn a_masked_vector_stays_pending_and_is_delivered_when_unmasked() {
    let mut r = Rig::new(2);
    r.init_driver(true);
    r.bus.mmio_write(BAR1 + 16 + 12, &1u32.to_le_bytes()); // mask the queue vector
    r.put_descriptor(0, 0x8000, 64, DESC_F_WRITE, 0);
    r.offer(0);
    assert_eq!(r.used_idx(), 1, "the buffer is used at once");
    assert!(r.msgs.take().is_empty(), "but the message waits");
    let mut pba = [0u8; 8];
    r.bus.mmio_read(BAR1 + 0x800, &mut pba);
    assert_eq!(u64::from_le_bytes(pba), 1 << QUEUE_VECTOR, "PBA shows it pending");
    r.bus.mmio_write(BAR1 + 16 + 12, &0u32.to_le_bytes());
    assert_eq!(r.msgs.take(), vec![(0xfee0_0000, msi_data(QUEUE_VECTOR))]);
    r.bus.mmio_read(BAR1 + 0x800, &mut pba);
    assert_eq!(u64::from_le_bytes(pba), 0);
    assert!(!r.pin.level());
}

#[test]
fn buffers_wait_for_driver_ok_and_queue_registers_follow_the_rules() {
    let mut r = Rig::new(2);
    r.set_status(STATUS_ACKNOWLEDGE | STATUS_DRIVER);
    r.wr(COMMON_DRIVER_FEATURE_SELECT, 4, 1);
    r.wr(COMMON_DRIVER_FEATURE, 4, 1);
    r.set_status(STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK);
    // A queue that does not exist reads size 0 and ignores writes.
    r.wr(COMMON_QUEUE_SELECT, 2, 1);
    assert_eq!(r.rd(COMMON_QUEUE_SIZE, 2), 0);
    r.wr(COMMON_QUEUE_ENABLE, 2, 1);
    assert_eq!(r.rd(COMMON_QUEUE_ENABLE, 2), 0);
    r.setup_queue(false);
    assert_eq!(r.rd(COMMON_QUEUE_DESC, 4), DESC);
    assert_eq!(r.rd(COMMON_QUEUE_DRIVER, 8), AVAIL);
    assert_eq!(r.rd(COMMON_QUEUE_NOTIFY_OFF, 2), 0);
    // Once enabled, the ring addresses are fixed.
    r.wr(COMMON_QUEUE_DESC, 4, 0x5000);
    assert_eq!(r.rd(COMMON_QUEUE_DESC, 4), DESC);
    // A notification before DRIVER_OK uses nothing (3.1.1) ...
    r.put_descriptor(0, 0x8000, 64, DESC_F_WRITE, 0);
    r.offer(0);
    assert_eq!(r.used_idx(), 0);
    assert!(!r.pin.level());
    // ... and the buffer is used once the driver is ready.
    r.set_status(STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK | STATUS_DRIVER_OK);
    assert_eq!(r.used_idx(), 1);
    assert!(r.pin.level());

    // A queue size that is not a power of two cannot be enabled.
    r.set_status(0);
    assert_eq!(r.rd(COMMON_QUEUE_SIZE, 2), 8, "reset restores the maximum");
    r.wr(COMMON_QUEUE_SIZE, 2, 6);
    r.wr(COMMON_QUEUE_ENABLE, 2, 1);
    assert_eq!(r.rd(COMMON_QUEUE_ENABLE, 2), 0);
    assert_ne!(r.status() & STATUS_DEVICE_NEEDS_RESET, 0);
}

/// Drives one hostile request into a freshly initialised MSI-X device and checks the device
/// answers it as 2.1.2 says: DEVICE_NEEDS_RESET, a configuration change interrupt, nothing used,
/// nothing written; further notifications are ignored until a reset, after which it works.
fn refuses(what: &str, build: impl Fn(&mut Rig)) {
    let mut r = Rig::new(2);
    r.init_driver(true);
    r.ram.take_dirty_pages();
    build(&mut r);
    assert_ne!(r.status() & STATUS_DEVICE_NEEDS_RESET, 0, "{what}: DEVICE_NEEDS_RESET");
    assert_eq!(r.used_idx(), 0, "{what}: nothing used");
    assert_eq!(r.msgs.take(), vec![(0xfee0_0000, msi_data(CONFIG_VECTOR))], "{what}: config interrupt");
    // The test's own ring writes dirty the descriptor and available pages; the device must not
    // have written the used ring or the buffer page.
    let dirty = r.ram.take_dirty_pages();
    assert!(!dirty.contains(&(USED / PAGE_SIZE)) && !dirty.contains(&8), "{what}: device wrote {dirty:x?}");
    r.notify(0);
    assert!(r.msgs.take().is_empty(), "{what}: a broken device stays quiet");
    // Writing DEVICE_NEEDS_RESET away does not work; only a reset does.
    r.set_status(r.status() & !STATUS_DEVICE_NEEDS_RESET);
    assert_ne!(r.status() & STATUS_DEVICE_NEEDS_RESET, 0);
    r.avail_idx = 0;
    r.ram.write(AVAIL + 2, &0u16.to_le_bytes()).unwrap();
    r.init_driver(true);
    r.put_descriptor(0, 0x8000, 64, DESC_F_WRITE, 0);
    r.offer(0);
    assert_eq!(r.used_idx(), 1, "{what}: the reset device works again");
}

#[test]
fn hostile_rings_get_device_needs_reset_and_never_a_panic() {
    refuses("a descriptor loop", |r| {
        r.put_descriptor(0, 0x8000, 8, DESC_F_WRITE | DESC_F_NEXT, 1);
        r.put_descriptor(1, 0x8100, 8, DESC_F_WRITE | DESC_F_NEXT, 0);
        r.offer(0);
    });
    refuses("a self loop", |r| {
        r.put_descriptor(3, 0x8000, 8, DESC_F_WRITE | DESC_F_NEXT, 3);
        r.offer(3);
    });
    refuses("a head beyond the queue", |r| r.offer(8));
    refuses("a next beyond the queue", |r| {
        r.put_descriptor(0, 0x8000, 8, DESC_F_WRITE | DESC_F_NEXT, 0xffff);
        r.offer(0);
    });
    refuses("an available index more than a queue ahead", |r| {
        r.put_descriptor(0, 0x8000, 8, DESC_F_WRITE, 0);
        r.ram.write(AVAIL + 2, &9u16.to_le_bytes()).unwrap();
        r.notify(0);
    });
    refuses("a length wrapping the address space", |r| {
        r.put_descriptor(0, u64::MAX - 8, 64, DESC_F_WRITE, 0);
        r.offer(0);
    });
    refuses("a chain longer than 4 GiB", |r| {
        r.put_descriptor(0, 0x8000, u32::MAX, DESC_F_WRITE | DESC_F_NEXT, 1);
        r.put_descriptor(1, 0x8000, u32::MAX, DESC_F_WRITE, 0);
        r.offer(0);
    });
    refuses("a buffer outside RAM", |r| {
        r.put_descriptor(0, RAM as u64 - 16, 64, DESC_F_WRITE, 0);
        r.offer(0);
    });
    refuses("a buffer in MMIO", |r| {
        r.put_descriptor(0, BAR4, 64, DESC_F_WRITE, 0);
        r.offer(0);
    });
    refuses("an indirect descriptor", |r| {
        r.put_descriptor(0, 0x8000, 32, DESC_F_INDIRECT, 0);
        r.offer(0);
    });
    refuses("readable after writable", |r| {
        r.put_descriptor(0, 0x8000, 8, DESC_F_WRITE | DESC_F_NEXT, 1);
        r.put_descriptor(1, 0x8100, 8, 0, 0);
        r.offer(0);
    });
    refuses("rings outside RAM", |r| {
        r.set_status(0);
        r.set_status(STATUS_ACKNOWLEDGE | STATUS_DRIVER);
        r.wr(COMMON_DRIVER_FEATURE_SELECT, 4, 1);
        r.wr(COMMON_DRIVER_FEATURE, 4, 1);
        r.set_status(STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK);
        r.wr(COMMON_CONFIG_MSIX_VECTOR, 2, CONFIG_VECTOR as u64);
        r.wr(COMMON_QUEUE_DRIVER, 8, 0x4000_0000);
        r.wr(COMMON_QUEUE_ENABLE, 2, 1);
        r.set_status(STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK | STATUS_DRIVER_OK);
        r.notify(0);
    });
    refuses("a misaligned ring", |r| {
        r.set_status(0);
        r.set_status(STATUS_ACKNOWLEDGE | STATUS_DRIVER);
        r.wr(COMMON_DRIVER_FEATURE_SELECT, 4, 1);
        r.wr(COMMON_DRIVER_FEATURE, 4, 1);
        r.set_status(STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK);
        r.wr(COMMON_CONFIG_MSIX_VECTOR, 2, CONFIG_VECTOR as u64);
        r.set_status(STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK | STATUS_DRIVER_OK);
        r.wr(COMMON_QUEUE_DESC, 4, DESC + 8);
        r.wr(COMMON_QUEUE_ENABLE, 2, 1);
    });
}

#[test]
fn dma_without_bus_mastering_is_refused() {
    let mut r = Rig::new(0);
    r.init_driver(false);
    r.cfg_write32(0x04, 0x2); // memory space only
    r.put_descriptor(0, 0x8000, 64, DESC_F_WRITE, 0);
    r.ram.take_dirty_pages();
    r.offer(0);
    assert_eq!(r.ram.take_dirty_pages(), vec![AVAIL / PAGE_SIZE], "only the test's own ring write");
    assert_ne!(r.status() & STATUS_DEVICE_NEEDS_RESET, 0);
    assert_eq!(r.isr(), ISR_CONFIG, "config change notification through the ISR");
}

#[test]
fn odd_register_accesses_are_ignored() {
    let r = Rig::new(2);
    // Wrong widths, unknown offsets, the read-only fields, other BARs.
    r.wr(COMMON_DEVICE_STATUS, 4, 0xffff_ffff);
    assert_eq!(r.status(), 0);
    r.wr(COMMON_NUM_QUEUES, 2, 9);
    assert_eq!(r.rd(COMMON_NUM_QUEUES, 2), 1);
    assert_eq!(r.rd(COMMON_QUEUE_SIZE, 4), 0, "a 4-byte read of a 2-byte field matches no field");
    assert_eq!(r.rd(0x0fff, 1), 0);
    assert_eq!(r.rd(DEVICE_OFFSET, 4), 0);
    r.wr(NOTIFY_OFFSET + 0x800, 2, 0);
    r.wr(NOTIFY_OFFSET + 1, 2, 0);
    r.wr(ISR_OFFSET, 1, 0xff);
    assert_eq!(r.isr(), 0);
    r.wr(COMMON_QUEUE_DESC + 2, 2, 0x1234);
    assert_eq!(r.rd(COMMON_QUEUE_DESC, 8), 0);
}

#[test]
fn state_round_trips_mid_stream_and_hostile_payloads_are_refused() {
    let mut r = Rig::new(2);
    r.init_driver(true);
    r.put_descriptor(0, 0x8000, 64, DESC_F_WRITE, 0);
    r.offer(0);
    r.msgs.take();
    let saved = save_to_vec(&*r.dev.lock().unwrap());

    // A new device on the same RAM and interrupt sinks, restored, continues where it was.
    let res = PciResources { intx: r.pin.clone(), msi: r.msgs.clone(), memory: r.ram.clone() };
    let mut b = VirtioPci::new(VirtioRng::default(), 2, res).unwrap();
    restore_from(&mut b, VirtioRngPci::VERSION, &saved).unwrap();
    assert_eq!(save_to_vec(&b), saved);
    let avail_idx = r.avail_idx;
    let mut r = Rig::with_device(Arc::new(Mutex::new(b)), r.pin.clone(), r.msgs.clone(), r.ram.clone());
    r.avail_idx = avail_idx;
    r.offer(0);
    assert_eq!(r.used_idx(), 2);
    assert_eq!(r.used_element(1), (0, 64));
    assert_eq!(r.msgs.take(), vec![(0xfee0_0000, msi_data(QUEUE_VECTOR))], "the MSI-X table came back");

    let fresh = || VirtioPci::new(VirtioRng::default(), 2, PciResources::disconnected()).unwrap();
    crate::snapshot::fuzz::hostile_payloads(fresh, &saved);
    // An image from a device with another queue or vector layout is refused.
    let mut other = VirtioPci::new(VirtioRng::default(), 0, PciResources::disconnected()).unwrap();
    assert!(restore_from(&mut other, VirtioRngPci::VERSION, &saved).is_err());
}
