//! The console: the one host-side picture of the machine's primary display, kept up to date on
//! a refresh timer while someone watches, and the input path back to the guest.
//!
//! A [`Console`] outlives guest reboots (VNC clients stay connected while KVM boots a new
//! machine); each machine [`Console::attach`]es its displays and input devices when it is built.
//! Viewers (VNC clients) register a [`ConsoleListener`]; while at least one is registered, a
//! periodic timer on the event loop ([`REFRESH_INTERVAL`], QEMU's `GUI_REFRESH_INTERVAL_DEFAULT`
//! is 30 ms too) calls [`Display::refresh`] and hands the tiles that changed to every listener.
//! Without listeners no timer runs, so an idle console costs nothing; a refresh that changed
//! nothing notifies nobody. `screendump` refreshes on demand ([`Console::refresh_now`]).
//!
//! With no display device (`-vga none`, `-nodefaults` without `-device VGA`) the picture is a
//! blank 640x480, as QEMU shows its placeholder surface (`qemu_create_placeholder_surface`,
//! 640x480, in `register_displaychangelistener` when there is no console).

use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};

use devices::display::{DirtyTiles, Framebuffer, SharedDisplay};
use devices::input::{KeyCode, KeyboardInput, PointerInput};
use devices::timer::{Timer, TimerService};

use crate::machine::MachineInput;

/// How often the picture is refreshed while someone watches.
pub const REFRESH_INTERVAL_NS: u64 = 30_000_000;
pub const REFRESH_INTERVAL: std::time::Duration = std::time::Duration::from_nanos(REFRESH_INTERVAL_NS);

/// The size of the picture when the machine has no display.
pub const PLACEHOLDER_SIZE: (u32, u32) = (640, 480);

/// Someone watching the console (a VNC client).
pub trait ConsoleListener: Send + Sync {
    /// Tiles of the picture changed (or, with a new geometry, the picture was resized). Called
    /// on the refresh timer's thread; must not block.
    fn update(&self, dirty: &DirtyTiles);
}

fn lock<T: ?Sized>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

struct Inner {
    display: Mutex<Option<SharedDisplay>>,
    picture: Mutex<Framebuffer>,
    input: Mutex<Option<MachineInput>>,
    listeners: Mutex<Vec<(u64, Weak<dyn ConsoleListener>)>>,
    next_listener: Mutex<u64>,
    timer: Mutex<Option<Box<dyn Timer>>>,
    timers: Arc<dyn TimerService>,
}

/// The console; cheap to clone.
#[derive(Clone)]
pub struct Console {
    inner: Arc<Inner>,
}

/// Keeps a listener registered; dropping it unregisters (and stops the timer with the last one).
pub struct ListenerGuard {
    id: u64,
    console: Weak<Inner>,
}

impl Drop for ListenerGuard {
    fn drop(&mut self) {
        if let Some(inner) = self.console.upgrade() {
            let empty = {
                let mut l = lock(&inner.listeners);
                l.retain(|(id, _)| *id != self.id);
                l.is_empty()
            };
            if empty {
                if let Some(t) = lock(&inner.timer).as_ref() {
                    t.cancel();
                }
            }
        }
    }
}

impl Console {
    /// A console whose refresh timer runs on `timers` (the session's event loop).
    pub fn new(timers: Arc<dyn TimerService>) -> Console {
        let (w, h) = PLACEHOLDER_SIZE;
        let inner = Arc::new(Inner {
            display: Mutex::new(None),
            picture: Mutex::new(Framebuffer::new(w, h)),
            input: Mutex::new(None),
            listeners: Mutex::new(Vec::new()),
            next_listener: Mutex::new(0),
            timer: Mutex::new(None),
            timers,
        });
        let weak = Arc::downgrade(&inner);
        let timer = inner.timers.timer(
            "console-refresh",
            Box::new(move || {
                if let Some(inner) = weak.upgrade() {
                    Console { inner }.refresh_now();
                }
            }),
        );
        *lock(&inner.timer) = Some(timer);
        Console { inner }
    }

    /// A new machine: show its primary display (or the placeholder) and send input to its
    /// devices. Everything is redrawn for the watchers.
    pub fn attach(&self, displays: &[SharedDisplay], input: MachineInput) {
        let primary = displays.first().cloned();
        if let Some(d) = &primary {
            lock(&**d).invalidate();
        }
        *lock(&self.inner.display) = primary.clone();
        *lock(&self.inner.input) = Some(input);
        if primary.is_none() {
            let (w, h) = PLACEHOLDER_SIZE;
            lock(&self.inner.picture).resize(w, h);
        }
        self.refresh_now();
    }

    /// The machine is gone (between KVM boots): keep the last picture, drop input.
    pub fn detach(&self) {
        *lock(&self.inner.input) = None;
    }

    /// The name of the display shown (for logs and QMP), if any.
    pub fn display_name(&self) -> Option<String> {
        lock(&self.inner.display).as_ref().map(|d| lock(&**d).name().to_string())
    }

    /// Brings the picture up to date now and tells the listeners what changed.
    pub fn refresh_now(&self) {
        let display = lock(&self.inner.display).clone();
        let dirty = {
            let mut fb = lock(&self.inner.picture);
            if let Some(d) = display {
                lock(&*d).refresh(&mut fb);
            }
            fb.take_dirty()
        };
        if !dirty.any() {
            return;
        }
        let listeners: Vec<Arc<dyn ConsoleListener>> =
            lock(&self.inner.listeners).iter().filter_map(|(_, l)| l.upgrade()).collect();
        for l in listeners {
            l.update(&dirty);
        }
    }

    /// The picture, for reading (hold it briefly: the refresh timer waits for it).
    pub fn picture(&self) -> MutexGuard<'_, Framebuffer> {
        lock(&self.inner.picture)
    }

    /// Registers a watcher; the refresh timer runs while at least one is registered.
    pub fn add_listener(&self, listener: Weak<dyn ConsoleListener>) -> ListenerGuard {
        let id = {
            let mut n = lock(&self.inner.next_listener);
            *n += 1;
            *n
        };
        let first = {
            let mut l = lock(&self.inner.listeners);
            l.push((id, listener));
            l.len() == 1
        };
        if first {
            // What the device tracked while nobody watched may be stale: redraw once.
            if let Some(d) = lock(&self.inner.display).as_ref() {
                lock(&**d).invalidate();
            }
            let now = self.inner.timers.clock().monotonic_ns();
            if let Some(t) = lock(&self.inner.timer).as_ref() {
                t.arm_periodic(now + REFRESH_INTERVAL_NS, REFRESH_INTERVAL_NS);
            }
        }
        ListenerGuard { id, console: Arc::downgrade(&self.inner) }
    }

    pub fn listeners(&self) -> usize {
        lock(&self.inner.listeners).len()
    }

    /// A key for the guest's keyboard (dropped while no machine is attached).
    pub fn key(&self, key: KeyCode, down: bool) {
        if let Some(i) = lock(&self.inner.input).as_ref() {
            i.keyboard.key(key, down);
        }
    }

    /// The guest's keyboard LEDs (bit 0 scroll, 1 num, 2 caps lock).
    pub fn leds(&self) -> u8 {
        lock(&self.inner.input).as_ref().map_or(0, |i| i.keyboard.leds())
    }

    /// The pointer device, if a machine is attached.
    pub fn pointer(&self) -> Option<Arc<dyn PointerInput>> {
        lock(&self.inner.input).as_ref().map(|i| i.pointer.clone())
    }

    /// The keyboard, if a machine is attached.
    pub fn keyboard(&self) -> Option<Arc<dyn KeyboardInput>> {
        lock(&self.inner.input).as_ref().map(|i| i.keyboard.clone())
    }
}

/// A display that draws a known pattern, for tests of the consoles (and of VNC clients): a
/// colour per 16x16 tile derived from its position, and a frame counter that [`PatternDisplay::step`]
/// advances to change one tile.
pub mod pattern {
    use devices::display::{Display, Framebuffer};

    pub struct PatternDisplay {
        pub width: u32,
        pub height: u32,
        /// Which tile [`PatternDisplay::step`] changed last (its colour is inverted).
        pub frame: u32,
        drawn: bool,
        pub refreshes: u64,
    }

    impl PatternDisplay {
        pub fn new(width: u32, height: u32) -> Self {
            PatternDisplay { width, height, frame: 0, drawn: false, refreshes: 0 }
        }

        /// The pixel at (x, y) for the current frame.
        pub fn pixel(&self, x: u32, y: u32) -> u32 {
            let (tx, ty) = (x / 16, y / 16);
            let base = ((tx * 37) & 0xff) << 16 | ((ty * 53) & 0xff) << 8 | (((tx ^ ty) * 29) & 0xff);
            let tiles_per_row = self.width.div_ceil(16).max(1);
            let changed = self.frame > 0 && (ty * tiles_per_row + tx) == self.frame % (tiles_per_row * 4096);
            // A diagonal line so orientation mistakes show.
            let line = if x == y { 0xffffff } else { base };
            if changed {
                !line & 0xffffff
            } else {
                line
            }
        }

        /// Changes one tile.
        pub fn step(&mut self) {
            self.frame += 1;
            self.drawn = false;
        }

        pub fn resize(&mut self, width: u32, height: u32) {
            self.width = width;
            self.height = height;
            self.drawn = false;
        }
    }

    impl Display for PatternDisplay {
        fn refresh(&mut self, fb: &mut Framebuffer) {
            self.refreshes += 1;
            if fb.width() != self.width || fb.height() != self.height {
                fb.resize(self.width, self.height);
                self.drawn = false;
            }
            if self.drawn {
                return;
            }
            let mut row = vec![0u32; self.width as usize];
            for y in 0..self.height {
                for (x, p) in row.iter_mut().enumerate() {
                    *p = self.pixel(x as u32, y);
                }
                fb.update_row(0, y, &row);
            }
            self.drawn = true;
        }

        fn invalidate(&mut self) {
            self.drawn = false;
        }

        fn name(&self) -> &str {
            "pattern"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::pattern::PatternDisplay;
    use super::*;
    use devices::clock::ManualClock;
    use devices::timer::ManualTimers;

    struct Counter(Mutex<Vec<DirtyTiles>>);
    impl ConsoleListener for Counter {
        fn update(&self, dirty: &DirtyTiles) {
            self.0.lock().unwrap().push(dirty.clone());
        }
    }

    fn input() -> MachineInput {
        struct Nothing;
        impl KeyboardInput for Nothing {
            fn key(&self, _: KeyCode, _: bool) {}
        }
        impl PointerInput for Nothing {
            fn absolute(&self) -> bool {
                false
            }
            fn relative(&self, _: i32, _: i32, _: i32, _: u8) {}
        }
        MachineInput { keyboard: Arc::new(Nothing), pointer: Arc::new(Nothing) }
    }

    #[test]
    fn refreshes_only_while_watched_and_notifies_only_changes() {
        let timers = ManualTimers::new(Arc::new(ManualClock::new(0)));
        let console = Console::new(timers.clone());
        let display = Arc::new(Mutex::new(PatternDisplay::new(64, 48)));
        console.attach(&[display.clone() as SharedDisplay], input());
        let refreshes = display.lock().unwrap().refreshes;
        timers.advance_ns(REFRESH_INTERVAL_NS * 10);
        assert_eq!(display.lock().unwrap().refreshes, refreshes, "no timer without watchers");
        assert_eq!(timers.next_deadline(), None);

        let counter = Arc::new(Counter(Mutex::new(Vec::new())));
        let weak: Weak<dyn ConsoleListener> = Arc::downgrade(&(counter.clone() as Arc<dyn ConsoleListener>));
        let guard = console.add_listener(weak);
        timers.advance_ns(REFRESH_INTERVAL_NS * 6);
        // A listener starts from the whole picture itself; pixels that did not change since the
        // attach are not news.
        assert_eq!(counter.0.lock().unwrap().len(), 0, "nothing changed: nothing sent");
        assert!(display.lock().unwrap().refreshes >= refreshes + 6);
        display.lock().unwrap().step();
        timers.advance_ns(REFRESH_INTERVAL_NS);
        let updates = counter.0.lock().unwrap();
        assert_eq!(updates.len(), 1);
        assert_eq!(updates[0].rects(64, 48), vec![devices::display::Rect::new(16, 0, 16, 16)]);
        drop(updates);
        drop(guard);
        let r = display.lock().unwrap().refreshes;
        timers.advance_ns(REFRESH_INTERVAL_NS * 10);
        assert_eq!(display.lock().unwrap().refreshes, r, "the timer stops with the last watcher");
    }

    #[test]
    fn without_a_display_the_picture_is_a_blank_640x480() {
        let timers = ManualTimers::new(Arc::new(ManualClock::new(0)));
        let console = Console::new(timers);
        console.attach(&[], input());
        let fb = console.picture();
        assert_eq!((fb.width(), fb.height()), PLACEHOLDER_SIZE);
        assert!(fb.pixels().iter().all(|&p| p == 0));
    }
}
