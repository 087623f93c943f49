//! The leadership contract (`ginkgo_api::leader`), written once over any store: the conformance
//! cases run it on the in-process store (`cases::leader`), the NATS tests on JetStream KV.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ginkgo_api::kv::Kv;
use ginkgo_api::leader::{Leadership, Singleton};
use ginkgo_api::service::{Context, Error, Options, Service, async_trait};
use ginkgo_api::{Runtime, spawn};

use crate::support::eventually;

/// The lease the cases use: short, so that expiry is quick.
pub const LEASE: Duration = Duration::from_secs(1);

/// Two candidates for `role`, named `first` and `second`.
async fn two_candidates<R: Runtime>(kv: &Kv, role: &str) -> (Leadership<R>, Leadership<R>) {
    let candidate = async |id: &str| {
        Leadership::<R>::new(kv, role, LEASE)
            .await
            .unwrap()
            .with_candidate(id)
    };
    (candidate("first").await, candidate("second").await)
}

/// One leader at a time: a second candidate waits while the first leads, and is elected at
/// once when the first resigns.
pub async fn one_leader_until_it_resigns<R: Runtime>(kv: Kv) {
    let (first, second) = two_candidates::<R>(&kv, "resigning").await;
    assert_eq!(first.leader().await.unwrap(), None);
    let term = first.campaign().await.unwrap();
    let campaigning = {
        let second = second.clone();
        spawn::<R, _>(async move {
            let term = second.campaign().await.unwrap();
            (Instant::now(), term)
        })
    };
    // Over two leases: the first renews, the second keeps waiting.
    ginkgo_api::time::sleep::<R>(LEASE * 2).await;
    assert!(!campaigning.is_finished(), "two leaders at once");
    assert!(!term.is_over());
    assert_eq!(second.leader().await.unwrap().as_deref(), Some("first"));
    let resigned = Instant::now();
    term.resign().await.unwrap();
    assert!(term.is_over());
    let (elected, second_term) = campaigning.await.unwrap();
    assert!(
        elected.duration_since(resigned) < LEASE,
        "a resignation took {:?} to hand over",
        elected.duration_since(resigned)
    );
    assert_eq!(first.leader().await.unwrap().as_deref(), Some("second"));
    second_term.resign().await.unwrap();
}

/// A leader that stops renewing (its term dropped, as when its process dies) is replaced once
/// the lease runs out, and never before its term's end by its own clock.
pub async fn expired_leader_is_replaced_after_its_term<R: Runtime>(kv: Kv) {
    let first = Leadership::<R>::new(&kv, "expiring", LEASE).await.unwrap();
    let second = Leadership::<R>::new(&kv, "expiring", LEASE).await.unwrap();
    let term = first.campaign().await.unwrap();
    ginkgo_api::time::sleep::<R>(LEASE / 2).await;
    let valid_until = term.valid_until();
    let died = Instant::now();
    drop(term);
    let second_term = second.campaign().await.unwrap();
    let elected = Instant::now();
    assert!(
        elected >= valid_until,
        "elected {:?} before the old term ended",
        valid_until - elected
    );
    assert!(
        elected.duration_since(died) < LEASE * 3,
        "took {:?} to replace a dead leader",
        elected.duration_since(died)
    );
    assert_eq!(
        first.leader().await.unwrap().as_deref(),
        Some(second.candidate())
    );
    drop(second_term);
}

/// A candidate already campaigning takes over a lease after the dead leader's last renewal
/// reached it, not only once the store gets round to expiring the key (NATS does so about
/// 250 ms late): never before the old term's end, and within a tenth of a lease after the
/// lease.
pub async fn waiting_candidate_takes_over_a_lease_after_the_last_renewal<R: Runtime>(kv: Kv) {
    let (first, second) = two_candidates::<R>(&kv, "takeover").await;
    let term = first.campaign().await.unwrap();
    let waiting = spawn::<R, _>(async move {
        let term = second.campaign().await.unwrap();
        (Instant::now(), term)
    });
    // Dies just after a renewal, so that no renewal is on its way when it does.
    ginkgo_api::time::sleep::<R>(LEASE / 2).await;
    let before = term.valid_until();
    eventually::<R>("a renewal", LEASE, || term.valid_until() != before).await;
    let valid_until = term.valid_until();
    drop(term);
    // The term's end is its last renewal's sending plus the lease, less a tenth.
    let renewed = valid_until - (LEASE - LEASE / 10);
    let (elected, next) = waiting.await.unwrap();
    assert!(
        elected >= valid_until,
        "elected {:?} before the old term ended",
        valid_until - elected
    );
    assert!(
        elected <= renewed + LEASE + LEASE / 10,
        "took {:?} after the last renewal, with a lease of {LEASE:?}",
        elected - renewed
    );
    drop(next);
}

/// A watch gives who leads, and each change: nobody, the first, nobody once it resigns, the
/// second.
pub async fn watch_follows_the_leader<R: Runtime>(kv: Kv) {
    let (first, second) = two_candidates::<R>(&kv, "watched").await;
    let mut watch = first.watch().await.unwrap();
    let within = Duration::from_secs(10);
    let seen = ginkgo_api::time::timeout::<R, _>(within, watch.next()).await;
    assert_eq!(seen.unwrap().unwrap(), None);
    let term = first.campaign().await.unwrap();
    let seen = ginkgo_api::time::timeout::<R, _>(within, watch.next()).await;
    assert_eq!(seen.unwrap().unwrap().as_deref(), Some("first"));
    term.resign().await.unwrap();
    let seen = ginkgo_api::time::timeout::<R, _>(within, watch.next()).await;
    assert_eq!(seen.unwrap().unwrap(), None);
    let term = second.campaign().await.unwrap();
    let seen = ginkgo_api::time::timeout::<R, _>(within, watch.next()).await;
    assert_eq!(seen.unwrap().unwrap().as_deref(), Some("second"));
    term.resign().await.unwrap();
}

/// A child that counts how many of its kind run at once, and the most there ever were.
pub struct Exclusive {
    running: Arc<AtomicUsize>,
    most: Arc<AtomicUsize>,
    starts: Arc<AtomicUsize>,
}

/// The counters [`Exclusive`] children share.
#[derive(Clone, Default)]
pub struct Counts {
    /// How many run now.
    pub running: Arc<AtomicUsize>,
    /// The most that ever ran at once.
    pub most: Arc<AtomicUsize>,
    /// How many starts there were.
    pub starts: Arc<AtomicUsize>,
}

impl Counts {
    /// A child counting here.
    pub fn child(&self) -> Exclusive {
        Exclusive {
            running: self.running.clone(),
            most: self.most.clone(),
            starts: self.starts.clone(),
        }
    }
}

#[async_trait]
impl Service for Exclusive {
    fn name(&self) -> &str {
        "exclusive"
    }

    fn options(&self) -> Options {
        Options::default().stop_timeout(Duration::from_millis(200))
    }

    async fn start(&mut self, _ctx: &Context) -> Result<(), Error> {
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.most.fetch_max(now, Ordering::SeqCst);
        self.starts.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    async fn stop(&mut self, _ctx: &Context) -> Result<(), Error> {
        self.running.fetch_sub(1, Ordering::SeqCst);
        Ok(())
    }
}

/// Three instances of a `Singleton`: only the leader's child runs; stopping the leader's
/// tree hands the child over to another instance, never two at once.
pub async fn singleton_runs_its_child_on_one_instance<R: Runtime>(kv: Kv) {
    let counts = Counts::default();
    let instance = |n: usize| {
        let counts = counts.clone();
        ginkgo_api::service::tree::<R>(
            Singleton::<R, _>::new(kv.clone(), "singleton", LEASE, move || counts.child())
                .candidate(format!("instance-{n}")),
        )
    };
    let trees: Vec<_> = (0..3).map(instance).collect();
    for tree in &trees {
        tree.start().await.expect("a singleton starts");
    }
    let within = Duration::from_secs(10);
    eventually::<R>("a child runs", within, || {
        counts.running.load(Ordering::SeqCst) == 1
    })
    .await;
    let leadership = Leadership::<R>::new(&kv, "singleton", LEASE).await.unwrap();
    for _ in 0..2 {
        let leader = leadership.leader().await.unwrap().expect("a leader");
        let n: usize = leader.trim_start_matches("instance-").parse().unwrap();
        let starts = counts.starts.load(Ordering::SeqCst);
        assert!(trees[n].stop().await.is_clean());
        eventually::<R>("another instance takes over", within, || {
            counts.starts.load(Ordering::SeqCst) > starts
                && counts.running.load(Ordering::SeqCst) == 1
        })
        .await;
        let next = leadership.leader().await.unwrap().expect("a new leader");
        assert_ne!(next, leader);
    }
    for tree in &trees {
        assert!(tree.stop().await.is_clean());
    }
    assert_eq!(counts.running.load(Ordering::SeqCst), 0);
    assert_eq!(
        counts.most.load(Ordering::SeqCst),
        1,
        "two children ran at once"
    );
}

/// A lease too short to stop the child in time fails the start, saying so.
pub async fn singleton_refuses_a_lease_shorter_than_its_stop<R: Runtime>(kv: Kv) {
    let counts = Counts::default();
    let tree = ginkgo_api::service::tree::<R>(Singleton::<R, _>::new(
        kv,
        "short",
        Duration::from_millis(400),
        move || counts.child(),
    ));
    let err = tree
        .start()
        .await
        .expect_err("a lease of 2 × the stop timeout");
    assert!(err.to_string().contains("2.5"), "{err}");
}

/// A store whose first `failures` bucket openings fail as a store that does not answer.
struct Unanswered {
    inner: Kv,
    failures: AtomicUsize,
}

#[async_trait]
impl ginkgo_api::kv::Store for Unanswered {
    fn name(&self) -> &str {
        "unanswered"
    }

    async fn bucket(
        &self,
        name: &str,
        options: &ginkgo_api::kv::BucketOptions,
    ) -> Result<Arc<dyn ginkgo_api::kv::StoreBucket>, ginkgo_api::kv::KvError> {
        let fail = self
            .failures
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if fail {
            return Err(ginkgo_api::kv::KvError::Transport(
                "opening a bucket did not return within 10s".into(),
            ));
        }
        // A bucket whose lost answer is never armed: the inner store's, as it is.
        Ok(Arc::new(LostAnswerBucket {
            inner: self.inner.bucket(name, options.clone()).await?,
            armed: Arc::default(),
        }))
    }
}

/// `kv` behind a store whose first `failures` bucket openings fail.
fn unanswered(kv: Kv, failures: usize) -> Kv {
    Kv::with_store(Arc::new(Unanswered {
        inner: kv,
        failures: AtomicUsize::new(failures),
    }))
}

/// The counter `name` of the root of `tree`.
fn counter(tree: &ginkgo_api::service::ServiceHandle, name: &str) -> u64 {
    tree.snapshot()
        .counters
        .iter()
        .find(|(n, _)| n == name)
        .map_or(0, |(_, v)| *v)
}

/// A store that does not answer at start does not fail a `Singleton`: it is ready at once,
/// opens the role's bucket when the store answers, and runs its child; the failures count
/// as `campaign_errors`.
pub async fn singleton_waits_for_a_store_that_does_not_answer_at_start<R: Runtime>(kv: Kv) {
    let counts = Counts::default();
    let child = counts.clone();
    let tree = ginkgo_api::service::tree::<R>(Singleton::<R, _>::new(
        unanswered(kv, 2),
        "patient",
        LEASE,
        move || child.child(),
    ));
    tree.start()
        .await
        .expect("a store that does not answer is waited for");
    assert_eq!(
        counts.starts.load(Ordering::SeqCst),
        0,
        "no bucket, no term"
    );
    eventually::<R>("the child runs", Duration::from_secs(10), || {
        counts.running.load(Ordering::SeqCst) == 1
    })
    .await;
    assert_eq!(counter(&tree, "campaign_errors"), 2);
    assert!(tree.stop().await.is_clean());
    assert_eq!(counts.running.load(Ordering::SeqCst), 0);
}

/// A lease the role's bucket was not made with fails a `Singleton`: at start, or when the
/// store answers after a start that found it unavailable; it is never retried as if the
/// store were down.
pub async fn singleton_fails_on_a_lease_the_role_was_not_made_with<R: Runtime>(kv: Kv) {
    Leadership::<R>::new(&kv, "other-lease", LEASE)
        .await
        .unwrap();
    let singleton = |kv: Kv| {
        let counts = Counts::default();
        ginkgo_api::service::tree::<R>(Singleton::<R, _>::new(
            kv,
            "other-lease",
            LEASE * 2,
            move || counts.child(),
        ))
    };
    let err = singleton(kv.clone())
        .start()
        .await
        .expect_err("a lease the bucket was not made with");
    assert!(err.to_string().contains("max_age"), "{err}");

    let later = singleton(unanswered(kv, 1));
    later.start().await.expect("the store did not answer yet");
    let state = ginkgo_api::time::timeout::<R, _>(
        Duration::from_secs(10),
        later.wait_until(|state| state == ginkgo_api::service::State::Failed),
    )
    .await
    .expect("the Singleton fails once the store answers");
    assert_eq!(state, ginkgo_api::service::State::Failed);
    let failure = later.snapshot().last_failure.unwrap_or_default();
    assert!(failure.contains("max_age"), "{failure}");
    later.stop().await;
}

/// A store whose next update is written and then reported as failed, once: what a renewal
/// whose answer was lost (a timeout, a dropped connection) looks like.
struct LostAnswer {
    inner: Kv,
    armed: Arc<std::sync::atomic::AtomicBool>,
}

struct LostAnswerBucket {
    inner: ginkgo_api::kv::Bucket,
    armed: Arc<std::sync::atomic::AtomicBool>,
}

#[async_trait]
impl ginkgo_api::kv::Store for LostAnswer {
    fn name(&self) -> &str {
        "lost-answer"
    }

    async fn bucket(
        &self,
        name: &str,
        options: &ginkgo_api::kv::BucketOptions,
    ) -> Result<Arc<dyn ginkgo_api::kv::StoreBucket>, ginkgo_api::kv::KvError> {
        Ok(Arc::new(LostAnswerBucket {
            inner: self.inner.bucket(name, options.clone()).await?,
            armed: self.armed.clone(),
        }))
    }
}

#[async_trait]
impl ginkgo_api::kv::StoreBucket for LostAnswerBucket {
    async fn get(
        &self,
        key: &str,
    ) -> Result<Option<ginkgo_api::kv::Entry>, ginkgo_api::kv::KvError> {
        self.inner.get(key).await
    }
    async fn put(
        &self,
        key: &str,
        value: ginkgo_api::kv::Bytes,
    ) -> Result<u64, ginkgo_api::kv::KvError> {
        self.inner.put(key, value).await
    }
    async fn create(
        &self,
        key: &str,
        value: ginkgo_api::kv::Bytes,
    ) -> Result<u64, ginkgo_api::kv::KvError> {
        self.inner.create(key, value).await
    }
    async fn update(
        &self,
        key: &str,
        value: ginkgo_api::kv::Bytes,
        revision: u64,
    ) -> Result<u64, ginkgo_api::kv::KvError> {
        let written = self.inner.update(key, value, revision).await?;
        if self.armed.swap(false, Ordering::SeqCst) {
            return Err(ginkgo_api::kv::KvError::Transport(
                format!("the answer to revision {written} was lost").into(),
            ));
        }
        Ok(written)
    }
    async fn delete(
        &self,
        key: &str,
        revision: Option<u64>,
    ) -> Result<(), ginkgo_api::kv::KvError> {
        match revision {
            Some(revision) => self.inner.delete_if(key, revision).await,
            None => self.inner.delete(key).await,
        }
    }
    async fn watch(&self, pattern: &str) -> Result<ginkgo_api::kv::Watch, ginkgo_api::kv::KvError> {
        self.inner.watch(pattern).await
    }
    async fn entries(&self) -> Result<Vec<ginkgo_api::kv::Entry>, ginkgo_api::kv::KvError> {
        self.inner.entries().await
    }
}

/// A renewal that was written but whose answer was lost does not end the term: the next
/// renewal finds the key still naming this candidate and goes on from its revision.
pub async fn renewal_with_a_lost_answer_keeps_the_term<R: Runtime>(kv: Kv) {
    let armed = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let lossy = Kv::with_store(Arc::new(LostAnswer {
        inner: kv,
        armed: armed.clone(),
    }));
    let candidate = Leadership::<R>::new(&lossy, "lossy", LEASE).await.unwrap();
    let term = candidate.campaign().await.unwrap();
    armed.store(true, Ordering::SeqCst);
    eventually::<R>("the lost answer happened", Duration::from_secs(5), || {
        !armed.load(Ordering::SeqCst)
    })
    .await;
    let first = term.revision();
    // Over two leases: renewals go on past the lost answer.
    ginkgo_api::time::sleep::<R>(LEASE * 2).await;
    assert!(!term.is_over(), "a lost answer ended the term");
    assert!(term.revision() > first + 1, "renewals stopped");
    assert_eq!(
        candidate.leader().await.unwrap().as_deref(),
        Some(candidate.candidate())
    );
    term.resign().await.unwrap();
}
