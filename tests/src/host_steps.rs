//! Host steps: programs a scenario runs on the test host (real VNC clients, image checks) at
//! the moment its L2 script asks for them.
//!
//! The L1 QEMU gets user networking: L2 reaches this server at `10.0.2.2:<port>` (QEMU's slirp
//! maps the gateway address to the host's loopback), and a host port is forwarded to L2's VNC
//! port (`hostfwd`), so a client on the host talks to the device model inside L2.
//!
//! Protocol (one request per connection, L2 uses busybox `nc`): the request is one line
//! `NAME STEP [ARG...]`; the server runs `bash <NAME's script> STEP ARG...`
//! (its stdout and stderr together), streams the output back line by line and ends with
//! `@@host-rc=N`, then closes. `N` is the step's exit status, 124 after a timeout (the step's
//! process group is killed), 125 for a request it refused.
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

/// How long one step may run before its process group is killed.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(180);
/// Longest request line accepted (name + step + arguments).
const MAX_REQUEST: usize = 512;

/// What the steps of one L1 worker see.
#[derive(Clone, Debug, Default)]
pub struct StepEnv {
    /// Scenario name → its host-step script (KVM: `scenarios/NAME/host-client.sh`; Xen:
    /// `xen/scenarios/NAME.host-client.sh`); it runs in the script's directory.
    pub scenarios: BTreeMap<String, PathBuf>,
    /// Scenario name → its prepare.sh output (`$FILES` for the step).
    pub files: BTreeMap<String, PathBuf>,
    /// Where each scenario's artifacts go: `<art_root>/<name>/` (`$ART`).
    pub art_root: PathBuf,
    /// Extra environment for every step (VNC_PORT, tool paths, ...).
    pub vars: Vec<(String, String)>,
}

/// A running host-step server; stops when dropped.
pub struct HostSteps {
    port: u16,
    stop: Arc<AtomicBool>,
    handle: Option<thread::JoinHandle<()>>,
}

impl HostSteps {
    /// Listens on 127.0.0.1 (an ephemeral port) and serves requests until dropped.
    pub fn start(env: StepEnv) -> Result<HostSteps, String> {
        let l = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("host steps: bind: {e}"))?;
        let port = l.local_addr().map_err(|e| e.to_string())?.port();
        l.set_nonblocking(true).map_err(|e| e.to_string())?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let env = Arc::new(env);
        let handle = thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                match l.accept() {
                    Ok((s, _)) => {
                        let env = env.clone();
                        thread::spawn(move || serve(s, &env));
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => thread::sleep(Duration::from_millis(50)),
                    Err(_) => thread::sleep(Duration::from_millis(200)),
                }
            }
        });
        Ok(HostSteps { port, stop, handle: Some(handle) })
    }

    pub fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for HostSteps {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// A free TCP port on 127.0.0.1 at the moment of asking (for a `hostfwd`). Another process
/// could take it before QEMU binds it; QEMU then fails to start and says so.
pub fn free_port() -> Result<u16, String> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("free port: {e}"))?;
    Ok(l.local_addr().map_err(|e| e.to_string())?.port())
}

/// Splits a request into (name, step, args), refusing words a shell or a path could misread.
pub fn parse_request(line: &str) -> Result<(String, String, Vec<String>), String> {
    let ok = |w: &str| w.chars().all(|c| c.is_ascii_alphanumeric() || "._=,:+-/".contains(c)) && !w.contains("..");
    let mut words = line.split_whitespace();
    let name = words.next().ok_or("empty request")?.to_string();
    let step = words.next().ok_or("request without a step")?.to_string();
    let args: Vec<String> = words.map(String::from).collect();
    for w in std::iter::once(&name).chain(std::iter::once(&step)).chain(args.iter()) {
        if !ok(w) {
            return Err(format!("refused word {w:?} (allowed: letters, digits and ._=,:+-/)"));
        }
    }
    Ok((name, step, args))
}

fn serve(mut s: TcpStream, env: &StepEnv) {
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    let rc = match read_request(&s).and_then(|l| parse_request(&l)) {
        Err(e) => {
            let _ = writeln!(s, "host-steps: {e}");
            125
        }
        Ok((name, step, args)) => run_step(&mut s, env, &name, &step, &args),
    };
    let _ = writeln!(s, "@@host-rc={rc}");
    let _ = s.shutdown(Shutdown::Both);
}

fn read_request(s: &TcpStream) -> Result<String, String> {
    let mut line = String::new();
    BufReader::new(s.take(MAX_REQUEST as u64)).read_line(&mut line).map_err(|e| format!("reading the request: {e}"))?;
    if !line.ends_with('\n') {
        return Err(format!("the request is not one line of at most {MAX_REQUEST} bytes"));
    }
    Ok(line)
}

fn run_step(s: &mut TcpStream, env: &StepEnv, name: &str, step: &str, args: &[String]) -> i32 {
    let Some(script) = env.scenarios.get(name) else {
        let _ = writeln!(s, "host-steps: scenario {name:?} has no host-client.sh in this run");
        return 125;
    };
    // Absolute: the step runs in its script's directory.
    let art = std::path::absolute(env.art_root.join(name)).unwrap_or_else(|_| env.art_root.join(name));
    if let Err(e) = std::fs::create_dir_all(&art) {
        let _ = writeln!(s, "host-steps: {}: {e}", art.display());
        return 125;
    }
    let files = env.files.get(name).cloned().unwrap_or_default();
    let mut cmd = Command::new("bash");
    cmd.arg("-c")
        .arg("exec bash \"$0\" \"$@\" 2>&1")
        .arg(script)
        .arg(step)
        .args(args)
        .current_dir(script.parent().unwrap_or(Path::new("/")))
        .env("NAME", name)
        .env("ART", &art)
        .env("FILES", &files)
        .envs(env.vars.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .process_group(0);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            let _ = writeln!(s, "host-steps: cannot run bash: {e}");
            return 125;
        }
    };
    let out = child.stdout.take().expect("piped stdout");
    let mut sink = s.try_clone().expect("clone tcp stream");
    let pump = thread::spawn(move || {
        for l in BufReader::new(out).lines().map_while(Result::ok) {
            if writeln!(sink, "{l}").is_err() {
                break;
            }
        }
    });
    let t0 = Instant::now();
    let rc = loop {
        match child.try_wait() {
            Ok(Some(st)) => break st.code().unwrap_or(128),
            Ok(None) if t0.elapsed() > STEP_TIMEOUT => {
                let _ = Command::new("kill").arg("-9").arg(format!("-{}", child.id())).status();
                let _ = child.wait();
                let _ = writeln!(s, "host-steps: step {step} killed after {}s", STEP_TIMEOUT.as_secs());
                break 124;
            }
            Ok(None) => thread::sleep(Duration::from_millis(50)),
            Err(_) => break 125,
        }
    };
    let _ = pump.join();
    rc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_words_are_checked() {
        let (n, s, a) = parse_request("vga-std capture pat.png 1024x768\n").unwrap();
        assert_eq!((n.as_str(), s.as_str()), ("vga-std", "capture"));
        assert_eq!(a, vec!["pat.png", "1024x768"]);
        assert!(parse_request("x y;rm\n").is_err());
        assert!(parse_request("x ../../y\n").is_err());
        assert!(parse_request("onlyname\n").is_err());
    }

    #[test]
    fn a_step_runs_and_reports_its_status() {
        let dir = std::env::temp_dir().join(format!("host-steps-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("host-client.sh"), "echo \"step=$1 arg=$2 port=$VNC_PORT\"; echo err >&2; exit 3\n")
            .unwrap();
        let mut env = StepEnv { art_root: dir.join("art"), ..StepEnv::default() };
        env.scenarios.insert("demo".into(), dir.join("host-client.sh"));
        env.vars.push(("VNC_PORT".into(), "5999".into()));
        let hs = HostSteps::start(env).unwrap();
        let ask = |req: &str| {
            let mut c = TcpStream::connect(("127.0.0.1", hs.port())).unwrap();
            c.write_all(req.as_bytes()).unwrap();
            let mut out = String::new();
            c.read_to_string(&mut out).unwrap();
            out
        };
        let out = ask("demo go x1\n");
        assert_eq!(out, "step=go arg=x1 port=5999\nerr\n@@host-rc=3\n");
        assert!(ask("other go\n").ends_with("@@host-rc=125\n"));
        assert!(ask("demo `id`\n").ends_with("@@host-rc=125\n"));
        drop(hs);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
