//! Multithreaded relay (zguide): three steps signal each other over inproc PAIR sockets, each step
//! on its own OS thread, using the blocking facade.
use zmtp::blocking::Socket;
use zmtp::SocketType;

fn step1() -> Result<(), zmtp::Error> {
    let xmitter = Socket::new(SocketType::Pair)?;
    xmitter.connect("inproc://step2")?;
    println!("Step 1 ready, signaling step 2");
    Ok(xmitter.send("READY")?)
}

fn step2() -> Result<(), zmtp::Error> {
    let receiver = Socket::new(SocketType::Pair)?;
    receiver.bind("inproc://step2")?;
    let t = std::thread::spawn(step1);
    receiver.recv()?;
    let _ = t.join();
    let xmitter = Socket::new(SocketType::Pair)?;
    xmitter.connect("inproc://step3")?;
    println!("Step 2 ready, signaling step 3");
    Ok(xmitter.send("READY")?)
}

fn main() -> Result<(), zmtp::Error> {
    let receiver = Socket::new(SocketType::Pair)?;
    receiver.bind("inproc://step3")?;
    let t = std::thread::spawn(step2);
    receiver.recv()?;
    let _ = t.join();
    println!("Test successful!");
    Ok(())
}
