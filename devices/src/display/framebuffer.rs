//! The host-side picture of a display: 32-bit pixels (`0x00RRGGBB`, i.e. XRGB8888 in memory on
//! little-endian hosts, the format Linux's DRM drivers and VBE 32 bpp modes use, so the common
//! case is a copy) and a map of the 16x16 tiles that changed.

/// Width and height of a dirty tile in pixels.
pub const TILE: u32 = 16;

/// A rectangle in pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Rect {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
}

impl Rect {
    pub const fn new(x: u32, y: u32, width: u32, height: u32) -> Self {
        Rect { x, y, width, height }
    }

    pub fn is_empty(&self) -> bool {
        self.width == 0 || self.height == 0
    }
}

/// One bit per tile.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DirtyTiles {
    columns: u32,
    rows: u32,
    bits: Vec<u64>,
}

impl DirtyTiles {
    /// An all-clean map for a `width` x `height` picture.
    pub fn new(width: u32, height: u32) -> Self {
        let columns = width.div_ceil(TILE);
        let rows = height.div_ceil(TILE);
        let tiles = columns as usize * rows as usize;
        DirtyTiles { columns, rows, bits: vec![0; tiles.div_ceil(64)] }
    }

    pub fn columns(&self) -> u32 {
        self.columns
    }

    pub fn rows(&self) -> u32 {
        self.rows
    }

    fn index(&self, column: u32, row: u32) -> usize {
        row as usize * self.columns as usize + column as usize
    }

    /// Marks the tiles `rect` touches (clipped to the picture).
    pub fn mark(&mut self, rect: Rect) {
        if rect.is_empty() || self.columns == 0 {
            return;
        }
        let c0 = rect.x / TILE;
        let r0 = rect.y / TILE;
        let c1 = (rect.x.saturating_add(rect.width - 1) / TILE).min(self.columns - 1);
        let r1 = (rect.y.saturating_add(rect.height - 1) / TILE).min(self.rows - 1);
        for row in r0..=r1.min(self.rows.saturating_sub(1)) {
            for column in c0..=c1 {
                let i = self.index(column, row);
                self.bits[i / 64] |= 1 << (i % 64);
            }
        }
    }

    pub fn mark_all(&mut self) {
        let tiles = self.columns as usize * self.rows as usize;
        for (w, word) in self.bits.iter_mut().enumerate() {
            let left = tiles.saturating_sub(w * 64);
            *word = if left >= 64 { u64::MAX } else { (1u64 << left) - 1 };
        }
    }

    pub fn is_dirty(&self, column: u32, row: u32) -> bool {
        if column >= self.columns || row >= self.rows {
            return false;
        }
        let i = self.index(column, row);
        self.bits[i / 64] & (1 << (i % 64)) != 0
    }

    pub fn any(&self) -> bool {
        self.bits.iter().any(|&w| w != 0)
    }

    pub fn clear(&mut self) {
        self.bits.fill(0);
    }

    /// Adds `other`'s dirty tiles (same geometry; a different geometry marks everything).
    pub fn merge(&mut self, other: &DirtyTiles) {
        if other.columns != self.columns || other.rows != self.rows {
            self.mark_all();
            return;
        }
        for (a, b) in self.bits.iter_mut().zip(&other.bits) {
            *a |= b;
        }
    }

    /// The dirty tiles as rectangles in pixels, clipped to `width` x `height`: runs of dirty
    /// tiles in a tile row are joined, and a run spanning the same columns as one in the row
    /// above extends that rectangle downwards, so a full update is one rectangle (every
    /// rectangle costs a header, and for ZRLE a flush, on the wire).
    pub fn rects(&self, width: u32, height: u32) -> Vec<Rect> {
        let mut out: Vec<Rect> = Vec::new();
        // Rectangles that end at the bottom of the previous tile row, candidates to extend.
        let mut open: Vec<usize> = Vec::new();
        let mut next_open: Vec<usize> = Vec::new();
        for row in 0..self.rows {
            let mut column = 0;
            while column < self.columns {
                if !self.is_dirty(column, row) {
                    column += 1;
                    continue;
                }
                let start = column;
                while column < self.columns && self.is_dirty(column, row) {
                    column += 1;
                }
                let x = start * TILE;
                let y = row * TILE;
                let w = (column * TILE).min(width).saturating_sub(x);
                let h = ((row + 1) * TILE).min(height).saturating_sub(y);
                if w > 0 && h > 0 {
                    let above = open.iter().copied().find(|&i| {
                        let r = out[i];
                        r.x == x && r.width == w && r.y + r.height == y
                    });
                    match above {
                        Some(i) => {
                            out[i].height += h;
                            next_open.push(i);
                        }
                        None => {
                            next_open.push(out.len());
                            out.push(Rect::new(x, y, w, h));
                        }
                    }
                }
            }
            std::mem::swap(&mut open, &mut next_open);
            next_open.clear();
        }
        out
    }
}

/// A picture: `width * height` pixels, row after row, and its dirty tiles.
#[derive(Clone, Debug, Default)]
pub struct Framebuffer {
    width: u32,
    height: u32,
    pixels: Vec<u32>,
    dirty: DirtyTiles,
    /// Counts resizes, so a console notices a mode change even when the size stayed the same.
    generation: u64,
}

/// Largest picture a device may ask for (16000x12000 is QEMU's VBE limit; this also bounds the
/// host allocation a guest can cause).
pub const MAX_PIXELS: usize = 16384 * 16384;

impl Framebuffer {
    pub fn new(width: u32, height: u32) -> Self {
        let mut fb = Framebuffer::default();
        fb.resize(width, height);
        fb
    }

    pub fn width(&self) -> u32 {
        self.width
    }

    pub fn height(&self) -> u32 {
        self.height
    }

    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Changes the size (contents black, everything dirty). A size above [`MAX_PIXELS`] is
    /// refused and leaves the picture as it was.
    pub fn resize(&mut self, width: u32, height: u32) -> bool {
        let Some(n) = (width as usize).checked_mul(height as usize).filter(|&n| n <= MAX_PIXELS) else {
            return false;
        };
        self.width = width;
        self.height = height;
        self.pixels.clear();
        self.pixels.resize(n, 0);
        self.dirty = DirtyTiles::new(width, height);
        self.dirty.mark_all();
        self.generation += 1;
        true
    }

    /// All pixels, row-major.
    pub fn pixels(&self) -> &[u32] {
        &self.pixels
    }

    /// Row `y` (empty past the bottom).
    pub fn row(&self, y: u32) -> &[u32] {
        let w = self.width as usize;
        let start = y as usize * w;
        self.pixels.get(start..start + w).unwrap_or(&[])
    }

    /// Row `y` for writing; the caller marks what it changed with [`Framebuffer::mark_dirty`].
    pub fn row_mut(&mut self, y: u32) -> &mut [u32] {
        let w = self.width as usize;
        let start = y as usize * w;
        self.pixels.get_mut(start..start + w).unwrap_or(&mut [])
    }

    /// Replaces row `y` from `x` on with `src` (clipped), marking the tiles whose pixels really
    /// changed. Returns whether anything changed.
    pub fn update_row(&mut self, x: u32, y: u32, src: &[u32]) -> bool {
        if y >= self.height || x >= self.width {
            return false;
        }
        let n = src.len().min((self.width - x) as usize);
        let start = y as usize * self.width as usize + x as usize;
        let dst = &mut self.pixels[start..start + n];
        let mut changed = false;
        // Compare tile by tile so an unchanged tile stays clean.
        let mut offset = 0usize;
        while offset < n {
            let tile_x = x as usize + offset;
            let end = ((tile_x / TILE as usize + 1) * TILE as usize - x as usize).min(n);
            if dst[offset..end] != src[offset..end] {
                dst[offset..end].copy_from_slice(&src[offset..end]);
                self.dirty.mark(Rect::new(tile_x as u32, y, (end - offset) as u32, 1));
                changed = true;
            }
            offset = end;
        }
        changed
    }

    pub fn mark_dirty(&mut self, rect: Rect) {
        self.dirty.mark(rect);
    }

    pub fn mark_all_dirty(&mut self) {
        self.dirty.mark_all();
    }

    pub fn dirty(&self) -> &DirtyTiles {
        &self.dirty
    }

    /// Hands over the dirty map and starts a clean one.
    pub fn take_dirty(&mut self) -> DirtyTiles {
        let clean = DirtyTiles::new(self.width, self.height);
        std::mem::replace(&mut self.dirty, clean)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_changed_pixel_dirties_only_its_tile() {
        let mut fb = Framebuffer::new(64, 32);
        fb.take_dirty();
        let mut row = fb.row(5).to_vec();
        assert!(!fb.update_row(0, 5, &row), "same pixels: nothing changes");
        row[20] = 0xff0000;
        assert!(fb.update_row(0, 5, &row));
        let dirty = fb.take_dirty();
        assert_eq!(dirty.rects(64, 32), vec![Rect::new(16, 0, 16, 16)]);
        assert!(!fb.take_dirty().any());
    }

    #[test]
    fn rects_join_runs_and_clip_to_the_picture() {
        let mut d = DirtyTiles::new(40, 20);
        d.mark(Rect::new(0, 0, 33, 1));
        assert_eq!(d.rects(40, 20), vec![Rect::new(0, 0, 40, 16)]);
        d.mark_all();
        assert_eq!(d.rects(40, 20), vec![Rect::new(0, 0, 40, 20)], "a full update is one rectangle");
        // Different spans in consecutive rows stay apart; equal ones further down join again.
        let mut d = DirtyTiles::new(64, 64);
        d.mark(Rect::new(0, 0, 32, 16));
        d.mark(Rect::new(0, 16, 16, 1));
        d.mark(Rect::new(48, 16, 16, 32));
        assert_eq!(d.rects(64, 64), vec![Rect::new(0, 0, 32, 16), Rect::new(0, 16, 16, 16), Rect::new(48, 16, 16, 32)]);
    }

    #[test]
    fn out_of_range_marks_and_sizes_are_harmless() {
        let mut fb = Framebuffer::new(8, 8);
        fb.mark_dirty(Rect::new(u32::MAX - 1, u32::MAX - 1, u32::MAX, u32::MAX));
        assert!(!fb.update_row(9, 9, &[1, 2, 3]));
        assert!(!fb.resize(u32::MAX, u32::MAX));
        assert_eq!((fb.width(), fb.height()), (8, 8));
        assert_eq!(fb.row(100), &[] as &[u32]);
    }
}
