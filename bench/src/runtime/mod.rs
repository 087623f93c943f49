//! The `runtime` suite: the same work written once against ginkgo and once against each
//! backend's native API, alternating in one process per backend, compared by median time.

mod ginkgo;
mod native;

use std::io::Write;
use std::process::{Command, ExitCode};
use std::time::Duration;

use ginkgo_backend_async_std::AsyncStd;
use ginkgo_backend_smol::Smol;
use ginkgo_backend_threads::Threads;
use ginkgo_backend_tokio::Tokio;

use crate::stats::{human, median};

/// Tasks spawned and joined by the spawn case on the async backends.
const SPAWN_TASKS: usize = 100_000;
/// Tasks (OS threads) spawned and joined by the spawn case on the threads backend.
const SPAWN_THREADS: usize = 10_000;
/// Concurrent loopback connections in the echo case.
const ECHO_CONNS: usize = 64;
/// Round trips per connection in the echo case.
const ECHO_ROUND_TRIPS: usize = 1_000;
/// Bytes per echoed message.
const ECHO_LEN: usize = 64;
/// Untimed runs of each side before measuring.
const WARM_UP: usize = 1;

/// A backend that the suite compares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Backend {
    Tokio,
    AsyncStd,
    Smol,
    Threads,
}

impl Backend {
    const ALL: [Backend; 4] = [Self::Tokio, Self::AsyncStd, Self::Smol, Self::Threads];

    fn name(self) -> &'static str {
        match self {
            Self::Tokio => "tokio",
            Self::AsyncStd => "async-std",
            Self::Smol => "smol",
            Self::Threads => "threads",
        }
    }

    /// The benchmark cases of this backend: ginkgo's side and the native baseline.
    fn cases(self) -> Vec<Case> {
        let spawn = |tasks| format!("spawn+join {tasks} tasks");
        let echo = format!("tcp echo {ECHO_CONNS} conns x {ECHO_ROUND_TRIPS} x {ECHO_LEN} B");
        let echo = |ginkgo, baseline| Case::new(echo.clone(), ginkgo, baseline);
        match self {
            Self::Tokio => vec![
                Case::new(
                    spawn(SPAWN_TASKS),
                    || ginkgo::spawn_join::<Tokio>(SPAWN_TASKS),
                    || native::tokio::spawn_join(SPAWN_TASKS),
                ),
                echo(ginkgo::echo::<Tokio>, native::tokio::echo),
            ],
            Self::AsyncStd => vec![
                Case::new(
                    spawn(SPAWN_TASKS),
                    || ginkgo::spawn_join::<AsyncStd>(SPAWN_TASKS),
                    || native::async_std::spawn_join(SPAWN_TASKS),
                ),
                echo(ginkgo::echo::<AsyncStd>, native::async_std::echo),
            ],
            Self::Smol => vec![
                Case::new(
                    spawn(SPAWN_TASKS),
                    || ginkgo::spawn_join::<Smol>(SPAWN_TASKS),
                    || native::smol::spawn_join(SPAWN_TASKS),
                ),
                echo(ginkgo::echo::<Smol>, native::smol::echo),
            ],
            Self::Threads => vec![
                Case::new(
                    spawn(SPAWN_THREADS),
                    || ginkgo::spawn_join::<Threads>(SPAWN_THREADS),
                    || native::threads::spawn_join(SPAWN_THREADS),
                ),
                echo(ginkgo::echo::<Threads>, native::threads::echo),
            ],
        }
    }
}

/// One benchmark: each function runs the work once and returns the time it took.
struct Case {
    name: String,
    ginkgo: fn() -> Duration,
    baseline: fn() -> Duration,
}

impl Case {
    fn new(name: String, ginkgo: fn() -> Duration, baseline: fn() -> Duration) -> Self {
        Self {
            name,
            ginkgo,
            baseline,
        }
    }
}

/// Command-line options of the `runtime` subcommand.
#[derive(Debug)]
pub(crate) struct Options {
    /// One backend, measured in this process; `None` runs each in a child process.
    backend: Option<Backend>,
    runs: usize,
    /// Internal, for those child processes: print only the table rows.
    rows_only: bool,
}

impl Options {
    /// Parses `[--backend NAME] [--runs N]`.
    pub(crate) fn parse(mut args: impl Iterator<Item = String>) -> Result<Self, String> {
        let mut options = Self {
            backend: None,
            runs: 7,
            rows_only: false,
        };
        while let Some(arg) = args.next() {
            let mut value = || args.next().ok_or(format!("{arg} needs a value"));
            match arg.as_str() {
                "--backend" => {
                    let name = value()?;
                    let backend = Backend::ALL.into_iter().find(|b| b.name() == name);
                    let names: Vec<_> = Backend::ALL.iter().map(|b| b.name()).collect();
                    options.backend = Some(backend.ok_or(format!(
                        "unknown backend `{name}` (valid: {})",
                        names.join(", ")
                    ))?);
                }
                "--runs" => {
                    let text = value()?;
                    options.runs = match text.parse() {
                        Ok(n) if n > 0 => n,
                        _ => return Err(format!("--runs needs a positive number, not `{text}`")),
                    };
                }
                "--rows-only" => options.rows_only = true,
                _ => return Err(format!("unknown option `{arg}` for `runtime`")),
            }
        }
        Ok(options)
    }
}

/// Runs the suite and prints the table, one row as soon as it is measured.
///
/// Without `--backend`, each backend runs in a fresh child process, so that no runtime's
/// leftover threads (async-std's and smol's executors live as long as the process, and their
/// idle workers drive the shared async-io reactor) affect another backend's numbers.
pub(crate) fn run(options: &Options) -> ExitCode {
    if !options.rows_only {
        let workers = ginkgo_api::backend::worker_count();
        println!(
            "Median of {} timed runs per side (ginkgo and baseline alternating, after \
             {WARM_UP} warm-up), {workers} worker threads, one process per backend.\n",
            options.runs
        );
        println!("| benchmark | backend | ginkgo | baseline | ratio |");
        println!("| --- | --- | ---: | ---: | ---: |");
        let _ = std::io::stdout().flush();
    }
    let Some(backend) = options.backend else {
        for backend in Backend::ALL {
            if let Err(err) = run_child(backend, options.runs) {
                eprintln!("ginkgo-bench: {} benchmarks failed: {err}", backend.name());
                return ExitCode::FAILURE;
            }
        }
        return ExitCode::SUCCESS;
    };
    for case in backend.cases() {
        let (ginkgo, baseline) = measure(backend, &case, options.runs);
        // Speed is 1/time, so ginkgo's speed over the baseline's is baseline / ginkgo.
        let ratio = baseline.as_secs_f64() / ginkgo.as_secs_f64();
        println!(
            "| {} | {} | {} | {} | {ratio:.2} |",
            case.name,
            backend.name(),
            human(ginkgo),
            human(baseline)
        );
        let _ = std::io::stdout().flush();
    }
    ExitCode::SUCCESS
}

/// Measures `backend` in a child process of this same program, which prints its rows.
fn run_child(backend: Backend, runs: usize) -> std::io::Result<()> {
    let status = Command::new(std::env::current_exe()?)
        .args(["runtime", "--rows-only", "--backend", backend.name()])
        .args(["--runs", &runs.to_string()])
        .status()?;
    if status.success() {
        Ok(())
    } else {
        Err(std::io::Error::other(format!("child process {status}")))
    }
}

/// Runs both sides of `case` alternately, swapping which goes first each round, and returns
/// the medians (ginkgo, baseline).
fn measure(backend: Backend, case: &Case, runs: usize) -> (Duration, Duration) {
    eprint!("{} / {}: warm-up", backend.name(), case.name);
    for _ in 0..WARM_UP {
        (case.ginkgo)();
        (case.baseline)();
    }
    let (mut ginkgo, mut baseline) = (Vec::with_capacity(runs), Vec::with_capacity(runs));
    for round in 0..runs {
        if round % 2 == 0 {
            ginkgo.push((case.ginkgo)());
            baseline.push((case.baseline)());
        } else {
            baseline.push((case.baseline)());
            ginkgo.push((case.ginkgo)());
        }
        eprint!(", {}/{}", human(ginkgo[round]), human(baseline[round]));
    }
    eprintln!();
    (median(&ginkgo), median(&baseline))
}
