//! Stream servers and clients, and a UDP server ([`DatagramServer`]), as services, on the
//! backend chosen at build time; see [`ginkgo_net`] for the details.
//!
//! # Examples
//!
//! ```
//! use ginkgo::io::{AsyncReadExt, AsyncWriteExt};
//! use ginkgo::server::{Connection, StreamServer};
//!
//! let echo = StreamServer::new("echo", "127.0.0.1:0", |mut conn: Connection| async move {
//!     let mut buf = vec![0u8; 4096];
//!     loop {
//!         let n = conn.stream.read(&mut buf).await?;
//!         if n == 0 {
//!             return std::io::Result::Ok(());
//!         }
//!         conn.stream.write_all(&buf[..n]).await?;
//!     }
//! });
//! let address = echo.address();
//! ginkgo::run(async {
//!     let tree = ginkgo::service::tree(echo);
//!     tree.start().await.unwrap();
//!     let mut client = ginkgo::net::TcpStream::connect(address.local_addr().unwrap()).await.unwrap();
//!     client.write_all(b"ping").await.unwrap();
//!     let mut reply = [0u8; 4];
//!     client.read_exact(&mut reply).await.unwrap();
//!     assert_eq!(&reply, b"ping");
//!     tree.stop().await;
//! });
//! ```

pub use ginkgo_net::{
    AcceptControl, Backoff, BoundAddr, DEFAULT_BACKLOG, DEFAULT_MAX_CONNECTIONS, Handler, Listen,
    ListenOptions, LocalAddr, Peer, PeerCredentials, UNIX_PREFIX,
};
pub use ginkgo_net::{
    DEFAULT_MAX_DATAGRAM_SIZE, DEFAULT_MAX_IN_FLIGHT, DatagramBind, DatagramHandler,
    DatagramOptions,
};

/// A stream (TCP or Unix-domain) server as a service: one owned task per connection.
pub type StreamServer<H> = ginkgo_net::StreamServer<crate::Backend, H>;
/// One accepted connection.
pub type Connection = ginkgo_net::Connection<crate::Backend>;
/// An accepted connection, TCP or Unix-domain.
pub type Stream = ginkgo_net::Stream<crate::Backend>;
/// An open listening socket, TCP or Unix-domain.
pub type Listener = ginkgo_net::Listener<crate::Backend>;
/// A TCP client as a service that reconnects.
pub type StreamClient<H> = ginkgo_net::StreamClient<crate::Backend, H>;
/// The client's connection.
pub type ClientConnection = ginkgo_net::ClientConnection<crate::Backend>;

/// A UDP server as a service: one owned task per datagram, at most `max_in_flight` at once.
///
/// # Examples
///
/// ```
/// use ginkgo::server::{Datagram, DatagramServer};
///
/// let echo = DatagramServer::new("echo", "127.0.0.1:0", |datagram: Datagram| async move {
///     datagram.reply(&datagram.payload).await?;
///     std::io::Result::Ok(())
/// });
/// let address = echo.address();
/// ginkgo::run(async {
///     let tree = ginkgo::service::tree(echo);
///     tree.start().await.unwrap();
///     let server = address.local_addr().unwrap();
///     let client = ginkgo::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
///     client.send_to(b"ping", server).await.unwrap();
///     let mut reply = [0u8; 4];
///     let (n, from) = client.recv_from(&mut reply).await.unwrap();
///     assert_eq!((&reply[..n], from), (&b"ping"[..], server));
///     tree.stop().await;
/// });
/// ```
pub type DatagramServer<H> = ginkgo_net::DatagramServer<crate::Backend, H>;
/// One received datagram, with the way to reply to its sender.
pub type Datagram = ginkgo_net::Datagram<crate::Backend>;
