//! The standard library on a real 3-node NATS cluster on loopback (JetStream, replicated
//! buckets): a client whose server is killed reconnects and loses nothing acknowledged; the
//! cluster example's processes find each other, take network configuration, and replace a
//! killed leader within the lease; and over a minute of random server and instance kills a
//! `Singleton` child never runs in two processes at once, checked from the outside. Feature
//! `nats`: `.ci/run` runs `cargo test -p ginkgo-tests --features nats --test cluster`.
#![cfg(feature = "nats")]

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ginkgo_api::Runtime;
use ginkgo_api::bus::Responder;
use ginkgo_api::kv::BucketOptions;
use ginkgo_api::signal::Signal;
use ginkgo_nats::{Nats, NatsOptions};
use ginkgo_tests::nats::NatsCluster;
use ginkgo_tests::process::{Running, alive, dir};

/// One cluster test at a time: each starts three servers (and some processes) of its own, and
/// the timing of failovers should not depend on how many others share the two cores.
fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static CLUSTERS: std::sync::Mutex<()> = std::sync::Mutex::new(());
    CLUSTERS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A client connected to one server of the cluster keeps publishing (acknowledged KV puts)
/// and requesting (to a responder on another server) while that server is killed: it
/// reconnects to another, requests and puts resume (once the bucket's replicas elected a new
/// leader, when it was on that server), and every put that was acknowledged is there.
fn client_survives_the_loss_of_its_server<R: Runtime>() {
    let _alone = one_at_a_time();
    let mut cluster = NatsCluster::start(3);
    ginkgo_tests::support::run::<R, _>("failover", async {
        // The client knows only node 0; it learns the others from the cluster.
        let client = Nats::<R>::new(
            NatsOptions::new([cluster.url(0)])
                .name("client")
                .kv_replicas(3),
        );
        let (bus, kv) = (client.bus(), client.kv());
        let client = ginkgo_api::service::tree::<R>(client);
        client.start().await.expect("connects");
        let responder_nats = Nats::<R>::new(NatsOptions::new([cluster.url(1)]).name("responder"));
        let responder_bus = responder_nats.bus();
        let responder_nats = ginkgo_api::service::tree::<R>(responder_nats);
        responder_nats.start().await.expect("connects");
        let responder = ginkgo_api::service::tree::<R>(Responder::new(
            "double",
            responder_bus,
            "double",
            |n: u64| async move { Ok::<_, String>(n * 2) },
        ));
        responder.start().await.unwrap();
        // The responder subscribed on node 1; node 0 learns of it over the route a moment
        // later (a request before then finds no responders, as one CI run did).
        let began = Instant::now();
        while bus
            .request_json::<_, u64>("double", &0u64, Duration::from_secs(1))
            .await
            .is_err()
        {
            assert!(
                began.elapsed() < Duration::from_secs(10),
                "the responder's subscription did not reach node 0 within 10 s"
            );
            ginkgo_api::time::sleep::<R>(Duration::from_millis(20)).await;
        }

        let bucket = kv.bucket("acked", BucketOptions::default()).await.unwrap();
        let mut acknowledged = Vec::new();
        let (mut answered_after_kill, mut acknowledged_after_kill) = (0, 0);
        let mut killed_at = None;
        let began = Instant::now();
        for n in 0..u64::MAX {
            if n == 50 {
                cluster.kill(0);
                killed_at = Some(Instant::now());
            }
            let key = format!("k{n}");
            let put = bucket.put(&key, n.to_string());
            if let Ok(Ok(_)) = ginkgo_api::time::timeout::<R, _>(Duration::from_secs(6), put).await
            {
                acknowledged.push(n);
                if killed_at.is_some() {
                    acknowledged_after_kill += 1;
                }
            }
            let asked = bus
                .request_json::<_, u64>("double", &n, Duration::from_secs(1))
                .await;
            match asked {
                Ok(doubled) => {
                    assert_eq!(doubled, n * 2);
                    if killed_at.is_some() {
                        answered_after_kill += 1;
                    }
                }
                Err(err) => assert!(killed_at.is_some(), "before the kill: {err}"),
            }
            if answered_after_kill >= 50 && acknowledged_after_kill >= 50 {
                break;
            }
            assert!(
                began.elapsed() < Duration::from_secs(60),
                "requests ({answered_after_kill} answered) or puts ({acknowledged_after_kill} \
                 acknowledged) did not resume after the server was killed"
            );
        }
        let resumed = killed_at.expect("killed").elapsed();
        eprintln!(
            "50 requests answered and 50 puts acknowledged within {resumed:?} of the kill; {} \
             puts acknowledged in all",
            acknowledged.len()
        );

        // Everything acknowledged is there, read through another server.
        let reader = Nats::<R>::new(NatsOptions::new([cluster.url(2)]).name("reader"));
        let reader_kv = reader.kv();
        let reader = ginkgo_api::service::tree::<R>(reader);
        reader.start().await.expect("connects");
        let bucket = reader_kv
            .bucket("acked", BucketOptions::default())
            .await
            .unwrap();
        for n in &acknowledged {
            let key = format!("k{n}");
            // While the cluster settles after the kill, the JetStream API may answer "no
            // responders" for a moment: that is no answer, not a lost write, so ask again.
            let began = Instant::now();
            let entry = loop {
                match bucket.get(&key).await {
                    Ok(entry) => break entry,
                    Err(err) if began.elapsed() < Duration::from_secs(20) => {
                        eprintln!("reading {key} again: {err}");
                        ginkgo_api::time::sleep::<R>(Duration::from_millis(200)).await;
                    }
                    Err(err) => panic!("cannot read {key} for 20 s: {err}"),
                }
            };
            assert_eq!(
                entry.map(|e| e.value),
                Some(n.to_string().into()),
                "acknowledged put k{n} is lost"
            );
        }
        for tree in [&reader, &responder, &responder_nats, &client] {
            tree.stop().await;
        }
    });
}

#[test]
fn client_survives_the_loss_of_its_server_tokio() {
    client_survives_the_loss_of_its_server::<ginkgo_backend_tokio::Tokio>();
}

#[test]
fn client_survives_the_loss_of_its_server_smol() {
    client_survives_the_loss_of_its_server::<ginkgo_backend_smol::Smol>();
}

/// Runs `program` with `args` to the end and returns what it printed.
fn output(program: &Path, args: &[&str]) -> String {
    let out = std::process::Command::new(program)
        .args(args)
        .output()
        .expect("run the command");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// One process of the cluster example, on node `node` of `cluster`.
struct Instance {
    id: String,
    rundir: tempfile::TempDir,
    running: Option<Running>,
}

impl Instance {
    fn start(example: &Path, cluster: &NatsCluster, id: &str, node: usize) -> Self {
        let rundir = dir();
        let args = [
            "-s".to_owned(),
            "cluster.bus=nats".to_owned(),
            "-s".to_owned(),
            format!("nats.url=[\"{}\"]", cluster.url(node)),
            "-s".to_owned(),
            "nats.kv_replicas=3".to_owned(),
            "-s".to_owned(),
            format!("cluster.instance={id}"),
            "-s".to_owned(),
            "cluster.lease=\"3s\"".to_owned(),
            "-s".to_owned(),
            format!("rundir={}", rundir.path().display()),
        ];
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let running = Running::start(example, &args, &[]);
        running.expect_line("ready");
        Self {
            id: id.to_owned(),
            rundir,
            running: Some(running),
        }
    }

    fn ask(&self, example: &Path, command: &str) -> String {
        let rundir = format!("rundir={}", self.rundir.path().display());
        output(example, &["-s", &rundir, command])
    }

    /// The leader this instance's `status` shows, if any.
    fn leader(&self, example: &Path) -> Option<String> {
        let status = self.ask(example, "status");
        let note = status
            .lines()
            .find_map(|line| line.trim().strip_prefix("peers: "))?;
        let leader = note.split("leader: ").nth(1)?.trim().to_owned();
        (leader != "(none)").then_some(leader)
    }
}

/// Polls `check` every 100 ms until it gives `Some`, failing after `within`.
fn within<T>(within: Duration, what: &str, check: impl FnMut() -> Option<T>) -> T {
    poll_for(within, Duration::from_millis(100), check)
        .unwrap_or_else(|| panic!("not within {within:?}: {what}"))
}

/// What `check` finds, asking every `every` for up to `limit`; `None` if it found nothing.
fn poll_for<T>(
    limit: Duration,
    every: Duration,
    mut check: impl FnMut() -> Option<T>,
) -> Option<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(found) = check() {
            return Some(found);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(every);
    }
}

/// Puts `cluster.rate_per_second` = `value` in the cluster example's settings bucket, through
/// a client of our own on node `node`.
fn put_setting(cluster: &NatsCluster, node: usize, value: &str) {
    type R = ginkgo_backend_tokio::Tokio;
    ginkgo_tests::support::run::<R, _>("put a setting", async {
        let nats = Nats::<R>::new(NatsOptions::new([cluster.url(node)]).kv_replicas(3));
        let kv = nats.kv();
        let tree = ginkgo_api::service::tree::<R>(nats);
        tree.start().await.unwrap();
        let bucket = kv
            .bucket("cluster_settings", BucketOptions::default())
            .await
            .unwrap();
        bucket
            .put("cluster.rate_per_second", value.to_owned())
            .await
            .unwrap();
        tree.stop().await;
    });
}

/// Three processes of the cluster example on three servers: they see each other and one
/// leader; a setting put in the store's bucket is in force in each (and `config` names the
/// key), a bad one is rejected everywhere; the leader's process is killed and another instance
/// leads within the lease.
#[test]
fn cluster_example_forms_a_cluster_and_replaces_its_leader() {
    let _alone = one_at_a_time();
    let cluster = NatsCluster::start(3);
    let example = ginkgo_tests::process::example_with("cluster", "nats");
    let mut instances: Vec<Instance> = (0..3)
        .map(|n| Instance::start(&example, &cluster, &format!("i{n}"), n))
        .collect();
    let leader = within(Duration::from_secs(30), "one leader, seen by all", || {
        let seen: BTreeSet<Option<String>> = instances.iter().map(|i| i.leader(&example)).collect();
        let all_peers = instances
            .iter()
            .all(|i| i.ask(&example, "status").contains("peers: i0, i1, i2;"));
        match (seen.len(), seen.into_iter().next()) {
            (1, Some(Some(leader))) if all_peers => Some(leader),
            _ => None,
        }
    });

    // Network configuration, through a client of our own.
    put_setting(&cluster, 0, "40");
    for instance in &instances {
        let config = within(Duration::from_secs(10), "the setting in force", || {
            let config = instance.ask(&example, "config");
            config
                .contains("cluster.rate_per_second = 40")
                .then_some(config)
        });
        assert!(
            config.contains("source: kv:cluster_settings/cluster.rate_per_second"),
            "{config}"
        );
        let running = instance.running.as_ref().unwrap();
        running.expect_line("services reloaded");
    }
    put_setting(&cluster, 1, "0");
    for instance in &instances {
        let running = instance.running.as_ref().unwrap();
        let line = running.expect_line("rejected");
        assert!(line.contains("kv:cluster_settings"), "{line}");
        assert!(
            instance
                .ask(&example, "config")
                .contains("cluster.rate_per_second = 40")
        );
    }

    // Kill the leader's process: another leads within the lease (3 s), by the survivors' view.
    let position = instances.iter().position(|i| i.id == leader).unwrap();
    let mut dead = instances.remove(position);
    let mut running = dead.running.take().unwrap();
    let killed = Instant::now();
    running.child.kill().expect("kill the leader");
    let _ = running.child.wait();
    let next = within(Duration::from_secs(15), "a new leader", || {
        let seen: BTreeSet<Option<String>> = instances.iter().map(|i| i.leader(&example)).collect();
        match seen.into_iter().collect::<Vec<_>>().as_slice() {
            [Some(next)] if *next != leader => Some(next.clone()),
            _ => None,
        }
    });
    let took = killed.elapsed();
    eprintln!("leader {leader} killed; {next} leads {took:?} later (lease 3 s)");
    // A candidate takes over a lease after the dead leader's last renewal reached it; the
    // tenth more is for the round trips and this test's own polling of `status`.
    assert!(
        took < Duration::from_millis(3_300),
        "a new leader took {took:?} with a lease of 3 s"
    );
    for mut instance in instances {
        let running = instance.running.take().unwrap();
        running.signal(Signal::Term);
        assert!(running.wait().success());
    }
}

/// A probe process: a `Singleton` whose child holds a marker file.
fn probe(exe: &Path, cluster: &NatsCluster, markers: &Path, n: usize, rundir: &Path) -> Running {
    let urls: Vec<String> = cluster.urls().iter().map(|u| format!("\"{u}\"")).collect();
    let args = [
        "-s".to_owned(),
        format!("nats.url=[{}]", urls.join(",")),
        "-s".to_owned(),
        "nats.kv_replicas=3".to_owned(),
        "-s".to_owned(),
        format!("probe.markers=\"{}\"", markers.display()),
        "-s".to_owned(),
        format!("probe.id=p{n}"),
        "-s".to_owned(),
        format!("rundir={}", rundir.display()),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let running = Running::start(exe, &args, &[]);
    running.expect_line("ready");
    running
}

/// The live processes that hold a marker now.
fn holders(markers: &Path) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir(markers) else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            name.strip_prefix("running.")?.parse::<u32>().ok()
        })
        .filter(|pid| alive(*pid))
        .collect()
}

/// The pid of a live process running the singleton's child that `wanted` accepts, waiting up
/// to 60 s for one.
fn wait_for_holder(markers: &Path, wanted: impl Fn(u32) -> bool) -> Option<u32> {
    poll_for(Duration::from_secs(60), Duration::from_millis(20), || {
        holders(markers).into_iter().find(|pid| wanted(*pid))
    })
}

/// Fails the chaos test saying `what` went wrong, after which actions, with what each probe
/// said since it was ready (each is stopped first, so that all of it is there).
fn fail_with_logs(what: &str, actions: &[String], probes: Vec<Option<Running>>) -> ! {
    let mut said = String::new();
    for (n, running) in probes.into_iter().enumerate() {
        let Some(running) = running else { continue };
        let pid = running.child.id();
        running.signal(Signal::Term);
        let (status, lines) = running.wait_with_lines();
        said.push_str(&format!(
            "--- p{n} (pid {pid}, {status}):\n{}\n",
            lines.join("\n")
        ));
    }
    panic!(
        "{what}; after {} actions: {}\n{said}",
        actions.len(),
        actions.join("; ")
    );
}

/// Over 60 s of random kills (a server, or an instance with SIGKILL or SIGTERM, every 2 to 5
/// s), three instances of a `Singleton` never run its child in two live processes at once, as
/// seen from outside (marker files, polled every 5 ms); and when the holder is killed at the
/// end, another process takes the role.
#[test]
fn singleton_never_runs_twice_under_random_kills() {
    let _alone = one_at_a_time();
    let mut cluster = NatsCluster::start(3);
    let exe = Path::new(env!("CARGO_BIN_EXE_singleton_probe"));
    let markers = dir();
    let rundirs: Vec<tempfile::TempDir> = (0..3).map(|_| dir()).collect();
    let mut probes: Vec<Option<Running>> = (0..3)
        .map(|n| Some(probe(exe, &cluster, markers.path(), n, rundirs[n].path())))
        .collect();

    let stop = Arc::new(AtomicBool::new(false));
    let (most, samples_held) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let watcher = {
        let (stop, most, held, dir) = (
            stop.clone(),
            most.clone(),
            samples_held.clone(),
            markers.path().to_owned(),
        );
        std::thread::spawn(move || {
            let began = Instant::now();
            let (mut samples, mut holders_seen) = (0usize, BTreeSet::new());
            let mut violations = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                let now = holders(&dir);
                samples += 1;
                if !now.is_empty() {
                    held.fetch_add(1, Ordering::Relaxed);
                }
                most.fetch_max(now.len(), Ordering::SeqCst);
                if now.len() > 1 && violations.len() < 5 {
                    violations.push((began.elapsed(), now.clone()));
                }
                holders_seen.extend(now);
                std::thread::sleep(Duration::from_millis(5));
            }
            (samples, holders_seen, violations)
        })
    };

    // A fixed seed, printed, so that a failure can be replayed.
    let seed = 0x5eed_u64 ^ u64::from(std::process::id());
    eprintln!("chaos seed {seed:#x}");
    let mut rng = fastrand::Rng::with_seed(seed);
    let began = Instant::now();
    let mut actions = Vec::new();
    let mut down: Option<usize> = None;
    while began.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(rng.u64(2_000..5_000)));
        if let Some(node) = down.take() {
            cluster.restart(node);
            actions.push(format!("restarted server n{node}"));
            continue;
        }
        let target = rng.usize(0..3);
        match rng.u8(0..3) {
            0 => {
                cluster.kill(target);
                down = Some(target);
                actions.push(format!("killed server n{target}"));
            }
            kill => {
                let mut old = probes[target].take().expect("every probe runs here");
                if kill == 1 {
                    let _ = old.child.kill();
                    let _ = old.child.wait();
                    actions.push(format!("SIGKILLed and restarted p{target}"));
                } else {
                    old.signal(Signal::Term);
                    let started = Instant::now();
                    let (status, said) = old.wait_with_lines();
                    assert!(
                        status.success(),
                        "p{target} did not stop cleanly ({status}, after {:?}); after {actions:?}, \
                         it said:\n{}",
                        started.elapsed(),
                        said.join("\n")
                    );
                    actions.push(format!("stopped and restarted p{target}"));
                }
                let rundir = rundirs[target].path();
                probes[target] = Some(probe(exe, &cluster, markers.path(), target, rundir));
            }
        }
    }
    if let Some(node) = down {
        cluster.restart(node);
    }
    // The random kills may all have missed the holder (seed 0x58ab hit only p2, twice): kill
    // it now, so that the role must move at least once, and see another process take it.
    let Some(holder) = wait_for_holder(markers.path(), |_| true) else {
        stop.store(true, Ordering::SeqCst);
        fail_with_logs(
            "no process ran the child for 60 s at the end",
            &actions,
            probes,
        );
    };
    let index = probes
        .iter()
        .position(|p| p.as_ref().is_some_and(|p| p.child.id() == holder))
        .expect("the holder is one of the probes");
    let mut old = probes[index].take().expect("every probe runs here");
    let _ = old.child.kill();
    let _ = old.child.wait();
    actions.push(format!("SIGKILLed the holder p{index}"));
    probes[index] = Some(probe(
        exe,
        &cluster,
        markers.path(),
        index,
        rundirs[index].path(),
    ));
    if wait_for_holder(markers.path(), |pid| pid != holder).is_none() {
        stop.store(true, Ordering::SeqCst);
        fail_with_logs(
            "no other process took the role within 60 s",
            &actions,
            probes,
        );
    }
    stop.store(true, Ordering::SeqCst);
    let (samples, holders_seen, violations) = watcher.join().expect("the watcher");
    for running in probes.into_iter().flatten() {
        running.signal(Signal::Term);
        let _ = running.wait();
    }
    eprintln!(
        "{} actions: {}\n{samples} samples, a child ran in {:.0}% of them, in {} processes over the run",
        actions.len(),
        actions.join("; "),
        100.0 * samples_held.load(Ordering::Relaxed) as f64 / samples as f64,
        holders_seen.len()
    );
    assert!(
        violations.is_empty(),
        "two live processes ran the child at once (the first times, and pids): {violations:?}"
    );
    assert_eq!(most.load(Ordering::SeqCst), 1);
    assert!(
        holders_seen.len() >= 2,
        "the role never moved: {holders_seen:?}"
    );
}
