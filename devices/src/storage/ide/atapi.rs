//! An ATAPI CD/DVD-ROM: the PACKET protocol (ATA/ATAPI-6 section 9.10 and 9.11, SFF-8020i
//! chapter 5) and the MMC-3 / SPC-3 commands a guest needs to find, identify and read a disc.
//!
//! A data-in command produces an [`AtapiPayload`]: small responses are built in host memory and
//! cut to the CDB's allocation length; reads of the medium are streamed block by block, so a
//! guest asking for 65535 blocks costs no more host memory than one PIO chunk or DMA step.

use std::sync::Arc;

use super::busmaster::DmaFault;
use super::cdrom::CdromMedia;
use super::drive::{common_command, start_data_in, Completion, DmaData, DmaRequest, PioNext, PioTransfer, TaskFile};
use super::identify::{identify_packet_device, DriveIdentity, TransferMode, MAX_UDMA_MODE};
use super::spec::{cmd, error, reason, status, CD_BLOCK_SIZE, PACKET_SIZE};
use crate::memory::VolatileSlice;
use crate::storage::block::{slices_len, split_slices, zero_slices, BlockBackend};
use crate::storage::scsi_sense::Sense;

/// SCSI / MMC operation codes used here (MMC-3 table 4, SPC-3 annex D).
pub mod op {
    pub const TEST_UNIT_READY: u8 = 0x00;
    pub const REQUEST_SENSE: u8 = 0x03;
    pub const INQUIRY: u8 = 0x12;
    pub const START_STOP_UNIT: u8 = 0x1b;
    pub const PREVENT_ALLOW_MEDIUM_REMOVAL: u8 = 0x1e;
    pub const READ_CAPACITY: u8 = 0x25;
    pub const READ_10: u8 = 0x28;
    pub const SEEK_10: u8 = 0x2b;
    pub const READ_TOC_PMA_ATIP: u8 = 0x43;
    pub const GET_CONFIGURATION: u8 = 0x46;
    pub const GET_EVENT_STATUS_NOTIFICATION: u8 = 0x4a;
    pub const READ_DISC_INFORMATION: u8 = 0x51;
    pub const MODE_SENSE_10: u8 = 0x5a;
    pub const READ_12: u8 = 0xa8;
    pub const SET_CD_SPEED: u8 = 0xbb;
    pub const MECHANISM_STATUS: u8 = 0xbd;
    pub const READ_CD: u8 = 0xbe;
}

/// Profiles (MMC-3 section 5.3.1, table 75).
const PROFILE_CD_ROM: u16 = 0x0008;
const PROFILE_DVD_ROM: u16 = 0x0010;
/// An 80-minute CD holds 80 * 60 * 75 blocks; anything larger is reported as a DVD.
const CD_MAX_BLOCKS: u64 = 80 * 60 * 75;
/// CD block addresses start 2 seconds (150 frames) into the program area (MMC-3 section 4.2.3.3).
const MSF_OFFSET: u64 = 150;

/// The data of a data-in command.
pub enum AtapiPayload {
    Bytes { data: Vec<u8>, pos: usize },
    Medium { backend: Arc<dyn BlockBackend>, offset: u64, remaining: u64 },
}

impl AtapiPayload {
    pub fn remaining(&self) -> u64 {
        match self {
            AtapiPayload::Bytes { data, pos } => (data.len() - pos) as u64,
            AtapiPayload::Medium { remaining, .. } => *remaining,
        }
    }

    /// Produces the next `buf.len()` bytes; past the end of the payload the rest is zero.
    pub fn fill(&mut self, buf: &mut [u8]) -> Result<(), Sense> {
        match self {
            AtapiPayload::Bytes { data, pos } => {
                let n = buf.len().min(data.len() - *pos);
                buf[..n].copy_from_slice(&data[*pos..*pos + n]);
                buf[n..].fill(0);
                *pos += n;
                Ok(())
            }
            AtapiPayload::Medium { backend, offset, remaining } => {
                let n = (buf.len() as u64).min(*remaining) as usize;
                backend.read_at(*offset, &mut buf[..n]).map_err(|e| {
                    crate::guest_warn!("IDE CD-ROM {}: read failed: {e}", backend.filename());
                    Sense::UNRECOVERED_READ_ERROR
                })?;
                buf[n..].fill(0);
                *offset += n as u64;
                *remaining -= n as u64;
                Ok(())
            }
        }
    }
}

impl AtapiPayload {
    /// [`AtapiPayload::fill`] into guest memory slices: reads of the medium go straight into
    /// them; past the end of the payload the rest is zero.
    pub fn fill_slices(&mut self, slices: &[VolatileSlice<'_>]) -> Result<(), Sense> {
        let n = (slices_len(slices) as u64).min(self.remaining()) as usize;
        let (head, tail) = split_slices(slices, n);
        match self {
            AtapiPayload::Bytes { data, pos } => {
                for s in &head {
                    s.copy_from(&data[*pos..*pos + s.len()]);
                    *pos += s.len();
                }
            }
            AtapiPayload::Medium { backend, offset, remaining } => {
                backend.read_to_slices(*offset, &head).map_err(|e| {
                    crate::guest_warn!("IDE CD-ROM {}: read failed: {e}", backend.filename());
                    Sense::UNRECOVERED_READ_ERROR
                })?;
                *offset += n as u64;
                *remaining -= n as u64;
            }
        }
        zero_slices(&tail);
        Ok(())
    }
}

fn be16(b: &[u8]) -> usize {
    usize::from(u16::from_be_bytes([b[0], b[1]]))
}
fn be32(b: &[u8]) -> u64 {
    u64::from(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// Minutes, seconds, frames of a block address (MMC-3 section 4.2.3.3, table 2).
fn msf(lba: u64) -> [u8; 3] {
    let f = lba + MSF_OFFSET;
    [(f / (75 * 60)).min(255) as u8, ((f / 75) % 60) as u8, (f % 75) as u8]
}

/// A TOC address field: MSF as 0/M/S/F, or a big-endian LBA.
fn toc_address(lba: u64, use_msf: bool) -> [u8; 4] {
    if use_msf {
        let [m, s, f] = msf(lba);
        [0, m, s, f]
    } else {
        (lba.min(u64::from(u32::MAX)) as u32).to_be_bytes()
    }
}

/// A response cut to the allocation length; an empty one transfers nothing.
fn reply(mut data: Vec<u8>, allocation_length: usize) -> Result<Option<AtapiPayload>, Sense> {
    data.truncate(allocation_length);
    Ok((!data.is_empty()).then_some(AtapiPayload::Bytes { data, pos: 0 }))
}

pub struct AtapiCdrom {
    pub media: CdromMedia,
    identity: DriveIdentity,
    pub(super) mode: TransferMode,
    pub(super) sense: Sense,
}

impl AtapiCdrom {
    pub fn new(medium: Option<Arc<dyn BlockBackend>>, identity: DriveIdentity) -> AtapiCdrom {
        AtapiCdrom {
            media: CdromMedia::new(medium),
            identity,
            mode: TransferMode::UltraDma(MAX_UDMA_MODE),
            sense: Sense::NO_SENSE,
        }
    }

    pub fn reset(&mut self) {
        self.sense = Sense::NO_SENSE;
    }

    /// An ATA command written to the command register.
    pub fn execute(&mut self, regs: &mut TaskFile, pio: &mut Option<PioTransfer>, command: u8) -> Completion {
        match command {
            cmd::PACKET => {
                // Section 9.10: DRQ for the packet, CoD=1 IO=0; no interrupt (DRQ type 10b).
                // Features bit 0 selects DMA for the data; bit 1 (overlap) is not supported.
                let dma = regs.feature & 0x01 != 0;
                let byte_limit = u16::from(regs.lba_high) << 8 | u16::from(regs.lba_mid);
                regs.nsector = (regs.nsector & !reason::MASK) | reason::COD;
                regs.error = 0;
                regs.status = status::READY | status::DRQ;
                *pio = Some(PioTransfer {
                    buf: vec![0; PACKET_SIZE],
                    pos: 0,
                    to_host: false,
                    next: PioNext::AtapiPacket { dma, byte_limit },
                });
                Completion::Quiet
            }
            cmd::IDENTIFY_PACKET_DEVICE => {
                start_data_in(regs, pio, identify_packet_device(&self.identity, self.mode).to_vec(), PioNext::Done)
            }
            cmd::DEVICE_RESET => {
                // Section 9.3: reset this device only; no interrupt.
                self.reset();
                regs.set_signature(true);
                regs.status = 0;
                Completion::Quiet
            }
            // Section 8.15: a PACKET device aborts IDENTIFY DEVICE and shows its signature, which
            // is how hosts find it; BIOSes probing with READ SECTORS get the same answer.
            cmd::IDENTIFY_DEVICE | cmd::READ_SECTORS | cmd::READ_SECTORS_NO_RETRY => {
                regs.set_signature(true);
                regs.abort();
                Completion::Interrupt
            }
            _ => {
                if let Some(c) = common_command(regs, &mut self.mode, command) {
                    return c;
                }
                crate::guest_warn!("IDE CD-ROM: unsupported ATA command {command:#04x} aborted");
                regs.abort();
                Completion::Interrupt
            }
        }
    }

    /// Command completion without error: IO=1, CoD=1, DRQ=0 (section 9.11, status phase).
    fn complete(regs: &mut TaskFile) -> Completion {
        regs.error = 0;
        regs.status = status::READY;
        regs.nsector = (regs.nsector & !reason::MASK) | reason::IO | reason::COD;
        Completion::Interrupt
    }

    /// CHECK CONDITION: the sense key in the Error register's high nibble, ERR in Status.
    pub fn fail(&mut self, regs: &mut TaskFile, sense: Sense) -> Completion {
        self.sense = sense;
        regs.error = sense.key << 4;
        if sense.key == crate::storage::scsi_sense::key::ILLEGAL_REQUEST {
            regs.error |= error::ABRT;
        }
        regs.status = status::READY | status::ERR;
        regs.nsector = (regs.nsector & !reason::MASK) | reason::IO | reason::COD;
        Completion::Interrupt
    }

    /// Sends the next PIO chunk of `payload`: at most the byte count limit, even unless it is the
    /// last, announced in the Byte Count registers (section 9.11 / SFF-8020i 5.2.3).
    fn send_chunk(
        &mut self,
        regs: &mut TaskFile,
        pio: &mut Option<PioTransfer>,
        mut payload: AtapiPayload,
        byte_limit: u16,
    ) -> Completion {
        let limit = match byte_limit {
            0 | 0xffff => 0xfffe,
            n => u64::from(n),
        };
        let remaining = payload.remaining();
        let mut n = remaining.min(limit);
        if n < remaining {
            n &= !1;
        }
        // A limit of 1 would otherwise never make progress.
        if n == 0 {
            n = remaining.min(2);
        }
        let mut buf = vec![0; n as usize];
        if let Err(sense) = payload.fill(&mut buf) {
            return self.fail(regs, sense);
        }
        regs.lba_mid = n as u8;
        regs.lba_high = (n >> 8) as u8;
        regs.nsector = (regs.nsector & !reason::MASK) | reason::IO;
        regs.error = 0;
        regs.status = status::READY | status::DRQ;
        *pio = Some(PioTransfer { buf, pos: 0, to_host: true, next: PioNext::AtapiData { payload, byte_limit } });
        Completion::Interrupt
    }

    /// The packet or a data chunk went through the data port.
    pub fn block_done(&mut self, regs: &mut TaskFile, pio: &mut Option<PioTransfer>, done: PioTransfer) -> Completion {
        match done.next {
            PioNext::AtapiPacket { dma, byte_limit } => {
                let mut cdb = [0u8; PACKET_SIZE];
                cdb.copy_from_slice(&done.buf[..PACKET_SIZE]);
                match self.run(&cdb) {
                    Err(sense) => self.fail(regs, sense),
                    Ok(None) => Self::complete(regs),
                    Ok(Some(payload)) if dma => {
                        regs.nsector = (regs.nsector & !reason::MASK) | reason::IO;
                        regs.status = status::READY | status::DRQ;
                        Completion::Dma(DmaRequest {
                            to_memory: true,
                            len: payload.remaining(),
                            data: DmaData::Atapi(payload),
                        })
                    }
                    Ok(Some(payload)) => self.send_chunk(regs, pio, payload, byte_limit),
                }
            }
            PioNext::AtapiData { payload, byte_limit } if payload.remaining() > 0 => {
                self.send_chunk(regs, pio, payload, byte_limit)
            }
            PioNext::Done => {
                regs.succeed();
                Completion::Quiet
            }
            _ => Self::complete(regs),
        }
    }

    pub fn dma_done<E>(&mut self, regs: &mut TaskFile, result: Result<(), DmaFault<E>>) -> Completion {
        match result {
            Ok(()) => Self::complete(regs),
            Err(DmaFault::Device(_)) => self.fail(regs, Sense::UNRECOVERED_READ_ERROR),
            // The host bus failed the transfer (bad PRD table or target memory).
            Err(_) => {
                let c = self.fail(regs, Sense::ABORTED_COMMAND);
                regs.error |= error::ABRT;
                c
            }
        }
    }

    /// Runs a command packet. `Ok(None)` is success without data.
    fn run(&mut self, cdb: &[u8; PACKET_SIZE]) -> Result<Option<AtapiPayload>, Sense> {
        let opcode = cdb[0];
        if opcode != op::REQUEST_SENSE {
            self.sense = Sense::NO_SENSE;
        }
        // SPC-3 section 5.9.7 / MMC-3 section 4.1.6.1: these report status without consuming
        // a pending unit attention; every other command gets the UNIT ATTENTION once.
        let ua_exempt = matches!(
            opcode,
            op::INQUIRY | op::REQUEST_SENSE | op::GET_CONFIGURATION | op::GET_EVENT_STATUS_NOTIFICATION
        );
        if !ua_exempt && self.media.take_unit_attention() {
            return Err(Sense::MEDIUM_MAY_HAVE_CHANGED);
        }
        match opcode {
            op::TEST_UNIT_READY => self.media.ready().map(|_| None),
            op::REQUEST_SENSE => {
                let data = self.sense.fixed_format().to_vec();
                self.sense = Sense::NO_SENSE;
                reply(data, cdb[4].into())
            }
            op::INQUIRY => self.inquiry(cdb),
            op::START_STOP_UNIT => {
                // MMC-3 section 6.39: LoEj with Start=0 ejects, with Start=1 loads.
                let (start, load_eject) = (cdb[4] & 0x01 != 0, cdb[4] & 0x02 != 0);
                match (load_eject, start) {
                    (true, false) => self.media.guest_eject()?,
                    (true, true) => self.media.close_tray(),
                    _ => {}
                }
                Ok(None)
            }
            op::PREVENT_ALLOW_MEDIUM_REMOVAL => {
                self.media.set_locked(cdb[4] & 0x01 != 0);
                Ok(None)
            }
            op::READ_CAPACITY => {
                let blocks = self.blocks()?;
                let last = blocks.saturating_sub(1).min(u64::from(u32::MAX)) as u32;
                let mut data = last.to_be_bytes().to_vec();
                data.extend_from_slice(&(CD_BLOCK_SIZE as u32).to_be_bytes());
                reply(data, 8)
            }
            op::READ_10 => self.read_blocks(be32(&cdb[2..6]), be16(&cdb[7..9]) as u64),
            op::READ_12 => self.read_blocks(be32(&cdb[2..6]), be32(&cdb[6..10])),
            op::SEEK_10 => {
                let blocks = self.blocks()?;
                if be32(&cdb[2..6]) >= blocks {
                    return Err(Sense::LBA_OUT_OF_RANGE);
                }
                Ok(None)
            }
            op::READ_CD => self.read_cd(cdb),
            op::READ_TOC_PMA_ATIP => self.read_toc(cdb),
            op::GET_CONFIGURATION => self.get_configuration(cdb),
            op::GET_EVENT_STATUS_NOTIFICATION => self.get_event_status(cdb),
            op::MODE_SENSE_10 => self.mode_sense(cdb),
            op::MECHANISM_STATUS => {
                // MMC-3 section 6.11: header only, no changer; bit 4 of byte 1 is Door Open.
                let mut data = vec![0u8; 8];
                data[1] = if self.media.tray_open() { 0x10 } else { 0 };
                reply(data, be16(&cdb[8..10]))
            }
            op::READ_DISC_INFORMATION => self.read_disc_information(cdb),
            op::SET_CD_SPEED => Ok(None),
            _ => {
                crate::guest_warn!("IDE CD-ROM: unsupported packet command {opcode:#04x}");
                Err(Sense::INVALID_OPCODE)
            }
        }
    }

    /// Blocks on the readable medium.
    fn blocks(&self) -> Result<u64, Sense> {
        Ok(self.media.ready()?.len() / CD_BLOCK_SIZE as u64)
    }

    fn read_blocks(&mut self, lba: u64, count: u64) -> Result<Option<AtapiPayload>, Sense> {
        let backend = self.media.ready()?.clone();
        let blocks = backend.len() / CD_BLOCK_SIZE as u64;
        // lba < 2^32 and count < 2^32: no overflow.
        if lba + count > blocks {
            crate::guest_warn!("IDE CD-ROM: read of {count} blocks at {lba} past the {blocks}-block medium");
            return Err(Sense::LBA_OUT_OF_RANGE);
        }
        if count == 0 {
            return Ok(None);
        }
        let bs = CD_BLOCK_SIZE as u64;
        Ok(Some(AtapiPayload::Medium { backend, offset: lba * bs, remaining: count * bs }))
    }

    /// INQUIRY standard data (SPC-3 section 6.4.2; SFF-8020i section 10.8.2).
    fn inquiry(&self, cdb: &[u8]) -> Result<Option<AtapiPayload>, Sense> {
        if cdb[1] & 0x01 != 0 {
            // No vital product data pages.
            return Err(Sense::INVALID_FIELD_IN_CDB);
        }
        let mut data = vec![b' '; 36];
        data[0] = 0x05; // peripheral device type: CD/DVD
        data[1] = 0x80; // removable medium
        data[2] = 0x00; // ANSI version 0, as ATAPI devices report
        data[3] = 0x21; // ATAPI version 2, response data format 1
        data[4] = 31; // additional length
        data[5..8].fill(0);
        let put = |d: &mut [u8], s: &str| {
            for (b, c) in d.iter_mut().zip(s.bytes()) {
                *b = c;
            }
        };
        let vendor = self.identity.model.split_whitespace().next().unwrap_or("");
        put(&mut data[8..16], vendor);
        put(&mut data[16..32], &self.identity.model);
        put(&mut data[32..36], &self.identity.firmware);
        reply(data, cdb[4].into())
    }

    /// READ CD with 2048-byte user data only (MMC-3 section 6.19).
    fn read_cd(&mut self, cdb: &[u8]) -> Result<Option<AtapiPayload>, Sense> {
        let sector_type = (cdb[1] >> 2) & 0x07;
        let lba = be32(&cdb[2..6]);
        let count = u64::from(cdb[6]) << 16 | u64::from(cdb[7]) << 8 | u64::from(cdb[8]);
        // Expected sector type: 0 any, 2 Mode 1; a data disc has nothing else (table 99).
        if sector_type != 0 && sector_type != 2 {
            return Err(Sense::ILLEGAL_MODE_FOR_TRACK);
        }
        if cdb[10] & 0x07 != 0 {
            return Err(Sense::INVALID_FIELD_IN_CDB);
        }
        // Byte 9: sync (7), header codes (6:5), user data (4), EDC/ECC (3), C2 (2:1).
        match cdb[9] & 0xfe {
            0x00 => self.read_blocks(lba, count).map(|_| None),
            0x10 => self.read_blocks(lba, count),
            _ => Err(Sense::INVALID_FIELD_IN_CDB),
        }
    }

    /// READ TOC/PMA/ATIP formats 0 (TOC), 1 (session info) and 2 (raw TOC) of a single-track,
    /// single-session data disc (MMC-3 section 6.25).
    fn read_toc(&mut self, cdb: &[u8]) -> Result<Option<AtapiPayload>, Sense> {
        let blocks = self.blocks()?;
        let use_msf = cdb[1] & 0x02 != 0;
        let mut format = cdb[2] & 0x0f;
        if format == 0 {
            // SFF-8020i put the format in the top bits of the control byte.
            format = cdb[9] >> 6;
        }
        let start_track = cdb[6];
        let mut data = vec![0, 0, 1, 1];
        match format {
            0 => {
                if start_track > 1 && start_track != 0xaa {
                    return Err(Sense::INVALID_FIELD_IN_CDB);
                }
                // Descriptor: reserved, ADR 1 / control 4 (data track), track, reserved, address.
                if start_track <= 1 {
                    data.extend_from_slice(&[0, 0x14, 1, 0]);
                    data.extend_from_slice(&toc_address(0, use_msf));
                }
                data.extend_from_slice(&[0, 0x14, 0xaa, 0]);
                data.extend_from_slice(&toc_address(blocks, use_msf));
            }
            1 => {
                data.extend_from_slice(&[0, 0x14, 1, 0]);
                data.extend_from_slice(&toc_address(0, use_msf));
            }
            2 => {
                // Raw TOC: Q sub-channel descriptors of session 1, addresses always MSF
                // (points A0 first track, A1 last track, A2 lead-out, then track 1).
                let [m, s, f] = msf(blocks);
                let [tm, ts, tf] = msf(0);
                for (point, pmin, psec, pframe) in [(0xa0, 1, 0, 0), (0xa1, 1, 0, 0), (0xa2, m, s, f), (1, tm, ts, tf)]
                {
                    data.extend_from_slice(&[1, 0x14, 0, point, 0, 0, 0, 0, pmin, psec, pframe]);
                }
            }
            _ => return Err(Sense::INVALID_FIELD_IN_CDB),
        }
        let len = (data.len() - 2) as u16;
        data[..2].copy_from_slice(&len.to_be_bytes());
        reply(data, be16(&cdb[7..9]))
    }

    /// The current profile: none without a readable medium, else CD-ROM or DVD-ROM by size.
    fn current_profile(&self) -> u16 {
        match self.media.ready() {
            Err(_) => 0,
            Ok(m) if m.len() / CD_BLOCK_SIZE as u64 > CD_MAX_BLOCKS => PROFILE_DVD_ROM,
            Ok(_) => PROFILE_CD_ROM,
        }
    }

    /// GET CONFIGURATION (MMC-3 section 6.6) with the Profile List, Core, Morphing and Removable
    /// Medium features (section 5.3).
    fn get_configuration(&mut self, cdb: &[u8]) -> Result<Option<AtapiPayload>, Sense> {
        let request_type = cdb[1] & 0x03;
        let start = u16::from_be_bytes([cdb[2], cdb[3]]);
        if request_type == 3 {
            return Err(Sense::INVALID_FIELD_IN_CDB);
        }
        let profile = self.current_profile();
        // Descriptor byte 2: version (5:2), persistent (1), current (0).
        let header = |code: u16, version: u8, len: u8| {
            let c = code.to_be_bytes();
            vec![c[0], c[1], version << 2 | 0x03, len]
        };
        let mut features: Vec<(u16, Vec<u8>)> = Vec::new();
        let mut list = header(0x0000, 0, 8);
        for p in [PROFILE_DVD_ROM, PROFILE_CD_ROM] {
            let b = p.to_be_bytes();
            list.extend_from_slice(&[b[0], b[1], u8::from(p == profile), 0]);
        }
        features.push((0x0000, list));
        // Core: physical interface ATAPI (2).
        let mut core = header(0x0001, 1, 8);
        core.extend_from_slice(&[0, 0, 0, 2, 0, 0, 0, 0]);
        features.push((0x0001, core));
        // Morphing: polled event status only (Async = 0, OCEvent = 0).
        let mut morphing = header(0x0002, 1, 4);
        morphing.extend_from_slice(&[0, 0, 0, 0]);
        features.push((0x0002, morphing));
        // Removable Medium: tray loading mechanism (001b), Eject, Lock.
        let mut removable = header(0x0003, 0, 4);
        removable.extend_from_slice(&[0x20 | 0x08 | 0x01, 0, 0, 0]);
        features.push((0x0003, removable));

        let mut data = vec![0u8; 8];
        data[6..8].copy_from_slice(&profile.to_be_bytes());
        for (code, descriptor) in features {
            let wanted = match request_type {
                2 => code == start,
                _ => code >= start,
            };
            if wanted {
                data.extend_from_slice(&descriptor);
            }
        }
        let len = (data.len() - 4) as u32;
        data[..4].copy_from_slice(&len.to_be_bytes());
        reply(data, be16(&cdb[7..9]))
    }

    /// GET EVENT STATUS NOTIFICATION, polled, media class only (MMC-3 section 6.5).
    fn get_event_status(&mut self, cdb: &[u8]) -> Result<Option<AtapiPayload>, Sense> {
        const MEDIA_CLASS: u8 = 1 << 4;
        const MEDIA_CLASS_CODE: u8 = 4;
        if cdb[1] & 0x01 == 0 {
            // Asynchronous notification is not supported.
            return Err(Sense::INVALID_FIELD_IN_CDB);
        }
        let data = if cdb[4] & MEDIA_CLASS != 0 {
            let (event, media_status) = self.media.take_event();
            vec![0, 6, MEDIA_CLASS_CODE, MEDIA_CLASS, event as u8, media_status, 0, 0]
        } else {
            // No Event Available: nothing of the requested classes is supported.
            vec![0, 2, 0x80, MEDIA_CLASS]
        };
        reply(data, be16(&cdb[7..9]))
    }

    /// MODE SENSE(10) pages 01h (read error recovery) and 2Ah (capabilities) (MMC-3 section 6.12,
    /// 6.3.1 and 6.3.11).
    fn mode_sense(&mut self, cdb: &[u8]) -> Result<Option<AtapiPayload>, Sense> {
        let page_control = cdb[2] >> 6;
        let page = cdb[2] & 0x3f;
        if page_control == 3 {
            return Err(Sense::SAVING_PARAMETERS_NOT_SUPPORTED);
        }
        let error_recovery = vec![0x01, 0x06, 0x00, 0x05, 0, 0, 0, 0];
        let mut capabilities = vec![0u8; 20];
        capabilities[0] = 0x2a;
        capabilities[1] = 0x12;
        capabilities[2] = 0x3b; // reads CD-R, CD-RW, DVD-ROM, DVD-R, DVD-RAM
        capabilities[4] = 0x71; // audio play, mode 2 form 1 and 2, multi-session
                                // Tray loading (001b), eject, lock supported, lock state.
        capabilities[6] = 0x20 | 0x08 | 0x01 | if self.media.locked() { 0x02 } else { 0 };
        capabilities[8..10].copy_from_slice(&706u16.to_be_bytes()); // 4x, kB/s
        capabilities[10..12].copy_from_slice(&2u16.to_be_bytes()); // volume levels
        capabilities[12..14].copy_from_slice(&512u16.to_be_bytes()); // buffer, KiB
        capabilities[14..16].copy_from_slice(&706u16.to_be_bytes());
        let mut pages = match page {
            0x01 => vec![error_recovery],
            0x2a => vec![capabilities],
            0x3f => vec![error_recovery, capabilities],
            _ => return Err(Sense::INVALID_FIELD_IN_CDB),
        };
        if page_control == 1 {
            // Changeable values: nothing is.
            for p in &mut pages {
                p[2..].fill(0);
            }
        }
        let mut data = vec![0u8; 8];
        for p in pages {
            data.extend_from_slice(&p);
        }
        let len = (data.len() - 2) as u16;
        data[..2].copy_from_slice(&len.to_be_bytes());
        reply(data, be16(&cdb[7..9]))
    }

    /// READ DISC INFORMATION, standard disc information (MMC-3 section 6.22): a complete,
    /// single-session disc with one track.
    fn read_disc_information(&mut self, cdb: &[u8]) -> Result<Option<AtapiPayload>, Sense> {
        if cdb[1] & 0x07 != 0 {
            return Err(Sense::INVALID_FIELD_IN_CDB);
        }
        self.media.ready()?;
        let mut data = vec![0u8; 34];
        data[1] = 32;
        data[2] = 0x0e; // last session complete, disc complete
        data[3] = 1; // first track
        data[4] = 1; // sessions
        data[5] = 1; // first track in last session
        data[6] = 1; // last track in last session
        data[7] = 0x20; // unrestricted use
        data[16..24].fill(0xff); // no lead-in / lead-out times on a complete disc
        reply(data, be16(&cdb[7..9]))
    }
}
