//! braid's benchmarks: each workload runs on braid, tokio and std threads in the
//! same process, and every figure is printed with its ratio to the peers.
//!
//! Method: one warm-up run, then at least five measured runs; the median is
//! quoted with the min–max range. Nothing here asserts a speed.

mod figures;
mod micro;
mod sync;

use std::error::Error;

/// What to run.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Smaller workloads, for a quick look (still five measured runs).
    pub quick: bool,
}

/// Runs the benchmarks and prints their figures.
pub fn run(options: &Options) -> Result<(), Box<dyn Error>> {
    micro::run_all(options)?;
    sync::run_all(options)
}
