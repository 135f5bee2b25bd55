//! The runtimes the workloads run on, built the same way everywhere.

/// A braid runtime on `cores` cores.
pub(crate) fn braid(cores: usize) -> Result<braid::Runtime, braid::ConfigError> {
    braid::Runtime::builder().cores(cores).build()
}

/// A tokio runtime with `workers` workers: the current-thread scheduler for
/// one, the multi-thread scheduler otherwise.
pub(crate) fn tokio(workers: usize) -> std::io::Result<tokio::runtime::Runtime> {
    if workers == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .enable_all()
            .build()
    }
}

/// CPUs this process may use.
pub(crate) fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
