//! Guest memory as a device sees it (for DMA). Every write a device makes goes through
//! [`GuestMemory::write`], which records the pages it touched so live migration can resend them
//! (KVM: vm-memory `AtomicBitmap`; Xen: `XEN_DMOP_modified_memory`).

use std::fmt;

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

pub trait GuestMemory: Send + Sync {
    /// Copies guest RAM at `gpa` into `buf`. Fails without partial effects visible to the caller
    /// if any byte is not RAM.
    fn read(&self, gpa: u64, buf: &mut [u8]) -> Result<(), MemoryError>;
    /// Copies `buf` into guest RAM at `gpa` and marks the touched pages dirty.
    fn write(&self, gpa: u64, buf: &[u8]) -> Result<(), MemoryError>;
}

/// A flat, zero-based guest memory for unit tests and fuzzers: `size` bytes of RAM starting at
/// guest address 0, with a page-granular dirty log.
pub struct TestMemory {
    bytes: std::sync::Mutex<Vec<u8>>,
    dirty: std::sync::Mutex<std::collections::BTreeSet<u64>>,
}

pub const PAGE_SIZE: u64 = 4096;

impl TestMemory {
    pub fn new(size: usize) -> Self {
        TestMemory { bytes: std::sync::Mutex::new(vec![0; size]), dirty: Default::default() }
    }
    /// Page frame numbers written since the last call, and clears the log.
    pub fn take_dirty_pages(&self) -> Vec<u64> {
        std::mem::take(&mut *self.dirty.lock().unwrap()).into_iter().collect()
    }
    fn check(&self, gpa: u64, len: usize, size: usize) -> Result<usize, MemoryError> {
        let end = gpa.checked_add(len as u64).ok_or(MemoryError::Overflow)?;
        if end > size as u64 {
            return Err(MemoryError::NotRam { gpa, len });
        }
        Ok(gpa as usize)
    }
}

impl GuestMemory for TestMemory {
    fn read(&self, gpa: u64, buf: &mut [u8]) -> Result<(), MemoryError> {
        let bytes = self.bytes.lock().unwrap();
        let start = self.check(gpa, buf.len(), bytes.len())?;
        buf.copy_from_slice(&bytes[start..start + buf.len()]);
        Ok(())
    }
    fn write(&self, gpa: u64, buf: &[u8]) -> Result<(), MemoryError> {
        let mut bytes = self.bytes.lock().unwrap();
        let start = self.check(gpa, buf.len(), bytes.len())?;
        bytes[start..start + buf.len()].copy_from_slice(buf);
        if !buf.is_empty() {
            let mut dirty = self.dirty.lock().unwrap();
            for pfn in gpa / PAGE_SIZE..=(gpa + buf.len() as u64 - 1) / PAGE_SIZE {
                dirty.insert(pfn);
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
}
