//! Prefork workers: with `workers` above 1 (or `auto`), the process that serves becomes a
//! master that binds the listeners and supervises worker processes, each running the whole
//! service tree on those listeners.
//!
//! - **Binding:** the master starts its own tree once with serving held (nothing is accepted),
//!   so every listener the tree declares is bound, as root if it starts as root, and a tree
//!   that cannot start fails here, before any worker runs. It keeps a duplicate of each
//!   registered socket and stops that tree. (So the services' `start` and `stop` hooks run once
//!   in the master too.)
//! - **Workers** are the program file started anew with `--worker N`, handed the sockets over
//!   `SCM_RIGHTS` on a socket pair that is their standard input, as in an upgrade. Each adopts
//!   the socket of its service path, so they all accept on one shared listening socket (one
//!   accept queue; the kernel wakes one waiting worker per connection). A worker reports
//!   "ready PID" on the pair and then answers its master's requests there (`reload`, `status`,
//!   `retire`); when the pair closes (the master is gone, even by SIGKILL) it stops. Workers
//!   drop privileges (`user`, `group`, `chroot`) after their tree started; the master keeps
//!   them, to start replacements from the program file. systemd talks to the master only
//!   (`NOTIFY_SOCKET` and the socket activation variables are not passed on).
//! - **Supervision:** a worker that exits is started again, at once the first time and then
//!   after a doubling delay (100 ms up to 5 s), on the configuration the master has in force
//!   (the config file's text as it last accepted it, handed over with the sockets, so a file a
//!   rejected reload left broken does not stop a replacement), at most `worker_max_restarts` times within
//!   `worker_restart_window`; one more and the master stops every worker and exits 1, naming
//!   the worker and how it exited.
//! - **Reload** (SIGHUP or `reload`): the master loads the configuration first; only if it is
//!   valid does it ask each worker to reload, and it reports each worker's answer.
//! - **Stop** (SIGTERM, SIGINT, `stop`): every worker gets SIGTERM and stops gracefully within
//!   `stop_timeout`; what is still running after it is killed.
//! - **Upgrade:** the master hands its sockets, the control socket and the pid file to a new
//!   master, which starts its own workers; once they are all ready it commits, and the old
//!   master retires its workers (they stop accepting, drain within `stop_timeout` and exit).
//!   New workers serve as soon as they are ready, alongside the old ones, so no connection is
//!   refused; if the new master gives up, its workers drain and stop, and the old ones go on.

use std::ffi::OsString;
use std::io::{self, BufRead, BufReader, Write};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Child, ExitStatus};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use super::control::{self, Request};
use super::notify::Notifier;
use super::pidfile::Pidfile;
use super::privileges;
use super::serve::{
    ANSWERED, HANDOVER_GRACE, Held, Serving, Started, detach_stdin, report, settle_untaken,
    start_answering_stop, tree_ended,
};
use super::upgrade::{self, Handover, Successor};
use crate::{EXIT_FAILURE, one_line};
use ginkgo_api::Runtime;
use ginkgo_api::future::or;
use ginkgo_api::net::{UnixListener, handoff};
use ginkgo_api::service::{ServiceHandle, State};
use ginkgo_api::signal::{Signal, Signals};
use ginkgo_api::sync::channel;

/// The hidden option that makes a process a worker, with its number (from 1).
pub(super) const WORKER: &str = "worker";

/// Environment variables a worker does not inherit: systemd talks to the master, and the
/// sockets it activated are the master's to hand on.
const MASTER_ONLY_ENV: [&str; 6] = [
    "NOTIFY_SOCKET",
    "WATCHDOG_USEC",
    "WATCHDOG_PID",
    "LISTEN_FDS",
    "LISTEN_PID",
    "LISTEN_FDNAMES",
];

/// How long a worker waits for its master's commit after "ready" (the master answers at once).
const COMMIT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long the master waits for a worker's answer to `status` (`reload` may take the
/// services' reload hooks' time: `RELOAD_ANSWER`).
const STATUS_ANSWER: Duration = Duration::from_secs(5);
const RELOAD_ANSWER: Duration = Duration::from_secs(60);

/// After `stop_timeout`, how long killed workers get to be reaped.
const KILL_GRACE: Duration = Duration::from_secs(2);

/// The delay before a worker's `n`th restart within the window (from 1): none for the first,
/// then 100 ms doubling up to 5 s.
fn backoff(n: usize) -> Duration {
    match n {
        0 | 1 => Duration::ZERO,
        n => Duration::from_millis(100)
            .saturating_mul(1 << (n - 2).min(6))
            .min(Duration::from_secs(5)),
    }
}

/// What a master asks of a worker, one line on their pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Order {
    /// Reload the configuration and the tree; the answer is one line, `ok ...` or `error ...`.
    Reload,
    /// The tree, one line per service, then an empty line.
    Status,
    /// Stop accepting, drain and exit (the master handed over to a new one); no answer.
    Retire,
}

impl Order {
    fn parse(line: &str) -> Option<Self> {
        match line.trim() {
            "reload" => Some(Order::Reload),
            "status" => Some(Order::Status),
            "retire" => Some(Order::Retire),
            _ => None,
        }
    }

    fn line(self) -> &'static [u8] {
        match self {
            Order::Reload => b"reload\n",
            Order::Status => b"status\n",
            Order::Retire => b"retire\n",
        }
    }
}

/// An order with where its answer goes; `None`: the master is gone.
type Asked = Option<(Order, channel::Sender<String>)>;

/// In a worker: reads the master's orders from `pair`, passes each to the serving loop and
/// writes back its answer. Passes `None` once the pair closes.
fn read_orders(pair: UnixStream, orders: &channel::Sender<Asked>) {
    let mut writer = match pair.try_clone() {
        Ok(writer) => writer,
        Err(_) => {
            let _ = orders.send_blocking(None);
            return;
        }
    };
    let mut reader = BufReader::new(pair);
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => {
                let _ = orders.send_blocking(None);
                return;
            }
            Ok(_) => {}
        }
        let Some(order) = Order::parse(&line) else {
            let answer = format!("error unknown order {:?}\n", line.trim());
            if writer.write_all(answer.as_bytes()).is_err() {
                return;
            }
            continue;
        };
        let (answer, answered) = channel::bounded(1);
        if orders.send_blocking(Some((order, answer))).is_err() {
            return;
        }
        // Retire has no answer: the channel closes.
        if let Ok(answer) = answered.recv_blocking()
            && writer.write_all(answer.as_bytes()).is_err()
        {
            return;
        }
    }
}

impl<R: Runtime> Serving<'_, R> {
    /// A worker: adopts the sockets its master handed over, starts the tree, drops privileges,
    /// reports ready, and then serves until told (or signalled) to stop, or its master is gone.
    pub(super) async fn serve_worker(
        &self,
        root: impl ginkgo_api::service::Service,
        privileges: Option<privileges::Resolved>,
        number: u32,
        handover: upgrade::Handover,
    ) -> u8 {
        let fail = |message: String| {
            tracing::error!(worker = number, "{message}");
            report(true, &format!("error: {message}"));
            EXIT_FAILURE
        };
        let pair = match upgrade::pair_on_stdin() {
            Ok(pair) => pair,
            Err(err) => return fail(format!("cannot talk to the master: {err}")),
        };
        // The master left NOTIFY_SOCKET out: this one tells systemd nothing.
        let notifier = match Notifier::from_env() {
            Ok(notifier) => notifier,
            Err(err) => return fail(format!("NOTIFY_SOCKET is unusable: {err}")),
        };
        // SIGUSR2 included, to ignore it: an upgrade is the master's (`systemctl kill`, say,
        // sends to every process of the unit).
        let mut signals = match Signals::new(&ANSWERED) {
            Ok(signals) => signals,
            Err(err) => return fail(format!("cannot listen for signals: {err}")),
        };
        // The sockets and their files are the master's.
        handoff::set_keep_socket_files(true);
        handoff::inherit(handover.listeners);
        let tree = ginkgo_api::service::tree::<R>(root);
        match start_answering_stop(&tree, &mut signals).await {
            Started::Ready => {}
            Started::Failed(failure) => return fail(format!("start failed: {failure}")),
            Started::Stopped(signal) => {
                tracing::info!(worker = number, %signal, "stopped while starting");
                report(true, &format!("error: stopped by {signal} while starting"));
                return 0;
            }
        }
        if let Some(privileges) = &privileges
            && let Err(err) = privileges.apply()
        {
            tree.stop().await;
            return fail(format!("cannot drop privileges: {err}"));
        }
        for (path, socket) in handoff::take_untaken() {
            drop(socket);
            tracing::info!(
                worker = number,
                service = path,
                "closed a socket handed over that no service here serves"
            );
        }
        let announced = ginkgo_api::spawn_blocking::<R, _, _>(move || {
            upgrade::announce_ready_on(&pair, COMMIT_TIMEOUT).map(|ready| (ready, pair))
        })
        .await
        .map_err(|err| io::Error::other(err.to_string()))
        .and_then(|answer| answer);
        let pair = match announced {
            Ok((true, pair)) => pair,
            Ok((false, _)) | Err(_) => {
                tracing::error!(worker = number, "the master is gone; stopping");
                tree.stop().await;
                return EXIT_FAILURE;
            }
        };
        detach_stdin();
        tracing::info!(
            worker = number,
            pid = std::process::id(),
            service = tree.path(),
            "worker ready"
        );
        let (orders, incoming) = channel::unbounded();
        // A thread, not a task: the pair is a blocking socket, and this works alike on every
        // backend. It ends with the process.
        std::thread::spawn(move || read_orders(pair, &orders));
        self.answer_master(number, &tree, &notifier, &mut signals, &incoming)
            .await
    }

    /// A worker's loop: signals and its master's orders, until the tree ends or stops.
    async fn answer_master(
        &self,
        number: u32,
        tree: &ServiceHandle,
        notifier: &Notifier,
        signals: &mut Signals<R>,
        incoming: &channel::Receiver<Asked>,
    ) -> u8 {
        enum Event {
            Ended(State),
            Signal(Option<Signal>),
            Order(Asked),
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
                        async { Event::Order(incoming.recv().await.unwrap_or(None)) },
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
                        tracing::error!(worker = number, "reload failed: {err}");
                    }
                }
                Event::Signal(Some(Signal::Usr1)) => self.reopen_log(),
                Event::Signal(Some(Signal::Usr2)) => {
                    tracing::info!(
                        worker = number,
                        "SIGUSR2 ignored: upgrades are the master's (send it to the master's pid)"
                    );
                }
                Event::Signal(Some(signal)) => {
                    tracing::info!(worker = number, %signal, "stopping");
                    return self.stop(tree, signals, notifier, false).await;
                }
                Event::Signal(None) => {
                    tracing::error!(worker = number, "the signal stream ended; stopping");
                    return self.stop(tree, signals, notifier, false).await;
                }
                Event::Order(Some((Order::Reload, answer))) => {
                    let line = match self.reload(tree, notifier).await {
                        Ok(text) => format!("ok {}\n", one_line(&text)),
                        Err(text) => format!("error {}\n", one_line(&text)),
                    };
                    let _ = answer.send(line).await;
                }
                Event::Order(Some((Order::Status, answer))) => {
                    let text = control::render_tree(&tree.snapshot(), SystemTime::now(), 1);
                    let _ = answer.send(format!("{text}\n")).await;
                }
                Event::Order(Some((Order::Retire, _))) => {
                    tracing::info!(worker = number, "retiring: the master handed over");
                    // As the old process of an upgrade: accept nothing more, let connections
                    // accepted just now send their first bytes, then drain.
                    handoff::hold_serving();
                    ginkgo_api::time::sleep::<R>(HANDOVER_GRACE).await;
                    return self.stop(tree, signals, notifier, true).await;
                }
                Event::Order(None) => {
                    tracing::warn!(worker = number, "the master is gone; stopping");
                    return self.stop(tree, signals, notifier, false).await;
                }
            }
        }
    }

    /// The master: binds the listeners, starts the workers, and supervises them until it is
    /// stopped, the restart intensity is exceeded, or it hands over in an upgrade.
    pub(super) async fn serve_master(
        &self,
        root: impl ginkgo_api::service::Service,
        listener: UnixListener<R>,
        held: Held<'_>,
        pidfile: &mut Pidfile,
        notifier: Arc<Notifier>,
        signals: &mut Signals<R>,
    ) -> u8 {
        let fail = |message: String| {
            tracing::error!("{message}");
            report(self.reports(), &format!("error: {message}"));
            EXIT_FAILURE
        };
        let Some(exe) = self.exe.clone() else {
            return fail(
                "the program file is unknown (std::env::current_exe failed at start), so no worker can be started"
                    .to_owned(),
            );
        };
        let (path, sockets) = match self.bind_for_workers(root).await {
            Ok(bound) => bound,
            Err(err) => return fail(err),
        };
        let settings = self.settings.get();
        let count = settings.workers.count();
        let mut args = vec![OsString::from(if self.daemon {
            super::daemon::DAEMON
        } else {
            "run"
        })];
        args.extend(self.forwarded.iter().cloned());
        let (events, incoming_events) = channel::unbounded();
        let master = Master {
            exe,
            args,
            sockets: Arc::new(sockets),
            pool: Arc::new(Pool::new(count)),
            events,
            start_limit: settings.upgrade_timeout.0,
            stopping: std::sync::atomic::AtomicBool::new(false),
            config: self.config.clone(),
        };
        tracing::info!(
            workers = count,
            sockets = master.sockets.len(),
            "starting the workers"
        );
        if let Err(err) = master.start_all::<R>(count).await {
            master
                .stop_all::<R>(
                    self.settings.get().stop_timeout.0,
                    &incoming_events,
                    false,
                    signals,
                )
                .await;
            return fail(err);
        }
        let upgraded = held.upgraded;
        if upgraded && let Err(status) = self.take_over(pidfile, held.ownership).await {
            master
                .stop_all::<R>(
                    self.settings.get().stop_timeout.0,
                    &incoming_events,
                    false,
                    signals,
                )
                .await;
            return status;
        }
        notifier.store_listeners(&master.sockets);
        let pool = master.pool.clone();
        let running = self.announce(
            listener,
            control::Status::Report(Arc::new(move || pool.render())),
            held.ownership,
            &notifier,
            upgraded,
            &format!("{path} in {count} workers"),
        );
        let status = self
            .supervise(
                &held,
                &running,
                &master,
                &notifier,
                signals,
                &incoming_events,
            )
            .await;
        running.end();
        if held.ownership.owns_files.load(Ordering::Acquire) {
            master.remove_socket_files();
        }
        status
    }

    /// Starts the tree with serving held, so that its servers bind (or adopt what an upgrade
    /// handed over), and keeps their sockets; then stops it. The tree's root path, and the
    /// sockets by service path.
    async fn bind_for_workers(
        &self,
        root: impl ginkgo_api::service::Service,
    ) -> Result<(String, Vec<(String, OwnedFd)>), String> {
        // Nothing is accepted here, and the socket files stay for the workers.
        handoff::set_keep_socket_files(true);
        handoff::hold_serving();
        let tree = ginkgo_api::service::tree::<R>(root);
        if let Err(failure) = tree.start().await {
            eprintln!("{}: {failure}", self.program);
            return Err(format!("start failed: {failure}"));
        }
        settle_untaken(self.upgrade_from.is_some());
        let sockets = handoff::registered()
            .map_err(|err| format!("cannot duplicate the listening sockets: {err}"));
        let limit = self.settings.get().stop_timeout.0;
        match ginkgo_api::time::timeout::<R, _>(limit, tree.stop()).await {
            Ok(report) if report.is_clean() => {}
            Ok(report) => tracing::warn!(%report, "the master's tree stopped, not cleanly"),
            Err(_) => tracing::warn!(?limit, "the master's tree did not stop within stop_timeout"),
        }
        Ok((tree.path().to_owned(), sockets?))
    }

    /// The master's loop: worker exits and restarts, signals, control requests.
    async fn supervise(
        &self,
        held: &Held<'_>,
        running: &super::serve::Running<R>,
        master: &Master,
        notifier: &Notifier,
        signals: &mut Signals<R>,
        events: &channel::Receiver<Event>,
    ) -> u8 {
        enum Next {
            Worker(Event),
            Signal(Option<Signal>),
            Request(Request),
        }
        loop {
            let next = or(
                async {
                    match events.recv().await {
                        Ok(event) => Next::Worker(event),
                        Err(_) => std::future::pending().await,
                    }
                },
                or(async { Next::Signal(signals.recv().await) }, async {
                    match running.incoming.recv().await {
                        Ok(request) => Next::Request(request),
                        Err(_) => std::future::pending().await,
                    }
                }),
            )
            .await;
            let stop_timeout = self.settings.get().stop_timeout.0;
            match next {
                Next::Worker(event) => {
                    if let Err(failure) = self.on_worker_event(master, event) {
                        tracing::error!("{failure}; stopping");
                        notifier.send(&format!("STATUS=failed: {failure}"));
                        notifier.stopping();
                        master
                            .stop_all::<R>(stop_timeout, events, false, signals)
                            .await;
                        return EXIT_FAILURE;
                    }
                }
                Next::Signal(Some(Signal::Hup)) => {
                    if let Err(err) = self.reload_workers(master, notifier).await {
                        tracing::error!("reload failed: {err}");
                    }
                }
                Next::Request(Request::Reload(reply)) => {
                    let _ = reply
                        .send(self.reload_workers(master, notifier).await)
                        .await;
                }
                Next::Signal(Some(Signal::Usr1)) => {
                    self.reopen_log();
                    master.signal_all(rustix::process::Signal::USR1);
                }
                Next::Signal(Some(Signal::Usr2)) => {
                    if held.ownership.upgrading.swap(true, Ordering::AcqRel) {
                        tracing::warn!("SIGUSR2: an upgrade is already in progress");
                        continue;
                    }
                    tracing::info!("SIGUSR2: upgrading");
                    if self
                        .upgrade(held, running, master.duplicate_sockets())
                        .await
                        .is_ok()
                    {
                        return master
                            .stop_all::<R>(stop_timeout, events, true, signals)
                            .await;
                    }
                }
                Next::Request(Request::Upgrade(reply, written)) => {
                    let outcome = self
                        .upgrade(held, running, master.duplicate_sockets())
                        .await;
                    let handed_over = outcome.is_ok();
                    let _ = reply.send(outcome).await;
                    if handed_over {
                        let _ = ginkgo_api::time::timeout::<R, _>(
                            Duration::from_secs(5),
                            written.recv(),
                        )
                        .await;
                        return master
                            .stop_all::<R>(stop_timeout, events, true, signals)
                            .await;
                    }
                }
                Next::Signal(Some(signal)) => {
                    tracing::info!(%signal, "stopping the workers");
                    notifier.stopping();
                    return master
                        .stop_all::<R>(stop_timeout, events, false, signals)
                        .await;
                }
                Next::Request(Request::Stop) => {
                    tracing::info!(
                        "stop requested through the control socket; stopping the workers"
                    );
                    notifier.stopping();
                    return master
                        .stop_all::<R>(stop_timeout, events, false, signals)
                        .await;
                }
                Next::Signal(None) => {
                    tracing::error!("the signal stream ended; stopping the workers");
                    notifier.stopping();
                    return master
                        .stop_all::<R>(stop_timeout, events, false, signals)
                        .await;
                }
            }
        }
    }

    /// A worker exited, was started again, or is due to be: supervision. `Err` names why the
    /// master must stop (the restart intensity is exceeded).
    fn on_worker_event(&self, master: &Master, event: Event) -> Result<(), String> {
        let settings = self.settings.get();
        let (number, why) = match event {
            Event::Exited {
                number,
                generation,
                status,
            } => {
                let Some(pid) = master.pool.exited(number, generation) else {
                    return Ok(());
                };
                (
                    number,
                    format!("worker {number} (pid {pid}) {}", describe(&status)),
                )
            }
            Event::Started { number, outcome } => match outcome {
                Ok((child, pair)) => {
                    let pid = child.id();
                    master.adopt(number, child, pair)?;
                    tracing::info!(worker = number, pid, "worker replaced");
                    return Ok(());
                }
                Err(err) => (
                    number,
                    format!("worker {number} did not start again: {err}"),
                ),
            },
            Event::Restart(number) => {
                master.start_one::<R>(number);
                return Ok(());
            }
        };
        let window = settings.worker_restart_window.0;
        let max = settings.worker_max_restarts;
        let recent = master.pool.record_exit(number, window);
        if recent > usize::try_from(max).unwrap_or(usize::MAX) {
            return Err(format!(
                "{why}; that is {recent} exits within worker_restart_window {window:?}, more than worker_max_restarts {max}"
            ));
        }
        let delay = backoff(recent);
        tracing::warn!(worker = number, ?delay, "{why}; starting it again");
        let events = master.events.clone();
        drop(ginkgo_api::spawn::<R, _>(async move {
            ginkgo_api::time::sleep::<R>(delay).await;
            let _ = events.send(Event::Restart(number)).await;
        }));
        Ok(())
    }

    /// SIGHUP or `reload` with workers: the master loads the configuration first, and only a
    /// valid one reaches the workers; the answer has one line per worker.
    async fn reload_workers(&self, master: &Master, notifier: &Notifier) -> Result<String, String> {
        notifier.reloading();
        let outcome = async {
            let before = self.settings.get().workers;
            let changed = self.config.reload().map_err(|err| {
                tracing::error!(error = %err, "configuration rejected; the old one stays in force, no worker was asked to reload");
                format!("configuration rejected; the old one stays in force and no worker was asked to reload:\n{err}")
            })?;
            tracing::info!(?changed, "configuration reloaded; reloading the workers");
            if let Some(logs) = &self.logs
                && let Err(err) = logs.apply(&self.settings.get())
            {
                tracing::error!(%err, "log settings not applied");
            }
            if self.settings.get().workers != before {
                tracing::warn!("a change of workers takes effect at the next start or upgrade");
            }
            let pool = master.pool.clone();
            let answers = ginkgo_api::spawn_blocking::<R, _, _>(move || pool.reload_all())
                .await
                .map_err(|err| format!("the reload task failed: {err}"))?;
            let all_ok = answers.iter().all(|(ok, _)| *ok);
            let mut text = if changed.is_empty() {
                "reloaded; no setting changed".to_owned()
            } else {
                format!("reloaded; changed: {}", changed.join(", "))
            };
            for (_, line) in &answers {
                text.push('\n');
                text.push_str(line);
            }
            if all_ok {
                tracing::info!("workers reloaded");
                Ok(text)
            } else {
                tracing::error!("a worker failed to reload: {text}");
                Err(format!("configuration reloaded, but not by every worker: {text}"))
            }
        }
        .await;
        notifier.ready("workers ready");
        outcome
    }
}

/// How a worker exited, for the log.
fn describe(status: &io::Result<ExitStatus>) -> String {
    use std::os::unix::process::ExitStatusExt;
    match status {
        Ok(status) => match (status.code(), status.signal()) {
            (Some(code), _) => format!("exited with status {code}"),
            (None, Some(signal)) => format!("was killed by {}", signal_name(signal)),
            (None, None) => format!("ended ({status})"),
        },
        Err(err) => format!("could not be waited for: {err}"),
    }
}

/// The name of a signal that ends processes, or its number.
fn signal_name(number: i32) -> String {
    use rustix::process::Signal as S;
    // By the platform's numbers (SIGBUS and SIGUSR1, say, differ between Linux and the BSDs).
    let names = [
        (S::HUP, "SIGHUP"),
        (S::INT, "SIGINT"),
        (S::QUIT, "SIGQUIT"),
        (S::ILL, "SIGILL"),
        (S::ABORT, "SIGABRT"),
        (S::BUS, "SIGBUS"),
        (S::FPE, "SIGFPE"),
        (S::KILL, "SIGKILL"),
        (S::USR1, "SIGUSR1"),
        (S::SEGV, "SIGSEGV"),
        (S::USR2, "SIGUSR2"),
        (S::PIPE, "SIGPIPE"),
        (S::ALARM, "SIGALRM"),
        (S::TERM, "SIGTERM"),
    ];
    names
        .iter()
        .find(|(signal, _)| signal.as_raw() == number)
        .map_or_else(
            || format!("signal {number}"),
            |(_, name)| (*name).to_owned(),
        )
}

/// Duplicates of `sockets`, by service path.
fn duplicate(sockets: &[(String, OwnedFd)]) -> io::Result<Vec<(String, OwnedFd)>> {
    sockets
        .iter()
        .map(|(path, fd)| Ok((path.clone(), fd.try_clone()?)))
        .collect()
}

/// What the master hears about its workers.
enum Event {
    /// A worker process exited (its waiting thread reaped it).
    Exited {
        number: u32,
        generation: u64,
        status: io::Result<ExitStatus>,
    },
    /// A replacement worker started (ready) or failed to.
    Started {
        number: u32,
        outcome: Result<(Child, UnixStream), String>,
    },
    /// Time to start a replacement.
    Restart(u32),
}

/// The master's side: what it needs to start, supervise and stop workers.
struct Master {
    exe: PathBuf,
    /// The command and global options a worker is started with (before `--worker N`).
    args: Vec<OsString>,
    /// The listening sockets, by service path, handed to every worker.
    sockets: Arc<Vec<(String, OwnedFd)>>,
    pool: Arc<Pool>,
    events: channel::Sender<Event>,
    /// How long a worker may take to be ready (`upgrade_timeout`).
    start_limit: Duration,
    /// Set once the master stops: nothing is started any more.
    stopping: std::sync::atomic::AtomicBool,
    /// The master's configuration: each worker starts on the file text it has in force.
    config: ginkgo_config::Config,
}

impl Master {
    /// Starts worker `number` and waits until it is ready (blocking).
    fn start_blocking(
        exe: &std::path::Path,
        args: &[OsString],
        sockets: &[(String, OwnedFd)],
        config: Option<Arc<str>>,
        number: u32,
        limit: Duration,
    ) -> Result<(Child, UnixStream), String> {
        let listeners = duplicate(sockets)
            .map_err(|err| format!("cannot duplicate the listening sockets: {err}"))?;
        let handover = Handover {
            listeners,
            control: None,
            pidfile: None,
            config,
        };
        let mut args = args.to_vec();
        args.push(OsString::from(format!("--{WORKER}")));
        args.push(OsString::from(number.to_string()));
        let successor = Successor::start(exe, &args, &MASTER_ONLY_ENV, &handover)
            .map_err(|err| err.to_string())?;
        successor.wait_ready_kept(limit)
    }

    /// Starts the first `count` workers side by side and waits until all are ready, or one
    /// failed (then says which, and why; the others are the caller's to stop).
    async fn start_all<R: Runtime>(&self, count: u32) -> Result<(), String> {
        let starting: Vec<_> = (1..=count)
            .map(|number| {
                let (exe, args, sockets) =
                    (self.exe.clone(), self.args.clone(), self.sockets.clone());
                let (config, limit) = (self.config.file_text(), self.start_limit);
                (
                    number,
                    ginkgo_api::spawn_blocking::<R, _, _>(move || {
                        Self::start_blocking(&exe, &args, &sockets, config, number, limit)
                    }),
                )
            })
            .collect();
        let mut first_error = None;
        for (number, started) in starting {
            let outcome = started
                .await
                .map_err(|err| format!("the start task failed: {err}"))
                .and_then(|outcome| outcome);
            match outcome.and_then(|(child, pair)| self.adopt(number, child, pair)) {
                Ok(()) => {}
                Err(err) => {
                    first_error.get_or_insert(format!("worker {number} did not start: {err}"));
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Starts a replacement for worker `number` in the background; the outcome comes back as
    /// [`Event::Started`].
    fn start_one<R: Runtime>(&self, number: u32) {
        if self.stopping.load(Ordering::Acquire) {
            return;
        }
        self.pool.set_state(number, "starting");
        let (exe, args, sockets) = (self.exe.clone(), self.args.clone(), self.sockets.clone());
        let (config, limit) = (self.config.file_text(), self.start_limit);
        let events = self.events.clone();
        drop(ginkgo_api::spawn_blocking::<R, _, _>(move || {
            let outcome = Self::start_blocking(&exe, &args, &sockets, config, number, limit);
            let _ = events.send_blocking(Event::Started { number, outcome });
        }));
    }

    /// Takes a ready worker into the pool, with a thread that reaps it and reports its exit.
    fn adopt(&self, number: u32, mut child: Child, pair: UnixStream) -> Result<(), String> {
        let pid = child.id();
        let pidfd = i32::try_from(pid)
            .ok()
            .and_then(rustix::process::Pid::from_raw)
            .ok_or_else(|| format!("bad pid {pid}"))
            .and_then(|raw| {
                rustix::process::pidfd_open(raw, rustix::process::PidfdFlags::empty())
                    .map_err(|err| format!("pidfd_open({pid}): {err}"))
            });
        let pidfd = match pidfd {
            Ok(pidfd) => pidfd,
            Err(err) => {
                upgrade::stop(&mut child);
                return Err(err);
            }
        };
        let generation = self.pool.adopt(number, pid, pidfd, pair);
        let events = self.events.clone();
        std::thread::spawn(move || {
            let status = child.wait();
            let _ = events.send_blocking(Event::Exited {
                number,
                generation,
                status,
            });
        });
        if self.stopping.load(Ordering::Acquire) {
            // Started while the master stops: it stops too.
            self.pool.signal(number, rustix::process::Signal::TERM);
        }
        Ok(())
    }

    /// Duplicates of the listening sockets, for an upgrade.
    fn duplicate_sockets(&self) -> io::Result<Vec<(String, OwnedFd)>> {
        duplicate(&self.sockets)
    }

    fn signal_all(&self, signal: rustix::process::Signal) {
        for number in self.pool.running() {
            self.pool.signal(number, signal);
        }
    }

    /// Stops every worker: SIGTERM (or, once the master handed over, the order to retire),
    /// then waits for them within `limit`; kills those still running. A second SIGINT kills
    /// them at once. The exit status of the master.
    async fn stop_all<R: Runtime>(
        &self,
        limit: Duration,
        events: &channel::Receiver<Event>,
        retire: bool,
        signals: &mut Signals<R>,
    ) -> u8 {
        self.stopping.store(true, Ordering::Release);
        for number in self.pool.running() {
            if retire {
                self.pool.order(number, Order::Retire);
            } else {
                self.pool.signal(number, rustix::process::Signal::TERM);
            }
            self.pool.set_state(number, "stopping");
        }
        let deadline = Instant::now() + limit;
        let mut interrupted = false;
        while !self.pool.running().is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || interrupted {
                break;
            }
            let next = ginkgo_api::time::timeout::<R, _>(
                left,
                or(async { Some(events.recv().await) }, async {
                    loop {
                        match signals.recv().await {
                            Some(Signal::Int) => return None,
                            Some(_) => continue,
                            None => std::future::pending::<()>().await,
                        }
                    }
                }),
            )
            .await;
            match next {
                Ok(Some(Ok(event))) => self.while_stopping(event),
                Ok(Some(Err(_))) | Err(_) => break,
                Ok(None) => interrupted = true,
            }
        }
        let left = self.pool.running();
        if left.is_empty() {
            tracing::info!("stopped; every worker exited");
            return 0;
        }
        if interrupted {
            tracing::warn!("second SIGINT: killing the workers");
        } else {
            tracing::error!(?limit, workers = ?left, "workers did not stop within stop_timeout; killing them");
        }
        for number in &left {
            self.pool.signal(*number, rustix::process::Signal::KILL);
        }
        let deadline = Instant::now() + KILL_GRACE;
        while !self.pool.running().is_empty() && Instant::now() < deadline {
            match ginkgo_api::time::timeout::<R, _>(
                deadline.saturating_duration_since(Instant::now()),
                events.recv(),
            )
            .await
            {
                Ok(Ok(event)) => self.while_stopping(event),
                _ => break,
            }
        }
        if interrupted { 130 } else { EXIT_FAILURE }
    }

    /// An event while stopping: exits are recorded; a replacement that got ready meanwhile is
    /// taken in and stopped.
    fn while_stopping(&self, event: Event) {
        match event {
            Event::Exited {
                number, generation, ..
            } => {
                self.pool.exited(number, generation);
            }
            Event::Started {
                number,
                outcome: Ok((child, pair)),
            } => {
                let _ = self.adopt(number, child, pair);
            }
            Event::Started { .. } | Event::Restart(_) => {}
        }
    }

    /// Removes the Unix socket files of the listeners (when the master exits owning them).
    fn remove_socket_files(&self) {
        for (service, fd) in self.sockets.iter() {
            let Ok(fd) = fd.try_clone() else { continue };
            // A TCP socket's address is not a Unix one: local_addr fails, and it is skipped.
            let listener = std::os::unix::net::UnixListener::from(fd);
            if let Ok(addr) = listener.local_addr()
                && let Some(path) = addr.as_pathname()
                && let Err(err) = std::fs::remove_file(path)
                && err.kind() != io::ErrorKind::NotFound
            {
                tracing::warn!(service, path = %path.display(), %err, "cannot remove the socket file");
            }
        }
    }
}

/// The workers as the master sees them (shared with the control socket's `status`).
struct Pool {
    slots: Mutex<Vec<Slot>>,
    next_generation: std::sync::atomic::AtomicU64,
}

/// One worker's place.
struct Slot {
    number: u32,
    process: Option<Process>,
    state: &'static str,
    since: SystemTime,
    /// How often it was started again.
    restarts: u32,
    started_once: bool,
    /// When it exited, within the restart window.
    exits: Vec<Instant>,
}

/// A running worker.
struct Process {
    pid: u32,
    /// Signals go through it, so they can never reach another process that got the pid.
    pidfd: OwnedFd,
    /// The pair to the worker, for orders (one at a time).
    link: Arc<Mutex<UnixStream>>,
    generation: u64,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every change is a few field writes, so a lock poisoned by a panic elsewhere still guards
    // consistent data.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Pool {
    fn new(count: u32) -> Self {
        Self {
            slots: Mutex::new(
                (1..=count)
                    .map(|number| Slot {
                        number,
                        process: None,
                        state: "starting",
                        since: SystemTime::now(),
                        restarts: 0,
                        started_once: false,
                        exits: Vec::new(),
                    })
                    .collect(),
            ),
            next_generation: std::sync::atomic::AtomicU64::new(0),
        }
    }

    fn with_slot<T>(&self, number: u32, f: impl FnOnce(&mut Slot) -> T) -> Option<T> {
        let mut slots = lock(&self.slots);
        slots.iter_mut().find(|slot| slot.number == number).map(f)
    }

    /// Records a ready worker; its generation tells its exit from a later one's.
    fn adopt(&self, number: u32, pid: u32, pidfd: OwnedFd, pair: UnixStream) -> u64 {
        let generation = self.next_generation.fetch_add(1, Ordering::Relaxed);
        self.with_slot(number, |slot| {
            if slot.started_once {
                slot.restarts += 1;
            }
            slot.started_once = true;
            slot.process = Some(Process {
                pid,
                pidfd,
                link: Arc::new(Mutex::new(pair)),
                generation,
            });
            slot.state = "ready";
            slot.since = SystemTime::now();
        });
        generation
    }

    /// Records that the worker of `generation` exited; its pid, or `None` if that is not the
    /// worker in the slot (already recorded).
    fn exited(&self, number: u32, generation: u64) -> Option<u32> {
        self.with_slot(number, |slot| {
            let current = slot.process.as_ref()?;
            if current.generation != generation {
                return None;
            }
            let pid = current.pid;
            slot.process = None;
            slot.state = "exited";
            slot.since = SystemTime::now();
            Some(pid)
        })
        .flatten()
    }

    /// Records an exit (or a failed start) for the restart intensity; how many there were
    /// within `window`.
    fn record_exit(&self, number: u32, window: Duration) -> usize {
        self.with_slot(number, |slot| {
            let now = Instant::now();
            slot.exits.retain(|at| now.duration_since(*at) <= window);
            slot.exits.push(now);
            slot.state = "restarting";
            slot.exits.len()
        })
        .unwrap_or(0)
    }

    fn set_state(&self, number: u32, state: &'static str) {
        self.with_slot(number, |slot| {
            slot.state = state;
            slot.since = SystemTime::now();
        });
    }

    /// The numbers of the workers that run.
    fn running(&self) -> Vec<u32> {
        lock(&self.slots)
            .iter()
            .filter(|slot| slot.process.is_some())
            .map(|slot| slot.number)
            .collect()
    }

    fn signal(&self, number: u32, signal: rustix::process::Signal) {
        self.with_slot(number, |slot| {
            if let Some(process) = &slot.process
                && let Err(err) = rustix::process::pidfd_send_signal(&process.pidfd, signal)
            {
                tracing::debug!(worker = number, %err, "cannot signal the worker");
            }
        });
    }

    /// Sends `order` without waiting for an answer.
    fn order(&self, number: u32, order: Order) {
        if let Some(link) = self.link(number) {
            let _ = lock(&link).write_all(order.line());
        }
    }

    fn link(&self, number: u32) -> Option<Arc<Mutex<UnixStream>>> {
        self.with_slot(number, |slot| slot.process.as_ref().map(|p| p.link.clone()))
            .flatten()
    }

    /// Asks worker `link` for `order` and reads the answer: one line, or (`until_empty`)
    /// lines up to an empty one.
    fn ask(
        link: &Mutex<UnixStream>,
        order: Order,
        wait: Duration,
        until_empty: bool,
    ) -> io::Result<String> {
        let pair = lock(link);
        pair.set_read_timeout(Some(wait))?;
        pair.set_write_timeout(Some(Duration::from_secs(5)))?;
        (&*pair).write_all(order.line())?;
        // One answer per order and one order at a time: nothing is read ahead of it.
        let mut reader = BufReader::new(&*pair);
        let mut answer = String::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line)? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the worker closed its pair",
                ));
            }
            if !until_empty {
                return Ok(line);
            }
            if line == "\n" {
                return Ok(answer);
            }
            answer.push_str(&line);
        }
    }

    /// The workers that run: number, pid and link.
    fn links(&self) -> Vec<(u32, u32, Arc<Mutex<UnixStream>>)> {
        lock(&self.slots)
            .iter()
            .filter_map(|slot| {
                let process = slot.process.as_ref()?;
                Some((slot.number, process.pid, process.link.clone()))
            })
            .collect()
    }

    /// Asks every worker to reload (blocking); per worker whether it did, and a line saying
    /// so.
    fn reload_all(&self) -> Vec<(bool, String)> {
        let mut answers = Vec::new();
        for (number, pid, link) in self.links() {
            let answer = Self::ask(&link, Order::Reload, RELOAD_ANSWER, false);
            let (ok, text) = match answer {
                Ok(line) => match line.trim_end().split_once(' ') {
                    Some(("ok", text)) => (true, text.to_owned()),
                    Some(("error", text)) => (false, format!("failed: {text}")),
                    _ => (false, format!("failed: a bad answer {line:?}")),
                },
                Err(err) => (false, format!("failed: no answer ({err})")),
            };
            answers.push((ok, format!("worker {number} (pid {pid}): {text}")));
        }
        answers
    }

    /// `status` of a master: its pid, then one line per worker followed by its tree.
    fn render(&self) -> String {
        let now = SystemTime::now();
        let rows: Vec<_> = lock(&self.slots)
            .iter()
            .map(|slot| {
                (
                    slot.number,
                    slot.process.as_ref().map(|p| (p.pid, p.link.clone())),
                    slot.state,
                    slot.since,
                    slot.restarts,
                )
            })
            .collect();
        let mut out = format!(
            "pid {}\nmaster of {} workers\n",
            std::process::id(),
            rows.len()
        );
        for (number, process, state, since, restarts) in rows {
            let since = now
                .duration_since(since)
                .map_or_else(|_| "-".to_owned(), |d| format!("{}s", d.as_secs()));
            let pid = process
                .as_ref()
                .map_or_else(|| "-".to_owned(), |(pid, _)| pid.to_string());
            out.push_str(&format!(
                "worker {number:<3} pid {pid:<8} {state:<10} for {since:<8} restarts {restarts}\n"
            ));
            if let Some((_, link)) = process {
                match Self::ask(&link, Order::Status, STATUS_ANSWER, true) {
                    Ok(tree) => out.push_str(&tree),
                    Err(err) => out.push_str(&format!("  (no answer: {err})\n")),
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restarts_back_off_from_none_to_five_seconds() {
        assert_eq!(backoff(1), Duration::ZERO);
        assert_eq!(backoff(2), Duration::from_millis(100));
        assert_eq!(backoff(3), Duration::from_millis(200));
        assert_eq!(backoff(7), Duration::from_millis(3200));
        assert_eq!(backoff(8), Duration::from_secs(5));
        assert_eq!(backoff(100), Duration::from_secs(5));
    }

    #[test]
    fn orders_parse_and_others_do_not() {
        for order in [Order::Reload, Order::Status, Order::Retire] {
            let line = std::str::from_utf8(order.line()).unwrap();
            assert_eq!(Order::parse(line), Some(order));
        }
        assert_eq!(Order::parse("stop\n"), None);
    }

    #[test]
    fn exits_are_described_with_the_signal() {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(
            describe(&Ok(ExitStatus::from_raw(3 << 8))),
            "exited with status 3"
        );
        assert_eq!(
            describe(&Ok(ExitStatus::from_raw(9))),
            "was killed by SIGKILL"
        );
        let usr2 = rustix::process::Signal::USR2.as_raw();
        assert_eq!(
            describe(&Ok(ExitStatus::from_raw(usr2))),
            "was killed by SIGUSR2"
        );
        assert_eq!(signal_name(200), "signal 200");
    }
}
