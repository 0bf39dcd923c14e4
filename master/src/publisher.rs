//! The Publisher (Salt's `PubServerChannel._publish_daemon`): a PUB socket
//! on `tcp://{interface}:{publish_port}` that every minion's SUB stays
//! connected to, in a process of its own, as in Salt.
//!
//! One master process would hold two connections per minion (the SUB here
//! and the REQ of the request server) against one `nofile` limit; the
//! Publisher process takes the SUB half. It is this same binary started
//! again with the hidden argument `--unit Publisher` ([`UNIT_ARG`]), named
//! `Publisher` for the OS (`ps -o comm`, `top`; Salt sets its process title
//! the same way), and it dies with the master (`PR_SET_PDEATHSIG`).
//!
//! Two halves:
//!
//! * [`run_publisher`], the master's `Publisher` unit: starts the process,
//!   takes each publish from the MWorkers' in-process
//!   [`PublishQueue`](crate::state::PublishQueue), serialises, encrypts
//!   with the shared AES key and signs it once
//!   ([`salt_proto::envelope::wrap_publish`]), and PUSHes it to
//!   `ipc://{sock_dir}/publish_pull.ipc` as `[payload, topic...]`. When the
//!   process exits the unit fails, and the ProcessManager restarts both.
//!   The AES key and the master key never leave the master process.
//! * [`run_publish_daemon`], the `Publisher` process: binds the PUB socket
//!   and the PULL socket `publish_pull.ipc` (mode `0600`; the stock CLI
//!   checks that this file exists to see a running master), and sends
//!   each payload as one frame, or with `zmq_filtering` as
//!   `[topic, payload]` per topic (`sha1(id)` hex, or `broadcast`). The PUB
//!   socket never blocks: a subscriber beyond `pub_hwm` misses messages,
//!   as with libzmq.

use std::os::unix::fs::PermissionsExt as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use salt_proto::{envelope, msgpack, Value};
use zmtp::{Message, Options, Socket, SocketType};

use crate::config::MasterConfig;
use crate::state::{Master, PublishJob};
use crate::supervisor::{Shutdown, UnitError};

/// The pull socket's file name.
pub const PULL_SOCK: &str = "publish_pull.ipc";

/// The hidden command-line argument that runs one unit of the master as a
/// process of its own: `salt-master-rs ... --unit Publisher`.
pub const UNIT_ARG: &str = "--unit";

/// The Publisher process's unit name (its `comm`).
pub const PUBLISHER_UNIT: &str = "Publisher";

/// Publishes the master may have sent ahead to the Publisher process.
const FEED_HWM: usize = 10_000;

/// How long the Publisher process gets to stop after SIGTERM.
const CHILD_GRACE: Duration = Duration::from_secs(3);

/// ZMTP heartbeats Salt 3008.2+ sets on the PUB socket
/// (`zmq_heartbeat_ivl` 10 s, `zmq_heartbeat_timeout` 30 s).
pub fn heartbeat(opts: Options) -> Options {
    opts.heartbeat(Duration::from_secs(10), None, Some(Duration::from_secs(30)))
}

/// TCP keepalive from the master options (`_set_tcp_keepalive`).
pub fn keepalive(c: &MasterConfig) -> Option<zmtp::transport::TcpKeepalive> {
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

/// The message for the Publisher process: `[payload, topic...]`, the
/// payload wrapped once (serial, AES, signature), the topics already in
/// their wire form (none without `zmq_filtering`).
fn feed_message(master: &Master, job: PublishJob) -> Result<Message, salt_proto::Error> {
    let aes = master.aes();
    let signer = master.config.sign_pub_messages.then_some((&master.master_keys.private, master.publish_sig_algo));
    let env = envelope::wrap_publish(&aes.crypticle, job.load, master.next_serial(), signer)?;
    let mut frames = vec![Bytes::from(msgpack::encode(&env))];
    if let Some(topics) = envelope::publish_topics(master.config.zmq_filtering, job.topics.as_deref()) {
        frames.extend(topics.into_iter().map(Bytes::from));
    }
    Ok(Message::from(frames))
}

/// The wire messages of one message from the master, or why it is refused:
/// the payload must be a wrapped (`enc: aes`) publish, never a clear load.
fn wire_messages(msg: Message) -> Result<Vec<Message>, &'static str> {
    let mut frames = msg.into_frames().into_iter();
    let Some(payload) = frames.next() else { return Err("an empty message") };
    match msgpack::decode(&payload) {
        Ok(env @ Value::Map(_)) if salt_proto::value::get_str(&env, "enc") == Some("aes") => {}
        _ => return Err("not a wrapped publish"),
    }
    let topics: Vec<Bytes> = frames.collect();
    if topics.is_empty() {
        return Ok(vec![Message::from(vec![payload])]);
    }
    Ok(topics.into_iter().map(|t| Message::from(vec![t, payload.clone()])).collect())
}

/// Start the Publisher process: this executable with the master's own
/// arguments plus `--unit Publisher`.
fn spawn_process() -> Result<tokio::process::Child, UnitError> {
    let exe = std::env::current_exe().map_err(|e| UnitError::Other(format!("cannot find my executable: {e}")))?;
    let mut args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    // Never pass a --unit of our own on (the master is not a unit process).
    if let Some(i) = args.iter().position(|a| a == UNIT_ARG) {
        args.truncate(i);
    }
    let mut cmd = tokio::process::Command::new(&exe);
    cmd.args(&args)
        .arg(UNIT_ARG)
        .arg(PUBLISHER_UNIT)
        .arg0(format!("salt-master-rs {PUBLISHER_UNIT}"))
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    cmd.spawn().map_err(|e| UnitError::io("spawn", &exe, e))
}

/// Ask the Publisher process to stop (SIGTERM), then kill it after
/// [`CHILD_GRACE`].
async fn stop_process(child: &mut tokio::process::Child) {
    if let Some(pid) = child.id().and_then(|p| rustix::process::Pid::from_raw(p as i32)) {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
    }
    if tokio::time::timeout(CHILD_GRACE, child.wait()).await.is_err() {
        tracing::warn!("the Publisher process did not stop in time; killing it");
        let _ = child.kill().await;
    }
}

/// The master's Publisher unit: run the Publisher process and feed it
/// until shutdown; fails (to be restarted) when the process exits.
pub async fn run_publisher(master: Arc<Master>, mut shutdown: Shutdown) -> Result<(), UnitError> {
    let c = &master.config;
    let mut child = spawn_process()?;
    tracing::info!("started the Publisher process, pid {}", child.id().unwrap_or(0));
    let opts = Options::default().sndhwm(FEED_HWM).linger(Some(Duration::from_millis(500)));
    let push = Socket::with_options(SocketType::Push, opts);
    let ep = c.ipc_endpoint(PULL_SOCK);
    push.connect(&ep).await.map_err(|e| UnitError::zmq(format!("connect {ep}"), e))?;
    let gone = |status: std::io::Result<std::process::ExitStatus>| match status {
        Ok(s) => UnitError::Other(format!("the Publisher process exited ({s})")),
        Err(e) => UnitError::Other(format!("the Publisher process: {e}")),
    };
    loop {
        let job = tokio::select! {
            _ = shutdown.wait() => break,
            status = child.wait() => return Err(gone(status)),
            job = master.publish.pop() => job,
        };
        let msg = match feed_message(&master, job) {
            Ok(m) => m,
            Err(e) => {
                tracing::error!("cannot wrap a publish: {e}");
                continue;
            }
        };
        tokio::select! {
            r = push.send(msg) => if let Err(e) = r {
                tracing::error!("publish to the Publisher process failed: {e}");
            },
            status = child.wait() => return Err(gone(status)),
            _ = shutdown.wait() => break,
        }
    }
    stop_process(&mut child).await;
    push.close().await;
    Ok(())
}

/// The Publisher process: bind the PUB and PULL sockets and fan out what
/// the master sends until `stop` resolves.
pub async fn run_publish_daemon(
    c: &MasterConfig,
    stop: impl std::future::Future<Output = ()>,
) -> Result<(), UnitError> {
    let mut opts = heartbeat(Options::default()).hwm(c.pub_hwm).linger(Some(Duration::from_millis(1)));
    opts.backlog = Some(c.zmq_backlog);
    opts.tcp_keepalive = keepalive(c);
    let pub_sock = Socket::with_options(SocketType::Pub, opts);
    let ep = c.tcp_endpoint(c.publish_port);
    pub_sock.bind(&ep).await.map_err(|e| UnitError::zmq(format!("bind {ep}"), e))?;
    let pull_path = c.sock_dir.join(PULL_SOCK);
    let _ = std::fs::remove_file(&pull_path);
    // A payload (at most a request's size, wrapped) plus a topic per targeted minion.
    let pull_opts = Options::default().max_msg_size(Some(c.max_request_size.saturating_mul(2)));
    let pull = Socket::with_options(SocketType::Pull, pull_opts);
    let pull_ep = c.ipc_endpoint(PULL_SOCK);
    pull.bind(&pull_ep).await.map_err(|e| UnitError::zmq(format!("bind {pull_ep}"), e))?;
    std::fs::set_permissions(&pull_path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| UnitError::io("chmod", &pull_path, e))?;
    tracing::info!("Publisher bound {ep} and {pull_ep}");
    tokio::pin!(stop);
    // Heap trim a little after a publish, once the subscribers' connections freed their output
    // buffers (heaptrim.rs).
    let mut trimmer = crate::heaptrim::Trimmer::after_quiet(Instant::now(), 1, zmtp::proto::OUT_IDLE_RELEASE * 2);
    let mut trim_tick = tokio::time::interval(crate::heaptrim::PERIOD);
    trim_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let result = loop {
        let msg = tokio::select! {
            () = &mut stop => break Ok(()),
            _ = trim_tick.tick() => {
                if trimmer.due(Instant::now()) {
                    // Off this thread: it runs every minion's connection.
                    tokio::task::spawn_blocking(crate::heaptrim::trim);
                }
                continue;
            }
            msg = pull.recv() => match msg {
                Ok(m) => m,
                Err(e) => break Err(UnitError::zmq("publish_pull recv", e)),
            },
        };
        trimmer.event_at(Instant::now());
        match wire_messages(msg) {
            Ok(msgs) => {
                for m in msgs {
                    if let Err(e) = pub_sock.send(m).await {
                        tracing::error!("publish send failed: {e}");
                    }
                }
            }
            Err(why) => tracing::warn!("{why} on {PULL_SOCK}; dropped"),
        }
    };
    let _ = std::fs::remove_file(&pull_path);
    pub_sock.close().await;
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wrapped() -> Bytes {
        let env = salt_proto::value::map(vec![("enc", Value::from("aes")), ("load", Value::Binary(vec![1, 2, 3]))]);
        Bytes::from(msgpack::encode(&env))
    }

    #[test]
    fn a_payload_alone_goes_out_as_one_frame() {
        let p = wrapped();
        let out = wire_messages(Message::from(vec![p.clone()]));
        let Ok(out) = out else { panic!("refused") };
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].clone().into_frames(), vec![p]);
    }

    #[test]
    fn topics_each_get_the_same_payload() {
        let p = wrapped();
        let t1 = Bytes::from_static(b"broadcast");
        let t2 = Bytes::from(envelope::publish_topic("web1").into_bytes());
        let Ok(out) = wire_messages(Message::from(vec![p.clone(), t1.clone(), t2.clone()])) else { panic!("refused") };
        let frames: Vec<Vec<Bytes>> = out.into_iter().map(Message::into_frames).collect();
        assert_eq!(frames, vec![vec![t1, p.clone()], vec![t2, p]]);
    }

    #[test]
    fn a_clear_load_or_garbage_is_never_published() {
        let clear = salt_proto::value::map(vec![("fun", Value::from("test.ping")), ("tgt", Value::from("*"))]);
        assert!(wire_messages(Message::from(vec![Bytes::from(msgpack::encode(&clear))])).is_err());
        assert!(wire_messages(Message::from(vec![Bytes::from_static(b"\xc1garbage")])).is_err());
        assert!(wire_messages(Message::from(Vec::<Bytes>::new())).is_err());
    }
}
