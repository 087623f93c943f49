//! Settings: layering and provenance, every class of error with its message, reload, forced
//! values, the template, and a property test that no input panics the loader.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use ginkgo_config::{Config, ConfigError, Problem, Source};
use ginkgo_macros::Settings;
use serde::{Deserialize, Serialize};
use tempfile::TempPath;

/// Settings of the number server.
#[derive(Settings, Serialize, Deserialize, Debug, PartialEq)]
#[settings(group = "numbers", crate = ginkgo_config)]
struct Numbers {
    /// How many numbers to send each minute.
    #[setting(default = 60, validate = positive)]
    rate_per_minute: u32,
    /// Where to listen.
    #[setting(default = "127.0.0.1:7777")]
    bind: String,
    /// Labels attached to each number.
    #[setting(default = vec!["a".to_owned()])]
    tags: Vec<String>,
    /// An optional name; unset by default.
    label: Option<String>,
}

fn positive(n: &u32) -> Result<(), String> {
    if *n >= 1 {
        Ok(())
    } else {
        Err(format!("must be at least 1, got {n}"))
    }
}

/// Top-level settings.
#[derive(Settings, Serialize, Deserialize, Debug, PartialEq)]
#[settings(crate = ginkgo_config)]
struct Top {
    /// Print more.
    #[setting(default = false)]
    verbose: bool,
}

/// A nested group.
#[derive(Settings, Serialize, Deserialize, Debug, PartialEq)]
#[settings(group = "deep.inner", crate = ginkgo_config)]
struct Deep {
    /// A ratio.
    #[setting(default = 1.5)]
    ratio: f64,
}

/// A temporary file holding `text`, removed when the returned path is dropped.
fn file(text: &str) -> TempPath {
    let mut file = tempfile::Builder::new()
        .prefix("ginkgo-config-")
        .suffix(".toml")
        .tempfile()
        .expect("create config file");
    file.write_all(text.as_bytes()).expect("write config file");
    file.into_temp_path()
}

fn builder() -> ginkgo_config::ConfigBuilder {
    Config::builder("testprog").no_env()
}

fn messages(err: &ConfigError) -> Vec<String> {
    err.problems().iter().map(ToString::to_string).collect()
}

#[test]
fn defaults_when_nothing_is_given() {
    let config = builder().load().expect("load");
    let numbers = config.get::<Numbers>().expect("numbers").get();
    assert_eq!(
        *numbers,
        Numbers {
            rate_per_minute: 60,
            bind: "127.0.0.1:7777".into(),
            tags: vec!["a".into()],
            label: None,
        }
    );
    assert_eq!(
        config.value("numbers.rate_per_minute"),
        Some((toml::Value::Integer(60), Source::Default))
    );
    assert_eq!(
        config.value("numbers.label"),
        None,
        "an unset option has no value"
    );
    assert_eq!(config.env_prefix(), "TESTPROG_");
}

#[test]
fn layers_override_in_order_and_remember_their_source() {
    let path = file("verbose = true\n[numbers]\nrate_per_minute = 10\nbind = \"0.0.0.0:1\"\n");
    let shown = path.display().to_string();
    let env = vec![
        (
            "TESTPROG_NUMBERS__RATE_PER_MINUTE".to_owned(),
            "20".to_owned(),
        ),
        (
            "TESTPROG_NUMBERS__TAGS".to_owned(),
            "[\"x\", \"y\"]".to_owned(),
        ),
        ("TESTPROG_NUMBERS__LABEL".to_owned(), "from env".to_owned()),
        ("OTHER_NUMBERS__RATE_PER_MINUTE".to_owned(), "99".to_owned()),
    ];
    let config = Config::builder("testprog")
        .file(&path)
        .env_vars(env)
        .set("numbers.rate_per_minute=30")
        .load()
        .expect("load");
    let numbers = config.get::<Numbers>().expect("numbers");
    assert_eq!(
        numbers.get().rate_per_minute,
        30,
        "command line beats environment"
    );
    assert_eq!(numbers.get().bind, "0.0.0.0:1", "file beats default");
    assert_eq!(
        numbers.get().tags,
        ["x", "y"],
        "environment values parse as TOML"
    );
    assert_eq!(
        numbers.get().label.as_deref(),
        Some("from env"),
        "text for strings"
    );
    assert!(config.get::<Top>().expect("top").get().verbose);

    let source = |p: &str| config.value(p).expect("a value").1;
    assert_eq!(source("numbers.rate_per_minute"), Source::CommandLine);
    assert_eq!(
        source("numbers.tags"),
        Source::Env {
            var: "TESTPROG_NUMBERS__TAGS".into()
        }
    );
    assert_eq!(source("numbers.bind").to_string(), format!("{shown}:4:8"));
    assert_eq!(source("verbose").to_string(), format!("{shown}:1:11"));
    assert_eq!(source("deep.inner.ratio"), Source::Default);

    config.force("numbers.rate_per_minute", 40).expect("force");
    assert_eq!(numbers.get().rate_per_minute, 40, "forced beats everything");
    assert_eq!(source("numbers.rate_per_minute"), Source::Forced);
    let entry = config
        .entries()
        .into_iter()
        .find(|e| e.info.path == "numbers.rate_per_minute")
        .expect("listed");
    assert_eq!(entry.info.type_name, "u32");
    assert_eq!(entry.info.help, "How many numbers to send each minute.");
    assert_eq!(entry.info.default, Some(toml::Value::Integer(60)));
    assert_eq!(entry.value, Some(toml::Value::Integer(40)));
}

#[test]
fn syntax_error_names_file_line_and_column() {
    let path = file("[numbers]\nrate_per_minute = = 5\n");
    let err = builder().file(&path).load().expect_err("bad syntax");
    let shown = path.display().to_string();
    match &err.problems()[0] {
        Problem::Syntax {
            file, line, column, ..
        } => assert_eq!((file.as_str(), *line, *column), (shown.as_str(), 2, 19)),
        other => panic!("expected a syntax error, got {other:?}"),
    }
    assert!(
        err.to_string()
            .starts_with(&format!("{shown}:2:19: invalid TOML: ")),
        "{err}"
    );
}

#[test]
fn type_error_names_place_path_and_expected_type() {
    let path = file("[numbers]\nrate_per_minute = \"fast\"\n");
    let err = builder().file(&path).load().expect_err("wrong type");
    assert_eq!(
        messages(&err),
        [format!(
            "{}:2:19: numbers.rate_per_minute: expected u32, found string \"fast\"",
            path.display()
        )]
    );
    let err = builder()
        .set("numbers.tags=5")
        .load()
        .expect_err("wrong type");
    assert_eq!(
        messages(&err),
        ["command line --set: numbers.tags: expected Vec<String>, found integer 5"]
    );
    let path = file("numbers = 5\n");
    let err = builder()
        .file(&path)
        .load()
        .expect_err("group given a value");
    assert_eq!(
        messages(&err),
        [format!(
            "{}:1:11: numbers: expected a table (it is a group of settings), found integer 5",
            path.display()
        )]
    );
}

#[test]
fn unknown_keys_are_errors_with_a_suggestion() {
    let path = file("[numbers]\nrate_per_minut = 5\n[nubmers]\nbind = \"x\"\n[zzz]\nq = 1\n");
    let err = builder().file(&path).load().expect_err("typos");
    let shown = path.display();
    assert_eq!(
        messages(&err),
        [
            format!(
                "{shown}:2:1: unknown setting numbers.rate_per_minut (did you mean numbers.rate_per_minute?)"
            ),
            format!("{shown}:3:2: unknown setting nubmers (did you mean numbers?)"),
            format!("{shown}:5:2: unknown setting zzz (`config` lists every setting)"),
        ]
    );
    let err = Config::builder("testprog")
        .env_vars([("TESTPROG_NUMBERS__BIDN".to_owned(), "x".to_owned())])
        .load()
        .expect_err("env typo");
    assert_eq!(
        messages(&err),
        [
            "environment TESTPROG_NUMBERS__BIDN: unknown setting numbers.bidn (did you mean numbers.bind?)"
        ]
    );
}

#[test]
fn validators_report_path_and_reason() {
    let path = file("[numbers]\nrate_per_minute = 0\n");
    let err = builder().file(&path).load().expect_err("invalid");
    assert_eq!(
        messages(&err),
        [format!(
            "{}:2:19: numbers.rate_per_minute: must be at least 1, got 0",
            path.display()
        )]
    );
}

#[test]
fn every_problem_is_reported_at_once() {
    let path = file("verbose = \"yes\"\n[numbers]\nrate_per_minute = 0\nbogus = 1\n");
    let err = builder()
        .file(&path)
        .set("no-equals-sign")
        .load()
        .expect_err("several problems");
    assert_eq!(err.problems().len(), 4, "{err}");
    assert!(
        err.to_string()
            .contains("--set \"no-equals-sign\": expected PATH=VALUE")
    );
}

#[test]
fn unreadable_file_is_an_error() {
    // A fresh directory holds nothing, so the file is surely missing.
    let dir = tempfile::Builder::new()
        .prefix("ginkgo-config-")
        .tempdir()
        .expect("create directory");
    let missing = dir.path().join("no-such-config.toml");
    let err = builder().file(&missing).load().expect_err("missing file");
    assert!(
        err.to_string()
            .starts_with(&format!("cannot read config file {}: ", missing.display())),
        "{err}"
    );
}

#[test]
fn nested_groups_are_tables() {
    let path = file("[deep.inner]\nratio = 2.5\n");
    let config = builder().file(&path).load().expect("load");
    assert_eq!(config.get::<Deep>().expect("deep").get().ratio, 2.5);
}

#[test]
fn reload_applies_a_valid_file_and_notifies() {
    let path = file("[numbers]\nrate_per_minute = 10\n");
    let config = builder().file(&path).load().expect("load");
    let mut numbers = config.get::<Numbers>().expect("numbers");
    let mut top = config.get::<Top>().expect("top");
    std::fs::write(&path, "[numbers]\nrate_per_minute = 11\n").expect("rewrite");
    let changed = config.reload().expect("reload");
    assert_eq!(changed, ["numbers.rate_per_minute"]);
    assert_eq!(numbers.get().rate_per_minute, 11);
    let seen = futures_lite::future::block_on(numbers.changed());
    assert_eq!(seen.rate_per_minute, 11);
    // Top did not change, so its `changed` does not fire.
    let waited = futures_lite::future::block_on(futures_lite::future::or(
        async { Some(top.changed().await) },
        async {
            std::thread::sleep(Duration::from_millis(20));
            None
        },
    ));
    assert!(waited.is_none());
}

/// The file text in force: what was read, kept through a rejected reload; a configuration
/// can start on a text given in place of the file (a worker on its master's), naming the
/// file, and reloads read the file.
#[test]
fn the_file_text_in_force_survives_a_rejected_reload_and_can_be_given() {
    let good = "[numbers]\nrate_per_minute = 10\n";
    let path = file(good);
    let config = builder().file(&path).load().expect("load");
    assert_eq!(config.file_text().as_deref(), Some(good));
    std::fs::write(&path, "[numbers]\nrate_per_minute = 0\n").expect("break");
    assert!(config.reload().is_err());
    assert_eq!(config.file_text().as_deref(), Some(good));

    // The file is broken now; the text in force is given instead, for the first load.
    let given = builder()
        .file_text(&path, config.file_text().expect("a text"))
        .load()
        .expect("loads the text given, not the file");
    let numbers = given.get::<Numbers>().expect("numbers");
    assert_eq!(numbers.get().rate_per_minute, 10);
    let (_, source) = given.value("numbers.rate_per_minute").expect("set");
    assert_eq!(source.to_string(), format!("{}:2:19", path.display()));
    // A reload reads the file: still broken, rejected, the given text stays in force.
    assert!(given.reload().is_err());
    assert_eq!(numbers.get().rate_per_minute, 10);
    std::fs::write(&path, "[numbers]\nrate_per_minute = 12\n").expect("fix");
    given.reload().expect("the fixed file");
    assert_eq!(numbers.get().rate_per_minute, 12);
}

#[test]
fn failed_reload_keeps_every_old_value() {
    let path = file("verbose = true\n[numbers]\nrate_per_minute = 10\nbind = \"a:1\"\n");
    let config = builder().file(&path).load().expect("load");
    let numbers = config.get::<Numbers>().expect("numbers");
    let before = config.entries();
    for broken in [
        "verbose = false\n[numbers]\nrate_per_minute = \"x\"\n",
        "verbose = false\n[numbers\n",
        "verbose = false\n[numbers]\nrate_per_minute = 0\n",
        "verbose = false\n[numbers]\nrate = 12\n",
    ] {
        std::fs::write(&path, broken).expect("rewrite");
        let err = config.reload().expect_err("rejected");
        assert!(!err.problems().is_empty());
        assert_eq!(config.entries(), before, "nothing applied after: {err}");
        assert_eq!(numbers.get().rate_per_minute, 10);
        assert!(config.get::<Top>().expect("top").get().verbose);
    }
    std::fs::write(&path, "[numbers]\nrate_per_minute = 12\n").expect("fix");
    config.reload().expect("a fixed file reloads");
    assert_eq!(numbers.get().rate_per_minute, 12);
}

#[test]
fn forced_and_command_line_values_survive_reload() {
    let path = file("[numbers]\nrate_per_minute = 10\nbind = \"file:1\"\n");
    let config = builder()
        .file(&path)
        .set("numbers.bind=cli:2")
        .load()
        .expect("load");
    config.force("numbers.rate_per_minute", 99).expect("force");
    std::fs::write(
        &path,
        "[numbers]\nrate_per_minute = 15\nbind = \"file:3\"\n",
    )
    .expect("rewrite");
    config.reload().expect("reload");
    let numbers = config.get::<Numbers>().expect("numbers").get();
    assert_eq!(numbers.rate_per_minute, 99);
    assert_eq!(numbers.bind, "cli:2");
    let err = config
        .force("numbers.rate_per_minute", 0)
        .expect_err("validated");
    assert!(err.to_string().contains("must be at least 1"), "{err}");
    assert_eq!(
        config
            .get::<Numbers>()
            .expect("numbers")
            .get()
            .rate_per_minute,
        99
    );
    let err = config.force("numbers.nope", 1).expect_err("unknown");
    assert!(
        err.to_string().contains("unknown setting numbers.nope"),
        "{err}"
    );
}

#[test]
fn template_loads_back_to_the_defaults() {
    let text = ginkgo_config::template();
    assert!(text.contains("[numbers]\n# How many numbers to send each minute.\n# type: u32\nrate_per_minute = 60\n"), "{text}");
    assert!(text.contains("[deep.inner]"), "{text}");
    assert!(text.contains("# label =   (unset by default)"), "{text}");
    let path = file(&text);
    let from_template = builder().file(&path).load().expect("the template loads");
    let defaults = builder().load().expect("defaults");
    let values = |c: &Config| -> Vec<_> {
        c.entries()
            .into_iter()
            .map(|e| (e.info.path, e.value))
            .collect()
    };
    assert_eq!(values(&from_template), values(&defaults));
    assert!(
        from_template
            .entries()
            .iter()
            .filter(|e| e.value.is_some())
            .all(|e| matches!(e.source, Source::File { .. }))
    );
}

mod property {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        /// Arbitrary file contents, environment values and assignments give an error or a
        /// configuration, never a panic.
        #[test]
        fn loader_never_panics(
            text in ".{0,200}",
            toml_like in "(\\[[a-z.]{0,12}\\]\n)?([a-z_.]{0,20} = [\"0-9a-z\\[\\]{}.,= -]{0,16}\n){0,5}",
            env_value in ".{0,30}",
            assignment in ".{0,40}",
        ) {
            for contents in [&text, &toml_like] {
                let path = file(contents);
                let _ = Config::builder("testprog")
                    .file(&path)
                    .env_vars([("TESTPROG_NUMBERS__RATE_PER_MINUTE".to_owned(), env_value.clone())])
                    .set(assignment.clone())
                    .load();
            }
        }
    }
}

/// A name, under another name: the loader asks the type, not its name, how to read text.
type Name = String;

/// A path, wrapped.
#[derive(Serialize, Deserialize, Debug, PartialEq, Default)]
struct Place(PathBuf);

/// The log format, as an enum.
#[derive(Serialize, Deserialize, Debug, PartialEq, Default)]
#[serde(rename_all = "lowercase")]
enum Format {
    #[default]
    Text,
    Json,
}

/// Settings whose types are aliases, newtypes and enums.
#[derive(Settings, Serialize, Deserialize, Debug, PartialEq)]
#[settings(group = "aliases", crate = ginkgo_config)]
struct Aliases {
    /// A name that looks like a number on the command line.
    name: Name,
    /// A path that looks like a boolean.
    place: Place,
    /// An optional alias.
    nickname: Option<Name>,
    /// An enum from plain text.
    format: Format,
    /// A number stays a number.
    #[setting(default = 1)]
    count: u32,
}

#[test]
fn text_values_follow_the_type_not_its_name() {
    let config = builder()
        .set("aliases.name=123")
        .set("aliases.place=true")
        .set("aliases.nickname=4.5")
        .set("aliases.format=json")
        .set("aliases.count=7")
        .load()
        .expect("every value has its setting's type");
    let aliases = config.get::<Aliases>().expect("aliases").get();
    assert_eq!(aliases.name, "123");
    assert_eq!(aliases.place, Place(PathBuf::from("true")));
    assert_eq!(aliases.nickname.as_deref(), Some("4.5"));
    assert_eq!(aliases.format, Format::Json);
    assert_eq!(aliases.count, 7);

    let err = builder()
        .set("aliases.count=many")
        .set("aliases.format=yaml")
        .load()
        .expect_err("neither is of its type");
    let found = messages(&err);
    assert!(
        found
            .iter()
            .any(|m| m.contains("aliases.count: expected u32")),
        "{found:?}"
    );
    assert!(
        found.iter().any(|m| m.contains("aliases.format")),
        "{found:?}"
    );
}

#[test]
fn an_unreadable_file_keeps_its_io_error_as_the_source() {
    let missing = std::env::temp_dir().join("ginkgo-config-no-such-dir/none.toml");
    let err = builder().file(&missing).load().expect_err("no such file");
    let source = std::error::Error::source(&err).expect("the first problem");
    let io = std::error::Error::source(source)
        .and_then(|io| io.downcast_ref::<std::io::Error>())
        .expect("the io::Error under the problem");
    assert_eq!(io.kind(), std::io::ErrorKind::NotFound);
    assert!(matches!(&err.problems()[0], Problem::Io { file, .. } if file.contains("none.toml")));
}
