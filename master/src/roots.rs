//! The `roots` file server backend (Salt's `fileserver/roots.py`) over a
//! roots map (`file_roots` for the file server, `pillar_roots` for pillar):
//! finding a file of a saltenv, hashing it, reading a chunk of it, and the
//! file / directory / empty-directory / symlink lists of a saltenv.
//!
//! Everything a minion names (a `path`, a `saltenv`) is checked here, once:
//! a path with NUL, a backslash, an absolute path or a `..` component is
//! not found; a saltenv that is not a key of the roots (or, under
//! `__env__`, is not a plain directory name) has no files; and a file is
//! only served when its canonical path (every symlink resolved) lies inside
//! the canonical root it was found under. Salt with its default
//! `fileserver_followsymlinks: True` would also serve a symlink pointing
//! outside the roots; this backend never does (nor lists such links as
//! files), whatever that option says.

use std::collections::HashSet;
use std::fs;
use std::io::{self, Read as _, Seek as _, SeekFrom};
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

use salt_proto::value::{self, as_str};
use salt_proto::Value;

use crate::config::MasterConfig;

/// The `hash_type` values this backend computes.
pub const HASH_TYPES: &[&str] = &["sha1", "sha224", "sha256", "sha384", "sha512"];

/// The largest chunk `_serve_file` reads at once, whatever
/// `file_buffer_size` says (the reply must fit a minion's limits).
const MAX_CHUNK: usize = 64 << 20;

/// One roots map: saltenv → directories, in the configured order.
#[derive(Debug, Clone, Default)]
pub struct Roots {
    envs: Vec<(String, Vec<PathBuf>)>,
}

/// What the listing and lookup options of the master say.
#[derive(Debug, Clone, Default)]
pub struct RootsOpts {
    /// `fileserver_followsymlinks`.
    pub follow_symlinks: bool,
    /// `fileserver_ignoresymlinks`.
    pub ignore_symlinks: bool,
    /// `file_ignore_regex`, compiled.
    pub ignore_regex: Vec<regex::Regex>,
    /// `file_ignore_glob`.
    pub ignore_glob: Vec<String>,
}

impl RootsOpts {
    /// The options of `config`.
    pub fn of(config: &MasterConfig) -> Self {
        RootsOpts {
            follow_symlinks: config.fileserver_followsymlinks,
            ignore_symlinks: config.fileserver_ignoresymlinks,
            // Checked when the config was loaded.
            ignore_regex: config.file_ignore_regex.iter().filter_map(|r| regex::Regex::new(r).ok()).collect(),
            ignore_glob: config.file_ignore_glob.clone(),
        }
    }

    /// `salt.fileserver.is_file_ignored`.
    fn ignored(&self, name: &str) -> bool {
        self.ignore_regex.iter().any(|r| r.is_match(name))
            || self.ignore_glob.iter().any(|g| salt_core::fnmatch::fnmatch(name, g))
    }
}

/// A file found in a saltenv (`fnd`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// `root/rel` as Salt reports it (`fnd["path"]`).
    pub path: PathBuf,
    /// The canonical file (what is read).
    pub real: PathBuf,
    /// The path relative to its root (`fnd["rel"]`).
    pub rel: String,
}

/// The lists of one saltenv (`_file_lists`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lists {
    /// Files, sorted.
    pub files: Vec<String>,
    /// Directories, sorted.
    pub dirs: Vec<String>,
    /// Empty directories, sorted.
    pub empty_dirs: Vec<String>,
    /// Symlinks: relative path → link text.
    pub links: Vec<(String, String)>,
}

/// A saltenv that may stand for a directory name under `__env__`.
fn plain_name(s: &str) -> bool {
    !s.is_empty() && s != "." && s != ".." && !s.contains(['/', '\\', '\0'])
}

/// A relative path a minion may ask for: its normalised components, or
/// `None` for NUL, backslash, absolute or `..`.
fn clean_rel(path: &str) -> Option<Vec<&str>> {
    if path.contains(['\0', '\\']) || path.starts_with('/') {
        return None;
    }
    let parts: Vec<&str> = path.split('/').filter(|c| !c.is_empty() && *c != ".").collect();
    if parts.contains(&"..") {
        return None;
    }
    Some(parts)
}

impl Roots {
    /// `_validate_file_roots`: a mapping of saltenv → list of directories
    /// (saltenvs as strings, a non-list value as no directories, globs
    /// expanded); anything else gives no saltenvs.
    pub fn from_value(v: &Value) -> Roots {
        let Value::Map(pairs) = v else {
            tracing::warn!("The roots option is not properly formatted; no saltenvs");
            return Roots::default();
        };
        let mut envs: Vec<(String, Vec<PathBuf>)> = Vec::new();
        for (k, dirs) in pairs {
            let name = as_str(k).map(str::to_owned).unwrap_or_else(|| value::py_str(k));
            let mut list = Vec::new();
            if let Value::Array(items) = dirs {
                for d in items.iter().filter_map(as_str) {
                    if d.contains(['*', '?', '[']) {
                        list.extend(salt_core::config::glob(d));
                    } else {
                        list.push(PathBuf::from(d));
                    }
                }
            }
            match envs.iter_mut().find(|(n, _)| *n == name) {
                Some(slot) => slot.1 = list,
                None => envs.push((name, list)),
            }
        }
        Roots { envs }
    }

    /// The saltenvs, sorted (`roots.envs`).
    pub fn envs(&self) -> Vec<String> {
        let mut e: Vec<String> = self.envs.iter().map(|(n, _)| n.clone()).collect();
        e.sort();
        e
    }

    /// The saltenvs in the configured order.
    pub fn env_names(&self) -> impl Iterator<Item = &str> {
        self.envs.iter().map(|(n, _)| n.as_str())
    }

    /// Whether `saltenv` is a key of the roots.
    pub fn has_env(&self, saltenv: &str) -> bool {
        self.envs.iter().any(|(n, _)| n == saltenv)
    }

    /// Whether `saltenv` has at least one directory.
    pub fn has_dirs(&self, saltenv: &str) -> bool {
        self.dirs(saltenv).is_some_and(|d| !d.is_empty())
    }

    /// The directories of `saltenv`; `__env__` stands for any saltenv
    /// that is not a key, its name substituted into the directories.
    fn dirs(&self, saltenv: &str) -> Option<Vec<PathBuf>> {
        if let Some((_, d)) = self.envs.iter().find(|(n, _)| n == saltenv) {
            return Some(d.clone());
        }
        let (_, d) = self.envs.iter().find(|(n, _)| n == "__env__")?;
        if !plain_name(saltenv) {
            tracing::warn!("saltenv {saltenv:?} cannot stand for a directory under __env__");
            return None;
        }
        Some(d.iter().map(|p| PathBuf::from(p.to_string_lossy().replace("__env__", saltenv))).collect())
    }

    /// `roots.find_file(path, saltenv)`; `None` when not found or refused.
    pub fn find_file(&self, path: &str, saltenv: &str, opts: &RootsOpts) -> Option<Found> {
        let parts = clean_rel(path)?;
        if parts.is_empty() {
            return None;
        }
        let rel = parts.join("/");
        for root in self.dirs(saltenv)? {
            let full = root.join(&rel);
            let (Ok(real_root), Ok(real)) = (root.canonicalize(), full.canonicalize()) else { continue };
            if !real.starts_with(&real_root) {
                tracing::warn!("{} resolves outside its root {}; not served", full.display(), root.display());
                continue;
            }
            if !real.is_file() || opts.ignored(&full.to_string_lossy()) {
                continue;
            }
            return Some(Found { path: full, real, rel });
        }
        None
    }

    /// Whether `found` lies under a directory of `saltenv` (the check
    /// `roots.serve_file` makes against the request's own saltenv, which a
    /// `?saltenv=` query may have overridden for the lookup).
    pub fn serves(&self, saltenv: &str, found: &Found) -> bool {
        self.dirs(saltenv).is_some_and(|d| d.iter().any(|root| found.path.starts_with(root)))
    }

    /// `roots._file_lists(saltenv)`; `None` when the saltenv is unknown.
    pub fn lists(&self, saltenv: &str, opts: &RootsOpts) -> Option<Lists> {
        let mut out = Lists::default();
        let mut files = HashSet::new();
        let mut dirs = HashSet::new();
        let mut empty = HashSet::new();
        for root in self.dirs(saltenv)? {
            let Ok(real_root) = root.canonicalize() else { continue };
            let mut seen = HashSet::new();
            if let Ok(m) = fs::metadata(&real_root) {
                seen.insert((m.dev(), m.ino()));
            }
            let mut stack = vec![(root.clone(), String::new())];
            while let Some((dir, prefix)) = stack.pop() {
                let Ok(rd) = fs::read_dir(&dir) else { continue };
                for entry in rd.flatten() {
                    let name = entry.file_name().to_string_lossy().into_owned();
                    let rel = if prefix.is_empty() { name } else { format!("{prefix}/{name}") };
                    let abs = entry.path();
                    let Ok(lmeta) = fs::symlink_metadata(&abs) else { continue };
                    let is_link = lmeta.file_type().is_symlink();
                    if is_link && opts.ignore_symlinks {
                        continue;
                    }
                    if opts.ignored(&rel) {
                        continue;
                    }
                    let inside = abs.canonicalize().ok().filter(|r| r.starts_with(&real_root));
                    if is_link {
                        let target = fs::read_link(&abs).map(|t| t.to_string_lossy().into_owned()).unwrap_or_default();
                        if inside.is_some() || !opts.follow_symlinks {
                            out.links.push((rel.clone(), target));
                        }
                        if inside.is_none() {
                            // Never listed as a file or a directory: not served.
                            continue;
                        }
                    }
                    let Ok(meta) = fs::metadata(&abs) else { continue };
                    if meta.is_dir() {
                        dirs.insert(rel.clone());
                        if fs::read_dir(&abs).map(|mut r| r.next().is_none()).unwrap_or(false) {
                            empty.insert(rel.clone());
                        }
                        // Descend into a linked directory only when following
                        // links, and each directory once (no cycles).
                        if (!is_link || opts.follow_symlinks) && seen.insert((meta.dev(), meta.ino())) {
                            stack.push((abs, rel));
                        }
                    } else {
                        files.insert(rel);
                    }
                }
            }
        }
        out.files = files.into_iter().collect();
        out.files.sort();
        out.dirs = dirs.into_iter().collect();
        out.dirs.sort();
        out.empty_dirs = empty.into_iter().collect();
        out.empty_dirs.sort();
        out.links.sort();
        out.links.dedup_by(|a, b| a.0 == b.0);
        Some(out)
    }

    /// `list_states(saltenv)`: the sls names of a saltenv (`a/b.sls` →
    /// `a.b`, `a/init.sls` → `a`), sorted.
    pub fn list_states(&self, saltenv: &str, opts: &RootsOpts) -> Vec<String> {
        let mut states: Vec<String> = self
            .lists(saltenv, opts)
            .map(|l| l.files)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|p| {
                if let Some(d) = p.strip_suffix("/init.sls") {
                    Some(d.replace('/', "."))
                } else {
                    p.strip_suffix(".sls").map(|s| s.replace('/', "."))
                }
            })
            .collect();
        states.sort();
        states.dedup();
        states
    }

    /// `get_state(sls, saltenv)`: the file of sls `a.b` (`a/b.sls`, else
    /// `a/b/init.sls`) and whether it is an `init.sls`.
    pub fn find_sls(&self, sls: &str, saltenv: &str, opts: &RootsOpts) -> Option<(Found, bool)> {
        let base = sls.replace('.', "/");
        if let Some(f) = self.find_file(&format!("{base}.sls"), saltenv, opts) {
            return Some((f, false));
        }
        self.find_file(&format!("{base}/init.sls"), saltenv, opts).map(|f| (f, true))
    }
}

/// The hex digest of `path` with `hash_type` (one of [`HASH_TYPES`]).
pub fn hash_file(path: &Path, hash_type: &str) -> io::Result<String> {
    use sha2::Digest as _;
    fn run<D: sha2::Digest>(mut d: D, mut f: fs::File) -> io::Result<String> {
        let mut buf = vec![0u8; 64 << 10];
        loop {
            let n = f.read(&mut buf)?;
            if n == 0 {
                break;
            }
            d.update(&buf[..n]);
        }
        Ok(salt_proto::util::hex(&d.finalize()))
    }
    let f = fs::File::open(path)?;
    match hash_type {
        "sha1" => run(sha1::Sha1::new(), f),
        "sha224" => run(sha2::Sha224::new(), f),
        "sha384" => run(sha2::Sha384::new(), f),
        "sha512" => run(sha2::Sha512::new(), f),
        _ => run(sha2::Sha256::new(), f),
    }
}

/// Up to `size` bytes of `path` from offset `loc`.
pub fn read_chunk(path: &Path, loc: u64, size: usize) -> io::Result<Vec<u8>> {
    let mut f = fs::File::open(path)?;
    if !f.metadata()?.is_file() {
        return Err(io::Error::other("not a regular file"));
    }
    f.seek(SeekFrom::Start(loc))?;
    let mut data = Vec::new();
    f.take(u64::try_from(size.min(MAX_CHUNK)).unwrap_or(0)).read_to_end(&mut data)?;
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roots(dir: &Path) -> Roots {
        Roots::from_value(&value::map([(
            "base",
            Value::Array(vec![Value::from(dir.join("srv").display().to_string())]),
        )]))
    }

    #[test]
    fn paths_never_escape_the_root() {
        let Ok(t) = tempfile::tempdir() else { return };
        let srv = t.path().join("srv");
        let _ = fs::create_dir_all(srv.join("sub"));
        let _ = fs::write(srv.join("f.txt"), "in");
        let _ = fs::write(t.path().join("secret"), "out");
        let _ = std::os::unix::fs::symlink(t.path().join("secret"), srv.join("evil"));
        let _ = std::os::unix::fs::symlink("f.txt", srv.join("good"));
        let r = roots(t.path());
        let o = RootsOpts { follow_symlinks: true, ..RootsOpts::default() };
        assert_eq!(r.find_file("f.txt", "base", &o).map(|f| f.rel), Some("f.txt".to_owned()));
        assert_eq!(r.find_file("./sub/../f.txt", "base", &o), None);
        for bad in ["../secret", "sub/../../secret", "/etc/passwd", "evil", "f.txt\0", "..\\secret", "", "."] {
            assert_eq!(r.find_file(bad, "base", &o), None, "{bad:?}");
        }
        assert!(r.find_file("good", "base", &o).is_some());
        assert_eq!(r.find_file("f.txt", "dev", &o), None);
        let l = r.lists("base", &o).unwrap_or_default();
        assert_eq!(l.files, vec!["f.txt", "good"]);
        assert_eq!(l.dirs, vec!["sub"]);
        assert_eq!(l.empty_dirs, vec!["sub"]);
        assert_eq!(l.links, vec![("good".to_owned(), "f.txt".to_owned())]);
        assert!(r.lists("dev", &o).is_none());
    }

    #[test]
    fn env_placeholder_takes_plain_names_only() {
        let Ok(t) = tempfile::tempdir() else { return };
        let _ = fs::create_dir_all(t.path().join("envs/dev"));
        let _ = fs::write(t.path().join("envs/dev/a.sls"), "a: 1");
        let _ = fs::write(t.path().join("x.sls"), "x: 1");
        let r = Roots::from_value(&value::map([(
            "__env__",
            Value::Array(vec![Value::from(t.path().join("envs/__env__").display().to_string())]),
        )]));
        let o = RootsOpts::default();
        assert!(r.find_file("a.sls", "dev", &o).is_some());
        assert_eq!(r.find_file("x.sls", "..", &o), None);
        assert_eq!(r.find_file("x.sls", "../..", &o), None);
        assert_eq!(r.list_states("dev", &o), vec!["a"]);
    }
}
