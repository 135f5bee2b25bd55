//! braid's slow tests live in `tests/` of this crate: a million strands
//! parked at once (`million.rs`), and stress runs that count every hop and
//! every wake exactly (`stress.rs`). They are sized for a release build and
//! run with the rest of the workspace (`bash scripts/test-all.sh`); on their
//! own: `cargo test --release -p braid-stress`.
