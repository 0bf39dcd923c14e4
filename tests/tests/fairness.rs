//! Fair queueing (RFC 28 and 30): a socket that receives from several peers takes one message
//! from each in turn, so a peer pipelining many requests does not make the others wait behind all
//! of them. Each scenario: a "chatty" client queues CHATTY messages, ten times the server's
//! RCVHWM (the rest wait in the client, back-pressured per peer), then a "quiet" client sends
//! one; once both have arrived, the server receives. Its quiet message must come within the first
//! few — with one shared queue it came after every chatty one. The same scenario runs against a
//! libzmq server as the reference, and over inproc between our own sockets.
//!
//! No timing is asserted: only the position of the quiet message among what the server received.

use std::time::Duration;

use interop_tests::{frames, msg_frames, within, Transport, Z};
use zmtp::{Message, Options, Socket, SocketType};

const CHATTY: usize = 500;
/// The server's RCVHWM, per peer: the chatty client pipelines far past it.
const SERVER_RCVHWM: usize = CHATTY / 10;
/// The quiet message's position may be a little late if it arrived while the server had begun;
/// one shared queue puts it at CHATTY.
const AT_MOST: usize = 10;
/// Time for both clients' messages to reach the server before it starts receiving (arrival is not
/// observable from outside; what did not arrive yet only moves the quiet message later).
const SETTLE: Duration = Duration::from_millis(500);

#[derive(Clone, Copy, Debug)]
enum Kind {
    Router,
    Rep,
    Pull,
    Dealer,
}

impl Kind {
    fn ours(self) -> SocketType {
        match self {
            Kind::Router => SocketType::Router,
            Kind::Rep => SocketType::Rep,
            Kind::Pull => SocketType::Pull,
            Kind::Dealer => SocketType::Dealer,
        }
    }

    fn libzmq(self) -> zmq::SocketType {
        match self {
            Kind::Router => zmq::ROUTER,
            Kind::Rep => zmq::REP,
            Kind::Pull => zmq::PULL,
            Kind::Dealer => zmq::DEALER,
        }
    }

    /// The client type that talks to it (DEALER with an empty delimiter stands in for REQ, which
    /// cannot pipeline).
    fn client(self) -> SocketType {
        match self {
            Kind::Pull => SocketType::Push,
            _ => SocketType::Dealer,
        }
    }

    fn request(self, body: &str) -> Message {
        match self {
            Kind::Rep => Message::from(["", body]),
            _ => Message::from(body),
        }
    }

    /// The payload of what the server received (after the routing id for ROUTER).
    fn payload(self, got: &[Vec<u8>]) -> Vec<u8> {
        let i = usize::from(matches!(self, Kind::Router));
        got.get(i).cloned().unwrap_or_default()
    }
}

/// The server side: ours or libzmq's.
enum Server {
    Ours(Socket),
    Libzmq(Z),
}

impl Server {
    async fn recv(&self) -> Vec<Vec<u8>> {
        match self {
            Server::Ours(s) => msg_frames(&within("server recv", s.recv()).await.expect("recv")),
            Server::Libzmq(z) => z.recv().await,
        }
    }

    async fn reply(&self, kind: Kind) {
        if matches!(kind, Kind::Rep) {
            match self {
                Server::Ours(s) => within("server reply", s.send("ok")).await.expect("reply"),
                Server::Libzmq(z) => z.send(frames(&["ok"])).await,
            }
        }
    }
}

/// Runs the scenario; returns how many chatty messages the server took before the quiet one.
async fn quiet_position(server: Server, endpoint: &str, kind: Kind) -> usize {
    let chatty = Socket::new(kind.client());
    let quiet = Socket::new(kind.client());
    chatty.connect(endpoint).await.expect("connect");
    for i in 0..CHATTY {
        within("chatty send", chatty.send(kind.request(&format!("c{i}")))).await.expect("send");
    }
    // The quiet client connects after the chatty one has queued everything.
    tokio::time::sleep(SETTLE / 2).await;
    quiet.connect(endpoint).await.expect("connect");
    within("quiet send", quiet.send(kind.request("q"))).await.expect("send");
    tokio::time::sleep(SETTLE).await;
    let mut before = 0;
    loop {
        let got = server.recv().await;
        server.reply(kind).await;
        if kind.payload(&got) == b"q" {
            return before;
        }
        before += 1;
        assert!(before <= CHATTY, "{kind:?}: the quiet message never came");
    }
}

async fn ours_over(kind: Kind, transport: &str) -> usize {
    let server = Socket::with_options(kind.ours(), Options::default().rcvhwm(SERVER_RCVHWM));
    let endpoint = match transport {
        "tcp" => "tcp://127.0.0.1:*".to_owned(),
        "ipc" => interop_tests::ipc_endpoint("fair"),
        _ => format!("inproc://fair-{kind:?}-{}", std::process::id()),
    };
    let bound = server.bind(&endpoint).await.expect("bind");
    quiet_position(Server::Ours(server), &bound, kind).await
}

async fn libzmq_over(kind: Kind, transport: Transport) -> usize {
    let z = Z::new(kind.libzmq());
    z.with(|s| s.set_rcvhwm(SERVER_RCVHWM as i32)).expect("ZMQ_RCVHWM");
    let bound = z.bind(transport, "fair-zmq");
    quiet_position(Server::Libzmq(z), &bound, kind).await
}

async fn check(kind: Kind) {
    for transport in ["tcp", "ipc", "inproc"] {
        let ours = ours_over(kind, transport).await;
        eprintln!("{kind:?} over {transport}: the quiet message came after {ours} of {CHATTY} chatty ones");
        assert!(ours <= AT_MOST, "{kind:?} over {transport}: quiet message after {ours} chatty ones");
    }
    for transport in [Transport::Tcp, Transport::Ipc] {
        let reference = libzmq_over(kind, transport).await;
        eprintln!("libzmq {kind:?} over {transport:?}: after {reference}");
        assert!(reference <= AT_MOST, "libzmq {kind:?} over {transport:?} (the reference): {reference}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn router_fair_queues() {
    check(Kind::Router).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rep_fair_queues() {
    check(Kind::Rep).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_fair_queues() {
    check(Kind::Pull).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dealer_fair_queues() {
    check(Kind::Dealer).await;
}
