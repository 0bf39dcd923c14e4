//! Streams of many messages of mixed sizes against libzmq, both ways: exercises batching, partial
//! reads and writes, frames split across reads, the zero-copy path and back-pressure at the
//! high-water marks, and checks every message arrives, intact and in order.

use interop_tests::{frames, link, msg_frames, send, within, Transport, Z};
use zmtp::{Options, Socket, SocketType};

interop_tests::matrix!(our_push_to_zmq_pull_stream, zmq_push_to_our_pull_stream);

const N: usize = 10_000;

/// The stream's messages, made once per process.
fn stream() -> &'static [Vec<Vec<u8>>] {
    static STREAM: std::sync::OnceLock<Vec<Vec<Vec<u8>>>> = std::sync::OnceLock::new();
    STREAM.get_or_init(|| (0..N).map(make).collect())
}

fn nth(i: usize) -> Vec<Vec<u8>> {
    stream()[i].clone()
}

/// Message `i` of the stream: one to three frames of sizes that cross the short / long frame
/// boundary and our zero-copy threshold; every 500th message is 256 KiB, and one has 1000 frames.
fn make(i: usize) -> Vec<Vec<u8>> {
    let tag = (i as u32).to_be_bytes().to_vec();
    let size = match i % 500 {
        0 => 256 << 10,
        k => (k * 37) % 9000,
    };
    let body: Vec<u8> = (0..size).map(|j| (j ^ i) as u8).collect();
    match i % 3 {
        _ if i == 4321 => {
            let mut m = vec![tag];
            m.extend((0..999).map(|j| vec![j as u8; j % 4]));
            m
        }
        0 => vec![tag, body],
        1 => vec![tag, Vec::new(), body],
        _ => vec![tag],
    }
}

#[track_caller]
fn check(i: usize, got: &[Vec<u8>]) {
    let want = &stream()[i];
    if got != want.as_slice() {
        let got_tag = got.first().map(|t| t.to_vec());
        panic!(
            "message {i}: got {} frames (tag {got_tag:?}, sizes {:?}), want {} frames (sizes {:?})",
            got.len(),
            got.iter().map(Vec::len).take(5).collect::<Vec<_>>(),
            want.len(),
            want.iter().map(Vec::len).take(5).collect::<Vec<_>>()
        );
    }
}

/// Both high-water marks small, so that both sides block and resume many times.
async fn our_push_to_zmq_pull_stream(t: Transport, ours_binds: bool) {
    let push = Socket::with_options(SocketType::Push, Options::default().hwm(50));
    let pull = Z::new(zmq::PULL);
    pull.with(|s| s.set_rcvhwm(50)).expect("ZMQ_RCVHWM");
    link(&push, &pull, ours_binds, t, "stream-out").await;

    let receiver = pull.run_blocking(|s| {
        for i in 0..N {
            let m = s.recv_multipart(0).unwrap_or_else(|e| panic!("libzmq recv of message {i}: {e}"));
            check(i, &m);
        }
    });
    let sender = async {
        for i in 0..N {
            send(&push, nth(i)).await;
        }
    };
    let ((), ()) = within("the stream", async { tokio::join!(receiver, sender) }).await;
    send(&push, frames(&["end"])).await;
    assert_eq!(pull.recv().await, frames(&["end"]));
}

async fn zmq_push_to_our_pull_stream(t: Transport, ours_binds: bool) {
    let push = Z::new(zmq::PUSH);
    push.with(|s| s.set_sndhwm(50)).expect("ZMQ_SNDHWM");
    let pull = Socket::with_options(SocketType::Pull, Options::default().hwm(50));
    link(&pull, &push, ours_binds, t, "stream-in").await;

    let sender = push.run_blocking(|s| {
        for i in 0..N {
            s.send_multipart(nth(i), 0).unwrap_or_else(|e| panic!("libzmq send of message {i}: {e}"));
        }
    });
    let receiver = async {
        for i in 0..N {
            let m = pull.recv().await.expect("our recv");
            check(i, &msg_frames(&m));
        }
    };
    let ((), ()) = within("the stream", async { tokio::join!(sender, receiver) }).await;
}
