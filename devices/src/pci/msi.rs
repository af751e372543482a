//! MSI capability (PCI 3.0 section 6.8.1), 64-bit address form, with optional per-vector masking.
//!
//! The registers live in the function's [`ConfigSpace`]; this type knows where they are and what
//! they mean. The device calls [`MsiCapability::fire`] to signal a vector and
//! [`MsiCapability::after_config_write`] after every guest configuration write, so that a vector
//! unmasked by that write delivers the message it held pending.
//!
//! An MSI is a memory write by the function, so a device should not signal one while the Bus
//! Master Enable command bit is clear ([`ConfigSpace::bus_master_enabled`]); checking that is left
//! to the device, which also decides whether to fall back to INTx.

use std::sync::Arc;

use super::config::{ConfigError, ConfigSpace};
use crate::interrupt::MsiSink;

/// Capability ID of MSI (PCI 3.0 appendix H).
pub const MSI_CAPABILITY_ID: u8 = 0x05;

// Register offsets inside the capability, 64-bit form (PCI 3.0 figure 6-9).
const MESSAGE_CONTROL: u8 = 0x02;
const MESSAGE_ADDRESS: u8 = 0x04;
const MESSAGE_UPPER_ADDRESS: u8 = 0x08;
const MESSAGE_DATA: u8 = 0x0c;
const MASK_BITS: u8 = 0x10;
const PENDING_BITS: u8 = 0x14;

// Message Control bits (PCI 3.0 section 6.8.1.3).
const CONTROL_ENABLE: u16 = 1 << 0;
const CONTROL_MULTIPLE_MESSAGE_CAPABLE_SHIFT: u16 = 1;
const CONTROL_MULTIPLE_MESSAGE_ENABLE_SHIFT: u16 = 4;
const CONTROL_MULTIPLE_MESSAGE_ENABLE: u16 = 0x7 << CONTROL_MULTIPLE_MESSAGE_ENABLE_SHIFT;
const CONTROL_64BIT: u16 = 1 << 7;
const CONTROL_PER_VECTOR_MASKING: u16 = 1 << 8;

/// What happened to a message the device tried to send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MsiOutcome {
    /// Written to the sink.
    Sent,
    /// The vector is masked; its pending bit is set and the message goes out when unmasked.
    Pending,
    /// MSI (or MSI-X) is disabled; the device should use INTx instead (PCI 3.0 section 6.8).
    Disabled,
    /// The vector is beyond what the capability offers or the guest enabled; nothing was sent.
    InvalidVector,
}

/// The MSI capability of one function.
pub struct MsiCapability {
    offset: u8,
    /// Number of vectors the function requests (Multiple Message Capable), 1 to 32.
    vectors: u8,
    per_vector_masking: bool,
    sink: Arc<dyn MsiSink>,
}

impl std::fmt::Debug for MsiCapability {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MsiCapability")
            .field("offset", &self.offset)
            .field("vectors", &self.vectors)
            .field("per_vector_masking", &self.per_vector_masking)
            .finish()
    }
}

impl MsiCapability {
    /// Appends an MSI capability requesting `vectors` (a power of two, 1 to 32) messages to
    /// `config`'s capability list. Messages go to `sink`.
    pub fn new(
        config: &mut ConfigSpace,
        vectors: u8,
        per_vector_masking: bool,
        sink: Arc<dyn MsiSink>,
    ) -> Result<Self, ConfigError> {
        if !vectors.is_power_of_two() || vectors > 32 {
            return Err(ConfigError::BadVectorCount(vectors as u16));
        }
        let len = if per_vector_masking { 0x18 } else { 0x0e };
        let offset = config.add_capability(MSI_CAPABILITY_ID, len)?;
        let mmc = vectors.trailing_zeros() as u16;
        let mut control = CONTROL_64BIT | mmc << CONTROL_MULTIPLE_MESSAGE_CAPABLE_SHIFT;
        if per_vector_masking {
            control |= CONTROL_PER_VECTOR_MASKING;
        }
        config.set_u16(offset + MESSAGE_CONTROL, control);
        config.set_writable_u16(offset + MESSAGE_CONTROL, CONTROL_ENABLE | CONTROL_MULTIPLE_MESSAGE_ENABLE);
        // Message Address bits 1:0 are reserved, hardwired to 0 (section 6.8.1.4).
        config.set_writable_u32(offset + MESSAGE_ADDRESS, 0xffff_fffc);
        config.set_writable_u32(offset + MESSAGE_UPPER_ADDRESS, 0xffff_ffff);
        // Message Data is 16 bits; the upper half of the DWORD is reserved (section 6.8.1.7).
        config.set_writable_u16(offset + MESSAGE_DATA, 0xffff);
        if per_vector_masking {
            // Only the bits of implemented vectors are writable; the pending bits are read-only
            // (sections 6.8.1.8 and 6.8.1.9).
            config.set_writable_u32(offset + MASK_BITS, Self::vector_bits(vectors));
            // The function sets and clears pending bits itself; a restored state may have any.
            config.set_hardware_owned_u32(offset + PENDING_BITS, Self::vector_bits(vectors));
        }
        Ok(MsiCapability { offset, vectors, per_vector_masking, sink })
    }

    fn vector_bits(n: u8) -> u32 {
        if n >= 32 {
            u32::MAX
        } else {
            (1u32 << n) - 1
        }
    }

    /// Offset of the capability in configuration space.
    pub fn offset(&self) -> u8 {
        self.offset
    }

    fn control(&self, config: &ConfigSpace) -> u16 {
        config.read_u16(self.offset + MESSAGE_CONTROL)
    }

    /// MSI Enable (Message Control bit 0).
    pub fn enabled(&self, config: &ConfigSpace) -> bool {
        self.control(config) & CONTROL_ENABLE != 0
    }

    /// Number of vectors the guest allocated (Multiple Message Enable), never more than the
    /// function asked for even if software wrote a larger value.
    pub fn enabled_vectors(&self, config: &ConfigSpace) -> u8 {
        let mme = (self.control(config) & CONTROL_MULTIPLE_MESSAGE_ENABLE) >> CONTROL_MULTIPLE_MESSAGE_ENABLE_SHIFT;
        (1u8 << mme.min(5)).min(self.vectors)
    }

    pub fn address(&self, config: &ConfigSpace) -> u64 {
        config.read_u32(self.offset + MESSAGE_ADDRESS) as u64
            | (config.read_u32(self.offset + MESSAGE_UPPER_ADDRESS) as u64) << 32
    }

    pub fn data(&self, config: &ConfigSpace) -> u16 {
        config.read_u16(self.offset + MESSAGE_DATA)
    }

    /// Whether `vector` is masked by its Mask Bit (always false without per-vector masking).
    pub fn is_masked(&self, config: &ConfigSpace, vector: u8) -> bool {
        self.per_vector_masking && vector < 32 && config.read_u32(self.offset + MASK_BITS) & (1 << vector) != 0
    }

    /// Whether `vector` has a message held back by its mask.
    pub fn is_pending(&self, config: &ConfigSpace, vector: u8) -> bool {
        self.per_vector_masking && vector < 32 && config.read_u32(self.offset + PENDING_BITS) & (1 << vector) != 0
    }

    fn set_pending(&self, config: &mut ConfigSpace, vector: u8, pending: bool) {
        let p = config.read_u32(self.offset + PENDING_BITS);
        let p = if pending { p | 1 << vector } else { p & !(1 << vector) };
        config.set_u32(self.offset + PENDING_BITS, p);
    }

    /// Sends vector `vector`. With several messages enabled, the function modifies the low bits of
    /// the data to carry the vector number (section 6.8.1.7); the message is a DWORD write whose
    /// upper 16 bits are zero.
    fn send(&self, config: &ConfigSpace, vector: u8) {
        let n = self.enabled_vectors(config) as u16;
        let data = (self.data(config) & !(n - 1)) | vector as u16;
        self.sink.send_msi(self.address(config), data as u32);
    }

    /// Signals `vector`: sends it if MSI is enabled and the vector is not masked; holds it pending
    /// if masked (section 6.8.1.8).
    pub fn fire(&self, config: &mut ConfigSpace, vector: u8) -> MsiOutcome {
        if !self.enabled(config) {
            return MsiOutcome::Disabled;
        }
        if vector >= self.enabled_vectors(config) {
            return MsiOutcome::InvalidVector;
        }
        if self.is_masked(config, vector) {
            self.set_pending(config, vector, true);
            return MsiOutcome::Pending;
        }
        self.send(config, vector);
        MsiOutcome::Sent
    }

    /// Call after every guest configuration write: a vector whose mask was cleared while its
    /// pending bit was set sends its message now and clears the pending bit.
    pub fn after_config_write(&self, config: &mut ConfigSpace) {
        if !self.per_vector_masking || !self.enabled(config) {
            return;
        }
        for vector in 0..self.enabled_vectors(config) {
            if self.is_pending(config, vector) && !self.is_masked(config, vector) {
                self.set_pending(config, vector, false);
                self.send(config, vector);
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::pci::config::PciIds;
    use std::sync::Mutex;

    /// Remembers every message, in order.
    #[derive(Default)]
    pub(crate) struct RecordingSink(pub Mutex<Vec<(u64, u32)>>);

    impl RecordingSink {
        pub(crate) fn take(&self) -> Vec<(u64, u32)> {
            std::mem::take(&mut self.0.lock().unwrap())
        }
    }

    impl MsiSink for RecordingSink {
        fn send_msi(&self, address: u64, data: u32) {
            self.0.lock().unwrap().push((address, data));
        }
    }

    fn setup(vectors: u8, masking: bool) -> (ConfigSpace, MsiCapability, Arc<RecordingSink>) {
        let mut c = ConfigSpace::new(PciIds { vendor_id: 0x8086, device_id: 0x1234, ..Default::default() });
        let sink = Arc::new(RecordingSink::default());
        let msi = MsiCapability::new(&mut c, vectors, masking, sink.clone()).unwrap();
        (c, msi, sink)
    }

    /// Guest-side programming through configuration writes.
    fn guest_write(c: &mut ConfigSpace, msi: &MsiCapability, off: u8, v: u32, len: usize) {
        c.write((msi.offset() + off) as u16, &v.to_le_bytes()[..len]);
        msi.after_config_write(c);
    }

    #[test]
    fn control_register_advertises_the_capability() {
        let (c, msi, _) = setup(4, true);
        assert_eq!(c.capabilities(), vec![(MSI_CAPABILITY_ID, msi.offset())]);
        // 64-bit, per-vector masking, Multiple Message Capable = 2 (4 vectors), disabled.
        assert_eq!(c.read_u16(msi.offset() + 2), 0x0184);
    }

    #[test]
    fn disabled_msi_sends_nothing_and_enabled_msi_sends_the_programmed_message() {
        let (mut c, msi, sink) = setup(1, false);
        assert_eq!(msi.fire(&mut c, 0), MsiOutcome::Disabled);
        guest_write(&mut c, &msi, 4, 0xfee0_100f, 4);
        guest_write(&mut c, &msi, 8, 0x1, 4);
        guest_write(&mut c, &msi, 0xc, 0xdead_4041, 4);
        assert_eq!(msi.fire(&mut c, 0), MsiOutcome::Disabled);
        assert!(sink.take().is_empty());
        guest_write(&mut c, &msi, 2, 0xffff, 2);
        assert!(msi.enabled(&c));
        assert_eq!(msi.enabled_vectors(&c), 1, "MME above MMC is clamped");
        assert_eq!(msi.fire(&mut c, 0), MsiOutcome::Sent);
        // Address bits 1:0 and the upper half of the data DWORD are hardwired to 0.
        assert_eq!(sink.take(), vec![(0x1_fee0_100c, 0x4041)]);
        assert_eq!(msi.fire(&mut c, 1), MsiOutcome::InvalidVector);
    }

    #[test]
    fn multiple_messages_carry_the_vector_in_the_low_data_bits() {
        let (mut c, msi, sink) = setup(8, false);
        guest_write(&mut c, &msi, 4, 0xfee0_0000, 4);
        guest_write(&mut c, &msi, 0xc, 0x43, 2);
        // Enable with MME = 2 (4 vectors).
        guest_write(&mut c, &msi, 2, 0x21, 2);
        assert_eq!(msi.enabled_vectors(&c), 4);
        assert_eq!(msi.fire(&mut c, 2), MsiOutcome::Sent);
        assert_eq!(msi.fire(&mut c, 4), MsiOutcome::InvalidVector);
        assert_eq!(sink.take(), vec![(0xfee0_0000, 0x42)]);
    }

    #[test]
    fn masked_vector_goes_pending_and_fires_when_unmasked() {
        let (mut c, msi, sink) = setup(2, true);
        guest_write(&mut c, &msi, 4, 0xfee0_0000, 4);
        guest_write(&mut c, &msi, 0xc, 0x30, 2);
        guest_write(&mut c, &msi, 0x10, 0xffff_ffff, 4);
        assert_eq!(c.read_u32(msi.offset() + 0x10), 0x3, "only implemented vectors have mask bits");
        guest_write(&mut c, &msi, 2, 0x11, 2);
        assert_eq!(msi.fire(&mut c, 1), MsiOutcome::Pending);
        assert!(sink.take().is_empty());
        assert_eq!(c.read_u32(msi.offset() + 0x14), 0x2);
        // The guest cannot clear pending bits.
        guest_write(&mut c, &msi, 0x14, 0, 4);
        assert!(msi.is_pending(&c, 1));
        // Unmasking vector 0 delivers nothing; unmasking vector 1 delivers its held message once.
        guest_write(&mut c, &msi, 0x10, 0x2, 4);
        assert!(sink.take().is_empty());
        guest_write(&mut c, &msi, 0x10, 0x0, 4);
        assert_eq!(sink.take(), vec![(0xfee0_0000, 0x31)]);
        assert!(!msi.is_pending(&c, 1));
        guest_write(&mut c, &msi, 0x10, 0x0, 4);
        assert!(sink.take().is_empty());
    }

    #[test]
    fn bad_vector_counts_are_refused() {
        let mut c = ConfigSpace::new(PciIds::default());
        let sink = Arc::new(RecordingSink::default());
        assert!(MsiCapability::new(&mut c, 3, false, sink.clone()).is_err());
        assert!(MsiCapability::new(&mut c, 64, false, sink.clone()).is_err());
        assert!(MsiCapability::new(&mut c, 0, false, sink).is_err());
    }
}
