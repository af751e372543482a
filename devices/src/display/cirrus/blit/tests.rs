use super::*;

const SIZE: usize = 64 * 1024;

fn vram() -> Vram {
    let v = Vram::anonymous(SIZE).unwrap();
    // A recognisable background: byte i = i * 7 + 3.
    let bg: Vec<u8> = (0..SIZE).map(|i| (i * 7 + 3) as u8).collect();
    assert!(v.write(0, &bg));
    v
}

fn snapshot(v: &Vram) -> Vec<u8> {
    let mut b = vec![0; v.len()];
    assert!(v.read(0, &mut b));
    b
}

/// Registers for a `w` x `h` byte blit (the -1 encoding applied here).
#[allow(clippy::too_many_arguments)]
fn regs(w: usize, h: usize, dst: u32, dpitch: u16, src: u32, spitch: u16, mode: u8, rop: u8) -> BlitRegs {
    BlitRegs {
        width: (w - 1) as u16,
        height: (h - 1) as u16,
        dst_pitch: dpitch,
        src_pitch: spitch,
        dst_addr: dst,
        src_addr: src,
        mode,
        rop,
        ..Default::default()
    }
}

/// Runs a blit collecting the dirty ranges.
fn run(b: &mut Blitter, r: &BlitRegs, v: &Vram, limit: usize) -> (Started, Vec<(usize, usize)>) {
    let mut dirty = Vec::new();
    let s = b.start(r, v, limit, &mut |o, l| dirty.push((o, l)));
    (s, dirty)
}

#[test]
fn every_rop_code_matches_its_boolean_function() {
    // Bit pairs (dst, src) = (1,1), (1,0), (0,1), (0,0) in bits 3..0.
    let (d, s) = (0b1100u8, 0b1010u8);
    let table = [
        (ROP_0, 0b0000),
        (ROP_SRC_AND_DST, 0b1000),
        (ROP_NOP, 0b1100),
        (ROP_SRC_AND_NOTDST, 0b0010),
        (ROP_NOTDST, 0b0011),
        (ROP_SRC, 0b1010),
        (ROP_1, 0b1111),
        (ROP_NOTSRC_AND_DST, 0b0100),
        (ROP_SRC_XOR_DST, 0b0110),
        (ROP_SRC_OR_DST, 0b1110),
        (ROP_NOTSRC_OR_NOTDST, 0b0111),
        (ROP_SRC_NOTXOR_DST, 0b1001),
        (ROP_SRC_OR_NOTDST, 0b1011),
        (ROP_NOTSRC, 0b0101),
        (ROP_NOTSRC_OR_DST, 0b1101),
        (ROP_NOTSRC_AND_NOTDST, 0b0001),
    ];
    let mut seen = std::collections::HashSet::new();
    for (code, want) in table {
        assert_eq!(rop(code, d, s) & 0xf, want, "rop {code:#04x}");
        assert!(seen.insert(want), "two codes give the same function");
    }
    for code in 0..=255u8 {
        if !table.iter().any(|(c, _)| *c == code) {
            assert_eq!(rop(code, 0x5a, 0xc3), 0x5a, "undefined rop {code:#04x} must be a no-op");
        }
    }
}

#[test]
fn forward_copy_moves_exactly_the_rectangle() {
    let v = vram();
    let before = snapshot(&v);
    let mut b = Blitter::new();
    let (s, dirty) = run(&mut b, &regs(5, 3, 0x1000, 100, 0x2000, 64, 0, ROP_SRC), &v, SIZE);
    assert_eq!(s, Started::Done);
    let after = snapshot(&v);
    for y in 0..3 {
        for x in 0..5 {
            assert_eq!(after[0x1000 + y * 100 + x], before[0x2000 + y * 64 + x]);
        }
    }
    let mut expect = before.clone();
    for y in 0..3 {
        expect[0x1000 + y * 100..0x1000 + y * 100 + 5].copy_from_slice(&before[0x2000 + y * 64..0x2000 + y * 64 + 5]);
    }
    assert_eq!(after, expect, "bytes outside the rectangle changed");
    assert_eq!(dirty, vec![(0x1000, 5), (0x1064, 5), (0x10c8, 5)]);
    assert!(!b.awaiting_data());
}

#[test]
fn overlapping_scrolls_behave_like_memmove_in_both_directions() {
    // Scroll up (forward, dst above src) by one 16-byte row.
    let v = vram();
    let before = snapshot(&v);
    let mut b = Blitter::new();
    assert_eq!(run(&mut b, &regs(16, 8, 0x100, 16, 0x110, 16, 0, ROP_SRC), &v, SIZE).0, Started::Done);
    assert_eq!(snapshot(&v)[0x100..0x180], before[0x110..0x190]);

    // Scroll down (backwards: addresses name the last byte of the bottom row).
    let v = vram();
    let before = snapshot(&v);
    let last_dst = 0x110 + 8 * 16 - 1;
    let last_src = 0x100 + 8 * 16 - 1;
    let r = regs(16, 8, last_dst, 16, last_src, 16, BLTMODE_BACKWARDS, ROP_SRC);
    assert_eq!(run(&mut b, &r, &v, SIZE).0, Started::Done);
    assert_eq!(snapshot(&v)[0x110..0x190], before[0x100..0x180]);

    // Horizontal overlap inside one row, both ways.
    let v = vram();
    let before = snapshot(&v);
    assert_eq!(run(&mut b, &regs(32, 1, 0x204, 64, 0x200, 64, 0, ROP_SRC), &v, SIZE).0, Started::Done);
    assert_eq!(snapshot(&v)[0x204..0x224], before[0x200..0x220]);
}

#[test]
fn blits_ending_exactly_at_the_limit_run_and_one_byte_more_is_refused() {
    let mut b = Blitter::new();
    // Forward: last row ends at the last byte.
    let v = vram();
    let r = regs(16, 4, (SIZE - 16 - 3 * 32) as u32, 32, 0, 32, 0, ROP_1);
    assert_eq!(run(&mut b, &r, &v, SIZE).0, Started::Done);
    assert_eq!(v.read_u8(SIZE - 1), 0xff);
    let v = vram();
    let before = snapshot(&v);
    let r = regs(16, 4, (SIZE - 15 - 3 * 32) as u32, 32, 0, 32, 0, ROP_1);
    assert_eq!(run(&mut b, &r, &v, SIZE).0, Started::Refused(Refusal::OutOfBounds));
    assert_eq!(snapshot(&v), before);

    // Backward: the top row's first byte at 0 is fine, at -1 is not.
    let r = regs(16, 4, 15 + 3 * 32, 32, 0x8000 + 15 + 3 * 32, 32, BLTMODE_BACKWARDS, ROP_SRC);
    assert_eq!(run(&mut b, &r, &v, SIZE).0, Started::Done);
    let v = vram();
    let before = snapshot(&v);
    let r = regs(16, 4, 14 + 3 * 32, 32, 0x8000 + 15 + 3 * 32, 32, BLTMODE_BACKWARDS, ROP_SRC);
    assert_eq!(run(&mut b, &r, &v, SIZE).0, Started::Refused(Refusal::OutOfBounds));
    // A source running below 0 is refused just the same.
    let r = regs(16, 4, 0x8000 + 15 + 3 * 32, 32, 14 + 3 * 32, 32, BLTMODE_BACKWARDS, ROP_SRC);
    assert_eq!(run(&mut b, &r, &v, SIZE).0, Started::Refused(Refusal::OutOfBounds));
    // A source near the end of VRAM (the CVE-2017-2615 shape) is refused.
    let r = regs(64, 2, 0, 64, (SIZE - 100) as u32, 64, 0, ROP_SRC);
    assert_eq!(run(&mut b, &r, &v, SIZE).0, Started::Refused(Refusal::OutOfBounds));
    assert_eq!(snapshot(&v), before);
}

#[test]
fn the_addressable_limit_binds_even_when_vram_is_larger() {
    // An 8 MiB card addresses 4 MiB: a blit crossing 4 MiB is refused, not wrapped to 0.
    let v = Vram::anonymous(8 << 20).unwrap();
    let mut b = Blitter::new();
    let r = regs(64, 1, (ADDRESSABLE_VRAM - 32) as u32, 64, 0, 64, 0, ROP_1);
    assert_eq!(run(&mut b, &r, &v, ADDRESSABLE_VRAM).0, Started::Refused(Refusal::OutOfBounds));
    assert_eq!(v.read_u8(0), 0);
    assert_eq!(v.read_u8(ADDRESSABLE_VRAM - 32), 0);
    // The largest blit the registers can express, with the largest pitch, cannot reach out.
    let r = regs(4096, 8192, 0x3f_ffff, 0x1fff, 0x3f_ffff, 0x1fff, 0, ROP_SRC);
    assert_eq!(run(&mut b, &r, &v, ADDRESSABLE_VRAM).0, Started::Refused(Refusal::OutOfBounds));
    let r = regs(8192, 8192, 0x3f_ffff, 0x1fff, 0x3f_ffff, 0x1fff, BLTMODE_BACKWARDS, ROP_SRC);
    assert_eq!(run(&mut b, &r, &v, ADDRESSABLE_VRAM).0, Started::Refused(Refusal::OutOfBounds));
}

#[test]
fn zero_pitch_and_rows_overlapping_forward_are_refused() {
    let v = vram();
    let before = snapshot(&v);
    let mut b = Blitter::new();
    assert_eq!(run(&mut b, &regs(8, 2, 0, 0, 0x100, 8, 0, ROP_SRC), &v, SIZE).0, Started::Refused(Refusal::ZeroPitch));
    assert_eq!(run(&mut b, &regs(8, 2, 0, 8, 0x100, 0, 0, ROP_SRC), &v, SIZE).0, Started::Refused(Refusal::ZeroPitch));
    assert_eq!(
        run(&mut b, &regs(8, 2, 0, 4, 0x100, 8, 0, ROP_SRC), &v, SIZE).0,
        Started::Refused(Refusal::OverlappingRows)
    );
    assert_eq!(snapshot(&v), before);
    // One row with a short pitch is fine.
    assert_eq!(run(&mut b, &regs(8, 1, 0, 4, 0x100, 4, 0, ROP_SRC), &v, SIZE).0, Started::Done);
}

#[test]
fn invalid_mode_combinations_are_refused() {
    let v = vram();
    let mut b = Blitter::new();
    let both = BLTMODE_MEMSYSSRC | BLTMODE_MEMSYSDEST;
    assert_eq!(
        run(&mut b, &regs(8, 1, 0, 8, 0, 8, both, ROP_SRC), &v, SIZE).0,
        Started::Refused(Refusal::SystemToSystem)
    );
    assert_eq!(
        run(&mut b, &regs(8, 1, 0, 8, 0, 8, BLTMODE_MEMSYSDEST, ROP_SRC), &v, SIZE).0,
        Started::Refused(Refusal::VideoToSystem)
    );
    let transp32 = BLTMODE_TRANSPARENTCOMP | 0x30;
    assert_eq!(
        run(&mut b, &regs(8, 1, 0, 8, 0x100, 8, transp32, ROP_SRC), &v, SIZE).0,
        Started::Refused(Refusal::TransparentDepth)
    );
    let back_sys = BLTMODE_BACKWARDS | BLTMODE_MEMSYSSRC;
    assert_eq!(
        run(&mut b, &regs(8, 1, 0x100, 8, 0, 8, back_sys, ROP_SRC), &v, SIZE).0,
        Started::Refused(Refusal::BackwardSystemSource)
    );
    assert!(!b.awaiting_data());
}

#[test]
fn solid_fill_writes_the_foreground_at_every_depth_with_the_rop() {
    for (pw, fg) in [(1usize, 0x11u32), (2, 0x2233), (3, 0x44_5566), (4, 0x7788_99aa)] {
        let v = Vram::anonymous(SIZE).unwrap();
        let mut b = Blitter::new();
        let mode = BLTMODE_PATTERNCOPY | BLTMODE_COLOREXPAND | (((pw - 1) as u8) << 4);
        let mut r = regs(pw * 4, 2, 0x40, 0x100, 0, 0, mode, ROP_SRC);
        r.mode_ext = BLTMODEEXT_SOLIDFILL;
        r.fg = fg;
        assert_eq!(run(&mut b, &r, &v, SIZE).0, Started::Done);
        let got = snapshot(&v);
        for y in 0..2 {
            for p in 0..4 {
                let at = 0x40 + y * 0x100 + p * pw;
                assert_eq!(&got[at..at + pw], &fg.to_le_bytes()[..pw], "pw {pw} pixel {p} row {y}");
            }
        }
        assert_eq!(got[0x40 + pw * 4], 0);
        // XOR with the same colour clears it again.
        r.rop = ROP_SRC_XOR_DST;
        assert_eq!(run(&mut b, &r, &v, SIZE).0, Started::Done);
        assert!(snapshot(&v).iter().all(|&x| x == 0));
    }
}

#[test]
fn colour_expansion_from_video_draws_fg_bg_and_transparency() {
    let v = Vram::anonymous(SIZE).unwrap();
    // Two rows of 1 bpp source at 0x1000: 0b1010_0000 and 0b0110_0000 (each row one byte).
    v.write(0x1000, &[0b1010_0000, 0b0110_0000]);
    let mut b = Blitter::new();
    // 16 bpp, 4 pixels wide (8 bytes), 2 rows.
    let mut r = regs(8, 2, 0x100, 0x40, 0x1000, 1, BLTMODE_COLOREXPAND | 0x10, ROP_SRC);
    r.fg = 0xaaaa;
    r.bg = 0x5555;
    assert_eq!(run(&mut b, &r, &v, SIZE).0, Started::Done);
    let px = |v: &Vram, at: usize| u16::from_le_bytes([v.read_u8(at), v.read_u8(at + 1)]);
    assert_eq!([px(&v, 0x100), px(&v, 0x102), px(&v, 0x104), px(&v, 0x106)], [0xaaaa, 0x5555, 0xaaaa, 0x5555]);
    assert_eq!([px(&v, 0x140), px(&v, 0x142), px(&v, 0x144), px(&v, 0x146)], [0x5555, 0xaaaa, 0xaaaa, 0x5555]);

    // Transparent: only set bits draw (foreground); with COLOREXPINV only clear bits draw, in
    // the background colour.
    let v2 = Vram::anonymous(SIZE).unwrap();
    v2.write(0x1000, &[0b1010_0000, 0b0110_0000]);
    r.mode |= BLTMODE_TRANSPARENTCOMP;
    assert_eq!(run(&mut b, &r, &v2, SIZE).0, Started::Done);
    assert_eq!([px(&v2, 0x100), px(&v2, 0x102), px(&v2, 0x104), px(&v2, 0x106)], [0xaaaa, 0, 0xaaaa, 0]);
    let v3 = Vram::anonymous(SIZE).unwrap();
    v3.write(0x1000, &[0b1010_0000, 0b0110_0000]);
    r.mode_ext = BLTMODEEXT_COLOREXPINV;
    assert_eq!(run(&mut b, &r, &v3, SIZE).0, Started::Done);
    assert_eq!([px(&v3, 0x100), px(&v3, 0x102), px(&v3, 0x104), px(&v3, 0x106)], [0, 0x5555, 0, 0x5555]);
}

#[test]
fn left_skip_leaves_the_first_pixels_alone() {
    let v = Vram::anonymous(SIZE).unwrap();
    v.write(0x1000, &[0xff]);
    let mut b = Blitter::new();
    let mut r = regs(8, 1, 0x100, 0x40, 0x1000, 1, BLTMODE_COLOREXPAND, ROP_SRC);
    r.fg = 0x77;
    r.skip = 3;
    assert_eq!(run(&mut b, &r, &v, SIZE).0, Started::Done);
    let mut got = [0u8; 9];
    v.read(0x100, &mut got);
    assert_eq!(got, [0, 0, 0, 0x77, 0x77, 0x77, 0x77, 0x77, 0]);
}

#[test]
fn pattern_fill_tiles_an_aligned_8x8_pattern() {
    let v = Vram::anonymous(SIZE).unwrap();
    // 8 bpp pattern at 0x2000 (64 bytes): pixel (x, y) = y * 8 + x.
    let pat: Vec<u8> = (0..64).collect();
    v.write(0x2000, &pat);
    let mut b = Blitter::new();
    // Source address inside the pattern block: aligned down to 0x2000.
    let r = regs(20, 10, 0x100, 0x100, 0x2005, 0, BLTMODE_PATTERNCOPY, ROP_SRC);
    assert_eq!(run(&mut b, &r, &v, SIZE).0, Started::Done);
    for y in 0..10 {
        for x in 0..20 {
            assert_eq!(v.read_u8(0x100 + y * 0x100 + x), ((y % 8) * 8 + x % 8) as u8, "({x},{y})");
        }
    }
    // A 32 bpp pattern (256 bytes, aligned down to 256) that would run past the card's limit
    // is refused.
    let r = regs(16, 1, 0x100, 0x100, (SIZE - 128) as u32, 0, BLTMODE_PATTERNCOPY | 0x30, ROP_SRC);
    assert_eq!(run(&mut b, &r, &v, SIZE - 128).0, Started::Refused(Refusal::OutOfBounds));
    assert_eq!(run(&mut b, &r, &v, SIZE).0, Started::Done);
}

#[test]
fn pattern_expansion_uses_one_byte_per_row() {
    let v = Vram::anonymous(SIZE).unwrap();
    v.write(0x3000, &[0x80, 0x40, 0x20, 0x10, 0x08, 0x04, 0x02, 0x01]);
    let mut b = Blitter::new();
    let mut r = regs(8, 8, 0x100, 8, 0x3000, 0, BLTMODE_PATTERNCOPY | BLTMODE_COLOREXPAND, ROP_SRC);
    r.fg = 1;
    r.bg = 0;
    assert_eq!(run(&mut b, &r, &v, SIZE).0, Started::Done);
    for y in 0..8 {
        for x in 0..8 {
            assert_eq!(v.read_u8(0x100 + y * 8 + x), u8::from(x == y), "diagonal at ({x},{y})");
        }
    }
}

#[test]
fn transparent_copy_keeps_pixels_whose_result_is_the_key() {
    let v = Vram::anonymous(SIZE).unwrap();
    v.write(0x1000, &[1, 9, 2, 9]);
    v.write(0x100, &[0xee; 4]);
    let mut b = Blitter::new();
    let mut r = regs(4, 1, 0x100, 4, 0x1000, 4, BLTMODE_TRANSPARENTCOMP, ROP_SRC);
    r.transparent = 9;
    assert_eq!(run(&mut b, &r, &v, SIZE).0, Started::Done);
    let mut got = [0u8; 4];
    v.read(0x100, &mut got);
    assert_eq!(got, [1, 0xee, 2, 0xee]);
    // 16 bpp compares whole pixels.
    v.write(0x1000, &[0x34, 0x12, 0x34, 0x00]);
    v.write(0x100, &[0xee; 4]);
    r.mode |= 0x10;
    r.transparent = 0x1234;
    assert_eq!(run(&mut b, &r, &v, SIZE).0, Started::Done);
    v.read(0x100, &mut got);
    assert_eq!(got, [0xee, 0xee, 0x34, 0x00]);
}

#[test]
fn system_to_video_copy_consumes_dword_padded_lines() {
    let v = Vram::anonymous(SIZE).unwrap();
    let mut b = Blitter::new();
    // 6 bytes wide, 2 rows: each line arrives as 8 bytes.
    let r = regs(6, 2, 0x400, 0x20, 0, 0, BLTMODE_MEMSYSSRC, ROP_SRC);
    let (s, _) = run(&mut b, &r, &v, SIZE);
    assert_eq!(s, Started::AwaitingData { bytes: 16 });
    assert!(b.awaiting_data());
    let mut dirty = Vec::new();
    let mut done = Vec::new();
    for i in 0..16u8 {
        done.push(b.push(i + 1, &v, &mut |o, l| dirty.push((o, l))));
    }
    assert_eq!(done.iter().filter(|d| **d).count(), 1);
    assert!(done[15]);
    assert!(!b.awaiting_data());
    let mut row = [0u8; 8];
    v.read(0x400, &mut row);
    assert_eq!(row, [1, 2, 3, 4, 5, 6, 0, 0]);
    v.read(0x420, &mut row);
    assert_eq!(row, [9, 10, 11, 12, 13, 14, 0, 0]);
    assert_eq!(dirty, vec![(0x400, 6), (0x420, 6)]);
    // Once done, further bytes are ignored.
    assert!(!b.push(0xff, &v, &mut |_, _| panic!("no blit is running")));
}

#[test]
fn system_to_video_expansion_and_pattern() {
    let v = Vram::anonymous(SIZE).unwrap();
    let mut b = Blitter::new();
    // 12 pixels at 8 bpp: 2 bytes of bits per line; 2 lines.
    let mut r = regs(12, 2, 0x600, 0x10, 0, 0, BLTMODE_MEMSYSSRC | BLTMODE_COLOREXPAND, ROP_SRC);
    r.fg = 0xf;
    r.bg = 0x1;
    assert_eq!(run(&mut b, &r, &v, SIZE).0, Started::AwaitingData { bytes: 4 });
    for byte in [0xff, 0x00, 0x00, 0xf0] {
        b.push(byte, &v, &mut |_, _| {});
    }
    let mut row = [0u8; 12];
    v.read(0x600, &mut row);
    assert_eq!(row, [0xf, 0xf, 0xf, 0xf, 0xf, 0xf, 0xf, 0xf, 1, 1, 1, 1]);
    v.read(0x610, &mut row);
    assert_eq!(row, [1, 1, 1, 1, 1, 1, 1, 1, 0xf, 0xf, 0xf, 0xf]);
    // DWORD granularity pads each line to 4 bytes.
    r.mode_ext = BLTMODEEXT_DWORDGRANULARITY;
    assert_eq!(run(&mut b, &r, &v, SIZE).0, Started::AwaitingData { bytes: 8 });
    b.reset();
    assert!(!b.awaiting_data());

    // A system pattern is 8 bytes of bits (expanded) or 64 x pixel width bytes.
    let r = regs(8, 8, 0x800, 8, 0, 0, BLTMODE_MEMSYSSRC | BLTMODE_PATTERNCOPY, ROP_SRC);
    assert_eq!(run(&mut b, &r, &v, SIZE).0, Started::AwaitingData { bytes: 64 });
    for i in 0..64u8 {
        b.push(i, &v, &mut |_, _| {});
    }
    assert_eq!(v.read_u8(0x800 + 3 * 8 + 5), 29);
}

#[test]
fn system_source_blits_check_the_destination_up_front() {
    let v = vram();
    let before = snapshot(&v);
    let mut b = Blitter::new();
    let r = regs(64, 100, (SIZE - 64 * 50) as u32, 64, 0, 0, BLTMODE_MEMSYSSRC, ROP_SRC);
    assert_eq!(run(&mut b, &r, &v, SIZE).0, Started::Refused(Refusal::OutOfBounds));
    assert!(!b.awaiting_data());
    assert_eq!(snapshot(&v), before);
}

/// A small deterministic generator (no external crate needed for a test).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u32 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 33) as u32
    }
}

#[test]
fn random_blits_never_write_outside_their_destination_rectangle() {
    // Thousands of random register sets over a 64 KiB card: whatever runs writes only inside
    // the destination rows it was given; whatever is refused writes nothing.
    let v = vram();
    let mut b = Blitter::new();
    let mut rng = Lcg(0x5eed);
    let (mut done, mut refused, mut fed) = (0, 0, 0);
    for _ in 0..4000 {
        let small = |rng: &mut Lcg, max: u32| rng.next() % max;
        let r = BlitRegs {
            width: small(&mut rng, 300) as u16 | if rng.next().is_multiple_of(16) { 0x1f00 } else { 0 },
            height: small(&mut rng, 40) as u16 | if rng.next().is_multiple_of(16) { 0x1f00 } else { 0 },
            dst_pitch: small(&mut rng, 0x2000) as u16,
            src_pitch: small(&mut rng, 0x2000) as u16,
            dst_addr: if rng.next().is_multiple_of(2) { small(&mut rng, SIZE as u32) } else { rng.next() },
            src_addr: if rng.next().is_multiple_of(2) { small(&mut rng, SIZE as u32) } else { rng.next() },
            mode: rng.next() as u8,
            mode_ext: rng.next() as u8 & 7,
            rop: [ROP_SRC, ROP_1, ROP_SRC_XOR_DST, ROP_NOTDST, rng.next() as u8][small(&mut rng, 5) as usize],
            skip: rng.next() as u8,
            fg: rng.next(),
            bg: rng.next(),
            transparent: rng.next() as u16,
        };
        let before = snapshot(&v);
        let mut dirty = Vec::new();
        let started = b.start(&r, &v, SIZE, &mut |o, l| dirty.push((o, l)));
        match started {
            Started::Refused(_) => refused += 1,
            Started::Done => done += 1,
            Started::AwaitingData { bytes } => {
                fed += 1;
                for i in 0..bytes.min(70_000) {
                    b.push(rng.next() as u8 ^ i as u8, &v, &mut |o, l| dirty.push((o, l)));
                }
                assert!(!b.awaiting_data() || bytes > 70_000);
                b.reset();
            }
        }
        let after = snapshot(&v);
        // Every changed byte lies in a reported dirty range, and every range is in VRAM and
        // inside the rows the registers describe.
        for (i, (x, y)) in before.iter().zip(&after).enumerate() {
            if x != y {
                assert!(dirty.iter().any(|&(o, l)| (o..o + l).contains(&i)), "unreported write at {i:#x} by {r:?}");
            }
        }
        let width = usize::from(r.width & 0x1fff) + 1;
        for &(o, l) in &dirty {
            assert!(o + l <= SIZE);
            assert_eq!(l, width, "a row of another size was written by {r:?}");
        }
        if matches!(started, Started::Refused(_)) {
            assert_eq!(before, after, "a refused blit wrote: {r:?}");
        }
    }
    // The generator must exercise all three outcomes for the test to mean anything.
    assert!(done > 50 && refused > 50 && fed > 20, "done {done} refused {refused} fed {fed}");
}
