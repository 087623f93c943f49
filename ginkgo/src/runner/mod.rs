//! The runner: `main` hands its root service to [`Runner::run`] and gets the whole command
//! line.
//!
//! ```text
//! PROGRAM [-c FILE] [-s PATH=VALUE]... [COMMAND]
//!
//!   run              run in the foreground (the default)
//!   config           print every setting: path, type, default, value, source, help
//!   config --template
//!                    print a commented TOML file of every setting at its default
//!   check            check the configuration; exit 0, or 78 (EX_CONFIG) with the errors
//! ```
//!
//! In the foreground, SIGTERM and SIGINT stop the tree gracefully, and SIGHUP reloads the
//! configuration (whole, or not at all) and then runs the reload hooks in start order.
//!
//! # Examples
//!
//! ```no_run
//! use ginkgo::runner::Runner;
//! use ginkgo::service::{Context, Error, Service};
//!
//! struct App;
//!
//! #[ginkgo::async_trait]
//! impl Service for App {}
//!
//! fn main() -> std::process::ExitCode {
//!     Runner::new("app").run(|_config| Ok(App))
//! }
//! ```

mod logging;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{Config, ConfigError};
use crate::service::{Service, ServiceHandle, State};
use crate::signal::{Signal, Signals};

/// Exit status for a configuration error (`EX_CONFIG` from sysexits.h).
pub const EXIT_CONFIG: u8 = 78;
/// Exit status when the service tree failed.
pub const EXIT_FAILURE: u8 = 1;

/// Settings every ginkgo program has, at the top level.
#[derive(crate::Settings)]
pub struct RunnerSettings {
    /// Which log lines to keep: a tracing filter directive such as "info" or
    /// "warn,my_crate=debug". Reloaded on SIGHUP.
    #[setting(default = "info", validate = logging::check_filter)]
    pub loglevel: String,
    /// How log lines are written: "text" or "json".
    #[setting(default = "text", validate = logging::check_format)]
    pub logformat: String,
}

#[derive(Parser, Debug)]
struct Cli {
    /// Read settings from this TOML file.
    #[arg(short = 'c', long = "config", value_name = "FILE", global = true)]
    config: Option<PathBuf>,
    /// Set a setting, overriding the file and the environment (repeatable; survives reloads).
    #[arg(short = 's', long = "set", value_name = "PATH=VALUE", global = true)]
    set: Vec<String>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run in the foreground (the default).
    Run,
    /// Print every setting with its type, default, current value, source and help.
    Config {
        /// Print a commented TOML file of every setting at its default instead.
        #[arg(long)]
        template: bool,
    },
    /// Check the configuration: exit 0 if it is valid, 78 with the errors if not.
    Check,
}

/// Runs a ginkgo program: parses the command line, loads the configuration, and runs the
/// command.
#[derive(Debug, Clone)]
pub struct Runner {
    program: String,
    version: Option<String>,
    about: Option<String>,
}

impl Runner {
    /// A runner for `program` (its name also sets the environment prefix of its settings).
    pub fn new(program: &str) -> Self {
        Self {
            program: program.to_owned(),
            version: None,
            about: None,
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

    /// Runs the program with the process's arguments. `build` makes the root service from
    /// the loaded configuration. Returns the exit status for `main`.
    pub fn run<S, F>(self, build: F) -> ExitCode
    where
        S: Service,
        F: FnOnce(&Config) -> Result<S, crate::service::Error>,
    {
        self.run_with_args(std::env::args_os(), build)
    }

    /// Like [`Runner::run`], with explicit arguments (the first is the program's name).
    pub fn run_with_args<S, F, I, A>(self, args: I, build: F) -> ExitCode
    where
        S: Service,
        F: FnOnce(&Config) -> Result<S, crate::service::Error>,
        I: IntoIterator<Item = A>,
        A: Into<std::ffi::OsString> + Clone,
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
                return ExitCode::from(u8::try_from(err.exit_code()).unwrap_or(2));
            }
        };

        if let Some(Command::Config { template: true }) = cli.command {
            print!("{}", crate::config::template());
            return ExitCode::SUCCESS;
        }
        let config = match self.load(&cli) {
            Ok(config) => config,
            Err(err) => {
                eprintln!("{}: configuration error:\n{err}", self.program);
                return ExitCode::from(EXIT_CONFIG);
            }
        };
        match cli.command.unwrap_or(Command::Run) {
            Command::Config { .. } => {
                print_settings(&config);
                ExitCode::SUCCESS
            }
            Command::Check => {
                match config.file() {
                    Some(file) => println!(
                        "{}: configuration in {} is valid",
                        self.program,
                        file.display()
                    ),
                    None => println!("{}: configuration is valid", self.program),
                }
                ExitCode::SUCCESS
            }
            Command::Run => self.foreground(&config, build),
        }
    }

    fn load(&self, cli: &Cli) -> Result<Config, ConfigError> {
        let mut builder = Config::builder(&self.program);
        if let Some(file) = &cli.config {
            builder = builder.file(file);
        }
        for assignment in &cli.set {
            builder = builder.set(assignment.clone());
        }
        builder.load()
    }

    /// `run`: the tree in the foreground until a signal stops it or it fails.
    fn foreground<S, F>(&self, config: &Config, build: F) -> ExitCode
    where
        S: Service,
        F: FnOnce(&Config) -> Result<S, crate::service::Error>,
    {
        let settings = match config.get::<RunnerSettings>() {
            Ok(settings) => settings,
            Err(err) => {
                eprintln!("{}: configuration error:\n{err}", self.program);
                return ExitCode::from(EXIT_CONFIG);
            }
        };
        let logs = match logging::install(&settings.get()) {
            Ok(logs) => logs,
            Err(err) => {
                eprintln!("{}: cannot set up logging: {err}", self.program);
                return ExitCode::from(EXIT_CONFIG);
            }
        };
        let root = match build(config) {
            Ok(root) => root,
            Err(err) => {
                eprintln!("{}: cannot build the service tree: {err}", self.program);
                return ExitCode::from(EXIT_CONFIG);
            }
        };
        let program = self.program.clone();
        crate::run(async move {
            let tree = crate::service::tree(root);
            let status = supervise(&program, config, &tree, &settings, &logs).await;
            ExitCode::from(status)
        })
    }
}

/// Starts the tree, answers signals until it stops or fails, and returns the exit status.
async fn supervise(
    program: &str,
    config: &Config,
    tree: &ServiceHandle,
    settings: &crate::config::Live<RunnerSettings>,
    logs: &logging::Logs,
) -> u8 {
    let mut signals = match Signals::new(&[Signal::Term, Signal::Int, Signal::Hup]) {
        Ok(signals) => signals,
        Err(err) => {
            tracing::error!(%err, "cannot listen for signals");
            return EXIT_FAILURE;
        }
    };
    if let Err(failure) = tree.start().await {
        tracing::error!(%failure, "start failed");
        eprintln!("{program}: {failure}");
        return EXIT_FAILURE;
    }
    tracing::info!(service = tree.path(), "ready");
    let ended = tree.wait_until(|state| matches!(state, State::Stopped | State::Failed));
    let mut ended = std::pin::pin!(ended);
    loop {
        let event = crate::future::or(async { Event::Ended(ended.as_mut().await) }, async {
            Event::Signal(signals.recv().await)
        })
        .await;
        match event {
            Event::Ended(State::Failed) => {
                let failure = tree
                    .last_failure()
                    .map(|f| f.to_string())
                    .unwrap_or_default();
                tracing::error!(%failure, "the service tree failed");
                eprintln!("{program}: {failure}");
                return EXIT_FAILURE;
            }
            Event::Ended(_) => return 0,
            Event::Signal(Some(Signal::Hup)) => {
                reload(config, tree, settings, logs).await;
            }
            Event::Signal(Some(signal)) => {
                tracing::info!(%signal, "stopping");
                let report = tree.stop().await;
                if !report.is_clean() {
                    tracing::warn!(%report, "stopped, not cleanly");
                }
                return 0;
            }
            Event::Signal(None) => {
                tracing::error!("the signal stream ended; stopping");
                tree.stop().await;
                return EXIT_FAILURE;
            }
        }
    }
}

enum Event {
    Ended(State),
    Signal(Option<Signal>),
}

/// SIGHUP: the configuration first (whole or not at all), then the tree's reload hooks.
async fn reload(
    config: &Config,
    tree: &ServiceHandle,
    settings: &crate::config::Live<RunnerSettings>,
    logs: &logging::Logs,
) {
    match config.reload() {
        Ok(changed) => tracing::info!(?changed, "configuration reloaded"),
        Err(err) => {
            tracing::error!(error = %err, "configuration rejected; the old one stays in force");
            return;
        }
    }
    if let Err(err) = logs.apply(&settings.get()) {
        tracing::error!(%err, "log settings not applied");
    }
    match tree.reload().await {
        Ok(()) => tracing::info!("services reloaded"),
        Err(failure) => tracing::error!(%failure, "a service failed to reload"),
    }
}

/// `config`: one block per setting.
fn print_settings(config: &Config) {
    for entry in config.entries() {
        let shown = |value: &Option<toml::Value>| {
            value
                .as_ref()
                .map_or_else(|| "(unset)".to_owned(), ToString::to_string)
        };
        println!("{} = {}", entry.info.path, shown(&entry.value));
        println!(
            "    type: {}    default: {}    source: {}",
            entry.info.type_name,
            shown(&entry.info.default),
            entry.source
        );
        if !entry.info.help.is_empty() {
            println!("    {}", entry.info.help);
        }
    }
}
