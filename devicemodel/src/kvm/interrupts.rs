//! Interrupt delivery on KVM with the in-kernel irqchip: ISA and routed PCI INTx lines through
//! `KVM_IRQ_LINE` (the kernel's PIC and IOAPIC share GSIs 0-15), MSIs through `KVM_SIGNAL_MSI`.

use std::sync::Arc;

use devices::interrupt::{InterruptLine, MsiSink};
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

// First users: the PCI devices with MSI/MSI-X (HDA, xHCI, passthrough) that come next.
#[allow(dead_code)]
pub struct KvmMsi {
    vm: Arc<VmFd>,
}

#[allow(dead_code)]
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
