//! Every file `TlsAcceptor::new` and `TlsConnector::new` refuse, and what the error says.

mod support;

use std::error::Error as _;
use std::io;
use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use ginkgo_tls::{ClientTls, FileKind, ServerTls, TlsAcceptor, TlsConnector, TlsError};
use support::{Ca, Files, LeafSpec, names};

fn server_error(tls: ServerTls) -> TlsError {
    match TlsAcceptor::new(tls) {
        Ok(acceptor) => panic!("{acceptor:?} was accepted"),
        Err(err) => err,
    }
}

fn client_error(tls: ClientTls) -> TlsError {
    match TlsConnector::new(tls) {
        Ok(connector) => panic!("{connector:?} was accepted"),
        Err(err) => err,
    }
}

/// A good server certificate and key, and a good CA bundle.
fn good(
    files: &Files,
) -> (
    Ca,
    std::path::PathBuf,
    std::path::PathBuf,
    std::path::PathBuf,
) {
    let ca = Ca::new("CA");
    let (cert, key) = files.write_leaf("server", &ca.server());
    let ca_file = files.write("ca.pem", &ca.pem);
    (ca, cert, key, ca_file)
}

fn assert_not_found(err: &TlsError, kind: FileKind, path: &Path) {
    match err {
        TlsError::Read {
            kind: got,
            file,
            source,
        } => {
            assert_eq!(*got, kind);
            assert_eq!(file, path);
            assert_eq!(source.kind(), io::ErrorKind::NotFound);
        }
        other => panic!("expected a read error, got {other:?}"),
    }
    assert_eq!(err.file(), Some(path));
    let source = err.source().expect("the io::Error is the source");
    let source = source.downcast_ref::<io::Error>().expect("an io::Error");
    assert_eq!(source.kind(), io::ErrorKind::NotFound);
    names(&err.to_string(), path);
    assert!(
        err.to_string().starts_with("tls: cannot read the "),
        "{err}"
    );
}

#[test]
fn good_files_are_accepted() {
    let files = Files::new();
    let (_ca, cert, key, ca_file) = good(&files);
    TlsAcceptor::new(ServerTls::new(&cert, &key).client_ca(&ca_file)).unwrap();
    TlsConnector::new(ClientTls::new().ca(&ca_file).identity(&cert, &key)).unwrap();
}

#[test]
fn a_missing_certificate_file_is_named_and_keeps_not_found() {
    let files = Files::new();
    let (_ca, _cert, key, _) = good(&files);
    let missing = files.path("missing.pem");
    let err = server_error(ServerTls::new(&missing, &key));
    assert_not_found(&err, FileKind::Certificate, &missing);
    assert!(err.to_string().contains("certificate file"), "{err}");
}

#[test]
fn a_missing_key_file_is_named_and_keeps_not_found() {
    let files = Files::new();
    let (_ca, cert, _key, _) = good(&files);
    let missing = files.path("missing.key");
    let err = server_error(ServerTls::new(&cert, &missing));
    assert_not_found(&err, FileKind::PrivateKey, &missing);
    assert!(err.to_string().contains("private key file"), "{err}");
}

#[test]
fn a_garbage_certificate_file_has_no_certificate() {
    let files = Files::new();
    let (_ca, _cert, key, _) = good(&files);
    let garbage = files.write("garbage.pem", "this is not a certificate\n\x00\x7f\n");
    let err = server_error(ServerTls::new(&garbage, &key));
    assert!(
        matches!(&err, TlsError::NoCertificate { kind: FileKind::Certificate, file } if file == &garbage),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "tls: no certificate found in the certificate file {} (expected PEM with \
             -----BEGIN CERTIFICATE----- sections)",
            garbage.display()
        )
    );
}

#[test]
fn a_key_given_as_the_certificate_has_no_certificate() {
    let files = Files::new();
    let (_ca, _cert, key, _) = good(&files);
    let err = server_error(ServerTls::new(&key, &key));
    assert!(
        matches!(&err, TlsError::NoCertificate { file, .. } if file == &key),
        "{err:?}"
    );
}

#[test]
fn a_certificate_given_as_the_key_has_no_private_key() {
    let files = Files::new();
    let (_ca, cert, _key, _) = good(&files);
    let err = server_error(ServerTls::new(&cert, &cert));
    assert!(
        matches!(&err, TlsError::NoPrivateKey { file } if file == &cert),
        "{err:?}"
    );
    names(&err.to_string(), &cert);
}

#[test]
fn a_truncated_pem_file_is_not_valid_pem() {
    let files = Files::new();
    let (_ca, cert, key, _) = good(&files);
    let pem = std::fs::read_to_string(&cert).unwrap();
    let truncated = files.write("truncated.pem", &pem[..pem.len() / 2]);
    let err = server_error(ServerTls::new(&truncated, &key));
    assert!(
        matches!(&err, TlsError::Pem { kind: FileKind::Certificate, file, .. } if file == &truncated),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains("a section has no -----END CERTIFICATE----- line"),
        "{err}"
    );
    assert!(err.source().is_some());
}

#[test]
fn the_key_of_another_certificate_is_a_mismatch_naming_both_files() {
    let files = Files::new();
    let (ca, cert, _key, _) = good(&files);
    let (_other_cert, other_key) = files.write_leaf("other", &ca.server());
    let err = server_error(ServerTls::new(&cert, &other_key));
    match &err {
        TlsError::KeyMismatch { cert: c, key: k } => {
            assert_eq!(c, &cert);
            assert_eq!(k, &other_key);
        }
        other => panic!("expected a key mismatch, got {other:?}"),
    }
    assert_eq!(
        err.to_string(),
        format!(
            "tls: the key {} does not belong to the certificate {}",
            other_key.display(),
            cert.display()
        )
    );
    assert_eq!(err.file(), Some(other_key.as_path()));
}

#[test]
fn an_expired_certificate_is_refused_with_its_date() {
    let files = Files::new();
    let ca = Ca::new("CA");
    let leaf = ca.issue(LeafSpec::server().valid((2019, 1, 1), (2020, 1, 1)));
    let (cert, key) = files.write_leaf("expired", &leaf);
    let err = server_error(ServerTls::new(&cert, &key));
    match &err {
        TlsError::Expired { file, not_after } => {
            assert_eq!(file, &cert);
            assert_eq!(*not_after, UNIX_EPOCH + Duration::from_secs(1_577_836_800));
        }
        other => panic!("expected an expired certificate, got {other:?}"),
    }
    assert_eq!(
        err.to_string(),
        format!(
            "tls: the certificate in {} expired on 2020-01-01T00:00:00Z",
            cert.display()
        )
    );
}

#[test]
fn a_certificate_not_valid_yet_is_refused_with_its_date() {
    let files = Files::new();
    let ca = Ca::new("CA");
    let leaf = ca.issue(LeafSpec::server().valid((2999, 6, 1), (3000, 1, 1)));
    let (cert, key) = files.write_leaf("future", &leaf);
    let err = server_error(ServerTls::new(&cert, &key));
    assert!(
        matches!(&err, TlsError::NotYetValid { file, .. } if file == &cert),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains("not valid before 2999-06-01T00:00:00Z"),
        "{err}"
    );
}

#[test]
fn bad_client_ca_bundles_are_refused() {
    let files = Files::new();
    let (ca, cert, key, _) = good(&files);
    let server = |client_ca: &Path| server_error(ServerTls::new(&cert, &key).client_ca(client_ca));

    let missing = files.path("no-such-ca.pem");
    assert_not_found(&server(&missing), FileKind::ClientCa, &missing);

    let garbage = files.write("garbage-ca.pem", "garbage");
    let err = server(&garbage);
    assert!(
        matches!(&err, TlsError::NoCertificate { kind: FileKind::ClientCa, file } if file == &garbage),
        "{err:?}"
    );
    assert!(err.to_string().contains("client CA bundle"), "{err}");

    // A certificate the CA signed, given for the CA: not an issuer.
    let leaf = files.write("leaf-as-ca.pem", ca.client("client-1").cert_pem);
    let err = server(&leaf);
    assert!(
        matches!(&err, TlsError::NotCa { kind: FileKind::ClientCa, file } if file == &leaf),
        "{err:?}"
    );
    names(&err.to_string(), &leaf);
}

#[test]
fn bad_client_files_are_refused() {
    let files = Files::new();
    let (ca, cert, _key, ca_file) = good(&files);

    let missing = files.path("no-such-ca.pem");
    assert_not_found(
        &client_error(ClientTls::new().ca(&missing)),
        FileKind::Ca,
        &missing,
    );

    let (_, other_key) = files.write_leaf("other", &ca.client("other"));
    let err = client_error(ClientTls::new().ca(&ca_file).identity(&cert, &other_key));
    assert!(
        matches!(&err, TlsError::KeyMismatch { cert: c, key: k } if c == &cert && k == &other_key),
        "{err:?}"
    );

    let missing_key = files.path("missing.key");
    assert_not_found(
        &client_error(ClientTls::new().ca(&ca_file).identity(&cert, &missing_key)),
        FileKind::PrivateKey,
        &missing_key,
    );
}
