//! The ginkgo-rs guide, compiled.
//!
//! The book lives in `src/` in mdBook's layout (`mdbook build guide` renders it). Each chapter is
//! included here as the documentation of a module, so `cargo test --workspace` compiles and runs
//! every Rust block of the guide as a doc test: a snippet that stops compiling, or stops doing what
//! its text says, fails the tests. Blocks marked `no_run` are compiled only, and each says why
//! beside it (they need an outside server, or they would run until stopped).

#[doc = include_str!("src/introduction.md")]
pub mod introduction {}
#[doc = include_str!("src/quickstart.md")]
pub mod quickstart {}
#[doc = include_str!("src/services.md")]
pub mod services {}
#[doc = include_str!("src/supervision.md")]
pub mod supervision {}
#[doc = include_str!("src/settings.md")]
pub mod settings {}
#[doc = include_str!("src/runner.md")]
pub mod runner {}
#[doc = include_str!("src/servers.md")]
pub mod servers {}
#[doc = include_str!("src/upgrade.md")]
pub mod upgrade {}
#[doc = include_str!("src/distributed.md")]
pub mod distributed {}
#[doc = include_str!("src/backends.md")]
pub mod backends {}
#[doc = include_str!("src/coming_from.md")]
pub mod coming_from {}
