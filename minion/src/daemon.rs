//! The minion daemon: sign in, listen for publishes, run jobs, return their results.
//!
//! Mirrors the single-master path of Salt 3008.5 `minion.py` (`MinionManager._connect_minion`,
//! `Minion.connect_master`, `_post_master_init`, `tune_in`, `_handle_payload`, `_target_load`,
//! `_handle_decoded_payload`, `_thread_return`, `_return_pub`, `_fire_master_minion_start`) and
//! `channel/client.py` (`AsyncReqChannel._crypted_transfer`, `crypted_transfer_decode_dictentry`,
//! `AsyncPubChannel._decode_payload`):
//!
//! 1. Load or generate the key pair ([`crate::keys`]), collect the grains, resolve the master.
//! 2. `_auth` until accepted ([`crate::auth`]); the master key is cached on first contact and a
//!    changed one is refused for good.
//! 3. Connect the SUB socket to the announced publish port ([`crate::channel`]) and a REQ
//!    socket to the ret port ([`crate::reqclient`]).
//! 4. Send `_pillar` with the grains (the master caches the grains from it: without that, its
//!    grain and compound targeting do not select this minion), then fire the `minion_start` and
//!    `salt/minion/<id>/start` events (`_minion_event`).
//! 5. For each publish (`publish_loop`): check the frames, decrypt with the shared AES key (a
//!    publish that fails its HMAC means the master has a new key — after a restart or a
//!    rotation — so sign in again and retry it), then hand the load to the jobs
//!    (`crate::jobs`: typed [`salt_proto::envelope::PublishLoad`], local targeting, jid queue,
//!    one task per job, `_return`).
//!
//! Every aes request (returns, events, `_pillar`) goes through the session (`crate::session`):
//! one request loop that signs in again and retries once when a reply does not open, as
//! `_crypted_transfer` does. This file keeps start-up, the publish loop, DNS and the pid file.
//!
//! Not done: multi-master / failover, `master_alive_interval` checks, the minion event bus and
//! its IPC sockets, scheduled jobs, `cachedir/proc` files, returners, beacons, pillar use (the
//! pillar is fetched and dropped).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use salt_proto::envelope::open_publish;
use salt_proto::SerialGuard;
use tokio::sync::mpsc;
use zmtp::{Socket, SocketType};

use crate::auth::{AuthError, Authenticator};
use crate::channel;
use crate::config::{Config, Master};
use crate::functions::{Ctx, JobRegistry};
use crate::jobs::Jobs;
use crate::keys::MinionKeys;
use crate::observer::Observer;
use crate::reqclient::RequestClient;
use crate::session::{Keys, MasterSession, REQUEST_TIMEOUT, REQUEST_TRIES};
use crate::sockopts::req_options;
use salt_core::pki::KeyError;
use salt_core::value::{string, Value};

pub use crate::session::RequestError;

/// Why the daemon stopped.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The configuration asks for something this minion does not do.
    #[error("{0}")]
    Unsupported(String),
    /// A key file problem.
    #[error(transparent)]
    Keys(#[from] KeyError),
    /// The master rejected our key (Salt exits with `EX_NOPERM`).
    #[error(
        "The Salt Master has rejected this minion's public key! To repair this issue, delete the public key for \
         this minion on the Salt Master and restart this minion."
    )]
    Rejected,
    /// Authentication cannot work with this configuration.
    #[error(transparent)]
    Auth(AuthError),
    /// The master's address does not resolve.
    #[error("Master hostname: '{0}' not found or not responsive")]
    Resolve(String),
    /// A socket could not be set up.
    #[error("socket error: {0}")]
    Socket(#[from] zmtp::Error),
    /// A background task failed.
    #[error("internal error: {0}")]
    Internal(String),
}

impl DaemonError {
    /// The process exit status Salt uses for this failure.
    pub fn exit_code(&self) -> u8 {
        match self {
            DaemonError::Rejected => crate::auth::EX_NOPERM,
            _ => 1,
        }
    }
}

/// `_fire_master_minion_start`: the `minion_start` (unless `enable_legacy_startup_events` is
/// false) and `salt/minion/<id>/start` events, sent as `_minion_event` requests.
async fn fire_start_events(session: &MasterSession) {
    let config = &session.config;
    let id = &config.id;
    let data = format!("Minion {id} started at {}", salt_proto::util::asctime(salt_proto::util::unix_time()));
    let legacy = config.extra("enable_legacy_startup_events").map_or(true, salt_core::value::truthy);
    let mut tags = Vec::new();
    if legacy {
        tags.push("minion_start".to_string());
    }
    tags.push(format!("salt/minion/{id}/start"));
    for tag in tags {
        let load = salt_core::value::map([
            ("id", string(id)),
            ("cmd", string("_minion_event")),
            ("pretag", Value::Nil),
            ("tok", salt_core::value::bytes(session.keys.tok.clone())),
            ("data", string(&data)),
            ("tag", string(&tag)),
        ]);
        match session.aes_request(load, REQUEST_TIMEOUT, REQUEST_TRIES).await {
            Ok(_) => tracing::debug!("Fired event {tag} on the master"),
            Err(e) => tracing::info!("fire_master failed: {e}"),
        }
    }
}

/// Resolve the master once, like `resolve_dns`: with `ipv6: True` an IPv6 address is preferred,
/// with `ipv6: False` only IPv4 is used, unset prefers IPv4. A failed lookup is retried every
/// `retry_dns` seconds (0: give up).
async fn resolve_master(config: &Config, host: &str) -> Result<std::net::IpAddr, DaemonError> {
    loop {
        match tokio::net::lookup_host((host, config.master_port)).await {
            Ok(addrs) => {
                let addrs: Vec<SocketAddr> = addrs.collect();
                let pick = match config.ipv6 {
                    Some(true) => addrs.iter().find(|a| a.is_ipv6()).or(addrs.first()),
                    Some(false) => addrs.iter().find(|a| a.is_ipv4()),
                    None => addrs.iter().find(|a| a.is_ipv4()).or(addrs.first()),
                };
                if let Some(a) = pick {
                    return Ok(a.ip());
                }
                tracing::error!("Master hostname: '{host}' has no usable address");
            }
            Err(e) => tracing::error!("Master hostname: '{host}' not found or not responsive ({e})"),
        }
        if config.retry_dns <= 0.0 {
            return Err(DaemonError::Resolve(host.to_string()));
        }
        tracing::error!("Retrying in {} seconds", config.retry_dns);
        tokio::time::sleep(crate::sockopts::secs(config.retry_dns)).await;
    }
}

fn tcp_uri(ip: std::net::IpAddr, port: u16) -> String {
    match ip {
        std::net::IpAddr::V4(a) => format!("tcp://{a}:{port}"),
        std::net::IpAddr::V6(a) => format!("tcp://[{a}]:{port}"),
    }
}

/// Writes the pid file and removes it when dropped.
#[derive(Debug)]
struct PidFile(Option<PathBuf>);

impl PidFile {
    fn create(path: &std::path::Path) -> Self {
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        match std::fs::write(path, format!("{}\n", std::process::id())) {
            Ok(()) => PidFile(Some(path.to_path_buf())),
            Err(e) => {
                tracing::warn!("Cannot write the pid file {}: {e}", path.display());
                PidFile(None)
            }
        }
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        if let Some(p) = &self.0 {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// What [`run_prepared`] is handed instead of loading or collecting it itself.
#[derive(Debug)]
pub struct Prepared {
    /// The key pair (its `pki_dir` also caches the master key).
    pub keys: Arc<MinionKeys>,
    /// The grains sent with `_pillar` and matched against targets.
    pub grains: Value,
    /// Told about sign-ins, start-up and jobs.
    pub observer: Option<Arc<dyn Observer>>,
}

/// Run the minion until the master rejects it or a fatal error occurs. Cancel the future (drop
/// it) to stop: its sockets are closed and running jobs are left to the runtime's shutdown.
pub async fn run(config: Config) -> Result<(), DaemonError> {
    check_transport(&config)?;
    let _pidfile = PidFile::create(&config.pidfile);
    if config.random_startup_delay > 0 {
        let delay = salt_proto::util::randint(0, config.random_startup_delay.unsigned_abs());
        tracing::info!("Minion sleeping for {delay} seconds due to configured startup_delay");
        tokio::time::sleep(Duration::from_secs(delay)).await;
    }
    let config = Arc::new(config);
    let (pki_dir, keysize) = (config.pki_dir.clone(), usize::try_from(config.keysize).unwrap_or(2048));
    let keys = tokio::task::spawn_blocking(move || MinionKeys::load_or_generate(&pki_dir, keysize))
        .await
        .map_err(|e| DaemonError::Internal(e.to_string()))??;
    let grains_config = config.clone();
    let grains = tokio::task::spawn_blocking(move || crate::grains::collect(&grains_config))
        .await
        .map_err(|e| DaemonError::Internal(e.to_string()))?;
    run_prepared(config, Prepared { keys: Arc::new(keys), grains, observer: None }).await
}

fn check_transport(config: &Config) -> Result<(), DaemonError> {
    if config.transport != "zeromq" {
        return Err(DaemonError::Unsupported(format!(
            "transport {:?} is not supported (only zeromq)",
            config.transport
        )));
    }
    Ok(())
}

/// [`run`] with the keys and grains already at hand, and no pid file or start-up delay: the
/// entry point of hosts that run many minions in one process (the swarm, `salt-swarm-rs`).
pub async fn run_prepared(config: Arc<Config>, prepared: Prepared) -> Result<(), DaemonError> {
    check_transport(&config)?;
    let Prepared { keys, grains, observer } = prepared;
    let host = match &config.master {
        Master::One(m) => m.clone(),
        Master::List(list) => {
            let first = list.first().cloned().ok_or_else(|| DaemonError::Unsupported("empty master list".into()))?;
            if list.len() > 1 {
                tracing::warn!("Multi-master is not supported; using the first master, {first}");
            }
            first
        }
    };
    if config.master_type != "str" {
        tracing::warn!("master_type {:?} is not supported; treating it as \"str\"", config.master_type);
    }

    let ip = resolve_master(&config, &host).await?;
    let master_uri = tcp_uri(ip, config.master_port);
    let auth = Authenticator::new(config.clone(), keys.clone(), master_uri.clone()).with_observer(observer.clone());
    let creds = match auth.authenticate_forever().await {
        Ok(c) => c,
        Err(AuthError::Rejected) => return Err(DaemonError::Rejected),
        Err(e) => return Err(DaemonError::Auth(e)),
    };
    tracing::info!("Authentication with the master at {master_uri} accepted");
    let publish_port = config.publish_port_for(creds.publish_port);

    let sub = Socket::with_options(SocketType::Sub, crate::sockopts::sub_options(&config));
    for topic in channel::subscriptions(&config) {
        sub.subscribe(topic)?;
    }
    let pub_uri = tcp_uri(ip, publish_port);
    sub.connect(&pub_uri).await?;
    tracing::debug!("Connecting the publish channel to {pub_uri}");

    let (fatal_tx, mut fatal_rx) = mpsc::unbounded_channel();
    let req = RequestClient::new(&master_uri, req_options(&config));
    let session = Arc::new(MasterSession::new(config.clone(), keys, auth, req, creds, fatal_tx));
    let grains = Arc::new(grains);
    let ctx = Ctx { config, grains: grains.clone(), jobs: JobRegistry::new(), load: Value::Nil };
    let jobs = Arc::new(Jobs::new(session.clone(), ctx, observer.clone()));

    let startup = session.clone();
    tokio::spawn(async move {
        match startup.fetch_pillar(&grains).await {
            Ok(p) => {
                let n = if let Value::Map(m) = &p { m.len() } else { 0 };
                tracing::debug!("Pillar received ({n} top-level keys); grains cached on the master");
            }
            Err(e) => {
                tracing::warn!("Cannot fetch the pillar (grain targeting on the master may miss this minion): {e}")
            }
        }
        fire_start_events(&startup).await;
        if let Some(o) = &observer {
            o.started();
        }
    });
    tracing::info!("Minion is ready to receive requests!");

    tokio::select! {
        r = publish_loop(session, jobs, sub) => r,
        e = fatal_rx.recv() => Err(e.unwrap_or_else(|| DaemonError::Internal("fatal channel closed".into()))),
    }
}

/// Receive publishes until the socket closes: check the frames, open the envelope (signing in
/// again once when it does not authenticate: the master has a new AES key) and hand the load to
/// [`Jobs::handle_publish`].
async fn publish_loop(session: Arc<MasterSession>, jobs: Arc<Jobs>, sub: Socket) -> Result<(), DaemonError> {
    let shared = &session;
    let own_topic = salt_proto::envelope::publish_topic(&shared.config.id);
    let mut guard = SerialGuard::default();
    let mut guard_key = shared.current().creds.aes.key_string().to_string();
    loop {
        let msg = sub.recv().await?;
        let envelope = match channel::decode_frames(&msg, &own_topic) {
            Ok(Some(e)) => e,
            Ok(None) => continue,
            Err(e) => {
                tracing::warn!("{e}");
                continue;
            }
        };
        if salt_core::value::get_str(&envelope, "enc") != Some("aes") {
            // Clear publishes are not verified: nothing to do with them.
            continue;
        }
        let mut sess = shared.current();
        let mut reset_guard = |sess: &Keys, guard: &mut SerialGuard| {
            if sess.creds.aes.key_string() != guard_key {
                guard_key = sess.creds.aes.key_string().to_string();
                *guard = SerialGuard::default();
            }
        };
        reset_guard(&sess, &mut guard);
        let verify = |sess: &Arc<Keys>| shared.config.sign_pub_messages.then(|| sess.creds.master_pub.clone());
        let load = match open_publish(&sess.creds.aes, &envelope, verify(&sess).as_ref(), &mut guard) {
            Ok(load) => load,
            Err(salt_proto::Error::Crypto(salt_proto::Crypto::AuthenticationFailed)) => {
                tracing::info!(
                    "A publish did not authenticate with our AES key: the master has a new key; signing in again"
                );
                let Some(next) = shared.reauth(sess.generation).await else { continue };
                sess = next;
                reset_guard(&sess, &mut guard);
                match open_publish(&sess.creds.aes, &envelope, verify(&sess).as_ref(), &mut guard) {
                    Ok(load) => load,
                    Err(e) => {
                        tracing::error!(
                            "Payload decryption failed even after re-authenticating with master {} ({e})",
                            shared.auth.master_uri()
                        );
                        continue;
                    }
                }
            }
            Err(e @ salt_proto::Error::Replay { .. }) => {
                tracing::debug!("Dropping a replayed publish: {e}");
                continue;
            }
            Err(e) => {
                tracing::warn!("Discarding a publish that could not be opened: {e}");
                continue;
            }
        };
        jobs.handle_publish(load);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris() {
        assert_eq!(
            tcp_uri("127.0.0.1".parse().unwrap_or(std::net::Ipv4Addr::LOCALHOST.into()), 4506),
            "tcp://127.0.0.1:4506"
        );
        assert_eq!(tcp_uri(std::net::Ipv6Addr::LOCALHOST.into(), 4505), "tcp://[::1]:4505");
    }
}
