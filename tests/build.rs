//! Generates one `#[test]` per scenario directory under `scenarios/`.
use std::{env, fs, path::Path};

fn main() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut names: Vec<String> = fs::read_dir(&dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter(|e| e.path().join("expect").is_file())
                .filter_map(|e| e.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default();
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
