//! A panic inside a strand is reported with the strand's name: the runtime's
//! panic hook wraps the one in place (here the program's own) and names the
//! strand before it runs.

use std::sync::atomic::{AtomicUsize, Ordering};

/// The hook's output goes to stderr, so the panicking program runs as a
/// process of its own: this test runs [`a_strand_panics_in_a_process_of_its_own`].
#[test]
fn a_strand_panic_names_the_strand_and_keeps_the_programs_hook() {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "a_strand_panics_in_a_process_of_its_own",
        ])
        .args(["--test-threads=1", "--nocapture"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("1 passed"),
        "the child did not run: {stdout}"
    );
    let named = stderr
        .lines()
        .position(|l| {
            l.starts_with("braid: strand 'the-culprit' (#") && l.contains("panicked on core")
        })
        .unwrap_or_else(|| panic!("no line names the strand:\n{stderr}"));
    // The program's hook still runs, after the line.
    let program = stderr
        .lines()
        .position(|l| l == "program hook: boom")
        .unwrap_or_else(|| panic!("the program's hook did not run:\n{stderr}"));
    assert!(named < program, "{stderr}");
    // A panic outside any strand gets no such line.
    assert_eq!(stderr.matches("braid: strand").count(), 1, "{stderr}");
}

static HOOK_CALLS: AtomicUsize = AtomicUsize::new(0);

#[test]
#[ignore = "run by a_strand_panic_names_the_strand_and_keeps_the_programs_hook"]
fn a_strand_panics_in_a_process_of_its_own() {
    std::panic::set_hook(Box::new(|info| {
        HOOK_CALLS.fetch_add(1, Ordering::SeqCst);
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .copied()
            .unwrap_or("?");
        eprintln!("program hook: {message}");
    }));
    let rt = braid::Runtime::builder().cores(1).build().unwrap();
    let err = rt
        .block_on(|| {
            braid::Builder::new()
                .name("the-culprit")
                .spawn(|| panic!("boom"))
                .unwrap()
                .join()
        })
        .unwrap_err();
    assert!(err.is_panic());
    assert!(std::panic::catch_unwind(|| panic!("outside")).is_err());
    assert_eq!(HOOK_CALLS.load(Ordering::SeqCst), 2);
}
