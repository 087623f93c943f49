//! The lifecycle operations: start, stop and reload of a node and its subtree, the hooks they
//! run, failing and rebuilding.
//!
//! Each public operation takes the node's `op` lock for its whole run, parent before child
//! (see the parent module). The code here sees no synchronous lock: it goes through the
//! methods of the lifecycle, tasks and observation records, which take and release theirs.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_lite::FutureExt;

use super::super::Options;
use super::super::context::{Context, panic_text};
use super::super::exec::{BoxFuture, within};
use super::super::failure::{Cause, Failure, Hook, StopReport};
use super::super::state::State;
use super::Node;
use super::lifecycle::Settled;

impl Node {
    /// Called by an owned task that panicked or returned an error.
    pub(crate) fn task_failed(self: Arc<Self>, cause: Cause) {
        let failure = self.failure(cause);
        if let Some(failure) = self.lifecycle.task_failed(failure) {
            tracing::error!(%failure, "service failed");
            let node = self.clone();
            drop(
                self.tree
                    .exec
                    .spawn(Box::pin(super::super::supervise::fail(node, failure))),
            );
        }
    }

    /// Runs one hook with a time limit, containing errors, panics and time-outs.
    async fn call_hook(self: &Arc<Self>, hook: Hook, limit: Duration) -> Result<(), Failure> {
        let Some(mut service) = self.lifecycle.take_service() else {
            // Only possible if a previous hook is still running, which the op lock prevents.
            return Err(self.failure(Cause::HookBusy(hook)));
        };
        let ctx = Context::new(self.clone());
        let outcome = {
            let call = AssertUnwindSafe(async {
                match hook {
                    Hook::Start => service.start(&ctx).await,
                    Hook::Stop => service.stop(&ctx).await,
                    Hook::Reload => service.reload(&ctx).await,
                }
            })
            .catch_unwind();
            let limited = within(&*self.tree.exec, limit, call);
            if matches!(hook, Hook::Start) {
                // A stop asked for meanwhile cancels the start hook, as its timeout would.
                futures_lite::future::or(async { Some(limited.await) }, async {
                    self.lifecycle.start_cancelled().await;
                    None
                })
                .await
            } else {
                Some(limited.await)
            }
        };
        self.lifecycle.put_service(service);
        let cause = match outcome {
            Some(Some(Ok(Ok(())))) => return Ok(()),
            Some(Some(Ok(Err(error)))) => Cause::HookError {
                hook,
                error: error.into(),
            },
            Some(Some(Err(payload))) => Cause::HookPanic {
                hook,
                message: panic_text(payload.as_ref()),
            },
            Some(None) if matches!(hook, Hook::Start) => Cause::StartTimeout(limit),
            Some(None) => Cause::HookTimeout { hook, limit },
            None => Cause::StartCancelled,
        };
        Err(self.failure(cause))
    }

    /// Starts this node and its subtree; see the service module docs for the order.
    pub(crate) fn start(self: Arc<Self>) -> BoxFuture<Result<(), Failure>> {
        Box::pin(async move {
            let _op = self.op.lock().await;
            self.start_locked().await
        })
    }

    /// [`Node::start`], with the op lock held.
    async fn start_locked(self: &Arc<Self>) -> Result<(), Failure> {
        if self.state().is_running() {
            return Ok(());
        }
        let began = Instant::now();
        self.tasks.renew_shutdown();
        let options = self.lifecycle.begin_start();
        self.set_state(State::Starting);

        let children = self.children();
        let mut started: Vec<Arc<Node>> = Vec::with_capacity(children.len());
        let mut own_started = false;
        let outcome = 'start: {
            if !options.start_before
                && let Err(child) = start_children(&children, &mut started).await
            {
                break 'start Err(self.failure(Cause::Child(Box::new(child))));
            }
            if let Err(failure) = self.start_own(&options).await {
                break 'start Err(failure);
            }
            own_started = true;
            if options.start_before
                && let Err(child) = start_children(&children, &mut started).await
            {
                break 'start Err(self.failure(Cause::Child(Box::new(child))));
            }
            self.lifecycle
                .finish_start(&self.path, &self.observe, began)
        };
        let Err(failure) = outcome else {
            return Ok(());
        };

        // Roll back what was started, in reverse: children, then this service itself.
        let mut report = StopReport::default();
        for child in started.iter().rev() {
            report.merge(child.clone().stop().await);
        }
        if own_started {
            report.merge(self.stop_own(&options).await);
        } else {
            let deadline = Instant::now() + options.stop_timeout;
            report.merge(self.reap_tasks(deadline).await);
        }
        if !report.is_clean() {
            tracing::warn!(service = %self.path, %report, "rolling back a failed start");
        }
        if matches!(failure.root_cause().cause(), Cause::StartCancelled) {
            // Not a failure of the service: it was asked to stop, and now it is stopped.
            tracing::info!(service = %self.path, "start cancelled by a stop");
            self.set_state(State::Stopped);
            return Err(failure);
        }
        tracing::error!(%failure, "start failed");
        self.record_failure(failure.clone());
        Err(failure)
    }

    /// The service's own part of a start: its hook, then readiness, within the start timeout.
    async fn start_own(self: &Arc<Self>, options: &Options) -> Result<(), Failure> {
        let deadline = Instant::now() + options.start_timeout;
        self.call_hook(Hook::Start, options.start_timeout).await?;
        match self
            .lifecycle
            .settle_start(&*self.tree.exec, deadline)
            .await
        {
            Some(Settled::Ready) => Ok(()),
            Some(Settled::Failed(failure)) => Err(failure),
            Some(Settled::Cancelled) => Err(self.failure(Cause::StartCancelled)),
            None => Err(self.failure(Cause::StartTimeout(options.start_timeout))),
        }
    }

    /// Stops this node and its subtree. Idempotent. A start under way in the subtree is
    /// cancelled first (its hook or its wait for readiness), so the stop does not wait for it
    /// to finish.
    pub(crate) fn stop(self: Arc<Self>) -> BoxFuture<StopReport> {
        Box::pin(async move {
            self.cancel_starts();
            let _op = self.op.lock().await;
            self.stop_locked().await
        })
    }

    /// Cancels the starts under way in this subtree.
    fn cancel_starts(&self) {
        self.lifecycle.cancel_start();
        for child in self.children() {
            child.cancel_starts();
        }
    }

    /// [`Node::stop`], with the op lock held.
    async fn stop_locked(self: &Arc<Self>) -> StopReport {
        match self.state() {
            State::Init | State::Stopped => return StopReport::default(),
            // A failed service was torn down when it failed.
            State::Failed => {
                self.set_state(State::Stopped);
                return StopReport::default();
            }
            State::Starting | State::Ready | State::Stopping => {}
        }
        let began = Instant::now();
        self.set_state(State::Stopping);
        let report = self.teardown().await;
        // Recorded before the state changes, so whoever sees `Stopped` sees this duration.
        self.observe.stopped_in(began.elapsed());
        self.set_state(State::Stopped);
        if !report.is_clean() {
            tracing::warn!(service = %self.path, %report, "stopped, not cleanly");
        }
        report
    }

    /// Stops the children in reverse order, then the service's own hook and tasks. Runs with
    /// the op lock held.
    pub(crate) async fn teardown(self: &Arc<Self>) -> StopReport {
        let mut report = StopReport::default();
        for child in self.children().iter().rev() {
            report.merge(child.clone().stop().await);
        }
        let options = self.options();
        report.merge(self.stop_own(&options).await);
        report
    }

    /// The service's own part of a stop: signal its tasks, run its hook, reap its tasks, all
    /// within the stop timeout (plus a short grace for aborted tasks).
    async fn stop_own(self: &Arc<Self>, options: &Options) -> StopReport {
        let deadline = Instant::now() + options.stop_timeout;
        self.tasks.trigger_shutdown();
        let mut report = StopReport::default();
        if let Err(failure) = self.call_hook(Hook::Stop, options.stop_timeout).await {
            report.errors.push(failure);
        }
        report.merge(self.reap_tasks(deadline).await);
        report
    }

    /// Waits for the owned tasks until `deadline`, aborts the rest, and reports those that
    /// still did not finish.
    async fn reap_tasks(&self, deadline: Instant) -> StopReport {
        self.tasks
            .reap(&*self.tree.exec, &self.path, deadline)
            .await
    }

    /// Reloads this node and its subtree in start order.
    pub(crate) fn reload(self: Arc<Self>) -> BoxFuture<Result<(), Failure>> {
        Box::pin(async move {
            let _op = self.op.lock().await;
            let state = self.state();
            if state != State::Ready {
                return Err(self.failure(Cause::NotRunning(state)));
            }
            let options = self.options();
            if options.start_before {
                self.call_hook(Hook::Reload, options.start_timeout).await?;
            }
            for child in self.children() {
                if child.state() == State::Ready {
                    child.reload().await?;
                }
            }
            if !options.start_before {
                self.call_hook(Hook::Reload, options.start_timeout).await?;
            }
            Ok(())
        })
    }

    /// Tears down a failed service, with the op lock held: `Stopping` while its children,
    /// stop hook and tasks are stopped, then `Failed` with `failure`. So whoever sees
    /// `Failed` finds its tasks reaped and its children stopped, as [`State::Failed`] says.
    pub(crate) async fn tear_down_failed(self: &Arc<Self>, failure: Failure) -> StopReport {
        self.set_state(State::Stopping);
        let report = self.teardown().await;
        self.record_failure(failure);
        report
    }

    /// Marks the node failed (it must already be torn down).
    fn record_failure(&self, failure: Failure) {
        self.lifecycle
            .record_failure(&self.path, &self.observe, failure);
    }

    /// Replaces the instance with a fresh one from the factory (if it has one), rebuilding its
    /// children through `init`, and counts a restart. The node must be stopped or failed.
    pub(crate) fn rebuild(self: &Arc<Self>) {
        let Some(mut fresh) = self.lifecycle.renew() else {
            return;
        };
        fresh.init(&Context::new(self.clone()));
        let options = fresh.options();
        self.lifecycle.install(fresh, options);
    }
}

/// Starts `children` in order, listing in `started` those that did.
async fn start_children(
    children: &[Arc<Node>],
    started: &mut Vec<Arc<Node>>,
) -> Result<(), Failure> {
    for child in children {
        child.clone().start().await?;
        started.push(child.clone());
    }
    Ok(())
}
