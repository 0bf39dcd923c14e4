//! A blocking facade for programs that are not async: [`Socket`] wraps [`crate::Socket`] and runs
//! its calls on a small runtime of its own (one I/O thread, started on first use and shared by all
//! blocking sockets).
//!
//! Do not call these methods from inside an async task: they block the thread (and tokio refuses
//! `block_on` inside a runtime). Async code uses [`crate::Socket`] directly.

use std::sync::OnceLock;
use std::time::Duration;

use tokio::runtime::Runtime;

use crate::socket::{Error, Monitor, Options, SendError, TrySendError};
use crate::{Message, SocketType};

fn runtime() -> Result<&'static Runtime, Error> {
    static RT: OnceLock<Result<Runtime, String>> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("zmtp-io")
            .enable_all()
            .build()
            .map_err(|e| e.to_string())
    })
    .as_ref()
    .map_err(|e| Error::Io(std::io::Error::other(e.clone())))
}

/// A socket whose calls block the calling thread.
#[derive(Debug)]
pub struct Socket {
    inner: Option<crate::Socket>,
    rt: &'static Runtime,
}

impl Socket {
    /// A socket of type `socket_type` with default options.
    pub fn new(socket_type: SocketType) -> Result<Socket, Error> {
        Socket::with_options(socket_type, Options::default())
    }

    /// A socket of type `socket_type` with `options`.
    pub fn with_options(socket_type: SocketType, options: Options) -> Result<Socket, Error> {
        let rt = runtime()?;
        let inner = {
            let _guard = rt.enter();
            crate::Socket::with_options(socket_type, options)
        };
        Ok(Socket { inner: Some(inner), rt })
    }

    fn inner(&self) -> Result<&crate::Socket, Error> {
        self.inner.as_ref().ok_or(Error::Closed)
    }

    /// See [`crate::Socket::bind`].
    pub fn bind(&self, endpoint: &str) -> Result<String, Error> {
        self.rt.block_on(self.inner()?.bind(endpoint))
    }

    /// See [`crate::Socket::connect`].
    pub fn connect(&self, endpoint: &str) -> Result<(), Error> {
        self.rt.block_on(self.inner()?.connect(endpoint))
    }

    /// See [`crate::Socket::send`].
    pub fn send(&self, msg: impl Into<Message>) -> Result<(), SendError> {
        let message = msg.into();
        match self.inner() {
            Ok(s) => self.rt.block_on(s.send(message)),
            Err(error) => Err(SendError { error, message }),
        }
    }

    /// See [`crate::Socket::try_send`].
    pub fn try_send(&self, msg: impl Into<Message>) -> Result<(), TrySendError> {
        let _guard = self.rt.enter();
        let message = msg.into();
        match self.inner() {
            Ok(s) => s.try_send(message),
            Err(error) => Err(TrySendError::Failed(SendError { error, message })),
        }
    }

    /// See [`crate::Socket::recv`].
    pub fn recv(&self) -> Result<Message, Error> {
        self.rt.block_on(self.inner()?.recv())
    }

    /// See [`crate::Socket::recv_timeout`].
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Message, Error> {
        self.rt.block_on(self.inner()?.recv_timeout(timeout))
    }

    /// See [`crate::Socket::try_recv`].
    pub fn try_recv(&self) -> Result<Message, Error> {
        let _guard = self.rt.enter();
        self.inner()?.try_recv()
    }

    /// See [`crate::Socket::subscribe`].
    pub fn subscribe(&self, topic: impl AsRef<[u8]>) -> Result<(), Error> {
        self.inner()?.subscribe(topic)
    }

    /// See [`crate::Socket::unsubscribe`].
    pub fn unsubscribe(&self, topic: impl AsRef<[u8]>) -> Result<(), Error> {
        self.inner()?.unsubscribe(topic)
    }

    /// See [`crate::Socket::monitor`]; read it with [`Monitor::try_recv`] or from async code.
    pub fn monitor(&self) -> Result<Monitor, Error> {
        Ok(self.inner()?.monitor())
    }

    /// The async socket inside, for use from async code on the facade's runtime.
    pub fn as_async(&self) -> Option<&crate::Socket> {
        self.inner.as_ref()
    }

    /// Closes the socket, waiting until queued messages are sent (up to the linger time).
    pub fn close(mut self) {
        if let Some(inner) = self.inner.take() {
            self.rt.block_on(inner.close());
        }
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        if let Some(inner) = self.inner.take() {
            let _guard = self.rt.enter();
            drop(inner);
        }
    }
}
