//! [`Singleton`]: a service whose child runs only on the instance that leads its role.

use std::fmt;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{LeaderError, Leadership, Term};
use crate::Runtime;
use crate::kv::{Kv, KvError};
use crate::service::{Context, Error, Restart, Service, ServiceHandle, async_trait};

type Factory<S> = Arc<dyn Fn() -> S + Send + Sync>;

/// A service that campaigns for a role and runs its child only while it leads: the child is
/// started when this instance is elected, and stopped (gracefully, within the child's stop
/// timeout) a stop timeout *before* the term would end unrenewed, so at most one instance
/// runs the child at a time (see the [module docs](super) for exactly when).
///
/// The Singleton itself is ready while it campaigns, leading or not. A store that does not
/// answer at start (a cluster electing, a server restarting) does not fail the start: the
/// Singleton opens the role's bucket in the background, trying every quarter lease, and
/// campaigns once it answers. What trying again cannot fix (a lease the role's bucket was not
/// made with) fails the start, or the Singleton if it is found later. When it stops, it stops
/// the child first, then resigns so another instance takes over at once (waiting at most one
/// lease for the store's answer: the lease ends the term by then anyway). The child is
/// supervised by the Singleton (restarted if it fails, within the Singleton's restart
/// intensity); its counters `elected`, `lost` and `campaign_errors` count terms won, terms
/// lost and store failures while campaigning.
///
/// The lease must leave room for the renewals and a graceful stop: at least 2.5 × the
/// child's stop timeout (the factory is called once at start to read it), or the start fails.
///
/// # Examples
///
/// ```
/// # fn demo<R: ginkgo_api::Runtime>() {
/// use std::time::Duration;
/// use ginkgo_api::kv::Kv;
/// use ginkgo_api::leader::{Leadership, Singleton};
/// use ginkgo_api::service::{Options, Service, async_trait};
///
/// /// Work that must run on one instance only.
/// struct Scheduler;
///
/// #[async_trait]
/// impl Service for Scheduler {
///     fn name(&self) -> &str { "scheduler" }
///     fn options(&self) -> Options { Options::default().stop_timeout(Duration::from_secs(1)) }
/// }
///
/// ginkgo_api::block_on::<R, _>(async {
///     let kv = Kv::isolated();
///     let lease = Duration::from_secs(3);
///     let tree = ginkgo_api::service::tree::<R>(
///         Singleton::<R, _>::new(kv.clone(), "scheduler", lease, || Scheduler).candidate("me"),
///     );
///     tree.start().await.unwrap();
///     let watch = Leadership::<R>::new(&kv, "scheduler", lease).await.unwrap();
///     let mut leaders = watch.watch().await.unwrap();
///     while leaders.next().await.unwrap().as_deref() != Some("me") {}
///     tree.stop().await;
///     assert_eq!(watch.leader().await.unwrap(), None, "it resigned when it stopped");
/// });
/// # }
/// ```
pub struct Singleton<R: Runtime, S> {
    name: String,
    kv: Kv,
    role: String,
    lease: Duration,
    candidate: Option<String>,
    factory: Factory<S>,
    leading: Arc<Mutex<Option<Leading<R>>>>,
    _runtime: PhantomData<fn() -> R>,
}

/// What the Singleton holds while it leads.
struct Leading<R: Runtime> {
    term: Arc<Term<R>>,
    child: ServiceHandle,
}

impl<R: Runtime, S> fmt::Debug for Singleton<R, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Singleton")
            .field("name", &self.name)
            .field("role", &self.role)
            .field("lease", &self.lease)
            .finish_non_exhaustive()
    }
}

use crate::sync::lock_unpoisoned as lock;

impl<R: Runtime, S: Service> Singleton<R, S> {
    /// A Singleton named `singleton` that campaigns for `role` in `kv` with `lease`, and runs
    /// the child `factory` builds (anew for each term and restart).
    pub fn new<F>(kv: Kv, role: impl Into<String>, lease: Duration, factory: F) -> Self
    where
        F: Fn() -> S + Send + Sync + 'static,
    {
        Self {
            name: "singleton".to_owned(),
            kv,
            role: role.into(),
            lease,
            candidate: None,
            factory: Arc::new(factory),
            leading: Arc::default(),
            _runtime: PhantomData,
        }
    }

    /// With the service name `name`.
    #[must_use]
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// With the candidate id `id` instead of a generated one (see
    /// [`Leadership::with_candidate`]).
    #[must_use]
    pub fn candidate(mut self, id: impl Into<String>) -> Self {
        self.candidate = Some(id.into());
        self
    }
}

/// What a Singleton needs to open its candidacy: at start, and again after a start that found
/// the store unavailable.
struct Opening {
    ctx: Context,
    kv: Kv,
    role: String,
    lease: Duration,
    candidate: Option<String>,
}

impl Opening {
    /// The candidacy for the role, with the candidate id if one is given.
    async fn open<R: Runtime>(&self) -> Result<Leadership<R>, LeaderError> {
        let leadership = Leadership::<R>::new(&self.kv, &self.role, self.lease).await?;
        Ok(match &self.candidate {
            Some(id) => leadership.with_candidate(id.clone()),
            None => leadership,
        })
    }

    /// Tries to open the candidacy every renewal tick until the store answers: `None` if the
    /// service stops first. An error that trying again cannot fix is returned (and fails the
    /// Singleton); store failures count as `campaign_errors`.
    async fn retry<R: Runtime>(&self) -> Result<Option<Leadership<R>>, LeaderError> {
        let shutdown = self.ctx.shutdown();
        let errors = self.ctx.counter("campaign_errors");
        self.ctx
            .set_note(format!("waiting for the store to open {}", self.role));
        loop {
            if shutdown.run(self.ctx.sleep(self.lease / 4)).await.is_none() {
                return Ok(None);
            }
            match shutdown.run(self.open::<R>()).await {
                None => return Ok(None),
                Some(Ok(leadership)) => return Ok(Some(leadership)),
                Some(Err(LeaderError::Store(KvError::Transport(err)))) => {
                    errors.inc();
                    tracing::warn!(service = self.ctx.path(), role = %self.role, error = %err, "the store did not answer; trying again");
                }
                Some(Err(err)) => return Err(err),
            }
        }
    }
}

#[async_trait]
impl<R: Runtime, S: Service> Service for Singleton<R, S> {
    fn name(&self) -> &str {
        &self.name
    }

    async fn start(&mut self, ctx: &Context) -> Result<(), Error> {
        let stop_timeout = (self.factory)().options().stop_timeout;
        if self.lease.as_secs_f64() < 2.5 * stop_timeout.as_secs_f64() {
            return Err(format!(
                "the lease of role {:?} ({:?}) must be at least 2.5 × the child's stop timeout \
                 ({stop_timeout:?}), to renew it and still stop the child before it ends",
                self.role, self.lease
            )
            .into());
        }
        // A store that does not answer now (a cluster electing, its servers restarting) is
        // waited for in the background: the Singleton is ready, standing by. What waiting
        // cannot fix (a role name, a lease the bucket was not made with) fails the start.
        let opening = Opening {
            ctx: ctx.clone(),
            kv: self.kv.clone(),
            role: self.role.clone(),
            lease: self.lease,
            candidate: self.candidate.clone(),
        };
        let opened = match opening.open::<R>().await {
            Ok(leadership) => Some(leadership),
            Err(LeaderError::Store(KvError::Transport(err))) => {
                ctx.counter("campaign_errors").inc();
                tracing::warn!(service = ctx.path(), role = %self.role, error = %err, "the store did not answer; campaigning once it does");
                None
            }
            Err(err) => return Err(err.into()),
        };
        let (factory, leading) = (self.factory.clone(), self.leading.clone());
        ctx.spawn("campaign", async move {
            let leadership = match opened {
                Some(leadership) => leadership,
                None => match opening.retry::<R>().await? {
                    Some(leadership) => leadership,
                    None => return Ok(()),
                },
            };
            tracing::info!(service = opening.ctx.path(), role = %opening.role, candidate = leadership.candidate(), "campaigning");
            let campaign = Campaign {
                ctx: opening.ctx,
                leadership,
                factory,
                leading,
                stop_timeout,
            };
            campaign.run().await;
            Ok::<(), LeaderError>(())
        });
        Ok(())
    }

    async fn stop(&mut self, ctx: &Context) -> Result<(), Error> {
        // The child stopped before this hook (children stop first); stopping it again is a
        // no-op that makes sure, then the role is handed over.
        let leading = lock(&self.leading).take();
        if let Some(leading) = leading {
            ctx.remove_child(&leading.child).await;
            // Resigning hands the role over before the lease ends it, which it does anyway:
            // waiting longer than the lease gains nothing, and a store slow to answer (a
            // cluster electing after a node came back) must not hold up the rest of the stop.
            match crate::time::timeout::<R, _>(self.lease, leading.term.resign()).await {
                Ok(resigned) => resigned?,
                Err(_) => tracing::warn!(
                    role = %self.role,
                    lease = ?self.lease,
                    "no answer to the resignation within the lease; the lease ends the term"
                ),
            }
        }
        Ok(())
    }
}

struct Campaign<R: Runtime, S> {
    ctx: Context,
    leadership: Leadership<R>,
    factory: Factory<S>,
    leading: Arc<Mutex<Option<Leading<R>>>>,
    stop_timeout: Duration,
}

impl<R: Runtime, S: Service> Campaign<R, S> {
    async fn run(self) {
        let shutdown = self.ctx.shutdown();
        let (elected, lost, errors) = (
            self.ctx.counter("elected"),
            self.ctx.counter("lost"),
            self.ctx.counter("campaign_errors"),
        );
        let role = self.leadership.role().to_owned();
        loop {
            self.ctx.set_note(format!(
                "standing by for {role} as {}",
                self.leadership.candidate()
            ));
            let term = match shutdown.run(self.leadership.campaign()).await {
                None => return,
                Some(Ok(term)) => Arc::new(term),
                Some(Err(err)) => {
                    errors.inc();
                    tracing::warn!(service = self.ctx.path(), %role, error = %err, "campaign failed; trying again");
                    if !self.pause(&shutdown).await {
                        return;
                    }
                    continue;
                }
            };
            let factory = self.factory.clone();
            let child = self.ctx.supervise(Restart::Transient, move || factory());
            {
                // Checked under the lock the stop hook takes: either the hook sees this term,
                // or this task sees the shutdown.
                let mut leading = lock(&self.leading);
                if shutdown.is_triggered() {
                    drop(leading);
                    self.ctx.remove_child(&child).await;
                    let _ = term.resign().await;
                    return;
                }
                *leading = Some(Leading {
                    term: term.clone(),
                    child: child.clone(),
                });
            }
            elected.inc();
            tracing::info!(service = self.ctx.path(), %role, revision = term.revision(), "elected; starting the child");
            self.ctx
                .set_note(format!("leading {role} as {}", self.leadership.candidate()));
            if let Err(failure) = child.start().await {
                tracing::warn!(service = self.ctx.path(), %role, %failure, "the child failed to start; resigning");
                self.step_down(&child, &term).await;
                if !self.pause(&shutdown).await {
                    return;
                }
                continue;
            }
            // Lead until the term is a stop timeout from ending unrenewed (or is lost).
            let margin = self.stop_timeout + self.leadership.tick() / 4;
            // The stop hook resigns, which ends the term too: a stop is not a lost term.
            if shutdown.run(term.ending(margin)).await.is_none() || shutdown.is_triggered() {
                // The stop hook stops the child and resigns.
                return;
            }
            lost.inc();
            tracing::warn!(service = self.ctx.path(), %role, "leadership is ending; stopping the child");
            self.step_down(&child, &term).await;
        }
    }

    /// Waits a renewal tick before campaigning again; `false` if the service stops meanwhile.
    async fn pause(&self, shutdown: &crate::service::Shutdown) -> bool {
        shutdown
            .run(self.ctx.sleep(self.leadership.tick()))
            .await
            .is_some()
    }

    /// Stops the child and gives the term up, unless the stop hook took them already.
    async fn step_down(&self, child: &ServiceHandle, term: &Term<R>) {
        let Some(leading) = lock(&self.leading).take() else {
            return;
        };
        debug_assert!(std::ptr::eq(&*leading.term, term));
        self.ctx.remove_child(child).await;
        if let Err(err) = term.resign().await {
            tracing::warn!(service = self.ctx.path(), error = %err, "cannot resign; the lease runs out by itself");
        }
    }
}
