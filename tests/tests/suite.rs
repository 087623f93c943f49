//! The conformance lists are complete: every `pub async fn` in `tests/src/cases/*.rs` is a case
//! and must be named in `conformance_suite!` (read back as [`ginkgo_tests::CASES`]), and every
//! case of the HTTP suite (`async fn name<R: Runtime>()` in `tests/tests/http/*.rs`) in
//! `http_suite!` of `tests/tests/http.rs`, or it would compile and never run on any backend.

use std::collections::BTreeSet;
use std::path::Path;

/// The suite had this many cases per backend when the check was written; fewer means cases were
/// dropped from the list (and from the source, or the comparison below would say so).
const AT_LEAST: usize = 73;

/// The HTTP suite's size when the check was written, in the same sense.
const HTTP_AT_LEAST: usize = 29;

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

/// `area::name` of every HTTP case: an `async fn name<R: Runtime>()` (no arguments, which tells
/// a case from a helper such as `client::h1`) in `tests/tests/http/*.rs`.
fn written_http_cases() -> BTreeSet<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/http");
    let mut found = BTreeSet::new();
    for entry in std::fs::read_dir(&dir).expect("read tests/http") {
        let path = entry.expect("directory entry").path();
        let Some(area) = path.file_stem().and_then(|s| s.to_str()) else {
            continue;
        };
        let source = std::fs::read_to_string(&path).expect("read an HTTP case file");
        for line in source.lines() {
            let Some(rest) = line
                .strip_prefix("pub(crate) async fn ")
                .or_else(|| line.strip_prefix("pub async fn "))
            else {
                continue;
            };
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if rest[name.len()..].starts_with("<R: Runtime>()") {
                found.insert(format!("{area}::{name}"));
            }
        }
    }
    found
}

/// The cases `http_suite!` lists: the `area::name,` lines of its `http_tests!` call.
fn listed_http_cases() -> BTreeSet<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/http.rs");
    let source = std::fs::read_to_string(&path).expect("read tests/http.rs");
    let start = source
        .find("http_tests!($rt;")
        .expect("http_suite! calls http_tests!($rt; ...)");
    let end = start + source[start..].find(");").expect("the end of the list");
    source[start..end]
        .lines()
        .skip(1)
        .map(|line| line.trim().trim_end_matches(',').to_owned())
        .filter(|case| !case.is_empty())
        .collect()
}

#[test]
fn every_written_http_case_is_listed() {
    let written = written_http_cases();
    let listed = listed_http_cases();
    let missing: Vec<&String> = written.difference(&listed).collect();
    assert!(
        missing.is_empty(),
        "HTTP cases written in tests/tests/http but missing from http_suite! in \
         tests/tests/http.rs (they run on no backend): {missing:?}"
    );
    let unseen: Vec<&String> = listed.difference(&written).collect();
    assert!(
        unseen.is_empty(),
        "listed HTTP cases the scan did not find: {unseen:?}"
    );
    assert!(
        listed.len() >= HTTP_AT_LEAST,
        "{} HTTP cases, fewer than the {HTTP_AT_LEAST} the suite had",
        listed.len()
    );
    // The whole conformance suite, runtime and HTTP cases, run on each of the four backends.
    let per_backend = ginkgo_tests::CASES.len() + listed.len();
    assert!(per_backend >= 90, "{per_backend} cases per backend");
}
