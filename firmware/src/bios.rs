//! Where a BIOS image (SeaBIOS) appears in guest-physical memory.
//!
//! Like QEMU's pc machine, the whole image is mapped so that it ends at 4 GiB (the reset vector
//! at 0xfffffff0 lands in its last 16 bytes), and its last 128 KiB (or the whole image, if
//! smaller) is also mapped at the top of the first MiB, ending at 0x100000 (the ISA BIOS area
//! 0xe0000..0xfffff that real-mode code and legacy scans use).

use crate::layout;
use crate::Error;

/// Granularity of BIOS images (SeaBIOS builds are 64 KiB, 128 KiB or 256 KiB).
pub const BIOS_IMAGE_ALIGN: usize = 64 << 10;
/// How much of the image's tail is mirrored below 1 MiB.
pub const ISA_BIOS_MAX_SIZE: usize = 128 << 10;
/// End (exclusive) of the ISA BIOS mirror.
pub const ISA_BIOS_END: u64 = 0x10_0000;

/// The guest-physical ranges `(gpa, len)` an image of `image_len` bytes occupies. Each range
/// shows the *last* `len` bytes of the image: first the whole image ending at 4 GiB, then its
/// mirror ending at 1 MiB.
pub fn bios_regions(image_len: usize) -> Result<Vec<(u64, u64)>, Error> {
    if image_len == 0 || image_len & (BIOS_IMAGE_ALIGN - 1) != 0 || image_len as u64 > layout::BIOS_ROM_MAX_SIZE {
        return Err(Error::BiosImageSize { len: image_len });
    }
    let len = image_len as u64;
    let isa_len = image_len.min(ISA_BIOS_MAX_SIZE) as u64;
    Ok(vec![(layout::BIOS_ROM_END - len, len), (ISA_BIOS_END - isa_len, isa_len)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seabios_256k_maps_below_4g_and_its_tail_below_1m() {
        let regions = bios_regions(256 << 10).unwrap();
        assert_eq!(regions, vec![(0xfffc_0000, 0x4_0000), (0xe_0000, 0x2_0000)]);
    }

    #[test]
    fn small_image_is_mirrored_whole() {
        let regions = bios_regions(64 << 10).unwrap();
        assert_eq!(regions, vec![(0xffff_0000, 0x1_0000), (0xf_0000, 0x1_0000)]);
    }

    #[test]
    fn largest_image_stays_clear_of_the_apics() {
        let (start, len) = bios_regions(16 << 20).unwrap()[0];
        assert_eq!(start + len, 1 << 32);
        assert!(start >= layout::LAPIC_START + layout::LAPIC_SIZE);
    }

    #[test]
    fn rejects_odd_sizes() {
        for len in [0, 1000, (64 << 10) + 1, 32 << 20] {
            let err = bios_regions(len).unwrap_err();
            assert!(matches!(err, Error::BiosImageSize { .. }));
            assert!(err.to_string().contains("64 KiB"), "{err}");
        }
    }
}
