//! Records, for the benchmark report, the rustc that built the suite and the
//! versions of the peer crates it links (from the workspace's Cargo.lock).

use std::path::Path;
use std::process::Command;

fn main() {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let version = Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=BRAID_BENCH_RUSTC={version}");
    let manifest = std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo");
    let lock_path = Path::new(&manifest).join("../../Cargo.lock");
    println!("cargo:rerun-if-changed={}", lock_path.display());
    let lock = std::fs::read_to_string(&lock_path).unwrap_or_default();
    for (krate, var) in [
        ("tokio", "TOKIO"),
        ("parking_lot", "PARKING_LOT"),
        ("rayon", "RAYON"),
        ("may", "MAY"),
        ("hyper", "HYPER"),
    ] {
        println!(
            "cargo:rustc-env=BRAID_BENCH_{var}={}",
            locked_version(&lock, krate).unwrap_or_else(|| "unknown".into())
        );
    }
}

/// The version Cargo.lock pins for package `name`.
fn locked_version(lock: &str, name: &str) -> Option<String> {
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line.trim() == format!("name = \"{name}\"") {
            let next = lines.next()?;
            return next
                .trim()
                .strip_prefix("version = \"")?
                .strip_suffix('"')
                .map(str::to_owned);
        }
    }
    None
}
