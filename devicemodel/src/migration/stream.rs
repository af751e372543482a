//! The device-state stream: what `xen-save-devices-state` writes and `-incoming` reads. libxl
//! treats it as an opaque blob inside its emulator record, but it must be self-delimiting: in a
//! stub domain the restore file arrives over a console that never reports end of file.
//!
//! Layout (all integers little-endian):
//!
//! ```text
//! "DMSTATE\0"                          magic, 8 bytes
//! u32 format version                   FORMAT_VERSION
//! repeated section:
//!     u8  0x01                         section tag
//!     u8  id length, id bytes          device state id (devices::snapshot::Snapshot::ID)
//!     u32 instance                     e.g. the serial port index
//!     u16 version                      the device's state format version
//!     u32 payload length, payload      the device's fields
//! u8  0xff                             end tag
//! u32 CRC-32 (IEEE)                    over every byte from the magic to the end tag
//! ```
//!
//! The reader takes exactly these bytes and nothing after them. It reads and checks the whole
//! stream (sizes bounded, checksum, every section known and present once) before it changes any
//! device, so a damaged file is refused with the machine untouched; a device that still refuses
//! its (checksummed) payload names the device and field.

use std::io::Read;

use devices::snapshot::{Snapshot, StateReader, StateWriter};

use super::MachineDevices;
use crate::machine::Machine;

pub const MAGIC: &[u8; 8] = b"DMSTATE\0";
pub const FORMAT_VERSION: u32 = 1;
const TAG_SECTION: u8 = 0x01;
const TAG_END: u8 = 0xff;
/// Bounds on what a reader accepts (the real stream is a few KiB; IDE PIO buffers are the
/// largest payloads at up to 2 x 64 KiB per channel).
const MAX_SECTION_LEN: u32 = 1 << 20;
const MAX_SECTIONS: usize = 64;

/// CRC-32 (IEEE 802.3, reflected, polynomial 0xedb88320), bitwise: the stream is small.
#[derive(Clone, Copy)]
pub struct Crc32(u32);

impl Crc32 {
    pub fn new() -> Self {
        Crc32(!0)
    }
    pub fn update(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u32::from(b);
            for _ in 0..8 {
                self.0 = if self.0 & 1 != 0 { (self.0 >> 1) ^ 0xedb8_8320 } else { self.0 >> 1 };
            }
        }
    }
    pub fn finish(self) -> u32 {
        !self.0
    }
}

impl Default for Crc32 {
    fn default() -> Self {
        Self::new()
    }
}

struct Section {
    id: String,
    instance: u32,
    version: u16,
    payload: Vec<u8>,
}

fn push_section(out: &mut Vec<u8>, id: &str, instance: u32, version: u16, payload: &[u8]) {
    out.push(TAG_SECTION);
    out.push(id.len() as u8);
    out.extend_from_slice(id.as_bytes());
    out.extend_from_slice(&instance.to_le_bytes());
    out.extend_from_slice(&version.to_le_bytes());
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(payload);
}

/// The sections of a machine, in save (and restore) order: the host bridge latch, then every
/// device in attach order (PCI functions, ISA devices, `-device` ones).
pub fn save_devices(d: &MachineDevices) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    let mut w = StateWriter::new();
    d.bus.save_pci_host(&mut w);
    push_section(&mut out, devices::pci::PciRoot::ID, 0, devices::pci::PciRoot::VERSION, &w.into_bytes());
    for a in &d.saved {
        let dev = a.device.lock().unwrap();
        push_section(&mut out, dev.state_id(), a.instance, dev.state_version(), &dev.save_state());
    }
    out.push(TAG_END);
    let mut crc = Crc32::new();
    crc.update(&out);
    out.extend_from_slice(&crc.finish().to_le_bytes());
    out
}

/// Saves every device of `machine`. The caller makes sure the guest is not running.
#[cfg_attr(not(test), allow(dead_code))] // the QMP path saves through MachineDevices
pub fn save_machine(machine: &Machine) -> Vec<u8> {
    save_devices(&machine.devices)
}

/// Reads exactly `N` bytes, feeding the checksum.
fn read_n<const N: usize>(r: &mut impl Read, crc: &mut Crc32, what: &str) -> Result<[u8; N], String> {
    let mut b = [0u8; N];
    r.read_exact(&mut b).map_err(|e| format!("device state: reading {what}: {e}"))?;
    crc.update(&b);
    Ok(b)
}

fn read_sections(r: &mut impl Read) -> Result<Vec<Section>, String> {
    let mut crc = Crc32::new();
    let magic: [u8; 8] = read_n(r, &mut crc, "the header")?;
    if &magic != MAGIC {
        return Err("device state: not a device-state stream of this device model (bad magic)".into());
    }
    let version = u32::from_le_bytes(read_n(r, &mut crc, "the format version")?);
    if version != FORMAT_VERSION {
        return Err(format!("device state: format version {version}; this build reads version {FORMAT_VERSION}"));
    }
    let mut sections = Vec::new();
    loop {
        let [tag] = read_n(r, &mut crc, "a section tag")?;
        match tag {
            TAG_END => break,
            TAG_SECTION => {}
            t => return Err(format!("device state: bad section tag {t:#04x} after {} sections", sections.len())),
        }
        if sections.len() >= MAX_SECTIONS {
            return Err(format!("device state: more than {MAX_SECTIONS} sections"));
        }
        let [id_len] = read_n(r, &mut crc, "a section id")?;
        let mut id = vec![0u8; id_len.into()];
        r.read_exact(&mut id).map_err(|e| format!("device state: reading a section id: {e}"))?;
        crc.update(&id);
        let id = String::from_utf8(id).map_err(|_| "device state: a section id is not text".to_string())?;
        let instance = u32::from_le_bytes(read_n(r, &mut crc, "a section instance")?);
        let version = u16::from_le_bytes(read_n(r, &mut crc, "a section version")?);
        let len = u32::from_le_bytes(read_n(r, &mut crc, "a section length")?);
        if len > MAX_SECTION_LEN {
            return Err(format!("device state: section '{id}' claims {len} bytes (at most {MAX_SECTION_LEN})"));
        }
        let mut payload = vec![0u8; len as usize];
        r.read_exact(&mut payload).map_err(|e| format!("device state: reading section '{id}': {e}"))?;
        crc.update(&payload);
        sections.push(Section { id, instance, version, payload });
    }
    let expected = crc.finish();
    let mut stored = [0u8; 4];
    r.read_exact(&mut stored).map_err(|e| format!("device state: reading the checksum: {e}"))?;
    if u32::from_le_bytes(stored) != expected {
        return Err("device state: checksum mismatch (the stream is damaged)".into());
    }
    Ok(sections)
}

/// Takes the one section `(id, instance)` out of `sections`.
fn take(sections: &mut Vec<Section>, id: &str, instance: u32) -> Result<Section, String> {
    let i = sections
        .iter()
        .position(|s| s.id == id && s.instance == instance)
        .ok_or_else(|| format!("device state: no section for device '{id}' instance {instance}"))?;
    Ok(sections.remove(i))
}

/// Reads a stream from `r` (exactly its bytes) and applies it to the devices. On error before
/// the first device changed (damaged or foreign stream) nothing changed.
pub fn restore_devices(d: &MachineDevices, r: &mut impl Read) -> Result<(), String> {
    let mut sections = read_sections(r)?;
    // Pair every section with its device first: a missing or extra section is refused before
    // anything changes.
    let host = take(&mut sections, devices::pci::PciRoot::ID, 0)?;
    let paired = d
        .saved
        .iter()
        .map(|a| {
            let id = a.device.lock().unwrap().state_id();
            take(&mut sections, id, a.instance)
        })
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(extra) = sections.first() {
        return Err(format!(
            "device state: section for device '{}' instance {} that this machine does not have",
            extra.id, extra.instance
        ));
    }

    if host.version != devices::pci::PciRoot::VERSION {
        return Err(format!("device state 'pci-host': unsupported version {}", host.version));
    }
    let mut hr = StateReader::new(devices::pci::PciRoot::ID, host.version, &host.payload);
    d.bus.restore_pci_host(&mut hr).map_err(|e| e.to_string())?;
    hr.finish().map_err(|e| e.to_string())?;
    for (s, a) in paired.iter().zip(&d.saved) {
        a.device.lock().unwrap().restore_state(s.version, &s.payload).map_err(|e| e.to_string())?;
    }
    // Configuration spaces changed behind the bus: map BARs where they are now, telling the
    // listeners (Xen ioreq range registration).
    let moved = d.bus.resync_bars();
    log::info!("device state restored ({} BAR mapping changes)", moved.len());
    Ok(())
}

/// Restores every device of `machine` from `r`, reading exactly the stream's bytes.
pub fn restore_machine(machine: &Machine, r: &mut impl Read) -> Result<(), String> {
    restore_devices(&machine.devices, r)
}

/// Test support for the QMP handler's tests.
#[cfg(test)]
pub(crate) mod tests_support {
    use std::sync::Arc;

    use super::*;
    use crate::migration::dirty::DirtyLog;

    pub(crate) fn machine_with_dirty<D: DirtyLog + 'static>(dirty: Arc<D>) -> (Machine, Arc<D>) {
        let mut m = super::tests::machine_for_tests();
        m.devices.dirty_log = Some(dirty.clone());
        (m, dirty)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::Arc;

    use devices::clock::ManualClock;
    use devices::interrupt::{RecordingInterruptService, RecordingInterrupts};
    use devices::memory::TestMemory;
    use devices::vm_control::RecordingVmControl;
    use devices::xen_platform::{UnplugRequest, XenPlatformHost};

    use super::*;
    use crate::cli::{parse, Command, Config};

    struct NoHost;
    impl XenPlatformHost for NoHost {
        fn unplug(&self, _: UnplugRequest) {}
        fn set_rom_lock(&self, _: bool) -> bool {
            true
        }
    }

    fn config() -> Config {
        let argv =
            ["-machine", "xenfv", "-xen-domid", "5", "-m", "128", "-serial", "null", "-serial", "null", "-nodefaults"];
        match parse(argv.iter().map(|s| s.to_string())).unwrap() {
            Command::Run(c) => *c,
            _ => unreachable!(),
        }
    }

    /// A machine on test fakes; `irqs` records its interrupts and PIIX3 link-route notifications.
    fn machine(irqs: Arc<RecordingInterrupts>) -> Machine {
        let timers = devices::timer::ManualTimers::new(Arc::new(ManualClock::new(1_700_000_000)));
        let wiring = crate::machine::Wiring {
            interrupts: Arc::new(RecordingInterruptService(irqs)),
            control: Arc::new(RecordingVmControl::default()),
            timers,
            dma_memory: Arc::new(TestMemory::new(1 << 20)),
            vram: Arc::new(devices::display::HostVram),
            xen_platform: Some(Arc::new(NoHost)),
            ptys: Vec::new(),
        };
        Machine::build(&config(), wiring, Default::default()).unwrap()
    }

    fn cfg_write(m: &Machine, slot: u8, func: u8, reg: u8, v: u32) {
        m.bus.pio_write(0xcf8, &(0x8000_0000u32 | (slot as u32) << 11 | (func as u32) << 8 | reg as u32).to_le_bytes());
        m.bus.pio_write(0xcfc, &v.to_le_bytes());
    }

    fn inb(m: &Machine, port: u16) -> u8 {
        let mut d = [0u8];
        m.bus.pio_read(port, &mut d);
        d[0]
    }

    /// What a guest would see of the machine through its ports.
    fn observe(m: &Machine) -> Vec<u8> {
        let mut v = Vec::new();
        for idx in [0x0bu8, 0x38, 0x40] {
            m.bus.pio_write(0x70, &[idx]);
            v.push(inb(m, 0x71));
        }
        for port in [0x3f9u16, 0x3fb, 0x3ff, 0x2ff, 0x92, 0xcf9, 0x64, 0xb3, 0x10] {
            v.push(inb(m, port));
        }
        let mut d = [0u8; 2];
        m.bus.pio_read(0xb004, &mut d);
        v.extend_from_slice(&d);
        // xen-platform BAR0 at its programmed place, PIIX3 routes, PAM.
        v.push(inb(m, 0xc200));
        for (slot, func, reg) in [(1u8, 0u8, 0x60u8), (0, 0, 0x5c), (2, 0, 0x10)] {
            m.bus.pio_write(
                0xcf8,
                &(0x8000_0000u32 | (slot as u32) << 11 | (func as u32) << 8 | reg as u32).to_le_bytes(),
            );
            let mut d = [0u8; 4];
            m.bus.pio_read(0xcfc, &mut d);
            v.extend_from_slice(&d);
        }
        v
    }

    pub(crate) fn machine_for_tests() -> Machine {
        machine(RecordingInterrupts::new())
    }

    fn drive_to_non_default(m: &Machine) {
        m.bus.pio_write(0x70, &[0x40]);
        m.bus.pio_write(0x71, &[0x5a]);
        m.bus.pio_write(0x3ff, &[0x11]);
        m.bus.pio_write(0x2ff, &[0x22]);
        m.bus.pio_write(0x3f9, &[0x03]);
        m.bus.pio_write(0x92, &[0x02]);
        m.bus.pio_write(0xb2, &[0xf1]); // ACPI enable: SCI_EN
        m.bus.pio_write(0xb3, &[0x77]);
        m.bus.pio_write(0x10, &[1]); // ROM lock
        cfg_write(m, 1, 0, 0x60, 0x0b0a_0b05);
        cfg_write(m, 0, 0, 0x5c, 0x3333_1111);
        cfg_write(m, 2, 0, 0x10, 0xc201);
        cfg_write(m, 2, 0, 0x04, 0x3);
        // Leave a configuration address latched.
        m.bus.pio_write(0xcf8, &0x8000_0804u32.to_le_bytes());
    }

    #[test]
    fn a_whole_machine_round_trips() {
        let a = machine(RecordingInterrupts::new());
        drive_to_non_default(&a);
        let before = observe(&a);
        a.bus.pio_write(0xcf8, &0x8000_0804u32.to_le_bytes());
        let stream = save_machine(&a);

        let irqs = RecordingInterrupts::new();
        let b = machine(irqs.clone());
        assert_ne!(observe(&b), before, "the fresh machine starts different");
        // Trailing bytes after the stream belong to someone else and must stay unread.
        let mut input = stream.clone();
        input.extend_from_slice(b"NEXT");
        let mut cursor = std::io::Cursor::new(input);
        restore_machine(&b, &mut cursor).unwrap();
        assert_eq!(cursor.position() as usize, stream.len(), "exactly the stream was read");
        let mut d = [0u8; 4];
        b.bus.pio_read(0xcf8, &mut d);
        assert_eq!(u32::from_le_bytes(d), 0x8000_0804, "the latched configuration address");
        assert_eq!(observe(&b), before);
        assert_eq!(
            irqs.take_routes(),
            vec![(0, Some(5)), (1, Some(11)), (2, Some(10)), (3, Some(11))],
            "Xen hears every link route"
        );
        // Saving the restored machine gives the same stream.
        b.bus.pio_write(0xcf8, &0x8000_0804u32.to_le_bytes());
        assert_eq!(save_machine(&b), stream);
    }

    #[test]
    fn damaged_and_foreign_streams_are_refused_and_change_nothing() {
        let a = machine(RecordingInterrupts::new());
        drive_to_non_default(&a);
        let stream = save_machine(&a);
        let b = machine(RecordingInterrupts::new());
        let fresh = observe(&b);
        for len in 0..stream.len() {
            let e = restore_machine(&b, &mut &stream[..len]).unwrap_err();
            assert!(e.starts_with("device state"), "{e}");
        }
        let mut rng = 0x1234_5678_9abc_def1u64;
        for i in 0..stream.len() {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let mut bad = stream.clone();
            bad[i] ^= (rng as u8) | 1;
            assert!(restore_machine(&b, &mut bad.as_slice()).is_err(), "a flipped byte at {i} was accepted");
        }
        for _ in 0..200 {
            let junk: Vec<u8> = (0..(rng % 512))
                .map(|_| {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    rng as u8
                })
                .collect();
            let _ = restore_machine(&b, &mut junk.as_slice());
        }
        assert_eq!(observe(&b), fresh, "no refused stream changed the machine");
        // A machine without the second serial port cannot take this state.
        let (c, _) = {
            let mut cfg = config();
            cfg.serials.truncate(1);
            let timers = devices::timer::ManualTimers::new(Arc::new(ManualClock::new(0)));
            let wiring = crate::machine::Wiring {
                interrupts: Arc::new(RecordingInterruptService(RecordingInterrupts::new())),
                control: Arc::new(RecordingVmControl::default()),
                timers,
                dma_memory: Arc::new(TestMemory::new(1 << 20)),
                vram: Arc::new(devices::display::HostVram),
                xen_platform: Some(Arc::new(NoHost)),
                ptys: Vec::new(),
            };
            (Machine::build(&cfg, wiring, Default::default()).unwrap(), ())
        };
        let e = restore_machine(&c, &mut stream.as_slice()).unwrap_err();
        assert!(e.contains("'serial' instance 1"), "{e}");
    }

    #[test]
    fn crc32_matches_the_ieee_check_value() {
        let mut c = Crc32::new();
        c.update(b"123456789");
        assert_eq!(c.finish(), 0xcbf4_3926);
    }
}

#[cfg(test)]
mod attached_device_tests {
    use std::sync::Arc;

    use devices::clock::ManualClock;
    use devices::interrupt::{IntxPin, RecordingInterruptService, RecordingInterrupts};
    use devices::memory::TestMemory;
    use devices::pci::PciAddress;
    use devices::vm_control::RecordingVmControl;

    use super::*;
    use crate::cli::{parse, Command};

    fn machine(extra: &[&str], irqs: Arc<RecordingInterrupts>) -> Result<Machine, String> {
        let mut argv = vec!["-m", "64", "-nodefaults", "-kernel", "k"];
        argv.extend_from_slice(extra);
        let cfg = match parse(argv.iter().map(|s| s.to_string())).map_err(|e| e.0)? {
            Command::Run(c) => *c,
            _ => unreachable!(),
        };
        let wiring = crate::machine::Wiring {
            interrupts: Arc::new(RecordingInterruptService(irqs)),
            control: Arc::new(RecordingVmControl::default()),
            timers: devices::timer::ManualTimers::new(Arc::new(ManualClock::new(0))),
            dma_memory: Arc::new(TestMemory::new(1 << 20)),
            vram: Arc::new(devices::display::HostVram),
            xen_platform: None,
            ptys: Vec::new(),
        };
        Machine::build(&cfg, wiring, Default::default()).map_err(|e| e.0)
    }

    fn cfg32(m: &Machine, slot: u8, reg: u8, write: Option<u32>) -> u32 {
        m.bus.pio_write(0xcf8, &(0x8000_0000u32 | (slot as u32) << 11 | reg as u32).to_le_bytes());
        if let Some(v) = write {
            m.bus.pio_write(0xcfc, &v.to_le_bytes());
        }
        let mut d = [0u8; 4];
        m.bus.pio_read(0xcfc, &mut d);
        u32::from_le_bytes(d)
    }

    #[test]
    fn registry_devices_get_slots_in_order_and_refuse_taken_ones() {
        let irqs = RecordingInterrupts::new();
        let m = machine(&["-device", "edu", "-device", "edu,addr=5", "-device", "edu"], irqs).unwrap();
        let slots: Vec<u8> = (0..32).filter(|&s| cfg32(&m, s, 0, None) == 0x11e8_1234).collect();
        assert_eq!(slots, vec![2, 3, 5]);
        let e = machine(&["-device", "edu,addr=4", "-device", "edu,addr=4"], RecordingInterrupts::new()).err().unwrap();
        assert!(e.contains("slot 0x4 is already in use"), "{e}");
        let e = machine(&["-device", "edu,addr=1"], RecordingInterrupts::new()).err().unwrap();
        assert!(e.contains("already in use"), "{e}");
    }

    #[test]
    fn an_attached_device_interrupts_through_its_slot_and_pin_and_is_saved() {
        let irqs = RecordingInterrupts::new();
        let a = machine(&["-device", "edu"], irqs.clone()).unwrap();
        cfg32(&a, 2, 0x10, Some(0xfe00_0000));
        cfg32(&a, 2, 0x04, Some(0x6));
        a.bus.mmio_write(0xfe00_0060, &0x8u32.to_le_bytes());
        let pin = irqs.intx_line(PciAddress::new(0, 2, 0), IntxPin::IntA);
        assert!(pin.level(), "edu at 00:02.0 asserts INTA#");
        let stream = save_machine(&a);

        let irqs_b = RecordingInterrupts::new();
        let b = machine(&["-device", "edu"], irqs_b.clone()).unwrap();
        restore_machine(&b, &mut stream.as_slice()).unwrap();
        let mut d = [0u8; 4];
        b.bus.mmio_read(0xfe00_0024, &mut d);
        assert_eq!(u32::from_le_bytes(d), 0x8, "interrupt status restored, BAR mapped where it was");
        assert!(irqs_b.intx_line(PciAddress::new(0, 2, 0), IntxPin::IntA).level(), "and the pin is driven again");
        // A machine without the device refuses the stream, naming the section.
        let c = machine(&[], RecordingInterrupts::new()).unwrap();
        let e = restore_machine(&c, &mut stream.as_slice()).unwrap_err();
        assert!(e.contains("'edu'"), "{e}");
    }
}
