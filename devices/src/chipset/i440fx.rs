//! Intel 82441FX PCI and Memory Controller (PMC), the i440FX host bridge at 00:00.0.
//!
//! hvmloader, SeaBIOS and Linux identify the chipset by this function (8086:1237). Only the
//! registers firmware touches are implemented, as storage: the Programmable Attribute Map
//! (82441FX datasheet section 3.2.18, PAM0-PAM6 at 0x59-0x5f) and SMRAM control (section 3.2.21,
//! 0x72). Making PAM settings steer accesses to the BIOS shadow areas is the machine's job, through
//! [`I440fx::pam`].

use crate::pci::config::{PciIds, STATUS_DEVSEL_MEDIUM};
use crate::pci::function::{PciFunction, PciFunctionDevice, PciResources};
use crate::pci::PciAddress;

/// Where the host bridge lives.
pub const I440FX_ADDRESS: PciAddress = crate::pc::layout::pci::HOST_BRIDGE;
pub const I440FX_VENDOR_ID: u16 = 0x8086;
pub const I440FX_DEVICE_ID: u16 = 0x1237;
/// Revision 02 (82441FX datasheet section 3.2.4, as QEMU reports it).
pub const I440FX_REVISION: u8 = 0x02;

/// PAM0 (0x59) through PAM6 (0x5f): read/write enables for 0xc0000-0xfffff in 16 KiB (PAM1-6) and
/// 64 KiB (PAM0, 0xf0000) pieces.
pub const PAM0: u8 = 0x59;
pub const PAM_COUNT: u8 = 7;
/// PAM0 bits 3:0 are reserved; PAM1-6 use bits 5:4 and 1:0 (82441FX section 3.2.18).
const PAM0_WRITABLE: u8 = 0x30;
const PAM_WRITABLE: u8 = 0x33;

/// SMRAM control register (82441FX section 3.2.21).
pub const SMRAM: u8 = 0x72;
const SMRAM_D_OPEN: u8 = 1 << 6;
const SMRAM_D_CLS: u8 = 1 << 5;
const SMRAM_D_LCK: u8 = 1 << 4;
const SMRAM_G_SMRAME: u8 = 1 << 3;
/// C_BASE_SEG (bits 2:0) is hardwired to 010: SMRAM at 0xa0000.
const SMRAM_RESET: u8 = 0x02;

/// The host bridge function.
#[derive(Debug)]
pub struct I440fx {
    function: PciFunction,
}

impl Default for I440fx {
    fn default() -> Self {
        Self::new()
    }
}

impl I440fx {
    pub fn new() -> Self {
        let mut function = PciFunction::new(
            PciIds {
                vendor_id: I440FX_VENDOR_ID,
                device_id: I440FX_DEVICE_ID,
                revision_id: I440FX_REVISION,
                class: 0x06,    // bridge
                subclass: 0x00, // host bridge
                ..Default::default()
            },
            None,
            PciResources::none(),
        );
        let config = function.config_mut();
        config.set_status_bits(STATUS_DEVSEL_MEDIUM);
        config.set_writable_u8(PAM0, PAM0_WRITABLE);
        for i in 1..PAM_COUNT {
            config.set_writable_u8(PAM0 + i, PAM_WRITABLE);
        }
        config.set_u8(SMRAM, SMRAM_RESET);
        config.set_writable_u8(SMRAM, SMRAM_D_OPEN | SMRAM_D_CLS | SMRAM_D_LCK | SMRAM_G_SMRAME);
        I440fx { function }
    }

    /// PAM register `index` (0-6), as the guest last programmed it.
    pub fn pam(&self, index: u8) -> Option<u8> {
        (index < PAM_COUNT).then(|| self.function.config().read_u8(PAM0 + index))
    }

    /// The SMRAM control register.
    pub fn smram(&self) -> u8 {
        self.function.config().read_u8(SMRAM)
    }
}

impl PciFunctionDevice for I440fx {
    fn function(&self) -> &PciFunction {
        &self.function
    }
    fn function_mut(&mut self) -> &mut PciFunction {
        &mut self.function
    }

    /// Once D_LCK is set, D_OPEN is forced to 0 and D_LCK, G_SMRAME become read-only until reset
    /// (82441FX section 3.2.21). The write that sets D_LCK may still set the other bits; the
    /// mask tightens after it.
    fn config_written(&mut self, _offset: u16, _data: &[u8]) {
        if self.smram() & SMRAM_D_LCK != 0 {
            let smram = self.smram() & !SMRAM_D_OPEN;
            let config = self.function.config_mut();
            config.set_u8(SMRAM, smram);
            config.set_writable_u8(SMRAM, SMRAM_D_CLS);
        }
    }
}

impl crate::snapshot::Snapshot for I440fx {
    const ID: &'static str = "i440fx";
    const VERSION: u16 = 1;

    /// Configuration space, which holds PAM0-6 and SMRAM (QEMU `vmstate_i440fx`).
    fn save(&self, w: &mut crate::snapshot::StateWriter) {
        self.function.config().save_state(w);
    }

    fn restore(&mut self, r: &mut crate::snapshot::StateReader<'_>) -> Result<(), crate::snapshot::StateError> {
        let state = self.function.config().load_state(r)?;
        let smram = state.byte(SMRAM);
        if smram & SMRAM_D_LCK != 0 && smram & SMRAM_D_OPEN != 0 {
            return Err(r.invalid("smram", format!("{smram:#04x}: D_LCK forces D_OPEN to 0 (82441FX section 3.2.21)")));
        }
        r.finish()?;
        self.function.config_mut().apply_state(state);
        // The lock is state of the write mask too: re-derive it.
        let writable = if smram & SMRAM_D_LCK != 0 {
            SMRAM_D_CLS
        } else {
            SMRAM_D_OPEN | SMRAM_D_CLS | SMRAM_D_LCK | SMRAM_G_SMRAME
        };
        self.function.config_mut().set_writable_u8(SMRAM, writable);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pci::PciDevice;

    fn read(d: &mut I440fx, off: u16, len: usize) -> u32 {
        let mut b = [0u8; 4];
        d.config_read(off, &mut b[..len]);
        u32::from_le_bytes(b)
    }

    #[test]
    fn identifies_as_the_i440fx_host_bridge() {
        let mut d = I440fx::new();
        assert_eq!(read(&mut d, 0, 4), 0x1237_8086);
        assert_eq!(read(&mut d, 8, 4), 0x0600_0002);
        assert_eq!(read(&mut d, 0x0e, 1), 0, "single function");
        assert!(d.decoded_bars().is_empty());
    }

    #[test]
    fn pam_registers_keep_their_implemented_bits() {
        let mut d = I440fx::new();
        d.config_write(0x58, &0xffff_ffffu32.to_le_bytes());
        assert_eq!(read(&mut d, 0x58, 4), 0x3333_3000, "0x58 is not PAM; PAM0 low nibble reserved");
        d.config_write(0x5c, &0x1111_1111u32.to_le_bytes());
        assert_eq!(d.pam(3), Some(0x11));
        assert_eq!(d.pam(6), Some(0x11));
        assert_eq!(d.pam(7), None);
    }

    #[test]
    fn smram_lock_freezes_the_register() {
        let mut d = I440fx::new();
        assert_eq!(d.smram(), 0x02);
        d.config_write(0x72, &[0xff]);
        assert_eq!(d.smram(), 0x3a, "D_LCK set forces D_OPEN to 0");
        d.config_write(0x72, &[0x42]);
        assert_eq!(d.smram(), 0x1a, "only D_CLS stays writable after lock");
    }
}
