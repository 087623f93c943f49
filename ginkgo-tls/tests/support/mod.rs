//! Shared by the test files: certificates generated with rcgen into a temporary directory
//! (no key is ever committed, nothing is left behind), and TLS connections over real
//! loopback sockets.

// Each test file uses a different part of this module.
#![allow(dead_code)]

use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use async_net::{TcpListener, TcpStream};
use futures_lite::future;
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use ginkgo_tls::{CertificateDer, ClientTlsStream, TlsAcceptor, TlsConnector, TlsStream};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use tempfile::TempDir;

/// A directory of PEM files, removed when dropped (also when a test fails).
pub(crate) struct Files {
    dir: TempDir,
}

impl Files {
    pub(crate) fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("temporary directory"),
        }
    }

    /// The path of `name` in the directory (which may not exist yet).
    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes `contents` to `name` and returns its path.
    pub(crate) fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, contents).expect("write a test file");
        path
    }

    /// Writes a leaf's certificate and key as `NAME.pem` and `NAME.key` and returns both
    /// paths.
    pub(crate) fn write_leaf(&self, name: &str, leaf: &Leaf) -> (PathBuf, PathBuf) {
        (
            self.write(&format!("{name}.pem"), &leaf.cert_pem),
            self.write(&format!("{name}.key"), &leaf.key_pem),
        )
    }
}

/// A certificate authority that issues leaves.
pub(crate) struct Ca {
    params: CertificateParams,
    key: KeyPair,
    pub(crate) pem: String,
    pub(crate) der: CertificateDer<'static>,
}

impl Ca {
    pub(crate) fn new(name: &str) -> Self {
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().expect("CA key");
        let cert = params.self_signed(&key).expect("CA certificate");
        Self {
            pem: cert.pem(),
            der: cert.der().clone(),
            params,
            key,
        }
    }

    /// A server certificate for `localhost` and 127.0.0.1, valid now.
    pub(crate) fn server(&self) -> Leaf {
        self.issue(LeafSpec::server())
    }

    /// A client certificate with subject `O=Example, CN=<cn>`, valid now.
    pub(crate) fn client(&self, cn: &str) -> Leaf {
        self.issue(LeafSpec::client(cn))
    }

    pub(crate) fn issue(&self, spec: LeafSpec) -> Leaf {
        let key = KeyPair::generate().expect("leaf key");
        let issuer = Issuer::from_params(&self.params, &self.key);
        let cert = spec
            .params
            .signed_by(&key, &issuer)
            .expect("leaf certificate");
        Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            der: cert.der().clone(),
        }
    }
}

/// What to put in a leaf certificate.
pub(crate) struct LeafSpec {
    pub(crate) params: CertificateParams,
}

impl LeafSpec {
    pub(crate) fn server() -> Self {
        let mut params = CertificateParams::new(vec!["localhost".to_owned()]).expect("SAN");
        params
            .subject_alt_names
            .push(SanType::IpAddress([127, 0, 0, 1].into()));
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        Self { params }
    }

    pub(crate) fn client(cn: &str) -> Self {
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        // Encoded O first, CN last, as CAs do; RFC 4514 writes them the other way round.
        params
            .distinguished_name
            .push(DnType::OrganizationName, "Example");
        params.distinguished_name.push(DnType::CommonName, cn);
        Self { params }
    }

    /// Validity from `not_before` to `not_after` (year, month, day).
    pub(crate) fn valid(mut self, not_before: (i32, u8, u8), not_after: (i32, u8, u8)) -> Self {
        self.params.not_before = rcgen::date_time_ymd(not_before.0, not_before.1, not_before.2);
        self.params.not_after = rcgen::date_time_ymd(not_after.0, not_after.1, not_after.2);
        self
    }
}

/// A leaf certificate and its key.
pub(crate) struct Leaf {
    pub(crate) cert_pem: String,
    pub(crate) key_pem: String,
    pub(crate) der: CertificateDer<'static>,
}

/// Fails a test that hangs instead of letting it block the run.
pub(crate) fn run<T>(test: impl Future<Output = T>) -> T {
    future::block_on(future::or(test, async {
        async_io::Timer::after(Duration::from_secs(20)).await;
        panic!("the test did not finish in 20 s");
    }))
}

/// A loopback TCP connection: (the server's end, the client's end).
pub(crate) async fn tcp_pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local address");
    let (accepted, connected) = future::zip(listener.accept(), TcpStream::connect(addr)).await;
    (accepted.expect("accept").0, connected.expect("connect"))
}

pub(crate) type Server = io::Result<TlsStream<TcpStream>>;
pub(crate) type Client = io::Result<ClientTlsStream<TcpStream>>;

/// Runs both sides of a handshake at once on a new loopback connection, the client
/// verifying the server as `name`.
pub(crate) async fn handshake(
    acceptor: &TlsAcceptor,
    connector: &TlsConnector,
    name: &str,
) -> (Server, Client) {
    let (server, client) = tcp_pair().await;
    future::zip(acceptor.accept(server), connector.connect(name, client)).await
}

/// Like [`handshake`], but panics unless both sides succeed.
pub(crate) async fn connected(
    acceptor: &TlsAcceptor,
    connector: &TlsConnector,
) -> (TlsStream<TcpStream>, ClientTlsStream<TcpStream>) {
    let (server, client) = handshake(acceptor, connector, "localhost").await;
    (
        server.expect("the server's handshake"),
        client.expect("the client's handshake"),
    )
}

/// Sends `request` from the client and `reply` from the server, and checks that each arrives
/// whole.
pub(crate) async fn round_trip(
    server: &mut TlsStream<TcpStream>,
    client: &mut ClientTlsStream<TcpStream>,
    request: &[u8],
    reply: &[u8],
) {
    let serve = async {
        let mut got = vec![0; request.len()];
        server.read_exact(&mut got).await.expect("server read");
        assert_eq!(got, request, "the request as the server read it");
        server.write_all(reply).await.expect("server write");
        server.flush().await.expect("server flush");
    };
    let ask = async {
        client.write_all(request).await.expect("client write");
        client.flush().await.expect("client flush");
        let mut got = vec![0; reply.len()];
        client.read_exact(&mut got).await.expect("client read");
        assert_eq!(got, reply, "the reply as the client read it");
    };
    future::zip(serve, ask).await;
}

/// The certificate the client was shown by the server.
pub(crate) fn served_certificate(client: &ClientTlsStream<TcpStream>) -> CertificateDer<'static> {
    client
        .peer_identity()
        .expect("a server always presents a certificate")
        .certificate()
        .clone()
}

/// The message of an error and of each of its sources, joined by " <- ".
pub(crate) fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(err) = source {
        text.push_str(" <- ");
        text.push_str(&err.to_string());
        source = err.source();
    }
    text
}

/// Asserts that `path` appears in `text`.
pub(crate) fn names(text: &str, path: &Path) {
    let path = path.display().to_string();
    assert!(text.contains(&path), "{text:?} does not name {path}");
}
