//! The `http` suite: the `http` example's server (an axum router answering `GET /`, with the
//! admin routes beside it, served by ginkgo's `HttpServer` in a service tree) on each backend,
//! against the same router served by `axum::serve` on tokio.
//!
//! Each server runs in a child process of its own (`ginkgo-bench http-serve SERVER`), and the
//! same external load generator, `wrk`, drives them all over loopback: a fixed number of
//! keep-alive connections for a fixed time. Per backend, the ginkgo server and the baseline
//! run side by side and wrk alternates between them (the order flips every round); the table
//! gives the median requests per second and 99th-percentile latency of each.

mod serve;
mod wrk;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::Duration;

use crate::stats::{human, median, median_f64};

pub(crate) use serve::{SERVERS, main as serve_main};

/// wrk's threads (at most as many as connections).
const WRK_THREADS: usize = 2;
/// The untimed wrk run against each server before measuring.
const WARM_UP: Duration = Duration::from_secs(1);
/// The ginkgo backends, in table order (those with targets first).
const BACKENDS: [&str; 4] = ["tokio", "smol", "async-std", "threads"];

/// Command-line options of the `http` subcommand.
#[derive(Debug, clap::Args)]
#[command(args_override_self = true)]
pub(crate) struct Options {
    /// Seconds of load per wrk run.
    #[arg(long, value_name = "SECS", default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=60))]
    pub(crate) duration: u64,
    /// Keep-alive connections wrk holds open.
    #[arg(long, value_name = "N", default_value_t = 64, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(WRK_THREADS as u64..=1_000))]
    pub(crate) connections: usize,
    /// Runs per side; the table shows their median.
    #[arg(long, value_name = "N", default_value_t = 5, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=20))]
    pub(crate) rounds: usize,
    /// Only this backend's row (default: each).
    #[arg(long, value_name = "NAME", value_parser = clap::builder::PossibleValuesParser::new(BACKENDS))]
    pub(crate) backend: Option<String>,
}

/// Runs the suite and prints the table, a row per backend as soon as it is measured. Fails
/// at once, saying how to install it, if `wrk` is missing.
pub(crate) fn run(options: &Options) -> ExitCode {
    let wrk = match wrk::find() {
        Ok(wrk) => wrk,
        Err(err) => {
            eprintln!("ginkgo-bench http: {err}");
            return ExitCode::FAILURE;
        }
    };
    let load = wrk::Load {
        threads: WRK_THREADS,
        connections: options.connections,
        duration: Duration::from_secs(options.duration),
    };
    println!(
        "ginkgo's HttpServer on each backend vs. axum::serve on tokio, each in its own process, \
         driven by wrk ({} threads, {} connections, {} s per run). Median of {} runs per side \
         (alternating, after a {} s warm-up each), {} worker threads per server. \
         ratio = ginkgo req/s / baseline req/s.\n",
        load.threads,
        load.connections,
        load.duration.as_secs(),
        options.rounds,
        WARM_UP.as_secs(),
        ginkgo_backend_kit::worker_count(),
    );
    println!("| benchmark | backend | ginkgo | baseline | ratio | ginkgo p99 | baseline p99 |");
    println!("| --- | --- | ---: | ---: | ---: | ---: | ---: |");
    let _ = std::io::stdout().flush();
    let mut references = Vec::new();
    for backend in BACKENDS {
        if options
            .backend
            .as_deref()
            .is_some_and(|only| only != backend)
        {
            continue;
        }
        match row(&wrk, load, backend, options.rounds) {
            Ok(row) => {
                println!("{}", row.ginkgo);
                references.extend(row.reference);
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
            "| benchmark | server | reference | baseline | ratio | reference p99 | baseline p99 |"
        );
        println!("| --- | --- | ---: | ---: | ---: | ---: | ---: |");
        for reference in references {
            println!("{reference}");
        }
    }
    ExitCode::SUCCESS
}

/// One measured table row.
struct Row {
    /// The row of the main table: ginkgo on the backend against the baseline.
    ginkgo: String,
    /// For smol: hyper served directly on smol (no ginkgo) against the same baseline, measured
    /// in the same rounds, to tell the runtime's share of a gap from ginkgo's.
    reference: Option<String>,
}

/// Measures ginkgo on `backend` against the baseline (and the reference server, if the
/// backend has one) and formats the table rows.
fn row(wrk: &Path, load: wrk::Load, backend: &str, rounds: usize) -> Result<Row, String> {
    let reference_name = (backend == "smol").then_some(serve::HYPER_ON_SMOL);
    let ginkgo = Server::start(backend)?;
    let baseline = Server::start(serve::AXUM)?;
    let reference = reference_name.map(Server::start).transpose()?;
    eprint!("{backend}: warm-up");
    let warm_up = wrk::Load {
        duration: WARM_UP,
        ..load
    };
    for server in [Some(&ginkgo), Some(&baseline), reference.as_ref()]
        .into_iter()
        .flatten()
    {
        wrk::run(wrk, warm_up, &server.url)?;
    }
    let (mut ours, mut theirs, mut plain) = (Vec::new(), Vec::new(), Vec::new());
    let measure = |server: &Server, into: &mut Vec<wrk::Report>| {
        let report = wrk::run(wrk, load, &server.url)?;
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
    let format_row = |label: &str, ours: &[wrk::Report]| {
        let (our_rate, their_rate) = (rate(ours), rate(&theirs));
        format!(
            "| GET / (wrk -t{} -c{} -d{}s) | {label} | {our_rate:.0} req/s | {their_rate:.0} req/s \
             | {:.2} | {} | {} |",
            load.threads,
            load.connections,
            load.duration.as_secs(),
            our_rate / their_rate,
            human(p99(ours)),
            human(p99(&theirs)),
        )
    };
    Ok(Row {
        ginkgo: format_row(backend, &ours),
        reference: reference_name.map(|name| format_row(name, &plain)),
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
    /// Starts the server `name` and waits until it listens.
    fn start(name: &str) -> Result<Self, String> {
        let child = Command::new(std::env::current_exe().map_err(|err| err.to_string())?)
            .args(["http-serve", name])
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
        server.url = format!("http://{addr}/");
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
