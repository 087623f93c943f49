//! What the `runtime` and `echo` suites share: the backends, the options, one child process
//! per backend, and alternating measurement by median time.

use std::io::Write;
use std::process::{Command, ExitCode};
use std::time::Duration;

use crate::stats::{human, median};

/// Untimed runs of each side before measuring.
const WARM_UP: usize = 1;

/// A backend that a suite compares.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Backend {
    Tokio,
    AsyncStd,
    Smol,
    Threads,
}

impl Backend {
    /// Every backend, in table order.
    pub(crate) const ALL: [Backend; 4] = [Self::Tokio, Self::AsyncStd, Self::Smol, Self::Threads];

    /// The name used on the command line and in tables.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Tokio => "tokio",
            Self::AsyncStd => "async-std",
            Self::Smol => "smol",
            Self::Threads => "threads",
        }
    }
}

/// One benchmark: each function runs the work once and returns the time it took.
pub(crate) struct Case {
    name: String,
    ginkgo: fn() -> Duration,
    baseline: fn() -> Duration,
}

impl Case {
    /// A benchmark called `name` comparing `ginkgo` with `baseline`.
    pub(crate) fn new(name: String, ginkgo: fn() -> Duration, baseline: fn() -> Duration) -> Self {
        Self {
            name,
            ginkgo,
            baseline,
        }
    }
}

/// A suite: its subcommand and the cases it measures on each backend.
pub(crate) struct Suite {
    /// The subcommand, which child processes are started with.
    pub(crate) command: &'static str,
    /// What the table compares, printed above it (may be empty).
    pub(crate) intro: &'static str,
    /// The cases of one backend.
    pub(crate) cases: fn(Backend) -> Vec<Case>,
}

/// Command-line options of a suite (`runtime`, `echo`).
#[derive(Debug, clap::Args)]
#[command(args_override_self = true)]
pub(crate) struct Options {
    /// Measure only this backend, in this process (default: each, in a child process of its
    /// own).
    #[arg(long, value_name = "NAME")]
    pub(crate) backend: Option<Backend>,
    /// Timed runs per side; the table shows their median.
    #[arg(long, value_name = "N", default_value_t = 7, value_parser = positive)]
    pub(crate) runs: usize,
    /// Internal, for those child processes: print only the table rows.
    #[arg(long, hide = true)]
    pub(crate) rows_only: bool,
}

/// Parses a count that must be at least 1 (clap's own range check would print `1..2^64-1`).
pub(crate) fn positive(text: &str) -> Result<usize, String> {
    match text.parse() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err("needs a positive number".to_owned()),
    }
}

/// Runs `suite` and prints the table, one row as soon as it is measured.
///
/// Without `--backend`, each backend runs in a fresh child process, so that no runtime's
/// leftover threads (async-std's and smol's executors live as long as the process, and their
/// idle workers drive the shared async-io reactor) affect another backend's numbers.
pub(crate) fn run(suite: &Suite, options: &Options) -> ExitCode {
    if !options.rows_only {
        if !suite.intro.is_empty() {
            println!("{}\n", suite.intro);
        }
        let workers = ginkgo_backend_kit::worker_count();
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
            if let Err(err) = run_child(suite, backend, options.runs) {
                eprintln!("ginkgo-bench: {} benchmarks failed: {err}", backend.name());
                return ExitCode::FAILURE;
            }
        }
        return ExitCode::SUCCESS;
    };
    for case in (suite.cases)(backend) {
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
fn run_child(suite: &Suite, backend: Backend, runs: usize) -> std::io::Result<()> {
    let status = Command::new(std::env::current_exe()?)
        .args([suite.command, "--rows-only", "--backend", backend.name()])
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
