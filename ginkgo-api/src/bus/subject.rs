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
    check(subject, false)
}

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
    if subject.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return invalid("it contains white space or a control character");
    }
    let tokens: Vec<&str> = subject.split('.').collect();
    for (i, token) in tokens.iter().enumerate() {
        if token.is_empty() {
            return invalid("it has an empty token (two dots, or a dot at an end)");
        }
        let wild = *token == "*" || *token == ">";
        if (token.contains('*') || token.contains('>')) && !wild {
            return invalid("`*` and `>` must be whole tokens");
        }
        if wild && !wildcards {
            return invalid("wildcards (`*`, `>`) are for subscribing, not publishing");
        }
        if *token == ">" && i + 1 != tokens.len() {
            return invalid("`>` must be the last token");
        }
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
            ("a.b*", "whole tokens"),
            ("a.>.b", "last token"),
        ] {
            let err = check_pattern(subject).unwrap_err().to_string();
            assert!(err.contains(why), "{subject:?}: {err}");
        }
        assert!(check_pattern("a.*.>").is_ok());
        let err = check_subject("a.*").unwrap_err().to_string();
        assert!(err.contains("not publishing"), "{err}");
    }
}
