//! A file mode setting (a umask, a socket file's mode): octal, as `chmod` and `umask` write it.

use std::fmt;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// File mode bits as a setting, shown and written in octal text: `"0o027"`, `"027"` or
/// `"0027"`; at most `0o7777`. A TOML integer is refused with an error saying so: TOML reads
/// `22` as decimal, and keeps no trace of `0o022`'s notation.
///
/// # Examples
///
/// ```
/// use ginkgo_config::FileMode;
/// let mode: FileMode = toml::Value::String("027".into()).try_into().unwrap();
/// assert_eq!(mode.0, 0o027);
/// assert_eq!(mode.to_string(), "0o027");
/// let integer: Result<FileMode, _> = toml::Value::Integer(22).try_into();
/// assert!(integer.is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct FileMode(pub u32);

impl FileMode {
    /// Parses octal text: `"0o027"`, `"027"`, `"0027"`, `"27"`.
    ///
    /// # Errors
    ///
    /// Says what is wrong and shows the accepted forms.
    pub fn parse(text: &str) -> Result<Self, String> {
        let trimmed = text.trim();
        let digits = trimmed.strip_prefix("0o").unwrap_or(trimmed);
        match u32::from_str_radix(digits, 8) {
            Ok(mode) if !digits.is_empty() => Self::checked(u64::from(mode)),
            _ => Err(format!(
                "invalid file mode {text:?}: write octal digits, such as \"0o027\" or \"027\""
            )),
        }
    }

    fn checked(mode: u64) -> Result<Self, String> {
        match u32::try_from(mode) {
            Ok(mode) if mode <= 0o7777 => Ok(Self(mode)),
            _ => Err(format!("a file mode is at most 0o7777, got 0o{mode:o}")),
        }
    }
}

impl fmt::Display for FileMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0o{:03o}", self.0)
    }
}

impl Serialize for FileMode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for FileMode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Expect;
        impl Visitor<'_> for Expect {
            type Value = FileMode;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a file mode in octal, such as \"0o027\" or 0o027")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<FileMode, E> {
                FileMode::parse(v).map_err(E::custom)
            }

            // A TOML integer is refused rather than guessed at: `umask = 22` means 0o026 to
            // TOML, and `0o022` keeps no trace of its notation.
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<FileMode, E> {
                Err(E::custom(format!(
                    "write a file mode as octal text, such as \"0o027\" (the integer {v} would be read as decimal)"
                )))
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<FileMode, E> {
                Err(E::custom(format!(
                    "write a file mode as octal text, such as \"0o027\" (the integer {v} would be read as decimal)"
                )))
            }
        }
        deserializer.deserialize_any(Expect)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn octal_in_every_form_and_nothing_else() {
        for text in ["0o027", "027", "0027", "27", " 0o27 "] {
            assert_eq!(FileMode::parse(text), Ok(FileMode(0o027)), "{text}");
        }
        for bad in ["", "0o", "8", "0o9", "rwx", "-1", "0o17777"] {
            assert!(FileMode::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(FileMode(0o7).to_string(), "0o007");
        assert_eq!(FileMode(0o660).to_string(), "0o660");
        let too_big: Result<FileMode, _> = toml::Value::String("0o10000".into()).try_into();
        assert!(too_big.is_err());
        let integer: Result<FileMode, _> = toml::Value::Integer(0o22).try_into();
        assert!(integer.unwrap_err().to_string().contains("octal text"));
    }
}
