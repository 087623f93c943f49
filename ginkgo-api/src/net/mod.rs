//! Networking: [`TcpListener`], [`TcpStream`], [`UdpSocket`] and, on Unix, [`UnixListener`]
//! and [`UnixStream`].
//!
//! Streams implement futures-io's [`AsyncRead`](futures_io::AsyncRead) and
//! [`AsyncWrite`](futures_io::AsyncWrite); use the extension traits in [`crate::io`] for
//! `read_exact`, `write_all` and friends. Errors name the address that failed, so a log line
//! says what to fix.

mod addr;
pub mod handoff;
mod tcp;
mod udp;
#[cfg(unix)]
mod unix;

pub use addr::{ToSocketAddrs, lookup};
pub use tcp::{OwnedReadHalf, OwnedWriteHalf, TcpListener, TcpStream};
pub use udp::UdpSocket;
#[cfg(unix)]
pub use unix::{PeerCredentials, UnixListener, UnixStream};

pub use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr};

/// Adds `what` and `target` to an I/O error, keeping its kind and OS error code, so the message
/// says what failed.
pub(crate) fn context(
    err: std::io::Error,
    what: &str,
    target: impl std::fmt::Display,
) -> std::io::Error {
    crate::io::with_context(err, |err| format!("{what} {target}: {err}"))
}
