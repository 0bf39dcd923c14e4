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

use std::os::unix::fs::PermissionsExt as _;
use std::sync::Arc;
use std::time::Duration;

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
    fopts.tcp_keepalive = keepalive(&master);
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
        r = zmtp::proxy(&router, &dealer, None) => r.map_err(|e| UnitError::zmq("proxy", e)),
    };
    router.close().await;
    dealer.close().await;
    let _ = std::fs::remove_file(&path);
    r
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
        let reply = handle_request(&master, &frame).await;
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
