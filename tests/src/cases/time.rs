//! Time: sleeps never wake early, timeouts fire or pass, intervals tick.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use ginkgo_api::Runtime;
use ginkgo_api::time::{interval, sleep, sleep_until, timeout};

use crate::support::DropProbe;

/// A sleep never completes before its duration, for short and longer durations.
pub async fn sleep_never_early<R: Runtime>() {
    for millis in [0, 1, 5, 20, 50] {
        let wanted = Duration::from_millis(millis);
        let start = Instant::now();
        sleep::<R>(wanted).await;
        let took = start.elapsed();
        assert!(took >= wanted, "sleep({wanted:?}) woke after {took:?}");
    }
}

/// `sleep_until` completes at (not before) its deadline, and at once for a past deadline.
pub async fn sleep_until_deadline<R: Runtime>() {
    let deadline = Instant::now() + Duration::from_millis(15);
    let timer = sleep_until::<R>(deadline);
    assert_eq!(timer.deadline(), deadline);
    timer.await;
    assert!(Instant::now() >= deadline);

    let past = Instant::now() - Duration::from_millis(5);
    let start = Instant::now();
    sleep_until::<R>(past).await;
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "a past deadline waits for nothing"
    );
}

/// Resetting a sleep moves its deadline, earlier or later.
pub async fn sleep_reset_moves_deadline<R: Runtime>() {
    let start = Instant::now();
    let mut timer = Box::pin(sleep::<R>(Duration::from_secs(3600)));
    timer.as_mut().reset(start + Duration::from_millis(10));
    timer.as_mut().await;
    let took = start.elapsed();
    assert!(took >= Duration::from_millis(10));
    assert!(
        took < Duration::from_secs(60),
        "reset to an earlier deadline took {took:?}"
    );
    assert!(timer.is_elapsed());

    let later = Instant::now() + Duration::from_millis(20);
    timer.as_mut().reset(later);
    assert!(!timer.is_elapsed());
    timer.await;
    assert!(Instant::now() >= later);
}

/// A timeout gives `Elapsed` when the future is too slow, and not before its duration.
pub async fn timeout_fires<R: Runtime>() {
    let start = Instant::now();
    let result = timeout::<R, _>(Duration::from_millis(20), std::future::pending::<()>()).await;
    let err = result.expect_err("pending never finishes");
    assert!(start.elapsed() >= Duration::from_millis(20));
    assert_eq!(err.to_string(), "deadline has elapsed");
    assert_eq!(
        std::io::Error::from(err).kind(),
        std::io::ErrorKind::TimedOut
    );
}

/// A timeout passes the value through when the future is fast enough, without waiting for the
/// deadline; a ready future wins even against a zero timeout.
pub async fn timeout_passes_value<R: Runtime>() {
    let start = Instant::now();
    let value = timeout::<R, _>(Duration::from_secs(30), async {
        sleep::<R>(Duration::from_millis(5)).await;
        3
    })
    .await;
    assert_eq!(value, Ok(3));
    assert!(start.elapsed() < Duration::from_secs(10));
    assert_eq!(timeout::<R, _>(Duration::ZERO, async { 4 }).await, Ok(4));
}

/// When a timeout fires, the inner future is dropped (cancelled).
pub async fn timeout_drops_future<R: Runtime>() {
    let (probe, dropped) = DropProbe::new();
    let inner = async move {
        let _probe = probe;
        std::future::pending::<()>().await;
    };
    assert!(
        timeout::<R, _>(Duration::from_millis(5), inner)
            .await
            .is_err()
    );
    assert!(dropped.load(Ordering::SeqCst));
}

/// An interval's first tick is immediate and later ticks are one period apart, never early.
pub async fn interval_ticks<R: Runtime>() {
    let period = Duration::from_millis(10);
    let start = Instant::now();
    let mut ticks = interval::<R>(period);
    let first = ticks.tick().await;
    assert!(first <= Instant::now());
    let mut previous = first;
    for _ in 0..5 {
        let at = ticks.tick().await;
        assert!(Instant::now() >= at, "a tick fired before its instant");
        let gap = at - previous;
        assert!(gap >= period, "ticks {gap:?} apart, period {period:?}");
        assert_eq!(
            gap.as_nanos() % period.as_nanos(),
            0,
            "ticks stay on the schedule"
        );
        previous = at;
    }
    assert!(start.elapsed() >= period * 5);
}

/// A hundred tasks sleeping 100 ms at once finish in far less than a hundred times that: the
/// timers run concurrently, not one after another.
pub async fn sleeps_run_concurrently<R: Runtime>() {
    let start = Instant::now();
    let handles: Vec<_> = (0..100)
        .map(|_| ginkgo_api::spawn::<R, _>(sleep::<R>(Duration::from_millis(100))))
        .collect();
    for handle in handles {
        handle.await.expect("sleeper");
    }
    let took = start.elapsed();
    assert!(took >= Duration::from_millis(100));
    assert!(
        took < Duration::from_secs(5),
        "100 concurrent 100 ms sleeps took {took:?}"
    );
}
