//! The configuration-file machinery every Salt daemon shares (`config/__init__.py` of Salt 3008.5):
//! each daemon keeps its own keys and defaults and builds on this.
//!
//! - [`read_conf_file`] (`_read_conf_file`): a file is YAML (see [`crate::yaml`]); an empty file is
//!   `{}`, a non-mapping document is an error; a non-string `id` becomes its `str()`.
//! - [`include_config`]: the files an `include` / `default_include` names (`~` expanded,
//!   globbed, sorted, relative to the main file's directory) are merged into each other
//!   recursively ([`dict_update`], `dictupdate.update(…, merge_lists=True)`), and the result
//!   **replaces** top-level keys of the main file; [`Opts::load`] does both steps.
//! - [`prepend_root_dir`] re-roots a path under `root_dir`; [`normpath`], [`join`], [`basename`],
//!   [`dirname`] and [`has_url_scheme`] are the `os.path` / `urllib` pieces it needs.
//! - [`Opts`] keeps, per top-level key, the file that set it, and its typed getters return a
//!   [`ConfigError::Invalid`] naming the key, the value and that file.
//!
//! Differences, on purpose: a malformed included file is an error here (Salt logs it and ignores
//! the file), and a value of the wrong type for an option a daemon interprets is an error naming
//! the option and the file (Salt logs a warning and keeps the value).

use std::path::{Path, PathBuf};

use salt_proto::{EncAlgo, SigAlgo};

use crate::value::{as_str, py_str, string, Value};
use crate::yaml::YamlError;

/// `salt.syspaths.ROOT_DIR` on Linux.
pub const DEFAULT_ROOT_DIR: &str = "/";

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A file exists but could not be read.
    #[error("cannot read configuration file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A file is not valid YAML (by Salt's loader).
    #[error("Error parsing configuration file: {path} - {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What the YAML loader said.
        source: YamlError,
    },
    /// A file holds YAML that is not a mapping.
    #[error("Error parsing configuration file: {path} - conf should be a document, not {found}")]
    NotAMapping {
        /// The file.
        path: PathBuf,
        /// The Python type name of what was found.
        found: &'static str,
    },
    /// An option has a value the daemon cannot use.
    #[error("Config option '{key}' with value {value} (from {origin}) is invalid: {reason}")]
    Invalid {
        /// Option name.
        key: String,
        /// Python `repr` of the value.
        value: String,
        /// The file that set it, or "defaults".
        origin: String,
        /// Why.
        reason: String,
    },
}

/// The merged option map of one daemon's configuration plus, per top-level key, the file that
/// set it (or "defaults"), with typed getters whose errors name both.
#[derive(Debug, Clone, Default)]
pub struct Opts {
    entries: Vec<(String, Value)>,
    origin: Vec<(String, String)>,
}

impl Opts {
    /// `load_config(path)` + `include_config(default_include)` + `include_config(include)`: read
    /// the main file (a missing file gives no entries) and merge in the files its
    /// `default_include` (else `default_include`, e.g. `"minion.d/*.conf"`) and `include` name.
    pub fn load(path: &Path, default_include: &str) -> Result<Self, ConfigError> {
        let origin = path.display().to_string();
        let mut opts = Opts::default();
        if path.is_file() {
            for (k, v) in read_conf_file(path)? {
                opts.set(&k, v, &origin);
            }
        } else {
            tracing::debug!("Missing configuration file: {}", path.display());
        }
        let default_include = opts.get("default_include").cloned().unwrap_or_else(|| string(default_include));
        let include = opts.get("include").cloned().unwrap_or(Value::Nil);
        for inc in [default_include, include] {
            for (k, v, o) in include_config(&inc, path)? {
                opts.set(&k, v, &o);
            }
        }
        Ok(opts)
    }

    /// Every `(key, value)`, in the order the keys were first set.
    pub fn entries(&self) -> &[(String, Value)] {
        &self.entries
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// Set `key` (keeping its position if present), recording `origin` as the file that set it.
    pub fn set(&mut self, key: &str, val: Value, origin: &str) {
        if let Some(slot) = self.entries.iter_mut().find(|(k, _)| k == key) {
            slot.1 = val;
        } else {
            self.entries.push((key.to_string(), val));
        }
        if let Some(o) = self.origin.iter_mut().find(|(k, _)| k == key) {
            o.1 = origin.to_string();
        } else {
            self.origin.push((key.to_string(), origin.to_string()));
        }
    }

    /// The file that set `key`, or "defaults".
    pub fn origin_of(&self, key: &str) -> String {
        self.origin.iter().find(|(k, _)| k == key).map_or_else(|| "defaults".to_string(), |(_, o)| o.clone())
    }

    /// The error for `key` holding `val`, which is unusable because of `reason`.
    pub fn invalid(&self, key: &str, val: &Value, reason: &str) -> ConfigError {
        ConfigError::Invalid {
            key: key.into(),
            value: crate::value::py_repr(val),
            origin: self.origin_of(key),
            reason: reason.into(),
        }
    }

    /// `key` as a string (`str()` of a scalar), `default` if unset.
    pub fn string(&self, key: &str, default: &str) -> Result<String, ConfigError> {
        match self.get(key) {
            None => Ok(default.into()),
            Some(v @ (Value::Array(_) | Value::Map(_) | Value::Binary(_) | Value::Nil)) => {
                Err(self.invalid(key, v, "a string is required"))
            }
            Some(v) => Ok(py_str(v)),
        }
    }

    /// `key` as a string, `None` if unset or null.
    pub fn opt_string(&self, key: &str) -> Result<Option<String>, ConfigError> {
        match self.get(key) {
            None | Some(Value::Nil) => Ok(None),
            Some(_) => self.string(key, "").map(Some),
        }
    }

    /// `key` as an integer (a numeric string is accepted), `default` if unset.
    pub fn int(&self, key: &str, default: i64) -> Result<i64, ConfigError> {
        match self.get(key) {
            None => Ok(default),
            Some(Value::Integer(i)) => {
                i.as_i64().ok_or_else(|| self.invalid(key, &Value::Integer(*i), "integer out of range"))
            }
            Some(v @ Value::String(_)) => as_str(v)
                .and_then(|t| t.trim().parse::<i64>().ok())
                .ok_or_else(|| self.invalid(key, v, "an integer is required")),
            Some(v) => Err(self.invalid(key, v, "an integer is required")),
        }
    }

    /// `key` as a number (a numeric string is accepted), `default` if unset.
    pub fn float(&self, key: &str, default: f64) -> Result<f64, ConfigError> {
        match self.get(key) {
            None => Ok(default),
            Some(Value::Integer(i)) => Ok(i.as_f64().unwrap_or(default)),
            Some(Value::F64(f)) => Ok(*f),
            Some(Value::F32(f)) => Ok(f64::from(*f)),
            Some(v @ Value::String(_)) => as_str(v)
                .and_then(|t| t.trim().parse::<f64>().ok())
                .ok_or_else(|| self.invalid(key, v, "a number is required")),
            Some(v) => Err(self.invalid(key, v, "a number is required")),
        }
    }

    /// `key` as a boolean (`True`/`False` only), `default` if unset.
    pub fn boolean(&self, key: &str, default: bool) -> Result<bool, ConfigError> {
        match self.get(key) {
            None => Ok(default),
            Some(Value::Boolean(b)) => Ok(*b),
            Some(v) => Err(self.invalid(key, v, "a boolean (True/False) is required")),
        }
    }

    /// `key` as a boolean, `None` if unset or null.
    pub fn opt_bool(&self, key: &str) -> Result<Option<bool>, ConfigError> {
        match self.get(key) {
            None | Some(Value::Nil) => Ok(None),
            Some(_) => self.boolean(key, false).map(Some),
        }
    }

    /// `key` as an `encryption_algorithm` name (`salt.crypt.VALID_ENCRYPTION_ALGORITHMS`),
    /// `default` if unset.
    pub fn enc_algo(&self, key: &str, default: EncAlgo) -> Result<EncAlgo, ConfigError> {
        self.choice(key, default, &EncAlgo::ALL, |a| a.as_str())
    }

    /// `key` as a `signing_algorithm` name (`salt.crypt.VALID_SIGNING_ALGORITHMS`), `default`
    /// if unset.
    pub fn sig_algo(&self, key: &str, default: SigAlgo) -> Result<SigAlgo, ConfigError> {
        self.choice(key, default, &SigAlgo::ALL, |a| a.as_str())
    }

    /// `key` as the one of `all` whose `name` it is.
    fn choice<T: Copy>(&self, key: &str, default: T, all: &[T], name: fn(T) -> &'static str) -> Result<T, ConfigError> {
        let text = self.string(key, name(default))?;
        all.iter().copied().find(|a| name(*a) == text).ok_or_else(|| {
            let names: Vec<&str> = all.iter().map(|a| name(*a)).collect();
            self.invalid(key, &string(&text), &format!("Please specify one of {}", names.join(",")))
        })
    }

    /// `key` as a TCP port (1-65535), `default` if unset or null.
    pub fn port(&self, key: &str, default: Option<u16>) -> Result<Option<u16>, ConfigError> {
        match self.get(key) {
            None | Some(Value::Nil) => Ok(default),
            Some(v) => {
                let n = self.int(key, 0)?;
                u16::try_from(n)
                    .ok()
                    .filter(|p| *p > 0)
                    .map(Some)
                    .ok_or_else(|| self.invalid(key, v, "a TCP port (1-65535) is required"))
            }
        }
    }
}

/// Python's `str(type(v))` of a value, as Salt's messages print it.
pub fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Nil => "<class 'NoneType'>",
        Value::Boolean(_) => "<class 'bool'>",
        Value::Integer(_) => "<class 'int'>",
        Value::F32(_) | Value::F64(_) => "<class 'float'>",
        Value::String(_) => "<class 'str'>",
        Value::Binary(_) => "<class 'bytes'>",
        Value::Array(_) => "<class 'list'>",
        Value::Map(_) => "<class 'dict'>",
        Value::Ext(..) => "<class 'object'>",
    }
}

/// `_read_conf_file`: read one YAML file into `(key, value)` pairs.
pub fn read_conf_file(path: &Path) -> Result<Vec<(String, Value)>, ConfigError> {
    tracing::debug!("Reading configuration from {}", path.display());
    let text =
        std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?;
    let doc =
        crate::yaml::safe_load(&text).map_err(|source| ConfigError::Parse { path: path.to_path_buf(), source })?;
    let entries = match doc {
        Value::Nil => Vec::new(),
        Value::Map(m) => m,
        other => return Err(ConfigError::NotAMapping { path: path.to_path_buf(), found: type_name(&other) }),
    };
    Ok(entries
        .into_iter()
        .map(|(k, v)| {
            let key = as_str(&k).map_or_else(|| py_str(&k), str::to_string);
            let v = if key == "id" && !matches!(v, Value::String(_)) { string(py_str(&v)) } else { v };
            (key, v)
        })
        .collect())
}

/// `salt.utils.dictupdate.update(dest, upd, recursive_update=True, merge_lists=True)`.
pub fn dict_update(dest: &mut Vec<(Value, Value)>, upd: Vec<(Value, Value)>) {
    dict_update_with(dest, upd, true);
}

/// `salt.utils.dictupdate.update(dest, upd, recursive_update=True, merge_lists)`: maps merge
/// recursively; lists are extended with the new items when `merge_lists`, else replaced.
pub fn dict_update_with(dest: &mut Vec<(Value, Value)>, upd: Vec<(Value, Value)>, merge_lists: bool) {
    let shares_a_key = upd.iter().any(|(k, _)| dest.iter().any(|(d, _)| crate::value::py_eq(d, k)));
    for (k, v) in upd {
        let slot = dest.iter_mut().find(|(d, _)| crate::value::py_eq(d, &k));
        match slot {
            Some((_, existing)) if shares_a_key => match (existing, v) {
                (Value::Map(d), Value::Map(u)) => dict_update_with(d, u, merge_lists),
                (Value::Array(d), Value::Array(u)) if merge_lists => {
                    for item in u {
                        if !d.iter().any(|x| crate::value::py_eq(x, &item)) {
                            d.push(item);
                        }
                    }
                }
                (e, v) => *e = v,
            },
            Some((_, existing)) => *existing = v,
            None => dest.push((k, v)),
        }
    }
}

/// Python `os.path.expanduser` for `~` and `~/…`.
pub fn expand_user(p: &str) -> String {
    if let Some(rest) = p.strip_prefix("~/") {
        if let Some(home) = std::env::var_os("HOME") {
            return Path::new(&home).join(rest).to_string_lossy().into_owned();
        }
    } else if p == "~" {
        if let Some(home) = std::env::var_os("HOME") {
            return home.to_string_lossy().into_owned();
        }
    }
    p.to_string()
}

/// Python `glob.glob` for the patterns Salt includes: wildcards only in the last component(s),
/// matched per component with `fnmatch`; hidden files are not matched by `*`.
pub fn glob(pattern: &str) -> Vec<PathBuf> {
    let path = Path::new(pattern);
    let has_magic = |t: &str| t.contains(['*', '?', '[']);
    if !has_magic(pattern) {
        return if path.exists() { vec![path.to_path_buf()] } else { Vec::new() };
    }
    let mut current: Vec<PathBuf> = vec![if path.is_absolute() { PathBuf::from("/") } else { PathBuf::new() }];
    for comp in path.components() {
        let part = comp.as_os_str().to_string_lossy().into_owned();
        if part == "/" {
            continue;
        }
        let mut next = Vec::new();
        for base in &current {
            if has_magic(&part) {
                let dir = if base.as_os_str().is_empty() { Path::new(".") } else { base.as_path() };
                let Ok(rd) = std::fs::read_dir(dir) else {
                    continue;
                };
                let mut names: Vec<String> = rd
                    .flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| !n.starts_with('.') || part.starts_with('.'))
                    .filter(|n| crate::fnmatch::fnmatch(n, &part))
                    .collect();
                names.sort();
                next.extend(names.into_iter().map(|n| base.join(n)));
            } else {
                let p = base.join(&part);
                if p.exists() || p.is_symlink() {
                    next.push(p);
                }
            }
        }
        current = next;
    }
    current
}

/// `include_config(include, orig_path)`: read and merge the files an include names.
pub fn include_config(include: &Value, orig_path: &Path) -> Result<Vec<(String, Value, String)>, ConfigError> {
    let patterns: Vec<String> = match include {
        Value::Nil => return Ok(Vec::new()),
        Value::String(_) => vec![py_str(include)],
        Value::Array(a) => a.iter().map(py_str).collect(),
        other if !crate::value::truthy(other) => return Ok(Vec::new()),
        other => vec![py_str(other)],
    };
    let mut merged: Vec<(Value, Value)> = Vec::new();
    let mut origin: Vec<(String, String)> = Vec::new();
    let base = orig_path.parent().unwrap_or(Path::new(""));
    for pat in patterns {
        let pat = expand_user(&pat);
        let full = if Path::new(&pat).is_absolute() { PathBuf::from(&pat) } else { base.join(&pat) };
        let mut matches = glob(&full.to_string_lossy());
        matches.sort();
        for file in matches {
            tracing::debug!("Including configuration from '{}'", file.display());
            let mut opts = read_conf_file(&file)?;
            if let Some((_, nested)) = opts.iter().find(|(k, _)| k == "include").cloned() {
                for (k, v, o) in include_config(&nested, &file)? {
                    if let Some(slot) = opts.iter_mut().find(|(ok, _)| *ok == k) {
                        slot.1 = v;
                    } else {
                        opts.push((k.clone(), v));
                    }
                    origin.retain(|(ok, _)| *ok != k);
                    origin.push((k, o));
                }
            }
            for (k, _) in &opts {
                origin.retain(|(ok, _)| ok != k);
                origin.push((k.clone(), file.display().to_string()));
            }
            dict_update(&mut merged, opts.into_iter().map(|(k, v)| (string(k), v)).collect());
        }
    }
    Ok(merged
        .into_iter()
        .map(|(k, v)| {
            let key = py_str(&k);
            let o = origin.iter().find(|(ok, _)| *ok == key).map_or_else(String::new, |(_, o)| o.clone());
            (key, v, o)
        })
        .collect())
}

/// Python `os.path.normpath` (POSIX).
pub fn normpath(p: &str) -> String {
    if p.is_empty() {
        return ".".into();
    }
    let initial = if p.starts_with("//") && !p.starts_with("///") {
        2
    } else if p.starts_with('/') {
        1
    } else {
        0
    };
    let mut out: Vec<&str> = Vec::new();
    for comp in p.split('/') {
        if comp.is_empty() || comp == "." {
            continue;
        }
        if comp != ".." || (initial == 0 && out.is_empty()) || out.last() == Some(&"..") {
            out.push(comp);
        } else if !out.is_empty() {
            out.pop();
        }
    }
    let joined = out.join("/");
    let res = format!("{}{}", "/".repeat(initial), joined);
    if res.is_empty() {
        ".".into()
    } else {
        res
    }
}

/// Python `os.path.abspath`.
pub fn abspath(p: &str) -> String {
    if p.starts_with('/') {
        normpath(p)
    } else {
        let cwd = std::env::current_dir().map(|c| c.to_string_lossy().into_owned()).unwrap_or_else(|_| "/".into());
        normpath(&format!("{cwd}/{p}"))
    }
}

/// `salt.utils.path.join(root, path)`: normalise both, strip the second's leading slashes.
pub fn salt_path_join(root: &str, path: &str) -> String {
    let root = normpath(root);
    let path = normpath(path);
    let stripped = path.trim_start_matches('/');
    let joined = if stripped.is_empty() {
        format!("{}/", root.trim_end_matches('/'))
    } else if root.ends_with('/') {
        format!("{root}{stripped}")
    } else {
        format!("{root}/{stripped}")
    };
    normpath(&joined)
}

/// `prepend_root_dir` for one value (ROOT_DIR is `/` on Linux, so every absolute path "matches the
/// default root" and is re-rooted unless it already lies under `root_dir`).
pub fn prepend_root_dir(root_dir: &str, path: &str) -> String {
    let root = abspath(root_dir);
    let def_root = DEFAULT_ROOT_DIR.trim_end_matches('/');
    let sep_def = format!("{def_root}/");
    let tmp_def = (path == def_root || path.starts_with(&sep_def)).then(|| path[def_root.len()..].to_string());
    let sep_root = format!("{root}/");
    let tmp_root =
        (!root.is_empty() && (path == root || path.starts_with(&sep_root))).then(|| path[root.len()..].to_string());
    let nonempty = |o: &Option<String>| o.as_ref().is_some_and(|t| !t.is_empty());
    let rel = match (nonempty(&tmp_def), nonempty(&tmp_root)) {
        (true, false) => tmp_def.unwrap_or_default(),
        (false, true) => tmp_root.unwrap_or_default(),
        (true, true) => {
            if root.contains(def_root) {
                tmp_root.unwrap_or_default()
            } else {
                tmp_def.unwrap_or_default()
            }
        }
        (false, false) => {
            if path.starts_with('/') {
                return path.to_string();
            }
            path.to_string()
        }
    };
    salt_path_join(&root, &rel)
}

/// `urllib.parse.urlparse(path).scheme != ""` as `should_prepend_root_dir` tests it.
pub fn has_url_scheme(p: &str) -> bool {
    let Some(i) = p.find(':') else { return false };
    if i == 0 {
        return false;
    }
    let scheme = &p[..i];
    scheme.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && scheme.chars().all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '-' || c == '.')
}

/// Python `os.path.join(a, b)` (POSIX).
pub fn join(a: &str, b: &str) -> String {
    if b.starts_with('/') {
        b.to_string()
    } else if a.is_empty() || a.ends_with('/') {
        format!("{a}{b}")
    } else {
        format!("{a}/{b}")
    }
}

/// Python `os.path.basename` (POSIX).
pub fn basename(p: &str) -> &str {
    p.rsplit('/').next().unwrap_or(p)
}

/// Python `os.path.dirname` (POSIX).
pub fn dirname(p: &str) -> &str {
    match p.rfind('/') {
        Some(0) => "/",
        Some(i) => &p[..i],
        None => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normpath_like_python() {
        assert_eq!(normpath("/a//b/./c/../d/"), "/a/b/d");
        assert_eq!(normpath("a/../../b"), "../b");
        assert_eq!(normpath("//x"), "//x");
        assert_eq!(normpath("///x"), "/x");
        assert_eq!(normpath(""), ".");
    }

    #[test]
    fn reroot_like_salt() {
        assert_eq!(prepend_root_dir("/srv/r", "/etc/salt/pki/minion"), "/srv/r/etc/salt/pki/minion");
        assert_eq!(prepend_root_dir("/srv/r", "/srv/r/cache"), "/srv/r/cache");
        assert_eq!(prepend_root_dir("/srv/r", "cache"), "/srv/r/cache");
        assert_eq!(prepend_root_dir("/", "/var/cache/salt/minion"), "/var/cache/salt/minion");
        assert_eq!(prepend_root_dir("/srv/r/", "/var/log"), "/srv/r/var/log");
    }

    #[test]
    fn url_schemes() {
        assert!(has_url_scheme("udp://localhost:514"));
        assert!(has_url_scheme("file:///var/log/x"));
        assert!(!has_url_scheme("/var/log/a:b"));
        assert!(!has_url_scheme("/var/log/salt/minion"));
    }

    #[test]
    fn include_merges_and_names_files() {
        let Ok(dir) = tempfile::tempdir() else { return };
        let main = dir.path().join("master");
        let _ = std::fs::write(&main, "a: 1\nlist: [x]\ninclude: extra/*.conf\n");
        let _ = std::fs::create_dir_all(dir.path().join("master.d"));
        let _ = std::fs::create_dir_all(dir.path().join("extra"));
        let _ = std::fs::write(dir.path().join("master.d/10.conf"), "b: {k: 1}\nlist: [y]\n");
        let _ = std::fs::write(dir.path().join("master.d/20.conf"), "b: {j: 2}\nport: 70000\n");
        let _ = std::fs::write(dir.path().join("extra/1.conf"), "a: 2\n");
        let opts = Opts::load(&main, "master.d/*.conf");
        let Ok(opts) = opts else { panic!("{opts:?}") };
        assert_eq!(opts.int("a", 0).ok(), Some(2), "includes replace the main file's keys");
        assert!(opts.origin_of("a").ends_with("1.conf"));
        assert_eq!(py_str(opts.get("b").unwrap_or(&Value::Nil)), "{'k': 1, 'j': 2}");
        assert_eq!(py_str(opts.get("list").unwrap_or(&Value::Nil)), "['y']");
        let e = opts.port("port", None).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("'port'") && e.contains("20.conf") && e.contains("70000"), "{e}");
        assert_eq!(opts.string("missing", "d").ok().as_deref(), Some("d"));
        assert_eq!(opts.sig_algo("missing", SigAlgo::Pkcs1v15Sha1).ok(), Some(SigAlgo::Pkcs1v15Sha1));
        let e = opts.enc_algo("a", EncAlgo::OaepSha1).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("Please specify one of OAEP-SHA1,OAEP-SHA224") && e.contains("1.conf"), "{e}");
        assert_eq!(opts.origin_of("missing"), "defaults");
    }
}
