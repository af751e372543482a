//! Scanout: from VGA registers and VRAM to host pixels.
//!
//! Geometry follows the CRTC as QEMU v7.2 interprets it [Q vga_draw_text, vga_draw_graphic,
//! vga_get_offsets, vga_get_resolution], so guests see the same picture size: the display is
//! `(CR01 + 1) * 8` dots wide (doubled with the dot clock halved) and `vertical display end +
//! 1` scan lines high; 256-colour modes show each byte as two dots (mode 13h is 640x400).

use super::spec::*;
use super::{plane_mask, VgaCore};
use crate::display::Framebuffer;

/// A linear framebuffer a card scans out (VBE, Cirrus extended modes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinearScanout {
    /// Byte offset of the first pixel in VRAM.
    pub offset: usize,
    pub width: u32,
    pub height: u32,
    /// Bytes from one line to the next.
    pub stride: usize,
    pub format: PixelFormat,
}

/// Pixel formats of linear modes, little-endian in memory unless stated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PixelFormat {
    /// One byte through the DAC palette.
    Indexed8,
    /// x:1 r:5 g:5 b:5.
    Rgb555,
    /// r:5 g:6 b:5.
    Rgb565,
    /// Bytes blue, green, red.
    Bgr24,
    /// Bytes blue, green, red, unused (XRGB8888).
    Xrgb32,
    /// Bytes unused, red, green, blue (QEMU's big-endian framebuffer byte order).
    Xrgb32BigEndian,
    /// r:5 g:6 b:5 stored big-endian.
    Rgb565BigEndian,
    /// x:1 r:5 g:5 b:5 stored big-endian.
    Rgb555BigEndian,
}

impl PixelFormat {
    pub fn bytes_per_pixel(self) -> usize {
        match self {
            PixelFormat::Indexed8 => 1,
            PixelFormat::Rgb555 | PixelFormat::Rgb565 | PixelFormat::Rgb565BigEndian | PixelFormat::Rgb555BigEndian => {
                2
            }
            PixelFormat::Bgr24 => 3,
            PixelFormat::Xrgb32 | PixelFormat::Xrgb32BigEndian => 4,
        }
    }
}

/// What was drawn last, so a refresh can tell what changed.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Mode {
    Blank,
    Text(TextGeometry),
    Graphics(GraphicsGeometry),
    Linear(LinearScanout),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct TextGeometry {
    columns: usize,
    rows: usize,
    char_width: usize,
    char_height: usize,
    /// 9-dot characters (before doubling).
    nine_dot: bool,
    double: bool,
    start: usize,
    line_cells: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Shift {
    Planar4,
    Cga2,
    Byte256,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct GraphicsGeometry {
    shift: Shift,
    double: bool,
    width: usize,
    height: usize,
    start: usize,
    line_offset: usize,
    multi_scan: usize,
    line_compare: usize,
    crtc_mode: u8,
    plane_enable: u8,
}

#[derive(Default)]
pub(crate) struct RenderCache {
    full: bool,
    mode: Option<Mode>,
    palette16: [u32; 16],
    palette256: Vec<u32>,
    cells: Vec<u16>,
    font: Vec<u8>,
    cursor: Option<(usize, usize, usize)>,
    cursor_on: bool,
    blink_on: bool,
}

impl RenderCache {
    pub(crate) fn invalidate(&mut self) {
        self.full = true;
    }
}

fn dac_colour(palette: &[u8], index: usize, eight_bit: bool) -> u32 {
    let c = |v: u8| {
        if eight_bit {
            v as u32
        } else {
            let v = (v & 0x3f) as u32;
            (v << 2) | (v >> 4)
        }
    };
    let at = index * 3;
    (c(palette[at]) << 16) | (c(palette[at + 1]) << 8) | c(palette[at + 2])
}

/// Copies `buf.len()` bytes of VRAM from `offset`, wrapping at `span` (at most the VRAM size).
fn read_wrapped(core: &VgaCore, offset: usize, span: usize, buf: &mut [u8]) {
    let span = span.min(core.vram.len());
    if span == 0 {
        buf.fill(0);
        return;
    }
    let mut at = offset % span;
    let mut done = 0;
    while done < buf.len() {
        let n = (span - at).min(buf.len() - done);
        if !core.vram.read(at, &mut buf[done..done + n]) {
            buf[done..done + n].fill(0);
        }
        done += n;
        at = 0;
    }
}

fn ensure_size(fb: &mut Framebuffer, width: usize, height: usize) -> bool {
    if fb.width() as usize != width || fb.height() as usize != height {
        return fb.resize(width as u32, height as u32);
    }
    true
}

fn vertical_display_end(crtc: &[u8; CRTC_COUNT]) -> usize {
    let o = crtc[CRTC_OVERFLOW] as usize;
    crtc[CRTC_V_DISPLAY_END] as usize | (o & 0x02) << 7 | (o & 0x40) << 3
}

pub(crate) fn refresh_vga(core: &mut VgaCore, fb: &mut Framebuffer) {
    let palette_changed = update_palettes(core);
    if core.blanked() {
        return draw_blank(core, fb);
    }
    if core.regs.gc[GC_MISC] & MISC_GRAPHICS == 0 {
        draw_text(core, fb, palette_changed)
    } else {
        draw_graphics(core, fb, palette_changed)
    }
}

pub(crate) fn refresh_linear(core: &mut VgaCore, fb: &mut Framebuffer, scanout: &LinearScanout) {
    let palette_changed = update_palettes(core);
    if core.blanked() {
        return draw_blank(core, fb);
    }
    draw_linear(core, fb, scanout, palette_changed && scanout.format == PixelFormat::Indexed8)
}

/// Recomputes the 16- and 256-entry palettes; true when either changed.
fn update_palettes(core: &mut VgaCore) -> bool {
    let r = &core.regs;
    let mut p16 = [0u32; 16];
    for (i, p) in p16.iter_mut().enumerate() {
        let v = r.attr[i] as usize;
        let index = if r.attr[ATTR_MODE] & ATTR_MODE_P54 != 0 {
            ((r.attr[ATTR_COLOR_SELECT] as usize & 0x0f) << 4) | (v & 0x0f)
        } else {
            ((r.attr[ATTR_COLOR_SELECT] as usize & 0x0c) << 4) | (v & 0x3f)
        };
        *p = dac_colour(&r.palette, index, core.dac_8bit);
    }
    let p256: Vec<u32> = (0..DAC_ENTRIES).map(|i| dac_colour(&r.palette, i, core.dac_8bit)).collect();
    let cache = &mut core.render;
    let changed = cache.palette16 != p16 || cache.palette256 != p256;
    cache.palette16 = p16;
    cache.palette256 = p256;
    changed
}

/// Starts drawing `mode`: returns whether everything must be redrawn.
fn begin(core: &mut VgaCore, fb: &mut Framebuffer, mode: Mode, width: usize, height: usize) -> Option<bool> {
    if !ensure_size(fb, width, height) {
        return None;
    }
    let cache = &mut core.render;
    let full = cache.full || cache.mode.as_ref() != Some(&mode);
    if cache.mode.as_ref() != Some(&mode) {
        fb.mark_all_dirty();
    }
    cache.full = false;
    cache.mode = Some(mode);
    Some(full)
}

fn draw_blank(core: &mut VgaCore, fb: &mut Framebuffer) {
    let (w, h) = match (fb.width(), fb.height()) {
        (0, _) | (_, 0) => (640, 480),
        (w, h) => (w as usize, h as usize),
    };
    let Some(full) = begin(core, fb, Mode::Blank, w, h) else { return };
    if full {
        let black = vec![0u32; w];
        for y in 0..h {
            fb.update_row(0, y as u32, &black);
        }
    }
}

// ---- text ----

fn text_geometry(core: &VgaCore) -> TextGeometry {
    let r = &core.regs;
    let nine_dot = r.seq[SEQ_CLOCKING] & CLOCKING_8DOT == 0;
    let double = r.seq[SEQ_CLOCKING] & CLOCKING_DOT_DIV2 != 0;
    let char_width = if nine_dot { 9 } else { 8 } * if double { 2 } else { 1 };
    let char_height = (r.crtc[CRTC_MAX_SCAN] & 0x1f) as usize + 1;
    let columns = r.crtc[CRTC_H_DISPLAY_END] as usize + 1;
    let rows = ((vertical_display_end(&r.crtc) + 1) / char_height).max(1);
    TextGeometry {
        columns,
        rows,
        char_width,
        char_height,
        nine_dot,
        double,
        start: (r.crtc[CRTC_START_HIGH] as usize) << 8 | r.crtc[CRTC_START_LOW] as usize,
        line_cells: r.crtc[CRTC_OFFSET] as usize * 2,
    }
}

/// The glyph bytes of both selected character maps: map B (attribute bit 3 clear) then map A,
/// 256 glyphs of 32 lines each [IBM "Character Map Select Register"].
fn read_fonts(core: &VgaCore) -> Vec<u8> {
    let v = core.regs.seq[SEQ_CHAR_MAP] as usize;
    let map_b = ((v >> 4) & 1) | ((v << 1) & 6);
    let map_a = ((v >> 5) & 1) | ((v >> 1) & 6);
    let mut out = vec![0u8; 2 * 256 * GLYPH_LINES];
    let mut glyph = [0u8; 4 * GLYPH_LINES];
    for (m, map) in [map_b, map_a].into_iter().enumerate() {
        for ch in 0..256 {
            let at = (map * FONT_MAP_STRIDE + ch * GLYPH_LINES) * 4;
            read_wrapped(core, at, PLANAR_SPAN, &mut glyph);
            let dst = &mut out[(m * 256 + ch) * GLYPH_LINES..][..GLYPH_LINES];
            for (line, d) in dst.iter_mut().enumerate() {
                *d = glyph[line * 4 + 2];
            }
        }
    }
    out
}

fn draw_text(core: &mut VgaCore, fb: &mut Framebuffer, palette_changed: bool) {
    let g = text_geometry(core);
    let (width, height) = (g.columns * g.char_width, g.rows * g.char_height);
    let Some(mut full) = begin(core, fb, Mode::Text(g), width, height) else { return };
    full |= palette_changed;

    // Fonts live in plane 2 of the first 256 KiB; re-read them only when that memory changed.
    if full || core.dirty.any(0, PLANAR_SPAN) || core.render.font.is_empty() {
        let font = read_fonts(core);
        if font != core.render.font {
            core.render.font = font;
            full = true;
        }
    }

    let now = core.clock.monotonic_ns();
    let cursor_on = (now / CURSOR_BLINK_NS).is_multiple_of(2);
    let blink_on = (now / CHAR_BLINK_NS).is_multiple_of(2);
    let r = &core.regs;
    let blink_enabled = r.attr[ATTR_MODE] & ATTR_MODE_BLINK != 0;
    let line_graphics = r.attr[ATTR_MODE] & ATTR_MODE_LINE_GRAPHICS != 0;
    let cursor_address = (r.crtc[CRTC_CURSOR_HIGH] as usize) << 8 | r.crtc[CRTC_CURSOR_LOW] as usize;
    let cursor_start = (r.crtc[CRTC_CURSOR_START] & 0x1f) as usize;
    let cursor_end = (r.crtc[CRTC_CURSOR_END] & 0x1f) as usize;
    // The cursor's cell: its address relative to the start, split by the line offset.
    let cursor = (r.crtc[CRTC_CURSOR_START] & CURSOR_OFF == 0 && cursor_start <= cursor_end)
        .then(|| {
            let rel = cursor_address.wrapping_sub(g.start) & 0xffff;
            let (row, col) = (rel.checked_div(g.line_cells)?, rel.checked_rem(g.line_cells)?);
            (col < g.columns && row < g.rows && cursor_start < g.char_height).then_some(row * g.columns + col)
        })
        .flatten()
        .map(|cell| (cell, cursor_start, cursor_end.min(g.char_height - 1)));

    let cells = g.columns * g.rows;
    if core.render.cells.len() != cells {
        core.render.cells = vec![0; cells];
        full = true;
    }
    let blink_changed = blink_on != core.render.blink_on;
    let cursor_changed = cursor != core.render.cursor || cursor_on != core.render.cursor_on;
    let old_cursor = core.render.cursor.map(|c| c.0);
    if !full && !blink_changed && !cursor_changed && !core.dirty.any(0, PLANAR_SPAN) {
        return;
    }

    let palette = core.render.palette16;
    let mut row_bytes = vec![0u8; g.columns * 4];
    let mut pixels = vec![0u32; width * g.char_height];
    for row in 0..g.rows {
        let address = (g.start + row * g.line_cells) * 4;
        read_wrapped(core, address, PLANAR_SPAN, &mut row_bytes);
        let mut row_dirty = full;
        for col in 0..g.columns {
            let cell = u16::from_le_bytes([row_bytes[col * 4], row_bytes[col * 4 + 1]]);
            let index = row * g.columns + col;
            let blinking = blink_enabled && cell & 0x8000 != 0;
            let at_cursor = cursor.map(|c| c.0) == Some(index) || old_cursor == Some(index);
            if core.render.cells[index] != cell || (blinking && blink_changed) || (at_cursor && cursor_changed) {
                row_dirty = true;
                core.render.cells[index] = cell;
            }
        }
        if !row_dirty {
            continue;
        }
        for col in 0..g.columns {
            let index = row * g.columns + col;
            let [ch, attr] = core.render.cells[index].to_le_bytes();
            let mut fg = (attr & 0x0f) as usize;
            let mut bg = (attr >> 4) as usize;
            if blink_enabled {
                bg &= 7;
                if attr & 0x80 != 0 && !blink_on {
                    fg = bg;
                }
            }
            let (fg, bg) = (palette[fg], palette[bg]);
            let map = ((attr >> 3) & 1) as usize;
            let glyph = &core.render.font[(map * 256 + ch as usize) * GLYPH_LINES..][..GLYPH_LINES];
            let ninth_repeats = line_graphics && (0xc0..=0xdf).contains(&ch);
            for line in 0..g.char_height {
                let bits = glyph[line];
                let cursor_line =
                    cursor_on && cursor.is_some_and(|(c, start, end)| c == index && (start..=end).contains(&line));
                let dst = &mut pixels[line * width + col * g.char_width..][..g.char_width];
                let dots = if g.nine_dot { 9 } else { 8 };
                let scale = if g.double { 2 } else { 1 };
                for dot in 0..dots {
                    let on = if dot < 8 { bits & (0x80 >> dot) != 0 } else { ninth_repeats && bits & 1 != 0 };
                    let colour = if on || cursor_line { fg } else { bg };
                    dst[dot * scale..(dot + 1) * scale].fill(colour);
                }
            }
        }
        for line in 0..g.char_height {
            fb.update_row(0, (row * g.char_height + line) as u32, &pixels[line * width..(line + 1) * width]);
        }
    }
    core.render.cursor = cursor;
    core.render.cursor_on = cursor_on;
    core.render.blink_on = blink_on;
}

// ---- graphics ----

fn graphics_geometry(core: &VgaCore) -> GraphicsGeometry {
    let r = &core.regs;
    let shift = match (r.gc[GC_MODE] >> MODE_SHIFT_SHIFT) & 3 {
        0 => Shift::Planar4,
        1 => Shift::Cga2,
        _ => Shift::Byte256,
    };
    let double = shift != Shift::Byte256 && r.seq[SEQ_CLOCKING] & CLOCKING_DOT_DIV2 != 0;
    let mut width = (r.crtc[CRTC_H_DISPLAY_END] as usize + 1) * 8;
    if double {
        width *= 2;
    }
    let double_scan = (r.crtc[CRTC_MAX_SCAN] >> 7) as usize;
    // CGA modes ignore the maximum scan line; their lines come from the address interleave.
    let multi_scan = if shift == Shift::Cga2 {
        double_scan
    } else {
        (((r.crtc[CRTC_MAX_SCAN] & 0x1f) as usize + 1) << double_scan) - 1
    };
    let o = r.crtc[CRTC_OVERFLOW] as usize;
    GraphicsGeometry {
        shift,
        double,
        width,
        height: vertical_display_end(&r.crtc) + 1,
        start: ((r.crtc[CRTC_START_HIGH] as usize) << 8 | r.crtc[CRTC_START_LOW] as usize) * 4,
        line_offset: (r.crtc[CRTC_OFFSET] as usize) << 3,
        multi_scan,
        line_compare: r.crtc[CRTC_LINE_COMPARE] as usize
            | (o & 0x10) << 4
            | ((r.crtc[CRTC_MAX_SCAN] as usize) & 0x40) << 3,
        crtc_mode: r.crtc[CRTC_MODE],
        plane_enable: r.attr[ATTR_PLANE_ENABLE] & 0x0f,
    }
}

fn draw_graphics(core: &mut VgaCore, fb: &mut Framebuffer, palette_changed: bool) {
    let g = graphics_geometry(core);
    let Some(full) = begin(core, fb, Mode::Graphics(g), g.width, g.height) else { return };
    let full = full || palette_changed;
    // Words of four planes per line: 8 dots each, 16 when every dot is doubled.
    let words = if g.double { g.width / 16 } else { g.width / 8 };
    let mut bytes = vec![0u8; words * 4];
    let mut line = vec![0u32; g.width];
    // The CRTC address counter wraps at 256 KiB.
    let span = PLANAR_SPAN;
    let mut row_start = g.start;
    let mut y1 = 0usize;
    let mut multi_run = g.multi_scan;
    let p16 = core.render.palette16;
    for y in 0..g.height {
        let mut address = row_start;
        if g.crtc_mode & MODE_NO_CGA_INTERLEAVE == 0 {
            let bit = 14 + ((g.crtc_mode >> 6) & 1) as usize;
            address = (address & !(1 << bit)) | ((y1 & 1) << bit);
        }
        if g.crtc_mode & MODE_NO_HGC_INTERLEAVE == 0 {
            address = (address & !0x8000) | ((y1 & 2) << 14);
        }
        let address = address % span;
        if full || core.dirty.any(address, bytes.len()) {
            read_wrapped(core, address, span, &mut bytes);
            let mask = plane_mask(g.plane_enable);
            let scale = if g.double { 2 } else { 1 };
            for (w, chunk) in bytes.chunks_exact(4).enumerate() {
                let word = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
                let dst = &mut line[w * 8 * scale..(w + 1) * 8 * scale];
                match g.shift {
                    Shift::Planar4 => {
                        let word = word & mask;
                        for dot in 0..8 {
                            let c =
                                (0..4).fold(0usize, |c, p| c | ((((word >> (8 * p)) >> (7 - dot)) & 1) as usize) << p);
                            dst[dot * scale..(dot + 1) * scale].fill(p16[c]);
                        }
                    }
                    Shift::Cga2 => {
                        let word = word & mask;
                        let plane = |p: u32| (word >> (8 * p)) as u8;
                        for dot in 0..8 {
                            let (lo, hi) = if dot < 4 { (plane(0), plane(2)) } else { (plane(1), plane(3)) };
                            let s = 6 - 2 * (dot % 4);
                            let c = ((lo >> s) & 3) as usize | (((hi >> s) & 3) as usize) << 2;
                            dst[dot * scale..(dot + 1) * scale].fill(p16[c]);
                        }
                    }
                    Shift::Byte256 => {
                        for (i, &b) in chunk.iter().enumerate() {
                            let c = core.render.palette256[b as usize];
                            dst[i * 2..i * 2 + 2].fill(c);
                        }
                    }
                }
            }
            fb.update_row(0, y as u32, &line);
        }
        if multi_run == 0 {
            let mask = (g.crtc_mode as usize & 3) ^ 3;
            if y1 & mask == mask {
                row_start += g.line_offset;
            }
            y1 += 1;
            multi_run = g.multi_scan;
        } else {
            multi_run -= 1;
        }
        if y == g.line_compare {
            row_start = 0;
        }
    }
}

// ---- linear ----

fn draw_linear(core: &mut VgaCore, fb: &mut Framebuffer, s: &LinearScanout, palette_changed: bool) {
    let (width, height) = (s.width as usize, s.height as usize);
    let Some(full) = begin(core, fb, Mode::Linear(*s), width, height) else { return };
    let full = full || palette_changed;
    let bpp = s.format.bytes_per_pixel();
    let Some(line_bytes) = width.checked_mul(bpp) else { return };
    let mut bytes = vec![0u8; line_bytes];
    let mut line = vec![0u32; width];
    let len = core.vram.len();
    for y in 0..height {
        let Some(address) = y.checked_mul(s.stride).and_then(|o| o.checked_add(s.offset)) else { break };
        if address.checked_add(line_bytes).is_none_or(|end| end > len) {
            // Past the end of VRAM: what is left shows black.
            if full {
                line.fill(0);
                fb.update_row(0, y as u32, &line);
            }
            continue;
        }
        if !full && !core.dirty.any(address, line_bytes) {
            continue;
        }
        if !core.vram.read(address, &mut bytes) {
            continue;
        }
        convert_line(&bytes, s.format, &core.render.palette256, &mut line);
        fb.update_row(0, y as u32, &line);
    }
}

fn convert_line(bytes: &[u8], format: PixelFormat, palette: &[u32], out: &mut [u32]) {
    let rgb555 = |v: u16| {
        let (r, g, b) = ((v >> 10) & 0x1f, (v >> 5) & 0x1f, v & 0x1f);
        let e = |c: u16| ((c << 3) | (c >> 2)) as u32;
        e(r) << 16 | e(g) << 8 | e(b)
    };
    let rgb565 = |v: u16| {
        let (r, g, b) = ((v >> 11) & 0x1f, (v >> 5) & 0x3f, v & 0x1f);
        let e5 = |c: u16| ((c << 3) | (c >> 2)) as u32;
        let e6 = |c: u16| ((c << 2) | (c >> 4)) as u32;
        e5(r) << 16 | e6(g) << 8 | e5(b)
    };
    match format {
        PixelFormat::Indexed8 => {
            for (o, &b) in out.iter_mut().zip(bytes) {
                *o = palette.get(b as usize).copied().unwrap_or(0);
            }
        }
        PixelFormat::Rgb555 | PixelFormat::Rgb565 | PixelFormat::Rgb555BigEndian | PixelFormat::Rgb565BigEndian => {
            for (o, c) in out.iter_mut().zip(bytes.chunks_exact(2)) {
                let v = match format {
                    PixelFormat::Rgb555BigEndian | PixelFormat::Rgb565BigEndian => u16::from_be_bytes([c[0], c[1]]),
                    _ => u16::from_le_bytes([c[0], c[1]]),
                };
                *o = match format {
                    PixelFormat::Rgb555 | PixelFormat::Rgb555BigEndian => rgb555(v),
                    _ => rgb565(v),
                };
            }
        }
        PixelFormat::Bgr24 => {
            for (o, c) in out.iter_mut().zip(bytes.chunks_exact(3)) {
                *o = (c[2] as u32) << 16 | (c[1] as u32) << 8 | c[0] as u32;
            }
        }
        PixelFormat::Xrgb32 => {
            for (o, c) in out.iter_mut().zip(bytes.chunks_exact(4)) {
                *o = u32::from_le_bytes([c[0], c[1], c[2], 0]);
            }
        }
        PixelFormat::Xrgb32BigEndian => {
            for (o, c) in out.iter_mut().zip(bytes.chunks_exact(4)) {
                *o = u32::from_be_bytes([0, c[1], c[2], c[3]]);
            }
        }
    }
}
