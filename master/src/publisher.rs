//! The Publisher unit (Salt's `PubServerChannel._publish_daemon`): a PUB
//! socket on `tcp://{interface}:{publish_port}` that every minion's SUB
//! stays connected to, fed by the MWorkers' in-process
//! [`PublishQueue`](crate::state::PublishQueue) and by PUSH peers on
//! `ipc://{sock_dir}/publish_pull.ipc` (Salt's internal channel; the
//! stock CLI also checks that this file exists to see a running master).
//!
//! Each publish is serialised, encrypted with the shared AES key and
//! signed once ([`salt_proto::envelope::wrap_publish`]), then sent as
//! one frame, or with `zmq_filtering` as `[sha1(id) hex, payload]` per
//! targeted minion (`[b"broadcast", payload]` when the target is not a
//! plain id list). The PUB socket never blocks: a subscriber beyond
//! `pub_hwm` misses messages, as with libzmq.

use std::os::unix::fs::PermissionsExt as _;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use salt_proto::{envelope, msgpack, Value};
use zmtp::{Message, Options, Socket, SocketType};

use crate::state::{Master, PublishJob};
use crate::supervisor::{Shutdown, UnitError};

/// The pull socket's file name.
pub const PULL_SOCK: &str = "publish_pull.ipc";

/// ZMTP heartbeats Salt 3008.2+ sets on the PUB socket
/// (`zmq_heartbeat_ivl` 10 s, `zmq_heartbeat_timeout` 30 s).
pub fn heartbeat(opts: Options) -> Options {
    opts.heartbeat(Duration::from_secs(10), None, Some(Duration::from_secs(30)))
}

/// TCP keepalive from the master options (`_set_tcp_keepalive`).
pub fn keepalive(master: &Master) -> Option<zmtp::transport::TcpKeepalive> {
    let c = &master.config;
    if !c.tcp_keepalive {
        return None;
    }
    let secs = |v: i64| u64::try_from(v).ok().filter(|s| *s > 0).map(Duration::from_secs);
    Some(zmtp::transport::TcpKeepalive {
        idle: secs(c.tcp_keepalive_idle),
        interval: secs(c.tcp_keepalive_intvl),
        retries: u32::try_from(c.tcp_keepalive_cnt).ok().filter(|n| *n > 0),
    })
}

/// The frames of one wrapped publish.
fn frames(master: &Master, job: PublishJob) -> Result<Vec<Message>, salt_proto::Error> {
    let aes = master.aes();
    let signer = master.config.sign_pub_messages.then_some((&master.master_keys.private, master.publish_sig_algo));
    let env = envelope::wrap_publish(&aes.crypticle, job.load, master.next_serial(), signer)?;
    let payload = Bytes::from(msgpack::encode(&env));
    Ok(match envelope::publish_topics(master.config.zmq_filtering, job.topics.as_deref()) {
        None => vec![Message::from(vec![payload])],
        Some(topics) => topics.into_iter().map(|t| Message::from(vec![Bytes::from(t), payload.clone()])).collect(),
    })
}

/// Run the Publisher until shutdown.
pub async fn run_publisher(master: Arc<Master>, mut shutdown: Shutdown) -> Result<(), UnitError> {
    let c = &master.config;
    let mut opts = heartbeat(Options::default()).hwm(c.pub_hwm).linger(Some(Duration::from_millis(1)));
    opts.backlog = Some(c.zmq_backlog);
    opts.tcp_keepalive = keepalive(&master);
    let pub_sock = Socket::with_options(SocketType::Pub, opts);
    let ep = c.tcp_endpoint(c.publish_port);
    pub_sock.bind(&ep).await.map_err(|e| UnitError::zmq(format!("bind {ep}"), e))?;
    let pull_path = c.sock_dir.join(PULL_SOCK);
    let _ = std::fs::remove_file(&pull_path);
    let pull_opts = Options::default().max_msg_size(Some(c.max_request_size));
    let pull = Socket::with_options(SocketType::Pull, pull_opts);
    let pull_ep = c.ipc_endpoint(PULL_SOCK);
    pull.bind(&pull_ep).await.map_err(|e| UnitError::zmq(format!("bind {pull_ep}"), e))?;
    std::fs::set_permissions(&pull_path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| UnitError::io("chmod", &pull_path, e))?;
    tracing::info!("Publisher bound {ep} and {pull_ep}");
    loop {
        let job = tokio::select! {
            _ = shutdown.wait() => break,
            job = master.publish.pop() => job,
            msg = pull.recv() => match msg {
                Ok(m) => match m.first().map(|f| msgpack::decode(f)) {
                    Some(Ok(load @ Value::Map(_))) => PublishJob { load, topics: None },
                    _ => {
                        tracing::warn!("undecodable publish on {PULL_SOCK}; dropped");
                        continue;
                    }
                },
                Err(e) => return Err(UnitError::zmq("publish_pull recv", e)),
            },
        };
        match frames(&master, job) {
            Ok(msgs) => {
                for m in msgs {
                    if let Err(e) = pub_sock.send(m).await {
                        tracing::error!("publish send failed: {e}");
                    }
                }
            }
            Err(e) => tracing::error!("cannot wrap a publish: {e}"),
        }
    }
    let _ = std::fs::remove_file(&pull_path);
    pub_sock.close().await;
    Ok(())
}
