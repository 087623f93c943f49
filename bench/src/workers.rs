//! The `workers` suite: prefork workers of the `upgrade` suite's daemon (the runner and an
//! `HttpServer` on tokio).
//!
//! - **Throughput:** HTTP req/s with wrk against `workers = 2` and `workers = 1`, alternated in
//!   the same run; the ratio of the medians. Also two single-process daemons on one port with
//!   `SO_REUSEPORT` (the kernel splits connections between their sockets by hash), for how the
//!   shared socket of prefork workers compares with a socket per process.
//! - **A worker killed with SIGKILL** under the `upgrade` suite's load (keep-alive clients and
//!   one opening a connection per request): the requests that failed, the connections
//!   refused, and the time from the kill until `status` lists a new worker ready.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::http::wrk;
use crate::results::{Output, Results};
use crate::stats::{Summary, human, median, median_f64};
use crate::upgrade::{Daemon, KEEP_ALIVE, Seen, client};

/// Command-line options of the `workers` subcommand.
#[derive(Debug, clap::Args)]
pub(crate) struct Options {
    /// Runs of each measurement; the tables show medians.
    #[arg(long, value_name = "N", default_value_t = 3, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=20))]
    pub(crate) runs: usize,
    /// Seconds of each wrk run.
    #[arg(long, value_name = "SECONDS", default_value_t = 5, value_parser = clap::builder::RangedU64ValueParser::<u64>::new().range(1..=60))]
    pub(crate) duration: u64,
    /// wrk's keep-alive connections.
    #[arg(long, value_name = "N", default_value_t = 64, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=10_000))]
    pub(crate) connections: usize,
    #[command(flatten)]
    pub(crate) output: Output,
}

/// Runs the suite and prints its tables; then writes what `--save` and `--plot` ask for.
pub(crate) fn run(options: &Options) -> ExitCode {
    match measure(options).and_then(|results| options.output.write(&results)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("ginkgo-bench workers: {err}");
            ExitCode::FAILURE
        }
    }
}

fn measure(options: &Options) -> Result<Results, String> {
    let wrk_path = wrk::find()?;
    let load = wrk::Load {
        threads: 2,
        connections: options.connections,
        duration: Duration::from_secs(options.duration),
    };
    println!(
        "ginkgo-bench in daemon mode (the runner and an HttpServer on tokio, GET / answered \
         `hello`), wrk -t{} -c{} -d{}s over loopback, the layouts alternated, {} runs each, \
         on {} CPUs. vs. workers = 1: the median of the per-run ratios (min–max beside it).\n",
        load.threads,
        load.connections,
        options.duration,
        options.runs,
        std::thread::available_parallelism().map_or(1, |n| n.get()),
    );
    const LAYOUTS: [&str; 3] = [
        "workers = 1",
        "workers = 2 (one shared socket)",
        "2 processes, SO_REUSEPORT",
    ];
    let mut rates: [Vec<f64>; 3] = [Vec::new(), Vec::new(), Vec::new()];
    for run in 0..options.runs {
        for (slot, layout) in LAYOUTS.into_iter().enumerate() {
            eprint!("throughput run {}/{}, {layout}\r", run + 1, options.runs);
            let daemons = match slot {
                0 => vec![Daemon::start(1)?],
                1 => vec![Daemon::start(2)?],
                _ => {
                    let first = Daemon::start_on(free_port()?, 1, true)?;
                    let second = Daemon::start_on(first.port, 1, true)?;
                    vec![first, second]
                }
            };
            let url = format!("http://127.0.0.1:{}/", daemons[0].port);
            let report = wrk::run(&wrk_path, load, &url)?;
            if report.socket_errors > 0 {
                return Err(format!("{layout}: {} socket errors", report.socket_errors));
            }
            rates[slot].push(report.requests_per_sec);
            for daemon in daemons {
                daemon.expect_ok(&["stop"])?;
            }
        }
    }
    let shown = |rates: &[f64]| {
        rates
            .iter()
            .map(|rate| format!("{rate:.0}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut results = Results::new(
        "workers",
        "prefork workers of the runner (HttpServer on tokio): req/s vs. workers = 1",
        "req/s / req/s of workers = 1 (one process): above 1, more throughput",
    );
    println!("| layout | req/s (runs) | median req/s | vs. workers = 1 | min–max |");
    println!("| --- | --- | ---: | ---: | ---: |");
    for (slot, (layout, layout_rates)) in LAYOUTS.iter().zip(&rates).enumerate() {
        let ratios = Summary::of_pairs(layout_rates, &rates[0]);
        let range = if slot == 0 {
            "–".to_owned()
        } else {
            results.add(layout, "tokio", ratios);
            ratios.range()
        };
        println!(
            "| {layout} | {} | {:.0} | {:.2} | {range} |",
            shown(layout_rates),
            median_f64(layout_rates),
            ratios.median,
        );
    }
    println!();

    println!(
        "A worker of two killed with SIGKILL under load ({KEEP_ALIVE} keep-alive clients and \
         one opening a connection per request); replacement: from the kill until `status` \
         lists a new worker ready (polled every 5 ms):\n"
    );
    println!("| run | requests | failed | refused | replaced after |");
    println!("| ---: | ---: | ---: | ---: | ---: |");
    let mut replacements = Vec::new();
    for run in 0..options.runs {
        let (seen, replaced) = kill_a_worker()?;
        println!(
            "| {} | {} | {} | {} | {} |",
            run + 1,
            seen.answered,
            seen.failed,
            seen.refused,
            human(replaced)
        );
        replacements.push(replaced);
    }
    println!(
        "\nmedian time to replacement: {}",
        human(median(&replacements))
    );
    Ok(results)
}

fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|probe| probe.local_addr())
        .map(|addr| addr.port())
        .map_err(|err| format!("a free port: {err}"))
}

/// The (number, pid) of each worker `status` lists as ready.
fn ready_workers(daemon: &Daemon) -> Result<Vec<(u32, u32)>, String> {
    let status = daemon.expect_ok(&["status"])?;
    Ok(status
        .lines()
        .filter(|line| line.starts_with("worker ") && line.contains(" ready "))
        .filter_map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            Some((words.get(1)?.parse().ok()?, words.get(3)?.parse().ok()?))
        })
        .collect())
}

/// Starts two workers under load, kills one, and waits for its replacement: what the clients
/// saw, and how long the replacement took.
fn kill_a_worker() -> Result<(Seen, Duration), String> {
    let daemon = Daemon::start(2)?;
    let stop = Arc::new(AtomicBool::new(false));
    let mut clients: Vec<_> = (0..KEEP_ALIVE)
        .map(|_| client(daemon.port, true, stop.clone()))
        .collect();
    clients.push(client(daemon.port, false, stop.clone()));
    std::thread::sleep(Duration::from_millis(500));
    let before = ready_workers(&daemon)?;
    let &(_, victim) = before.first().ok_or("no worker is ready")?;
    let pid = rustix::process::Pid::from_raw(i32::try_from(victim).map_err(|e| e.to_string())?)
        .ok_or("pid 0")?;
    let killed = Instant::now();
    rustix::process::kill_process(pid, rustix::process::Signal::KILL)
        .map_err(|err| format!("SIGKILL {victim}: {err}"))?;
    let replaced = loop {
        let now = ready_workers(&daemon)?;
        if now.len() == 2 && now.iter().all(|(_, pid)| *pid != victim) {
            break killed.elapsed();
        }
        if killed.elapsed() > Duration::from_secs(30) {
            return Err("no replacement within 30 s".to_owned());
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    let mut all = Seen::default();
    for client in clients {
        let seen = client.join().map_err(|_| "a client panicked")?;
        all.answered += seen.answered;
        all.failed += seen.failed;
        all.refused += seen.refused;
    }
    Ok((all, replaced))
}
