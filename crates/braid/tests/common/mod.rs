//! Helpers shared by the integration tests.

use braid::Runtime;

/// Runs the ignored test `name` of this test binary alone in a child
/// process (for tests that measure or limit the whole process); fails unless
/// it ran and passed. Returns its output.
#[allow(dead_code)]
pub(crate) fn run_alone_in_a_child(name: &str) -> String {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--ignored", "--exact", name])
        .args(["--test-threads=1", "--nocapture"])
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("1 passed"), "{name} did not run: {text}");
    text
}

/// A runtime on `cores` cores (the configuration is valid by construction).
#[allow(dead_code)]
pub(crate) fn runtime(cores: usize) -> Runtime {
    Runtime::builder()
        .cores(cores)
        .build()
        .expect("valid configuration")
}
