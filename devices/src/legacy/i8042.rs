//! The 8042 PS/2 controller with an AT keyboard behind it: data port 0x60, status/command 0x64.
//!
//! References: IBM PC/AT Technical Reference (keyboard controller), the "8042" command set as
//! documented by QEMU `hw/input/pckbd.c` and Linux `drivers/input/serio/i8042.h`. A PS/2 mouse
//! ([`super::ps2_mouse`]) is plugged into the auxiliary port: bytes sent with 0xd4 go to it and
//! its replies and motion packets come back with the status register's aux bit set, on IRQ 12.
//!
//! Host input: [`I8042::key`] turns a set-1 [`KeyCode`] into the bytes the guest reads (set 1
//! while the command byte's translate bit is set, as BIOSes and Linux leave it; the keyboard's
//! own set 2 otherwise), [`I8042::mouse_motion`] feeds the mouse. [`Ps2Input`] implements the
//! console-facing [`KeyboardInput`] and [`PointerInput`] traits on the shared controller.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use crate::bus::BusDevice;
use crate::input::{KeyCode, KeyboardInput, PointerInput};
use crate::interrupt::InterruptLine;
use crate::vm_control::{VmControl, VmRequest};

use super::ps2_mouse::Ps2Mouse;
use super::{read_bytes, write_bytes};

pub const DATA_PORT: u64 = crate::pc::layout::port::I8042_DATA.0 as u64;
pub const COMMAND_PORT: u64 = crate::pc::layout::port::I8042_COMMAND.0 as u64;
/// ISA IRQ of the keyboard and of the auxiliary (mouse) port.
pub const KEYBOARD_IRQ: u32 = crate::pc::layout::irq::KEYBOARD as u32;
pub const AUX_IRQ: u32 = crate::pc::layout::irq::MOUSE as u32;

// Status register (read at 0x64).
const STS_OBF: u8 = 1 << 0; // output buffer full
const STS_SYS: u8 = 1 << 2; // system flag (set after a successful self-test)
const STS_A2: u8 = 1 << 3; // last write was to the command port
const STS_UNLOCKED: u8 = 1 << 4; // keyboard not inhibited by the key lock
const STS_AUX_OBF: u8 = 1 << 5; // the byte in the output buffer came from the aux port
const STS_TIMEOUT: u8 = 1 << 6;

// Command byte ("controller configuration byte", RAM location 0).
const CTR_KBD_INT: u8 = 1 << 0;
const CTR_AUX_INT: u8 = 1 << 1;
const CTR_SYS: u8 = 1 << 2;
const CTR_KBD_DISABLE: u8 = 1 << 4;
const CTR_AUX_DISABLE: u8 = 1 << 5;
const CTR_TRANSLATE: u8 = 1 << 6;

// Output port (0xd0/0xd1).
const OUT_RESET: u8 = 1 << 0; // 0 = hold the CPU in reset
const OUT_A20: u8 = 1 << 1;
const OUT_KBD_OBF: u8 = 1 << 4;
const OUT_AUX_OBF: u8 = 1 << 5;

// Keyboard replies.
const KBD_ACK: u8 = 0xfa;
const KBD_RESEND: u8 = 0xfe;
const KBD_BAT_OK: u8 = 0xaa;
const KBD_ECHO: u8 = 0xee;

/// Controller replies and keyboard replies are small; a guest cannot queue more than this many.
const MAX_REPLIES: usize = 16;
/// Host-injected scancodes waiting for the guest.
const MAX_SCANCODES: usize = 256;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Source {
    Controller,
    Keyboard,
    /// From the aux port; `timeout` marks "no device answered".
    Aux {
        timeout: bool,
    },
}

/// What the next byte written to port 0x60 is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum DataTarget {
    Keyboard,
    /// A controller command that takes an argument (0x60-0x7f, 0xd1-0xd4).
    ControllerArg(u8),
}

/// A keyboard command waiting for its argument byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum KeyboardArg {
    Leds,
    ScancodeSet,
    Typematic,
}

pub struct I8042 {
    /// The 32 bytes of controller RAM; byte 0 is the command byte.
    ram: [u8; 32],
    status_sys: bool,
    last_write_was_command: bool,
    output_port: u8,
    /// The output buffer (what port 0x60 reads) and where its byte came from.
    output: Option<(u8, Source)>,
    last_output: u8,
    replies: VecDeque<(u8, Source)>,
    data_target: DataTarget,
    // Keyboard state.
    keyboard_arg: Option<KeyboardArg>,
    scanning: bool,
    scancode_set: u8,
    leds: u8,
    scancodes: VecDeque<u8>,
    mouse: Ps2Mouse,
    kbd_irq: Arc<dyn InterruptLine>,
    aux_irq: Arc<dyn InterruptLine>,
    vm: Arc<dyn VmControl>,
}

impl I8042 {
    /// `kbd_irq` is ISA IRQ 1, `aux_irq` ISA IRQ 12 (Linux checks that the aux loopback raises
    /// it); `vm` receives reset requests (command 0xfe, output port bit 0).
    pub fn new(kbd_irq: Arc<dyn InterruptLine>, aux_irq: Arc<dyn InterruptLine>, vm: Arc<dyn VmControl>) -> Self {
        let mut dev = I8042 {
            ram: [0; 32],
            status_sys: false,
            last_write_was_command: false,
            output_port: 0,
            output: None,
            last_output: 0,
            replies: VecDeque::new(),
            data_target: DataTarget::Keyboard,
            keyboard_arg: None,
            scanning: true,
            scancode_set: 2,
            leds: 0,
            scancodes: VecDeque::new(),
            mouse: Ps2Mouse::new(),
            kbd_irq,
            aux_irq,
            vm,
        };
        dev.reset();
        dev
    }

    /// Power-on state, for a machine reset. Queued host scancodes are dropped.
    pub fn reset(&mut self) {
        self.ram = [0; 32];
        // Interrupts on, translation on: the state firmware leaves it in.
        self.ram[0] = CTR_KBD_INT | CTR_AUX_INT | CTR_TRANSLATE;
        self.status_sys = false;
        self.last_write_was_command = false;
        self.output_port = OUT_RESET | OUT_A20;
        self.output = None;
        self.replies.clear();
        self.data_target = DataTarget::Keyboard;
        self.reset_keyboard();
        self.scancodes.clear();
        self.mouse.reset();
    }

    fn reset_keyboard(&mut self) {
        self.keyboard_arg = None;
        self.scanning = true;
        self.scancode_set = 2;
        self.leds = 0;
    }

    /// Queues scancodes from the host keyboard (bytes exactly as the guest reads them from port
    /// 0x60, i.e. set 1 when the command byte's translate bit is set, as BIOSes and Linux leave
    /// it). Returns how many were accepted; the queue holds `MAX_SCANCODES` bytes.
    pub fn push_scancodes(&mut self, codes: &[u8]) -> usize {
        let room = MAX_SCANCODES.saturating_sub(self.scancodes.len());
        let n = codes.len().min(room);
        self.scancodes.extend(&codes[..n]);
        self.refill();
        n
    }

    /// A host key went down or up: queues its make or break code in the set the guest reads
    /// (see the module comment). Codes that do not fit the queue are dropped, as a full
    /// keyboard buffer drops keys.
    pub fn key(&mut self, key: KeyCode, down: bool) {
        let mut bytes = [0u8; 8];
        let n = if self.ctr() & CTR_TRANSLATE != 0 || self.scancode_set == 1 {
            set1_bytes(key, down, &mut bytes)
        } else {
            set2_bytes(key, down, &mut bytes)
        };
        // All or nothing: half a sequence would confuse the guest's decoder.
        if n > 0 && self.scancodes.len() + n <= MAX_SCANCODES {
            self.push_scancodes(&bytes[..n]);
        }
    }

    /// Relative motion for the PS/2 mouse: `dx` right, `dy` down, `dz` wheel towards the user,
    /// with the buttons held (`crate::input::buttons`).
    pub fn mouse_motion(&mut self, dx: i32, dy: i32, dz: i32, buttons: u8) {
        self.mouse.motion(dx, dy, dz, buttons);
        self.refill();
    }

    /// The keyboard LEDs the guest last set (bit 0 scroll, 1 num, 2 caps lock).
    pub fn leds(&self) -> u8 {
        self.leds
    }

    /// Whether the guest has enabled A20 through the output port.
    pub fn a20_enabled(&self) -> bool {
        self.output_port & OUT_A20 != 0
    }

    fn ctr(&self) -> u8 {
        self.ram[0]
    }

    fn status(&self) -> u8 {
        let mut s = STS_UNLOCKED;
        if self.status_sys {
            s |= STS_SYS;
        }
        if self.last_write_was_command {
            s |= STS_A2;
        }
        match self.output {
            Some((_, Source::Aux { timeout })) => {
                s |= STS_OBF | STS_AUX_OBF;
                if timeout {
                    s |= STS_TIMEOUT;
                }
            }
            Some(_) => s |= STS_OBF,
            None => {}
        }
        s
    }

    fn reply(&mut self, byte: u8, source: Source) {
        if self.replies.len() < MAX_REPLIES {
            self.replies.push_back((byte, source));
        }
        self.refill();
    }

    /// Moves the next byte into an empty output buffer and raises its interrupt. Keyboard bytes
    /// wait while the keyboard interface is disabled (command byte bit 4); host scancodes also
    /// wait while the keyboard has scanning disabled (0xf5).
    fn refill(&mut self) {
        if self.output.is_some() {
            return;
        }
        let kbd_enabled = self.ctr() & CTR_KBD_DISABLE == 0;
        let aux_enabled = self.ctr() & CTR_AUX_DISABLE == 0;
        let next = match self.replies.front() {
            Some(&(_, Source::Keyboard)) if !kbd_enabled => None,
            Some(_) => self.replies.pop_front(),
            None if kbd_enabled && self.scanning && !self.scancodes.is_empty() => {
                self.scancodes.pop_front().map(|b| (b, Source::Keyboard))
            }
            None => None,
        };
        // The mouse's bytes wait while the aux interface is disabled (command byte bit 5).
        let next = match next {
            None if aux_enabled => self.mouse.pop().map(|b| (b, Source::Aux { timeout: false })),
            other => other,
        };
        if let Some(entry) = next {
            self.output = Some(entry);
            self.raise_irq();
        }
    }

    /// The controller drives IRQ 1 (keyboard) or IRQ 12 (aux) while its output buffer is full and
    /// the matching command byte bit is set; ISA IRQs are edges, so we pulse when that starts.
    fn raise_irq(&self) {
        match self.output {
            Some((_, Source::Aux { .. })) if self.ctr() & CTR_AUX_INT != 0 => self.aux_irq.pulse(),
            Some((_, Source::Aux { .. })) => {}
            Some(_) if self.ctr() & CTR_KBD_INT != 0 => self.kbd_irq.pulse(),
            _ => {}
        }
    }

    fn read_data(&mut self) -> u8 {
        if let Some((byte, _)) = self.output.take() {
            self.last_output = byte;
        }
        self.refill();
        // An empty buffer reads its stale contents, as the hardware does.
        self.last_output
    }

    fn write_command(&mut self, cmd: u8) {
        self.last_write_was_command = true;
        self.data_target = DataTarget::Keyboard;
        match cmd {
            // Read controller RAM (0x20 = command byte).
            0x20..=0x3f => self.reply(self.ram[(cmd & 0x1f) as usize], Source::Controller),
            // Write controller RAM: the argument follows on port 0x60.
            0x60..=0x7f | 0xd1..=0xd4 => self.data_target = DataTarget::ControllerArg(cmd),
            0xa7 => self.ram[0] |= CTR_AUX_DISABLE,
            0xa8 => {
                self.ram[0] &= !CTR_AUX_DISABLE;
                self.refill();
            }
            // Aux interface test: 0x00 = no error.
            0xa9 => self.reply(0x00, Source::Controller),
            // Controller self-test: 0x55 = passed; sets the system flag.
            0xaa => {
                self.status_sys = true;
                self.reply(0x55, Source::Controller);
            }
            // Keyboard interface test: 0x00 = no error.
            0xab => self.reply(0x00, Source::Controller),
            0xad => self.ram[0] |= CTR_KBD_DISABLE,
            0xae => {
                self.ram[0] &= !CTR_KBD_DISABLE;
                self.refill();
            }
            // Read input port: bit 7 = keyboard not inhibited.
            0xc0 => self.reply(0x80, Source::Controller),
            0xd0 => {
                let mut port = self.output_port & !(OUT_KBD_OBF | OUT_AUX_OBF);
                match self.output {
                    Some((_, Source::Aux { .. })) => port |= OUT_AUX_OBF,
                    Some(_) => port |= OUT_KBD_OBF,
                    None => {}
                }
                self.reply(port, Source::Controller)
            }
            // HP-style A20 gate commands.
            0xdd => self.output_port &= !OUT_A20,
            0xdf => self.output_port |= OUT_A20,
            // Read test inputs.
            0xe0 => self.reply(0x00, Source::Controller),
            // Pulse output lines: bits 3:0 clear select the lines to pulse; line 0 is CPU reset.
            0xf0..=0xff => {
                if cmd & 0x01 == 0 {
                    log::info!("guest requested a reset through the i8042 (command {cmd:#x})");
                    self.vm.request(VmRequest::Reset);
                }
            }
            _ => crate::guest_warn!("i8042: unsupported controller command {cmd:#x}"),
        }
    }

    fn write_data(&mut self, value: u8) {
        self.last_write_was_command = false;
        match std::mem::replace(&mut self.data_target, DataTarget::Keyboard) {
            DataTarget::ControllerArg(cmd) => self.controller_arg(cmd, value),
            DataTarget::Keyboard => {
                // Sending to the keyboard re-enables its interface (QEMU does the same).
                self.ram[0] &= !CTR_KBD_DISABLE;
                self.keyboard_byte(value);
                self.refill();
            }
        }
    }

    fn controller_arg(&mut self, cmd: u8, value: u8) {
        match cmd {
            0x60 => {
                let enabled = value & !self.ram[0] & (CTR_KBD_INT | CTR_AUX_INT);
                self.ram[0] = value;
                self.status_sys = value & CTR_SYS != 0;
                // Enabling the interrupt of a byte that is already waiting raises its line now.
                let pending = match self.output {
                    Some((_, Source::Aux { .. })) => CTR_AUX_INT,
                    Some(_) => CTR_KBD_INT,
                    None => 0,
                };
                if enabled & pending != 0 {
                    self.raise_irq();
                }
                self.refill();
            }
            0x61..=0x7f => self.ram[(cmd & 0x1f) as usize] = value,
            0xd1 => {
                self.output_port = value;
                if value & OUT_RESET == 0 {
                    log::info!("guest requested a reset through the i8042 output port");
                    self.vm.request(VmRequest::Reset);
                }
            }
            // Write keyboard / aux output buffer: the byte comes back as if the device sent it.
            0xd2 => self.reply(value, Source::Controller),
            0xd3 => self.reply(value, Source::Aux { timeout: false }),
            // Write to the aux device: the mouse answers through its own queue.
            0xd4 => {
                self.mouse.write(value);
                self.refill();
            }
            _ => {}
        }
    }

    fn keyboard_reply(&mut self, bytes: &[u8]) {
        for &b in bytes {
            if self.replies.len() < MAX_REPLIES {
                self.replies.push_back((b, Source::Keyboard));
            }
        }
    }

    /// A byte for the keyboard (IBM PS/2 keyboard command set).
    fn keyboard_byte(&mut self, value: u8) {
        if let Some(arg) = self.keyboard_arg.take() {
            match arg {
                KeyboardArg::Leds => self.leds = value & 0x07,
                KeyboardArg::Typematic => {}
                KeyboardArg::ScancodeSet => {
                    if value == 0 {
                        // Query: ACK, then the current set.
                        self.keyboard_reply(&[KBD_ACK, self.scancode_set]);
                        return;
                    }
                    if matches!(value, 1..=3) {
                        self.scancode_set = value;
                    }
                }
            }
            self.keyboard_reply(&[KBD_ACK]);
            return;
        }
        match value {
            0xed => self.await_keyboard_arg(KeyboardArg::Leds),
            0xee => self.keyboard_reply(&[KBD_ECHO]),
            0xf0 => self.await_keyboard_arg(KeyboardArg::ScancodeSet),
            0xf2 => {
                // Identify: an MF2 keyboard is 0xab 0x83; through the controller's set 2 -> set 1
                // translation the second byte reads 0x41 (what QEMU and real hardware return).
                let id = if self.ctr() & CTR_TRANSLATE != 0 { 0x41 } else { 0x83 };
                self.keyboard_reply(&[KBD_ACK, 0xab, id]);
            }
            0xf3 => self.await_keyboard_arg(KeyboardArg::Typematic),
            0xf4 => {
                self.scanning = true;
                self.keyboard_reply(&[KBD_ACK]);
            }
            // Disable (scanning off, defaults restored) / set defaults.
            0xf5 | 0xf6 => {
                let scanning = value == 0xf6 && self.scanning;
                self.reset_keyboard();
                self.scanning = scanning;
                self.keyboard_reply(&[KBD_ACK]);
            }
            0xf7..=0xfd => self.keyboard_reply(&[KBD_ACK]),
            0xfe => {
                let last = self.last_output;
                self.keyboard_reply(&[last]);
            }
            0xff => {
                self.reset_keyboard();
                self.scancodes.clear();
                self.keyboard_reply(&[KBD_ACK, KBD_BAT_OK]);
            }
            _ => self.keyboard_reply(&[KBD_RESEND]),
        }
    }

    fn await_keyboard_arg(&mut self, arg: KeyboardArg) {
        self.keyboard_arg = Some(arg);
        self.keyboard_reply(&[KBD_ACK]);
    }
}

impl BusDevice for I8042 {
    fn read(&mut self, addr: u64, data: &mut [u8]) {
        read_bytes(addr, data, |a| match a {
            DATA_PORT => self.read_data(),
            COMMAND_PORT => self.status(),
            _ => 0xff,
        });
    }

    fn write(&mut self, addr: u64, data: &[u8]) {
        write_bytes(addr, data, |a, v| match a {
            DATA_PORT => self.write_data(v),
            COMMAND_PORT => self.write_command(v),
            _ => {}
        });
    }
}

fn source_code(s: Source) -> u8 {
    match s {
        Source::Controller => 0,
        Source::Keyboard => 1,
        Source::Aux { timeout: false } => 2,
        Source::Aux { timeout: true } => 3,
    }
}

fn read_source(r: &mut crate::snapshot::StateReader<'_>, field: &str) -> Result<Source, crate::snapshot::StateError> {
    Ok(match r.u8(field)? {
        0 => Source::Controller,
        1 => Source::Keyboard,
        2 => Source::Aux { timeout: false },
        3 => Source::Aux { timeout: true },
        v => return Err(r.invalid(field, format!("{v} is not a byte source"))),
    })
}

impl crate::snapshot::Snapshot for I8042 {
    const ID: &'static str = "i8042";
    /// 2: the PS/2 mouse's state follows the keyboard's.
    const VERSION: u16 = 2;

    /// Controller RAM (command byte), status flags, output port (A20, reset), the output buffer
    /// and reply queue, the pending command argument, the keyboard's state with its queued
    /// scancodes and the mouse's (QEMU `vmstate_kbd` + `vmstate_ps2_keyboard` + `vmstate_ps2_mouse`).
    fn save(&self, w: &mut crate::snapshot::StateWriter) {
        w.bytes(&self.ram);
        w.bool(self.status_sys);
        w.bool(self.last_write_was_command);
        w.u8(self.output_port);
        w.option(self.output.as_ref(), |w, &(b, s)| {
            w.u8(b);
            w.u8(source_code(s));
        });
        w.u8(self.last_output);
        w.u8(self.replies.len() as u8);
        for &(b, s) in &self.replies {
            w.u8(b);
            w.u8(source_code(s));
        }
        match self.data_target {
            DataTarget::Keyboard => w.u8(0),
            DataTarget::ControllerArg(cmd) => w.u8(cmd),
        }
        w.u8(match self.keyboard_arg {
            None => 0,
            Some(KeyboardArg::Leds) => 1,
            Some(KeyboardArg::ScancodeSet) => 2,
            Some(KeyboardArg::Typematic) => 3,
        });
        w.bool(self.scanning);
        w.u8(self.scancode_set);
        w.u8(self.leds);
        let codes: Vec<u8> = self.scancodes.iter().copied().collect();
        w.blob(&codes);
        self.mouse.save(w);
    }

    fn restore(&mut self, r: &mut crate::snapshot::StateReader<'_>) -> Result<(), crate::snapshot::StateError> {
        let ram: [u8; 32] = r.array("ram")?;
        let status_sys = r.bool("status_sys")?;
        let last_write_was_command = r.bool("last_write_was_command")?;
        let output_port = r.u8("output_port")?;
        let output = r.option("output", |r| Ok((r.u8("output.byte")?, read_source(r, "output.source")?)))?;
        let last_output = r.u8("last_output")?;
        let n = r.u8_where("replies", |n| usize::from(n) <= MAX_REPLIES, "a reply count (at most 16)")?;
        let mut replies = VecDeque::with_capacity(n.into());
        for i in 0..n {
            replies.push_back((r.u8(&format!("replies[{i}].byte"))?, read_source(r, &format!("replies[{i}].source"))?));
        }
        // 0 = the keyboard; otherwise the controller command waiting for its argument.
        let data_target = match r.u8_where(
            "data_target",
            |c| matches!(c, 0 | 0x60..=0x7f | 0xd1..=0xd4),
            "0 or a command taking an argument",
        )? {
            0 => DataTarget::Keyboard,
            cmd => DataTarget::ControllerArg(cmd),
        };
        let keyboard_arg = match r.u8_where("keyboard_arg", |v| v <= 3, "a keyboard argument kind (0-3)")? {
            1 => Some(KeyboardArg::Leds),
            2 => Some(KeyboardArg::ScancodeSet),
            3 => Some(KeyboardArg::Typematic),
            _ => None,
        };
        let scanning = r.bool("scanning")?;
        let scancode_set = r.u8_where("scancode_set", |v| matches!(v, 1..=3), "a scancode set (1-3)")?;
        let leds = r.u8_where("leds", |v| v <= 7, "an LED mask (bits 2:0)")?;
        let scancodes = r.blob("scancodes", MAX_SCANCODES)?;
        let mut mouse = Ps2Mouse::new();
        mouse.restore(r)?;
        r.finish()?;
        self.ram = ram;
        self.status_sys = status_sys;
        self.last_write_was_command = last_write_was_command;
        self.output_port = output_port;
        self.output = output;
        self.last_output = last_output;
        self.replies = replies;
        self.data_target = data_target;
        self.keyboard_arg = keyboard_arg;
        self.scanning = scanning;
        self.scancode_set = scancode_set;
        self.leds = leds;
        self.scancodes = scancodes.into();
        self.mouse = mouse;
        Ok(())
    }
}

/// Set-1 bytes for `key` (make, or break = make | 0x80), 0xe0-prefixed for extended keys.
/// Pause has no break code and a make sequence of its own.
fn set1_bytes(key: KeyCode, down: bool, out: &mut [u8; 8]) -> usize {
    if key == KeyCode::PAUSE {
        if !down {
            return 0;
        }
        out[..6].copy_from_slice(&[0xe1, 0x1d, 0x45, 0xe1, 0x9d, 0xc5]);
        return 6;
    }
    let code = key.code() & 0x7f;
    let code = if down { code } else { code | 0x80 };
    if key.extended() {
        out[0] = 0xe0;
        out[1] = code;
        2
    } else {
        out[0] = code;
        1
    }
}

/// Set-2 bytes for `key` (make code; break = 0xf0 before the code), 0xe0-prefixed for extended
/// keys. Keys without a set-2 code are dropped.
fn set2_bytes(key: KeyCode, down: bool, out: &mut [u8; 8]) -> usize {
    if key == KeyCode::PAUSE {
        if !down {
            return 0;
        }
        out.copy_from_slice(&[0xe1, 0x14, 0x77, 0xe1, 0xf0, 0x14, 0xf0, 0x77]);
        return 8;
    }
    let Some(code) = set1_to_set2(key) else {
        return 0;
    };
    let mut n = 0;
    if key.extended() {
        out[n] = 0xe0;
        n += 1;
    }
    if !down {
        out[n] = 0xf0;
        n += 1;
    }
    out[n] = code;
    n + 1
}

/// The keyboard's set-2 code for a set-1 code: the inverse of the 8042's set 2 -> set 1
/// translation (IBM PC/AT Technical Reference, keyboard scan code tables; QEMU
/// `hw/input/ps2.c` translate_table).
fn set1_to_set2(key: KeyCode) -> Option<u8> {
    #[rustfmt::skip]
    const PLAIN: [u8; 0x80] = [
        // 0x00
        0x00, 0x76, 0x16, 0x1e, 0x26, 0x25, 0x2e, 0x36, 0x3d, 0x3e, 0x46, 0x45, 0x4e, 0x55, 0x66, 0x0d,
        // 0x10
        0x15, 0x1d, 0x24, 0x2d, 0x2c, 0x35, 0x3c, 0x43, 0x44, 0x4d, 0x54, 0x5b, 0x5a, 0x14, 0x1c, 0x1b,
        // 0x20
        0x23, 0x2b, 0x34, 0x33, 0x3b, 0x42, 0x4b, 0x4c, 0x52, 0x0e, 0x12, 0x5d, 0x1a, 0x22, 0x21, 0x2a,
        // 0x30
        0x32, 0x31, 0x3a, 0x41, 0x49, 0x4a, 0x59, 0x7c, 0x11, 0x29, 0x58, 0x05, 0x06, 0x04, 0x0c, 0x03,
        // 0x40
        0x0b, 0x83, 0x0a, 0x01, 0x09, 0x77, 0x7e, 0x6c, 0x75, 0x7d, 0x7b, 0x6b, 0x73, 0x74, 0x79, 0x69,
        // 0x50
        0x72, 0x7a, 0x70, 0x71, 0x84, 0x00, 0x61, 0x78, 0x07, 0x0f, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        // 0x60
        0x00, 0x00, 0x00, 0x00, 0x08, 0x10, 0x18, 0x20, 0x28, 0x30, 0x38, 0x40, 0x48, 0x50, 0x57, 0x5f,
        // 0x70
        0x13, 0x00, 0x00, 0x51, 0x00, 0x00, 0x00, 0x00, 0x00, 0x64, 0x00, 0x67, 0x00, 0x6a, 0x00, 0x00,
    ];
    let code = key.code() & 0x7f;
    if !key.extended() {
        return Some(PLAIN[code as usize]).filter(|&c| c != 0);
    }
    Some(match code {
        0x1c => 0x5a, // keypad Enter
        0x1d => 0x14, // right Ctrl
        0x35 => 0x4a, // keypad /
        0x37 => 0x7c, // Print Screen
        0x38 => 0x11, // right Alt (AltGr)
        0x47 => 0x6c, // Home
        0x48 => 0x75, // Up
        0x49 => 0x7d, // Page Up
        0x4b => 0x6b, // Left
        0x4d => 0x74, // Right
        0x4f => 0x69, // End
        0x50 => 0x72, // Down
        0x51 => 0x7a, // Page Down
        0x52 => 0x70, // Insert
        0x53 => 0x71, // Delete
        0x5b => 0x1f, // left Windows
        0x5c => 0x27, // right Windows
        0x5d => 0x2f, // Menu
        0x5e => 0x37, // Power
        0x5f => 0x3f, // Sleep
        0x63 => 0x5e, // Wake
        _ => return None,
    })
}

/// The console-facing side of a shared [`I8042`]: host keys to the keyboard, host motion to the
/// mouse.
#[derive(Clone)]
pub struct Ps2Input(pub Arc<Mutex<I8042>>);

impl Ps2Input {
    fn lock(&self) -> std::sync::MutexGuard<'_, I8042> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl KeyboardInput for Ps2Input {
    fn key(&self, key: KeyCode, down: bool) {
        self.lock().key(key, down);
    }

    fn leds(&self) -> u8 {
        self.lock().leds()
    }
}

impl PointerInput for Ps2Input {
    fn absolute(&self) -> bool {
        false
    }

    fn relative(&self, dx: i32, dy: i32, dz: i32, buttons: u8) {
        self.lock().mouse_motion(dx, dy, dz, buttons);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::interrupt::RecordingLine;
    use crate::vm_control::RecordingVmControl;

    struct Rig {
        dev: I8042,
        kbd: Arc<RecordingLine>,
        aux: Arc<RecordingLine>,
        vm: Arc<RecordingVmControl>,
    }

    fn rig() -> Rig {
        let kbd = Arc::new(RecordingLine::default());
        let aux = Arc::new(RecordingLine::default());
        let vm = Arc::new(RecordingVmControl::default());
        Rig { dev: I8042::new(kbd.clone(), aux.clone(), vm.clone()), kbd, aux, vm }
    }

    fn inb(d: &mut I8042, port: u64) -> u8 {
        let mut b = [0u8];
        d.read(port, &mut b);
        b[0]
    }

    /// Linux's `i8042_command`: command to 0x64, arguments to 0x60, then wait for OBF and read
    /// replies. `None` when a reply never comes (Linux would time out).
    fn command(d: &mut I8042, cmd: u8, args: &[u8], replies: usize) -> Option<Vec<u8>> {
        d.write(COMMAND_PORT, &[cmd]);
        for &a in args {
            d.write(DATA_PORT, &[a]);
        }
        let mut out = Vec::new();
        for _ in 0..replies {
            if inb(d, COMMAND_PORT) & STS_OBF == 0 {
                return None;
            }
            out.push(inb(d, DATA_PORT));
        }
        Some(out)
    }

    fn kbd_command(d: &mut I8042, bytes: &[u8], replies: usize) -> Vec<u8> {
        for &b in bytes {
            d.write(DATA_PORT, &[b]);
        }
        let mut out = Vec::new();
        while inb(d, COMMAND_PORT) & STS_OBF != 0 && out.len() < replies + 4 {
            out.push(inb(d, DATA_PORT));
        }
        out
    }

    #[test]
    fn linux_probe_sequence_succeeds() {
        let Rig { mut dev, aux, .. } = rig();
        // i8042_controller_check: flush; nothing there.
        assert_eq!(inb(&mut dev, COMMAND_PORT) & STS_OBF, 0);
        assert_eq!(command(&mut dev, 0xaa, &[], 1), Some(vec![0x55]));
        assert_ne!(inb(&mut dev, COMMAND_PORT) & STS_SYS, 0);
        assert_ne!(inb(&mut dev, COMMAND_PORT) & STS_UNLOCKED, 0, "keylock would make Linux warn");
        let ctr = command(&mut dev, 0x20, &[], 1).unwrap()[0];
        assert_ne!(ctr & CTR_TRANSLATE, 0);
        let ctr = (ctr | CTR_KBD_DISABLE) & !CTR_KBD_INT;
        command(&mut dev, 0x60, &[ctr], 0).unwrap();
        assert_eq!(command(&mut dev, 0x20, &[], 1), Some(vec![ctr]));
        // i8042_check_aux: loopback answers from the aux port.
        dev.write(COMMAND_PORT, &[0xd3]);
        dev.write(DATA_PORT, &[0x5a]);
        assert_eq!(inb(&mut dev, COMMAND_PORT) & (STS_OBF | STS_AUX_OBF), STS_OBF | STS_AUX_OBF);
        assert_eq!(inb(&mut dev, DATA_PORT), 0x5a);
        command(&mut dev, 0xa7, &[], 0).unwrap();
        assert_ne!(command(&mut dev, 0x20, &[], 1).unwrap()[0] & CTR_AUX_DISABLE, 0);
        command(&mut dev, 0xa8, &[], 0).unwrap();
        assert_eq!(command(&mut dev, 0x20, &[], 1).unwrap()[0] & CTR_AUX_DISABLE, 0);
        // AUX IRQ delivery test.
        let ctr = command(&mut dev, 0x20, &[], 1).unwrap()[0] | CTR_AUX_INT;
        command(&mut dev, 0x60, &[ctr], 0).unwrap();
        let before = aux.rising_edges();
        dev.write(COMMAND_PORT, &[0xd3]);
        dev.write(DATA_PORT, &[0xa5]);
        assert_eq!(aux.rising_edges(), before + 1);
        assert_eq!(inb(&mut dev, DATA_PORT), 0xa5);
        // psmouse probe: the mouse answers on the aux port (ACK, id 0), without timeout.
        dev.write(COMMAND_PORT, &[0xd4]);
        dev.write(DATA_PORT, &[0xf2]);
        assert_eq!(inb(&mut dev, COMMAND_PORT) & (STS_TIMEOUT | STS_AUX_OBF), STS_AUX_OBF);
        assert_eq!(inb(&mut dev, DATA_PORT), KBD_ACK);
        assert_eq!(inb(&mut dev, COMMAND_PORT) & STS_AUX_OBF, STS_AUX_OBF);
        assert_eq!(inb(&mut dev, DATA_PORT), 0x00);
        assert_eq!(command(&mut dev, 0xa9, &[], 1), Some(vec![0x00]));
        assert_eq!(command(&mut dev, 0xab, &[], 1), Some(vec![0x00]));
    }

    #[test]
    fn keyboard_commands_answer_like_an_mf2_keyboard() {
        let Rig { mut dev, .. } = rig();
        assert_eq!(kbd_command(&mut dev, &[0xff], 2), vec![0xfa, 0xaa]);
        assert_eq!(kbd_command(&mut dev, &[0xf2], 3), vec![0xfa, 0xab, 0x41]);
        // Without translation the identify bytes are the keyboard's own.
        let ctr = command(&mut dev, 0x20, &[], 1).unwrap()[0] & !CTR_TRANSLATE;
        command(&mut dev, 0x60, &[ctr], 0).unwrap();
        assert_eq!(kbd_command(&mut dev, &[0xf2], 3), vec![0xfa, 0xab, 0x83]);
        assert_eq!(kbd_command(&mut dev, &[0xed, 0x04], 2), vec![0xfa, 0xfa]);
        assert_eq!(dev.leds(), 0x04);
        assert_eq!(kbd_command(&mut dev, &[0xf0, 0x00], 2), vec![0xfa, 0xfa, 0x02]);
        assert_eq!(kbd_command(&mut dev, &[0xf3, 0x20], 2), vec![0xfa, 0xfa]);
        assert_eq!(kbd_command(&mut dev, &[0xee], 1), vec![0xee]);
        assert_eq!(kbd_command(&mut dev, &[0x12], 1), vec![0xfe]);
        assert_eq!(kbd_command(&mut dev, &[0xf5], 1), vec![0xfa]);
        dev.push_scancodes(&[0x1e]);
        assert_eq!(inb(&mut dev, COMMAND_PORT) & STS_OBF, 0, "scanning disabled");
        assert_eq!(kbd_command(&mut dev, &[0xf4], 2), vec![0xfa, 0x1e]);
    }

    #[test]
    fn scancodes_raise_irq1_only_when_enabled() {
        let Rig { mut dev, kbd, .. } = rig();
        dev.push_scancodes(&[0x1e, 0x9e]);
        assert_eq!(kbd.rising_edges(), 1);
        assert_eq!(inb(&mut dev, DATA_PORT), 0x1e);
        assert_eq!(kbd.rising_edges(), 2);
        assert_eq!(inb(&mut dev, DATA_PORT), 0x9e);
        assert_eq!(inb(&mut dev, COMMAND_PORT) & STS_OBF, 0);
        // Keyboard interface disabled: bytes wait.
        command(&mut dev, 0xad, &[], 0).unwrap();
        dev.push_scancodes(&[0x30]);
        assert_eq!(inb(&mut dev, COMMAND_PORT) & STS_OBF, 0);
        command(&mut dev, 0xae, &[], 0).unwrap();
        assert_eq!(inb(&mut dev, DATA_PORT), 0x30);
        // Interrupt disabled in the command byte: OBF, no edge.
        let edges = kbd.rising_edges();
        command(&mut dev, 0x60, &[CTR_TRANSLATE], 0).unwrap();
        dev.push_scancodes(&[0x31]);
        assert_ne!(inb(&mut dev, COMMAND_PORT) & STS_OBF, 0);
        assert_eq!(kbd.rising_edges(), edges);
        // The host cannot make the queue grow without bound.
        let many = vec![0x1e; 10_000];
        assert!(dev.push_scancodes(&many) <= MAX_SCANCODES);
    }

    #[test]
    fn reset_requests() {
        let Rig { mut dev, vm, .. } = rig();
        dev.write(COMMAND_PORT, &[0xfe]);
        assert_eq!(vm.take(), vec![VmRequest::Reset]);
        dev.write(COMMAND_PORT, &[0xff]); // pulses nothing
        assert!(vm.take().is_empty());
        assert_eq!(command(&mut dev, 0xd0, &[], 1).map(|v| v[0] & (OUT_RESET | OUT_A20)), Some(0x03));
        dev.write(COMMAND_PORT, &[0xd1]);
        dev.write(DATA_PORT, &[0x01]); // A20 off, reset line high
        assert!(vm.take().is_empty());
        assert!(!dev.a20_enabled());
        dev.write(COMMAND_PORT, &[0xd1]);
        dev.write(DATA_PORT, &[0x02]);
        assert_eq!(vm.take(), vec![VmRequest::Reset]);
    }

    #[test]
    fn any_access_is_safe_and_replies_are_bounded() {
        let Rig { mut dev, .. } = rig();
        for _ in 0..1000 {
            dev.write(COMMAND_PORT, &[0x20]);
            dev.write(DATA_PORT, &[0xf2]);
        }
        assert!(dev.replies.len() <= MAX_REPLIES);
        for addr in [0u64, 0x5f, 0x60, 0x61, 0x63, 0x64, 0x65, u64::MAX] {
            for len in 1..=4 {
                let mut d = vec![0u8; len];
                dev.read(addr, &mut d);
                dev.write(addr, &[0x00, 0xd4, 0x00, 0x20][..len]);
            }
        }
        for cmd in 0..=0xffu8 {
            dev.write(COMMAND_PORT, &[cmd]);
            dev.write(DATA_PORT, &[cmd]);
            inb(&mut dev, DATA_PORT);
        }
    }

    /// Linux psmouse's path: bytes to the mouse with 0xd4, answers read with the aux bit set.
    fn mouse_command(d: &mut I8042, bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        for &b in bytes {
            d.write(COMMAND_PORT, &[0xd4]);
            d.write(DATA_PORT, &[b]);
            while inb(d, COMMAND_PORT) & STS_OBF != 0 && out.len() < 64 {
                assert_ne!(inb(d, COMMAND_PORT) & STS_AUX_OBF, 0, "mouse bytes come from the aux port");
                out.push(inb(d, DATA_PORT));
            }
        }
        out
    }

    #[test]
    fn the_mouse_is_detected_as_an_intellimouse_and_reports_motion_on_irq12() {
        let Rig { mut dev, aux, .. } = rig();
        assert_eq!(mouse_command(&mut dev, &[0xff]), vec![0xfa, 0xaa, 0x00]);
        assert_eq!(
            mouse_command(&mut dev, &[0xf3, 200, 0xf3, 100, 0xf3, 80, 0xf2]),
            vec![0xfa; 7].into_iter().chain([3]).collect::<Vec<_>>()
        );
        assert_eq!(mouse_command(&mut dev, &[0xe8, 0x03, 0xe6, 0xf3, 100, 0xf4]), vec![0xfa; 6]);
        let edges = aux.rising_edges();
        Ps2Input(Arc::new(Mutex::new(I8042::new(
            Arc::new(crate::interrupt::RecordingLine::default()),
            Arc::new(crate::interrupt::RecordingLine::default()),
            Arc::new(RecordingVmControl::default()),
        ))))
        .relative(1, 1, 1, 0); // another controller: ours is untouched
        assert_eq!(inb(&mut dev, COMMAND_PORT) & STS_OBF, 0);
        dev.mouse_motion(4, -2, -1, crate::input::buttons::LEFT);
        assert!(aux.rising_edges() > edges, "IRQ 12 for the packet");
        let mut packet = Vec::new();
        while inb(&mut dev, COMMAND_PORT) & STS_OBF != 0 {
            assert_ne!(inb(&mut dev, COMMAND_PORT) & STS_AUX_OBF, 0);
            packet.push(inb(&mut dev, DATA_PORT));
        }
        assert_eq!(packet, vec![0x09, 4, 2, 0xff], "left button, x +4, y +2 (up), wheel -1");
        // While the aux interface is disabled the packet waits; keyboard bytes still pass.
        command(&mut dev, 0xa7, &[], 0).unwrap();
        dev.mouse_motion(1, 0, 0, 0);
        dev.key(KeyCode(0x1e), true);
        assert_eq!(inb(&mut dev, COMMAND_PORT) & (STS_OBF | STS_AUX_OBF), STS_OBF);
        assert_eq!(inb(&mut dev, DATA_PORT), 0x1e);
        assert_eq!(inb(&mut dev, COMMAND_PORT) & STS_OBF, 0);
        command(&mut dev, 0xa8, &[], 0).unwrap();
        assert_eq!(inb(&mut dev, COMMAND_PORT) & (STS_OBF | STS_AUX_OBF), STS_OBF | STS_AUX_OBF);
        assert_eq!(inb(&mut dev, DATA_PORT), 0x08);
    }

    #[test]
    fn host_keys_arrive_in_set_1_with_translation_and_set_2_without() {
        let Rig { mut dev, .. } = rig();
        let read_all = |d: &mut I8042| {
            let mut v = Vec::new();
            while inb(d, COMMAND_PORT) & STS_OBF != 0 && v.len() < 32 {
                v.push(inb(d, DATA_PORT));
            }
            v
        };
        let input = Ps2Input(Arc::new(Mutex::new(std::mem::replace(&mut dev, rig().dev))));
        input.key(KeyCode(0x1e), true);
        input.key(KeyCode(0x1e), false);
        input.key(KeyCode(0xe048), true);
        input.key(KeyCode(0xe048), false);
        let mut dev = std::mem::replace(&mut *input.0.lock().unwrap(), rig().dev);
        assert_eq!(read_all(&mut dev), vec![0x1e, 0x9e, 0xe0, 0x48, 0xe0, 0xc8]);
        let ctr = command(&mut dev, 0x20, &[], 1).unwrap()[0] & !CTR_TRANSLATE;
        command(&mut dev, 0x60, &[ctr], 0).unwrap();
        dev.key(KeyCode(0x1e), true);
        dev.key(KeyCode(0x1e), false);
        dev.key(KeyCode(0xe048), false);
        dev.key(KeyCode::PAUSE, true);
        dev.key(KeyCode::PAUSE, false);
        assert_eq!(
            read_all(&mut dev),
            vec![0x1c, 0xf0, 0x1c, 0xe0, 0xf0, 0x75, 0xe1, 0x14, 0x77, 0xe1, 0xf0, 0x14, 0xf0, 0x77]
        );
        // Every set-1 code the console can send has a set-2 code or is dropped whole.
        for code in 0..=0xffu16 {
            for key in [KeyCode(code), KeyCode(0xe000 | code)] {
                let mut b = [0u8; 8];
                let n = set2_bytes(key, true, &mut b);
                assert!(n <= 3);
            }
        }
    }
}
