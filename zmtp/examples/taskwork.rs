//! Task worker (zguide): PULL tasks from tcp://localhost:5557, sleep the workload, PUSH a result to
//! tcp://localhost:5558.
use std::io::Write;
use std::time::Duration;
use zmtp::{Socket, SocketType};

#[tokio::main]
async fn main() -> Result<(), zmtp::Error> {
    let receiver = Socket::new(SocketType::Pull);
    receiver.connect("tcp://localhost:5557").await?;
    let sender = Socket::new(SocketType::Push);
    sender.connect("tcp://localhost:5558").await?;
    loop {
        let task = receiver.recv().await?;
        let text = String::from_utf8_lossy(task.first().map_or(&[][..], |f| f)).into_owned();
        print!("{text}.");
        let _ = std::io::stdout().flush();
        tokio::time::sleep(Duration::from_millis(text.trim().parse().unwrap_or(0))).await;
        sender.send("").await?;
    }
}
