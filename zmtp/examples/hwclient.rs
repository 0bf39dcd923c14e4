//! Hello World client (zguide): connects REQ to tcp://localhost:5555, sends "Hello" ten times.
use zmtp::{Socket, SocketType};

#[tokio::main]
async fn main() -> Result<(), zmtp::Error> {
    let endpoint = std::env::args().nth(1).unwrap_or_else(|| "tcp://localhost:5555".into());
    println!("Connecting to hello world server...");
    let requester = Socket::new(SocketType::Req);
    requester.connect(&endpoint).await?;
    for request_nbr in 0..10 {
        println!("Sending Hello {request_nbr}...");
        requester.send("Hello").await?;
        let reply = requester.recv().await?;
        println!("Received {} {request_nbr}", String::from_utf8_lossy(reply.first().map_or(&[][..], |f| f)));
    }
    Ok(())
}
