//! PV backends the toolstack asks the device model to serve, which we do not serve (yet).
//!
//! libxl (4.17, `libxl_disk.c` / `libxl_device.c`) gives an HVM guest's disk the `qdisk` backend
//! when its image is a regular file (`phy` needs a block device) and always gives CD-ROMs `qdisk`.
//! It writes `backend/qdisk/<domid>/<devid>` in the backend domain (state 1, `params` =
//! `aio:<path>` for raw) and the guest's `device/vbd/<devid>` before it starts the device model,
//! and passes the same image as an emulated `-drive`. qdisk, vkbd, vfb, qusb and 9pfs are
//! "QEMU backends" to libxl: it never waits for their state when adding them (it assumes the
//! device model is running and serves them), it never reads `device-model/<domid>/backends` for
//! qdisk (only for qusb, where a missing entry makes it refuse the controller), and on destroy of
//! a paused domain it waits a fixed 2 s (`LIBXL_QEMU_BODGE_TIMEOUT`) and then forces them to
//! state 6 itself. So an unserved qdisk backend costs nothing until a guest's PV drivers use it:
//! after they unplug the emulated disks (xen-platform unplug protocol) the PV frontend waits for a
//! backend that stays in state 1, and the guest loses those disks.
//!
//! We do not write `device-model/<domid>/backends/*` (we serve none of them), leave the disk
//! backends in state 1 and say so loudly: at start, when the toolstack adds one later (`xl
//! block-attach`), and when the guest unplugs the emulated disks they stood in for. The PV
//! keyboard and framebuffer backends (vkbd, vfb) we mark Closed instead (see
//! [`close_input_backends`]): a frontend bound to one would otherwise hold up the guest's boot.
//! Everything read here is written by the toolstack, not the guest; it is still bounded.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::xenstore::{Xenstore, XsError};

/// Backend kinds libxl expects qemu-xen to serve in-process (`QEMU_BACKEND()` in libxl_internal.h).
pub const QEMU_BACKEND_KINDS: [&str; 5] = ["qdisk", "vkbd", "vfb", "qusb", "9pfs"];
/// At most this many devices of one kind are listed (they come from the toolstack; bounded anyway).
const MAX_DEVICES_PER_KIND: usize = 64;
/// Values longer than this are cut in messages.
const MAX_VALUE_CHARS: usize = 256;

/// One backend libxl wrote for us that nobody serves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnservedBackend {
    pub kind: String,
    pub devid: String,
    /// `dev` (the vdev: hda, xvdb, ...).
    pub dev: Option<String>,
    /// `device-type`: disk or cdrom.
    pub device_type: Option<String>,
    /// `params`: `<format>:<path>` (`aio:` is raw).
    pub params: Option<String>,
}

impl UnservedBackend {
    /// A CD-ROM: PV-on-HVM drivers keep using the emulated one (Linux blkfront refuses cdrom vbds
    /// in HVM guests, and the unplug protocol never unplugs CD-ROMs).
    pub fn is_cdrom(&self) -> bool {
        self.device_type.as_deref() == Some("cdrom")
    }

    /// A disk the guest's PV drivers would switch to after unplugging the emulated disks.
    pub fn is_disk(&self) -> bool {
        self.kind == "qdisk" && !self.is_cdrom()
    }
}

impl fmt::Display for UnservedBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.kind, self.devid)?;
        let details: Vec<&str> =
            [self.dev.as_deref(), self.device_type.as_deref(), self.params.as_deref()].into_iter().flatten().collect();
        if !details.is_empty() {
            write!(f, " ({})", details.join(", "))?;
        }
        Ok(())
    }
}

/// `XenbusStateInitialising` and `XenbusStateClosed` (xen/include/public/io/xenbus.h).
const XENBUS_STATE_INITIALISING: &str = "1";
const XENBUS_STATE_CLOSED: &str = "6";

/// The PV keyboard and framebuffer: guests keep the emulated PS/2 devices (and VGA) without them.
fn is_input(b: &UnservedBackend) -> bool {
    b.kind == "vkbd" || b.kind == "vfb"
}

/// Marks the unserved vkbd/vfb backends among `list` Closed, when they are still in the state
/// libxl wrote (Initialising). libxl gives every HVM guest a vkbd, and Linux's xen-kbdfront (built
/// into Debian's kernels) binds it: at boot `xenbus_probe_frontend` then waits up to 30 s
/// (`wait_for_devices`, for "non-essential" devices) for it to connect, which with nobody serving
/// it never happens. A frontend that sees its backend Closed closes too (xen-kbdfront's
/// `xenkbd_backend_changed`), so the wait ends at once. Disk backends stay in state 1: a frontend
/// that gives up on a disk loses it just the same, and that is what the warnings are about.
/// Read and write happen in one transaction, so a state libxl moved on meanwhile (Closing, on
/// removal) is never overwritten.
pub fn close_input_backends(xs: &Xenstore, domid: u16, list: &[UnservedBackend]) {
    for b in list.iter().filter(|b| is_input(b)) {
        let path = format!("backend/{}/{domid}/{}/state", b.kind, b.devid);
        // xenstored answers EAGAIN when the transaction conflicted: try again (bounded).
        for _attempt in 0..3 {
            match close_if_initialising(xs, &path) {
                Ok(true) => log::info!("{b}: not served; marked Closed so the guest's frontend does not wait for it"),
                Ok(false) => {}
                Err(XsError::Errno(e)) if e == "EAGAIN" => continue,
                Err(e) => log::debug!("closing {b}: {e}"),
            }
            break;
        }
    }
}

/// One transaction: `path` from Initialising to Closed; Ok(false) when it held another state.
fn close_if_initialising(xs: &Xenstore, path: &str) -> Result<bool, XsError> {
    let tx = xs.transaction_start()?;
    let result = xs.read_in(tx, path).and_then(|v| {
        if v == XENBUS_STATE_INITIALISING.as_bytes() {
            xs.write_in(tx, path, XENBUS_STATE_CLOSED.as_bytes()).map(|()| true)
        } else {
            Ok(false)
        }
    });
    let commit = matches!(result, Ok(true));
    xs.transaction_end(tx, commit)?;
    result
}

fn bounded(mut s: String) -> String {
    if let Some((i, _)) = s.char_indices().nth(MAX_VALUE_CHARS) {
        s.truncate(i);
        s.push_str("...");
    }
    s
}

/// The backends of `kind` for guest `domid` in our own domain's backend directory (relative
/// path: dom0's `/local/domain/0/backend/...`, or a stub domain's own).
pub fn list_kind(xs: &Xenstore, kind: &str, domid: u16) -> Vec<UnservedBackend> {
    let dir = format!("backend/{kind}/{domid}");
    let mut devids = match xs.directory(&dir) {
        Ok(d) => d,
        Err(e) if e.is_enoent() => return Vec::new(),
        Err(e) => {
            log::debug!("listing {dir}: {e}");
            return Vec::new();
        }
    };
    // numeric order (768 before 5632), whatever xenstored returns
    devids.sort_by_key(|d| (d.parse::<u64>().unwrap_or(u64::MAX), d.clone()));
    devids.truncate(MAX_DEVICES_PER_KIND);
    let read = |devid: &str, key: &str| xs.read_string(&format!("{dir}/{devid}/{key}")).ok().map(bounded);
    devids
        .into_iter()
        .map(|devid| UnservedBackend {
            kind: kind.to_string(),
            dev: read(&devid, "dev"),
            device_type: read(&devid, "device-type"),
            params: read(&devid, "params"),
            devid: bounded(devid),
        })
        .collect()
}

/// Every backend of a [`QEMU_BACKEND_KINDS`] kind written for guest `domid`.
pub fn list_unserved(xs: &Xenstore, domid: u16) -> Vec<UnservedBackend> {
    QEMU_BACKEND_KINDS.iter().flat_map(|kind| list_kind(xs, kind, domid)).collect()
}

fn join(list: &[&UnservedBackend]) -> String {
    list.iter().map(|b| b.to_string()).collect::<Vec<_>>().join(", ")
}

/// What to tell the user about `list` (found at start or added later): one message per class, the
/// disks as a warning.
pub fn describe(list: &[UnservedBackend], when: &str) -> Vec<(log::Level, String)> {
    let disks: Vec<&UnservedBackend> = list.iter().filter(|b| b.is_disk()).collect();
    let cds: Vec<&UnservedBackend> = list.iter().filter(|b| b.is_cdrom()).collect();
    // vkbd/vfb: libxl adds a vkbd to every HVM guest; guests keep the emulated PS/2 devices, and
    // close_input_backends keeps Linux from waiting for them at boot.
    let input = |b: &&UnservedBackend| is_input(b);
    let inputs: Vec<&UnservedBackend> = list.iter().filter(input).collect();
    let others: Vec<&UnservedBackend> = list.iter().filter(|b| b.kind != "qdisk" && !input(b)).collect();
    let mut out = Vec::new();
    if !disks.is_empty() {
        out.push((
            log::Level::Warn,
            format!(
                "{when}: libxl configured PV disk backends this device model does NOT serve: {}. They stay in state 1; \
                 the guest gets these disks only as emulated IDE. A guest whose PV drivers unplug the emulated disks \
                 (Linux xen-blkfront, Windows PV drivers) then waits for them and loses the disks: boot Linux guests \
                 with xen_emul_unplug=never, or set xen_platform_pci=0 in the xl config (README, \"PV disks on Xen\")",
                join(&disks)
            ),
        ));
    }
    if !cds.is_empty() {
        out.push((
            log::Level::Info,
            format!("{when}: PV CD-ROM backends not served (guests keep using the emulated CD-ROM): {}", join(&cds)),
        ));
    }
    if !inputs.is_empty() {
        out.push((
            log::Level::Info,
            format!(
                "{when}: PV keyboard/framebuffer backends not served (guests keep the emulated PS/2 devices): {}",
                join(&inputs)
            ),
        ));
    }
    if !others.is_empty() {
        out.push((
            log::Level::Warn,
            format!("{when}: libxl configured PV backends this device model does NOT serve: {}", join(&others)),
        ));
    }
    out
}

fn report(list: &[UnservedBackend], when: &str) {
    for (level, msg) in describe(list, when) {
        log::log!(level, "{msg}");
    }
}

/// The unserved backends of one guest, kept current by a watch thread on a connection of its own.
pub struct UnservedBackends {
    known: Arc<Mutex<Vec<UnservedBackend>>>,
    stop: Arc<AtomicBool>,
}

impl UnservedBackends {
    /// Lists and reports what libxl wrote before starting us, then watches for additions.
    pub fn start(xs: &Xenstore, domid: u16) -> Self {
        let initial = list_unserved(xs, domid);
        report(&initial, "at start");
        close_input_backends(xs, domid, &initial);
        let known = Arc::new(Mutex::new(initial));
        let stop = Arc::new(AtomicBool::new(false));
        // A second connection: the main one belongs to the ioreq path, and watch events need a
        // reader of their own. Failing to watch only loses the later warnings.
        match Xenstore::open() {
            Ok(conn) => {
                let (k, s) = (known.clone(), stop.clone());
                let spawned = std::thread::Builder::new()
                    .name("pv-backends".into())
                    .spawn(move || watch_loop(&conn, domid, &k, &s));
                if let Err(e) = spawned {
                    log::warn!("cannot start the PV backend watcher: {e}");
                }
            }
            Err(e) => log::warn!("PV backends added later will not be reported: {e}"),
        }
        UnservedBackends { known, stop }
    }

    /// The unserved PV disks (not CD-ROMs) known now.
    pub fn disks(&self) -> Vec<UnservedBackend> {
        self.known.lock().unwrap().iter().filter(|b| b.is_disk()).cloned().collect()
    }

    /// What to log when the guest unplugs the emulated disks while their PV backends are unserved.
    pub fn unplug_warning(&self) -> Option<String> {
        let disks = self.disks();
        (!disks.is_empty()).then(|| {
            format!(
                "the guest's PV drivers unplugged the emulated disks; the PV disk backends they will look for are \
                 not served by this device model: {}. The guest loses these disks (Linux: \"xenbus_probe_frontend: \
                 Waiting for devices to initialise\", then \"Timeout connecting to device: device/vbd/...\"); boot it \
                 with xen_emul_unplug=never or set xen_platform_pci=0",
                join(&disks.iter().collect::<Vec<_>>())
            )
        })
    }
}

impl Drop for UnservedBackends {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn watch_loop(xs: &Xenstore, domid: u16, known: &Mutex<Vec<UnservedBackend>>, stop: &AtomicBool) {
    let Some(events) = xs.watch_events() else { return };
    for kind in QEMU_BACKEND_KINDS {
        if let Err(e) = xs.watch(&format!("backend/{kind}/{domid}"), kind) {
            log::debug!("watching backend/{kind}/{domid}: {e}");
        }
    }
    while !stop.load(Ordering::SeqCst) {
        let ev = match events.recv_timeout(Duration::from_millis(500)) {
            Ok(ev) => ev,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => continue,
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return,
        };
        let Some(kind) = QEMU_BACKEND_KINDS.iter().find(|k| **k == ev.token) else { continue };
        // libxl writes a device in one transaction, so its keys are all there when the event comes.
        let now = list_kind(xs, kind, domid);
        let mut known = known.lock().unwrap();
        let seen: BTreeSet<(String, String)> = known.iter().map(|b| (b.kind.clone(), b.devid.clone())).collect();
        let added: Vec<UnservedBackend> =
            now.iter().filter(|b| !seen.contains(&(b.kind.clone(), b.devid.clone()))).cloned().collect();
        // removed ones (detach, destroy) are forgotten quietly
        known.retain(|b| b.kind != *kind || now.iter().any(|n| n.devid == b.devid));
        known.extend(added.iter().cloned());
        drop(known);
        if !added.is_empty() {
            report(&added, "added while running");
            close_input_backends(xs, domid, &added);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xen::xenstore::tests::connected;

    fn add(xs: &Xenstore, kind: &str, domid: u16, devid: &str, keys: &[(&str, &str)]) {
        let dir = format!("backend/{kind}/{domid}/{devid}");
        xs.mkdir(&format!("backend/{kind}/{domid}")).unwrap();
        xs.mkdir(&dir).unwrap();
        for (k, v) in keys {
            xs.write(&format!("{dir}/{k}"), v.as_bytes()).unwrap();
        }
    }

    /// What libxl 4.17 writes for `disk=['file:/xen/disk.raw,hda,w', '...,devtype=cdrom,target=/xen/cd1.iso']`.
    fn libxl_disks(xs: &Xenstore, domid: u16) {
        add(
            xs,
            "qdisk",
            domid,
            "5632",
            &[("dev", "hdc"), ("device-type", "cdrom"), ("params", "aio:/xen/cd1.iso"), ("state", "1")],
        );
        add(
            xs,
            "qdisk",
            domid,
            "768",
            &[("dev", "hda"), ("device-type", "disk"), ("params", "aio:/xen/disk.raw"), ("state", "1")],
        );
    }

    #[test]
    fn lists_the_guests_qdisk_backends_in_devid_order() {
        let xs = connected();
        libxl_disks(&xs, 3);
        add(&xs, "qdisk", 4, "768", &[("params", "aio:/other-guest.raw")]);
        let list = list_unserved(&xs, 3);
        assert_eq!(list.len(), 2, "{list:?}");
        assert_eq!(list[0].to_string(), "qdisk/768 (hda, disk, aio:/xen/disk.raw)");
        assert!(list[0].is_disk() && !list[0].is_cdrom());
        assert_eq!(list[1].to_string(), "qdisk/5632 (hdc, cdrom, aio:/xen/cd1.iso)");
        assert!(list[1].is_cdrom() && !list[1].is_disk());
        assert!(list_unserved(&xs, 9).is_empty(), "no backend directory: nothing to report");
    }

    #[test]
    fn disks_warn_naming_the_image_cdroms_only_inform() {
        let xs = connected();
        libxl_disks(&xs, 3);
        let msgs = describe(&list_unserved(&xs, 3), "at start");
        assert_eq!(msgs.len(), 2, "{msgs:?}");
        assert_eq!(msgs[0].0, log::Level::Warn);
        assert!(
            msgs[0].1.contains("qdisk/768 (hda, disk, aio:/xen/disk.raw)")
                && msgs[0].1.contains("xen_emul_unplug=never")
        );
        assert!(!msgs[0].1.contains("5632"), "the CD-ROM is not among the disks: {}", msgs[0].1);
        assert_eq!(msgs[1].0, log::Level::Info);
        assert!(msgs[1].1.contains("qdisk/5632"));
        // a CD-only guest (every HVM guest has its CD as qdisk) gets no warning at all
        let cd_only: Vec<UnservedBackend> = list_unserved(&xs, 3).into_iter().filter(|b| b.is_cdrom()).collect();
        assert!(describe(&cd_only, "at start").iter().all(|(l, _)| *l == log::Level::Info));
        assert!(describe(&[], "at start").is_empty());
    }

    #[test]
    fn other_qemu_backend_kinds_are_reported_too() {
        let xs = connected();
        // libxl gives every HVM guest a vkbd: information only
        add(&xs, "vkbd", 3, "0", &[("state", "1")]);
        let msgs = describe(&list_unserved(&xs, 3), "at start");
        assert_eq!(msgs.len(), 1);
        assert_eq!(msgs[0].0, log::Level::Info);
        assert!(msgs[0].1.contains("vkbd/0"), "{}", msgs[0].1);
        add(&xs, "qusb", 3, "0", &[("state", "1")]);
        let msgs = describe(&list_unserved(&xs, 3), "at start");
        assert_eq!(msgs.len(), 2, "{msgs:?}");
        assert_eq!(msgs[1].0, log::Level::Warn);
        assert!(msgs[1].1.contains("qusb/0") && !msgs[1].1.contains("vkbd"), "{}", msgs[1].1);
    }

    #[test]
    fn unserved_keyboard_and_framebuffer_backends_are_closed_disks_are_left_alone() {
        let xs = connected();
        libxl_disks(&xs, 3);
        add(&xs, "vkbd", 3, "0", &[("state", "1")]);
        add(&xs, "vfb", 3, "0", &[("state", "1")]);
        // a vkbd libxl is already removing (Closing) is not touched
        add(&xs, "vkbd", 3, "1", &[("state", "5")]);
        close_input_backends(&xs, 3, &list_unserved(&xs, 3));
        let state = |kind: &str, devid: &str| xs.read_string(&format!("backend/{kind}/3/{devid}/state")).unwrap();
        assert_eq!(state("vkbd", "0"), "6");
        assert_eq!(state("vfb", "0"), "6");
        assert_eq!(state("vkbd", "1"), "5");
        assert_eq!((state("qdisk", "768"), state("qdisk", "5632")), ("1".into(), "1".into()), "disks stay in state 1");
    }

    #[test]
    fn a_keyboard_backend_added_while_running_is_closed() {
        let xs = Arc::new(connected());
        let known = Arc::new(Mutex::new(list_unserved(&xs, 3)));
        let stop = Arc::new(AtomicBool::new(false));
        let (x, k, s) = (xs.clone(), known.clone(), stop.clone());
        let watcher = std::thread::spawn(move || watch_loop(&x, 3, &k, &s));
        add(&xs, "vkbd", 3, "0", &[("state", "1")]);
        let t0 = std::time::Instant::now();
        let closed = || xs.read_string("backend/vkbd/3/0/state").ok().as_deref() == Some("6");
        while !closed() && t0.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(10));
        }
        stop.store(true, Ordering::SeqCst);
        watcher.join().unwrap();
        assert!(closed(), "state is {:?}", xs.read_string("backend/vkbd/3/0/state"));
    }

    #[test]
    fn long_values_are_cut() {
        let xs = connected();
        let long = format!("aio:/{}", "x".repeat(3000));
        add(&xs, "qdisk", 3, "768", &[("params", long.as_str())]);
        let list = list_unserved(&xs, 3);
        let params = list[0].params.as_deref().unwrap();
        assert!(params.len() <= MAX_VALUE_CHARS + 3 && params.ends_with("..."), "{}", params.len());
    }

    #[test]
    fn a_backend_added_while_running_is_picked_up_and_a_removed_one_forgotten() {
        let xs = Arc::new(connected());
        libxl_disks(&xs, 3);
        let known = Arc::new(Mutex::new(list_unserved(&xs, 3)));
        let stop = Arc::new(AtomicBool::new(false));
        let (x, k, s) = (xs.clone(), known.clone(), stop.clone());
        let watcher = std::thread::spawn(move || watch_loop(&x, 3, &k, &s));
        let has = |devid: &str| known.lock().unwrap().iter().any(|b| b.devid == devid);
        let wait_until = |f: &dyn Fn() -> bool| {
            let t0 = std::time::Instant::now();
            while !f() && t0.elapsed() < Duration::from_secs(5) {
                std::thread::sleep(Duration::from_millis(10));
            }
            f()
        };
        // xl block-attach ... xvdb: devid 51728; the fake daemon fires the watch on writes below it
        add(&xs, "qdisk", 3, "51728", &[("dev", "xvdb"), ("params", "aio:/xen/disk2.raw")]);
        assert!(wait_until(&|| has("51728")), "the added backend was not picked up: {:?}", known.lock().unwrap());
        assert!(has("768") && has("5632"));
        xs.rm("backend/qdisk/3/768").unwrap();
        add(&xs, "qdisk", 3, "51728", &[("state", "5")]); // any write below the watch re-lists the kind
        assert!(wait_until(&|| !has("768")), "the removed backend is still listed");
        stop.store(true, Ordering::SeqCst);
        watcher.join().unwrap();
    }

    #[test]
    fn unplug_warning_names_the_unserved_disks_only() {
        let xs = connected();
        libxl_disks(&xs, 3);
        let known = Arc::new(Mutex::new(list_unserved(&xs, 3)));
        let u = UnservedBackends { known: known.clone(), stop: Arc::new(AtomicBool::new(false)) };
        let w = u.unplug_warning().expect("a warning when PV disks are unserved");
        assert!(w.contains("aio:/xen/disk.raw") && !w.contains("cd1.iso"), "{w}");
        known.lock().unwrap().retain(|b| b.is_cdrom());
        assert!(u.unplug_warning().is_none(), "nothing to say for a CD-only guest");
    }
}
