//! The runner on the backend chosen at build time; see [`ginkgo_runner`] for the command line
//! it gives a program.
//!
//! # Examples
//!
//! ```no_run
//! use ginkgo::runner::Runner;
//! use ginkgo::service::Service;
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

pub use ginkgo_runner::{
    EXIT_CONFIG, EXIT_FAILURE, EXIT_NOT_RUNNING, ListenFds, LogFormat, Notifier, Paths,
    RunnerSettings, pidfile,
};

/// Runs a ginkgo program: parses the command line, loads the configuration, and runs the
/// command; see [`ginkgo_runner::Runner`].
pub type Runner = ginkgo_runner::Runner<crate::Backend>;

/// A settings layer kept in a key-value store bucket and watched (network configuration); see
/// [`ginkgo_runner::KvSettings`].
pub type KvSettings = ginkgo_runner::KvSettings<crate::Backend>;
