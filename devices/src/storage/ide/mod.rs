//! IDE: the PIIX3 IDE function with ATA disks and ATAPI CD-ROMs.
//!
//! [`controller`] is the PCI function and its ports; [`channel`] one channel's registers and
//! interrupt; [`drive`] one device's task file and PIO buffer; [`ata`] and [`atapi`] the two
//! command sets; [`cdrom`] the tray and medium; [`busmaster`] SFF-8038i DMA; [`identify`] the
//! IDENTIFY data; [`spec`] register layouts and codes.

pub mod ata;
pub mod atapi;
pub mod busmaster;
pub mod cdrom;
pub mod channel;
pub mod controller;
pub mod drive;
pub mod identify;
pub mod snapshot;
pub mod spec;
pub mod transfer;

#[cfg(test)]
mod tests;

pub use cdrom::MediaError;
pub use controller::{
    CdromHandle, DriveQuery, IdeConfigError, IdeDriveConfig, IdeHandle, IdeLegacyPorts, IdeMedia, InsertedMedium,
    Piix3Ide, TrayListener, TrayMoved, BUS_MASTER_BAR, CHANNEL_IRQS, LEGACY_PORT_RANGES, PIIX3_IDE_ADDRESS,
};
