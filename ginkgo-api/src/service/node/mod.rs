//! One service in the tree: a [`Node`], split by concern into records that each keep their
//! state behind a lock of their own.
//!
//! - [`lifecycle`]: the state machine, the instance, options, factory, restart policy,
//!   children, readiness, start failure, restart counting and the last failure.
//! - [`tasks`]: the owned tasks, their shutdown signal, and reaping them on stop.
//! - [`observe`]: counters, transition subscribers, start and stop durations.
//! - [`ops`]: the operations start, stop and reload, built on the three records.
//!
//! Locking:
//! - `op` (async) serialises lifecycle operations on one node. It is held across awaits, for
//!   a whole start, stop or reload, and always taken parent before child (an operation on a
//!   node runs the same operation on its children). Hooks run with `op` held, so `Context`
//!   methods never take it.
//! - Each record's lock (sync) is a field private to the record's module and is never held
//!   across an await; the records' methods take and release it, and hand out no guard, so
//!   no code outside those modules can hold one. The one allowed nesting is lifecycle, then
//!   observation (a state change publishes its transition under the lifecycle lock); the
//!   tasks lock nests with neither. This module and [`ops`] see no sync lock at all.

mod lifecycle;
mod observe;
mod ops;
mod tasks;

use std::borrow::Cow;
use std::sync::{Arc, Weak};
use std::time::Duration;

use super::context::{Context, Shutdown};
use super::exec::{Exec, TaskHandle};
use super::failure::{Cause, Failure};
use super::state::{Snapshot, State, Transition};
use super::{Counter, Options, Restart, Service};

pub(crate) use lifecycle::Readiness;

/// Builds a fresh instance of a supervised service, for each restart.
pub(crate) type Factory = Box<dyn Fn() -> Box<dyn Service> + Send + Sync>;

/// What every node of one tree shares.
pub(crate) struct Tree {
    /// The tree's runtime, erased.
    pub(crate) exec: Box<dyn Exec>,
}

/// One service in a tree.
pub(crate) struct Node {
    /// The tree this node belongs to.
    pub(crate) tree: Arc<Tree>,
    /// The service's name.
    pub(crate) name: Box<str>,
    /// The service's path from the root, names joined by `/`.
    pub(crate) path: Arc<str>,
    /// Weak: a parent owns its children, not the other way round.
    parent: Weak<Node>,
    /// Serialises lifecycle operations on this node; taken parent before child (see the
    /// module docs).
    pub(crate) op: async_lock::Mutex<()>,
    lifecycle: lifecycle::Lifecycle,
    tasks: tasks::Tasks,
    observe: observe::Observe,
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
            lifecycle: lifecycle::Lifecycle::new(service.options(), factory, restart),
            tasks: tasks::Tasks::new(),
            observe: observe::Observe::new(),
        });
        service.init(&Context::new(node.clone()));
        node.lifecycle.put_service(service);
        node
    }

    /// The parent; `None` for the root (or once the parent is gone).
    pub(crate) fn parent(&self) -> Option<Arc<Node>> {
        self.parent.upgrade()
    }

    /// The current state.
    pub(crate) fn state(&self) -> State {
        self.lifecycle.state()
    }

    /// Ready in state, and not declared unready at run time (a client that lost its
    /// connection).
    pub(crate) fn is_ready(&self) -> bool {
        self.lifecycle.is_ready()
    }

    /// The current instance's options.
    pub(crate) fn options(&self) -> Options {
        self.lifecycle.options()
    }

    /// How the parent treats this node when it exits.
    pub(crate) fn restart_policy(&self) -> Restart {
        self.lifecycle.restart_policy()
    }

    /// How many times the parent rebuilt this node.
    pub(crate) fn restarts(&self) -> u32 {
        self.lifecycle.restarts()
    }

    /// Records a restart of one of this node's children in its restart window. Returns the
    /// backoff delay before the restart, or the limit (count, window) it would exceed.
    pub(crate) fn admit_restart(&self) -> Result<Duration, (u32, Duration)> {
        self.lifecycle.admit_restart()
    }

    /// The children, in start order.
    pub(crate) fn children(&self) -> Vec<Arc<Node>> {
        self.lifecycle.children()
    }

    /// Adds a child at the end of the start order.
    pub(crate) fn push_child(&self, child: Arc<Node>) {
        self.lifecycle.push_child(child);
    }

    /// Removes `child`; `None` if it is not a child of this node.
    pub(crate) fn take_child(&self, child: &Arc<Node>) -> Option<Arc<Node>> {
        self.lifecycle.take_child(child)
    }

    /// Why the service last failed, if it ever did.
    pub(crate) fn last_failure(&self) -> Option<Failure> {
        self.lifecycle.last_failure()
    }

    /// Sets whether the service counts as ready beyond its state.
    pub(crate) fn set_readiness(&self, readiness: Readiness) {
        self.lifecycle.set_readiness(readiness);
    }

    /// Moves to state `to`, publishing the transition.
    fn set_state(&self, to: State) {
        self.lifecycle.set_state(&self.path, &self.observe, to);
    }

    /// Waits until `done(state)` holds and returns that state.
    pub(crate) async fn wait_until(&self, done: impl Fn(State) -> bool) -> State {
        self.lifecycle.wait_until(done).await
    }

    /// The stop signal of the current run.
    pub(crate) fn shutdown(&self) -> Shutdown {
        self.tasks.shutdown()
    }

    /// Takes ownership of a spawned task (the hot path of `Context::spawn`).
    pub(crate) fn own_task(&self, name: Cow<'static, str>, handle: TaskHandle) {
        self.tasks.own(name, handle);
    }

    /// The counter `name` of this service, created at zero on first use. Counters outlive
    /// restarts, so they keep counting across instances.
    pub(crate) fn counter(&self, name: &'static str) -> Counter {
        self.observe.counter(name)
    }

    /// Sets (or clears) this node's note.
    pub(crate) fn set_note(&self, note: Option<String>) {
        self.observe.set_note(note);
    }

    /// Subscribes to this node's state changes.
    pub(crate) fn subscribe(&self) -> async_channel::Receiver<Transition> {
        self.observe.subscribe()
    }

    /// A failure of this service.
    pub(crate) fn failure(&self, cause: Cause) -> Failure {
        Failure::new(self.path.clone(), cause)
    }

    /// A snapshot of this node and its subtree. Each record is read at one moment of its own;
    /// the lifecycle is read first, and durations are recorded before the state change that
    /// makes them current, so a snapshot that shows a state shows that state's durations.
    pub(crate) fn snapshot(&self) -> Snapshot {
        let view = self.lifecycle.view();
        let mut snapshot = Snapshot {
            name: self.name.to_string(),
            path: self.path.to_string(),
            state: view.state,
            ready: view.ready,
            since: view.since,
            restarts: view.restarts,
            tasks: self.tasks.running(),
            start_duration: None,
            stop_duration: None,
            last_failure: view.last_failure,
            counters: Vec::new(),
            note: None,
            children: Vec::with_capacity(view.children.len()),
        };
        self.observe.fill(&mut snapshot);
        snapshot.children = view.children.iter().map(|child| child.snapshot()).collect();
        snapshot
    }
}
