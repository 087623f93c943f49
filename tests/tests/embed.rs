//! The runner embedded in a program's own `main`: it returns an exit status (never exits the
//! process) and serves on a runtime the program has already started, on every backend.

use std::path::PathBuf;
use std::process::ExitCode;

use ginkgo_api::Runtime;
use ginkgo_api::service::{Context, Error, Service, async_trait};
use ginkgo_runner::Runner;

/// A root service that is done as soon as it has started.
struct Once;

#[async_trait]
impl Service for Once {
    async fn start(&mut self, ctx: &Context) -> Result<(), Error> {
        ctx.exit();
        Ok(())
    }
}

/// A run directory of its own for one case, removed when dropped.
struct Rundir(tempfile::TempDir);

impl Rundir {
    fn new(case: &str) -> Self {
        let dir = tempfile::Builder::new()
            .prefix(&format!("ginkgo-embed-{case}-"))
            .tempdir()
            .expect("create the run directory");
        Self(dir)
    }

    fn set(&self) -> String {
        format!("rundir={}", self.0.path().display())
    }

    fn path(&self) -> PathBuf {
        self.0.path().to_owned()
    }
}

/// The serving loop runs inside the program's runtime, beside its own tasks, and gives the
/// exit status back; `check` and a bad command line do too.
fn serves_on_a_running_runtime<R: Runtime>(case: &str) {
    let rundir = Rundir::new(case);
    let set = rundir.set();
    let (status, side) = ginkgo_api::block_on::<R, _>(async {
        // The program's own work, on the same runtime.
        let side = ginkgo_api::spawn::<R, _>(async { 6 * 7 });
        let status = Runner::<R>::new("embedded")
            .install_logging(false)
            .run_async(["embedded", "-s", &set, "run"], |_config| Ok(Once))
            .await;
        (status, side.await.expect("the program's task"))
    });
    assert_eq!(status, ExitCode::SUCCESS);
    assert_eq!(side, 42);
    assert!(
        !rundir.path().join("embedded.pid").exists(),
        "the pid file is removed when the loop returns"
    );

    let checked = ginkgo_api::block_on::<R, _>(
        Runner::<R>::new("embedded")
            .install_logging(false)
            .run_async(["embedded", "-s", &set, "check"], |_config| Ok(Once)),
    );
    assert_eq!(checked, ExitCode::SUCCESS);
    let typo = ginkgo_api::block_on::<R, _>(
        Runner::<R>::new("embedded")
            .install_logging(false)
            .run_async(
                ["embedded", "-s", "no_such_setting=1", "check"],
                |_config| Ok(Once),
            ),
    );
    assert_eq!(typo, ExitCode::from(ginkgo_runner::EXIT_CONFIG));
}

/// A root that cannot be built is an exit status, not a panic or an exit.
fn build_errors_are_statuses<R: Runtime>(case: &str) {
    let rundir = Rundir::new(case);
    let status = Runner::<R>::new("embedded")
        .install_logging(false)
        .run_with_args(["embedded", "-s", &rundir.set(), "run"], |_config| {
            Err::<Once, Error>("no database configured".into())
        });
    assert_eq!(status, ExitCode::from(ginkgo_runner::EXIT_CONFIG));
}

macro_rules! embedded {
    ($($backend:ident => $rt:ty),* $(,)?) => {$(
        mod $backend {
            #[test]
            fn serves_on_a_running_runtime() {
                super::serves_on_a_running_runtime::<$rt>(concat!(stringify!($backend), "-serve"));
            }

            #[test]
            fn build_errors_are_statuses() {
                super::build_errors_are_statuses::<$rt>(concat!(stringify!($backend), "-build"));
            }
        }
    )*};
}

embedded!(
    tokio => ginkgo_backend_tokio::Tokio,
    async_std => ginkgo_backend_async_std::AsyncStd,
    smol => ginkgo_backend_smol::Smol,
    threads => ginkgo_backend_threads::Threads,
);
