//! Bus 0 behind the host bridge, reached through configuration mechanism #1 (PCI 3.0 section 3.2.2.3.2).
// API contract (implemented in full by the PCI core work):
//   PciRoot::new() -> PciRoot
//   add_device(&mut self, PciAddress, SharedPciDevice) -> Result<(), PciError>
//   config_read(&self, PciAddress, offset: u16, data: &mut [u8])          // absent function: all ones
//   config_write(&self, PciAddress, offset: u16, data: &[u8]) -> Vec<BarChange>
//   io_read(&mut self, port: u16, data: &mut [u8])                        // ports 0xcf8..=0xcff
//   io_write(&mut self, port: u16, data: &[u8]) -> Vec<BarChange>
//   devices(&self) -> Vec<(PciAddress, SharedPciDevice)>
use super::*;

#[derive(Debug)]
pub enum PciError {
    SlotInUse(PciAddress),
}

#[derive(Default)]
pub struct PciRoot {
    address_latch: u32,
    functions: std::collections::BTreeMap<PciAddress, SharedPciDevice>,
}

impl PciRoot {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn add_device(&mut self, address: PciAddress, device: SharedPciDevice) -> Result<(), PciError> {
        if self.functions.contains_key(&address) {
            return Err(PciError::SlotInUse(address));
        }
        self.functions.insert(address, device);
        Ok(())
    }
    pub fn devices(&self) -> Vec<(PciAddress, SharedPciDevice)> {
        self.functions.iter().map(|(a, d)| (*a, d.clone())).collect()
    }
    pub fn config_read(&self, address: PciAddress, offset: u16, data: &mut [u8]) {
        match self.functions.get(&address) {
            Some(d) => d.lock().unwrap().config_read(offset, data),
            None => data.fill(0xff),
        }
    }
    pub fn config_write(&self, address: PciAddress, offset: u16, data: &[u8]) -> Vec<BarChange> {
        let Some(dev) = self.functions.get(&address) else { return Vec::new() };
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
    fn latched(&self, port: u16) -> Option<(PciAddress, u16)> {
        let a = self.address_latch;
        if a & 0x8000_0000 == 0 {
            return None;
        }
        let addr = PciAddress::new((a >> 16) as u8, ((a >> 11) & 0x1f) as u8, ((a >> 8) & 7) as u8);
        Some((addr, (a & 0xfc) as u16 + (port - 0xcfc)))
    }
    pub fn io_read(&mut self, port: u16, data: &mut [u8]) {
        match port {
            0xcf8 if data.len() == 4 => data.copy_from_slice(&self.address_latch.to_le_bytes()),
            0xcfc..=0xcff => match self.latched(port) {
                Some((a, off)) if (off as usize % 4) + data.len() <= 4 => self.config_read(a, off, data),
                _ => data.fill(0xff),
            },
            _ => data.fill(0xff),
        }
    }
    pub fn io_write(&mut self, port: u16, data: &[u8]) -> Vec<BarChange> {
        match port {
            0xcf8 if data.len() == 4 => {
                self.address_latch = u32::from_le_bytes(data.try_into().unwrap()) & 0x80ff_fffc;
                Vec::new()
            }
            0xcfc..=0xcff => match self.latched(port) {
                Some((a, off)) if (off as usize % 4) + data.len() <= 4 => self.config_write(a, off, data),
                _ => Vec::new(),
            },
            _ => Vec::new(),
        }
    }
}
