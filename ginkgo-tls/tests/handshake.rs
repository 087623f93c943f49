//! Handshakes over loopback sockets: data, server names, ALPN, versions, mutual TLS.

mod support;

use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use futures_lite::{AsyncReadExt, AsyncWriteExt, future};
use ginkgo_tls::rustls::{self, ClientConfig, RootCertStore};
use ginkgo_tls::{ClientTls, ServerTls, TlsAcceptor, TlsConnector, TlsError, TlsVersion};
use support::{Ca, Files, Leaf, chain, connected, handshake, round_trip, run, served_certificate};

/// A server CA, a server certificate it signed, and a client trusting that CA.
struct Setup {
    files: Files,
    server: Leaf,
    cert: PathBuf,
    key: PathBuf,
    server_ca: Ca,
    server_ca_file: PathBuf,
}

fn setup() -> Setup {
    let files = Files::new();
    let server_ca = Ca::new("server CA");
    let server = server_ca.server();
    let (cert, key) = files.write_leaf("server", &server);
    let server_ca_file = files.write("server-ca.pem", &server_ca.pem);
    Setup {
        files,
        server,
        cert,
        key,
        server_ca,
        server_ca_file,
    }
}

impl Setup {
    fn server_tls(&self) -> ServerTls {
        ServerTls::new(&self.cert, &self.key)
    }

    fn client_tls(&self) -> ClientTls {
        ClientTls::new().ca(&self.server_ca_file)
    }

    fn acceptor(&self, tls: ServerTls) -> TlsAcceptor {
        TlsAcceptor::new(tls).expect("good server files")
    }

    fn connector(&self, tls: ClientTls) -> TlsConnector {
        TlsConnector::new(tls).expect("good client files")
    }
}

/// A client that speaks TLS 1.2 and nothing newer, which `ClientTls` cannot express.
fn tls12_only_client(ca: &Ca) -> futures_rustls::TlsConnector {
    let mut roots = RootCertStore::empty();
    roots.add(ca.der.clone()).expect("CA certificate");
    let config =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_protocol_versions(&[&rustls::version::TLS12])
            .expect("TLS 1.2")
            .with_root_certificates(roots)
            .with_no_client_auth();
    futures_rustls::TlsConnector::from(Arc::new(config))
}

fn assert_handshake_error(err: &io::Error, reason: &str) {
    let text = chain(err);
    assert!(
        text.starts_with("tls handshake failed: "),
        "{text:?} does not say it was the handshake"
    );
    assert!(text.contains(reason), "{text:?} does not say {reason:?}");
}

#[test]
fn data_round_trips_both_ways() {
    let s = setup();
    let acceptor = s.acceptor(s.server_tls());
    let connector = s.connector(s.client_tls());
    run(async {
        let (mut server, mut client) = connected(&acceptor, &connector).await;
        round_trip(&mut server, &mut client, b"ping", b"pong").await;
        // More than one TLS record (16 KiB) each way.
        let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let reply: Vec<u8> = big.iter().rev().copied().collect();
        round_trip(&mut server, &mut client, &big, &reply).await;

        assert_eq!(served_certificate(&client), s.server.der);
        assert_eq!(acceptor.certificate(), s.server.der);
        let identity = client.peer_identity().unwrap();
        assert_eq!(identity.dns_names(), ["localhost"]);
        assert_eq!(identity.common_name(), Some("localhost"));
        assert!(
            server.peer_identity().is_none(),
            "no client certificate was asked for"
        );
        assert_eq!(server.protocol_version(), TlsVersion::Tls13);
        assert_eq!(client.protocol_version(), TlsVersion::Tls13);
        assert_eq!(server.alpn_protocol(), None);
        assert_eq!(server.server_name(), Some("localhost"));
        assert_eq!(
            server.get_ref().local_addr().unwrap(),
            client.get_ref().peer_addr().unwrap()
        );

        // close() sends close_notify: the server reads a clean end of stream.
        client.close().await.unwrap();
        let mut rest = Vec::new();
        assert_eq!(server.read_to_end(&mut rest).await.unwrap(), 0);
    });
}

#[test]
fn an_ip_address_is_a_server_name() {
    let s = setup();
    let acceptor = s.acceptor(s.server_tls());
    let connector = s.connector(s.client_tls());
    run(async {
        let (server, client) = handshake(&acceptor, &connector, "127.0.0.1").await;
        let (mut server, mut client) = (server.unwrap(), client.unwrap());
        // Clients send no SNI for an address.
        assert_eq!(server.server_name(), None);
        round_trip(&mut server, &mut client, b"ip", b"ok").await;
    });
}

#[test]
fn the_server_name_override_replaces_the_connect_argument() {
    let s = setup();
    let acceptor = s.acceptor(s.server_tls());
    let connector = s.connector(s.client_tls().server_name("localhost"));
    run(async {
        let (server, client) = handshake(&acceptor, &connector, "db.internal").await;
        assert_eq!(server.unwrap().server_name(), Some("localhost"));
        client.unwrap();
    });
}

#[test]
fn a_name_the_certificate_lacks_is_refused() {
    let s = setup();
    let acceptor = s.acceptor(s.server_tls());
    let connector = s.connector(s.client_tls());
    run(async {
        let (server, client) = handshake(&acceptor, &connector, "other.example").await;
        let err = client.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert_handshake_error(&err, "not valid for name");
        assert!(server.is_err(), "the client aborts the handshake");
    });
}

#[test]
fn a_server_name_with_a_port_is_invalid_input() {
    let s = setup();
    let connector = s.connector(s.client_tls());
    run(async {
        let (_server, client) = support::tcp_pair().await;
        let err = connector
            .connect("localhost:8443", client)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert!(err.to_string().contains("without a port"), "{err}");
    });
    let err = TlsConnector::new(s.client_tls().server_name("bad name!")).unwrap_err();
    assert!(
        matches!(&err, TlsError::InvalidServerName { name } if name == "bad name!"),
        "{err:?}"
    );
}

#[test]
fn alpn_picks_the_protocol_both_offer() {
    let s = setup();
    let acceptor = s.acceptor(s.server_tls().alpn(["h2", "http/1.1"]));
    run(async {
        for (offered, agreed) in [
            (&["h2"][..], Some(&b"h2"[..])),
            (&["http/1.1"][..], Some(&b"http/1.1"[..])),
            (&["http/1.1", "h2"][..], Some(&b"h2"[..])),
            (&[][..], None),
        ] {
            let connector = s.connector(s.client_tls().alpn(offered.iter().copied()));
            let (server, client) = connected(&acceptor, &connector).await;
            assert_eq!(
                server.alpn_protocol(),
                agreed,
                "server, client offering {offered:?}"
            );
            assert_eq!(
                client.alpn_protocol(),
                agreed,
                "client, offering {offered:?}"
            );
        }
        // A client offering only protocols the server does not speak is refused.
        let connector = s.connector(s.client_tls().alpn(["spdy/3"]));
        let (server, client) = handshake(&acceptor, &connector, "localhost").await;
        assert_handshake_error(&server.unwrap_err(), "known protocol");
        assert!(client.is_err());
    });
}

#[test]
fn min_version_13_refuses_a_tls12_client() {
    let s = setup();
    let acceptor = s.acceptor(s.server_tls().min_version(TlsVersion::Tls13));
    let old_client = tls12_only_client(&s.server_ca);
    run(async {
        let (server, client) = support::tcp_pair().await;
        let (served, dialled) = future::zip(
            acceptor.accept(server),
            old_client.connect("localhost".try_into().unwrap(), client),
        )
        .await;
        let err = served.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert_handshake_error(&err, "peer is incompatible");
        let client_err = dialled.unwrap_err();
        assert!(
            chain(&client_err).contains("ProtocolVersion"),
            "{}",
            chain(&client_err)
        );

        let connector = s.connector(s.client_tls().min_version(TlsVersion::Tls13));
        let (server, client) = connected(&acceptor, &connector).await;
        assert_eq!(server.protocol_version(), TlsVersion::Tls13);
        assert_eq!(client.protocol_version(), TlsVersion::Tls13);
    });
}

#[test]
fn the_default_minimum_accepts_a_tls12_client() {
    let s = setup();
    let acceptor = s.acceptor(s.server_tls());
    let old_client = tls12_only_client(&s.server_ca);
    run(async {
        let (server, client) = support::tcp_pair().await;
        let (served, dialled) = future::zip(
            acceptor.accept(server),
            old_client.connect("localhost".try_into().unwrap(), client),
        )
        .await;
        assert_eq!(served.unwrap().protocol_version(), TlsVersion::Tls12);
        dialled.unwrap();
    });
}

/// A server asking for client certificates signed by `clients`.
fn mutual(s: &Setup, clients: &Ca) -> TlsAcceptor {
    let client_ca = s.files.write("clients-ca.pem", &clients.pem);
    s.acceptor(s.server_tls().client_ca(client_ca))
}

fn client_with(s: &Setup, leaf: &Leaf, name: &str) -> TlsConnector {
    let (cert, key) = s.files.write_leaf(name, leaf);
    s.connector(s.client_tls().identity(cert, key))
}

#[test]
fn mutual_tls_shows_the_client_identity() {
    let s = setup();
    let clients = Ca::new("clients CA");
    let acceptor = mutual(&s, &clients);
    let leaf = clients.client("client-1");
    let connector = client_with(&s, &leaf, "client-1");
    run(async {
        let (mut server, mut client) = connected(&acceptor, &connector).await;
        let identity = server
            .peer_identity()
            .expect("the client's certificate")
            .clone();
        assert_eq!(identity.common_name(), Some("client-1"));
        assert_eq!(identity.subject(), "CN=client-1,O=Example");
        assert_eq!(identity.certificate(), &leaf.der);
        assert_eq!(identity.chain(), std::slice::from_ref(&leaf.der));
        round_trip(&mut server, &mut client, b"who", b"you").await;
    });
}

/// The server refuses the client; the client finds out at the handshake or, under TLS 1.3,
/// at its first read.
async fn assert_refused(acceptor: &TlsAcceptor, connector: &TlsConnector, reason: &str) {
    let (server, client) = handshake(acceptor, connector, "localhost").await;
    let err = server.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    assert_handshake_error(&err, reason);
    if let Ok(mut client) = client {
        let mut byte = [0; 1];
        let read = client.read(&mut byte).await;
        assert!(read.is_err(), "the refused client read {read:?}");
    }
}

#[test]
fn mutual_tls_refuses_a_client_without_a_certificate() {
    let s = setup();
    let acceptor = mutual(&s, &Ca::new("clients CA"));
    let connector = s.connector(s.client_tls());
    run(assert_refused(&acceptor, &connector, "no certificates"));
}

#[test]
fn mutual_tls_refuses_a_certificate_of_another_ca() {
    let s = setup();
    let acceptor = mutual(&s, &Ca::new("clients CA"));
    let stranger = Ca::new("another CA").client("client-1");
    let connector = client_with(&s, &stranger, "stranger");
    run(assert_refused(&acceptor, &connector, "UnknownIssuer"));
}

#[test]
fn a_pinned_self_signed_certificate_is_trusted() {
    let files = Files::new();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let cert_file = files.write("self.pem", cert.pem());
    let key_file = files.write("self.key", key.serialize_pem());
    let acceptor = TlsAcceptor::new(ServerTls::new(&cert_file, &key_file)).unwrap();
    let connector = TlsConnector::new(ClientTls::new().ca(&cert_file)).unwrap();
    run(async {
        let (_server, client) = connected(&acceptor, &connector).await;
        assert_eq!(&served_certificate(&client), cert.der());
    });
}

#[test]
fn the_system_roots_do_not_trust_a_private_ca() {
    let s = setup();
    let acceptor = s.acceptor(s.server_tls());
    let connector = match TlsConnector::new(ClientTls::new()) {
        Ok(connector) => connector,
        // A machine without a trust store: the error says so, and that is all to check.
        Err(TlsError::NoTrustRoots { .. }) => return,
        Err(err) => panic!("{err}"),
    };
    run(async {
        let (_server, client) = handshake(&acceptor, &connector, "localhost").await;
        assert_handshake_error(&client.unwrap_err(), "UnknownIssuer");
    });
}

/// Servers spawn handshakes and connections as tasks on multi-threaded runtimes, and box
/// configuration errors: all of it must be `Send` (and the shared parts `Sync`).
#[test]
fn handshakes_streams_and_errors_can_cross_threads() {
    fn send<T: Send>(_: &T) {}
    fn send_sync<T: Send + Sync + 'static>() {}
    send_sync::<TlsAcceptor>();
    send_sync::<TlsConnector>();
    send_sync::<TlsError>();
    send_sync::<ginkgo_tls::PeerIdentity>();
    send_sync::<ginkgo_tls::TlsStream<async_net::TcpStream>>();
    send_sync::<ginkgo_tls::ClientTlsStream<async_net::TcpStream>>();

    let s = setup();
    let acceptor = s.acceptor(s.server_tls());
    let connector = s.connector(s.client_tls());
    run(async {
        let (server, client) = support::tcp_pair().await;
        let accepting = acceptor.accept(server);
        let connecting = connector.connect("localhost", client);
        send(&accepting);
        send(&connecting);
        // The futures do not borrow the acceptor or connector: they outlive them.
        drop((acceptor, connector));
        let (served, dialled) = future::zip(accepting, connecting).await;
        served.unwrap();
        dialled.unwrap();
    });
}
