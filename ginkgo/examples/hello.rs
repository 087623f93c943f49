//! Ginkgo's quickstart: a service that logs a message at a configurable rate.
//!
//! ```text
//! cargo run --example hello                                   # logs "Hello World" every second
//! cargo run --example hello -- -s hello.rate_per_minute=120   # twice a second
//! cargo run --example hello -- config                         # every setting, value and source
//! cargo run --example hello -- config --template > hello.toml # a commented config file
//! cargo run --example hello -- -c hello.toml check            # validate it (exit 78 if bad)
//! HELLO_HELLO__MESSAGE=Bonjour cargo run --example hello      # from the environment
//! ```
//!
//! SIGHUP reloads `hello.toml`: a new message or rate takes effect at the next line; a broken
//! file is rejected and the old settings stay in force. Ctrl-C stops it.

use std::process::ExitCode;
use std::time::Duration;

use ginkgo::Settings;
use ginkgo::config::Live;
use ginkgo::runner::Runner;
use ginkgo::service::{Context, Error, Service};

/// Settings of the hello service.
#[derive(Settings)]
#[settings(group = "hello")]
struct HelloSettings {
    /// The message to log.
    #[setting(default = "Hello World")]
    message: String,
    /// How many times a minute to log it.
    #[setting(default = 60, validate = at_least_once)]
    rate_per_minute: u32,
}

fn at_least_once(rate: &u32) -> Result<(), String> {
    match rate {
        0 => Err("must be at least 1 (a rate of 0 would never log)".into()),
        _ => Ok(()),
    }
}

/// Logs its message at its rate, reading the settings afresh for every line.
struct Hello {
    settings: Live<HelloSettings>,
}

#[ginkgo::async_trait]
impl Service for Hello {
    async fn start(&mut self, ctx: &Context) -> Result<(), Error> {
        let settings = self.settings.clone();
        let shutdown = ctx.shutdown();
        let timer = ctx.clone();
        ctx.spawn("greeter", async move {
            loop {
                let now = settings.get();
                ginkgo::tracing::info!("{}", now.message);
                let pause = Duration::from_secs(60) / now.rate_per_minute;
                if shutdown.run(timer.sleep(pause)).await.is_none() {
                    return;
                }
            }
        });
        Ok(())
    }
}

fn main() -> ExitCode {
    Runner::new("hello")
        .version(env!("CARGO_PKG_VERSION"))
        .about("Logs a message at a configurable rate (Ginkgo's quickstart)")
        .run(|config| {
            Ok(Hello {
                settings: config.get()?,
            })
        })
}
