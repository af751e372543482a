//! Client pixel formats (RFC 6143 7.4 PIXEL_FORMAT) and converting our `0x00RRGGBB` pixels into
//! them.

/// A validated pixel format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PixelFormat {
    pub bits_per_pixel: u8,
    pub depth: u8,
    pub big_endian: bool,
    /// False: the client asked for a colour map; we serve QEMU's fixed BGR233 map.
    pub true_colour: bool,
    pub red_max: u16,
    pub green_max: u16,
    pub blue_max: u16,
    pub red_shift: u8,
    pub green_shift: u8,
    pub blue_shift: u8,
}

impl PixelFormat {
    /// What we announce in ServerInit: 32 bpp, depth 24, little-endian, 8 bits per channel,
    /// `0x00RRGGBB` (our own layout, so the common case is a copy).
    pub const SERVER: PixelFormat = PixelFormat {
        bits_per_pixel: 32,
        depth: 24,
        big_endian: false,
        true_colour: true,
        red_max: 255,
        green_max: 255,
        blue_max: 255,
        red_shift: 16,
        green_shift: 8,
        blue_shift: 0,
    };

    /// The 16 bytes of a PIXEL_FORMAT.
    pub fn to_wire(self) -> [u8; 16] {
        let mut b = [0u8; 16];
        b[0] = self.bits_per_pixel;
        b[1] = self.depth;
        b[2] = self.big_endian as u8;
        b[3] = self.true_colour as u8;
        b[4..6].copy_from_slice(&self.red_max.to_be_bytes());
        b[6..8].copy_from_slice(&self.green_max.to_be_bytes());
        b[8..10].copy_from_slice(&self.blue_max.to_be_bytes());
        b[10] = self.red_shift;
        b[11] = self.green_shift;
        b[12] = self.blue_shift;
        b
    }

    /// Parses a client's SetPixelFormat. A colour-map request gets QEMU's answer: an 8-bit
    /// BGR233 format (red bits 0-2, green 3-5, blue 6-7) with that map sent to the client
    /// (ui/vnc.c set_pixel_format). A zero max is QEMU's 0xff. Bits per pixel other than 8, 16
    /// and 32, and channels that do not fit in the pixel, are refused (QEMU drops the client
    /// on the former).
    pub fn from_wire(b: &[u8; 16]) -> Result<PixelFormat, String> {
        let true_colour = b[3] != 0;
        if !true_colour {
            return Ok(PixelFormat {
                bits_per_pixel: 8,
                depth: 8,
                big_endian: false,
                true_colour: false,
                red_max: 7,
                green_max: 7,
                blue_max: 3,
                red_shift: 0,
                green_shift: 3,
                blue_shift: 6,
            });
        }
        let bpp = b[0];
        if !matches!(bpp, 8 | 16 | 32) {
            return Err(format!("{bpp} bits per pixel (only 8, 16 and 32 exist)"));
        }
        let max = |i: usize| {
            let m = u16::from_be_bytes([b[i], b[i + 1]]);
            if m == 0 {
                0xff
            } else {
                m
            }
        };
        let pf = PixelFormat {
            bits_per_pixel: bpp,
            depth: b[1],
            big_endian: b[2] != 0,
            true_colour,
            red_max: max(4),
            green_max: max(6),
            blue_max: max(8),
            red_shift: b[10],
            green_shift: b[11],
            blue_shift: b[12],
        };
        for (name, m, s) in [
            ("red", pf.red_max, pf.red_shift),
            ("green", pf.green_max, pf.green_shift),
            ("blue", pf.blue_max, pf.blue_shift),
        ] {
            let top = u64::from(m).checked_shl(u32::from(s)).unwrap_or(u64::MAX);
            if s >= bpp || top >> bpp != 0 {
                return Err(format!("the {name} channel (max {m}, shift {s}) does not fit in {bpp} bits"));
            }
        }
        Ok(pf)
    }

    pub fn bytes_per_pixel(&self) -> usize {
        usize::from(self.bits_per_pixel / 8)
    }

    /// Whether pixels are ours unchanged (32 bpp, 0x00RRGGBB, little-endian).
    pub fn is_native(&self) -> bool {
        self.true_colour
            && self.bits_per_pixel == 32
            && !self.big_endian
            && (self.red_max, self.green_max, self.blue_max) == (255, 255, 255)
            && (self.red_shift, self.green_shift, self.blue_shift) == (16, 8, 0)
    }

    /// `0x00RRGGBB` as this format's pixel value.
    pub fn convert(&self, rgb: u32) -> u32 {
        let scale = |c: u32, max: u16| (c * u32::from(max) + 127) / 255;
        let r = scale((rgb >> 16) & 0xff, self.red_max);
        let g = scale((rgb >> 8) & 0xff, self.green_max);
        let b = scale(rgb & 0xff, self.blue_max);
        (r << self.red_shift) | (g << self.green_shift) | (b << self.blue_shift)
    }

    /// Appends `value` as `bits_per_pixel / 8` bytes in the format's byte order.
    pub fn put(&self, value: u32, out: &mut Vec<u8>) {
        match (self.bits_per_pixel, self.big_endian) {
            (8, _) => out.push(value as u8),
            (16, false) => out.extend_from_slice(&(value as u16).to_le_bytes()),
            (16, true) => out.extend_from_slice(&(value as u16).to_be_bytes()),
            (_, false) => out.extend_from_slice(&value.to_le_bytes()),
            (_, true) => out.extend_from_slice(&value.to_be_bytes()),
        }
    }

    /// Appends our pixels in this format.
    pub fn put_pixels(&self, pixels: &[u32], out: &mut Vec<u8>) {
        out.reserve(pixels.len() * self.bytes_per_pixel());
        if self.is_native() {
            for &p in pixels {
                out.extend_from_slice(&p.to_le_bytes());
            }
            return;
        }
        for &p in pixels {
            self.put(self.convert(p), out);
        }
    }

    /// RFC 6143 7.7.6 CPIXEL: 3 bytes when a 32-bit true-colour pixel's colour bits fit in its
    /// three least (or most) significant bytes; otherwise the whole pixel. Returns the byte
    /// range of the `bytes_per_pixel` bytes to keep.
    pub fn cpixel_range(&self) -> std::ops::Range<usize> {
        let bpp = self.bytes_per_pixel();
        if self.bits_per_pixel != 32 || !self.true_colour || self.depth > 24 {
            return 0..bpp;
        }
        let mask = (u64::from(self.red_max) << self.red_shift)
            | (u64::from(self.green_max) << self.green_shift)
            | (u64::from(self.blue_max) << self.blue_shift);
        let low3 = mask & !0x00ff_ffff == 0;
        let high3 = mask & 0xff == 0;
        match (low3, high3, self.big_endian) {
            // Little-endian: byte 0 is the least significant.
            (true, _, false) => 0..3,
            (true, _, true) => 1..4,
            (false, true, false) => 1..4,
            (false, true, true) => 0..3,
            _ => 0..4,
        }
    }

    /// The colour map entries a colour-map client gets: index `i` in BGR233 (QEMU
    /// ui/vnc.c send_color_map), as 16-bit intensities.
    pub fn colour_map(&self) -> Vec<[u16; 3]> {
        (0..256u32)
            .map(|i| {
                let c = |shift: u8, max: u16| {
                    let v = (i >> shift) & u32::from(max);
                    (v * 65535 / u32::from(max).max(1)) as u16
                };
                [
                    c(self.red_shift, self.red_max),
                    c(self.green_shift, self.green_max),
                    c(self.blue_shift, self.blue_max),
                ]
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire(bpp: u8, depth: u8, be: bool, tc: bool, max: [u16; 3], shift: [u8; 3]) -> [u8; 16] {
        PixelFormat {
            bits_per_pixel: bpp,
            depth,
            big_endian: be,
            true_colour: tc,
            red_max: max[0],
            green_max: max[1],
            blue_max: max[2],
            red_shift: shift[0],
            green_shift: shift[1],
            blue_shift: shift[2],
        }
        .to_wire()
    }

    #[test]
    fn common_formats_convert_exactly() {
        let rgb565 = PixelFormat::from_wire(&wire(16, 16, false, true, [31, 63, 31], [11, 5, 0])).unwrap();
        let mut out = Vec::new();
        rgb565.put(rgb565.convert(0xff0000), &mut out);
        rgb565.put(rgb565.convert(0x00ff00), &mut out);
        assert_eq!(out, vec![0x00, 0xf8, 0xe0, 0x07]);
        let bgr_be = PixelFormat::from_wire(&wire(32, 24, true, true, [255, 255, 255], [0, 8, 16])).unwrap();
        let mut out = Vec::new();
        bgr_be.put_pixels(&[0x123456], &mut out);
        assert_eq!(out, vec![0x00, 0x56, 0x34, 0x12]);
        assert_eq!(bgr_be.cpixel_range(), 1..4);
        assert_eq!(PixelFormat::SERVER.cpixel_range(), 0..3);
        let bgr233 = PixelFormat::from_wire(&wire(8, 8, false, true, [7, 7, 3], [0, 3, 6])).unwrap();
        assert_eq!(bgr233.convert(0xffffff), 0xff);
        assert_eq!(PixelFormat::from_wire(&PixelFormat::SERVER.to_wire()).unwrap(), PixelFormat::SERVER);
    }

    #[test]
    fn colour_map_requests_get_bgr233_and_hostile_formats_are_refused() {
        let pf = PixelFormat::from_wire(&wire(32, 24, false, false, [0, 0, 0], [0, 0, 0])).unwrap();
        assert_eq!((pf.bits_per_pixel, pf.true_colour, pf.red_max, pf.blue_shift), (8, false, 7, 6));
        assert_eq!(pf.colour_map()[0xff], [65535, 65535, 65535]);
        assert_eq!(pf.colour_map()[0x07], [65535, 0, 0]);
        for bad in [
            wire(24, 24, false, true, [255, 255, 255], [16, 8, 0]),
            wire(0, 0, false, true, [255, 255, 255], [16, 8, 0]),
            wire(8, 8, false, true, [255, 255, 255], [16, 8, 0]),
            wire(16, 16, false, true, [65535, 1, 1], [200, 255, 0]),
            wire(32, 24, false, true, [255, 255, 255], [30, 8, 0]),
        ] {
            assert!(PixelFormat::from_wire(&bad).is_err(), "{bad:?}");
        }
        // Any 16 bytes: parse never panics and what it accepts converts without panicking.
        let mut b = [0u8; 16];
        for i in 0..4096u32 {
            for (j, v) in b.iter_mut().enumerate() {
                *v = (i.wrapping_mul(2654435761).rotate_left(j as u32 * 3) >> 3) as u8;
            }
            if let Ok(pf) = PixelFormat::from_wire(&b) {
                let mut out = Vec::new();
                pf.put_pixels(&[0xffffff, 0x123456], &mut out);
                assert_eq!(out.len(), 2 * pf.bytes_per_pixel());
            }
        }
    }
}
