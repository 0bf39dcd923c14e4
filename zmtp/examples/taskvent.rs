//! Task ventilator (zguide): binds PUSH to tcp://*:5557, signals the sink on tcp://localhost:5558,
//! and sends 100 tasks whose payload is a workload in milliseconds.
use zmtp::{Socket, SocketType};

#[tokio::main]
async fn main() -> Result<(), zmtp::Error> {
    let sender = Socket::new(SocketType::Push);
    sender.bind("tcp://*:5557").await?;
    let sink = Socket::new(SocketType::Push);
    sink.connect("tcp://localhost:5558").await?;
    if std::env::args().nth(1).as_deref() == Some("--no-wait") {
        // Scripted runs: give the workers a second to connect instead of a key press.
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    } else {
        println!("Press Enter when the workers are ready: ");
        let mut line = String::new();
        let _ = std::io::stdin().read_line(&mut line);
    }
    println!("Sending tasks to workers...");
    // The first message is "0" and signals start of batch.
    sink.send("0").await?;
    let mut seed: u32 = 12345;
    let mut total_msec = 0;
    for _ in 0..100 {
        seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
        let workload = (seed >> 16) % 100 + 1;
        total_msec += workload;
        sender.send(workload.to_string()).await?;
    }
    println!("Total expected cost: {total_msec} msec");
    sender.close().await;
    sink.close().await;
    Ok(())
}
