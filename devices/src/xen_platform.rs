//! The Xen platform PCI device (5853:0001) that the `xenfv` machine always has, and its fixed I/O
//! ports 0x10-0x1f.
//!
//! PV drivers find Xen through this function: its BAR1 is 16 MiB of address space where they map
//! the grant table and shared info (Xen populates it; we never decode it), and its INTx pin is the
//! event channel upcall (raised by Xen itself). The fixed ports speak the emulated-device unplug
//! protocol of Xen's `docs/misc/hvm-emulated-unplug.pandoc`: magic, protocol version, product and
//! build numbers, the unplug mask, a byte-wise log, and platform flags (ROM lock). BAR0 (256 bytes
//! of I/O) carries the older SUSE/VMDP unplug writes at offsets 4 and 8 described in the same
//! document. Register-level behaviour matches qemu-xen's `xen-platform`.
//!
//! What an unplug means for the machine (detach IDE/SCSI disks but never CD-ROMs, remove NICs) is
//! the machine's business: it receives an [`UnplugRequest`] through [`XenPlatformHost`]. It must
//! quiesce in-flight I/O of a device before detaching it (XSA-139).

use std::sync::{Arc, Mutex};

use crate::bus::BusDevice;
use crate::pci::config::{BarKind, PciIds, COMMAND, COMMAND_IO_SPACE, COMMAND_MEMORY_SPACE};
use crate::pci::function::{PciFunction, PciFunctionDevice, PciResources};
use crate::ratelimit::RateLimiter;

pub const XEN_VENDOR_ID: u16 = 0x5853;
pub const XEN_PLATFORM_DEVICE_ID: u16 = 0x0001;
pub const XEN_PLATFORM_REVISION: u8 = 1;
/// Base class 0xff (device does not fit a defined class), sub-class 0x80 (other).
pub const XEN_PLATFORM_CLASS: u8 = 0xff;
pub const XEN_PLATFORM_SUBCLASS: u8 = 0x80;
/// BAR0: 256 bytes of I/O space.
pub const BAR0_SIZE: u64 = 0x100;
/// BAR1: 16 MiB of prefetchable memory for the grant table and shared info.
pub const BAR1_SIZE: u64 = 16 << 20;

/// The fixed I/O ports of the unplug protocol.
pub const FIXED_IO_BASE: u16 = crate::pc::layout::port::XEN_PLATFORM.0;
pub const FIXED_IO_LEN: u16 = crate::pc::layout::port::XEN_PLATFORM.1;
/// Word read at 0x10.
pub const MAGIC: u16 = 0x49d2;
/// Byte read at 0x12.
pub const PROTOCOL_VERSION: u8 = 1;

/// Unplug mask bits (hvm-emulated-unplug.pandoc step 6).
pub const UNPLUG_ALL_DISKS: u16 = 1 << 0;
pub const UNPLUG_ALL_NICS: u16 = 1 << 1;
pub const UNPLUG_AUX_IDE_DISKS: u16 = 1 << 2;
pub const UNPLUG_NVME_DISKS: u16 = 1 << 3;

/// Platform flags bit 0: the BIOS area 0xc0000-0xfffff is read-only.
pub const FLAG_ROM_LOCK: u8 = 1;

/// Longest log line kept; longer lines are cut (as QEMU flushes a full buffer).
const LOG_LINE_MAX: usize = 1024;

/// Which emulated disks to detach.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiskUnplug {
    /// Every IDE and SCSI disk; CD-ROM drives stay.
    All,
    /// IDE disks except the primary master; CD-ROM drives and SCSI disks stay.
    AuxIde,
}

/// One unplug request from the guest's PV drivers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct UnplugRequest {
    pub disks: Option<DiskUnplug>,
    pub nics: bool,
    pub nvme: bool,
}

impl UnplugRequest {
    /// Decodes an unplug mask. Bit 0 overrides bit 2 (the document's rule).
    pub fn from_mask(mask: u16) -> Self {
        let disks = if mask & UNPLUG_ALL_DISKS != 0 {
            Some(DiskUnplug::All)
        } else if mask & UNPLUG_AUX_IDE_DISKS != 0 {
            Some(DiskUnplug::AuxIde)
        } else {
            None
        };
        UnplugRequest { disks, nics: mask & UNPLUG_ALL_NICS != 0, nvme: mask & UNPLUG_NVME_DISKS != 0 }
    }

    pub fn is_empty(&self) -> bool {
        self.disks.is_none() && !self.nics && !self.nvme
    }
}

/// What the platform device asks of the machine and the hypervisor backend.
pub trait XenPlatformHost: Send + Sync {
    /// Detach the emulated devices the request names.
    fn unplug(&self, request: UnplugRequest);
    /// Make 0xc0000-0xfffff read-only (`true`) or writable (Xen: `set_mem_type` of pfns 0xc0-0xff).
    /// Returns whether it took effect; the flag only changes if it did.
    fn set_rom_lock(&self, locked: bool) -> bool;
}

/// State shared by the PCI function and the fixed ports.
struct PlatformState {
    host: Arc<dyn XenPlatformHost>,
    flags: u8,
    product: Option<u16>,
    build: Option<u32>,
    log_line: Vec<u8>,
}

static DRIVER_LOG_LIMIT: RateLimiter = RateLimiter::new(20, 5);

impl PlatformState {
    fn write_flags(&mut self, value: u8) {
        let locked = value & FLAG_ROM_LOCK != 0;
        if self.host.set_rom_lock(locked) {
            self.flags = value & FLAG_ROM_LOCK;
        }
    }

    fn unplug(&mut self, request: UnplugRequest) {
        if !request.is_empty() {
            log::info!("xen-platform: guest PV drivers unplug {request:?}");
            self.host.unplug(request);
        }
    }

    /// One byte of a driver log line; a line is logged at its newline (rate-limited: the guest
    /// controls how many lines it writes).
    fn log_byte(&mut self, b: u8) {
        if b != b'\n' && self.log_line.len() < LOG_LINE_MAX {
            self.log_line.push(b);
            return;
        }
        let line = std::mem::take(&mut self.log_line);
        if b != b'\n' {
            self.log_line.push(b);
        }
        if DRIVER_LOG_LIMIT.allow() {
            let text: String = String::from_utf8_lossy(&line).chars().flat_map(char::escape_debug).collect();
            log::info!(target: crate::ratelimit::GUEST_ERRORS_TARGET, "xen-platform: guest driver: {text}");
        }
    }
}

/// The PCI function (class 0xff80).
pub struct XenPlatformPci {
    function: PciFunction,
    state: Arc<Mutex<PlatformState>>,
}

/// The fixed ports 0x10-0x1f (register with `IoBus::insert` at [`FIXED_IO_BASE`]).
pub struct XenPlatformPorts {
    state: Arc<Mutex<PlatformState>>,
}

/// Creates the PCI function and its fixed ports.
pub fn new(host: Arc<dyn XenPlatformHost>) -> (Arc<Mutex<XenPlatformPci>>, Arc<Mutex<XenPlatformPorts>>) {
    let state =
        Arc::new(Mutex::new(PlatformState { host, flags: 0, product: None, build: None, log_line: Vec::new() }));
    let ids = PciIds {
        vendor_id: XEN_VENDOR_ID,
        device_id: XEN_PLATFORM_DEVICE_ID,
        revision_id: XEN_PLATFORM_REVISION,
        class: XEN_PLATFORM_CLASS,
        subclass: XEN_PLATFORM_SUBCLASS,
        prog_if: 0,
        subsystem_vendor_id: XEN_VENDOR_ID,
        subsystem_id: XEN_PLATFORM_DEVICE_ID,
        multifunction: false,
    };
    // INTA#: Xen itself asserts it when the guest's PV drivers take event channel upcalls "via
    // PCI INTx" of this device; the device model never drives it.
    let mut function = PciFunction::new(ids, Some(crate::interrupt::IntxPin::IntA), PciResources::none());
    let config = function.config_mut();
    // Both BARs are constants, so these declarations cannot fail.
    let _ = config.declare_bar(0, BarKind::Io, BAR0_SIZE);
    let _ = config.declare_bar(1, BarKind::Memory32 { prefetchable: true }, BAR1_SIZE);
    // qemu-xen enables I/O and memory decoding from the start; the BARs decode once placed.
    config.set_u16(COMMAND, COMMAND_IO_SPACE | COMMAND_MEMORY_SPACE);
    (
        Arc::new(Mutex::new(XenPlatformPci { function, state: state.clone() })),
        Arc::new(Mutex::new(XenPlatformPorts { state })),
    )
}

impl XenPlatformPci {
    /// Platform reset: flags back to 0 (ROM writable).
    pub fn reset(&mut self) {
        self.state.lock().unwrap().write_flags(0);
    }

    /// The product number the drivers announced (1 = Citrix Windows PV drivers, 3 = Linux).
    pub fn driver_product(&self) -> Option<u16> {
        self.state.lock().unwrap().product
    }

    /// The build number the drivers announced.
    pub fn driver_build(&self) -> Option<u32> {
        self.state.lock().unwrap().build
    }

    /// The platform flags (bit 0: ROM lock).
    pub fn flags(&self) -> u8 {
        self.state.lock().unwrap().flags
    }
}

impl PciFunctionDevice for XenPlatformPci {
    fn function(&self) -> &PciFunction {
        &self.function
    }
    fn function_mut(&mut self) -> &mut PciFunction {
        &mut self.function
    }

    fn read_bar(&mut self, bar: u8, offset: u64, data: &mut [u8]) {
        // BAR0 is byte-wide: offset 0 reads the flags, everything else all ones. BAR1 is not
        // backed by us; reads of its unpopulated parts return zero, as in qemu-xen.
        match (bar, offset, data.len()) {
            (0, 0, 1) => data[0] = self.state.lock().unwrap().flags,
            (1, _, _) => data.fill(0),
            _ => data.fill(0xff),
        }
    }

    fn write_bar(&mut self, bar: u8, offset: u64, data: &[u8]) {
        if bar != 0 || data.len() != 1 {
            return;
        }
        let mut s = self.state.lock().unwrap();
        match (offset, data[0]) {
            (0, v) => s.write_flags(v),
            // Old SUSE kernels: unplug disks and NICs.
            (4, 1) => s.unplug(UnplugRequest { disks: Some(DiskUnplug::All), nics: true, nvme: false }),
            // Old Novell VMDP: 1 = disks, 2 = NICs, anything else is a log byte.
            (8, 1) => s.unplug(UnplugRequest { disks: Some(DiskUnplug::All), ..Default::default() }),
            (8, 2) => s.unplug(UnplugRequest { nics: true, ..Default::default() }),
            (8, v) => s.log_byte(v),
            _ => {}
        }
    }
}

impl BusDevice for XenPlatformPorts {
    fn read(&mut self, addr: u64, data: &mut [u8]) {
        let offset = addr.wrapping_sub(FIXED_IO_BASE as u64);
        match (offset, data.len()) {
            (0, 2) => data.copy_from_slice(&MAGIC.to_le_bytes()),
            (0, 1) => data[0] = self.state.lock().unwrap().flags,
            (2, 1) => data[0] = PROTOCOL_VERSION,
            _ => data.fill(0xff),
        }
    }

    fn write(&mut self, addr: u64, data: &[u8]) {
        let offset = addr.wrapping_sub(FIXED_IO_BASE as u64);
        let mut s = self.state.lock().unwrap();
        match (offset, data) {
            (0, &[lo, hi]) => s.unplug(UnplugRequest::from_mask(u16::from_le_bytes([lo, hi]))),
            (2, &[lo, hi]) => s.product = Some(u16::from_le_bytes([lo, hi])),
            (0, &[a, b, c, d]) => s.build = Some(u32::from_le_bytes([a, b, c, d])),
            (0, &[v]) => s.write_flags(v),
            (2, &[v]) => s.log_byte(v),
            _ => {}
        }
    }
}

impl crate::snapshot::Snapshot for XenPlatformPci {
    const ID: &'static str = "xen-platform";
    const VERSION: u16 = 1;

    /// Configuration space (BAR placement), the platform flags (QEMU `vmstate_xen_platform`:
    /// flags) and the driver product/build numbers the guest announced.
    fn save(&self, w: &mut crate::snapshot::StateWriter) {
        self.function.config().save_state(w);
        let s = self.state.lock().unwrap();
        w.u8(s.flags);
        w.option(s.product.as_ref(), |w, v| w.u16(*v));
        w.option(s.build.as_ref(), |w, v| w.u32(*v));
    }

    /// Re-applies the ROM lock through the host, as QEMU's `xen_platform_post_load` does: the
    /// p2m type of the BIOS area is not part of the guest's saved memory.
    fn restore(&mut self, r: &mut crate::snapshot::StateReader<'_>) -> Result<(), crate::snapshot::StateError> {
        let config = self.function.config().load_state(r)?;
        let flags = r.u8_where("flags", |f| f & !FLAG_ROM_LOCK == 0, "a platform flags value (bit 0 only)")?;
        let product = r.option("product", |r| r.u16("product"))?;
        let build = r.option("build", |r| r.u32("build"))?;
        r.finish()?;
        self.function.config_mut().apply_state(config);
        let mut s = self.state.lock().unwrap();
        s.product = product;
        s.build = build;
        s.write_flags(flags);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::{AddressSpace, IoBus};
    use crate::pci::PciAddress;

    #[derive(Default)]
    struct RecordingHost {
        unplugs: Mutex<Vec<UnplugRequest>>,
        rom_locks: Mutex<Vec<bool>>,
        refuse_rom_lock: bool,
    }

    impl XenPlatformHost for RecordingHost {
        fn unplug(&self, request: UnplugRequest) {
            self.unplugs.lock().unwrap().push(request);
        }
        fn set_rom_lock(&self, locked: bool) -> bool {
            self.rom_locks.lock().unwrap().push(locked);
            !self.refuse_rom_lock
        }
    }

    const SLOT: PciAddress = PciAddress::new(0, 2, 0);

    fn machine(host: Arc<RecordingHost>) -> (IoBus, Arc<Mutex<XenPlatformPci>>) {
        let bus = IoBus::new();
        let (pci, ports) = new(host);
        bus.add_pci_device(SLOT, pci.clone()).unwrap();
        bus.insert(AddressSpace::Io, FIXED_IO_BASE as u64, FIXED_IO_LEN as u64, "xen-platform", ports).unwrap();
        (bus, pci)
    }

    fn cfg32(bus: &IoBus, offset: u16) -> u32 {
        let mut b = [0u8; 4];
        bus.pci_config_read(SLOT, offset, &mut b);
        u32::from_le_bytes(b)
    }

    fn inw(bus: &IoBus, port: u16) -> u16 {
        let mut b = [0u8; 2];
        bus.pio_read(port, &mut b);
        u16::from_le_bytes(b)
    }

    fn inb(bus: &IoBus, port: u16) -> u8 {
        let mut b = [0u8; 1];
        bus.pio_read(port, &mut b);
        b[0]
    }

    #[test]
    fn identifies_as_the_xen_platform_device() {
        let (bus, _) = machine(Arc::default());
        assert_eq!(cfg32(&bus, 0x00), 0x0001_5853);
        assert_eq!(cfg32(&bus, 0x08), 0xff80_0001, "class ff80, prog-if 0, revision 1");
        assert_eq!(cfg32(&bus, 0x2c), 0x0001_5853, "subsystem 5853:0001");
        assert_eq!((cfg32(&bus, 0x3c) >> 8) & 0xff, 1, "INTA#");
        assert_eq!(cfg32(&bus, 0x04) & 3, 3, "I/O and memory decoding on, as qemu-xen");
    }

    #[test]
    fn bars_size_as_256_bytes_of_io_and_16_mib_prefetchable_memory() {
        let (bus, _) = machine(Arc::default());
        for (offset, expect) in [(0x10u16, 0xffff_ff01u32), (0x14, 0xff00_0008)] {
            bus.pci_config_write(SLOT, offset, &u32::MAX.to_le_bytes());
            assert_eq!(cfg32(&bus, offset), expect, "BAR at {offset:#x}");
        }
    }

    #[test]
    fn linux_driver_handshake_then_unplug() {
        let host = Arc::new(RecordingHost::default());
        let (bus, pci) = machine(host.clone());
        // The sequence of Linux's xen_unplug_emulated_devices / check_platform_magic.
        assert_eq!(inw(&bus, 0x10), MAGIC);
        assert_eq!(inb(&bus, 0x12), PROTOCOL_VERSION);
        bus.pio_write(0x12, &3u16.to_le_bytes());
        bus.pio_write(0x10, &0x0102_0304u32.to_le_bytes());
        assert_eq!(inw(&bus, 0x10), MAGIC, "no driver is blacklisted");
        bus.pio_write(0x10, &(UNPLUG_ALL_DISKS | UNPLUG_ALL_NICS).to_le_bytes());
        assert_eq!(
            *host.unplugs.lock().unwrap(),
            vec![UnplugRequest { disks: Some(DiskUnplug::All), nics: true, nvme: false }]
        );
        let p = pci.lock().unwrap();
        assert_eq!((p.driver_product(), p.driver_build()), (Some(3), Some(0x0102_0304)));
    }

    #[test]
    fn unplug_mask_bits() {
        assert_eq!(
            UnplugRequest::from_mask(UNPLUG_AUX_IDE_DISKS),
            UnplugRequest { disks: Some(DiskUnplug::AuxIde), ..Default::default() }
        );
        assert_eq!(
            UnplugRequest::from_mask(UNPLUG_AUX_IDE_DISKS | UNPLUG_ALL_DISKS).disks,
            Some(DiskUnplug::All),
            "bit 0 overrides bit 2"
        );
        assert_eq!(UnplugRequest::from_mask(UNPLUG_NVME_DISKS), UnplugRequest { nvme: true, ..Default::default() });
        assert!(UnplugRequest::from_mask(0xfff0).is_empty());
        let host = Arc::new(RecordingHost::default());
        let (bus, _) = machine(host.clone());
        bus.pio_write(0x10, &0u16.to_le_bytes());
        assert!(host.unplugs.lock().unwrap().is_empty(), "an empty mask unplugs nothing");
    }

    #[test]
    fn other_offsets_and_sizes_read_all_ones_and_ignore_writes() {
        let host = Arc::new(RecordingHost::default());
        let (bus, _) = machine(host.clone());
        assert_eq!(inw(&bus, 0x12), 0xffff);
        assert_eq!(inb(&bus, 0x11), 0xff);
        let mut d = [0u8; 4];
        bus.pio_read(0x10, &mut d);
        assert_eq!(d, [0xff; 4]);
        bus.pio_write(0x11, &0x0003u16.to_le_bytes());
        bus.pio_write(0x14, &[1, 0]);
        assert!(host.unplugs.lock().unwrap().is_empty());
    }

    #[test]
    fn rom_lock_flag_follows_the_host() {
        let host = Arc::new(RecordingHost::default());
        let (bus, pci) = machine(host.clone());
        bus.pio_write(0x10, &[0xff]);
        assert_eq!(inb(&bus, 0x10), FLAG_ROM_LOCK, "only bit 0 is a flag");
        pci.lock().unwrap().reset();
        assert_eq!(inb(&bus, 0x10), 0);
        assert_eq!(*host.rom_locks.lock().unwrap(), vec![true, false]);
        let refusing = Arc::new(RecordingHost { refuse_rom_lock: true, ..Default::default() });
        let (bus, _) = machine(refusing);
        bus.pio_write(0x10, &[1]);
        assert_eq!(inb(&bus, 0x10), 0, "a lock the hypervisor refused is not reported as set");
    }

    #[test]
    fn legacy_bar0_unplug_writes() {
        let host = Arc::new(RecordingHost::default());
        let (bus, _) = machine(host.clone());
        bus.pci_config_write(SLOT, 0x10, &0xc100u32.to_le_bytes());
        bus.pio_write(0xc104, &[1]);
        bus.pio_write(0xc108, &[2]);
        bus.pio_write(0xc108, &[1]);
        bus.pio_write(0xc108, b"x"); // a VMDP log byte, not an unplug
        bus.pio_write(0xc104, &[2]); // only 1 means anything at offset 4
        let all = Some(DiskUnplug::All);
        assert_eq!(
            *host.unplugs.lock().unwrap(),
            vec![
                UnplugRequest { disks: all, nics: true, nvme: false },
                UnplugRequest { nics: true, ..Default::default() },
                UnplugRequest { disks: all, ..Default::default() }
            ]
        );
        bus.pio_write(0xc100, &[1]);
        assert_eq!(inb(&bus, 0xc100), 1, "BAR0 offset 0 is the flags register");
        assert_eq!(inb(&bus, 0xc101), 0xff);
    }

    #[test]
    fn log_lines_are_bounded() {
        let host = Arc::new(RecordingHost::default());
        let (pci, ports) = new(host);
        let mut ports = ports.lock().unwrap();
        for _ in 0..(3 * LOG_LINE_MAX) {
            ports.write(0x12, b"a");
        }
        assert!(pci.lock().unwrap().state.lock().unwrap().log_line.len() <= LOG_LINE_MAX);
        ports.write(0x12, b"\n");
        assert!(pci.lock().unwrap().state.lock().unwrap().log_line.is_empty());
    }
}
