//! VNC client messages: the handshake and then any message stream, against the server's real
//! reader (pixel formats, encodings, requests, key/pointer/cut-text/QEMU messages) with a
//! pattern display, then the writer's encoders for whatever format and encodings the input set.
//! Nothing may panic, hang or allocate without bound.

#![no_main]

use std::io::{Cursor, Read, Write};
use std::sync::{Arc, Mutex};

use devicemodel::console::pattern::PatternDisplay;
use devicemodel::console::Console;
use devicemodel::machine::MachineInput;
use devicemodel::vnc::client::{handshake, read_messages, write_updates, Authenticator, ClientShared};
use devicemodel::vnc::input::InputRouter;
use devicemodel::vnc::keymap::Keymap;
use devices::display::SharedDisplay;
use devices::legacy::i8042::{Ps2Input, I8042};
use libfuzzer_sys::fuzz_target;

struct Duplex<'a> {
    input: Cursor<&'a [u8]>,
    output: Vec<u8>,
}

impl Read for Duplex<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.input.read(buf)
    }
}

impl Write for Duplex<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        // Bounded: a handshake writes a few dozen bytes.
        if self.output.len() < 1 << 16 {
            self.output.extend_from_slice(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

struct Auth(u8);
impl Authenticator for Auth {
    fn security_type(&self) -> u8 {
        self.0
    }
    fn password(&self) -> Option<Vec<u8>> {
        Some(b"secret".to_vec())
    }
}

/// Counts bytes and then fails, so the writer stops after one round.
struct Sink(usize);
impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Err(std::io::Error::other("done"))
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let timers = devices::timer::ManualTimers::new(Arc::new(devices::clock::ManualClock::new(0)));
    let console = Console::new(timers);
    let (w, h) = (u32::from(data[0] % 64) + 1, u32::from(data[1] % 48) + 1);
    let display = Arc::new(Mutex::new(PatternDisplay::new(w, h)));
    let i8042 = Arc::new(Mutex::new(I8042::new(
        Arc::new(devices::interrupt::DisconnectedLine),
        Arc::new(devices::interrupt::DisconnectedLine),
        Arc::new(devices::vm_control::RecordingVmControl::default()),
    )));
    let ps2 = Ps2Input(i8042);
    console.attach(&[display as SharedDisplay], MachineInput { keyboard: Arc::new(ps2.clone()), pointer: Arc::new(ps2) });
    let mut duplex = Duplex { input: Cursor::new(&data[2..]), output: Vec::new() };
    let auth = Auth(if data[0] & 0x80 != 0 { 2 } else { 1 });
    if handshake(&mut duplex, &auth, (w, h), "QEMU").is_err() {
        return;
    }
    let client = ClientShared::new(w, h);
    let input = InputRouter::new(console.clone(), Keymap::builtin_en_us(), data[1] & 0x80 != 0);
    let _ = read_messages(&mut duplex.input, &client, &input, &console);
    client.lock().requested = true;
    client.lock().closed = false;
    let _ = write_updates(&mut Sink(0), &client, &console, &|| false);
});
