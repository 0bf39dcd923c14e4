//! Hello World server (zguide): binds REP to tcp://*:5555, expects "Hello", replies "World".
use std::time::Duration;
use zmtp::{Socket, SocketType};

#[tokio::main]
async fn main() -> Result<(), zmtp::Error> {
    let endpoint = std::env::args().nth(1).unwrap_or_else(|| "tcp://*:5555".into());
    let responder = Socket::new(SocketType::Rep);
    responder.bind(&endpoint).await?;
    loop {
        let request = responder.recv().await?;
        println!("Received {}", String::from_utf8_lossy(request.first().map_or(&[][..], |f| f)));
        tokio::time::sleep(Duration::from_millis(1)).await; // "do some work"
        responder.send("World").await?;
    }
}
