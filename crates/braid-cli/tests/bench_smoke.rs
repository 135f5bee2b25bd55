//! Smoke test of the benchmark harness: `braid bench --quick` runs to the end
//! and leaves a `results.json` that parses, with a braid record for every
//! figure. It never asserts a speed.

use std::collections::BTreeSet;
use std::process::Command;

fn braid() -> Command {
    Command::new(env!("CARGO_BIN_EXE_braid"))
}

fn records(json: &str) -> Vec<serde_json::Value> {
    let value: serde_json::Value = serde_json::from_str(json).expect("results are JSON");
    value.as_array().expect("an array of records").clone()
}

#[test]
fn quick_run_writes_parseable_results() {
    let out = std::env::temp_dir().join(format!("braid-bench-smoke-{}", std::process::id()));
    let status = braid()
        .args(["bench", "--quick", "--out"])
        .arg(&out)
        .status()
        .expect("braid runs");
    assert!(status.success(), "braid bench --quick failed: {status}");
    let json = std::fs::read_to_string(out.join("results.json")).expect("results.json written");
    let records = records(&json);
    assert!(!records.is_empty());
    let mut workloads = BTreeSet::new();
    let mut with_braid = BTreeSet::new();
    for r in &records {
        for field in ["workload", "runtime", "metric", "unit"] {
            assert!(r[field].is_string(), "{field} missing in {r}");
        }
        for field in ["cores", "median", "min", "max", "runs"] {
            assert!(r[field].is_number(), "{field} missing in {r}");
        }
        assert!(r["min"].as_f64() <= r["median"].as_f64());
        assert!(r["median"].as_f64() <= r["max"].as_f64());
        assert!(r["runs"].as_u64().unwrap() >= 5, "fewer than 5 runs: {r}");
        let w = r["workload"].as_str().unwrap().to_owned();
        if r["runtime"] == "braid" {
            with_braid.insert(w.clone());
        }
        workloads.insert(w);
    }
    assert_eq!(workloads, with_braid, "every workload has a braid figure");
    let report = std::fs::read_to_string(out.join("report.md")).expect("report.md written");
    assert!(report.contains("# braid benchmark report"));
    // The plots the records allow: all three for a full quick run, linked
    // from the report.
    for plot in ["ratios.svg", "scaling.svg", "latency.svg"] {
        let svg = std::fs::read_to_string(out.join(plot)).expect("plot written");
        assert!(
            svg.contains("<svg") && svg.trim_end().ends_with("</svg>"),
            "{plot}"
        );
        assert!(report.contains(&format!("]({plot})")), "{plot} not linked");
    }
    let machine = std::fs::read_to_string(out.join("machine.json")).expect("machine.json");
    let machine: serde_json::Value = serde_json::from_str(&machine).unwrap();
    assert!(machine["cpus"].as_u64().unwrap() >= 1);
    std::fs::remove_dir_all(&out).ok();
}

#[test]
fn json_on_stdout_and_filters() {
    let out = std::env::temp_dir().join(format!("braid-bench-json-{}", std::process::id()));
    let run = braid()
        .args([
            "bench",
            "--quick",
            "--json",
            "--filter",
            "yield_switch",
            "--out",
        ])
        .arg(&out)
        .output()
        .expect("braid runs");
    assert!(run.status.success());
    let records = records(&String::from_utf8_lossy(&run.stdout));
    let runtimes: BTreeSet<&str> = records
        .iter()
        .map(|r| r["runtime"].as_str().unwrap())
        .collect();
    // may runs from the braid CLI everywhere; Go only where it is installed
    // (scripts/install-peers.sh).
    let mut expected: BTreeSet<&str> = ["braid", "tokio", "std-thread", "may"].into();
    if runtimes.contains("go") {
        expected.insert("go");
    }
    assert_eq!(runtimes, expected);
    assert_eq!(records.len(), expected.len(), "one record per runtime");
    assert!(records.iter().all(|r| r["workload"] == "yield_switch"));
    std::fs::remove_dir_all(&out).ok();
}

#[test]
fn bad_options_are_refused_with_a_reason() {
    let run = braid()
        .args(["bench", "--cores", "0"])
        .output()
        .expect("braid runs");
    assert!(!run.status.success());
    assert!(String::from_utf8_lossy(&run.stderr).contains("worker counts are 1 or more"));
    let run = braid()
        .args(["bench", "--quick", "--full"])
        .output()
        .expect("braid runs");
    assert!(!run.status.success(), "--quick and --full conflict");
}
