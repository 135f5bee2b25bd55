//! Example servers on braid, written as a user would: blocking-style code on
//! strands, one strand per connection. `braid demo echo|http` runs them, the
//! bench suite loads them, and `examples/` has each as a program.
//!
//! - [`echo`]: writes back whatever a connection sends.
//! - [`http`]: an HTTP/1.1 "hello" server (keep-alive, pipelining, 400/431).

pub mod echo;
pub mod http;
