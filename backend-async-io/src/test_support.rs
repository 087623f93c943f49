//! What the unit tests of the stream reactor share.

use std::os::unix::net::UnixStream;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use crate::stream::Stream;

/// A connected pair of registered Unix stream sockets.
pub(crate) fn pair() -> (Stream<UnixStream>, Stream<UnixStream>) {
    let (a, b) = UnixStream::pair().unwrap();
    (Stream::new(a).unwrap(), Stream::new(b).unwrap())
}

/// Runs `f` on its own thread and fails the test if it has not finished within 30 s: a lost
/// wake-up shows as a hang, and a hang must fail, not stall the suite.
pub(crate) fn within_30_s<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (done, finished) = mpsc::channel();
    thread::spawn(move || done.send(f()));
    finished
        .recv_timeout(Duration::from_secs(30))
        .expect("a stream operation was never woken")
}
