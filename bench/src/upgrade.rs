//! The `upgrade` suite: a daemon under the runner (ginkgo-bench itself, in daemon mode: an
//! `HttpServer` on tokio) upgraded and restarted in a row under steady HTTP load, counting the
//! requests that failed and the connections refused, and the worst latency; then the time from
//! SIGTERM to exit with many idle keep-alive connections open, beside the anchor
//! (`axum::serve` on tokio with graceful shutdown).
//!
//! The load: `KEEP_ALIVE` clients on keep-alive connections (each sends its next request as
//! soon as the last is answered, and reconnects when told `Connection: close`), and one client
//! opening a new connection per request. Every request is `GET /`, answered `hello`.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{self, Command, ExitCode};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::results::{Output, Results};
use crate::stats::{Summary, human, median};

/// The environment variable that makes `ginkgo-bench` the daemon of this suite.
pub(crate) const DAEMON: &str = "GINKGO_BENCH_UPGRADE_DAEMON";

/// Keep-alive clients of the load.
pub(crate) const KEEP_ALIVE: usize = 8;

/// Command-line options of the `upgrade` subcommand.
#[derive(Debug, clap::Args)]
pub(crate) struct Options {
    /// Upgrades in a row, then as many restarts.
    #[arg(long, value_name = "N", default_value_t = 5, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=50))]
    pub(crate) handovers: usize,
    /// Idle keep-alive connections open when SIGTERM is sent.
    #[arg(long, value_name = "N", default_value_t = 10_000, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=50_000))]
    pub(crate) idle: usize,
    /// SIGTERM runs; the table shows their median.
    #[arg(long, value_name = "N", default_value_t = 5, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=20))]
    pub(crate) runs: usize,
    /// The daemon's `workers` setting: 1 is one process; more, a master and that many
    /// prefork workers.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::builder::RangedU64ValueParser::<u32>::new().range(1..=64))]
    pub(crate) workers: u32,
    #[command(flatten)]
    pub(crate) output: Output,
}

/// The daemon: the runner serving an `HttpServer` on tokio (`bench.bind`), with `GET /`.
pub(crate) fn daemon_main() -> ExitCode {
    use ginkgo_backend_tokio::Tokio;
    #[derive(ginkgo_macros::Settings)]
    #[settings(crate = ginkgo_config, group = "bench")]
    struct BenchSettings {
        /// Where the HTTP server listens.
        #[setting(default = "127.0.0.1:0")]
        bind: String,
        /// Bind with SO_REUSEPORT (for several daemons on one port).
        reuse_port: bool,
    }
    ginkgo_runner::Runner::<Tokio>::new("bench-http").run(|config| {
        let settings = config.get::<BenchSettings>()?.get();
        let app = axum::Router::new().route("/", axum::routing::get(|| async { "hello" }));
        Ok(
            ginkgo_http::HttpServer::<Tokio, _>::new(settings.bind.as_str(), app)
                .named("http")
                .listen_options(ginkgo_net::ListenOptions {
                    reuse_port: settings.reuse_port,
                    ..ginkgo_net::ListenOptions::default()
                }),
        )
    })
}

/// The daemon in a temporary run directory, driven through its command line.
pub(crate) struct Daemon {
    rundir: tempfile::TempDir,
    pub(crate) port: u16,
    workers: u32,
    reuse_port: bool,
}

impl Daemon {
    /// Starts it with `workers` (the setting) on a free port.
    pub(crate) fn start(workers: u32) -> Result<Self, String> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|probe| probe.local_addr())
            .map_err(|err| format!("a free port: {err}"))?
            .port();
        Self::start_on(port, workers, false)
    }

    /// Starts it with `workers` on `port`, with SO_REUSEPORT if `reuse_port`.
    pub(crate) fn start_on(port: u16, workers: u32, reuse_port: bool) -> Result<Self, String> {
        let rundir = tempfile::tempdir().map_err(|err| format!("a run directory: {err}"))?;
        let daemon = Self {
            rundir,
            port,
            workers,
            reuse_port,
        };
        daemon.expect_ok(&["start"])?;
        Ok(daemon)
    }

    fn cmd(&self, args: &[&str]) -> Result<process::Output, String> {
        let exe = std::env::current_exe().map_err(|err| err.to_string())?;
        Command::new(exe)
            .arg("-s")
            .arg(format!("rundir={}", self.rundir.path().display()))
            .arg("-s")
            .arg(format!("bench.bind=127.0.0.1:{}", self.port))
            .arg("-s")
            .arg(format!("workers={}", self.workers))
            .arg("-s")
            .arg(format!("bench.reuse_port={}", self.reuse_port))
            .args(args)
            .env(DAEMON, "1")
            .env_remove("NOTIFY_SOCKET")
            .output()
            .map_err(|err| format!("cannot run the daemon's command line: {err}"))
    }

    pub(crate) fn expect_ok(&self, args: &[&str]) -> Result<String, String> {
        let output = self.cmd(args)?;
        let text = String::from_utf8_lossy(&output.stdout).into_owned()
            + &String::from_utf8_lossy(&output.stderr);
        if output.status.success() {
            Ok(text)
        } else {
            Err(format!("{args:?} failed: {text}"))
        }
    }

    pub(crate) fn pid(&self) -> Result<u32, String> {
        let path = self.rundir.path().join("bench-http.pid");
        for _ in 0..200 {
            if let Ok(pid) = std::fs::read_to_string(&path)
                .unwrap_or_default()
                .trim()
                .parse()
            {
                return Ok(pid);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Err(format!("no pid in {}", path.display()))
    }

    fn log_path(&self) -> PathBuf {
        self.rundir.path().join("bench-http.log")
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.cmd(&["stop"]);
    }
}

/// One `GET /` on `stream`: the head of a 200 (lower case) and its body.
fn get_response(stream: &mut TcpStream) -> io::Result<(String, Vec<u8>)> {
    stream.write_all(b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n")?;
    let mut head = Vec::with_capacity(256);
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte)? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "closed before a response",
            ));
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
    if !head.starts_with("http/1.1 200 ") {
        return Err(io::Error::other("not a 200"));
    }
    let length: usize = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .and_then(|value| value.trim().parse().ok())
        .ok_or_else(|| io::Error::other("no content-length"))?;
    let mut body = vec![0; length];
    stream.read_exact(&mut body)?;
    Ok((head, body))
}

/// One `GET /` on `stream`, answered `hello`; whether the server closes the connection after
/// it.
fn get(stream: &mut TcpStream) -> io::Result<bool> {
    let (head, body) = get_response(stream)?;
    if body != b"hello" {
        return Err(io::Error::other("not the body sent"));
    }
    Ok(head.contains("\r\nconnection: close\r\n"))
}

/// What one client saw.
#[derive(Default)]
pub(crate) struct Seen {
    pub(crate) answered: u64,
    pub(crate) failed: u64,
    pub(crate) refused: u64,
    pub(crate) latencies: Vec<Duration>,
}

/// A client until `stop`: keep-alive (`keep`) or a new connection per request.
pub(crate) fn client(
    port: u16,
    keep: bool,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<Seen> {
    std::thread::spawn(move || {
        let mut seen = Seen::default();
        let mut stream: Option<TcpStream> = None;
        while !stop.load(Ordering::Relaxed) {
            let began = Instant::now();
            let conn = match &mut stream {
                Some(conn) => conn,
                None => match TcpStream::connect(("127.0.0.1", port)) {
                    Ok(conn) => {
                        let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
                        let _ = conn.set_nodelay(true);
                        stream.insert(conn)
                    }
                    Err(_) => {
                        seen.refused += 1;
                        std::thread::sleep(Duration::from_millis(1));
                        continue;
                    }
                },
            };
            match get(conn) {
                Ok(close) => {
                    seen.answered += 1;
                    seen.latencies.push(began.elapsed());
                    if close || !keep {
                        stream = None;
                    }
                }
                Err(_) => {
                    seen.failed += 1;
                    stream = None;
                }
            }
        }
        seen
    })
}

/// Runs the suite and prints its tables; then writes what `--save` and `--plot` ask for.
pub(crate) fn run(options: &Options) -> ExitCode {
    match measure(options).and_then(|results| options.output.write(&results)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("ginkgo-bench upgrade: {err}");
            ExitCode::FAILURE
        }
    }
}

fn measure(options: &Options) -> Result<Results, String> {
    raise_file_limit(options.idle + 1_000);
    println!(
        "ginkgo-bench in daemon mode (the runner and an HttpServer on tokio, GET / answered \
         `hello`; workers = {}), {KEEP_ALIVE} keep-alive clients and one client opening a \
         connection per request, HTTP/1.1 over loopback.\n",
        options.workers
    );
    println!("| handovers | requests | failed | refused | p50 | p99 | worst | took |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for command in ["upgrade", "restart"] {
        let daemon = Daemon::start(options.workers)?;
        let stop = Arc::new(AtomicBool::new(false));
        let mut clients: Vec<_> = (0..KEEP_ALIVE)
            .map(|_| client(daemon.port, true, stop.clone()))
            .collect();
        clients.push(client(daemon.port, false, stop.clone()));
        std::thread::sleep(Duration::from_millis(500));
        let began = Instant::now();
        for round in 0..options.handovers {
            eprint!("{command} {}/{}\r", round + 1, options.handovers);
            daemon.expect_ok(&[command])?;
            std::thread::sleep(Duration::from_millis(300));
        }
        let took = began.elapsed();
        stop.store(true, Ordering::Relaxed);
        let mut all = Seen::default();
        for client in clients {
            let seen = client.join().map_err(|_| "a client panicked")?;
            all.answered += seen.answered;
            all.failed += seen.failed;
            all.refused += seen.refused;
            all.latencies.extend(seen.latencies);
        }
        all.latencies.sort_unstable();
        let at = |q: f64| {
            all.latencies[((all.latencies.len() as f64 * q) as usize).min(all.latencies.len() - 1)]
        };
        println!(
            "| {} × `{command}` | {} | {} | {} | {} | {} | {} | {} |",
            options.handovers,
            all.answered,
            all.failed,
            all.refused,
            human(at(0.5)),
            human(at(0.99)),
            human(*all.latencies.last().ok_or("no request answered")?),
            human(took),
        );
    }
    println!(
        "\nSIGTERM to exit with {} idle keep-alive connections open (median of {} runs; the \
         time until the process has exited, polled every 1 ms), ginkgo's daemon and the \
         anchor `axum::serve` on tokio with `with_graceful_shutdown` on SIGTERM, alternated:\n",
        options.idle, options.runs
    );
    let (mut times, mut anchor) = (Vec::new(), Vec::new());
    for run in 0..options.runs {
        eprint!("sigterm {}/{}\r", run + 1, options.runs);
        times.push(sigterm_with_idle(options.idle, options.workers)?);
        anchor.push(anchor_sigterm_with_idle(options.idle)?);
    }
    println!("| server | idle connections | runs | median | slowest |");
    println!("| --- | ---: | --- | ---: | ---: |");
    for (name, times) in [
        (format!("ginkgo, workers = {}", options.workers), &times),
        ("axum::serve, graceful".to_owned(), &anchor),
    ] {
        println!(
            "| {name} | {} | {} | {} | {} |",
            options.idle,
            times
                .iter()
                .map(|t| human(*t))
                .collect::<Vec<_>>()
                .join(", "),
            human(median(times)),
            human(*times.iter().max().ok_or("no runs")?),
        );
    }
    let secs =
        |times: &[Duration]| -> Vec<f64> { times.iter().map(Duration::as_secs_f64).collect() };
    let ratios = Summary::of_pairs(&secs(&anchor), &secs(&times));
    println!(
        "\nanchor time / ginkgo time, per run (above 1, ginkgo exits sooner): median {:.2}, \
         min–max {}",
        ratios.median,
        ratios.range()
    );
    let mut results = Results::new(
        "upgrade",
        "exit on SIGTERM with idle keep-alive connections vs. axum::serve with graceful shutdown",
        "axum::serve's time to exit / ginkgo's: above 1, ginkgo exits sooner",
    );
    let backend = match options.workers {
        1 => "tokio".to_owned(),
        workers => format!("tokio, workers = {workers}"),
    };
    results.add(
        &format!("SIGTERM, {} idle connections", options.idle),
        &backend,
        ratios,
    );
    Ok(results)
}

/// The anchor: `ginkgo-bench http-serve axum-graceful` with `idle` keep-alive connections (each
/// with one request answered), timed from SIGTERM until it has exited.
fn anchor_sigterm_with_idle(idle: usize) -> Result<Duration, String> {
    use std::io::BufRead;
    let exe = std::env::current_exe().map_err(|err| err.to_string())?;
    let mut child = Command::new(exe)
        .args(["http-serve", crate::http::AXUM_GRACEFUL])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .map_err(|err| format!("cannot start the anchor: {err}"))?;
    let mut line = String::new();
    let stdout = child.stdout.take().ok_or("no stdout")?;
    std::io::BufReader::new(stdout)
        .read_line(&mut line)
        .map_err(|err| format!("the anchor's address: {err}"))?;
    let addr: std::net::SocketAddr = line
        .trim()
        .parse()
        .map_err(|err| format!("the anchor's address {line:?}: {err}"))?;
    let mut open = Vec::with_capacity(idle);
    for _ in 0..idle {
        let mut stream =
            TcpStream::connect(addr).map_err(|err| format!("connection {}: {err}", open.len()))?;
        get_response(&mut stream).map_err(|err| format!("a request: {err}"))?;
        open.push(stream);
    }
    let pid = child.id();
    let sent = Instant::now();
    ginkgo_api::signal::Signal::Term
        .send_to(pid)
        .map_err(|err| format!("SIGTERM: {err}"))?;
    let took = loop {
        if let Ok(Some(_)) = child.try_wait() {
            break sent.elapsed();
        }
        if sent.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            let _ = child.wait();
            return Err("the anchor did not exit within 30 s of SIGTERM".to_owned());
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    Ok(took)
}

/// Starts the daemon, opens `idle` keep-alive connections (each with one request answered),
/// then times SIGTERM until the process is gone.
fn sigterm_with_idle(idle: usize, workers: u32) -> Result<Duration, String> {
    let daemon = Daemon::start(workers)?;
    let pid = daemon.pid()?;
    let mut open = Vec::with_capacity(idle);
    for _ in 0..idle {
        let mut stream = TcpStream::connect(("127.0.0.1", daemon.port))
            .map_err(|err| format!("connection {}: {err}", open.len()))?;
        get(&mut stream).map_err(|err| format!("a request: {err}"))?;
        open.push(stream);
    }
    let sent = Instant::now();
    ginkgo_api::signal::Signal::Term
        .send_to(pid)
        .map_err(|err| format!("SIGTERM: {err}"))?;
    while alive(pid) {
        if sent.elapsed() > Duration::from_secs(30) {
            return Err(format!(
                "pid {pid} did not exit; see {}",
                daemon.log_path().display()
            ));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    Ok(sent.elapsed())
}

/// Whether `pid` runs (a zombie does not).
pub(crate) fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z")
    })
}

/// Raises this process's open-file limit (the daemon inherits it) to at least `want`, as far
/// as the hard limit allows.
fn raise_file_limit(want: usize) {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    let want = want as u64;
    if limit.current.is_some_and(|current| current < want) {
        limit.current = Some(limit.maximum.map_or(want, |max| max.min(want)));
        let _ = setrlimit(Resource::Nofile, limit);
    }
}
