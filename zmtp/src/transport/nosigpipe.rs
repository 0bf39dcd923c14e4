//! Writes that never raise SIGPIPE.
//!
//! A write to a stream whose peer has gone fails with `EPIPE`, and the kernel also sends the
//! writer SIGPIPE, whose default action ends the process. Rust's own `main` ignores the signal,
//! but a host that embeds us from C (libFuzzer's `main`, a Python extension, a C program) may not.
//! Tokio's writes do not all protect it: `TcpStream::poll_write` goes through std's `send` with
//! `MSG_NOSIGNAL`, but `poll_write_vectored` is a plain `writev`, and every `UnixStream` write is
//! a plain `write`/`writev`. libzmq passes `MSG_NOSIGNAL` to every `send`; so do we, with
//! `sendmsg`, on both transports ([`Writer`]). Where the flag does not exist (Apple) the socket
//! is set `SO_NOSIGPIPE` instead.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncWrite, Interest};

#[cfg(any(
    target_os = "linux",
    target_os = "android",
    target_os = "freebsd",
    target_os = "netbsd",
    target_os = "openbsd"
))]
pub(crate) const FLAGS: libc::c_int = libc::MSG_NOSIGNAL;
#[cfg(not(any(
    target_os = "linux",
    target_os = "android",
    target_os = "freebsd",
    target_os = "netbsd",
    target_os = "openbsd"
)))]
pub(crate) const FLAGS: libc::c_int = 0;

/// The write half of a tcp or ipc stream, as tokio splits it, with the one thing `Writer` needs
/// from it: a non-blocking `sendmsg` under tokio's readiness.
pub(crate) trait Half: AsyncWrite + Unpin {
    /// Waits until the stream may be writable.
    fn poll_writable(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>>;
    /// One `sendmsg` with `MSG_NOSIGNAL`; `WouldBlock` clears tokio's readiness.
    fn try_send(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize>;
}

macro_rules! half {
    ($half:ty) => {
        impl Half for $half {
            fn poll_writable(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                self.as_ref().poll_write_ready(cx)
            }
            fn try_send(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
                let stream = self.as_ref();
                stream
                    .try_io(Interest::WRITABLE, || socket2::SockRef::from(stream).send_vectored_with_flags(bufs, FLAGS))
            }
        }
    };
}
half!(tokio::net::tcp::OwnedWriteHalf);
#[cfg(unix)]
half!(tokio::net::unix::OwnedWriteHalf);

/// A write half whose writes give `EPIPE` rather than SIGPIPE. Shutdown (and the shutdown on
/// drop) is the inner half's.
pub(crate) struct Writer<H>(H);

impl<H: Half> Writer<H> {
    pub(crate) fn new(half: H) -> Self {
        #[cfg(any(target_os = "macos", target_os = "ios", target_os = "tvos", target_os = "watchos"))]
        if let Err(e) = socket2::SockRef::from(half.as_ref()).set_nosigpipe(true) {
            tracing::debug!("SO_NOSIGPIPE: {e}");
        }
        Writer(half)
    }

    fn poll_send(&self, cx: &mut Context<'_>, bufs: &[IoSlice<'_>]) -> Poll<io::Result<usize>> {
        loop {
            ready!(self.0.poll_writable(cx))?;
            match self.0.try_send(bufs) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                res => return Poll::Ready(res),
            }
        }
    }
}

impl<H: Half> AsyncWrite for Writer<H> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.poll_send(cx, &[IoSlice::new(buf)])
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.poll_send(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}
