//! Generates one `#[test]` per scenario directory under `scenarios/`.
use std::{env, fs, path::Path};

fn main() {
    // The manifest directory of this build, read at run time: a build-script binary reused from
    // another checkout (a shared target directory) must not read that checkout's scenarios.
    let dir = Path::new(&env::var("CARGO_MANIFEST_DIR").unwrap()).join("scenarios");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut names: Vec<String> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read the scenarios in {}: {e}", dir.display()))
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("expect").is_file())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    // A suite of zero tests would pass without running anything.
    assert!(!names.is_empty(), "no scenarios (directories with an `expect` file) in {}", dir.display());
    names.sort();
    let mut out = String::new();
    for name in &names {
        let ident: String =
            name.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' }).collect();
        out += &format!("#[test]\nfn scenario_{ident}() {{ nested_tests::assert_scenario({name:?}); }}\n");
    }
    let dest = Path::new(&env::var("OUT_DIR").unwrap()).join("scenario_tests.rs");
    fs::write(dest, out).unwrap();
}
