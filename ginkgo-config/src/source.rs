//! Where a value came from.

use std::fmt;
use std::sync::Arc;

/// The layer a value came from, with its place where that helps: defaults < file < store
/// (a key-value store's layer, [`Config::set_layer`](super::Config::set_layer)) < environment
/// < command line < forced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The setting's declared default.
    Default,
    /// A config file, at a 1-based line and column.
    File {
        /// The file's path as given.
        file: Arc<str>,
        /// Line of the value.
        line: usize,
        /// Column of the value.
        column: usize,
    },
    /// A key of a key-value store's layer: shown as `kv:bucket/key`.
    Store {
        /// The store and bucket, such as `kv:settings`.
        store: Arc<str>,
        /// The key (the setting's path).
        key: String,
    },
    /// An environment variable.
    Env {
        /// Its name.
        var: String,
    },
    /// A `--set PATH=VALUE` argument (forced: it survives reloads of the file).
    CommandLine,
    /// Forced by the program with [`Config::force`](super::Config::force).
    Forced,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Default => f.write_str("default"),
            Source::File { file, line, column } => write!(f, "{file}:{line}:{column}"),
            Source::Store { store, key } => write!(f, "{store}/{key}"),
            Source::Env { var } => write!(f, "environment {var}"),
            Source::CommandLine => f.write_str("command line --set"),
            Source::Forced => f.write_str("forced"),
        }
    }
}
