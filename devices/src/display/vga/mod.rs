//! The VGA core: the registers of an IBM VGA (sequencer, CRT controller, graphics controller,
//! attribute controller, DAC, miscellaneous output, input status), its four-plane memory behind
//! the legacy 0xa0000-0xbffff window, and the scanout of text, 16-colour planar, CGA and
//! 256-colour modes into a host [`Framebuffer`].
//!
//! Cards are built on it: the standard VGA (`stdvga`, with Bochs VBE on top) and Cirrus. A card
//! owns one [`VgaCore`], forwards the legacy ports and the window to it, and either lets it
//! render ([`VgaCore::refresh`]) or hands it a linear scanout of its own extended modes
//! ([`VgaCore::refresh_linear`]).
//!
//! Memory layout (the one QEMU uses, so chain-4 and linear framebuffers see the same bytes):
//! plane `p` of planar address `a` is VRAM byte `4 * a + p`. Chain-4 addresses VRAM bytes
//! directly, so byte `n` is plane `n & 3` at planar address `n >> 2`.
//!
//! Dirty tracking: every VRAM write the device makes marks its 4 KiB page; at refresh the
//! backend's [`VramService::sync_dirty`] adds the pages the guest wrote directly, only lines
//! (graphics) or text rows (text) touching a dirty page, or whose registers changed, are
//! redrawn, and [`Framebuffer::update_row`] marks only tiles whose pixels really changed. An idle
//! screen costs a scan of the dirty bitmap and of the registers.

pub mod dirty;
mod render;
pub mod spec;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use crate::clock::Clock;
use crate::display::{Framebuffer, Vram, VramService};
use crate::snapshot::{StateError, StateReader, StateWriter};
pub use dirty::DirtyPages;
pub use render::{LinearScanout, PixelFormat};
use spec::*;

/// Expands the low four bits of `v` to a mask with byte `i` all ones when bit `i` is set: one
/// byte per plane of a planar word.
pub(crate) fn plane_mask(v: u8) -> u32 {
    (0..4).fold(0u32, |m, p| if v & (1 << p) != 0 { m | (0xff << (8 * p)) } else { m })
}

/// The guest-programmable registers (everything saved and restored apart from VRAM).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VgaRegisters {
    pub misc: u8,
    pub feature: u8,
    /// Input status 1 as last read (its retrace bits toggle on every read).
    pub status1: u8,
    pub seq_index: u8,
    pub seq: [u8; SEQ_COUNT],
    pub crtc_index: u8,
    pub crtc: [u8; CRTC_COUNT],
    pub gc_index: u8,
    pub gc: [u8; GC_COUNT],
    /// Attribute index including the PAS bit (0x20).
    pub attr_index: u8,
    pub attr: [u8; ATTR_COUNT],
    /// false: the next 0x3c0 write is an index; true: it is data.
    pub attr_flip_flop: bool,
    pub dac_state: u8,
    pub dac_read_index: u8,
    pub dac_write_index: u8,
    pub dac_sub_index: u8,
    pub dac_cache: [u8; 3],
    /// 256 entries of red, green, blue (6 significant bits unless the DAC is in 8-bit mode).
    pub palette: [u8; DAC_ENTRIES * 3],
    /// The four plane latches, plane `p` in byte `p`.
    pub latch: u32,
}

impl Default for VgaRegisters {
    fn default() -> Self {
        VgaRegisters {
            misc: 0,
            feature: 0,
            status1: 0,
            seq_index: 0,
            seq: [0; SEQ_COUNT],
            crtc_index: 0,
            crtc: [0; CRTC_COUNT],
            gc_index: 0,
            gc: [0; GC_COUNT],
            attr_index: 0,
            attr: [0; ATTR_COUNT],
            attr_flip_flop: false,
            dac_state: 0,
            dac_read_index: 0,
            dac_write_index: 0,
            dac_sub_index: 0,
            dac_cache: [0; 3],
            palette: [0; DAC_ENTRIES * 3],
            latch: 0,
        }
    }
}

/// How the legacy window decodes, as the registers (or a card's linear mode) say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Access {
    Chain4,
    OddEven,
    Planar,
}

/// The VGA core a card embeds.
pub struct VgaCore {
    vram: Vram,
    service: Arc<dyn VramService>,
    clock: Arc<dyn Clock>,
    regs: VgaRegisters,
    /// Set by the card while one of its linear modes owns the window (Bochs VBE banked access):
    /// the window then acts as 64 KiB of chain-4 memory at `bank_offset`.
    linear_window: bool,
    bank_offset: usize,
    /// 8 bits per DAC colour component (VBE's 8BIT_DAC) instead of the VGA's 6.
    dac_8bit: bool,
    dirty: DirtyPages,
    render: render::RenderCache,
}

impl std::fmt::Debug for VgaCore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VgaCore").field("vram", &self.vram).field("misc", &self.regs.misc).finish()
    }
}

impl VgaCore {
    /// A VGA over `vram` (the card's video memory, mapped and tracked by `service`), blinking
    /// the cursor on `clock`'s time.
    pub fn new(vram: Vram, service: Arc<dyn VramService>, clock: Arc<dyn Clock>) -> Self {
        let dirty = DirtyPages::new(vram.len());
        VgaCore {
            vram,
            service,
            clock,
            regs: VgaRegisters::default(),
            linear_window: false,
            bank_offset: 0,
            dac_8bit: false,
            dirty,
            render: render::RenderCache::default(),
        }
    }

    pub fn vram(&self) -> &Vram {
        &self.vram
    }

    pub fn vram_service(&self) -> &Arc<dyn VramService> {
        &self.service
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    pub fn registers(&self) -> &VgaRegisters {
        &self.regs
    }

    /// Register access for a card's extensions (Cirrus keeps extended indexes itself).
    pub fn registers_mut(&mut self) -> &mut VgaRegisters {
        &mut self.regs
    }

    /// Power-on state: registers cleared (the VGA BIOS programs a mode), VRAM kept.
    pub fn reset(&mut self) {
        self.regs = VgaRegisters::default();
        self.linear_window = false;
        self.bank_offset = 0;
        self.dac_8bit = false;
        self.invalidate();
    }

    /// Redraw everything on the next refresh.
    pub fn invalidate(&mut self) {
        self.render.invalidate();
    }

    /// Records that the device wrote `len` bytes of VRAM at `offset` (trapped BAR writes, blits).
    pub fn mark_dirty(&mut self, offset: usize, len: usize) {
        self.dirty.mark(offset, len);
    }

    pub fn set_linear_window(&mut self, on: bool) {
        self.linear_window = on;
    }

    pub fn set_bank_offset(&mut self, offset: usize) {
        self.bank_offset = offset;
    }

    pub fn set_dac_8bit(&mut self, on: bool) {
        self.dac_8bit = on;
    }

    pub fn dac_8bit(&self) -> bool {
        self.dac_8bit
    }

    /// Whether the CRTC answers at 0x3dx (colour) rather than 0x3bx (monochrome).
    pub fn colour_ports(&self) -> bool {
        self.regs.misc & MISC_COLOUR != 0
    }

    /// Whether the attribute controller blanks the screen (PAS clear).
    pub fn blanked(&self) -> bool {
        self.regs.attr_index & ATTR_PAS == 0
    }

    // ---- ports ----

    /// A byte read from port `port` (0x3b0-0x3df); ports that do not decode read 0xff.
    pub fn io_read(&mut self, port: u16) -> u8 {
        let r = &mut self.regs;
        let colour = r.misc & MISC_COLOUR != 0;
        match port {
            PORT_CRTC_INDEX_MONO | PORT_CRTC_DATA_MONO | PORT_STATUS1_MONO if colour => 0xff,
            PORT_CRTC_INDEX_COLOUR | PORT_CRTC_DATA_COLOUR | PORT_STATUS1_COLOUR if !colour => 0xff,
            PORT_ATTR_INDEX => r.attr_index,
            PORT_ATTR_DATA_READ => r.attr.get((r.attr_index & 0x1f) as usize).copied().unwrap_or(0),
            PORT_MISC_WRITE => 0, // input status 0: no interrupt pending, switch sense 0
            PORT_SEQ_INDEX => r.seq_index,
            PORT_SEQ_DATA => r.seq[r.seq_index as usize & (SEQ_COUNT - 1)],
            PORT_DAC_MASK => 0xff,
            PORT_DAC_READ_INDEX => r.dac_state,
            PORT_DAC_WRITE_INDEX => r.dac_write_index,
            PORT_DAC_DATA => {
                let v = r.palette[r.dac_read_index as usize * 3 + r.dac_sub_index as usize];
                r.dac_sub_index += 1;
                if r.dac_sub_index == 3 {
                    r.dac_sub_index = 0;
                    r.dac_read_index = r.dac_read_index.wrapping_add(1);
                }
                v
            }
            PORT_FEATURE_READ => r.feature,
            PORT_MISC_READ => r.misc,
            PORT_GC_INDEX => r.gc_index,
            PORT_GC_DATA => r.gc[r.gc_index as usize & (GC_COUNT - 1)],
            PORT_CRTC_INDEX_MONO | PORT_CRTC_INDEX_COLOUR => r.crtc_index,
            PORT_CRTC_DATA_MONO | PORT_CRTC_DATA_COLOUR => r.crtc[r.crtc_index as usize],
            PORT_STATUS1_MONO | PORT_STATUS1_COLOUR => {
                // Reading input status 1 also resets the attribute flip-flop to "index".
                r.attr_flip_flop = false;
                r.status1 ^= STATUS1_VRETRACE | STATUS1_DISPLAY_INACTIVE;
                r.status1
            }
            _ => 0xff,
        }
    }

    /// A byte written to port `port`; ports that do not decode ignore it.
    pub fn io_write(&mut self, port: u16, v: u8) {
        let r = &mut self.regs;
        let colour = r.misc & MISC_COLOUR != 0;
        match port {
            PORT_CRTC_INDEX_MONO | PORT_CRTC_DATA_MONO | PORT_STATUS1_MONO if colour => {}
            PORT_CRTC_INDEX_COLOUR | PORT_CRTC_DATA_COLOUR | PORT_STATUS1_COLOUR if !colour => {}
            PORT_ATTR_INDEX => {
                if !r.attr_flip_flop {
                    r.attr_index = v & 0x3f;
                } else {
                    let index = (r.attr_index & 0x1f) as usize;
                    // Writable bits [Q vga_ioport_write]: the palette has 6 bits, mode bit 4
                    // is reserved, the plane enable 6 bits (2 of them status mux), panning and
                    // colour select 4.
                    let value = match index {
                        0x00..=0x0f => Some(v & 0x3f),
                        0x10 => Some(v & !0x10),
                        0x11 => Some(v),
                        0x12 => Some(v & 0x3f),
                        0x13 | 0x14 => Some(v & 0x0f),
                        _ => None,
                    };
                    if let Some(value) = value {
                        r.attr[index] = value;
                    }
                }
                r.attr_flip_flop = !r.attr_flip_flop;
            }
            PORT_MISC_WRITE => r.misc = v & !0x10,
            PORT_SEQ_INDEX => r.seq_index = v & (SEQ_COUNT as u8 - 1),
            PORT_SEQ_DATA => {
                let i = r.seq_index as usize & (SEQ_COUNT - 1);
                r.seq[i] = v & SEQ_MASK[i];
            }
            PORT_DAC_READ_INDEX => {
                r.dac_read_index = v;
                r.dac_sub_index = 0;
                r.dac_state = DAC_STATE_READ;
            }
            PORT_DAC_WRITE_INDEX => {
                r.dac_write_index = v;
                r.dac_sub_index = 0;
                r.dac_state = DAC_STATE_WRITE;
            }
            PORT_DAC_DATA => {
                r.dac_cache[r.dac_sub_index as usize] = v;
                r.dac_sub_index += 1;
                if r.dac_sub_index == 3 {
                    let at = r.dac_write_index as usize * 3;
                    r.palette[at..at + 3].copy_from_slice(&r.dac_cache);
                    r.dac_sub_index = 0;
                    r.dac_write_index = r.dac_write_index.wrapping_add(1);
                }
            }
            PORT_GC_INDEX => r.gc_index = v & (GC_COUNT as u8 - 1),
            PORT_GC_DATA => {
                let i = r.gc_index as usize & (GC_COUNT - 1);
                r.gc[i] = v & GC_MASK[i];
            }
            PORT_CRTC_INDEX_MONO | PORT_CRTC_INDEX_COLOUR => r.crtc_index = v,
            PORT_CRTC_DATA_MONO | PORT_CRTC_DATA_COLOUR => {
                let i = r.crtc_index as usize;
                if r.crtc[CRTC_V_RETRACE_END] & V_RETRACE_END_PROTECT != 0 && i <= CRTC_OVERFLOW {
                    // Protected: only the line compare bit 8 of the overflow register changes.
                    if i == CRTC_OVERFLOW {
                        r.crtc[i] = (r.crtc[i] & !OVERFLOW_LINE_COMPARE_8) | (v & OVERFLOW_LINE_COMPARE_8);
                    }
                } else {
                    r.crtc[i] = v;
                }
            }
            PORT_STATUS1_MONO | PORT_STATUS1_COLOUR => r.feature = v & 0x10,
            _ => {}
        }
    }

    /// Port accesses of any width: a word is its low byte at `port`, then its high byte at
    /// `port + 1` (so `outw 0x3c4, 0x0f02` sets index 2 then its data, as on hardware).
    pub fn io_read_bytes(&mut self, port: u16, data: &mut [u8]) {
        for (i, b) in data.iter_mut().enumerate() {
            *b = self.io_read(port.wrapping_add(i as u16));
        }
    }

    pub fn io_write_bytes(&mut self, port: u16, data: &[u8]) {
        for (i, &b) in data.iter().enumerate() {
            self.io_write(port.wrapping_add(i as u16), b);
        }
    }

    // ---- the legacy window ----

    fn access(&self) -> Access {
        if self.linear_window || self.regs.seq[SEQ_MEMORY_MODE] & MEMORY_CHAIN4 != 0 {
            Access::Chain4
        } else if self.regs.gc[GC_MODE] & MODE_ODD_EVEN != 0 {
            Access::OddEven
        } else {
            Access::Planar
        }
    }

    /// The window offset (0..0x20000 from 0xa0000) as an address in the selected memory map,
    /// or `None` where the map does not decode [IBM "Miscellaneous Register" memory map].
    fn window_address(&self, offset: u64) -> Option<usize> {
        let offset = offset as usize;
        if self.linear_window {
            return (offset < 0x1_0000).then(|| offset + self.bank_offset);
        }
        match (self.regs.gc[GC_MISC] >> MISC_MAP_SHIFT) & 3 {
            0 => (offset < 0x2_0000).then_some(offset),
            1 => (offset < 0x1_0000).then(|| offset + self.bank_offset),
            2 => offset.checked_sub(0x1_0000).filter(|&a| a < 0x8000),
            _ => offset.checked_sub(0x1_8000).filter(|&a| a < 0x8000),
        }
    }

    fn planar_word(&self, address: usize) -> Option<u32> {
        let at = address.checked_mul(4)?;
        let mut b = [0u8; 4];
        self.vram.read(at, &mut b).then(|| u32::from_le_bytes(b))
    }

    /// A CPU read of the window at `offset` from 0xa0000.
    pub fn mem_read(&mut self, offset: u64) -> u8 {
        let Some(a) = self.window_address(offset) else { return 0xff };
        match self.access() {
            Access::Chain4 => self.vram.read_u8(a),
            Access::OddEven => {
                let plane = (self.regs.gc[GC_READ_MAP] as usize & 2) | (a & 1);
                self.vram.read_u8(((a & !1) << 1) | plane)
            }
            Access::Planar => {
                let Some(word) = self.planar_word(a) else { return 0xff };
                self.regs.latch = word;
                if self.regs.gc[GC_MODE] & MODE_READ_COMPARE == 0 {
                    let plane = self.regs.gc[GC_READ_MAP] & 3;
                    (word >> (8 * plane)) as u8
                } else {
                    // Read mode 1: a bit is 1 where every plane not masked out by "colour
                    // don't care" matches the colour compare register.
                    let diff = (word ^ plane_mask(self.regs.gc[GC_COLOR_COMPARE]))
                        & plane_mask(self.regs.gc[GC_COLOR_DONT_CARE]);
                    let any = diff | diff >> 16;
                    !((any | any >> 8) as u8)
                }
            }
        }
    }

    /// A CPU write of the window at `offset` from 0xa0000.
    pub fn mem_write(&mut self, offset: u64, v: u8) {
        let Some(a) = self.window_address(offset) else { return };
        let map_mask = self.regs.seq[SEQ_MAP_MASK];
        match self.access() {
            Access::Chain4 => {
                // A card's linear window enables all planes (QEMU's VBE sequencer shadow).
                let enabled = self.linear_window || map_mask & (1 << (a & 3)) != 0;
                if enabled && a < self.vram.len() {
                    self.vram.write_u8(a, v);
                    self.dirty.mark(a, 1);
                }
            }
            // Odd/even writes follow the sequencer's bit (IBM: memory mode bit 2), not the
            // graphics controller's read bit.
            _ if self.regs.seq[SEQ_MEMORY_MODE] & MEMORY_SEQUENTIAL == 0 => {
                let plane = a & 1;
                let at = ((a & !1) << 1) | plane;
                if map_mask & (1 << plane) != 0 && at < self.vram.len() {
                    self.vram.write_u8(at, v);
                    self.dirty.mark(at, 1);
                }
            }
            _ => self.planar_write(a, v),
        }
    }

    /// Write modes 0-3 through rotate, set/reset, the logical function and the bit mask
    /// [IBM "Graphics Mode Register", "Data Rotate Register"].
    fn planar_write(&mut self, a: usize, v: u8) {
        let gc = &self.regs.gc;
        let latch = self.regs.latch;
        let rotate = (gc[GC_ROTATE] & 7) as u32;
        let value = match gc[GC_MODE] & 3 {
            1 => latch,
            mode => {
                let (data, bit_mask) = match mode {
                    0 => {
                        let b = v.rotate_right(rotate) as u32 * 0x0101_0101;
                        let enable = plane_mask(gc[GC_ENABLE_SET_RESET]);
                        ((b & !enable) | (plane_mask(gc[GC_SET_RESET]) & enable), gc[GC_BIT_MASK])
                    }
                    2 => (plane_mask(v & 0x0f), gc[GC_BIT_MASK]),
                    _ => (plane_mask(gc[GC_SET_RESET]), gc[GC_BIT_MASK] & v.rotate_right(rotate)),
                };
                let data = match gc[GC_ROTATE] >> 3 {
                    0 => data,
                    1 => data & latch,
                    2 => data | latch,
                    _ => data ^ latch,
                };
                let bits = bit_mask as u32 * 0x0101_0101;
                (data & bits) | (latch & !bits)
            }
        };
        let write_mask = plane_mask(self.regs.seq[SEQ_MAP_MASK]);
        let Some(old) = self.planar_word(a) else { return };
        let new = (old & !write_mask) | (value & write_mask);
        if self.vram.write(a * 4, &new.to_le_bytes()) {
            self.dirty.mark(a * 4, 4);
        }
    }

    pub fn mem_read_bytes(&mut self, offset: u64, data: &mut [u8]) {
        for (i, b) in data.iter_mut().enumerate() {
            *b = self.mem_read(offset.wrapping_add(i as u64));
        }
    }

    pub fn mem_write_bytes(&mut self, offset: u64, data: &[u8]) {
        for (i, &b) in data.iter().enumerate() {
            self.mem_write(offset.wrapping_add(i as u64), b);
        }
    }

    // ---- refresh ----

    /// Renders what the VGA registers scan out (text, planar, CGA, 256 colours, or blank).
    pub fn refresh(&mut self, fb: &mut Framebuffer) {
        self.sync_dirty();
        render::refresh_vga(self, fb);
        self.dirty.clear();
    }

    /// Renders a card's linear mode (VBE, Cirrus extended modes); blanked like VGA modes.
    pub fn refresh_linear(&mut self, fb: &mut Framebuffer, scanout: &LinearScanout) {
        self.sync_dirty();
        render::refresh_linear(self, fb, scanout);
        self.dirty.clear();
    }

    fn sync_dirty(&mut self) {
        if !self.service.sync_dirty(&self.vram, self.dirty.words_mut()) {
            self.dirty.mark_all();
        }
    }

    // ---- save/restore ----

    /// Writes the registers (not VRAM: the card decides whether VRAM is saved with the device
    /// or, on Xen, is guest memory saved with the domain).
    pub fn save(&self, w: &mut StateWriter) {
        let r = &self.regs;
        w.u8(r.misc);
        w.u8(r.feature);
        w.u8(r.status1);
        w.u8(r.seq_index);
        w.bytes(&r.seq);
        w.u8(r.crtc_index);
        w.bytes(&r.crtc);
        w.u8(r.gc_index);
        w.bytes(&r.gc);
        w.u8(r.attr_index);
        w.bytes(&r.attr);
        w.bool(r.attr_flip_flop);
        w.u8(r.dac_state);
        w.u8(r.dac_read_index);
        w.u8(r.dac_write_index);
        w.u8(r.dac_sub_index);
        w.bytes(&r.dac_cache);
        w.bytes(&r.palette);
        w.u32(r.latch);
    }

    /// Reads what [`VgaCore::save`] wrote, checked; apply with [`VgaCore::apply`].
    pub fn load(r: &mut StateReader<'_>) -> Result<VgaRegisters, StateError> {
        let misc = r.u8("vga.misc")?;
        let feature = r.u8("vga.feature")?;
        let status1 = r.u8("vga.status1")?;
        let seq_index = r.u8_where("vga.seq_index", |v| (v as usize) < SEQ_COUNT, "a sequencer index")?;
        let seq: [u8; SEQ_COUNT] = r.array("vga.seq")?;
        let crtc_index = r.u8("vga.crtc_index")?;
        let crtc: [u8; CRTC_COUNT] = r.array("vga.crtc")?;
        let gc_index = r.u8_where("vga.gc_index", |v| (v as usize) < GC_COUNT, "a graphics index")?;
        let gc: [u8; GC_COUNT] = r.array("vga.gc")?;
        let attr_index = r.u8_where("vga.attr_index", |v| v < 0x40, "an attribute index")?;
        let attr: [u8; ATTR_COUNT] = r.array("vga.attr")?;
        let attr_flip_flop = r.bool("vga.attr_flip_flop")?;
        let dac_state = r.u8_where("vga.dac_state", |v| v == 0 || v == 3, "a DAC state")?;
        let dac_read_index = r.u8("vga.dac_read_index")?;
        let dac_write_index = r.u8("vga.dac_write_index")?;
        let dac_sub_index = r.u8_where("vga.dac_sub_index", |v| v < 3, "a DAC component index")?;
        let dac_cache: [u8; 3] = r.array("vga.dac_cache")?;
        let palette: [u8; DAC_ENTRIES * 3] = r.array("vga.palette")?;
        let latch = r.u32("vga.latch")?;
        Ok(VgaRegisters {
            misc,
            feature,
            status1,
            seq_index,
            seq,
            crtc_index,
            crtc,
            gc_index,
            gc,
            attr_index,
            attr,
            attr_flip_flop,
            dac_state,
            dac_read_index,
            dac_write_index,
            dac_sub_index,
            dac_cache,
            palette,
            latch,
        })
    }

    pub fn apply(&mut self, regs: VgaRegisters) {
        self.regs = regs;
        self.dirty.mark_all();
        self.invalidate();
    }
}
