//! The one I/O error of groundwork's tooling: what was being done, to which path.

use std::path::{Path, PathBuf};

/// A file operation that failed.
#[derive(Debug, thiserror::Error)]
#[error("{action} {}: {source}", path.display())]
pub struct IoError {
    /// What was being done ("reading", "creating", ...).
    pub action: &'static str,
    /// The path it was done to.
    pub path: PathBuf,
    /// The operating system's error.
    #[source]
    pub source: std::io::Error,
}

/// A converter for `map_err`: `std::fs::read(&p).map_err(io_error("reading", &p))?`.
pub fn io_error(
    action: &'static str,
    path: impl AsRef<Path>,
) -> impl FnOnce(std::io::Error) -> IoError {
    let path = path.as_ref().to_path_buf();
    move |source| IoError {
        action,
        path,
        source,
    }
}
