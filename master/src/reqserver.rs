//! The request server on `ret_port`: the MWorkerQueue unit (a ROUTER on
//! `tcp://{interface}:{ret_port}` proxied to a DEALER bound at
//! `ipc://{sock_dir}/workers-default.ipc`, Salt's pooled `zmq_device`
//! with its one `default` pool) and the MWorker units (each a REP socket
//! connected to that DEALER, answering one request at a time).
//!
//! [`handle_request`] is the channel layer every request passes
//! (`ReqServerChannel.handle_message`): decode the envelope, refuse
//! versions below `minimum_auth_version`, open v3 aes loads with the
//! minion's session key and check `id` and `tok`, hand `_auth` to
//! [`crate::auth`] and everything else to [`crate::funcs`], then wrap the
//! reply as `send` (session-encrypted), `send_clear` or `send_private`.
//! Every refusal is the string Salt answers with (`"bad load"`, ...).
//!
//! Unlike Salt's plain `zmq_device`, the queue stamps each request with its
//! arrival time (an extra last frame, which the REP worker sees after the
//! body; replies pass unchanged), and a worker answers an `_auth` that
//! waited longer than `auth_stale_after` with `"bad load"` instead of
//! signing it ([`stale_auth`]): in a sign-in storm the minion has given up
//! on it after its `auth_timeout` and sent another, so the RSA work would
//! be wasted — and with every worker busy on such leftovers, the fresh
//! requests time out too (measured with `salt-swarm-rs`, 1,000 minions:
//! 12.5 `_auth` requests per minion and 83 s, against 1.2 and 16 s in a
//! run that did not tip over).

use std::os::unix::fs::PermissionsExt as _;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use salt_proto::envelope::{self, Request, BAD_LOAD};
use salt_proto::{msgpack, value, Value};
use zmtp::{Message, Options, Socket, SocketType};

use crate::funcs::Reply;
use crate::keys::valid_id;
use crate::publisher::{heartbeat, keepalive};
use crate::state::Master;
use crate::supervisor::{Shutdown, UnitError};

/// The DEALER endpoint of the `default` pool.
pub const WORKERS_SOCK: &str = "workers-default.ipc";
/// The empty marker file netapi looks for.
pub const WORKERS_MARKER: &str = "workers.ipc";

/// Run the MWorkerQueue until shutdown.
pub async fn run_queue(master: Arc<Master>, mut shutdown: Shutdown) -> Result<(), UnitError> {
    let c = &master.config;
    let mut fopts = heartbeat(Options::default())
        .linger(Some(Duration::from_secs(1)))
        .max_msg_size(Some(c.max_request_size))
        .router_handover(true);
    fopts.backlog = Some(c.zmq_backlog);
    fopts.tcp_keepalive = keepalive(&master.config);
    let router = Socket::with_options(SocketType::Router, fopts);
    let ep = c.tcp_endpoint(c.ret_port);
    router.bind(&ep).await.map_err(|e| UnitError::zmq(format!("bind {ep}"), e))?;
    let path = c.sock_dir.join(WORKERS_SOCK);
    let _ = std::fs::remove_file(&path);
    let dealer = Socket::with_options(SocketType::Dealer, Options::default().linger(Some(Duration::from_millis(1))));
    let wep = c.ipc_endpoint(WORKERS_SOCK);
    dealer.bind(&wep).await.map_err(|e| UnitError::zmq(format!("bind {wep}"), e))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| UnitError::io("chmod", &path, e))?;
    let marker = c.sock_dir.join(WORKERS_MARKER);
    crate::fsutil::write_atomic(&marker, b"", 0o600).map_err(|e| UnitError::io("create", &marker, e))?;
    tracing::info!("MWorkerQueue bound {ep} → {wep}");
    let r = tokio::select! {
        _ = shutdown.wait() => Ok(()),
        r = stamping_proxy(&router, &dealer) => r.map_err(|e| UnitError::zmq("proxy", e)),
    };
    router.close().await;
    dealer.close().await;
    let _ = std::fs::remove_file(&path);
    r
}

/// The process-wide origin of arrival stamps.
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// An arrival stamp: nanoseconds since [`epoch`], 8 octets little-endian.
fn stamp_now() -> Bytes {
    let ns = u64::try_from(epoch().elapsed().as_nanos()).unwrap_or(u64::MAX);
    Bytes::copy_from_slice(&ns.to_le_bytes())
}

/// How long ago `stamp` was made (`None` for anything that is not a stamp).
fn waited(stamp: &[u8]) -> Option<Duration> {
    let b: [u8; 8] = stamp.try_into().ok()?;
    Some(epoch().elapsed().saturating_sub(Duration::from_nanos(u64::from_le_bytes(b))))
}

/// ROUTER → DEALER with an arrival stamp appended to every request; replies
/// go back unchanged (the DEALER side only ever carries our workers' replies).
async fn stamping_proxy(router: &Socket, dealer: &Socket) -> Result<(), zmtp::Error> {
    loop {
        tokio::select! {
            m = router.recv() => {
                let mut m = m?;
                m.push_back(stamp_now());
                dealer.send(m).await?;
            }
            m = dealer.recv() => router.send(m?).await?,
        }
    }
}

/// Whether to answer `frame` with `"bad load"` unprocessed: an `_auth`
/// request that `waited` longer than `limit` (zero: never).
pub fn stale_auth(frame: &[u8], waited: Option<Duration>, limit: Duration) -> bool {
    let Some(w) = waited else { return false };
    if limit.is_zero() || w <= limit {
        return false;
    }
    let Ok(v) = msgpack::decode(frame) else { return false };
    Request::from_value(&v).is_ok_and(|r| r.clear_cmd() == Some("_auth"))
}

/// Run one MWorker until shutdown.
pub async fn run_worker(master: Arc<Master>, mut shutdown: Shutdown) -> Result<(), UnitError> {
    let opts = Options::default()
        .linger(Some(Duration::from_millis(1)))
        .max_msg_size(Some(master.config.max_request_size))
        .reconnect(Duration::from_millis(100), Duration::from_secs(1));
    let rep = Socket::with_options(SocketType::Rep, opts);
    let ep = master.config.ipc_endpoint(WORKERS_SOCK);
    rep.connect(&ep).await.map_err(|e| UnitError::zmq(format!("connect {ep}"), e))?;
    loop {
        let req = tokio::select! {
            _ = shutdown.wait() => break,
            r = rep.recv() => r.map_err(|e| UnitError::zmq("recv", e))?,
        };
        let frame = req.first().cloned().unwrap_or_default();
        // The queue's stamp is the last frame (a lone frame is a body).
        let age = if req.len() >= 2 { req.frames().last().and_then(|s| waited(s)) } else { None };
        let limit = Duration::from_secs(master.config.auth_stale_after);
        let reply = if stale_auth(&frame, age, limit) {
            tracing::debug!("Dropping an _auth request that waited {age:?} (auth_stale_after {limit:?})");
            str_reply(BAD_LOAD)
        } else {
            handle_request(&master, &frame).await
        };
        rep.send(Message::from(vec![Bytes::from(reply)])).await.map_err(|e| UnitError::zmq("send", e))?;
    }
    rep.close().await;
    Ok(())
}

fn str_reply(s: &str) -> Vec<u8> {
    msgpack::encode(&value::string(s))
}

/// Answer one request frame; returns the reply frame.
pub async fn handle_request(master: &Master, frame: &[u8]) -> Vec<u8> {
    let value = match msgpack::decode(frame) {
        Ok(v @ Value::Map(_)) => v,
        // MWorkerQueue's routing step fails on these.
        _ => {
            tracing::error!("Error routing request: undecodable payload");
            return msgpack::encode(&value::map([("error", value::string("Routing error"))]));
        }
    };
    if value::get(&value, "enc").is_none() || value::get(&value, "load").is_none() {
        tracing::warn!("bad load received on socket");
        return str_reply(BAD_LOAD);
    }
    let request = match Request::from_value(&value) {
        Ok(r) => r,
        Err(e) => {
            tracing::error!("Bad load from minion: {e}");
            return str_reply(BAD_LOAD);
        }
    };
    if request.version() < master.config.minimum_auth_version {
        tracing::warn!(
            "Rejected a request using protocol version {} (minimum required: {})",
            request.version(),
            master.config.minimum_auth_version
        );
        return str_reply(BAD_LOAD);
    }
    match request {
        Request::Clear { load, version } => {
            let Value::Map(_) = load else { return str_reply("payload and load must be a dict") };
            if let Some(id) = value::get(&load, "id") {
                match value::as_str(id) {
                    Some(s) if s.contains('\0') => return str_reply("bad load: id contains a null byte"),
                    Some(_) => {}
                    None => return str_reply("bad load: id is not a string"),
                }
            }
            let cmd = value::get_str(&load, "cmd").unwrap_or_default().to_owned();
            if cmd == "_auth" {
                return msgpack::encode(&crate::auth::handle_auth(master, &load, version).await);
            }
            let ret = crate::funcs::clear(master, &cmd, load).await;
            msgpack::encode(&ret)
        }
        Request::Aes { load, id, enc_algo, sig_algo, .. } => {
            if !valid_id(&id) {
                tracing::warn!("Request contains invalid minion id {id:?}");
                return str_reply(BAD_LOAD);
            }
            let minion_pub = match master.keystore.fetch_in(crate::keys::KeyState::Accepted, &id) {
                Ok(Some(pem)) => match salt_proto::PublicKey::from_pem(pem.trim()) {
                    Ok(k) => k,
                    Err(_) => return str_reply(BAD_LOAD),
                },
                _ => {
                    tracing::warn!(
                        "Salt minion claiming to be {id} attempted to communicate with master, but key could not be read and verification was denied."
                    );
                    return str_reply(BAD_LOAD);
                }
            };
            // Only an accepted minion gets a session key file: ids from
            // the network never create files by themselves.
            let session = match master.session_key(&id) {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!("session key of {id}: {e}");
                    return str_reply(BAD_LOAD);
                }
            };
            let opened = match envelope::open_aes_request(&id, &load, &session, &minion_pub) {
                Ok(o) => o,
                Err(e) => {
                    tracing::debug!("Bad load from minion {id}: {e}");
                    return str_reply(BAD_LOAD);
                }
            };
            if master.config.request_server_ttl > 0 {
                let ts = value::get(&opened.load, "ts").and_then(Value::as_i64).unwrap_or(0);
                if salt_proto::util::unix_time() - ts > master.config.request_server_ttl {
                    tracing::warn!("Received request from {id} with expired ttl");
                    return str_reply(BAD_LOAD);
                }
            }
            let cmd = opened.cmd().unwrap_or_default().to_owned();
            let nonce = opened.nonce.clone();
            match crate::funcs::aes(master, &id, &cmd, opened.load).await {
                Reply::Send(ret) => match envelope::seal_aes_reply(&session, &ret, nonce.as_deref()) {
                    Ok(ct) => msgpack::encode(&value::bytes(ct)),
                    Err(e) => {
                        tracing::error!("cannot encrypt a reply to {id}: {e}");
                        str_reply("Server-side exception handling payload")
                    }
                },
                Reply::Private { ret, dictkey } => {
                    let Some(nonce) = nonce else {
                        return msgpack::encode(&value::map([(
                            "error",
                            value::string("Nonce not included in request"),
                        )]));
                    };
                    let enc = enc_algo.as_deref().unwrap_or("OAEP-SHA1").parse();
                    let sig = sig_algo.as_deref().unwrap_or("PKCS1v15-SHA1").parse();
                    let (Ok(enc), Ok(sig)) = (enc, sig) else { return str_reply(BAD_LOAD) };
                    match envelope::seal_private_reply(
                        &master.master_keys.private,
                        &minion_pub,
                        &ret,
                        &dictkey,
                        &nonce,
                        enc,
                        sig,
                    ) {
                        Ok(v) => msgpack::encode(&v),
                        Err(e) => {
                            tracing::error!("cannot seal a private reply to {id}: {e}");
                            str_reply("Server-side exception handling payload")
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use salt_proto::envelope::AuthRequest;
    use salt_proto::{EncAlgo, PrivateKey, SigAlgo};

    #[test]
    fn stamps() {
        let s = stamp_now();
        assert_eq!(s.len(), 8);
        let w = waited(&s);
        assert!(w.is_some_and(|w| w < Duration::from_secs(5)), "{w:?}");
        assert_eq!(waited(b"short"), None);
        // A stamp from the future (a forged frame) waited zero, not a wrap-around.
        assert_eq!(waited(&u64::MAX.to_le_bytes()), Some(Duration::ZERO));
    }

    #[test]
    fn only_old_auth_requests_are_stale() {
        let Ok(key) = PrivateKey::generate(1024) else { return };
        let req = AuthRequest::new("m1", &key.public_key(), None, b"tok", EncAlgo::OaepSha1, SigAlgo::Pkcs1v15Sha1);
        let Ok(req) = req else { panic!("{req:?}") };
        let auth = req.to_request().encode();
        let limit = Duration::from_secs(5);
        let old = Some(Duration::from_secs(6));
        assert!(stale_auth(&auth, old, limit));
        assert!(!stale_auth(&auth, Some(Duration::from_secs(4)), limit));
        assert!(!stale_auth(&auth, None, limit), "no stamp: never stale");
        assert!(!stale_auth(&auth, old, Duration::ZERO), "auth_stale_after 0: never stale");
        // Anything else that waited as long is still processed (returns, events, pillar).
        let other = msgpack::encode(&value::map([
            ("enc", value::string("clear")),
            ("load", value::map([("cmd", value::string("publish"))])),
        ]));
        assert!(!stale_auth(&other, old, limit));
        assert!(!stale_auth(b"\xc1junk", old, limit));
    }
}
