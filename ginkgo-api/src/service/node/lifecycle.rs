//! The lifecycle record of a service: its state machine (init → starting → ready → stopping →
//! stopped, or failed), the instance and what rebuilds it, its children, readiness, failures
//! and restart count.
//!
//! Locking: [`Lifecycle`] has one lock, private to this module, and no method hands out a
//! guard. It is the only lock in the node that is held while taking another: a state change
//! publishes its transition (and a finished start records its duration) under it, so the
//! order is lifecycle, then observation. Nothing in the observation module can reach the
//! lifecycle, so the other order cannot be written; the tasks lock is never taken under it.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use event_listener::Event;

use super::super::NOTIFY_ALL;
use super::super::exec::{Exec, within};
use super::super::failure::Failure;
use super::super::state::State;
use super::super::{Options, Restart, Service};
use super::observe::Observe;
use super::{Factory, Node};

/// Whether a service counts as ready beyond its state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Readiness {
    /// Ready as soon as the start hook returns (the default).
    Immediate,
    /// `not_ready()` was called; waiting for `set_ready()`.
    Pending,
    /// `set_ready()` was called.
    Ready,
    /// `start_not_ready()` was called: started, not ready, and the start does not wait.
    Down,
}

/// A service's lifecycle record, and the event that tells waiters it changed.
pub(super) struct Lifecycle {
    inner: Mutex<Record>,
    /// Notified after each change of state, readiness or start failure, outside the lock.
    changed: Event,
}

/// What the lock of [`Lifecycle`] guards.
struct Record {
    /// Where the state machine is.
    state: State,
    /// When `state` was entered.
    since: SystemTime,
    /// The instance; taken out while one of its hooks runs.
    service: Option<Box<dyn Service>>,
    /// The instance's options, read at each start and stop.
    options: Options,
    /// Builds a fresh instance for a restart; `None` for a child that is never restarted.
    factory: Option<Factory>,
    /// How the parent treats this service when it exits.
    restart: Restart,
    /// In start order.
    children: Vec<Arc<Node>>,
    /// Whether it counts as ready beyond its state.
    readiness: Readiness,
    /// A task's failure during the start, which fails the start. Boxed: rare, and an idle
    /// service should stay small.
    start_failure: Option<Box<Failure>>,
    /// A stop was asked for while this service was starting: its start gives up.
    start_cancelled: bool,
    /// How many times the parent rebuilt this service.
    restarts: u32,
    /// When this service restarted its children, within its restart window.
    restart_log: VecDeque<Instant>,
    /// Why it last failed. Boxed, like `start_failure`.
    last_failure: Option<Box<Failure>>,
}

impl Record {
    /// Ready in state, and not declared unready at run time.
    fn is_ready(&self) -> bool {
        self.state == State::Ready
            && matches!(self.readiness, Readiness::Immediate | Readiness::Ready)
    }

    /// Whether the start has an outcome: a task failed, the service is ready, or the start
    /// was cancelled.
    fn start_settled(&self) -> bool {
        self.start_failure.is_some() || self.start_cancelled || self.readiness != Readiness::Pending
    }

    /// Moves to `to`, records when, and publishes the transition (under this lock, so
    /// subscribers see transitions in order). The caller notifies `changed` after unlocking.
    fn set_state(&mut self, path: &Arc<str>, observe: &Observe, to: State) {
        let from = self.state;
        if from == to {
            return;
        }
        self.state = to;
        self.since = SystemTime::now();
        observe.publish(path, from, to, self.since);
        tracing::debug!(service = %path, %from, %to, "state changed");
    }
}

/// How the wait for readiness after the start hook ended.
pub(super) enum Settled {
    /// Ready.
    Ready,
    /// An owned task failed during the start.
    Failed(Failure),
    /// A stop was asked for.
    Cancelled,
}

/// What the lifecycle contributes to a snapshot.
pub(super) struct View {
    /// The state.
    pub(super) state: State,
    /// Whether it counts as ready.
    pub(super) ready: bool,
    /// When it entered the state.
    pub(super) since: SystemTime,
    /// How many times it was restarted.
    pub(super) restarts: u32,
    /// Why it last failed, as text.
    pub(super) last_failure: Option<String>,
    /// The children, in start order.
    pub(super) children: Vec<Arc<Node>>,
}

impl Lifecycle {
    /// A record in state init, without an instance yet (see [`Lifecycle::put_service`]).
    pub(super) fn new(options: Options, factory: Option<Factory>, restart: Restart) -> Self {
        Self {
            inner: Mutex::new(Record {
                state: State::Init,
                since: SystemTime::now(),
                service: None,
                options,
                factory,
                restart,
                children: Vec::new(),
                readiness: Readiness::Immediate,
                start_failure: None,
                start_cancelled: false,
                restarts: 0,
                restart_log: VecDeque::new(),
                last_failure: None,
            }),
            changed: Event::new(),
        }
    }

    /// Takes the lock; callers in this module keep the guard local and never await under it.
    fn lock(&self) -> MutexGuard<'_, Record> {
        // The only user code run under this lock is a factory (in `rebuild`), which changes
        // nothing if it panics but the restart count: a poisoned lock holds consistent data.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Wakes whoever waits for a change; called after unlocking.
    fn notify(&self) {
        self.changed.notify(NOTIFY_ALL);
    }

    /// The current state.
    pub(super) fn state(&self) -> State {
        self.lock().state
    }

    /// Ready in state, and not declared unready at run time.
    pub(super) fn is_ready(&self) -> bool {
        self.lock().is_ready()
    }

    /// The current instance's options.
    pub(super) fn options(&self) -> Options {
        self.lock().options.clone()
    }

    /// How the parent treats this service when it exits.
    pub(super) fn restart_policy(&self) -> Restart {
        self.lock().restart
    }

    /// How many times the parent rebuilt this service.
    pub(super) fn restarts(&self) -> u32 {
        self.lock().restarts
    }

    /// The children, in start order.
    pub(super) fn children(&self) -> Vec<Arc<Node>> {
        self.lock().children.clone()
    }

    /// Adds a child at the end of the start order.
    pub(super) fn push_child(&self, child: Arc<Node>) {
        self.lock().children.push(child);
    }

    /// Removes `child`; `None` if it is not a child.
    pub(super) fn take_child(&self, child: &Arc<Node>) -> Option<Arc<Node>> {
        let mut record = self.lock();
        let index = record.children.iter().position(|c| Arc::ptr_eq(c, child))?;
        Some(record.children.remove(index))
    }

    /// Why the service last failed, if it ever did.
    pub(super) fn last_failure(&self) -> Option<Failure> {
        self.lock().last_failure.as_deref().cloned()
    }

    /// The lifecycle's part of a snapshot, read at one moment.
    pub(super) fn view(&self) -> View {
        let record = self.lock();
        View {
            state: record.state,
            ready: record.is_ready(),
            since: record.since,
            restarts: record.restarts,
            last_failure: record.last_failure.as_ref().map(ToString::to_string),
            children: record.children.clone(),
        }
    }

    /// Sets the readiness and wakes waiters (a start waiting for `set_ready`).
    pub(super) fn set_readiness(&self, readiness: Readiness) {
        self.lock().readiness = readiness;
        self.notify();
    }

    /// Moves to `to`, publishing the transition, and wakes waiters.
    pub(super) fn set_state(&self, path: &Arc<str>, observe: &Observe, to: State) {
        self.lock().set_state(path, observe, to);
        self.notify();
    }

    /// Waits until `done(state)` holds and returns that state.
    pub(super) async fn wait_until(&self, done: impl Fn(State) -> bool) -> State {
        loop {
            let state = self.state();
            if done(state) {
                return state;
            }
            let listener = self.changed.listen();
            let state = self.state();
            if done(state) {
                return state;
            }
            listener.await;
        }
    }

    /// Prepares a start: readiness back to immediate, no start failure. Returns the options
    /// the start runs with.
    pub(super) fn begin_start(&self) -> Options {
        let mut record = self.lock();
        record.readiness = Readiness::Immediate;
        record.start_failure = None;
        record.start_cancelled = false;
        record.options.clone()
    }

    /// Asks a start under way to give up (a stop was asked for); false when not starting.
    pub(super) fn cancel_start(&self) -> bool {
        let mut record = self.lock();
        if record.state != State::Starting {
            return false;
        }
        record.start_cancelled = true;
        drop(record);
        self.notify();
        true
    }

    /// Completes once the start under way was asked to give up ([`Lifecycle::cancel_start`]).
    pub(super) async fn start_cancelled(&self) {
        loop {
            if self.lock().start_cancelled {
                return;
            }
            let listener = self.changed.listen();
            if self.lock().start_cancelled {
                return;
            }
            listener.await;
        }
    }

    /// Waits, until `deadline`, for the start hook's outcome to settle: a task's failure
    /// (taken), readiness, or a cancelled start. `None` if the deadline came first.
    pub(super) async fn settle_start(&self, exec: &dyn Exec, deadline: Instant) -> Option<Settled> {
        loop {
            {
                let mut record = self.lock();
                if let Some(failure) = record.start_failure.take() {
                    return Some(Settled::Failed(*failure));
                }
                if record.start_cancelled {
                    return Some(Settled::Cancelled);
                }
                if record.readiness != Readiness::Pending {
                    return Some(Settled::Ready);
                }
            }
            let listener = self.changed.listen();
            if self.lock().start_settled() {
                continue;
            }
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() || within(exec, remaining, listener).await.is_none() {
                return None;
            }
        }
    }

    /// Marks the service ready, recording how long the start took since `began`, unless one
    /// of its tasks failed during the start.
    pub(super) fn finish_start(
        &self,
        path: &Arc<str>,
        observe: &Observe,
        began: Instant,
    ) -> Result<(), Failure> {
        let mut record = self.lock();
        if let Some(failure) = record.start_failure.take() {
            return Err(*failure);
        }
        observe.started_in(began.elapsed());
        record.set_state(path, observe, State::Ready);
        drop(record);
        self.notify();
        Ok(())
    }

    /// Takes in an owned task's failure. During a start it fails the start; it returns the
    /// failure back if the service was ready, which must then fail as a whole.
    pub(super) fn task_failed(&self, failure: Failure) -> Option<Failure> {
        let mut record = self.lock();
        match record.state {
            State::Starting => {
                tracing::error!(%failure, "task failed during start");
                record.start_failure.get_or_insert(Box::new(failure));
                drop(record);
                self.notify();
                None
            }
            State::Ready => Some(failure),
            // Stopping, stopped or already failed: the task ended as part of that.
            _ => {
                tracing::debug!(%failure, "task failed while the service was not running");
                None
            }
        }
    }

    /// Marks the service failed, keeping `failure` as its last.
    pub(super) fn record_failure(&self, path: &Arc<str>, observe: &Observe, failure: Failure) {
        let mut record = self.lock();
        record.last_failure = Some(Box::new(failure));
        record.set_state(path, observe, State::Failed);
        drop(record);
        self.notify();
    }

    /// Takes the instance out to run one of its hooks; `None` while another hook runs.
    pub(super) fn take_service(&self) -> Option<Box<dyn Service>> {
        self.lock().service.take()
    }

    /// Puts the instance back after a hook (or in, the first time).
    pub(super) fn put_service(&self, service: Box<dyn Service>) {
        self.lock().service = Some(service);
    }

    /// Puts in a fresh instance from [`Lifecycle::renew`], with the options it runs with.
    pub(super) fn install(&self, service: Box<dyn Service>, options: Options) {
        let mut record = self.lock();
        record.options = options;
        record.service = Some(service);
    }

    /// Counts a restart and, if the service has a factory, swaps its instance for a fresh one
    /// without children, which the caller initialises and puts in.
    pub(super) fn renew(&self) -> Option<Box<dyn Service>> {
        let mut record = self.lock();
        record.restarts += 1;
        let fresh = (record.factory.as_ref()?)();
        record.children.clear();
        record.service = None;
        Some(fresh)
    }

    /// Records a restart of a child in the restart window. Returns the backoff delay, or the
    /// limit (count, window) that the restart would exceed.
    pub(super) fn admit_restart(&self) -> Result<Duration, (u32, Duration)> {
        let mut record = self.lock();
        let Record {
            options,
            restart_log,
            ..
        } = &mut *record;
        let now = Instant::now();
        while restart_log
            .front()
            .is_some_and(|at| now.duration_since(*at) > options.restart_window)
        {
            restart_log.pop_front();
        }
        restart_log.push_back(now);
        let count = u32::try_from(restart_log.len()).unwrap_or(u32::MAX);
        if count > options.max_restarts {
            restart_log.clear();
            return Err((options.max_restarts, options.restart_window));
        }
        Ok(options.backoff.delay(count))
    }
}
