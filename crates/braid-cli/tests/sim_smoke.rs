//! `braid sim` end to end: a small sweep writes its report, JSON and plots and
//! prints the same figures as JSON; the same seed gives the same traces;
//! `sim calibrate` reads a bench results file and writes a calibration that a
//! sweep can use; bad arguments fail with what is allowed.

use std::process::Command;

fn braid() -> Command {
    Command::new(env!("CARGO_BIN_EXE_braid"))
}

fn temp(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("braid-sim-smoke-{name}-{}", std::process::id()))
}

fn sweep(out: &std::path::Path, extra: &[&str]) -> Vec<serde_json::Value> {
    let output = braid()
        .args([
            "sim",
            "--cores",
            "1,4",
            "--workload",
            "pool:200,skynet:3",
            "--seed",
            "3",
            "--json",
            "--out",
        ])
        .arg(out)
        .args(extra)
        .output()
        .expect("braid runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let reports: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("JSON on stdout");
    reports.as_array().expect("an array of reports").clone()
}

#[test]
fn a_sweep_writes_its_figures_and_repeats_exactly() {
    let out = temp("sweep");
    let reports = sweep(&out, &[]);
    assert_eq!(reports.len(), 4, "two workloads at two core counts");
    for r in &reports {
        assert!(r["makespan_ns"].as_u64().unwrap() > 0, "{r}");
        assert!(r["trace_hash"].as_str().unwrap().len() == 16, "{r}");
    }
    let four = reports
        .iter()
        .find(|r| r["cores"] == 4 && r["workload"] == "pool:200")
        .unwrap();
    assert!(four["speedup"].as_f64().unwrap() > 1.5, "{four}");
    for file in ["sim.json", "report.md", "efficiency.svg", "utilisation.svg"] {
        assert!(out.join(file).exists(), "{file} missing");
    }
    let again = sweep(&temp("again"), &[]);
    let hashes = |rs: &[serde_json::Value]| -> Vec<String> {
        rs.iter()
            .map(|r| r["trace_hash"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(hashes(&reports), hashes(&again), "same seed, same traces");
}

#[test]
fn calibration_round_trips_through_a_sweep() {
    let dir = temp("calibrate");
    std::fs::create_dir_all(&dir).unwrap();
    let results = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/benchmarks/2026-11-29-full/results.json"
    );
    let cal = dir.join("calibration.json");
    let output = braid()
        .args(["sim", "calibrate", results, "--out"])
        .arg(&cal)
        .output()
        .expect("braid runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.contains("scale_dynamic_pool") && text.contains("predictions within 10 %"),
        "{text}"
    );
    let reports = sweep(&dir.join("out"), &["--calibration", cal.to_str().unwrap()]);
    assert_eq!(reports.len(), 4);
}

#[test]
fn bad_arguments_say_what_is_allowed() {
    for (args, allowed) in [
        (&["sim", "--workload", "nope"][..], "map, pool"),
        (&["sim", "--cores", "0"][..], "1..=1024"),
        (&["sim", "--cores", "2048"][..], "1..=1024"),
        (&["sim", "--balancer", "random"][..], "steal-half"),
        (&["sim", "--topology", "torus"][..], "domains:N"),
        (
            &["sim", "calibrate", "/nonexistent/results.json"][..],
            "cannot read",
        ),
    ] {
        let output = braid().args(args).output().expect("braid runs");
        assert!(!output.status.success(), "{args:?} succeeded");
        let err = String::from_utf8_lossy(&output.stderr);
        assert!(err.contains(allowed), "{args:?}: {err}");
    }
}
