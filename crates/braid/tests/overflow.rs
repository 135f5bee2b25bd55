//! Stack overflow in a strand is detected and reported with the strand's name and
//! stack size, never silent. The overflowing strand runs in a child process (the
//! report ends the process), started from this very test binary.

use std::process::Command;

const CHILD_ENV: &str = "BRAID_OVERFLOW_CHILD";

#[inline(never)]
fn recurse(depth: u64) -> u64 {
    let frame = std::hint::black_box([depth; 64]);
    if depth == u64::MAX {
        return 0;
    }
    recurse(depth + 1) + frame[3]
}

#[test]
fn overflow_child() {
    if std::env::var_os(CHILD_ENV).is_none() {
        return; // Only meaningful when started by `overflow_is_reported`.
    }
    let rt = braid::Runtime::builder().cores(1).build().unwrap();
    rt.block_on(|| {
        let h = braid::Builder::new()
            .name("deep-recursion")
            .stack_size(32 * 1024)
            .spawn(|| recurse(0))
            .unwrap();
        let _ = h.join();
    });
    unreachable!("the overflow must have ended the process");
}

#[test]
fn overflow_is_reported() {
    let exe = std::env::current_exe().unwrap();
    let output = Command::new(exe)
        .args([
            "--exact",
            "overflow_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success(),
        "child survived an overflow: {stderr}"
    );
    assert!(
        stderr.contains("strand 'deep-recursion' overflowed its stack of 32768 bytes"),
        "report missing or wrong: {stderr}"
    );
}
