//! Linux: stacks with guard regions, futexes, CPU affinity, asymmetric barriers.

use crate::facade::AtomicU32;
use std::io;
use std::sync::OnceLock;
use std::time::Duration;

/// `madvise` advice that installs a guard region in the page tables without
/// splitting the mapping (Linux 6.13+). Not yet exported by the `libc` crate.
const MADV_GUARD_INSTALL: libc::c_int = 102;
const MEMBARRIER_CMD_PRIVATE_EXPEDITED: libc::c_int = 1 << 3;
const MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED: libc::c_int = 1 << 4;

/// The size of a memory page.
pub(crate) fn page_size() -> usize {
    static PAGE: OnceLock<usize> = OnceLock::new();
    *PAGE.get_or_init(|| {
        // SAFETY: sysconf has no memory-safety preconditions.
        let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        usize::try_from(size)
            .ok()
            .filter(|&s| s > 0)
            .unwrap_or(4096)
    })
}

/// Reserves `len` bytes of read-write anonymous memory that is committed only when
/// touched (no swap reservation), for strand stacks.
pub(crate) fn map_stack_memory(len: usize) -> io::Result<usize> {
    // SAFETY: an anonymous private mapping at an address of the kernel's choosing
    // aliases no existing Rust object.
    let ptr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE | libc::MAP_STACK,
            -1,
            0,
        )
    };
    if ptr == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    Ok(ptr as usize)
}

/// Returns memory obtained from [`map_stack_memory`] to the system.
///
/// # Safety
/// `addr..addr + len` must be a whole mapping from [`map_stack_memory`] that no
/// live object (in particular no stack in use) still points into.
pub(crate) unsafe fn unmap(addr: usize, len: usize) {
    // SAFETY: the caller guarantees the range is an unused mapping of ours.
    unsafe { libc::munmap(addr as *mut libc::c_void, len) };
}

/// How stack guard pages are made on this kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GuardKind {
    /// `MADV_GUARD_INSTALL`: page-table guard markers; the mapping is not split, so
    /// a million guarded stacks cost a few thousand mappings, not two million.
    PageTableMarker,
    /// `mprotect(PROT_NONE)`: every guard splits the mapping, so the number of
    /// guarded stacks is bounded by `vm.max_map_count` (about 32 000 by default).
    Mprotect,
}

/// Makes `addr..addr + len` (page aligned) a guard region: any access faults.
pub(crate) fn install_guard(addr: usize, len: usize, kind: GuardKind) -> io::Result<()> {
    // SAFETY: the range lies inside a mapping we own and holds no Rust object;
    // making it inaccessible cannot invalidate any reference.
    let rc = unsafe {
        match kind {
            GuardKind::PageTableMarker => {
                libc::madvise(addr as *mut libc::c_void, len, MADV_GUARD_INSTALL)
            }
            GuardKind::Mprotect => libc::mprotect(addr as *mut libc::c_void, len, libc::PROT_NONE),
        }
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The best guard mechanism this kernel offers, probed once.
pub(crate) fn guard_kind() -> GuardKind {
    static KIND: OnceLock<GuardKind> = OnceLock::new();
    *KIND.get_or_init(|| {
        let page = page_size();
        let Ok(probe) = map_stack_memory(2 * page) else {
            return GuardKind::Mprotect;
        };
        let kind = match install_guard(probe, page, GuardKind::PageTableMarker) {
            Ok(()) => GuardKind::PageTableMarker,
            Err(_) => GuardKind::Mprotect,
        };
        // SAFETY: the probe mapping was created above and nothing points into it.
        unsafe { unmap(probe, 2 * page) };
        kind
    })
}

/// Sleeps while `word` holds `expected`, at most `timeout` (forever if `None`).
/// Returns early on a wake, a signal, or when the value already differs.
pub(crate) fn futex_wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) {
    let ts = timeout.map(|d| libc::timespec {
        tv_sec: d.as_secs().min(i64::MAX as u64) as libc::time_t,
        tv_nsec: libc::c_long::from(d.subsec_nanos() as i32),
    });
    let ts_ptr = ts
        .as_ref()
        .map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: `word` is a live, aligned 32-bit atomic for the duration of the call;
    // FUTEX_WAIT only reads it. `ts_ptr` is null or points to a live timespec.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
            expected,
            ts_ptr,
        );
    }
}

/// Wakes every thread sleeping in [`futex_wait`] on `word`.
pub(crate) fn futex_wake_all(word: &AtomicU32) {
    // SAFETY: FUTEX_WAKE only uses the address as a key; `word` is live.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG,
            i32::MAX,
        );
    }
}

/// Kernel id of the calling thread.
pub(crate) fn thread_id() -> i32 {
    // SAFETY: plain system call without arguments.
    unsafe { libc::gettid() }
}

/// Lowers the scheduling priority of thread `tid` (of this process) by `by`
/// nice levels, at most to 19. Best effort: an error leaves the thread as it
/// was (it still runs, only competes harder with the others).
pub(crate) fn demote_thread(tid: i32, by: i32) {
    // getpriority can return -1 as a value: clear errno to tell it apart.
    // SAFETY: plain system calls on a thread id; errno is thread-local.
    unsafe {
        *libc::__errno_location() = 0;
        let now = libc::getpriority(libc::PRIO_PROCESS, tid as libc::id_t);
        if now == -1 && *libc::__errno_location() != 0 {
            return;
        }
        let _ = libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, (now + by).min(19));
    }
}

/// Pins the calling thread to `cpu`.
pub(crate) fn pin_current_thread(cpu: usize) -> io::Result<()> {
    // SAFETY: cpu_set_t is plain data; zeroed is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    if cpu >= libc::CPU_SETSIZE as usize {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "cpu index too large",
        ));
    }
    // SAFETY: `cpu` was checked to be below CPU_SETSIZE.
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // SAFETY: `set` is a valid cpu_set_t and its size is passed with it.
    let rc = unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The CPUs this process may run on, in increasing order.
pub(crate) fn allowed_cpus() -> Vec<usize> {
    // SAFETY: cpu_set_t is plain data; zeroed is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid, writable cpu_set_t of the size passed.
    let rc =
        unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    if rc != 0 {
        let n = std::thread::available_parallelism().map_or(1, |n| n.get());
        return (0..n).collect();
    }
    (0..libc::CPU_SETSIZE as usize)
        // SAFETY: every index is below CPU_SETSIZE.
        .filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &set) })
        .collect()
}

/// Registers the process for expedited private memory barriers. Returns whether
/// [`heavy_barrier`] is available.
pub(crate) fn register_heavy_barrier() -> bool {
    static OK: OnceLock<bool> = OnceLock::new();
    *OK.get_or_init(|| {
        // SAFETY: membarrier registration has no memory-safety preconditions.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_membarrier,
                MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED,
                0,
                0,
            )
        };
        rc == 0
    })
}

/// Executes a full memory barrier on every running thread of this process, so a
/// thread that only used a compiler fence is ordered against the caller. Only
/// valid after [`register_heavy_barrier`] returned true.
pub(crate) fn heavy_barrier() {
    // SAFETY: membarrier has no memory-safety preconditions.
    unsafe {
        libc::syscall(libc::SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0);
    }
}

/// Writes `bytes` to standard error with one system call, for signal handlers.
pub(crate) fn write_stderr_raw(bytes: &[u8]) {
    // SAFETY: write(2) is async-signal-safe; the buffer is live for the call.
    unsafe {
        libc::write(2, bytes.as_ptr().cast(), bytes.len());
    }
}

/// Aborts the process immediately (async-signal-safe).
pub(crate) fn abort_now() -> ! {
    // SAFETY: abort has no preconditions.
    unsafe { libc::abort() }
}

/// CPU time the calling thread has used, in ns. Async-signal-safe.
pub(crate) fn thread_cpu_ns() -> u64 {
    clock_ns(libc::CLOCK_THREAD_CPUTIME_ID)
}

/// `CLOCK_MONOTONIC` (the clock `Instant` reads), in ns. Async-signal-safe.
pub(crate) fn monotonic_ns() -> u64 {
    clock_ns(libc::CLOCK_MONOTONIC)
}

fn clock_ns(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a live timespec the call writes; both clocks exist on
    // every Linux braid supports.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn timespec_of(ns: u64) -> libc::timespec {
    libc::timespec {
        tv_sec: (ns / 1_000_000_000) as libc::time_t,
        tv_nsec: (ns % 1_000_000_000) as libc::c_long,
    }
}

/// Lets the kernel end the calling thread's timed sleeps at most `ns` late
/// (its default, 50 µs, is a quarter of a percent of a 20 ms period at every
/// wake). Best effort.
pub(crate) fn set_timer_slack(ns: u64) {
    // SAFETY: PR_SET_TIMERSLACK takes a plain integer and affects only the
    // calling thread.
    unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, ns as libc::c_ulong, 0, 0, 0) };
}

/// A high-resolution timer (`CLOCK_MONOTONIC`) that sends signal `signal`,
/// carrying `value`, to the thread that made it when it expires. (Timers on
/// a thread's CPU clock would say directly when it used a budget, but the
/// kernel checks them only at its scheduler tick — measured here: a 2 ms
/// budget's timer fired after 5.3–7.4 ms of CPU — so the budget code arms
/// this one and reads the CPU clock when it fires.)
pub(crate) struct ThreadTimer(libc::timer_t);

// SAFETY: a timer id is a plain kernel handle, usable from any thread.
unsafe impl Send for ThreadTimer {}
// SAFETY: as above; arming from two threads at once is the kernel's to order.
unsafe impl Sync for ThreadTimer {}

impl ThreadTimer {
    /// A disarmed timer for the calling thread.
    pub(crate) fn new(signal: i32, value: *mut libc::c_void) -> io::Result<ThreadTimer> {
        // SAFETY: an all-zero sigevent is valid (the padding union included);
        // the fields set below are the ones SIGEV_THREAD_ID reads.
        let mut event: libc::sigevent = unsafe { std::mem::zeroed() };
        event.sigev_notify = libc::SIGEV_THREAD_ID;
        event.sigev_signo = signal;
        event.sigev_value = libc::sigval { sival_ptr: value };
        event.sigev_notify_thread_id = thread_id();
        let mut timer: libc::timer_t = std::ptr::null_mut();
        // SAFETY: `event` and `timer` are live for the call, which writes
        // `timer`.
        let rc = unsafe { libc::timer_create(libc::CLOCK_MONOTONIC, &mut event, &mut timer) };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(ThreadTimer(timer))
    }

    /// Fires in `ns` (0: disarms).
    /// Async-signal-safe.
    pub(crate) fn arm(&self, ns: u64) {
        let spec = libc::itimerspec {
            it_interval: timespec_of(0),
            it_value: timespec_of(ns),
        };
        // SAFETY: the timer is live (deleted only on drop); `spec` is live.
        unsafe { libc::timer_settime(self.0, 0, &spec, std::ptr::null_mut()) };
    }
}

impl Drop for ThreadTimer {
    fn drop(&mut self) {
        // SAFETY: the timer was created by `new` and is deleted once.
        unsafe { libc::timer_delete(self.0) };
    }
}

/// Installs `handler` (an `SA_SIGINFO` handler) for `signal`, restarting
/// interrupted system calls.
pub(crate) fn install_signal_handler(
    signal: i32,
    handler: extern "C" fn(i32, *mut libc::siginfo_t, *mut libc::c_void),
) -> io::Result<()> {
    // SAFETY: an all-zero sigaction is valid; the handler is a plain
    // function that lives for the whole process.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = handler as usize;
        action.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART;
        libc::sigemptyset(&mut action.sa_mask);
        if libc::sigaction(signal, &action, std::ptr::null_mut()) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}
