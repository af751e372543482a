//! Xen ioreqs: the wire format (xen/include/public/hvm/ioreq.h), a pure decoder, the dispatch of a
//! decoded request onto the machine's [`IoBus`], and one step of the shared-page handshake.
//!
//! Everything a guest can influence arrives here: Xen fills the 32-byte `struct ioreq` from the
//! guest's instruction (port, address, size, rep count, direction flag, guest-physical pointer).
//! So the slot is copied once into private memory (XSA-166/197: never fetch twice), validated
//! completely before any access, and a malformed request is still answered (reads return all
//! ones, writes are dropped) with a rate-limited log; it never panics and never stalls the vCPU.
//!
//! This module only depends on `devices`, so the fuzz target can include it as it is.

use devices::bus::IoBus;
use devices::memory::GuestMemory;
use devices::pci::PciAddress;

/// `sizeof(struct ioreq)`.
pub const IOREQ_SIZE: usize = 32;

// `STATE_*` (ioreq.h).
pub const STATE_IOREQ_NONE: u8 = 0;
pub const STATE_IOREQ_READY: u8 = 1;
pub const STATE_IOREQ_INPROCESS: u8 = 2;
pub const STATE_IORESP_READY: u8 = 3;

// `IOREQ_TYPE_*` (ioreq.h). Types 2-6 and 9 of old Xen (AND, OR, ...) are gone: PCI_CONFIG took 2.
pub const IOREQ_TYPE_PIO: u8 = 0;
pub const IOREQ_TYPE_COPY: u8 = 1;
pub const IOREQ_TYPE_PCI_CONFIG: u8 = 2;
pub const IOREQ_TYPE_TIMEOFFSET: u8 = 7;
pub const IOREQ_TYPE_INVALIDATE: u8 = 8;

/// `struct ioreq` as Xen lays it out; the flags byte holds `state:4, data_is_ptr:1, dir:1, df:1,
/// _pad1:1` from bit 0 up (x86 GCC bitfield order). Only used for the layout assertions: decoding
/// works on the byte copy so that nothing is read from shared memory twice.
#[repr(C)]
pub struct IoreqWire {
    pub addr: u64,
    pub data: u64,
    pub count: u32,
    pub size: u32,
    pub vp_eport: u32,
    pub pad0: u16,
    pub flags: u8,
    pub ty: u8,
}

/// Offsets in `struct ioreq`.
pub const OFFSET_DATA: usize = 8;
pub const OFFSET_VP_EPORT: usize = 24;
pub const OFFSET_FLAGS: usize = 30;
const FLAG_STATE_MASK: u8 = 0x0f;
const FLAG_DATA_IS_PTR: u8 = 1 << 4;
const FLAG_DIR_READ: u8 = 1 << 5;
const FLAG_DF: u8 = 1 << 6;

/// Upper bound on a rep count. Xen bounds reps by what fits in a page of the guest's buffer
/// (4096 byte-sized elements at most), so a larger count is a corrupt or hostile request.
pub const MAX_REP_COUNT: u32 = 4096;

/// The fields of one ioreq slot, as copied out of the shared page.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RawIoreq {
    pub addr: u64,
    pub data: u64,
    pub count: u32,
    pub size: u32,
    pub vp_eport: u32,
    pub state: u8,
    pub data_is_ptr: bool,
    /// `dir`: true = IOREQ_READ (device to guest).
    pub read: bool,
    pub df: bool,
    pub ty: u8,
}

impl RawIoreq {
    pub fn from_bytes(b: &[u8; IOREQ_SIZE]) -> Self {
        let u64_at =
            |o: usize| u64::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3], b[o + 4], b[o + 5], b[o + 6], b[o + 7]]);
        let u32_at = |o: usize| u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]);
        let flags = b[OFFSET_FLAGS];
        RawIoreq {
            addr: u64_at(0),
            data: u64_at(OFFSET_DATA),
            count: u32_at(16),
            size: u32_at(20),
            vp_eport: u32_at(OFFSET_VP_EPORT),
            state: flags & FLAG_STATE_MASK,
            data_is_ptr: flags & FLAG_DATA_IS_PTR != 0,
            read: flags & FLAG_DIR_READ != 0,
            df: flags & FLAG_DF != 0,
            ty: b[31],
        }
    }

    /// The wire bytes (what Xen would write); for fakes and tests.
    pub fn wire(&self) -> [u8; IOREQ_SIZE] {
        let mut b = [0u8; IOREQ_SIZE];
        b[0..8].copy_from_slice(&self.addr.to_le_bytes());
        b[8..16].copy_from_slice(&self.data.to_le_bytes());
        b[16..20].copy_from_slice(&self.count.to_le_bytes());
        b[20..24].copy_from_slice(&self.size.to_le_bytes());
        b[24..28].copy_from_slice(&self.vp_eport.to_le_bytes());
        b[OFFSET_FLAGS] = (self.state & FLAG_STATE_MASK)
            | if self.data_is_ptr { FLAG_DATA_IS_PTR } else { 0 }
            | if self.read { FLAG_DIR_READ } else { 0 }
            | if self.df { FLAG_DF } else { 0 };
        b[31] = self.ty;
        b
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dir {
    /// Device to guest (`in`, MMIO load).
    Read,
    /// Guest to device.
    Write,
}

/// Where the data of an access lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Data {
    /// In the ioreq itself (one element; for reads, the answer goes back here).
    Value(u64),
    /// In guest RAM at this guest-physical address (`rep ins/outs/movs`): element `i` is at
    /// `gpa + i*size`, or `gpa - i*size` with the direction flag set.
    Guest(u64),
}

/// A validated port or MMIO access. `count` elements of `size` bytes; the device address steps by
/// `size` per element for MMIO (a port stays put).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Access<A> {
    pub addr: A,
    pub size: u8,
    pub count: u32,
    pub df: bool,
    pub dir: Dir,
    pub data: Data,
}

/// A decoded, validated ioreq.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request {
    Pio(Access<u16>),
    /// MMIO (`IOREQ_TYPE_COPY`).
    Copy(Access<u64>),
    /// A configuration access Xen decoded from 0xcf8/0xcfc itself. `reg` includes the byte offset
    /// and, for AMD extended configuration, bits above 0xff.
    PciConfig {
        segment: u16,
        address: PciAddress,
        reg: u32,
        size: u8,
        dir: Dir,
        value: u64,
    },
    /// Xen's RTC offset changed (broadcast, informational).
    TimeOffset(u64),
    /// The guest's physmap changed: drop all foreign mappings before answering.
    Invalidate,
}

/// What goes back into the slot: only `data`, and only for non-pointer reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Response {
    pub data: Option<u64>,
}

/// A request that fails validation, with the answer it still gets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Malformed {
    pub reason: String,
    pub response: Response,
}

/// All ones in the low `size` bytes (the value of an unclaimed read).
fn all_ones(size: u32) -> u64 {
    match size {
        1..=7 => (1u64 << (8 * size)) - 1,
        _ => u64::MAX,
    }
}

/// The guest-physical span `[low, low + len)` covered by `count` elements of `size` bytes from
/// `base`, stepping down with `df`. `None` if it wraps the address space.
pub fn rep_span(base: u64, size: u8, count: u32, df: bool) -> Option<(u64, usize)> {
    let size = size as u64;
    let steps = (count as u64).checked_sub(1)?.checked_mul(size)?;
    let low = if df { base.checked_sub(steps)? } else { base };
    let len = steps.checked_add(size)?;
    low.checked_add(len)?;
    Some((low, usize::try_from(len).ok()?))
}

/// Offset of element `i` inside the span of [`rep_span`].
fn element_offset(i: u32, size: u8, count: u32, df: bool) -> usize {
    let index = if df { count - 1 - i } else { i };
    index as usize * size as usize
}

/// Decodes and validates one slot.
pub fn decode(raw: &[u8; IOREQ_SIZE]) -> Result<Request, Malformed> {
    let r = RawIoreq::from_bytes(raw);
    let dir = if r.read { Dir::Read } else { Dir::Write };
    let fail = |reason: String| {
        let data = (r.read && !r.data_is_ptr).then(|| all_ones(r.size));
        Err(Malformed { reason, response: Response { data } })
    };
    match r.ty {
        IOREQ_TYPE_PIO | IOREQ_TYPE_COPY => {
            let pio = r.ty == IOREQ_TYPE_PIO;
            let kind = if pio { "port" } else { "MMIO" };
            let size_ok = if pio { matches!(r.size, 1 | 2 | 4) } else { matches!(r.size, 1 | 2 | 4 | 8) };
            if !size_ok {
                return fail(format!("{kind} access of {} bytes at {:#x}", r.size, r.addr));
            }
            if r.count == 0 || r.count > MAX_REP_COUNT {
                return fail(format!("{kind} access at {:#x} with rep count {}", r.addr, r.count));
            }
            let size = r.size as u8;
            let data = if r.data_is_ptr {
                if rep_span(r.data, size, r.count, r.df).is_none() {
                    return fail(format!("{kind} rep at {:#x}: guest buffer {:#x} x{} wraps", r.addr, r.data, r.count));
                }
                Data::Guest(r.data)
            } else {
                Data::Value(r.data)
            };
            if pio {
                let Ok(port) = u16::try_from(r.addr) else { return fail(format!("port {:#x} beyond 0xffff", r.addr)) };
                Ok(Request::Pio(Access { addr: port, size, count: r.count, df: r.df, dir, data }))
            } else {
                // The device side steps too (rep movs/stos); its span must not wrap either.
                if rep_span(r.addr, size, r.count, r.df).is_none() {
                    return fail(format!("MMIO rep at {:#x} x{} wraps", r.addr, r.count));
                }
                Ok(Request::Copy(Access { addr: r.addr, size, count: r.count, df: r.df, dir, data }))
            }
        }
        IOREQ_TYPE_PCI_CONFIG => {
            if !matches!(r.size, 1 | 2 | 4) || r.count != 1 || r.data_is_ptr {
                return fail(format!("PCI config access size {} count {} ptr {}", r.size, r.count, r.data_is_ptr));
            }
            // addr: segment 63..48, bus 47..40, device 39..35, function 34..32, register 31..0.
            let segment = (r.addr >> 48) as u16;
            let address =
                PciAddress::new((r.addr >> 40) as u8, ((r.addr >> 35) & 0x1f) as u8, ((r.addr >> 32) & 7) as u8);
            Ok(Request::PciConfig { segment, address, reg: r.addr as u32, size: r.size as u8, dir, value: r.data })
        }
        IOREQ_TYPE_TIMEOFFSET => Ok(Request::TimeOffset(r.data)),
        IOREQ_TYPE_INVALIDATE => Ok(Request::Invalidate),
        t => fail(format!("unsupported ioreq type {t}")),
    }
}

fn value_bytes(value: u64, size: u8) -> [u8; 8] {
    let mut b = value.to_le_bytes();
    b[size as usize..].fill(0);
    b
}

fn bytes_value(b: &[u8]) -> u64 {
    let mut v = [0u8; 8];
    v[..b.len()].copy_from_slice(b);
    u64::from_le_bytes(v)
}

/// Performs a decoded request on the bus (and guest RAM for rep forms). `Invalidate` needs the
/// caller's map cache and is only acknowledged here.
pub fn dispatch(req: &Request, bus: &IoBus, mem: &dyn GuestMemory) -> Response {
    match *req {
        Request::Pio(a) => {
            let port = a.addr;
            match a.data {
                Data::Value(v) => match a.dir {
                    // A non-pointer port access is one element whatever the count (as QEMU does).
                    Dir::Read => {
                        let mut b = [0u8; 8];
                        bus.pio_read(port, &mut b[..a.size as usize]);
                        Response { data: Some(bytes_value(&b[..a.size as usize])) }
                    }
                    Dir::Write => {
                        bus.pio_write(port, &value_bytes(v, a.size)[..a.size as usize]);
                        Response::default()
                    }
                },
                Data::Guest(gpa) => {
                    rep_with_ram(a, gpa, mem, |_, buf| bus.pio_read(port, buf), |_, buf| bus.pio_write(port, buf));
                    Response::default()
                }
            }
        }
        Request::Copy(a) => {
            let at = |i: u32| {
                let step = i as u64 * a.size as u64;
                if a.df {
                    a.addr - step
                } else {
                    a.addr + step
                }
            };
            match a.data {
                Data::Value(v) => match a.dir {
                    Dir::Read => {
                        let mut b = [0u8; 8];
                        for i in 0..a.count {
                            bus.mmio_read(at(i), &mut b[..a.size as usize]);
                        }
                        Response { data: Some(bytes_value(&b[..a.size as usize])) }
                    }
                    Dir::Write => {
                        let bytes = value_bytes(v, a.size);
                        for i in 0..a.count {
                            bus.mmio_write(at(i), &bytes[..a.size as usize]);
                        }
                        Response::default()
                    }
                },
                Data::Guest(gpa) => {
                    rep_with_ram(a, gpa, mem, |i, buf| bus.mmio_read(at(i), buf), |i, buf| bus.mmio_write(at(i), buf));
                    Response::default()
                }
            }
        }
        Request::PciConfig { segment, address, reg, size, dir, value } => {
            let offset = u16::try_from(reg).ok().filter(|_| segment == 0);
            match dir {
                Dir::Read => {
                    let mut b = [0xffu8; 4];
                    if let Some(offset) = offset {
                        bus.pci_config_read(address, offset, &mut b[..size as usize]);
                    }
                    Response { data: Some(bytes_value(&b[..size as usize])) }
                }
                Dir::Write => {
                    if let Some(offset) = offset {
                        bus.pci_config_write(address, offset, &value_bytes(value, size)[..size as usize]);
                    }
                    Response::default()
                }
            }
        }
        Request::TimeOffset(offset) => {
            log::debug!("Xen RTC time offset now {}", offset as i64);
            Response::default()
        }
        Request::Invalidate => Response::default(),
    }
}

/// A `rep` access between a device and guest RAM. The guest buffer is checked as a whole before
/// the device is touched (a bad buffer drops the request, so a device FIFO is not drained into
/// nowhere), then written back with one [`GuestMemory::write`] so every page is dirty-logged.
fn rep_with_ram<A: Copy + std::fmt::LowerHex>(
    a: Access<A>,
    gpa: u64,
    mem: &dyn GuestMemory,
    mut dev_read: impl FnMut(u32, &mut [u8]),
    mut dev_write: impl FnMut(u32, &[u8]),
) {
    // Validated by `decode`; recomputed rather than trusted.
    let Some((low, len)) = rep_span(gpa, a.size, a.count, a.df) else { return };
    let mut buf = vec![0u8; len];
    if let Err(e) = mem.read(low, &mut buf) {
        devices::guest_warn!("rep {:?} at {:#x}: guest buffer refused: {e}", a.dir, a.addr);
        return;
    }
    let size = a.size as usize;
    match a.dir {
        Dir::Read => {
            for i in 0..a.count {
                let o = element_offset(i, a.size, a.count, a.df);
                dev_read(i, &mut buf[o..o + size]);
            }
            if let Err(e) = mem.write(low, &buf) {
                devices::guest_warn!("rep read at {:#x}: guest buffer refused: {e}", a.addr);
            }
        }
        Dir::Write => {
            for i in 0..a.count {
                let o = element_offset(i, a.size, a.count, a.df);
                dev_write(i, &buf[o..o + size]);
            }
        }
    }
}

/// The per-vCPU slots of a synchronous ioreq page. The real one is a foreign mapping written by
/// Xen; tests use [`VecIoreqPage`].
pub trait IoreqPage: Send + Sync {
    fn slots(&self) -> usize;
    /// The state nibble, loaded with acquire ordering (the request fields written before Xen set
    /// READY are visible after it).
    fn state(&self, slot: usize) -> u8;
    /// Stores the state nibble with release ordering (our `data` is visible before the state),
    /// leaving the other flag bits as they are.
    fn set_state(&self, slot: usize, state: u8);
    /// One copy of the whole slot.
    fn read(&self, slot: usize) -> [u8; IOREQ_SIZE];
    /// The `data` field.
    fn write_data(&self, slot: usize, data: u64);
}

/// What happened to a slot when its event fired.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SlotOutcome {
    /// Answered: the caller must notify the vCPU's event channel.
    Answered(Result<Request, Malformed>),
    /// The slot was not READY (a spurious or stale event): left alone, no notification.
    Ignored { state: u8 },
}

/// One handshake step for `slot`: READY -> copy -> INPROCESS -> dispatch -> data -> IORESP_READY.
/// The state only ever moves forward, and only from READY; any other state is left untouched.
pub fn service_slot(
    page: &dyn IoreqPage,
    slot: usize,
    bus: &IoBus,
    mem: &dyn GuestMemory,
    invalidate: &dyn Fn(),
) -> SlotOutcome {
    if slot >= page.slots() {
        return SlotOutcome::Ignored { state: STATE_IOREQ_NONE };
    }
    let state = page.state(slot);
    if state != STATE_IOREQ_READY {
        return SlotOutcome::Ignored { state };
    }
    let copy = page.read(slot);
    page.set_state(slot, STATE_IOREQ_INPROCESS);
    let decoded = decode(&copy);
    let response = match &decoded {
        Ok(req) => {
            if *req == Request::Invalidate {
                invalidate();
            }
            dispatch(req, bus, mem)
        }
        Err(m) => {
            devices::guest_warn!("malformed ioreq on vCPU {slot}: {}", m.reason);
            m.response
        }
    };
    if let Some(data) = response.data {
        page.write_data(slot, data);
    }
    page.set_state(slot, STATE_IORESP_READY);
    SlotOutcome::Answered(decoded)
}

/// `IOREQ_BUFFER_SLOT_NUM`: 8-byte slots after the two 32-bit pointers of `buffered_iopage`.
pub const BUFFER_SLOTS: u32 = 511;

/// The buffered ring (`struct buffered_iopage`): Xen appends single writes it need not wait for
/// (the VGA window, TIMEOFFSET) and bumps `write_pointer`; we consume and bump `read_pointer`. In
/// `HVM_IOREQSRV_BUFIOREQ_ATOMIC` mode Xen may rebase both pointers at once, so the consumer reads
/// the pair consistently and advances `read_pointer` with an atomic add.
pub trait BufferedPage: Send + Sync {
    /// Loaded with acquire ordering.
    fn read_pointer(&self) -> u32;
    /// Loaded with acquire ordering (the slots before it are visible after it).
    fn write_pointer(&self) -> u32;
    /// The 8-byte slot `index` (taken modulo [`BUFFER_SLOTS`]).
    fn slot(&self, index: u32) -> u64;
    /// Atomically adds `n` to `read_pointer` (release: we are done with those slots).
    fn advance_read_pointer(&self, n: u32);
}

/// Decodes a `struct buf_ioreq` (as a little-endian u64): type bits 7:0, dir bit 9, size code bits
/// 11:10 (1, 2, 4, 8 bytes), addr bits 31:12 (20 bits), data bits 63:32.
pub fn decode_buffered(slot: u64) -> RawIoreq {
    RawIoreq {
        ty: slot as u8,
        read: (slot >> 9) & 1 != 0,
        size: 1 << ((slot >> 10) & 3),
        addr: (slot >> 12) & 0xf_ffff,
        data: slot >> 32,
        count: 1,
        state: STATE_IOREQ_READY,
        ..Default::default()
    }
}

/// Consumes everything in the buffered ring (at most one ring's worth per call, so a flooding
/// guest cannot pin this thread). Only single writes are meaningful here; anything else is
/// dropped with a log. Returns the number of requests performed.
pub fn drain_buffered(page: &dyn BufferedPage, bus: &IoBus, mem: &dyn GuestMemory) -> usize {
    let mut done = 0;
    for _ in 0..BUFFER_SLOTS {
        let rd = page.read_pointer();
        let wr = page.write_pointer();
        if page.read_pointer() != rd {
            continue; // Xen rebased the pointers between our two loads
        }
        let pending = wr.wrapping_sub(rd);
        if pending == 0 {
            break;
        }
        if pending > BUFFER_SLOTS {
            log::error!("buffered ioreq ring pointers {rd}/{wr} are inconsistent; discarding the ring");
            page.advance_read_pointer(pending);
            break;
        }
        let mut req = decode_buffered(page.slot(rd));
        let quad = req.size == 8;
        if quad {
            if pending < 2 {
                break; // the upper half is not written yet
            }
            // Xen writes the second slot as a whole `buf_ioreq` (same type and address) whose
            // `data` field holds bits 63:32 of the value (xen/common/ioreq.c ioreq_send_buffered).
            req.data |= (page.slot(rd.wrapping_add(1)) >> 32) << 32;
        }
        if req.read {
            devices::guest_warn!("buffered ioreq is a read (type {} addr {:#x}); dropped", req.ty, req.addr);
        } else {
            match decode(&req.wire()) {
                Ok(r) => {
                    dispatch(&r, bus, mem);
                    done += 1;
                }
                Err(m) => devices::guest_warn!("malformed buffered ioreq: {}", m.reason),
            }
        }
        page.advance_read_pointer(if quad { 2 } else { 1 });
    }
    done
}

/// A buffered ring in ordinary memory (tests and fuzzing); [`VecBufferedPage::push`] plays Xen.
#[derive(Debug, Default)]
pub struct VecBufferedPage {
    read: std::sync::atomic::AtomicU32,
    write: std::sync::atomic::AtomicU32,
    slots: std::sync::Mutex<Vec<u64>>,
}

impl VecBufferedPage {
    pub fn new() -> Self {
        VecBufferedPage { slots: std::sync::Mutex::new(vec![0; BUFFER_SLOTS as usize]), ..Default::default() }
    }
    /// Appends raw slots and publishes them.
    pub fn push(&self, raw: &[u64]) {
        let wr = self.write.load(std::sync::atomic::Ordering::SeqCst);
        let mut slots = self.slots.lock().unwrap();
        for (i, v) in raw.iter().enumerate() {
            slots[(wr.wrapping_add(i as u32) % BUFFER_SLOTS) as usize] = *v;
        }
        self.write.store(wr.wrapping_add(raw.len() as u32), std::sync::atomic::Ordering::SeqCst);
    }
    /// Sets both pointers (e.g. Xen's rebase, or a corrupt ring).
    pub fn set_pointers(&self, read: u32, write: u32) {
        self.read.store(read, std::sync::atomic::Ordering::SeqCst);
        self.write.store(write, std::sync::atomic::Ordering::SeqCst);
    }
    /// Encodes a `buf_ioreq` slot.
    pub fn encode(ty: u8, read: bool, size_code: u8, addr: u32, data: u32) -> u64 {
        ty as u64
            | (read as u64) << 9
            | ((size_code & 3) as u64) << 10
            | ((addr & 0xf_ffff) as u64) << 12
            | (data as u64) << 32
    }
}

impl BufferedPage for VecBufferedPage {
    fn read_pointer(&self) -> u32 {
        self.read.load(std::sync::atomic::Ordering::Acquire)
    }
    fn write_pointer(&self) -> u32 {
        self.write.load(std::sync::atomic::Ordering::Acquire)
    }
    fn slot(&self, index: u32) -> u64 {
        self.slots.lock().unwrap()[(index % BUFFER_SLOTS) as usize]
    }
    fn advance_read_pointer(&self, n: u32) {
        self.read.fetch_add(n, std::sync::atomic::Ordering::Release);
    }
}

/// A shared page in ordinary memory, for tests and the fuzzer; Xen's side is played by
/// [`VecIoreqPage::post`].
#[derive(Debug)]
pub struct VecIoreqPage {
    slots: std::sync::Mutex<Vec<[u8; IOREQ_SIZE]>>,
}

impl VecIoreqPage {
    pub fn new(slots: usize) -> Self {
        VecIoreqPage { slots: std::sync::Mutex::new(vec![[0; IOREQ_SIZE]; slots]) }
    }
    /// Xen's side: writes a request into `slot` (with its state).
    pub fn post(&self, slot: usize, req: &RawIoreq) {
        self.slots.lock().unwrap()[slot] = req.wire();
    }
    pub fn raw(&self, slot: usize) -> RawIoreq {
        RawIoreq::from_bytes(&self.slots.lock().unwrap()[slot])
    }
}

impl IoreqPage for VecIoreqPage {
    fn slots(&self) -> usize {
        self.slots.lock().unwrap().len()
    }
    fn state(&self, slot: usize) -> u8 {
        self.slots.lock().unwrap()[slot][OFFSET_FLAGS] & FLAG_STATE_MASK
    }
    fn set_state(&self, slot: usize, state: u8) {
        let mut s = self.slots.lock().unwrap();
        let b = &mut s[slot][OFFSET_FLAGS];
        *b = (*b & !FLAG_STATE_MASK) | (state & FLAG_STATE_MASK);
    }
    fn read(&self, slot: usize) -> [u8; IOREQ_SIZE] {
        self.slots.lock().unwrap()[slot]
    }
    fn write_data(&self, slot: usize, data: u64) {
        self.slots.lock().unwrap()[slot][OFFSET_DATA..OFFSET_DATA + 8].copy_from_slice(&data.to_le_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use devices::bus::{AddressSpace, BusDevice};
    use devices::chipset::i440fx::I440fx;
    use devices::memory::TestMemory;
    use std::mem::{offset_of, size_of};
    use std::sync::{Arc, Mutex};

    /// A device that answers reads with successive bytes of a counter and records writes.
    #[derive(Default)]
    struct Fifo {
        next: u8,
        writes: Vec<(u64, Vec<u8>)>,
        reads: usize,
    }

    impl BusDevice for Fifo {
        fn read(&mut self, _addr: u64, data: &mut [u8]) {
            self.reads += 1;
            for b in data.iter_mut() {
                *b = self.next;
                self.next = self.next.wrapping_add(1);
            }
        }
        fn write(&mut self, addr: u64, data: &[u8]) {
            self.writes.push((addr, data.to_vec()));
        }
    }

    const PORT: u16 = 0x1f0;
    const MMIO: u64 = 0xe000_0000;
    const RAM: usize = 64 * 1024;

    struct Rig {
        bus: IoBus,
        port_dev: Arc<Mutex<Fifo>>,
        mmio_dev: Arc<Mutex<Fifo>>,
        mem: TestMemory,
        page: VecIoreqPage,
    }

    fn rig() -> Rig {
        let bus = IoBus::new();
        let port_dev = Arc::new(Mutex::new(Fifo::default()));
        let mmio_dev = Arc::new(Mutex::new(Fifo::default()));
        bus.insert(AddressSpace::Io, PORT as u64, 8, "fifo", port_dev.clone()).unwrap();
        bus.insert(AddressSpace::Mmio, MMIO, 0x1000, "mmio-fifo", mmio_dev.clone()).unwrap();
        bus.add_pci_device(PciAddress::new(0, 0, 0), Arc::new(Mutex::new(I440fx::new()))).unwrap();
        Rig { bus, port_dev, mmio_dev, mem: TestMemory::new(RAM), page: VecIoreqPage::new(4) }
    }

    fn pio(port: u64, size: u32, read: bool, data: u64) -> RawIoreq {
        RawIoreq {
            addr: port,
            data,
            count: 1,
            size,
            vp_eport: 77,
            state: STATE_IOREQ_READY,
            read,
            ty: IOREQ_TYPE_PIO,
            ..Default::default()
        }
    }

    impl Rig {
        /// Posts `req` on vCPU `slot`, runs one handshake step, returns the slot as Xen sees it.
        fn run(&self, slot: usize, req: RawIoreq) -> (SlotOutcome, RawIoreq) {
            self.page.post(slot, &req);
            let outcome = service_slot(&self.page, slot, &self.bus, &self.mem, &|| {});
            (outcome, self.page.raw(slot))
        }
    }

    #[test]
    fn wire_layout_matches_ioreq_h() {
        assert_eq!(size_of::<IoreqWire>(), IOREQ_SIZE);
        assert_eq!(offset_of!(IoreqWire, data), OFFSET_DATA);
        assert_eq!(offset_of!(IoreqWire, count), 16);
        assert_eq!(offset_of!(IoreqWire, size), 20);
        assert_eq!(offset_of!(IoreqWire, vp_eport), OFFSET_VP_EPORT);
        assert_eq!(offset_of!(IoreqWire, flags), OFFSET_FLAGS);
        assert_eq!(offset_of!(IoreqWire, ty), 31);
        let r = RawIoreq {
            addr: 1,
            data: 2,
            count: 3,
            size: 4,
            vp_eport: 5,
            state: 1,
            data_is_ptr: true,
            read: true,
            df: true,
            ty: 8,
        };
        let b = r.wire();
        assert_eq!(b[OFFSET_FLAGS], 0x71);
        assert_eq!(RawIoreq::from_bytes(&b), r);
    }

    #[test]
    fn port_read_answers_data_and_completes_the_handshake() {
        let r = rig();
        let (outcome, slot) = r.run(1, pio(PORT as u64, 2, true, 0xdead_beef));
        assert!(matches!(outcome, SlotOutcome::Answered(Ok(Request::Pio(_)))));
        assert_eq!(slot.state, STATE_IORESP_READY);
        assert_eq!(slot.data, 0x0100, "two bytes from the counter, the stale data replaced");
        assert_eq!(slot.vp_eport, 77, "vp_eport is never written");
        assert_eq!((slot.read, slot.ty, slot.count), (true, IOREQ_TYPE_PIO, 1));
    }

    #[test]
    fn port_write_reaches_the_device_and_leaves_data_alone() {
        let r = rig();
        let (_, slot) = r.run(0, pio(PORT as u64 + 1, 4, false, 0x1122_3344_5566_7788));
        assert_eq!(r.port_dev.lock().unwrap().writes, vec![(PORT as u64 + 1, vec![0x88, 0x77, 0x66, 0x55])]);
        assert_eq!((slot.state, slot.data), (STATE_IORESP_READY, 0x1122_3344_5566_7788));
    }

    #[test]
    fn rep_ins_fills_guest_memory_and_dirties_the_pages() {
        let r = rig();
        // rep insw of 3000 words to 0x1f00 crosses from page 1 into pages 2 and 3.
        let req = RawIoreq { count: 3000, data_is_ptr: true, data: 0x1f00, ..pio(PORT as u64, 2, true, 0) };
        let (_, slot) = r.run(0, req);
        assert_eq!(slot.data, 0x1f00, "a pointer request's data is not overwritten");
        let mut got = vec![0u8; 6000];
        r.mem.read(0x1f00, &mut got).unwrap();
        let expect: Vec<u8> = (0..6000u32).map(|i| i as u8).collect();
        assert_eq!(got, expect);
        assert_eq!(r.mem.take_dirty_pages(), vec![1, 2, 3]);
    }

    #[test]
    fn rep_ins_with_direction_flag_fills_downwards() {
        let r = rig();
        let req = RawIoreq { count: 3, data_is_ptr: true, data: 0x108, df: true, ..pio(PORT as u64, 4, true, 0) };
        r.run(0, req);
        let mut got = [0u8; 12];
        r.mem.read(0x100, &mut got).unwrap();
        // Element 0 (bytes 0-3) at 0x108, element 1 at 0x104, element 2 at 0x100.
        assert_eq!(got, [8, 9, 10, 11, 4, 5, 6, 7, 0, 1, 2, 3]);
    }

    #[test]
    fn rep_outs_sends_guest_memory_in_order() {
        let r = rig();
        r.mem.write(0x200, &[1, 2, 3, 4, 5, 6]).unwrap();
        r.mem.take_dirty_pages();
        r.run(0, RawIoreq { count: 3, data_is_ptr: true, data: 0x200, ..pio(PORT as u64, 2, false, 0) });
        let w: Vec<Vec<u8>> = r.port_dev.lock().unwrap().writes.iter().map(|(_, d)| d.clone()).collect();
        assert_eq!(w, vec![vec![1, 2], vec![3, 4], vec![5, 6]]);
        assert!(r.mem.take_dirty_pages().is_empty(), "reading guest RAM dirties nothing");
    }

    #[test]
    fn mmio_copy_read_and_write() {
        let r = rig();
        let copy = |addr, size, read, data| RawIoreq {
            addr,
            size,
            read,
            data,
            count: 1,
            state: STATE_IOREQ_READY,
            ty: IOREQ_TYPE_COPY,
            ..Default::default()
        };
        let (_, slot) = r.run(0, copy(MMIO + 0x10, 8, true, 0));
        assert_eq!(slot.data, 0x0706_0504_0302_0100);
        r.run(0, copy(MMIO + 0x20, 4, false, 0xaabb_ccdd));
        assert_eq!(r.mmio_dev.lock().unwrap().writes, vec![(MMIO + 0x20, vec![0xdd, 0xcc, 0xbb, 0xaa])]);
        // An unclaimed address reads all ones.
        let (_, slot) = r.run(0, copy(0xd000_0000, 4, true, 0));
        assert_eq!(slot.data, 0xffff_ffff);
    }

    #[test]
    fn rep_movs_between_mmio_and_ram_steps_both_sides() {
        let r = rig();
        let req = RawIoreq {
            addr: MMIO,
            size: 4,
            count: 4,
            data: 0x3000,
            data_is_ptr: true,
            read: true,
            state: STATE_IOREQ_READY,
            ty: IOREQ_TYPE_COPY,
            ..Default::default()
        };
        r.run(2, req);
        let mut got = [0u8; 16];
        r.mem.read(0x3000, &mut got).unwrap();
        assert_eq!(got.to_vec(), (0..16u8).collect::<Vec<_>>());
        assert_eq!(r.mem.take_dirty_pages(), vec![3]);
        // RAM to MMIO with df: element i goes from 0x3000 - 4i to MMIO + 0x100 - 4i.
        let req = RawIoreq { addr: MMIO + 0x100, data: 0x300c, df: true, read: false, ..req };
        r.run(2, req);
        let writes = r.mmio_dev.lock().unwrap().writes.clone();
        assert_eq!(writes[0], (MMIO + 0x100, vec![12, 13, 14, 15]));
        assert_eq!(writes[3], (MMIO + 0xf4, vec![0, 1, 2, 3]));
    }

    #[test]
    fn pci_config_reaches_the_function_by_sbdf() {
        let r = rig();
        let cfg = |addr, size, read, data| RawIoreq {
            addr,
            size,
            read,
            data,
            count: 1,
            state: STATE_IOREQ_READY,
            ty: IOREQ_TYPE_PCI_CONFIG,
            ..Default::default()
        };
        // 00:00.0 register 0: i440FX 8086:1237.
        let (_, slot) = r.run(0, cfg(0, 4, true, 0));
        assert_eq!(slot.data, 0x1237_8086);
        // Register 2 (device ID) as a word: the byte offset is part of reg.
        let (_, slot) = r.run(0, cfg(2, 2, true, 0));
        assert_eq!(slot.data, 0x1237);
        // 00:05.0 is empty; segment 1 does not exist; reg 0x100 is beyond conventional space.
        for addr in [5u64 << 35, 1u64 << 48, 0x100] {
            let (_, slot) = r.run(0, cfg(addr, 4, true, 0));
            assert_eq!(slot.data, 0xffff_ffff, "addr {addr:#x}");
        }
        // Writes land: the i440FX PAM1 register at 0x5a.
        r.run(0, cfg(0x5a, 1, false, 0x33));
        let (_, slot) = r.run(0, cfg(0x5a, 1, true, 0));
        assert_eq!(slot.data, 0x33);
        assert!(matches!(
            decode(&cfg((1 << 48) | (3 << 40) | (31 << 35) | (7 << 32) | 0x44, 4, true, 0).wire()),
            Ok(Request::PciConfig {
                segment: 1,
                address: PciAddress { bus: 3, device: 31, function: 7 },
                reg: 0x44,
                ..
            })
        ));
    }

    #[test]
    fn malformed_requests_are_answered_without_touching_devices() {
        let r = rig();
        let cases = [
            ("size 3", pio(PORT as u64, 3, true, 0), Some(0xff_ffff)),
            ("size 8 port", pio(PORT as u64, 8, true, 0), Some(u64::MAX)),
            ("port beyond 0xffff", pio(0x1_0000 + PORT as u64, 1, true, 0), Some(0xff)),
            ("count 0", RawIoreq { count: 0, ..pio(PORT as u64, 1, true, 0) }, Some(0xff)),
            (
                "count too large",
                RawIoreq { count: MAX_REP_COUNT + 1, data_is_ptr: true, ..pio(PORT as u64, 1, true, 0) },
                None,
            ),
            (
                "wrapping pointer",
                RawIoreq { count: 4, data_is_ptr: true, data: u64::MAX - 2, ..pio(PORT as u64, 2, false, 0) },
                None,
            ),
            (
                "wrapping pointer df",
                RawIoreq { count: 4, data_is_ptr: true, data: 2, df: true, ..pio(PORT as u64, 2, true, 0) },
                None,
            ),
            ("unknown type", RawIoreq { ty: 5, ..pio(PORT as u64, 2, true, 0) }, Some(0xffff)),
            ("pci count 2", RawIoreq { ty: IOREQ_TYPE_PCI_CONFIG, count: 2, ..pio(0, 4, true, 0) }, Some(0xffff_ffff)),
            ("pci write", RawIoreq { ty: IOREQ_TYPE_PCI_CONFIG, size: 3, ..pio(0x5a, 4, false, 0x33) }, None),
        ];
        for (what, req, answer) in cases {
            let (outcome, slot) = r.run(3, req);
            assert!(matches!(outcome, SlotOutcome::Answered(Err(_))), "{what}: {outcome:?}");
            assert_eq!(slot.state, STATE_IORESP_READY, "{what}");
            assert_eq!(slot.data, answer.unwrap_or(req.data), "{what}");
        }
        let d = r.port_dev.lock().unwrap();
        assert!(d.writes.is_empty() && d.reads == 0);
        assert!(r.mem.take_dirty_pages().is_empty());
    }

    #[test]
    fn a_pointer_outside_ram_drops_the_rep_before_the_device_is_read() {
        let r = rig();
        // rep insb of 16 bytes ending past the end of RAM.
        let (outcome, slot) =
            r.run(0, RawIoreq { count: 16, data_is_ptr: true, data: RAM as u64 - 8, ..pio(PORT as u64, 1, true, 0) });
        assert!(matches!(outcome, SlotOutcome::Answered(Ok(_))));
        assert_eq!(slot.state, STATE_IORESP_READY);
        assert_eq!(r.port_dev.lock().unwrap().reads, 0, "the FIFO is not drained into nowhere");
        assert!(r.mem.take_dirty_pages().is_empty());
        // rep outs from outside RAM: nothing is written.
        r.run(0, RawIoreq { count: 2, data_is_ptr: true, data: RAM as u64, ..pio(PORT as u64, 1, false, 0) });
        assert!(r.port_dev.lock().unwrap().writes.is_empty());
    }

    #[test]
    fn only_ready_slots_are_served_and_state_never_moves_backwards() {
        let r = rig();
        for state in [STATE_IOREQ_NONE, STATE_IOREQ_INPROCESS, STATE_IORESP_READY, 9] {
            let req = RawIoreq { state, ..pio(PORT as u64, 1, true, 0x55) };
            let (outcome, slot) = r.run(0, req);
            assert_eq!(outcome, SlotOutcome::Ignored { state });
            assert_eq!(slot, req, "an unexpected state leaves the slot untouched");
        }
        assert_eq!(r.port_dev.lock().unwrap().reads, 0);
        // A slot beyond the page is ignored, not a panic.
        assert!(matches!(service_slot(&r.page, 99, &r.bus, &r.mem, &|| {}), SlotOutcome::Ignored { .. }));
    }

    #[test]
    fn timeoffset_and_invalidate_are_acknowledged() {
        let r = rig();
        let (outcome, slot) =
            r.run(0, RawIoreq { ty: IOREQ_TYPE_TIMEOFFSET, data: (-3600i64) as u64, ..pio(0, 8, false, 0) });
        assert_eq!(outcome, SlotOutcome::Answered(Ok(Request::TimeOffset((-3600i64) as u64))));
        assert_eq!(slot.state, STATE_IORESP_READY);
        let invalidated = std::sync::atomic::AtomicUsize::new(0);
        r.page.post(1, &RawIoreq { ty: IOREQ_TYPE_INVALIDATE, ..pio(0, 0, false, 0) });
        let outcome = service_slot(&r.page, 1, &r.bus, &r.mem, &|| {
            invalidated.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        });
        assert_eq!(outcome, SlotOutcome::Answered(Ok(Request::Invalidate)));
        assert_eq!(invalidated.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert_eq!(r.page.raw(1).state, STATE_IORESP_READY);
    }

    #[test]
    fn buffered_ring_performs_writes_in_order_and_joins_quad_words() {
        let r = rig();
        let ring = VecBufferedPage::new();
        // A byte write to the MMIO device is not possible in the 20-bit space; use the port device
        // (PIO) and TIMEOFFSET as Xen does, plus an 8-byte write split over two slots.
        ring.push(&[
            VecBufferedPage::encode(IOREQ_TYPE_PIO, false, 0, PORT as u32, 0x11),
            VecBufferedPage::encode(IOREQ_TYPE_PIO, false, 1, PORT as u32 + 2, 0x3322),
            VecBufferedPage::encode(IOREQ_TYPE_TIMEOFFSET, false, 3, 0, 0x10),
            // The upper half of the quad word, in a slot of its own with the same header.
            VecBufferedPage::encode(IOREQ_TYPE_TIMEOFFSET, false, 3, 0, 0),
        ]);
        assert_eq!(drain_buffered(&ring, &r.bus, &r.mem), 3);
        assert_eq!(ring.read_pointer(), 4);
        assert_eq!(
            r.port_dev.lock().unwrap().writes,
            vec![(PORT as u64, vec![0x11]), (PORT as u64 + 2, vec![0x22, 0x33])]
        );
        assert_eq!(drain_buffered(&ring, &r.bus, &r.mem), 0, "an empty ring does nothing");
    }

    #[test]
    fn buffered_vga_window_writes_arrive_in_order_with_all_64_bits() {
        // What Xen's stdvga hook sends: single MMIO writes into 0xa0000-0xbffff, an 8-byte one
        // as two slots whose second carries bits 63:32 (and repeats the header).
        let r = rig();
        let window = Arc::new(Mutex::new(Fifo::default()));
        r.bus.insert(AddressSpace::Mmio, 0xa_0000, 0x2_0000, "vga-window", window.clone()).unwrap();
        let ring = VecBufferedPage::new();
        ring.set_pointers(509, 509); // the quad word wraps around the end of the ring
        ring.push(&[
            VecBufferedPage::encode(IOREQ_TYPE_COPY, false, 3, 0xb_8000, 0x0741_0748),
            VecBufferedPage::encode(IOREQ_TYPE_COPY, false, 3, 0xb_8000, 0x074f_074c),
            VecBufferedPage::encode(IOREQ_TYPE_COPY, false, 0, 0xa_0001, 0x5a),
            VecBufferedPage::encode(IOREQ_TYPE_COPY, false, 2, 0xb_fffc, 0xdead_beef),
        ]);
        assert_eq!(decode_buffered(VecBufferedPage::encode(IOREQ_TYPE_COPY, false, 3, 0xb_8000, 7)).size, 8);
        assert_eq!(drain_buffered(&ring, &r.bus, &r.mem), 3);
        assert_eq!(
            window.lock().unwrap().writes,
            vec![
                (0xb_8000, 0x074f_074c_0741_0748u64.to_le_bytes().to_vec()),
                (0xa_0001, vec![0x5a]),
                (0xb_fffc, 0xdead_beefu32.to_le_bytes().to_vec()),
            ]
        );
        assert_eq!(ring.read_pointer(), 513);
    }

    #[test]
    fn buffered_ring_waits_for_the_second_half_and_survives_corruption() {
        let r = rig();
        let ring = VecBufferedPage::new();
        ring.push(&[VecBufferedPage::encode(IOREQ_TYPE_COPY, false, 3, 0xa0000, 1)]);
        assert_eq!(drain_buffered(&ring, &r.bus, &r.mem), 0);
        assert_eq!(ring.read_pointer(), 0, "half a quad word stays in the ring");
        // Reads, malformed sizes and unknown types are consumed without effect.
        ring.set_pointers(0, 0);
        ring.push(&[
            VecBufferedPage::encode(IOREQ_TYPE_PIO, true, 0, PORT as u32, 0),
            VecBufferedPage::encode(9, false, 0, 0, 0),
        ]);
        assert_eq!(drain_buffered(&ring, &r.bus, &r.mem), 0);
        assert_eq!(ring.read_pointer(), 2);
        // Pointers further apart than the ring is long: discarded, not looped over.
        ring.set_pointers(5, 5000);
        assert_eq!(drain_buffered(&ring, &r.bus, &r.mem), 0);
        assert_eq!(ring.read_pointer(), 5000);
        // Pointers that wrap u32 still work.
        ring.set_pointers(u32::MAX, u32::MAX);
        ring.push(&[
            VecBufferedPage::encode(IOREQ_TYPE_PIO, false, 0, PORT as u32, 7),
            VecBufferedPage::encode(IOREQ_TYPE_PIO, false, 0, PORT as u32, 8),
        ]);
        assert_eq!(drain_buffered(&ring, &r.bus, &r.mem), 2);
        assert_eq!(ring.read_pointer(), 1);
        let d = r.port_dev.lock().unwrap();
        assert_eq!((d.reads, d.writes.len()), (0, 2));
    }

    /// A small xorshift generator: deterministic, so a failure reproduces.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
            xs[(self.next() % xs.len() as u64) as usize]
        }
    }

    #[test]
    fn random_ioreqs_are_always_answered_and_only_touch_ram_they_name() {
        let r = rig();
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for _ in 0..20_000 {
            let mut raw = [0u8; IOREQ_SIZE];
            for chunk in raw.chunks_mut(8) {
                chunk.copy_from_slice(&rng.next().to_le_bytes());
            }
            let mut req = RawIoreq::from_bytes(&raw);
            // Bias towards plausible values so that the deep paths run too.
            if rng.next() & 1 == 0 {
                req.ty = rng.pick(&[0, 1, 2, 7, 8]);
                req.size = rng.pick(&[1, 2, 4, 8, 3, 0]);
                req.count = rng.pick(&[1, 2, 17, 4096, 0, 5000]);
                req.addr = rng.pick(&[PORT as u64, MMIO, MMIO + 0xffc, 0xcfc, 0, req.addr]);
                req.data = rng.pick(&[0x1000, RAM as u64 - 4, 0, u64::MAX, req.data]);
            }
            req.state = STATE_IOREQ_READY;
            let (outcome, slot) = r.run(0, req);
            assert!(matches!(outcome, SlotOutcome::Answered(_)));
            assert_eq!(slot.state, STATE_IORESP_READY);
            assert_eq!(
                (slot.addr, slot.count, slot.size, slot.vp_eport),
                (req.addr, req.count, req.size, req.vp_eport)
            );
            if !req.read || req.data_is_ptr {
                assert_eq!(slot.data, req.data, "only non-pointer reads return data: {req:?}");
            }
            // RAM is written only by a rep read into its own span.
            let dirty = r.mem.take_dirty_pages();
            if !dirty.is_empty() {
                assert!(req.read && req.data_is_ptr && matches!(req.ty, IOREQ_TYPE_PIO | IOREQ_TYPE_COPY), "{req:?}");
                let (low, len) = rep_span(req.data, req.size as u8, req.count, req.df).unwrap();
                assert!(
                    dirty.iter().all(|&p| p * 4096 + 4095 >= low && p * 4096 < low + len as u64),
                    "{req:?} {dirty:?}"
                );
            }
        }
    }
}
