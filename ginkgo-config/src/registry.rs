//! The program-wide registry of declared settings, filled by `#[derive(Settings)]`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde::de::DeserializeOwned;

use super::Settings;
use super::error::{ConfigError, Problem};
use super::source::Source;

/// One declared setting, as listed by `config` and written by the template.
#[derive(Debug, Clone, PartialEq)]
pub struct SettingInfo {
    /// The dotted path, such as `hello.rate_per_minute`.
    pub path: String,
    /// The Rust type, shortened (`u32`, `Option<String>`).
    pub type_name: String,
    /// The help text (the field's doc comment).
    pub help: &'static str,
    /// The default as a TOML value; `None` when it has none (an `Option` left unset).
    pub default: Option<toml::Value>,
    /// Whether a TOML value has the setting's type: asked of the type itself, so a type alias
    /// or a newtype behaves like what it stands for.
    accepts: Accepts,
}

/// Asks the setting's type whether it deserializes from a value.
#[derive(Clone, Copy)]
struct Accepts(fn(&toml::Value) -> bool);

impl Accepts {
    fn of<T: DeserializeOwned>() -> Self {
        Self(|value| T::deserialize(value.clone()).is_ok())
    }
}

impl std::fmt::Debug for Accepts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Accepts")
    }
}

/// The type check is a function of the type, which the path and type name already identify.
impl PartialEq for Accepts {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl SettingInfo {
    /// Describes the setting `key` of `group`, of type `T`. Called by the derive.
    pub fn new<T: DeserializeOwned + 'static>(
        group: &str,
        key: &str,
        help: &'static str,
        default: Option<toml::Value>,
    ) -> Self {
        Self {
            path: join(group, key),
            type_name: short_type_name(std::any::type_name::<T>()),
            help,
            default,
            accepts: Accepts::of::<T>(),
        }
    }

    /// A value given as text (in the environment or with `--set`): as a TOML value (`60`,
    /// `true`, `["a", "b"]`) when the setting's type takes that, else as the text itself
    /// (`name=123` for a string setting, `format=json` for an enum), else the TOML value, so
    /// that the type check names what was found.
    pub(crate) fn parse_text(&self, raw: &str) -> toml::Value {
        let text = toml::Value::String(raw.to_owned());
        let parsed = toml::from_str::<toml::Table>(&format!("value = {raw}"))
            .ok()
            .and_then(|mut table| table.remove("value"));
        match parsed {
            Some(value) if (self.accepts.0)(&value) => value,
            Some(value) if !(self.accepts.0)(&text) => value,
            _ => text,
        }
    }
}

/// A group of settings registered by `#[derive(Settings)]`.
pub struct Group {
    /// The dotted group path ("" for top-level settings).
    pub path: &'static str,
    /// The Rust type that declares it.
    pub type_name: &'static str,
    pub(crate) settings: fn() -> Vec<SettingInfo>,
    pub(crate) validate: fn(&Values) -> Result<(), ConfigError>,
}

impl Group {
    /// Registers `S` under `path`. Called by the derive.
    pub const fn new<S: Settings>(path: &'static str, type_name: &'static str) -> Self {
        Self {
            path,
            type_name,
            settings: S::settings,
            validate: validate_group::<S>,
        }
    }
}

fn validate_group<S: Settings>(values: &Values) -> Result<(), ConfigError> {
    S::from_values(values).map(drop)
}

inventory::collect!(Group);

/// The merged values of every layer, by dotted path, each with its source.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Values {
    pub(crate) entries: BTreeMap<String, (toml::Value, Source)>,
    /// The text of the configuration file these values were read from.
    pub(crate) file_text: Option<Arc<str>>,
}

impl Values {
    /// The value at `path` and where it came from.
    pub fn get(&self, path: &str) -> Option<&(toml::Value, Source)> {
        self.entries.get(path)
    }

    /// Whether the values under `group` (by value, not source) are the same in both.
    pub(crate) fn same_group(&self, other: &Values, group: &str) -> bool {
        let pick = |values: &Values| -> Vec<(String, toml::Value)> {
            values
                .entries
                .iter()
                .filter(|(path, _)| in_group(path, group))
                .map(|(path, (value, _))| (path.clone(), value.clone()))
                .collect()
        };
        pick(self) == pick(other)
    }
}

/// Whether `path` is a setting of `group` itself (not of a subgroup, for the top level).
pub(crate) fn in_group(path: &str, group: &str) -> bool {
    if group.is_empty() {
        return !path.contains('.');
    }
    path.strip_prefix(group)
        .and_then(|rest| rest.strip_prefix('.'))
        .is_some_and(|key| !key.contains('.'))
}

/// `group.key`, or `key` for the top level.
pub(crate) fn join(group: &str, key: &str) -> String {
    if group.is_empty() {
        key.to_owned()
    } else {
        format!("{group}.{key}")
    }
}

/// Every declared setting, by path; and every group path and prefix of one.
pub(crate) struct Registry {
    pub(crate) settings: BTreeMap<String, SettingInfo>,
    pub(crate) groups: BTreeSet<String>,
}

impl Registry {
    pub(crate) fn collect() -> Self {
        let mut settings = BTreeMap::new();
        let mut groups = BTreeSet::new();
        for group in inventory::iter::<Group> {
            let mut prefix = String::new();
            for segment in group.path.split('.').filter(|s| !s.is_empty()) {
                if !prefix.is_empty() {
                    prefix.push('.');
                }
                prefix.push_str(segment);
                groups.insert(prefix.clone());
            }
            for info in (group.settings)() {
                settings.entry(info.path.clone()).or_insert(info);
            }
        }
        Self { settings, groups }
    }

    /// The declared path closest to `path`, if one is close enough to be a likely typo.
    pub(crate) fn suggest(&self, path: &str) -> Option<String> {
        self.settings
            .keys()
            .chain(self.groups.iter())
            .map(|known| (strsim::damerau_levenshtein(path, known), known))
            .filter(|(distance, known)| *distance <= 2.max(known.len() / 5))
            .min_by_key(|(distance, _)| *distance)
            .map(|(_, known)| known.clone())
    }
}

/// Every declared setting in the program, sorted by path.
pub fn settings() -> Vec<SettingInfo> {
    Registry::collect().settings.into_values().collect()
}

/// A setting's validator: `Err` holds the reason.
pub type Validator<T> = fn(&T) -> Result<(), String>;

/// Reads one field for the derive: deserializes, validates, records problems.
pub fn read<T: DeserializeOwned>(
    values: &Values,
    group: &str,
    key: &str,
    validate: Option<Validator<T>>,
    problems: &mut Vec<Problem>,
) -> Option<T> {
    let path = join(group, key);
    let expected = || short_type_name(std::any::type_name::<T>());
    let (value, source) = match values.get(&path) {
        Some((value, source)) => (value, source),
        None => {
            // No value and no default: only an `Option` may stay unset.
            let unit = serde::de::value::UnitDeserializer::<serde::de::value::Error>::new();
            return match T::deserialize(unit) {
                Ok(value) => Some(value),
                Err(_) => {
                    problems.push(Problem::Type {
                        path,
                        expected: expected(),
                        found: "no value (the setting has no default)".into(),
                        source: Source::Default,
                    });
                    None
                }
            };
        }
    };
    match T::deserialize(value.clone()) {
        Ok(typed) => {
            if let Some(check) = validate
                && let Err(reason) = check(&typed)
            {
                problems.push(Problem::Invalid {
                    path,
                    reason,
                    source: source.clone(),
                });
                return None;
            }
            Some(typed)
        }
        Err(err) => {
            let mut found = describe(value);
            let message = err.to_string();
            if !message.starts_with("invalid type") {
                found = format!("{found} ({})", message.trim());
            }
            problems.push(Problem::Type {
                path,
                expected: expected(),
                found,
                source: source.clone(),
            });
            None
        }
    }
}

/// A TOML value described for an error message: `string "fast"`, `integer 5`.
pub(crate) fn describe(value: &toml::Value) -> String {
    const MAX: usize = 40;
    let shown = value.to_string();
    let shown = if shown.chars().count() > MAX {
        format!("{}…", shown.chars().take(MAX).collect::<String>())
    } else {
        shown
    };
    format!("{} {shown}", value.type_str())
}

/// `alloc::vec::Vec<alloc::string::String>` → `Vec<String>`.
pub(crate) fn short_type_name(full: &str) -> String {
    let mut out = String::with_capacity(full.len());
    let mut word = String::new();
    let mut chars = full.chars().peekable();
    while let Some(c) = chars.next() {
        if c == ':' && chars.peek() == Some(&':') {
            chars.next();
            word.clear(); // a module path segment: drop it
        } else if c.is_alphanumeric() || c == '_' {
            word.push(c);
        } else {
            out.push_str(&word);
            word.clear();
            out.push(c);
        }
    }
    out.push_str(&word);
    out
}

/// Serializes a default for the registry; `None` for values TOML cannot hold (an unset
/// `Option`).
pub fn to_value<T: serde::Serialize>(value: &T) -> Option<toml::Value> {
    toml::Value::try_from(value).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shortens_type_names() {
        assert_eq!(
            short_type_name("core::option::Option<alloc::vec::Vec<alloc::string::String>>"),
            "Option<Vec<String>>"
        );
        assert_eq!(short_type_name("u32"), "u32");
    }

    #[test]
    fn groups_contain_only_their_own_keys() {
        assert!(in_group("hello.message", "hello"));
        assert!(!in_group("hello.sub.message", "hello"));
        assert!(in_group("pidfile", ""));
        assert!(!in_group("hello.message", ""));
        assert!(!in_group("hellox.message", "hello"));
    }
}
