//! A program whose root service takes `stubborn.stop_delay` to stop: the runner's stop tests
//! use it to check `stop_timeout` and the second SIGINT. With `stubborn.panic = true` a task
//! of it panics once started (the logging tests check how the panic is written).

use std::process::ExitCode;

use ginkgo::Settings;
use ginkgo::config::{Duration, Live};
use ginkgo::runner::Runner;
use ginkgo::service::{Context, Error, Options, Service};

/// Settings of the stubborn service.
#[derive(Settings)]
#[settings(group = "stubborn")]
struct StubbornSettings {
    /// How long the stop hook takes.
    #[setting(default = Duration::from_secs(3600))]
    stop_delay: Duration,
    /// Whether a task panics once the service has started.
    #[setting(default = false)]
    panic: bool,
}

struct Stubborn {
    settings: Live<StubbornSettings>,
}

#[ginkgo::async_trait]
impl Service for Stubborn {
    fn options(&self) -> Options {
        // The service's own limit is generous: the runner's stop_timeout is what is tested.
        Options::default().stop_timeout(std::time::Duration::from_secs(7200))
    }

    async fn start(&mut self, ctx: &Context) -> Result<(), Error> {
        if self.settings.get().panic {
            let ready = ctx.handle();
            ctx.spawn("doomed", async move {
                ready.wait_for(ginkgo::service::State::Ready).await;
                panic!("a test panic, as planned");
            });
        }
        Ok(())
    }

    async fn stop(&mut self, ctx: &Context) -> Result<(), Error> {
        ginkgo::tracing::info!("stop hook started");
        ctx.sleep(self.settings.get().stop_delay.0).await;
        ginkgo::tracing::info!("stop hook finished");
        Ok(())
    }
}

fn main() -> ExitCode {
    Runner::new("stubborn").run(|config| {
        Ok(Stubborn {
            settings: config.get()?,
        })
    })
}
