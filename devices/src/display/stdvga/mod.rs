//! QEMU's standard VGA, `-device VGA` / `-vga std` (1234:1111): the VGA core behind the legacy
//! ports and window, Bochs VBE ("DISPI") on ports 0x1ce/0x1cf/0x1d0 and in BAR2, VRAM as the
//! linear framebuffer in BAR0, and SeaVGABIOS in the expansion ROM BAR.
//!
//! BAR0 is the VRAM itself. When the backend maps it into the guest
//! ([`VramService::map`] returned true) guest accesses never reach the device and the backend
//! reports the pages written; otherwise every access traps here and is served from the same
//! memory, the device marking what it wrote.
//!
//! Differences from QEMU: the EDID is fixed (QEMU's default preferred mode 1280x800; no
//! `xres`/`yres`/`xmax`/`ymax` properties and no DisplayID extension block); 4 bpp VBE modes
//! are shown through the VGA registers SeaVGABIOS programs for them.

pub mod edid;
pub mod spec;
#[cfg(test)]
mod tests;

use std::sync::{Arc, Mutex};

use crate::bus::BusDevice;
use crate::clock::Clock;
use crate::display::vga::{spec as vga_spec, LinearScanout, PixelFormat, VgaCore, VgaRegisters};
use crate::display::{Display, Framebuffer, Vram, VramService};
use crate::pc::{DeviceBuilder, PcError};
use crate::pci::config::{BarKind, ConfigError, PciIds, ROM_BAR_INDEX};
use crate::pci::function::{PciFunction, PciFunctionDevice, PciFunctionState, PciResources};
use crate::pci::option_rom::OptionRom;
use crate::snapshot::{Snapshot, StateError, StateReader, StateWriter};
use spec::*;

/// The VRAM size QEMU gives `vgamem_mb=N`: clamped to 1..=512 MiB and rounded up to a power of
/// two [Q vga.c vga_common_init].
pub fn vram_size(vgamem_mb: u64) -> usize {
    let mb = vgamem_mb.clamp(VGAMEM_MIN_MB, VGAMEM_MAX_MB).next_power_of_two();
    (mb << 20) as usize
}

/// The DISPI registers and what QEMU derives from them.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Dispi {
    index: u16,
    regs: [u16; REGISTER_COUNT],
    /// Bytes per line and the byte offset of the visible area, valid while enabled.
    line_offset: usize,
    start: usize,
    /// Window bank: BANK * 64 KiB (0 after a non-enabling ENABLE write, as QEMU does).
    bank_offset: usize,
    big_endian: bool,
}

impl Dispi {
    fn new() -> Self {
        let mut regs = [0; REGISTER_COUNT];
        regs[INDEX_ID] = ID5;
        Dispi { index: 0, regs, line_offset: 0, start: 0, bank_offset: 0, big_endian: false }
    }

    fn enabled(&self) -> bool {
        self.regs[INDEX_ENABLE] & ENABLE_ENABLED != 0
    }

    /// QEMU's re-validation after every geometry write while enabled [Q vga.c vbe_fixup_regs]:
    /// the mode always fits in `vram` bytes.
    fn fixup(&mut self, vram: usize) {
        if !self.enabled() {
            return;
        }
        let r = &mut self.regs;
        if !matches!(r[INDEX_BPP], 4 | 8 | 15 | 16 | 24 | 32) {
            r[INDEX_BPP] = 8;
        }
        let bits = match r[INDEX_BPP] {
            15 => 16,
            b => b as usize,
        };
        r[INDEX_XRES] &= !7;
        if r[INDEX_XRES] == 0 {
            r[INDEX_XRES] = 8;
        }
        r[INDEX_XRES] = r[INDEX_XRES].min(MAX_XRES);
        r[INDEX_VIRT_WIDTH] &= !7;
        r[INDEX_VIRT_WIDTH] = r[INDEX_VIRT_WIDTH].min(MAX_XRES).max(r[INDEX_XRES]);
        let line = r[INDEX_VIRT_WIDTH] as usize * bits / 8;
        let max_y = vram / line.max(1);
        r[INDEX_YRES] = r[INDEX_YRES].clamp(1, MAX_YRES).min(max_y.min(u16::MAX as usize) as u16);
        r[INDEX_X_OFFSET] = r[INDEX_X_OFFSET].min(MAX_XRES);
        r[INDEX_Y_OFFSET] = r[INDEX_Y_OFFSET].min(MAX_YRES);
        let mut offset = r[INDEX_X_OFFSET] as usize * bits / 8 + r[INDEX_Y_OFFSET] as usize * line;
        if offset + r[INDEX_YRES] as usize * line > vram {
            r[INDEX_X_OFFSET] = 0;
            r[INDEX_Y_OFFSET] = 0;
            offset = 0;
        }
        r[INDEX_VIRT_HEIGHT] = max_y.min(u16::MAX as usize) as u16;
        self.line_offset = line;
        // QEMU keeps the start in 32-bit units.
        self.start = offset & !3;
    }

    fn scanout(&self) -> Option<LinearScanout> {
        if !self.enabled() {
            return None;
        }
        let format = match (self.regs[INDEX_BPP], self.big_endian) {
            (8, _) => PixelFormat::Indexed8,
            (15, false) => PixelFormat::Rgb555,
            (15, true) => PixelFormat::Rgb555BigEndian,
            (16, false) => PixelFormat::Rgb565,
            (16, true) => PixelFormat::Rgb565BigEndian,
            (24, _) => PixelFormat::Bgr24,
            (32, false) => PixelFormat::Xrgb32,
            (32, true) => PixelFormat::Xrgb32BigEndian,
            // 4 bpp: planar, shown through the VGA registers.
            _ => return None,
        };
        Some(LinearScanout {
            offset: self.start,
            width: self.regs[INDEX_XRES] as u32,
            height: self.regs[INDEX_YRES] as u32,
            stride: self.line_offset,
            format,
        })
    }
}

/// The standard VGA card.
pub struct StdVga {
    function: PciFunction,
    core: VgaCore,
    dispi: Dispi,
    rom: Option<OptionRom>,
    edid: [u8; 128],
    /// Where BAR0 decodes now, and whether the backend mapped the VRAM there.
    bar0: Option<u64>,
    bar0_mapped: bool,
}

impl std::fmt::Debug for StdVga {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StdVga").field("vram", self.core.vram()).field("dispi", &self.dispi).finish()
    }
}

impl StdVga {
    /// A card over `vram` (from `service`, whose size is a power of two of at least 1 MiB) with
    /// `rom` in its expansion ROM BAR.
    pub fn new(
        resources: PciResources,
        vram: Vram,
        service: Arc<dyn VramService>,
        clock: Arc<dyn Clock>,
        rom: Option<OptionRom>,
    ) -> Result<Self, ConfigError> {
        let ids = PciIds {
            vendor_id: VENDOR_ID,
            device_id: DEVICE_ID,
            revision_id: REVISION,
            class: CLASS,
            subclass: SUBCLASS,
            subsystem_vendor_id: SUBSYSTEM_VENDOR_ID,
            subsystem_id: SUBSYSTEM_ID,
            ..Default::default()
        };
        // The VGA has no interrupt pin (QEMU's doesn't either).
        let mut function = PciFunction::new(ids, None, resources);
        let config = function.config_mut();
        config.declare_bar(VRAM_BAR, BarKind::Memory32 { prefetchable: true }, vram.len() as u64)?;
        config.declare_bar(MMIO_BAR, BarKind::Memory32 { prefetchable: false }, MMIO_SIZE)?;
        if let Some(rom) = &rom {
            config.declare_rom(rom.bar_size())?;
        }
        Ok(StdVga {
            function,
            core: VgaCore::new(vram, service, clock),
            dispi: Dispi::new(),
            rom,
            edid: edid::generate(),
            bar0: None,
            bar0_mapped: false,
        })
    }

    pub fn core(&self) -> &VgaCore {
        &self.core
    }

    pub fn core_mut(&mut self) -> &mut VgaCore {
        &mut self.core
    }

    /// Whether the backend maps BAR0 (guest accesses bypass the device).
    pub fn bar0_mapped(&self) -> bool {
        self.bar0_mapped
    }

    fn vram_len(&self) -> usize {
        self.core.vram().len()
    }

    // ---- DISPI ----

    pub fn dispi_read(&self) -> u16 {
        let i = self.dispi.index as usize;
        let r = &self.dispi.regs;
        match i {
            INDEX_XRES if r[INDEX_ENABLE] & ENABLE_GETCAPS != 0 => MAX_XRES,
            INDEX_YRES if r[INDEX_ENABLE] & ENABLE_GETCAPS != 0 => MAX_YRES,
            INDEX_BPP if r[INDEX_ENABLE] & ENABLE_GETCAPS != 0 => MAX_BPP,
            _ if i < REGISTER_COUNT => r[i],
            INDEX_VIDEO_MEMORY_64K => (self.vram_len() >> 16).min(u16::MAX as usize) as u16,
            _ => 0,
        }
    }

    pub fn dispi_write(&mut self, v: u16) {
        let i = self.dispi.index as usize;
        let vram = self.vram_len();
        match i {
            INDEX_ID if (ID0..=ID5).contains(&v) => self.dispi.regs[INDEX_ID] = v,
            INDEX_ID => {}
            INDEX_XRES | INDEX_YRES | INDEX_BPP | INDEX_VIRT_WIDTH | INDEX_X_OFFSET | INDEX_Y_OFFSET => {
                self.dispi.regs[i] = v;
                self.dispi.fixup(vram);
            }
            INDEX_BANK => {
                let mask = ((vram >> 16).max(1) - 1) as u16;
                self.dispi.regs[INDEX_BANK] = v & mask;
                self.dispi.bank_offset = ((v & mask) as usize) << 16;
            }
            INDEX_ENABLE => {
                if v & ENABLE_ENABLED != 0 && !self.dispi.enabled() {
                    let r = &mut self.dispi.regs;
                    r[INDEX_VIRT_WIDTH] = 0;
                    r[INDEX_X_OFFSET] = 0;
                    r[INDEX_Y_OFFSET] = 0;
                    r[INDEX_ENABLE] |= ENABLE_ENABLED;
                    self.dispi.fixup(vram);
                    if v & ENABLE_NOCLEARMEM == 0 {
                        let len = (self.dispi.regs[INDEX_YRES] as usize * self.dispi.line_offset).min(vram);
                        self.clear_vram(len);
                    }
                } else {
                    self.dispi.bank_offset = 0;
                }
                self.core.set_dac_8bit(v & ENABLE_8BIT_DAC != 0);
                self.dispi.regs[INDEX_ENABLE] = v;
            }
            // VIRT_HEIGHT is derived; other indexes are not registers.
            _ => {}
        }
        self.apply_window();
    }

    fn clear_vram(&mut self, len: usize) {
        let zero = [0u8; 4096];
        let mut at = 0;
        while at < len {
            let n = (len - at).min(zero.len());
            self.core.vram().write(at, &zero[..n]);
            at += n;
        }
        self.core.mark_dirty(0, len);
    }

    /// The legacy window follows VBE: 64 KiB of chain-4 memory at the bank while a packed-pixel
    /// mode is enabled [Q vga.c vbe_update_vgaregs].
    fn apply_window(&mut self) {
        let linear = self.dispi.enabled() && self.dispi.regs[INDEX_BPP] != 4;
        self.core.set_linear_window(linear);
        self.core.set_bank_offset(self.dispi.bank_offset);
    }

    /// The DISPI ports: 16-bit index at 0x1ce, data at 0x1cf and 0x1d0. A dword at 0x1ce is
    /// the index then the data.
    fn dispi_port_read(&mut self, port: u16, data: &mut [u8]) {
        let v = match port {
            PORT_DISPI_INDEX => self.dispi.index,
            PORT_DISPI_DATA | PORT_DISPI_DATA_ALT => self.dispi_read(),
            _ => 0xffff,
        };
        let bytes = v.to_le_bytes();
        for (i, b) in data.iter_mut().enumerate() {
            *b = bytes.get(i).copied().unwrap_or(0xff);
        }
    }

    fn dispi_port_write(&mut self, port: u16, data: &[u8]) {
        let word = |d: &[u8]| u16::from_le_bytes([d.first().copied().unwrap_or(0), d.get(1).copied().unwrap_or(0)]);
        match (port, data.len()) {
            (PORT_DISPI_INDEX, 4) => {
                self.dispi.index = word(data);
                self.dispi_write(word(&data[2..]));
            }
            (PORT_DISPI_INDEX, _) => self.dispi.index = word(data),
            (PORT_DISPI_DATA | PORT_DISPI_DATA_ALT, _) => self.dispi_write(word(data)),
            _ => {}
        }
    }

    // ---- BAR2 ----

    fn mmio_read(&mut self, offset: u64, data: &mut [u8]) {
        let len = data.len() as u64;
        match offset {
            o if o + len <= MMIO_EDID + MMIO_EDID_SIZE => {
                for (i, b) in data.iter_mut().enumerate() {
                    *b = self.edid.get((o - MMIO_EDID) as usize + i).copied().unwrap_or(0);
                }
            }
            o if (MMIO_VGA..MMIO_VGA + MMIO_VGA_SIZE).contains(&o) && o + len <= MMIO_VGA + MMIO_VGA_SIZE => {
                self.core.io_read_bytes(MMIO_VGA_PORT_BASE + (o - MMIO_VGA) as u16, data)
            }
            o if (MMIO_DISPI..MMIO_DISPI + MMIO_DISPI_SIZE).contains(&o) && o % 2 == 0 && len <= 2 => {
                // As QEMU does, an MMIO access selects the index first.
                self.dispi.index = ((o - MMIO_DISPI) / 2) as u16;
                let v = self.dispi_read().to_le_bytes();
                data.copy_from_slice(&v[..data.len()]);
            }
            MMIO_QEXT if len == 4 => data.copy_from_slice(&QEXT_SIZE.to_le_bytes()),
            MMIO_QEXT_BYTE_ORDER if len == 4 => {
                let v = if self.dispi.big_endian { BYTE_ORDER_BIG } else { BYTE_ORDER_LITTLE };
                data.copy_from_slice(&v.to_le_bytes())
            }
            _ => data.fill(0xff),
        }
    }

    fn mmio_write(&mut self, offset: u64, data: &[u8]) {
        let len = data.len() as u64;
        match offset {
            o if (MMIO_VGA..MMIO_VGA + MMIO_VGA_SIZE).contains(&o) && o + len <= MMIO_VGA + MMIO_VGA_SIZE => {
                self.core.io_write_bytes(MMIO_VGA_PORT_BASE + (o - MMIO_VGA) as u16, data)
            }
            o if (MMIO_DISPI..MMIO_DISPI + MMIO_DISPI_SIZE).contains(&o) && o % 2 == 0 && (1..=2).contains(&len) => {
                self.dispi.index = ((o - MMIO_DISPI) / 2) as u16;
                let v = u16::from_le_bytes([data[0], data.get(1).copied().unwrap_or(0)]);
                self.dispi_write(v);
            }
            MMIO_QEXT_BYTE_ORDER if len == 4 => {
                match u32::from_le_bytes([data[0], data[1], data[2], data[3]]) {
                    BYTE_ORDER_LITTLE => self.dispi.big_endian = false,
                    BYTE_ORDER_BIG => self.dispi.big_endian = true,
                    _ => {}
                }
                self.core.invalidate();
            }
            _ => {}
        }
    }

    /// Tells the backend where BAR0 decodes now (after configuration writes and restores).
    fn sync_bar0(&mut self) {
        let base = self.function.config().decoded_bars().iter().find(|b| b.index == VRAM_BAR).map(|b| b.base);
        if base != self.bar0 {
            self.bar0 = base;
            self.bar0_mapped = self.core.vram_service().map(self.core.vram(), base) && base.is_some();
            // Whatever the guest wrote while the mapping changed is unknown: redraw.
            self.core.mark_dirty(0, self.vram_len());
        }
    }
}

impl PciFunctionDevice for StdVga {
    fn function(&self) -> &PciFunction {
        &self.function
    }

    fn function_mut(&mut self) -> &mut PciFunction {
        &mut self.function
    }

    fn read_bar(&mut self, bar: u8, offset: u64, data: &mut [u8]) {
        match bar {
            VRAM_BAR => {
                let ok = usize::try_from(offset).is_ok_and(|o| self.core.vram().read(o, data));
                if !ok {
                    data.fill(0xff);
                }
            }
            MMIO_BAR => self.mmio_read(offset, data),
            ROM_BAR_INDEX => match &self.rom {
                Some(rom) => rom.read(offset, data),
                None => data.fill(0xff),
            },
            _ => data.fill(0xff),
        }
    }

    fn write_bar(&mut self, bar: u8, offset: u64, data: &[u8]) {
        match bar {
            VRAM_BAR => {
                if let Ok(o) = usize::try_from(offset) {
                    if self.core.vram().write(o, data) {
                        self.core.mark_dirty(o, data.len());
                    }
                }
            }
            MMIO_BAR => self.mmio_write(offset, data),
            _ => {}
        }
    }

    fn config_written(&mut self, _offset: u16, _data: &[u8]) {
        self.sync_bar0();
    }
}

impl Display for StdVga {
    fn refresh(&mut self, fb: &mut Framebuffer) {
        match self.dispi.scanout() {
            Some(scanout) => self.core.refresh_linear(fb, &scanout),
            None => self.core.refresh(fb),
        }
    }

    fn invalidate(&mut self) {
        self.core.invalidate();
    }

    fn name(&self) -> &str {
        "VGA"
    }
}

/// What a restore read, checked, not yet applied.
struct Restored {
    function: PciFunctionState,
    vga: VgaRegisters,
    dispi: Dispi,
    vram: Option<Vec<u8>>,
}

impl StdVga {
    fn load_all(&self, r: &mut StateReader<'_>) -> Result<Restored, StateError> {
        let function = self.function.load(r)?;
        let vga = VgaCore::load(r)?;
        let mut dispi = Dispi::new();
        dispi.index = r.u16("dispi.index")?;
        for (i, reg) in dispi.regs.iter_mut().enumerate() {
            *reg = r.u16(&format!("dispi.reg{i}"))?;
        }
        dispi.big_endian = r.bool("dispi.big_endian")?;
        let bank = dispi.regs[INDEX_BANK] as usize;
        if bank << 16 >= self.vram_len() {
            return Err(r.invalid("dispi.reg5", "the bank is outside video memory"));
        }
        dispi.bank_offset = if r.bool("dispi.bank_active")? { bank << 16 } else { 0 };
        // Derived values come from the registers, re-validated as a guest write would.
        dispi.fixup(self.vram_len());
        let vram = r.option("vram", |r| r.blob("vram", self.vram_len()))?;
        if vram.as_ref().is_some_and(|v| v.len() != self.vram_len()) {
            return Err(r.invalid("vram", "the saved video memory has a different size"));
        }
        r.finish()?;
        Ok(Restored { function, vga, dispi, vram })
    }
}

impl Snapshot for StdVga {
    const ID: &'static str = "vga";
    const VERSION: u16 = 1;

    fn save(&self, w: &mut StateWriter) {
        self.function.save(w);
        self.core.save(w);
        w.u16(self.dispi.index);
        for &reg in &self.dispi.regs {
            w.u16(reg);
        }
        w.bool(self.dispi.big_endian);
        w.bool(self.dispi.bank_offset != 0);
        // On Xen the VRAM is guest memory and travels with the domain (display.md section 6).
        let vram = (!self.core.vram_service().vram_is_guest_memory()).then(|| {
            let mut bytes = vec![0u8; self.vram_len()];
            self.core.vram().read(0, &mut bytes);
            bytes
        });
        w.option(vram.as_ref(), |w, v| w.blob(v));
    }

    fn restore(&mut self, r: &mut StateReader<'_>) -> Result<(), StateError> {
        let s = self.load_all(r)?;
        self.function.apply(s.function);
        self.core.apply(s.vga);
        self.core.set_dac_8bit(s.dispi.regs[INDEX_ENABLE] & ENABLE_8BIT_DAC != 0);
        self.dispi = s.dispi;
        if let Some(v) = s.vram {
            self.core.vram().write(0, &v);
        }
        self.apply_window();
        self.bar0 = None;
        self.sync_bar0();
        Ok(())
    }
}

// ---- bus attachment ----

/// The legacy VGA ports and the DISPI ports, forwarded to the card.
pub struct StdVgaPorts(pub Arc<Mutex<StdVga>>);

impl BusDevice for StdVgaPorts {
    fn read(&mut self, addr: u64, data: &mut [u8]) {
        let mut vga = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let port = addr as u16;
        if (DISPI_PORTS.0..DISPI_PORTS.0 + DISPI_PORTS.1).contains(&port) {
            vga.dispi_port_read(port, data)
        } else {
            vga.core.io_read_bytes(port, data)
        }
    }

    fn write(&mut self, addr: u64, data: &[u8]) {
        let mut vga = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let port = addr as u16;
        if (DISPI_PORTS.0..DISPI_PORTS.0 + DISPI_PORTS.1).contains(&port) {
            vga.dispi_port_write(port, data)
        } else {
            vga.core.io_write_bytes(port, data)
        }
    }
}

/// The legacy memory window 0xa0000-0xbffff, forwarded to the card.
pub struct StdVgaWindow(pub Arc<Mutex<StdVga>>);

impl BusDevice for StdVgaWindow {
    fn read(&mut self, addr: u64, data: &mut [u8]) {
        let mut vga = self.0.lock().unwrap_or_else(|e| e.into_inner());
        vga.core.mem_read_bytes(addr.wrapping_sub(vga_spec::WINDOW_BASE), data)
    }

    fn write(&mut self, addr: u64, data: &[u8]) {
        let mut vga = self.0.lock().unwrap_or_else(|e| e.into_inner());
        vga.core.mem_write_bytes(addr.wrapping_sub(vga_spec::WINDOW_BASE), data)
    }
}

/// What `-device VGA` asks for.
#[derive(Clone, Debug, Default)]
pub struct StdVgaOptions {
    pub vgamem_mb: Option<u64>,
    pub slot: Option<u8>,
    /// The ROM image (already read from its file), if any.
    pub rom: Option<Vec<u8>>,
}

/// Builds the card into the machine: PCI function, legacy ports, the window, the display.
pub fn attach(builder: &mut DeviceBuilder, options: StdVgaOptions) -> Result<Arc<Mutex<StdVga>>, PcError> {
    let size = vram_size(options.vgamem_mb.unwrap_or(VGAMEM_DEFAULT_MB));
    let service = builder.platform.vram.clone();
    let vram = service.allocate(size).map_err(|e| PcError::Resource { device: "VGA".into(), why: e.to_string() })?;
    let rom = match options.rom {
        Some(image) => Some(
            OptionRom::new(&image, VENDOR_ID, DEVICE_ID)
                .map_err(|e| PcError::Resource { device: "VGA".into(), why: format!("option ROM: {e}") })?,
        ),
        None => None,
    };
    let clock = builder.platform.clock();
    let vga = builder
        .try_add_pci_function("VGA", options.slot, |resources| StdVga::new(resources, vram, service, clock, rom))?;
    let ports = Arc::new(Mutex::new(StdVgaPorts(vga.clone())));
    builder.add_io("vga", vga_spec::PORTS, ports.clone())?;
    builder.add_io("vbe-dispi", DISPI_PORTS, ports)?;
    builder.add_mmio(
        "vga-window",
        (vga_spec::WINDOW_BASE, vga_spec::WINDOW_SIZE),
        Arc::new(Mutex::new(StdVgaWindow(vga.clone()))),
    )?;
    builder.add_display(vga.clone());
    Ok(vga)
}
