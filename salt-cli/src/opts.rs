//! What the operator's tools read from the master's configuration (`client_config` of
//! `salt/config/__init__.py`): the master file, `master.d/*.conf`, `root_dir` re-rooting, and the
//! few derived values the CLI needs.

use std::path::{Path, PathBuf};

use crate::py::{py_str, Value};

/// The default configuration directory (`salt.syspaths.CONFIG_DIR`).
pub const DEFAULT_CONFIG_DIR: &str = "/etc/salt";

/// Why the configuration could not be read.
#[derive(Debug, thiserror::Error)]
pub enum OptsError {
    /// A file could not be read or parsed.
    #[error("{0}")]
    File(String),
    /// A key has a value of the wrong type.
    #[error("{file}: bad value for '{key}': {why}")]
    Value { file: String, key: String, why: String },
}

/// The master options the CLI tools use.
#[derive(Debug, Clone)]
pub struct MasterOpts {
    pub conf_file: PathBuf,
    pub root_dir: String,
    pub cachedir: PathBuf,
    pub sock_dir: PathBuf,
    pub pki_dir: PathBuf,
    /// `interface`, with `0.0.0.0` / `::` turned into the loopback address as `client_config` does.
    pub interface: String,
    pub ret_port: u16,
    pub ipc_mode: String,
    pub tcp_master_pub_port: u16,
    pub tcp_master_pull_port: u16,
    pub timeout: u64,
    pub gather_job_timeout: u64,
    /// `user` the master runs as (`.<user>_key` of a root CLI).
    pub user: String,
    /// The master id (`<hostname>_master` by default).
    pub id: String,
    pub hash_type: String,
    pub rotate_aes_key: bool,
    pub order_masters: bool,
    pub nodegroups: Value,
    /// Every key of the merged configuration, for what is not a field.
    pub raw: Vec<(String, Value)>,
}

/// The name of the user running this process (`salt.utils.user.get_user`).
pub fn current_user() -> String {
    let uid = rustix::process::geteuid().as_raw();
    if let Ok(passwd) = std::fs::read_to_string("/etc/passwd") {
        for line in passwd.lines() {
            let mut f = line.split(':');
            let (Some(name), _, Some(id)) = (f.next(), f.next(), f.next()) else { continue };
            if id.parse::<u32>().ok() == Some(uid) {
                return name.to_string();
            }
        }
    }
    std::env::var("USER").unwrap_or_else(|_| if uid == 0 { "root".into() } else { uid.to_string() })
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into())
}

impl MasterOpts {
    /// `client_config(CONFDIR/master)`: defaults, the file, its `master.d/*.conf`, then paths
    /// re-rooted under `root_dir`.
    pub fn load(conf_dir: &Path) -> Result<Self, OptsError> {
        let conf_file = conf_dir.join("master");
        let mut raw: Vec<(String, Value)> = Vec::new();
        let mut merge = |pairs: Vec<(String, Value)>| {
            for (k, v) in pairs {
                if let Some(slot) = raw.iter_mut().find(|(rk, _)| *rk == k) {
                    slot.1 = v;
                } else {
                    raw.push((k, v));
                }
            }
        };
        if conf_file.exists() {
            merge(minion::config::read_conf_file(&conf_file).map_err(|e| OptsError::File(e.to_string()))?);
        }
        let dot_d = conf_dir.join("master.d");
        if let Ok(rd) = std::fs::read_dir(&dot_d) {
            let mut files: Vec<PathBuf> =
                rd.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "conf")).collect();
            files.sort();
            for f in files {
                merge(minion::config::read_conf_file(&f).map_err(|e| OptsError::File(e.to_string()))?);
            }
        }
        let file = conf_file.display().to_string();
        let get = |k: &str| raw.iter().find(|(rk, _)| rk == k).map(|(_, v)| v);
        let string = |k: &str, d: &str| -> String {
            match get(k) {
                Some(Value::Nil) | None => d.to_string(),
                Some(v) => crate::py::text_of(v).map_or_else(|| py_str(v), str::to_owned),
            }
        };
        let int = |k: &str, d: u64| -> Result<u64, OptsError> {
            match get(k) {
                None | Some(Value::Nil) => Ok(d),
                Some(Value::Integer(i)) => i.as_u64().ok_or_else(|| OptsError::Value {
                    file: file.clone(),
                    key: k.into(),
                    why: "not a positive integer".into(),
                }),
                Some(v) => crate::py::text_of(v).and_then(|t| t.trim().parse().ok()).ok_or_else(|| OptsError::Value {
                    file: file.clone(),
                    key: k.into(),
                    why: format!("{} is not an integer", py_str(v)),
                }),
            }
        };
        let port = |k: &str, d: u16| -> Result<u16, OptsError> {
            u16::try_from(int(k, u64::from(d))?).map_err(|_| OptsError::Value {
                file: file.clone(),
                key: k.into(),
                why: "not a port number".into(),
            })
        };
        let boolean = |k: &str, d: bool| match get(k) {
            Some(Value::Boolean(b)) => *b,
            Some(v) => crate::py::py_truthy(v),
            None => d,
        };
        let root_dir = string("root_dir", "/");
        let rooted = |k: &str, d: &str| PathBuf::from(minion::config::prepend_root_dir(&root_dir, &string(k, d)));
        let cachedir = rooted("cachedir", "/var/cache/salt/master");
        let mut sock_dir = rooted("sock_dir", "/var/run/salt/master");
        if sock_dir.as_os_str().len() > cachedir.as_os_str().len() + 10 {
            sock_dir = cachedir.join(".salt-unix");
        }
        let pki_dir = rooted("pki_dir", "/etc/salt/pki/master");
        let mut interface = string("interface", "0.0.0.0");
        if interface == "0.0.0.0" {
            interface = "127.0.0.1".into();
        } else if interface == "::" {
            interface = "::1".into();
        }
        Ok(MasterOpts {
            conf_file: conf_file.clone(),
            cachedir,
            sock_dir,
            pki_dir,
            interface,
            ret_port: port("ret_port", 4506)?,
            ipc_mode: string("ipc_mode", "ipc"),
            tcp_master_pub_port: port("tcp_master_pub_port", 4512)?,
            tcp_master_pull_port: port("tcp_master_pull_port", 4513)?,
            timeout: int("timeout", 5)?,
            gather_job_timeout: int("gather_job_timeout", 10)?,
            user: string("user", &current_user()),
            id: string("id", &format!("{}_master", hostname())),
            hash_type: string("hash_type", "sha256"),
            rotate_aes_key: boolean("rotate_aes_key", true),
            order_masters: boolean("order_masters", false),
            nodegroups: get("nodegroups").cloned().unwrap_or(Value::Map(Vec::new())),
            root_dir,
            raw: raw.clone(),
        })
    }

    /// `ret_port` URI the CLI sends its clear `publish` to.
    pub fn master_uri(&self) -> String {
        if self.interface.contains(':') {
            format!("tcp://[{}]:{}", self.interface, self.ret_port)
        } else {
            format!("tcp://{}:{}", self.interface, self.ret_port)
        }
    }

    /// The key file a CLI run by `invoking_user` reads (`LocalClient.__read_master_key`): root and
    /// `sudo_*` users read the master user's key.
    pub fn key_file(&self, invoking_user: &str) -> PathBuf {
        let mut user = invoking_user.to_string();
        if (user == "root" && self.user != "root") || user.starts_with("sudo_") {
            user = self.user.clone();
        }
        self.cachedir.join(format!(".{user}_key"))
    }
}
