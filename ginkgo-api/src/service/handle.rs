//! [`ServiceHandle`], and the entry points [`tree`] and [`serve_forever`].

use std::fmt;
use std::sync::Arc;

use super::exec::RuntimeExec;
use super::failure::{Cause, Failure, StopReport};
use super::node::{Node, Tree};
use super::state::{Snapshot, State, Transition};
use super::{Restart, Service};
use crate::runtime::Runtime;

/// A cloneable handle to a service in a tree: observe it, start, stop or reload it.
///
/// A handle stays valid across restarts (the parent swaps the instance behind it).
#[derive(Clone)]
pub struct ServiceHandle {
    node: Arc<Node>,
}

impl ServiceHandle {
    pub(crate) fn new(node: Arc<Node>) -> Self {
        Self { node }
    }

    pub(crate) fn node(&self) -> &Arc<Node> {
        &self.node
    }

    /// The service's name.
    pub fn name(&self) -> &str {
        &self.node.name
    }

    /// The service's path from the root, such as `app/db`.
    pub fn path(&self) -> &str {
        &self.node.path
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.node.state()
    }

    /// Whether it counts as ready: in state ready, and not declared unready at run time.
    pub fn is_ready(&self) -> bool {
        self.node.is_ready()
    }

    /// Why the service last failed, if it ever did.
    pub fn last_failure(&self) -> Option<Failure> {
        self.node.last_failure()
    }

    /// How many times the service was restarted by its parent.
    pub fn restarts(&self) -> u32 {
        self.node.restarts()
    }

    /// The parent service; `None` for the root.
    pub fn parent(&self) -> Option<ServiceHandle> {
        self.node.parent().map(Self::new)
    }

    /// The root of the tree this service belongs to (itself, for the root).
    pub fn root(&self) -> ServiceHandle {
        let mut node = self.node.clone();
        while let Some(parent) = node.parent() {
            node = parent;
        }
        Self::new(node)
    }

    /// The children, in start order.
    pub fn children(&self) -> Vec<ServiceHandle> {
        self.node.children().into_iter().map(Self::new).collect()
    }

    /// The first child with this name.
    pub fn child(&self, name: &str) -> Option<ServiceHandle> {
        self.node
            .children()
            .into_iter()
            .find(|child| &*child.name == name)
            .map(Self::new)
    }

    /// Starts the service and its subtree (children first, unless it starts before them) and
    /// waits until it is ready. Starting a running service does nothing.
    ///
    /// # Errors
    ///
    /// Returns why the start failed: a hook's error or panic, a task's failure, a child's
    /// failure, or the start timeout. Whatever had started is stopped again, in reverse.
    pub async fn start(&self) -> Result<(), Failure> {
        self.node.clone().start().await
    }

    /// Stops the service and its subtree (children first, in reverse order). Always completes
    /// within the services' stop timeouts; the report names tasks that could not be stopped
    /// and hooks that failed. Stopping a stopped service does nothing.
    pub async fn stop(&self) -> StopReport {
        self.node.clone().stop().await
    }

    /// Reloads the service and its subtree in start order.
    ///
    /// # Errors
    ///
    /// Returns the first reload hook that failed; the services keep running as they were.
    /// Fails with [`Cause::NotRunning`] unless the service is ready.
    pub async fn reload(&self) -> Result<(), Failure> {
        self.node.clone().reload().await
    }

    /// Waits until the service is in `state`. It may wait forever (for a service that is never
    /// started, say): bound it with a timeout where that matters.
    pub async fn wait_for(&self, state: State) {
        self.node.wait_until(|now| now == state).await;
    }

    /// Waits until `done` holds for the state, and returns that state.
    pub async fn wait_until(&self, done: impl Fn(State) -> bool) -> State {
        self.node.wait_until(done).await
    }

    /// Subscribes to the service's state changes, each with its timestamp, in order.
    pub fn subscribe(&self) -> crate::sync::channel::Receiver<Transition> {
        self.node.subscribe()
    }

    /// A snapshot of the service and its subtree.
    pub fn snapshot(&self) -> Snapshot {
        self.node.snapshot()
    }
}

impl fmt::Debug for ServiceHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceHandle")
            .field("path", &self.path())
            .field("state", &self.state())
            .finish()
    }
}

/// Makes `root` the root of a new service tree on runtime `R` and returns its handle. Nothing
/// starts until [`ServiceHandle::start`].
pub fn tree<R: Runtime>(root: impl Service) -> ServiceHandle {
    let tree = Arc::new(Tree {
        exec: Box::new(RuntimeExec::<R>::new()),
    });
    ServiceHandle::new(Node::create(
        tree,
        None,
        Box::new(root),
        None,
        Restart::Temporary,
    ))
}

/// Starts `root` on runtime `R` and runs it until it stops (through its handle or
/// [`Context::exit`](super::Context::exit)) or fails.
///
/// # Errors
///
/// Returns the failure if the root failed to start or failed while running (for example
/// because a child exceeded its restart intensity).
pub async fn serve_forever<R: Runtime>(root: impl Service) -> Result<(), Failure> {
    let handle = tree::<R>(root);
    serve(&handle).await
}

/// Starts the tree behind `handle` and waits until its root stops or fails.
///
/// # Errors
///
/// As [`serve_forever`].
pub async fn serve(handle: &ServiceHandle) -> Result<(), Failure> {
    handle.start().await?;
    match handle
        .wait_until(|state| matches!(state, State::Stopped | State::Failed))
        .await
    {
        State::Failed => Err(handle
            .last_failure()
            .unwrap_or_else(|| handle.node.failure(Cause::NotRunning(State::Failed)))),
        _ => Ok(()),
    }
}
