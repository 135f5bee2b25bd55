//! braid's benchmark suite: each workload runs on braid and on the runtimes
//! people would pick instead, in the same process (or, for peers in other
//! languages, the same run), and every figure is a ratio measured in that run.
//!
//! Method: one warm-up run, then at least five measured runs; the median is
//! quoted with the min–max range. Nothing here asserts a speed. A run leaves
//! `results.json` (one record per workload × runtime × cores × metric),
//! `machine.json` and `report.md` in its output folder.

mod budget;
mod classic;
mod dispersive;
mod figures;
mod hogs;
mod latency;
pub mod may_peer;
pub mod micro;
pub mod net;
mod peers;
mod plots;
mod report;
mod rt;
mod scale;
mod sync;

use std::error::Error;
use std::path::PathBuf;

/// What to run.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Smaller workloads, for a quick look (still five measured runs).
    pub quick: bool,
    /// The real run: the largest workloads. Without `quick` the suite runs
    /// these sizes whether or not this is set; it names the choice.
    pub full: bool,
    /// Only workloads whose name contains this, or one of its `|`-separated
    /// parts.
    pub filter: Option<String>,
    /// Worker counts for the scaling workloads (empty: 1, 2, 4 … up to the
    /// CPUs available).
    pub cores: Vec<usize>,
    /// Output folder (default `target/braid-bench/<UTC date-time>/`).
    pub out: Option<PathBuf>,
    /// Print the records as JSON on stdout (the tables go to stderr).
    pub json: bool,
}

/// Runs the suite, prints its figures and summary, and writes its files.
/// Returns the output folder.
pub fn run(options: &Options) -> Result<PathBuf, Box<dyn Error>> {
    let mut suite = report::Suite::new(options.clone());
    let peer_workloads: [(peers::Peer, &[&str]); 3] = [
        (
            peers::Peer::Go,
            &[
                "yield_switch",
                "channel_ping_pong",
                "skynet",
                "ring",
                "latency_under_load",
            ],
        ),
        (
            peers::Peer::Erlang,
            &["skynet", "ring", "latency_under_load"],
        ),
        (
            peers::Peer::May,
            &[
                "yield_switch",
                "spawn_join",
                "channel_ping_pong",
                "skynet",
                "ring",
                "latency_under_load",
            ],
        ),
    ];
    for (peer, workloads) in peer_workloads {
        if workloads.iter().any(|w| suite.wants(w)) {
            if let Some(why) = peer.unavailable() {
                suite.note(&why);
            }
        }
    }
    micro::run_all(&mut suite)?;
    sync::run_all(&mut suite)?;
    classic::run_all(&mut suite)?;
    latency::run_all(&mut suite)?;
    hogs::run_all(&mut suite)?;
    budget::run_all(&mut suite)?;
    dispersive::run_all(&mut suite)?;
    net::run_all(&mut suite)?;
    scale::run_all(&mut suite)?;
    suite.finish()
}
