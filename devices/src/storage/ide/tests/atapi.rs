//! The ATAPI CD-ROM through the PACKET protocol (oracles: QEMU tests/qtest/ide-test.c
//! `test_*_cdrom_*`, cdrom-test.c, and the MMC-3 / SPC-3 tables cited in atapi.rs).

use std::sync::{Arc, Mutex};

use super::super::busmaster::status as bmis;
use super::super::spec::{cmd, reason, reg, status};
use super::{image, Ch, Rig, PRD_TABLE};
use crate::storage::block::MemoryBackend;
use crate::storage::ide::{MediaError, TrayMoved};

const CD: usize = 1;

/// An "ISO": 2048-byte blocks numbered at their start, with a primary volume descriptor at 16.
fn iso(blocks: usize) -> Arc<MemoryBackend> {
    let mut v = image(blocks, 2048);
    if blocks > 16 {
        v[16 * 2048..16 * 2048 + 6].copy_from_slice(b"\x01CD001");
    }
    Arc::new(MemoryBackend::new(v, true))
}

/// The result of one packet command.
struct Reply {
    status: u8,
    error: u8,
    data: Vec<u8>,
    /// Byte count of each DRQ chunk.
    chunks: Vec<usize>,
}

impl Reply {
    fn check_condition(&self) -> bool {
        self.status & status::ERR != 0
    }
}

impl Ch<'_> {
    /// Sends `cdb` by PIO (or DMA for the data if `dma`) and collects the data-in phase.
    fn packet(&self, cdb: &[u8], byte_limit: u16, dma: bool) -> Reply {
        self.set(reg::ERROR_FEATURES, u8::from(dma));
        self.set(reg::LBA_MID, byte_limit as u8);
        self.set(reg::LBA_HIGH, (byte_limit >> 8) as u8);
        self.select(0);
        self.command(cmd::PACKET);
        assert_eq!(self.alt_status() & (status::DRQ | status::BSY), status::DRQ, "DRQ for the packet");
        assert_eq!(self.reg(reg::SECTOR_COUNT) & reason::MASK, reason::COD, "CoD=1 IO=0 for the packet");
        let mut packet = [0u8; 12];
        packet[..cdb.len()].copy_from_slice(cdb);
        self.write_data(&packet);
        let mut data = Vec::new();
        let mut chunks = Vec::new();
        // Bounded by the largest response the tests ask for.
        for _ in 0..10_000 {
            if dma && self.alt_status() & status::DRQ != 0 {
                // Data goes through the bus master, which the caller starts.
                break;
            }
            assert!(self.irq(), "an interrupt for every data chunk and for status");
            let st = self.status();
            if st & status::DRQ == 0 || dma {
                break;
            }
            assert_eq!(self.reg(reg::SECTOR_COUNT) & reason::MASK, reason::IO, "IO=1 CoD=0 for data");
            let n = usize::from(self.reg(reg::LBA_MID)) | usize::from(self.reg(reg::LBA_HIGH)) << 8;
            chunks.push(n);
            data.extend(self.read_data(n));
        }
        let st = self.status();
        if !dma || st & status::DRQ == 0 {
            assert_eq!(self.reg(reg::SECTOR_COUNT) & reason::MASK, reason::IO | reason::COD, "status phase");
        }
        Reply { status: st, error: self.error(), data, chunks }
    }

    fn pio(&self, cdb: &[u8]) -> Reply {
        self.packet(cdb, 0xfffe, false)
    }

    fn sense(&self) -> (u8, u8, u8) {
        let r = self.pio(&[0x03, 0, 0, 0, 18]);
        assert!(!r.check_condition());
        (r.data[2] & 0x0f, r.data[12], r.data[13])
    }

    fn tur(&self) -> Option<(u8, u8, u8)> {
        let r = self.pio(&[0x00]);
        r.check_condition().then(|| {
            let s = self.sense();
            assert_eq!(r.error >> 4, s.0, "sense key in the Error register");
            s
        })
    }
}

fn read10(lba: u32, blocks: u16) -> [u8; 10] {
    let l = lba.to_be_bytes();
    let b = blocks.to_be_bytes();
    [0x28, 0, l[0], l[1], l[2], l[3], 0, b[0], b[1], 0]
}

#[test]
fn identify_device_is_aborted_with_the_packet_signature() {
    let rig = Rig::with_cdrom(None);
    let c = rig.ch(CD);
    c.command(cmd::IDENTIFY_DEVICE);
    assert!(c.irq());
    assert_eq!(c.status() & status::ERR, status::ERR);
    assert_eq!((c.reg(reg::LBA_MID), c.reg(reg::LBA_HIGH)), (0x14, 0xeb));
    c.command(cmd::IDENTIFY_PACKET_DEVICE);
    assert_eq!(c.status() & status::DRQ, status::DRQ);
    let id = c.read_data(512);
    assert_eq!(u16::from_le_bytes([id[0], id[1]]), 0x85c0, "ATAPI, CD-ROM, removable, 12-byte packets");
    assert_eq!(&id[54..66], b"EQUMD DVR-MO", "model, byte-swapped");
    assert_eq!(c.status(), status::READY);
}

#[test]
fn an_empty_drive_is_not_ready_and_reports_medium_not_present() {
    let rig = Rig::with_cdrom(None);
    let c = rig.ch(CD);
    assert_eq!(c.tur(), Some((2, 0x3a, 0)));
    let r = c.pio(&read10(0, 1));
    assert!(r.check_condition());
    assert_eq!(c.sense(), (2, 0x3a, 0));
    assert_eq!(c.sense(), (0, 0, 0), "REQUEST SENSE consumes the sense data");
    // INQUIRY works without a medium: CD/DVD device, removable.
    let r = c.pio(&[0x12, 0, 0, 0, 36]);
    assert_eq!(r.data.len(), 36);
    assert_eq!((r.data[0], r.data[1]), (0x05, 0x80));
    assert_eq!(&r.data[16..28], b"QEMU DVD-ROM");
    // GET CONFIGURATION: no current profile.
    let r = c.pio(&[0x46, 0, 0, 0, 0, 0, 0, 0, 255]);
    assert_eq!(&r.data[6..8], &[0, 0]);
}

#[test]
fn insert_gives_one_unit_attention_then_the_disc_reads() {
    let rig = Rig::with_cdrom(None);
    let c = rig.ch(CD);
    let cd = rig.handle.cdrom(1, 0).unwrap();
    cd.insert(iso(64)).unwrap();
    // GET EVENT STATUS NOTIFICATION (polled, media class) sees the new medium once.
    let gesn = [0x4a, 0x01, 0, 0, 0x10, 0, 0, 0, 8];
    let r = c.pio(&gesn);
    assert_eq!(r.data, vec![0, 6, 4, 0x10, 2, 0x02, 0, 0], "new media, medium present");
    assert_eq!(c.pio(&gesn).data[4], 0, "no further change");
    assert_eq!(c.tur(), Some((6, 0x28, 0)));
    assert_eq!(c.tur(), None);
    let r = c.pio(&[0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(r.data, vec![0, 0, 0, 63, 0, 0, 8, 0], "last LBA 63, 2048-byte blocks");
    let r = c.pio(&read10(16, 1));
    assert_eq!(&r.data[..6], b"\x01CD001");
    let r = c.pio(&[0xa8, 0, 0, 0, 0, 3, 0, 0, 0, 2, 0, 0]); // READ(12)
    assert_eq!(r.data, iso(64).contents()[3 * 2048..5 * 2048].to_vec());
    // READ CD, user data only, Mode 1 sectors.
    let r = c.pio(&[0xbe, 2 << 2, 0, 0, 0, 5, 0, 0, 1, 0x10, 0, 0]);
    assert_eq!(r.data, iso(64).contents()[5 * 2048..6 * 2048].to_vec());
    let r = c.pio(&[0xbe, 0, 0, 0, 0, 5, 0, 0, 1, 0xf8, 0, 0]); // raw sectors are not offered
    assert!(r.check_condition());
    assert_eq!(c.sense(), (5, 0x24, 0));
}

#[test]
fn reads_past_the_end_are_lba_out_of_range() {
    let rig = Rig::with_cdrom(Some(iso(64)));
    let c = rig.ch(CD);
    for cdb in [read10(63, 2), read10(64, 1), read10(u32::MAX, 0xffff)] {
        let r = c.pio(&cdb);
        assert!(r.check_condition());
        assert!(r.data.is_empty());
        assert_eq!(c.sense(), (5, 0x21, 0));
    }
    assert!(!c.pio(&read10(63, 1)).check_condition());
}

#[test]
fn unknown_opcodes_are_invalid_command_operation_code() {
    let rig = Rig::with_cdrom(Some(iso(16)));
    let c = rig.ch(CD);
    for op in [0x2a, 0x55, 0xad, 0xff] {
        assert!(c.pio(&[op]).check_condition());
        assert_eq!(c.sense(), (5, 0x20, 0), "opcode {op:#x}");
    }
}

#[test]
fn pio_data_is_split_at_the_byte_count_limit() {
    let rig = Rig::with_cdrom(Some(iso(16)));
    let c = rig.ch(CD);
    let r = c.packet(&read10(2, 2), 1001, false);
    // 4096 bytes in chunks of at most 1000 (an odd limit rounds down except for the last).
    assert_eq!(r.chunks, vec![1000, 1000, 1000, 1000, 96]);
    assert_eq!(r.data, iso(16).contents()[2 * 2048..4 * 2048].to_vec());
    assert_eq!(r.status, status::READY);
    // A limit of 0 (invalid) does not stall the transfer.
    assert_eq!(c.packet(&read10(0, 1), 0, false).data.len(), 2048);
    // Allocation length cuts a response.
    assert_eq!(c.pio(&[0x12, 0, 0, 0, 5]).data.len(), 5);
}

#[test]
fn read_toc_formats_0_1_and_2_in_lba_and_msf() {
    let rig = Rig::with_cdrom(Some(iso(1000)));
    let c = rig.ch(CD);
    let toc = |msf: bool, format: u8, track: u8| {
        c.pio(&[0x43, if msf { 2 } else { 0 }, format, 0, 0, 0, track, 0x03, 0x24, 0])
    };
    let r = toc(false, 0, 1);
    assert_eq!(r.data, vec![0, 18, 1, 1, 0, 0x14, 1, 0, 0, 0, 0, 0, 0, 0x14, 0xaa, 0, 0, 0, 0x03, 0xe8]);
    // MSF: LBA 0 is 00:02:00, lead-out at 1000 + 150 frames = 00:15:25.
    let r = toc(true, 0, 0);
    assert_eq!(&r.data[8..12], &[0, 0, 2, 0]);
    assert_eq!(&r.data[16..20], &[0, 0, 15, 25]);
    let r = toc(false, 0, 0xaa);
    assert_eq!(r.data.len(), 12, "only the lead-out");
    assert!(toc(false, 0, 2).check_condition());
    let r = toc(false, 1, 0);
    assert_eq!(r.data, vec![0, 10, 1, 1, 0, 0x14, 1, 0, 0, 0, 0, 0]);
    let r = toc(false, 2, 0);
    assert_eq!(r.data.len(), 4 + 4 * 11);
    assert_eq!(u16::from_be_bytes([r.data[0], r.data[1]]), 46);
    assert_eq!(&r.data[4 + 2 * 11 + 3..4 + 2 * 11 + 11], &[0xa2, 0, 0, 0, 0, 0, 15, 25], "lead-out point");
    assert!(toc(false, 5, 0).check_condition());
    assert_eq!(c.sense(), (5, 0x24, 0));
}

#[test]
fn get_configuration_reports_the_profile_by_medium_size() {
    let cd = Rig::with_cdrom(Some(iso(16)));
    let c = cd.ch(CD);
    let r = c.pio(&[0x46, 0, 0, 0, 0, 0, 0, 0x01, 0]);
    assert_eq!(&r.data[6..8], &[0x00, 0x08], "CD-ROM");
    let len = u32::from_be_bytes([r.data[0], r.data[1], r.data[2], r.data[3]]) as usize;
    assert_eq!(len + 4, r.data.len());
    // Profile list: DVD-ROM not current, CD-ROM current.
    assert_eq!(&r.data[8..20], &[0, 0, 3, 8, 0, 0x10, 0, 0, 0, 0x08, 1, 0]);
    let codes: Vec<u16> = {
        let mut v = Vec::new();
        let mut i = 8;
        while i + 4 <= r.data.len() {
            v.push(u16::from_be_bytes([r.data[i], r.data[i + 1]]));
            i += 4 + usize::from(r.data[i + 3]);
        }
        v
    };
    assert_eq!(codes, vec![0, 1, 2, 3], "profile list, core, morphing, removable medium");
    // RT=2: just the one feature asked for.
    let r = c.pio(&[0x46, 2, 0, 3, 0, 0, 0, 0x01, 0]);
    assert_eq!(r.data.len(), 8 + 8);
    assert_eq!(r.data[8 + 4] & 0xe0, 0x20, "tray loading mechanism");

    // A medium bigger than 80 minutes of CD is a DVD.
    let big = Arc::new(MemoryBackend::new(vec![0; (80 * 60 * 75 + 1) * 2048], true));
    let dvd = Rig::with_cdrom(Some(big));
    let r = dvd.ch(CD).pio(&[0x46, 0, 0, 0, 0, 0, 0, 0x01, 0]);
    assert_eq!(&r.data[6..8], &[0x00, 0x10], "DVD-ROM");
}

#[test]
fn mode_sense_reports_capabilities_and_the_lock() {
    let rig = Rig::with_cdrom(Some(iso(16)));
    let c = rig.ch(CD);
    let sense = |page: u8| c.pio(&[0x5a, 0, page, 0, 0, 0, 0, 0x01, 0, 0]);
    let r = sense(0x2a);
    assert_eq!(u16::from_be_bytes([r.data[0], r.data[1]]) as usize + 2, r.data.len());
    assert_eq!(&r.data[8..10], &[0x2a, 0x12]);
    assert_eq!(r.data[8 + 6] & 0x02, 0, "unlocked");
    c.pio(&[0x1e, 0, 0, 0, 1]);
    assert_eq!(sense(0x2a).data[8 + 6] & 0x02, 0x02, "lock state");
    assert_eq!(sense(0x01).data[8], 0x01);
    let all = sense(0x3f);
    assert_eq!(all.data.len(), 8 + 8 + 20);
    assert!(sense(0x05).check_condition());
    assert_eq!(c.sense(), (5, 0x24, 0));
    assert!(sense(0xc0 | 0x2a).check_condition(), "saved values");
    assert_eq!(c.sense(), (5, 0x39, 0));
}

#[test]
fn guest_eject_is_refused_while_locked_and_reported_as_a_tray_move() {
    let rig = Rig::with_cdrom(Some(iso(16)));
    let c = rig.ch(CD);
    let moves = Arc::new(Mutex::new(Vec::new()));
    let m = moves.clone();
    rig.handle.set_tray_listener(Arc::new(move |t: TrayMoved| m.lock().unwrap().push(t)));
    c.pio(&[0x1e, 0, 0, 0, 1]); // PREVENT MEDIUM REMOVAL
    let r = c.pio(&[0x1b, 0, 0, 0, 0x02]); // LoEj, Start=0: eject
    assert!(r.check_condition());
    assert_eq!(c.sense(), (5, 0x53, 2));
    assert!(moves.lock().unwrap().is_empty());
    let cd = rig.handle.cdrom(1, 0).unwrap();
    assert!(cd.locked() && !cd.tray_open());

    c.pio(&[0x1e, 0, 0, 0, 0]); // ALLOW
    assert!(!c.pio(&[0x1b, 0, 0, 0, 0x02]).check_condition());
    assert_eq!(*moves.lock().unwrap(), vec![TrayMoved { channel: 1, unit: 0, tray_open: true }]);
    assert!(cd.tray_open());
    assert!(cd.medium().is_some(), "a guest eject leaves the disc in the tray");
    assert_eq!(c.tur(), Some((2, 0x3a, 2)), "tray open");
    let r = c.pio(&[0xbd, 0, 0, 0, 0, 0, 0, 0, 0, 8]);
    assert_eq!(r.data[1] & 0x10, 0x10, "MECHANISM STATUS: door open");

    assert!(!c.pio(&[0x1b, 0, 0, 0, 0x03]).check_condition()); // load
    assert_eq!(moves.lock().unwrap().last(), Some(&TrayMoved { channel: 1, unit: 0, tray_open: false }));
    assert_eq!(c.tur(), Some((6, 0x28, 0)));
    assert_eq!(c.tur(), None);
}

#[test]
fn host_eject_of_a_locked_tray_asks_the_guest_unless_forced() {
    let rig = Rig::with_cdrom(Some(iso(16)));
    let c = rig.ch(CD);
    let cd = rig.handle.cdrom(1, 0).unwrap();
    c.pio(&[0x1e, 0, 0, 0, 1]);
    assert_eq!(cd.eject(false), Err(MediaError::Locked));
    let gesn = [0x4a, 0x01, 0, 0, 0x10, 0, 0, 0, 8];
    assert_eq!(c.pio(&gesn).data[4], 1, "eject request event");
    assert!(!cd.tray_open());
    cd.eject(true).unwrap();
    assert!(cd.tray_open() && !cd.locked() && cd.medium().is_none());
    assert_eq!(c.pio(&gesn).data[4..6], [3, 0x01], "media removal, tray open");
    assert_eq!(cd.insert_medium(iso(8)), Ok(()));
    assert_eq!(cd.insert_medium(iso(8)), Err(MediaError::MediumPresent));
    cd.close_tray();
    assert_eq!(c.tur(), Some((6, 0x28, 0)));
    let q = cd.query().unwrap();
    assert!(q.cdrom && q.removable && !q.locked);
    assert_eq!(q.tray_open, Some(false));
    let inserted = q.inserted.unwrap();
    assert_eq!(
        (inserted.file.as_str(), inserted.read_only, inserted.format.as_str(), inserted.size),
        ("memory", true, "raw", 8 * 2048)
    );
    assert_eq!(rig.handle.query().len(), 1);
}

#[test]
fn packet_dma_reads_through_the_bus_master() {
    let rig = Rig::with_cdrom(Some(iso(16)));
    let c = rig.ch(CD);
    rig.write_prds(PRD_TABLE, &[(0x10000, 2048, false), (0x20000, 2048, true)]);
    c.bm_table(PRD_TABLE);
    let r = c.packet(&read10(4, 2), 0, true);
    assert_eq!(r.status & status::DRQ, status::DRQ, "waiting for the engine");
    c.bm_start(true);
    assert!(c.irq());
    assert_eq!(c.status(), status::READY);
    assert_eq!(c.reg(reg::SECTOR_COUNT) & reason::MASK, reason::IO | reason::COD);
    assert_eq!(c.bm_status() & (bmis::ACTIVE | bmis::INTERRUPT | bmis::ERROR), bmis::INTERRUPT);
    let disc = iso(16).contents();
    assert_eq!(rig.read_mem(0x10000, 2048), disc[4 * 2048..5 * 2048].to_vec());
    assert_eq!(rig.read_mem(0x20000, 2048), disc[5 * 2048..6 * 2048].to_vec());
    c.bm_stop();
    // A short table ends the packet command with CHECK CONDITION and the Error bit.
    c.bm_clear_status();
    c.packet(&read10(4, 3), 0, true);
    c.bm_start(true);
    assert!(c.irq());
    assert_eq!(c.status() & status::ERR, status::ERR);
    assert_eq!(c.bm_status() & (bmis::ACTIVE | bmis::ERROR), bmis::ERROR);
    assert_eq!(c.sense().0, 0xb, "ABORTED COMMAND");
}

#[test]
fn host_removal_ends_a_command_waiting_for_dma() {
    let rig = Rig::with_cdrom(Some(iso(16)));
    let c = rig.ch(CD);
    let cd = rig.handle.cdrom(1, 0).unwrap();
    c.packet(&read10(0, 1), 0, true);
    cd.eject(false).unwrap();
    assert!(c.irq());
    assert_eq!(c.status() & (status::ERR | status::DRQ), status::ERR);
    assert_eq!(c.sense(), (2, 0x3a, 2));
}

#[test]
fn host_removal_mid_transfer_waits_for_it_and_ends_the_command_not_ready() {
    let rig = Rig::with_cdrom(Some(iso(16)));
    let c = rig.ch(CD);
    let cd = rig.handle.cdrom(1, 0).unwrap();
    rig.write_prds(PRD_TABLE, &[(0x10000, 2048, true)]);
    c.bm_table(PRD_TABLE);
    c.packet(&read10(3, 1), 0, true);
    rig.hold.set(true);
    c.bm_start(true);
    assert_eq!(rig.worker.pending(), 1);
    cd.eject(false).unwrap();
    rig.worker.run_pending();
    assert_eq!(rig.read_mem(0x10000, 2048), vec![0; 2048], "the old medium's data never arrives");
    assert!(c.irq());
    assert_eq!(c.status() & (status::ERR | status::DRQ), status::ERR);
    assert_eq!(c.sense(), (2, 0x3a, 2));
}

#[test]
fn device_reset_is_accepted_while_busy_and_restores_the_signature() {
    let rig = Rig::with_cdrom(Some(iso(16)));
    let c = rig.ch(CD);
    c.set(reg::ERROR_FEATURES, 0);
    c.command(cmd::PACKET); // now waiting for the packet with DRQ set
    c.command(cmd::DEVICE_RESET);
    assert_eq!(c.status(), 0);
    assert_eq!((c.reg(reg::LBA_MID), c.reg(reg::LBA_HIGH)), (0x14, 0xeb));
    assert!(!c.pio(&[0x00]).check_condition());
}

#[test]
fn disc_information_and_set_cd_speed() {
    let rig = Rig::with_cdrom(Some(iso(16)));
    let c = rig.ch(CD);
    let r = c.pio(&[0x51, 0, 0, 0, 0, 0, 0, 0, 34, 0]);
    assert_eq!(r.data.len(), 34);
    assert_eq!(r.data[2], 0x0e, "complete disc, complete last session");
    assert!(!c.pio(&[0xbb, 0, 0xff, 0xff, 0xff, 0xff]).check_condition());
    rig.handle.cdrom(1, 0).unwrap().eject(false).unwrap();
    assert!(c.pio(&[0x51, 0, 0, 0, 0, 0, 0, 0, 34, 0]).check_condition());
}
