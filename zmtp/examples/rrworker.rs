//! Request-reply worker (zguide): REP to the broker's backend tcp://localhost:5560, answers "World".
use std::time::Duration;
use zmtp::{Socket, SocketType};

#[tokio::main]
async fn main() -> Result<(), zmtp::Error> {
    let responder = Socket::new(SocketType::Rep);
    responder.connect("tcp://localhost:5560").await?;
    loop {
        let request = responder.recv().await?;
        println!("Received request: [{}]", String::from_utf8_lossy(request.first().map_or(&[][..], |f| f)));
        tokio::time::sleep(Duration::from_millis(1)).await;
        responder.send("World").await?;
    }
}
