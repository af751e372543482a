//! Video memory on Xen (display.md section 6, "VRAM on Xen" and "Dirty tracking"), as qemu-xen
//! does it (hw/i386/xen/xen-hvm.c `xen_ram_alloc`, `xen_add_to_physmap`, `xen_sync_dirty_bitmap`):
//!
//! - **allocate**: VRAM is guest RAM. The device model populates it (`XENMEM_populate_physmap`)
//!   at gfns just past the guest's RAM, where QEMU's RAM-block offset puts it, and foreign-maps it
//!   into this process once, for good. libxl built the domain with `videoram` less memory than its
//!   maximum (`-m` = maxmem - videoram) so that these pages fit, plus about 1 MiB of slack.
//! - **map**: when the guest decodes BAR0, the pages move from their home gfns into the BAR
//!   (`XEN_DMOP_relocate_memory`), pinned write-back (`XEN_DMOP_pin_memory_cacheattr`); they move
//!   home again when BAR0 stops decoding or before it moves. The move changes the guest's p2m only:
//!   the machine frames stay the same, so our mapping (made of those frames) keeps pointing at the
//!   VRAM. That is checked on the first relocation by writing one byte through our mapping and
//!   reading it through a fresh mapping of the BAR gfn (display.md open question 1); if the check
//!   fails the pages go home again and BAR0 keeps trapping to the device.
//! - **sync_dirty**: `XEN_DMOP_track_dirty_vram` over the BAR gfns (one range per domain; the first
//!   call for a range returns all ones; `ENODATA` means Xen cannot tell).
//! - **save/restore**: the pages are guest memory, so Xen's save stream carries them and the
//!   device's own state leaves them out ([`VramService::vram_is_guest_memory`]). Where they sit
//!   is recorded as QEMU records it, in `device-model/<domid>/physmap/<home address>/{start_addr,
//!   size,name}`; libxl carries those keys across a save (EMULATOR_XENSTORE_DATA) and writes them
//!   back before it starts the device model for `-incoming`, which therefore does not populate but
//!   maps the pages where the keys say they are.
//!
//! The BAR range stays registered with our ioreq server while the pages are in it (the bus's BAR
//! listener does that for every BAR): Xen consults ioreq ranges only for gfns that are not RAM, so
//! the registration is inert while relocated and serves the accesses again once the pages go home.

use std::sync::{Arc, Mutex};

use devices::display::vram::PAGE;
use devices::display::{Vram, VramError, VramService};
use vm_memory::MmapRegion;

use super::dmop::{DeviceModelOps, DirtyVram, XEN_DMOP_MEM_CACHEATTR_WB};
use super::privcmd::Privcmd;
use super::xenstore::Xenstore;

/// `HVM_BELOW_4G_RAM_END` (QEMU include/hw/xen/xen_common.h): guest RAM above it continues at 4 GiB.
const HVM_BELOW_4G_RAM_END: u64 = 0xf000_0000;
/// QEMU aligns each RAM block's offset to 64 pages (`find_ram_offset`).
const RAM_BLOCK_ALIGN: u64 = 64 * PAGE as u64;
/// `XEN_DOMCTL_DELETE_MEM_CACHEATTR`: removes a pinned range.
const DELETE_MEM_CACHEATTR: u32 = !0;
/// `LIBXL_MAXMEM_CONSTANT`: the slack libxl adds to a domain's maximum, in KiB.
const LIBXL_SLACK_KIB: u64 = 1024;
/// Pages one `track_dirty_vram` can report: Linux privcmd takes DMOP buffers of 4096 bytes.
const TRACK_MAX_PAGES: usize = super::privcmd::DM_OP_MAX_BUF_SIZE * 8;

/// The gfn of the first VRAM page: QEMU's RAM-block offset of the first block after `xen.ram`,
/// whose length is the guest's RAM with the hole below 4 GiB counted in (`xen_ram_init`).
pub fn first_vram_gfn(ram_size: u64) -> u64 {
    let block_len =
        if ram_size >= HVM_BELOW_4G_RAM_END { (1u64 << 32) + (ram_size - HVM_BELOW_4G_RAM_END) } else { ram_size };
    block_len.next_multiple_of(RAM_BLOCK_ALIGN) / PAGE as u64
}

/// What a request for `total_kib` of video memory means against the `videoram` (KiB) libxl
/// accounted for: `None` when it fits, otherwise a sentence for the log.
pub fn budget_warning(total_kib: u64, videoram_kib: Option<u64>) -> Option<String> {
    let v = videoram_kib?;
    (total_kib > v + LIBXL_SLACK_KIB).then(|| {
        format!(
            "{total_kib} KiB of video memory exceed the {v} KiB videoram libxl reserved (+{LIBXL_SLACK_KIB} KiB slack): \
             Xen will refuse part of it. The VGA rounds vgamem_mb up to a power of two as QEMU does; \
             give the guest a power-of-two videoram="
        )
    })
}

/// ORs a byte bitmap (bit `i % 8` of byte `i / 8` = page `i`, Xen's order) into 64-bit words
/// (bit `i % 64` of word `i / 64`), ignoring bits past `words`.
pub fn or_byte_bitmap(words: &mut [u64], bytes: &[u8]) {
    for (i, &b) in bytes.iter().enumerate() {
        if let Some(w) = words.get_mut(i / 8) {
            *w |= u64::from(b) << (8 * (i % 8));
        }
    }
}

/// Sets the bits of pages `from..to` (clamped to `words`).
pub fn set_pages(words: &mut [u64], from: usize, to: usize) {
    for page in from..to.min(words.len() * 64) {
        words[page / 64] |= 1 << (page % 64);
    }
}

/// The privileged operations VRAM needs besides DMOPs, so the bookkeeping can be tested
/// without Xen.
pub trait VramHost: Send + Sync {
    /// Populates the guest's `gfns` with fresh pages.
    fn populate(&self, gfns: &[u64]) -> Result<(), String>;
    /// Maps the guest's `gfns` contiguously, for the rest of the process.
    fn map_foreign(&self, gfns: &[u64]) -> Result<Arc<MmapRegion<()>>, String>;
    /// Whether byte `offset` of `region` is the byte at guest frame `gfn`'s start as a fresh
    /// mapping of it sees it now (written through one, read through the other, restored).
    fn same_frame(&self, region: &MmapRegion<()>, offset: usize, gfn: u64) -> Result<bool, String>;
    fn xs_read(&self, path: &str) -> Option<String>;
    fn xs_write(&self, path: &str, value: &str) -> Result<(), String>;
    fn xs_rm(&self, path: &str);
}

/// The production host: privcmd and a xenstore connection of our own.
pub struct PrivcmdVramHost {
    privcmd: Arc<Privcmd>,
    domid: u16,
    xenstore: Xenstore,
}

impl PrivcmdVramHost {
    pub fn new(privcmd: Arc<Privcmd>, domid: u16) -> Result<Self, String> {
        Ok(PrivcmdVramHost { privcmd, domid, xenstore: Xenstore::open()? })
    }

    fn map_pages(&self, gfns: &[u64]) -> Result<super::privcmd::MappedPages, String> {
        let (pages, errs) = self.privcmd.mmap_foreign_batch(self.domid, gfns).map_err(|e| e.to_string())?;
        if let Some((i, e)) = errs.iter().enumerate().find(|(_, &e)| e != 0) {
            return Err(format!("guest frame {:#x} did not map (error {e})", gfns[i]));
        }
        Ok(pages)
    }
}

impl VramHost for PrivcmdVramHost {
    fn populate(&self, gfns: &[u64]) -> Result<(), String> {
        self.privcmd.populate_physmap(self.domid, gfns).map_err(|e| e.to_string())
    }

    fn map_foreign(&self, gfns: &[u64]) -> Result<Arc<MmapRegion<()>>, String> {
        let (ptr, len) = self.map_pages(gfns)?.leak();
        let (prot, flags) = (libc::PROT_READ | libc::PROT_WRITE, libc::MAP_SHARED);
        // SAFETY: `ptr..ptr+len` is a shared read-write mapping of the guest's frames that is
        // never unmapped (leaked above), so it outlives the region and every slice of it; the
        // region does not own it (no munmap on drop). vm-memory only accesses it volatile.
        let region = unsafe { MmapRegion::build_raw(ptr.as_ptr(), len, prot, flags) };
        let region = region.map_err(|e| e.to_string())?;
        Ok(Arc::new(region))
    }

    fn same_frame(&self, region: &MmapRegion<()>, offset: usize, gfn: u64) -> Result<bool, String> {
        use vm_memory::{Bytes, VolatileMemory};
        let fresh = self.map_pages(&[gfn])?;
        let ours = region.get_slice(offset, 1).map_err(|e| e.to_string())?;
        let before: u8 = ours.read_obj(0).map_err(|e| e.to_string())?;
        let probe = before ^ 0xa5;
        ours.write_obj(probe, 0).map_err(|e| e.to_string())?;
        let mut seen = [0u8; 1];
        let read = fresh.read(0, &mut seen);
        ours.write_obj(before, 0).map_err(|e| e.to_string())?;
        read.map_err(|e| e.to_string())?;
        Ok(seen[0] == probe)
    }

    fn xs_read(&self, path: &str) -> Option<String> {
        self.xenstore.read_string(path).ok()
    }

    fn xs_write(&self, path: &str, value: &str) -> Result<(), String> {
        self.xenstore.write(path, value.as_bytes()).map_err(|e| format!("writing {path}: {e}"))
    }

    fn xs_rm(&self, path: &str) {
        let _ = self.xenstore.rm(path);
    }
}

struct Entry {
    vram: Vram,
    /// Where it was populated.
    home: u64,
    pages: u64,
    /// Where the pages are now (`home`, or a BAR's first gfn).
    at: u64,
    /// Restored without its pages (the keys named no place that maps): never relocated.
    unbacked: bool,
    /// `track_dirty_vram` has answered for the current place (logged once per place).
    tracked: bool,
}

impl Entry {
    fn physmap_key(&self, domid: u16) -> String {
        format!("device-model/{domid}/physmap/{:x}", self.home * PAGE as u64)
    }
}

struct State {
    entries: Vec<Entry>,
    next_gfn: u64,
    /// Total populated, for the budget.
    allocated_kib: u64,
    /// Set when a relocation was seen not to carry our mapping along: never relocate again.
    relocation_breaks_mapping: bool,
    /// The first relocation has been checked.
    relocation_checked: bool,
}

/// [`VramService`] for Xen.
pub struct XenVram {
    dm: DeviceModelOps,
    host: Arc<dyn VramHost>,
    /// `-incoming`: the pages exist already (restored by Xen); never populate.
    incoming: bool,
    state: Mutex<State>,
}

impl XenVram {
    /// `ram_size` is `-m` (guest RAM without videoram).
    pub fn new(dm: DeviceModelOps, host: Arc<dyn VramHost>, ram_size: u64, incoming: bool) -> Self {
        XenVram {
            dm,
            host,
            incoming,
            state: Mutex::new(State {
                entries: Vec::new(),
                next_gfn: first_vram_gfn(ram_size),
                allocated_kib: 0,
                relocation_breaks_mapping: false,
                relocation_checked: false,
            }),
        }
    }

    fn domid(&self) -> u16 {
        self.dm.domid()
    }

    /// Reports every VRAM page as written (`XEN_DMOP_modified_memory`). Display devices write VRAM
    /// through our mapping, which Xen's log-dirty mode does not see; during a live migration that
    /// is done once, when the guest has stopped and before the last memory pass (QEMU reports each
    /// device write instead, through its RAM-block dirty hooks).
    pub fn report_all_modified(&self) {
        let st = self.state.lock().unwrap();
        let extents: Vec<(u64, u32)> =
            st.entries.iter().filter(|e| !e.unbacked).map(|e| (e.at, e.pages as u32)).collect();
        if extents.is_empty() {
            return;
        }
        match self.dm.modified_memory(&extents) {
            Ok(()) => log::info!(
                "VRAM: {} pages reported modified for the migration's last pass",
                extents.iter().map(|e| e.1 as u64).sum::<u64>()
            ),
            Err(e) => log::error!("VRAM: reporting its pages modified: {e} (the migrated screen may be stale)"),
        }
    }

    fn videoram_kib(&self) -> Option<u64> {
        self.host.xs_read(&format!("/local/domain/{}/memory/videoram", self.domid()))?.trim().parse().ok()
    }

    /// Moves the pages of `e` home (stops tracking, unpins, relocates, forgets the physmap key).
    /// False when they could not be moved (they stay where they are).
    fn go_home(&self, e: &mut Entry) -> bool {
        if e.at == e.home {
            return true;
        }
        let (at, n) = (e.at, e.pages);
        if let Err(err) = self.dm.track_dirty_vram(0, 0) {
            log::debug!("stopping VRAM dirty tracking: {err}");
        }
        if let Err(err) = self.dm.pin_memory_cacheattr(at, at + n - 1, DELETE_MEM_CACHEATTR) {
            log::debug!("unpinning VRAM at gfn {at:#x}: {err}");
        }
        if let Err(err) = self.dm.relocate_memory(at, e.home, n as u32) {
            log::error!("VRAM: relocating {n} pages from gfn {at:#x} back to {:#x}: {err}", e.home);
            return false;
        }
        log::info!("VRAM: relocated {n} pages from gfn {at:#x} back to {:#x}", e.home);
        e.at = e.home;
        e.tracked = false;
        self.host.xs_rm(&e.physmap_key(self.domid()));
        true
    }
}

impl VramService for XenVram {
    fn allocate(&self, size: usize) -> Result<Vram, VramError> {
        if size == 0 || !size.is_multiple_of(PAGE) {
            return Err(VramError::BadSize(size));
        }
        let fail = |why: String| VramError::Allocate { size, why };
        let mut st = self.state.lock().unwrap();
        let pages = (size / PAGE) as u64;
        let home = st.next_gfn;
        let total_kib = st.allocated_kib + size as u64 / 1024;
        let videoram = self.videoram_kib();
        let budget = budget_warning(total_kib, videoram);
        let mut e = Entry { vram: Vram::anonymous(PAGE)?, home, pages, at: home, unbacked: false, tracked: false };
        let gfns = |from: u64| (from..from + pages).collect::<Vec<u64>>();
        let region = if self.incoming {
            // Restored: the pages are where the saved physmap keys say, or home.
            let key = e.physmap_key(self.domid());
            let at = self
                .host
                .xs_read(&format!("{key}/start_addr"))
                .and_then(|a| u64::from_str_radix(a.trim(), 16).ok())
                .map_or(home, |a| a / PAGE as u64);
            e.at = at;
            match self.host.map_foreign(&gfns(at)) {
                Ok(r) => {
                    log::info!(
                        "VRAM: {} KiB restored by Xen at gfn {at:#x} (home {home:#x}); not populated",
                        size / 1024
                    );
                    Some(r)
                }
                Err(err) => {
                    log::warn!(
                        "VRAM: restored guest has no video memory at gfn {at:#x} ({err}); using fresh host memory, BAR0 traps"
                    );
                    e.unbacked = true;
                    e.at = home;
                    None
                }
            }
        } else {
            if let Some(w) = &budget {
                log::warn!("VRAM: {w}");
            }
            self.host.populate(&gfns(home)).map_err(|err| {
                fail(format!(
                    "populating guest frames {home:#x}-{:#x}: {err}{}",
                    home + pages - 1,
                    match (videoram, &budget) {
                        (_, Some(w)) => format!("; {w}"),
                        (Some(v), None) => format!("; libxl reserved videoram={v} KiB"),
                        (None, None) => String::new(),
                    }
                ))
            })?;
            let r = self.host.map_foreign(&gfns(home)).map_err(fail)?;
            log::info!(
                "VRAM: {} KiB populated at gfn {home:#x}-{:#x} (videoram {} KiB)",
                size / 1024,
                home + pages - 1,
                videoram.map_or("unknown".to_string(), |v| v.to_string())
            );
            Some(r)
        };
        e.vram = match region {
            Some(r) => Vram::from_region(r)?,
            None => Vram::anonymous(size)?,
        };
        st.next_gfn = (home + pages).next_multiple_of(RAM_BLOCK_ALIGN / PAGE as u64);
        st.allocated_kib = total_kib;
        let vram = e.vram.clone();
        st.entries.push(e);
        Ok(vram)
    }

    fn map(&self, vram: &Vram, gpa: Option<u64>) -> bool {
        let mut guard = self.state.lock().unwrap();
        let st = &mut *guard;
        let domid = self.domid();
        let Some(e) = st.entries.iter_mut().find(|e| e.vram.same(vram)) else { return false };
        if e.unbacked {
            return false;
        }
        let target = match gpa {
            // QEMU relocates only above the legacy window, page aligned.
            Some(g)
                if g > 0xb_ffff && g.is_multiple_of(PAGE as u64) && g.checked_add(e.pages * PAGE as u64).is_some() =>
            {
                Some(g / PAGE as u64)
            }
            Some(g) => {
                devices::guest_warn!("VRAM cannot move to {g:#x}; BAR0 accesses trap to the device");
                None
            }
            None => None,
        };
        if target == Some(e.at) && e.at != e.home {
            return true;
        }
        if !self.go_home(e) {
            return false;
        }
        let Some(t) = target else { return false };
        if st.relocation_breaks_mapping {
            return false;
        }
        let n = e.pages;
        if t < e.home + n && e.home < t + n {
            // Moving page by page onto our own unmoved pages would make Xen free them.
            devices::guest_warn!(
                "BAR0 at {:#x} overlaps the VRAM's home gfns {:#x}+{n:#x}; BAR0 traps",
                t * PAGE as u64,
                e.home
            );
            return false;
        }
        if let Err(err) = self.dm.relocate_memory(e.home, t, n as u32) {
            devices::guest_warn!("VRAM: relocating {n} pages from gfn {:#x} to {t:#x}: {err}; BAR0 traps", e.home);
            // Whatever moved goes back.
            let _ = self.dm.relocate_memory(t, e.home, n as u32);
            return false;
        }
        e.at = t;
        log::info!("VRAM: relocated {n} pages from gfn {:#x} to {t:#x} (BAR0 at {:#x})", e.home, t * PAGE as u64);
        if !st.relocation_checked {
            // The probe flips and restores the last VRAM byte: this runs while the guest
            // programs BAR0 (firmware, PCI setup), not while it draws into the end of VRAM.
            st.relocation_checked = true;
            let last = (n - 1) as usize * PAGE;
            match self.host.same_frame(e.vram.region(), last, t + n - 1) {
                Ok(true) => log::info!("VRAM: our mapping follows the relocation (checked on gfn {:#x})", t + n - 1),
                outcome => {
                    log::error!(
                        "VRAM: our mapping does not follow the relocation ({outcome:?}); BAR0 stays trapped to the device"
                    );
                    st.relocation_breaks_mapping = true;
                    self.go_home(e);
                    return false;
                }
            }
        }
        if let Err(err) = self.dm.pin_memory_cacheattr(t, t + n - 1, XEN_DMOP_MEM_CACHEATTR_WB) {
            log::warn!("VRAM: pinning gfn {t:#x}+{n:#x} write-back: {err}");
        }
        let key = e.physmap_key(domid);
        for (k, v) in [
            ("start_addr", format!("{:x}", t * PAGE as u64)),
            ("size", format!("{:x}", n * PAGE as u64)),
            ("name", "vga.vram".to_string()),
        ] {
            if let Err(err) = self.host.xs_write(&format!("{key}/{k}"), &v) {
                log::warn!("VRAM: {err} (a save of this guest would lose where its VRAM is)");
            }
        }
        true
    }

    fn sync_dirty(&self, vram: &Vram, dirty: &mut [u64]) -> bool {
        let mut st = self.state.lock().unwrap();
        let Some(e) = st.entries.iter_mut().find(|e| e.vram.same(vram)) else { return true };
        if e.at == e.home {
            // Not in a BAR: the guest only reaches it through the device.
            return true;
        }
        let pages = e.pages as usize;
        let tracked = pages.min(TRACK_MAX_PAGES);
        match self.dm.track_dirty_vram(e.at, tracked as u32) {
            Ok(DirtyVram::Bitmap(bytes)) => {
                if !e.tracked {
                    e.tracked = true;
                    let n: u32 = bytes.iter().map(|b| b.count_ones()).sum();
                    log::info!("VRAM: dirty tracking of gfn {:#x}+{tracked:#x}: first bitmap has {n} pages", e.at);
                }
                or_byte_bitmap(dirty, &bytes);
                // Beyond what one call can report: unknown, so dirty.
                set_pages(dirty, tracked, pages);
                true
            }
            Ok(DirtyVram::AllDirty) => false,
            Err(err) => {
                log::debug!("VRAM: {err}");
                false
            }
        }
    }

    fn vram_is_guest_memory(&self) -> bool {
        true
    }
}

/// The Xen machine's migration dirty log: the foreign-memory writer, plus VRAM at the last pass.
pub struct XenDirtyLog {
    pub memory: Arc<super::memory::ForeignMemory>,
    pub vram: Arc<XenVram>,
}

impl crate::migration::dirty::DirtyLog for XenDirtyLog {
    fn set_dirty_logging(&self, on: bool) -> Result<(), String> {
        self.memory.set_dirty_logging(on);
        Ok(())
    }

    fn before_device_save(&self) {
        if self.memory.dirty_logging() {
            self.vram.report_all_modified();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xen::dmop::testing::{Call, RecordingTransport};
    use crate::xen::dmop::{XEN_DMOP_PIN_MEMORY_CACHEATTR, XEN_DMOP_RELOCATE_MEMORY, XEN_DMOP_TRACK_DIRTY_VRAM};
    use std::collections::HashMap;

    #[derive(Default)]
    struct FakeHost {
        populated: Mutex<Vec<u64>>,
        /// Frames Xen refuses to populate from (the domain's maximum).
        limit: Option<u64>,
        mapped: Mutex<Vec<(u64, usize)>>,
        /// Frames that do not map (holes).
        holes: Vec<u64>,
        follows: bool,
        xs: Mutex<HashMap<String, String>>,
    }

    impl VramHost for FakeHost {
        fn populate(&self, gfns: &[u64]) -> Result<(), String> {
            if let Some(l) = self.limit {
                if gfns.iter().any(|&g| g >= l) {
                    return Err("Xen populated 12 of 4096 pages".into());
                }
            }
            self.populated.lock().unwrap().extend(gfns);
            Ok(())
        }
        fn map_foreign(&self, gfns: &[u64]) -> Result<Arc<MmapRegion<()>>, String> {
            if gfns.iter().any(|g| self.holes.contains(g)) {
                return Err("guest frame did not map (error -14)".into());
            }
            self.mapped.lock().unwrap().push((gfns[0], gfns.len()));
            Ok(Arc::new(MmapRegion::new(gfns.len() * PAGE).unwrap()))
        }
        fn same_frame(&self, _: &MmapRegion<()>, _: usize, _: u64) -> Result<bool, String> {
            Ok(self.follows)
        }
        fn xs_read(&self, path: &str) -> Option<String> {
            self.xs.lock().unwrap().get(path).cloned()
        }
        fn xs_write(&self, path: &str, value: &str) -> Result<(), String> {
            self.xs.lock().unwrap().insert(path.to_string(), value.to_string());
            Ok(())
        }
        fn xs_rm(&self, path: &str) {
            self.xs.lock().unwrap().retain(|k, _| !k.starts_with(path));
        }
    }

    fn host() -> FakeHost {
        let h = FakeHost { follows: true, ..Default::default() };
        h.xs.lock().unwrap().insert("/local/domain/9/memory/videoram".into(), "16384".into());
        h
    }

    fn service(h: FakeHost, ram: u64, incoming: bool) -> (Arc<RecordingTransport>, Arc<FakeHost>, XenVram) {
        let t = RecordingTransport::new();
        let h = Arc::new(h);
        (t.clone(), h.clone(), XenVram::new(DeviceModelOps::new(t, 9), h, ram, incoming))
    }

    /// (op, first u64 fields) of each DMOP, for relocate/pin/track.
    fn ops(calls: &[Call]) -> Vec<(u32, u64, u64, u64)> {
        calls
            .iter()
            .map(|c| match c.op() {
                XEN_DMOP_RELOCATE_MEMORY => (c.op(), c.field(0, 4), c.field(8, 8), c.field(16, 8)),
                XEN_DMOP_PIN_MEMORY_CACHEATTR => (c.op(), c.field(0, 8), c.field(8, 8), c.field(16, 4)),
                XEN_DMOP_TRACK_DIRTY_VRAM => (c.op(), c.field(0, 4), c.field(8, 8), 0),
                op => (op, 0, 0, 0),
            })
            .collect()
    }

    #[test]
    fn vram_goes_just_past_ram_where_qemu_puts_it() {
        assert_eq!(first_vram_gfn(24 << 20), 0x1800);
        // Rounded up to QEMU's 256 KiB RAM-block alignment.
        assert_eq!(first_vram_gfn((24 << 20) + 4096), 0x1840);
        // Above the 0xf0000000 split the hole below 4 GiB is counted in.
        assert_eq!(first_vram_gfn(0xf000_0000), 0x10_0000);
        assert_eq!(first_vram_gfn(6 << 30), 0x10_0000 + ((6u64 << 30) - 0xf000_0000) / 4096);
    }

    #[test]
    fn the_budget_is_videoram_plus_libxls_slack() {
        assert_eq!(budget_warning(16384, Some(16384)), None);
        assert_eq!(budget_warning(16384 + 1024, Some(16384)), None);
        // videoram=24M with stdvga: rounded up to 32 MiB as QEMU does, 7 MiB over.
        let w = budget_warning(32768, Some(24576)).unwrap();
        assert!(w.contains("32768 KiB") && w.contains("24576 KiB") && w.contains("power-of-two"), "{w}");
        assert_eq!(budget_warning(1 << 30, None), None, "no videoram key: nothing to compare with");
    }

    #[test]
    fn bitmaps_convert_from_xens_bytes_to_words() {
        let mut w = vec![0u64; 2];
        or_byte_bitmap(&mut w, &[0x01, 0x80, 0, 0, 0, 0, 0, 0x40, 0xff, 0xaa, 0x55]);
        assert_eq!(w[0], 0x4000_0000_0000_8001);
        assert_eq!(w[1], 0x55aaff);
        // Bytes past the words are ignored.
        or_byte_bitmap(&mut w[..1], &[0; 8].iter().chain(&[0xff; 8]).copied().collect::<Vec<u8>>());
        assert_eq!(w[1], 0x55aaff);
        let mut w = vec![0u64; 2];
        set_pages(&mut w, 62, 200);
        assert_eq!(w, [0xc000_0000_0000_0000, u64::MAX]);
    }

    #[test]
    fn allocation_populates_past_ram_and_maps_it() {
        let (_, h, s) = service(host(), 24 << 20, false);
        let a = s.allocate(16 << 20).unwrap();
        let b = s.allocate(4096).unwrap();
        let populated = h.populated.lock().unwrap().clone();
        assert_eq!(populated.len(), 4096 + 1);
        assert_eq!((populated[0], populated[4095], populated[4096]), (0x1800, 0x27ff, 0x2800));
        assert_eq!(*h.mapped.lock().unwrap(), vec![(0x1800, 4096), (0x2800, 1)]);
        assert_eq!((a.len(), b.len()), (16 << 20, 4096));
        assert!(s.vram_is_guest_memory());
    }

    #[test]
    fn a_refused_population_names_the_budget() {
        let h = FakeHost { limit: Some(0x1810), ..host() };
        h.xs.lock().unwrap().insert("/local/domain/9/memory/videoram".into(), "24576".into());
        let (_, _h, s) = service(h, 24 << 20, false);
        let e = s.allocate(32 << 20).unwrap_err().to_string();
        assert!(e.contains("0x1800-0x37ff") && e.contains("24576 KiB") && e.contains("power-of-two"), "{e}");
    }

    #[test]
    fn mapping_relocates_pins_records_and_moves_back() {
        let (t, h, s) = service(host(), 24 << 20, false);
        let v = s.allocate(8 << 20).unwrap();
        assert!(s.map(&v, Some(0xf000_0000)));
        assert!(s.map(&v, Some(0xf000_0000)), "already there");
        let reloc = XEN_DMOP_RELOCATE_MEMORY;
        let pin = XEN_DMOP_PIN_MEMORY_CACHEATTR;
        assert_eq!(
            ops(&t.take()),
            vec![(reloc, 2048, 0x1800, 0xf0000), (pin, 0xf0000, 0xf07ff, XEN_DMOP_MEM_CACHEATTR_WB as u64)]
        );
        let key = "device-model/9/physmap/1800000";
        let xs = h.xs.lock().unwrap().clone();
        assert_eq!(xs.get(&format!("{key}/start_addr")).map(String::as_str), Some("f0000000"));
        assert_eq!(xs.get(&format!("{key}/size")).map(String::as_str), Some("800000"));
        assert_eq!(xs.get(&format!("{key}/name")).map(String::as_str), Some("vga.vram"));
        // The BAR moves: home first, then into the new place.
        assert!(s.map(&v, Some(0xe000_0000)));
        let c = ops(&t.take());
        let track = XEN_DMOP_TRACK_DIRTY_VRAM;
        assert_eq!(
            c,
            vec![
                (track, 0, 0, 0),
                (pin, 0xf0000, 0xf07ff, DELETE_MEM_CACHEATTR as u64),
                (reloc, 2048, 0xf0000, 0x1800),
                (reloc, 2048, 0x1800, 0xe0000),
                (pin, 0xe0000, 0xe07ff, XEN_DMOP_MEM_CACHEATTR_WB as u64)
            ]
        );
        // Decoding off: home, and the key is gone.
        assert!(!s.map(&v, None));
        assert_eq!(ops(&t.take())[2], (reloc, 2048, 0xe0000, 0x1800));
        assert!(h.xs_read(&format!("{key}/start_addr")).is_none());
        // Never into the legacy window, off a page boundary, or over its own home.
        assert!(!s.map(&v, Some(0xa_0000)));
        assert!(!s.map(&v, Some(0xe000_0800)));
        assert!(!s.map(&v, Some(0x140_0000)));
        assert!(!s.map(&v, Some(0x1c0_0000)));
        assert!(t.take().is_empty());
    }

    #[test]
    fn a_mapping_that_does_not_follow_keeps_bar0_trapped() {
        let (t, _h, s) = service(FakeHost { follows: false, ..host() }, 24 << 20, false);
        let v = s.allocate(4 << 20).unwrap();
        assert!(!s.map(&v, Some(0xf000_0000)));
        let c = ops(&t.take());
        assert_eq!(c.first().unwrap().2, 0x1800);
        assert_eq!(c.last().unwrap(), &(XEN_DMOP_RELOCATE_MEMORY, 1024, 0xf0000, 0x1800), "moved back");
        assert!(!s.map(&v, Some(0xf000_0000)), "and never tried again");
        assert!(t.take().is_empty());
    }

    #[test]
    fn dirty_pages_come_from_track_dirty_vram_while_relocated() {
        let (t, _h, s) = service(host(), 24 << 20, false);
        let v = s.allocate(70 * PAGE).unwrap();
        let mut d = vec![0u64; 2];
        assert!(s.sync_dirty(&v, &mut d), "at home: nothing behind the device's back");
        assert!(t.take().is_empty());
        assert!(s.map(&v, Some(0xf000_0000)));
        t.take();
        t.respond(|bufs| {
            if bufs.len() > 1 {
                bufs[1][0] = 0b10;
                bufs[1][8] = 0x20;
            }
            Ok(())
        });
        assert!(s.sync_dirty(&v, &mut d));
        assert_eq!(d, [0b10, 0x20]);
        let c = t.take();
        assert_eq!(ops(&c), vec![(XEN_DMOP_TRACK_DIRTY_VRAM, 70, 0xf0000, 0)]);
        assert_eq!(c[0].bufs[1].len(), 9, "one bit per page");
        t.respond(|_| Err(std::io::Error::from_raw_os_error(libc::ENODATA)));
        assert!(!s.sync_dirty(&v, &mut d), "ENODATA: everything may be dirty");
    }

    #[test]
    fn vram_larger_than_one_track_call_reports_the_rest_dirty() {
        let (t, _h, s) = service(host(), 24 << 20, false);
        let v = s.allocate(256 << 20).unwrap();
        assert!(s.map(&v, Some(0x1_0000_0000)));
        t.take();
        let mut d = vec![0u64; 65536 / 64];
        assert!(s.sync_dirty(&v, &mut d));
        assert_eq!(ops(&t.take())[0].1, 32768, "the first 128 MiB are tracked");
        assert!(d[..512].iter().all(|&w| w == 0) && d[512..].iter().all(|&w| w == u64::MAX));
    }

    #[test]
    fn a_live_migration_reports_every_vram_page_at_the_last_pass() {
        let (t, _h, s) = service(host(), 24 << 20, false);
        let v = s.allocate(8 << 20).unwrap();
        s.allocate(PAGE).unwrap();
        assert!(s.map(&v, Some(0xf000_0000)));
        t.take();
        s.report_all_modified();
        let c = t.take();
        assert_eq!(c.len(), 1);
        assert_eq!((c[0].op(), c[0].field(0, 4)), (crate::xen::dmop::XEN_DMOP_MODIFIED_MEMORY, 2));
        let e = &c[0].bufs[1];
        let ext = |i: usize| {
            (
                u64::from_le_bytes(e[i * 16 + 8..i * 16 + 16].try_into().unwrap()),
                u32::from_le_bytes(e[i * 16..i * 16 + 4].try_into().unwrap()),
            )
        };
        assert_eq!((ext(0), ext(1)), ((0xf0000, 2048), (0x2000, 1)), "where the pages are now");
    }

    #[test]
    fn an_incoming_guest_is_not_populated_and_its_vram_is_found_where_it_was() {
        let h = host();
        h.xs.lock().unwrap().insert("device-model/9/physmap/1800000/start_addr".into(), "f0000000".into());
        let (t, h, s) = service(h, 24 << 20, true);
        let v = s.allocate(8 << 20).unwrap();
        assert!(h.populated.lock().unwrap().is_empty());
        assert_eq!(*h.mapped.lock().unwrap(), vec![(0xf0000, 2048)]);
        // The restored device maps BAR0 where it was: nothing moves.
        assert!(s.map(&v, Some(0xf000_0000)));
        assert!(t.take().is_empty());
        // Without keys the pages are at home (BAR0 did not decode at save time).
        let (_, h, s) = service(host(), 24 << 20, true);
        s.allocate(8 << 20).unwrap();
        assert_eq!(*h.mapped.lock().unwrap(), vec![(0x1800, 2048)]);
        // A restored guest whose pages are nowhere still starts, trapping BAR0.
        let (t, _h, s) = service(FakeHost { holes: vec![0x1800], ..host() }, 24 << 20, true);
        let v = s.allocate(8 << 20).unwrap();
        assert!(!s.map(&v, Some(0xf000_0000)));
        assert!(t.take().is_empty());
    }
}
