//! Save/restore of the PIIX3 IDE function: configuration space, and per channel the selected
//! device, Device Control, the pending interrupt, the bus-master registers and a command waiting
//! for the bus master; per device the task file, the PIO transfer in flight, the ATA disk's CHS
//! translation / multiple count / write cache / transfer mode, and the CD-ROM's sense data, tray,
//! lock and media-change events.
//!
//! As QEMU does (`vmstate_ide_drive_pio_state`: io_buffer, cur_io_buffer offset and length,
//! end_transfer_fn), a PIO transfer in flight is saved with its buffer and position and goes on
//! after the restore; the guest never notices. The images themselves are not state: the restoring
//! side opens the same ones, and every saved address is checked against them.
//!
//! A bus-master transfer in flight on an I/O worker is never saved: saving drains it first (the
//! data phase finishes, on the saving thread if the worker had not started it, and the command
//! completes with its status and interrupt), so the state holds either a command still waiting
//! for the bus master (saved, and started again when the restored guest sets Start) or a
//! completed one. Draining costs the save at most one transfer's I/O; recording requests for
//! re-issue would instead make the restore side repeat I/O the guest may have observed half
//! done (a write partly on disk). Restoring cancels whatever the restoring machine had in flight.
//!
//! A disk the guest's PV drivers unplugged (xen-platform) is saved as absent; the restoring
//! machine, built from the same command line, has it again and unplugs it to match.

use std::sync::Arc;

use super::atapi::AtapiPayload;
use super::busmaster::{command as bm_command, status as bm_status, BusMaster};
use super::channel::Channel;
use super::controller::Piix3Ide;
use super::drive::{DmaData, DmaRequest, Drive, DriveKind, PioNext, PioTransfer, TaskFile};
use super::identify::{TransferMode, MAX_MWDMA_MODE, MAX_PIO_MODE, MAX_UDMA_MODE};
use super::spec::{control, MAX_MULTIPLE_SECTORS, PACKET_SIZE, SECTOR_SIZE};
use crate::snapshot::{Snapshot, StateError, StateReader, StateWriter};
use crate::storage::block::BlockBackend;
use crate::storage::scsi_sense::Sense;

/// The largest PIO block: an ATAPI chunk is at most 0xfffe bytes, an ATA block
/// `MAX_MULTIPLE_SECTORS` sectors.
const MAX_PIO_BUFFER: usize = 0x1_0000;
/// The largest in-memory ATAPI response (allocation lengths are 16 bits).
const MAX_ATAPI_BYTES: usize = 0x1_0000;
/// The largest ATA DMA transfer: 65536 sectors (LBA48 count 0).
const MAX_ATA_DMA: u64 = 65536 * SECTOR_SIZE as u64;

const KIND_ABSENT: u8 = 0;
const KIND_DISK: u8 = 1;
const KIND_CDROM: u8 = 2;

fn kind_code(d: &Drive) -> u8 {
    match d.kind {
        DriveKind::Absent => KIND_ABSENT,
        DriveKind::Disk(_) => KIND_DISK,
        DriveKind::Cdrom(_) => KIND_CDROM,
    }
}

// ---- save ----

fn save_mode(w: &mut StateWriter, m: TransferMode) {
    let (tag, n) = match m {
        TransferMode::Pio(n) => (0, n),
        TransferMode::MultiwordDma(n) => (1, n),
        TransferMode::UltraDma(n) => (2, n),
    };
    w.u8(tag);
    w.u8(n);
}

fn save_payload(w: &mut StateWriter, p: &AtapiPayload) {
    match p {
        AtapiPayload::Bytes { data, pos } => {
            w.u8(0);
            w.blob(data);
            w.u32(*pos as u32);
        }
        AtapiPayload::Medium { offset, remaining, .. } => {
            w.u8(1);
            w.u64(*offset);
            w.u64(*remaining);
        }
    }
}

fn save_task_file(w: &mut StateWriter, t: &TaskFile) {
    for b in [
        t.feature,
        t.hob_feature,
        t.nsector,
        t.hob_nsector,
        t.lba_low,
        t.hob_lba_low,
        t.lba_mid,
        t.hob_lba_mid,
        t.lba_high,
        t.hob_lba_high,
        t.device,
        t.status,
        t.error,
    ] {
        w.u8(b);
    }
}

fn save_drive(w: &mut StateWriter, d: &Drive) {
    w.u8(kind_code(d));
    save_task_file(w, &d.regs);
    match &d.kind {
        DriveKind::Absent => {}
        DriveKind::Disk(disk) => {
            w.u64(disk.sectors);
            w.u8(disk.current_heads);
            w.u8(disk.current_spt);
            w.u8(disk.multiple_count);
            w.bool(disk.write_cache);
            save_mode(w, disk.mode);
            w.bool(disk.dma_write);
        }
        DriveKind::Cdrom(cd) => {
            save_mode(w, cd.mode);
            w.u8(cd.sense.key);
            w.u8(cd.sense.asc);
            w.u8(cd.sense.ascq);
            let m = &cd.media;
            for b in [
                m.medium.is_some(),
                m.tray_open,
                m.locked,
                m.unit_attention,
                m.eject_request,
                m.new_media,
                m.media_removal,
            ] {
                w.bool(b);
            }
        }
    }
    w.option(d.pio.as_ref(), |w, p| {
        w.blob(&p.buf);
        w.u32(p.pos as u32);
        w.bool(p.to_host);
        match &p.next {
            PioNext::Done => w.u8(0),
            PioNext::AtaRead { lba, remaining, block } | PioNext::AtaWrite { lba, remaining, block } => {
                w.u8(if matches!(p.next, PioNext::AtaRead { .. }) { 1 } else { 2 });
                w.u64(*lba);
                w.u64(*remaining);
                w.u64(*block);
            }
            PioNext::AtapiPacket { dma, byte_limit } => {
                w.u8(3);
                w.bool(*dma);
                w.u16(*byte_limit);
            }
            PioNext::AtapiData { payload, byte_limit } => {
                w.u8(4);
                save_payload(w, payload);
                w.u16(*byte_limit);
            }
        }
    });
}

fn save_channel(w: &mut StateWriter, ch: &Channel) {
    w.u8(ch.selected as u8);
    w.u8(ch.control);
    w.bool(ch.irq_pending);
    w.u8(ch.bus_master.command);
    w.u8(ch.bus_master.status);
    w.u32(ch.bus_master.prd_table);
    for d in &ch.drives {
        save_drive(w, d);
    }
    w.option(ch.dma.as_ref(), |w, (unit, req)| {
        w.u8(*unit as u8);
        w.bool(req.to_memory);
        w.u64(req.len);
        match &req.data {
            DmaData::Ata { offset, .. } => {
                w.u8(0);
                w.u64(*offset);
            }
            DmaData::Atapi(p) => {
                w.u8(1);
                save_payload(w, p);
            }
        }
    });
}

// ---- restore: parse and check everything, then apply ----

/// What a restoring drive has, to check saved references against.
struct Dest {
    kind: u8,
    /// Disk sectors, or the CD medium the drive will hold after the restore.
    sectors: u64,
    medium: Option<Arc<dyn BlockBackend>>,
}

enum KindState {
    Absent,
    Disk { heads: u8, spt: u8, multiple: u8, write_cache: bool, mode: TransferMode, dma_write: bool },
    Cdrom { mode: TransferMode, sense: Sense, flags: [bool; 7] },
}

struct DriveImage {
    regs: TaskFile,
    kind: KindState,
    pio: Option<PioTransfer>,
}

struct ChannelImage {
    selected: usize,
    control: u8,
    irq_pending: bool,
    bus_master: BusMaster,
    drives: [DriveImage; 2],
    dma: Option<(usize, DmaRequest)>,
}

fn read_mode(r: &mut StateReader<'_>, field: &str) -> Result<TransferMode, StateError> {
    let tag = r.u8(field)?;
    let n = r.u8(field)?;
    match (tag, n) {
        (0, n) if n <= MAX_PIO_MODE => Ok(TransferMode::Pio(n)),
        (1, n) if n <= MAX_MWDMA_MODE => Ok(TransferMode::MultiwordDma(n)),
        (2, n) if n <= MAX_UDMA_MODE => Ok(TransferMode::UltraDma(n)),
        _ => Err(r.invalid(field, format!("({tag}, {n}) is not a supported transfer mode"))),
    }
}

fn read_payload(r: &mut StateReader<'_>, field: &str, dest: &Dest) -> Result<AtapiPayload, StateError> {
    match r.u8(field)? {
        0 => {
            let data = r.blob(field, MAX_ATAPI_BYTES)?;
            let pos = r.u32(field)? as usize;
            if pos > data.len() {
                return Err(r.invalid(field, format!("position {pos} is past the {}-byte response", data.len())));
            }
            Ok(AtapiPayload::Bytes { data, pos })
        }
        1 => {
            let offset = r.u64(field)?;
            let remaining = r.u64(field)?;
            let Some(backend) = dest.medium.clone() else {
                return Err(r.invalid(field, "a read of the medium is in flight but the drive has no medium"));
            };
            if offset.checked_add(remaining).is_none_or(|end| end > backend.len()) {
                return Err(r.invalid(
                    field,
                    format!("{remaining} bytes at {offset} lie beyond the {}-byte medium", backend.len()),
                ));
            }
            Ok(AtapiPayload::Medium { backend, offset, remaining })
        }
        t => Err(r.invalid(field, format!("{t} is not a response kind"))),
    }
}

fn read_task_file(r: &mut StateReader<'_>) -> Result<TaskFile, StateError> {
    let mut b = [0u8; 13];
    for (i, v) in b.iter_mut().enumerate() {
        *v = r.u8(&format!("task_file[{i}]"))?;
    }
    Ok(TaskFile {
        feature: b[0],
        hob_feature: b[1],
        nsector: b[2],
        hob_nsector: b[3],
        lba_low: b[4],
        hob_lba_low: b[5],
        lba_mid: b[6],
        hob_lba_mid: b[7],
        lba_high: b[8],
        hob_lba_high: b[9],
        device: b[10],
        status: b[11],
        error: b[12],
    })
}

fn read_drive(r: &mut StateReader<'_>, dest: &mut Dest) -> Result<DriveImage, StateError> {
    let kind = r.u8("drive.kind")?;
    match (kind, dest.kind) {
        (a, b) if a == b => {}
        // Unplugged for the guest's PV drivers: the restoring machine unplugs it too.
        (KIND_ABSENT, KIND_DISK) => {}
        (a, b) => {
            let name = |k| ["absent", "ATA disk", "CD-ROM"].get(k as usize).copied().unwrap_or("unknown");
            return Err(r.invalid("drive.kind", format!("saved {} but this machine has {} here", name(a), name(b))));
        }
    }
    let regs = read_task_file(r)?;
    let kind_state = match kind {
        KIND_ABSENT => KindState::Absent,
        KIND_DISK => {
            let sectors = r.u64("disk.sectors")?;
            if sectors != dest.sectors {
                return Err(r.invalid(
                    "disk.sectors",
                    format!("saved a {sectors}-sector disk; this image has {} sectors", dest.sectors),
                ));
            }
            let heads = r.u8_where("disk.current_heads", |h| (1..=16).contains(&h), "a head count (1-16)")?;
            let spt = r.u8_where("disk.current_spt", |s| s != 0, "a sectors-per-track count (1-255)")?;
            let multiple = r.u8_where(
                "disk.multiple_count",
                |n| n == 0 || (n.is_power_of_two() && n <= MAX_MULTIPLE_SECTORS),
                "0 or a power of two up to 16",
            )?;
            let write_cache = r.bool("disk.write_cache")?;
            let mode = read_mode(r, "disk.mode")?;
            let dma_write = r.bool("disk.dma_write")?;
            KindState::Disk { heads, spt, multiple, write_cache, mode, dma_write }
        }
        _ => {
            let mode = read_mode(r, "cdrom.mode")?;
            let key = r.u8_where("cdrom.sense.key", |k| k <= 0xf, "a sense key (0-15)")?;
            let sense = Sense { key, asc: r.u8("cdrom.sense.asc")?, ascq: r.u8("cdrom.sense.ascq")? };
            let mut flags = [false; 7];
            for (f, name) in flags.iter_mut().zip([
                "medium",
                "tray_open",
                "locked",
                "unit_attention",
                "eject_request",
                "new_media",
                "media_removal",
            ]) {
                *f = r.bool(&format!("cdrom.{name}"))?;
            }
            if !flags[0] {
                // The guest saw an empty drive: whatever this side opened is not in it.
                dest.medium = None;
            }
            KindState::Cdrom { mode, sense, flags }
        }
    };
    let pio = r.option("pio", |r| {
        let buf = r.blob("pio.buffer", MAX_PIO_BUFFER)?;
        let pos = r.u32("pio.position")? as usize;
        if pos > buf.len() {
            return Err(r.invalid("pio.position", format!("{pos} is past the {}-byte buffer", buf.len())));
        }
        let to_host = r.bool("pio.to_host")?;
        let tag = r.u8("pio.next")?;
        let sectors_ok = |lba: u64, n: u64| lba.checked_add(n).is_some_and(|end| end <= dest.sectors);
        let next = match (tag, kind) {
            (0, KIND_DISK | KIND_CDROM) if to_host => PioNext::Done,
            (1 | 2, KIND_DISK) => {
                let (lba, remaining, block) = (r.u64("pio.lba")?, r.u64("pio.remaining")?, r.u64("pio.block")?);
                if !(1..=u64::from(MAX_MULTIPLE_SECTORS)).contains(&block) || !sectors_ok(lba, remaining) {
                    return Err(r.invalid(
                        "pio.next",
                        format!("{remaining} sectors at {lba} in blocks of {block} do not fit the disk"),
                    ));
                }
                if tag == 1 && to_host {
                    PioNext::AtaRead { lba, remaining, block }
                } else if tag == 2 && !to_host {
                    // The buffer holds whole sectors of this block, never more than remain.
                    let n = (buf.len() / SECTOR_SIZE) as u64;
                    if buf.len() % SECTOR_SIZE != 0 || n == 0 || n > remaining.min(block) {
                        return Err(
                            r.invalid("pio.buffer", format!("{} bytes is not a data-out block here", buf.len()))
                        );
                    }
                    PioNext::AtaWrite { lba, remaining, block }
                } else {
                    return Err(r.invalid("pio.to_host", "direction does not match the command"));
                }
            }
            (3, KIND_CDROM) if !to_host => {
                let dma = r.bool("pio.dma")?;
                let byte_limit = r.u16("pio.byte_limit")?;
                if buf.len() != PACKET_SIZE {
                    return Err(
                        r.invalid("pio.buffer", format!("a command packet is {PACKET_SIZE} bytes, not {}", buf.len()))
                    );
                }
                PioNext::AtapiPacket { dma, byte_limit }
            }
            (4, KIND_CDROM) if to_host => {
                let payload = read_payload(r, "pio.payload", dest)?;
                PioNext::AtapiData { payload, byte_limit: r.u16("pio.byte_limit")? }
            }
            _ => {
                return Err(r.invalid("pio.next", format!("transfer kind {tag} does not fit this device and direction")))
            }
        };
        Ok(PioTransfer { buf, pos, to_host, next })
    })?;
    if pio.is_some() && kind == KIND_ABSENT {
        return Err(r.invalid("pio", "an absent device has no transfer"));
    }
    Ok(DriveImage { regs, kind: kind_state, pio })
}

fn read_channel(r: &mut StateReader<'_>, dests: &mut [Dest; 2]) -> Result<ChannelImage, StateError> {
    let selected = r.u8_where("selected", |u| u <= 1, "a unit (0 or 1)")? as usize;
    let control = r.u8_where(
        "device_control",
        |v| v & !(control::HOB | control::SRST | control::NIEN) == 0,
        "a Device Control value (HOB, SRST, nIEN)",
    )?;
    let irq_pending = r.bool("irq_pending")?;
    let command = r.u8_where("bm.command", |v| v & !bm_command::MASK == 0, "a bus-master command (Start, R/W)")?;
    let status_bits = bm_status::ACTIVE | bm_status::ERROR | bm_status::INTERRUPT | bm_status::READ_WRITE;
    let status = r.u8_where("bm.status", |v| v & !status_bits == 0, "a bus-master status (no Simplex)")?;
    let prd_table = r.u32("bm.prd_table")?;
    if prd_table & 3 != 0 {
        return Err(r.invalid("bm.prd_table", "the descriptor table is DWORD aligned (SFF-8038i section 3.1.3)"));
    }
    let [d0, d1] = dests;
    let drives = [read_drive(r, d0)?, read_drive(r, d1)?];
    let dma = r.option("dma", |r| {
        let unit = r.u8_where("dma.unit", |u| u <= 1, "a unit (0 or 1)")? as usize;
        let to_memory = r.bool("dma.to_memory")?;
        let len = r.u64("dma.length")?;
        let dest = &dests[unit];
        let data = match (r.u8("dma.kind")?, dest.kind) {
            (0, KIND_DISK) if matches!(drives[unit].kind, KindState::Disk { .. }) => {
                let offset = r.u64("dma.offset")?;
                let fits = offset.checked_add(len).is_some_and(|end| end <= dest.sectors * SECTOR_SIZE as u64);
                if len == 0
                    || len > MAX_ATA_DMA
                    || len % SECTOR_SIZE as u64 != 0
                    || offset % SECTOR_SIZE as u64 != 0
                    || !fits
                {
                    return Err(
                        r.invalid("dma.offset", format!("{len} bytes at {offset} is not a transfer on this disk"))
                    );
                }
                let Some(backend) = dest.medium.clone() else { return Err(r.invalid("dma", "no disk image")) };
                DmaData::Ata { backend, offset }
            }
            (1, KIND_CDROM) if to_memory => {
                let payload = read_payload(r, "dma.payload", dest)?;
                if payload.remaining() != len {
                    return Err(r.invalid("dma.length", "does not match the response"));
                }
                DmaData::Atapi(payload)
            }
            (k, _) => return Err(r.invalid("dma.kind", format!("transfer kind {k} does not fit unit {unit}"))),
        };
        Ok((unit, DmaRequest { to_memory, len, data }))
    })?;
    Ok(ChannelImage {
        selected,
        control,
        irq_pending,
        bus_master: BusMaster { command, status, prd_table },
        drives,
        dma,
    })
}

fn dest_of(d: &Drive) -> Dest {
    match &d.kind {
        DriveKind::Absent => Dest { kind: KIND_ABSENT, sectors: 0, medium: None },
        DriveKind::Disk(disk) => Dest { kind: KIND_DISK, sectors: disk.sectors, medium: Some(disk.backend().clone()) },
        DriveKind::Cdrom(cd) => Dest { kind: KIND_CDROM, sectors: 0, medium: cd.media.medium.clone() },
    }
}

fn apply_channel(ch: &mut Channel, image: ChannelImage, dests: [Dest; 2]) {
    let ChannelImage { selected, control, irq_pending, bus_master, drives, dma } = image;
    for ((drive, img), dest) in ch.drives.iter_mut().zip(drives).zip(dests) {
        match img.kind {
            KindState::Absent => {
                if let DriveKind::Disk(disk) = &drive.kind {
                    log::info!(
                        "restore: IDE disk {} was unplugged by the guest; unplugging it here",
                        disk.backend().filename()
                    );
                }
                drive.kind = DriveKind::Absent;
            }
            KindState::Disk { heads, spt, multiple, write_cache, mode, dma_write } => {
                if let DriveKind::Disk(disk) = &mut drive.kind {
                    disk.current_heads = heads;
                    disk.current_spt = spt;
                    disk.multiple_count = multiple;
                    disk.write_cache = write_cache;
                    disk.mode = mode;
                    disk.dma_write = dma_write;
                }
            }
            KindState::Cdrom { mode, sense, flags } => {
                if let DriveKind::Cdrom(cd) = &mut drive.kind {
                    cd.mode = mode;
                    cd.sense = sense;
                    let m = &mut cd.media;
                    let had = m.medium.is_some();
                    m.medium = dest.medium;
                    [_, m.tray_open, m.locked, m.unit_attention, m.eject_request, m.new_media, m.media_removal] = flags;
                    if flags[0] && m.medium.is_none() {
                        // The medium the guest had is not here: tell it so.
                        m.media_removal = true;
                    }
                    if had && m.medium.is_none() {
                        log::info!("restore: the saved CD-ROM drive was empty; leaving it empty");
                    }
                }
            }
        }
        drive.regs = img.regs;
        drive.pio = img.pio;
    }
    ch.selected = selected;
    ch.control = control;
    ch.irq_pending = irq_pending;
    ch.bus_master = bus_master;
    ch.dma = dma;
    // Drive INTRQ to what the restored registers say (QEMU's interrupt controller state carries
    // the pin; here the line is set explicitly, which is idempotent there).
    let level = irq_pending && control & control::NIEN == 0;
    ch.line_level = level;
    ch.irq.set_level(level);
}

impl Snapshot for Piix3Ide {
    const ID: &'static str = "piix3-ide";
    const VERSION: u16 = 1;

    fn save(&self, w: &mut StateWriter) {
        self.config.save_state(w);
        let mut state = self.shared.state.lock().unwrap_or_else(|e| e.into_inner());
        for ch in 0..2 {
            state.with_ctx(ch, |c, ctx| c.drain_in_flight(ctx));
        }
        for ch in &state.channels {
            save_channel(w, ch);
        }
    }

    fn restore(&mut self, r: &mut StateReader<'_>) -> Result<(), StateError> {
        let config = self.config.load_state(r)?;
        let mut state = self.shared.state.lock().unwrap_or_else(|e| e.into_inner());
        let mut dests = state.channels.each_ref().map(|ch| ch.drives.each_ref().map(dest_of));
        let [d0, d1] = &mut dests;
        let images = [read_channel(r, d0)?, read_channel(r, d1)?];
        r.finish()?;
        self.config.apply_state(config);
        let enabled = self.config.bus_master_enabled();
        state.bus_master_enabled = enabled;
        for ((ch, image), dest) in state.channels.iter_mut().zip(images).zip(dests) {
            ch.cancel_in_flight();
            apply_channel(ch, image, dest);
        }
        Ok(())
    }
}
