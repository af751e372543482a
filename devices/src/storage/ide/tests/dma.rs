//! Bus-master DMA for ATA commands, including hostile PRD tables (SFF-8038i; oracle: QEMU
//! tests/qtest/ide-test.c `test_bmdma_*`).

use std::sync::Arc;

use super::super::busmaster::status as bmis;
use super::super::spec::{cmd, error, status};
use super::{image, Rig, PRD_TABLE};
use crate::memory::GuestMemory;
use crate::storage::block::MemoryBackend;

fn disk(sectors: usize) -> (Rig, Arc<MemoryBackend>) {
    let backend = Arc::new(MemoryBackend::new(image(sectors, 512), false));
    (Rig::with_disk(backend.clone()), backend)
}

#[test]
fn read_dma_scatters_into_the_prd_regions() {
    let (rig, backend) = disk(64);
    let c = rig.ch(0);
    rig.write_prds(PRD_TABLE, &[(0x10000, 1024, false), (0x20000, 3 * 512, true)]);
    rig.mem.take_dirty_pages();
    c.bm_table(PRD_TABLE);
    c.lba28(4, 5);
    c.command(cmd::READ_DMA);
    assert!(!c.irq(), "nothing happens before the engine starts");
    assert_eq!(c.alt_status() & status::DRQ, status::DRQ);
    c.bm_start(true);
    assert!(c.irq());
    assert_eq!(
        c.bm_status() & (bmis::ACTIVE | bmis::ERROR | bmis::INTERRUPT),
        bmis::INTERRUPT,
        "table used up exactly"
    );
    assert_eq!(c.status(), status::READY);
    let disk = backend.contents();
    assert_eq!(rig.read_mem(0x10000, 1024), disk[4 * 512..6 * 512].to_vec());
    assert_eq!(rig.read_mem(0x20000, 1536), disk[6 * 512..9 * 512].to_vec());
    c.bm_stop();
    // Only the pages DMA wrote are dirty.
    assert_eq!(rig.mem.take_dirty_pages(), vec![0x10, 0x20]);
}

#[test]
fn engine_started_before_the_command_runs_it_at_once_and_larger_tables_stay_active() {
    let (rig, backend) = disk(64);
    let c = rig.ch(0);
    rig.write_prds(PRD_TABLE, &[(0x30000, 0, true)]); // 64 KiB region for a 2-sector read
    c.bm_table(PRD_TABLE);
    c.bm_start(true);
    c.lba48(10, 2);
    c.command(cmd::READ_DMA_EXT);
    assert!(c.irq());
    assert_eq!(c.bm_status() & (bmis::ACTIVE | bmis::INTERRUPT), bmis::ACTIVE | bmis::INTERRUPT);
    assert_eq!(rig.read_mem(0x30000, 1024), backend.contents()[10 * 512..12 * 512].to_vec());
    c.bm_stop();
    assert_eq!(c.bm_status() & bmis::ACTIVE, 0);
    c.bm_clear_status();
    assert_eq!(c.bm_status() & bmis::INTERRUPT, 0);
}

#[test]
fn write_dma_gathers_from_guest_memory() {
    let (rig, backend) = disk(64);
    let c = rig.ch(0);
    rig.mem.write(0x40000, &[0xaa; 512]).unwrap();
    rig.mem.write(0x50000, &[0xbb; 512]).unwrap();
    rig.write_prds(PRD_TABLE, &[(0x40000, 512, false), (0x50000, 512, true)]);
    c.bm_table(PRD_TABLE);
    c.lba28(30, 2);
    c.command(cmd::WRITE_DMA);
    c.bm_start(false);
    assert!(c.irq());
    assert_eq!(c.status(), status::READY);
    let d = backend.contents();
    assert_eq!(&d[30 * 512..31 * 512], &[0xaa; 512][..]);
    assert_eq!(&d[31 * 512..32 * 512], &[0xbb; 512][..]);
}

#[test]
fn dma_waits_for_pci_bus_master_enable() {
    let (rig, backend) = disk(16);
    let c = rig.ch(0);
    rig.bus.pci_config_write(super::PIIX3_IDE_ADDRESS, 0x04, &1u16.to_le_bytes()); // I/O only
    rig.write_prds(PRD_TABLE, &[(0x10000, 512, true)]);
    c.bm_table(PRD_TABLE);
    c.lba28(1, 1);
    c.command(cmd::READ_DMA);
    c.bm_start(true);
    assert!(!c.irq(), "no bus mastering without Bus Master Enable");
    rig.bus.pci_config_write(super::PIIX3_IDE_ADDRESS, 0x04, &5u16.to_le_bytes());
    assert!(c.irq());
    assert_eq!(rig.read_mem(0x10000, 512), backend.contents()[512..1024].to_vec());
}

/// Runs a 4-sector READ DMA against the table at `table` and returns (ATA status, error, BMIS).
fn read_with_table(rig: &Rig, table: u64) -> (u8, u8, u8) {
    let c = rig.ch(0);
    c.bm_clear_status();
    c.bm_table(table);
    c.lba28(0, 4);
    c.command(cmd::READ_DMA);
    c.bm_start(true);
    assert!(c.irq(), "a failed transfer still ends the command with an interrupt");
    let r = (c.status(), c.error(), c.bm_status());
    c.bm_stop();
    r
}

fn assert_dma_error((st, err, bm): (u8, u8, u8)) {
    assert_eq!(st, status::READY | status::ERR);
    assert_eq!(err, error::ABRT);
    assert_eq!(bm & (bmis::ACTIVE | bmis::ERROR), bmis::ERROR);
}

#[test]
fn a_table_shorter_than_the_transfer_ends_with_an_error() {
    let (rig, _) = disk(16);
    rig.write_prds(PRD_TABLE, &[(0x10000, 512, false), (0x11000, 512, true)]);
    assert_dma_error(read_with_table(&rig, PRD_TABLE));
}

#[test]
fn a_table_without_eot_ends_at_its_64k_boundary() {
    let (rig, _) = disk(1024);
    // 8192 two-byte regions fill the table's 64 KiB without an EOT and without covering a
    // 256-sector transfer: the walk must stop at the boundary.
    let entries: Vec<(u32, u16, bool)> = (0..8192).map(|_| (0x90000, 2, false)).collect();
    rig.write_prds(0x20000, &entries);
    let c = rig.ch(0);
    c.bm_table(0x20000);
    c.lba28(0, 0);
    c.command(cmd::READ_DMA);
    c.bm_start(true);
    assert!(c.irq());
    assert_dma_error((c.status(), c.error(), c.bm_status()));
}

#[test]
fn tables_and_regions_outside_ram_are_refused() {
    let (rig, backend) = disk(16);
    assert_dma_error(read_with_table(&rig, 0xfff0_0000));
    rig.write_prds(PRD_TABLE, &[(0xfee0_0000, 0, true)]);
    assert_dma_error(read_with_table(&rig, PRD_TABLE));
    // A region that starts in RAM and runs off its end.
    rig.write_prds(PRD_TABLE, &[(super::MEM_SIZE as u32 - 512, 2048, true)]);
    assert_dma_error(read_with_table(&rig, PRD_TABLE));
    // The same for a write: nothing reaches the disk from outside RAM.
    let before = backend.contents();
    rig.write_prds(PRD_TABLE, &[(0xfee0_0000, 2048, true)]);
    let c = rig.ch(0);
    c.bm_clear_status();
    c.lba28(0, 4);
    c.command(cmd::WRITE_DMA);
    c.bm_start(false);
    assert_dma_error((c.status(), c.error(), c.bm_status()));
    assert_eq!(backend.contents(), before);
    // The device recovers: a good transfer works afterwards.
    c.bm_stop();
    rig.write_prds(PRD_TABLE, &[(0x10000, 2048, true)]);
    let (st, _, bm) = read_with_table(&rig, PRD_TABLE);
    assert_eq!(st, status::READY);
    assert_eq!(bm & bmis::ERROR, 0);
}

#[test]
fn a_transfer_that_overwrites_its_own_table_follows_the_table_it_fetched() {
    let (rig, backend) = disk(16);
    // Region 1 is the table itself; the disk data written there must not redirect region 2.
    rig.write_prds(PRD_TABLE, &[(PRD_TABLE as u32, 512, false), (0x60000, 512, true)]);
    let (st, _, _) = read_with_table_len(&rig, 2);
    assert_eq!(st, status::READY);
    let d = backend.contents();
    assert_eq!(rig.read_mem(PRD_TABLE, 512), d[..512].to_vec());
    assert_eq!(rig.read_mem(0x60000, 512), d[512..1024].to_vec());
}

fn read_with_table_len(rig: &Rig, sectors: u8) -> (u8, u8, u8) {
    let c = rig.ch(0);
    c.bm_table(PRD_TABLE);
    c.lba28(0, sectors);
    c.command(cmd::READ_DMA);
    c.bm_start(true);
    let r = (c.status(), c.error(), c.bm_status());
    c.bm_stop();
    r
}

#[test]
fn commands_written_while_dma_is_pending_are_ignored_until_reset() {
    let (rig, _) = disk(16);
    let c = rig.ch(0);
    c.lba28(0, 1);
    c.command(cmd::READ_DMA);
    c.command(cmd::IDENTIFY_DEVICE);
    assert_eq!(c.alt_status(), status::READY | status::DRQ, "still waiting for the bus master");
    c.control(0x04);
    c.control(0x00);
    assert_eq!(c.status(), status::READY);
    c.command(cmd::IDENTIFY_DEVICE);
    assert_eq!(c.status(), status::READY | status::DRQ);
}

/// A 4-sector READ DMA at LBA 8 into 0x10000, started and held on the worker.
fn held_read(rig: &Rig) {
    rig.write_prds(PRD_TABLE, &[(0x10000, 2048, true)]);
    rig.mem.take_dirty_pages();
    let c = rig.ch(0);
    c.bm_table(PRD_TABLE);
    c.lba28(8, 4);
    c.command(cmd::READ_DMA);
    rig.hold.set(true);
    c.bm_start(true);
}

#[test]
fn the_start_write_returns_before_the_transfer_and_the_worker_completes_it() {
    let (rig, backend) = disk(64);
    let c = rig.ch(0);
    held_read(&rig);
    // In between: the engine is active, the drive still has DRQ, nothing reached memory.
    assert_eq!(rig.worker.pending(), 1, "the transfer is queued on the I/O worker");
    assert!(!c.irq());
    assert_eq!(c.bm_status() & (bmis::ACTIVE | bmis::INTERRUPT), bmis::ACTIVE);
    assert_eq!(c.alt_status(), status::READY | status::DRQ);
    assert_eq!(rig.read_mem(0x10000, 2048), vec![0; 2048]);
    assert!(rig.mem.take_dirty_pages().is_empty());
    assert_eq!(rig.worker.run_pending(), 1);
    assert!(c.irq(), "completion raises the interrupt from the worker");
    assert_eq!(c.bm_status() & (bmis::ACTIVE | bmis::INTERRUPT), bmis::INTERRUPT);
    assert_eq!(c.status(), status::READY);
    assert_eq!(rig.read_mem(0x10000, 2048), backend.contents()[8 * 512..12 * 512].to_vec());
    assert_eq!(rig.mem.take_dirty_pages(), vec![0x10]);
}

#[test]
fn stopping_the_engine_mid_transfer_finishes_it_before_the_write_returns() {
    let (rig, backend) = disk(64);
    let c = rig.ch(0);
    held_read(&rig);
    c.bm_stop();
    // The data is in place and the command complete once the stop returns; the queued job then
    // finds nothing to do.
    assert_eq!(rig.read_mem(0x10000, 2048), backend.contents()[8 * 512..12 * 512].to_vec());
    assert_eq!(c.alt_status(), status::READY);
    assert_eq!(c.bm_status() & bmis::ACTIVE, 0);
    assert_eq!(rig.worker.run_pending(), 1);
    assert!(c.irq());
    assert_eq!(c.irq_edges(), 1, "one completion, not two");
}

#[test]
fn a_reset_mid_transfer_cancels_it_before_it_touches_memory() {
    let (rig, _) = disk(64);
    let c = rig.ch(0);
    held_read(&rig);
    c.control(0x04);
    c.control(0x00);
    rig.worker.run_pending();
    assert_eq!(rig.read_mem(0x10000, 2048), vec![0; 2048], "a cancelled transfer moves nothing");
    assert!(rig.mem.take_dirty_pages().is_empty());
    assert!(!c.irq());
    assert_eq!(c.status(), status::READY);
    // The channel works again.
    rig.hold.set(false);
    c.bm_stop();
    c.bm_clear_status();
    let (st, _, bm) = read_with_table_len(&rig, 4);
    assert_eq!((st, bm & bmis::ERROR), (status::READY, 0));
}

#[test]
fn a_save_while_a_transfer_is_queued_drains_it_into_the_saved_state() {
    use crate::snapshot::{restore_from, save_to_vec, Snapshot};
    let (rig, backend) = disk(64);
    held_read(&rig);
    let saved = save_to_vec(&*rig.ide.lock().unwrap());
    // The saving side completed the command; so does the restored one, with the same status.
    let (to, _) = (Rig::with_disk(backend.clone()), ());
    restore_from(&mut *to.ide.lock().unwrap(), super::Piix3Ide::VERSION, &saved).unwrap();
    to.bus.resync_bars();
    for r in [&rig, &to] {
        let c = r.ch(0);
        assert!(c.irq());
        assert_eq!(c.bm_status() & (bmis::ACTIVE | bmis::INTERRUPT), bmis::INTERRUPT);
        assert_eq!(c.status(), status::READY);
    }
    assert_eq!(rig.read_mem(0x10000, 2048), backend.contents()[8 * 512..12 * 512].to_vec());
    assert_eq!(rig.worker.run_pending(), 1);
    assert_eq!(rig.ch(0).irq_edges(), 1);
}

#[test]
fn write_dma_completes_from_the_worker_and_reaches_the_disk_only_then() {
    let (rig, backend) = disk(64);
    let c = rig.ch(0);
    rig.mem.write(0x40000, &[0x77; 1024]).unwrap();
    rig.write_prds(PRD_TABLE, &[(0x40000, 1024, true)]);
    c.bm_table(PRD_TABLE);
    c.lba28(20, 2);
    c.command(cmd::WRITE_DMA);
    rig.hold.set(true);
    let before = backend.contents();
    c.bm_start(false);
    assert_eq!(backend.contents(), before, "nothing written before the worker runs");
    rig.worker.run_pending();
    assert!(c.irq());
    assert_eq!(&backend.contents()[20 * 512..22 * 512], &[0x77u8; 1024][..]);
}
