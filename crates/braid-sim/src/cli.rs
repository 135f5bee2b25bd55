//! What `braid sim` and `braid sim calibrate` do: sweeps over core counts and
//! workloads with a table on stdout and `sim.json`, plots and `report.md` in
//! the output folder.

use crate::calibrate::{calibrate, BenchSize, Calibration};
use crate::workloads::Spec;
use crate::{sweep, BalancerKind, PolicyKind, SimConfig, SimError, SimReport, Topology, MAX_CORES};
use std::error::Error;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The settings of a `braid sim` sweep.
#[derive(Clone, Debug)]
pub struct SweepOptions {
    /// Core counts.
    pub cores: Vec<usize>,
    /// Workloads (`NAME` or `NAME:SIZE`; `all` for every one).
    pub workloads: Vec<String>,
    /// Policy name.
    pub policy: String,
    /// Balancer name.
    pub balancer: String,
    /// Seed.
    pub seed: u64,
    /// Topology (`flat`, `domains:N`).
    pub topology: String,
    /// The schedulers' clock resolution in µs (0: exact; see
    /// [`SimConfig::clock_tick`]).
    pub clock_tick_us: u64,
    /// A calibration written by `braid sim calibrate`.
    pub calibration: Option<PathBuf>,
    /// Output folder (default `target/braid-sim/<run>/`).
    pub out: Option<PathBuf>,
    /// Print the reports as JSON on stdout (the table goes to stderr).
    pub json: bool,
}

/// The default core counts: powers of two up to 1024.
pub const DEFAULT_CORES: [usize; 11] = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024];

fn specs(names: &[String]) -> Result<Vec<Spec>, SimError> {
    if names.is_empty() || names.iter().any(|n| n == "all") {
        return Ok(Spec::all());
    }
    names.iter().map(|n| Spec::parse(n)).collect()
}

/// Runs a sweep; returns the output folder.
pub fn sweep_main(options: &SweepOptions) -> Result<PathBuf, Box<dyn Error>> {
    let cores = if options.cores.is_empty() {
        DEFAULT_CORES.to_vec()
    } else {
        options.cores.clone()
    };
    if let Some(&bad) = cores.iter().find(|&&c| c == 0 || c > MAX_CORES) {
        return Err(SimError::BadArgument {
            what: "cores",
            value: bad.to_string(),
            allowed: format!("1..={MAX_CORES}"),
        }
        .into());
    }
    let mut config = SimConfig::new(1);
    config.policy = PolicyKind::parse(&options.policy)?;
    config.balancer = BalancerKind::parse(&options.balancer)?;
    config.seed = options.seed;
    config.topology = Topology::parse(&options.topology)?;
    config.clock_tick = options.clock_tick_us.saturating_mul(1_000);
    let calibration: Option<Calibration> = match &options.calibration {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read calibration {}: {e}", path.display()))?;
            let c: Calibration = serde_json::from_str(&text)
                .map_err(|e| format!("{} is not a calibration: {e}", path.display()))?;
            config.costs = c.costs;
            Some(c)
        }
        None => None,
    };
    let mut reports: Vec<SimReport> = Vec::new();
    let say = |line: &str| {
        if options.json {
            eprintln!("{line}");
        } else {
            println!("{line}");
        }
    };
    say(&format!(
        "braid sim: policy {}, balancer {}, topology {}, seed {}, clock {}, costs {}",
        config.policy.name(),
        config.balancer.name(),
        config.topology.name(),
        config.seed,
        match options.clock_tick_us {
            0 => "exact".to_owned(),
            us => format!("{us} us ticks"),
        },
        if calibration.is_some() {
            "calibrated"
        } else {
            "default"
        }
    ));
    say(&header());
    for mut spec in specs(&options.workloads)? {
        if let Some(cost) = calibration.as_ref().and_then(|c| c.cost_of(&spec)) {
            spec.cost_ns = cost;
        }
        for report in sweep(&config, &spec, &cores)? {
            say(&row(&report));
            if let Some(lease) = &report.lease {
                let ended = match lease.terminated_ns {
                    Some(t) => format!(
                        "terminated for fairness {:.1} ms after it began",
                        t.saturating_sub(lease.started_ns) as f64 / 1e6
                    ),
                    None => "held to the end".to_owned(),
                };
                say(&format!(
                    "    lease of core 0 from {:.1} ms: {ended}; {} strands evicted",
                    lease.started_ns as f64 / 1e6,
                    lease.evicted
                ));
            }
            if let Some(summary) = &report.summary {
                say(&format!("    {summary}"));
            }
            reports.push(report);
        }
    }
    let dir = options.out.clone().unwrap_or_else(default_out_dir);
    std::fs::create_dir_all(&dir)?;
    std::fs::write(
        dir.join("sim.json"),
        serde_json::to_string_pretty(&reports)?,
    )?;
    let plots = crate::plots::write_all(&dir, &reports)?;
    std::fs::write(dir.join("report.md"), markdown(&config, &reports, &plots))?;
    if options.json {
        println!("{}", serde_json::to_string(&reports)?);
    }
    say(&format!("written to {}", dir.display()));
    Ok(dir)
}

fn default_out_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target"));
    let unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    target.join("braid-sim").join(format!("run-{unix}"))
}

fn header() -> String {
    format!(
        "{:<16} {:>5} {:>12} {:>8} {:>6} {:>10} {:>9} {:>10} {:>10} {:>10} {:>7}  trace",
        "workload",
        "cores",
        "makespan ms",
        "speedup",
        "effic",
        "migrations",
        "msgs/mig",
        "wake p50",
        "wake p99",
        "events",
        "wall s"
    )
}

fn row(r: &SimReport) -> String {
    format!(
        "{:<16} {:>5} {:>12.3} {:>8} {:>6.3} {:>10} {:>9} {:>10} {:>10} {:>10} {:>7.2}  {}",
        r.workload,
        r.cores,
        r.makespan_ns as f64 / 1e6,
        r.speedup.map_or("-".to_owned(), |s| format!("{s:.2}")),
        r.efficiency,
        r.migrations,
        r.balancing_messages_per_migration
            .map_or("-".to_owned(), |m| format!("{m:.3}")),
        fmt_ns(r.wake_latency.p50_ns),
        fmt_ns(r.wake_latency.p99_ns),
        r.events,
        r.wall_s,
        r.trace_hash
    )
}

fn fmt_ns(ns: u64) -> String {
    if ns >= 1_000_000 {
        format!("{:.2} ms", ns as f64 / 1e6)
    } else if ns >= 1_000 {
        format!("{:.1} us", ns as f64 / 1e3)
    } else {
        format!("{ns} ns")
    }
}

/// The report's Markdown: settings, a table, the plots.
pub fn markdown(config: &SimConfig, reports: &[SimReport], plots: &[String]) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# braid sim\n");
    let _ = writeln!(
        md,
        "Policy `{}`, balancer `{}`, topology `{}`, seed {}. Cost model (ns): {:?}.\n",
        config.policy.name(),
        config.balancer.name(),
        config.topology.name(),
        config.seed,
        config.costs
    );
    md.push_str(&markdown_table(reports));
    for p in plots {
        let _ = writeln!(md, "\n![{p}]({p})");
    }
    md
}

/// A Markdown table of reports (also used for BENCHMARKS.md).
pub fn markdown_table(reports: &[SimReport]) -> String {
    let mut md = String::new();
    md.push_str("| workload | cores | makespan ms | speedup | efficiency | migrations | balancing msgs / migration | wake p50 | wake p99 | response p99 |\n");
    md.push_str("| --- | --: | --: | --: | --: | --: | --: | --: | --: | --: |\n");
    for r in reports {
        let _ = writeln!(
            md,
            "| {} | {} | {:.3} | {} | {:.3} | {} | {} | {} | {} | {} |",
            r.workload,
            r.cores,
            r.makespan_ns as f64 / 1e6,
            r.speedup.map_or("–".to_owned(), |s| format!("{s:.2}")),
            r.efficiency,
            r.migrations,
            r.balancing_messages_per_migration
                .map_or("–".to_owned(), |m| format!("{m:.3}")),
            fmt_ns(r.wake_latency.p50_ns),
            fmt_ns(r.wake_latency.p99_ns),
            r.response.map_or("–".to_owned(), |l| fmt_ns(l.p99_ns)),
        );
    }
    md
}

/// `braid sim calibrate RESULTS.json`: fits, prints the comparison, writes the
/// calibration (default: `calibration.json` beside the results).
pub fn calibrate_main(
    results: &Path,
    size: BenchSize,
    out: Option<&Path>,
) -> Result<PathBuf, Box<dyn Error>> {
    let text = std::fs::read_to_string(results)
        .map_err(|e| format!("cannot read {}: {e}", results.display()))?;
    let calibration = calibrate(&text, size)?;
    println!("fitted cost model (ns): {:?}", calibration.costs);
    for w in &calibration.workloads {
        println!("fitted {}:{} cost {:.3} ns", w.name, w.size, w.cost_ns);
    }
    println!(
        "{:<28} {:<16} {:>5} {:>9} {:>12} {:>12} {:>8}",
        "bench workload",
        "sim workload",
        "cores",
        "hardware",
        "measured ms",
        "predicted ms",
        "error"
    );
    for c in &calibration.comparisons {
        println!(
            "{:<28} {:<16} {:>5} {:>8.2}x {:>12.2} {:>12.2} {:>+7.1}%{}",
            c.bench,
            c.sim,
            c.cores,
            c.hardware,
            c.measured_ms,
            c.predicted_ms,
            c.error * 100.0,
            if c.fitted { "  (fit point)" } else { "" }
        );
    }
    let tested: Vec<f64> = calibration
        .comparisons
        .iter()
        .filter(|c| !c.fitted)
        .map(|c| c.error.abs())
        .collect();
    let within = tested.iter().filter(|&&e| e <= 0.10).count();
    println!(
        "{within} of {} predictions within 10 % (largest error {:.1} %)",
        tested.len(),
        tested.iter().copied().fold(0.0, f64::max) * 100.0
    );
    let path = out.map_or_else(
        || results.with_file_name("calibration.json"),
        Path::to_path_buf,
    );
    std::fs::write(&path, serde_json::to_string_pretty(&calibration)?)?;
    println!("written to {}", path.display());
    Ok(path)
}
