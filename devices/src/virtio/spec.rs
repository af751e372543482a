//! Constants of the Virtual I/O Device (VIRTIO) Version 1.2 specification that the transport,
//! the split virtqueue and the devices share. Section numbers are those of virtio 1.2.

// ---- Device status field (section 2.1) ----
pub const STATUS_ACKNOWLEDGE: u8 = 1;
pub const STATUS_DRIVER: u8 = 2;
pub const STATUS_DRIVER_OK: u8 = 4;
pub const STATUS_FEATURES_OK: u8 = 8;
/// Set by the device when it hit an error it cannot recover from without a reset.
pub const STATUS_DEVICE_NEEDS_RESET: u8 = 0x40;
pub const STATUS_FAILED: u8 = 0x80;

// ---- Reserved feature bits (section 6) ----
pub const F_INDIRECT_DESC: u64 = 1 << 28;
pub const F_EVENT_IDX: u64 = 1 << 29;
/// Compliance with this (non-legacy) version of the specification.
pub const F_VERSION_1: u64 = 1 << 32;

// ---- Split virtqueue (section 2.7) ----
/// The largest split queue: Queue Size is a power of two up to 32768 (section 2.7).
pub const MAX_QUEUE_SIZE: u16 = 32768;
/// Bytes of one descriptor table entry: le64 addr, le32 len, le16 flags, le16 next (2.7.5).
pub const DESCRIPTOR_SIZE: u64 = 16;
/// Alignment of the three areas (section 2.7, table "Virtqueue Part Alignment").
pub const DESCRIPTOR_ALIGN: u64 = 16;
pub const AVAIL_ALIGN: u64 = 2;
pub const USED_ALIGN: u64 = 4;
/// Descriptor continues via the next field.
pub const DESC_F_NEXT: u16 = 1;
/// Buffer is device write-only (otherwise device read-only).
pub const DESC_F_WRITE: u16 = 2;
/// Buffer contains a list of buffer descriptors (only with VIRTIO_F_INDIRECT_DESC).
pub const DESC_F_INDIRECT: u16 = 4;
/// Driver asks not to be interrupted when a buffer is used (2.7.7).
pub const AVAIL_F_NO_INTERRUPT: u16 = 1;
/// Bytes of one used ring element: le32 id, le32 len (2.7.8).
pub const USED_ELEMENT_SIZE: u64 = 8;

// ---- Device types (section 5) ----
pub const DEVICE_ID_ENTROPY: u16 = 4;

// ---- Virtio over PCI (section 4.1) ----
pub const PCI_VENDOR_ID: u16 = 0x1af4;
/// Non-transitional devices: PCI Device ID 0x1040 + virtio device ID (4.1.2).
pub const PCI_MODERN_DEVICE_ID_BASE: u16 = 0x1040;
/// Non-transitional devices SHOULD have Revision ID 1 or higher (4.1.2.1).
pub const PCI_MODERN_REVISION: u8 = 1;
/// QEMU's default subsystem IDs for its PCI devices (1af4:1100); non-transitional devices
/// SHOULD have a Subsystem Device ID of 0x40 or higher (4.1.2.1).
pub const PCI_SUBSYSTEM_VENDOR_ID: u16 = 0x1af4;
pub const PCI_SUBSYSTEM_ID: u16 = 0x1100;

/// Vendor-specific capability ID that carries every virtio structure location (4.1.4).
pub const PCI_CAP_ID_VENDOR: u8 = 0x09;
// cfg_type values (4.1.4).
pub const PCI_CAP_COMMON_CFG: u8 = 1;
pub const PCI_CAP_NOTIFY_CFG: u8 = 2;
pub const PCI_CAP_ISR_CFG: u8 = 3;
pub const PCI_CAP_DEVICE_CFG: u8 = 4;
/// struct virtio_pci_cap: vndr, next, len, cfg_type, bar, id, padding[2], offset, length.
pub const PCI_CAP_LEN: u8 = 16;
/// struct virtio_pci_notify_cap: a virtio_pci_cap plus notify_off_multiplier.
pub const PCI_NOTIFY_CAP_LEN: u8 = 20;

/// "No vector" for config_msix_vector and queue_msix_vector (4.1.5.1.2).
pub const NO_VECTOR: u16 = 0xffff;

// struct virtio_pci_common_cfg (4.1.4.3): offsets.
pub const COMMON_DEVICE_FEATURE_SELECT: u64 = 0x00;
pub const COMMON_DEVICE_FEATURE: u64 = 0x04;
pub const COMMON_DRIVER_FEATURE_SELECT: u64 = 0x08;
pub const COMMON_DRIVER_FEATURE: u64 = 0x0c;
pub const COMMON_CONFIG_MSIX_VECTOR: u64 = 0x10;
pub const COMMON_NUM_QUEUES: u64 = 0x12;
pub const COMMON_DEVICE_STATUS: u64 = 0x14;
pub const COMMON_CONFIG_GENERATION: u64 = 0x15;
pub const COMMON_QUEUE_SELECT: u64 = 0x16;
pub const COMMON_QUEUE_SIZE: u64 = 0x18;
pub const COMMON_QUEUE_MSIX_VECTOR: u64 = 0x1a;
pub const COMMON_QUEUE_ENABLE: u64 = 0x1c;
pub const COMMON_QUEUE_NOTIFY_OFF: u64 = 0x1e;
pub const COMMON_QUEUE_DESC: u64 = 0x20;
pub const COMMON_QUEUE_DRIVER: u64 = 0x28;
pub const COMMON_QUEUE_DEVICE: u64 = 0x30;
/// The structure up to queue_device; queue_notify_data and queue_reset follow only with
/// VIRTIO_F_NOTIF_CONFIG_DATA / VIRTIO_F_RING_RESET, which we do not offer.
pub const COMMON_CFG_LEN: u64 = 0x38;

// ISR status bits (4.1.4.5).
pub const ISR_QUEUE: u8 = 1;
pub const ISR_CONFIG: u8 = 2;
