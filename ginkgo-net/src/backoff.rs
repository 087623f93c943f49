//! Capped exponential backoff with jitter, for reconnects and accept errors.

use std::time::Duration;

/// Delays that double from `initial` up to `max`, each spread by ±`jitter`.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use ginkgo_net::Backoff;
/// let mut backoff = Backoff::new(Duration::from_millis(10), Duration::from_millis(40), 0.0);
/// let delays: Vec<_> = (0..4).map(|_| backoff.next_delay()).collect();
/// assert_eq!(delays, [10, 20, 40, 40].map(Duration::from_millis));
/// backoff.reset();
/// assert_eq!(backoff.next_delay(), Duration::from_millis(10));
/// ```
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    jitter: f64,
    next: Duration,
}

impl Backoff {
    /// A backoff from `initial` to `max`, with `jitter` as a fraction (clamped to 0..=1).
    pub fn new(initial: Duration, max: Duration, jitter: f64) -> Self {
        Self {
            initial,
            max,
            jitter: jitter.clamp(0.0, 1.0),
            next: initial,
        }
    }

    /// The next delay; each call doubles the following one, up to the cap.
    pub fn next_delay(&mut self) -> Duration {
        let base = self.next;
        self.next = self.next.saturating_mul(2).min(self.max);
        let spread = self.jitter * (fastrand::f64() * 2.0 - 1.0);
        base.mul_f64((1.0 + spread).max(0.0))
    }

    /// Starts again from the initial delay (after a success).
    pub fn reset(&mut self) {
        self.next = self.initial;
    }
}
