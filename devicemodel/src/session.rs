//! One run of the device model: what outlives a guest reboot (the QMP server, the run state,
//! the drives and their media), and the loop that boots the machine again after a reset.

use std::sync::Arc;

use devices::storage::block::BlockBackend;
use devices::storage::ide::IdeDriveConfig;

use crate::block::{open_attachment, DriveStats};
use crate::cli::{Config, DriveMedia};
use crate::machine::{self, IdeDrives, StopReason};
use crate::monitor::{BlockCommands, MachineHooks};
use crate::qmp::{HandlerChain, QmpServer, QmpShared, RunState, RunStateCommands};

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
    qmp: Option<QmpServer>,
    /// Each IDE position's disk image, or the CD-ROM medium it starts with.
    initial_media: Vec<Option<Arc<dyn BlockBackend>>>,
}

impl Session {
    /// Opens every image and starts the QMP server; errors name the drive or socket.
    pub fn start(cfg: Config) -> Result<Session, String> {
        let shared = QmpShared::new();
        let stats: Vec<Arc<DriveStats>> = cfg.ide.iter().map(|_| Arc::new(DriveStats::default())).collect();
        let initial_media = cfg.ide.iter().zip(&stats).map(|(a, s)| open_attachment(a, s)).collect::<Result<Vec<_>, _>>()?;
        let hooks = Arc::new(MachineHooks::new(cfg.start_paused));
        let runstate = Arc::new(RunStateCommands::new(RunState::Prelaunch, !cfg.start_paused, hooks.clone(), shared.events.clone()));
        let block = Arc::new(BlockCommands::new(&cfg.ide, &stats, shared.events.clone()));
        let qmp = if cfg.qmp.is_empty() {
            None
        } else {
            let handler = Arc::new(HandlerChain::new().with(runstate.clone()).with(block.clone()));
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
                    crate::cli::SerialBackend::File(p) => format!("file:{}", p.display()),
                    crate::cli::SerialBackend::Null => "null".into(),
                },
                frontend_open: true,
            })
            .collect();
        runstate.set_chardevs(chardevs);
        Ok(Session { cfg, hooks, runstate, block, qmp, initial_media })
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

    /// Boots the guest (again after each reset) until the device model should exit.
    pub fn run(self) -> Exit {
        if self.cfg.start_paused {
            log::info!("-S: the guest waits for a QMP 'cont'");
            if self.qmp.is_none() {
                log::warn!("-S without a QMP monitor: nothing can start the guest");
            }
        }
        let mut first_boot = true;
        let exit = loop {
            let control = self.hooks.new_boot();
            let drives = self.ide_drives(first_boot);
            let runstate = self.runstate.clone();
            let block = self.block.clone();
            let started = control.is_running();
            let on_built = move |m: &machine::Machine| {
                block.attach(m.ide.clone());
                if started {
                    runstate.started();
                }
            };
            first_boot = false;
            let reason = match machine::run_on_kvm(&self.cfg, control, drives, &on_built) {
                Ok(r) => r,
                Err(e) => break Exit::Error(e.to_string()),
            };
            log::info!("guest stopped: {reason:?}");
            match reason {
                StopReason::PowerOff => {
                    self.runstate.guest_shutdown(self.cfg.no_shutdown);
                    if self.cfg.no_shutdown {
                        log::info!("guest powered off; -no-shutdown keeps the device model running until 'quit' or a signal");
                        while !crate::signals::termination_requested() && !self.hooks.quit_requested() {
                            std::thread::sleep(std::time::Duration::from_millis(50));
                        }
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
        if let Some(q) = self.qmp {
            q.shutdown();
        }
        exit
    }
}
