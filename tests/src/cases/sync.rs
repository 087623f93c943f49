//! The re-exported primitives work across tasks on every backend.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use ginkgo_api::sync::{Event, Mutex, RwLock, Semaphore, channel};
use ginkgo_api::time::sleep;
use ginkgo_api::{Runtime, spawn};

/// Four producers and one consumer share a bounded channel.
pub async fn channel_across_tasks<R: Runtime>() {
    let (tx, rx) = channel::bounded::<u64>(16);
    let producers: Vec<_> = (0..4u64)
        .map(|p| {
            let tx = tx.clone();
            spawn::<R, _>(async move {
                for i in 0..250 {
                    tx.send(p * 1000 + i).await.expect("consumer alive");
                }
            })
        })
        .collect();
    drop(tx);
    let consumer = spawn::<R, _>(async move {
        let mut count = 0u64;
        let mut sum = 0u64;
        while let Ok(v) = rx.recv().await {
            count += 1;
            sum += v;
        }
        (count, sum)
    });
    for producer in producers {
        producer.await.expect("producer");
    }
    let expected: u64 = (0..4u64)
        .flat_map(|p| (0..250).map(move |i| p * 1000 + i))
        .sum();
    assert_eq!(consumer.await.expect("consumer"), (1000, expected));
}

/// An event wakes every task waiting for a condition.
pub async fn event_wakes_waiters<R: Runtime>() {
    let event = Arc::new(Event::new());
    let ready = Arc::new(AtomicBool::new(false));
    let waiters: Vec<_> = (0..8)
        .map(|_| {
            let (event, ready) = (event.clone(), ready.clone());
            spawn::<R, _>(async move {
                loop {
                    if ready.load(Ordering::SeqCst) {
                        return;
                    }
                    let listener = event.listen();
                    if ready.load(Ordering::SeqCst) {
                        return;
                    }
                    listener.await;
                }
            })
        })
        .collect();
    sleep::<R>(Duration::from_millis(10)).await;
    ready.store(true, Ordering::SeqCst);
    event.notify(usize::MAX);
    for waiter in waiters {
        ginkgo_api::time::timeout::<R, _>(Duration::from_secs(30), waiter)
            .await
            .expect("woken in time")
            .expect("waiter");
    }
}

/// An async mutex held across await points serialises increments from many tasks.
pub async fn mutex_across_tasks<R: Runtime>() {
    let counter = Arc::new(Mutex::new(0u32));
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let counter = counter.clone();
            spawn::<R, _>(async move {
                for _ in 0..20 {
                    let mut guard = counter.lock().await;
                    let seen = *guard;
                    ginkgo_api::time::sleep::<R>(Duration::from_micros(50)).await;
                    *guard = seen + 1;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("incrementer");
    }
    assert_eq!(*counter.lock().await, 200);
}

/// A semaphore of three never lets more than three tasks in at once.
pub async fn semaphore_limits_concurrency<R: Runtime>() {
    let semaphore = Arc::new(Semaphore::new(3));
    let inside = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let (semaphore, inside, most) = (semaphore.clone(), inside.clone(), most.clone());
            spawn::<R, _>(async move {
                let _permit = semaphore.acquire().await;
                let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                sleep::<R>(Duration::from_millis(2)).await;
                inside.fetch_sub(1, Ordering::SeqCst);
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("worker");
    }
    let most = most.load(Ordering::SeqCst);
    assert!(
        (1..=3).contains(&most),
        "{most} tasks held a permit at once"
    );
}

/// Readers share an RwLock; a writer waits for them and then sees exclusive access.
pub async fn rwlock_readers_share<R: Runtime>() {
    let lock = Arc::new(RwLock::new(0u32));
    let first = lock.read().await;
    let second = lock.read().await; // two readers at once
    assert_eq!(*first + *second, 0);
    let writer = {
        let lock = lock.clone();
        spawn::<R, _>(async move {
            *lock.write().await += 1;
        })
    };
    sleep::<R>(Duration::from_millis(10)).await;
    assert!(!writer.is_finished(), "the writer waits for the readers");
    drop((first, second));
    writer.await.expect("writer");
    assert_eq!(*lock.read().await, 1);
}
