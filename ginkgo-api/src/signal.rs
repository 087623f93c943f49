//! Unix signals as an async stream: [`Signals`] and [`Signal`].

use std::fmt;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::runtime::{RawSignals, Runtime};

/// The signals a daemon handles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Signal {
    /// `SIGTERM`: stop gracefully.
    Term,
    /// `SIGINT`: interrupt from the terminal (Ctrl-C).
    Int,
    /// `SIGHUP`: reload configuration and reopen log files.
    Hup,
    /// `SIGUSR1`: user-defined.
    Usr1,
    /// `SIGUSR2`: user-defined.
    Usr2,
    /// `SIGQUIT`: quit from the terminal.
    Quit,
}

impl Signal {
    /// Every signal this enum names.
    pub const ALL: [Signal; 6] = [
        Signal::Term,
        Signal::Int,
        Signal::Hup,
        Signal::Usr1,
        Signal::Usr2,
        Signal::Quit,
    ];

    /// The conventional name, such as `"SIGTERM"`.
    pub fn name(self) -> &'static str {
        match self {
            Signal::Term => "SIGTERM",
            Signal::Int => "SIGINT",
            Signal::Hup => "SIGHUP",
            Signal::Usr1 => "SIGUSR1",
            Signal::Usr2 => "SIGUSR2",
            Signal::Quit => "SIGQUIT",
        }
    }

    fn to_rustix(self) -> rustix::process::Signal {
        use rustix::process::Signal as S;
        match self {
            Signal::Term => S::TERM,
            Signal::Int => S::INT,
            Signal::Hup => S::HUP,
            Signal::Usr1 => S::USR1,
            Signal::Usr2 => S::USR2,
            Signal::Quit => S::QUIT,
        }
    }

    /// The signal's number on this platform (`SIGTERM` is 15 on Linux).
    pub fn number(self) -> i32 {
        self.to_rustix().as_raw()
    }

    /// Sends this signal to the process `pid` (this is `kill(2)`).
    ///
    /// # Errors
    ///
    /// Fails when no such process exists (`ESRCH`) or it belongs to another user (`EPERM`).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use ginkgo_api::signal::Signal;
    /// Signal::Hup.send_to(4242)?; // ask the daemon with pid 4242 to reload
    /// # std::io::Result::Ok(())
    /// ```
    pub fn send_to(self, pid: u32) -> io::Result<()> {
        let pid = i32::try_from(pid)
            .ok()
            .and_then(rustix::process::Pid::from_raw)
            .ok_or_else(|| {
                io::Error::new(io::ErrorKind::InvalidInput, format!("invalid pid {pid}"))
            })?;
        rustix::process::kill_process(pid, self.to_rustix()).map_err(|err| {
            io::Error::new(
                io::Error::from(err).kind(),
                format!("send {} to pid {pid:?}: {err}", self.name()),
            )
        })
    }

    /// Sends this signal to the current process.
    ///
    /// # Errors
    ///
    /// Only fails if the OS refuses, which it does not for valid signals.
    pub fn raise(self) -> io::Result<()> {
        self.send_to(std::process::id())
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A stream of the signals registered with [`Signals::new`].
///
/// Registering replaces the signals' default action for the whole process (a registered
/// `SIGTERM` no longer kills it), on every backend, for as long as the program runs.
///
/// # Examples
///
/// ```no_run
/// # fn demo<R: ginkgo_api::Runtime>() {
/// use ginkgo_api::signal::{Signal, Signals};
/// ginkgo_api::block_on::<R, _>(async {
///     let mut signals = Signals::<R>::new(&[Signal::Term, Signal::Hup])?;
///     while let Some(signal) = signals.recv().await {
///         match signal {
///             Signal::Hup => println!("reloading"),
///             _ => break,
///         }
///     }
///     std::io::Result::Ok(())
/// }).unwrap();
/// # }
/// ```
pub struct Signals<R: Runtime> {
    raw: R::Signals,
}

impl<R: Runtime> Signals<R> {
    /// Starts listening for `signals`.
    ///
    /// # Errors
    ///
    /// Fails if a handler cannot be installed.
    pub fn new(signals: &[Signal]) -> io::Result<Self> {
        Ok(Self {
            raw: R::Signals::new(signals)?,
        })
    }

    /// Waits for the next signal.
    pub async fn recv(&mut self) -> Option<Signal> {
        std::future::poll_fn(|cx| self.raw.poll_recv(cx)).await
    }

    /// Polls for the next signal; for use inside hand-written futures.
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Signal>> {
        self.raw.poll_recv(cx)
    }
}

impl<R: Runtime> futures_core::Stream for Signals<R> {
    type Item = Signal;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Signal>> {
        self.raw.poll_recv(cx)
    }
}

impl<R: Runtime> fmt::Debug for Signals<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Signals")
    }
}
