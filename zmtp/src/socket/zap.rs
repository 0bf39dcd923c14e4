//! ZAP (RFC 27) on the socket side: who answers a server's authentication requests.
//!
//! A socket with [`Options::zap_handler`] asks that handler (a Rust value or closure, called on
//! the connection's task: keep it quick). Without one, if some socket of ours is bound at
//! [`ZAP_ENDPOINT`] (`inproc://zeromq.zap.01`, the libzmq way: a REP or ROUTER the application
//! runs), the request goes there over a REQ socket. With neither, what happens depends on the
//! mechanism and [`Options::zap_enforce_domain`], as in libzmq 4.3 (see there): CURVE and NULL
//! accept the client unless enforcing, PLAIN refuses it.
//!
//! Connections over `inproc://` have no handshake, hence no mechanism and no ZAP, as in libzmq.
//!
//! [`Authenticator`] is a ready-made handler: addresses allowed or denied, PLAIN users, CURVE
//! public keys (listed, or read from a directory of CZMQ public certificates).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::core::Core;
use super::options::Options;
use crate::codec::MechanismName;
use crate::proto::mechanism::{CurvePublicKey, Security, ZapReply, ZapRequest, ZapSettings};
use crate::proto::ConnectionError;
use crate::{Message, Socket, SocketType};

/// Where the libzmq-style handler binds.
pub const ZAP_ENDPOINT: &str = "inproc://zeromq.zap.01";
const ZAP_NAME: &str = "zeromq.zap.01";
/// How long the inproc handler may take to answer; then the client is refused with 500.
const ZAP_TIMEOUT: Duration = Duration::from_secs(10);

/// An authentication handler: judges each client a server socket's mechanism presents.
pub trait ZapHandler: Send + Sync + 'static {
    /// The verdict on one client.
    fn authenticate(&self, request: &ZapRequest) -> ZapReply;
}

impl<F: Fn(&ZapRequest) -> ZapReply + Send + Sync + 'static> ZapHandler for F {
    fn authenticate(&self, request: &ZapRequest) -> ZapReply {
        self(request)
    }
}

/// A shared handler, as kept in [`Options`].
#[derive(Clone)]
pub struct ZapHandlerRef(pub Arc<dyn ZapHandler>);

impl std::fmt::Debug for ZapHandlerRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ZapHandler")
    }
}

/// The ZAP settings for a new connection: `Some` if its handshake must ask the handler, `None` if
/// it goes without, an error if it must be refused for want of a handler (libzmq 4.3's rules,
/// see [`Options::zap_enforce_domain`]).
pub(crate) fn settings(
    options: &Options,
    security: &Security,
    peer: &str,
) -> Result<Option<ZapSettings>, ConnectionError> {
    let handler = options.zap_handler.is_some() || super::inproc::is_bound(ZAP_NAME);
    let ask = policy(security, !options.zap_domain.is_empty(), options.zap_enforce_domain, handler)?;
    Ok(ask.then(|| ZapSettings {
        domain: options.zap_domain.clone(),
        address: Bytes::from(peer_ip(peer)),
        identity: options.routing_id.clone(),
    }))
}

/// Whether a handshake with this mechanism asks ZAP, given a domain, the enforce option and
/// whether a handler exists; an error refuses the client.
fn policy(security: &Security, domain: bool, enforce: bool, handler: bool) -> Result<bool, ConnectionError> {
    let refuse = |why: &str| Err(ConnectionError::Unauthorized { status: 500, text: why.to_owned() });
    match security {
        Security::Null if !domain => Ok(false),
        Security::Null if handler => Ok(true),
        Security::Null if enforce => refuse("no ZAP handler for the ZAP domain (zap_enforce_domain)"),
        Security::Null => Ok(false),
        Security::PlainServer if enforce && !domain => refuse("PLAIN with zap_enforce_domain needs a ZAP domain"),
        Security::PlainServer if handler => Ok(true),
        Security::PlainServer => refuse("PLAIN server without a ZAP handler"),
        Security::CurveServer { .. } if enforce && !domain => Ok(false),
        Security::CurveServer { .. } if handler => Ok(true),
        Security::CurveServer { .. } if enforce => refuse("no ZAP handler for the ZAP domain (zap_enforce_domain)"),
        Security::CurveServer { .. } => Ok(false),
        Security::PlainClient { .. } | Security::CurveClient { .. } => Ok(false),
    }
}

/// The IP address of a `tcp://host:port` peer; empty for other transports.
fn peer_ip(peer: &str) -> String {
    let Some(hostport) = peer.strip_prefix("tcp://") else { return String::new() };
    match hostport.rsplit_once(':') {
        Some((host, _)) => host.trim_start_matches('[').trim_end_matches(']').to_owned(),
        None => String::new(),
    }
}

/// The verdict on a client, from the socket's handler.
pub(crate) type Verdict = std::pin::Pin<Box<dyn std::future::Future<Output = ZapReply> + Send>>;

/// Asks the socket's handler about `request`. A boxed `Send` future, not an `async fn`: the REQ
/// socket that carries a request to `inproc://zeromq.zap.01` runs connection tasks that call
/// this, and the compiler cannot prove such a cycle of opaque futures `Send`.
pub(crate) fn authenticate(core: &Core, request: &ZapRequest) -> Verdict {
    if let Some(h) = &core.options.zap_handler {
        return Box::pin(std::future::ready(h.0.authenticate(request)));
    }
    let request = request.clone();
    Box::pin(async move {
        match tokio::time::timeout(ZAP_TIMEOUT, over_inproc(request)).await {
            Ok(Ok(reply)) => reply,
            Ok(Err(why)) => {
                tracing::warn!(%why, "ZAP handler failed");
                ZapReply::deny(500, why)
            }
            Err(_) => ZapReply::deny(500, "ZAP handler did not answer"),
        }
    })
}

async fn over_inproc(request: ZapRequest) -> Result<ZapReply, String> {
    let req = Socket::with_options(SocketType::Req, Options::default().linger(Some(Duration::ZERO)));
    req.connect(ZAP_ENDPOINT).await.map_err(|e| e.to_string())?;
    let id = Bytes::from_static(b"1");
    let msg: Message = request.to_frames(id.clone()).into_iter().collect();
    req.send(msg).await.map_err(|e| e.to_string())?;
    let reply = req.recv().await.map_err(|e| e.to_string())?;
    let frames: Vec<Bytes> = reply.iter().cloned().collect();
    ZapReply::from_frames(&frames, &id).map_err(str::to_owned)
}

/// A ready-made handler, like CZMQ's `zauth`: addresses allowed or denied, PLAIN users and
/// passwords, CURVE client keys.
///
/// Addresses come first: with an allow list, only those addresses pass; otherwise a denied one
/// is refused. Then NULL clients pass, PLAIN clients need a listed user with its password (the
/// user id is the user name), CURVE clients a listed key unless [`Authenticator::curve_any`]
/// (the user id is the key in Z85). A refusal is a 400.
#[derive(Debug, Default, Clone)]
pub struct Authenticator {
    allow: HashSet<Bytes>,
    deny: HashSet<Bytes>,
    plain: HashMap<Bytes, Bytes>,
    curve: HashSet<CurvePublicKey>,
    curve_any: bool,
}

impl Authenticator {
    /// A handler that refuses every PLAIN and CURVE client until told otherwise.
    pub fn new() -> Authenticator {
        Authenticator::default()
    }
    /// Allows this IP address (then only allowed addresses pass).
    pub fn allow(mut self, address: impl Into<Bytes>) -> Self {
        self.allow.insert(address.into());
        self
    }
    /// Denies this IP address.
    pub fn deny(mut self, address: impl Into<Bytes>) -> Self {
        self.deny.insert(address.into());
        self
    }
    /// Adds a PLAIN user.
    pub fn plain_user(mut self, username: impl Into<Bytes>, password: impl Into<Bytes>) -> Self {
        self.plain.insert(username.into(), password.into());
        self
    }
    /// Allows a CURVE client key.
    pub fn curve_key(mut self, key: CurvePublicKey) -> Self {
        self.curve.insert(key);
        self
    }
    /// Allows the CURVE client keys of every certificate in `dir`: CZMQ's `zcert` format
    /// ([`crate::cert`]), as CZMQ, pyzmq and [`crate::Certificate::save`] write them. Files that
    /// are not certificates are skipped; a directory that cannot be read is an error.
    pub fn curve_keys_from_dir(mut self, dir: impl AsRef<std::path::Path>) -> std::io::Result<Self> {
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            if !path.is_file() {
                continue;
            }
            if let Ok(cert) = crate::Certificate::read(&path) {
                self.curve.insert(cert.public);
            }
        }
        Ok(self)
    }
    /// Allows every CURVE client (the connection is still encrypted and the server authenticated).
    pub fn curve_any(mut self) -> Self {
        self.curve_any = true;
        self
    }
}

impl ZapHandler for Authenticator {
    fn authenticate(&self, r: &ZapRequest) -> ZapReply {
        if !self.allow.is_empty() && !self.allow.contains(&r.address) {
            return ZapReply::deny(400, "address not allowed");
        }
        if self.deny.contains(&r.address) {
            return ZapReply::deny(400, "address denied");
        }
        match (r.mechanism, r.credentials.as_slice()) {
            (m, []) if m == MechanismName::NULL => ZapReply::allow(Bytes::new()),
            (m, [user, password]) if m == MechanismName::PLAIN => match self.plain.get(user) {
                Some(expected) if crate::proto::mechanism::ct_eq(expected, password) => ZapReply::allow(user.clone()),
                _ => ZapReply::deny(400, "invalid user name or password"),
            },
            (m, [key]) if m == MechanismName::CURVE => match CurvePublicKey::from_slice(key) {
                Ok(k) if key.len() == 32 && (self.curve_any || self.curve.contains(&k)) => {
                    ZapReply::allow(Bytes::from(k.to_z85()))
                }
                _ => ZapReply::deny(400, "unknown client key"),
            },
            _ => ZapReply::deny(400, "unsupported mechanism"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(mechanism: MechanismName, address: &'static [u8], credentials: Vec<Bytes>) -> ZapRequest {
        ZapRequest {
            domain: Bytes::new(),
            address: Bytes::from_static(address),
            identity: Bytes::new(),
            mechanism,
            credentials,
        }
    }

    #[test]
    fn authenticator_rules() {
        let key = crate::curve_keypair().public;
        let a = Authenticator::new().plain_user("admin", "secret").curve_key(key).deny("10.0.0.9");
        let plain = |u: &'static [u8], p: &'static [u8]| {
            a.authenticate(&request(
                MechanismName::PLAIN,
                b"127.0.0.1",
                vec![Bytes::from_static(u), Bytes::from_static(p)],
            ))
        };
        assert_eq!(plain(b"admin", b"secret").status, 200);
        assert_eq!(plain(b"admin", b"secret").user_id, Bytes::from_static(b"admin"));
        assert_eq!(plain(b"admin", b"wrong").status, 400);
        assert_eq!(plain(b"nobody", b"secret").status, 400);
        let curve = |k: [u8; 32]| {
            a.authenticate(&request(MechanismName::CURVE, b"127.0.0.1", vec![Bytes::copy_from_slice(&k)]))
        };
        assert_eq!(curve(key.0).status, 200);
        assert_eq!(curve(crate::curve_keypair().public.0).status, 400);
        assert_eq!(a.authenticate(&request(MechanismName::NULL, b"10.0.0.9", vec![])).status, 400);
        assert_eq!(a.authenticate(&request(MechanismName::NULL, b"10.0.0.8", vec![])).status, 200);
        let only = Authenticator::new().allow("127.0.0.1");
        assert_eq!(only.authenticate(&request(MechanismName::NULL, b"127.0.0.2", vec![])).status, 400);
        assert_eq!(only.authenticate(&request(MechanismName::NULL, b"127.0.0.1", vec![])).status, 200);
    }

    #[test]
    fn certificates_from_a_directory() {
        let dir = std::env::temp_dir().join(format!("zmtp-certs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let key = crate::curve_keypair().public;
        let cert = format!(
            "#   ****  Generated by CZMQ  ****\n#   ZeroMQ CURVE Public Certificate\n\nmetadata\ncurve\n    public-key = \"{}\"\n",
            key.to_z85()
        );
        std::fs::write(dir.join("client.key"), cert).expect("write");
        std::fs::write(dir.join("junk.txt"), "public-key = \"short\"").expect("write");
        let a = Authenticator::new().curve_keys_from_dir(&dir).expect("readable");
        std::fs::remove_dir_all(&dir).expect("clean up");
        let req = request(MechanismName::CURVE, b"127.0.0.1", vec![Bytes::copy_from_slice(&key.0)]);
        assert_eq!(a.authenticate(&req).status, 200);
        let other =
            request(MechanismName::CURVE, b"127.0.0.1", vec![Bytes::copy_from_slice(&crate::curve_keypair().public.0)]);
        assert_eq!(a.authenticate(&other).status, 400);
    }

    /// libzmq 4.3.4's rules (null_mechanism.cpp, plain_server.cpp, curve_server.cpp), every case.
    #[test]
    fn who_asks_zap() {
        let curve = Security::CurveServer { keys: crate::curve_keypair() };
        let refused =
            |r: Result<bool, ConnectionError>| matches!(r, Err(ConnectionError::Unauthorized { status: 500, .. }));
        // (domain, enforce, handler) -> NULL, PLAIN server, CURVE server; None = refused.
        type Row = ((bool, bool, bool), [Option<bool>; 3]);
        let table: [Row; 8] = [
            ((false, false, false), [Some(false), None, Some(false)]),
            ((false, false, true), [Some(false), Some(true), Some(true)]),
            ((true, false, false), [Some(false), None, Some(false)]),
            ((true, false, true), [Some(true), Some(true), Some(true)]),
            ((false, true, false), [Some(false), None, Some(false)]),
            ((false, true, true), [Some(false), None, Some(false)]),
            ((true, true, false), [None, None, None]),
            ((true, true, true), [Some(true), Some(true), Some(true)]),
        ];
        for ((domain, enforce, handler), expected) in table {
            for (security, want) in [Security::Null, Security::PlainServer, curve.clone()].iter().zip(expected) {
                let got = policy(security, domain, enforce, handler);
                match want {
                    Some(ask) => {
                        assert_eq!(got, Ok(ask), "{security:?} domain {domain} enforce {enforce} handler {handler}")
                    }
                    None => assert!(refused(got), "{security:?} domain {domain} enforce {enforce} handler {handler}"),
                }
            }
        }
        let client = Security::PlainClient { username: Bytes::new(), password: Bytes::new() };
        assert_eq!(policy(&client, true, true, false), Ok(false));
    }

    #[test]
    fn peer_addresses() {
        assert_eq!(peer_ip("tcp://127.0.0.1:5555"), "127.0.0.1");
        assert_eq!(peer_ip("tcp://[::1]:5555"), "::1");
        assert_eq!(peer_ip("ipc:///tmp/x"), "");
    }
}
