//! Stonehouse-style PLAIN (zguide chapter 5): a user name and password checked by a ZAP handler.
//!
//! PLAIN sends the password in clear: use it only on a network you trust (or use CURVE, see the
//! `ironhouse` example). A PLAIN server needs a ZAP handler, as in libzmq 4.3; here it is an
//! `Authenticator` with one user. A client with a wrong password is refused with a 400 (it
//! receives an ERROR command; its monitor says `peer sent ERROR: 400`).
use std::time::Duration;

use zmtp::socket::{Authenticator, MonitorEvent};
use zmtp::{Options, Socket, SocketType};

#[tokio::main]
async fn main() -> Result<(), zmtp::Error> {
    let server = Socket::with_options(
        SocketType::Push,
        Options::default().plain_server(true).zap_handler(Authenticator::new().plain_user("admin", "secret")),
    );
    let endpoint = server.bind("tcp://127.0.0.1:*").await?;

    let guesser =
        Socket::with_options(SocketType::Pull, Options::default().plain_username("admin").plain_password("guess"));
    let mut events = guesser.monitor();
    guesser.connect(&endpoint).await?;
    loop {
        match events.recv().await {
            Some(MonitorEvent::HandshakeFailed { reason, .. }) => {
                println!("wrong password refused: {reason}");
                break;
            }
            Some(_) => {}
            None => return Ok(()),
        }
    }
    guesser.close().await;

    let client =
        Socket::with_options(SocketType::Pull, Options::default().plain_username("admin").plain_password("secret"));
    client.connect(&endpoint).await?;
    server.send("Stonehouse test OK").await?;
    let msg =
        tokio::time::timeout(Duration::from_secs(5), client.recv()).await.map_err(|_| zmtp::Error::WouldBlock)??;
    println!("{}", String::from_utf8_lossy(msg.first().map_or(&[][..], |f| f)));
    Ok(())
}
