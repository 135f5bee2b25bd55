//! Reporting strand stack overflows.
//!
//! A strand that runs off its stack touches its guard page and takes a SIGSEGV
//! (or SIGBUS). The handler, running on the thread's alternate signal stack,
//! checks whether the fault address lies in the guard of the strand the thread is
//! running. If so it prints which strand overflowed and how large its stack was,
//! and aborts the process: the strand may have been interrupted holding a lock or
//! half-way through updating shared data, so neither unwinding it nor carrying on
//! is safe — the same choice std makes for threads. Any other fault goes to the
//! handler that was installed before ours (std's, which reports thread stack
//! overflows), or to the default action.

use crate::context;
use crate::facade::Ordering;
use crate::sys;
use std::sync::OnceLock;

/// The SIGSEGV and SIGBUS actions that were in place before ours.
struct Previous {
    segv: libc::sigaction,
    bus: libc::sigaction,
}

static PREVIOUS: OnceLock<Previous> = OnceLock::new();

/// Installs the fault handler once per process.
pub(crate) fn install_handler() {
    PREVIOUS.get_or_init(|| {
        // SAFETY: sigaction is given valid, initialised structures. The previous
        // actions are returned into PREVIOUS, which the handler only reads after
        // this initialiser completed (a fault before that finds it unset and
        // takes the default action).
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_fault as *const () as usize;
            action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
            libc::sigemptyset(&mut action.sa_mask);
            let mut previous = Previous {
                segv: std::mem::zeroed(),
                bus: std::mem::zeroed(),
            };
            libc::sigaction(libc::SIGSEGV, &action, &mut previous.segv);
            libc::sigaction(libc::SIGBUS, &action, &mut previous.bus);
            previous
        }
    });
}

/// Gives the calling carrier thread an alternate signal stack if it has none, so
/// the handler can run when the thread's current stack is the exhausted one.
pub(crate) fn prepare_thread() {
    const ALT_STACK: usize = 64 * 1024;
    // SAFETY: sigaltstack reads/writes the given stack_t; the new stack is a
    // fresh mapping that is never freed (one per carrier thread).
    unsafe {
        let mut current: libc::stack_t = std::mem::zeroed();
        if libc::sigaltstack(std::ptr::null(), &mut current) != 0 {
            return;
        }
        if current.ss_flags & libc::SS_DISABLE == 0 {
            return;
        }
        let Ok(base) = sys::map_stack_memory(ALT_STACK) else {
            return;
        };
        let stack = libc::stack_t {
            ss_sp: base as *mut libc::c_void,
            ss_flags: 0,
            ss_size: ALT_STACK,
        };
        libc::sigaltstack(&stack, std::ptr::null_mut());
    }
}

/// Formats `n` in decimal into `buf`, returning the digits.
fn decimal(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[i..];
        }
    }
}

extern "C" fn on_fault(
    signal: libc::c_int,
    info: *mut libc::siginfo_t,
    context: *mut libc::c_void,
) {
    // SAFETY: the kernel passes a valid siginfo for SA_SIGINFO handlers.
    let addr = unsafe { (*info).si_addr() } as usize;
    let header = context::current_ptr();
    if !header.is_null() {
        // SAFETY: the running strand's header is alive while it runs; its fields
        // read here are immutable after spawn, the guard after the first run
        // (set by this thread's scheduler before it resumed the strand).
        let h = unsafe { &*header };
        let lo = h.guard[0].load(Ordering::Relaxed);
        let hi = h.guard[1].load(Ordering::Relaxed);
        if (lo..hi).contains(&addr) {
            let mut digits = [0u8; 20];
            sys::write_stderr_raw(b"\nbraid: strand '");
            match &h.name {
                Some(name) => sys::write_stderr_raw(name.as_bytes()),
                None => {
                    sys::write_stderr_raw(b"#");
                    sys::write_stderr_raw(decimal(h.id, &mut digits));
                }
            }
            sys::write_stderr_raw(b"' overflowed its stack of ");
            sys::write_stderr_raw(decimal(h.stack_size as u64, &mut digits));
            sys::write_stderr_raw(b" bytes; raise it with braid::Builder::stack_size. Aborting.\n");
            sys::abort_now();
        }
    }
    let previous = PREVIOUS.get().map(|p| {
        if signal == libc::SIGBUS {
            p.bus
        } else {
            p.segv
        }
    });
    let Some(previous) = previous else {
        reset_to_default(signal);
        return;
    };
    let handler = previous.sa_sigaction;
    if handler == libc::SIG_DFL || handler == libc::SIG_IGN {
        reset_to_default(signal);
    } else if previous.sa_flags & libc::SA_SIGINFO != 0 {
        // SAFETY: the previous handler was installed with SA_SIGINFO, so it has
        // this signature; we pass through the kernel's arguments.
        unsafe {
            let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                std::mem::transmute(handler);
            f(signal, info, context);
        }
    } else {
        // SAFETY: a handler installed without SA_SIGINFO takes only the signal.
        unsafe {
            let f: extern "C" fn(libc::c_int) = std::mem::transmute(handler);
            f(signal);
        }
    }
}

/// Restores the default action: when the handler returns, the fault repeats and
/// the process ends with the usual signal.
fn reset_to_default(signal: libc::c_int) {
    // SAFETY: resetting a signal to its default action is always valid.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = libc::SIG_DFL;
        libc::sigaction(signal, &action, std::ptr::null_mut());
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn decimal_formats() {
        let mut buf = [0u8; 20];
        assert_eq!(super::decimal(0, &mut buf), b"0");
        assert_eq!(super::decimal(131072, &mut buf), b"131072");
        assert_eq!(super::decimal(u64::MAX, &mut buf), b"18446744073709551615");
    }
}
