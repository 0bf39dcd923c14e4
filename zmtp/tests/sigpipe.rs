//! A write to a peer that has gone gives an error, not SIGPIPE, in a process that has NOT set
//! SIGPIPE to ignore (a C host embedding zmtp). Rust's test harness ignores the signal, so this
//! binary restores the default action first: if any write raised SIGPIPE, the process would be
//! killed and the test binary reported as failed by signal 13.
//!
//! The transport's write half is driven directly (`write` and `write_vectored`, tcp and ipc) until
//! the kernel answers EPIPE: the engine writes through nothing else. Without `MSG_NOSIGNAL` this
//! binary dies of SIGPIPE at the first vectored tcp write or any ipc write (checked: exit 141).

use std::time::Duration;

use tokio::io::AsyncWriteExt;
use zmtp::transport::{connect, Endpoint, StreamOptions};

#[allow(unsafe_code)]
fn default_sigpipe() {
    // SAFETY: setting a signal's disposition to the default is async-signal-safe and touches no
    // Rust state.
    let old = unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    assert_ne!(old, libc::SIG_ERR);
}

/// Writes to a stream whose peer has closed until the kernel refuses; returns that error.
async fn write_until_refused(endpoint: &Endpoint, vectored: bool, accept: impl FnOnce()) -> std::io::Error {
    let mut stream = connect(endpoint, &StreamOptions::default()).await.expect("connect");
    accept();
    let chunk = vec![7u8; 4096];
    for _ in 0..10_000 {
        let res = if vectored {
            let bufs = [std::io::IoSlice::new(&chunk), std::io::IoSlice::new(&chunk)];
            stream.write.write_vectored(&bufs).await
        } else {
            stream.write.write(&chunk).await
        };
        match res {
            Ok(_) => tokio::time::sleep(Duration::from_millis(1)).await,
            Err(e) => return e,
        }
    }
    panic!("10,000 writes to a closed peer all succeeded");
}

#[tokio::test]
async fn writes_to_a_gone_peer_fail_without_sigpipe() {
    default_sigpipe();
    let gone =
        |k: std::io::ErrorKind| matches!(k, std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset);

    for vectored in [false, true] {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = l.local_addr().expect("address").port();
        let ep = Endpoint::Tcp { host: "127.0.0.1".into(), port };
        let e = write_until_refused(&ep, vectored, || drop(l.accept().expect("accept"))).await;
        assert!(gone(e.kind()), "tcp, vectored {vectored}: {e}");

        let dir = std::env::temp_dir().join(format!("zmtp-sigpipe-{}-{vectored}", std::process::id()));
        let _ = std::fs::remove_file(&dir);
        let l = std::os::unix::net::UnixListener::bind(&dir).expect("bind");
        let e = write_until_refused(&Endpoint::Ipc(dir.clone()), vectored, || drop(l.accept().expect("accept"))).await;
        assert!(gone(e.kind()), "ipc, vectored {vectored}: {e}");
        let _ = std::fs::remove_file(&dir);
    }
}
