#!/usr/bin/env bash
# The whole test suite: every crate's tests (release build: the 1M-strand and
# stress tests are sized for it), the loom model checks of the bus, and a smoke
# run of the demo binary. Used by the README and by .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo test (workspace, release)"
cargo test --workspace --release 2>&1 | tee target/test-output.txt
if ! grep -Eq "test result: ok\. [1-9][0-9]* passed" target/test-output.txt; then
    echo "no tests ran" >&2
    exit 1
fi

echo "== loom model checks (braid-bus)"
RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 CARGO_TARGET_DIR=target/loom \
    cargo test -p braid-bus --test loom --release

echo "== demo smoke run"
cargo run --release -q -p braid-cli -- demo --strands 100000
