//! The conformance list is complete: every `pub async fn` in `tests/src/cases/*.rs` is a case
//! and must be named in `conformance_suite!` (read back as [`ginkgo_tests::CASES`]), or it would
//! compile and never run on any backend.

use std::collections::BTreeSet;
use std::path::Path;

/// The suite had this many cases per backend when the check was written; fewer means cases were
/// dropped from the list (and from the source, or the comparison below would say so).
const AT_LEAST: usize = 72;

/// `area::name` of every top-level `pub async fn` in the case files. A case's signature is
/// `pub async fn name<R: Runtime>()` on one line; helpers are private or live in `support`.
fn written_cases() -> BTreeSet<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/cases");
    let mut found = BTreeSet::new();
    for entry in std::fs::read_dir(&dir).expect("read src/cases") {
        let path = entry.expect("directory entry").path();
        let Some(area) = path.file_stem().and_then(|s| s.to_str()) else {
            continue;
        };
        if path.extension().is_none_or(|e| e != "rs") || area == "mod" {
            continue;
        }
        let source = std::fs::read_to_string(&path).expect("read a case file");
        for line in source.lines() {
            if let Some(rest) = line.strip_prefix("pub async fn ") {
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                found.insert(format!("{area}::{name}"));
            }
        }
    }
    found
}

#[test]
fn every_written_case_is_listed() {
    let written = written_cases();
    let listed: BTreeSet<String> = ginkgo_tests::CASES.iter().map(|&c| c.to_owned()).collect();
    let missing: Vec<&String> = written.difference(&listed).collect();
    assert!(
        missing.is_empty(),
        "cases written in tests/src/cases but missing from conformance_suite! in \
         tests/src/lib.rs (they run on no backend): {missing:?}"
    );
    // The other way round cannot compile, unless the scan above missed a case's line.
    let unseen: Vec<&String> = listed.difference(&written).collect();
    assert!(
        unseen.is_empty(),
        "listed cases the scan did not find as `pub async fn` lines: {unseen:?}"
    );
}

#[test]
fn the_suite_keeps_its_size() {
    let per_backend = ginkgo_tests::CASES.len();
    assert!(
        per_backend >= AT_LEAST,
        "{per_backend} cases per backend, fewer than the {AT_LEAST} the suite had"
    );
    // Sanity of the scan itself: it must see the cases it is meant to police.
    assert!(written_cases().len() >= AT_LEAST);
}
