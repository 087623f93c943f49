//! A program running a `Singleton` on NATS whose child marks, from the outside's point of
//! view, that it runs: the file `probe.markers/running.<pid>` exists from the child's start to
//! its stop. The cluster tests run several of these against a NATS cluster, kill servers and
//! instances, and check that never two live processes have a marker.

use std::path::PathBuf;
use std::process::ExitCode;

use ginkgo::Settings;
use ginkgo::config::Duration;
use ginkgo::leader::Singleton;
use ginkgo::nats::{Nats, NatsOptions, NatsSettings};
use ginkgo::runner::Runner;
use ginkgo::service::{Context, Error, Options, Service};

/// Settings of the probe.
#[derive(Settings)]
#[settings(group = "probe")]
struct ProbeSettings {
    /// Where the running child keeps its marker.
    #[setting(default = PathBuf::from("."))]
    markers: PathBuf,
    /// The role's lease.
    #[setting(default = Duration::from_secs(2))]
    lease: Duration,
    /// The candidate's id.
    #[setting(default = "probe")]
    id: String,
}

/// The child: a marker file while it runs.
struct Marker {
    file: PathBuf,
}

#[ginkgo::async_trait]
impl Service for Marker {
    fn name(&self) -> &str {
        "marker"
    }

    fn options(&self) -> Options {
        Options::default().stop_timeout(std::time::Duration::from_millis(500))
    }

    async fn start(&mut self, _ctx: &Context) -> Result<(), Error> {
        std::fs::write(&self.file, std::process::id().to_string())?;
        ginkgo::tracing::info!(file = %self.file.display(), "marker written");
        Ok(())
    }

    async fn stop(&mut self, _ctx: &Context) -> Result<(), Error> {
        std::fs::remove_file(&self.file)?;
        ginkgo::tracing::info!("marker removed");
        Ok(())
    }
}

struct Probe {
    nats: Option<Nats>,
    singleton: Option<Singleton<Marker>>,
}

#[ginkgo::async_trait]
impl Service for Probe {
    fn name(&self) -> &str {
        "probe"
    }

    fn init(&mut self, ctx: &Context) {
        if let (Some(nats), Some(singleton)) = (self.nats.take(), self.singleton.take()) {
            ctx.add_child(nats);
            ctx.add_child(singleton);
        }
    }
}

fn main() -> ExitCode {
    Runner::new("probe").run(|config| {
        let probe = config.get::<ProbeSettings>()?.get();
        let nats = config.get::<NatsSettings>()?.get();
        let nats = Nats::new(NatsOptions::from_settings(&nats)?);
        let file = probe
            .markers
            .join(format!("running.{}", std::process::id()));
        let singleton = Singleton::new(nats.kv(), "probe", probe.lease.0, move || Marker {
            file: file.clone(),
        })
        .candidate(probe.id.clone());
        Ok(Probe {
            nats: Some(nats),
            singleton: Some(singleton),
        })
    })
}
