//! `/dev/xen/privcmd`: the Linux driver through which a (dom0 or stub domain) process issues device
//! model hypercalls and maps another domain's memory.
//!
//! ABI facts from Linux `include/uapi/xen/privcmd.h`: every ioctl is `_IOC(_IOC_NONE, 'P', nr,
//! sizeof(arg))`; the structs below are their x86-64 layouts (sizes asserted in the tests).
//! Foreign and resource mappings are made by first `mmap`ing the privcmd fd (which reserves a VMA
//! the driver owns) and then naming that address in the ioctl.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::ptr::NonNull;

pub const PRIVCMD_PATH: &str = "/dev/xen/privcmd";

/// Page size of x86 Xen guests (foreign mappings are always 4 KiB granular).
pub const XEN_PAGE_SIZE: usize = 4096;

/// `_IOC(_IOC_NONE, type, nr, size)` on x86: direction bits 31:30 are 0 for NONE, size 29:16.
/// (`libc::Ioctl` is `c_ulong` on glibc and `c_int` on musl; the values fit both.)
pub(crate) const fn ioc_none(ty: u8, nr: u8, size: usize) -> libc::Ioctl {
    (((size as u32) << 16) | ((ty as u32) << 8) | nr as u32) as libc::Ioctl
}

/// `struct privcmd_mmapbatch_v2`.
#[repr(C)]
#[derive(Debug)]
struct PrivcmdMmapBatchV2 {
    num: u32,
    dom: u16,
    addr: u64,
    arr: *const u64,
    err: *mut i32,
}

/// `struct privcmd_hypercall`.
#[repr(C)]
#[derive(Debug)]
struct PrivcmdHypercall {
    op: u64,
    arg: [u64; 5],
}

/// `struct xen_memory_reservation` (xen/include/public/memory.h), x86-64 layout.
#[repr(C)]
struct XenMemoryReservation {
    /// `XEN_GUEST_HANDLE(xen_pfn_t) extent_start`: IN the gfns to populate.
    extent_start: u64,
    nr_extents: u64,
    extent_order: u32,
    mem_flags: u32,
    domid: u16,
}

/// `struct privcmd_dm_op_buf`.
#[repr(C)]
#[derive(Debug)]
struct PrivcmdDmOpBuf {
    uptr: *mut libc::c_void,
    size: usize,
}

/// `struct privcmd_dm_op`.
#[repr(C)]
#[derive(Debug)]
struct PrivcmdDmOp {
    dom: u16,
    num: u16,
    ubufs: *const PrivcmdDmOpBuf,
}

/// `struct privcmd_mmap_resource`.
#[repr(C)]
#[derive(Debug)]
struct PrivcmdMmapResource {
    dom: u16,
    ty: u32,
    id: u32,
    idx: u32,
    num: u64,
    addr: u64,
}

const IOCTL_PRIVCMD_HYPERCALL: libc::Ioctl = ioc_none(b'P', 0, std::mem::size_of::<PrivcmdHypercall>());
const IOCTL_PRIVCMD_MMAPBATCH_V2: libc::Ioctl = ioc_none(b'P', 4, std::mem::size_of::<PrivcmdMmapBatchV2>());
const IOCTL_PRIVCMD_DM_OP: libc::Ioctl = ioc_none(b'P', 5, std::mem::size_of::<PrivcmdDmOp>());
const IOCTL_PRIVCMD_RESTRICT: libc::Ioctl = ioc_none(b'P', 6, std::mem::size_of::<u16>());
const IOCTL_PRIVCMD_MMAP_RESOURCE: libc::Ioctl = ioc_none(b'P', 7, std::mem::size_of::<PrivcmdMmapResource>());

/// Linux privcmd refuses more than 16 DMOP buffers, each at most 4096 bytes
/// (`privcmd_dm_op_max_num`, `privcmd_dm_op_buf_max_size` module parameters).
pub const DM_OP_MAX_BUFS: usize = 16;
pub const DM_OP_MAX_BUF_SIZE: usize = 4096;

/// `__HYPERVISOR_memory_op` (xen/include/public/xen.h) and its `XENMEM_populate_physmap`.
const HYPERVISOR_MEMORY_OP: u64 = 12;
const XENMEM_POPULATE_PHYSMAP: u64 = 6;
/// Where Linux hands out memory that stays put while Xen reads it (privcmd-buf, Linux 4.18+).
pub const HYPERCALL_BUF_PATH: &str = "/dev/xen/hypercall";
/// Gfns per `populate_physmap` call: the reservation and the gfn array share one page.
pub const POPULATE_BATCH: usize = (XEN_PAGE_SIZE - std::mem::size_of::<XenMemoryReservation>()) / 8;

/// `XENMEM_resource_ioreq_server` (xen/include/public/memory.h, `XENMEM_acquire_resource`).
pub const XENMEM_RESOURCE_IOREQ_SERVER: u32 = 0;

/// An open privcmd device.
#[derive(Debug)]
pub struct Privcmd {
    file: File,
}

/// Pages of another domain (or of a Xen resource) mapped into this process; unmapped on drop.
///
/// The memory is shared with a running guest (or with Xen), so it is only ever accessed through
/// [`MappedPages::read`] / [`MappedPages::write`] (bounds-checked volatile copies) or through the
/// atomic accessors used by the ioreq page wrapper.
#[derive(Debug)]
pub struct MappedPages {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is plain shared memory owned by this value; nothing in it is tied to the
// thread that created it, and every access goes through methods that take `&self` and use volatile
// or atomic operations, which are sound to perform concurrently from several threads.
unsafe impl Send for MappedPages {}
// SAFETY: see `Send` above; `&MappedPages` only allows volatile/atomic access.
unsafe impl Sync for MappedPages {}

impl MappedPages {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn check(&self, offset: usize, len: usize) -> io::Result<()> {
        match offset.checked_add(len) {
            Some(end) if end <= self.len => Ok(()),
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{len} bytes at {offset:#x} outside a {:#x}-byte mapping", self.len),
            )),
        }
    }

    /// Copies `buf.len()` bytes at `offset` out of the mapping (aligned 8-byte volatile loads
    /// where possible, bytes at the unaligned edges).
    pub fn read(&self, offset: usize, buf: &mut [u8]) -> io::Result<()> {
        self.check(offset, buf.len())?;
        let mut i = 0;
        while i < buf.len() {
            let at = offset + i;
            if at & 7 == 0 && buf.len() - i >= 8 {
                // Volatile: the guest writes this memory concurrently.
                // SAFETY: `at + 8 <= self.len` (checked above), `at` 8-aligned in a page-aligned mapping.
                let v = unsafe { (self.ptr.as_ptr().add(at) as *const u64).read_volatile() };
                buf[i..i + 8].copy_from_slice(&v.to_ne_bytes());
                i += 8;
            } else {
                // SAFETY: `at < self.len` (checked above); a byte needs no alignment.
                buf[i] = unsafe { self.ptr.as_ptr().add(at).read_volatile() };
                i += 1;
            }
        }
        Ok(())
    }

    /// Copies `buf` into the mapping at `offset`.
    pub fn write(&self, offset: usize, buf: &[u8]) -> io::Result<()> {
        self.check(offset, buf.len())?;
        let mut i = 0;
        while i < buf.len() {
            let at = offset + i;
            if at & 7 == 0 && buf.len() - i >= 8 {
                let v = u64::from_ne_bytes(buf[i..i + 8].try_into().unwrap_or([0; 8]));
                // SAFETY: in bounds (checked above), 8-aligned, writable shared mapping.
                unsafe { (self.ptr.as_ptr().add(at) as *mut u64).write_volatile(v) };
                i += 8;
            } else {
                // SAFETY: in bounds of the live, writable mapping (checked above).
                unsafe { self.ptr.as_ptr().add(at).write_volatile(buf[i]) };
                i += 1;
            }
        }
        Ok(())
    }

    /// `len` bytes at `offset` as a vm-memory slice, for zero-copy DMA. The slice borrows `self`,
    /// so it cannot outlive the mapping.
    pub fn volatile_slice(&self, offset: usize, len: usize) -> io::Result<vm_memory::VolatileSlice<'_>> {
        self.check(offset, len)?;
        // VolatileSlice only does volatile accesses, as the guest writes this memory concurrently.
        // SAFETY: `offset..offset+len` lies inside this live shared mapping (checked above),
        // unmapped only when `self` drops; the slice's lifetime is tied to `&self`.
        Ok(unsafe { vm_memory::VolatileSlice::new(self.ptr.as_ptr().add(offset), len) })
    }

    /// Gives up ownership: the pages stay mapped for the rest of the process (memory that must
    /// outlive every holder of a pointer into it, like VRAM handed to vm-memory). Returns the
    /// start and the length.
    pub fn leak(self) -> (NonNull<u8>, usize) {
        let me = std::mem::ManuallyDrop::new(self);
        (me.ptr, me.len)
    }

    /// The byte at `offset` as an atomic, for the ioreq state handshake.
    pub fn atomic_u8(&self, offset: usize) -> io::Result<&std::sync::atomic::AtomicU8> {
        self.check(offset, 1)?;
        // The reference borrows `self`, so it cannot outlive the mapping; all our accesses to
        // this byte are atomic or volatile.
        // SAFETY: in bounds (checked), and AtomicU8 has alignment 1.
        Ok(unsafe { std::sync::atomic::AtomicU8::from_ptr(self.ptr.as_ptr().add(offset)) })
    }

    /// The naturally aligned 32-bit word at `offset` as an atomic (the buffered ring's pointers).
    pub fn atomic_u32(&self, offset: usize) -> io::Result<&std::sync::atomic::AtomicU32> {
        self.check(offset, 4)?;
        if offset & 3 != 0 {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "misaligned u32 access"));
        }
        // The reference borrows `self`, so it cannot outlive the mapping; every access we make to
        // this word is atomic.
        // SAFETY: in bounds (checked) and 4-byte aligned (checked; the mapping is page aligned).
        Ok(unsafe { std::sync::atomic::AtomicU32::from_ptr(self.ptr.as_ptr().add(offset).cast()) })
    }

    /// A naturally aligned 64-bit word at `offset`, read volatile.
    pub fn read_u64(&self, offset: usize) -> io::Result<u64> {
        self.check(offset, 8)?;
        if offset & 7 != 0 {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "misaligned u64 access"));
        }
        // SAFETY: in bounds and 8-byte aligned (the mapping is page aligned).
        Ok(unsafe { (self.ptr.as_ptr().add(offset) as *const u64).read_volatile() })
    }

    /// Writes a naturally aligned 64-bit word at `offset` (volatile, one store).
    pub fn write_u64(&self, offset: usize, value: u64) -> io::Result<()> {
        self.check(offset, 8)?;
        if offset & 7 != 0 {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "misaligned u64 access"));
        }
        // SAFETY: in bounds, 8-byte aligned, writable shared mapping.
        unsafe { (self.ptr.as_ptr().add(offset) as *mut u64).write_volatile(value) };
        Ok(())
    }
}

impl Drop for MappedPages {
    fn drop(&mut self) {
        // SAFETY: `ptr..ptr+len` is exactly the mapping this value created and owns; nothing can
        // reference it after drop (all borrows end with `self`).
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

/// One page that Xen reads and writes during a hypercall (arguments passed by pointer). From
/// `/dev/xen/hypercall` when the kernel has it (its pages never move, as libxencall uses it),
/// otherwise anonymous memory locked into RAM. Unmapped on drop.
struct HypercallBuffer {
    ptr: NonNull<u8>,
}

impl HypercallBuffer {
    fn new() -> io::Result<Self> {
        let dev = OpenOptions::new().read(true).write(true).custom_flags(libc::O_CLOEXEC).open(HYPERCALL_BUF_PATH);
        let p = match &dev {
            // SAFETY: a fresh shared mapping of one page of the hypercall-buffer device at an
            // address the kernel chooses; it overlaps nothing of ours. Checked below.
            Ok(f) => unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    XEN_PAGE_SIZE,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_SHARED,
                    f.as_raw_fd(),
                    0,
                )
            },
            // SAFETY: a fresh private anonymous page at an address the kernel chooses. Checked below.
            Err(_) => unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    XEN_PAGE_SIZE,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                    -1,
                    0,
                )
            },
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ptr = NonNull::new(p.cast::<u8>()).ok_or_else(|| io::Error::from(io::ErrorKind::AddrNotAvailable))?;
        let buf = HypercallBuffer { ptr };
        if dev.is_err() {
            // SAFETY: `ptr` is the page mapped just above; mlock only pins it.
            if unsafe { libc::mlock(ptr.as_ptr().cast(), XEN_PAGE_SIZE) } != 0 {
                return Err(io::Error::last_os_error());
            }
        }
        Ok(buf)
    }

    /// Copies `bytes` to `offset` (within the page).
    fn put(&self, offset: usize, bytes: &[u8]) -> io::Result<()> {
        if offset.checked_add(bytes.len()).is_none_or(|end| end > XEN_PAGE_SIZE) {
            return Err(io::Error::from(io::ErrorKind::InvalidInput));
        }
        // SAFETY: in bounds of the page (checked); only this process and Xen, during a
        // hypercall we make on this thread, touch it, so no other reference aliases it now.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.ptr.as_ptr().add(offset), bytes.len()) };
        Ok(())
    }

    fn addr(&self, offset: usize) -> u64 {
        self.ptr.as_ptr() as u64 + offset as u64
    }
}

impl Drop for HypercallBuffer {
    fn drop(&mut self) {
        // SAFETY: exactly the page this value mapped; nothing refers to it any more.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), XEN_PAGE_SIZE) };
    }
}

impl Privcmd {
    /// `XENMEM_populate_physmap` for `domid`: gives the guest a fresh page at each of `gfns`
    /// (order 0), in batches of [`POPULATE_BATCH`]. Fails, saying how far it got, when Xen
    /// populates fewer than asked (the domain's `maxmem` is reached).
    pub fn populate_physmap(&self, domid: u16, gfns: &[u64]) -> io::Result<()> {
        let buf = HypercallBuffer::new()?;
        let array = std::mem::size_of::<XenMemoryReservation>();
        let mut done = 0usize;
        for chunk in gfns.chunks(POPULATE_BATCH) {
            let mut r = [0u8; std::mem::size_of::<XenMemoryReservation>()];
            let at = |o: usize, v: &[u8], r: &mut [u8]| r[o..o + v.len()].copy_from_slice(v);
            at(std::mem::offset_of!(XenMemoryReservation, extent_start), &buf.addr(array).to_le_bytes(), &mut r);
            at(std::mem::offset_of!(XenMemoryReservation, nr_extents), &(chunk.len() as u64).to_le_bytes(), &mut r);
            at(std::mem::offset_of!(XenMemoryReservation, domid), &domid.to_le_bytes(), &mut r);
            buf.put(0, &r)?;
            let list: Vec<u8> = chunk.iter().flat_map(|g| g.to_le_bytes()).collect();
            buf.put(array, &list)?;
            let arg =
                PrivcmdHypercall { op: HYPERVISOR_MEMORY_OP, arg: [XENMEM_POPULATE_PHYSMAP, buf.addr(0), 0, 0, 0] };
            let arg_ptr = &arg as *const PrivcmdHypercall;
            // SAFETY: the hypercall reads the reservation and the gfn array from `buf`, a live
            // page we own, and writes back at most `nr_extents` gfns into it; `arg` lives
            // across the call.
            let rc = unsafe { libc::ioctl(self.file.as_raw_fd(), IOCTL_PRIVCMD_HYPERCALL, arg_ptr) };
            if rc < 0 {
                let e = io::Error::last_os_error();
                return Err(io::Error::new(e.kind(), format!("XENMEM_populate_physmap after {done} pages: {e}")));
            }
            if rc as usize != chunk.len() {
                return Err(io::Error::other(format!(
                    "XENMEM_populate_physmap: Xen populated {} of {} pages (domain memory limit reached)",
                    done + rc as usize,
                    gfns.len()
                )));
            }
            done += chunk.len();
        }
        Ok(())
    }

    /// Opens `/dev/xen/privcmd`.
    pub fn open() -> Result<Self, String> {
        OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_CLOEXEC)
            .open(PRIVCMD_PATH)
            .map(|file| Privcmd { file })
            .map_err(|e| {
                format!(
                    "{PRIVCMD_PATH}: {e}: not running in a Xen domain with privcmd (load xen-privcmd and mount xenfs)"
                )
            })
    }

    /// Reserves `pages` pages of address space backed by the privcmd driver.
    fn reserve(&self, pages: usize) -> io::Result<MappedPages> {
        let len = pages
            .checked_mul(XEN_PAGE_SIZE)
            .filter(|&l| l > 0)
            .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
        // SAFETY: a fresh shared mapping of the privcmd fd at an address the kernel chooses; it
        // overlaps nothing of ours. The result is checked before use.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                self.file.as_raw_fd(),
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ptr = NonNull::new(p.cast::<u8>()).ok_or_else(|| io::Error::from(io::ErrorKind::AddrNotAvailable))?;
        Ok(MappedPages { ptr, len })
    }

    /// Issues `HYPERVISOR_dm_op(domid, bufs)`. `bufs[0]` holds a `struct xen_dm_op`; Xen may write
    /// results back into any buffer.
    pub fn dm_op(&self, domid: u16, bufs: &mut [&mut [u8]]) -> io::Result<()> {
        if bufs.is_empty() || bufs.len() > DM_OP_MAX_BUFS || bufs.iter().any(|b| b.len() > DM_OP_MAX_BUF_SIZE) {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "dm_op: 1 to 16 buffers of at most 4096 bytes"));
        }
        let ubufs: Vec<PrivcmdDmOpBuf> =
            bufs.iter_mut().map(|b| PrivcmdDmOpBuf { uptr: b.as_mut_ptr().cast(), size: b.len() }).collect();
        let arg = PrivcmdDmOp { dom: domid, num: ubufs.len() as u16, ubufs: ubufs.as_ptr() };
        // SAFETY: `arg` and `ubufs` live across the call and every `uptr/size` pair describes a
        // buffer we exclusively borrow (`&mut`), so the kernel's reads and writes stay inside them.
        let rc = unsafe { libc::ioctl(self.file.as_raw_fd(), IOCTL_PRIVCMD_DM_OP, &arg as *const PrivcmdDmOp) };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Maps `num` frames of resource `ty`/`id` of `domid` starting at frame `idx`
    /// (`XENMEM_acquire_resource`).
    pub fn mmap_resource(&self, domid: u16, ty: u32, id: u32, idx: u32, num: usize) -> io::Result<MappedPages> {
        let pages = self.reserve(num)?;
        let arg = PrivcmdMmapResource { dom: domid, ty, id, idx, num: num as u64, addr: pages.ptr.as_ptr() as u64 };
        // SAFETY: `arg.addr` names the start of a privcmd VMA of exactly `num` pages that we own
        // (`pages`), which is what the driver requires; it only replaces the pages of that VMA.
        let rc = unsafe {
            libc::ioctl(self.file.as_raw_fd(), IOCTL_PRIVCMD_MMAP_RESOURCE, &arg as *const PrivcmdMmapResource)
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(pages)
    }

    /// Maps the guest frames `gfns` of `domid` contiguously. Returns the mapping and one error code
    /// per page (0 = mapped, else a negative errno; such pages fault if touched, so callers must
    /// check before access).
    pub fn mmap_foreign_batch(&self, domid: u16, gfns: &[u64]) -> io::Result<(MappedPages, Vec<i32>)> {
        let num = u32::try_from(gfns.len()).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        let pages = self.reserve(gfns.len())?;
        let mut errs = vec![0i32; gfns.len()];
        let arg = PrivcmdMmapBatchV2 {
            dom: domid,
            num,
            addr: pages.ptr.as_ptr() as u64,
            arr: gfns.as_ptr(),
            err: errs.as_mut_ptr(),
        };
        // SAFETY: `arr` has `num` readable entries and `err` `num` writable ones, both alive across
        // the call; `addr` is the start of our privcmd VMA of `num` pages.
        let rc = unsafe {
            libc::ioctl(self.file.as_raw_fd(), IOCTL_PRIVCMD_MMAPBATCH_V2, &arg as *const PrivcmdMmapBatchV2)
        };
        if rc < 0 {
            let e = io::Error::last_os_error();
            // ENOENT: the call worked but some frames are paged out; `errs` says which.
            if e.raw_os_error() != Some(libc::ENOENT) {
                return Err(e);
            }
        }
        Ok((pages, errs))
    }

    /// Restricts this fd to hypercalls about `domid` (`-xen-domid-restrict`); irreversible.
    pub fn restrict(&self, domid: u16) -> io::Result<()> {
        let dom = domid;
        // SAFETY: the driver reads one `domid_t` from the pointer, which is valid for the call.
        let rc = unsafe { libc::ioctl(self.file.as_raw_fd(), IOCTL_PRIVCMD_RESTRICT, &dom as *const u16) };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::{align_of, offset_of, size_of};

    #[test]
    fn ioctl_structs_have_the_kernel_layout() {
        assert_eq!(size_of::<PrivcmdMmapBatchV2>(), 32);
        assert_eq!((offset_of!(PrivcmdMmapBatchV2, dom), offset_of!(PrivcmdMmapBatchV2, addr)), (4, 8));
        assert_eq!((offset_of!(PrivcmdMmapBatchV2, arr), offset_of!(PrivcmdMmapBatchV2, err)), (16, 24));
        assert_eq!(size_of::<PrivcmdDmOpBuf>(), 16);
        assert_eq!(size_of::<PrivcmdDmOp>(), 16);
        assert_eq!(offset_of!(PrivcmdDmOp, ubufs), 8);
        assert_eq!(size_of::<PrivcmdMmapResource>(), 32);
        assert_eq!(
            [
                offset_of!(PrivcmdMmapResource, ty),
                offset_of!(PrivcmdMmapResource, id),
                offset_of!(PrivcmdMmapResource, idx)
            ],
            [4, 8, 12]
        );
        assert_eq!((offset_of!(PrivcmdMmapResource, num), offset_of!(PrivcmdMmapResource, addr)), (16, 24));
        assert_eq!(align_of::<PrivcmdMmapResource>(), 8);
    }

    #[test]
    fn memory_reservation_has_the_memory_h_layout() {
        assert_eq!(size_of::<PrivcmdHypercall>(), 48);
        assert_eq!(size_of::<XenMemoryReservation>(), 32);
        assert_eq!(
            [
                offset_of!(XenMemoryReservation, nr_extents),
                offset_of!(XenMemoryReservation, extent_order),
                offset_of!(XenMemoryReservation, mem_flags),
                offset_of!(XenMemoryReservation, domid)
            ],
            [8, 16, 20, 24]
        );
        assert_eq!(POPULATE_BATCH, 508);
    }

    #[test]
    fn ioctl_numbers_match_the_uapi_header() {
        // _IOC(_IOC_NONE, 'P', nr, size) with the sizes above.
        assert_eq!(IOCTL_PRIVCMD_HYPERCALL, 0x0030_5000);
        assert_eq!(IOCTL_PRIVCMD_MMAPBATCH_V2, 0x0020_5004);
        assert_eq!(IOCTL_PRIVCMD_DM_OP, 0x0010_5005);
        assert_eq!(IOCTL_PRIVCMD_RESTRICT, 0x0002_5006);
        assert_eq!(IOCTL_PRIVCMD_MMAP_RESOURCE, 0x0020_5007);
    }

    #[test]
    fn opening_without_xen_explains_what_is_missing() {
        if std::path::Path::new(PRIVCMD_PATH).exists() {
            return; // running on Xen: nothing to check here
        }
        let e = Privcmd::open().unwrap_err();
        assert!(e.contains("/dev/xen/privcmd") && e.contains("xenfs"), "{e}");
    }
}
