//! The edu device driven as a guest driver does: configuration cycles on 0xcf8/0xcfc, then MMIO
//! in BAR0.

use std::sync::{Arc, Mutex};

use super::spec::*;
use super::Edu;
use crate::bus::IoBus;
use crate::interrupt::RecordingLine;
use crate::memory::{GuestMemory, TestMemory};
use crate::pci::function::PciResources;
use crate::pci::PciAddress;
use crate::snapshot::{restore_from, save_to_vec, Snapshot};

const BAR0: u64 = 0xfe00_0000;
const SLOT: u8 = 3;

type Messages = crate::interrupt::RecordingMsiSink;

struct Rig {
    bus: IoBus,
    edu: Arc<Mutex<Edu>>,
    pin: Arc<RecordingLine>,
    msgs: Arc<Messages>,
    ram: Arc<TestMemory>,
}

fn cfg_addr(reg: u8) -> [u8; 4] {
    (0x8000_0000u32 | (SLOT as u32) << 11 | reg as u32).to_le_bytes()
}

impl Rig {
    fn new() -> Rig {
        let pin = Arc::new(RecordingLine::default());
        let msgs = Arc::new(Messages::default());
        let ram = Arc::new(TestMemory::new(0x20_0000));
        let edu =
            Arc::new(Mutex::new(Edu::new(PciResources { intx: pin.clone(), msi: msgs.clone(), memory: ram.clone() })));
        let bus = IoBus::new();
        bus.add_pci_device(PciAddress::new(0, 0, 0), Arc::new(Mutex::new(crate::chipset::i440fx::I440fx::new())))
            .unwrap();
        bus.add_pci_device(PciAddress::new(0, SLOT, 0), edu.clone()).unwrap();
        let rig = Rig { bus, edu, pin, msgs, ram };
        rig.cfg_write32(0x10, BAR0 as u32);
        rig.cfg_write32(0x04, 0x6); // memory space + bus master
        rig
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
    fn read32(&self, off: u64) -> u32 {
        let mut d = [0u8; 4];
        self.bus.mmio_read(BAR0 + off, &mut d);
        u32::from_le_bytes(d)
    }
    fn write32(&self, off: u64, v: u32) {
        self.bus.mmio_write(BAR0 + off, &v.to_le_bytes());
    }
    fn write64(&self, off: u64, v: u64) {
        self.bus.mmio_write(BAR0 + off, &v.to_le_bytes());
    }
}

#[test]
fn identifies_as_qemus_edu_with_a_1m_bar_and_msi() {
    let r = Rig::new();
    assert_eq!(r.cfg_read32(0), 0x11e8_1234);
    assert_eq!(r.cfg_read32(8) >> 8, 0x00ff00, "class 00ff, prog-if 0");
    assert_eq!(r.cfg_read32(0x3c) >> 8 & 0xff, 1, "INTA#");
    r.cfg_write32(0x10, 0xffff_ffff);
    assert_eq!(r.cfg_read32(0x10), 0xfff0_0000, "1 MiB, 32-bit, non-prefetchable");
    r.cfg_write32(0x10, BAR0 as u32);
    let cap = r.cfg_read32(0x34) & 0xff;
    assert_eq!(r.cfg_read32(cap as u8) & 0xff, 0x05, "the capability list holds MSI");
    assert_eq!(r.read32(IDENT), IDENT_VALUE);
    r.write32(LIVENESS, 0x1234_5678);
    assert_eq!(r.read32(LIVENESS), !0x1234_5678);
    // Only 4-byte accesses below 0x80: others read all ones and writes are dropped.
    let mut b = [0u8; 2];
    r.bus.mmio_read(BAR0 + IDENT, &mut b);
    assert_eq!(b, [0xff, 0xff]);
}

#[test]
fn intx_is_a_level_held_until_acknowledged_and_masked_by_interrupt_disable() {
    let r = Rig::new();
    r.write32(IRQ_RAISE, 0x10);
    assert!(r.pin.level());
    assert_eq!(r.read32(IRQ_STATUS), 0x10);
    assert_ne!(r.cfg_read32(4) >> 16 & 0x8, 0, "Status bit 3 shows the request");
    // uio_pci_generic's interrupt handler masks the pin with Interrupt Disable.
    r.cfg_write32(0x04, 0x6 | 1 << 10);
    assert!(!r.pin.level());
    r.write32(IRQ_RAISE, 0x01);
    r.write32(IRQ_ACK, 0x10);
    assert_eq!(r.read32(IRQ_STATUS), 0x01, "acknowledging one bit keeps the other");
    r.cfg_write32(0x04, 0x6);
    assert!(r.pin.level(), "unmasking with a request pending interrupts again");
    r.write32(IRQ_ACK, 0x01);
    assert!(!r.pin.level());
    assert_eq!(r.cfg_read32(4) >> 16 & 0x8, 0);
    assert_eq!(r.pin.rising_edges(), 2);
}

#[test]
fn with_msi_enabled_each_raise_is_one_message() {
    let r = Rig::new();
    let cap = (r.cfg_read32(0x34) & 0xff) as u8;
    r.cfg_write32(cap + 4, 0xfee0_0000);
    r.cfg_write32(cap + 8, 0);
    r.cfg_write32(cap + 0xc, 0x4041);
    r.cfg_write32(cap, r.cfg_read32(cap) | 1 << 16); // MSI Enable
    r.write32(IRQ_RAISE, 1);
    r.write32(IRQ_RAISE, 2);
    assert!(!r.pin.level(), "no INTx while MSI is enabled");
    assert_eq!(r.msgs.messages(), vec![(0xfee0_0000, 0x4041), (0xfee0_0000, 0x4041)]);
}

#[test]
fn factorial_and_dma_complete_with_their_interrupts() {
    let r = Rig::new();
    r.write32(STATUS, STATUS_IRQ_FACTORIAL);
    r.write32(FACTORIAL, 10);
    assert_eq!(r.read32(FACTORIAL), 3_628_800);
    assert_eq!(r.read32(STATUS) & STATUS_COMPUTING, 0);
    assert_eq!(r.read32(IRQ_STATUS), IRQ_FACTORIAL_DONE);
    r.write32(FACTORIAL, u32::MAX);
    assert_eq!(r.read32(FACTORIAL), 0, "huge factorials are 0 mod 2^32, at once");
    r.write32(IRQ_ACK, IRQ_FACTORIAL_DONE);

    // RAM -> buffer, then buffer -> elsewhere in RAM, interrupting when done.
    r.ram.write(0x1000, b"hello, device").unwrap();
    r.ram.take_dirty_pages();
    r.write64(DMA_SOURCE, 0x1000);
    r.write64(DMA_DESTINATION, DMA_BUFFER_START + 8);
    r.write64(DMA_COUNT, 13);
    r.write64(DMA_COMMAND, DMA_RUN);
    assert_eq!(r.read32(DMA_COMMAND) as u64 & DMA_RUN, 0);
    r.write64(DMA_SOURCE, DMA_BUFFER_START + 8);
    r.write64(DMA_DESTINATION, 0x5_0010);
    r.write64(DMA_COMMAND, DMA_RUN | DMA_TO_RAM | DMA_IRQ);
    let mut out = [0u8; 13];
    r.ram.read(0x5_0010, &mut out).unwrap();
    assert_eq!(&out, b"hello, device");
    assert_eq!(r.ram.take_dirty_pages(), vec![0x50], "the device's write is dirty-tracked");
    assert_eq!(r.read32(IRQ_STATUS), IRQ_DMA_DONE);
    assert!(r.pin.level());
}

#[test]
fn hostile_dma_is_refused_without_touching_memory() {
    let r = Rig::new();
    for (src, dst, count) in [
        (DMA_BUFFER_START, 0x1000, DMA_BUFFER_SIZE + 1), // past the buffer's end
        (DMA_BUFFER_START - 1, 0x1000, 4),               // before it
        (u64::MAX - 2, 0x1000, 8),                       // overflowing
        (DMA_BUFFER_START + 0xff0, 0x1000, u64::MAX),    // absurd count
        (DMA_BUFFER_START, 0x1f_fff0, 0x100),            // RAM side beyond guest memory
    ] {
        r.write64(DMA_SOURCE, src);
        r.write64(DMA_DESTINATION, dst);
        r.write64(DMA_COUNT, count);
        r.write64(DMA_COMMAND, DMA_RUN | DMA_TO_RAM | DMA_IRQ);
        assert_eq!(r.read32(DMA_COMMAND) as u64 & DMA_RUN, 0, "the engine stops");
    }
    assert!(r.ram.take_dirty_pages().is_empty());
    // Without bus mastering nothing moves either.
    r.cfg_write32(0x04, 0x2);
    r.write64(DMA_SOURCE, DMA_BUFFER_START);
    r.write64(DMA_DESTINATION, 0x2000);
    r.write64(DMA_COUNT, 16);
    r.write64(DMA_COMMAND, DMA_RUN | DMA_TO_RAM);
    assert!(r.ram.take_dirty_pages().is_empty());
}

#[test]
fn state_round_trips_and_hostile_payloads_are_refused() {
    let r = Rig::new();
    r.write32(LIVENESS, 7);
    r.write32(IRQ_RAISE, 0x30);
    let saved = save_to_vec(&*r.edu.lock().unwrap());
    let fresh = || Edu::new(PciResources::disconnected());
    let pin = Arc::new(RecordingLine::default());
    let mut b = Edu::new(PciResources { intx: pin.clone(), ..PciResources::disconnected() });
    restore_from(&mut b, Edu::VERSION, &saved).unwrap();
    assert!(pin.level(), "a restored pending interrupt drives the pin again");
    assert_eq!(save_to_vec(&b), saved);
    crate::snapshot::fuzz::hostile_payloads(fresh, &saved);
}
