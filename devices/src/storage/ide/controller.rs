//! The PIIX3 IDE function (Intel 82371SB datasheet, section 2.5: PCI function 1, 8086:7010) in
//! legacy ("compatibility") mode: fixed command/control ports and IRQ 14/15 per channel, plus the
//! bus-master registers of SFF-8038i in BAR4.
//!
//! Wiring for the machine:
//! * `bus.add_pci_device(PIIX3_IDE_ADDRESS, controller)`; BAR4 (16 bytes of I/O) maps itself when
//!   the guest programs it.
//! * every range of [`LEGACY_PORT_RANGES`] to [`IdeHandle::legacy_ports`] (one device for all four).
//! * IRQ 14 and 15 (ISA, level-high as the guest sees the 8259/IOAPIC pin) passed to [`Piix3Ide::new`].
//! * the QMP side keeps an [`IdeHandle`] for `query-block` and the removable-media commands.

use std::sync::{Arc, Mutex, Weak};

use super::ata::AtaDisk;
use super::atapi::AtapiCdrom;
use super::busmaster::regs::CHANNEL_LEN;
use super::cdrom::{CdromMedia, MediaError};
use super::channel::{Channel, DmaContext};
use super::drive::{Drive, DriveKind};
use super::identify::DriveIdentity;
use super::transfer::Transfer;
use crate::bus::BusDevice;
use crate::interrupt::InterruptLine;
use crate::memory::GuestMemory;
use crate::pci::config::{self, BarKind, PciIds};
use crate::pci::{BarRegion, ConfigSpace, PciAddress, PciDevice};
use crate::storage::block::BlockBackend;
use crate::storage::worker::IoWorker;

/// Where PIIX3 puts its IDE function: device 1 (the south bridge), function 1.
pub const PIIX3_IDE_ADDRESS: PciAddress = PciAddress::new(0, 1, 1);
/// The ISA interrupts of the primary and secondary channel in compatibility mode.
pub const CHANNEL_IRQS: [u8; 2] = [14, 15];
/// The bus-master BAR (SFF-8038i section 2: BAR4, 16 bytes of I/O).
pub const BUS_MASTER_BAR: u8 = 4;
const BUS_MASTER_BAR_SIZE: u64 = 16;
/// Fixed port ranges of compatibility mode: (base, length, name). The control blocks are one
/// byte: 0x3f7/0x377 belong to the floppy controller.
pub const LEGACY_PORT_RANGES: [(u64, u64, &str); 4] =
    [(0x1f0, 8, "ide0 command"), (0x3f6, 1, "ide0 control"), (0x170, 8, "ide1 command"), (0x376, 1, "ide1 control")];
const COMMAND_BLOCKS: [u64; 2] = [0x1f0, 0x170];
const CONTROL_PORTS: [u64; 2] = [0x3f6, 0x376];

/// PIIX3 IDE timing registers (datasheet section 2.5.2): IDETIM primary (0x40) and secondary
/// (0x42), SIDETIM (0x44). Bit 15 of IDETIM is the channel's IDE Decode Enable.
const IDETIM: u8 = 0x40;
const SIDETIM: u8 = 0x44;
const IDETIM_DECODE_ENABLE: u16 = 0x8000;

/// What sits at one device position.
pub enum IdeMedia {
    /// A fixed ATA disk; the backend must be writable.
    Disk(Arc<dyn BlockBackend>),
    /// An ATAPI CD/DVD-ROM, possibly empty.
    Cdrom(Option<Arc<dyn BlockBackend>>),
}

/// One device position's configuration (QEMU `-device ide-hd`/`ide-cd` properties).
pub struct IdeDriveConfig {
    pub media: IdeMedia,
    /// Model number (IDENTIFY words 27-46); default "QEMU HARDDISK" / "QEMU DVD-ROM".
    pub model: Option<String>,
    /// Serial number (words 10-19); default "QM0000n", n = position + 1.
    pub serial: Option<String>,
    /// Firmware revision (words 23-26); default "2.5+".
    pub firmware: Option<String>,
}

impl IdeDriveConfig {
    pub fn disk(backend: Arc<dyn BlockBackend>) -> Self {
        IdeDriveConfig { media: IdeMedia::Disk(backend), model: None, serial: None, firmware: None }
    }
    pub fn cdrom(medium: Option<Arc<dyn BlockBackend>>) -> Self {
        IdeDriveConfig { media: IdeMedia::Cdrom(medium), model: None, serial: None, firmware: None }
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum IdeConfigError {
    /// IDE disks are always writable (as in QEMU): attach the image as a CD-ROM, or writable.
    ReadOnlyDisk { channel: usize, unit: usize, file: String },
}

impl std::fmt::Display for IdeConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IdeConfigError::ReadOnlyDisk { channel, unit, file } => write!(
                f,
                "IDE disk {channel}:{unit} ('{file}') is read-only, but IDE disks cannot be; open it read-write or attach it as a CD-ROM"
            ),
        }
    }
}

impl std::error::Error for IdeConfigError {}

/// A tray that moved, for QMP `DEVICE_TRAY_MOVED`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TrayMoved {
    pub channel: usize,
    pub unit: usize,
    pub tray_open: bool,
}

/// Called after a tray moved, by the guest (START STOP UNIT) or the host. Runs on the thread
/// that caused the move, after the controller's lock is released.
pub type TrayListener = Arc<dyn Fn(TrayMoved) + Send + Sync>;

/// A medium in a drive, as QMP `query-block` reports it (`inserted`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InsertedMedium {
    pub file: String,
    pub read_only: bool,
    /// Image format (`drv`), "raw".
    pub format: String,
    pub size: u64,
}

/// One device position for QMP `query-block`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DriveQuery {
    pub channel: usize,
    pub unit: usize,
    pub cdrom: bool,
    pub removable: bool,
    pub locked: bool,
    /// Only for removable drives.
    pub tray_open: Option<bool>,
    pub inserted: Option<InsertedMedium>,
}

/// Both channels and what they need to do DMA.
pub(super) struct IdeState {
    pub(super) channels: [Channel; 2],
    pub(super) mem: Arc<dyn GuestMemory>,
    pub(super) bus_master_enabled: bool,
    /// Each channel's I/O worker; `None` runs transfers inline.
    workers: [Option<Arc<dyn IoWorker>>; 2],
    /// This state itself, for the jobs the workers run (they must not keep a dropped
    /// controller alive).
    me: Weak<Mutex<IdeState>>,
}

impl IdeState {
    pub(super) fn with_ctx<R>(&mut self, channel: usize, f: impl FnOnce(&mut Channel, &DmaContext<'_>) -> R) -> R {
        let mem = self.mem.clone();
        let submit = self.submitter(channel);
        let ctx = DmaContext { mem: &mem, bus_master_enabled: self.bus_master_enabled, submit: submit.as_deref() };
        f(&mut self.channels[channel], &ctx)
    }

    /// How `channel` queues a transfer on its worker: the job runs the data phase without the
    /// controller's lock, then completes the command under it.
    fn submitter(&self, channel: usize) -> Option<Box<dyn Fn(Arc<Transfer>)>> {
        let worker = self.workers[channel].clone()?;
        let me = self.me.clone();
        Some(Box::new(move |transfer: Arc<Transfer>| {
            let me = me.clone();
            worker.submit(Box::new(move || {
                transfer.run();
                complete_on_worker(&me, channel, &transfer);
            }));
        }))
    }

    fn take_tray_moves(&mut self) -> Vec<TrayMoved> {
        let mut out = Vec::new();
        for (channel, ch) in self.channels.iter_mut().enumerate() {
            out.extend(ch.take_tray_moves().into_iter().map(|(unit, tray_open)| TrayMoved {
                channel,
                unit,
                tray_open,
            }));
        }
        out
    }
}

/// The worker's half of a job: completion under the controller's lock (unless the controller
/// is gone).
fn complete_on_worker(state: &Weak<Mutex<IdeState>>, channel: usize, transfer: &Arc<Transfer>) {
    if let Some(state) = state.upgrade() {
        let mut s = state.lock().unwrap_or_else(|e| e.into_inner());
        s.with_ctx(channel, |c, ctx| c.transfer_done(transfer, ctx));
    }
}

/// State shared by the PCI function, the legacy ports and the host handles.
#[derive(Clone)]
pub(super) struct Shared {
    pub(super) state: Arc<Mutex<IdeState>>,
    listener: Arc<Mutex<Option<TrayListener>>>,
}

impl Shared {
    /// Runs `f` under the state lock, then reports tray movements with the lock released.
    fn with<R>(&self, f: impl FnOnce(&mut IdeState) -> R) -> R {
        let (r, moves) = {
            let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
            let r = f(&mut s);
            (r, s.take_tray_moves())
        };
        if !moves.is_empty() {
            let listener = self.listener.lock().unwrap_or_else(|e| e.into_inner()).clone();
            if let Some(l) = listener {
                for m in moves {
                    l(m);
                }
            }
        }
        r
    }
}

/// The PCI function. Put it on the bus as a [`crate::pci::SharedPciDevice`].
pub struct Piix3Ide {
    pub(super) config: ConfigSpace,
    pub(super) shared: Shared,
}

fn config_space() -> ConfigSpace {
    let mut c = ConfigSpace::new(PciIds {
        vendor_id: 0x8086,
        device_id: 0x7010,
        revision_id: 0,
        class: 0x01,    // mass storage
        subclass: 0x01, // IDE
        // Prog-if 0x80: bus-master capable, both channels in fixed compatibility mode.
        prog_if: 0x80,
        // QEMU's subsystem IDs, so guests that installed drivers under qemu-xen see the same device.
        subsystem_vendor_id: 0x1af4,
        subsystem_id: 0x1100,
        multifunction: false,
    });
    // Datasheet 2.5.1: only I/O Space and Bus Master are implemented in PCICMD; PCISTS resets
    // to 0280h (medium DEVSEL timing, fast back-to-back capable).
    c.set_writable_u16(config::COMMAND, config::COMMAND_IO_SPACE | config::COMMAND_BUS_MASTER);
    c.set_u16(config::STATUS, config::STATUS_DEVSEL_MEDIUM | 0x0080);
    c.declare_bar(BUS_MASTER_BAR, BarKind::Io, BUS_MASTER_BAR_SIZE).expect("BAR4 is a valid 16-byte I/O BAR");
    // Timing registers are storage for firmware. They reset to 0 on real hardware; here the
    // decode enable bit starts set, as firmware (hvmloader, SeaBIOS) would leave it, so that a
    // guest booted without firmware finds its channels enabled. The ports always decode.
    for off in [IDETIM, IDETIM + 2] {
        c.set_u16(off, IDETIM_DECODE_ENABLE);
        c.set_writable_u16(off, 0xffff);
    }
    c.set_writable_u8(SIDETIM, 0xff);
    c
}

fn identity(cfg: &IdeDriveConfig, index: usize, cdrom: bool) -> DriveIdentity {
    let default_model = if cdrom { "QEMU DVD-ROM" } else { "QEMU HARDDISK" };
    DriveIdentity {
        model: cfg.model.clone().unwrap_or_else(|| default_model.to_string()),
        serial: cfg.serial.clone().unwrap_or_else(|| format!("QM{:05}", index + 1)),
        firmware: cfg.firmware.clone().unwrap_or_else(|| "2.5+".to_string()),
    }
}

impl Piix3Ide {
    /// `drives[channel][unit]`; `irqs` are the primary (IRQ 14) and secondary (IRQ 15) lines.
    pub fn new(
        drives: [[Option<IdeDriveConfig>; 2]; 2],
        mem: Arc<dyn GuestMemory>,
        irqs: [Arc<dyn InterruptLine>; 2],
    ) -> Result<Piix3Ide, IdeConfigError> {
        let mut built: Vec<Drive> = Vec::with_capacity(4);
        for (channel, units) in drives.into_iter().enumerate() {
            for (unit, cfg) in units.into_iter().enumerate() {
                let index = channel * 2 + unit;
                let kind = match cfg {
                    None => DriveKind::Absent,
                    Some(cfg) => match &cfg.media {
                        IdeMedia::Disk(backend) => {
                            if backend.read_only() {
                                return Err(IdeConfigError::ReadOnlyDisk { channel, unit, file: backend.filename() });
                            }
                            DriveKind::Disk(Box::new(AtaDisk::new(backend.clone(), identity(&cfg, index, false))))
                        }
                        IdeMedia::Cdrom(medium) => {
                            DriveKind::Cdrom(Box::new(AtapiCdrom::new(medium.clone(), identity(&cfg, index, true))))
                        }
                    },
                };
                built.push(Drive::new(kind));
            }
        }
        let mut it = built.into_iter();
        let mut next = || it.next().unwrap_or_else(|| Drive::new(DriveKind::Absent));
        let [irq0, irq1] = irqs;
        let channels = [Channel::new([next(), next()], irq0), Channel::new([next(), next()], irq1)];
        let state = Arc::new_cyclic(|me| {
            Mutex::new(IdeState { channels, mem, bus_master_enabled: false, workers: [None, None], me: me.clone() })
        });
        Ok(Piix3Ide { config: config_space(), shared: Shared { state, listener: Arc::new(Mutex::new(None)) } })
    }

    /// Gives each channel an I/O worker: bus-master transfers then run there and complete
    /// asynchronously (the vCPU's write of Start returns at once). Without workers they run
    /// inline, before the register write returns.
    pub fn set_io_workers(&mut self, workers: [Arc<dyn IoWorker>; 2]) {
        self.shared.with(|s| s.workers = workers.map(Some));
    }

    /// The host-side handle (query, removable media, legacy ports, tray events).
    pub fn handle(&self) -> IdeHandle {
        IdeHandle { shared: self.shared.clone() }
    }

    /// Machine reset: configuration space to its defaults, both channels to power-on state,
    /// media kept (a tray lock is released). The machine must then drop BAR4's mapping, which
    /// no longer decodes.
    pub fn reset(&mut self) {
        self.config = config_space();
        self.shared.with(|s| {
            s.bus_master_enabled = false;
            for ch in &mut s.channels {
                ch.hard_reset();
            }
        });
    }
}

impl PciDevice for Piix3Ide {
    fn config_read(&mut self, offset: u16, data: &mut [u8]) {
        self.config.read(offset, data);
    }

    fn config_write(&mut self, offset: u16, data: &[u8]) {
        self.config.write(offset, data);
        let enabled = self.config.bus_master_enabled();
        self.shared.with(|s| {
            let was = s.bus_master_enabled;
            s.bus_master_enabled = enabled;
            if enabled && !was {
                // A transfer that was started before the guest enabled bus mastering runs now.
                for ch in 0..2 {
                    s.with_ctx(ch, |c, ctx| c.run_dma(ctx));
                }
            }
        });
    }

    fn decoded_bars(&self) -> Vec<BarRegion> {
        self.config.decoded_bars()
    }

    fn bar_read(&mut self, bar: u8, offset: u64, data: &mut [u8]) {
        if bar != BUS_MASTER_BAR {
            data.fill(0xff);
            return;
        }
        self.shared.with(|s| {
            for (i, b) in data.iter_mut().enumerate() {
                let off = offset.saturating_add(i as u64);
                *b = match s.channels.get((off / CHANNEL_LEN) as usize) {
                    Some(ch) => ch.bus_master.read(off % CHANNEL_LEN),
                    None => 0xff,
                };
            }
        });
    }

    fn bar_write(&mut self, bar: u8, offset: u64, data: &[u8]) {
        if bar != BUS_MASTER_BAR {
            return;
        }
        self.shared.with(|s| {
            for (i, &v) in data.iter().enumerate() {
                let off = offset.saturating_add(i as u64);
                let channel = (off / CHANNEL_LEN) as usize;
                if channel < 2 {
                    s.with_ctx(channel, |c, ctx| c.write_bus_master(off % CHANNEL_LEN, v, ctx));
                }
            }
        });
    }
}

/// The compatibility-mode command and control ports of both channels: register it for every
/// range of [`LEGACY_PORT_RANGES`].
pub struct IdeLegacyPorts {
    shared: Shared,
}

/// Which channel register an absolute port is.
enum Port {
    Command(usize, u64),
    Control(usize),
}

fn decode_port(addr: u64) -> Option<Port> {
    for ch in 0..2 {
        if (COMMAND_BLOCKS[ch]..COMMAND_BLOCKS[ch] + 8).contains(&addr) {
            return Some(Port::Command(ch, addr - COMMAND_BLOCKS[ch]));
        }
        if addr == CONTROL_PORTS[ch] {
            return Some(Port::Control(ch));
        }
    }
    None
}

impl BusDevice for IdeLegacyPorts {
    fn read(&mut self, addr: u64, data: &mut [u8]) {
        self.shared.with(|s| match decode_port(addr) {
            Some(Port::Command(ch, off)) => s.with_ctx(ch, |c, ctx| c.read_command_block(off, data, ctx)),
            Some(Port::Control(ch)) => data.fill(s.channels[ch].read_control()),
            None => data.fill(0xff),
        });
        log::trace!(target: "ide", "in {addr:#x} -> {data:02x?}");
    }

    fn write(&mut self, addr: u64, data: &[u8]) {
        log::trace!(target: "ide", "out {addr:#x} <- {data:02x?}");
        self.shared.with(|s| match decode_port(addr) {
            Some(Port::Command(ch, off)) => s.with_ctx(ch, |c, ctx| c.write_command_block(off, data, ctx)),
            Some(Port::Control(ch)) => {
                if let Some(&v) = data.first() {
                    s.channels[ch].write_control(v);
                }
            }
            None => {}
        })
    }
}

/// Host-side access to the controller's drives, safe to keep and clone.
#[derive(Clone)]
pub struct IdeHandle {
    shared: Shared,
}

impl IdeHandle {
    /// One bus device for all four ranges of [`LEGACY_PORT_RANGES`].
    pub fn legacy_ports(&self) -> Arc<Mutex<IdeLegacyPorts>> {
        Arc::new(Mutex::new(IdeLegacyPorts { shared: self.shared.clone() }))
    }

    /// Sets who hears about tray movements (QMP `DEVICE_TRAY_MOVED`). The listener must not
    /// block on the guest; it runs after the controller's lock is released.
    pub fn set_tray_listener(&self, listener: TrayListener) {
        *self.shared.listener.lock().unwrap_or_else(|e| e.into_inner()) = Some(listener);
    }

    /// Every present device, for QMP `query-block`.
    pub fn query(&self) -> Vec<DriveQuery> {
        self.shared.with(|s| {
            let mut out = Vec::new();
            for (channel, ch) in s.channels.iter().enumerate() {
                for (unit, d) in ch.drives.iter().enumerate() {
                    let info = |b: &Arc<dyn BlockBackend>| InsertedMedium {
                        file: b.filename(),
                        read_only: b.read_only(),
                        format: b.format().to_string(),
                        size: b.len(),
                    };
                    match &d.kind {
                        DriveKind::Absent => {}
                        DriveKind::Disk(disk) => out.push(DriveQuery {
                            channel,
                            unit,
                            cdrom: false,
                            removable: false,
                            locked: false,
                            tray_open: None,
                            inserted: Some(info(disk.backend())),
                        }),
                        DriveKind::Cdrom(cd) => out.push(DriveQuery {
                            channel,
                            unit,
                            cdrom: true,
                            removable: true,
                            locked: cd.media.locked(),
                            tray_open: Some(cd.media.tray_open()),
                            inserted: cd.media.medium().map(info),
                        }),
                    }
                }
            }
            out
        })
    }

    /// Xen PV unplug (docs/misc/hvm-emulated-unplug): detaches the ATA disks, all of them or
    /// all but the primary master (`aux_only`); CD-ROM drives stay. The guest's PV drivers take
    /// over the same images. A DMA in flight on a disk is cancelled (waited for if it is moving
    /// data) before the disk goes, so the use-after-free of XSA-139 cannot happen; its data is
    /// flushed first. Returns how many disks were detached.
    pub fn unplug_disks(&self, aux_only: bool) -> usize {
        self.shared.with(|s| {
            let mut n = 0;
            for (channel, ch) in s.channels.iter_mut().enumerate() {
                if let Some(unit) = ch.in_flight_unit() {
                    if matches!(ch.drives[unit].kind, DriveKind::Disk(_)) && !(aux_only && channel == 0 && unit == 0) {
                        // No I/O of an emulated disk may outlive it (XSA-139).
                        ch.cancel_in_flight();
                    }
                }
                for (unit, d) in ch.drives.iter_mut().enumerate() {
                    if aux_only && channel == 0 && unit == 0 {
                        continue;
                    }
                    if let DriveKind::Disk(disk) = &d.kind {
                        if let Err(e) = disk.backend().flush() {
                            log::warn!("IDE {channel}:{unit}: flush before unplug failed: {e}");
                        }
                        *d = Drive::new(DriveKind::Absent);
                        n += 1;
                    }
                }
            }
            n
        })
    }

    /// The CD-ROM at `channel`/`unit`, if there is one.
    pub fn cdrom(&self, channel: usize, unit: usize) -> Option<CdromHandle> {
        let is_cd = self
            .shared
            .with(|s| s.channels.get(channel).and_then(|c| c.drives.get(unit)).is_some_and(|d| d.is_packet()));
        is_cd.then(|| CdromHandle { shared: self.shared.clone(), channel, unit })
    }
}

/// The removable-media side of one CD-ROM, for QMP `eject`, `blockdev-change-medium`,
/// `blockdev-open-tray`, `blockdev-close-tray`, `blockdev-remove-medium`, `blockdev-insert-medium`.
#[derive(Clone)]
pub struct CdromHandle {
    shared: Shared,
    channel: usize,
    unit: usize,
}

impl CdromHandle {
    fn media<R>(&self, f: impl FnOnce(&mut CdromMedia) -> Result<R, MediaError>) -> Result<R, MediaError> {
        let (channel, unit) = (self.channel, self.unit);
        self.shared.with(|s| {
            let ch = &mut s.channels[channel];
            let DriveKind::Cdrom(cd) = &mut ch.drives[unit].kind else { return Err(MediaError::NotRemovable) };
            let had_medium = cd.media.medium().is_some();
            let r = f(&mut cd.media);
            if had_medium && cd.media.medium().is_none() {
                ch.medium_removed(unit);
            }
            r
        })
    }

    /// QMP `eject`: opens the tray and removes the medium. A tray the guest locked is refused
    /// with [`MediaError::Locked`] (and the guest is asked to eject) unless `force`.
    pub fn eject(&self, force: bool) -> Result<(), MediaError> {
        self.media(|m| m.eject(force))
    }

    /// Opens the tray, closes it with `medium` in it: QMP `blockdev-change-medium`.
    pub fn change(&self, medium: Arc<dyn BlockBackend>, force: bool) -> Result<(), MediaError> {
        self.media(|m| m.change(medium, force))
    }

    /// Inserts `medium` as a user would: the same as [`CdromHandle::change`] without force.
    pub fn insert(&self, medium: Arc<dyn BlockBackend>) -> Result<(), MediaError> {
        self.change(medium, false)
    }

    pub fn open_tray(&self, force: bool) -> Result<(), MediaError> {
        self.media(|m| m.open_tray(force))
    }

    pub fn close_tray(&self) {
        let _ = self.media(|m| {
            m.close_tray();
            Ok(())
        });
    }

    /// QMP `blockdev-remove-medium` (tray must be open).
    pub fn remove_medium(&self) -> Result<(), MediaError> {
        self.media(|m| m.remove_medium().map(|_| ()))
    }

    /// QMP `blockdev-insert-medium` (tray must be open and empty).
    pub fn insert_medium(&self, medium: Arc<dyn BlockBackend>) -> Result<(), MediaError> {
        self.media(|m| m.insert_medium(medium))
    }

    pub fn tray_open(&self) -> bool {
        self.media(|m| Ok(m.tray_open())).unwrap_or(false)
    }

    pub fn locked(&self) -> bool {
        self.media(|m| Ok(m.locked())).unwrap_or(false)
    }

    /// The medium's backend, to carry it over to a rebuilt machine (guest reboot).
    pub fn backend(&self) -> Option<Arc<dyn BlockBackend>> {
        self.media(|m| Ok(m.medium().cloned())).ok().flatten()
    }

    /// The medium in the drive (open tray or not).
    pub fn medium(&self) -> Option<InsertedMedium> {
        self.media(|m| {
            Ok(m.medium().map(|b| InsertedMedium {
                file: b.filename(),
                read_only: b.read_only(),
                format: b.format().to_string(),
                size: b.len(),
            }))
        })
        .ok()
        .flatten()
    }

    pub fn query(&self) -> Option<DriveQuery> {
        IdeHandle { shared: self.shared.clone() }
            .query()
            .into_iter()
            .find(|q| q.channel == self.channel && q.unit == self.unit)
    }
}
