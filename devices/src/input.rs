//! Host input for emulated input devices: what a console (VNC, later Spice) delivers, and what
//! the PS/2 controller, the USB HID devices and the Xen vkbd backend consume.

/// A key as a PC scancode in set 1 ("XT"), the code QEMU's keymaps and the VNC extended key
/// event carry: `0x01`-`0x7f` for plain keys, `0xe0xx` for keys sent with the 0xe0 prefix.
/// Pause (which has no break code) is `0xe11d` by convention.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyCode(pub u16);

impl KeyCode {
    pub const LEFT_SHIFT: KeyCode = KeyCode(0x2a);
    pub const RIGHT_SHIFT: KeyCode = KeyCode(0x36);
    pub const LEFT_CTRL: KeyCode = KeyCode(0x1d);
    pub const LEFT_ALT: KeyCode = KeyCode(0x38);
    /// AltGr is the right Alt key.
    pub const RIGHT_ALT: KeyCode = KeyCode(0xe038);
    pub const NUM_LOCK: KeyCode = KeyCode(0x45);
    pub const CAPS_LOCK: KeyCode = KeyCode(0x3a);
    /// Pause/Break: no break code; sent as its own make sequence.
    pub const PAUSE: KeyCode = KeyCode(0xe11d);

    /// Whether the key is sent with the 0xe0 prefix.
    pub fn extended(self) -> bool {
        self.0 & 0xff00 == 0xe000
    }

    /// The code byte without the prefix.
    pub fn code(self) -> u8 {
        self.0 as u8
    }
}

/// Pointer buttons, as a bit mask.
pub mod buttons {
    pub const LEFT: u8 = 1 << 0;
    pub const MIDDLE: u8 = 1 << 1;
    pub const RIGHT: u8 = 1 << 2;
}

/// Where key presses go.
pub trait KeyboardInput: Send + Sync {
    /// A key went down or up.
    fn key(&self, key: KeyCode, down: bool);
    /// The keyboard LEDs as the guest set them: bit 0 Scroll Lock, 1 Num Lock, 2 Caps Lock.
    fn leds(&self) -> u8 {
        0
    }
}

/// Where pointer motion goes.
pub trait PointerInput: Send + Sync {
    /// Whether the device takes absolute positions (USB tablet, Xen vkbd in absolute mode).
    fn absolute(&self) -> bool;
    /// Relative motion (`dz` is the wheel, positive = towards the user) with the buttons now held.
    fn relative(&self, dx: i32, dy: i32, dz: i32, buttons: u8);
    /// An absolute position scaled to 0..=0x7fff on each axis, with the buttons now held.
    /// Devices that only take relative motion ignore it.
    fn position(&self, x: u32, y: u32, dz: i32, buttons: u8) {
        let _ = (x, y, dz, buttons);
    }
}
