//! The machine's block layer: opening the images the command line names, and per-drive I/O
//! statistics for QMP `query-blockstats` (what xentop shows).

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use devices::storage::block::{BlockBackend, RawFile};

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

/// Opens the image of one IDE position (`None` for an empty CD-ROM drive), with an error that
/// names the drive and the file.
pub fn open_attachment(a: &IdeAttachment, stats: &Arc<DriveStats>) -> Result<Option<Arc<dyn BlockBackend>>, String> {
    let Some(path) = &a.file else { return Ok(None) };
    let raw = RawFile::open(path, a.read_only).map_err(|e| format!("drive '{}': {e}", a.drive_id))?;
    Ok(Some(CountingBackend::wrap(Arc::new(raw), stats.clone())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use devices::storage::block::MemoryBackend;

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
