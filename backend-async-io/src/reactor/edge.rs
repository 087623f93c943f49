//! Edge-triggered readiness for connected stream sockets (Linux epoll), nested in the async-io
//! reactor.
//!
//! async-io registers every source in one-shot mode, so each wait re-arms the socket with an
//! `epoll_ctl`: one system call per request for a request/response protocol. Here each socket
//! is registered once, edge-triggered, in an epoll instance of ours, and its readiness is kept
//! per socket (as in mio and tokio) until an operation reports `EWOULDBLOCK`. That epoll
//! instance is itself one async-io source: whichever thread drives async-io's reactor also
//! dispatches our events, from the waker of that source, so timers, signals and the
//! application's own async-io sources work as before, and re-arming costs one `epoll_ctl` per
//! batch of events instead of one per wait.

use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::task::{Context, Poll, Wake, Waker};

use async_io::Async;
use atomic_waker::AtomicWaker;
use rustix::event::{Timespec, epoll};
use slab::Slab;

use super::{Direction, Ready};

const READABLE: usize = 1;
const WRITABLE: usize = 1 << 1;
const READ_CLOSED: usize = 1 << 2;
const WRITE_CLOSED: usize = 1 << 3;
const ERROR: usize = 1 << 4;
/// The low byte of a source's state holds the readiness bits, the rest counts events, so that
/// clearing readiness observed before an operation cannot erase an event that came after it.
const BITS: usize = 0xff;
const TICK: usize = 1 << 8;

/// How many events one `epoll_wait` takes.
const BATCH: usize = 64;

impl Direction {
    /// The bits that let an operation in this direction proceed (closed and error states too:
    /// the operation then reports them).
    fn ready_mask(self) -> usize {
        match self {
            Direction::Read => READABLE | READ_CLOSED | ERROR,
            Direction::Write => WRITABLE | WRITE_CLOSED | ERROR,
        }
    }

    /// The bit that `EWOULDBLOCK` disproves.
    fn clear_mask(self) -> usize {
        match self {
            Direction::Read => READABLE,
            Direction::Write => WRITABLE,
        }
    }
}

/// One registered socket's readiness and the tasks waiting on it.
struct Source {
    state: AtomicUsize,
    reader: AtomicWaker,
    writer: AtomicWaker,
}

impl Source {
    /// Records an event and takes the wakers it concerns.
    fn record(&self, flags: epoll::EventFlags, wakers: &mut Vec<Waker>) {
        let mut bits = 0;
        if flags.intersects(epoll::EventFlags::IN | epoll::EventFlags::PRI) {
            bits |= READABLE;
        }
        if flags.contains(epoll::EventFlags::OUT) {
            bits |= WRITABLE;
        }
        if flags.contains(epoll::EventFlags::RDHUP) {
            bits |= READ_CLOSED;
        }
        if flags.contains(epoll::EventFlags::HUP) {
            bits |= READ_CLOSED | WRITE_CLOSED;
        }
        if flags.contains(epoll::EventFlags::ERR) {
            bits |= ERROR;
        }
        let _ = self
            .state
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |state| {
                Some((state & !BITS).wrapping_add(TICK) | (state & BITS) | bits)
            });
        if bits & Direction::Read.ready_mask() != 0 {
            wakers.extend(self.reader.take());
        }
        if bits & Direction::Write.ready_mask() != 0 {
            wakers.extend(self.writer.take());
        }
    }

    fn waker(&self, direction: Direction) -> &AtomicWaker {
        match direction {
            Direction::Read => &self.reader,
            Direction::Write => &self.writer,
        }
    }
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Source")
            .field("readiness", &(self.state.load(Ordering::Relaxed) & BITS))
            .finish_non_exhaustive()
    }
}

/// The process's epoll instance for stream sockets, registered with async-io.
struct Reactor {
    epoll: Async<OwnedFd>,
    sources: Mutex<Slab<Arc<Source>>>,
    /// Wakes [`Reactor::drive`] when async-io reports our epoll instance readable.
    dispatch: Waker,
}

static REACTOR: OnceLock<Reactor> = OnceLock::new();

/// The waker of the epoll instance's async-io source: it dispatches the events at once, on the
/// thread that drives async-io's reactor, with no task in between.
struct Dispatch;

impl Wake for Dispatch {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if let Some(reactor) = REACTOR.get() {
            reactor.drive();
        }
    }
}

impl Reactor {
    fn get() -> io::Result<&'static Reactor> {
        if let Some(reactor) = REACTOR.get() {
            return Ok(reactor);
        }
        let epoll = epoll::create(epoll::CreateFlags::CLOEXEC)?;
        let candidate = Reactor {
            // An epoll descriptor never blocks in the zero-timeout waits made here.
            epoll: Async::new_nonblocking(epoll)?,
            sources: Mutex::new(Slab::new()),
            dispatch: Waker::from(Arc::new(Dispatch)),
        };
        // Racing first users each build one; the losers' are dropped unused.
        let reactor = REACTOR.get_or_init(|| candidate);
        reactor.drive();
        Ok(reactor)
    }

    /// Dispatches pending events until async-io has our interest registered again.
    fn drive(&'static self) {
        let mut cx = Context::from_waker(&self.dispatch);
        loop {
            match self.epoll.poll_readable(&mut cx) {
                Poll::Ready(Ok(())) => self.dispatch(),
                Poll::Pending => return,
                Poll::Ready(Err(err)) => {
                    // async-io could not re-arm our descriptor (`epoll_ctl` on a registered
                    // descriptor has no documented way to fail here). Events would stop, so
                    // hand dispatching to a thread of our own instead of losing them.
                    self.fall_back_to_thread(err);
                    return;
                }
            }
        }
    }

    #[cold]
    fn fall_back_to_thread(&'static self, err: io::Error) {
        eprintln!("ginkgo: async-io cannot wait on the stream reactor ({err}); using a thread");
        let spawned = std::thread::Builder::new()
            .name("ginkgo-streams".into())
            .spawn(move || {
                loop {
                    self.wait_and_dispatch(None);
                }
            });
        if let Err(err) = spawned {
            eprintln!("ginkgo: no thread either ({err}); stream sockets will not be woken");
        }
    }

    fn dispatch(&self) {
        self.wait_and_dispatch(Some(&Timespec::default()));
    }

    /// Forgets a socket that was deregistered, or never registered.
    fn remove(&self, key: usize) {
        self.sources
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(key);
    }

    /// Takes the ready events (waiting up to `timeout`) and wakes the tasks they concern.
    fn wait_and_dispatch(&self, timeout: Option<&Timespec>) {
        let mut events = [MaybeUninit::<epoll::Event>::uninit(); BATCH];
        let mut wakers = Vec::new();
        loop {
            let ready = match epoll::wait(self.epoll.get_ref(), &mut events, timeout) {
                Ok((ready, _)) => ready,
                Err(rustix::io::Errno::INTR) => continue,
                // Only a bad descriptor or buffer could fail, and ours are neither.
                Err(_) => return,
            };
            let count = ready.len();
            {
                let sources = self.sources.lock().unwrap_or_else(PoisonError::into_inner);
                for event in ready.iter() {
                    // A socket deregistered after its event was taken may have had its key
                    // reused: the new socket then sees one spurious readiness, which costs
                    // one `EWOULDBLOCK`.
                    if let Some(source) = sources.get(event.data.u64() as usize) {
                        source.record(event.flags, &mut wakers);
                    }
                }
            }
            // Woken outside the lock: a waker may register or drop a socket.
            for waker in wakers.drain(..) {
                waker.wake();
            }
            if count < BATCH {
                return;
            }
        }
    }
}

/// A socket registered, edge-triggered, with the stream reactor.
#[derive(Debug)]
pub(crate) struct Registered<T: AsFd> {
    io: T,
    key: usize,
    source: Arc<Source>,
}

impl<T: AsFd> Registered<T> {
    /// Puts `io` in non-blocking mode and registers it.
    pub(crate) fn new(io: T) -> io::Result<Self> {
        rustix::io::ioctl_fionbio(&io, true)?;
        let reactor = Reactor::get()?;
        // Assume ready: the first operation finds out, and an edge from before registration
        // would otherwise be missed.
        let source = Arc::new(Source {
            state: AtomicUsize::new(READABLE | WRITABLE),
            reader: AtomicWaker::new(),
            writer: AtomicWaker::new(),
        });
        let key = reactor
            .sources
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(source.clone());
        let interest = epoll::EventFlags::IN
            | epoll::EventFlags::OUT
            | epoll::EventFlags::RDHUP
            | epoll::EventFlags::ET;
        let data = epoll::EventData::new_u64(key as u64);
        if let Err(err) = epoll::add(reactor.epoll.get_ref(), &io, data, interest) {
            reactor.remove(key);
            return Err(err.into());
        }
        Ok(Self { io, key, source })
    }

    /// The socket.
    pub(crate) fn get_ref(&self) -> &T {
        &self.io
    }

    /// Ready when the socket may accept an operation in `direction`; otherwise registers the
    /// task to be woken by the next event.
    pub(crate) fn poll_ready(
        &self,
        direction: Direction,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<Ready>> {
        let state = self.source.state.load(Ordering::Acquire);
        if state & direction.ready_mask() != 0 {
            return Poll::Ready(Ok(Ready(state)));
        }
        self.source.waker(direction).register(cx.waker());
        // An event between the load and the registration found no waker to wake.
        let state = self.source.state.load(Ordering::Acquire);
        if state & direction.ready_mask() != 0 {
            return Poll::Ready(Ok(Ready(state)));
        }
        Poll::Pending
    }

    /// Forgets readiness in `direction` that an operation disproved, unless an event arrived
    /// after `ready` was observed.
    pub(crate) fn clear(&self, direction: Direction, ready: Ready) {
        let _ = self
            .source
            .state
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |state| {
                (state & !BITS == ready.0 & !BITS).then_some(state & !direction.clear_mask())
            });
    }
}

impl<T: AsFd> Drop for Registered<T> {
    fn drop(&mut self) {
        if let Some(reactor) = REACTOR.get() {
            // Deregister before the descriptor closes: a duplicate of it elsewhere would keep
            // the registration, and its events, alive.
            let _ = epoll::delete(reactor.epoll.get_ref(), &self.io);
            reactor.remove(self.key);
        }
    }
}
