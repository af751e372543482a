//! Bus-master IDE (SFF-8038i revision 1.0): the per-channel command, status and descriptor
//! table pointer registers, and the walk of the guest's Physical Region Descriptor table.
//!
//! Every transfer walks the table from the pointer register when it starts (on the thread that
//! wrote Start); the data then moves as one scatter list, possibly on an I/O worker. Each 8-byte PRD is read from guest
//! memory once into a host copy; the walk stops at the transfer length, at the EOT entry, or at
//! the 64 KiB boundary the table may not cross (section 2.1.1), so it is bounded by 8192 entries
//! whatever the guest wrote. A table that ends before the transfer does, or that lies in or
//! points at memory that is not RAM, ends the transfer with the Error bit set.

use crate::memory::GuestMemory;

/// Register offsets inside a channel's 8-byte block of BAR4 (section 3.1).
pub mod regs {
    pub const COMMAND: u64 = 0;
    pub const STATUS: u64 = 2;
    pub const PRD_TABLE: u64 = 4;
    /// Bytes per channel; the secondary channel's block follows the primary's.
    pub const CHANNEL_LEN: u64 = 8;
}

/// Bus Master IDE Command register bits (section 3.1.1).
pub mod command {
    pub const START: u8 = 0x01;
    /// 1 = the bus master writes memory (a device-to-host "read" command).
    pub const WRITE_TO_MEMORY: u8 = 0x08;
    pub const MASK: u8 = START | WRITE_TO_MEMORY;
}

/// Bus Master IDE Status register bits (section 3.1.2).
pub mod status {
    pub const ACTIVE: u8 = 0x01;
    pub const ERROR: u8 = 0x02;
    pub const INTERRUPT: u8 = 0x04;
    pub const DRIVE0_DMA_CAPABLE: u8 = 0x20;
    pub const DRIVE1_DMA_CAPABLE: u8 = 0x40;
    /// Simplex only; 0 on PIIX3 (both channels may master at once).
    pub const SIMPLEX: u8 = 0x80;
    pub const WRITE_ONE_TO_CLEAR: u8 = ERROR | INTERRUPT;
    pub const READ_WRITE: u8 = DRIVE0_DMA_CAPABLE | DRIVE1_DMA_CAPABLE;
}

/// Size of one PRD (section 2.1.1, figure 2).
const PRD_SIZE: u64 = 8;
/// The PRD table may not cross a 64 KiB boundary (section 2.1.1).
const TABLE_ALIGN: u64 = 0x1_0000;
/// A byte count of 0 means 64 KiB (section 2.1.1).
const MAX_REGION: u64 = 0x1_0000;

/// Why a bus-master transfer stopped early.
#[derive(Debug, PartialEq, Eq)]
pub enum DmaFault<E> {
    /// The table ended (EOT, or the 64 KiB boundary without EOT) before the transfer did.
    TableTooShort,
    /// The table, or a region it describes, is not guest RAM.
    NotRam { gpa: u64 },
    /// The device side failed (a backend I/O error).
    Device(E),
}

/// The (guest address, bytes) pairs a transfer uses, and whether it uses up the table exactly.
pub type Regions = (Vec<(u64, usize)>, bool);

/// One channel's bus-master registers.
#[derive(Clone, Debug, Default)]
pub struct BusMaster {
    pub(super) command: u8,
    pub(super) status: u8,
    pub(super) prd_table: u32,
}

/// What a write to the command register did to the engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EngineChange {
    None,
    Started,
    Stopped,
}

impl BusMaster {
    /// Reads one byte of the channel's register block.
    pub fn read(&self, offset: u64) -> u8 {
        match offset {
            regs::COMMAND => self.command,
            regs::STATUS => self.status,
            4..=7 => (self.prd_table >> (8 * (offset - regs::PRD_TABLE))) as u8,
            _ => 0,
        }
    }

    /// Writes one byte of the channel's register block.
    pub fn write(&mut self, offset: u64, value: u8) -> EngineChange {
        match offset {
            regs::COMMAND => {
                let was = self.command & command::START != 0;
                let now = value & command::START != 0;
                self.command = value & command::MASK;
                match (was, now) {
                    // Section 3.1.1: setting Start arms the engine and sets Active.
                    (false, true) => {
                        self.status |= status::ACTIVE;
                        EngineChange::Started
                    }
                    // Clearing Start halts the engine; any transfer state is lost.
                    (true, false) => {
                        self.status &= !status::ACTIVE;
                        EngineChange::Stopped
                    }
                    _ => EngineChange::None,
                }
            }
            regs::STATUS => {
                let kept = self.status & !(status::READ_WRITE | (value & status::WRITE_ONE_TO_CLEAR));
                self.status = kept | (value & status::READ_WRITE);
                EngineChange::None
            }
            4..=7 => {
                let shift = 8 * (offset - regs::PRD_TABLE);
                let v = (self.prd_table & !(0xff << shift)) | (u32::from(value) << shift);
                // Bits 1:0 are reserved: the table is DWORD aligned.
                self.prd_table = v & !3;
                EngineChange::None
            }
            _ => EngineChange::None,
        }
    }

    /// Whether the engine is armed for a transfer (Start set, not yet finished).
    pub fn active(&self) -> bool {
        self.status & status::ACTIVE != 0
    }

    pub fn status(&self) -> u8 {
        self.status
    }

    /// The channel's device asserted INTRQ (section 3.1.2, Interrupt bit).
    pub fn set_interrupt(&mut self) {
        self.status |= status::INTERRUPT;
    }

    pub fn reset(&mut self) {
        *self = BusMaster::default();
    }

    /// Fetches the PRDs that cover `len` bytes: (guest address, bytes) pairs, and whether the
    /// transfer uses up the table exactly (the last region used is the EOT one, used in full).
    pub fn regions<E>(&self, mem: &dyn GuestMemory, len: u64) -> Result<Regions, DmaFault<E>> {
        let base = u64::from(self.prd_table);
        let entries = (TABLE_ALIGN - (base % TABLE_ALIGN)) / PRD_SIZE;
        let mut out = Vec::new();
        let mut need = len;
        for i in 0..entries {
            let gpa = base + i * PRD_SIZE;
            let mut prd = [0u8; PRD_SIZE as usize];
            mem.read(gpa, &mut prd).map_err(|_| DmaFault::NotRam { gpa })?;
            // Bit 0 of the address and of the count are reserved zero (section 2.1.1).
            let addr = u64::from(u32::from_le_bytes([prd[0], prd[1], prd[2], prd[3]]) & !1);
            let count = match u16::from_le_bytes([prd[4], prd[5]]) & !1 {
                0 => MAX_REGION,
                n => u64::from(n),
            };
            let eot = prd[7] & 0x80 != 0;
            let take = count.min(need);
            // take <= 64 KiB: fits usize.
            out.push((addr, take as usize));
            need -= take;
            if need == 0 {
                return Ok((out, eot && take == count));
            }
            if eot {
                break;
            }
        }
        Err(DmaFault::TableTooShort)
    }

    /// Updates the status register as the engine does when a transfer ends: Active clears when
    /// the table was used up (`exhausted`) or on any fault; Error is set when the table or guest
    /// memory was at fault. The caller raises the device interrupt (which sets Interrupt).
    pub fn finish<E>(&mut self, result: &Result<(), DmaFault<E>>, exhausted: bool) {
        match result {
            Ok(()) if exhausted => self.status &= !status::ACTIVE,
            // Section 3.1.2: Interrupt=1, Active=1 is the normal end of a transfer smaller
            // than the table; the driver then clears Start.
            Ok(()) => {}
            Err(DmaFault::Device(_)) => self.status &= !status::ACTIVE,
            Err(_) => self.status = (self.status & !status::ACTIVE) | status::ERROR,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::TestMemory;

    fn prd(mem: &TestMemory, at: u64, addr: u32, count: u16, eot: bool) {
        let mut e = [0u8; 8];
        e[..4].copy_from_slice(&addr.to_le_bytes());
        e[4..6].copy_from_slice(&count.to_le_bytes());
        e[7] = if eot { 0x80 } else { 0 };
        mem.write(at, &e).unwrap();
    }

    fn engine(table: u32) -> BusMaster {
        let mut bm = BusMaster::default();
        for (i, b) in table.to_le_bytes().iter().enumerate() {
            bm.write(regs::PRD_TABLE + i as u64, *b);
        }
        assert_eq!(bm.write(regs::COMMAND, command::START | command::WRITE_TO_MEMORY), EngineChange::Started);
        bm
    }

    #[test]
    fn the_walk_cuts_the_table_to_the_transfer_and_reports_exhaustion() {
        let mem = TestMemory::new(0x30000);
        prd(&mem, 0x1000, 0x8001, 7, false); // reserved bit 0 of address and count ignored
        prd(&mem, 0x1008, 0x9000, 0, true); // 0 = 64 KiB
        let mut bm = engine(0x1000);
        let exact: Result<Regions, DmaFault<()>> = bm.regions(&mem, 6 + 0x10000);
        assert_eq!(exact, Ok((vec![(0x8000, 6), (0x9000, 0x10000)], true)));
        let short: Result<Regions, DmaFault<()>> = bm.regions(&mem, 512);
        assert_eq!(short, Ok((vec![(0x8000, 6), (0x9000, 506)], false)));
        bm.finish::<()>(&Ok(()), false);
        assert_eq!(bm.status() & status::ACTIVE, status::ACTIVE, "a larger table leaves Active set");
        bm.finish::<()>(&Ok(()), true);
        assert_eq!(bm.status() & (status::ACTIVE | status::ERROR), 0);
    }

    #[test]
    fn a_table_without_eot_stops_at_its_64k_boundary() {
        // The table starts 16 bytes below a 64 KiB boundary: two entries, no EOT, then the walk
        // must stop rather than read on into the next 64 KiB.
        let mem = TestMemory::new(0x30000);
        prd(&mem, 0xfff0, 0x2000, 2, false);
        prd(&mem, 0xfff8, 0x2000, 2, false);
        prd(&mem, 0x10000, 0x2000, 0, true);
        let mut bm = engine(0xfff0);
        let r: Result<Regions, DmaFault<()>> = bm.regions(&mem, 512);
        assert_eq!(r, Err(DmaFault::TableTooShort));
        bm.finish(&r.map(|_| ()), true);
        assert_eq!(bm.status() & (status::ACTIVE | status::ERROR), status::ERROR);
    }

    #[test]
    fn status_bits_are_write_one_to_clear_except_capability_bits() {
        let mut bm = engine(0);
        bm.set_interrupt();
        bm.status |= status::ERROR;
        bm.write(regs::STATUS, status::INTERRUPT | status::DRIVE0_DMA_CAPABLE | status::ACTIVE);
        assert_eq!(bm.status(), status::ACTIVE | status::ERROR | status::DRIVE0_DMA_CAPABLE);
        bm.write(regs::STATUS, status::ERROR);
        assert_eq!(bm.status(), status::ACTIVE);
        assert_eq!(bm.write(regs::COMMAND, 0), EngineChange::Stopped);
        assert_eq!(bm.status(), 0);
        bm.write(regs::PRD_TABLE, 0x13);
        assert_eq!(bm.read(regs::PRD_TABLE), 0x10);
    }
}
