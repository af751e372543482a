//! Time-driven and background work for devices: callbacks at a deadline, and wake-ups from
//! other threads.
//!
//! Much of what hardware does happens between the guest's register accesses: an RTC raises its
//! update interrupt every second, an audio controller finishes a period, a NIC receives a frame,
//! a display refreshes. A device asks for that work through a [`TimerService`] it is given at
//! construction; it never learns who runs the callbacks. The device model runs them on one event
//! loop thread (`devicemodel::event_loop`); unit tests run them from [`ManualTimers`], which moves
//! a [`ManualClock`] so that a test decides exactly when time passes.
//!
//! Deadlines are on the service's [`Clock`] (`monotonic_ns`), the same clock the device reads, so
//! a device computes "when" and "what is due now" from one time base.
//!
//! Callbacks run without any lock of the service held, so a callback may lock its device and
//! re-arm timers, and a device may arm or cancel a timer while holding its own lock. The price is
//! that a callback that was already being dispatched can still run once after `cancel` or a
//! re-arm returns: a callback must check its device's state (which it reads from the clock
//! anyway) rather than assume that its firing means its deadline passed.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError, Weak};

use crate::clock::{Clock, ManualClock};

/// What a timer or notifier runs on the service's thread.
pub type Callback = Box<dyn FnMut() + Send>;

/// One timer of a device. Dropping it cancels it for good.
pub trait Timer: Send + Sync {
    /// What a service implements: the next deadline (`None`: disarmed) and the period after it
    /// (0: one-shot), replacing any earlier arming.
    fn program(&self, deadline_ns: Option<u64>, period_ns: u64);

    /// Fires once when the clock reaches `deadline_ns`, replacing any earlier arming. A deadline
    /// already past fires as soon as the service gets to it.
    fn arm_at(&self, deadline_ns: u64) {
        self.program(Some(deadline_ns), 0);
    }
    /// Fires at `first_ns`, then every `period_ns`, until cancelled or re-armed. A service that
    /// falls behind runs the callback once for all the periods it missed (the device derives
    /// how many from the clock), so a slow host never queues a burst of stale callbacks.
    /// A zero period arms a one-shot timer.
    fn arm_periodic(&self, first_ns: u64, period_ns: u64) {
        self.program(Some(first_ns), period_ns);
    }
    /// Disarms the timer; it can be armed again.
    fn cancel(&self) {
        self.program(None, 0);
    }
}

/// Wakes the service's thread to run a callback; callable from any thread (a backend's I/O
/// thread, a vCPU). Notifications that arrive before the callback runs are merged into one.
pub trait Notifier: Send + Sync {
    fn notify(&self);
}

/// Where devices get timers and notifiers.
pub trait TimerService: Send + Sync {
    /// The clock deadlines are measured on; devices that use timers read time from it.
    fn clock(&self) -> Arc<dyn Clock>;
    /// A new, disarmed timer whose expiry runs `on_expiry`. `name` appears in the service's logs.
    fn timer(&self, name: &str, on_expiry: Callback) -> Box<dyn Timer>;
    /// A notifier whose `notify` runs `on_notify`. It stays registered while any clone lives.
    fn notifier(&self, name: &str, on_notify: Callback) -> Arc<dyn Notifier>;
}

/// Builds a shared device that owns one timer whose expiry calls `on_expiry` on the device.
///
/// The callback holds the device only weakly: the device (and with it the timer, which then
/// unregisters) goes away when the machine drops it, whatever the service still holds.
pub fn shared_with_timer<D: Send + 'static>(
    service: &dyn TimerService,
    name: &str,
    make: impl FnOnce(Box<dyn Timer>) -> D,
    on_expiry: fn(&mut D),
) -> Arc<Mutex<D>> {
    Arc::new_cyclic(|device: &Weak<Mutex<D>>| {
        let device = device.clone();
        let timer = service.timer(
            name,
            Box::new(move || {
                if let Some(d) = device.upgrade() {
                    on_expiry(&mut d.lock().unwrap_or_else(PoisonError::into_inner));
                }
            }),
        );
        Mutex::new(make(timer))
    })
}

type SharedCallback = Arc<Mutex<Callback>>;

fn run(callback: &SharedCallback) {
    (callback.lock().unwrap_or_else(PoisonError::into_inner))()
}

#[derive(Default)]
struct ManualState {
    next_id: u64,
    /// id -> (deadline, period, callback)
    timers: BTreeMap<u64, (Option<u64>, u64, SharedCallback)>,
    notifiers: BTreeMap<u64, (bool, SharedCallback)>,
    expirations: u64,
}

/// A [`TimerService`] for unit tests: nothing runs until the test moves time with
/// [`ManualTimers::advance_ns`] or runs notifications with [`ManualTimers::run_notified`].
pub struct ManualTimers {
    clock: Arc<ManualClock>,
    state: Arc<Mutex<ManualState>>,
}

/// A callback that re-arms its timer for a deadline already past, forever, is a device bug;
/// a test that meets one fails instead of hanging.
const MAX_CALLBACKS_PER_ADVANCE: u64 = 10_000_000;

impl ManualTimers {
    pub fn new(clock: Arc<ManualClock>) -> Arc<Self> {
        Arc::new(ManualTimers { clock, state: Arc::default() })
    }

    pub fn manual_clock(&self) -> &Arc<ManualClock> {
        &self.clock
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ManualState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Moves the clock forward by `ns`, running every timer that falls due on the way in deadline
    /// order, each with the clock reading its deadline (as a perfectly punctual host would).
    pub fn advance_ns(&self, ns: u64) {
        let end = self.clock.monotonic_ns().saturating_add(ns);
        for _ in 0..MAX_CALLBACKS_PER_ADVANCE {
            let due = {
                let mut s = self.lock();
                let earliest = s
                    .timers
                    .iter()
                    .filter_map(|(&id, &(deadline, _, _))| deadline.filter(|&d| d <= end).map(|d| (d, id)))
                    .min();
                earliest.map(|(deadline, id)| {
                    let entry = s.timers.get_mut(&id).expect("found above");
                    entry.0 = (entry.1 > 0).then(|| deadline.saturating_add(entry.1));
                    let callback = entry.2.clone();
                    s.expirations += 1;
                    (deadline, callback)
                })
            };
            let Some((deadline, callback)) = due else {
                let now = self.clock.monotonic_ns();
                self.clock.advance_ns(end.saturating_sub(now));
                return;
            };
            let now = self.clock.monotonic_ns();
            self.clock.advance_ns(deadline.saturating_sub(now));
            run(&callback);
        }
        panic!("timers kept firing without time passing: a callback re-arms for the past");
    }

    /// Runs the callback of every notifier notified since the last call.
    pub fn run_notified(&self) {
        let pending: Vec<SharedCallback> = self
            .lock()
            .notifiers
            .values_mut()
            .filter_map(|(pending, cb)| std::mem::take(pending).then(|| cb.clone()))
            .collect();
        for cb in &pending {
            run(cb);
        }
    }

    /// The earliest armed deadline, if any timer is armed.
    pub fn next_deadline(&self) -> Option<u64> {
        self.lock().timers.values().filter_map(|t| t.0).min()
    }

    /// How many timer callbacks have run: the wake-ups a device cost.
    pub fn expirations(&self) -> u64 {
        self.lock().expirations
    }
}

struct ManualTimer {
    id: u64,
    state: Weak<Mutex<ManualState>>,
}

impl Timer for ManualTimer {
    fn program(&self, deadline: Option<u64>, period: u64) {
        if let Some(state) = self.state.upgrade() {
            if let Some(t) = state.lock().unwrap_or_else(PoisonError::into_inner).timers.get_mut(&self.id) {
                t.0 = deadline;
                t.1 = period;
            }
        }
    }
}

impl Drop for ManualTimer {
    fn drop(&mut self) {
        if let Some(state) = self.state.upgrade() {
            state.lock().unwrap_or_else(PoisonError::into_inner).timers.remove(&self.id);
        }
    }
}

struct ManualNotifier {
    id: u64,
    state: Weak<Mutex<ManualState>>,
}

impl Notifier for ManualNotifier {
    fn notify(&self) {
        if let Some(state) = self.state.upgrade() {
            if let Some(n) = state.lock().unwrap_or_else(PoisonError::into_inner).notifiers.get_mut(&self.id) {
                n.0 = true;
            }
        }
    }
}

impl Drop for ManualNotifier {
    fn drop(&mut self) {
        if let Some(state) = self.state.upgrade() {
            state.lock().unwrap_or_else(PoisonError::into_inner).notifiers.remove(&self.id);
        }
    }
}

impl TimerService for ManualTimers {
    fn clock(&self) -> Arc<dyn Clock> {
        self.clock.clone()
    }

    fn timer(&self, _name: &str, on_expiry: Callback) -> Box<dyn Timer> {
        let mut s = self.lock();
        let id = s.next_id;
        s.next_id += 1;
        s.timers.insert(id, (None, 0, Arc::new(Mutex::new(on_expiry))));
        Box::new(ManualTimer { id, state: Arc::downgrade(&self.state) })
    }

    fn notifier(&self, _name: &str, on_notify: Callback) -> Arc<dyn Notifier> {
        let mut s = self.lock();
        let id = s.next_id;
        s.next_id += 1;
        s.notifiers.insert(id, (false, Arc::new(Mutex::new(on_notify))));
        Arc::new(ManualNotifier { id, state: Arc::downgrade(&self.state) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    fn counter() -> (Arc<AtomicU64>, Callback) {
        let n = Arc::new(AtomicU64::new(0));
        let m = n.clone();
        (
            n,
            Box::new(move || {
                m.fetch_add(1, Ordering::SeqCst);
            }),
        )
    }

    #[test]
    fn one_shot_periodic_rearm_and_cancel() {
        let timers = ManualTimers::new(Arc::new(ManualClock::new(0)));
        let (n, cb) = counter();
        let t = timers.timer("t", cb);
        timers.advance_ns(1_000);
        assert_eq!(n.load(Ordering::SeqCst), 0, "a new timer is disarmed");
        t.arm_at(1_500);
        timers.advance_ns(499);
        assert_eq!(n.load(Ordering::SeqCst), 0);
        timers.advance_ns(1);
        assert_eq!(n.load(Ordering::SeqCst), 1, "fires at its deadline");
        timers.advance_ns(10_000);
        assert_eq!(n.load(Ordering::SeqCst), 1, "one-shot");
        let now = timers.clock().monotonic_ns();
        t.arm_periodic(now + 100, 100);
        timers.advance_ns(1_000);
        assert_eq!(n.load(Ordering::SeqCst), 11, "every period");
        t.arm_at(now + 5_000); // re-arming replaces the period
        timers.advance_ns(10_000);
        assert_eq!(n.load(Ordering::SeqCst), 12);
        t.arm_at(timers.clock().monotonic_ns() + 10);
        t.cancel();
        timers.advance_ns(1_000);
        assert_eq!(n.load(Ordering::SeqCst), 12, "cancelled");
        assert_eq!(timers.next_deadline(), None);
        t.arm_at(0);
        drop(t);
        timers.advance_ns(1_000);
        assert_eq!(n.load(Ordering::SeqCst), 12, "a dropped timer never fires");
    }

    #[test]
    fn callbacks_run_in_deadline_order_at_their_deadline() {
        let timers = ManualTimers::new(Arc::new(ManualClock::new(0)));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let mk = |tag: u64| {
            let (s, c) = (seen.clone(), timers.clock());
            timers.timer("t", Box::new(move || s.lock().unwrap().push((tag, c.monotonic_ns()))))
        };
        let (a, b) = (mk(1), mk(2));
        a.arm_at(300);
        b.arm_at(200);
        timers.advance_ns(1_000);
        assert_eq!(*seen.lock().unwrap(), [(2, 200), (1, 300)]);
        assert_eq!(timers.clock().monotonic_ns(), 1_000);
        assert_eq!(timers.expirations(), 2);
    }

    #[test]
    fn notifications_merge_until_run() {
        let timers = ManualTimers::new(Arc::new(ManualClock::new(0)));
        let (n, cb) = counter();
        let notifier = timers.notifier("n", cb);
        let other_thread = notifier.clone();
        std::thread::spawn(move || {
            other_thread.notify();
            other_thread.notify();
        })
        .join()
        .unwrap();
        assert_eq!(n.load(Ordering::SeqCst), 0, "nothing runs before the service does");
        timers.run_notified();
        assert_eq!(n.load(Ordering::SeqCst), 1);
        timers.run_notified();
        assert_eq!(n.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_device_with_a_timer_is_dropped_with_its_machine() {
        struct Dev {
            timer: Box<dyn Timer>,
            fired: u32,
        }
        let timers = ManualTimers::new(Arc::new(ManualClock::new(0)));
        let dev = shared_with_timer(&*timers, "dev", |timer| Dev { timer, fired: 0 }, |d| d.fired += 1);
        dev.lock().unwrap().timer.arm_at(10);
        timers.advance_ns(10);
        assert_eq!(dev.lock().unwrap().fired, 1);
        dev.lock().unwrap().timer.arm_at(20);
        let weak = Arc::downgrade(&dev);
        drop(dev);
        assert!(weak.upgrade().is_none(), "the service does not keep the device alive");
        assert_eq!(timers.next_deadline(), None, "its timer went with it");
    }
}
