//! Why a service failed, and what a stop left behind.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::State;

/// A service failed: which one (its path) and why.
#[derive(Debug, Clone)]
pub struct Failure {
    path: Arc<str>,
    cause: Cause,
}

/// Why a service failed.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Cause {
    /// A hook (`"start"`, `"stop"`, `"reload"`) returned an error.
    HookError {
        /// Which hook.
        hook: &'static str,
        /// The error's message.
        message: String,
    },
    /// A hook panicked.
    HookPanic {
        /// Which hook.
        hook: &'static str,
        /// The panic message.
        message: String,
    },
    /// An owned task returned an error.
    TaskError {
        /// The task's name.
        task: String,
        /// The error's message.
        message: String,
    },
    /// An owned task panicked.
    TaskPanic {
        /// The task's name.
        task: String,
        /// The panic message.
        message: String,
    },
    /// The `start` hook plus readiness took longer than the start timeout.
    StartTimeout(Duration),
    /// The `stop` or `reload` hook took longer than its limit and was cancelled.
    HookTimeout {
        /// Which hook.
        hook: &'static str,
        /// The limit.
        limit: Duration,
    },
    /// A child failed to start, so this service's start was rolled back.
    Child(Box<Failure>),
    /// Children needed more restarts than the restart intensity allows, so this service
    /// failed in turn (escalation).
    RestartIntensity {
        /// The limit that was exceeded.
        max_restarts: u32,
        /// Its window.
        window: Duration,
        /// The child failure that went over the limit.
        last: Box<Failure>,
    },
    /// The operation needs a running service, and the service was in this state.
    NotRunning(State),
}

impl Failure {
    pub(crate) fn new(path: Arc<str>, cause: Cause) -> Self {
        Self { path, cause }
    }

    /// The path of the service that failed.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Why it failed.
    pub fn cause(&self) -> &Cause {
        &self.cause
    }

    /// The failure at the bottom of a chain of [`Cause::Child`] and
    /// [`Cause::RestartIntensity`]: the service where it started.
    pub fn root_cause(&self) -> &Failure {
        match &self.cause {
            Cause::Child(inner) | Cause::RestartIntensity { last: inner, .. } => inner.root_cause(),
            _ => self,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "service {} failed: ", self.path)?;
        match &self.cause {
            Cause::HookError { hook, message } => write!(f, "{hook} returned an error: {message}"),
            Cause::HookPanic { hook, message } => write!(f, "{hook} panicked: {message}"),
            Cause::TaskError { task, message } => {
                write!(f, "task {task:?} returned an error: {message}")
            }
            Cause::TaskPanic { task, message } => write!(f, "task {task:?} panicked: {message}"),
            Cause::StartTimeout(limit) => write!(
                f,
                "not ready within its start timeout of {limit:?} (raise Options::start_timeout if it needs longer)"
            ),
            Cause::HookTimeout { hook, limit } => {
                write!(
                    f,
                    "{hook} did not finish within {limit:?} and was cancelled"
                )
            }
            Cause::Child(child) => write!(f, "a child failed to start: {child}"),
            Cause::RestartIntensity {
                max_restarts,
                window,
                last,
            } => write!(
                f,
                "more than {max_restarts} restarts of children within {window:?}; last: {last}"
            ),
            Cause::NotRunning(state) => write!(f, "it is {state}, not running"),
        }
    }
}

impl std::error::Error for Failure {}

/// A task that was still running after its service's stop timeout and abort: blocking code
/// that cannot be interrupted (a `spawn_blocking` closure, or a busy task on the threads
/// backend). It is left running, detached, rather than hanging the stop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StuckTask {
    /// The owning service's path.
    pub service: String,
    /// The task's name.
    pub task: String,
}

impl fmt::Display for StuckTask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "task {:?} of service {} did not stop (blocking code cannot be aborted)",
            self.task, self.service
        )
    }
}

/// What a stop left behind: tasks that could not be aborted and hooks that failed. A stop
/// always completes; this says how cleanly.
#[derive(Debug, Clone, Default)]
pub struct StopReport {
    /// Tasks still running after abort.
    pub stuck: Vec<StuckTask>,
    /// `stop` hooks that returned an error, panicked or timed out.
    pub errors: Vec<Failure>,
}

impl StopReport {
    /// Whether everything stopped and no hook failed.
    pub fn is_clean(&self) -> bool {
        self.stuck.is_empty() && self.errors.is_empty()
    }

    pub(crate) fn merge(&mut self, other: StopReport) {
        self.stuck.extend(other.stuck);
        self.errors.extend(other.errors);
    }
}

impl fmt::Display for StopReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_clean() {
            return f.write_str("stopped cleanly");
        }
        let mut first = true;
        for line in self
            .stuck
            .iter()
            .map(ToString::to_string)
            .chain(self.errors.iter().map(ToString::to_string))
        {
            if !first {
                f.write_str("; ")?;
            }
            first = false;
            f.write_str(&line)?;
        }
        Ok(())
    }
}
