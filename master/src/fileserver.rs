//! The file server commands of `AESFuncs` (master.py, `salt.fileserver.
//! Fileserver` with the `roots` backend): what a minion's `RemoteClient`
//! asks for during `state.apply`, `cp.*` and `saltutil.sync_*`.
//!
//! Replies have Salt's shapes: `_serve_file` → `{"data", "dest"}` (one
//! chunk of `file_buffer_size` from `loc`; empty `data` = end of file;
//! `gzip` is not applied: the reply carries no `gzip` key and the minion
//! writes the data as is), `_file_hash` → `{"hsum", "hash_type"}` or `""`,
//! `_file_hash_and_stat` → `[hash, stat]`, `_file_find` → `fnd`,
//! `_file_list*` / `_dir_list` → sorted lists, `_symlink_list` → a map,
//! `_file_envs` → sorted saltenvs, `_master_opts` → the state options,
//! `_master_tops` → `{}` (no master_tops are configured here). Every path
//! and saltenv goes through [`crate::roots`], which refuses to leave the
//! roots.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use salt_proto::value::{self, as_str, get, get_str, string};
use salt_proto::Value;

use crate::roots::{Found, Lists};
use crate::state::Master;

/// Saltenvs whose lists are kept at once (an `__env__` root accepts any
/// name; the cache is emptied when full).
const LIST_CACHE_ENTRIES: usize = 64;

/// Salt's file list cache (`check_file_list_cache`): the lists of a saltenv
/// are walked once per `fileserver_list_cache_time` seconds (20), not on
/// each of the ~20 `_file_list` calls a `state.apply` makes. Kept in
/// memory, shared by the MWorkers.
#[derive(Debug)]
pub struct ListCache {
    ttl: Duration,
    entries: Mutex<HashMap<String, (Instant, Arc<Lists>)>>,
}

impl ListCache {
    /// A cache keeping lists for `ttl` (zero: no caching).
    pub fn new(ttl: Duration) -> Self {
        ListCache { ttl, entries: Mutex::new(HashMap::new()) }
    }

    /// The lists of `saltenv`, from the cache while young enough, else
    /// from `walk` (`None`: unknown saltenv, not cached).
    pub fn get(&self, saltenv: &str, walk: impl FnOnce() -> Option<Lists>) -> Option<Arc<Lists>> {
        if self.ttl.is_zero() {
            return walk().map(Arc::new);
        }
        if let Ok(entries) = self.entries.lock() {
            if let Some((at, lists)) = entries.get(saltenv) {
                if at.elapsed() < self.ttl {
                    return Some(lists.clone());
                }
            }
        }
        let lists = Arc::new(walk()?);
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= LIST_CACHE_ENTRIES {
                entries.clear();
            }
            entries.insert(saltenv.to_owned(), (Instant::now(), lists.clone()));
        }
        Some(lists)
    }
}

/// The lists of `saltenv` in `file_roots` (cached), `None` if unknown.
fn lists_of(master: &Master, saltenv: &str) -> Option<Arc<Lists>> {
    if master.config.fileserver_backend.iter().all(|b| b != "roots") {
        return None;
    }
    master.list_cache.get(saltenv, || master.file_roots.lists(saltenv, &master.roots_opts))
}

/// Whether `cmd` is one of the file server commands.
pub fn handles(cmd: &str) -> bool {
    matches!(
        cmd,
        "_master_opts"
            | "_master_tops"
            | "_file_envs"
            | "_file_list"
            | "_file_list_emptydirs"
            | "_dir_list"
            | "_symlink_list"
            | "_file_hash"
            | "_file_hash_and_stat"
            | "_file_find"
            | "_serve_file"
    )
}

/// Answer file server command `cmd`.
pub fn handle(master: &Master, cmd: &str, load: &Value) -> Value {
    match cmd {
        "_master_opts" => master_opts(master, load),
        "_master_tops" => Value::Map(Vec::new()),
        "_file_envs" => value::str_list(master.file_roots.envs()),
        "_file_list" | "_file_list_emptydirs" | "_dir_list" => list(master, cmd, load),
        "_symlink_list" => symlink_list(master, load),
        "_file_hash" => file_hash(master, load).0,
        "_file_hash_and_stat" => {
            let (h, stat) = file_hash(master, load);
            Value::Array(vec![h, stat.unwrap_or(Value::Nil)])
        }
        "_file_find" => file_find(master, load),
        "_serve_file" => serve_file(master, load),
        _ => Value::Map(Vec::new()),
    }
}

/// `str(load["saltenv"])`, if present.
fn saltenv_of(load: &Value) -> Option<String> {
    get(load, "saltenv").map(|v| as_str(v).map(str::to_owned).unwrap_or_else(|| value::py_str(v)))
}

/// `Fileserver.find_file`: the `?saltenv=` query of a path (unless escaped
/// with `|`) overrides the saltenv.
fn find(master: &Master, path: &str, saltenv: &str) -> Option<Found> {
    let (path, saltenv) = if let Some(p) = path.strip_prefix('|') {
        (p.trim_start_matches('|').to_owned(), saltenv.to_owned())
    } else if let Some((p, query)) = path.split_once('?') {
        let env = query
            .split('&')
            .filter_map(|c| c.split_once('='))
            .rfind(|(k, _)| *k == "saltenv")
            .map(|(_, v)| v.to_owned());
        (p.to_owned(), env.unwrap_or_else(|| saltenv.to_owned()))
    } else {
        (path.to_owned(), saltenv.to_owned())
    };
    if master.config.fileserver_backend.iter().all(|b| b != "roots") {
        return None;
    }
    master.file_roots.find_file(&path, &saltenv, &master.roots_opts)
}

fn master_opts(master: &Master, load: &Value) -> Value {
    let file_roots =
        Value::Map(master.file_roots.envs().into_iter().map(|e| (string(e), Value::Array(Vec::new()))).collect());
    let mut out = vec![(string("file_roots"), file_roots)];
    let env_only = get(load, "env_only").is_some_and(value::truthy);
    for (k, v) in &master.config.state_opts {
        // With env_only, Salt stops before `renderer`.
        if *k == "renderer" && env_only {
            break;
        }
        out.push((string(*k), v.clone()));
        if *k == "state_top_saltenv" {
            out.push((string("nodegroups"), master.config.nodegroups.clone()));
        }
    }
    Value::Map(out)
}

fn list(master: &Master, cmd: &str, load: &Value) -> Value {
    let Some(saltenv) = saltenv_of(load) else { return Value::Array(Vec::new()) };
    let Some(lists) = lists_of(master, &saltenv) else { return Value::Array(Vec::new()) };
    let items = match cmd {
        "_file_list" => &lists.files,
        "_file_list_emptydirs" => &lists.empty_dirs,
        _ => &lists.dirs,
    };
    let prefix = get_str(load, "prefix").unwrap_or("").trim_matches('/').to_owned();
    value::str_list(items.iter().filter(|f| f.starts_with(&prefix)))
}

fn symlink_list(master: &Master, load: &Value) -> Value {
    let Some(saltenv) = saltenv_of(load) else { return Value::Map(Vec::new()) };
    let Some(lists) = lists_of(master, &saltenv) else { return Value::Map(Vec::new()) };
    let prefix = get_str(load, "prefix").unwrap_or("").trim_matches('/').to_owned();
    Value::Map(
        lists
            .links
            .iter()
            .filter(|(k, _)| k.starts_with(&prefix))
            .map(|(k, v)| (string(k.as_str()), string(v.as_str())))
            .collect(),
    )
}

/// `os.stat` as a list of ten integers.
fn stat_list(found: &Found) -> Option<Value> {
    use std::os::unix::fs::MetadataExt as _;
    let m = std::fs::metadata(&found.real).ok()?;
    let ints: [i64; 10] = [
        i64::from(m.mode()),
        i64::try_from(m.ino()).unwrap_or(i64::MAX),
        i64::try_from(m.dev()).unwrap_or(i64::MAX),
        i64::try_from(m.nlink()).unwrap_or(i64::MAX),
        i64::from(m.uid()),
        i64::from(m.gid()),
        i64::try_from(m.size()).unwrap_or(i64::MAX),
        m.atime(),
        m.mtime(),
        m.ctime(),
    ];
    Some(Value::Array(ints.iter().map(|&i| Value::from(i)).collect()))
}

/// `Fileserver.__file_hash_and_stat`: (`{"hsum", "hash_type"}` or `""`, stat).
fn file_hash(master: &Master, load: &Value) -> (Value, Option<Value>) {
    let empty = (string(""), None);
    let (Some(path), Some(saltenv)) = (get(load, "path"), saltenv_of(load)) else { return empty };
    let Some(path) = as_str(path) else { return empty };
    let Some(found) = find(master, path, &saltenv) else { return empty };
    let stat = stat_list(&found);
    match crate::roots::hash_file(&found.real, &master.config.hash_type) {
        Ok(hsum) => {
            (value::map([("hsum", string(hsum)), ("hash_type", string(master.config.hash_type.as_str()))]), stat)
        }
        Err(e) => {
            tracing::error!("cannot hash {}: {e}", found.real.display());
            (Value::Map(Vec::new()), stat)
        }
    }
}

/// `Fileserver._find_file`.
fn file_find(master: &Master, load: &Value) -> Value {
    let none = value::map([("path", string("")), ("rel", string(""))]);
    let Some(path) = get_str(load, "path").filter(|p| !p.is_empty()) else { return none };
    let saltenv = saltenv_of(load).unwrap_or_else(|| "base".to_owned());
    let Some(found) = find(master, path, &saltenv) else { return none };
    let mut out =
        vec![(string("path"), string(found.path.display().to_string())), (string("rel"), string(found.rel.as_str()))];
    if let Some(st) = stat_list(&found) {
        out.push((string("stat"), st));
    }
    out.push((string("back"), string("roots")));
    Value::Map(out)
}

/// `Fileserver.serve_file` / `roots.serve_file`.
fn serve_file(master: &Master, load: &Value) -> Value {
    let none = || value::map([("data", string("")), ("dest", string(""))]);
    let (Some(path), Some(loc), Some(saltenv)) = (get(load, "path"), get(load, "loc"), saltenv_of(load)) else {
        return none();
    };
    let Some(path) = as_str(path) else { return none() };
    let Some(loc) = loc.as_u64() else { return none() };
    let Some(found) = find(master, path, &saltenv) else { return none() };
    if !master.file_roots.serves(&saltenv, &found) {
        // Found through a `?saltenv=` query outside the request's saltenv:
        // Salt names it but sends no data.
        return value::map([("data", string("")), ("dest", string(found.rel.as_str()))]);
    }
    match crate::roots::read_chunk(&found.real, loc, master.config.file_buffer_size) {
        Ok(data) => value::map([("data", value::bytes(data)), ("dest", string(found.rel.as_str()))]),
        Err(e) => {
            tracing::error!("cannot read {}: {e}", found.real.display());
            none()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_are_cached_for_the_configured_time_only() {
        let one = || Some(Lists { files: vec!["a".to_owned()], ..Lists::default() });
        let two = || Some(Lists { files: vec!["a".to_owned(), "b".to_owned()], ..Lists::default() });
        let kept = ListCache::new(Duration::from_secs(3600));
        assert_eq!(kept.get("base", one).map(|l| l.files.len()), Some(1));
        assert_eq!(kept.get("base", two).map(|l| l.files.len()), Some(1));
        assert_eq!(kept.get("dev", || None), None);
        assert_eq!(kept.get("dev", two).map(|l| l.files.len()), Some(2));
        let off = ListCache::new(Duration::ZERO);
        assert_eq!(off.get("base", one).map(|l| l.files.len()), Some(1));
        assert_eq!(off.get("base", two).map(|l| l.files.len()), Some(2));
    }
}
