//! The machine's block layer: opening the images the command line names, per-drive I/O
//! statistics for QMP `query-blockstats` (what xentop shows), the `preadv`/`pwritev` path that
//! moves DMA data straight between an image and guest memory ([`DirectFile`]), and the I/O
//! threads IDE transfers complete on ([`IoThread`]).

use std::io;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};

use devices::memory::VolatileSlice;
use devices::storage::block::{check_range, slices_len, BlockBackend, RawFile};
use devices::storage::worker::{IoWorker, Job};

use crate::cli::IdeAttachment;

/// Counters of one drive position; they survive media changes, as a QEMU BlockBackend's do.
#[derive(Debug, Default)]
pub struct DriveStats {
    pub rd_bytes: AtomicU64,
    pub wr_bytes: AtomicU64,
    pub rd_operations: AtomicU64,
    pub wr_operations: AtomicU64,
    pub flush_operations: AtomicU64,
}

/// A backend that counts what goes through it into a drive's [`DriveStats`].
pub struct CountingBackend {
    inner: Arc<dyn BlockBackend>,
    stats: Arc<DriveStats>,
}

impl CountingBackend {
    pub fn wrap(inner: Arc<dyn BlockBackend>, stats: Arc<DriveStats>) -> Arc<dyn BlockBackend> {
        Arc::new(CountingBackend { inner, stats })
    }
}

impl BlockBackend for CountingBackend {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.inner.read_at(offset, buf)?;
        self.stats.rd_bytes.fetch_add(buf.len() as u64, Ordering::Relaxed);
        self.stats.rd_operations.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
    fn write_at(&self, offset: u64, buf: &[u8]) -> io::Result<()> {
        self.inner.write_at(offset, buf)?;
        self.stats.wr_bytes.fetch_add(buf.len() as u64, Ordering::Relaxed);
        self.stats.wr_operations.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
    fn read_to_slices(&self, offset: u64, slices: &[VolatileSlice<'_>]) -> io::Result<()> {
        self.inner.read_to_slices(offset, slices)?;
        self.stats.rd_bytes.fetch_add(slices_len(slices) as u64, Ordering::Relaxed);
        self.stats.rd_operations.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
    fn write_from_slices(&self, offset: u64, slices: &[VolatileSlice<'_>]) -> io::Result<()> {
        self.inner.write_from_slices(offset, slices)?;
        self.stats.wr_bytes.fetch_add(slices_len(slices) as u64, Ordering::Relaxed);
        self.stats.wr_operations.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
    fn flush(&self) -> io::Result<()> {
        self.inner.flush()?;
        self.stats.flush_operations.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
    fn len(&self) -> u64 {
        self.inner.len()
    }
    fn read_only(&self) -> bool {
        self.inner.read_only()
    }
    fn filename(&self) -> String {
        self.inner.filename()
    }
    fn format(&self) -> &'static str {
        self.inner.format()
    }
}

/// A raw image whose DMA goes straight between the file and guest memory: one `preadv` or
/// `pwritev` per scatter list (up to `IOV_MAX` slices per call), as QEMU's raw driver does.
pub struct DirectFile(pub RawFile);

/// Most iovecs one `preadv`/`pwritev` takes (Linux `UIO_MAXIOV`).
const IOV_MAX: usize = 1024;

impl DirectFile {
    fn vectored(&self, offset: u64, slices: &[VolatileSlice<'_>], write: bool) -> io::Result<()> {
        if write && self.0.read_only() {
            return Err(io::Error::new(io::ErrorKind::PermissionDenied, "image is read-only"));
        }
        check_range(offset, slices_len(slices), self.0.len())?;
        let guards: Vec<_> = slices.iter().filter(|s| !s.is_empty()).map(|s| s.ptr_guard_mut()).collect();
        let mut iovs: Vec<libc::iovec> =
            guards.iter().map(|g| libc::iovec { iov_base: g.as_ptr().cast(), iov_len: g.len() }).collect();
        let fd = self.0.file().as_raw_fd();
        let (mut next, mut at) = (0usize, offset);
        while next < iovs.len() {
            let n = (iovs.len() - next).min(IOV_MAX);
            let iov = iovs[next..].as_ptr();
            // at <= image length (checked above), which fits off_t.
            let done = if write {
                // `iov[..n]` describes the caller's guest slices, which stay mapped for this call
                // (the slices borrow their mapping and `guards` keeps them pinned).
                // SAFETY: the iovecs are valid for the call, as said above; pwritev only reads them.
                unsafe { libc::pwritev(fd, iov, n as libc::c_int, at as libc::off_t) }
            } else {
                // SAFETY: as above; preadv writes only inside the described slices, which are
                // guest RAM the device was handed for writing (never our own Rust objects).
                unsafe { libc::preadv(fd, iov, n as libc::c_int, at as libc::off_t) }
            };
            if done < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            if done == 0 {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "image ended early"));
            }
            // Skip what was moved; a short transfer resumes inside an iovec.
            let mut left = done as usize;
            at += left as u64;
            while left > 0 && next < iovs.len() {
                let v = &mut iovs[next];
                if left >= v.iov_len {
                    left -= v.iov_len;
                    next += 1;
                } else {
                    // SAFETY: `left < iov_len`, so the new base stays inside the same slice.
                    v.iov_base = unsafe { v.iov_base.cast::<u8>().add(left).cast() };
                    v.iov_len -= left;
                    left = 0;
                }
            }
        }
        Ok(())
    }
}

impl BlockBackend for DirectFile {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.0.read_at(offset, buf)
    }
    fn write_at(&self, offset: u64, buf: &[u8]) -> io::Result<()> {
        self.0.write_at(offset, buf)
    }
    fn read_to_slices(&self, offset: u64, slices: &[VolatileSlice<'_>]) -> io::Result<()> {
        self.vectored(offset, slices, false)
    }
    fn write_from_slices(&self, offset: u64, slices: &[VolatileSlice<'_>]) -> io::Result<()> {
        self.vectored(offset, slices, true)
    }
    fn flush(&self) -> io::Result<()> {
        self.0.flush()
    }
    fn len(&self) -> u64 {
        self.0.len()
    }
    fn read_only(&self) -> bool {
        self.0.read_only()
    }
    fn filename(&self) -> String {
        self.0.filename()
    }
}

/// A thread that runs storage jobs in order (one per IDE channel, so the channels' transfers
/// overlap as on real hardware). It ends when the last handle goes (the machine is dropped).
pub struct IoThread {
    queue: std::sync::Mutex<mpsc::Sender<Job>>,
}

impl IoThread {
    pub fn spawn(name: &str) -> io::Result<Arc<IoThread>> {
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new().name(name.to_string()).spawn(move || {
            for job in rx {
                job();
            }
        })?;
        Ok(Arc::new(IoThread { queue: std::sync::Mutex::new(tx) }))
    }
}

impl IoWorker for IoThread {
    fn submit(&self, job: Job) {
        if let Err(mpsc::SendError(job)) = self.queue.lock().unwrap_or_else(|e| e.into_inner()).send(job) {
            // The thread is gone (it panicked): run the job on a fresh one rather than lose
            // the guest's command.
            log::error!("I/O thread gone; running a storage job on a new thread");
            std::thread::spawn(job);
        }
    }
}

/// Opens the image of one IDE position (`None` for an empty CD-ROM drive), with an error that
/// names the drive and the file.
pub fn open_attachment(a: &IdeAttachment, stats: &Arc<DriveStats>) -> Result<Option<Arc<dyn BlockBackend>>, String> {
    let Some(path) = &a.file else { return Ok(None) };
    let raw = RawFile::open(path, a.read_only).map_err(|e| format!("drive '{}': {e}", a.drive_id))?;
    Ok(Some(CountingBackend::wrap(Arc::new(DirectFile(raw)), stats.clone())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use devices::storage::block::MemoryBackend;

    #[test]
    fn direct_file_scatters_reads_and_gathers_writes_across_many_slices() {
        let path = std::env::temp_dir().join(format!("devicemodel-direct-{}.img", std::process::id()));
        let contents: Vec<u8> = (0..3000u32).map(|i| (i * 7) as u8).collect();
        std::fs::write(&path, &contents).unwrap();
        let f = DirectFile(RawFile::open(&path, false).unwrap());
        // More slices than one preadv takes, of odd sizes.
        let mut bufs: Vec<Vec<u8>> = (0..1500).map(|i| vec![0u8; 1 + i % 2]).collect();
        let total: usize = bufs.iter().map(|b| b.len()).sum();
        {
            let slices: Vec<VolatileSlice<'_>> = bufs.iter_mut().map(|b| VolatileSlice::from(&mut b[..])).collect();
            f.read_to_slices(3, &slices).unwrap();
            assert!(f.read_to_slices(3000 - total as u64 + 1, &slices).is_err(), "past the end");
        }
        assert_eq!(bufs.concat(), contents[3..3 + total]);
        let mut data = vec![0xeeu8; 700];
        let (a, b) = data.split_at_mut(100);
        f.write_from_slices(1000, &[VolatileSlice::from(a), VolatileSlice::from(b)]).unwrap();
        drop(f);
        let on_disk = std::fs::read(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(on_disk.len(), 3000);
        assert_eq!(on_disk[1000..1700], [0xee; 700]);
        assert_eq!(on_disk[999], contents[999]);
    }

    #[test]
    fn an_io_thread_runs_jobs_in_order_off_the_caller() {
        let t = IoThread::spawn("test-io").unwrap();
        let (tx, rx) = mpsc::channel();
        for i in 0..3 {
            let tx = tx.clone();
            t.submit(Box::new(move || tx.send((i, std::thread::current().name().map(String::from))).unwrap()));
        }
        let got: Vec<_> = (0..3).map(|_| rx.recv().unwrap()).collect();
        assert_eq!(got, (0..3).map(|i| (i, Some("test-io".to_string()))).collect::<Vec<_>>());
    }

    #[test]
    fn counts_reads_writes_and_flushes() {
        let stats = Arc::new(DriveStats::default());
        let b = CountingBackend::wrap(Arc::new(MemoryBackend::new(vec![0; 4096], false)), stats.clone());
        let mut buf = [0u8; 512];
        b.read_at(0, &mut buf).unwrap();
        b.write_at(512, &buf[..100]).unwrap();
        assert!(b.read_at(4000, &mut buf).is_err(), "a failed read is not counted");
        b.flush().unwrap();
        assert_eq!(stats.rd_bytes.load(Ordering::Relaxed), 512);
        assert_eq!(stats.wr_bytes.load(Ordering::Relaxed), 100);
        assert_eq!(
            (stats.rd_operations.load(Ordering::Relaxed), stats.flush_operations.load(Ordering::Relaxed)),
            (1, 1)
        );
    }
}
