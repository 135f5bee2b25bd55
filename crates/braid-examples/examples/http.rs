//! The http server of `braid_examples::http` as a program:
//! `cargo run --release -p braid-examples --example http -- 127.0.0.1:8080`.

fn main() {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8080".into());
    if let Err(e) = braid_examples::http::run(&addr, None) {
        eprintln!("http: {e}");
        std::process::exit(1);
    }
}
