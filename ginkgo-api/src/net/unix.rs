use std::fmt;
use std::io;
use std::net::Shutdown;
use std::os::unix::net::SocketAddr;
use std::path::Path;

use super::context;
use crate::runtime::{RawUnixListener, RawUnixStream, Runtime};

/// A Unix-domain stream listener, bound to a socket file.
///
/// # Examples
///
/// ```
/// # fn demo<R: ginkgo_api::Runtime>() {
/// use ginkgo_api::io::{AsyncReadExt, AsyncWriteExt};
/// use ginkgo_api::net::{UnixListener, UnixStream};
/// ginkgo_api::block_on::<R, _>(async {
///     let path = std::env::temp_dir().join(format!("ginkgo-doc-{}.sock", std::process::id()));
///     let _ = std::fs::remove_file(&path);
///     let listener = UnixListener::<R>::bind(&path)?;
///     let mut client = UnixStream::<R>::connect(&path).await?;
///     let (mut server, _) = listener.accept().await?;
///     client.write_all(b"hi").await?;
///     let mut buf = [0; 2];
///     server.read_exact(&mut buf).await?;
///     std::fs::remove_file(&path)?;
///     std::io::Result::Ok(())
/// }).unwrap();
/// # }
/// ```
pub struct UnixListener<R: Runtime> {
    raw: R::UnixListener,
}

impl<R: Runtime> UnixListener<R> {
    /// Binds to the socket file at `path`.
    ///
    /// # Errors
    ///
    /// Fails if the file already exists (remove a stale one first) or its directory is not
    /// writable; the message names the path.
    pub fn bind(path: impl AsRef<Path>) -> io::Result<Self> {
        let path = path.as_ref();
        let raw =
            R::UnixListener::bind(path).map_err(|err| context(err, "bind", path.display()))?;
        Ok(Self { raw })
    }

    /// Adopts a listener that is already bound. It is switched to non-blocking mode.
    ///
    /// # Errors
    ///
    /// Fails if the socket cannot be registered with the runtime.
    pub fn from_std(listener: std::os::unix::net::UnixListener) -> io::Result<Self> {
        Ok(Self {
            raw: R::UnixListener::from_std(listener)?,
        })
    }

    /// Waits for the next connection; dropping the future loses no connection.
    ///
    /// # Errors
    ///
    /// Passes on errors from `accept(2)`.
    pub async fn accept(&self) -> io::Result<(UnixStream<R>, SocketAddr)> {
        let (raw, addr) = self.raw.accept().await?;
        Ok((UnixStream { raw }, addr))
    }

    /// The address the listener is bound to.
    ///
    /// # Errors
    ///
    /// Passes on errors from `getsockname(2)`.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.raw.local_addr()
    }
}

impl<R: Runtime> fmt::Debug for UnixListener<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnixListener")
            .field("local_addr", &self.local_addr().ok())
            .finish()
    }
}

/// A Unix-domain stream connection; implements futures-io `AsyncRead` and `AsyncWrite`.
pub struct UnixStream<R: Runtime> {
    raw: R::UnixStream,
}

impl<R: Runtime> UnixStream<R> {
    /// Connects to the socket file at `path`.
    ///
    /// # Errors
    ///
    /// Fails if nothing listens there; the message names the path.
    pub async fn connect(path: impl AsRef<Path>) -> io::Result<Self> {
        let path = path.as_ref();
        let raw = R::UnixStream::connect(path)
            .await
            .map_err(|err| context(err, "connect to", path.display()))?;
        Ok(Self { raw })
    }

    /// A pair of connected streams.
    ///
    /// # Errors
    ///
    /// Passes on errors from `socketpair(2)`.
    pub fn pair() -> io::Result<(Self, Self)> {
        let (a, b) = R::UnixStream::pair()?;
        Ok((Self { raw: a }, Self { raw: b }))
    }

    /// Shuts down the read, write or both directions.
    ///
    /// # Errors
    ///
    /// Passes on errors from `shutdown(2)`.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.raw.shutdown(how)
    }
}

impl<R: Runtime> UnixStream<R> {
    /// The credentials of the process at the other end, as the kernel recorded them when it
    /// connected (`SO_PEERCRED`): who is talking, without trusting anything it sends.
    ///
    /// # Errors
    ///
    /// Passes on errors from `getsockopt(2)`.
    pub fn peer_credentials(&self) -> io::Result<PeerCredentials> {
        let cred = rustix::net::sockopt::socket_peercred(self.raw.as_fd())?;
        Ok(PeerCredentials {
            pid: u32::try_from(cred.pid.as_raw_nonzero().get()).ok(),
            uid: cred.uid.as_raw(),
            gid: cred.gid.as_raw(),
        })
    }
}

impl<R: Runtime> std::os::fd::AsFd for UnixStream<R> {
    /// The socket, for options this type does not name.
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.raw.as_fd()
    }
}

/// Who is at the other end of a Unix-domain connection, from [`UnixStream::peer_credentials`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PeerCredentials {
    /// The peer's process id, when the kernel knows it (a peer in another pid namespace may
    /// show none).
    pub pid: Option<u32>,
    /// The peer's effective user id.
    pub uid: u32,
    /// The peer's effective group id.
    pub gid: u32,
}

impl fmt::Display for PeerCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.pid {
            Some(pid) => write!(f, "pid {pid} uid {} gid {}", self.uid, self.gid),
            None => write!(f, "uid {} gid {}", self.uid, self.gid),
        }
    }
}

crate::forward_async_read!(impl<R: Runtime> UnixStream<R>, raw);
crate::forward_async_write!(impl<R: Runtime> UnixStream<R>, raw);

impl<R: Runtime> fmt::Debug for UnixStream<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("UnixStream")
    }
}

impl<R: Runtime> std::os::fd::AsFd for UnixListener<R> {
    /// The listening socket, for options this type does not name, or to hand it to another
    /// process.
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.raw.as_fd()
    }
}
