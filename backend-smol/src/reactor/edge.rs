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
//!
//! A thread can also wait in that epoll instance itself, through [`block_on`]: the smol
//! workers do. async-io then stops watching it, and a worker with nothing to run makes one
//! `epoll_wait` per batch of events, instead of async-io's turn of five system calls (arming
//! its timerfd, waiting, clearing its eventfd, re-arming both) plus ours (draining the nested
//! instance and re-arming it).

use std::future::Future;
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, OwnedFd};
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError, TryLockError};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

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

/// The key of the notifier in our epoll instance; sockets have slab keys, far below it.
const NOTIFY_KEY: u64 = u64::MAX;

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
    /// An eventfd in our epoll instance, edge-triggered: each write wakes the thread waiting
    /// in [`block_on`]. It is never read: every write is an edge of its own, and its 64-bit
    /// count cannot fill up.
    notifier: OwnedFd,
    /// Held by the one thread that waits in our epoll instance from [`block_on`].
    waiter: Mutex<()>,
    /// The threads in [`block_on`] asleep because another one held `waiter`.
    sleeping: Mutex<Vec<Arc<Parked>>>,
}

/// How many threads are in [`block_on`]. While there are any, they take our events
/// themselves: async-io is not asked to watch our epoll instance, and must not take the
/// events they wait for.
static DIRECT: AtomicUsize = AtomicUsize::new(0);

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
        let notifier = rustix::event::eventfd(
            0,
            rustix::event::EventfdFlags::CLOEXEC | rustix::event::EventfdFlags::NONBLOCK,
        )?;
        epoll::add(
            &epoll,
            &notifier,
            epoll::EventData::new_u64(NOTIFY_KEY),
            epoll::EventFlags::IN | epoll::EventFlags::ET,
        )?;
        let candidate = Reactor {
            // An epoll descriptor is only waited on here, never read: async-io's non-blocking
            // mode is no concern of it.
            epoll: Async::new_nonblocking(epoll)?,
            sources: Mutex::new(Slab::new()),
            dispatch: Waker::from(Arc::new(Dispatch)),
            notifier,
            waiter: Mutex::new(()),
            sleeping: Mutex::new(Vec::new()),
        };
        // Racing first users each build one; the losers' are dropped unused.
        let reactor = REACTOR.get_or_init(|| candidate);
        reactor.drive();
        Ok(reactor)
    }

    /// Dispatches pending events until async-io has our interest registered again; once a
    /// thread waits in `block_on`, leaves the events to it and stops asking async-io.
    fn drive(&'static self) {
        let mut cx = Context::from_waker(&self.dispatch);
        loop {
            if DIRECT.load(Ordering::Acquire) > 0 {
                return;
            }
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
        let mut wakers = Vec::new();
        loop {
            let batch = self.collect(timeout, &mut wakers);
            // The notifier's event is for the thread in `block_on`, which this dispatch (on
            // another thread, as that one began waiting) may have taken: pass it on.
            if batch.notified {
                self.notify();
            }
            // Woken outside the lock: a waker may register or drop a socket.
            for waker in wakers.drain(..) {
                waker.wake();
            }
            if !batch.full {
                return;
            }
        }
    }

    /// Waits up to `timeout` for events, takes one batch of them, and adds the wakers they
    /// concern to `wakers`.
    fn collect(&self, timeout: Option<&Timespec>, wakers: &mut Vec<Waker>) -> Batch {
        let mut events = [MaybeUninit::<epoll::Event>::uninit(); BATCH];
        let ready = loop {
            match epoll::wait(self.epoll.get_ref(), &mut events, timeout) {
                Ok((ready, _)) => break ready,
                Err(rustix::io::Errno::INTR) => continue,
                // Only a bad descriptor or buffer could fail, and ours are neither.
                Err(_) => return Batch::default(),
            }
        };
        let mut batch = Batch {
            full: ready.len() == BATCH,
            notified: false,
        };
        let sources = self.sources.lock().unwrap_or_else(PoisonError::into_inner);
        for event in ready.iter() {
            let key = event.data.u64();
            if key == NOTIFY_KEY {
                batch.notified = true;
            // A socket deregistered after its event was taken may have had its key reused:
            // the new socket then sees one spurious readiness, which costs one `EWOULDBLOCK`.
            } else if let Some(source) = sources.get(key as usize) {
                source.record(event.flags, wakers);
            }
        }
        batch
    }

    /// Wakes the thread waiting in our epoll instance.
    fn notify(&self) {
        // Fails only with a full count (2^64 - 2 writes), when a wake-up is pending anyway.
        let _ = rustix::io::write(&self.notifier, &1u64.to_ne_bytes());
    }

    /// Parks `thread` until it is woken, listed as a thread that could take over the wait.
    fn sleep_while_another_waits(&self, thread: &Arc<Parked>, parker: &parking::Parker) {
        self.sleeping
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(thread.clone());
        // The waiting thread may have stopped after this one's try and before it was listed,
        // finding no one to hand over to: then this one must not sleep.
        if self.try_wait().is_none() {
            parker.park();
        }
        self.sleeping
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|other| !Arc::ptr_eq(other, thread));
    }

    /// Gives up the right to wait: the thread goes to run what woke it, and a sleeping one
    /// takes over, so that sockets are not left unwatched while this one is busy.
    fn stop_waiting(&self, waiter: MutexGuard<'_, ()>) {
        drop(waiter);
        self.wake_a_sleeper();
    }

    /// Wakes one thread that [`Reactor::sleep_while_another_waits`], if there is one.
    fn wake_a_sleeper(&self) {
        let next = self
            .sleeping
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        if let Some(next) = next {
            next.unparker.unpark();
        }
    }

    /// The right to wait in our epoll instance, if no other thread has it.
    fn try_wait(&self) -> Option<MutexGuard<'_, ()>> {
        match self.waiter.try_lock() {
            Ok(guard) => Some(guard),
            Err(TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
            Err(TryLockError::WouldBlock) => None,
        }
    }
}

/// What one `epoll_wait` brought.
#[derive(Default)]
struct Batch {
    /// It filled the buffer: more events may be waiting.
    full: bool,
    /// The notifier's event was among them.
    notified: bool,
}

/// Runs `future` on this thread to completion, waiting in our epoll instance while it has
/// nothing to do. See [`crate::block_on`].
pub(crate) fn block_on<T>(future: impl Future<Output = T>) -> T {
    // Before the reactor exists, so that a new one is not registered with async-io.
    DIRECT.fetch_add(1, Ordering::AcqRel);
    let _leave = LeaveDirect;
    let Ok(reactor) = Reactor::get() else {
        // No epoll instance, so no streams either: async-io's own waiting serves.
        return async_io::block_on(future);
    };
    let (parker, unparker) = parking::pair();
    let thread = Arc::new(Parked {
        unparker,
        in_epoll: AtomicBool::new(false),
    });
    let waker = Waker::from(thread.clone());
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future);
    let mut wakers = Vec::new();
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        if parker.park_timeout(Duration::ZERO) {
            // Woken while it ran: the future has more to do at once. Take the events that are
            // ready first, so that sockets are not starved while it stays busy.
            if let Some(waiter) = reactor.try_wait() {
                reactor.collect(Some(&Timespec::default()), &mut wakers);
                reactor.stop_waiting(waiter);
            }
        } else if let Some(waiter) = reactor.try_wait() {
            thread.in_epoll.store(true, Ordering::SeqCst);
            // A wake-up from before `in_epoll` was set did not write to the notifier.
            if !parker.park_timeout(Duration::ZERO) {
                reactor.collect(None, &mut wakers);
            }
            thread.in_epoll.store(false, Ordering::SeqCst);
            reactor.stop_waiting(waiter);
        } else {
            // Another thread waits for the events; this one waits to be woken, by a task or
            // by that thread handing the wait over.
            reactor.sleep_while_another_waits(&thread, &parker);
        }
        for waker in wakers.drain(..) {
            waker.wake();
        }
    }
}

/// Leaves [`block_on`]: a sleeping thread takes over the wait, and the last thread out hands
/// our events back to async-io.
struct LeaveDirect;

impl Drop for LeaveDirect {
    fn drop(&mut self) {
        let last = DIRECT.fetch_sub(1, Ordering::AcqRel) == 1;
        if let Some(reactor) = REACTOR.get() {
            if last {
                reactor.drive();
            } else {
                reactor.wake_a_sleeper();
            }
        }
    }
}

/// The waker of a thread in [`block_on`].
struct Parked {
    unparker: parking::Unparker,
    /// Whether the thread is (about to be) blocked in `epoll_wait`, where only the notifier
    /// reaches it.
    in_epoll: AtomicBool,
}

impl Wake for Parked {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if self.unparker.unpark()
            && self.in_epoll.load(Ordering::SeqCst)
            && let Some(reactor) = REACTOR.get()
        {
            reactor.notify();
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

#[cfg(test)]
mod tests {
    use std::thread;
    use std::time::{Duration, Instant};

    use futures_lite::{AsyncReadExt, AsyncWriteExt};

    use super::block_on;
    use crate::test_support::{echo, pair, round_trips, within_30_s};

    // Sixteen threads in `block_on`: one waits in epoll at a time and must wake the others
    // (parked, or the one in epoll through the notifier) for every event that is theirs.
    #[test]
    fn threads_in_block_on_wake_each_other_for_their_events() {
        const CONNECTIONS: usize = 8;
        const ROUND_TRIPS: u32 = 300;
        let total = within_30_s(|| {
            let threads: Vec<_> = (0..CONNECTIONS)
                .flat_map(|_| {
                    let (mut client, mut server) = pair();
                    [
                        thread::spawn(move || {
                            block_on(echo(&mut server));
                            0
                        }),
                        thread::spawn(move || block_on(round_trips(&mut client, ROUND_TRIPS))),
                    ]
                })
                .collect();
            threads.into_iter().map(|t| t.join().unwrap()).sum::<u32>()
        });
        assert_eq!(total, CONNECTIONS as u32 * ROUND_TRIPS);
    }

    // A thread that leaves the wait to run a long task, or leaves `block_on`, hands the wait
    // over: another thread's socket is still watched. Which thread waits first is up to the
    // scheduler, so the case runs a few times.
    #[test]
    fn a_busy_thread_hands_the_wait_over() {
        for _ in 0..3 {
            let (mut busy_peer, mut busy_side) = pair();
            let (mut quick_peer, mut quick_side) = pair();
            let latency = within_30_s(move || {
                let busy = thread::spawn(move || {
                    block_on(async {
                        busy_side.read_exact(&mut [0u8; 1]).await.unwrap();
                        // Blocks this thread, as a long computation would.
                        thread::sleep(Duration::from_millis(600));
                    });
                });
                let quick = thread::spawn(move || {
                    block_on(quick_side.read_exact(&mut [0u8; 1])).unwrap();
                    Instant::now()
                });
                // Both threads are in `block_on` now, one of them in `epoll_wait`.
                thread::sleep(Duration::from_millis(50));
                futures_lite::future::block_on(busy_peer.write_all(b"b")).unwrap();
                thread::sleep(Duration::from_millis(50));
                let sent = Instant::now();
                futures_lite::future::block_on(quick_peer.write_all(b"q")).unwrap();
                let received = quick.join().unwrap();
                busy.join().unwrap();
                received - sent
            });
            assert!(
                latency < Duration::from_millis(300),
                "a socket waited {latency:?} while the other thread was busy"
            );
        }
    }

    // The reactor exists (and was registered with async-io) before the thread enters
    // `block_on`; async-io's timers then wake that thread while it waits in epoll, which only
    // the notifier can reach.
    #[test]
    fn timers_wake_a_thread_waiting_in_epoll() {
        let (a, b) = pair();
        let fired = within_30_s(|| {
            block_on(async {
                for _ in 0..200 {
                    async_io::Timer::after(Duration::from_micros(200)).await;
                }
                200
            })
        });
        assert_eq!(fired, 200);
        drop((a, b));
    }

    // When the last thread leaves `block_on`, async-io takes the events again: a stream used
    // afterwards from an ordinary `block_on` is still woken.
    #[test]
    fn events_go_back_to_async_io_after_the_last_block_on() {
        let (mut client, mut server) = pair();
        let total = within_30_s(move || {
            let echoing = thread::spawn(move || futures_lite::future::block_on(echo(&mut server)));
            let first = block_on(round_trips(&mut client, 50));
            let then = futures_lite::future::block_on(round_trips(&mut client, 50));
            drop(client);
            echoing.join().unwrap();
            first + then
        });
        assert_eq!(total, 100);
    }
}
