//! Strand-native sockets over real loopback connections: echo with many
//! connections across cores (counted exactly), the std I/O traits, lines,
//! timeouts, shutdown, faults (resets mid-read and mid-write, half-closed and
//! silent clients), UDP and Unix-domain sockets, sockets that move between
//! cores, and plain threads using sockets made in strands.

mod common;

use braid::net::{TcpListener, TcpStream, UdpSocket, UnixListener, UnixStream};
use common::runtime;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::net::Shutdown;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Serves echo on `listener` until `connections` clients have come and gone;
/// returns the bytes echoed.
fn echo_server(listener: TcpListener, connections: usize) -> u64 {
    let mut handlers = Vec::with_capacity(connections);
    for _ in 0..connections {
        let (stream, _) = listener.accept().expect("accept");
        handlers.push(braid::spawn(move || {
            let mut stream = stream;
            let mut buf = [0u8; 4096];
            let mut total = 0u64;
            loop {
                match stream.read(&mut buf) {
                    Ok(0) => return total,
                    Ok(n) => {
                        stream.write_all(&buf[..n]).expect("echo write");
                        total += n as u64;
                    }
                    Err(e) => panic!("echo read: {e}"),
                }
            }
        }));
    }
    handlers.into_iter().map(|h| h.join().unwrap()).sum()
}

#[test]
fn echo_with_many_connections_across_cores_counts_exactly() {
    const CLIENTS: usize = 200;
    const ROUNDS: usize = 50;
    let rt = runtime(2);
    let (server_bytes, client_bytes) = rt.block_on(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = braid::spawn(move || echo_server(listener, CLIENTS));
        let clients: Vec<_> = (0..CLIENTS)
            .map(|c| {
                braid::spawn(move || {
                    let mut stream = TcpStream::connect(addr).unwrap();
                    stream.set_nodelay(true).unwrap();
                    let mut total = 0u64;
                    for r in 0..ROUNDS {
                        let msg = format!("client {c} round {r} {}", "x".repeat(r * 7));
                        stream.write_all(msg.as_bytes()).unwrap();
                        let mut back = vec![0u8; msg.len()];
                        stream.read_exact(&mut back).unwrap();
                        assert_eq!(back, msg.as_bytes(), "client {c} round {r}");
                        total += msg.len() as u64;
                    }
                    total
                })
            })
            .collect();
        let client_bytes: u64 = clients.into_iter().map(|h| h.join().unwrap()).sum();
        (server.join().unwrap(), client_bytes)
    });
    assert_eq!(server_bytes, client_bytes);
    let expected: u64 = (0..CLIENTS)
        .map(|c| {
            (0..ROUNDS)
                .map(|r| format!("client {c} round {r} {}", "x".repeat(r * 7)).len() as u64)
                .sum::<u64>()
        })
        .sum();
    assert_eq!(client_bytes, expected);
    let stats = rt.stats();
    assert!(
        stats.cores.iter().map(|c| c.io_events).sum::<u64>() > 0,
        "readiness went through the pollers: {stats:?}"
    );
    assert_eq!(
        stats.cores.iter().map(|c| c.io_sources).sum::<usize>(),
        0,
        "every socket deregistered when dropped"
    );
}

#[test]
fn std_traits_lines_and_buffered_io() {
    let rt = runtime(2);
    rt.block_on(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = braid::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            // read_line takes exactly one line; what follows stays readable.
            let mut first = String::new();
            assert_eq!(stream.read_line(&mut first).unwrap(), 6);
            assert_eq!(first, "hello\n");
            let mut reader = BufReader::new(&stream);
            let mut writer = BufWriter::new(&stream);
            let mut lines = 0;
            for line in (&mut reader).lines() {
                let line = line.unwrap();
                if line == "end" {
                    break;
                }
                writeln!(writer, "{}", line.to_uppercase()).unwrap();
                lines += 1;
            }
            writer.flush().unwrap();
            drop(writer);
            stream.write_line("bye").unwrap();
            lines
        });
        let stream = TcpStream::connect(addr).unwrap();
        stream.write_line("hello").unwrap();
        let mut w = BufWriter::new(&stream);
        for i in 0..1000 {
            writeln!(w, "line {i}").unwrap();
        }
        writeln!(w, "end").unwrap();
        w.flush().unwrap();
        drop(w);
        let mut reader = BufReader::new(&stream);
        for i in 0..1000 {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            assert_eq!(line, format!("LINE {i}\n"));
        }
        let mut last = String::new();
        reader.read_line(&mut last).unwrap();
        assert_eq!(last, "bye\n");
        assert_eq!(server.join().unwrap(), 1000);
    });
}

#[test]
fn read_line_rejects_bad_utf8_and_reports_end_of_stream() {
    let rt = runtime(1);
    rt.block_on(|| {
        let (a, b) = UnixStream::pair().unwrap();
        (&a).write_all(b"ok\n\xff\xfe\n").unwrap();
        a.shutdown(Shutdown::Write).unwrap();
        let mut s = String::new();
        assert_eq!(b.read_line(&mut s).unwrap(), 3);
        let err = b.read_line(&mut s).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(err.to_string().contains("not UTF-8"), "{err}");
        assert_eq!(s, "ok\n", "nothing appended on error");
        assert_eq!(b.read_line(&mut s).unwrap(), 0, "end of stream");
    });
}

#[test]
fn timeouts_and_bad_timeouts() {
    let rt = runtime(2);
    rt.block_on(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let client = TcpStream::connect(addr).unwrap();
        let (server, _) = listener.accept().unwrap();
        // Read timeout: no data.
        server
            .set_read_timeout(Some(Duration::from_millis(30)))
            .unwrap();
        assert_eq!(server.read_timeout(), Some(Duration::from_millis(30)));
        let start = Instant::now();
        let err = (&server).read(&mut [0u8; 8]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(start.elapsed() >= Duration::from_millis(30));
        // Write timeout: the peer never reads, so the buffers fill up.
        client
            .set_write_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let chunk = vec![7u8; 64 * 1024];
        let mut written = 0usize;
        let err = loop {
            match (&client).write(&chunk) {
                Ok(n) => written += n,
                Err(e) => break e,
            }
        };
        assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");
        assert!(written > 0);
        // Zero timeouts are refused with a reason; None clears.
        let err = server.set_read_timeout(Some(Duration::ZERO)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert!(err.to_string().contains("zero timeout"), "{err}");
        server.set_read_timeout(None).unwrap();
        assert_eq!(server.read_timeout(), None);
        let err = TcpStream::connect_timeout(&addr, Duration::ZERO).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        // The data written before the timeout is all there.
        let mut got = 0usize;
        server
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let mut buf = vec![0u8; 64 * 1024];
        while got < written {
            got += (&server).read(&mut buf).unwrap();
        }
        assert_eq!(got, written);
    });
}

#[test]
fn connect_errors_are_reported() {
    let rt = runtime(1);
    rt.block_on(|| {
        // A port nobody listens on: bind one, note it, close it.
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let err = TcpStream::connect(("127.0.0.1", port)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused, "{err}");
        let addr = format!("127.0.0.1:{port}").parse().unwrap();
        let err = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused, "{err}");
        let err = UnixStream::connect("/nonexistent/braid.sock").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound, "{err}");
    });
}

#[test]
fn sockets_need_a_strand_to_be_created() {
    let err = TcpListener::bind("127.0.0.1:0").unwrap_err();
    assert!(err.to_string().contains("inside a braid strand"), "{err}");
}

/// Sets SO_LINGER to 0 so that closing sends a reset instead of a FIN.
fn reset_on_close(stream: &impl AsRawFd) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: a valid socket fd and a correctly sized option value.
    let rc = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0, "setsockopt SO_LINGER");
}

#[test]
fn peer_resets_mid_read_and_mid_write_and_the_server_keeps_serving() {
    let rt = runtime(2);
    rt.block_on(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        // Mid-read: the server waits for more of a message; the client resets.
        let client = TcpStream::connect(addr).unwrap();
        let (server, _) = listener.accept().unwrap();
        let reader = braid::spawn(move || {
            let mut buf = [0u8; 16];
            (&server).read_exact(&mut buf)
        });
        (&client).write_all(b"partial").unwrap();
        braid::sleep(Duration::from_millis(20)).unwrap();
        reset_on_close(&client);
        drop(client);
        let err = reader.join().unwrap().unwrap_err();
        assert!(
            matches!(
                err.kind(),
                io::ErrorKind::ConnectionReset | io::ErrorKind::UnexpectedEof
            ),
            "{err}"
        );
        // Mid-write: the server streams; the client reads a little, resets.
        let client = TcpStream::connect(addr).unwrap();
        let (server, _) = listener.accept().unwrap();
        let writer = braid::spawn(move || {
            let chunk = vec![1u8; 32 * 1024];
            loop {
                if let Err(e) = (&server).write_all(&chunk) {
                    return e;
                }
            }
        });
        let mut buf = vec![0u8; 4096];
        (&client).read_exact(&mut buf).unwrap();
        reset_on_close(&client);
        drop(client);
        let err = writer.join().unwrap();
        assert!(
            matches!(
                err.kind(),
                io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe
            ),
            "{err}"
        );
        // The listener still serves.
        let server = braid::spawn(move || echo_server(listener, 1));
        let mut c = TcpStream::connect(addr).unwrap();
        c.write_all(b"still here").unwrap();
        let mut back = [0u8; 10];
        c.read_exact(&mut back).unwrap();
        assert_eq!(&back, b"still here");
        drop(c);
        assert_eq!(server.join().unwrap(), 10);
    });
}

#[test]
fn half_closed_connection_still_gets_its_reply() {
    let rt = runtime(2);
    rt.block_on(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = braid::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut request = Vec::new();
            (&stream).read_to_end(&mut request).unwrap();
            (&stream)
                .write_all(format!("got {} bytes", request.len()).as_bytes())
                .unwrap();
        });
        let stream = TcpStream::connect(addr).unwrap();
        (&stream).write_all(&[5u8; 10_000]).unwrap();
        stream.shutdown(Shutdown::Write).unwrap();
        let mut reply = String::new();
        (&stream).read_to_string(&mut reply).unwrap();
        assert_eq!(reply, "got 10000 bytes");
        server.join().unwrap();
    });
}

#[test]
fn silent_clients_time_out_while_others_are_served() {
    let rt = runtime(2);
    let closed = Arc::new(AtomicUsize::new(0));
    let c2 = closed.clone();
    rt.block_on(move || {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let closed = c2;
        let server = braid::spawn(move || {
            let mut handlers = Vec::new();
            for _ in 0..6 {
                let (stream, _) = listener.accept().unwrap();
                let closed = closed.clone();
                handlers.push(braid::spawn(move || {
                    stream
                        .set_read_timeout(Some(Duration::from_millis(100)))
                        .unwrap();
                    let mut line = String::new();
                    match stream.read_line(&mut line) {
                        Ok(_) => stream.write_line(&format!("echo {}", line.trim())).unwrap(),
                        Err(e) => {
                            assert_eq!(e.kind(), io::ErrorKind::TimedOut);
                            closed.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                }));
            }
            for h in handlers {
                h.join().unwrap();
            }
        });
        // Three clients connect and say nothing; three talk.
        let silent: Vec<_> = (0..3).map(|_| TcpStream::connect(addr).unwrap()).collect();
        let start = Instant::now();
        for i in 0..3 {
            let s = TcpStream::connect(addr).unwrap();
            s.write_line(&format!("hi {i}")).unwrap();
            let mut reply = String::new();
            s.read_line(&mut reply).unwrap();
            assert_eq!(reply, format!("echo hi {i}\n"));
        }
        assert!(
            start.elapsed() < Duration::from_millis(100),
            "talking clients were not held up by silent ones"
        );
        server.join().unwrap();
        // The server closed the silent connections: they read end of stream.
        for s in silent {
            let mut buf = [0u8; 1];
            assert_eq!((&s).read(&mut buf).unwrap(), 0);
        }
    });
    assert_eq!(closed.load(Ordering::SeqCst), 3);
}

#[test]
fn a_cancelled_strand_stops_waiting_on_a_socket() {
    let rt = runtime(2);
    rt.block_on(|| {
        let (a, b) = UnixStream::pair().unwrap();
        let h = braid::spawn(move || {
            let mut buf = [0u8; 4];
            (&b).read(&mut buf)
        });
        braid::sleep(Duration::from_millis(20)).unwrap();
        h.group().cancel();
        let err = h.join().unwrap().unwrap_err();
        assert!(
            err.get_ref()
                .is_some_and(|e| e.downcast_ref::<braid::Cancelled>().is_some()),
            "{err:?}"
        );
        drop(a);
    });
}

#[test]
fn a_socket_follows_the_strand_that_waits_on_it() {
    let rt = runtime(2);
    let (a, b, here) = rt.block_on(|| {
        let (a, b) = UnixStream::pair().unwrap();
        (a, b, braid::current().unwrap().core())
    });
    let sources = |rt: &braid::Runtime| -> Vec<usize> {
        rt.stats().cores.iter().map(|c| c.io_sources).collect()
    };
    let mut expect = vec![0, 0];
    expect[here] = 2;
    assert_eq!(
        sources(&rt),
        expect,
        "both ends registered where they were made"
    );
    let there = 1 - here;
    let reader = rt.block_on(move || {
        braid::Builder::new()
            .core(there)
            .spawn(move || {
                let mut buf = [0u8; 5];
                (&b).read_exact(&mut buf).unwrap();
                (buf, braid::current().unwrap().core())
            })
            .unwrap()
    });
    // The reader waits on the other core: its end moved there. Each core
    // publishes its own count, so the new home's can show first.
    let deadline = Instant::now() + Duration::from_secs(5);
    while sources(&rt) != vec![1, 1] {
        assert!(
            Instant::now() < deadline,
            "registration never moved: {:?}",
            sources(&rt)
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    (&a).write_all(b"moved").unwrap();
    let (buf, core) = reader.join().unwrap();
    assert_eq!(&buf, b"moved");
    assert_eq!(core, there);
}

#[test]
fn threads_may_use_sockets_made_in_strands() {
    let rt = runtime(2);
    let (listener, stream) = rt.block_on(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let stream = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        (listener, stream)
    });
    let server = std::thread::spawn(move || {
        let (s, _) = listener.accept().unwrap();
        let mut line = String::new();
        s.read_line(&mut line).unwrap();
        s.write_line(&line.trim().chars().rev().collect::<String>())
            .unwrap();
    });
    stream.write_line("threads").unwrap();
    let mut reply = String::new();
    stream.read_line(&mut reply).unwrap();
    assert_eq!(reply, "sdaerht\n");
    server.join().unwrap();
}

#[test]
fn udp_round_trips() {
    let rt = runtime(2);
    rt.block_on(|| {
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = server.local_addr().unwrap();
        let echo = braid::spawn(move || {
            let mut buf = [0u8; 1500];
            let mut n = 0;
            loop {
                let (len, from) = server.recv_from(&mut buf).unwrap();
                if &buf[..len] == b"stop" {
                    return n;
                }
                server.send_to(&buf[..len], from).unwrap();
                n += 1;
            }
        });
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        client.connect(addr).unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        for i in 0..500u32 {
            client.send(&i.to_le_bytes()).unwrap();
            let mut buf = [0u8; 4];
            assert_eq!(client.recv(&mut buf).unwrap(), 4);
            assert_eq!(u32::from_le_bytes(buf), i);
        }
        client.send(b"stop").unwrap();
        assert_eq!(echo.join().unwrap(), 500);
        // Nothing arrives: the read timeout ends the wait.
        client
            .set_read_timeout(Some(Duration::from_millis(20)))
            .unwrap();
        let err = client.recv(&mut [0u8; 4]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    });
}

#[test]
fn unix_sockets_echo_through_a_listener() {
    let rt = runtime(2);
    let dir = std::env::temp_dir().join(format!("braid-net-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("echo.sock");
    let p = path.clone();
    rt.block_on(move || {
        let listener = UnixListener::bind(&p).unwrap();
        let server = braid::spawn(move || {
            let mut served = 0;
            for stream in listener.incoming().take(20) {
                let stream = stream.unwrap();
                braid::spawn(move || {
                    let mut line = String::new();
                    while stream.read_line(&mut line).unwrap() > 0 {
                        stream.write_line(line.trim_end()).unwrap();
                        line.clear();
                    }
                });
                served += 1;
            }
            served
        });
        let clients: Vec<_> = (0..20)
            .map(|i| {
                let p = p.clone();
                braid::spawn(move || {
                    let s = UnixStream::connect(&p).unwrap();
                    for j in 0..50 {
                        s.write_line(&format!("{i}:{j}")).unwrap();
                        let mut back = String::new();
                        s.read_line(&mut back).unwrap();
                        assert_eq!(back, format!("{i}:{j}\n"));
                    }
                })
            })
            .collect();
        for c in clients {
            c.join().unwrap();
        }
        assert_eq!(server.join().unwrap(), 20);
    });
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn read_line_keeps_a_partial_line_on_timeout() {
    let rt = runtime(1);
    rt.block_on(|| {
        let (a, b) = UnixStream::pair().unwrap();
        b.set_read_timeout(Some(Duration::from_millis(30))).unwrap();
        (&a).write_all(b"par").unwrap();
        let mut line = String::new();
        let err = b.read_line(&mut line).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert_eq!(line, "par", "the bytes taken before the timeout are kept");
        (&a).write_all(b"tial\nnext\n").unwrap();
        assert_eq!(b.read_line(&mut line).unwrap(), 5);
        assert_eq!(line, "partial\n");
    });
}

#[test]
fn a_strand_of_another_runtime_may_use_a_socket() {
    let small = runtime(1);
    let big = runtime(2);
    let (a, b) = small.block_on(|| UnixStream::pair().unwrap());
    let got = big.block_on(move || {
        // Waits from core 0 or 1 of a different runtime: the registration
        // stays with the socket's own runtime.
        let reader = braid::Builder::new()
            .core(1)
            .spawn(move || {
                let mut buf = [0u8; 3];
                (&b).read_exact(&mut buf).unwrap();
                buf
            })
            .unwrap();
        braid::sleep(Duration::from_millis(10)).unwrap();
        (&a).write_all(b"abc").unwrap();
        reader.join().unwrap()
    });
    assert_eq!(&got, b"abc");
}

#[test]
fn a_socket_outliving_its_runtime_reports_it() {
    let rt = runtime(1);
    let (a, b) = rt.block_on(|| UnixStream::pair().unwrap());
    (&a).write_all(b"x").unwrap();
    drop(rt);
    // Data that was already there is still read; a wait is refused.
    let mut buf = [0u8; 1];
    assert_eq!((&b).read(&mut buf).unwrap(), 1);
    let err = (&b).read(&mut buf).unwrap_err();
    assert!(err.to_string().contains("shut down"), "{err}");
}

#[test]
fn a_thread_blocked_on_a_socket_is_released_when_the_runtime_shuts_down() {
    let rt = runtime(2);
    let (a, b) = rt.block_on(|| UnixStream::pair().unwrap());
    // A plain thread waits with no timeout for data that never comes.
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 1];
        tx.send(()).unwrap();
        (&b).read(&mut buf)
    });
    rx.recv().unwrap();
    // Let it get into its wait.
    std::thread::sleep(Duration::from_millis(50));
    assert!(
        !reader.is_finished(),
        "nothing was written: the read must wait"
    );
    let dropped_at = Instant::now();
    drop(rt);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !reader.is_finished() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(
        reader.is_finished(),
        "the blocked reader was not released by the shutdown"
    );
    let err = reader.join().unwrap().unwrap_err();
    assert!(err.to_string().contains("shut down"), "{err}");
    eprintln!("released {:?} after the drop", dropped_at.elapsed());
    drop(a);
}

#[test]
fn a_strand_of_another_runtime_blocked_on_a_socket_is_released_too() {
    let owner = runtime(1);
    let other = runtime(1);
    let (a, b) = owner.block_on(|| UnixStream::pair().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    other
        .spawn(move || {
            let mut buf = [0u8; 1];
            tx.send((&b).read(&mut buf)).unwrap();
        })
        .unwrap();
    std::thread::sleep(Duration::from_millis(50));
    assert!(
        rx.try_recv().is_err(),
        "nothing was written: the read must wait"
    );
    drop(owner);
    let err = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the blocked strand was not released by the shutdown")
        .unwrap_err();
    assert!(err.to_string().contains("shut down"), "{err}");
    drop(a);
}
