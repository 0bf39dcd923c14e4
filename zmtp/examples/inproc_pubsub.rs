//! In-process publish-subscribe: a PUB and two SUBs in one program over inproc://, with no wire
//! codec and no copies (the published frames are shared).
use zmtp::{Socket, SocketType};

#[tokio::main]
async fn main() -> Result<(), zmtp::Error> {
    let publisher = Socket::new(SocketType::Pub);
    publisher.bind("inproc://weather").await?;
    let mut handles = Vec::new();
    for zipcode in ["10001", "94105"] {
        let subscriber = Socket::new(SocketType::Sub);
        subscriber.connect("inproc://weather").await?;
        subscriber.subscribe(zipcode)?;
        handles.push(tokio::spawn(async move {
            for _ in 0..3 {
                let m = subscriber.recv().await?;
                println!("{zipcode}: {}", String::from_utf8_lossy(m.first().map_or(&[][..], |f| f)));
            }
            Ok::<_, zmtp::Error>(())
        }));
    }
    let mut remaining = handles.len();
    let mut t = 0;
    while remaining > 0 {
        for zipcode in ["10001", "94105", "60601"] {
            publisher.send(format!("{zipcode} {} {}", 60 + t % 20, 40 + t % 30)).await?;
        }
        t += 1;
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        remaining = handles.iter().filter(|h| !h.is_finished()).count();
    }
    for h in handles {
        let _ = h.await;
    }
    Ok(())
}
