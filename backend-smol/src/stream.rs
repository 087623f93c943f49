//! [`Stream`]: a connected stream socket, read and written with one system call per operation
//! where possible.

use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::net::Shutdown;
use std::os::fd::AsFd;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use futures_io::{AsyncRead, AsyncWrite};
use ginkgo_backend_kit::Socket;

use crate::reactor::{Direction, Registered};

/// A connected stream socket, put in non-blocking mode and registered for readiness; clones of
/// the `Arc` (split halves) share the registration.
///
/// On Linux the socket is registered once, edge-triggered, with an epoll instance of ours
/// (see `reactor`: threads in [`crate::block_on`] wait in it, otherwise it is one async-io
/// source), so waiting costs no `epoll_ctl` per wait as async-io's one-shot registrations do. Readiness is remembered until an operation disproves it: after a
/// short read, which emptied the receive buffer, the next read waits for the socket to become
/// readable instead of making a system call that would only fail with `EWOULDBLOCK` (tokio
/// does the same). For a request/response protocol that saves two system calls per request
/// over async-net.
#[derive(Debug)]
pub struct Stream<T: AsFd> {
    io: Arc<Registered<T>>,
}

impl<T: AsFd> Stream<T> {
    /// Puts a socket in non-blocking mode and registers it.
    pub fn new(io: T) -> io::Result<Self> {
        Registered::new(io).map(|io| Self { io: Arc::new(io) })
    }

    /// The `std` socket.
    pub fn get_ref(&self) -> &T {
        self.io.get_ref()
    }

    /// Another handle to the same socket and registration (for split halves).
    pub fn share(&self) -> Self {
        Self {
            io: self.io.clone(),
        }
    }
}

impl<T: Socket> Stream<T>
where
    for<'a> &'a T: Read + Write,
{
    /// Runs `op`, which moves at most `wanted` bytes in `direction`, once the socket may be
    /// ready for it. `EWOULDBLOCK` disproves readiness and waits; so does a short transfer,
    /// which emptied the receive buffer or filled the send buffer, for the next operation.
    fn poll_io(
        &mut self,
        cx: &mut Context<'_>,
        direction: Direction,
        wanted: usize,
        mut op: impl FnMut(&T) -> io::Result<usize>,
    ) -> Poll<io::Result<usize>> {
        loop {
            let ready = ready!(self.io.poll_ready(direction, cx))?;
            match op(self.io.get_ref()) {
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                    self.io.clear(direction, ready);
                }
                Ok(n) => {
                    if n > 0 && n < wanted {
                        self.io.clear(direction, ready);
                    }
                    return Poll::Ready(Ok(n));
                }
                Err(err) => return Poll::Ready(Err(err)),
            }
        }
    }
}

impl<T: Socket> AsyncRead for Stream<T>
where
    for<'a> &'a T: Read + Write,
{
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let wanted = buf.len();
        self.get_mut()
            .poll_io(cx, Direction::Read, wanted, |mut socket| socket.read(buf))
    }

    fn poll_read_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &mut [IoSliceMut<'_>],
    ) -> Poll<io::Result<usize>> {
        let wanted = bufs.iter().map(|buf| buf.len()).sum();
        self.get_mut()
            .poll_io(cx, Direction::Read, wanted, |mut socket| {
                socket.read_vectored(bufs)
            })
    }
}

impl<T: Socket> AsyncWrite for Stream<T>
where
    for<'a> &'a T: Read + Write,
{
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let wanted = buf.len();
        self.get_mut()
            .poll_io(cx, Direction::Write, wanted, |mut socket| socket.write(buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let wanted = bufs.iter().map(|buf| buf.len()).sum();
        self.get_mut()
            .poll_io(cx, Direction::Write, wanted, |mut socket| {
                socket.write_vectored(bufs)
            })
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Sockets have no user-space buffer.
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.io.get_ref().shutdown(Shutdown::Write))
    }
}

#[cfg(test)]
mod tests {
    use std::thread;
    use std::time::Duration;

    use futures_lite::future::block_on;
    use futures_lite::{AsyncReadExt, AsyncWriteExt};

    use crate::test_support::{echo, pair, round_trips, within_30_s};

    // Four MiB is far more than a socket buffer holds, so the writer meets `EWOULDBLOCK` many
    // times and must be woken by the writable edge each time.
    #[test]
    fn large_write_waits_for_a_slow_reader() {
        let (mut writer, mut reader) = pair();
        let data: Vec<u8> = (0..4 << 20).map(|i: u32| (i % 251) as u8).collect();
        let expected = data.clone();
        let read = within_30_s(move || {
            let writing = thread::spawn(move || {
                block_on(writer.write_all(&data)).unwrap();
            });
            let mut received = Vec::new();
            let mut chunk = [0u8; 4096];
            loop {
                let n = block_on(reader.read(&mut chunk)).unwrap();
                if n == 0 {
                    break;
                }
                received.extend_from_slice(&chunk[..n]);
                if received.len() % (256 << 10) < 4096 {
                    thread::sleep(Duration::from_millis(2));
                }
            }
            writing.join().unwrap();
            received
        });
        assert_eq!(read.len(), expected.len());
        assert!(read == expected, "the bytes arrived changed");
    }

    #[test]
    fn waiting_reader_sees_the_peer_close() {
        let (mut reader, peer) = pair();
        let n = within_30_s(move || {
            let closing = thread::spawn(move || {
                thread::sleep(Duration::from_millis(50));
                drop(peer);
            });
            let n = block_on(reader.read(&mut [0u8; 16])).unwrap();
            closing.join().unwrap();
            n
        });
        assert_eq!(n, 0);
    }

    // Many connections doing short round trips on two threads each: every read after the
    // first empties the buffer, so each round trip clears readiness and waits for an edge,
    // racing the event that sets it again. A lost wake-up hangs and fails the test.
    #[test]
    fn round_trips_on_many_connections_never_lose_a_wake_up() {
        const CONNECTIONS: usize = 32;
        const ROUND_TRIPS: u32 = 500;
        let total = within_30_s(|| {
            let threads: Vec<_> = (0..CONNECTIONS)
                .flat_map(|_| {
                    let (mut client, mut server) = pair();
                    let echo = thread::spawn(move || {
                        block_on(echo(&mut server));
                        0
                    });
                    let ask =
                        thread::spawn(move || block_on(round_trips(&mut client, ROUND_TRIPS)));
                    [echo, ask]
                })
                .collect();
            threads.into_iter().map(|t| t.join().unwrap()).sum::<u32>()
        });
        assert_eq!(total, CONNECTIONS as u32 * ROUND_TRIPS);
    }

    // The halves of one socket wait on their own directions: a read half parked for a reply
    // must not swallow the wake-up of the write half, nor the other way round.
    #[test]
    fn shared_halves_wait_independently() {
        let (stream, mut peer) = pair();
        let mut read_half = stream.share();
        let mut write_half = stream;
        let reply = within_30_s(move || {
            let reading = thread::spawn(move || {
                let mut buf = [0u8; 5];
                block_on(read_half.read_exact(&mut buf)).unwrap();
                buf
            });
            thread::sleep(Duration::from_millis(20));
            block_on(async {
                write_half.write_all(b"ping!").await.unwrap();
                let mut buf = [0u8; 5];
                peer.read_exact(&mut buf).await.unwrap();
                assert_eq!(&buf, b"ping!");
                peer.write_all(b"pong!").await.unwrap();
            });
            reading.join().unwrap()
        });
        assert_eq!(&reply, b"pong!");
    }
}
