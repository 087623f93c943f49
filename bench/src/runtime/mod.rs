//! The `runtime` suite: the same work written once against ginkgo and once against each
//! backend's native API, alternating in one process per backend, compared by median time.

mod ginkgo;
pub(crate) mod native;

use ginkgo_backend_async_std::AsyncStd;
use ginkgo_backend_smol::Smol;
use ginkgo_backend_threads::Threads;
use ginkgo_backend_tokio::Tokio;

use crate::suite::{Backend, Case, Suite};

/// Tasks spawned and joined by the spawn case on the async backends.
const SPAWN_TASKS: usize = 100_000;
/// Tasks (OS threads) spawned and joined by the spawn case on the threads backend.
const SPAWN_THREADS: usize = 10_000;
/// Concurrent loopback connections in the echo case.
const ECHO_CONNS: usize = 64;
/// Round trips per connection in the echo case.
const ECHO_ROUND_TRIPS: usize = 1_000;
/// Bytes per echoed message.
const ECHO_LEN: usize = 64;

/// The suite, for [`crate::suite::run`].
pub(crate) const SUITE: Suite = Suite {
    command: "runtime",
    title: "spawn/join and TCP echo through ginkgo_api vs. each backend's native API",
    intro: "",
    cases,
};

/// The benchmark cases of `backend`: ginkgo's side and the native baseline.
fn cases(backend: Backend) -> Vec<Case> {
    let spawn = |tasks| format!("spawn+join {tasks} tasks");
    let echo = format!("tcp echo {ECHO_CONNS} conns x {ECHO_ROUND_TRIPS} x {ECHO_LEN} B");
    let echo = |ginkgo, baseline| Case::new("tcp echo", echo.clone(), ginkgo, baseline);
    match backend {
        Backend::Tokio => vec![
            Case::new(
                "spawn+join",
                spawn(SPAWN_TASKS),
                || ginkgo::spawn_join::<Tokio>(SPAWN_TASKS),
                || native::tokio::spawn_join(SPAWN_TASKS),
            ),
            echo(ginkgo::echo::<Tokio>, native::tokio::echo),
        ],
        Backend::AsyncStd => vec![
            Case::new(
                "spawn+join",
                spawn(SPAWN_TASKS),
                || ginkgo::spawn_join::<AsyncStd>(SPAWN_TASKS),
                || native::async_std::spawn_join(SPAWN_TASKS),
            ),
            echo(ginkgo::echo::<AsyncStd>, native::async_std::echo),
        ],
        Backend::Smol => vec![
            Case::new(
                "spawn+join",
                spawn(SPAWN_TASKS),
                || ginkgo::spawn_join::<Smol>(SPAWN_TASKS),
                || native::smol::spawn_join(SPAWN_TASKS),
            ),
            echo(ginkgo::echo::<Smol>, native::smol::echo),
        ],
        Backend::Threads => vec![
            Case::new(
                "spawn+join",
                spawn(SPAWN_THREADS),
                || ginkgo::spawn_join::<Threads>(SPAWN_THREADS),
                || native::threads::spawn_join(SPAWN_THREADS),
            ),
            echo(ginkgo::echo::<Threads>, native::threads::echo),
        ],
    }
}
