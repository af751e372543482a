//! End-to-end tests: a real server on a Unix socket in a temporary directory, driven the way libxl
//! (libxl_qmp.c) drives QEMU.

use std::fs::File;
use std::io::{BufRead, BufReader, IoSlice, Read, Write};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, IntoRawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustix::net::{sendmsg, SendAncillaryBuffer, SendAncillaryMessage, SendFlags};
use serde_json::{json, Value};

use super::*;

struct Recorder(Mutex<Vec<&'static str>>);

impl Recorder {
    fn calls(&self) -> Vec<&'static str> {
        self.0.lock().unwrap().clone()
    }
}

impl RunControlHooks for Recorder {
    fn pause(&self) {
        self.0.lock().unwrap().push("pause");
    }
    fn resume(&self) {
        self.0.lock().unwrap().push("resume");
    }
    fn quit(&self) {
        self.0.lock().unwrap().push("quit");
    }
}

struct Fixture {
    server: QmpServer,
    path: PathBuf,
    runstate: Arc<RunStateCommands>,
    hooks: Arc<Recorder>,
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("qmp-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn start(name: &str, initial: RunState) -> Fixture {
    let path = temp_dir(name).join("qmp.sock");
    let shared = QmpShared::new();
    let hooks = Arc::new(Recorder(Mutex::new(Vec::new())));
    let runstate = Arc::new(RunStateCommands::new(initial, false, hooks.clone(), shared.events.clone()));
    let handler = Arc::new(HandlerChain::new().with(runstate.clone()));
    let listeners = vec![ListenerSpec { label: "libxl-cmd".into(), source: ListenerSource::Path(path.clone()) }];
    let server = QmpServer::start_with(listeners, handler, shared).unwrap();
    Fixture { server, path, runstate, hooks }
}

struct Client {
    stream: UnixStream,
    reader: BufReader<UnixStream>,
}

impl Client {
    fn connect(path: &Path) -> Client {
        let stream = UnixStream::connect(path).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let reader = BufReader::new(stream.try_clone().unwrap());
        Client { stream, reader }
    }

    /// One raw line as sent, including its terminator.
    fn raw_line(&mut self) -> String {
        let mut line = String::new();
        self.reader.read_line(&mut line).unwrap();
        line
    }

    fn recv(&mut self) -> Value {
        let line = self.raw_line();
        assert!(line.ends_with("\r\n"), "line not CRLF-terminated: {line:?}");
        serde_json::from_str(&line).unwrap()
    }

    /// The next message that is not an event.
    fn response(&mut self) -> Value {
        loop {
            let v = self.recv();
            if v.get("event").is_none() {
                return v;
            }
        }
    }

    fn send(&mut self, text: &str) {
        self.stream.write_all(text.as_bytes()).unwrap();
    }

    fn cmd(&mut self, v: Value) -> Value {
        self.send(&format!("{v}\r\n"));
        self.response()
    }

    /// Connect, read the greeting and negotiate, as libxl does on every connection.
    fn negotiated(path: &Path) -> Client {
        let mut c = Client::connect(path);
        assert!(c.recv().get("QMP").is_some());
        assert_eq!(c.cmd(json!({"execute": "qmp_capabilities", "id": 1})), json!({"return": {}, "id": 1}));
        c
    }

    /// Sends `text` with `fd` attached over SCM_RIGHTS to its first byte, as libxl's add-fd does.
    fn send_with_fd(&mut self, text: &str, fd: BorrowedFd<'_>) {
        let fds = [fd];
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
        let mut control = SendAncillaryBuffer::new(&mut space);
        assert!(control.push(SendAncillaryMessage::ScmRights(&fds)));
        let n = sendmsg(&self.stream, &[IoSlice::new(text.as_bytes())], &mut control, SendFlags::empty()).unwrap();
        self.send(&text[n..]);
    }

    /// The server closed the connection: end-of-file, or a reset when it closed with our
    /// unread input still queued (Linux unix_release_sock).
    fn closed(&mut self) -> bool {
        let mut b = [0u8; 1];
        match self.reader.read(&mut b) {
            Ok(n) => n == 0,
            Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
        }
    }
}

fn error_of(reply: &Value) -> (&str, &str) {
    (reply["error"]["class"].as_str().unwrap_or("<none>"), reply["error"]["desc"].as_str().unwrap_or("<none>"))
}

#[test]
fn greeting_is_one_crlf_line_reporting_qemu_8_2() {
    let f = start("greeting", RunState::Prelaunch);
    let mut c = Client::connect(&f.path);
    let line = c.raw_line();
    assert!(line.ends_with("\r\n") && !line.trim_end().contains('\n'), "{line:?}");
    let g: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(g["QMP"]["version"]["qemu"], json!({"micro": 0, "minor": 2, "major": 8}));
    assert_eq!(g["QMP"]["version"]["package"], json!(format!("devicemodel-{}", env!("CARGO_PKG_VERSION"))));
    assert_eq!(g["QMP"]["capabilities"], json!([]));
}

#[test]
fn commands_need_capabilities_negotiation_first() {
    let f = start("negotiation", RunState::Prelaunch);
    let mut c = Client::connect(&f.path);
    c.recv();
    let r = c.cmd(json!({"execute": "query-status", "id": 4}));
    assert_eq!(error_of(&r), ("CommandNotFound", "Expecting capabilities negotiation with 'qmp_capabilities'"));
    assert_eq!(r["id"], json!(4));
    let r = c.cmd(json!({"execute": "qmp_capabilities", "arguments": {"enable": ["oob"]}}));
    assert_eq!(error_of(&r), ("GenericError", "Capability 'oob' not available"));
    assert_eq!(c.cmd(json!({"execute": "qmp_capabilities"})), json!({"return": {}}));
    let r = c.cmd(json!({"execute": "query-status"}));
    assert_eq!(r, json!({"return": {"status": "prelaunch", "singlestep": false, "running": false}}));
    let r = c.cmd(json!({"execute": "qmp_capabilities"}));
    assert_eq!(error_of(&r).0, "CommandNotFound");
}

#[test]
fn id_is_echoed_whatever_its_type() {
    let f = start("ids", RunState::Running);
    let mut c = Client::negotiated(&f.path);
    for id in [json!(7), json!("libxl-42"), json!({"a": [1, null]}), json!(-1.5)] {
        let r = c.cmd(json!({"execute": "query-version", "id": id}));
        assert_eq!(r["id"], id);
        assert_eq!(r["return"]["qemu"]["major"], json!(8));
        let r = c.cmd(json!({"execute": "no-such-command", "id": id}));
        assert_eq!(r["id"], id);
    }
    let r = c.cmd(json!({"execute": "query-version"}));
    assert!(r.get("id").is_none());
}

#[test]
fn unknown_command_is_command_not_found() {
    let f = start("notfound", RunState::Running);
    let mut c = Client::negotiated(&f.path);
    let r = c.cmd(json!({"execute": "query-cpus", "id": 2}));
    assert_eq!(error_of(&r), ("CommandNotFound", "The command query-cpus has not been found"));
}

#[test]
fn malformed_input_gets_an_error_and_the_connection_continues() {
    let f = start("badjson", RunState::Running);
    let mut c = Client::negotiated(&f.path);
    c.send("{\"execute\": \"query-status\", \"id\": tru}\r\n");
    let (class, desc) = {
        let r = c.response();
        (error_of(&r).0.to_owned(), error_of(&r).1.to_owned())
    };
    assert_eq!(class, "GenericError");
    assert!(desc.starts_with("JSON parse error"), "{desc}");
    c.send("this is not json\n");
    assert!(error_of(&c.response()).1.starts_with("JSON parse error"));
    for (input, desc) in [
        ("[1,2]", "QMP input must be a JSON object"),
        ("{\"id\": 1}", "QMP input lacks member 'execute'"),
        ("{\"execute\": \"query-status\", \"bogus\": 1}", "QMP input member 'bogus' is unexpected"),
        ("{\"execute\": \"query-status\", \"arguments\": 5}", "QMP input member 'arguments' must be an object"),
        ("{\"execute\": \"query-status\", \"arguments\": {\"x\": 1}}", "Parameter 'x' is unexpected"),
    ] {
        c.send(&format!("{input}\r\n"));
        assert_eq!(error_of(&c.response()), ("GenericError", desc), "{input}");
    }
    // Two commands in one write, one of them split across lines, still both answered in order.
    c.send("{\"execute\": \"query-status\", \"id\": 1}{\"execute\":\n\"query-version\", \"id\": 2}\r\n");
    assert_eq!(c.response()["id"], json!(1));
    assert_eq!(c.response()["id"], json!(2));
    assert_eq!(c.cmd(json!({"execute": "query-status"}))["return"]["status"], json!("running"));
}

#[test]
fn sequential_reconnects_each_get_a_fresh_session() {
    let f = start("reconnect", RunState::Running);
    for i in 0..30 {
        let mut c = Client::connect(&f.path);
        assert!(c.recv().get("QMP").is_some());
        // A fresh connection is back in negotiation mode.
        let r = c.cmd(json!({"execute": "query-status", "id": i}));
        assert_eq!(error_of(&r).0, "CommandNotFound");
        assert_eq!(c.cmd(json!({"execute": "qmp_capabilities", "id": i})), json!({"return": {}, "id": i}));
        assert_eq!(c.cmd(json!({"execute": "cont", "id": i})), json!({"return": {}, "id": i}));
    }
}

#[test]
fn two_clients_are_served_at_the_same_time() {
    let f = start("two", RunState::Running);
    let mut a = Client::negotiated(&f.path);
    let mut b = Client::negotiated(&f.path);
    for i in 0..5 {
        assert_eq!(b.cmd(json!({"execute": "query-status", "id": i}))["id"], json!(i));
        assert_eq!(a.cmd(json!({"execute": "query-version", "id": i}))["id"], json!(i));
    }
    assert_eq!(f.server.connections(), 2);
}

#[test]
fn events_reach_negotiated_clients_only() {
    let f = start("events", RunState::Running);
    let mut negotiated = Client::negotiated(&f.path);
    let mut fresh = Client::connect(&f.path);
    fresh.recv();
    f.server.events().send("TEST_EVENT", json!({"n": 1}));
    let ev = negotiated.recv();
    assert_eq!(ev["event"], json!("TEST_EVENT"));
    assert_eq!(ev["data"], json!({"n": 1}));
    assert!(ev["timestamp"]["seconds"].as_u64().unwrap() > 1_600_000_000);
    assert!(ev["timestamp"]["microseconds"].as_u64().unwrap() < 1_000_000);
    // Had the un-negotiated client received the event, it would come before this response.
    assert_eq!(fresh.cmd(json!({"execute": "qmp_capabilities", "id": "n"})), json!({"return": {}, "id": "n"}));
    f.server.events().send("SECOND", Value::Null);
    let ev = fresh.recv();
    assert_eq!(ev["event"], json!("SECOND"));
    assert!(ev.get("data").is_none());
}

#[test]
fn stop_and_cont_follow_qemu_run_state_rules() {
    let f = start("runstate", RunState::Prelaunch);
    let mut c = Client::negotiated(&f.path);
    // stop before the VM ever ran changes nothing (do_vm_stop).
    assert_eq!(c.cmd(json!({"execute": "stop"})), json!({"return": {}}));
    assert_eq!(f.runstate.state(), RunState::Prelaunch);
    c.send("{\"execute\":\"cont\"}\r\n");
    assert_eq!(c.recv()["event"], json!("RESUME"));
    assert_eq!(c.recv(), json!({"return": {}}));
    assert_eq!(f.runstate.state(), RunState::Running);
    // cont is idempotent: no hook call, no event (the next line is the response).
    c.send("{\"execute\":\"cont\",\"id\":9}\r\n");
    assert_eq!(c.recv(), json!({"return": {}, "id": 9}));
    c.send("{\"execute\":\"stop\"}\r\n");
    assert_eq!(c.recv()["event"], json!("STOP"));
    assert_eq!(c.recv(), json!({"return": {}}));
    let r = c.cmd(json!({"execute": "query-status"}));
    assert_eq!(r["return"], json!({"status": "paused", "singlestep": false, "running": false}));
    assert_eq!(f.hooks.calls(), vec!["resume", "pause"]);

    f.runstate.guest_shutdown(true);
    assert_eq!(c.recv()["data"], json!({"guest": true, "reason": "guest-shutdown"}));
    assert_eq!(c.recv()["event"], json!("STOP"));
    let r = c.cmd(json!({"execute": "cont"}));
    assert_eq!(error_of(&r), ("GenericError", "Resetting the Virtual Machine is required"));

    c.send("{\"execute\":\"quit\"}\r\n");
    assert_eq!(c.recv()["data"], json!({"guest": false, "reason": "host-qmp-quit"}));
    assert_eq!(c.recv(), json!({"return": {}}));
    assert_eq!(f.hooks.calls(), vec!["resume", "pause", "quit"]);
}

#[test]
fn libxl_post_spawn_queries() {
    let f = start("queries", RunState::Running);
    f.runstate.set_chardevs(vec![ChardevInfo {
        label: "serial0".into(),
        filename: "pty:/dev/pts/3".into(),
        frontend_open: true,
    }]);
    f.runstate.set_vcpus(
        (0..2)
            .map(|i| VcpuInfo {
                cpu_index: i,
                host_thread_id: 1000 + i64::from(i),
                socket_id: i,
                core_id: 0,
                thread_id: 0,
            })
            .collect(),
    );
    f.runstate.set_command_line_options(vec![CommandLineOption::run_with()]);
    let mut c = Client::negotiated(&f.path);
    let r = c.cmd(json!({"execute": "query-chardev"}));
    assert_eq!(r["return"], json!([{"label": "serial0", "filename": "pty:/dev/pts/3", "frontend-open": true}]));
    let r = c.cmd(json!({"execute": "query-cpus-fast"}));
    let cpus = r["return"].as_array().unwrap();
    assert_eq!(cpus.len(), 2);
    assert_eq!(cpus[1]["cpu-index"], json!(1));
    assert_eq!(cpus[1]["thread-id"], json!(1001));
    assert_eq!(cpus[1]["qom-path"], json!("/machine/unattached/device[1]"));
    assert_eq!(cpus[1]["props"]["socket-id"], json!(1));
    let r = c.cmd(json!({"execute": "query-command-line-options", "arguments": {"option": "run-with"}}));
    let params: Vec<&str> =
        r["return"][0]["parameters"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(params, vec!["chroot", "user"]);
    let r = c.cmd(json!({"execute": "query-command-line-options", "arguments": {"option": "vnc"}}));
    assert_eq!(error_of(&r), ("GenericError", "Invalid option name: vnc"));
    let r = c.cmd(json!({"execute": "query-commands"}));
    let names: Vec<&str> = r["return"].as_array().unwrap().iter().map(|n| n["name"].as_str().unwrap()).collect();
    for n in ["qmp_capabilities", "add-fd", "query-fdsets", "query-status", "cont", "quit"] {
        assert!(names.contains(&n), "{n} missing from {names:?}");
    }
}

#[test]
fn add_fd_over_scm_rights_then_query_and_open_the_fdset() {
    let f = start("addfd", RunState::Paused);
    let dir = f.path.parent().unwrap().to_owned();
    let image = dir.join("cd.iso");
    std::fs::write(&image, b"ISO9660 image").unwrap();
    let mut c = Client::negotiated(&f.path);

    let r = c.cmd(json!({"execute": "add-fd", "id": 1}));
    assert_eq!(error_of(&r), ("GenericError", "No file descriptor supplied via SCM_RIGHTS"));

    let file = File::open(&image).unwrap();
    let opaque = format!("raw:{}", image.display());
    let cmd = json!({"execute": "add-fd", "arguments": {"opaque": opaque}, "id": 2});
    c.send_with_fd(&format!("{cmd}\r\n"), file.as_fd());
    drop(file); // the server holds its own copy now
    let r = c.response();
    assert_eq!(r["id"], json!(2));
    assert_eq!(r["return"]["fdset-id"], json!(0));
    let fd = r["return"]["fd"].clone();
    assert!(fd.as_i64().unwrap() >= 0);

    let r = c.cmd(json!({"execute": "query-fdsets"}));
    assert_eq!(r["return"], json!([{"fdset-id": 0, "fds": [{"fd": fd, "opaque": opaque}]}]));

    let mut text = String::new();
    f.server.fdsets().open_fdset_path("/dev/fdset/0", false).unwrap().read_to_string(&mut text).unwrap();
    assert_eq!(text, "ISO9660 image");
    assert!(f.server.fdsets().open_fdset_path("/dev/fdset/0", true).is_err(), "read-only fd opened for writing");

    // The set was used, so it survives the connection (as QEMU keeps sets with dup'd fds).
    drop(c);
    let mut c = Client::negotiated(&f.path);
    let r = c.cmd(json!({"execute": "query-fdsets"}));
    assert_eq!(r["return"][0]["fdset-id"], json!(0));
    assert_eq!(c.cmd(json!({"execute": "remove-fd", "arguments": {"fdset-id": 0}})), json!({"return": {}}));
    assert_eq!(c.cmd(json!({"execute": "query-fdsets"})), json!({"return": []}));
    let r = c.cmd(json!({"execute": "remove-fd", "arguments": {"fdset-id": 0}}));
    assert_eq!(error_of(&r), ("GenericError", "File descriptor named 'fdset-id:0' not found"));
}

#[test]
fn unused_fds_are_closed_when_the_connection_ends() {
    let f = start("fdclose", RunState::Running);
    let (mine, theirs) = UnixStream::pair().unwrap();
    let mut c = Client::negotiated(&f.path);
    // Attach an fd to a command that does not use it, then hang up.
    c.send_with_fd("{\"execute\": \"query-status\"}\r\n", theirs.as_fd());
    c.response();
    // Add another to a set nobody opens: dropped when the last client leaves.
    let (mine2, theirs2) = UnixStream::pair().unwrap();
    c.send_with_fd("{\"execute\": \"add-fd\", \"arguments\": {\"fdset-id\": 3}}\r\n", theirs2.as_fd());
    assert_eq!(c.response()["return"]["fdset-id"], json!(3));
    drop((theirs, theirs2, c));
    // When every copy of the peer end is closed, reading `mine` sees end-of-file.
    for s in [mine, mine2] {
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut b = [0u8; 1];
        assert_eq!((&s).read(&mut b).unwrap(), 0, "server still holds a received fd");
    }
    assert!(f.server.fdsets().query().as_array().unwrap().is_empty());
}

#[test]
fn overlong_message_is_refused_and_the_connection_dropped() {
    let f = start("long", RunState::Running);
    let mut c = Client::negotiated(&f.path);
    let mut w = c.stream.try_clone().unwrap();
    let writer = std::thread::spawn(move || {
        let chunk = vec![b'a'; 64 * 1024];
        let _ = w.write_all(b"{\"execute\": \"");
        for _ in 0..40 {
            if w.write_all(&chunk).is_err() {
                break;
            }
        }
    });
    let r = c.recv();
    assert_eq!(error_of(&r).0, "GenericError");
    assert!(error_of(&r).1.contains("longer than"), "{r}");
    assert!(c.closed());
    writer.join().unwrap();
    // The server itself is fine.
    let mut c = Client::negotiated(&f.path);
    assert!(c.cmd(json!({"execute": "query-status"}))["return"].is_object());
}

#[test]
fn connections_beyond_the_limit_wait_for_a_free_slot() {
    let f = start("limit", RunState::Running);
    let mut clients: Vec<Client> = (0..server::MAX_CONNECTIONS).map(|_| Client::negotiated(&f.path)).collect();
    let mut waiting = Client::connect(&f.path);
    waiting.stream.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
    let mut b = [0u8; 1];
    assert!(waiting.reader.read(&mut b).is_err(), "greeted beyond the connection limit");
    drop(clients.pop());
    waiting.stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    assert!(waiting.recv().get("QMP").is_some());
}

#[test]
fn stale_socket_is_replaced_and_removed_at_shutdown() {
    let path = temp_dir("stale").join("qmp.sock");
    drop(UnixListener::bind(&path).unwrap()); // leaves the socket file behind, like a crashed DM
    let spec = vec![ListenerSpec { label: "qmp".into(), source: ListenerSource::Path(path.clone()) }];
    let server = QmpServer::start(spec, Arc::new(HandlerChain::new())).unwrap();
    let mut c = Client::negotiated(&path);
    // A reply already queued still arrives when the server shuts down right after.
    c.send("{\"execute\":\"query-version\",\"id\":1}\r\n");
    server.shutdown();
    assert_eq!(c.response()["id"], json!(1));
    assert!(c.closed());
    assert!(!path.exists());

    // A regular file is not removed.
    std::fs::write(&path, b"not a socket").unwrap();
    let spec = vec![ListenerSpec { label: "qmp".into(), source: ListenerSource::Path(path.clone()) }];
    assert!(QmpServer::start(spec, Arc::new(HandlerChain::new())).is_err());
    assert_eq!(std::fs::read(&path).unwrap(), b"not a socket");
}

#[test]
fn inherited_listening_fd_is_served() {
    let dir = temp_dir("inherited");
    let path = dir.join("qmp.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let fd = listener.into_raw_fd();
    let spec = vec![ListenerSpec { label: "libxl-cmd".into(), source: ListenerSource::Fd(fd) }];
    let server = QmpServer::start(spec, Arc::new(HandlerChain::new())).unwrap();
    let mut c = Client::negotiated(&path);
    assert_eq!(c.cmd(json!({"execute": "query-version"}))["return"]["qemu"]["minor"], json!(2));
    drop(server);

    let not_socket = File::open(&dir).unwrap();
    let spec = vec![ListenerSpec { label: "x".into(), source: ListenerSource::Fd(not_socket.as_raw_fd()) }];
    assert!(QmpServer::start(spec, Arc::new(HandlerChain::new())).is_err());
    // ... and the descriptor was left alone.
    assert!(not_socket.metadata().is_ok());
    let spec = vec![
        ListenerSpec { label: "a".into(), source: ListenerSource::Fd(1000) },
        ListenerSpec { label: "b".into(), source: ListenerSource::Fd(1000) },
    ];
    assert!(QmpServer::start(spec, Arc::new(HandlerChain::new())).is_err());
}
