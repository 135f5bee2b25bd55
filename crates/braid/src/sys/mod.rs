//! Operating-system mechanisms, one file per supported platform.
//!
//! Every platform file exports the same items; this module picks one. An
//! unsupported target fails to compile here instead of failing at run time.

#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
mod linux;
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
pub use linux::GuardKind;
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
pub(crate) use linux::*;

#[cfg(not(all(target_os = "linux", target_arch = "x86_64")))]
compile_error!("braid currently supports Linux on x86_64 only");
