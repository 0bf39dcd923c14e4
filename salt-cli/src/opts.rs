//! What the operator's tools read from the master's configuration (`client_config` of
//! `salt/config/__init__.py`): the master file, `master.d/*.conf`, `root_dir` re-rooting, and the
//! few derived values the CLI needs.

use std::path::{Path, PathBuf};

use salt_core::config::{prepend_root_dir, ConfigError, Opts, DEFAULT_ROOT_DIR};

use crate::py::Value;

/// The default configuration directory (`salt.syspaths.CONFIG_DIR`).
pub const DEFAULT_CONFIG_DIR: &str = "/etc/salt";

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
    /// The merged configuration, for what is not a field.
    pub raw: Opts,
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
    /// `client_config(CONFDIR/master)`: defaults, the file, its `master.d/*.conf` and includes,
    /// then paths re-rooted under `root_dir`.
    pub fn load(conf_dir: &Path) -> Result<Self, ConfigError> {
        let conf_file = conf_dir.join("master");
        let raw = Opts::load(&conf_file, "master.d/*.conf")?;
        let root_dir = raw.string("root_dir", DEFAULT_ROOT_DIR)?;
        let rooted = |k: &str, d: &str| -> Result<PathBuf, ConfigError> {
            Ok(PathBuf::from(prepend_root_dir(&root_dir, &raw.string(k, d)?)))
        };
        let cachedir = rooted("cachedir", "/var/cache/salt/master")?;
        let mut sock_dir = rooted("sock_dir", "/var/run/salt/master")?;
        if sock_dir.as_os_str().len() > cachedir.as_os_str().len() + 10 {
            sock_dir = cachedir.join(".salt-unix");
        }
        let pki_dir = rooted("pki_dir", "/etc/salt/pki/master")?;
        let mut interface = raw.string("interface", "0.0.0.0")?;
        if interface == "0.0.0.0" {
            interface = "127.0.0.1".into();
        } else if interface == "::" {
            interface = "::1".into();
        }
        let secs = |k: &str, d: i64| -> Result<u64, ConfigError> {
            let v = raw.int(k, d)?;
            u64::try_from(v).map_err(|_| raw.invalid(k, &Value::from(v), "a positive number of seconds is required"))
        };
        let port = |k: &str, d: u16| -> Result<u16, ConfigError> { Ok(raw.port(k, Some(d))?.unwrap_or(d)) };
        Ok(MasterOpts {
            conf_file: conf_file.clone(),
            cachedir,
            sock_dir,
            pki_dir,
            interface,
            ret_port: port("ret_port", 4506)?,
            ipc_mode: raw.string("ipc_mode", "ipc")?,
            tcp_master_pub_port: port("tcp_master_pub_port", 4512)?,
            tcp_master_pull_port: port("tcp_master_pull_port", 4513)?,
            timeout: secs("timeout", 5)?,
            gather_job_timeout: secs("gather_job_timeout", 10)?,
            user: raw.string("user", &current_user())?,
            id: raw.string("id", &format!("{}_master", hostname()))?,
            hash_type: raw.string("hash_type", "sha256")?,
            rotate_aes_key: raw.boolean("rotate_aes_key", true)?,
            order_masters: raw.boolean("order_masters", false)?,
            nodegroups: raw.get("nodegroups").cloned().unwrap_or(Value::Map(Vec::new())),
            root_dir,
            raw,
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
