//! The settings every ginkgo program has, and the paths derived from them.

use std::path::{Path, PathBuf};

use ginkgo_config::{Duration, FileMode};

/// Settings every ginkgo program has, at the top level (Ginkgo's built-in settings).
#[derive(ginkgo_macros::Settings, Debug)]
#[settings(crate = ginkgo_config)]
pub struct RunnerSettings {
    /// The pid file, locked while the program runs. Unset: RUNDIR/PROGRAM.pid.
    pub pidfile: Option<PathBuf>,
    /// Where a daemon writes its log (`log` and `logtail` read it). Unset:
    /// RUNDIR/PROGRAM.log. In the foreground the log goes to standard error.
    pub logfile: Option<PathBuf>,
    /// Which log lines to keep: a tracing filter directive such as "info" or
    /// "warn,my_crate=debug". Reloaded on SIGHUP.
    #[setting(default = "info", validate = super::logging::check_filter)]
    pub loglevel: String,
    /// How log lines are written: "text" or "json".
    pub logformat: LogFormat,
    /// The directory a daemon runs in, and where its pid file, control socket and log go by
    /// default.
    #[setting(default = PathBuf::from("."))]
    pub rundir: PathBuf,
    /// The user to run as once the services have started (needs root to start).
    pub user: Option<String>,
    /// The group to run as (default: the user's primary group).
    pub group: Option<String>,
    /// The file mode mask of a daemon, in octal, such as "0o027" (at most 0o777).
    #[setting(default = FileMode(0o027), validate = check_umask)]
    pub umask: FileMode,
    /// A directory to chroot into after the services have started (needs root).
    pub chroot: Option<PathBuf>,
    /// How long a graceful stop may take in all before the program exits anyway.
    #[setting(default = Duration::from_secs(10))]
    pub stop_timeout: Duration,
    /// How long the new process of an upgrade may take to start its services and be ready;
    /// past it, it is stopped and the running process goes on serving.
    #[setting(default = Duration::from_secs(60))]
    pub upgrade_timeout: Duration,
    /// How many worker processes serve the tree: 1 (one process, no master), a number, or
    /// "auto" for one per CPU. With more than one, a master binds the listeners and
    /// supervises the workers, each running the whole tree on those listeners.
    pub workers: Workers,
    /// At most this many worker restarts within `worker_restart_window`; one more and the
    /// master stops, naming the worker and why it exited.
    #[setting(default = 5)]
    pub worker_max_restarts: u32,
    /// The sliding window for `worker_max_restarts`.
    #[setting(default = Duration::from_secs(60))]
    pub worker_restart_window: Duration,
    /// Keep the listening sockets in systemd's file descriptor store (`FDSTORE=1`, each named
    /// by its service's path), so that when the program crashes and systemd starts it again,
    /// it gets them back and no connection attempt is refused in between. The unit needs
    /// `FileDescriptorStoreMax=` (at least the number of listeners).
    pub fd_store: bool,
}

/// The `workers` setting: how many worker processes serve the tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workers {
    /// This many workers (from 1 to 1024); 1, the default, is one process serving the tree
    /// itself, without a master.
    Count(u32),
    /// One worker per CPU the process may run on.
    Auto,
}

impl Default for Workers {
    fn default() -> Self {
        Workers::Count(1)
    }
}

impl Workers {
    /// How many workers this is on this machine (at least 1).
    pub fn count(self) -> u32 {
        match self {
            Workers::Count(n) => n.max(1),
            Workers::Auto => std::thread::available_parallelism()
                .map_or(1, |n| u32::try_from(n.get()).unwrap_or(u32::MAX)),
        }
    }

    /// Whether a master runs workers: `auto` always does (even on one CPU, so that the
    /// process layout does not depend on the machine), a count only above 1.
    pub fn prefork(self) -> bool {
        match self {
            Workers::Count(n) => n > 1,
            Workers::Auto => true,
        }
    }
}

impl std::fmt::Display for Workers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Workers::Count(n) => write!(f, "{n}"),
            Workers::Auto => f.write_str("auto"),
        }
    }
}

impl serde::Serialize for Workers {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Workers::Count(n) => s.serialize_u32(*n),
            Workers::Auto => s.serialize_str("auto"),
        }
    }
}

impl<'de> serde::Deserialize<'de> for Workers {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Workers;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a number of workers from 1 to 1024, or \"auto\" (one per CPU)")
            }
            fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<Workers, E> {
                match n {
                    1..=1024 => Ok(Workers::Count(u32::try_from(n).unwrap_or(1))),
                    _ => Err(E::custom(format!(
                        "{n} workers: expected a number from 1 to 1024, or \"auto\" (one per CPU)"
                    ))),
                }
            }
            fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<Workers, E> {
                self.visit_i64(i64::try_from(n).unwrap_or(i64::MAX))
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Workers, E> {
                match text.trim() {
                    "auto" => Ok(Workers::Auto),
                    number => match number.parse::<i64>() {
                        Ok(n) => self.visit_i64(n),
                        Err(_) => Err(E::custom(format!(
                            "{text:?}: expected a number of workers from 1 to 1024, or \"auto\" (one per CPU)"
                        ))),
                    },
                }
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// How the runner writes log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines (coloured on a terminal).
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

impl std::fmt::Display for LogFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        })
    }
}

fn check_umask(mask: &FileMode) -> Result<(), String> {
    if mask.0 <= 0o777 {
        Ok(())
    } else {
        Err(format!("must be at most 0o777, got {mask}"))
    }
}

/// The files a program uses, as absolute paths.
#[derive(Debug, Clone)]
pub struct Paths {
    /// The working directory of a daemon.
    pub rundir: PathBuf,
    /// The pid file.
    pub pidfile: PathBuf,
    /// The control socket, beside the pid file.
    pub socket: PathBuf,
    /// The daemon's log file.
    pub logfile: PathBuf,
}

impl Paths {
    /// Resolves the settings against the current directory.
    pub fn resolve(program: &str, settings: &RunnerSettings) -> Self {
        let cwd = crate::origin();
        let absolute = |path: &Path| -> PathBuf {
            if path.is_absolute() {
                path.to_owned()
            } else {
                cwd.join(path)
            }
        };
        let rundir = absolute(&settings.rundir);
        let pidfile = settings
            .pidfile
            .as_deref()
            .map_or_else(|| rundir.join(format!("{program}.pid")), absolute);
        let socket = pidfile.with_extension("sock");
        let logfile = settings
            .logfile
            .as_deref()
            .map_or_else(|| rundir.join(format!("{program}.log")), absolute);
        Self {
            rundir,
            pidfile,
            socket,
            logfile,
        }
    }
}

/// The paths and stop timeout for commands that talk to a running daemon (`stop`, `status`,
/// `reload`, `log`), read leniently when the configuration does not load: a typo in the file
/// must not prevent stopping the daemon. Only `pidfile`, `rundir`, `logfile` and
/// `stop_timeout` are taken, from the file's top level, the environment and `--set`, over the
/// declared defaults; any of them that is itself broken falls back to its default.
pub(super) fn lenient(
    program: &str,
    file: Option<&Path>,
    sets: &[String],
) -> Result<(Paths, std::time::Duration), ginkgo_config::ConfigError> {
    const KEYS: [&str; 4] = ["pidfile", "rundir", "logfile", "stop_timeout"];
    let mut assignments: Vec<String> = Vec::new();
    if let Some(table) = file
        .and_then(|file| std::fs::read_to_string(file).ok())
        .and_then(|text| text.parse::<toml::Table>().ok())
    {
        for (key, value) in table.iter().filter(|(k, _)| KEYS.contains(&k.as_str())) {
            let text = value
                .as_str()
                .map_or_else(|| value.to_string(), str::to_owned);
            assignments.push(format!("{key}={text}"));
        }
    }
    let prefix = ginkgo_config::env_prefix(program);
    for key in KEYS {
        if let Ok(value) = std::env::var(format!("{prefix}{}", key.to_uppercase())) {
            assignments.push(format!("{key}={value}"));
        }
    }
    assignments.extend(
        sets.iter()
            .filter(|s| {
                s.split_once('=')
                    .is_some_and(|(k, _)| KEYS.contains(&k.trim()))
            })
            .cloned(),
    );
    let load = |assignments: &[String]| {
        let mut builder = ginkgo_config::Config::builder(program).no_env();
        for assignment in assignments {
            builder = builder.set(assignment.clone());
        }
        builder.load()?.get::<RunnerSettings>()
    };
    // Each value on its own over the defaults, so one broken value loses only itself.
    let defaults = load(&[])?.get();
    let mut usable = Vec::new();
    for assignment in assignments {
        let mut trial = usable.clone();
        trial.push(assignment);
        if load(&trial).is_ok() {
            usable = trial;
        }
    }
    let settings = load(&usable).map_or(defaults, |live| live.get());
    Ok((Paths::resolve(program, &settings), settings.stop_timeout.0))
}
