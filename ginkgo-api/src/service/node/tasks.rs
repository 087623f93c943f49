//! Owned tasks: the list of a service's tasks, its shutdown signal, and reaping them on stop.
//!
//! Locking: [`Tasks`] has one lock, private to this module and a leaf: no method calls out
//! while holding it, and none hands out a guard.

use std::borrow::Cow;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use super::super::context::Shutdown;
use super::super::exec::{Exec, TaskHandle, within};
use super::super::failure::{StopReport, StuckTask};

/// How long aborted tasks get to finish before they are reported as stuck: an aborted async
/// task ends when its runtime next schedules it, which this covers with margin; blocking code
/// cannot be aborted, so waiting longer for it would only delay the stop.
const ABORT_GRACE: Duration = Duration::from_millis(100);

/// The list is not scanned for finished tasks until it is at least this long: scanning a short
/// list costs more than it saves.
const REAP_MIN: usize = 16;

/// After a scan, the next one waits until the list has grown by this factor over the tasks
/// still running, so scans stay amortised O(1) per spawn however many tasks live long.
const REAP_GROWTH: usize = 2;

/// How many times a stop collects the tasks spawned while the others wound down (a request on
/// a draining connection): enough for such stragglers, bounded against a task that spawns
/// another each time it is aborted.
const REAP_ROUNDS: usize = 4;

/// A service's owned tasks and the signal that tells them to stop.
pub(super) struct Tasks {
    inner: Mutex<Owned>,
}

/// What the lock of [`Tasks`] guards.
struct Owned {
    /// The tasks, finished ones included until the next scan.
    list: Vec<OwnedTask>,
    /// The list length at which [`Tasks::own`] next drops finished tasks.
    reap_at: usize,
    /// The signal of the current run; renewed at each start.
    shutdown: Shutdown,
}

/// One task a service owns.
struct OwnedTask {
    /// For logs and stop reports.
    name: Cow<'static, str>,
    /// Joins or aborts the task.
    handle: TaskHandle,
    /// Joined already, by an earlier (cancelled) round of [`join_all`].
    joined: bool,
}

impl Tasks {
    /// No tasks, and a signal not triggered.
    pub(super) fn new() -> Self {
        Self {
            inner: Mutex::new(Owned {
                list: Vec::new(),
                reap_at: REAP_MIN,
                shutdown: Shutdown::default(),
            }),
        }
    }

    /// Takes the lock; callers in this module keep the guard local and never await under it.
    fn lock(&self) -> MutexGuard<'_, Owned> {
        // No user code runs under this lock, so a poisoned lock still holds consistent data.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records a task; finished tasks are dropped from the list now and then, so a service
    /// spawning a task per request does not grow the list without bound. On the hot path
    /// (a task per accepted connection): one lock, and no allocation beyond the list's own.
    pub(super) fn own(&self, name: Cow<'static, str>, handle: TaskHandle) {
        let mut owned = self.lock();
        if owned.list.len() >= owned.reap_at {
            owned.list.retain(|task| !task.handle.is_finished());
            owned.reap_at = (owned.list.len() * REAP_GROWTH).max(REAP_MIN);
        }
        owned.list.push(OwnedTask {
            name,
            handle,
            joined: false,
        });
    }

    /// How many owned tasks are still running.
    pub(super) fn running(&self) -> usize {
        self.lock()
            .list
            .iter()
            .filter(|task| !task.handle.is_finished())
            .count()
    }

    /// The current stop signal.
    pub(super) fn shutdown(&self) -> Shutdown {
        self.lock().shutdown.clone()
    }

    /// Tells the tasks to stop.
    pub(super) fn trigger_shutdown(&self) {
        // Triggered outside the lock: waking the tasks need not hold up a spawn.
        self.shutdown().trigger();
    }

    /// Makes a fresh, untriggered signal for the next start.
    pub(super) fn renew_shutdown(&self) {
        self.lock().shutdown = Shutdown::default();
    }

    /// Tells the tasks to stop, waits for them until `deadline`, aborts the rest, and reports
    /// those that still did not finish (as tasks of the service at `path`).
    pub(super) async fn reap(&self, exec: &dyn Exec, path: &str, deadline: Instant) -> StopReport {
        self.trigger_shutdown();
        let mut report = StopReport::default();
        // Tasks may be spawned while the others wind down (a request arriving on a draining
        // connection): reap those too, at once since the deadline has passed by then.
        for _ in 0..REAP_ROUNDS {
            let mut tasks = std::mem::take(&mut self.lock().list);
            tasks.retain(|task| !task.handle.is_finished());
            if tasks.is_empty() {
                break;
            }
            report.merge(reap(exec, path, &mut tasks, deadline).await);
        }
        report
    }
}

/// Waits for `tasks` until `deadline`, aborts the rest, and reports those that still did not
/// finish.
async fn reap(
    exec: &dyn Exec,
    path: &str,
    tasks: &mut [OwnedTask],
    deadline: Instant,
) -> StopReport {
    let remaining = deadline.saturating_duration_since(Instant::now());
    if within(exec, remaining, join_all(tasks)).await.is_none() {
        for task in tasks.iter() {
            task.handle.abort();
        }
        within(exec, ABORT_GRACE, join_all(tasks)).await;
    }
    let stuck: Vec<StuckTask> = tasks
        .iter()
        .filter(|task| !task.joined && !task.handle.is_finished())
        .map(|task| StuckTask {
            service: path.to_owned(),
            task: task.name.to_string(),
        })
        .collect();
    for task in &stuck {
        tracing::warn!(service = %task.service, task = %task.task, "task did not stop; left running detached (blocking code cannot be aborted)");
    }
    StopReport {
        stuck,
        errors: Vec::new(),
    }
}

/// Joins every task not joined yet; may be cancelled between tasks and resumed.
async fn join_all(tasks: &mut [OwnedTask]) {
    for task in tasks.iter_mut().filter(|task| !task.joined) {
        // Cancelled and panicked both mean the task is gone; failures were reported already.
        let _ = (&mut task.handle).await;
        task.joined = true;
    }
}
