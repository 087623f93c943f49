//! A configurable service that records what happens to it, for the service cases.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use ginkgo_api::service::{Context, Error, Options, Service, async_trait};

/// A shared, ordered record of events such as `"start a"`.
#[derive(Clone, Default, Debug)]
pub struct Log(Arc<Mutex<Vec<String>>>);

impl Log {
    /// Appends an event.
    pub fn push(&self, event: impl Into<String>) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(event.into());
    }

    /// The events so far.
    pub fn events(&self) -> Vec<String> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Takes the events so far, leaving the log empty.
    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// The events that start with `prefix`.
    pub fn with_prefix(&self, prefix: &str) -> Vec<String> {
        self.events()
            .into_iter()
            .filter(|e| e.starts_with(prefix))
            .collect()
    }
}

/// What a hook of a [`Probe`] does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Act {
    /// Succeeds.
    #[default]
    Ok,
    /// Returns an error.
    Error,
    /// Panics.
    Panic,
    /// Never returns.
    Hang,
}

type Build = Arc<dyn Fn(&Context) + Send + Sync>;

/// A service that logs `"<hook> <name>"` for each hook and does what it is told.
#[derive(Clone)]
pub struct Probe {
    name: String,
    log: Log,
    options: Options,
    on_start: Act,
    on_stop: Act,
    on_reload: Act,
    not_ready_for: Option<Option<Duration>>,
    build: Option<Build>,
    after_start: Option<Build>,
}

impl Probe {
    /// A probe named `name` that records into `log` and succeeds at everything.
    pub fn new(name: &str, log: &Log) -> Self {
        Self {
            name: name.to_owned(),
            log: log.clone(),
            options: Options::default(),
            on_start: Act::Ok,
            on_stop: Act::Ok,
            on_reload: Act::Ok,
            not_ready_for: None,
            build: None,
            after_start: None,
        }
    }

    /// Sets its options.
    pub fn options(mut self, options: Options) -> Self {
        self.options = options;
        self
    }

    /// What `start` does.
    pub fn on_start(mut self, act: Act) -> Self {
        self.on_start = act;
        self
    }

    /// What `stop` does.
    pub fn on_stop(mut self, act: Act) -> Self {
        self.on_stop = act;
        self
    }

    /// What `reload` does.
    pub fn on_reload(mut self, act: Act) -> Self {
        self.on_reload = act;
        self
    }

    /// Calls `not_ready()` in `start`, then `set_ready()` from a task after `delay` (never,
    /// with `None`).
    pub fn ready_after(mut self, delay: Option<Duration>) -> Self {
        self.not_ready_for = Some(delay);
        self
    }

    /// Runs `build` in `init` (to add children).
    pub fn children(mut self, build: impl Fn(&Context) + Send + Sync + 'static) -> Self {
        self.build = Some(Arc::new(build));
        self
    }

    /// Runs `f` at the end of a successful `start` (to spawn tasks).
    pub fn after_start(mut self, f: impl Fn(&Context) + Send + Sync + 'static) -> Self {
        self.after_start = Some(Arc::new(f));
        self
    }
}

async fn act(act: Act, what: &str) -> Result<(), Error> {
    match act {
        Act::Ok => Ok(()),
        Act::Error => Err(format!("{what} refused").into()),
        Act::Panic => panic!("{what} panicked"),
        Act::Hang => std::future::pending().await,
    }
}

#[async_trait]
impl Service for Probe {
    fn name(&self) -> &str {
        &self.name
    }

    fn options(&self) -> Options {
        self.options.clone()
    }

    fn init(&mut self, ctx: &Context) {
        if let Some(build) = &self.build {
            build(ctx);
        }
    }

    async fn start(&mut self, ctx: &Context) -> Result<(), Error> {
        self.log.push(format!("start {}", self.name));
        act(self.on_start, &format!("start {}", self.name)).await?;
        if let Some(delay) = self.not_ready_for {
            ctx.not_ready();
            if let Some(delay) = delay {
                let ready = ctx.clone();
                ctx.spawn("readiness", async move {
                    ready.sleep(delay).await;
                    ready.set_ready();
                });
            }
        }
        if let Some(f) = &self.after_start {
            f(ctx);
        }
        Ok(())
    }

    async fn stop(&mut self, _ctx: &Context) -> Result<(), Error> {
        self.log.push(format!("stop {}", self.name));
        act(self.on_stop, &format!("stop {}", self.name)).await
    }

    async fn reload(&mut self, _ctx: &Context) -> Result<(), Error> {
        self.log.push(format!("reload {}", self.name));
        act(self.on_reload, &format!("reload {}", self.name)).await
    }
}
