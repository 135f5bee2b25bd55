//! Linux: stacks with guard regions, futexes, CPU affinity, asymmetric barriers.

use crate::facade::AtomicU32;
use braid_core::sched::watchdog::Demotion;
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

/// The process's address-space limit (`RLIMIT_AS`) in bytes, if it has one.
pub(crate) fn address_space_limit() -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes the limit it is given a pointer to.
    let ok = unsafe { libc::getrlimit(libc::RLIMIT_AS, &mut limit) } == 0;
    (ok && limit.rlim_cur != libc::RLIM_INFINITY).then_some(limit.rlim_cur)
}

/// The nice level of thread `tid` (of this process); 0 if it cannot be read.
pub(crate) fn thread_nice(tid: i32) -> i32 {
    // getpriority can return -1 as a value: clear errno to tell it apart.
    // SAFETY: plain system call on a thread id; errno is thread-local.
    unsafe {
        *libc::__errno_location() = 0;
        let nice = libc::getpriority(libc::PRIO_PROCESS, tid as libc::id_t);
        if nice == -1 && *libc::__errno_location() != 0 {
            0
        } else {
            nice
        }
    }
}

/// Lowers the scheduling priority of thread `tid` (of this process), whose
/// nice level was `base`, to `to`: that many nice levels below `base` (at
/// most to 19), or the idle class. Best effort: an error leaves the thread as
/// it was (it still runs, only competes harder with the others). Raising it
/// back is not needed: a demoted carrier ends when its strand returns (only
/// the carrier a core was just taken from may take it back, and it is not
/// demoted until its replacement started; see `core::handshake`).
pub(crate) fn demote_thread(tid: i32, base: i32, to: Demotion) {
    // SAFETY: plain system calls on a thread id, with a valid parameter block.
    unsafe {
        match to {
            Demotion::Nice(by) => {
                let _ = libc::setpriority(
                    libc::PRIO_PROCESS,
                    tid as libc::id_t,
                    base.saturating_add(by).min(19),
                );
            }
            Demotion::Idle => {
                let param = libc::sched_param { sched_priority: 0 };
                let _ = libc::sched_setscheduler(tid, libc::SCHED_IDLE, &param);
            }
        }
    }
}

/// Puts the calling thread in the kernel's real-time class at its lowest
/// priority, where the process may (`CAP_SYS_NICE`, or `RLIMIT_RTPRIO` above
/// 0): its wakes then preempt ordinary threads at once instead of waiting for
/// the next tick. For a thread that runs a few microseconds per wake (the
/// monitor). Threads it starts do not inherit the class (they start as
/// ordinary threads, `SCHED_RESET_ON_FORK`). Best effort; returns whether it
/// worked.
pub(crate) fn raise_current_thread() -> bool {
    let param = libc::sched_param { sched_priority: 1 };
    // SAFETY: plain system call on the calling thread with a valid parameter.
    unsafe {
        libc::sched_setscheduler(0, libc::SCHED_FIFO | libc::SCHED_RESET_ON_FORK, &param) == 0
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

/// A cgroup of the kernel's `cpu` controller (cgroup v1) holding the carriers
/// a runtime left running hogs: the kernel weighs the whole group as one
/// entity beside the runtime's carriers, however many threads it holds. Threads
/// that are simply demoted (nice levels, the idle class) weigh little each,
/// but a woken carrier still waits behind them in proportion to their number
/// (measured on Linux 6.18, 2 CPUs: a 5 ms sleeper's p99 lateness beside 50
/// idle-class spinners on its CPU is ~40 ms, beside 500 in such a group with
/// shares 240 it is ~0.15 ms).
///
/// Made only where the process may: the `cpu` controller mounted as cgroup
/// v1 and the process's own cgroup there writable. (cgroup v2 needs a
/// threaded subtree delegated to the process; not done yet.)
#[derive(Debug)]
pub(crate) struct HogGroup {
    dir: std::path::PathBuf,
    tasks: std::fs::File,
}

/// The name prefix of hog groups: `braid-hogs-<pid>-<runtime id>`.
const HOG_GROUP_PREFIX: &str = "braid-hogs-";

impl HogGroup {
    /// Makes the group for runtime `runtime` with `shares` (cgroup v1
    /// `cpu.shares`; a thread at nice 0 weighs 1 024), after removing groups
    /// that processes which ended left behind.
    pub(crate) fn create(runtime: u64, shares: u64) -> io::Result<HogGroup> {
        let parent = own_cpu_cgroup()?;
        sweep_hog_groups(&parent);
        let dir = parent.join(format!(
            "{HOG_GROUP_PREFIX}{}-{runtime}",
            std::process::id()
        ));
        std::fs::create_dir(&dir)?;
        let made = (|| {
            std::fs::write(dir.join("cpu.shares"), shares.max(2).to_string())?;
            std::fs::OpenOptions::new()
                .write(true)
                .open(dir.join("tasks"))
        })();
        match made {
            Ok(tasks) => Ok(HogGroup { dir, tasks }),
            Err(err) => {
                let _ = std::fs::remove_dir(&dir);
                Err(err)
            }
        }
    }

    /// Moves thread `tid` of this process into the group.
    pub(crate) fn adopt(&self, tid: i32) -> io::Result<()> {
        use std::io::Write as _;
        (&self.tasks).write_all(format!("{tid}\n").as_bytes())
    }

    /// The group's directory.
    pub(crate) fn dir(&self) -> &std::path::Path {
        &self.dir
    }
}

impl Drop for HogGroup {
    /// Removes the group; the kernel refuses while a thread is still in it
    /// (a carrier detached at shutdown), and the next runtime's sweep removes
    /// it once this process ended.
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// The directory of this process's cgroup in the v1 `cpu` hierarchy.
fn own_cpu_cgroup() -> io::Result<std::path::PathBuf> {
    let unsupported = |what: &str| io::Error::new(io::ErrorKind::Unsupported, what.to_string());
    let has_cpu = |list: &str| list.split(',').any(|c| c == "cpu");
    let cgroups = std::fs::read_to_string("/proc/self/cgroup")?;
    let path = cgroups
        .lines()
        .filter_map(|l| l.split_once(':').and_then(|(_, rest)| rest.split_once(':')))
        .find(|(controllers, _)| has_cpu(controllers))
        .map(|(_, path)| path.to_string())
        .ok_or_else(|| unsupported("no cgroup v1 cpu controller"))?;
    // mountinfo: "... mount-point options - fstype source super-options".
    let mounts = std::fs::read_to_string("/proc/self/mountinfo")?;
    let mount = mounts
        .lines()
        .find_map(|l| {
            let (fields, tail) = l.split_once(" - ")?;
            let mut tail = tail.split(' ');
            let (fstype, super_options) = (tail.next()?, tail.nth(1)?);
            (fstype == "cgroup" && has_cpu(super_options))
                .then(|| fields.split(' ').nth(4).map(str::to_string))
                .flatten()
        })
        .ok_or_else(|| unsupported("the cgroup v1 cpu controller is not mounted"))?;
    Ok(std::path::Path::new(&mount).join(path.trim_start_matches('/')))
}

/// Removes hog groups in `parent` whose process is gone (the kernel removes
/// only empty groups, and a gone process's threads are gone).
fn sweep_hog_groups(parent: &std::path::Path) {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(HOG_GROUP_PREFIX))
            .and_then(|rest| rest.split('-').next())
        else {
            continue;
        };
        if !std::path::Path::new("/proc").join(pid).exists() {
            let _ = std::fs::remove_dir(entry.path());
        }
    }
}
