//! Running `h2load` (nghttp2's load generator) over TLS and reading its report.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::wrk::{Load, Report};

/// Where `h2load` is on `PATH`, or an error that says how to install it.
pub(super) fn find() -> Result<PathBuf, String> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join("h2load"))
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| {
            "`h2load` was not found on PATH: the https suite drives every server with nghttp2's \
             h2load over TLS. Install it (Debian/Ubuntu: `apt-get install nghttp2-client`) and \
             run again."
                .to_owned()
        })
}

/// The protocol h2load offers by ALPN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Protocol {
    /// `h2`, one stream at a time per connection (`-m1`), like wrk's keep-alive requests.
    H2,
    /// `http/1.1` keep-alive (`--h1`).
    Http1,
}

impl Protocol {
    /// How the tables name it.
    pub(super) fn name(self) -> &'static str {
        match self {
            Self::H2 => "h2",
            Self::Http1 => "http/1.1",
        }
    }
}

/// Runs `h2load` with `load` against the `https://` `url`, offering `protocol`, and reads its
/// report. The p99 latency comes from its per-request log, written to a temporary file. Fails
/// if h2load fails, negotiates another protocol, or any request failed or got no `2xx`.
pub(super) fn run(
    h2load: &Path,
    load: Load,
    protocol: Protocol,
    url: &str,
) -> Result<Report, String> {
    let log = tempfile::NamedTempFile::new().map_err(|err| format!("a log file: {err}"))?;
    let mut command = Command::new(h2load);
    command
        .arg(format!("-t{}", load.threads))
        .arg(format!("-c{}", load.connections))
        .arg(format!("-D{}", load.duration.as_secs()))
        .arg(format!("--log-file={}", log.path().display()));
    match protocol {
        Protocol::H2 => command.arg("-m1"),
        Protocol::Http1 => command.arg("--h1"),
    };
    let output = command
        .arg(url)
        .output()
        .map_err(|err| format!("cannot run {}: {err}", h2load.display()))?;
    let text = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(format!(
            "h2load {}: {}{text}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let log = std::fs::read_to_string(log.path()).map_err(|err| format!("h2load's log: {err}"))?;
    parse(&text, protocol, &log).map_err(|err| format!("{err}; h2load's report:\n{text}"))
}

/// Reads the rate, the negotiated protocol and the failures from h2load's report, and the p99
/// latency from its log (tab-separated: start time, status, microseconds to the response's end).
fn parse(text: &str, protocol: Protocol, log: &str) -> Result<Report, String> {
    let mut requests_per_sec = None;
    let mut negotiated = None;
    for line in text.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("finished in") {
            // "finished in 5.00s, 12345.60 req/s, 1.20MB/s"
            requests_per_sec = rest
                .split(',')
                .nth(1)
                .and_then(|rate| rate.trim().strip_suffix(" req/s"))
                .and_then(|rate| rate.parse::<f64>().ok());
        } else if let Some(rest) = line.strip_prefix("Application protocol:") {
            negotiated = Some(rest.trim().to_owned());
        } else if let Some(rest) = line.strip_prefix("requests:") {
            // "requests: 100 total, 100 started, 100 done, 100 succeeded, 0 failed, 0 errored, 0 timeout"
            let failed: u64 = rest
                .split(',')
                .filter(|part| {
                    ["failed", "errored", "timeout"]
                        .contains(&part.split_whitespace().nth(1).unwrap_or(""))
                })
                .filter_map(|part| part.split_whitespace().next()?.parse::<u64>().ok())
                .sum();
            if failed > 0 {
                return Err(format!("requests failed ({line})"));
            }
        } else if let Some(rest) = line.strip_prefix("status codes:") {
            // "status codes: 100 2xx, 0 3xx, 0 4xx, 0 5xx"
            let not_2xx = rest
                .split(',')
                .filter(|part| !part.trim().ends_with("2xx"))
                .filter_map(|part| part.split_whitespace().next()?.parse::<u64>().ok())
                .any(|count| count > 0);
            if not_2xx {
                return Err(format!("the server answered with errors ({line})"));
            }
        }
    }
    match negotiated.as_deref() {
        Some(name) if name == protocol.name() => {}
        other => {
            return Err(format!(
                "negotiated {other:?} by ALPN, not {}",
                protocol.name()
            ));
        }
    }
    let mut latencies: Vec<u64> = log
        .lines()
        .filter_map(|line| line.split('\t').nth(2)?.trim().parse().ok())
        .collect();
    if latencies.is_empty() {
        return Err("no requests in h2load's log".to_owned());
    }
    latencies.sort_unstable();
    let p99 = latencies[(latencies.len() * 99).div_ceil(100) - 1];
    Ok(Report {
        requests_per_sec: requests_per_sec.ok_or("no `finished in` line")?,
        p99: Duration::from_micros(p99),
        socket_errors: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const REPORT: &str = "\
starting benchmark...
spawning thread #0: 32 total client(s). Timing-based test with 0s of warm-up time and 5s of main duration for measurements.
TLS Protocol: TLSv1.3
Cipher: TLS_AES_256_GCM_SHA384
Server Temp Key: X25519 253 bits
Application protocol: h2

finished in 5.00s, 20123.40 req/s, 1.92MB/s
requests: 100615 total, 100679 started, 100615 done, 100615 succeeded, 0 failed, 0 errored, 0 timeout
status codes: 100615 2xx, 0 3xx, 0 4xx, 0 5xx
";

    /// 100 requests of 1..=100 microseconds.
    fn log() -> String {
        (1..=100)
            .map(|us| format!("1700000000000000\t200\t{us}\n"))
            .collect()
    }

    #[test]
    fn parses_a_report() {
        let report = parse(REPORT, Protocol::H2, &log()).expect("a valid report");
        assert!((report.requests_per_sec - 20_123.4).abs() < 1e-6);
        assert_eq!(report.p99, Duration::from_micros(99));
    }

    #[test]
    fn rejects_failures_and_another_protocol() {
        let failed = REPORT.replace("0 failed", "3 failed");
        assert!(parse(&failed, Protocol::H2, &log()).is_err());
        let errors = REPORT.replace("0 5xx", "7 5xx");
        assert!(parse(&errors, Protocol::H2, &log()).is_err());
        assert!(parse(REPORT, Protocol::Http1, &log()).is_err());
        assert!(parse(REPORT, Protocol::H2, "").is_err());
    }
}
