//! The `braid` command: a guided demo of the runtime, and its benchmarks.

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
        /// Cores to run on (default: every CPU this process may use).
        #[arg(long)]
        cores: Option<usize>,
        /// Strands in the spawn section.
        #[arg(long, default_value_t = 1_000_000)]
        strands: usize,
    },
    /// Micro-benchmarks of braid against tokio and std threads, run in this process.
    Bench {
        /// Fewer repetitions, for a quick look.
        #[arg(long)]
        quick: bool,
    },
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Demo { cores, strands } => demo::run(cores, strands),
        Command::Bench { quick } => braid_bench::run(&braid_bench::Options { quick }),
    };
    match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("braid: {err}");
            std::process::ExitCode::FAILURE
        }
    }
}
