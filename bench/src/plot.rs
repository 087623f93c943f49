//! The chart of saved ratios: a grouped bar chart per suite, one group per measure and one bar
//! per backend, with the min–max of the rounds as a whisker, the value over each bar and a
//! dashed line at 1.0 (parity). Written as plain SVG text; no drawing library.
//!
//! ```text
//! cargo run --release -p ginkgo-bench -- plot --results bench/results --out bench/ratios.svg
//! ```

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::results::{DEFAULT_DIR, Results};

/// Command-line options of the `plot` subcommand.
#[derive(Debug, clap::Args)]
pub(crate) struct Options {
    /// The directory of saved results (`--save` of each suite).
    #[arg(long, value_name = "DIR", default_value = DEFAULT_DIR)]
    pub(crate) results: PathBuf,
    /// The SVG file to write.
    #[arg(long, value_name = "FILE", default_value = "bench/ratios.svg")]
    pub(crate) out: PathBuf,
}

/// Draws every suite saved in `options.results` into `options.out`.
pub(crate) fn run(options: &Options) -> ExitCode {
    let all = match Results::read_dir(&options.results) {
        Ok(all) if all.is_empty() => {
            eprintln!(
                "ginkgo-bench plot: no results in {}: run a suite with `--save {}` first",
                options.results.display(),
                options.results.display()
            );
            return ExitCode::FAILURE;
        }
        Ok(all) => all,
        Err(err) => {
            eprintln!("ginkgo-bench plot: {err}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(err) = std::fs::write(&options.out, render(&all)) {
        eprintln!(
            "ginkgo-bench plot: cannot write {}: {err}",
            options.out.display()
        );
        return ExitCode::FAILURE;
    }
    let suites: Vec<&str> = all.iter().map(|results| results.suite.as_str()).collect();
    eprintln!(
        "ginkgo-bench plot: wrote {} ({})",
        options.out.display(),
        suites.join(", ")
    );
    ExitCode::SUCCESS
}

/// The backends first, in table order, each always in the same colour; other sides follow in
/// the order they first appear.
const KNOWN_SERIES: [&str; 4] = ["tokio", "async-std", "smol", "threads"];
/// Colours of the bars, by series (Tableau 10).
const PALETTE: [&str; 8] = [
    "#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#b07aa1", "#9c755f", "#bab0ac",
];

const WIDTH: f64 = 820.0;
const LEFT: f64 = 52.0;
const RIGHT: f64 = 16.0;
const LEGEND: f64 = 56.0;
/// A panel's title and note, above its plot area.
const HEAD: f64 = 44.0;
const PLOT: f64 = 170.0;
/// The measure names under a plot area.
const FOOT: f64 = 30.0;
const GAP: f64 = 22.0;
const MAX_BAR: f64 = 44.0;

/// One bar: a backend's median ratio and the range of its rounds.
#[derive(Debug, Clone, PartialEq)]
struct Bar {
    series: String,
    median: f64,
    min: f64,
    max: f64,
    runs: usize,
}

/// The bars of one measure.
#[derive(Debug, Clone, PartialEq)]
struct Group {
    measure: String,
    bars: Vec<Bar>,
}

/// The groups of `results`: measures in the order first measured, bars in series order.
fn groups(results: &Results, series: &[String]) -> Vec<Group> {
    let mut groups: Vec<Group> = Vec::new();
    for m in &results.measures {
        if ![m.median, m.min, m.max].iter().all(|v| v.is_finite()) {
            continue;
        }
        let bar = Bar {
            series: m.backend.clone(),
            median: m.median,
            min: m.min,
            max: m.max,
            runs: m.runs,
        };
        match groups.iter_mut().find(|g| g.measure == m.measure) {
            Some(group) => group.bars.push(bar),
            None => groups.push(Group {
                measure: m.measure.clone(),
                bars: vec![bar],
            }),
        }
    }
    let rank = |name: &str| series.iter().position(|s| s == name);
    for group in &mut groups {
        group.bars.sort_by_key(|bar| rank(&bar.series));
    }
    groups
}

/// Every series of `all`, in legend order.
fn series(all: &[Results]) -> Vec<String> {
    let mut series: Vec<String> = Vec::new();
    let present = |name: &str| {
        all.iter()
            .flat_map(|results| &results.measures)
            .any(|m| m.backend == name)
    };
    series.extend(
        KNOWN_SERIES
            .iter()
            .filter(|name| present(name))
            .map(|name| (*name).to_owned()),
    );
    for m in all.iter().flat_map(|results| &results.measures) {
        if !series.contains(&m.backend) {
            series.push(m.backend.clone());
        }
    }
    series
}

/// The step between axis ticks for about `span / raw` ticks: 1, 2, 2.5 or 5 times a power of
/// ten, at least `raw`.
fn tick_step(raw: f64) -> f64 {
    let magnitude = 10f64.powf(raw.log10().floor());
    let fraction = raw / magnitude;
    let nice = [1.0, 2.0, 2.5, 5.0, 10.0]
        .into_iter()
        .find(|step| fraction <= *step + 1e-9)
        .unwrap_or(10.0);
    nice * magnitude
}

/// The top of a panel's axis and its tick step: room above the highest whisker and above 1.0.
fn axis(groups: &[Group]) -> (f64, f64) {
    let highest = groups
        .iter()
        .flat_map(|g| &g.bars)
        .map(|bar| bar.max.max(bar.median))
        .fold(1.0, f64::max);
    let step = tick_step(highest * 1.12 / 5.0);
    ((highest * 1.12 / step).ceil() * step, step)
}

/// `text` with the characters XML reserves escaped.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            _ => out.push(c),
        }
    }
    out
}

/// What a panel's note says of the runs: their dates and commits, and the rounds.
fn note(results: &Results) -> String {
    let mut stamps: Vec<String> = Vec::new();
    for m in &results.measures {
        let stamp = format!("{}, {}", m.date, m.commit);
        if !stamps.contains(&stamp) {
            stamps.push(stamp);
        }
    }
    let runs: Vec<usize> = results.measures.iter().map(|m| m.runs).collect();
    let (fewest, most) = (
        runs.iter().min().copied().unwrap_or(0),
        runs.iter().max().copied().unwrap_or(0),
    );
    let rounds = if fewest == most {
        format!("{most}")
    } else {
        format!("{fewest}–{most}")
    };
    format!(
        "{}; median of {rounds} rounds, whiskers min–max; ratio = {}",
        stamps.join("; "),
        results.ratio
    )
}

/// The SVG of `all`: a legend of the backends, then a panel per suite.
pub(crate) fn render(all: &[Results]) -> String {
    let series = series(all);
    let colour = |name: &str| {
        let index = series.iter().position(|s| s == name).unwrap_or(0);
        PALETTE[index % PALETTE.len()]
    };
    let panel_height = HEAD + PLOT + FOOT + GAP;
    let height = LEGEND + panel_height * all.len().max(1) as f64;
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="11">"#
    );
    svg.push_str("<title>ginkgo-bench: ginkgo's ratio to the baseline, per backend</title>\n");
    let _ = writeln!(
        svg,
        r##"<rect width="{WIDTH}" height="{height}" fill="#ffffff"/>"##
    );
    let _ = writeln!(
        svg,
        r#"<text x="{LEFT}" y="20" font-size="15" font-weight="bold">ginkgo vs. its baselines: ratio per backend (above 1.0: ginkgo ahead)</text>"#
    );
    let mut x = LEFT;
    for name in &series {
        let _ = writeln!(
            svg,
            r#"<rect x="{x}" y="32" width="12" height="12" fill="{}"/><text x="{}" y="42">{}</text>"#,
            colour(name),
            x + 16.0,
            escape(name)
        );
        x += 16.0 + 6.5 * name.chars().count() as f64 + 18.0;
    }
    for (index, results) in all.iter().enumerate() {
        let top = LEGEND + panel_height * index as f64;
        panel(&mut svg, results, &series, top, &colour);
    }
    if all.is_empty() {
        let _ = writeln!(
            svg,
            r#"<text x="{LEFT}" y="{}">no results</text>"#,
            LEGEND + 20.0
        );
    }
    svg.push_str("</svg>\n");
    svg
}

/// Draws one suite's panel with its top edge at `top`.
fn panel(
    svg: &mut String,
    results: &Results,
    series: &[String],
    top: f64,
    colour: &dyn Fn(&str) -> &'static str,
) {
    let groups = groups(results, series);
    let _ = writeln!(
        svg,
        r#"<text x="{LEFT}" y="{}" font-size="13" font-weight="bold">{}: {}</text>"#,
        top + 16.0,
        escape(&results.suite),
        escape(&results.title)
    );
    let _ = writeln!(
        svg,
        r##"<text x="{LEFT}" y="{}" font-size="10" fill="#555555">{}</text>"##,
        top + 32.0,
        escape(&note(results))
    );
    let plot_bottom = top + HEAD + PLOT;
    let (axis_top, step) = axis(&groups);
    let y = |value: f64| plot_bottom - value.max(0.0) / axis_top * PLOT;
    let right = WIDTH - RIGHT;
    let decimals = (0..3)
        .find(|d| {
            let scaled = step * 10f64.powi(*d);
            (scaled - scaled.round()).abs() < 1e-6
        })
        .unwrap_or(3) as usize;
    let ticks = (axis_top / step).round() as usize;
    for tick in (0..=ticks).map(|i| i as f64 * step) {
        let _ = writeln!(
            svg,
            r##"<line x1="{LEFT}" y1="{0:.1}" x2="{right}" y2="{0:.1}" stroke="#e5e5e5"/><text x="{1}" y="{2:.1}" text-anchor="end" fill="#555555">{tick:.decimals$}</text>"##,
            y(tick),
            LEFT - 6.0,
            y(tick) + 4.0
        );
    }
    let _ = writeln!(
        svg,
        r##"<line x1="{LEFT}" y1="{plot_bottom}" x2="{right}" y2="{plot_bottom}" stroke="#333333"/>"##
    );
    let width = right - LEFT;
    let group_width = width / groups.len().max(1) as f64;
    for (index, group) in groups.iter().enumerate() {
        let centre = LEFT + group_width * (index as f64 + 0.5);
        let bar_width = MAX_BAR.min(group_width * 0.8 / group.bars.len() as f64);
        let first = centre - bar_width * group.bars.len() as f64 / 2.0;
        for (slot, bar) in group.bars.iter().enumerate() {
            let x = first + bar_width * slot as f64;
            let middle = x + bar_width / 2.0;
            let _ = writeln!(
                svg,
                r#"<rect x="{x:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="{}"><title>{}: {:.2} (min–max {:.2}–{:.2}, {} rounds)</title></rect>"#,
                y(bar.median),
                bar_width - 3.0,
                plot_bottom - y(bar.median),
                colour(&bar.series),
                escape(&bar.series),
                bar.median,
                bar.min,
                bar.max,
                bar.runs
            );
            let (whisker, cap) = (middle - 1.5, bar_width / 5.0);
            let _ = writeln!(
                svg,
                r##"<path d="M{whisker:.1} {0:.1}V{1:.1}M{2:.1} {0:.1}H{3:.1}M{2:.1} {1:.1}H{3:.1}" stroke="#222222" fill="none"/>"##,
                y(bar.min),
                y(bar.max),
                whisker - cap,
                whisker + cap
            );
            let _ = writeln!(
                svg,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="10">{:.2}</text>"#,
                whisker,
                y(bar.max.max(bar.median)) - 4.0,
                bar.median
            );
        }
        let _ = writeln!(
            svg,
            r#"<text x="{centre:.1}" y="{}" text-anchor="middle">{}</text>"#,
            plot_bottom + 16.0,
            escape(&group.measure)
        );
    }
    let parity = y(1.0);
    let _ = writeln!(
        svg,
        r##"<line class="parity" x1="{LEFT}" y1="{parity:.1}" x2="{right}" y2="{parity:.1}" stroke="#111111" stroke-dasharray="5 3"/><text x="{right}" y="{:.1}" text-anchor="end" font-size="9" fill="#111111">1.0</text>"##,
        parity - 3.0
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::SPEED_OF_TIMES;
    use crate::results::tests::row;

    fn runtime() -> Results {
        let mut results = Results::new("runtime", "ginkgo <vs> native & co", SPEED_OF_TIMES);
        results.measures = vec![
            row("spawn+join", "smol", 0.97, "2026-12-03"),
            row("spawn+join", "tokio", 1.01, "2026-12-03"),
            row("tcp echo", "tokio", 1.02, "2026-12-03"),
            row("tcp echo", "hyper-smol (reference)", 0.85, "2026-12-02"),
        ];
        results
    }

    fn count(svg: &str, needle: &str) -> usize {
        svg.matches(needle).count()
    }

    #[test]
    fn a_bar_a_whisker_and_a_label_per_measure_and_backend() {
        let svg = render(&[runtime()]);
        assert!(
            svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""),
            "{svg}"
        );
        assert!(svg.ends_with("</svg>\n"));
        // The background, three legend squares (tokio, smol, the reference), four bars.
        assert_eq!(count(&svg, "<rect "), 1 + 3 + 4, "{svg}");
        assert_eq!(count(&svg, "<path "), 4);
        for label in [
            ">0.97</text>",
            ">1.01</text>",
            ">1.02</text>",
            ">0.85</text>",
        ] {
            assert_eq!(count(&svg, label), 1, "{label} in {svg}");
        }
        assert_eq!(count(&svg, ">spawn+join</text>"), 1);
        assert_eq!(count(&svg, ">tcp echo</text>"), 1);
        assert_eq!(count(&svg, "class=\"parity\""), 1);
        // Every element with content closes.
        for tag in ["text", "title", "svg"] {
            let (open, close) = (
                count(&svg, &format!("<{tag}")),
                count(&svg, &format!("</{tag}>")),
            );
            assert_eq!(open, close, "<{tag}>: {open} open, {close} closed");
        }
        // Ticks are round numbers: 0, 0.25, ..., 1.25 for a top whisker of 1.07.
        assert!(
            svg.contains(">0.25</text>") && svg.contains(">1.25</text>"),
            "{svg}"
        );
    }

    #[test]
    fn text_is_escaped() {
        let svg = render(&[runtime()]);
        assert!(svg.contains("ginkgo &lt;vs&gt; native &amp; co"), "{svg}");
        assert!(!svg.contains("<vs>"));
    }

    #[test]
    fn backends_keep_their_order_and_colour_across_panels() {
        let mut bus = Results::new("bus", "the bus", SPEED_OF_TIMES);
        bus.measures = vec![row("publish 64 B", "smol", 1.1, "2026-12-03")];
        let svg = render(&[runtime(), bus]);
        let legend = |name: &str| svg.find(&format!(">{name}</text>")).unwrap();
        assert!(legend("tokio") < legend("smol"));
        assert!(legend("smol") < legend("hyper-smol (reference)"));
        // smol is the second series: the same colour in both panels.
        let smol_bars = svg
            .lines()
            .filter(|line| line.contains("<title>smol:"))
            .collect::<Vec<_>>();
        assert_eq!(smol_bars.len(), 2);
        assert!(smol_bars.iter().all(|line| line.contains(PALETTE[1])));
    }

    #[test]
    fn bars_scale_with_the_axis_and_parity_sits_at_one() {
        let mut lifecycle = Results::new("lifecycle", "trees", SPEED_OF_TIMES);
        lifecycle.measures = vec![row(
            "start+stop 1000 services",
            "threads",
            16.5,
            "2026-12-03",
        )];
        let groups = groups(&lifecycle, &series(std::slice::from_ref(&lifecycle)));
        let (top, step) = axis(&groups);
        assert!((16.55..=16.55 * 1.5).contains(&top), "{top}");
        assert!((top / step).round() <= 8.0, "{top} / {step}");
        // Below 1.0 everywhere, the axis still reaches past 1.0.
        let mut low = Results::new("echo", "echo", SPEED_OF_TIMES);
        low.measures = vec![row("stream echo", "threads", 0.5, "2026-12-03")];
        let (top, _) = axis(&groups_of(&low));
        assert!(top > 1.0, "{top}");
        let svg = render(&[low]);
        let parity = svg.lines().find(|line| line.contains("parity")).unwrap();
        // y of 1.0 = bottom - 1.0 / top * PLOT: between the plot's top and bottom edges.
        let expected = LEGEND + HEAD + PLOT - PLOT / top;
        assert!(
            parity.contains(&format!("y1=\"{expected:.1}\"")),
            "{parity}"
        );
    }

    fn groups_of(results: &Results) -> Vec<Group> {
        groups(results, &series(std::slice::from_ref(results)))
    }

    #[test]
    fn tick_steps_are_round() {
        assert_eq!(tick_step(0.23), 0.25);
        assert_eq!(tick_step(0.3), 0.5);
        assert_eq!(tick_step(1.0), 1.0);
        assert_eq!(tick_step(3.7), 5.0);
        assert_eq!(tick_step(12.0), 20.0);
    }

    #[test]
    fn nothing_to_draw_still_draws() {
        assert!(render(&[]).contains(">no results</text>"));
        let mut broken = Results::new("echo", "echo", SPEED_OF_TIMES);
        broken.measures = vec![row("stream echo", "tokio", f64::NAN, "2026-12-03")];
        let svg = render(&[broken]);
        assert_eq!(count(&svg, "<path "), 0);
        assert!(!svg.contains("NaN"), "{svg}");
    }

    #[test]
    fn the_note_names_dates_commits_and_rounds() {
        let text = note(&runtime());
        assert!(
            text.starts_with("2026-12-03, abc1234; 2026-12-02, abc1234; median of 7 rounds"),
            "{text}"
        );
        assert!(text.ends_with(SPEED_OF_TIMES), "{text}");
    }
}
