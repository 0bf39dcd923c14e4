//! File helpers of the master's stores, over `salt_core::pki`.

use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

/// [`salt_core::pki::write_atomic`] (temporary file, `fsync`, rename; exact
/// `mode`) with a plain `io::Error`.
pub fn write_atomic(path: &Path, data: &[u8], mode: u32) -> io::Result<()> {
    salt_core::pki::write_atomic(path, data, mode).map_err(|e| match e {
        salt_core::pki::KeyError::Io { source, .. } => source,
        other => io::Error::other(other.to_string()),
    })
}

/// [`salt_core::pki::write_replace`] (like [`write_atomic`] without the `fsync`: for the caches
/// that are rebuilt when lost — session keys, the data cache, job returns) with a plain
/// `io::Error`.
pub fn write_replace(path: &Path, data: &[u8], mode: u32) -> io::Result<()> {
    salt_core::pki::write_replace(path, data, mode).map_err(|e| match e {
        salt_core::pki::KeyError::Io { source, .. } => source,
        other => io::Error::other(other.to_string()),
    })
}

/// `mkdir -p` with `mode` for a directory that does not exist yet; an
/// existing directory keeps its mode (the operator's choice).
pub fn ensure_dir(path: &Path, mode: u32) -> io::Result<()> {
    if path.is_dir() {
        return Ok(());
    }
    fs::create_dir_all(path)?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
}
