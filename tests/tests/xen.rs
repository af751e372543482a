//! Xen mode of the integration tests: ONE Xen 4.17 L1 under QEMU TCG (PV dom0 with the real xl,
//! Debian's qemu-xen and our device model) runs every Xen scenario; each test then reports its own
//! scenario. The first test to run boots the suite (`tests/xen/run.sh`); see tests/xen/README.md.
//!
//! `XEN_SCENARIOS="a b"` runs only those (the other tests pass and say "not selected"). If the suite
//! cannot run at all (download, build or L1 failure), every test fails saying why: nothing is skipped.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// The scenarios, in tests/xen/scenarios/list order (checked by `scenario_list_matches_the_tests`).
const SCENARIOS: &[&str] = &[
    "xen-qemu-baseline",
    "xen-qemu-save-restore",
    "xen-ours-boot",
    "xen-ours-cd",
    "xen-ours-lifecycle",
    "xen-ours-save-restore",
    "xen-qemu-pvdisk",
    "xen-ours-pvdisk",
    "xen-bench",
    "xen-ours-vga-mem",
    "xen-qemu-pci-intx",
    "xen-ours-pci-intx",
    "xen-qemu-vga-std",
    "xen-qemu-vga-cirrus",
    "xen-ours-vga-std",
    "xen-ours-vga-cirrus",
    "xen-qemu-vga-linux",
    "xen-ours-vga-linux",
];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").to_path_buf()
}

/// Progress on the real stderr (libtest captures `eprintln!` of test threads).
fn progress(msg: &str) {
    let _ = writeln!(std::io::stderr(), "xen: {msg}");
}

fn selected() -> Vec<String> {
    match std::env::var("XEN_SCENARIOS") {
        Ok(s) if !s.trim().is_empty() => s.split_whitespace().map(String::from).collect(),
        _ => SCENARIOS.iter().map(|s| s.to_string()).collect(),
    }
}

/// Runs the suite once; Ok(results dir) when it ran (whatever the scenarios' outcome).
fn suite() -> &'static Result<PathBuf, String> {
    static RUN: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    RUN.get_or_init(|| {
        let root = root();
        let out = std::env::var_os("XEN_OUT").map(PathBuf::from).unwrap_or_else(|| root.join("target/xen"));
        let results = out.join("results");
        let _ = std::fs::remove_dir_all(&results);
        let names = selected();
        if let Some(bad) = names.iter().find(|n| !SCENARIOS.contains(&n.as_str())) {
            return Err(format!("XEN_SCENARIOS names unknown scenario {bad:?} (known: {})", SCENARIOS.join(" ")));
        }
        progress(&format!("booting one Xen L1 for: {}", names.join(" ")));
        let t0 = std::time::Instant::now();
        let output = Command::new("bash")
            .arg(root.join("tests/xen/run.sh"))
            .args(&names)
            .env("XEN_OUT", &out)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .output()
            .map_err(|e| format!("cannot run tests/xen/run.sh: {e}"))?;
        let summary = String::from_utf8_lossy(&output.stdout);
        progress(&format!("suite finished in {:.0} s:\n{summary}", t0.elapsed().as_secs_f64()));
        if !results.join("summary.txt").is_file() {
            return Err(format!(
                "tests/xen/run.sh could not run the Xen suite (exit status {}); its stdout:\n{summary}",
                output.status
            ));
        }
        if !out.join("console.log").is_file() {
            return Err("no console.log: the Xen L1 did not start".into());
        }
        let console = std::fs::read_to_string(out.join("console.log")).unwrap_or_default();
        if !console.contains("@@DOM0-READY") {
            let tail: Vec<&str> = console.lines().rev().take(40).collect();
            return Err(format!(
                "the Xen L1 never reached dom0 ready; last console lines:\n{}",
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            ));
        }
        Ok(results)
    })
}

/// A scenario's log without Xen's per-save chatter.
fn scenario_log(results: &Path, name: &str) -> String {
    std::fs::read_to_string(results.join(format!("{name}.log")))
        .unwrap_or_else(|_| "(no log: the scenario did not start)".into())
        .lines()
        .filter(|l| !l.contains("(XEN) HVM d") && !l.contains(" debug: "))
        .collect::<Vec<_>>()
        .join("\n")
}

fn assert_scenario(name: &str) {
    if !selected().iter().any(|n| n == name) {
        eprintln!("{name}: not selected by XEN_SCENARIOS, not run");
        return;
    }
    let results = match suite() {
        Ok(r) => r,
        Err(e) => panic!("Xen suite could not run: {e}"),
    };
    let status = std::fs::read_to_string(results.join(format!("{name}.status")))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "NOT-RUN".into());
    let log = scenario_log(results, name);
    if status != "PASS" {
        let failed: Vec<&str> = log.lines().filter(|l| l.contains("FAIL: ") || l.contains("@@TIMEOUT")).collect();
        panic!(
            "Xen scenario {name}: {status}\nfailed checks:\n{}\n---- log ({}) ----\n{log}",
            failed.join("\n"),
            results.join(format!("{name}.log")).display()
        );
    }
    // Passing scenarios show their measurements with --nocapture.
    for l in log.lines().filter(|l| l.contains("XEN-BENCH") || l.contains("BOOT name=")) {
        eprintln!("{l}");
    }
}

#[test]
fn scenario_list_matches_the_tests() {
    let list = std::fs::read_to_string(root().join("tests/xen/scenarios/list")).expect("tests/xen/scenarios/list");
    let listed: Vec<&str> = list
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(listed, SCENARIOS, "tests/xen/scenarios/list and the tests in tests/tests/xen.rs differ");
}

#[test]
fn xen_qemu_baseline() {
    assert_scenario("xen-qemu-baseline");
}

#[test]
fn xen_qemu_save_restore() {
    assert_scenario("xen-qemu-save-restore");
}

#[test]
fn xen_ours_boot() {
    assert_scenario("xen-ours-boot");
}

#[test]
fn xen_ours_cd() {
    assert_scenario("xen-ours-cd");
}

#[test]
fn xen_ours_lifecycle() {
    assert_scenario("xen-ours-lifecycle");
}

#[test]
fn xen_ours_vga_mem() {
    assert_scenario("xen-ours-vga-mem");
}

#[test]
fn xen_ours_save_restore() {
    assert_scenario("xen-ours-save-restore");
}

#[test]
fn xen_qemu_pvdisk() {
    assert_scenario("xen-qemu-pvdisk");
}

#[test]
fn xen_ours_pvdisk() {
    assert_scenario("xen-ours-pvdisk");
}

#[test]
fn xen_bench() {
    assert_scenario("xen-bench");
}

#[test]
fn xen_qemu_pci_intx() {
    assert_scenario("xen-qemu-pci-intx");
}

#[test]
fn xen_ours_pci_intx() {
    assert_scenario("xen-ours-pci-intx");
}

#[test]
fn xen_qemu_vga_std() {
    assert_scenario("xen-qemu-vga-std");
}

#[test]
fn xen_qemu_vga_cirrus() {
    assert_scenario("xen-qemu-vga-cirrus");
}

#[test]
fn xen_ours_vga_std() {
    assert_scenario("xen-ours-vga-std");
}

#[test]
fn xen_ours_vga_cirrus() {
    assert_scenario("xen-ours-vga-cirrus");
}

#[test]
fn xen_qemu_vga_linux() {
    assert_scenario("xen-qemu-vga-linux");
}

#[test]
fn xen_ours_vga_linux() {
    assert_scenario("xen-ours-vga-linux");
}
