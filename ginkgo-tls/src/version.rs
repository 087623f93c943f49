//! [`TlsVersion`]: a TLS protocol version, as a setting.

use std::fmt;
use std::str::FromStr;

use rustls::SupportedProtocolVersion;
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A TLS protocol version this crate speaks: the minimum a server or client accepts, or the
/// version a connection negotiated.
///
/// TLS 1.0 and 1.1 are not offered: they are deprecated (RFC 8996) and rustls does not
/// implement them.
///
/// As a setting it is written `"1.2"` or `"1.3"`; parsing also takes `"tls1.2"`, `"TLSv1.3"`
/// (any case) and, for TOML's sake, the number `1.2`.
///
/// # Examples
///
/// ```
/// use ginkgo_tls::TlsVersion;
///
/// assert_eq!("TLSv1.3".parse::<TlsVersion>().unwrap(), TlsVersion::Tls13);
/// assert_eq!(TlsVersion::default(), TlsVersion::Tls12);
/// assert_eq!(TlsVersion::Tls13.to_string(), "1.3");
/// assert!("1.1".parse::<TlsVersion>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum TlsVersion {
    /// TLS 1.2 (RFC 5246): the default minimum, for clients that do not speak 1.3 yet.
    #[default]
    Tls12,
    /// TLS 1.3 (RFC 8446).
    Tls13,
}

impl TlsVersion {
    /// The versions rustls may negotiate when `self` is the minimum.
    pub(crate) fn and_newer(self) -> &'static [&'static SupportedProtocolVersion] {
        static TLS12_AND_NEWER: [&SupportedProtocolVersion; 2] =
            [&rustls::version::TLS13, &rustls::version::TLS12];
        static TLS13_ONLY: [&SupportedProtocolVersion; 1] = [&rustls::version::TLS13];
        match self {
            TlsVersion::Tls12 => &TLS12_AND_NEWER,
            TlsVersion::Tls13 => &TLS13_ONLY,
        }
    }

    /// The version of an established connection. rustls knows it once the handshake is
    /// done, which is before any stream of this crate exists, and it can only be one of the
    /// versions offered, all at least 1.2.
    pub(crate) fn negotiated(version: Option<rustls::ProtocolVersion>) -> Self {
        match version {
            Some(rustls::ProtocolVersion::TLSv1_3) => TlsVersion::Tls13,
            _ => TlsVersion::Tls12,
        }
    }
}

impl fmt::Display for TlsVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TlsVersion::Tls12 => "1.2",
            TlsVersion::Tls13 => "1.3",
        })
    }
}

/// The error of parsing a [`TlsVersion`]: the text was not one of the accepted forms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseVersionError {
    text: String,
}

impl fmt::Display for ParseVersionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown TLS version {:?}: ", self.text)?;
        match self.text.trim_start_matches(|c: char| !c.is_ascii_digit()) {
            "1.0" | "1.1" => f.write_str("TLS 1.0 and 1.1 are not supported; write \"1.2\""),
            _ => f.write_str("write \"1.2\" or \"1.3\""),
        }
    }
}

impl std::error::Error for ParseVersionError {}

impl FromStr for TlsVersion {
    type Err = ParseVersionError;

    /// Parses `"1.2"` or `"1.3"`, optionally prefixed by `tls` or `tlsv` in any case.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let lower = text.trim().to_ascii_lowercase();
        let number = lower
            .strip_prefix("tlsv")
            .or_else(|| lower.strip_prefix("tls"))
            .unwrap_or(&lower)
            .trim_start();
        match number {
            "1.2" => Ok(TlsVersion::Tls12),
            "1.3" => Ok(TlsVersion::Tls13),
            _ => Err(ParseVersionError {
                text: text.to_owned(),
            }),
        }
    }
}

impl Serialize for TlsVersion {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for TlsVersion {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Expect;
        impl Visitor<'_> for Expect {
            type Value = TlsVersion;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a TLS version, \"1.2\" or \"1.3\"")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<TlsVersion, E> {
                v.parse().map_err(E::custom)
            }

            // `min_version = 1.3` in TOML is a float; take it rather than make the user quote it.
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<TlsVersion, E> {
                v.to_string().parse().map_err(E::custom)
            }
        }
        deserializer.deserialize_any(Expect)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::de::IntoDeserializer;
    use serde::de::value::Error as ValueError;

    #[test]
    fn parses_every_spelling() {
        for (text, version) in [
            ("1.2", TlsVersion::Tls12),
            ("1.3", TlsVersion::Tls13),
            ("tls1.2", TlsVersion::Tls12),
            ("TLS1.3", TlsVersion::Tls13),
            ("TLSv1.2", TlsVersion::Tls12),
            ("tlsv1.3", TlsVersion::Tls13),
            (" 1.3 ", TlsVersion::Tls13),
        ] {
            assert_eq!(text.parse::<TlsVersion>(), Ok(version), "{text:?}");
        }
        for text in ["", "1", "1.4", "ssl3", "tls", "v1.3"] {
            assert!(text.parse::<TlsVersion>().is_err(), "{text:?}");
        }
    }

    #[test]
    fn old_versions_are_refused_with_a_reason() {
        let err = "TLSv1.1".parse::<TlsVersion>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown TLS version \"TLSv1.1\": TLS 1.0 and 1.1 are not supported; write \"1.2\""
        );
    }

    #[test]
    fn display_round_trips() {
        for version in [TlsVersion::Tls12, TlsVersion::Tls13] {
            assert_eq!(version.to_string().parse::<TlsVersion>(), Ok(version));
        }
    }

    #[test]
    fn deserializes_from_a_string_or_a_number() {
        let from_str =
            TlsVersion::deserialize("TLSv1.3".into_deserializer()).map_err(|e: ValueError| e);
        assert_eq!(from_str, Ok(TlsVersion::Tls13));
        let from_f64 =
            TlsVersion::deserialize(1.2f64.into_deserializer()).map_err(|e: ValueError| e);
        assert_eq!(from_f64, Ok(TlsVersion::Tls12));
        let bad = TlsVersion::deserialize("1.0".into_deserializer()).map_err(|e: ValueError| e);
        assert!(bad.unwrap_err().to_string().contains("not supported"));
    }

    #[test]
    fn serializes_as_the_string() {
        assert_eq!(
            serde_json::to_string(&TlsVersion::Tls13).unwrap(),
            "\"1.3\""
        );
        assert_eq!(
            serde_json::from_str::<TlsVersion>("\"1.2\"").unwrap(),
            TlsVersion::Tls12
        );
    }
}
