//! The EDID blob in BAR2 (offset 0): one 128-byte EDID 1.4 base block (VESA E-EDID Release A
//! Revision 2, section 3) describing a monitor whose preferred mode is 1280x800 at 60 Hz, the
//! mode QEMU's generated EDID prefers by default [Q hw/display/edid-generate.c]. Linux's
//! bochs-drm takes its mode list from it when the header is valid; SeaVGABIOS copies it for
//! VBE DDC.

/// The preferred mode's detailed timing: 1280x800 at 60 Hz with VESA CVT timings (83.5 MHz;
/// horizontal 1280 + 72 front porch + 128 sync + 200 back porch = 1680; vertical 800 + 3 + 6 +
/// 22 = 831).
const PREFERRED: DetailedTiming = DetailedTiming {
    clock_10khz: 8350,
    h_active: 1280,
    h_blank: 400,
    v_active: 800,
    v_blank: 31,
    h_sync_offset: 72,
    h_sync_width: 128,
    v_sync_offset: 3,
    v_sync_width: 6,
    width_mm: 400,
    height_mm: 250,
};

struct DetailedTiming {
    clock_10khz: u16,
    h_active: u16,
    h_blank: u16,
    v_active: u16,
    v_blank: u16,
    h_sync_offset: u16,
    h_sync_width: u16,
    v_sync_offset: u16,
    v_sync_width: u16,
    width_mm: u16,
    height_mm: u16,
}

impl DetailedTiming {
    /// The 18-byte detailed timing descriptor (section 3.10.2).
    fn bytes(&self) -> [u8; 18] {
        let lo = |v: u16| v as u8;
        let hi4 = |v: u16| ((v >> 8) & 0x0f) as u8;
        let mut d = [0u8; 18];
        d[0..2].copy_from_slice(&self.clock_10khz.to_le_bytes());
        d[2] = lo(self.h_active);
        d[3] = lo(self.h_blank);
        d[4] = hi4(self.h_active) << 4 | hi4(self.h_blank);
        d[5] = lo(self.v_active);
        d[6] = lo(self.v_blank);
        d[7] = hi4(self.v_active) << 4 | hi4(self.v_blank);
        d[8] = lo(self.h_sync_offset);
        d[9] = lo(self.h_sync_width);
        d[10] = ((self.v_sync_offset & 0x0f) as u8) << 4 | (self.v_sync_width & 0x0f) as u8;
        d[11] = ((self.h_sync_offset >> 8) as u8 & 3) << 6
            | ((self.h_sync_width >> 8) as u8 & 3) << 4
            | ((self.v_sync_offset >> 4) as u8 & 3) << 2
            | ((self.v_sync_width >> 4) as u8 & 3);
        d[12] = lo(self.width_mm);
        d[13] = lo(self.height_mm);
        d[14] = hi4(self.width_mm) << 4 | hi4(self.height_mm);
        // Digital separate sync, vertical and horizontal sync positive.
        d[17] = 0x1e;
        d
    }
}

/// A display descriptor (section 3.10.3): tag, then 13 bytes of payload.
fn descriptor(tag: u8, payload: &[u8; 13]) -> [u8; 18] {
    let mut d = [0u8; 18];
    d[3] = tag;
    d[5..].copy_from_slice(payload);
    d
}

/// The 128-byte base block.
pub fn generate() -> [u8; 128] {
    let mut e = [0u8; 128];
    e[0..8].copy_from_slice(&[0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00]);
    // Manufacturer "RHT" (three 5-bit letters, big-endian), product 0x1234 (QEMU's).
    let id = |c: u8| (c - b'A' + 1) as u16;
    let mfg = id(b'R') << 10 | id(b'H') << 5 | id(b'T');
    e[8..10].copy_from_slice(&mfg.to_be_bytes());
    e[10..12].copy_from_slice(&0x1234u16.to_le_bytes());
    e[16] = 1; // week
    e[17] = 32; // year 2022 (counted from 1990)
    e[18] = 1; // EDID 1.4
    e[19] = 4;
    e[20] = 0xa5; // digital, 8 bits per colour, DisplayPort
    e[21] = 40; // 40 x 25 cm
    e[22] = 25;
    e[23] = 120; // gamma 2.2
    e[24] = 0x06; // RGB colour, sRGB default, preferred timing is native
                  // sRGB chromaticity.
    e[25..35].copy_from_slice(&[0xee, 0x91, 0xa3, 0x54, 0x4c, 0x99, 0x26, 0x0f, 0x50, 0x54]);
    // Established timings: 640x480@60, 800x600@60, 1024x768@60.
    e[35] = 0x21;
    e[36] = 0x08;
    // Standard timings: 1280x1024@60 (5:4), 1600x1200@60 (4:3), 1920x1080@60 (16:9), rest unused.
    let standard: [[u8; 2]; 8] = [[0x81, 0x80], [0xa9, 0x40], [0xd1, 0xc0], [1, 1], [1, 1], [1, 1], [1, 1], [1, 1]];
    for (i, s) in standard.iter().enumerate() {
        e[38 + 2 * i..40 + 2 * i].copy_from_slice(s);
    }
    e[54..72].copy_from_slice(&PREFERRED.bytes());
    // Range limits: 50-125 Hz vertical, 30-160 kHz horizontal, 300 MHz, limits only (no
    // timing formula).
    e[72..90]
        .copy_from_slice(&descriptor(0xfd, &[50, 125, 30, 160, 30, 0x01, 0x0a, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20]));
    e[90..108].copy_from_slice(&descriptor(0xfc, b"QEMU Monitor\n"));
    e[108..126].copy_from_slice(&descriptor(0x10, &[0; 13]));
    let sum = e[..127].iter().fold(0u8, |s, &b| s.wrapping_add(b));
    e[127] = 0u8.wrapping_sub(sum);
    e
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_block_is_valid_and_prefers_1280x800() {
        let e = super::generate();
        assert_eq!(&e[..8], &[0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0]);
        assert_eq!(e.iter().fold(0u8, |s, &b| s.wrapping_add(b)), 0, "checksum");
        let d = &e[54..72];
        let h = d[2] as u16 | ((d[4] >> 4) as u16) << 8;
        let v = d[5] as u16 | ((d[7] >> 4) as u16) << 8;
        assert_eq!((h, v), (1280, 800));
        assert_eq!(&e[95..107], b"QEMU Monitor");
    }
}
