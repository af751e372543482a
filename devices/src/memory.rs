//! Guest memory as a device sees it (for DMA).
//!
//! # Design
//!
//! One abstraction serves every DMA-capable device (IDE now; HDA, USB, QXL and virtio later) on
//! both backends: the small, object-safe [`GuestMemory`] trait below. Its one required method,
//! [`GuestMemory::with_slices`], hands out vm-memory [`VolatileSlice`]s over a scatter list of
//! guest ranges, so bulk I/O moves straight between a host file and guest RAM (`preadv`/`pwritev`
//! on the slices' host addresses) without a bounce buffer; [`GuestMemory::read`] and
//! [`GuestMemory::write`] are copies built on it for small structures (PRDs, descriptors).
//!
//! * **Lifetime of a mapping.** Slices exist only for the duration of the closure: the type
//!   system ties them to the call, so no slice outlives the mapping it points into. On Xen guest
//!   RAM is foreign-mapped in 1 MiB buckets that an LRU cache may evict (or an
//!   `IOREQ_TYPE_INVALIDATE` may drop) at any time; `with_slices` holds a reference count on every
//!   bucket it handed out until the closure returns, and a bucket is unmapped only when the last
//!   reference goes, so eviction during a DMA just delays the `munmap`.
//! * **No partial effects, no MMIO.** Every byte of every range is checked to be RAM before the
//!   closure runs; a hole, MMIO or an overflowing range fails the whole call with
//!   [`MemoryError`] and nothing is touched. A device can therefore never re-enter device code
//!   through DMA.
//! * **Dirty tracking.** With [`Access::Write`] the implementation marks every page of every range
//!   dirty after the closure returned, i.e. after the device's writes (which may have gone through
//!   raw host pointers that no bitmap sees). KVM (`devicemodel::guest_ram::DeviceRam`) marks the
//!   regions' vm-memory `AtomicBitmap`; Xen (`devicemodel::xen::memory::ForeignMemory`) queues the
//!   frames for `XEN_DMOP_modified_memory`; [`TestMemory`] keeps a page set tests can read.
//! * **vm-memory's `GuestMemory`.** virtio-queue 0.18 is generic over `vm_memory::GuestMemory`
//!   (the IOMMU-style trait, blanket-implemented for every `GuestMemoryBackend`), which is not
//!   object safe and hands out slices borrowed from the memory object itself. Each backend
//!   therefore exposes a concrete type for it next to this trait: KVM the `GuestMemoryMmap` with
//!   its `AtomicBitmap` (`DeviceRam::vm_memory`), tests [`TestMemory::vm_memory`]. For Xen's
//!   evicting cache that type must pin the buckets it hands out for as long as it is borrowed;
//!   it is not written yet (no Xen device needs it before virtio).
//!
//! Slices carry no dirty bitmap of their own (`VolatileSlice<'_, ()>`): one slice type for every
//! backend keeps the trait object safe, and the explicit marking above covers raw-pointer I/O.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Mutex;

pub use vm_memory::VolatileSlice;
use vm_memory::{GuestAddress, GuestMemoryBackend};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemoryError {
    /// Part of the range is not guest RAM (a hole, MMIO, or beyond the end of memory). DMA to or
    /// from MMIO is refused on purpose: a device must never re-enter device code through DMA.
    NotRam { gpa: u64, len: usize },
    /// `gpa + len` overflows.
    Overflow,
}

impl fmt::Display for MemoryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MemoryError::NotRam { gpa, len } => write!(f, "{len} bytes at {gpa:#x} are not guest RAM"),
            MemoryError::Overflow => write!(f, "guest address range overflows"),
        }
    }
}

impl std::error::Error for MemoryError {}

/// What a device does to the guest memory it is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// The device reads guest memory (e.g. a disk write gathers from it).
    Read,
    /// The device writes guest memory; the pages are marked dirty.
    Write,
}

pub const PAGE_SIZE: u64 = 4096;

/// Page frame numbers `gpa..gpa+len` touches (empty for `len == 0`). The caller checked that
/// the range does not overflow.
pub fn pages(gpa: u64, len: usize) -> std::ops::Range<u64> {
    if len == 0 {
        return 0..0;
    }
    gpa / PAGE_SIZE..(gpa + len as u64 - 1) / PAGE_SIZE + 1
}

pub trait GuestMemory: Send + Sync {
    /// Runs `f` once with host views of the guest ranges `(gpa, len)`, in order (a range that
    /// crosses a mapping boundary comes as several slices). Fails without running `f` if any byte
    /// is not RAM or a range overflows. The slices are valid only during the call. With
    /// [`Access::Write`] every page of every range is marked dirty after `f` returns.
    fn with_slices(
        &self,
        ranges: &[(u64, usize)],
        access: Access,
        f: &mut dyn FnMut(&[VolatileSlice<'_>]),
    ) -> Result<(), MemoryError>;

    /// Copies guest RAM at `gpa` into `buf`. Fails without partial effects visible to the caller
    /// if any byte is not RAM.
    fn read(&self, gpa: u64, buf: &mut [u8]) -> Result<(), MemoryError> {
        let mut at = 0;
        self.with_slices(&[(gpa, buf.len())], Access::Read, &mut |slices| {
            for s in slices {
                at += s.copy_to(&mut buf[at..]);
            }
        })
    }

    /// Copies `buf` into guest RAM at `gpa` and marks the touched pages dirty.
    fn write(&self, gpa: u64, buf: &[u8]) -> Result<(), MemoryError> {
        let mut at = 0;
        self.with_slices(&[(gpa, buf.len())], Access::Write, &mut |slices| {
            for s in slices {
                s.copy_from(&buf[at..]);
                at += s.len();
            }
        })
    }
}

/// A vm-memory slice of a backend region, with the region's bitmap.
pub type BackendSlice<'a, M> =
    VolatileSlice<'a, vm_memory::bitmap::BS<'a, <<M as GuestMemoryBackend>::R as vm_memory::GuestMemoryRegion>::B>>;

/// The slices of `ranges` in a vm-memory backend, or the first range that is not entirely RAM.
/// Shared by [`TestMemory`] and the KVM backend so both refuse exactly the same accesses.
pub fn backend_slices<'a, M: GuestMemoryBackend>(
    mem: &'a M,
    ranges: &[(u64, usize)],
) -> Result<Vec<BackendSlice<'a, M>>, MemoryError> {
    let mut out = Vec::with_capacity(ranges.len());
    for &(gpa, len) in ranges {
        gpa.checked_add(len as u64).ok_or(MemoryError::Overflow)?;
        for s in mem.get_slices(GuestAddress(gpa), len) {
            out.push(s.map_err(|_| MemoryError::NotRam { gpa, len })?);
        }
    }
    Ok(out)
}

/// A flat, zero-based guest memory for unit tests and fuzzers: `size` bytes of RAM starting at
/// guest address 0 (an anonymous vm-memory mapping), with a page-granular dirty log.
pub struct TestMemory {
    ram: vm_memory::GuestMemoryMmap<()>,
    dirty: Mutex<BTreeSet<u64>>,
}

impl TestMemory {
    pub fn new(size: usize) -> Self {
        let ram = vm_memory::GuestMemoryMmap::from_ranges(&[(GuestAddress(0), size)])
            .expect("anonymous test memory can be mapped");
        TestMemory { ram, dirty: Default::default() }
    }
    /// Page frame numbers written since the last call, and clears the log.
    pub fn take_dirty_pages(&self) -> Vec<u64> {
        std::mem::take(&mut *self.dirty.lock().unwrap_or_else(|e| e.into_inner())).into_iter().collect()
    }
    /// The same RAM as a `vm_memory::GuestMemory` (for virtio-queue). Writes through it are not
    /// in the dirty log.
    pub fn vm_memory(&self) -> &vm_memory::GuestMemoryMmap<()> {
        &self.ram
    }
}

impl GuestMemory for TestMemory {
    fn with_slices(
        &self,
        ranges: &[(u64, usize)],
        access: Access,
        f: &mut dyn FnMut(&[VolatileSlice<'_>]),
    ) -> Result<(), MemoryError> {
        let slices = backend_slices(&self.ram, ranges)?;
        f(&slices);
        if access == Access::Write {
            let mut dirty = self.dirty.lock().unwrap_or_else(|e| e.into_inner());
            for &(gpa, len) in ranges {
                dirty.extend(pages(gpa, len));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_mark_every_touched_page_dirty() {
        let m = TestMemory::new(4 * 4096);
        m.write(4090, &[1; 10]).unwrap();
        assert_eq!(m.take_dirty_pages(), vec![0, 1]);
        assert!(m.take_dirty_pages().is_empty());
    }

    #[test]
    fn access_outside_ram_is_refused() {
        let m = TestMemory::new(4096);
        let mut b = [0u8; 8];
        assert_eq!(m.read(4092, &mut b), Err(MemoryError::NotRam { gpa: 4092, len: 8 }));
        assert_eq!(m.write(u64::MAX - 2, &b), Err(MemoryError::Overflow));
        assert!(m.take_dirty_pages().is_empty());
    }

    #[test]
    fn a_scatter_list_is_all_or_nothing_and_dirties_only_for_writes() {
        let m = TestMemory::new(4 * 4096);
        let mut ran = false;
        let r = m.with_slices(&[(0, 16), (3 * 4096, 8192)], Access::Write, &mut |_| ran = true);
        assert_eq!(r, Err(MemoryError::NotRam { gpa: 3 * 4096, len: 8192 }));
        assert!(!ran, "nothing runs when one range is not RAM");
        m.with_slices(&[(0x1ff0, 0x20), (0x3000, 4)], Access::Write, &mut |s| {
            assert_eq!(s.iter().map(|s| s.len()).collect::<Vec<_>>(), vec![0x20, 4]);
            s[0].copy_from(&[7u8; 0x20]);
        })
        .unwrap();
        assert_eq!(m.take_dirty_pages(), vec![1, 2, 3]);
        let mut b = [0u8; 2];
        m.read(0x200f, &mut b).unwrap();
        assert_eq!(b, [7, 0]);
        m.with_slices(&[(0, 4096)], Access::Read, &mut |_| {}).unwrap();
        assert!(m.take_dirty_pages().is_empty());
    }
}
