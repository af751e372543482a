//! VNC key and pointer events to the guest's keyboard and pointer, as QEMU's ui/vnc.c does it:
//!
//! - Keys: without `-k`, the scancode of a QEMU ExtKeyEvent is used as is; otherwise (plain
//!   KeyEvent, or always with `-k`) the keysym goes through the keymap. Among several
//!   candidates for a keysym, a key press picks the one whose shift/AltGr/Ctrl flags match the
//!   modifiers held now and a release picks one that is down (ui/keymaps.c keysym2scancode).
//!   Upper-case letters are looked up as lower case (the client's Shift is already down).
//! - Lock-key fix-ups (QEMU's `lock_key_sync`): before a keypad key, Num Lock is toggled when its
//!   state disagrees with what the keysym needs; before a letter, Caps Lock is toggled when the
//!   case the client meant differs from what Shift and Caps Lock would give. The lock states are
//!   the ones our own key presses left (QEMU's `qkbd_state` modifiers), not the guest's LEDs:
//!   a guest sets its LEDs some time after it saw the key, so deciding on the LEDs toggles Caps
//!   Lock twice when letters arrive faster than that ("HeLlO" for "Hello").
//! - Pointer: to a relative device, positions become deltas from the last position, or
//!   x - 0x7fff when the client speaks PointerTypeChange (it then sends relative motion around
//!   0x7fff); buttons 4/5 (bits 3/4) are wheel steps on press. To an absolute device, positions
//!   scale to 0..=0x7fff.
//! - When a client goes away, keys it still held are released.

use std::collections::BTreeSet;
use std::sync::{Mutex, PoisonError};

use devices::input::{buttons, KeyCode};

use super::keymap::{is_keypad, qnum_to_key, Keymap, Mapping};
use crate::console::Console;

/// Keys held at once that we track (a client cannot grow the set beyond this).
const MAX_HELD: usize = 64;

#[derive(Default)]
struct Held {
    keys: BTreeSet<KeyCode>,
    /// Lock states as our presses toggled them (both off at start, as QEMU's).
    caps_lock: bool,
    num_lock: bool,
}

impl Held {
    fn shift(&self) -> bool {
        self.keys.contains(&KeyCode::LEFT_SHIFT) || self.keys.contains(&KeyCode::RIGHT_SHIFT)
    }
    fn altgr(&self) -> bool {
        self.keys.contains(&KeyCode::RIGHT_ALT)
    }
    fn ctrl(&self) -> bool {
        self.keys.contains(&KeyCode::LEFT_CTRL) || self.keys.contains(&KeyCode(0xe01d))
    }
}

/// Routes one VNC server's input to the console (shared by its clients, like QEMU's
/// per-display keyboard state).
pub struct InputRouter {
    console: Console,
    keymap: Keymap,
    /// `-k` was given: always map keysyms.
    forced_keymap: bool,
    held: Mutex<Held>,
}

/// One client's pointer state.
#[derive(Default)]
pub struct PointerState {
    last: Option<(u16, u16)>,
    mask: u8,
    pub type_change: bool,
}

impl InputRouter {
    pub fn new(console: Console, keymap: Keymap, forced_keymap: bool) -> Self {
        InputRouter { console, keymap, forced_keymap, held: Mutex::new(Held::default()) }
    }

    fn send(&self, held: &mut Held, key: KeyCode, down: bool) {
        if down {
            // A lock key toggles on its press (auto-repeat presses included, as on a PC).
            if key == KeyCode::CAPS_LOCK {
                held.caps_lock = !held.caps_lock;
            } else if key == KeyCode::NUM_LOCK {
                held.num_lock = !held.num_lock;
            }
            if held.keys.len() < MAX_HELD {
                held.keys.insert(key);
            }
        } else {
            held.keys.remove(&key);
        }
        self.console.key(key, down);
    }

    fn tap(&self, held: &mut Held, key: KeyCode) {
        self.send(held, key, true);
        self.send(held, key, false);
    }

    /// A key event: `qnum` is the ExtKeyEvent scancode, if the client sent one.
    pub fn key(&self, down: bool, keysym: u32, qnum: Option<u32>) {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        let from_scancode = qnum.filter(|&q| q != 0 && !self.forced_keymap).and_then(qnum_to_key);
        let lookup_sym = if (0x41..=0x5a).contains(&keysym) { keysym + 0x20 } else { keysym };
        let key = match from_scancode {
            Some(k) => k,
            None => {
                let candidates = self.keymap.lookup(lookup_sym);
                let pick = |m: &&Mapping| {
                    if down {
                        (m.shift, m.altgr, m.ctrl) == (held.shift(), held.altgr(), held.ctrl())
                    } else {
                        held.keys.contains(&m.key)
                    }
                };
                match candidates.iter().find(pick).or(candidates.first()) {
                    Some(m) => m.key,
                    None => {
                        log::debug!("vnc: no key for keysym {keysym:#x} in keymap {}", self.keymap.name);
                        return;
                    }
                }
            }
        };
        if down {
            if is_keypad(key) {
                let wants_numlock = self.keymap.is_numlock_keysym(keysym);
                if wants_numlock != held.num_lock {
                    self.tap(&mut held, KeyCode::NUM_LOCK);
                }
            }
            if u8::try_from(keysym).is_ok_and(|c| c.is_ascii_alphabetic()) {
                let uppercase = (0x41..=0x5a).contains(&keysym);
                if (uppercase != held.shift()) != held.caps_lock {
                    self.tap(&mut held, KeyCode::CAPS_LOCK);
                }
            }
        }
        self.send(&mut held, key, down);
    }

    /// A pointer event at (`x`, `y`) with VNC button `mask`, on a `size` picture.
    pub fn pointer(&self, st: &mut PointerState, mask: u8, x: u16, y: u16, size: (u32, u32)) {
        let Some(dev) = self.console.pointer() else { return };
        let pressed = mask & !st.mask;
        st.mask = mask;
        let mut dz = 0;
        if pressed & 0x08 != 0 {
            dz -= 1; // wheel up: away from the user
        }
        if pressed & 0x10 != 0 {
            dz += 1;
        }
        let held = mask & (buttons::LEFT | buttons::MIDDLE | buttons::RIGHT);
        if dev.absolute() {
            let scale =
                |v: u16, n: u32| (u64::from(v) * 0x7fff / u64::from(n.saturating_sub(1).max(1))).min(0x7fff) as u32;
            dev.position(scale(x, size.0), scale(y, size.1), dz, held);
            return;
        }
        let (dx, dy) = if st.type_change {
            (i32::from(x) - 0x7fff, i32::from(y) - 0x7fff)
        } else {
            let d = st.last.map_or((0, 0), |(lx, ly)| (i32::from(x) - i32::from(lx), i32::from(y) - i32::from(ly)));
            st.last = Some((x, y));
            d
        };
        dev.relative(dx, dy, dz, held);
    }

    /// Releases what a departing client left pressed.
    pub fn release_all(&self) {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        let keys: Vec<KeyCode> = held.keys.iter().copied().collect();
        for k in keys {
            self.send(&mut held, k, false);
        }
    }
}
