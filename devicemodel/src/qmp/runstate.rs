//! Run-state commands: query-status, stop, cont, quit, and the queries libxl makes right after
//! spawning the device model (query-chardev, query-cpus-fast, query-command-line-options).
//!
//! The state machine follows QEMU's system/runstate.c and system/cpus.c: `stop` of a VM that is not
//! running changes nothing and emits nothing (do_vm_stop); `cont` of a running VM is a no-op
//! (vm_prepare_start), is refused when the VM needs a reset, and during an incoming migration only
//! arranges for the VM to start when the migration ends (qmp_cont sets autostart). libxl relies on
//! this: it sends `cont` on every HVM unpause, whatever the state.

use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::{json, Map, Value};

use super::args::Args;
use super::error::QmpError;
use super::events::EventSender;
use super::handler::{CommandContext, QmpHandler};

/// QEMU's `RunState` (qapi/run-state.json).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunState {
    Debug,
    InMigrate,
    InternalError,
    IoError,
    Paused,
    PostMigrate,
    Prelaunch,
    FinishMigrate,
    RestoreVm,
    Running,
    SaveVm,
    Shutdown,
    Suspended,
    Watchdog,
    GuestPanicked,
    Colo,
}

impl RunState {
    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Debug => "debug",
            RunState::InMigrate => "inmigrate",
            RunState::InternalError => "internal-error",
            RunState::IoError => "io-error",
            RunState::Paused => "paused",
            RunState::PostMigrate => "postmigrate",
            RunState::Prelaunch => "prelaunch",
            RunState::FinishMigrate => "finish-migrate",
            RunState::RestoreVm => "restore-vm",
            RunState::Running => "running",
            RunState::SaveVm => "save-vm",
            RunState::Shutdown => "shutdown",
            RunState::Suspended => "suspended",
            RunState::Watchdog => "watchdog",
            RunState::GuestPanicked => "guest-panicked",
            RunState::Colo => "colo",
        }
    }

    /// States only a reset leaves (runstate_needs_reset).
    pub fn needs_reset(self) -> bool {
        matches!(self, RunState::InternalError | RunState::Shutdown | RunState::GuestPanicked)
    }
}

/// What the machine does when a client changes the run state. Called on a QMP connection thread
/// while the run-state lock is held (so concurrent stop/cont from two clients are serialised): the
/// hooks must not call back into [`RunStateCommands`].
pub trait RunControlHooks: Send + Sync {
    /// Stop all vCPUs; return once they are stopped (QEMU's pause_all_vcpus), so that a following
    /// `xen-save-devices-state` sees quiescent devices.
    fn pause(&self);
    /// Let the vCPUs run again.
    fn resume(&self);
    /// Ask the machine to exit (the `quit` command). Must not block or exit the process directly:
    /// the reply is still being sent. The machine should call `QmpServer::shutdown`, which flushes
    /// it, before exiting.
    fn quit(&self);
}

/// One vCPU as query-cpus-fast reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VcpuInfo {
    pub cpu_index: u32,
    /// Host thread id running the vCPU (gettid()).
    pub host_thread_id: i64,
    pub socket_id: u32,
    pub core_id: u32,
    pub thread_id: u32,
}

/// One character device as query-chardev reports it. libxl reads `serialN` entries of the form
/// "pty:/dev/pts/X" to publish the console tty in xenstore.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChardevInfo {
    pub label: String,
    pub filename: String,
    pub frontend_open: bool,
}

/// A command-line option as query-command-line-options reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommandLineOption {
    pub option: String,
    /// (parameter name, type: "string" | "boolean" | "number" | "size").
    pub parameters: Vec<(String, String)>,
}

impl CommandLineOption {
    /// `-run-with chroot=DIR,user=USER`: Xen 4.20's probe looks for exactly these two parameters
    /// and, if found, uses -run-with instead of the deprecated -chroot/-runas. Report it only if
    /// the CLI accepts it.
    pub fn run_with() -> Self {
        CommandLineOption {
            option: "run-with".into(),
            parameters: vec![("chroot".into(), "string".into()), ("user".into(), "string".into())],
        }
    }
}

struct Inner {
    state: RunState,
    /// Start the VM when an incoming migration completes (QEMU's `autostart`).
    autostart: bool,
}

/// Implements the run-state commands and owns the run state. Share it (`Arc`) between the QMP
/// handler chain and the machine.
pub struct RunStateCommands {
    inner: Mutex<Inner>,
    hooks: Arc<dyn RunControlHooks>,
    events: EventSender,
    vcpus: Mutex<Vec<VcpuInfo>>,
    chardevs: Mutex<Vec<ChardevInfo>>,
    options: Mutex<Vec<CommandLineOption>>,
}

fn locked<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

pub const RUNSTATE_COMMANDS: &[&str] =
    &["query-status", "stop", "cont", "quit", "query-cpus-fast", "query-chardev", "query-command-line-options"];

impl RunStateCommands {
    /// `initial` is `Prelaunch` with -S, `InMigrate` with -incoming, else `Running` once the
    /// machine starts the vCPUs. `autostart` is false with -S.
    pub fn new(initial: RunState, autostart: bool, hooks: Arc<dyn RunControlHooks>, events: EventSender) -> Self {
        RunStateCommands {
            inner: Mutex::new(Inner { state: initial, autostart }),
            hooks,
            events,
            vcpus: Mutex::new(Vec::new()),
            chardevs: Mutex::new(Vec::new()),
            options: Mutex::new(Vec::new()),
        }
    }

    pub fn state(&self) -> RunState {
        locked(&self.inner).state
    }

    /// Sets the state without hooks or events, for transitions the machine performs itself
    /// (e.g. SaveVm around a snapshot).
    pub fn set_state(&self, state: RunState) {
        locked(&self.inner).state = state;
    }

    pub fn set_vcpus(&self, vcpus: Vec<VcpuInfo>) {
        *locked(&self.vcpus) = vcpus;
    }

    pub fn set_chardevs(&self, chardevs: Vec<ChardevInfo>) {
        *locked(&self.chardevs) = chardevs;
    }

    pub fn set_command_line_options(&self, options: Vec<CommandLineOption>) {
        *locked(&self.options) = options;
    }

    /// The `stop` command: pause a running VM and emit STOP; otherwise nothing (do_vm_stop). During
    /// an incoming migration it only cancels the automatic start.
    pub fn stop(&self) {
        let mut inner = locked(&self.inner);
        match inner.state {
            RunState::InMigrate => inner.autostart = false,
            RunState::Running => {
                self.hooks.pause();
                inner.state = RunState::Paused;
                self.events.send("STOP", Value::Null);
            }
            _ => {}
        }
    }

    /// The `cont` command (qmp_cont).
    pub fn cont(&self) -> Result<(), QmpError> {
        let mut inner = locked(&self.inner);
        match inner.state {
            s if s.needs_reset() => Err(QmpError::generic("Resetting the Virtual Machine is required")),
            RunState::FinishMigrate => Err(QmpError::generic("Migration is not finalized yet")),
            RunState::Suspended | RunState::Running => Ok(()),
            RunState::InMigrate => {
                inner.autostart = true;
                Ok(())
            }
            _ => {
                self.hooks.resume();
                inner.state = RunState::Running;
                self.events.send("RESUME", Value::Null);
                Ok(())
            }
        }
    }

    /// The machine finished loading incoming state: returns the state it must enter. `Running`
    /// (RESUME emitted) if a client asked for `cont` or the VM was started without -S, else
    /// `Paused`. The machine starts the vCPUs itself.
    pub fn incoming_done(&self) -> RunState {
        let mut inner = locked(&self.inner);
        if inner.state != RunState::InMigrate {
            return inner.state;
        }
        inner.state = if inner.autostart { RunState::Running } else { RunState::Paused };
        if inner.state == RunState::Running {
            self.events.send("RESUME", Value::Null);
        }
        inner.state
    }

    /// The machine started the vCPUs for the first time (no -S): Prelaunch -> Running, with the
    /// RESUME event QEMU's vm_start emits.
    pub fn started(&self) {
        let mut inner = locked(&self.inner);
        if inner.state == RunState::Prelaunch {
            inner.state = RunState::Running;
            self.events.send("RESUME", Value::Null);
        }
    }

    /// The guest powered off. Emits SHUTDOWN (guest: true); with -no-shutdown the VM stays in
    /// state `shutdown` and STOP follows, as QEMU's main loop does.
    pub fn guest_shutdown(&self, no_shutdown: bool) {
        let mut inner = locked(&self.inner);
        self.events.send("SHUTDOWN", json!({"guest": true, "reason": "guest-shutdown"}));
        if no_shutdown && inner.state != RunState::Shutdown {
            inner.state = RunState::Shutdown;
            self.events.send("STOP", Value::Null);
        }
    }

    /// The guest reset the machine: RESET (guest: true).
    pub fn guest_reset(&self) {
        let _inner = locked(&self.inner);
        self.events.send("RESET", json!({"guest": true, "reason": "guest-reset"}));
    }

    fn query_status(&self) -> Value {
        let state = self.state();
        // "singlestep" is deprecated in QEMU 8.1 but still present in 8.2.
        json!({"status": state.as_str(), "singlestep": false, "running": state == RunState::Running})
    }

    fn query_cpus_fast(&self) -> Value {
        Value::Array(
            locked(&self.vcpus)
                .iter()
                .map(|v| {
                    json!({
                        "cpu-index": v.cpu_index,
                        "qom-path": format!("/machine/unattached/device[{}]", v.cpu_index),
                        "thread-id": v.host_thread_id,
                        "props": {"core-id": v.core_id, "thread-id": v.thread_id, "socket-id": v.socket_id},
                        "target": "x86_64",
                    })
                })
                .collect(),
        )
    }

    fn query_chardev(&self) -> Value {
        Value::Array(
            locked(&self.chardevs)
                .iter()
                .map(|c| json!({"label": c.label, "filename": c.filename, "frontend-open": c.frontend_open}))
                .collect(),
        )
    }

    fn query_command_line_options(&self, option: Option<&str>) -> Result<Value, QmpError> {
        let options = locked(&self.options);
        let selected: Vec<&CommandLineOption> =
            options.iter().filter(|o| option.is_none() || option == Some(o.option.as_str())).collect();
        if let (Some(name), true) = (option, selected.is_empty()) {
            return Err(QmpError::generic(format!("Invalid option name: {name}")));
        }
        Ok(Value::Array(
            selected
                .iter()
                .map(|o| {
                    let params: Vec<Value> = o.parameters.iter().map(|(n, t)| json!({"name": n, "type": t})).collect();
                    json!({"parameters": params, "option": o.option})
                })
                .collect(),
        ))
    }
}

impl QmpHandler for RunStateCommands {
    fn execute(&self, _ctx: &CommandContext<'_>, name: &str, args: &Map<String, Value>) -> Result<Value, QmpError> {
        let mut a = Args::new(args);
        let result = match name {
            "query-status" => self.query_status(),
            "query-cpus-fast" => self.query_cpus_fast(),
            "query-chardev" => self.query_chardev(),
            "query-command-line-options" => {
                let option = a.opt_str("option")?;
                a.finish()?;
                return self.query_command_line_options(option);
            }
            "stop" => {
                a.finish()?;
                self.stop();
                return Ok(json!({}));
            }
            "cont" => {
                a.finish()?;
                self.cont()?;
                return Ok(json!({}));
            }
            "quit" => {
                a.finish()?;
                self.events.send("SHUTDOWN", json!({"guest": false, "reason": "host-qmp-quit"}));
                self.hooks.quit();
                return Ok(json!({}));
            }
            _ => return Err(QmpError::command_not_found(name)),
        };
        a.finish()?;
        Ok(result)
    }

    fn command_names(&self) -> Vec<&'static str> {
        RUNSTATE_COMMANDS.to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Calls(Mutex<Vec<&'static str>>);
    impl RunControlHooks for Calls {
        fn pause(&self) {
            locked(&self.0).push("pause");
        }
        fn resume(&self) {
            locked(&self.0).push("resume");
        }
        fn quit(&self) {
            locked(&self.0).push("quit");
        }
    }

    #[test]
    fn incoming_migration_starts_only_if_cont_arrived() {
        let hooks = Arc::new(Calls::default());
        let rs = RunStateCommands::new(RunState::InMigrate, true, hooks.clone(), EventSender::new());
        rs.stop(); // libxl-style stop during restore cancels the automatic start
        assert_eq!(rs.state(), RunState::InMigrate);
        assert_eq!(rs.incoming_done(), RunState::Paused);
        rs.cont().unwrap();
        assert_eq!(rs.state(), RunState::Running);

        let rs = RunStateCommands::new(RunState::InMigrate, false, hooks.clone(), EventSender::new());
        rs.cont().unwrap(); // accepted, deferred
        assert_eq!(rs.state(), RunState::InMigrate);
        assert_eq!(rs.incoming_done(), RunState::Running);
        // Only the one real cont of the first VM reached the machine.
        assert_eq!(*locked(&hooks.0), vec!["resume"]);
    }

    #[test]
    fn cont_is_refused_where_qemu_refuses_it() {
        let hooks = Arc::new(Calls::default());
        let rs = RunStateCommands::new(RunState::FinishMigrate, false, hooks.clone(), EventSender::new());
        assert_eq!(rs.cont().unwrap_err().desc, "Migration is not finalized yet");
        rs.set_state(RunState::GuestPanicked);
        assert_eq!(rs.cont().unwrap_err().desc, "Resetting the Virtual Machine is required");
        rs.set_state(RunState::Suspended);
        assert!(rs.cont().is_ok());
        assert_eq!(rs.state(), RunState::Suspended);
        assert!(locked(&hooks.0).is_empty());
    }
}
