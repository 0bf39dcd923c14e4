//! Request-reply broker (zguide): ROUTER on tcp://*:5559 for clients, DEALER on tcp://*:5560 for
//! workers, joined by `zmtp::proxy`.
use zmtp::{Socket, SocketType};

#[tokio::main]
async fn main() -> Result<(), zmtp::Error> {
    let frontend = Socket::new(SocketType::Router);
    let backend = Socket::new(SocketType::Dealer);
    frontend.bind("tcp://*:5559").await?;
    backend.bind("tcp://*:5560").await?;
    zmtp::proxy(&frontend, &backend, None).await
}
