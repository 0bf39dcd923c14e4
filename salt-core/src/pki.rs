//! Key files as Salt writes them: the `pki_dir` mode rule, atomic writes with a given mode, and
//! reading PEM keys with errors that name the file.
//!
//! - `utils/verify.py:verify_env` chmods a `pki_dir` to `0700` unless it is `0700` or `0750`
//!   ([`ensure_pki_dir`]).
//! - `cache/localfs.py` (the `master_keys`/`keys` banks of 3008) writes to a temporary file and
//!   renames it into place ([`write_atomic`]); Salt's modes are [`PRIVATE_KEY_MODE`] for private
//!   keys (and, in 3008, for `minion.pub` too) and [`PUBLIC_KEY_MODE`] for cached peer keys.
//!
//! Each daemon keeps its own file names and trust rules (the minion's `minion_master.pub`, the
//! master's `minions/`, `minions_pre/`, …).

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use salt_proto::PublicKey;

/// The mode of `pki_dir` (`verify_env`).
pub const PKI_DIR_MODE: u32 = 0o700;
/// The mode Salt 3008 leaves key files of its own at (`minion.pem`, `minion.pub`, `master.pem`).
pub const PRIVATE_KEY_MODE: u32 = 0o400;
/// The mode of a cached peer public key (`minion_master.pub`).
pub const PUBLIC_KEY_MODE: u32 = 0o644;

/// A key file that cannot be read, written or parsed.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// A file system operation failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was attempted.
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A key file does not hold a usable key.
    #[error("invalid key in {path}: {source}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What the parser said.
        source: salt_proto::Error,
    },
    /// Key generation or encoding failed.
    #[error("cannot generate a key pair: {0}")]
    Generate(salt_proto::Error),
}

/// `map_err` adapter: an I/O error of `op` on `path`.
pub fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> KeyError + 'a {
    move |source| KeyError::Io { op, path: path.to_path_buf(), source }
}

/// Create `pki_dir` if needed and make it `0700` unless it is `0700` or `0750`.
pub fn ensure_pki_dir(pki_dir: &Path) -> Result<(), KeyError> {
    fs::create_dir_all(pki_dir).map_err(io_err("cannot create", pki_dir))?;
    let meta = fs::metadata(pki_dir).map_err(io_err("cannot stat", pki_dir))?;
    let mode = meta.permissions().mode() & 0o7777;
    if mode != PKI_DIR_MODE && mode != 0o750 {
        fs::set_permissions(pki_dir, fs::Permissions::from_mode(PKI_DIR_MODE))
            .map_err(io_err("cannot chmod", pki_dir))?;
    }
    Ok(())
}

/// Temporary-name sequence of [`write_atomic`]: threads of one process (a master's workers)
/// never share a temporary file.
static TMP_SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Write `data` to `path` through a temporary file created with `mode` (named after the process
/// and a per-process sequence number, so concurrent writers never collide), synced, then renamed
/// over `path`.
pub fn write_atomic(path: &Path, data: &[u8], mode: u32) -> Result<(), KeyError> {
    write_through_temp(path, data, mode, true)
}

/// [`write_atomic`] without the `fsync`: readers still see the old or the new file, never a
/// part, but a crash may lose the write. For caches that are rebuilt when lost (a master's
/// session keys, data cache and job returns, which Salt does not sync either): an `fsync`
/// costs milliseconds on ordinary disks (about 9 ms here), on every sign-in and every return.
pub fn write_replace(path: &Path, data: &[u8], mode: u32) -> Result<(), KeyError> {
    write_through_temp(path, data, mode, false)
}

fn write_through_temp(path: &Path, data: &[u8], mode: u32, sync: bool) -> Result<(), KeyError> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let seq = TMP_SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = dir.join(format!(".{name}.{}.{seq}.tmp", std::process::id()));
    let create = || fs::OpenOptions::new().write(true).create_new(true).mode(mode).open(&tmp);
    let result = (|| {
        // The name is this process's own (pid and sequence): one left by an earlier process of
        // the same pid is removed only when it is there, not looked for on every write.
        let mut f = match create() {
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let _ = fs::remove_file(&tmp);
                create()
            }
            other => other,
        }
        .map_err(io_err("cannot create", &tmp))?;
        f.write_all(data).map_err(io_err("cannot write", &tmp))?;
        if sync {
            f.sync_all().map_err(io_err("cannot sync", &tmp))?;
        }
        // The umask may have narrowed the mode given to open(2).
        f.set_permissions(fs::Permissions::from_mode(mode)).map_err(io_err("cannot chmod", &tmp))?;
        fs::rename(&tmp, path).map_err(io_err("cannot rename into", path))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// The PEM text of the public key in `path`, checked to parse, or `None` if there is no such
/// file.
pub fn read_public_pem(path: &Path) -> Result<Option<String>, KeyError> {
    match fs::read_to_string(path) {
        Ok(text) => {
            PublicKey::from_pem(&text).map_err(|source| KeyError::Invalid { path: path.to_path_buf(), source })?;
            Ok(Some(text))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err("cannot read", path)(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        fs::metadata(p).map(|m| m.permissions().mode() & 0o777).unwrap_or(0)
    }

    #[test]
    fn pki_dir_and_atomic_writes() {
        let Ok(dir) = tempfile::tempdir() else { return };
        let pki = dir.path().join("pki/x");
        assert!(ensure_pki_dir(&pki).is_ok());
        assert_eq!(mode(&pki), 0o700);
        let _ = fs::set_permissions(&pki, fs::Permissions::from_mode(0o750));
        assert!(ensure_pki_dir(&pki).is_ok());
        assert_eq!(mode(&pki), 0o750, "0750 is left alone");
        let _ = fs::set_permissions(&pki, fs::Permissions::from_mode(0o755));
        assert!(ensure_pki_dir(&pki).is_ok());
        assert_eq!(mode(&pki), 0o700);
        let f = pki.join("k");
        assert!(write_atomic(&f, b"one", PRIVATE_KEY_MODE).is_ok());
        assert_eq!(mode(&f), 0o400);
        // Replacing a read-only file works: the rename does not need write access to it.
        assert!(write_atomic(&f, b"two", PUBLIC_KEY_MODE).is_ok());
        assert_eq!(fs::read(&f).unwrap_or_default(), b"two");
        assert_eq!(mode(&f), 0o644);
        assert_eq!(fs::read_dir(&pki).map(|d| d.count()).unwrap_or(0), 1, "no temporary file left");
        // The unsynced variant: same modes, same replacement, no temporary file left.
        let c = pki.join("cache.p");
        assert!(write_replace(&c, b"first", 0o600).is_ok());
        assert_eq!(mode(&c), 0o600);
        assert!(write_replace(&c, b"second", 0o640).is_ok());
        assert_eq!(fs::read(&c).unwrap_or_default(), b"second");
        assert_eq!(mode(&c), 0o640);
        assert_eq!(fs::read_dir(&pki).map(|d| d.count()).unwrap_or(0), 2, "no temporary file left");
        assert!(write_replace(&pki.join("missing/dir/x"), b"", 0o600).is_err());
    }

    #[test]
    fn public_pem_files() {
        let Ok(dir) = tempfile::tempdir() else { return };
        let f = dir.path().join("peer.pub");
        assert!(matches!(read_public_pem(&f), Ok(None)));
        let _ = fs::write(&f, "garbage");
        assert!(matches!(read_public_pem(&f), Err(KeyError::Invalid { .. })));
    }
}
