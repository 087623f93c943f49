//! The `http` and `https` suites: the `http` example's server (an axum router answering
//! `GET /`, with the admin routes beside it, served by ginkgo's `HttpServer` in a service tree)
//! on each backend, against the same router served by `axum::serve` on tokio (`http`), or by
//! hyper-util's server with tokio-rustls on tokio (`https`: axum::serve has no TLS).
//!
//! Each server runs in a child process of its own (`ginkgo-bench http-serve SERVER`), and the
//! same external load generator drives them all over loopback: `wrk` for plain HTTP, `h2load`
//! over TLS with `h2` and with `http/1.1`; a fixed number of keep-alive connections for a fixed
//! time. Per backend, the ginkgo server and the baseline run side by side and the load
//! alternates between them (the order flips every round); the table gives the median requests
//! per second and 99th-percentile latency of each.

mod h2load;
mod serve;
pub(crate) mod wrk;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::Duration;

use crate::results::{Output, Results};
use crate::stats::{Summary, human, median, median_f64};

pub(crate) use serve::{AXUM_GRACEFUL, SERVERS, main as serve_main};

/// wrk's threads (at most as many as connections).
const WRK_THREADS: usize = 2;
/// The untimed wrk run against each server before measuring.
const WARM_UP: Duration = Duration::from_secs(1);
/// The ginkgo backends, in table order (those with targets first).
const BACKENDS: [&str; 4] = ["tokio", "smol", "async-std", "threads"];

/// Command-line options of the `http` and `https` subcommands.
#[derive(Debug, clap::Args)]
#[command(args_override_self = true)]
pub(crate) struct Options {
    /// Seconds of load per run.
    #[arg(long, value_name = "SECS", default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=60))]
    pub(crate) duration: u64,
    /// Keep-alive connections the load generator holds open.
    #[arg(long, value_name = "N", default_value_t = 64, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(WRK_THREADS as u64..=1_000))]
    pub(crate) connections: usize,
    /// Runs per side; the table shows their median.
    #[arg(long, value_name = "N", default_value_t = 5, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=20))]
    pub(crate) rounds: usize,
    /// Only this backend's row (default: each).
    #[arg(long, value_name = "NAME", value_parser = clap::builder::PossibleValuesParser::new(BACKENDS))]
    pub(crate) backend: Option<String>,
    #[command(flatten)]
    pub(crate) output: Output,
}

/// What the `http` and `https` ratios mean.
const SPEED_OF_RATES: &str = "ginkgo req/s / baseline req/s: above 1, ginkgo serves more";

/// The name of the hyper-on-smol reference in saved results and charts.
const REFERENCE: &str = "hyper-smol (reference)";

/// What drives the load: wrk over plain HTTP, or h2load over TLS with one protocol.
enum Driver {
    Wrk(PathBuf),
    H2load(PathBuf, h2load::Protocol),
}

impl Driver {
    fn run(&self, load: wrk::Load, url: &str) -> Result<wrk::Report, String> {
        match self {
            Self::Wrk(wrk) => wrk::run(wrk, load, url),
            Self::H2load(h2load, protocol) => h2load::run(h2load, load, *protocol, url),
        }
    }

    /// The table's benchmark column.
    fn label(&self, load: wrk::Load) -> String {
        let (threads, connections, secs) =
            (load.threads, load.connections, load.duration.as_secs());
        match self {
            Self::Wrk(_) => format!("GET / (wrk -t{threads} -c{connections} -d{secs}s)"),
            Self::H2load(_, protocol) => format!(
                "GET / over TLS, {} (h2load -t{threads} -c{connections} -D{secs}{})",
                protocol.name(),
                match protocol {
                    h2load::Protocol::H2 => " -m1",
                    h2load::Protocol::Http1 => " --h1",
                }
            ),
        }
    }
}

/// The load of `options`.
fn load(options: &Options) -> wrk::Load {
    wrk::Load {
        threads: WRK_THREADS,
        connections: options.connections,
        duration: Duration::from_secs(options.duration),
    }
}

/// The backends `options` selects.
fn backends(options: &Options) -> impl Iterator<Item = &'static str> + '_ {
    BACKENDS.into_iter().filter(|backend| {
        options
            .backend
            .as_deref()
            .is_none_or(|only| only == *backend)
    })
}

/// Runs the `http` suite and prints the table, a row per backend as soon as it is measured.
/// Fails at once, saying how to install it, if `wrk` is missing.
pub(crate) fn run(options: &Options) -> ExitCode {
    let wrk = match wrk::find() {
        Ok(wrk) => Driver::Wrk(wrk),
        Err(err) => {
            eprintln!("ginkgo-bench http: {err}");
            return ExitCode::FAILURE;
        }
    };
    let load = load(options);
    println!(
        "ginkgo's HttpServer on each backend vs. axum::serve on tokio, each in its own process, \
         driven by wrk ({} threads, {} connections, {} s per run). Median of {} runs per side \
         (alternating, after a {} s warm-up each), {} worker threads per server. \
         ratio = ginkgo req/s / baseline req/s, the median of the per-round ratios \
         (min–max beside it).\n",
        load.threads,
        load.connections,
        load.duration.as_secs(),
        options.rounds,
        WARM_UP.as_secs(),
        ginkgo_backend_kit::worker_count(),
    );
    print_header();
    let mut results = Results::new(
        "http",
        "HttpServer on each backend vs. axum::serve on tokio, GET / under wrk",
        SPEED_OF_RATES,
    );
    let mut references = Vec::new();
    for backend in backends(options) {
        let sides = Sides {
            ginkgo: backend,
            baseline: serve::AXUM,
            reference: (backend == "smol").then_some(serve::HYPER_ON_SMOL),
        };
        match row(&wrk, load, sides, options.rounds, None) {
            Ok(row) => {
                println!("{}", row.ginkgo);
                results.add("GET /", backend, row.ratios);
                if let Some((line, ratios)) = row.reference {
                    references.push(line);
                    results.add("GET /", REFERENCE, ratios);
                }
            }
            Err(err) => {
                eprintln!("\nginkgo-bench http: {backend}: {err}");
                return ExitCode::FAILURE;
            }
        }
        let _ = std::io::stdout().flush();
    }
    if !references.is_empty() {
        println!(
            "\nReference, without ginkgo: hyper served directly on smol (async-net sockets, \
             smol-hyper's I/O adapter, the same router, no header timeout) against the same \
             baseline, measured in the same rounds.\n"
        );
        println!(
            "| benchmark | server | reference | baseline | ratio | min–max | reference p99 | \
             baseline p99 |"
        );
        println!("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |");
        for reference in references {
            println!("{reference}");
        }
    }
    finish("http", &options.output, &results)
}

/// Writes what `--save` and `--plot` ask for.
fn finish(suite: &str, output: &Output, results: &Results) -> ExitCode {
    match output.write(results) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("ginkgo-bench {suite}: {err}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the `https` suite: per backend a row for `h2` and one for `http/1.1`, each server with
/// the same certificate (made with rcgen, in a temporary directory). Fails at once, saying how
/// to install it, if `h2load` is missing.
pub(crate) fn run_tls(options: &Options) -> ExitCode {
    let h2load = match h2load::find() {
        Ok(h2load) => h2load,
        Err(err) => {
            eprintln!("ginkgo-bench https: {err}");
            return ExitCode::FAILURE;
        }
    };
    let load = load(options);
    let files = crate::tls::files();
    println!(
        "ginkgo's HttpServer with TLS (ginkgo-tls: rustls 0.23 on ring) on each backend vs. \
         hyper-util's HTTP/1 + HTTP/2 server with tokio-rustls 0.26 (the same rustls and \
         provider) on tokio, the same router, each in its own process, driven by h2load over \
         TLS ({} threads, {} connections, {} s per run; h2 with one stream at a time per \
         connection, or HTTP/1.1 keep-alive). Median of {} runs per side (alternating, after a \
         {} s warm-up each), {} worker threads per server. \
         ratio = ginkgo req/s / baseline req/s, the median of the per-round ratios \
         (min–max beside it).\n",
        load.threads,
        load.connections,
        load.duration.as_secs(),
        options.rounds,
        WARM_UP.as_secs(),
        ginkgo_backend_kit::worker_count(),
    );
    print_header();
    let mut results = Results::new(
        "https",
        "HttpServer with TLS on each backend vs. hyper-util + tokio-rustls on tokio, h2load",
        SPEED_OF_RATES,
    );
    for backend in backends(options) {
        for protocol in [h2load::Protocol::H2, h2load::Protocol::Http1] {
            let driver = Driver::H2load(h2load.clone(), protocol);
            let sides = Sides {
                ginkgo: backend,
                baseline: serve::HYPER_RUSTLS,
                reference: None,
            };
            match row(
                &driver,
                load,
                sides,
                options.rounds,
                Some((&files.cert, &files.key)),
            ) {
                Ok(row) => {
                    println!("{}", row.ginkgo);
                    results.add(protocol.name(), backend, row.ratios);
                }
                Err(err) => {
                    eprintln!("\nginkgo-bench https: {backend}: {err}");
                    return ExitCode::FAILURE;
                }
            }
            let _ = std::io::stdout().flush();
        }
    }
    finish("https", &options.output, &results)
}

fn print_header() {
    println!(
        "| benchmark | backend | ginkgo | baseline | ratio | min–max | ginkgo p99 | baseline p99 |"
    );
    println!("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    let _ = std::io::stdout().flush();
}

/// The servers of one row.
struct Sides {
    ginkgo: &'static str,
    baseline: &'static str,
    /// A server measured in the same rounds against the same baseline, without ginkgo.
    reference: Option<&'static str>,
}

/// One measured table row.
struct Row {
    /// The row of the main table: ginkgo on the backend against the baseline.
    ginkgo: String,
    /// The per-round ratios of ginkgo's requests/s to the baseline's.
    ratios: Summary,
    /// For smol: hyper served directly on smol (no ginkgo) against the same baseline, measured
    /// in the same rounds, to tell the runtime's share of a gap from ginkgo's; its row and
    /// ratios.
    reference: Option<(String, Summary)>,
}

/// Measures the ginkgo server against the baseline (and the reference server, if there is
/// one) under `driver`, serving TLS with the certificate and key `tls` if given, and formats
/// the table rows.
fn row(
    driver: &Driver,
    load: wrk::Load,
    sides: Sides,
    rounds: usize,
    tls: Option<(&Path, &Path)>,
) -> Result<Row, String> {
    let ginkgo = Server::start(sides.ginkgo, tls)?;
    let baseline = Server::start(sides.baseline, tls)?;
    let reference = sides
        .reference
        .map(|name| Server::start(name, tls))
        .transpose()?;
    eprint!("{}: warm-up", sides.ginkgo);
    let warm_up = wrk::Load {
        duration: WARM_UP,
        ..load
    };
    for server in [Some(&ginkgo), Some(&baseline), reference.as_ref()]
        .into_iter()
        .flatten()
    {
        driver.run(warm_up, &server.url)?;
    }
    let (mut ours, mut theirs, mut plain) = (Vec::new(), Vec::new(), Vec::new());
    let measure = |server: &Server, into: &mut Vec<wrk::Report>| {
        let report = driver.run(load, &server.url)?;
        if report.socket_errors > 0 {
            eprint!(" ({} socket errors)", report.socket_errors);
        }
        into.push(report);
        Ok::<_, String>(())
    };
    for round in 0..rounds {
        if round % 2 == 0 {
            measure(&ginkgo, &mut ours)?;
            measure(&baseline, &mut theirs)?;
        } else {
            measure(&baseline, &mut theirs)?;
            measure(&ginkgo, &mut ours)?;
        }
        if let Some(reference) = &reference {
            measure(reference, &mut plain)?;
        }
        eprint!(
            ", {:.0}/{:.0} req/s",
            ours[round].requests_per_sec, theirs[round].requests_per_sec
        );
        if let Some(report) = plain.get(round) {
            eprint!(" (reference {:.0})", report.requests_per_sec);
        }
    }
    eprintln!();
    let label = driver.label(load);
    let rates = |reports: &[wrk::Report]| -> Vec<f64> {
        reports.iter().map(|r| r.requests_per_sec).collect()
    };
    let format_row = |name: &str, ours: &[wrk::Report]| {
        let ratios = Summary::of_pairs(&rates(ours), &rates(&theirs));
        let line = format!(
            "| {label} | {name} | {:.0} req/s | {:.0} req/s | {:.2} | {} | {} | {} |",
            rate(ours),
            rate(&theirs),
            ratios.median,
            ratios.range(),
            human(p99(ours)),
            human(p99(&theirs)),
        );
        (line, ratios)
    };
    let (ginkgo, ratios) = format_row(sides.ginkgo, &ours);
    Ok(Row {
        ginkgo,
        ratios,
        reference: sides.reference.map(|name| format_row(name, &plain)),
    })
}

/// The median requests/s of `reports`.
fn rate(reports: &[wrk::Report]) -> f64 {
    median_f64(
        &reports
            .iter()
            .map(|r| r.requests_per_sec)
            .collect::<Vec<_>>(),
    )
}

/// The median p99 latency of `reports`.
fn p99(reports: &[wrk::Report]) -> Duration {
    median(&reports.iter().map(|r| r.p99).collect::<Vec<_>>())
}

/// A server in a child process (`ginkgo-bench http-serve NAME`), stopped when dropped.
struct Server {
    child: Child,
    url: String,
}

impl Server {
    /// Starts the server `name` (serving TLS with the certificate and key `tls`, if given)
    /// and waits until it listens.
    fn start(name: &str, tls: Option<(&Path, &Path)>) -> Result<Self, String> {
        let mut command = Command::new(std::env::current_exe().map_err(|err| err.to_string())?);
        command.args(["http-serve", name]);
        if let Some((cert, key)) = tls {
            command.arg("--cert").arg(cert).arg("--key").arg(key);
        }
        let child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|err| format!("cannot start the {name} server: {err}"))?;
        let mut server = Self {
            child,
            url: String::new(),
        };
        let stdout = server.child.stdout.take().expect("stdout is piped");
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let addr: std::net::SocketAddr = line
            .trim()
            .parse()
            .map_err(|_| format!("the {name} server did not report its address"))?;
        let scheme = if tls.is_some() { "https" } else { "http" };
        server.url = format!("{scheme}://{addr}/");
        Ok(server)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // Closing its standard input tells it to exit; killing makes sure.
        drop(self.child.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
