//! Peers run as separate programs in the same run: Go (`peers/go`, built with
//! the local toolchain the first time a run needs it, run with `GOMAXPROCS` =
//! the figure's cores), Erlang (`peers/erlang/braid_peers.escript`, run with
//! `+S` = the figure's cores), and the Rust crate `may` (`may_peer.rs`, in a
//! child `braid peer-may` process, because may fixes its worker count once per
//! process). `scripts/install-peers.sh` installs the Go and Erlang toolchains;
//! a missing peer is reported once as a note and its rows are left out.

use crate::figures::Row;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

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
fn unavailable() -> Option<String> {
    built().as_ref().err().cloned()
}

/// A peer runtime that runs as a separate program.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Peer {
    /// `peers/go`, `GOMAXPROCS` = the figure's cores.
    Go,
    /// `peers/erlang/braid_peers.escript`, `+S` = the figure's cores.
    Erlang,
    /// The `may` crate, in a child `braid peer-may` process with the figure's
    /// cores as may's workers (may's worker count is fixed per process).
    May,
}

/// Measured runs per peer figure, like the in-process figures.
const RUNS: usize = 5;

impl Peer {
    /// The runtime's name in the records.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Peer::Go => "go",
            Peer::Erlang => "erlang",
            Peer::May => "may",
        }
    }

    /// Why this peer cannot run here, if it cannot (one line for the report).
    pub(crate) fn unavailable(self) -> Option<String> {
        match self {
            Peer::Go => unavailable(),
            Peer::Erlang => erlang_unavailable(),
            Peer::May => braid_exe()
                .err()
                .map(|e| format!("may figures skipped: {e}")),
        }
    }

    /// The numbers the peer printed for `args` on `cores` cores, one list per
    /// measured run (after a warm-up run), or `None` if it cannot run.
    pub(crate) fn runs(self, args: &[&str], cores: usize) -> Option<Vec<Vec<f64>>> {
        match self {
            Peer::Go => sample(args, cores, RUNS),
            Peer::Erlang => erlang_sample(args, cores, RUNS),
            Peer::May => {
                let exe = braid_exe().ok()?;
                measure(
                    || {
                        let mut c = Command::new(&exe);
                        c.arg("peer-may").arg(cores.to_string()).args(args);
                        c
                    },
                    RUNS,
                )
            }
        }
    }

    /// The peer's row for a figure: the first number of each measured run.
    pub(crate) fn row(self, args: &[&str], cores: usize) -> Option<Row> {
        self.runs(args, cores)
            .map(|runs| Row::new(self.name(), first_sorted(runs)))
    }
}

/// Rows of every peer in `peers` that can run the workload.
pub(crate) fn rows(peers: &[Peer], args: &[&str], cores: usize) -> Vec<Row> {
    peers.iter().filter_map(|p| p.row(args, cores)).collect()
}

/// The `braid` CLI, whose hidden subcommands run the may peer (`braid
/// peer-may …`) and measurements that need a fresh process (`braid
/// peer-parked …`).
fn braid_exe() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    if exe.file_stem().and_then(|s| s.to_str()) == Some("braid") {
        Ok(exe)
    } else {
        Err("they run from the braid CLI (`braid bench`)".into())
    }
}

/// The samples (first number of each measured run, after a warm-up run) of
/// `braid ARGS` in a fresh child process each run.
pub(crate) fn braid_child(args: &[&str]) -> Result<Vec<f64>, String> {
    let exe = braid_exe()?;
    measure(
        || {
            let mut c = Command::new(&exe);
            c.args(args);
            c
        },
        RUNS,
    )
    .map(first_sorted)
    .ok_or_else(|| format!("`braid {}` failed (see the report's notes)", args.join(" ")))
}

/// Runs a peer program `runs + 1` times (the first is a warm-up); returns each
/// measured run's numbers (one or more per run), or `None` if it failed.
/// A failed run is reported on stderr and kept for the report's notes.
fn measure(mut command: impl FnMut() -> Command, runs: usize) -> Option<Vec<Vec<f64>>> {
    let mut out = Vec::with_capacity(runs);
    for i in 0..=runs {
        let mut cmd = command();
        let run = cmd.env("RUST_BACKTRACE", "0").output().ok()?;
        if !run.status.success() {
            let what = format!(
                "peer program `{} {}` failed: {}",
                Path::new(cmd.get_program())
                    .file_name()
                    .unwrap_or_default()
                    .to_string_lossy(),
                cmd.get_args()
                    .map(|a| a.to_string_lossy())
                    .collect::<Vec<_>>()
                    .join(" "),
                why_failed(&run.stderr)
            );
            eprintln!("  {what}");
            FAILURES
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(what);
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

/// Failed peer runs of this process, for the report's notes.
static FAILURES: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Takes the failures recorded so far.
pub(crate) fn take_failures() -> Vec<String> {
    std::mem::take(&mut *FAILURES.lock().unwrap_or_else(|e| e.into_inner()))
}

/// The line of a failed peer's stderr that says why: a Rust panic's message
/// (the line after "panicked at"), else the last line.
fn why_failed(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let panic = lines.iter().position(|l| l.contains("panicked at"));
    panic
        .and_then(|i| lines.get(i + 1))
        .or(lines.last())
        .map(|l| l.trim().to_owned())
        .unwrap_or_else(|| "no output".into())
}

/// The first number of each run, sorted (a figure's samples).
fn first_sorted(runs: Vec<Vec<f64>>) -> Vec<f64> {
    let mut v: Vec<f64> = runs.into_iter().map(|r| r[0]).collect();
    v.sort_by(f64::total_cmp);
    v
}

/// The Go peer's numbers for `args` on `cores` cores, per run.
fn sample(args: &[&str], cores: usize, runs: usize) -> Option<Vec<Vec<f64>>> {
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

/// Why the Erlang peer cannot run, if it cannot.
fn erlang_unavailable() -> Option<String> {
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

/// The Erlang peer's numbers for `args` on `cores` schedulers, per run.
fn erlang_sample(args: &[&str], cores: usize, runs: usize) -> Option<Vec<Vec<f64>>> {
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_peer_says_why_in_one_line() {
        let panic = b"\nthread '<unnamed>' (7) panicked at src/stack.rs:5:9:\nfailed to alloc sys stack\nnote: run with RUST_BACKTRACE=1\n";
        assert_eq!(why_failed(panic), "failed to alloc sys stack");
        assert_eq!(why_failed(b"wrong sum 7\n\n"), "wrong sum 7");
        assert_eq!(why_failed(b""), "no output");
    }

    #[test]
    fn the_may_peer_refuses_bad_arguments() {
        let err = |args: &[&str]| {
            let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
            crate::may_peer::main(&args).unwrap_err()
        };
        assert!(err(&["0", "yield", "1"]).contains("workers must be 1 or more"));
        assert!(err(&["1", "nope"]).contains("unknown workload \"nope\""));
        assert!(err(&["1", "yield"]).contains("missing argument 2"));
        assert!(err(&["x"]).contains("bad argument \"x\""));
    }
}
