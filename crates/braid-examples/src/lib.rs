//! Example servers on braid, written as a user would: blocking-style code on
//! strands, one strand per connection. `braid demo echo|http` runs them, the
//! bench suite loads them, and `examples/` has each as a program.
//!
//! - [`echo`]: writes back whatever a connection sends.
//! - [`http`]: an HTTP/1.1 "hello" server (keep-alive, pipelining, 400/431).

pub mod echo;
pub mod http;

use braid::net::TcpListener;

/// Binds `addr` and runs `serve` on a runtime of `cores` cores (default: one
/// per CPU), saying where it listens (`shown` is put before the address).
fn serve_on(
    addr: &str,
    cores: Option<usize>,
    shown: &'static str,
    serve: fn(TcpListener) -> std::io::Result<()>,
) -> Result<(), Box<dyn std::error::Error>> {
    let mut builder = braid::Runtime::builder();
    if let Some(cores) = cores {
        builder = builder.cores(cores);
    }
    let rt = builder.build()?;
    let addr = addr.to_owned();
    rt.block_on(move || -> std::io::Result<()> {
        let listener = TcpListener::bind(&addr)?;
        println!("{shown}{}", listener.local_addr()?);
        serve(listener)
    })?;
    Ok(())
}
