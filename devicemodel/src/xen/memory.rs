//! Guest RAM on Xen: the guest's frames are mapped into this process on demand with
//! `IOCTL_PRIVCMD_MMAPBATCH_V2`, in 1 MiB buckets kept in a bounded LRU cache (the scheme of
//! QEMU's xen map cache), and dropped wholesale on an `IOREQ_TYPE_INVALIDATE` (the p2m changed,
//! e.g. ballooning). A bucket a device is still copying through stays alive until the copy ends
//! (it is reference counted), so invalidation never pulls memory from under a DMA.
//!
//! Frames that fail to map (holes, MMIO, paged out) are refused: a DMA touching one fails as a
//! whole, with no partial effect. Every write records its page frames; while dirty logging is on
//! (live migration) they are reported to Xen with `XEN_DMOP_modified_memory`, coalesced into
//! extents, when the batch grows large and whenever the owner calls [`ForeignMemory::flush_dirty`]
//! (the ioreq loop does after every request, xen-interface.md section 10).
//!
//! Zero-copy DMA ([`GuestMemory::with_slices`], design in `devices::memory`): the slices point
//! straight into the buckets' mappings, and the call holds a reference on every bucket it handed
//! out until the device's closure returns. Eviction or invalidation during that time only drops
//! the cache's reference; the `munmap` happens when the DMA's reference goes, so no slice ever
//! points at unmapped memory. (After an invalidation such a DMA may still reach the frame the
//! guest had before the p2m change: the same window qemu-xen's map cache has for a DMA in
//! flight.) A backing that cannot expose its memory (the unit tests' fake) is served through a
//! bounce buffer instead. Write accesses are recorded after the closure returns, and reported
//! at once while dirty logging is on, because a DMA completing on an I/O thread is not followed
//! by an ioreq that would flush it.

use std::collections::{BTreeSet, HashMap};
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use devices::memory::{Access, GuestMemory, MemoryError, VolatileSlice};

use super::dmop::DeviceModelOps;
use super::privcmd::{MappedPages, Privcmd, XEN_PAGE_SIZE};

pub const PAGE_SHIFT: u32 = 12;
/// 1 MiB buckets: 256 frames per mapping call.
pub const BUCKET_SHIFT: u32 = 20;
const BUCKET_PAGES: usize = 1 << (BUCKET_SHIFT - PAGE_SHIFT);
/// Default bound on live buckets: 1 GiB of address space.
pub const DEFAULT_MAX_BUCKETS: usize = 1024;
/// Guest-physical addresses are below 2^52 on x86-64 (MAXPHYADDR); anything above is never RAM
/// and must not turn into mapping hypercalls.
const GPA_LIMIT: u64 = 1 << 52;
/// Report dirty pages as soon as this many are pending.
const DIRTY_BATCH: usize = 4096;

/// Byte access to a run of mapped frames.
pub trait PageBacking: Send + Sync {
    fn read(&self, offset: usize, buf: &mut [u8]) -> io::Result<()>;
    fn write(&self, offset: usize, buf: &[u8]) -> io::Result<()>;
    /// `len` bytes at `offset` as host memory, if the backing is host memory.
    fn slice(&self, _offset: usize, _len: usize) -> Option<VolatileSlice<'_>> {
        None
    }
}

impl PageBacking for MappedPages {
    fn read(&self, offset: usize, buf: &mut [u8]) -> io::Result<()> {
        MappedPages::read(self, offset, buf)
    }
    fn write(&self, offset: usize, buf: &[u8]) -> io::Result<()> {
        MappedPages::write(self, offset, buf)
    }
    fn slice(&self, offset: usize, len: usize) -> Option<VolatileSlice<'_>> {
        self.volatile_slice(offset, len).ok()
    }
}

/// Maps guest frames contiguously; returns the mapping and one status per frame (0 = mapped).
pub trait ForeignMapper: Send + Sync {
    fn map(&self, gfns: &[u64]) -> io::Result<(Box<dyn PageBacking>, Vec<i32>)>;
}

/// The production mapper.
pub struct PrivcmdMapper {
    privcmd: Arc<Privcmd>,
    domid: u16,
}

impl PrivcmdMapper {
    pub fn new(privcmd: Arc<Privcmd>, domid: u16) -> Self {
        PrivcmdMapper { privcmd, domid }
    }
}

impl ForeignMapper for PrivcmdMapper {
    fn map(&self, gfns: &[u64]) -> io::Result<(Box<dyn PageBacking>, Vec<i32>)> {
        let (pages, errs) = self.privcmd.mmap_foreign_batch(self.domid, gfns)?;
        Ok((Box::new(pages), errs))
    }
}

/// Where dirty page extents `(first_pfn, nr)` go.
pub trait DirtyReporter: Send + Sync {
    fn report(&self, extents: &[(u64, u32)]) -> Result<(), String>;
}

impl DirtyReporter for DeviceModelOps {
    fn report(&self, extents: &[(u64, u32)]) -> Result<(), String> {
        self.modified_memory(extents).map_err(|e| e.to_string())
    }
}

struct Bucket {
    pages: Box<dyn PageBacking>,
    mapped: Vec<bool>,
}

#[derive(Default)]
struct Cache {
    buckets: HashMap<u64, (Arc<Bucket>, u64)>,
    tick: u64,
}

/// Foreign-mapped guest RAM of one domain.
pub struct ForeignMemory {
    mapper: Box<dyn ForeignMapper>,
    reporter: Box<dyn DirtyReporter>,
    max_buckets: usize,
    cache: Mutex<Cache>,
    dirty_logging: AtomicBool,
    dirty: Mutex<BTreeSet<u64>>,
}

/// One piece of an access: a bucket and the byte ranges in it and in the caller's buffer.
struct Piece {
    bucket: Arc<Bucket>,
    offset: usize,
    buf_start: usize,
    len: usize,
}

impl ForeignMemory {
    pub fn new(mapper: Box<dyn ForeignMapper>, reporter: Box<dyn DirtyReporter>, max_buckets: usize) -> Self {
        ForeignMemory {
            mapper,
            reporter,
            max_buckets: max_buckets.max(1),
            cache: Mutex::new(Cache::default()),
            dirty_logging: AtomicBool::new(false),
            dirty: Mutex::new(BTreeSet::new()),
        }
    }

    /// Drops every cached mapping (`IOREQ_TYPE_INVALIDATE`). Copies in progress keep their bucket.
    pub fn invalidate(&self) {
        self.cache.lock().unwrap().buckets.clear();
    }

    /// Number of buckets currently cached.
    pub fn cached_buckets(&self) -> usize {
        self.cache.lock().unwrap().buckets.len()
    }

    /// Starts or stops reporting writes to Xen (`xen-set-global-dirty-log`). Stopping reports
    /// what is still pending first, so the last migration round sees it.
    pub fn set_dirty_logging(&self, on: bool) {
        if !on {
            self.flush_dirty();
        }
        self.dirty_logging.store(on, Ordering::SeqCst);
        if on {
            self.dirty.lock().unwrap().clear();
        }
    }

    pub fn dirty_logging(&self) -> bool {
        self.dirty_logging.load(Ordering::SeqCst)
    }

    /// Reports pending dirty pages as coalesced extents.
    pub fn flush_dirty(&self) {
        let pfns = std::mem::take(&mut *self.dirty.lock().unwrap());
        if pfns.is_empty() {
            return;
        }
        let mut extents: Vec<(u64, u32)> = Vec::new();
        for pfn in pfns.iter().copied() {
            match extents.last_mut() {
                Some((first, nr)) if *first + *nr as u64 == pfn && *nr < u32::MAX => *nr += 1,
                _ => extents.push((pfn, 1)),
            }
        }
        if let Err(e) = self.reporter.report(&extents) {
            // Keep them: a later flush retries. Losing one corrupts the migrated guest.
            log::error!("reporting {} dirty pages: {e}", pfns.len());
            self.dirty.lock().unwrap().extend(pfns);
        }
    }

    fn bucket(&self, index: u64) -> Option<Arc<Bucket>> {
        {
            let mut cache = self.cache.lock().unwrap();
            cache.tick += 1;
            let tick = cache.tick;
            if let Some((b, used)) = cache.buckets.get_mut(&index) {
                *used = tick;
                return Some(b.clone());
            }
        }
        // Map outside the lock (a hypercall); a racing thread may map the same bucket, in which
        // case the later insert wins and the other mapping is dropped when unused.
        let first = index << (BUCKET_SHIFT - PAGE_SHIFT);
        let gfns: Vec<u64> = (first..first + BUCKET_PAGES as u64).collect();
        let (pages, errs) = match self.mapper.map(&gfns) {
            Ok(m) => m,
            Err(e) => {
                devices::guest_warn!("mapping guest frames {first:#x}+{BUCKET_PAGES:#x}: {e}");
                return None;
            }
        };
        let mapped = (0..BUCKET_PAGES).map(|i| errs.get(i) == Some(&0)).collect();
        let bucket = Arc::new(Bucket { pages, mapped });
        let mut cache = self.cache.lock().unwrap();
        if cache.buckets.len() >= self.max_buckets {
            if let Some(&victim) = cache.buckets.iter().min_by_key(|(_, (_, used))| *used).map(|(k, _)| k) {
                cache.buckets.remove(&victim);
            }
        }
        let tick = cache.tick;
        cache.buckets.insert(index, (bucket.clone(), tick));
        Some(bucket)
    }

    /// Maps and checks every frame of `gpa..gpa+len` before anything is copied.
    fn pieces(&self, gpa: u64, len: usize) -> Result<Vec<Piece>, MemoryError> {
        let end = gpa.checked_add(len as u64).ok_or(MemoryError::Overflow)?;
        if end > GPA_LIMIT {
            return Err(MemoryError::NotRam { gpa, len });
        }
        let mut out = Vec::new();
        let mut at = gpa;
        while at < end {
            let index = at >> BUCKET_SHIFT;
            let offset = (at & ((1 << BUCKET_SHIFT) - 1)) as usize;
            let piece_len = ((1usize << BUCKET_SHIFT) - offset).min((end - at) as usize);
            let bucket = self.bucket(index).ok_or(MemoryError::NotRam { gpa, len })?;
            let first_page = offset / XEN_PAGE_SIZE;
            let last_page = (offset + piece_len - 1) / XEN_PAGE_SIZE;
            if !bucket.mapped[first_page..=last_page].iter().all(|&m| m) {
                return Err(MemoryError::NotRam { gpa, len });
            }
            out.push(Piece { bucket, offset, buf_start: (at - gpa) as usize, len: piece_len });
            at += piece_len as u64;
        }
        Ok(out)
    }
}

impl ForeignMemory {
    /// Records a device write to `gpa..gpa+len` (already checked) while dirty logging is on.
    fn record_write(&self, gpa: u64, len: usize) {
        if len == 0 || !self.dirty_logging.load(Ordering::SeqCst) {
            return;
        }
        let full = {
            let mut dirty = self.dirty.lock().unwrap();
            dirty.extend(gpa >> PAGE_SHIFT..=(gpa + len as u64 - 1) >> PAGE_SHIFT);
            dirty.len() >= DIRTY_BATCH
        };
        if full {
            self.flush_dirty();
        }
    }
}

impl GuestMemory for ForeignMemory {
    fn with_slices(
        &self,
        ranges: &[(u64, usize)],
        access: Access,
        f: &mut dyn FnMut(&[VolatileSlice<'_>]),
    ) -> Result<(), MemoryError> {
        // Map and check everything first: no partial effects. `pieces` holds the buckets.
        let mut pieces = Vec::with_capacity(ranges.len());
        for &(gpa, len) in ranges {
            pieces.push(self.pieces(gpa, len)?);
        }
        let direct: Option<Vec<VolatileSlice<'_>>> =
            pieces.iter().flatten().map(|p| p.bucket.pages.slice(p.offset, p.len)).collect();
        match direct {
            Some(slices) => f(&slices),
            None => {
                // Bounce: copy in, let the device work on the copy, copy back for writes.
                let mut bufs: Vec<Vec<u8>> = Vec::new();
                for (&(gpa, len), range) in ranges.iter().zip(&pieces) {
                    for p in range {
                        let mut b = vec![0u8; p.len];
                        p.bucket.pages.read(p.offset, &mut b).map_err(|_| MemoryError::NotRam { gpa, len })?;
                        bufs.push(b);
                    }
                }
                {
                    let slices: Vec<VolatileSlice<'_>> =
                        bufs.iter_mut().map(|b| VolatileSlice::from(&mut b[..])).collect();
                    f(&slices);
                }
                if access == Access::Write {
                    let mut b = bufs.iter();
                    for (&(gpa, len), range) in ranges.iter().zip(&pieces) {
                        for (p, b) in range.iter().zip(&mut b) {
                            p.bucket.pages.write(p.offset, b).map_err(|_| MemoryError::NotRam { gpa, len })?;
                        }
                    }
                }
            }
        }
        if access == Access::Write {
            for &(gpa, len) in ranges {
                self.record_write(gpa, len);
            }
            if self.dirty_logging.load(Ordering::SeqCst) {
                self.flush_dirty();
            }
        }
        Ok(())
    }

    fn read(&self, gpa: u64, buf: &mut [u8]) -> Result<(), MemoryError> {
        for p in self.pieces(gpa, buf.len())? {
            p.bucket
                .pages
                .read(p.offset, &mut buf[p.buf_start..p.buf_start + p.len])
                .map_err(|_| MemoryError::NotRam { gpa, len: buf.len() })?;
        }
        Ok(())
    }

    fn write(&self, gpa: u64, buf: &[u8]) -> Result<(), MemoryError> {
        if buf.is_empty() {
            return Ok(());
        }
        for p in self.pieces(gpa, buf.len())? {
            p.bucket
                .pages
                .write(p.offset, &buf[p.buf_start..p.buf_start + p.len])
                .map_err(|_| MemoryError::NotRam { gpa, len: buf.len() })?;
        }
        self.record_write(gpa, buf.len());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xen::dmop::testing::RecordingTransport;
    use crate::xen::dmop::XEN_DMOP_MODIFIED_MEMORY;
    use std::sync::atomic::AtomicUsize;

    /// A guest whose RAM is a plain buffer: frame `gfn` is bytes `gfn*4096..`. Frames in `holes`
    /// (and beyond the end) fail to map, as unpopulated frames do.
    struct FakeGuest {
        ram: Arc<Mutex<Vec<u8>>>,
        holes: Vec<u64>,
        map_calls: AtomicUsize,
        live: Arc<AtomicUsize>,
    }

    struct FakeMapping {
        ram: Arc<Mutex<Vec<u8>>>,
        gfns: Vec<u64>,
        live: Arc<AtomicUsize>,
    }

    impl Drop for FakeMapping {
        fn drop(&mut self) {
            self.live.fetch_sub(1, Ordering::SeqCst);
        }
    }

    impl FakeMapping {
        fn locate(&self, offset: usize, len: usize) -> io::Result<usize> {
            let page = offset / XEN_PAGE_SIZE;
            assert_eq!(page, (offset + len - 1) / XEN_PAGE_SIZE, "test accesses stay in a page per call");
            Ok(self.gfns[page] as usize * XEN_PAGE_SIZE + offset % XEN_PAGE_SIZE)
        }
    }

    impl PageBacking for FakeMapping {
        fn read(&self, offset: usize, buf: &mut [u8]) -> io::Result<()> {
            for (i, chunk) in buf.chunks_mut(1).enumerate() {
                let at = self.locate(offset + i, 1)?;
                chunk[0] = self.ram.lock().unwrap()[at];
            }
            Ok(())
        }
        fn write(&self, offset: usize, buf: &[u8]) -> io::Result<()> {
            for (i, b) in buf.iter().enumerate() {
                let at = self.locate(offset + i, 1)?;
                self.ram.lock().unwrap()[at] = *b;
            }
            Ok(())
        }
    }

    impl ForeignMapper for Arc<FakeGuest> {
        fn map(&self, gfns: &[u64]) -> io::Result<(Box<dyn PageBacking>, Vec<i32>)> {
            self.map_calls.fetch_add(1, Ordering::SeqCst);
            self.live.fetch_add(1, Ordering::SeqCst);
            let frames = (self.ram.lock().unwrap().len() / XEN_PAGE_SIZE) as u64;
            let errs =
                gfns.iter().map(|g| if *g >= frames || self.holes.contains(g) { -libc::EFAULT } else { 0 }).collect();
            let gfns = gfns.iter().map(|&g| if g < frames { g } else { 0 }).collect();
            Ok((Box::new(FakeMapping { ram: self.ram.clone(), gfns, live: self.live.clone() }), errs))
        }
    }

    fn guest(mib: usize, holes: Vec<u64>) -> Arc<FakeGuest> {
        Arc::new(FakeGuest {
            ram: Arc::new(Mutex::new(vec![0; mib << 20])),
            holes,
            map_calls: AtomicUsize::new(0),
            live: Arc::new(AtomicUsize::new(0)),
        })
    }

    fn memory(g: &Arc<FakeGuest>, max_buckets: usize) -> (ForeignMemory, Arc<RecordingTransport>) {
        let t = RecordingTransport::new();
        (ForeignMemory::new(Box::new(g.clone()), Box::new(DeviceModelOps::new(t.clone(), 9)), max_buckets), t)
    }

    #[test]
    fn reads_and_writes_cross_bucket_boundaries() {
        let g = guest(4, vec![]);
        let (m, _) = memory(&g, 8);
        let data: Vec<u8> = (0..200u8).collect();
        m.write((1 << 20) - 100, &data).unwrap();
        assert_eq!(g.ram.lock().unwrap()[(1 << 20) - 100..(1 << 20) + 100], data[..]);
        let mut back = vec![0u8; 200];
        m.read((1 << 20) - 100, &mut back).unwrap();
        assert_eq!(back, data);
        assert_eq!(g.map_calls.load(Ordering::SeqCst), 2, "two buckets, each mapped once");
    }

    #[test]
    fn frames_that_fail_to_map_are_refused_without_partial_writes() {
        let g = guest(2, vec![5]);
        let (m, _) = memory(&g, 8);
        // Pages 4 (ok) and 5 (hole).
        assert_eq!(m.write(0x4ff0, &[0xaa; 0x20]), Err(MemoryError::NotRam { gpa: 0x4ff0, len: 0x20 }));
        assert!(g.ram.lock().unwrap()[0x4ff0..0x5000].iter().all(|&b| b == 0), "nothing written before the hole");
        let mut b = [0u8; 4];
        assert!(m.read(0x5000, &mut b).is_err());
        assert!(m.read(2 << 20, &mut b).is_err(), "beyond the end of RAM");
        assert_eq!(m.read(u64::MAX - 1, &mut b), Err(MemoryError::Overflow));
        let calls = g.map_calls.load(Ordering::SeqCst);
        assert!(m.read(1 << 60, &mut b).is_err());
        assert_eq!(g.map_calls.load(Ordering::SeqCst), calls, "impossible addresses never reach the hypervisor");
        m.read(0x4ff0, &mut [0u8; 16]).unwrap();
    }

    #[test]
    fn the_cache_is_bounded_and_evicts_the_least_recently_used() {
        let g = guest(8, vec![]);
        let (m, _) = memory(&g, 3);
        let mut b = [0u8; 1];
        for mib in [0u64, 1, 2, 0, 3] {
            m.read(mib << 20, &mut b).unwrap();
        }
        assert_eq!(m.cached_buckets(), 3);
        assert_eq!(g.live.load(Ordering::SeqCst), 3, "evicted mappings are unmapped");
        let calls = g.map_calls.load(Ordering::SeqCst);
        m.read(0, &mut b).unwrap(); // bucket 0 was used recently: still cached
        assert_eq!(g.map_calls.load(Ordering::SeqCst), calls);
        m.read(1 << 20, &mut b).unwrap(); // bucket 1 was evicted
        assert_eq!(g.map_calls.load(Ordering::SeqCst), calls + 1);
    }

    #[test]
    fn invalidate_drops_every_mapping() {
        let g = guest(2, vec![]);
        let (m, _) = memory(&g, 8);
        m.write(0x100, &[1]).unwrap();
        m.write(0x10_0100, &[1]).unwrap();
        assert_eq!(g.live.load(Ordering::SeqCst), 2);
        m.invalidate();
        assert_eq!(g.live.load(Ordering::SeqCst), 0);
        m.write(0x100, &[2]).unwrap();
        assert_eq!(g.map_calls.load(Ordering::SeqCst), 3, "remapped after invalidation");
    }

    #[test]
    fn writes_are_reported_as_extents_only_while_logging() {
        let g = guest(2, vec![]);
        let (m, t) = memory(&g, 8);
        m.write(0x1000, &[1; 8]).unwrap();
        m.flush_dirty();
        assert!(t.take().is_empty(), "no reports without dirty logging");
        m.set_dirty_logging(true);
        m.write(0x1ff8, &[1; 16]).unwrap(); // pages 1 and 2
        m.write(0x3000, &[1]).unwrap(); // page 3 joins the run
        m.write(0x9000, &[1]).unwrap(); // page 9 alone
        let mut b = [0u8; 4];
        m.read(0x20000, &mut b).unwrap(); // reads dirty nothing
        m.flush_dirty();
        let c = t.take();
        assert_eq!(c.len(), 1);
        assert_eq!((c[0].op(), c[0].field(0, 4)), (XEN_DMOP_MODIFIED_MEMORY, 2));
        let ext = |i: usize| {
            let e = &c[0].bufs[1][i * 16..(i + 1) * 16];
            (u64::from_le_bytes(e[8..16].try_into().unwrap()), u32::from_le_bytes(e[0..4].try_into().unwrap()))
        };
        assert_eq!((ext(0), ext(1)), ((1, 3), (9, 1)));
        // Stopping reports what is pending.
        m.write(0x5000, &[1]).unwrap();
        m.set_dirty_logging(false);
        assert_eq!(t.take().len(), 1);
        m.write(0x6000, &[1]).unwrap();
        m.flush_dirty();
        assert!(t.take().is_empty());
    }

    #[test]
    fn slices_keep_their_buckets_mapped_through_eviction_and_writes_are_reported() {
        let g = guest(4, vec![]);
        let (m, t) = memory(&g, 1);
        m.set_dirty_logging(true);
        // Two ranges in two buckets with a cache of one: the first bucket is evicted while the
        // second is mapped, yet both stay mapped until the closure returns.
        m.with_slices(&[(0x1ff0, 0x20), ((2 << 20) + 0x10, 4)], Access::Write, &mut |s| {
            assert_eq!(g.live.load(Ordering::SeqCst), 2, "both mappings alive during the DMA");
            assert_eq!(s.iter().map(|s| s.len()).sum::<usize>(), 0x24);
            s[0].copy_from(&[0xccu8; 0x20]);
            s[1].copy_from(&[0xddu8; 4]);
        })
        .unwrap();
        assert_eq!(g.live.load(Ordering::SeqCst), 1, "the evicted one is unmapped afterwards");
        assert_eq!(g.ram.lock().unwrap()[0x1ff0..0x2010], [0xcc; 0x20]);
        assert_eq!(g.ram.lock().unwrap()[(2 << 20) + 0x10..(2 << 20) + 0x14], [0xdd; 4]);
        let c = t.take();
        assert_eq!(c.len(), 1, "reported at once, without waiting for an ioreq");
        assert_eq!(c[0].field(0, 4), 2, "pages 1-2 and page 0x200 as two extents");
        // A range that is not RAM runs nothing.
        assert!(m.with_slices(&[(0, 4), (4 << 20, 4)], Access::Write, &mut |_| panic!("must not run")).is_err());
    }

    #[test]
    fn a_failed_report_is_retried() {
        let g = guest(1, vec![]);
        let (m, t) = memory(&g, 8);
        m.set_dirty_logging(true);
        m.write(0x7000, &[1]).unwrap();
        t.respond(|_| Err(io::Error::from_raw_os_error(libc::EAGAIN)));
        m.flush_dirty();
        t.respond(|_| Ok(()));
        m.flush_dirty();
        let c = t.take();
        assert_eq!(c.len(), 2);
        assert_eq!(c[1].bufs[1][8..16], 7u64.to_le_bytes());
    }
}
