//! Fuzzes the Xen ioreq path: arbitrary 32-byte slots (and arbitrary slot states) through
//! decode, dispatch and the shared-page handshake, against a bus with a port device, an MMIO
//! device and a PCI function, and a small guest RAM.
//!
//! Invariants checked: the handshake never panics, a READY slot always ends IORESP_READY and
//! any other state is left untouched, only `data` changes, and only non-pointer reads change it;
//! guest RAM is only written by rep reads, inside the span the request names.
//!
//! `cargo fuzz run xen_ioreq` from devicemodel/ (on stable: `RUSTC_BOOTSTRAP=1`).
#![no_main]

use std::sync::{Arc, Mutex, OnceLock};

use devices::bus::{AddressSpace, BusDevice, IoBus};
use devices::chipset::i440fx::I440fx;
use devices::memory::TestMemory;
use devices::pci::PciAddress;
use devicemodel::xen::ioreq::{rep_span, service_slot, RawIoreq, SlotOutcome, VecIoreqPage, STATE_IOREQ_READY, STATE_IORESP_READY};
use libfuzzer_sys::fuzz_target;

const RAM: usize = 64 * 1024;

struct Counter(u8);
impl BusDevice for Counter {
    fn read(&mut self, _: u64, data: &mut [u8]) {
        for b in data {
            *b = self.0;
            self.0 = self.0.wrapping_add(1);
        }
    }
    fn write(&mut self, _: u64, data: &[u8]) {
        self.0 = self.0.wrapping_add(data.first().copied().unwrap_or(0));
    }
}

fn bus() -> &'static IoBus {
    static BUS: OnceLock<IoBus> = OnceLock::new();
    BUS.get_or_init(|| {
        let bus = IoBus::new();
        bus.insert(AddressSpace::Io, 0x1f0, 8, "counter", Arc::new(Mutex::new(Counter(0)))).unwrap();
        bus.insert(AddressSpace::Mmio, 0xe000_0000, 0x1000, "mmio", Arc::new(Mutex::new(Counter(0)))).unwrap();
        bus.add_pci_device(PciAddress::new(0, 0, 0), Arc::new(Mutex::new(I440fx::new()))).unwrap();
        bus
    })
}

fuzz_target!(|input: &[u8]| {
    if input.len() < 32 {
        return;
    }
    let mut raw = [0u8; 32];
    raw.copy_from_slice(&input[..32]);
    let req = RawIoreq::from_bytes(&raw);
    let mem = TestMemory::new(RAM);
    let page = VecIoreqPage::new(1);
    page.post(0, &req);
    let outcome = service_slot(&page, 0, bus(), &mem, &|| {});
    let after = page.raw(0);
    if req.state != STATE_IOREQ_READY {
        assert_eq!(outcome, SlotOutcome::Ignored { state: req.state });
        assert_eq!(after, req);
        return;
    }
    assert_eq!(after.state, STATE_IORESP_READY);
    assert_eq!(RawIoreq { data: req.data, state: req.state, ..after }, req, "only data and state change");
    if !req.read || req.data_is_ptr {
        assert_eq!(after.data, req.data);
    }
    let dirty = mem.take_dirty_pages();
    if !dirty.is_empty() {
        assert!(req.read && req.data_is_ptr);
        let (low, len) = rep_span(req.data, req.size as u8, req.count, req.df).expect("a written span is valid");
        for p in dirty {
            assert!(p * 4096 + 4095 >= low && p * 4096 < low + len as u64);
        }
    }
});
