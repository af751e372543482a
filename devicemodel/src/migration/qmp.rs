//! The migration commands libxl sends (xen-interface.md section 3): `xen-set-global-dirty-log`
//! at the start and end of a save, `xen-save-devices-state` after `stop`, and
//! `xen-load-devices-state` for COLO. Behaviour and error wording follow QEMU 8.2's
//! `migration/savevm.c` (qmp_xen_save_devices_state, qmp_xen_load_devices_state) and
//! `migration/migration.c` (qmp_xen_set_global_dirty_log).

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::sync::{Arc, Mutex};

use serde_json::{json, Map, Value};

use super::dirty::DirtyLog;
use super::MachineDevices;
use crate::qmp::{Args, CommandContext, FdSets, QmpError, QmpHandler, RunState, RunStateCommands};

pub const MIGRATION_COMMANDS: [&str; 3] =
    ["xen-save-devices-state", "xen-load-devices-state", "xen-set-global-dirty-log"];

/// The migration commands over the current machine.
pub struct MigrationCommands {
    runstate: Arc<RunStateCommands>,
    machine: Mutex<Option<MachineDevices>>,
    dirty: Mutex<Option<Arc<dyn DirtyLog>>>,
}

impl MigrationCommands {
    pub fn new(runstate: Arc<RunStateCommands>) -> Self {
        MigrationCommands { runstate, machine: Mutex::new(None), dirty: Mutex::new(None) }
    }

    /// Points the commands at a (re)built machine.
    pub fn attach(&self, devices: MachineDevices) {
        *self.dirty.lock().unwrap() = devices.dirty_log.clone();
        *self.machine.lock().unwrap() = Some(devices);
    }

    fn devices(&self) -> Result<MachineDevices, QmpError> {
        self.machine.lock().unwrap().clone().ok_or_else(|| QmpError::device_not_active("The machine is not built yet"))
    }

    fn open(fdsets: &FdSets, filename: &str, write: bool) -> Result<std::fs::File, QmpError> {
        let file = if FdSets::is_fdset_path(filename) {
            fdsets.open_fdset_path(filename, write).map_err(QmpError::generic)
        } else if write {
            // QEMU: O_WRONLY | O_CREAT | O_TRUNC, mode 0660.
            std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o660)
                .open(filename)
                .map_err(|e| QmpError::generic(format!("Could not open '{filename}': {e}")))
        } else {
            std::fs::File::open(filename).map_err(|e| QmpError::generic(format!("Could not open '{filename}': {e}")))
        }?;
        Ok(file)
    }

    fn save(&self, ctx: &CommandContext<'_>, filename: &str) -> Result<(), QmpError> {
        // libxl sends `stop` first (and Xen has paused the domain); device state taken while
        // vCPUs run would not match the memory image.
        if self.runstate.state() == RunState::Running {
            return Err(QmpError::generic("The VM must be stopped (QMP 'stop') before its device state is saved"));
        }
        let devices = self.devices()?;
        if let Some(d) = self.dirty.lock().unwrap().as_ref() {
            d.before_device_save();
        }
        let stream = super::stream::save_devices(&devices);
        let mut file = Self::open(ctx.fdsets(), filename, true)?;
        file.write_all(&stream).and_then(|_| file.flush()).map_err(|e| {
            log::error!("xen-save-devices-state {filename}: {e}");
            QmpError::generic("An IO error has occurred")
        })?;
        log::info!("saved {} bytes of device state to {filename}", stream.len());
        Ok(())
    }

    fn load(&self, ctx: &CommandContext<'_>, filename: &str) -> Result<(), QmpError> {
        if self.runstate.state() == RunState::Running {
            return Err(QmpError::generic("Cannot update device state while vm is running"));
        }
        let devices = self.devices()?;
        let mut file = Self::open(ctx.fdsets(), filename, false)?;
        super::stream::restore_devices(&devices, &mut file).map_err(|e| {
            log::error!("xen-load-devices-state {filename}: {e}");
            QmpError::generic(format!("Error while loading VM state: {e}"))
        })
    }
}

impl QmpHandler for MigrationCommands {
    fn execute(&self, ctx: &CommandContext<'_>, name: &str, args: &Map<String, Value>) -> Result<Value, QmpError> {
        let mut a = Args::new(args);
        match name {
            "xen-save-devices-state" => {
                let filename = a.str("filename")?;
                // `live` tells QEMU to release image locks for the other side; our images are
                // reopened by the restoring process anyway.
                let _live = a.opt_bool("live")?;
                a.finish()?;
                self.save(ctx, filename)?;
            }
            "xen-load-devices-state" => {
                let filename = a.str("filename")?;
                a.finish()?;
                self.load(ctx, filename)?;
            }
            "xen-set-global-dirty-log" => {
                let enable = a.bool("enable")?;
                a.finish()?;
                let dirty = self.dirty.lock().unwrap().clone();
                match dirty {
                    Some(d) => d.set_dirty_logging(enable).map_err(QmpError::generic)?,
                    None => return Err(QmpError::generic("Dirty page logging is not available for this machine")),
                }
                log::info!("dirty page logging {}", if enable { "on" } else { "off" });
            }
            _ => return Err(QmpError::command_not_found(name)),
        }
        Ok(json!({}))
    }

    fn command_names(&self) -> Vec<&'static str> {
        MIGRATION_COMMANDS.to_vec()
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;
    use crate::qmp::handler::ConnectionFds;
    use crate::qmp::EventSender;

    #[derive(Default)]
    struct FakeDirty(AtomicBool);
    impl DirtyLog for FakeDirty {
        fn set_dirty_logging(&self, on: bool) -> Result<(), String> {
            self.0.store(on, Ordering::SeqCst);
            Ok(())
        }
    }

    fn run(h: &MigrationCommands, name: &str, args: Value) -> Result<Value, QmpError> {
        let fdsets = Arc::new(FdSets::new());
        let events = EventSender::new();
        let fds = RefCell::new(ConnectionFds::default());
        let ctx = CommandContext::new("test", &fdsets, &events, &fds);
        h.execute(&ctx, name, args.as_object().unwrap())
    }

    #[test]
    fn save_needs_a_stopped_vm_and_load_reads_it_back() {
        let hooks = Arc::new(crate::monitor::MachineHooks::new(false));
        let runstate = Arc::new(RunStateCommands::new(RunState::Running, true, hooks, EventSender::new()));
        let h = MigrationCommands::new(runstate.clone());
        let dir = std::env::temp_dir().join(format!("dm-migration-qmp-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("state");
        let path = file.to_str().unwrap();
        let e = run(&h, "xen-save-devices-state", json!({"filename": path})).unwrap_err();
        assert!(e.desc.contains("stopped"), "{}", e.desc);
        runstate.set_state(RunState::Paused);
        let e = run(&h, "xen-save-devices-state", json!({"filename": path, "live": false})).unwrap_err();
        assert!(e.desc.contains("not built"), "no machine yet: {}", e.desc);

        let (machine, dirty) = super::super::stream::tests_support::machine_with_dirty(Arc::new(FakeDirty::default()));
        h.attach(machine.devices.clone());
        run(&h, "xen-save-devices-state", json!({"filename": path, "live": true})).unwrap();
        let saved = std::fs::read(&file).unwrap();
        assert_eq!(saved, super::super::stream::save_devices(&machine.devices));
        run(&h, "xen-load-devices-state", json!({"filename": path})).unwrap();
        std::fs::write(&file, &saved[..saved.len() - 1]).unwrap();
        assert!(run(&h, "xen-load-devices-state", json!({"filename": path})).is_err(), "a truncated file is refused");
        runstate.set_state(RunState::Running);
        let e = run(&h, "xen-load-devices-state", json!({"filename": path})).unwrap_err();
        assert_eq!(e.desc, "Cannot update device state while vm is running");

        run(&h, "xen-set-global-dirty-log", json!({"enable": true})).unwrap();
        assert!(dirty.0.load(Ordering::SeqCst));
        run(&h, "xen-set-global-dirty-log", json!({"enable": false})).unwrap();
        assert!(!dirty.0.load(Ordering::SeqCst));
        assert!(run(&h, "xen-set-global-dirty-log", json!({})).is_err(), "enable is required");
        assert!(run(&h, "migrate", json!({})).unwrap_err().is_command_not_found());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
