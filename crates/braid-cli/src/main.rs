//! The `braid` command: a guided demo of the runtime, its benchmarks, and the
//! scheduler simulator.

mod demo;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "braid",
    version,
    about = "braid: a decentralized per-core M:N strand runtime"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// A short tour: a million strands, a contained panic, a hog that does not
    /// starve its neighbours, and per-core statistics.
    Demo {
        /// A server to run instead of the tour.
        #[command(subcommand)]
        server: Option<DemoServer>,
        /// Cores to run on (default: every CPU this process may use).
        #[arg(long, global = true)]
        cores: Option<usize>,
        /// Strands in the spawn section.
        #[arg(long, default_value_t = 1_000_000)]
        strands: usize,
    },
    /// The benchmark suite: braid and its peers side by side, with a report
    /// (`report.md`, `results.json`, `machine.json`) in the output folder.
    Bench {
        /// Smaller workloads, for a quick look (a few minutes on 2 cores).
        #[arg(long, conflicts_with = "full")]
        quick: bool,
        /// The real run: the largest workloads (also what runs when neither
        /// --quick nor --full is given).
        #[arg(long)]
        full: bool,
        /// Only workloads whose name contains this (e.g. `channel`), or any of
        /// several separated by `|` (e.g. `spawn|scale_map`).
        #[arg(long)]
        filter: Option<String>,
        /// Worker counts for the scaling workloads, e.g. `1,2,4`.
        #[arg(long, value_delimiter = ',')]
        cores: Vec<usize>,
        /// Output folder (default: target/braid-bench/<UTC date-time>/).
        #[arg(long)]
        out: Option<std::path::PathBuf>,
        /// Print the results as JSON on stdout (tables go to stderr).
        #[arg(long)]
        json: bool,
    },
    /// The deterministic simulator: braid-core's per-core scheduler on 1 to
    /// 1024 virtual cores, over synthetic workloads (table on stdout;
    /// sim.json, report.md and plots in the output folder).
    Sim {
        /// `calibrate RESULTS.json`: fit the cost model to a bench run.
        #[command(subcommand)]
        action: Option<SimAction>,
        /// Virtual core counts (default 1,2,4,…,1024).
        #[arg(long, value_delimiter = ',')]
        cores: Vec<usize>,
        /// Workloads, NAME or NAME:SIZE (map, pool, barrier, groups,
        /// process, service, skynet, uts, pingpong, ring, server,
        /// dispersive, share, budget; default all).
        #[arg(long, value_delimiter = ',')]
        workload: Vec<String>,
        /// The local scheduling policy every core runs.
        #[arg(long, default_value = "round-robin")]
        policy: String,
        /// The balancer every core runs.
        #[arg(long, default_value = "steal-half")]
        balancer: String,
        /// Seed of the cores' random generators.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Distances between cores: flat, or domains:N.
        #[arg(long, default_value = "flat")]
        topology: String,
        /// The resolution of the clock the schedulers read, in µs: 0 gives
        /// them the exact simulated time; 1000 models the runtime's 1 ms
        /// coarse clock.
        #[arg(long, default_value_t = 0)]
        clock_tick: u64,
        /// A calibration file written by `braid sim calibrate`.
        #[arg(long)]
        calibration: Option<std::path::PathBuf>,
        /// Output folder (default: target/braid-sim/run-<unix time>/).
        #[arg(long)]
        out: Option<std::path::PathBuf>,
        /// Print the reports as JSON on stdout (the table goes to stderr).
        #[arg(long)]
        json: bool,
    },
    /// Runs a benchmark server until killed (used by `braid bench`).
    #[command(hide = true)]
    PeerServer {
        /// Kind (echo, http), runtime (braid, tokio, hyper) and cores.
        args: Vec<String>,
    },
    /// Runs one workload of the `may` peer (used by `braid bench`).
    #[command(hide = true)]
    PeerMay {
        /// Workers, workload and its arguments.
        args: Vec<String>,
    },
    /// Measures resident memory per parked task in a fresh process (used by
    /// `braid bench`).
    #[command(hide = true)]
    PeerParked {
        /// Runtime (braid, tokio, std) and task count.
        args: Vec<String>,
    },
}

/// What `braid sim` can do besides a sweep.
#[derive(Subcommand)]
enum SimAction {
    /// Fit the simulator's cost model to a `braid bench` results.json and
    /// print its 1- and 2-core predictions against the measured times.
    Calibrate {
        /// The bench run's results.json.
        results: std::path::PathBuf,
        /// The bench run was `--quick` (its workloads are smaller).
        #[arg(long)]
        quick: bool,
        /// Where to write the calibration (default: calibration.json beside
        /// the results).
        #[arg(long)]
        out: Option<std::path::PathBuf>,
    },
}

/// The example servers `braid demo` can run.
#[derive(Subcommand)]
enum DemoServer {
    /// The echo server (braid_examples::echo).
    Echo {
        /// Address to listen on.
        #[arg(default_value = "127.0.0.1:7000")]
        addr: String,
    },
    /// The HTTP/1.1 hello server (braid_examples::http).
    Http {
        /// Address to listen on.
        #[arg(default_value = "127.0.0.1:8080")]
        addr: String,
    },
}

/// mimalloc for everything this binary runs: the demo, and in `braid bench`
/// braid and every in-process Rust peer (tokio, rayon, std threads) alike, as
/// well as the child processes (may, the servers). With glibc's malloc,
/// spawn-heavy work on several cores spends much of its time on frees of
/// memory another thread allocated (skynet on 2 cores, 2026-11-29: braid
/// 1245 ms and tokio 1367 ms with glibc, 472 ms and 453 ms with mimalloc; Go,
/// with its own allocator, 560–604 ms).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Demo {
            server: Some(DemoServer::Echo { addr }),
            cores,
            ..
        } => braid_examples::echo::run(&addr, cores),
        Command::Demo {
            server: Some(DemoServer::Http { addr }),
            cores,
            ..
        } => braid_examples::http::run(&addr, cores),
        Command::Demo {
            server: None,
            cores,
            strands,
        } => demo::run(cores, strands),
        Command::Sim {
            action:
                Some(SimAction::Calibrate {
                    results,
                    quick,
                    out,
                }),
            ..
        } => {
            let size = if quick {
                braid_sim::calibrate::BenchSize::Quick
            } else {
                braid_sim::calibrate::BenchSize::Full
            };
            braid_sim::cli::calibrate_main(&results, size, out.as_deref()).map(|_| ())
        }
        Command::Sim {
            action: None,
            cores,
            workload,
            policy,
            balancer,
            seed,
            topology,
            clock_tick,
            calibration,
            out,
            json,
        } => {
            let options = braid_sim::cli::SweepOptions {
                cores,
                workloads: workload,
                policy,
                balancer,
                seed,
                topology,
                clock_tick_us: clock_tick,
                calibration,
                out,
                json,
            };
            braid_sim::cli::sweep_main(&options).map(|_| ())
        }
        Command::PeerServer { args } => braid_bench::net::server_main(&args).map_err(Into::into),
        Command::PeerMay { args } => print_line(braid_bench::may_peer::main(&args)),
        Command::PeerParked { args } => print_line(braid_bench::micro::parked_main(&args)),
        Command::Bench {
            quick,
            full,
            filter,
            cores,
            out,
            json,
        } => {
            if let Some(&bad) = cores.iter().find(|&&c| c == 0) {
                eprintln!("braid: --cores {bad}: worker counts are 1 or more");
                return std::process::ExitCode::FAILURE;
            }
            let options = braid_bench::Options {
                quick,
                full,
                filter,
                cores,
                out,
                json,
            };
            braid_bench::run(&options).map(|_| ())
        }
    };
    match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("braid: {err}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Prints a hidden peer command's one-line result.
fn print_line(result: Result<String, String>) -> Result<(), Box<dyn std::error::Error>> {
    let line = result?;
    println!("{line}");
    Ok(())
}
