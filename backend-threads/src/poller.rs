//! The per-thread poller: a thread running a threads-backend `block_on` sleeps in its own
//! `poll(2)` on the descriptors its future waits for, a wake-up descriptor (an eventfd on
//! Linux) and the nearest local timer deadline, so the kernel wakes the thread directly.
//!
//! Registrations are one-shot: an entry stays until it fires (its descriptor is ready, reports an
//! error or hang-up, or its deadline passes) or until its socket or sleep is dropped on this
//! thread, because combinators may re-poll only the sub-future that was woken. A stale entry
//! (its owner moved to another thread) costs at most one spurious wake-up.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::future::Future;
use std::io::{self, Read, Write};
#[cfg(any(target_os = "linux", target_os = "android"))]
use std::os::fd::OwnedFd;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::pin::pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Instant;

#[cfg(any(target_os = "linux", target_os = "android"))]
use rustix::event::EventfdFlags;
use rustix::event::{PollFd, PollFlags, Timespec};

/// The owner is running (polling its future, or about to wait).
const EMPTY: u8 = 0;
/// Woken since the owner last polled its future.
const NOTIFIED: u8 = 1;
/// The owner is (about to be) asleep in `poll(2)`: a wake must ring its alarm.
const PARKED: u8 = 2;

/// After this many loop turns without sleeping (the future keeps waking itself), the loop
/// checks descriptors and timers without blocking, so they cannot be starved.
const FAIRNESS_TURNS: u32 = 64;

/// The descriptor a poller sleeps on besides the sockets, written to wake it from another
/// thread.
enum Alarm {
    /// An eventfd: one descriptor, one 8-byte write to ring, one read to reset.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    EventFd(OwnedFd),
    /// Elsewhere (or without eventfd): a connected non-blocking socket pair, read end first.
    Pair(UnixStream, UnixStream),
}

impl Alarm {
    fn new() -> io::Result<Self> {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        if let Ok(fd) = rustix::event::eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK) {
            return Ok(Alarm::EventFd(fd));
        }
        Self::pair()
    }

    fn pair() -> io::Result<Self> {
        let (read, write) = UnixStream::pair()?;
        read.set_nonblocking(true)?;
        write.set_nonblocking(true)?;
        Ok(Alarm::Pair(read, write))
    }

    /// The end to wait on for readability.
    fn fd(&self) -> BorrowedFd<'_> {
        match self {
            #[cfg(any(target_os = "linux", target_os = "android"))]
            Alarm::EventFd(fd) => fd.as_fd(),
            Alarm::Pair(read, _) => read.as_fd(),
        }
    }

    fn ring(&self) {
        // An error means the counter or buffer is full: the alarm is readable already.
        match self {
            #[cfg(any(target_os = "linux", target_os = "android"))]
            Alarm::EventFd(fd) => drop(rustix::io::write(fd, &1u64.to_ne_bytes())),
            Alarm::Pair(_, write) => drop((&*write).write(&[1])),
        }
    }

    /// Makes the alarm unreadable again.
    fn reset(&self) {
        match self {
            // One read zeroes the counter; an error means it was zero already.
            #[cfg(any(target_os = "linux", target_os = "android"))]
            Alarm::EventFd(fd) => drop(rustix::io::read(fd, &mut [0u8; 8])),
            Alarm::Pair(read, _) => {
                let mut buf = [0u8; 64];
                while matches!((&*read).read(&mut buf), Ok(n) if n > 0) {}
            }
        }
    }
}

/// The part of a poller that wakers on any thread can reach.
pub(crate) struct Shared {
    state: AtomicU8,
    alarm: Alarm,
}

impl Shared {
    /// Marks the owner notified; rings the alarm only when the owner is asleep in `poll(2)`,
    /// which means at most one system call per wake-up, and none for wakes from the owner
    /// itself (it is never asleep while running code).
    pub(crate) fn notify(&self) {
        if self.state.swap(NOTIFIED, Ordering::AcqRel) == PARKED {
            self.alarm.ring();
        }
    }
}

impl Wake for Shared {
    fn wake(self: Arc<Self>) {
        self.notify();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.notify();
    }
}

/// Something a poller can wait on: a socket that may be closed by its owner at any time.
pub(crate) trait Source: Send + Sync {
    /// The descriptor to wait on.
    fn fd(&self) -> BorrowedFd<'_>;
    /// Whether a user still holds the socket; a closed source is dropped from the table.
    fn is_open(&self) -> bool;
    /// Records that `poller` may hold this source in `poll(2)`, so that closing it can wake
    /// that thread to let go of the descriptor.
    fn note_poller(&self, poller: &Arc<Shared>);
}

/// The direction a registration waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Interest {
    /// Readable (or end-of-file, error, hang-up; for a listener: a pending connection).
    Read,
    /// Writable (or error, hang-up; for a connecting socket: connected or failed).
    Write,
}

impl Interest {
    fn flags(self) -> PollFlags {
        match self {
            Interest::Read => PollFlags::IN,
            Interest::Write => PollFlags::OUT,
        }
    }
}

/// Wakers waiting on one (source, direction).
struct IoWait {
    source: Weak<dyn Source>,
    key: usize,
    interest: Interest,
    waker: Waker,
    /// Further waiters with other wakers (rare: two futures of one thread on one socket).
    others: Vec<Waker>,
}

/// More distinct waiters than this on one (source, direction) are all woken and dropped: each
/// re-registers if it still waits, so nothing is lost and the list stays bounded.
const MAX_OTHERS: usize = 16;

impl IoWait {
    fn add(&mut self, waker: &Waker) {
        if self.waker.will_wake(waker) || self.others.iter().any(|w| w.will_wake(waker)) {
            return;
        }
        if self.others.len() >= MAX_OTHERS {
            self.others.drain(..).for_each(Waker::wake);
        }
        self.others.push(waker.clone());
    }

    fn wake_into(self, wakers: &mut Vec<Waker>) {
        wakers.push(self.waker);
        wakers.extend(self.others);
    }
}

/// A thread's poller, alive while a threads-backend `block_on` runs on the thread.
pub(crate) struct Poller {
    shared: Arc<Shared>,
    waker: Waker,
    io: RefCell<Vec<IoWait>>,
    timers: RefCell<BTreeMap<(Instant, u64), Waker>>,
    /// Scratch space of [`Poller::wait`], kept between waits.
    buffers: Cell<Buffers>,
}

#[derive(Default)]
struct Buffers {
    sources: Vec<Arc<dyn Source>>,
    ready: Vec<PollFlags>,
    wakers: Vec<Waker>,
}

thread_local! {
    static CURRENT: RefCell<Option<Rc<Poller>>> = const { RefCell::new(None) };
}

/// Runs `f` with this thread's poller; `None` when the thread has none (it is not inside a
/// threads-backend `block_on`).
pub(crate) fn with_current<R>(f: impl FnOnce(&Poller) -> R) -> Option<R> {
    CURRENT
        .try_with(|current| current.borrow().as_ref().map(|poller| f(poller)))
        .ok()
        .flatten()
}

/// A process-wide unique timer id, so a timer can be found again in any poller.
pub(crate) fn next_timer_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// The identity of a source in the table: the address of its shared allocation.
pub(crate) fn source_key<S: Source>(source: &Arc<S>) -> usize {
    Arc::as_ptr(source).cast::<()>() as usize
}

impl Poller {
    fn new(alarm: Alarm) -> Self {
        let shared = Arc::new(Shared {
            state: AtomicU8::new(EMPTY),
            alarm,
        });
        Self {
            waker: Waker::from(shared.clone()),
            shared,
            io: RefCell::new(Vec::new()),
            timers: RefCell::new(BTreeMap::new()),
            buffers: Cell::new(Buffers::default()),
        }
    }

    /// Whether `shared` is this poller's.
    pub(crate) fn is(&self, shared: &Shared) -> bool {
        std::ptr::eq(Arc::as_ptr(&self.shared), shared)
    }

    /// Wakes `waker` once `source` is ready for `interest` (or reports an error or hang-up).
    pub(crate) fn register_io<S: Source + 'static>(
        &self,
        source: &Arc<S>,
        interest: Interest,
        waker: &Waker,
    ) {
        let key = source_key(source);
        let mut io = self.io.borrow_mut();
        if let Some(wait) = io
            .iter_mut()
            .find(|wait| wait.key == key && wait.interest == interest)
        {
            wait.add(waker);
            return;
        }
        let weak: Weak<S> = Arc::downgrade(source);
        io.push(IoWait {
            source: weak,
            key,
            interest,
            waker: waker.clone(),
            others: Vec::new(),
        });
        drop(io);
        source.note_poller(&self.shared);
    }

    /// Forgets the registrations of the source `key` for `interests`, without waking them.
    pub(crate) fn deregister_io(&self, key: usize, interests: &[Interest]) {
        self.io
            .borrow_mut()
            .retain(|wait| wait.key != key || !interests.contains(&wait.interest));
    }

    /// Registers (or moves) timer `id` to wake `waker` at `deadline`. `previous` is the key the
    /// timer was registered under before, if any.
    pub(crate) fn register_timer(
        &self,
        previous: Option<(Instant, u64)>,
        deadline: Instant,
        id: u64,
        waker: &Waker,
    ) {
        let mut timers = self.timers.borrow_mut();
        if let Some(previous) = previous {
            if previous == (deadline, id) {
                if let Some(existing) = timers.get_mut(&previous) {
                    if !existing.will_wake(waker) {
                        existing.clone_from(waker);
                    }
                    return;
                }
            } else {
                timers.remove(&previous);
            }
        }
        timers.insert((deadline, id), waker.clone());
    }

    /// Moves a registered timer to `deadline`, keeping its waker. Returns whether this poller
    /// had it.
    pub(crate) fn move_timer(&self, previous: (Instant, u64), deadline: Instant) -> bool {
        let mut timers = self.timers.borrow_mut();
        match timers.remove(&previous) {
            Some(waker) => {
                timers.insert((deadline, previous.1), waker);
                true
            }
            None => false,
        }
    }

    /// Forgets a timer without waking it.
    pub(crate) fn deregister_timer(&self, key: (Instant, u64)) {
        self.timers.borrow_mut().remove(&key);
    }

    /// Sleeps until a registered descriptor is ready, a timer expires or the waker is called
    /// from another thread (`block` = false: only checks), then wakes the registrants.
    fn wait(&self, block: bool) {
        let timeout = if block {
            self.timers.borrow().keys().next().map(|&(deadline, _)| {
                let left = deadline.saturating_duration_since(Instant::now());
                // Only a duration beyond any real deadline overflows a timespec.
                Timespec::try_from(left).unwrap_or(Timespec {
                    tv_sec: i64::MAX,
                    tv_nsec: 0,
                })
            })
        } else {
            Some(Timespec::default())
        };

        // Hold every live source for the duration of the poll: their descriptors cannot be
        // closed under it. A closed source (no user handle left) is dropped from the table.
        let mut buffers = self.buffers.take();
        {
            let mut io = self.io.borrow_mut();
            let sources = &mut buffers.sources;
            io.retain(|wait| match wait.source.upgrade() {
                Some(source) if source.is_open() => {
                    sources.push(source);
                    true
                }
                _ => false,
            });
        }
        {
            let io = self.io.borrow();
            let entries = || {
                buffers.sources.iter().zip(io.iter()).map(|(source, wait)| {
                    PollFd::from_borrowed_fd(source.fd(), wait.interest.flags())
                })
            };
            let alarm = PollFd::from_borrowed_fd(self.shared.alarm.fd(), PollFlags::IN);
            // Most threads wait on one or two sockets: keep their poll set on the stack.
            const ON_STACK: usize = 4;
            if buffers.sources.len() < ON_STACK {
                let mut fds: [PollFd<'_>; ON_STACK] = std::array::from_fn(|_| alarm.clone());
                let used = 1 + buffers.sources.len();
                for (slot, fd) in fds[1..].iter_mut().zip(entries()) {
                    *slot = fd;
                }
                poll_into(&mut fds[..used], timeout.as_ref(), &mut buffers.ready);
            } else {
                let mut fds: Vec<PollFd<'_>> = std::iter::once(alarm).chain(entries()).collect();
                poll_into(&mut fds, timeout.as_ref(), &mut buffers.ready);
            }
        }
        // From here on, wakes from this thread need no system call.
        self.shared.state.store(EMPTY, Ordering::Release);
        buffers.sources.clear();

        let wakers = &mut buffers.wakers;
        if let Some((alarm, ready)) = buffers.ready.split_first() {
            if !alarm.is_empty() {
                self.shared.alarm.reset();
            }
            if ready.iter().any(|flags| !flags.is_empty()) {
                let mut index = 0;
                let mut io = self.io.borrow_mut();
                let fired = io.extract_if(.., |_| {
                    let fired = ready.get(index).is_some_and(|flags| !flags.is_empty());
                    index += 1;
                    fired
                });
                for wait in fired {
                    wait.wake_into(wakers);
                }
            }
        }
        {
            let mut timers = self.timers.borrow_mut();
            if !timers.is_empty() {
                let now = Instant::now();
                while let Some(entry) = timers.first_entry() {
                    if entry.key().0 > now {
                        break;
                    }
                    wakers.push(entry.remove());
                }
            }
        }
        for waker in wakers.drain(..) {
            waker.wake();
        }
        buffers.ready.clear();
        self.buffers.set(buffers);
    }
}

/// Calls `poll(2)` on `fds` and stores each one's readiness in `ready` (left empty when the
/// call fails: interrupted by a signal or out of memory, which counts as a spurious wake-up).
fn poll_into(fds: &mut [PollFd<'_>], timeout: Option<&Timespec>, ready: &mut Vec<PollFlags>) {
    if rustix::event::poll(fds, timeout).is_ok() {
        ready.extend(fds.iter().map(PollFd::revents));
    }
}

/// Restores the previous poller of the thread when a `block_on` ends, even by a panic.
struct Installed(Option<Rc<Poller>>);

impl Drop for Installed {
    fn drop(&mut self) {
        let previous = self.0.take();
        let _ = CURRENT.try_with(|current| *current.borrow_mut() = previous);
    }
}

/// Runs `future` to completion on this thread, sleeping in this thread's own `poll(2)`.
///
/// Falls back to [`async_io::block_on`] if the wake-up descriptor cannot be created (out of
/// descriptors).
pub(crate) fn block_on<F: Future>(future: F) -> F::Output {
    match Alarm::new() {
        Ok(alarm) => run(Poller::new(alarm), future),
        Err(_) => async_io::block_on(future),
    }
}

/// The loop of [`block_on`] on `poller`.
fn run<F: Future>(poller: Poller, future: F) -> F::Output {
    let poller = Rc::new(poller);
    let _installed = Installed(CURRENT.with(|current| current.replace(Some(poller.clone()))));
    let mut future = pin!(future);
    let mut cx = Context::from_waker(&poller.waker);
    let state = &poller.shared.state;
    let mut busy_turns = 0;
    loop {
        state.swap(EMPTY, Ordering::Acquire);
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        if state
            .compare_exchange(EMPTY, PARKED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            busy_turns = 0;
            poller.wait(true);
        } else {
            // Woken while it was polled: poll again at once, but look at descriptors and
            // timers now and then so that a self-waking future cannot starve them.
            busy_turns += 1;
            if busy_turns >= FAIRNESS_TURNS {
                busy_turns = 0;
                poller.wait(false);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// A future that returns `true` once it has been woken from another thread, 10 ms after
    /// it first waited.
    async fn woken_from_another_thread() -> bool {
        let mut waited = false;
        std::future::poll_fn(|cx| {
            if waited {
                return Poll::Ready(true);
            }
            waited = true;
            let waker = cx.waker().clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(10));
                waker.wake();
            });
            Poll::Pending
        })
        .await
    }

    #[test]
    fn wake_from_another_thread_interrupts_the_wait() {
        assert!(block_on(woken_from_another_thread()));
    }

    #[test]
    fn socket_pair_alarm_wakes_too() {
        // The alarm used where eventfd does not exist.
        let poller = Poller::new(Alarm::pair().unwrap());
        assert!(run(poller, woken_from_another_thread()));
    }

    #[test]
    fn poller_exists_only_inside_block_on() {
        assert!(with_current(|_| ()).is_none());
        block_on(async { assert!(with_current(|_| ()).is_some()) });
        assert!(with_current(|_| ()).is_none());
    }
}
