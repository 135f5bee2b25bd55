//! Network servers under load: the echo example against a tokio echo server
//! (1 000 concurrent connections on loopback), and the HTTP hello example
//! against a hyper-on-tokio hello server under `wrk`.
//!
//! Each server runs in its own child process (`braid peer-server KIND
//! RUNTIME CORES`) on every CPU, so the server and the load generator do not
//! share a runtime. The echo load generator is one thread driving every
//! connection with mio (the same client for both servers): each connection
//! sends a 64-byte message, waits for all of it to come back, records the
//! round trip, and sends the next.

use crate::figures::Row;
use crate::report::{Figure, Suite};
use crate::rt;
use mio::net::TcpStream as MioStream;
use mio::{Events, Interest, Poll, Token};
use std::error::Error;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const RUNS: usize = 5;
/// Concurrent echo connections.
const ECHO_CONNECTIONS: usize = 1_000;
/// Bytes per echo message.
const ECHO_MESSAGE: usize = 64;
/// Concurrent `wrk` connections.
const HTTP_CONNECTIONS: usize = 256;

use braid_examples::{echo as echo_example, http as http_example};

/// Raises this process's descriptor limit to its hard limit (a thousand
/// connections need more than the usual soft limit of 1 024).
fn raise_fd_limit() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: valid pointers to rlimit values.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

/// `braid peer-server KIND RUNTIME CORES`: serves on 127.0.0.1 (a free port,
/// printed first on stdout) until killed.
pub fn server_main(args: &[String]) -> Result<(), String> {
    let usage = "usage: braid peer-server echo|http braid|tokio|hyper CORES";
    let [kind, runtime, cores] = args else {
        return Err(usage.into());
    };
    let cores: usize = cores
        .parse()
        .map_err(|e| format!("bad CORES {cores:?}: {e} ({usage})"))?;
    raise_fd_limit();
    let announce = |addr: SocketAddr| {
        println!("{addr}");
        let _ = io::stdout().flush();
    };
    match (kind.as_str(), runtime.as_str()) {
        ("echo" | "http", "braid") => {
            let brt = rt::braid(cores).map_err(|e| e.to_string())?;
            let http = kind == "http";
            brt.block_on(move || -> io::Result<()> {
                let listener = braid::net::TcpListener::bind("127.0.0.1:0")?;
                announce(listener.local_addr()?);
                if http {
                    http_example::serve(listener)
                } else {
                    echo_example::serve(listener)
                }
            })
            .map_err(|e| e.to_string())
        }
        ("echo", "tokio") => {
            let trt = rt::tokio(cores).map_err(|e| e.to_string())?;
            trt.block_on(tokio_echo(announce))
                .map_err(|e| e.to_string())
        }
        ("http", "hyper") => {
            let trt = rt::tokio(cores).map_err(|e| e.to_string())?;
            trt.block_on(hyper_hello(announce))
                .map_err(|e| e.to_string())
        }
        _ => Err(format!("unknown server {kind} on {runtime} ({usage})")),
    }
}

async fn tokio_echo(announce: impl Fn(SocketAddr)) -> io::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    announce(listener.local_addr()?);
    loop {
        let (mut stream, _) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                eprintln!("tokio echo: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(1)).await;
                continue;
            }
        };
        tokio::spawn(async move {
            let _ = stream.set_nodelay(true);
            let mut buf = vec![0u8; 16 * 1024];
            loop {
                let n = match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                if stream.write_all(&buf[..n]).await.is_err() {
                    return;
                }
            }
        });
    }
}

async fn hyper_hello(announce: impl Fn(SocketAddr)) -> io::Result<()> {
    use http_body_util::Full;
    use hyper::body::Bytes;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    announce(listener.local_addr()?);
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                eprintln!("hyper: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(1)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(|_req| async {
                Ok::<_, std::convert::Infallible>(
                    hyper::Response::builder()
                        .header("Content-Type", "text/plain")
                        .body(Full::new(Bytes::from_static(http_example::HELLO)))
                        .expect("a valid response"),
                )
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .await;
        });
    }
}

/// A server child process, killed when dropped.
struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Server {
    fn start(kind: &str, runtime: &str, cores: usize) -> Result<Server, Box<dyn Error>> {
        let exe = std::env::current_exe()?;
        if exe.file_stem().and_then(|s| s.to_str()) != Some("braid") {
            return Err("the servers run from the braid CLI (`braid bench`)".into());
        }
        let mut child = Command::new(exe)
            .args(["peer-server", kind, runtime, &cores.to_string()])
            .stdout(Stdio::piped())
            .spawn()?;
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().expect("piped")).read_line(&mut line)?;
        let addr = match line.trim().parse() {
            Ok(addr) => addr,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("{kind} server on {runtime} did not start ({e})").into());
            }
        };
        Ok(Server { child, addr })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One echo load run: round trips per second and each round trip's time (µs).
fn echo_load(
    addr: SocketAddr,
    connections: usize,
    window: Duration,
) -> io::Result<(f64, Vec<f64>)> {
    struct Conn {
        stream: MioStream,
        sent_at: Instant,
        received: usize,
    }
    let mut poll = Poll::new()?;
    let mut conns = Vec::with_capacity(connections);
    for i in 0..connections {
        let std = std::net::TcpStream::connect(addr)?;
        std.set_nodelay(true)?;
        std.set_nonblocking(true)?;
        let mut stream = MioStream::from_std(std);
        poll.registry()
            .register(&mut stream, Token(i), Interest::READABLE)?;
        conns.push(Conn {
            stream,
            sent_at: Instant::now(),
            received: 0,
        });
    }
    let message = [b'x'; ECHO_MESSAGE];
    let mut buf = [0u8; 4096];
    let start = Instant::now();
    let end = start + window;
    for c in conns.iter_mut() {
        c.sent_at = Instant::now();
        c.stream.write_all(&message)?;
    }
    let mut latencies = Vec::with_capacity(1 << 16);
    let mut events = Events::with_capacity(1024);
    let mut in_flight = connections;
    while in_flight > 0 {
        // A signal handled on this thread (a child's exit where a runtime
        // in the process watches for it, say) ends the wait early: wait on.
        match poll.poll(&mut events, Some(Duration::from_millis(100))) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => events.clear(),
            other => other?,
        }
        if Instant::now() > end + Duration::from_secs(5) {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("{in_flight} echo round trips never completed"),
            ));
        }
        for event in events.iter() {
            let c = &mut conns[event.token().0];
            loop {
                match c.stream.read(&mut buf) {
                    Ok(0) => {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "the echo server closed a connection",
                        ))
                    }
                    Ok(n) => c.received += n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                }
            }
            while c.received >= ECHO_MESSAGE {
                c.received -= ECHO_MESSAGE;
                let now = Instant::now();
                latencies.push((now - c.sent_at).as_secs_f64() * 1e6);
                if now < end {
                    c.sent_at = now;
                    // 64 bytes into an empty send buffer: never partial.
                    c.stream.write_all(&message)?;
                } else {
                    in_flight -= 1;
                }
            }
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    Ok((latencies.len() as f64 / elapsed, latencies))
}

pub(crate) fn run_all(suite: &mut Suite) -> Result<(), Box<dyn Error>> {
    let cores = rt::cpus();
    if suite.wants("echo_server") || suite.wants("http_hello") {
        suite.say(&format!(
            "\nnetwork servers on {cores} cores (own process each), load from this process (medians of {RUNS} runs after a warm-up)"
        ));
        raise_fd_limit();
    }
    if suite.wants("echo_server") {
        if let Err(e) = echo(suite, cores) {
            suite.note(&format!("echo_server skipped: {e}"));
        }
    }
    if suite.wants("http_hello") {
        if let Err(e) = http(suite, cores) {
            suite.note(&format!("http_hello skipped: {e}"));
        }
    }
    Ok(())
}

/// Percentile `q` of sorted values.
fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(f64::total_cmp);
    v
}

/// One runtime's three figures, each with one sample per measured run.
type Measured = (&'static str, [Vec<f64>; 3]);

/// Runs `measure` [`RUNS`] times; each run gives three figures.
fn three_per_run(
    mut measure: impl FnMut() -> Result<[f64; 3], Box<dyn Error>>,
) -> Result<[Vec<f64>; 3], Box<dyn Error>> {
    let mut out: [Vec<f64>; 3] = Default::default();
    for _ in 0..RUNS {
        for (v, x) in out.iter_mut().zip(measure()?) {
            v.push(x);
        }
    }
    Ok(out.map(sorted))
}

/// Records three figures (metric, unit, higher is better) of `workload`.
fn three_figures(
    suite: &mut Suite,
    workload: &str,
    title: &str,
    cores: usize,
    metrics: [(&str, &str, bool); 3],
    results: &[Measured],
) {
    for (k, (metric, unit, higher)) in metrics.into_iter().enumerate() {
        let rows: Vec<Row> = results
            .iter()
            .map(|(runtime, runs)| Row::new(runtime, runs[k].clone()))
            .collect();
        suite.figure(
            &Figure {
                workload,
                title,
                metric,
                unit,
                cores,
                target: None,
                higher_is_better: higher,
            },
            &rows,
        );
    }
}

fn echo(suite: &mut Suite, cores: usize) -> Result<(), Box<dyn Error>> {
    let window = if suite.quick() {
        Duration::from_millis(500)
    } else {
        Duration::from_secs(3)
    };
    let mut results: Vec<Measured> = Vec::new();
    for runtime in ["braid", "tokio"] {
        let server = Server::start("echo", runtime, cores)?;
        echo_load(server.addr, ECHO_CONNECTIONS, window / 2)?;
        let runs = three_per_run(|| {
            let (rate, lat) = echo_load(server.addr, ECHO_CONNECTIONS, window)?;
            let lat = sorted(lat);
            Ok([rate, percentile(&lat, 0.5), percentile(&lat, 0.99)])
        })?;
        results.push((runtime, runs));
    }
    let med = |v: &[f64]| crate::figures::median(v);
    let (b, t) = (&results[0].1, &results[1].1);
    let ratio = med(&b[0]) / med(&t[0]);
    let met = ratio >= 1.2 && med(&b[2]) <= med(&t[2]);
    suite.note(&format!(
        "echo target (braid >= 1.2x tokio's throughput with a p99 no worse): {} — {ratio:.2}x, p99 {:.0} vs {:.0} us",
        if met { "met" } else { "MISSED" },
        med(&b[2]),
        med(&t[2])
    ));
    let title = format!(
        "echo server, {ECHO_CONNECTIONS} connections on loopback, {ECHO_MESSAGE}-byte round trips, {} ms per run",
        window.as_millis()
    );
    three_figures(
        suite,
        "echo_server",
        &title,
        cores,
        [
            ("round trips per second", "req/s", true),
            ("p50 round trip", "us", false),
            ("p99 round trip", "us", false),
        ],
        &results,
    );
    Ok(())
}

/// `wrk`'s figures from its `--latency` output: requests per second and the
/// 50th and 99th percentile latencies in µs.
fn parse_wrk(out: &str) -> Option<(f64, f64, f64)> {
    let duration_us = |s: &str| -> Option<f64> {
        let (num, scale) = if let Some(v) = s.strip_suffix("us") {
            (v, 1.0)
        } else if let Some(v) = s.strip_suffix("ms") {
            (v, 1e3)
        } else if let Some(v) = s.strip_suffix('s') {
            (v, 1e6)
        } else {
            return None;
        };
        num.parse::<f64>().ok().map(|n| n * scale)
    };
    let mut rps = None;
    let (mut p50, mut p99) = (None, None);
    for line in out.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["Requests/sec:", v] => rps = v.parse().ok(),
            ["50%", v] => p50 = duration_us(v),
            ["99%", v] => p99 = duration_us(v),
            _ => {}
        }
    }
    Some((rps?, p50?, p99?))
}

fn http(suite: &mut Suite, cores: usize) -> Result<(), Box<dyn Error>> {
    if Command::new("wrk").arg("--version").output().is_err() {
        return Err("wrk is not installed (scripts/install-peers.sh installs it)".into());
    }
    let secs = if suite.quick() { 1 } else { 5 };
    let mut results: Vec<Measured> = Vec::new();
    for runtime in ["braid", "hyper"] {
        let server = Server::start("http", runtime, cores)?;
        let url = format!("http://{}/", server.addr);
        let wrk = |secs: u64| -> Result<[f64; 3], Box<dyn Error>> {
            let out = Command::new("wrk")
                .args([
                    "-t1",
                    &format!("-c{HTTP_CONNECTIONS}"),
                    &format!("-d{secs}s"),
                    "--latency",
                    &url,
                ])
                .output()?;
            let text = String::from_utf8_lossy(&out.stdout);
            if text.contains("Non-2xx") || text.contains("Socket errors") {
                return Err(format!("wrk saw errors from {runtime}: {text}").into());
            }
            let (rps, p50, p99) =
                parse_wrk(&text).ok_or_else(|| format!("cannot read wrk's output: {text}"))?;
            Ok([rps, p50, p99])
        };
        wrk(1)?;
        results.push((runtime, three_per_run(|| wrk(secs))?));
    }
    let title = format!(
        "HTTP/1.1 hello server under wrk -t1 -c{HTTP_CONNECTIONS}, {secs} s per run (peer: hyper on tokio)"
    );
    three_figures(
        suite,
        "http_hello",
        &title,
        cores,
        [
            ("requests per second", "req/s", true),
            ("p50 latency", "us", false),
            ("p99 latency", "us", false),
        ],
        &results,
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrk_output_is_read() {
        let out = "Running 1s test @ http://127.0.0.1:1/\n  Latency Distribution\n     50%  412.00us\n     75%  600.00us\n     90%    1.10ms\n     99%    2.50ms\n  1000 requests in 1.00s\nRequests/sec:  92050.51\n";
        assert_eq!(parse_wrk(out), Some((92050.51, 412.0, 2500.0)));
        assert_eq!(parse_wrk("garbage"), None);
    }

    #[test]
    fn the_echo_load_counts_round_trips_against_a_real_server() {
        let brt = rt::braid(2).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        brt.block_on(move || {
            let listener = braid::net::TcpListener::bind("127.0.0.1:0").unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            braid::spawn(move || echo_example::serve(listener));
        });
        let addr = rx.recv().unwrap();
        let (rate, lat) = echo_load(addr, 20, Duration::from_millis(100)).unwrap();
        assert!(rate > 0.0 && !lat.is_empty());
        assert!(lat.iter().all(|&l| l > 0.0));
    }
}
