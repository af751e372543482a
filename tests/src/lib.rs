//! Nested-QEMU test harness (see tests/README.md).
//!
//! Flow: `scripts/setup.sh` (host packages, cached Debian kernel) → `scripts/build-images.sh`
//! (static devicemodel, L2 initramfs, per-scenario L3 initramfs) → scenarios are split between
//! up to two L1 workers (`qemu-system-x86_64 -accel tcg -cpu max`, one per core); each L2 boots,
//! loads kvm-amd and runs its scenarios one by one (`l2/init`), framing each scenario's output
//! with `@@BEGIN`/`@@END` markers. The console logs are split per scenario and checked against
//! the scenario's `expect` file.

pub mod host_steps;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

/// Seconds a scenario may run inside L2 unless its `options` file says otherwise.
pub const DEFAULT_TIMEOUT: u64 = 60;
/// Host-side allowance for booting L2 and powering it off, on top of the scenario timeouts.
const L2_OVERHEAD: u64 = 90;

/// Which device model L2 runs for scenarios that use `dm`/`boot`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceModel {
    Ours,
    Qemu,
}

impl DeviceModel {
    pub fn name(self) -> &'static str {
        match self {
            DeviceModel::Ours => "ours",
            DeviceModel::Qemu => "qemu",
        }
    }
}

/// Optional per-scenario settings (`options`, shell `key=value` lines).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// L2-side watchdog for the whole scenario, seconds.
    pub timeout: u64,
    /// Relative run time (about one L3 boot = 1), used to balance the workers.
    pub cost: u32,
    /// The scenario launches QEMU itself (`qemu ...` in host.sh), so L2 needs it.
    pub needs_qemu: bool,
    /// Kernel modules for the L3 initramfs (dependencies are added by build-images.sh).
    pub modules: Vec<String>,
    /// Programs from `tests/guest-tools/<name>.c` for the L3 initramfs `/bin`.
    pub guest_tools: Vec<String>,
    /// A benchmark (`bench/*.sh` runs it by name): it measures rather than checks, so the test
    /// suite leaves it out unless `SCENARIOS` names it.
    pub bench: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            timeout: DEFAULT_TIMEOUT,
            cost: 1,
            needs_qemu: false,
            modules: Vec::new(),
            guest_tools: Vec::new(),
            bench: false,
        }
    }
}

pub fn parse_options(text: &str) -> Result<Options, String> {
    let mut o = Options::default();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (k, v) = line.split_once('=').ok_or_else(|| format!("line {}: expected key=value", n + 1))?;
        let v = v.trim().trim_matches('"');
        let bad = |_| format!("line {}: bad value for {k}: {v:?}", n + 1);
        match k.trim() {
            "timeout" => o.timeout = v.parse().map_err(bad)?,
            "cost" => o.cost = v.parse().map_err(bad)?,
            "needs_qemu" => o.needs_qemu = matches!(v, "1" | "yes" | "true"),
            "modules" => o.modules = v.split_whitespace().map(String::from).collect(),
            "guest_tools" => o.guest_tools = v.split_whitespace().map(String::from).collect(),
            "bench" => o.bench = matches!(v, "1" | "yes" | "true"),
            other => return Err(format!("line {}: unknown option {other:?}", n + 1)),
        }
    }
    Ok(o)
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Status {
    Code(i32),
    Nonzero,
}

/// One line of an `expect` file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expectation {
    /// `status N` / `status nonzero`: the scenario's exit status (for a plain boot, the device
    /// model's; for host.sh, the script's).
    Status(Status),
    /// `contains TEXT`: some output line contains TEXT.
    Contains(String),
    /// `lacks TEXT`: no output line contains TEXT.
    Lacks(String),
    /// `count N TEXT`: exactly N output lines contain TEXT.
    Count(usize, String),
}

pub fn parse_expect(text: &str) -> Result<Vec<Expectation>, String> {
    let mut v = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim_end();
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        let (word, rest) = line.split_once(' ').unwrap_or((line, ""));
        let err = |m: &str| format!("line {}: {m}: {line:?}", n + 1);
        if rest.is_empty() {
            return Err(err("missing argument"));
        }
        v.push(match word {
            "status" if rest == "nonzero" => Expectation::Status(Status::Nonzero),
            "status" => Expectation::Status(Status::Code(rest.parse().map_err(|_| err("bad status"))?)),
            "contains" => Expectation::Contains(rest.to_string()),
            "lacks" => Expectation::Lacks(rest.to_string()),
            "count" => {
                let (k, t) = rest.split_once(' ').ok_or_else(|| err("expected count N TEXT"))?;
                Expectation::Count(k.parse().map_err(|_| err("bad count"))?, t.to_string())
            }
            _ => return Err(err("unknown directive (status, contains, lacks, count)")),
        });
    }
    if !v.iter().any(|e| matches!(e, Expectation::Status(_))) {
        v.push(Expectation::Status(Status::Code(0)));
    }
    Ok(v)
}

#[derive(Clone, Debug)]
pub struct Scenario {
    pub name: String,
    pub dir: PathBuf,
    pub options: Options,
    pub expect: Vec<Expectation>,
    /// The scenario has a `host-client.sh`: steps that run on the test host (real VNC
    /// clients), requested from L2 with `host_step` (see [`HostSteps`]).
    pub host_client: bool,
}

pub fn load_scenario(dir: &Path) -> Result<Scenario, String> {
    let name = dir.file_name().and_then(|n| n.to_str()).ok_or("bad scenario dir")?.to_string();
    let read = |f: &str| fs::read_to_string(dir.join(f));
    let expect = parse_expect(&read("expect").map_err(|e| format!("{name}/expect: {e}"))?)
        .map_err(|e| format!("{name}/expect {e}"))?;
    let options = match read("options") {
        Ok(t) => parse_options(&t).map_err(|e| format!("{name}/options {e}"))?,
        Err(_) => Options::default(),
    };
    if dir.join("host.sh").is_file() && dir.join("cmdline").is_file() {
        return Err(format!("{name}: has both host.sh and cmdline"));
    }
    if !dir.join("guest.sh").is_file() && !dir.join("host.sh").is_file() && !dir.join("cmdline").is_file() {
        return Err(format!("{name}: needs guest.sh, host.sh or cmdline"));
    }
    let host_client = dir.join("host-client.sh").is_file();
    Ok(Scenario { name, dir: dir.to_path_buf(), options, expect, host_client })
}

pub fn discover(scenarios_dir: &Path) -> Result<Vec<Scenario>, String> {
    let mut dirs: Vec<PathBuf> = fs::read_dir(scenarios_dir)
        .map_err(|e| format!("{}: {e}", scenarios_dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("expect").is_file())
        .collect();
    dirs.sort();
    dirs.iter().map(|d| load_scenario(d)).collect()
}

/// One scenario's slice of an L2 console log.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ScenarioRun {
    pub lines: Vec<String>,
    /// From `@@END name rc=N`; None if the scenario never finished (L2 died or L1 timed out).
    pub rc: Option<i32>,
    pub timed_out: bool,
    /// Host seconds from BEGIN to END (from the `[  s.ss] ` line stamps).
    pub seconds: Option<f64>,
}

fn stamp(line: &str) -> (Option<f64>, &str) {
    if let Some(rest) = line.strip_prefix('[') {
        if let Some((t, body)) = rest.split_once("] ") {
            if let Ok(t) = t.trim().parse() {
                return (Some(t), body);
            }
        }
    }
    (None, line)
}

/// Splits a worker's console log (optionally `[secs] `-stamped) into per-scenario runs.
/// Markers are found anywhere in a line, since guest output may share a line with them.
pub fn split_log(log: &str) -> BTreeMap<String, ScenarioRun> {
    let mut runs = BTreeMap::new();
    let mut cur: Option<(String, ScenarioRun, Option<f64>)> = None;
    for raw in log.lines() {
        let (t, body) = stamp(raw);
        if let Some(i) = body.find("@@BEGIN ") {
            if let Some((name, run, _)) = cur.take() {
                runs.insert(name, run);
            }
            let name = body[i + 8..].split_whitespace().next().unwrap_or("").to_string();
            cur = Some((name, ScenarioRun::default(), t));
            continue;
        }
        if let Some(i) = body.find("@@END ") {
            if let Some((name, mut run, t0)) = cur.take() {
                let mut words = body[i + 6..].split_whitespace();
                let end_name = words.next().unwrap_or("");
                run.rc = words.find_map(|w| w.strip_prefix("rc=")).and_then(|r| r.parse().ok());
                if let (Some(a), Some(b)) = (t0, t) {
                    run.seconds = Some(b - a);
                }
                if end_name != name {
                    run.lines.push(format!("harness: END marker for {end_name:?} inside {name:?}"));
                    run.rc = None;
                }
                runs.insert(name, run);
            }
            continue;
        }
        if let Some((_, run, _)) = cur.as_mut() {
            if body.contains("@@TIMEOUT ") {
                run.timed_out = true;
            }
            run.lines.push(raw.to_string());
        }
    }
    if let Some((name, run, _)) = cur {
        runs.insert(name, run);
    }
    runs
}

/// Failures of `run` against `expect`; empty means pass.
pub fn check(expect: &[Expectation], run: Option<&ScenarioRun>) -> Vec<String> {
    let Some(run) = run else {
        return vec!["scenario never started (L2 died or L1 timed out earlier)".into()];
    };
    let mut f = Vec::new();
    if run.timed_out {
        f.push("timed out inside L2 (watchdog killed it)".into());
    }
    let Some(rc) = run.rc else {
        f.push("scenario never finished (no @@END marker)".into());
        return f;
    };
    let body = |l: &String| stamp(l).1.to_string();
    let count = |t: &str| run.lines.iter().map(body).filter(|l| l.contains(t)).count();
    if count("@@L2 leftover processes") > 0 {
        f.push("device model processes survived the scenario (see @@L2 leftover)".into());
    }
    for e in expect {
        match e {
            Expectation::Status(Status::Code(c)) if rc != *c => f.push(format!("exit status {rc}, expected {c}")),
            Expectation::Status(Status::Nonzero) if rc == 0 => f.push("exit status 0, expected nonzero".into()),
            Expectation::Contains(t) if count(t) == 0 => f.push(format!("missing line containing {t:?}")),
            Expectation::Lacks(t) if count(t) > 0 => f.push(format!("unexpected line containing {t:?}")),
            Expectation::Count(n, t) if count(t) != *n => {
                f.push(format!("{} lines contain {t:?}, expected {n}", count(t)))
            }
            _ => {}
        }
    }
    f
}

/// Splits scenarios into at most `workers` groups of similar total cost (largest first),
/// keeping the original order inside each group.
pub fn partition(scenarios: &[Scenario], workers: usize) -> Vec<Vec<usize>> {
    let workers = workers.max(1).min(scenarios.len().max(1));
    let mut idx: Vec<usize> = (0..scenarios.len()).collect();
    idx.sort_by_key(|&i| std::cmp::Reverse(scenarios[i].options.cost));
    let mut groups = vec![(0u32, Vec::new()); workers];
    for i in idx {
        let g = groups.iter_mut().min_by_key(|g| g.0).unwrap();
        g.0 += scenarios[i].options.cost.max(1);
        g.1.push(i);
    }
    groups
        .into_iter()
        .map(|(_, mut v)| {
            v.sort();
            v
        })
        .filter(|v| !v.is_empty())
        .collect()
}

#[derive(Clone, Debug)]
pub struct Outcome {
    pub worker: usize,
    pub failures: Vec<String>,
    pub run: Option<ScenarioRun>,
    pub log_path: PathBuf,
}

#[derive(Debug)]
pub struct Report {
    pub dm: DeviceModel,
    pub outcomes: BTreeMap<String, Outcome>,
    pub summary: String,
}

/// Suite configuration from the environment.
pub struct Config {
    pub root: PathBuf,
    pub dm: DeviceModel,
    /// None = all scenarios.
    pub only: Option<Vec<String>>,
    pub workers: usize,
    pub l2_mem: String,
    /// Images, consoles and results (`NESTED_OUT`, default `target/nested`); separate
    /// directories let two suites run at once without overwriting each other's files.
    pub out: PathBuf,
}

impl Config {
    pub fn from_env() -> Result<Config, String> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf();
        let dm = match std::env::var("DM").as_deref() {
            Err(_) | Ok("") | Ok("ours") => DeviceModel::Ours,
            Ok("qemu") => DeviceModel::Qemu,
            Ok(o) => return Err(format!("DM={o:?}: expected ours or qemu")),
        };
        let only = std::env::var("SCENARIOS")
            .ok()
            .filter(|s| !s.trim().is_empty())
            .map(|s| s.split([' ', ',']).filter(|w| !w.is_empty()).map(String::from).collect());
        let workers = match std::env::var("NESTED_WORKERS") {
            Ok(w) => w.parse().map_err(|_| format!("NESTED_WORKERS={w:?}"))?,
            Err(_) => 2,
        };
        // 6G: guests with RAM above 4 GiB (boot-variants) need L2 room; L1 QEMU allocates lazily.
        let l2_mem = std::env::var("NESTED_L2_MEM").unwrap_or_else(|_| "6G".into());
        let out = match std::env::var_os("NESTED_OUT") {
            Some(o) if !o.is_empty() => root.join(o),
            _ => root.join("target/nested"),
        };
        Ok(Config { out, root, dm, only, workers, l2_mem })
    }
}

fn sh(cmd: &mut Command, what: &str) -> Result<String, String> {
    let out = cmd.stderr(Stdio::inherit()).output().map_err(|e| format!("{what}: cannot run: {e}"))?;
    if !out.status.success() {
        return Err(format!("{what} failed ({})", out.status));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn env_file(text: &str) -> BTreeMap<String, String> {
    text.lines().filter_map(|l| l.split_once('=')).map(|(k, v)| (k.trim().into(), v.trim().into())).collect()
}

/// Progress on the real stderr: libtest captures `eprintln!` of the test threads, and the suite
/// takes minutes, so say what is happening as it happens.
fn progress(msg: &str) {
    let _ = writeln!(std::io::stderr(), "nested: {msg}");
}

fn secs(t: Instant) -> f64 {
    t.elapsed().as_secs_f64()
}

/// Runs the whole nested suite: setup, build, workers, checks.
pub fn run_suite(cfg: &Config) -> Result<Report, String> {
    let t_all = Instant::now();
    let tests = cfg.root.join("tests");
    let out = cfg.out.clone();
    let mut all = discover(&tests.join("scenarios"))?;
    if let Some(only) = &cfg.only {
        for n in only {
            if !all.iter().any(|s| &s.name == n) {
                return Err(format!("SCENARIOS names unknown scenario {n:?}"));
            }
        }
        all.retain(|s| only.contains(&s.name));
    } else {
        all.retain(|s| !s.options.bench);
    }
    if all.is_empty() {
        return Err("no scenarios selected".into());
    }
    let mut timing = String::new();

    progress(&format!("{} scenario(s), device model {}: setup, build, then L1 workers", all.len(), cfg.dm.name()));
    let t = Instant::now();
    let setup = sh(Command::new(tests.join("scripts/setup.sh")).stdout(Stdio::piped()), "tests/scripts/setup.sh")?;
    let setup = env_file(&setup);
    let vmlinuz = setup.get("VMLINUZ").ok_or("setup.sh printed no VMLINUZ")?.clone();
    let qemu =
        which("qemu-system-x86_64").ok_or("qemu-system-x86_64 not found after setup.sh: nested tests cannot run")?;
    writeln!(timing, "setup {:.1}s", secs(t)).unwrap();

    let needs_qemu = cfg.dm == DeviceModel::Qemu || all.iter().any(|s| s.options.needs_qemu);
    let t = Instant::now();
    sh(
        Command::new(tests.join("scripts/build-images.sh"))
            .args(all.iter().map(|s| &s.dir))
            .env("NESTED_OUT", &out)
            .env("NESTED_DM", cfg.dm.name())
            .env("NESTED_WITH_QEMU", if needs_qemu { "1" } else { "0" })
            .stdout(Stdio::inherit()),
        "tests/scripts/build-images.sh",
    )?;
    writeln!(timing, "build {:.1}s", secs(t)).unwrap();

    let groups = partition(&all, cfg.workers);
    let results = out.join("results");
    let _ = fs::remove_dir_all(&results);
    fs::create_dir_all(&results).map_err(|e| e.to_string())?;

    let t = Instant::now();
    let mut handles = Vec::new();
    for (w, group) in groups.iter().enumerate() {
        let scen: Vec<Scenario> = group.iter().map(|&i| all[i].clone()).collect();
        // The QEMU overlay (49 MB) only goes into the L2 images that use it.
        let with_qemu = cfg.dm == DeviceModel::Qemu || scen.iter().any(|s| s.options.needs_qemu);
        // Scenarios with host steps get L1 user networking: the step server and a forwarded
        // VNC port (see host_steps.rs).
        let net = if scen.iter().any(|s| s.host_client) {
            let vnc_port = host_steps::free_port()?;
            let steps = host_steps::HostSteps::start(step_env(&out, &scen, vnc_port, &setup))?;
            Some((steps, vnc_port))
        } else {
            None
        };
        let net_ports = net.as_ref().map(|(h, v)| (h.port(), *v));
        let initrd = prepare_worker(&out, w, &scen, cfg.dm, with_qemu, net_ports.map(|p| p.0))?;
        let limit = L2_OVERHEAD + scen.iter().map(|s| s.options.timeout + 5).sum::<u64>();
        let mut cmd = l1_command(&qemu, &vmlinuz, &initrd, &cfg.l2_mem);
        if let Some((_, vnc)) = net_ports {
            // L2's VNC display :0 (port 5900) is reachable on the host at 127.0.0.1:<vnc>.
            cmd.args(["-netdev", &format!("user,id=net0,hostfwd=tcp:127.0.0.1:{vnc}-:5900")])
                .args(["-device", "virtio-net-pci,netdev=net0,romfile="]);
        }
        let log = out.join(format!("worker-{w}/console.log"));
        let names: Vec<&str> = scen.iter().map(|s| s.name.as_str()).collect();
        progress(&format!("worker {w}: {} (console: {})", names.join(" "), log.display()));
        handles.push(thread::spawn(move || {
            let r = run_l1(w, cmd, &log, Duration::from_secs(limit));
            drop(net);
            r
        }));
    }
    let mut logs = Vec::new();
    for (w, h) in handles.into_iter().enumerate() {
        let r = h.join().map_err(|_| "worker thread panicked".to_string())?;
        logs.push((w, r));
    }
    writeln!(timing, "workers {:.1}s (in parallel: {})", secs(t), groups.len()).unwrap();

    let mut outcomes = BTreeMap::new();
    let mut table = String::new();
    writeln!(table, "{:<24} {:>6} {:>4} {:>8}  worker", "scenario", "result", "rc", "seconds").unwrap();
    for (w, r) in &logs {
        let (text, l1_note) = match r {
            Ok((text, note)) => (text.clone(), note.clone()),
            Err(e) => (String::new(), Some(e.clone())),
        };
        let runs = split_log(&text);
        let l2_ready = text.lines().find(|l| l.contains("@@L2 ready")).and_then(|l| stamp(l).0);
        writeln!(
            timing,
            "worker {w}: L2 ready at {}; {}",
            l2_ready.map_or("never".into(), |t| format!("{t:.1}s")),
            l1_note.clone().unwrap_or_else(|| "L1 exited normally".into())
        )
        .unwrap();
        for &i in &groups[*w] {
            let s = &all[i];
            let run = runs.get(&s.name).cloned();
            let mut failures = check(&s.expect, run.as_ref());
            if !failures.is_empty() {
                // L2-level trouble (kvm modules, /dev/kvm) is printed before any scenario.
                for l in text.lines().filter(|l| l.contains("@@L2 insmod") || l.contains("@@L2 no /dev/kvm")) {
                    failures.push(format!("worker {w}: {}", stamp(l).1));
                }
                if let Some(n) = &l1_note {
                    failures.push(format!("worker {w}: {n}"));
                }
                if run.is_none() {
                    // show how far the L2 got
                    let tail: Vec<&str> = text.lines().rev().take(30).collect();
                    failures.push(format!(
                        "last lines of worker {w}'s console:\n{}",
                        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                    ));
                }
            }
            let log_path = results.join(format!("{}.log", s.name));
            let body = run.as_ref().map(|r| r.lines.join("\n")).unwrap_or_default();
            let _ = fs::write(&log_path, body + "\n");
            writeln!(
                table,
                "{:<24} {:>6} {:>4} {:>8}  {w}",
                s.name,
                if failures.is_empty() { "PASS" } else { "FAIL" },
                run.as_ref().and_then(|r| r.rc).map_or("-".into(), |c| c.to_string()),
                run.as_ref().and_then(|r| r.seconds).map_or("-".into(), |t| format!("{t:.1}")),
            )
            .unwrap();
            outcomes.insert(s.name.clone(), Outcome { worker: *w, failures, run, log_path });
        }
    }
    writeln!(timing, "total {:.1}s", secs(t_all)).unwrap();
    let summary = format!("nested suite, device model: {}\n{table}{timing}", cfg.dm.name());
    let _ = fs::write(results.join("summary.txt"), &summary);
    progress(&format!("done; per-scenario logs in {}\n{summary}", results.display()));
    Ok(Report { dm: cfg.dm, outcomes, summary })
}

fn which(prog: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?.to_str()?.split(':').map(|d| Path::new(d).join(prog)).find(|p| p.is_file())
}

/// Writes the worker's overlay (scenario dirs, list, DM choice) and concatenates the L2 image.
/// The environment of one worker's host steps: VNC port, client and checker paths.
fn step_env(out: &Path, scen: &[Scenario], vnc_port: u16, setup: &BTreeMap<String, String>) -> host_steps::StepEnv {
    let mut env = host_steps::StepEnv { art_root: out.join("results"), ..Default::default() };
    for s in scen.iter().filter(|s| s.host_client) {
        env.scenarios.insert(s.name.clone(), s.dir.join("host-client.sh"));
        env.files.insert(s.name.clone(), out.join("scen").join(&s.name).join("files"));
    }
    env.vars.push(("VNC_HOST".into(), "127.0.0.1".into()));
    env.vars.push(("VNC_PORT".into(), vnc_port.to_string()));
    // gvnccapture takes a display number only (port = 5900 + display).
    env.vars.push(("VNC_DISPLAY".into(), vnc_port.saturating_sub(5900).to_string()));
    env.vars.push(("PNGCMP".into(), out.join("pngcmp").display().to_string()));
    for k in ["VNCDO", "GVNCCAPTURE"] {
        if let Some(v) = setup.get(k) {
            env.vars.push((k.into(), v.clone()));
        }
    }
    env
}

fn prepare_worker(
    out: &Path,
    w: usize,
    scen: &[Scenario],
    dm: DeviceModel,
    qemu: bool,
    host_steps_port: Option<u16>,
) -> Result<PathBuf, String> {
    let io = |e: std::io::Error| format!("worker {w} image: {e}");
    let wd = out.join(format!("worker-{w}"));
    let ov = wd.join("overlay");
    let _ = fs::remove_dir_all(&wd);
    fs::create_dir_all(ov.join("scen")).map_err(io)?;
    let mut list = String::new();
    for s in scen {
        let d = ov.join("scen").join(&s.name);
        fs::create_dir_all(&d).map_err(io)?;
        for f in ["host.sh", "cmdline"] {
            if s.dir.join(f).is_file() {
                fs::copy(s.dir.join(f), d.join(f)).map_err(io)?;
            }
        }
        let initrd = out.join("scen").join(&s.name).join("initrd.cpio");
        if initrd.is_file() {
            fs::copy(&initrd, d.join("initrd.cpio")).map_err(io)?;
        }
        // What the scenario's prepare.sh made (ISOs, images) sits next to host.sh.
        copy_tree(&out.join("scen").join(&s.name).join("files"), &d).map_err(io)?;
        fs::write(d.join("timeout"), format!("{}\n", s.options.timeout)).map_err(io)?;
        list += &s.name;
        list.push('\n');
    }
    fs::write(ov.join("scen/list"), list).map_err(io)?;
    let mut env = format!("DM={}\n", dm.name());
    if let Some(p) = host_steps_port {
        // L2 brings up eth0 (l2/init) and reaches the host's step server through slirp's gateway.
        env += &format!("HOSTSTEPS=10.0.2.2:{p}\n");
    }
    fs::write(ov.join("scen/env"), env).map_err(io)?;
    let overlay = wd.join("overlay.cpio");
    sh(
        Command::new("sh")
            .arg("-c")
            .arg("cd \"$1\" && find . | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0 > \"$2\"")
            .arg("sh")
            .arg(&ov)
            .arg(&overlay),
        "cpio (worker overlay)",
    )?;
    let image = wd.join("l2.cpio");
    let mut f = fs::File::create(&image).map_err(io)?;
    let mut parts = vec![out.join("l2-base.cpio")];
    if qemu {
        parts.push(out.join("l2-qemu.cpio"));
    }
    parts.push(overlay);
    for p in parts {
        let data = fs::read(&p).map_err(|e| format!("{}: {e}", p.display()))?;
        f.write_all(&data).map_err(io)?;
    }
    Ok(image)
}

/// Copies the files and directories under `from` (if it exists) into `to`.
fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    let Ok(rd) = fs::read_dir(from) else {
        return Ok(());
    };
    for e in rd {
        let e = e?;
        let dest = to.join(e.file_name());
        if e.file_type()?.is_dir() {
            fs::create_dir_all(&dest)?;
            copy_tree(&e.path(), &dest)?;
        } else {
            fs::copy(e.path(), &dest)?;
        }
    }
    Ok(())
}

fn l1_command(qemu: &Path, vmlinuz: &str, initrd: &Path, mem: &str) -> Command {
    let mut c = Command::new(qemu);
    c.args(["-accel", "tcg", "-cpu", "max", "-m", mem, "-smp", "1"])
        .args(["-nodefaults", "-no-user-config", "-display", "none", "-serial", "stdio", "-no-reboot"])
        .arg("-kernel")
        .arg(vmlinuz)
        .arg("-initrd")
        .arg(initrd)
        .args(["-append", "console=ttyS0 panic=-1 quiet"]);
    c
}

/// Runs one L1 QEMU to completion or `limit`; returns its stamped console log and a note if it
/// did not end normally. The log is also written to `log` as it arrives.
fn run_l1(w: usize, mut cmd: Command, log: &Path, limit: Duration) -> Result<(String, Option<String>), String> {
    let t0 = Instant::now();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start L1 QEMU: {e}"))?;
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut file = fs::File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
    let reader = thread::spawn(move || {
        let mut text = String::new();
        let mut r = BufReader::new(stdout);
        let mut buf = Vec::new();
        while r.read_until(b'\n', &mut buf).map(|n| n > 0).unwrap_or(false) {
            let line = String::from_utf8_lossy(&buf);
            let line = line.trim_end_matches(['\n', '\r']).replace('\r', "");
            let l = format!("[{:7.2}] {line}\n", t0.elapsed().as_secs_f64());
            if line.contains("@@END ") || line.contains("@@L2 ready") || line.contains("@@TIMEOUT ") {
                progress(&format!("worker {w}: {}", l.trim_end()));
            }
            let _ = file.write_all(l.as_bytes());
            text += &l;
            buf.clear();
        }
        text
    });
    let err_reader = thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut BufReader::new(stderr), &mut s);
        s
    });
    let mut note = None;
    loop {
        match child.try_wait() {
            Ok(Some(st)) => {
                if !st.success() {
                    note = Some(format!("L1 QEMU exited with {st}"));
                }
                break;
            }
            Ok(None) if t0.elapsed() > limit => {
                let _ = child.kill();
                let _ = child.wait();
                note = Some(format!("L1 QEMU killed after {}s (host-side limit)", limit.as_secs()));
                break;
            }
            Ok(None) => thread::sleep(Duration::from_millis(100)),
            Err(e) => return Err(format!("waiting for L1 QEMU: {e}")),
        }
    }
    let text = reader.join().unwrap_or_default();
    let err = err_reader.join().unwrap_or_default();
    if !err.trim().is_empty() {
        let n = note.get_or_insert_with(String::new);
        write!(n, " L1 QEMU stderr: {}", err.trim()).unwrap();
    }
    Ok((text, note))
}

static SUITE: OnceLock<Result<Report, String>> = OnceLock::new();

/// The body of each generated per-scenario test: runs the suite once per process, then
/// asserts this scenario's outcome (with its log on failure).
pub fn assert_scenario(name: &str) {
    let suite = SUITE.get_or_init(|| Config::from_env().and_then(|c| run_suite(&c)));
    let report = match suite {
        Ok(r) => r,
        Err(e) => panic!("nested suite could not run: {e} (see the messages above)"),
    };
    let Some(o) = report.outcomes.get(name) else {
        // Reachable when SCENARIOS was set explicitly to a subset, or for a benchmark.
        eprintln!("{name}: NOT RUN: not selected by SCENARIOS, or a benchmark (bench=1: run it through bench/)");
        return;
    };
    if !o.failures.is_empty() {
        let log = o.run.as_ref().map(|r| r.lines.join("\n")).unwrap_or_default();
        panic!(
            "scenario {name} FAILED (device model {}, worker {}):\n  - {}\n--- log ({}) ---\n{log}\n--- end of log ---",
            report.dm.name(),
            o.worker,
            o.failures.join("\n  - "),
            o.log_path.display(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = "\
[   5.10] @@L2 ready dm=ours uptime=4.2
[   5.20] @@BEGIN alpha uptime=4.3
[   9.00] L3-SHELL-OK 42
[   9.10] @@dm-exit rc=0
[   9.20] @@END alpha rc=0 uptime=8.3
[   9.30] @@BEGIN beta uptime=8.4
[  20.00] @@TIMEOUT beta after 10s
[  20.10] @@END beta rc=137 uptime=19.0
[  20.20] @@BEGIN gamma uptime=19.1
[  21.00] partial
";

    #[test]
    fn split_log_frames_scenarios() {
        let runs = split_log(LOG);
        assert_eq!(runs.len(), 3);
        let a = &runs["alpha"];
        assert_eq!(a.rc, Some(0));
        assert_eq!(a.lines.len(), 2);
        assert!((a.seconds.unwrap() - 4.0).abs() < 1e-9);
        assert!(runs["beta"].timed_out);
        assert_eq!(runs["beta"].rc, Some(137));
        assert_eq!(runs["gamma"].rc, None);
        assert_eq!(runs["gamma"].lines, vec!["[  21.00] partial".to_string()]);
    }

    #[test]
    fn check_reports_each_unmet_expectation() {
        let runs = split_log(LOG);
        let e = parse_expect("contains L3-SHELL-OK\nlacks panic\ncount 1 @@dm-exit\nstatus 0\n").unwrap();
        assert!(check(&e, runs.get("alpha")).is_empty());
        let e = parse_expect("contains NOPE\nlacks SHELL\ncount 2 @@dm-exit\nstatus nonzero\n").unwrap();
        assert_eq!(check(&e, runs.get("alpha")).len(), 4);
        let e = parse_expect("contains x\n").unwrap();
        let f = check(&e, runs.get("beta"));
        assert!(f.iter().any(|m| m.contains("timed out")), "{f:?}");
        assert!(f.iter().any(|m| m.contains("exit status 137")), "{f:?}");
        assert!(check(&e, runs.get("gamma"))[0].contains("never finished"));
        assert!(check(&e, None)[0].contains("never started"));
    }

    #[test]
    fn parse_expect_defaults_status_zero_and_rejects_unknown() {
        assert_eq!(
            parse_expect("# c\ncontains a b\n").unwrap(),
            vec![Expectation::Contains("a b".into()), Expectation::Status(Status::Code(0))]
        );
        assert!(parse_expect("contain x\n").is_err());
        assert!(parse_expect("count x y\n").is_err());
        assert!(parse_expect("status\n").is_err());
    }

    #[test]
    fn options_parse() {
        let o = parse_options(
            "timeout=120\ncost=3\nmodules=\"virtio_blk ext4\"\nneeds_qemu=1\nguest_tools=\"cdctl pio\"\n",
        )
        .unwrap();
        assert_eq!(o.guest_tools, vec!["cdctl", "pio"]);
        assert_eq!(o.timeout, 120);
        assert_eq!(o.cost, 3);
        assert!(o.needs_qemu);
        assert_eq!(o.modules, vec!["virtio_blk", "ext4"]);
        assert!(parse_options("bogus=1").is_err());
    }

    #[test]
    fn partition_balances_cost() {
        let mk = |n: &str, cost| Scenario {
            name: n.into(),
            dir: PathBuf::new(),
            options: Options { cost, ..Options::default() },
            expect: vec![],
            host_client: false,
        };
        let s = vec![mk("a", 1), mk("b", 3), mk("c", 1), mk("d", 1)];
        let g = partition(&s, 2);
        assert_eq!(g, vec![vec![1], vec![0, 2, 3]]);
        assert_eq!(partition(&s[..1], 2), vec![vec![0]]);
    }

    #[test]
    fn shipped_scenarios_parse() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
        let all = discover(&dir).unwrap();
        assert!(all.iter().any(|s| s.name == "boot-to-shell"));
    }
}
