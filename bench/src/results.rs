//! A suite's results, kept between runs: for each measure and backend, the median, smallest and
//! largest of the run's per-round ratios, with the date and commit of the run. `--save DIR`
//! writes them to `DIR/SUITE.json` (updating only the rows the run measured), `--plot FILE`
//! draws them, and `ginkgo-bench plot` draws every saved suite into one chart.
//!
//! ```text
//! cargo run --release -p ginkgo-bench -- runtime --save            # bench/results/runtime.json
//! cargo run --release -p ginkgo-bench -- echo --plot echo.svg      # this run's chart only
//! cargo run --release -p ginkgo-bench -- plot                      # bench/ratios.svg
//! ```

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use crate::stats::Summary;

/// Where `--save` (without a value) and `plot` keep results, from the repository root.
pub(crate) const DEFAULT_DIR: &str = "bench/results";

/// The suites in the order the combined chart shows them; other saved files follow by name.
pub(crate) const SUITE_ORDER: [&str; 9] = [
    "runtime",
    "echo",
    "http",
    "lifecycle",
    "bus",
    "tls",
    "https",
    "workers",
    "upgrade",
];

/// The ratio the time-based suites report.
pub(crate) const SPEED_OF_TIMES: &str = "baseline time / ginkgo time: above 1, ginkgo is faster";

/// The results of one suite.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Results {
    /// The subcommand that measured them, such as `runtime`.
    pub(crate) suite: String,
    /// What the suite compares, one line (a chart's title).
    pub(crate) title: String,
    /// What a ratio means, with which side over which.
    pub(crate) ratio: String,
    /// One entry per measure and backend, in the order measured.
    pub(crate) measures: Vec<Measure>,
}

/// One measure of a suite on one backend.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Measure {
    /// What was measured, the same words on every backend (a chart's group): `spawn+join`.
    pub(crate) measure: String,
    /// The backend the ginkgo side ran on, or the name of the side a row compares (a chart's
    /// bar): `tokio`, `hyper-smol (reference)`.
    pub(crate) backend: String,
    /// The day of the run, UTC, as `YYYY-MM-DD`.
    pub(crate) date: String,
    /// `git rev-parse --short HEAD` where the bench ran, or `unknown`.
    pub(crate) commit: String,
    /// Rounds the figures are over; in each, both sides ran back to back.
    pub(crate) runs: usize,
    /// The median of the per-round ratios.
    pub(crate) median: f64,
    /// The smallest per-round ratio.
    pub(crate) min: f64,
    /// The largest per-round ratio.
    pub(crate) max: f64,
}

impl Measure {
    /// An entry for `measure` on `backend` of a run stamped `stamp`, its ratios rounded to four
    /// decimals (finer than any run resolves, and short in the file).
    pub(crate) fn new(measure: &str, backend: &str, summary: Summary, stamp: &Stamp) -> Self {
        let round = |ratio: f64| (ratio * 10_000.0).round() / 10_000.0;
        Self {
            measure: measure.to_owned(),
            backend: backend.to_owned(),
            date: stamp.date.clone(),
            commit: stamp.commit.clone(),
            runs: summary.runs,
            median: round(summary.median),
            min: round(summary.min),
            max: round(summary.max),
        }
    }

    /// Whether `other` is the same measure on the same backend.
    fn same_row(&self, other: &Self) -> bool {
        self.measure == other.measure && self.backend == other.backend
    }
}

impl Results {
    /// No results yet for `suite`, which compares `title` by `ratio`.
    pub(crate) fn new(suite: &str, title: &str, ratio: &str) -> Self {
        Self {
            suite: suite.to_owned(),
            title: title.to_owned(),
            ratio: ratio.to_owned(),
            measures: Vec::new(),
        }
    }

    /// Adds `measure` on `backend`, measured now by this process.
    pub(crate) fn add(&mut self, measure: &str, backend: &str, summary: Summary) {
        self.measures
            .push(Measure::new(measure, backend, summary, Stamp::now()));
    }

    /// Takes in `newer`'s rows: each replaces the row of the same measure and backend, or is
    /// added after the others. The title and ratio become `newer`'s.
    pub(crate) fn merge(&mut self, newer: Results) {
        self.title = newer.title;
        self.ratio = newer.ratio;
        for measure in newer.measures {
            match self.measures.iter_mut().find(|old| old.same_row(&measure)) {
                Some(old) => *old = measure,
                None => self.measures.push(measure),
            }
        }
    }

    /// Reads a results file.
    ///
    /// # Errors
    ///
    /// If the file cannot be read or is not a results file; the message names the file.
    pub(crate) fn read(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|err| format!("cannot read {}: {err}", path.display()))?;
        serde_json::from_str(&text)
            .map_err(|err| format!("{} is not a results file: {err}", path.display()))
    }

    /// Writes these results to `path` (pretty JSON, a line per field).
    ///
    /// # Errors
    ///
    /// If the file cannot be written; the message names it.
    pub(crate) fn write(&self, path: &Path) -> Result<(), String> {
        let mut text = serde_json::to_string_pretty(self).expect("results serialise");
        text.push('\n');
        std::fs::write(path, text).map_err(|err| format!("cannot write {}: {err}", path.display()))
    }

    /// Merges these results into `dir/SUITE.json` (made if missing) and returns its path.
    ///
    /// # Errors
    ///
    /// If the directory or file cannot be made, read or written.
    pub(crate) fn save_into(&self, dir: &Path) -> Result<PathBuf, String> {
        std::fs::create_dir_all(dir)
            .map_err(|err| format!("cannot make {}: {err}", dir.display()))?;
        let path = dir.join(format!("{}.json", self.suite));
        let mut saved = if path.exists() {
            Self::read(&path)?
        } else {
            Self::new(&self.suite, &self.title, &self.ratio)
        };
        saved.merge(self.clone());
        saved.write(&path)?;
        Ok(path)
    }

    /// Every results file (`*.json`) in `dir`, in [`SUITE_ORDER`], then the others by name.
    ///
    /// # Errors
    ///
    /// If `dir` cannot be listed, or a file in it cannot be read as results.
    pub(crate) fn read_dir(dir: &Path) -> Result<Vec<Self>, String> {
        let entries = std::fs::read_dir(dir)
            .map_err(|err| format!("cannot list {}: {err}", dir.display()))?;
        let mut paths = Vec::new();
        for entry in entries {
            let path = entry
                .map_err(|err| format!("cannot list {}: {err}", dir.display()))?
                .path();
            if path.extension().is_some_and(|ext| ext == "json") {
                paths.push(path);
            }
        }
        let mut all = paths
            .iter()
            .map(|path| Self::read(path))
            .collect::<Result<Vec<_>, _>>()?;
        let rank = |suite: &str| {
            SUITE_ORDER
                .iter()
                .position(|known| *known == suite)
                .unwrap_or(SUITE_ORDER.len())
        };
        all.sort_by(|a, b| (rank(&a.suite), &a.suite).cmp(&(rank(&b.suite), &b.suite)));
        Ok(all)
    }
}

/// When and from what a run measured: the day (UTC) and the commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Stamp {
    /// `YYYY-MM-DD`, UTC.
    pub(crate) date: String,
    /// `git rev-parse --short HEAD` in the working directory, or `unknown`.
    pub(crate) commit: String,
}

impl Stamp {
    /// This process's stamp, taken at the first call.
    pub(crate) fn now() -> &'static Stamp {
        static STAMP: OnceLock<Stamp> = OnceLock::new();
        STAMP.get_or_init(|| {
            let secs = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |since| since.as_secs());
            let commit = std::process::Command::new("git")
                .args(["rev-parse", "--short", "HEAD"])
                .output()
                .ok()
                .filter(|output| output.status.success())
                .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_owned())
                .filter(|commit| !commit.is_empty())
                .unwrap_or_else(|| "unknown".to_owned());
            Stamp {
                date: date_of(secs),
                commit,
            }
        })
    }
}

/// The UTC day of `secs` since the Unix epoch, as `YYYY-MM-DD` (the proleptic Gregorian
/// calendar, Howard Hinnant's `civil_from_days`).
fn date_of(secs: u64) -> String {
    let days = (secs / 86_400) as i64 + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

/// What a suite writes besides its tables: `--save [DIR]` and `--plot FILE`.
#[derive(Debug, Clone, Default, PartialEq, Eq, clap::Args)]
pub(crate) struct Output {
    /// Also write the ratios (median, min and max over the rounds, per backend) into
    /// DIR/SUITE.json, replacing the rows this run measured.
    #[arg(long, value_name = "DIR", num_args = 0..=1, default_missing_value = DEFAULT_DIR)]
    pub(crate) save: Option<PathBuf>,
    /// Also draw this run's ratios per backend as an SVG bar chart into FILE.
    #[arg(long, value_name = "FILE")]
    pub(crate) plot: Option<PathBuf>,
}

impl Output {
    /// Writes what `--save` and `--plot` ask for, saying on standard error where.
    ///
    /// # Errors
    ///
    /// If a file cannot be written; the message names it.
    pub(crate) fn write(&self, results: &Results) -> Result<(), String> {
        if let Some(dir) = &self.save {
            let path = results.save_into(dir)?;
            eprintln!("ginkgo-bench: saved {}", path.display());
        }
        if let Some(file) = &self.plot {
            let chart = crate::plot::render(std::slice::from_ref(results));
            std::fs::write(file, chart)
                .map_err(|err| format!("cannot write {}: {err}", file.display()))?;
            eprintln!("ginkgo-bench: plotted {}", file.display());
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A row for tests: seven rounds from `median - 0.05` to `median + 0.05`.
    pub(crate) fn row(measure: &str, backend: &str, median: f64, date: &str) -> Measure {
        let summary = Summary {
            median,
            min: median - 0.05,
            max: median + 0.05,
            runs: 7,
        };
        let stamp = Stamp {
            date: date.to_owned(),
            commit: "abc1234".to_owned(),
        };
        Measure::new(measure, backend, summary, &stamp)
    }

    fn sample() -> Results {
        let mut results = Results::new("runtime", "ginkgo vs. native", SPEED_OF_TIMES);
        results.measures = vec![
            row("spawn+join", "tokio", 1.0, "2026-12-03"),
            row("tcp echo", "tokio", 0.98, "2026-12-03"),
            row("spawn+join", "smol", 0.937_5, "2026-12-03"),
        ];
        results
    }

    #[test]
    fn a_results_file_reads_back_as_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("runtime.json");
        let results = sample();
        results.write(&path).unwrap();
        assert_eq!(Results::read(&path).unwrap(), results);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("\"median\": 0.9375"), "{text}");
        // 0.98 - 0.05 is 0.9299999999999999 in floating point: saved rounded.
        assert!(text.contains("\"min\": 0.93,"), "{text}");
        assert!(text.ends_with("}\n"), "{text}");
    }

    #[test]
    fn saving_replaces_only_the_rows_measured() {
        let dir = tempfile::tempdir().unwrap();
        sample().save_into(dir.path()).unwrap();
        let mut smol_only = Results::new("runtime", "a newer title", SPEED_OF_TIMES);
        smol_only.measures = vec![
            row("spawn+join", "smol", 1.02, "2026-12-04"),
            row("tcp echo", "smol", 1.1, "2026-12-04"),
        ];
        let path = smol_only.save_into(dir.path()).unwrap();
        let saved = Results::read(&path).unwrap();
        assert_eq!(saved.title, "a newer title");
        let rows: Vec<(&str, &str, f64, &str)> = saved
            .measures
            .iter()
            .map(|m| (&*m.measure, &*m.backend, m.median, &*m.date))
            .collect();
        assert_eq!(
            rows,
            [
                ("spawn+join", "tokio", 1.0, "2026-12-03"),
                ("tcp echo", "tokio", 0.98, "2026-12-03"),
                ("spawn+join", "smol", 1.02, "2026-12-04"),
                ("tcp echo", "smol", 1.1, "2026-12-04"),
            ]
        );
    }

    #[test]
    fn a_directory_reads_in_suite_order() {
        let dir = tempfile::tempdir().unwrap();
        for suite in ["zeta", "bus", "runtime", "http"] {
            Results::new(suite, suite, SPEED_OF_TIMES)
                .save_into(dir.path())
                .unwrap();
        }
        std::fs::write(dir.path().join("notes.txt"), "not results").unwrap();
        let suites: Vec<String> = Results::read_dir(dir.path())
            .unwrap()
            .into_iter()
            .map(|results| results.suite)
            .collect();
        assert_eq!(suites, ["runtime", "http", "bus", "zeta"]);
    }

    #[test]
    fn a_broken_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("echo.json");
        std::fs::write(&path, "{\"suite\": 3}").unwrap();
        let err = Results::read(&path).unwrap_err();
        assert!(err.contains("echo.json is not a results file"), "{err}");
        let err = Results::read(&dir.path().join("missing.json")).unwrap_err();
        assert!(err.starts_with("cannot read "), "{err}");
    }

    #[test]
    fn dates_are_utc_days() {
        assert_eq!(date_of(0), "1970-01-01");
        assert_eq!(date_of(951_782_400), "2000-02-29");
        assert_eq!(date_of(1_700_000_000), "2023-11-14");
        assert_eq!(date_of(1_796_256_000 - 1), "2026-12-02");
        assert_eq!(date_of(1_796_256_000), "2026-12-03");
    }

    #[test]
    fn a_stamp_has_a_date_and_a_commit() {
        let stamp = Stamp::now();
        assert_eq!(stamp.date.len(), 10, "{stamp:?}");
        assert!(!stamp.commit.is_empty());
    }
}
