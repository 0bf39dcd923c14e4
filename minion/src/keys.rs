//! The minion's RSA key pair and the cached master key, in `pki_dir`.
//!
//! Mirrors Salt 3008.5 (`crypt.py` `AsyncAuth.get_keys` / `gen_keys` / `verify_master`,
//! `cache/localfs_key.py` `store` for the `master_keys` bank, `utils/verify.py` `verify_env`):
//!
//! | file | content | mode |
//! |---|---|---|
//! | `pki_dir/` | | `0700` (Salt's `verify_env` chmods it unless it is `0700` or `0750`) |
//! | `minion.pem` | RSA private key, PKCS#1 PEM (`BEGIN RSA PRIVATE KEY`), `keysize` bits, e = 65537 | `0400` |
//! | `minion.pub` | public key, SubjectPublicKeyInfo PEM (`BEGIN PUBLIC KEY`) | `0400` |
//! | `minion_master.pub` | the master's public key, `clean_key`ed (no trailing newline), written on first contact | `0644` |
//!
//! `crypt.py:gen_keys` only builds the PEM strings; in 3008 both are then stored through the
//! `master_keys` cache bank, which writes every file of that bank with umask `0277` and then
//! `chmod 0400` — so a real 3008.5 minion leaves `minion.pub` at `0400` too, and so do we.
//! Files are written to a temporary name and renamed into place, as the cache driver does
//! ([`salt_core::pki`]).
//!
//! The master key is trusted on first use: [`store_master_pub`] is called once the first
//! `_auth` reply has been verified, and afterwards [`cached_master_pub`] is handed to
//! `salt_proto::envelope::open_auth_reply`, which refuses a different key.

use std::fs;
use std::path::{Path, PathBuf};

use salt_core::pki::{
    ensure_pki_dir, io_err, read_public_pem, write_atomic, KeyError, PRIVATE_KEY_MODE, PUBLIC_KEY_MODE,
};
use salt_proto::{PrivateKey, PublicKey};

/// The private key file name.
pub const MINION_PEM: &str = "minion.pem";
/// The public key file name.
pub const MINION_PUB: &str = "minion.pub";
/// The cached master key file name (`AsyncAuth.mpub`).
pub const MASTER_PUB: &str = "minion_master.pub";

/// The minion's key pair, plus what is derived from it once.
#[derive(Debug)]
pub struct MinionKeys {
    /// `minion.pem`.
    pub private: PrivateKey,
    /// The public half.
    pub public: PublicKey,
    /// `tok` of every aes request: X9.31(private, `b"salt"`) (`AsyncAuth.gen_token`, memoized).
    pub tok: Vec<u8>,
    /// The `pki_dir` the keys live in.
    pub pki_dir: PathBuf,
}

impl MinionKeys {
    /// Load `minion.pem` (and re-create a missing `minion.pub` from it), or generate a new pair
    /// of `keysize` bits when there is no `minion.pem` yet. Creates `pki_dir` (mode `0700`).
    pub fn load_or_generate(pki_dir: &Path, keysize: usize) -> Result<Self, KeyError> {
        ensure_pki_dir(pki_dir)?;
        let pem_path = pki_dir.join(MINION_PEM);
        let pub_path = pki_dir.join(MINION_PUB);
        let private = match fs::read_to_string(&pem_path) {
            Ok(text) => {
                PrivateKey::from_pem(&text).map_err(|source| KeyError::Invalid { path: pem_path.clone(), source })?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                tracing::info!("Generating keys: {}", pki_dir.display());
                let key = PrivateKey::generate(keysize).map_err(KeyError::Generate)?;
                let pem = key.to_pem().map_err(KeyError::Generate)?;
                write_atomic(&pem_path, pem.as_bytes(), PRIVATE_KEY_MODE)?;
                // A stale public key of another private key must not survive.
                let pub_pem = key.public_key().to_pem().map_err(KeyError::Generate)?;
                write_atomic(&pub_path, pub_pem.as_bytes(), PRIVATE_KEY_MODE)?;
                key
            }
            Err(e) => return Err(io_err("cannot read", &pem_path)(e)),
        };
        let public = private.public_key();
        match fs::metadata(&pub_path) {
            Ok(_) => {
                let text = fs::read_to_string(&pub_path).map_err(io_err("cannot read", &pub_path))?;
                let on_disk = PublicKey::from_pem(&text)
                    .map_err(|source| KeyError::Invalid { path: pub_path.clone(), source })?;
                if on_disk.as_rsa() != public.as_rsa() {
                    tracing::warn!(
                        "{} does not match {}; the master is sent the key derived from {}",
                        pub_path.display(),
                        pem_path.display(),
                        MINION_PEM
                    );
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let pub_pem = public.to_pem().map_err(KeyError::Generate)?;
                write_atomic(&pub_path, pub_pem.as_bytes(), PRIVATE_KEY_MODE)?;
            }
            Err(e) => return Err(io_err("cannot stat", &pub_path)(e)),
        }
        let tok = salt_proto::envelope::make_tok(&private).map_err(KeyError::Generate)?;
        Ok(MinionKeys { private, public, tok, pki_dir: pki_dir.to_path_buf() })
    }

    /// The cached master key (see [`cached_master_pub`]).
    pub fn cached_master_pub(&self) -> Result<Option<String>, KeyError> {
        cached_master_pub(&self.pki_dir)
    }

    /// Cache the master key (see [`store_master_pub`]).
    pub fn store_master_pub(&self, pem: &str) -> Result<(), KeyError> {
        store_master_pub(&self.pki_dir, pem)
    }
}

/// The contents of `pki_dir/minion_master.pub`, or `None` before the first contact.
pub fn cached_master_pub(pki_dir: &Path) -> Result<Option<String>, KeyError> {
    // Refuse garbage here rather than on every sign-in.
    read_public_pem(&pki_dir.join(MASTER_PUB))
}

/// Write the master key to `pki_dir/minion_master.pub`, `clean_key`ed like Salt (mode `0644`).
pub fn store_master_pub(pki_dir: &Path, pem: &str) -> Result<(), KeyError> {
    let path = pki_dir.join(MASTER_PUB);
    write_atomic(&path, salt_proto::rsa::clean_key(pem).as_bytes(), PUBLIC_KEY_MODE)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    #[test]
    fn generate_then_load() {
        let Ok(dir) = tempfile::tempdir() else { return };
        let pki = dir.path().join("pki/minion");
        // 1024 bits: key generation is slow in unoptimized builds.
        let k1 = MinionKeys::load_or_generate(&pki, 1024);
        let Ok(k1) = k1 else { panic!("{k1:?}") };
        let mode = |p: &Path| fs::metadata(p).map(|m| m.permissions().mode() & 0o777).unwrap_or(0);
        assert_eq!(mode(&pki), 0o700);
        assert_eq!(mode(&pki.join(MINION_PEM)), 0o400);
        assert_eq!(mode(&pki.join(MINION_PUB)), 0o400);
        let pem = fs::read_to_string(pki.join(MINION_PEM)).unwrap_or_default();
        assert!(pem.starts_with("-----BEGIN RSA PRIVATE KEY-----\n") && pem.ends_with("-----\n"));
        let public = fs::read_to_string(pki.join(MINION_PUB)).unwrap_or_default();
        assert!(public.starts_with("-----BEGIN PUBLIC KEY-----\n"));
        let k2 = MinionKeys::load_or_generate(&pki, 1024);
        let Ok(k2) = k2 else { panic!("{k2:?}") };
        assert_eq!(k1.public.as_rsa(), k2.public.as_rsa());
        assert_eq!(k1.tok, k2.tok);
        // A lost public key is re-created from the private one.
        let _ = fs::remove_file(pki.join(MINION_PUB));
        let k3 = MinionKeys::load_or_generate(&pki, 1024);
        assert!(k3.is_ok());
        assert_eq!(fs::read_to_string(pki.join(MINION_PUB)).unwrap_or_default(), public);
    }

    #[test]
    fn master_key_cache() {
        let Ok(dir) = tempfile::tempdir() else { return };
        assert!(matches!(cached_master_pub(dir.path()), Ok(None)));
        let Ok(key) = PrivateKey::generate(1024) else { return };
        let Ok(pem) = key.public_key().to_pem() else { return };
        assert!(store_master_pub(dir.path(), &format!("{pem}\n")).is_ok());
        let text = fs::read_to_string(dir.path().join(MASTER_PUB)).unwrap_or_default();
        assert_eq!(text, pem.trim_end(), "clean_key'd: no trailing newline");
        let mode = fs::metadata(dir.path().join(MASTER_PUB)).map(|m| m.permissions().mode() & 0o777).unwrap_or(0);
        assert_eq!(mode, 0o644);
        assert_eq!(cached_master_pub(dir.path()).ok().flatten(), Some(text));
        let _ = fs::write(dir.path().join(MASTER_PUB), "garbage");
        assert!(cached_master_pub(dir.path()).is_err());
    }
}
