//! Save/restore of the controller: a machine stopped mid-command goes on, after the restore into
//! a freshly built controller, exactly as the original does.

use super::*;
use crate::snapshot::{fuzz::hostile_payloads, restore_from, save_to_vec, Snapshot};
use crate::storage::ide::spec::cmd;

const SECTORS: usize = 64;

fn disk_and_cd(disk: &Arc<MemoryBackend>, cd: &Arc<MemoryBackend>) -> Rig {
    Rig::new([
        [Some(IdeDriveConfig::disk(disk.clone())), None],
        [Some(IdeDriveConfig::cdrom(Some(cd.clone() as Arc<dyn crate::storage::block::BlockBackend>))), None],
    ])
}

fn transfer(rig: &Rig, to: &Rig) {
    let saved = save_to_vec(&*rig.ide.lock().unwrap());
    restore_from(&mut *to.ide.lock().unwrap(), Piix3Ide::VERSION, &saved).unwrap();
    to.bus.resync_bars();
}

#[test]
fn a_pio_read_interrupted_by_save_goes_on_after_restore() {
    let disk = Arc::new(MemoryBackend::new(image(SECTORS, 512), false));
    let cd = Arc::new(MemoryBackend::new(vec![0x5a; 2048 * 4], true));
    let rig = disk_and_cd(&disk, &cd);
    let c = rig.ch(0);
    // READ MULTIPLE of 6 sectors at LBA 10 in blocks of 4, interrupted in the first block.
    c.set(reg::SECTOR_COUNT, 4);
    c.set(reg::DEVICE, 0xa0);
    c.command(cmd::SET_MULTIPLE_MODE);
    assert_eq!(c.status() & 0x01, 0);
    c.lba28(10, 6);
    c.command(cmd::READ_MULTIPLE);
    let first = c.read_data(700);
    // Non-default channel state: nIEN, bus-master table pointer; the CD-ROM's tray is locked.
    rig.ch(1).bm_table(0x8000);
    rig.ch(1).control(0x02);
    let cdh = rig.handle.cdrom(1, 0).unwrap();
    // PREVENT ALLOW MEDIUM REMOVAL through a packet.
    let ch1 = rig.ch(1);
    ch1.select(0);
    ch1.set(reg::ERROR_FEATURES, 0);
    ch1.set(reg::LBA_MID, 0);
    ch1.set(reg::LBA_HIGH, 0x10);
    ch1.command(cmd::PACKET);
    ch1.write_data(&[0x1e, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0]);
    assert!(cdh.locked());

    let fresh = disk_and_cd(&disk, &cd);
    transfer(&rig, &fresh);

    let expected: Vec<u8> = image(SECTORS, 512)[10 * 512..16 * 512].to_vec();
    let rest_original = rig.ch(0).read_data(6 * 512 - 700);
    let rest_restored = fresh.ch(0).read_data(6 * 512 - 700);
    assert_eq!(rest_restored, rest_original);
    assert_eq!([first, rest_restored].concat(), expected);
    assert_eq!(fresh.ch(0).status(), rig.ch(0).status());
    assert!(fresh.handle.cdrom(1, 0).unwrap().locked(), "the tray lock survives");
    assert_eq!(fresh.inb(BM_BASE + 8 + 5), 0x80, "PRD table pointer survives");
    assert!(!fresh.ch(1).irq(), "nIEN keeps INTRQ off the line");
    // The guest still cannot eject a locked tray after the restore.
    assert_eq!(fresh.handle.cdrom(1, 0).unwrap().eject(false), Err(MediaError::Locked));
}

#[test]
fn a_command_waiting_for_the_bus_master_runs_after_restore() {
    let disk = Arc::new(MemoryBackend::new(image(SECTORS, 512), false));
    let cd = Arc::new(MemoryBackend::new(vec![0; 2048], true));
    let rig = disk_and_cd(&disk, &cd);
    let c = rig.ch(0);
    c.lba28(3, 2);
    c.command(cmd::READ_DMA);
    let fresh = disk_and_cd(&disk, &cd);
    transfer(&rig, &fresh);
    fresh.write_prds(PRD_TABLE, &[(0x2000, 1024, true)]);
    let f = fresh.ch(0);
    f.bm_table(PRD_TABLE);
    f.bm_start(true);
    assert!(f.irq(), "completion interrupt");
    assert_eq!(fresh.read_mem(0x2000, 1024), image(SECTORS, 512)[3 * 512..5 * 512].to_vec());
    assert_eq!(f.status() & 0x89, 0, "not busy, no DRQ, no error");
}

#[test]
fn a_restored_bar4_is_remapped_on_the_bus() {
    let disk = Arc::new(MemoryBackend::new(image(SECTORS, 512), false));
    let cd = Arc::new(MemoryBackend::new(vec![0; 2048], true));
    let rig = disk_and_cd(&disk, &cd);
    rig.ch(1).bm_table(0x1234_5678);
    rig.bus.pci_config_write(PIIX3_IDE_ADDRESS, 0x20, &0xd001u32.to_le_bytes());
    let fresh = disk_and_cd(&disk, &cd);
    let changes = Arc::new(Mutex::new(Vec::new()));
    let log = changes.clone();
    fresh
        .bus
        .add_bar_listener(Box::new(move |c| log.lock().unwrap().push((c.old.map(|b| b.base), c.new.map(|b| b.base)))));
    transfer(&rig, &fresh);
    assert_eq!(fresh.inb(0xd000 + 8 + 4), 0x78, "BAR4 decodes at its restored address");
    assert_eq!(fresh.inb(BM_BASE + 8 + 4), 0xff, "and no longer at the fresh machine's");
    assert_eq!(
        *changes.lock().unwrap(),
        vec![(Some(BM_BASE as u64), None), (None, Some(0xd000))],
        "listeners heard the move"
    );
    assert!(fresh.bus.resync_bars().is_empty(), "a second resync has nothing to do");
}

#[test]
fn an_unplugged_disk_is_unplugged_on_the_restoring_side() {
    let disk = Arc::new(MemoryBackend::new(image(SECTORS, 512), false));
    let cd = Arc::new(MemoryBackend::new(vec![0; 2048], true));
    let rig = disk_and_cd(&disk, &cd);
    rig.handle.unplug_disks(false);
    let fresh = disk_and_cd(&disk, &cd);
    transfer(&rig, &fresh);
    assert_eq!(fresh.handle.query().len(), 1, "only the CD-ROM is left");
    // The other way round is a different machine: refused, and the device is unchanged.
    let saved = save_to_vec(&*fresh.ide.lock().unwrap());
    let with_disk = disk_and_cd(&disk, &cd);
    let no_cd = Rig::with_disk(disk.clone());
    let err = restore_from(&mut *no_cd.ide.lock().unwrap(), Piix3Ide::VERSION, &saved).unwrap_err();
    assert!(err.to_string().contains("drive.kind"), "{err}");
    let _ = with_disk;
}

#[test]
fn hostile_controller_states_are_refused_without_panic() {
    let disk = Arc::new(MemoryBackend::new(image(SECTORS, 512), false));
    let cd = Arc::new(MemoryBackend::new(vec![7; 2048 * 8], true));
    let rig = disk_and_cd(&disk, &cd);
    rig.ch(0).lba28(1, 3);
    rig.ch(0).command(cmd::READ_SECTORS);
    rig.ch(0).read_data(100);
    let valid = save_to_vec(&*rig.ide.lock().unwrap());
    hostile_payloads(
        || {
            Piix3Ide::new(
                [
                    [Some(IdeDriveConfig::disk(disk.clone())), None],
                    [
                        Some(IdeDriveConfig::cdrom(Some(cd.clone() as Arc<dyn crate::storage::block::BlockBackend>))),
                        None,
                    ],
                ],
                Arc::new(TestMemory::new(MEM_SIZE)),
                [Arc::new(RecordingLine::default()), Arc::new(RecordingLine::default())],
            )
            .unwrap()
        },
        &valid,
    );
}
