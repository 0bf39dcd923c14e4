//! Task sink (zguide): binds PULL to tcp://*:5558, waits for the start of batch, then collects 100
//! results and reports the elapsed time.
use std::io::Write;
use std::time::Instant;
use zmtp::{Socket, SocketType};

#[tokio::main]
async fn main() -> Result<(), zmtp::Error> {
    let receiver = Socket::new(SocketType::Pull);
    receiver.bind("tcp://*:5558").await?;
    let _start_of_batch = receiver.recv().await?;
    let start = Instant::now();
    for task_nbr in 0..100 {
        receiver.recv().await?;
        print!("{}", if task_nbr % 10 == 0 { ":" } else { "." });
        let _ = std::io::stdout().flush();
    }
    println!("\nTotal elapsed time: {} msec", start.elapsed().as_millis());
    Ok(())
}
