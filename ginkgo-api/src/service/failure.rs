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

/// An error a hook or task returned, kept whole (shared, so a [`Failure`] can be cloned).
pub type SharedError = Arc<dyn std::error::Error + Send + Sync + 'static>;

/// A service's lifecycle hooks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Hook {
    /// [`Service::start`](super::Service::start).
    Start,
    /// [`Service::stop`](super::Service::stop).
    Stop,
    /// [`Service::reload`](super::Service::reload).
    Reload,
}

impl fmt::Display for Hook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Hook::Start => "start",
            Hook::Stop => "stop",
            Hook::Reload => "reload",
        })
    }
}

/// Why a service failed. Errors are kept as they were returned (see
/// [`std::error::Error::source`] on [`Failure`]), never turned into strings.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Cause {
    /// A hook returned an error.
    HookError {
        /// Which hook.
        hook: Hook,
        /// The error it returned.
        error: SharedError,
    },
    /// A hook panicked.
    HookPanic {
        /// Which hook.
        hook: Hook,
        /// The panic message.
        message: String,
    },
    /// A hook was called while the service was busy in another one (a bug in the caller).
    HookBusy(Hook),
    /// An owned task returned an error.
    TaskError {
        /// The task's name.
        task: String,
        /// The error it returned.
        error: SharedError,
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
    /// The service was asked to stop while it was starting: its start hook (or the wait for
    /// readiness) was cancelled and what had started was stopped.
    StartCancelled,
    /// The `stop` or `reload` hook took longer than its limit and was cancelled.
    HookTimeout {
        /// Which hook.
        hook: Hook,
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
        /// The path of the child whose exit went over the limit.
        child: Arc<str>,
        /// How that child ended: its failure, or `None` if it exited normally (a permanent
        /// child that keeps exiting is restarted too).
        last: Option<Box<Failure>>,
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
            Cause::Child(inner)
            | Cause::RestartIntensity {
                last: Some(inner), ..
            } => inner.root_cause(),
            _ => self,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "service {} failed: ", self.path)?;
        match &self.cause {
            Cause::HookError { hook, error } => write!(f, "{hook} returned an error: {error}"),
            Cause::HookPanic { hook, message } => write!(f, "{hook} panicked: {message}"),
            Cause::HookBusy(hook) => {
                write!(
                    f,
                    "{hook} was called while the service was busy in another hook"
                )
            }
            Cause::TaskError { task, error } => {
                write!(f, "task {task:?} returned an error: {error}")
            }
            Cause::TaskPanic { task, message } => write!(f, "task {task:?} panicked: {message}"),
            Cause::StartTimeout(limit) => write!(
                f,
                "not ready within its start timeout of {limit:?} (raise Options::start_timeout if it needs longer)"
            ),
            Cause::StartCancelled => f.write_str("stopped while starting: the start was cancelled"),
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
                child,
                last,
            } => {
                write!(
                    f,
                    "more than {max_restarts} restarts of children within {window:?}; last: "
                )?;
                match last {
                    Some(failure) => write!(f, "{failure}"),
                    None => write!(f, "service {child} exited normally"),
                }
            }
            Cause::NotRunning(state) => write!(f, "it is {state}, not running"),
        }
    }
}

impl std::error::Error for Failure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.cause {
            Cause::HookError { error, .. } | Cause::TaskError { error, .. } => Some(&**error),
            Cause::Child(child)
            | Cause::RestartIntensity {
                last: Some(child), ..
            } => Some(&**child),
            _ => None,
        }
    }
}

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
