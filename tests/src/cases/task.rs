//! Tasks: join values, panics, abort, detach, blocking work, nesting, the entry point.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use ginkgo_api::time::sleep;
use ginkgo_api::{Runtime, spawn, spawn_blocking};

use crate::support::{DropProbe, eventually};

/// Awaiting a handle gives the task's value.
pub async fn join_value<R: Runtime>() {
    let handle = spawn::<R, _>(async { 40 + 2 });
    assert_eq!(handle.await.expect("task returned"), 42);
}

/// A thousand tasks all run and all join.
pub async fn join_many<R: Runtime>() {
    let handles: Vec<_> = (0..1000u64)
        .map(|i| spawn::<R, _>(async move { i }))
        .collect();
    let mut sum = 0;
    for handle in handles {
        sum += handle.await.expect("task returned");
    }
    assert_eq!(sum, 999 * 1000 / 2);
}

/// A panic becomes a panicked `JoinError` with its message; the caller keeps running.
pub async fn panic_reports_message<R: Runtime>() {
    let err = spawn::<R, _>(async { panic!("boom {}", 7) })
        .await
        .expect_err("the task panicked");
    assert!(err.is_panic());
    assert!(!err.is_cancelled());
    assert_eq!(err.panic_message(), Some("boom 7"));
    assert_eq!(err.to_string(), "task panicked: boom 7");

    let err = spawn::<R, _>(async { std::panic::panic_any::<u32>(17) })
        .await
        .expect_err("the task panicked");
    assert!(err.is_panic());
    assert_eq!(err.panic_message(), None);
    let payload = err.try_into_panic().expect("a panic payload");
    assert_eq!(payload.downcast_ref::<u32>(), Some(&17));
}

/// `abort()` cancels a waiting task: the handle reports cancelled and the future is dropped.
pub async fn abort_cancels<R: Runtime>() {
    let (probe, dropped) = DropProbe::new();
    let handle = spawn::<R, _>(async move {
        let _probe = probe;
        std::future::pending::<()>().await;
    });
    sleep::<R>(Duration::from_millis(10)).await;
    assert!(!handle.is_finished());
    handle.abort();
    let err = handle.await.expect_err("the task was aborted");
    assert!(err.is_cancelled());
    assert!(!err.is_panic());
    assert_eq!(err.to_string(), "task was cancelled");
    assert!(dropped.load(Ordering::SeqCst), "the future was dropped");
}

/// An `AbortHandle` cancels from another task, without owning the `JoinHandle`.
pub async fn abort_handle_cancels<R: Runtime>() {
    let handle = spawn::<R, _>(async {
        sleep::<R>(Duration::from_secs(3600)).await;
        1
    });
    let aborter = handle.abort_handle();
    let other = aborter.clone();
    spawn::<R, _>(async move { other.abort() })
        .await
        .expect("aborter ran");
    assert!(handle.await.expect_err("aborted").is_cancelled());
    assert!(aborter.is_finished());
    aborter.abort(); // aborting a finished task does nothing
}

/// Dropping a handle detaches: the task still runs to completion.
pub async fn dropped_handle_task_completes<R: Runtime>() {
    let (tx, rx) = async_channel_pair();
    drop(spawn::<R, _>(async move {
        sleep::<R>(Duration::from_millis(20)).await;
        tx.send(5).await.expect("receiver alive");
    }));
    assert_eq!(rx.recv().await.expect("detached task sent"), 5);
}

fn async_channel_pair() -> (
    ginkgo_api::sync::channel::Sender<u32>,
    ginkgo_api::sync::channel::Receiver<u32>,
) {
    ginkgo_api::sync::channel::bounded(1)
}

/// `is_finished` is false while the task runs and true once it has returned.
pub async fn is_finished_tracks_completion<R: Runtime>() {
    let handle = spawn::<R, _>(async {
        sleep::<R>(Duration::from_millis(30)).await;
    });
    assert!(!handle.is_finished());
    eventually::<R>("task finished", Duration::from_secs(10), || {
        handle.is_finished()
    })
    .await;
    handle.await.expect("task returned");
}

/// `spawn_blocking` runs the closure on another thread and returns its value.
pub async fn spawn_blocking_value<R: Runtime>() {
    let caller = std::thread::current().id();
    let (value, thread) = spawn_blocking::<R, _, _>(|| {
        std::thread::sleep(Duration::from_millis(10));
        (9, std::thread::current().id())
    })
    .await
    .expect("closure returned");
    assert_eq!(value, 9);
    assert_ne!(
        thread, caller,
        "blocking work must not run on the awaiting thread"
    );
}

/// A panic in a blocking closure is reported like a task panic.
pub async fn spawn_blocking_panic<R: Runtime>() {
    let err = spawn_blocking::<R, _, ()>(|| panic!("blocking boom"))
        .await
        .expect_err("the closure panicked");
    assert_eq!(err.panic_message(), Some("blocking boom"));
}

/// A running blocking closure cannot be interrupted: after `abort()` its handle still waits for
/// it and gives its value, so a supervisor can see the work was not stopped.
pub async fn spawn_blocking_abort_while_running<R: Runtime>() {
    let (started_tx, started_rx) = std::sync::mpsc::channel();
    let handle = spawn_blocking::<R, _, _>(move || {
        started_tx.send(()).expect("test alive");
        std::thread::sleep(Duration::from_millis(50));
        11
    });
    spawn_blocking::<R, _, _>(move || started_rx.recv())
        .await
        .expect("waiter ran")
        .expect("closure started");
    handle.abort();
    assert!(!handle.is_finished(), "the closure is still running");
    assert_eq!(handle.await.expect("the running closure completed"), 11);
}

/// Tasks spawned from tasks work to any depth.
pub async fn nested_spawn<R: Runtime>() {
    let depth = Arc::new(AtomicUsize::new(0));
    let d = depth.clone();
    let value = spawn::<R, _>(async move {
        d.fetch_add(1, Ordering::SeqCst);
        let d2 = d.clone();
        spawn::<R, _>(async move {
            d2.fetch_add(1, Ordering::SeqCst);
            spawn::<R, _>(async { 3 }).await.expect("innermost") * 2
        })
        .await
        .expect("middle")
            + 1
    })
    .await
    .expect("outer");
    assert_eq!(value, 7);
    assert_eq!(depth.load(Ordering::SeqCst), 2);
}

/// The entry point starts a runtime, runs a future that spawns, and returns its value. It runs
/// on a fresh thread because a runtime cannot be started inside another one.
pub async fn entry_point_returns_value<R: Runtime>() {
    let value = spawn_blocking::<R, _, _>(|| {
        std::thread::spawn(|| {
            ginkgo_api::block_on::<R, _>(async {
                let task = spawn::<R, _>(async {
                    sleep::<R>(Duration::from_millis(1)).await;
                    "inner"
                });
                format!("{} value", task.await.expect("inner task"))
            })
        })
        .join()
        .expect("entry point thread")
    })
    .await
    .expect("blocking waiter");
    assert_eq!(value, "inner value");
}

/// The entry point returns once its future is done, even while a blocking task is stuck: a
/// program's exit never hangs on work that cannot be cancelled.
pub async fn entry_point_does_not_wait_for_stuck_work<R: Runtime>() {
    let took = spawn_blocking::<R, _, _>(|| {
        std::thread::spawn(|| {
            let began = std::time::Instant::now();
            let value = ginkgo_api::block_on::<R, _>(async {
                drop(spawn_blocking::<R, _, _>(|| {
                    std::thread::sleep(Duration::from_secs(3));
                }));
                sleep::<R>(Duration::from_millis(20)).await;
                5
            });
            (value, began.elapsed())
        })
        .join()
        .expect("entry point thread")
    })
    .await
    .expect("blocking waiter");
    assert_eq!(took.0, 5);
    assert!(
        took.1 < Duration::from_secs(2),
        "block_on waited {:?} for stuck work",
        took.1
    );
}
