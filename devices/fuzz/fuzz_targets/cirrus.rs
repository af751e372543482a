//! The Cirrus BitBLT engine with arbitrary register sets and FIFO data over a small VRAM whose
//! addressable limit is smaller than the memory behind it: nothing may panic, and no byte at or
//! past the limit may ever change (a blit that would reach it must be refused whole).
#![no_main]

use devices::display::cirrus::blit::{BlitRegs, Blitter, Started};
use devices::display::Vram;
use libfuzzer_sys::fuzz_target;

const VRAM: usize = 64 * 1024;
const LIMIT: usize = 48 * 1024;

fn u16_at(d: &[u8], i: usize) -> u16 {
    u16::from_le_bytes([d.get(i).copied().unwrap_or(0), d.get(i + 1).copied().unwrap_or(0)])
}
fn u32_at(d: &[u8], i: usize) -> u32 {
    u32::from(u16_at(d, i)) | u32::from(u16_at(d, i + 2)) << 16
}

fuzz_target!(|data: &[u8]| {
    let vram = Vram::anonymous(VRAM).unwrap();
    let canary = vec![0xa5u8; VRAM - LIMIT];
    vram.write(LIMIT, &canary);
    let mut blitter = Blitter::new();
    // Each 32-byte record is one blit; what follows a system-source record feeds its FIFO.
    let mut rest = data;
    while rest.len() >= 32 {
        let (rec, tail) = rest.split_at(32);
        rest = tail;
        let regs = BlitRegs {
            width: u16_at(rec, 0),
            height: u16_at(rec, 2) & 0x3ff,
            dst_pitch: u16_at(rec, 4),
            src_pitch: u16_at(rec, 6),
            dst_addr: u32_at(rec, 8),
            src_addr: u32_at(rec, 12),
            mode: rec[16],
            mode_ext: rec[17],
            rop: rec[18],
            skip: rec[19],
            fg: u32_at(rec, 20),
            bg: u32_at(rec, 24),
            transparent: u16_at(rec, 28),
        };
        let mut dirty = |o: usize, l: usize| assert!(o + l <= LIMIT, "dirty range past the limit");
        if let Started::AwaitingData { bytes } = blitter.start(&regs, &vram, LIMIT, &mut dirty) {
            let n = bytes.min(rest.len()).min(rec[31] as usize * 64);
            for &b in &rest[..n] {
                blitter.push(b, &vram, &mut dirty);
            }
            rest = &rest[n..];
        }
        let mut after = vec![0u8; VRAM - LIMIT];
        vram.read(LIMIT, &mut after);
        assert_eq!(after, canary, "a blit wrote past the addressable limit: {regs:?}");
    }
});
