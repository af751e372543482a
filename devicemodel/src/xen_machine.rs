//! The machine on Xen (`-machine xenfv`): the same devices as on KVM, wired to Xen's interrupt
//! DMOPs and foreign-mapped guest RAM, served as an ioreq server. Xen runs the vCPUs; libxl
//! owns the domain's life (reboot means a new domain and a new device model).

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, OnceLock};

use devices::storage::ide::IdeHandle;
use devices::timer::TimerService;
use devices::xen_platform::{DiskUnplug, UnplugRequest, XenPlatformHost};

use crate::cli::Config;
use crate::machine::{IdeDrives, Machine, Wiring};
use crate::pty::Pty;
use crate::xen::dmop::DeviceModelOps;
use crate::xen::pv_backends::UnservedBackends;
use crate::xen::XenBackend;

/// The xen-platform device's host side: PV-driver unplug detaches our IDE disks; the ROM lock
/// write-protects 0xc0000-0xfffff in the p2m.
struct PlatformHost {
    ide: OnceLock<IdeHandle>,
    dm: DeviceModelOps,
    /// The qdisk backends libxl wrote that nobody serves: named when the guest unplugs.
    pv_backends: UnservedBackends,
}

impl XenPlatformHost for PlatformHost {
    fn unplug(&self, request: UnplugRequest) {
        if let (Some(disks), Some(ide)) = (request.disks, self.ide.get()) {
            let n = ide.unplug_disks(disks == DiskUnplug::AuxIde);
            log::info!("xen-platform: unplugged {n} emulated IDE disk(s) for the guest's PV drivers");
            if let Some(w) = self.pv_backends.unplug_warning() {
                log::warn!("xen-platform: {w}");
            }
        }
        // No emulated NICs or NVMe disks exist, so those bits have nothing to detach.
    }

    fn set_rom_lock(&self, locked: bool) -> bool {
        crate::xen::set_rom_lock(&self.dm, locked)
    }
}

/// Applies `-chroot` and `-runas` (after every privileged setup step).
fn drop_privileges(cfg: &Config) -> Result<(), String> {
    if let Some(dir) = &cfg.chroot {
        std::os::unix::fs::chroot(dir).map_err(|e| format!("-chroot {}: {e}", dir.display()))?;
        std::env::set_current_dir("/").map_err(|e| format!("-chroot: chdir /: {e}"))?;
    }
    if let Some(user) = &cfg.runas {
        let (uid, gid) = match user.split_once(':') {
            Some((u, g)) => (
                u.parse::<u32>().map_err(|_| format!("-runas {user}: expected USER or UID:GID"))?,
                g.parse::<u32>().map_err(|_| format!("-runas {user}: expected USER or UID:GID"))?,
            ),
            None => lookup_user(user)?,
        };
        // Groups first: once the user id is dropped, groups can no longer be changed.
        // SAFETY: plain syscalls on integers (an empty group list); results are checked.
        let ok = unsafe { libc::setgroups(0, std::ptr::null()) == 0 && libc::setgid(gid) == 0 }
            // SAFETY: a plain syscall on an integer; the result is checked.
            && unsafe { libc::setuid(uid) == 0 };
        if !ok {
            return Err(format!("-runas {user}: {}", std::io::Error::last_os_error()));
        }
    }
    Ok(())
}

/// Resolves a user name through /etc/passwd (no NSS in a static binary).
fn lookup_user(name: &str) -> Result<(u32, u32), String> {
    let passwd = std::fs::read_to_string("/etc/passwd").map_err(|e| format!("-runas {name}: /etc/passwd: {e}"))?;
    passwd
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() >= 4 && f[0] == name).then(|| Some((f[2].parse().ok()?, f[3].parse().ok()?)))?
        })
        .next()
        .ok_or_else(|| format!("-runas {name}: no such user in /etc/passwd (use UID:GID)"))
}

/// Builds the machine for `domid`, serves its ioreqs until `stop` is set, and returns.
/// `on_built` sees the machine before the first ioreq (QMP attaches to its devices there);
/// `timers` runs its devices' timers.
pub fn run_on_xen(
    cfg: &Config,
    timers: Arc<dyn TimerService>,
    domid: u16,
    ide_drives: IdeDrives,
    ptys: &[Option<Arc<Pty>>],
    on_built: &dyn Fn(&Machine),
    stop: &AtomicBool,
) -> Result<(), String> {
    let backend = XenBackend::new(domid)?;
    let mem = backend.guest_memory();
    // libxl wrote the guest's PV backends before starting us; we serve none of them: say which.
    let pv_backends = UnservedBackends::start(backend.xenstore(), domid);
    let host = Arc::new(PlatformHost { ide: OnceLock::new(), dm: backend.dm().clone(), pv_backends });
    let vram = backend.vram_service(cfg.mem_size, cfg.incoming_fd.is_some())?;
    let wiring = Wiring {
        interrupts: backend.interrupts(),
        control: backend.vm_control(),
        timers,
        dma_memory: mem.clone(),
        vram: vram.clone(),
        xen_platform: Some(host.clone()),
        ptys: ptys.to_vec(),
    };
    let mut machine = Machine::build(cfg, wiring, ide_drives).map_err(|e| e.to_string())?;
    machine.devices.dirty_log = Some(Arc::new(crate::xen::vram::XenDirtyLog { memory: mem.clone(), vram }));
    let _ = host.ide.set(machine.ide.clone());
    // Restore (libxl's qemu-resume file): device state only, before the first ioreq; guest RAM
    // is Xen's and is never populated here.
    if let Some(fd) = cfg.incoming_fd {
        crate::migration::restore_incoming_fd(&machine, fd)?;
    }
    crate::machine::connect_serial_inputs(&machine);
    on_built(&machine);
    if cfg.xen_domid_restrict {
        backend.restrict()?;
    }
    // Xen emulates RTC registers 0-13 itself and forwards only NVRAM indices, so our RTC
    // never arms its timer here.
    backend.run_with(machine.bus.clone(), mem, stop, || drop_privileges(cfg))
}
