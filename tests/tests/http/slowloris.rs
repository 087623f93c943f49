//! Many slow peers at once (slowloris): connections that each send a request head a byte a
//! second neither keep a prompt client from being answered, nor outlast the header read
//! timeout.

use std::io::{ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ginkgo_api::Runtime;
use ginkgo_api::sync::Mutex;
use ginkgo_http::HttpServer;
use ginkgo_http::http::StatusCode;
use ginkgo_tests::support::eventually;

use crate::client::{self, LIMIT, within};
use crate::serve::{counter, hello, start};

/// How many slow connections are open at once: as many on every backend, the threads backend
/// included (there the server runs a thread per connection, 2,000 threads; the slow side
/// needs none, see [`Slow`]).
const SLOW: usize = 2000;

/// The server's header read timeout in the case: long enough that all the slow connections
/// are open, and have sent a few bytes, before the first one's deadline.
const TIMEOUT: Duration = Duration::from_millis(2500);

/// The bound: a prompt client's `GET /` is answered within this while the slow
/// connections are all open.
const PROMPT: Duration = Duration::from_millis(100);

/// How long after its deadline the server may take to close a slow connection: 2,000 deadlines
/// fall within a fraction of a second, on a shared machine.
const LATE: Duration = Duration::from_millis(1500);

/// How often the slow side looks at its connections.
const TICK: Duration = Duration::from_millis(50);

/// The slow connections are opened this many at a time, each batch accepted by the server
/// before the next: a full listen backlog would delay some handshakes by a second (the SYN
/// retry) and blur the timing of their deadlines.
const BATCH: usize = 100;

/// What each slow connection sends of, one byte a second: a head it never finishes.
const HEAD: &[u8] = b"GET / HTTP/1.1\r\nHost: ginkgo.test\r\nUser-Agent: slowloris\r\n\r\n";

/// One case at a time in the process: each needs over 4,000 descriptors, and on the threads
/// backend 2,000 threads; four at once could exceed the limits of a machine that fits one.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// One slow connection. The slow side is plain non-blocking `std` sockets, all looked at by
/// one loop, so it costs the same on every backend: on the threads backend a task per slow
/// connection would be 2,000 more threads, on top of the server's 2,000.
struct Slow {
    stream: std::net::TcpStream,
    /// Taken just before connecting: the server's deadline for the connection is at least
    /// [`TIMEOUT`] after it.
    connecting: Instant,
    /// How many bytes of [`HEAD`] it has sent.
    sent: usize,
    /// When this side first saw the connection closed by the server (a read of 0 bytes, or an
    /// error).
    closed: Option<Instant>,
}

impl Slow {
    fn connect(addr: SocketAddr) -> Self {
        let connecting = Instant::now();
        let stream = std::net::TcpStream::connect(addr)
            .unwrap_or_else(|err| panic!("slow connection to {addr}: {err}"));
        stream.set_nonblocking(true).expect("a non-blocking socket");
        let mut slow = Self {
            stream,
            connecting,
            sent: 0,
            closed: None,
        };
        slow.tick(connecting);
        slow
    }

    /// Notes whether the server has closed the connection, and sends the next byte of the head
    /// if its second has come by `now`.
    fn tick(&mut self, now: Instant) {
        if self.closed.is_some() {
            return;
        }
        let mut buf = [0u8; 256];
        loop {
            match self.stream.read(&mut buf) {
                // The server may say something before it closes: read on.
                Ok(n) if n > 0 => {}
                Err(err) if err.kind() == ErrorKind::WouldBlock => break,
                Err(err) if err.kind() == ErrorKind::Interrupted => {}
                // End of stream, or a reset: closed either way.
                Ok(_) | Err(_) => {
                    self.closed = Some(Instant::now());
                    return;
                }
            }
        }
        let due = self.connecting + Duration::from_secs(self.sent as u64);
        if self.sent < HEAD.len() && now >= due {
            match self.stream.write(&HEAD[self.sent..=self.sent]) {
                Ok(n) => self.sent += n,
                Err(err) if err.kind() == ErrorKind::WouldBlock => {}
                Err(_) => self.closed = Some(Instant::now()),
            }
        }
    }
}

/// Lifts the soft limit of open files to the hard one, and fails the case, saying what to do,
/// if that is still under `needed`.
fn ensure_descriptors(needed: u64) {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current.is_some_and(|current| current < needed) {
        limit.current = limit.maximum;
        if let Err(err) = setrlimit(Resource::Nofile, limit) {
            panic!("cannot raise the soft limit of open files to {limit:?}: {err}");
        }
    }
    let limit = getrlimit(Resource::Nofile);
    assert!(
        limit.current.is_none_or(|current| current >= needed),
        "the slowloris case needs {needed} open files (a descriptor per end of {SLOW} \
         connections), but the hard limit (RLIMIT_NOFILE) is {:?}: raise it, for example with \
         `ulimit -Hn 8192` as root or `LimitNOFILE=` in a systemd unit",
        limit.maximum
    );
}

/// Times one `GET /` on a fresh connection, from connecting to the whole response.
async fn prompt_get<R: Runtime>(addr: SocketAddr, when: &str) {
    let began = Instant::now();
    let reply = client::get_once::<R>(addr, "/").await;
    let took = began.elapsed();
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (StatusCode::OK, "hello"),
        "{when}"
    );
    assert!(
        took < PROMPT,
        "{when}: a prompt GET / took {took:?}, over the bound of {PROMPT:?}"
    );
}

/// 2,000 connections each sending a request head one byte a second: while they are all open, a
/// prompt client's `GET /` is answered within 100 ms (once when all are open, once more while
/// they trickle), and the server closes each of them at its header read timeout: not before,
/// and within [`LATE`] after.
pub(crate) async fn slowloris_cannot_starve_the_server<R: Runtime>() {
    let _alone = ONE_AT_A_TIME.lock().await;
    ensure_descriptors(2 * SLOW as u64 + 256);
    let server = HttpServer::<R, _>::new("127.0.0.1:0", hello()).header_read_timeout(TIMEOUT);
    let (tree, addr) = start(server).await;
    let mut slow: Vec<Slow> = Vec::with_capacity(SLOW);
    while slow.len() < SLOW {
        slow.extend((0..BATCH.min(SLOW - slow.len())).map(|_| Slow::connect(addr)));
        let opened = slow.len() as u64;
        eventually::<R>("the server accepts the slow connections", LIMIT, || {
            counter(&tree.snapshot(), "connections_accepted") >= opened
        })
        .await;
    }
    let last_opened = slow[SLOW - 1].connecting;
    let opening = last_opened - slow[0].connecting;
    assert!(
        opening + Duration::from_secs(1) + 2 * PROMPT < TIMEOUT,
        "opening {SLOW} connections took {opening:?}: too long to see them all open and \
         trickling before the first header read timeout of {TIMEOUT:?}"
    );
    assert_eq!(counter(&tree.snapshot(), "connections_active"), SLOW as u64);
    prompt_get::<R>(addr, "with all the slow connections open").await;

    let mut trickled = false;
    loop {
        let now = Instant::now();
        slow.iter_mut().for_each(|s| s.tick(now));
        if slow.iter().all(|s| s.closed.is_some()) || now > last_opened + TIMEOUT + LATE {
            break;
        }
        // A second after the last one opened every slow connection has sent its second byte,
        // and none has timed out yet.
        if !trickled && now >= last_opened + Duration::from_secs(1) {
            trickled = true;
            assert!(
                slow.iter().all(|s| s.closed.is_none() && s.sent >= 2),
                "a slow connection closed, or fell behind, before its deadline"
            );
            prompt_get::<R>(addr, "while the slow connections trickle").await;
        }
        ginkgo_api::time::sleep::<R>(TICK).await;
    }

    let open = slow.iter().filter(|s| s.closed.is_none()).count();
    assert_eq!(
        open, 0,
        "{open} of {SLOW} slow connections still open {LATE:?} after their header read timeout"
    );
    let lived = |s: &Slow| s.closed.expect("closed") - s.connecting;
    let shortest = slow.iter().map(lived).min().expect("connections");
    let longest = slow.iter().map(lived).max().expect("connections");
    assert!(
        shortest >= TIMEOUT,
        "a slow connection was closed {shortest:?} after it opened, before the header read \
         timeout of {TIMEOUT:?}"
    );
    assert!(
        longest <= TIMEOUT + LATE,
        "a slow connection was closed {longest:?} after it opened, over {LATE:?} after the \
         header read timeout of {TIMEOUT:?}"
    );
    assert!(
        slow.iter().all(|s| s.sent >= 3),
        "a slow connection sent fewer than 3 bytes in {TIMEOUT:?}"
    );
    drop(slow);
    eventually::<R>(
        "the server counts the slow connections closed",
        LIMIT,
        || counter(&tree.snapshot(), "connections_active") == 0,
    )
    .await;
    assert!(within::<R, _>("stop", tree.stop()).await.is_clean());
}
