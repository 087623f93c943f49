//! Stream servers and clients as ginkgo-rs services, and the listener and accept loop every
//! server kind shares.
//!
//! - [`Listen`]: where a server listens (a TCP address, a Unix-domain socket file
//!   `unix:/run/app.sock`, or an inherited listener), with [`ListenOptions`] (backlog,
//!   `SO_REUSEPORT`, `IPV6_V6ONLY`, `TCP_NODELAY`, keepalive, socket file mode);
//!   [`BoundAddr`]: where it listens now.
//! - [`Listener`], [`Stream`], [`Peer`]: one listener type for TCP and Unix sockets, what it
//!   accepts, and who connected (a TCP address, or a Unix peer's pid, uid and gid).
//! - [`AcceptLoop`]: the one accept loop (connection cap, pause and resume through an
//!   [`AcceptControl`], backoff on accept errors, counters, graceful close) that
//!   [`StreamServer`] and ginkgo-http's `HttpServer` run.
//! - [`StreamServer`]: accepts connections and runs a handler per connection in a task the
//!   service owns; stops gracefully.
//! - [`DatagramServer`]: receives UDP datagrams on a [`DatagramBind`] and runs a handler per
//!   [`Datagram`] (which can reply to its sender) in a task the service owns, at most
//!   `max_in_flight` at once; counts oversized datagrams instead of cutting them; stops
//!   gracefully.
//! - [`StreamClient`]: keeps one connection to a server, reconnecting with capped exponential
//!   backoff; ready only while connected.
//!
//! - **Upgrades**: every server opens its socket with [`Listen::open_for`] /
//!   [`DatagramBind::open_for`] under its service path: it adopts the socket the old process
//!   of a zero-downtime upgrade handed over for that path (ginkgo-runner's `upgrade`), binds
//!   only when none came, and registers the one it serves for the next upgrade
//!   (`ginkgo_api::net::handoff`). Until the old process commits, the new one's accept loops
//!   wait; from then on the old one's accept nothing more.
//!
//! All are generic over the runtime `R`; the `ginkgo` facade fixes it (`ginkgo::server`).
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `tls` | no | `StreamServer::tls` and `StreamClient::tls` (rustls on ring, through ginkgo-tls): certificates checked at start and re-read on reload, mutual TLS with the peer's identity on [`Stream::peer_identity`], handshakes under a timeout and counted in `tls_handshake_errors`, a close_notify sent for a handler that returns without closing its stream; the [`tls`] module for server kinds of one's own |
//!
//! # Examples
//!
//! An echo server:
//!
//! ```
//! use ginkgo_api::io::{AsyncReadExt, AsyncWriteExt};
//! use ginkgo_net::{Connection, StreamServer};
//!
//! # fn demo<R: ginkgo_api::Runtime>() {
//! let echo = StreamServer::<R, _>::new("echo", "127.0.0.1:0", |mut conn: Connection<R>| async move {
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
//! ginkgo_api::block_on::<R, _>(async {
//!     let tree = ginkgo_api::service::tree::<R>(echo);
//!     tree.start().await.unwrap();
//!     let mut client = ginkgo_api::net::TcpStream::<R>::connect(address.local_addr().unwrap()).await.unwrap();
//!     client.write_all(b"ping").await.unwrap();
//!     let mut reply = [0u8; 4];
//!     client.read_exact(&mut reply).await.unwrap();
//!     assert_eq!(&reply, b"ping");
//!     tree.stop().await;
//! });
//! # }
//! ```

mod accept;
mod client;
mod contain;
mod datagram;
mod listen;
mod listener;
mod server;
#[cfg(feature = "tls")]
mod session;
#[cfg(feature = "tls")]
pub mod tls;

pub use accept::{AcceptControl, AcceptLoop, Accepted, ConnectionGuard, DEFAULT_MAX_CONNECTIONS};
pub use client::{ClientConnection, StreamClient};
pub use datagram::{
    DEFAULT_MAX_DATAGRAM_SIZE, DEFAULT_MAX_IN_FLIGHT, Datagram, DatagramBind, DatagramHandler,
    DatagramOptions, DatagramServer,
};
pub use ginkgo_api::net::PeerCredentials;
pub use ginkgo_api::time::Backoff;
pub use listen::{BoundAddr, DEFAULT_BACKLOG, Listen, ListenOptions, LocalAddr, UNIX_PREFIX};
pub use listener::{Listener, Peer, Stream};
pub use server::{Connection, Handler, StreamServer};
