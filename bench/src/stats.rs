//! Medians, the summary of a run's per-round ratios, and human-readable durations.

use std::time::Duration;

/// The median of `samples` (the mean of the two middle ones for an even count).
///
/// # Panics
///
/// If `samples` is empty.
pub(crate) fn median(samples: &[Duration]) -> Duration {
    assert!(!samples.is_empty(), "median of no samples");
    let mut sorted = samples.to_vec();
    sorted.sort_unstable();
    let mid = sorted.len() / 2;
    if sorted.len() % 2 == 1 {
        sorted[mid]
    } else {
        (sorted[mid - 1] + sorted[mid]) / 2
    }
}

/// The median of `samples` (the mean of the two middle ones for an even count).
///
/// # Panics
///
/// If `samples` is empty.
pub(crate) fn median_f64(samples: &[f64]) -> f64 {
    assert!(!samples.is_empty(), "median of no samples");
    let mut sorted = samples.to_vec();
    sorted.sort_unstable_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    if sorted.len() % 2 == 1 {
        sorted[mid]
    } else {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    }
}

/// The ratios of one measure's rounds, summarised: each round measures both sides back to back,
/// so each ratio compares two figures taken moments apart.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Summary {
    /// The median of the per-round ratios.
    pub(crate) median: f64,
    /// The smallest per-round ratio.
    pub(crate) min: f64,
    /// The largest per-round ratio.
    pub(crate) max: f64,
    /// How many rounds there were.
    pub(crate) runs: usize,
}

impl Summary {
    /// The summary of `ratios`, one per round.
    ///
    /// # Panics
    ///
    /// If `ratios` is empty.
    pub(crate) fn of(ratios: &[f64]) -> Self {
        Self {
            median: median_f64(ratios),
            min: ratios.iter().copied().fold(f64::INFINITY, f64::min),
            max: ratios.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            runs: ratios.len(),
        }
    }

    /// The per-round ratios of two sides measured in the same rounds: `ours[i] / theirs[i]`.
    ///
    /// # Panics
    ///
    /// If the two have different lengths or are empty.
    pub(crate) fn of_pairs(ours: &[f64], theirs: &[f64]) -> Self {
        assert_eq!(ours.len(), theirs.len(), "rounds of two sides");
        let ratios: Vec<f64> = ours.iter().zip(theirs).map(|(a, b)| a / b).collect();
        Self::of(&ratios)
    }

    /// The range as a table shows it, such as `0.95–1.04`.
    pub(crate) fn range(&self) -> String {
        format!("{:.2}–{:.2}", self.min, self.max)
    }
}

/// Formats a duration with three significant digits and a unit, such as `12.3 ms`.
pub(crate) fn human(duration: Duration) -> String {
    let secs = duration.as_secs_f64();
    let (value, unit) = if secs >= 1.0 {
        (secs, "s")
    } else if secs >= 1e-3 {
        (secs * 1e3, "ms")
    } else if secs >= 1e-6 {
        (secs * 1e6, "µs")
    } else {
        (secs * 1e9, "ns")
    };
    let decimals = if value >= 100.0 {
        0
    } else if value >= 10.0 {
        1
    } else {
        2
    };
    format!("{value:.decimals$} {unit}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_odd_and_even() {
        let ms = Duration::from_millis;
        assert_eq!(median(&[ms(3), ms(1), ms(2)]), ms(2));
        assert_eq!(
            median(&[ms(4), ms(1), ms(2), ms(3)]),
            Duration::from_micros(2500)
        );
    }

    #[test]
    fn median_f64_odd_and_even() {
        assert_eq!(median_f64(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median_f64(&[4.0, 1.0, 2.0, 3.0]), 2.5);
    }

    #[test]
    fn a_summary_of_ratios() {
        let summary = Summary::of(&[1.1, 0.9, 1.0, 1.3]);
        assert_eq!(summary.median, 1.05);
        assert_eq!((summary.min, summary.max, summary.runs), (0.9, 1.3, 4));
        assert_eq!(summary.range(), "0.90–1.30");
        // Speeds: ours over theirs, round by round (not the ratio of the two medians).
        let pairs = Summary::of_pairs(&[2.0, 3.0, 8.0], &[2.0, 2.0, 4.0]);
        assert_eq!((pairs.median, pairs.min, pairs.max), (1.5, 1.0, 2.0));
    }

    #[test]
    fn human_units() {
        assert_eq!(human(Duration::from_micros(12_345)), "12.3 ms");
        assert_eq!(human(Duration::from_millis(1500)), "1.50 s");
        assert_eq!(human(Duration::from_nanos(950)), "950 ns");
        assert_eq!(human(Duration::from_micros(123)), "123 µs");
    }
}
