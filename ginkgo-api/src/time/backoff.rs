//! Capped exponential backoff with jitter: the one policy for restarts, reconnects and accept
//! errors.

use std::time::Duration;

/// Delays that double from `initial` up to `max`, each spread at random by ±`jitter`.
///
/// Supervision uses it for restart delays ([`Options::backoff`](crate::service::Options)),
/// and ginkgo-net for reconnects and for accept errors that mean "out of resources". It is a
/// plain value; [`Backoff::retries`] gives the counter for a loop of attempts.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use ginkgo_api::time::Backoff;
///
/// let policy = Backoff::new(Duration::from_millis(10), Duration::from_millis(40), 0.0);
/// assert_eq!(policy.base_delay(1), Duration::from_millis(10));
/// assert_eq!(policy.base_delay(9), Duration::from_millis(40));
///
/// let mut retries = policy.retries();
/// let delays: Vec<_> = (0..4).map(|_| retries.next_delay()).collect();
/// assert_eq!(delays, [10, 20, 40, 40].map(Duration::from_millis));
/// retries.reset();
/// assert_eq!(retries.next_delay(), Duration::from_millis(10));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    jitter: f64,
}

impl Backoff {
    /// A backoff from `initial` to `max`, with `jitter` as a fraction of each delay (0.1 is
    /// ±10 %, clamped to 0..=1).
    pub fn new(initial: Duration, max: Duration, jitter: f64) -> Self {
        Self {
            initial,
            max,
            jitter: jitter.clamp(0.0, 1.0),
        }
    }

    /// The first delay.
    pub fn initial(&self) -> Duration {
        self.initial
    }

    /// The cap.
    pub fn max(&self) -> Duration {
        self.max
    }

    /// The jitter fraction.
    pub fn jitter(&self) -> f64 {
        self.jitter
    }

    /// The delay before attempt `nth` (1-based), without jitter: `initial * 2^(nth - 1)`,
    /// capped at `max`.
    pub fn base_delay(&self, nth: u32) -> Duration {
        let doublings = nth.saturating_sub(1).min(31);
        self.initial.saturating_mul(1u32 << doublings).min(self.max)
    }

    /// The delay before attempt `nth` (1-based), spread by the jitter.
    pub fn delay(&self, nth: u32) -> Duration {
        let spread = self.jitter * (fastrand::f64() * 2.0 - 1.0);
        self.base_delay(nth).mul_f64((1.0 + spread).max(0.0))
    }

    /// A counter of attempts under this policy, for a retry loop.
    pub fn retries(self) -> Retries {
        Retries {
            policy: self,
            failures: 0,
        }
    }
}

/// The attempts of one retry loop under a [`Backoff`]: each failure waits longer, a success
/// starts again from the first delay.
#[derive(Debug, Clone)]
pub struct Retries {
    policy: Backoff,
    failures: u32,
}

impl Retries {
    /// The delay after one more failure.
    pub fn next_delay(&mut self) -> Duration {
        self.failures = self.failures.saturating_add(1);
        self.policy.delay(self.failures)
    }

    /// Starts again from the first delay (after a success).
    pub fn reset(&mut self) {
        self.failures = 0;
    }
}
