//! ATA disk behaviour through the task file (oracle: QEMU tests/qtest/ide-test.c).

use std::sync::Arc;

use super::super::spec::{cmd, error, reg, status};
use super::{image, Rig};
use crate::storage::block::{BlockBackend, MemoryBackend, RawFile};

fn word(data: &[u8], w: usize) -> u16 {
    u16::from_le_bytes([data[2 * w], data[2 * w + 1]])
}

fn ata_string(data: &[u8], first: usize, words: usize) -> String {
    let mut s = String::new();
    for w in first..first + words {
        let v = word(data, w);
        s.push((v >> 8) as u8 as char);
        s.push(v as u8 as char);
    }
    s.trim_end().to_string()
}

fn disk(sectors: usize) -> (Rig, Arc<MemoryBackend>) {
    let backend = Arc::new(MemoryBackend::new(image(sectors, 512), false));
    (Rig::with_disk(backend.clone()), backend)
}

#[test]
fn identify_device_reports_identity_capacity_and_features() {
    let (rig, _) = disk(4096);
    let c = rig.ch(0);
    c.select(0);
    c.command(cmd::IDENTIFY_DEVICE);
    assert!(c.irq());
    assert_eq!(c.status(), status::READY | status::DRQ);
    assert!(!c.irq(), "reading Status deasserts INTRQ");
    let id = c.read_data(512);
    assert_eq!(c.status() & (status::DRQ | status::BSY | status::ERR), 0);
    assert_eq!(ata_string(&id, 27, 20), "QEMU HARDDISK");
    assert_eq!(ata_string(&id, 10, 10), "QM00001");
    assert_eq!(ata_string(&id, 23, 4), "2.5+");
    assert_eq!(u32::from(word(&id, 60)) | u32::from(word(&id, 61)) << 16, 4096);
    assert_eq!(word(&id, 100), 4096);
    assert_eq!(word(&id, 49) & 0x0300, 0x0300, "LBA and DMA supported");
    assert_eq!(word(&id, 83) & (1 << 10 | 1 << 12 | 1 << 13), 1 << 10 | 1 << 12 | 1 << 13, "LBA48, FLUSH CACHE (EXT)");
    assert_eq!(word(&id, 47) & 0xff, 16, "READ/WRITE MULTIPLE up to 16 sectors");
    assert_eq!(word(&id, 63) & 0x07, 0x07, "multiword DMA 0-2");
    assert_eq!(word(&id, 88) & 0x3f, 0x3f, "UDMA 0-5");
    assert_eq!(id.iter().fold(0u8, |a, b| a.wrapping_add(*b)), 0, "word 255 checksum");
}

#[test]
fn set_features_selects_the_transfer_mode_identify_reports() {
    let (rig, _) = disk(64);
    let c = rig.ch(0);
    c.set(reg::ERROR_FEATURES, 0x03);
    c.set(reg::SECTOR_COUNT, 0x22); // multiword DMA 2
    c.command(cmd::SET_FEATURES);
    assert_eq!(c.status() & status::ERR, 0);
    c.command(cmd::IDENTIFY_DEVICE);
    let id = c.read_data(512);
    assert_eq!(word(&id, 63), 0x0407);
    assert_eq!(word(&id, 88) & 0xff00, 0);
    c.set(reg::SECTOR_COUNT, 0x47); // UDMA 7 is not supported
    c.command(cmd::SET_FEATURES);
    assert_eq!(c.status() & status::ERR, status::ERR);
    assert_eq!(c.error(), error::ABRT);
}

#[test]
fn pio_write_then_read_round_trips_through_the_image() {
    let (rig, backend) = disk(64);
    let c = rig.ch(0);
    let data: Vec<u8> = (0..3 * 512).map(|i| (i % 251) as u8).collect();
    c.lba28(5, 3);
    c.command(cmd::WRITE_SECTORS);
    // Section 9.8: DRQ for the first block without an interrupt.
    assert_eq!(c.alt_status() & status::DRQ, status::DRQ);
    assert_eq!(c.irq_edges(), 0);
    for (i, block) in data.chunks(512).enumerate() {
        c.write_data(block);
        assert!(c.irq(), "interrupt after block {i}");
        let st = c.status();
        assert_eq!(st & status::DRQ != 0, i < 2, "DRQ after block {i}: {st:#x}");
    }
    assert_eq!(c.status(), status::READY);
    assert_eq!(&backend.contents()[5 * 512..8 * 512], &data[..]);

    c.lba28(5, 3);
    c.command(cmd::READ_SECTORS);
    let mut back = Vec::new();
    for _ in 0..3 {
        assert!(c.irq());
        assert_eq!(c.status() & status::DRQ, status::DRQ);
        back.extend(c.read_data(512));
    }
    assert_eq!(back, data);
    // The data-in protocol ends without another interrupt.
    assert!(!c.irq());
    assert_eq!(c.status(), status::READY);
}

#[test]
fn read_and_write_multiple_move_blocks_of_the_multiple_count() {
    let (rig, backend) = disk(64);
    let c = rig.ch(0);
    c.set(reg::SECTOR_COUNT, 3);
    c.command(cmd::SET_MULTIPLE_MODE);
    assert_eq!(c.status() & status::ERR, status::ERR, "3 is not a power of two");
    c.set(reg::SECTOR_COUNT, 4);
    c.command(cmd::SET_MULTIPLE_MODE);
    assert_eq!(c.status(), status::READY);

    let edges = c.irq_edges();
    c.lba28(8, 6);
    c.command(cmd::READ_MULTIPLE);
    c.status();
    let first = c.read_data(4 * 512);
    assert_eq!(c.status() & status::DRQ, status::DRQ, "second, partial block follows");
    let second = c.read_data(2 * 512);
    assert_eq!(c.status(), status::READY);
    assert_eq!(c.irq_edges() - edges, 2, "one interrupt per DRQ block");
    assert_eq!([first, second].concat(), backend.contents()[8 * 512..14 * 512].to_vec());

    let data = vec![0x5a; 6 * 512];
    c.lba28(20, 6);
    c.command(cmd::WRITE_MULTIPLE);
    c.write_data(&data[..4 * 512]);
    assert_eq!(c.status() & status::DRQ, status::DRQ);
    c.write_data(&data[4 * 512..]);
    assert_eq!(c.status(), status::READY);
    assert_eq!(&backend.contents()[20 * 512..26 * 512], &data[..]);
}

#[test]
fn accesses_past_the_end_fail_with_idnf_and_leave_the_image_alone() {
    let (rig, backend) = disk(64);
    let before = backend.contents();
    let c = rig.ch(0);
    c.lba28(63, 2);
    c.command(cmd::READ_SECTORS);
    assert!(c.irq());
    assert_eq!(c.status(), status::READY | status::ERR);
    assert_eq!(c.error(), error::IDNF);
    c.lba28(64, 1);
    c.command(cmd::WRITE_SECTORS);
    assert_eq!(c.status() & (status::ERR | status::DRQ), status::ERR);
    c.lba48(u64::from(u32::MAX) << 16, 0);
    c.command(cmd::WRITE_DMA_EXT);
    assert_eq!(c.error(), error::IDNF);
    c.lba28(0, 0); // 256 sectors from 0: past a 64-sector disk
    c.command(cmd::READ_VERIFY_SECTORS);
    assert_eq!(c.error(), error::IDNF);
    c.lba28(10, 5);
    c.command(cmd::READ_VERIFY_SECTORS);
    assert_eq!(c.status(), status::READY);
    assert_eq!(backend.contents(), before);
}

#[test]
fn lba48_reaches_sectors_beyond_28_bits() {
    // A sparse file a little larger than 2^28 sectors (128 GiB).
    let img = crate::storage::block::tests::TempImage::new("lba48.img", &[]);
    let sectors: u64 = (1 << 28) + 64;
    std::fs::OpenOptions::new().write(true).open(&img.0).unwrap().set_len(sectors * 512).unwrap();
    let backend: Arc<dyn BlockBackend> = Arc::new(RawFile::open(&img.0, false).unwrap());
    let rig = super::Rig::new([[Some(super::IdeDriveConfig::disk(backend.clone())), None], [None, None]]);
    let c = rig.ch(0);
    c.command(cmd::IDENTIFY_DEVICE);
    let id = c.read_data(512);
    assert_eq!(u32::from(word(&id, 60)) | u32::from(word(&id, 61)) << 16, 0x0fff_ffff, "LBA28 capacity saturates");
    assert_eq!(u64::from(word(&id, 100)) | u64::from(word(&id, 101)) << 16, sectors);

    let lba = (1u64 << 28) + 10;
    let data = vec![0xc3; 2 * 512];
    c.lba48(lba, 2);
    c.command(cmd::WRITE_SECTORS_EXT);
    c.write_data(&data[..512]);
    c.write_data(&data[512..]);
    assert_eq!(c.status(), status::READY);
    let mut on_disk = vec![0u8; 1024];
    backend.read_at(lba * 512, &mut on_disk).unwrap();
    assert_eq!(on_disk, data);
    // Nothing landed where the address would be with bit 28 dropped.
    let mut low = vec![0u8; 512];
    backend.read_at(10 * 512, &mut low).unwrap();
    assert_eq!(low, vec![0; 512]);

    // HOB reads back the high-order halves of the register FIFO.
    c.lba48(lba, 2);
    c.control(0x80);
    assert_eq!(c.reg(reg::LBA_LOW), (lba >> 24) as u8);
    c.control(0x00);
    assert_eq!(c.reg(reg::LBA_LOW), lba as u8);
    c.command(cmd::READ_SECTORS_EXT);
    assert_eq!([c.read_data(512), c.read_data(512)].concat(), data);
    c.lba48(sectors - 1, 2);
    c.command(cmd::READ_SECTORS_EXT);
    assert_eq!(c.error(), error::IDNF);
}

#[test]
fn flush_cache_reaches_the_backend_and_write_cache_off_writes_through() {
    let (rig, backend) = disk(16);
    let c = rig.ch(0);
    c.command(cmd::FLUSH_CACHE);
    assert!(c.irq());
    assert_eq!(c.status(), status::READY);
    assert_eq!(backend.flush_count(), 1);
    c.command(cmd::FLUSH_CACHE_EXT);
    assert_eq!(backend.flush_count(), 2);
    c.lba28(1, 1);
    c.command(cmd::WRITE_SECTORS);
    c.write_data(&[1; 512]);
    assert_eq!(backend.flush_count(), 2, "write-back cache: no flush per write");
    c.set(reg::ERROR_FEATURES, 0x82); // disable write cache
    c.command(cmd::SET_FEATURES);
    let flushes = backend.flush_count();
    c.lba28(1, 1);
    c.command(cmd::WRITE_SECTORS);
    c.write_data(&[2; 512]);
    assert_eq!(backend.flush_count(), flushes + 1);
    c.command(cmd::IDENTIFY_DEVICE);
    assert_eq!(word(&c.read_data(512), 85) & (1 << 5), 0, "IDENTIFY shows the cache disabled");
}

#[test]
fn chs_addressing_uses_the_current_translation() {
    let (rig, backend) = disk(2048);
    let c = rig.ch(0);
    // Cylinder 1, head 2, sector 3 with 16 heads and 63 sectors per track.
    c.set(reg::SECTOR_COUNT, 1);
    c.set(reg::LBA_LOW, 3);
    c.set(reg::LBA_MID, 1);
    c.set(reg::LBA_HIGH, 0);
    c.set(reg::DEVICE, 0xa0 | 2);
    c.command(cmd::READ_SECTORS);
    let lba = (16 + 2) * 63 + 2;
    assert_eq!(c.read_data(512), backend.contents()[lba * 512..(lba + 1) * 512].to_vec());
    c.set(reg::LBA_LOW, 0); // sector 0 does not exist
    c.command(cmd::READ_SECTORS);
    assert_eq!(c.error(), error::IDNF);
}

#[test]
fn power_management_commands_are_accepted_and_unknown_ones_aborted() {
    let (rig, _) = disk(16);
    let c = rig.ch(0);
    c.set(reg::SECTOR_COUNT, 0);
    c.command(cmd::CHECK_POWER_MODE);
    assert_eq!(c.status(), status::READY);
    assert_eq!(c.reg(reg::SECTOR_COUNT), 0xff, "active or idle");
    for command in [cmd::IDLE_IMMEDIATE, cmd::STANDBY_IMMEDIATE, cmd::INITIALIZE_DEVICE_PARAMETERS] {
        c.set(reg::SECTOR_COUNT, 63);
        c.command(command);
        assert_eq!(c.status(), status::READY, "command {command:#x}");
    }
    for command in [0x00, cmd::PACKET, cmd::IDENTIFY_PACKET_DEVICE, cmd::DEVICE_RESET, 0xf8, 0xb0] {
        c.command(command);
        assert!(c.irq());
        assert_eq!(c.status(), status::READY | status::ERR, "command {command:#x}");
        assert_eq!(c.error(), error::ABRT);
    }
}

#[test]
fn software_reset_restores_signatures_and_busy_drops_commands() {
    let backend = Arc::new(MemoryBackend::new(image(16, 512), false));
    let rig = Rig::new([
        [Some(super::IdeDriveConfig::disk(backend)), Some(super::IdeDriveConfig::cdrom(None))],
        [None, None],
    ]);
    let c = rig.ch(0);
    c.lba28(3, 1);
    c.command(cmd::READ_SECTORS);
    assert!(c.irq());
    c.control(0x04); // SRST
    assert!(!c.irq(), "reset drops the pending interrupt");
    assert_eq!(c.alt_status() & status::BSY, status::BSY);
    c.control(0x00);
    assert_eq!(c.status(), status::READY, "DRQ of the abandoned read is gone");
    assert_eq!(
        (c.reg(reg::SECTOR_COUNT), c.reg(reg::LBA_LOW), c.reg(reg::LBA_MID), c.reg(reg::LBA_HIGH)),
        (1, 1, 0, 0)
    );
    assert_eq!(c.error(), 0x01);
    c.select(1);
    assert_eq!(c.status(), 0, "a PACKET device leaves DRDY clear after reset");
    assert_eq!((c.reg(reg::LBA_MID), c.reg(reg::LBA_HIGH)), (0x14, 0xeb));
    assert!(!c.irq(), "no interrupt after SRST");

    // EXECUTE DEVICE DIAGNOSTIC: device 0 selected afterwards, diagnostic code 01h, interrupt.
    c.command(cmd::EXECUTE_DEVICE_DIAGNOSTIC);
    assert!(c.irq());
    assert_eq!(c.reg(reg::DEVICE) & 0x10, 0);
    assert_eq!(c.error(), 0x01);
}

#[test]
fn interrupt_line_follows_nien_and_status_reads() {
    let (rig, _) = disk(16);
    let c = rig.ch(0);
    c.control(0x02); // nIEN
    c.command(cmd::FLUSH_CACHE);
    assert!(!c.irq(), "nIEN keeps INTRQ off the line");
    c.control(0x00);
    assert!(c.irq(), "the pending interrupt reaches the line once enabled");
    c.alt_status();
    assert!(c.irq(), "Alternate Status does not acknowledge");
    c.status();
    assert!(!c.irq());
    assert!(!rig.ch(1).irq(), "the other channel's line is untouched");
    // The bus-master Interrupt bit follows INTRQ even for PIO commands.
    assert_eq!(c.bm_status() & 0x04, 0x04);
}

#[test]
fn an_absent_device_reads_zero_status_and_ignores_commands() {
    let (rig, backend) = disk(16);
    let c = rig.ch(0);
    c.select(1);
    assert_eq!(c.status(), 0);
    assert_eq!(c.error(), 0);
    c.command(cmd::IDENTIFY_DEVICE);
    assert!(!c.irq());
    c.select(0);
    assert_eq!(c.status(), status::READY);
    // A channel with no devices reads 0 everywhere.
    assert_eq!(rig.ch(1).status(), 0);
    assert_eq!(rig.ch(1).reg(reg::LBA_MID), 0);
    drop(backend);
}

#[test]
fn read_only_disks_are_refused_with_a_useful_message() {
    let backend = Arc::new(MemoryBackend::new(vec![0; 512], true));
    let mem = Arc::new(crate::memory::TestMemory::new(4096));
    let line: Arc<dyn crate::interrupt::InterruptLine> = Arc::new(crate::interrupt::DisconnectedLine);
    let e = super::Piix3Ide::new(
        [[None, Some(super::IdeDriveConfig::disk(backend))], [None, None]],
        mem,
        [line.clone(), line],
    )
    .err()
    .unwrap();
    assert!(e.to_string().contains("CD-ROM"), "{e}");
}
