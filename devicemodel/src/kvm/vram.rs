//! Video memory on KVM: anonymous host memory that becomes its own memory slot, with dirty-page
//! logging, while the guest has the device's BAR0 decoded (KVM API, `KVM_SET_USER_MEMORY_REGION`
//! and `KVM_GET_DIRTY_LOG`). While no slot maps it, BAR0 accesses exit to the bus and the device
//! serves them from the same memory.
//!
//! Slot numbers come from the VM's one [`SlotAllocator`], so a VRAM slot never takes the number
//! of a RAM or ROM slot. The RAM slots' migration log ([`super::KvmDirtyLog`]) never sees VRAM:
//! VRAM is device memory, and the display device saves its contents in its own state.
//!
//! `map` runs on a vCPU thread (a PCI configuration write that moves or enables BAR0) while other
//! vCPUs may be in KVM_RUN; KVM allows changing memory slots then (it waits for its own SRCU
//! readers, never for vCPUs to leave KVM_RUN).

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use devices::display::vram::PAGE;
use devices::display::{Vram, VramError, VramService};
use kvm_bindings::{kvm_userspace_memory_region, KVM_MEM_LOG_DIRTY_PAGES};
use kvm_ioctls::VmFd;

/// Hands out KVM memory slot numbers for one VM (RAM, ROMs and VRAM alike).
#[derive(Debug, Default)]
pub struct SlotAllocator(AtomicU32);

impl SlotAllocator {
    pub fn next(&self) -> u32 {
        self.0.fetch_add(1, Ordering::SeqCst)
    }
}

/// The two KVM calls VRAM needs, so the slot bookkeeping can be tested without /dev/kvm.
pub trait MemorySlots: Send + Sync {
    /// `KVM_SET_USER_MEMORY_REGION`; `len == 0` deletes the slot.
    fn set_slot(&self, slot: u32, flags: u32, gpa: u64, len: u64, host: u64) -> Result<(), String>;
    /// `KVM_GET_DIRTY_LOG`: one bit per page, bit `i % 64` of word `i / 64`; clears the log.
    fn dirty_log(&self, slot: u32, len: usize) -> Result<Vec<u64>, String>;
}

impl MemorySlots for VmFd {
    fn set_slot(&self, slot: u32, flags: u32, gpa: u64, len: u64, host: u64) -> Result<(), String> {
        let region =
            kvm_userspace_memory_region { slot, flags, guest_phys_addr: gpa, memory_size: len, userspace_addr: host };
        // SAFETY: `host..host+len` is a `Vram` mapping that `KvmVram` keeps a clone of for as long
        // as the slot exists (it deletes every slot before dropping its clones, see its Drop), so
        // KVM never reaches memory that was unmapped or reused. Deleting (`len == 0`) maps nothing.
        unsafe { self.set_user_memory_region(region) }.map_err(|e| e.to_string())
    }

    fn dirty_log(&self, slot: u32, len: usize) -> Result<Vec<u64>, String> {
        self.get_dirty_log(slot, len).map_err(|e| e.to_string())
    }
}

struct Entry {
    /// Keeps the memory behind the slot alive.
    vram: Vram,
    slot: Option<u32>,
    gpa: Option<u64>,
    /// Pages the guest wrote through a slot that has since been deleted (harvested first), so a
    /// BAR move between two refreshes loses nothing.
    pending: Vec<u64>,
}

/// [`VramService`] for KVM.
pub struct KvmVram {
    vm: Arc<dyn MemorySlots>,
    slots: Arc<SlotAllocator>,
    entries: Mutex<Vec<Entry>>,
}

impl KvmVram {
    pub fn new(vm: Arc<dyn MemorySlots>, slots: Arc<SlotAllocator>) -> Self {
        KvmVram { vm, slots, entries: Mutex::new(Vec::new()) }
    }

    /// Harvests and deletes the slot of `e` if it is mapped.
    fn unmap_entry(&self, e: &mut Entry) {
        let (Some(slot), Some(gpa)) = (e.slot, e.gpa.take()) else { return };
        match self.vm.dirty_log(slot, e.vram.len()) {
            Ok(bits) => or_into(&mut e.pending, &bits),
            // Unknown: everything may have been written.
            Err(err) => {
                log::warn!("VRAM slot {slot} at {gpa:#x}: KVM_GET_DIRTY_LOG: {err}");
                e.pending = vec![u64::MAX; e.vram.len().div_ceil(PAGE).div_ceil(64)];
            }
        }
        if let Err(err) = self.vm.set_slot(slot, 0, gpa, 0, 0) {
            log::error!("deleting VRAM slot {slot} at {gpa:#x}: {err}");
        }
    }
}

/// ORs `bits` into `into`, growing it as needed.
fn or_into(into: &mut Vec<u64>, bits: &[u64]) {
    if into.len() < bits.len() {
        into.resize(bits.len(), 0);
    }
    for (a, b) in into.iter_mut().zip(bits) {
        *a |= b;
    }
}

impl VramService for KvmVram {
    fn allocate(&self, size: usize) -> Result<Vram, VramError> {
        Vram::anonymous(size)
    }

    fn map(&self, vram: &Vram, gpa: Option<u64>) -> bool {
        let mut entries = self.entries.lock().unwrap();
        let index = match entries.iter().position(|e| e.vram.same(vram)) {
            Some(i) => i,
            None => {
                entries.push(Entry { vram: vram.clone(), slot: None, gpa: None, pending: Vec::new() });
                entries.len() - 1
            }
        };
        let e = &mut entries[index];
        if e.gpa == gpa {
            return gpa.is_some();
        }
        self.unmap_entry(e);
        let Some(gpa) = gpa else { return false };
        let len = e.vram.len() as u64;
        if gpa % PAGE as u64 != 0 || gpa.checked_add(len).is_none_or(|end| end > 1 << 52) {
            devices::guest_warn!("VRAM at {gpa:#x}+{len:#x} cannot be a memory slot; BAR accesses trap");
            return false;
        }
        let slot = *e.slot.get_or_insert_with(|| self.slots.next());
        let host = e.vram.region().as_ptr() as u64;
        match self.vm.set_slot(slot, KVM_MEM_LOG_DIRTY_PAGES, gpa, len, host) {
            Ok(()) => {
                log::info!("VRAM ({} KiB) mapped at {gpa:#x} as KVM slot {slot}", len / 1024);
                e.gpa = Some(gpa);
                true
            }
            Err(err) => {
                // EEXIST: the guest put the BAR over RAM or another slot. The device keeps
                // serving whatever part of the BAR exits to it.
                devices::guest_warn!("VRAM at {gpa:#x}+{len:#x}: KVM_SET_USER_MEMORY_REGION: {err}; BAR accesses trap");
                false
            }
        }
    }

    fn sync_dirty(&self, vram: &Vram, dirty: &mut [u64]) -> bool {
        let mut entries = self.entries.lock().unwrap();
        let Some(e) = entries.iter_mut().find(|e| e.vram.same(vram)) else { return true };
        let pending = std::mem::take(&mut e.pending);
        for (d, p) in dirty.iter_mut().zip(&pending) {
            *d |= p;
        }
        let (Some(slot), Some(_)) = (e.slot, e.gpa) else { return true };
        match self.vm.dirty_log(slot, e.vram.len()) {
            Ok(bits) => {
                for (d, b) in dirty.iter_mut().zip(&bits) {
                    *d |= b;
                }
                true
            }
            Err(err) => {
                log::warn!("VRAM slot {slot}: KVM_GET_DIRTY_LOG: {err}");
                false
            }
        }
    }
}

impl Drop for KvmVram {
    fn drop(&mut self) {
        let mut entries = std::mem::take(&mut *self.entries.lock().unwrap());
        for e in entries.iter_mut() {
            self.unmap_entry(e);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// KVM's slot table as far as VRAM sees it: refuses overlaps (EEXIST) and keeps one dirty
    /// bitmap per live slot, which a "guest write" sets and `dirty_log` returns and clears.
    /// A live slot: (gpa, len, flags, dirty bits).
    type FakeSlot = (u64, u64, u32, Vec<u64>);

    #[derive(Default)]
    struct FakeKvm {
        slots: Mutex<std::collections::BTreeMap<u32, FakeSlot>>,
        /// (gpa, len) of RAM slots made elsewhere.
        ram: Vec<(u64, u64)>,
        calls: Mutex<Vec<String>>,
    }

    impl FakeKvm {
        fn guest_write(&self, gpa: u64) {
            for (base, len, _, bits) in self.slots.lock().unwrap().values_mut() {
                if (*base..*base + *len).contains(&gpa) {
                    let page = ((gpa - *base) / PAGE as u64) as usize;
                    bits[page / 64] |= 1 << (page % 64);
                }
            }
        }
    }

    impl MemorySlots for FakeKvm {
        fn set_slot(&self, slot: u32, flags: u32, gpa: u64, len: u64, _host: u64) -> Result<(), String> {
            self.calls.lock().unwrap().push(format!("set {slot} {gpa:#x} {len:#x} {flags}"));
            let mut slots = self.slots.lock().unwrap();
            if len == 0 {
                return slots.remove(&slot).map(drop).ok_or_else(|| "EINVAL".into());
            }
            let overlaps = |b: u64, l: u64| gpa < b + l && b < gpa + len;
            if self.ram.iter().any(|&(b, l)| overlaps(b, l))
                || slots.iter().any(|(s, &(b, l, ..))| *s != slot && overlaps(b, l))
            {
                return Err("File exists (os error 17)".into());
            }
            let words = (len as usize / PAGE).div_ceil(64);
            slots.insert(slot, (gpa, len, flags, vec![0; words]));
            Ok(())
        }

        fn dirty_log(&self, slot: u32, _len: usize) -> Result<Vec<u64>, String> {
            let mut slots = self.slots.lock().unwrap();
            let (.., bits) = slots.get_mut(&slot).ok_or("ENOENT")?;
            Ok(std::mem::replace(bits, vec![0; bits.len()]))
        }
    }

    fn service(ram: Vec<(u64, u64)>, first_free_slot: u32) -> (Arc<FakeKvm>, KvmVram) {
        let kvm = Arc::new(FakeKvm { ram, ..Default::default() });
        let slots = Arc::new(SlotAllocator::default());
        for _ in 0..first_free_slot {
            slots.next();
        }
        (kvm.clone(), KvmVram::new(kvm, slots))
    }

    #[test]
    fn mapping_makes_a_dirty_logged_slot_with_a_fresh_number() {
        let (kvm, s) = service(vec![(0, 0xa0000)], 3);
        let vram = s.allocate(16 * PAGE).unwrap();
        assert!(s.map(&vram, Some(0xe000_0000)));
        assert_eq!(*kvm.calls.lock().unwrap(), vec![format!("set 3 0xe0000000 0x10000 {KVM_MEM_LOG_DIRTY_PAGES}")]);
        assert!(s.map(&vram, Some(0xe000_0000)), "mapping it again where it is changes nothing");
        assert_eq!(kvm.calls.lock().unwrap().len(), 1);
        // A second device's VRAM gets the next number.
        let other = s.allocate(PAGE).unwrap();
        assert!(s.map(&other, Some(0xe100_0000)));
        assert!(kvm.calls.lock().unwrap()[1].starts_with("set 4 "));
    }

    #[test]
    fn guest_writes_come_back_once_and_survive_a_bar_move() {
        let (kvm, s) = service(vec![], 0);
        let vram = s.allocate(130 * PAGE).unwrap();
        let mut dirty = vec![0u64; 3];
        assert!(s.sync_dirty(&vram, &mut dirty), "never mapped: nothing behind the device's back");
        assert_eq!(dirty, [0, 0, 0]);
        assert!(s.map(&vram, Some(0xf000_0000)));
        kvm.guest_write(0xf000_0000 + 5 * PAGE as u64);
        kvm.guest_write(0xf000_0000 + 129 * PAGE as u64 + 7);
        assert!(s.sync_dirty(&vram, &mut dirty));
        assert_eq!(dirty, [1 << 5, 0, 1 << 1]);
        let mut again = vec![0u64; 3];
        assert!(s.sync_dirty(&vram, &mut again));
        assert_eq!(again, [0, 0, 0], "the log is cleared by each sync");
        // Written, then moved before the next refresh: the write is still reported, once.
        kvm.guest_write(0xf000_0000 + 70 * PAGE as u64);
        assert!(s.map(&vram, Some(0xf800_0000)));
        kvm.guest_write(0xf800_0000);
        let mut d = vec![0u64; 3];
        assert!(s.sync_dirty(&vram, &mut d));
        assert_eq!(d, [1, 1 << 6, 0]);
        let calls = kvm.calls.lock().unwrap().clone();
        assert_eq!(
            &calls[1..],
            ["set 0 0xf0000000 0x0 0".to_string(), format!("set 0 0xf8000000 0x82000 {KVM_MEM_LOG_DIRTY_PAGES}")],
            "a move is delete + re-add of the same slot"
        );
    }

    #[test]
    fn unmapping_deletes_the_slot_and_a_bar_over_ram_keeps_trapping() {
        let (kvm, s) = service(vec![(0, 0x800_0000)], 1);
        let vram = s.allocate(4 * PAGE).unwrap();
        assert!(!s.map(&vram, Some(0x10_0000)), "over RAM: refused, the device keeps serving the BAR");
        assert!(kvm.slots.lock().unwrap().is_empty());
        assert!(!s.map(&vram, Some(0xe000_0800)), "not page aligned");
        assert!(s.map(&vram, Some(0xe000_0000)));
        assert!(!s.map(&vram, None));
        assert!(kvm.slots.lock().unwrap().is_empty());
        let mut d = vec![0u64; 1];
        assert!(s.sync_dirty(&vram, &mut d));
        assert!(!s.map(&vram, None), "unmapping twice is harmless");
        // Mapped at drop: the slot goes before the memory can.
        assert!(s.map(&vram, Some(0xe000_0000)));
        drop(s);
        assert!(kvm.slots.lock().unwrap().is_empty());
    }
}
