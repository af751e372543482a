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

    /// Whether the platform masks this message itself, so the function's own mask bits must not
    /// hold it back. Xen: a guest that maps an MSI onto an event-channel PIRQ writes vector 0
    /// with the PIRQ in the destination bits, and masks it through the event channel; its
    /// MSI-X Mask Bit may stay set (QEMU's `msix_vector_masked` ignores it for such entries).
    fn masked_elsewhere(&self, address: u64, data: u32) -> bool {
        let _ = (address, data);
        false
    }
}

/// An MSI sink that keeps every message (address, data) in order; for unit tests.
#[derive(Debug, Default)]
pub struct RecordingMsiSink {
    messages: std::sync::Mutex<Vec<(u64, u32)>>,
}

impl RecordingMsiSink {
    /// The messages sent so far.
    pub fn messages(&self) -> Vec<(u64, u32)> {
        self.messages.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
    /// The messages sent so far, and clears the list.
    pub fn take(&self) -> Vec<(u64, u32)> {
        std::mem::take(&mut *self.messages.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl MsiSink for RecordingMsiSink {
    fn send_msi(&self, address: u64, data: u32) {
        self.messages.lock().unwrap_or_else(|e| e.into_inner()).push((address, data));
    }
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

/// Several sources driving one wire: the output is asserted while any input is (wired-OR, as
/// shared level-triggered ISA and PCI interrupt lines are). Each source gets its own input from
/// [`SharedLine::input`], so one source deasserting never drops another's request; the output
/// only hears about changes of the combined level (edges of an edge source pass through).
pub struct SharedLine {
    output: std::sync::Arc<dyn InterruptLine>,
    state: std::sync::Mutex<SharedLineState>,
}

#[derive(Default)]
struct SharedLineState {
    /// Whether input `i` asserts the wire.
    asserted: Vec<bool>,
    /// Number of `true` entries in `asserted`.
    count: usize,
}

impl SharedLine {
    pub fn new(output: std::sync::Arc<dyn InterruptLine>) -> std::sync::Arc<Self> {
        std::sync::Arc::new(SharedLine { output, state: Default::default() })
    }

    /// A new source on this wire, initially deasserted.
    pub fn input(self: &std::sync::Arc<Self>) -> std::sync::Arc<dyn InterruptLine> {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.asserted.push(false);
        std::sync::Arc::new(SharedLineInput { line: self.clone(), index: s.asserted.len() - 1 })
    }

    /// Whether any source asserts the wire.
    pub fn level(&self) -> bool {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).count > 0
    }

    fn set(&self, index: usize, asserted: bool) {
        // The output is driven under the lock so two sources racing cannot reorder its edges.
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let Some(slot) = s.asserted.get_mut(index) else { return };
        if *slot == asserted {
            return;
        }
        *slot = asserted;
        let before = s.count;
        s.count = if asserted { before + 1 } else { before - 1 };
        if (before == 0) != (s.count == 0) {
            self.output.set_level(asserted);
        }
    }
}

struct SharedLineInput {
    line: std::sync::Arc<SharedLine>,
    index: usize,
}

impl InterruptLine for SharedLineInput {
    fn set_level(&self, asserted: bool) {
        self.line.set(self.index, asserted)
    }

    /// An edge source on a wire another source holds high produces no edge at the output (a
    /// shared edge-triggered line cannot carry it either); otherwise the output pulses.
    fn pulse(&self) {
        self.set_level(true);
        self.set_level(false);
    }
}

/// Which INTx pin a PCI function drives (its Interrupt Pin register, PCI 3.0 section 6.2.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IntxPin {
    IntA = 1,
    IntB = 2,
    IntC = 3,
    IntD = 4,
}

impl IntxPin {
    /// From the Interrupt Pin register value (1-4); `None` for 0 (no pin) and reserved values.
    pub fn from_register(pin: u8) -> Option<IntxPin> {
        match pin {
            1 => Some(IntxPin::IntA),
            2 => Some(IntxPin::IntB),
            3 => Some(IntxPin::IntC),
            4 => Some(IntxPin::IntD),
            _ => None,
        }
    }
    /// The Interrupt Pin register value (1-4).
    pub fn register(self) -> u8 {
        self as u8
    }
    /// 0-3 for INTA#-INTD#, as Xen's `set_pci_intx_level` and the ACPI `_PRT` count.
    pub fn index(self) -> u8 {
        self as u8 - 1
    }
}

/// What the hypervisor backend provides to the machine: every interrupt a device can raise.
/// Devices never see this; machine assembly asks it for the lines and message sinks of each
/// device as it attaches the device (ISA IRQs by number, PCI INTx by address and pin, MSI by
/// requester).
///
/// - KVM: the board's routing is ours to emulate. ISA IRQs are GSIs 0-15 of the in-kernel PIC and
///   IOAPIC; a PCI pin is swizzled onto a PIIX3 PIRQ and follows the PIRQ route control registers
///   as the guest rewrites them; MSIs are `KVM_SIGNAL_MSI`.
/// - Xen: the hypervisor routes. ISA IRQs are `set_isa_irq_level`, PCI pins `set_pci_intx_level`
///   (Xen applies the PIRQ routes forwarded from the PIIX3 with `set_pci_link_route`), MSIs
///   `inject_msi`.
///
/// Every line handed out is an independent source: lines for the same wire are ORed, so sharing
/// an IRQ (two functions on one PIRQ, a PCI pin routed to an IRQ an ISA device also uses) works.
pub trait InterruptService: Send + Sync {
    /// A source on ISA IRQ `irq` (0-15). Out-of-range numbers give a disconnected line.
    fn isa_irq(&self, irq: u8) -> std::sync::Arc<dyn InterruptLine>;
    /// A source on the INTx pin `pin` of the function at `address` (bus 0).
    fn pci_intx(&self, address: crate::pci::PciAddress, pin: IntxPin) -> std::sync::Arc<dyn InterruptLine>;
    /// Where the function at `address` sends its MSI and MSI-X messages.
    fn msi(&self, address: crate::pci::PciAddress) -> std::sync::Arc<dyn MsiSink>;
    /// Told of every PIIX3 PIRQ route change (`pirq` 0-3, the ISA IRQ or `None`), from the PIIX3's
    /// configuration writes and restores.
    fn pirq_routed(&self, pirq: u8, irq: Option<u8>);
}

#[cfg(test)]
mod shared_line_tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn the_wire_stays_up_until_every_source_lets_go() {
        let out = Arc::new(RecordingLine::default());
        let wire = SharedLine::new(out.clone());
        let (a, b) = (wire.input(), wire.input());
        a.set_level(true);
        b.set_level(true);
        a.set_level(true); // repeated assert changes nothing
        assert!(out.level());
        assert_eq!(out.rising_edges(), 1);
        a.set_level(false);
        assert!(out.level(), "b still asserts");
        b.set_level(false);
        assert!(!out.level() && !wire.level());
        b.set_level(false); // repeated deassert of an idle input is harmless
        a.pulse();
        assert_eq!((out.rising_edges(), out.level()), (2, false));
    }
}

/// An [`InterruptService`] that records everything, for unit tests and fuzzers: each ISA IRQ and
/// each PCI (address, pin) is a wired-OR whose level and edges can be read back, MSIs are kept in
/// order, and PIRQ route changes are logged.
#[derive(Default)]
pub struct RecordingInterrupts {
    isa: RecordedWires<u8>,
    intx: RecordedWires<(crate::pci::PciAddress, IntxPin)>,
    msis: std::sync::Mutex<Vec<(crate::pci::PciAddress, u64, u32)>>,
    routes: std::sync::Mutex<Vec<(u8, Option<u8>)>>,
}

/// Wires by key: the shared wire sources attach to, and the recorder at its output.
type RecordedWires<K> =
    std::sync::Mutex<std::collections::BTreeMap<K, (std::sync::Arc<SharedLine>, std::sync::Arc<RecordingLine>)>>;

struct RecordingMsi {
    owner: std::sync::Arc<RecordingInterrupts>,
    address: crate::pci::PciAddress,
}

impl MsiSink for RecordingMsi {
    fn send_msi(&self, address: u64, data: u32) {
        self.owner.msis.lock().unwrap_or_else(|e| e.into_inner()).push((self.address, address, data));
    }
}

impl RecordingInterrupts {
    pub fn new() -> std::sync::Arc<Self> {
        std::sync::Arc::new(Self::default())
    }
    fn wire<K: Ord + Copy>(
        map: &RecordedWires<K>,
        key: K,
    ) -> (std::sync::Arc<SharedLine>, std::sync::Arc<RecordingLine>) {
        let mut m = map.lock().unwrap_or_else(|e| e.into_inner());
        m.entry(key)
            .or_insert_with(|| {
                let rec = std::sync::Arc::new(RecordingLine::default());
                (SharedLine::new(rec.clone()), rec)
            })
            .clone()
    }
    /// ISA IRQ `irq`'s wire as the interrupt controller sees it.
    pub fn isa_line(&self, irq: u8) -> std::sync::Arc<RecordingLine> {
        Self::wire(&self.isa, irq).1
    }
    /// The INTx wire of the function at `address`, pin `pin`.
    pub fn intx_line(&self, address: crate::pci::PciAddress, pin: IntxPin) -> std::sync::Arc<RecordingLine> {
        Self::wire(&self.intx, (address, pin)).1
    }
    /// (requester, address, data) of every MSI sent so far, and clears the list.
    pub fn take_msis(&self) -> Vec<(crate::pci::PciAddress, u64, u32)> {
        std::mem::take(&mut *self.msis.lock().unwrap_or_else(|e| e.into_inner()))
    }
    /// Every PIRQ route change reported so far, and clears the list.
    pub fn take_routes(&self) -> Vec<(u8, Option<u8>)> {
        std::mem::take(&mut *self.routes.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// A handle that can make MSI sinks pointing back at the recorder.
pub struct RecordingInterruptService(pub std::sync::Arc<RecordingInterrupts>);

impl InterruptService for RecordingInterruptService {
    fn isa_irq(&self, irq: u8) -> std::sync::Arc<dyn InterruptLine> {
        RecordingInterrupts::wire(&self.0.isa, irq).0.input()
    }
    fn pci_intx(&self, address: crate::pci::PciAddress, pin: IntxPin) -> std::sync::Arc<dyn InterruptLine> {
        RecordingInterrupts::wire(&self.0.intx, (address, pin)).0.input()
    }
    fn msi(&self, address: crate::pci::PciAddress) -> std::sync::Arc<dyn MsiSink> {
        std::sync::Arc::new(RecordingMsi { owner: self.0.clone(), address })
    }
    fn pirq_routed(&self, pirq: u8, irq: Option<u8>) {
        self.0.routes.lock().unwrap_or_else(|e| e.into_inner()).push((pirq, irq));
    }
}
