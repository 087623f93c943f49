//! [`Socket`]: the `std` stream socket types a backend drives itself.

use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::os::fd::AsFd;

/// A `std` stream socket type (TCP or Unix-domain) that a backend reads and writes itself:
/// the smol backend's edge-triggered streams and the threads backend's sockets.
pub trait Socket: AsFd + Send + Sync + 'static
where
    for<'a> &'a Self: Read + Write,
{
    /// Shuts down the given direction(s), as `std`'s `shutdown`.
    fn shutdown(&self, how: Shutdown) -> io::Result<()>;
}

impl Socket for std::net::TcpStream {
    fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        std::net::TcpStream::shutdown(self, how)
    }
}

impl Socket for std::os::unix::net::UnixStream {
    fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        std::os::unix::net::UnixStream::shutdown(self, how)
    }
}
