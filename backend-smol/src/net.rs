//! Sockets behind the ginkgo socket contract: listeners and datagram sockets on the async-io
//! reactor (async-net's for UDP), connected streams as [`Stream`]s.

use std::io;
use std::net::{Shutdown, SocketAddr};
use std::os::unix::net::SocketAddr as UnixSocketAddr;
use std::path::Path;

use async_io::Async;
use ginkgo_api::runtime::{RawTcpListener, RawTcpStream, RawUnixListener, RawUnixStream};
use ginkgo_api::{forward_async_read, forward_async_write};

use crate::stream::Stream;

/// A TCP listener on the async-io reactor.
#[derive(Debug)]
pub struct TcpListener(Async<std::net::TcpListener>);

impl RawTcpListener for TcpListener {
    type Stream = TcpStream;

    async fn bind(addr: SocketAddr) -> io::Result<Self> {
        Async::<std::net::TcpListener>::bind(addr).map(Self)
    }

    fn from_std(listener: std::net::TcpListener) -> io::Result<Self> {
        // `Async::new` switches the socket to non-blocking mode.
        Async::new(listener).map(Self)
    }

    async fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let (stream, peer) = self.0.read_with(|listener| listener.accept()).await?;
        Ok((TcpStream(Stream::new(stream)?), peer))
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.get_ref().local_addr()
    }

    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        std::os::fd::AsFd::as_fd(self.0.get_ref())
    }
}

ginkgo_backend_kit::tcp_stream_types!(
    Stream<std::net::TcpStream>,
    "A TCP connection on the async-io reactor."
);

impl RawTcpStream for TcpStream {
    type ReadHalf = TcpReadHalf;
    type WriteHalf = TcpWriteHalf;

    async fn connect(addr: SocketAddr) -> io::Result<Self> {
        // async-io's connect waits for the handshake; the socket then moves to our reactor.
        let stream = Async::<std::net::TcpStream>::connect(addr).await?;
        Stream::new(stream.into_inner()?).map(Self)
    }

    ginkgo_backend_kit::tcp_stream_accessors!(0.get_ref());

    fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.0.get_ref().shutdown(how)
    }

    fn into_split(self) -> (TcpReadHalf, TcpWriteHalf) {
        (TcpReadHalf(self.0.share()), TcpWriteHalf(self.0))
    }
}

/// A UDP socket on the async-io reactor.
#[derive(Debug)]
pub struct UdpSocket(async_net::UdpSocket);

ginkgo_backend_kit::forward_udp_socket!(UdpSocket, async_net::UdpSocket);

/// A Unix-domain listener on the async-io reactor.
#[derive(Debug)]
pub struct UnixListener(Async<std::os::unix::net::UnixListener>);

impl RawUnixListener for UnixListener {
    type Stream = UnixStream;

    fn bind(path: &Path) -> io::Result<Self> {
        Async::<std::os::unix::net::UnixListener>::bind(path).map(Self)
    }

    fn from_std(listener: std::os::unix::net::UnixListener) -> io::Result<Self> {
        Async::new(listener).map(Self)
    }

    async fn accept(&self) -> io::Result<(UnixStream, UnixSocketAddr)> {
        let (stream, addr) = self.0.read_with(|listener| listener.accept()).await?;
        Ok((UnixStream(Stream::new(stream)?), addr))
    }

    fn local_addr(&self) -> io::Result<UnixSocketAddr> {
        self.0.get_ref().local_addr()
    }

    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        std::os::fd::AsFd::as_fd(self.0.get_ref())
    }
}

/// A Unix-domain connection on the async-io reactor.
#[derive(Debug)]
pub struct UnixStream(Stream<std::os::unix::net::UnixStream>);

forward_async_read!(UnixStream, 0);
forward_async_write!(UnixStream, 0);

impl RawUnixStream for UnixStream {
    async fn connect(path: &Path) -> io::Result<Self> {
        let stream = Async::<std::os::unix::net::UnixStream>::connect(path).await?;
        Stream::new(stream.into_inner()?).map(Self)
    }

    fn pair() -> io::Result<(Self, Self)> {
        let (a, b) = std::os::unix::net::UnixStream::pair()?;
        Ok((Self(Stream::new(a)?), Self(Stream::new(b)?)))
    }

    fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.0.get_ref().shutdown(how)
    }

    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        std::os::fd::AsFd::as_fd(self.0.get_ref())
    }
}
