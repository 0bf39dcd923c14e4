//! Weather update server (zguide): binds PUB to tcp://*:5556 and publishes
//! "%05d %d %d" (zipcode, temperature, relative humidity) forever.
use zmtp::{Socket, SocketType};

#[tokio::main]
async fn main() -> Result<(), zmtp::Error> {
    let endpoint = std::env::args().nth(1).unwrap_or_else(|| "tcp://*:5556".into());
    let publisher = Socket::new(SocketType::Pub);
    publisher.bind(&endpoint).await?;
    // A small xorshift generator keeps the example free of dependencies.
    let mut seed: u64 = 0x2545_F491_4F6C_DD1D;
    let mut rand = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    let mut sent: u64 = 0;
    loop {
        let zipcode = rand(100_000);
        let temperature = rand(215) as i64 - 80;
        let relhumidity = rand(50) + 10;
        publisher.send(format!("{zipcode:05} {temperature} {relhumidity}")).await?;
        sent += 1;
        if sent.is_multiple_of(1024) {
            // Let the I/O tasks run: PUB never blocks, so a tight loop would only drop.
            tokio::task::yield_now().await;
        }
    }
}
