//! Ironhouse (zguide chapter 5, "Securing ZeroMQ"): CURVE with client key authentication.
//!
//! The server (a PUSH) knows its own key pair and the one client public key it accepts; the client
//! (a PULL) knows its own key pair and the server's public key. A ZAP handler (`Authenticator`)
//! allows only that client key and only 127.0.0.1; a second client with an unknown key is refused
//! with a 400 (the server's monitor says so). Every message is encrypted on the wire.
//!
//! Keys can be written as Z85 text (`CurvePublicKey::to_z85`, `CurvePublicKey::from_slice`), so
//! the same keys work with libzmq's `zmq_curve_keypair` and its certificate files.
use std::time::Duration;

use zmtp::socket::{Authenticator, MonitorEvent};
use zmtp::{Options, Socket, SocketType};

#[tokio::main]
async fn main() -> Result<(), zmtp::Error> {
    let server_keys = zmtp::curve_keypair();
    let client_keys = zmtp::curve_keypair();
    println!("server public key {}", server_keys.public.to_z85());
    println!("client public key {}", client_keys.public.to_z85());

    let auth = Authenticator::new().allow("127.0.0.1").curve_key(client_keys.public);
    let server = Socket::with_options(
        SocketType::Push,
        Options::default().curve_server(true).curve_keypair(&server_keys).zap_handler(auth),
    );
    let mut events = server.monitor();
    let endpoint = server.bind("tcp://127.0.0.1:*").await?;

    // An intruder with a key the server does not know.
    let intruder = Socket::with_options(
        SocketType::Pull,
        Options::default().curve_keypair(&zmtp::curve_keypair()).curve_serverkey(server_keys.public),
    );
    intruder.connect(&endpoint).await?;
    loop {
        match events.recv().await {
            Some(MonitorEvent::HandshakeFailed { reason, .. }) => {
                println!("intruder refused: {reason}");
                break;
            }
            Some(_) => {}
            None => return Ok(()),
        }
    }
    intruder.close().await;

    let client = Socket::with_options(
        SocketType::Pull,
        Options::default().curve_keypair(&client_keys).curve_serverkey(server_keys.public),
    );
    client.connect(&endpoint).await?;
    server.send("Ironhouse test OK").await?;
    let msg =
        tokio::time::timeout(Duration::from_secs(5), client.recv()).await.map_err(|_| zmtp::Error::WouldBlock)??;
    println!("{}", String::from_utf8_lossy(msg.first().map_or(&[][..], |f| f)));
    Ok(())
}
