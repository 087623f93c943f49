//! A thread the operating system refuses is an error of that task, never a panic.
//!
//! Its own test binary: the stack size it sets is process-wide.

use std::error::Error;

use std::sync::{Mutex, PoisonError};

use ginkgo_backend_threads::{Threads, set_stack_size};

/// The stack size is process-wide: one test at a time changes it.
static STACK: Mutex<()> = Mutex::new(());

#[test]
fn a_refused_thread_is_reported_as_not_started() {
    let _one_at_a_time = STACK.lock().unwrap_or_else(PoisonError::into_inner);
    // 128 TiB does not fit in a Linux process's address space, so the thread cannot be made
    // whatever the overcommit policy.
    set_stack_size(1 << 47);
    let handle = ginkgo_api::spawn::<Threads, _>(async { 1 });
    set_stack_size(0);
    let err = ginkgo_api::block_on::<Threads, _>(handle).expect_err("the thread was refused");
    assert!(err.is_not_started(), "{err:?}");
    assert!(!err.is_panic() && !err.is_cancelled(), "{err:?}");
    assert!(
        err.to_string().starts_with("task could not be started: "),
        "{err}"
    );
    let io = err
        .source()
        .and_then(|source| source.downcast_ref::<std::io::Error>())
        .expect("the spawn error");
    assert!(io.raw_os_error().is_some(), "{io:?}");
}

/// Spawns one owned task while threads cannot be made.
struct Refused;

#[ginkgo_api::service::async_trait]
impl ginkgo_api::service::Service for Refused {
    fn name(&self) -> &str {
        "refused"
    }

    async fn start(
        &mut self,
        ctx: &ginkgo_api::service::Context,
    ) -> Result<(), ginkgo_api::service::Error> {
        set_stack_size(1 << 47);
        ctx.spawn("worker", async {});
        set_stack_size(0);
        Ok(())
    }
}

#[test]
fn an_owned_task_that_cannot_start_fails_its_service() {
    use ginkgo_api::service::{Cause, tree};
    let _one_at_a_time = STACK.lock().unwrap_or_else(PoisonError::into_inner);
    let root = tree::<Threads>(Refused);
    let failure = ginkgo_api::block_on::<Threads, _>(root.start()).expect_err("the task never ran");
    match failure.cause() {
        Cause::TaskError { task, error } => {
            assert_eq!(task, "worker");
            assert!(
                error.to_string().starts_with("task could not be started: "),
                "{error}"
            );
        }
        other => panic!("not a task error: {other:?}"),
    }
}
