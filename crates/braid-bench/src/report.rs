//! A run of the suite: which figures it makes, what it prints, and the files it
//! leaves (`results.json`, `machine.json`, `report.md`).

use crate::figures::{median, Row};
use crate::Options;
use serde::Serialize;
use std::error::Error;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;

/// What a figure measures.
pub(crate) struct Figure<'a> {
    /// Short id: what `--filter` matches and `results.json` calls the workload.
    pub(crate) workload: &'a str,
    /// One line for people.
    pub(crate) title: &'a str,
    /// What was measured, e.g. "time per switch".
    pub(crate) metric: &'a str,
    pub(crate) unit: &'a str,
    /// Cores (or workers) the runtimes were given.
    pub(crate) cores: usize,
    /// The project's target for braid, if it has one: at most this much (or at
    /// least, when higher is better).
    pub(crate) target: Option<f64>,
    pub(crate) higher_is_better: bool,
}

/// One record of `results.json`: a workload × runtime × cores × metric.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Record {
    pub(crate) workload: String,
    pub(crate) runtime: String,
    pub(crate) cores: usize,
    pub(crate) metric: String,
    pub(crate) unit: String,
    pub(crate) median: f64,
    pub(crate) min: f64,
    pub(crate) max: f64,
    pub(crate) runs: usize,
}

/// The machine and software a run used.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Machine {
    cpu: String,
    cpus: usize,
    kernel: String,
    commit: String,
    rustc: String,
    peers: Vec<(String, String)>,
    started_unix: u64,
}

/// What one figure said, for the report.
struct Summary {
    workload: String,
    metric: String,
    title: String,
    unit: String,
    target: Option<f64>,
    higher_is_better: bool,
    rows: Vec<(String, f64, f64, f64, usize)>,
}

/// Every sample of one runtime in one workload, pooled over its measured runs
/// (for distribution plots and `distributions.json`).
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Distribution {
    pub(crate) workload: String,
    pub(crate) runtime: String,
    pub(crate) cores: usize,
    pub(crate) unit: String,
    /// Sorted ascending.
    pub(crate) values: Vec<f64>,
}

/// A run in progress.
pub(crate) struct Suite {
    pub(crate) options: Options,
    records: Vec<Record>,
    distributions: Vec<Distribution>,
    summaries: Vec<Summary>,
    notes: Vec<String>,
    machine: Machine,
}

impl Suite {
    pub(crate) fn new(options: Options) -> Suite {
        Suite {
            options,
            records: Vec::new(),
            distributions: Vec::new(),
            summaries: Vec::new(),
            notes: Vec::new(),
            machine: Machine::probe(),
        }
    }

    /// Whether the smaller workloads of `--quick` are wanted.
    pub(crate) fn quick(&self) -> bool {
        self.options.quick
    }

    /// Whether `workload` passes `--filter`.
    pub(crate) fn wants(&self, workload: &str) -> bool {
        self.options
            .filter
            .as_deref()
            .is_none_or(|f| f.split('|').any(|f| workload.contains(f)))
    }

    /// Prints a line for people (to stderr when stdout carries JSON).
    pub(crate) fn say(&self, line: &str) {
        if self.options.json {
            eprintln!("{line}");
        } else {
            println!("{line}");
        }
    }

    /// A remark for the report, e.g. a peer that was skipped.
    pub(crate) fn note(&mut self, text: &str) {
        self.say(&format!("  note: {text}"));
        self.notes.push(text.to_owned());
    }

    /// Records a figure and prints each runtime's median and range, with
    /// braid's ratio to each peer (> 1 means braid is better).
    pub(crate) fn figure(&mut self, fig: &Figure<'_>, rows: &[Row]) {
        let better = if fig.higher_is_better {
            "higher"
        } else {
            "lower"
        };
        let target = fig
            .target
            .map(|t| {
                let op = if fig.higher_is_better { ">=" } else { "<=" };
                format!("; target {op} {t} {}", fig.unit)
            })
            .unwrap_or_default();
        self.say(&format!(
            "\n{}  [{} in {}, {better} is better{target}]",
            fig.title, fig.metric, fig.unit
        ));
        let braid = rows
            .iter()
            .find(|r| r.runtime == "braid")
            .map(|r| median(&r.samples));
        let mut summary = Summary {
            workload: fig.workload.to_owned(),
            metric: fig.metric.to_owned(),
            title: fig.title.to_owned(),
            unit: fig.unit.to_owned(),
            target: fig.target,
            higher_is_better: fig.higher_is_better,
            rows: Vec::new(),
        };
        for row in rows {
            let m = median(&row.samples);
            let lo = row.samples.first().copied().unwrap_or(f64::NAN);
            let hi = row.samples.last().copied().unwrap_or(f64::NAN);
            let ratio = match braid {
                Some(b) if row.runtime != "braid" => {
                    format!("  braid {}", compare(b, m, fig.higher_is_better))
                }
                _ => String::new(),
            };
            self.say(&format!(
                "  {:<12} median {:>12.1}  (min {:>10.1}, max {:>10.1}, {} runs){ratio}",
                row.runtime,
                m,
                lo,
                hi,
                row.samples.len()
            ));
            self.records.push(Record {
                workload: fig.workload.to_owned(),
                runtime: row.runtime.to_owned(),
                cores: fig.cores,
                metric: fig.metric.to_owned(),
                unit: fig.unit.to_owned(),
                median: m,
                min: lo,
                max: hi,
                runs: row.samples.len(),
            });
            summary
                .rows
                .push((row.runtime.to_owned(), m, lo, hi, row.samples.len()));
        }
        self.summaries.push(summary);
    }

    /// Keeps every sample of a runtime for the workload's distribution plot.
    pub(crate) fn distribution(&mut self, mut d: Distribution) {
        d.values.sort_by(f64::total_cmp);
        self.distributions.push(d);
    }

    /// Writes the run's files, prints the summary table, and (with `--json`)
    /// the records on stdout. Returns the output folder.
    pub(crate) fn finish(mut self) -> Result<PathBuf, Box<dyn Error>> {
        self.notes.extend(crate::peers::take_failures());
        let dir = match &self.options.out {
            Some(dir) => dir.clone(),
            None => default_out_dir(self.machine.started_unix),
        };
        std::fs::create_dir_all(&dir)?;
        let json = serde_json::to_string_pretty(&self.records)?;
        std::fs::write(dir.join("results.json"), &json)?;
        std::fs::write(
            dir.join("machine.json"),
            serde_json::to_string_pretty(&self.machine)?,
        )?;
        if !self.distributions.is_empty() {
            std::fs::write(
                dir.join("distributions.json"),
                serde_json::to_string(&self.distributions)?,
            )?;
        }
        let plots = crate::plots::write_all(&dir, &self.records, &self.distributions)?;
        let mut report = self.report_markdown();
        if !plots.is_empty() {
            report.push_str("\n## Plots\n\n");
            for p in &plots {
                report.push_str(&format!("![{p}]({p})\n\n"));
            }
        }
        std::fs::write(dir.join("report.md"), report)?;
        self.say(&self.summary_table());
        self.say(&format!("\nwrote {}", dir.display()));
        if self.options.json {
            let mut out = std::io::stdout().lock();
            writeln!(out, "{json}")?;
        }
        Ok(dir)
    }

    /// One line per figure: braid's median, the best peer, and the target.
    fn summary_table(&self) -> String {
        let mut s = String::from("\nsummary (braid vs the best peer in this run)\n");
        for f in &self.summaries {
            let Some(braid) = f.rows.iter().find(|r| r.0 == "braid") else {
                continue;
            };
            let best_peer = f.rows.iter().filter(|r| r.0 != "braid").max_by(|a, b| {
                ratio(braid.1, b.1, f.higher_is_better).total_cmp(&ratio(
                    braid.1,
                    a.1,
                    f.higher_is_better,
                ))
            });
            let vs = best_peer
                .map(|p| match ratio_of(braid.1, p.1, f.higher_is_better) {
                    Some(r) => format!("{} {:.1} -> {r:.2}x", p.0, p.1),
                    None => format!("{} {:.1} -> {:+.1}", p.0, p.1, braid.1 - p.1),
                })
                .unwrap_or_default();
            let target = match f.target {
                Some(t) if met(braid.1, t, f.higher_is_better) => format!("target {t} met"),
                Some(t) => format!("target {t} MISSED"),
                None => String::new(),
            };
            let _ = writeln!(
                s,
                "  {:<20} {:<34} braid {:>10.1} {:<6} {vs:<30} {target}",
                f.workload,
                truncate(&f.metric, 34),
                braid.1,
                f.unit
            );
        }
        s
    }

    fn report_markdown(&self) -> String {
        let m = &self.machine;
        let mut s = String::from("# braid benchmark report\n\n");
        let _ = writeln!(
            s,
            "- machine: {} ({} CPUs), Linux {}\n- commit: {}\n- rustc: {}",
            m.cpu, m.cpus, m.kernel, m.commit, m.rustc
        );
        for (peer, version) in &m.peers {
            let _ = writeln!(s, "- {peer}: {version}");
        }
        let _ = writeln!(
            s,
            "- method: one warm-up run, then the measured runs; medians with min–max; \
             ratios are braid against each peer from this same run (> 1: braid is better)\n"
        );
        for f in &self.summaries {
            let _ = writeln!(s, "## {}\n", f.title);
            if let Some(t) = f.target {
                let op = if f.higher_is_better { ">=" } else { "<=" };
                let _ = writeln!(s, "target for braid: {op} {t} {}\n", f.unit);
            }
            let _ = writeln!(
                s,
                "| runtime | median ({u}) | min | max | runs | braid ratio |\n| --- | --- | --- | --- | --- | --- |",
                u = f.unit
            );
            let braid = f.rows.iter().find(|r| r.0 == "braid").map(|r| r.1);
            for (rt, med, lo, hi, runs) in &f.rows {
                let r = match braid {
                    Some(b) if rt != "braid" => match ratio_of(b, *med, f.higher_is_better) {
                        Some(r) => format!("{r:.2}x"),
                        None => format!("{:+.1}", b - med),
                    },
                    _ => "—".to_owned(),
                };
                let _ = writeln!(s, "| {rt} | {med:.1} | {lo:.1} | {hi:.1} | {runs} | {r} |");
            }
            s.push('\n');
        }
        if !self.notes.is_empty() {
            s.push_str("## Notes\n\n");
            for n in &self.notes {
                let _ = writeln!(s, "- {n}");
            }
        }
        s
    }
}

/// braid's advantage over a peer: > 1 means braid is better.
fn ratio(braid: f64, peer: f64, higher_is_better: bool) -> f64 {
    if higher_is_better {
        braid / peer
    } else {
        peer / braid
    }
}

/// [`ratio`] where it means something: both figures above zero (counts of
/// zero, or figures that may be negative, are compared by difference).
fn ratio_of(braid: f64, peer: f64, higher_is_better: bool) -> Option<f64> {
    (braid > 0.0 && peer > 0.0).then(|| ratio(braid, peer, higher_is_better))
}

/// How braid compares with a peer, in words: "is 2.00x (better)", or "is
/// the same", or "differs by +3.0 (worse)".
fn compare(braid: f64, peer: f64, higher_is_better: bool) -> String {
    if braid == peer {
        return "is the same".to_owned();
    }
    let better = (braid > peer) == higher_is_better;
    let word = if better { "better" } else { "worse" };
    match ratio_of(braid, peer, higher_is_better) {
        Some(r) => format!("is {r:.2}x ({word})"),
        None => format!("differs by {:+.1} ({word})", braid - peer),
    }
}

fn met(value: f64, target: f64, higher_is_better: bool) -> bool {
    if higher_is_better {
        value >= target
    } else {
        value <= target
    }
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(n - 1).collect();
        t.push('…');
        t
    }
}

/// `target/braid-bench/<UTC date-time>/`, under the workspace's target folder
/// when run through cargo, else under the current folder.
fn default_out_dir(unix: u64) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target"));
    target.join("braid-bench").join(utc_stamp(unix))
}

/// `YYYYMMDD-HHMMSS` in UTC for a Unix time.
fn utc_stamp(unix: u64) -> String {
    let days = (unix / 86_400) as i64;
    let secs = unix % 86_400;
    // Days since 1970-01-01 to a civil date (proleptic Gregorian).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}{month:02}{day:02}-{:02}{:02}{:02}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

impl Machine {
    fn probe() -> Machine {
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split(':').nth(1))
                    .map(|v| v.trim().to_owned())
            })
            .unwrap_or_else(|| "unknown".into());
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_owned())
            .unwrap_or_else(|_| "unknown".into());
        let commit = command_line("git", &["rev-parse", "--short", "HEAD"])
            .unwrap_or_else(|| "unknown".into());
        Machine {
            cpu,
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            kernel,
            commit,
            rustc: env!("BRAID_BENCH_RUSTC").to_owned(),
            peers: vec![
                ("tokio".into(), env!("BRAID_BENCH_TOKIO").to_owned()),
                (
                    "parking_lot".into(),
                    env!("BRAID_BENCH_PARKING_LOT").to_owned(),
                ),
                ("rayon".into(), env!("BRAID_BENCH_RAYON").to_owned()),
                ("may".into(), env!("BRAID_BENCH_MAY").to_owned()),
                ("hyper".into(), env!("BRAID_BENCH_HYPER").to_owned()),
                (
                    "go".into(),
                    crate::peers::version().unwrap_or_else(|| "not installed".into()),
                ),
                (
                    "erlang".into(),
                    crate::peers::erlang_version().unwrap_or_else(|| "not installed".into()),
                ),
                (
                    "wrk".into(),
                    wrk_version().unwrap_or_else(|| "not installed".into()),
                ),
            ],
            started_unix: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        }
    }
}

/// wrk's version line (`wrk --version` prints it, then its usage, and exits
/// with status 1).
fn wrk_version() -> Option<String> {
    let out = std::process::Command::new("wrk")
        .arg("--version")
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let first = text.lines().next()?.trim();
    first.starts_with("wrk ").then(|| {
        // "wrk debian/4.1.0-3+b2 [epoll] Copyright ..." -> up to the bracket.
        first.split(" [").next().unwrap_or(first).to_owned()
    })
}

/// The first line a command prints, if it runs and succeeds.
pub(crate) fn command_line(program: &str, args: &[&str]) -> Option<String> {
    let out = std::process::Command::new(program)
        .args(args)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines().next().map(|l| l.trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_match_any_of_their_parts() {
        let suite = |filter: Option<&str>| {
            Suite::new(crate::Options {
                filter: filter.map(str::to_owned),
                ..Default::default()
            })
        };
        assert!(suite(None).wants("ring"));
        let one = suite(Some("scale"));
        assert!(one.wants("scale_map_reduce") && !one.wants("ring"));
        let two = suite(Some("spawn|scale_map"));
        assert!(two.wants("spawn_join") && two.wants("scale_map_reduce"));
        assert!(!two.wants("scale_barrier_phases") && !two.wants("ring"));
    }

    #[test]
    fn utc_stamps() {
        assert_eq!(utc_stamp(0), "19700101-000000");
        assert_eq!(utc_stamp(951_782_400), "20000229-000000");
        assert_eq!(utc_stamp(1_795_307_655), "20261122-003415");
    }

    #[test]
    fn ratios_say_better_above_one() {
        assert_eq!(ratio(10.0, 20.0, false), 2.0);
        assert_eq!(compare(0.0, 0.0, false), "is the same");
        assert_eq!(compare(0.0, 3.0, false), "differs by -3.0 (better)");
        assert_eq!(compare(10.0, 20.0, false), "is 2.00x (better)");
        assert_eq!(ratio(20.0, 10.0, true), 2.0);
        assert!(met(9.0, 10.0, false) && !met(11.0, 10.0, false));
        assert!(met(2.0, 1.95, true) && !met(1.9, 1.95, true));
    }
}
