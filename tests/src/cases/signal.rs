//! Signals raised to this process are delivered to the stream.
//!
//! Cases of several backends run in parallel in one process and signals are process-wide, so a
//! stream may also see signals another case raised; each case only requires that its own
//! signals arrive.

use std::time::Duration;

use ginkgo_api::Runtime;
use ginkgo_api::signal::{Signal, Signals};
use ginkgo_api::time::timeout;

const LIMIT: Duration = Duration::from_secs(30);

/// SIGUSR1 raised to self is received.
pub async fn sigusr1_raised_to_self_is_received<R: Runtime>() {
    let mut signals = Signals::<R>::new(&[Signal::Usr1]).expect("register SIGUSR1");
    Signal::Usr1.raise().expect("raise");
    let got = timeout::<R, _>(LIMIT, signals.recv())
        .await
        .expect("SIGUSR1 arrived in time");
    assert_eq!(got, Some(Signal::Usr1));
}

/// One stream reports each of several registered signals by name.
pub async fn several_signals_on_one_stream<R: Runtime>() {
    let mut signals = Signals::<R>::new(&[Signal::Hup, Signal::Usr2]).expect("register");
    Signal::Hup.raise().expect("raise SIGHUP");
    Signal::Usr2.raise().expect("raise SIGUSR2");
    let (mut hup, mut usr2) = (false, false);
    while !(hup && usr2) {
        match timeout::<R, _>(LIMIT, signals.recv()).await {
            Ok(Some(Signal::Hup)) => hup = true,
            Ok(Some(Signal::Usr2)) => usr2 = true,
            Ok(other) => panic!("unexpected {other:?}"),
            Err(_) => panic!("signals missing after {LIMIT:?}: SIGHUP {hup}, SIGUSR2 {usr2}"),
        }
    }
    assert_eq!(Signal::Hup.number(), 1);
    assert_eq!(Signal::Term.to_string(), "SIGTERM");
}
