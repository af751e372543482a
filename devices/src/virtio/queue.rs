//! The split virtqueue (virtio 1.2 section 2.7), device side, over [`crate::memory::GuestMemory`].
//!
//! This module is the one place that reads and writes the rings. It exists because the device
//! memory of this project is not a `vm_memory::GuestMemory` yet; once it is, rust-vmm's
//! `virtio-queue` crate (0.18) is the designed replacement and only this module (and the
//! `VirtioDevice::process_queue` signature) changes.
//!
//! Everything in the rings is written by a hostile guest, possibly while we read it from another
//! vCPU. So:
//! - each descriptor and each ring entry is fetched once into a host copy and only that copy is
//!   looked at afterwards;
//! - the available index is read once per chain, and a driver that claims more new entries than
//!   the queue holds is in error (2.7.6: the ring has `size` entries);
//! - a chain walk stops after `size` descriptors (a longer chain must contain a loop, 2.7.5.3.1),
//!   and every index is checked against the queue size;
//! - address and length arithmetic is checked, and a chain longer than 2^32 bytes is refused
//!   (2.7.5.2);
//! - indirect descriptors are refused: VIRTIO_F_INDIRECT_DESC is not offered (2.7.5.3.1).
//!
//! Every such violation is a [`QueueError`]; the transport answers it by setting
//! DEVICE_NEEDS_RESET (2.1.2) and touching the queue no more until the driver resets the device.

use std::num::Wrapping;
use std::sync::atomic::{fence, Ordering};

use super::spec::*;
use crate::memory::{GuestMemory, MemoryError};

/// Why a queue cannot be used (the driver broke a rule of section 2.7).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueueError {
    /// Queue Size is 0, above the device's maximum, or not a power of two.
    BadSize(u16),
    /// A ring area is misaligned or wraps around the address space.
    BadLayout,
    /// The available index moved by more than the queue size since we last looked.
    AvailIndexRunaway { avail_idx: u16, next_avail: u16 },
    /// An index taken from the available ring or a next field is not below the queue size.
    IndexOutOfRange(u16),
    /// A chain longer than the queue (only possible with a loop).
    ChainTooLong,
    /// A descriptor's address plus length wraps, or the chain's total exceeds 2^32 bytes.
    LengthOverflow,
    /// VIRTQ_DESC_F_INDIRECT without VIRTIO_F_INDIRECT_DESC.
    IndirectNotNegotiated,
    /// A device-readable descriptor after a device-writable one (2.7.4.2).
    ReadableAfterWritable,
    /// A ring or buffer is not in guest RAM.
    Memory(MemoryError),
}

impl std::fmt::Display for QueueError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            QueueError::BadSize(s) => write!(f, "queue size {s} is not a power of two within the maximum"),
            QueueError::BadLayout => write!(f, "ring areas misaligned or wrapping the address space"),
            QueueError::AvailIndexRunaway { avail_idx, next_avail } => {
                write!(f, "available index {avail_idx} is more than a queue ahead of {next_avail}")
            }
            QueueError::IndexOutOfRange(i) => write!(f, "descriptor index {i} is beyond the queue"),
            QueueError::ChainTooLong => write!(f, "descriptor chain longer than the queue (a loop)"),
            QueueError::LengthOverflow => write!(f, "descriptor lengths overflow"),
            QueueError::IndirectNotNegotiated => write!(f, "indirect descriptor without VIRTIO_F_INDIRECT_DESC"),
            QueueError::ReadableAfterWritable => write!(f, "device-readable descriptor after a device-writable one"),
            QueueError::Memory(e) => write!(f, "{e}"),
        }
    }
}

impl From<MemoryError> for QueueError {
    fn from(e: MemoryError) -> Self {
        QueueError::Memory(e)
    }
}

/// One descriptor as fetched (a host copy; the guest may change the table afterwards).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Descriptor {
    pub addr: u64,
    pub len: u32,
    /// Device-writable (VIRTQ_DESC_F_WRITE); otherwise device-readable.
    pub writable: bool,
}

/// A descriptor chain taken from the available ring: its head index (what goes back in the used
/// ring) and its descriptors in order, readable ones first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DescriptorChain {
    pub head: u16,
    pub descriptors: Vec<Descriptor>,
}

impl DescriptorChain {
    pub fn writable(&self) -> impl Iterator<Item = &Descriptor> {
        self.descriptors.iter().filter(|d| d.writable)
    }
}

/// One split virtqueue: the registers the driver programs through the transport (size, area
/// addresses, enable) and the device's position in the rings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SplitQueue {
    max_size: u16,
    /// Queue Size as the driver set it (the maximum after reset).
    pub size: u16,
    pub ready: bool,
    /// Guest addresses of the descriptor table, available (driver) ring and used (device) ring.
    pub desc_table: u64,
    pub avail_ring: u64,
    pub used_ring: u64,
    next_avail: Wrapping<u16>,
    next_used: Wrapping<u16>,
}

fn read_u16(mem: &dyn GuestMemory, gpa: u64) -> Result<u16, QueueError> {
    let mut b = [0u8; 2];
    mem.read(gpa, &mut b)?;
    Ok(u16::from_le_bytes(b))
}

impl SplitQueue {
    /// A queue as after reset: `max_size` entries (a power of two up to 32768), not ready.
    pub fn new(max_size: u16) -> Self {
        SplitQueue {
            max_size,
            size: max_size,
            ready: false,
            desc_table: 0,
            avail_ring: 0,
            used_ring: 0,
            next_avail: Wrapping(0),
            next_used: Wrapping(0),
        }
    }

    pub fn max_size(&self) -> u16 {
        self.max_size
    }

    /// Back to the state after reset (2.1.2 / 4.1.4.3.1: queue_size reads the maximum again).
    pub fn reset(&mut self) {
        *self = SplitQueue::new(self.max_size);
    }

    /// (next available index to take, next used index to write): the ring positions that
    /// save/restore must carry.
    pub fn positions(&self) -> (u16, u16) {
        (self.next_avail.0, self.next_used.0)
    }

    pub fn set_positions(&mut self, next_avail: u16, next_used: u16) {
        self.next_avail = Wrapping(next_avail);
        self.next_used = Wrapping(next_used);
    }

    /// Checks what the driver programmed, before the queue is enabled: a power-of-two size up to
    /// the maximum (2.7: "Queue Size ... a power of 2"), aligned areas (2.7 table) whose ends do
    /// not wrap the address space.
    pub fn validate(&self) -> Result<(), QueueError> {
        let s = self.size;
        if s == 0 || s > self.max_size || !s.is_power_of_two() {
            return Err(QueueError::BadSize(s));
        }
        let n = s as u64;
        let areas = [
            (self.desc_table, DESCRIPTOR_ALIGN, n * DESCRIPTOR_SIZE),
            // flags, idx, ring[size], used_event
            (self.avail_ring, AVAIL_ALIGN, 6 + 2 * n),
            // flags, idx, ring[size], avail_event
            (self.used_ring, USED_ALIGN, 6 + USED_ELEMENT_SIZE * n),
        ];
        for (addr, align, len) in areas {
            if addr % align != 0 || addr.checked_add(len).is_none() {
                return Err(QueueError::BadLayout);
            }
        }
        Ok(())
    }

    fn index(&self, ring_pos: Wrapping<u16>) -> u64 {
        // size is a power of two (validated), so this is the ring slot.
        (ring_pos.0 & (self.size - 1)) as u64
    }

    /// Takes the next available descriptor chain, if the driver made one available. At most
    /// `size` descriptors are fetched for it, each once.
    pub fn pop(&mut self, mem: &dyn GuestMemory) -> Result<Option<DescriptorChain>, QueueError> {
        if !self.ready {
            return Ok(None);
        }
        let avail_idx = read_u16(mem, self.avail_ring + 2)?;
        let new_entries = (Wrapping(avail_idx) - self.next_avail).0;
        if new_entries == 0 {
            return Ok(None);
        }
        if new_entries > self.size {
            return Err(QueueError::AvailIndexRunaway { avail_idx, next_avail: self.next_avail.0 });
        }
        // The ring entry and descriptors were written before the index (2.7.13: the driver's
        // write barrier); read them only after reading it.
        fence(Ordering::Acquire);
        let head = read_u16(mem, self.avail_ring + 4 + 2 * self.index(self.next_avail))?;
        let chain = self.walk(mem, head)?;
        self.next_avail += 1;
        Ok(Some(chain))
    }

    fn walk(&self, mem: &dyn GuestMemory, head: u16) -> Result<DescriptorChain, QueueError> {
        let mut descriptors = Vec::new();
        let mut index = head;
        let mut total: u64 = 0;
        let mut seen_writable = false;
        loop {
            if index >= self.size {
                return Err(QueueError::IndexOutOfRange(index));
            }
            if descriptors.len() >= self.size as usize {
                return Err(QueueError::ChainTooLong);
            }
            let mut raw = [0u8; DESCRIPTOR_SIZE as usize];
            mem.read(self.desc_table + DESCRIPTOR_SIZE * index as u64, &mut raw)?;
            let addr = u64::from_le_bytes(raw[0..8].try_into().unwrap_or_default());
            let len = u32::from_le_bytes(raw[8..12].try_into().unwrap_or_default());
            let flags = u16::from_le_bytes([raw[12], raw[13]]);
            let next = u16::from_le_bytes([raw[14], raw[15]]);
            if flags & DESC_F_INDIRECT != 0 {
                return Err(QueueError::IndirectNotNegotiated);
            }
            if addr.checked_add(len as u64).is_none() {
                return Err(QueueError::LengthOverflow);
            }
            total += len as u64;
            if total > u32::MAX as u64 {
                return Err(QueueError::LengthOverflow);
            }
            let writable = flags & DESC_F_WRITE != 0;
            if seen_writable && !writable {
                return Err(QueueError::ReadableAfterWritable);
            }
            seen_writable |= writable;
            descriptors.push(Descriptor { addr, len, writable });
            if flags & DESC_F_NEXT == 0 {
                return Ok(DescriptorChain { head, descriptors });
            }
            index = next;
        }
    }

    /// Returns chain `head` to the driver with `len` bytes written into it (2.7.8): the element
    /// first, then the used index.
    pub fn add_used(&mut self, mem: &dyn GuestMemory, head: u16, len: u32) -> Result<(), QueueError> {
        let mut element = [0u8; USED_ELEMENT_SIZE as usize];
        element[..4].copy_from_slice(&(head as u32).to_le_bytes());
        element[4..].copy_from_slice(&len.to_le_bytes());
        mem.write(self.used_ring + 4 + USED_ELEMENT_SIZE * self.index(self.next_used), &element)?;
        // The element must be visible before the index that publishes it (2.7.13).
        fence(Ordering::Release);
        self.next_used += 1;
        mem.write(self.used_ring + 2, &self.next_used.0.to_le_bytes())?;
        Ok(())
    }

    /// Whether the driver wants an interrupt for the buffers just used: without
    /// VIRTIO_F_EVENT_IDX, unless it set VIRTQ_AVAIL_F_NO_INTERRUPT (2.7.7.2, read after the
    /// used index was published).
    pub fn wants_interrupt(&self, mem: &dyn GuestMemory) -> Result<bool, QueueError> {
        fence(Ordering::SeqCst);
        Ok(read_u16(mem, self.avail_ring)? & AVAIL_F_NO_INTERRUPT == 0)
    }
}
