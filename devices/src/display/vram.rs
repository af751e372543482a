//! Video memory shared between a display device and the guest.
//!
//! VRAM is host memory. The guest reaches it through the device's BAR0 (a linear framebuffer):
//! on KVM the backend maps it as a memory slot with dirty logging, on Xen it is guest RAM that the
//! backend relocates into BAR0 and tracks with `track_dirty_vram`. Until (and unless) the backend
//! maps it, BAR0 accesses reach the device, which serves them from the same memory. Because the
//! guest may write it at any moment, device code only touches it through volatile accesses
//! (vm-memory's `VolatileSlice`), and treats what it reads as hostile (a byte can change between
//! two reads).

use std::sync::Arc;

use vm_memory::bitmap::BS;
use vm_memory::mmap::MmapRegion;
use vm_memory::{Bytes, VolatileMemory, VolatileSlice};

/// Page size of the dirty bitmaps.
pub const PAGE: usize = 4096;

#[derive(Debug, thiserror::Error)]
pub enum VramError {
    #[error("cannot allocate {size} bytes of video memory: {why}")]
    Allocate { size: usize, why: String },
    #[error("video memory of {0} bytes is not a non-zero multiple of 4 KiB")]
    BadSize(usize),
}

/// A device's video memory. Cloning shares the memory.
#[derive(Clone)]
pub struct Vram {
    region: Arc<MmapRegion<()>>,
}

impl std::fmt::Debug for Vram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Vram({} KiB)", self.len() / 1024)
    }
}

impl Vram {
    /// Anonymous zeroed memory (KVM, tests, and the host-only service).
    pub fn anonymous(size: usize) -> Result<Self, VramError> {
        if size == 0 || !size.is_multiple_of(PAGE) {
            return Err(VramError::BadSize(size));
        }
        let region = MmapRegion::new(size).map_err(|e| VramError::Allocate { size, why: e.to_string() })?;
        Ok(Vram { region: Arc::new(region) })
    }

    /// Memory the backend mapped itself (Xen: foreign-mapped guest pages).
    pub fn from_region(region: Arc<MmapRegion<()>>) -> Result<Self, VramError> {
        let size = region.size();
        if size == 0 || !size.is_multiple_of(PAGE) {
            return Err(VramError::BadSize(size));
        }
        Ok(Vram { region })
    }

    pub fn len(&self) -> usize {
        self.region.size()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The region, for backends that map it into the guest (its host address).
    pub fn region(&self) -> &Arc<MmapRegion<()>> {
        &self.region
    }

    /// Whether `other` is the same memory.
    pub fn same(&self, other: &Vram) -> bool {
        Arc::ptr_eq(&self.region, &other.region)
    }

    /// `len` bytes at `offset`, or `None` when that runs past the end.
    pub fn slice(&self, offset: usize, len: usize) -> Option<VolatileSlice<'_, BS<'_, ()>>> {
        self.region.get_slice(offset, len).ok()
    }

    /// Copies VRAM at `offset` into `buf`; false (and `buf` untouched) when out of range.
    pub fn read(&self, offset: usize, buf: &mut [u8]) -> bool {
        match self.slice(offset, buf.len()) {
            Some(s) => {
                s.copy_to(buf);
                true
            }
            None => false,
        }
    }

    /// Copies `data` into VRAM at `offset`; false (nothing written) when out of range.
    pub fn write(&self, offset: usize, data: &[u8]) -> bool {
        match self.slice(offset, data.len()) {
            Some(s) => {
                s.copy_from(data);
                true
            }
            None => false,
        }
    }

    /// The byte at `offset` (0xff past the end, as an open bus reads).
    pub fn read_u8(&self, offset: usize) -> u8 {
        self.slice(offset, 1).map_or(0xff, |s| s.read_obj::<u8>(0).unwrap_or(0xff))
    }

    pub fn write_u8(&self, offset: usize, value: u8) {
        if let Some(s) = self.slice(offset, 1) {
            let _ = s.write_obj(value, 0);
        }
    }

    /// Zeroes all of it.
    pub fn clear(&self) {
        if let Some(s) = self.slice(0, self.len()) {
            let zero = [0u8; PAGE];
            for page in 0..self.len() / PAGE {
                let _ = s.write_slice(&zero, page * PAGE);
            }
        }
    }
}

/// What the backend does with video memory.
pub trait VramService: Send + Sync {
    /// Allocates `size` bytes (a multiple of 4 KiB) of zeroed video memory for one device.
    /// On Xen this populates guest pages, within the videoram budget libxl accounted for.
    fn allocate(&self, size: usize) -> Result<Vram, VramError>;

    /// Makes `vram` visible to the guest at guest-physical `gpa` (BAR0 programmed with Memory
    /// Space on), or hides it again (`None`). Only the first `len` bytes are mapped (a BAR may
    /// be smaller than the memory behind it, or larger: then only the memory is mapped).
    /// Returns whether the guest now reaches the memory without the device seeing the accesses.
    fn map(&self, vram: &Vram, gpa: Option<u64>) -> bool;

    /// ORs into `dirty` (one bit per 4 KiB page of `vram`, bit `i % 64` of word `i / 64`) the
    /// pages the guest wrote directly since the previous call. Returns false when the backend
    /// cannot tell; the caller then treats every page as dirty.
    fn sync_dirty(&self, vram: &Vram, dirty: &mut [u64]) -> bool;

    /// Whether video memory is guest memory that the hypervisor saves with the domain (Xen:
    /// VRAM is populated guest RAM), so device state must not carry a second copy of it.
    fn vram_is_guest_memory(&self) -> bool {
        false
    }
}

/// Video memory the guest never maps directly: every BAR0 access reaches the device, which
/// tracks its own writes. For tests, fuzzers and backends without direct mapping.
#[derive(Default)]
pub struct HostVram;

impl VramService for HostVram {
    fn allocate(&self, size: usize) -> Result<Vram, VramError> {
        Vram::anonymous(size)
    }

    fn map(&self, _vram: &Vram, _gpa: Option<u64>) -> bool {
        false
    }

    fn sync_dirty(&self, _vram: &Vram, _dirty: &mut [u64]) -> bool {
        // Nothing reaches this memory behind the device's back.
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accesses_past_the_end_are_refused_without_side_effects() {
        let v = Vram::anonymous(2 * PAGE).unwrap();
        assert!(v.write(PAGE * 2 - 2, &[1, 2]));
        assert!(!v.write(PAGE * 2 - 1, &[1, 2]));
        let mut b = [7u8; 4];
        assert!(!v.read(usize::MAX - 1, &mut b));
        assert_eq!(b, [7; 4]);
        assert_eq!(v.read_u8(PAGE * 2 - 1), 2);
        assert_eq!(v.read_u8(PAGE * 2), 0xff);
        v.clear();
        assert_eq!(v.read_u8(PAGE * 2 - 1), 0);
        assert!(Vram::anonymous(100).is_err());
    }

    #[test]
    fn clones_share_the_memory() {
        let a = Vram::anonymous(PAGE).unwrap();
        let b = a.clone();
        a.write_u8(5, 9);
        assert_eq!(b.read_u8(5), 9);
        assert!(a.same(&b));
    }
}
