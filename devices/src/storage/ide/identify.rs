//! IDENTIFY DEVICE and IDENTIFY PACKET DEVICE data (ATA/ATAPI-6 sections 8.15 and 8.16, tables 18
//! and 22). Word numbers below are the spec's.

use super::spec::MAX_MULTIPLE_SECTORS;

/// The transfer mode the host selected with SET FEATURES (ATA/ATAPI-6 section 8.37.10), which
/// IDENTIFY reports back in words 63 and 88.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransferMode {
    Pio(u8),
    MultiwordDma(u8),
    UltraDma(u8),
}

/// Highest modes advertised (PIO 4, multiword DMA 2, Ultra DMA 5), as QEMU's IDE does.
pub const MAX_PIO_MODE: u8 = 4;
pub const MAX_MWDMA_MODE: u8 = 2;
pub const MAX_UDMA_MODE: u8 = 5;

/// Identity strings of a drive (ATA strings: space padded, two characters per word, first
/// character in the high byte).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DriveIdentity {
    /// Words 27-46, 40 characters.
    pub model: String,
    /// Words 10-19, 20 characters.
    pub serial: String,
    /// Words 23-26, 8 characters.
    pub firmware: String,
}

/// What IDENTIFY DEVICE reports for an ATA disk.
pub struct DiskIdentify<'a> {
    pub identity: &'a DriveIdentity,
    pub sectors: u64,
    /// Default (power-on) CHS translation.
    pub cylinders: u16,
    pub heads: u8,
    pub sectors_per_track: u8,
    /// Current translation (INITIALIZE DEVICE PARAMETERS).
    pub current_heads: u8,
    pub current_sectors_per_track: u8,
    /// Current READ/WRITE MULTIPLE block size; 0 = not set.
    pub multiple_count: u8,
    pub write_cache: bool,
    pub mode: TransferMode,
}

fn put_string(words: &mut [u16; 256], first: usize, chars: usize, s: &str) {
    let mut bytes = vec![b' '; chars];
    for (d, c) in bytes.iter_mut().zip(s.bytes().filter(|b| b.is_ascii_graphic() || *b == b' ')) {
        *d = c;
    }
    for (i, pair) in bytes.chunks(2).enumerate() {
        words[first + i] = u16::from(pair[0]) << 8 | u16::from(pair[1]);
    }
}

/// Words 63 and 88: supported modes in the low byte, the selected one in the high byte.
fn dma_words(mode: TransferMode) -> (u16, u16) {
    let mwdma_supported = (1u16 << (MAX_MWDMA_MODE + 1)) - 1;
    let udma_supported = (1u16 << (MAX_UDMA_MODE + 1)) - 1;
    match mode {
        TransferMode::MultiwordDma(m) => (mwdma_supported | 1 << (8 + m), udma_supported),
        TransferMode::UltraDma(m) => (mwdma_supported, udma_supported | 1 << (8 + m)),
        TransferMode::Pio(_) => (mwdma_supported, udma_supported),
    }
}

/// Word 255: signature 0xa5 and a checksum that makes all 512 bytes sum to 0 (section 8.15.62).
fn finish(mut words: [u16; 256]) -> [u8; 512] {
    words[255] = 0x00a5;
    let mut out = [0u8; 512];
    for (i, w) in words.iter().enumerate() {
        out[2 * i..2 * i + 2].copy_from_slice(&w.to_le_bytes());
    }
    let sum = out[..511].iter().fold(0u8, |a, b| a.wrapping_add(*b));
    out[511] = sum.wrapping_neg();
    out
}

pub fn identify_device(d: &DiskIdentify<'_>) -> [u8; 512] {
    let mut w = [0u16; 256];
    w[0] = 0x0040; // fixed device, not removable
    w[1] = d.cylinders;
    w[3] = d.heads.into();
    w[6] = d.sectors_per_track.into();
    put_string(&mut w, 10, 20, &d.identity.serial);
    w[20] = 3; // obsolete buffer type, kept as every emulation reports it
    w[21] = 512;
    put_string(&mut w, 23, 8, &d.identity.firmware);
    put_string(&mut w, 27, 40, &d.identity.model);
    w[47] = 0x8000 | u16::from(MAX_MULTIPLE_SECTORS);
    // Word 49: IORDY supported (11), LBA supported (9), DMA supported (8).
    w[49] = 1 << 11 | 1 << 9 | 1 << 8;
    w[50] = 0x4000;
    w[51] = 0x200; // obsolete PIO timing
    w[52] = 0x200;
    // Word 53: words 54-58 (0), 64-70 (1) and 88 (2) are valid.
    w[53] = 0x0007;
    let cur_cyl = current_cylinders(d.sectors, d.current_heads, d.current_sectors_per_track);
    w[54] = cur_cyl;
    w[55] = d.current_heads.into();
    w[56] = d.current_sectors_per_track.into();
    let cur_capacity = u32::from(cur_cyl) * u32::from(d.current_heads) * u32::from(d.current_sectors_per_track);
    w[57] = cur_capacity as u16;
    w[58] = (cur_capacity >> 16) as u16;
    if d.multiple_count != 0 {
        w[59] = 0x100 | u16::from(d.multiple_count);
    }
    let lba28 = d.sectors.min(0x0fff_ffff) as u32;
    w[60] = lba28 as u16;
    w[61] = (lba28 >> 16) as u16;
    let (w63, w88) = dma_words(d.mode);
    w[63] = w63;
    w[64] = 0x0003; // PIO modes 3 and 4
    w[65] = 120; // minimum multiword DMA cycle time (ns)
    w[66] = 120;
    w[67] = 120;
    w[68] = 120;
    w[80] = 0x007e; // ATA-1 .. ATA/ATAPI-6
                    // Words 82-87: supported / enabled command sets. 82: write cache (5), power management (3).
                    // 83/86: FLUSH CACHE EXT (13), FLUSH CACHE (12), 48-bit address (10); bit 14 of 83/84/87 = 1.
    w[82] = 1 << 5 | 1 << 3;
    w[83] = 0x4000 | 1 << 13 | 1 << 12 | 1 << 10;
    w[84] = 0x4000;
    w[85] = if d.write_cache { 1 << 5 } else { 0 } | 1 << 3;
    w[86] = 1 << 13 | 1 << 12 | 1 << 10;
    w[87] = 0x4000;
    w[88] = w88;
    // Word 93: hardware reset result, device 0 passed, 80-conductor cable detected (13).
    w[93] = 0x4000 | 1 << 13 | 0x0001;
    for (i, word) in w[100..104].iter_mut().enumerate() {
        *word = (d.sectors >> (16 * i)) as u16;
    }
    finish(w)
}

/// Cylinders of the current translation, as ATA-6 section 6.2.1 computes them (capped at 16383
/// and at least 1 so small images keep a valid geometry).
pub fn current_cylinders(sectors: u64, heads: u8, spt: u8) -> u16 {
    let per_cyl = u64::from(heads) * u64::from(spt);
    if per_cyl == 0 {
        return 0;
    }
    (sectors / per_cyl).clamp(1, 16383) as u16
}

/// IDENTIFY PACKET DEVICE for the CD-ROM.
pub fn identify_packet_device(identity: &DriveIdentity, mode: TransferMode) -> [u8; 512] {
    let mut w = [0u16; 256];
    // Word 0: ATAPI (15:14 = 10b), CD-ROM device type 05h (12:8), removable (7), DRQ within 50 us
    // after PACKET (6:5 = 10b, no interrupt before the packet), 12-byte packets (1:0 = 00b).
    w[0] = 0x8000 | 0x05 << 8 | 1 << 7 | 0b10 << 5;
    put_string(&mut w, 10, 20, &identity.serial);
    w[20] = 3;
    w[21] = 512;
    put_string(&mut w, 23, 8, &identity.firmware);
    put_string(&mut w, 27, 40, &identity.model);
    w[49] = 1 << 11 | 1 << 9 | 1 << 8; // IORDY, LBA, DMA
    w[53] = 0x0006; // words 64-70 and 88 valid
    let (w63, w88) = dma_words(mode);
    w[63] = w63;
    w[64] = 0x0003;
    w[65] = 120;
    w[66] = 120;
    w[67] = 120;
    w[68] = 120;
    w[71] = 30; // typical time from PACKET to bus release (ns), informational
    w[72] = 30;
    w[80] = 0x0070; // ATA/ATAPI-4 .. 6
    w[82] = 1 << 14 | 1 << 9 | 1 << 4; // NOP, DEVICE RESET, PACKET feature set
    w[83] = 0x4000;
    w[84] = 0x4000;
    w[85] = 1 << 9 | 1 << 4;
    w[87] = 0x4000;
    w[88] = w88;
    w[93] = 0x4000 | 1 << 13 | 0x0001;
    finish(w)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_byte_swapped_and_padded() {
        let mut w = [0u16; 256];
        put_string(&mut w, 27, 6, "ABC");
        assert_eq!(&w[27..30], &[0x4142, 0x4320, 0x2020]);
    }

    #[test]
    fn identify_checksum_makes_the_sector_sum_to_zero() {
        let id = DriveIdentity { model: "M".into(), serial: "S".into(), firmware: "F".into() };
        let data = identify_packet_device(&id, TransferMode::UltraDma(2));
        assert_eq!(data[510], 0xa5);
        assert_eq!(data.iter().fold(0u8, |a, b| a.wrapping_add(*b)), 0);
        // Word 88: UDMA 0-5 supported, mode 2 selected.
        assert_eq!(u16::from_le_bytes([data[176], data[177]]), 0x043f);
    }
}
