//! The i440FX/PIIX3/PIIX4 chipset functions Xen's hvmloader and Linux expect.
