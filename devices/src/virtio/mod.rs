//! Virtio 1.2 devices: the PCI transport ([`pci::VirtioPci`], section 4.1), split virtqueues
//! ([`queue`], section 2.7) and the devices behind them (the entropy device, [`rng`], section
//! 5.4).
//!
//! A device implements [`VirtioDevice`]: its type, features, queues and what it does with the
//! buffers of a queue. The transport does everything the spec puts in common: feature
//! negotiation, device status and reset, queue setup, notifications, and interrupts (MSI-X
//! vectors when the driver enabled MSI-X, otherwise INTx with the ISR status register).
//!
//! Only non-transitional ("modern") devices: no legacy virtio 0.9 I/O BAR. Linux's `virtio_pci`,
//! SeaBIOS and Windows' virtio-win drivers all drive modern devices, and QEMU makes the same
//! device with `disable-legacy=on`.
//!
//! Queues are processed on the driver's notification write, in the vCPU thread that made it.

pub mod pci;
pub mod queue;
pub mod rng;
pub mod spec;

#[cfg(test)]
mod tests;

use crate::memory::GuestMemory;
use queue::{QueueError, SplitQueue};

/// What went wrong while a device served a queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VirtioError {
    /// The driver broke a ring rule (or pointed a buffer outside RAM).
    Queue(QueueError),
    /// The device's host side failed (e.g. the entropy source).
    Host(String),
}

impl std::fmt::Display for VirtioError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VirtioError::Queue(e) => write!(f, "{e}"),
            VirtioError::Host(e) => write!(f, "{e}"),
        }
    }
}

impl From<QueueError> for VirtioError {
    fn from(e: QueueError) -> Self {
        VirtioError::Queue(e)
    }
}

impl From<crate::memory::MemoryError> for VirtioError {
    fn from(e: crate::memory::MemoryError) -> Self {
        VirtioError::Queue(QueueError::Memory(e))
    }
}

/// A virtio device type behind a transport.
pub trait VirtioDevice: Send {
    /// Virtio device ID (section 5), e.g. 4 for the entropy device.
    fn device_id(&self) -> u16;
    /// PCI class, subclass and programming interface the function shows (the spec leaves them
    /// to the device; QEMU's choices).
    fn pci_class(&self) -> (u8, u8, u8);
    /// Device-type feature bits offered (the transport adds VIRTIO_F_VERSION_1).
    fn features(&self) -> u64 {
        0
    }
    /// The maximum size of each queue, in queue order (powers of two).
    fn queue_max_sizes(&self) -> &[u16];
    /// Bytes of device-specific configuration (0: no such structure).
    fn config_len(&self) -> u64 {
        0
    }
    fn read_config(&self, offset: u64, data: &mut [u8]) {
        let _ = offset;
        data.fill(0);
    }
    fn write_config(&mut self, offset: u64, data: &[u8]) {
        let _ = (offset, data);
    }
    /// Serves the available buffers of queue `index`. Returns whether any buffer was used (so
    /// the transport considers an interrupt). At most the queue's size of chains per call, so a
    /// driver refilling the ring from another vCPU cannot keep this vCPU here.
    fn process_queue(&mut self, index: u16, queue: &mut SplitQueue, mem: &dyn GuestMemory)
        -> Result<bool, VirtioError>;
    /// Device reset (status written 0): forget any per-driver state.
    fn reset(&mut self) {}
}
