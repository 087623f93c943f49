//! Settings the Trac way: declared beside the code, typed, documented, layered, live.
//!
//! - **Declare** a group of settings with `#[derive(Settings)]` on a struct: each field is a
//!   setting under the group's dotted path, with its doc comment as help and a default. Every
//!   declared setting in the program is registered at link time, so the program can list them
//!   all ([`settings`], [`template`], [`Config::entries`]).
//! - **Layers**, each value remembering its [`Source`]: defaults < the TOML file < the
//!   environment (`PROGRAM_GROUP__KEY`, see [`env_prefix`]) < `--set PATH=VALUE` < values
//!   forced with [`Config::force`]. Command-line and forced values survive reloads.
//! - **Checks**: syntax errors name file, line and column; type errors name the path and the
//!   expected type; unknown keys are errors with a "did you mean"; validators report path and
//!   reason. All problems are reported at once, and nothing falls back to a default silently.
//! - **Live values**: [`Live::get`] is a lock-free load of the current values;
//!   [`Live::changed`] waits for a reload that changes them.
//! - **Reload** ([`Config::reload`]) re-reads the same sources, checks everything, and swaps the
//!   new configuration in whole, or keeps the old one and returns the error.
//!
//! # Examples
//!
//! ```
//! use ginkgo_config::{Config, Settings};
//! use ginkgo_macros::Settings;
//!
//! /// Settings of the number server.
//! #[derive(Settings, serde::Serialize, serde::Deserialize)]
//! #[settings(group = "numbers", crate = ginkgo_config)]
//! struct Numbers {
//!     /// How many numbers to send each minute.
//!     #[setting(default = 60, validate = positive)]
//!     rate_per_minute: u32,
//! }
//!
//! fn positive(n: &u32) -> Result<(), String> {
//!     if *n > 0 { Ok(()) } else { Err("must be at least 1".into()) }
//! }
//!
//! let config = Config::builder("demo").no_env().load()?;
//! assert_eq!(config.get::<Numbers>()?.get().rate_per_minute, 60);
//!
//! let err = Config::builder("demo").no_env().set("numbers.rate_per_minut=5").load().unwrap_err();
//! assert_eq!(
//!     err.to_string(),
//!     "command line --set: unknown setting numbers.rate_per_minut (did you mean numbers.rate_per_minute?)"
//! );
//! # Ok::<(), ginkgo_config::ConfigError>(())
//! ```

mod duration;
mod error;
mod file_mode;
mod live;
mod load;
mod registry;
mod source;
mod template;

pub use duration::Duration;
pub use error::{ConfigError, IoError, Problem};
pub use file_mode::FileMode;
pub use live::{Config, ConfigBuilder, Entry, Live, env_prefix};
pub use registry::{SettingInfo, Values, settings};
pub use source::Source;
pub use template::template;

/// A group of settings; implemented by `#[derive(Settings)]`, not by hand.
pub trait Settings: Sized + Send + Sync + 'static {
    /// The group's dotted path ("" for top-level settings).
    const GROUP: &'static str;

    /// The group's settings, with their defaults and help.
    fn settings() -> Vec<SettingInfo>;

    /// Builds the group from merged values, checking types and validators.
    ///
    /// # Errors
    ///
    /// Every problem with the group's values.
    fn from_values(values: &Values) -> Result<Self, ConfigError>;
}

/// What `#[derive(Settings)]` expands to. Not a public API.
#[doc(hidden)]
pub mod __private {
    pub use super::registry::{Group, SettingInfo, Validator, Values, read, to_value};
    pub use inventory;

    /// Wraps the problems found in one group.
    pub fn errors(problems: Vec<super::Problem>) -> super::ConfigError {
        super::ConfigError::new(problems)
    }
}
