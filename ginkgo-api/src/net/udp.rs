use std::fmt;
use std::io;
use std::net::SocketAddr;

use super::addr::{ToSocketAddrs, each_addr, resolve};
use super::context;
use crate::runtime::{RawUdpSocket, Runtime};

/// A UDP socket.
///
/// # Examples
///
/// ```
/// # fn demo<R: ginkgo_api::Runtime>() {
/// use ginkgo_api::net::UdpSocket;
/// ginkgo_api::block_on::<R, _>(async {
///     let a = UdpSocket::<R>::bind("127.0.0.1:0").await?;
///     let b = UdpSocket::<R>::bind("127.0.0.1:0").await?;
///     a.send_to(b"ping", b.local_addr()?).await?;
///     let mut buf = [0; 16];
///     let (n, from) = b.recv_from(&mut buf).await?;
///     assert_eq!((&buf[..n], from), (&b"ping"[..], a.local_addr()?));
///     std::io::Result::Ok(())
/// }).unwrap();
/// # }
/// ```
pub struct UdpSocket<R: Runtime> {
    raw: R::UdpSocket,
}

impl<R: Runtime> UdpSocket<R> {
    /// Binds to the first of `addrs` that works.
    ///
    /// # Errors
    ///
    /// Fails when no address can be bound; the message names the address.
    pub async fn bind(addrs: impl ToSocketAddrs) -> io::Result<Self> {
        let raw = each_addr::<R, _, _>(&addrs, "bind", R::UdpSocket::bind).await?;
        Ok(Self { raw })
    }

    /// Adopts a socket that is already bound: inherited through socket activation, or made
    /// with socket options of one's own. It is switched to non-blocking mode.
    ///
    /// # Errors
    ///
    /// Fails if the socket cannot be registered with the runtime.
    pub fn from_std(socket: std::net::UdpSocket) -> io::Result<Self> {
        Ok(Self {
            raw: R::UdpSocket::from_std(socket)?,
        })
    }

    /// Sets the default peer for [`UdpSocket::send`] and only receives from it.
    ///
    /// # Errors
    ///
    /// Fails when the address does not resolve or `connect(2)` fails.
    pub async fn connect(&self, addrs: impl ToSocketAddrs) -> io::Result<()> {
        each_addr::<R, _, _>(&addrs, "connect to", |addr| self.raw.connect(addr)).await
    }

    /// Sends one datagram to `target` and returns the number of bytes sent.
    ///
    /// # Errors
    ///
    /// Fails when `target` does not resolve or `sendto(2)` fails.
    pub async fn send_to(&self, buf: &[u8], target: impl ToSocketAddrs) -> io::Result<usize> {
        let addr = resolve::<R>(&target).await?[0];
        self.raw
            .send_to(buf, addr)
            .await
            .map_err(|err| context(err, "send to", addr))
    }

    /// Receives one datagram into `buf`; returns its length and sender. Excess bytes of a
    /// datagram longer than `buf` are discarded.
    ///
    /// # Errors
    ///
    /// Passes on errors from `recvfrom(2)`.
    pub async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.raw.recv_from(buf).await
    }

    /// Sends one datagram to the connected peer.
    ///
    /// # Errors
    ///
    /// Fails when the socket is not connected or `send(2)` fails.
    pub async fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.raw.send(buf).await
    }

    /// Receives one datagram from the connected peer.
    ///
    /// # Errors
    ///
    /// Fails when the socket is not connected or `recv(2)` fails (for example, connection
    /// refused reported by an ICMP message).
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.raw.recv(buf).await
    }

    /// The bound address.
    ///
    /// # Errors
    ///
    /// Passes on errors from `getsockname(2)`.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.raw.local_addr()
    }

    /// The connected peer's address.
    ///
    /// # Errors
    ///
    /// Fails when the socket is not connected.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.raw.peer_addr()
    }
}

#[cfg(unix)]
impl<R: Runtime> std::os::fd::AsFd for UdpSocket<R> {
    /// The socket, for options this type does not name (buffer sizes, say).
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.raw.as_fd()
    }
}

impl<R: Runtime> fmt::Debug for UdpSocket<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UdpSocket")
            .field("local_addr", &self.local_addr().ok())
            .finish()
    }
}
