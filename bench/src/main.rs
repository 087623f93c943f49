//! `ginkgo-bench`: measures ginkgo-rs against the native runtimes it runs on.
//!
//! ```text
//! cargo run --release -p ginkgo-bench -- runtime [--backend NAME] [--runs N]
//! cargo run --release -p ginkgo-bench -- lifecycle [--backend NAME] [--runs N]
//! cargo run --release -p ginkgo-bench -- echo [--backend NAME] [--runs N]
//! cargo run --release -p ginkgo-bench -- http [--duration SECS] [--connections N]
//! ```
//!
//! Each subcommand prints a Markdown table on standard output and its progress on standard
//! error. See `BENCHMARKS.md` at the repository root for recorded results.

mod echo;
mod http;
mod lifecycle;
mod messages;
mod runtime;
mod stats;
mod suite;

use std::process::ExitCode;

/// The subcommands, for error messages.
const SUBCOMMANDS: &[&str] = &["runtime", "lifecycle", "echo", "http"];

const USAGE: &str = "\
usage: ginkgo-bench <SUBCOMMAND> [OPTIONS]

subcommands:
  runtime    spawn/join and TCP echo, ginkgo vs. each backend's native API
             options: --backend tokio|async-std|smol|threads   --runs N (default 7)
  lifecycle  start+stop of service trees vs. tokio-graceful-shutdown; memory per service
             options: --backend tokio|async-std|smol|threads   --runs N (default 5)
  echo       StreamServer echo vs. a native echo server on the same runtime
             options: --backend tokio|async-std|smol|threads   --runs N (default 7)
  http       HttpServer (the http example) on each backend vs. axum::serve on tokio, with wrk
             options: --duration SECS (default 5)   --connections N (default 64)
                      --rounds N (default 5)   --backend tokio|smol|async-std|threads";

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let result = match args.next().as_deref() {
        Some("runtime") => match suite::Options::parse(&runtime::SUITE, args) {
            Ok(options) => return suite::run(&runtime::SUITE, &options),
            Err(message) => Err(message),
        },
        Some("lifecycle") => match lifecycle::Options::parse(args) {
            Ok(options) => return lifecycle::run(&options),
            Err(message) => Err(message),
        },
        Some("echo") => match suite::Options::parse(&echo::SUITE, args) {
            Ok(options) => return suite::run(&echo::SUITE, &options),
            Err(message) => Err(message),
        },
        Some("http") => match http::Options::parse(args) {
            Ok(options) => return http::run(&options),
            Err(message) => Err(message),
        },
        // Internal: one server of the `http` suite, in its own process.
        Some("http-serve") => return http::serve_main(args),
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
