//! A handler's failure concerns its connection or datagram only.

use std::future::Future;
use std::panic::AssertUnwindSafe;

use futures_lite::FutureExt;
use ginkgo_api::service::TaskResult;

/// Runs the future `call` makes and says what went wrong, if anything: its error, or a panic
/// (in `call` itself, before the future exists, too), as text for the log.
pub(crate) async fn run_handler<Fut>(call: impl FnOnce() -> Fut) -> Option<String>
where
    Fut: Future,
    Fut::Output: TaskResult,
{
    match AssertUnwindSafe(async { call().await })
        .catch_unwind()
        .await
    {
        Ok(output) => output.into_result().err().map(|e| e.to_string()),
        Err(panic) => Some(format!(
            "handler panicked: {}",
            ginkgo_api::task::payload_message(panic.as_ref()).unwrap_or("non-string payload")
        )),
    }
}
