//! The CLGD 5446 BitBLT engine: raster operations over rectangles of video memory, with a
//! source in video memory (video-to-video) or written by the CPU through the blit FIFO
//! (system-to-video), optionally colour-expanded from a 1 bit-per-pixel source, tiled from an
//! 8x8 pattern, or transparent.
//!
//! Every parameter is guest-controlled, and this engine is where the device's history of guest
//! escapes lives (QEMU CVE-2014-8106, CVE-2015-5279/2016-9921 class, CVE-2017-2615,
//! CVE-2017-2620, CVE-2017-7980: negative pitches, width/height overflow, source address
//! wrap-around). So before a single byte moves, [`Blitter::start`] computes the exact byte range
//! every row of the destination and of any video source covers, with 64-bit arithmetic, and
//! refuses the blit when any of it falls outside the addressable VRAM. A refused blit writes
//! nothing and is reported so the device clears its busy bits as QEMU's `bitblt_ignore` does:
//! a driver polling GR31 never hangs. Nothing is clamped or wrapped into another region.
//!
//! Rows are processed whole: read the destination row, combine, write it back (one bounds-
//! checked volatile copy each way), which is also what makes overlapping copies in either
//! direction behave like `memmove` within a row.
//!
//! Semantics follow QEMU's `cirrus_vga_rop.h`/`cirrus_vga_rop2.h` [Q], where QEMU is
//! self-consistent; the few places this deliberately differs are noted where they happen.

use super::spec::*;
use crate::display::Vram;

/// The BitBLT registers as the guest left them when it started the blit (GR20..GR39 and the
/// colour registers), before any interpretation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BlitRegs {
    /// GR20/21: width in bytes, minus one (13 bits).
    pub width: u16,
    /// GR22/23: height in lines, minus one (13 bits).
    pub height: u16,
    /// GR24/25 and GR26/27 (13 bits each).
    pub dst_pitch: u16,
    pub src_pitch: u16,
    /// GR28..2A and GR2C..2E (22 bits each).
    pub dst_addr: u32,
    pub src_addr: u32,
    /// GR30, GR33, GR32.
    pub mode: u8,
    pub mode_ext: u8,
    pub rop: u8,
    /// GR2F: left-edge skip.
    pub skip: u8,
    /// Foreground (GR01 shadow, GR11, GR13, GR15) and background (GR00 shadow, GR10, GR12,
    /// GR14) colours, byte 0 lowest.
    pub fg: u32,
    pub bg: u32,
    /// GR34/35: transparent colour for plain transparent copies.
    pub transparent: u16,
}

/// Why a blit was refused. In every case no byte of VRAM changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// A destination or source row would fall outside the addressable VRAM.
    OutOfBounds,
    /// Pitch 0 (QEMU refuses it too: `blit_region_is_unsafe`).
    ZeroPitch,
    /// A forward blit of several rows whose pitch is smaller than its width: rows would
    /// overlap each other (QEMU silently does nothing).
    OverlappingRows,
    /// Both system source and system destination (memory-to-memory).
    SystemToSystem,
    /// Video-to-system (QEMU does not implement it either).
    VideoToSystem,
    /// Transparent plain copies exist only at 8 and 16 bpp.
    TransparentDepth,
    /// A system-source copy running backwards (which would read the FIFO buffer backwards;
    /// QEMU's version of this read outside its buffer).
    BackwardSystemSource,
}

/// What starting a blit did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Started {
    /// Finished (video source): the engine is idle again.
    Done,
    /// Waiting for its source: the CPU now writes `bytes` bytes through the blit FIFO, fed with
    /// [`Blitter::push`].
    AwaitingData {
        bytes: usize,
    },
    Refused(Refusal),
}

/// The kind of operation GR30/GR33 select [Q cirrus_bitblt_start].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    /// Every pixel becomes the foreground colour (combined with the ROP).
    SolidFill,
    /// Source bytes combined with the destination; `transparent`: destination pixels whose
    /// result equals GR34/35 keep their value.
    Copy { transparent: bool },
    /// 1 bpp source: set bits take the foreground, clear bits the background colour; with
    /// `transparent` only one polarity is drawn (`invert` picks the clear bits, in the
    /// background colour).
    Expand { transparent: bool, invert: bool },
    /// An 8x8 pixel pattern tiled over the destination.
    Pattern,
    /// An 8x8 1 bpp pattern, expanded as [`Op::Expand`].
    PatternExpand { transparent: bool, invert: bool },
}

/// The interpreted, bounds-checked parameters of one blit.
#[derive(Clone, Copy, Debug)]
struct Plan {
    op: Op,
    rop: u8,
    /// Bytes per pixel, 1..=4.
    pw: usize,
    width: usize,
    height: usize,
    /// Byte address of the first destination row's first byte and the signed distance between
    /// consecutive rows' first bytes.
    dst_first: u64,
    dst_step: i64,
    src_first: u64,
    src_step: i64,
    fg: u32,
    bg: u32,
    transparent: u16,
    /// Left-edge skip: the first pixel drawn is at byte `dst_skip` of each row and bit/pattern
    /// pixel `src_skip`.
    dst_skip: usize,
    src_skip: usize,
    /// First pattern row.
    pattern_row: usize,
}

/// A system-source blit waiting for its data.
#[derive(Clone, Debug)]
struct Pending {
    plan: Plan,
    /// Bytes the CPU sends per destination row (or the whole pattern).
    line_bytes: usize,
    /// Destination rows (or, for a pattern, 1 delivery) still to come.
    rows_left: usize,
    /// Current destination row's first byte.
    dst_row: u64,
}

/// The BitBLT engine. It owns only the FIFO line buffer and scratch rows; the registers live
/// in the device.
#[derive(Debug, Default)]
pub struct Blitter {
    pending: Option<Pending>,
    fifo: Vec<u8>,
    dst_row: Vec<u8>,
    src_row: Vec<u8>,
}

/// Pixel width in bytes from GR30 bits 4..5 [Q CIRRUS_BLTMODE_PIXELWIDTH*].
fn pixel_width(mode: u8) -> usize {
    ((mode & BLTMODE_PIXELWIDTH_MASK) >> 4) as usize + 1
}

/// One byte of a raster operation (the ROPs are bitwise, so bytes of wider pixels combine
/// independently) [Q rop_to_index: unknown codes are no-ops].
pub fn rop(code: u8, dst: u8, src: u8) -> u8 {
    match code {
        ROP_0 => 0,
        ROP_SRC_AND_DST => src & dst,
        ROP_SRC_AND_NOTDST => src & !dst,
        ROP_NOTDST => !dst,
        ROP_SRC => src,
        ROP_1 => 0xff,
        ROP_NOTSRC_AND_DST => !src & dst,
        ROP_SRC_XOR_DST => src ^ dst,
        ROP_SRC_OR_DST => src | dst,
        ROP_NOTSRC_OR_NOTDST => !src | !dst,
        ROP_SRC_NOTXOR_DST => !(src ^ dst),
        ROP_SRC_OR_NOTDST => src | !dst,
        ROP_NOTSRC => !src,
        ROP_NOTSRC_OR_DST => !src | dst,
        ROP_NOTSRC_AND_NOTDST => !src & !dst,
        _ => dst, // ROP_NOP and every undefined code
    }
}

/// The lowest and highest byte addresses `height` rows of `width` bytes touch, the first row
/// starting at `first` and each next one `step` bytes further; `None` when any of it is outside
/// `0..limit`. 64-bit arithmetic: 8192 rows x 8191 pitch cannot overflow it.
fn footprint_ok(first: u64, step: i64, width: usize, height: usize, limit: usize) -> bool {
    if width == 0 || height == 0 {
        return false;
    }
    let first = first as i64;
    let last_row = first + (height as i64 - 1) * step;
    let lo = first.min(last_row);
    let hi = first.max(last_row) + width as i64 - 1;
    lo >= 0 && hi < limit as i64
}

/// Reads `len` bytes at `offset` into `buf` (resized), false when out of range.
fn read_into(vram: &Vram, offset: u64, len: usize, buf: &mut Vec<u8>) -> bool {
    buf.resize(len, 0);
    usize::try_from(offset).is_ok_and(|o| vram.read(o, buf))
}

impl Blitter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether a system-source blit is waiting for FIFO data (the device then routes CPU writes
    /// to the legacy window and BAR0 into [`Blitter::push`]).
    pub fn awaiting_data(&self) -> bool {
        self.pending.is_some()
    }

    /// Abandons a blit in progress (GR31 reset, or device reset).
    pub fn reset(&mut self) {
        self.pending = None;
        self.fifo.clear();
    }

    /// Interprets `regs` and runs the blit (video source) or arms the FIFO (system source).
    /// `limit` is how many bytes of `vram` the card addresses; `dirty(offset, len)` is told of
    /// every range written.
    pub fn start(
        &mut self,
        regs: &BlitRegs,
        vram: &Vram,
        limit: usize,
        dirty: &mut dyn FnMut(usize, usize),
    ) -> Started {
        self.reset();
        let limit = limit.min(vram.len());
        let plan_and_source = match self.plan(regs, limit) {
            Ok(p) => p,
            Err(r) => return Started::Refused(r),
        };
        match plan_and_source {
            (plan, Source::Video) => {
                self.run_video(&plan, vram, dirty);
                Started::Done
            }
            (plan, Source::System { line_bytes, rows }) => {
                self.pending = Some(Pending { plan, line_bytes, rows_left: rows, dst_row: plan.dst_first });
                Started::AwaitingData { bytes: line_bytes * rows }
            }
        }
    }

    /// One byte of system-source data. Returns true when this byte completed the blit (the
    /// device then clears its busy bits). Bytes arriving while nothing waits are ignored.
    pub fn push(&mut self, byte: u8, vram: &Vram, dirty: &mut dyn FnMut(usize, usize)) -> bool {
        let Some(p) = self.pending.as_ref() else { return false };
        if self.fifo.len() < p.line_bytes {
            self.fifo.push(byte);
        }
        if self.fifo.len() < p.line_bytes {
            return false;
        }
        let mut p = self.pending.take().expect("checked above");
        let fifo = std::mem::take(&mut self.fifo);
        match p.plan.op {
            Op::Pattern | Op::PatternExpand { .. } => {
                self.draw_pattern(&p.plan, &fifo, vram, dirty);
                p.rows_left = 0;
            }
            _ => {
                self.draw_row(&p.plan, p.dst_row, &fifo, vram, dirty);
                p.rows_left -= 1;
                p.dst_row = p.dst_row.wrapping_add_signed(p.plan.dst_step);
            }
        }
        self.fifo = fifo;
        self.fifo.clear();
        if p.rows_left == 0 {
            return true;
        }
        self.pending = Some(p);
        false
    }

    /// Decodes the registers into a plan and checks every region it will touch.
    fn plan(&self, regs: &BlitRegs, limit: usize) -> Result<(Plan, Source), Refusal> {
        let mode = regs.mode;
        let pw = pixel_width(mode);
        let width = usize::from(regs.width & 0x1fff) + 1;
        let height = usize::from(regs.height & 0x1fff) + 1;
        let dst_pitch = i64::from(regs.dst_pitch & 0x1fff);
        let src_pitch = i64::from(regs.src_pitch & 0x1fff);
        let dst_addr = u64::from(regs.dst_addr & 0x3f_ffff);
        let src_addr = u64::from(regs.src_addr & 0x3f_ffff);
        let system_src = mode & BLTMODE_MEMSYSSRC != 0;
        let system_dst = mode & BLTMODE_MEMSYSDEST != 0;
        if system_src && system_dst {
            return Err(Refusal::SystemToSystem);
        }
        let transparent = mode & BLTMODE_TRANSPARENTCOMP != 0;
        let invert = regs.mode_ext & BLTMODEEXT_COLOREXPINV != 0;
        let expand = mode & BLTMODE_COLOREXPAND != 0;
        let pattern = mode & BLTMODE_PATTERNCOPY != 0;
        let backwards = mode & BLTMODE_BACKWARDS != 0;
        let op = if regs.mode_ext & BLTMODEEXT_SOLIDFILL != 0
            && mode & (BLTMODE_MEMSYSDEST | BLTMODE_TRANSPARENTCOMP | BLTMODE_PATTERNCOPY | BLTMODE_COLOREXPAND)
                == (BLTMODE_PATTERNCOPY | BLTMODE_COLOREXPAND)
        {
            Op::SolidFill
        } else if pattern && expand {
            Op::PatternExpand { transparent, invert }
        } else if pattern {
            Op::Pattern
        } else if expand {
            Op::Expand { transparent, invert }
        } else {
            if transparent && pw > 2 {
                return Err(Refusal::TransparentDepth);
            }
            Op::Copy { transparent }
        };
        if system_dst && op != Op::SolidFill {
            return Err(Refusal::VideoToSystem);
        }
        // Only plain copies run backwards [Q: the other operations ignore the bit]. A
        // backward blit's addresses name the last byte of the first (bottom) row.
        let backwards = backwards && matches!(op, Op::Copy { .. });
        if backwards && system_src {
            return Err(Refusal::BackwardSystemSource);
        }
        if dst_pitch == 0 {
            return Err(Refusal::ZeroPitch);
        }
        if !backwards && height > 1 && dst_pitch < width as i64 {
            return Err(Refusal::OverlappingRows);
        }
        let (dst_first, dst_step) = if backwards {
            // Row 0 spans [dst_addr - width + 1, dst_addr].
            let first = (dst_addr as i64) - (width as i64 - 1);
            if first < 0 {
                return Err(Refusal::OutOfBounds);
            }
            (first as u64, -dst_pitch)
        } else {
            (dst_addr, dst_pitch)
        };
        if !footprint_ok(dst_first, dst_step, width, height, limit) {
            return Err(Refusal::OutOfBounds);
        }

        let (src_skip, dst_skip) = if pw == 3 {
            // At 24 bpp the skip counts bytes (5 bits) [Q rop2.h DEPTH == 24].
            let bytes = usize::from(regs.skip & 0x1f);
            (bytes / 3, bytes)
        } else {
            let pixels = usize::from(regs.skip & 0x07);
            (pixels, pixels * pw)
        };
        let mut plan = Plan {
            op,
            rop: regs.rop,
            pw,
            width,
            height,
            dst_first,
            dst_step,
            src_first: 0,
            src_step: 0,
            fg: regs.fg,
            bg: regs.bg,
            transparent: regs.transparent,
            dst_skip,
            src_skip,
            pattern_row: (src_addr & 7) as usize,
        };

        if system_src {
            let (line_bytes, rows) = match op {
                Op::SolidFill => return Ok((plan, Source::Video)),
                Op::Pattern | Op::PatternExpand { .. } => (pattern_bytes(op, pw), 1),
                Op::Expand { .. } => {
                    let pixels = width.div_ceil(pw);
                    // DWORD granularity pads every line to 32 bits. (QEMU computes the dword
                    // count and uses it as a byte count, which no driver can have relied on.)
                    let bytes = if regs.mode_ext & BLTMODEEXT_DWORDGRANULARITY != 0 {
                        pixels.div_ceil(32) * 4
                    } else {
                        pixels.div_ceil(8)
                    };
                    (bytes, height)
                }
                // Always a whole number of dwords per line [Q cirrus_bitblt_cputovideo].
                Op::Copy { .. } => (width.div_ceil(4) * 4, height),
            };
            return Ok((plan, Source::System { line_bytes, rows }));
        }

        match op {
            Op::SolidFill => {}
            Op::Pattern | Op::PatternExpand { .. } => {
                // A video pattern is aligned down to its size [Q common_patterncopy], so its
                // first row is row 0 of the aligned block.
                let size = match pw {
                    1 => 64,
                    2 => 128,
                    _ => 256,
                } as u64;
                let base = src_addr & !(size - 1);
                if base + size > limit as u64 {
                    return Err(Refusal::OutOfBounds);
                }
                plan.src_first = base;
                plan.pattern_row = 0;
            }
            Op::Copy { .. } | Op::Expand { .. } => {
                if src_pitch == 0 {
                    return Err(Refusal::ZeroPitch);
                }
                let src_pitch_signed = if backwards { -src_pitch } else { src_pitch };
                if !backwards && height > 1 && src_pitch < width as i64 && matches!(op, Op::Copy { .. }) {
                    return Err(Refusal::OverlappingRows);
                }
                // QEMU's check of the source as a width x height region with its pitch.
                let src_first_qemu = if backwards { src_addr as i64 - (width as i64 - 1) } else { src_addr as i64 };
                if src_first_qemu < 0 || !footprint_ok(src_first_qemu as u64, src_pitch_signed, width, height, limit) {
                    return Err(Refusal::OutOfBounds);
                }
                if let Op::Expand { .. } = op {
                    // A video 1 bpp source is read as consecutive bytes, each row starting on a
                    // new byte; the pitch is ignored [Q rop2.h "srcpitch is ignored"].
                    let row = expand_row_bytes(width, pw, dst_skip, src_skip);
                    if !footprint_ok(src_addr, row as i64, row, height, limit) {
                        return Err(Refusal::OutOfBounds);
                    }
                    plan.src_first = src_addr;
                    plan.src_step = row as i64;
                } else {
                    plan.src_first = src_first_qemu as u64;
                    plan.src_step = src_pitch_signed;
                }
            }
        }
        Ok((plan, Source::Video))
    }

    fn run_video(&mut self, plan: &Plan, vram: &Vram, dirty: &mut dyn FnMut(usize, usize)) {
        match plan.op {
            Op::Pattern | Op::PatternExpand { .. } => {
                let len = pattern_bytes(plan.op, plan.pw);
                let mut pattern = Vec::new();
                if read_into(vram, plan.src_first, len, &mut pattern) {
                    self.draw_pattern(plan, &pattern, vram, dirty);
                }
            }
            _ => {
                let row_len = match plan.op {
                    Op::Expand { .. } => plan.src_step.unsigned_abs() as usize,
                    Op::Copy { .. } => plan.width,
                    _ => 0,
                };
                let mut src = std::mem::take(&mut self.src_row);
                for y in 0..plan.height {
                    let dst = plan.dst_first.wrapping_add_signed(plan.dst_step * y as i64);
                    if row_len > 0 {
                        let s = plan.src_first.wrapping_add_signed(plan.src_step * y as i64);
                        if !read_into(vram, s, row_len, &mut src) {
                            break; // cannot happen: checked in plan()
                        }
                    }
                    self.draw_row(plan, dst, &src, vram, dirty);
                }
                self.src_row = src;
            }
        }
    }

    /// Draws one destination row at `dst` from `src` (source bytes, 1 bpp bits, or nothing).
    fn draw_row(&mut self, plan: &Plan, dst: u64, src: &[u8], vram: &Vram, dirty: &mut dyn FnMut(usize, usize)) {
        let mut row = std::mem::take(&mut self.dst_row);
        if !read_into(vram, dst, plan.width, &mut row) {
            self.dst_row = row;
            return;
        }
        match plan.op {
            Op::Copy { transparent } => copy_row(plan, &mut row, src, transparent),
            Op::SolidFill => {
                let mut x = 0;
                while x < plan.width {
                    put_pixel(&mut row, x, plan.pw, plan.fg, plan.rop);
                    x += plan.pw;
                }
            }
            Op::Expand { transparent, invert } => expand_row(plan, &mut row, transparent, invert, |i| {
                src.get(i / 8).is_some_and(|b| b & (0x80 >> (i % 8)) != 0)
            }),
            Op::Pattern | Op::PatternExpand { .. } => {}
        }
        let written = vram.write(dst as usize, &row);
        if written {
            dirty(dst as usize, row.len());
        }
        self.dst_row = row;
    }

    /// Tiles an 8x8 pattern (`pattern`: 8 rows) over the whole destination.
    fn draw_pattern(&mut self, plan: &Plan, pattern: &[u8], vram: &Vram, dirty: &mut dyn FnMut(usize, usize)) {
        let mut row = std::mem::take(&mut self.dst_row);
        let pitch = pattern_pitch(plan.pw);
        for y in 0..plan.height {
            let dst = plan.dst_first.wrapping_add_signed(plan.dst_step * y as i64);
            if !read_into(vram, dst, plan.width, &mut row) {
                break;
            }
            let prow = (plan.pattern_row + y) & 7;
            match plan.op {
                Op::PatternExpand { transparent, invert } => {
                    let bits = pattern.get(prow).copied().unwrap_or(0);
                    expand_row(plan, &mut row, transparent, invert, |i| bits & (0x80 >> (i % 8)) != 0);
                }
                _ => {
                    let line = pattern.get(prow * pitch..(prow + 1) * pitch).unwrap_or(&[]);
                    let mut x = plan.dst_skip;
                    let mut px = plan.src_skip;
                    while x < plan.width {
                        let at = (px & 7) * plan.pw;
                        let mut colour = 0u32;
                        for b in 0..plan.pw {
                            colour |= u32::from(line.get(at + b).copied().unwrap_or(0)) << (8 * b);
                        }
                        put_pixel(&mut row, x, plan.pw, colour, plan.rop);
                        x += plan.pw;
                        px += 1;
                    }
                }
            }
            if vram.write(dst as usize, &row) {
                dirty(dst as usize, row.len());
            }
        }
        self.dst_row = row;
    }
}

/// Where a blit's source comes from.
#[derive(Clone, Copy, Debug)]
enum Source {
    Video,
    /// `rows` deliveries of `line_bytes` bytes through the FIFO.
    System {
        line_bytes: usize,
        rows: usize,
    },
}

/// Bytes per pattern row: 8 pixels, 24 bpp padded to 32 [Q rop2.h pattern_pitch].
fn pattern_pitch(pw: usize) -> usize {
    match pw {
        1 => 8,
        2 => 16,
        _ => 32,
    }
}

/// Bytes of an 8x8 pattern: 8 bytes of bits, or 8 rows of 8 pixels (24 bpp rows padded to 32
/// bytes) [Q cirrus_bitblt_cputovideo, rop2.h pattern_pitch].
fn pattern_bytes(op: Op, pw: usize) -> usize {
    match op {
        Op::PatternExpand { .. } => 8,
        _ => 8 * pattern_pitch(pw),
    }
}

/// Bytes one row of a video 1 bpp source occupies: the skipped bits plus one bit per pixel
/// drawn, at least one byte [Q rop2.h colorexpand: a new byte per row, then one per 8 bits].
fn expand_row_bytes(width: usize, pw: usize, dst_skip: usize, src_skip: usize) -> usize {
    let drawn = width.saturating_sub(dst_skip).div_ceil(pw);
    (src_skip + drawn).div_ceil(8).max(1)
}

/// Combines one byte-granular pixel into `row` at byte `x`, clipped to the row: a pixel that
/// straddles the blit's right edge (width not a multiple of the pixel size) is cut, never
/// written past the checked region.
fn put_pixel(row: &mut [u8], x: usize, pw: usize, colour: u32, code: u8) {
    for b in 0..pw {
        if let Some(d) = row.get_mut(x + b) {
            *d = rop(code, *d, (colour >> (8 * b)) as u8);
        }
    }
}

fn copy_row(plan: &Plan, row: &mut [u8], src: &[u8], transparent: bool) {
    if !transparent {
        for (d, s) in row.iter_mut().zip(src) {
            *d = rop(plan.rop, *d, *s);
        }
        return;
    }
    // Transparent: the destination keeps its pixel where the combined result equals the
    // transparent colour [Q rop_tr_8 / rop_tr_16 compare the result, not the source].
    let pw = plan.pw;
    let mut x = 0;
    while x + pw <= row.len() && x + pw <= src.len() {
        let mut result = [0u8; 2];
        for b in 0..pw {
            result[b] = rop(plan.rop, row[x + b], src[x + b]);
        }
        let value = if pw == 1 { u16::from(result[0]) } else { u16::from_le_bytes(result) };
        let key = if pw == 1 { plan.transparent & 0xff } else { plan.transparent };
        if value != key {
            row[x..x + pw].copy_from_slice(&result[..pw]);
        }
        x += pw;
    }
}

/// Colour-expands one row: pixel k (from the left skip) uses bit `src_skip + k` of `bit`.
fn expand_row(plan: &Plan, row: &mut [u8], transparent: bool, invert: bool, bit: impl Fn(usize) -> bool) {
    let mut x = plan.dst_skip;
    let mut i = plan.src_skip;
    while x < plan.width {
        let set = bit(i);
        if transparent {
            // Only one polarity draws: set bits in the foreground colour, or with COLOREXPINV
            // clear bits in the background colour [Q colorexpand_transp bits_xor].
            if set != invert {
                put_pixel(row, x, plan.pw, if invert { plan.bg } else { plan.fg }, plan.rop);
            }
        } else {
            put_pixel(row, x, plan.pw, if set { plan.fg } else { plan.bg }, plan.rop);
        }
        x += plan.pw;
        i += 1;
    }
}

#[cfg(test)]
mod tests;
