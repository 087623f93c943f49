//! The `tls` suite: ginkgo's `StreamServer` serving TLS (ginkgo-tls, rustls on ring) in a
//! service tree on each backend, against a native tokio-rustls echo server on tokio, with the
//! same rustls and provider. One load generator for both (tokio + tokio-rustls, on the echo
//! suite's client runtime):
//!
//! - **TLS echo**: `CONNS` connections, handshaken before the clock starts, each doing
//!   `ROUND_TRIPS` round trips of `LEN` bytes.
//! - **TLS handshakes**: `HANDSHAKES` full handshakes (session resumption off), `PARALLEL` at a
//!   time, each with one round trip so the server's side has finished.
//!
//! The certificates are made with rcgen at the start, into a temporary directory.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use ginkgo_api::Runtime;
use ginkgo_backend_async_std::AsyncStd;
use ginkgo_backend_smol::Smol;
use ginkgo_backend_threads::Threads;
use ginkgo_backend_tokio::Tokio;
use ginkgo_net::{Connection, StreamServer};
use ginkgo_tls::ServerTls;
use rustls_pki_types::pem::PemObject;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::echo::client_runtime;
use crate::messages;
use crate::runtime::native::tokio as native_tokio;
use crate::suite::{Backend, Case, Suite};

const CONNS: usize = 64;
const ROUND_TRIPS: usize = 500;
const LEN: usize = 64;
const HANDSHAKES: usize = 2_000;
const PARALLEL: usize = 32;

/// The suite, for [`crate::suite::run`].
pub(crate) const SUITE: Suite = Suite {
    command: "tls",
    title: "a StreamServer with TLS vs. a tokio-rustls server on tokio",
    intro: "ginkgo: a StreamServer with TLS (ginkgo-tls, rustls on ring) in a service tree; \
            baseline: a tokio-rustls echo server on tokio with the same rustls and provider. \
            Both driven by the same tokio + tokio-rustls load generator.",
    cases,
};

/// One timed run.
type Run = fn() -> Duration;

fn cases(backend: Backend) -> Vec<Case> {
    let (echo, handshakes): (Run, Run) = match backend {
        Backend::Tokio => (ginkgo_echo::<Tokio>, ginkgo_handshakes::<Tokio>),
        Backend::AsyncStd => (ginkgo_echo::<AsyncStd>, ginkgo_handshakes::<AsyncStd>),
        Backend::Smol => (ginkgo_echo::<Smol>, ginkgo_handshakes::<Smol>),
        Backend::Threads => (ginkgo_echo::<Threads>, ginkgo_handshakes::<Threads>),
    };
    vec![
        Case::new(
            "tls echo",
            format!("tls echo {CONNS} conns x {ROUND_TRIPS} x {LEN} B"),
            echo,
            native_echo,
        ),
        Case::new(
            "tls handshakes",
            format!("tls handshakes {HANDSHAKES}, {PARALLEL} at a time"),
            handshakes,
            native_handshakes,
        ),
    ]
}

/// The certificate and key files (and the CA that signed them), made once per process; the
/// `https` suite's servers use them too.
pub(crate) struct Files {
    _dir: tempfile::TempDir,
    ca: PathBuf,
    pub(crate) cert: PathBuf,
    pub(crate) key: PathBuf,
}

/// This process's certificate files, made at the first call.
pub(crate) fn files() -> &'static Files {
    static FILES: OnceLock<Files> = OnceLock::new();
    FILES.get_or_init(|| {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let mut ca_params = rcgen::CertificateParams::default();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca_key = rcgen::KeyPair::generate().expect("CA key");
        let ca_cert = ca_params.self_signed(&ca_key).expect("CA certificate");
        let issuer = rcgen::Issuer::from_params(&ca_params, &ca_key);
        let key = rcgen::KeyPair::generate().expect("key");
        let params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).expect("SAN");
        let cert = params.signed_by(&key, &issuer).expect("certificate");
        let path = |name: &str| dir.path().join(name);
        std::fs::write(path("ca.pem"), ca_cert.pem()).expect("write");
        std::fs::write(path("cert.pem"), cert.pem()).expect("write");
        std::fs::write(path("key.pem"), key.serialize_pem()).expect("write");
        Files {
            ca: path("ca.pem"),
            cert: path("cert.pem"),
            key: path("key.pem"),
            _dir: dir,
        }
    })
}

/// ring, the provider of ginkgo-tls, for the baselines.
pub(crate) fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The load generator's client configuration: trusts the CA, no session resumption.
fn connector() -> tokio_rustls::TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pki_types::CertificateDer::pem_file_iter(&files().ca).expect("CA") {
        roots.add(cert.expect("CA certificate")).expect("a root");
    }
    let mut config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.resumption = rustls::client::Resumption::disabled();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

async fn tls_connect(
    connector: &tokio_rustls::TlsConnector,
    addr: SocketAddr,
) -> io::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    let name = rustls_pki_types::ServerName::try_from("localhost").expect("a name");
    connector.connect(name, tcp).await
}

async fn round_trips<S: AsyncReadExt + AsyncWriteExt + Unpin>(
    stream: &mut S,
    count: usize,
) -> io::Result<()> {
    let message = [7; LEN];
    let mut buf = [0; LEN];
    for _ in 0..count {
        stream.write_all(&message).await?;
        stream.read_exact(&mut buf).await?;
    }
    assert_eq!(buf, message, "echo mismatch");
    Ok(())
}

/// The echo load against `addr`; the time of the round trips only.
fn echo_load(addr: SocketAddr) -> Duration {
    let run = client_runtime().spawn(async move {
        let connector = connector();
        let mut streams = Vec::with_capacity(CONNS);
        for _ in 0..CONNS {
            streams.push(tls_connect(&connector, addr).await?);
        }
        let start = Instant::now();
        let clients: Vec<_> = streams
            .into_iter()
            .map(|mut s| tokio::spawn(async move { round_trips(&mut s, ROUND_TRIPS).await }))
            .collect();
        for client in clients {
            client.await.expect("a client panicked")?;
        }
        io::Result::Ok(start.elapsed())
    });
    futures_lite::future::block_on(run)
        .expect("the load generator panicked")
        .expect("a client failed")
}

/// The handshake load against `addr`.
fn handshake_load(addr: SocketAddr) -> Duration {
    let run = client_runtime().spawn(async move {
        let connector = connector();
        let start = Instant::now();
        let clients: Vec<_> = (0..PARALLEL)
            .map(|_| {
                let connector = connector.clone();
                tokio::spawn(async move {
                    for _ in 0..HANDSHAKES / PARALLEL {
                        let mut stream = tls_connect(&connector, addr).await?;
                        round_trips(&mut stream, 1).await?;
                    }
                    io::Result::Ok(())
                })
            })
            .collect();
        for client in clients {
            client.await.expect("a client panicked")?;
        }
        io::Result::Ok(start.elapsed())
    });
    futures_lite::future::block_on(run)
        .expect("the load generator panicked")
        .expect("a client failed")
}

/// A TLS echo `StreamServer` on `R` in a fresh tree, under `load`.
fn ginkgo<R: Runtime>(load: fn(SocketAddr) -> Duration) -> Duration {
    let files = files();
    let server = StreamServer::<R, _>::new("tls-echo", "127.0.0.1:0", |conn: Connection<R>| {
        messages::echo::<LEN>(conn.stream)
    })
    .tls(ServerTls::new(&files.cert, &files.key));
    let address = server.address();
    ginkgo_api::block_on::<R, _>(async move {
        let tree = ginkgo_api::service::tree::<R>(server);
        tree.start().await.expect("the TLS echo server starts");
        let addr = address.local_addr().expect("listening");
        let took = ginkgo_api::spawn_blocking::<R, _, _>(move || load(addr))
            .await
            .expect("the load ran");
        let _ = tree.stop().await;
        took
    })
}

fn ginkgo_echo<R: Runtime>() -> Duration {
    ginkgo::<R>(echo_load)
}

fn ginkgo_handshakes<R: Runtime>() -> Duration {
    ginkgo::<R>(handshake_load)
}

/// The baseline: tokio-rustls on a fresh tokio runtime, a task per connection.
fn native(load: fn(SocketAddr) -> Duration) -> Duration {
    let files = files();
    let certs = rustls_pki_types::CertificateDer::pem_file_iter(&files.cert)
        .expect("certificate")
        .collect::<Result<Vec<_>, _>>()
        .expect("certificate");
    let key = rustls_pki_types::PrivateKeyDer::from_pem_file(&files.key).expect("key");
    let config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .expect("server config");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let runtime = native_tokio::runtime();
    let addr = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("address");
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let _ = tcp.set_nodelay(true);
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let mut buf = [0; LEN];
                    while tls.read_exact(&mut buf).await.is_ok() {
                        if tls.write_all(&buf).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        addr
    });
    let took = load(addr);
    runtime.shutdown_background();
    took
}

fn native_echo() -> Duration {
    native(echo_load)
}

fn native_handshakes() -> Duration {
    native(handshake_load)
}
