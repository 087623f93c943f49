//! The serving loop of `run` and of a daemon: pid file, control socket, tree start, privilege
//! drop, readiness, then signals and control requests until the tree stops.

use std::marker::PhantomData;
use std::os::fd::AsFd;
use std::sync::Arc;

use super::control::{self, Request};
use super::logging::{self, Logs};
use super::notify::Notifier;
use super::pidfile::{Pidfile, PidfileError};
use super::privileges;
use super::settings::{Paths, RunnerSettings};
use crate::{EXIT_CONFIG, EXIT_FAILURE};
use ginkgo_api::Runtime;
use ginkgo_api::future::or;
use ginkgo_api::service::{ServiceHandle, State};
use ginkgo_api::signal::{Signal, Signals};
use ginkgo_api::sync::channel;
use ginkgo_config::{Config, Live};

/// Exit status after a second SIGINT cut the stop short (128 + SIGINT, as shells report it).
const EXIT_INTERRUPTED: u8 = 130;

/// Everything the loop needs.
pub(super) struct Serving<'a, R> {
    pub(super) program: &'a str,
    pub(super) config: &'a Config,
    pub(super) settings: Live<RunnerSettings>,
    pub(super) paths: Paths,
    /// `None` when the program installs its own tracing subscriber.
    pub(super) logs: Option<Logs>,
    /// A daemon reports start-up to `start` through its standard input (a pipe).
    pub(super) daemon: bool,
    pub(super) runtime: PhantomData<fn() -> R>,
}

/// Reports the start-up outcome to the waiting `start` command, then detaches standard input.
fn report(daemon: bool, line: &str) {
    if !daemon {
        return;
    }
    let stdin = std::io::stdin();
    if let Err(err) = rustix::io::write(stdin.as_fd(), format!("{line}\n").as_bytes()) {
        tracing::warn!(%err, "could not report start-up status");
    }
    if let Ok(null) = std::fs::File::open("/dev/null") {
        let _ = rustix::stdio::dup2_stdin(&null);
    }
}

impl<R: Runtime> Serving<'_, R> {
    /// Runs the tree built from `root` until it stops; returns the exit status.
    pub(super) async fn run(self, root: impl ginkgo_api::service::Service) -> u8 {
        let drop_to = {
            let s = self.settings.get();
            privileges::Drop {
                user: s.user.clone(),
                group: s.group.clone(),
                chroot: s.chroot.clone(),
            }
        };
        let privileges = match drop_to.resolve() {
            Ok(resolved) => resolved,
            Err(err) => {
                eprintln!("{}: {err}", self.program);
                report(self.daemon, &format!("error: {err}"));
                return EXIT_CONFIG;
            }
        };
        let pidfile = match Pidfile::acquire(&self.paths.pidfile) {
            Ok(pidfile) => pidfile,
            Err(err) => {
                eprintln!("{}: {err}", self.program);
                report(self.daemon, &format!("error: {err}"));
                return match err {
                    PidfileError::Running { .. } => EXIT_FAILURE,
                    _ => EXIT_CONFIG,
                };
            }
        };
        let status = self
            .serve(root, drop_to.is_needed().then_some(privileges))
            .await;
        // The socket file goes before the pid file, so a client that sees no lock finds no
        // socket either.
        if let Err(err) = std::fs::remove_file(&self.paths.socket)
            && err.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(%err, socket = %self.paths.socket.display(), "could not remove the control socket");
        }
        drop(pidfile);
        status
    }

    async fn serve(
        &self,
        root: impl ginkgo_api::service::Service,
        privileges: Option<privileges::Resolved>,
    ) -> u8 {
        let fail = |message: String| {
            tracing::error!("{message}");
            report(self.daemon, &format!("error: {message}"));
            EXIT_FAILURE
        };
        let notifier = match Notifier::from_env() {
            Ok(notifier) => Arc::new(notifier),
            Err(err) => return fail(format!("NOTIFY_SOCKET is unusable: {err}")),
        };
        let mut signals =
            match Signals::new(&[Signal::Term, Signal::Int, Signal::Hup, Signal::Usr1]) {
                Ok(signals) => signals,
                Err(err) => return fail(format!("cannot listen for signals: {err}")),
            };
        let listener = match control::bind::<R>(&self.paths.socket) {
            Ok(listener) => listener,
            Err(err) => {
                return fail(format!(
                    "cannot create the control socket {}: {err}",
                    self.paths.socket.display()
                ));
            }
        };

        let tree = ginkgo_api::service::tree::<R>(root);
        if let Err(failure) = tree.start().await {
            eprintln!("{}: {failure}", self.program);
            return fail(format!("start failed: {failure}"));
        }
        if let Some(privileges) = &privileges
            && let Err(err) = privileges.apply()
        {
            tree.stop().await;
            return fail(format!("cannot drop privileges: {err}"));
        }

        let (requests, incoming) = channel::unbounded();
        let control = ginkgo_api::spawn::<R, _>(control::serve(listener, tree.clone(), requests));
        let watchdog = notifier.watchdog_interval().map(|interval| {
            let notifier = notifier.clone();
            ginkgo_api::spawn::<R, _>(async move {
                loop {
                    notifier.send("WATCHDOG=1");
                    ginkgo_api::time::sleep::<R>(interval).await;
                }
            })
        });
        tracing::info!(pid = std::process::id(), service = tree.path(), "ready");
        notifier.ready(&format!("{} ready", tree.path()));
        report(self.daemon, &format!("ready {}", std::process::id()));

        let status = self.answer(&tree, &mut signals, &incoming, &notifier).await;
        control.abort();
        if let Some(watchdog) = watchdog {
            watchdog.abort();
        }
        status
    }

    /// Answers signals and control requests until the tree ends or is stopped.
    async fn answer(
        &self,
        tree: &ServiceHandle,
        signals: &mut Signals<R>,
        incoming: &channel::Receiver<Request>,
        notifier: &Notifier,
    ) -> u8 {
        enum Event {
            Ended(State),
            Signal(Option<Signal>),
            Request(Request),
        }
        let ended = tree.wait_until(|state| matches!(state, State::Stopped | State::Failed));
        let mut ended = std::pin::pin!(ended);
        loop {
            let event = or(
                async { Event::Ended(ended.as_mut().await) },
                or(async { Event::Signal(signals.recv().await) }, async {
                    match incoming.recv().await {
                        Ok(request) => Event::Request(request),
                        Err(_) => std::future::pending().await,
                    }
                }),
            )
            .await;
            match event {
                Event::Ended(State::Failed) => {
                    let failure = tree
                        .last_failure()
                        .map(|f| f.to_string())
                        .unwrap_or_default();
                    tracing::error!(%failure, "the service tree failed");
                    notifier.send(&format!("STATUS=failed: {failure}"));
                    return EXIT_FAILURE;
                }
                Event::Ended(_) => {
                    tracing::info!("the service tree stopped");
                    return 0;
                }
                Event::Signal(Some(Signal::Hup)) => {
                    if let Err(err) = self.reload(tree, notifier).await {
                        tracing::error!("reload failed: {err}");
                    }
                }
                Event::Request(Request::Reload(reply)) => {
                    let _ = reply.send(self.reload(tree, notifier).await).await;
                }
                Event::Signal(Some(Signal::Usr1)) => self.reopen_log(),
                Event::Signal(Some(signal)) => {
                    tracing::info!(%signal, "stopping");
                    return self.stop(tree, signals, notifier).await;
                }
                Event::Request(Request::Stop) => {
                    tracing::info!("stop requested through the control socket");
                    return self.stop(tree, signals, notifier).await;
                }
                Event::Signal(None) => {
                    tracing::error!("the signal stream ended; stopping");
                    return self.stop(tree, signals, notifier).await;
                }
            }
        }
    }

    /// Stops the tree within `stop_timeout`; a second SIGINT exits at once.
    async fn stop(
        &self,
        tree: &ServiceHandle,
        signals: &mut Signals<R>,
        notifier: &Notifier,
    ) -> u8 {
        notifier.stopping();
        let limit = self.settings.get().stop_timeout.0;
        let stopping = ginkgo_api::time::timeout::<R, _>(limit, tree.stop());
        let interrupted = async {
            loop {
                match signals.recv().await {
                    Some(Signal::Int) => return,
                    Some(_) => continue,
                    None => std::future::pending::<()>().await,
                }
            }
        };
        match or(async { Some(stopping.await) }, async {
            interrupted.await;
            None
        })
        .await
        {
            None => {
                tracing::warn!("second SIGINT: exiting without waiting for the services");
                EXIT_INTERRUPTED
            }
            Some(Err(_)) => {
                tracing::error!(
                    ?limit,
                    "the services did not stop within stop_timeout; exiting anyway"
                );
                EXIT_FAILURE
            }
            Some(Ok(report)) => {
                if report.is_clean() {
                    tracing::info!("stopped");
                } else {
                    tracing::warn!(%report, "stopped, not cleanly");
                }
                0
            }
        }
    }

    /// The configuration first (whole or not at all), then the services' reload hooks.
    async fn reload(&self, tree: &ServiceHandle, notifier: &Notifier) -> Result<String, String> {
        notifier.reloading();
        let outcome = async {
            let changed = self.config.reload().map_err(|err| {
                tracing::error!(error = %err, "configuration rejected; the old one stays in force");
                format!("configuration rejected; the old one stays in force:\n{err}")
            })?;
            tracing::info!(?changed, "configuration reloaded");
            if let Some(logs) = &self.logs
                && let Err(err) = logs.apply(&self.settings.get())
            {
                tracing::error!(%err, "log settings not applied");
            }
            tree.reload().await.map_err(|failure| {
                tracing::error!(%failure, "a service failed to reload");
                format!("configuration reloaded, but a service failed to reload: {failure}")
            })?;
            tracing::info!("services reloaded");
            Ok(if changed.is_empty() {
                "reloaded; no setting changed".to_owned()
            } else {
                format!("reloaded; changed: {}", changed.join(", "))
            })
        }
        .await;
        notifier.ready(&format!("{} ready", tree.path()));
        outcome
    }

    fn reopen_log(&self) {
        if !self.daemon {
            tracing::info!("SIGUSR1: logging to standard error, no file to reopen");
            return;
        }
        match logging::reopen(&self.paths.logfile) {
            Ok(()) => tracing::info!(logfile = %self.paths.logfile.display(), "log file reopened"),
            Err(err) => {
                tracing::error!(%err, logfile = %self.paths.logfile.display(), "could not reopen the log file")
            }
        }
    }
}
