//! Rate limiting for logs a guest can trigger: a hostile guest must not be able to fill the host's
//! disk or drown the log by poking a register in a loop.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Allows `burst` events per `period_s` seconds; counts the ones it suppresses.
#[derive(Debug)]
pub struct RateLimiter {
    burst: u64,
    period_s: u64,
    window_start: AtomicU64,
    used: AtomicU64,
    suppressed: AtomicU64,
}

impl RateLimiter {
    pub const fn new(burst: u64, period_s: u64) -> Self {
        RateLimiter {
            burst,
            period_s,
            window_start: AtomicU64::new(0),
            used: AtomicU64::new(0),
            suppressed: AtomicU64::new(0),
        }
    }

    fn now_s() -> u64 {
        SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
    }

    /// Whether the caller may log now. When a new window opens, returns how many were suppressed
    /// in the last one through [`RateLimiter::take_suppressed`].
    pub fn allow(&self) -> bool {
        self.allow_at(Self::now_s())
    }

    pub fn allow_at(&self, now_s: u64) -> bool {
        let start = self.window_start.load(Ordering::Relaxed);
        if now_s >= start.saturating_add(self.period_s) {
            self.window_start.store(now_s, Ordering::Relaxed);
            self.used.store(0, Ordering::Relaxed);
        }
        if self.used.fetch_add(1, Ordering::Relaxed) < self.burst {
            true
        } else {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
            false
        }
    }

    pub fn take_suppressed(&self) -> u64 {
        self.suppressed.swap(0, Ordering::Relaxed)
    }
}

/// The log target of guest mistakes (QEMU's `-d guest_errors`).
pub const GUEST_ERRORS_TARGET: &str = "guest_errors";

/// The log target of accesses to hardware we do not emulate (QEMU's `-d unimp`).
pub const UNIMP_TARGET: &str = "unimp";

/// Logs at `info` level, under [`UNIMP_TARGET`], an access to something not emulated; at most 20
/// lines per 5 s per call site (a guest probing ports in a loop must not flood the log).
#[macro_export]
macro_rules! guest_unimp {
    ($($arg:tt)*) => {{
        static LIMIT: $crate::ratelimit::RateLimiter = $crate::ratelimit::RateLimiter::new(20, 5);
        if log::log_enabled!(target: $crate::ratelimit::UNIMP_TARGET, log::Level::Info) && LIMIT.allow() {
            log::info!(target: $crate::ratelimit::UNIMP_TARGET, $($arg)*);
        }
    }};
}

/// Logs at `warn` level, under [`GUEST_ERRORS_TARGET`], what a guest did wrong, at most 10 lines per 5 s per call site.
#[macro_export]
macro_rules! guest_warn {
    ($($arg:tt)*) => {{
        static LIMIT: $crate::ratelimit::RateLimiter = $crate::ratelimit::RateLimiter::new(10, 5);
        if LIMIT.allow() {
            let dropped = LIMIT.take_suppressed();
            if dropped > 0 {
                log::warn!(target: $crate::ratelimit::GUEST_ERRORS_TARGET, "({} similar guest errors suppressed)", dropped);
            }
            log::warn!(target: $crate::ratelimit::GUEST_ERRORS_TARGET, $($arg)*);
        }
    }};
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_suppress_then_new_window() {
        let l = RateLimiter::new(3, 5);
        assert!(l.allow_at(100) && l.allow_at(100) && l.allow_at(101));
        assert!(!l.allow_at(102));
        assert!(!l.allow_at(104));
        assert_eq!(l.take_suppressed(), 2);
        assert!(l.allow_at(105));
    }
}
