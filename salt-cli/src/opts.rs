//! What the operator's tools read from the master's configuration (`client_config` of
//! `salt/config/__init__.py`): the master's own configuration ([`master::config::MasterConfig`]:
//! the `master` file, `master.d/*.conf`, includes, `root_dir` re-rooting) plus the few keys only
//! a client uses.

use std::path::{Path, PathBuf};

use master::config::MasterConfig;
use salt_core::config::{ConfigError, Opts};

pub use master::config::current_user;

/// The default configuration directory (`salt.syspaths.CONFIG_DIR`).
pub const DEFAULT_CONFIG_DIR: &str = "/etc/salt";

/// The master options the CLI tools use.
#[derive(Debug, Clone)]
pub struct MasterOpts {
    /// The master's configuration (paths, ports, `user`, `id`, `nodegroups`, ...).
    pub master: MasterConfig,
    pub conf_file: PathBuf,
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
    pub rotate_aes_key: bool,
    pub order_masters: bool,
    /// The merged configuration, for what is not a field.
    pub raw: Opts,
}

impl MasterOpts {
    /// `client_config(CONFDIR/master)`.
    pub fn load(conf_dir: &Path) -> Result<Self, ConfigError> {
        let conf_file = conf_dir.join("master");
        let raw = Opts::load(&conf_file, "master.d/*.conf")?;
        let master = MasterConfig::from_opts(&raw, conf_file.clone())?;
        let interface = match master.interface.as_str() {
            "0.0.0.0" => "127.0.0.1".to_string(),
            "::" => "::1".to_string(),
            other => other.to_string(),
        };
        let secs = |k: &str, d: i64| -> Result<u64, ConfigError> {
            let v = raw.int(k, d)?;
            u64::try_from(v).map_err(|_| raw.invalid(k, &v.into(), "a positive number of seconds is required"))
        };
        let port = |k: &str, d: u16| -> Result<u16, ConfigError> { Ok(raw.port(k, Some(d))?.unwrap_or(d)) };
        Ok(MasterOpts {
            conf_file,
            cachedir: master.cachedir.clone(),
            sock_dir: master.sock_dir.clone(),
            pki_dir: master.pki_dir.clone(),
            interface,
            ret_port: master.ret_port,
            ipc_mode: raw.string("ipc_mode", "ipc")?,
            tcp_master_pub_port: port("tcp_master_pub_port", 4512)?,
            tcp_master_pull_port: port("tcp_master_pull_port", 4513)?,
            timeout: secs("timeout", 5)?,
            gather_job_timeout: secs("gather_job_timeout", 10)?,
            user: master.user.clone(),
            id: master.id.clone(),
            rotate_aes_key: master.rotate_aes_key,
            order_masters: raw.boolean("order_masters", false)?,
            master,
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

    /// The user whose key a CLI run by `invoking_user` reads (`LocalClient.__read_master_key`):
    /// root and `sudo_*` users read the master user's key.
    pub fn key_user(&self, invoking_user: &str) -> String {
        if (invoking_user == "root" && self.user != "root") || invoking_user.starts_with("sudo_") {
            self.user.clone()
        } else {
            invoking_user.to_string()
        }
    }
}
