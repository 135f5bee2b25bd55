//! File-descriptor exhaustion: `accept` reports EMFILE, backs off instead of
//! spinning, the runtime keeps serving other strands, and accepting recovers
//! once descriptors are free again.
//!
//! This binary holds one test only: it lowers the process's descriptor limit,
//! which would disturb tests running beside it.

use braid::net::{TcpListener, TcpStream};
use std::fs::File;
use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

fn set_fd_limit(soft: u64) -> u64 {
    let mut old = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: a valid out-pointer to an rlimit.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut old) }, 0);
    let new = libc::rlimit {
        rlim_cur: soft,
        rlim_max: old.rlim_max,
    };
    // SAFETY: a valid rlimit; lowering the soft limit is always allowed.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &new) }, 0);
    old.rlim_cur
}

fn open_fds() -> u64 {
    std::fs::read_dir("/proc/self/fd").unwrap().count() as u64
}

#[test]
fn accept_reports_exhaustion_backs_off_and_recovers() {
    let rt = braid::Runtime::builder().cores(2).build().unwrap();
    rt.block_on(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        // Three connections wait in the backlog before descriptors run out.
        let clients: Vec<_> = (0..3).map(|_| TcpStream::connect(addr).unwrap()).collect();
        // Another strand keeps working throughout.
        let stop = Arc::new(AtomicBool::new(false));
        let ticks = Arc::new(AtomicUsize::new(0));
        let (s, t) = (stop.clone(), ticks.clone());
        let worker = braid::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                t.fetch_add(1, Ordering::Relaxed);
                braid::sleep(Duration::from_millis(1)).unwrap();
            }
        });
        let old = set_fd_limit(open_fds() + 8);
        let mut hogs = Vec::new();
        while let Ok(f) = File::open("/dev/null") {
            hogs.push(f);
        }
        assert!(!hogs.is_empty());
        // Out of descriptors: accept says so, with the OS error.
        let err = listener.accept().unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EMFILE), "{err}");
        assert_eq!(listener.accept_backoff(), Duration::from_millis(1));
        let err = listener.accept().unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EMFILE), "{err}");
        assert_eq!(
            listener.accept_backoff(),
            Duration::from_millis(2),
            "the back-off grows while descriptors stay exhausted"
        );
        let before = ticks.load(Ordering::Relaxed);
        braid::sleep(Duration::from_millis(20)).unwrap();
        assert!(
            ticks.load(Ordering::Relaxed) > before,
            "other strands keep running"
        );
        // Descriptors come back: accept recovers and serves all three.
        hogs.truncate(hogs.len().saturating_sub(4));
        for (i, client) in clients.iter().enumerate() {
            let (server, _) = listener.accept().unwrap();
            assert_eq!(listener.accept_backoff(), Duration::ZERO);
            (&server).write_all(&[i as u8]).unwrap();
            let mut b = [0u8; 1];
            (&*client).read_exact(&mut b).unwrap();
            assert_eq!(b[0], i as u8);
        }
        drop(hogs);
        set_fd_limit(old);
        stop.store(true, Ordering::Relaxed);
        worker.join().unwrap();
    });
}
