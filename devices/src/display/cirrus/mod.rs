//! The Cirrus Logic CLGD 5446 (`-device cirrus-vga`, `-vga cirrus`, xl's default card), as QEMU
//! v7.2 emulates it [Q hw/display/cirrus_vga.c]: a VGA (the [`VgaCore`]) with the Cirrus
//! extended sequencer, graphics-controller and CRTC registers, banked access to the 0xa0000
//! window, a linear framebuffer in BAR0, the BitBLT engine ([`blit`]) behind GR20..GR3F and its
//! memory-mapped copy in BAR1, and the Cirrus VGA BIOS in the ROM BAR.
//!
//! BAR0 (32 MiB, prefetchable): VRAM at 0 (trapped accesses wrap at the card's 4 MiB address
//! space like QEMU's `cirrus_linear_io`), the blit FIFO aperture at +16 MiB. QEMU declares the
//! byte-swapping apertures of the real chip but does not implement them ("XXX: add byte swapping
//! apertures"), so neither does this. While no extended write mode, MMIO-in-LFB or blit FIFO
//! needs the device to see linear accesses, VRAM is mapped into BAR0 through the backend's
//! [`VramService`] (KVM memory slot / Xen relocation), as QEMU maps `vga.vram` over its linear
//! I/O region.
//!
//! BAR1 (4 KiB): offsets 0..0xff are ports 0x3c0..0x3ff (what Linux's `cirrus` DRM driver
//! uses), 0x100.. the BitBLT registers.
//!
//! Not emulated (QEMU does not either): video-to-system blits, the GR2F write mask bits 5..7,
//! the hardware cursor drawn into the picture.

pub mod blit;
pub mod spec;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use crate::bus::BusDevice;
use crate::clock::Clock;
use crate::display::vga::spec as vga;
use crate::display::vga::{LinearScanout, PixelFormat, VgaCore};
use crate::display::vram::PAGE;
use crate::display::{Display, Framebuffer, Vram, VramService};
use crate::pci::config::{BarKind, PciIds};
use crate::pci::function::{PciFunction, PciFunctionDevice, PciResources};
use crate::pci::option_rom::OptionRom;
use crate::snapshot::{Snapshot, StateError, StateReader, StateWriter};
use blit::{BlitRegs, Blitter, Started};
use spec::*;

/// Legacy ranges the card decodes besides its BARs: VGA ports and the 0xa0000 window.
pub const LEGACY_PORTS: (u16, u16) = (0x3b0, 0x30);
pub const LEGACY_WINDOW: (u64, u64) = (0xa_0000, 0x2_0000);

/// Why the card could not be built.
#[derive(Debug, thiserror::Error)]
pub enum CirrusError {
    #[error("vgamem_mb={0}: the Cirrus card takes 4, 8 or 16 (MiB of video memory)")]
    VgaMem(u32),
    #[error("video memory: {0}")]
    Vram(#[from] crate::display::VramError),
    #[error("option ROM: {0}")]
    Rom(#[from] crate::pci::option_rom::OptionRomError),
}

/// The Cirrus registers the VGA core does not keep (saved with the device).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Extended {
    sr_index: u8,
    sr: [u8; 256],
    gr_index: u8,
    /// Full-width values for every GR index (GR00/01 as the 8-bit blit colours, GR05 with
    /// write modes 4/5); the core holds its masked copies of GR00..GR08.
    gr: [u8; 256],
    hidden_dac_lock: u8,
    hidden_dac: u8,
    /// 16 entries of the cursor palette (SR12 bit 1 routes the DAC there).
    hidden_palette: [u8; 48],
    cursor_x: u16,
    cursor_y: u16,
}

impl Default for Extended {
    fn default() -> Self {
        Extended {
            sr_index: 0,
            sr: [0; 256],
            gr_index: 0,
            gr: [0; 256],
            hidden_dac_lock: 0,
            hidden_dac: 0,
            hidden_palette: [0; 48],
            cursor_x: 0,
            cursor_y: 0,
        }
    }
}

/// The card.
pub struct CirrusVga {
    function: PciFunction,
    core: VgaCore,
    ext: Extended,
    blitter: Blitter,
    /// The VGA BIOS in the ROM BAR (ids patched to 1013:00b8).
    rom: Option<OptionRom>,
    /// BAR0's base while it decodes (kept from configuration writes: checked on every
    /// register write, which must stay cheap).
    bar0: Option<u64>,
    /// Where VRAM is mapped into the guest directly (BAR0's base), if it is.
    mapped_at: Option<u64>,
}

impl std::fmt::Debug for CirrusVga {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CirrusVga").field("vram", self.core.vram()).field("mapped_at", &self.mapped_at).finish()
    }
}

/// A CPU access to VRAM, after banking or linear decoding.
enum Target {
    /// VRAM byte `offset` (checked against the VRAM size by the access itself).
    Vram(usize),
    /// Byte `offset` of the memory-mapped BitBLT registers.
    BltRegister(u8),
    /// The blit FIFO (writes feed it, reads return all ones).
    Fifo,
    Nothing,
}

impl CirrusVga {
    /// A card with `vgamem_mb` MiB of video memory from `service`, and `rom` (the Cirrus VGA
    /// BIOS image, `vgabios-cirrus.bin`; `None` for no ROM BAR) in its ROM BAR.
    pub fn new(
        vgamem_mb: u32,
        service: Arc<dyn VramService>,
        clock: Arc<dyn Clock>,
        rom: Option<&[u8]>,
        resources: PciResources,
    ) -> Result<Self, CirrusError> {
        if !VGAMEM_MB_ALLOWED.contains(&vgamem_mb) {
            return Err(CirrusError::VgaMem(vgamem_mb));
        }
        let vram = service.allocate(vgamem_mb as usize * (1 << 20))?;
        let ids = PciIds {
            vendor_id: VENDOR_ID,
            device_id: DEVICE_ID,
            revision_id: 0,
            class: (CLASS_VGA >> 16) as u8,
            subclass: (CLASS_VGA >> 8) as u8,
            prog_if: CLASS_VGA as u8,
            subsystem_vendor_id: SUBSYSTEM_VENDOR_ID,
            subsystem_id: SUBSYSTEM_ID,
            multifunction: false,
        };
        let mut function = PciFunction::new(ids, None, resources);
        // A fixed, valid layout: these cannot fail.
        let _ = function.config_mut().declare_bar(0, BarKind::Memory32 { prefetchable: true }, BAR0_SIZE);
        let _ = function.config_mut().declare_bar(1, BarKind::Memory32 { prefetchable: false }, BAR1_SIZE);
        let rom = rom.map(|image| OptionRom::new(image, VENDOR_ID, DEVICE_ID)).transpose()?;
        if let Some(rom) = &rom {
            let _ = function.config_mut().declare_rom(rom.bar_size());
        }
        let mut card = CirrusVga {
            function,
            core: VgaCore::new(vram, service, clock),
            ext: Extended::default(),
            blitter: Blitter::new(),
            rom,
            bar0: None,
            mapped_at: None,
        };
        card.reset_registers();
        Ok(card)
    }

    pub fn vram(&self) -> &Vram {
        self.core.vram()
    }

    /// How much of VRAM the card addresses.
    fn limit(&self) -> usize {
        ADDRESSABLE_VRAM.min(self.core.vram().len())
    }

    /// QEMU's `cirrus_reset`: the VGA core's power-on state plus the 5446's strapping.
    fn reset_registers(&mut self) {
        self.core.reset();
        self.blitter.reset();
        self.ext = Extended::default();
        self.ext.sr[SR_UNLOCK] = SR_UNLOCK_LOCKED;
        self.ext.sr[SR_MCLK] = 0x2d;
        self.ext.gr[GR_MEMCFG] = 0x0f;
        self.ext.sr[SR_DRAM_CONTROL] = 0x98;
        self.ext.sr[SR_CONFIG] = SR17_BUSTYPE_PCI;
        self.ext.sr[SR_MEMSIZE] = 0x04;
        self.core.registers_mut().crtc[CR_PART_ID] = PART_ID_CLGD5446;
        // Colour port decode (CRTC at 0x3d4), as every VGA BIOS mode set leaves it. QEMU starts
        // with it clear but always runs the VGA BIOS first; a `-kernel` boot has none, and
        // Linux's cirrus driver programs the CRTC through BAR1 + 0x14 (= 0x3d4) without
        // touching the miscellaneous output register, so without this its mode set would be
        // dropped.
        self.core.registers_mut().misc = vga::MISC_COLOUR;
        self.ext.hidden_dac_lock = 5;
        self.ext.hidden_dac = 0;
        self.update_mapping();
    }

    // ---- ports ----

    fn crtc_port_valid(&self, port: u16) -> bool {
        match port {
            0x3b4 | 0x3b5 => !self.core.colour_ports(),
            0x3d4 | 0x3d5 => self.core.colour_ports(),
            _ => true,
        }
    }

    /// A byte read from VGA port `port` (0x3b0..0x3df).
    pub fn io_read(&mut self, port: u16) -> u8 {
        match port {
            0x3c4 => self.ext.sr_index,
            0x3c5 => self.read_sr(),
            0x3c6 => {
                self.ext.hidden_dac_lock = self.ext.hidden_dac_lock.wrapping_add(1);
                if self.ext.hidden_dac_lock == HIDDEN_DAC_UNLOCK_READS + 1 {
                    self.ext.hidden_dac_lock = 0;
                    self.ext.hidden_dac
                } else {
                    0xff
                }
            }
            0x3c8 => {
                self.ext.hidden_dac_lock = 0;
                self.core.io_read(port)
            }
            0x3c9 if self.ext.sr[SR_CURSOR_ATTR] & CURSOR_HIDDEN_PEL != 0 => {
                let r = self.core.registers_mut();
                let at = (r.dac_read_index as usize & 0x0f) * 3 + r.dac_sub_index as usize;
                r.dac_sub_index += 1;
                if r.dac_sub_index == 3 {
                    r.dac_sub_index = 0;
                    r.dac_read_index = r.dac_read_index.wrapping_add(1);
                }
                self.ext.hidden_palette[at]
            }
            0x3ce => self.ext.gr_index,
            0x3cf => self.read_gr(self.ext.gr_index as usize),
            0x3b5 | 0x3d5 if self.crtc_port_valid(port) => {
                let r = self.core.registers();
                let i = r.crtc_index as usize;
                match i {
                    0x00..=0x18 => self.core.io_read(port),
                    CR_AR_TOGGLE => u8::from(r.attr_flip_flop) << 7,
                    CR_AR_INDEX => r.attr_index & 0x3f,
                    0x19..=0x1d | CR_LATCH_READBACK | CR_PART_STATUS | CR_PART_ID => r.crtc[i],
                    _ => 0xff,
                }
            }
            _ => self.core.io_read(port),
        }
    }

    /// A byte written to VGA port `port`.
    pub fn io_write(&mut self, port: u16, v: u8) {
        match port {
            0x3c4 => {
                self.ext.sr_index = v;
                self.core.io_write(port, v);
            }
            0x3c5 => self.write_sr(v),
            0x3c6 => {
                if self.ext.hidden_dac_lock == HIDDEN_DAC_UNLOCK_READS {
                    self.ext.hidden_dac = v;
                }
                self.ext.hidden_dac_lock = 0;
            }
            0x3c9 if self.ext.sr[SR_CURSOR_ATTR] & CURSOR_HIDDEN_PEL != 0 => {
                let r = self.core.registers_mut();
                r.dac_cache[r.dac_sub_index as usize] = v;
                r.dac_sub_index += 1;
                if r.dac_sub_index == 3 {
                    let at = (r.dac_write_index as usize & 0x0f) * 3;
                    let cache = r.dac_cache;
                    r.dac_sub_index = 0;
                    r.dac_write_index = r.dac_write_index.wrapping_add(1);
                    self.ext.hidden_palette[at..at + 3].copy_from_slice(&cache);
                }
            }
            0x3ce => {
                self.ext.gr_index = v;
                self.core.io_write(port, v);
            }
            0x3cf => self.write_gr(self.ext.gr_index as usize, v),
            0x3b5 | 0x3d5 if self.crtc_port_valid(port) => {
                let i = self.core.registers().crtc_index as usize;
                match i {
                    0x00..=0x18 => self.core.io_write(port, v),
                    0x19..=0x1d => self.core.registers_mut().crtc[i] = v,
                    _ => {} // read-only or undecoded
                }
            }
            _ => self.core.io_write(port, v),
        }
        self.update_mapping();
    }

    fn read_sr(&mut self) -> u8 {
        let i = self.ext.sr_index as usize;
        match i {
            0x00..=0x04 => self.core.io_read(0x3c5),
            // Cursor position registers alias every 0x20 [Q cirrus_vga_read_sr].
            _ if i & 0x1f == SR_CURSOR_X => self.ext.sr[SR_CURSOR_X],
            _ if i & 0x1f == SR_CURSOR_Y => self.ext.sr[SR_CURSOR_Y],
            0x05..=0x1f => self.ext.sr[i],
            _ => 0xff,
        }
    }

    fn write_sr(&mut self, v: u8) {
        let i = self.ext.sr_index as usize;
        match i {
            0x00..=0x04 => self.core.io_write(0x3c5, v),
            SR_UNLOCK => {
                self.ext.sr[i] = if v & SR_UNLOCK_MASK == SR_UNLOCK_KEY { SR_UNLOCK_KEY } else { SR_UNLOCK_LOCKED }
            }
            _ if i & 0x1f == SR_CURSOR_X => {
                self.ext.sr[SR_CURSOR_X] = v;
                self.ext.cursor_x = (u16::from(v) << 3) | (i as u16 >> 5);
            }
            _ if i & 0x1f == SR_CURSOR_Y => {
                self.ext.sr[SR_CURSOR_Y] = v;
                self.ext.cursor_y = (u16::from(v) << 3) | (i as u16 >> 5);
            }
            SR_CONFIG => self.ext.sr[i] = (self.ext.sr[i] & SR17_READONLY) | (v & !SR17_READONLY),
            0x05 | 0x07..=0x0f | 0x12..=0x16 | 0x18..=0x1f => self.ext.sr[i] = v,
            _ => {}
        }
    }

    fn read_gr(&mut self, i: usize) -> u8 {
        match i {
            0x02..=0x04 | 0x06..=0x08 => self.core.io_read(0x3cf),
            _ if i < GR_COUNT => self.ext.gr[i],
            _ => 0xff,
        }
    }

    fn write_gr(&mut self, i: usize, v: u8) {
        match i {
            0x00..=0x08 => {
                // The core keeps the VGA view (it masks); the Cirrus view keeps all 8 bits.
                self.ext.gr[i] = if i == GR_MODE { v & 0x7f } else { v };
                let saved = self.core.registers().gc_index;
                self.core.registers_mut().gc_index = i as u8;
                self.core.io_write(0x3cf, v);
                self.core.registers_mut().gc_index = saved;
            }
            GR_BANK0 | GR_BANK1 | GR_MODE_EXT => self.ext.gr[i] = v,
            0x10..=0x15
            | 0x20
            | 0x22
            | 0x24
            | 0x26
            | 0x28
            | 0x29
            | 0x2c
            | 0x2d
            | 0x2f
            | 0x30
            | 0x32..=0x35
            | 0x38
            | 0x39 => self.ext.gr[i] = v,
            0x21 | 0x23 | 0x25 | 0x27 => self.ext.gr[i] = v & 0x1f,
            0x2a => {
                self.ext.gr[i] = v & 0x3f;
                if self.ext.gr[GR_BLT_STATUS] & BLT_AUTOSTART != 0 {
                    self.start_blit();
                }
            }
            0x2e => self.ext.gr[i] = v & 0x3f,
            GR_BLT_STATUS => {
                let old = self.ext.gr[i];
                self.ext.gr[i] = v;
                if old & BLT_RESET != 0 && v & BLT_RESET == 0 {
                    self.finish_blit();
                } else if old & BLT_START == 0 && v & BLT_START != 0 {
                    self.start_blit();
                }
            }
            _ => {}
        }
    }

    // ---- the BitBLT engine ----

    fn blit_regs(&self) -> BlitRegs {
        let g = &self.ext.gr;
        let word = |i: usize| u16::from_le_bytes([g[i], g[i + 1]]);
        let addr = |i: usize| u32::from_le_bytes([g[i], g[i + 1], g[i + 2], 0]);
        BlitRegs {
            width: word(GR_BLT_WIDTH),
            height: word(GR_BLT_HEIGHT),
            dst_pitch: word(GR_BLT_DST_PITCH),
            src_pitch: word(GR_BLT_SRC_PITCH),
            dst_addr: addr(GR_BLT_DST_ADDR),
            src_addr: addr(GR_BLT_SRC_ADDR),
            mode: g[GR_BLT_MODE],
            mode_ext: g[GR_BLT_MODE_EXT],
            rop: g[GR_BLT_ROP],
            skip: g[GR_BLT_SKIP],
            fg: u32::from_le_bytes([g[GR_ENABLE_SET_RESET], g[GR_FG_1], g[GR_FG_2], g[GR_FG_3]]),
            bg: u32::from_le_bytes([g[GR_SET_RESET], g[GR_BG_1], g[GR_BG_2], g[GR_BG_3]]),
            transparent: word(GR_BLT_TRANSPARENT),
        }
    }

    fn start_blit(&mut self) {
        self.ext.gr[GR_BLT_STATUS] |= BLT_BUSY;
        let regs = self.blit_regs();
        let vram = self.core.vram().clone();
        let limit = self.limit();
        let core = &mut self.core;
        match self.blitter.start(&regs, &vram, limit, &mut |o, l| core.mark_dirty(o, l)) {
            Started::AwaitingData { .. } => {}
            Started::Done => self.finish_blit(),
            Started::Refused(why) => {
                log::debug!("cirrus-vga: blit refused ({why:?}): {regs:?}");
                self.finish_blit();
            }
        }
        self.update_mapping();
    }

    /// Back to idle: the bits drivers poll clear [Q cirrus_bitblt_reset].
    fn finish_blit(&mut self) {
        self.blitter.reset();
        self.ext.gr[GR_BLT_STATUS] &= !(BLT_START | BLT_BUSY | BLT_FIFOUSED);
        self.update_mapping();
    }

    fn push_fifo(&mut self, v: u8) {
        let vram = self.core.vram().clone();
        let core = &mut self.core;
        if self.blitter.push(v, &vram, &mut |o, l| core.mark_dirty(o, l)) {
            self.finish_blit();
        }
    }

    fn blt_register_read(&mut self, offset: u8) -> u8 {
        if offset == MMIO_BLT_STATUS {
            return self.ext.gr[GR_BLT_STATUS];
        }
        MMIO_BLT_REGS.iter().find(|(o, _)| *o == offset).map_or(0xff, |&(_, gr)| self.read_gr(gr))
    }

    fn blt_register_write(&mut self, offset: u8, v: u8) {
        let gr = if offset == MMIO_BLT_STATUS {
            Some(GR_BLT_STATUS)
        } else {
            MMIO_BLT_REGS.iter().find(|(o, _)| *o == offset).map(|&(_, gr)| gr)
        };
        if let Some(gr) = gr {
            self.write_gr(gr, v);
            self.update_mapping();
        }
    }

    // ---- memory ----

    fn extended(&self) -> bool {
        self.ext.sr[SR_EXT_MODE] & SR7_SVGA != 0
    }

    /// GR0B "by 8"/"by 16" addressing [Q cirrus_vga_mem_read].
    fn scale(&self, address: usize) -> usize {
        let g = self.ext.gr[GR_MODE_EXT];
        let a = if g & (GRB_BY16 | GRB_EXT_WRITE_MODES) == GRB_BY16 | GRB_EXT_WRITE_MODES {
            address << 4
        } else if g & GRB_BY8 != 0 {
            address << 3
        } else {
            address
        };
        a & (ADDRESSABLE_VRAM - 1)
    }

    /// Base and limit of bank `index` (0: 0xa0000, 1: 0xa8000) [Q cirrus_update_bank_ptr].
    fn bank(&self, index: usize) -> (usize, usize) {
        let g = &self.ext.gr;
        let dual = g[GR_MODE_EXT] & GRB_DUAL_BANK != 0;
        let mut base = usize::from(if dual { g[GR_BANK0 + index] } else { g[GR_BANK0] });
        base <<= if g[GR_MODE_EXT] & GRB_GRANULARITY_16K != 0 { 14 } else { 12 };
        let mut limit = self.limit().saturating_sub(base);
        if !dual && index == 1 {
            if limit > 0x8000 {
                base += 0x8000;
                limit -= 0x8000;
            } else {
                limit = 0;
            }
        }
        if limit == 0 {
            (0, 0)
        } else {
            (base, limit)
        }
    }

    fn window_target(&self, offset: u64) -> Target {
        if offset < 0x1_0000 {
            let index = (offset >> 15) as usize;
            let within = (offset & 0x7fff) as usize;
            let (base, limit) = self.bank(index);
            if within < limit {
                Target::Vram(self.scale(base + within))
            } else {
                Target::Nothing
            }
        } else if (WINDOW_MMIO_OFFSET..WINDOW_MMIO_OFFSET + WINDOW_MMIO_SIZE).contains(&offset)
            && self.ext.sr[SR_CONFIG] & (SR17_MMIO_ENABLE | SR17_MMIO_USE_PCIADDR) == SR17_MMIO_ENABLE
        {
            Target::BltRegister((offset - WINDOW_MMIO_OFFSET) as u8)
        } else {
            Target::Nothing
        }
    }

    fn linear_target(&self, offset: u64) -> Target {
        if offset >= BAR0_BITBLT_OFFSET {
            return if offset < BAR0_BITBLT_OFFSET + BAR0_BITBLT_SIZE { Target::Fifo } else { Target::Nothing };
        }
        let masked = offset as usize & (ADDRESSABLE_VRAM - 1);
        let mmio = ADDRESSABLE_VRAM - 256;
        if self.ext.sr[SR_CONFIG] & (SR17_MMIO_ENABLE | SR17_MMIO_USE_PCIADDR)
            == SR17_MMIO_ENABLE | SR17_MMIO_USE_PCIADDR
            && masked & mmio == mmio
        {
            return Target::BltRegister(masked as u8);
        }
        if self.ext.gr[GR_MODE_EXT] & (GRB_BY8 | GRB_BY16) != 0 {
            Target::Vram(self.scale(masked))
        } else if (offset as usize) < self.core.vram().len() {
            // Plain linear accesses reach all of VRAM, as they do while it is mapped directly.
            Target::Vram(offset as usize)
        } else {
            Target::Nothing
        }
    }

    fn target_read(&mut self, target: Target) -> u8 {
        match target {
            Target::Vram(a) => self.core.vram().read_u8(a),
            Target::BltRegister(o) => self.blt_register_read(o),
            Target::Fifo | Target::Nothing => 0xff,
        }
    }

    fn target_write(&mut self, target: Target, v: u8) {
        match target {
            Target::BltRegister(o) => self.blt_register_write(o, v),
            Target::Fifo => self.push_fifo(v),
            Target::Vram(_) if self.blitter.awaiting_data() => self.push_fifo(v),
            Target::Vram(a) => self.vram_write(a, v),
            Target::Nothing => {}
        }
    }

    /// A CPU byte to VRAM through write modes 4/5 when enabled (each bit of the byte is a pixel:
    /// set bits take the foreground colour, clear bits the background colour in mode 5 and are
    /// left alone in mode 4) [Q cirrus_mem_writeb_mode4and5_*].
    fn vram_write(&mut self, a: usize, v: u8) {
        let mode = self.ext.gr[GR_MODE] & 7;
        let g = self.ext.gr[GR_MODE_EXT];
        if !(4..=5).contains(&mode) || g & GRB_EXT_WRITE_MODES == 0 {
            if a < self.core.vram().len() {
                self.core.vram().write_u8(a, v);
                self.core.mark_dirty(a, 1);
            }
            return;
        }
        let wide = g & (GRB_BY16 | GRB_EXT_WRITE_MODES) == GRB_BY16 | GRB_EXT_WRITE_MODES;
        let pw = if wide { 2 } else { 1 };
        let fg = [self.ext.gr[GR_ENABLE_SET_RESET], self.ext.gr[GR_FG_1]];
        let bg = [self.ext.gr[GR_SET_RESET], self.ext.gr[GR_BG_1]];
        let mut px = [0u8; 16];
        let span = 8 * pw;
        let Some(end) = a.checked_add(span).filter(|&e| e <= self.limit()) else { return };
        if !self.core.vram().read(a, &mut px[..span]) {
            return;
        }
        for bit in 0..8 {
            let colour = if v & (0x80 >> bit) != 0 {
                Some(fg)
            } else if mode == 5 {
                Some(bg)
            } else {
                None
            };
            if let Some(c) = colour {
                px[bit * pw..bit * pw + pw].copy_from_slice(&c[..pw]);
            }
        }
        if self.core.vram().write(a, &px[..span]) {
            self.core.mark_dirty(a, end - a);
        }
    }

    /// A CPU read of the legacy window at `offset` from 0xa0000.
    pub fn window_read(&mut self, offset: u64) -> u8 {
        if !self.extended() {
            return self.core.mem_read(offset);
        }
        let t = self.window_target(offset);
        self.target_read(t)
    }

    pub fn window_write(&mut self, offset: u64, v: u8) {
        if !self.extended() {
            return self.core.mem_write(offset, v);
        }
        // While a system-to-screen blit waits for data, the whole 64 KiB window is its FIFO.
        if offset < 0x1_0000 && self.blitter.awaiting_data() {
            return self.push_fifo(v);
        }
        let t = self.window_target(offset);
        self.target_write(t, v);
    }

    fn linear_read(&mut self, offset: u64) -> u8 {
        let t = self.linear_target(offset);
        self.target_read(t)
    }

    fn linear_write(&mut self, offset: u64, v: u8) {
        let t = self.linear_target(offset);
        self.target_write(t, v);
    }

    fn bar1_read(&mut self, offset: u64) -> u8 {
        if offset >= BAR1_BLT_OFFSET {
            self.blt_register_read((offset - BAR1_BLT_OFFSET) as u8)
        } else {
            self.io_read(BAR1_PORT_BASE + offset as u16)
        }
    }

    fn bar1_write(&mut self, offset: u64, v: u8) {
        if offset >= BAR1_BLT_OFFSET {
            if offset - BAR1_BLT_OFFSET < 0x100 {
                self.blt_register_write((offset - BAR1_BLT_OFFSET) as u8, v);
            }
        } else {
            self.io_write(BAR1_PORT_BASE + offset as u16, v);
        }
    }

    /// Whether linear BAR0 accesses may bypass the device [Q cirrus_update_memory_access].
    fn direct_linear_ok(&self) -> bool {
        let sr17 = self.ext.sr[SR_CONFIG];
        let g = self.ext.gr[GR_MODE_EXT];
        let mode = self.ext.gr[GR_MODE] & 7;
        sr17 & (SR17_MMIO_ENABLE | SR17_MMIO_USE_PCIADDR) != SR17_MMIO_ENABLE | SR17_MMIO_USE_PCIADDR
            && !self.blitter.awaiting_data()
            && g & (GRB_BY8 | GRB_BY16) == 0
            && !((4..=5).contains(&mode) && g & GRB_EXT_WRITE_MODES != 0)
    }

    /// Picks up BAR0's (new) place after a configuration write or restore.
    fn bar0_moved(&mut self) {
        self.bar0 = self.function.config().decoded_bars().into_iter().find(|b| b.index == 0).map(|b| b.base);
        self.update_mapping();
    }

    /// Maps VRAM at BAR0 when direct access is allowed and BAR0 decodes, unmaps it otherwise.
    fn update_mapping(&mut self) {
        let want = if self.direct_linear_ok() { self.bar0 } else { None };
        if want == self.mapped_at {
            return;
        }
        let service = self.core.vram_service().clone();
        let vram = self.core.vram().clone();
        if self.mapped_at.is_some() {
            service.map(&vram, None);
            self.mapped_at = None;
        }
        if let Some(gpa) = want {
            if service.map(&vram, Some(gpa)) {
                self.mapped_at = Some(gpa);
            }
        }
    }

    // ---- scanout ----

    /// What the CRTC scans out in an extended mode [Q cirrus_get_offsets, cirrus_get_resolution,
    /// cirrus_get_bpp].
    fn extended_scanout(&self) -> Option<LinearScanout> {
        let r = self.core.registers();
        if !self.extended() || r.gc[vga::GC_MISC] & vga::MISC_GRAPHICS == 0 {
            return None;
        }
        let sr7 = self.ext.sr[SR_EXT_MODE];
        let format = match sr7 & SR7_BPP_MASK {
            SR7_BPP_8 => PixelFormat::Indexed8,
            SR7_BPP_16 | SR7_BPP_16_DOUBLEVCLK if self.ext.hidden_dac & 0x0f == HDR_565 => PixelFormat::Rgb565,
            SR7_BPP_16 | SR7_BPP_16_DOUBLEVCLK => PixelFormat::Rgb555,
            SR7_BPP_24 => PixelFormat::Bgr24,
            SR7_BPP_32 => PixelFormat::Xrgb32,
            _ => PixelFormat::Indexed8,
        };
        let cr = &r.crtc;
        let stride = (usize::from(cr[CR_OFFSET]) | usize::from(cr[CR_EXT_DISPLAY] & CR1B_OFFSET_8) << 4) << 3;
        let start = (usize::from(cr[0x0c]) << 8)
            | usize::from(cr[0x0d])
            | usize::from(cr[CR_EXT_DISPLAY] & CR1B_START_16) << 16
            | usize::from(cr[CR_EXT_DISPLAY] & CR1B_START_17_18) << 15
            | usize::from(cr[CR_OVERLAY] & CR1D_START_19) << 12;
        let width = (u32::from(cr[0x01]) + 1) * 8;
        let o = u32::from(cr[0x07]);
        let mut height = (u32::from(cr[0x12]) | (o & 0x02) << 7 | (o & 0x40) << 3) + 1;
        if cr[CR_MISC_CONTROL] & CR1A_INTERLACE != 0 {
            height *= 2;
        }
        Some(LinearScanout { offset: start * 4, width, height, stride, format })
    }
}

impl Display for CirrusVga {
    fn refresh(&mut self, fb: &mut Framebuffer) {
        match self.extended_scanout() {
            Some(s) => self.core.refresh_linear(fb, &s),
            None => self.core.refresh(fb),
        }
    }

    fn invalidate(&mut self) {
        self.core.invalidate();
    }

    fn name(&self) -> &str {
        "cirrus-vga"
    }
}

/// The legacy ranges: ports 0x3b0..0x3df and the window 0xa0000..0xbffff (the bus hands over
/// absolute addresses; the two ranges cannot be confused).
impl BusDevice for CirrusVga {
    fn read(&mut self, addr: u64, data: &mut [u8]) {
        for (i, b) in data.iter_mut().enumerate() {
            let a = addr.wrapping_add(i as u64);
            *b = if (LEGACY_WINDOW.0..LEGACY_WINDOW.0 + LEGACY_WINDOW.1).contains(&a) {
                self.window_read(a - LEGACY_WINDOW.0)
            } else if a < 0x1_0000 {
                self.io_read(a as u16)
            } else {
                0xff
            };
        }
    }

    fn write(&mut self, addr: u64, data: &[u8]) {
        for (i, &b) in data.iter().enumerate() {
            let a = addr.wrapping_add(i as u64);
            if (LEGACY_WINDOW.0..LEGACY_WINDOW.0 + LEGACY_WINDOW.1).contains(&a) {
                self.window_write(a - LEGACY_WINDOW.0, b);
            } else if a < 0x1_0000 {
                self.io_write(a as u16, b);
            }
        }
    }
}

impl PciFunctionDevice for CirrusVga {
    fn function(&self) -> &PciFunction {
        &self.function
    }
    fn function_mut(&mut self) -> &mut PciFunction {
        &mut self.function
    }

    fn read_bar(&mut self, bar: u8, offset: u64, data: &mut [u8]) {
        if bar == crate::pci::config::ROM_BAR_INDEX {
            match &self.rom {
                Some(rom) => rom.read(offset, data),
                None => data.fill(0xff),
            }
            return;
        }
        for (i, b) in data.iter_mut().enumerate() {
            let o = offset.wrapping_add(i as u64);
            *b = match bar {
                0 => self.linear_read(o),
                1 => self.bar1_read(o),
                _ => 0xff,
            };
        }
    }

    fn write_bar(&mut self, bar: u8, offset: u64, data: &[u8]) {
        for (i, &b) in data.iter().enumerate() {
            let o = offset.wrapping_add(i as u64);
            match bar {
                0 => self.linear_write(o, b),
                1 => self.bar1_write(o, b),
                _ => {}
            }
        }
    }

    fn config_written(&mut self, _offset: u16, _data: &[u8]) {
        self.bar0_moved();
    }
}

/// Saved: the PCI function, the VGA core's registers, the Cirrus registers and VRAM. A blit in
/// progress is not saved (QEMU does not either); it is abandoned with its status bits clear.
impl Snapshot for CirrusVga {
    const ID: &'static str = "cirrus-vga";
    const VERSION: u16 = 1;

    fn save(&self, w: &mut StateWriter) {
        self.function.save(w);
        self.core.save(w);
        let e = &self.ext;
        w.u8(e.sr_index);
        w.bytes(&e.sr);
        w.u8(e.gr_index);
        w.bytes(&e.gr);
        w.u8(e.hidden_dac_lock);
        w.u8(e.hidden_dac);
        w.bytes(&e.hidden_palette);
        w.u16(e.cursor_x);
        w.u16(e.cursor_y);
        // VRAM as its non-zero pages (most of a card's memory is never drawn on); none on Xen,
        // where VRAM is guest memory that travels with the domain (display.md section 6).
        let vram = self.core.vram();
        if self.core.vram_service().vram_is_guest_memory() {
            w.u32(0);
            return;
        }
        let mut page = [0u8; PAGE];
        let pages: Vec<usize> = (0..vram.len() / PAGE)
            .filter(|&i| vram.read(i * PAGE, &mut page) && page.iter().any(|&b| b != 0))
            .collect();
        w.u32(pages.len() as u32);
        for i in pages {
            vram.read(i * PAGE, &mut page);
            w.u32(i as u32);
            w.bytes(&page);
        }
    }

    fn restore(&mut self, r: &mut StateReader<'_>) -> Result<(), StateError> {
        let function = self.function.load(r)?;
        let core = VgaCore::load(r)?;
        let sr_index = r.u8("sr_index")?;
        let sr: [u8; 256] = r.array("sr")?;
        let gr_index = r.u8("gr_index")?;
        let gr: [u8; 256] = r.array("gr")?;
        let hidden_dac_lock = r.u8("hidden_dac_lock")?;
        let hidden_dac = r.u8("hidden_dac")?;
        let hidden_palette: [u8; 48] = r.array("hidden_palette")?;
        let cursor_x = r.u16("cursor_x")?;
        let cursor_y = r.u16("cursor_y")?;
        let total = self.core.vram().len() / PAGE;
        let count = r.u32("vram.pages")? as usize;
        if count > total {
            return Err(r.invalid("vram.pages", format!("{count} pages, this card has {total}")));
        }
        let mut pages = Vec::with_capacity(count);
        for _ in 0..count {
            let index = r.u32("vram.page")? as usize;
            if index >= total || pages.last().is_some_and(|&(last, _)| last >= index) {
                return Err(r.invalid("vram.page", format!("page {index} out of order or past the {total} pages")));
            }
            let data: [u8; PAGE] = r.array("vram.data")?;
            pages.push((index, data));
        }
        r.finish()?;
        self.function.apply(function);
        self.core.apply(core);
        self.ext =
            Extended { sr_index, sr, gr_index, gr, hidden_dac_lock, hidden_dac, hidden_palette, cursor_x, cursor_y };
        self.blitter.reset();
        self.ext.gr[GR_BLT_STATUS] &= !(BLT_START | BLT_BUSY | BLT_FIFOUSED);
        if !self.core.vram_service().vram_is_guest_memory() {
            self.core.vram().clear();
        }
        for (index, data) in pages {
            self.core.vram().write(index * PAGE, &data);
        }
        self.core.mark_dirty(0, self.core.vram().len());
        self.bar0_moved();
        Ok(())
    }
}

/// What `-device cirrus-vga` asks for.
#[derive(Clone, Debug, Default)]
pub struct CirrusOptions {
    /// 4, 8 or 16 (QEMU's default 4; libxl passes 8).
    pub vgamem_mb: u32,
    pub slot: Option<u8>,
    /// The VGA BIOS image (`vgabios-cirrus.bin`), if any.
    pub rom: Option<Vec<u8>>,
}

/// Builds the card into the machine: PCI function, the VGA ports, the 0xa0000 window, the
/// display.
pub fn attach(
    builder: &mut crate::pc::DeviceBuilder,
    options: CirrusOptions,
) -> Result<Arc<std::sync::Mutex<CirrusVga>>, crate::pc::PcError> {
    let service = builder.platform.vram.clone();
    let clock = builder.platform.clock();
    let card = builder.try_add_pci_function("cirrus-vga", options.slot, |resources| {
        CirrusVga::new(options.vgamem_mb, service, clock, options.rom.as_deref(), resources)
    })?;
    builder.add_io("cirrus-vga", LEGACY_PORTS, card.clone())?;
    builder.add_mmio("cirrus-vga-window", LEGACY_WINDOW, card.clone())?;
    builder.add_display(card.clone());
    Ok(card)
}
