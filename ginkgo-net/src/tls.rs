//! TLS on a server (feature `tls`): the settings, the acceptor checked at start and reloaded,
//! and the handshake each connection runs. [`StreamServer`](crate::StreamServer) and
//! ginkgo-http's `HttpServer` use it; so can a server kind of one's own.

use std::time::Duration;

use ginkgo_api::Runtime;
use ginkgo_api::service::{Context, Counter, Shutdown};
use ginkgo_tls::{ServerTls, TlsAcceptor, TlsError};

use crate::listener::{Peer, Stream};

pub use ginkgo_tls::{ClientTls, PeerIdentity, TlsVersion};

/// The default of [`TlsSetup::handshake_timeout`].
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A server's TLS: off, or settings turned into a [`TlsAcceptor`] at each start.
///
/// # Examples
///
/// In a server's `start` and `reload`:
///
/// ```
/// use ginkgo_api::Runtime;
/// use ginkgo_api::service::Context;
/// use ginkgo_net::tls::{TlsHandshake, TlsSetup};
///
/// fn start(tls: &mut TlsSetup, ctx: &Context) -> Result<TlsHandshake, ginkgo_tls::TlsError> {
///     // Reads and checks the files: a bad one fails the start, naming it.
///     tls.start(ctx)
/// }
///
/// fn reload(tls: &TlsSetup) -> Result<(), ginkgo_tls::TlsError> {
///     // New handshakes get the new certificate; on error the old one stays.
///     tls.reload()
/// }
/// ```
#[derive(Debug, Clone)]
pub struct TlsSetup {
    settings: Option<ServerTls>,
    /// An acceptor built (and so checked) before the server, used at every start.
    given: Option<TlsAcceptor>,
    handshake_timeout: Duration,
    acceptor: Option<TlsAcceptor>,
}

impl Default for TlsSetup {
    fn default() -> Self {
        Self {
            settings: None,
            given: None,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            acceptor: None,
        }
    }
}

impl TlsSetup {
    /// Serves TLS with `settings`; `None` serves in the clear.
    pub fn set(&mut self, settings: Option<ServerTls>) {
        self.settings = settings;
        self.given = None;
    }

    /// Serves TLS with `acceptor`, already built from its files (so they were checked when
    /// the program built its tree, as `check` does); each start uses it, reload re-reads it.
    pub fn set_acceptor(&mut self, acceptor: TlsAcceptor) {
        self.settings = Some(acceptor.settings());
        self.given = Some(acceptor);
    }

    /// The settings, if TLS is on.
    pub fn settings(&self) -> Option<&ServerTls> {
        self.settings.as_ref()
    }

    /// How long a handshake may take (default [`DEFAULT_HANDSHAKE_TIMEOUT`]).
    pub fn handshake_timeout(&self) -> Duration {
        self.handshake_timeout
    }

    /// Sets [`TlsSetup::handshake_timeout`].
    pub fn set_handshake_timeout(&mut self, timeout: Duration) {
        self.handshake_timeout = timeout;
    }

    /// The acceptor in force, once started with TLS on.
    pub fn acceptor(&self) -> Option<&TlsAcceptor> {
        self.acceptor.as_ref()
    }

    /// Builds the acceptor from the settings (reading and checking every file), for the
    /// service of `ctx`, and returns the handshake its connections run.
    ///
    /// # Errors
    ///
    /// The [`TlsError`] of a file that cannot be read, parsed or matched; nothing is served.
    pub fn start(&mut self, ctx: &Context) -> Result<TlsHandshake, TlsError> {
        self.acceptor = match (&self.given, &self.settings) {
            (Some(given), _) => Some(given.clone()),
            (None, Some(settings)) => Some(TlsAcceptor::new(settings.clone())?),
            (None, None) => None,
        };
        if let Some(acceptor) = &self.acceptor {
            tracing::info!(
                service = %ctx.path(),
                cert = %acceptor.settings().cert.display(),
                "serving TLS"
            );
        }
        Ok(TlsHandshake {
            acceptor: self.acceptor.clone(),
            timeout: self.handshake_timeout,
            errors: self
                .acceptor
                .as_ref()
                .map(|_| ctx.counter("tls_handshake_errors")),
        })
    }

    /// Re-reads the certificate, key and client CA files and, if every check passes, swaps
    /// them in for new handshakes; open connections are untouched. Nothing to do in the
    /// clear, or before a start.
    ///
    /// # Errors
    ///
    /// The [`TlsError`] naming the file and the reason; the old certificate stays in force.
    pub fn reload(&self) -> Result<(), TlsError> {
        if let Some(acceptor) = &self.acceptor {
            acceptor.reload()?;
            tracing::info!(cert = %acceptor.settings().cert.display(), "TLS certificate reloaded");
        }
        Ok(())
    }
}

/// The handshake a server's connections run: none in the clear.
#[derive(Debug, Clone)]
pub struct TlsHandshake {
    acceptor: Option<TlsAcceptor>,
    timeout: Duration,
    errors: Option<Counter>,
}

impl TlsHandshake {
    /// Whether connections run TLS.
    pub fn is_on(&self) -> bool {
        self.acceptor.is_some()
    }

    /// Runs the handshake on `stream` within the handshake timeout, or hands the stream back
    /// as it is in the clear. A handshake that fails or times out is counted
    /// (`tls_handshake_errors`), logged at debug, and gives `None`: the connection is done.
    /// `None` too when `shutdown` triggers first.
    pub async fn run<R: Runtime>(
        &self,
        stream: Stream<R>,
        peer: &Peer,
        shutdown: &Shutdown,
    ) -> Option<Stream<R>> {
        let Some(acceptor) = &self.acceptor else {
            return Some(stream);
        };
        let handshake =
            ginkgo_api::time::timeout::<R, _>(self.timeout, stream.accept_tls(acceptor));
        let problem = match shutdown.run(handshake).await? {
            Ok(Ok(stream)) => return Some(stream),
            Ok(Err(err)) => err.to_string(),
            Err(_) => format!("tls handshake timed out after {:?}", self.timeout),
        };
        if let Some(errors) = &self.errors {
            errors.inc();
        }
        tracing::debug!(%peer, %problem, "TLS handshake failed");
        None
    }
}
