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

/// A runtime on `cores` cores (the configuration is valid by construction).
fn runtime(cores: usize) -> Runtime {
    Runtime::builder()
        .cores(cores)
        .build()
        .expect("valid configuration")
}
