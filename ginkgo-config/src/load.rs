//! Reading and merging the layers: defaults < file < store < environment < command line <
//! forced.

use std::path::PathBuf;
use std::sync::Arc;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::error::{ConfigError, IoError, Problem};
use super::registry::{Registry, Values};
use super::source::Source;

/// Where the environment layer comes from.
#[derive(Debug, Clone)]
pub(crate) enum Env {
    /// The process environment, read at each load.
    Process,
    /// Fixed variables (tests, embedding).
    Fixed(Vec<(String, String)>),
    /// No environment layer.
    Off,
}

/// The sources of one configuration, re-read at each reload.
#[derive(Debug, Clone)]
pub(crate) struct Sources {
    pub(crate) file: Option<PathBuf>,
    pub(crate) env_prefix: String,
    pub(crate) env: Env,
    pub(crate) cli: Vec<String>,
    pub(crate) forced: Vec<(String, toml::Value)>,
    /// A key-value store's layer: (path, value as TOML text, where it came from).
    pub(crate) layer: Vec<(String, String, Source)>,
    /// The file's text for the first load, given instead of reading the file (what another
    /// process had in force); reloads read the file.
    pub(crate) file_text: Option<Arc<str>>,
}

/// Reads every layer, checks every key and every declared group, and returns the merged
/// values, or every problem found.
pub(crate) fn load(sources: &Sources) -> Result<Values, ConfigError> {
    let registry = Registry::collect();
    let mut values = Values::default();
    let mut problems = Vec::new();

    for (path, info) in &registry.settings {
        if let Some(default) = &info.default {
            values
                .entries
                .insert(path.clone(), (default.clone(), Source::Default));
        }
    }
    if let Some(file) = &sources.file {
        read_file(
            file,
            sources.file_text.clone(),
            &registry,
            &mut values,
            &mut problems,
        );
    }
    for (path, raw, source) in &sources.layer {
        assign(
            &registry,
            path,
            Raw::Text(raw),
            source.clone(),
            &mut values,
            &mut problems,
        );
    }
    let env = match &sources.env {
        Env::Process => std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect(),
        Env::Fixed(vars) => vars.clone(),
        Env::Off => Vec::new(),
    };
    for (var, raw) in env {
        let Some(rest) = var.strip_prefix(&sources.env_prefix) else {
            continue;
        };
        let path = rest
            .split("__")
            .map(str::to_lowercase)
            .collect::<Vec<_>>()
            .join(".");
        let source = Source::Env { var: var.clone() };
        assign(
            &registry,
            &path,
            Raw::Text(&raw),
            source,
            &mut values,
            &mut problems,
        );
    }
    for argument in &sources.cli {
        match argument.split_once('=') {
            Some((path, raw)) if !path.trim().is_empty() => assign(
                &registry,
                path.trim(),
                Raw::Text(raw),
                Source::CommandLine,
                &mut values,
                &mut problems,
            ),
            _ => problems.push(Problem::BadAssignment {
                argument: argument.clone(),
                reason: "expected PATH=VALUE, such as hello.message=\"hi\"".into(),
            }),
        }
    }
    for (path, value) in &sources.forced {
        assign(
            &registry,
            path,
            Raw::Value(value.clone()),
            Source::Forced,
            &mut values,
            &mut problems,
        );
    }

    // Only typed checks of values that exist: unknown keys and syntax are reported already.
    for group in inventory::iter::<super::registry::Group> {
        if let Err(err) = (group.validate)(&values) {
            for problem in err.into_problems() {
                if !problems.contains(&problem) {
                    problems.push(problem);
                }
            }
        }
    }
    if problems.is_empty() {
        Ok(values)
    } else {
        Err(ConfigError::new(problems))
    }
}

enum Raw<'a> {
    Text(&'a str),
    Value(toml::Value),
}

fn assign(
    registry: &Registry,
    path: &str,
    raw: Raw<'_>,
    source: Source,
    values: &mut Values,
    problems: &mut Vec<Problem>,
) {
    let Some(info) = registry.settings.get(path) else {
        problems.push(Problem::Unknown {
            path: path.to_owned(),
            suggestion: registry.suggest(path),
            source,
        });
        return;
    };
    let value = match raw {
        Raw::Text(text) => info.parse_text(text),
        Raw::Value(value) => value,
    };
    values.entries.insert(path.to_owned(), (value, source));
}

fn read_file(
    file: &PathBuf,
    given: Option<Arc<str>>,
    registry: &Registry,
    values: &mut Values,
    problems: &mut Vec<Problem>,
) {
    let name: Arc<str> = file.display().to_string().into();
    let read = match given {
        Some(text) => Ok(text),
        None => std::fs::read_to_string(file).map(Arc::from),
    };
    let text = match read {
        Ok(text) => {
            values.file_text = Some(text.clone());
            text
        }
        Err(err) => {
            problems.push(Problem::Io {
                file: name.to_string(),
                error: IoError(Arc::new(err)),
            });
            return;
        }
    };
    // Values come from the typed parse; places come from the spanned one.
    let table = match toml::from_str::<toml::Table>(&text) {
        Ok(table) => table,
        Err(err) => {
            let (line, column) = err
                .span()
                .map_or((1, 1), |span| line_column(&text, span.start));
            problems.push(Problem::Syntax {
                file: name.to_string(),
                line,
                column,
                message: err.message().trim().to_owned(),
            });
            return;
        }
    };
    let spans = DeTable::parse(&text).ok();
    let place = Place {
        text: &text,
        file: &name,
    };
    let first = problems.len();
    flatten(
        registry,
        &table,
        spans.as_ref().map(Spanned::get_ref),
        "",
        &place,
        values,
        problems,
    );
    // Report in the order of the file, not of the keys.
    problems[first..].sort_by_key(|problem| match problem {
        Problem::Unknown {
            source: Source::File { line, column, .. },
            ..
        }
        | Problem::Type {
            source: Source::File { line, column, .. },
            ..
        } => (*line, *column),
        _ => (usize::MAX, usize::MAX),
    });
}

struct Place<'a> {
    text: &'a str,
    file: &'a Arc<str>,
}

impl Place<'_> {
    fn source(&self, span: Option<std::ops::Range<usize>>) -> Source {
        let (line, column) = span.map_or((1, 1), |span| line_column(self.text, span.start));
        Source::File {
            file: self.file.clone(),
            line,
            column,
        }
    }
}

/// Walks the file's tables: declared settings take their whole value, groups are entered,
/// anything else is an unknown key.
fn flatten(
    registry: &Registry,
    table: &toml::Table,
    spans: Option<&DeTable<'_>>,
    prefix: &str,
    place: &Place<'_>,
    values: &mut Values,
    problems: &mut Vec<Problem>,
) {
    for (key, value) in table {
        let path = super::registry::join(prefix, key);
        let entry = spans.and_then(|spans| spans.iter().find(|(k, _)| k.get_ref() == key));
        let spanned = entry.map(|(_, value)| value);
        let source = place.source(spanned.map(Spanned::span));
        if registry.settings.contains_key(&path) {
            values.entries.insert(path, (value.clone(), source));
        } else if registry.groups.contains(&path) {
            match value {
                toml::Value::Table(inner) => {
                    let inner_spans = spanned.and_then(|s| match s.get_ref() {
                        DeValue::Table(t) => Some(t),
                        _ => None,
                    });
                    flatten(registry, inner, inner_spans, &path, place, values, problems);
                }
                other => problems.push(Problem::Type {
                    path,
                    expected: "a table (it is a group of settings)".into(),
                    found: super::registry::describe(other),
                    source,
                }),
            }
        } else {
            // Point at the key, where the typo is.
            let source = place.source(entry.map(|(key, _)| key.span()));
            problems.push(Problem::Unknown {
                suggestion: registry.suggest(&path),
                path,
                source,
            });
        }
    }
}

/// 1-based line and column (in characters) of a byte offset.
pub(crate) fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before
        .rsplit('\n')
        .next()
        .map_or(0, |tail| tail.chars().count())
        + 1;
    (line, column)
}
