//! The controller driven through its ports, BAR4 and PCI configuration space on an [`IoBus`],
//! with [`TestMemory`] as guest RAM, the way QEMU's `tests/qtest/ide-test.c` and `cdrom-test.c`
//! drive theirs.

mod ata;
mod atapi;
mod dma;
mod snapshot;

use std::sync::{Arc, Mutex};

use super::spec::reg;
use super::*;
use crate::bus::{AddressSpace, IoBus};
use crate::interrupt::RecordingLine;
use crate::memory::{GuestMemory, TestMemory};
use crate::pci::config::PciIds;
use crate::pci::{ConfigSpace, PciAddress, PciDevice};
use crate::storage::block::MemoryBackend;
use crate::storage::worker::ManualWorker;

/// Function 0 of the PIIX3 (the ISA bridge belongs to the chipset module): just an identity.
struct IsaBridgeStandIn(ConfigSpace);

impl Default for IsaBridgeStandIn {
    fn default() -> Self {
        IsaBridgeStandIn(ConfigSpace::new(PciIds {
            vendor_id: 0x8086,
            device_id: 0x7000,
            class: 6,
            subclass: 1,
            multifunction: true,
            ..Default::default()
        }))
    }
}

impl PciDevice for IsaBridgeStandIn {
    fn config_read(&mut self, offset: u16, data: &mut [u8]) {
        self.0.read(offset, data)
    }
    fn config_write(&mut self, offset: u16, data: &[u8]) {
        self.0.write(offset, data)
    }
    fn decoded_bars(&self) -> Vec<crate::pci::BarRegion> {
        Vec::new()
    }
}

pub const BM_BASE: u16 = 0xc000;
pub const PRD_TABLE: u64 = 0x1000;
pub const MEM_SIZE: usize = 1 << 20;

pub struct Rig {
    /// Both channels' I/O worker. Unless `hold` is set, the rig runs its jobs after every port
    /// access, so a transfer completes "soon" as a worker thread would complete it.
    pub worker: Arc<ManualWorker>,
    pub hold: std::cell::Cell<bool>,
    pub bus: IoBus,
    pub mem: Arc<TestMemory>,
    pub irqs: [Arc<RecordingLine>; 2],
    pub handle: IdeHandle,
    pub ide: Arc<Mutex<Piix3Ide>>,
}

/// One channel of a [`Rig`], as a driver sees it.
pub struct Ch<'a> {
    pub rig: &'a Rig,
    pub ch: usize,
}

pub fn image(sectors: usize, sector_size: usize) -> Vec<u8> {
    // Each sector starts with its number, then a pattern that differs per sector.
    let mut v = vec![0u8; sectors * sector_size];
    for (i, s) in v.chunks_mut(sector_size).enumerate() {
        s[..4].copy_from_slice(&(i as u32).to_le_bytes());
        for (j, b) in s[4..].iter_mut().enumerate() {
            *b = (i * 7 + j) as u8;
        }
    }
    v
}

impl Rig {
    pub fn new(drives: [[Option<IdeDriveConfig>; 2]; 2]) -> Rig {
        let mem = Arc::new(TestMemory::new(MEM_SIZE));
        let irqs = [Arc::new(RecordingLine::default()), Arc::new(RecordingLine::default())];
        let mut ide = Piix3Ide::new(drives, mem.clone(), [irqs[0].clone(), irqs[1].clone()]).unwrap();
        let worker = Arc::new(ManualWorker::default());
        ide.set_io_workers([worker.clone(), worker.clone()]);
        let handle = ide.handle();
        let bus = IoBus::new();
        let ports = handle.legacy_ports();
        for (base, len, name) in LEGACY_PORT_RANGES {
            bus.insert(AddressSpace::Io, base, len, name, ports.clone()).unwrap();
        }
        // Function 1 is only found behind a function 0 (PCI 3.0 section 6.2.1).
        bus.add_pci_device(PciAddress::new(0, 1, 0), Arc::new(Mutex::new(IsaBridgeStandIn::default()))).unwrap();
        let ide = Arc::new(Mutex::new(ide));
        bus.add_pci_device(PIIX3_IDE_ADDRESS, ide.clone()).unwrap();
        // What firmware does: place BAR4, enable I/O decoding and bus mastering.
        bus.pci_config_write(PIIX3_IDE_ADDRESS, 0x20, &(u32::from(BM_BASE) | 1).to_le_bytes());
        bus.pci_config_write(PIIX3_IDE_ADDRESS, 0x04, &5u16.to_le_bytes());
        Rig { worker, hold: std::cell::Cell::new(false), bus, mem, irqs, handle, ide }
    }

    /// A rig with one disk as primary master.
    pub fn with_disk(backend: Arc<MemoryBackend>) -> Rig {
        Rig::new([[Some(IdeDriveConfig::disk(backend)), None], [None, None]])
    }

    /// A rig with a CD-ROM as secondary master (QEMU's default `-cdrom` position).
    pub fn with_cdrom(medium: Option<Arc<MemoryBackend>>) -> Rig {
        let medium = medium.map(|m| m as Arc<dyn crate::storage::block::BlockBackend>);
        Rig::new([[None, None], [Some(IdeDriveConfig::cdrom(medium)), None]])
    }

    pub fn ch(&self, ch: usize) -> Ch<'_> {
        Ch { rig: self, ch }
    }

    /// Runs the worker's queued jobs unless the test holds them back.
    pub fn settle(&self) {
        if !self.hold.get() {
            self.worker.run_pending();
        }
    }
    pub fn outb(&self, port: u16, v: u8) {
        self.bus.pio_write(port, &[v]);
        self.settle();
    }
    pub fn inb(&self, port: u16) -> u8 {
        self.settle();
        let mut d = [0u8];
        self.bus.pio_read(port, &mut d);
        d[0]
    }
    pub fn outl(&self, port: u16, v: u32) {
        self.bus.pio_write(port, &v.to_le_bytes());
        self.settle();
    }

    pub fn read_mem(&self, gpa: u64, len: usize) -> Vec<u8> {
        let mut v = vec![0; len];
        self.mem.read(gpa, &mut v).unwrap();
        v
    }

    /// Writes a PRD table at `at`: (address, byte count, EOT).
    pub fn write_prds(&self, at: u64, entries: &[(u32, u16, bool)]) {
        for (i, &(addr, count, eot)) in entries.iter().enumerate() {
            let mut e = [0u8; 8];
            e[..4].copy_from_slice(&addr.to_le_bytes());
            e[4..6].copy_from_slice(&count.to_le_bytes());
            e[7] = if eot { 0x80 } else { 0 };
            self.mem.write(at + 8 * i as u64, &e).unwrap();
        }
    }
}

impl Ch<'_> {
    pub fn base(&self) -> u16 {
        [0x1f0, 0x170][self.ch]
    }
    fn control_port(&self) -> u16 {
        [0x3f6, 0x376][self.ch]
    }
    fn bm(&self) -> u16 {
        BM_BASE + 8 * self.ch as u16
    }
    pub fn reg(&self, r: u64) -> u8 {
        self.rig.inb(self.base() + r as u16)
    }
    pub fn set(&self, r: u64, v: u8) {
        self.rig.outb(self.base() + r as u16, v)
    }
    pub fn status(&self) -> u8 {
        self.reg(reg::STATUS_COMMAND)
    }
    pub fn alt_status(&self) -> u8 {
        self.rig.inb(self.control_port())
    }
    pub fn error(&self) -> u8 {
        self.reg(reg::ERROR_FEATURES)
    }
    pub fn control(&self, v: u8) {
        self.rig.outb(self.control_port(), v)
    }
    pub fn irq(&self) -> bool {
        self.rig.settle();
        self.rig.irqs[self.ch].level()
    }
    pub fn irq_edges(&self) -> u64 {
        self.rig.irqs[self.ch].rising_edges()
    }
    pub fn select(&self, unit: u8) {
        self.set(reg::DEVICE, 0xa0 | unit << 4);
    }
    pub fn command(&self, c: u8) {
        self.set(reg::STATUS_COMMAND, c)
    }
    /// LBA28 registers of device 0.
    pub fn lba28(&self, lba: u32, count: u8) {
        self.set(reg::SECTOR_COUNT, count);
        self.set(reg::LBA_LOW, lba as u8);
        self.set(reg::LBA_MID, (lba >> 8) as u8);
        self.set(reg::LBA_HIGH, (lba >> 16) as u8);
        self.set(reg::DEVICE, 0xe0 | ((lba >> 24) as u8 & 0x0f));
    }
    /// LBA48 registers (high halves first, as the FIFO wants) of device 0.
    pub fn lba48(&self, lba: u64, count: u16) {
        self.set(reg::SECTOR_COUNT, (count >> 8) as u8);
        self.set(reg::LBA_LOW, (lba >> 24) as u8);
        self.set(reg::LBA_MID, (lba >> 32) as u8);
        self.set(reg::LBA_HIGH, (lba >> 40) as u8);
        self.set(reg::SECTOR_COUNT, count as u8);
        self.set(reg::LBA_LOW, lba as u8);
        self.set(reg::LBA_MID, (lba >> 8) as u8);
        self.set(reg::LBA_HIGH, (lba >> 16) as u8);
        self.set(reg::DEVICE, 0xe0);
    }
    /// Reads `bytes` through the data port in words (an odd count ends with a padded word).
    pub fn read_data(&self, bytes: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(bytes + 1);
        for _ in 0..bytes.div_ceil(2) {
            let mut w = [0u8; 2];
            self.rig.bus.pio_read(self.base(), &mut w);
            out.extend_from_slice(&w);
        }
        out.truncate(bytes);
        out
    }
    pub fn write_data(&self, data: &[u8]) {
        for w in data.chunks(2) {
            self.rig.bus.pio_write(self.base(), w);
        }
    }
    pub fn bm_status(&self) -> u8 {
        self.rig.inb(self.bm() + 2)
    }
    pub fn bm_clear_status(&self) {
        self.rig.outb(self.bm() + 2, 0x06);
    }
    pub fn bm_table(&self, at: u64) {
        self.rig.outl(self.bm() + 4, at as u32);
    }
    pub fn bm_start(&self, to_memory: bool) {
        self.rig.outb(self.bm(), 0x01 | if to_memory { 0x08 } else { 0 });
    }
    pub fn bm_stop(&self) {
        self.rig.outb(self.bm(), 0);
    }
}

#[test]
fn pci_identity_class_and_bar4_sizing() {
    let rig = Rig::with_disk(Arc::new(MemoryBackend::new(image(8, 512), false)));
    let read32 = |off: u16| {
        let mut d = [0u8; 4];
        rig.bus.pci_config_read(PIIX3_IDE_ADDRESS, off, &mut d);
        u32::from_le_bytes(d)
    };
    assert_eq!(read32(0x00), 0x7010_8086);
    assert_eq!(read32(0x08) >> 8, 0x01_01_80, "mass storage / IDE / legacy bus-master");
    assert_eq!(read32(0x10), 0, "BAR0-3 are not implemented in compatibility mode");
    assert_eq!(read32(0x20), u32::from(BM_BASE) | 1);
    // Sizing protocol: all ones reads back the 16-byte I/O size mask.
    rig.bus.pci_config_write(PIIX3_IDE_ADDRESS, 0x20, &u32::MAX.to_le_bytes());
    assert_eq!(read32(0x20), 0xffff_fff1);
    // Only I/O space and bus master are implemented in the command register.
    rig.bus.pci_config_write(PIIX3_IDE_ADDRESS, 0x04, &0xffffu16.to_le_bytes());
    assert_eq!(read32(0x04) & 0xffff, 0x0005);
    assert_eq!(read32(0x04) >> 16, 0x0280);
    // Channel decode enables as firmware leaves them.
    assert_eq!(read32(0x40), 0x8000_8000);
}

#[test]
fn bus_master_registers_live_in_bar4_and_move_with_it() {
    let rig = Rig::with_disk(Arc::new(MemoryBackend::new(image(8, 512), false)));
    let c = rig.ch(1);
    c.bm_table(0x1234_5678);
    assert_eq!(rig.inb(BM_BASE + 8 + 4), 0x78);
    assert_eq!(rig.inb(BM_BASE + 8 + 7), 0x12);
    rig.bus.pci_config_write(PIIX3_IDE_ADDRESS, 0x20, &0xd001u32.to_le_bytes());
    assert_eq!(rig.inb(BM_BASE + 8 + 4), 0xff, "old BAR range no longer decodes");
    assert_eq!(rig.inb(0xd000 + 8 + 4), 0x78);
}

/// Linux's ata_devchk writes 0x55/0xaa into Sector Count and LBA Low of each unit and reads them
/// back; an absent slave must not echo them, or the host probes a phantom device.
#[test]
fn an_absent_slave_does_not_echo_its_task_file() {
    let rig = Rig::with_cdrom(None);
    let ch = rig.ch(1);
    for unit in [0u8, 1] {
        ch.select(unit);
        ch.set(reg::SECTOR_COUNT, 0x55);
        ch.set(reg::LBA_LOW, 0xaa);
        let echoed = (ch.reg(reg::SECTOR_COUNT), ch.reg(reg::LBA_LOW)) == (0x55, 0xaa);
        assert_eq!(echoed, unit == 0, "unit {unit}");
    }
    assert_eq!(ch.status(), 0, "the absent slave's status reads 0");
    assert_eq!(ch.reg(reg::DEVICE) & 0x10, 0x10, "the Device register reads back the selection");
}

/// Xen PV unplug detaches the disks and leaves the CD-ROM.
#[test]
fn unplug_detaches_disks_but_not_cdroms() {
    let disk = Arc::new(MemoryBackend::new(image(64, 512), false));
    let disk2 = Arc::new(MemoryBackend::new(image(64, 512), false));
    let rig = Rig::new([
        [Some(IdeDriveConfig::disk(disk.clone())), Some(IdeDriveConfig::disk(disk2))],
        [Some(IdeDriveConfig::cdrom(None)), None],
    ]);
    assert_eq!(rig.handle.unplug_disks(true), 1, "aux only: the primary master stays");
    assert_eq!(rig.handle.query().len(), 2);
    assert_eq!(rig.handle.unplug_disks(false), 1);
    let left = rig.handle.query();
    assert_eq!(left.len(), 1);
    assert!(left[0].cdrom);
    assert!(disk.flush_count() >= 1, "data is flushed before the disk goes");
    rig.ch(0).select(0);
    assert_eq!(rig.ch(0).status(), 0, "the unplugged master no longer answers");
}
