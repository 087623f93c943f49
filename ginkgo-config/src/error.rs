//! Configuration errors: each problem names where it came from and what to fix.

use std::fmt;
use std::io;
use std::sync::Arc;

use super::source::Source;

/// Everything wrong with a configuration, all problems at once (a user fixes them in one go).
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigError {
    problems: Vec<Problem>,
}

/// One thing wrong with a configuration.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Problem {
    /// A file could not be read.
    Io {
        /// The file.
        file: String,
        /// The error reading it, with its kind and OS error code.
        error: IoError,
    },
    /// A file is not valid TOML.
    Syntax {
        /// The file.
        file: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// The parser's message.
        message: String,
    },
    /// A value does not have the setting's type.
    Type {
        /// The setting's dotted path.
        path: String,
        /// The type the setting expects.
        expected: String,
        /// What was found instead.
        found: String,
        /// Where the value came from.
        source: Source,
    },
    /// A key that no setting declares.
    Unknown {
        /// The key's dotted path.
        path: String,
        /// A declared path close to it.
        suggestion: Option<String>,
        /// Where it came from.
        source: Source,
    },
    /// A value that a validator rejected.
    Invalid {
        /// The setting's dotted path.
        path: String,
        /// The validator's reason.
        reason: String,
        /// Where the value came from.
        source: Source,
    },
    /// A `--set` argument or forced value that is not `PATH=VALUE`.
    BadAssignment {
        /// The argument.
        argument: String,
        /// Why it is wrong.
        reason: String,
    },
}

impl ConfigError {
    pub(crate) fn new(problems: Vec<Problem>) -> Self {
        debug_assert!(!problems.is_empty());
        Self { problems }
    }

    pub(crate) fn one(problem: Problem) -> Self {
        Self {
            problems: vec![problem],
        }
    }

    /// The problems, in the order they were found.
    pub fn problems(&self) -> &[Problem] {
        &self.problems
    }

    pub(crate) fn into_problems(self) -> Vec<Problem> {
        self.problems
    }
}

/// Prefixes a message with where the value came from, when that is a place in a file or an
/// environment variable.
fn located(f: &mut fmt::Formatter<'_>, source: &Source) -> fmt::Result {
    match source {
        Source::File { .. } | Source::Store { .. } | Source::Env { .. } | Source::CommandLine => {
            write!(f, "{source}: ")
        }
        Source::Default | Source::Forced => Ok(()),
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Io { file, error } => {
                write!(f, "cannot read config file {file}: {}", error.0)
            }
            Problem::Syntax {
                file,
                line,
                column,
                message,
            } => write!(f, "{file}:{line}:{column}: invalid TOML: {message}"),
            Problem::Type {
                path,
                expected,
                found,
                source,
            } => {
                located(f, source)?;
                write!(f, "{path}: expected {expected}, found {found}")
            }
            Problem::Unknown {
                path,
                suggestion,
                source,
            } => {
                located(f, source)?;
                write!(f, "unknown setting {path}")?;
                match suggestion {
                    Some(s) => write!(f, " (did you mean {s}?)"),
                    None => write!(f, " (`config` lists every setting)"),
                }
            }
            Problem::Invalid {
                path,
                reason,
                source,
            } => {
                located(f, source)?;
                write!(f, "{path}: {reason}")
            }
            Problem::BadAssignment { argument, reason } => {
                write!(f, "--set {argument:?}: {reason}")
            }
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.problems.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{problem}")?;
        }
        Ok(())
    }
}

/// The I/O error of [`Problem::Io`]; two are equal when their kind and message are.
#[derive(Debug, Clone)]
pub struct IoError(pub Arc<io::Error>);

impl PartialEq for IoError {
    fn eq(&self, other: &Self) -> bool {
        self.0.kind() == other.0.kind() && self.0.to_string() == other.0.to_string()
    }
}

impl std::error::Error for Problem {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Problem::Io { error, .. } => Some(&*error.0),
            _ => None,
        }
    }
}

/// Its source is the first problem (the whole list is in the message).
impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.problems
            .first()
            .map(|problem| problem as &(dyn std::error::Error + 'static))
    }
}
