//! What the unit tests of the stream reactor share.

use std::os::unix::net::UnixStream;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use futures_lite::{AsyncReadExt, AsyncWriteExt};

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

/// Makes `count` round trips of a 4-byte counter through `client`, checking each echo;
/// returns `count`.
pub(crate) async fn round_trips(client: &mut Stream<UnixStream>, count: u32) -> u32 {
    let mut buf = [0u8; 4];
    for i in 0..count {
        client.write_all(&i.to_le_bytes()).await.unwrap();
        client.read_exact(&mut buf).await.unwrap();
        assert_eq!(u32::from_le_bytes(buf), i);
    }
    count
}

/// Sends back every 4 bytes that arrive, until the peer closes.
pub(crate) async fn echo(server: &mut Stream<UnixStream>) {
    let mut buf = [0u8; 4];
    while server.read_exact(&mut buf).await.is_ok() {
        server.write_all(&buf).await.unwrap();
    }
}
