//! PCI (PCI Local Bus 3.0): type-0 configuration space with BARs, capabilities, MSI and MSI-X, and
//! the host bridge's configuration mechanism #1 (0xcf8/0xcfc).

pub mod config;
pub mod function;
pub mod intx_router;
pub mod msi;
pub mod msix;
pub mod option_rom;
pub mod root;

use std::sync::{Arc, Mutex};

pub use config::ConfigSpace;
pub use root::PciRoot;

/// Bus/device/function of a PCI function (segment 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PciAddress {
    pub bus: u8,
    pub device: u8,
    pub function: u8,
}

impl PciAddress {
    pub const fn new(bus: u8, device: u8, function: u8) -> Self {
        PciAddress { bus, device, function }
    }
}

impl std::fmt::Display for PciAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:02x}:{:02x}.{:x}", self.bus, self.device, self.function)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BarSpace {
    Io,
    Memory,
}

/// A BAR as the device decodes it right now: programmed, and enabled by the command register's
/// I/O Space or Memory Space bit. `index` is the BAR number (0-5), or 6 for the expansion ROM.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BarRegion {
    pub index: u8,
    pub space: BarSpace,
    pub base: u64,
    pub size: u64,
}

/// A PCI function as the bus sees it.
pub trait PciDevice: Send {
    /// Reads `data.len()` (1, 2 or 4) bytes of configuration space at `offset` (< 256, naturally
    /// aligned).
    fn config_read(&mut self, offset: u16, data: &mut [u8]);
    /// Writes configuration space; read-only bits keep their value and write-1-to-clear bits clear.
    fn config_write(&mut self, offset: u16, data: &[u8]);
    /// The BARs that currently decode.
    fn decoded_bars(&self) -> Vec<BarRegion>;
    /// An access inside BAR `bar` at `offset` from its base.
    fn bar_read(&mut self, bar: u8, offset: u64, data: &mut [u8]) {
        let _ = (bar, offset);
        data.fill(0xff);
    }
    fn bar_write(&mut self, bar: u8, offset: u64, data: &[u8]) {
        let _ = (bar, offset, data);
    }
}

pub type SharedPciDevice = Arc<Mutex<dyn PciDevice>>;

/// A BAR that appeared, disappeared or moved because of a configuration write. The dispatch path
/// remaps the BAR's range, and the Xen backend re-registers it with its ioreq server.
#[derive(Clone)]
pub struct BarChange {
    pub address: PciAddress,
    pub device: SharedPciDevice,
    pub index: u8,
    pub old: Option<BarRegion>,
    pub new: Option<BarRegion>,
}

impl std::fmt::Debug for BarChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BarChange")
            .field("address", &self.address)
            .field("index", &self.index)
            .field("old", &self.old)
            .field("new", &self.new)
            .finish()
    }
}
