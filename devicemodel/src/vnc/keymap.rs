//! Keysym to PC scancode: QEMU's keymap files (`-k NAME`, `/usr/share/qemu/keymaps/NAME`,
//! package qemu-system-data) and a built-in en-us table for hosts without them.
//!
//! File format (QEMU `ui/keymaps.c` parse_keyboard_layout): one `KEYSYM-NAME 0xSCAN [flags]` a
//! line, `#` comments; SCAN is QEMU's "qnum" (the set-1 code, with bit 7 set for 0xe0-prefixed
//! keys); flags `shift`, `altgr`, `ctrl` say which modifiers the keysym comes with, `numlock`
//! marks keypad keysyms that need Num Lock on, `addupper` also maps the upper-case keysym with
//! shift. `map` lines are skipped and `include` is refused, as QEMU does. Keysym names are the
//! X11 ones (`keysym_names.rs`), `U+hex` Unicode keysyms (`U20AC`) and `0x...` numbers.

use std::collections::HashMap;

use devices::input::KeyCode;

use super::keysym_names::KEYSYM_NAMES;

/// Where QEMU's packaged keymaps live.
pub const KEYMAP_DIRS: &[&str] = &["/usr/share/qemu/keymaps", "/usr/local/share/qemu/keymaps"];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mapping {
    pub key: KeyCode,
    pub shift: bool,
    pub altgr: bool,
    pub ctrl: bool,
    /// A keypad keysym that needs Num Lock on.
    pub numlock: bool,
}

/// Keysym to scancode candidates, in file order.
#[derive(Clone, Debug, Default)]
pub struct Keymap {
    pub name: String,
    map: HashMap<u32, Vec<Mapping>>,
}

/// A qnum (QEMU's key number: set-1 code, bit 7 = 0xe0 prefix) as our [`KeyCode`]. QEMU numbers
/// Print Screen 0x54 and Pause 0xc6 (`ui/input-keymap` qcode tables); they become the keys the
/// PS/2 keyboard sends for them.
pub fn qnum_to_key(qnum: u32) -> Option<KeyCode> {
    match qnum {
        0x54 => Some(KeyCode(0xe037)),
        0xc6 => Some(KeyCode::PAUSE),
        0x01..=0x7f => Some(KeyCode(qnum as u16)),
        0x81..=0xff => Some(KeyCode(0xe000 | (qnum as u16 & 0x7f))),
        _ => None,
    }
}

/// The keysym a name stands for.
pub fn keysym_by_name(name: &str) -> Option<u32> {
    if let Ok(i) = KEYSYM_NAMES.binary_search_by(|(n, _)| (*n).cmp(name)) {
        return Some(KEYSYM_NAMES[i].1);
    }
    if let Some(hex) = name.strip_prefix("0x") {
        return u32::from_str_radix(hex, 16).ok();
    }
    // Unicode keysyms `Uxxxx`: QEMU (ui/keymaps.c get_keysym) takes the code point itself,
    // and looks keysyms up by their low 16 bits, so 0x010020ac from a client finds U20AC.
    if let Some(hex) = name.strip_prefix('U').filter(|h| h.len() == 4) {
        return u32::from_str_radix(hex, 16).ok().filter(|&cp| cp > 0);
    }
    None
}

/// Latin-1 letters: the upper-case keysym of a lower-case one (for `addupper`).
fn upper(keysym: u32) -> Option<u32> {
    match keysym {
        0x61..=0x7a => Some(keysym - 0x20),
        0xe0..=0xfe if keysym != 0xf7 => Some(keysym - 0x20),
        _ => None,
    }
}

impl Keymap {
    /// Parses a keymap file's text; errors name the line.
    pub fn parse(name: &str, text: &str) -> Result<Keymap, String> {
        let mut km = Keymap { name: name.to_string(), map: HashMap::new() };
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut words = line.split_whitespace();
            let Some(sym_name) = words.next() else { continue };
            match sym_name {
                "map" => continue,
                "include" => {
                    return Err(format!(
                    "keymap {name} line {}: 'include' is not supported (QEMU dropped it too); use a complete keymap",
                    n + 1
                ))
                }
                _ => {}
            }
            let Some(code) = words.next() else {
                return Err(format!("keymap {name} line {}: '{line}' has no scancode", n + 1));
            };
            let qnum = code
                .strip_prefix("0x")
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| code.parse().ok())
                .ok_or_else(|| format!("keymap {name} line {}: '{code}' is not a scancode", n + 1))?;
            let Some(keysym) = keysym_by_name(sym_name) else {
                log::debug!("keymap {name} line {}: unknown keysym '{sym_name}', skipped", n + 1);
                continue;
            };
            let Some(key) = qnum_to_key(qnum) else {
                log::debug!("keymap {name} line {}: scancode {qnum:#x} out of range, skipped", n + 1);
                continue;
            };
            let mut m = Mapping { key, shift: false, altgr: false, ctrl: false, numlock: false };
            let mut add_upper = false;
            for flag in words {
                match flag {
                    "shift" => m.shift = true,
                    "altgr" => m.altgr = true,
                    "ctrl" => m.ctrl = true,
                    "numlock" => m.numlock = true,
                    "addupper" => add_upper = true,
                    // localstate, inhibit: hints QEMU ignores too.
                    _ => {}
                }
            }
            km.add(keysym, m);
            if add_upper {
                if let Some(u) = upper(keysym) {
                    km.add(u, Mapping { shift: true, ..m });
                }
            }
        }
        Ok(km)
    }

    fn add(&mut self, keysym: u32, m: Mapping) {
        let v = self.map.entry(keysym & 0xffff).or_default();
        if !v.contains(&m) {
            v.push(m);
        }
    }

    /// Loads `-k NAME` from QEMU's keymap directory; en-us falls back to the built-in table.
    pub fn load(name: &str) -> Result<Keymap, String> {
        if name.is_empty() || name.contains('/') || name.starts_with('.') {
            return Err(format!("-k {name}: not a keymap name (e.g. en-us, de, fr)"));
        }
        for dir in KEYMAP_DIRS {
            let path = std::path::Path::new(dir).join(name);
            match std::fs::read_to_string(&path) {
                Ok(text) => return Keymap::parse(name, &text),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(format!("-k {name}: {}: {e}", path.display())),
            }
        }
        if name == "en-us" {
            return Ok(Keymap::builtin_en_us());
        }
        Err(format!(
            "-k {name}: no keymap file {name} in {} (install qemu-system-data, or use -k en-us)",
            KEYMAP_DIRS.join(" or ")
        ))
    }

    /// The default keymap: en-us from QEMU's file when installed, else the built-in copy.
    pub fn default_en_us() -> Keymap {
        Keymap::load("en-us").unwrap_or_else(|e| {
            log::warn!("{e}; using the built-in en-us keymap");
            Keymap::builtin_en_us()
        })
    }

    pub fn builtin_en_us() -> Keymap {
        Keymap::parse("en-us (built-in)", BUILTIN_EN_US).expect("the built-in keymap parses")
    }

    /// The candidates for a keysym (by its low 16 bits, as QEMU's vnc.c looks them up).
    pub fn lookup(&self, keysym: u32) -> &[Mapping] {
        self.map.get(&(keysym & 0xffff)).map_or(&[], |v| v.as_slice())
    }

    /// Whether `keysym` is a keypad keysym that needs Num Lock (QEMU keysym_is_numlock).
    pub fn is_numlock_keysym(&self, keysym: u32) -> bool {
        self.lookup(keysym).iter().any(|m| m.numlock)
    }
}

/// Whether `key` is a keypad key whose meaning Num Lock changes (7 8 9 4 5 6 1 2 3 0 and the
/// decimal point; not - and +: QEMU keycode_is_keypad).
pub fn is_keypad(key: KeyCode) -> bool {
    matches!(key.0, 0x47..=0x49 | 0x4b..=0x4d | 0x4f..=0x53)
}

/// The US layout in the keymap file format: written for this project from the PC/AT key
/// positions (set-1 codes) and X11 keysym names, so `-k en-us` and the default work on hosts
/// without qemu-system-data.
const BUILTIN_EN_US: &str = "
Escape 0x01
1 0x02
exclam 0x02 shift
2 0x03
at 0x03 shift
3 0x04
numbersign 0x04 shift
4 0x05
dollar 0x05 shift
5 0x06
percent 0x06 shift
6 0x07
asciicircum 0x07 shift
7 0x08
ampersand 0x08 shift
8 0x09
asterisk 0x09 shift
9 0x0a
parenleft 0x0a shift
0 0x0b
parenright 0x0b shift
minus 0x0c
underscore 0x0c shift
equal 0x0d
plus 0x0d shift
BackSpace 0x0e
Tab 0x0f
ISO_Left_Tab 0x0f shift
q 0x10 addupper
w 0x11 addupper
e 0x12 addupper
r 0x13 addupper
t 0x14 addupper
y 0x15 addupper
u 0x16 addupper
i 0x17 addupper
o 0x18 addupper
p 0x19 addupper
bracketleft 0x1a
braceleft 0x1a shift
bracketright 0x1b
braceright 0x1b shift
Return 0x1c
Control_L 0x1d
a 0x1e addupper
s 0x1f addupper
d 0x20 addupper
f 0x21 addupper
g 0x22 addupper
h 0x23 addupper
j 0x24 addupper
k 0x25 addupper
l 0x26 addupper
semicolon 0x27
colon 0x27 shift
apostrophe 0x28
quotedbl 0x28 shift
grave 0x29
asciitilde 0x29 shift
Shift_L 0x2a
backslash 0x2b
bar 0x2b shift
z 0x2c addupper
x 0x2d addupper
c 0x2e addupper
v 0x2f addupper
b 0x30 addupper
n 0x31 addupper
m 0x32 addupper
comma 0x33
less 0x33 shift
period 0x34
greater 0x34 shift
slash 0x35
question 0x35 shift
Shift_R 0x36
KP_Multiply 0x37
Alt_L 0x38
Meta_L 0x38
space 0x39
Caps_Lock 0x3a
F1 0x3b
F2 0x3c
F3 0x3d
F4 0x3e
F5 0x3f
F6 0x40
F7 0x41
F8 0x42
F9 0x43
F10 0x44
Num_Lock 0x45
Scroll_Lock 0x46
KP_Home 0x47
KP_7 0x47 numlock
KP_Up 0x48
KP_8 0x48 numlock
KP_Prior 0x49
KP_9 0x49 numlock
KP_Subtract 0x4a
KP_Left 0x4b
KP_4 0x4b numlock
KP_Begin 0x4c
KP_5 0x4c numlock
KP_Right 0x4d
KP_6 0x4d numlock
KP_Add 0x4e
KP_End 0x4f
KP_1 0x4f numlock
KP_Down 0x50
KP_2 0x50 numlock
KP_Next 0x51
KP_3 0x51 numlock
KP_Insert 0x52
KP_0 0x52 numlock
KP_Delete 0x53
KP_Decimal 0x53 numlock
Print 0x54
Sys_Req 0x54
F11 0x57
F12 0x58
KP_Enter 0x9c
Control_R 0x9d
KP_Divide 0xb5
Alt_R 0xb8
ISO_Level3_Shift 0xb8
Pause 0xc6
Home 0xc7
Up 0xc8
Prior 0xc9
Left 0xcb
Right 0xcd
End 0xcf
Down 0xd0
Next 0xd1
Insert 0xd2
Delete 0xd3
Super_L 0xdb
Super_R 0xdc
Menu 0xdd
";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_and_the_packaged_en_us_agree_where_both_map() {
        let builtin = Keymap::builtin_en_us();
        assert_eq!(builtin.lookup(0x61)[0].key, KeyCode(0x1e));
        assert_eq!(
            builtin.lookup(0x41),
            &[Mapping { key: KeyCode(0x1e), shift: true, altgr: false, ctrl: false, numlock: false }]
        );
        assert_eq!(builtin.lookup(0xff52)[0].key, KeyCode(0xe048), "Up");
        assert_eq!(builtin.lookup(0xff13)[0].key, KeyCode::PAUSE);
        assert!(builtin.is_numlock_keysym(0xffb7));
        let Ok(text) = std::fs::read_to_string("/usr/share/qemu/keymaps/en-us") else {
            // The host test setup installs qemu-system-data; without it only the built-in is checked.
            return;
        };
        let file = Keymap::parse("en-us", &text).unwrap();
        for (keysym, ms) in &builtin.map {
            let theirs = file.lookup(*keysym);
            if theirs.is_empty() {
                continue;
            }
            for m in ms {
                assert!(theirs.iter().any(|t| t.key == m.key), "keysym {keysym:#x}: {m:?} vs {theirs:?}");
            }
        }
    }

    #[test]
    fn every_packaged_keymap_parses() {
        let Ok(dir) = std::fs::read_dir(KEYMAP_DIRS[0]) else { return };
        for e in dir.flatten() {
            let name = e.file_name().into_string().unwrap();
            let km = Keymap::load(&name).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(km.map.len() > 50, "{name}: {} keysyms", km.map.len());
        }
        let de = Keymap::load("de").unwrap();
        // German: z and y swapped, @ on AltGr+Q.
        assert_eq!(de.lookup(0x7a)[0].key, KeyCode(0x15));
        assert!(de.lookup(0x40).iter().any(|m| m.key == KeyCode(0x10) && m.altgr));
        assert!(de.lookup(0x20ac).is_empty() || de.lookup(0x20ac)[0].altgr, "EuroSign");
    }

    #[test]
    fn bad_files_and_names_are_refused_clearly() {
        assert!(Keymap::parse("x", "include common\n").unwrap_err().contains("include"));
        assert!(Keymap::parse("x", "a zz\n").unwrap_err().contains("'zz'"));
        assert!(Keymap::parse("x", "map 0x409\na 0x1e\n").is_ok());
        assert!(Keymap::load("../../etc/passwd").is_err());
        assert!(Keymap::load("no-such-layout").unwrap_err().contains("qemu-system-data"));
        assert_eq!(keysym_by_name("U20AC"), Some(0x20ac));
        assert_eq!(keysym_by_name("EuroSign"), Some(0x20ac));
        assert_eq!(keysym_by_name("0x010000d7"), Some(0x10000d7));
        assert_eq!(keysym_by_name("nosuchkey"), None);
    }
}
