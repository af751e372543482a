//! SIGTERM, SIGINT and SIGHUP end the device model cleanly (libxl sends SIGHUP at teardown).
//!
//! The handler sets a flag and writes to an eventfd that the event loop watches
//! ([`watch`]), so that a signal reaches whoever must stop without anyone polling the flag.
//! signalfd would need the signals blocked in every thread, vCPU threads included, before any
//! of them starts; the handler-plus-eventfd pair works whatever thread the signal lands on.

use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::OnceLock;

use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

use crate::event_loop::{FdWatch, LoopHandle};

static TERMINATE: AtomicBool = AtomicBool::new(false);
/// The wake-up eventfd's descriptor for the handler (-1 until installed). The eventfd itself
/// lives in `WAKEUP` for the rest of the process, so the number never names another file.
static WAKEUP_FD: AtomicI32 = AtomicI32::new(-1);
static WAKEUP: OnceLock<EventFd> = OnceLock::new();

extern "C" fn on_terminate(_: libc::c_int, _: *mut libc::siginfo_t, _: *mut libc::c_void) {
    // Only an atomic store and write(2): both async-signal-safe.
    TERMINATE.store(true, Ordering::SeqCst);
    let fd = WAKEUP_FD.load(Ordering::SeqCst);
    if fd >= 0 {
        let one: u64 = 1;
        // SAFETY: errno is thread-local and `__errno_location` returns this thread's; the handler
        // saves and restores it so that the interrupted code never sees write's errno.
        let saved = unsafe { *libc::__errno_location() };
        // A full counter (EAGAIN) is harmless: the loop has a wake-up pending anyway.
        // SAFETY: `fd` is the eventfd WAKEUP keeps open for the process's life; the buffer is a
        // live u64, the 8 bytes an eventfd write takes.
        unsafe { libc::write(fd, (&one as *const u64).cast(), std::mem::size_of::<u64>()) };
        // SAFETY: as above.
        unsafe { *libc::__errno_location() = saved };
    }
}

pub fn install() -> Result<(), String> {
    let wakeup = EventFd::new(EFD_NONBLOCK).map_err(|e| format!("cannot create the signal eventfd: {e}"))?;
    let wakeup = WAKEUP.get_or_init(|| wakeup);
    WAKEUP_FD.store(std::os::fd::AsRawFd::as_raw_fd(wakeup), Ordering::SeqCst);
    for sig in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
        vmm_sys_util::signal::register_signal_handler(sig, on_terminate)
            .map_err(|e| format!("cannot install a handler for signal {sig}: {e}"))?;
    }
    Ok(())
}

pub fn termination_requested() -> bool {
    TERMINATE.load(Ordering::SeqCst)
}

/// Runs `on_terminate` on the event loop once a termination signal arrived (also one that
/// arrived before the watch). Without [`install`] there is nothing to watch: None.
pub fn watch(handle: &LoopHandle, mut on_terminate: impl FnMut() + Send + 'static) -> Option<FdWatch> {
    let wakeup = WAKEUP.get()?.try_clone().map_err(|e| log::error!("signal eventfd: {e}")).ok()?;
    Some(handle.watch_readable("signals", wakeup, move |w| {
        // Non-blocking: drains the count (several signals wake us once).
        let _ = w.read();
        if termination_requested() {
            on_terminate();
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event_loop::EventLoop;
    use std::sync::{mpsc, Arc};
    use std::time::Duration;

    #[test]
    fn a_termination_signal_runs_the_watch_on_the_loop() {
        install().unwrap();
        let lp = EventLoop::start(Arc::new(devices::clock::HostClock::new())).unwrap();
        let (tx, rx) = mpsc::channel();
        let _watch = watch(&lp.handle(), move || {
            let _ = tx.send(std::thread::current().name().map(String::from));
        })
        .expect("installed");
        assert!(rx.recv_timeout(Duration::from_millis(100)).is_err(), "no signal yet");
        // SAFETY: raise has no memory preconditions; SIGHUP's handler is ours (installed above)
        // and only stores a flag and writes to an eventfd.
        assert_eq!(unsafe { libc::raise(libc::SIGHUP) }, 0);
        let thread = rx.recv_timeout(Duration::from_secs(5)).expect("the watch ran");
        assert_eq!(thread.as_deref(), Some("event-loop"));
        assert!(termination_requested());
    }
}
