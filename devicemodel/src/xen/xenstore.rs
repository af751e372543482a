//! A xenstore client speaking the wire protocol of Xen's `xen/include/public/io/xs_wire.h` over
//! the xenstored Unix socket (dom0) or `/dev/xen/xenbus` (a stub domain has no socket).
//!
//! A message is a header `{u32 type, u32 req_id, u32 tx_id, u32 len}` (native endian, x86 LE)
//! followed by `len <= 4096` payload bytes. Requests carry NUL-separated strings; replies echo
//! `req_id`; errors are `XS_ERROR` with an errno name ("ENOENT"). Watch events arrive unsolicited
//! as `XS_WATCH_EVENT` with `path\0token\0`, so one reader thread splits the stream: replies go to
//! the (one) waiting request, events to a channel. A reply from the daemon is untrusted input in a
//! stub domain's view of the world, so every length is bounded and nothing in here panics on a
//! malformed message: a framing error ends the connection and every later call fails cleanly.

use std::fmt;
use std::fs::OpenOptions;
use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::Mutex;
use std::time::Duration;

// Message types (xs_wire.h `enum xsd_sockmsg_type`).
pub const XS_DIRECTORY: u32 = 1;
pub const XS_READ: u32 = 2;
pub const XS_GET_PERMS: u32 = 3;
pub const XS_WATCH: u32 = 4;
pub const XS_UNWATCH: u32 = 5;
pub const XS_TRANSACTION_START: u32 = 6;
pub const XS_TRANSACTION_END: u32 = 7;
pub const XS_GET_DOMAIN_PATH: u32 = 10;
pub const XS_WRITE: u32 = 11;
pub const XS_MKDIR: u32 = 12;
pub const XS_RM: u32 = 13;
pub const XS_SET_PERMS: u32 = 14;
pub const XS_WATCH_EVENT: u32 = 15;
pub const XS_ERROR: u32 = 16;

/// `XENSTORE_PAYLOAD_MAX`.
pub const PAYLOAD_MAX: usize = 4096;
/// `XENSTORE_ABS_PATH_MAX`.
pub const PATH_MAX: usize = 3072;
/// `sizeof(struct xsd_sockmsg)`.
pub const HEADER_SIZE: usize = 16;
/// No transaction (`XBT_NULL`).
pub const XBT_NULL: u32 = 0;

pub const SOCKET_PATHS: [&str; 2] = ["/run/xenstored/socket", "/var/run/xenstored/socket"];
pub const XENBUS_PATH: &str = "/dev/xen/xenbus";

/// How long a request waits for its reply.
const REPLY_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug)]
pub enum XsError {
    /// xenstored refused the request, with this errno name (e.g. "ENOENT", "EACCES", "EAGAIN").
    Errno(String),
    /// A request we refuse to send (NUL in a path, too long).
    Invalid(String),
    /// The reply or the stream was malformed; the connection is closed.
    Protocol(String),
    /// The connection is gone (EOF, error, or an earlier protocol error).
    Disconnected,
    Timeout,
    Io(io::Error),
}

impl fmt::Display for XsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            XsError::Errno(e) => write!(f, "xenstore: {e}"),
            XsError::Invalid(e) => write!(f, "xenstore request refused: {e}"),
            XsError::Protocol(e) => write!(f, "xenstore protocol error: {e}"),
            XsError::Disconnected => write!(f, "xenstore connection lost"),
            XsError::Timeout => write!(f, "xenstore did not answer within {}s", REPLY_TIMEOUT.as_secs()),
            XsError::Io(e) => write!(f, "xenstore: {e}"),
        }
    }
}

impl std::error::Error for XsError {}

impl XsError {
    pub fn is_enoent(&self) -> bool {
        matches!(self, XsError::Errno(e) if e == "ENOENT")
    }
}

/// `struct xsd_sockmsg`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub ty: u32,
    pub req_id: u32,
    pub tx_id: u32,
    pub len: u32,
}

impl Header {
    pub fn encode(&self) -> [u8; HEADER_SIZE] {
        let mut b = [0u8; HEADER_SIZE];
        for (i, v) in [self.ty, self.req_id, self.tx_id, self.len].into_iter().enumerate() {
            b[i * 4..i * 4 + 4].copy_from_slice(&v.to_le_bytes());
        }
        b
    }

    /// Parses a header; a payload length beyond the protocol maximum is a framing error.
    pub fn decode(b: &[u8; HEADER_SIZE]) -> Result<Self, XsError> {
        let f = |i: usize| u32::from_le_bytes([b[i * 4], b[i * 4 + 1], b[i * 4 + 2], b[i * 4 + 3]]);
        let h = Header { ty: f(0), req_id: f(1), tx_id: f(2), len: f(3) };
        if h.len as usize > PAYLOAD_MAX {
            return Err(XsError::Protocol(format!("message of {} bytes (maximum {PAYLOAD_MAX})", h.len)));
        }
        Ok(h)
    }
}

/// A fired watch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatchEvent {
    pub path: String,
    pub token: String,
}

/// Splits `path\0token\0` (the token may be followed by more fields in future; ignored).
pub fn parse_watch_event(payload: &[u8]) -> Option<WatchEvent> {
    let mut parts = payload.split(|&b| b == 0);
    let path = std::str::from_utf8(parts.next()?).ok()?.to_string();
    let token = std::str::from_utf8(parts.next()?).ok()?.to_string();
    (!path.is_empty()).then_some(WatchEvent { path, token })
}

/// A reply: header and payload.
type Message = (Header, Vec<u8>);

fn check_path(path: &str) -> Result<(), XsError> {
    if path.is_empty() || path.len() > PATH_MAX || path.contains('\0') {
        return Err(XsError::Invalid(format!("bad path {path:?}")));
    }
    Ok(())
}

/// Strings joined with NULs, each terminated.
fn nul_terminated(parts: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for p in parts {
        out.extend_from_slice(p);
        out.push(0);
    }
    out
}

fn strip_nul(mut b: Vec<u8>) -> Vec<u8> {
    if b.last() == Some(&0) {
        b.pop();
    }
    b
}

/// A xenstore connection.
pub struct Xenstore {
    writer: Mutex<Box<dyn Write + Send>>,
    /// Held for the whole request so that replies come back to the request that is waiting.
    replies: Mutex<Receiver<Result<Message, XsError>>>,
    events: Mutex<Option<Receiver<WatchEvent>>>,
    next_req: AtomicU32,
    /// Unblocks the reader on drop (sockets only).
    socket: Option<UnixStream>,
}

impl Xenstore {
    /// Connects to xenstored: `$XENSTORED_PATH`, the standard sockets, then `/dev/xen/xenbus`.
    pub fn open() -> Result<Self, String> {
        let mut tried = Vec::new();
        let env = std::env::var("XENSTORED_PATH").ok();
        for path in env.iter().map(String::as_str).chain(SOCKET_PATHS) {
            match UnixStream::connect(path) {
                Ok(s) => return Self::from_socket(s).map_err(|e| format!("{path}: {e}")),
                Err(e) => tried.push(format!("{path}: {e}")),
            }
        }
        match OpenOptions::new().read(true).write(true).open(XENBUS_PATH) {
            Ok(f) => {
                let r = f.try_clone().map_err(|e| format!("{XENBUS_PATH}: {e}"))?;
                Ok(Self::from_streams(r, f, None))
            }
            Err(e) => {
                tried.push(format!("{XENBUS_PATH}: {e}"));
                Err(format!("cannot reach xenstore ({})", tried.join("; ")))
            }
        }
    }

    pub fn from_socket(s: UnixStream) -> io::Result<Self> {
        let r = s.try_clone()?;
        let shutdown = s.try_clone()?;
        Ok(Self::from_streams(r, s, Some(shutdown)))
    }

    fn from_streams(
        reader: impl Read + Send + 'static,
        writer: impl Write + Send + 'static,
        socket: Option<UnixStream>,
    ) -> Self {
        let (reply_tx, reply_rx) = mpsc::channel();
        let (event_tx, event_rx) = mpsc::channel();
        let spawned =
            std::thread::Builder::new().name("xenstore".into()).spawn(move || read_loop(reader, reply_tx, event_tx));
        if let Err(e) = spawned {
            log::error!("cannot start the xenstore reader thread: {e}");
        }
        Xenstore {
            writer: Mutex::new(Box::new(writer)),
            replies: Mutex::new(reply_rx),
            events: Mutex::new(Some(event_rx)),
            next_req: AtomicU32::new(1),
            socket,
        }
    }

    /// The channel of fired watches (can be taken once).
    pub fn watch_events(&self) -> Option<Receiver<WatchEvent>> {
        self.events.lock().unwrap().take()
    }

    /// Sends one request and waits for its reply.
    pub fn request(&self, ty: u32, tx_id: u32, payload: &[u8]) -> Result<Vec<u8>, XsError> {
        if payload.len() > PAYLOAD_MAX {
            return Err(XsError::Invalid(format!("payload of {} bytes", payload.len())));
        }
        let replies = self.replies.lock().unwrap();
        let req_id = self.next_req.fetch_add(1, Ordering::Relaxed);
        let mut msg = Header { ty, req_id, tx_id, len: payload.len() as u32 }.encode().to_vec();
        msg.extend_from_slice(payload);
        // One write: /dev/xen/xenbus wants whole messages.
        self.writer.lock().unwrap().write_all(&msg).map_err(XsError::Io)?;
        loop {
            let (h, body) = match replies.recv_timeout(REPLY_TIMEOUT) {
                Ok(r) => r?,
                Err(RecvTimeoutError::Timeout) => return Err(XsError::Timeout),
                Err(RecvTimeoutError::Disconnected) => return Err(XsError::Disconnected),
            };
            if h.req_id != req_id {
                log::debug!("xenstore: dropping a reply to request {} while waiting for {req_id}", h.req_id);
                continue;
            }
            return match h.ty {
                XS_ERROR => Err(XsError::Errno(String::from_utf8_lossy(&strip_nul(body)).into_owned())),
                t if t == ty => Ok(body),
                t => Err(XsError::Protocol(format!("reply of type {t} to a request of type {ty}"))),
            };
        }
    }

    pub fn read(&self, path: &str) -> Result<Vec<u8>, XsError> {
        self.read_in(XBT_NULL, path)
    }

    pub fn read_in(&self, tx: u32, path: &str) -> Result<Vec<u8>, XsError> {
        check_path(path)?;
        self.request(XS_READ, tx, &nul_terminated(&[path.as_bytes()]))
    }

    /// Reads a value as text (lossily: values are bytes).
    pub fn read_string(&self, path: &str) -> Result<String, XsError> {
        self.read(path).map(|v| String::from_utf8_lossy(&v).into_owned())
    }

    pub fn write(&self, path: &str, value: &[u8]) -> Result<(), XsError> {
        self.write_in(XBT_NULL, path, value)
    }

    pub fn write_in(&self, tx: u32, path: &str, value: &[u8]) -> Result<(), XsError> {
        check_path(path)?;
        // `path\0value`, the value not terminated.
        let mut payload = nul_terminated(&[path.as_bytes()]);
        payload.extend_from_slice(value);
        self.request(XS_WRITE, tx, &payload).map(drop)
    }

    pub fn mkdir(&self, path: &str) -> Result<(), XsError> {
        check_path(path)?;
        self.request(XS_MKDIR, XBT_NULL, &nul_terminated(&[path.as_bytes()])).map(drop)
    }

    pub fn rm(&self, path: &str) -> Result<(), XsError> {
        check_path(path)?;
        self.request(XS_RM, XBT_NULL, &nul_terminated(&[path.as_bytes()])).map(drop)
    }

    /// The names of `path`'s children.
    pub fn directory(&self, path: &str) -> Result<Vec<String>, XsError> {
        check_path(path)?;
        let body = self.request(XS_DIRECTORY, XBT_NULL, &nul_terminated(&[path.as_bytes()]))?;
        Ok(body.split(|&b| b == 0).filter(|s| !s.is_empty()).map(|s| String::from_utf8_lossy(s).into_owned()).collect())
    }

    /// `/local/domain/<domid>`, as xenstored says.
    pub fn get_domain_path(&self, domid: u32) -> Result<String, XsError> {
        let body = self.request(XS_GET_DOMAIN_PATH, XBT_NULL, &nul_terminated(&[domid.to_string().as_bytes()]))?;
        Ok(String::from_utf8_lossy(&strip_nul(body)).into_owned())
    }

    /// Permissions as xenstored spells them (`n0`, `r5`, ...: first the owner and default).
    pub fn get_perms(&self, path: &str) -> Result<Vec<String>, XsError> {
        check_path(path)?;
        let body = self.request(XS_GET_PERMS, XBT_NULL, &nul_terminated(&[path.as_bytes()]))?;
        Ok(body.split(|&b| b == 0).filter(|s| !s.is_empty()).map(|s| String::from_utf8_lossy(s).into_owned()).collect())
    }

    pub fn set_perms(&self, path: &str, perms: &[&str]) -> Result<(), XsError> {
        check_path(path)?;
        let mut parts: Vec<&[u8]> = vec![path.as_bytes()];
        parts.extend(perms.iter().map(|p| p.as_bytes()));
        self.request(XS_SET_PERMS, XBT_NULL, &nul_terminated(&parts)).map(drop)
    }

    /// Watches `path` (and everything below it); events carry `token`. xenstored fires each new
    /// watch once right away.
    pub fn watch(&self, path: &str, token: &str) -> Result<(), XsError> {
        check_path(path)?;
        self.request(XS_WATCH, XBT_NULL, &nul_terminated(&[path.as_bytes(), token.as_bytes()])).map(drop)
    }

    pub fn unwatch(&self, path: &str, token: &str) -> Result<(), XsError> {
        check_path(path)?;
        self.request(XS_UNWATCH, XBT_NULL, &nul_terminated(&[path.as_bytes(), token.as_bytes()])).map(drop)
    }

    pub fn transaction_start(&self) -> Result<u32, XsError> {
        let body = self.request(XS_TRANSACTION_START, XBT_NULL, &[0])?;
        let text = String::from_utf8_lossy(&strip_nul(body)).into_owned();
        text.parse().map_err(|_| XsError::Protocol(format!("transaction id {text:?}")))
    }

    /// Commits (or aborts) transaction `tx`. `Errno("EAGAIN")` means it conflicted: retry it.
    pub fn transaction_end(&self, tx: u32, commit: bool) -> Result<(), XsError> {
        self.request(XS_TRANSACTION_END, tx, if commit { b"T\0" } else { b"F\0" }).map(drop)
    }
}

impl Drop for Xenstore {
    fn drop(&mut self) {
        if let Some(s) = &self.socket {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
    }
}

/// Reads messages until EOF or a framing error, routing replies and watch events.
fn read_loop(mut reader: impl Read, replies: Sender<Result<Message, XsError>>, events: Sender<WatchEvent>) {
    loop {
        let mut hb = [0u8; HEADER_SIZE];
        if reader.read_exact(&mut hb).is_err() {
            return; // EOF or error: dropping the senders reports Disconnected
        }
        let header = match Header::decode(&hb) {
            Ok(h) => h,
            Err(e) => {
                log::error!("{e}; closing the xenstore connection");
                let _ = replies.send(Err(e));
                return;
            }
        };
        let mut body = vec![0u8; header.len as usize];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        if header.ty == XS_WATCH_EVENT {
            match parse_watch_event(&body) {
                Some(ev) => {
                    let _ = events.send(ev);
                }
                None => log::warn!("xenstore: malformed watch event dropped"),
            }
        } else if replies.send(Ok((header, body))).is_err() {
            return;
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn read_msg(s: &mut UnixStream) -> Option<(Header, Vec<u8>)> {
        let mut hb = [0u8; HEADER_SIZE];
        s.read_exact(&mut hb).ok()?;
        let h = Header::decode(&hb).ok()?;
        let mut body = vec![0u8; h.len as usize];
        s.read_exact(&mut body).ok()?;
        Some((h, body))
    }

    fn send(s: &mut UnixStream, ty: u32, req_id: u32, body: &[u8]) {
        let mut m = Header { ty, req_id, tx_id: 0, len: body.len() as u32 }.encode().to_vec();
        m.extend_from_slice(body);
        s.write_all(&m).unwrap();
    }

    /// A small xenstored: a flat key/value map, watches that fire on writes below them, and one
    /// domain path. It speaks the protocol; it is not the thing under test.
    fn fake_xenstored(mut s: UnixStream) {
        let mut store: BTreeMap<String, Vec<u8>> = BTreeMap::new();
        let mut watches: Vec<(String, String)> = Vec::new();
        while let Some((h, body)) = read_msg(&mut s) {
            let strings: Vec<String> =
                body.split(|&b| b == 0).map(|p| String::from_utf8_lossy(p).into_owned()).collect();
            let ok = b"OK\0".to_vec();
            let reply: Result<Vec<u8>, &str> = match h.ty {
                XS_READ => store.get(&strings[0]).cloned().ok_or("ENOENT"),
                XS_WRITE => {
                    let nul = body.iter().position(|&b| b == 0).unwrap();
                    let path = strings[0].clone();
                    store.insert(path.clone(), body[nul + 1..].to_vec());
                    for (w, token) in &watches {
                        if path.starts_with(w.as_str()) {
                            send(&mut s, XS_WATCH_EVENT, 0, &nul_terminated(&[path.as_bytes(), token.as_bytes()]));
                        }
                    }
                    Ok(ok)
                }
                XS_MKDIR => {
                    store.entry(strings[0].clone()).or_default();
                    Ok(ok)
                }
                XS_RM => store.remove(&strings[0]).map(|_| ok).ok_or("ENOENT"),
                XS_DIRECTORY => {
                    let prefix = format!("{}/", strings[0]);
                    let names: Vec<&[u8]> = store
                        .keys()
                        .filter_map(|k| k.strip_prefix(&prefix))
                        .filter(|k| !k.contains('/'))
                        .map(str::as_bytes)
                        .collect();
                    Ok(nul_terminated(&names))
                }
                XS_GET_DOMAIN_PATH => Ok(format!("/local/domain/{}\0", strings[0]).into_bytes()),
                XS_WATCH => {
                    watches.push((strings[0].clone(), strings[1].clone()));
                    send(&mut s, XS_WATCH, h.req_id, &ok);
                    send(&mut s, XS_WATCH_EVENT, 0, &nul_terminated(&[strings[0].as_bytes(), strings[1].as_bytes()]));
                    continue;
                }
                XS_TRANSACTION_START => Ok(b"42\0".to_vec()),
                XS_TRANSACTION_END => {
                    if h.tx_id == 42 {
                        Ok(ok)
                    } else {
                        Err("EINVAL")
                    }
                }
                _ => Err("ENOSYS"),
            };
            match reply {
                Ok(b) => send(&mut s, h.ty, h.req_id, &b),
                Err(e) => send(&mut s, XS_ERROR, h.req_id, &nul_terminated(&[e.as_bytes()])),
            }
        }
    }

    /// A client connected to a fake daemon of its own (for the tests of other xenstore users).
    pub(crate) fn connected() -> Xenstore {
        let (client, server) = UnixStream::pair().unwrap();
        std::thread::spawn(move || fake_xenstored(server));
        Xenstore::from_socket(client).unwrap()
    }

    #[test]
    fn header_layout_and_bounds() {
        assert_eq!(std::mem::size_of::<Header>(), HEADER_SIZE);
        let h = Header { ty: XS_WRITE, req_id: 7, tx_id: 9, len: 4096 };
        assert_eq!(Header::decode(&h.encode()).unwrap(), h);
        assert_eq!(&h.encode()[..4], &[11, 0, 0, 0]);
        assert!(matches!(Header::decode(&Header { len: 4097, ..h }.encode()), Err(XsError::Protocol(_))));
    }

    #[test]
    fn read_write_mkdir_rm_directory() {
        let xs = connected();
        let home = xs.get_domain_path(0).unwrap();
        assert_eq!(home, "/local/domain/0");
        let state = format!("{home}/device-model/5/state");
        xs.write(&state, b"running").unwrap();
        assert_eq!(xs.read_string(&state).unwrap(), "running");
        xs.mkdir(&format!("{home}/device-model/5/backends")).unwrap();
        let mut names = xs.directory(&format!("{home}/device-model/5")).unwrap();
        names.sort();
        assert_eq!(names, vec!["backends", "state"]);
        xs.rm(&state).unwrap();
        let e = xs.read(&state).unwrap_err();
        assert!(e.is_enoent(), "{e}");
        assert!(matches!(xs.write("bad\0path", b""), Err(XsError::Invalid(_))));
        assert!(matches!(xs.read(&"x".repeat(PATH_MAX + 1)), Err(XsError::Invalid(_))));
    }

    #[test]
    fn binary_values_round_trip() {
        let xs = connected();
        let v: Vec<u8> = (0..=255u8).collect();
        xs.write("/v", &v).unwrap();
        assert_eq!(xs.read("/v").unwrap(), v);
    }

    #[test]
    fn watch_events_arrive_on_their_own_channel_between_replies() {
        let xs = connected();
        let events = xs.watch_events().unwrap();
        assert!(xs.watch_events().is_none(), "the channel is taken once");
        xs.watch("/local/domain/0/device-model/5", "dm").unwrap();
        // The initial event, then one per write below the watched path.
        xs.write("/local/domain/0/device-model/5/command", b"continue").unwrap();
        assert_eq!(xs.read_string("/local/domain/0/device-model/5/command").unwrap(), "continue");
        let got: Vec<WatchEvent> = (0..2).map(|_| events.recv_timeout(Duration::from_secs(5)).unwrap()).collect();
        assert_eq!(got[0], WatchEvent { path: "/local/domain/0/device-model/5".into(), token: "dm".into() });
        assert_eq!(got[1].path, "/local/domain/0/device-model/5/command");
    }

    #[test]
    fn transactions() {
        let xs = connected();
        let tx = xs.transaction_start().unwrap();
        assert_eq!(tx, 42);
        xs.write_in(tx, "/a", b"1").unwrap();
        xs.transaction_end(tx, true).unwrap();
        assert!(matches!(xs.transaction_end(7, false), Err(XsError::Errno(e)) if e == "EINVAL"));
    }

    #[test]
    fn malformed_replies_fail_cleanly() {
        // A daemon that answers every request with garbage of various kinds.
        let (client, mut server) = UnixStream::pair().unwrap();
        std::thread::spawn(move || {
            // 1: a reply with someone else's id, then the real one with the wrong type.
            let (h, _) = read_msg(&mut server).unwrap();
            send(&mut server, XS_READ, h.req_id + 100, b"stale");
            send(&mut server, XS_DIRECTORY, h.req_id, b"");
            // 2: a transaction id that is not a number.
            let (h, _) = read_msg(&mut server).unwrap();
            send(&mut server, XS_TRANSACTION_START, h.req_id, b"x\xff\0");
            // 3: a malformed watch event, then a header claiming 1 MiB of payload.
            let (h, _) = read_msg(&mut server).unwrap();
            send(&mut server, XS_WATCH_EVENT, 0, b"");
            let mut bad = Header { ty: XS_READ, req_id: h.req_id, tx_id: 0, len: 1 << 20 }.encode().to_vec();
            bad.extend_from_slice(&[0; 64]);
            server.write_all(&bad).unwrap();
            let _ = read_msg(&mut server);
        });
        let xs = Xenstore::from_socket(client).unwrap();
        assert!(matches!(xs.read("/a"), Err(XsError::Protocol(_))));
        assert!(matches!(xs.transaction_start(), Err(XsError::Protocol(_))));
        assert!(matches!(xs.read("/b"), Err(XsError::Protocol(_))));
        assert!(matches!(xs.read("/c"), Err(XsError::Disconnected)), "the connection stays closed");
    }

    #[test]
    fn watch_event_parsing() {
        assert_eq!(parse_watch_event(b"/a/b\0tok\0"), Some(WatchEvent { path: "/a/b".into(), token: "tok".into() }));
        assert_eq!(parse_watch_event(b"/a/b\0tok"), Some(WatchEvent { path: "/a/b".into(), token: "tok".into() }));
        assert_eq!(parse_watch_event(b"/a/b"), None);
        assert_eq!(parse_watch_event(b"\0tok\0"), None);
        assert_eq!(parse_watch_event(b"\xff\0t\0"), None);
    }
}
