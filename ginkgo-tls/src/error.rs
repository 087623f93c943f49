//! [`TlsError`]: what is wrong with a TLS configuration, naming the file and the reason.

use std::error::Error;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use rustls_pki_types::pem;

/// What a file named in a TLS configuration holds, so an error can say which setting is wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FileKind {
    /// A certificate chain, leaf first: [`ServerTls::cert`](crate::ServerTls::cert) or the
    /// certificate of [`ClientTls::identity`](crate::ClientTls::identity).
    Certificate,
    /// A private key: [`ServerTls::key`](crate::ServerTls::key) or the key of
    /// [`ClientTls::identity`](crate::ClientTls::identity).
    PrivateKey,
    /// The CAs a server trusts to sign client certificates:
    /// [`ServerTls::client_ca`](crate::ServerTls::client_ca).
    ClientCa,
    /// The CAs a client trusts to sign server certificates: [`ClientTls::ca`](crate::ClientTls::ca).
    Ca,
}

impl fmt::Display for FileKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FileKind::Certificate => "certificate file",
            FileKind::PrivateKey => "private key file",
            FileKind::ClientCa => "client CA bundle",
            FileKind::Ca => "CA bundle",
        })
    }
}

/// Why a TLS configuration cannot be used: returned by [`TlsAcceptor::new`](crate::TlsAcceptor::new),
/// [`TlsAcceptor::reload`](crate::TlsAcceptor::reload) and
/// [`TlsConnector::new`](crate::TlsConnector::new).
///
/// Every variant that concerns a file names it ([`file`](Self::file)); the message says what
/// is wrong with it, in words meant for the operator who has to fix it:
///
/// ```text
/// tls: the key /etc/app/key.pem does not belong to the certificate /etc/app/cert.pem
/// ```
///
/// Where there is an underlying error (the [`io::Error`] of a read, the parser's error) it is
/// the [`source`](Error::source), unchanged: a missing file keeps
/// [`io::ErrorKind::NotFound`].
#[derive(Debug)]
#[non_exhaustive]
pub enum TlsError {
    /// A file could not be read.
    Read {
        /// What the file should hold.
        kind: FileKind,
        /// The file.
        file: PathBuf,
        /// The error reading it, with its kind and OS error code.
        source: io::Error,
    },
    /// A file is not valid PEM: a section without its `-----END` line, bad base64.
    Pem {
        /// What the file should hold.
        kind: FileKind,
        /// The file.
        file: PathBuf,
        /// The PEM parser's error.
        source: pem::Error,
    },
    /// A certificate file or CA bundle holds no `-----BEGIN CERTIFICATE-----` section (it is
    /// empty, a key, DER rather than PEM, or not a certificate at all).
    NoCertificate {
        /// What the file should hold.
        kind: FileKind,
        /// The file.
        file: PathBuf,
    },
    /// A certificate in a file cannot be parsed or used.
    BadCertificate {
        /// What the file should hold.
        kind: FileKind,
        /// The file.
        file: PathBuf,
        /// The X.509 parser's or rustls' error.
        source: Box<dyn Error + Send + Sync>,
    },
    /// A key file holds no private key in a format this crate reads: PEM PKCS#8
    /// (`BEGIN PRIVATE KEY`), PKCS#1 (`BEGIN RSA PRIVATE KEY`) or SEC1 (`BEGIN EC PRIVATE KEY`).
    NoPrivateKey {
        /// The file.
        file: PathBuf,
    },
    /// A private key that the crypto provider cannot use (an unsupported algorithm or curve, a
    /// corrupt key).
    BadPrivateKey {
        /// The file.
        file: PathBuf,
        /// rustls' error.
        source: rustls::Error,
    },
    /// The private key is not the key of the leaf certificate: the two files are not a pair.
    KeyMismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
    },
    /// The leaf certificate has expired.
    Expired {
        /// The certificate file.
        file: PathBuf,
        /// The end of the certificate's validity (its `notAfter`).
        not_after: SystemTime,
    },
    /// The leaf certificate is not valid yet.
    NotYetValid {
        /// The certificate file.
        file: PathBuf,
        /// The start of the certificate's validity (its `notBefore`).
        not_before: SystemTime,
    },
    /// A CA bundle holds certificates, but none of them can be an issuer: none is a CA
    /// (`basicConstraints` with `CA:TRUE`) or self-signed. A certificate given where its
    /// issuer's was meant, say.
    NotCa {
        /// What the file should hold.
        kind: FileKind,
        /// The file.
        file: PathBuf,
    },
    /// A client without a CA bundle found no trusted root certificate on this system.
    NoTrustRoots {
        /// The first error loading the system's store, if there was one.
        source: Option<Box<dyn Error + Send + Sync>>,
    },
    /// A server name that is neither a DNS name nor an IP address.
    InvalidServerName {
        /// The name.
        name: String,
    },
    /// rustls refused the configuration. The checks above should catch every case first;
    /// this one is kept so that a refusal is an error, never a panic.
    Config {
        /// rustls' error.
        source: rustls::Error,
    },
}

impl TlsError {
    /// The file the error is about, where there is one. For [`KeyMismatch`](Self::KeyMismatch)
    /// this is the key file (the one checked against the certificate; both are in the
    /// variant).
    pub fn file(&self) -> Option<&Path> {
        match self {
            TlsError::Read { file, .. }
            | TlsError::Pem { file, .. }
            | TlsError::NoCertificate { file, .. }
            | TlsError::BadCertificate { file, .. }
            | TlsError::NoPrivateKey { file }
            | TlsError::BadPrivateKey { file, .. }
            | TlsError::Expired { file, .. }
            | TlsError::NotYetValid { file, .. }
            | TlsError::NotCa { file, .. } => Some(file),
            TlsError::KeyMismatch { key, .. } => Some(key),
            TlsError::NoTrustRoots { .. }
            | TlsError::InvalidServerName { .. }
            | TlsError::Config { .. } => None,
        }
    }
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("tls: ")?;
        match self {
            TlsError::Read { kind, file, source } => {
                write!(f, "cannot read the {kind} {}: {source}", file.display())?;
                if source.kind() == io::ErrorKind::PermissionDenied {
                    f.write_str(" (can the user this service runs as read it?)")?;
                }
                Ok(())
            }
            TlsError::Pem { kind, file, source } => {
                write!(f, "the {kind} {} is not valid PEM: ", file.display())?;
                match source {
                    // The parser's own message prints the label as a list of bytes.
                    pem::Error::MissingSectionEnd { end_marker } => write!(
                        f,
                        "a section has no -----END {}----- line (is the file truncated?)",
                        String::from_utf8_lossy(end_marker)
                    ),
                    pem::Error::IllegalSectionStart { line } => write!(
                        f,
                        "malformed BEGIN line {:?}",
                        String::from_utf8_lossy(line)
                    ),
                    other => write!(f, "{other}"),
                }
            }
            TlsError::NoCertificate { kind, file } => write!(
                f,
                "no certificate found in the {kind} {} (expected PEM with \
                 -----BEGIN CERTIFICATE----- sections)",
                file.display()
            ),
            TlsError::BadCertificate { kind, file, source } => write!(
                f,
                "a certificate in the {kind} {} cannot be used: {source}",
                file.display()
            ),
            TlsError::NoPrivateKey { file } => write!(
                f,
                "no private key found in {} (expected PEM: BEGIN PRIVATE KEY, \
                 BEGIN RSA PRIVATE KEY or BEGIN EC PRIVATE KEY)",
                file.display()
            ),
            TlsError::BadPrivateKey { file, source } => write!(
                f,
                "the private key in {} cannot be used: {source}",
                file.display()
            ),
            TlsError::KeyMismatch { cert, key } => write!(
                f,
                "the key {} does not belong to the certificate {}",
                key.display(),
                cert.display()
            ),
            TlsError::Expired { file, not_after } => write!(
                f,
                "the certificate in {} expired on {}",
                file.display(),
                Rfc3339(*not_after)
            ),
            TlsError::NotYetValid { file, not_before } => write!(
                f,
                "the certificate in {} is not valid before {} (is this host's clock right?)",
                file.display(),
                Rfc3339(*not_before)
            ),
            TlsError::NotCa { kind, file } => write!(
                f,
                "the {kind} {} holds no CA certificate (none has basicConstraints CA:TRUE \
                 or is self-signed: give the issuer's certificate, not a certificate it signed)",
                file.display()
            ),
            TlsError::NoTrustRoots { source } => {
                f.write_str(
                    "no trusted root certificate found on this system (install the \
                     ca-certificates package, point SSL_CERT_FILE at a bundle, or give \
                     the client a CA bundle)",
                )?;
                match source {
                    Some(source) => write!(f, ": {source}"),
                    None => Ok(()),
                }
            }
            TlsError::InvalidServerName { name } => write!(
                f,
                "invalid server name {name:?} (a DNS name or an IP address, without a port)"
            ),
            TlsError::Config { source } => write!(f, "invalid configuration: {source}"),
        }
    }
}

impl Error for TlsError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            TlsError::Read { source, .. } => Some(source),
            TlsError::Pem { source, .. } => Some(source),
            TlsError::BadCertificate { source, .. } => Some(&**source),
            TlsError::BadPrivateKey { source, .. } | TlsError::Config { source } => Some(source),
            TlsError::NoTrustRoots { source } => {
                source.as_deref().map(|s| s as &(dyn Error + 'static))
            }
            TlsError::NoCertificate { .. }
            | TlsError::NoPrivateKey { .. }
            | TlsError::KeyMismatch { .. }
            | TlsError::Expired { .. }
            | TlsError::NotYetValid { .. }
            | TlsError::NotCa { .. }
            | TlsError::InvalidServerName { .. } => None,
        }
    }
}

/// Writes a time as RFC 3339 in UTC (`2025-01-31T23:59:59Z`), the form an operator compares
/// with `openssl x509 -dates` and `date -u`, without a date-time dependency.
struct Rfc3339(SystemTime);

impl fmt::Display for Rfc3339 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = unix_seconds(self.0);
        let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
        let (year, month, day) = civil_from_days(days);
        write!(
            f,
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
            rest / 3600,
            rest % 3600 / 60,
            rest % 60
        )
    }
}

/// Seconds since 1970 (negative before), whole seconds towards the past.
pub(crate) fn unix_seconds(time: SystemTime) -> i64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_secs()).unwrap_or(i64::MAX),
        Err(before) => {
            let before = before.duration();
            let secs = i64::try_from(before.as_secs()).unwrap_or(i64::MAX);
            -secs - i64::from(before.subsec_nanos() > 0)
        }
    }
}

/// The inverse of [`unix_seconds`].
pub(crate) fn from_unix_seconds(secs: i64) -> SystemTime {
    let magnitude = std::time::Duration::from_secs(secs.unsigned_abs());
    if secs >= 0 {
        UNIX_EPOCH + magnitude
    } else {
        UNIX_EPOCH - magnitude
    }
}

/// The proleptic Gregorian date of a day number (days since 1970-01-01): Howard Hinnant's
/// `civil_from_days`.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11], March first
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> String {
        let time = from_unix_seconds(secs);
        assert_eq!(unix_seconds(time), secs);
        Rfc3339(time).to_string()
    }

    #[test]
    fn dates_are_rfc3339_utc() {
        assert_eq!(at(0), "1970-01-01T00:00:00Z");
        assert_eq!(at(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(at(1_735_689_599), "2024-12-31T23:59:59Z");
        assert_eq!(at(-1), "1969-12-31T23:59:59Z");
        assert_eq!(at(4_102_444_800), "2100-01-01T00:00:00Z");
    }

    #[test]
    fn key_mismatch_names_both_files() {
        let err = TlsError::KeyMismatch {
            cert: "/etc/app/cert.pem".into(),
            key: "/etc/app/key.pem".into(),
        };
        assert_eq!(
            err.to_string(),
            "tls: the key /etc/app/key.pem does not belong to the certificate /etc/app/cert.pem"
        );
        assert_eq!(err.file(), Some(Path::new("/etc/app/key.pem")));
    }
}
