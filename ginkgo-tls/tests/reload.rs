//! `TlsAcceptor::reload`: new handshakes get the new files only when they are all good; open
//! connections are untouched.

mod support;

use std::path::PathBuf;

use futures_lite::future;
use ginkgo_tls::{ClientTls, FileKind, ServerTls, TlsAcceptor, TlsConnector, TlsError};
use support::{Ca, Files, Leaf, connected, handshake, round_trip, run, served_certificate};

/// A server serving `server.pem` / `server.key` (signed by `ca`) and a client trusting `ca`.
struct Setup {
    files: Files,
    ca: Ca,
    old: Leaf,
    cert: PathBuf,
    key: PathBuf,
    acceptor: TlsAcceptor,
    connector: TlsConnector,
}

fn setup() -> Setup {
    let files = Files::new();
    let ca = Ca::new("CA");
    let old = ca.server();
    let (cert, key) = files.write_leaf("server", &old);
    let acceptor = TlsAcceptor::new(ServerTls::new(&cert, &key)).unwrap();
    let ca_file = files.write("ca.pem", &ca.pem);
    let connector = TlsConnector::new(ClientTls::new().ca(ca_file)).unwrap();
    Setup {
        files,
        ca,
        old,
        cert,
        key,
        acceptor,
        connector,
    }
}

impl Setup {
    /// Checks that a new handshake is served `expected`, and that the acceptor says so.
    async fn assert_serves(&self, expected: &Leaf) {
        let (_server, client) = connected(&self.acceptor, &self.connector).await;
        assert_eq!(
            served_certificate(&client),
            expected.der,
            "the certificate served"
        );
        assert_eq!(self.acceptor.certificate(), expected.der);
    }
}

#[test]
fn a_reload_serves_the_new_certificate_and_keeps_open_connections() {
    let s = setup();
    run(async {
        let (mut old_server, mut old_client) = connected(&s.acceptor, &s.connector).await;
        assert_eq!(served_certificate(&old_client), s.old.der);

        let new = s.ca.server();
        assert_ne!(new.der, s.old.der);
        s.files.write_leaf("server", &new);
        s.acceptor.reload().unwrap();
        s.assert_serves(&new).await;

        // The connection opened before the reload still works, both ways, on its own session.
        round_trip(&mut old_server, &mut old_client, b"still", b"here").await;
        assert_eq!(served_certificate(&old_client), s.old.der);
    });
}

#[test]
fn a_reload_is_seen_by_every_clone() {
    let s = setup();
    let clone = s.acceptor.clone();
    let new = s.ca.server();
    s.files.write_leaf("server", &new);
    clone.reload().unwrap();
    run(s.assert_serves(&new));
}

#[test]
fn a_handshake_uses_the_configuration_in_force_when_accept_was_called() {
    let s = setup();
    run(async {
        let (server, client) = support::tcp_pair().await;
        let accepting = s.acceptor.accept(server);
        let new = s.ca.server();
        s.files.write_leaf("server", &new);
        s.acceptor.reload().unwrap();
        let (served, dialled) =
            future::zip(accepting, s.connector.connect("localhost", client)).await;
        served.unwrap();
        assert_eq!(served_certificate(&dialled.unwrap()), s.old.der);
        s.assert_serves(&new).await;
    });
}

#[test]
fn a_reload_from_garbage_keeps_the_old_certificate() {
    let s = setup();
    s.files.write("server.pem", "-- not a certificate --");
    let err = s.acceptor.reload().unwrap_err();
    assert!(
        matches!(&err, TlsError::NoCertificate { kind: FileKind::Certificate, file } if file == &s.cert),
        "{err:?}"
    );
    run(s.assert_serves(&s.old));
}

#[test]
fn a_reload_with_a_mismatched_key_keeps_the_old_certificate() {
    let s = setup();
    // A renewal half done: the new certificate is in place, its key is not.
    let new = s.ca.server();
    s.files.write("server.pem", &new.cert_pem);
    let err = s.acceptor.reload().unwrap_err();
    assert!(
        matches!(&err, TlsError::KeyMismatch { cert, key } if cert == &s.cert && key == &s.key),
        "{err:?}"
    );
    run(s.assert_serves(&s.old));

    // Once the key is written too, the next reload picks up the pair.
    s.files.write("server.key", &new.key_pem);
    s.acceptor.reload().unwrap();
    run(s.assert_serves(&new));
}

#[test]
fn a_reload_of_a_deleted_file_keeps_the_old_certificate() {
    let s = setup();
    std::fs::remove_file(&s.key).unwrap();
    let err = s.acceptor.reload().unwrap_err();
    assert!(
        matches!(&err, TlsError::Read { kind: FileKind::PrivateKey, file, source }
            if file == &s.key && source.kind() == std::io::ErrorKind::NotFound),
        "{err:?}"
    );
    run(s.assert_serves(&s.old));
}

#[test]
fn reload_from_switches_paths_only_when_they_are_good() {
    let s = setup();
    let new = s.ca.server();
    let (new_cert, new_key) = s.files.write_leaf("renewed", &new);

    let missing = s.files.path("missing.key");
    let err = s
        .acceptor
        .reload_from(ServerTls::new(&new_cert, &missing))
        .unwrap_err();
    assert_eq!(err.file(), Some(missing.as_path()));
    assert_eq!(s.acceptor.settings(), ServerTls::new(&s.cert, &s.key));
    run(s.assert_serves(&s.old));

    s.acceptor
        .reload_from(ServerTls::new(&new_cert, &new_key))
        .unwrap();
    assert_eq!(s.acceptor.settings().cert, new_cert);
    run(s.assert_serves(&new));

    // Later reloads read the new paths: changing the old files does nothing.
    s.files.write("server.pem", "garbage");
    s.acceptor.reload().unwrap();
    run(s.assert_serves(&new));
}

#[test]
fn a_reload_replaces_the_client_ca() {
    let s = setup();
    let (first, second) = (Ca::new("first clients CA"), Ca::new("second clients CA"));
    let client_ca = s.files.write("clients-ca.pem", &first.pem);
    s.acceptor
        .reload_from(ServerTls::new(&s.cert, &s.key).client_ca(&client_ca))
        .unwrap();
    let client_of = |ca: &Ca, name: &str| {
        let (cert, key) = s.files.write_leaf(name, &ca.client(name));
        let ca_file = s.files.path("ca.pem");
        TlsConnector::new(ClientTls::new().ca(ca_file).identity(cert, key)).unwrap()
    };
    let (of_first, of_second) = (client_of(&first, "one"), client_of(&second, "two"));
    run(async {
        let (server, _) = handshake(&s.acceptor, &of_first, "localhost").await;
        assert_eq!(
            server.unwrap().peer_identity().unwrap().common_name(),
            Some("one")
        );
        let (server, _) = handshake(&s.acceptor, &of_second, "localhost").await;
        assert!(server.is_err(), "a CA not yet trusted");

        // A bad bundle changes nothing.
        s.files.write("clients-ca.pem", "garbage");
        let err = s.acceptor.reload().unwrap_err();
        assert!(
            matches!(
                err,
                TlsError::NoCertificate {
                    kind: FileKind::ClientCa,
                    ..
                }
            ),
            "{err:?}"
        );
        let (server, _) = handshake(&s.acceptor, &of_first, "localhost").await;
        server.unwrap();

        s.files.write("clients-ca.pem", &second.pem);
        s.acceptor.reload().unwrap();
        let (server, _) = handshake(&s.acceptor, &of_second, "localhost").await;
        assert_eq!(
            server.unwrap().peer_identity().unwrap().common_name(),
            Some("two")
        );
        let (server, _) = handshake(&s.acceptor, &of_first, "localhost").await;
        assert!(server.is_err(), "a CA no longer trusted");
    });
}
