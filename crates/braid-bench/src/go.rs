//! The Go peer: `peers/go`, built with the local Go toolchain (installed by
//! `scripts/install-peers.sh`) the first time a run needs it, then run once per
//! sample with `GOMAXPROCS` set to the cores of the figure.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The built peer, or why there is none (reported once as a note).
fn built() -> &'static Result<PathBuf, String> {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BUILT.get_or_init(build)
}

fn build() -> Result<PathBuf, String> {
    if Command::new("go").arg("version").output().is_err() {
        return Err(
            "Go is not installed (scripts/install-peers.sh installs it): Go figures skipped".into(),
        );
    }
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../peers/go");
    let out_dir = std::env::temp_dir().join(format!("braid-peers-go-{}", std::process::id()));
    std::fs::create_dir_all(&out_dir).map_err(|e| e.to_string())?;
    let exe = out_dir.join("braid-peers-go");
    let status = Command::new("go")
        .args(["build", "-o"])
        .arg(&exe)
        .arg(".")
        .current_dir(&source)
        .env("GOCACHE", out_dir.join("cache"))
        .env("GOFLAGS", "-mod=mod")
        .status()
        .map_err(|e| format!("cannot run go build: {e}"))?;
    if !status.success() {
        return Err(format!(
            "go build of {} failed ({status}): Go figures skipped",
            source.display()
        ));
    }
    Ok(exe)
}

/// The Go version, for the report.
pub(crate) fn version() -> Option<String> {
    crate::report::command_line("go", &["version"])
}

/// Why the Go peer cannot run, if it cannot.
pub(crate) fn unavailable() -> Option<String> {
    built().as_ref().err().cloned()
}

/// Runs the peer `runs + 1` times (the first is a warm-up) with `args` on
/// `cores` cores; returns each measured run's numbers (one or more per run),
/// or `None` if the peer is unavailable or failed.
pub(crate) fn sample(args: &[&str], cores: usize, runs: usize) -> Option<Vec<Vec<f64>>> {
    let exe = built().as_ref().ok()?;
    let mut out = Vec::with_capacity(runs);
    for i in 0..=runs {
        let run = Command::new(exe)
            .args(args)
            .env("GOMAXPROCS", cores.to_string())
            .output()
            .ok()?;
        if !run.status.success() {
            eprintln!(
                "go peer {args:?} failed: {}",
                String::from_utf8_lossy(&run.stderr).trim()
            );
            return None;
        }
        let values: Vec<f64> = String::from_utf8_lossy(&run.stdout)
            .split_whitespace()
            .filter_map(|v| v.parse().ok())
            .collect();
        if values.is_empty() {
            return None;
        }
        if i > 0 {
            out.push(values);
        }
    }
    Some(out)
}

/// The first number of each run, sorted (a figure's samples).
pub(crate) fn samples(args: &[&str], cores: usize, runs: usize) -> Option<Vec<f64>> {
    let mut v: Vec<f64> = sample(args, cores, runs)?
        .into_iter()
        .map(|r| r[0])
        .collect();
    v.sort_by(f64::total_cmp);
    Some(v)
}
