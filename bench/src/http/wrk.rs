//! Running `wrk` and reading its report.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// Where `wrk` is on `PATH`, or an error that says how to install it.
pub(crate) fn find() -> Result<PathBuf, String> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join("wrk"))
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| {
            "`wrk` was not found on PATH: the http suite drives every server with the wrk \
             load generator. Install it (Debian/Ubuntu: `apt-get install wrk`; source: \
             https://github.com/wg/wrk) and run again."
                .to_owned()
        })
}

/// What one `wrk` run measured.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Report {
    /// Completed requests per second.
    pub(crate) requests_per_sec: f64,
    /// The 99th percentile of request latency.
    pub(crate) p99: Duration,
    /// Connect, read, write and timeout errors, summed.
    pub(crate) socket_errors: u64,
}

/// The load of one run: `wrk -t THREADS -c CONNECTIONS -d DURATION --latency URL`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Load {
    /// wrk's threads.
    pub(crate) threads: usize,
    /// Keep-alive connections, spread over the threads.
    pub(crate) connections: usize,
    /// How long it runs.
    pub(crate) duration: Duration,
}

/// Runs `wrk` with `load` against `url` and reads its report. Fails if wrk fails, or if any
/// response was not a success (a broken server is no benchmark).
pub(crate) fn run(wrk: &Path, load: Load, url: &str) -> Result<Report, String> {
    let output = Command::new(wrk)
        .arg(format!("-t{}", load.threads))
        .arg(format!("-c{}", load.connections))
        .arg(format!("-d{}s", load.duration.as_secs()))
        .arg("--latency")
        .arg(url)
        .output()
        .map_err(|err| format!("cannot run {}: {err}", wrk.display()))?;
    let text = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(format!(
            "wrk {}: {}{text}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    parse(&text).map_err(|err| format!("{err}; wrk's report:\n{text}"))
}

/// Reads `Requests/sec`, the `99%` latency, and the error lines of a wrk report.
fn parse(text: &str) -> Result<Report, String> {
    let mut requests_per_sec = None;
    let mut p99 = None;
    let mut socket_errors = 0;
    for line in text.lines().map(str::trim) {
        if let Some(rate) = line.strip_prefix("Requests/sec:") {
            requests_per_sec = rate.trim().parse().ok();
        } else if let Some(latency) = line.strip_prefix("99%") {
            p99 = duration(latency.trim());
        } else if let Some(errors) = line.strip_prefix("Socket errors:") {
            // "connect 0, read 0, write 0, timeout 0"
            socket_errors = errors
                .split(',')
                .filter_map(|part| part.split_whitespace().nth(1)?.parse::<u64>().ok())
                .sum();
        } else if line.starts_with("Non-2xx or 3xx responses:") {
            return Err(format!("the server answered with errors ({line})"));
        }
    }
    Ok(Report {
        requests_per_sec: requests_per_sec.ok_or("no `Requests/sec` line")?,
        p99: p99.ok_or("no `99%` latency line")?,
        socket_errors,
    })
}

/// A wrk duration such as `812.00us`, `1.25ms` or `2.01s`.
fn duration(text: &str) -> Option<Duration> {
    let split = text.find(|c: char| c.is_ascii_alphabetic())?;
    let value: f64 = text[..split].parse().ok()?;
    let unit = match &text[split..] {
        "us" => 1e-6,
        "ms" => 1e-3,
        "s" => 1.0,
        "m" => 60.0,
        _ => return None,
    };
    Some(Duration::from_secs_f64(value * unit))
}

#[cfg(test)]
mod tests {
    use super::*;

    const REPORT: &str = "\
Running 5s test @ http://127.0.0.1:40000/
  2 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   610.12us  300.50us   9.87ms   90.00%
    Req/Sec    52.10k     3.20k   60.00k    70.00%
  Latency Distribution
     50%  560.00us
     75%  700.00us
     90%  850.00us
     99%    1.52ms
  518000 requests in 5.00s, 70.00MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
Requests/sec: 103600.12
Transfer/sec:     14.00MB
";

    #[test]
    fn parses_a_report() {
        let report = parse(REPORT).expect("a valid report");
        assert!((report.requests_per_sec - 103_600.12).abs() < 1e-6);
        assert_eq!(report.p99, Duration::from_micros(1520));
        assert_eq!(report.socket_errors, 3);
    }

    #[test]
    fn rejects_failed_responses() {
        let failed = REPORT.replace(
            "Requests/sec",
            "  Non-2xx or 3xx responses: 5\nRequests/sec",
        );
        assert!(parse(&failed).is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(duration("812.00us"), Some(Duration::from_micros(812)));
        assert_eq!(duration("2.00s"), Some(Duration::from_secs(2)));
        assert_eq!(duration("fast"), None);
    }
}
