//! Our ioreq server: created with DMOPs, its synchronous page mapped with
//! `XENMEM_acquire_resource`, one event channel per possible vCPU, the machine's I/O ranges
//! registered, and the loop that serves events (xen-interface.md section 5).
//!
//! The server is created with `HVM_IOREQSRV_BUFIOREQ_ATOMIC`, as QEMU does: Xen then puts the
//! writes it need not wait for (single direct writes into the VGA window 0xa0000-0xbffff from its
//! stdvga hook, the RTC TIMEOFFSET broadcast) on the buffered ring instead of a vCPU's slot, and
//! signals its own event channel. The ring is drained on that event, before every synchronous
//! request (so a read of the window sees every write the guest made before it, in order), and on
//! the idle poll (QEMU re-polls every 100 ms for the same reason: a lost event must not leave
//! writes unapplied).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use devices::bus::{AddressSpace, IoBus};
use devices::memory::GuestMemory;
use devices::pci::BarSpace;

use super::dmop::{pci_sbdf, BufIoreq, DeviceModelOps, IoRangeType};
use super::evtchn::{EventChannels, Evtchn};
use super::ioreq::{
    self, BufferedPage, IoreqPage, RawIoreq, SlotOutcome, BUFFER_SLOTS, IOREQ_SIZE, OFFSET_DATA, OFFSET_FLAGS,
};
use super::memory::ForeignMemory;
use super::privcmd::{MappedPages, Privcmd, XENMEM_RESOURCE_IOREQ_SERVER, XEN_PAGE_SIZE};

/// `XENMEM_resource_ioreq_server_frame_bufioreq`: frame 0 is the buffered ring.
const FRAME_BUFIOREQ: u32 = 0;
/// `XENMEM_resource_ioreq_server_frame_ioreq(0)`: the synchronous slots start at frame 1.
const FRAME_IOREQ_0: u32 = 1;

/// The ports of the PCI configuration mechanism. Xen decodes 0xcf8/0xcfc into PCI_CONFIG ioreqs
/// itself, but forwards what it cannot (byte access to 0xcf9 = PIIX3 reset control, and accesses
/// with the enable bit clear) as port I/O, which only reaches us if the range is registered.
const PCI_CONFIG_PORTS: (u64, u64) = (0xcf8, 0xcff);

/// What the server did over its life, logged once when it stops: the numbers that tell a slow
/// guest phase apart (lost events would show as requests found by the idle scan without a later
/// stale event; range churn as many BAR DMOPs).
#[derive(Debug, Default)]
pub struct ServeCounters {
    /// Requests answered when their vCPU's event arrived.
    pub by_event: AtomicU64,
    /// Requests answered because the idle scan found their slot READY before the event came.
    pub by_idle_scan: AtomicU64,
    /// Events whose slot was not READY (already served by the scan, or spurious).
    pub stale_events: AtomicU64,
    pub pio: AtomicU64,
    pub mmio: AtomicU64,
    pub pci_config: AtomicU64,
    /// Time offset, invalidate and malformed requests.
    pub other: AtomicU64,
    /// Writes performed from the buffered ring (VGA window, time offset).
    pub buffered: AtomicU64,
    /// Map/unmap DMOPs issued because a BAR moved.
    pub bar_dmops: AtomicU64,
}

impl ServeCounters {
    fn count(&self, outcome: &SlotOutcome, by_event: bool) {
        let bump = |c: &AtomicU64| {
            c.fetch_add(1, Ordering::Relaxed);
        };
        match outcome {
            SlotOutcome::Answered(request) => {
                bump(if by_event { &self.by_event } else { &self.by_idle_scan });
                bump(match request {
                    Ok(ioreq::Request::Pio(_)) => &self.pio,
                    Ok(ioreq::Request::Copy(_)) => &self.mmio,
                    Ok(ioreq::Request::PciConfig { .. }) => &self.pci_config,
                    _ => &self.other,
                });
            }
            SlotOutcome::Ignored { .. } => bump(&self.stale_events),
        }
    }

    /// One line for the log.
    pub fn summary(&self) -> String {
        let n = |c: &AtomicU64| c.load(Ordering::Relaxed);
        format!(
            "{} requests served on their event, {} found READY by the idle scan, {} events for a slot that was not READY; {} port, {} MMIO, {} PCI config, {} other; {} buffered writes; {} BAR range DMOPs",
            n(&self.by_event),
            n(&self.by_idle_scan),
            n(&self.stale_events),
            n(&self.pio),
            n(&self.mmio),
            n(&self.pci_config),
            n(&self.other),
            n(&self.buffered),
            n(&self.bar_dmops)
        )
    }
}

/// The synchronous ioreq page(s) mapped from Xen: a safe wrapper that confines the shared-memory
/// accesses to atomics and volatile copies.
pub struct MappedIoreqPage {
    pages: MappedPages,
    slots: usize,
}

impl MappedIoreqPage {
    pub fn new(pages: MappedPages, slots: usize) -> Result<Self, String> {
        if !matches!(slots.checked_mul(IOREQ_SIZE), Some(need) if need <= pages.len()) {
            return Err(format!("{slots} ioreq slots do not fit in {} mapped bytes", pages.len()));
        }
        Ok(MappedIoreqPage { pages, slots })
    }

    fn flags(&self, slot: usize) -> Option<&std::sync::atomic::AtomicU8> {
        (slot < self.slots).then(|| self.pages.atomic_u8(slot * IOREQ_SIZE + OFFSET_FLAGS).ok()).flatten()
    }
}

impl IoreqPage for MappedIoreqPage {
    fn slots(&self) -> usize {
        self.slots
    }
    fn state(&self, slot: usize) -> u8 {
        self.flags(slot).map_or(ioreq::STATE_IOREQ_NONE, |f| f.load(Ordering::Acquire) & 0x0f)
    }
    fn set_state(&self, slot: usize, state: u8) {
        if let Some(f) = self.flags(slot) {
            // Xen does not touch the slot between READY and our IORESP_READY, so a load/store
            // pair keeps the other flag bits; the release store publishes `data` first.
            let b = f.load(Ordering::Relaxed);
            f.store((b & 0xf0) | (state & 0x0f), Ordering::Release);
        }
    }
    fn read(&self, slot: usize) -> [u8; IOREQ_SIZE] {
        let mut b = [0u8; IOREQ_SIZE];
        if slot < self.slots {
            let _ = self.pages.read(slot * IOREQ_SIZE, &mut b);
        }
        b
    }
    fn write_data(&self, slot: usize, data: u64) {
        if slot < self.slots {
            let _ = self.pages.write_u64(slot * IOREQ_SIZE + OFFSET_DATA, data);
        }
    }
}

/// The buffered ring (`struct buffered_iopage`, xen/include/public/hvm/ioreq.h) mapped from Xen:
/// `read_pointer` at 0, `write_pointer` at 4, then [`BUFFER_SLOTS`] 8-byte `buf_ioreq` slots.
pub struct MappedBufferedPage {
    page: MappedPages,
}

impl MappedBufferedPage {
    pub fn new(page: MappedPages) -> Result<Self, String> {
        if page.len() < 8 + 8 * BUFFER_SLOTS as usize {
            return Err(format!("a {}-byte mapping cannot hold the buffered ioreq ring", page.len()));
        }
        Ok(MappedBufferedPage { page })
    }
}

impl BufferedPage for MappedBufferedPage {
    fn read_pointer(&self) -> u32 {
        self.page.atomic_u32(0).map_or(0, |p| p.load(Ordering::Acquire))
    }
    fn write_pointer(&self) -> u32 {
        // When this fails, read_pointer fails too and the ring reads as empty.
        self.page.atomic_u32(4).map_or(0, |p| p.load(Ordering::Acquire))
    }
    fn slot(&self, index: u32) -> u64 {
        self.page.read_u64(8 + 8 * (index % BUFFER_SLOTS) as usize).unwrap_or(0)
    }
    fn advance_read_pointer(&self, n: u32) {
        // Xen rebases both pointers with a 64-bit cmpxchg in ATOMIC mode; a 32-bit atomic add on
        // read_pointer composes with it (QEMU does the same).
        if let Ok(p) = self.page.atomic_u32(0) {
            p.fetch_add(n, Ordering::Release);
        }
    }
}

/// The buffered ring and the local port of its event channel.
struct Buffered {
    page: Box<dyn BufferedPage>,
    port: u32,
}

/// The port ranges to claim: the bus's port devices, plus the PCI configuration ports (which
/// absorb the devices that live inside them: Xen refuses overlapping ranges of one server).
pub fn port_ranges(bus: &IoBus) -> Vec<(u64, u64)> {
    let (cfg_lo, cfg_hi) = PCI_CONFIG_PORTS;
    let mut out: Vec<(u64, u64)> = bus
        .ranges(AddressSpace::Io)
        .into_iter()
        .filter(|&(_, len, _)| len > 0)
        .map(|(base, len, _)| (base, base + len - 1))
        .filter(|&(lo, hi)| hi < cfg_lo || lo > cfg_hi)
        .collect();
    out.push(PCI_CONFIG_PORTS);
    out.sort_unstable();
    out
}

/// Registers everything the machine decodes with server `id`, and keeps BAR moves registered
/// (counting those DMOPs in `counters`).
pub fn register_ranges(dm: &DeviceModelOps, id: u16, bus: &IoBus, counters: Arc<ServeCounters>) -> Result<(), String> {
    for (lo, hi) in port_ranges(bus) {
        dm.map_io_range_to_ioreq_server(id, IoRangeType::Port, lo, hi)
            .map_err(|e| format!("ports {lo:#x}-{hi:#x}: {e}"))?;
    }
    for (base, len, name) in bus.ranges(AddressSpace::Mmio) {
        if len == 0 {
            continue;
        }
        let hi = base.saturating_add(len - 1);
        dm.map_io_range_to_ioreq_server(id, IoRangeType::Memory, base, hi)
            .map_err(|e| format!("{name} MMIO {base:#x}-{hi:#x}: {e}"))?;
    }
    for (address, _) in bus.pci_devices() {
        let sbdf = pci_sbdf(0, address.bus, address.device, address.function);
        dm.map_io_range_to_ioreq_server(id, IoRangeType::Pci, sbdf, sbdf).map_err(|e| format!("PCI {address}: {e}"))?;
    }
    let dm = dm.clone();
    bus.add_bar_listener(Box::new(move |change| {
        let ty = |s: BarSpace| if s == BarSpace::Io { IoRangeType::Port } else { IoRangeType::Memory };
        counters.bar_dmops.fetch_add(change.old.is_some() as u64 + change.new.is_some() as u64, Ordering::Relaxed);
        if let Some(old) = change.old {
            if let Err(e) = dm.unmap_io_range_from_ioreq_server(id, ty(old.space), old.base, old.base + old.size - 1) {
                log::warn!("PCI {} BAR{} at {:#x}: {e}", change.address, change.index, old.base);
            }
        }
        if let Some(new) = change.new {
            if let Err(e) = dm.map_io_range_to_ioreq_server(id, ty(new.space), new.base, new.base + new.size - 1) {
                log::warn!("PCI {} BAR{} at {:#x}: {e}", change.address, change.index, new.base);
            }
        }
    }));
    Ok(())
}

/// A running ioreq server. Dropping it disables and destroys the server and unbinds its ports.
pub struct IoreqServer {
    dm: DeviceModelOps,
    id: u16,
    page: Box<dyn IoreqPage>,
    events: Arc<dyn EventChannels>,
    /// Local event channel port of each vCPU's slot.
    ports: Vec<u32>,
    /// The buffered ring, if Xen gave us one.
    buffered: Option<Buffered>,
    /// Unbinds the ports on drop (None in tests).
    evtchn: Option<Arc<Evtchn>>,
    counters: Arc<ServeCounters>,
}

impl IoreqServer {
    /// Creates, maps, enables and binds a server for `dm.domid()`, in the order QEMU uses (the
    /// slots' `vp_eport` fields are meaningful once the server is enabled).
    pub fn create(dm: DeviceModelOps, privcmd: &Privcmd, evtchn: Arc<Evtchn>) -> Result<Self, String> {
        let domid = dm.domid();
        let id = dm.create_ioreq_server(BufIoreq::Atomic).map_err(|e| e.to_string())?;
        // From here on, dropping `server` tears down whatever exists.
        let mut server = IoreqServer {
            dm: dm.clone(),
            id,
            page: Box::new(ioreq::VecIoreqPage::new(0)),
            events: evtchn.clone(),
            ports: Vec::new(),
            buffered: None,
            evtchn: Some(evtchn.clone()),
            counters: Arc::default(),
        };
        let vcpus = dm.nr_vcpus().map_err(|e| e.to_string())? as usize;
        if vcpus == 0 || vcpus > 4096 {
            return Err(format!("domain {domid} reports {vcpus} vCPUs"));
        }
        let frames = (vcpus * IOREQ_SIZE).div_ceil(XEN_PAGE_SIZE);
        let pages = privcmd
            .mmap_resource(domid, XENMEM_RESOURCE_IOREQ_SERVER, id as u32, FRAME_IOREQ_0, frames)
            .map_err(|e| format!("mapping the ioreq page of server {id} (IOCTL_PRIVCMD_MMAP_RESOURCE): {e}"))?;
        server.page = Box::new(MappedIoreqPage::new(pages, vcpus)?);
        let info = dm.get_ioreq_server_info(id, true).map_err(|e| e.to_string())?;
        let ring = privcmd
            .mmap_resource(domid, XENMEM_RESOURCE_IOREQ_SERVER, id as u32, FRAME_BUFIOREQ, 1)
            .map_err(|e| format!("mapping the buffered ioreq page of server {id}: {e}"))?;
        let ring = MappedBufferedPage::new(ring)?;
        dm.set_ioreq_server_state(id, true).map_err(|e| e.to_string())?;
        let local = evtchn
            .bind_interdomain(domid, info.bufioreq_port)
            .map_err(|e| format!("binding the buffered ioreq event channel {}: {e}", info.bufioreq_port))?;
        server.buffered = Some(Buffered { page: Box::new(ring), port: local });
        for vcpu in 0..vcpus {
            let remote = RawIoreq::from_bytes(&server.page.read(vcpu)).vp_eport;
            let local = evtchn
                .bind_interdomain(domid, remote)
                .map_err(|e| format!("binding vCPU {vcpu}'s ioreq event channel {remote}: {e}"))?;
            server.ports.push(local);
        }
        log::info!(
            "ioreq server {id} for domain {domid}: {vcpus} vCPUs, local ports {:?}, buffered ring (atomic) on local port {local}",
            server.ports
        );
        Ok(server)
    }

    /// A server over an existing page and event channels (tests).
    pub fn from_parts(
        dm: DeviceModelOps,
        id: u16,
        page: Box<dyn IoreqPage>,
        events: Arc<dyn EventChannels>,
        ports: Vec<u32>,
    ) -> Self {
        IoreqServer { dm, id, page, events, ports, buffered: None, evtchn: None, counters: Arc::default() }
    }

    /// Adds a buffered ring signalled on local `port` (tests).
    pub fn with_buffered(mut self, page: Box<dyn BufferedPage>, port: u32) -> Self {
        self.buffered = Some(Buffered { page, port });
        self
    }

    /// Performs what is in the buffered ring, in order.
    pub fn drain_buffered(&self, bus: &IoBus, mem: &dyn GuestMemory) {
        if let Some(b) = &self.buffered {
            let n = ioreq::drain_buffered(b.page.as_ref(), bus, mem);
            if n > 0 && self.counters.buffered.fetch_add(n as u64, Ordering::Relaxed) == 0 {
                log::info!("ioreq server {}: first {n} buffered write(s) performed", self.id);
            }
        }
    }

    pub fn id(&self) -> u16 {
        self.id
    }

    pub fn ports(&self) -> &[u32] {
        &self.ports
    }

    /// What this server has served so far (shared with [`register_ranges`]'s BAR listener).
    pub fn counters(&self) -> &Arc<ServeCounters> {
        &self.counters
    }

    /// Handles one event on local `port`: re-enable the port, serve the vCPU's slot, and notify
    /// the vCPU if a request was answered. Events for unknown ports are only acknowledged.
    pub fn handle_port(
        &self,
        port: u32,
        bus: &IoBus,
        mem: &dyn GuestMemory,
        invalidate: &dyn Fn(),
    ) -> Option<SlotOutcome> {
        if let Err(e) = self.events.unmask(port) {
            log::error!("unmasking event channel {port}: {e}");
        }
        // Whatever the event, buffered writes the guest made earlier come first.
        self.drain_buffered(bus, mem);
        let slot = self.ports.iter().position(|&p| p == port)?;
        let outcome = ioreq::service_slot(self.page.as_ref(), slot, bus, mem, invalidate);
        self.counters.count(&outcome, true);
        if matches!(outcome, SlotOutcome::Answered(_)) {
            if let Err(e) = self.events.notify(port) {
                log::error!("notifying vCPU {slot} (port {port}): {e}");
            }
        }
        Some(outcome)
    }

    /// Services every slot whose state is READY, notifying its vCPU.
    pub fn service_ready_slots(&self, bus: &IoBus, mem: &dyn GuestMemory, invalidate: &dyn Fn()) {
        self.drain_buffered(bus, mem);
        for (slot, &port) in self.ports.iter().enumerate() {
            if self.page.state(slot) != ioreq::STATE_IOREQ_READY {
                continue;
            }
            log::debug!("vCPU {slot}: READY ioreq without an event; serving it");
            let outcome = ioreq::service_slot(self.page.as_ref(), slot, bus, mem, invalidate);
            self.counters.count(&outcome, false);
            if matches!(outcome, SlotOutcome::Answered(_)) {
                if let Err(e) = self.events.notify(port) {
                    log::error!("notifying vCPU {slot} (port {port}): {e}");
                }
            }
        }
    }

    /// Serves events until `stop` is set. Dirty pages are reported after every event, so a
    /// migration round never misses what an ioreq wrote.
    pub fn run(&self, evtchn: &Evtchn, bus: &IoBus, mem: &ForeignMemory, stop: &AtomicBool) -> Result<(), String> {
        let invalidate = || mem.invalidate();
        let mut result = Ok(());
        while !stop.load(Ordering::SeqCst) {
            match evtchn.wait_pending(Duration::from_millis(50)) {
                Ok(Some(port)) => {
                    self.handle_port(port, bus, mem, &invalidate);
                }
                // No event for a while: answer any slot that is READY anyway. An event that raced
                // with the state change (seen before the slot was READY) must not leave a vCPU
                // waiting; this bounds such a stall to one poll period.
                Ok(None) => self.service_ready_slots(bus, mem, &invalidate),
                Err(e) => {
                    result = Err(format!("reading {}: {e}", super::evtchn::EVTCHN_PATH));
                    break;
                }
            }
            mem.flush_dirty();
        }
        log::info!("ioreq server {}: {}", self.id, self.counters.summary());
        result
    }
}

impl Drop for IoreqServer {
    fn drop(&mut self) {
        if let Some(evtchn) = &self.evtchn {
            for &p in self.ports.iter().chain(self.buffered.as_ref().map(|b| &b.port)) {
                let _ = evtchn.unbind(p);
            }
            let _ = self.dm.set_ioreq_server_state(self.id, false);
            if let Err(e) = self.dm.destroy_ioreq_server(self.id) {
                log::warn!("{e}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xen::dmop::testing::RecordingTransport;
    use crate::xen::dmop::{XEN_DMOP_MAP_IO_RANGE_TO_IOREQ_SERVER, XEN_DMOP_UNMAP_IO_RANGE_FROM_IOREQ_SERVER};
    use crate::xen::ioreq::{VecIoreqPage, IOREQ_TYPE_PIO, STATE_IOREQ_READY, STATE_IORESP_READY};
    use devices::bus::BusDevice;
    use devices::memory::TestMemory;
    use devices::pci::config::{BarKind, ConfigSpace, PciIds};
    use devices::pci::{BarRegion, PciAddress, PciDevice};
    use std::sync::Mutex;

    #[derive(Default)]
    struct RecordingEvents {
        log: Mutex<Vec<(&'static str, u32)>>,
    }

    impl EventChannels for RecordingEvents {
        fn notify(&self, port: u32) -> std::io::Result<()> {
            self.log.lock().unwrap().push(("notify", port));
            Ok(())
        }
        fn unmask(&self, port: u32) -> std::io::Result<()> {
            self.log.lock().unwrap().push(("unmask", port));
            Ok(())
        }
    }

    struct Latch(u8);
    impl BusDevice for Latch {
        fn read(&mut self, _: u64, data: &mut [u8]) {
            data.fill(self.0);
        }
        fn write(&mut self, _: u64, data: &[u8]) {
            self.0 = data[0];
        }
    }

    /// A PCI function with one 16-byte I/O BAR.
    struct OneBar(ConfigSpace);
    impl PciDevice for OneBar {
        fn config_read(&mut self, offset: u16, data: &mut [u8]) {
            self.0.read(offset, data)
        }
        fn config_write(&mut self, offset: u16, data: &[u8]) {
            self.0.write(offset, data)
        }
        fn decoded_bars(&self) -> Vec<BarRegion> {
            self.0.decoded_bars()
        }
    }

    #[test]
    fn events_are_served_on_the_vcpu_that_owns_the_port() {
        let bus = IoBus::new();
        bus.insert(AddressSpace::Io, 0x510, 1, "latch", Arc::new(Mutex::new(Latch(0x5a)))).unwrap();
        let page = Arc::new(VecIoreqPage::new(3));
        let events = Arc::new(RecordingEvents::default());
        struct Shared(Arc<VecIoreqPage>);
        impl IoreqPage for Shared {
            fn slots(&self) -> usize {
                self.0.slots()
            }
            fn state(&self, s: usize) -> u8 {
                self.0.state(s)
            }
            fn set_state(&self, s: usize, st: u8) {
                self.0.set_state(s, st)
            }
            fn read(&self, s: usize) -> [u8; IOREQ_SIZE] {
                IoreqPage::read(self.0.as_ref(), s)
            }
            fn write_data(&self, s: usize, d: u64) {
                self.0.write_data(s, d)
            }
        }
        let dm = DeviceModelOps::new(RecordingTransport::new(), 1);
        let server = IoreqServer::from_parts(dm, 0, Box::new(Shared(page.clone())), events.clone(), vec![40, 41, 42]);
        let mem = TestMemory::new(4096);
        let req = RawIoreq {
            addr: 0x510,
            size: 1,
            count: 1,
            read: true,
            state: STATE_IOREQ_READY,
            ty: IOREQ_TYPE_PIO,
            ..Default::default()
        };
        page.post(2, &req);
        // An event on vCPU 1's port: its slot is idle, so only the unmask happens.
        assert_eq!(server.handle_port(41, &bus, &mem, &|| {}), Some(SlotOutcome::Ignored { state: 0 }));
        assert_eq!(page.raw(2).state, STATE_IOREQ_READY, "vCPU 2's request waits for its own event");
        assert!(matches!(server.handle_port(42, &bus, &mem, &|| {}), Some(SlotOutcome::Answered(Ok(_)))));
        assert_eq!((page.raw(2).state, page.raw(2).data), (STATE_IORESP_READY, 0x5a));
        // A second event for the same, already answered slot changes nothing and notifies nobody.
        assert_eq!(
            server.handle_port(42, &bus, &mem, &|| {}),
            Some(SlotOutcome::Ignored { state: STATE_IORESP_READY })
        );
        assert_eq!(server.handle_port(99, &bus, &mem, &|| {}), None);
        assert_eq!(
            *events.log.lock().unwrap(),
            vec![("unmask", 41), ("unmask", 42), ("notify", 42), ("unmask", 42), ("unmask", 99)]
        );

        // A READY slot whose event was consumed early (or never came) is found by the idle scan.
        events.log.lock().unwrap().clear();
        page.post(0, &req);
        server.service_ready_slots(&bus, &mem, &|| {});
        assert_eq!((page.raw(0).state, page.raw(0).data), (STATE_IORESP_READY, 0x5a));
        assert_eq!(*events.log.lock().unwrap(), vec![("notify", 40)], "only the answered vCPU is notified");
        server.service_ready_slots(&bus, &mem, &|| {});
        assert_eq!(events.log.lock().unwrap().len(), 1, "nothing READY: nothing happens");
        // Its event arrives afterwards and finds the slot answered.
        assert_eq!(
            server.handle_port(40, &bus, &mem, &|| {}),
            Some(SlotOutcome::Ignored { state: STATE_IORESP_READY })
        );

        let c = server.counters();
        let n = |a: &AtomicU64| a.load(Ordering::Relaxed);
        assert_eq!((n(&c.by_event), n(&c.by_idle_scan), n(&c.stale_events)), (1, 1, 3));
        assert_eq!((n(&c.pio), n(&c.mmio), n(&c.pci_config), n(&c.other)), (2, 0, 0, 0));
        assert!(
            c.summary().starts_with("1 requests served on their event, 1 found READY by the idle scan, 3 events"),
            "{}",
            c.summary()
        );
    }

    #[test]
    fn buffered_writes_are_performed_before_the_next_synchronous_request() {
        use crate::xen::ioreq::{VecBufferedPage, IOREQ_TYPE_COPY};
        let bus = IoBus::new();
        let window = Arc::new(Mutex::new(Latch(0)));
        bus.insert(AddressSpace::Mmio, 0xa_0000, 0x2_0000, "vga-window", window.clone()).unwrap();
        let page = Arc::new(VecIoreqPage::new(1));
        let ring = Arc::new(VecBufferedPage::new());
        struct SharedRing(Arc<VecBufferedPage>);
        impl BufferedPage for SharedRing {
            fn read_pointer(&self) -> u32 {
                self.0.read_pointer()
            }
            fn write_pointer(&self) -> u32 {
                self.0.write_pointer()
            }
            fn slot(&self, i: u32) -> u64 {
                self.0.slot(i)
            }
            fn advance_read_pointer(&self, n: u32) {
                self.0.advance_read_pointer(n)
            }
        }
        struct Shared(Arc<VecIoreqPage>);
        impl IoreqPage for Shared {
            fn slots(&self) -> usize {
                self.0.slots()
            }
            fn state(&self, s: usize) -> u8 {
                self.0.state(s)
            }
            fn set_state(&self, s: usize, st: u8) {
                self.0.set_state(s, st)
            }
            fn read(&self, s: usize) -> [u8; IOREQ_SIZE] {
                IoreqPage::read(self.0.as_ref(), s)
            }
            fn write_data(&self, s: usize, d: u64) {
                self.0.write_data(s, d)
            }
        }
        let events = Arc::new(RecordingEvents::default());
        let dm = DeviceModelOps::new(RecordingTransport::new(), 1);
        let server = IoreqServer::from_parts(dm, 0, Box::new(Shared(page.clone())), events.clone(), vec![40])
            .with_buffered(Box::new(SharedRing(ring.clone())), 50);
        let mem = TestMemory::new(4096);
        // The guest writes 0x11 then 0x22 into the window (buffered, no event seen yet), then
        // reads it back synchronously: the read must see the last write.
        ring.push(&[
            VecBufferedPage::encode(IOREQ_TYPE_COPY, false, 0, 0xa_0000, 0x11),
            VecBufferedPage::encode(IOREQ_TYPE_COPY, false, 0, 0xa_0000, 0x22),
        ]);
        let read = RawIoreq {
            addr: 0xa_0000,
            size: 1,
            count: 1,
            read: true,
            state: STATE_IOREQ_READY,
            ty: IOREQ_TYPE_COPY,
            ..Default::default()
        };
        page.post(0, &read);
        assert!(matches!(server.handle_port(40, &bus, &mem, &|| {}), Some(SlotOutcome::Answered(Ok(_)))));
        assert_eq!(page.raw(0).data, 0x22);
        // The ring's own event drains it and answers no vCPU.
        ring.push(&[VecBufferedPage::encode(IOREQ_TYPE_COPY, false, 0, 0xa_0000, 0x33)]);
        assert_eq!(server.handle_port(50, &bus, &mem, &|| {}), None);
        assert_eq!(window.lock().unwrap().0, 0x33);
        // And so does the idle poll, for a write whose event was lost.
        ring.push(&[VecBufferedPage::encode(IOREQ_TYPE_COPY, false, 0, 0xa_0000, 0x44)]);
        server.service_ready_slots(&bus, &mem, &|| {});
        assert_eq!(window.lock().unwrap().0, 0x44);
        assert_eq!(server.counters().buffered.load(Ordering::Relaxed), 4);
        assert_eq!(*events.log.lock().unwrap(), vec![("unmask", 40), ("notify", 40), ("unmask", 50)]);
    }

    #[test]
    fn ranges_cover_ports_mmio_pci_functions_and_follow_bar_moves() {
        let bus = IoBus::new();
        let latch = Arc::new(Mutex::new(Latch(0)));
        bus.insert(AddressSpace::Io, 0x70, 2, "cmos", latch.clone()).unwrap();
        bus.insert(AddressSpace::Io, 0xcf9, 1, "reset", latch.clone()).unwrap();
        bus.insert(AddressSpace::Mmio, 0xfed0_0000, 0x400, "mmio", latch).unwrap();
        let mut cfg = ConfigSpace::new(PciIds { vendor_id: 0x1234, device_id: 0x11, ..Default::default() });
        cfg.declare_bar(0, BarKind::Io, 16).unwrap();
        bus.add_pci_device(PciAddress::new(0, 3, 0), Arc::new(Mutex::new(OneBar(cfg)))).unwrap();
        assert_eq!(port_ranges(&bus), vec![(0x70, 0x71), (0xcf8, 0xcff)], "0xcf9 is inside the PCI ports range");

        let t = RecordingTransport::new();
        let dm = DeviceModelOps::new(t.clone(), 4);
        let counters = Arc::new(ServeCounters::default());
        register_ranges(&dm, 2, &bus, counters.clone()).unwrap();
        let seen =
            |c: &crate::xen::dmop::testing::Call| (c.op(), c.field(0, 2), c.field(4, 4), c.field(8, 8), c.field(16, 8));
        let map = XEN_DMOP_MAP_IO_RANGE_TO_IOREQ_SERVER;
        assert_eq!(
            t.take().iter().map(seen).collect::<Vec<_>>(),
            vec![
                (map, 2, 0, 0x70, 0x71),
                (map, 2, 0, 0xcf8, 0xcff),
                (map, 2, 1, 0xfed0_0000, 0xfed0_03ff),
                (map, 2, 2, 3 << 3, 3 << 3)
            ]
        );
        // The guest programs BAR0 to 0xc000 and enables I/O decoding, then moves it.
        bus.pci_config_write(PciAddress::new(0, 3, 0), 0x10, &0xc000u32.to_le_bytes());
        bus.pci_config_write(PciAddress::new(0, 3, 0), 0x04, &[1]);
        bus.pci_config_write(PciAddress::new(0, 3, 0), 0x10, &0xd000u32.to_le_bytes());
        let unmap = XEN_DMOP_UNMAP_IO_RANGE_FROM_IOREQ_SERVER;
        assert_eq!(
            t.take().iter().map(seen).collect::<Vec<_>>(),
            vec![(map, 2, 0, 0xc000, 0xc00f), (unmap, 2, 0, 0xc000, 0xc00f), (map, 2, 0, 0xd000, 0xd00f)]
        );
        assert_eq!(counters.bar_dmops.load(Ordering::Relaxed), 3, "only BAR moves count, not the initial registration");
    }
}
