//! Bus 0 behind the host bridge, reached through configuration mechanism #1 (PCI 3.0 section
//! 3.2.2.3.2) or directly (Xen `IOREQ_TYPE_PCI_CONFIG`).
//!
//! A configuration read that no function claims ends in a master abort, which the host bridge
//! completes with all ones (PCI 3.0 section 6.1: "returns 0FFFFh for the Vendor ID"); a write that
//! no function claims is dropped. Only bus 0 exists: there are no PCI-to-PCI bridges.
use super::*;

#[derive(Debug, PartialEq, Eq)]
pub enum PciError {
    SlotInUse(PciAddress),
    /// Not bus 0, device above 31 or function above 7.
    InvalidAddress(PciAddress),
}

impl std::fmt::Display for PciError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PciError::SlotInUse(a) => write!(f, "PCI function {a} already present"),
            PciError::InvalidAddress(a) => {
                write!(f, "invalid PCI address {a} (only bus 0, devices 0-31, functions 0-7)")
            }
        }
    }
}

impl std::error::Error for PciError {}

/// CONFIG_ADDRESS bits (PCI 3.0 figure 3-2): enable, bus 23:16, device 15:11, function 10:8,
/// register 7:2. Bits 30:24 are reserved and read back zero, bits 1:0 are always zero.
const CONFIG_ADDRESS_ENABLE: u32 = 0x8000_0000;
const CONFIG_ADDRESS_MASK: u32 = 0x80ff_fffc;
const CONFIG_ADDRESS_PORT: u16 = 0xcf8;
const CONFIG_DATA_PORT: u16 = 0xcfc;

#[derive(Default)]
pub struct PciRoot {
    address_latch: u32,
    functions: std::collections::BTreeMap<PciAddress, SharedPciDevice>,
}

/// Whether a configuration access of `len` bytes at `offset` is one a bus cycle can carry: 1, 2 or
/// 4 bytes inside one DWORD (byte enables of a single data phase). Functions may refuse more.
fn valid_config_access(offset: u16, len: usize) -> bool {
    matches!(len, 1 | 2 | 4) && offset < 256 && (offset as usize % 4) + len <= 4
}

impl PciRoot {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a function at `address` (bus 0 only).
    pub fn add_device(&mut self, address: PciAddress, device: SharedPciDevice) -> Result<(), PciError> {
        if address.bus != 0 || address.device > 31 || address.function > 7 {
            return Err(PciError::InvalidAddress(address));
        }
        if self.functions.contains_key(&address) {
            return Err(PciError::SlotInUse(address));
        }
        self.functions.insert(address, device);
        Ok(())
    }

    pub fn devices(&self) -> Vec<(PciAddress, SharedPciDevice)> {
        self.functions.iter().map(|(a, d)| (*a, d.clone())).collect()
    }

    /// The function that answers configuration cycles for `address`. Software finds functions
    /// 1-7 of a device only through function 0 (PCI 3.0 section 6.2.1, Header Type), so a
    /// function whose function 0 is absent does not answer.
    fn visible(&self, address: PciAddress) -> Option<&SharedPciDevice> {
        if address.bus != 0 {
            return None;
        }
        if address.function != 0 && !self.functions.contains_key(&PciAddress { function: 0, ..address }) {
            return None;
        }
        self.functions.get(&address)
    }

    /// A configuration read; absent functions and invalid accesses read all ones.
    pub fn config_read(&self, address: PciAddress, offset: u16, data: &mut [u8]) {
        match self.visible(address) {
            Some(d) if valid_config_access(offset, data.len()) => d.lock().unwrap().config_read(offset, data),
            _ => data.fill(0xff),
        }
    }

    /// A configuration write; returns the BARs the write mapped, unmapped or moved.
    pub fn config_write(&self, address: PciAddress, offset: u16, data: &[u8]) -> Vec<BarChange> {
        if !valid_config_access(offset, data.len()) {
            return Vec::new();
        }
        let Some(dev) = self.visible(address) else { return Vec::new() };
        let mut d = dev.lock().unwrap();
        let before = d.decoded_bars();
        d.config_write(offset, data);
        let after = d.decoded_bars();
        drop(d);
        let mut changes = Vec::new();
        for index in 0..=6u8 {
            let old = before.iter().find(|b| b.index == index).copied();
            let new = after.iter().find(|b| b.index == index).copied();
            if old != new {
                changes.push(BarChange { address, device: dev.clone(), index, old, new });
            }
        }
        changes
    }

    /// The function and register a data-port access at `port` targets, if CONFIG_ADDRESS has its
    /// enable bit set. The byte lanes of 0xcfc-0xcff select the bytes of the DWORD.
    fn latched(&self, port: u16) -> Option<(PciAddress, u16)> {
        let a = self.address_latch;
        if a & CONFIG_ADDRESS_ENABLE == 0 {
            return None;
        }
        let addr = PciAddress::new((a >> 16) as u8, ((a >> 11) & 0x1f) as u8, ((a >> 8) & 7) as u8);
        Some((addr, (a & 0xfc) as u16 + port.checked_sub(CONFIG_DATA_PORT)?))
    }

    /// A guest `in` from 0xcf8 (DWORD only) or 0xcfc-0xcff.
    pub fn io_read(&mut self, port: u16, data: &mut [u8]) {
        match port {
            CONFIG_ADDRESS_PORT if data.len() == 4 => data.copy_from_slice(&self.address_latch.to_le_bytes()),
            0xcfc..=0xcff => match self.latched(port) {
                Some((a, off)) => self.config_read(a, off, data),
                None => data.fill(0xff),
            },
            _ => data.fill(0xff),
        }
    }

    /// A guest `out` to 0xcf8 (DWORD only) or 0xcfc-0xcff.
    pub fn io_write(&mut self, port: u16, data: &[u8]) -> Vec<BarChange> {
        match port {
            CONFIG_ADDRESS_PORT => {
                if let Ok(bytes) = <[u8; 4]>::try_from(data) {
                    self.address_latch = u32::from_le_bytes(bytes) & CONFIG_ADDRESS_MASK;
                }
                Vec::new()
            }
            0xcfc..=0xcff => match self.latched(port) {
                Some((a, off)) => self.config_write(a, off, data),
                None => Vec::new(),
            },
            _ => Vec::new(),
        }
    }
}

impl crate::snapshot::Snapshot for PciRoot {
    const ID: &'static str = "pci-host";
    const VERSION: u16 = 1;

    /// CONFIG_ADDRESS (0xcf8), which a guest may have latched between its two accesses.
    fn save(&self, w: &mut crate::snapshot::StateWriter) {
        w.u32(self.address_latch);
    }

    fn restore(&mut self, r: &mut crate::snapshot::StateReader<'_>) -> Result<(), crate::snapshot::StateError> {
        let latch = r.u32("config_address")?;
        if latch & !CONFIG_ADDRESS_MASK != 0 {
            return Err(r.invalid("config_address", format!("{latch:#x} has reserved bits set (PCI 3.0 figure 3-2)")));
        }
        r.finish()?;
        self.address_latch = latch;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pci::config::{BarKind, PciIds, COMMAND_IO_SPACE, COMMAND_MEMORY_SPACE};
    use std::sync::{Arc, Mutex};

    /// A function with an I/O BAR0 of 32 bytes and a memory BAR1 of 4 KiB.
    struct TestFunction {
        config: ConfigSpace,
    }

    impl TestFunction {
        fn new(device_id: u16, multifunction: bool) -> Arc<Mutex<TestFunction>> {
            let mut config =
                ConfigSpace::new(PciIds { vendor_id: 0x8086, device_id, multifunction, ..Default::default() });
            config.declare_bar(0, BarKind::Io, 32).unwrap();
            config.declare_bar(1, BarKind::Memory32 { prefetchable: false }, 0x1000).unwrap();
            Arc::new(Mutex::new(TestFunction { config }))
        }
    }

    impl PciDevice for TestFunction {
        fn config_read(&mut self, offset: u16, data: &mut [u8]) {
            self.config.read(offset, data)
        }
        fn config_write(&mut self, offset: u16, data: &[u8]) {
            self.config.write(offset, data)
        }
        fn decoded_bars(&self) -> Vec<BarRegion> {
            self.config.decoded_bars()
        }
    }

    fn cf8(root: &mut PciRoot, dev: u8, func: u8, reg: u8) {
        let a = 0x8000_0000u32 | (dev as u32) << 11 | (func as u32) << 8 | reg as u32;
        root.io_write(0xcf8, &a.to_le_bytes());
    }

    fn read32(root: &mut PciRoot, dev: u8, func: u8, reg: u8) -> u32 {
        cf8(root, dev, func, reg);
        let mut d = [0u8; 4];
        root.io_read(0xcfc, &mut d);
        u32::from_le_bytes(d)
    }

    fn write32(root: &mut PciRoot, dev: u8, func: u8, reg: u8, v: u32) -> Vec<BarChange> {
        cf8(root, dev, func, reg);
        root.io_write(0xcfc, &v.to_le_bytes())
    }

    fn two_devices() -> PciRoot {
        let mut root = PciRoot::new();
        root.add_device(PciAddress::new(0, 0, 0), TestFunction::new(0x1111, false)).unwrap();
        root.add_device(PciAddress::new(0, 3, 0), TestFunction::new(0x3333, false)).unwrap();
        root
    }

    #[test]
    fn each_function_answers_at_its_address_and_empty_slots_read_all_ones() {
        let mut root = two_devices();
        assert_eq!(read32(&mut root, 0, 0, 0), 0x1111_8086);
        assert_eq!(read32(&mut root, 3, 0, 0), 0x3333_8086);
        assert_eq!(read32(&mut root, 1, 0, 0), 0xffff_ffff);
        assert_eq!(read32(&mut root, 3, 1, 0), 0xffff_ffff);
        assert_eq!(read32(&mut root, 31, 7, 0xfc), 0xffff_ffff);
        // Byte lanes of the data port select bytes of the DWORD.
        cf8(&mut root, 3, 0, 0);
        let mut d = [0u8; 2];
        root.io_read(0xcfe, &mut d);
        assert_eq!(u16::from_le_bytes(d), 0x3333);
        let mut b = [0u8; 1];
        root.io_read(0xcfd, &mut b);
        assert_eq!(b[0], 0x80);
        // A word access at 0xcff would cross the DWORD: all ones.
        root.io_read(0xcff, &mut d);
        assert_eq!(d, [0xff; 2]);
    }

    #[test]
    fn the_address_register_reads_back_and_gates_the_data_port() {
        let mut root = two_devices();
        root.io_write(0xcf8, &0xffff_ffffu32.to_le_bytes());
        let mut d = [0u8; 4];
        root.io_read(0xcf8, &mut d);
        assert_eq!(u32::from_le_bytes(d), 0x80ff_fffc);
        // Enable bit clear: the data port reads all ones even though 00:00.0 exists.
        root.io_write(0xcf8, &0u32.to_le_bytes());
        root.io_read(0xcfc, &mut d);
        assert_eq!(d, [0xff; 4]);
    }

    #[test]
    fn other_buses_read_all_ones() {
        let mut root = two_devices();
        root.io_write(0xcf8, &(0x8001_0000u32).to_le_bytes());
        let mut d = [0u8; 4];
        root.io_read(0xcfc, &mut d);
        assert_eq!(d, [0xff; 4]);
        assert_eq!(
            root.add_device(PciAddress::new(1, 0, 0), TestFunction::new(1, false)).unwrap_err(),
            PciError::InvalidAddress(PciAddress::new(1, 0, 0))
        );
        assert!(root.add_device(PciAddress::new(0, 32, 0), TestFunction::new(1, false)).is_err());
        assert!(root.add_device(PciAddress::new(0, 0, 0), TestFunction::new(1, false)).is_err());
    }

    #[test]
    fn functions_without_function_zero_are_invisible() {
        let mut root = PciRoot::new();
        root.add_device(PciAddress::new(0, 5, 2), TestFunction::new(0x5252, false)).unwrap();
        assert_eq!(read32(&mut root, 5, 2, 0), 0xffff_ffff);
        assert!(write32(&mut root, 5, 2, 4, COMMAND_IO_SPACE as u32).is_empty());
        root.add_device(PciAddress::new(0, 5, 0), TestFunction::new(0x5050, true)).unwrap();
        assert_eq!(read32(&mut root, 5, 2, 0), 0x5252_8086);
        assert_eq!(read32(&mut root, 5, 0, 0xc) >> 16 & 0xff, 0x80, "function 0 is multi-function");
    }

    #[test]
    fn programming_and_enabling_bars_reports_bar_changes() {
        let mut root = two_devices();
        assert!(write32(&mut root, 3, 0, 0x10, 0xc040).is_empty(), "I/O Space still off");
        assert!(write32(&mut root, 3, 0, 0x14, 0xfebf_0000).is_empty());
        let changes = write32(&mut root, 3, 0, 0x04, (COMMAND_IO_SPACE | COMMAND_MEMORY_SPACE) as u32);
        let got: Vec<_> = changes.iter().map(|c| (c.address, c.index, c.old, c.new)).collect();
        assert_eq!(
            got,
            vec![
                (
                    PciAddress::new(0, 3, 0),
                    0,
                    None,
                    Some(BarRegion { index: 0, space: BarSpace::Io, base: 0xc040, size: 32 })
                ),
                (
                    PciAddress::new(0, 3, 0),
                    1,
                    None,
                    Some(BarRegion { index: 1, space: BarSpace::Memory, base: 0xfebf_0000, size: 0x1000 })
                ),
            ]
        );
        // Moving a BAR reports old and new; sizing it reports an unmap.
        let moved = write32(&mut root, 3, 0, 0x10, 0xc080);
        assert_eq!(moved.len(), 1);
        assert_eq!(moved[0].old.map(|b| b.base), Some(0xc040));
        assert_eq!(moved[0].new.map(|b| b.base), Some(0xc080));
        let sized = write32(&mut root, 3, 0, 0x14, 0xffff_ffff);
        assert_eq!((sized[0].index, sized[0].new), (1, None));
        // The other device saw nothing.
        assert_eq!(read32(&mut root, 0, 0, 4) & 0xffff, 0);
        // Direct (Xen-style) accesses take the same path.
        let back = root.config_write(PciAddress::new(0, 3, 0), 0x14, &0xfebf_0000u32.to_le_bytes());
        assert_eq!(back[0].new.map(|b| b.base), Some(0xfebf_0000));
        assert!(root.config_write(PciAddress::new(0, 3, 0), 0x15, &[0, 0]).is_empty(), "misaligned");
    }
}
