//! Time as a device sees it, so that tests and restored machines can control it.

pub trait Clock: Send + Sync {
    /// Monotonic nanoseconds since an arbitrary origin.
    fn monotonic_ns(&self) -> u64;
    /// Wall-clock seconds since the Unix epoch (UTC), for the RTC.
    fn unix_time_s(&self) -> i64;
    /// Wall-clock nanoseconds since the Unix epoch, whose whole seconds are `unix_time_s`: the
    /// RTC schedules its once-a-second update from the sub-second part.
    fn unix_time_ns(&self) -> i128 {
        i128::from(self.unix_time_s()) * 1_000_000_000
    }
}

/// The host's clocks.
#[derive(Debug, Default)]
pub struct HostClock {
    origin: Option<std::time::Instant>,
}

impl HostClock {
    pub fn new() -> Self {
        HostClock { origin: Some(std::time::Instant::now()) }
    }
}

impl Clock for HostClock {
    fn monotonic_ns(&self) -> u64 {
        match self.origin {
            Some(o) => o.elapsed().as_nanos() as u64,
            None => 0,
        }
    }
    fn unix_time_s(&self) -> i64 {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
    }
    fn unix_time_ns(&self) -> i128 {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as i128).unwrap_or(0)
    }
}

/// A clock that only moves when told to; for unit tests.
#[derive(Debug, Default)]
pub struct ManualClock {
    ns: std::sync::atomic::AtomicU64,
    unix_s: std::sync::atomic::AtomicI64,
}

impl ManualClock {
    pub fn new(unix_s: i64) -> Self {
        ManualClock { ns: 0.into(), unix_s: unix_s.into() }
    }
    pub fn advance_ns(&self, ns: u64) {
        let total = self.ns.fetch_add(ns, std::sync::atomic::Ordering::SeqCst) + ns;
        let prev_s = (total - ns) / 1_000_000_000;
        let new_s = total / 1_000_000_000;
        self.unix_s.fetch_add((new_s - prev_s) as i64, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn monotonic_ns(&self) -> u64 {
        self.ns.load(std::sync::atomic::Ordering::SeqCst)
    }
    fn unix_time_s(&self) -> i64 {
        self.unix_s.load(std::sync::atomic::Ordering::SeqCst)
    }
    /// The wall clock's seconds tick whenever the monotonic time crosses a whole second.
    fn unix_time_ns(&self) -> i128 {
        i128::from(self.unix_time_s()) * 1_000_000_000 + i128::from(self.monotonic_ns() % 1_000_000_000)
    }
}
