//! Device-state save/restore for Xen (`xen-save-devices-state`, `-incoming fd:N`,
//! `xen-load-devices-state`) and dirty-page logging for live migration.
//!
//! - [`stream`]: the self-delimiting container and [`save_machine`] / [`restore_machine`];
//! - [`qmp`]: the QMP commands libxl uses ([`qmp::MigrationCommands`]);
//! - [`dirty`]: turning dirty logging on and off and harvesting dirty pages.
//!
//! Guest RAM and vCPU state are not ours on Xen: the hypervisor and libxl move them. On restore
//! the device model never populates guest RAM (docs: xen-interface.md sections 3 and 10).

pub mod dirty;
pub mod qmp;
pub mod stream;

use std::sync::Arc;

use devices::bus::IoBus;

pub use stream::restore_machine;
#[allow(unused_imports)]
pub use stream::save_machine;

/// The machine's devices with guest-visible state, as [`crate::machine::Machine`] holds them.
#[derive(Clone)]
pub struct MachineDevices {
    /// The bus: its host bridge latch is saved, and BARs are remapped after a restore.
    pub bus: Arc<IoBus>,
    /// Every device with state, in attach order (the board's, then `-device` ones).
    pub saved: Vec<devices::pc::SavedDevice>,
    /// Where `xen-set-global-dirty-log` goes (Xen: the foreign-memory writer); set by the backend.
    pub dirty_log: Option<Arc<dyn dirty::DirtyLog>>,
}

/// `-incoming fd:N` on Xen: reads the device state libxl saved (its qemu-resume file, opened
/// O_RDONLY and inherited as `fd`) and applies it. Reads exactly the stream, so it works on a
/// stub domain's console, which has no end of file.
pub fn restore_incoming_fd(machine: &crate::machine::Machine, fd: i32) -> Result<(), String> {
    use std::os::fd::FromRawFd;
    if fd < 0 {
        return Err(format!("-incoming fd:{fd}: not a file descriptor"));
    }
    // Check the descriptor is open before taking ownership of it.
    // SAFETY: fcntl(F_GETFD) on an integer only queries the descriptor table.
    if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
        return Err(format!("-incoming fd:{fd}: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: libxl hands this descriptor to us for the restore and nothing else in the process
    // uses it; the File closes it when the restore is done.
    let mut file = unsafe { std::fs::File::from_raw_fd(fd) };
    // Unbuffered: read_exact asks for exactly the bytes the stream still has.
    restore_machine(machine, &mut file).map_err(|e| format!("-incoming fd:{fd}: {e}"))
}
