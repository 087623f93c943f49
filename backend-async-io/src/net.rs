//! [`async_net`] sockets behind the ginkgo socket contract.

use std::io;
use std::net::{Shutdown, SocketAddr};
use std::os::unix::net::SocketAddr as UnixSocketAddr;
use std::path::Path;

use ginkgo_api::runtime::{RawTcpListener, RawTcpStream, RawUnixListener, RawUnixStream};
use ginkgo_api::{forward_async_read, forward_async_write};

use crate::stream::Stream;

/// A TCP listener on the async-io reactor.
#[derive(Debug)]
pub struct TcpListener(async_net::TcpListener);

impl RawTcpListener for TcpListener {
    type Stream = TcpStream;

    async fn bind(addr: SocketAddr) -> io::Result<Self> {
        async_net::TcpListener::bind(addr).await.map(Self)
    }

    fn from_std(listener: std::net::TcpListener) -> io::Result<Self> {
        // `Async::new` switches the socket to non-blocking mode.
        async_net::TcpListener::try_from(listener).map(Self)
    }

    async fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let (stream, peer) = self.0.accept().await?;
        Ok((TcpStream(Stream::new(stream.into())), peer))
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }
}

ginkgo_api::tcp_stream_types!(
    Stream<std::net::TcpStream>,
    "A TCP connection on the async-io reactor."
);

impl RawTcpStream for TcpStream {
    type ReadHalf = TcpReadHalf;
    type WriteHalf = TcpWriteHalf;

    async fn connect(addr: SocketAddr) -> io::Result<Self> {
        let stream = async_net::TcpStream::connect(addr).await?;
        Ok(Self(Stream::new(stream.into())))
    }

    ginkgo_api::tcp_stream_accessors!(0.get_ref());

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

ginkgo_api::forward_udp_socket!(UdpSocket, async_net::UdpSocket);

/// A Unix-domain listener on the async-io reactor.
#[derive(Debug)]
pub struct UnixListener(async_net::unix::UnixListener);

impl RawUnixListener for UnixListener {
    type Stream = UnixStream;

    fn bind(path: &Path) -> io::Result<Self> {
        async_net::unix::UnixListener::bind(path).map(Self)
    }

    fn from_std(listener: std::os::unix::net::UnixListener) -> io::Result<Self> {
        async_net::unix::UnixListener::try_from(listener).map(Self)
    }

    async fn accept(&self) -> io::Result<(UnixStream, UnixSocketAddr)> {
        let (stream, addr) = self.0.accept().await?;
        Ok((UnixStream(Stream::new(stream.into())), addr))
    }

    fn local_addr(&self) -> io::Result<UnixSocketAddr> {
        self.0.local_addr()
    }
}

/// A Unix-domain connection on the async-io reactor.
#[derive(Debug)]
pub struct UnixStream(Stream<std::os::unix::net::UnixStream>);

forward_async_read!(UnixStream, 0);
forward_async_write!(UnixStream, 0);

impl RawUnixStream for UnixStream {
    async fn connect(path: &Path) -> io::Result<Self> {
        let stream = async_net::unix::UnixStream::connect(path).await?;
        Ok(Self(Stream::new(stream.into())))
    }

    fn pair() -> io::Result<(Self, Self)> {
        let (a, b) = async_net::unix::UnixStream::pair()?;
        Ok((Self(Stream::new(a.into())), Self(Stream::new(b.into()))))
    }

    fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.0.get_ref().shutdown(how)
    }
}
