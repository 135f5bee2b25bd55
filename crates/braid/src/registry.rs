//! Shared named objects: publish a value under a name, look it up by name from
//! any strand of the runtime, and the entry disappears when its last holder
//! drops it.
//!
//! ```
//! # let rt = braid::Runtime::builder().cores(2).build()?;
//! rt.block_on(|| {
//!     let table = braid::registry::publish("routes", vec!["/a", "/b"]).unwrap();
//!     let reader = braid::spawn(|| {
//!         let routes = braid::registry::lookup::<Vec<&str>>("routes").unwrap();
//!         routes.len()
//!     });
//!     assert_eq!(reader.join().unwrap(), 2);
//!     drop(table); // the last holder: "routes" is gone
//!     assert!(braid::registry::lookup::<Vec<&str>>("routes").is_err());
//! });
//! # Ok::<(), braid::ConfigError>(())
//! ```
//!
//! A registry is per runtime. Publishing and looking up take a lock held for a
//! map operation; they are meant for setting up sharing, not for a hot loop
//! (keep the [`Shared`] handle instead).

use crate::context;
use crate::runtime::{self, RuntimeShared};
use std::any::Any;
use std::collections::HashMap;
use std::fmt;
use std::ops::Deref;
use std::sync::{Arc, Mutex, Weak};

/// Longest name, in bytes.
pub const MAX_NAME_LEN: usize = 256;

/// Why a registry operation failed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RegistryError {
    /// The name was empty; names are 1 to [`MAX_NAME_LEN`] bytes.
    EmptyName,
    /// The name was longer than [`MAX_NAME_LEN`] bytes.
    NameTooLong {
        /// Its length in bytes.
        len: usize,
    },
    /// Something is already published under this name (and still held).
    AlreadyPublished {
        /// The name.
        name: String,
    },
    /// Nothing is published under this name.
    NotFound {
        /// The name.
        name: String,
    },
    /// The value published under this name has another type.
    WrongType {
        /// The name.
        name: String,
        /// The type asked for.
        expected: &'static str,
        /// The type published.
        found: &'static str,
    },
    /// Called outside a strand: use the `Runtime` methods from other threads.
    NotInStrand,
}

impl fmt::Display for RegistryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RegistryError::EmptyName => {
                write!(f, "registry name is empty (names are 1 to {MAX_NAME_LEN} bytes)")
            }
            RegistryError::NameTooLong { len } => write!(
                f,
                "registry name is {len} bytes long (names are 1 to {MAX_NAME_LEN} bytes)"
            ),
            RegistryError::AlreadyPublished { name } => {
                write!(f, "{name:?} is already published and still held")
            }
            RegistryError::NotFound { name } => write!(f, "nothing is published as {name:?}"),
            RegistryError::WrongType {
                name,
                expected,
                found,
            } => write!(f, "{name:?} holds a {found}, not a {expected}"),
            RegistryError::NotInStrand => f.write_str(
                "not in a strand: threads outside the runtime use Runtime::publish and Runtime::lookup",
            ),
        }
    }
}

impl std::error::Error for RegistryError {}

/// What the registry keeps per name: a weak reference (holders keep the value
/// alive, not the registry) and the value's type name for error messages.
struct Entry {
    value: Weak<dyn Any + Send + Sync>,
    type_name: &'static str,
}

/// The names of one runtime.
#[derive(Default)]
pub(crate) struct Registry {
    entries: Mutex<HashMap<Arc<str>, Entry>>,
}

impl Registry {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Arc<str>, Entry>> {
        // The map stays consistent if a holder panicked: every operation on it
        // is a single insert, remove or lookup.
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A published value. Dereferences to it; clone it freely. When the last
/// `Shared` of a value is dropped, its name is free again.
pub struct Shared<T: Send + Sync + 'static> {
    inner: Arc<Inner<T>>,
}

struct Inner<T: Send + Sync + 'static> {
    value: T,
    name: Arc<str>,
    registry: Weak<RuntimeShared>,
}

impl<T: Send + Sync + 'static> Drop for Inner<T> {
    fn drop(&mut self) {
        let Some(rt) = self.registry.upgrade() else {
            return;
        };
        let mut entries = rt.registry.lock();
        // Only our own entry: the name may have been published again after our
        // last holder started dropping.
        if entries
            .get(&self.name)
            .is_some_and(|e| e.value.strong_count() == 0)
        {
            entries.remove(&self.name);
        }
    }
}

impl<T: Send + Sync + 'static> Deref for Shared<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.inner.value
    }
}

impl<T: Send + Sync + 'static> Clone for Shared<T> {
    fn clone(&self) -> Shared<T> {
        Shared {
            inner: self.inner.clone(),
        }
    }
}

impl<T: Send + Sync + fmt::Debug + 'static> fmt::Debug for Shared<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared")
            .field("name", &self.inner.name)
            .field("value", &self.inner.value)
            .finish()
    }
}

impl<T: Send + Sync + 'static> Shared<T> {
    /// The name it is published under.
    pub fn name(&self) -> &str {
        &self.inner.name
    }
}

fn check_name(name: &str) -> Result<(), RegistryError> {
    if name.is_empty() {
        return Err(RegistryError::EmptyName);
    }
    if name.len() > MAX_NAME_LEN {
        return Err(RegistryError::NameTooLong { len: name.len() });
    }
    Ok(())
}

fn current_runtime() -> Result<Arc<RuntimeShared>, RegistryError> {
    let me = context::current_header().ok_or(RegistryError::NotInStrand)?;
    runtime::lookup(me.runtime_id).ok_or(RegistryError::NotInStrand)
}

/// Publishes `value` as `name` in the calling strand's runtime. The returned
/// handle is the first holder.
pub fn publish<T: Send + Sync + 'static>(name: &str, value: T) -> Result<Shared<T>, RegistryError> {
    publish_in(&current_runtime()?, name, value)
}

/// The value published as `name`, if it has type `T`.
pub fn lookup<T: Send + Sync + 'static>(name: &str) -> Result<Shared<T>, RegistryError> {
    lookup_in(&*current_runtime()?, name)
}

pub(crate) fn publish_in<T: Send + Sync + 'static>(
    rt: &Arc<RuntimeShared>,
    name: &str,
    value: T,
) -> Result<Shared<T>, RegistryError> {
    check_name(name)?;
    let mut entries = rt.registry.lock();
    if entries
        .get(name)
        .is_some_and(|e| e.value.strong_count() > 0)
    {
        return Err(RegistryError::AlreadyPublished {
            name: name.to_owned(),
        });
    }
    let name: Arc<str> = Arc::from(name);
    let inner = Arc::new(Inner {
        value,
        name: name.clone(),
        registry: Arc::downgrade(rt),
    });
    let erased: Arc<dyn Any + Send + Sync> = inner.clone();
    entries.insert(
        name,
        Entry {
            value: Arc::downgrade(&erased),
            type_name: std::any::type_name::<T>(),
        },
    );
    Ok(Shared { inner })
}

pub(crate) fn lookup_in<T: Send + Sync + 'static>(
    rt: &RuntimeShared,
    name: &str,
) -> Result<Shared<T>, RegistryError> {
    check_name(name)?;
    let not_found = || RegistryError::NotFound {
        name: name.to_owned(),
    };
    let (value, found) = {
        let entries = rt.registry.lock();
        let entry = entries.get(name).ok_or_else(not_found)?;
        (
            entry.value.upgrade().ok_or_else(not_found)?,
            entry.type_name,
        )
    };
    // The lock is released before `value` can drop: if it is the last holder,
    // dropping it takes the lock to remove the name.
    match value.downcast::<Inner<T>>() {
        Ok(inner) => Ok(Shared { inner }),
        Err(_) => Err(RegistryError::WrongType {
            name: name.to_owned(),
            expected: std::any::type_name::<T>(),
            found,
        }),
    }
}

/// Published names right now (for stats and tests).
pub(crate) fn count(rt: &RuntimeShared) -> usize {
    rt.registry
        .lock()
        .values()
        .filter(|e| e.value.strong_count() > 0)
        .count()
}
