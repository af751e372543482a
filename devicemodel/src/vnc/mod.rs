//! The VNC server (RFC 6143), compatible with what libxl and xl expect of QEMU's.
//!
//! - [`VncConfig`]: `-vnc HOST:DISPLAY[,password=on][,to=N]`, `-vnc unix:PATH`, `-vnc none`.
//! - [`VncServer`]: the listener and its clients; QMP's query-vnc, passwords and events.
//! - [`client`]: the handshake, the reader of client messages and the writer of updates.
//! - [`encoding`] (Raw, ZRLE), [`pixel`] (client pixel formats), [`auth`] (VNC Authentication),
//!   [`keymap`] (QEMU keymap files), [`input`] (events to the guest), [`spec`] (constants).

pub mod auth;
pub mod client;
pub mod encoding;
pub mod input;
pub mod keymap;
mod keysym_names;
pub mod pixel;
pub mod spec;

#[cfg(test)]
mod tests;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use serde_json::{json, Value};

use crate::console::Console;
use crate::qmp::EventSender;
use client::{Authenticator, ClientShared};
use input::InputRouter;
use keymap::Keymap;

/// Where the server listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VncListen {
    /// `HOST:DISPLAY`: TCP port 5900 + display; with `to=N`, the next displays up to N when
    /// the port is taken. An empty host is every address.
    Tcp {
        host: String,
        display: u16,
        to: Option<u16>,
    },
    Unix(PathBuf),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VncConfig {
    pub listen: VncListen,
    /// `password=on`: VNC Authentication; clients are refused until QMP sets a password.
    pub password: bool,
    /// `share=`: what a client asking for exclusive access (ClientInit shared-flag 0) gets.
    pub share: SharePolicy,
}

/// QEMU's `-vnc ...,share=` (ui/vnc.c protocol_client_init).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SharePolicy {
    /// `allow-exclusive` (the default): an exclusive client disconnects the others, and
    /// while one is connected shared clients are refused.
    #[default]
    AllowExclusive,
    /// `force-shared`: clients asking for exclusive access are refused.
    ForceShared,
    /// `ignore`: the flag is ignored; everybody shares.
    Ignore,
}

/// QEMU's TCP port base for VNC displays.
pub const PORT_BASE: u16 = 5900;
/// Clients at once (beyond it, new connections are closed).
pub const MAX_CLIENTS: usize = 16;
/// Connections at once, handshaking ones included (each has a thread; a connection flood
/// must not create threads without bound).
pub const MAX_CONNECTIONS: usize = 32;
/// A client whose socket does not take our update within this is dropped.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// The handshake must be done within this.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

impl VncConfig {
    /// Parses `-vnc VALUE`; `Ok(None)` for `-vnc none`.
    pub fn parse(value: &str) -> Result<Option<VncConfig>, String> {
        let opts = crate::cli::split_opts(value);
        let Some((_, first)) = opts.first().filter(|(k, _)| k.is_empty()) else {
            return Err(format!("-vnc {value}: expected HOST:DISPLAY, unix:PATH or none first"));
        };
        if first == "none" {
            return Ok(None);
        }
        let mut listen = if let Some(path) = first.strip_prefix("unix:") {
            if path.is_empty() {
                return Err(format!("-vnc {value}: unix: needs a socket path"));
            }
            VncListen::Unix(PathBuf::from(path))
        } else {
            let (host, display) = first.rsplit_once(':').ok_or_else(|| {
                format!("-vnc {value}: expected HOST:DISPLAY (e.g. 127.0.0.1:0 for port 5900), unix:PATH or none")
            })?;
            let display: u16 = display
                .parse()
                .ok()
                .filter(|d| u32::from(*d) + u32::from(PORT_BASE) <= 65535)
                .ok_or_else(|| format!("-vnc {value}: display '{display}' is not a number from 0 to 59635"))?;
            let host = host.trim_start_matches('[').trim_end_matches(']').to_string();
            VncListen::Tcp { host, display, to: None }
        };
        let mut password = false;
        let mut share = SharePolicy::default();
        for (k, v) in &opts[1..] {
            let on = || match v.as_str() {
                "" | "on" | "yes" | "true" => Ok(true),
                "off" | "no" | "false" => Ok(false),
                _ => Err(format!("-vnc {value}: {k}={v}: expected on or off")),
            };
            match k.as_str() {
                "password" => password = on()?,
                "share" => {
                    share = match v.as_str() {
                        "allow-exclusive" => SharePolicy::AllowExclusive,
                        "force-shared" => SharePolicy::ForceShared,
                        "ignore" => SharePolicy::Ignore,
                        _ => {
                            return Err(format!(
                                "-vnc {value}: share={v}: expected allow-exclusive, force-shared or ignore"
                            ))
                        }
                    }
                }
                "to" => {
                    let to: u16 = v.parse().map_err(|_| format!("-vnc {value}: to={v} is not a display number"))?;
                    match &mut listen {
                        VncListen::Tcp { display, to: t, .. } => {
                            if to < *display || u32::from(to) + u32::from(PORT_BASE) > 65535 {
                                return Err(format!(
                                    "-vnc {value}: to={to} must be a display number from {display} to 59635"
                                ));
                            }
                            *t = Some(to);
                        }
                        VncListen::Unix(_) => return Err(format!("-vnc {value}: to= applies to TCP displays only")),
                    }
                }
                // Accepted, no effect here: we adapt nothing and have no audio.
                "lossy" | "non-adaptive" | "connections" | "key-delay-ms" | "audiodev" | "id" | "display"
                | "power-control" => {}
                "tls-creds" | "tls-authz" | "sasl" | "sasl-authz" | "x509" | "x509verify" | "websocket" | "reverse"
                | "password-secret" | "acl" => {
                    return Err(format!(
                        "-vnc {value}: '{k}' is not supported (VNC here offers no authentication or 'password=on'; \
                         tunnel over SSH for encryption)"
                    ))
                }
                _ => return Err(format!("-vnc {value}: unknown option '{k}' (password, to)")),
            }
        }
        Ok(Some(VncConfig { listen, password, share }))
    }
}

/// The address the server listens on, as query-vnc reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoundAddress {
    pub host: String,
    pub service: String,
    pub family: &'static str,
}

enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener, PathBuf),
}

/// A client socket (both halves of it).
enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Stream {
    fn try_clone(&self) -> std::io::Result<Stream> {
        Ok(match self {
            Stream::Tcp(s) => Stream::Tcp(s.try_clone()?),
            Stream::Unix(s) => Stream::Unix(s.try_clone()?),
        })
    }
    fn set_timeouts(&self, read: Option<Duration>, write: Option<Duration>) -> std::io::Result<()> {
        match self {
            Stream::Tcp(s) => {
                s.set_read_timeout(read)?;
                s.set_write_timeout(write)?;
                s.set_nodelay(true)
            }
            Stream::Unix(s) => {
                s.set_read_timeout(read)?;
                s.set_write_timeout(write)
            }
        }
    }
    fn shutdown(&self) {
        let _ = match self {
            Stream::Tcp(s) => s.shutdown(std::net::Shutdown::Both),
            Stream::Unix(s) => s.shutdown(std::net::Shutdown::Both),
        };
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            Stream::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            Stream::Unix(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Stream::Tcp(s) => s.flush(),
            Stream::Unix(s) => s.flush(),
        }
    }
}

/// The password and its expiry (QMP change-vnc-password, set_password, expire_password).
#[derive(Default)]
struct Password {
    value: Option<Vec<u8>>,
    expires: Option<SystemTime>,
}

/// A connected client, as QMP lists it.
struct ClientEntry {
    id: u64,
    peer: BoundAddress,
    stream: Stream,
    shared: Arc<ClientShared>,
    exclusive: bool,
}

struct Inner {
    console: Console,
    config: VncConfig,
    bound: BoundAddress,
    name: String,
    password: Mutex<Password>,
    input: InputRouter,
    clients: Mutex<Vec<ClientEntry>>,
    next_client: AtomicU64,
    /// Connections being served (handshaking or initialized).
    connections: std::sync::atomic::AtomicUsize,
    events: EventSender,
    stopping: AtomicBool,
    write_timeout: Duration,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Authenticator for Inner {
    fn security_type(&self) -> u8 {
        if self.config.password {
            spec::SECURITY_VNC_AUTH
        } else {
            spec::SECURITY_NONE
        }
    }
    fn password(&self) -> Option<Vec<u8>> {
        let p = lock(&self.password);
        if p.expires.is_some_and(|t| SystemTime::now() >= t) {
            return None;
        }
        p.value.clone()
    }
}

/// What starts a VNC server.
pub struct VncOptions {
    pub config: VncConfig,
    /// `-k`: the keymap to always map keysyms through; None: en-us, and ExtKeyEvent scancodes
    /// are used as they come.
    pub keymap: Option<String>,
    /// The desktop name clients show (QEMU: "QEMU" or "QEMU (NAME)" with `-name`).
    pub name: String,
    pub write_timeout: Duration,
}

impl VncOptions {
    pub fn new(config: VncConfig) -> Self {
        VncOptions { config, keymap: None, name: "QEMU".into(), write_timeout: WRITE_TIMEOUT }
    }
}

/// A running VNC server; cheap to clone.
#[derive(Clone)]
pub struct VncServer {
    inner: Arc<Inner>,
}

fn bind(listen: &VncListen) -> Result<(Listener, BoundAddress), String> {
    match listen {
        VncListen::Unix(path) => {
            // A stale socket from an earlier run would make bind fail; QEMU unlinks it too.
            if std::fs::symlink_metadata(path).is_ok_and(|m| {
                use std::os::unix::fs::FileTypeExt;
                m.file_type().is_socket()
            }) {
                let _ = std::fs::remove_file(path);
            }
            let l = UnixListener::bind(path).map_err(|e| format!("-vnc unix:{}: {e}", path.display()))?;
            let bound = BoundAddress { host: path.display().to_string(), service: String::new(), family: "unix" };
            Ok((Listener::Unix(l, path.clone()), bound))
        }
        VncListen::Tcp { host, display, to } => {
            let host_str = if host.is_empty() { "0.0.0.0" } else { host.as_str() };
            let last = to.unwrap_or(*display);
            let mut last_err = None;
            for d in *display..=last {
                let port = PORT_BASE + d;
                match TcpListener::bind((host_str, port)) {
                    Ok(l) => {
                        let addr = l.local_addr().map_err(|e| format!("-vnc: {e}"))?;
                        let bound = BoundAddress {
                            host: addr.ip().to_string(),
                            service: addr.port().to_string(),
                            family: if addr.is_ipv4() { "ipv4" } else { "ipv6" },
                        };
                        return Ok((Listener::Tcp(l), bound));
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => last_err = Some(e),
                    Err(e) => return Err(format!("-vnc {host}:{d}: cannot listen on {host_str} port {port}: {e}")),
                }
            }
            Err(format!(
                "-vnc {host}:{display}: ports {} to {} are all in use ({}); pick another display or add to=N",
                PORT_BASE + display,
                PORT_BASE + last,
                last_err.map(|e| e.to_string()).unwrap_or_default()
            ))
        }
    }
}

impl VncServer {
    /// Listens as `options` say and serves `console` to every client. `events` gets the
    /// VNC_CONNECTED / VNC_INITIALIZED / VNC_DISCONNECTED QMP events.
    pub fn start(options: VncOptions, console: Console, events: EventSender) -> Result<VncServer, String> {
        let keymap = match &options.keymap {
            Some(name) => Keymap::load(name)?,
            None => Keymap::default_en_us(),
        };
        let (listener, bound) = bind(&options.config.listen)?;
        let inner = Arc::new(Inner {
            input: InputRouter::new(console.clone(), keymap, options.keymap.is_some()),
            console,
            config: options.config,
            bound,
            name: options.name,
            password: Mutex::new(Password::default()),
            clients: Mutex::new(Vec::new()),
            next_client: AtomicU64::new(1),
            connections: std::sync::atomic::AtomicUsize::new(0),
            events,
            stopping: AtomicBool::new(false),
            write_timeout: options.write_timeout,
        });
        let server = VncServer { inner: inner.clone() };
        match &listener {
            Listener::Tcp(_) => log::info!("VNC server running on {}:{}", inner.bound.host, inner.bound.service),
            Listener::Unix(_, p) => log::info!("VNC server running on unix:{}", p.display()),
        }
        std::thread::Builder::new()
            .name("vnc-listen".into())
            .spawn(move || accept_loop(&inner, listener))
            .map_err(|e| format!("VNC: cannot start the listener thread: {e}"))?;
        Ok(server)
    }

    pub fn address(&self) -> &BoundAddress {
        &self.inner.bound
    }

    pub fn clients(&self) -> usize {
        lock(&self.inner.clients).len()
    }

    /// Updates sent to each client so far, oldest client first (for tests).
    pub fn updates_sent(&self) -> Vec<u64> {
        lock(&self.inner.clients).iter().map(|c| c.shared.lock().updates_sent).collect()
    }

    fn auth_name(&self) -> &'static str {
        if self.inner.config.password {
            "vnc"
        } else {
            "none"
        }
    }

    /// QMP `query-vnc` (VncInfo).
    pub fn query(&self) -> Value {
        let b = &self.inner.bound;
        let clients: Vec<Value> = lock(&self.inner.clients)
            .iter()
            .map(|c| json!({"host": c.peer.host, "service": c.peer.service, "family": c.peer.family, "websocket": false}))
            .collect();
        json!({
            "enabled": true,
            "host": b.host,
            "family": b.family,
            "service": b.service,
            "auth": self.auth_name(),
            "clients": clients,
        })
    }

    /// QMP `query-vnc-servers` (one VncInfo2).
    pub fn query_servers(&self) -> Value {
        let b = &self.inner.bound;
        let auth = self.auth_name();
        let clients: Vec<Value> = lock(&self.inner.clients)
            .iter()
            .map(|c| json!({"host": c.peer.host, "service": c.peer.service, "family": c.peer.family, "websocket": false}))
            .collect();
        json!([{
            "id": "default",
            "server": [{"host": b.host, "service": b.service, "family": b.family, "websocket": false, "auth": auth}],
            "clients": clients,
            "auth": auth,
        }])
    }

    /// Whether passwords apply (`password=on`).
    pub fn password_enabled(&self) -> bool {
        self.inner.config.password
    }

    /// Sets the password (QEMU vnc_display_password: the expiry stays as it was).
    pub fn set_password(&self, password: &str) {
        lock(&self.inner.password).value = Some(password.as_bytes().to_vec());
    }

    /// Sets when the password expires (None: never).
    pub fn expire_password(&self, at: Option<SystemTime>) {
        lock(&self.inner.password).expires = at;
    }

    fn server_info(&self) -> Value {
        let b = &self.inner.bound;
        json!({"host": b.host, "service": b.service, "family": b.family, "websocket": false, "auth": self.auth_name()})
    }

    /// Stops listening and drops every client (tests; the process exit does it otherwise).
    pub fn shutdown(&self) {
        self.inner.stopping.store(true, Ordering::SeqCst);
        // Wake the accept: a connection to ourselves.
        match &self.inner.config.listen {
            VncListen::Unix(p) => {
                let _ = UnixStream::connect(p);
            }
            VncListen::Tcp { .. } => {
                let host = match self.inner.bound.host.as_str() {
                    "0.0.0.0" => "127.0.0.1".to_string(),
                    "::" => "::1".to_string(),
                    h => h.to_string(),
                };
                if let Ok(port) = self.inner.bound.service.parse::<u16>() {
                    let _ = TcpStream::connect((host.as_str(), port));
                }
            }
        }
        for c in lock(&self.inner.clients).iter() {
            c.stream.shutdown();
            c.shared.close();
        }
    }
}

fn accept_loop(inner: &Arc<Inner>, listener: Listener) {
    loop {
        let accepted = match &listener {
            Listener::Tcp(l) => l.accept().map(|(s, a)| {
                let peer = BoundAddress {
                    host: a.ip().to_string(),
                    service: a.port().to_string(),
                    family: if a.is_ipv4() { "ipv4" } else { "ipv6" },
                };
                (Stream::Tcp(s), peer)
            }),
            Listener::Unix(l, path) => l.accept().map(|(s, _)| {
                (
                    Stream::Unix(s),
                    BoundAddress { host: path.display().to_string(), service: String::new(), family: "unix" },
                )
            }),
        };
        if inner.stopping.load(Ordering::SeqCst) {
            if let Listener::Unix(_, p) = &listener {
                let _ = std::fs::remove_file(p);
            }
            return;
        }
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                log::warn!("VNC: accept: {e}");
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        if lock(&inner.clients).len() >= MAX_CLIENTS || inner.connections.load(Ordering::SeqCst) >= MAX_CONNECTIONS {
            log::warn!(
                "VNC: {}:{} refused: already {MAX_CLIENTS} clients or {MAX_CONNECTIONS} connections",
                peer.host,
                peer.service
            );
            continue;
        }
        inner.connections.fetch_add(1, Ordering::SeqCst);
        let served = inner.clone();
        let spawned = std::thread::Builder::new().name("vnc-client".into()).spawn(move || {
            serve_client(&served, stream, peer);
            served.connections.fetch_sub(1, Ordering::SeqCst);
        });
        if let Err(e) = spawned {
            inner.connections.fetch_sub(1, Ordering::SeqCst);
            log::warn!("VNC: cannot start a client thread: {e}");
        }
    }
}

fn client_json(peer: &BoundAddress) -> Value {
    json!({"host": peer.host, "service": peer.service, "family": peer.family, "websocket": false})
}

fn serve_client(inner: &Arc<Inner>, mut stream: Stream, peer: BoundAddress) {
    let server = VncServer { inner: inner.clone() };
    let who = format!("{}:{}", peer.host, peer.service);
    inner.events.send("VNC_CONNECTED", json!({"server": server.server_info(), "client": client_json(&peer)}));
    if let Err(e) = stream.set_timeouts(Some(HANDSHAKE_TIMEOUT), Some(inner.write_timeout)) {
        log::warn!("VNC {who}: {e}");
        return;
    }
    inner.console.refresh_now();
    let size = {
        let fb = inner.console.picture();
        (fb.width(), fb.height())
    };
    let hs = match client::handshake(&mut stream, &**inner, size, &inner.name) {
        Ok(h) => h,
        Err(e) => {
            log::info!("VNC {who}: {e}");
            inner
                .events
                .send("VNC_DISCONNECTED", json!({"server": server.server_info(), "client": client_json(&peer)}));
            return;
        }
    };
    log::info!("VNC {who}: connected (RFB 3.{}, {} client)", hs.minor, if hs.shared { "shared" } else { "exclusive" });
    if let Err(e) = stream.set_timeouts(None, Some(inner.write_timeout)) {
        log::warn!("VNC {who}: {e}");
        return;
    }
    let shared = Arc::new(ClientShared::new(size.0, size.1));
    let id = inner.next_client.fetch_add(1, Ordering::Relaxed);
    let (writer_stream, closer) = match (stream.try_clone(), stream.try_clone()) {
        (Ok(w), Ok(c)) => (w, c),
        (Err(e), _) | (_, Err(e)) => {
            log::warn!("VNC {who}: {e}");
            return;
        }
    };
    let exclusive = !hs.shared && inner.config.share != SharePolicy::Ignore;
    {
        let mut clients = lock(&inner.clients);
        let refuse = match inner.config.share {
            SharePolicy::AllowExclusive => !exclusive && clients.iter().any(|c| c.exclusive),
            SharePolicy::ForceShared => exclusive,
            SharePolicy::Ignore => false,
        };
        if refuse {
            drop(clients);
            log::info!("VNC {who}: refused by the share policy ({:?})", inner.config.share);
            stream.shutdown();
            inner
                .events
                .send("VNC_DISCONNECTED", json!({"server": server.server_info(), "client": client_json(&peer)}));
            return;
        }
        if exclusive {
            // An exclusive client takes the display: the others are disconnected.
            for c in clients.iter() {
                log::info!("VNC {}:{}: disconnected for an exclusive client", c.peer.host, c.peer.service);
                c.stream.shutdown();
                c.shared.close();
            }
        }
        clients.push(ClientEntry { id, peer: peer.clone(), stream: closer, shared: shared.clone(), exclusive });
    }
    let listener: Arc<dyn crate::console::ConsoleListener> = shared.clone();
    let guard = inner.console.add_listener(Arc::downgrade(&listener));
    inner.events.send("VNC_INITIALIZED", json!({"server": server.server_info(), "client": client_json(&peer)}));
    let writer = {
        let shared = shared.clone();
        let inner = inner.clone();
        let who = who.clone();
        std::thread::Builder::new().name("vnc-writer".into()).spawn(move || {
            let mut w = writer_stream;
            let absolute = || inner.console.pointer().is_some_and(|p| p.absolute());
            if let Err(e) = client::write_updates(&mut w, &shared, &inner.console, &absolute) {
                log::info!(
                    "VNC {who}: dropped: {e} (a client that does not read its updates within {:?})",
                    inner.write_timeout
                );
            }
            // Unblocks the reader.
            w.shutdown();
        })
    };
    let result = client::read_messages(&mut stream, &shared, &inner.input, &inner.console);
    if let Err(e) = &result {
        log::info!("VNC {who}: {e}; disconnecting");
    }
    shared.close();
    stream.shutdown();
    if let Ok(w) = writer {
        let _ = w.join();
    }
    drop(guard);
    drop(listener);
    inner.input.release_all();
    lock(&inner.clients).retain(|c| c.id != id);
    log::info!("VNC {who}: disconnected");
    inner.events.send("VNC_DISCONNECTED", json!({"server": server.server_info(), "client": client_json(&peer)}));
}
