//! The Prometheus text exposition format (version 0.0.4) of a [`Snapshot`].

use std::fmt::Write as _;

use ginkgo_api::service::{Snapshot, State};

/// The `Content-Type` of [`render`]'s output.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Every state, in lifecycle order: one `ginkgo_service_state` sample each per service.
const STATES: [State; 6] = [
    State::Init,
    State::Starting,
    State::Ready,
    State::Stopping,
    State::Stopped,
    State::Failed,
];

/// Renders the metrics of every service in `tree` (the tree's root snapshot, usually) in the
/// Prometheus text format:
///
/// - `ginkgo_process_info{pid,worker}` (gauge, always 1): the process that answered; `worker`
///   is its number among the prefork workers (the runner's `workers` setting), and absent in a
///   single process;
/// - `ginkgo_service_state{service,state}` (gauge): 1 for the state the service is in, 0 for
///   the others;
/// - `ginkgo_service_restarts_total{service}` (counter): restarts by its parent;
/// - `ginkgo_service_tasks{service}` (gauge): owned tasks still running;
/// - `ginkgo_service_counter{service,name}` (gauge): every counter of the service, such as an
///   [`HttpServer`](crate::HttpServer)'s `requests`, `connections_accepted` and
///   `connections_active` (a gauge, since some counters, such as open connections, go down;
///   `rate()` works on the ones that only go up).
///
/// `service` is the service's path in the tree. Label values are escaped as the format
/// requires (`\\`, `\"`, `\n`).
///
/// # Examples
///
/// ```
/// # fn demo<R: ginkgo_api::Runtime>() {
/// use ginkgo_api::service::{Service, async_trait};
///
/// struct App;
/// #[async_trait]
/// impl Service for App {}
///
/// ginkgo_api::block_on::<R, _>(async {
///     let tree = ginkgo_api::service::tree::<R>(App);
///     tree.start().await.unwrap();
///     let text = ginkgo_http::admin::metrics::render(&tree.snapshot());
///     assert!(text.contains("ginkgo_service_state{service=\"App\",state=\"ready\"} 1\n"));
///     tree.stop().await;
/// });
/// # }
/// ```
pub fn render(tree: &Snapshot) -> String {
    let mut out = String::with_capacity(256 * tree.count());
    family(
        &mut out,
        "ginkgo_process_info",
        "gauge",
        "The process that answered: its pid and, among prefork workers, its number.",
    );
    let pid = std::process::id().to_string();
    match ginkgo_api::process::worker().map(|number| number.to_string()) {
        Some(worker) => sample(
            &mut out,
            "ginkgo_process_info",
            &[("pid", &pid), ("worker", &worker)],
            1,
        ),
        None => sample(&mut out, "ginkgo_process_info", &[("pid", &pid)], 1),
    }
    family(
        &mut out,
        "ginkgo_service_state",
        "gauge",
        "Whether the service is in this lifecycle state (1) or not (0).",
    );
    tree.walk(&mut |service| {
        for state in STATES {
            let value = u64::from(service.state == state);
            let labels = [
                ("service", service.path.as_str()),
                ("state", state.as_str()),
            ];
            sample(&mut out, "ginkgo_service_state", &labels, value);
        }
    });
    family(
        &mut out,
        "ginkgo_service_restarts_total",
        "counter",
        "How many times the service's parent restarted it.",
    );
    tree.walk(&mut |service| {
        let labels = [("service", service.path.as_str())];
        let restarts = u64::from(service.restarts);
        sample(&mut out, "ginkgo_service_restarts_total", &labels, restarts);
    });
    family(
        &mut out,
        "ginkgo_service_tasks",
        "gauge",
        "How many tasks the service owns that are still running.",
    );
    tree.walk(&mut |service| {
        let labels = [("service", service.path.as_str())];
        let tasks = u64::try_from(service.tasks).unwrap_or(u64::MAX);
        sample(&mut out, "ginkgo_service_tasks", &labels, tasks);
    });
    family(
        &mut out,
        "ginkgo_service_counter",
        "gauge",
        "The service's named counters, such as requests and connections.",
    );
    tree.walk(&mut |service| {
        for (name, value) in &service.counters {
            let labels = [("service", service.path.as_str()), ("name", name.as_str())];
            sample(&mut out, "ginkgo_service_counter", &labels, *value);
        }
    });
    out
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    // Writing to a String cannot fail.
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn sample(out: &mut String, name: &str, labels: &[(&str, &str)], value: u64) {
    out.push_str(name);
    out.push('{');
    for (i, (label, text)) in labels.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(label);
        out.push_str("=\"");
        escape_label_value(out, text);
        out.push('"');
    }
    let _ = writeln!(out, "}} {value}");
}

/// Appends `value` escaped for a label value: backslash, double quote and line feed.
fn escape_label_value(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        let mut out = String::new();
        escape_label_value(&mut out, "a\\b\"c\nd/é");
        assert_eq!(out, "a\\\\b\\\"c\\nd/é");
    }

    #[test]
    fn samples_have_labels_in_order() {
        let mut out = String::new();
        sample(&mut out, "m", &[("service", "app/db"), ("name", "x\"y")], 7);
        assert_eq!(out, "m{service=\"app/db\",name=\"x\\\"y\"} 7\n");
    }
}
