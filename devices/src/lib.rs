//! Emulated hardware for the device model.
//!
//! Devices here know nothing about KVM or Xen. They see the world only through the small traits of
//! [`bus`] (port I/O and MMIO access), [`interrupt`] (interrupt lines and MSI), [`memory`] (guest
//! memory that records what a device writes), [`clock`], [`timer`] (callbacks at a deadline and wake-ups
//! from other threads, for work outside register accesses) and [`vm_control`] (reset / power-off
//! requests). A hypervisor backend implements those traits and feeds every guest access through one
//! [`bus::IoBus`], whether it came from a KVM exit or a Xen ioreq.
#![forbid(unsafe_code)]

pub mod bus;
pub mod chipset;
pub mod clock;
pub mod display;
pub mod edu;
pub mod input;
pub mod interrupt;
pub mod legacy;
pub mod memory;
pub mod pc;
pub mod pci;
pub mod ratelimit;
pub mod snapshot;
pub mod storage;
pub mod timer;
pub mod virtio;
pub mod vm_control;

#[cfg(test)]
mod test_support;
pub mod xen_platform;
