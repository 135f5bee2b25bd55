//! Stacks are taken when a strand first runs: a burst of spawns holds none, and a
//! strand for which no stack can be mapped fails alone, with a typed error for
//! its joiner, while the runtime keeps serving the others.

use std::process::Command;

#[test]
fn a_spawn_burst_reuses_a_handful_of_stacks() {
    let rt = braid::Runtime::builder().cores(1).build().unwrap();
    let total: u64 = rt.block_on(|| {
        let handles: Vec<_> = (0..100_000u64).map(|i| braid::spawn(move || i)).collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert_eq!(total, (0..100_000u64).sum::<u64>());
    // The 100 000 strands ran one after another on one core, each reusing the
    // stack the previous one gave back: one slab (64 stacks) is plenty. Taking
    // stacks at spawn would have needed 100 000 / 64 = 1563 slabs.
    let slabs = rt.stats().stack_slabs;
    assert!(
        slabs <= 2,
        "{slabs} stack slabs mapped for sequential strands"
    );
}

const CHILD_ENV: &str = "BRAID_NO_STACK_CHILD";

#[test]
fn no_stack_child() {
    if std::env::var_os(CHILD_ENV).is_none() {
        return; // Only meaningful when started by `a_strand_without_a_stack_fails_alone`.
    }
    let rt = braid::Runtime::builder().cores(2).build().unwrap();
    // Leave the runtime's own threads and a small stack slab room, then cap the
    // address space so that a slab of 64 stacks of 64 MiB (4 GiB) cannot be mapped.
    let limit = libc_rlimit_as(3 << 30);
    assert!(limit, "could not cap the address space");
    let outcome = rt.block_on(|| {
        let big = braid::Builder::new()
            .name("too-big")
            .stack_size(64 << 20)
            .spawn(|| 1)
            .unwrap();
        let small = braid::spawn(|| 2);
        (big.join(), small.join())
    });
    match outcome {
        (Err(err), Ok(2)) => {
            assert!(err.is_not_started(), "{err}");
            println!("REPORT: {err}");
        }
        (big, small) => panic!("unexpected outcome: {big:?} {small:?}"),
    }
    // The runtime still runs strands afterwards.
    assert_eq!(rt.block_on(|| braid::spawn(|| 7).join().unwrap()), 7);
    println!("CHILD-OK");
}

fn libc_rlimit_as(bytes: u64) -> bool {
    let lim = libc::rlimit {
        rlim_cur: bytes,
        rlim_max: bytes,
    };
    // SAFETY: `lim` is a valid rlimit for the duration of the call.
    unsafe { libc::setrlimit(libc::RLIMIT_AS, &lim) == 0 }
}

#[test]
fn a_strand_without_a_stack_fails_alone() {
    let exe = std::env::current_exe().unwrap();
    let output = Command::new(exe)
        .args([
            "--exact",
            "no_stack_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "child failed: {stdout}\n{stderr}");
    assert!(
        stdout.contains("CHILD-OK"),
        "child did not finish: {stdout}"
    );
    assert!(
        stdout.contains("strand 'too-big' could not start: no stack of 67108864 bytes"),
        "report missing or wrong: {stdout}"
    );
}
