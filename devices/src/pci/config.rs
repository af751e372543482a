//! Type-0 configuration space (PCI 3.0 chapter 6): the 256-byte header and device-specific area of
//! one PCI function, with per-byte read-only / read-write / write-1-to-clear masks, BAR sizing,
//! the expansion ROM BAR and the capability list.
//!
//! The guest reaches this through [`ConfigSpace::read`] and [`ConfigSpace::write`], which apply the
//! masks. The device model itself uses the `set_*` methods, which ignore them (hardware-owned bits
//! such as the interrupt status or a capability's pending bits).

use super::{BarRegion, BarSpace};

/// Size of conventional PCI configuration space (PCI 3.0 section 6.1).
pub const CONFIG_SPACE_SIZE: usize = 256;

// Header offsets (PCI 3.0 figure 6-1).
pub const VENDOR_ID: u8 = 0x00;
pub const DEVICE_ID: u8 = 0x02;
pub const COMMAND: u8 = 0x04;
pub const STATUS: u8 = 0x06;
pub const REVISION_ID: u8 = 0x08;
pub const PROG_IF: u8 = 0x09;
pub const SUBCLASS: u8 = 0x0a;
pub const CLASS_CODE: u8 = 0x0b;
pub const CACHE_LINE_SIZE: u8 = 0x0c;
pub const LATENCY_TIMER: u8 = 0x0d;
pub const HEADER_TYPE: u8 = 0x0e;
pub const BAR0: u8 = 0x10;
pub const SUBSYSTEM_VENDOR_ID: u8 = 0x2c;
pub const SUBSYSTEM_ID: u8 = 0x2e;
pub const EXPANSION_ROM: u8 = 0x30;
pub const CAPABILITIES_POINTER: u8 = 0x34;
pub const INTERRUPT_LINE: u8 = 0x3c;
pub const INTERRUPT_PIN: u8 = 0x3d;
/// First byte after the predefined header; capabilities and device-specific registers live above.
pub const DEVICE_SPECIFIC: u8 = 0x40;

/// Header Type bit 7: the device has more than one function (PCI 3.0 section 6.2.1).
pub const HEADER_TYPE_MULTIFUNCTION: u8 = 0x80;

// Command register bits (PCI 3.0 section 6.2.2, figure 6-2).
pub const COMMAND_IO_SPACE: u16 = 1 << 0;
pub const COMMAND_MEMORY_SPACE: u16 = 1 << 1;
pub const COMMAND_BUS_MASTER: u16 = 1 << 2;
pub const COMMAND_PARITY_ERROR_RESPONSE: u16 = 1 << 6;
pub const COMMAND_SERR_ENABLE: u16 = 1 << 8;
pub const COMMAND_INTX_DISABLE: u16 = 1 << 10;
/// The command bits a function implements by default. Special Cycles, Memory Write and Invalidate,
/// VGA Palette Snoop and Fast Back-to-Back are optional and hardwired to 0 here; bit 7 is reserved.
const COMMAND_WRITABLE: u16 = COMMAND_IO_SPACE
    | COMMAND_MEMORY_SPACE
    | COMMAND_BUS_MASTER
    | COMMAND_PARITY_ERROR_RESPONSE
    | COMMAND_SERR_ENABLE
    | COMMAND_INTX_DISABLE;

// Status register bits (PCI 3.0 section 6.2.3, figure 6-3).
pub const STATUS_INTERRUPT: u16 = 1 << 3;
pub const STATUS_CAPABILITIES_LIST: u16 = 1 << 4;
pub const STATUS_MASTER_DATA_PARITY_ERROR: u16 = 1 << 8;
pub const STATUS_DEVSEL_MEDIUM: u16 = 1 << 9;
pub const STATUS_SIGNALED_TARGET_ABORT: u16 = 1 << 11;
pub const STATUS_RECEIVED_TARGET_ABORT: u16 = 1 << 12;
pub const STATUS_RECEIVED_MASTER_ABORT: u16 = 1 << 13;
pub const STATUS_SIGNALED_SYSTEM_ERROR: u16 = 1 << 14;
pub const STATUS_DETECTED_PARITY_ERROR: u16 = 1 << 15;
/// The error bits software clears by writing 1 (PCI 3.0 section 6.2.3: "writes can only reset bits").
const STATUS_WRITE_ONE_TO_CLEAR: u16 = STATUS_MASTER_DATA_PARITY_ERROR
    | STATUS_SIGNALED_TARGET_ABORT
    | STATUS_RECEIVED_TARGET_ABORT
    | STATUS_RECEIVED_MASTER_ABORT
    | STATUS_SIGNALED_SYSTEM_ERROR
    | STATUS_DETECTED_PARITY_ERROR;

/// Expansion ROM BAR bit 0: Address Decode Enable (PCI 3.0 section 6.2.5.2).
pub const ROM_ENABLE: u32 = 1;
/// BAR index used for the expansion ROM in [`BarRegion::index`].
pub const ROM_BAR_INDEX: u8 = 6;

/// Identity of a function, written once into the read-only header fields.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PciIds {
    pub vendor_id: u16,
    pub device_id: u16,
    pub revision_id: u8,
    /// Base class code (byte 0x0b).
    pub class: u8,
    /// Sub-class code (byte 0x0a).
    pub subclass: u8,
    /// Programming interface (byte 0x09).
    pub prog_if: u8,
    pub subsystem_vendor_id: u16,
    pub subsystem_id: u16,
    /// Sets Header Type bit 7; function 0 of a multi-function device must have it.
    pub multifunction: bool,
}

/// What a base address register decodes (PCI 3.0 section 6.2.5.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BarKind {
    /// I/O space; 4 to 256 bytes.
    Io,
    /// Memory anywhere in the 32-bit space (type 00).
    Memory32 { prefetchable: bool },
    /// Memory anywhere in the 64-bit space (type 10); uses this BAR and the next one.
    Memory64 { prefetchable: bool },
}

/// A mistake in how a device model declared its configuration space. These are programming errors
/// of the device model, never caused by the guest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigError {
    /// BAR index above 5, or a 64-bit BAR at index 5.
    BadBarIndex(u8),
    /// The BAR slot (or the upper slot of a 64-bit BAR) is already declared.
    BarInUse(u8),
    /// Not a power of two, or outside what the BAR kind can decode.
    BadBarSize(u64),
    /// The capability does not fit, is not DWORD aligned, is below 0x40 or overlaps another.
    BadCapability { offset: u8, len: u8 },
    /// The capability list is full (there is no room left in configuration space).
    NoCapabilitySpace,
    /// An MSI or MSI-X vector count the capability cannot express.
    BadVectorCount(u16),
    /// An MSI-X table or PBA that is misaligned, overlaps the other, or does not fit in its BAR.
    BadMsixLayout,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConfigError::BadBarIndex(i) => write!(f, "invalid BAR index {i}"),
            ConfigError::BarInUse(i) => write!(f, "BAR {i} already declared"),
            ConfigError::BadBarSize(s) => write!(f, "invalid BAR size {s:#x}"),
            ConfigError::BadCapability { offset, len } => write!(f, "invalid capability at {offset:#x}+{len:#x}"),
            ConfigError::NoCapabilitySpace => write!(f, "no room for another capability"),
            ConfigError::BadVectorCount(n) => write!(f, "invalid interrupt vector count {n}"),
            ConfigError::BadMsixLayout => write!(f, "invalid MSI-X table or PBA placement"),
        }
    }
}

impl std::error::Error for ConfigError {}

#[derive(Clone, Copy, Debug)]
struct Bar {
    kind: BarKind,
    size: u64,
}

/// Configuration space of one type-0 function.
#[derive(Clone)]
pub struct ConfigSpace {
    bytes: [u8; CONFIG_SPACE_SIZE],
    writable: [u8; CONFIG_SPACE_SIZE],
    write_one_to_clear: [u8; CONFIG_SPACE_SIZE],
    /// Read-only bits the device itself changes at run time (interrupt status, MSI pending bits):
    /// a restored state may differ from a fresh device there.
    hardware_owned: [u8; CONFIG_SPACE_SIZE],
    /// Declared BARs, indexed by their first slot; the upper slot of a 64-bit BAR stays `None`.
    bars: [Option<Bar>; 6],
    rom_size: Option<u64>,
    /// (offset, length) of each capability in list order.
    capabilities: Vec<(u8, u8)>,
}

impl std::fmt::Debug for ConfigSpace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfigSpace")
            .field("vendor_id", &self.read_u16(VENDOR_ID))
            .field("device_id", &self.read_u16(DEVICE_ID))
            .field("command", &self.command())
            .field("status", &self.status())
            .finish()
    }
}

/// Whether `len` bytes at `offset` are a naturally aligned 1, 2 or 4 byte access inside the space.
fn valid_access(offset: u16, len: usize) -> bool {
    matches!(len, 1 | 2 | 4) && offset as usize & (len - 1) == 0 && offset as usize + len <= CONFIG_SPACE_SIZE
}

impl ConfigSpace {
    /// A function with the given identity, all other registers at their reset value: command 0,
    /// no BARs, no capabilities, no interrupt pin.
    pub fn new(ids: PciIds) -> Self {
        let mut c = ConfigSpace {
            bytes: [0; CONFIG_SPACE_SIZE],
            writable: [0; CONFIG_SPACE_SIZE],
            write_one_to_clear: [0; CONFIG_SPACE_SIZE],
            hardware_owned: [0; CONFIG_SPACE_SIZE],
            bars: [None; 6],
            rom_size: None,
            capabilities: Vec::new(),
        };
        c.set_u16(VENDOR_ID, ids.vendor_id);
        c.set_u16(DEVICE_ID, ids.device_id);
        c.set_u8(REVISION_ID, ids.revision_id);
        c.set_u8(PROG_IF, ids.prog_if);
        c.set_u8(SUBCLASS, ids.subclass);
        c.set_u8(CLASS_CODE, ids.class);
        c.set_u8(HEADER_TYPE, if ids.multifunction { HEADER_TYPE_MULTIFUNCTION } else { 0 });
        c.set_u16(SUBSYSTEM_VENDOR_ID, ids.subsystem_vendor_id);
        c.set_u16(SUBSYSTEM_ID, ids.subsystem_id);
        c.set_writable_u16(COMMAND, COMMAND_WRITABLE);
        c.set_write_one_to_clear_u16(STATUS, STATUS_WRITE_ONE_TO_CLEAR);
        // Interrupt Status follows the function's INTx request (device-owned, read-only).
        c.set_hardware_owned_u32(COMMAND, (STATUS_INTERRUPT as u32) << 16);
        // Cache Line Size is read/write (PCI 3.0 section 6.2.4); devices that do not use it may
        // hardwire it, but firmware writes it and reads it back, so keep it as storage.
        c.writable[CACHE_LINE_SIZE as usize] = 0xff;
        // Interrupt Line is read/write storage for the OS (PCI 3.0 section 6.2.4).
        c.writable[INTERRUPT_LINE as usize] = 0xff;
        c
    }

    // ---- guest accesses ----

    /// A guest read. Misaligned, oversized or out-of-range accesses read all ones.
    pub fn read(&self, offset: u16, data: &mut [u8]) {
        if !valid_access(offset, data.len()) {
            data.fill(0xff);
            return;
        }
        let o = offset as usize;
        data.copy_from_slice(&self.bytes[o..o + data.len()]);
    }

    /// A guest write: read-only bits keep their value and write-1-to-clear bits clear where the
    /// guest wrote 1. Misaligned, oversized or out-of-range accesses are dropped.
    pub fn write(&mut self, offset: u16, data: &[u8]) {
        if !valid_access(offset, data.len()) {
            return;
        }
        for (i, &v) in data.iter().enumerate() {
            let o = offset as usize + i;
            let w = self.writable[o];
            let mut b = (self.bytes[o] & !w) | (v & w);
            b &= !(v & self.write_one_to_clear[o]);
            self.bytes[o] = b;
        }
    }

    // ---- device-side register access (masks do not apply) ----

    fn get<const N: usize>(&self, offset: u8) -> Option<[u8; N]> {
        let o = offset as usize;
        self.bytes.get(o..o + N).map(|s| s.try_into().unwrap_or([0; N]))
    }

    fn put(&mut self, offset: u8, v: &[u8]) {
        let o = offset as usize;
        if let Some(dst) = self.bytes.get_mut(o..o + v.len()) {
            dst.copy_from_slice(v);
        }
    }

    /// Reads a byte (device side).
    pub fn read_u8(&self, offset: u8) -> u8 {
        self.bytes[offset as usize]
    }
    /// Reads a little-endian word; a word running past the end reads all ones.
    pub fn read_u16(&self, offset: u8) -> u16 {
        self.get::<2>(offset).map_or(u16::MAX, u16::from_le_bytes)
    }
    /// Reads a little-endian dword; a dword running past the end reads all ones.
    pub fn read_u32(&self, offset: u8) -> u32 {
        self.get::<4>(offset).map_or(u32::MAX, u32::from_le_bytes)
    }
    /// Sets a byte regardless of the write masks (hardware-owned state).
    pub fn set_u8(&mut self, offset: u8, v: u8) {
        self.put(offset, &[v]);
    }
    pub fn set_u16(&mut self, offset: u8, v: u16) {
        self.put(offset, &v.to_le_bytes());
    }
    pub fn set_u32(&mut self, offset: u8, v: u32) {
        self.put(offset, &v.to_le_bytes());
    }

    /// Makes the bits set in `mask` guest-writable (and all others at this byte read-only).
    pub fn set_writable_u8(&mut self, offset: u8, mask: u8) {
        self.writable[offset as usize] = mask;
    }
    pub fn set_writable_u16(&mut self, offset: u8, mask: u16) {
        self.set_mask(offset, &mask.to_le_bytes(), false);
    }
    pub fn set_writable_u32(&mut self, offset: u8, mask: u32) {
        self.set_mask(offset, &mask.to_le_bytes(), false);
    }
    /// Makes the bits set in `mask` write-1-to-clear.
    pub fn set_write_one_to_clear_u16(&mut self, offset: u8, mask: u16) {
        self.set_mask(offset, &mask.to_le_bytes(), true);
    }
    pub fn set_write_one_to_clear_u32(&mut self, offset: u8, mask: u32) {
        self.set_mask(offset, &mask.to_le_bytes(), true);
    }

    /// Marks read-only bits of the 4 bytes at `offset` that the device changes itself, so a
    /// restored state may differ there from a fresh device (see [`ConfigSpace::load_state`]).
    pub fn set_hardware_owned_u32(&mut self, offset: u8, mask: u32) {
        let o = offset as usize;
        if let Some(dst) = self.hardware_owned.get_mut(o..o + 4) {
            dst.copy_from_slice(&mask.to_le_bytes());
        }
    }

    fn set_mask(&mut self, offset: u8, mask: &[u8], w1c: bool) {
        let o = offset as usize;
        let target = if w1c { &mut self.write_one_to_clear } else { &mut self.writable };
        if let Some(dst) = target.get_mut(o..o + mask.len()) {
            dst.copy_from_slice(mask);
        }
    }

    // ---- command, status, interrupt ----

    pub fn command(&self) -> u16 {
        self.read_u16(COMMAND)
    }
    pub fn io_space_enabled(&self) -> bool {
        self.command() & COMMAND_IO_SPACE != 0
    }
    pub fn memory_space_enabled(&self) -> bool {
        self.command() & COMMAND_MEMORY_SPACE != 0
    }
    /// Whether the function may master the bus (DMA, and MSI writes: PCI 3.0 section 6.8.1.3).
    pub fn bus_master_enabled(&self) -> bool {
        self.command() & COMMAND_BUS_MASTER != 0
    }
    /// Interrupt Disable: the function must not assert INTx (PCI 3.0 section 6.2.2).
    pub fn intx_disabled(&self) -> bool {
        self.command() & COMMAND_INTX_DISABLE != 0
    }

    pub fn status(&self) -> u16 {
        self.read_u16(STATUS)
    }
    /// The device reports an error (sets RW1C status bits the guest will clear).
    pub fn set_status_bits(&mut self, bits: u16) {
        let s = self.status() | bits;
        self.set_u16(STATUS, s);
    }
    /// Status bit 3, Interrupt Status: mirrors the function's INTx request whether or not Interrupt
    /// Disable masks it (PCI 3.0 section 6.2.3).
    pub fn set_interrupt_status(&mut self, pending: bool) {
        let s = self.status();
        self.set_u16(STATUS, if pending { s | STATUS_INTERRUPT } else { s & !STATUS_INTERRUPT });
    }

    /// Interrupt Pin: 0 for none, 1-4 for INTA#-INTD# (read-only to the guest).
    pub fn set_interrupt_pin(&mut self, pin: u8) {
        self.set_u8(INTERRUPT_PIN, if pin <= 4 { pin } else { 0 });
    }
    pub fn interrupt_pin(&self) -> u8 {
        self.read_u8(INTERRUPT_PIN)
    }
    pub fn interrupt_line(&self) -> u8 {
        self.read_u8(INTERRUPT_LINE)
    }

    // ---- BARs ----

    /// Declares BAR `index` (0-5) of `size` bytes, a power of two. I/O BARs are 4 to 256 bytes
    /// (PCI 3.0 section 6.2.5.1); memory BARs at least 16 bytes. The BAR's address bits below
    /// `size` read as zero, the type bits are read-only, so writing all ones and reading back
    /// yields the size mask (the sizing protocol of section 6.2.5.1).
    pub fn declare_bar(&mut self, index: u8, kind: BarKind, size: u64) -> Result<(), ConfigError> {
        let slots = if matches!(kind, BarKind::Memory64 { .. }) { 2 } else { 1 };
        if index as usize + slots > 6 {
            return Err(ConfigError::BadBarIndex(index));
        }
        for slot in index..index + slots as u8 {
            if self.bar_slot_used(slot) {
                return Err(ConfigError::BarInUse(slot));
            }
        }
        let (min, max) = match kind {
            BarKind::Io => (4, 256),
            BarKind::Memory32 { .. } => (16, 1 << 31),
            BarKind::Memory64 { .. } => (16, 1 << 63),
        };
        if !size.is_power_of_two() || size < min || size > max {
            return Err(ConfigError::BadBarSize(size));
        }
        let offset = BAR0 + 4 * index;
        let address_mask = !(size - 1);
        let (type_bits, low_mask) = match kind {
            BarKind::Io => (0x1, address_mask as u32 & 0xffff_fffc),
            BarKind::Memory32 { prefetchable } => ((prefetchable as u32) << 3, address_mask as u32 & 0xffff_fff0),
            BarKind::Memory64 { prefetchable } => (0x4 | (prefetchable as u32) << 3, address_mask as u32 & 0xffff_fff0),
        };
        self.set_u32(offset, type_bits);
        self.set_writable_u32(offset, low_mask);
        if slots == 2 {
            self.set_u32(offset + 4, 0);
            self.set_writable_u32(offset + 4, (address_mask >> 32) as u32);
        }
        self.bars[index as usize] = Some(Bar { kind, size });
        Ok(())
    }

    fn bar_slot_used(&self, slot: u8) -> bool {
        let s = slot as usize;
        self.bars[s].is_some()
            || (s > 0 && matches!(self.bars[s - 1], Some(Bar { kind: BarKind::Memory64 { .. }, .. })))
    }

    /// Declares the expansion ROM BAR at 0x30: 2 KiB to 16 MiB, a power of two (PCI 3.0 section
    /// 6.2.5.2). Bit 0 is the decode enable; bits 10:1 are reserved and read zero.
    pub fn declare_rom(&mut self, size: u64) -> Result<(), ConfigError> {
        if self.rom_size.is_some() {
            return Err(ConfigError::BarInUse(ROM_BAR_INDEX));
        }
        if !size.is_power_of_two() || !(2048..=16 << 20).contains(&size) {
            return Err(ConfigError::BadBarSize(size));
        }
        self.set_u32(EXPANSION_ROM, 0);
        self.set_writable_u32(EXPANSION_ROM, (!(size - 1) as u32 & 0xffff_f800) | ROM_ENABLE);
        self.rom_size = Some(size);
        Ok(())
    }

    /// Kind and size of BAR `index` (0-5) if declared.
    pub fn bar(&self, index: u8) -> Option<(BarKind, u64)> {
        self.bars.get(index as usize).copied().flatten().map(|b| (b.kind, b.size))
    }

    /// The address programmed in BAR `index` (0-5, or 6 for the ROM), whether or not it decodes.
    pub fn bar_address(&self, index: u8) -> Option<u64> {
        if index == ROM_BAR_INDEX {
            self.rom_size?;
            return Some((self.read_u32(EXPANSION_ROM) & 0xffff_f800) as u64);
        }
        let bar = self.bars.get(index as usize).copied().flatten()?;
        let offset = BAR0 + 4 * index;
        let low = self.read_u32(offset);
        Some(match bar.kind {
            BarKind::Io => (low & 0xffff_fffc) as u64,
            BarKind::Memory32 { .. } => (low & 0xffff_fff0) as u64,
            BarKind::Memory64 { .. } => (low & 0xffff_fff0) as u64 | (self.read_u32(offset + 4) as u64) << 32,
        })
    }

    /// Programs BAR `index` as firmware would (for machines booted without a BIOS that assigns
    /// resources). Bits below the BAR's size are dropped.
    pub fn set_bar_address(&mut self, index: u8, address: u64) {
        if index == ROM_BAR_INDEX {
            if let Some(size) = self.rom_size {
                let enable = self.read_u32(EXPANSION_ROM) & ROM_ENABLE;
                self.set_u32(EXPANSION_ROM, (address & !(size - 1)) as u32 & 0xffff_f800 | enable);
            }
            return;
        }
        let Some(bar) = self.bars.get(index as usize).copied().flatten() else { return };
        let offset = BAR0 + 4 * index;
        let address = address & !(bar.size - 1);
        let type_bits = self.read_u32(offset) & if bar.kind == BarKind::Io { 0x3 } else { 0xf };
        self.set_u32(offset, address as u32 | type_bits);
        if matches!(bar.kind, BarKind::Memory64 { .. }) {
            self.set_u32(offset + 4, (address >> 32) as u32);
        }
    }

    /// The BARs that decode now: enabled by the command register (I/O Space for I/O BARs, Memory
    /// Space for memory BARs and the ROM, which also needs its own enable bit) and programmed.
    ///
    /// A base of 0 does not decode (firmware leaves unassigned BARs at 0), and neither does a
    /// BAR that still holds the all-ones sizing pattern. The sizing pattern is recognised by where
    /// it puts the BAR: an I/O BAR beyond port 0xffff, a 32-bit memory BAR (or 64-bit BAR below
    /// 4 GiB) whose last byte is 0xffff_ffff, or a 64-bit BAR in the top 4 GiB of the 64-bit space
    /// (no CPU has physical addresses there). This is also where QEMU stops decoding.
    pub fn decoded_bars(&self) -> Vec<BarRegion> {
        let mut out = Vec::new();
        let io = self.io_space_enabled();
        let mem = self.memory_space_enabled();
        for index in 0..6u8 {
            let Some(bar) = self.bars[index as usize] else { continue };
            let Some(base) = self.bar_address(index) else { continue };
            let decodes = match bar.kind {
                BarKind::Io => io && base != 0 && base + bar.size <= 0x1_0000,
                BarKind::Memory32 { .. } => mem && decodes_below_4g(base, bar.size),
                BarKind::Memory64 { .. } => {
                    mem && base != 0
                        && (base >> 32) != 0xffff_ffff
                        && base.checked_add(bar.size).is_some()
                        && (base >> 32 != 0 || decodes_below_4g(base, bar.size))
                }
            };
            if decodes {
                let space = if bar.kind == BarKind::Io { BarSpace::Io } else { BarSpace::Memory };
                out.push(BarRegion { index, space, base, size: bar.size });
            }
        }
        if let (Some(size), Some(base)) = (self.rom_size, self.bar_address(ROM_BAR_INDEX)) {
            if mem && self.read_u32(EXPANSION_ROM) & ROM_ENABLE != 0 && decodes_below_4g(base, size) {
                out.push(BarRegion { index: ROM_BAR_INDEX, space: BarSpace::Memory, base, size });
            }
        }
        out
    }

    // ---- capabilities (PCI 3.0 section 6.7) ----

    /// Appends a capability of `len` bytes (including its ID and next pointer) at the first DWORD
    /// boundary after the last capability (or at 0x40). Returns its offset.
    pub fn add_capability(&mut self, id: u8, len: u8) -> Result<u8, ConfigError> {
        let start =
            self.capabilities.iter().map(|&(o, l)| o as usize + l as usize).max().unwrap_or(DEVICE_SPECIFIC as usize);
        let offset = (start + 3) & !3;
        let offset = u8::try_from(offset).map_err(|_| ConfigError::NoCapabilitySpace)?;
        self.add_capability_at(offset, id, len)
    }

    /// Appends a capability at `offset`, which must be DWORD aligned, at or above 0x40, and not
    /// overlap another capability. The new capability becomes the last in the list; its ID and
    /// next pointer are read-only, the rest of its body is read-only zero until the caller sets
    /// masks. Sets the Capabilities List status bit.
    pub fn add_capability_at(&mut self, offset: u8, id: u8, len: u8) -> Result<u8, ConfigError> {
        let bad = ConfigError::BadCapability { offset, len };
        let (o, l) = (offset as usize, len as usize);
        if offset < DEVICE_SPECIFIC || offset & 3 != 0 || l < 2 || o + l > CONFIG_SPACE_SIZE {
            return Err(bad);
        }
        if self.capabilities.iter().any(|&(co, cl)| o < co as usize + cl as usize && (co as usize) < o + l) {
            return Err(bad);
        }
        self.bytes[o..o + l].fill(0);
        self.writable[o..o + l].fill(0);
        self.write_one_to_clear[o..o + l].fill(0);
        self.bytes[o] = id;
        let link = match self.capabilities.last() {
            Some(&(last, _)) => last + 1,
            None => CAPABILITIES_POINTER,
        };
        self.set_u8(link, offset);
        self.capabilities.push((offset, len));
        self.set_status_bits(STATUS_CAPABILITIES_LIST);
        Ok(offset)
    }

    /// Walks the capability list as the guest sees it: (ID, offset) pairs. The walk is bounded, so
    /// a corrupt list (which only a buggy device model could make) cannot loop.
    pub fn capabilities(&self) -> Vec<(u8, u8)> {
        let mut out = Vec::new();
        if self.status() & STATUS_CAPABILITIES_LIST == 0 {
            return out;
        }
        // Bits 1:0 of every pointer are reserved and masked (PCI 3.0 section 6.7).
        let mut next = self.read_u8(CAPABILITIES_POINTER) & 0xfc;
        let max_hops = (CONFIG_SPACE_SIZE - DEVICE_SPECIFIC as usize) / 4;
        while next >= DEVICE_SPECIFIC && out.len() < max_hops {
            out.push((self.read_u8(next), next));
            next = self.read_u8(next + 1) & 0xfc;
        }
        out
    }
}

/// A configuration space image checked by [`ConfigSpace::load_state`], ready to apply.
#[derive(Clone, Debug)]
pub struct ConfigState([u8; CONFIG_SPACE_SIZE]);

impl ConfigState {
    /// A byte of the image (device-specific checks before applying it).
    pub fn byte(&self, offset: u8) -> u8 {
        self.0[offset as usize]
    }
}

impl ConfigSpace {
    /// Saves all 256 bytes. The masks, BAR declarations and capability list are the device's
    /// construction, identical on the restoring side, so they are not saved.
    pub fn save_state(&self, w: &mut crate::snapshot::StateWriter) {
        w.bytes(&self.bytes);
    }

    /// Reads a saved image and checks it against this function as built: every bit the guest
    /// cannot write (identity, header type, BAR type and size bits, capability IDs and pointers,
    /// hardwired registers) must be what this function has, except bits the device owns at run
    /// time. This is QEMU's `get_pci_config_device` check ("Bad config data", over `cmask`),
    /// applied to all read-only bits. Nothing changes until [`ConfigSpace::apply_state`].
    pub fn load_state(
        &self,
        r: &mut crate::snapshot::StateReader<'_>,
    ) -> Result<ConfigState, crate::snapshot::StateError> {
        let image: [u8; CONFIG_SPACE_SIZE] = r.array("config")?;
        for (i, (&new, &cur)) in image.iter().zip(self.bytes.iter()).enumerate() {
            let free = self.writable[i] | self.write_one_to_clear[i] | self.hardware_owned[i];
            if (new ^ cur) & !free != 0 {
                return Err(r.invalid(
                    format!("config[{i:#04x}]"),
                    format!("read-only bits differ from this device: saved {new:#04x}, device {cur:#04x}, writable mask {free:#04x}"),
                ));
            }
        }
        Ok(ConfigState(image))
    }

    /// Applies an image from [`ConfigSpace::load_state`]. The caller tells the bus to remap BARs
    /// (`IoBus::resync_bars`).
    pub fn apply_state(&mut self, state: ConfigState) {
        self.bytes = state.0;
    }
}

impl crate::snapshot::Snapshot for ConfigSpace {
    const ID: &'static str = "pci-config";
    const VERSION: u16 = 1;
    fn save(&self, w: &mut crate::snapshot::StateWriter) {
        self.save_state(w)
    }
    fn restore(&mut self, r: &mut crate::snapshot::StateReader<'_>) -> Result<(), crate::snapshot::StateError> {
        let s = self.load_state(r)?;
        r.finish()?;
        self.apply_state(s);
        Ok(())
    }
}

/// Whether a 32-bit-addressable memory range decodes: not at 0, and its last byte below
/// 0xffff_ffff (the all-ones sizing pattern always ends exactly at 4 GiB).
fn decodes_below_4g(base: u64, size: u64) -> bool {
    base != 0 && base.checked_add(size).is_some_and(|end| end < 0x1_0000_0000)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids() -> PciIds {
        PciIds {
            vendor_id: 0x1234,
            device_id: 0x5678,
            revision_id: 2,
            class: 0x01,
            subclass: 0x06,
            prog_if: 0x01,
            subsystem_vendor_id: 0x1af4,
            subsystem_id: 0x1100,
            multifunction: true,
        }
    }

    fn rd32(c: &ConfigSpace, off: u16) -> u32 {
        let mut d = [0u8; 4];
        c.read(off, &mut d);
        u32::from_le_bytes(d)
    }
    fn wr32(c: &mut ConfigSpace, off: u16, v: u32) {
        c.write(off, &v.to_le_bytes());
    }
    fn rd16(c: &ConfigSpace, off: u16) -> u16 {
        let mut d = [0u8; 2];
        c.read(off, &mut d);
        u16::from_le_bytes(d)
    }
    fn wr16(c: &mut ConfigSpace, off: u16, v: u16) {
        c.write(off, &v.to_le_bytes());
    }

    /// The all-ones sizing dance of PCI 3.0 section 6.2.5.1: returns what reads back.
    fn size_probe(c: &mut ConfigSpace, off: u16) -> u32 {
        let saved = rd32(c, off);
        wr32(c, off, 0xffff_ffff);
        let probed = rd32(c, off);
        wr32(c, off, saved);
        probed
    }

    #[test]
    fn identity_fields_are_read_only() {
        let mut c = ConfigSpace::new(ids());
        assert_eq!(rd32(&c, 0), 0x5678_1234);
        assert_eq!(rd32(&c, 8), 0x0106_0102);
        assert_eq!(rd32(&c, 0x2c), 0x1100_1af4);
        let mut d = [0u8; 1];
        c.read(0x0e, &mut d);
        assert_eq!(d[0], 0x80);
        wr32(&mut c, 0, 0);
        wr32(&mut c, 8, 0);
        wr32(&mut c, 0x2c, 0);
        wr32(&mut c, 0x0c, 0xffff_ffff);
        assert_eq!(rd32(&c, 0), 0x5678_1234);
        assert_eq!(rd32(&c, 8), 0x0106_0102);
        assert_eq!(rd32(&c, 0x2c), 0x1100_1af4);
        // Only the cache line size byte of that dword is writable.
        assert_eq!(rd32(&c, 0x0c), 0x0080_00ff);
    }

    #[test]
    fn command_register_implements_only_its_defined_bits() {
        let mut c = ConfigSpace::new(ids());
        wr16(&mut c, COMMAND as u16, 0xffff);
        assert_eq!(
            rd16(&c, COMMAND as u16),
            COMMAND_IO_SPACE
                | COMMAND_MEMORY_SPACE
                | COMMAND_BUS_MASTER
                | COMMAND_PARITY_ERROR_RESPONSE
                | COMMAND_SERR_ENABLE
                | COMMAND_INTX_DISABLE
        );
        assert!(c.intx_disabled() && c.bus_master_enabled());
        wr16(&mut c, COMMAND as u16, 0);
        assert_eq!(rd16(&c, COMMAND as u16), 0);
    }

    #[test]
    fn status_error_bits_are_write_one_to_clear_and_the_rest_read_only() {
        let mut c = ConfigSpace::new(ids());
        c.set_interrupt_status(true);
        c.set_status_bits(STATUS_RECEIVED_MASTER_ABORT | STATUS_DETECTED_PARITY_ERROR);
        // Writing 0 changes nothing; writing 1 to an RO bit changes nothing.
        wr16(&mut c, STATUS as u16, 0);
        assert_eq!(c.status(), STATUS_INTERRUPT | STATUS_RECEIVED_MASTER_ABORT | STATUS_DETECTED_PARITY_ERROR);
        wr16(&mut c, STATUS as u16, STATUS_RECEIVED_MASTER_ABORT | STATUS_INTERRUPT | STATUS_CAPABILITIES_LIST);
        assert_eq!(c.status(), STATUS_INTERRUPT | STATUS_DETECTED_PARITY_ERROR);
        // A dword write to 0x04 sets the command and clears status bits at once.
        wr32(&mut c, COMMAND as u16, (STATUS_DETECTED_PARITY_ERROR as u32) << 16 | COMMAND_MEMORY_SPACE as u32);
        assert_eq!(c.status(), STATUS_INTERRUPT);
        assert!(c.memory_space_enabled());
    }

    #[test]
    fn interrupt_line_is_storage_and_pin_read_only() {
        let mut c = ConfigSpace::new(ids());
        c.set_interrupt_pin(1);
        wr16(&mut c, INTERRUPT_LINE as u16, 0x050b);
        assert_eq!(c.interrupt_line(), 0x0b);
        assert_eq!(c.interrupt_pin(), 1);
        c.set_interrupt_pin(9);
        assert_eq!(c.interrupt_pin(), 0);
    }

    #[test]
    fn misaligned_and_out_of_range_accesses_read_ones_and_are_dropped() {
        let mut c = ConfigSpace::new(ids());
        let mut d = [0u8; 4];
        c.read(2, &mut d);
        assert_eq!(d, [0xff; 4]);
        let mut d = [0u8; 2];
        c.read(255, &mut d);
        assert_eq!(d, [0xff; 2]);
        let mut d = [0u8; 1];
        c.read(256, &mut d);
        assert_eq!(d, [0xff]);
        let mut d = [0u8; 3];
        c.read(0, &mut d);
        assert_eq!(d, [0xff; 3]);
        c.write(0x3b, &[0x0b, 0x0b]);
        c.write(0xffff, &[1]);
        c.write(0x3c, &[1, 2, 3]);
        assert_eq!(c.interrupt_line(), 0);
        assert_eq!(c.read_u32(0xfe), u32::MAX);
    }

    #[test]
    fn io_bar_sizing_and_decoding() {
        let mut c = ConfigSpace::new(ids());
        c.declare_bar(0, BarKind::Io, 0x40).unwrap();
        assert_eq!(size_probe(&mut c, 0x10), 0xffff_ffc1);
        assert_eq!(rd32(&c, 0x10), 0x1);
        wr32(&mut c, 0x10, 0xc03f);
        assert_eq!(rd32(&c, 0x10), 0xc001, "address bits below the size and the type bit are read-only");
        assert!(c.decoded_bars().is_empty(), "I/O Space is off");
        wr16(&mut c, COMMAND as u16, COMMAND_MEMORY_SPACE);
        assert!(c.decoded_bars().is_empty(), "Memory Space does not enable I/O BARs");
        wr16(&mut c, COMMAND as u16, COMMAND_IO_SPACE);
        assert_eq!(c.decoded_bars(), vec![BarRegion { index: 0, space: BarSpace::Io, base: 0xc000, size: 0x40 }]);
        // While the sizing pattern sits in the BAR it does not decode.
        wr32(&mut c, 0x10, 0xffff_ffff);
        assert!(c.decoded_bars().is_empty());
        wr32(&mut c, 0x10, 0);
        assert!(c.decoded_bars().is_empty());
    }

    #[test]
    fn memory32_bar_sizing_with_and_without_prefetch() {
        let mut c = ConfigSpace::new(ids());
        c.declare_bar(1, BarKind::Memory32 { prefetchable: false }, 0x1000).unwrap();
        c.declare_bar(2, BarKind::Memory32 { prefetchable: true }, 0x100_0000).unwrap();
        assert_eq!(size_probe(&mut c, 0x14), 0xffff_f000);
        assert_eq!(size_probe(&mut c, 0x18), 0xff00_0008);
        wr16(&mut c, COMMAND as u16, COMMAND_MEMORY_SPACE);
        wr32(&mut c, 0x14, 0xfebf_1234);
        wr32(&mut c, 0x18, 0xfd00_0000);
        assert_eq!(rd32(&c, 0x14), 0xfebf_1000);
        assert_eq!(
            c.decoded_bars(),
            vec![
                BarRegion { index: 1, space: BarSpace::Memory, base: 0xfebf_1000, size: 0x1000 },
                BarRegion { index: 2, space: BarSpace::Memory, base: 0xfd00_0000, size: 0x100_0000 },
            ]
        );
        wr32(&mut c, 0x14, 0xffff_ffff);
        assert_eq!(c.decoded_bars().len(), 1, "a BAR holding the sizing pattern stops decoding");
        // Undeclared BARs are read-only zero.
        assert_eq!(size_probe(&mut c, 0x10), 0);
        assert_eq!(size_probe(&mut c, 0x24), 0);
    }

    #[test]
    fn memory64_bar_uses_two_slots_and_sizes_per_dword() {
        let mut c = ConfigSpace::new(ids());
        c.declare_bar(2, BarKind::Memory64 { prefetchable: true }, 0x4000).unwrap();
        assert_eq!(c.declare_bar(3, BarKind::Io, 4), Err(ConfigError::BarInUse(3)));
        assert_eq!(
            c.declare_bar(5, BarKind::Memory64 { prefetchable: false }, 0x4000),
            Err(ConfigError::BadBarIndex(5))
        );
        assert_eq!(size_probe(&mut c, 0x18), 0xffff_c00c);
        assert_eq!(size_probe(&mut c, 0x1c), 0xffff_ffff);
        wr16(&mut c, COMMAND as u16, COMMAND_MEMORY_SPACE);
        wr32(&mut c, 0x18, 0x2000_0000);
        wr32(&mut c, 0x1c, 0x8);
        assert_eq!(
            c.decoded_bars(),
            vec![BarRegion { index: 2, space: BarSpace::Memory, base: 0x8_2000_0000, size: 0x4000 }]
        );
        // Sizing the upper half puts the BAR in the top 4 GiB: not decoding.
        wr32(&mut c, 0x1c, 0xffff_ffff);
        assert!(c.decoded_bars().is_empty());
        // A 64-bit BAR may also live below 4 GiB.
        wr32(&mut c, 0x1c, 0);
        wr32(&mut c, 0x18, 0xe000_0000);
        assert_eq!(c.decoded_bars()[0].base, 0xe000_0000);

        // A BAR larger than 4 GiB has no writable bits in its low dword.
        let mut big = ConfigSpace::new(ids());
        big.declare_bar(0, BarKind::Memory64 { prefetchable: false }, 1 << 34).unwrap();
        assert_eq!(size_probe(&mut big, 0x10), 0x4);
        assert_eq!(size_probe(&mut big, 0x14), 0xffff_fffc);
    }

    #[test]
    fn rom_bar_needs_its_enable_bit_and_memory_space() {
        let mut c = ConfigSpace::new(ids());
        c.declare_rom(0x10000).unwrap();
        assert_eq!(size_probe(&mut c, 0x30), 0xffff_0001);
        // Linux sizes the ROM with the enable bit clear.
        wr32(&mut c, 0x30, 0xffff_f800);
        assert_eq!(rd32(&c, 0x30), 0xffff_0000);
        wr32(&mut c, 0x30, 0xfeb0_0000);
        wr16(&mut c, COMMAND as u16, COMMAND_MEMORY_SPACE);
        assert!(c.decoded_bars().is_empty(), "ROM enable bit clear");
        wr32(&mut c, 0x30, 0xfeb0_07ff);
        assert_eq!(rd32(&c, 0x30), 0xfeb0_0001, "reserved bits 10:1 read zero");
        assert_eq!(
            c.decoded_bars(),
            vec![BarRegion { index: 6, space: BarSpace::Memory, base: 0xfeb0_0000, size: 0x10000 }]
        );
        wr16(&mut c, COMMAND as u16, COMMAND_IO_SPACE);
        assert!(c.decoded_bars().is_empty(), "Memory Space clear");
        assert_eq!(c.declare_rom(0x400), Err(ConfigError::BarInUse(6)));
        let mut other = ConfigSpace::new(ids());
        assert_eq!(other.declare_rom(0x400), Err(ConfigError::BadBarSize(0x400)));
    }

    #[test]
    fn bar_declarations_reject_bad_sizes() {
        let mut c = ConfigSpace::new(ids());
        assert_eq!(c.declare_bar(0, BarKind::Io, 512), Err(ConfigError::BadBarSize(512)));
        assert_eq!(c.declare_bar(0, BarKind::Io, 2), Err(ConfigError::BadBarSize(2)));
        assert_eq!(
            c.declare_bar(0, BarKind::Memory32 { prefetchable: false }, 0x3000),
            Err(ConfigError::BadBarSize(0x3000))
        );
        assert_eq!(c.declare_bar(6, BarKind::Io, 4), Err(ConfigError::BadBarIndex(6)));
        c.declare_bar(0, BarKind::Io, 4).unwrap();
        assert_eq!(c.declare_bar(0, BarKind::Io, 4), Err(ConfigError::BarInUse(0)));
    }

    #[test]
    fn firmware_side_bar_programming_keeps_type_bits() {
        let mut c = ConfigSpace::new(ids());
        c.declare_bar(0, BarKind::Memory64 { prefetchable: true }, 0x1000).unwrap();
        c.set_bar_address(0, 0x1_2345_6fff);
        assert_eq!(rd32(&c, 0x10), 0x2345_600c);
        assert_eq!(c.bar_address(0), Some(0x1_2345_6000));
    }

    #[test]
    fn capability_list_links_in_order_and_walks() {
        let mut c = ConfigSpace::new(ids());
        assert!(c.capabilities().is_empty());
        assert_eq!(c.status() & STATUS_CAPABILITIES_LIST, 0);
        let a = c.add_capability(0x05, 0x0e).unwrap();
        let b = c.add_capability(0x11, 0x0c).unwrap();
        let v = c.add_capability_at(0xc0, 0x09, 8).unwrap();
        assert_eq!((a, b, v), (0x40, 0x50, 0xc0));
        assert_ne!(c.status() & STATUS_CAPABILITIES_LIST, 0);
        // The guest's view: pointer at 0x34, then each next pointer.
        let mut p = [0u8; 1];
        c.read(0x34, &mut p);
        assert_eq!(p[0], 0x40);
        assert_eq!(rd16(&c, 0x40), 0x5005);
        assert_eq!(rd16(&c, 0x50), 0xc011);
        assert_eq!(rd16(&c, 0xc0), 0x0009);
        assert_eq!(c.capabilities(), vec![(0x05, 0x40), (0x11, 0x50), (0x09, 0xc0)]);
        // IDs and pointers are read-only.
        wr16(&mut c, 0x40, 0);
        c.write(0x34, &[0x80]);
        assert_eq!(c.capabilities(), vec![(0x05, 0x40), (0x11, 0x50), (0x09, 0xc0)]);
        assert!(c.add_capability_at(0x44, 1, 4).is_err(), "overlaps");
        assert!(c.add_capability_at(0x62, 1, 4).is_err(), "misaligned");
        assert!(c.add_capability_at(0x30, 1, 4).is_err(), "inside the header");
        assert!(c.add_capability_at(0xfc, 1, 8).is_err(), "past the end");
        assert_eq!(c.add_capability(1, 0xb0), Err(ConfigError::BadCapability { offset: 0xc8, len: 0xb0 }));
    }
}
