//! A small QMP client for scenario scripts in L2 (busybox has no unix-socket client).
//!
//! ```text
//! qmp SOCKET [OPTION | COMMAND]...
//!   COMMAND            a JSON command object, sent as is; its reply is awaited. `@FDSET@` in it
//!                      is replaced by the "fdset-id" of the latest add-fd reply (libxl sends
//!                      add-fd, then uses the fd set QEMU chose)
//!   --fd FILE          open FILE read-only and pass the fd (SCM_RIGHTS) with the next COMMAND
//!   --raw TEXT         send TEXT verbatim (plus a newline), e.g. malformed JSON; await one reply
//!   --no-caps          do not send qmp_capabilities after the greeting
//!   --sleep SECS       pause (events arriving meanwhile are printed)
//!   --events N         after the commands, wait until N events in all have been seen
//!   --only NAME        count only events called NAME (others are still printed)
//!   --wait SECS        how long --events waits (default 10)
//!   --timeout SECS     how long to wait for each reply (default 10)
//!   --connect-wait SECS  retry connecting while the socket does not accept yet (default 10)
//!   --expect-close     after the commands, wait for the server to close the connection
//!   --flat             also print every reply flattened, one `path=value` line per leaf
//!                      (e.g. `return[0].tray_open=true`)
//! ```
//!
//! Prints the greeting, every reply (but that to its own qmp_capabilities, unless an error) and
//! every event, one JSON object per line, compacted
//! (no whitespace outside strings; member order as received), plus `qmp: ...` status lines.
//! Each event is also summarized as `event NAME key=value...` (data members flattened and
//! sorted), and with --flat each reply as `path=value` lines: these forms do not depend on
//! the server's member order or spacing, so the same expectations hold for QEMU and for us. Exit status: 0 when
//! every command got a reply (success or error) and every wait was satisfied; 1 on a timeout,
//! a connection failure or an unexpected close; 2 on a usage error.

use std::io::{self, Read, Write};
use std::os::unix::io::AsRawFd;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

#[derive(Debug)]
enum Step {
    Command { text: String, fd: Option<String> },
    Sleep(f64),
}

struct Args {
    socket: String,
    steps: Vec<Step>,
    caps: bool,
    events: usize,
    wait: f64,
    timeout: f64,
    connect_wait: f64,
    expect_close: bool,
    flat: bool,
    only: Option<String>,
}

fn usage(msg: &str) -> ! {
    eprintln!("qmp: {msg}\nusage: qmp SOCKET [--fd FILE] [--raw TEXT] [--no-caps] [--sleep S] [--events N] [--wait S] [--timeout S] [--connect-wait S] [--expect-close] 'JSON'...");
    std::process::exit(2)
}

fn parse_args() -> Args {
    let mut it = std::env::args().skip(1);
    let socket = it.next().unwrap_or_else(|| usage("missing SOCKET"));
    let mut a = Args {
        socket,
        steps: Vec::new(),
        caps: true,
        events: 0,
        wait: 10.0,
        timeout: 10.0,
        connect_wait: 10.0,
        expect_close: false,
        flat: false,
        only: None,
    };
    let mut pending_fd = None;
    while let Some(arg) = it.next() {
        let mut val = |what: &str| it.next().unwrap_or_else(|| usage(&format!("{arg} needs {what}")));
        let secs = |s: String| -> f64 { s.parse().unwrap_or_else(|_| usage(&format!("bad number {s:?}"))) };
        match arg.as_str() {
            "--fd" => pending_fd = Some(val("a file")),
            "--raw" => {
                let text = val("text");
                a.steps.push(Step::Command { text, fd: pending_fd.take() })
            }
            "--no-caps" => a.caps = false,
            "--sleep" => a.steps.push(Step::Sleep(secs(val("seconds")))),
            "--events" => a.events = val("a count").parse().unwrap_or_else(|_| usage("bad --events")),
            "--wait" => a.wait = secs(val("seconds")),
            "--timeout" => a.timeout = secs(val("seconds")),
            "--connect-wait" => a.connect_wait = secs(val("seconds")),
            "--expect-close" => a.expect_close = true,
            "--flat" => a.flat = true,
            "--only" => a.only = Some(val("an event name")),
            s if s.starts_with("--") => usage(&format!("unknown option {s}")),
            _ => a.steps.push(Step::Command { text: arg, fd: pending_fd.take() }),
        }
    }
    if pending_fd.is_some() {
        usage("--fd must precede a command");
    }
    a
}

/// Splits a byte stream into top-level JSON values (objects), tracking strings and nesting.
#[derive(Default)]
struct Framer {
    buf: Vec<u8>,
}

impl Framer {
    fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The next complete top-level value, with all whitespace outside strings removed.
    fn next(&mut self) -> Option<String> {
        let start = self.buf.iter().position(|b| !b.is_ascii_whitespace())?;
        let (mut depth, mut in_str, mut esc) = (0usize, false, false);
        let mut out = Vec::new();
        for i in start..self.buf.len() {
            let b = self.buf[i];
            if in_str {
                out.push(b);
                match (esc, b) {
                    (true, _) => esc = false,
                    (false, b'\\') => esc = true,
                    (false, b'"') => in_str = false,
                    _ => {}
                }
                continue;
            }
            match b {
                b'"' => in_str = true,
                b'{' | b'[' => depth += 1,
                b'}' | b']' => depth = depth.saturating_sub(1),
                b' ' | b'\t' | b'\n' | b'\r' => continue,
                _ => {}
            }
            out.push(b);
            if depth == 0 {
                self.buf.drain(..=i);
                return Some(String::from_utf8_lossy(&out).into_owned());
            }
        }
        None
    }
}

/// A parsed JSON value; objects keep their member order.
#[derive(Debug, Clone, PartialEq)]
enum Json {
    Null,
    Bool(bool),
    /// Kept as written.
    Num(String),
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(String, Json)>),
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }
    fn eat(&mut self, c: u8) -> Result<(), String> {
        self.ws();
        if self.s.get(self.i) == Some(&c) {
            self.i += 1;
            Ok(())
        } else {
            Err(format!("expected '{}' at byte {}", c as char, self.i))
        }
    }
    fn value(&mut self, depth: usize) -> Result<Json, String> {
        if depth > 64 {
            return Err("nested too deeply".into());
        }
        self.ws();
        match self.s.get(self.i).copied() {
            Some(b'{') => {
                self.i += 1;
                let mut m = Vec::new();
                self.ws();
                if self.s.get(self.i) == Some(&b'}') {
                    self.i += 1;
                    return Ok(Json::Obj(m));
                }
                loop {
                    self.ws();
                    let k = self.string()?;
                    self.eat(b':')?;
                    m.push((k, self.value(depth + 1)?));
                    self.ws();
                    match self.s.get(self.i) {
                        Some(b',') => self.i += 1,
                        Some(b'}') => {
                            self.i += 1;
                            return Ok(Json::Obj(m));
                        }
                        _ => return Err(format!("bad object at byte {}", self.i)),
                    }
                }
            }
            Some(b'[') => {
                self.i += 1;
                let mut v = Vec::new();
                self.ws();
                if self.s.get(self.i) == Some(&b']') {
                    self.i += 1;
                    return Ok(Json::Arr(v));
                }
                loop {
                    v.push(self.value(depth + 1)?);
                    self.ws();
                    match self.s.get(self.i) {
                        Some(b',') => self.i += 1,
                        Some(b']') => {
                            self.i += 1;
                            return Ok(Json::Arr(v));
                        }
                        _ => return Err(format!("bad array at byte {}", self.i)),
                    }
                }
            }
            Some(b'"') => Ok(Json::Str(self.string()?)),
            Some(b't') if self.s[self.i..].starts_with(b"true") => {
                self.i += 4;
                Ok(Json::Bool(true))
            }
            Some(b'f') if self.s[self.i..].starts_with(b"false") => {
                self.i += 5;
                Ok(Json::Bool(false))
            }
            Some(b'n') if self.s[self.i..].starts_with(b"null") => {
                self.i += 4;
                Ok(Json::Null)
            }
            Some(c) if c == b'-' || c.is_ascii_digit() => {
                let st = self.i;
                while self.i < self.s.len() && matches!(self.s[self.i], b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')
                {
                    self.i += 1;
                }
                Ok(Json::Num(String::from_utf8_lossy(&self.s[st..self.i]).into_owned()))
            }
            _ => Err(format!("unexpected input at byte {}", self.i)),
        }
    }
    fn string(&mut self) -> Result<String, String> {
        if self.s.get(self.i) != Some(&b'"') {
            return Err(format!("expected a string at byte {}", self.i));
        }
        self.i += 1;
        let mut out = Vec::new();
        while let Some(&c) = self.s.get(self.i) {
            self.i += 1;
            match c {
                b'"' => return Ok(String::from_utf8_lossy(&out).into_owned()),
                b'\\' => {
                    let e = *self.s.get(self.i).ok_or("truncated escape")?;
                    self.i += 1;
                    match e {
                        b'n' => out.push(b'\n'),
                        b't' => out.push(b'\t'),
                        b'r' => out.push(b'\r'),
                        b'b' => out.push(8),
                        b'f' => out.push(12),
                        b'u' => {
                            let h = self.s.get(self.i..self.i + 4).ok_or("truncated \\u")?;
                            let n = u32::from_str_radix(&String::from_utf8_lossy(h), 16).map_err(|_| "bad \\u")?;
                            self.i += 4;
                            let ch = char::from_u32(n).unwrap_or('\u{fffd}');
                            out.extend_from_slice(ch.to_string().as_bytes());
                        }
                        other => out.push(other),
                    }
                }
                _ => out.push(c),
            }
        }
        Err("unterminated string".into())
    }
}

fn parse_json(text: &str) -> Result<Json, String> {
    let mut p = Parser { s: text.as_bytes(), i: 0 };
    let v = p.value(0)?;
    p.ws();
    if p.i != p.s.len() {
        return Err(format!("trailing input at byte {}", p.i));
    }
    Ok(v)
}

fn scalar(v: &Json) -> String {
    match v {
        Json::Null => "null".into(),
        Json::Bool(b) => b.to_string(),
        Json::Num(n) => n.clone(),
        Json::Str(s) => s.clone(),
        Json::Arr(a) if a.is_empty() => "[]".into(),
        Json::Obj(o) if o.is_empty() => "{}".into(),
        _ => String::new(),
    }
}

/// Leaves of `v` as (path, value): `a.b[0].c`.
fn flatten(v: &Json, path: &str, out: &mut Vec<(String, String)>) {
    match v {
        Json::Obj(m) if !m.is_empty() => {
            for (k, x) in m {
                let p = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
                flatten(x, &p, out);
            }
        }
        Json::Arr(a) if !a.is_empty() => {
            for (i, x) in a.iter().enumerate() {
                flatten(x, &format!("{path}[{i}]"), out);
            }
        }
        _ => out.push((path.to_string(), scalar(v))),
    }
}

fn member<'a>(v: &'a Json, key: &str) -> Option<&'a Json> {
    match v {
        Json::Obj(m) => m.iter().find(|(k, _)| k == key).map(|(_, x)| x),
        _ => None,
    }
}

/// `event NAME k=v ...`: the event's data members flattened and sorted by path.
fn event_summary(v: &Json) -> Option<String> {
    let Some(Json::Str(name)) = member(v, "event") else {
        return None;
    };
    let mut leaves = Vec::new();
    if let Some(d) = member(v, "data") {
        flatten(d, "", &mut leaves);
    }
    leaves.sort();
    let mut s = format!("event {name}");
    for (k, x) in leaves {
        s += &format!(" {k}={x}");
    }
    Some(s)
}

/// Top-level member names of a JSON object (enough to tell replies from events).
fn top_keys(obj: &str) -> Vec<String> {
    let b = obj.as_bytes();
    let (mut depth, mut in_str, mut esc) = (0usize, false, false);
    let mut keys = Vec::new();
    let mut cur: Option<Vec<u8>> = None;
    let mut expect_key = false;
    for &c in b {
        if in_str {
            if esc {
                esc = false;
            } else if c == b'\\' {
                esc = true;
            } else if c == b'"' {
                in_str = false;
                if let Some(k) = cur.take() {
                    keys.push(String::from_utf8_lossy(&k).into_owned());
                }
                continue;
            }
            if let Some(k) = cur.as_mut() {
                k.push(c);
            }
            continue;
        }
        match c {
            b'"' => {
                in_str = true;
                if depth == 1 && expect_key {
                    cur = Some(Vec::new());
                    expect_key = false;
                }
            }
            b'{' | b'[' => {
                depth += 1;
                if depth == 1 {
                    expect_key = true;
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            b',' if depth == 1 => expect_key = true,
            _ => {}
        }
    }
    keys
}

struct Conn {
    flat: bool,
    only: Option<String>,
    sock: UnixStream,
    framer: Framer,
    events: usize,
    closed: bool,
    /// The "fdset-id" member of the latest reply that had one.
    fdset: Option<u64>,
    /// Do not print the next reply if it is a success (our own qmp_capabilities).
    hide_next_success: bool,
}

/// The number after the first `"fdset-id":` in a reply.
fn fdset_id(reply: &str) -> Option<u64> {
    let i = reply.find("\"fdset-id\"")? + "\"fdset-id\"".len();
    let rest = reply[i..].trim_start().strip_prefix(':')?.trim_start();
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    digits.parse().ok()
}

enum Msg {
    Reply,
    Event,
    Other,
}

impl Conn {
    /// Reads until a message arrives (printed before returning) or the deadline passes.
    fn read_msg(&mut self, deadline: Instant) -> io::Result<Option<Msg>> {
        loop {
            if let Some(m) = self.framer.next() {
                let keys = top_keys(&m);
                let has = |k: &str| keys.iter().any(|x| x == k);
                if (has("return") || has("error")) && std::mem::take(&mut self.hide_next_success) && has("return") {
                    return Ok(Some(Msg::Reply));
                }
                println!("{m}");
                match parse_json(&m) {
                    Ok(v) => {
                        if let Some(e) = event_summary(&v) {
                            println!("{e}");
                        } else if self.flat && (has("return") || has("error")) {
                            let mut leaves = Vec::new();
                            flatten(&v, "", &mut leaves);
                            for (k, x) in leaves {
                                println!("{k}={x}");
                            }
                        }
                    }
                    Err(e) => println!("qmp: malformed JSON from the server ({e}): {m}"),
                }
                let _ = io::stdout().flush();
                return Ok(Some(if has("event") {
                    let counted = match &self.only {
                        Some(n) => m.contains(&format!("\"event\":\"{n}\"")),
                        None => true,
                    };
                    if counted {
                        self.events += 1;
                    }
                    Msg::Event
                } else if has("return") || has("error") {
                    if let Some(id) = fdset_id(&m) {
                        self.fdset = Some(id);
                    }
                    Msg::Reply
                } else {
                    Msg::Other
                }));
            }
            if self.closed {
                return Ok(None);
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(io::Error::new(io::ErrorKind::TimedOut, "timeout"));
            }
            self.sock.set_read_timeout(Some((deadline - now).max(Duration::from_millis(1))))?;
            let mut buf = [0u8; 65536];
            match self.sock.read(&mut buf) {
                Ok(0) => self.closed = true,
                Ok(n) => self.framer.push(&buf[..n]),
                Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => self.closed = true,
                Err(e) => return Err(e),
            }
        }
    }

    /// Sends one command (with an fd if given) and waits for its reply.
    fn command(&mut self, text: &str, fd: Option<&std::fs::File>, timeout: f64) -> Result<(), String> {
        let text = match (text.contains("@FDSET@"), self.fdset) {
            (false, _) => text.to_string(),
            (true, Some(id)) => text.replace("@FDSET@", &id.to_string()),
            (true, None) => return Err("@FDSET@ used before any reply carried an fdset-id".into()),
        };
        let mut line = text.into_bytes();
        line.push(b'\n');
        match fd {
            Some(f) => send_with_fd(&self.sock, &line, f.as_raw_fd()).map_err(|e| format!("sendmsg: {e}"))?,
            None => self.sock.write_all(&line).map_err(|e| format!("write: {e}"))?,
        }
        let deadline = Instant::now() + Duration::from_secs_f64(timeout);
        loop {
            match self.read_msg(deadline) {
                Ok(Some(Msg::Reply)) => return Ok(()),
                Ok(Some(_)) => {}
                Ok(None) => return Err("connection closed before the reply".into()),
                Err(e) if e.kind() == io::ErrorKind::TimedOut => return Err(format!("no reply within {timeout}s")),
                Err(e) => return Err(format!("read: {e}")),
            }
        }
    }
}

// SCM_RIGHTS by hand: the nested-tests crate has no dependencies, and std's ancillary-data
// API is unstable. Layouts are Linux x86_64's (glibc and musl agree: musl's padding fields
// are zero here).
#[repr(C)]
struct IoVec {
    base: *const u8,
    len: usize,
}

#[repr(C)]
struct MsgHdr {
    name: *mut u8,
    namelen: u32,
    iov: *const IoVec,
    iovlen: usize,
    control: *mut u8,
    controllen: usize,
    flags: i32,
}

extern "C" {
    fn sendmsg(fd: i32, msg: *const MsgHdr, flags: i32) -> isize;
}

fn send_with_fd(sock: &UnixStream, data: &[u8], fd: i32) -> io::Result<()> {
    const SOL_SOCKET: i32 = 1;
    const SCM_RIGHTS: i32 = 1;
    // struct cmsghdr { size_t len; int level; int type; } + one int, padded to 8: CMSG_SPACE(4) = 24.
    let mut control = [0u64; 3];
    let cmsg_len: usize = 16 + 4;
    control[0] = cmsg_len as u64;
    control[1] = (SOL_SOCKET as u32 as u64) | ((SCM_RIGHTS as u32 as u64) << 32);
    control[2] = fd as u32 as u64;
    let iov = IoVec { base: data.as_ptr(), len: data.len() };
    let msg = MsgHdr {
        name: std::ptr::null_mut(),
        namelen: 0,
        iov: &iov,
        iovlen: 1,
        control: control.as_mut_ptr() as *mut u8,
        controllen: std::mem::size_of_val(&control),
        flags: 0,
    };
    // SAFETY: msg points at live, correctly laid out iovec and control buffers for the duration
    // of the call; the kernel only reads them.
    let n = unsafe { sendmsg(sock.as_raw_fd(), &msg, 0) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let n = n as usize;
    if n < data.len() {
        // The fd went with the first byte; the rest is plain data.
        let mut s = sock;
        s.write_all(&data[n..])?;
    }
    Ok(())
}

fn connect(path: &str, wait: f64) -> Result<UnixStream, String> {
    let deadline = Instant::now() + Duration::from_secs_f64(wait);
    loop {
        match UnixStream::connect(path) {
            Ok(s) => return Ok(s),
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => return Err(format!("connect {path}: {e}")),
        }
    }
}

fn run(a: Args) -> Result<(), String> {
    let sock = connect(&a.socket, a.connect_wait)?;
    let mut c = Conn {
        flat: a.flat,
        only: a.only.clone(),
        sock,
        framer: Framer::default(),
        events: 0,
        closed: false,
        fdset: None,
        hide_next_success: false,
    };
    // Greeting: {"QMP": {...}}
    let deadline = Instant::now() + Duration::from_secs_f64(a.timeout);
    match c.read_msg(deadline) {
        Ok(Some(_)) => {}
        Ok(None) => return Err("connection closed before the greeting".into()),
        Err(e) => return Err(format!("no greeting: {e}")),
    }
    if a.caps {
        c.hide_next_success = true;
        c.command(r#"{"execute":"qmp_capabilities"}"#, None, a.timeout)?;
    }
    for step in &a.steps {
        match step {
            Step::Command { text, fd } => {
                let file = match fd {
                    Some(p) => Some(std::fs::File::open(p).map_err(|e| format!("--fd {p}: {e}"))?),
                    None => None,
                };
                c.command(text, file.as_ref(), a.timeout)?;
            }
            Step::Sleep(s) => {
                let deadline = Instant::now() + Duration::from_secs_f64(*s);
                loop {
                    match c.read_msg(deadline) {
                        Ok(Some(_)) => {}
                        Ok(None) => {
                            std::thread::sleep(deadline.saturating_duration_since(Instant::now()));
                            break;
                        }
                        Err(e) if e.kind() == io::ErrorKind::TimedOut => break,
                        Err(e) => return Err(format!("read: {e}")),
                    }
                }
            }
        }
    }
    if a.events > 0 {
        let deadline = Instant::now() + Duration::from_secs_f64(a.wait);
        while c.events < a.events {
            match c.read_msg(deadline) {
                Ok(Some(_)) => {}
                Ok(None) => return Err(format!("connection closed after {} of {} events", c.events, a.events)),
                Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                    return Err(format!(
                        "timeout after {}s waiting for events: got {} of {}",
                        a.wait, c.events, a.events
                    ))
                }
                Err(e) => return Err(format!("read: {e}")),
            }
        }
        println!("qmp: got {} events", c.events);
    }
    if a.expect_close {
        let deadline = Instant::now() + Duration::from_secs_f64(a.wait);
        loop {
            match c.read_msg(deadline) {
                Ok(Some(_)) => {}
                Ok(None) => {
                    println!("qmp: connection closed by the server");
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                    return Err(format!("server kept the connection open for {}s", a.wait))
                }
                Err(e) => {
                    println!("qmp: connection closed by the server ({e})");
                    break;
                }
            }
        }
    }
    Ok(())
}

fn main() {
    let a = parse_args();
    match run(a) {
        Ok(()) => {}
        Err(e) => {
            println!("qmp: error: {e}");
            std::process::exit(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framer_splits_objects_and_squeezes_newlines() {
        let mut f = Framer::default();
        f.push(b"{\"QMP\": {\"v\": 1}}\r\n{\"return\"");
        assert_eq!(f.next().unwrap(), "{\"QMP\":{\"v\":1}}");
        assert_eq!(f.next(), None);
        f.push(b": {}}\n{\"event\": \"X\", \"data\": {\"s\": \"a} \\\"\\n{\"}}\n");
        assert_eq!(f.next().unwrap(), "{\"return\":{}}");
        assert_eq!(f.next().unwrap(), "{\"event\":\"X\",\"data\":{\"s\":\"a} \\\"\\n{\"}}");
        assert_eq!(f.next(), None);
    }

    #[test]
    fn json_parse_flatten_and_summaries_ignore_order_and_spacing() {
        let q = parse_json(r#"{"timestamp": {"seconds": 1}, "event": "DEVICE_TRAY_MOVED", "data": {"device": "ide-5632", "tray-open": true, "id": "ide-5632"}}"#).unwrap();
        let o = parse_json(r#"{"event":"DEVICE_TRAY_MOVED","data":{"device":"ide-5632","id":"ide-5632","tray-open":true},"timestamp":{"seconds":1}}"#).unwrap();
        let want = "event DEVICE_TRAY_MOVED device=ide-5632 id=ide-5632 tray-open=true";
        assert_eq!(event_summary(&q).unwrap(), want);
        assert_eq!(event_summary(&o).unwrap(), want);
        let r = parse_json(
            r#"{"return": [{"device": "d", "inserted": {"ro": true, "file": "a \"b\"\u00e9"}, "x": [], "n": -1.5e3}]}"#,
        )
        .unwrap();
        let mut l = Vec::new();
        flatten(&r, "", &mut l);
        let l: Vec<String> = l.into_iter().map(|(k, v)| format!("{k}={v}")).collect();
        assert_eq!(
            l,
            [
                "return[0].device=d",
                "return[0].inserted.ro=true",
                "return[0].inserted.file=a \"b\"\u{e9}",
                "return[0].x=[]",
                "return[0].n=-1.5e3"
            ]
        );
        assert!(parse_json("{\"a\": }").is_err());
        assert!(parse_json("{\"a\": 1} x").is_err());
    }

    #[test]
    fn fdset_id_from_add_fd_reply() {
        assert_eq!(fdset_id(r#"{"return": {"fdset-id": 7, "fd": 25}}"#), Some(7));
        assert_eq!(fdset_id(r#"{"return":{"fd":3,"fdset-id":12}}"#), Some(12));
        assert_eq!(fdset_id(r#"{"return": {}}"#), None);
    }

    #[test]
    fn top_keys_ignores_nested_members() {
        assert_eq!(top_keys(r#"{"return": {"event": 1}, "id": "x"}"#), vec!["return", "id"]);
        assert_eq!(
            top_keys(r#"{"event":"STOP","data":{"error":1},"timestamp":{}}"#),
            vec!["event", "data", "timestamp"]
        );
        assert_eq!(top_keys(r#"{"error": {"class": "GenericError", "desc": "a \"return\""}}"#), vec!["error"]);
    }
}
