//! The admin endpoints: `/healthz`, `/readyz`, `/status`, `/metrics`, alone or merged.

use ginkgo_api::Runtime;
use ginkgo_api::service::{Context, Error, Service, ServiceHandle, State, async_trait, tree};
use ginkgo_api::sync::channel;
use ginkgo_http::axum::Router;
use ginkgo_http::axum::routing::get;
use ginkgo_http::http::StatusCode;
use ginkgo_http::{Admin, HttpServer, admin};

use crate::client::{self, within};

type AddChild = Box<dyn FnOnce(&Context) + Send>;

/// A root that adds the children it was given.
struct Root(Vec<AddChild>);

#[async_trait]
impl Service for Root {
    fn init(&mut self, ctx: &Context) {
        for add in self.0.drain(..) {
            add(ctx);
        }
    }
}

fn child(service: impl Service) -> AddChild {
    Box::new(move |ctx: &Context| {
        ctx.add_child(service);
    })
}

/// A service with a given name and nothing else.
struct Named(&'static str);

#[async_trait]
impl Service for Named {
    fn name(&self) -> &str {
        self.0
    }
}

/// A service that is not ready until it receives a message.
struct Gate(channel::Receiver<()>);

#[async_trait]
impl Service for Gate {
    async fn start(&mut self, ctx: &Context) -> Result<(), Error> {
        ctx.not_ready();
        let open = self.0.clone();
        let me = ctx.clone();
        ctx.spawn("gate", async move {
            let _ = open.recv().await;
            me.set_ready();
        });
        Ok(())
    }
}

/// Starts a root with an [`Admin`] child first and `others` after it.
async fn start_with_admin<R: Runtime>(
    others: Vec<AddChild>,
) -> (ServiceHandle, std::net::SocketAddr) {
    let admin = Admin::<R>::new("127.0.0.1:0");
    let listening = admin.address();
    let mut children = vec![child(admin)];
    children.extend(others);
    let tree = tree::<R>(Root(children));
    within::<R, _>("start", tree.start())
        .await
        .expect("the tree starts");
    let addr = listening.local_addr().expect("listening once started");
    (tree, addr)
}

/// `/readyz` answers 503, naming the service, while a sibling is not ready, and 200 once the
/// whole tree is; `/healthz` answers 200 throughout.
pub(crate) async fn readyz_follows_tree<R: Runtime>() {
    let admin = Admin::<R>::new("127.0.0.1:0");
    let listening = admin.address();
    let (open, gate) = channel::bounded::<()>(1);
    let tree = tree::<R>(Root(vec![child(admin), child(Gate(gate))]));
    let starting = ginkgo_api::spawn::<R, _>({
        let tree = tree.clone();
        async move { tree.start().await }
    });
    let addr = within::<R, _>("the admin listens", listening.listening())
        .await
        .tcp()
        .expect("a TCP address");
    let gate = tree.child("Gate").expect("the gate is a child");
    within::<R, _>("the gate starts", gate.wait_for(State::Starting)).await;

    let waiting = client::get_once::<R>(addr, "/readyz").await;
    assert_eq!(
        waiting.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{waiting:?}"
    );
    assert_eq!(
        waiting.body, "not ready: Root (starting), Root/Gate (starting)",
        "{waiting:?}"
    );
    let alive = client::get_once::<R>(addr, "/healthz").await;
    assert_eq!((alive.status, alive.body.as_str()), (StatusCode::OK, "ok"));

    open.send(()).await.expect("open the gate");
    within::<R, _>("the tree starts", starting)
        .await
        .expect("start task")
        .expect("the tree starts once the gate is ready");
    let ready = client::get_once::<R>(addr, "/readyz").await;
    assert_eq!(
        (ready.status, ready.body.as_str()),
        (StatusCode::OK, "ready")
    );
    assert!(within::<R, _>("stop", tree.stop()).await.is_clean());
}

/// `/status` is the tree's snapshot as JSON, with every service and its counters.
pub(crate) async fn status_is_json<R: Runtime>() {
    let (tree, addr) = start_with_admin::<R>(vec![child(Named("worker"))]).await;
    let reply = client::get_once::<R>(addr, "/status").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.content_type, "application/json");
    let status: serde_json::Value =
        serde_json::from_str(&reply.body).unwrap_or_else(|err| panic!("{err}: {}", reply.body));
    assert_eq!(status["path"], "Root");
    assert_eq!(status["state"], "ready");
    // A single process: its pid, and no worker number.
    assert_eq!(status["process"]["pid"], std::process::id());
    assert!(status["process"]["worker"].is_null(), "{status}");
    let children = status["children"].as_array().expect("children");
    let paths: Vec<&str> = children
        .iter()
        .filter_map(|child| child["path"].as_str())
        .collect();
    assert_eq!(paths, ["Root/Admin", "Root/worker"]);
    let counters = children[0]["counters"].to_string();
    assert!(counters.contains(r#"["requests",1]"#), "{counters}");
    assert!(within::<R, _>("stop", tree.stop()).await.is_clean());
}

/// `/metrics` is well-formed Prometheus text with state lines, restarts, tasks and every
/// counter, label values escaped.
pub(crate) async fn metrics_exposition<R: Runtime>() {
    let (tree, addr) = start_with_admin::<R>(vec![child(Named("we\"ird\\name"))]).await;
    let mut conn = client::h1::<R>(addr).await;
    assert_eq!(conn.get("/healthz").await.status, StatusCode::OK);
    let reply = conn.get("/metrics").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(
        reply.content_type.starts_with("text/plain; version=0.0.4"),
        "{}",
        reply.content_type
    );
    let text = reply.body;
    for line in text.lines() {
        assert!(well_formed(line), "malformed line {line:?} in\n{text}");
    }
    for expected in [
        "# TYPE ginkgo_service_state gauge",
        "# TYPE ginkgo_service_restarts_total counter",
        "# TYPE ginkgo_service_counter gauge",
        r#"ginkgo_service_state{service="Root",state="ready"} 1"#,
        &format!("ginkgo_process_info{{pid=\"{}\"}} 1", std::process::id()),
        r#"ginkgo_service_state{service="Root/Admin",state="ready"} 1"#,
        r#"ginkgo_service_state{service="Root/Admin",state="stopped"} 0"#,
        r#"ginkgo_service_restarts_total{service="Root/Admin"} 0"#,
        r#"ginkgo_service_tasks{service="Root/Admin"} 2"#,
        r#"ginkgo_service_counter{service="Root/Admin",name="requests"} 2"#,
        r#"ginkgo_service_counter{service="Root/Admin",name="connections_accepted"} 1"#,
        r#"ginkgo_service_counter{service="Root/Admin",name="connections_active"} 1"#,
        r#"ginkgo_service_state{service="Root/we\"ird\\name",state="ready"} 1"#,
    ] {
        assert!(
            text.lines().any(|line| line == expected),
            "missing {expected:?} in\n{text}"
        );
    }
    assert!(within::<R, _>("stop", tree.stop()).await.is_clean());
}

/// A line of the text format: a `# HELP`/`# TYPE` comment or `name{label="value",...} number`.
fn well_formed(line: &str) -> bool {
    if let Some(comment) = line.strip_prefix("# ") {
        return comment.starts_with("HELP ginkgo_") || comment.starts_with("TYPE ginkgo_");
    }
    let Some((series, value)) = line.rsplit_once(' ') else {
        return false;
    };
    let Some((name, labels)) = series.split_once('{') else {
        return false;
    };
    name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && labels.ends_with('}')
        && value.parse::<f64>().is_ok()
}

/// The admin router merged into an application's, on one port, as the `http` example does.
pub(crate) async fn router_merges_into_app<R: Runtime>() {
    let app = Router::new().route("/", get(|| async { "app" }));
    let server = HttpServer::<R, _>::with_context("127.0.0.1:0", move |ctx| {
        app.clone().merge(admin::router(ctx.handle().root()))
    });
    let listening = server.address();
    let tree = tree::<R>(server);
    within::<R, _>("start", tree.start())
        .await
        .expect("the server starts");
    let addr = listening.local_addr().expect("listening");
    let mut conn = client::h1::<R>(addr).await;
    let home = conn.get("/").await;
    assert_eq!((home.status, home.body.as_str()), (StatusCode::OK, "app"));
    let ready = conn.get("/readyz").await;
    assert_eq!(
        (ready.status, ready.body.as_str()),
        (StatusCode::OK, "ready")
    );
    let metrics = conn.get("/metrics").await;
    assert!(
        metrics
            .body
            .contains(r#"ginkgo_service_counter{service="HttpServer",name="requests"} 3"#),
        "{}",
        metrics.body
    );
    assert!(within::<R, _>("stop", tree.stop()).await.is_clean());
}
