//! Two halves, chosen by the first byte:
//! - the Cirrus BitBLT engine alone, with arbitrary register sets and FIFO data over a small VRAM
//!   whose addressable limit is smaller than the memory behind it: nothing may panic, and no
//!   byte at or past the limit may ever change (a blit that would reach it is refused whole);
//! - the whole card (`cirrus-vga,vgamem_mb=8` with BARs programmed) under arbitrary port,
//!   window, BAR0/BAR1, configuration and ROM accesses of every width, refreshes into a host
//!   framebuffer and restores of arbitrary state: nothing may panic or hang.
#![no_main]

use std::sync::Arc;

use devices::bus::BusDevice;
use devices::clock::ManualClock;
use devices::display::cirrus::blit::{BlitRegs, Blitter, Started};
use devices::display::cirrus::CirrusVga;
use devices::display::{Display, Framebuffer, HostVram, Vram};
use devices::pci::function::PciResources;
use devices::pci::PciDevice;
use devices::snapshot::{restore_from, Snapshot};
use libfuzzer_sys::fuzz_target;

const VRAM: usize = 64 * 1024;
const LIMIT: usize = 48 * 1024;

fn u16_at(d: &[u8], i: usize) -> u16 {
    u16::from_le_bytes([d.get(i).copied().unwrap_or(0), d.get(i + 1).copied().unwrap_or(0)])
}
fn u32_at(d: &[u8], i: usize) -> u32 {
    u32::from(u16_at(d, i)) | u32::from(u16_at(d, i + 2)) << 16
}

fn card(data: &[u8]) {
    let clock = Arc::new(ManualClock::new(0));
    let rom = [0x55u8, 0xaa, 0x04, 0xcb];
    let Ok(mut c) = CirrusVga::new(8, Arc::new(HostVram), clock, Some(&rom), PciResources::none()) else { return };
    for (reg, v) in [(0x10u16, 0xe000_0000u32), (0x14, 0xe200_0000), (0x30, 0xe300_0001), (0x04, 0x3)] {
        c.config_write(reg, &v.to_le_bytes());
    }
    let mut fb = Framebuffer::default();
    let mut ops = 0;
    let mut rest = data;
    // Each op: kind, 3 address bytes, width, value (4 bytes).
    while rest.len() >= 9 && ops < 4096 {
        let (op, tail) = rest.split_at(9);
        rest = tail;
        ops += 1;
        let a = u32::from_le_bytes([op[1], op[2], op[3], 0]) as u64;
        let len = [1usize, 2, 4, 1][op[4] as usize & 3];
        let v = &op[5..5 + len];
        let mut buf = [0u8; 4];
        match op[0] % 12 {
            // The VGA ports, mostly index/data pairs.
            0 => c.write(0x3b0 + (a % 0x30), v),
            1 => c.read(0x3b0 + (a % 0x30), &mut buf[..len]),
            2 => c.write(0xa_0000 + (a % 0x2_0000), v),
            3 => c.read(0xa_0000 + (a % 0x2_0000), &mut buf[..len]),
            4 => c.bar_write(0, a << 3, v),
            5 => c.bar_read(0, a << 3, &mut buf[..len]),
            6 => c.bar_write(1, a % 0x1000, v),
            7 => c.bar_read(1, a % 0x1000, &mut buf[..len]),
            8 => c.config_write((a % 0x40) as u16 & !3, &[v[0], 0, 0, 0]),
            9 => c.bar_read(6, a % 0x1_0000, &mut buf[..len]),
            10 => {
                // GR index/data straight to the blitter registers, then start.
                c.write(0x3ce, &[0x20 + (op[1] % 0x1a)]);
                c.write(0x3cf, &[op[5]]);
                if op[2] & 1 != 0 {
                    c.write(0x3ce, &[0x31]);
                    c.write(0x3cf, &[0x02]);
                }
            }
            _ => {
                if op[1] & 1 == 0 {
                    c.refresh(&mut fb);
                } else {
                    let saved = devices::snapshot::save_to_vec(&c);
                    let mut image = saved.clone();
                    if let Some(b) = image.get_mut(a as usize % saved.len().max(1)) {
                        *b ^= op[5];
                    }
                    let _ = restore_from(&mut c, CirrusVga::VERSION, &image);
                }
            }
        }
    }
    c.refresh(&mut fb);
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, data)) = data.split_first() else { return };
    if which & 1 == 1 {
        return card(data);
    }
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
