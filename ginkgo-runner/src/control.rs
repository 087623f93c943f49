//! The control socket: a Unix socket beside the pid file (mode 0600) through which `status`,
//! `reload`, `stop` and `upgrade` get real answers instead of fire-and-forget signals.
//!
//! Protocol: the client sends one line (`status`, `reload`, `stop` or `upgrade`, at most
//! [`MAX_REQUEST_LINE`] bytes); the server answers with a first line `ok` or `error`, then free
//! text, and closes the connection. [`read_request`] is the server's reader, public for
//! clients of one's own and for the fuzz target in `fuzz/`.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use ginkgo_api::Runtime;
use ginkgo_api::io::{AsyncBufReadExt, AsyncWriteExt, BufReader as AsyncBufReader};
use ginkgo_api::net::{UnixListener, UnixStream};
use ginkgo_api::service::{ServiceHandle, Snapshot};
use ginkgo_api::sync::channel;

/// A request the control socket hands to the serving loop.
pub(super) enum Request {
    /// Reload; the answer (Ok: changed paths, Err: why) goes back on the channel.
    Reload(channel::Sender<Result<String, String>>),
    /// Stop the tree.
    Stop,
    /// Start the program anew and hand over; the answer is the new pid, or why it failed.
    /// The second channel closes once the answer has been written to the client: a process
    /// that handed over waits for it before it exits.
    Upgrade(channel::Sender<Result<u32, String>>, channel::Receiver<()>),
}

/// Binds the control socket, replacing a leftover file (the caller holds the pid file lock,
/// so no live process uses it), and makes it private to its owner.
pub(super) fn bind<R: Runtime>(path: &Path) -> io::Result<UnixListener<R>> {
    match std::fs::remove_file(path) {
        Ok(()) => tracing::info!(socket = %path.display(), "removed a stale control socket"),
        Err(err) if err.kind() == io::ErrorKind::NotFound => {}
        Err(err) => return Err(err),
    }
    let listener = std::os::unix::net::UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    UnixListener::from_std(listener)
}

/// Where `status` comes from.
#[derive(Clone)]
pub(super) enum Status {
    /// This process's tree.
    Tree(ServiceHandle),
    /// A master's report on its workers: blocking (it asks each worker), so it runs in a
    /// blocking task.
    Report(Arc<dyn Fn() -> String + Send + Sync>),
}

impl Status {
    async fn render<R: Runtime>(&self) -> String {
        match self {
            Status::Tree(tree) => render(&tree.snapshot(), SystemTime::now()),
            Status::Report(report) => {
                let report = report.clone();
                ginkgo_api::spawn_blocking::<R, _, _>(move || report())
                    .await
                    .unwrap_or_else(|err| {
                        format!("pid {}\nstatus failed: {err}\n", std::process::id())
                    })
            }
        }
    }
}

/// Serves control requests until the task is aborted.
pub(super) async fn serve<R: Runtime>(
    listener: UnixListener<R>,
    status: Status,
    config: ginkgo_config::Config,
    requests: channel::Sender<Request>,
    upgrading: Arc<AtomicBool>,
) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(err) => {
                tracing::warn!(%err, "control socket accept failed");
                ginkgo_api::time::sleep::<R>(Duration::from_millis(100)).await;
                continue;
            }
        };
        let status = status.clone();
        let config = config.clone();
        let requests = requests.clone();
        let upgrading = upgrading.clone();
        // Each client is answered in its own task, so a slow one cannot block the others.
        drop(ginkgo_api::spawn::<R, _>(async move {
            if let Err(err) = answer(stream, &status, &config, &requests, &upgrading).await {
                tracing::debug!(%err, "control client went away");
            }
        }));
    }
}

/// What a control client asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// The service tree, one line per service.
    Status,
    /// The settings in force, each with its source.
    Config,
    /// Reload the configuration and the services.
    Reload,
    /// Stop the daemon.
    Stop,
    /// Start the program anew, hand it the sockets, retire this process once it is ready.
    Upgrade,
}

/// The longest request line read, newline included: commands are a few bytes, and a client
/// that sends more (or never a newline) must not make the daemon buffer it.
pub const MAX_REQUEST_LINE: usize = 256;

/// Reads one request line from `reader` (at most [`MAX_REQUEST_LINE`] bytes) and parses it.
/// The outer error is the connection's; the inner one is the answer to send back.
///
/// # Errors
///
/// Passes on read errors; a line that is too long, not UTF-8 or not a command is an `Ok(Err)`
/// naming what was wrong.
pub async fn read_request<Rd>(reader: &mut Rd) -> io::Result<Result<Command, String>>
where
    Rd: ginkgo_api::io::AsyncBufRead + Unpin,
{
    use ginkgo_api::io::AsyncReadExt as _;
    let mut line = Vec::new();
    let limit = u64::try_from(MAX_REQUEST_LINE).unwrap_or(u64::MAX);
    (&mut *reader)
        .take(limit)
        .read_until(b'\n', &mut line)
        .await?;
    if line.len() >= MAX_REQUEST_LINE && !line.ends_with(b"\n") {
        return Ok(Err(format!(
            "request longer than {MAX_REQUEST_LINE} bytes; expected status, config, reload, stop or upgrade"
        )));
    }
    Ok(parse_command(&line))
}

/// Parses one request line (surrounding white space ignored).
///
/// # Errors
///
/// Names what is wrong with a line that is not UTF-8 or not a command.
pub fn parse_command(line: &[u8]) -> Result<Command, String> {
    let Ok(text) = std::str::from_utf8(line) else {
        return Err(
            "request is not UTF-8 text; expected status, config, reload, stop or upgrade"
                .to_owned(),
        );
    };
    match text.trim() {
        "status" => Ok(Command::Status),
        "config" => Ok(Command::Config),
        "reload" => Ok(Command::Reload),
        "stop" => Ok(Command::Stop),
        "upgrade" => Ok(Command::Upgrade),
        other => Err(format!(
            "unknown command {other:?}; expected status, config, reload, stop or upgrade"
        )),
    }
}

async fn answer<R: Runtime>(
    stream: UnixStream<R>,
    status: &Status,
    config: &ginkgo_config::Config,
    requests: &channel::Sender<Request>,
    upgrading: &AtomicBool,
) -> io::Result<()> {
    let mut reader = AsyncBufReader::new(stream);
    let request =
        ginkgo_api::time::timeout::<R, _>(Duration::from_secs(5), read_request(&mut reader))
            .await??;
    let mut stream = reader.into_inner();
    // Dropped (closing its channel) once the answer is written.
    let mut written_guard: Option<channel::Sender<()>> = None;
    let reply = match request {
        Ok(Command::Status) => format!("ok\n{}", status.render::<R>().await),
        Ok(Command::Config) => format!("ok\n{}", super::settings_text(config)),
        Ok(Command::Reload) => {
            let (tx, rx) = channel::bounded(1);
            let _ = requests.send(Request::Reload(tx)).await;
            match rx.recv().await {
                Ok(Ok(changed)) => format!("ok\n{changed}\n"),
                Ok(Err(error)) => format!("error\n{error}\n"),
                Err(_) => "error\nthe daemon is stopping\n".to_owned(),
            }
        }
        Ok(Command::Stop) => {
            let _ = requests.send(Request::Stop).await;
            "ok\nstopping\n".to_owned()
        }
        Ok(Command::Upgrade) if upgrading.swap(true, Ordering::AcqRel) => {
            "error\nan upgrade is already in progress; wait for its outcome\n".to_owned()
        }
        Ok(Command::Upgrade) => {
            let (tx, rx) = channel::bounded(1);
            let (written, answer_written) = channel::bounded(1);
            written_guard = Some(written);
            let _ = requests.send(Request::Upgrade(tx, answer_written)).await;
            match rx.recv().await {
                Ok(Ok(pid)) => format!("ok\nupgraded to pid {pid}\n"),
                Ok(Err(error)) => format!("error\n{error}\n"),
                Err(_) => {
                    upgrading.store(false, Ordering::Release);
                    "error\nthe daemon is stopping\n".to_owned()
                }
            }
        }
        Err(problem) => format!("error\n{problem}\n"),
    };
    stream.write_all(reply.as_bytes()).await?;
    let closed = stream.close().await;
    drop(written_guard);
    closed
}

/// The tree as `status` prints it: the pid, then one line per service, indented by depth.
pub(super) fn render(snapshot: &Snapshot, now: SystemTime) -> String {
    format!(
        "pid {}\n{}",
        std::process::id(),
        render_tree(snapshot, now, 0)
    )
}

/// One line per service, indented by depth (from `depth`).
pub(super) fn render_tree(snapshot: &Snapshot, now: SystemTime, depth: usize) -> String {
    fn walk(out: &mut String, node: &Snapshot, depth: usize, now: SystemTime) {
        let since = now
            .duration_since(node.since)
            .map_or_else(|_| "-".to_owned(), |d| format!("{}s", d.as_secs()));
        let name = format!("{}{}", "  ".repeat(depth), node.name);
        out.push_str(&format!(
            "{name:<28} {:<9} for {since:<8} restarts {:<3} tasks {}\n",
            node.state.as_str(),
            node.restarts,
            node.tasks
        ));
        if let Some(failure) = &node.last_failure {
            out.push_str(&format!(
                "{}  last failure: {failure}\n",
                "  ".repeat(depth)
            ));
        }
        if let Some(note) = &node.note {
            out.push_str(&format!("{}  {note}\n", "  ".repeat(depth)));
        }
        for child in &node.children {
            walk(out, child, depth + 1, now);
        }
    }
    let mut out = String::new();
    walk(&mut out, snapshot, depth, now);
    out
}

/// Sends `command` to the control socket at `path` and returns (success, text).
///
/// # Errors
///
/// Fails if nothing listens there or the answer is malformed.
pub(super) fn request(path: &Path, command: &str, wait: Duration) -> io::Result<(bool, String)> {
    let mut stream = std::os::unix::net::UnixStream::connect(path)?;
    stream.set_read_timeout(Some(wait))?;
    stream.set_write_timeout(Some(Duration::from_secs(5)))?;
    stream.write_all(format!("{command}\n").as_bytes())?;
    let mut reader = BufReader::new(stream);
    let mut first = String::new();
    reader.read_line(&mut first)?;
    let mut rest = String::new();
    reader.read_to_string(&mut rest)?;
    match first.trim() {
        "ok" => Ok((true, rest)),
        "error" => Ok((false, rest)),
        other => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("unexpected answer {other:?} from the control socket"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(bytes: &[u8]) -> Result<Command, String> {
        let mut reader = futures_lite::io::BufReader::new(bytes);
        futures_lite::future::block_on(read_request(&mut reader)).expect("no I/O error")
    }

    #[test]
    fn commands_parse() {
        assert_eq!(read(b"status\n"), Ok(Command::Status));
        assert_eq!(read(b"  reload \r\n"), Ok(Command::Reload));
        assert_eq!(read(b"stop"), Ok(Command::Stop));
        assert_eq!(read(b"upgrade\n"), Ok(Command::Upgrade));
    }

    #[test]
    fn bad_requests_are_answered_not_buffered() {
        let unknown = read(b"restart\n").unwrap_err();
        assert!(unknown.contains("unknown command \"restart\""), "{unknown}");
        let binary = read(b"\xff\xfe\n").unwrap_err();
        assert!(binary.contains("not UTF-8"), "{binary}");
        let endless = vec![b'a'; 10 * MAX_REQUEST_LINE];
        let long = read(&endless).unwrap_err();
        assert!(long.contains("longer than 256 bytes"), "{long}");
        // Only the first line counts.
        assert_eq!(read(b"stop\nstatus\n"), Ok(Command::Stop));
    }
}
