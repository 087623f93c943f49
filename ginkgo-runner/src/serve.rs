//! The serving loop of `run` and of a daemon: pid file, control socket, tree start, privilege
//! drop, readiness, then signals and control requests until the tree stops (or an upgrade has
//! handed over to a new process).

use std::ffi::OsString;
use std::marker::PhantomData;
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::control::{self, Request};
use super::logging::{self, Logs};
use super::notify::{self, Notifier};
use super::pidfile::{Pidfile, PidfileError};
use super::privileges;
use super::settings::{Paths, RunnerSettings};
use super::upgrade::{self, Handover, Successor};
use crate::{EXIT_CONFIG, EXIT_FAILURE};
use ginkgo_api::Runtime;
use ginkgo_api::future::or;
use ginkgo_api::net::{UnixListener, handoff};
use ginkgo_api::service::{ServiceHandle, State};
use ginkgo_api::signal::{Signal, Signals};
use ginkgo_api::sync::channel;
use ginkgo_config::{Config, Live};

/// How long the new process of an upgrade waits for the old one to commit once it said it is
/// ready (the old one answers at once, unless it gave up).
const COMMIT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// After a handover: how long the old process waits, accepting nothing, before it stops its
/// tree.
pub(super) const HANDOVER_GRACE: std::time::Duration = std::time::Duration::from_millis(200);

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
    /// The global options it was started with, for the new process of an upgrade.
    pub(super) forwarded: Vec<OsString>,
    /// The program file, as it was named when this process started (so that an upgrade runs
    /// the file now at that path, not the replaced one this process runs).
    pub(super) exe: Option<PathBuf>,
    /// Started by an upgrade from this pid: it reports start-up back through its standard
    /// input (a socket pair), and adopts what the old process hands over.
    pub(super) upgrade_from: Option<u32>,
    /// A prefork worker, with this number: it serves the tree on the sockets its master
    /// handed it (on its standard input, a socket pair), and answers its master there.
    pub(super) worker: Option<u32>,
    /// A worker's handover from its master, already received.
    pub(super) worker_handover: Option<upgrade::Handover>,
    pub(super) runtime: PhantomData<fn() -> R>,
}

/// Where this process stands with the files it shares with another process of the program
/// (the pid file, the control socket file, Unix socket files).
pub(super) struct Ownership {
    /// Whether this process removes them when it exits: not while it is the new process of an
    /// upgrade that is not ready yet (they are the old one's), and no longer once it has
    /// handed over to a new process.
    pub(super) owns_files: AtomicBool,
    /// An upgrade is under way (checked by the control socket, which refuses a second).
    pub(super) upgrading: Arc<AtomicBool>,
}

/// Reports the start-up outcome to the waiting `start` command (a daemon) or to the process
/// that started this one in an upgrade, then detaches standard input.
pub(super) fn report(reports: bool, line: &str) {
    if !reports {
        return;
    }
    // One line: the reader reads one.
    let line = super::one_line(line);
    let stdin = std::io::stdin();
    if let Err(err) = rustix::io::write(stdin.as_fd(), format!("{line}\n").as_bytes()) {
        tracing::warn!(%err, "could not report start-up status");
    }
    detach_stdin();
}

/// Points standard input at `/dev/null`, closing the pipe or socket pair it was.
pub(super) fn detach_stdin() {
    if let Ok(null) = std::fs::File::open("/dev/null") {
        let _ = rustix::stdio::dup2_stdin(&null);
    }
}

impl<R: Runtime> Serving<'_, R> {
    /// Whether start-up is reported on standard input.
    pub(super) fn reports(&self) -> bool {
        self.daemon || self.upgrade_from.is_some() || self.worker.is_some()
    }

    /// Runs the tree built from `root` until it stops; returns the exit status.
    pub(super) async fn run(mut self, root: impl ginkgo_api::service::Service) -> u8 {
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
                report(self.reports(), &format!("error: {err}"));
                return EXIT_CONFIG;
            }
        };
        if let Some(number) = self.worker {
            // Received before the configuration was loaded (`Runner::prepare`).
            let Some(handover) = self.worker_handover.take() else {
                report(true, "error: the master's handover was not received");
                return EXIT_FAILURE;
            };
            // No pid file, no control socket: those are the master's.
            return self
                .serve_worker(
                    root,
                    drop_to.is_needed().then_some(privileges),
                    number,
                    handover,
                )
                .await;
        }
        let mut handover = match self.upgrade_from.map(upgrade::receive).transpose() {
            Ok(handover) => handover,
            Err(err) => {
                eprintln!(
                    "{}: cannot take over from the running process: {err}",
                    self.program
                );
                report(self.reports(), &format!("error: cannot take over: {err}"));
                return EXIT_FAILURE;
            }
        };
        let adopted = handover
            .as_mut()
            .and_then(|handover| handover.pidfile.take());
        let mut pidfile = match adopted {
            Some(fd) => Pidfile::adopt(std::fs::File::from(fd), &self.paths.pidfile),
            None => match Pidfile::acquire(&self.paths.pidfile) {
                Ok(pidfile) => pidfile,
                Err(err) => {
                    eprintln!("{}: {err}", self.program);
                    report(self.reports(), &format!("error: {err}"));
                    return match err {
                        PidfileError::Running { .. } => EXIT_FAILURE,
                        _ => EXIT_CONFIG,
                    };
                }
            },
        };
        let ownership = Ownership {
            owns_files: AtomicBool::new(handover.is_none()),
            upgrading: Arc::new(AtomicBool::new(false)),
        };
        let status = self
            .serve(
                root,
                drop_to.is_needed().then_some(privileges),
                handover,
                &mut pidfile,
                &ownership,
            )
            .await;
        if ownership.owns_files.load(Ordering::Acquire) {
            // The socket file goes before the pid file, so a client that sees no lock finds no
            // socket either.
            if let Err(err) = std::fs::remove_file(&self.paths.socket)
                && err.kind() != std::io::ErrorKind::NotFound
            {
                tracing::warn!(%err, socket = %self.paths.socket.display(), "could not remove the control socket");
            }
        } else {
            pidfile.hand_on();
        }
        drop(pidfile);
        status
    }

    async fn serve(
        &self,
        root: impl ginkgo_api::service::Service,
        privileges: Option<privileges::Resolved>,
        mut handover: Option<Handover>,
        pidfile: &mut Pidfile,
        ownership: &Ownership,
    ) -> u8 {
        let fail = |message: String| {
            tracing::error!("{message}");
            report(self.reports(), &format!("error: {message}"));
            EXIT_FAILURE
        };
        let notifier = match Notifier::from_env() {
            Ok(notifier) => Arc::new(notifier.with_fd_store(self.settings.get().fd_store)),
            Err(err) => return fail(format!("NOTIFY_SOCKET is unusable: {err}")),
        };
        let mut signals = match Signals::new(&ANSWERED) {
            Ok(signals) => signals,
            Err(err) => return fail(format!("cannot listen for signals: {err}")),
        };
        let upgraded = handover.is_some();
        let listener = match handover
            .as_mut()
            .and_then(|handover| handover.control.take())
        {
            Some(fd) => UnixListener::<R>::from_std(std::os::unix::net::UnixListener::from(fd)),
            None => control::bind::<R>(&self.paths.socket),
        };
        let listener = match listener {
            Ok(listener) => listener,
            Err(err) => {
                return fail(format!(
                    "cannot create the control socket {}: {err}",
                    self.paths.socket.display()
                ));
            }
        };
        // Kept to hand on to the next process of an upgrade.
        let control_socket = match listener.as_fd().try_clone_to_owned() {
            Ok(fd) => fd,
            Err(err) => return fail(format!("cannot duplicate the control socket: {err}")),
        };
        let mut passed = Vec::new();
        match handover {
            Some(handover) => {
                // Until the old process commits, the socket files are its own, and it alone
                // accepts on the sockets.
                handoff::set_keep_socket_files(true);
                handoff::hold_serving();
                handoff::inherit(handover.listeners);
            }
            // The sockets systemd passed by name (a socket unit's, or its file descriptor
            // store's after a crash): each goes to the server whose path is its name.
            None => {
                let named = notify::take_named();
                passed = named
                    .iter()
                    .map(|(name, socket)| Passed::of(name, socket))
                    .collect();
                handoff::inherit(named);
            }
        }
        let held = match pidfile.duplicate() {
            Ok(file) => Held {
                upgraded,
                control_socket,
                ownership,
                pidfile: OwnedFd::from(file),
            },
            Err(err) => return fail(format!("cannot duplicate the pid file: {err}")),
        };
        if self.settings.get().workers.prefork() {
            // The master: it binds the sockets and supervises the workers that serve them;
            // the workers drop the privileges.
            return self
                .serve_master(root, listener, held, pidfile, notifier, &mut signals)
                .await;
        }

        let tree = ginkgo_api::service::tree::<R>(root);
        match start_answering_stop(&tree, &mut signals).await {
            Started::Ready => {}
            Started::Failed(failure) => {
                eprintln!("{}: {failure}", self.program);
                return fail(format!("start failed: {failure}"));
            }
            Started::Stopped(signal) => {
                // Stopped as asked; whoever waits for the start hears why it never came.
                report(
                    self.reports(),
                    &format!("error: stopped by {signal} while starting"),
                );
                return 0;
            }
        }
        if let Some(privileges) = &privileges
            && let Err(err) = privileges.apply()
        {
            tree.stop().await;
            return fail(format!("cannot drop privileges: {err}"));
        }
        if upgraded && let Err(status) = self.take_over(pidfile, held.ownership).await {
            tree.stop().await;
            return status;
        }
        if upgraded {
            handoff::release_serving();
            handoff::set_keep_socket_files(false);
        }
        let untaken = settle_untaken(upgraded);
        report_unserved(&passed, &untaken);
        store_registered(&notifier);

        let running = self.announce(
            listener,
            control::Status::Tree(tree.clone()),
            held.ownership,
            &notifier,
            upgraded,
            tree.path(),
        );
        let status = self
            .answer(&held, &running, &tree, &notifier, &mut signals)
            .await;
        running.end();
        status
    }

    /// The new process of an upgrade, once ready: reports to the old process and waits for
    /// its commit; then writes its pid into the pid file and owns the shared files. `Err` with
    /// the exit status: the old one gave up, and this process must stop without taking over.
    pub(super) async fn take_over(
        &self,
        pidfile: &mut Pidfile,
        ownership: &Ownership,
    ) -> Result<(), u8> {
        let committed =
            ginkgo_api::spawn_blocking::<R, _, _>(|| upgrade::announce_ready(COMMIT_TIMEOUT))
                .await
                .map_err(|err| std::io::Error::other(err.to_string()))
                .and_then(|answer| answer);
        match committed {
            Ok(true) => {}
            Ok(false) => {
                tracing::error!(
                    "the old process gave up on this upgrade; stopping without taking over"
                );
                return Err(EXIT_FAILURE);
            }
            Err(err) => {
                tracing::error!("cannot report to the old process: {err}; stopping");
                return Err(EXIT_FAILURE);
            }
        }
        // Committed: the old process stops accepting now; this one serves and owns the
        // shared files. What fails from here on is this process's own failure.
        detach_stdin();
        if let Err(err) = pidfile.take_over() {
            tracing::error!("cannot write this process's pid into the pid file: {err}");
        }
        ownership.owns_files.store(true, Ordering::Release);
        Ok(())
    }

    /// Ready: starts answering the control socket (`listener`) and the systemd watchdog, and
    /// says so to the log, systemd, and the waiting `start` command.
    pub(super) fn announce(
        &self,
        listener: UnixListener<R>,
        status: control::Status,
        ownership: &Ownership,
        notifier: &Arc<Notifier>,
        upgraded: bool,
        what: &str,
    ) -> Running<R> {
        let (requests, incoming) = channel::unbounded();
        let control = ginkgo_api::spawn::<R, _>(control::serve(
            listener,
            status,
            self.config.clone(),
            requests,
            ownership.upgrading.clone(),
        ));
        let watchdog = notifier.watchdog_interval().map(|interval| {
            let notifier = notifier.clone();
            ginkgo_api::spawn::<R, _>(async move {
                loop {
                    notifier.send("WATCHDOG=1");
                    ginkgo_api::time::sleep::<R>(interval).await;
                }
            })
        });
        match self.upgrade_from {
            Some(old) => tracing::info!(
                pid = std::process::id(),
                old,
                service = what,
                "ready; took over from the old process"
            ),
            None => tracing::info!(pid = std::process::id(), service = what, "ready"),
        }
        // MAINPID names this process: after an upgrade systemd follows the new one.
        notifier.ready(&format!("{what} ready"));
        // The new process of an upgrade has reported already (and been committed).
        report(
            self.daemon && !upgraded,
            &format!("ready {}", std::process::id()),
        );
        Running {
            control,
            watchdog,
            incoming,
        }
    }

    /// Answers signals and control requests until the tree ends or is stopped, or an upgrade
    /// has handed over.
    ///
    /// An upgrade is awaited here, so a signal that comes meanwhile is answered once its
    /// outcome is known (within `upgrade_timeout`).
    async fn answer(
        &self,
        held: &Held<'_>,
        running: &Running<R>,
        tree: &ServiceHandle,
        notifier: &Notifier,
        signals: &mut Signals<R>,
    ) -> u8 {
        let incoming = &running.incoming;
        enum Event {
            Ended(State),
            Signal(Option<Signal>),
            Request(Request),
            Layer(u64),
        }
        let ended = tree.wait_until(|state| matches!(state, State::Stopped | State::Failed));
        let mut ended = std::pin::pin!(ended);
        let mut layer = self.config.layer_version();
        loop {
            let event = or(
                async { Event::Ended(ended.as_mut().await) },
                or(
                    async { Event::Signal(signals.recv().await) },
                    or(
                        async {
                            match incoming.recv().await {
                                Ok(request) => Event::Request(request),
                                Err(_) => std::future::pending().await,
                            }
                        },
                        async { Event::Layer(self.config.layer_changed(layer).await) },
                    ),
                ),
            )
            .await;
            match event {
                Event::Ended(state) => return tree_ended(tree, state, notifier),
                Event::Layer(version) => {
                    layer = version;
                    self.layer_changed(tree, notifier).await;
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
                Event::Signal(Some(Signal::Usr2)) => {
                    if held.ownership.upgrading.swap(true, Ordering::AcqRel) {
                        tracing::warn!("SIGUSR2: an upgrade is already in progress");
                        continue;
                    }
                    tracing::info!("SIGUSR2: upgrading");
                    if self
                        .upgrade(held, running, single_listeners())
                        .await
                        .is_ok()
                    {
                        return self.stop(tree, signals, notifier, true).await;
                    }
                }
                Event::Request(Request::Upgrade(reply, written)) => {
                    let outcome = self.upgrade(held, running, single_listeners()).await;
                    let handed_over = outcome.is_ok();
                    let _ = reply.send(outcome).await;
                    if handed_over {
                        // The client hears the outcome before this process exits.
                        let _ = ginkgo_api::time::timeout::<R, _>(
                            std::time::Duration::from_secs(5),
                            written.recv(),
                        )
                        .await;
                        return self.stop(tree, signals, notifier, true).await;
                    }
                }
                Event::Signal(Some(signal)) => {
                    tracing::info!(%signal, "stopping");
                    return self.stop(tree, signals, notifier, false).await;
                }
                Event::Request(Request::Stop) => {
                    tracing::info!("stop requested through the control socket");
                    return self.stop(tree, signals, notifier, false).await;
                }
                Event::Signal(None) => {
                    tracing::error!("the signal stream ended; stopping");
                    return self.stop(tree, signals, notifier, false).await;
                }
            }
        }
    }

    /// Starts the program file anew, hands it the listening sockets, the control socket and
    /// the pid file, and waits for it to be ready. Ok with its pid: this process then owns
    /// none of the shared files any more and stops. Err with why: the new process has exited
    /// (or was stopped), and this one goes on as before.
    pub(super) async fn upgrade(
        &self,
        held: &Held<'_>,
        running: &Running<R>,
        listeners: std::io::Result<Vec<(String, OwnedFd)>>,
    ) -> Result<u32, String> {
        let outcome = self.hand_over(held, listeners).await;
        match &outcome {
            Ok(pid) => {
                held.ownership.owns_files.store(false, Ordering::Release);
                handoff::set_keep_socket_files(true);
                // Accept nothing more; connections accepted just now get a moment to send
                // their first bytes, so that the stop finds them busy and lets them finish.
                handoff::hold_serving();
                running.control.abort();
                tracing::info!(
                    new = pid,
                    "upgraded: the new process is ready; stopping this one"
                );
                ginkgo_api::time::sleep::<R>(HANDOVER_GRACE).await;
            }
            Err(err) => tracing::error!("upgrade failed; this process goes on serving: {err}"),
        }
        held.ownership.upgrading.store(false, Ordering::Release);
        outcome
    }

    async fn hand_over(
        &self,
        held: &Held<'_>,
        listeners: std::io::Result<Vec<(String, OwnedFd)>>,
    ) -> Result<u32, String> {
        let exe = self
            .exe
            .clone()
            .ok_or("the program file is unknown (std::env::current_exe failed at start)")?;
        let duplicate = |what: &str, fd: std::io::Result<OwnedFd>| {
            fd.map_err(|err| format!("cannot duplicate the {what}: {err}"))
        };
        let handover = Handover {
            listeners: listeners
                .map_err(|err| format!("cannot duplicate the listening sockets: {err}"))?,
            control: Some(duplicate(
                "control socket",
                held.control_socket.try_clone(),
            )?),
            pidfile: Some(duplicate("pid file", held.pidfile.try_clone())?),
            // The new program reads the files itself: an upgrade picks up a changed config.
            config: None,
        };
        let mut args = vec![OsString::from(if self.daemon {
            super::daemon::DAEMON
        } else {
            "run"
        })];
        args.extend(self.forwarded.iter().cloned());
        args.push(OsString::from(format!("--{}", upgrade::UPGRADE_FROM)));
        args.push(OsString::from(std::process::id().to_string()));
        let limit = self.settings.get().upgrade_timeout.0;
        tracing::info!(program = %exe.display(), sockets = handover.listeners.len(), "upgrading: starting the new process");
        ginkgo_api::spawn_blocking::<R, _, _>(move || {
            // systemd's watchdog names this process; the new one, once the main process,
            // keeps it fed (it takes a watchdog without a pid as its own).
            let successor = Successor::start(&exe, &args, &["WATCHDOG_PID"], &handover)
                .map_err(|err| err.to_string())?;
            successor
                .wait_ready(limit)
                .map_err(|err| format!("the new process did not take over: {err}"))
        })
        .await
        .map_err(|err| format!("the upgrade task failed: {err}"))?
    }

    /// Stops the tree within `stop_timeout`; a second SIGINT exits at once. After an upgrade
    /// handed over, systemd is not told `STOPPING=1`: the service goes on, in the new process.
    pub(super) async fn stop(
        &self,
        tree: &ServiceHandle,
        signals: &mut Signals<R>,
        notifier: &Notifier,
        handed_over: bool,
    ) -> u8 {
        if !handed_over {
            notifier.stopping();
        }
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
    pub(super) async fn reload(
        &self,
        tree: &ServiceHandle,
        notifier: &Notifier,
    ) -> Result<String, String> {
        notifier.reloading();
        let outcome: Result<String, String> = async {
            let changed = self.config.reload().map_err(|err| {
                tracing::error!(error = %err, "{REJECTED}");
                format!("{REJECTED}:\n{err}")
            })?;
            tracing::info!(?changed, "configuration reloaded");
            if let Some(logs) = &self.logs
                && let Err(err) = logs.apply(&self.settings.get())
            {
                tracing::error!(%err, "log settings not applied");
            }
            reload_services(tree).await?;
            Ok(if changed.is_empty() {
                "reloaded; no setting changed".to_owned()
            } else {
                format!("reloaded; changed: {}", changed.join(", "))
            })
        }
        .await;
        // A server the reload restarted on another address serves another socket now.
        store_registered(notifier);
        // With Type=notify-reload, READY=1 ends `systemctl reload` in success whatever
        // happened: the status line (`systemctl status`) is where a rejection shows.
        notifier.ready(&match &outcome {
            Ok(_) => format!("{} ready", tree.path()),
            Err(err) => format!(
                "{} ready; the last reload failed: {}",
                tree.path(),
                one_line(err.trim_start_matches(REJECTED).trim_start_matches(':'))
            ),
        });
        outcome
    }

    /// A layer of the configuration (a key-value store's) changed and is in force already:
    /// the services' reload hooks, as on SIGHUP.
    pub(super) async fn layer_changed(&self, tree: &ServiceHandle, notifier: &Notifier) {
        notifier.reloading();
        tracing::info!("settings changed in a store; reloading the services");
        if let Err(err) = reload_services(tree).await {
            tracing::error!("reload failed: {err}");
        }
        store_registered(notifier);
        notifier.ready(&format!("{} ready", tree.path()));
    }

    pub(super) fn reopen_log(&self) {
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

/// The services' reload hooks, in start order.
async fn reload_services(tree: &ServiceHandle) -> Result<(), String> {
    tree.reload().await.map_err(|failure| {
        tracing::error!(%failure, "a service failed to reload");
        format!("configuration reloaded, but a service failed to reload: {failure}")
    })?;
    tracing::info!("services reloaded");
    Ok(())
}

/// Once the tree started: the sockets handed to this process that no service took. Those of an
/// upgrade are closed; those systemd passed by name are left for [`ListenFds`](crate::ListenFds).
pub(super) fn settle_untaken(upgraded: bool) -> Vec<String> {
    let untaken = handoff::take_untaken();
    let names = untaken.iter().map(|(path, _)| path.clone()).collect();
    if !upgraded {
        notify::give_back(untaken);
        return names;
    }
    for (path, socket) in untaken {
        drop(socket);
        tracing::info!(
            service = path,
            "closed a socket handed over that no service here serves"
        );
    }
    names
}

/// A socket systemd passed under a service's path, as it was when passed.
struct Passed {
    name: String,
    /// Device and inode: the same socket whichever descriptor holds it.
    identity: Option<(u64, u64)>,
    address: String,
}

impl Passed {
    fn of(name: &str, socket: &OwnedFd) -> Self {
        let address = match rustix::net::getsockname(socket) {
            Ok(addr) => match std::net::SocketAddr::try_from(addr.clone()) {
                Ok(inet) => inet.to_string(),
                Err(_) => rustix::net::SocketAddrUnix::try_from(addr)
                    .ok()
                    .and_then(|unix| {
                        unix.path()
                            .map(|path| format!("unix:{}", path.to_string_lossy()))
                    })
                    .unwrap_or_else(|| "(an address of another kind)".to_owned()),
            },
            Err(err) => format!("(no address: {err})"),
        };
        Self {
            name: name.to_owned(),
            identity: identity(socket),
            address,
        }
    }
}

fn identity(socket: &impl std::os::fd::AsFd) -> Option<(u64, u64)> {
    let stat = rustix::fs::fstat(socket).ok()?;
    Some((stat.st_dev, stat.st_ino))
}

/// Warns about each socket systemd passed that its server took and did not serve, because
/// the configuration says another address: nothing in this process accepts on it, and if a
/// socket unit holds it, connections to it wait (the unit's `ListenStream=` and the
/// configuration disagree).
fn report_unserved(passed: &[Passed], untaken: &[String]) {
    if passed.is_empty() {
        return;
    }
    let served: Vec<_> = handoff::registered()
        .unwrap_or_default()
        .iter()
        .filter_map(|(_, socket)| identity(socket))
        .collect();
    for socket in passed {
        if untaken.contains(&socket.name) || socket.identity.is_some_and(|id| served.contains(&id))
        {
            continue;
        }
        tracing::warn!(
            service = socket.name,
            passed = %socket.address,
            "systemd passed this server a socket it does not serve, as its configuration names \
             another address: connections to the passed one are not accepted here (make the \
             socket unit's ListenStream= and the configuration agree)"
        );
    }
}

/// Keeps the listening sockets the tree's servers serve now in systemd's file descriptor
/// store, if the notifier does (they are duplicated only then).
fn store_registered(notifier: &Notifier) {
    if !notifier.keeps_fd_store() {
        return;
    }
    match handoff::registered() {
        Ok(listeners) => notifier.store_listeners(&listeners),
        Err(err) => tracing::warn!(
            %err,
            "cannot duplicate the listening sockets for systemd's file descriptor store"
        ),
    }
}

/// The signals a serving process answers: stop, reload, reopen the log, upgrade (a worker
/// listens for SIGUSR2 too, to ignore it: its default action would end the worker).
pub(super) const ANSWERED: [Signal; 5] = [
    Signal::Term,
    Signal::Int,
    Signal::Hup,
    Signal::Usr1,
    Signal::Usr2,
];

/// How a start that SIGTERM or SIGINT could interrupt ended.
pub(super) enum Started {
    /// The tree is ready.
    Ready,
    /// It failed to start, for this reason.
    Failed(String),
    /// A stop signal came first: the start was cancelled and the tree stopped.
    Stopped(Signal),
}

/// Starts `tree` while answering SIGTERM and SIGINT: a stop asked for during a slow start
/// cancels it (a Kubernetes pod deleted while starting, an upgrade's late new process) rather
/// than waiting for it. Other signals that come meanwhile are raised again once the start is
/// over, for the serving loop to answer.
pub(super) async fn start_answering_stop<R: Runtime>(
    tree: &ServiceHandle,
    signals: &mut Signals<R>,
) -> Started {
    let mut starting = ginkgo_api::spawn::<R, _>({
        let tree = tree.clone();
        async move { tree.start().await }
    });
    let mut deferred = Vec::new();
    let outcome = loop {
        enum Next {
            Done(Result<Result<(), ginkgo_api::service::Failure>, ginkgo_api::JoinError>),
            Signal(Option<Signal>),
        }
        let next = or(async { Next::Done((&mut starting).await) }, async {
            Next::Signal(signals.recv().await)
        })
        .await;
        match next {
            Next::Done(Ok(Ok(()))) => break Started::Ready,
            Next::Done(Ok(Err(failure))) => break Started::Failed(failure.to_string()),
            // The start contains the services' panics; this is the task itself lost.
            Next::Done(Err(err)) => break Started::Failed(format!("the start task ended: {err}")),
            Next::Signal(Some(signal @ (Signal::Term | Signal::Int))) => {
                tracing::info!(%signal, "stopping while starting: the start is cancelled");
                let report = tree.stop().await;
                if !report.is_clean() {
                    tracing::warn!(%report, "stopped while starting, not cleanly");
                }
                let _ = starting.await;
                break Started::Stopped(signal);
            }
            Next::Signal(Some(signal)) => deferred.push(signal),
            Next::Signal(None) => {
                let outcome = (&mut starting).await;
                break match outcome {
                    Ok(Ok(())) => Started::Ready,
                    Ok(Err(failure)) => Started::Failed(failure.to_string()),
                    Err(err) => Started::Failed(format!("the start task ended: {err}")),
                };
            }
        }
    };
    for signal in deferred {
        if let Err(err) = signal.raise() {
            tracing::warn!(%signal, %err, "could not raise a signal that came while starting");
        }
    }
    outcome
}

/// The exit status once the tree ended by itself in `state` (failed: 1, said to the log and
/// systemd; stopped: 0).
pub(super) fn tree_ended(tree: &ServiceHandle, state: State, notifier: &Notifier) -> u8 {
    if state == State::Failed {
        let failure = tree
            .last_failure()
            .map(|f| f.to_string())
            .unwrap_or_default();
        tracing::error!(%failure, "the service tree failed");
        notifier.send(&format!("STATUS=failed: {failure}"));
        return EXIT_FAILURE;
    }
    tracing::info!("the service tree stopped");
    0
}

/// What an upgrade hands on, besides the listening sockets.
pub(super) struct Held<'a> {
    /// This process is the new one of an upgrade.
    pub(super) upgraded: bool,
    control_socket: OwnedFd,
    pub(super) ownership: &'a Ownership,
    /// The pid file (with its lock).
    pidfile: OwnedFd,
}

/// The sockets a single process hands on in an upgrade: those its servers registered.
fn single_listeners() -> std::io::Result<Vec<(String, OwnedFd)>> {
    handoff::registered()
}

/// What runs beside the serving loop once it is ready.
pub(super) struct Running<R: Runtime> {
    /// The control socket's accept loop: stopped at a handover, so that requests from then on
    /// reach the new process.
    control: ginkgo_api::JoinHandle<(), R>,
    watchdog: Option<ginkgo_api::JoinHandle<(), R>>,
    /// The requests the control socket passes on.
    pub(super) incoming: channel::Receiver<Request>,
}

impl<R: Runtime> Running<R> {
    /// Stops the control socket's loop and the watchdog.
    pub(super) fn end(self) {
        self.control.abort();
        if let Some(watchdog) = self.watchdog {
            watchdog.abort();
        }
    }
}

/// What a reload says of a configuration it refused.
const REJECTED: &str = "configuration rejected; the old one stays in force";

/// `text` on one line of at most 200 characters, as a notify message's `STATUS=` needs.
fn one_line(text: &str) -> String {
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match line.char_indices().nth(200) {
        Some((end, _)) => format!("{}...", &line[..end]),
        None => line,
    }
}
