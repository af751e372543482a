//! How a device raises interrupts. Backends implement these: KVM through `KVM_IRQ_LINE` / irqfd and
//! `KVM_SIGNAL_MSI`, Xen through `set_isa_irq_level`, `set_pci_intx_level` and `inject_msi`.

/// One interrupt wire (an ISA IRQ or a PCI INTx pin after routing).
///
/// Level-triggered sources call [`InterruptLine::set_level`] with `true` to assert and `false` to
/// deassert; the line stays asserted until the device deasserts it. Edge sources use [`pulse`].
///
/// [`pulse`]: InterruptLine::pulse
pub trait InterruptLine: Send + Sync {
    fn set_level(&self, asserted: bool);

    /// An edge: assert then deassert.
    fn pulse(&self) {
        self.set_level(true);
        self.set_level(false);
    }
}

/// A message-signalled interrupt (PCI 3.0 section 6.8): a DWORD write of `data` to `address`.
pub trait MsiSink: Send + Sync {
    fn send_msi(&self, address: u64, data: u32);
}

/// An interrupt line that goes nowhere, for devices whose IRQ is not wired and for unit tests
/// that do not look at the line.
#[derive(Debug, Default)]
pub struct DisconnectedLine;

impl InterruptLine for DisconnectedLine {
    fn set_level(&self, _asserted: bool) {}
}

/// A line that remembers its level and counts rising edges; for unit tests and for backends that
/// poll a level.
#[derive(Debug, Default)]
pub struct RecordingLine {
    level: std::sync::atomic::AtomicBool,
    rising_edges: std::sync::atomic::AtomicU64,
}

impl RecordingLine {
    pub fn level(&self) -> bool {
        self.level.load(std::sync::atomic::Ordering::SeqCst)
    }
    pub fn rising_edges(&self) -> u64 {
        self.rising_edges.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl InterruptLine for RecordingLine {
    fn set_level(&self, asserted: bool) {
        let was = self.level.swap(asserted, std::sync::atomic::Ordering::SeqCst);
        if asserted && !was {
            self.rising_edges.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }
}
