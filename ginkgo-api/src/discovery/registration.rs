//! [`Registration`]: the service that makes an instance discoverable.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::SystemTime;

use futures_lite::StreamExt as _;
use serde_json::Value;

use super::{ANNOUNCE, Instance, PREFIX, check_name, check_version};
use crate::Runtime;
use crate::bus::{Bus, Message, Subscription};
use crate::service::{Context, Error, Service, async_trait};

/// Registers an instance of a named service while it runs: it answers the NATS services
/// protocol (`$SRV.PING|INFO|STATS`, for all services, for its name, and for its id) and
/// announces itself when it starts and stops; see the [module docs](super).
///
/// Its counter `discovery_requests` counts the requests it answered.
pub struct Registration<R> {
    bus: Bus<R>,
    instance: Instance,
    /// Set when it stops, so that no answer goes out after it announced that it left.
    leaving: Arc<AtomicBool>,
}

impl<R> std::fmt::Debug for Registration<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registration")
            .field("instance", &self.instance)
            .finish_non_exhaustive()
    }
}

impl<R: Runtime> Registration<R> {
    /// Registers an instance of `name` (`A-Z a-z 0-9 - _`) at `version` (semantic versioning:
    /// `1.2.3`) on `bus`, with a new random id; both are checked when it starts.
    pub fn new(bus: Bus<R>, name: impl Into<String>, version: impl Into<String>) -> Self {
        let id = crate::bus::random_token();
        Self {
            bus,
            instance: Instance {
                name: name.into(),
                id,
                version: version.into(),
                description: String::new(),
                endpoints: BTreeMap::new(),
                metadata: BTreeMap::new(),
            },
            leaving: Arc::default(),
        }
    }

    /// With the id `id` instead of a random one (ids must be unique).
    #[must_use]
    pub fn id(mut self, id: impl Into<String>) -> Self {
        self.instance.id = id.into();
        self
    }

    /// With a description of what the service does.
    #[must_use]
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.instance.description = description.into();
        self
    }

    /// With the endpoint `name` at `address` (`http` at `http://10.0.0.5:8080`, say).
    #[must_use]
    pub fn endpoint(mut self, name: impl Into<String>, address: impl Into<String>) -> Self {
        self.instance.endpoints.insert(name.into(), address.into());
        self
    }

    /// With the metadata `key` = `value`.
    #[must_use]
    pub fn metadata(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.instance.metadata.insert(key.into(), value.into());
        self
    }

    /// The instance as others see it.
    pub fn instance(&self) -> &Instance {
        &self.instance
    }

    async fn announce(&self, event: &str) -> Result<(), crate::bus::BusError> {
        let mut announcement = self.instance.info_json();
        announcement["event"] = Value::from(event);
        self.bus
            .publish_json(&format!("{ANNOUNCE}.{}", self.instance.name), &announcement)
            .await
    }
}

/// The three subjects a verb is asked on: for all, for the name, for the instance.
async fn verb<R: Runtime>(
    bus: &Bus<R>,
    verb: &str,
    instance: &Instance,
) -> Result<impl futures_core::Stream<Item = Message> + Send + use<R>, Error> {
    let subscribe = |subject: String| async move {
        bus.subscribe(&subject)
            .await
            .map_err(|err| format!("cannot subscribe to {subject}: {err}"))
    };
    let all: Subscription = subscribe(format!("{PREFIX}.{verb}")).await?;
    let name = subscribe(format!("{PREFIX}.{verb}.{}", instance.name)).await?;
    let id = subscribe(format!("{PREFIX}.{verb}.{}.{}", instance.name, instance.id)).await?;
    Ok(all.or(name).or(id))
}

#[async_trait]
impl<R: Runtime> Service for Registration<R> {
    fn name(&self) -> &str {
        "discovery"
    }

    async fn start(&mut self, ctx: &Context) -> Result<(), Error> {
        check_name(&self.instance.name)?;
        check_version(&self.instance.version)?;
        self.leaving.store(false, Ordering::SeqCst);
        let started = SystemTime::now();
        let requests = ctx.counter("discovery_requests");
        for name in ["PING", "INFO", "STATS"] {
            let mut asked = verb(&self.bus, name, &self.instance).await?;
            let answer = match name {
                "PING" => self.instance.ping_json(),
                "INFO" => self.instance.info_json(),
                _ => self.instance.stats_json(started),
            };
            let answer = serde_json::to_vec(&answer)?;
            let (bus, leaving, requests, shutdown) = (
                self.bus.clone(),
                self.leaving.clone(),
                requests.clone(),
                ctx.shutdown(),
            );
            ctx.spawn(name, async move {
                while let Some(Some(request)) = shutdown.run(asked.next()).await {
                    if leaving.load(Ordering::SeqCst) {
                        break;
                    }
                    if request.reply.is_none() {
                        continue;
                    }
                    requests.inc();
                    if let Err(err) = bus.respond(&request, answer.clone()).await {
                        tracing::warn!(subject = %request.subject, error = %err, "cannot answer a discovery request");
                    }
                }
            });
        }
        self.announce("joined").await?;
        tracing::info!(service = ctx.path(), name = %self.instance.name, id = %self.instance.id, "registered");
        Ok(())
    }

    async fn stop(&mut self, ctx: &Context) -> Result<(), Error> {
        self.leaving.store(true, Ordering::SeqCst);
        tracing::info!(service = ctx.path(), name = %self.instance.name, id = %self.instance.id, "deregistering");
        self.announce("left").await?;
        Ok(())
    }
}
