//! The server side: [`ServerTls`] (the settings) and [`TlsAcceptor`] (the validated,
//! reloadable configuration that runs handshakes).

use std::fmt;
use std::future::Future;
use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use arc_swap::ArcSwap;
use futures_io::{AsyncRead, AsyncWrite};
use rustls::ServerConfig;
use rustls::server::WebPkiClientVerifier;
use rustls::sign::SingleCertAndKey;
use rustls_pki_types::CertificateDer;

use crate::error::{FileKind, TlsError};
use crate::load;
use crate::stream::{TlsStream, handshake_failed};
use crate::version::TlsVersion;

/// What a TLS server serves: its certificate and key files, and what it asks of clients.
///
/// Plain data: nothing is read until [`TlsAcceptor::new`].
///
/// # Examples
///
/// ```
/// use ginkgo_tls::{ServerTls, TlsVersion};
///
/// let tls = ServerTls::new("/etc/app/cert.pem", "/etc/app/key.pem")
///     .client_ca("/etc/app/clients-ca.pem")
///     .min_version(TlsVersion::Tls13)
///     .alpn(["h2", "http/1.1"]);
/// assert_eq!(tls.alpn, [b"h2".to_vec(), b"http/1.1".to_vec()]);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerTls {
    /// PEM certificate chain: the server's certificate first, then the intermediates.
    pub cert: PathBuf,
    /// PEM private key of the first certificate: PKCS#8, PKCS#1 (RSA) or SEC1 (EC).
    pub key: PathBuf,
    /// PEM bundle of CA certificates. When set, a client must present a certificate signed by
    /// one of them (mutual TLS) and [`TlsStream::peer_identity`] shows it; when unset,
    /// clients are not asked for one.
    pub client_ca: Option<PathBuf>,
    /// The oldest TLS version accepted (default 1.2).
    pub min_version: TlsVersion,
    /// The ALPN protocols offered, most preferred first, such as `h2` and `http/1.1`; empty
    /// for no ALPN. A client that offers ALPN but none of these is refused.
    pub alpn: Vec<Vec<u8>>,
}

impl ServerTls {
    /// Settings serving the chain in `cert` with the key in `key`: no client certificates,
    /// TLS 1.2 and newer, no ALPN.
    pub fn new(cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        Self {
            cert: cert.into(),
            key: key.into(),
            client_ca: None,
            min_version: TlsVersion::default(),
            alpn: Vec::new(),
        }
    }

    /// Requires client certificates signed by a CA in the PEM bundle `file` (mutual TLS).
    #[must_use]
    pub fn client_ca(mut self, file: impl Into<PathBuf>) -> Self {
        self.client_ca = Some(file.into());
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
}

/// A server's TLS configuration, validated, that runs handshakes and can be reloaded.
///
/// Cloning is cheap and clones share the configuration: a reload through one is seen by all,
/// so a server can keep one clone per listener and the runner's reload hook another.
///
/// # Reload
///
/// [`reload`](Self::reload) re-reads the files and checks them exactly as
/// [`new`](Self::new) does. Only when every check passes does it replace the configuration,
/// in one atomic swap: handshakes started after it use the new certificate, key and client
/// CAs; handshakes already started and connections already open keep the old ones. When any
/// check fails, nothing changes and the old certificate stays in force.
///
/// Replacing a certificate and its key is two writes. A reload that runs between them sees a
/// mismatched pair and fails, keeping the old pair; reloading again after the second write
/// picks up the new one. (Writing the new files under new names and using
/// [`reload_from`](Self::reload_from), or renaming them into place, avoids the window.)
///
/// # Examples
///
/// ```no_run
/// use ginkgo_tls::{ServerTls, TlsAcceptor};
///
/// let acceptor = TlsAcceptor::new(ServerTls::new("/etc/app/cert.pem", "/etc/app/key.pem"))?;
/// // On SIGHUP, after the certificate was renewed:
/// if let Err(err) = acceptor.reload() {
///     eprintln!("{err}; still serving the previous certificate");
/// }
/// # Ok::<(), ginkgo_tls::TlsError>(())
/// ```
#[derive(Clone)]
pub struct TlsAcceptor(Arc<Shared>);

struct Shared {
    current: ArcSwap<Loaded>,
    /// Held for a whole reload, so that two reloads cannot interleave and leave the older
    /// files in force after the newer ones.
    reloading: Mutex<()>,
}

/// One validated configuration.
struct Loaded {
    settings: ServerTls,
    config: Arc<ServerConfig>,
    leaf: CertificateDer<'static>,
}

impl Loaded {
    fn new(settings: ServerTls) -> Result<Self, TlsError> {
        let provider = load::provider();
        let key = load::certified_key(&settings.cert, &settings.key, &provider)?;
        let leaf = key.cert[0].clone();
        let verifier = match &settings.client_ca {
            None => WebPkiClientVerifier::no_client_auth(),
            Some(file) => {
                let roots = load::ca_roots(FileKind::ClientCa, file)?;
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                    .build()
                    .map_err(|err| TlsError::BadCertificate {
                        kind: FileKind::ClientCa,
                        file: file.clone(),
                        source: Box::new(err),
                    })?
            }
        };
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(settings.min_version.and_newer())
            .map_err(|source| TlsError::Config { source })?
            .with_client_cert_verifier(verifier)
            .with_cert_resolver(Arc::new(SingleCertAndKey::from(key)));
        config.alpn_protocols = settings.alpn.clone();
        Ok(Self {
            settings,
            config: Arc::new(config),
            leaf,
        })
    }
}

impl TlsAcceptor {
    /// Reads and checks the files of `settings` and builds the configuration.
    ///
    /// This reads files with blocking I/O: call it at start-up or from a reload hook, not in
    /// the middle of a busy task.
    ///
    /// # Errors
    ///
    /// Fails, naming the file, when:
    /// - a file cannot be read ([`TlsError::Read`], keeping the [`io::Error`]);
    /// - the certificate file has no certificate ([`TlsError::NoCertificate`]) or is not PEM
    ///   ([`TlsError::Pem`]);
    /// - the leaf certificate has expired or is not valid yet ([`TlsError::Expired`],
    ///   [`TlsError::NotYetValid`]);
    /// - the key file has no usable private key ([`TlsError::NoPrivateKey`],
    ///   [`TlsError::BadPrivateKey`]);
    /// - the key is not the leaf certificate's ([`TlsError::KeyMismatch`]);
    /// - the client CA bundle has no certificate or no CA ([`TlsError::NoCertificate`],
    ///   [`TlsError::NotCa`]).
    pub fn new(settings: ServerTls) -> Result<Self, TlsError> {
        Ok(Self(Arc::new(Shared {
            current: ArcSwap::from_pointee(Loaded::new(settings)?),
            reloading: Mutex::new(()),
        })))
    }

    /// Re-reads the same files and, if they pass every check of [`new`](Self::new), makes
    /// them the configuration for new handshakes (see [Reload](Self#reload)).
    ///
    /// # Errors
    ///
    /// The errors of [`new`](Self::new); the configuration in force is then unchanged.
    pub fn reload(&self) -> Result<(), TlsError> {
        let _reloading = self.lock();
        let settings = self.0.current.load().settings.clone();
        self.0.current.store(Arc::new(Loaded::new(settings)?));
        Ok(())
    }

    /// As [`reload`](Self::reload), from new settings (other paths, another minimum version or
    /// ALPN list). Later reloads read the new paths.
    ///
    /// # Errors
    ///
    /// The errors of [`new`](Self::new); the configuration in force, settings included, is
    /// then unchanged.
    pub fn reload_from(&self, settings: ServerTls) -> Result<(), TlsError> {
        let _reloading = self.lock();
        self.0.current.store(Arc::new(Loaded::new(settings)?));
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ()> {
        // The guard protects no data, so a panic while it was held leaves nothing torn.
        self.0
            .reloading
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The settings in force.
    pub fn settings(&self) -> ServerTls {
        self.0.current.load().settings.clone()
    }

    /// The leaf certificate new handshakes present, DER: compare it with a file's, or parse
    /// it to log its expiry after a reload.
    pub fn certificate(&self) -> CertificateDer<'static> {
        self.0.current.load().leaf.clone()
    }

    /// Runs the server's side of a handshake on `stream` with the configuration in force when
    /// `accept` is called.
    ///
    /// The future is runtime-neutral and has no timeout of its own: a client that connects
    /// and sends nothing keeps it pending, so wrap it in the server's handshake timeout.
    ///
    /// # Errors
    ///
    /// The handshake failed: the client spoke something other than TLS, offered no common
    /// version, cipher suite or ALPN protocol, presented no certificate or one the client CAs
    /// did not sign (under mutual TLS), or the connection failed. The [`io::Error`]'s message
    /// starts with `tls handshake failed: ` and gives rustls' reason; its kind is the cause's
    /// (`InvalidData` for a refused peer), and its source is the original error.
    pub fn accept<S>(&self, stream: S) -> impl Future<Output = io::Result<TlsStream<S>>> + use<S>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let config = Arc::clone(&self.0.current.load().config);
        let handshake = futures_rustls::TlsAcceptor::from(config).accept(stream);
        async move {
            handshake
                .await
                .map(TlsStream::new)
                .map_err(handshake_failed)
        }
    }
}

impl fmt::Debug for TlsAcceptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("TlsAcceptor")
            .field(&self.0.current.load().settings)
            .finish()
    }
}
