//! The master's key store: minion keys by state, the master key pair, the
//! CLI access keys and the `.dfn` rotation drop file, laid out on disk
//! exactly as Salt 3008.5 does (`cache/localfs_key.py`, `key.py`,
//! `crypt.py` `MasterKeys` / `dropfile`, `daemons/masterapi.py`
//! `access_keys`). Both the daemon's `_auth` and `salt-key-rs` use it; the
//! stock `salt-key` works on the same files.
//!
//! | path (under `pki_dir`) | content | mode |
//! |---|---|---|
//! | `minions/<id>` | accepted minion key: the SPKI PEM exactly as sent in `_auth` | `0600` |
//! | `minions_pre/<id>` | pending | `0600` |
//! | `minions_rejected/<id>` | rejected | `0600` |
//! | `minions_denied/<id>` | a *different* key presented for a known id | `0600` |
//! | `minions_autosign/<id>` | one-shot autosign stub (consumed by `_auth`) | |
//! | `<master_id>.pem` / `<master_id>.pub` | the master key pair (PKCS#1 / SPKI PEM) | `0400` |
//! | `master.pem` / `master.pub` | symlinks to the two above | |
//!
//! A key is in exactly one of accepted / pending / rejected: storing it in
//! one state first removes it from the other two, then writes a temporary
//! file in the target directory and renames it into place (what Salt's
//! `localfs_key.store` does). Denied keys live beside, independently.
//!
//! Ids are checked by [`valid_id`] before any path is built from them.
//! Entries that are not regular files (symlinks, directories) or whose
//! names are not valid ids are ignored, as Salt does.

use std::fs;
use std::io;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use salt_proto::{Crypticle, PrivateKey, PublicKey};

use crate::fsutil::{ensure_dir, write_atomic};

/// Mode of minion key files (`tempfile.mkstemp` in `localfs_key.store`).
pub const MINION_KEY_MODE: u32 = 0o600;
/// Mode of the master key pair files.
pub const MASTER_KEY_MODE: u32 = 0o400;
/// Mode of the state directories (`verify_env`).
pub const STATE_DIR_MODE: u32 = 0o755;

/// A key store error.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The id cannot name a key ([`valid_id`]).
    #[error("{0:?} is not a valid minion id")]
    InvalidId(String),
    /// A file system operation failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was attempted.
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// A key file does not hold a usable RSA key.
    #[error("invalid key in {path}: {source}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What the parser said.
        source: salt_proto::Error,
    },
    /// No key of that id is in the state asked for.
    #[error("no {state} key for {id:?}")]
    NotFound {
        /// The minion id.
        id: String,
        /// The state looked in.
        state: KeyState,
    },
    /// Key generation or encoding failed.
    #[error("cannot generate a key: {0}")]
    Generate(salt_proto::Error),
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> KeyError + 'a {
    move |source| KeyError::Io { op, path: path.to_path_buf(), source }
}

/// The state of a minion key, i.e. the directory holding it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KeyState {
    /// `minions/`.
    Accepted,
    /// `minions_pre/`.
    Pending,
    /// `minions_rejected/`.
    Rejected,
    /// `minions_denied/`.
    Denied,
}

impl KeyState {
    /// All four, in `salt-key -L` order.
    pub const ALL: [KeyState; 4] = [KeyState::Accepted, KeyState::Denied, KeyState::Pending, KeyState::Rejected];

    /// The directory under `pki_dir` (`Key.ACC` / `PEND` / `REJ` / `DEN`).
    pub fn dir(self) -> &'static str {
        match self {
            KeyState::Accepted => "minions",
            KeyState::Pending => "minions_pre",
            KeyState::Rejected => "minions_rejected",
            KeyState::Denied => "minions_denied",
        }
    }

    /// The state from a directory name.
    pub fn from_dir(dir: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.dir() == dir)
    }

    /// The word Salt uses in `salt/key` and `salt/auth` events
    /// (`Key.DIR_MAP`): `accepted`, `pending`, `rejected`, `denied`.
    pub fn act(self) -> &'static str {
        match self {
            KeyState::Accepted => "accepted",
            KeyState::Pending => "pending",
            KeyState::Rejected => "rejected",
            KeyState::Denied => "denied",
        }
    }
}

impl std::fmt::Display for KeyState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.act())
    }
}

/// Salt's `valid_id` (utils/verify.py), made stricter: an id may name a
/// file directly under a state directory and nothing else. Refused:
/// empty, `.`, `..`, anything with `/`, `\`, NUL or another control
/// character.
pub fn valid_id(id: &str) -> bool {
    !id.is_empty() && id != "." && id != ".." && !id.chars().any(|c| c == '/' || c == '\\' || c.is_control())
}

/// Salt's `pem_finger(key=…)` (what `salt-key -f` prints): SHA-256 of the
/// whole key text, as colon-separated hex pairs. (The `path=` form, over
/// the lines between the PEM armour, is [`salt_proto::rsa::pem_finger`].)
pub fn key_finger(key_text: &str) -> String {
    let hex = salt_proto::util::sha256_hex(key_text.as_bytes());
    salt_proto::util::colon_pairs(&hex)
}

/// A minion key and its state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MinionKey {
    /// Where it is.
    pub state: KeyState,
    /// The key text as stored.
    pub pub_pem: String,
}

/// Every managed key id by state, each list sorted case-insensitively
/// (`Key.list_keys`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyList {
    /// `minions/`.
    pub accepted: Vec<String>,
    /// `minions_pre/`.
    pub pending: Vec<String>,
    /// `minions_rejected/`.
    pub rejected: Vec<String>,
    /// `minions_denied/`.
    pub denied: Vec<String>,
}

impl KeyList {
    /// The ids in `state`.
    pub fn get(&self, state: KeyState) -> &[String] {
        match state {
            KeyState::Accepted => &self.accepted,
            KeyState::Pending => &self.pending,
            KeyState::Rejected => &self.rejected,
            KeyState::Denied => &self.denied,
        }
    }
}

/// Python's `sorted_ignorecase`: sort by the lower-cased id.
fn sort_ignorecase(v: &mut [String]) {
    v.sort_by_cached_key(|s| s.to_lowercase());
}

/// The `pki_dir` key store.
#[derive(Debug, Clone)]
pub struct KeyStore {
    pki_dir: PathBuf,
}

/// The states held in one of accepted / pending / rejected, in the order
/// `localfs_key.fetch` looks (a key left in two states by a crash reads
/// as the first).
const EXCLUSIVE: [KeyState; 3] = [KeyState::Rejected, KeyState::Pending, KeyState::Accepted];

impl KeyStore {
    /// Open `pki_dir`, creating it (`0700`, or kept at `0750`) and the
    /// state directories (`0755`) as `verify_env` does.
    pub fn open(pki_dir: impl Into<PathBuf>) -> Result<Self, KeyError> {
        let pki_dir = pki_dir.into();
        fs::create_dir_all(&pki_dir).map_err(io_err("cannot create", &pki_dir))?;
        let mode = fs::metadata(&pki_dir).map_err(io_err("cannot stat", &pki_dir))?.permissions().mode() & 0o7777;
        if mode != 0o700 && mode != 0o750 {
            fs::set_permissions(&pki_dir, fs::Permissions::from_mode(0o700))
                .map_err(io_err("cannot chmod", &pki_dir))?;
        }
        for d in KeyState::ALL.iter().map(|s| s.dir()).chain(["minions_autosign"]) {
            let p = pki_dir.join(d);
            ensure_dir(&p, STATE_DIR_MODE).map_err(io_err("cannot create", &p))?;
        }
        Ok(KeyStore { pki_dir })
    }

    /// A store over `pki_dir` without touching the disk (for readers such
    /// as a CLI that must not create anything).
    pub fn at(pki_dir: impl Into<PathBuf>) -> Self {
        KeyStore { pki_dir: pki_dir.into() }
    }

    /// The `pki_dir`.
    pub fn pki_dir(&self) -> &Path {
        &self.pki_dir
    }

    /// The file of `id` in `state` (after [`valid_id`]).
    pub fn path(&self, state: KeyState, id: &str) -> Result<PathBuf, KeyError> {
        if !valid_id(id) {
            return Err(KeyError::InvalidId(id.to_owned()));
        }
        Ok(self.pki_dir.join(state.dir()).join(id))
    }

    /// Read a regular (non-symlink) file, `None` if there is none.
    fn read_key_file(path: &Path) -> Result<Option<String>, KeyError> {
        match fs::symlink_metadata(path) {
            Ok(m) if m.file_type().is_file() => fs::read_to_string(path).map(Some).map_err(io_err("cannot read", path)),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err("cannot stat", path)(e)),
        }
    }

    /// The key of `id` in accepted / pending / rejected, if any
    /// (`fetch("keys", id)`).
    pub fn fetch(&self, id: &str) -> Result<Option<MinionKey>, KeyError> {
        for state in EXCLUSIVE {
            if let Some(pub_pem) = Self::read_key_file(&self.path(state, id)?)? {
                return Ok(Some(MinionKey { state, pub_pem }));
            }
        }
        Ok(None)
    }

    /// The denied key of `id`, if any (`fetch("denied_keys", id)`).
    pub fn fetch_denied(&self, id: &str) -> Result<Option<String>, KeyError> {
        Self::read_key_file(&self.path(KeyState::Denied, id)?)
    }

    /// The key of `id` in exactly `state`.
    pub fn fetch_in(&self, state: KeyState, id: &str) -> Result<Option<String>, KeyError> {
        Self::read_key_file(&self.path(state, id)?)
    }

    fn remove(path: &Path) -> Result<bool, KeyError> {
        match fs::symlink_metadata(path) {
            Ok(m) if m.file_type().is_file() => match fs::remove_file(path) {
                Ok(()) => Ok(true),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
                Err(e) => Err(io_err("cannot remove", path)(e)),
            },
            _ => Ok(false),
        }
    }

    /// Remove `id` from accepted, pending and rejected (`flush("keys", id)`);
    /// true if a file was removed.
    pub fn flush(&self, id: &str) -> Result<bool, KeyError> {
        let mut any = false;
        for state in EXCLUSIVE {
            any |= Self::remove(&self.path(state, id)?)?;
        }
        Ok(any)
    }

    /// Remove the denied key of `id` (`flush("denied_keys", id)`).
    pub fn flush_denied(&self, id: &str) -> Result<bool, KeyError> {
        Self::remove(&self.path(KeyState::Denied, id)?)
    }

    /// Remove `id` from `state` only.
    pub fn delete(&self, state: KeyState, id: &str) -> Result<bool, KeyError> {
        Self::remove(&self.path(state, id)?)
    }

    /// Store `pub_pem` for `id` in `state`. For accepted / pending /
    /// rejected the key first leaves the other two states; a denied key is
    /// stored beside whatever else `id` has.
    pub fn store(&self, id: &str, state: KeyState, pub_pem: &str) -> Result<(), KeyError> {
        let path = self.path(state, id)?;
        if state == KeyState::Denied {
            self.flush_denied(id)?;
        } else {
            self.flush(id)?;
        }
        let dir = self.pki_dir.join(state.dir());
        ensure_dir(&dir, STATE_DIR_MODE).map_err(io_err("cannot create", &dir))?;
        write_atomic(&path, pub_pem.as_bytes(), MINION_KEY_MODE).map_err(io_err("cannot write", &path))
    }

    /// Move the key of `id` from `from` to `to` (`Key.change_state` for one
    /// key): the key must be a valid RSA public key unless it is being
    /// denied. Returns the key text (the `pub` of the `salt/key` event).
    pub fn change_state(&self, id: &str, from: KeyState, to: KeyState) -> Result<String, KeyError> {
        let path = self.path(from, id)?;
        let pub_pem = Self::read_key_file(&path)?.ok_or(KeyError::NotFound { id: id.to_owned(), state: from })?;
        if to != KeyState::Denied {
            PublicKey::from_pem(pub_pem.trim()).map_err(|source| KeyError::Invalid { path: path.clone(), source })?;
        }
        if from == to {
            return Ok(pub_pem);
        }
        match (from, to) {
            (KeyState::Denied, _) => {
                self.flush_denied(id)?;
                self.store(id, to, &pub_pem)?;
            }
            (_, KeyState::Denied) => {
                self.flush(id)?;
                self.store(id, to, &pub_pem)?;
            }
            _ => self.store(id, to, &pub_pem)?,
        }
        Ok(pub_pem)
    }

    /// Valid ids of the regular files in `state`'s directory, unsorted.
    fn ids_in(&self, state: KeyState) -> Result<Vec<String>, KeyError> {
        let dir = self.pki_dir.join(state.dir());
        let rd = match fs::read_dir(&dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_err("cannot list", &dir)(e)),
        };
        let mut out = Vec::new();
        for entry in rd {
            let entry = entry.map_err(io_err("cannot list", &dir))?;
            let Ok(name) = entry.file_name().into_string() else { continue };
            if name.starts_with('.') || !valid_id(&name) {
                continue;
            }
            if entry.file_type().map(|t| t.is_file()).unwrap_or(false) {
                out.push(name);
            }
        }
        Ok(out)
    }

    /// Every key id by state (`Key.list_keys`).
    pub fn list(&self) -> Result<KeyList, KeyError> {
        let mut l = KeyList {
            accepted: self.ids_in(KeyState::Accepted)?,
            pending: self.ids_in(KeyState::Pending)?,
            rejected: self.ids_in(KeyState::Rejected)?,
            denied: self.ids_in(KeyState::Denied)?,
        };
        for v in [&mut l.accepted, &mut l.pending, &mut l.rejected, &mut l.denied] {
            sort_ignorecase(v);
        }
        Ok(l)
    }

    /// The ids of accepted keys, sorted (what targeting matches against).
    pub fn accepted(&self) -> Result<Vec<String>, KeyError> {
        let mut v = self.ids_in(KeyState::Accepted)?;
        sort_ignorecase(&mut v);
        Ok(v)
    }

    /// The master's own key files (`Key.local_keys`): regular files in
    /// `pki_dir` ending in `.pem` or `.pub` (the `master.*` symlinks are
    /// not listed), sorted.
    pub fn local_keys(&self) -> Result<Vec<String>, KeyError> {
        let rd = fs::read_dir(&self.pki_dir).map_err(io_err("cannot list", &self.pki_dir))?;
        let mut out = Vec::new();
        for entry in rd {
            let entry = entry.map_err(io_err("cannot list", &self.pki_dir))?;
            let Ok(name) = entry.file_name().into_string() else { continue };
            if (name.ends_with(".pem") || name.ends_with(".pub"))
                && entry.file_type().map(|t| t.is_file()).unwrap_or(false)
            {
                out.push(name);
            }
        }
        sort_ignorecase(&mut out);
        Ok(out)
    }

    /// The text of one of [`KeyStore::local_keys`].
    pub fn local_key(&self, name: &str) -> Result<Option<String>, KeyError> {
        if !valid_id(name) {
            return Err(KeyError::InvalidId(name.to_owned()));
        }
        Self::read_key_file(&self.pki_dir.join(name))
    }

    /// Consume a `minions_autosign/<id>` stub (`AutoKey.check_autosign_dir`):
    /// stubs older than `timeout_minutes` (if > 0) are removed first; true
    /// if a stub for `id` was there.
    pub fn take_autosign_stub(&self, id: &str, timeout_minutes: i64) -> Result<bool, KeyError> {
        if !valid_id(id) {
            return Ok(false);
        }
        let dir = self.pki_dir.join("minions_autosign");
        if timeout_minutes > 0 {
            let min_time = salt_proto::util::unix_time() - 60 * timeout_minutes;
            if let Ok(rd) = fs::read_dir(&dir) {
                for entry in rd.flatten() {
                    if let Ok(m) = entry.metadata() {
                        if m.is_file() && m.mtime() < min_time {
                            tracing::warn!("Autosign keyid expired {}", entry.path().display());
                            let _ = fs::remove_file(entry.path());
                        }
                    }
                }
            }
        }
        let stub = dir.join(id);
        match fs::remove_file(&stub) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io_err("cannot remove", &stub)(e)),
        }
    }
}

// ---------------------------------------------------------------------------
// The master key pair
// ---------------------------------------------------------------------------

/// The master's RSA key pair (`MasterKeys`).
#[derive(Debug, Clone)]
pub struct MasterKeys {
    /// `<master_id>.pem`.
    pub private: PrivateKey,
    /// The public key PEM as stored in `<master_id>.pub`.
    pub pub_pem: String,
    /// The public key of `private` as `_auth` replies send it
    /// ([`salt_proto::rsa::clean_key`]ed SPKI PEM), made once at start.
    pub wire_pub: String,
}

/// `opts["id"].removesuffix("_master")`: the name of the key pair files.
pub fn master_key_name(master_opts_id: &str) -> &str {
    master_opts_id.strip_suffix("_master").unwrap_or(master_opts_id)
}

fn regular_file(path: &Path) -> bool {
    fs::symlink_metadata(path).map(|m| m.file_type().is_file()).unwrap_or(false)
}

impl MasterKeys {
    /// Load `pki_dir/<name>.pem`, or migrate a pre-3008 `master.pem` to it,
    /// or generate a `keysize`-bit pair; then make sure `master.pem` /
    /// `master.pub` exist as symlinks to the pair (left alone if present).
    pub fn load_or_create(pki_dir: &Path, name: &str, keysize: usize) -> Result<Self, KeyError> {
        if !valid_id(name) {
            return Err(KeyError::InvalidId(name.to_owned()));
        }
        let pem_path = pki_dir.join(format!("{name}.pem"));
        let pub_path = pki_dir.join(format!("{name}.pub"));
        let legacy_pem = pki_dir.join("master.pem");
        let legacy_pub = pki_dir.join("master.pub");
        if !regular_file(&pem_path) {
            if regular_file(&legacy_pem) {
                tracing::info!("Migrating {} to {}", legacy_pem.display(), pem_path.display());
                let priv_text = fs::read_to_string(&legacy_pem).map_err(io_err("cannot read", &legacy_pem))?;
                let key = PrivateKey::from_pem(&priv_text)
                    .map_err(|source| KeyError::Invalid { path: legacy_pem.clone(), source })?;
                let pub_text = match fs::read_to_string(&legacy_pub) {
                    Ok(t) => t,
                    Err(_) => key.public_key().to_pem().map_err(KeyError::Generate)?,
                };
                write_atomic(&pem_path, priv_text.as_bytes(), MASTER_KEY_MODE)
                    .map_err(io_err("cannot write", &pem_path))?;
                write_atomic(&pub_path, pub_text.as_bytes(), MASTER_KEY_MODE)
                    .map_err(io_err("cannot write", &pub_path))?;
                let _ = fs::remove_file(&legacy_pem);
                let _ = fs::remove_file(&legacy_pub);
            } else {
                tracing::info!("Generating key-pair for {}", pem_path.display());
                let key = PrivateKey::generate(keysize).map_err(KeyError::Generate)?;
                let pem = key.to_pem().map_err(KeyError::Generate)?;
                let pub_pem = key.public_key().to_pem().map_err(KeyError::Generate)?;
                write_atomic(&pem_path, pem.as_bytes(), MASTER_KEY_MODE).map_err(io_err("cannot write", &pem_path))?;
                write_atomic(&pub_path, pub_pem.as_bytes(), MASTER_KEY_MODE)
                    .map_err(io_err("cannot write", &pub_path))?;
            }
        }
        let text = fs::read_to_string(&pem_path).map_err(io_err("cannot read", &pem_path))?;
        let private =
            PrivateKey::from_pem(&text).map_err(|source| KeyError::Invalid { path: pem_path.clone(), source })?;
        let pub_pem = match fs::read_to_string(&pub_path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let p = private.public_key().to_pem().map_err(KeyError::Generate)?;
                write_atomic(&pub_path, p.as_bytes(), MASTER_KEY_MODE).map_err(io_err("cannot write", &pub_path))?;
                p
            }
            Err(e) => return Err(io_err("cannot read", &pub_path)(e)),
        };
        for (link, target) in [(&legacy_pem, &pem_path), (&legacy_pub, &pub_path)] {
            if fs::symlink_metadata(link).is_err() {
                std::os::unix::fs::symlink(target, link).map_err(io_err("cannot symlink", link))?;
            }
        }
        let wire_pub = salt_proto::rsa::clean_key(&private.public_key().to_pem().map_err(KeyError::Generate)?);
        Ok(MasterKeys { private, pub_pem, wire_pub })
    }
}

// ---------------------------------------------------------------------------
// .dfn (AES key rotation request) and CLI access keys
// ---------------------------------------------------------------------------

/// `cachedir/.dfn`.
pub fn dropfile_path(cachedir: &Path) -> PathBuf {
    cachedir.join(".dfn")
}

/// Ask the master to rotate its shared AES key (`salt.crypt.dropfile`):
/// unless `.dfn` already exists, write `master_opts_id` to `.dfn-next`,
/// mode `0400`, and rename it to `.dfn`. `salt-key` does this after
/// deleting or rejecting keys.
pub fn dropfile(cachedir: &Path, master_opts_id: &str) -> Result<(), KeyError> {
    let dfn = dropfile_path(cachedir);
    if dfn.is_file() {
        tracing::info!("AES key rotation already requested");
        return Ok(());
    }
    let next = cachedir.join(".dfn-next");
    let _ = fs::remove_file(&next);
    write_atomic(&next, master_opts_id.as_bytes(), 0o400).map_err(io_err("cannot write", &next))?;
    fs::rename(&next, &dfn).map_err(io_err("cannot rename into", &dfn))
}

/// Maintenance's side (`handle_key_rotate`): true, and `.dfn` removed, if
/// `.dfn` is a regular file of mode exactly `0400` holding
/// `master_opts_id`. A `.dfn` with other permissions is logged and left.
pub fn take_dropfile(cachedir: &Path, master_opts_id: &str) -> bool {
    let dfn = dropfile_path(cachedir);
    let Ok(meta) = fs::symlink_metadata(&dfn) else { return false };
    if meta.mode() != 0o100_400 {
        tracing::error!("Found dropfile with incorrect permissions, ignoring...");
        return false;
    }
    let ours = fs::read_to_string(&dfn).map(|s| s == master_opts_id).unwrap_or(false);
    if ours {
        let _ = fs::remove_file(&dfn);
    }
    ours
}

/// `cachedir/.<user>_key`: the key the local `salt` CLI of `user` sends
/// in a clear `publish`.
pub fn access_key_path(cachedir: &Path, user: &str) -> Result<PathBuf, KeyError> {
    if !valid_id(user) {
        return Err(KeyError::InvalidId(user.to_owned()));
    }
    Ok(cachedir.join(format!(".{user}_key")))
}

/// Read `cachedir/.<user>_key`, or create it (`access_keys` / `mk_key`):
/// a fresh Crypticle key string (76 characters, no newline), mode `0600`.
/// An existing key is reused, as Salt 3008.5 does.
pub fn access_key(cachedir: &Path, user: &str) -> Result<String, KeyError> {
    let path = access_key_path(cachedir, user)?;
    match fs::read_to_string(&path) {
        Ok(k) => return Ok(k),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err("cannot read", &path)(e)),
    }
    let key = Crypticle::generate_key_string().map_err(KeyError::Generate)?;
    write_atomic(&path, key.as_bytes(), 0o600).map_err(io_err("cannot write", &path))?;
    Ok(key)
}

/// What the CLI reads (`LocalClient.__read_master_key`): the key, or
/// `None` when the file is missing or unreadable.
pub fn read_access_key(cachedir: &Path, user: &str) -> Option<String> {
    fs::read_to_string(access_key_path(cachedir, user).ok()?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        fs::symlink_metadata(p).map(|m| m.permissions().mode() & 0o7777).unwrap_or(0)
    }

    #[test]
    fn ids() {
        for bad in ["", ".", "..", "../x", "a/b", "a\\b", "a\0b", "a\nb", "a\x7fb", "/etc"] {
            assert!(!valid_id(bad), "{bad:?}");
        }
        for good in ["m1", "web-01.example.com", "..x", "a b", "ünï"] {
            assert!(valid_id(good), "{good:?}");
        }
    }

    #[test]
    fn states_move_atomically() {
        let Ok(dir) = tempfile::tempdir() else { return };
        let pki = dir.path().join("pki");
        let Ok(ks) = KeyStore::open(&pki) else { panic!("open") };
        assert_eq!(mode(&pki), 0o700);
        assert_eq!(mode(&pki.join("minions_pre")), 0o755);
        let Ok(key) = PrivateKey::generate(1024) else { return };
        let Ok(pem) = key.public_key().to_pem() else { return };
        assert!(ks.store("m1", KeyState::Pending, &pem).is_ok());
        assert_eq!(mode(&pki.join("minions_pre/m1")), 0o600);
        assert_eq!(ks.list().ok().map(|l| l.pending), Some(vec!["m1".to_owned()]));
        assert_eq!(ks.change_state("m1", KeyState::Pending, KeyState::Accepted).ok(), Some(pem.clone()));
        assert!(!pki.join("minions_pre/m1").exists());
        assert_eq!(ks.fetch("m1").ok().flatten(), Some(MinionKey { state: KeyState::Accepted, pub_pem: pem.clone() }));
        assert!(ks.change_state("m1", KeyState::Pending, KeyState::Accepted).is_err());
        assert!(ks.change_state("m1", KeyState::Accepted, KeyState::Rejected).is_ok());
        assert_eq!(ks.list().ok().map(|l| l.rejected), Some(vec!["m1".to_owned()]));
        assert!(ks.change_state("m1", KeyState::Rejected, KeyState::Denied).is_ok());
        assert_eq!(ks.fetch("m1").ok().flatten(), None);
        assert_eq!(ks.fetch_denied("m1").ok().flatten(), Some(pem.clone()));
        assert!(ks.change_state("m1", KeyState::Denied, KeyState::Accepted).is_ok());
        assert_eq!(ks.fetch_denied("m1").ok().flatten(), None);
        // A garbage key cannot be accepted but can be denied.
        assert!(ks.store("bad", KeyState::Pending, "garbage").is_ok());
        assert!(matches!(ks.change_state("bad", KeyState::Pending, KeyState::Accepted), Err(KeyError::Invalid { .. })));
        assert!(ks.flush("bad").unwrap_or(false));
        // Paths from ids are refused before any file is touched.
        assert!(matches!(ks.store("../evil", KeyState::Accepted, &pem), Err(KeyError::InvalidId(_))));
        assert!(matches!(ks.fetch("a/b"), Err(KeyError::InvalidId(_))));
        assert!(!dir.path().join("evil").exists());
        // Symlinks, dotfiles and directories are not keys.
        let _ = std::os::unix::fs::symlink("/etc/passwd", pki.join("minions/link"));
        let _ = fs::write(pki.join("minions/.key_cache"), "x");
        let _ = fs::create_dir(pki.join("minions/adir"));
        assert_eq!(ks.accepted().ok(), Some(vec!["m1".to_owned()]));
        assert_eq!(ks.fetch("link").ok().flatten(), None);
        assert!(ks.delete(KeyState::Accepted, "m1").unwrap_or(false));
        assert!(ks.list().map(|l| l.accepted.is_empty()).unwrap_or(false));
    }

    #[test]
    fn sorted_ignoring_case() {
        let Ok(dir) = tempfile::tempdir() else { return };
        let Ok(ks) = KeyStore::open(dir.path()) else { return };
        for id in ["b", "A", "c", "B0"] {
            let _ = ks.store(id, KeyState::Accepted, "k");
        }
        assert_eq!(ks.accepted().unwrap_or_default(), ["A", "b", "B0", "c"]);
    }

    #[test]
    fn master_key_layout() {
        let Ok(dir) = tempfile::tempdir() else { return };
        let Ok(ks) = KeyStore::open(dir.path()) else { return };
        let k1 = MasterKeys::load_or_create(dir.path(), "vm", 1024);
        let Ok(k1) = k1 else { panic!("{k1:?}") };
        assert_eq!(mode(&dir.path().join("vm.pem")), 0o400);
        assert_eq!(mode(&dir.path().join("vm.pub")), 0o400);
        assert_eq!(fs::read_link(dir.path().join("master.pem")).ok(), Some(dir.path().join("vm.pem")));
        assert_eq!(fs::read_link(dir.path().join("master.pub")).ok(), Some(dir.path().join("vm.pub")));
        let Ok(k2) = MasterKeys::load_or_create(dir.path(), "vm", 1024) else { panic!("reload") };
        assert_eq!(k1.pub_pem, k2.pub_pem);
        assert_eq!(ks.local_keys().unwrap_or_default(), ["vm.pem", "vm.pub"]);
        assert_eq!(master_key_name("vm_master"), "vm");
    }

    #[test]
    fn legacy_master_pem_is_migrated() {
        let Ok(dir) = tempfile::tempdir() else { return };
        let Ok(key) = PrivateKey::generate(1024) else { return };
        let Ok(pem) = key.to_pem() else { return };
        let _ = fs::write(dir.path().join("master.pem"), pem.as_bytes());
        let Ok(k) = MasterKeys::load_or_create(dir.path(), "h", 1024) else { panic!("migrate") };
        assert_eq!(k.private.public_key().as_rsa(), key.public_key().as_rsa());
        assert!(fs::symlink_metadata(dir.path().join("master.pem"))
            .map(|m| m.file_type().is_symlink())
            .unwrap_or(false));
        assert_eq!(mode(&dir.path().join("h.pem")), 0o400);
    }

    #[test]
    fn dropfile_round_trip() {
        let Ok(dir) = tempfile::tempdir() else { return };
        assert!(!take_dropfile(dir.path(), "vm_master"));
        assert!(dropfile(dir.path(), "vm_master").is_ok());
        assert_eq!(mode(&dir.path().join(".dfn")), 0o400);
        assert!(!take_dropfile(dir.path(), "other_master"));
        assert!(dir.path().join(".dfn").exists());
        assert!(take_dropfile(dir.path(), "vm_master"));
        assert!(!dir.path().join(".dfn").exists());
        // Wrong permissions: ignored.
        let _ = fs::write(dir.path().join(".dfn"), "vm_master");
        assert!(!take_dropfile(dir.path(), "vm_master"));
    }

    #[test]
    fn access_key_is_reused() {
        let Ok(dir) = tempfile::tempdir() else { return };
        let Ok(k1) = access_key(dir.path(), "root") else { panic!("mk") };
        assert_eq!(k1.len(), 76);
        assert_eq!(mode(&dir.path().join(".root_key")), 0o600);
        assert_eq!(access_key(dir.path(), "root").ok(), Some(k1.clone()));
        assert_eq!(read_access_key(dir.path(), "root"), Some(k1));
        assert!(access_key(dir.path(), "../x").is_err());
    }

    #[test]
    fn finger_like_salt_key() {
        // salt.utils.crypt.pem_finger(key=b"abc")
        assert_eq!(
            key_finger("abc"),
            "ba:78:16:bf:8f:01:cf:ea:41:41:40:de:5d:ae:22:23:b0:03:61:a3:96:17:7a:9c:b4:10:ff:61:f2:00:15:ad"
        );
    }
}
