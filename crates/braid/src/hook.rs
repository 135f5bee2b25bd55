//! The panic hook: a panic inside a strand is reported with the strand's
//! name, not only its carrier thread's.
//!
//! Installed once per process when the first runtime starts, it wraps the
//! hook in place then (the default one, or the program's): for a panic in a
//! strand it first writes one line naming the strand — its name or `#id`,
//! and its core — then calls the wrapped hook, whose message names the
//! carrier thread (`braid-core-N`). A hook the program sets later replaces
//! it; [`crate::current`] names the strand there.

use std::sync::Once;

/// Wraps the process's panic hook, once.
pub(crate) fn install() {
    static INSTALLED: Once = Once::new();
    // `take_hook` panics on a panicking thread (a runtime built in a Drop):
    // the next runtime installs it then.
    if std::thread::panicking() {
        return;
    }
    INSTALLED.call_once(|| {
        let wrapped = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if let Some(line) = strand_line() {
                // `eprintln!`: captured like the default hook's output in
                // tests; a closed stderr (EBADF) is ignored by std.
                eprintln!("{line}");
            }
            wrapped(info);
        }));
    });
}

/// The line naming the panicking strand, if the panic is in one.
fn strand_line() -> Option<String> {
    let strand = crate::current()?;
    let label = match strand.name() {
        Some(name) => format!("'{name}' (#{})", strand.id()),
        None => format!("#{}", strand.id()),
    };
    Some(format!(
        "braid: strand {label} panicked on core {}:",
        strand.core()
    ))
}
