//! Dirty-page logging for live migration (`xen-set-global-dirty-log`).
//!
//! On Xen the hypervisor tracks vCPU writes itself; the device model only has to report its own
//! writes to guest RAM (DMA, rep ins, COPY ioreqs) with `XEN_DMOP_modified_memory` while logging
//! is on, which [`crate::xen::memory::ForeignMemory`] does (xen-interface.md section 10). On KVM
//! the dirty set is KVM's log of vCPU writes (`KVM_GET_DIRTY_LOG`) plus the device writes
//! vm-memory records in [`crate::guest_ram::DeviceRam`]; [`dirty_pages`] merges the two.

use std::collections::BTreeSet;

/// Where `xen-set-global-dirty-log` goes.
pub trait DirtyLog: Send + Sync {
    fn set_dirty_logging(&self, on: bool) -> Result<(), String>;

    /// Called by `xen-save-devices-state`, after the guest stopped and before the hypervisor's
    /// last pass over dirty memory: reports guest pages the device model wrote in ways the
    /// memory writer did not see (VRAM written by display devices).
    fn before_device_save(&self) {}
}

impl DirtyLog for crate::xen::memory::ForeignMemory {
    fn set_dirty_logging(&self, on: bool) -> Result<(), String> {
        crate::xen::memory::ForeignMemory::set_dirty_logging(self, on);
        Ok(())
    }
}

/// Page size of the dirty bitmaps.
#[cfg_attr(not(test), allow(dead_code))]
pub const PAGE_SIZE: u64 = 4096;

/// The guest page frame numbers set in any of `bitmaps`: (region start address, bitmap words,
/// bit n of word w = page `64 * w + n` of the region), sorted and without duplicates. Feed it
/// `KvmVm::take_vcpu_dirty_bitmaps` and `DeviceRam::take_device_dirty_bitmaps` together: a page
/// is dirty if either the vCPUs or a device wrote it.
#[cfg_attr(not(test), allow(dead_code))] // the KVM save path is not built yet
pub fn dirty_pages<'a>(bitmaps: impl IntoIterator<Item = &'a (u64, Vec<u64>)>) -> Vec<u64> {
    let mut out = BTreeSet::new();
    for (start, words) in bitmaps {
        let first = start / PAGE_SIZE;
        for (w, &word) in words.iter().enumerate() {
            let mut bits = word;
            while bits != 0 {
                let bit = u64::from(bits.trailing_zeros());
                bits &= bits - 1;
                out.insert(first + w as u64 * 64 + bit);
            }
        }
    }
    out.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use devices::memory::GuestMemory;
    use vm_memory::GuestAddress;

    use super::*;
    use crate::guest_ram::{DeviceRam, GuestRam};

    #[test]
    fn device_writes_and_vcpu_bitmaps_merge_into_one_page_list() {
        let ram =
            Arc::new(GuestRam::from_ranges(&[(GuestAddress(0), 0xa0000), (GuestAddress(0x100000), 0x400000)]).unwrap());
        let dev = DeviceRam::new(ram);
        // A device writes across a page boundary in the high region, and one byte low.
        dev.write(0x100000 + 0x41ffe, &[1, 2, 3, 4]).unwrap();
        dev.write(0x5000, &[9]).unwrap();
        let device = dev.take_device_dirty_bitmaps();
        // What KVM_GET_DIRTY_LOG would say: the vCPUs wrote page 5 (again) and page 0x100.
        let vcpu = [(0u64, vec![1u64 << 5]), (0x100000, vec![1u64, 0])];
        let pages = dirty_pages(device.iter().chain(vcpu.iter()));
        assert_eq!(pages, vec![5, 0x100, 0x141, 0x142]);
        assert!(dirty_pages(dev.take_device_dirty_bitmaps().iter()).is_empty(), "harvesting resets the device log");
    }
}
