//! Stream servers and clients, and a UDP server ([`DatagramServer`]), as services, on the
//! backend chosen at build time, with the listener and the accept loop they share for a server
//! kind of one's own; see [`ginkgo_net`] for the details.
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
//!
//! A server kind of one's own opens its [`Listen`] and runs the same [`AcceptLoop`] as
//! [`StreamServer`] (connection cap, pause and resume, backoff on accept errors, counters,
//! graceful close), serving each [`Accepted`] connection in a task its service owns:
//!
//! ```
//! use ginkgo::io::{AsyncReadExt, AsyncWriteExt};
//! use ginkgo::server::{AcceptLoop, Accepted, BoundAddr, ConnectionGuard, Listen, ListenOptions};
//! use ginkgo::service::{Context, Error, Service};
//!
//! /// Greets each client, then closes.
//! struct Greeter {
//!     listen: Listen,
//!     address: BoundAddr,
//! }
//!
//! #[ginkgo::async_trait]
//! impl Service for Greeter {
//!     async fn start(&mut self, ctx: &Context) -> Result<(), Error> {
//!         let listener = self
//!             .listen
//!             .open_for::<ginkgo::Backend>(&ListenOptions::default(), ctx.path())
//!             .await?;
//!         let accept = AcceptLoop::new(listener, &self.address, ctx).max_connections(100);
//!         let owner = ctx.clone();
//!         ctx.spawn("accept", accept.run(ctx.clone(), move |accepted: Accepted| {
//!             let Accepted { mut stream, peer, guard } = accepted;
//!             owner.spawn(format!("connection {peer}"), async move {
//!                 let _open: ConnectionGuard = guard; // open, under the cap, until dropped
//!                 let _ = stream.write_all(b"hello\n").await;
//!             });
//!         }));
//!         Ok(())
//!     }
//! }
//!
//! let address = BoundAddr::default();
//! let greeter = Greeter { listen: Listen::from("127.0.0.1:0"), address: address.clone() };
//! ginkgo::run(async {
//!     let tree = ginkgo::service::tree(greeter);
//!     tree.start().await.unwrap();
//!     let mut client = ginkgo::net::TcpStream::connect(address.local_addr().unwrap()).await.unwrap();
//!     let mut greeting = String::new();
//!     client.read_to_string(&mut greeting).await.unwrap();
//!     assert_eq!(greeting, "hello\n");
//!     assert!(tree.stop().await.is_clean());
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
/// The one accept loop every server kind runs, [`StreamServer`] and `HttpServer` as well as
/// one of one's own: see [`ginkgo_net::AcceptLoop`].
pub type AcceptLoop = ginkgo_net::AcceptLoop<crate::Backend>;
/// One connection the [`AcceptLoop`] accepted: its stream, its peer, and its
/// [`ConnectionGuard`].
pub type Accepted = ginkgo_net::Accepted<crate::Backend>;
/// Counts an accepted connection as open, under the connection cap, until dropped.
pub use ginkgo_net::ConnectionGuard;
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
