//! Request-reply client (zguide): REQ to the broker's frontend tcp://localhost:5559, ten "Hello"s.
use zmtp::{Socket, SocketType};

#[tokio::main]
async fn main() -> Result<(), zmtp::Error> {
    let requester = Socket::new(SocketType::Req);
    requester.connect("tcp://localhost:5559").await?;
    for request_nbr in 0..10 {
        requester.send("Hello").await?;
        let reply = requester.recv().await?;
        println!("Received reply {request_nbr} [{}]", String::from_utf8_lossy(reply.first().map_or(&[][..], |f| f)));
    }
    Ok(())
}
