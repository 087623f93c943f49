//! Logging through tracing-subscriber: standard error, which is the log file for a daemon;
//! the filter is reloadable and the file can be reopened after logrotate.

use std::io::IsTerminal;
use std::path::Path;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Registry, reload};

use super::settings::{LogFormat, RunnerSettings};

/// The validator of `loglevel`.
pub(super) fn check_filter(directive: &String) -> Result<(), String> {
    EnvFilter::builder()
        .parse(directive)
        .map(drop)
        .map_err(|err| {
            format!("not a valid log filter ({err}); try \"info\" or \"warn,my_crate=debug\"")
        })
}

/// The installed subscriber's handle for changing the filter on reload.
pub(super) struct Logs {
    filter: reload::Handle<EnvFilter, Registry>,
    format: LogFormat,
}

/// Installs the process-wide subscriber writing to standard error.
pub(super) fn install(settings: &RunnerSettings) -> Result<Logs, String> {
    let filter = EnvFilter::builder()
        .parse(&settings.loglevel)
        .map_err(|err| err.to_string())?;
    let (filter, handle) = reload::Layer::new(filter);
    let registry = tracing_subscriber::registry().with(filter);
    let installed = if settings.logformat == LogFormat::Json {
        registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_writer(std::io::stderr),
            )
            .try_init()
    } else {
        registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_ansi(std::io::stderr().is_terminal())
                    .with_writer(std::io::stderr),
            )
            .try_init()
    };
    installed.map_err(|err| err.to_string())?;
    log_panics();
    Ok(Logs {
        filter: handle,
        format: settings.logformat,
    })
}

/// Writes panics as log events (one line, in the log's format) in place of the default
/// hook's text on standard error, which would break a JSON log. Nothing is lost: a panic in
/// a hook or a task is contained and fails its service, which is logged with the message; this
/// line adds where it happened, and the backtrace when `RUST_BACKTRACE` asks for one.
fn log_panics() {
    std::panic::set_hook(Box::new(|info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
            .unwrap_or("(a panic payload that is not text)");
        let location = info.location().map_or_else(String::new, |at| {
            format!("{}:{}:{}", at.file(), at.line(), at.column())
        });
        let thread = std::thread::current();
        let thread = thread.name().unwrap_or("unnamed");
        let backtrace = std::backtrace::Backtrace::capture();
        if backtrace.status() == std::backtrace::BacktraceStatus::Captured {
            tracing::error!(panic = message, location, thread, %backtrace, "panicked");
        } else {
            tracing::error!(panic = message, location, thread, "panicked");
        }
    }));
}

impl Logs {
    /// Applies reloaded settings: the filter changes at once; the format needs a restart.
    pub(super) fn apply(&self, settings: &RunnerSettings) -> Result<(), String> {
        let filter = EnvFilter::builder()
            .parse(&settings.loglevel)
            .map_err(|err| err.to_string())?;
        self.filter.reload(filter).map_err(|err| err.to_string())?;
        if settings.logformat != self.format {
            tracing::warn!(
                from = %self.format,
                to = %settings.logformat,
                "logformat changes take effect at the next start"
            );
        }
        Ok(())
    }
}

/// Opens the log file for appending (mode 0640).
pub(super) fn open_logfile(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o640)
        .open(path)
}

/// SIGUSR1: reopens the log file and points standard output and error at it, so that after
/// logrotate moved the old file, new lines go to a new one.
pub(super) fn reopen(path: &Path) -> std::io::Result<()> {
    let file = open_logfile(path)?;
    rustix::stdio::dup2_stdout(&file)?;
    rustix::stdio::dup2_stderr(&file)?;
    Ok(())
}
