//! A PS/2 mouse on the i8042's auxiliary port, with the Microsoft IntelliMouse (ImPS/2, wheel)
//! and IntelliMouse Explorer (buttons 4/5) extensions that Linux psmouse and Windows i8042prt
//! probe for.
//!
//! References: IBM PS/2 Hardware Interface Technical Reference (mouse command set); the
//! IntelliMouse "knock" sequences and 4-byte packet as Linux `drivers/input/mouse/psmouse-base.c`
//! (`intellimouse_detect`, `im_explorer_detect`, `psmouse_process_byte`) reads them and QEMU
//! `hw/input/ps2.c` (`ps2_write_mouse`, `ps2_mouse_send_packet`) answers them.

use std::collections::VecDeque;

use crate::input::buttons;

// Commands (host to mouse), PS/2 mouse command set.
pub const CMD_SET_SCALING_1_1: u8 = 0xe6;
pub const CMD_SET_SCALING_2_1: u8 = 0xe7;
pub const CMD_SET_RESOLUTION: u8 = 0xe8;
pub const CMD_STATUS_REQUEST: u8 = 0xe9;
pub const CMD_SET_STREAM_MODE: u8 = 0xea;
pub const CMD_READ_DATA: u8 = 0xeb;
pub const CMD_RESET_WRAP_MODE: u8 = 0xec;
pub const CMD_SET_WRAP_MODE: u8 = 0xee;
pub const CMD_SET_REMOTE_MODE: u8 = 0xf0;
pub const CMD_GET_ID: u8 = 0xf2;
pub const CMD_SET_SAMPLE_RATE: u8 = 0xf3;
pub const CMD_ENABLE_REPORTING: u8 = 0xf4;
pub const CMD_DISABLE_REPORTING: u8 = 0xf5;
pub const CMD_SET_DEFAULTS: u8 = 0xf6;
pub const CMD_RESEND: u8 = 0xfe;
pub const CMD_RESET: u8 = 0xff;

// Replies.
pub const ACK: u8 = 0xfa;
/// "Resend": the answer to a byte the mouse does not understand.
pub const NAK: u8 = 0xfe;
pub const BAT_OK: u8 = 0xaa;

/// Device ids (0xf2): plain PS/2, IntelliMouse (wheel), IntelliMouse Explorer (wheel + 4/5).
pub const ID_PS2: u8 = 0x00;
pub const ID_IMPS2: u8 = 0x03;
pub const ID_IMEX: u8 = 0x04;

// Status byte (0xe9), first byte: bit 6 remote mode, 5 reporting enabled, 4 scaling 2:1,
// 2 left, 1 middle, 0 right.
const STATUS_REMOTE: u8 = 1 << 6;
const STATUS_ENABLED: u8 = 1 << 5;
const STATUS_SCALING_2_1: u8 = 1 << 4;

// Packet byte 0: bit 0 left, 1 right, 2 middle, 3 always 1, 4 X sign, 5 Y sign, 6 X overflow,
// 7 Y overflow.
const PKT_ALWAYS_1: u8 = 1 << 3;
const PKT_X_SIGN: u8 = 1 << 4;
const PKT_Y_SIGN: u8 = 1 << 5;

/// Defaults after reset / 0xf6: 100 samples/s, 4 counts/mm (resolution code 2).
const DEFAULT_SAMPLE_RATE: u8 = 100;
const DEFAULT_RESOLUTION: u8 = 2;

/// Bytes the mouse holds for the controller (replies and motion packets), like QEMU's 256-byte
/// PS/2 queue. Motion that does not fit stays accumulated and is sent as the guest reads.
pub const MAX_QUEUE: usize = 256;
/// Accumulated motion is kept within this (a host that keeps moving while the guest does not
/// read cannot overflow the counters).
const MAX_PENDING_MOTION: i32 = 1 << 16;

/// What the next byte from the host is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pending {
    None,
    SampleRate,
    Resolution,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ps2Mouse {
    queue: VecDeque<u8>,
    pending: Pending,
    reporting: bool,
    remote: bool,
    wrap: bool,
    scaling_2_1: bool,
    sample_rate: u8,
    resolution: u8,
    id: u8,
    /// The last three sample rates set, oldest first (the IntelliMouse knocks).
    rates: [u8; 3],
    /// PS/2 button bits (left 1, right 2, middle 4).
    buttons: u8,
    /// Motion not sent yet (x right, y up as the mouse counts it, z wheel towards the user).
    dx: i32,
    dy: i32,
    dz: i32,
}

impl Default for Ps2Mouse {
    fn default() -> Self {
        Ps2Mouse::new()
    }
}

impl Ps2Mouse {
    pub fn new() -> Self {
        Ps2Mouse {
            queue: VecDeque::new(),
            pending: Pending::None,
            reporting: false,
            remote: false,
            wrap: false,
            scaling_2_1: false,
            sample_rate: DEFAULT_SAMPLE_RATE,
            resolution: DEFAULT_RESOLUTION,
            id: ID_PS2,
            rates: [0; 3],
            buttons: 0,
            dx: 0,
            dy: 0,
            dz: 0,
        }
    }

    /// Power-on state (as after 0xff, without the self-test reply).
    pub fn reset(&mut self) {
        *self = Ps2Mouse::new();
    }

    fn set_defaults(&mut self) {
        self.reporting = false;
        self.remote = false;
        self.scaling_2_1 = false;
        self.sample_rate = DEFAULT_SAMPLE_RATE;
        self.resolution = DEFAULT_RESOLUTION;
        self.dx = 0;
        self.dy = 0;
        self.dz = 0;
    }

    /// The next byte for the controller, if any.
    pub fn pop(&mut self) -> Option<u8> {
        let b = self.queue.pop_front();
        if self.queue.is_empty() {
            self.flush_motion();
        }
        b
    }

    pub fn has_output(&self) -> bool {
        !self.queue.is_empty()
    }

    fn push(&mut self, bytes: &[u8]) {
        for &b in bytes {
            if self.queue.len() < MAX_QUEUE {
                self.queue.push_back(b);
            }
        }
    }

    /// A byte the guest sent to the mouse (controller command 0xd4).
    pub fn write(&mut self, value: u8) {
        if self.wrap && value != CMD_RESET_WRAP_MODE && value != CMD_RESET {
            // Wrap (echo) mode: every byte comes back.
            self.push(&[value]);
            return;
        }
        match std::mem::replace(&mut self.pending, Pending::None) {
            Pending::SampleRate => {
                self.sample_rate = value;
                self.rates = [self.rates[1], self.rates[2], value];
                // Knocks: 200,100,80 asks for the wheel; 200,200,80 then for buttons 4/5.
                match self.rates {
                    [200, 100, 80] if self.id == ID_PS2 => self.id = ID_IMPS2,
                    [200, 200, 80] if self.id == ID_IMPS2 => self.id = ID_IMEX,
                    _ => {}
                }
                self.push(&[ACK]);
                return;
            }
            Pending::Resolution => {
                self.resolution = value & 3;
                self.push(&[ACK]);
                return;
            }
            Pending::None => {}
        }
        match value {
            CMD_SET_SCALING_1_1 | CMD_SET_SCALING_2_1 => {
                self.scaling_2_1 = value == CMD_SET_SCALING_2_1;
                self.push(&[ACK]);
            }
            CMD_SET_RESOLUTION => {
                self.pending = Pending::Resolution;
                self.push(&[ACK]);
            }
            CMD_STATUS_REQUEST => {
                let mut status = 0;
                if self.remote {
                    status |= STATUS_REMOTE;
                }
                if self.reporting {
                    status |= STATUS_ENABLED;
                }
                if self.scaling_2_1 {
                    status |= STATUS_SCALING_2_1;
                }
                // Status bits: left 2, middle 1, right 0.
                let b = self.buttons;
                status |= ((b & 1) << 2) | (((b >> 2) & 1) << 1) | ((b >> 1) & 1);
                self.push(&[ACK, status, self.resolution, self.sample_rate]);
            }
            CMD_SET_STREAM_MODE => {
                self.remote = false;
                self.push(&[ACK]);
            }
            CMD_READ_DATA => {
                self.push(&[ACK]);
                self.send_packet();
            }
            CMD_RESET_WRAP_MODE => {
                self.wrap = false;
                self.push(&[ACK]);
            }
            CMD_SET_WRAP_MODE => {
                self.wrap = true;
                self.push(&[ACK]);
            }
            CMD_SET_REMOTE_MODE => {
                self.remote = true;
                self.push(&[ACK]);
            }
            CMD_GET_ID => self.push(&[ACK, self.id]),
            CMD_SET_SAMPLE_RATE => {
                self.pending = Pending::SampleRate;
                self.push(&[ACK]);
            }
            CMD_ENABLE_REPORTING => {
                self.reporting = true;
                self.push(&[ACK]);
            }
            CMD_DISABLE_REPORTING => {
                self.reporting = false;
                self.push(&[ACK]);
            }
            CMD_SET_DEFAULTS => {
                self.set_defaults();
                self.push(&[ACK]);
            }
            CMD_RESEND => {
                // Resend the last packet: we keep none, so answer with an empty-motion packet.
                self.send_packet();
            }
            CMD_RESET => {
                self.reset();
                self.push(&[ACK, BAT_OK, ID_PS2]);
            }
            _ => self.push(&[NAK]),
        }
    }

    fn packet_len(&self) -> usize {
        if self.id == ID_PS2 {
            3
        } else {
            4
        }
    }

    /// Host motion: `dx` right, `dy` down (screen direction), `dz` wheel towards the user, and
    /// the buttons now held (`devices::input::buttons`).
    pub fn motion(&mut self, dx: i32, dy: i32, dz: i32, held: u8) {
        let mut ps2_buttons = 0;
        if held & buttons::LEFT != 0 {
            ps2_buttons |= 0x01;
        }
        if held & buttons::RIGHT != 0 {
            ps2_buttons |= 0x02;
        }
        if held & buttons::MIDDLE != 0 {
            ps2_buttons |= 0x04;
        }
        if !self.reporting {
            // A mouse with reporting off forgets motion (QEMU ps2_mouse_event drops it too):
            // enabling it later must not replay a jump.
            self.buttons = ps2_buttons;
            return;
        }
        let clamp = |v: i32| v.clamp(-MAX_PENDING_MOTION, MAX_PENDING_MOTION);
        self.dx = clamp(self.dx.saturating_add(dx));
        // The mouse counts up as positive.
        self.dy = clamp(self.dy.saturating_sub(dy));
        self.dz = clamp(self.dz.saturating_add(dz));
        let buttons_changed = ps2_buttons != self.buttons;
        self.buttons = ps2_buttons;
        if self.remote {
            return;
        }
        if buttons_changed && self.dx == 0 && self.dy == 0 && self.dz == 0 {
            if self.queue.len() + self.packet_len() <= MAX_QUEUE {
                self.send_packet();
            }
            return;
        }
        self.flush_motion();
    }

    /// Sends packets for accumulated motion while the queue has room.
    fn flush_motion(&mut self) {
        if !self.reporting || self.remote {
            return;
        }
        // Each packet carries at most what its fields hold; the rest waits for the next one.
        let mut budget = MAX_QUEUE;
        while (self.dx != 0 || self.dy != 0 || self.dz != 0)
            && self.queue.len() + self.packet_len() <= MAX_QUEUE
            && budget > 0
        {
            self.send_packet();
            budget -= 1;
        }
    }

    /// One movement packet from the accumulated motion, clamped to what the packet can carry
    /// (9-bit two's complement X/Y; the wheel as a signed byte for ImPS/2, 4 bits for Explorer).
    fn send_packet(&mut self) {
        let x = self.dx.clamp(-256, 255);
        let y = self.dy.clamp(-256, 255);
        let (z, z_byte) = match self.id {
            ID_IMPS2 => {
                let z = self.dz.clamp(-127, 127);
                (z, z as i8 as u8)
            }
            ID_IMEX => {
                let z = self.dz.clamp(-8, 7);
                (z, (z as i8 as u8) & 0x0f)
            }
            _ => (0, 0),
        };
        self.dx -= x;
        self.dy -= y;
        if self.id == ID_PS2 {
            // A plain PS/2 mouse has no wheel: drop it.
            self.dz = 0;
        } else {
            self.dz -= z;
        }
        let mut b0 = PKT_ALWAYS_1 | (self.buttons & 0x07);
        if x < 0 {
            b0 |= PKT_X_SIGN;
        }
        if y < 0 {
            b0 |= PKT_Y_SIGN;
        }
        let packet = [b0, x as u8, y as u8, z_byte];
        let n = self.packet_len();
        self.push(&packet[..n]);
    }
}

/// The mouse's part of the i8042 state (QEMU `vmstate_ps2_mouse`); accumulated motion is
/// host-side and not saved.
impl Ps2Mouse {
    pub fn save(&self, w: &mut crate::snapshot::StateWriter) {
        let queue: Vec<u8> = self.queue.iter().copied().collect();
        w.blob(&queue);
        w.u8(match self.pending {
            Pending::None => 0,
            Pending::SampleRate => 1,
            Pending::Resolution => 2,
        });
        w.bool(self.reporting);
        w.bool(self.remote);
        w.bool(self.wrap);
        w.bool(self.scaling_2_1);
        w.u8(self.sample_rate);
        w.u8(self.resolution);
        w.u8(self.id);
        w.bytes(&self.rates);
        w.u8(self.buttons);
    }

    pub fn restore(&mut self, r: &mut crate::snapshot::StateReader<'_>) -> Result<(), crate::snapshot::StateError> {
        let queue = r.blob("mouse.queue", MAX_QUEUE)?;
        let pending = match r.u8_where("mouse.pending", |v| v <= 2, "0-2")? {
            1 => Pending::SampleRate,
            2 => Pending::Resolution,
            _ => Pending::None,
        };
        let reporting = r.bool("mouse.reporting")?;
        let remote = r.bool("mouse.remote")?;
        let wrap = r.bool("mouse.wrap")?;
        let scaling_2_1 = r.bool("mouse.scaling")?;
        let sample_rate = r.u8("mouse.sample_rate")?;
        let resolution = r.u8_where("mouse.resolution", |v| v <= 3, "a resolution code (0-3)")?;
        let id = r.u8_where("mouse.id", |v| matches!(v, ID_PS2 | ID_IMPS2 | ID_IMEX), "a mouse id (0, 3, 4)")?;
        let rates: [u8; 3] = r.array("mouse.rates")?;
        let buttons = r.u8_where("mouse.buttons", |v| v & !0x07 == 0, "PS/2 button bits")?;
        *self = Ps2Mouse {
            queue: queue.into(),
            pending,
            reporting,
            remote,
            wrap,
            scaling_2_1,
            sample_rate,
            resolution,
            id,
            rates,
            buttons,
            dx: 0,
            dy: 0,
            dz: 0,
        };
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn send(m: &mut Ps2Mouse, bytes: &[u8]) -> Vec<u8> {
        for &b in bytes {
            m.write(b);
        }
        let mut out = Vec::new();
        while let Some(b) = m.pop() {
            out.push(b);
        }
        out
    }

    #[test]
    fn reset_and_identify_as_a_bare_ps2_mouse() {
        let mut m = Ps2Mouse::new();
        assert_eq!(send(&mut m, &[CMD_RESET]), vec![ACK, BAT_OK, ID_PS2]);
        assert_eq!(send(&mut m, &[CMD_GET_ID]), vec![ACK, ID_PS2]);
        assert_eq!(send(&mut m, &[CMD_STATUS_REQUEST]), vec![ACK, 0x00, 2, 100]);
        assert_eq!(send(&mut m, &[0x12]), vec![NAK], "unknown command");
    }

    #[test]
    fn intellimouse_knocks_switch_the_id_and_the_packet_size() {
        let mut m = Ps2Mouse::new();
        let knock = [CMD_SET_SAMPLE_RATE, 200, CMD_SET_SAMPLE_RATE, 100, CMD_SET_SAMPLE_RATE, 80];
        assert_eq!(send(&mut m, &knock), vec![ACK; 6]);
        assert_eq!(send(&mut m, &[CMD_GET_ID]), vec![ACK, ID_IMPS2]);
        let explorer = [CMD_SET_SAMPLE_RATE, 200, CMD_SET_SAMPLE_RATE, 200, CMD_SET_SAMPLE_RATE, 80];
        send(&mut m, &explorer);
        assert_eq!(send(&mut m, &[CMD_GET_ID]), vec![ACK, ID_IMEX]);
        assert_eq!(send(&mut m, &[CMD_SET_RESOLUTION, 3, CMD_STATUS_REQUEST]), vec![ACK, ACK, ACK, 0, 3, 80]);
        send(&mut m, &[CMD_ENABLE_REPORTING]);
        m.motion(1, 0, 1, 0);
        assert_eq!(send(&mut m, &[]), vec![0x08, 1, 0, 0x01]);
        // Reset forgets the extension.
        assert_eq!(send(&mut m, &[CMD_RESET, CMD_GET_ID]), vec![ACK, BAT_OK, 0, ACK, 0]);
    }

    #[test]
    fn packets_carry_buttons_signs_and_clamped_motion() {
        let mut m = Ps2Mouse::new();
        m.motion(5, 5, 0, 0);
        assert!(send(&mut m, &[]).is_empty(), "reporting is off after reset");
        send(&mut m, &[CMD_ENABLE_REPORTING]);
        m.motion(0, 0, 0, 0);
        assert!(send(&mut m, &[]).is_empty(), "motion while disabled is forgotten");
        // Screen down is mouse -y.
        m.motion(-3, 2, 0, buttons::LEFT | buttons::MIDDLE);
        assert_eq!(send(&mut m, &[]), vec![0x08 | 0x01 | 0x04 | PKT_X_SIGN | PKT_Y_SIGN, 0xfd, 0xfe]);
        // A big move is split into packets that each fit the 9-bit fields.
        m.motion(600, 0, 0, 0);
        let out = send(&mut m, &[]);
        assert_eq!(out, vec![0x08, 255, 0, 0x08, 255, 0, 0x08, 90, 0]);
        // A button change alone is a packet too.
        m.motion(0, 0, 0, buttons::RIGHT);
        assert_eq!(send(&mut m, &[]), vec![0x0a, 0, 0]);
        send(&mut m, &[CMD_DISABLE_REPORTING]);
        m.motion(1, 1, 0, 0);
        assert!(send(&mut m, &[]).is_empty());
    }

    #[test]
    fn a_guest_that_never_reads_cannot_grow_the_queue() {
        let mut m = Ps2Mouse::new();
        m.write(CMD_ENABLE_REPORTING);
        for _ in 0..100_000 {
            m.motion(1000, -1000, 3, buttons::LEFT);
            m.write(CMD_GET_ID);
        }
        assert!(m.queue.len() <= MAX_QUEUE);
        assert!(m.dx.abs() <= MAX_PENDING_MOTION && m.dy.abs() <= MAX_PENDING_MOTION);
    }

    #[test]
    fn wrap_mode_echoes_until_reset() {
        let mut m = Ps2Mouse::new();
        assert_eq!(send(&mut m, &[CMD_SET_WRAP_MODE, 0x42, 0xf4]), vec![ACK, 0x42, 0xf4]);
        assert_eq!(send(&mut m, &[CMD_RESET_WRAP_MODE, CMD_GET_ID]), vec![ACK, ACK, 0]);
    }
}
