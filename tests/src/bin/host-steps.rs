//! The host-step server (see `nested_tests::host_steps`) as a program, for the Xen harness
//! (tests/xen/run.sh is a shell script):
//!
//! ```text
//! host-steps --art DIR [--var KEY=VALUE]... NAME=SCRIPT...
//! ```
//! Prints `HOST-STEPS port=N` once listening, then serves until killed (or stdin closes).
use nested_tests::host_steps::{HostSteps, StepEnv};
use std::io::Read;
use std::path::PathBuf;

fn main() {
    let mut env = StepEnv::default();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = |what: &str| args.next().unwrap_or_else(|| die(&format!("{a} needs {what}")));
        match a.as_str() {
            "--art" => env.art_root = PathBuf::from(value("a directory")),
            "--var" => {
                let kv = value("KEY=VALUE");
                let (k, v) = kv.split_once('=').unwrap_or_else(|| die(&format!("--var {kv}: expected KEY=VALUE")));
                env.vars.push((k.into(), v.into()));
            }
            s => {
                let (n, p) = s.split_once('=').unwrap_or_else(|| die(&format!("{s}: expected NAME=SCRIPT")));
                env.scenarios.insert(n.into(), PathBuf::from(p));
            }
        }
    }
    if env.art_root.as_os_str().is_empty() {
        die("--art DIR is required");
    }
    let hs = HostSteps::start(env).unwrap_or_else(|e| die(&e));
    println!("HOST-STEPS port={}", hs.port());
    // Serve until stdin reaches EOF (the harness closes it, or kills us).
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
}

fn die(msg: &str) -> ! {
    eprintln!("host-steps: {msg}");
    std::process::exit(2);
}
