//! The master's configuration: Salt's `master` file and `master.d/*.conf`
//! with the keys and defaults of `DEFAULT_MASTER_OPTS` (salt/config), paths
//! re-rooted under `root_dir` as `apply_master_config` does.
//!
//! Keys this master does not interpret are kept in [`MasterConfig::extra`]
//! and otherwise ignored, as Salt ignores unknown keys. A value of the
//! wrong type is an error naming the key and the file that set it.

use std::path::{Path, PathBuf};

use salt_core::config::{has_url_scheme, join, prepend_root_dir, ConfigError, Opts, DEFAULT_ROOT_DIR};
use salt_proto::Value;

/// `salt.crypt.VALID_SIGNING_ALGORITHMS`.
pub const VALID_SIGNING_ALGORITHMS: &[&str] = &["PKCS1v15-SHA1", "PKCS1v15-SHA224"];

/// The master's options.
#[derive(Debug, Clone)]
pub struct MasterConfig {
    /// The main configuration file (it need not exist).
    pub conf_file: PathBuf,
    /// `id` (default `<hostname>_master`): written into `.dfn` by `salt-key`.
    pub id: String,
    /// `user` the master runs as (default: the current user).
    pub user: String,
    /// `interface` to bind (default `0.0.0.0`).
    pub interface: String,
    /// `ipv6`: bind IPv6 as well.
    pub ipv6: bool,
    /// `publish_port` (4505).
    pub publish_port: u16,
    /// `ret_port` (4506).
    pub ret_port: u16,
    /// `root_dir` (`/`).
    pub root_dir: PathBuf,
    /// `pki_dir` (`/etc/salt/pki/master`, re-rooted).
    pub pki_dir: PathBuf,
    /// `cachedir` (`/var/cache/salt/master`, re-rooted).
    pub cachedir: PathBuf,
    /// `sock_dir` (`/var/run/salt/master`, re-rooted).
    pub sock_dir: PathBuf,
    /// `pidfile` (`/var/run/salt-master.pid`, re-rooted).
    pub pidfile: PathBuf,
    /// `log_file` (`/var/log/salt/master`, re-rooted unless a URL).
    pub log_file: String,
    /// `log_level` (`warning`).
    pub log_level: String,
    /// `log_level_logfile` (defaults to `log_level`).
    pub log_level_logfile: Option<String>,
    /// `worker_threads` (5): MWorkers of the `default` pool.
    pub worker_threads: usize,
    /// `auto_accept` (False).
    pub auto_accept: bool,
    /// `autosign_file`.
    pub autosign_file: Option<PathBuf>,
    /// `autoreject_file`.
    pub autoreject_file: Option<PathBuf>,
    /// `autosign_grains_dir`: files named after grains, listing values that
    /// autosign a minion sending them in `autosign_grains` (unset: off).
    pub autosign_grains_dir: Option<PathBuf>,
    /// `autosign_timeout` minutes (120).
    pub autosign_timeout: i64,
    /// `permissive_pki_access` (False).
    pub permissive_pki_access: bool,
    /// `open_mode` (False): accept every key.
    pub open_mode: bool,
    /// `max_minions` (0 = no limit).
    pub max_minions: usize,
    /// `keep_jobs_seconds` (86400; from `keep_jobs` hours if that is set).
    pub keep_jobs_seconds: u64,
    /// `job_cache` (True).
    pub job_cache: bool,
    /// `zmq_filtering` (False).
    pub zmq_filtering: bool,
    /// `pub_hwm` (1000).
    pub pub_hwm: usize,
    /// `zmq_backlog` (1000).
    pub zmq_backlog: u32,
    /// `publish_session` seconds (86400): session key lifetime.
    pub publish_session: u64,
    /// `loop_interval` seconds (60): Maintenance period.
    pub loop_interval: u64,
    /// `keysize` (2048).
    pub keysize: usize,
    /// `sign_pub_messages` (True).
    pub sign_pub_messages: bool,
    /// `publish_signing_algorithm` (`PKCS1v15-SHA1`).
    pub publish_signing_algorithm: String,
    /// `minimum_auth_version` (3).
    pub minimum_auth_version: i64,
    /// `request_server_ttl` seconds (0 = off).
    pub request_server_ttl: i64,
    /// `minion_data_cache` (True).
    pub minion_data_cache: bool,
    /// `minion_data_cache_events` (True).
    pub minion_data_cache_events: bool,
    /// `auth_events` (True).
    pub auth_events: bool,
    /// `rotate_aes_key` (True).
    pub rotate_aes_key: bool,
    /// `ping_on_rotate` (False).
    pub ping_on_rotate: bool,
    /// `tcp_keepalive` (True) and its idle / count / interval (-1 = OS default).
    pub tcp_keepalive: bool,
    /// `tcp_keepalive_idle`.
    pub tcp_keepalive_idle: i64,
    /// `tcp_keepalive_cnt`.
    pub tcp_keepalive_cnt: i64,
    /// `tcp_keepalive_intvl`.
    pub tcp_keepalive_intvl: i64,
    /// `file_roots` (`{base: [/srv/salt]}`), for the file server hook.
    pub file_roots: Value,
    /// `pillar_roots` (`{base: [/srv/pillar]}`), for the pillar hook.
    pub pillar_roots: Value,
    /// `nodegroups` (`{}`).
    pub nodegroups: Value,
    /// `file_buffer_size` (1 MiB): the chunk `_serve_file` sends.
    pub file_buffer_size: usize,
    /// `hash_type` (`sha256`) of `_file_hash`.
    pub hash_type: String,
    /// `fileserver_followsymlinks` (True): follow symlinks while listing
    /// (only those that stay inside their root, see `roots.rs`).
    pub fileserver_followsymlinks: bool,
    /// `fileserver_ignoresymlinks` (False): leave symlinks out entirely.
    pub fileserver_ignoresymlinks: bool,
    /// `file_ignore_regex` (`[]`).
    pub file_ignore_regex: Vec<String>,
    /// `file_ignore_glob` (`[]`).
    pub file_ignore_glob: Vec<String>,
    /// `fileserver_backend` (`[roots]`): only `roots` is served.
    pub fileserver_backend: Vec<String>,
    /// `fileserver_list_cache_time` seconds (20): how long file lists are kept.
    pub fileserver_list_cache_time: u64,
    /// The options `_master_opts` hands a minion, in Salt's order
    /// (`top_file_merging_strategy` … `jinja_trim_blocks`), type-checked.
    pub state_opts: Vec<(&'static str, Value)>,
    /// `pillarenv` (None).
    pub pillarenv: Option<String>,
    /// `pillarenv_from_saltenv` (False).
    pub pillarenv_from_saltenv: bool,
    /// `pillar_source_merging_strategy` (`smart`).
    pub pillar_source_merging_strategy: String,
    /// `pillar_merge_lists` (False).
    pub pillar_merge_lists: bool,
    /// `pillar_includes_override_sls` (False).
    pub pillar_includes_override_sls: bool,
    /// `pillar_safe_render_error` (True).
    pub pillar_safe_render_error: bool,
    /// `max_request_size`: largest request accepted on `ret_port` (not a
    /// Salt option; 64 MiB, above Salt's `file_recv_max_size` of 100 MB
    /// chunks).
    pub max_request_size: u64,
    /// `auth_stale_after` seconds (not a Salt option; 5 = a minion's default
    /// `auth_timeout`, 0 = never): an `_auth` request that waited longer
    /// than this in the request queue is answered `"bad load"` without
    /// being processed — its minion has given up on it and sent another,
    /// and signing it anyway is what turns a sign-in storm into a collapse.
    pub auth_stale_after: u64,
    /// `auth_backoff_after` seconds (not a Salt option; 2, 0 = off): once
    /// the oldest queued `_auth` waited half this long the master serves
    /// `_auth` newest-first, and one that waited this long is answered
    /// `"bad load"` unsigned, which makes a minion wait
    /// `acceptance_wait_time` before it signs in again
    /// ([`crate::reqqueue`]). Takes over from `auth_stale_after` when set.
    pub auth_backoff_after: u64,
    /// Every key of the files this master does not interpret.
    pub extra: Vec<(String, Value)>,
}

/// The keys [`MasterConfig::load`] interprets; others land in `extra`.
const KNOWN: &[&str] = &[
    "id",
    "user",
    "interface",
    "ipv6",
    "publish_port",
    "ret_port",
    "root_dir",
    "pki_dir",
    "cachedir",
    "sock_dir",
    "pidfile",
    "log_file",
    "log_level",
    "log_level_logfile",
    "worker_threads",
    "auto_accept",
    "autosign_file",
    "autoreject_file",
    "autosign_timeout",
    "permissive_pki_access",
    "open_mode",
    "max_minions",
    "keep_jobs",
    "keep_jobs_seconds",
    "job_cache",
    "zmq_filtering",
    "pub_hwm",
    "zmq_backlog",
    "publish_session",
    "loop_interval",
    "keysize",
    "sign_pub_messages",
    "publish_signing_algorithm",
    "minimum_auth_version",
    "request_server_ttl",
    "minion_data_cache",
    "minion_data_cache_events",
    "auth_events",
    "rotate_aes_key",
    "ping_on_rotate",
    "tcp_keepalive",
    "tcp_keepalive_idle",
    "tcp_keepalive_cnt",
    "tcp_keepalive_intvl",
    "file_roots",
    "pillar_roots",
    "nodegroups",
    "file_buffer_size",
    "hash_type",
    "fileserver_followsymlinks",
    "fileserver_ignoresymlinks",
    "file_ignore_regex",
    "file_ignore_glob",
    "fileserver_backend",
    "fileserver_list_cache_time",
    "top_file_merging_strategy",
    "env_order",
    "default_top",
    "renderer",
    "failhard",
    "state_top",
    "state_top_saltenv",
    "state_auto_order",
    "state_events",
    "state_aggregate",
    "jinja_env",
    "jinja_sls_env",
    "jinja_lstrip_blocks",
    "jinja_trim_blocks",
    "pillarenv",
    "pillarenv_from_saltenv",
    "pillar_source_merging_strategy",
    "pillar_merge_lists",
    "pillar_includes_override_sls",
    "pillar_safe_render_error",
    "max_request_size",
    "auth_stale_after",
    "auth_backoff_after",
    "default_include",
    "include",
];

impl MasterConfig {
    /// `master_config(CONFDIR/master)`: the `master` file, then
    /// `master.d/*.conf` (or `default_include`) and `include`, over Salt's
    /// defaults, paths re-rooted under `root_dir`.
    pub fn load(conf_dir: &Path) -> Result<Self, ConfigError> {
        let path = conf_dir.join("master");
        let opts = Opts::load(&path, "master.d/*.conf")?;
        Self::from_opts(&opts, path)
    }

    /// Build from merged options (see [`MasterConfig::load`]).
    pub fn from_opts(opts: &Opts, conf_file: PathBuf) -> Result<Self, ConfigError> {
        let root_dir = opts.string("root_dir", DEFAULT_ROOT_DIR)?;
        let mut c = MasterConfig::defaults(Path::new(&root_dir));
        c.conf_file = conf_file;
        let reroot = |p: String| PathBuf::from(prepend_root_dir(&root_dir, &p));
        let cachedir = opts.string("cachedir", "/var/cache/salt/master")?;
        let mut sock_dir = opts.string("sock_dir", "/var/run/salt/master")?;
        if sock_dir.len() > cachedir.len() + 10 {
            sock_dir = join(&cachedir, ".salt-unix");
        }
        c.cachedir = reroot(cachedir);
        c.sock_dir = reroot(sock_dir);
        c.pki_dir = reroot(opts.string("pki_dir", "/etc/salt/pki/master")?);
        c.pidfile = reroot(opts.string("pidfile", "/var/run/salt-master.pid")?);
        let log_file = opts.string("log_file", "/var/log/salt/master")?;
        c.log_file = if has_url_scheme(&log_file) { log_file } else { prepend_root_dir(&root_dir, &log_file) };
        c.autosign_file = Some(reroot(opts.string("autosign_file", "/etc/salt/autosign.conf")?));
        c.autoreject_file = Some(reroot(opts.string("autoreject_file", "/etc/salt/autoreject.conf")?));
        c.autosign_grains_dir = opts.opt_string("autosign_grains_dir")?.map(reroot);
        if let Some(id) = opts.opt_string("id")?.filter(|s| !s.is_empty()) {
            c.id = id;
        }
        if let Some(user) = opts.opt_string("user")? {
            c.user = user;
        }
        c.interface = opts.string("interface", &c.interface)?;
        c.ipv6 = opts.opt_bool("ipv6")?.unwrap_or(false);
        c.publish_port = opts.port("publish_port", Some(4505))?.unwrap_or(4505);
        c.ret_port = opts.port("ret_port", Some(4506))?.unwrap_or(4506);
        c.log_level = opts.string("log_level", "warning")?;
        c.log_level_logfile = opts.opt_string("log_level_logfile")?;
        let count = |key: &str, default: i64, min: i64| -> Result<i64, ConfigError> {
            let n = opts.int(key, default)?;
            if n < min {
                let v = opts.get(key).cloned().unwrap_or(Value::Nil);
                return Err(opts.invalid(key, &v, &format!("must be at least {min}")));
            }
            Ok(n)
        };
        let usize_of = |n: i64| usize::try_from(n).unwrap_or(usize::MAX);
        let u64_of = |n: i64| u64::try_from(n).unwrap_or(0);
        c.worker_threads = usize_of(count("worker_threads", 5, 1)?);
        c.auto_accept = opts.boolean("auto_accept", false)?;
        c.autosign_timeout = opts.int("autosign_timeout", 120)?;
        c.permissive_pki_access = opts.boolean("permissive_pki_access", false)?;
        c.open_mode = opts.boolean("open_mode", false)?;
        c.max_minions = usize_of(count("max_minions", 0, 0)?);
        // salt.utils.job.get_keep_jobs_seconds: the deprecated `keep_jobs`
        // (hours) wins when set to something else than 24 and
        // keep_jobs_seconds is left at its default.
        let keep_seconds = count("keep_jobs_seconds", 86_400, 0)?;
        let keep_hours = count("keep_jobs", 24, 0)?;
        c.keep_jobs_seconds = if keep_hours != 24 && keep_seconds == 86_400 {
            u64_of(keep_hours.saturating_mul(3600))
        } else {
            u64_of(keep_seconds)
        };
        c.job_cache = opts.boolean("job_cache", true)?;
        c.zmq_filtering = opts.boolean("zmq_filtering", false)?;
        c.pub_hwm = usize_of(count("pub_hwm", 1000, 0)?);
        c.zmq_backlog = u32::try_from(count("zmq_backlog", 1000, 1)?).unwrap_or(u32::MAX);
        c.publish_session = u64_of(count("publish_session", 86_400, 0)?);
        c.loop_interval = u64_of(count("loop_interval", 60, 1)?);
        c.keysize = usize_of(count("keysize", 2048, 1024)?);
        c.sign_pub_messages = opts.boolean("sign_pub_messages", true)?;
        c.publish_signing_algorithm = opts.string("publish_signing_algorithm", "PKCS1v15-SHA1")?;
        if !VALID_SIGNING_ALGORITHMS.contains(&c.publish_signing_algorithm.as_str()) {
            return Err(opts.invalid(
                "publish_signing_algorithm",
                &Value::from(c.publish_signing_algorithm.as_str()),
                &format!("Please specify one of {}", VALID_SIGNING_ALGORITHMS.join(",")),
            ));
        }
        c.minimum_auth_version = opts.int("minimum_auth_version", 3)?;
        c.request_server_ttl = opts.int("request_server_ttl", 0)?;
        c.minion_data_cache = opts.boolean("minion_data_cache", true)?;
        c.minion_data_cache_events = opts.boolean("minion_data_cache_events", true)?;
        c.auth_events = opts.boolean("auth_events", true)?;
        c.rotate_aes_key = opts.boolean("rotate_aes_key", true)?;
        c.ping_on_rotate = opts.boolean("ping_on_rotate", false)?;
        c.tcp_keepalive = opts.boolean("tcp_keepalive", true)?;
        c.tcp_keepalive_idle = opts.int("tcp_keepalive_idle", 300)?;
        c.tcp_keepalive_cnt = opts.int("tcp_keepalive_cnt", -1)?;
        c.tcp_keepalive_intvl = opts.int("tcp_keepalive_intvl", -1)?;
        let mapping = |key: &str, default: Value| -> Result<Value, ConfigError> {
            match opts.get(key) {
                None | Some(Value::Nil) => Ok(default),
                Some(v @ Value::Map(_)) => Ok(v.clone()),
                Some(v) => Err(opts.invalid(key, v, "a mapping is required")),
            }
        };
        c.file_roots = mapping("file_roots", c.file_roots.clone())?;
        c.pillar_roots = mapping("pillar_roots", c.pillar_roots.clone())?;
        c.nodegroups = mapping("nodegroups", Value::Map(Vec::new()))?;
        c.max_request_size = u64_of(count("max_request_size", 64 << 20, 1024)?);
        c.file_buffer_size = usize_of(count("file_buffer_size", 1 << 20, 1)?);
        c.hash_type = opts.string("hash_type", "sha256")?.to_lowercase();
        if !crate::roots::HASH_TYPES.contains(&c.hash_type.as_str()) {
            let v = opts.get("hash_type").cloned().unwrap_or(Value::Nil);
            return Err(opts.invalid(
                "hash_type",
                &v,
                &format!("salt-master-rs supports {}", crate::roots::HASH_TYPES.join(", ")),
            ));
        }
        c.fileserver_followsymlinks = opts.boolean("fileserver_followsymlinks", true)?;
        c.fileserver_ignoresymlinks = opts.boolean("fileserver_ignoresymlinks", false)?;
        // (list, str): a single string is one pattern.
        let strings = |key: &str, default: &[&str]| -> Result<Vec<String>, ConfigError> {
            match opts.get(key) {
                None | Some(Value::Nil) => Ok(default.iter().map(|s| (*s).to_owned()).collect()),
                Some(Value::Array(a)) => a
                    .iter()
                    .map(|x| salt_proto::value::as_str(x).map(str::to_owned))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| opts.invalid(key, &Value::Array(a.clone()), "a list of strings is required")),
                Some(v) => salt_proto::value::as_str(v)
                    .map(|s| vec![s.to_owned()])
                    .ok_or_else(|| opts.invalid(key, v, "a string or a list of strings is required")),
            }
        };
        c.file_ignore_regex = strings("file_ignore_regex", &[])?;
        for re in &c.file_ignore_regex {
            if regex::Regex::new(re).is_err() {
                return Err(opts.invalid("file_ignore_regex", &Value::from(re.as_str()), "not a valid regex"));
            }
        }
        c.file_ignore_glob = strings("file_ignore_glob", &[])?;
        c.fileserver_backend = strings("fileserver_backend", &["roots"])?;
        for b in &c.fileserver_backend {
            if b != "roots" {
                tracing::warn!("fileserver_backend {b:?} is not supported by salt-master-rs; only roots is served");
            }
        }
        c.fileserver_list_cache_time = u64_of(count("fileserver_list_cache_time", 20, 0)?);
        c.state_opts = Vec::new();
        for (key, default) in state_opt_defaults() {
            let v = match opts.get(key) {
                None => default,
                Some(v) => {
                    let ok = match &default {
                        Value::Boolean(_) => matches!(v, Value::Boolean(_)),
                        Value::Array(_) => matches!(v, Value::Array(_)),
                        Value::Map(_) => matches!(v, Value::Map(_)),
                        // state_top_saltenv: (None, str)
                        Value::Nil => matches!(v, Value::Nil | Value::String(_)),
                        _ => matches!(v, Value::String(_)),
                    };
                    if !ok {
                        return Err(opts.invalid(
                            key,
                            v,
                            &format!("a value of type {} is required", salt_core::config::type_name(&default)),
                        ));
                    }
                    v.clone()
                }
            };
            c.state_opts.push((key, v));
        }
        c.pillarenv = opts.opt_string("pillarenv")?;
        c.pillarenv_from_saltenv = opts.boolean("pillarenv_from_saltenv", false)?;
        c.pillar_source_merging_strategy = opts.string("pillar_source_merging_strategy", "smart")?;
        c.pillar_merge_lists = opts.boolean("pillar_merge_lists", false)?;
        c.pillar_includes_override_sls = opts.boolean("pillar_includes_override_sls", false)?;
        c.pillar_safe_render_error = opts.boolean("pillar_safe_render_error", true)?;
        for key in ["ext_pillar", "master_tops"] {
            if opts.get(key).is_some_and(salt_proto::value::truthy) {
                tracing::warn!("{key} is not supported by salt-master-rs; ignored");
            }
        }
        c.auth_stale_after = u64_of(count("auth_stale_after", 5, 0)?);
        c.auth_backoff_after = u64_of(count("auth_backoff_after", 2, 0)?);
        for (k, _) in opts.entries() {
            if !KNOWN.contains(&k.as_str()) {
                tracing::debug!(
                    "config option '{k}' (from {}) is not interpreted by salt-master-rs; ignored",
                    opts.origin_of(k)
                );
            }
        }
        c.extra = opts.entries().iter().filter(|(k, _)| !KNOWN.contains(&k.as_str())).cloned().collect();
        Ok(c)
    }
}

/// The host name (`socket.gethostname()`), for the default `id`.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

/// The name of the user running this process.
pub fn current_user() -> String {
    let uid = rustix::process::getuid().as_raw();
    if let Ok(text) = std::fs::read_to_string("/etc/passwd") {
        for line in text.lines() {
            let mut f = line.split(':');
            let (Some(name), _, Some(id)) = (f.next(), f.next(), f.next()) else { continue };
            if id.parse::<u32>().ok() == Some(uid) {
                return name.to_owned();
            }
        }
    }
    if uid == 0 {
        "root".to_owned()
    } else {
        uid.to_string()
    }
}

impl MasterConfig {
    /// Salt's defaults with every path under `root_dir` (what a `master`
    /// file holding only `root_dir:` gives).
    pub fn defaults(root_dir: &Path) -> Self {
        let reroot = |p: &str| prepend_root(root_dir, p);
        let log_file = reroot("/var/log/salt/master").display().to_string();
        MasterConfig {
            conf_file: reroot("/etc/salt/master"),
            id: format!("{}_master", hostname()),
            user: current_user(),
            interface: "0.0.0.0".to_owned(),
            ipv6: false,
            publish_port: 4505,
            ret_port: 4506,
            root_dir: root_dir.to_path_buf(),
            pki_dir: reroot("/etc/salt/pki/master"),
            cachedir: reroot("/var/cache/salt/master"),
            sock_dir: reroot("/var/run/salt/master"),
            pidfile: reroot("/var/run/salt-master.pid"),
            log_file,
            log_level: "warning".to_owned(),
            log_level_logfile: None,
            worker_threads: 5,
            auto_accept: false,
            autosign_file: None,
            autoreject_file: None,
            autosign_grains_dir: None,
            autosign_timeout: 120,
            permissive_pki_access: false,
            open_mode: false,
            max_minions: 0,
            keep_jobs_seconds: 86_400,
            job_cache: true,
            zmq_filtering: false,
            pub_hwm: 1000,
            zmq_backlog: 1000,
            publish_session: 86_400,
            loop_interval: 60,
            keysize: 2048,
            sign_pub_messages: true,
            publish_signing_algorithm: "PKCS1v15-SHA1".to_owned(),
            minimum_auth_version: 3,
            request_server_ttl: 0,
            minion_data_cache: true,
            minion_data_cache_events: true,
            auth_events: true,
            rotate_aes_key: true,
            ping_on_rotate: false,
            tcp_keepalive: true,
            tcp_keepalive_idle: 300,
            tcp_keepalive_cnt: -1,
            tcp_keepalive_intvl: -1,
            file_roots: base_env(&reroot("/srv/salt")),
            pillar_roots: base_env(&reroot("/srv/pillar")),
            nodegroups: Value::Map(Vec::new()),
            file_buffer_size: 1 << 20,
            hash_type: "sha256".to_owned(),
            fileserver_followsymlinks: true,
            fileserver_ignoresymlinks: false,
            file_ignore_regex: Vec::new(),
            file_ignore_glob: Vec::new(),
            fileserver_backend: vec!["roots".to_owned()],
            fileserver_list_cache_time: 20,
            state_opts: state_opt_defaults(),
            pillarenv: None,
            pillarenv_from_saltenv: false,
            pillar_source_merging_strategy: "smart".to_owned(),
            pillar_merge_lists: false,
            pillar_includes_override_sls: false,
            pillar_safe_render_error: true,
            max_request_size: 64 << 20,
            auth_stale_after: 5,
            auth_backoff_after: 2,
            extra: Vec::new(),
        }
    }

    /// `opts["id"]` minus `_master`: the name of the master's key pair.
    pub fn master_key_name(&self) -> &str {
        crate::keys::master_key_name(&self.id)
    }

    /// The effective log file level.
    pub fn logfile_level(&self) -> &str {
        self.log_level_logfile.as_deref().unwrap_or(&self.log_level)
    }

    /// `tcp://{interface}:{port}` (brackets around an IPv6 address).
    pub fn tcp_endpoint(&self, port: u16) -> String {
        if self.interface.contains(':') {
            format!("tcp://[{}]:{port}", self.interface)
        } else {
            format!("tcp://{}:{port}", self.interface)
        }
    }

    /// `ipc://{sock_dir}/{name}`.
    pub fn ipc_endpoint(&self, name: &str) -> String {
        format!("ipc://{}", self.sock_dir.join(name).display())
    }
}

/// The `_master_opts` options and Salt's master defaults (`DEFAULT_MASTER_OPTS`).
fn state_opt_defaults() -> Vec<(&'static str, Value)> {
    let s = |v: &str| Value::from(v);
    vec![
        ("top_file_merging_strategy", s("merge")),
        ("env_order", Value::Array(Vec::new())),
        ("default_top", s("base")),
        ("renderer", s("jinja|yaml")),
        ("failhard", Value::Boolean(false)),
        ("state_top", s("top.sls")),
        ("state_top_saltenv", Value::Nil),
        ("state_auto_order", Value::Boolean(true)),
        ("state_events", Value::Boolean(false)),
        ("state_aggregate", Value::Boolean(false)),
        ("jinja_env", Value::Map(Vec::new())),
        ("jinja_sls_env", Value::Map(Vec::new())),
        ("jinja_lstrip_blocks", Value::Boolean(false)),
        ("jinja_trim_blocks", Value::Boolean(false)),
    ]
}

impl MasterConfig {
    /// One of the `_master_opts` options (`renderer`, `state_top`, ...).
    pub fn state_opt(&self, key: &str) -> Option<&Value> {
        self.state_opts.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }
}

fn base_env(dir: &Path) -> Value {
    Value::Map(vec![(Value::from("base"), Value::Array(vec![Value::from(dir.display().to_string())]))])
}

fn prepend_root(root_dir: &Path, path: &str) -> PathBuf {
    PathBuf::from(prepend_root_dir(&root_dir.display().to_string(), path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rerooted_defaults_and_errors() {
        let Ok(dir) = tempfile::tempdir() else { return };
        let root = dir.path().display().to_string();
        let _ = std::fs::create_dir_all(dir.path().join("master.d"));
        let _ = std::fs::write(
            dir.path().join("master"),
            format!("root_dir: {root}\nret_port: 41506\nunknown_key: 1\nworker_threads: 2\n"),
        );
        let _ = std::fs::write(dir.path().join("master.d/a.conf"), "auto_accept: True\n");
        let c = MasterConfig::load(dir.path());
        let Ok(c) = c else { panic!("{c:?}") };
        assert_eq!(c.ret_port, 41506);
        assert_eq!(c.publish_port, 4505);
        assert!(c.auto_accept);
        assert_eq!(c.worker_threads, 2);
        assert_eq!(c.pki_dir, dir.path().join("etc/salt/pki/master"));
        assert_eq!(c.sock_dir, dir.path().join("var/run/salt/master"));
        assert_eq!(c.extra.len(), 1);
        let _ = std::fs::write(dir.path().join("master.d/b.conf"), "worker_threads: many\n");
        let e = MasterConfig::load(dir.path()).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("worker_threads") && e.contains("b.conf"), "{e}");
    }
}
