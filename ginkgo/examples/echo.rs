//! A TCP echo server: a `StreamServer` service under the runner, so it has the whole command
//! line (`run`, `start`, `stop`, `status`, `config`, ...). It runs unchanged on every backend:
//!
//! ```text
//! cargo run --example echo                                   # tokio, on echo.bind = 127.0.0.1:7007
//! cargo run --example echo -- -s echo.bind=127.0.0.1:9000    # another address
//! cargo run --example echo -- -s echo.bind=unix:/tmp/echo.sock # a Unix-domain socket
//! cargo run --example echo -- -s echo.tls.cert=cert.pem -s echo.tls.key=key.pem   # TLS
//! cargo run --example echo --no-default-features --features smol,net,runner,tls
//! ```
//!
//! Try it with `nc 127.0.0.1 7007` (with TLS: `openssl s_client -connect 127.0.0.1:7007`). With
//! TLS, SIGHUP (or `echo reload`) re-reads the certificate and key: good files serve new
//! connections, open ones go on; bad files are rejected with the reason and the old
//! certificate stays in force. `echo check` reports unreadable or mismatched files (exit 78).
//!
//! Ctrl-C (SIGINT) or SIGTERM stops it gracefully: it stops accepting, and open connections get
//! `stop_timeout` to finish.

use std::path::PathBuf;
use std::process::ExitCode;

use ginkgo::Settings;
use ginkgo::config::Duration;
use ginkgo::io::{AsyncReadExt, AsyncWriteExt};
use ginkgo::runner::Runner;
use ginkgo::server::{Connection, ListenOptions, StreamServer};
use ginkgo::tls::{ServerTls, TlsAcceptor, TlsVersion};

/// Settings of the echo server.
#[derive(Settings)]
#[settings(group = "echo")]
struct EchoSettings {
    /// The address to listen on: host:port, or unix:PATH for a Unix-domain socket.
    #[setting(default = "127.0.0.1:7007")]
    bind: String,
    /// The most connections served at once.
    #[setting(default = 10_000)]
    max_connections: usize,
    /// The listen backlog: connections the kernel queues before they are accepted.
    #[setting(default = 1024)]
    backlog: u32,
    /// Let other processes bind the same address too (SO_REUSEPORT).
    #[setting(default = false)]
    reuse_port: bool,
    /// Send small writes at once (TCP_NODELAY).
    #[setting(default = true)]
    nodelay: bool,
    /// For an IPv6 address: true serves IPv6 only, false IPv4 too (on [::]); unset: the
    /// system's default (Linux: both).
    only_v6: Option<bool>,
    /// Probe idle connections after this long (TCP keepalive); unset: off.
    keepalive: Option<Duration>,
    /// The permission bits of a Unix socket file, such as 0o660; unset: as the umask leaves them.
    unix_mode: Option<u32>,
}

/// TLS for the echo server: on when a certificate and key are given.
#[derive(Settings)]
#[settings(group = "echo.tls")]
struct EchoTls {
    /// The certificate chain (PEM, leaf first); with `key`, the server speaks TLS.
    cert: Option<PathBuf>,
    /// The certificate's private key (PEM).
    key: Option<PathBuf>,
    /// CA certificates (PEM) that clients must present a certificate of (mutual TLS).
    client_ca: Option<PathBuf>,
    /// The lowest TLS version accepted: "1.2" or "1.3".
    #[setting(default = TlsVersion::Tls12)]
    min_version: TlsVersion,
}

impl EchoTls {
    /// The acceptor, built now so that bad files fail `check` and the start alike.
    fn acceptor(&self) -> Result<Option<TlsAcceptor>, ginkgo::service::Error> {
        let (cert, key) = match (&self.cert, &self.key) {
            (Some(cert), Some(key)) => (cert, key),
            (None, None) => return Ok(None),
            _ => {
                return Err(
                    "echo.tls.cert and echo.tls.key go together: set both, or neither".into(),
                );
            }
        };
        let mut settings = ServerTls::new(cert, key).min_version(self.min_version);
        if let Some(ca) = &self.client_ca {
            settings = settings.client_ca(ca);
        }
        Ok(Some(TlsAcceptor::new(settings)?))
    }
}

impl EchoSettings {
    fn listen_options(&self) -> ListenOptions {
        ListenOptions {
            backlog: self.backlog,
            reuse_port: self.reuse_port,
            nodelay: self.nodelay,
            only_v6: self.only_v6,
            keepalive: self.keepalive.map(|d| d.0),
            unix_mode: self.unix_mode,
        }
    }
}

/// Echoes everything the peer sends until it closes the connection, or the server stops.
async fn echo(mut conn: Connection) -> std::io::Result<()> {
    let mut buf = vec![0u8; 16 * 1024];
    let mut total = 0u64;
    loop {
        let Some(read) = conn.shutdown.run(conn.stream.read(&mut buf)).await else {
            return Ok(()); // the server is stopping: close between messages
        };
        let n = read?;
        if n == 0 {
            ginkgo::tracing::info!(peer = %conn.peer, bytes = total, "closed");
            return Ok(());
        }
        conn.stream.write_all(&buf[..n]).await?;
        total += n as u64;
    }
}

fn main() -> ExitCode {
    Runner::new("echo")
        .version(env!("CARGO_PKG_VERSION"))
        .about("A TCP echo server")
        .run(|config| {
            let settings = config.get::<EchoSettings>()?.get();
            let mut server = StreamServer::new("echo", settings.bind.as_str(), echo)
                .max_connections(settings.max_connections)
                .listen_options(settings.listen_options());
            if let Some(acceptor) = config.get::<EchoTls>()?.get().acceptor()? {
                server = server.tls_acceptor(acceptor);
            }
            Ok(server)
        })
}
