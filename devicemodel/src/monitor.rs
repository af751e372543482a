//! The machine's side of QMP: run control hooks for `stop`/`cont`/`quit`, and the block commands
//! libxl and xentop use (`eject`, `blockdev-change-medium`, `change`, `query-block`,
//! `query-blockstats`, tray open/close). Behaviour and error wording follow QEMU 8.2's
//! `qapi/block.json` and `block/qapi-sysemu.c`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};

use devices::storage::block::{BlockBackend, RawFile};
use devices::storage::ide::{CdromHandle, IdeHandle, MediaError};
use serde_json::{json, Map, Value};

use crate::block::{CountingBackend, DriveStats};
use crate::cli::{DriveMedia, IdeAttachment};
use crate::kvm::RunControl;
use crate::machine::StopReason;
use crate::qmp::{Args, CommandContext, EventSender, FdSets, QmpError, QmpHandler, RunControlHooks};

/// What QMP run control acts on: the current boot's [`RunControl`] (replaced at every guest
/// reboot) and whether the guest should run.
#[derive(Default)]
pub struct MachineHooks {
    control: Mutex<Option<Arc<RunControl>>>,
    paused: AtomicBool,
    quit: AtomicBool,
    /// Signalled (with `quit_lock`) when `quit` is set, for [`MachineHooks::wait_for_quit`].
    quit_lock: Mutex<()>,
    quit_changed: Condvar,
}

/// A CD-ROM position (channel, unit) and the medium in it, if any.
pub type CdromMedium = (u8, u8, Option<Arc<dyn BlockBackend>>);

impl MachineHooks {
    pub fn new(start_paused: bool) -> Self {
        MachineHooks { paused: AtomicBool::new(start_paused), ..Default::default() }
    }

    /// The run control for a new boot, running unless QMP paused the guest (or `-S`).
    pub fn new_boot(&self) -> Arc<RunControl> {
        let c = Arc::new(RunControl::new(!self.paused.load(Ordering::SeqCst)));
        *self.control.lock().unwrap() = Some(c.clone());
        if self.quit.load(Ordering::SeqCst) {
            c.stop(StopReason::Signal);
        }
        c
    }

    pub fn quit_requested(&self) -> bool {
        self.quit.load(Ordering::SeqCst)
    }

    /// Set once QMP `quit` or a termination signal asked the device model to exit: what the Xen
    /// ioreq loop watches.
    pub fn quit_flag(&self) -> &AtomicBool {
        &self.quit
    }

    /// Blocks until `quit` (QMP, or a signal through the event loop).
    pub fn wait_for_quit(&self) {
        let mut g = self.quit_lock.lock().unwrap_or_else(PoisonError::into_inner);
        while !self.quit_requested() {
            g = self.quit_changed.wait(g).unwrap_or_else(PoisonError::into_inner);
        }
    }
}

impl RunControlHooks for MachineHooks {
    fn pause(&self) {
        self.paused.store(true, Ordering::SeqCst);
        if let Some(c) = self.control.lock().unwrap().clone() {
            c.pause();
        }
    }
    fn resume(&self) {
        self.paused.store(false, Ordering::SeqCst);
        if let Some(c) = self.control.lock().unwrap().clone() {
            c.resume();
        }
    }
    fn quit(&self) {
        {
            let _g = self.quit_lock.lock().unwrap_or_else(PoisonError::into_inner);
            self.quit.store(true, Ordering::SeqCst);
            self.quit_changed.notify_all();
        }
        if let Some(c) = self.control.lock().unwrap().clone() {
            c.stop(StopReason::Signal);
        }
    }
}

/// One IDE position as QMP sees it.
struct Drive {
    attachment: IdeAttachment,
    stats: Arc<DriveStats>,
    /// `query-block` "qdev": the device id, or a QOM path like QEMU's for unnamed devices.
    qdev: String,
    node_name: String,
}

/// Block commands over the IDE drives of the running machine.
pub struct BlockCommands {
    drives: Vec<Drive>,
    ide: Mutex<Option<IdeHandle>>,
    events: EventSender,
}

const BLOCK_COMMANDS: [&str; 7] = [
    "eject",
    "blockdev-change-medium",
    "change",
    "query-block",
    "query-blockstats",
    "blockdev-open-tray",
    "blockdev-close-tray",
];

fn media_error(name: &str, e: MediaError) -> QmpError {
    match e {
        MediaError::Locked => QmpError::generic(format!(
            "Device '{name}' is locked and force was not specified, wait for tray to open and try again"
        )),
        MediaError::NotRemovable => QmpError::generic(format!("Device '{name}' is not removable")),
        other => QmpError::generic(format!("Device '{name}': {other}")),
    }
}

impl BlockCommands {
    pub fn new(attachments: &[IdeAttachment], stats: &[Arc<DriveStats>], events: EventSender) -> Self {
        let drives = attachments
            .iter()
            .zip(stats)
            .enumerate()
            .map(|(i, (a, s))| Drive {
                attachment: a.clone(),
                stats: s.clone(),
                qdev: a
                    .device_id
                    .clone()
                    .unwrap_or_else(|| format!("/machine/unattached/device[{}]", 20 + a.channel * 2 + a.unit)),
                node_name: format!("#block{}", 100 + i * 100),
            })
            .collect();
        BlockCommands { drives, ide: Mutex::new(None), events }
    }

    /// Points the commands at a (re)built machine's IDE controller and reports its tray moves
    /// as `DEVICE_TRAY_MOVED`.
    pub fn attach(&self, ide: IdeHandle) {
        let names: Vec<(usize, usize, String, String)> = self
            .drives
            .iter()
            .map(|d| {
                (
                    d.attachment.channel as usize,
                    d.attachment.unit as usize,
                    d.attachment.drive_id.clone(),
                    d.qdev.clone(),
                )
            })
            .collect();
        let events = self.events.clone();
        ide.set_tray_listener(Arc::new(move |m| {
            if let Some((_, _, dev, qdev)) = names.iter().find(|(c, u, _, _)| *c == m.channel && *u == m.unit) {
                events.send("DEVICE_TRAY_MOVED", json!({"device": dev, "id": qdev, "tray-open": m.tray_open}));
            }
        }));
        *self.ide.lock().unwrap() = Some(ide);
    }

    /// The current backend of each CD-ROM position (channel, unit, medium), to carry media over
    /// a guest reboot.
    pub fn current_media(&self) -> Vec<CdromMedium> {
        let ide = self.ide.lock().unwrap().clone();
        self.drives
            .iter()
            .filter(|d| d.attachment.media == DriveMedia::Cdrom)
            .map(|d| {
                let (c, u) = (d.attachment.channel, d.attachment.unit);
                let backend = ide.as_ref().and_then(|h| h.cdrom(c as usize, u as usize)).and_then(|cd| cd.backend());
                (c, u, backend)
            })
            .collect()
    }

    /// Finds a drive by `id` (device id, what libxl uses) or `device` (block backend name).
    fn find(&self, args: &mut Args<'_>) -> Result<(&Drive, String), QmpError> {
        let id = args.opt_str("id")?;
        let device = args.opt_str("device")?;
        let (name, found) = match (id, device) {
            (Some(id), None) => {
                (id, self.drives.iter().find(|d| d.attachment.device_id.as_deref() == Some(id) || d.qdev == id))
            }
            (None, Some(dev)) => (dev, self.drives.iter().find(|d| d.attachment.drive_id == dev)),
            (Some(_), Some(_)) => return Err(QmpError::generic("Cannot specify both 'device' and 'id'")),
            (None, None) => return Err(QmpError::generic("Need exactly one of 'device' and 'id'")),
        };
        match found {
            Some(d) => Ok((d, name.to_string())),
            None => Err(QmpError::device_not_found(name)),
        }
    }

    fn cdrom(&self, d: &Drive, name: &str) -> Result<CdromHandle, QmpError> {
        if d.attachment.media != DriveMedia::Cdrom {
            return Err(QmpError::generic(format!("Device '{name}' is not removable")));
        }
        let ide = self
            .ide
            .lock()
            .unwrap()
            .clone()
            .ok_or_else(|| QmpError::device_not_active(format!("Device '{name}' is not ready")))?;
        ide.cdrom(d.attachment.channel as usize, d.attachment.unit as usize)
            .ok_or_else(|| QmpError::generic(format!("Device '{name}' is not removable")))
    }

    fn open_medium(
        &self,
        d: &Drive,
        fdsets: &FdSets,
        filename: &str,
        format: Option<&str>,
    ) -> Result<Arc<dyn BlockBackend>, QmpError> {
        match format {
            None | Some("raw") | Some("host_device") | Some("file") => {}
            Some(f) => {
                return Err(QmpError::generic(format!(
                "Image format '{f}' of '{filename}' is not supported yet; convert it to raw (qemu-img convert -O raw)"
            )))
            }
        }
        let raw = if FdSets::is_fdset_path(filename) {
            let file = fdsets.open_fdset_path(filename, false).map_err(QmpError::generic)?;
            RawFile::from_file(file, filename, true)
        } else {
            RawFile::open(filename, true)
        }
        .map_err(|e| QmpError::generic(format!("Could not open '{filename}': {e}")))?;
        Ok(CountingBackend::wrap(Arc::new(raw), d.stats.clone()))
    }

    fn query_block(&self) -> Value {
        let ide = self.ide.lock().unwrap().clone();
        let queries = ide.map(|h| h.query()).unwrap_or_default();
        let list: Vec<Value> = self
            .drives
            .iter()
            .map(|d| {
                let q = queries.iter().find(|q| q.channel == d.attachment.channel as usize && q.unit == d.attachment.unit as usize);
                let mut o = Map::new();
                o.insert("device".into(), json!(d.attachment.drive_id));
                o.insert("qdev".into(), json!(d.qdev));
                o.insert("locked".into(), json!(q.map(|q| q.locked).unwrap_or(false)));
                o.insert("removable".into(), json!(q.map(|q| q.removable).unwrap_or(d.attachment.media == DriveMedia::Cdrom)));
                if let Some(open) = q.and_then(|q| q.tray_open) {
                    o.insert("tray_open".into(), json!(open));
                }
                if let Some(m) = q.and_then(|q| q.inserted.as_ref()) {
                    o.insert("io-status".into(), json!("ok"));
                    o.insert(
                        "inserted".into(),
                        json!({
                            "file": m.file, "node-name": d.node_name, "ro": m.read_only, "drv": m.format,
                            "encrypted": false, "backing_file_depth": 0, "detect_zeroes": "off",
                            "bps": 0, "bps_rd": 0, "bps_wr": 0, "iops": 0, "iops_rd": 0, "iops_wr": 0,
                            "write_threshold": 0,
                            "cache": {"writeback": true, "direct": false, "no-flush": false},
                            "image": {"filename": m.file, "format": m.format, "virtual-size": m.size, "dirty-flag": false}
                        }),
                    );
                }
                o.insert("type".into(), json!("unknown"));
                Value::Object(o)
            })
            .collect();
        Value::Array(list)
    }

    fn query_blockstats(&self) -> Value {
        let l = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        Value::Array(
            self.drives
                .iter()
                .map(|d| {
                    let s = &d.stats;
                    json!({
                        "device": d.attachment.drive_id, "qdev": d.qdev, "node-name": d.node_name,
                        "stats": {
                            "rd_bytes": l(&s.rd_bytes), "wr_bytes": l(&s.wr_bytes),
                            "rd_operations": l(&s.rd_operations), "wr_operations": l(&s.wr_operations),
                            "flush_operations": l(&s.flush_operations),
                            "rd_total_time_ns": 0, "wr_total_time_ns": 0, "flush_total_time_ns": 0,
                            "rd_merged": 0, "wr_merged": 0, "unmap_operations": 0, "unmap_bytes": 0,
                            "failed_rd_operations": 0, "failed_wr_operations": 0,
                            "invalid_rd_operations": 0, "invalid_wr_operations": 0,
                            "account_invalid": true, "account_failed": true, "idle_time_ns": 0,
                            "timed_stats": []
                        }
                    })
                })
                .collect(),
        )
    }
}

impl QmpHandler for BlockCommands {
    fn execute(&self, ctx: &CommandContext<'_>, name: &str, args: &Map<String, Value>) -> Result<Value, QmpError> {
        let mut a = Args::new(args);
        match name {
            "query-block" => {
                a.finish()?;
                Ok(self.query_block())
            }
            "query-blockstats" => {
                let _ = a.opt_bool("query-nodes")?;
                a.finish()?;
                Ok(self.query_blockstats())
            }
            "eject" => {
                let (d, n) = self.find(&mut a)?;
                let force = a.opt_bool("force")?.unwrap_or(false);
                a.finish()?;
                self.cdrom(d, &n)?.eject(force).map_err(|e| media_error(&n, e))?;
                Ok(json!({}))
            }
            "blockdev-open-tray" => {
                let (d, n) = self.find(&mut a)?;
                let force = a.opt_bool("force")?.unwrap_or(false);
                a.finish()?;
                self.cdrom(d, &n)?.open_tray(force).map_err(|e| media_error(&n, e))?;
                Ok(json!({}))
            }
            "blockdev-close-tray" => {
                let (d, n) = self.find(&mut a)?;
                a.finish()?;
                self.cdrom(d, &n)?.close_tray();
                Ok(json!({}))
            }
            "blockdev-change-medium" => {
                let (d, n) = self.find(&mut a)?;
                let filename = a.str("filename")?;
                let format = a.opt_str("format")?;
                let force = a.opt_bool("force")?.unwrap_or(false);
                match a.opt_str("read-only-mode")? {
                    None | Some("retain") | Some("read-only") => {}
                    Some("read-write") => {
                        return Err(QmpError::generic(format!("Device '{n}' is a CD-ROM; it cannot be read-write")))
                    }
                    Some(other) => {
                        return Err(QmpError::generic(format!(
                            "Parameter 'read-only-mode' does not accept value '{other}'"
                        )))
                    }
                }
                a.finish()?;
                let cd = self.cdrom(d, &n)?;
                let medium = self.open_medium(d, ctx.fdsets(), filename, format)?;
                cd.change(medium, force).map_err(|e| media_error(&n, e))?;
                Ok(json!({}))
            }
            "change" => {
                // The pre-2.5 form: {"device", "target", "arg": format}.
                let device = a.str("device")?;
                let target = a.str("target")?;
                let format = a.opt_str("arg")?;
                a.finish()?;
                let d = self
                    .drives
                    .iter()
                    .find(|d| d.attachment.drive_id == device || d.attachment.device_id.as_deref() == Some(device))
                    .ok_or_else(|| QmpError::device_not_found(device))?;
                let cd = self.cdrom(d, device)?;
                let medium = self.open_medium(d, ctx.fdsets(), target, format)?;
                cd.change(medium, false).map_err(|e| media_error(device, e))?;
                Ok(json!({}))
            }
            _ => Err(QmpError::command_not_found(name)),
        }
    }

    fn command_names(&self) -> Vec<&'static str> {
        BLOCK_COMMANDS.to_vec()
    }
}
