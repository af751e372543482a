//! Interrupt delivery on Xen: the hypervisor owns the PIC, IOAPIC and LAPICs, so a device's line
//! becomes a DMOP. ISA lines use `set_isa_irq_level`; PCI INTx pins `set_pci_intx_level` (Xen
//! applies the PIIX3 PIRQ routing the device model forwards with `set_pci_link_route`); MSIs
//! `inject_msi`. Levels are sent on both edges: a deassert that never reaches Xen leaves a
//! level-triggered line stuck (xen-interface.md section 11, item 10).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use devices::interrupt::{InterruptLine, InterruptService, IntxPin, MsiSink, SharedLine};
use devices::pci::PciAddress;

use super::dmop::DeviceModelOps;

/// ISA IRQ `irq` (0-15).
#[derive(Debug)]
pub struct XenIsaIrq {
    dm: DeviceModelOps,
    irq: u8,
}

impl XenIsaIrq {
    pub fn new(dm: DeviceModelOps, irq: u8) -> Self {
        XenIsaIrq { dm, irq }
    }
}

impl InterruptLine for XenIsaIrq {
    fn set_level(&self, asserted: bool) {
        if let Err(e) = self.dm.set_isa_irq_level(self.irq, asserted) {
            log::error!("ISA IRQ {} level {}: {e}", self.irq, asserted as u8);
        }
    }
}

/// INTx pin of a PCI device on bus 0 (Xen only routes segment 0, bus 0).
#[derive(Debug)]
pub struct XenPciIntx {
    dm: DeviceModelOps,
    device: u8,
    /// 0-3 for INTA#-INTD#.
    intx: u8,
}

impl XenPciIntx {
    /// `pin` as in the Interrupt Pin register: 1-4 for INTA#-INTD#. `None` for pin 0 or > 4.
    pub fn new(dm: DeviceModelOps, device: u8, pin: u8) -> Option<Self> {
        ((1..=4).contains(&pin) && device < 32).then(|| XenPciIntx { dm, device, intx: pin - 1 })
    }
}

impl InterruptLine for XenPciIntx {
    fn set_level(&self, asserted: bool) {
        if let Err(e) = self.dm.set_pci_intx_level(0, 0, self.device, self.intx, asserted) {
            log::error!("PCI 00:{:02x} INT{} level {}: {e}", self.device, (b'A' + self.intx) as char, asserted as u8);
        }
    }
}

/// MSIs of emulated devices.
#[derive(Debug)]
pub struct XenMsi {
    dm: DeviceModelOps,
}

impl XenMsi {
    pub fn new(dm: DeviceModelOps) -> Self {
        XenMsi { dm }
    }
}

impl MsiSink for XenMsi {
    fn send_msi(&self, address: u64, data: u32) {
        if let Err(e) = self.dm.inject_msi(address, data) {
            log::error!("MSI {address:#x}/{data:#x}: {e}");
        }
    }

    /// A message with vector 0 is one the guest remapped onto an event-channel PIRQ (Linux's
    /// `xen_hvm_setup_msi_irqs`: the PIRQ in the destination bits); Xen delivers it to the PIRQ
    /// and the guest masks it through the event channel, leaving the MSI-X Mask Bit as it was.
    fn masked_elsewhere(&self, _address: u64, data: u32) -> bool {
        data & 0xff == 0
    }
}

/// Every interrupt of the machine on Xen. Xen keeps one level per ISA IRQ and one per (device,
/// pin) for the device model, so sources sharing one of those are ORed here first.
pub struct XenInterrupts {
    dm: DeviceModelOps,
    isa: Vec<Arc<SharedLine>>,
    intx: Mutex<BTreeMap<(u8, IntxPin), Arc<SharedLine>>>,
    msi: Arc<XenMsi>,
}

impl XenInterrupts {
    pub fn new(dm: DeviceModelOps) -> Arc<Self> {
        let isa = (0..16u8)
            .map(|irq| SharedLine::new(Arc::new(XenIsaIrq::new(dm.clone(), irq)) as Arc<dyn InterruptLine>))
            .collect();
        Arc::new(XenInterrupts { msi: Arc::new(XenMsi::new(dm.clone())), dm, isa, intx: Mutex::new(BTreeMap::new()) })
    }
}

impl InterruptService for XenInterrupts {
    fn isa_irq(&self, irq: u8) -> Arc<dyn InterruptLine> {
        match self.isa.get(irq as usize) {
            Some(w) => w.input(),
            None => Arc::new(devices::interrupt::DisconnectedLine),
        }
    }

    fn pci_intx(&self, address: PciAddress, pin: IntxPin) -> Arc<dyn InterruptLine> {
        // Xen routes bus 0 only, slots 0-31; anything else has no INTx there.
        let Some(line) = XenPciIntx::new(self.dm.clone(), address.device, pin.register()).filter(|_| address.bus == 0)
        else {
            return Arc::new(devices::interrupt::DisconnectedLine);
        };
        let mut intx = self.intx.lock().unwrap_or_else(|e| e.into_inner());
        intx.entry((address.device, pin)).or_insert_with(|| SharedLine::new(Arc::new(line))).input()
    }

    fn msi(&self, _address: PciAddress) -> Arc<dyn MsiSink> {
        self.msi.clone()
    }

    fn pirq_routed(&self, pirq: u8, irq: Option<u8>) {
        if let Err(e) = self.dm.set_pci_link_route(pirq, irq.unwrap_or(0)) {
            log::error!("PIRQ{} -> IRQ {:?}: {e}", (b'A' + pirq.min(3)) as char, irq);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xen::dmop::testing::RecordingTransport;
    use crate::xen::dmop::{
        XEN_DMOP_INJECT_MSI, XEN_DMOP_SET_ISA_IRQ_LEVEL, XEN_DMOP_SET_PCI_INTX_LEVEL, XEN_DMOP_SET_PCI_LINK_ROUTE,
    };
    use devices::chipset::piix3::Piix3;
    use devices::pci::PciDevice;

    fn dm() -> (std::sync::Arc<RecordingTransport>, DeviceModelOps) {
        let t = RecordingTransport::new();
        (t.clone(), DeviceModelOps::new(t, 3))
    }

    #[test]
    fn an_isa_pulse_asserts_then_deasserts() {
        let (t, dm) = dm();
        XenIsaIrq::new(dm, 4).pulse();
        let c = t.take();
        let seen: Vec<(u32, u64, u64)> = c.iter().map(|c| (c.op(), c.field(0, 1), c.field(1, 1))).collect();
        assert_eq!(seen, vec![(XEN_DMOP_SET_ISA_IRQ_LEVEL, 4, 1), (XEN_DMOP_SET_ISA_IRQ_LEVEL, 4, 0)]);
        assert!(c.iter().all(|c| c.domid == 3));
    }

    #[test]
    fn intx_uses_slot_and_zero_based_pin_on_bus_zero() {
        let (t, dm) = dm();
        assert!(XenPciIntx::new(dm.clone(), 3, 0).is_none());
        assert!(XenPciIntx::new(dm.clone(), 3, 5).is_none());
        let line = XenPciIntx::new(dm, 3, 2).unwrap();
        line.set_level(true);
        line.set_level(false);
        let c = t.take();
        // domain 0 (2 bytes), bus 0, device 3, intx 1 (INTB), level.
        let seen: Vec<[u64; 5]> =
            c.iter().map(|c| [c.op() as u64, c.field(0, 2), c.field(2, 1), c.field(3, 1), c.field(4, 2)]).collect();
        assert_eq!(
            seen,
            vec![
                [XEN_DMOP_SET_PCI_INTX_LEVEL as u64, 0, 0, 3, 1 | 1 << 8],
                [XEN_DMOP_SET_PCI_INTX_LEVEL as u64, 0, 0, 3, 1]
            ]
        );
    }

    #[test]
    fn pirq_remapped_msix_entries_are_not_held_back_by_their_mask_bit() {
        use devices::pci::config::{BarKind, ConfigSpace, PciIds};
        use devices::pci::msix::{MsixCapability, MsixLocation};
        let (t, dm) = dm();
        let mut config = ConfigSpace::new(PciIds::default());
        config.declare_bar(1, BarKind::Memory32 { prefetchable: false }, 0x1000).unwrap();
        let loc = |offset| MsixLocation { bar: 1, offset };
        let mut msix =
            MsixCapability::new(&mut config, 2, loc(0), loc(0x800), std::sync::Arc::new(XenMsi::new(dm))).unwrap();
        // Entry 0: a native message (vector 0x31), entry 1: PIRQ 40 remapped (vector 0); both
        // left with their Mask Bit set, as Linux's Xen PIRQ path leaves them.
        let entry = |msix: &mut MsixCapability, i: u64, addr: u32, data: u32| {
            msix.bar_write(1, i * 16, &addr.to_le_bytes());
            msix.bar_write(1, i * 16 + 8, &data.to_le_bytes());
        };
        entry(&mut msix, 0, 0xfee0_0000, 0x4031);
        entry(&mut msix, 1, 0xfee2_8000, 0x4300);
        let cap = msix.offset();
        config.write(u16::from(cap) + 2, &0x8000u16.to_le_bytes());
        msix.after_config_write(&config);
        msix.fire(0);
        msix.fire(1);
        let c = t.take();
        let sent: Vec<u64> = c.iter().map(|c| c.field(0, 4)).collect();
        assert_eq!(sent, vec![0x4300], "only the PIRQ-remapped message goes out; the native one waits for unmask");
    }

    #[test]
    fn msi_goes_to_inject_msi() {
        let (t, dm) = dm();
        XenMsi::new(dm).send_msi(0xfee0_0000, 0x4031);
        let c = t.take();
        assert_eq!((c[0].op(), c[0].field(0, 4), c[0].field(8, 8)), (XEN_DMOP_INJECT_MSI, 0x4031, 0xfee0_0000));
    }

    #[test]
    fn piix3_route_programming_reaches_xen() {
        let (t, dm) = dm();
        let mut piix3 = Piix3::new();
        piix3.set_pirq_observer(devices::chipset::piix3::observer_for(XenInterrupts::new(dm)));
        // hvmloader routes PIRQA-D to 5, 10, 11, 5 with one byte write each; then disables PIRQB.
        for (i, irq) in [5u8, 10, 11, 5].into_iter().enumerate() {
            piix3.config_write(0x60 + i as u16, &[irq]);
        }
        piix3.config_write(0x61, &[0x80]);
        let seen: Vec<(u32, u64, u64)> = t.take().iter().map(|c| (c.op(), c.field(0, 1), c.field(1, 1))).collect();
        let r = XEN_DMOP_SET_PCI_LINK_ROUTE;
        assert_eq!(seen, vec![(r, 0, 5), (r, 1, 10), (r, 2, 11), (r, 3, 5), (r, 1, 0)]);
    }
}
