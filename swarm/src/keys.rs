//! Swarm key pairs: generated once into a cache, reused by every run.
//!
//! RSA key generation is slow (a 2048-bit pair takes a good fraction of a second), so
//! [`ensure_cached`] generates the missing pairs of `CACHE/<keysize>/<id>/` on every core, once;
//! [`install`] then hard-links (or copies) `minion.pem` and `minion.pub` into the run's own
//! `pki_dir` for that minion, so the master key a run caches on first contact
//! (`minion_master.pub`) never leaks into the next run against another master.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use minion::keys::{MinionKeys, MINION_PEM, MINION_PUB};
use salt_core::pki::KeyError;

/// `CACHE/<keysize>/<id>`.
pub fn cache_dir(cache: &Path, keysize: usize, id: &str) -> PathBuf {
    cache.join(keysize.to_string()).join(id)
}

/// Generate the key pairs of `ids` that are not in the cache yet, on `threads` threads.
/// Returns how many were generated.
pub fn ensure_cached(cache: &Path, keysize: usize, ids: &[String], threads: usize) -> Result<usize, KeyError> {
    let missing: Vec<&String> =
        ids.iter().filter(|id| !cache_dir(cache, keysize, id).join(MINION_PUB).exists()).collect();
    if missing.is_empty() {
        return Ok(0);
    }
    tracing::warn!("generating {} {keysize}-bit key pairs into {} (once)", missing.len(), cache.display());
    let next = AtomicUsize::new(0);
    let first_error = std::sync::Mutex::new(None);
    std::thread::scope(|s| {
        for _ in 0..threads.max(1) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(id) = missing.get(i) else { break };
                if let Err(e) = MinionKeys::load_or_generate(&cache_dir(cache, keysize, id), keysize) {
                    let mut slot = first_error.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                    slot.get_or_insert(e);
                    break;
                }
            });
        }
    });
    match first_error.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner) {
        Some(e) => Err(e),
        None => Ok(missing.len()),
    }
}

/// Put the cached pair of `id` into `pki_dir` (created `0700`), then load it.
pub fn install(cache: &Path, keysize: usize, id: &str, pki_dir: &Path) -> Result<MinionKeys, KeyError> {
    salt_core::pki::ensure_pki_dir(pki_dir)?;
    let src = cache_dir(cache, keysize, id);
    for name in [MINION_PEM, MINION_PUB] {
        let (from, to) = (src.join(name), pki_dir.join(name));
        if !to.exists() && std::fs::hard_link(&from, &to).is_err() {
            std::fs::copy(&from, &to).map_err(salt_core::pki::io_err("cannot copy", &from))?;
        }
    }
    MinionKeys::load_or_generate(pki_dir, keysize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_once_then_installed() {
        let Ok(dir) = tempfile::tempdir() else { return };
        let cache = dir.path().join("cache");
        let ids: Vec<String> = (0..3).map(|i| crate::minion_id("t", i)).collect();
        let made = ensure_cached(&cache, 1024, &ids, 2);
        assert!(matches!(made, Ok(3)), "{made:?}");
        assert!(matches!(ensure_cached(&cache, 1024, &ids, 2), Ok(0)));
        let pki = dir.path().join("run/pki/t-00001");
        let k = install(&cache, 1024, "t-00001", &pki);
        let Ok(k) = k else { panic!("{k:?}") };
        let cached = MinionKeys::load_or_generate(&cache_dir(&cache, 1024, "t-00001"), 1024);
        let Ok(cached) = cached else { panic!("{cached:?}") };
        assert_eq!(k.public.as_rsa(), cached.public.as_rsa());
        // A second install (the files are there) loads the same pair.
        assert!(install(&cache, 1024, "t-00001", &pki).is_ok());
        assert!(!cache_dir(&cache, 1024, "t-00001").join(minion::keys::MASTER_PUB).exists());
    }
}
