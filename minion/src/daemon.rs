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
//! 5. For each publish: check the frames, decrypt with the shared AES key (a publish that fails
//!    its HMAC means the master has a new key — after a restart or a rotation — so sign in again
//!    and retry it), match the target locally ([`salt_core::matcher`]), drop jids already seen
//!    (`jid_queue`), and run the job in a task of its own ([`crate::functions::run_job`]), which
//!    then sends the `_return` as an aes request on the shared REQ socket.
//!
//! An aes request whose reply does not open with the session key (or is Salt's `"bad load"`)
//! makes the minion sign in again and retry once, as `_crypted_transfer` does.
//!
//! Not done: multi-master / failover, `master_alive_interval` checks, the minion event bus and
//! its IPC sockets, scheduled jobs, `cachedir/proc` files, returners, beacons, pillar use (the
//! pillar is fetched and dropped).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use salt_proto::envelope::{open_aes_reply, open_private_reply, open_publish, seal_aes_request, ReturnLoad};
use salt_proto::{msgpack, EncAlgo, SerialGuard, SigAlgo};
use tokio::sync::mpsc;
use zmtp::{Socket, SocketType};

use crate::auth::{AuthError, Authenticator, Creds};
use crate::channel;
use crate::config::{Config, Master};
use crate::functions::{self, Ctx, JobRegistry};
use crate::keys::MinionKeys;
use crate::observer::Observer;
use crate::reqclient::{req_options, ReqError, RequestClient};
use salt_core::matcher::{self, MatchContext};
use salt_core::pki::KeyError;
use salt_core::value::{get, py_str, string, Value};

/// `minion_jid_queue_hwm`: how many recent jids are remembered to drop duplicate publishes.
const JID_QUEUE_HWM: usize = 100;
/// `request_channel_timeout` / `_tries` defaults.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
const REQUEST_TRIES: u32 = 3;

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

/// A failed aes request.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// No reply.
    #[error(transparent)]
    Req(#[from] ReqError),
    /// The reply could not be opened, even after signing in again.
    #[error(transparent)]
    Proto(#[from] salt_proto::Error),
}

/// The credentials in use and a counter of sign-ins (to make re-authentication single-flight).
#[derive(Debug)]
struct Session {
    creds: Creds,
    generation: u64,
}

#[derive(Debug)]
struct Shared {
    config: Arc<Config>,
    keys: Arc<MinionKeys>,
    auth: Authenticator,
    req: RequestClient,
    session: RwLock<Arc<Session>>,
    auth_lock: tokio::sync::Mutex<()>,
    ctx: Ctx,
    enc_algo: EncAlgo,
    sig_algo: SigAlgo,
    jid_queue: Mutex<VecDeque<String>>,
    fatal: mpsc::UnboundedSender<DaemonError>,
    observer: Option<Arc<dyn Observer>>,
}

impl Shared {
    fn current(&self) -> Arc<Session> {
        self.session.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// Sign in again unless someone already did since `seen` was current. `None` when the
    /// master rejected the key (the daemon is then stopping).
    async fn reauth(&self, seen: u64) -> Option<Arc<Session>> {
        let _single = self.auth_lock.lock().await;
        let cur = self.current();
        if cur.generation != seen {
            return Some(cur);
        }
        tracing::info!("Re-authenticating with the master at {}", self.auth.master_uri());
        match self.auth.authenticate_forever().await {
            Ok(creds) => {
                if creds.aes.key_string() != cur.creds.aes.key_string() {
                    tracing::debug!("Got new master aes key.");
                }
                if creds.publish_port != cur.creds.publish_port {
                    tracing::warn!(
                        "The master now announces publish port {} (was {}); keeping the current connection",
                        creds.publish_port,
                        cur.creds.publish_port
                    );
                }
                let next = Arc::new(Session { creds, generation: cur.generation + 1 });
                *self.session.write().unwrap_or_else(std::sync::PoisonError::into_inner) = next.clone();
                Some(next)
            }
            Err(AuthError::Rejected) => {
                let _ = self.fatal.send(DaemonError::Rejected);
                None
            }
            Err(e) => {
                let _ = self.fatal.send(DaemonError::Auth(e));
                None
            }
        }
    }

    /// `_crypted_transfer` wrapped in `send`'s tries: seal `load` with the session key, send it,
    /// open the reply. A reply that does not open (a new session key on the master, or
    /// `"bad load"`) triggers one re-authentication and a retry.
    async fn aes_request(&self, load: Value, timeout: Duration, tries: u32) -> Result<Value, RequestError> {
        let mut attempt = 1;
        let mut reauthed = false;
        loop {
            let sess = self.current();
            let (nonce, req) = self.seal(&sess, &load)?;
            let frame = match self.req.send(req.encode(), timeout).await {
                Ok(f) => f,
                Err(e @ (ReqError::Timeout | ReqError::Socket(_))) => {
                    if attempt >= tries {
                        return Err(e.into());
                    }
                    attempt += 1;
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            let reply = msgpack::decode(&frame)?;
            match open_aes_reply(&sess.creds.session, &reply, &nonce) {
                Ok(v) => return Ok(v),
                Err(e @ (salt_proto::Error::AuthenticationFailed | salt_proto::Error::Remote(_))) if !reauthed => {
                    tracing::info!("The master could not handle our request ({e}); re-authenticating");
                    reauthed = true;
                    if self.reauth(sess.generation).await.is_none() {
                        return Err(e.into());
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Wraps `load` as a v3 aes request under the session key, with a fresh nonce (returned, to
    /// open the reply with).
    fn seal(&self, sess: &Session, load: &Value) -> Result<(String, salt_proto::envelope::Request), RequestError> {
        let nonce = salt_proto::util::uuid4_hex()?;
        let req = seal_aes_request(
            &sess.creds.session,
            &self.config.id,
            load.clone(),
            &nonce,
            salt_proto::util::unix_time(),
            &self.keys.tok,
            self.enc_algo,
            self.sig_algo,
        )?;
        Ok((nonce, req))
    }

    /// `AsyncRemotePillar.compile_pillar`: send `_pillar` with the grains and open the
    /// signed, privately encrypted reply.
    async fn fetch_pillar(&self) -> Result<Value, RequestError> {
        let extra = |k: &str| self.config.extra(k).cloned().unwrap_or(Value::Nil);
        let load = salt_core::value::map([
            ("id", string(&self.config.id)),
            ("grains", (*self.ctx.grains).clone()),
            ("saltenv", extra("saltenv")),
            ("pillarenv", extra("pillarenv")),
            ("pillar_override", Value::Map(Vec::new())),
            ("extra_minion_data", Value::Map(Vec::new())),
            ("ver", string("2")),
            ("cmd", string("_pillar")),
        ]);
        let mut reauthed = false;
        loop {
            let sess = self.current();
            let (nonce, req) = self.seal(&sess, &load)?;
            let frame = self.req.send_with_retry(req.encode(), REQUEST_TIMEOUT, REQUEST_TRIES).await?;
            let reply = msgpack::decode(&frame)?;
            if salt_core::value::get(&reply, "key").is_none() && !reauthed {
                // "Reauth in the case our key is deleted on the master side."
                reauthed = true;
                if self.reauth(sess.generation).await.is_none() {
                    return Err(salt_proto::Error::Remote(py_str(&reply)).into());
                }
                continue;
            }
            return Ok(open_private_reply(
                &self.keys.private,
                &sess.creds.master_pub,
                &reply,
                "pillar",
                &nonce,
                self.enc_algo,
                self.sig_algo,
            )?);
        }
    }

    /// `_fire_master_minion_start`.
    async fn fire_start_events(&self) {
        let id = &self.config.id;
        let data = format!("Minion {id} started at {}", asctime(salt_proto::util::unix_time()));
        let legacy = self.config.extra("enable_legacy_startup_events").map_or(true, salt_core::value::truthy);
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
                ("tok", salt_core::value::bytes(self.keys.tok.clone())),
                ("data", string(&data)),
                ("tag", string(&tag)),
            ]);
            match self.aes_request(load, REQUEST_TIMEOUT, REQUEST_TRIES).await {
                Ok(_) => tracing::debug!("Fired event {tag} on the master"),
                Err(e) => tracing::info!("fire_master failed: {e}"),
            }
        }
    }

    /// `_target_load` + `_handle_decoded_payload`: decide whether the publish is for us and
    /// start its job.
    fn handle_load(self: &Arc<Self>, load: Value) {
        if ["tgt", "jid", "fun", "arg"].iter().any(|k| get(&load, k).is_none()) {
            tracing::debug!("Publish without tgt/jid/fun/arg ignored");
            return;
        }
        let tgt = get(&load, "tgt").cloned().unwrap_or(Value::Nil);
        let tgt_type = get(&load, "tgt_type").map(py_str).unwrap_or_else(|| "glob".into());
        let delimiter = match tgt_type.as_str() {
            "grain" | "grain_pcre" | "pillar" => get(&load, "delimiter").map(py_str),
            _ => None,
        };
        let cx = MatchContext { id: &self.config.id, grains: &self.ctx.grains, pillar: None };
        match matcher::matches(&tgt, &tgt_type, delimiter.as_deref(), &cx) {
            Ok(true) => {}
            Ok(false) => {
                tracing::trace!("Publish for {} ({tgt_type}) does not target this minion", py_str(&tgt));
                return;
            }
            Err(e) => {
                tracing::debug!("Cannot match target {} ({tgt_type}): {e}", py_str(&tgt));
                return;
            }
        }
        let jid = get(&load, "jid").map(py_str).unwrap_or_default();
        let fun = get(&load, "fun").map(py_str).unwrap_or_default();
        {
            let mut q = self.jid_queue.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if q.contains(&jid) {
                tracing::debug!("Jid {jid} already handled; dropping the duplicate publish");
                return;
            }
            q.push_back(jid.clone());
            while q.len() > JID_QUEUE_HWM {
                q.pop_front();
            }
        }
        if let Some(o) = &self.observer {
            o.job_received(&jid);
        }
        match get(&load, "user") {
            Some(u) => tracing::info!("User {} Executing command {fun} with jid {jid}", py_str(u)),
            None => tracing::info!("Executing command {fun} with jid {jid}"),
        }
        let shared = self.clone();
        tokio::spawn(async move { shared.run_and_return(load).await });
    }

    /// `_thread_return` + `_return_pub`.
    async fn run_and_return(&self, load: Value) {
        let jid = get(&load, "jid").map(py_str).unwrap_or_default();
        let fun = get(&load, "fun").cloned().unwrap_or(Value::Nil);
        let fun_args = match get(&load, "arg") {
            Some(Value::Array(a)) => a.clone(),
            Some(Value::Nil) | None => Vec::new(),
            Some(other) => vec![other.clone()],
        };
        let mut extra = Vec::new();
        for key in ["user", "master_id"] {
            if let Some(v) = get(&load, key) {
                extra.push((key.to_string(), v.clone()));
            }
        }
        if let Some(m @ Value::Map(_)) = get(&load, "metadata") {
            extra.push(("metadata".to_string(), m.clone()));
        }
        let fun_name = py_str(&fun);
        let ret = functions::run_job(self.ctx.clone(), load).await;
        let out = ret.out.or_else(|| functions::outputter(&fun_name));
        let ret_load = ReturnLoad {
            id: self.config.id.clone(),
            jid: jid.clone(),
            fun,
            fun_args,
            ret: ret.ret,
            retcode: Value::from(ret.retcode),
            success: ret.success,
            out: out.map(str::to_string),
            extra,
        };
        tracing::info!("Returning information for job: {jid}");
        // `_return_pub`: timeout = return_retry_tries × return_retry_timer_max per try.
        let per_try = Duration::from_secs(
            (self.config.return_retry_tries.max(1) * self.config.return_retry_timer_max.max(1))
                .clamp(5, 3600)
                .unsigned_abs(),
        );
        let sent = self.aes_request(ret_load.to_value(), per_try, REQUEST_TRIES).await;
        if let Err(e) = &sent {
            tracing::warn!(
                "The minion failed to return the job information for job {jid}. This is often due to the master \
                 being shut down or overloaded. ({e})"
            );
        }
        if let Some(o) = &self.observer {
            o.job_returned(&jid, sent.is_ok());
        }
    }
}

/// `time.asctime()` of a Unix time, in UTC: `"Tue Nov 25 03:02:11 2025"`.
pub fn asctime(unix: i64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let days = unix.div_euclid(86_400);
    let rem = unix.rem_euclid(86_400);
    // H. Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let wd = DAYS[usize::try_from(days.rem_euclid(7)).unwrap_or(0)];
    let mon = MONTHS[usize::try_from(m - 1).unwrap_or(0)];
    format!("{wd} {mon} {d:>2} {:02}:{:02}:{:02} {y}", rem / 3600, (rem % 3600) / 60, rem % 60)
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
        tokio::time::sleep(crate::auth::secs(config.retry_dns)).await;
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
        let delay = channel::randint(0, config.random_startup_delay.unsigned_abs());
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
/// entry point of hosts that run many minions in one process (the swarm).
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
    let auth = Authenticator::new(config.clone(), keys.clone(), master_uri.clone())
        .map_err(DaemonError::Auth)?
        .with_observer(observer.clone());
    let creds = match auth.authenticate_forever().await {
        Ok(c) => c,
        Err(AuthError::Rejected) => return Err(DaemonError::Rejected),
        Err(e) => return Err(DaemonError::Auth(e)),
    };
    tracing::info!("Authentication with the master at {master_uri} accepted");
    let publish_port = config.publish_port_for(creds.publish_port);

    let sub = Socket::with_options(SocketType::Sub, channel::sub_options(&config));
    for topic in channel::subscriptions(&config) {
        sub.subscribe(topic)?;
    }
    let pub_uri = tcp_uri(ip, publish_port);
    sub.connect(&pub_uri).await?;
    tracing::debug!("Connecting the publish channel to {pub_uri}");

    let (fatal_tx, mut fatal_rx) = mpsc::unbounded_channel();
    let shared = Arc::new(Shared {
        ctx: Ctx { config: config.clone(), grains: Arc::new(grains), jobs: JobRegistry::new(), load: Value::Nil },
        req: RequestClient::new(&master_uri, req_options(&config)),
        enc_algo: auth.enc_algo(),
        sig_algo: auth.sig_algo(),
        auth,
        keys,
        session: RwLock::new(Arc::new(Session { creds, generation: 0 })),
        auth_lock: tokio::sync::Mutex::new(()),
        jid_queue: Mutex::new(VecDeque::new()),
        fatal: fatal_tx,
        config,
        observer,
    });

    let startup = shared.clone();
    tokio::spawn(async move {
        match startup.fetch_pillar().await {
            Ok(p) => {
                let n = if let Value::Map(m) = &p { m.len() } else { 0 };
                tracing::debug!("Pillar received ({n} top-level keys); grains cached on the master");
            }
            Err(e) => {
                tracing::warn!("Cannot fetch the pillar (grain targeting on the master may miss this minion): {e}")
            }
        }
        startup.fire_start_events().await;
        if let Some(o) = &startup.observer {
            o.started();
        }
    });
    tracing::info!("Minion is ready to receive requests!");

    tokio::select! {
        r = publish_loop(shared.clone(), sub) => r,
        e = fatal_rx.recv() => Err(e.unwrap_or_else(|| DaemonError::Internal("fatal channel closed".into()))),
    }
}

/// Receive publishes until the socket closes.
async fn publish_loop(shared: Arc<Shared>, sub: Socket) -> Result<(), DaemonError> {
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
        let mut reset_guard = |sess: &Session, guard: &mut SerialGuard| {
            if sess.creds.aes.key_string() != guard_key {
                guard_key = sess.creds.aes.key_string().to_string();
                *guard = SerialGuard::default();
            }
        };
        reset_guard(&sess, &mut guard);
        let verify = |sess: &Arc<Session>| shared.config.sign_pub_messages.then(|| sess.creds.master_pub.clone());
        let load = match open_publish(&sess.creds.aes, &envelope, verify(&sess).as_ref(), &mut guard) {
            Ok(load) => load,
            Err(salt_proto::Error::AuthenticationFailed) => {
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
            Err(e @ salt_proto::Error::StaleSerial { .. }) => {
                tracing::debug!("Dropping a replayed publish: {e}");
                continue;
            }
            Err(e) => {
                tracing::warn!("Discarding a publish that could not be opened: {e}");
                continue;
            }
        };
        shared.handle_load(load);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asctime_like_python() {
        // time.asctime(time.gmtime(0)), (1764039731), (951782400)
        assert_eq!(asctime(0), "Thu Jan  1 00:00:00 1970");
        assert_eq!(asctime(1_764_039_731), "Tue Nov 25 03:02:11 2025");
        assert_eq!(asctime(951_782_400), "Tue Feb 29 00:00:00 2000");
    }

    #[test]
    fn uris() {
        assert_eq!(
            tcp_uri("127.0.0.1".parse().unwrap_or(std::net::Ipv4Addr::LOCALHOST.into()), 4506),
            "tcp://127.0.0.1:4506"
        );
        assert_eq!(tcp_uri(std::net::Ipv6Addr::LOCALHOST.into(), 4505), "tcp://[::1]:4505");
    }
}
