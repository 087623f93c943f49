//! The `lifecycle` suite: start a tree of services to ready, then stop it, against
//! tokio-graceful-shutdown running the same tree of nested subsystems on tokio; plus the memory
//! an idle service costs.
//!
//! The tree has `n` nodes with fan-out 10 in breadth-first order: node `i` has the children
//! `10i+1 ..= 10i+10` that are below `n`. Each ginkgo node is a service with default hooks that
//! adds its children in `init`; each baseline node is a subsystem that starts its children,
//! counts itself started, and waits for shutdown.

use std::io::Write;
use std::process::{Command, ExitCode};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ginkgo_api::Runtime;
use ginkgo_api::service::{Context, Service, async_trait};
use ginkgo_backend_async_std::AsyncStd;
use ginkgo_backend_smol::Smol;
use ginkgo_backend_threads::Threads;
use ginkgo_backend_tokio::Tokio;
use tokio_graceful_shutdown::{IntoSubsystem, SubsystemBuilder, SubsystemHandle, Toplevel};

type BoxedError = Box<dyn std::error::Error + Send + Sync + 'static>;

use crate::results::{Output, Results, SPEED_OF_TIMES};
use crate::stats::{Summary, human, median};

const FANOUT: usize = 10;
const BACKENDS: [&str; 4] = ["tokio", "async-std", "smol", "threads"];

/// The tree sizes measured on a backend (threads runs a thread per task, but a service tree
/// without tasks needs none; the issue asks for 1,000 there).
fn sizes(backend: &str) -> &'static [usize] {
    if backend == "threads" {
        &[1_000]
    } else {
        &[10_000, 100_000]
    }
}

fn children(id: usize, n: usize) -> impl Iterator<Item = usize> {
    (id * FANOUT + 1..=id * FANOUT + FANOUT).filter(move |c| *c < n)
}

/// A ginkgo service node: no hooks of its own, just children.
struct Node {
    id: usize,
    n: usize,
    name: String,
}

impl Node {
    fn new(id: usize, n: usize) -> Self {
        Self {
            id,
            n,
            name: format!("s{id}"),
        }
    }
}

#[async_trait]
impl Service for Node {
    fn name(&self) -> &str {
        &self.name
    }

    fn init(&mut self, ctx: &Context) {
        for child in children(self.id, self.n) {
            ctx.add_child(Node::new(child, self.n));
        }
    }
}

/// Builds, starts (to ready) and stops a tree of `n` services; returns the time taken.
fn ginkgo_tree<R: Runtime>(n: usize) -> Duration {
    ginkgo_api::block_on::<R, _>(async move {
        let start = Instant::now();
        let tree = ginkgo_api::service::tree::<R>(Node::new(0, n));
        tree.start().await.expect("the tree starts");
        assert_eq!(tree.snapshot().count(), n);
        assert!(tree.stop().await.is_clean());
        start.elapsed()
    })
}

/// Counts started subsystems and signals when all are.
struct Started {
    count: AtomicUsize,
    all: tokio::sync::Notify,
    n: usize,
}

struct Subsystem {
    id: usize,
    started: Arc<Started>,
}

impl IntoSubsystem<BoxedError> for Subsystem {
    async fn run(self, subsys: &mut SubsystemHandle) -> Result<(), BoxedError> {
        for child in children(self.id, self.started.n) {
            let node = Subsystem {
                id: child,
                started: self.started.clone(),
            };
            subsys.start(SubsystemBuilder::new(
                format!("s{child}"),
                node.into_subsystem(),
            ));
        }
        if self.started.count.fetch_add(1, Ordering::AcqRel) + 1 == self.started.n {
            self.started.all.notify_one();
        }
        subsys.on_shutdown_requested().await;
        Ok(())
    }
}

/// The same tree on tokio-graceful-shutdown: started until every subsystem runs, then shut
/// down; returns the time taken.
fn baseline_tree(n: usize) -> Duration {
    let runtime = crate::runtime::native::tokio::runtime();
    let took = runtime.block_on(async move {
        let start = Instant::now();
        let started = Arc::new(Started {
            count: AtomicUsize::new(0),
            all: tokio::sync::Notify::new(),
            n,
        });
        let root = Subsystem {
            id: 0,
            started: started.clone(),
        };
        let toplevel = Toplevel::new(async move |s: &mut SubsystemHandle| {
            s.start(SubsystemBuilder::new("s0", root.into_subsystem()));
            started.all.notified().await;
            s.request_shutdown();
        });
        toplevel
            .handle_shutdown_requests(Duration::from_secs(120))
            .await
            .expect("the baseline tree shuts down cleanly");
        start.elapsed()
    });
    runtime.shutdown_background();
    took
}

/// Resident memory of this process, in bytes.
fn rss() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: usize = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

/// Bytes per idle ready service: resident memory grown by building and starting `n` services
/// in a fresh process.
fn ginkgo_memory<R: Runtime>(n: usize) -> f64 {
    ginkgo_api::block_on::<R, _>(async move {
        let before = rss();
        let tree = ginkgo_api::service::tree::<R>(Node::new(0, n));
        tree.start().await.expect("the tree starts");
        let after = rss();
        tree.stop().await;
        after.saturating_sub(before) as f64 / n as f64
    })
}

/// Bytes per idle running subsystem of the baseline, measured the same way.
fn baseline_memory(n: usize) -> f64 {
    let runtime = crate::runtime::native::tokio::runtime();
    runtime.block_on(async move {
        let before = rss();
        let started = Arc::new(Started {
            count: AtomicUsize::new(0),
            all: tokio::sync::Notify::new(),
            n,
        });
        let root = Subsystem {
            id: 0,
            started: started.clone(),
        };
        let grown = Arc::new(AtomicUsize::new(0));
        let g = grown.clone();
        Toplevel::new(async move |s: &mut SubsystemHandle| {
            s.start(SubsystemBuilder::new("s0", root.into_subsystem()));
            started.all.notified().await;
            g.store(rss().saturating_sub(before), Ordering::SeqCst);
            s.request_shutdown();
        })
        .handle_shutdown_requests(Duration::from_secs(120))
        .await
        .expect("the baseline tree shuts down cleanly");
        grown.load(Ordering::SeqCst) as f64 / n as f64
    })
}

/// Command-line options of the `lifecycle` subcommand.
#[derive(Debug, clap::Args)]
#[command(args_override_self = true)]
pub(crate) struct Options {
    /// Measure only this backend (default: each).
    #[arg(long, value_name = "NAME", value_parser = clap::builder::PossibleValuesParser::new(BACKENDS))]
    pub(crate) backend: Option<String>,
    /// Timed runs per side; the table shows their median.
    #[arg(long, value_name = "N", default_value_t = 5, value_parser = crate::suite::positive)]
    pub(crate) runs: usize,
    /// Internal: measure one memory figure in this (fresh) process and print it.
    #[arg(long, hide = true)]
    pub(crate) memory: Option<String>,
    #[command(flatten)]
    pub(crate) output: Output,
}

fn time_ginkgo(backend: &str, n: usize) -> Duration {
    match backend {
        "tokio" => ginkgo_tree::<Tokio>(n),
        "async-std" => ginkgo_tree::<AsyncStd>(n),
        "smol" => ginkgo_tree::<Smol>(n),
        _ => ginkgo_tree::<Threads>(n),
    }
}

fn memory_of(what: &str, n: usize) -> f64 {
    match what {
        "tokio" => ginkgo_memory::<Tokio>(n),
        "async-std" => ginkgo_memory::<AsyncStd>(n),
        "smol" => ginkgo_memory::<Smol>(n),
        "threads" => ginkgo_memory::<Threads>(n),
        _ => baseline_memory(n),
    }
}

/// Runs the suite: the times of each backend in this process (rows printed as measured), one
/// fresh child process per memory figure; then writes what `--save` and `--plot` ask for.
pub(crate) fn run(options: &Options) -> ExitCode {
    if let Some(what) = &options.memory {
        let n = if what == "threads" { 1_000 } else { 100_000 };
        println!("{:.0}", memory_of(what, n));
        return ExitCode::SUCCESS;
    }
    let backends: Vec<&str> = match &options.backend {
        Some(b) => vec![b.as_str()],
        None => BACKENDS.to_vec(),
    };
    println!(
        "Start to ready, then stop, a tree with fan-out 10; baseline: tokio-graceful-shutdown \
         on tokio. Median of {} runs per side, alternating, after a warm-up. ratio = baseline \
         time / ginkgo time, the median of the per-round ratios (min–max beside it).\n",
        options.runs
    );
    println!("| benchmark | backend | ginkgo | baseline | ratio | min–max |");
    println!("| --- | --- | ---: | ---: | ---: | ---: |");
    let mut results = Results::new(
        "lifecycle",
        "start+stop of a service tree vs. tokio-graceful-shutdown on tokio",
        SPEED_OF_TIMES,
    );
    for backend in &backends {
        for &n in sizes(backend) {
            eprint!("{backend} / {n} services: warm-up");
            time_ginkgo(backend, n);
            baseline_tree(n);
            let (mut ours, mut theirs) = (Vec::new(), Vec::new());
            for round in 0..options.runs {
                if round % 2 == 0 {
                    ours.push(time_ginkgo(backend, n));
                    theirs.push(baseline_tree(n));
                } else {
                    theirs.push(baseline_tree(n));
                    ours.push(time_ginkgo(backend, n));
                }
                eprint!(", {}/{}", human(ours[round]), human(theirs[round]));
            }
            eprintln!();
            let secs = |times: &[Duration]| -> Vec<f64> {
                times.iter().map(Duration::as_secs_f64).collect()
            };
            let ratios = Summary::of_pairs(&secs(&theirs), &secs(&ours));
            let measure = format!("start+stop {n} services");
            println!(
                "| {measure} | {backend} | {} | {} | {:.2} | {} |",
                human(median(&ours)),
                human(median(&theirs)),
                ratios.median,
                ratios.range(),
            );
            let _ = std::io::stdout().flush();
            results.add(&measure, backend, ratios);
        }
    }
    println!(
        "\nMemory per idle service (resident memory grown by a started tree, fresh process):\n"
    );
    println!("| backend | services | ginkgo bytes/service | baseline bytes/subsystem |");
    println!("| --- | ---: | ---: | ---: |");
    for backend in &backends {
        let n = if *backend == "threads" {
            1_000
        } else {
            100_000
        };
        let ours = memory_child(backend);
        let theirs = memory_child("baseline");
        match (ours, theirs) {
            (Ok(ours), Ok(theirs)) => println!("| {backend} | {n} | {ours} | {theirs} |"),
            (Err(err), _) | (_, Err(err)) => {
                eprintln!("ginkgo-bench: memory measurement failed: {err}");
                return ExitCode::FAILURE;
            }
        }
    }
    if let Err(err) = options.output.write(&results) {
        eprintln!("ginkgo-bench lifecycle: {err}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

fn memory_child(what: &str) -> std::io::Result<String> {
    let output = Command::new(std::env::current_exe()?)
        .args(["lifecycle", "--memory", what])
        .output()?;
    if !output.status.success() {
        return Err(std::io::Error::other(format!(
            "child process {}: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        )));
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}
