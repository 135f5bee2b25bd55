//! The example servers (`braid_examples::echo`, `braid_examples::http`) over
//! real loopback connections: many echo clients at once, and the HTTP server's
//! keep-alive, pipelining and answers to malformed or oversized requests.

use braid::net::{TcpListener, TcpStream};
use braid::Runtime;
use braid_examples::{echo, http};
use std::io::{Read, Write};
use std::net::Shutdown;

#[test]
fn echo_example_serves_many_clients_at_once() {
    let rt = runtime(2);
    rt.block_on(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        // The server runs until the runtime goes away.
        braid::spawn(move || echo::serve(listener));
        let clients: Vec<_> = (0..100)
            .map(|i| {
                braid::spawn(move || {
                    let s = TcpStream::connect(addr).unwrap();
                    let mut total = 0;
                    for j in 0..20 {
                        let line = format!("{i}-{j}");
                        s.write_line(&line).unwrap();
                        let mut back = String::new();
                        s.read_line(&mut back).unwrap();
                        assert_eq!(back.trim_end(), line);
                        total += back.len();
                    }
                    total
                })
            })
            .collect();
        let total: usize = clients.into_iter().map(|c| c.join().unwrap()).sum();
        let expected: usize = (0..100)
            .flat_map(|i| (0..20).map(move |j| format!("{i}-{j}\n").len()))
            .sum();
        assert_eq!(total, expected);
    });
}

/// Sends `request` on a fresh connection, half-closes, returns all it gets.
fn exchange(addr: std::net::SocketAddr, request: &[u8]) -> String {
    let s = TcpStream::connect(addr).unwrap();
    (&s).write_all(request).unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    let mut reply = String::new();
    (&s).read_to_string(&mut reply).unwrap();
    reply
}

fn count(haystack: &str, needle: &str) -> usize {
    haystack.matches(needle).count()
}

#[test]
fn http_example_keeps_alive_pipelines_and_rejects_bad_requests() {
    let rt = runtime(2);
    rt.block_on(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        braid::spawn(move || http::serve(listener));

        // Keep-alive: three requests, one at a time, on one connection.
        let s = TcpStream::connect(addr).unwrap();
        for _ in 0..3 {
            (&s).write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
            let mut buf = [0u8; 256];
            let n = (&s).read(&mut buf).unwrap();
            let reply = std::str::from_utf8(&buf[..n]).unwrap();
            assert!(reply.starts_with("HTTP/1.1 200 OK\r\n"), "{reply}");
            assert!(reply.ends_with("Hello, world!"), "{reply}");
        }
        drop(s);

        // Pipelined, with a body to skip, then Connection: close.
        let reply = exchange(
            addr,
            b"GET /a HTTP/1.1\r\n\r\nPOST /b HTTP/1.1\r\nContent-Length: 5\r\n\r\nhelloGET /c HTTP/1.1\r\nConnection: close\r\n\r\nGET /never HTTP/1.1\r\n\r\n",
        );
        assert_eq!(count(&reply, "HTTP/1.1 200 OK"), 3, "{reply}");
        assert_eq!(count(&reply, "Connection: close"), 1, "{reply}");

        // HTTP/1.0 closes after one reply.
        let reply = exchange(addr, b"GET / HTTP/1.0\r\n\r\nGET / HTTP/1.0\r\n\r\n");
        assert_eq!(count(&reply, "200 OK"), 1, "{reply}");

        // Malformed: 400 and close, even with more requests queued behind.
        let reply = exchange(addr, b"GARBAGE\r\n\r\nGET / HTTP/1.1\r\n\r\n");
        assert!(reply.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{reply}");
        assert_eq!(count(&reply, "HTTP/1.1"), 1, "{reply}");
        let reply = exchange(addr, b"GET / HTTP/1.1\r\nContent-Length: lots\r\n\r\n");
        assert!(reply.starts_with("HTTP/1.1 400"), "{reply}");

        // A head larger than the limit: 431.
        let mut big = b"GET / HTTP/1.1\r\nX-Filler: ".to_vec();
        big.extend(std::iter::repeat_n(b'a', http::MAX_HEAD));
        let reply = exchange(addr, &big);
        assert!(reply.starts_with("HTTP/1.1 431"), "{reply}");

        // A client that closes mid-request gets nothing and breaks nothing.
        let reply = exchange(addr, b"GET / HT");
        assert_eq!(reply, "");
        let reply = exchange(addr, b"GET / HTTP/1.1\r\n\r\n");
        assert!(reply.starts_with("HTTP/1.1 200 OK"), "{reply}");
    });
}

/// Starts the HTTP example on a runtime of its own; returns both.
fn http_server() -> (Runtime, std::net::SocketAddr) {
    let rt = runtime(2);
    let addr = rt.block_on(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        braid::spawn(move || http::serve(listener));
        addr
    });
    (rt, addr)
}

/// Reads one reply with a `Content-Length` (or none, with no body) from
/// `s`, a plain std stream; `None` if the server closed first.
fn read_reply(s: &mut std::net::TcpStream) -> Option<String> {
    let mut got = Vec::new();
    let mut byte = [0u8; 1];
    while !got.ends_with(b"\r\n\r\n") {
        match s.read(&mut byte) {
            Ok(1) => got.push(byte[0]),
            _ => return None,
        }
    }
    let head = String::from_utf8(got).unwrap();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .map_or(0, |v| v.trim().parse().unwrap());
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).ok()?;
    Some(head + std::str::from_utf8(&body).unwrap())
}

#[test]
fn http_example_keeps_http10_connections_alive_when_asked() {
    let (_rt, addr) = http_server();
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    for _ in 0..3 {
        s.write_all(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n")
            .unwrap();
        let reply = read_reply(&mut s).expect("the connection was closed");
        assert!(reply.starts_with("HTTP/1.1 200 OK\r\n"), "{reply}");
        assert!(reply.contains("\r\nConnection: keep-alive\r\n"), "{reply}");
    }
    // `close` wins, whatever else the header says.
    s.write_all(b"GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n")
        .unwrap();
    let reply = read_reply(&mut s).unwrap();
    assert!(reply.contains("Connection: close"), "{reply}");
    assert!(read_reply(&mut s).is_none());
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    // Without the header, HTTP/1.0 closes after the reply.
    s.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    let reply = read_reply(&mut s).unwrap();
    assert!(reply.contains("Connection: close"), "{reply}");
    assert!(read_reply(&mut s).is_none());
}

#[test]
fn http_example_rejects_lengths_that_overflow_or_conflict() {
    let (rt, addr) = http_server();
    rt.block_on(move || rejects_lengths(addr));
}

fn rejects_lengths(addr: std::net::SocketAddr) {
    let cases: [&[u8]; 6] = [
        // Unicode white space around the digits.
        "POST / HTTP/1.1\r\nContent-Length: \u{a0}5\r\n\r\nhello".as_bytes(),
        // Would wrap `head + length` and frame the body as a second request.
        b"POST / HTTP/1.1\r\nContent-Length: 18446744073709551615\r\n\r\nGET /smuggled HTTP/1.1\r\n\r\n",
        b"POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n",
        b"POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 0\r\n\r\nhello",
        b"POST / HTTP/1.1\r\nContent-Length: +5\r\n\r\nhello",
        b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
    ];
    for request in cases {
        let reply = exchange(addr, request);
        let text = String::from_utf8_lossy(request);
        assert!(
            reply.starts_with("HTTP/1.1 400 ") || reply.starts_with("HTTP/1.1 413 "),
            "{text:?} got {reply:?}"
        );
        assert_eq!(count(&reply, "HTTP/1.1 "), 1, "{text:?} got {reply:?}");
        assert!(!reply.contains("200 OK"), "{text:?} got {reply:?}");
    }
    // The same length twice is one length.
    let reply = exchange(
        addr,
        b"POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
    );
    assert!(reply.starts_with("HTTP/1.1 200 OK"), "{reply}");
}

#[test]
fn http_example_delivers_413_to_a_client_still_sending_its_body() {
    let (_rt, addr) = http_server();
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    s.write_all(b"POST /upload HTTP/1.1\r\nContent-Length: 1000000\r\n\r\n")
        .unwrap();
    // Part of the body, unread by the server when it answers.
    s.write_all(&vec![b'x'; 64 * 1024]).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(50));
    // Still sending (a write to a reset connection fails: that is fine).
    let _ = s.write_all(&vec![b'x'; 64 * 1024]);
    let reply = read_reply(&mut s).expect("the reply was lost");
    assert!(
        reply.starts_with("HTTP/1.1 413 Payload Too Large\r\n"),
        "{reply}"
    );
}

/// Runs a real client program, failing with what it printed.
fn run_client(program: &str, args: &[&str]) -> String {
    let out = std::process::Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("{program} could not be run ({e}): scripts/test-all.sh installs it")
        });
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{program} {args:?}: {text}");
    text
}

#[test]
fn http_example_serves_curl_and_ab_with_keep_alive() {
    let (_rt, addr) = http_server();
    let url = format!("http://{addr}/");
    // curl, twice on one connection (HTTP/1.1 keep-alive), and once HTTP/1.0.
    let text = run_client("curl", &["-sS", "-v", &url, &url]);
    assert_eq!(count(&text, "Hello, world!"), 2, "{text}");
    assert!(text.contains("Re-using existing connection"), "{text}");
    let text = run_client("curl", &["-sS", "-0", "-H", "Connection: keep-alive", &url]);
    assert!(text.contains("Hello, world!"), "{text}");
    // ab -k: HTTP/1.0 with keep-alive, which made no progress before.
    let text = run_client("ab", &["-k", "-n", "2000", "-c", "10", "-s", "10", &url]);
    let line = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no {name} in {text}"))
            .to_string()
    };
    assert!(line("Complete requests:").ends_with(" 2000"), "{text}");
    assert!(line("Failed requests:").ends_with(" 0"), "{text}");
    assert!(line("Keep-Alive requests:").ends_with(" 2000"), "{text}");
}

/// A runtime on `cores` cores (the configuration is valid by construction).
fn runtime(cores: usize) -> Runtime {
    Runtime::builder()
        .cores(cores)
        .build()
        .expect("valid configuration")
}
