//! A PCI option ROM served read-only through the expansion ROM BAR (PCI 3.0 section 6.3:
//! header 0x55 0xaa, a pointer at 0x18 to the "PCIR" data structure carrying the vendor and
//! device id the ROM is for).
//!
//! What QEMU does when it loads a `romfile` [Q v7.2 hw/pci/pci.c pci_add_option_rom,
//! pci_patch_ids]: the BAR is the image size rounded up to a power of two, and the PCIR vendor
//! and device ids are patched to the device's, compensating in byte 6 (the checksum byte
//! etherboot and SeaVGABIOS reserve there) so the bytes still sum to zero. Firmware (SeaBIOS
//! `vgarom_setup`) refuses a ROM whose PCIR ids differ from the device's or whose checksum is
//! wrong, so both matter.

/// Smallest expansion ROM BAR (PCI 3.0 section 6.2.5.2).
const MIN_SIZE: usize = 2048;
/// Largest one this device model serves (the BAR can decode 16 MiB).
const MAX_SIZE: usize = 16 << 20;
const SIGNATURE: [u8; 2] = [0x55, 0xaa];
const PCIR_POINTER: usize = 0x18;
const CHECKSUM_BYTE: usize = 6;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OptionRomError {
    #[error("the option ROM is empty")]
    Empty,
    #[error("the option ROM is {0} bytes; at most 16 MiB fit an expansion ROM BAR")]
    TooLarge(usize),
}

/// A ROM image padded to its BAR size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OptionRom {
    bytes: Vec<u8>,
    /// Whether the image has a ROM header and PCIR structure (the ids were checked/patched).
    has_pcir: bool,
}

impl OptionRom {
    /// Takes `image` for the function `vendor_id:device_id`. An image without a ROM header or
    /// PCIR structure is served as it is (QEMU does the same); firmware will then skip it.
    pub fn new(image: &[u8], vendor_id: u16, device_id: u16) -> Result<Self, OptionRomError> {
        if image.is_empty() {
            return Err(OptionRomError::Empty);
        }
        if image.len() > MAX_SIZE {
            return Err(OptionRomError::TooLarge(image.len()));
        }
        let size = image.len().next_power_of_two().max(MIN_SIZE);
        let mut bytes = image.to_vec();
        bytes.resize(size, 0);
        let has_pcir = patch_ids(&mut bytes[..image.len()], vendor_id, device_id);
        Ok(OptionRom { bytes, has_pcir })
    }

    /// The expansion ROM BAR size (a power of two of at least 2 KiB).
    pub fn bar_size(&self) -> u64 {
        self.bytes.len() as u64
    }

    pub fn has_pcir(&self) -> bool {
        self.has_pcir
    }

    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// A read of the BAR at `offset`; past the end reads all ones. Writes are ignored (ROM).
    pub fn read(&self, offset: u64, data: &mut [u8]) {
        for (i, b) in data.iter_mut().enumerate() {
            *b = usize::try_from(offset)
                .ok()
                .and_then(|o| o.checked_add(i))
                .and_then(|o| self.bytes.get(o).copied())
                .unwrap_or(0xff);
        }
    }
}

fn word(rom: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes([*rom.get(at)?, *rom.get(at.checked_add(1)?)?]))
}

/// Patches the PCIR ids to `vendor:device`, keeping the byte sum. Returns whether the image has
/// a ROM header and PCIR structure.
fn patch_ids(rom: &mut [u8], vendor: u16, device: u16) -> bool {
    if rom.get(..2) != Some(&SIGNATURE[..]) || rom.len() <= CHECKSUM_BYTE {
        return false;
    }
    let Some(pcir) = word(rom, PCIR_POINTER).map(usize::from) else { return false };
    if pcir.checked_add(8).is_none_or(|end| end > rom.len()) || &rom[pcir..pcir + 4] != b"PCIR" {
        return false;
    }
    let mut delta: u8 = 0;
    for (at, want) in [(pcir + 4, vendor), (pcir + 6, device)] {
        let have = word(rom, at).unwrap_or(want);
        if have != want {
            let [hl, hh] = have.to_le_bytes();
            let [wl, wh] = want.to_le_bytes();
            delta = delta.wrapping_add(hl).wrapping_add(hh).wrapping_sub(wl).wrapping_sub(wh);
            rom[at..at + 2].copy_from_slice(&want.to_le_bytes());
        }
    }
    rom[CHECKSUM_BYTE] = rom[CHECKSUM_BYTE].wrapping_add(delta);
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 3 KiB ROM for 1013:00b8 with a PCIR structure at 0x40 and a zero byte sum.
    fn rom() -> Vec<u8> {
        let mut r = vec![0u8; 3072];
        r[0] = 0x55;
        r[1] = 0xaa;
        r[2] = 6; // 6 * 512 bytes
        r[0x18] = 0x40;
        r[0x40..0x44].copy_from_slice(b"PCIR");
        r[0x44..0x46].copy_from_slice(&0x1013u16.to_le_bytes());
        r[0x46..0x48].copy_from_slice(&0x00b8u16.to_le_bytes());
        r[100] = 0x37;
        let sum = r.iter().fold(0u8, |s, &b| s.wrapping_add(b));
        r[6] = 0u8.wrapping_sub(sum);
        r
    }

    fn sum(b: &[u8]) -> u8 {
        b.iter().fold(0u8, |s, &b| s.wrapping_add(b))
    }

    #[test]
    fn ids_are_patched_and_the_checksum_still_holds() {
        let rom = OptionRom::new(&rom(), 0x1234, 0x1111).unwrap();
        assert!(rom.has_pcir());
        assert_eq!(rom.bar_size(), 4096, "3 KiB rounds up to 4 KiB");
        let b = rom.bytes();
        assert_eq!(&b[0x44..0x48], &[0x34, 0x12, 0x11, 0x11]);
        assert_eq!(sum(&b[..3072]), 0);
        let mut d = [0u8; 4];
        rom.read(4094, &mut d);
        assert_eq!(d, [0, 0, 0xff, 0xff], "padding reads zero, past the BAR all ones");
    }

    #[test]
    fn a_matching_rom_is_unchanged_and_odd_images_are_served_as_they_are() {
        let image = rom();
        let same = OptionRom::new(&image, 0x1013, 0x00b8).unwrap();
        assert_eq!(&same.bytes()[..image.len()], &image[..]);
        let junk = OptionRom::new(&[1, 2, 3], 0x1234, 0x1111).unwrap();
        assert!(!junk.has_pcir());
        assert_eq!(junk.bar_size(), 2048);
        let mut bad_pointer = rom();
        bad_pointer[0x18] = 0xff;
        bad_pointer[0x19] = 0xff;
        assert!(!OptionRom::new(&bad_pointer, 1, 2).unwrap().has_pcir());
        assert_eq!(OptionRom::new(&[], 1, 2), Err(OptionRomError::Empty));
    }
}
