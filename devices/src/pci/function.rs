//! The common base of an emulated PCI function: configuration space, BARs, the INTx pin with its
//! Interrupt Disable and Interrupt Status bits, MSI and MSI-X capabilities that see their own
//! configuration writes, and bus-master gating of DMA and messages.
//!
//! A device embeds a [`PciFunction`] and implements [`PciFunctionDevice`] (its BARs and any
//! device-specific configuration registers); the blanket implementation makes it a
//! [`PciDevice`], so no device repeats the configuration forwarding. The rules every function
//! keeps live here once:
//!
//! - INTx (PCI 3.0 section 6.2.2, 6.2.3): the device states its interrupt *request*; Status bit 3
//!   mirrors the request, and the pin is driven only while Command bit 10 (Interrupt Disable) is
//!   clear, so toggling the bit drops or re-asserts the pin at once (Linux's `uio_pci_generic`
//!   and VFIO mask INTx this way).
//! - MSI/MSI-X (section 6.8): Enable, masks and pending bits take effect on the configuration
//!   write that changes them; while MSI or MSI-X is enabled the function does not use INTx.
//! - Bus mastering (section 6.2.2, Command bit 2): without it the function may not master the
//!   bus, so DMA through [`PciFunction::dma`] is refused and MSI writes are dropped.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use super::config::{ConfigError, ConfigSpace, PciIds};
use super::msi::{MsiCapability, MsiOutcome};
use super::msix::{MsixCapability, MsixLocation};
use super::{BarRegion, PciDevice};
use crate::interrupt::{DisconnectedLine, InterruptLine, IntxPin, MsiSink};
use crate::memory::{Access, GuestMemory, MemoryError};

/// What a function is given when it attaches to the bus: its INTx pin's line, where its messages
/// go, and guest memory for its DMA.
#[derive(Clone)]
pub struct PciResources {
    pub intx: Arc<dyn InterruptLine>,
    pub msi: Arc<dyn MsiSink>,
    pub memory: Arc<dyn GuestMemory>,
}

impl PciResources {
    /// Resources that go nowhere (no pin wired, messages dropped, no RAM): for functions that
    /// neither interrupt nor master the bus (the chipset's), and tests of a function's registers.
    pub fn none() -> Self {
        PciResources { intx: Arc::new(DisconnectedLine), msi: Arc::new(DroppedMsi), memory: Arc::new(NoMemory) }
    }
    /// The same as [`PciResources::none`].
    pub fn disconnected() -> Self {
        Self::none()
    }
}

/// Guest memory with no RAM in it: every access is refused.
struct NoMemory;
impl GuestMemory for NoMemory {
    fn with_slices(
        &self,
        ranges: &[(u64, usize)],
        _access: Access,
        _f: &mut dyn FnMut(&[vm_memory::VolatileSlice<'_>]),
    ) -> Result<(), MemoryError> {
        let (gpa, len) = ranges.first().copied().unwrap_or((0, 0));
        Err(MemoryError::NotRam { gpa, len })
    }
}

struct DroppedMsi;
impl MsiSink for DroppedMsi {
    fn send_msi(&self, _address: u64, _data: u32) {}
}

/// Messages of a function, dropped while it may not master the bus.
struct BusMasterMsi {
    inner: Arc<dyn MsiSink>,
    bus_master: Arc<AtomicBool>,
    dropped: Arc<AtomicU64>,
}

impl MsiSink for BusMasterMsi {
    fn send_msi(&self, address: u64, data: u32) {
        if self.bus_master.load(Ordering::Acquire) {
            self.inner.send_msi(address, data);
        } else {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            crate::guest_warn!("PCI function sent an MSI with bus mastering disabled; dropped");
        }
    }
    fn masked_elsewhere(&self, address: u64, data: u32) -> bool {
        self.inner.masked_elsewhere(address, data)
    }
}

/// Guest memory as one function's DMA sees it: refused while the function may not master the bus.
pub struct BusMasterMemory {
    inner: Arc<dyn GuestMemory>,
    bus_master: Arc<AtomicBool>,
}

impl GuestMemory for BusMasterMemory {
    fn with_slices(
        &self,
        ranges: &[(u64, usize)],
        access: Access,
        f: &mut dyn FnMut(&[vm_memory::VolatileSlice<'_>]),
    ) -> Result<(), MemoryError> {
        if !self.bus_master.load(Ordering::Acquire) {
            let (gpa, len) = ranges.first().copied().unwrap_or((0, 0));
            return Err(MemoryError::NotRam { gpa, len });
        }
        self.inner.with_slices(ranges, access, f)
    }
}

/// How a signalled interrupt went out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signalled {
    Msix(MsiOutcome),
    Msi(MsiOutcome),
    /// Neither MSI-X nor MSI is enabled: the INTx request was raised.
    Intx,
}

/// Configuration space plus the interrupt and bus-master rules of one function.
pub struct PciFunction {
    config: ConfigSpace,
    pin: Option<IntxPin>,
    intx: Arc<dyn InterruptLine>,
    /// The device's INTx request (Status bit 3), whether or not the pin is driven.
    intx_request: bool,
    /// The level the pin is driven at now.
    intx_driven: bool,
    msi: Option<MsiCapability>,
    msix: Option<MsixCapability>,
    /// Command bit 2, shared with the DMA and message wrappers.
    bus_master: Arc<AtomicBool>,
    msi_sink: Arc<dyn MsiSink>,
    memory: Arc<BusMasterMemory>,
    dropped_msis: Arc<AtomicU64>,
}

impl std::fmt::Debug for PciFunction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PciFunction")
            .field("config", &self.config)
            .field("pin", &self.pin)
            .field("intx_request", &self.intx_request)
            .field("msi", &self.msi)
            .field("msix", &self.msix)
            .finish()
    }
}

impl PciFunction {
    /// A function with identity `ids`, INTx pin `pin` (if any), wired to `resources`.
    pub fn new(ids: PciIds, pin: Option<IntxPin>, resources: PciResources) -> Self {
        let mut config = ConfigSpace::new(ids);
        config.set_interrupt_pin(pin.map_or(0, IntxPin::register));
        let bus_master = Arc::new(AtomicBool::new(false));
        let dropped_msis = Arc::new(AtomicU64::new(0));
        let msi_sink: Arc<dyn MsiSink> = Arc::new(BusMasterMsi {
            inner: resources.msi,
            bus_master: bus_master.clone(),
            dropped: dropped_msis.clone(),
        });
        let memory = Arc::new(BusMasterMemory { inner: resources.memory, bus_master: bus_master.clone() });
        PciFunction {
            config,
            pin,
            intx: resources.intx,
            intx_request: false,
            intx_driven: false,
            msi: None,
            msix: None,
            bus_master,
            msi_sink,
            memory,
            dropped_msis,
        }
    }

    pub fn config(&self) -> &ConfigSpace {
        &self.config
    }

    /// Device-side access to configuration space (declaring BARs and device registers).
    pub fn config_mut(&mut self) -> &mut ConfigSpace {
        &mut self.config
    }

    /// Adds an MSI capability with `vectors` messages (a power of two, at most 32).
    pub fn add_msi(&mut self, vectors: u8, per_vector_masking: bool) -> Result<(), ConfigError> {
        self.msi = Some(MsiCapability::new(&mut self.config, vectors, per_vector_masking, self.msi_sink.clone())?);
        Ok(())
    }

    /// Adds an MSI-X capability with `vectors` entries, table and PBA in already declared memory
    /// BARs.
    pub fn add_msix(&mut self, vectors: u16, table: MsixLocation, pba: MsixLocation) -> Result<(), ConfigError> {
        self.msix = Some(MsixCapability::new(&mut self.config, vectors, table, pba, self.msi_sink.clone())?);
        Ok(())
    }

    pub fn msi(&self) -> Option<&MsiCapability> {
        self.msi.as_ref()
    }

    pub fn msix(&self) -> Option<&MsixCapability> {
        self.msix.as_ref()
    }

    /// Guest memory for this function's DMA (refused while bus mastering is off; writes are
    /// dirty-tracked by the backend's memory).
    pub fn dma(&self) -> Arc<dyn GuestMemory> {
        self.memory.clone()
    }

    pub fn bus_master_enabled(&self) -> bool {
        self.config.bus_master_enabled()
    }

    /// Messages dropped because bus mastering was off.
    pub fn dropped_msis(&self) -> u64 {
        self.dropped_msis.load(Ordering::Relaxed)
    }

    /// Whether MSI or MSI-X is enabled, so the function must not use its pin (section 6.8.1.3,
    /// 6.8.2.3).
    pub fn messages_enabled(&self) -> bool {
        self.msix.as_ref().is_some_and(|m| m.enabled()) || self.msi.as_ref().is_some_and(|m| m.enabled(&self.config))
    }

    /// Sets the device's INTx request. Status bit 3 follows it; the pin follows it unless
    /// Interrupt Disable is set or messages are enabled.
    pub fn set_intx_request(&mut self, asserted: bool) {
        self.intx_request = asserted;
        self.config.set_interrupt_status(asserted);
        self.drive_intx();
    }

    pub fn intx_request(&self) -> bool {
        self.intx_request
    }

    fn drive_intx(&mut self) {
        let level = self.pin.is_some() && self.intx_request && !self.config.intx_disabled() && !self.messages_enabled();
        if level != self.intx_driven {
            self.intx_driven = level;
            self.intx.set_level(level);
        }
    }

    /// Signals interrupt `vector` the way the guest set the function up: an MSI-X vector if
    /// MSI-X is enabled, an MSI vector if MSI is, otherwise the INTx request is raised (the
    /// device lowers it with [`PciFunction::set_intx_request`] when its cause is cleared).
    pub fn signal(&mut self, vector: u16) -> Signalled {
        if let Some(m) = self.msix.as_mut().filter(|m| m.enabled()) {
            return Signalled::Msix(m.fire(vector));
        }
        if let Some(m) = self.msi.as_ref().filter(|m| m.enabled(&self.config)) {
            let v = u8::try_from(vector).unwrap_or(u8::MAX);
            return Signalled::Msi(m.fire(&mut self.config, v));
        }
        self.set_intx_request(true);
        Signalled::Intx
    }

    /// A guest configuration write: masks apply, then the capabilities and the bus-master and
    /// INTx state pick up what changed.
    pub fn config_write(&mut self, offset: u16, data: &[u8]) {
        self.config.write(offset, data);
        self.bus_master.store(self.config.bus_master_enabled(), Ordering::Release);
        if let Some(m) = &self.msi {
            m.after_config_write(&mut self.config);
        }
        if let Some(m) = &mut self.msix {
            m.after_config_write(&self.config);
        }
        self.drive_intx();
    }

    /// A guest access inside a BAR that the MSI-X table or PBA claims. Returns false when the
    /// access is the device's own.
    pub fn msix_bar_read(&self, bar: u8, offset: u64, data: &mut [u8]) -> bool {
        self.msix.as_ref().is_some_and(|m| m.bar_read(bar, offset, data))
    }

    pub fn msix_bar_write(&mut self, bar: u8, offset: u64, data: &[u8]) -> bool {
        self.msix.as_mut().is_some_and(|m| m.bar_write(bar, offset, data))
    }

    /// Function-level reset: configuration space back to `fresh` (the device's freshly built
    /// configuration), capabilities reset, INTx request dropped.
    pub fn reset(&mut self, fresh: ConfigSpace) {
        self.config = fresh;
        if let Some(m) = &mut self.msix {
            m.reset();
        }
        self.bus_master.store(false, Ordering::Release);
        self.set_intx_request(false);
    }

    /// After the configuration space was restored (save/restore): bus-master flag, capability
    /// state and the pin follow the restored registers.
    pub fn resync(&mut self) {
        self.bus_master.store(self.config.bus_master_enabled(), Ordering::Release);
        if let Some(m) = &mut self.msix {
            m.after_config_write(&self.config);
        }
        self.intx_request = self.config.status() & super::config::STATUS_INTERRUPT != 0;
        self.drive_intx();
    }
}

/// A restored [`PciFunction`] state, checked and not yet applied.
pub struct PciFunctionState {
    config: super::config::ConfigState,
    msix: Option<MsixCapability>,
}

impl PciFunction {
    /// Saves configuration space and the MSI-X table and PBA (which live outside it).
    pub fn save(&self, w: &mut crate::snapshot::StateWriter) {
        self.config.save_state(w);
        w.option(self.msix.as_ref(), |w, m| w.blob(&crate::snapshot::save_to_vec(m)));
    }

    /// Reads and checks what [`PciFunction::save`] wrote; nothing changes until
    /// [`PciFunction::apply`].
    pub fn load(
        &self,
        r: &mut crate::snapshot::StateReader<'_>,
    ) -> Result<PciFunctionState, crate::snapshot::StateError> {
        use crate::snapshot::Snapshot;
        let config = self.config.load_state(r)?;
        let saved = r.option("msix", |r| r.blob("msix", 1 << 16))?;
        let msix = match (&self.msix, saved) {
            (None, None) => None,
            (Some(m), Some(blob)) => {
                let mut m = m.clone();
                crate::snapshot::restore_from(&mut m, MsixCapability::VERSION, &blob)?;
                Some(m)
            }
            _ => return Err(r.invalid("msix", "MSI-X presence differs from this function")),
        };
        Ok(PciFunctionState { config, msix })
    }

    pub fn apply(&mut self, state: PciFunctionState) {
        self.config.apply_state(state.config);
        if state.msix.is_some() {
            self.msix = state.msix;
        }
        self.resync();
    }
}

/// A device built on [`PciFunction`]: it exposes the function and handles its BARs; the blanket
/// [`PciDevice`] implementation does the rest.
pub trait PciFunctionDevice: Send {
    fn function(&self) -> &PciFunction;
    fn function_mut(&mut self) -> &mut PciFunction;
    /// A read inside BAR `bar` that the MSI-X structures do not claim.
    fn read_bar(&mut self, bar: u8, offset: u64, data: &mut [u8]) {
        let _ = (bar, offset);
        data.fill(0xff);
    }
    fn write_bar(&mut self, bar: u8, offset: u64, data: &[u8]) {
        let _ = (bar, offset, data);
    }
    /// Called after every guest configuration write, once the base has applied it (for
    /// device-specific registers and reactions to Command bits).
    fn config_written(&mut self, offset: u16, data: &[u8]) {
        let _ = (offset, data);
    }
}

impl<T: PciFunctionDevice> PciDevice for T {
    fn config_read(&mut self, offset: u16, data: &mut [u8]) {
        self.function().config().read(offset, data)
    }

    fn config_write(&mut self, offset: u16, data: &[u8]) {
        self.function_mut().config_write(offset, data);
        self.config_written(offset, data);
    }

    fn decoded_bars(&self) -> Vec<BarRegion> {
        self.function().config().decoded_bars()
    }

    fn bar_read(&mut self, bar: u8, offset: u64, data: &mut [u8]) {
        if !self.function().msix_bar_read(bar, offset, data) {
            self.read_bar(bar, offset, data)
        }
    }

    fn bar_write(&mut self, bar: u8, offset: u64, data: &[u8]) {
        if !self.function_mut().msix_bar_write(bar, offset, data) {
            self.write_bar(bar, offset, data)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::interrupt::RecordingLine;
    use crate::memory::TestMemory;
    use crate::pci::config::{BarKind, COMMAND, COMMAND_BUS_MASTER, COMMAND_INTX_DISABLE, STATUS, STATUS_INTERRUPT};

    type Messages = crate::interrupt::RecordingMsiSink;

    struct Fixture {
        f: PciFunction,
        pin: Arc<RecordingLine>,
        msgs: Arc<Messages>,
        ram: Arc<TestMemory>,
    }

    fn function() -> Fixture {
        let pin = Arc::new(RecordingLine::default());
        let msgs = Arc::new(Messages::default());
        let ram = Arc::new(TestMemory::new(0x10000));
        let f = PciFunction::new(
            PciIds { vendor_id: 0x1234, device_id: 0x5678, ..Default::default() },
            Some(IntxPin::IntA),
            PciResources { intx: pin.clone(), msi: msgs.clone(), memory: ram.clone() },
        );
        Fixture { f, pin, msgs, ram }
    }

    fn command(f: &mut PciFunction, v: u16) {
        f.config_write(COMMAND as u16, &v.to_le_bytes());
    }

    fn status(f: &PciFunction) -> u16 {
        let mut b = [0u8; 2];
        f.config().read(STATUS as u16, &mut b);
        u16::from_le_bytes(b)
    }

    #[test]
    fn interrupt_disable_masks_the_pin_but_not_the_status_bit() {
        let Fixture { mut f, pin, .. } = function();
        f.set_intx_request(true);
        assert!(pin.level());
        assert_ne!(status(&f) & STATUS_INTERRUPT, 0);
        // What uio_pci_generic's handler does: set Interrupt Disable.
        command(&mut f, COMMAND_INTX_DISABLE);
        assert!(!pin.level(), "the pin drops at once");
        assert_ne!(status(&f) & STATUS_INTERRUPT, 0, "the request is still visible");
        // Unmasking with the request still up re-asserts it.
        command(&mut f, 0);
        assert!(pin.level());
        assert_eq!(pin.rising_edges(), 2);
        f.set_intx_request(false);
        assert!(!pin.level());
        assert_eq!(status(&f) & STATUS_INTERRUPT, 0);
    }

    #[test]
    fn dma_and_messages_need_bus_mastering() {
        let Fixture { mut f, msgs, ram, .. } = function();
        let dma = f.dma();
        assert!(dma.write(0x100, &[1, 2, 3]).is_err());
        assert!(ram.take_dirty_pages().is_empty());
        f.add_msi(1, false).unwrap();
        let cap = f.msi().unwrap().offset() as u16;
        f.config_write(cap + 4, &0xfee0_0000u32.to_le_bytes());
        f.config_write(cap + 0xc, &0x41u16.to_le_bytes());
        f.config_write(cap + 2, &1u16.to_le_bytes()); // MSI Enable
        assert_eq!(f.signal(0), Signalled::Msi(MsiOutcome::Sent));
        assert!(msgs.messages().is_empty(), "no bus mastering: the write never happens");
        assert_eq!(f.dropped_msis(), 1);
        command(&mut f, COMMAND_BUS_MASTER);
        dma.write(0x100, &[1, 2, 3]).unwrap();
        assert_eq!(ram.take_dirty_pages(), vec![0]);
        f.signal(0);
        assert_eq!(msgs.messages(), vec![(0xfee0_0000, 0x41)]);
    }

    #[test]
    fn msix_takes_over_from_intx_and_a_masked_vector_waits_pending() {
        let Fixture { mut f, pin, msgs, .. } = function();
        f.config_mut().declare_bar(1, BarKind::Memory32 { prefetchable: false }, 0x1000).unwrap();
        let table = MsixLocation { bar: 1, offset: 0 };
        let pba = MsixLocation { bar: 1, offset: 0x800 };
        f.add_msix(2, table, pba).unwrap();
        command(&mut f, COMMAND_BUS_MASTER);
        // Before MSI-X is enabled the device falls back to INTx.
        assert_eq!(f.signal(1), Signalled::Intx);
        assert!(pin.level());
        f.set_intx_request(false);
        // Program entry 1 (still masked, as after reset), then enable MSI-X.
        let entry = 16u64;
        f.msix_bar_write(1, entry, &0xfee0_1000u32.to_le_bytes());
        f.msix_bar_write(1, entry + 8, &0x55u32.to_le_bytes());
        let cap = f.msix().unwrap().offset() as u16;
        f.config_write(cap + 2, &0x8000u16.to_le_bytes());
        assert!(f.messages_enabled());
        assert_eq!(f.signal(1), Signalled::Msix(MsiOutcome::Pending));
        let mut pba_bits = [0u8; 8];
        assert!(f.msix_bar_read(1, 0x800, &mut pba_bits));
        assert_eq!(u64::from_le_bytes(pba_bits), 0b10, "the PBA shows vector 1 pending");
        assert!(msgs.messages().is_empty());
        // Unmasking the entry releases the message and clears the pending bit.
        f.msix_bar_write(1, entry + 12, &0u32.to_le_bytes());
        assert_eq!(msgs.messages(), vec![(0xfee0_1000, 0x55)]);
        f.msix_bar_read(1, 0x800, &mut pba_bits);
        assert_eq!(u64::from_le_bytes(pba_bits), 0);
        // While MSI-X is enabled a raised INTx request does not drive the pin.
        f.set_intx_request(true);
        assert!(!pin.level());
    }
}
