#!/usr/bin/env bash
# The whole test suite: every crate's tests (release build: the 1M-strand and
# stress tests are sized for it), the loom model checks of the bus, and a smoke
# run of the demo binary. Used by the README and by .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."

# Real HTTP clients for the HTTP example's tests (Debian packages).
if ! command -v curl >/dev/null || ! command -v ab >/dev/null; then
    echo "== installing curl and ab (apache2-utils) for the HTTP example's tests"
    sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get install -y -q curl apache2-utils >/dev/null \
        || { $sudo apt-get update -q >/dev/null && $sudo apt-get install -y -q curl apache2-utils >/dev/null; }
fi

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
