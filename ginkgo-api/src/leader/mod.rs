//! Leadership of a named role with a lease, on the [key-value store](crate::kv): campaign,
//! resign, watch; and [`Singleton`], a service that runs its child only on the instance that
//! leads.
//!
//! # How it works, and what is guaranteed
//!
//! A role is one key (`leader`) in the bucket `ginkgo_leader_<role>`, whose keys expire when
//! not written for the lease. A candidate leads once it [creates](crate::kv::Bucket::create)
//! the key (with its id); it renews its term by [updating](crate::kv::Bucket::update) the key
//! at the revision it last wrote, every quarter lease. Others watch the key (a renewal or a
//! resignation is seen at once) and note when they first saw it at its current revision; once
//! a lease has passed since without a new revision, a candidate deletes the key at that
//! revision ([`delete_if`](crate::kv::Bucket::delete_if): a renewal in between keeps it) and
//! creates it. The store would expire it too, but later: NATS removes an expired key about
//! 250 ms after its age passes. So a dead leader is replaced a lease after its last renewal
//! reached the others, plus their round trips: within the lease of its death, unless it died
//! within those milliseconds after renewing.
//!
//! A leader counts its term as valid until **the time it sent its last successful write, plus
//! the lease, minus a tenth of the lease** ([`Term::valid_until`]). The store keeps the key at
//! least a lease after it *received* that write, and a rival deletes it no sooner than a lease
//! after it *saw* that write, both later than the sending; so the term ends, by the leader's
//! clock, before any rival can create the key, as long as the clocks' rates differ by less
//! than a tenth. That holds under a partition too: a leader cut off from the store cannot renew, and
//! its term ends on its own clock, whoever else it can or cannot reach. [`Singleton`] stops its
//! child a stop timeout before the term ends, so the child has stopped before a rival's child
//! can start.
//!
//! What this does **not** cover, as with every lease: a process frozen (SIGSTOP, a paused
//! VM) for longer than the tenth of the lease notices the end of its term only when it runs
//! again. [`Term::revision`] grows with every term and renewal: pass it along as a fencing
//! token to systems that can reject writes from an old term. On NATS the store is JetStream
//! KV; in a cluster, give the buckets three replicas so that a write needs a quorum
//! (`NatsOptions::kv_replicas` in `ginkgo-nats`).
//!
//! # Examples
//!
//! ```
//! # fn demo<R: ginkgo_api::Runtime>() {
//! use std::time::Duration;
//! use ginkgo_api::kv::Kv;
//! use ginkgo_api::leader::Leadership;
//!
//! ginkgo_api::block_on::<R, _>(async {
//!     let kv = Kv::isolated();
//!     let first = Leadership::<R>::new(&kv, "scheduler", Duration::from_secs(2)).await.unwrap();
//!     let term = first.campaign().await.unwrap();
//!     assert_eq!(first.leader().await.unwrap().as_deref(), Some(first.candidate()));
//!     term.resign().await.unwrap();
//!     assert_eq!(first.leader().await.unwrap(), None);
//! });
//! # }
//! ```

mod singleton;

use std::fmt;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use event_listener::Event;
use futures_lite::future;

pub use singleton::Singleton;

use crate::kv::{Bucket, BucketOptions, Kv, KvError};
use crate::{AbortHandle, Runtime};

/// The key of a role's bucket that names the leader.
const KEY: &str = "leader";

/// The shortest lease: below it, the store's round trips eat the term.
pub const MIN_LEASE: Duration = Duration::from_millis(100);

/// What can go wrong with leadership.
#[derive(Debug)]
#[non_exhaustive]
pub enum LeaderError {
    /// A role name or lease that cannot be used.
    Invalid {
        /// The role.
        role: String,
        /// What is wrong.
        reason: String,
    },
    /// The store failed.
    Store(KvError),
}

impl fmt::Display for LeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LeaderError::Invalid { role, reason } => write!(f, "leadership of {role:?}: {reason}"),
            LeaderError::Store(err) => write!(f, "leadership: {err}"),
        }
    }
}

impl std::error::Error for LeaderError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LeaderError::Store(err) => Some(err),
            LeaderError::Invalid { .. } => None,
        }
    }
}

impl From<KvError> for LeaderError {
    fn from(err: KvError) -> Self {
        LeaderError::Store(err)
    }
}

/// A candidate for one role, on runtime `R` (for the lease's timers); cheap to clone.
pub struct Leadership<R> {
    bucket: Bucket,
    role: String,
    candidate: String,
    lease: Duration,
    _runtime: PhantomData<fn() -> R>,
}

impl<R> Clone for Leadership<R> {
    fn clone(&self) -> Self {
        Self {
            bucket: self.bucket.clone(),
            role: self.role.clone(),
            candidate: self.candidate.clone(),
            lease: self.lease,
            _runtime: PhantomData,
        }
    }
}

impl<R> fmt::Debug for Leadership<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Leadership")
            .field("role", &self.role)
            .field("candidate", &self.candidate)
            .field("lease", &self.lease)
            .finish()
    }
}

/// A candidate id unique to this process and call: host, pid and a random part.
fn new_candidate_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_owned())
        .unwrap_or_else(|_| "host".to_owned());
    format!("{host}-{}-{:08x}", std::process::id(), fastrand::u32(..))
}

impl<R: Runtime> Leadership<R> {
    /// A candidate for `role` (`A-Z a-z 0-9 - _`) with a lease of `lease`, in `kv`, with an id
    /// of its own (host, pid and a random part). Every candidate for a role must use the same
    /// lease.
    ///
    /// # Errors
    ///
    /// A bad role name, a lease under [`MIN_LEASE`], a lease that is not the one the role's
    /// bucket was created with, or the store's error.
    pub async fn new(kv: &Kv, role: &str, lease: Duration) -> Result<Self, LeaderError> {
        if lease < MIN_LEASE {
            return Err(LeaderError::Invalid {
                role: role.to_owned(),
                reason: format!("the lease ({lease:?}) must be at least {MIN_LEASE:?}"),
            });
        }
        crate::kv::check_bucket(role).map_err(|_| LeaderError::Invalid {
            role: role.to_owned(),
            reason: "a role name is one or more of A-Z a-z 0-9 - _".to_owned(),
        })?;
        let bucket = kv
            .bucket(
                &format!("ginkgo_leader_{role}"),
                BucketOptions::default().max_age(lease),
            )
            .await?;
        Ok(Self {
            bucket,
            role: role.to_owned(),
            candidate: new_candidate_id(),
            lease,
            _runtime: PhantomData,
        })
    }

    /// With the candidate id `id` (what [`Leadership::leader`] shows while it leads) instead
    /// of the generated one. Two candidates must not share an id.
    #[must_use]
    pub fn with_candidate(mut self, id: impl Into<String>) -> Self {
        self.candidate = id.into();
        self
    }

    /// The role.
    pub fn role(&self) -> &str {
        &self.role
    }

    /// This candidate's id.
    pub fn candidate(&self) -> &str {
        &self.candidate
    }

    /// The lease.
    pub fn lease(&self) -> Duration {
        self.lease
    }

    /// How often a leader renews.
    fn tick(&self) -> Duration {
        self.lease / 4
    }

    /// How often a watch (and, should its watch miss a change, a candidate) looks whether the
    /// key is gone.
    fn poll(&self) -> Duration {
        (self.lease / 10).max(Duration::from_millis(10))
    }

    /// The id of the current leader, `None` if nobody leads.
    ///
    /// # Errors
    ///
    /// The store's error.
    pub async fn leader(&self) -> Result<Option<String>, LeaderError> {
        Ok(self
            .bucket
            .get(KEY)
            .await?
            .map(|entry| String::from_utf8_lossy(&entry.value).into_owned()))
    }

    /// Waits until this candidate leads, and returns its term (renewed in the background
    /// until it is resigned, dropped, or lost).
    ///
    /// # Errors
    ///
    /// The store's error (a candidate that wants to keep trying calls again).
    pub async fn campaign(&self) -> Result<Term<R>, LeaderError> {
        let mut watch = self.bucket.watch(KEY).await?;
        // The holder's revision, and when this candidate first saw the key at it.
        let mut seen: Option<(u64, Instant)> = None;
        // Answers in a row that contradict each other: the key exists, yet reads as gone, or
        // its revision is not the last. The first is a race with the holder, tried again at
        // once. More mean a replica that is behind answers the reads (JetStream serves them
        // from any replica): the tries then wait a poll apart instead of spinning (a chaos
        // test saw three candidates spin, unheard, for over a minute).
        let mut contradictions = 0u32;
        loop {
            if contradictions > 1 {
                if contradictions == 2 {
                    tracing::warn!(role = %self.role, "the store says the role is held but reads it as gone or at an older revision (a replica behind?); trying again every {:?}", self.poll());
                }
                if wait::<R>(&mut watch, Instant::now() + self.poll()).await {
                    return Err(KvError::Closed.into());
                }
            }
            let sent = Instant::now();
            match self.bucket.create(KEY, self.candidate.clone()).await {
                Ok(revision) => return Ok(Term::begin(self.clone(), revision, sent)),
                Err(KvError::Exists { .. }) => {}
                Err(err) => return Err(err.into()),
            }
            let Some(held) = self.bucket.get(KEY).await? else {
                // Gone in between, or a read from a replica that is behind.
                contradictions = contradictions.saturating_add(1);
                continue;
            };
            let (revision, since) = match seen {
                Some((revision, since)) if revision == held.revision => (revision, since),
                _ => (held.revision, Instant::now()),
            };
            seen = Some((revision, since));
            let expiry = since + self.lease;
            if Instant::now() >= expiry {
                // Not renewed for a lease since this candidate saw it: the holder sent that
                // write before, so its term is over by its own clock. Expire the key now, at
                // that revision only (a renewal in between keeps it), rather than wait for
                // the store, which may take longer (NATS expires about 250 ms late).
                match self.bucket.delete_if(KEY, revision).await {
                    Ok(()) => contradictions = 0,
                    // Renewed in between, or read from a replica that is behind.
                    Err(KvError::WrongRevision { .. }) => {
                        contradictions = contradictions.saturating_add(1)
                    }
                    Err(err) => return Err(err.into()),
                }
                continue;
            }
            contradictions = 0;
            // A renewal or a resignation wakes the watch; the expiry, the timer. The poll
            // bounds the wait should the watch miss a change.
            if wait::<R>(&mut watch, expiry.min(Instant::now() + self.poll())).await {
                return Err(KvError::Closed.into());
            }
        }
    }

    /// Watches who leads: [`LeaderWatch::next`] gives the leader each time it changes.
    ///
    /// # Errors
    ///
    /// The store's error.
    pub async fn watch(&self) -> Result<LeaderWatch<R>, LeaderError> {
        Ok(LeaderWatch {
            watch: self.bucket.watch(KEY).await?,
            leadership: self.clone(),
            last: None,
        })
    }
}

/// Waits until a change on `watch` or `until`, whichever comes first; `true` if the watch
/// ended (the store closed).
async fn wait<R: Runtime>(watch: &mut crate::kv::Watch, until: Instant) -> bool {
    future::or(async { watch.next().await.is_none() }, async {
        crate::time::sleep_until::<R>(until).await;
        false
    })
    .await
}

/// Who leads a role, as it changes; see [`Leadership::watch`].
#[derive(Debug)]
pub struct LeaderWatch<R> {
    leadership: Leadership<R>,
    watch: crate::kv::Watch,
    /// What the last call gave.
    last: Option<Option<String>>,
}

impl<R: Runtime> LeaderWatch<R> {
    /// The leader (`None`: nobody) the first time, then each time it changes. A new leader
    /// and a resignation are seen at once, an expiry without a successor within a tenth of the
    /// lease of the store's.
    ///
    /// # Errors
    ///
    /// The store's error.
    pub async fn next(&mut self) -> Result<Option<String>, LeaderError> {
        loop {
            let leader = self.leadership.leader().await?;
            if self.last.as_ref() != Some(&leader) {
                self.last = Some(leader.clone());
                return Ok(leader);
            }
            let until = Instant::now() + self.leadership.poll();
            if wait::<R>(&mut self.watch, until).await {
                return Err(KvError::Closed.into());
            }
        }
    }
}

/// A term as leader: renewed in the background every quarter lease until it is
/// [resigned](Term::resign) or lost. Dropping it stops the renewals (the lease then runs out);
/// resign to hand over at once.
pub struct Term<R: Runtime> {
    shared: Arc<Shared>,
    leadership: Leadership<R>,
    renewal: AbortHandle<R>,
}

impl<R: Runtime> fmt::Debug for Term<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.shared.lock();
        f.debug_struct("Term")
            .field("role", &self.leadership.role)
            .field("revision", &state.revision)
            .field("over", &state.over)
            .finish()
    }
}

struct Shared {
    state: Mutex<TermState>,
    changed: Event,
}

#[derive(Debug)]
struct TermState {
    revision: u64,
    valid_until: Instant,
    /// Why the term is over, once it is.
    over: Option<&'static str>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, TermState> {
        crate::sync::lock_unpoisoned(&self.state)
    }

    fn end(&self, why: &'static str) {
        self.lock().over.get_or_insert(why);
        self.changed.notify(usize::MAX);
    }
}

/// The part of the lease a leader gives up so that its term ends before the key expires.
fn margin(lease: Duration) -> Duration {
    lease / 10
}

impl<R: Runtime> Term<R> {
    fn begin(leadership: Leadership<R>, revision: u64, sent: Instant) -> Self {
        let shared = Arc::new(Shared {
            state: Mutex::new(TermState {
                revision,
                valid_until: sent + leadership.lease - margin(leadership.lease),
                over: None,
            }),
            changed: Event::new(),
        });
        // Detached: the abort handle cancels it.
        let renewal =
            crate::spawn::<R, _>(renew(leadership.clone(), shared.clone())).abort_handle();
        Self {
            shared,
            leadership,
            renewal,
        }
    }

    /// The revision of the last write of this term: it grows with each term and renewal, so
    /// it serves as a fencing token.
    pub fn revision(&self) -> u64 {
        self.shared.lock().revision
    }

    /// Until when this term is valid, by this process's clock, unless renewed before.
    pub fn valid_until(&self) -> Instant {
        self.shared.lock().valid_until
    }

    /// Whether the term is over (lost, expired or resigned).
    pub fn is_over(&self) -> bool {
        self.shared.lock().over.is_some()
    }

    /// Waits until the term is over, or until it is `before` from its end without having been
    /// renewed: [`Singleton`] passes its child's stop timeout, so the child has stopped before
    /// the term ends.
    pub async fn ending(&self, before: Duration) {
        loop {
            let listener = self.shared.changed.listen();
            let at = {
                let state = self.shared.lock();
                if state.over.is_some() {
                    return;
                }
                state
                    .valid_until
                    .checked_sub(before)
                    .unwrap_or(state.valid_until)
            };
            if Instant::now() >= at {
                return;
            }
            future::or(listener, crate::time::sleep_until::<R>(at)).await;
        }
    }

    /// Gives the role up: renewals stop and the key is deleted (if this term still holds it),
    /// so another candidate can lead at once.
    ///
    /// # Errors
    ///
    /// The store's error; the lease then runs out by itself.
    pub async fn resign(&self) -> Result<(), LeaderError> {
        self.renewal.abort();
        let revision = {
            let mut state = self.shared.lock();
            let was_over = state.over.is_some();
            state.over.get_or_insert("resigned");
            (!was_over).then_some(state.revision)
        };
        self.shared.changed.notify(usize::MAX);
        let Some(revision) = revision else {
            return Ok(());
        };
        match self.leadership.bucket.delete_if(KEY, revision).await {
            // Someone else holds the key by now: nothing of ours to delete.
            Ok(()) | Err(KvError::WrongRevision { .. }) => Ok(()),
            Err(err) => Err(err.into()),
        }
    }
}

impl<R: Runtime> Drop for Term<R> {
    fn drop(&mut self) {
        self.renewal.abort();
    }
}

/// Renews the term every quarter lease until it is over.
async fn renew<R: Runtime>(leadership: Leadership<R>, shared: Arc<Shared>) {
    let lease = leadership.lease;
    loop {
        crate::time::sleep::<R>(leadership.tick()).await;
        let (revision, valid_until) = {
            let state = shared.lock();
            if state.over.is_some() {
                return;
            }
            (state.revision, state.valid_until)
        };
        let sent = Instant::now();
        if sent >= valid_until {
            tracing::warn!(role = %leadership.role, "leadership lost: the lease ran out before it could be renewed");
            return shared.end("expired");
        }
        let update = leadership
            .bucket
            .update(KEY, leadership.candidate.clone(), revision);
        match crate::time::timeout_at::<R, _>(valid_until, update).await {
            Ok(Ok(revision)) => {
                let mut state = shared.lock();
                state.revision = revision;
                state.valid_until = sent + lease - margin(lease);
                drop(state);
                shared.changed.notify(usize::MAX);
            }
            Ok(Err(KvError::WrongRevision { .. })) => {
                // A renewal that reported an error (a timeout, a lost connection) may have
                // been written all the same: if the key still names this candidate, the term
                // goes on at that revision, valid only as long as the last confirmed renewal
                // says; the next renewal confirms it.
                match leadership.bucket.get(KEY).await {
                    Ok(Some(entry)) if entry.value == leadership.candidate.as_bytes() => {
                        tracing::info!(role = %leadership.role, revision = entry.revision, "an earlier renewal was written after all; the term goes on");
                        shared.lock().revision = entry.revision;
                    }
                    _ => {
                        tracing::warn!(role = %leadership.role, "leadership lost: another candidate holds the role");
                        return shared.end("taken");
                    }
                }
            }
            Ok(Err(err)) => {
                tracing::warn!(role = %leadership.role, error = %err, "cannot renew the leadership; trying again");
            }
            Err(_) => {
                tracing::warn!(role = %leadership.role, "leadership lost: the lease ran out while renewing");
                return shared.end("expired");
            }
        }
    }
}
