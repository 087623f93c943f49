//! TLS for the servers and clients, with certificates checked before use and reloaded
//! without a restart; see [`ginkgo_tls`] for the guarantees.
//!
//! Give a [`ServerTls`] to `StreamServer::tls` (or `HttpServer::tls`, which negotiates HTTP/2
//! or HTTP/1.1 by ALPN), a [`ClientTls`] to `StreamClient::tls`. A bad file fails the start,
//! naming it; on reload the files are re-read, and bad ones are rejected with the old
//! certificate kept in force.
//!
//! # Examples
//!
//! ```no_run
//! use ginkgo::server::{Connection, StreamServer};
//! use ginkgo::tls::ServerTls;
//!
//! let server = StreamServer::new("echo", "0.0.0.0:7443", |conn: Connection| async move {
//!     let client = conn.stream.peer_identity().and_then(|id| id.common_name().map(str::to_owned));
//!     ginkgo::tracing::info!(?client, "TLS connection");
//! })
//! .tls(ServerTls::new("/etc/echo/cert.pem", "/etc/echo/key.pem").client_ca("/etc/echo/clients.pem"));
//! # drop(server);
//! ```

pub use ginkgo_net::tls::{DEFAULT_HANDSHAKE_TIMEOUT, TlsHandshake, TlsSetup};
pub use ginkgo_tls::{
    CertificateDer, ClientTls, ClientTlsStream, FileKind, ParseVersionError, PeerIdentity,
    ServerTls, TlsAcceptor, TlsConnector, TlsError, TlsStream, TlsVersion,
};
