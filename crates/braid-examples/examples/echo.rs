//! The echo server of `braid_examples::echo` as a program:
//! `cargo run --release -p braid-examples --example echo -- 127.0.0.1:7000`.

fn main() {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:7000".into());
    if let Err(e) = braid_examples::echo::run(&addr, None) {
        eprintln!("echo: {e}");
        std::process::exit(1);
    }
}
