//! The entropy device (virtio 1.2 section 5.4), `-device virtio-rng-pci`: one request queue
//! whose device-writable buffers the device fills with random bytes from the host's `getrandom`.
//! Linux's `virtio_rng` feeds it to `/dev/hwrng`.

use super::queue::SplitQueue;
use super::spec::DEVICE_ID_ENTROPY;
use super::{VirtioDevice, VirtioError};
use crate::memory::GuestMemory;

/// Queue size of requestq (QEMU uses 8; the driver keeps one buffer in flight).
pub const QUEUE_SIZE: u16 = 8;
/// The most bytes one request is given. The spec lets the device fill less than the whole
/// buffer (5.4.6.1: "one or more random bytes"); the bound keeps a guest that posts huge buffers
/// from keeping its vCPU thread in the device.
pub const MAX_BYTES_PER_REQUEST: u32 = 64 * 1024;

/// Where random bytes come from: `getrandom(2)` (works in a chroot and a stub domain, where
/// `/dev/urandom` may be absent).
pub type EntropySource = fn(&mut [u8]) -> Result<(), String>;

pub fn host_entropy(buf: &mut [u8]) -> Result<(), String> {
    getrandom::fill(buf).map_err(|e| format!("getrandom: {e}"))
}

pub struct VirtioRng {
    source: EntropySource,
}

impl Default for VirtioRng {
    fn default() -> Self {
        VirtioRng { source: host_entropy }
    }
}

impl VirtioRng {
    pub fn with_source(source: EntropySource) -> Self {
        VirtioRng { source }
    }
}

impl VirtioDevice for VirtioRng {
    fn device_id(&self) -> u16 {
        DEVICE_ID_ENTROPY
    }
    /// QEMU's virtio-rng-pci: PCI_CLASS_OTHERS (0xff).
    fn pci_class(&self) -> (u8, u8, u8) {
        (0xff, 0x00, 0x00)
    }
    /// Section 5.4.2: one queue, requestq.
    fn queue_max_sizes(&self) -> &[u16] {
        &[QUEUE_SIZE]
    }

    fn process_queue(
        &mut self,
        _index: u16,
        queue: &mut SplitQueue,
        mem: &dyn GuestMemory,
    ) -> Result<bool, VirtioError> {
        let mut used = false;
        let mut chunk = [0u8; 4096];
        for _ in 0..queue.size {
            let Some(chain) = queue.pop(mem)? else { break };
            // 5.4.6.1: random bytes go into the device-writable part; readable buffers are
            // never written (2.7.4.1).
            let mut written: u32 = 0;
            for d in chain.writable() {
                let mut done: u32 = 0;
                while done < d.len && written < MAX_BYTES_PER_REQUEST {
                    let n = (d.len - done).min(MAX_BYTES_PER_REQUEST - written).min(chunk.len() as u32);
                    let buf = &mut chunk[..n as usize];
                    (self.source)(buf).map_err(VirtioError::Host)?;
                    // The queue checked addr + len does not wrap, so addr + done cannot either.
                    mem.write(d.addr + done as u64, buf)?;
                    done += n;
                    written += n;
                }
            }
            if written == 0 {
                crate::guest_warn!("virtio-rng: request {} has no device-writable bytes", chain.head);
            }
            queue.add_used(mem, chain.head, written)?;
            used = true;
        }
        Ok(used)
    }
}
