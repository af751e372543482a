//! The device model's event loop: one thread that runs devices' timer and notifier callbacks
//! ([`devices::timer::TimerService`]) and the host side's fd-readiness callbacks (signals today;
//! tap devices, audio and display backends later), so that no device needs a thread of its own
//! and no one polls with `sleep`.
//!
//! It is built on rust-vmm's `event-manager` (epoll): one subscriber owns three kinds of
//! sources, told apart by the epoll data word:
//! - a `timerfd` (rustix's, because vmm-sys-util's `TimerFd` cannot be non-blocking) set for the earliest armed deadline of all timers. Timers themselves are
//!   entries in a table; the timerfd is only the wake-up, and what is due is decided from the
//!   devices' [`Clock`], so a re-arm racing with an expiry never loses or invents a deadline;
//! - an `eventfd` "kick": notifiers, new and dropped fd watches, and shutdown;
//! - the fds of [`LoopHandle::watch_readable`] watches.
//!
//! Arming, cancelling and notifying take the table lock only briefly and never wait for the
//! loop, and callbacks run with no loop lock held: a vCPU can arm a device's timer while
//! holding the device's lock, and the device's callback can take that same lock.
//!
//! Bounds, so that one busy source cannot starve the rest: at most [`MAX_CALLBACKS_PER_WAKE`]
//! timer callbacks and as many notifier callbacks per wake-up (the rest run on the next turn,
//! after fd events), at most [`MAX_READY_EVENTS`] fd events per epoll wait, periodic timers
//! that fell behind run once, not once per missed period, and a callback slower than
//! [`SLOW_CALLBACK`] is logged (rate-limited) since it delays every other device.

use std::collections::HashMap;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use devices::clock::Clock;
use devices::timer::{Callback, Notifier, Timer, TimerService};
use event_manager::{EventManager, EventOps, Events, MutEventSubscriber, SubscriberOps};
use rustix::time::{Itimerspec, TimerfdClockId, TimerfdFlags, TimerfdTimerFlags, Timespec};
use vmm_sys_util::epoll::EventSet;
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

/// Timer (and, separately, notifier) callbacks run per wake-up before the loop looks at its
/// fds again.
pub const MAX_CALLBACKS_PER_WAKE: usize = 64;
/// Fd events taken from one epoll wait.
pub const MAX_READY_EVENTS: usize = 32;
/// A callback that takes longer than this is logged.
pub const SLOW_CALLBACK: Duration = Duration::from_millis(20);

const KICK: u32 = 0;
const TIMERFD: u32 = 1;
const FIRST_FD_TOKEN: u32 = 2;

/// Logs an error at most 10 times a minute per call site: a broken fd must not fill the log.
macro_rules! loop_error {
    ($($arg:tt)*) => {{
        static LIMIT: devices::ratelimit::RateLimiter = devices::ratelimit::RateLimiter::new(10, 60);
        if LIMIT.allow() {
            let dropped = LIMIT.take_suppressed();
            if dropped > 0 {
                log::error!("event loop: ({dropped} similar errors suppressed)");
            }
            log::error!($($arg)*);
        }
    }};
}

type SharedCallback = Arc<Mutex<Callback>>;

struct TimerEntry {
    name: String,
    deadline: Option<u64>,
    /// 0: one-shot.
    period: u64,
    callback: SharedCallback,
}

struct NotifierEntry {
    name: String,
    callback: SharedCallback,
}

/// An fd watch, owned by the loop from registration until the loop has removed it from epoll.
struct FdEntry {
    name: String,
    fd: RawFd,
    /// Holds the watched source, so its fd stays open while epoll has it.
    callback: Callback,
}

enum FdChange {
    Add(u32, FdEntry),
    Remove(u32),
}

struct State {
    timerfd: OwnedFd,
    /// The deadline the timerfd is set for.
    programmed: Option<u64>,
    next_id: u64,
    timers: HashMap<u64, TimerEntry>,
    notifiers: HashMap<u64, NotifierEntry>,
    /// Notifiers notified since their callback last ran, in order.
    notified: Vec<u64>,
    next_fd_token: u32,
    fd_changes: Vec<FdChange>,
}

impl State {
    /// Sets the timerfd for the earliest armed deadline (or disarms it), unless it already is.
    fn reprogram(&mut self, clock: &dyn Clock) {
        let earliest = self.timers.values().filter_map(|t| t.deadline).min();
        if earliest == self.programmed {
            return;
        }
        // A zero it_value disarms a timerfd, so a deadline already past waits 1 ns.
        let ns = earliest.map_or(0, |d| d.saturating_sub(clock.monotonic_ns()).max(1));
        let zero = Timespec { tv_sec: 0, tv_nsec: 0 };
        let value = Timespec { tv_sec: (ns / 1_000_000_000) as i64, tv_nsec: (ns % 1_000_000_000) as i64 };
        let spec = Itimerspec { it_interval: zero, it_value: value };
        match rustix::time::timerfd_settime(&self.timerfd, TimerfdTimerFlags::empty(), &spec) {
            Ok(_) => self.programmed = earliest,
            Err(e) => loop_error!("event loop: setting the timerfd: {e}"),
        }
    }
}

struct Shared {
    clock: Arc<dyn Clock>,
    kick: EventFd,
    timerfd_raw: RawFd,
    state: Mutex<State>,
    stopping: AtomicBool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn kick(&self) {
        if let Err(e) = self.kick.write(1) {
            loop_error!("event loop: waking the loop: {e}");
        }
    }
}

/// The loop and its thread; dropping it stops the thread (callbacks then no longer run, while
/// handles stay safe to use).
pub struct EventLoop {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

/// What devices and the host side use to put work on the loop; cheap to clone.
#[derive(Clone)]
pub struct LoopHandle {
    shared: Arc<Shared>,
}

impl EventLoop {
    /// Starts the loop thread; timer deadlines are on `clock`.
    pub fn start(clock: Arc<dyn Clock>) -> Result<EventLoop, String> {
        let kick = EventFd::new(EFD_NONBLOCK).map_err(|e| format!("event loop: eventfd: {e}"))?;
        // Non-blocking: a re-arm between epoll's report and our read resets the expiry count,
        // and a blocking read would then wait for the new deadline (or forever, if cancelled).
        let timerfd =
            rustix::time::timerfd_create(TimerfdClockId::Monotonic, TimerfdFlags::NONBLOCK | TimerfdFlags::CLOEXEC)
                .map_err(|e| format!("event loop: timerfd: {e}"))?;
        let timerfd_raw = timerfd.as_raw_fd();
        let shared = Arc::new(Shared {
            clock,
            kick,
            timerfd_raw,
            state: Mutex::new(State {
                timerfd,
                programmed: None,
                next_id: 0,
                timers: HashMap::new(),
                notifiers: HashMap::new(),
                notified: Vec::new(),
                next_fd_token: FIRST_FD_TOKEN,
                fd_changes: Vec::new(),
            }),
            stopping: AtomicBool::new(false),
        });
        let mut manager: EventManager<Dispatcher> =
            EventManager::new_with_capacity(MAX_READY_EVENTS).map_err(|e| format!("event loop: epoll: {e:?}"))?;
        manager.add_subscriber(Dispatcher { shared: shared.clone(), fds: HashMap::new() });
        let s = shared.clone();
        let thread = std::thread::Builder::new()
            .name("event-loop".into())
            .spawn(move || run(manager, &s))
            .map_err(|e| format!("cannot start the event loop thread: {e}"))?;
        Ok(EventLoop { shared, thread: Some(thread) })
    }

    pub fn handle(&self) -> LoopHandle {
        LoopHandle { shared: self.shared.clone() }
    }
}

impl Drop for EventLoop {
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        self.shared.kick();
        if let Some(t) = self.thread.take() {
            if t.join().is_err() {
                log::error!("event loop: the loop thread panicked");
            }
        }
    }
}

fn run(mut manager: EventManager<Dispatcher>, shared: &Shared) {
    let mut failures = 0u32;
    while !shared.stopping.load(Ordering::SeqCst) {
        match manager.run() {
            Ok(_) => failures = 0,
            Err(e) => {
                // epoll_wait fails only on a broken epoll fd; retrying a few times covers a
                // transient failure, and a loop that cannot wait has nothing left to do.
                failures += 1;
                loop_error!("event loop: epoll_wait: {e:?}");
                if failures >= 100 {
                    log::error!("event loop: giving up after {failures} failed waits; device timers stop");
                    return;
                }
            }
        }
    }
}

/// Runs one callback, timing it, and keeps the loop alive if it panics (a bug in one device
/// must not stop every other device's timers).
fn run_callback(kind: &str, name: &str, callback: &mut Callback) {
    let start = Instant::now();
    if catch_unwind(AssertUnwindSafe(callback)).is_err() {
        loop_error!("event loop: the {kind} callback of {name} panicked");
    }
    let took = start.elapsed();
    if took > SLOW_CALLBACK {
        loop_error!("event loop: the {kind} callback of {name} took {} ms", took.as_millis());
    }
}

fn run_shared(kind: &str, name: &str, callback: &SharedCallback) {
    run_callback(kind, name, &mut callback.lock().unwrap_or_else(PoisonError::into_inner));
}

struct Dispatcher {
    shared: Arc<Shared>,
    fds: HashMap<u32, FdEntry>,
}

impl Dispatcher {
    fn on_kick(&mut self, ops: &mut EventOps) {
        // Non-blocking: nothing to read when a previous turn already took the count.
        let _ = self.shared.kick.read();
        let (changes, notified) = {
            let mut st = self.shared.lock();
            let n = st.notified.len().min(MAX_CALLBACKS_PER_WAKE);
            let notified: Vec<u64> = st.notified.drain(..n).collect();
            let notified: Vec<(String, SharedCallback)> = notified
                .into_iter()
                .filter_map(|id| st.notifiers.get(&id).map(|n| (n.name.clone(), n.callback.clone())))
                .collect();
            if !st.notified.is_empty() {
                // More than one turn's worth: come back after the fds had their turn.
                self.shared.kick();
            }
            (std::mem::take(&mut st.fd_changes), notified)
        };
        for change in changes {
            match change {
                FdChange::Add(token, entry) => match ops.add(Events::with_data_raw(entry.fd, token, EventSet::IN)) {
                    Ok(()) => {
                        self.fds.insert(token, entry);
                    }
                    Err(e) => loop_error!("event loop: watching {}: {e:?}", entry.name),
                },
                FdChange::Remove(token) => {
                    if let Some(entry) = self.fds.remove(&token) {
                        if let Err(e) = ops.remove(Events::with_data_raw(entry.fd, token, EventSet::IN)) {
                            loop_error!("event loop: unwatching {}: {e:?}", entry.name);
                        }
                    }
                }
            }
        }
        for (name, callback) in &notified {
            run_shared("notifier", name, callback);
        }
    }

    fn on_timerfd(&mut self) {
        let due: Vec<(String, SharedCallback)> = {
            let mut st = self.shared.lock();
            // Only the wake-up; what is due comes from the clock. EAGAIN: a re-arm reset it.
            let _ = rustix::io::read(&st.timerfd, &mut [0u8; 8]);
            st.programmed = None;
            let now = self.shared.clock.monotonic_ns();
            let mut ready: Vec<(u64, u64)> =
                st.timers.iter().filter_map(|(&id, t)| t.deadline.filter(|&d| d <= now).map(|d| (d, id))).collect();
            ready.sort_unstable();
            ready.truncate(MAX_CALLBACKS_PER_WAKE);
            let due = ready
                .into_iter()
                .filter_map(|(deadline, id)| {
                    let t = st.timers.get_mut(&id)?;
                    // A periodic timer's next deadline is the first period boundary after now:
                    // missed periods are merged into this one callback.
                    t.deadline = (t.period > 0)
                        .then(|| deadline.saturating_add(t.period.saturating_mul((now - deadline) / t.period + 1)));
                    Some((t.name.clone(), t.callback.clone()))
                })
                .collect();
            // Whatever is still due (beyond this turn's bound) fires again at once.
            st.reprogram(&*self.shared.clock);
            due
        };
        for (name, callback) in &due {
            run_shared("timer", name, callback);
        }
    }
}

impl MutEventSubscriber for Dispatcher {
    fn init(&mut self, ops: &mut EventOps) {
        for (fd, token, what) in
            [(self.shared.kick.as_raw_fd(), KICK, "eventfd"), (self.shared.timerfd_raw, TIMERFD, "timerfd")]
        {
            if let Err(e) = ops.add(Events::with_data_raw(fd, token, EventSet::IN)) {
                log::error!("event loop: watching its {what}: {e:?}");
            }
        }
    }

    fn process(&mut self, events: Events, ops: &mut EventOps) {
        match events.data() {
            KICK => self.on_kick(ops),
            TIMERFD => self.on_timerfd(),
            token => match self.fds.get_mut(&token) {
                Some(entry) => run_callback("fd", &entry.name, &mut entry.callback),
                None => loop_error!("event loop: an event for unknown watch {token}"),
            },
        }
    }
}

/// A timer on the loop; dropping it removes it.
struct LoopTimer {
    id: u64,
    shared: Weak<Shared>,
}

impl Timer for LoopTimer {
    fn program(&self, deadline: Option<u64>, period: u64) {
        let Some(shared) = self.shared.upgrade() else { return };
        let mut st = shared.lock();
        if let Some(t) = st.timers.get_mut(&self.id) {
            t.deadline = deadline;
            t.period = period;
        }
        st.reprogram(&*shared.clock);
    }
}

impl Drop for LoopTimer {
    fn drop(&mut self) {
        if let Some(shared) = self.shared.upgrade() {
            let mut st = shared.lock();
            st.timers.remove(&self.id);
            st.reprogram(&*shared.clock);
        }
    }
}

struct LoopNotifier {
    id: u64,
    shared: Weak<Shared>,
}

impl Notifier for LoopNotifier {
    fn notify(&self) {
        let Some(shared) = self.shared.upgrade() else { return };
        let mut st = shared.lock();
        if !st.notified.contains(&self.id) {
            st.notified.push(self.id);
            drop(st);
            shared.kick();
        }
    }
}

impl Drop for LoopNotifier {
    fn drop(&mut self) {
        if let Some(shared) = self.shared.upgrade() {
            let mut st = shared.lock();
            st.notifiers.remove(&self.id);
            st.notified.retain(|&id| id != self.id);
        }
    }
}

/// An fd watch; dropping it stops the watch (the loop closes the source soon after).
pub struct FdWatch {
    token: u32,
    shared: Weak<Shared>,
}

impl Drop for FdWatch {
    fn drop(&mut self) {
        if let Some(shared) = self.shared.upgrade() {
            shared.lock().fd_changes.push(FdChange::Remove(self.token));
            shared.kick();
        }
    }
}

impl LoopHandle {
    /// Runs `on_readable` on the loop whenever `source` is readable (level-triggered: once per
    /// turn until it drains what is there). The loop owns `source` until the watch is dropped.
    pub fn watch_readable<S: AsRawFd + Send + 'static>(
        &self,
        name: &str,
        mut source: S,
        mut on_readable: impl FnMut(&mut S) + Send + 'static,
    ) -> FdWatch {
        let fd = source.as_raw_fd();
        let entry = FdEntry { name: name.to_string(), fd, callback: Box::new(move || on_readable(&mut source)) };
        let token = {
            let mut st = self.shared.lock();
            let token = st.next_fd_token;
            st.next_fd_token = st.next_fd_token.checked_add(1).unwrap_or(FIRST_FD_TOKEN);
            st.fd_changes.push(FdChange::Add(token, entry));
            token
        };
        self.shared.kick();
        FdWatch { token, shared: Arc::downgrade(&self.shared) }
    }

    fn next_id(st: &mut State) -> u64 {
        st.next_id += 1;
        st.next_id
    }
}

impl TimerService for LoopHandle {
    fn clock(&self) -> Arc<dyn Clock> {
        self.shared.clock.clone()
    }

    fn timer(&self, name: &str, on_expiry: Callback) -> Box<dyn Timer> {
        let mut st = self.shared.lock();
        let id = Self::next_id(&mut st);
        let entry =
            TimerEntry { name: name.to_string(), deadline: None, period: 0, callback: Arc::new(Mutex::new(on_expiry)) };
        st.timers.insert(id, entry);
        Box::new(LoopTimer { id, shared: Arc::downgrade(&self.shared) })
    }

    fn notifier(&self, name: &str, on_notify: Callback) -> Arc<dyn Notifier> {
        let mut st = self.shared.lock();
        let id = Self::next_id(&mut st);
        st.notifiers.insert(id, NotifierEntry { name: name.to_string(), callback: Arc::new(Mutex::new(on_notify)) });
        Arc::new(LoopNotifier { id, shared: Arc::downgrade(&self.shared) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use devices::clock::HostClock;
    use std::sync::mpsc;

    fn start() -> EventLoop {
        EventLoop::start(Arc::new(HostClock::new())).unwrap()
    }

    /// A callback that reports the loop clock's time each time it runs.
    fn reporter(handle: &LoopHandle) -> (mpsc::Receiver<u64>, Callback) {
        let (tx, rx) = mpsc::channel();
        let clock = handle.clock();
        (
            rx,
            Box::new(move || {
                let _ = tx.send(clock.monotonic_ns());
            }),
        )
    }

    const WAIT: Duration = Duration::from_secs(5);

    #[test]
    fn a_timer_fires_at_its_deadline_on_the_loop_thread() {
        let lp = start();
        let h = lp.handle();
        let (tx, rx) = mpsc::channel();
        let clock = h.clock();
        let timer = h.timer(
            "t",
            Box::new(move || {
                let _ = tx.send((clock.monotonic_ns(), std::thread::current().name().map(String::from)));
            }),
        );
        let deadline = h.clock().monotonic_ns() + 20_000_000;
        timer.arm_at(deadline);
        let (at, thread) = rx.recv_timeout(WAIT).expect("the timer fired");
        assert!(at >= deadline, "fired {} ns early", deadline - at);
        assert_eq!(thread.as_deref(), Some("event-loop"));
        assert!(rx.recv_timeout(Duration::from_millis(100)).is_err(), "one-shot");
    }

    #[test]
    fn periodic_rearm_and_cancel() {
        let lp = start();
        let h = lp.handle();
        let (rx, cb) = reporter(&h);
        let timer = h.timer("p", cb);
        let now = h.clock().monotonic_ns();
        timer.arm_periodic(now + 5_000_000, 5_000_000);
        for _ in 0..5 {
            rx.recv_timeout(WAIT).expect("a period");
        }
        timer.cancel();
        // A callback already being dispatched may still arrive; after that, silence.
        std::thread::sleep(Duration::from_millis(20));
        while rx.try_recv().is_ok() {}
        assert!(rx.recv_timeout(Duration::from_millis(100)).is_err(), "cancelled");
        // Re-arming a far deadline, then a near one: the near one wins.
        let now = h.clock().monotonic_ns();
        timer.arm_at(now + 60_000_000_000);
        timer.arm_at(now + 1_000_000);
        rx.recv_timeout(WAIT).expect("re-armed");
        // A deadline in the past fires at once.
        timer.arm_at(0);
        rx.recv_timeout(WAIT).expect("past deadline");
        drop(timer);
    }

    #[test]
    fn the_earliest_of_many_timers_goes_first_and_dropped_ones_never_fire() {
        let lp = start();
        let h = lp.handle();
        let (tx, rx) = mpsc::channel();
        let now = h.clock().monotonic_ns();
        let timers: Vec<Box<dyn Timer>> = (0..10u64)
            .map(|i| {
                let tx = tx.clone();
                let t = h.timer(
                    "m",
                    Box::new(move || {
                        let _ = tx.send(i);
                    }),
                );
                t.arm_at(now + (10 - i) * 2_000_000);
                t
            })
            .collect();
        let mut timers = timers;
        timers.truncate(5); // drops timers 5..9, the ones due first
        let order: Vec<u64> = (0..5).map(|_| rx.recv_timeout(WAIT).unwrap()).collect();
        assert_eq!(order, [4, 3, 2, 1, 0]);
        assert!(rx.recv_timeout(Duration::from_millis(50)).is_err());
    }

    #[test]
    fn a_callback_can_rearm_its_own_timer_and_lock_what_a_vcpu_holds() {
        // The RTC pattern: the device owns its timer, the callback locks the device and re-arms.
        struct Dev {
            timer: Option<Box<dyn Timer>>,
            fired: u32,
        }
        let lp = start();
        let h = lp.handle();
        let dev = devices::timer::shared_with_timer(
            &h,
            "dev",
            |t| Dev { timer: Some(t), fired: 0 },
            |d| {
                d.fired += 1;
                if d.fired < 3 {
                    if let Some(t) = &d.timer {
                        t.arm_at(0);
                    }
                }
            },
        );
        {
            // Arming while holding the device's lock must not deadlock with the callback.
            let d = dev.lock().unwrap();
            d.timer.as_ref().unwrap().arm_at(0);
            std::thread::sleep(Duration::from_millis(20));
        }
        let t0 = Instant::now();
        while dev.lock().unwrap().fired < 3 && t0.elapsed() < WAIT {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(dev.lock().unwrap().fired, 3);
    }

    #[test]
    fn notifications_from_another_thread_run_on_the_loop_merged() {
        let lp = start();
        let h = lp.handle();
        let (tx, rx) = mpsc::channel();
        let gate = Arc::new(Mutex::new(()));
        let g = gate.clone();
        let notifier = h.notifier(
            "n",
            Box::new(move || {
                let _held = g.lock().unwrap();
                let _ = tx.send(());
            }),
        );
        {
            // While the first callback is blocked, further notifications merge into one more run.
            let _hold = gate.lock().unwrap();
            notifier.notify();
            std::thread::sleep(Duration::from_millis(20));
            let n = notifier.clone();
            std::thread::spawn(move || (0..100).for_each(|_| n.notify())).join().unwrap();
        }
        rx.recv_timeout(WAIT).unwrap();
        rx.recv_timeout(WAIT).unwrap();
        assert!(rx.recv_timeout(Duration::from_millis(100)).is_err(), "101 notifications, 2 runs");
    }

    #[test]
    fn fd_readiness_runs_the_watch_until_dropped() {
        let lp = start();
        let h = lp.handle();
        let (tx, rx) = mpsc::channel();
        let efd = EventFd::new(EFD_NONBLOCK).unwrap();
        let writer = efd.try_clone().unwrap();
        let watch = h.watch_readable("efd", efd, move |e| {
            if let Ok(v) = e.read() {
                let _ = tx.send(v);
            }
        });
        writer.write(3).unwrap();
        assert_eq!(rx.recv_timeout(WAIT).unwrap(), 3);
        drop(watch);
        std::thread::sleep(Duration::from_millis(50));
        writer.write(1).unwrap();
        assert!(rx.recv_timeout(Duration::from_millis(100)).is_err(), "unwatched");
    }

    #[test]
    fn a_panicking_callback_does_not_stop_the_loop_and_shutdown_joins() {
        let lp = start();
        let h = lp.handle();
        let bad = h.timer("bad", Box::new(|| panic!("device bug")));
        bad.arm_at(0);
        let (rx, cb) = reporter(&h);
        let good = h.timer("good", cb);
        good.arm_at(h.clock().monotonic_ns() + 10_000_000);
        rx.recv_timeout(WAIT).expect("the loop survived");
        drop(lp);
        // Handles outlive the loop harmlessly.
        good.arm_at(0);
        drop(good);
        drop(bad);
    }

    #[test]
    fn an_idle_loop_does_not_wake() {
        let lp = start();
        let h = lp.handle();
        let _idle = h.timer("idle", Box::new(|| {}));
        // The loop thread's voluntary context switches over a quiet interval: a polling loop
        // would switch every tick.
        let tid = {
            let (tx, rx) = mpsc::channel();
            let n = h.notifier(
                "tid",
                Box::new(move || {
                    let _ = tx.send(rustix::thread::gettid().as_raw_nonzero().get());
                }),
            );
            n.notify();
            rx.recv_timeout(WAIT).unwrap()
        };
        let switches = || -> u64 {
            let s = std::fs::read_to_string(format!("/proc/self/task/{tid}/status")).unwrap();
            s.lines().find_map(|l| l.strip_prefix("voluntary_ctxt_switches:")).unwrap().trim().parse().unwrap()
        };
        // Let the loop go back to sleep after the notifier ran.
        std::thread::sleep(Duration::from_millis(50));
        let before = switches();
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(switches(), before, "the loop woke while nothing was due");
    }
}
