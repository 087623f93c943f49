//! Stream servers and clients as ginkgo-rs services.
//!
//! - [`StreamServer`]: accepts TCP connections and runs a handler per connection in a task the
//!   service owns; caps concurrent connections; backs off on accept errors such as `EMFILE`;
//!   stops gracefully; counts connections.
//! - [`StreamClient`]: keeps one connection to a server, reconnecting with capped exponential
//!   backoff; ready only while connected.
//!
//! Both are generic over the runtime `R`; the `ginkgo` facade fixes it (`ginkgo::server`).
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
//!     let mut client = ginkgo_api::net::TcpStream::<R>::connect(address.get().unwrap()).await.unwrap();
//!     client.write_all(b"ping").await.unwrap();
//!     let mut reply = [0u8; 4];
//!     client.read_exact(&mut reply).await.unwrap();
//!     assert_eq!(&reply, b"ping");
//!     tree.stop().await;
//! });
//! # }
//! ```

mod backoff;
mod bind;
mod client;
mod server;

pub use backoff::Backoff;
pub use bind::{Bind, BoundAddr};
pub use client::{ClientConnection, StreamClient};
pub use server::{Connection, Handler, StreamServer};
