//! The job cache: Salt's `local_cache` returner layout on disk
//! (`returners/local_cache.py`), behind the small [`JobStore`] interface a
//! database-backed store could implement later.
//!
//! ```text
//! cachedir/jobs/<h[..2]>/<h[2..]>/     h = sha256(jid) hex (hash_type sha256)
//!     jid            the jid as text; its mtime drives clean_old_jobs
//!     nocache        empty; returns of this job are not stored
//!     .load.p        msgpack of the clear publish load without "key"
//!     .minions.p     msgpack sorted list of targeted ids (merged on rewrite)
//!     .minions.<syndic>.p
//!     <minion id>/return.p   msgpack {"return", "retcode", "success"} (keys present)
//!     <minion id>/out.p      msgpack of the outputter name, when sent
//! ```
//!
//! Files are msgpack as `salt.payload.dump` writes them (`use_bin_type`
//! off), replaced atomically with mode `0644` like `atomic_open`. So the
//! stock `salt-run jobs.list_jobs` / `jobs.lookup_jid` read our jobs and we
//! read theirs. A second return of one minion for one jid is dropped, as
//! Salt does. Minion ids are checked with [`crate::keys::valid_id`] before
//! they name a directory; jids only ever reach the disk hashed.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use salt_proto::msgpack;
use salt_proto::value::{self, as_str, get, string};
use salt_proto::Value;

use crate::fsutil::write_replace;
use crate::keys::valid_id;

/// Mode of job cache files (`0666 & ~umask 022`).
const FILE_MODE: u32 = 0o644;
/// Largest job cache file we read back (a `.load.p` or `return.p`).
pub const MAX_FILE_SIZE: u64 = 64 << 20;

/// A job cache error.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
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
    /// A file holds no valid msgpack.
    #[error("cannot decode {path}: {source}")]
    Decode {
        /// The file.
        path: PathBuf,
        /// What the decoder said.
        source: salt_proto::Error,
    },
    /// A return names no valid minion id or jid.
    #[error("invalid return: {0}")]
    InvalidReturn(&'static str),
    /// No free jid after several attempts.
    #[error("prep_jid could not store a jid after {0} tries")]
    NoJid(u32),
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> JobError + 'a {
    move |source| JobError::Io { op, path: path.to_path_buf(), source }
}

/// What happened to a return handed to [`JobStore::store_return`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreOutcome {
    /// Written under this jid (the allocated one for a `"req"` jid).
    Stored(String),
    /// The job was published with `nocache`.
    NoCache,
    /// This minion already returned for this jid; the new return is dropped.
    Duplicate,
    /// The jid is not in the cache (`ENOENT` in Salt): dropped.
    UnknownJid,
}

/// The job store interface (the returner functions the master and the
/// `jobs` runner call).
pub trait JobStore: Send + Sync + std::fmt::Debug {
    /// `prep_jid`: allocate a jid (or take `passed_jid`) and create its
    /// directory with the `jid` file (and `nocache` if asked).
    fn prep_jid(&self, nocache: bool, passed_jid: Option<&str>) -> Result<String, JobError>;
    /// `save_load`: store the publish load (already without `key`) and,
    /// when the load has a non-empty `tgt`, the targeted `minions`.
    fn save_load(&self, jid: &str, load: &Value, minions: &[String]) -> Result<(), JobError>;
    /// `save_minions`: merge `minions` into the job's minion list
    /// (`.minions.p`, or `.minions.<syndic_id>.p`).
    fn save_minions(&self, jid: &str, minions: &[String], syndic_id: Option<&str>) -> Result<(), JobError>;
    /// `returner`: store a minion's `_return` load (a map with `id`, `jid`,
    /// `return`, `retcode`, `success`, optional `out`).
    fn store_return(&self, load: &Value) -> Result<StoreOutcome, JobError>;
    /// `get_load`: the stored load plus `"Minions"` (sorted union of the
    /// minion lists); an empty map if the job is unknown.
    fn get_load(&self, jid: &str) -> Result<Value, JobError>;
    /// `get_jid`: `{minion id: {"return", "retcode", "success", ["out"]}}`.
    fn get_jid(&self, jid: &str) -> Result<Value, JobError>;
    /// `get_jids` without the formatting: every `(jid, load)` in the cache.
    fn get_jids(&self) -> Result<Vec<(String, Value)>, JobError>;
    /// `clean_old_jobs`: remove jobs whose `jid` file is older than `keep`
    /// (nothing if `keep` is zero); returns how many job dirs went.
    fn clean_old_jobs(&self, keep: Duration) -> Result<usize, JobError>;
}

/// The `local_cache` store rooted at `cachedir/jobs`.
#[derive(Debug, Clone)]
pub struct LocalCache {
    job_dir: PathBuf,
}

impl LocalCache {
    /// The store under `cachedir` (`cachedir/jobs`, created on first write).
    pub fn new(cachedir: &Path) -> Self {
        LocalCache { job_dir: cachedir.join("jobs") }
    }

    /// `salt.utils.jid.jid_dir(jid, job_dir, "sha256")`.
    pub fn jid_dir(&self, jid: &str) -> PathBuf {
        let h = salt_proto::util::sha256_hex(jid.as_bytes());
        self.job_dir.join(&h[..2]).join(&h[2..])
    }

    fn read_msgpack(path: &Path) -> Result<Option<Value>, JobError> {
        let meta = match fs::metadata(path) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err("cannot stat", path)(e)),
        };
        if !meta.is_file() {
            return Ok(None);
        }
        if meta.len() > MAX_FILE_SIZE {
            return Err(JobError::Io {
                op: "refusing to read",
                path: path.to_path_buf(),
                source: io::Error::new(io::ErrorKind::InvalidData, "file too large"),
            });
        }
        let data = fs::read(path).map_err(io_err("cannot read", path))?;
        msgpack::decode(&data).map(Some).map_err(|source| JobError::Decode { path: path.to_path_buf(), source })
    }

    fn write_msgpack(path: &Path, v: &Value) -> Result<(), JobError> {
        write_replace(path, &msgpack::encode(v), FILE_MODE).map_err(io_err("cannot write", path))
    }

    fn minion_list(v: &Value) -> Vec<String> {
        match v {
            Value::Array(a) => a.iter().filter_map(as_str).map(str::to_owned).collect(),
            _ => Vec::new(),
        }
    }

    fn strings(v: &[String]) -> Value {
        Value::Array(v.iter().map(|s| string(s.as_str())).collect())
    }
}

fn create_dir(path: &Path) -> Result<(), JobError> {
    fs::create_dir_all(path).map_err(io_err("cannot create", path))
}

impl JobStore for LocalCache {
    fn prep_jid(&self, nocache: bool, passed_jid: Option<&str>) -> Result<String, JobError> {
        const TRIES: u32 = 5;
        for attempt in 0..TRIES {
            let jid = match passed_jid {
                Some(j) if !j.is_empty() => j.to_owned(),
                _ => salt_proto::util::gen_jid(),
            };
            let dir = self.jid_dir(&jid);
            if let Some(parent) = dir.parent() {
                create_dir(parent)?;
            }
            match fs::create_dir(&dir) {
                Ok(()) => {}
                // Someone else holds this jid: take a new one, unless it
                // was given to us.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    if !matches!(passed_jid, Some(j) if !j.is_empty()) {
                        tracing::debug!("jid {jid} taken (attempt {attempt}), picking another");
                        std::thread::sleep(Duration::from_micros(10));
                        continue;
                    }
                }
                Err(e) => return Err(io_err("cannot create", &dir)(e)),
            }
            let jid_file = dir.join("jid");
            fs::write(&jid_file, jid.as_bytes()).map_err(io_err("cannot write", &jid_file))?;
            if nocache {
                let p = dir.join("nocache");
                fs::write(&p, b"").map_err(io_err("cannot write", &p))?;
            }
            return Ok(jid);
        }
        Err(JobError::NoJid(TRIES))
    }

    fn save_load(&self, jid: &str, load: &Value, minions: &[String]) -> Result<(), JobError> {
        let dir = self.jid_dir(jid);
        create_dir(&dir)?;
        Self::write_msgpack(&dir.join(".load.p"), load)?;
        let has_tgt = match get(load, "tgt") {
            None => false,
            Some(t) => as_str(t) != Some(""),
        };
        if has_tgt {
            self.save_minions(jid, minions, None)?;
        }
        Ok(())
    }

    fn save_minions(&self, jid: &str, minions: &[String], syndic_id: Option<&str>) -> Result<(), JobError> {
        let dir = self.jid_dir(jid);
        create_dir(&dir)?;
        let name = match syndic_id {
            Some(s) if valid_id(s) => format!(".minions.{s}.p"),
            Some(_) => return Err(JobError::InvalidReturn("invalid syndic id")),
            None => ".minions.p".to_owned(),
        };
        let path = dir.join(name);
        let mut all: Vec<String> = match Self::read_msgpack(&path) {
            Ok(Some(v)) => Self::minion_list(&v),
            _ => Vec::new(),
        };
        all.extend(minions.iter().cloned());
        all.sort();
        all.dedup();
        Self::write_msgpack(&path, &Self::strings(&all))
    }

    fn store_return(&self, load: &Value) -> Result<StoreOutcome, JobError> {
        let id = get(load, "id").and_then(as_str).ok_or(JobError::InvalidReturn("no id"))?;
        if !valid_id(id) {
            return Err(JobError::InvalidReturn("invalid minion id"));
        }
        let mut jid = get(load, "jid").and_then(as_str).ok_or(JobError::InvalidReturn("no jid"))?.to_owned();
        if jid == "req" {
            let nocache = get(load, "nocache").map(value::truthy).unwrap_or(false);
            jid = self.prep_jid(nocache, None)?;
        }
        let dir = self.jid_dir(&jid);
        if dir.join("nocache").exists() {
            return Ok(StoreOutcome::NoCache);
        }
        if !dir.is_dir() {
            tracing::error!(
                "An inconsistency occurred, a job was received with a job id ({jid}) that is not present in the local cache"
            );
            return Ok(StoreOutcome::UnknownJid);
        }
        let hn_dir = dir.join(id);
        match fs::create_dir(&hn_dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                tracing::debug!("Duplicate return from minion {id} for jid {jid}; ignoring it");
                return Ok(StoreOutcome::Duplicate);
            }
            Err(e) => return Err(io_err("cannot create", &hn_dir)(e)),
        }
        let record: Vec<(Value, Value)> = ["return", "retcode", "success"]
            .iter()
            .filter_map(|k| get(load, k).map(|v| (string(*k), v.clone())))
            .collect();
        Self::write_msgpack(&hn_dir.join("return.p"), &Value::Map(record))?;
        if let Some(out) = get(load, "out") {
            Self::write_msgpack(&hn_dir.join("out.p"), out)?;
        }
        Ok(StoreOutcome::Stored(jid))
    }

    fn get_load(&self, jid: &str) -> Result<Value, JobError> {
        let dir = self.jid_dir(jid);
        let mut ret = match Self::read_msgpack(&dir.join(".load.p"))? {
            Some(Value::Map(m)) => m,
            Some(_) | None => return Ok(Value::Map(Vec::new())),
        };
        let mut all = match Self::read_msgpack(&dir.join(".minions.p")) {
            Ok(Some(v)) => Self::minion_list(&v),
            _ => Vec::new(),
        };
        if let Ok(rd) = fs::read_dir(&dir) {
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.starts_with(".minions.") && name.ends_with(".p") && name != ".minions.p" {
                    if let Ok(Some(v)) = Self::read_msgpack(&e.path()) {
                        all.extend(Self::minion_list(&v));
                    }
                }
            }
        }
        if !all.is_empty() {
            all.sort();
            all.dedup();
            ret.retain(|(k, _)| as_str(k) != Some("Minions"));
            ret.push((string("Minions"), Self::strings(&all)));
        }
        Ok(Value::Map(ret))
    }

    fn get_jid(&self, jid: &str) -> Result<Value, JobError> {
        let dir = self.jid_dir(jid);
        let rd = match fs::read_dir(&dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Value::Map(Vec::new())),
            Err(e) => return Err(io_err("cannot list", &dir)(e)),
        };
        let mut names: Vec<String> = rd
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| !n.starts_with('.'))
            .collect();
        names.sort();
        let mut ret = Vec::new();
        for name in names {
            let retp = dir.join(&name).join("return.p");
            let Ok(Some(data)) = Self::read_msgpack(&retp) else { continue };
            let mut data = match data {
                Value::Map(m) if m.iter().any(|(k, _)| as_str(k) == Some("return")) => m,
                // The old format: return.p holds the bare return.
                other => vec![(string("return"), other)],
            };
            if let Ok(Some(out)) = Self::read_msgpack(&dir.join(&name).join("out.p")) {
                data.push((string("out"), out));
            }
            ret.push((string(name), Value::Map(data)));
        }
        Ok(Value::Map(ret))
    }

    fn get_jids(&self) -> Result<Vec<(String, Value)>, JobError> {
        let mut out = Vec::new();
        let tops = match fs::read_dir(&self.job_dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(io_err("cannot list", &self.job_dir)(e)),
        };
        for top in tops.flatten() {
            let Ok(finals) = fs::read_dir(top.path()) else { continue };
            for f in finals.flatten() {
                let load_p = f.path().join(".load.p");
                let job = match Self::read_msgpack(&load_p) {
                    Ok(Some(j)) if value::truthy(&j) => j,
                    Ok(_) => continue,
                    Err(e) => {
                        tracing::warn!("{e}");
                        continue;
                    }
                };
                let Some(jid) = get(&job, "jid").and_then(as_str).map(str::to_owned) else { continue };
                out.push((jid, job));
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    fn clean_old_jobs(&self, keep: Duration) -> Result<usize, JobError> {
        if keep.is_zero() {
            return Ok(0);
        }
        let tops = match fs::read_dir(&self.job_dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(io_err("cannot list", &self.job_dir)(e)),
        };
        let now = SystemTime::now();
        let older = |p: &Path| {
            fs::metadata(p)
                .and_then(|m| m.modified())
                .map(|t| now.duration_since(t).map(|age| age > keep).unwrap_or(false))
                .unwrap_or(false)
        };
        let mut removed = 0;
        let mut empty_tops = Vec::new();
        for top in tops.flatten() {
            let t_path = top.path();
            let Ok(finals) = fs::read_dir(&t_path) else { continue };
            let finals: Vec<_> = finals.flatten().collect();
            if finals.is_empty() {
                empty_tops.push(t_path);
                continue;
            }
            for f in finals {
                let f_path = f.path();
                let jid_file = f_path.join("jid");
                let gone = if !jid_file.is_file() { true } else { older(&jid_file) };
                if gone {
                    match fs::remove_dir_all(&f_path) {
                        Ok(()) => removed += 1,
                        Err(e) => tracing::error!("Unable to remove {}: {e}", f_path.display()),
                    }
                }
            }
        }
        for t_path in empty_tops {
            if older(&t_path) {
                if let Err(e) = fs::remove_dir_all(&t_path) {
                    tracing::error!("Unable to remove {}: {e}", t_path.display());
                }
            }
        }
        Ok(removed)
    }
}

const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/// `salt.utils.jid.jid_to_time`: `"2026, Dec 05 03:28:55.472889"`, or `""`
/// for a jid of another shape.
pub fn jid_to_time(jid: &str) -> String {
    let b = jid.as_bytes();
    let shaped = b.len() == 20 || (b.len() > 21 && b[20] == b'_');
    if !shaped || !b[..20].iter().all(u8::is_ascii_digit) {
        return String::new();
    }
    let month: usize = jid[4..6].parse().unwrap_or(0);
    let Some(m) = month.checked_sub(1).and_then(|i| MONTHS.get(i)) else { return String::new() };
    format!("{}, {} {} {}:{}:{}.{}", &jid[..4], m, &jid[6..8], &jid[8..10], &jid[10..12], &jid[12..14], &jid[14..20])
}

/// `salt.utils.jid.format_jid_instance`: what `jobs.list_jobs` shows per
/// jid: `Function, Arguments, Target, Target-type, User, [Metadata],
/// StartTime`.
pub fn format_jid_instance(jid: &str, job: &Value) -> Value {
    let or = |k: &str, d: Value| get(job, k).cloned().unwrap_or(d);
    let mut m = vec![
        (string("Function"), or("fun", string("unknown-function"))),
        (string("Arguments"), or("arg", Value::Array(Vec::new()))),
        (string("Target"), or("tgt", string("unknown-target"))),
        (string("Target-type"), or("tgt_type", string("list"))),
        (string("User"), or("user", string("root"))),
    ];
    if let Some(md) = get(job, "metadata").or_else(|| get(job, "kwargs").and_then(|k| get(k, "metadata"))) {
        m.push((string("Metadata"), md.clone()));
    }
    m.push((string("StartTime"), string(jid_to_time(jid))));
    Value::Map(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use value::map;

    #[test]
    fn layout_and_round_trip() {
        let Ok(dir) = tempfile::tempdir() else { return };
        let jc = LocalCache::new(dir.path());
        let Ok(jid) = jc.prep_jid(false, None) else { panic!("prep") };
        assert_eq!(jid.len(), 20);
        let h = salt_proto::util::sha256_hex(jid.as_bytes());
        let jd = dir.path().join("jobs").join(&h[..2]).join(&h[2..]);
        assert_eq!(fs::read_to_string(jd.join("jid")).ok().as_deref(), Some(jid.as_str()));
        let load = map([
            ("cmd", string("publish")),
            ("tgt", string("*")),
            ("fun", string("test.ping")),
            ("arg", Value::Array(vec![])),
            ("tgt_type", string("glob")),
            ("ret", string("")),
            ("jid", string(jid.as_str())),
            ("user", string("root")),
        ]);
        assert!(jc.save_load(&jid, &load, &["m2".to_owned(), "m1".to_owned()]).is_ok());
        assert!(jc.save_minions(&jid, &["m0".to_owned(), "m1".to_owned()], None).is_ok());
        let ret = map([
            ("cmd", string("_return")),
            ("id", string("m1")),
            ("success", Value::Boolean(true)),
            ("return", Value::Boolean(true)),
            ("retcode", Value::from(0)),
            ("jid", string(jid.as_str())),
            ("fun", string("test.ping")),
            ("out", string("nested")),
        ]);
        assert_eq!(jc.store_return(&ret).ok(), Some(StoreOutcome::Stored(jid.clone())));
        assert_eq!(jc.store_return(&ret).ok(), Some(StoreOutcome::Duplicate));
        let got = jc.get_load(&jid).unwrap_or(Value::Nil);
        assert_eq!(get(&got, "fun").and_then(as_str), Some("test.ping"));
        assert_eq!(get(&got, "Minions"), Some(&LocalCache::strings(&["m0".into(), "m1".into(), "m2".into()])));
        let rets = jc.get_jid(&jid).unwrap_or(Value::Nil);
        let m1 = get(&rets, "m1").cloned().unwrap_or(Value::Nil);
        assert_eq!(get(&m1, "return"), Some(&Value::Boolean(true)));
        assert_eq!(get(&m1, "out").and_then(as_str), Some("nested"));
        let jids = jc.get_jids().unwrap_or_default();
        assert_eq!(jids.len(), 1);
        let f = format_jid_instance(&jids[0].0, &jids[0].1);
        assert_eq!(get(&f, "Function").and_then(as_str), Some("test.ping"));
        // Nothing but hashed names and valid ids reach the disk.
        let evil = map([("id", string("../../x")), ("jid", string(jid.as_str()))]);
        assert!(jc.store_return(&evil).is_err());
        let unknown = map([("id", string("m1")), ("jid", string("19990101000000000000"))]);
        assert_eq!(jc.store_return(&unknown).ok(), Some(StoreOutcome::UnknownJid));
        // Old jobs go, young ones stay.
        assert_eq!(jc.clean_old_jobs(Duration::from_secs(3600)).ok(), Some(0));
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(jc.clean_old_jobs(Duration::from_millis(1)).ok(), Some(1));
        assert!(jc.get_jids().unwrap_or_default().is_empty());
    }

    #[test]
    fn nocache_and_req() {
        let Ok(dir) = tempfile::tempdir() else { return };
        let jc = LocalCache::new(dir.path());
        let Ok(jid) = jc.prep_jid(true, Some("20260101000000000001")) else { panic!("prep") };
        assert_eq!(jid, "20260101000000000001");
        let ret = map([("id", string("m1")), ("jid", string(jid.as_str())), ("return", Value::from(1))]);
        assert_eq!(jc.store_return(&ret).ok(), Some(StoreOutcome::NoCache));
        let req = map([("id", string("m1")), ("jid", string("req")), ("return", Value::from(1))]);
        assert!(matches!(jc.store_return(&req), Ok(StoreOutcome::Stored(j)) if j.len() == 20));
    }

    #[test]
    fn start_times() {
        assert_eq!(jid_to_time("20261205032855472889"), "2026, Dec 05 03:28:55.472889");
        assert_eq!(jid_to_time("20261205032855472889_123"), "2026, Dec 05 03:28:55.472889");
        assert_eq!(jid_to_time("req"), "");
        assert_eq!(jid_to_time("20261305032855472889"), "");
    }
}
