//! The command-line face of a ginkgo program, exercised on the real `hello` example as a child
//! process: `config`, `config --template`, `check` (with a typo, a type error and a syntax
//! error), `run`, and SIGHUP reloads with a good and a broken file.

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use ginkgo_api::signal::Signal;
use ginkgo_tests::process::{Running, dir, file, hello};

fn run(args: &[&str]) -> Output {
    Command::new(hello())
        .args(args)
        .env_remove("HELLO_HELLO__MESSAGE")
        .output()
        .expect("run hello")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn config_lists_every_setting_with_value_and_source() {
    let path = file("[hello]\nrate_per_minute = 30\n");
    let out = run(&[
        "-c",
        path.to_str().expect("utf-8"),
        "-s",
        "hello.message=Hi",
        "config",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let listing = text(&out.stdout);
    assert!(listing.contains(
        "hello.message = \"Hi\"\n    type: String    default: \"Hello World\"    source: command line --set\n    The message to log.\n"
    ), "{listing}");
    assert!(listing.contains(&format!(
        "hello.rate_per_minute = 30\n    type: u32    default: 60    source: {}:2:19\n    How many times a minute to log it.\n",
        path.display()
    )), "{listing}");
    assert!(listing.contains("loglevel = \"info\""), "{listing}");
    // File modes in octal, as umask(1) writes them.
    assert!(
        listing.contains("umask = \"0o027\"\n    type: FileMode    default: \"0o027\""),
        "{listing}"
    );
    let octal = run(&["-s", "umask=077", "check"]);
    assert_eq!(octal.status.code(), Some(0), "{}", text(&octal.stderr));
    let too_wide = run(&["-s", "umask=1777", "check"]);
    assert_eq!(too_wide.status.code(), Some(78));
    assert!(
        text(&too_wide.stderr).contains("umask: must be at most 0o777, got 0o1777"),
        "{}",
        text(&too_wide.stderr)
    );
    // An integer would be read as decimal: refused, saying how to write it.
    let integer = file("umask = 22\n");
    let refused = run(&["-c", integer.to_str().expect("utf-8"), "check"]);
    assert_eq!(refused.status.code(), Some(78));
    assert!(
        text(&refused.stderr).contains("write a file mode as octal text"),
        "{}",
        text(&refused.stderr)
    );
}

#[test]
fn template_is_commented_and_loads_back() {
    let out = run(&["config", "--template"]);
    assert!(out.status.success());
    let template = text(&out.stdout);
    assert!(
        template.contains(
            "[hello]\n# The message to log.\n# type: String\nmessage = \"Hello World\"\n"
        ),
        "{template}"
    );
    let path = file(&template);
    let check = run(&["-c", path.to_str().expect("utf-8"), "check"]);
    assert_eq!(check.status.code(), Some(0), "{}", text(&check.stderr));
    let listed = run(&["-c", path.to_str().expect("utf-8"), "config"]);
    let defaults = run(&["config"]);
    let values = |out: &Output| -> Vec<String> {
        text(&out.stdout)
            .lines()
            .filter(|l| !l.starts_with(' '))
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(
        values(&listed),
        values(&defaults),
        "the template holds the defaults"
    );
}

#[test]
fn check_reports_typo_type_error_and_syntax_error_with_exit_78() {
    let typo = file("[hello]\nmesage = \"hi\"\n");
    let out = run(&["-c", typo.to_str().expect("utf-8"), "check"]);
    assert_eq!(out.status.code(), Some(78));
    assert_eq!(
        text(&out.stderr),
        format!(
            "hello: configuration error:\n{}:2:1: unknown setting hello.mesage (did you mean hello.message?)\n",
            typo.display()
        )
    );

    let wrong_type = file("[hello]\nrate_per_minute = \"fast\"\n");
    let out = run(&["-c", wrong_type.to_str().expect("utf-8"), "check"]);
    assert_eq!(out.status.code(), Some(78));
    assert!(
        text(&out.stderr).contains(&format!(
            "{}:2:19: hello.rate_per_minute: expected u32, found string \"fast\"",
            wrong_type.display()
        )),
        "{}",
        text(&out.stderr)
    );

    let broken = file("[hello\nmessage = 1\n");
    let out = run(&["-c", broken.to_str().expect("utf-8"), "check"]);
    assert_eq!(out.status.code(), Some(78));
    assert!(
        text(&out.stderr).contains(&format!("{}:1:7: invalid TOML: ", broken.display())),
        "{}",
        text(&out.stderr)
    );

    let invalid = file("[hello]\nrate_per_minute = 0\n");
    let out = run(&["-c", invalid.to_str().expect("utf-8"), "check"]);
    assert_eq!(out.status.code(), Some(78));
    assert!(text(&out.stderr).contains("hello.rate_per_minute: must be at least 1"));

    let good = file("[hello]\nmessage = \"ok\"\n");
    let out = run(&["-c", good.to_str().expect("utf-8"), "check"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        text(&out.stdout),
        format!("hello: configuration in {} is valid\n", good.display())
    );
    let out = run(&["--set", "nonsense"]);
    assert_eq!(out.status.code(), Some(78));
}

#[test]
fn run_logs_at_the_rate_and_stops_on_sigterm() {
    let rundir = dir();
    let running = Running::start(
        &hello(),
        &[
            "-s",
            "hello.rate_per_minute=1200",
            "-s",
            &format!("rundir={}", rundir.path().display()),
        ],
        &[("HELLO_HELLO__MESSAGE", "from the environment")],
    );
    running.expect_line("ready");
    let first = Instant::now();
    for _ in 0..3 {
        running.expect_line("from the environment");
    }
    assert!(first.elapsed() < Duration::from_secs(10));
    running.signal(Signal::Term);
    running.expect_line("stopping");
    assert!(running.wait().success(), "a clean stop exits 0");
}

#[test]
fn sighup_reloads_a_good_file_and_rejects_a_broken_one() {
    let path = file("[hello]\nmessage = \"first\"\nrate_per_minute = 1200\n");
    let rundir = dir();
    let running = Running::start(
        &hello(),
        &[
            "-c",
            path.to_str().expect("utf-8"),
            "-s",
            &format!("rundir={}", rundir.path().display()),
        ],
        &[],
    );
    running.expect_line("first");

    std::fs::write(
        &path,
        "[hello]\nmessage = \"second\"\nrate_per_minute = 1200\n",
    )
    .expect("edit");
    running.signal(Signal::Hup);
    running.expect_line("configuration reloaded");
    running.expect_line("second");

    std::fs::write(
        &path,
        "[hello]\nmessage = \"third\"\nrate_per_minute = \"fast\"\n",
    )
    .expect("break");
    running.signal(Signal::Hup);
    let rejected = running.expect_line("configuration rejected");
    assert!(
        rejected.contains("expected u32, found string"),
        "{rejected}"
    );
    // The old configuration stays in force, whole: still "second", never "third".
    for _ in 0..3 {
        let line = running.expect_line("INFO");
        assert!(!line.contains("third"), "half-applied: {line}");
    }
    running.expect_line("second");
    running.signal(Signal::Int);
    assert!(running.wait().success());
}

#[test]
fn runner_settings_are_typed() {
    let out = run(&["-s", "logformat=xml", "check"]);
    assert_eq!(out.status.code(), Some(78));
    assert!(
        text(&out.stderr)
            .contains("command line --set: logformat: expected LogFormat, found string \"xml\""),
        "{}",
        text(&out.stderr)
    );
    let out = run(&["-s", "stop_timeout=soon", "check"]);
    assert_eq!(out.status.code(), Some(78), "{}", text(&out.stderr));
    // A path that looks like a number is a path.
    let out = run(&["-s", "rundir=2026", "-s", "logformat=json", "config"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let listing = text(&out.stdout);
    assert!(listing.contains("rundir = \"2026\""), "{listing}");
    assert!(listing.contains("logformat = \"json\""), "{listing}");
}
