//! What a service's hooks and tasks use: [`Context`] and the [`Shutdown`] signal.

use std::borrow::Cow;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context as TaskContext, Poll, Waker};
use std::time::Duration;

use event_listener::{Event, EventListener};
use futures_lite::FutureExt;

use super::failure::Cause;
use super::handle::ServiceHandle;
use super::node::{Node, Readiness};
use super::{Restart, Service, TaskResult};

/// A service's view of itself, handed to its hooks; cheap to clone into its tasks.
///
/// Through it a service spawns tasks it owns, adds and removes children, reports readiness and
/// watches for its own shutdown.
#[derive(Clone)]
pub struct Context {
    node: Arc<Node>,
}

impl Context {
    pub(crate) fn new(node: Arc<Node>) -> Self {
        Self { node }
    }

    /// The service's name.
    pub fn name(&self) -> &str {
        &self.node.name
    }

    /// The service's path from the root, such as `app/db`.
    pub fn path(&self) -> &str {
        &self.node.path
    }

    /// A handle to this service.
    pub fn handle(&self) -> ServiceHandle {
        ServiceHandle::new(self.node.clone())
    }

    /// Spawns a task owned by this service, named for logs and stop reports.
    ///
    /// The task is told to stop through [`Context::shutdown`] when the service stops and is
    /// aborted after the service's stop timeout. If it panics or returns an `Err`, the service
    /// fails (and its parent may restart it); if it returns `()` or `Ok(())`, it simply ends.
    pub fn spawn<F>(&self, name: impl Into<Cow<'static, str>>, future: F)
    where
        F: Future + Send + 'static,
        F::Output: TaskResult,
    {
        let name = name.into();
        let node = Arc::downgrade(&self.node);
        let task = name.to_string();
        let watched = async move {
            let outcome = AssertUnwindSafe(future).catch_unwind().await;
            report(&node, task, outcome);
        };
        let mut handle = self.node.tree.exec.spawn(Box::pin(watched));
        // A task the backend could not start never ran to report it: fail the service here.
        if let Some(err) = handle.start_error() {
            self.node.clone().task_failed(Cause::TaskError {
                task: name.to_string(),
                error: Arc::new(err),
            });
        }
        self.node.own_task(name, handle);
    }

    /// Spawns an owned task that starts after `delay` (Ginkgo's `spawn_later`).
    pub fn spawn_later<F>(&self, name: impl Into<Cow<'static, str>>, delay: Duration, future: F)
    where
        F: Future + Send + 'static,
        F::Output: TaskResult,
    {
        let timer = self.node.tree.exec.sleep(delay);
        self.spawn(name, async move {
            timer.await;
            future.await
        });
    }

    /// Runs a blocking closure on a thread of its own, owned by this service. If it is still
    /// running when the service stops, the stop report names it (it cannot be aborted).
    pub fn spawn_blocking<F, T>(&self, name: impl Into<Cow<'static, str>>, f: F)
    where
        F: FnOnce() -> T + Send + 'static,
        T: TaskResult,
    {
        let name = name.into();
        let node = Arc::downgrade(&self.node);
        let task = name.to_string();
        let call = move || {
            let outcome = std::panic::catch_unwind(AssertUnwindSafe(f));
            report(&node, task, outcome);
        };
        let handle = self.node.tree.exec.spawn_blocking(Box::new(call));
        self.node.own_task(name, handle);
    }

    /// The counter `name` of this service (created at zero on first use), shown in snapshots,
    /// `status` and `/metrics`. It keeps counting across restarts.
    pub fn counter(&self, name: &'static str) -> super::Counter {
        self.node.counter(name)
    }

    /// Sets a short text the service says of itself, shown under it in `status` and in the
    /// `/status` JSON (`note`): who leads, which peers it sees. It stays until replaced or
    /// cleared with [`Context::clear_note`].
    pub fn set_note(&self, note: impl Into<String>) {
        self.node.set_note(Some(note.into()));
    }

    /// Clears the note of [`Context::set_note`].
    pub fn clear_note(&self) {
        self.node.set_note(None);
    }

    /// Sleeps on the tree's runtime; for services written without naming a runtime.
    pub fn sleep(&self, duration: Duration) -> impl Future<Output = ()> + Send + 'static {
        self.node.tree.exec.sleep(duration)
    }

    /// The signal this service's tasks get when it stops. A fresh signal is made at each start.
    pub fn shutdown(&self) -> Shutdown {
        self.node.shutdown()
    }

    /// Declares the service not ready.
    ///
    /// During `start`, the start then waits until [`Context::set_ready`] is called, within
    /// the start timeout. Once started, the service keeps its state but stops counting as
    /// ready (in snapshots and `/readyz`) until `set_ready` is called again: a client while
    /// it has lost its connection, say.
    pub fn not_ready(&self) {
        self.node.set_readiness(Readiness::Pending);
    }

    /// Declares the service not ready without holding up its start: the start completes
    /// (the service is started, its siblings after it start too), and it counts as not ready
    /// (in snapshots and `/readyz`) until [`Context::set_ready`]. For a client that may start
    /// before its server is there and connects in the background.
    pub fn start_not_ready(&self) {
        self.node.set_readiness(Readiness::Down);
    }

    /// Declares the service ready: a pending start completes, a running service counts as
    /// ready again.
    pub fn set_ready(&self) {
        self.node.set_readiness(Readiness::Ready);
    }

    /// Adds a child that is not restarted if it fails ([`Restart::Temporary`]). Before the
    /// service starts (in [`Service::init`]) the child starts with it; at run time, start it
    /// with [`ServiceHandle::start`], or use [`Context::start_child`].
    pub fn add_child(&self, service: impl Service) -> ServiceHandle {
        let child = Node::create(
            self.node.tree.clone(),
            Some(&self.node),
            Box::new(service),
            None,
            Restart::Temporary,
        );
        self.node.push_child(child.clone());
        ServiceHandle::new(child)
    }

    /// Adds a supervised child, built by `factory` now and again for each restart, so its
    /// arguments need not be `Clone`. This service restarts it according to `restart` and its
    /// own [`Options`](super::Options).
    pub fn supervise<S, F>(&self, restart: Restart, factory: F) -> ServiceHandle
    where
        S: Service,
        F: Fn() -> S + Send + Sync + 'static,
    {
        let factory: super::node::Factory = Box::new(move || Box::new(factory()));
        let first = factory();
        let child = Node::create(
            self.node.tree.clone(),
            Some(&self.node),
            first,
            Some(factory),
            restart,
        );
        self.node.push_child(child.clone());
        ServiceHandle::new(child)
    }

    /// Adds a child and starts it now: the way to grow a running tree.
    ///
    /// # Errors
    ///
    /// Returns the child's start failure; the failed child stays listed, in state
    /// [`State::Failed`](super::State::Failed).
    pub async fn start_child(
        &self,
        service: impl Service,
    ) -> Result<ServiceHandle, super::Failure> {
        let handle = self.add_child(service);
        handle.start().await?;
        Ok(handle)
    }

    /// Removes a child and stops it. Returns `None` if it is not a child of this service.
    pub async fn remove_child(&self, child: &ServiceHandle) -> Option<super::StopReport> {
        let node = self.node.take_child(child.node())?;
        Some(node.stop().await)
    }

    /// Ends this service normally, as if its work were done: it is stopped, and its parent
    /// restarts it only if it is [`Restart::Permanent`]. Safe to call from the service's own
    /// tasks (the stop runs in a task of its own).
    pub fn exit(&self) {
        let node = self.node.clone();
        drop(
            self.node
                .tree
                .exec
                .spawn(Box::pin(super::supervise::exit(node))),
        );
    }
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("path", &self.path())
            .finish()
    }
}

/// Tells the owning service (if it still exists) that its task `task` failed, if it did.
fn report<T: TaskResult>(
    node: &std::sync::Weak<Node>,
    task: String,
    outcome: Result<T, Box<dyn std::any::Any + Send>>,
) {
    let cause = match outcome {
        Ok(output) => match output.into_result() {
            Ok(()) => return,
            Err(error) => Cause::TaskError {
                task,
                error: error.into(),
            },
        },
        Err(payload) => Cause::TaskPanic {
            task,
            message: panic_text(payload.as_ref()),
        },
    };
    if let Some(node) = node.upgrade() {
        node.task_failed(cause);
    }
}

pub(crate) fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    crate::task::payload_message(payload)
        .unwrap_or("non-string panic payload")
        .to_owned()
}

/// A service's stop signal, cloned into its tasks so they can finish on their own before
/// being aborted.
///
/// # Examples
///
/// ```
/// # async fn work() {}
/// # fn demo(shutdown: ginkgo_api::service::Shutdown) -> impl std::future::Future<Output = ()> {
/// async move {
///     // Work until the service stops.
///     while shutdown.run(work()).await.is_some() {}
/// }
/// # }
/// ```
#[derive(Clone, Default)]
pub struct Shutdown(Arc<ShutdownState>);

#[derive(Default)]
struct ShutdownState {
    triggered: AtomicBool,
    event: Event,
}

impl Shutdown {
    pub(crate) fn trigger(&self) {
        self.0.triggered.store(true, Ordering::SeqCst);
        self.0.event.notify(super::NOTIFY_ALL);
    }

    /// Whether the service has begun stopping.
    pub fn is_triggered(&self) -> bool {
        self.0.triggered.load(Ordering::SeqCst)
    }

    /// Waits until the service begins stopping.
    ///
    /// The returned future is cheap to poll again: a connection task polls it beside its
    /// socket on every wake-up, so it only touches the shared event when its waker changes.
    pub fn wait(&self) -> ShutdownWait<'_> {
        ShutdownWait {
            shutdown: self,
            listener: None,
            waker: None,
        }
    }

    /// Runs `future` until it completes (`Some`) or the service begins stopping (`None`, and
    /// the future is dropped).
    pub async fn run<F: Future>(&self, future: F) -> Option<F::Output> {
        futures_lite::future::or(async { Some(future.await) }, async {
            self.wait().await;
            None
        })
        .await
    }
}

/// The future of [`Shutdown::wait`].
#[must_use = "futures do nothing unless awaited"]
pub struct ShutdownWait<'a> {
    shutdown: &'a Shutdown,
    listener: Option<EventListener>,
    /// The waker the listener holds; polling with one that would wake the same task need
    /// not lock the event's list again.
    waker: Option<Waker>,
}

impl Future for ShutdownWait<'_> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<()> {
        let this = &mut *self;
        loop {
            // `trigger` sets the flag before notifying, so a woken task sees it here.
            if this.shutdown.is_triggered() {
                return Poll::Ready(());
            }
            let Some(listener) = &mut this.listener else {
                this.listener = Some(this.shutdown.0.event.listen());
                continue; // the flag may have been set before the listener existed
            };
            if this.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                return Poll::Pending;
            }
            match Pin::new(listener).poll(cx) {
                Poll::Ready(()) => {
                    this.listener = None;
                    this.waker = None;
                }
                Poll::Pending => {
                    this.waker = Some(cx.waker().clone());
                    return Poll::Pending;
                }
            }
        }
    }
}

impl std::fmt::Debug for ShutdownWait<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShutdownWait")
            .field("triggered", &self.shutdown.is_triggered())
            .finish()
    }
}

impl std::fmt::Debug for Shutdown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shutdown")
            .field("triggered", &self.is_triggered())
            .finish()
    }
}
