//! Rectangle encodings: Raw (RFC 6143 7.7.1) and ZRLE (7.7.6) with one zlib stream per client
//! (zlib by `flate2`). Our ZRLE uses the solid, packed-palette (2-16 colours) and raw tile
//! sub-encodings, which cover text consoles and flat desktops well and stay simple.

use flate2::{Compress, Compression, FlushCompress, Status};

use super::pixel::PixelFormat;
use super::spec::ZRLE_TILE;

/// Appends `pixels` (a `w`-wide block, row-major) in the client's format.
pub fn raw(pf: &PixelFormat, pixels: &[u32], out: &mut Vec<u8>) {
    pf.put_pixels(pixels, out);
}

/// A client's ZRLE state: its zlib stream lives as long as the connection (RFC 6143 7.7.6:
/// "a single zlib stream object is used for a given RFB protocol connection").
pub struct Zrle {
    stream: Compress,
    tiles: Vec<u8>,
}

impl Default for Zrle {
    fn default() -> Self {
        Zrle::new()
    }
}

impl Zrle {
    pub fn new() -> Self {
        // Level 1: a framebuffer update is latency-bound; QEMU's default is level 9 for ZRLE
        // but the ratio gained past 1 is small on screen content.
        Zrle { stream: Compress::new(Compression::new(1), true), tiles: Vec::new() }
    }

    /// Appends one ZRLE rectangle body (u32 length + zlib data) for a `width` x `height` block.
    pub fn encode(&mut self, pf: &PixelFormat, pixels: &[u32], width: u32, height: u32, out: &mut Vec<u8>) {
        self.tiles.clear();
        let cpixel = pf.cpixel_range();
        let mut ty = 0;
        while ty < height {
            let th = ZRLE_TILE.min(height - ty);
            let mut tx = 0;
            while tx < width {
                let tw = ZRLE_TILE.min(width - tx);
                encode_tile(pf, &cpixel, pixels, width, tx, ty, tw, th, &mut self.tiles);
                tx += tw;
            }
            ty += th;
        }
        let len_at = out.len();
        out.extend_from_slice(&[0; 4]);
        let body_start = out.len();
        deflate_sync(&mut self.stream, &self.tiles, out);
        let len = (out.len() - body_start) as u32;
        out[len_at..body_start].copy_from_slice(&len.to_be_bytes());
    }
}

/// Compresses all of `input` onto `out` and sync-flushes (the client decodes each rectangle
/// without waiting for more).
fn deflate_sync(stream: &mut Compress, input: &[u8], out: &mut Vec<u8>) {
    let start_in = stream.total_in();
    // Bounded: each round either consumes input or grows the output; deflate's worst case is
    // about input + input/1000 + a few bytes per block.
    for _ in 0..(input.len() / 1024 + 64) {
        let consumed = (stream.total_in() - start_in) as usize;
        out.reserve(input.len().saturating_sub(consumed) / 2 + 1024);
        let before_out = out.len();
        match stream.compress_vec(&input[consumed..], out, FlushCompress::Sync) {
            Ok(Status::Ok) | Ok(Status::BufError) | Ok(Status::StreamEnd) => {}
            Err(e) => {
                log::error!("vnc: zlib: {e}");
                return;
            }
        }
        let consumed = (stream.total_in() - start_in) as usize;
        // Done when all input is in and the flush left spare room in the output.
        if consumed == input.len() && out.len() < out.capacity() && out.len() >= before_out {
            return;
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn encode_tile(
    pf: &PixelFormat,
    cpixel: &std::ops::Range<usize>,
    pixels: &[u32],
    stride: u32,
    tx: u32,
    ty: u32,
    tw: u32,
    th: u32,
    out: &mut Vec<u8>,
) {
    let at = |x: u32, y: u32| pixels[((ty + y) * stride + tx + x) as usize];
    // The palette, up to 16 colours (more: raw).
    let mut palette: Vec<u32> = Vec::with_capacity(16);
    'scan: for y in 0..th {
        for x in 0..tw {
            let p = at(x, y);
            if !palette.contains(&p) {
                if palette.len() == 16 {
                    palette.clear();
                    break 'scan;
                }
                palette.push(p);
            }
        }
    }
    let put_cpixel = |p: u32, out: &mut Vec<u8>| {
        let mut b = Vec::with_capacity(4);
        pf.put(pf.convert(p), &mut b);
        out.extend_from_slice(&b[cpixel.clone()]);
    };
    match palette.len() {
        1 => {
            out.push(1);
            put_cpixel(palette[0], out);
        }
        n @ 2..=16 => {
            out.push(n as u8);
            for &p in &palette {
                put_cpixel(p, out);
            }
            let bits = match n {
                2 => 1,
                3..=4 => 2,
                _ => 4,
            };
            for y in 0..th {
                let mut byte = 0u8;
                let mut used = 0;
                for x in 0..tw {
                    let index = palette.iter().position(|&c| c == at(x, y)).unwrap_or(0) as u8;
                    byte |= index << (8 - bits - used);
                    used += bits;
                    if used == 8 {
                        out.push(byte);
                        byte = 0;
                        used = 0;
                    }
                }
                if used > 0 {
                    out.push(byte);
                }
            }
        }
        _ => {
            out.push(0);
            let mut b = Vec::with_capacity(4);
            for y in 0..th {
                for x in 0..tw {
                    b.clear();
                    pf.put(pf.convert(at(x, y)), &mut b);
                    out.extend_from_slice(&b[cpixel.clone()]);
                }
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod decode {
    //! A ZRLE decoder for the tests (solid, packed palette, raw; what the encoder produces).
    use flate2::{Decompress, FlushDecompress};

    pub struct ZrleDecoder {
        stream: Decompress,
    }

    impl ZrleDecoder {
        pub fn new() -> Self {
            ZrleDecoder { stream: Decompress::new(true) }
        }

        /// Decodes a rectangle body (after the length) into 0x00RRGGBB pixels for the server's
        /// native format with 3-byte CPIXELs.
        pub fn decode(&mut self, body: &[u8], w: u32, h: u32) -> Vec<u32> {
            let mut data = Vec::with_capacity((w * h * 4 + 1024) as usize);
            let start = self.stream.total_in();
            while ((self.stream.total_in() - start) as usize) < body.len() {
                let used = (self.stream.total_in() - start) as usize;
                data.reserve(65536);
                self.stream.decompress_vec(&body[used..], &mut data, FlushDecompress::Sync).unwrap();
            }
            let mut pixels = vec![0u32; (w * h) as usize];
            let mut i = 0;
            let cp = |d: &[u8], i: &mut usize| {
                let v = u32::from(d[*i]) | u32::from(d[*i + 1]) << 8 | u32::from(d[*i + 2]) << 16;
                *i += 3;
                v
            };
            let mut ty = 0;
            while ty < h {
                let th = 64.min(h - ty);
                let mut tx = 0;
                while tx < w {
                    let tw = 64.min(w - tx);
                    let sub = data[i];
                    i += 1;
                    match sub {
                        0 => {
                            for y in 0..th {
                                for x in 0..tw {
                                    pixels[((ty + y) * w + tx + x) as usize] = cp(&data, &mut i);
                                }
                            }
                        }
                        1 => {
                            let c = cp(&data, &mut i);
                            for y in 0..th {
                                for x in 0..tw {
                                    pixels[((ty + y) * w + tx + x) as usize] = c;
                                }
                            }
                        }
                        n @ 2..=16 => {
                            let pal: Vec<u32> = (0..n).map(|_| cp(&data, &mut i)).collect();
                            let bits = match n {
                                2 => 1,
                                3..=4 => 2,
                                _ => 4,
                            };
                            for y in 0..th {
                                let mut used = 8;
                                let mut byte = 0;
                                for x in 0..tw {
                                    if used == 8 {
                                        byte = data[i];
                                        i += 1;
                                        used = 0;
                                    }
                                    let idx = (byte >> (8 - bits - used)) & ((1 << bits) - 1);
                                    used += bits;
                                    pixels[((ty + y) * w + tx + x) as usize] = pal[idx as usize];
                                }
                            }
                        }
                        other => panic!("sub-encoding {other} not produced by our encoder"),
                    }
                    tx += tw;
                }
                ty += th;
            }
            assert_eq!(i, data.len(), "all tile data consumed");
            pixels
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zrle_round_trips_solid_palette_and_raw_tiles_over_one_stream() {
        let (w, h) = (150u32, 70u32);
        let mut pixels: Vec<u32> = (0..w * h).map(|i| if (i % w) < 64 { 0x102030 } else { 0 }).collect();
        // A 3-colour tile and a noisy (raw) one.
        for y in 0..64 {
            for x in 64..128 {
                pixels[(y * w + x) as usize] = [0xff0000, 0x00ff00, 0x0000ff][((x + y) % 3) as usize];
            }
            for x in 128..150 {
                pixels[(y * w + x) as usize] = (x * 7919 + y * 104729) & 0xffffff;
            }
        }
        let mut enc = Zrle::new();
        let mut dec = decode::ZrleDecoder::new();
        for round in 0..3 {
            let mut out = Vec::new();
            enc.encode(&PixelFormat::SERVER, &pixels, w, h, &mut out);
            let len = u32::from_be_bytes(out[..4].try_into().unwrap()) as usize;
            assert_eq!(len + 4, out.len());
            assert_eq!(dec.decode(&out[4..], w, h), pixels, "round {round}");
            pixels[5] ^= 0xffffff;
        }
    }
}
