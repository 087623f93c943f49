//! TLS for ginkgo-rs servers and clients: certificates checked before use, reloaded without a
//! restart, mutual TLS, on any runtime.
//!
//! - [`ServerTls`] and [`ClientTls`]: the settings (file paths, minimum [`TlsVersion`], ALPN
//!   protocols), plain data.
//! - [`TlsAcceptor`]: a server's configuration, built by [`TlsAcceptor::new`] only from files
//!   that pass every check; [`accept`](TlsAcceptor::accept) runs a handshake,
//!   [`reload`](TlsAcceptor::reload) swaps in renewed files.
//! - [`TlsConnector`]: a client's configuration; [`connect`](TlsConnector::connect) runs a
//!   handshake.
//! - [`TlsStream`] and [`ClientTlsStream`]: established connections, futures-io
//!   `AsyncRead` + `AsyncWrite`, with the negotiated ALPN protocol and version and the peer's
//!   [`PeerIdentity`].
//! - [`TlsError`]: what is wrong with a configuration, naming the file.
//!
//! The handshakes work on any `S: futures_io::AsyncRead + AsyncWrite + Unpin`, so on every
//! ginkgo backend; they have no timeout of their own, the caller applies its handshake or
//! connect timeout.
//!
//! # Examples
//!
//! A server and a client on a loopback socket (the certificate set-up is hidden):
//!
//! ```
//! use futures_lite::{AsyncReadExt, AsyncWriteExt, future};
//! use ginkgo_tls::{ClientTls, ServerTls, TlsAcceptor, TlsConnector};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempfile::tempdir()?;
//! # let key = rcgen::KeyPair::generate()?;
//! # let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])?.self_signed(&key)?;
//! # let (cert_file, key_file) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
//! # std::fs::write(&cert_file, cert.pem())?;
//! # std::fs::write(&key_file, key.serialize_pem())?;
//! // cert_file: a certificate for "localhost"; key_file: its key.
//! let acceptor = TlsAcceptor::new(ServerTls::new(&cert_file, &key_file).alpn(["h2"]))?;
//! // The client trusts that (self-signed) certificate instead of the system's roots.
//! let connector = TlsConnector::new(ClientTls::new().ca(&cert_file).alpn(["h2"]))?;
//!
//! future::block_on(async {
//!     let listener = async_net::TcpListener::bind("127.0.0.1:0").await?;
//!     let addr = listener.local_addr()?;
//!     let server = async {
//!         let (tcp, _) = listener.accept().await?;
//!         let mut tls = acceptor.accept(tcp).await?;
//!         assert_eq!(tls.alpn_protocol(), Some(&b"h2"[..]));
//!         let mut request = [0; 4];
//!         tls.read_exact(&mut request).await?;
//!         tls.write_all(b"pong").await?;
//!         tls.close().await
//!     };
//!     let client = async {
//!         let tcp = async_net::TcpStream::connect(addr).await?;
//!         let mut tls = connector.connect("localhost", tcp).await?;
//!         tls.write_all(b"ping").await?;
//!         let mut reply = Vec::new();
//!         tls.read_to_end(&mut reply).await?;
//!         assert_eq!(reply, b"pong");
//!         Ok(())
//!     };
//!     future::try_zip(server, client).await
//! })?;
//! # Ok(())
//! # }
//! ```
//!
//! # Checked before use
//!
//! [`TlsAcceptor::new`] and [`TlsConnector::new`] read every file and refuse, with a
//! [`TlsError`] naming the file, a configuration that would fail later at a handshake: an
//! unreadable file, no certificate, no private key, a key that is not the certificate's, a
//! certificate expired or not yet valid, a CA bundle with no CA. A daemon finds out at start
//! (or at reload), not when its first client does.
//!
//! # Reload
//!
//! [`TlsAcceptor::reload`] (and [`reload_from`](TlsAcceptor::reload_from), for new paths)
//! guarantees:
//!
//! - the files are re-read and pass every check of [`TlsAcceptor::new`], or the reload
//!   returns the error and **nothing changes**: the previous certificate, key and client CAs
//!   stay in force;
//! - on success the new configuration replaces the old one in a single atomic swap, seen by
//!   every clone of the acceptor: every handshake started by [`accept`](TlsAcceptor::accept)
//!   after `reload` returns uses the new files; a handshake started before uses the old ones
//!   throughout (never a mix);
//! - connections already established are untouched: they keep the session they negotiated.
//!
//! # Crypto: ring
//!
//! rustls runs on the *ring* crypto provider, passed explicitly to every configuration (no
//! process-wide default is installed or read). *ring* builds with the Rust toolchain and the C
//! compiler that Rust already needs as a linker; aws-lc-rs, rustls' default, also needs cmake
//! (and more on some platforms), which a fresh build machine does not have.

mod client;
mod error;
mod identity;
mod load;
mod server;
mod stream;
mod version;

pub use client::{ClientTls, TlsConnector};
pub use error::{FileKind, TlsError};
pub use identity::PeerIdentity;
pub use server::{ServerTls, TlsAcceptor};
pub use stream::{ClientTlsStream, TlsStream};
pub use version::{ParseVersionError, TlsVersion};

/// rustls, whose errors [`TlsError`] carries as sources.
pub use rustls;
/// rustls-pki-types, whose PEM error [`TlsError::Pem`] carries.
pub use rustls_pki_types as pki_types;
/// The DER certificate type of [`TlsAcceptor::certificate`] and [`PeerIdentity`].
pub use rustls_pki_types::CertificateDer;
