//! Virtio over PCI (virtio 1.2 section 4.1), non-transitional: vendor-specific capabilities
//! point the driver at the common configuration, notification, ISR and device-specific
//! structures in one memory BAR; MSI-X (table and PBA in their own BAR) carries a configuration
//! vector and one vector per queue, and without MSI-X the device interrupts through INTA# and
//! the ISR status register.
//!
//! BAR layout (QEMU's, so guest tools that look at it see the same thing): BAR1 the MSI-X table
//! at 0 and PBA at 0x800; BAR4 16 KiB with common configuration at 0x0000, ISR at 0x1000,
//! device configuration at 0x2000 and notifications at 0x3000 (notify_off_multiplier 4, queue N
//! at 0x3000 + 4 N). One difference: BAR4 is a 32-bit BAR (QEMU's is 64-bit prefetchable), so it
//! always lands below 4 GiB, where every firmware and Xen's BAR tracking place it.
//!
//! Not implemented: the PCI configuration access capability (VIRTIO_PCI_CAP_PCI_CFG, 4.1.4.9),
//! which drivers only need when they cannot map the BAR (Linux never uses it).

use super::queue::SplitQueue;
use super::spec::*;
use super::{VirtioDevice, VirtioError};
use crate::interrupt::IntxPin;
use crate::pci::config::{BarKind, ConfigError, ConfigSpace, PciIds};
use crate::pci::function::{PciFunction, PciFunctionDevice, PciResources};
use crate::pci::msix::{MsixLocation, MSIX_ENTRY_SIZE, MSIX_MAX_VECTORS};
use crate::snapshot::{StateError, StateReader, StateWriter};

pub const MSIX_BAR: u8 = 1;
pub const VIRTIO_BAR: u8 = 4;
pub const VIRTIO_BAR_SIZE: u64 = 0x4000;
pub const COMMON_OFFSET: u64 = 0x0000;
pub const ISR_OFFSET: u64 = 0x1000;
pub const DEVICE_OFFSET: u64 = 0x2000;
pub const NOTIFY_OFFSET: u64 = 0x3000;
pub const REGION_SIZE: u64 = 0x1000;
pub const NOTIFY_OFF_MULTIPLIER: u32 = 4;
/// QEMU's virtio-rng-pci default: a configuration vector and one for requestq.
pub const DEFAULT_MSIX_VECTORS: u16 = 2;

/// A virtio device on PCI.
pub struct VirtioPci<D: VirtioDevice> {
    function: PciFunction,
    device: D,
    /// Every feature offered: the device's plus VIRTIO_F_VERSION_1.
    offered_features: u64,
    device_feature_select: u32,
    driver_feature_select: u32,
    driver_features: u64,
    status: u8,
    config_generation: u8,
    config_vector: u16,
    queue_select: u16,
    queues: Vec<SplitQueue>,
    queue_vectors: Vec<u16>,
    isr: u8,
}

impl<D: VirtioDevice> std::fmt::Debug for VirtioPci<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VirtioPci")
            .field("device_id", &self.device.device_id())
            .field("status", &self.status)
            .field("driver_features", &self.driver_features)
            .field("isr", &self.isr)
            .finish()
    }
}

/// Appends a `struct virtio_pci_cap` (4.1.4) pointing into the virtio BAR; the notify
/// structure also carries its multiplier (4.1.4.4). All of it is read-only.
fn add_virtio_cap(
    config: &mut ConfigSpace,
    cfg_type: u8,
    offset: u64,
    length: u64,
    multiplier: Option<u32>,
) -> Result<(), ConfigError> {
    let len = if multiplier.is_some() { PCI_NOTIFY_CAP_LEN } else { PCI_CAP_LEN };
    let at = config.add_capability(PCI_CAP_ID_VENDOR, len)?;
    config.set_u8(at + 2, len);
    config.set_u8(at + 3, cfg_type);
    config.set_u8(at + 4, VIRTIO_BAR);
    config.set_u32(at + 8, offset as u32);
    config.set_u32(at + 12, length as u32);
    if let Some(m) = multiplier {
        config.set_u32(at + 16, m);
    }
    Ok(())
}

/// The value of a 64-bit register as an 8-byte access or either 32-bit half (4.1.3.1).
fn part64(value: u64, offset_in_field: u64, len: usize) -> Option<u64> {
    match (offset_in_field, len) {
        (0, 8) => Some(value),
        (0, 4) => Some(value & 0xffff_ffff),
        (4, 4) => Some(value >> 32),
        _ => None,
    }
}

/// `value` with the part an access of `len` bytes at `offset_in_field` wrote replaced by `data`.
fn merge64(value: u64, offset_in_field: u64, len: usize, data: u64) -> Option<u64> {
    match (offset_in_field, len) {
        (0, 8) => Some(data),
        (0, 4) => Some((value & !0xffff_ffff) | (data & 0xffff_ffff)),
        (4, 4) => Some((value & 0xffff_ffff) | (data << 32)),
        _ => None,
    }
}

impl<D: VirtioDevice> VirtioPci<D> {
    /// `device` behind a PCI function with `msix_vectors` MSI-X vectors (0: no MSI-X
    /// capability, INTx only, like QEMU's `vectors=0`).
    pub fn new(device: D, msix_vectors: u16, resources: PciResources) -> Result<Self, ConfigError> {
        let (class, subclass, prog_if) = device.pci_class();
        let ids = PciIds {
            vendor_id: PCI_VENDOR_ID,
            device_id: PCI_MODERN_DEVICE_ID_BASE + device.device_id(),
            revision_id: PCI_MODERN_REVISION,
            class,
            subclass,
            prog_if,
            subsystem_vendor_id: PCI_SUBSYSTEM_VENDOR_ID,
            subsystem_id: PCI_SUBSYSTEM_ID,
            multifunction: false,
        };
        let mut function = PciFunction::new(ids, Some(IntxPin::IntA), resources);
        let config = function.config_mut();
        config.declare_bar(VIRTIO_BAR, BarKind::Memory32 { prefetchable: false }, VIRTIO_BAR_SIZE)?;
        add_virtio_cap(config, PCI_CAP_COMMON_CFG, COMMON_OFFSET, COMMON_CFG_LEN, None)?;
        add_virtio_cap(config, PCI_CAP_ISR_CFG, ISR_OFFSET, 1, None)?;
        let config_len = device.config_len().min(REGION_SIZE);
        if config_len > 0 {
            add_virtio_cap(config, PCI_CAP_DEVICE_CFG, DEVICE_OFFSET, config_len, None)?;
        }
        let queue_count = device.queue_max_sizes().len() as u64;
        let notify_len = (queue_count * NOTIFY_OFF_MULTIPLIER as u64).clamp(2, REGION_SIZE);
        add_virtio_cap(config, PCI_CAP_NOTIFY_CFG, NOTIFY_OFFSET, notify_len, Some(NOTIFY_OFF_MULTIPLIER))?;
        if msix_vectors > 0 {
            if msix_vectors > MSIX_MAX_VECTORS {
                return Err(ConfigError::BadVectorCount(msix_vectors));
            }
            let table_len = msix_vectors as u64 * MSIX_ENTRY_SIZE;
            let pba_offset = table_len.max(0x800);
            let pba_len = (msix_vectors as u64).div_ceil(64) * 8;
            let bar_size = (pba_offset + pba_len).next_power_of_two().max(0x1000);
            function.config_mut().declare_bar(MSIX_BAR, BarKind::Memory32 { prefetchable: false }, bar_size)?;
            function.add_msix(
                msix_vectors,
                MsixLocation { bar: MSIX_BAR, offset: 0 },
                MsixLocation { bar: MSIX_BAR, offset: pba_offset as u32 },
            )?;
        }
        let queues: Vec<SplitQueue> = device.queue_max_sizes().iter().map(|&s| SplitQueue::new(s)).collect();
        let queue_vectors = vec![NO_VECTOR; queues.len()];
        let offered_features = device.features() | F_VERSION_1;
        Ok(VirtioPci {
            function,
            device,
            offered_features,
            device_feature_select: 0,
            driver_feature_select: 0,
            driver_features: 0,
            status: 0,
            config_generation: 0,
            config_vector: NO_VECTOR,
            queue_select: 0,
            queues,
            queue_vectors,
            isr: 0,
        })
    }

    pub fn device(&self) -> &D {
        &self.device
    }
    pub fn status(&self) -> u8 {
        self.status
    }
    pub fn driver_features(&self) -> u64 {
        self.driver_features
    }

    fn msix_enabled(&self) -> bool {
        self.function.msix().is_some_and(|m| m.enabled())
    }

    /// A vector the driver asked for, or NO_VECTOR when there is no such MSI-X entry: the
    /// device answers a failed mapping by reading back NO_VECTOR (4.1.5.1.2).
    fn checked_vector(&self, v: u16) -> u16 {
        match self.function.msix() {
            Some(m) if v < m.vectors() => v,
            _ => NO_VECTOR,
        }
    }

    /// Device reset (2.1.2 / 4.1.4.3.1: writing 0 to device_status): every register back to its
    /// reset value, queues disabled, nothing pending. The MSI-X table is PCI state and stays.
    fn reset_device(&mut self) {
        self.device_feature_select = 0;
        self.driver_feature_select = 0;
        self.driver_features = 0;
        self.status = 0;
        self.config_vector = NO_VECTOR;
        self.queue_select = 0;
        self.queues.iter_mut().for_each(SplitQueue::reset);
        self.queue_vectors.fill(NO_VECTOR);
        self.isr = 0;
        self.function.set_intx_request(false);
        self.device.reset();
    }

    /// The device entered an error state it needs a reset to leave (2.1.2): DEVICE_NEEDS_RESET,
    /// and if the driver is running, a configuration change notification (4.1.5.3 / 2.1.2).
    fn needs_reset(&mut self, e: &VirtioError) {
        crate::guest_warn!("virtio-{}: {e}; device needs reset", self.device.device_id());
        if self.status & STATUS_DEVICE_NEEDS_RESET != 0 {
            return;
        }
        self.status |= STATUS_DEVICE_NEEDS_RESET;
        if self.status & STATUS_DRIVER_OK != 0 {
            self.config_interrupt();
        }
    }

    /// Configuration change notification (4.1.5.3): the configuration vector with MSI-X,
    /// otherwise ISR bit 1 and INTx.
    fn config_interrupt(&mut self) {
        if self.msix_enabled() {
            if self.config_vector != NO_VECTOR {
                self.function.signal(self.config_vector);
            }
        } else {
            self.isr |= ISR_CONFIG;
            self.function.set_intx_request(true);
        }
    }

    /// Used buffer notification for queue `index` (4.1.5.2): its vector with MSI-X (none if
    /// NO_VECTOR), otherwise ISR bit 0 and INTx.
    fn queue_interrupt(&mut self, index: usize) {
        if self.msix_enabled() {
            let v = self.queue_vectors.get(index).copied().unwrap_or(NO_VECTOR);
            if v != NO_VECTOR {
                self.function.signal(v);
            }
        } else {
            self.isr |= ISR_QUEUE;
            self.function.set_intx_request(true);
        }
    }

    /// The driver notified queue `index`: serve it if the device is live (3.1.1: no buffers are
    /// used before DRIVER_OK; none after an error until reset).
    fn notify(&mut self, index: u16) {
        if self.status & STATUS_DRIVER_OK == 0 || self.status & STATUS_DEVICE_NEEDS_RESET != 0 {
            return;
        }
        let mem = self.function.dma();
        let Some(queue) = self.queues.get_mut(index as usize) else {
            crate::guest_warn!(
                "virtio-{}: notification of queue {index}, which does not exist",
                self.device.device_id()
            );
            return;
        };
        if !queue.ready {
            return;
        }
        let result =
            self.device.process_queue(index, queue, &*mem).and_then(|used| Ok(used && queue.wants_interrupt(&*mem)?));
        match result {
            Ok(true) => self.queue_interrupt(index as usize),
            Ok(false) => {}
            Err(e) => self.needs_reset(&e),
        }
    }

    fn features_acceptable(&self) -> bool {
        self.driver_features & !self.offered_features == 0 && self.driver_features & F_VERSION_1 != 0
    }

    /// A device_status write (2.1, 3.1.1).
    fn write_status(&mut self, v: u8) {
        if v == 0 {
            self.reset_device();
            return;
        }
        let old = self.status;
        // DEVICE_NEEDS_RESET is the device's to set; only a reset clears it.
        let mut new = (v & !STATUS_DEVICE_NEEDS_RESET) | (old & STATUS_DEVICE_NEEDS_RESET);
        // 2.2.2: the device refuses FEATURES_OK for a subset it cannot support; a modern device
        // needs VIRTIO_F_VERSION_1 (6.1), so a legacy driver sees FEATURES_OK stay clear.
        if new & STATUS_FEATURES_OK != 0 && old & STATUS_FEATURES_OK == 0 && !self.features_acceptable() {
            crate::guest_warn!(
                "virtio-{}: driver features {:#x} not acceptable (offered {:#x}); FEATURES_OK refused",
                self.device.device_id(),
                self.driver_features,
                self.offered_features
            );
            new &= !STATUS_FEATURES_OK;
        }
        self.status = new;
        if new & STATUS_DRIVER_OK != 0 && old & STATUS_DRIVER_OK == 0 {
            if new & STATUS_FEATURES_OK == 0 {
                // 3.1.1: DRIVER_OK only after FEATURES_OK; without it nothing was negotiated.
                self.needs_reset(&VirtioError::Host("DRIVER_OK set without FEATURES_OK".into()));
                return;
            }
            // Buffers made available (and notified) before DRIVER_OK were not used then; use
            // them now rather than lose the notification.
            for q in 0..self.queues.len() as u16 {
                self.notify(q);
            }
        }
    }

    fn selected(&self) -> Option<&SplitQueue> {
        self.queues.get(self.queue_select as usize)
    }

    /// A read of the common configuration structure (4.1.4.3), natural-width fields only
    /// (4.1.3.1); `None` for an access that matches no field.
    fn common_read(&self, offset: u64, len: usize) -> Option<u64> {
        let q = self.selected();
        let qi = self.queue_select as usize;
        Some(match (offset, len) {
            (COMMON_DEVICE_FEATURE_SELECT, 4) => self.device_feature_select as u64,
            (COMMON_DEVICE_FEATURE, 4) => match self.device_feature_select {
                0 => self.offered_features & 0xffff_ffff,
                1 => self.offered_features >> 32,
                _ => 0,
            },
            (COMMON_DRIVER_FEATURE_SELECT, 4) => self.driver_feature_select as u64,
            (COMMON_DRIVER_FEATURE, 4) => match self.driver_feature_select {
                0 => self.driver_features & 0xffff_ffff,
                1 => self.driver_features >> 32,
                _ => 0,
            },
            (COMMON_CONFIG_MSIX_VECTOR, 2) => self.config_vector as u64,
            (COMMON_NUM_QUEUES, 2) => self.queues.len() as u64,
            (COMMON_DEVICE_STATUS, 1) => self.status as u64,
            (COMMON_CONFIG_GENERATION, 1) => self.config_generation as u64,
            (COMMON_QUEUE_SELECT, 2) => self.queue_select as u64,
            // An unavailable queue reads size 0 (4.1.4.3.1) and zero everywhere else.
            (COMMON_QUEUE_SIZE, 2) => q.map_or(0, |q| q.size as u64),
            (COMMON_QUEUE_MSIX_VECTOR, 2) => self.queue_vectors.get(qi).map_or(0, |&v| v as u64),
            (COMMON_QUEUE_ENABLE, 2) => q.map_or(0, |q| q.ready as u64),
            (COMMON_QUEUE_NOTIFY_OFF, 2) => q.map_or(0, |_| qi as u64),
            (o, l) if (COMMON_QUEUE_DESC..COMMON_QUEUE_DESC + 8).contains(&o) => {
                part64(q.map_or(0, |q| q.desc_table), o - COMMON_QUEUE_DESC, l)?
            }
            (o, l) if (COMMON_QUEUE_DRIVER..COMMON_QUEUE_DRIVER + 8).contains(&o) => {
                part64(q.map_or(0, |q| q.avail_ring), o - COMMON_QUEUE_DRIVER, l)?
            }
            (o, l) if (COMMON_QUEUE_DEVICE..COMMON_QUEUE_DEVICE + 8).contains(&o) => {
                part64(q.map_or(0, |q| q.used_ring), o - COMMON_QUEUE_DEVICE, l)?
            }
            _ => return None,
        })
    }

    fn common_write(&mut self, offset: u64, len: usize, value: u64) {
        let qi = self.queue_select as usize;
        let ok = match (offset, len) {
            (COMMON_DEVICE_FEATURE_SELECT, 4) => {
                self.device_feature_select = value as u32;
                true
            }
            (COMMON_DRIVER_FEATURE_SELECT, 4) => {
                self.driver_feature_select = value as u32;
                true
            }
            (COMMON_DRIVER_FEATURE, 4) => {
                // Features are fixed once FEATURES_OK is set (3.1.1 step 5).
                if self.status & STATUS_FEATURES_OK == 0 {
                    let v = value & 0xffff_ffff;
                    match self.driver_feature_select {
                        0 => self.driver_features = (self.driver_features & !0xffff_ffff) | v,
                        1 => self.driver_features = (self.driver_features & 0xffff_ffff) | (v << 32),
                        _ => {}
                    }
                }
                true
            }
            (COMMON_CONFIG_MSIX_VECTOR, 2) => {
                self.config_vector = self.checked_vector(value as u16);
                true
            }
            (COMMON_DEVICE_STATUS, 1) => {
                self.write_status(value as u8);
                true
            }
            (COMMON_QUEUE_SELECT, 2) => {
                self.queue_select = value as u16;
                true
            }
            (COMMON_QUEUE_MSIX_VECTOR, 2) => {
                let v = self.checked_vector(value as u16);
                if let Some(slot) = self.queue_vectors.get_mut(qi) {
                    *slot = v;
                }
                true
            }
            (COMMON_QUEUE_ENABLE, 2) => {
                // Only 1 enables; 0 would be a queue reset, which needs VIRTIO_F_RING_RESET.
                if value == 1 {
                    let check = match self.queues.get_mut(qi) {
                        Some(q) if !q.ready => q.validate().map(|()| q.ready = true),
                        _ => Ok(()),
                    };
                    if let Err(e) = check {
                        self.needs_reset(&e.into());
                    }
                }
                true
            }
            (COMMON_QUEUE_SIZE, 2) | (COMMON_QUEUE_DESC..=0x2f, _) | (COMMON_QUEUE_DEVICE..=0x37, _) => {
                self.queue_field_write(qi, offset, len, value)
            }
            _ => false,
        };
        if !ok {
            crate::guest_warn!(
                "virtio-{}: common configuration write of {len} bytes at {offset:#x} ignored",
                self.device.device_id()
            );
        }
    }

    /// Size and ring addresses: the driver sets them before enabling the queue (4.1.4.3.2);
    /// once it is enabled they are fixed until reset.
    fn queue_field_write(&mut self, qi: usize, offset: u64, len: usize, value: u64) -> bool {
        let Some(q) = self.queues.get_mut(qi) else { return true };
        if q.ready {
            return false;
        }
        let field = |base: u64, cur: u64| merge64(cur, offset - base, len, value);
        match offset {
            COMMON_QUEUE_SIZE => {
                q.size = value as u16;
                return true;
            }
            o if o >= COMMON_QUEUE_DEVICE => field(COMMON_QUEUE_DEVICE, q.used_ring).map(|v| q.used_ring = v),
            o if o >= COMMON_QUEUE_DRIVER => field(COMMON_QUEUE_DRIVER, q.avail_ring).map(|v| q.avail_ring = v),
            _ => field(COMMON_QUEUE_DESC, q.desc_table).map(|v| q.desc_table = v),
        }
        .is_some()
    }

    /// ISR status (4.1.4.5): reading returns and clears it, and deasserts INTx.
    fn read_isr(&mut self) -> u8 {
        let v = self.isr;
        self.isr = 0;
        self.function.set_intx_request(false);
        v
    }
}

impl<D: VirtioDevice> PciFunctionDevice for VirtioPci<D> {
    fn function(&self) -> &PciFunction {
        &self.function
    }
    fn function_mut(&mut self) -> &mut PciFunction {
        &mut self.function
    }

    fn read_bar(&mut self, bar: u8, offset: u64, data: &mut [u8]) {
        data.fill(0);
        if bar != VIRTIO_BAR || !matches!(data.len(), 1 | 2 | 4 | 8) {
            return;
        }
        let len = data.len();
        let (region, off) = (offset / REGION_SIZE * REGION_SIZE, offset % REGION_SIZE);
        match region {
            COMMON_OFFSET => match self.common_read(off, len) {
                Some(v) => data.copy_from_slice(&v.to_le_bytes()[..len]),
                None => crate::guest_warn!(
                    "virtio-{}: common configuration read of {len} bytes at {off:#x}",
                    self.device.device_id()
                ),
            },
            ISR_OFFSET if off == 0 => data[0] = self.read_isr(),
            DEVICE_OFFSET if off.checked_add(len as u64).is_some_and(|e| e <= self.device.config_len()) => {
                self.device.read_config(off, data)
            }
            _ => {}
        }
    }

    fn write_bar(&mut self, bar: u8, offset: u64, data: &[u8]) {
        if bar != VIRTIO_BAR || !matches!(data.len(), 1 | 2 | 4 | 8) {
            return;
        }
        let len = data.len();
        let mut raw = [0u8; 8];
        raw[..len].copy_from_slice(data);
        let value = u64::from_le_bytes(raw);
        let (region, off) = (offset / REGION_SIZE * REGION_SIZE, offset % REGION_SIZE);
        match region {
            COMMON_OFFSET => self.common_write(off, len, value),
            DEVICE_OFFSET if off.checked_add(len as u64).is_some_and(|e| e <= self.device.config_len()) => {
                self.device.write_config(off, data)
            }
            // 4.1.4.4: queue N's notification address is notify base + N * multiplier; the value
            // written (the queue index without VIRTIO_F_NOTIFICATION_DATA) adds nothing.
            NOTIFY_OFFSET if off % NOTIFY_OFF_MULTIPLIER as u64 == 0 && matches!(len, 2 | 4) => {
                if let Ok(q) = u16::try_from(off / NOTIFY_OFF_MULTIPLIER as u64) {
                    self.notify(q)
                }
            }
            _ => crate::guest_warn!(
                "virtio-{}: write of {len} bytes at BAR{bar} offset {offset:#x} ignored",
                self.device.device_id()
            ),
        }
    }
}

/// Save/restore of the transport's state (the device type adds its own after it).
impl<D: VirtioDevice> VirtioPci<D> {
    pub fn save_transport(&self, w: &mut StateWriter) {
        self.function.save(w);
        w.u32(self.device_feature_select);
        w.u32(self.driver_feature_select);
        w.u64(self.driver_features);
        w.u8(self.status);
        w.u8(self.config_generation);
        w.u16(self.config_vector);
        w.u16(self.queue_select);
        w.u8(self.isr);
        w.u16(self.queues.len() as u16);
        for (q, &vector) in self.queues.iter().zip(&self.queue_vectors) {
            let (next_avail, next_used) = q.positions();
            w.u16(q.size);
            w.bool(q.ready);
            w.u64(q.desc_table);
            w.u64(q.avail_ring);
            w.u64(q.used_ring);
            w.u16(next_avail);
            w.u16(next_used);
            w.u16(vector);
        }
    }

    /// Reads and checks a saved transport state, then applies it; a refused image changes
    /// nothing.
    pub fn restore_transport(&mut self, r: &mut StateReader<'_>) -> Result<(), StateError> {
        let function = self.function.load(r)?;
        let device_feature_select = r.u32("device_feature_select")?;
        let driver_feature_select = r.u32("driver_feature_select")?;
        let driver_features = r.u64("driver_features")?;
        if driver_features & !self.offered_features != 0 {
            return Err(r.invalid("driver_features", "features this device does not offer"));
        }
        let status = r.u8("status")?;
        let config_generation = r.u8("config_generation")?;
        let config_vector = r.u16("config_vector")?;
        let queue_select = r.u16("queue_select")?;
        let isr = r.u8("isr")?;
        if isr & !(ISR_QUEUE | ISR_CONFIG) != 0 {
            return Err(r.invalid("isr", "undefined ISR bits"));
        }
        let count = r.u16("queues")?;
        if count as usize != self.queues.len() {
            return Err(r.invalid("queues", "queue count differs from this device"));
        }
        let mut queues = self.queues.clone();
        let mut vectors = Vec::with_capacity(queues.len());
        for q in queues.iter_mut() {
            q.size = r.u16("queue_size")?;
            q.ready = r.bool("queue_ready")?;
            q.desc_table = r.u64("queue_desc")?;
            q.avail_ring = r.u64("queue_driver")?;
            q.used_ring = r.u64("queue_device")?;
            let (next_avail, next_used) = (r.u16("next_avail")?, r.u16("next_used")?);
            q.set_positions(next_avail, next_used);
            if q.ready && q.validate().is_err() {
                return Err(r.invalid("queue", "an enabled queue with an invalid layout"));
            }
            vectors.push(r.u16("queue_vector")?);
        }
        r.finish()?;
        self.function.apply(function);
        let valid_vector = |v: u16| v == NO_VECTOR || self.checked_vector(v) == v;
        if !valid_vector(config_vector) || !vectors.iter().all(|&v| valid_vector(v)) {
            // Checked after apply: the MSI-X table size comes with the function. Vectors that
            // do not exist read back NO_VECTOR, as after a failed mapping.
            crate::guest_warn!("virtio: restored MSI-X vectors beyond the table read NO_VECTOR");
        }
        self.config_vector = self.checked_vector(config_vector);
        self.queue_vectors = vectors.iter().map(|&v| self.checked_vector(v)).collect();
        self.device_feature_select = device_feature_select;
        self.driver_feature_select = driver_feature_select;
        self.driver_features = driver_features;
        self.status = status;
        self.config_generation = config_generation;
        self.queue_select = queue_select;
        self.queues = queues;
        self.isr = isr;
        // The pin follows the ISR (the restored Status bit 3 says the same).
        if !self.function.messages_enabled() {
            self.function.set_intx_request(isr != 0);
        }
        Ok(())
    }
}

/// `-device virtio-rng-pci`.
pub type VirtioRngPci = VirtioPci<super::rng::VirtioRng>;

impl crate::snapshot::Snapshot for VirtioRngPci {
    const ID: &'static str = "virtio-rng-pci";
    const VERSION: u16 = 1;

    fn save(&self, w: &mut StateWriter) {
        self.save_transport(w);
    }

    fn restore(&mut self, r: &mut StateReader<'_>) -> Result<(), StateError> {
        self.restore_transport(r)
    }
}
