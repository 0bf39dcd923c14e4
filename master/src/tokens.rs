//! The minion tokens the master already verified.
//!
//! Every v3 aes request carries `tok`, the minion's X9.31 signature of
//! `b"salt"`; Salt's master reads the minion's accepted key file, parses it
//! and checks `tok` with it on every request (`validate_token`). The
//! signature is deterministic, so a minion sends the same `tok` until its
//! key changes. [`Tokens`] remembers, per minion id, the SHA-256 of the last
//! `tok` that verified and the identity of the accepted key file it was
//! verified against (device, inode, size, modification and change times):
//! while the file is the same one and the `tok` is the same bytes, the
//! request passes without reading or parsing the key or an RSA operation.
//! Any change of the key file (`salt-key` writes a new file and renames
//! it; deleting it makes the `stat` fail) sends the next request through
//! the full check again.
//!
//! Memory: one entry (about 120 bytes with the id) per accepted minion
//! that made an aes request; an entry is dropped when its key file is gone.

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Mutex;

use sha2::{Digest, Sha256};

/// What identifies one version of a key file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    dev: u64,
    ino: u64,
    len: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Stamp {
    /// The stamp of the regular file (not a symlink) at `path`, `None` if
    /// there is none.
    pub fn of(path: &Path) -> Option<Stamp> {
        let m = fs::symlink_metadata(path).ok()?;
        m.file_type().is_file().then(|| Stamp {
            dev: m.dev(),
            ino: m.ino(),
            len: m.len(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
        })
    }
}

/// Verified tokens per minion id.
#[derive(Debug, Default)]
pub struct Tokens {
    known: Mutex<HashMap<String, (Stamp, [u8; 32])>>,
}

impl Tokens {
    /// Whether `tok` of `id` was verified against the key file that now
    /// has `stamp`.
    pub fn known(&self, id: &str, stamp: &Stamp, tok: &[u8]) -> bool {
        let digest: [u8; 32] = Sha256::digest(tok).into();
        match self.known.lock() {
            Ok(known) => known.get(id).is_some_and(|(s, d)| s == stamp && *d == digest),
            Err(_) => false,
        }
    }

    /// Remember that `tok` of `id` verified against the key file with
    /// `stamp` (replacing what was remembered for `id`).
    pub fn remember(&self, id: &str, stamp: Stamp, tok: &[u8]) {
        let digest: [u8; 32] = Sha256::digest(tok).into();
        if let Ok(mut known) = self.known.lock() {
            match known.get_mut(id) {
                Some(entry) => *entry = (stamp, digest),
                None => {
                    known.insert(id.to_owned(), (stamp, digest));
                }
            }
        }
    }

    /// Forget `id` (its key file is gone).
    pub fn forget(&self, id: &str) {
        if let Ok(mut known) = self.known.lock() {
            known.remove(id);
        }
    }

    /// How many ids are remembered.
    pub fn len(&self) -> usize {
        self.known.lock().map(|k| k.len()).unwrap_or(0)
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_known_only_for_the_same_key_file_and_bytes() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("m1");
        fs::write(&path, "key one").unwrap_or_else(|e| panic!("{e}"));
        let Some(one) = Stamp::of(&path) else { panic!("no stamp") };
        let t = Tokens::default();
        assert!(!t.known("m1", &one, b"tok"));
        t.remember("m1", one, b"tok");
        assert!(t.known("m1", &one, b"tok"));
        assert!(!t.known("m1", &one, b"tok2"), "other bytes");
        assert!(!t.known("m2", &one, b"tok"), "another id");
        // The key replaced the way the key store does it: a new file renamed over.
        let tmp = dir.path().join(".m1.tmp");
        fs::write(&tmp, "key two").unwrap_or_else(|e| panic!("{e}"));
        fs::rename(&tmp, &path).unwrap_or_else(|e| panic!("{e}"));
        let Some(two) = Stamp::of(&path) else { panic!("no stamp") };
        assert_ne!(one, two);
        assert!(!t.known("m1", &two, b"tok"), "the key file changed");
        fs::remove_file(&path).unwrap_or_else(|e| panic!("{e}"));
        assert!(Stamp::of(&path).is_none());
        t.forget("m1");
        assert!(t.is_empty());
        // A symlink is not a key file.
        std::os::unix::fs::symlink(&tmp, &path).unwrap_or_else(|e| panic!("{e}"));
        assert!(Stamp::of(&path).is_none());
    }
}
