//! Block backends: where the sectors of an emulated disk or CD live on the host.
//!
//! A device addresses its backend in bytes; the backend refuses any access that does not lie
//! entirely inside the image (a guest can never grow or read past an image through a device).

use std::fmt;
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{self, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use crate::memory::VolatileSlice;

/// Most bytes the default scatter/gather methods stage in one bounce buffer.
const BOUNCE_CHUNK: usize = 1 << 20;

/// Total length of a scatter list.
pub fn slices_len(slices: &[VolatileSlice<'_>]) -> usize {
    slices.iter().map(|s| s.len()).sum()
}

/// The first `n` bytes of a scatter list and the rest (`n` past the end: everything, nothing).
pub fn split_slices<'a>(
    slices: &[VolatileSlice<'a>],
    mut n: usize,
) -> (Vec<VolatileSlice<'a>>, Vec<VolatileSlice<'a>>) {
    let (mut head, mut tail) = (Vec::new(), Vec::new());
    for s in slices {
        if n >= s.len() {
            n -= s.len();
            head.push(*s);
        } else if n == 0 {
            tail.push(*s);
        } else {
            // In bounds: 0 < n < s.len().
            if let Ok((a, b)) = s.split_at(n) {
                head.push(a);
                tail.push(b);
            }
            n = 0;
        }
    }
    (head, tail)
}

/// Zeroes every byte of a scatter list.
pub fn zero_slices(slices: &[VolatileSlice<'_>]) {
    let zeroes = [0u8; 4096];
    for s in slices {
        let mut at = 0;
        while at < s.len() {
            let n = (s.len() - at).min(zeroes.len());
            if let Ok(part) = s.subslice(at, n) {
                part.copy_from(&zeroes[..n]);
            }
            at += n;
        }
    }
}

/// The storage behind one emulated drive or medium.
pub trait BlockBackend: Send + Sync {
    /// Fills `buf` from byte `offset`. Fails if any byte lies past [`BlockBackend::len`].
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()>;
    /// Writes `buf` at byte `offset`. Fails on a read-only backend or past the end.
    fn write_at(&self, offset: u64, buf: &[u8]) -> io::Result<()>;
    /// Fills the slices in order from byte `offset` (a DMA read straight into guest memory).
    /// Fails if any byte lies past the end. The default stages through a bounce buffer; a
    /// host-file backend overrides it with `preadv` into the slices.
    fn read_to_slices(&self, offset: u64, slices: &[VolatileSlice<'_>]) -> io::Result<()> {
        check_range(offset, slices_len(slices), self.len())?;
        let mut buf = Vec::new();
        let mut at = offset;
        for s in slices {
            let mut done = 0;
            while done < s.len() {
                let n = (s.len() - done).min(BOUNCE_CHUNK);
                buf.resize(n, 0);
                self.read_at(at, &mut buf)?;
                s.subslice(done, n).map_err(io::Error::other)?.copy_from(&buf[..]);
                done += n;
                at += n as u64;
            }
        }
        Ok(())
    }
    /// Writes the slices in order at byte `offset` (a DMA write straight from guest memory).
    /// The default stages through a bounce buffer; a host-file backend uses `pwritev`.
    fn write_from_slices(&self, offset: u64, slices: &[VolatileSlice<'_>]) -> io::Result<()> {
        check_range(offset, slices_len(slices), self.len())?;
        let mut buf = Vec::new();
        let mut at = offset;
        for s in slices {
            let mut done = 0;
            while done < s.len() {
                let n = (s.len() - done).min(BOUNCE_CHUNK);
                buf.resize(n, 0);
                s.subslice(done, n).map_err(io::Error::other)?.copy_to(&mut buf[..]);
                self.write_at(at, &buf)?;
                done += n;
                at += n as u64;
            }
        }
        Ok(())
    }
    /// Makes every completed write durable (the guest's FLUSH CACHE; `fdatasync` for files).
    fn flush(&self) -> io::Result<()>;
    /// Size in bytes, fixed while the backend is open.
    fn len(&self) -> u64;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    fn read_only(&self) -> bool;
    /// What QMP `query-block` reports as `inserted.file`.
    fn filename(&self) -> String;
    /// What QMP reports as `inserted.drv`.
    fn format(&self) -> &'static str {
        "raw"
    }
}

/// Checks that `len` bytes at `offset` lie inside a backend of `size` bytes.
pub fn check_range(offset: u64, len: usize, size: u64) -> io::Result<()> {
    match offset.checked_add(len as u64) {
        Some(end) if end <= size => Ok(()),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("access of {len} bytes at offset {offset} is outside the {size}-byte image"),
        )),
    }
}

/// Why an image could not be opened. The message names the file and says what to do.
#[derive(Debug)]
pub struct OpenError {
    pub path: PathBuf,
    pub read_only: bool,
    pub kind: OpenErrorKind,
}

#[derive(Debug)]
pub enum OpenErrorKind {
    NotFound,
    PermissionDenied,
    IsDirectory,
    /// Another process (or another drive of this one) holds a conflicting lock.
    Locked,
    Io(io::Error),
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = self.path.display();
        let mode = if self.read_only { "read-only" } else { "read-write" };
        match &self.kind {
            OpenErrorKind::NotFound => write!(f, "cannot open image '{p}': no such file; check the path"),
            OpenErrorKind::PermissionDenied => write!(
                f,
                "cannot open image '{p}' {mode}: permission denied; fix the file's permissions or ownership{}",
                if self.read_only { "" } else { ", or attach it read-only" }
            ),
            OpenErrorKind::IsDirectory => write!(f, "cannot use '{p}' as an image: it is a directory"),
            OpenErrorKind::Locked if self.read_only => write!(
                f,
                "cannot lock image '{p}' for reading: another process has it open for writing \
                 (is another guest or qemu-img using it?); stop that process first"
            ),
            OpenErrorKind::Locked => write!(
                f,
                "cannot lock image '{p}' for writing: another process has it open \
                 (is another guest or qemu-img using it?); stop that process, or attach the image read-only"
            ),
            OpenErrorKind::Io(e) => write!(f, "cannot open image '{p}' {mode}: {e}"),
        }
    }
}

impl std::error::Error for OpenError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            OpenErrorKind::Io(e) => Some(e),
            _ => None,
        }
    }
}

/// A raw image file or host block device.
///
/// Opening takes an advisory whole-file lock for as long as the backend lives: exclusive when
/// writable, shared when read-only. So an image is never open for writing twice, nor written
/// while someone reads it (QEMU's image locking does the same with OFD byte-range locks; these
/// are `flock` locks, which do not see QEMU's).
#[derive(Debug)]
pub struct RawFile {
    file: File,
    path: PathBuf,
    len: u64,
    read_only: bool,
}

impl RawFile {
    pub fn open(path: impl AsRef<Path>, read_only: bool) -> Result<RawFile, OpenError> {
        let path = path.as_ref().to_path_buf();
        let err = |kind| OpenError { path: path.clone(), read_only, kind };
        let io_err = |e: io::Error| {
            err(match e.kind() {
                io::ErrorKind::NotFound => OpenErrorKind::NotFound,
                io::ErrorKind::PermissionDenied => OpenErrorKind::PermissionDenied,
                io::ErrorKind::IsADirectory => OpenErrorKind::IsDirectory,
                _ => OpenErrorKind::Io(e),
            })
        };
        let mut file = OpenOptions::new().read(true).write(!read_only).open(&path).map_err(io_err)?;
        if file.metadata().map_err(io_err)?.is_dir() {
            return Err(err(OpenErrorKind::IsDirectory));
        }
        let locked = if read_only { file.try_lock_shared() } else { file.try_lock() };
        match locked {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => return Err(err(OpenErrorKind::Locked)),
            Err(TryLockError::Error(e)) => return Err(io_err(e)),
        }
        // Seeking to the end also sizes block devices, whose metadata length is 0.
        let len = file.seek(SeekFrom::End(0)).map_err(io_err)?;
        Ok(RawFile { file, path, len, read_only })
    }

    /// An image the caller already opened (QMP `/dev/fdset/N`), named `name` in messages and
    /// `query-block`. Takes the same lock as [`RawFile::open`].
    pub fn from_file(mut file: File, name: &str, read_only: bool) -> Result<RawFile, OpenError> {
        let path = PathBuf::from(name);
        let err = |kind| OpenError { path: path.clone(), read_only, kind };
        let locked = if read_only { file.try_lock_shared() } else { file.try_lock() };
        match locked {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => return Err(err(OpenErrorKind::Locked)),
            Err(TryLockError::Error(e)) => return Err(err(OpenErrorKind::Io(e))),
        }
        let len = file.seek(SeekFrom::End(0)).map_err(|e| err(OpenErrorKind::Io(e)))?;
        Ok(RawFile { file, path, len, read_only })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The open file, for host I/O paths that need its descriptor (`preadv`).
    pub fn file(&self) -> &File {
        &self.file
    }
}

impl BlockBackend for RawFile {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        check_range(offset, buf.len(), self.len)?;
        self.file.read_exact_at(buf, offset)
    }
    fn write_at(&self, offset: u64, buf: &[u8]) -> io::Result<()> {
        if self.read_only {
            return Err(io::Error::new(io::ErrorKind::PermissionDenied, "image is read-only"));
        }
        check_range(offset, buf.len(), self.len)?;
        self.file.write_all_at(buf, offset)
    }
    fn flush(&self) -> io::Result<()> {
        if self.read_only {
            return Ok(());
        }
        self.file.sync_data()
    }
    fn len(&self) -> u64 {
        self.len
    }
    fn read_only(&self) -> bool {
        self.read_only
    }
    fn filename(&self) -> String {
        self.path.display().to_string()
    }
}

/// An image held in host memory: for unit tests, fuzzers and scratch media. Counts flushes so a
/// test can see that a guest's FLUSH CACHE reached the backend.
#[derive(Debug)]
pub struct MemoryBackend {
    bytes: Mutex<Vec<u8>>,
    read_only: bool,
    flushes: AtomicU64,
}

impl MemoryBackend {
    pub fn new(bytes: Vec<u8>, read_only: bool) -> Self {
        MemoryBackend { bytes: Mutex::new(bytes), read_only, flushes: AtomicU64::new(0) }
    }
    /// A copy of the image as it is now.
    pub fn contents(&self) -> Vec<u8> {
        self.bytes.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
    pub fn flush_count(&self) -> u64 {
        self.flushes.load(Ordering::SeqCst)
    }
}

impl BlockBackend for MemoryBackend {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let bytes = self.bytes.lock().unwrap_or_else(|e| e.into_inner());
        check_range(offset, buf.len(), bytes.len() as u64)?;
        let start = offset as usize;
        buf.copy_from_slice(&bytes[start..start + buf.len()]);
        Ok(())
    }
    fn write_at(&self, offset: u64, buf: &[u8]) -> io::Result<()> {
        if self.read_only {
            return Err(io::Error::new(io::ErrorKind::PermissionDenied, "image is read-only"));
        }
        let mut bytes = self.bytes.lock().unwrap_or_else(|e| e.into_inner());
        check_range(offset, buf.len(), bytes.len() as u64)?;
        let start = offset as usize;
        bytes[start..start + buf.len()].copy_from_slice(buf);
        Ok(())
    }
    fn flush(&self) -> io::Result<()> {
        self.flushes.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
    fn len(&self) -> u64 {
        self.bytes.lock().unwrap_or_else(|e| e.into_inner()).len() as u64
    }
    fn read_only(&self) -> bool {
        self.read_only
    }
    fn filename(&self) -> String {
        "memory".to_string()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A file under the system temp directory, removed when dropped.
    pub(crate) struct TempImage(pub PathBuf);

    impl TempImage {
        pub(crate) fn new(name: &str, contents: &[u8]) -> TempImage {
            static SEQ: AtomicU64 = AtomicU64::new(0);
            let n = SEQ.fetch_add(1, Ordering::SeqCst);
            let path = std::env::temp_dir().join(format!("devices-storage-{}-{n}-{name}", std::process::id()));
            std::fs::write(&path, contents).unwrap();
            TempImage(path)
        }
    }

    impl Drop for TempImage {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    #[test]
    fn raw_file_reads_and_writes_inside_the_image_only() {
        let img = TempImage::new("rw.img", &[7u8; 4096]);
        let f = RawFile::open(&img.0, false).unwrap();
        assert_eq!(f.len(), 4096);
        f.write_at(512, &[1, 2, 3]).unwrap();
        let mut b = [0u8; 4];
        f.read_at(511, &mut b).unwrap();
        assert_eq!(b, [7, 1, 2, 3]);
        assert!(f.read_at(4094, &mut b).is_err());
        assert!(f.write_at(u64::MAX - 1, &b).is_err());
        f.flush().unwrap();
        drop(f);
        // The image did not grow and the write reached the file.
        let on_disk = std::fs::read(&img.0).unwrap();
        assert_eq!(on_disk.len(), 4096);
        assert_eq!(&on_disk[512..515], &[1, 2, 3]);
    }

    #[test]
    fn scatter_reads_and_gathers_writes_through_slices() {
        let img = TempImage::new("sg.img", &(0..=255u8).cycle().take(8192).collect::<Vec<_>>());
        let f = RawFile::open(&img.0, false).unwrap();
        let (mut a, mut b) = ([0u8; 3], [0u8; 5]);
        {
            let s = [VolatileSlice::from(&mut a[..]), VolatileSlice::from(&mut b[..])];
            f.read_to_slices(254, &s).unwrap();
            assert!(f.read_to_slices(8190, &s).is_err(), "past the end");
        }
        assert_eq!((a, b), ([254, 255, 0], [1, 2, 3, 4, 5]));
        let mut c = [9u8; 4];
        f.write_from_slices(8188, &[VolatileSlice::from(&mut c[..])]).unwrap();
        let mut back = [0u8; 4];
        f.read_at(8188, &mut back).unwrap();
        assert_eq!(back, [9; 4]);
        let (head, tail) = split_slices(&[VolatileSlice::from(&mut a[..]), VolatileSlice::from(&mut b[..])], 4);
        assert_eq!((slices_len(&head), slices_len(&tail), head.len()), (4, 4, 2));
        zero_slices(&tail);
        assert_eq!(b, [1, 0, 0, 0, 0]);
    }

    #[test]
    fn a_writable_image_cannot_be_opened_twice() {
        let img = TempImage::new("lock.img", &[0u8; 512]);
        let first = RawFile::open(&img.0, false).unwrap();
        let e = RawFile::open(&img.0, false).unwrap_err();
        assert!(matches!(e.kind, OpenErrorKind::Locked), "{e}");
        let msg = e.to_string();
        assert!(msg.contains(&img.0.display().to_string()) && msg.contains("read-only"), "{msg}");
        assert!(matches!(RawFile::open(&img.0, true).unwrap_err().kind, OpenErrorKind::Locked));
        drop(first);
        // Readers share; a writer is then refused.
        let r1 = RawFile::open(&img.0, true).unwrap();
        let r2 = RawFile::open(&img.0, true).unwrap();
        assert!(matches!(RawFile::open(&img.0, false).unwrap_err().kind, OpenErrorKind::Locked));
        assert!(r1.write_at(0, &[1]).is_err());
        drop((r1, r2));
        RawFile::open(&img.0, false).unwrap();
    }

    #[test]
    fn open_errors_name_the_file() {
        let e = RawFile::open("/nonexistent/dir/disk.img", true).unwrap_err();
        assert!(matches!(e.kind, OpenErrorKind::NotFound));
        assert!(e.to_string().contains("/nonexistent/dir/disk.img"));
        let e = RawFile::open(std::env::temp_dir(), true).unwrap_err();
        assert!(matches!(e.kind, OpenErrorKind::IsDirectory), "{e}");
    }
}
