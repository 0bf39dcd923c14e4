//! The request server on `ret_port`: the MWorkerQueue unit (a ROUTER on
//! `tcp://{interface}:{ret_port}`) and the MWorker units (each serving one
//! request at a time).
//!
//! Salt's MWorkerQueue is a `zmq_device` from the ROUTER to a DEALER at
//! `ipc://{sock_dir}/workers-default.ipc` that the MWorker processes'
//! REP sockets connect to, first come first served. Ours are threads of
//! one process, so the queue is in memory ([`crate::reqqueue`]): the
//! MWorkerQueue stamps each request with its arrival time and marks the
//! clear `_auth` ones; a free worker takes the next one by the queue's rule
//! (returns before sign-ins; sign-ins newest-first when the master is
//! behind; a sign-in that waited too long answered `"bad load"` unsigned,
//! which tells its minion to back off) and hands its reply, with the
//! request's routing frames, back to the MWorkerQueue, which sends it.
//!
//! [`handle_request`] is the channel layer every request passes
//! (`ReqServerChannel.handle_message`): decode the envelope, refuse
//! versions below `minimum_auth_version`, open v3 aes loads with the
//! minion's session key and check `id` and `tok`, hand `_auth` to
//! [`crate::auth`] and everything else to [`crate::funcs`], then wrap the
//! reply as `send` (session-encrypted), `send_clear` or `send_private`.
//! Every refusal is the string Salt answers with (`"bad load"`, ...).

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use salt_proto::envelope::{self, Request, BAD_LOAD};
use salt_proto::{msgpack, value, Value};
use zmtp::{Message, Options, Socket, SocketType};

use crate::funcs::Reply;
use crate::keys::valid_id;
use crate::publisher::{heartbeat, keepalive};
use crate::reqqueue::{Queued, Shed};
use crate::state::Master;
use crate::supervisor::{Shutdown, UnitError};

/// The empty marker file netapi looks for.
pub const WORKERS_MARKER: &str = "workers.ipc";

/// Largest request looked into to see whether it is an `_auth` (one is
/// about 1 KiB; returns can be megabytes and are never `_auth`).
const AUTH_PEEK_LIMIT: usize = 64 * 1024;

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
    let marker = c.sock_dir.join(WORKERS_MARKER);
    crate::fsutil::write_atomic(&marker, b"", 0o600).map_err(|e| UnitError::io("create", &marker, e))?;
    tracing::info!("MWorkerQueue bound {ep}");
    let mut trimmer = crate::heaptrim::Trimmer::new(Instant::now());
    let mut trim_tick = tokio::time::interval(crate::heaptrim::PERIOD);
    trim_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let r = 'serve: loop {
        tokio::select! {
            _ = shutdown.wait() => break Ok(()),
            _ = trim_tick.tick() => {
                if trimmer.due(Instant::now()) {
                    // Off this thread: it runs every minion's connection.
                    tokio::task::spawn_blocking(|| {
                        let t = Instant::now();
                        let released = crate::heaptrim::trim();
                        tracing::debug!("heap trimmed in {:?} (pages released: {released})", t.elapsed());
                    });
                }
            }
            m = router.recv() => {
                let m = match m {
                    Ok(m) => m,
                    Err(e) => break Err(UnitError::zmq("recv", e)),
                };
                if m.len() < 2 {
                    continue; // a routing id without a body
                }
                trimmer.received();
                let auth = m.frames().last().is_some_and(|b| is_auth(b));
                for (q, why) in master.requests.push(Queued { msg: m, arrived: Instant::now(), auth }) {
                    log_shed(&q, why);
                    if let Err(e) = router.send(reply_to(q.msg, Bytes::from(str_reply(BAD_LOAD)))).await {
                        break 'serve Err(UnitError::zmq("send", e));
                    }
                }
            }
            reply = master.replies.pop() => {
                if let Err(e) = router.send(reply).await {
                    break Err(UnitError::zmq("send", e));
                }
            }
        }
    };
    router.close().await;
    r
}

/// Whether a request body is a clear `_auth`.
pub fn is_auth(frame: &[u8]) -> bool {
    if frame.len() > AUTH_PEEK_LIMIT {
        return false;
    }
    let Ok(v) = msgpack::decode(frame) else { return false };
    Request::from_value(&v).is_ok_and(|r| r.clear_cmd() == Some("_auth"))
}

/// The request's routing frames with `reply` in place of its body.
fn reply_to(msg: Message, reply: Bytes) -> Message {
    let mut frames = msg.into_frames();
    frames.pop();
    frames.push(reply);
    Message::from(frames)
}

fn log_shed(q: &Queued, why: Shed) {
    let waited = q.arrived.elapsed();
    match why {
        Shed::Backoff => {
            tracing::debug!("Telling a minion to back off: its _auth waited {waited:?} (auth_backoff_after)")
        }
        Shed::Stale => tracing::debug!("Dropping an _auth request that waited {waited:?} (auth_stale_after)"),
        Shed::Full => {
            tracing::warn!("The request queue is full: a request that waited {waited:?} answered \"bad load\"")
        }
    }
}

/// Run one MWorker until shutdown.
pub async fn run_worker(master: Arc<Master>, mut shutdown: Shutdown) -> Result<(), UnitError> {
    loop {
        let (next, shed) = tokio::select! {
            _ = shutdown.wait() => break,
            w = master.requests.next() => w,
        };
        for (q, why) in shed {
            log_shed(&q, why);
            if !master.replies.push(reply_to(q.msg, Bytes::from(str_reply(BAD_LOAD)))) {
                tracing::warn!("the reply queue is full; a reply dropped");
            }
        }
        let Some(q) = next else { continue };
        let body = q.msg.frames().last().cloned().unwrap_or_default();
        let reply = handle_request(&master, &body).await;
        if !master.replies.push(reply_to(q.msg, Bytes::from(reply))) {
            tracing::warn!("the reply queue is full; a reply dropped");
        }
    }
    Ok(())
}

/// The accepted public key of `id`, read and parsed.
fn accepted_key(master: &Master, id: &str) -> salt_proto::Result<salt_proto::PublicKey> {
    match master.keystore.fetch_in(crate::keys::KeyState::Accepted, id) {
        Ok(Some(pem)) => salt_proto::PublicKey::from_pem(pem.trim()),
        Ok(None) => Err(salt_proto::Crypto::InvalidKey("no accepted key".to_owned()).into()),
        Err(e) => Err(salt_proto::Crypto::InvalidKey(e.to_string()).into()),
    }
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
            // The accepted key file must exist before anything else:
            // only an accepted minion gets a session key file, ids from
            // the network never create files by themselves.
            let stamp = master
                .keystore
                .path(crate::keys::KeyState::Accepted, &id)
                .ok()
                .and_then(|p| crate::tokens::Stamp::of(&p));
            let Some(stamp) = stamp else {
                master.tokens.forget(&id);
                tracing::warn!(
                    "Salt minion claiming to be {id} attempted to communicate with master, but key could not be read and verification was denied."
                );
                return str_reply(BAD_LOAD);
            };
            let session = match master.session_key(&id) {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!("session key of {id}: {e}");
                    return str_reply(BAD_LOAD);
                }
            };
            // `tok` is checked against the key only when it is not the one
            // already verified against this very key file (crate::tokens).
            let mut minion_pub = None;
            let opened = envelope::open_aes_request_with(&id, &load, &session, |tok| {
                if master.tokens.known(&id, &stamp, tok) {
                    return Ok(true);
                }
                let key = accepted_key(master, &id)?;
                let valid = envelope::token_valid(&key, tok)?;
                if valid {
                    master.tokens.remember(&id, stamp, tok);
                }
                minion_pub = Some(key);
                Ok(valid)
            });
            let opened = match opened {
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
                    let minion_pub = match minion_pub.map_or_else(|| accepted_key(master, &id), Ok) {
                        Ok(k) => k,
                        Err(e) => {
                            tracing::warn!("the accepted key of {id}: {e}");
                            return str_reply(BAD_LOAD);
                        }
                    };
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
    fn only_clear_auth_requests_are_auth() {
        let Ok(key) = PrivateKey::generate(1024) else { return };
        let req = AuthRequest::new("m1", &key.public_key(), None, b"tok", EncAlgo::OaepSha1, SigAlgo::Pkcs1v15Sha1);
        let Ok(req) = req else { panic!("{req:?}") };
        let auth = req.to_request().encode();
        assert!(is_auth(&auth));
        // Anything else (publish, returns, events, pillar) and garbage is not.
        let other = msgpack::encode(&value::map([
            ("enc", value::string("clear")),
            ("load", value::map([("cmd", value::string("publish"))])),
        ]));
        assert!(!is_auth(&other));
        assert!(!is_auth(b"\xc1junk"));
        let mut big = auth.clone();
        big.resize(AUTH_PEEK_LIMIT + 1, 0);
        assert!(!is_auth(&big), "large requests are not looked into");
    }
}
