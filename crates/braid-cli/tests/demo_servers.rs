//! `braid demo echo` and `braid demo http` start the example servers: each
//! prints the address it listens on and serves real connections there.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};

/// Starts `braid demo <server> 127.0.0.1:0`; returns the child and the address
/// from its first line ("… listening on [http://]ADDR").
fn start(server: &str) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_braid"))
        .args(["demo", server, "127.0.0.1:0", "--cores", "2"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("braid runs");
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .rsplit(' ')
        .next()
        .unwrap()
        .trim_start_matches("http://")
        .to_owned();
    (child, addr)
}

#[test]
fn demo_echo_echoes() {
    let (mut child, addr) = start("echo");
    let mut s = TcpStream::connect(&addr).expect("connect to the demo");
    s.write_all(b"ping\n").unwrap();
    let mut back = [0u8; 5];
    s.read_exact(&mut back).unwrap();
    assert_eq!(&back, b"ping\n");
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn demo_http_says_hello() {
    let (mut child, addr) = start("http");
    let mut s = TcpStream::connect(&addr).expect("connect to the demo");
    s.write_all(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).unwrap();
    assert!(reply.starts_with("HTTP/1.1 200 OK\r\n"), "{reply}");
    assert!(reply.ends_with("Hello, world!"), "{reply}");
    child.kill().unwrap();
    child.wait().unwrap();
}
