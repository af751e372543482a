//! SIGTERM, SIGINT and SIGHUP end the device model cleanly (libxl sends SIGHUP at teardown).

use std::sync::atomic::{AtomicBool, Ordering};

static TERMINATE: AtomicBool = AtomicBool::new(false);

extern "C" fn on_terminate(_: libc::c_int, _: *mut libc::siginfo_t, _: *mut libc::c_void) {
    // Only an atomic store: async-signal-safe.
    TERMINATE.store(true, Ordering::SeqCst);
}

pub fn install() -> Result<(), String> {
    for sig in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
        vmm_sys_util::signal::register_signal_handler(sig, on_terminate)
            .map_err(|e| format!("cannot install a handler for signal {sig}: {e}"))?;
    }
    Ok(())
}

pub fn termination_requested() -> bool {
    TERMINATE.load(Ordering::SeqCst)
}
