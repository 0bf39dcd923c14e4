//! The minion configuration, read like `salt.config.minion_config(CONFDIR/minion)`.
//!
//! Mirrors `config/__init__.py` of Salt 3008.5:
//!
//! - `load_config` / `_read_conf_file` / `include_config`: the generic machinery of
//!   [`salt_core::config`] (the main file is YAML; an empty file is `{}`, a non-mapping document is
//!   an error; a non-string `id` becomes its `str()`).
//! - `include_config`: `default_include` (default `minion.d/*.conf`, relative to the main file's
//!   directory) and then `include` (string or list, `~` expanded, globbed, sorted) are read; the
//!   included files are merged into each other recursively (`dictupdate.update(…, merge_lists=True)`)
//!   and the result **replaces** top-level keys of the main file.
//! - `DEFAULT_MINION_OPTS` for every key this crate interprets (see [`Config`]).
//! - `apply_minion_config`: `log_dir` adjusts `log_file`; the id comes from the file, else from
//!   the cached `ROOT_DIR/etc/salt/minion_id`, else `generate_minion_id()` (`get_id`), then
//!   `minion_id_lowercase`, `minion_id_remove_domain`, `append_domain`; `append_minionid_config_dirs`;
//!   a `sock_dir` longer than `cachedir` + 10 becomes `cachedir/.salt-unix` (compared before
//!   re-rooting, so a short relative `cachedir` triggers it); an empty `extension_modules` becomes
//!   `cachedir/extmods`; then `prepend_root_dir` re-roots `pki_dir`, `cachedir`,
//!   `sock_dir`, `extension_modules`, `pidfile` and, unless they are URIs, `log_file` and
//!   `key_logfile` under `root_dir`; the algorithms are validated.
//!
//! Differences, on purpose: a malformed included file is an error here (Salt logs it and ignores
//! the file), and a value of the wrong type for an option this crate interprets is an error naming
//! the option and the file (Salt logs a warning and keeps the value). Keys this crate does not
//! interpret are kept in [`Config::extra`] and logged at debug level.

use std::path::{Path, PathBuf};

use salt_core::config::{basename, dirname, has_url_scheme, join, prepend_root_dir, Opts};
pub use salt_core::config::{ConfigError, DEFAULT_ROOT_DIR};
use salt_core::value::{py_str, string, Value};
use salt_proto::{EncAlgo, SigAlgo};

/// The `master` option: one address, or a list (multi-master / failover).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Master {
    /// `master: salt`
    One(String),
    /// `master: [a, b]`
    List(Vec<String>),
}

impl Master {
    /// The addresses in order.
    pub fn addresses(&self) -> Vec<String> {
        match self {
            Master::One(m) => vec![m.clone()],
            Master::List(l) => l.clone(),
        }
    }

    /// As Salt holds it in opts (a string or a list of strings).
    pub fn to_value(&self) -> Value {
        match self {
            Master::One(m) => string(m),
            Master::List(l) => salt_core::value::str_list(l),
        }
    }
}

/// The minion options this crate interprets, with Salt's names and defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Path of the main file (`CONFDIR/minion`), whether or not it exists.
    pub conf_file: PathBuf,
    /// `id`: from the file, the `minion_id` cache or the host name.
    pub id: String,
    /// `master` (default `"salt"`).
    pub master: Master,
    /// `master_port` (4506).
    pub master_port: u16,
    /// `publish_port`: not in Salt's minion defaults; when unset (or 4506) the port comes from the
    /// master's `_auth` reply (`channel/client.py`); see [`Config::publish_port_for`].
    pub publish_port: Option<u16>,
    /// `master_type` (`"str"`).
    pub master_type: String,
    /// `user` (default: the effective user).
    pub user: String,
    /// `root_dir` (`/`), as given.
    pub root_dir: PathBuf,
    /// `pki_dir` (`/etc/salt/pki/minion`), re-rooted.
    pub pki_dir: PathBuf,
    /// `cachedir` (`/var/cache/salt/minion`), re-rooted.
    pub cachedir: PathBuf,
    /// `sock_dir` (`/var/run/salt/minion`), re-rooted.
    pub sock_dir: PathBuf,
    /// `extension_modules` (`/var/cache/salt/minion/extmods`; `cachedir/extmods` if set empty), re-rooted.
    pub extension_modules: PathBuf,
    /// `pidfile` (`/var/run/salt-minion.pid`), re-rooted.
    pub pidfile: PathBuf,
    /// `log_file` (`/var/log/salt/minion`); a path (re-rooted) or a URI such as `udp://host:514`.
    pub log_file: String,
    /// `log_level` (`"warning"`).
    pub log_level: String,
    /// `log_level_logfile` (unset: same as `log_level`).
    pub log_level_logfile: Option<String>,
    /// `acceptance_wait_time` seconds (10).
    pub acceptance_wait_time: f64,
    /// `acceptance_wait_time_max` seconds (0: no backoff).
    pub acceptance_wait_time_max: f64,
    /// `recon_default` ms (1000).
    pub recon_default: f64,
    /// `recon_max` ms (10000).
    pub recon_max: f64,
    /// `recon_randomize` (true).
    pub recon_randomize: bool,
    /// `random_reauth_delay` seconds (10).
    pub random_reauth_delay: i64,
    /// `auth_timeout` seconds (5).
    pub auth_timeout: i64,
    /// `auth_tries` (7).
    pub auth_tries: i64,
    /// `auth_safemode` (false).
    pub auth_safemode: bool,
    /// `rejected_retry` (false).
    pub rejected_retry: bool,
    /// `tcp_keepalive` (true).
    pub tcp_keepalive: bool,
    /// `tcp_keepalive_idle` (300).
    pub tcp_keepalive_idle: f64,
    /// `tcp_keepalive_cnt` (-1: OS default).
    pub tcp_keepalive_cnt: f64,
    /// `tcp_keepalive_intvl` (-1: OS default).
    pub tcp_keepalive_intvl: f64,
    /// `zmq_filtering` (false).
    pub zmq_filtering: bool,
    /// `ipv6` (unset: try IPv6 then IPv4 when resolving the master).
    pub ipv6: Option<bool>,
    /// `grains`: static grains (a mapping).
    pub grains: Value,
    /// `encryption_algorithm` (`OAEP-SHA1`).
    pub encryption_algorithm: EncAlgo,
    /// `signing_algorithm` (`PKCS1v15-SHA1`).
    pub signing_algorithm: SigAlgo,
    /// `sign_pub_messages` (false).
    pub sign_pub_messages: bool,
    /// `keysize` (2048).
    pub keysize: i64,
    /// `transport` (`zeromq`).
    pub transport: String,
    /// `master_tries` (-1 on Linux: retry forever).
    pub master_tries: i64,
    /// `master_alive_interval` (0).
    pub master_alive_interval: i64,
    /// `ping_interval` minutes (0).
    pub ping_interval: i64,
    /// `retry_dns` seconds (30).
    pub retry_dns: f64,
    /// `return_retry_timer` (5).
    pub return_retry_timer: i64,
    /// `return_retry_timer_max` (10).
    pub return_retry_timer_max: i64,
    /// `return_retry_tries` (3).
    pub return_retry_tries: i64,
    /// `random_startup_delay` (0).
    pub random_startup_delay: i64,
    /// `cmd_safe` (true): when false, `cmd.*` default to `python_shell=True` even without a jid.
    pub cmd_safe: bool,
    /// Every other key of the files, in file order (not interpreted by this crate).
    pub extra: Vec<(String, Value)>,
}

/// Options of [`Config::load`] that do not come from files.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Use this id instead of the configured one (the CLI's `--id`).
    pub id_override: Option<String>,
    /// Write a generated id to `ROOT_DIR/etc/salt/minion_id` (`cache_minion_id=True`, as the
    /// salt-minion daemon does).
    pub cache_minion_id: bool,
}

/// Keys this crate reads into typed fields (others land in [`Config::extra`]).
const KNOWN: &[&str] = &[
    "conf_file",
    "id",
    "master",
    "master_port",
    "publish_port",
    "master_type",
    "user",
    "root_dir",
    "pki_dir",
    "cachedir",
    "sock_dir",
    "extension_modules",
    "pidfile",
    "log_file",
    "log_dir",
    "log_level",
    "log_level_logfile",
    "acceptance_wait_time",
    "acceptance_wait_time_max",
    "recon_default",
    "recon_max",
    "recon_randomize",
    "random_reauth_delay",
    "auth_timeout",
    "auth_tries",
    "auth_safemode",
    "rejected_retry",
    "tcp_keepalive",
    "tcp_keepalive_idle",
    "tcp_keepalive_cnt",
    "tcp_keepalive_intvl",
    "zmq_filtering",
    "ipv6",
    "grains",
    "encryption_algorithm",
    "signing_algorithm",
    "sign_pub_messages",
    "keysize",
    "transport",
    "master_tries",
    "master_alive_interval",
    "ping_interval",
    "retry_dns",
    "return_retry_timer",
    "return_retry_timer_max",
    "return_retry_tries",
    "random_startup_delay",
    "cmd_safe",
    "default_include",
    "include",
    "minion_id_caching",
    "minion_id_lowercase",
    "minion_id_remove_domain",
    "append_domain",
    "append_minionid_config_dirs",
    "key_logfile",
];

/// `get_id`: the cached id in `ROOT_DIR/etc/salt/minion_id`, else `generate_minion_id()`.
fn get_id(opts: &Opts, cache: bool) -> Result<String, ConfigError> {
    let root_dir = opts.string("root_dir", DEFAULT_ROOT_DIR)?;
    let id_cache = PathBuf::from(join(&join(&root_dir, "etc/salt"), "minion_id"));
    let caching = opts.boolean("minion_id_caching", true)?;
    if caching {
        if let Ok(text) = std::fs::read_to_string(&id_cache) {
            let first = text.lines().next().unwrap_or("").trim();
            let name = first.trim_start_matches('\u{feff}').to_string();
            if !name.is_empty() && name != "localhost" {
                tracing::debug!("Using cached minion ID from {}: {}", id_cache.display(), name);
                return Ok(name);
            }
        }
    }
    let mut id = crate::grains::host::generate_minion_id(&crate::grains::net::interfaces());
    if opts.boolean("minion_id_lowercase", false)? {
        id = id.to_lowercase();
    }
    match opts.get("minion_id_remove_domain") {
        Some(Value::Boolean(true)) => {
            if let Some((h, _)) = id.split_once('.') {
                id = h.to_string();
            }
        }
        Some(v @ Value::String(_)) => {
            let dom = py_str(v);
            let suffix = format!(".{}", dom.to_uppercase());
            if !dom.is_empty() && id.to_uppercase().ends_with(&suffix) {
                id.truncate(id.len() - dom.len() - 1);
            }
        }
        _ => {}
    }
    tracing::debug!("Found minion id from generate_minion_id(): {id}");
    if cache && caching {
        if let Some(dir) = id_cache.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        if let Err(e) = std::fs::write(&id_cache, &id) {
            tracing::error!("Could not cache minion ID: {e}");
        }
    }
    Ok(id)
}

impl Config {
    /// `minion_config(CONFDIR/minion)` with Salt's defaults, include files and path re-rooting.
    pub fn load(conf_dir: impl AsRef<Path>, options: &LoadOptions) -> Result<Self, ConfigError> {
        Self::load_file(conf_dir.as_ref().join("minion"), options)
    }

    /// Like [`Config::load`] for an explicit main-file path.
    pub fn load_file(path: impl AsRef<Path>, options: &LoadOptions) -> Result<Self, ConfigError> {
        let path = path.as_ref().to_path_buf();
        let mut opts = Opts::load(&path, "minion.d/*.conf")?;
        if let Some(id) = &options.id_override {
            opts.set("id", string(id), "--id");
        }
        Self::apply(opts, path, options)
    }

    fn apply(mut opts: Opts, conf_file: PathBuf, options: &LoadOptions) -> Result<Self, ConfigError> {
        let default_log_file = "/var/log/salt/minion";
        // _adjust_log_file_override
        if let Some(log_dir) = opts.get("log_dir").filter(|v| salt_core::value::truthy(v)).cloned() {
            let log_dir = py_str(&log_dir);
            let origin = opts.origin_of("log_dir");
            match opts.get("log_file").filter(|v| salt_core::value::truthy(v)).cloned() {
                Some(lf) => {
                    let lf = py_str(&lf);
                    if !lf.starts_with('/') {
                        opts.set("log_file", string(join(&log_dir, &lf)), &origin);
                    }
                }
                None => opts.set("log_file", string(join(&log_dir, basename(default_log_file))), &origin),
            }
        }

        let id = match opts.get("id").filter(|v| salt_core::value::truthy(v)) {
            Some(v) => py_str(v),
            None => get_id(&opts, options.cache_minion_id)?,
        };
        let id = match opts.opt_string("append_domain")? {
            Some(dom) if !id.ends_with(&dom) && !id.ends_with('.') => format!("{id}.{dom}"),
            _ => id,
        };

        let mut pki_dir = opts.string("pki_dir", "/etc/salt/pki/minion")?;
        let mut cachedir = opts.string("cachedir", "/var/cache/salt/minion")?;
        let mut extension_modules = match opts.get("extension_modules") {
            None => "/var/cache/salt/minion/extmods".to_string(),
            Some(Value::Nil) => String::new(),
            Some(_) => opts.string("extension_modules", "")?,
        };
        let mut pidfile = opts.string("pidfile", "/var/run/salt-minion.pid")?;
        let mut sock_dir = opts.string("sock_dir", "/var/run/salt/minion")?;
        if let Some(Value::Array(dirs)) = opts.get("append_minionid_config_dirs") {
            for d in dirs.iter().map(py_str) {
                match d.as_str() {
                    "pki_dir" => pki_dir = join(&pki_dir, &id),
                    "cachedir" => cachedir = join(&cachedir, &id),
                    "extension_modules" if !extension_modules.is_empty() => {
                        extension_modules = join(&extension_modules, &id)
                    }
                    "pidfile" => pidfile = join(&join(&join(dirname(&pidfile), "salt"), &id), basename(&pidfile)),
                    _ => {}
                }
            }
        }
        if sock_dir.len() > cachedir.len() + 10 {
            sock_dir = join(&cachedir, ".salt-unix");
        }
        if extension_modules.is_empty() {
            extension_modules = join(&cachedir, "extmods");
        }
        let root_dir = opts.string("root_dir", DEFAULT_ROOT_DIR)?;
        let reroot = |p: &str| prepend_root_dir(&root_dir, p);
        let log_file_raw = opts.string("log_file", default_log_file)?;
        let log_file = if has_url_scheme(&log_file_raw) { log_file_raw } else { reroot(&log_file_raw) };

        let master = match opts.get("master") {
            None => Master::One("salt".into()),
            Some(Value::Array(items)) => Master::List(items.iter().map(py_str).collect()),
            Some(v @ (Value::Map(_) | Value::Nil | Value::Binary(_))) => {
                return Err(opts.invalid("master", v, "a string or a list is required"))
            }
            Some(v) => Master::One(py_str(v)),
        };
        let grains = match opts.get("grains") {
            None | Some(Value::Nil) => Value::Map(Vec::new()),
            Some(v @ Value::Map(_)) => v.clone(),
            Some(v) => return Err(opts.invalid("grains", v, "a mapping is required")),
        };
        let encryption_algorithm = opts.enc_algo("encryption_algorithm", EncAlgo::OaepSha1)?;
        let signing_algorithm = opts.sig_algo("signing_algorithm", SigAlgo::Pkcs1v15Sha1)?;

        for (k, _) in opts.entries() {
            if !KNOWN.contains(&k.as_str()) {
                tracing::debug!(
                    "config option '{k}' (from {}) is not interpreted by this minion; ignored",
                    opts.origin_of(k)
                );
            }
        }
        let extra: Vec<(String, Value)> =
            opts.entries().iter().filter(|(k, _)| !KNOWN.contains(&k.as_str())).cloned().collect();

        Ok(Config {
            conf_file,
            id,
            master,
            master_port: opts.port("master_port", Some(4506))?.unwrap_or(4506),
            publish_port: opts.port("publish_port", None)?,
            master_type: opts.string("master_type", "str")?,
            user: match opts.opt_string("user")? {
                Some(u) => u,
                None => crate::grains::current_user(),
            },
            pki_dir: reroot(&pki_dir).into(),
            cachedir: reroot(&cachedir).into(),
            sock_dir: reroot(&sock_dir).into(),
            extension_modules: reroot(&extension_modules).into(),
            pidfile: reroot(&pidfile).into(),
            root_dir: root_dir.clone().into(),
            log_file,
            log_level: opts.string("log_level", "warning")?,
            log_level_logfile: opts.opt_string("log_level_logfile")?,
            acceptance_wait_time: opts.float("acceptance_wait_time", 10.0)?,
            acceptance_wait_time_max: opts.float("acceptance_wait_time_max", 0.0)?,
            recon_default: opts.float("recon_default", 1000.0)?,
            recon_max: opts.float("recon_max", 10000.0)?,
            recon_randomize: opts.boolean("recon_randomize", true)?,
            random_reauth_delay: opts.int("random_reauth_delay", 10)?,
            auth_timeout: opts.int("auth_timeout", 5)?,
            auth_tries: opts.int("auth_tries", 7)?,
            auth_safemode: opts.boolean("auth_safemode", false)?,
            rejected_retry: opts.boolean("rejected_retry", false)?,
            tcp_keepalive: opts.boolean("tcp_keepalive", true)?,
            tcp_keepalive_idle: opts.float("tcp_keepalive_idle", 300.0)?,
            tcp_keepalive_cnt: opts.float("tcp_keepalive_cnt", -1.0)?,
            tcp_keepalive_intvl: opts.float("tcp_keepalive_intvl", -1.0)?,
            zmq_filtering: opts.boolean("zmq_filtering", false)?,
            ipv6: opts.opt_bool("ipv6")?,
            grains,
            encryption_algorithm,
            signing_algorithm,
            sign_pub_messages: opts.boolean("sign_pub_messages", false)?,
            keysize: opts.int("keysize", 2048)?,
            transport: opts.string("transport", "zeromq")?,
            master_tries: opts.int("master_tries", -1)?,
            master_alive_interval: opts.int("master_alive_interval", 0)?,
            ping_interval: opts.int("ping_interval", 0)?,
            retry_dns: opts.float("retry_dns", 30.0)?,
            return_retry_timer: opts.int("return_retry_timer", 5)?,
            return_retry_timer_max: opts.int("return_retry_timer_max", 10)?,
            return_retry_tries: opts.int("return_retry_tries", 3)?,
            random_startup_delay: opts.int("random_startup_delay", 0)?,
            cmd_safe: opts.boolean("cmd_safe", true)?,
            extra,
        })
    }

    /// The effective log level of the log file (`log_level_logfile`, else `log_level`).
    pub fn logfile_level(&self) -> &str {
        self.log_level_logfile.as_deref().unwrap_or(&self.log_level)
    }

    /// The publish port to connect to, given the `publish_port` of the master's `_auth` reply
    /// (`channel/client.py`: a configured port other than 4506 wins, else the master's).
    pub fn publish_port_for(&self, auth_reply_port: u16) -> u16 {
        match self.publish_port {
            Some(p) if p != 4506 => p,
            _ => auth_reply_port,
        }
    }

    /// A key of [`Config::extra`].
    pub fn extra(&self, key: &str) -> Option<&Value> {
        self.extra.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// All options as Salt names them (typed fields then extras), e.g. for printing as JSON.
    pub fn to_value(&self) -> Value {
        let p = |x: &Path| string(x.to_string_lossy());
        let f = Value::F64;
        let opt = |o: &Option<String>| o.as_ref().map_or(Value::Nil, string);
        let mut m = vec![
            ("conf_file", p(&self.conf_file)),
            ("id", string(&self.id)),
            ("master", self.master.to_value()),
            ("master_port", Value::from(self.master_port)),
            ("publish_port", self.publish_port.map_or(Value::Nil, Value::from)),
            ("master_type", string(&self.master_type)),
            ("user", string(&self.user)),
            ("root_dir", p(&self.root_dir)),
            ("pki_dir", p(&self.pki_dir)),
            ("cachedir", p(&self.cachedir)),
            ("sock_dir", p(&self.sock_dir)),
            ("extension_modules", p(&self.extension_modules)),
            ("pidfile", p(&self.pidfile)),
            ("log_file", string(&self.log_file)),
            ("log_level", string(&self.log_level)),
            ("log_level_logfile", opt(&self.log_level_logfile)),
            ("acceptance_wait_time", f(self.acceptance_wait_time)),
            ("acceptance_wait_time_max", f(self.acceptance_wait_time_max)),
            ("recon_default", f(self.recon_default)),
            ("recon_max", f(self.recon_max)),
            ("recon_randomize", Value::Boolean(self.recon_randomize)),
            ("random_reauth_delay", Value::from(self.random_reauth_delay)),
            ("auth_timeout", Value::from(self.auth_timeout)),
            ("auth_tries", Value::from(self.auth_tries)),
            ("auth_safemode", Value::Boolean(self.auth_safemode)),
            ("rejected_retry", Value::Boolean(self.rejected_retry)),
            ("tcp_keepalive", Value::Boolean(self.tcp_keepalive)),
            ("tcp_keepalive_idle", f(self.tcp_keepalive_idle)),
            ("tcp_keepalive_cnt", f(self.tcp_keepalive_cnt)),
            ("tcp_keepalive_intvl", f(self.tcp_keepalive_intvl)),
            ("zmq_filtering", Value::Boolean(self.zmq_filtering)),
            ("ipv6", self.ipv6.map_or(Value::Nil, Value::Boolean)),
            ("grains", self.grains.clone()),
            ("encryption_algorithm", string(self.encryption_algorithm.as_str())),
            ("signing_algorithm", string(self.signing_algorithm.as_str())),
            ("sign_pub_messages", Value::Boolean(self.sign_pub_messages)),
            ("keysize", Value::from(self.keysize)),
            ("transport", string(&self.transport)),
            ("master_tries", Value::from(self.master_tries)),
            ("master_alive_interval", Value::from(self.master_alive_interval)),
            ("ping_interval", Value::from(self.ping_interval)),
            ("retry_dns", f(self.retry_dns)),
            ("return_retry_timer", Value::from(self.return_retry_timer)),
            ("return_retry_timer_max", Value::from(self.return_retry_timer_max)),
            ("return_retry_tries", Value::from(self.return_retry_tries)),
            ("random_startup_delay", Value::from(self.random_startup_delay)),
            ("cmd_safe", Value::Boolean(self.cmd_safe)),
        ]
        .into_iter()
        .map(|(k, v)| (string(k), v))
        .collect::<Vec<_>>();
        m.extend(self.extra.iter().map(|(k, v)| (string(k), v.clone())));
        Value::Map(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_port_rule() {
        let dir = tempfile::tempdir().map_err(|e| e.to_string());
        let Ok(dir) = dir else { return };
        let _ = std::fs::write(dir.path().join("minion"), "id: a\npublish_port: 4506\n");
        let c = Config::load(dir.path(), &LoadOptions::default());
        let Ok(c) = c else { panic!("{c:?}") };
        assert_eq!(c.publish_port_for(4505), 4505);
        let _ = std::fs::write(dir.path().join("minion"), "id: a\npublish_port: 14505\n");
        let c = Config::load(dir.path(), &LoadOptions::default());
        let Ok(c) = c else { panic!("{c:?}") };
        assert_eq!(c.publish_port_for(4505), 14505);
    }

    #[test]
    fn errors_name_the_file() {
        let Ok(dir) = tempfile::tempdir() else { return };
        let _ = std::fs::write(dir.path().join("minion"), "id: a\nmaster: [unclosed\n");
        let e = Config::load(dir.path(), &LoadOptions::default()).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("minion") && e.contains("Error parsing configuration file"), "{e}");
        let _ = std::fs::write(dir.path().join("minion"), "- a list\n");
        let e = Config::load(dir.path(), &LoadOptions::default()).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("conf should be a document"), "{e}");
        let _ = std::fs::create_dir(dir.path().join("minion.d"));
        let _ = std::fs::write(dir.path().join("minion"), "id: a\n");
        let _ = std::fs::write(dir.path().join("minion.d/x.conf"), "recon_randomize: 'maybe'\n");
        let e = Config::load(dir.path(), &LoadOptions::default()).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("recon_randomize") && e.contains("x.conf"), "{e}");
    }

    #[test]
    fn missing_file_gives_defaults() {
        let Ok(dir) = tempfile::tempdir() else { return };
        let c = Config::load(dir.path(), &LoadOptions { id_override: Some("m".into()), cache_minion_id: false });
        let Ok(c) = c else { panic!("{c:?}") };
        assert_eq!(c.id, "m");
        assert_eq!(c.master, Master::One("salt".into()));
        assert_eq!(c.master_port, 4506);
        assert_eq!(c.pki_dir, PathBuf::from("/etc/salt/pki/minion"));
        assert_eq!(c.sock_dir, PathBuf::from("/var/run/salt/minion"));
        assert_eq!(c.acceptance_wait_time, 10.0);
        assert!(c.recon_randomize);
    }
}
