//! Service discovery on the [bus](crate::bus): an instance registers a named service (version,
//! endpoints, metadata) while it runs; others list and watch the instances of a service.
//!
//! It speaks the **NATS services protocol** (`$SRV.PING|INFO|STATS`, the "micro" protocol of
//! `nats micro ls` and every NATS client's service API), on whatever bus it is given: on a
//! [`Nats`](https://docs.rs/ginkgo-nats) bus NATS tooling sees ginkgo services, and ginkgo
//! sees services written with other NATS clients; on the in-process bus the same code finds
//! the services of one process.
//!
//! - [`Registration`] is a service: it answers `$SRV.PING`, `$SRV.PING.<name>` and
//!   `$SRV.PING.<name>.<id>` (and the same for `INFO` and `STATS`) while it runs, and
//!   announces itself on `$SRV.GINKGO.<name>` when it starts and stops. Put it in the tree
//!   **after** the servers it announces: children start in order and stop in reverse, so it is
//!   registered only once they are ready, and deregistered before their listeners close.
//! - The **endpoints** of an instance are addresses (`http` = `http://10.0.0.5:8080`): on the
//!   wire they are metadata entries `endpoint.<name>`, since the protocol's own endpoints are
//!   NATS subjects.
//! - [`Discovery::list`] gathers the answers to `$SRV.INFO.<name>` within a window (250 ms by
//!   default). [`Discovery::watch`] gives [`Event::Joined`] and [`Event::Left`]: at once for
//!   ginkgo instances (their announcements), and by polling every `refresh` (1 s) for any
//!   instance; one not heard from for `expire_after` (3 s) has left, as
//!   [`Left::Expired`].
//!
//! # Examples
//!
//! ```
//! # fn demo<R: ginkgo_api::Runtime>() {
//! use ginkgo_api::bus::Bus;
//! use ginkgo_api::discovery::{Discovery, Registration};
//!
//! ginkgo_api::block_on::<R, _>(async {
//!     let bus = Bus::<R>::isolated();
//!     let registration = Registration::new(bus.clone(), "orders", "1.2.0")
//!         .endpoint("http", "http://127.0.0.1:8080")
//!         .metadata("zone", "eu-1");
//!     let tree = ginkgo_api::service::tree::<R>(registration);
//!     tree.start().await.unwrap();
//!     let found = Discovery::new(bus).list("orders").await.unwrap();
//!     assert_eq!(found[0].endpoints["http"], "http://127.0.0.1:8080");
//!     tree.stop().await;
//! });
//! # }
//! ```

mod registration;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;
use std::time::{Duration, Instant, SystemTime};

use serde_json::{Value, json};

pub use registration::Registration;

use crate::Runtime;
use crate::bus::{Bus, BusError, Message, Subscription};

/// The prefix of the services protocol's subjects.
const PREFIX: &str = "$SRV";

/// Where ginkgo instances announce that they joined or left: `$SRV.GINKGO.<name>`.
const ANNOUNCE: &str = "$SRV.GINKGO";

/// The metadata prefix of an endpoint's address.
const ENDPOINT: &str = "endpoint.";

/// One instance of a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    /// The service's name.
    pub name: String,
    /// This instance's id (unique).
    pub id: String,
    /// The service's version (semantic versioning).
    pub version: String,
    /// What the service does.
    pub description: String,
    /// Its addresses, by endpoint name.
    pub endpoints: BTreeMap<String, String>,
    /// The rest of its metadata.
    pub metadata: BTreeMap<String, String>,
}

impl Instance {
    /// The protocol's metadata: the endpoints as `endpoint.<name>`, then the rest.
    fn wire_metadata(&self) -> BTreeMap<String, String> {
        let mut metadata = self.metadata.clone();
        for (name, address) in &self.endpoints {
            metadata.insert(format!("{ENDPOINT}{name}"), address.clone());
        }
        metadata
    }

    fn ping_json(&self) -> Value {
        json!({
            "type": "io.nats.micro.v1.ping_response",
            "name": self.name,
            "id": self.id,
            "version": self.version,
            "metadata": self.wire_metadata(),
        })
    }

    fn info_json(&self) -> Value {
        json!({
            "type": "io.nats.micro.v1.info_response",
            "name": self.name,
            "id": self.id,
            "version": self.version,
            "description": self.description,
            "metadata": self.wire_metadata(),
            "endpoints": [],
        })
    }

    fn stats_json(&self, started: SystemTime) -> Value {
        json!({
            "type": "io.nats.micro.v1.stats_response",
            "name": self.name,
            "id": self.id,
            "version": self.version,
            "metadata": self.wire_metadata(),
            "started": rfc3339(started),
            "endpoints": [],
        })
    }

    /// An instance from a `PING` or `INFO` answer (or an announcement).
    fn from_json(payload: &[u8]) -> Option<Self> {
        let value: Value = serde_json::from_slice(payload).ok()?;
        let text = |field: &str| value.get(field).and_then(Value::as_str).map(str::to_owned);
        let mut instance = Instance {
            name: text("name")?,
            id: text("id")?,
            version: text("version").unwrap_or_default(),
            description: text("description").unwrap_or_default(),
            endpoints: BTreeMap::new(),
            metadata: BTreeMap::new(),
        };
        if let Some(Value::Object(metadata)) = value.get("metadata") {
            for (key, value) in metadata {
                let Some(value) = value.as_str() else {
                    continue;
                };
                match key.strip_prefix(ENDPOINT) {
                    Some(endpoint) => instance.endpoints.insert(endpoint.to_owned(), value.into()),
                    None => instance.metadata.insert(key.clone(), value.into()),
                };
            }
        }
        Some(instance)
    }
}

/// Checks a service name: the protocol allows `A-Z a-z 0-9 - _`.
fn check_name(name: &str) -> Result<(), String> {
    if crate::kv::is_plain_name(name) {
        Ok(())
    } else {
        Err(format!(
            "a service name is one or more of A-Z a-z 0-9 - _, not {name:?}"
        ))
    }
}

/// Checks a version: semantic versioning (`1.2.3`, `1.0.0-rc.1+build.5`), as the protocol
/// requires.
fn check_version(version: &str) -> Result<(), String> {
    let bad = || {
        Err(format!(
            "the version {version:?} is not a semantic version such as \"1.2.3\""
        ))
    };
    let (core, build) = match version.split_once('+') {
        Some((core, build)) => (core, Some(build)),
        None => (version, None),
    };
    let (core, pre) = match core.split_once('-') {
        Some((core, pre)) => (core, Some(pre)),
        None => (core, None),
    };
    let numbers: Vec<&str> = core.split('.').collect();
    let number_ok = |n: &&str| {
        !n.is_empty()
            && n.bytes().all(|b| b.is_ascii_digit())
            && (n.len() == 1 || !n.starts_with('0'))
    };
    if numbers.len() != 3 || !numbers.iter().all(number_ok) {
        return bad();
    }
    let ident_ok = |part: &str| {
        part.split('.').all(|ident| {
            !ident.is_empty()
                && ident
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
    };
    if !pre.is_none_or(ident_ok) || !build.is_none_or(ident_ok) {
        return bad();
    }
    Ok(())
}

/// `time` as RFC 3339 in UTC, as the protocol's `started`.
fn rfc3339(time: SystemTime) -> String {
    let since = time
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = since.as_secs();
    let (days, rest) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:09}Z",
        rest / 3_600,
        rest % 3_600 / 60,
        rest % 60,
        since.subsec_nanos()
    )
}

/// Finds the instances of services on a bus; cheap to clone.
pub struct Discovery<R> {
    bus: Bus<R>,
    window: Duration,
    refresh: Duration,
    expire_after: Duration,
}

impl<R> Clone for Discovery<R> {
    fn clone(&self) -> Self {
        Self {
            bus: self.bus.clone(),
            window: self.window,
            refresh: self.refresh,
            expire_after: self.expire_after,
        }
    }
}

impl<R> fmt::Debug for Discovery<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Discovery")
            .field("bus", &self.bus)
            .field("window", &self.window)
            .field("refresh", &self.refresh)
            .field("expire_after", &self.expire_after)
            .finish()
    }
}

impl<R: Runtime> Discovery<R> {
    /// Discovery on `bus`, with a window of 250 ms, a refresh of 1 s and instances expiring
    /// after 3 s of silence.
    pub fn new(bus: Bus<R>) -> Self {
        Self {
            bus,
            window: Duration::from_millis(250),
            refresh: Duration::from_secs(1),
            expire_after: Duration::from_secs(3),
        }
    }

    /// How long [`Discovery::list`] waits for answers.
    #[must_use]
    pub fn window(mut self, window: Duration) -> Self {
        self.window = window;
        self
    }

    /// How often a watch asks every instance again.
    #[must_use]
    pub fn refresh(mut self, refresh: Duration) -> Self {
        self.refresh = refresh;
        self
    }

    /// After how long without an answer a watched instance has left ([`Left::Expired`]).
    #[must_use]
    pub fn expire_after(mut self, expire_after: Duration) -> Self {
        self.expire_after = expire_after;
        self
    }

    /// The instances of `name` that answer within the window, by id.
    ///
    /// # Errors
    ///
    /// A bad name ([`BusError::InvalidSubject`]), or the bus's error.
    pub async fn list(&self, name: &str) -> Result<Vec<Instance>, BusError> {
        check_name(name).map_err(|_| BusError::InvalidSubject {
            subject: name.to_owned(),
            reason: "a service name is one or more of A-Z a-z 0-9 - _",
        })?;
        self.ask(&format!("{PREFIX}.INFO.{name}")).await
    }

    /// Every instance of every service that answers within the window, by name and id.
    ///
    /// # Errors
    ///
    /// The bus's error.
    pub async fn list_all(&self) -> Result<Vec<Instance>, BusError> {
        self.ask(&format!("{PREFIX}.INFO")).await
    }

    async fn ask(&self, subject: &str) -> Result<Vec<Instance>, BusError> {
        let answers = self
            .bus
            .gather(Message::new(subject, ""), self.window, None)
            .await?;
        let mut instances: Vec<Instance> = answers
            .iter()
            .filter_map(|answer| Instance::from_json(&answer.payload))
            .collect();
        instances.sort_by(|a, b| (&a.name, &a.id).cmp(&(&b.name, &b.id)));
        instances.dedup_by(|a, b| a.id == b.id);
        Ok(instances)
    }

    /// Watches the instances of `name`: [`Watcher::next`] gives each instance that joins or
    /// leaves, starting with those there now.
    ///
    /// # Errors
    ///
    /// A bad name, or the bus's error.
    pub async fn watch(&self, name: &str) -> Result<Watcher<R>, BusError> {
        check_name(name).map_err(|_| BusError::InvalidSubject {
            subject: name.to_owned(),
            reason: "a service name is one or more of A-Z a-z 0-9 - _",
        })?;
        let announcements = self.bus.subscribe(&format!("{ANNOUNCE}.{name}")).await?;
        Ok(Watcher {
            discovery: self.clone(),
            name: name.to_owned(),
            announcements,
            known: HashMap::new(),
            pending: VecDeque::new(),
            next_poll: Instant::now(),
        })
    }
}

/// An instance joined or left.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// An instance is there.
    Joined(Instance),
    /// An instance is gone.
    Left(Instance, Left),
}

/// Why an instance left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Left {
    /// It deregistered (its [`Registration`] stopped).
    Deregistered,
    /// It did not answer for the watch's `expire_after`.
    Expired,
}

/// The instances of one service, as they join and leave; see [`Discovery::watch`].
pub struct Watcher<R> {
    discovery: Discovery<R>,
    name: String,
    announcements: Subscription,
    /// By id: the instance and when it last answered.
    known: HashMap<String, (Instance, Instant)>,
    pending: VecDeque<Event>,
    next_poll: Instant,
}

impl<R> fmt::Debug for Watcher<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Watcher")
            .field("name", &self.name)
            .field("known", &self.known.len())
            .field("pending", &self.pending.len())
            .finish_non_exhaustive()
    }
}

impl<R: Runtime> Watcher<R> {
    /// The instances known now.
    pub fn instances(&self) -> Vec<Instance> {
        let mut instances: Vec<Instance> = self
            .known
            .values()
            .map(|(instance, _)| instance.clone())
            .collect();
        instances.sort_by(|a, b| a.id.cmp(&b.id));
        instances
    }

    /// The next instance that joined or left.
    ///
    /// # Errors
    ///
    /// The bus's error (closed, say).
    pub async fn next(&mut self) -> Result<Event, BusError> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Ok(event);
            }
            let poll = self.next_poll;
            let announced =
                futures_lite::future::or(async { Some(self.announcements.next().await) }, async {
                    crate::time::sleep_until::<R>(poll).await;
                    None
                })
                .await;
            match announced {
                Some(Some(message)) => self.announced(&message),
                Some(None) => return Err(BusError::Closed),
                None => self.poll().await?,
            }
        }
    }

    fn seen(&mut self, instance: Instance) {
        let now = Instant::now();
        match self.known.get_mut(&instance.id) {
            Some((known, at)) => {
                *known = instance;
                *at = now;
            }
            None => {
                self.known
                    .insert(instance.id.clone(), (instance.clone(), now));
                self.pending.push_back(Event::Joined(instance));
            }
        }
    }

    fn announced(&mut self, message: &Message) {
        let Some(instance) = Instance::from_json(&message.payload) else {
            tracing::debug!(subject = %message.subject, "ignoring a malformed announcement");
            return;
        };
        if instance.name != self.name {
            return;
        }
        let left = serde_json::from_slice::<Value>(&message.payload)
            .ok()
            .and_then(|value| {
                value
                    .get("event")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
            .is_some_and(|event| event == "left");
        if left {
            if let Some((instance, _)) = self.known.remove(&instance.id) {
                self.pending
                    .push_back(Event::Left(instance, Left::Deregistered));
            }
        } else {
            self.seen(instance);
        }
    }

    async fn poll(&mut self) -> Result<(), BusError> {
        for instance in self.discovery.list(&self.name).await? {
            self.seen(instance);
        }
        let expire_after = self.discovery.expire_after;
        let expired: Vec<String> = self
            .known
            .iter()
            .filter(|(_, (_, at))| at.elapsed() >= expire_after)
            .map(|(id, _)| id.clone())
            .collect();
        for id in expired {
            if let Some((instance, _)) = self.known.remove(&id) {
                self.pending.push_back(Event::Left(instance, Left::Expired));
            }
        }
        self.next_poll = Instant::now() + self.discovery.refresh;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_semantic() {
        for good in [
            "0.1.0",
            "1.2.3",
            "10.20.30",
            "1.0.0-rc.1",
            "1.0.0-alpha+build.5",
            "1.0.0+x-y",
        ] {
            assert!(check_version(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "1",
            "1.2",
            "1.2.3.4",
            "01.2.3",
            "1.2.x",
            "1.2.3-",
            "1.2.3+",
            "v1.2.3",
            "1.2.3-a..b",
        ] {
            assert!(check_version(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn names_are_checked() {
        assert!(check_name("orders-api_2").is_ok());
        for bad in ["", "a.b", "a b", "ä", "a*"] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn started_is_rfc3339() {
        let time = SystemTime::UNIX_EPOCH + Duration::new(1_764_547_200, 5);
        assert_eq!(rfc3339(time), "2025-12-01T00:00:00.000000005Z");
        assert_eq!(
            rfc3339(SystemTime::UNIX_EPOCH),
            "1970-01-01T00:00:00.000000000Z"
        );
        let leap = SystemTime::UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(rfc3339(leap), "2000-02-29T00:00:00.000000000Z");
    }

    #[test]
    fn instances_round_trip_through_the_protocol() {
        let instance = Instance {
            name: "orders".into(),
            id: "abc".into(),
            version: "1.0.0".into(),
            description: "takes orders".into(),
            endpoints: [("http".to_owned(), "http://127.0.0.1:1".to_owned())].into(),
            metadata: [("zone".to_owned(), "eu".to_owned())].into(),
        };
        let info = serde_json::to_vec(&instance.info_json()).unwrap();
        assert_eq!(Instance::from_json(&info).unwrap(), instance);
        let ping = serde_json::to_vec(&instance.ping_json()).unwrap();
        let from_ping = Instance::from_json(&ping).unwrap();
        assert_eq!(from_ping.endpoints, instance.endpoints);
        assert!(Instance::from_json(b"{\"name\": 1}").is_none());
        assert!(Instance::from_json(b"not json").is_none());
    }
}
