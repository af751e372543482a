//! Fuzzes what a QMP client controls: the byte stream is framed into messages (in arbitrary
//! chunks, as reads deliver it), each message is parsed as a command, and every outcome is
//! rendered as the one-line reply the server would send. Invariants: nothing panics, the framer
//! never holds more than its limit, and every reply is a single line of valid JSON ending in CRLF
//! that echoes the command's id.
//!
//! `cargo fuzz run qmp` from devicemodel/ (on stable: `RUSTC_BOOTSTRAP=1`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use devicemodel::qmp::wire::{error_response, parse_command, success_response, Frame, Framer};

fn check_line(reply: &str, id: Option<&serde_json::Value>) {
    assert!(reply.ends_with("\r\n"), "reply must end in CRLF: {reply:?}");
    let body = &reply[..reply.len() - 2];
    assert!(!body.contains('\n') && !body.contains('\r'), "reply must be one line: {reply:?}");
    let v: serde_json::Value = serde_json::from_str(body).expect("reply is JSON");
    assert_eq!(v.get("id"), id, "the id is echoed");
}

fuzz_target!(|data: &[u8]| {
    // The first byte chooses the read size, the rest is the stream.
    let Some((&chunk, stream)) = data.split_first() else { return };
    let chunk = (chunk as usize % 64) + 1;
    let mut framer = Framer::new();
    let mut frames = Vec::new();
    for piece in stream.chunks(chunk) {
        framer.push(piece, &mut frames);
    }
    for frame in frames {
        let Frame::Message(msg) = frame else { continue };
        match parse_command(&msg) {
            Ok(cmd) => check_line(&success_response(serde_json::json!({}), cmd.id.as_ref()), cmd.id.as_ref()),
            Err(rejected) => check_line(&error_response(&rejected.error, rejected.id.as_ref()), rejected.id.as_ref()),
        }
    }
});
