//! Peers in other languages, run as separate programs in the same run: Go
//! (`peers/go`, built with the local toolchain the first time a run needs it,
//! run with `GOMAXPROCS` = the figure's cores) and Erlang
//! (`peers/erlang/braid_peers.escript`, run with `+S` = the figure's cores).
//! `scripts/install-peers.sh` installs both toolchains; a missing one is
//! reported once as a note and its rows are left out.

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

/// Runs a peer program `runs + 1` times (the first is a warm-up); returns each
/// measured run's numbers (one or more per run), or `None` if it failed.
fn measure(mut command: impl FnMut() -> Command, runs: usize) -> Option<Vec<Vec<f64>>> {
    let mut out = Vec::with_capacity(runs);
    for i in 0..=runs {
        let run = command().output().ok()?;
        if !run.status.success() {
            eprintln!(
                "peer program failed: {}",
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
fn first_sorted(runs: Vec<Vec<f64>>) -> Vec<f64> {
    let mut v: Vec<f64> = runs.into_iter().map(|r| r[0]).collect();
    v.sort_by(f64::total_cmp);
    v
}

/// The Go peer's numbers for `args` on `cores` cores, per run.
pub(crate) fn sample(args: &[&str], cores: usize, runs: usize) -> Option<Vec<Vec<f64>>> {
    let exe = built().as_ref().ok()?;
    measure(
        || {
            let mut c = Command::new(exe);
            c.args(args).env("GOMAXPROCS", cores.to_string());
            c
        },
        runs,
    )
}

/// The Go peer's samples for a figure.
pub(crate) fn samples(args: &[&str], cores: usize, runs: usize) -> Option<Vec<f64>> {
    sample(args, cores, runs).map(first_sorted)
}

/// Why the Erlang peer cannot run, if it cannot.
pub(crate) fn erlang_unavailable() -> Option<String> {
    match Command::new("escript").arg("-h").output() {
        Ok(_) => None,
        Err(_) => Some(
            "Erlang is not installed (scripts/install-peers.sh installs it): Erlang figures skipped"
                .into(),
        ),
    }
}

/// The Erlang/OTP release, for the report.
pub(crate) fn erlang_version() -> Option<String> {
    crate::report::command_line(
        "erl",
        &[
            "-noshell",
            "-eval",
            "io:format(\"OTP ~s~n\", [erlang:system_info(otp_release)]), halt().",
        ],
    )
}

/// The Erlang peer's samples for `args` on `cores` schedulers.
pub(crate) fn erlang_samples(args: &[&str], cores: usize, runs: usize) -> Option<Vec<f64>> {
    erlang_unavailable().is_none().then_some(())?;
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../peers/erlang/braid_peers.escript");
    measure(
        || {
            let mut c = Command::new("escript");
            c.arg(&script)
                .args(args)
                // Schedulers = cores; room for skynet's 1.1 M processes.
                .env("ERL_FLAGS", format!("+S {cores} +P 4000000"));
            c
        },
        runs,
    )
    .map(first_sorted)
}
