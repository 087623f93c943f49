//! The service model: lifecycle order, readiness, owned tasks, failures and supervision.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ginkgo_api::Runtime;
use ginkgo_api::service::{
    Cause, Context, Error, Hook, Options, Restart, Service, State, Strategy, async_trait,
    serve_forever, tree,
};
use ginkgo_api::time::{sleep, timeout};

use crate::support::DropProbe;
use crate::support::probe::{Act, Log, Probe};

const LIMIT: Duration = Duration::from_secs(30);

/// Options with short timeouts and backoffs, so supervision cases run fast.
fn quick() -> Options {
    Options::default()
        .start_timeout(Duration::from_secs(5))
        .stop_timeout(Duration::from_millis(500))
        .backoff(Duration::from_millis(2), Duration::from_millis(20), 0.0)
        .restart_intensity(10, Duration::from_secs(10))
}

fn events(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

/// Waits (bounded) until the handle reaches `state`.
async fn reach<R: Runtime>(handle: &ginkgo_api::service::ServiceHandle, state: State) {
    if timeout::<R, _>(LIMIT, handle.wait_for(state))
        .await
        .is_err()
    {
        panic!(
            "{} did not reach {state} within {LIMIT:?}; it is {}",
            handle.path(),
            handle.state()
        );
    }
}

/// Children start in order before their parent, stop in reverse after... their parent's
/// children, and reload in start order, across three levels.
pub async fn tree_start_stop_reload_order<R: Runtime>() {
    let log = Log::default();
    let l = log.clone();
    let root = tree::<R>(Probe::new("root", &log).children(move |ctx| {
        let l2 = l.clone();
        ctx.add_child(Probe::new("a", &l).children(move |ctx| {
            ctx.add_child(Probe::new("a1", &l2));
            ctx.add_child(Probe::new("a2", &l2));
        }));
        ctx.add_child(Probe::new("b", &l));
    }));
    assert_eq!(root.state(), State::Init);
    root.start().await.expect("start");
    assert_eq!(
        log.take(),
        events(&["start a1", "start a2", "start a", "start b", "start root"])
    );
    root.reload().await.expect("reload");
    assert_eq!(
        log.take(),
        events(&[
            "reload a1",
            "reload a2",
            "reload a",
            "reload b",
            "reload root"
        ])
    );
    assert!(root.stop().await.is_clean());
    assert_eq!(
        log.take(),
        events(&["stop b", "stop a2", "stop a1", "stop a", "stop root"])
    );
    let a1 = root.child("a").and_then(|a| a.child("a1")).expect("a1");
    assert_eq!(a1.path(), "root/a/a1");
    assert_eq!(a1.root().path(), "root");
    assert_eq!(
        a1.parent().map(|p| p.path().to_owned()).as_deref(),
        Some("root/a")
    );
    assert!(root.parent().is_none());
    assert_eq!(a1.state(), State::Stopped);
}

/// With `start_before`, the service's own hook runs before its children start (and reloads
/// before them); stopping still stops the children first.
pub async fn start_before_runs_hook_first<R: Runtime>() {
    let log = Log::default();
    let l = log.clone();
    let root = tree::<R>(
        Probe::new("root", &log)
            .options(Options::default().start_before(true))
            .children(move |ctx| {
                ctx.add_child(Probe::new("c1", &l));
                ctx.add_child(Probe::new("c2", &l));
            }),
    );
    root.start().await.expect("start");
    assert_eq!(log.take(), events(&["start root", "start c1", "start c2"]));
    root.reload().await.expect("reload");
    assert_eq!(
        log.take(),
        events(&["reload root", "reload c1", "reload c2"])
    );
    root.stop().await;
    assert_eq!(log.take(), events(&["stop c2", "stop c1", "stop root"]));
}

/// A service that says it is not ready must become ready within its start timeout, or its
/// start fails; one that becomes ready in time starts only once it is.
pub async fn ready_timeout<R: Runtime>() {
    let log = Log::default();
    let never = tree::<R>(
        Probe::new("never", &log)
            .ready_after(None)
            .options(Options::default().start_timeout(Duration::from_millis(50))),
    );
    let began = Instant::now();
    let failure = never.start().await.expect_err("never ready");
    assert!(began.elapsed() >= Duration::from_millis(50));
    assert!(
        matches!(failure.cause(), Cause::StartTimeout(_)),
        "{failure}"
    );
    assert!(failure.to_string().contains("start timeout"), "{failure}");
    assert_eq!(never.state(), State::Failed);

    let later = tree::<R>(Probe::new("later", &log).ready_after(Some(Duration::from_millis(30))));
    let began = Instant::now();
    later.start().await.expect("ready in time");
    assert!(
        began.elapsed() >= Duration::from_millis(30),
        "start waited for readiness"
    );
    assert_eq!(later.state(), State::Ready);
    later.stop().await;
}

/// When a child fails to start, the siblings already started are stopped in reverse, the
/// parent's own hook never runs, and the failure names the child.
pub async fn failed_start_rolls_back_siblings<R: Runtime>() {
    let log = Log::default();
    let l = log.clone();
    let root = tree::<R>(Probe::new("root", &log).children(move |ctx| {
        ctx.add_child(Probe::new("a", &l));
        ctx.add_child(Probe::new("b", &l));
        ctx.add_child(Probe::new("c", &l).on_start(Act::Error));
        ctx.add_child(Probe::new("d", &l));
    }));
    let failure = root.start().await.expect_err("c fails");
    assert_eq!(
        log.take(),
        events(&["start a", "start b", "start c", "stop b", "stop a"])
    );
    assert_eq!(failure.path(), "root");
    assert_eq!(failure.root_cause().path(), "root/c");
    assert!(failure.to_string().contains("start c refused"), "{failure}");
    assert_eq!(root.state(), State::Failed);
    let states: Vec<State> = root.children().iter().map(|c| c.state()).collect();
    assert_eq!(
        states,
        [State::Stopped, State::Stopped, State::Failed, State::Init]
    );
}

/// A task that ignores the shutdown signal is aborted after the stop timeout; a task that
/// honours it lets the stop finish early.
pub async fn stop_timeout_aborts_task<R: Runtime>() {
    let (probe, dropped) = DropProbe::new();
    let probe = Arc::new(Mutex::new(Some(probe)));
    let log = Log::default();
    let stubborn = tree::<R>(
        Probe::new("stubborn", &log)
            .options(Options::default().stop_timeout(Duration::from_millis(100)))
            .after_start(move |ctx| {
                let guard = probe.lock().expect("probe").take();
                let timer = ctx.clone();
                ctx.spawn("ignores-shutdown", async move {
                    let _guard = guard;
                    loop {
                        timer.sleep(Duration::from_millis(5)).await;
                    }
                });
            }),
    );
    stubborn.start().await.expect("start");
    assert_eq!(stubborn.snapshot().tasks, 1);
    let began = Instant::now();
    let report = stubborn.stop().await;
    let took = began.elapsed();
    assert!(
        report.is_clean(),
        "an async task can always be aborted: {report}"
    );
    assert!(
        took >= Duration::from_millis(100),
        "waited for the stop timeout"
    );
    assert!(took < Duration::from_secs(10), "stop took {took:?}");
    assert!(
        dropped.load(Ordering::SeqCst),
        "the task's future was dropped"
    );
    assert_eq!(stubborn.snapshot().tasks, 0);

    let polite = tree::<R>(
        Probe::new("polite", &log)
            .options(Options::default().stop_timeout(Duration::from_secs(20)))
            .after_start(|ctx| {
                let shutdown = ctx.shutdown();
                ctx.spawn("honours-shutdown", async move { shutdown.wait().await });
            }),
    );
    polite.start().await.expect("start");
    let began = Instant::now();
    assert!(polite.stop().await.is_clean());
    assert!(
        began.elapsed() < Duration::from_secs(10),
        "did not wait for the timeout"
    );
}

/// A blocking task that outlives the stop timeout cannot be aborted: the stop still returns
/// on time and names the task and its service.
pub async fn stuck_blocking_task_is_reported<R: Runtime>() {
    let log = Log::default();
    let root = tree::<R>(
        Probe::new("root", &log)
            .options(Options::default().stop_timeout(Duration::from_millis(50)))
            .after_start(|ctx| {
                ctx.spawn_blocking("sleeper", || {
                    std::thread::sleep(Duration::from_millis(1500))
                });
            }),
    );
    root.start().await.expect("start");
    let began = Instant::now();
    let report = root.stop().await;
    assert!(
        began.elapsed() < Duration::from_millis(1400),
        "stop did not wait for it"
    );
    assert_eq!(report.stuck.len(), 1, "{report}");
    assert_eq!(report.stuck[0].service, "root");
    assert_eq!(report.stuck[0].task, "sleeper");
    assert!(report.to_string().contains("sleeper"));
    assert_eq!(root.state(), State::Stopped);
}

/// Panics in hooks are contained: a panicking start fails the start, a panicking stop is
/// reported and the stop completes, a panicking reload leaves the service running.
pub async fn hook_panics_are_contained<R: Runtime>() {
    let log = Log::default();
    let bad_start = tree::<R>(Probe::new("s", &log).on_start(Act::Panic));
    let failure = bad_start.start().await.expect_err("start panics");
    assert!(
        matches!(failure.cause(), Cause::HookPanic { hook: Hook::Start, message } if message == "start s panicked"),
        "{failure}"
    );

    let bad_stop = tree::<R>(Probe::new("t", &log).on_stop(Act::Panic));
    bad_stop.start().await.expect("start");
    let report = bad_stop.stop().await;
    assert_eq!(bad_stop.state(), State::Stopped);
    assert_eq!(report.errors.len(), 1);
    assert!(report.errors[0].to_string().contains("stop t panicked"));

    let bad_reload = tree::<R>(Probe::new("r", &log).on_reload(Act::Panic));
    bad_reload.start().await.expect("start");
    let failure = bad_reload.reload().await.expect_err("reload panics");
    assert!(matches!(
        failure.cause(),
        Cause::HookPanic {
            hook: Hook::Reload,
            ..
        }
    ));
    assert_eq!(
        bad_reload.state(),
        State::Ready,
        "a failed reload keeps it running"
    );
    let failure = tree::<R>(Probe::new("idle", &log))
        .reload()
        .await
        .expect_err("not running");
    assert!(matches!(failure.cause(), Cause::NotRunning(State::Init)));
    bad_reload.stop().await;
}

/// A task that panics or returns an error fails its service (never the process), naming the
/// task; the service's other tasks are reaped.
pub async fn task_failure_fails_service<R: Runtime>() {
    let log = Log::default();
    let panicking = tree::<R>(Probe::new("p", &log).after_start(|ctx| {
        let timer = ctx.clone();
        ctx.spawn("bystander", async move {
            timer.sleep(Duration::from_secs(3600)).await
        });
        panic_once_ready(ctx, "crasher", "crashed on purpose");
    }));
    panicking.start().await.expect("start");
    reach::<R>(&panicking, State::Failed).await;
    let failure = panicking.last_failure().expect("a failure");
    assert!(
        matches!(failure.cause(), Cause::TaskPanic { task, message } if task == "crasher" && message == "crashed on purpose"),
        "{failure}"
    );
    crate::support::eventually::<R>("tasks reaped", LIMIT, || panicking.snapshot().tasks == 0)
        .await;

    let erring = tree::<R>(Probe::new("e", &log).after_start(|ctx| {
        ctx.spawn("worker", async { Err::<(), Error>("disk full".into()) });
    }));
    // The error may land while the service is still starting; either way it fails.
    let _ = erring.start().await;
    reach::<R>(&erring, State::Failed).await;
    let failure = erring.last_failure().expect("a failure");
    assert!(
        failure
            .to_string()
            .contains("task \"worker\" returned an error: disk full"),
        "{failure}"
    );
}

/// A service is `Failed` only once it is torn down: whoever sees the state finds its other
/// tasks reaped (one of them slow to finish) and its child stopped, and it went through
/// `Stopping` on the way.
pub async fn failed_only_once_torn_down<R: Runtime>() {
    let log = Log::default();
    let finished = Arc::new(AtomicUsize::new(0));
    let done = finished.clone();
    let root = tree::<R>(
        Probe::new("root", &log)
            .options(Options::default().stop_timeout(Duration::from_secs(20)))
            .children({
                let log = log.clone();
                move |ctx| {
                    ctx.add_child(Probe::new("child", &log));
                }
            })
            .after_start(move |ctx| {
                let (owner, shutdown, done) = (ctx.clone(), ctx.shutdown(), done.clone());
                ctx.spawn("slow-to-finish", async move {
                    shutdown.wait().await;
                    owner.sleep(Duration::from_millis(200)).await;
                    done.fetch_add(1, Ordering::SeqCst);
                });
                panic_once_ready(ctx, "crasher", "crashed on purpose");
            }),
    );
    let transitions = root.subscribe();
    root.start().await.expect("start");
    reach::<R>(&root, State::Failed).await;
    assert_eq!(finished.load(Ordering::SeqCst), 1, "a task still ran");
    let snapshot = root.snapshot();
    assert_eq!(snapshot.tasks, 0, "tasks left: {snapshot:?}");
    assert!(
        snapshot
            .children
            .iter()
            .all(|child| child.state == State::Stopped),
        "{snapshot:?}"
    );
    let mut seen = Vec::new();
    while let Ok(t) = transitions.try_recv() {
        seen.push((t.from, t.to));
    }
    assert!(
        seen.ends_with(&[
            (State::Ready, State::Stopping),
            (State::Stopping, State::Failed)
        ]),
        "{seen:?}"
    );
    root.stop().await;
}

/// A shared counter of instances built by a factory, so each instance can behave differently.
#[derive(Clone, Default)]
struct Generation(Arc<AtomicUsize>);

impl Generation {
    fn next(&self) -> usize {
        self.0.fetch_add(1, Ordering::SeqCst) + 1
    }
}

/// A child that fails (a task panics) in its first `failures` instances.
fn flaky(name: &str, log: &Log, generation: &Generation, failures: usize) -> Probe {
    let n = generation.next();
    let probe = Probe::new(name, log);
    if n <= failures {
        probe.after_start(|ctx| {
            panic_once_ready(ctx, "flaky", "flaky instance");
        })
    } else {
        probe
    }
}

/// Permanent children are restarted after a failure and after a normal exit, each time as a
/// fresh instance from the factory.
pub async fn restart_permanent<R: Runtime>() {
    let log = Log::default();
    let generation = Generation::default();
    let (l, g) = (log.clone(), generation.clone());
    let root = tree::<R>(
        Probe::new("root", &log)
            .options(quick())
            .children(move |ctx| {
                let (l, g) = (l.clone(), g.clone());
                ctx.supervise(Restart::Permanent, move || flaky("child", &l, &g, 1));
            }),
    );
    root.start().await.expect("start");
    let child = root.child("child").expect("child");
    crate::support::eventually::<R>("restarted once", LIMIT, || child.restarts() == 1).await;
    reach::<R>(&child, State::Ready).await;
    assert_eq!(
        generation.0.load(Ordering::SeqCst),
        2,
        "a fresh instance was built"
    );
    assert_eq!(root.state(), State::Ready, "the parent is unaffected");

    // A normal exit of a permanent child restarts it too.
    let exits = Arc::new(Mutex::new(None::<Context>));
    let slot = exits.clone();
    let root2 = tree::<R>(
        Probe::new("root2", &log)
            .options(quick())
            .children(move |ctx| {
                let slot = slot.clone();
                ctx.supervise(Restart::Permanent, move || {
                    let slot = slot.clone();
                    Probe::new("worker", &Log::default()).after_start(move |ctx| {
                        *slot.lock().expect("slot") = Some(ctx.clone());
                    })
                });
            }),
    );
    root2.start().await.expect("start");
    let worker = root2.child("worker").expect("worker");
    exits.lock().expect("slot").take().expect("context").exit();
    crate::support::eventually::<R>("restarted after exit", LIMIT, || worker.restarts() == 1).await;
    reach::<R>(&worker, State::Ready).await;
    root.stop().await;
    root2.stop().await;
}

/// Transient children restart only after a failure, not after a normal exit; temporary
/// children never restart, and their failure leaves the parent running.
pub async fn restart_transient_and_temporary<R: Runtime>() {
    let log = Log::default();
    let (g1, g2) = (Generation::default(), Generation::default());
    let exits = Arc::new(Mutex::new(None::<Context>));
    let (l, slot) = (log.clone(), exits.clone());
    let (t1, t2) = (g1.clone(), g2.clone());
    let root = tree::<R>(
        Probe::new("root", &log)
            .options(quick())
            .children(move |ctx| {
                let (l1, l2, l3, t1, t2) =
                    (l.clone(), l.clone(), l.clone(), t1.clone(), t2.clone());
                ctx.supervise(Restart::Transient, move || flaky("failing", &l1, &t1, 1));
                let slot = slot.clone();
                ctx.supervise(Restart::Transient, move || {
                    let slot = slot.clone();
                    Probe::new("exiting", &l2).after_start(move |ctx| {
                        *slot.lock().expect("slot") = Some(ctx.clone());
                    })
                });
                ctx.supervise(Restart::Temporary, move || flaky("temporary", &l3, &t2, 1));
            }),
    );
    root.start().await.expect("start");
    let failing = root.child("failing").expect("failing");
    let exiting = root.child("exiting").expect("exiting");
    let temporary = root.child("temporary").expect("temporary");

    crate::support::eventually::<R>("transient restarted", LIMIT, || failing.restarts() == 1).await;
    reach::<R>(&failing, State::Ready).await;

    exits.lock().expect("slot").take().expect("context").exit();
    reach::<R>(&exiting, State::Stopped).await;

    reach::<R>(&temporary, State::Failed).await;
    sleep::<R>(Duration::from_millis(100)).await; // well past any backoff
    assert_eq!(
        exiting.restarts(),
        0,
        "a normal exit of a transient child is final"
    );
    assert_eq!(exiting.state(), State::Stopped);
    assert_eq!(
        temporary.restarts(),
        0,
        "temporary children are never restarted"
    );
    assert_eq!(temporary.state(), State::Failed);
    assert_eq!(g2.0.load(Ordering::SeqCst), 1);
    assert_eq!(root.state(), State::Ready);
    root.stop().await;
}

/// Builds a parent with three permanent children a, b, c where b fails once, and returns the
/// log after b's restart settled.
async fn strategy_run<R: Runtime>(strategy: Strategy) -> (Vec<String>, [u32; 3]) {
    let log = Log::default();
    let generation = Generation::default();
    let (l, g) = (log.clone(), generation.clone());
    let root = tree::<R>(
        Probe::new("root", &log)
            .options(quick().strategy(strategy))
            .children(move |ctx| {
                let (la, lb, lc, g) = (l.clone(), l.clone(), l.clone(), g.clone());
                ctx.supervise(Restart::Permanent, move || Probe::new("a", &la));
                ctx.supervise(Restart::Permanent, move || flaky("b", &lb, &g, 1));
                ctx.supervise(Restart::Permanent, move || Probe::new("c", &lc));
            }),
    );
    root.start().await.expect("start");
    let b = root.child("b").expect("b");
    crate::support::eventually::<R>("b restarted", LIMIT, || b.restarts() == 1).await;
    for child in root.children() {
        reach::<R>(&child, State::Ready).await;
    }
    let restarts = [
        root.child("a").expect("a").restarts(),
        b.restarts(),
        root.child("c").expect("c").restarts(),
    ];
    let mut events = log.take();
    root.stop().await;
    // Drop the initial start; keep what the failure caused. b's failure (and its stop hook)
    // may come before the root's own start is logged, so the initial start is not a prefix:
    // each of its four lines is the first of its kind, since restarts wait for the root to be
    // ready.
    for initial in ["start a", "start b", "start c", "start root"] {
        let at = events
            .iter()
            .position(|event| event == initial)
            .unwrap_or_else(|| panic!("no {initial:?} in {events:?}"));
        events.remove(at);
    }
    (events, restarts)
}

/// one_for_one restarts only the failed child; one_for_all stops the others in reverse and
/// restarts all in order; rest_for_one restarts the failed child and those after it.
pub async fn restart_strategies<R: Runtime>() {
    let (events_1, restarts_1) = strategy_run::<R>(Strategy::OneForOne).await;
    assert_eq!(events_1, events(&["stop b", "start b"]));
    assert_eq!(restarts_1, [0, 1, 0]);

    let (events_all, restarts_all) = strategy_run::<R>(Strategy::OneForAll).await;
    assert_eq!(
        events_all,
        events(&[
            "stop b", "stop c", "stop a", "start a", "start b", "start c"
        ])
    );
    assert_eq!(restarts_all, [1, 1, 1]);

    let (events_rest, restarts_rest) = strategy_run::<R>(Strategy::RestForOne).await;
    assert_eq!(
        events_rest,
        events(&["stop b", "stop c", "start b", "start c"])
    );
    assert_eq!(restarts_rest, [0, 1, 1]);
}

/// More restarts than the intensity allows fail the parent, which escalates to its own
/// parent; the failure says why.
pub async fn intensity_escalates<R: Runtime>() {
    let log = Log::default();
    let generation = Generation::default();
    let (l, g) = (log.clone(), generation.clone());
    let root = tree::<R>(
        Probe::new("root", &log)
            .options(quick())
            .children(move |ctx| {
                let (l2, g2) = (l.clone(), g.clone());
                ctx.supervise(Restart::Permanent, move || {
                    let (l3, g3) = (l2.clone(), g2.clone());
                    Probe::new("parent", &l2)
                        .options(quick().restart_intensity(2, Duration::from_secs(30)))
                        .children(move |ctx| {
                            let (l4, g4) = (l3.clone(), g3.clone());
                            ctx.supervise(Restart::Permanent, move || {
                                flaky("doomed", &l4, &g4, usize::MAX)
                            });
                        })
                });
            }),
    );
    root.start().await.expect("start");
    let parent = root.child("parent").expect("parent");
    // The parent escalates after its third child failure; root then restarts the parent.
    crate::support::eventually::<R>("parent escalated", LIMIT, || parent.restarts() >= 1).await;
    let failure = parent.last_failure().expect("the parent failed");
    assert!(
        matches!(
            failure.cause(),
            Cause::RestartIntensity {
                max_restarts: 2,
                ..
            }
        ),
        "{failure}"
    );
    assert_eq!(failure.root_cause().path(), "root/parent/doomed");
    assert!(
        failure.to_string().contains("more than 2 restarts"),
        "{failure}"
    );
    assert!(generation.0.load(Ordering::SeqCst) >= 3);
    root.stop().await;

    // At the root, escalation ends serve_forever with the failure.
    let log = Log::default();
    let g = Generation::default();
    let result = timeout::<R, _>(
        LIMIT,
        serve_forever::<R>(
            Probe::new("top", &log)
                .options(quick().restart_intensity(1, Duration::from_secs(30)))
                .children(move |ctx| {
                    let (l, g) = (Log::default(), g.clone());
                    ctx.supervise(Restart::Permanent, move || {
                        flaky("doomed", &l, &g, usize::MAX)
                    });
                }),
        ),
    )
    .await
    .expect("serve_forever returned");
    let failure = result.expect_err("the root failed");
    assert!(
        matches!(failure.cause(), Cause::RestartIntensity { .. }),
        "{failure}"
    );
}

/// Service that records when each instance started.
struct Stamped {
    starts: Arc<Mutex<Vec<Instant>>>,
    fail: bool,
}

#[async_trait]
impl Service for Stamped {
    fn name(&self) -> &str {
        "stamped"
    }

    async fn start(&mut self, ctx: &Context) -> Result<(), Error> {
        self.starts.lock().expect("starts").push(Instant::now());
        if self.fail {
            // Fail once running (not during the start, which would fail the root's start).
            let me = ctx.handle();
            ctx.spawn("fails", async move {
                me.wait_for(State::Ready).await;
                Err::<(), Error>("again".into())
            });
        }
        Ok(())
    }
}

/// Restart delays grow exponentially (no jitter here) up to the cap.
pub async fn backoff_grows<R: Runtime>() {
    let starts = Arc::new(Mutex::new(Vec::new()));
    let s = starts.clone();
    let log = Log::default();
    let options = Options::default()
        .backoff(Duration::from_millis(20), Duration::from_millis(80), 0.0)
        .restart_intensity(5, Duration::from_secs(60));
    assert_eq!(options.backoff.base_delay(1), Duration::from_millis(20));
    assert_eq!(options.backoff.base_delay(3), Duration::from_millis(80));
    assert_eq!(
        options.backoff.base_delay(9),
        Duration::from_millis(80),
        "capped"
    );
    let root = tree::<R>(
        Probe::new("root", &log)
            .options(options)
            .children(move |ctx| {
                let s = s.clone();
                ctx.supervise(Restart::Permanent, move || Stamped {
                    starts: s.clone(),
                    fail: true,
                });
            }),
    );
    root.start().await.expect("start");
    crate::support::eventually::<R>("five restarts", LIMIT, || {
        starts.lock().expect("starts").len() >= 5
    })
    .await;
    let starts = starts.lock().expect("starts").clone();
    let gaps: Vec<Duration> = starts.windows(2).map(|w| w[1] - w[0]).collect();
    for (gap, least) in gaps.iter().zip([20u64, 40, 80, 80]) {
        assert!(
            *gap >= Duration::from_millis(least),
            "restart gaps {gaps:?} must be at least 20, 40, 80, 80 ms"
        );
    }
    root.stop().await;
}

/// Children can be added and removed while the tree runs; the old instance's stop completes
/// before a restarted instance starts.
pub async fn dynamic_children<R: Runtime>() {
    let log = Log::default();
    let slot = Arc::new(Mutex::new(None::<Context>));
    let s = slot.clone();
    let root = tree::<R>(Probe::new("root", &log).after_start(move |ctx| {
        *s.lock().expect("slot") = Some(ctx.clone());
    }));
    root.start().await.expect("start");
    let ctx = slot.lock().expect("slot").clone().expect("context");
    // At run time, readiness toggles without changing the state (a client that lost its
    // connection).
    assert!(root.is_ready());
    ctx.not_ready();
    assert!(!root.is_ready());
    assert!(!root.snapshot().all_ready());
    assert_eq!(root.state(), State::Ready);
    ctx.set_ready();
    assert!(root.is_ready() && root.snapshot().all_ready());
    let late = ctx
        .start_child(Probe::new("late", &log))
        .await
        .expect("start a child at run time");
    assert_eq!(late.state(), State::Ready);
    assert_eq!(late.path(), "root/late");
    assert_eq!(root.children().len(), 1);
    let report = ctx.remove_child(&late).await.expect("it was a child");
    assert!(report.is_clean());
    assert_eq!(late.state(), State::Stopped);
    assert!(root.children().is_empty());
    assert!(ctx.remove_child(&late).await.is_none(), "already removed");
    assert_eq!(
        log.take(),
        events(&["start root", "start late", "stop late"])
    );

    // A supervised child added at run time is restarted like any other.
    let generation = Generation::default();
    let (l, g) = (log.clone(), generation.clone());
    let handle = ctx.supervise(Restart::Permanent, move || flaky("added", &l, &g, 1));
    handle.start().await.expect("start");
    crate::support::eventually::<R>("restarted", LIMIT, || handle.restarts() == 1).await;
    reach::<R>(&handle, State::Ready).await;
    let events = log.take();
    let stop = events
        .iter()
        .position(|e| e == "stop added")
        .expect("stopped");
    let second_start = events
        .iter()
        .enumerate()
        .filter(|(_, e)| *e == "start added")
        .nth(1)
        .map(|(i, _)| i)
        .expect("started again");
    assert!(stop < second_start, "old stop before new start: {events:?}");
    root.stop().await;
}

/// A subscriber sees every transition, in order, with non-decreasing timestamps.
pub async fn subscriber_sees_transitions<R: Runtime>() {
    let log = Log::default();
    let root = tree::<R>(Probe::new("root", &log).after_start(|ctx| {
        panic_once_ready(ctx, "dies", "gone");
    }));
    let transitions = root.subscribe();
    root.start().await.expect("start");
    reach::<R>(&root, State::Failed).await;
    root.stop().await;
    root.start().await.expect("start again");
    root.stop().await;
    let mut seen = Vec::new();
    while let Ok(t) = transitions.try_recv() {
        seen.push(t);
    }
    let pairs: Vec<(State, State)> = seen.iter().map(|t| (t.from, t.to)).collect();
    use State::*;
    assert_eq!(
        &pairs[..6],
        [
            (Init, Starting),
            (Starting, Ready),
            (Ready, Stopping),
            (Stopping, Failed),
            (Failed, Stopped),
            (Stopped, Starting)
        ]
    );
    assert!(seen.iter().all(|t| &*t.path == "root"));
    assert!(seen.windows(2).all(|w| w[0].at <= w[1].at));
    assert_eq!(seen.last().map(|t| t.to), Some(Stopped));
}

/// Stop is idempotent and a stopped service starts again, with fresh tasks.
pub async fn stop_idempotent_and_restartable<R: Runtime>() {
    let log = Log::default();
    let runs = Arc::new(AtomicUsize::new(0));
    let r = runs.clone();
    let root = tree::<R>(Probe::new("root", &log).after_start(move |ctx| {
        let (r, shutdown) = (r.clone(), ctx.shutdown());
        ctx.spawn("counter", async move {
            r.fetch_add(1, Ordering::SeqCst);
            shutdown.wait().await;
        });
    }));
    assert!(
        root.stop().await.is_clean(),
        "stopping a never-started service is a no-op"
    );
    root.start().await.expect("start");
    root.start()
        .await
        .expect("starting a running service is a no-op");
    assert!(root.stop().await.is_clean());
    assert!(root.stop().await.is_clean());
    root.start().await.expect("start after stop");
    assert_eq!(root.state(), State::Ready);
    crate::support::eventually::<R>("second task ran", LIMIT, || {
        runs.load(Ordering::SeqCst) == 2
    })
    .await;
    root.stop().await;
    assert_eq!(
        log.take(),
        events(&["start root", "stop root", "start root", "stop root"])
    );
}

/// A snapshot shows the tree: paths, states, live tasks, restarts, durations.
pub async fn snapshot_shows_tree<R: Runtime>() {
    let log = Log::default();
    let l = log.clone();
    let root = tree::<R>(Probe::new("root", &log).children(move |ctx| {
        let l2 = l.clone();
        ctx.add_child(Probe::new("a", &l).children(move |ctx| {
            ctx.add_child(Probe::new("a1", &l2).after_start(|ctx| {
                ctx.counter("things").add(2);
                for name in ["one", "two"] {
                    let shutdown = ctx.shutdown();
                    ctx.spawn(name, async move { shutdown.wait().await });
                }
            }));
        }));
        ctx.add_child(Probe::new("b", &l));
    }));
    root.start().await.expect("start");
    let snapshot = root.snapshot();
    assert_eq!(snapshot.count(), 4);
    let a1 = snapshot.find("root/a/a1").expect("a1 in snapshot");
    assert_eq!(a1.state, State::Ready);
    assert_eq!(a1.tasks, 2);
    assert_eq!(a1.restarts, 0);
    assert!(a1.start_duration.is_some());
    assert_eq!(a1.counters, [("things".to_owned(), 2)]);
    assert!(snapshot.all_ready(), "every service is ready");
    let mut paths = Vec::new();
    snapshot.walk(&mut |s| paths.push(s.path.clone()));
    assert_eq!(paths, ["root", "root/a", "root/a/a1", "root/b"]);
    assert_eq!(
        snapshot
            .children
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>(),
        ["a", "b"]
    );
    root.stop().await;
    let snapshot = root.snapshot();
    assert!(!snapshot.all_ready());
    assert_eq!(snapshot.state, State::Stopped);
    assert!(snapshot.stop_duration.is_some());
    assert_eq!(snapshot.find("root/a/a1").expect("a1").tasks, 0);
}

/// `serve_forever` returns `Ok` when the root exits normally and the failure when it fails.
pub async fn serve_forever_returns<R: Runtime>() {
    let log = Log::default();
    let done = serve_forever::<R>(Probe::new("done", &log).after_start(|ctx| {
        let ctx2 = ctx.clone();
        ctx.spawn("finisher", async move {
            ctx2.sleep(Duration::from_millis(10)).await;
            ctx2.exit();
        });
    }));
    timeout::<R, _>(LIMIT, done)
        .await
        .expect("returned")
        .expect("a normal exit is Ok");

    let failed = serve_forever::<R>(Probe::new("broken", &log).on_start(Act::Error));
    let failure = timeout::<R, _>(LIMIT, failed)
        .await
        .expect("returned")
        .expect_err("start failed");
    assert_eq!(failure.path(), "broken");
}

/// A task spawned while the service is stopping (a request arriving on a draining connection)
/// is reaped by that same stop, not left running.
pub async fn tasks_spawned_during_stop_are_reaped<R: Runtime>() {
    let (probe, dropped) = DropProbe::new();
    let probe = Arc::new(Mutex::new(Some(probe)));
    let log = Log::default();
    let root = tree::<R>(
        Probe::new("draining", &log)
            .options(Options::default().stop_timeout(Duration::from_millis(100)))
            .after_start(move |ctx| {
                let (owner, shutdown, probe) = (ctx.clone(), ctx.shutdown(), probe.clone());
                ctx.spawn("drainer", async move {
                    shutdown.wait().await;
                    let guard = probe.lock().expect("probe").take();
                    let timer = owner.clone();
                    owner.spawn("late", async move {
                        let _guard = guard;
                        loop {
                            timer.sleep(Duration::from_millis(5)).await;
                        }
                    });
                });
            }),
    );
    root.start().await.expect("start");
    let report = root.stop().await;
    assert!(report.is_clean(), "{report}");
    assert!(
        dropped.load(Ordering::SeqCst),
        "the late task was aborted by the stop"
    );
    assert_eq!(root.snapshot().tasks, 0);
}

/// A service that exits normally as soon as it has started.
struct Quitter;

#[async_trait]
impl Service for Quitter {
    fn name(&self) -> &str {
        "quitter"
    }

    async fn start(&mut self, ctx: &Context) -> Result<(), Error> {
        ctx.exit();
        Ok(())
    }
}

/// A service that asks to exit in its start hook, then goes on starting for a while.
struct LateQuitter<R>(std::marker::PhantomData<fn() -> R>);

#[async_trait]
impl<R: Runtime> Service for LateQuitter<R> {
    fn name(&self) -> &str {
        "late-quitter"
    }

    async fn start(&mut self, ctx: &Context) -> Result<(), Error> {
        ctx.exit();
        sleep::<R>(Duration::from_millis(50)).await;
        Ok(())
    }
}

/// An exit asked for during the start takes effect once the start is over: the start succeeds
/// (it is not cancelled as a stop would cancel it), then the service ends, stopped, not failed.
pub async fn exit_during_the_start_ends_the_service_after_it<R: Runtime>() {
    let tree = ginkgo_api::service::tree::<R>(LateQuitter::<R>(std::marker::PhantomData));
    tree.start()
        .await
        .expect("the start is not cancelled by the exit it asked for");
    let waited = timeout::<R, _>(LIMIT, tree.wait_for(ginkgo_api::service::State::Stopped)).await;
    assert!(waited.is_ok(), "the service did not end after its start");
    assert_eq!(tree.state(), ginkgo_api::service::State::Stopped);
    assert!(tree.last_failure().is_none(), "{:?}", tree.last_failure());
}

/// A permanent child that keeps exiting normally is restarted until the intensity is spent;
/// the escalation says it exited normally, and names no error it never had.
pub async fn normal_exits_spend_intensity<R: Runtime>() {
    let result = timeout::<R, _>(
        LIMIT,
        serve_forever::<R>(
            Probe::new("top", &Log::default())
                .options(quick().restart_intensity(2, Duration::from_secs(30)))
                .children(|ctx| {
                    ctx.supervise(Restart::Permanent, || Quitter);
                }),
        ),
    )
    .await
    .expect("serve_forever returned");
    let failure = result.expect_err("the root failed");
    match failure.cause() {
        Cause::RestartIntensity {
            max_restarts: 2,
            child,
            last: None,
            ..
        } => assert_eq!(&**child, "top/quitter"),
        other => panic!("not a normal-exit escalation: {other:?}"),
    }
    assert!(
        failure
            .to_string()
            .ends_with("last: service top/quitter exited normally"),
        "{failure}"
    );
    assert!(std::error::Error::source(&failure).is_none());
}

/// A service that starts not ready (`start_not_ready`, a client whose server is not there
/// yet) does not hold up its start or its siblings', counts as not ready, and becomes ready
/// when it says so.
pub async fn start_not_ready_does_not_wait<R: Runtime>() {
    struct Late(Arc<Mutex<Option<Context>>>);

    #[async_trait]
    impl Service for Late {
        fn name(&self) -> &str {
            "late"
        }

        fn options(&self) -> Options {
            Options::default().start_timeout(Duration::from_millis(100))
        }

        async fn start(&mut self, ctx: &Context) -> Result<(), Error> {
            ctx.start_not_ready();
            *self.0.lock().unwrap() = Some(ctx.clone());
            Ok(())
        }
    }

    let context = Arc::new(Mutex::new(None));
    let late = tree::<R>(Late(context.clone()));
    let began = Instant::now();
    late.start().await.expect("a start that does not wait");
    assert!(began.elapsed() < Duration::from_millis(100));
    assert_eq!(late.state(), State::Ready);
    let snapshot = late.snapshot();
    assert!(!snapshot.ready, "started not ready");
    sleep::<R>(Duration::from_millis(150)).await;
    assert_eq!(late.state(), State::Ready, "no start timeout once started");
    let ctx = context.lock().unwrap().clone().expect("started");
    ctx.set_ready();
    assert!(late.snapshot().ready);
    late.stop().await;
}

/// A stop asked for while the tree is starting does not wait for the start: a start hook
/// that would take a minute, and a service that never says it is ready, are cancelled; the
/// stop is clean and quick, and the start fails saying it was cancelled.
pub async fn stop_cancels_a_start_under_way<R: Runtime>() {
    /// A child whose start hook takes a minute, or that never becomes ready.
    struct Slow {
        never_ready: bool,
    }

    #[async_trait]
    impl Service for Slow {
        fn name(&self) -> &str {
            if self.never_ready { "unready" } else { "slow" }
        }

        fn options(&self) -> Options {
            Options::default().start_timeout(Duration::from_secs(60))
        }

        async fn start(&mut self, ctx: &Context) -> Result<(), Error> {
            if self.never_ready {
                ctx.not_ready();
            } else {
                ctx.sleep(Duration::from_secs(60)).await;
            }
            Ok(())
        }
    }

    struct Parent {
        never_ready: bool,
    }

    #[async_trait]
    impl Service for Parent {
        fn name(&self) -> &str {
            "parent"
        }

        fn options(&self) -> Options {
            Options::default().start_timeout(Duration::from_secs(60))
        }

        fn init(&mut self, ctx: &Context) {
            ctx.add_child(Slow {
                never_ready: self.never_ready,
            });
        }
    }

    for never_ready in [false, true] {
        let tree = tree::<R>(Parent { never_ready });
        let starting = ginkgo_api::spawn::<R, _>({
            let tree = tree.clone();
            async move { tree.start().await }
        });
        let child = tree.children().pop().expect("the child");
        reach::<R>(&child, State::Starting).await;
        let began = Instant::now();
        let report = timeout::<R, _>(LIMIT, tree.stop())
            .await
            .expect("the stop did not wait for the start");
        assert!(report.is_clean(), "{report}");
        assert!(
            began.elapsed() < Duration::from_secs(5),
            "{:?}",
            began.elapsed()
        );
        let failure = starting
            .await
            .expect("the start task")
            .expect_err("a cancelled start fails");
        assert!(
            matches!(failure.root_cause().cause(), Cause::StartCancelled),
            "{failure}"
        );
        assert!(
            failure.to_string().contains("stopped while starting"),
            "{failure}"
        );
        assert_eq!(tree.state(), State::Stopped);
        assert_eq!(child.state(), State::Stopped);
        // It starts again normally afterwards (then is stopped again, not cancelled).
        let again = ginkgo_api::spawn::<R, _>({
            let tree = tree.clone();
            async move { tree.start().await }
        });
        reach::<R>(&child, State::Starting).await;
        assert!(tree.stop().await.is_clean());
        assert!(again.await.expect("the start task").is_err());
    }
}

/// Spawns task `name` in `ctx`'s service, which panics with `message` once the service is
/// ready (a failure while running, not during the start).
fn panic_once_ready(ctx: &Context, name: &'static str, message: &'static str) {
    let me = ctx.handle();
    ctx.spawn(name, async move {
        me.wait_for(State::Ready).await;
        panic!("{message}");
    });
}
