//! Ginkgo's tutorial, distributed: several processes of one program find each other, elect a
//! leader that hands out numbers to the workers of a queue group, and a hub fans the results
//! out over pub/sub. `status` shows the peers and the leader.
//!
//! ```text
//! cargo run --example cluster                   # one process, on the in-process bus and store
//!
//! # A cluster: a NATS server with JetStream, then as many processes as you like, each in a
//! # run directory of its own (pid file, control socket):
//! nats-server -js &
//! cargo run --example cluster --features nats -- -s cluster.bus=nats -s rundir=/tmp/one
//! cargo run --example cluster --features nats -- -s cluster.bus=nats -s rundir=/tmp/two
//! cargo run --example cluster --features nats -- -s rundir=/tmp/one status
//! ```
//!
//! The settings (group `cluster`, and `nats.*` for the connection):
//!
//! - `cluster.bus`: `local` (the default: in-process, nothing to install) or `nats`
//!   (`nats.url`, default `nats://127.0.0.1:4222`; built with `--features nats`).
//! - `cluster.instance`: this instance's id (default: host name and pid).
//! - `cluster.rate_per_second`: how many numbers the leader hands out per second. It is
//!   network configuration: the key `cluster.rate_per_second` of the store's bucket
//!   `cluster_settings` overrides the file for every instance at once, live (`nats kv put
//!   cluster_settings cluster.rate_per_second 20`), and `config` shows it as
//!   `kv:cluster_settings/cluster.rate_per_second`.
//! - `cluster.lease`: the leader's lease; a new leader takes over within it when the leader
//!   dies.
//!
//! The tree of each process: the connection (on NATS), the settings layer, a worker in the
//! queue group `workers`, the hub, the dispatcher (run only on the leader, by a `Singleton`),
//! the registration (so the others, and `nats micro ls`, see this instance), and the peers
//! (who else is there, and who leads). The next number is kept in the store (bucket
//! `cluster_state`), so a new leader goes on where the old one stopped.

use std::process::ExitCode;
use std::time::Duration;

use ginkgo::Settings;
use ginkgo::bus::{Bus, Responder};
use ginkgo::config::{Config, Live};
use ginkgo::discovery::{Discovery, Event, Registration};
use ginkgo::kv::{BucketOptions, Kv};
use ginkgo::leader::{Leadership, Singleton};
use ginkgo::runner::{KvSettings, Runner};
use ginkgo::service::{Context, Error, Options, Restart, Service};
use serde::{Deserialize, Serialize};

/// The bucket whose keys are settings of every instance (network configuration).
const SETTINGS_BUCKET: &str = "cluster_settings";
/// The bucket where the leader keeps the next number.
const STATE_BUCKET: &str = "cluster_state";
/// The role the dispatcher runs in.
const ROLE: &str = "cluster_dispatcher";

/// The cluster's settings.
#[derive(Settings)]
#[settings(group = "cluster")]
struct ClusterSettings {
    /// "local" (in-process, one process) or "nats" (a NATS server, `nats.url`).
    bus: BusKind,
    /// This instance's id; empty: the host name and the pid.
    #[setting(default = "")]
    instance: String,
    /// How many numbers the leader hands out per second; a live setting.
    #[setting(default = 5, validate = at_least_one)]
    rate_per_second: u32,
    /// The leader's lease: a new leader takes over within it when the leader dies.
    #[setting(default = ginkgo::config::Duration::from_secs(5))]
    lease: ginkgo::config::Duration,
}

/// Which bus and store the cluster runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum BusKind {
    /// In-process: one process, nothing to install.
    #[default]
    Local,
    /// A NATS server (or cluster) with JetStream.
    Nats,
}

fn at_least_one(rate: &u32) -> Result<(), String> {
    if *rate == 0 {
        return Err("must be at least 1".to_owned());
    }
    Ok(())
}

/// A number to work on, and what a worker made of it.
#[derive(Serialize, Deserialize, Debug)]
struct Job {
    number: u64,
}

#[derive(Serialize, Deserialize, Debug)]
struct Done {
    number: u64,
    /// Steps of the Collatz sequence from `number` to 1: some work.
    steps: u32,
    worker: String,
}

fn collatz_steps(mut n: u64) -> u32 {
    let mut steps = 0;
    while n > 1 {
        n = if n.is_multiple_of(2) {
            n / 2
        } else {
            n * 3 + 1
        };
        steps += 1;
    }
    steps
}

/// Hands out numbers to the workers at the live rate; runs on the leader only.
struct Dispatcher {
    bus: Bus,
    kv: Kv,
    settings: Live<ClusterSettings>,
}

#[ginkgo::async_trait]
impl Service for Dispatcher {
    fn name(&self) -> &str {
        "dispatcher"
    }

    fn options(&self) -> Options {
        Options::default().stop_timeout(Duration::from_secs(1))
    }

    async fn start(&mut self, ctx: &Context) -> Result<(), Error> {
        let state = self
            .kv
            .bucket(STATE_BUCKET, BucketOptions::default())
            .await?;
        let mut next = match state.get("next").await? {
            Some(entry) => String::from_utf8_lossy(&entry.value).parse().unwrap_or(1),
            None => 1,
        };
        ginkgo::tracing::info!(next, "leading: handing out numbers");
        let (bus, settings, shutdown) = (self.bus.clone(), self.settings.clone(), ctx.shutdown());
        let (handed, unanswered) = (ctx.counter("handed_out"), ctx.counter("unanswered"));
        ctx.spawn("dispatch", async move {
            loop {
                let pause = Duration::from_secs(1) / settings.get().rate_per_second;
                if shutdown.run(ginkgo::time::sleep(pause)).await.is_none() {
                    return Ok::<(), Error>(());
                }
                let asked = bus
                    .request_json::<_, Done>("cluster.jobs", &Job { number: next }, Duration::from_secs(2))
                    .await;
                match asked {
                    Ok(done) => {
                        handed.inc();
                        ginkgo::tracing::debug!(?done, "answered");
                        next += 1;
                        state.put("next", next.to_string()).await?;
                    }
                    Err(err) => {
                        unanswered.inc();
                        ginkgo::tracing::warn!(number = next, %err, "no worker answered; trying again");
                    }
                }
            }
        });
        Ok(())
    }
}

/// Receives every result (pub/sub: each instance's hub gets them all).
struct Hub {
    bus: Bus,
}

#[ginkgo::async_trait]
impl Service for Hub {
    fn name(&self) -> &str {
        "hub"
    }

    async fn start(&mut self, ctx: &Context) -> Result<(), Error> {
        let mut results = self.bus.subscribe("cluster.results").await?;
        let (seen, note, shutdown) = (ctx.counter("results"), ctx.clone(), ctx.shutdown());
        ctx.spawn("results", async move {
            while let Some(Some(message)) = shutdown.run(results.next()).await {
                match message.json::<Done>() {
                    Ok(done) => {
                        seen.inc();
                        note.set_note(format!(
                            "last result: {} takes {} steps (by {})",
                            done.number, done.steps, done.worker
                        ));
                    }
                    Err(err) => ginkgo::tracing::warn!(%err, "a malformed result"),
                }
            }
        });
        Ok(())
    }
}

/// Who else is there, and who leads: shown in `status`.
struct Peers {
    bus: Bus,
    kv: Kv,
    lease: Duration,
}

/// What the peers service saw change.
enum Change {
    Peer(Result<Event, ginkgo::bus::BusError>),
    Leader(Result<Option<String>, ginkgo::leader::LeaderError>),
}

#[ginkgo::async_trait]
impl Service for Peers {
    fn name(&self) -> &str {
        "peers"
    }

    async fn start(&mut self, ctx: &Context) -> Result<(), Error> {
        let mut peers = Discovery::new(self.bus.clone()).watch("cluster").await?;
        let mut leaders = Leadership::new(&self.kv, ROLE, self.lease)
            .await?
            .watch()
            .await?;
        let (status, shutdown) = (ctx.clone(), ctx.shutdown());
        ctx.spawn("watch", async move {
            let mut leader: Option<String> = None;
            loop {
                let change = shutdown
                    .run(ginkgo::future::or(
                        async { Change::Peer(peers.next().await) },
                        async { Change::Leader(leaders.next().await) },
                    ))
                    .await;
                match change {
                    None => return Ok::<(), Error>(()),
                    Some(Change::Peer(Ok(Event::Joined(peer)))) => {
                        ginkgo::tracing::info!(peer = %peer.id, "a peer joined");
                    }
                    Some(Change::Peer(Ok(Event::Left(peer, why)))) => {
                        ginkgo::tracing::info!(peer = %peer.id, ?why, "a peer left");
                    }
                    Some(Change::Leader(Ok(now))) => {
                        ginkgo::tracing::info!(leader = ?now, "the leader changed");
                        leader = now;
                    }
                    // The bus or the store failed (the connection is down): the watch fails
                    // this service, and the tree restarts it.
                    Some(Change::Peer(Err(err))) => return Err(err.into()),
                    Some(Change::Leader(Err(err))) => return Err(err.into()),
                }
                let ids: Vec<String> = peers.instances().into_iter().map(|i| i.id).collect();
                status.set_note(format!(
                    "peers: {}; leader: {}",
                    ids.join(", "),
                    leader.as_deref().unwrap_or("(none)")
                ));
            }
        });
        Ok(())
    }
}

/// This instance's id: the setting, or the host name and pid (as a token the protocols take).
fn instance_id(settings: &ClusterSettings) -> String {
    let id = if settings.instance.is_empty() {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|name| name.trim().to_owned())
            .unwrap_or_else(|_| "host".to_owned());
        format!("{host}-{}", std::process::id())
    } else {
        settings.instance.clone()
    };
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// One instance of the cluster: its children start in this order and stop in reverse.
struct ClusterNode {
    config: Config,
    settings: Live<ClusterSettings>,
    bus: Bus,
    kv: Kv,
    /// The NATS connection, started first; `None` on the in-process bus.
    connection: Option<Connect>,
}

#[ginkgo::async_trait]
impl Service for ClusterNode {
    fn name(&self) -> &str {
        "cluster"
    }

    fn init(&mut self, ctx: &Context) {
        let settings = self.settings.get();
        let id = instance_id(&settings);
        let lease = settings.lease.0;
        if let Some(connect) = self.connection.take() {
            connect(ctx);
        }
        ctx.add_child(KvSettings::new(
            &self.config,
            self.kv.clone(),
            SETTINGS_BUCKET,
        ));
        let (bus, worker) = (self.bus.clone(), id.clone());
        ctx.supervise(Restart::Permanent, move || {
            let (results, worker) = (bus.clone(), worker.clone());
            Responder::new("worker", bus.clone(), "cluster.jobs", move |job: Job| {
                let (results, worker) = (results.clone(), worker.clone());
                async move {
                    let done = Done {
                        number: job.number,
                        steps: collatz_steps(job.number),
                        worker,
                    };
                    results
                        .publish_json("cluster.results", &done)
                        .await
                        .map_err(|err| err.to_string())?;
                    Ok(done)
                }
            })
            .queue("workers")
        });
        let bus = self.bus.clone();
        ctx.supervise(Restart::Permanent, move || Hub { bus: bus.clone() });
        let (bus, kv, live) = (self.bus.clone(), self.kv.clone(), self.settings.clone());
        ctx.add_child(
            Singleton::new(self.kv.clone(), ROLE, lease, move || Dispatcher {
                bus: bus.clone(),
                kv: kv.clone(),
                settings: live.clone(),
            })
            .candidate(id.clone()),
        );
        ctx.add_child(
            Registration::new(self.bus.clone(), "cluster", env!("CARGO_PKG_VERSION"))
                .id(id.clone())
                .description("Ginkgo's tutorial, distributed")
                .metadata("pid", std::process::id().to_string()),
        );
        let (bus, kv) = (self.bus.clone(), self.kv.clone());
        ctx.supervise(Restart::Permanent, move || Peers {
            bus: bus.clone(),
            kv: kv.clone(),
            lease,
        });
    }
}

/// Adds the connection service the bus and store need to the tree.
type Connect = Box<dyn FnOnce(&Context) + Send>;

/// The bus and store of `cluster.bus`, and the connection service they need.
type Transport = (Bus, Kv, Option<Connect>);

fn transport(config: &Config, settings: &ClusterSettings) -> Result<Transport, Error> {
    if settings.bus == BusKind::Local {
        return Ok((Bus::local(), Kv::local(), None));
    }
    nats_transport(config)
}

#[cfg(feature = "nats")]
fn nats_transport(config: &Config) -> Result<Transport, Error> {
    let settings = config.get::<ginkgo::nats::NatsSettings>()?.get();
    let nats = ginkgo::nats::Nats::new(ginkgo::nats::NatsOptions::from_settings(&settings)?);
    let (bus, kv) = (nats.bus(), nats.kv());
    let connect: Connect = Box::new(move |ctx| {
        ctx.add_child(nats);
    });
    Ok((bus, kv, Some(connect)))
}

#[cfg(not(feature = "nats"))]
fn nats_transport(_config: &Config) -> Result<Transport, Error> {
    Err("cluster.bus = \"nats\" needs the nats feature: cargo run --example cluster --features nats".into())
}

fn main() -> ExitCode {
    Runner::new("cluster")
        .about("Ginkgo's tutorial, distributed: discovery, leadership, a queue group and a hub")
        .run(|config| {
            let settings = config.get::<ClusterSettings>()?;
            let (bus, kv, connection) = transport(config, &settings.get())?;
            Ok(ClusterNode {
                config: config.clone(),
                settings,
                bus,
                kv,
                connection,
            })
        })
}
