//! A duration setting: `"500ms"`, `"10s"`, `"2m"`, `"1h"`, or a number of seconds.

use std::fmt;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A duration as a setting, written `"500ms"`, `"10s"`, `"2m"`, `"1h"` or as a number of
/// seconds (`10`, `0.5`).
///
/// # Examples
///
/// ```
/// use ginkgo_config::Duration;
/// let d: Duration = toml::Value::String("1.5s".into()).try_into().unwrap();
/// assert_eq!(d.0, std::time::Duration::from_millis(1500));
/// assert_eq!(d.to_string(), "1500ms");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Duration(pub std::time::Duration);

impl Duration {
    /// `secs` seconds.
    pub const fn from_secs(secs: u64) -> Self {
        Self(std::time::Duration::from_secs(secs))
    }

    /// `millis` milliseconds.
    pub const fn from_millis(millis: u64) -> Self {
        Self(std::time::Duration::from_millis(millis))
    }

    /// Parses `"500ms"`, `"10s"`, `"2m"`, `"1h"` or a bare number of seconds.
    ///
    /// # Errors
    ///
    /// Says what is wrong and shows the accepted forms.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let split = text
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(text.len());
        let (number, unit) = text.split_at(split);
        let scale = match unit.trim() {
            "ms" => 0.001,
            "" | "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => f64::NAN,
        };
        let seconds = number.parse::<f64>().map(|n| n * scale);
        match seconds {
            Ok(s) if (0.0..1e12).contains(&s) => Ok(Self(std::time::Duration::from_secs_f64(s))),
            _ => Err(format!(
                "invalid duration {text:?}: write a number with ms, s, m or h, such as \"10s\""
            )),
        }
    }
}

impl From<std::time::Duration> for Duration {
    fn from(d: std::time::Duration) -> Self {
        Self(d)
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let millis = self.0.as_millis();
        if millis.is_multiple_of(1000) {
            write!(f, "{}s", millis / 1000)
        } else {
            write!(f, "{millis}ms")
        }
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Expect;
        impl Visitor<'_> for Expect {
            type Value = Duration;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as \"10s\" or a number of seconds")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
                Duration::parse(v).map_err(E::custom)
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Duration, E> {
                u64::try_from(v)
                    .map(Duration::from_secs)
                    .map_err(|_| E::custom(format!("a duration cannot be negative ({v})")))
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Duration, E> {
                Ok(Duration::from_secs(v))
            }

            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Duration, E> {
                Duration::parse(&v.to_string()).map_err(E::custom)
            }
        }
        deserializer.deserialize_any(Expect)
    }
}
