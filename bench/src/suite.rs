//! What the `runtime`, `echo` and `tls` suites share: the backends, the options, one child
//! process per backend, and alternating measurement: median times, and the median and range of
//! the per-round ratios.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Duration;

use crate::results::{Output, Results, SPEED_OF_TIMES};
use crate::stats::{Summary, human, median};

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
    measure: &'static str,
    name: String,
    ginkgo: fn() -> Duration,
    baseline: fn() -> Duration,
}

impl Case {
    /// A benchmark called `name` in tables and `measure` (the same on every backend) in saved
    /// results, comparing `ginkgo` with `baseline`.
    pub(crate) fn new(
        measure: &'static str,
        name: String,
        ginkgo: fn() -> Duration,
        baseline: fn() -> Duration,
    ) -> Self {
        Self {
            measure,
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
    /// What the suite compares, one line, for saved results and charts.
    pub(crate) title: &'static str,
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
    /// Internal, for those child processes: write the results to this file.
    #[arg(long, hide = true, value_name = "FILE")]
    pub(crate) results_to: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) output: Output,
}

/// Parses a count that must be at least 1 (clap's own range check would print `1..2^64-1`).
pub(crate) fn positive(text: &str) -> Result<usize, String> {
    match text.parse() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err("needs a positive number".to_owned()),
    }
}

/// Runs `suite` and prints the table, one row as soon as it is measured; then writes what
/// `--save` and `--plot` ask for.
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
             {WARM_UP} warm-up), {workers} worker threads, one process per backend. \
             ratio = baseline time / ginkgo time, the median of the per-round ratios \
             (min–max beside it).\n",
            options.runs
        );
        println!("| benchmark | backend | ginkgo | baseline | ratio | min–max |");
        println!("| --- | --- | ---: | ---: | ---: | ---: |");
        let _ = std::io::stdout().flush();
    }
    let mut results = Results::new(suite.command, suite.title, SPEED_OF_TIMES);
    match options.backend {
        Some(backend) => measure_backend(suite, backend, options.runs, &mut results),
        None => {
            for backend in Backend::ALL {
                match run_child(suite, backend, options.runs) {
                    Ok(child) => results.merge(child),
                    Err(err) => {
                        eprintln!("ginkgo-bench: {} benchmarks failed: {err}", backend.name());
                        return ExitCode::FAILURE;
                    }
                }
            }
        }
    }
    let written = match &options.results_to {
        Some(path) => results.write(path),
        None => options.output.write(&results),
    };
    if let Err(err) = written {
        eprintln!("ginkgo-bench {}: {err}", suite.command);
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

/// Measures every case of `backend` in this process, printing a row for each and adding it
/// to `results`.
fn measure_backend(suite: &Suite, backend: Backend, runs: usize, results: &mut Results) {
    for case in (suite.cases)(backend) {
        let (ginkgo, baseline) = measure(backend, &case, runs);
        // Speed is 1/time, so ginkgo's speed over the baseline's is baseline / ginkgo.
        let secs =
            |times: &[Duration]| -> Vec<f64> { times.iter().map(Duration::as_secs_f64).collect() };
        let ratios = Summary::of_pairs(&secs(&baseline), &secs(&ginkgo));
        println!(
            "| {} | {} | {} | {} | {:.2} | {} |",
            case.name,
            backend.name(),
            human(median(&ginkgo)),
            human(median(&baseline)),
            ratios.median,
            ratios.range(),
        );
        let _ = std::io::stdout().flush();
        results.add(case.measure, backend.name(), ratios);
    }
}

/// Measures `backend` in a child process of this same program, which prints its rows, and
/// returns the results it wrote.
fn run_child(suite: &Suite, backend: Backend, runs: usize) -> Result<Results, String> {
    let file = tempfile::NamedTempFile::new().map_err(|err| format!("a temporary file: {err}"))?;
    let status = Command::new(std::env::current_exe().map_err(|err| err.to_string())?)
        .args([suite.command, "--rows-only", "--backend", backend.name()])
        .args(["--runs", &runs.to_string()])
        .arg("--results-to")
        .arg(file.path())
        .status()
        .map_err(|err| format!("cannot start the child process: {err}"))?;
    if !status.success() {
        return Err(format!("child process {status}"));
    }
    Results::read(Path::new(file.path()))
}

/// Runs both sides of `case` alternately, swapping which goes first each round, and returns
/// the times of each round (ginkgo, baseline).
fn measure(backend: Backend, case: &Case, runs: usize) -> (Vec<Duration>, Vec<Duration>) {
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
    (ginkgo, baseline)
}
