//! States, transitions and snapshots.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// The lifecycle state of a service (Ginkgo's state machine).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Created, never started.
    Init,
    /// Its children and its `start` hook are running, or it is waiting to become ready.
    Starting,
    /// Started and ready.
    Ready,
    /// Its children, its `stop` hook and its tasks are being stopped.
    Stopping,
    /// Stopped; may be started again.
    Stopped,
    /// A hook or owned task failed, or its start failed; its tasks and children are stopped.
    Failed,
}

impl State {
    /// The lowercase name, as shown by `status`.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Init => "init",
            State::Starting => "starting",
            State::Ready => "ready",
            State::Stopping => "stopping",
            State::Stopped => "stopped",
            State::Failed => "failed",
        }
    }

    /// Whether the service is starting or ready (its tasks may be running).
    pub fn is_running(self) -> bool {
        matches!(self, State::Starting | State::Ready)
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One change of state, as delivered to [`ServiceHandle::subscribe`](super::ServiceHandle::subscribe).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    /// The service's path, such as `app/db`.
    pub path: Arc<str>,
    /// The state before.
    pub from: State,
    /// The state after.
    pub to: State,
    /// When it happened (wall clock).
    pub at: SystemTime,
}

/// A picture of a service and its subtree at one moment, for `status`, `/status` and metrics.
///
/// Serializes (for `/status`) with `since` as milliseconds since the Unix epoch and durations
/// as seconds.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[non_exhaustive]
pub struct Snapshot {
    /// The service's name.
    pub name: String,
    /// Its path from the root, names joined by `/`.
    pub path: String,
    /// Its state.
    pub state: State,
    /// Whether it counts as ready: in state ready, and not declared unready at run time with
    /// [`Context::not_ready`](super::Context::not_ready) (a client while disconnected).
    pub ready: bool,
    /// When it entered that state.
    #[serde(rename = "since_unix_ms", serialize_with = "unix_ms")]
    pub since: SystemTime,
    /// How many times its parent has restarted it.
    pub restarts: u32,
    /// How many of its owned tasks are still running.
    pub tasks: usize,
    /// How long its last start took (children, hook and readiness).
    #[serde(rename = "start_seconds", serialize_with = "seconds")]
    pub start_duration: Option<Duration>,
    /// How long its last stop took.
    #[serde(rename = "stop_seconds", serialize_with = "seconds")]
    pub stop_duration: Option<Duration>,
    /// Why it last failed, if it did.
    pub last_failure: Option<String>,
    /// Its counters ([`Context::counter`](super::Context::counter)), by name.
    pub counters: Vec<(String, u64)>,
    /// What it says of itself ([`Context::set_note`](super::Context::set_note)): who leads,
    /// which peers it sees, ...
    pub note: Option<String>,
    /// Its children, in start order.
    pub children: Vec<Snapshot>,
}

fn unix_ms<S: serde::Serializer>(at: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
    let ms = at
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    s.serialize_u64(ms)
}

fn seconds<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_some(&d.as_secs_f64()),
        None => s.serialize_none(),
    }
}

impl Snapshot {
    /// The number of services in this subtree, itself included.
    pub fn count(&self) -> usize {
        1 + self.children.iter().map(Snapshot::count).sum::<usize>()
    }

    /// Whether every service in this subtree is ready (what `/readyz` reports).
    pub fn all_ready(&self) -> bool {
        self.ready && self.children.iter().all(Snapshot::all_ready)
    }

    /// Visits every service in this subtree, parents before children.
    pub fn walk(&self, visit: &mut impl FnMut(&Snapshot)) {
        visit(self);
        for child in &self.children {
            child.walk(visit);
        }
    }

    /// Finds a service in this subtree by its path.
    pub fn find(&self, path: &str) -> Option<&Snapshot> {
        if self.path == path {
            return Some(self);
        }
        self.children.iter().find_map(|child| child.find(path))
    }
}
