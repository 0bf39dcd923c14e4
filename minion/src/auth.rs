//! Signing in to the master: the clear `_auth` request and what the minion does with the reply.
//!
//! Mirrors Salt 3008.5 `crypt.py`:
//!
//! - [`Authenticator::sign_in`] is `AsyncAuth.sign_in` + `handle_signin_response`: build the
//!   sign-in load (`salt_proto::envelope::AuthRequest`, with `token` encrypted to the cached
//!   master key when there is one), send it on a REQ socket with `auth_timeout` per try and
//!   `auth_tries` tries, check the clear-signed reply (`open_auth_reply`: master key, signature,
//!   nonce, the X9.31 `sig` over the AES key, the token), cache the master key on first contact.
//! - [`Authenticator::authenticate`] is `AsyncAuth._authenticate`: sign in on a REQ socket of its
//!   own until the key is accepted, waiting `acceptance_wait_time` between tries while it is
//!   pending (doubling up to `acceptance_wait_time_max` when that is set).
//! - [`Authenticator::authenticate_forever`] is the retry loop around it in
//!   `MinionManager._connect_minion`: any failure but a rejected key (a timeout, a master that
//!   is full, a master whose key changed, a bad reply) is logged and retried after `auth_wait`
//!   (`acceptance_wait_time`, growing by itself up to `acceptance_wait_time_max`). A master
//!   whose key differs from `minion_master.pub` is never accepted; the minion keeps trying, as
//!   Salt does, in case the right master comes back.

use std::sync::Arc;
use std::time::Duration;

use salt_proto::envelope::{open_auth_reply, AuthOutcome, AuthRequest};
use salt_proto::{msgpack, Crypticle, EncAlgo, PublicKey, SigAlgo};

use crate::config::Config;
use crate::keys::MinionKeys;
use crate::observer::Observer;
use crate::reqclient::{ReqError, RequestClient};
use crate::sockopts::{req_options, secs};
use salt_core::pki::KeyError;

/// `salt.defaults.exitcodes.EX_NOPERM`: Salt's exit status when the master rejects the key.
pub const EX_NOPERM: u8 = 77;

/// What a successful `_auth` gives the minion (Salt's `creds`).
#[derive(Debug)]
pub struct Creds {
    /// The master's shared AES key: publishes.
    pub aes: Crypticle,
    /// This minion's session key: aes requests and their replies.
    pub session: Crypticle,
    /// The publish port the master announced.
    pub publish_port: u16,
    /// The master's public key (as cached in `minion_master.pub`).
    pub master_pub: PublicKey,
}

/// Why signing in failed.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// No reply within `auth_timeout` × `auth_tries`.
    #[error("Attempt to authenticate with the salt master failed with timeout error")]
    Timeout,
    /// The request socket failed.
    #[error("{0}")]
    Request(ReqError),
    /// The master rejected (or denied) our key.
    #[error("The Salt Master has rejected this minion's public key")]
    Rejected,
    /// `max_minions` reached.
    #[error("The Salt Master is full (max_minions reached)")]
    Full,
    /// The master refuses our `encryption_algorithm` / `signing_algorithm`.
    #[error("This minion is using a {0} algorithm that is not supported by its master")]
    BadAlgo(&'static str),
    /// The master's key differs from the cached `minion_master.pub`.
    #[error(
        "The master key has changed, the salt master could have been subverted, verify salt master's public key \
         (cached key: {0}; remove it and restart the minion only if the new master key is trusted)"
    )]
    MasterKeyChanged(String),
    /// The reply is not a valid, verified `_auth` reply.
    #[error("Sign-in attempt failed: {0}")]
    Invalid(String),
    /// A key file problem.
    #[error(transparent)]
    Keys(#[from] KeyError),
}

/// The result of one sign-in.
#[derive(Debug)]
pub enum SignIn {
    /// Accepted.
    Accepted(Box<Creds>),
    /// Pending (or rejected with `rejected_retry`, or timed out with `auth_safemode`): retry
    /// after `acceptance_wait_time`.
    Retry,
}

/// Signs in to one master.
#[derive(Debug, Clone)]
pub struct Authenticator {
    config: Arc<Config>,
    keys: Arc<MinionKeys>,
    master_uri: String,
    enc_algo: EncAlgo,
    sig_algo: SigAlgo,
    observer: Option<Arc<dyn Observer>>,
}

impl Authenticator {
    /// An authenticator for `master_uri` (`tcp://ip:master_port`).
    pub fn new(config: Arc<Config>, keys: Arc<MinionKeys>, master_uri: String) -> Self {
        let (enc_algo, sig_algo) = (config.encryption_algorithm, config.signing_algorithm);
        Authenticator { config, keys, master_uri, enc_algo, sig_algo, observer: None }
    }

    /// Report every `_auth` try and every accepted sign-in to `observer`.
    pub fn with_observer(mut self, observer: Option<Arc<dyn Observer>>) -> Self {
        self.observer = observer;
        self
    }

    /// The master URI.
    pub fn master_uri(&self) -> &str {
        &self.master_uri
    }

    /// The configured `encryption_algorithm`.
    pub fn enc_algo(&self) -> EncAlgo {
        self.enc_algo
    }

    /// The configured `signing_algorithm`.
    pub fn sig_algo(&self) -> SigAlgo {
        self.sig_algo
    }

    /// One `_auth` exchange on `client` (`sign_in` + `handle_signin_response`).
    pub async fn sign_in(&self, client: &RequestClient) -> Result<SignIn, AuthError> {
        let cached = self.keys.cached_master_pub()?;
        let master_pub = match &cached {
            Some(pem) => Some(PublicKey::from_pem(pem).map_err(|e| AuthError::Invalid(e.to_string()))?),
            None => {
                tracing::debug!("Master public key not found");
                None
            }
        };
        let token = Crypticle::generate_key_string().map_err(|e| AuthError::Invalid(e.to_string()))?;
        let req = AuthRequest::new(
            &self.config.id,
            &self.keys.public,
            master_pub.as_ref(),
            token.as_bytes(),
            self.enc_algo,
            self.sig_algo,
        )
        .map_err(|e| AuthError::Invalid(e.to_string()))?;
        let timeout = Duration::from_secs(self.config.auth_timeout.clamp(1, 86_400).unsigned_abs());
        let tries = u32::try_from(self.config.auth_tries.clamp(1, 1000)).unwrap_or(1);
        tracing::debug!("Sending sign-in request to {} (id {})", self.master_uri, self.config.id);
        let on_try = || {
            if let Some(o) = &self.observer {
                o.auth_request();
            }
        };
        let frame = match client.send_with_retry_counted(req.to_request().encode(), timeout, tries, on_try).await {
            Ok(f) => f,
            Err(ReqError::Timeout) if self.config.auth_safemode => {
                tracing::warn!("SaltReqTimeoutError: Message timed out");
                return Ok(SignIn::Retry);
            }
            Err(ReqError::Timeout) => return Err(AuthError::Timeout),
            Err(e) => return Err(AuthError::Request(e)),
        };
        let reply = msgpack::decode(&frame).map_err(|e| AuthError::Invalid(e.to_string()))?;
        if salt_core::value::get(&reply, "load").is_none() {
            return Err(AuthError::Invalid(salt_core::value::py_repr(&reply)));
        }
        match open_auth_reply(&reply, &req, &self.keys.private, cached.as_deref(), Some(token.as_bytes())) {
            Ok(AuthOutcome::Accepted(creds)) => {
                let master_pub =
                    PublicKey::from_pem(&creds.master_pub).map_err(|e| AuthError::Invalid(e.to_string()))?;
                if cached.is_none() {
                    self.keys.store_master_pub(&creds.master_pub)?;
                    tracing::info!(
                        "Cached the master public key in {}",
                        self.keys.pki_dir.join(crate::keys::MASTER_PUB).display()
                    );
                }
                let aes = Crypticle::new(&creds.aes).map_err(|e| AuthError::Invalid(format!("aes key: {e}")))?;
                let session =
                    Crypticle::new(&creds.session).map_err(|e| AuthError::Invalid(format!("session key: {e}")))?;
                if let Some(o) = &self.observer {
                    o.signed_in();
                }
                Ok(SignIn::Accepted(Box::new(Creds { aes, session, publish_port: creds.publish_port, master_pub })))
            }
            Ok(AuthOutcome::Pending) => {
                tracing::error!(
                    "The Salt Master has cached the public key for this node, this salt minion will wait for {} \
                     seconds before attempting to re-authenticate",
                    self.config.acceptance_wait_time
                );
                Ok(SignIn::Retry)
            }
            Ok(AuthOutcome::Rejected) if self.config.rejected_retry => {
                tracing::error!(
                    "The Salt Master has rejected this minion's public key.\nTo repair this issue, delete the \
                     public key for this minion on the Salt Master.\nThe Salt Minion will attempt to \
                     re-authenticate."
                );
                Ok(SignIn::Retry)
            }
            Ok(AuthOutcome::Rejected) => Err(AuthError::Rejected),
            Ok(AuthOutcome::Full) => Err(AuthError::Full),
            Ok(AuthOutcome::BadEncAlgo) => Err(AuthError::BadAlgo("encryption")),
            Ok(AuthOutcome::BadSigAlgo) => Err(AuthError::BadAlgo("signing")),
            Ok(AuthOutcome::MasterKeyChanged) => {
                Err(AuthError::MasterKeyChanged(self.keys.pki_dir.join(crate::keys::MASTER_PUB).display().to_string()))
            }
            Err(salt_proto::Error::Crypto(salt_proto::Crypto::BadSignature)) => {
                Err(AuthError::Invalid("The payload signature did not validate.".into()))
            }
            Err(salt_proto::Error::Crypto(salt_proto::Crypto::NonceMismatch)) => {
                Err(AuthError::Invalid("The payload nonce did not validate.".into()))
            }
            Err(e) => Err(AuthError::Invalid(e.to_string())),
        }
    }

    /// `_authenticate`: sign in on a REQ socket of its own until accepted; a pending key is
    /// retried every `acceptance_wait_time` (growing to `acceptance_wait_time_max`).
    pub async fn authenticate(&self) -> Result<Creds, AuthError> {
        let client = RequestClient::new(&self.master_uri, req_options(&self.config));
        let mut wait = self.config.acceptance_wait_time;
        let max = if self.config.acceptance_wait_time_max > 0.0 {
            self.config.acceptance_wait_time_max
        } else {
            self.config.acceptance_wait_time
        };
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            match self.sign_in(&client).await? {
                SignIn::Accepted(creds) => return Ok(*creds),
                SignIn::Retry => {
                    if wait > 0.0 {
                        tracing::info!("Waiting {wait} seconds before retry.");
                        tokio::time::sleep(secs(wait)).await;
                    }
                    if wait < max {
                        wait += wait;
                        tracing::debug!("Authentication wait time is {wait}");
                    }
                }
            }
        }
    }

    /// Authenticate until accepted. Only a rejected key (without `rejected_retry`) ends this
    /// with an error; everything else is logged and retried after `auth_wait`.
    pub async fn authenticate_forever(&self) -> Result<Creds, AuthError> {
        let step = self.config.acceptance_wait_time;
        let max = self.config.acceptance_wait_time_max;
        let mut auth_wait = step;
        loop {
            match self.authenticate().await {
                Ok(creds) => return Ok(creds),
                Err(AuthError::Rejected) => return Err(AuthError::Rejected),
                Err(e) => {
                    if let AuthError::MasterKeyChanged(_) = e {
                        tracing::error!("{e}");
                        tracing::error!(
                            "The Salt Master server's public key did not authenticate! Refusing master {}",
                            self.master_uri
                        );
                    } else {
                        tracing::error!(
                            "Error while bringing up minion. Is master at {} responding? The error message was {e}",
                            self.master_uri
                        );
                    }
                    tokio::time::sleep(secs(auth_wait).max(Duration::from_millis(500))).await;
                    if auth_wait < max {
                        auth_wait += step;
                    }
                }
            }
        }
    }
}
