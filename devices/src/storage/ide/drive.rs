//! One device on an IDE channel: its copy of the task file registers (ATA/ATAPI-6 chapter 7), the
//! PIO data buffer that the data port drains or fills, and what it is (ATA disk or ATAPI CD-ROM).
//!
//! Commands run when they are written: a command either finishes, arms a PIO transfer the host
//! then moves through the data port, or waits for the bus master ([`Completion::Dma`]), whose
//! transfer may then complete later from an I/O worker (see `transfer`).

use std::sync::Arc;

use super::ata::AtaDisk;
use super::atapi::{AtapiCdrom, AtapiPayload};
use super::identify::{TransferMode, MAX_MWDMA_MODE, MAX_PIO_MODE, MAX_UDMA_MODE};
use super::spec::{cmd, error, feature, reg, status};
use crate::memory::VolatileSlice;
use crate::storage::block::{slices_len, BlockBackend};

/// Command block registers as one device holds them. Writes reach both devices of a channel;
/// each keeps its own status and error. LBA48 registers are two-deep FIFOs (section 6.16).
#[derive(Clone, Debug, Default)]
pub struct TaskFile {
    pub feature: u8,
    pub hob_feature: u8,
    pub nsector: u8,
    pub hob_nsector: u8,
    pub lba_low: u8,
    pub hob_lba_low: u8,
    pub lba_mid: u8,
    pub hob_lba_mid: u8,
    pub lba_high: u8,
    pub hob_lba_high: u8,
    pub device: u8,
    pub status: u8,
    pub error: u8,
}

impl TaskFile {
    /// A host write to a command block register other than data and command.
    pub fn write(&mut self, register: u64, v: u8) {
        let fifo = |cur: &mut u8, hob: &mut u8| {
            *hob = *cur;
            *cur = v;
        };
        match register {
            reg::ERROR_FEATURES => fifo(&mut self.feature, &mut self.hob_feature),
            reg::SECTOR_COUNT => fifo(&mut self.nsector, &mut self.hob_nsector),
            reg::LBA_LOW => fifo(&mut self.lba_low, &mut self.hob_lba_low),
            reg::LBA_MID => fifo(&mut self.lba_mid, &mut self.hob_lba_mid),
            reg::LBA_HIGH => fifo(&mut self.lba_high, &mut self.hob_lba_high),
            // Bits 7 and 5 are obsolete and read back as written by most devices.
            reg::DEVICE => self.device = v,
            _ => {}
        }
    }

    /// A host read; `hob` is the Device Control HOB bit.
    pub fn read(&self, register: u64, hob: bool) -> u8 {
        match (register, hob) {
            (reg::ERROR_FEATURES, _) => self.error,
            (reg::SECTOR_COUNT, false) => self.nsector,
            (reg::SECTOR_COUNT, true) => self.hob_nsector,
            (reg::LBA_LOW, false) => self.lba_low,
            (reg::LBA_LOW, true) => self.hob_lba_low,
            (reg::LBA_MID, false) => self.lba_mid,
            (reg::LBA_MID, true) => self.hob_lba_mid,
            (reg::LBA_HIGH, false) => self.lba_high,
            (reg::LBA_HIGH, true) => self.hob_lba_high,
            (reg::DEVICE, _) => self.device,
            (reg::STATUS_COMMAND, _) => self.status,
            _ => 0xff,
        }
    }

    /// The 28-bit address (LBA mode, section 6.2).
    pub fn lba28(&self) -> u64 {
        u64::from(self.device & 0x0f) << 24
            | u64::from(self.lba_high) << 16
            | u64::from(self.lba_mid) << 8
            | u64::from(self.lba_low)
    }

    /// The 48-bit address (section 6.16).
    pub fn lba48(&self) -> u64 {
        u64::from(self.hob_lba_high) << 40
            | u64::from(self.hob_lba_mid) << 32
            | u64::from(self.hob_lba_low) << 24
            | u64::from(self.lba_high) << 16
            | u64::from(self.lba_mid) << 8
            | u64::from(self.lba_low)
    }

    /// Sector count of a 28-bit command: 0 means 256.
    pub fn count28(&self) -> u64 {
        match self.nsector {
            0 => 256,
            n => n.into(),
        }
    }

    /// Sector count of a 48-bit command: 0 means 65536.
    pub fn count48(&self) -> u64 {
        match u64::from(self.hob_nsector) << 8 | u64::from(self.nsector) {
            0 => 65536,
            n => n,
        }
    }

    /// The register contents after a reset or EXECUTE DEVICE DIAGNOSTIC (section 9.12, table
    /// 26): the signature that tells an ATA device from a PACKET device.
    pub fn set_signature(&mut self, packet: bool) {
        self.nsector = 1;
        self.lba_low = 1;
        (self.lba_mid, self.lba_high) = if packet { (0x14, 0xeb) } else { (0, 0) };
        self.device &= 0x10;
        self.error = error::DIAGNOSTIC_PASSED;
    }

    /// End a command with ERR and the given error bits.
    pub fn fail(&mut self, error_bits: u8) {
        self.error = error_bits;
        self.status = status::READY | status::ERR;
    }

    pub fn abort(&mut self) {
        self.fail(error::ABRT);
    }

    /// End a command successfully.
    pub fn succeed(&mut self) {
        self.error = 0;
        self.status = status::READY;
    }
}

/// What follows when the current PIO block has been moved through the data port.
pub enum PioNext {
    /// Nothing: the command is over (the data-in protocol ends without another interrupt).
    Done,
    /// ATA data-in: `remaining` sectors from `lba` are still to be read, `block` per DRQ block.
    AtaRead { lba: u64, remaining: u64, block: u64 },
    /// ATA data-out: the buffer holds the sectors at `lba`; `remaining` includes them.
    AtaWrite { lba: u64, remaining: u64, block: u64 },
    /// The buffer receives the ATAPI command packet.
    AtapiPacket { dma: bool, byte_limit: u16 },
    /// ATAPI data-in: the rest of the response.
    AtapiData { payload: AtapiPayload, byte_limit: u16 },
}

/// A PIO block in flight through the data port.
pub struct PioTransfer {
    pub buf: Vec<u8>,
    pub pos: usize,
    pub to_host: bool,
    pub next: PioNext,
}

/// The data moved by a bus-master transfer.
pub enum DmaData {
    /// ATA sectors starting at byte `offset` of the disk.
    Ata {
        backend: Arc<dyn BlockBackend>,
        offset: u64,
    },
    Atapi(AtapiPayload),
}

/// The backend failed while the bus master moved data (already logged).
#[derive(Debug, PartialEq, Eq)]
pub struct DeviceIoError;

/// A command waiting for the bus master.
pub struct DmaRequest {
    pub to_memory: bool,
    pub len: u64,
    pub data: DmaData,
}

impl DmaData {
    /// Produces (to memory) or consumes the transfer's bytes through guest memory slices.
    pub fn transfer(&mut self, to_memory: bool, slices: &[VolatileSlice<'_>]) -> Result<(), DeviceIoError> {
        match self {
            DmaData::Ata { backend, offset } => {
                let r = if to_memory {
                    backend.read_to_slices(*offset, slices)
                } else {
                    backend.write_from_slices(*offset, slices)
                };
                r.map_err(|e| {
                    crate::guest_warn!("IDE: DMA at image offset {offset}: {e}");
                    DeviceIoError
                })?;
                *offset = offset.saturating_add(slices_len(slices) as u64);
                Ok(())
            }
            DmaData::Atapi(payload) => payload.fill_slices(slices).map_err(|_| DeviceIoError),
        }
    }
}

/// How a command (or one step of it) ended, for the channel to act on.
pub enum Completion {
    /// No interrupt (e.g. waiting for PIO data-out, or a DEVICE RESET).
    Quiet,
    /// Assert INTRQ.
    Interrupt,
    /// Wait for the bus master.
    Dma(DmaRequest),
}

pub enum DriveKind {
    Absent,
    Disk(Box<AtaDisk>),
    Cdrom(Box<AtapiCdrom>),
}

pub struct Drive {
    pub regs: TaskFile,
    pub pio: Option<PioTransfer>,
    pub kind: DriveKind,
}

impl Drive {
    pub fn new(kind: DriveKind) -> Drive {
        let mut d = Drive { regs: TaskFile::default(), pio: None, kind };
        d.reset();
        d
    }

    pub fn present(&self) -> bool {
        !matches!(self.kind, DriveKind::Absent)
    }

    pub fn is_packet(&self) -> bool {
        matches!(self.kind, DriveKind::Cdrom(_))
    }

    /// Reset as after power-on, SRST or DEVICE RESET (ATA/ATAPI-6 section 9.1/9.2): signature,
    /// diagnostic code, and a PACKET device leaves DRDY clear.
    pub fn reset(&mut self) {
        self.pio = None;
        let packet = self.is_packet();
        self.regs.set_signature(packet);
        self.regs.device = 0;
        self.regs.status = if packet { 0 } else { status::READY };
        if let DriveKind::Cdrom(cd) = &mut self.kind {
            cd.reset();
        }
    }

    /// Executes a command written to the command register.
    pub fn execute(&mut self, command: u8) -> Completion {
        self.pio = None;
        match &mut self.kind {
            DriveKind::Absent => Completion::Quiet,
            DriveKind::Disk(disk) => disk.execute(&mut self.regs, &mut self.pio, command),
            DriveKind::Cdrom(cd) => cd.execute(&mut self.regs, &mut self.pio, command),
        }
    }

    /// A data port read of `out.len()` bytes (PIO data-in).
    pub fn data_read(&mut self, out: &mut [u8]) -> Completion {
        out.fill(0);
        let Some(pio) = self.pio.as_mut().filter(|p| p.to_host && self.regs.status & status::DRQ != 0) else {
            return Completion::Quiet;
        };
        let n = out.len().min(pio.buf.len() - pio.pos);
        out[..n].copy_from_slice(&pio.buf[pio.pos..pio.pos + n]);
        pio.pos += n;
        self.block_moved()
    }

    /// A data port write (PIO data-out, or the ATAPI packet).
    pub fn data_write(&mut self, data: &[u8]) -> Completion {
        let Some(pio) = self.pio.as_mut().filter(|p| !p.to_host && self.regs.status & status::DRQ != 0) else {
            return Completion::Quiet;
        };
        let n = data.len().min(pio.buf.len() - pio.pos);
        pio.buf[pio.pos..pio.pos + n].copy_from_slice(&data[..n]);
        pio.pos += n;
        self.block_moved()
    }

    fn block_moved(&mut self) -> Completion {
        if self.pio.as_ref().is_some_and(|p| p.pos < p.buf.len()) {
            return Completion::Quiet;
        }
        let Some(pio) = self.pio.take() else { return Completion::Quiet };
        match &mut self.kind {
            DriveKind::Absent => Completion::Quiet,
            DriveKind::Disk(disk) => disk.block_done(&mut self.regs, &mut self.pio, pio),
            DriveKind::Cdrom(cd) => cd.block_done(&mut self.regs, &mut self.pio, pio),
        }
    }

    /// Ends a CD-ROM command whose medium went away with NOT READY.
    pub fn fail_not_ready(&mut self) -> Option<Completion> {
        match &mut self.kind {
            DriveKind::Cdrom(cd) => {
                let sense = cd.media.ready().err().unwrap_or(crate::storage::scsi_sense::Sense::MEDIUM_NOT_PRESENT);
                Some(cd.fail(&mut self.regs, sense))
            }
            _ => None,
        }
    }

    /// The bus master finished (or gave up on) this device's transfer.
    pub fn dma_done<E>(&mut self, result: Result<(), super::busmaster::DmaFault<E>>) -> Completion {
        match &mut self.kind {
            DriveKind::Absent => Completion::Quiet,
            DriveKind::Disk(disk) => disk.dma_done(&mut self.regs, result.is_ok()),
            DriveKind::Cdrom(cd) => cd.dma_done(&mut self.regs, result),
        }
    }
}

/// Starts a PIO data-in block: DRQ and an interrupt (ATA/ATAPI-6 section 9.7).
pub fn start_data_in(regs: &mut TaskFile, pio: &mut Option<PioTransfer>, buf: Vec<u8>, next: PioNext) -> Completion {
    *pio = Some(PioTransfer { buf, pos: 0, to_host: true, next });
    regs.error = 0;
    regs.status = status::READY | status::DRQ;
    Completion::Interrupt
}

/// Starts a PIO data-out block: DRQ; no interrupt before the first block (section 9.8), one
/// before each later block.
pub fn start_data_out(
    regs: &mut TaskFile,
    pio: &mut Option<PioTransfer>,
    len: usize,
    next: PioNext,
    first: bool,
) -> Completion {
    *pio = Some(PioTransfer { buf: vec![0; len], pos: 0, to_host: false, next });
    regs.error = 0;
    regs.status = status::READY | status::DRQ;
    if first {
        Completion::Quiet
    } else {
        Completion::Interrupt
    }
}

/// Commands both device types implement the same way. `None` if `command` is not one of them.
pub fn common_command(regs: &mut TaskFile, mode: &mut TransferMode, command: u8) -> Option<Completion> {
    match command {
        cmd::SET_FEATURES => {
            match regs.feature {
                // Section 8.37.10, table 47: the mode is in the Sector Count register.
                feature::SET_TRANSFER_MODE => {
                    let n = regs.nsector & 0x07;
                    let new = match regs.nsector >> 3 {
                        0 if n <= 1 => Some(TransferMode::Pio(0)),
                        1 if n <= MAX_PIO_MODE => Some(TransferMode::Pio(n)),
                        4 if n <= MAX_MWDMA_MODE => Some(TransferMode::MultiwordDma(n)),
                        8 if n <= MAX_UDMA_MODE => Some(TransferMode::UltraDma(n)),
                        _ => None,
                    };
                    match new {
                        Some(m) => {
                            *mode = m;
                            regs.succeed();
                        }
                        None => regs.abort(),
                    }
                }
                // Look-ahead and reverting to defaults change nothing observable here.
                feature::ENABLE_READ_LOOK_AHEAD
                | feature::DISABLE_READ_LOOK_AHEAD
                | feature::ENABLE_REVERTING_TO_DEFAULTS
                | feature::DISABLE_REVERTING_TO_DEFAULTS => regs.succeed(),
                _ => return None,
            }
            Some(Completion::Interrupt)
        }
        cmd::CHECK_POWER_MODE | cmd::CHECK_POWER_MODE_OLD => {
            regs.succeed();
            regs.nsector = 0xff; // active or idle (section 8.6)
            Some(Completion::Interrupt)
        }
        cmd::IDLE_IMMEDIATE
        | cmd::IDLE_IMMEDIATE_OLD
        | cmd::STANDBY_IMMEDIATE
        | cmd::STANDBY_IMMEDIATE_OLD
        | cmd::IDLE
        | cmd::IDLE_OLD
        | cmd::STANDBY
        | cmd::STANDBY_OLD => {
            // Power states are not modelled: the device is always ready again at once.
            regs.succeed();
            Some(Completion::Interrupt)
        }
        _ => None,
    }
}
