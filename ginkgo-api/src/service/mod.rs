//! Services: the components a daemon is built from.
//!
//! A [`Service`] has asynchronous `start`, `stop` and `reload` hooks and may have children.
//! A tree of services starts, stops and reloads together:
//!
//! - **State machine** (Ginkgo's): [`State::Init`] → `Starting` → `Ready` → `Stopping` →
//!   `Stopped`, plus `Failed`. Start after stop is allowed; stop is idempotent.
//! - **Order**: children start in the order they were added, then the service's own `start`
//!   hook (or the hook first, with [`Options::start_before`]); stop runs in reverse; reload
//!   propagates in start order. A start that fails stops what it already started, in reverse.
//! - **Readiness**: a service that becomes ready later calls [`Context::not_ready`] in `start`
//!   and [`Context::set_ready`] when it is (a client once connected). The start fails if that
//!   takes longer than [`Options::start_timeout`].
//! - **Owned tasks**: [`Context::spawn`] starts a task the service owns. On stop, its tasks see
//!   the [`Shutdown`] signal, are aborted after [`Options::stop_timeout`], and any that cannot
//!   be aborted (blocking code) are named in the [`StopReport`] and the log instead of hanging.
//! - **Supervision** (OTP's): a panic or error in a hook or owned task fails the service, never
//!   the process. A parent restarts children added with [`Context::supervise`] according to
//!   their [`Restart`] policy and its [`Strategy`], within a restart intensity, with capped
//!   exponential backoff and jitter; beyond the intensity the parent fails and escalates.
//!   A restart builds a fresh instance from the child's factory and only after the old
//!   instance has stopped.
//! - **Observation**: every service has a cloneable [`ServiceHandle`] with its state,
//!   [`ServiceHandle::wait_for`], a subscription to timestamped [`Transition`]s and a
//!   [`Snapshot`] of its subtree.
//!
//! The service layer is runtime-neutral: the runtime is fixed once, when the tree is created
//! with [`tree`] or run with [`serve_forever`], so a service never names it.
//!
//! # Examples
//!
//! Ginkgo's HelloWorld: a service that owns a task printing a greeting every second.
//!
//! ```
//! use std::time::Duration;
//! use ginkgo_api::service::{Context, Error, Service, async_trait};
//!
//! struct HelloWorld;
//!
//! #[async_trait]
//! impl Service for HelloWorld {
//!     async fn start(&mut self, ctx: &Context) -> Result<(), Error> {
//!         let shutdown = ctx.shutdown();
//!         let timer = ctx.clone();
//!         ctx.spawn("greeter", async move {
//!             // Stops as soon as the service stops, instead of waiting to be aborted.
//!             while shutdown.run(timer.sleep(Duration::from_secs(1))).await.is_some() {
//!                 println!("hello world");
//!             }
//!         });
//!         Ok(())
//!     }
//! }
//! # fn demo<R: ginkgo_api::Runtime>() {
//! ginkgo_api::block_on::<R, _>(async {
//!     let hello = ginkgo_api::service::tree::<R>(HelloWorld);
//!     hello.start().await.unwrap();
//!     hello.stop().await;
//! });
//! # }
//! ```
//!
//! A service composed of two children, which start in order before it and stop after it:
//!
//! ```
//! use ginkgo_api::service::{Context, Error, Service, State, async_trait};
//!
//! struct Database;
//! #[async_trait]
//! impl Service for Database {}
//!
//! struct Cache;
//! #[async_trait]
//! impl Service for Cache {}
//!
//! struct App;
//! #[async_trait]
//! impl Service for App {
//!     fn init(&mut self, ctx: &Context) {
//!         ctx.add_child(Database);
//!         ctx.add_child(Cache);
//!     }
//! }
//! # fn demo<R: ginkgo_api::Runtime>() {
//! ginkgo_api::block_on::<R, _>(async {
//!     let app = ginkgo_api::service::tree::<R>(App);
//!     app.start().await.unwrap();
//!     assert_eq!(app.child("Cache").unwrap().state(), State::Ready);
//!     assert!(app.stop().await.is_clean());
//! });
//! # }
//! ```

mod context;
mod exec;
mod failure;
mod handle;
mod node;
mod state;
mod supervise;

use std::time::Duration;

use crate::time::Backoff;

pub use async_trait::async_trait;
pub use context::{Context, Shutdown, ShutdownWait};
pub use failure::{Cause, Failure, Hook, SharedError, StopReport, StuckTask};
pub use handle::{ServiceHandle, serve, serve_forever, tree};
pub use state::{Snapshot, State, Transition};

/// A named counter of a service, shown in its [`Snapshot`] and by `/metrics`: cheap to clone
/// and to update from any task.
///
/// # Examples
///
/// ```
/// # fn demo(ctx: &ginkgo_api::service::Context) {
/// let accepted = ctx.counter("connections_accepted");
/// accepted.inc();
/// assert_eq!(accepted.get(), 1);
/// # }
/// ```
#[derive(Debug, Clone, Default)]
pub struct Counter(std::sync::Arc<std::sync::atomic::AtomicU64>);

impl Counter {
    /// Adds one.
    pub fn inc(&self) {
        self.add(1);
    }

    /// Adds `n`.
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
    }

    /// Subtracts one, stopping at zero (for gauges such as open connections).
    pub fn dec(&self) {
        let _ = self.0.fetch_update(
            std::sync::atomic::Ordering::Relaxed,
            std::sync::atomic::Ordering::Relaxed,
            |n| n.checked_sub(1),
        );
    }

    /// The current value.
    pub fn get(&self) -> u64 {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// The error type of service hooks and owned tasks: any error, boxed.
pub type Error = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A component of a daemon: started, stopped and reloaded with its children.
///
/// Every method has a default, so a service implements only what it needs. The hooks run one
/// at a time for a given service (never concurrently with each other).
///
/// # Errors
///
/// A hook that returns an error or panics fails the service: in `start`, the start is rolled
/// back; in `stop`, the stop still completes and the error is listed in the [`StopReport`]; in
/// `reload`, the service keeps running with its old configuration and the caller gets the
/// error.
#[async_trait]
pub trait Service: Send + 'static {
    /// The name shown in paths, logs and snapshots; by default the type's name.
    fn name(&self) -> &str {
        let full = std::any::type_name::<Self>();
        let base = full.split('<').next().unwrap_or(full);
        base.rsplit("::").next().unwrap_or(base)
    }

    /// Settings for this service: start order, timeouts, supervision of its children.
    fn options(&self) -> Options {
        Options::default()
    }

    /// Called once when the service joins a tree (and again for each fresh instance after a
    /// restart), before any start: the place to add children.
    fn init(&mut self, ctx: &Context) {
        let _ = ctx;
    }

    /// Starts the service. Tasks spawned with [`Context::spawn`] are owned by it.
    async fn start(&mut self, ctx: &Context) -> Result<(), Error> {
        let _ = ctx;
        Ok(())
    }

    /// Stops the service. Its children are already stopped; its tasks stop after this.
    async fn stop(&mut self, ctx: &Context) -> Result<(), Error> {
        let _ = ctx;
        Ok(())
    }

    /// Re-reads configuration. On error the service keeps running as it was.
    async fn reload(&mut self, ctx: &Context) -> Result<(), Error> {
        let _ = ctx;
        Ok(())
    }
}

/// How a parent treats a child that exits (OTP's restart types).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Restart {
    /// Always restarted, whether it failed or exited normally.
    Permanent,
    /// Restarted only when it failed.
    Transient,
    /// Never restarted; its failure does not affect the parent.
    #[default]
    Temporary,
}

/// Which children a parent restarts when one of them exits (OTP's strategies).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Strategy {
    /// Only the child that exited.
    #[default]
    OneForOne,
    /// All children: the others are stopped (in reverse order) and all are started again.
    OneForAll,
    /// The child that exited and those added after it.
    RestForOne,
}

/// Settings of one service, returned by [`Service::options`].
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use ginkgo_api::service::{Options, Strategy};
///
/// let options = Options::default()
///     .start_timeout(Duration::from_secs(30))
///     .strategy(Strategy::OneForAll)
///     .restart_intensity(3, Duration::from_secs(60));
/// assert_eq!(options.max_restarts, 3);
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Options {
    /// Run the service's own `start` hook before starting its children (Ginkgo's
    /// `start_before`). Default: `false`.
    pub start_before: bool,
    /// How long the `start` hook plus the wait for readiness may take. Default: 10 s.
    pub start_timeout: Duration,
    /// How long the `stop` hook plus the graceful exit of owned tasks may take before the
    /// tasks are aborted. Default: 5 s.
    pub stop_timeout: Duration,
    /// How this service restarts its supervised children. Default: one for one.
    pub strategy: Strategy,
    /// At most this many restarts of children within [`Options::restart_window`]; one more
    /// fails this service (OTP's intensity). Default: 5.
    pub max_restarts: u32,
    /// The sliding window for [`Options::max_restarts`]. Default: 10 s.
    pub restart_window: Duration,
    /// The delay before each restart within the window: the first is `initial`, each further
    /// one doubles, up to `max`. Default: 100 ms doubling to 10 s, with ±10 % jitter.
    pub backoff: Backoff,
}

/// Default [`Options::start_timeout`]: long enough for a service that connects somewhere at
/// start, short enough that a hung start is noticed.
const DEFAULT_START_TIMEOUT: Duration = Duration::from_secs(10);

/// Default [`Options::stop_timeout`]: time for tasks to drain, inside the 10 s a container
/// runtime waits by default between SIGTERM and SIGKILL.
const DEFAULT_STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// Default [`Options::max_restarts`]: with the default window, a child that fails more than
/// once every two seconds on average is not recovering, so its parent escalates.
const DEFAULT_MAX_RESTARTS: u32 = 5;

/// Default [`Options::restart_window`]: see [`DEFAULT_MAX_RESTARTS`].
const DEFAULT_RESTART_WINDOW: Duration = Duration::from_secs(10);

/// Default first restart delay: long enough not to spin on a child that fails at once, short
/// enough to go unnoticed after a one-off failure.
const DEFAULT_BACKOFF_INITIAL: Duration = Duration::from_millis(100);

/// Default cap on the restart delay: the default restart window, since a longer delay would
/// let the window forget earlier restarts and the intensity could never trip.
const DEFAULT_BACKOFF_MAX: Duration = Duration::from_secs(10);

/// Default jitter of the restart delay (±10 %): spreads out siblings that failed together.
const DEFAULT_BACKOFF_JITTER: f64 = 0.1;

/// What `event_listener::Event::notify` takes to wake every listener, not a count.
const NOTIFY_ALL: usize = usize::MAX;

impl Default for Options {
    fn default() -> Self {
        Self {
            start_before: false,
            start_timeout: DEFAULT_START_TIMEOUT,
            stop_timeout: DEFAULT_STOP_TIMEOUT,
            strategy: Strategy::OneForOne,
            max_restarts: DEFAULT_MAX_RESTARTS,
            restart_window: DEFAULT_RESTART_WINDOW,
            backoff: Backoff::new(
                DEFAULT_BACKOFF_INITIAL,
                DEFAULT_BACKOFF_MAX,
                DEFAULT_BACKOFF_JITTER,
            ),
        }
    }
}

impl Options {
    /// Sets [`Options::start_before`].
    #[must_use]
    pub fn start_before(mut self, yes: bool) -> Self {
        self.start_before = yes;
        self
    }

    /// Sets [`Options::start_timeout`].
    #[must_use]
    pub fn start_timeout(mut self, timeout: Duration) -> Self {
        self.start_timeout = timeout;
        self
    }

    /// Sets [`Options::stop_timeout`].
    #[must_use]
    pub fn stop_timeout(mut self, timeout: Duration) -> Self {
        self.stop_timeout = timeout;
        self
    }

    /// Sets [`Options::strategy`].
    #[must_use]
    pub fn strategy(mut self, strategy: Strategy) -> Self {
        self.strategy = strategy;
        self
    }

    /// Sets [`Options::max_restarts`] and [`Options::restart_window`].
    #[must_use]
    pub fn restart_intensity(mut self, max_restarts: u32, window: Duration) -> Self {
        self.max_restarts = max_restarts;
        self.restart_window = window;
        self
    }

    /// Sets the restart backoff: the first delay, the cap, and the jitter fraction (clamped to
    /// 0..=1).
    #[must_use]
    pub fn backoff(mut self, initial: Duration, max: Duration, jitter: f64) -> Self {
        self.backoff = Backoff::new(initial, max, jitter);
        self
    }
}

/// What an owned task may return: `()` or `Result<(), E>`. An `Err` fails the service.
pub trait TaskResult: Send + 'static {
    /// Converts into the common form.
    ///
    /// # Errors
    ///
    /// Returns the task's error, if it had one.
    fn into_result(self) -> Result<(), Error>;
}

impl TaskResult for () {
    fn into_result(self) -> Result<(), Error> {
        Ok(())
    }
}

impl<E: Into<Error> + Send + 'static> TaskResult for Result<(), E> {
    fn into_result(self) -> Result<(), Error> {
        self.map_err(Into::into)
    }
}

/// Names the never type `!` on stable Rust, so that a task that loops forever (whose output
/// is `!` under edition 2024) is accepted by [`Context::spawn`].
mod never {
    pub trait FnOutput {
        type Output;
    }

    impl<T> FnOutput for fn() -> T {
        type Output = T;
    }

    #[allow(unreachable_pub)] // Why: public only so the sealed impl below may name it.
    pub type Never = <fn() -> ! as FnOutput>::Output;
}

impl TaskResult for never::Never {
    fn into_result(self) -> Result<(), Error> {
        self
    }
}
