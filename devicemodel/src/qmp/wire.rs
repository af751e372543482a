//! QMP wire format: splitting the input byte stream into JSON messages, validating a command
//! object, and rendering greeting, responses and events.
//!
//! Everything here is pure (no I/O) so the fuzz target can drive it directly: [`Framer`] and
//! [`parse_command`] accept arbitrary bytes and never panic.
//!
//! References are to QEMU's docs/interop/qmp-spec.rst ("QMP spec") and to the QEMU sources that
//! implement it (qobject/json-streamer.c, qapi/qmp-dispatch.c, monitor/qmp.c).

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Map, Value};

use super::error::QmpError;

/// The QEMU version we report. libxl switches behaviour at QEMU 2.8 and 2.11 (it uses `id` rather
/// than `device` for eject/blockdev-change-medium, and query-cpus-fast); 8.2.0 is a version whose
/// QMP interface we reproduce.
pub const QEMU_VERSION: (u64, u64, u64) = (8, 2, 0);

/// Upper bound on one JSON message. QEMU bounds a message by token size and count
/// (json-streamer.c MAX_TOKEN_SIZE/MAX_TOKEN_COUNT); a byte bound is simpler and keeps a client
/// from making us buffer without end. libxl's largest command is a few hundred bytes.
pub const MAX_MESSAGE_BYTES: usize = 1 << 20;

/// One framing result.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// A complete candidate JSON text (not yet validated).
    Message(Vec<u8>),
    /// The peer sent more than [`MAX_MESSAGE_BYTES`] without completing a message.
    TooLong,
}

/// Splits the byte stream from a client into JSON messages.
///
/// The QMP spec says commands are JSON objects and does not require newlines; QEMU's
/// json-streamer ends a message when the braces and brackets balance. We do the same, and in
/// addition end a message at a newline outside any object or array, so garbage such as `foo\n`
/// is answered with a parse error instead of being held forever. A raw control character inside
/// a string is invalid JSON (RFC 8259 section 7); QEMU's lexer reports an error there and
/// restarts, and so do we (the error surfaces when the fragment is parsed).
#[derive(Debug, Default)]
pub struct Framer {
    buf: Vec<u8>,
    depth: usize,
    in_string: bool,
    escape: bool,
}

impl Framer {
    pub fn new() -> Self {
        Framer::default()
    }

    fn emit(&mut self, out: &mut Vec<Frame>) {
        let msg = std::mem::take(&mut self.buf);
        self.depth = 0;
        self.in_string = false;
        self.escape = false;
        if msg.iter().any(|b| !b.is_ascii_whitespace()) {
            out.push(Frame::Message(msg));
        }
    }

    /// Feeds received bytes; complete messages are appended to `out`.
    pub fn push(&mut self, data: &[u8], out: &mut Vec<Frame>) {
        for &b in data {
            if self.buf.len() >= MAX_MESSAGE_BYTES {
                *self = Framer::default();
                out.push(Frame::TooLong);
                // The caller drops the connection; nothing after this is meaningful.
                return;
            }
            if self.in_string {
                self.buf.push(b);
                if self.escape {
                    self.escape = false;
                } else if b == b'\\' {
                    self.escape = true;
                } else if b == b'"' {
                    self.in_string = false;
                } else if b < 0x20 {
                    self.emit(out);
                }
                continue;
            }
            match b {
                b'"' => {
                    self.in_string = true;
                    self.buf.push(b);
                }
                b'{' | b'[' => {
                    self.depth += 1;
                    self.buf.push(b);
                }
                b'}' | b']' => {
                    self.buf.push(b);
                    // A stray closer at depth 0 is emitted at once as a (bad) message.
                    self.depth = self.depth.saturating_sub(1);
                    if self.depth == 0 {
                        self.emit(out);
                    }
                }
                b'\n' if self.depth == 0 => self.emit(out),
                b' ' | b'\t' | b'\r' | b'\n' if self.depth == 0 && self.buf.is_empty() => {}
                _ => self.buf.push(b),
            }
        }
    }
}

/// A validated QMP command (QMP spec, "Issuing Commands").
#[derive(Clone, Debug, PartialEq)]
pub struct Command {
    /// The client's `id`, any JSON value, echoed in the response.
    pub id: Option<Value>,
    pub name: String,
    /// `arguments`, or an empty object when the client sent none.
    pub arguments: Map<String, Value>,
}

/// A message that is not a valid command: the error to send and the `id` to echo (QEMU echoes the
/// id whenever the message was an object that had one, even if the rest was malformed).
#[derive(Clone, Debug, PartialEq)]
pub struct RejectedCommand {
    pub id: Option<Value>,
    pub error: QmpError,
}

impl From<RejectedCommand> for QmpError {
    fn from(r: RejectedCommand) -> QmpError {
        r.error
    }
}

/// Parses and validates one framed message, with the checks and wording of QEMU's
/// qapi/qmp-dispatch.c `qmp_dispatch_check_obj`.
pub fn parse_command(message: &[u8]) -> Result<Command, RejectedCommand> {
    let reject = |id: Option<Value>, desc: String| RejectedCommand { id, error: QmpError::generic(desc) };
    let value: Value = match serde_json::from_slice(message) {
        Ok(v) => v,
        Err(e) => return Err(reject(None, format!("JSON parse error, {e}"))),
    };
    let Value::Object(mut obj) = value else {
        return Err(reject(None, "QMP input must be a JSON object".into()));
    };
    let id = obj.get("id").cloned();
    let mut name = None;
    for (key, val) in &obj {
        match key.as_str() {
            "execute" => match val {
                Value::String(s) => name = Some(s.clone()),
                _ => return Err(reject(id, "QMP input member 'execute' must be a string".into())),
            },
            "arguments" if !val.is_object() => {
                return Err(reject(id, "QMP input member 'arguments' must be an object".into()))
            }
            "arguments" | "id" => {}
            // "exec-oob" lands here too: we offer no 'oob' capability, and QEMU rejects it the
            // same way when out-of-band execution was not negotiated.
            other => return Err(reject(id, format!("QMP input member '{other}' is unexpected"))),
        }
    }
    let Some(name) = name else {
        return Err(reject(id, "QMP input lacks member 'execute'".into()));
    };
    let arguments = match obj.remove("arguments") {
        Some(Value::Object(m)) => m,
        _ => Map::new(),
    };
    Ok(Command { id, name, arguments })
}

fn line(v: &Value) -> String {
    // Display for Value is compact JSON and cannot fail for a Value.
    let mut s = v.to_string();
    s.push_str("\r\n");
    s
}

/// The greeting sent on connect (QMP spec, "Server Greeting"). We offer no capabilities (no
/// "oob"). Member order follows what QEMU prints.
pub fn greeting(package: &str) -> String {
    let (major, minor, micro) = QEMU_VERSION;
    line(&json!({
        "QMP": {
            "version": {"qemu": {"micro": micro, "minor": minor, "major": major}, "package": package},
            "capabilities": []
        }
    }))
}

/// The `query-version` return value (and the greeting's "version" member).
pub fn version_info(package: &str) -> Value {
    let (major, minor, micro) = QEMU_VERSION;
    json!({"qemu": {"micro": micro, "minor": minor, "major": major}, "package": package})
}

/// `{"return": value, "id": id}` (QMP spec, "Success").
pub fn success_response(value: Value, id: Option<&Value>) -> String {
    let mut m = Map::new();
    m.insert("return".into(), value);
    if let Some(id) = id {
        m.insert("id".into(), id.clone());
    }
    line(&Value::Object(m))
}

/// `{"error": {"class": .., "desc": ..}, "id": id}` (QMP spec, "Error").
pub fn error_response(error: &QmpError, id: Option<&Value>) -> String {
    let mut m = Map::new();
    m.insert("error".into(), json!({"class": error.class.as_str(), "desc": error.desc}));
    if let Some(id) = id {
        m.insert("id".into(), id.clone());
    }
    line(&Value::Object(m))
}

/// `{"timestamp": {"seconds": s, "microseconds": us}, "event": name, "data": {...}}` (QMP spec,
/// "Asynchronous events"). The timestamp is wall-clock time as QEMU uses (g_get_real_time);
/// "data" is omitted for events that carry none, as QEMU does for e.g. STOP.
pub fn event_message(name: &str, data: Option<&Map<String, Value>>, now: SystemTime) -> String {
    let since = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let mut m = Map::new();
    m.insert("timestamp".into(), json!({"seconds": since.as_secs(), "microseconds": since.subsec_micros()}));
    m.insert("event".into(), Value::String(name.to_owned()));
    if let Some(d) = data {
        m.insert("data".into(), Value::Object(d.clone()));
    }
    line(&Value::Object(m))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::qmp::error::ErrorClass;

    fn frames(chunks: &[&[u8]]) -> Vec<Frame> {
        let mut f = Framer::new();
        let mut out = Vec::new();
        for c in chunks {
            f.push(c, &mut out);
        }
        out
    }

    fn msg(s: &str) -> Frame {
        Frame::Message(s.as_bytes().to_vec())
    }

    #[test]
    fn framer_splits_objects_across_and_within_reads() {
        assert_eq!(
            frames(&[b"{\"execute\":", b" \"a\"}\r\n{\"exe", b"cute\":\"b\"}{\"x\":\"}{\"}"]),
            vec![msg("{\"execute\": \"a\"}"), msg("{\"execute\":\"b\"}"), msg("{\"x\":\"}{\"}")]
        );
    }

    #[test]
    fn framer_ends_garbage_at_newline_and_multiline_objects_survive() {
        assert_eq!(
            frames(&[b"foo bar\r\n  \r\n{\n\"a\": [1,\n2]\n}"]),
            vec![msg("foo bar\r"), msg("{\n\"a\": [1,\n2]\n}")]
        );
    }

    #[test]
    fn framer_escaped_quote_and_control_char_in_string() {
        assert_eq!(frames(&[br#"{"a":"x\"}"}"#]), vec![msg(r#"{"a":"x\"}"}"#)]);
        // An unterminated string ends at the newline instead of swallowing later commands.
        assert_eq!(frames(&[b"{\"a\":\"oops\n{\"b\":1}"]), vec![msg("{\"a\":\"oops\n"), msg("{\"b\":1}")]);
    }

    #[test]
    fn framer_reports_overlong_message() {
        let big = vec![b'['; MAX_MESSAGE_BYTES + 10];
        assert_eq!(frames(&[&big]), vec![Frame::TooLong]);
    }

    #[test]
    fn parse_command_accepts_and_echoes_any_id() {
        let c = parse_command(br#"{"execute":"eject","arguments":{"id":"ide-5632"},"id":{"k":[1]}}"#).unwrap();
        assert_eq!(c.name, "eject");
        assert_eq!(c.id, Some(json!({"k": [1]})));
        assert_eq!(c.arguments.get("id"), Some(&json!("ide-5632")));
        assert!(parse_command(br#"{"execute":"x"}"#).unwrap().arguments.is_empty());
    }

    #[test]
    fn parse_command_rejections_match_qemu() {
        let cases: &[(&[u8], &str, Option<Value>)] = &[
            (b"[1]", "QMP input must be a JSON object", None),
            (br#"{"id":3}"#, "QMP input lacks member 'execute'", Some(json!(3))),
            (br#"{"execute":1,"id":"a"}"#, "QMP input member 'execute' must be a string", Some(json!("a"))),
            (br#"{"execute":"x","arguments":[]}"#, "QMP input member 'arguments' must be an object", None),
            (br#"{"execute":"x","exec-oob":"y"}"#, "QMP input member 'exec-oob' is unexpected", None),
        ];
        for (input, desc, id) in cases {
            let e = parse_command(input).unwrap_err();
            assert_eq!(e.error.class, ErrorClass::GenericError);
            assert_eq!(e.error.desc, *desc);
            assert_eq!(&e.id, id);
        }
        let e = parse_command(b"{\"execute\": tru}").unwrap_err();
        assert!(e.error.desc.starts_with("JSON parse error, "), "{}", e.error.desc);
    }

    #[test]
    fn parse_command_survives_hostile_input() {
        let deep = "[".repeat(100_000);
        assert!(parse_command(deep.as_bytes()).is_err());
        assert!(parse_command(&[0xff, 0xfe, b'{']).is_err());
        assert!(parse_command(b"").is_err());
        assert!(parse_command(br#"{"execute":"\ud800"}"#).is_err());
    }

    #[test]
    fn responses_are_single_crlf_lines() {
        let ok = success_response(json!({}), Some(&json!(7)));
        assert_eq!(ok, "{\"return\":{},\"id\":7}\r\n");
        let err = error_response(&QmpError::command_not_found("foo"), None);
        assert_eq!(
            err,
            "{\"error\":{\"class\":\"CommandNotFound\",\"desc\":\"The command foo has not been found\"}}\r\n"
        );
        let t = UNIX_EPOCH + std::time::Duration::from_micros(1_700_000_000_123_456);
        assert_eq!(
            event_message("STOP", None, t),
            "{\"timestamp\":{\"seconds\":1700000000,\"microseconds\":123456},\"event\":\"STOP\"}\r\n"
        );
    }

    /// xorshift64*: deterministic pseudo-random input without extra crates.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    #[test]
    fn any_chunking_of_a_command_stream_yields_the_same_commands() {
        let cmds = [
            r#"{"execute":"qmp_capabilities","id":1}"#,
            r#"{"execute": "add-fd", "arguments": {"opaque": "raw:/img/a b,\"c\"}{"}, "id": "x"}"#,
            "{\n  \"execute\": \"query-status\"\n}",
            r#"{"execute":"eject","arguments":{"id":"ide-5632","force":true},"id":[1,{"a":[]}]}"#,
        ];
        let stream: String = cmds.iter().map(|c| format!("{c}\r\n")).collect();
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for _ in 0..200 {
            let mut framer = Framer::new();
            let mut out = Vec::new();
            let bytes = stream.as_bytes();
            let mut pos = 0;
            while pos < bytes.len() {
                let n = 1 + rng.below(40).min(bytes.len() - pos - 1);
                framer.push(&bytes[pos..pos + n], &mut out);
                pos += n;
            }
            let parsed: Vec<Command> = out
                .iter()
                .map(|f| match f {
                    Frame::Message(m) => parse_command(m).unwrap(),
                    Frame::TooLong => panic!("unexpected TooLong"),
                })
                .collect();
            let names: Vec<&str> = parsed.iter().map(|c| c.name.as_str()).collect();
            assert_eq!(names, ["qmp_capabilities", "add-fd", "query-status", "eject"]);
        }
    }

    #[test]
    fn mutated_and_random_input_never_panics() {
        let seed = br#"{"execute":"blockdev-change-medium","arguments":{"id":"ide-5632","filename":"/dev/fdset/0","format":"raw"},"id":3}"#;
        let alphabet = b"{}[]\":,\\ \r\nux0aetrl-\xff\x00";
        let mut rng = Rng(42);
        for round in 0..3000 {
            let mut input = seed.to_vec();
            for _ in 0..1 + rng.below(8) {
                let at = rng.below(input.len() + 1);
                let b = alphabet[rng.below(alphabet.len())];
                match rng.below(3) {
                    0 if at < input.len() => input[at] = b,
                    1 if at < input.len() => {
                        input.remove(at);
                    }
                    _ => input.insert(at, b),
                }
            }
            if round % 3 == 0 {
                input = (0..rng.below(300)).map(|_| alphabet[rng.below(alphabet.len())]).collect();
            }
            let _ = parse_command(&input);
            let mut framer = Framer::new();
            let mut out = Vec::new();
            framer.push(&input, &mut out);
            for f in out {
                if let Frame::Message(m) = f {
                    let _ = parse_command(&m);
                }
            }
        }
    }
}
