//! The QMP socket server: listeners, one thread pair per connection, shutdown.
//!
//! One acceptor thread polls every listening socket. Each connection gets a reader thread (reads
//! with SCM_RIGHTS, frames, dispatches commands in order) and a writer thread (drains a bounded
//! queue of outgoing lines: responses and events), so emitting an event never blocks on a client.
//!
//! Unlike QEMU, whose socket chardev serves one client at a time and leaves the next one waiting
//! in the listen backlog, connections are served concurrently (libxl's xentop socket and its
//! command socket are separate, but several xl commands may hit the same socket). At most
//! [`MAX_CONNECTIONS`] are served; beyond that new clients wait in the backlog as with QEMU.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use rustix::event::{poll, PollFd, PollFlags};
use serde_json::Value;

use super::builtin;
use super::error::QmpError;
use super::events::{EventSender, Outgoing};
use super::fdset::FdSets;
use super::handler::{CommandContext, ConnectionFds, QmpHandler};
use super::options::{ListenerSource, ListenerSpec};
use super::socket::{adopt_listener_fd, recv_with_fds};
use super::wire::{
    error_response, greeting, parse_command, success_response, Command, Frame, Framer, MAX_MESSAGE_BYTES,
};

/// Connections served at once, over all listeners.
pub const MAX_CONNECTIONS: usize = 16;
/// Lines queued for one client before events to it are dropped and responses wait.
const OUTPUT_QUEUE: usize = 256;
/// A client that accepts no output for this long is disconnected.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long [`QmpServer::shutdown`] lets connections flush their last responses.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);

/// State shared between the server, its connections and the machine.
#[derive(Clone, Default)]
pub struct QmpShared {
    pub events: EventSender,
    pub fdsets: Arc<FdSets>,
}

impl QmpShared {
    pub fn new() -> Self {
        QmpShared::default()
    }
}

struct Listener {
    label: String,
    socket: UnixListener,
    /// Socket file we created, removed again at shutdown.
    path: Option<PathBuf>,
}

/// Bookkeeping of live connections, for the connection limit and for shutdown.
#[derive(Default)]
struct Connections {
    live: Mutex<BTreeMap<u64, UnixStream>>,
    changed: Condvar,
}

impl Connections {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, UnixStream>> {
        self.live.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A running QMP server. Dropping it shuts it down.
pub struct QmpServer {
    shared: QmpShared,
    stop: Arc<AtomicBool>,
    wake: UnixStream,
    acceptor: Option<JoinHandle<()>>,
    connections: Arc<Connections>,
    paths: Vec<PathBuf>,
}

fn bind_path(path: &PathBuf) -> Result<UnixListener, String> {
    // QEMU unlinks an existing socket before binding (util/qemu-sockets.c). We only remove a
    // socket, never a regular file someone put there by mistake.
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if meta.file_type().is_socket() {
            std::fs::remove_file(path).map_err(|e| format!("cannot remove stale socket {}: {e}", path.display()))?;
        }
    }
    UnixListener::bind(path).map_err(|e| format!("cannot listen on {}: {e}", path.display()))
}

impl QmpServer {
    /// Starts serving QMP on `listeners` with a fresh event hub and fd set store.
    pub fn start(listeners: Vec<ListenerSpec>, handler: Arc<dyn QmpHandler>) -> Result<QmpServer, String> {
        QmpServer::start_with(listeners, handler, QmpShared::new())
    }

    /// Starts serving QMP, sharing `shared` (create it first to give the machine's handlers the
    /// event sender before the server exists).
    pub fn start_with(
        listeners: Vec<ListenerSpec>,
        handler: Arc<dyn QmpHandler>,
        shared: QmpShared,
    ) -> Result<QmpServer, String> {
        let mut fds_seen = Vec::new();
        for l in &listeners {
            if let ListenerSource::Fd(fd) = l.source {
                if fds_seen.contains(&fd) {
                    return Err(format!("monitor '{}': fd={fd} is used by another monitor", l.label));
                }
                fds_seen.push(fd);
            }
        }
        let mut bound = Vec::new();
        for l in listeners {
            let (socket, path) = match &l.source {
                ListenerSource::Path(p) => (bind_path(p)?, Some(p.clone())),
                ListenerSource::Fd(fd) => {
                    (adopt_listener_fd(*fd).map_err(|e| format!("monitor '{}': {e}", l.label))?, None)
                }
            };
            socket.set_nonblocking(true).map_err(|e| format!("monitor '{}': {e}", l.label))?;
            bound.push(Listener { label: l.label, socket, path });
        }
        let (wake, wake_rx) = UnixStream::pair().map_err(|e| format!("QMP wake-up socket: {e}"))?;
        wake.set_nonblocking(true).map_err(|e| format!("QMP wake-up socket: {e}"))?;
        wake_rx.set_nonblocking(true).map_err(|e| format!("QMP wake-up socket: {e}"))?;
        let stop = Arc::new(AtomicBool::new(false));
        let connections = Arc::new(Connections::default());
        let paths = bound.iter().filter_map(|l| l.path.clone()).collect();
        let acceptor = Acceptor {
            listeners: bound,
            wake_rx,
            wake_tx: wake.try_clone().map_err(|e| format!("QMP wake-up socket: {e}"))?,
            stop: stop.clone(),
            connections: connections.clone(),
            handler,
            shared: shared.clone(),
            next_id: AtomicU64::new(1),
        };
        let acceptor = thread::Builder::new()
            .name("qmp-accept".into())
            .spawn(move || acceptor.run())
            .map_err(|e| format!("cannot start the QMP thread: {e}"))?;
        Ok(QmpServer { shared, stop, wake, acceptor: Some(acceptor), connections, paths })
    }

    /// A handle for emitting events to negotiated clients.
    pub fn events(&self) -> EventSender {
        self.shared.events.clone()
    }

    /// The fd set store (`/dev/fdset/N`).
    pub fn fdsets(&self) -> Arc<FdSets> {
        self.shared.fdsets.clone()
    }

    /// Number of connected clients.
    pub fn connections(&self) -> usize {
        self.connections.lock().len()
    }

    /// Stops accepting, lets connected clients receive the responses already queued (e.g. the
    /// reply to `quit`) for up to a second, then closes everything and removes our socket files.
    pub fn shutdown(mut self) {
        self.stop_now();
    }

    fn stop_now(&mut self) {
        let Some(acceptor) = self.acceptor.take() else { return };
        self.stop.store(true, Ordering::SeqCst);
        let _ = (&self.wake).write(&[1]);
        let _ = acceptor.join();
        // Readers see end-of-file and finish; writers drain their queues and exit.
        for stream in self.connections.lock().values() {
            let _ = stream.shutdown(Shutdown::Read);
        }
        let deadline = Instant::now() + SHUTDOWN_GRACE;
        let mut live = self.connections.lock();
        while !live.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                for stream in live.values() {
                    let _ = stream.shutdown(Shutdown::Both);
                }
                break;
            }
            live = self.connections.changed.wait_timeout(live, left).unwrap_or_else(|e| e.into_inner()).0;
        }
        drop(live);
        for p in &self.paths {
            let _ = std::fs::remove_file(p);
        }
    }
}

impl Drop for QmpServer {
    fn drop(&mut self) {
        self.stop_now();
    }
}

struct Acceptor {
    listeners: Vec<Listener>,
    wake_rx: UnixStream,
    wake_tx: UnixStream,
    stop: Arc<AtomicBool>,
    connections: Arc<Connections>,
    handler: Arc<dyn QmpHandler>,
    shared: QmpShared,
    next_id: AtomicU64,
}

impl Acceptor {
    fn run(self) {
        let mut ready = vec![false; self.listeners.len()];
        while !self.stop.load(Ordering::SeqCst) {
            let full = self.connections.lock().len() >= MAX_CONNECTIONS;
            {
                let mut fds = vec![PollFd::new(&self.wake_rx, PollFlags::IN)];
                if !full {
                    fds.extend(self.listeners.iter().map(|l| PollFd::new(&l.socket, PollFlags::IN)));
                }
                match poll(&mut fds, None) {
                    Ok(_) => {}
                    Err(rustix::io::Errno::INTR) => continue,
                    Err(e) => {
                        log::error!("QMP: poll failed, no longer accepting connections: {e}");
                        return;
                    }
                }
                ready.iter_mut().for_each(|r| *r = false);
                for (r, fd) in ready.iter_mut().zip(fds.iter().skip(1)) {
                    *r = !fd.revents().is_empty();
                }
            }
            let mut drain = [0u8; 64];
            while matches!((&self.wake_rx).read(&mut drain), Ok(n) if n > 0) {}
            if self.stop.load(Ordering::SeqCst) {
                break;
            }
            for (i, l) in self.listeners.iter().enumerate() {
                if ready[i] {
                    self.accept_from(l);
                }
            }
        }
    }

    fn accept_from(&self, listener: &Listener) {
        loop {
            if self.connections.lock().len() >= MAX_CONNECTIONS {
                return;
            }
            let stream = match listener.socket.accept() {
                Ok((s, _)) => s,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // E.g. EMFILE: back off briefly rather than spin on a readable listener.
                    log::warn!("QMP {}: accept failed: {e}", listener.label);
                    thread::sleep(Duration::from_millis(100));
                    return;
                }
            };
            self.spawn_connection(&listener.label, stream);
        }
    }

    fn spawn_connection(&self, label: &str, stream: UnixStream) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let registered = match stream.try_clone() {
            Ok(s) => s,
            Err(e) => {
                log::warn!("QMP {label}: dropping a connection: {e}");
                return;
            }
        };
        self.connections.lock().insert(id, registered);
        // Balanced in Connection::drop, however the connection ends.
        self.shared.fdsets.connection_opened();
        let conn = Connection {
            id,
            label: label.to_owned(),
            handler: self.handler.clone(),
            shared: self.shared.clone(),
            connections: self.connections.clone(),
            wake: self.wake_tx.try_clone().ok(),
        };
        let spawned = thread::Builder::new().name(format!("qmp-{id}")).spawn(move || conn.serve(stream));
        if let Err(e) = spawned {
            // The closure, and with it the Connection, was dropped: its Drop undid the bookkeeping.
            log::warn!("QMP {label}: cannot start a connection thread: {e}");
        }
    }
}

struct Connection {
    id: u64,
    label: String,
    handler: Arc<dyn QmpHandler>,
    shared: QmpShared,
    connections: Arc<Connections>,
    wake: Option<UnixStream>,
}

impl Drop for Connection {
    /// Runs however `serve` ends, so the counters stay right.
    fn drop(&mut self) {
        self.shared.events.unsubscribe(self.id);
        self.shared.fdsets.connection_closed();
        self.connections.lock().remove(&self.id);
        self.connections.changed.notify_all();
        // Let the acceptor resume if it stopped at the connection limit.
        if let Some(w) = &self.wake {
            let _ = (&*w).write(&[1]);
        }
    }
}

fn write_all_lines(mut stream: UnixStream, queue: Receiver<Outgoing>) {
    for line in queue {
        if let Err(e) = stream.write_all(line.as_bytes()) {
            log::debug!("QMP: client went away while writing: {e}");
            let _ = stream.shutdown(Shutdown::Both);
            return;
        }
    }
}

impl Connection {
    fn serve(self, stream: UnixStream) {
        let _ = stream.set_nonblocking(false);
        let writer_stream = match stream.try_clone() {
            Ok(s) => s,
            Err(e) => {
                log::warn!("QMP {}: {e}", self.label);
                return;
            }
        };
        let _ = writer_stream.set_write_timeout(Some(WRITE_TIMEOUT));
        let (out, queue) = sync_channel::<Outgoing>(OUTPUT_QUEUE);
        let writer = match thread::Builder::new()
            .name(format!("qmp-{}-out", self.id))
            .spawn(move || write_all_lines(writer_stream, queue))
        {
            Ok(w) => w,
            Err(e) => {
                log::warn!("QMP {}: cannot start a writer thread: {e}", self.label);
                return;
            }
        };
        log::debug!("QMP {}: client {} connected", self.label, self.id);

        let fds = RefCell::new(ConnectionFds::default());
        let ctx = CommandContext::new(&self.label, &self.shared.fdsets, &self.shared.events, &fds);
        let mut negotiated = false;
        let mut framer = Framer::new();
        let mut frames = Vec::new();
        let mut received = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        let send = |line: String| out.send(Outgoing::from(line)).is_ok();

        'conn: {
            if !send(greeting(&builtin::package())) {
                break 'conn;
            }
            loop {
                let n = match recv_with_fds(&stream, &mut buf, &mut received) {
                    Ok(0) => break 'conn,
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        log::debug!("QMP {}: read failed: {e}", self.label);
                        break 'conn;
                    }
                };
                fds.borrow_mut().received(received.drain(..));
                framer.push(buf.get(..n).unwrap_or_default(), &mut frames);
                for frame in frames.drain(..) {
                    let message = match frame {
                        Frame::Message(m) => m,
                        Frame::TooLong => {
                            let e = QmpError::generic(format!(
                                "JSON parse error, message longer than {MAX_MESSAGE_BYTES} bytes"
                            ));
                            send(error_response(&e, None));
                            break 'conn;
                        }
                    };
                    let reply = match parse_command(&message) {
                        Err(rejected) => error_response(&rejected.error, rejected.id.as_ref()),
                        Ok(cmd) => {
                            let was_negotiated = negotiated;
                            let result = self.dispatch(&ctx, &cmd, &mut negotiated);
                            let reply = match result {
                                Ok(v) => success_response(v, cmd.id.as_ref()),
                                Err(e) => error_response(&e, cmd.id.as_ref()),
                            };
                            if negotiated && !was_negotiated {
                                if !self.shared.events.subscribe_after(self.id, out.clone(), reply.into()) {
                                    break 'conn;
                                }
                                continue;
                            }
                            reply
                        }
                    };
                    if !send(reply) {
                        break 'conn;
                    }
                }
            }
        }
        self.shared.events.unsubscribe(self.id);
        drop(out);
        let _ = writer.join();
        drop(fds);
        log::debug!("QMP {}: client {} disconnected", self.label, self.id);
    }

    /// Negotiation mode accepts only qmp_capabilities (QMP spec, "Capabilities Negotiation");
    /// command mode runs built-ins, then the machine's handler.
    fn dispatch(&self, ctx: &CommandContext<'_>, cmd: &Command, negotiated: &mut bool) -> Result<Value, QmpError> {
        if !*negotiated {
            if cmd.name != "qmp_capabilities" {
                return Err(builtin::negotiation_required());
            }
            builtin::negotiate(&cmd.arguments)?;
            *negotiated = true;
            return Ok(Value::Object(Default::default()));
        }
        if let Some(result) = builtin::execute(ctx, &*self.handler, &cmd.name, &cmd.arguments) {
            return result;
        }
        self.handler.execute(ctx, &cmd.name, &cmd.arguments)
    }
}
