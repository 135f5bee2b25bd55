//! scratch
use std::time::Instant;
fn main() {
    let cores: usize = std::env::args()
        .nth(1)
        .map(|v| v.parse().unwrap())
        .unwrap_or(1);
    let rt = braid::Runtime::builder().cores(cores).build().unwrap();
    let n: u64 = std::env::var("N")
        .map(|v| v.parse().unwrap())
        .unwrap_or(200_000);
    for _ in 0..3 {
        rt.block_on(move || {
            let ping = braid::event::local("ping").unwrap();
            let pong = braid::event::local("pong").unwrap();
            let (p2, q2) = (ping.clone(), pong.clone());
            let b = braid::Builder::new()
                .core(cores - 1)
                .spawn(move || {
                    for _ in 0..n {
                        p2.wait().unwrap();
                        q2.signal().unwrap();
                    }
                })
                .unwrap();
            let start = Instant::now();
            let a = braid::Builder::new()
                .core(0)
                .spawn(move || {
                    for _ in 0..n {
                        ping.signal().unwrap();
                        pong.wait().unwrap();
                    }
                })
                .unwrap();
            a.join().unwrap();
            b.join().unwrap();
            println!(
                "{:.1} ns per round trip",
                start.elapsed().as_nanos() as f64 / n as f64
            );
        });
    }
}
