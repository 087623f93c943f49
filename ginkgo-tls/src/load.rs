//! Reading and checking the PEM files of a configuration: everything `TlsAcceptor::new`,
//! `TlsAcceptor::reload` and `TlsConnector::new` validate before a configuration is used.
//!
//! Files are read whole with `std::fs::read` and then parsed with rustls-pki-types'
//! [`PemObject`] slice parsers, rather than its `*_file` functions: one read per file, and a
//! read error stays a plain [`io::Error`](std::io::Error) with its kind, apart from parse
//! errors.

use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use rustls::crypto::CryptoProvider;
use rustls::sign::CertifiedKey;
use rustls::{InconsistentKeys, RootCertStore};
use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use x509_parser::certificate::X509Certificate;
use x509_parser::error::X509Error;

use crate::error::{FileKind, TlsError, from_unix_seconds, unix_seconds};

/// The one crypto provider this crate uses, passed to every rustls builder so that nothing
/// depends on a process-wide default being installed (or on which one another crate
/// installed).
pub(crate) fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read(kind: FileKind, file: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(file).map_err(|source| TlsError::Read {
        kind,
        file: file.to_owned(),
        source,
    })
}

/// Every certificate in a PEM file, in file order; at least one.
pub(crate) fn certificates(
    kind: FileKind,
    file: &Path,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(kind, file)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| TlsError::Pem {
            kind,
            file: file.to_owned(),
            source,
        })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            kind,
            file: file.to_owned(),
        });
    }
    Ok(certs)
}

/// The first private key in a PEM file (PKCS#8, PKCS#1 or SEC1).
fn private_key(file: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = read(FileKind::PrivateKey, file)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|source| match source {
        pem::Error::NoItemsFound => TlsError::NoPrivateKey {
            file: file.to_owned(),
        },
        source => TlsError::Pem {
            kind: FileKind::PrivateKey,
            file: file.to_owned(),
            source,
        },
    })
}

fn parse<'a>(
    kind: FileKind,
    file: &Path,
    der: &'a CertificateDer<'_>,
) -> Result<X509Certificate<'a>, TlsError> {
    match x509_parser::parse_x509_certificate(der) {
        Ok((_, cert)) => Ok(cert),
        Err(err) => {
            let source = match err {
                x509_parser::nom::Err::Error(e) | x509_parser::nom::Err::Failure(e) => e,
                x509_parser::nom::Err::Incomplete(_) => X509Error::InvalidCertificate,
            };
            Err(TlsError::BadCertificate {
                kind,
                file: file.to_owned(),
                source: Box::new(source),
            })
        }
    }
}

/// Fails unless `now` lies within the leaf certificate's validity. Checked here rather than
/// left to the peer so that a server never starts (or reloads) with a certificate every client
/// would refuse.
fn check_validity(file: &Path, leaf: &CertificateDer<'_>) -> Result<(), TlsError> {
    let cert = parse(FileKind::Certificate, file, leaf)?;
    let validity = cert.validity();
    let now = unix_seconds(SystemTime::now());
    if validity.not_after.timestamp() < now {
        return Err(TlsError::Expired {
            file: file.to_owned(),
            not_after: from_unix_seconds(validity.not_after.timestamp()),
        });
    }
    if validity.not_before.timestamp() > now {
        return Err(TlsError::NotYetValid {
            file: file.to_owned(),
            not_before: from_unix_seconds(validity.not_before.timestamp()),
        });
    }
    Ok(())
}

/// The certificate chain in `cert` with the key in `key`: valid now, and a pair.
pub(crate) fn certified_key(
    cert: &Path,
    key: &Path,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, TlsError> {
    let chain = certificates(FileKind::Certificate, cert)?;
    check_validity(cert, &chain[0])?;
    let signing_key = provider
        .key_provider
        .load_private_key(private_key(key)?)
        .map_err(|source| TlsError::BadPrivateKey {
            file: key.to_owned(),
            source,
        })?;
    let certified = CertifiedKey::new(chain, signing_key);
    match certified.keys_match() {
        Ok(()) => Ok(certified),
        Err(rustls::Error::InconsistentKeys(InconsistentKeys::KeyMismatch)) => {
            Err(TlsError::KeyMismatch {
                cert: cert.to_owned(),
                key: key.to_owned(),
            })
        }
        // A key that cannot tell its public key cannot be compared; ring's keys all can, so
        // this is for completeness, and it is what rustls itself does.
        Err(rustls::Error::InconsistentKeys(_)) => Ok(certified),
        // webpki could not parse the leaf that x509-parser did.
        Err(source) => Err(TlsError::BadCertificate {
            kind: FileKind::Certificate,
            file: cert.to_owned(),
            source: Box::new(source),
        }),
    }
}

/// The certificates of a CA bundle as trust anchors. At least one must be able to be an
/// issuer: a CA (`basicConstraints CA:TRUE`), or a self-signed certificate pinned as its own
/// anchor. That catches the usual mistake, a leaf certificate given for its issuer.
pub(crate) fn ca_roots(kind: FileKind, file: &Path) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    let mut issuers = 0;
    for cert in certificates(kind, file)? {
        let parsed = parse(kind, file, &cert)?;
        if parsed.is_ca() || parsed.subject().as_raw() == parsed.issuer().as_raw() {
            issuers += 1;
        }
        roots.add(cert).map_err(|source| TlsError::BadCertificate {
            kind,
            file: file.to_owned(),
            source: Box::new(source),
        })?;
    }
    if issuers == 0 {
        return Err(TlsError::NotCa {
            kind,
            file: file.to_owned(),
        });
    }
    Ok(roots)
}

/// The system's trusted roots, for a client given no CA bundle.
pub(crate) fn system_roots() -> Result<RootCertStore, TlsError> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    // A system store often holds a certificate or two that webpki cannot use; the rest are
    // still good, so only an empty result is an error.
    let (added, _unusable) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        return Err(TlsError::NoTrustRoots {
            source: found
                .errors
                .into_iter()
                .next()
                .map(|err| Box::new(err) as Box<dyn std::error::Error + Send + Sync>),
        });
    }
    Ok(roots)
}
