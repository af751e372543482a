//! One run of the device model: what outlives a guest reboot (the QMP server, the run state,
//! the drives and their media), and the loop that boots the machine again after a reset.

use std::sync::Arc;

use devices::storage::block::BlockBackend;
use devices::storage::ide::IdeDriveConfig;

use crate::block::{open_attachment, DriveStats};
use crate::cli::{Config, DriveMedia, MachineKind, SerialBackend};
use crate::console::Console;
use crate::event_loop::{EventLoop, FdWatch};
use crate::machine::{self, IdeDrives, StopReason};
use crate::migration::qmp::MigrationCommands;
use crate::monitor::{BlockCommands, MachineHooks};
use crate::pty::Pty;
use crate::qmp::{HandlerChain, QmpServer, QmpShared, RunState, RunStateCommands};
use crate::vnc::{VncOptions, VncServer};

/// One vCPU for query-cpus-fast: one socket, one core and one thread per vCPU.
fn vcpu_info(index: u32, host_thread_id: i64) -> crate::qmp::VcpuInfo {
    crate::qmp::VcpuInfo { cpu_index: index, host_thread_id, socket_id: index, core_id: 0, thread_id: 0 }
}

/// How the device model ends.
#[derive(Debug, PartialEq, Eq)]
pub enum Exit {
    Status(u8),
    Error(String),
}

pub struct Session {
    cfg: Config,
    hooks: Arc<MachineHooks>,
    runstate: Arc<RunStateCommands>,
    block: Arc<BlockCommands>,
    migration: Arc<MigrationCommands>,
    qmp: Option<QmpServer>,
    /// Each IDE position's disk image, or the CD-ROM medium it starts with.
    initial_media: Vec<Option<Arc<dyn BlockBackend>>>,
    /// `-serial pty` ports' ptys, by serial index (they outlive guest reboots).
    ptys: Vec<Option<Arc<Pty>>>,
    /// Turns termination signals into QMP's `quit`. Dropped before the loop.
    _signals: Option<FdWatch>,
    /// Runs every machine's device timers, and the signal watch; outlives guest reboots.
    event_loop: EventLoop,
    /// What VNC and `screendump` show; each machine attaches its displays and input to it.
    console: Console,
    /// `-vnc`: outlives guest reboots (clients stay connected).
    vnc: Option<VncServer>,
}

impl Session {
    /// Opens every image and starts the QMP server; errors name the drive or socket.
    pub fn start(cfg: Config) -> Result<Session, String> {
        for what in &cfg.not_emulated {
            log::warn!("{what}: not emulated yet; the guest runs without it");
        }
        let ptys = cfg
            .serials
            .iter()
            .map(|s| if *s == SerialBackend::Pty { Pty::open().map(Some) } else { Ok(None) })
            .collect::<Result<Vec<_>, _>>()?;
        for (i, p) in ptys.iter().enumerate() {
            if let Some(p) = p {
                // QEMU prints the same line; people and scripts look for it.
                eprintln!("char device redirected to {} (label serial{i})", p.slave_path);
            }
        }
        let shared = QmpShared::new();
        let stats: Vec<Arc<DriveStats>> = cfg.ide.iter().map(|_| Arc::new(DriveStats::default())).collect();
        let initial_media =
            cfg.ide.iter().zip(&stats).map(|(a, s)| open_attachment(a, s)).collect::<Result<Vec<_>, _>>()?;
        let hooks = Arc::new(MachineHooks::new(cfg.start_paused));
        // With -incoming the VM waits for its state; `cont` then only arranges the start.
        let initial = if cfg.incoming_fd.is_some() { RunState::InMigrate } else { RunState::Prelaunch };
        let runstate =
            Arc::new(RunStateCommands::new(initial, !cfg.start_paused, hooks.clone(), shared.events.clone()));
        let migration = Arc::new(MigrationCommands::new(runstate.clone()));
        let block = Arc::new(BlockCommands::new(&cfg.ide, &stats, shared.events.clone()));
        let event_loop = EventLoop::start(Arc::new(devices::clock::HostClock::new()))?;
        let console = Console::new(Arc::new(event_loop.handle()));
        let vnc = match &cfg.vnc {
            Some(v) => {
                let mut options = VncOptions::new(v.clone());
                options.keymap = cfg.keymap.clone();
                options.name = match &cfg.name {
                    Some(n) => format!("QEMU ({n})"),
                    None => "QEMU".into(),
                };
                Some(VncServer::start(options, console.clone(), shared.events.clone())?)
            }
            None => {
                if cfg.keymap.is_some() {
                    log::warn!("-k: no VNC server (-vnc), so the keymap is not used");
                }
                None
            }
        };
        let qmp = if cfg.qmp.is_empty() {
            None
        } else {
            let display = Arc::new(crate::qmp::DisplayCommands::new(console.clone(), vnc.clone()));
            let handler = Arc::new(
                HandlerChain::new().with(runstate.clone()).with(block.clone()).with(migration.clone()).with(display),
            );
            Some(QmpServer::start_with(cfg.qmp.clone(), handler, shared)?)
        };
        let chardevs = cfg
            .serials
            .iter()
            .enumerate()
            .map(|(i, s)| crate::qmp::ChardevInfo {
                label: format!("serial{i}"),
                filename: match s {
                    crate::cli::SerialBackend::Stdio => "stdio".into(),
                    crate::cli::SerialBackend::File { path, .. } => format!("file:{}", path.display()),
                    crate::cli::SerialBackend::Null => "null".into(),
                    crate::cli::SerialBackend::Pty => {
                        format!("pty:{}", ptys[i].as_ref().map(|p| p.slave_path.as_str()).unwrap_or(""))
                    }
                },
                frontend_open: true,
            })
            .collect();
        runstate.set_chardevs(chardevs);
        if cfg.machine == MachineKind::None {
            runstate.set_command_line_options(vec![crate::qmp::CommandLineOption::run_with()]);
        }
        let quit = hooks.clone();
        let signals = crate::signals::watch(&event_loop.handle(), move || {
            log::info!("termination signal: stopping");
            crate::qmp::RunControlHooks::quit(&*quit);
        });
        Ok(Session {
            cfg,
            hooks,
            runstate,
            block,
            migration,
            qmp,
            initial_media,
            ptys,
            _signals: signals,
            event_loop,
            console,
            vnc,
        })
    }

    /// The drives for the next boot: disks as opened, CD-ROMs with whatever medium they hold now.
    fn ide_drives(&self, first_boot: bool) -> IdeDrives {
        let mut drives: IdeDrives = Default::default();
        let current = if first_boot { Vec::new() } else { self.block.current_media() };
        for (a, initial) in self.cfg.ide.iter().zip(&self.initial_media) {
            let mut cfg = match a.media {
                DriveMedia::Disk => IdeDriveConfig::disk(initial.clone().expect("disks always have an image")),
                DriveMedia::Cdrom => {
                    let medium = if first_boot {
                        initial.clone()
                    } else {
                        current.iter().find(|(c, u, _)| *c == a.channel && *u == a.unit).and_then(|(_, _, b)| b.clone())
                    };
                    IdeDriveConfig::cdrom(medium)
                }
            };
            cfg.model = a.model.clone();
            cfg.serial = a.serial.clone();
            drives[a.channel as usize][a.unit as usize] = Some(cfg);
        }
        drives
    }

    /// Runs the machine the command line asked for until the device model should exit.
    pub fn run(self) -> Exit {
        crate::machine::start_serial_inputs(&self.cfg, &self.ptys);
        let exit = match (self.cfg.machine, self.cfg.xen_domid) {
            (MachineKind::None, _) => self.run_monitor_only(),
            (MachineKind::XenFv { .. }, Some(domid)) => self.run_xen(domid),
            // Restoring needs the guest's RAM and vCPUs, which only Xen moves for us.
            _ if self.cfg.incoming_fd.is_some() => Exit::Error(
                "-incoming: restoring a saved guest is supported only on Xen (-machine xenfv with -xen-domid); \
                 KVM guests cannot be migrated or restored yet"
                    .into(),
            ),
            _ => self.run_kvm(),
        };
        if let Some(q) = self.qmp {
            q.shutdown();
        }
        if let Some(v) = &self.vnc {
            v.shutdown();
        }
        exit
    }

    /// `-machine none`: only the monitor, until `quit` or a signal (libxl 4.20's probe).
    fn run_monitor_only(&self) -> Exit {
        self.hooks.wait_for_quit();
        Exit::Status(0)
    }

    /// Serves a Xen HVM guest until libxl ends us (SIGHUP/SIGTERM) or QMP `quit`.
    fn run_xen(&self, domid: u16) -> Exit {
        // Xen runs the vCPUs; like qemu-xen we report the -smp count (libxl compares it with
        // its own online bitmap) with our process as the thread.
        let pid = std::process::id() as i64;
        self.runstate.set_vcpus((0..self.cfg.cpus as u32).map(|i| vcpu_info(i, pid)).collect());
        let runstate = self.runstate.clone();
        let block = self.block.clone();
        let migration = self.migration.clone();
        let start_paused = self.cfg.start_paused;
        let incoming = self.cfg.incoming_fd.is_some();
        let console = self.console.clone();
        let on_built = move |m: &machine::Machine| {
            block.attach(m.ide.clone());
            migration.attach(m.devices.clone());
            console.attach(&m.displays, m.input.clone());
            if incoming {
                // The device state is in: running if `cont` already came (or no -S), else paused.
                runstate.incoming_done();
            } else if !start_paused {
                runstate.started();
            }
        };
        // Serves ioreqs until QMP `quit` or a termination signal (which the loop turns into one).
        let result = crate::xen_machine::run_on_xen(
            &self.cfg,
            Arc::new(self.event_loop.handle()),
            domid,
            self.ide_drives(true),
            &self.ptys,
            &on_built,
            self.hooks.quit_flag(),
        );
        match result {
            Ok(()) => Exit::Status(0),
            Err(e) => Exit::Error(e),
        }
    }

    /// Boots the guest on KVM (again after each reset) until the device model should exit.
    fn run_kvm(&self) -> Exit {
        if self.cfg.start_paused {
            log::info!("-S: the guest waits for a QMP 'cont'");
            if self.qmp.is_none() {
                log::warn!("-S without a QMP monitor: nothing can start the guest");
            }
        }
        let mut first_boot = true;
        let exit = loop {
            let control = self.hooks.new_boot();
            let rs = self.runstate.clone();
            control.set_vcpu_observer(Box::new(move |vcpus| {
                rs.set_vcpus(vcpus.iter().map(|&(i, tid)| vcpu_info(i, tid)).collect());
            }));
            let drives = self.ide_drives(first_boot);
            let runstate = self.runstate.clone();
            let block = self.block.clone();
            let migration = self.migration.clone();
            let started = control.is_running();
            let console = self.console.clone();
            let on_built = move |m: &machine::Machine| {
                block.attach(m.ide.clone());
                migration.attach(m.devices.clone());
                console.attach(&m.displays, m.input.clone());
                if started {
                    runstate.started();
                }
            };
            first_boot = false;
            let timers = Arc::new(self.event_loop.handle());
            let reason = match machine::run_on_kvm(&self.cfg, timers, control, drives, &self.ptys, &on_built) {
                Ok(r) => r,
                Err(e) => break Exit::Error(e.to_string()),
            };
            // Input has nowhere to go until the next machine attaches.
            self.console.detach();
            log::info!("guest stopped: {reason:?}");
            match reason {
                StopReason::PowerOff => {
                    self.runstate.guest_shutdown(self.cfg.no_shutdown);
                    if self.cfg.no_shutdown {
                        log::info!(
                            "guest powered off; -no-shutdown keeps the device model running until 'quit' or a signal"
                        );
                        self.hooks.wait_for_quit();
                    }
                    break Exit::Status(0);
                }
                StopReason::Signal => break Exit::Status(0),
                StopReason::Reset => {
                    self.runstate.guest_reset();
                    if self.cfg.no_reboot {
                        self.runstate.guest_shutdown(false);
                        break Exit::Status(0);
                    }
                    log::info!("guest reset: rebooting");
                }
                // isa-debug-exit semantics: the guest chooses an odd exit status.
                StopReason::DebugExit(code) => break Exit::Status((((code << 1) | 1) & 0xff) as u8),
                StopReason::Error(e) => break Exit::Error(format!("guest stopped: {e}")),
            }
        };
        exit
    }
}
