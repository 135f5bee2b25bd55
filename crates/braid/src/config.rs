//! Runtime configuration and its validation.

use crate::sched::{BalancerChoice, PolicyChoice};
use crate::sys;
use std::fmt;
use std::time::Duration;

/// Largest number of cores a runtime accepts.
pub const MAX_CORES: usize = 1024;
/// Smallest strand stack, in bytes: room for a panic to unwind and print.
pub const MIN_STACK_SIZE: usize = 16 * 1024;
/// Largest strand stack, in bytes.
pub const MAX_STACK_SIZE: usize = 1 << 30;
/// Default strand stack, in bytes. Reserved, not committed: a strand pays for the
/// pages it touches.
pub const DEFAULT_STACK_SIZE: usize = 128 * 1024;

/// An invalid setting: which one, the value given, and what is accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    setting: &'static str,
    value: String,
    allowed: String,
}

impl ConfigError {
    pub(crate) fn new(
        setting: &'static str,
        value: impl fmt::Display,
        allowed: impl Into<String>,
    ) -> ConfigError {
        ConfigError {
            setting,
            value: value.to_string(),
            allowed: allowed.into(),
        }
    }

    /// The name of the offending setting, e.g. `"cores"`.
    pub fn setting(&self) -> &str {
        self.setting
    }

    /// The rejected value, as given.
    pub fn value(&self) -> &str {
        &self.value
    }

    /// What the setting accepts.
    pub fn allowed(&self) -> &str {
        &self.allowed
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid runtime setting `{}` = {}: allowed {}",
            self.setting, self.value, self.allowed
        )
    }
}

impl std::error::Error for ConfigError {}

/// Checks a strand stack size: within bounds and a whole number of pages.
pub(crate) fn check_stack_size(setting: &'static str, bytes: usize) -> Result<usize, ConfigError> {
    let page = sys::page_size();
    if !(MIN_STACK_SIZE..=MAX_STACK_SIZE).contains(&bytes) || bytes % page != 0 {
        return Err(ConfigError::new(
            setting,
            bytes,
            format!("{MIN_STACK_SIZE}..={MAX_STACK_SIZE} bytes in whole pages of {page} bytes"),
        ));
    }
    Ok(bytes)
}

/// Validated settings of a runtime.
#[derive(Clone, Debug)]
pub(crate) struct Config {
    pub(crate) cores: usize,
    pub(crate) cpus: Vec<usize>,
    pub(crate) pin: bool,
    pub(crate) stack_size: usize,
    pub(crate) time_slice: Duration,
    pub(crate) hog_threshold: Duration,
    pub(crate) ring_capacity: usize,
    pub(crate) seed: u64,
    pub(crate) blocking_threads: usize,
    pub(crate) policy: PolicyChoice,
    pub(crate) balancer: BalancerChoice,
    /// Cores that may be leased to one group (see `lease`), sorted.
    pub(crate) lease_pool: Vec<usize>,
    pub(crate) shutdown_timeout: Duration,
    pub(crate) hog_cgroup: bool,
    pub(crate) max_strands: u64,
}

/// The time slices a runtime or a strand may ask for.
pub(crate) const SLICES: std::ops::RangeInclusive<Duration> =
    Duration::from_micros(100)..=Duration::from_secs(1);

/// [`SLICES`] as error messages print it.
pub(crate) const SLICES_ALLOWED: &str = "100µs..=1s";

/// Most threads the blocking pool may be given.
pub const MAX_BLOCKING_THREADS: usize = 4096;

/// Builds a [`Runtime`](crate::Runtime); every setting is checked by
/// [`build`](RuntimeBuilder::build).
#[derive(Clone, Debug, Default)]
#[must_use]
pub struct RuntimeBuilder {
    cores: Option<usize>,
    pin: Option<bool>,
    stack_size: Option<usize>,
    time_slice: Option<Duration>,
    hog_threshold: Option<Duration>,
    ring_capacity: Option<usize>,
    seed: Option<u64>,
    blocking_threads: Option<usize>,
    policy: Option<PolicyChoice>,
    balancer: Option<BalancerChoice>,
    lease_pool: Option<Vec<usize>>,
    shutdown_timeout: Option<Duration>,
    hog_cgroup: Option<bool>,
    max_strands: Option<u64>,
}

/// The most [`RuntimeBuilder::max_strands`] accepted (2^27, as BEAM's `+P`).
pub const MAX_STRANDS: u64 = 1 << 27;

/// [`RuntimeBuilder::max_strands`] by default, where the address space is not
/// limited (2^22; BEAM's default is 2^20).
pub const DEFAULT_MAX_STRANDS: u64 = 1 << 22;

/// The default live-strand limit: [`DEFAULT_MAX_STRANDS`], or fewer where the
/// process's address space is limited (`RLIMIT_AS`): as many strands as half
/// of it holds at `stack_size` plus 8 KiB each, so that a program under
/// `ulimit -v` gets a spawn error rather than an allocation failure.
fn default_max_strands(stack_size: usize) -> u64 {
    let per_strand = stack_size as u64 + 8 * 1024;
    crate::sys::address_space_limit().map_or(DEFAULT_MAX_STRANDS, |limit| {
        (limit / 2 / per_strand).clamp(1, DEFAULT_MAX_STRANDS)
    })
}

/// The longest [`RuntimeBuilder::shutdown_timeout`] accepted.
pub const MAX_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(3600);

impl RuntimeBuilder {
    /// How long dropping the runtime waits for its strands to end (default
    /// 1 s). A drop cancels every strand, wakes the blocked ones (their
    /// blocking calls return their cancellation error) and unwinds each one
    /// at its next blocking call or yield, so that its destructors run and
    /// what it owns — sockets, channel ends, locks, memory — is released.
    /// Strands still alive when the time is up are left as they are: one
    /// still running on its thread keeps that thread (detached), one that
    /// keeps yielding without ending keeps its stack; both are counted in a
    /// warning that names them. `Duration::ZERO` unwinds nothing.
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = Some(timeout);
        self
    }

    /// The cores that may be leased exclusively to one group (see
    /// [`crate::sched::Lease`]): core indices, at least one core of the
    /// runtime left out. Default: none (no lease can be granted).
    pub fn lease_pool(mut self, cores: impl IntoIterator<Item = usize>) -> Self {
        self.lease_pool = Some(cores.into_iter().collect());
        self
    }

    /// Number of cores (carrier threads). Default: the CPUs this process may use.
    pub fn cores(mut self, cores: usize) -> Self {
        self.cores = Some(cores);
        self
    }

    /// Whether each core's thread is pinned to one CPU (default true). Where the
    /// system refuses, the core runs unpinned and a warning is printed once.
    pub fn pin(mut self, pin: bool) -> Self {
        self.pin = Some(pin);
        self
    }

    /// Default stack size of strands, in bytes (default 128 KiB).
    pub fn stack_size(mut self, bytes: usize) -> Self {
        self.stack_size = Some(bytes);
        self
    }

    /// How long a strand may run before it is asked to yield at its next runtime
    /// call (default 2 ms), under braid's own policies (a program's own policy
    /// gives its own slices). Slices are measured on the runtime's coarse
    /// clock, in 1 ms ticks.
    pub fn time_slice(mut self, slice: Duration) -> Self {
        self.time_slice = Some(slice);
        self
    }

    /// How long a strand may run without any runtime call while others wait on its
    /// core before the core's queue is moved to a replacement carrier thread
    /// (default 4 ms). The old thread keeps running the hogging strand until
    /// its next runtime call, on the same CPU, but weighing little beside the
    /// core's new carrier (see [`hog_cgroup`](Self::hog_cgroup)), so that the
    /// core's other strands are not kept waiting by the kernel. While one hog
    /// follows another on a core, the threshold halves with each, down to
    /// 250 µs.
    pub fn hog_threshold(mut self, threshold: Duration) -> Self {
        self.hog_threshold = Some(threshold);
        self
    }

    /// Whether threads left running hogs go into a cgroup of their own
    /// (default true), where the process may make one: the kernel then
    /// weighs all of them together as about one thread at nice 10 per core,
    /// however many there are, and the cores' carriers keep their CPUs. In
    /// any case each such thread's priority drops with their number on its
    /// core (nice 10 to 19, then the kernel's idle class); without the group
    /// that keeps their total weight small but not their effect on wake
    /// latency, which grows with their number (see `Stats::hog_isolation`
    /// and the README's section on hogs). The group is made at the first hog,
    /// in the process's own cgroup of the v1 `cpu` controller, named
    /// `braid-hogs-<pid>-<runtime>`, and removed at shutdown.
    pub fn hog_cgroup(mut self, enabled: bool) -> Self {
        self.hog_cgroup = Some(enabled);
        self
    }

    /// The most strands that may be alive at once (1 to [`MAX_STRANDS`]);
    /// a spawn past it fails with a [`SpawnError`](crate::SpawnError) for
    /// which [`too_many_strands_limit`](crate::SpawnError::too_many_strands_limit)
    /// says so. Default [`DEFAULT_MAX_STRANDS`] (2^22), or fewer under an
    /// address-space limit (`ulimit -v`): as many as half of it holds at the
    /// default stack size plus 8 KiB each. Busy cores keep small reserves of
    /// permits, so a spawn may be refused while up to a sixteenth of the
    /// limit sits in other cores' reserves (cores return theirs when they
    /// idle); under 128 per core the limit is exact.
    pub fn max_strands(mut self, max: u64) -> Self {
        self.max_strands = Some(max);
        self
    }

    /// Capacity of each inter-core ring (default 256; a power of two).
    pub fn ring_capacity(mut self, capacity: usize) -> Self {
        self.ring_capacity = Some(capacity);
        self
    }

    /// Seed of the balancers' random choices, for replayable runs.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Most threads of the pool that runs [`blocking`](crate::blocking) calls
    /// (default 64). Threads start on demand and end after 10 s idle; calls
    /// beyond this many wait in a queue.
    pub fn blocking_threads(mut self, threads: usize) -> Self {
        self.blocking_threads = Some(threads);
        self
    }

    /// The local scheduling policy of every core: which ready strand runs
    /// next and for how long (default: round robin). One of braid's by name
    /// (`PolicyKind`), or the program's own (`PolicyChoice::custom`); see
    /// [`sched`](crate::sched).
    ///
    /// `PolicyKind::Eevdf` is what weights, latency classes and slices need
    /// (with `BalancerKind::Weighted` for shares across cores): on 2 cores
    /// it holds 1 : 2 : 4 within 0.1 pp and gives latency-class requests
    /// among 10 ms batch work a p99 of about 200 µs where round robin gives
    /// 600 µs. It is not the default because it costs every switch: a yield
    /// 59 ns against round robin's 17, spawn + join 412 ns against 324
    /// (`switches` example, one core; BENCHMARKS.md).
    pub fn policy(mut self, policy: impl Into<PolicyChoice>) -> Self {
        self.policy = Some(policy.into());
        self
    }

    /// How cores trade work (default: steal-half); see
    /// [`sched`](crate::sched).
    pub fn balancer(mut self, balancer: impl Into<BalancerChoice>) -> Self {
        self.balancer = Some(balancer.into());
        self
    }

    /// Checks every setting and starts the runtime.
    pub fn build(self) -> Result<crate::Runtime, ConfigError> {
        crate::Runtime::start(self.validate()?)
    }

    pub(crate) fn validate(self) -> Result<Config, ConfigError> {
        let mut cpus = sys::allowed_cpus();
        if cpus.is_empty() {
            cpus.push(0);
        }
        let cores = self.cores.unwrap_or(cpus.len().min(MAX_CORES));
        if !(1..=MAX_CORES).contains(&cores) {
            return Err(ConfigError::new("cores", cores, format!("1..={MAX_CORES}")));
        }
        let stack_size =
            check_stack_size("stack_size", self.stack_size.unwrap_or(DEFAULT_STACK_SIZE))?;
        let time_slice = self.time_slice.unwrap_or(Duration::from_millis(2));
        if !SLICES.contains(&time_slice) {
            return Err(ConfigError::new(
                "time_slice",
                format!("{time_slice:?}"),
                SLICES_ALLOWED,
            ));
        }
        let hog_threshold = self.hog_threshold.unwrap_or(Duration::from_millis(4));
        let hog_range = Duration::from_millis(1)..=Duration::from_secs(60);
        if !hog_range.contains(&hog_threshold) {
            return Err(ConfigError::new(
                "hog_threshold",
                format!("{hog_threshold:?}"),
                "1ms..=60s",
            ));
        }
        let max_strands = self
            .max_strands
            .unwrap_or_else(|| default_max_strands(stack_size));
        if !(1..=MAX_STRANDS).contains(&max_strands) {
            return Err(ConfigError::new(
                "max_strands",
                max_strands,
                format!("1..={MAX_STRANDS}"),
            ));
        }
        let ring_capacity = self.ring_capacity.unwrap_or(256);
        if !ring_capacity.is_power_of_two()
            || !(2..=braid_bus::MAX_RING_CAPACITY).contains(&ring_capacity)
        {
            return Err(ConfigError::new(
                "ring_capacity",
                ring_capacity,
                format!("a power of two in 2..={}", braid_bus::MAX_RING_CAPACITY),
            ));
        }
        let blocking_threads = self.blocking_threads.unwrap_or(64);
        if !(1..=MAX_BLOCKING_THREADS).contains(&blocking_threads) {
            return Err(ConfigError::new(
                "blocking_threads",
                blocking_threads,
                format!("1..={MAX_BLOCKING_THREADS}"),
            ));
        }
        let mut lease_pool = self.lease_pool.unwrap_or_default();
        lease_pool.sort_unstable();
        lease_pool.dedup();
        if let Some(&bad) = lease_pool.iter().find(|&&c| c >= cores) {
            return Err(ConfigError::new(
                "lease_pool",
                bad,
                format!("core indices in 0..{cores}"),
            ));
        }
        if !lease_pool.is_empty() && lease_pool.len() >= cores {
            return Err(ConfigError::new(
                "lease_pool",
                format!("{lease_pool:?}"),
                format!(
                    "at most {} of the {cores} cores (one stays shared)",
                    cores - 1
                ),
            ));
        }
        let shutdown_timeout = self.shutdown_timeout.unwrap_or(Duration::from_secs(1));
        if shutdown_timeout > MAX_SHUTDOWN_TIMEOUT {
            return Err(ConfigError::new(
                "shutdown_timeout",
                format!("{shutdown_timeout:?}"),
                format!("0s..={MAX_SHUTDOWN_TIMEOUT:?}"),
            ));
        }
        Ok(Config {
            shutdown_timeout,
            hog_cgroup: self.hog_cgroup.unwrap_or(true),
            max_strands,
            lease_pool,
            cores,
            cpus,
            pin: self.pin.unwrap_or(true),
            stack_size,
            time_slice,
            hog_threshold,
            ring_capacity,
            seed: self.seed.unwrap_or(0x5EED),
            blocking_threads,
            policy: self.policy.unwrap_or_default(),
            balancer: self.balancer.unwrap_or_default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bad_setting_names_itself() {
        let cases: Vec<(RuntimeBuilder, &str)> = vec![
            (RuntimeBuilder::default().cores(0), "cores"),
            (RuntimeBuilder::default().cores(MAX_CORES + 1), "cores"),
            (RuntimeBuilder::default().stack_size(1024), "stack_size"),
            (
                RuntimeBuilder::default().stack_size(64 * 1024 + 1),
                "stack_size",
            ),
            (
                RuntimeBuilder::default().stack_size(MAX_STACK_SIZE * 2),
                "stack_size",
            ),
            (
                RuntimeBuilder::default().time_slice(Duration::ZERO),
                "time_slice",
            ),
            (
                RuntimeBuilder::default().hog_threshold(Duration::from_secs(3600)),
                "hog_threshold",
            ),
            (
                RuntimeBuilder::default().ring_capacity(100),
                "ring_capacity",
            ),
            (RuntimeBuilder::default().ring_capacity(0), "ring_capacity"),
            (RuntimeBuilder::default().max_strands(0), "max_strands"),
            (
                RuntimeBuilder::default().max_strands(MAX_STRANDS + 1),
                "max_strands",
            ),
            (
                RuntimeBuilder::default().blocking_threads(0),
                "blocking_threads",
            ),
            (
                RuntimeBuilder::default().blocking_threads(MAX_BLOCKING_THREADS + 1),
                "blocking_threads",
            ),
            (
                RuntimeBuilder::default().shutdown_timeout(MAX_SHUTDOWN_TIMEOUT * 2),
                "shutdown_timeout",
            ),
        ];
        for (builder, setting) in cases {
            let err = builder.validate().unwrap_err();
            assert_eq!(err.setting(), setting);
            let text = err.to_string();
            assert!(text.contains(setting) && text.contains("allowed"), "{text}");
        }
    }

    #[test]
    fn stack_error_says_page_multiple() {
        let err = check_stack_size("stack_size", 20_000).unwrap_err();
        assert_eq!(err.value(), "20000");
        assert!(err.allowed().contains("whole pages"), "{}", err.allowed());
    }

    #[test]
    fn defaults_are_valid() {
        let config = RuntimeBuilder::default().validate().unwrap();
        assert!(config.cores >= 1);
        assert_eq!(config.stack_size, DEFAULT_STACK_SIZE);
    }
}
