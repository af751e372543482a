//! An ATA disk: the ATA/ATAPI-6 general and 48-bit address feature sets over a block backend.
//!
//! Every access is range checked against the image before it is made: an address past the end
//! ends the command with IDNF and never reaches the backend.

use std::sync::Arc;

use super::drive::{
    common_command, start_data_in, start_data_out, Completion, DmaData, DmaRequest, PioNext, PioTransfer, TaskFile,
};
use super::identify::{identify_device, DiskIdentify, DriveIdentity, TransferMode, MAX_UDMA_MODE};
use super::spec::{cmd, device, error, feature, MAX_MULTIPLE_SECTORS, SECTOR_SIZE};
use crate::storage::block::BlockBackend;

/// Default CHS translation (ATA/ATAPI-6 section 6.2.1 and annex: 16 heads, 63 sectors per
/// track, as BIOSes and QEMU use for disks of any size).
const DEFAULT_HEADS: u8 = 16;
const DEFAULT_SECTORS_PER_TRACK: u8 = 63;

pub struct AtaDisk {
    backend: Arc<dyn BlockBackend>,
    identity: DriveIdentity,
    pub(super) sectors: u64,
    pub(super) cylinders: u16,
    pub(super) current_heads: u8,
    pub(super) current_spt: u8,
    /// Sectors per DRQ block of READ/WRITE MULTIPLE; 0 until SET MULTIPLE MODE.
    pub(super) multiple_count: u8,
    pub(super) write_cache: bool,
    pub(super) mode: TransferMode,
    /// The pending bus-master command writes the disk.
    pub(super) dma_write: bool,
}

/// How a data command addresses the disk and moves its data.
#[derive(Clone, Copy)]
struct Rw {
    ext: bool,
    write: bool,
    multiple: bool,
    dma: bool,
}

impl AtaDisk {
    pub fn new(backend: Arc<dyn BlockBackend>, identity: DriveIdentity) -> AtaDisk {
        let sectors = backend.len() / SECTOR_SIZE as u64;
        AtaDisk {
            backend,
            identity,
            sectors,
            cylinders: super::identify::current_cylinders(sectors, DEFAULT_HEADS, DEFAULT_SECTORS_PER_TRACK),
            current_heads: DEFAULT_HEADS,
            current_spt: DEFAULT_SECTORS_PER_TRACK,
            multiple_count: MAX_MULTIPLE_SECTORS,
            write_cache: true,
            mode: TransferMode::UltraDma(MAX_UDMA_MODE),
            dma_write: false,
        }
    }

    pub fn backend(&self) -> &Arc<dyn BlockBackend> {
        &self.backend
    }

    pub fn sectors(&self) -> u64 {
        self.sectors
    }

    fn identify(&self) -> [u8; 512] {
        identify_device(&DiskIdentify {
            identity: &self.identity,
            sectors: self.sectors,
            cylinders: self.cylinders,
            heads: DEFAULT_HEADS,
            sectors_per_track: DEFAULT_SECTORS_PER_TRACK,
            current_heads: self.current_heads,
            current_sectors_per_track: self.current_spt,
            multiple_count: self.multiple_count,
            write_cache: self.write_cache,
            mode: self.mode,
        })
    }

    /// The first sector and sector count a command addresses, if they lie inside the disk
    /// (LBA28/CHS: section 6.2; LBA48: section 6.16).
    fn extent(&self, regs: &TaskFile, ext: bool) -> Option<(u64, u64)> {
        let (lba, count) = if ext {
            (regs.lba48(), regs.count48())
        } else if regs.device & device::LBA != 0 {
            (regs.lba28(), regs.count28())
        } else {
            let cylinder = u64::from(regs.lba_high) << 8 | u64::from(regs.lba_mid);
            let head = regs.device & device::HEAD_MASK;
            let sector = regs.lba_low;
            if sector == 0 || sector > self.current_spt || head >= self.current_heads {
                return None;
            }
            let heads = u64::from(self.current_heads);
            let spt = u64::from(self.current_spt);
            ((cylinder * heads + u64::from(head)) * spt + u64::from(sector) - 1, regs.count28())
        };
        (lba.checked_add(count)? <= self.sectors).then_some((lba, count))
    }

    fn read_sectors(&self, lba: u64, count: u64) -> std::io::Result<Vec<u8>> {
        let mut buf = vec![0; count as usize * SECTOR_SIZE];
        self.backend.read_at(lba * SECTOR_SIZE as u64, &mut buf)?;
        Ok(buf)
    }

    /// Flush after each write when the guest disabled the write cache (write-through).
    fn write_through(&self) -> std::io::Result<()> {
        if self.write_cache {
            Ok(())
        } else {
            self.backend.flush()
        }
    }

    pub fn execute(&mut self, regs: &mut TaskFile, pio: &mut Option<PioTransfer>, command: u8) -> Completion {
        let rw = |ext, write, multiple, dma| Some(Rw { ext, write, multiple, dma });
        let data_command = match command {
            cmd::READ_SECTORS | cmd::READ_SECTORS_NO_RETRY => rw(false, false, false, false),
            cmd::READ_SECTORS_EXT => rw(true, false, false, false),
            cmd::WRITE_SECTORS | cmd::WRITE_SECTORS_NO_RETRY => rw(false, true, false, false),
            cmd::WRITE_SECTORS_EXT => rw(true, true, false, false),
            cmd::READ_MULTIPLE => rw(false, false, true, false),
            cmd::READ_MULTIPLE_EXT => rw(true, false, true, false),
            cmd::WRITE_MULTIPLE => rw(false, true, true, false),
            cmd::WRITE_MULTIPLE_EXT => rw(true, true, true, false),
            cmd::READ_DMA | cmd::READ_DMA_NO_RETRY => rw(false, false, false, true),
            cmd::READ_DMA_EXT => rw(true, false, false, true),
            cmd::WRITE_DMA | cmd::WRITE_DMA_NO_RETRY => rw(false, true, false, true),
            cmd::WRITE_DMA_EXT => rw(true, true, false, true),
            _ => None,
        };
        if let Some(rw) = data_command {
            return self.start_rw(regs, pio, rw);
        }
        match command {
            cmd::IDENTIFY_DEVICE => return start_data_in(regs, pio, self.identify().to_vec(), PioNext::Done),
            cmd::FLUSH_CACHE | cmd::FLUSH_CACHE_EXT => match self.backend.flush() {
                Ok(()) => regs.succeed(),
                Err(e) => {
                    crate::guest_warn!("IDE disk {}: flush failed: {e}", self.backend.filename());
                    regs.abort()
                }
            },
            cmd::READ_VERIFY_SECTORS | cmd::READ_VERIFY_SECTORS_NO_RETRY | cmd::READ_VERIFY_SECTORS_EXT => {
                // The medium is always readable: verifying is checking the address.
                match self.extent(regs, command == cmd::READ_VERIFY_SECTORS_EXT) {
                    Some(_) => regs.succeed(),
                    None => regs.fail(error::IDNF),
                }
            }
            cmd::SET_MULTIPLE_MODE => {
                // Section 8.39: a power of two up to word 47's maximum; 0 disables.
                let n = regs.nsector;
                if n > MAX_MULTIPLE_SECTORS || (n != 0 && !n.is_power_of_two()) {
                    regs.abort();
                } else {
                    self.multiple_count = n;
                    regs.succeed();
                }
            }
            cmd::INITIALIZE_DEVICE_PARAMETERS => {
                // Section 8.16 (obsolete in ATA-6, still used by BIOSes): the CHS translation.
                if regs.nsector == 0 {
                    regs.abort();
                } else {
                    self.current_spt = regs.nsector;
                    self.current_heads = (regs.device & device::HEAD_MASK) + 1;
                    regs.succeed();
                }
            }
            cmd::RECALIBRATE..=0x1f => regs.succeed(),
            cmd::SET_FEATURES if regs.feature == feature::ENABLE_WRITE_CACHE => {
                self.write_cache = true;
                regs.succeed();
            }
            cmd::SET_FEATURES if regs.feature == feature::DISABLE_WRITE_CACHE => {
                self.write_cache = false;
                match self.backend.flush() {
                    Ok(()) => regs.succeed(),
                    Err(_) => regs.abort(),
                }
            }
            _ => {
                if let Some(c) = common_command(regs, &mut self.mode, command) {
                    return c;
                }
                // Including IDENTIFY PACKET DEVICE, PACKET and DEVICE RESET (PACKET feature set).
                crate::guest_warn!("IDE disk: unsupported command {command:#04x} aborted");
                regs.abort();
            }
        }
        Completion::Interrupt
    }

    fn start_rw(&mut self, regs: &mut TaskFile, pio: &mut Option<PioTransfer>, rw: Rw) -> Completion {
        let block = if rw.multiple {
            if self.multiple_count == 0 {
                // Section 8.25: READ/WRITE MULTIPLE before SET MULTIPLE MODE is aborted.
                regs.abort();
                return Completion::Interrupt;
            }
            u64::from(self.multiple_count)
        } else {
            1
        };
        let Some((lba, count)) = self.extent(regs, rw.ext) else {
            crate::guest_warn!("IDE disk: access outside the {}-sector disk", self.sectors);
            regs.fail(error::IDNF);
            return Completion::Interrupt;
        };
        if rw.dma {
            self.dma_write = rw.write;
            regs.error = 0;
            regs.status = super::spec::status::READY | super::spec::status::DRQ;
            return Completion::Dma(DmaRequest {
                to_memory: !rw.write,
                len: count * SECTOR_SIZE as u64,
                data: DmaData::Ata { backend: self.backend.clone(), offset: lba * SECTOR_SIZE as u64 },
            });
        }
        let n = block.min(count);
        if rw.write {
            let next = PioNext::AtaWrite { lba, remaining: count, block };
            return start_data_out(regs, pio, n as usize * SECTOR_SIZE, next, true);
        }
        match self.read_sectors(lba, n) {
            Ok(buf) => start_data_in(regs, pio, buf, PioNext::AtaRead { lba: lba + n, remaining: count - n, block }),
            Err(e) => {
                crate::guest_warn!("IDE disk {}: read failed: {e}", self.backend.filename());
                regs.fail(error::UNC | error::ABRT);
                Completion::Interrupt
            }
        }
    }

    /// The host moved a whole PIO block through the data port.
    pub fn block_done(&mut self, regs: &mut TaskFile, pio: &mut Option<PioTransfer>, done: PioTransfer) -> Completion {
        match done.next {
            PioNext::AtaRead { lba, remaining, block } if remaining > 0 => {
                let n = block.min(remaining);
                match self.read_sectors(lba, n) {
                    Ok(buf) => start_data_in(
                        regs,
                        pio,
                        buf,
                        PioNext::AtaRead { lba: lba + n, remaining: remaining - n, block },
                    ),
                    Err(e) => {
                        crate::guest_warn!("IDE disk {}: read failed: {e}", self.backend.filename());
                        regs.fail(error::UNC | error::ABRT);
                        Completion::Interrupt
                    }
                }
            }
            PioNext::AtaWrite { lba, remaining, block } => {
                let n = (done.buf.len() / SECTOR_SIZE) as u64;
                if let Err(e) = self.backend.write_at(lba * SECTOR_SIZE as u64, &done.buf) {
                    crate::guest_warn!("IDE disk {}: write failed: {e}", self.backend.filename());
                    regs.abort();
                    return Completion::Interrupt;
                }
                let remaining = remaining - n;
                if remaining > 0 {
                    let next = PioNext::AtaWrite { lba: lba + n, remaining, block };
                    return start_data_out(regs, pio, block.min(remaining) as usize * SECTOR_SIZE, next, false);
                }
                match self.write_through() {
                    Ok(()) => regs.succeed(),
                    Err(_) => regs.abort(),
                }
                Completion::Interrupt
            }
            // The last data-in block was read: the command ends without an interrupt (9.7).
            _ => {
                regs.succeed();
                Completion::Quiet
            }
        }
    }

    pub fn dma_done(&mut self, regs: &mut TaskFile, ok: bool) -> Completion {
        let flushed = !self.dma_write || self.write_through().is_ok();
        if ok && flushed {
            regs.succeed();
        } else {
            regs.abort();
        }
        Completion::Interrupt
    }
}
