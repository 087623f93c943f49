//! Subjects, as NATS spells them: tokens separated by `.`; in a subscription `*` matches one
//! token and `>` (last) one or more.

use super::BusError;

/// Checks a subject to subscribe to (wildcards allowed).
///
/// # Errors
///
/// [`BusError::InvalidSubject`] naming what is wrong.
pub fn check_pattern(subject: &str) -> Result<(), BusError> {
    check(subject, true)
}

/// Checks a subject to publish to (no wildcards).
///
/// # Errors
///
/// [`BusError::InvalidSubject`] naming what is wrong.
pub fn check_subject(subject: &str) -> Result<(), BusError> {
    if publishable(subject.as_bytes()) {
        return Ok(());
    }
    // Only a bad or a non-ASCII subject gets here: the full check says what is wrong.
    check(subject, false)
}

/// The fast test run on every publish: printable ASCII without wildcards, in non-empty
/// tokens. `false` sends the subject to the full check, which also accepts non-ASCII ones.
#[inline]
fn publishable(subject: &[u8]) -> bool {
    // The byte before the current one, as its class; a dot at first makes a leading dot an
    // empty token. Only `PLAIN` and `DOT` are ever kept, so a sum of 2 or more is either a
    // refused byte or a dot after a dot: one test per byte.
    let mut before = DOT;
    for &b in subject {
        let class = CLASS[usize::from(b)];
        if class + before >= 2 {
            return false;
        }
        before = class;
    }
    // Empty, or ending in a dot: an empty token.
    before == PLAIN
}

/// What [`publishable`] makes of a byte: part of a token, a dot, or one the fast test refuses
/// (controls, space, `*`, `>`, and everything from DEL on, which the full check judges).
const PLAIN: u8 = 0;
const DOT: u8 = 1;
const REFUSED: u8 = 2;
const CLASS: [u8; 256] = {
    let mut class = [REFUSED; 256];
    let mut b = b'!';
    while b < 0x7f {
        class[b as usize] = match b {
            b'.' => DOT,
            b'*' | b'>' => REFUSED,
            _ => PLAIN,
        };
        b += 1;
    }
    class
};

fn check(subject: &str, wildcards: bool) -> Result<(), BusError> {
    let invalid = |reason: &'static str| {
        Err(BusError::InvalidSubject {
            subject: subject.to_owned(),
            reason,
        })
    };
    if subject.is_empty() {
        return invalid("it is empty");
    }
    // One pass over the bytes, no allocation: this runs on every publish. Bytes of multi-byte
    // characters are all >= 0x80, so `.`, `*`, `>` and ASCII space and controls are seen
    // exactly; the rare non-ASCII subject is checked for Unicode white space as well.
    if !subject.is_ascii() && subject.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return invalid("it contains white space or a control character");
    }
    // The current token: its length, and the wildcard it holds, if any.
    let (mut length, mut wildcard) = (0usize, None::<u8>);
    let (mut after_tail, mut any_wildcard) = (false, false);
    for &b in subject.as_bytes() {
        match b {
            b'.' => {
                if length == 0 {
                    return invalid("it has an empty token (two dots, or a dot at an end)");
                }
                if let Some(w) = wildcard {
                    if length > 1 {
                        return invalid("`*` and `>` must be whole tokens");
                    }
                    after_tail |= w == b'>';
                }
                (length, wildcard) = (0, None);
            }
            b'*' | b'>' => {
                length += 1;
                wildcard = Some(b);
                any_wildcard = true;
            }
            0..=b' ' | 0x7f => return invalid("it contains white space or a control character"),
            _ => length += 1,
        }
    }
    if length == 0 {
        return invalid("it has an empty token (two dots, or a dot at an end)");
    }
    if wildcard.is_some() && length > 1 {
        return invalid("`*` and `>` must be whole tokens");
    }
    if after_tail {
        return invalid("`>` must be the last token");
    }
    if any_wildcard && !wildcards {
        return invalid("wildcards (`*`, `>`) are for subscribing, not publishing");
    }
    Ok(())
}

/// Whether the subscription `pattern` matches the published `subject` (both checked).
///
/// # Examples
///
/// ```
/// use ginkgo_api::bus::subject::matches;
///
/// assert!(matches("orders.*.paid", "orders.eu.paid"));
/// assert!(matches("orders.>", "orders.eu.paid"));
/// assert!(!matches("orders.>", "orders"));
/// assert!(!matches("orders.*", "orders.eu.paid"));
/// ```
pub fn matches(pattern: &str, subject: &str) -> bool {
    let mut subject = subject.split('.');
    for token in pattern.split('.') {
        match (token, subject.next()) {
            (">", Some(_)) => return true,
            (_, None) => return false,
            ("*", Some(_)) => {}
            (want, Some(got)) if want == got => {}
            _ => return false,
        }
    }
    subject.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_tokens() {
        assert!(matches("a.b.c", "a.b.c"));
        assert!(!matches("a.b.c", "a.b"));
        assert!(!matches("a.b", "a.b.c"));
        assert!(matches("a.*.c", "a.x.c"));
        assert!(matches("*", "a"));
        assert!(!matches("*", "a.b"));
        assert!(matches(">", "a.b"));
        assert!(matches("a.>", "a.b.c"));
        assert!(!matches("a.>", "a"));
        assert!(!matches("a.>", "b.c"));
    }

    #[test]
    fn bad_subjects_say_why() {
        for (subject, why) in [
            ("", "empty"),
            ("a..b", "empty token"),
            ("a.", "empty token"),
            ("a b", "white space"),
            ("a\tb", "white space"),
            ("a\u{7f}", "control"),
            ("a\u{a0}b", "white space"),
            ("ä\u{2003}", "white space"),
            (".a", "empty token"),
            ("a.b*", "whole tokens"),
            ("a.>.b", "last token"),
            (">.a", "last token"),
        ] {
            let err = check_pattern(subject).unwrap_err().to_string();
            assert!(err.contains(why), "{subject:?}: {err}");
        }
        assert!(check_pattern("a.*.>").is_ok());
        assert!(check_pattern(">").is_ok());
        assert!(check_subject("$SRV.PING.ä-name").is_ok());
        let err = check_subject("a.*").unwrap_err().to_string();
        assert!(err.contains("not publishing"), "{err}");
    }

    /// The fast test never accepts what the full check refuses, and accepts every ASCII
    /// subject the full check accepts: every string of up to five bytes over an alphabet of
    /// each kind of byte the checks tell apart.
    #[test]
    fn the_fast_test_agrees_with_the_full_check() {
        let alphabet = [b'a', b'.', b'*', b'>', b' ', b'\t', 0x7f, b'$', b'-'];
        let mut subjects = vec![Vec::new()];
        for _ in 0..5 {
            let longer: Vec<Vec<u8>> = subjects
                .iter()
                .filter(|s| s.len() == subjects.last().map_or(0, Vec::len))
                .flat_map(|s| {
                    alphabet.iter().map(move |&b| {
                        let mut s = s.clone();
                        s.push(b);
                        s
                    })
                })
                .collect();
            subjects.extend(longer);
        }
        for bytes in &subjects {
            let subject = std::str::from_utf8(bytes).unwrap();
            assert_eq!(
                publishable(bytes),
                check(subject, false).is_ok(),
                "{subject:?}"
            );
        }
        assert!(subjects.len() > 60_000);
        // And every byte on its own, and between two plain ones.
        for b in 0..=u8::MAX {
            for bytes in [vec![b], vec![b'a', b, b'a']] {
                let full = std::str::from_utf8(&bytes).is_ok_and(|s| check(s, false).is_ok());
                // Non-ASCII is the full check's alone.
                if b.is_ascii() {
                    assert_eq!(publishable(&bytes), full, "{bytes:?}");
                } else {
                    assert!(!publishable(&bytes), "{bytes:?}");
                }
            }
        }
    }
}
