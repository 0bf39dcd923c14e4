//! Weather update client (zguide): connects SUB to tcp://localhost:5556, subscribes to one zipcode
//! (default 10001) and prints the average temperature of 100 updates.
use zmtp::{Socket, SocketType};

#[tokio::main]
async fn main() -> Result<(), zmtp::Error> {
    let filter = std::env::args().nth(1).unwrap_or_else(|| "10001 ".into());
    let endpoint = std::env::args().nth(2).unwrap_or_else(|| "tcp://localhost:5556".into());
    println!("Collecting updates from weather server...");
    let subscriber = Socket::new(SocketType::Sub);
    subscriber.connect(&endpoint).await?;
    subscriber.subscribe(&filter)?;
    let mut total_temp: i64 = 0;
    let updates = 100;
    for _ in 0..updates {
        let msg = subscriber.recv().await?;
        let text = String::from_utf8_lossy(msg.first().map_or(&[][..], |f| f)).into_owned();
        let mut fields = text.split_whitespace();
        let _zipcode = fields.next();
        total_temp += fields.next().and_then(|t| t.parse::<i64>().ok()).unwrap_or(0);
    }
    println!("Average temperature for zipcode '{}' was {}F", filter.trim(), total_temp / updates);
    Ok(())
}
