//! The client side: [`ClientTls`] (the settings) and [`TlsConnector`] (the validated
//! configuration that runs handshakes).

use std::fmt;
use std::future::Future;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use futures_io::{AsyncRead, AsyncWrite};
use rustls::ClientConfig;
use rustls::sign::SingleCertAndKey;
use rustls_pki_types::ServerName;

use crate::error::{FileKind, TlsError};
use crate::load;
use crate::stream::{ClientTlsStream, handshake_failed};
use crate::version::TlsVersion;

/// What a TLS client trusts and presents.
///
/// Plain data: nothing is read until [`TlsConnector::new`].
///
/// # Examples
///
/// ```
/// use ginkgo_tls::{ClientTls, TlsVersion};
///
/// let tls = ClientTls::new()
///     .ca("/etc/app/internal-ca.pem")
///     .identity("/etc/app/client.pem", "/etc/app/client-key.pem")
///     .min_version(TlsVersion::Tls13)
///     .alpn(["h2"])
///     .server_name("api.internal");
/// assert_eq!(tls.server_name.as_deref(), Some("api.internal"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClientTls {
    /// PEM bundle of the CAs trusted to sign server certificates; only these when set.
    ///
    /// When unset, the system's trust store is used (rustls-native-certs: the OS's store,
    /// or the bundle named by `SSL_CERT_FILE` / `SSL_CERT_DIR`), rather than a bundle
    /// compiled into the binary: a daemon then trusts what its host's operator trusts, an
    /// internal CA installed on the host included, and a root the OS distrusts in an update
    /// stops being trusted without rebuilding the daemon.
    pub ca: Option<PathBuf>,
    /// The client's certificate chain and private key files (PEM), presented when a server
    /// asks for one (mutual TLS).
    pub identity: Option<(PathBuf, PathBuf)>,
    /// The oldest TLS version accepted (default 1.2).
    pub min_version: TlsVersion,
    /// The ALPN protocols offered, most preferred first; empty for no ALPN.
    pub alpn: Vec<Vec<u8>>,
    /// The name to verify the server's certificate against and send as SNI, instead of the
    /// one given to [`TlsConnector::connect`]: for a server reached by an address its
    /// certificate does not name.
    pub server_name: Option<String>,
}

impl ClientTls {
    /// Settings trusting the system's roots, with no client certificate, TLS 1.2 and newer,
    /// no ALPN.
    pub fn new() -> Self {
        Self::default()
    }

    /// Trusts only the CAs in the PEM bundle `file`.
    #[must_use]
    pub fn ca(mut self, file: impl Into<PathBuf>) -> Self {
        self.ca = Some(file.into());
        self
    }

    /// Presents the chain in `cert` with the key in `key` when a server asks for a client
    /// certificate.
    #[must_use]
    pub fn identity(mut self, cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        self.identity = Some((cert.into(), key.into()));
        self
    }

    /// Sets the oldest TLS version accepted.
    #[must_use]
    pub fn min_version(mut self, version: TlsVersion) -> Self {
        self.min_version = version;
        self
    }

    /// Sets the ALPN protocols offered, most preferred first.
    #[must_use]
    pub fn alpn<I, P>(mut self, protocols: I) -> Self
    where
        I: IntoIterator<Item = P>,
        P: Into<Vec<u8>>,
    {
        self.alpn = protocols.into_iter().map(Into::into).collect();
        self
    }

    /// Verifies the server as `name` whatever name [`TlsConnector::connect`] is given.
    #[must_use]
    pub fn server_name(mut self, name: impl Into<String>) -> Self {
        self.server_name = Some(name.into());
        self
    }
}

/// A client's TLS configuration, validated, that runs handshakes.
///
/// Cloning is cheap (an `Arc` inside).
#[derive(Clone)]
pub struct TlsConnector {
    config: Arc<ClientConfig>,
    server_name: Option<ServerName<'static>>,
    settings: Arc<ClientTls>,
}

impl TlsConnector {
    /// Reads and checks the files of `settings` and builds the configuration.
    ///
    /// This reads files with blocking I/O (the system's trust store too, when no CA bundle is
    /// given): build connectors at start-up.
    ///
    /// # Errors
    ///
    /// Fails, naming the file, when the CA bundle cannot be read, has no certificate or no
    /// CA; when no CA bundle is given and the system has no trusted root
    /// ([`TlsError::NoTrustRoots`]); when the identity's files fail the checks of
    /// [`TlsAcceptor::new`](crate::TlsAcceptor::new) (readable, a certificate valid now, a
    /// private key that is its key); or when the `server_name` override is not a DNS name or
    /// IP address ([`TlsError::InvalidServerName`]).
    pub fn new(settings: ClientTls) -> Result<Self, TlsError> {
        let provider = load::provider();
        let server_name = settings
            .server_name
            .as_deref()
            .map(parse_server_name)
            .transpose()?;
        let roots = match &settings.ca {
            Some(file) => load::ca_roots(FileKind::Ca, file)?,
            None => load::system_roots()?,
        };
        let identity = match &settings.identity {
            Some((cert, key)) => Some(load::certified_key(cert, key, &provider)?),
            None => None,
        };
        let builder = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(settings.min_version.and_newer())
            .map_err(|source| TlsError::Config { source })?
            .with_root_certificates(roots);
        let mut config = match identity {
            Some(key) => builder.with_client_cert_resolver(Arc::new(SingleCertAndKey::from(key))),
            None => builder.with_no_client_auth(),
        };
        config.alpn_protocols = settings.alpn.clone();
        Ok(Self {
            config: Arc::new(config),
            server_name,
            settings: Arc::new(settings),
        })
    }

    /// The settings this connector was built from.
    pub fn settings(&self) -> &ClientTls {
        &self.settings
    }

    /// Runs the client's side of a handshake on `stream`, verifying the server's certificate
    /// against `server_name` (a DNS name such as `"api.example.com"`, or an IP address such
    /// as `"127.0.0.1"` or `"::1"`, without a port), unless [`ClientTls::server_name`]
    /// overrides it.
    ///
    /// The future is runtime-neutral and has no timeout of its own: wrap it in the client's
    /// connect timeout.
    ///
    /// # Errors
    ///
    /// `server_name` is not a DNS name or IP address (`InvalidInput`), or the handshake
    /// failed: the server's certificate is not signed by a trusted CA, does not name
    /// `server_name` or has expired; no common version, cipher suite or ALPN protocol; or the
    /// connection failed. The [`io::Error`]'s message starts with `tls handshake failed: `
    /// and gives rustls' reason; its kind is the cause's (`InvalidData` for a refused peer),
    /// and its source is the original error.
    pub fn connect<S>(
        &self,
        server_name: &str,
        stream: S,
    ) -> impl Future<Output = io::Result<ClientTlsStream<S>>> + use<S>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let name = match &self.server_name {
            Some(name) => Ok(name.clone()),
            None => parse_server_name(server_name)
                .map_err(|err| io::Error::new(io::ErrorKind::InvalidInput, err)),
        };
        let connector = futures_rustls::TlsConnector::from(Arc::clone(&self.config));
        async move {
            let handshake = connector.connect(name?, stream);
            handshake
                .await
                .map(ClientTlsStream::new)
                .map_err(handshake_failed)
        }
    }
}

fn parse_server_name(name: &str) -> Result<ServerName<'static>, TlsError> {
    ServerName::try_from(name.to_owned()).map_err(|_| TlsError::InvalidServerName {
        name: name.to_owned(),
    })
}

impl fmt::Debug for TlsConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("TlsConnector").field(&self.settings).finish()
    }
}
