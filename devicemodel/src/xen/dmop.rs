//! Typed device-model operations (`HYPERVISOR_dm_op`, xen/include/public/hvm/dm_op.h).
//!
//! Every operation is a `struct xen_dm_op { u32 op; u32 pad; union u; }` in buffer 0, plus extra
//! buffers for arrays (dirty bitmaps, modified-memory extents). The payload structs are declared
//! `#[repr(C)]` with the header's field order and explicit padding; their sizes and offsets are
//! asserted in the tests, and encoding writes each field at its `offset_of!` position so the layout
//! has one source.
//!
//! Operations go through a [`DmOpTransport`] (privcmd in production, a recording fake in tests).

use std::fmt;
use std::io;
use std::mem::{offset_of, size_of};
use std::sync::Arc;

use super::privcmd::Privcmd;

/// Something that can issue `dm_op` hypercalls for a domain.
pub trait DmOpTransport: Send + Sync {
    fn dm_op(&self, domid: u16, bufs: &mut [&mut [u8]]) -> io::Result<()>;
}

impl DmOpTransport for Privcmd {
    fn dm_op(&self, domid: u16, bufs: &mut [&mut [u8]]) -> io::Result<()> {
        Privcmd::dm_op(self, domid, bufs)
    }
}

// ---- operation numbers (dm_op.h) ----
pub const XEN_DMOP_CREATE_IOREQ_SERVER: u32 = 1;
pub const XEN_DMOP_GET_IOREQ_SERVER_INFO: u32 = 2;
pub const XEN_DMOP_MAP_IO_RANGE_TO_IOREQ_SERVER: u32 = 3;
pub const XEN_DMOP_UNMAP_IO_RANGE_FROM_IOREQ_SERVER: u32 = 4;
pub const XEN_DMOP_SET_IOREQ_SERVER_STATE: u32 = 5;
pub const XEN_DMOP_DESTROY_IOREQ_SERVER: u32 = 6;
pub const XEN_DMOP_TRACK_DIRTY_VRAM: u32 = 7;
pub const XEN_DMOP_SET_PCI_INTX_LEVEL: u32 = 8;
pub const XEN_DMOP_SET_ISA_IRQ_LEVEL: u32 = 9;
pub const XEN_DMOP_SET_PCI_LINK_ROUTE: u32 = 10;
pub const XEN_DMOP_MODIFIED_MEMORY: u32 = 11;
pub const XEN_DMOP_SET_MEM_TYPE: u32 = 12;
pub const XEN_DMOP_INJECT_MSI: u32 = 14;
pub const XEN_DMOP_REMOTE_SHUTDOWN: u32 = 16;
pub const XEN_DMOP_RELOCATE_MEMORY: u32 = 17;
pub const XEN_DMOP_PIN_MEMORY_CACHEATTR: u32 = 18;
pub const XEN_DMOP_NR_VCPUS: u32 = 20;

/// `XEN_DMOP_no_gfns`: do not ask for the legacy gfn mapping of the ioreq pages.
pub const XEN_DMOP_NO_GFNS: u16 = 1;

/// `HVM_IOREQSRV_BUFIOREQ_*` (hvm_op.h).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BufIoreq {
    Off = 0,
    Legacy = 1,
    Atomic = 2,
}

/// `XEN_DMOP_IO_RANGE_*`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IoRangeType {
    Port = 0,
    Memory = 1,
    /// `start`/`end` are `XEN_DMOP_PCI_SBDF(seg, bus, dev, fn)`.
    Pci = 2,
}

/// `XEN_DMOP_PCI_SBDF`.
pub const fn pci_sbdf(seg: u16, bus: u8, dev: u8, func: u8) -> u64 {
    ((seg as u64) << 16) | ((bus as u64) << 8) | (((dev & 0x1f) as u64) << 3) | (func & 7) as u64
}

/// `hvmmem_type_t` (hvm_op.h).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HvmMemType {
    RamRw = 0,
    RamRo = 1,
    MmioDm = 2,
}

/// `enum sched_shutdown_reason` (sched.h) for `remote_shutdown`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShutdownReason {
    Poweroff = 0,
    Reboot = 1,
    Suspend = 2,
    Crash = 3,
}

/// `XEN_DMOP_MEM_CACHEATTR_WB`, what QEMU pins VRAM to.
pub const XEN_DMOP_MEM_CACHEATTR_WB: u32 = 6;

// ---- the header and union members (dm_op.h), x86-64 layout ----

#[repr(C)]
struct XenDmOpHeader {
    op: u32,
    pad: u32,
}
/// Offset of the union in `struct xen_dm_op`.
const UNION: usize = size_of::<XenDmOpHeader>();
/// `sizeof(struct xen_dm_op)`: the largest members are 24 bytes.
pub const XEN_DM_OP_SIZE: usize = 32;

#[repr(C)]
struct CreateIoreqServer {
    handle_bufioreq: u8,
    pad: [u8; 3],
    id: u16,
}
#[repr(C)]
struct GetIoreqServerInfo {
    id: u16,
    flags: u16,
    bufioreq_port: u32,
    ioreq_gfn: u64,
    bufioreq_gfn: u64,
}
#[repr(C)]
struct IoreqServerRange {
    id: u16,
    pad: u16,
    ty: u32,
    start: u64,
    end: u64,
}
#[repr(C)]
struct SetIoreqServerState {
    id: u16,
    enabled: u8,
    pad: u8,
}
#[repr(C)]
struct DestroyIoreqServer {
    id: u16,
    pad: u16,
}
#[repr(C)]
struct TrackDirtyVram {
    nr: u32,
    pad: u32,
    first_pfn: u64,
}
#[repr(C)]
struct SetPciIntxLevel {
    domain: u16,
    bus: u8,
    device: u8,
    intx: u8,
    level: u8,
}
#[repr(C)]
struct SetIsaIrqLevel {
    isa_irq: u8,
    level: u8,
}
#[repr(C)]
struct SetPciLinkRoute {
    link: u8,
    isa_irq: u8,
}
#[repr(C)]
struct ModifiedMemory {
    nr_extents: u32,
    opaque: u32,
}
/// `struct xen_dm_op_modified_memory_extent`, in buffer 1.
#[repr(C)]
struct ModifiedMemoryExtent {
    nr: u32,
    pad: u32,
    first_pfn: u64,
}
#[repr(C)]
struct SetMemType {
    nr: u32,
    mem_type: u16,
    pad: u16,
    first_pfn: u64,
}
#[repr(C)]
struct InjectMsi {
    data: u32,
    pad: u32,
    addr: u64,
}
#[repr(C)]
struct RemoteShutdown {
    reason: u32,
}
#[repr(C)]
struct RelocateMemory {
    size: u32,
    pad: u32,
    src_gfn: u64,
    dst_gfn: u64,
}
#[repr(C)]
struct PinMemoryCacheattr {
    start: u64,
    end: u64,
    ty: u32,
    pad: u32,
}
#[repr(C)]
struct NrVcpus {
    vcpus: u32,
}

/// Writes `value` (little-endian, x86) at the field's offset inside the union.
macro_rules! put {
    ($buf:expr, $ty:ty, $field:ident, $value:expr) => {{
        let bytes = $value.to_le_bytes();
        let at = UNION + offset_of!($ty, $field);
        $buf[at..at + bytes.len()].copy_from_slice(&bytes);
    }};
}

/// Reads the field back out of the union (Xen's OUT values).
macro_rules! get {
    ($buf:expr, $ty:ty, $field:ident, $int:ty) => {{
        let at = UNION + offset_of!($ty, $field);
        let mut bytes = [0u8; size_of::<$int>()];
        bytes.copy_from_slice(&$buf[at..at + size_of::<$int>()]);
        <$int>::from_le_bytes(bytes)
    }};
}

/// A failed DMOP: which operation, and the errno.
#[derive(Debug)]
pub struct DmOpError {
    pub op: &'static str,
    pub error: io::Error,
}

impl DmOpError {
    pub fn errno(&self) -> Option<i32> {
        self.error.raw_os_error()
    }
}

impl fmt::Display for DmOpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.op, self.error)
    }
}

impl std::error::Error for DmOpError {}

/// What `get_ioreq_server_info` reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IoreqServerInfo {
    /// The event channel (in the guest) for buffered requests; 0 without a buffered ring.
    pub bufioreq_port: u32,
    pub ioreq_gfn: u64,
    pub bufioreq_gfn: u64,
}

/// The result of `track_dirty_vram`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DirtyVram {
    /// One bit per page, LSB first.
    Bitmap(Vec<u8>),
    /// Xen could not track (`ENODATA`, e.g. log-dirty for migration is active): treat all as dirty.
    AllDirty,
}

/// Extents per `modified_memory` call: one 4096-byte buffer of 16-byte extents.
pub const MODIFIED_MEMORY_MAX_EXTENTS: usize = 4096 / size_of::<ModifiedMemoryExtent>();

/// The DMOPs of one target domain.
#[derive(Clone)]
pub struct DeviceModelOps {
    transport: Arc<dyn DmOpTransport>,
    domid: u16,
}

impl fmt::Debug for DeviceModelOps {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceModelOps").field("domid", &self.domid).finish()
    }
}

impl DeviceModelOps {
    pub fn new(transport: Arc<dyn DmOpTransport>, domid: u16) -> Self {
        DeviceModelOps { transport, domid }
    }

    pub fn domid(&self) -> u16 {
        self.domid
    }

    fn call(
        &self,
        op: u32,
        name: &'static str,
        fill: impl FnOnce(&mut [u8; XEN_DM_OP_SIZE]),
        extra: Option<&mut [u8]>,
    ) -> Result<[u8; XEN_DM_OP_SIZE], DmOpError> {
        let mut buf = [0u8; XEN_DM_OP_SIZE];
        buf[..4].copy_from_slice(&op.to_le_bytes());
        fill(&mut buf);
        let result = match extra {
            Some(extra) => self.transport.dm_op(self.domid, &mut [&mut buf[..], extra]),
            None => self.transport.dm_op(self.domid, &mut [&mut buf[..]]),
        };
        result.map_err(|error| DmOpError { op: name, error })?;
        Ok(buf)
    }

    /// Creates an ioreq server; returns its id.
    pub fn create_ioreq_server(&self, handle_bufioreq: BufIoreq) -> Result<u16, DmOpError> {
        let out = self.call(
            XEN_DMOP_CREATE_IOREQ_SERVER,
            "XEN_DMOP_create_ioreq_server",
            |b| put!(b, CreateIoreqServer, handle_bufioreq, handle_bufioreq as u8),
            None,
        )?;
        Ok(get!(out, CreateIoreqServer, id, u16))
    }

    /// Asks for the buffered-ioreq event channel. With `no_gfns` Xen does not map the ioreq pages
    /// into the guest's physmap (we map them through `XENMEM_acquire_resource` instead).
    pub fn get_ioreq_server_info(&self, id: u16, no_gfns: bool) -> Result<IoreqServerInfo, DmOpError> {
        let flags = if no_gfns { XEN_DMOP_NO_GFNS } else { 0 };
        let out = self.call(
            XEN_DMOP_GET_IOREQ_SERVER_INFO,
            "XEN_DMOP_get_ioreq_server_info",
            |b| {
                put!(b, GetIoreqServerInfo, id, id);
                put!(b, GetIoreqServerInfo, flags, flags);
            },
            None,
        )?;
        Ok(IoreqServerInfo {
            bufioreq_port: get!(out, GetIoreqServerInfo, bufioreq_port, u32),
            ioreq_gfn: get!(out, GetIoreqServerInfo, ioreq_gfn, u64),
            bufioreq_gfn: get!(out, GetIoreqServerInfo, bufioreq_gfn, u64),
        })
    }

    fn io_range(
        &self,
        op: u32,
        name: &'static str,
        id: u16,
        ty: IoRangeType,
        start: u64,
        end: u64,
    ) -> Result<(), DmOpError> {
        if end < start {
            return Err(DmOpError {
                op: name,
                error: io::Error::new(io::ErrorKind::InvalidInput, format!("range {start:#x}-{end:#x} is empty")),
            });
        }
        self.call(
            op,
            name,
            |b| {
                put!(b, IoreqServerRange, id, id);
                put!(b, IoreqServerRange, ty, ty as u32);
                put!(b, IoreqServerRange, start, start);
                put!(b, IoreqServerRange, end, end);
            },
            None,
        )
        .map(drop)
    }

    /// Claims `start..=end` (inclusive) of the given space for server `id`.
    pub fn map_io_range_to_ioreq_server(
        &self,
        id: u16,
        ty: IoRangeType,
        start: u64,
        end: u64,
    ) -> Result<(), DmOpError> {
        self.io_range(
            XEN_DMOP_MAP_IO_RANGE_TO_IOREQ_SERVER,
            "XEN_DMOP_map_io_range_to_ioreq_server",
            id,
            ty,
            start,
            end,
        )
    }

    pub fn unmap_io_range_from_ioreq_server(
        &self,
        id: u16,
        ty: IoRangeType,
        start: u64,
        end: u64,
    ) -> Result<(), DmOpError> {
        self.io_range(
            XEN_DMOP_UNMAP_IO_RANGE_FROM_IOREQ_SERVER,
            "XEN_DMOP_unmap_io_range_from_ioreq_server",
            id,
            ty,
            start,
            end,
        )
    }

    pub fn set_ioreq_server_state(&self, id: u16, enabled: bool) -> Result<(), DmOpError> {
        self.call(
            XEN_DMOP_SET_IOREQ_SERVER_STATE,
            "XEN_DMOP_set_ioreq_server_state",
            |b| {
                put!(b, SetIoreqServerState, id, id);
                put!(b, SetIoreqServerState, enabled, enabled as u8);
            },
            None,
        )
        .map(drop)
    }

    pub fn destroy_ioreq_server(&self, id: u16) -> Result<(), DmOpError> {
        self.call(
            XEN_DMOP_DESTROY_IOREQ_SERVER,
            "XEN_DMOP_destroy_ioreq_server",
            |b| put!(b, DestroyIoreqServer, id, id),
            None,
        )
        .map(drop)
    }

    /// Which of `nr` pages from `first_pfn` the guest wrote since the last call; `nr == 0` stops
    /// tracking.
    pub fn track_dirty_vram(&self, first_pfn: u64, nr: u32) -> Result<DirtyVram, DmOpError> {
        let name = "XEN_DMOP_track_dirty_vram";
        let len = (nr as usize).div_ceil(8);
        if len > crate::xen::privcmd::DM_OP_MAX_BUF_SIZE {
            return Err(DmOpError {
                op: name,
                error: io::Error::new(io::ErrorKind::InvalidInput, "more than 32768 pages"),
            });
        }
        let mut bitmap = vec![0u8; len];
        let fill = |b: &mut [u8; XEN_DM_OP_SIZE]| {
            put!(b, TrackDirtyVram, nr, nr);
            put!(b, TrackDirtyVram, first_pfn, first_pfn);
        };
        let extra = if len > 0 { Some(&mut bitmap[..]) } else { None };
        match self.call(XEN_DMOP_TRACK_DIRTY_VRAM, name, fill, extra) {
            Ok(_) => Ok(DirtyVram::Bitmap(bitmap)),
            Err(e) if e.errno() == Some(libc::ENODATA) => Ok(DirtyVram::AllDirty),
            Err(e) => Err(e),
        }
    }

    /// Sets the level of INTx pin `intx` (0-3 = INTA-INTD) of PCI `domain:bus:device`.
    pub fn set_pci_intx_level(
        &self,
        domain: u16,
        bus: u8,
        device: u8,
        intx: u8,
        asserted: bool,
    ) -> Result<(), DmOpError> {
        self.call(
            XEN_DMOP_SET_PCI_INTX_LEVEL,
            "XEN_DMOP_set_pci_intx_level",
            |b| {
                put!(b, SetPciIntxLevel, domain, domain);
                put!(b, SetPciIntxLevel, bus, bus);
                put!(b, SetPciIntxLevel, device, device);
                put!(b, SetPciIntxLevel, intx, intx);
                put!(b, SetPciIntxLevel, level, asserted as u8);
            },
            None,
        )
        .map(drop)
    }

    pub fn set_isa_irq_level(&self, isa_irq: u8, asserted: bool) -> Result<(), DmOpError> {
        self.call(
            XEN_DMOP_SET_ISA_IRQ_LEVEL,
            "XEN_DMOP_set_isa_irq_level",
            |b| {
                put!(b, SetIsaIrqLevel, isa_irq, isa_irq);
                put!(b, SetIsaIrqLevel, level, asserted as u8);
            },
            None,
        )
        .map(drop)
    }

    /// Routes PCI link `link` (0-3 = PIRQA-D) to ISA IRQ `isa_irq` (1-15); 0 disables the link.
    pub fn set_pci_link_route(&self, link: u8, isa_irq: u8) -> Result<(), DmOpError> {
        self.call(
            XEN_DMOP_SET_PCI_LINK_ROUTE,
            "XEN_DMOP_set_pci_link_route",
            |b| {
                put!(b, SetPciLinkRoute, link, link);
                put!(b, SetPciLinkRoute, isa_irq, isa_irq);
            },
            None,
        )
        .map(drop)
    }

    /// Reports pages the device model wrote (`(first_pfn, nr)` runs) to Xen's log-dirty tracking,
    /// in as many calls as needed.
    pub fn modified_memory(&self, extents: &[(u64, u32)]) -> Result<(), DmOpError> {
        let stride = size_of::<ModifiedMemoryExtent>();
        for chunk in extents.chunks(MODIFIED_MEMORY_MAX_EXTENTS) {
            let mut list = vec![0u8; chunk.len() * stride];
            for (i, &(first_pfn, nr)) in chunk.iter().enumerate() {
                let e = &mut list[i * stride..(i + 1) * stride];
                e[offset_of!(ModifiedMemoryExtent, nr)..][..4].copy_from_slice(&nr.to_le_bytes());
                e[offset_of!(ModifiedMemoryExtent, first_pfn)..][..8].copy_from_slice(&first_pfn.to_le_bytes());
            }
            self.call(
                XEN_DMOP_MODIFIED_MEMORY,
                "XEN_DMOP_modified_memory",
                |b| put!(b, ModifiedMemory, nr_extents, chunk.len() as u32),
                Some(&mut list[..]),
            )?;
        }
        Ok(())
    }

    pub fn set_mem_type(&self, mem_type: HvmMemType, first_pfn: u64, nr: u32) -> Result<(), DmOpError> {
        self.call(
            XEN_DMOP_SET_MEM_TYPE,
            "XEN_DMOP_set_mem_type",
            |b| {
                put!(b, SetMemType, nr, nr);
                put!(b, SetMemType, mem_type, mem_type as u16);
                put!(b, SetMemType, first_pfn, first_pfn);
            },
            None,
        )
        .map(drop)
    }

    pub fn inject_msi(&self, addr: u64, data: u32) -> Result<(), DmOpError> {
        self.call(
            XEN_DMOP_INJECT_MSI,
            "XEN_DMOP_inject_msi",
            |b| {
                put!(b, InjectMsi, data, data);
                put!(b, InjectMsi, addr, addr);
            },
            None,
        )
        .map(drop)
    }

    pub fn remote_shutdown(&self, reason: ShutdownReason) -> Result<(), DmOpError> {
        self.call(
            XEN_DMOP_REMOTE_SHUTDOWN,
            "XEN_DMOP_remote_shutdown",
            |b| put!(b, RemoteShutdown, reason, reason as u32),
            None,
        )
        .map(drop)
    }

    /// Moves `size` guest frames from `src_gfn` to `dst_gfn` (VRAM into the VGA BAR).
    pub fn relocate_memory(&self, src_gfn: u64, dst_gfn: u64, size: u32) -> Result<(), DmOpError> {
        self.call(
            XEN_DMOP_RELOCATE_MEMORY,
            "XEN_DMOP_relocate_memory",
            |b| {
                put!(b, RelocateMemory, size, size);
                put!(b, RelocateMemory, src_gfn, src_gfn);
                put!(b, RelocateMemory, dst_gfn, dst_gfn);
            },
            None,
        )
        .map(drop)
    }

    /// Pins the cache attribute of gfns `start..=end`.
    pub fn pin_memory_cacheattr(&self, start: u64, end: u64, ty: u32) -> Result<(), DmOpError> {
        self.call(
            XEN_DMOP_PIN_MEMORY_CACHEATTR,
            "XEN_DMOP_pin_memory_cacheattr",
            |b| {
                put!(b, PinMemoryCacheattr, start, start);
                put!(b, PinMemoryCacheattr, end, end);
                put!(b, PinMemoryCacheattr, ty, ty);
            },
            None,
        )
        .map(drop)
    }

    /// How many vCPUs the domain was created with (the number of ioreq slots).
    pub fn nr_vcpus(&self) -> Result<u32, DmOpError> {
        let out = self.call(XEN_DMOP_NR_VCPUS, "XEN_DMOP_nr_vcpus", |_| {}, None)?;
        Ok(get!(out, NrVcpus, vcpus, u32))
    }
}

/// A transport that records every call and answers from a script; for unit tests of the code
/// that issues DMOPs (interrupts, dirty tracking, the ioreq server setup).
#[cfg(test)]
pub mod testing {
    use super::*;
    use std::sync::Mutex;

    /// One recorded call: the domain, and a copy of every buffer as the caller passed it.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct Call {
        pub domid: u16,
        pub bufs: Vec<Vec<u8>>,
    }

    impl Call {
        pub fn op(&self) -> u32 {
            u32::from_le_bytes(self.bufs[0][..4].try_into().unwrap())
        }
        /// Little-endian integer of `len` bytes at `offset` of the union.
        pub fn field(&self, offset: usize, len: usize) -> u64 {
            let mut b = [0u8; 8];
            b[..len].copy_from_slice(&self.bufs[0][UNION + offset..UNION + offset + len]);
            u64::from_le_bytes(b)
        }
    }

    type Responder = Box<dyn Fn(&mut [&mut [u8]]) -> io::Result<()> + Send + Sync>;

    #[derive(Default)]
    pub struct RecordingTransport {
        pub calls: Mutex<Vec<Call>>,
        responder: Mutex<Option<Responder>>,
    }

    impl RecordingTransport {
        pub fn new() -> Arc<Self> {
            Arc::new(Self::default())
        }
        /// Runs `f` on every later call's buffers (to fill OUT fields or fail).
        pub fn respond(&self, f: impl Fn(&mut [&mut [u8]]) -> io::Result<()> + Send + Sync + 'static) {
            *self.responder.lock().unwrap() = Some(Box::new(f));
        }
        pub fn take(&self) -> Vec<Call> {
            std::mem::take(&mut self.calls.lock().unwrap())
        }
    }

    impl DmOpTransport for RecordingTransport {
        fn dm_op(&self, domid: u16, bufs: &mut [&mut [u8]]) -> io::Result<()> {
            self.calls.lock().unwrap().push(Call { domid, bufs: bufs.iter().map(|b| b.to_vec()).collect() });
            match &*self.responder.lock().unwrap() {
                Some(f) => f(bufs),
                None => Ok(()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::RecordingTransport;
    use super::*;

    fn ops() -> (Arc<RecordingTransport>, DeviceModelOps) {
        let t = RecordingTransport::new();
        (t.clone(), DeviceModelOps::new(t, 7))
    }

    #[test]
    fn payload_structs_have_the_dm_op_h_layout() {
        assert_eq!(size_of::<CreateIoreqServer>(), 6);
        assert_eq!(offset_of!(CreateIoreqServer, id), 4);
        assert_eq!(size_of::<GetIoreqServerInfo>(), 24);
        assert_eq!(
            [
                offset_of!(GetIoreqServerInfo, bufioreq_port),
                offset_of!(GetIoreqServerInfo, ioreq_gfn),
                offset_of!(GetIoreqServerInfo, bufioreq_gfn)
            ],
            [4, 8, 16]
        );
        assert_eq!(size_of::<IoreqServerRange>(), 24);
        assert_eq!(
            [offset_of!(IoreqServerRange, ty), offset_of!(IoreqServerRange, start), offset_of!(IoreqServerRange, end)],
            [4, 8, 16]
        );
        assert_eq!(size_of::<SetIoreqServerState>(), 4);
        assert_eq!(size_of::<DestroyIoreqServer>(), 4);
        assert_eq!(size_of::<TrackDirtyVram>(), 16);
        assert_eq!(size_of::<SetPciIntxLevel>(), 6);
        assert_eq!(offset_of!(SetPciIntxLevel, level), 5);
        assert_eq!(size_of::<SetIsaIrqLevel>(), 2);
        assert_eq!(size_of::<SetPciLinkRoute>(), 2);
        assert_eq!(size_of::<ModifiedMemory>(), 8);
        assert_eq!(size_of::<ModifiedMemoryExtent>(), 16);
        assert_eq!(size_of::<SetMemType>(), 16);
        assert_eq!(offset_of!(SetMemType, first_pfn), 8);
        assert_eq!(size_of::<InjectMsi>(), 16);
        assert_eq!(offset_of!(InjectMsi, addr), 8);
        assert_eq!(size_of::<RemoteShutdown>(), 4);
        assert_eq!(size_of::<RelocateMemory>(), 24);
        assert_eq!(size_of::<PinMemoryCacheattr>(), 24);
        assert_eq!(offset_of!(PinMemoryCacheattr, ty), 16);
        assert_eq!(size_of::<NrVcpus>(), 4);
        assert_eq!(UNION, 8);
        assert_eq!(MODIFIED_MEMORY_MAX_EXTENTS, 256);
    }

    #[test]
    fn create_ioreq_server_sends_the_mode_and_returns_xens_id() {
        let (t, dm) = ops();
        t.respond(|bufs| {
            bufs[0][UNION + 4..UNION + 6].copy_from_slice(&3u16.to_le_bytes());
            Ok(())
        });
        assert_eq!(dm.create_ioreq_server(BufIoreq::Atomic).unwrap(), 3);
        let calls = t.take();
        assert_eq!(calls.len(), 1);
        assert_eq!((calls[0].domid, calls[0].op(), calls[0].field(0, 1)), (7, 1, 2));
        assert_eq!(calls[0].bufs[0].len(), 32);
        assert_eq!(&calls[0].bufs[0][4..8], &[0; 4], "header pad must be zero");
    }

    #[test]
    fn io_ranges_are_inclusive_and_typed() {
        let (t, dm) = ops();
        dm.map_io_range_to_ioreq_server(2, IoRangeType::Port, 0xcf8, 0xcff).unwrap();
        dm.unmap_io_range_from_ioreq_server(2, IoRangeType::Pci, pci_sbdf(0, 0, 2, 0), pci_sbdf(0, 0, 2, 0)).unwrap();
        assert!(dm.map_io_range_to_ioreq_server(2, IoRangeType::Memory, 0x2000, 0x1fff).is_err());
        let c = t.take();
        assert_eq!(c.len(), 2, "an empty range never reaches Xen");
        assert_eq!(
            (c[0].op(), c[0].field(0, 2), c[0].field(4, 4), c[0].field(8, 8), c[0].field(16, 8)),
            (3, 2, 0, 0xcf8, 0xcff)
        );
        assert_eq!((c[1].op(), c[1].field(4, 4), c[1].field(8, 8)), (4, 2, 0x10));
    }

    #[test]
    fn interrupt_ops_encode_their_fields() {
        let (t, dm) = ops();
        dm.set_isa_irq_level(9, true).unwrap();
        dm.set_pci_intx_level(0, 0, 3, 1, false).unwrap();
        dm.set_pci_link_route(2, 11).unwrap();
        dm.inject_msi(0xfee0_1000, 0x4041).unwrap();
        let c = t.take();
        assert_eq!((c[0].op(), c[0].field(0, 1), c[0].field(1, 1)), (9, 9, 1));
        assert_eq!((c[1].op(), c[1].field(3, 1), c[1].field(4, 1), c[1].field(5, 1)), (8, 3, 1, 0));
        assert_eq!((c[2].op(), c[2].field(0, 1), c[2].field(1, 1)), (10, 2, 11));
        assert_eq!((c[3].op(), c[3].field(0, 4), c[3].field(8, 8)), (14, 0x4041, 0xfee0_1000));
    }

    #[test]
    fn modified_memory_splits_into_full_buffers() {
        let (t, dm) = ops();
        let extents: Vec<(u64, u32)> = (0..300u64).map(|i| (i * 10, 2)).collect();
        dm.modified_memory(&extents).unwrap();
        let c = t.take();
        assert_eq!(c.len(), 2);
        assert_eq!((c[0].op(), c[0].field(0, 4), c[0].bufs[1].len()), (11, 256, 4096));
        assert_eq!((c[1].field(0, 4), c[1].bufs[1].len()), (44, 44 * 16));
        // Extent 1 of the second call is extent 257 overall: pfn 2570, 2 pages.
        let e = &c[1].bufs[1][16..32];
        assert_eq!(u32::from_le_bytes(e[0..4].try_into().unwrap()), 2);
        assert_eq!(u64::from_le_bytes(e[8..16].try_into().unwrap()), 2570);
    }

    #[test]
    fn errors_name_the_operation_and_errno() {
        let (t, dm) = ops();
        t.respond(|_| Err(io::Error::from_raw_os_error(libc::EPERM)));
        let e = dm.set_ioreq_server_state(1, true).unwrap_err();
        assert_eq!(e.errno(), Some(libc::EPERM));
        assert!(e.to_string().starts_with("XEN_DMOP_set_ioreq_server_state: "), "{e}");
    }

    #[test]
    fn track_dirty_vram_enodata_means_everything_is_dirty() {
        let (t, dm) = ops();
        t.respond(|bufs| {
            if bufs.len() > 1 {
                bufs[1][0] = 0b101;
            }
            Ok(())
        });
        assert_eq!(dm.track_dirty_vram(0xf0000, 16).unwrap(), DirtyVram::Bitmap(vec![0b101, 0]));
        t.respond(|_| Err(io::Error::from_raw_os_error(libc::ENODATA)));
        assert_eq!(dm.track_dirty_vram(0xf0000, 16).unwrap(), DirtyVram::AllDirty);
        assert!(dm.track_dirty_vram(0, 40000).is_err());
    }

    #[test]
    fn queries_read_xens_answers() {
        let (t, dm) = ops();
        t.respond(|bufs| {
            let op = u32::from_le_bytes(bufs[0][..4].try_into().unwrap());
            match op {
                XEN_DMOP_NR_VCPUS => bufs[0][UNION..UNION + 4].copy_from_slice(&4u32.to_le_bytes()),
                XEN_DMOP_GET_IOREQ_SERVER_INFO => bufs[0][UNION + 4..UNION + 8].copy_from_slice(&33u32.to_le_bytes()),
                _ => {}
            }
            Ok(())
        });
        assert_eq!(dm.nr_vcpus().unwrap(), 4);
        let info = dm.get_ioreq_server_info(1, true).unwrap();
        assert_eq!(info.bufioreq_port, 33);
        let c = t.take();
        assert_eq!(c[1].field(2, 2), XEN_DMOP_NO_GFNS as u64);
    }

    #[test]
    fn memory_ops_encode_their_fields() {
        let (t, dm) = ops();
        dm.set_mem_type(HvmMemType::RamRo, 0xc0, 0x40).unwrap();
        dm.relocate_memory(0x1000, 0xf0000, 0x800).unwrap();
        dm.pin_memory_cacheattr(0xf0000, 0xf07ff, XEN_DMOP_MEM_CACHEATTR_WB).unwrap();
        dm.remote_shutdown(ShutdownReason::Reboot).unwrap();
        dm.destroy_ioreq_server(5).unwrap();
        let c = t.take();
        assert_eq!((c[0].op(), c[0].field(0, 4), c[0].field(4, 2), c[0].field(8, 8)), (12, 0x40, 1, 0xc0));
        assert_eq!((c[1].op(), c[1].field(0, 4), c[1].field(8, 8), c[1].field(16, 8)), (17, 0x800, 0x1000, 0xf0000));
        assert_eq!((c[2].op(), c[2].field(0, 8), c[2].field(8, 8), c[2].field(16, 4)), (18, 0xf0000, 0xf07ff, 6));
        assert_eq!((c[3].op(), c[3].field(0, 4)), (16, 1));
        assert_eq!((c[4].op(), c[4].field(0, 2)), (6, 5));
    }
}
