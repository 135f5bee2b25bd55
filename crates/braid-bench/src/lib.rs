//! braid benchmarks.
