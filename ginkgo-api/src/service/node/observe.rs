//! Observation: a service's counters, its transition subscribers, and the timings of its last
//! start and stop, as shown in snapshots.
//!
//! Locking: [`Observe`] has one lock, private to this module and a leaf: no method calls out
//! while holding it, and none hands out a guard. The lifecycle lock may be held while calling
//! in here (a transition is published under it, to keep transitions in order), never the
//! other way round: nothing here can reach the lifecycle.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use super::super::Counter;
use super::super::state::{Snapshot, State, Transition};

/// What a service shows of itself beyond its state.
pub(super) struct Observe {
    inner: Mutex<Observed>,
}

/// What the lock of [`Observe`] guards.
struct Observed {
    /// By name, in order of first use.
    counters: Vec<(&'static str, Counter)>,
    /// Dropped once their receiver is gone.
    subscribers: Vec<async_channel::Sender<Transition>>,
    /// How long the last start took.
    start_duration: Option<Duration>,
    /// How long the last stop took.
    stop_duration: Option<Duration>,
    /// What the service says of itself in `status`.
    note: Option<String>,
}

impl Observe {
    /// No counters, subscribers or timings yet.
    pub(super) fn new() -> Self {
        Self {
            inner: Mutex::new(Observed {
                counters: Vec::new(),
                subscribers: Vec::new(),
                start_duration: None,
                stop_duration: None,
                note: None,
            }),
        }
    }

    /// Takes the lock; callers in this module keep the guard local and never await under it.
    fn lock(&self) -> MutexGuard<'_, Observed> {
        // No user code runs under this lock, so a poisoned lock still holds consistent data.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The counter `name`, created at zero on first use. Counters outlive restarts, so they
    /// keep counting across instances.
    pub(super) fn counter(&self, name: &'static str) -> Counter {
        let mut observed = self.lock();
        if let Some((_, counter)) = observed.counters.iter().find(|(n, _)| *n == name) {
            return counter.clone();
        }
        let counter = Counter::default();
        observed.counters.push((name, counter.clone()));
        counter
    }

    /// A new subscription to the transitions published from now on.
    pub(super) fn subscribe(&self) -> async_channel::Receiver<Transition> {
        let (tx, rx) = async_channel::unbounded();
        self.lock().subscribers.push(tx);
        rx
    }

    /// Sends a transition to every subscriber, dropping those that went away. Called with
    /// the lifecycle lock held, so subscribers see transitions in the order they happened.
    pub(super) fn publish(&self, path: &Arc<str>, from: State, to: State, at: SystemTime) {
        let mut observed = self.lock();
        if observed.subscribers.is_empty() {
            return;
        }
        let transition = Transition {
            path: path.clone(),
            from,
            to,
            at,
        };
        observed
            .subscribers
            .retain(|subscriber| subscriber.try_send(transition.clone()).is_ok());
    }

    /// Sets (or, with `None`, clears) the service's note.
    pub(super) fn set_note(&self, note: Option<String>) {
        self.lock().note = note;
    }

    /// Records how long the last start took.
    pub(super) fn started_in(&self, duration: Duration) {
        self.lock().start_duration = Some(duration);
    }

    /// Records how long the last stop took.
    pub(super) fn stopped_in(&self, duration: Duration) {
        self.lock().stop_duration = Some(duration);
    }

    /// Fills in this concern's part of `snapshot`: timings, counters and the note.
    pub(super) fn fill(&self, snapshot: &mut Snapshot) {
        let observed = self.lock();
        snapshot.note.clone_from(&observed.note);
        snapshot.start_duration = observed.start_duration;
        snapshot.stop_duration = observed.stop_duration;
        snapshot.counters = observed
            .counters
            .iter()
            .map(|(name, counter)| ((*name).to_owned(), counter.get()))
            .collect();
    }
}
