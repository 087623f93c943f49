//! `ginkgo-bench`: measures ginkgo-rs against the native runtimes it runs on.
//!
//! ```text
//! cargo run --release -p ginkgo-bench -- runtime [--backend NAME] [--runs N]
//! cargo run --release -p ginkgo-bench -- lifecycle [--backend NAME] [--runs N]
//! cargo run --release -p ginkgo-bench -- echo [--backend NAME] [--runs N]
//! cargo run --release -p ginkgo-bench -- http [--duration SECS] [--connections N]
//!                                             [--rounds N] [--backend NAME]
//! cargo run --release -p ginkgo-bench -- https [same options as http]
//! cargo run --release -p ginkgo-bench -- tls [--backend NAME] [--runs N]
//! cargo run --release -p ginkgo-bench -- upgrade [--handovers N] [--idle N] [--runs N]
//! cargo run --release -p ginkgo-bench -- bus [--runs N] [--messages N] [--requests N]
//! cargo run --release -p ginkgo-bench -- workers [--runs N] [--duration SECS]
//! cargo run --release -p ginkgo-bench -- plot [--results DIR] [--out FILE]
//! ```
//!
//! Each suite prints a Markdown table on standard output and its progress on standard error.
//! Every ratio compares two sides measured in the same round, and a table gives the median of
//! a run's per-round ratios with their min–max. With `--save [DIR]` a suite also writes those
//! figures to `DIR/SUITE.json` (default `bench/results/`), and with `--plot FILE` it draws them
//! as an SVG bar chart; `plot` draws every saved suite into one chart (default
//! `bench/ratios.svg`). See `BENCHMARKS.md` at the repository root for the current figures.

mod bus;
mod echo;
mod http;
mod lifecycle;
mod messages;
mod plot;
mod results;
mod runtime;
mod stats;
mod suite;
mod tls;
mod upgrade;
mod workers;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Measures ginkgo-rs against the native runtimes it runs on.
#[derive(Debug, Parser)]
#[command(
    name = "ginkgo-bench",
    after_help = "Each suite prints a Markdown table on standard output and its progress on \
                  standard error; --save writes its ratios to bench/results/SUITE.json, --plot \
                  FILE draws them. Build with --release. Current figures: BENCHMARKS.md."
)]
struct Cli {
    #[command(subcommand)]
    command: Bench,
}

/// The suites, and the internal commands their child processes run.
#[derive(Debug, Subcommand)]
enum Bench {
    /// spawn/join and TCP echo, ginkgo vs. each backend's native API
    Runtime(suite::Options),
    /// start+stop of service trees vs. tokio-graceful-shutdown; memory per service
    Lifecycle(lifecycle::Options),
    /// StreamServer echo vs. a native echo server on the same runtime
    Echo(suite::Options),
    /// HttpServer (the http example) on each backend vs. axum::serve on tokio, with wrk
    Http(http::Options),
    /// HttpServer with TLS on each backend vs. hyper + tokio-rustls on tokio, with h2load
    Https(http::Options),
    /// StreamServer with TLS: echo and handshakes vs. a tokio-rustls server on tokio
    Tls(suite::Options),
    /// upgrade and restart in a row under HTTP load; SIGTERM to exit with idle connections
    Upgrade(upgrade::Options),
    /// the bus over NATS vs plain async-nats (publish, request/reply); the in-process bus
    Bus(bus::Options),
    /// prefork workers: req/s with workers = 2 vs 1; a worker killed with SIGKILL under load
    Workers(workers::Options),
    /// draw the saved results of every suite (--save) as one SVG bar chart
    Plot(plot::Options),
    /// Internal: publishes COUNT messages of 64 B (or makes COUNT requests, with --requests)
    /// to the NATS server at URL through one side and exits, for counting instructions per
    /// operation (bench/tools/bus-instructions.sh).
    #[command(hide = true)]
    BusPublish {
        #[arg(value_parser = clap::builder::PossibleValuesParser::new(bus::PUBLISHERS))]
        side: String,
        url: String,
        count: usize,
        /// Request/reply round trips (to a responder in this process) instead of publishes.
        #[arg(long)]
        requests: bool,
    },
    /// Internal: one server of the `http` or `https` suite, in its own process.
    #[command(hide = true)]
    HttpServe {
        #[arg(value_parser = clap::builder::PossibleValuesParser::new(http::SERVERS))]
        server: String,
        /// Serve HTTPS with this certificate chain (PEM).
        #[arg(long, requires = "key")]
        cert: Option<std::path::PathBuf>,
        /// The certificate's private key (PEM).
        #[arg(long, requires = "cert")]
        key: Option<std::path::PathBuf>,
    },
}

fn main() -> ExitCode {
    // The `upgrade` suite's daemon: the runner's own command line, not the bench's.
    if std::env::var_os(upgrade::DAEMON).is_some() {
        return upgrade::daemon_main();
    }
    // clap prints usage errors with the usage and exits 2, and --help / help with 0.
    match Cli::parse().command {
        Bench::Runtime(options) => suite::run(&runtime::SUITE, &options),
        Bench::Lifecycle(options) => lifecycle::run(&options),
        Bench::Echo(options) => suite::run(&echo::SUITE, &options),
        Bench::Http(options) => http::run(&options),
        Bench::Https(options) => http::run_tls(&options),
        Bench::Tls(options) => suite::run(&tls::SUITE, &options),
        Bench::Upgrade(options) => upgrade::run(&options),
        Bench::Workers(options) => workers::run(&options),
        Bench::Bus(options) => bus::run(&options),
        Bench::Plot(options) => plot::run(&options),
        Bench::BusPublish {
            side,
            url,
            count,
            requests,
        } => bus::publish_main(&side, &url, count, requests),
        Bench::HttpServe { server, cert, key } => http::serve_main(&server, cert.zip(key)),
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    fn parse(args: &[&str]) -> Result<Bench, clap::Error> {
        Cli::try_parse_from(std::iter::once("ginkgo-bench").chain(args.iter().copied()))
            .map(|cli| cli.command)
    }

    fn rejected(args: &[&str]) -> clap::error::ErrorKind {
        parse(args).expect_err("rejected").kind()
    }

    #[test]
    fn the_command_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn suites_default_to_every_backend_and_their_run_counts() {
        for (name, runs) in [("runtime", 7), ("echo", 7)] {
            let (Bench::Runtime(options) | Bench::Echo(options)) = parse(&[name]).unwrap() else {
                panic!("{name} parsed as another subcommand");
            };
            assert_eq!((options.backend, options.runs), (None, runs));
            assert!(!options.rows_only);
            assert_eq!(options.output, results::Output::default());
        }
        let Bench::Lifecycle(options) = parse(&["lifecycle"]).unwrap() else {
            panic!("lifecycle");
        };
        assert_eq!(
            (options.backend, options.runs, options.memory),
            (None, 5, None)
        );
        let Bench::Http(options) = parse(&["http"]).unwrap() else {
            panic!("http");
        };
        assert_eq!(
            (options.duration, options.connections, options.rounds),
            (5, 64, 5)
        );
        assert_eq!(options.backend, None);
    }

    #[test]
    fn every_suite_saves_and_plots() {
        use std::path::Path;
        let suites: [&[&str]; 9] = [
            &["runtime"],
            &["lifecycle"],
            &["echo"],
            &["http"],
            &["https"],
            &["tls"],
            &["upgrade"],
            &["bus"],
            &["workers"],
        ];
        for suite in suites {
            let args = [suite, &["--save", "out", "--plot", "chart.svg"]].concat();
            let output = match parse(&args).unwrap_or_else(|err| panic!("{args:?}: {err}")) {
                Bench::Runtime(o) | Bench::Echo(o) | Bench::Tls(o) => o.output,
                Bench::Lifecycle(o) => o.output,
                Bench::Http(o) | Bench::Https(o) => o.output,
                Bench::Upgrade(o) => o.output,
                Bench::Bus(o) => o.output,
                Bench::Workers(o) => o.output,
                other => panic!("{args:?} parsed as {other:?}"),
            };
            assert_eq!(output.save.as_deref(), Some(Path::new("out")), "{args:?}");
            assert_eq!(output.plot.as_deref(), Some(Path::new("chart.svg")));
        }
        // `--save` alone: the repository's results directory.
        let Bench::Echo(options) = parse(&["echo", "--save", "--runs", "3"]).unwrap() else {
            panic!("echo");
        };
        assert_eq!(
            options.output.save.as_deref(),
            Some(Path::new("bench/results"))
        );
        assert_eq!(options.runs, 3);
        let Bench::Plot(options) = parse(&["plot"]).unwrap() else {
            panic!("plot");
        };
        assert_eq!(
            (options.results.to_str(), options.out.to_str()),
            (Some("bench/results"), Some("bench/ratios.svg"))
        );
        let Bench::Plot(options) =
            parse(&["plot", "--results", "r", "--out", "ratios.svg"]).unwrap()
        else {
            panic!("plot");
        };
        assert_eq!(
            (options.results.to_str(), options.out.to_str()),
            (Some("r"), Some("ratios.svg"))
        );
        assert_eq!(
            rejected(&["plot", "--runs", "3"]),
            clap::error::ErrorKind::UnknownArgument
        );
    }

    #[test]
    fn options_are_read() {
        let Bench::Echo(options) =
            parse(&["echo", "--backend", "async-std", "--runs", "3"]).unwrap()
        else {
            panic!("echo");
        };
        assert_eq!(options.backend, Some(suite::Backend::AsyncStd));
        assert_eq!(options.runs, 3);
        let Bench::Lifecycle(options) =
            parse(&["lifecycle", "--backend", "threads", "--runs", "2"]).unwrap()
        else {
            panic!("lifecycle");
        };
        assert_eq!(
            (options.backend.as_deref(), options.runs),
            (Some("threads"), 2)
        );
        let Bench::Http(options) = parse(&[
            "http",
            "--duration",
            "60",
            "--connections",
            "2",
            "--rounds",
            "20",
            "--backend",
            "smol",
        ])
        .unwrap() else {
            panic!("http");
        };
        assert_eq!(
            (options.duration, options.connections, options.rounds),
            (60, 2, 20)
        );
        assert_eq!(options.backend.as_deref(), Some("smol"));
        // As with the hand-written parser before: a repeated option, the last one counts.
        let Bench::Runtime(options) = parse(&["runtime", "--runs", "3", "--runs", "4"]).unwrap()
        else {
            panic!("runtime");
        };
        assert_eq!(options.runs, 4);
    }

    #[test]
    fn what_the_child_processes_are_started_with_parses() {
        // suite::run_child, lifecycle::memory_child and http's Server::start.
        let Bench::Runtime(options) = parse(&[
            "runtime",
            "--rows-only",
            "--backend",
            "tokio",
            "--runs",
            "7",
        ])
        .unwrap() else {
            panic!("runtime");
        };
        assert!(options.rows_only);
        assert_eq!(options.backend, Some(suite::Backend::Tokio));
        let Bench::Lifecycle(options) = parse(&["lifecycle", "--memory", "baseline"]).unwrap()
        else {
            panic!("lifecycle");
        };
        assert_eq!(options.memory.as_deref(), Some("baseline"));
        for server in http::SERVERS {
            let Bench::HttpServe {
                server: parsed,
                cert: None,
                key: None,
            } = parse(&["http-serve", server]).unwrap()
            else {
                panic!("http-serve");
            };
            assert_eq!(parsed, server);
        }
        let Bench::HttpServe { cert, key, .. } =
            parse(&["http-serve", "smol", "--cert", "c.pem", "--key", "k.pem"]).unwrap()
        else {
            panic!("http-serve with TLS");
        };
        assert_eq!(
            (cert.unwrap().to_str(), key.unwrap().to_str()),
            (Some("c.pem"), Some("k.pem"))
        );
        assert_eq!(
            rejected(&["http-serve", "smol", "--cert", "c.pem"]),
            clap::error::ErrorKind::MissingRequiredArgument
        );
        let Bench::Upgrade(options) = parse(&["upgrade"]).unwrap() else {
            panic!("upgrade");
        };
        assert_eq!(
            (
                options.handovers,
                options.idle,
                options.runs,
                options.workers
            ),
            (5, 10_000, 5, 1)
        );
        let Bench::Workers(options) = parse(&["workers"]).unwrap() else {
            panic!("workers");
        };
        assert_eq!(
            (options.runs, options.duration, options.connections),
            (3, 5, 64)
        );
        assert_eq!(
            rejected(&["upgrade", "--handovers", "0"]),
            clap::error::ErrorKind::ValueValidation
        );
        let Bench::Https(options) = parse(&["https", "--backend", "smol"]).unwrap() else {
            panic!("https");
        };
        assert_eq!(options.backend.as_deref(), Some("smol"));
    }

    #[test]
    fn bad_values_are_usage_errors() {
        use clap::error::ErrorKind::*;
        assert_eq!(rejected(&[]), DisplayHelpOnMissingArgumentOrSubcommand);
        assert_eq!(rejected(&["fast"]), InvalidSubcommand);
        assert_eq!(rejected(&["runtime", "--runs", "0"]), ValueValidation);
        assert_eq!(rejected(&["runtime", "--runs", "many"]), ValueValidation);
        assert_eq!(rejected(&["runtime", "--backend", "glommio"]), InvalidValue);
        assert_eq!(
            rejected(&["lifecycle", "--backend", "glommio"]),
            InvalidValue
        );
        assert_eq!(rejected(&["echo", "--duration", "5"]), UnknownArgument);
        assert_eq!(rejected(&["http", "--duration", "61"]), ValueValidation);
        assert_eq!(rejected(&["http", "--connections", "1"]), ValueValidation);
        assert_eq!(rejected(&["http", "--rounds", "21"]), ValueValidation);
        assert_eq!(rejected(&["http", "--runs", "3"]), UnknownArgument);
        assert_eq!(rejected(&["http-serve", "nginx"]), InvalidValue);
        assert_eq!(rejected(&["runtime", "--runs"]), InvalidValue);
        for help in [&["--help"][..], &["help"], &["http", "--help"]] {
            assert_eq!(rejected(help), DisplayHelp);
        }
    }

    #[test]
    fn help_names_the_suites_and_their_options_but_not_the_internals() {
        let help = Cli::command().render_long_help().to_string();
        for suite in ["runtime", "lifecycle", "echo", "http", "plot"] {
            assert!(help.contains(&format!("  {suite} ")), "{help}");
        }
        assert!(!help.contains("http-serve"), "{help}");
        let mut command = Cli::command();
        let runtime = command
            .find_subcommand_mut("runtime")
            .unwrap()
            .render_long_help()
            .to_string();
        for text in ["--backend", "async-std", "--runs", "[default: 7]"] {
            assert!(runtime.contains(text), "{runtime}");
        }
        assert!(!runtime.contains("rows-only"), "{runtime}");
        assert!(!runtime.contains("results-to"), "{runtime}");
        for text in ["--save [<DIR>]", "--plot <FILE>"] {
            assert!(runtime.contains(text), "{runtime}");
        }
        let lifecycle = command
            .find_subcommand_mut("lifecycle")
            .unwrap()
            .render_long_help()
            .to_string();
        assert!(lifecycle.contains("[default: 5]"), "{lifecycle}");
        assert!(!lifecycle.contains("--memory"), "{lifecycle}");
        let http = command
            .find_subcommand_mut("http")
            .unwrap()
            .render_long_help()
            .to_string();
        for text in [
            "--duration <SECS>",
            "--connections <N>",
            "--rounds <N>",
            "--backend",
        ] {
            assert!(http.contains(text), "{http}");
        }
    }
}
