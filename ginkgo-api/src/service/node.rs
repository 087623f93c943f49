//! One service in the tree, and its lifecycle operations: start, stop, reload.
//!
//! Locking: `op` (async) serialises lifecycle operations on one node and is always taken
//! parent before child; `inner` (sync) guards the node's fields and is never held across an
//! await. Hooks run with `op` held, so `Context` methods never take `op`.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant, SystemTime};

use event_listener::Event;
use futures_lite::FutureExt;

use super::context::{Context, Shutdown, panic_text};
use super::exec::{BoxFuture, Exec, TaskHandle, within};
use super::failure::{Cause, Failure, Hook, StopReport, StuckTask};
use super::state::{Snapshot, State, Transition};
use super::{Counter, Options, Restart, Service};

/// How long aborted tasks get to finish before they are reported as stuck.
pub(crate) const ABORT_GRACE: Duration = Duration::from_millis(100);

pub(crate) type Factory = Box<dyn Fn() -> Box<dyn Service> + Send + Sync>;

/// What every node of one tree shares.
pub(crate) struct Tree {
    pub(crate) exec: Box<dyn Exec>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Readiness {
    /// Ready as soon as the start hook returns (the default).
    Immediate,
    /// `not_ready()` was called; waiting for `set_ready()`.
    Pending,
    /// `set_ready()` was called.
    Ready,
}

pub(crate) struct OwnedTask {
    name: Cow<'static, str>,
    handle: TaskHandle,
    joined: bool,
}

pub(crate) struct Node {
    pub(crate) tree: Arc<Tree>,
    pub(crate) name: Box<str>,
    pub(crate) path: Arc<str>,
    parent: Weak<Node>,
    pub(crate) op: async_lock::Mutex<()>,
    inner: Mutex<Inner>,
    changed: Event,
}

pub(crate) struct Inner {
    state: State,
    since: SystemTime,
    service: Option<Box<dyn Service>>,
    pub(crate) options: Options,
    factory: Option<Factory>,
    pub(crate) restart: Restart,
    children: Vec<Arc<Node>>,
    tasks: Vec<OwnedTask>,
    reap_at: usize,
    counters: Vec<(&'static str, Counter)>,
    shutdown: Shutdown,
    readiness: Readiness,
    // Boxed: rare, and an idle service should stay small.
    start_failure: Option<Box<Failure>>,
    pub(crate) restarts: u32,
    pub(crate) restart_log: VecDeque<Instant>,
    subscribers: Vec<async_channel::Sender<Transition>>,
    last_failure: Option<Box<Failure>>,
    start_duration: Option<Duration>,
    stop_duration: Option<Duration>,
}

impl Node {
    /// Builds a node for `service`, runs its `init` hook (which may add children).
    pub(crate) fn create(
        tree: Arc<Tree>,
        parent: Option<&Arc<Node>>,
        mut service: Box<dyn Service>,
        factory: Option<Factory>,
        restart: Restart,
    ) -> Arc<Node> {
        let name: Box<str> = service.name().into();
        let path: Arc<str> = match parent {
            Some(parent) => format!("{}/{name}", parent.path).into(),
            None => name.to_string().into(),
        };
        let node = Arc::new(Node {
            tree,
            name,
            path,
            parent: parent.map_or_else(Weak::new, Arc::downgrade),
            op: async_lock::Mutex::new(()),
            inner: Mutex::new(Inner {
                state: State::Init,
                since: SystemTime::now(),
                service: None,
                options: service.options(),
                factory,
                restart,
                children: Vec::new(),
                tasks: Vec::new(),
                reap_at: 16,
                counters: Vec::new(),
                shutdown: Shutdown::default(),
                readiness: Readiness::Immediate,
                start_failure: None,
                restarts: 0,
                restart_log: VecDeque::new(),
                subscribers: Vec::new(),
                last_failure: None,
                start_duration: None,
                stop_duration: None,
            }),
            changed: Event::new(),
        });
        service.init(&Context::new(node.clone()));
        node.inner().service = Some(service);
        node
    }

    pub(crate) fn inner(&self) -> MutexGuard<'_, Inner> {
        // No user code runs under this lock, so a poisoned lock still holds consistent data.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn parent(&self) -> Option<Arc<Node>> {
        self.parent.upgrade()
    }

    pub(crate) fn state(&self) -> State {
        self.inner().state
    }

    /// Ready in state, and not declared unready at run time (a client that lost its
    /// connection).
    pub(crate) fn is_ready(&self) -> bool {
        let inner = self.inner();
        inner.state == State::Ready && inner.readiness != Readiness::Pending
    }

    pub(crate) fn options(&self) -> Options {
        self.inner().options.clone()
    }

    pub(crate) fn children(&self) -> Vec<Arc<Node>> {
        self.inner().children.clone()
    }

    pub(crate) fn push_child(&self, child: Arc<Node>) {
        self.inner().children.push(child);
    }

    pub(crate) fn take_child(&self, child: &Arc<Node>) -> Option<Arc<Node>> {
        let mut inner = self.inner();
        let index = inner.children.iter().position(|c| Arc::ptr_eq(c, child))?;
        Some(inner.children.remove(index))
    }

    pub(crate) fn shutdown(&self) -> Shutdown {
        self.inner().shutdown.clone()
    }

    pub(crate) fn last_failure(&self) -> Option<Failure> {
        self.inner().last_failure.as_deref().cloned()
    }

    pub(crate) fn subscribe(&self) -> async_channel::Receiver<Transition> {
        let (tx, rx) = async_channel::unbounded();
        self.inner().subscribers.push(tx);
        rx
    }

    pub(crate) fn failure(&self, cause: Cause) -> Failure {
        Failure::new(self.path.clone(), cause)
    }

    /// Records a task; finished tasks are dropped from the list now and then, so a service
    /// spawning a task per request does not grow the list without bound.
    pub(crate) fn own_task(&self, name: Cow<'static, str>, handle: TaskHandle) {
        let mut inner = self.inner();
        if inner.tasks.len() >= inner.reap_at {
            inner.tasks.retain(|task| !task.handle.is_finished());
            inner.reap_at = (inner.tasks.len() * 2).max(16);
        }
        inner.tasks.push(OwnedTask {
            name,
            handle,
            joined: false,
        });
    }

    /// The counter `name` of this service, created at zero on first use. Counters outlive
    /// restarts, so they keep counting across instances.
    pub(crate) fn counter(&self, name: &'static str) -> Counter {
        let mut inner = self.inner();
        if let Some((_, counter)) = inner.counters.iter().find(|(n, _)| *n == name) {
            return counter.clone();
        }
        let counter = Counter::default();
        inner.counters.push((name, counter.clone()));
        counter
    }

    pub(crate) fn set_readiness(&self, readiness: Readiness) {
        self.inner().readiness = readiness;
        self.changed.notify(usize::MAX);
    }

    pub(crate) fn set_state(&self, to: State) {
        let mut inner = self.inner();
        self.set_state_locked(&mut inner, to);
        drop(inner);
        self.changed.notify(usize::MAX);
    }

    fn set_state_locked(&self, inner: &mut Inner, to: State) {
        let from = inner.state;
        if from == to {
            return;
        }
        inner.state = to;
        inner.since = SystemTime::now();
        if !inner.subscribers.is_empty() {
            let transition = Transition {
                path: self.path.clone(),
                from,
                to,
                at: inner.since,
            };
            inner
                .subscribers
                .retain(|subscriber| subscriber.try_send(transition.clone()).is_ok());
        }
        tracing::debug!(service = %self.path, %from, %to, "state changed");
    }

    /// Waits until `done(state)` holds and returns that state.
    pub(crate) async fn wait_until(&self, done: impl Fn(State) -> bool) -> State {
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

    /// Called by an owned task that panicked or returned an error.
    pub(crate) fn task_failed(self: Arc<Self>, cause: Cause) {
        let failure = self.failure(cause);
        let mut inner = self.inner();
        match inner.state {
            State::Starting => {
                tracing::error!(%failure, "task failed during start");
                inner.start_failure.get_or_insert(Box::new(failure));
                drop(inner);
                self.changed.notify(usize::MAX);
            }
            State::Ready => {
                drop(inner);
                tracing::error!(%failure, "service failed");
                let node = self.clone();
                drop(
                    self.tree
                        .exec
                        .spawn(Box::pin(super::supervise::fail(node, failure))),
                );
            }
            // Stopping, stopped or already failed: the task ended as part of that.
            _ => tracing::debug!(%failure, "task failed while the service was not running"),
        }
    }

    /// Runs one hook with a time limit, containing errors, panics and time-outs.
    async fn call_hook(self: &Arc<Self>, hook: Hook, limit: Duration) -> Result<(), Failure> {
        let Some(mut service) = self.inner().service.take() else {
            // Only possible if a previous hook is still running, which the op lock prevents.
            return Err(self.failure(Cause::HookBusy(hook)));
        };
        let ctx = Context::new(self.clone());
        let outcome = {
            let call = AssertUnwindSafe(async {
                match hook {
                    Hook::Start => service.start(&ctx).await,
                    Hook::Stop => service.stop(&ctx).await,
                    Hook::Reload => service.reload(&ctx).await,
                }
            })
            .catch_unwind();
            within(&*self.tree.exec, limit, call).await
        };
        self.inner().service = Some(service);
        let cause = match outcome {
            Some(Ok(Ok(()))) => return Ok(()),
            Some(Ok(Err(error))) => Cause::HookError {
                hook,
                error: error.into(),
            },
            Some(Err(payload)) => Cause::HookPanic {
                hook,
                message: panic_text(payload.as_ref()),
            },
            None if matches!(hook, Hook::Start) => Cause::StartTimeout(limit),
            None => Cause::HookTimeout { hook, limit },
        };
        Err(self.failure(cause))
    }

    /// Starts this node and its subtree; see the module docs for the order.
    pub(crate) fn start(self: Arc<Self>) -> BoxFuture<Result<(), Failure>> {
        Box::pin(async move {
            let _op = self.op.lock().await;
            self.start_locked().await
        })
    }

    pub(crate) async fn start_locked(self: &Arc<Self>) -> Result<(), Failure> {
        if self.state().is_running() {
            return Ok(());
        }
        let began = Instant::now();
        let options = {
            let mut inner = self.inner();
            inner.shutdown = Shutdown::default();
            inner.readiness = Readiness::Immediate;
            inner.start_failure = None;
            inner.options.clone()
        };
        self.set_state(State::Starting);

        let children = self.children();
        let mut started: Vec<Arc<Node>> = Vec::with_capacity(children.len());
        let mut own_started = false;
        let outcome = 'start: {
            if !options.start_before
                && let Err(child) = start_children(&children, &mut started).await
            {
                break 'start Err(self.failure(Cause::Child(Box::new(child))));
            }
            if let Err(failure) = self.start_own(&options).await {
                break 'start Err(failure);
            }
            own_started = true;
            if options.start_before
                && let Err(child) = start_children(&children, &mut started).await
            {
                break 'start Err(self.failure(Cause::Child(Box::new(child))));
            }
            self.finish_start(began)
        };
        let Err(failure) = outcome else {
            return Ok(());
        };

        // Roll back what was started, in reverse: children, then this service itself.
        let mut report = StopReport::default();
        for child in started.iter().rev() {
            report.merge(child.clone().stop().await);
        }
        if own_started {
            report.merge(self.stop_own(&options).await);
        } else {
            let deadline = Instant::now() + options.stop_timeout;
            report.merge(self.reap_tasks(deadline).await);
        }
        if !report.is_clean() {
            tracing::warn!(service = %self.path, %report, "rolling back a failed start");
        }
        tracing::error!(%failure, "start failed");
        self.record_failure(failure.clone());
        Err(failure)
    }

    /// Marks the node ready unless one of its tasks failed during the start.
    fn finish_start(&self, began: Instant) -> Result<(), Failure> {
        let mut inner = self.inner();
        if let Some(failure) = inner.start_failure.take() {
            return Err(*failure);
        }
        inner.start_duration = Some(began.elapsed());
        self.set_state_locked(&mut inner, State::Ready);
        drop(inner);
        self.changed.notify(usize::MAX);
        Ok(())
    }

    /// The service's own part of a start: its hook, then readiness, within the start timeout.
    async fn start_own(self: &Arc<Self>, options: &Options) -> Result<(), Failure> {
        let deadline = Instant::now() + options.start_timeout;
        self.call_hook(Hook::Start, options.start_timeout).await?;
        loop {
            {
                let mut inner = self.inner();
                if let Some(failure) = inner.start_failure.take() {
                    return Err(*failure);
                }
                if inner.readiness != Readiness::Pending {
                    return Ok(());
                }
            }
            let listener = self.changed.listen();
            {
                let inner = self.inner();
                if inner.start_failure.is_some() || inner.readiness != Readiness::Pending {
                    continue;
                }
            }
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero()
                || within(&*self.tree.exec, remaining, listener)
                    .await
                    .is_none()
            {
                return Err(self.failure(Cause::StartTimeout(options.start_timeout)));
            }
        }
    }

    /// Stops this node and its subtree. Idempotent.
    pub(crate) fn stop(self: Arc<Self>) -> BoxFuture<StopReport> {
        Box::pin(async move {
            let _op = self.op.lock().await;
            self.stop_locked().await
        })
    }

    pub(crate) async fn stop_locked(self: &Arc<Self>) -> StopReport {
        match self.state() {
            State::Init | State::Stopped => return StopReport::default(),
            // A failed service was torn down when it failed.
            State::Failed => {
                self.set_state(State::Stopped);
                return StopReport::default();
            }
            State::Starting | State::Ready | State::Stopping => {}
        }
        let began = Instant::now();
        self.set_state(State::Stopping);
        let report = self.teardown().await;
        self.inner().stop_duration = Some(began.elapsed());
        self.set_state(State::Stopped);
        if !report.is_clean() {
            tracing::warn!(service = %self.path, %report, "stopped, not cleanly");
        }
        report
    }

    /// Stops the children in reverse order, then the service's own hook and tasks.
    pub(crate) async fn teardown(self: &Arc<Self>) -> StopReport {
        let mut report = StopReport::default();
        for child in self.children().iter().rev() {
            report.merge(child.clone().stop().await);
        }
        let options = self.options();
        report.merge(self.stop_own(&options).await);
        report
    }

    /// The service's own part of a stop: signal its tasks, run its hook, reap its tasks, all
    /// within the stop timeout (plus [`ABORT_GRACE`] for aborted tasks).
    async fn stop_own(self: &Arc<Self>, options: &Options) -> StopReport {
        let deadline = Instant::now() + options.stop_timeout;
        self.shutdown().trigger();
        let mut report = StopReport::default();
        if let Err(failure) = self.call_hook(Hook::Stop, options.stop_timeout).await {
            report.errors.push(failure);
        }
        report.merge(self.reap_tasks(deadline).await);
        report
    }

    /// Waits for the owned tasks until `deadline`, aborts the rest, and reports those that
    /// still did not finish.
    async fn reap_tasks(self: &Arc<Self>, deadline: Instant) -> StopReport {
        self.shutdown().trigger();
        let mut report = StopReport::default();
        // Tasks may be spawned while the others wind down (a request arriving on a draining
        // connection): reap those too, at once since the deadline has passed by then.
        for _ in 0..4 {
            let mut tasks = std::mem::take(&mut self.inner().tasks);
            tasks.retain(|task| !task.handle.is_finished());
            if tasks.is_empty() {
                break;
            }
            report.merge(self.reap(&mut tasks, deadline).await);
        }
        report
    }

    /// Waits for `tasks` until `deadline`, aborts the rest, and reports those that still did
    /// not finish.
    async fn reap(self: &Arc<Self>, tasks: &mut [OwnedTask], deadline: Instant) -> StopReport {
        let exec = &*self.tree.exec;
        let remaining = deadline.saturating_duration_since(Instant::now());
        if within(exec, remaining, join_all(tasks)).await.is_none() {
            for task in tasks.iter() {
                task.handle.abort();
            }
            within(exec, ABORT_GRACE, join_all(tasks)).await;
        }
        let stuck: Vec<StuckTask> = tasks
            .iter()
            .filter(|task| !task.joined && !task.handle.is_finished())
            .map(|task| StuckTask {
                service: self.path.to_string(),
                task: task.name.to_string(),
            })
            .collect();
        for task in &stuck {
            tracing::warn!(service = %task.service, task = %task.task, "task did not stop; left running detached (blocking code cannot be aborted)");
        }
        StopReport {
            stuck,
            errors: Vec::new(),
        }
    }

    /// Reloads this node and its subtree in start order.
    pub(crate) fn reload(self: Arc<Self>) -> BoxFuture<Result<(), Failure>> {
        Box::pin(async move {
            let _op = self.op.lock().await;
            let state = self.state();
            if state != State::Ready {
                return Err(self.failure(Cause::NotRunning(state)));
            }
            let options = self.options();
            if options.start_before {
                self.call_hook(Hook::Reload, options.start_timeout).await?;
            }
            for child in self.children() {
                if child.state() == State::Ready {
                    child.reload().await?;
                }
            }
            if !options.start_before {
                self.call_hook(Hook::Reload, options.start_timeout).await?;
            }
            Ok(())
        })
    }

    /// Marks the node failed (it must already be torn down, or be torn down next).
    pub(crate) fn record_failure(&self, failure: Failure) {
        let mut inner = self.inner();
        inner.last_failure = Some(Box::new(failure));
        self.set_state_locked(&mut inner, State::Failed);
        drop(inner);
        self.changed.notify(usize::MAX);
    }

    /// Replaces the instance with a fresh one from the factory (if it has one), rebuilding its
    /// children through `init`. The node must be stopped or failed.
    pub(crate) fn rebuild(self: &Arc<Self>) {
        let fresh = {
            let mut inner = self.inner();
            inner.restarts += 1;
            match &inner.factory {
                Some(factory) => {
                    let fresh = factory();
                    inner.children.clear();
                    inner.service = None;
                    fresh
                }
                None => return,
            }
        };
        let mut fresh = fresh;
        fresh.init(&Context::new(self.clone()));
        let mut inner = self.inner();
        inner.options = fresh.options();
        inner.service = Some(fresh);
    }

    pub(crate) fn snapshot(&self) -> Snapshot {
        let (mut snapshot, children) = {
            let inner = self.inner();
            let snapshot = Snapshot {
                name: self.name.to_string(),
                path: self.path.to_string(),
                state: inner.state,
                ready: inner.state == State::Ready && inner.readiness != Readiness::Pending,
                since: inner.since,
                restarts: inner.restarts,
                tasks: inner
                    .tasks
                    .iter()
                    .filter(|task| !task.handle.is_finished())
                    .count(),
                start_duration: inner.start_duration,
                stop_duration: inner.stop_duration,
                last_failure: inner.last_failure.as_ref().map(ToString::to_string),
                counters: inner
                    .counters
                    .iter()
                    .map(|(name, counter)| ((*name).to_owned(), counter.get()))
                    .collect(),
                children: Vec::with_capacity(inner.children.len()),
            };
            (snapshot, inner.children.clone())
        };
        snapshot.children = children.iter().map(|child| child.snapshot()).collect();
        snapshot
    }
}

async fn start_children(
    children: &[Arc<Node>],
    started: &mut Vec<Arc<Node>>,
) -> Result<(), Failure> {
    for child in children {
        child.clone().start().await?;
        started.push(child.clone());
    }
    Ok(())
}

/// Joins every task not joined yet; may be cancelled between tasks and resumed.
async fn join_all(tasks: &mut [OwnedTask]) {
    for task in tasks.iter_mut().filter(|task| !task.joined) {
        // Cancelled and panicked both mean the task is gone; failures were reported already.
        let _ = (&mut task.handle).await;
        task.joined = true;
    }
}
