//! The minion's session with its master: the credentials in use, signing in again when they go
//! stale, and the one request loop every aes request goes through.
//!
//! Mirrors Salt 3008.5 `channel/client.py` `AsyncReqChannel` (`send`, `_crypted_transfer`,
//! `crypted_transfer_decode_dictentry`) and `pillar/__init__.py` `AsyncRemotePillar.compile_pillar`:
//!
//! - [`MasterSession::request`]: seal a load as a v3 aes request under the session key, send it
//!   (each of `tries` tries re-sealed, with a fresh nonce), open the reply; a reply that does not
//!   open (a new session key on the master, or `"bad load"`) makes the minion sign in again
//!   ([`MasterSession::reauth`], single-flight) and retry once.
//! - [`MasterSession::aes_request`] opens the reply with the session key, and
//!   [`MasterSession::fetch_pillar`] opens the `send_private` reply to `_pillar`; a pillar reply
//!   without `key` ("our key is deleted on the master side") is treated as a refusal.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use salt_proto::envelope::{open_aes_reply, open_private_reply, seal_aes_request, Request};
use salt_proto::{msgpack, Crypto, EncAlgo, SigAlgo};
use tokio::sync::mpsc;

use crate::auth::{AuthError, Authenticator, Creds};
use crate::config::Config;
use crate::daemon::DaemonError;
use crate::keys::MinionKeys;
use crate::reqclient::{ReqError, RequestClient};
use salt_core::value::{py_str, string, Value};

/// `request_channel_timeout` / `_tries` defaults.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
pub(crate) const REQUEST_TRIES: u32 = 3;

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
pub(crate) struct Keys {
    pub(crate) creds: Creds,
    pub(crate) generation: u64,
}

/// Everything needed to talk to the master on its request port.
#[derive(Debug)]
pub(crate) struct MasterSession {
    pub(crate) config: Arc<Config>,
    pub(crate) keys: Arc<MinionKeys>,
    pub(crate) auth: Authenticator,
    req: RequestClient,
    current: RwLock<Arc<Keys>>,
    auth_lock: tokio::sync::Mutex<()>,
    enc_algo: EncAlgo,
    sig_algo: SigAlgo,
    fatal: mpsc::UnboundedSender<DaemonError>,
}

impl MasterSession {
    /// A session with the credentials of the first sign-in; a rejection seen while signing in
    /// again later is sent to `fatal`.
    pub(crate) fn new(
        config: Arc<Config>,
        keys: Arc<MinionKeys>,
        auth: Authenticator,
        req: RequestClient,
        creds: Creds,
        fatal: mpsc::UnboundedSender<DaemonError>,
    ) -> Self {
        MasterSession {
            enc_algo: auth.enc_algo(),
            sig_algo: auth.sig_algo(),
            config,
            keys,
            auth,
            req,
            current: RwLock::new(Arc::new(Keys { creds, generation: 0 })),
            auth_lock: tokio::sync::Mutex::new(()),
            fatal,
        }
    }

    /// The credentials in use.
    pub(crate) fn current(&self) -> Arc<Keys> {
        self.current.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// Sign in again unless someone already did since `seen` was current. `None` when the
    /// master rejected the key (the daemon is then stopping).
    pub(crate) async fn reauth(&self, seen: u64) -> Option<Arc<Keys>> {
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
                let next = Arc::new(Keys { creds, generation: cur.generation + 1 });
                *self.current.write().unwrap_or_else(std::sync::PoisonError::into_inner) = next.clone();
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

    /// `send` + `_crypted_transfer`: seal `load`, send it (up to `tries` tries of `timeout`
    /// each), and `open` the reply with the keys it was sealed under and its nonce. A reply that
    /// `open` refuses with [`Crypto::AuthenticationFailed`] or [`salt_proto::Error::Refused`]
    /// makes the minion sign in again and retry, once.
    async fn request<T>(
        &self,
        load: &Value,
        timeout: Duration,
        tries: u32,
        open: impl Fn(&Keys, &Value, &str) -> Result<T, salt_proto::Error>,
    ) -> Result<T, RequestError> {
        let mut attempt = 1;
        let mut reauthed = false;
        loop {
            let keys = self.current();
            let (nonce, req) = self.seal(&keys, load)?;
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
            match open(&keys, &reply, &nonce) {
                Ok(v) => return Ok(v),
                Err(e @ (salt_proto::Error::Crypto(Crypto::AuthenticationFailed) | salt_proto::Error::Refused(_)))
                    if !reauthed =>
                {
                    tracing::info!("The master could not handle our request ({e}); re-authenticating");
                    reauthed = true;
                    if self.reauth(keys.generation).await.is_none() {
                        return Err(e.into());
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// An aes request whose reply is opened with the session key.
    pub(crate) async fn aes_request(&self, load: Value, timeout: Duration, tries: u32) -> Result<Value, RequestError> {
        self.request(&load, timeout, tries, |keys, reply, nonce| open_aes_reply(&keys.creds.session, reply, nonce))
            .await
    }

    /// Wraps `load` as a v3 aes request under the session key, with a fresh nonce (returned, to
    /// open the reply with).
    fn seal(&self, keys: &Keys, load: &Value) -> Result<(String, Request), RequestError> {
        let nonce = salt_proto::util::uuid4_hex()?;
        let req = seal_aes_request(
            &keys.creds.session,
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
    pub(crate) async fn fetch_pillar(&self, grains: &Value) -> Result<Value, RequestError> {
        let extra = |k: &str| self.config.extra(k).cloned().unwrap_or(Value::Nil);
        let load = salt_core::value::map([
            ("id", string(&self.config.id)),
            ("grains", grains.clone()),
            ("saltenv", extra("saltenv")),
            ("pillarenv", extra("pillarenv")),
            ("pillar_override", Value::Map(Vec::new())),
            ("extra_minion_data", Value::Map(Vec::new())),
            ("ver", string("2")),
            ("cmd", string("_pillar")),
        ]);
        self.request(&load, REQUEST_TIMEOUT, REQUEST_TRIES, |keys, reply, nonce| {
            if salt_core::value::get(reply, "key").is_none() {
                // "Reauth in the case our key is deleted on the master side."
                return Err(salt_proto::Error::Refused(py_str(reply)));
            }
            open_private_reply(
                &self.keys.private,
                &keys.creds.master_pub,
                reply,
                "pillar",
                nonce,
                self.enc_algo,
                self.sig_algo,
            )
        })
        .await
    }
}
