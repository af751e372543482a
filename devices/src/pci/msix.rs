//! MSI-X capability, table and PBA (PCI 3.0 section 6.8.2).
//!
//! The capability structure lives in the function's [`ConfigSpace`]; the table and Pending Bit
//! Array live in memory BARs, and the device routes accesses there with
//! [`MsixCapability::bar_read`] / [`MsixCapability::bar_write`]. The device calls
//! [`MsixCapability::after_config_write`] after every guest configuration write so that the
//! Enable and Function Mask bits take effect (and pending messages go out when they allow it).

use std::sync::Arc;

use super::config::{BarKind, ConfigError, ConfigSpace};
use super::msi::MsiOutcome;
use crate::interrupt::MsiSink;

/// Capability ID of MSI-X (PCI 3.0 appendix H).
pub const MSIX_CAPABILITY_ID: u8 = 0x11;
/// Length of the capability structure (PCI 3.0 figure 6-10).
const CAPABILITY_LEN: u8 = 12;
/// The most vectors a function can have: Table Size is 11 bits, encoded as N-1.
pub const MSIX_MAX_VECTORS: u16 = 2048;
/// Bytes per table entry (PCI 3.0 figure 6-11).
pub const MSIX_ENTRY_SIZE: u64 = 16;

// Offsets inside the capability structure (PCI 3.0 section 6.8.2).
const MESSAGE_CONTROL: u8 = 0x02;
const TABLE_OFFSET_BIR: u8 = 0x04;
const PBA_OFFSET_BIR: u8 = 0x08;
// Message Control bits (section 6.8.2.3).
const CONTROL_FUNCTION_MASK: u16 = 1 << 14;
const CONTROL_ENABLE: u16 = 1 << 15;
// Vector Control bit 0: Mask Bit (section 6.8.2.9).
const VECTOR_CONTROL_MASK: u32 = 1;

/// Where a structure lives: BAR Indicator Register (0-5) and QWORD-aligned offset into that BAR.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MsixLocation {
    pub bar: u8,
    pub offset: u32,
}

#[derive(Clone, Copy, Debug)]
struct MsixEntry {
    address: u64,
    data: u32,
    masked: bool,
}

impl MsixEntry {
    /// After reset every entry is masked (section 6.8.2.9) and its message is zero.
    const RESET: MsixEntry = MsixEntry { address: 0, data: 0, masked: true };
}

/// MSI-X state of one function.
#[derive(Clone)]
pub struct MsixCapability {
    offset: u8,
    table: MsixLocation,
    pba: MsixLocation,
    entries: Vec<MsixEntry>,
    pending: Vec<u64>,
    enabled: bool,
    function_masked: bool,
    sink: Arc<dyn MsiSink>,
}

impl std::fmt::Debug for MsixCapability {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MsixCapability")
            .field("offset", &self.offset)
            .field("vectors", &self.entries.len())
            .field("table", &self.table)
            .field("pba", &self.pba)
            .field("enabled", &self.enabled)
            .field("function_masked", &self.function_masked)
            .finish()
    }
}

fn overlaps(a: u64, a_len: u64, b: u64, b_len: u64) -> bool {
    a < b + b_len && b < a + a_len
}

impl MsixCapability {
    /// Appends an MSI-X capability with `vectors` entries (1 to 2048) to `config`. The table and
    /// PBA must sit QWORD aligned inside memory BARs already declared on `config`, and must not
    /// overlap each other.
    pub fn new(
        config: &mut ConfigSpace,
        vectors: u16,
        table: MsixLocation,
        pba: MsixLocation,
        sink: Arc<dyn MsiSink>,
    ) -> Result<Self, ConfigError> {
        if vectors == 0 || vectors > MSIX_MAX_VECTORS {
            return Err(ConfigError::BadVectorCount(vectors));
        }
        let table_len = vectors as u64 * MSIX_ENTRY_SIZE;
        let pba_len = (vectors as u64).div_ceil(64) * 8;
        let fits = |loc: MsixLocation, len: u64| {
            // The low three bits of the offset register hold the BIR, so offsets are QWORD aligned.
            loc.offset & 7 == 0
                && matches!(config.bar(loc.bar), Some((kind, size))
                    if kind != BarKind::Io && loc.offset as u64 + len <= size)
        };
        if !fits(table, table_len) || !fits(pba, pba_len) {
            return Err(ConfigError::BadMsixLayout);
        }
        if table.bar == pba.bar && overlaps(table.offset as u64, table_len, pba.offset as u64, pba_len) {
            return Err(ConfigError::BadMsixLayout);
        }
        let offset = config.add_capability(MSIX_CAPABILITY_ID, CAPABILITY_LEN)?;
        config.set_u16(offset + MESSAGE_CONTROL, vectors - 1);
        config.set_writable_u16(offset + MESSAGE_CONTROL, CONTROL_FUNCTION_MASK | CONTROL_ENABLE);
        config.set_u32(offset + TABLE_OFFSET_BIR, table.offset | table.bar as u32);
        config.set_u32(offset + PBA_OFFSET_BIR, pba.offset | pba.bar as u32);
        Ok(MsixCapability {
            offset,
            table,
            pba,
            entries: vec![MsixEntry::RESET; vectors as usize],
            pending: vec![0; (vectors as usize).div_ceil(64)],
            enabled: false,
            function_masked: false,
            sink,
        })
    }

    /// Offset of the capability in configuration space.
    pub fn offset(&self) -> u8 {
        self.offset
    }
    pub fn vectors(&self) -> u16 {
        self.entries.len() as u16
    }
    pub fn table_location(&self) -> MsixLocation {
        self.table
    }
    pub fn pba_location(&self) -> MsixLocation {
        self.pba
    }
    /// MSI-X Enable as of the last [`MsixCapability::after_config_write`]. When clear the function
    /// uses INTx (section 6.8.2.3).
    pub fn enabled(&self) -> bool {
        self.enabled
    }
    pub fn function_masked(&self) -> bool {
        self.function_masked
    }
    /// The entry's own Mask Bit (not the function mask).
    pub fn is_masked(&self, vector: u16) -> bool {
        !matches!(self.entries.get(vector as usize), Some(e) if !e.masked)
    }
    pub fn is_pending(&self, vector: u16) -> bool {
        let v = vector as usize;
        self.pending.get(v / 64).is_some_and(|w| w & (1 << (v % 64)) != 0)
    }

    fn set_pending(&mut self, vector: usize, pending: bool) {
        if let Some(w) = self.pending.get_mut(vector / 64) {
            if pending {
                *w |= 1 << (vector % 64);
            } else {
                *w &= !(1 << (vector % 64));
            }
        }
    }

    /// Back to the reset state: all entries masked and zero, nothing pending, disabled. The
    /// configuration-space half is reset with the function's [`ConfigSpace`].
    pub fn reset(&mut self) {
        self.entries.fill(MsixEntry::RESET);
        self.pending.fill(0);
        self.enabled = false;
        self.function_masked = false;
    }

    /// Picks up Enable and Function Mask after a guest configuration write. When they now allow
    /// delivery, every pending message whose entry is unmasked goes out (section 6.8.2.3:
    /// clearing Function Mask releases pending messages).
    pub fn after_config_write(&mut self, config: &ConfigSpace) {
        let control = config.read_u16(self.offset + MESSAGE_CONTROL);
        self.enabled = control & CONTROL_ENABLE != 0;
        self.function_masked = control & CONTROL_FUNCTION_MASK != 0;
        self.deliver_pending();
    }

    fn deliverable(&self) -> bool {
        self.enabled && !self.function_masked
    }

    fn deliver_pending(&mut self) {
        if !self.deliverable() {
            return;
        }
        for word in 0..self.pending.len() {
            let mut bits = self.pending[word];
            while bits != 0 {
                let bit = bits.trailing_zeros() as usize;
                bits &= bits - 1;
                self.deliver_if_unmasked(word * 64 + bit);
            }
        }
    }

    /// An entry's Mask Bit, unless the platform masks the entry's message itself
    /// ([`MsiSink::masked_elsewhere`]).
    fn entry_masked(&self, entry: &MsixEntry) -> bool {
        entry.masked && !self.sink.masked_elsewhere(entry.address, entry.data)
    }

    fn deliver_if_unmasked(&mut self, vector: usize) {
        let Some(&entry) = self.entries.get(vector) else { return };
        if self.deliverable() && !self.entry_masked(&entry) && self.is_pending(vector as u16) {
            self.set_pending(vector, false);
            self.sink.send_msi(entry.address, entry.data);
        }
    }

    /// Signals `vector`. The message goes out only if MSI-X is enabled, the function is not masked
    /// and the entry is not masked; otherwise the vector's PBA bit is set and the message goes out
    /// when all three allow it (section 6.8.2.9 / 6.8.2.10). As in QEMU, a vector signalled while
    /// MSI-X is disabled is also held pending; the device should be using INTx then.
    pub fn fire(&mut self, vector: u16) -> MsiOutcome {
        let Some(&entry) = self.entries.get(vector as usize) else { return MsiOutcome::InvalidVector };
        if !self.deliverable() || self.entry_masked(&entry) {
            self.set_pending(vector as usize, true);
            return if self.enabled { MsiOutcome::Pending } else { MsiOutcome::Disabled };
        }
        self.sink.send_msi(entry.address, entry.data);
        MsiOutcome::Sent
    }

    fn table_range(&self) -> (u64, u64) {
        (self.table.offset as u64, self.entries.len() as u64 * MSIX_ENTRY_SIZE)
    }
    fn pba_range(&self) -> (u64, u64) {
        (self.pba.offset as u64, self.pending.len() as u64 * 8)
    }

    /// A guest read inside BAR `bar` at `offset`. Returns false when the access is not in the
    /// table or PBA (the device handles it itself).
    pub fn bar_read(&self, bar: u8, offset: u64, data: &mut [u8]) -> bool {
        let (t, t_len) = self.table_range();
        let (p, p_len) = self.pba_range();
        if bar == self.table.bar && offset >= t && offset - t < t_len {
            self.table_read(offset - t, data);
        } else if bar == self.pba.bar && offset >= p && offset - p < p_len {
            self.pba_read(offset - p, data);
        } else {
            return false;
        }
        true
    }

    /// A guest write inside BAR `bar` at `offset`. Returns false when the access is not in the
    /// table or PBA.
    pub fn bar_write(&mut self, bar: u8, offset: u64, data: &[u8]) -> bool {
        let (t, t_len) = self.table_range();
        let (p, p_len) = self.pba_range();
        if bar == self.table.bar && offset >= t && offset - t < t_len {
            self.table_write(offset - t, data);
        } else if bar == self.pba.bar && offset >= p && offset - p < p_len {
            // The PBA is read-only; software should never write it (section 6.8.2.10).
            crate::guest_warn!("MSI-X PBA write at {offset:#x} ignored");
        } else {
            return false;
        }
        true
    }

    /// Software must use aligned DWORD or QWORD accesses to the table and PBA (section 6.8.2);
    /// anything else reads as all ones and is not written.
    fn aligned(offset: u64, len: usize) -> bool {
        matches!(len, 4 | 8) && offset & (len as u64 - 1) == 0
    }

    fn entry_dword(&self, dword: u64) -> u32 {
        let Some(e) = self.entries.get((dword / 4) as usize) else { return u32::MAX };
        match dword % 4 {
            0 => e.address as u32,
            1 => (e.address >> 32) as u32,
            2 => e.data,
            _ => e.masked as u32 * VECTOR_CONTROL_MASK,
        }
    }

    /// Reads the table at `offset` from its start.
    pub fn table_read(&self, offset: u64, data: &mut [u8]) {
        if !Self::aligned(offset, data.len()) {
            data.fill(0xff);
            return;
        }
        for (i, chunk) in data.chunks_mut(4).enumerate() {
            chunk.copy_from_slice(&self.entry_dword(offset / 4 + i as u64).to_le_bytes());
        }
    }

    /// Writes the table at `offset` from its start. Clearing an entry's Mask Bit while its PBA
    /// bit is set sends the pending message (section 6.8.2.9).
    pub fn table_write(&mut self, offset: u64, data: &[u8]) {
        if !Self::aligned(offset, data.len()) {
            crate::guest_warn!("MSI-X table access of {} bytes at {offset:#x} ignored", data.len());
            return;
        }
        let index = (offset / MSIX_ENTRY_SIZE) as usize;
        let Some(entry) = self.entries.get_mut(index) else { return };
        for (i, chunk) in data.chunks(4).enumerate() {
            let v = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
            match (offset / 4 + i as u64) % 4 {
                // Message Address bits 1:0 are kept zero for DWORD alignment (section 6.8.2.6).
                0 => entry.address = (entry.address & !0xffff_ffff) | (v & !3) as u64,
                1 => entry.address = (entry.address & 0xffff_ffff) | (v as u64) << 32,
                2 => entry.data = v,
                // Bits 31:1 of Vector Control are reserved and read zero.
                _ => entry.masked = v & VECTOR_CONTROL_MASK != 0,
            }
        }
        self.deliver_if_unmasked(index);
    }

    /// Reads the Pending Bit Array at `offset` from its start.
    pub fn pba_read(&self, offset: u64, data: &mut [u8]) {
        if !Self::aligned(offset, data.len()) {
            data.fill(0xff);
            return;
        }
        let Some(&word) = self.pending.get((offset / 8) as usize) else {
            data.fill(0xff);
            return;
        };
        let bytes = word.to_le_bytes();
        let start = (offset % 8) as usize;
        data.copy_from_slice(&bytes[start..start + data.len()]);
    }
}

impl crate::snapshot::Snapshot for MsixCapability {
    const ID: &'static str = "msix";
    const VERSION: u16 = 1;

    /// Vector count, then each table entry (address, data, mask), the PBA, Enable and Function
    /// Mask (the table lives in device memory, not configuration space; QEMU `msix_save`).
    fn save(&self, w: &mut crate::snapshot::StateWriter) {
        w.u16(self.entries.len() as u16);
        for e in &self.entries {
            w.u64(e.address);
            w.u32(e.data);
            w.bool(e.masked);
        }
        for &p in &self.pending {
            w.u64(p);
        }
        w.bool(self.enabled);
        w.bool(self.function_masked);
    }

    fn restore(&mut self, r: &mut crate::snapshot::StateReader<'_>) -> Result<(), crate::snapshot::StateError> {
        let n = r.u16("vectors")?;
        if n as usize != self.entries.len() {
            return Err(r.invalid("vectors", format!("saved {n} vectors, this function has {}", self.entries.len())));
        }
        let mut entries = Vec::with_capacity(self.entries.len());
        for i in 0..self.entries.len() {
            let address = r.u64(&format!("entry[{i}].address"))?;
            if address & 3 != 0 {
                return Err(r.invalid(format!("entry[{i}].address"), "bits 1:0 must be zero (PCI 3.0 section 6.8.2.6)"));
            }
            let data = r.u32(&format!("entry[{i}].data"))?;
            let masked = r.bool(&format!("entry[{i}].masked"))?;
            entries.push(MsixEntry { address, data, masked });
        }
        let mut pending = Vec::with_capacity(self.pending.len());
        for i in 0..self.pending.len() {
            pending.push(r.u64(&format!("pba[{i}]"))?);
        }
        let tail_bits = self.entries.len() % 64;
        if let (Some(last), true) = (pending.last(), tail_bits != 0) {
            if last >> tail_bits != 0 {
                return Err(r.invalid("pba", "pending bits set for vectors the function does not have"));
            }
        }
        let enabled = r.bool("enabled")?;
        let function_masked = r.bool("function_masked")?;
        r.finish()?;
        self.entries = entries;
        self.pending = pending;
        self.enabled = enabled;
        self.function_masked = function_masked;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pci::config::PciIds;
    use crate::pci::msi::tests::RecordingSink;

    const TABLE_BAR: u8 = 1;

    /// A function with 3 vectors: table at BAR1+0, PBA at BAR1+0x800.
    fn setup(vectors: u16) -> (ConfigSpace, MsixCapability, Arc<RecordingSink>) {
        let mut c = ConfigSpace::new(PciIds { vendor_id: 0x1af4, device_id: 0x1041, ..Default::default() });
        c.declare_bar(TABLE_BAR, BarKind::Memory32 { prefetchable: false }, 0x1000).unwrap();
        let sink = Arc::new(RecordingSink::default());
        let msix = MsixCapability::new(
            &mut c,
            vectors,
            MsixLocation { bar: TABLE_BAR, offset: 0 },
            MsixLocation { bar: TABLE_BAR, offset: 0x800 },
            sink.clone(),
        )
        .unwrap();
        (c, msix, sink)
    }

    fn set_control(c: &mut ConfigSpace, m: &mut MsixCapability, control: u16) {
        c.write(m.offset() as u16 + 2, &control.to_le_bytes());
        m.after_config_write(c);
    }

    fn write32(m: &mut MsixCapability, off: u64, v: u32) {
        assert!(m.bar_write(TABLE_BAR, off, &v.to_le_bytes()));
    }

    fn read32(m: &MsixCapability, off: u64) -> u32 {
        let mut d = [0u8; 4];
        assert!(m.bar_read(TABLE_BAR, off, &mut d));
        u32::from_le_bytes(d)
    }

    fn pba(m: &MsixCapability) -> u64 {
        let mut d = [0u8; 8];
        assert!(m.bar_read(TABLE_BAR, 0x800, &mut d));
        u64::from_le_bytes(d)
    }

    /// Programs entry `n` the way a driver does: address, data, then unmask.
    fn program(m: &mut MsixCapability, n: u64, address: u64, data: u32) {
        m.bar_write(TABLE_BAR, n * 16, &address.to_le_bytes());
        write32(m, n * 16 + 8, data);
        write32(m, n * 16 + 12, 0);
    }

    #[test]
    fn capability_structure_describes_table_and_pba() {
        let (c, m, _) = setup(3);
        assert_eq!(c.capabilities(), vec![(MSIX_CAPABILITY_ID, m.offset())]);
        assert_eq!(c.read_u16(m.offset() + 2), 2, "Table Size is N-1");
        assert_eq!(c.read_u32(m.offset() + 4), TABLE_BAR as u32);
        assert_eq!(c.read_u32(m.offset() + 8), 0x800 | TABLE_BAR as u32);
        // Table Size and the offsets are read-only.
        let mut c = c;
        c.write(m.offset() as u16 + 4, &0u32.to_le_bytes());
        c.write(m.offset() as u16 + 2, &0x07ffu16.to_le_bytes());
        assert_eq!(c.read_u32(m.offset() + 4), TABLE_BAR as u32);
        assert_eq!(c.read_u16(m.offset() + 2), 2);
    }

    #[test]
    fn entries_start_masked_and_the_table_reads_back_what_was_written() {
        let (_, mut m, _) = setup(3);
        for n in 0..3 {
            assert_eq!(read32(&m, n * 16 + 12), 1);
        }
        program(&mut m, 1, 0x1_fee0_1003, 0x4031);
        assert_eq!(read32(&m, 16), 0xfee0_1000, "address bits 1:0 read zero");
        assert_eq!(read32(&m, 20), 1);
        assert_eq!(read32(&m, 24), 0x4031);
        assert_eq!(read32(&m, 28), 0);
        let mut q = [0u8; 8];
        m.bar_read(TABLE_BAR, 16, &mut q);
        assert_eq!(u64::from_le_bytes(q), 0x1_fee0_1000);
        // Byte, word and misaligned accesses are not honoured.
        m.bar_write(TABLE_BAR, 28, &[1]);
        m.bar_write(TABLE_BAR, 26, &[1, 0, 0, 0]);
        assert_eq!(read32(&m, 28), 0);
        let mut b = [0u8; 2];
        m.bar_read(TABLE_BAR, 16, &mut b);
        assert_eq!(b, [0xff; 2]);
        // Outside the table and PBA is the device's business.
        assert!(!m.bar_read(TABLE_BAR, 0x400, &mut [0u8; 4]));
        assert!(!m.bar_read(0, 0, &mut [0u8; 4]));
    }

    #[test]
    fn message_goes_out_only_when_enabled_and_unmasked() {
        let (mut c, mut m, sink) = setup(3);
        program(&mut m, 0, 0xfee0_0000, 0x41);
        assert_eq!(m.fire(0), MsiOutcome::Disabled);
        assert!(sink.take().is_empty());
        // Enabling releases the message held while disabled, as QEMU does.
        set_control(&mut c, &mut m, CONTROL_ENABLE);
        assert_eq!(sink.take(), vec![(0xfee0_0000, 0x41)]);
        assert_eq!(m.fire(0), MsiOutcome::Sent);
        assert_eq!(sink.take(), vec![(0xfee0_0000, 0x41)]);
        assert_eq!(m.fire(3), MsiOutcome::InvalidVector);
    }

    #[test]
    fn entry_mask_holds_the_message_in_the_pba_until_unmasked() {
        let (mut c, mut m, sink) = setup(3);
        set_control(&mut c, &mut m, CONTROL_ENABLE);
        program(&mut m, 2, 0xfee0_2000, 0x52);
        write32(&mut m, 2 * 16 + 12, 1);
        assert_eq!(m.fire(2), MsiOutcome::Pending);
        assert!(sink.take().is_empty());
        assert_eq!(pba(&m), 0b100);
        // The PBA is read-only to the guest.
        m.bar_write(TABLE_BAR, 0x800, &0u64.to_le_bytes());
        assert_eq!(pba(&m), 0b100);
        // Rewriting the data while masked is honoured when the message finally goes out.
        write32(&mut m, 2 * 16 + 8, 0x53);
        write32(&mut m, 2 * 16 + 12, 0);
        assert_eq!(sink.take(), vec![(0xfee0_2000, 0x53)]);
        assert_eq!(pba(&m), 0);
        write32(&mut m, 2 * 16 + 12, 0);
        assert!(sink.take().is_empty(), "a message is delivered once");
    }

    #[test]
    fn function_mask_holds_every_vector_until_cleared() {
        let (mut c, mut m, sink) = setup(3);
        program(&mut m, 0, 0xfee0_0000, 0x40);
        program(&mut m, 1, 0xfee0_1000, 0x41);
        set_control(&mut c, &mut m, CONTROL_ENABLE | CONTROL_FUNCTION_MASK);
        assert_eq!(m.fire(0), MsiOutcome::Pending);
        assert_eq!(m.fire(1), MsiOutcome::Pending);
        assert_eq!(pba(&m), 0b11);
        assert!(sink.take().is_empty());
        // Mask entry 1 and clear the function mask: only entry 0 goes out.
        write32(&mut m, 16 + 12, 1);
        set_control(&mut c, &mut m, CONTROL_ENABLE);
        assert_eq!(sink.take(), vec![(0xfee0_0000, 0x40)]);
        assert_eq!(pba(&m), 0b10);
        write32(&mut m, 16 + 12, 0);
        assert_eq!(sink.take(), vec![(0xfee0_1000, 0x41)]);
        assert_eq!(pba(&m), 0);
    }

    #[test]
    fn large_tables_have_a_pba_word_per_64_vectors() {
        let mut c = ConfigSpace::new(PciIds::default());
        c.declare_bar(0, BarKind::Memory64 { prefetchable: false }, 0x4000).unwrap();
        let sink = Arc::new(RecordingSink::default());
        let mut m = MsixCapability::new(
            &mut c,
            100,
            MsixLocation { bar: 0, offset: 0 },
            MsixLocation { bar: 0, offset: 0x2000 },
            sink.clone(),
        )
        .unwrap();
        m.fire(99);
        let mut d = [0u8; 4];
        assert!(m.bar_read(0, 0x2008 + 4, &mut d));
        assert_eq!(u32::from_le_bytes(d), 1 << (99 - 64 - 32));
        assert!(!m.bar_read(0, 0x2010, &mut d), "past the PBA");
    }

    #[test]
    fn bad_layouts_are_refused() {
        let mut c = ConfigSpace::new(PciIds::default());
        c.declare_bar(0, BarKind::Memory32 { prefetchable: false }, 0x1000).unwrap();
        c.declare_bar(1, BarKind::Io, 0x100).unwrap();
        let sink: Arc<dyn MsiSink> = Arc::new(RecordingSink::default());
        let loc = |bar, offset| MsixLocation { bar, offset };
        let mut try_new = |n, t, p| MsixCapability::new(&mut c, n, t, p, sink.clone()).map(|_| ());
        assert_eq!(try_new(0, loc(0, 0), loc(0, 0x800)), Err(ConfigError::BadVectorCount(0)));
        assert_eq!(try_new(2049, loc(0, 0), loc(0, 0x800)), Err(ConfigError::BadVectorCount(2049)));
        assert_eq!(try_new(4, loc(0, 0), loc(0, 0x38)), Err(ConfigError::BadMsixLayout), "overlap");
        assert_eq!(try_new(4, loc(0, 4), loc(0, 0x800)), Err(ConfigError::BadMsixLayout), "misaligned");
        assert_eq!(try_new(4, loc(1, 0), loc(0, 0x800)), Err(ConfigError::BadMsixLayout), "I/O BAR");
        assert_eq!(try_new(4, loc(2, 0), loc(0, 0x800)), Err(ConfigError::BadMsixLayout), "undeclared BAR");
        assert_eq!(try_new(4, loc(0, 0xfc8), loc(0, 0x800)), Err(ConfigError::BadMsixLayout), "past the BAR");
        assert_eq!(try_new(4, loc(0, 0), loc(0, 0x40)), Ok(()));
    }
}
