//! hyper's runtime traits on the backend: the executor and the timer (the I/O adapter is
//! exercised by every request).

use std::time::{Duration, Instant};

use ginkgo_api::Runtime;
use ginkgo_api::sync::channel;
use ginkgo_http::rt::{Executor, Sleep, Timer};
use hyper::rt::{Executor as _, Timer as _};

use crate::client::within;

/// The executor runs what hyper hands it as a task of the backend.
pub(crate) async fn executor_runs_futures<R: Runtime>() {
    let (tx, rx) = channel::bounded::<u32>(1);
    Executor::<R>::new().execute(async move {
        let _ = tx.send(42).await;
    });
    assert_eq!(
        within::<R, _>("the spawned future", rx.recv()).await,
        Ok(42)
    );
}

/// The timer's sleeps never end early, and a reset moves the deadline of the same timer.
pub(crate) async fn timer_sleeps_and_resets<R: Runtime>() {
    let timer = Timer::<R>::new();
    let began = Instant::now();
    within::<R, _>("a sleep", timer.sleep(Duration::from_millis(20))).await;
    assert!(began.elapsed() >= Duration::from_millis(20));

    let mut sleep = timer.sleep(Duration::from_secs(3600));
    let began = Instant::now();
    timer.reset(&mut sleep, began + Duration::from_millis(20));
    assert!(
        sleep.as_ref().get_ref().is::<Sleep<R>>(),
        "a reset must reuse the timer, not replace it"
    );
    within::<R, _>("a reset sleep", &mut sleep).await;
    assert!(began.elapsed() >= Duration::from_millis(20));

    // Reset after firing: it fires again at the new deadline.
    let began = Instant::now();
    timer.reset(&mut sleep, began + Duration::from_millis(20));
    within::<R, _>("a sleep reset after firing", &mut sleep).await;
    assert!(began.elapsed() >= Duration::from_millis(20));
}
