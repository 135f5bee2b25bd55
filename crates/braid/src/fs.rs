//! File helpers that run on the blocking pool (see [`blocking`](crate::blocking)),
//! so a strand reading or writing a file parks instead of stalling its core.
//!
//! Each mirrors the `std::fs` function of the same name. A cancelled strand's
//! call returns an error wrapping [`Cancelled`](crate::Cancelled) (the
//! operation itself still completes on the pool).

use std::io;
use std::path::{Path, PathBuf};

/// Runs `f` on the blocking pool, folding cancellation into the I/O error.
pub(crate) fn pooled<T: Send + 'static>(
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    crate::blocking(f).unwrap_or_else(|cancelled| Err(io::Error::other(cancelled)))
}

/// The whole file as bytes.
pub fn read(path: impl AsRef<Path>) -> io::Result<Vec<u8>> {
    let path = path.as_ref().to_owned();
    pooled(move || std::fs::read(path))
}

/// The whole file as text (UTF-8, else `InvalidData`).
pub fn read_to_string(path: impl AsRef<Path>) -> io::Result<String> {
    let path = path.as_ref().to_owned();
    pooled(move || std::fs::read_to_string(path))
}

/// Creates or truncates the file and writes `contents`.
pub fn write(path: impl AsRef<Path>, contents: impl AsRef<[u8]>) -> io::Result<()> {
    let path = path.as_ref().to_owned();
    let contents = contents.as_ref().to_owned();
    pooled(move || std::fs::write(path, contents))
}

/// Appends `contents` to the file, creating it if needed.
pub fn append(path: impl AsRef<Path>, contents: impl AsRef<[u8]>) -> io::Result<()> {
    let path = path.as_ref().to_owned();
    let contents = contents.as_ref().to_owned();
    pooled(move || {
        use std::io::Write;
        std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(path)?
            .write_all(&contents)
    })
}

/// The file's metadata (following symbolic links).
pub fn metadata(path: impl AsRef<Path>) -> io::Result<std::fs::Metadata> {
    let path = path.as_ref().to_owned();
    pooled(move || std::fs::metadata(path))
}

/// Removes a file.
pub fn remove_file(path: impl AsRef<Path>) -> io::Result<()> {
    let path = path.as_ref().to_owned();
    pooled(move || std::fs::remove_file(path))
}

/// Creates a folder and any missing parents.
pub fn create_dir_all(path: impl AsRef<Path>) -> io::Result<()> {
    let path = path.as_ref().to_owned();
    pooled(move || std::fs::create_dir_all(path))
}

/// Removes a folder and everything in it.
pub fn remove_dir_all(path: impl AsRef<Path>) -> io::Result<()> {
    let path = path.as_ref().to_owned();
    pooled(move || std::fs::remove_dir_all(path))
}

/// Copies a file; returns the bytes copied.
pub fn copy(from: impl AsRef<Path>, to: impl AsRef<Path>) -> io::Result<u64> {
    let (from, to) = (from.as_ref().to_owned(), to.as_ref().to_owned());
    pooled(move || std::fs::copy(from, to))
}

/// Renames a file or folder.
pub fn rename(from: impl AsRef<Path>, to: impl AsRef<Path>) -> io::Result<()> {
    let (from, to) = (from.as_ref().to_owned(), to.as_ref().to_owned());
    pooled(move || std::fs::rename(from, to))
}

/// The paths in a folder, sorted.
pub fn read_dir(path: impl AsRef<Path>) -> io::Result<Vec<PathBuf>> {
    let path = path.as_ref().to_owned();
    pooled(move || {
        let mut paths = std::fs::read_dir(path)?
            .map(|e| e.map(|e| e.path()))
            .collect::<io::Result<Vec<_>>>()?;
        paths.sort();
        Ok(paths)
    })
}
