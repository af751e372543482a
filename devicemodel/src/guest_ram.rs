//! Guest RAM in this process (KVM mode): vm-memory regions with a page-granular dirty bitmap.
//!
//! Devices reach it only through [`devices::memory::GuestMemory`] (design in that module):
//! scoped `VolatileSlice`s of the regions, after which a write access sets the regions'
//! `AtomicBitmap` for every page it covered (the slices may have been written through raw
//! pointers by `preadv`, which no bitmap sees). Together with KVM's own dirty log (vCPU writes)
//! that is the complete set of pages changed since the last harvest. The regions never move or
//! shrink while the machine runs, so a slice is valid as long as this object is borrowed.

use std::sync::Arc;

use devices::memory::{backend_slices, Access, GuestMemory, MemoryError, VolatileSlice};
use vm_memory::bitmap::{AtomicBitmap, Bitmap};
use vm_memory::{Bytes, GuestAddress, GuestMemoryBackend, GuestMemoryRegion};

pub type GuestRam = vm_memory::GuestMemoryMmap<AtomicBitmap>;

/// The devices' view of guest RAM.
#[derive(Clone)]
pub struct DeviceRam {
    ram: Arc<GuestRam>,
}

impl DeviceRam {
    pub fn new(ram: Arc<GuestRam>) -> Self {
        DeviceRam { ram }
    }

    /// The same RAM as a `vm_memory::GuestMemory` (for virtio-queue): writes through it set the
    /// same bitmap.
    #[allow(dead_code)] // first user: virtio
    pub fn vm_memory(&self) -> &Arc<GuestRam> {
        &self.ram
    }

    /// Pages written by devices since the last call, as (region start, bitmap words) per region.
    pub fn take_device_dirty_bitmaps(&self) -> Vec<(u64, Vec<u64>)> {
        self.ram.iter().map(|r| (r.start_addr().0, std::ops::Deref::deref(r).bitmap().get_and_reset())).collect()
    }

    fn check(&self, gpa: u64, len: usize) -> Result<(), MemoryError> {
        gpa.checked_add(len as u64).ok_or(MemoryError::Overflow)?;
        // The whole range must be RAM: vm-memory would otherwise copy a prefix and then fail.
        let mut addr = gpa;
        let end = gpa + len as u64;
        while addr < end {
            let r = self.ram.find_region(GuestAddress(addr)).ok_or(MemoryError::NotRam { gpa, len })?;
            addr = r.start_addr().0 + r.len();
        }
        Ok(())
    }
}

impl GuestMemory for DeviceRam {
    fn with_slices(
        &self,
        ranges: &[(u64, usize)],
        access: Access,
        f: &mut dyn FnMut(&[VolatileSlice<'_>]),
    ) -> Result<(), MemoryError> {
        let slices = backend_slices(&*self.ram, ranges)?;
        let plain: Vec<VolatileSlice<'_>> = slices
            .iter()
            // Each pointer and length come from a vm-memory slice of a region of `self.ram`, which
            // stays mapped while `self` is borrowed (regions are never removed from a running
            // machine); the plain slices do not escape this call. Only the bitmap is dropped:
            // dirty pages are marked explicitly below.
            // SAFETY: the slice lies in a live mapping that outlives its use, as said above.
            .map(|s| unsafe { VolatileSlice::new(s.ptr_guard_mut().as_ptr(), s.len()) })
            .collect();
        f(&plain);
        if access == Access::Write {
            for s in &slices {
                s.bitmap().mark_dirty(0, s.len());
            }
        }
        Ok(())
    }

    fn read(&self, gpa: u64, buf: &mut [u8]) -> Result<(), MemoryError> {
        self.check(gpa, buf.len())?;
        self.ram.read_slice(buf, GuestAddress(gpa)).map_err(|_| MemoryError::NotRam { gpa, len: buf.len() })
    }

    fn write(&self, gpa: u64, buf: &[u8]) -> Result<(), MemoryError> {
        self.check(gpa, buf.len())?;
        self.ram.write_slice(buf, GuestAddress(gpa)).map_err(|_| MemoryError::NotRam { gpa, len: buf.len() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_writes_are_recorded_and_holes_refused() {
        let ram =
            Arc::new(GuestRam::from_ranges(&[(GuestAddress(0), 0xa0000), (GuestAddress(0x100000), 0x100000)]).unwrap());
        let dev = DeviceRam::new(ram);
        dev.write(0x2000, &[1, 2, 3]).unwrap();
        assert_eq!(dev.write(0x9fff0, &[0; 0x20]), Err(MemoryError::NotRam { gpa: 0x9fff0, len: 0x20 }));
        let maps = dev.take_device_dirty_bitmaps();
        assert_eq!(maps[0].1[0], 1 << 2, "page 2 of the first region is dirty");
        assert!(maps[1].1.iter().all(|w| *w == 0));
        let mut b = [0u8; 3];
        dev.read(0x2000, &mut b).unwrap();
        assert_eq!(b, [1, 2, 3]);
        assert!(dev.take_device_dirty_bitmaps()[0].1.iter().all(|w| *w == 0), "harvest resets the bitmap");
    }

    #[test]
    fn slices_written_behind_the_bitmaps_back_still_mark_their_pages() {
        let ram =
            Arc::new(GuestRam::from_ranges(&[(GuestAddress(0), 0xa0000), (GuestAddress(0x100000), 0x100000)]).unwrap());
        let dev = DeviceRam::new(ram);
        // What preadv does: writes through the host address, not through vm-memory.
        dev.with_slices(&[(0x3ff0, 0x20), (0x100000, 1)], Access::Write, &mut |s| {
            for s in s {
                s.copy_from(&vec![0x5au8; s.len()]);
            }
        })
        .unwrap();
        let maps = dev.take_device_dirty_bitmaps();
        assert_eq!((maps[0].1[0], maps[1].1[0]), (0b11 << 3, 1));
        assert!(dev.with_slices(&[(0x9f000, 0x2000)], Access::Read, &mut |_| panic!("must not run")).is_err());
        let mut b = [0u8; 2];
        dev.read(0x400f, &mut b).unwrap();
        assert_eq!(b, [0x5a, 0]);
    }
}
