//! Ginkgo's tutorial: a NumberServer that sends every connection a random integer from 0 to
//! 10 per line at `numbers.rate_per_minute`, and a NumberClient that reads and logs them,
//! composed in one tree.
//!
//! ```text
//! cargo run --example numbers                                   # server on numbers.bind, plus its client
//! cargo run --example numbers -- -s numbers.client=false        # the server alone
//! nc 127.0.0.1 7776                                             # watch the numbers
//! ```
//!
//! The rate is read afresh for every line: edit it in the config file and send SIGHUP (or run
//! `numbers -c FILE reload`), and every open connection speeds up or slows down at once.

use std::process::ExitCode;
use std::time::Duration;

use ginkgo::Settings;
use ginkgo::config::Live;
use ginkgo::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use ginkgo::runner::Runner;
use ginkgo::server::{ClientConnection, Connection, StreamClient, StreamServer};
use ginkgo::service::{Context, Restart, Service};

/// Settings of the number server and client.
#[derive(Settings)]
#[settings(group = "numbers")]
struct NumbersSettings {
    /// The address the server listens on and the client connects to.
    #[setting(default = "127.0.0.1:7776")]
    bind: String,
    /// How many numbers each connection gets per minute; a reload changes it live.
    #[setting(default = 60, validate = at_least_once)]
    rate_per_minute: u32,
    /// Whether to also run the NumberClient, which logs what it receives.
    #[setting(default = true)]
    client: bool,
}

fn at_least_once(rate: &u32) -> Result<(), String> {
    match rate {
        0 => Err("must be at least 1".into()),
        _ => Ok(()),
    }
}

/// Sends random numbers at the current rate until the peer goes or the server stops.
async fn send_numbers(
    mut conn: Connection,
    settings: Live<NumbersSettings>,
) -> std::io::Result<()> {
    loop {
        let number = fastrand::u8(0..=10);
        conn.stream
            .write_all(format!("{number}\n").as_bytes())
            .await?;
        let pause = Duration::from_secs(60) / settings.get().rate_per_minute;
        if conn
            .shutdown
            .run(ginkgo::time::sleep(pause))
            .await
            .is_none()
        {
            return Ok(());
        }
    }
}

/// Logs every number the server sends.
async fn read_numbers(conn: ClientConnection) -> std::io::Result<()> {
    let mut lines = BufReader::new(conn.stream).lines();
    while let Some(line) = ginkgo::stream::StreamExt::next(&mut lines).await {
        ginkgo::tracing::info!(number = %line?, "received");
    }
    Ok(())
}

/// The tree: the server, then (if enabled) the client, which the tree restarts if it fails.
struct Numbers {
    settings: Live<NumbersSettings>,
}

#[ginkgo::async_trait]
impl Service for Numbers {
    fn init(&mut self, ctx: &Context) {
        let now = self.settings.get();
        let settings = self.settings.clone();
        ctx.add_child(StreamServer::new(
            "server",
            now.bind.as_str(),
            move |conn| send_numbers(conn, settings.clone()),
        ));
        if now.client {
            let bind = now.bind.clone();
            ctx.supervise(Restart::Permanent, move || {
                StreamClient::new("client", &bind, read_numbers)
            });
        }
    }
}

fn main() -> ExitCode {
    Runner::new("numbers")
        .version(env!("CARGO_PKG_VERSION"))
        .about("Ginkgo's tutorial: a number server and its client")
        .run(|config| {
            Ok(Numbers {
                settings: config.get()?,
            })
        })
}
