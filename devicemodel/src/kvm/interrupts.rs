//! Interrupt delivery on KVM with the in-kernel irqchip: ISA and routed PCI INTx lines through
//! `KVM_IRQ_LINE` (the kernel's PIC and IOAPIC share GSIs 0-15), MSIs through `KVM_SIGNAL_MSI`.
//!
//! The board's PCI INTx routing is ours on KVM: [`KvmInterrupts`] swizzles each slot's pins onto
//! the PIIX3 PIRQs and follows the guest's PIRQ route control writes
//! ([`devices::pci::intx_router`]). Every source on a GSI is ORed before it reaches the kernel,
//! so `KVM_IRQ_LINE` (one level per GSI for all of userspace) sees the wire's real level.
//!
//! Why `KVM_IRQ_LINE` and `KVM_SIGNAL_MSI` rather than irqfd and `KVM_SET_GSI_ROUTING` for
//! emulated devices: the device model computes every level itself (it must OR shared sources
//! anyway), and a level change is one ioctl either way. irqfd pays off where the kernel signals
//! the eventfd (vhost, VFIO passthrough); those come with passthrough, through the same service.

use std::sync::Arc;

use devices::interrupt::{InterruptLine, InterruptService, IntxPin, MsiSink, SharedLine};
use devices::pci::intx_router::PirqRouter;
use devices::pci::PciAddress;
use kvm_ioctls::VmFd;

/// One GSI of the in-kernel PIC/IOAPIC.
pub struct KvmIrqLine {
    vm: Arc<VmFd>,
    gsi: u32,
}

impl KvmIrqLine {
    pub fn new(vm: Arc<VmFd>, gsi: u32) -> Self {
        KvmIrqLine { vm, gsi }
    }
}

impl InterruptLine for KvmIrqLine {
    fn set_level(&self, asserted: bool) {
        log::trace!(target: "irq", "gsi {} level {}", self.gsi, asserted as u8);
        if let Err(e) = self.vm.set_irq_line(self.gsi, asserted) {
            log::error!("KVM_IRQ_LINE gsi {} level {}: {e}", self.gsi, asserted as u8);
        }
    }
}

/// MSIs of the emulated devices.
pub struct KvmMsi {
    vm: Arc<VmFd>,
}

impl KvmMsi {
    pub fn new(vm: Arc<VmFd>) -> Self {
        KvmMsi { vm }
    }
}

impl MsiSink for KvmMsi {
    fn send_msi(&self, address: u64, data: u32) {
        let msi = kvm_bindings::kvm_msi {
            address_lo: address as u32,
            address_hi: (address >> 32) as u32,
            data,
            ..Default::default()
        };
        if let Err(e) = self.vm.signal_msi(msi) {
            log::error!("KVM_SIGNAL_MSI {address:#x}/{data:#x}: {e}");
        }
    }
}

/// GSIs 0-15: the ISA IRQs of the in-kernel PIC and IOAPIC (the IOAPIC's pins 16-23 are not
/// wired on this board: PCI INTx reaches the ISA IRQs through the PIIX3 PIRQs, as on i440FX).
const ISA_GSIS: u8 = 16;

/// Every interrupt of the machine on KVM.
pub struct KvmInterrupts {
    isa: Vec<Arc<SharedLine>>,
    router: Arc<PirqRouter>,
    msi: Arc<KvmMsi>,
}

impl KvmInterrupts {
    pub fn new(vm: Arc<VmFd>) -> Arc<Self> {
        let isa: Vec<Arc<SharedLine>> = (0..u32::from(ISA_GSIS))
            .map(|gsi| SharedLine::new(Arc::new(KvmIrqLine::new(vm.clone(), gsi)) as Arc<dyn InterruptLine>))
            .collect();
        let wires = isa.clone();
        let router = PirqRouter::new(Box::new(move |irq| match wires.get(irq as usize) {
            Some(w) => w.input(),
            None => Arc::new(devices::interrupt::DisconnectedLine),
        }));
        Arc::new(KvmInterrupts { isa, router, msi: Arc::new(KvmMsi::new(vm)) })
    }
}

impl InterruptService for KvmInterrupts {
    fn isa_irq(&self, irq: u8) -> Arc<dyn InterruptLine> {
        match self.isa.get(irq as usize) {
            Some(w) => w.input(),
            None => Arc::new(devices::interrupt::DisconnectedLine),
        }
    }

    fn pci_intx(&self, address: PciAddress, pin: IntxPin) -> Arc<dyn InterruptLine> {
        self.router.intx(address.device, pin)
    }

    fn msi(&self, _address: PciAddress) -> Arc<dyn MsiSink> {
        self.msi.clone()
    }

    fn pirq_routed(&self, pirq: u8, irq: Option<u8>) {
        log::debug!("PIRQ{} -> IRQ {irq:?}", (b'A' + pirq.min(3)) as char);
        self.router.set_route(pirq, irq)
    }
}
