//! Which 4 KiB pages of VRAM changed since the last refresh: the device's own writes (legacy
//! window, trapped BAR accesses, blits) plus what the backend reports the guest wrote directly.

use crate::display::vram::PAGE;

/// One bit per page, bit `i % 64` of word `i / 64` (the layout `VramService::sync_dirty` uses).
#[derive(Clone, Debug, Default)]
pub struct DirtyPages {
    pages: usize,
    bits: Vec<u64>,
}

impl DirtyPages {
    /// A map for `len` bytes of VRAM, everything dirty (nothing was drawn yet).
    pub fn new(len: usize) -> Self {
        let pages = len.div_ceil(PAGE);
        let mut d = DirtyPages { pages, bits: vec![0; pages.div_ceil(64)] };
        d.mark_all();
        d
    }

    /// The words, for `VramService::sync_dirty`.
    pub fn words_mut(&mut self) -> &mut [u64] {
        &mut self.bits
    }

    pub fn mark_page(&mut self, page: usize) {
        if page < self.pages {
            self.bits[page / 64] |= 1 << (page % 64);
        }
    }

    /// Marks the pages `len` bytes at `offset` touch (clipped to the memory).
    pub fn mark(&mut self, offset: usize, len: usize) {
        if len == 0 {
            return;
        }
        let first = offset / PAGE;
        let last = (offset.saturating_add(len - 1) / PAGE).min(self.pages.saturating_sub(1));
        for page in first..=last {
            self.mark_page(page);
        }
    }

    pub fn mark_all(&mut self) {
        self.bits.fill(u64::MAX);
    }

    /// Whether any page of `len` bytes at `offset` is dirty; offsets wrap at the end of the
    /// memory the way scanout addresses do.
    pub fn any(&self, offset: usize, len: usize) -> bool {
        if self.pages == 0 || len == 0 {
            return false;
        }
        let span = self.pages * PAGE;
        if len >= span {
            return self.bits.iter().any(|&w| w != 0);
        }
        let start = offset % span;
        let end = start + len;
        if end > span {
            return self.any_linear(start, span) || self.any_linear(0, end - span);
        }
        self.any_linear(start, end)
    }

    fn any_linear(&self, start: usize, end: usize) -> bool {
        (start / PAGE..end.div_ceil(PAGE).min(self.pages)).any(|p| self.bits[p / 64] & (1 << (p % 64)) != 0)
    }

    pub fn clear(&mut self) {
        self.bits.fill(0);
    }
}
