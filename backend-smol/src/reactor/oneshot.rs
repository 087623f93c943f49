//! Readiness through async-io's one-shot registrations, for systems without epoll.

use std::io;
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, ready};

use async_io::Async;

use super::{Direction, Ready};

/// A socket registered with async-io, with whether each direction may be ready.
#[derive(Debug)]
pub(crate) struct Registered<T> {
    io: Async<T>,
    readable: AtomicBool,
    writable: AtomicBool,
}

impl<T: AsFd> Registered<T> {
    /// Puts `io` in non-blocking mode and registers it.
    pub(crate) fn new(io: T) -> io::Result<Self> {
        Ok(Self {
            io: Async::new(io)?,
            readable: AtomicBool::new(true),
            writable: AtomicBool::new(true),
        })
    }

    /// The socket.
    pub(crate) fn get_ref(&self) -> &T {
        self.io.get_ref()
    }

    fn flag(&self, direction: Direction) -> &AtomicBool {
        match direction {
            Direction::Read => &self.readable,
            Direction::Write => &self.writable,
        }
    }

    /// Ready when the socket may accept an operation in `direction`; otherwise registers the
    /// task to be woken when it may.
    pub(crate) fn poll_ready(
        &self,
        direction: Direction,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<Ready>> {
        let flag = self.flag(direction);
        if !flag.load(Ordering::Acquire) {
            match direction {
                Direction::Read => ready!(self.io.poll_readable(cx))?,
                Direction::Write => ready!(self.io.poll_writable(cx))?,
            }
            flag.store(true, Ordering::Release);
        }
        Poll::Ready(Ok(Ready(0)))
    }

    /// Forgets readiness in `direction` that an operation disproved. The next wait re-arms the
    /// one-shot registration, which reports readiness that is already there.
    pub(crate) fn clear(&self, direction: Direction, _ready: Ready) {
        self.flag(direction).store(false, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::os::unix::net::UnixStream;
    use std::task::{Context, Poll, Waker};

    use super::{Direction, Registered};

    #[test]
    fn readiness_is_kept_until_disproved_and_then_waited_for() {
        let (a, mut b) = UnixStream::pair().unwrap();
        let a = Registered::new(a).unwrap();
        let mut socket: &UnixStream = a.get_ref();
        let mut cx = Context::from_waker(Waker::noop());

        // Assumed ready at first; the read disproves it.
        let Poll::Ready(Ok(ready)) = a.poll_ready(Direction::Read, &mut cx) else {
            panic!("a new socket is assumed readable");
        };
        let err = socket.read(&mut [0; 8]).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::WouldBlock);
        a.clear(Direction::Read, ready);
        assert!(a.poll_ready(Direction::Read, &mut cx).is_pending());

        // Data arrives: the reactor reports it.
        b.write_all(b"hi").unwrap();
        let ready =
            async_io::block_on(std::future::poll_fn(|cx| a.poll_ready(Direction::Read, cx)));
        assert!(ready.is_ok());
        let mut buf = [0; 8];
        assert_eq!(socket.read(&mut buf).unwrap(), 2);

        // Writing was never disproved, so it needs no wait.
        assert!(a.poll_ready(Direction::Write, &mut cx).is_ready());
    }
}
