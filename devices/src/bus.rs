//! The one dispatch path for guest port I/O, MMIO and PCI configuration accesses.
//!
//! KVM exits and Xen ioreqs both end here. Fixed ranges (legacy devices) are registered once; PCI
//! BARs are mapped and unmapped as the guest programs them through configuration space, and
//! listeners (the Xen backend's range registration) hear about every move.
//!
//! An access that is not entirely inside one registered range (a miss, or one that straddles two
//! devices) reads as all ones and writes are dropped: that is what an ISA/PCI bus does with an
//! unclaimed cycle, and it is never an error for the device model.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, RwLock};

use crate::pci::{BarChange, BarSpace, PciAddress, PciRoot, SharedPciDevice};

/// A device on the port I/O or MMIO bus. `addr` is the absolute port number or guest physical
/// address, so one device can own several ranges (the IDE command and control blocks, the i8042
/// data and status ports).
pub trait BusDevice: Send {
    fn read(&mut self, addr: u64, data: &mut [u8]);
    fn write(&mut self, addr: u64, data: &[u8]);
}

pub type SharedBusDevice = Arc<Mutex<dyn BusDevice>>;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AddressSpace {
    Io,
    Mmio,
}

#[derive(Debug, PartialEq, Eq)]
pub enum BusError {
    /// The new range overlaps `existing`.
    Overlap { space: AddressSpace, base: u64, len: u64, existing: String },
    /// Zero length or `base + len` overflows the address space.
    InvalidRange { space: AddressSpace, base: u64, len: u64 },
}

impl fmt::Display for BusError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BusError::Overlap { space, base, len, existing } => {
                write!(f, "{space:?} range {base:#x}+{len:#x} overlaps {existing}")
            }
            BusError::InvalidRange { space, base, len } => write!(f, "invalid {space:?} range {base:#x}+{len:#x}"),
        }
    }
}

impl std::error::Error for BusError {}

#[derive(Clone)]
enum Target {
    Device(SharedBusDevice),
    PciBar { device: SharedPciDevice, address: PciAddress, bar: u8 },
}

#[derive(Clone)]
struct Range {
    len: u64,
    name: String,
    target: Target,
}

#[derive(Default)]
struct RangeMap {
    ranges: BTreeMap<u64, Range>,
}

impl RangeMap {
    fn insert(&mut self, space: AddressSpace, base: u64, range: Range) -> Result<(), BusError> {
        let len = range.len;
        let limit = if space == AddressSpace::Io { 0xffff } else { u64::MAX };
        // `last` is the range's last address, so a range may end exactly at the top of the space.
        let last = len.checked_sub(1).and_then(|l| base.checked_add(l)).filter(|&l| l <= limit);
        let Some(last) = last else { return Err(BusError::InvalidRange { space, base, len }) };
        // The nearest range starting at or below `last` is the only one that can overlap.
        if let Some((&b, r)) = self.ranges.range(..=last).next_back() {
            if b.saturating_add(r.len) > base {
                return Err(BusError::Overlap {
                    space,
                    base,
                    len,
                    existing: format!("{} at {b:#x}+{:#x}", r.name, r.len),
                });
            }
        }
        self.ranges.insert(base, range);
        Ok(())
    }

    /// The range that holds all of `addr..addr+len`, and the offset of `addr` in it.
    fn find(&self, addr: u64, len: usize) -> Option<(u64, &Range)> {
        let (&base, r) = self.ranges.range(..=addr).next_back()?;
        let off = addr - base;
        let end = off.checked_add(len as u64)?;
        (end <= r.len).then_some((base, r))
    }
}

type BarListener = Box<dyn Fn(&BarChange) + Send + Sync>;

/// The machine's I/O dispatch: port space, MMIO space and PCI bus 0.
pub struct IoBus {
    io: RwLock<RangeMap>,
    mmio: RwLock<RangeMap>,
    pci: Mutex<PciRoot>,
    listeners: RwLock<Vec<BarListener>>,
}

impl Default for IoBus {
    fn default() -> Self {
        Self::new()
    }
}

/// Configuration mechanism #1 (PCI 3.0 section 3.2.2.3.2): the address register is a DWORD at 0xcf8;
/// byte and word accesses to 0xcf8-0xcfb are not configuration cycles and go to the port map
/// (PIIX3 reset control is the byte at 0xcf9). The data window 0xcfc-0xcff belongs to PCI.
const PCI_CONFIG_PORTS: std::ops::RangeInclusive<u64> = 0xcfc..=0xcff;
const PCI_CONFIG_ADDRESS: u16 = 0xcf8;

impl IoBus {
    pub fn new() -> Self {
        IoBus {
            io: RwLock::new(RangeMap::default()),
            mmio: RwLock::new(RangeMap::default()),
            pci: Mutex::new(PciRoot::new()),
            listeners: RwLock::new(Vec::new()),
        }
    }

    fn map(&self, space: AddressSpace) -> &RwLock<RangeMap> {
        match space {
            AddressSpace::Io => &self.io,
            AddressSpace::Mmio => &self.mmio,
        }
    }

    /// Registers a fixed range for `device`.
    pub fn insert(
        &self,
        space: AddressSpace,
        base: u64,
        len: u64,
        name: &str,
        device: SharedBusDevice,
    ) -> Result<(), BusError> {
        if space == AddressSpace::Io
            && PCI_CONFIG_PORTS.start() < &base.saturating_add(len)
            && base <= *PCI_CONFIG_PORTS.end()
        {
            return Err(BusError::Overlap { space, base, len, existing: "PCI configuration ports 0xcf8-0xcff".into() });
        }
        self.map(space).write().unwrap().insert(
            space,
            base,
            Range { len, name: name.to_string(), target: Target::Device(device) },
        )
    }

    /// Every fixed and BAR range currently registered, for backends that must announce them (Xen
    /// `map_io_range_to_ioreq_server`).
    pub fn ranges(&self, space: AddressSpace) -> Vec<(u64, u64, String)> {
        self.map(space).read().unwrap().ranges.iter().map(|(b, r)| (*b, r.len, r.name.clone())).collect()
    }

    /// Adds a PCI function to bus 0 and maps whatever BARs it already decodes.
    pub fn add_pci_device(&self, address: PciAddress, device: SharedPciDevice) -> Result<(), String> {
        self.pci.lock().unwrap().add_device(address, device.clone()).map_err(|e| format!("{e:?}"))?;
        let bars = device.lock().unwrap().decoded_bars();
        for bar in bars {
            self.apply(&BarChange { address, device: device.clone(), index: bar.index, old: None, new: Some(bar) });
        }
        Ok(())
    }

    /// The PCI functions on bus 0.
    pub fn pci_devices(&self) -> Vec<(PciAddress, SharedPciDevice)> {
        self.pci.lock().unwrap().devices()
    }

    /// Called for every BAR change after the bus has remapped it.
    pub fn add_bar_listener(&self, listener: BarListener) {
        self.listeners.write().unwrap().push(listener);
    }

    fn apply(&self, change: &BarChange) {
        let space_of = |s: BarSpace| if s == BarSpace::Io { AddressSpace::Io } else { AddressSpace::Mmio };
        if let Some(old) = change.old {
            let mut map = self.map(space_of(old.space)).write().unwrap();
            // Only remove the range if it is this BAR's (an overlapping BAR may have been refused).
            let ours = matches!(map.ranges.get(&old.base), Some(Range { target: Target::PciBar { address, bar, .. }, .. })
                if *address == change.address && *bar == change.index);
            if ours {
                map.ranges.remove(&old.base);
            }
        }
        if let Some(new) = change.new {
            let space = space_of(new.space);
            let name = format!("{} BAR{}", change.address, change.index);
            let target = Target::PciBar { device: change.device.clone(), address: change.address, bar: change.index };
            let refused = space == AddressSpace::Io
                && new.base <= *PCI_CONFIG_PORTS.end()
                && new.base.saturating_add(new.size) > *PCI_CONFIG_PORTS.start();
            let result = if refused {
                Err(BusError::Overlap {
                    space,
                    base: new.base,
                    len: new.size,
                    existing: "PCI configuration ports".into(),
                })
            } else {
                self.map(space).write().unwrap().insert(space, new.base, Range { len: new.size, name, target })
            };
            if let Err(e) = result {
                // The guest programmed overlapping BARs; the later one does not decode.
                crate::guest_warn!("PCI {} BAR{} not mapped: {e}", change.address, change.index);
            }
        }
        for l in self.listeners.read().unwrap().iter() {
            l(change);
        }
    }

    /// Saves the host bridge's CONFIG_ADDRESS latch (section "pci-host").
    pub fn save_pci_host(&self, w: &mut crate::snapshot::StateWriter) {
        use crate::snapshot::Snapshot;
        self.pci.lock().unwrap().save(w)
    }

    /// Restores what [`IoBus::save_pci_host`] saved.
    pub fn restore_pci_host(
        &self,
        r: &mut crate::snapshot::StateReader<'_>,
    ) -> Result<(), crate::snapshot::StateError> {
        use crate::snapshot::Snapshot;
        self.pci.lock().unwrap().restore(r)
    }

    /// Makes the BAR mappings match what every PCI function decodes now, after its configuration
    /// space changed behind the bus's back (a restored device state). Each difference between a
    /// function's `decoded_bars` and the ranges mapped for it is applied as a [`BarChange`], so
    /// listeners (the Xen backend's ioreq range registration) hear about it as for a guest write.
    /// Returns the changes made.
    pub fn resync_bars(&self) -> Vec<BarChange> {
        let space_of = |s: AddressSpace| if s == AddressSpace::Io { BarSpace::Io } else { BarSpace::Memory };
        // What is mapped now, per (function, BAR).
        let mut mapped: BTreeMap<(PciAddress, u8), crate::pci::BarRegion> = BTreeMap::new();
        for space in [AddressSpace::Io, AddressSpace::Mmio] {
            for (&base, r) in self.map(space).read().unwrap().ranges.iter() {
                if let Target::PciBar { address, bar, .. } = &r.target {
                    mapped.insert(
                        (*address, *bar),
                        crate::pci::BarRegion { index: *bar, space: space_of(space), base, size: r.len },
                    );
                }
            }
        }
        let mut changes = Vec::new();
        for (address, device) in self.pci_devices() {
            let decoded = device.lock().unwrap().decoded_bars();
            for index in 0..=crate::pci::config::ROM_BAR_INDEX {
                let old = mapped.get(&(address, index)).copied();
                let new = decoded.iter().find(|b| b.index == index).copied();
                if old != new {
                    changes.push(BarChange { address, device: device.clone(), index, old, new });
                }
            }
        }
        // Unmap everything that goes away or moves first, so a BAR may take over the range another
        // one leaves.
        for c in changes.iter().filter(|c| c.old.is_some()) {
            self.apply(&BarChange { new: None, ..c.clone() });
        }
        for c in &changes {
            if c.new.is_some() {
                // The listeners already heard about the unmap above.
                self.apply(&BarChange { old: None, ..c.clone() });
            }
        }
        changes
    }

    fn dispatch_read(&self, space: AddressSpace, addr: u64, data: &mut [u8]) {
        let target = {
            let map = self.map(space).read().unwrap();
            map.find(addr, data.len()).map(|(base, r)| (base, r.target.clone()))
        };
        match target {
            Some((_, Target::Device(d))) => d.lock().unwrap().read(addr, data),
            Some((base, Target::PciBar { device, bar, .. })) => device.lock().unwrap().bar_read(bar, addr - base, data),
            None => {
                crate::guest_unimp!("unclaimed {space:?} read {addr:#x}/{}", data.len());
                data.fill(0xff)
            }
        }
    }

    fn dispatch_write(&self, space: AddressSpace, addr: u64, data: &[u8]) {
        let target = {
            let map = self.map(space).read().unwrap();
            map.find(addr, data.len()).map(|(base, r)| (base, r.target.clone()))
        };
        match target {
            Some((_, Target::Device(d))) => d.lock().unwrap().write(addr, data),
            Some((base, Target::PciBar { device, bar, .. })) => {
                device.lock().unwrap().bar_write(bar, addr - base, data)
            }
            None => crate::guest_unimp!("unclaimed {space:?} write {addr:#x}/{} = {data:02x?}", data.len()),
        }
    }

    /// A guest port read (`in`). Sizes other than 1, 2 and 4 read as all ones.
    pub fn pio_read(&self, port: u16, data: &mut [u8]) {
        if !matches!(data.len(), 1 | 2 | 4) {
            data.fill(0xff);
            return;
        }
        let port64 = port as u64;
        if PCI_CONFIG_PORTS.contains(&port64) || (port == PCI_CONFIG_ADDRESS && data.len() == 4) {
            return self.pci.lock().unwrap().io_read(port, data);
        }
        self.dispatch_read(AddressSpace::Io, port64, data)
    }

    /// A guest port write (`out`).
    pub fn pio_write(&self, port: u16, data: &[u8]) {
        if !matches!(data.len(), 1 | 2 | 4) {
            return;
        }
        let port64 = port as u64;
        if PCI_CONFIG_PORTS.contains(&port64) || (port == PCI_CONFIG_ADDRESS && data.len() == 4) {
            let changes = self.pci.lock().unwrap().io_write(port, data);
            for c in &changes {
                self.apply(c);
            }
            return;
        }
        self.dispatch_write(AddressSpace::Io, port64, data)
    }

    /// A guest MMIO read of 1 to 8 bytes.
    pub fn mmio_read(&self, addr: u64, data: &mut [u8]) {
        if data.is_empty() || data.len() > 8 {
            data.fill(0xff);
            return;
        }
        self.dispatch_read(AddressSpace::Mmio, addr, data)
    }

    pub fn mmio_write(&self, addr: u64, data: &[u8]) {
        if data.is_empty() || data.len() > 8 {
            return;
        }
        self.dispatch_write(AddressSpace::Mmio, addr, data)
    }

    /// A configuration read addressed directly (Xen `IOREQ_TYPE_PCI_CONFIG`).
    pub fn pci_config_read(&self, address: PciAddress, offset: u16, data: &mut [u8]) {
        if !matches!(data.len(), 1 | 2 | 4) || offset >= 256 || (offset as usize % 4) + data.len() > 4 {
            data.fill(0xff);
            return;
        }
        self.pci.lock().unwrap().config_read(address, offset, data)
    }

    pub fn pci_config_write(&self, address: PciAddress, offset: u16, data: &[u8]) {
        if !matches!(data.len(), 1 | 2 | 4) || offset >= 256 || (offset as usize % 4) + data.len() > 4 {
            return;
        }
        let changes = self.pci.lock().unwrap().config_write(address, offset, data);
        for c in &changes {
            self.apply(c);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Remembers the last write and answers reads with the low byte of the address.
    #[derive(Default)]
    struct Echo {
        last_write: Option<(u64, Vec<u8>)>,
    }

    impl BusDevice for Echo {
        fn read(&mut self, addr: u64, data: &mut [u8]) {
            data.fill(addr as u8);
        }
        fn write(&mut self, addr: u64, data: &[u8]) {
            self.last_write = Some((addr, data.to_vec()));
        }
    }

    fn bus_with_two() -> (IoBus, Arc<Mutex<Echo>>, Arc<Mutex<Echo>>) {
        let bus = IoBus::new();
        let a = Arc::new(Mutex::new(Echo::default()));
        let b = Arc::new(Mutex::new(Echo::default()));
        bus.insert(AddressSpace::Io, 0x60, 1, "a", a.clone()).unwrap();
        bus.insert(AddressSpace::Io, 0x61, 3, "b", b.clone()).unwrap();
        (bus, a, b)
    }

    #[test]
    fn reads_reach_the_device_that_owns_the_port() {
        let (bus, _, _) = bus_with_two();
        let mut d = [0u8; 1];
        bus.pio_read(0x60, &mut d);
        assert_eq!(d, [0x60]);
        let mut d = [0u8; 2];
        bus.pio_read(0x62, &mut d);
        assert_eq!(d, [0x62, 0x62]);
    }

    #[test]
    fn straddling_and_missing_accesses_read_all_ones_and_drop_writes() {
        let (bus, a, b) = bus_with_two();
        let mut d = [0u8; 2];
        bus.pio_read(0x60, &mut d); // 0x60..0x62 straddles a and b
        assert_eq!(d, [0xff, 0xff]);
        let mut d = [0u8; 4];
        bus.pio_read(0x62, &mut d); // runs past b's end
        assert_eq!(d, [0xff; 4]);
        bus.pio_read(0x1234, &mut d);
        assert_eq!(d, [0xff; 4]);
        bus.pio_write(0x60, &[1, 2]);
        bus.pio_write(0xffff, &[1, 2, 3, 4]);
        assert!(a.lock().unwrap().last_write.is_none());
        assert!(b.lock().unwrap().last_write.is_none());
        let mut d = [0u8; 8];
        bus.mmio_read(u64::MAX - 3, &mut d);
        assert_eq!(d, [0xff; 8]);
        let mut d = [0u8; 3];
        bus.pio_read(0x61, &mut d); // 3-byte port access does not exist
        assert_eq!(d, [0xff; 3]);
    }

    #[test]
    fn overlapping_and_invalid_ranges_are_refused() {
        let (bus, a, _) = bus_with_two();
        assert!(matches!(bus.insert(AddressSpace::Io, 0x63, 2, "c", a.clone()), Err(BusError::Overlap { .. })));
        assert!(matches!(bus.insert(AddressSpace::Io, 0x5f, 2, "c", a.clone()), Err(BusError::Overlap { .. })));
        assert!(matches!(bus.insert(AddressSpace::Io, 0xffff, 2, "c", a.clone()), Err(BusError::InvalidRange { .. })));
        assert!(matches!(bus.insert(AddressSpace::Io, 0x100, 0, "c", a.clone()), Err(BusError::InvalidRange { .. })));
        assert!(matches!(bus.insert(AddressSpace::Io, 0xcf0, 0x10, "c", a.clone()), Err(BusError::Overlap { .. })));
        // The reset control byte at 0xcf9 shares the DWORD of the configuration address register.
        bus.insert(AddressSpace::Io, 0xcf9, 1, "reset", a.clone()).unwrap();
        let mut d = [0u8; 1];
        bus.pio_read(0xcf9, &mut d);
        assert_eq!(d, [0xf9]);
        bus.insert(AddressSpace::Io, 0x64, 1, "c", a.clone()).unwrap();
        bus.insert(AddressSpace::Mmio, u64::MAX - 0xfff, 0x1000, "top", a).unwrap();
    }

    #[test]
    fn writes_carry_the_absolute_address() {
        let (bus, _, b) = bus_with_two();
        bus.pio_write(0x62, &[7, 8]);
        assert_eq!(b.lock().unwrap().last_write, Some((0x62, vec![7, 8])));
    }

    #[test]
    fn config_reads_of_an_empty_bus_are_all_ones() {
        let bus = IoBus::new();
        bus.pio_write(0xcf8, &0x8000_0000u32.to_le_bytes());
        let mut d = [0u8; 4];
        bus.pio_read(0xcfc, &mut d);
        assert_eq!(d, [0xff; 4]);
        let mut d = [0u8; 2];
        bus.pci_config_read(PciAddress::new(0, 3, 0), 0, &mut d);
        assert_eq!(d, [0xff; 2]);
    }
}
