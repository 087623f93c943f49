//! `ginkgo-bench`: measures ginkgo-rs against the native runtimes it runs on.
//!
//! ```text
//! cargo run --release -p ginkgo-bench -- runtime [--backend NAME] [--runs N]
//! cargo run --release -p ginkgo-bench -- lifecycle [--backend NAME] [--runs N]
//! ```
//!
//! Each subcommand prints a Markdown table on standard output and its progress on standard
//! error. See `BENCHMARKS.md` at the repository root for recorded results.

mod lifecycle;
mod runtime;
mod stats;

use std::process::ExitCode;

/// The subcommands, for error messages.
const SUBCOMMANDS: &[&str] = &["runtime", "lifecycle"];

const USAGE: &str = "\
usage: ginkgo-bench <SUBCOMMAND> [OPTIONS]

subcommands:
  runtime    spawn/join and TCP echo, ginkgo vs. each backend's native API
             options: --backend tokio|async-std|smol|threads   --runs N (default 7)
  lifecycle  start+stop of service trees vs. tokio-graceful-shutdown; memory per service
             options: --backend tokio|async-std|smol|threads   --runs N (default 5)";

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let result = match args.next().as_deref() {
        Some("runtime") => match runtime::Options::parse(args) {
            Ok(options) => return runtime::run(&options),
            Err(message) => Err(message),
        },
        Some("lifecycle") => match lifecycle::Options::parse(args) {
            Ok(options) => return lifecycle::run(&options),
            Err(message) => Err(message),
        },
        Some("-h" | "--help" | "help") => {
            println!("{USAGE}");
            Ok(())
        }
        Some(other) => Err(format!(
            "unknown subcommand `{other}` (valid: {})",
            SUBCOMMANDS.join(", ")
        )),
        None => Err(format!(
            "missing subcommand (valid: {})",
            SUBCOMMANDS.join(", ")
        )),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("ginkgo-bench: {message}");
            eprintln!("\n{USAGE}");
            ExitCode::from(2)
        }
    }
}
