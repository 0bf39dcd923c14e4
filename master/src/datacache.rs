//! The minion data cache: Salt's `localfs` cache driver (cache/localfs.py)
//! as the master uses it for grains and pillar (`minion_data_cache`):
//! `cachedir/<bank>/<minion id>.p`, one msgpack document each, replaced
//! atomically (mode `0600`, as `tempfile.mkstemp` leaves it). Targeting
//! reads grains from here (`CkMinions`), `salt-key -d` clears it.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use salt_proto::{msgpack, Value};

use crate::keys::valid_id;

/// The grains bank.
pub const GRAINS: &str = "grains";
/// The pillar bank.
pub const PILLAR: &str = "pillar";

/// Largest cache document read back.
const MAX_DOC: u64 = 16 << 20;

/// The `localfs` data cache under `cachedir`.
#[derive(Debug, Clone)]
pub struct DataCache {
    cachedir: PathBuf,
}

impl DataCache {
    /// The cache rooted at `cachedir`.
    pub fn new(cachedir: &Path) -> Self {
        DataCache { cachedir: cachedir.to_path_buf() }
    }

    fn path(&self, bank: &str, id: &str) -> Option<PathBuf> {
        valid_id(id).then(|| self.cachedir.join(bank).join(format!("{id}.p")))
    }

    /// Store `data` for `id` in `bank` (the bank's directory made on the
    /// first store that finds it missing, not looked for on every store:
    /// two of these per sign-in).
    pub fn store(&self, bank: &str, id: &str, data: &Value) -> io::Result<()> {
        let Some(path) = self.path(bank, id) else {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "invalid minion id"));
        };
        let doc = msgpack::encode(data);
        match crate::fsutil::write_replace(&path, &doc, 0o600) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                fs::create_dir_all(self.cachedir.join(bank))?;
                crate::fsutil::write_replace(&path, &doc, 0o600)
            }
            other => other,
        }
    }

    /// The document of `id` in `bank`, if any (unreadable = none).
    pub fn fetch(&self, bank: &str, id: &str) -> Option<Value> {
        let path = self.path(bank, id)?;
        let meta = fs::metadata(&path).ok()?;
        if !meta.is_file() || meta.len() > MAX_DOC {
            return None;
        }
        let data = fs::read(&path).ok()?;
        match msgpack::decode(&data) {
            Ok(v) => Some(v),
            Err(e) => {
                tracing::warn!("cannot decode {}: {e}", path.display());
                None
            }
        }
    }

    /// The ids with a document in `bank`.
    pub fn list(&self, bank: &str) -> Vec<String> {
        let Ok(rd) = fs::read_dir(self.cachedir.join(bank)) else { return Vec::new() };
        let mut out: Vec<String> = rd
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .filter_map(|n| n.strip_suffix(".p").map(str::to_owned))
            .filter(|n| valid_id(n) && !n.starts_with('.'))
            .collect();
        out.sort();
        out
    }

    /// Remove the document of `id` from `bank`.
    pub fn flush(&self, bank: &str, id: &str) -> bool {
        self.path(bank, id).map(|p| fs::remove_file(p).is_ok()).unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_ids() {
        let Ok(dir) = tempfile::tempdir() else { return };
        let dc = DataCache::new(dir.path());
        let g = salt_proto::value::map([("os", salt_proto::value::string("Debian"))]);
        assert!(dc.store(GRAINS, "m1", &g).is_ok());
        assert!(dir.path().join("grains/m1.p").is_file());
        assert_eq!(dc.fetch(GRAINS, "m1"), Some(g));
        assert_eq!(dc.list(GRAINS), ["m1"]);
        assert!(dc.store(GRAINS, "../x", &Value::Nil).is_err());
        assert_eq!(dc.fetch(GRAINS, "../x"), None);
        assert!(dc.flush(GRAINS, "m1"));
        assert!(dc.list(GRAINS).is_empty());
    }
}
