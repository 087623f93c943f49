//! The runner: `main` hands its root service to [`Runner::run`] and gets the whole command
//! line of a well-behaved Unix daemon.
//!
//! ```text
//! PROGRAM [-c FILE] [-s PATH=VALUE]... [COMMAND]
//!
//!   run        run in the foreground (the default)
//!   start      start as a daemon; returns once the services are ready (0) or failed (1)
//!   stop       stop gracefully and wait for the process to exit (0 also if not running)
//!   restart    upgrade when running (no connection refused), start when not
//!   upgrade    start the program file anew, hand it the listening sockets, retire the old
//!              process once the new one is ready; non-zero (the old one goes on) if it fails
//!   reload     reload the configuration and the services; non-zero if it was rejected
//!   status     print the live service tree (0), or exit 3 when not running
//!   log        print the log file;  logtail: print its end and follow it
//!   config     print every setting (--template: a commented TOML file of the defaults)
//!   check      check the configuration and build the service tree from it (nothing starts);
//!              exit 0, or 78 (EX_CONFIG) with the errors
//! ```
//!
//! - The pid file is created without following symlinks and locked for the life of the
//!   process, so two starts can never both run; a stale one is recovered.
//! - A daemon is detached by re-executing the program twice with `setsid` in between; its
//!   umask is `umask` (0o027), it runs in `rundir`, and it logs to `logfile`. `start` waits for
//!   its start-up report, so start-up errors are printed, never lost.
//! - Privileges (`user`, `group`, `chroot`) are dropped after the tree has started, so
//!   privileged ports can be bound first; then it is checked that root cannot be regained.
//! - SIGTERM and SIGINT stop gracefully within `stop_timeout` (a second SIGINT exits at
//!   once); SIGHUP reloads the configuration, whole or not at all, then the services' reload
//!   hooks; SIGUSR1 reopens the log file (for logrotate).
//! - A control socket beside the pid file (mode 0600) answers `status`, `reload`, `stop` and
//!   `upgrade`.
//! - `upgrade` (or SIGUSR2): zero-downtime binary upgrade. The daemon starts the program file
//!   anew (a new build at the same path is picked up) and hands it every listening socket its
//!   servers registered, the control socket and the locked pid file, over `SCM_RIGHTS` on a
//!   socket pair that is the new process's standard input. Why that way: the new process is
//!   the old one's child, so the pair needs no rendezvous; the names travel with the
//!   descriptors in one message; neither side needs `unsafe` code to move descriptors to fixed
//!   numbers or adopt a raw number (as `LISTEN_FDS`-style inheritance would); and the control
//!   socket, the other candidate channel, is itself handed over. The pid file's `flock` lock
//!   belongs to the open file, so it never lapses. The new process's servers adopt the socket
//!   of their service path (and bind
//!   only when none was handed over, or the address changed); once its tree is ready it takes
//!   over the pid file, tells systemd `MAINPID=`, and reports back; the old process then stops
//!   accepting, drains within `stop_timeout` and exits, without `STOPPING=1`. If the new
//!   process fails or is not ready within `upgrade_timeout`, it is stopped, the old process
//!   goes on as if nothing happened, and `upgrade` prints why and exits 1. Not with `chroot`
//!   (the old process cannot reach the program file from inside it). Under systemd the unit
//!   needs `NotifyAccess=all`, since the new process is not the one systemd started.
//! - `workers` above 1 (or `auto`, one per CPU): prefork. A master binds the listeners (by
//!   starting its tree once with accepting held) and runs that many worker processes, each the
//!   program file started anew with the sockets handed over on `SCM_RIGHTS`, each running the
//!   whole tree on them. The master restarts a worker that exits (with backoff, at most
//!   `worker_max_restarts` within `worker_restart_window`, then it stops naming the cause),
//!   checks a reload before any worker sees it and reports each worker's answer, lists the
//!   workers and their trees in `status`, stops them all on SIGTERM, and hands everything to a
//!   new master in `upgrade`. Workers drop privileges; the master keeps them.
//! - Under systemd: `READY=1`, `RELOADING=1` with `MONOTONIC_USEC`, `STOPPING=1`, `STATUS=`,
//!   `WATCHDOG=1` keep-alives; listening sockets from socket activation, to the server whose
//!   service path is the socket's name, or via [`ListenFds`] by position; with `fd_store`, the
//!   listeners kept in systemd's file descriptor store across a crash-restart
//!   ([`Notifier::with_fd_store`]).
//!
//! # Examples
//!
//! Generic over the runtime here; with the `ginkgo` facade it is `ginkgo::runner::Runner`,
//! which names no runtime:
//!
//! ```no_run
//! use ginkgo_api::Runtime;
//! use ginkgo_api::service::{Service, async_trait};
//! use ginkgo_runner::Runner;
//!
//! struct App;
//!
//! #[async_trait]
//! impl Service for App {}
//!
//! fn main_on<R: Runtime>() -> std::process::ExitCode {
//!     Runner::<R>::new("app").run(|_config| Ok(App))
//! }
//! ```

pub mod control;
mod daemon;
mod kv_settings;
mod logging;
mod notify;
pub mod pidfile;
mod privileges;
mod serve;
mod settings;
mod upgrade;
mod workers;

use std::ffi::OsString;
use std::fmt;
use std::marker::PhantomData;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};

pub use kv_settings::KvSettings;
pub use notify::{ListenFds, Notifier};
pub use settings::{LogFormat, Paths, RunnerSettings, Workers};

use ginkgo_api::Runtime;
use ginkgo_api::service::Service;
use ginkgo_config::{Config, ConfigError};

/// Exit status for a configuration error (`EX_CONFIG` from sysexits.h).
pub const EXIT_CONFIG: u8 = 78;
/// Exit status for a failure: the tree failed, or a command could not do its work.
pub const EXIT_FAILURE: u8 = 1;
/// How long `upgrade` waits for the daemon's answer when the configuration does not load (the
/// default of the `upgrade_timeout` setting).
const DEFAULT_UPGRADE_TIMEOUT: Duration = Duration::from_secs(60);

/// Exit status of `status` when the program is not running (LSB).
pub const EXIT_NOT_RUNNING: u8 = 3;

#[derive(Parser, Debug)]
struct Cli {
    /// Read settings from this TOML file.
    #[arg(short = 'c', long = "config", value_name = "FILE", global = true)]
    config: Option<PathBuf>,
    /// Set a setting, overriding the file and the environment (repeatable; survives reloads).
    #[arg(short = 's', long = "set", value_name = "PATH=VALUE", global = true)]
    set: Vec<String>,
    /// Internal: this process is the new one of an upgrade started by this pid.
    #[arg(long = upgrade::UPGRADE_FROM, value_name = "PID", hide = true, global = true)]
    upgrade_from: Option<u32>,
    /// Internal: this process is prefork worker number N of its parent, the master.
    #[arg(long = workers::WORKER, value_name = "N", hide = true, global = true)]
    worker: Option<u32>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug, Clone, PartialEq, Eq)]
enum Command {
    /// Run in the foreground (the default).
    Run,
    /// Start as a daemon; return once the services are ready, or print why they failed.
    Start,
    /// Stop gracefully and wait until the process has exited.
    Stop,
    /// Upgrade when running (no connection is refused); start when not.
    Restart,
    /// Start the program anew, hand it the listening sockets, retire this process when ready.
    Upgrade,
    /// Reload the configuration and the services; fail if the configuration was rejected.
    Reload,
    /// Print the live service tree; exit 3 when not running.
    Status,
    /// Print the log file.
    Log,
    /// Print the end of the log file and follow it.
    Logtail,
    /// Print every setting with its type, default, current value, source and help.
    Config {
        /// Print a commented TOML file of every setting at its default instead.
        #[arg(long)]
        template: bool,
    },
    /// Check the configuration: exit 0 if it is valid, 78 with the errors if not.
    Check,
    #[command(name = daemon::DETACH, hide = true)]
    Detach,
    #[command(name = daemon::DAEMON, hide = true)]
    Daemon,
}

/// Runs a ginkgo program on runtime `R`: parses the command line, loads the configuration, and
/// runs the command. The `ginkgo` facade fixes `R` (`ginkgo::runner::Runner`).
///
/// Library code here never exits the process: every entry point returns the exit status, so a
/// program can embed the runner in its own `main` and decide what to do with it.
///
/// - [`Runner::run`] / [`Runner::run_with_args`] start runtime `R` themselves.
/// - [`Runner::run_async`] runs on a runtime the program has already started: the serving loop
///   runs in the caller's task; the commands that block (`stop`, `logtail`, ...) run in a
///   blocking task.
pub struct Runner<R> {
    program: String,
    version: Option<String>,
    about: Option<String>,
    install_logging: bool,
    _runtime: PhantomData<fn() -> R>,
}

impl<R> fmt::Debug for Runner<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runner")
            .field("program", &self.program)
            .field("version", &self.version)
            .field("about", &self.about)
            .field("install_logging", &self.install_logging)
            .finish()
    }
}

impl<R> Clone for Runner<R> {
    fn clone(&self) -> Self {
        Self {
            program: self.program.clone(),
            version: self.version.clone(),
            about: self.about.clone(),
            install_logging: self.install_logging,
            _runtime: PhantomData,
        }
    }
}

/// What the command line asks for, once parsed and loaded.
enum Next {
    /// Done already (help, a configuration error, `config`, `check`).
    Exit(ExitCode),
    /// A command that talks to a running daemon or follows a file; it may block for long.
    Command(Box<dyn FnOnce() -> ExitCode + Send>),
    /// Serve the tree in this process.
    Serve(Serve),
    /// `check`: the configuration is valid; build the tree from it (without starting it) to
    /// find what only the services check, such as unreadable certificate files.
    Check(Config),
}

/// What the serving loop needs from the command line and the configuration.
struct Serve {
    config: Config,
    settings: ginkgo_config::Live<RunnerSettings>,
    paths: Paths,
    /// Detached by `start` (it reports start-up on its standard input), not run in the
    /// foreground.
    daemon: bool,
    /// The global options, for the new process of an upgrade.
    forwarded: Vec<OsString>,
    /// Started by an upgrade from this pid.
    upgrade_from: Option<u32>,
    /// A prefork worker with this number.
    worker: Option<u32>,
    /// A worker's handover from its master, received before the configuration was loaded
    /// (it carries the config text the master has in force).
    worker_handover: Option<upgrade::Handover>,
}

impl<R: Runtime> Runner<R> {
    /// A runner for `program` (its name also sets the environment prefix of its settings and
    /// the default pid and log file names).
    pub fn new(program: &str) -> Self {
        Self {
            program: program.to_owned(),
            version: None,
            about: None,
            install_logging: true,
            _runtime: PhantomData,
        }
    }

    /// The version printed by `--version`.
    #[must_use]
    pub fn version(mut self, version: &str) -> Self {
        self.version = Some(version.to_owned());
        self
    }

    /// The one-line description printed by `--help`.
    #[must_use]
    pub fn about(mut self, about: &str) -> Self {
        self.about = Some(about.to_owned());
        self
    }

    /// Whether the runner installs the process-wide tracing subscriber (the default, `true`).
    /// A program that installs its own passes `false`; `loglevel` and `logformat` are then
    /// not applied, and SIGUSR1 still reopens the daemon's log file.
    #[must_use]
    pub fn install_logging(mut self, install: bool) -> Self {
        self.install_logging = install;
        self
    }

    /// Runs the program with the process's arguments. `build` makes the root service from
    /// the loaded configuration. Returns the exit status for `main`.
    pub fn run<S, F>(self, build: F) -> ExitCode
    where
        S: Service,
        F: FnOnce(&Config) -> Result<S, ginkgo_api::service::Error>,
    {
        self.run_with_args(std::env::args_os(), build)
    }

    /// Like [`Runner::run`], with explicit arguments (the first is the program's name).
    pub fn run_with_args<S, F, I, A>(self, args: I, build: F) -> ExitCode
    where
        S: Service,
        F: FnOnce(&Config) -> Result<S, ginkgo_api::service::Error>,
        I: IntoIterator<Item = A>,
        A: Into<OsString> + Clone,
    {
        match self.prepare(args) {
            Next::Exit(status) => status,
            Next::Command(command) => command(),
            Next::Serve(prepared) => ginkgo_api::block_on::<R, _>(self.serve(prepared, build)),
            Next::Check(config) => check(&self.program, &config, build),
        }
    }

    /// Like [`Runner::run_with_args`], on a runtime `R` that is already running: await it
    /// from the program's own main task.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # use ginkgo_api::Runtime;
    /// # struct App;
    /// # #[ginkgo_api::service::async_trait]
    /// # impl ginkgo_api::service::Service for App {}
    /// # fn demo<R: Runtime>() -> std::process::ExitCode {
    /// use ginkgo_runner::Runner;
    ///
    /// ginkgo_api::block_on::<R, _>(async {
    ///     // ... the program's own set-up on the running runtime ...
    ///     Runner::<R>::new("app")
    ///         .run_async(std::env::args_os(), |_config| Ok(App))
    ///         .await
    /// })
    /// # }
    /// ```
    pub async fn run_async<S, F, I, A>(self, args: I, build: F) -> ExitCode
    where
        S: Service,
        F: FnOnce(&Config) -> Result<S, ginkgo_api::service::Error>,
        I: IntoIterator<Item = A>,
        A: Into<OsString> + Clone,
    {
        match self.prepare(args) {
            Next::Exit(status) => status,
            Next::Command(command) => ginkgo_api::spawn_blocking::<R, _, _>(command)
                .await
                .unwrap_or_else(|err| {
                    eprintln!("{}: {err}", self.program);
                    ExitCode::from(EXIT_FAILURE)
                }),
            Next::Serve(prepared) => self.serve(prepared, build).await,
            Next::Check(config) => check(&self.program, &config, build),
        }
    }

    /// Parses the command line and loads the configuration; says what to do next.
    fn prepare<I, A>(&self, args: I) -> Next
    where
        I: IntoIterator<Item = A>,
        A: Into<OsString> + Clone,
    {
        let mut command = <Cli as clap::CommandFactory>::command().name(self.program.clone());
        if let Some(version) = &self.version {
            command = command.version(version.clone());
        }
        if let Some(about) = &self.about {
            command = command.about(about.clone());
        }
        let cli = match command
            .try_get_matches_from(args)
            .and_then(|matches| <Cli as clap::FromArgMatches>::from_arg_matches(&matches))
        {
            Ok(cli) => cli,
            // `--help` and `--version` land here too, with exit status 0.
            Err(err) => {
                let _ = err.print();
                return Next::Exit(ExitCode::from(u8::try_from(err.exit_code()).unwrap_or(2)));
            }
        };
        // Started by the old process of an upgrade: start the one that takes over and leave
        // it to be adopted (the upgrade module's docs say why).
        if let Some(from) = cli.upgrade_from
            && upgrade::started_by(from)
        {
            return Next::Exit(match upgrade::detach(from) {
                Ok(()) => ExitCode::SUCCESS,
                Err(err) => {
                    eprintln!("{}: cannot take over: {err}", self.program);
                    ExitCode::from(EXIT_FAILURE)
                }
            });
        }
        let command = cli.command.clone().unwrap_or(Command::Run);
        if command == (Command::Config { template: true }) {
            print!("{}", ginkgo_config::template());
            return Next::Exit(ExitCode::SUCCESS);
        }
        // The new process of an upgrade is the first to read the files: it tells the old one.
        let report = |err: &dyn fmt::Display| {
            serve::report(
                cli.upgrade_from.is_some() || cli.worker.is_some(),
                &format!("error: configuration error: {err}"),
            );
        };
        // A worker starts on the configuration its master has in force (which a rejected
        // reload left in place), not on what is in the file now: it comes with the sockets.
        let mut worker_handover = None;
        if cli.worker.is_some() {
            match upgrade::receive_stdin() {
                Ok(handover) => worker_handover = Some(handover),
                Err(err) => {
                    let err = format!("cannot receive the sockets from the master: {err}");
                    eprintln!("{}: {err}", self.program);
                    serve::report(true, &format!("error: {err}"));
                    return Next::Exit(ExitCode::from(EXIT_FAILURE));
                }
            }
        }
        let in_force = worker_handover
            .as_ref()
            .and_then(|handover| handover.config.clone());
        let config = match self.load(&cli, in_force) {
            Ok(config) => config,
            Err(err) => {
                eprintln!("{}: configuration error:\n{err}", self.program);
                report(&err);
                return self.without_config(cli, command);
            }
        };
        let settings = match config.get::<RunnerSettings>() {
            Ok(settings) => settings,
            Err(err) => {
                eprintln!("{}: configuration error:\n{err}", self.program);
                report(&err);
                return Next::Exit(ExitCode::from(EXIT_CONFIG));
            }
        };
        let paths = Paths::resolve(&self.program, &settings.get());
        let program = self.program.clone();
        let stop_timeout = settings.get().stop_timeout.0;
        let upgrade_timeout = settings.get().upgrade_timeout.0;
        match command {
            Command::Config { .. } => {
                print_settings(&self.program, &config, &paths);
                Next::Exit(ExitCode::SUCCESS)
            }
            Command::Check => Next::Check(config),
            Command::Run => Next::Serve(Serve {
                config,
                settings,
                paths,
                daemon: false,
                forwarded: forwarded(&cli),
                upgrade_from: cli.upgrade_from,
                worker: cli.worker,
                worker_handover,
            }),
            Command::Daemon => {
                daemon::set_umask(settings.get().umask.0);
                Next::Serve(Serve {
                    config,
                    settings,
                    paths,
                    daemon: true,
                    forwarded: forwarded(&cli),
                    upgrade_from: cli.upgrade_from,
                    worker: cli.worker,
                    worker_handover,
                })
            }
            Command::Start => Next::Command(Box::new(move || {
                daemon::start(&program, &paths, &forwarded(&cli))
            })),
            Command::Detach => {
                Next::Command(Box::new(move || daemon::detach(&paths, &forwarded(&cli))))
            }
            Command::Stop => Next::Command(Box::new(move || stop(&program, &paths, stop_timeout))),
            Command::Restart => {
                Next::Command(Box::new(move || match pidfile::running(&paths.pidfile) {
                    Ok(Some(_)) => upgrade(&program, &paths, upgrade_timeout, stop_timeout),
                    _ => daemon::start(&program, &paths, &forwarded(&cli)),
                }))
            }
            Command::Upgrade => Next::Command(Box::new(move || {
                upgrade(&program, &paths, upgrade_timeout, stop_timeout)
            })),
            Command::Reload => Next::Command(Box::new(move || reload(&program, &paths))),
            Command::Status => Next::Command(Box::new(move || status(&program, &paths))),
            Command::Log => Next::Command(Box::new(move || log(&program, &paths))),
            Command::Logtail => Next::Command(Box::new(move || logtail(&program, &paths))),
        }
    }

    /// Commands that only talk to a running daemon still work when the configuration does
    /// not load (so a typo never prevents a stop); the others exit with `EX_CONFIG`.
    fn without_config(&self, cli: Cli, command: Command) -> Next {
        let program = self.program.clone();
        let file = cli.config.as_ref().map(|file| origin().join(file));
        let (paths, stop_timeout) = match settings::lenient(&program, file.as_deref(), &cli.set) {
            Ok(found) => found,
            // Even the declared defaults do not load: nothing can be found.
            Err(_) => return Next::Exit(ExitCode::from(EXIT_CONFIG)),
        };
        Next::Command(match command {
            Command::Stop => Box::new(move || stop(&program, &paths, stop_timeout)),
            Command::Status => Box::new(move || status(&program, &paths)),
            Command::Log => Box::new(move || log(&program, &paths)),
            Command::Logtail => Box::new(move || logtail(&program, &paths)),
            // The daemon checks the same files and gives its verdict; exit non-zero anyway.
            Command::Reload => Box::new(move || {
                let _ = reload(&program, &paths);
                ExitCode::from(EXIT_CONFIG)
            }),
            // Likewise: the new process reads the same files, fails on them, and the old one
            // goes on; what it says is printed.
            Command::Upgrade => Box::new(move || {
                let _ = upgrade(&program, &paths, DEFAULT_UPGRADE_TIMEOUT, stop_timeout);
                ExitCode::from(EXIT_CONFIG)
            }),
            _ => return Next::Exit(ExitCode::from(EXIT_CONFIG)),
        })
    }

    /// Loads the configuration; `in_force` is the file's text as another process (a
    /// worker's master) has it in force, read in place of the file.
    fn load(&self, cli: &Cli, in_force: Option<Arc<str>>) -> Result<Config, ConfigError> {
        let mut builder = Config::builder(&self.program);
        if let Some(file) = &cli.config {
            builder = match in_force {
                Some(text) => builder.file_text(origin().join(file), text),
                None => builder.file(origin().join(file)),
            };
        }
        for assignment in &cli.set {
            builder = builder.set(assignment.clone());
        }
        builder.load()
    }

    async fn serve<S, F>(&self, prepared: Serve, build: F) -> ExitCode
    where
        S: Service,
        F: FnOnce(&Config) -> Result<S, ginkgo_api::service::Error>,
    {
        let Serve {
            config,
            settings,
            paths,
            daemon,
            forwarded,
            upgrade_from,
            worker,
            worker_handover,
        } = prepared;
        if let Some(number) = worker {
            // Before the tree is built, so that everything in it can tell which worker it is.
            ginkgo_api::process::set_worker(number);
        }
        // Named now: once the file is replaced by a new build, this process's own
        // (`/proc/self/exe`) names the deleted one.
        let exe = std::env::current_exe().ok();
        let logs = if self.install_logging {
            match logging::install(&settings.get()) {
                Ok(logs) => Some(logs),
                Err(err) => {
                    eprintln!("{}: cannot set up logging: {err}", self.program);
                    return ExitCode::from(EXIT_CONFIG);
                }
            }
        } else {
            None
        };
        let root = match build(&config) {
            Ok(root) => root,
            Err(err) => {
                eprintln!("{}: cannot build the service tree: {err}", self.program);
                // `start`, or the old process of an upgrade, waits to hear why.
                serve::report(
                    daemon || upgrade_from.is_some() || worker.is_some(),
                    &format!("error: cannot build the service tree: {err}"),
                );
                return ExitCode::from(EXIT_CONFIG);
            }
        };
        let serving = serve::Serving::<R> {
            program: &self.program,
            config: &config,
            settings,
            paths,
            logs,
            daemon,
            forwarded,
            exe,
            upgrade_from,
            worker,
            worker_handover,
            runtime: PhantomData,
        };
        ExitCode::from(serving.run(root).await)
    }
}

/// `check` once the configuration loaded: builds the tree (nothing starts, nothing binds) so
/// that what the services check when they are built fails here too; exit 0 or 78.
fn check<S, F>(program: &str, config: &Config, build: F) -> ExitCode
where
    F: FnOnce(&Config) -> Result<S, ginkgo_api::service::Error>,
{
    if let Err(err) = build(config) {
        eprintln!(
            "{program}: the configuration is valid, but the service tree cannot be built: {err}"
        );
        return ExitCode::from(EXIT_CONFIG);
    }
    match config.file() {
        Some(file) => println!("{program}: configuration in {} is valid", file.display()),
        None => println!("{program}: configuration is valid"),
    }
    ExitCode::SUCCESS
}

/// `text` on one line (a report is one line): its lines joined with "; ".
fn one_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

/// The directory relative paths are resolved against: where the user ran the command, also
/// in the daemon's children (which run in `rundir`).
fn origin() -> PathBuf {
    std::env::var_os(daemon::ORIGIN)
        .map(PathBuf::from)
        .or_else(|| std::env::current_dir().ok())
        .unwrap_or_else(|| PathBuf::from("/"))
}

/// The global options, for the daemon's children, with the config file made absolute.
fn forwarded(cli: &Cli) -> Vec<OsString> {
    let mut args = Vec::new();
    if let Some(file) = &cli.config {
        args.push(OsString::from("--config"));
        args.push(origin().join(file).into_os_string());
    }
    for assignment in &cli.set {
        args.push(OsString::from("--set"));
        args.push(OsString::from(assignment));
    }
    args
}

/// `stop`: through the control socket, or SIGTERM; then waits for the process to exit.
fn stop(program: &str, paths: &Paths, stop_timeout: Duration) -> ExitCode {
    let pid = match pidfile::running(&paths.pidfile) {
        Ok(Some(pid)) => pid,
        Ok(None) => {
            println!("{program} is not running");
            return ExitCode::SUCCESS;
        }
        Err(err) => {
            eprintln!("{program}: {err}");
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    let asked = control::request(&paths.socket, "stop", Duration::from_secs(10));
    if !matches!(asked, Ok((true, _)))
        && let Err(err) = ginkgo_api::signal::Signal::Term.send_to(pid)
    {
        eprintln!("{program}: cannot stop pid {pid}: {err}");
        return ExitCode::from(EXIT_FAILURE);
    }
    // The daemon bounds its own stop by stop_timeout; allow a margin for exiting.
    // The lock goes a moment before the process: wait for both.
    if daemon::wait_exit(&paths.pidfile, stop_timeout + Duration::from_secs(5))
        && daemon::wait_pid_exit(pid, Duration::from_secs(5))
    {
        println!("{program} stopped (pid {pid})");
        ExitCode::SUCCESS
    } else {
        eprintln!("{program}: pid {pid} did not exit within {stop_timeout:?} and a margin");
        ExitCode::from(EXIT_FAILURE)
    }
}

/// `upgrade`: through the control socket, with the outcome; then waits for the old process to
/// exit. Without a control socket, SIGUSR2 (the outcome is then in the log).
fn upgrade(
    program: &str,
    paths: &Paths,
    upgrade_timeout: Duration,
    stop_timeout: Duration,
) -> ExitCode {
    let old = match running_pid(program, paths) {
        Ok(pid) => pid,
        Err(status) => return status,
    };
    match control::request(
        &paths.socket,
        "upgrade",
        upgrade_timeout + Duration::from_secs(15),
    ) {
        Ok((true, text)) => {
            let new = text.trim().rsplit(' ').next().unwrap_or("?").to_owned();
            // The old process drains within its stop_timeout; allow a margin for exiting.
            if daemon::wait_pid_exit(old, stop_timeout + Duration::from_secs(5)) {
                println!("{program} upgraded (pid {old} -> {new})");
                ExitCode::SUCCESS
            } else {
                eprintln!(
                    "{program}: upgraded to pid {new}, but the old pid {old} did not exit within {stop_timeout:?} and a margin"
                );
                ExitCode::from(EXIT_FAILURE)
            }
        }
        Ok((false, text)) => {
            eprint!("{program}: upgrade failed; pid {old} goes on serving: {text}");
            ExitCode::from(EXIT_FAILURE)
        }
        // Only when there is no control socket to talk to: another error may mean the daemon
        // is busy with the request, and a signal would ask again.
        Err(err)
            if !matches!(
                err.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
            ) =>
        {
            eprintln!("{program}: the control socket failed ({err}); the outcome is in the log");
            ExitCode::from(EXIT_FAILURE)
        }
        Err(err) => signal_instead(
            program,
            ginkgo_api::signal::Signal::Usr2,
            old,
            &err,
            "upgrade",
        ),
    }
}

/// The pid of the running daemon, or the exit status of a command that needs one (after
/// saying why there is none).
fn running_pid(program: &str, paths: &Paths) -> Result<u32, ExitCode> {
    match pidfile::running(&paths.pidfile) {
        Ok(Some(pid)) => Ok(pid),
        Ok(None) => {
            eprintln!("{program} is not running");
            Err(ExitCode::from(EXIT_FAILURE))
        }
        Err(err) => {
            eprintln!("{program}: {err}");
            Err(ExitCode::from(EXIT_FAILURE))
        }
    }
}

/// Without a control socket to ask (`err`): sends `signal` to `pid` to `what` it; the outcome
/// is then only in the log.
fn signal_instead(
    program: &str,
    signal: ginkgo_api::signal::Signal,
    pid: u32,
    err: &std::io::Error,
    what: &str,
) -> ExitCode {
    match signal.send_to(pid) {
        Ok(()) => {
            println!(
                "{program}: no control socket ({err}); sent {signal} to pid {pid}, the outcome is in the log"
            );
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("{program}: cannot {what} pid {pid}: {err}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

/// `reload`: through the control socket (with the real outcome), or SIGHUP.
fn reload(program: &str, paths: &Paths) -> ExitCode {
    let pid = match running_pid(program, paths) {
        Ok(pid) => pid,
        Err(status) => return status,
    };
    match control::request(&paths.socket, "reload", Duration::from_secs(60)) {
        Ok((true, text)) => {
            print!("{program}: {text}");
            ExitCode::SUCCESS
        }
        Ok((false, text)) => {
            eprint!("{program}: {text}");
            ExitCode::from(EXIT_FAILURE)
        }
        Err(err) => signal_instead(
            program,
            ginkgo_api::signal::Signal::Hup,
            pid,
            &err,
            "reload",
        ),
    }
}

/// `status`: the live tree (0), or 3 when not running.
fn status(program: &str, paths: &Paths) -> ExitCode {
    match pidfile::running(&paths.pidfile) {
        Ok(Some(pid)) => {
            match control::request(&paths.socket, "status", Duration::from_secs(10)) {
                Ok((_, text)) => print!("{text}"),
                Err(err) => println!("{program} is running (pid {pid}); no control socket: {err}"),
            }
            ExitCode::SUCCESS
        }
        Ok(None) => {
            println!("{program} is not running");
            ExitCode::from(EXIT_NOT_RUNNING)
        }
        Err(err) => {
            eprintln!("{program}: {err}");
            ExitCode::from(EXIT_NOT_RUNNING)
        }
    }
}

/// `log`: the whole log file.
fn log(program: &str, paths: &Paths) -> ExitCode {
    let file = match std::fs::File::open(&paths.logfile) {
        Ok(file) => file,
        Err(err) => {
            eprintln!("{program}: cannot read {}: {err}", paths.logfile.display());
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    let mut out = std::io::stdout().lock();
    match std::io::copy(&mut std::io::BufReader::new(file), &mut out) {
        Ok(_) => ExitCode::SUCCESS,
        // A closed pipe (`log | head`) is not an error worth reporting.
        Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("{program}: {err}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

/// `logtail`: the last lines, then new ones as they come, across rotations, until killed.
fn logtail(program: &str, paths: &Paths) -> ExitCode {
    use std::io::{Read, Seek, SeekFrom, Write};
    use std::os::unix::fs::MetadataExt;
    const TAIL: usize = 20;
    let open = || std::fs::File::open(&paths.logfile);
    let mut file = match open() {
        Ok(file) => file,
        Err(err) => {
            eprintln!("{program}: cannot read {}: {err}", paths.logfile.display());
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    let mut text = String::new();
    let _ = file.read_to_string(&mut text);
    let lines: Vec<&str> = text.lines().collect();
    let mut out = std::io::stdout();
    for line in &lines[lines.len().saturating_sub(TAIL)..] {
        if writeln!(out, "{line}").is_err() {
            return ExitCode::SUCCESS;
        }
    }
    let mut inode = file.metadata().map(|m| m.ino()).unwrap_or(0);
    let mut buf = Vec::new();
    loop {
        std::thread::sleep(Duration::from_millis(200));
        // Rotated (a new file at the path) or truncated: start over at the new beginning.
        if let Ok(meta) = std::fs::metadata(&paths.logfile) {
            let position = file.stream_position().unwrap_or(0);
            if (meta.ino() != inode || meta.len() < position)
                && let Ok(new) = open()
            {
                file = new;
                inode = meta.ino();
                let _ = file.seek(SeekFrom::Start(0));
            }
        }
        buf.clear();
        if file.read_to_end(&mut buf).is_ok()
            && !buf.is_empty()
            && out.write_all(&buf).and_then(|()| out.flush()).is_err()
        {
            return ExitCode::SUCCESS;
        }
    }
}

/// `config`: one block per setting.
/// Every setting with its value, type, default, source and help, as `config` prints it.
fn settings_text(config: &Config) -> String {
    use std::fmt::Write as _;
    let mut text = String::new();
    for entry in config.entries() {
        let shown = |value: &Option<toml::Value>| {
            value
                .as_ref()
                .map_or_else(|| "(unset)".to_owned(), ToString::to_string)
        };
        let _ = writeln!(text, "{} = {}", entry.info.path, shown(&entry.value));
        let _ = writeln!(
            text,
            "    type: {}    default: {}    source: {}",
            entry.info.type_name,
            shown(&entry.info.default),
            entry.source
        );
        if !entry.info.help.is_empty() {
            let _ = writeln!(text, "    {}", entry.info.help);
        }
    }
    text
}

/// `config`: the settings in force in the running daemon (layers it read at run time, such as
/// a key-value store's, included), or, with no daemon to ask, those this command line and
/// file give.
fn print_settings(program: &str, config: &Config, paths: &Paths) {
    if let Ok(Some(pid)) = pidfile::running(&paths.pidfile) {
        match control::request(&paths.socket, "config", Duration::from_secs(10)) {
            Ok((true, text)) => {
                println!("# the settings in force in the running {program} (pid {pid})");
                print!("{text}");
                return;
            }
            Ok((false, text)) => eprint!("{program}: the daemon did not answer: {text}"),
            Err(err) => eprintln!("{program}: cannot ask the running daemon ({err})"),
        }
        println!("# the settings this command line and file give (not asked of pid {pid})");
    }
    print!("{}", settings_text(config));
}
