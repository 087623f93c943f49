//! The systemd units shipped beside the `hello` example: their commands, run as written (with
//! the installed paths swapped for the built program and temporary files), start and reload a
//! real `hello`; and `systemd-analyze verify` accepts each unit for the systemd it is meant for.

use std::path::{Path, PathBuf};
use std::process::Command;

use ginkgo_api::signal::Signal;
use ginkgo_tests::process::{Running, hello};
use tempfile::TempDir;

/// For systemd 253 and later.
const NOTIFY_RELOAD: &str = "hello.service";
/// For older systemd, such as Debian 12's 252.
const NOTIFY_EXEC_RELOAD: &str = "hello-systemd252.service";

/// Where the units install the program and its configuration, as they say in their headers.
const INSTALLED: &str = "/usr/local/bin/hello";
const CONFIG: &str = "/etc/hello.toml";
const RUNDIR: &str = "/run/hello";

fn unit(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../ginkgo/examples")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

/// The value of the uncommented `key=` line of the unit's `[Service]` section.
fn service_value(text: &str, key: &str) -> Option<String> {
    let mut in_service = false;
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            in_service = line == "[Service]";
        } else if in_service && let Some(value) = line.strip_prefix(&format!("{key}=")) {
            return Some(value.to_owned());
        }
    }
    None
}

/// A command line of the unit, made runnable here: the built program for the installed one,
/// and this test's configuration file and rundir for the system's.
struct Site {
    rundir: TempDir,
    config: PathBuf,
}

impl Site {
    fn new(config: &str) -> Self {
        let (rundir, config) = ginkgo_tests::process::rundir_with_config(config);
        Self { rundir, config }
    }

    fn command(&self, line: &str) -> Command {
        let mut words = line.split_whitespace();
        assert_eq!(
            words.next(),
            Some(INSTALLED),
            "the installed program: {line}"
        );
        let mut command = Command::new(hello());
        let rundir = format!("rundir={RUNDIR}");
        for word in words {
            command.arg(match word {
                CONFIG => self.config.display().to_string(),
                w if w == rundir => format!("rundir={}", self.rundir.path().display()),
                w => w.to_owned(),
            });
        }
        command
    }
}

const FIRST: &str = "[hello]\nmessage = \"first\"\nrate_per_minute = 1200\n";

#[test]
fn notify_reload_unit_starts_and_reloads_on_sighup() {
    let text = unit(NOTIFY_RELOAD);
    assert_eq!(
        service_value(&text, "Type").as_deref(),
        Some("notify-reload")
    );
    assert_eq!(
        service_value(&text, "ExecReload"),
        None,
        "notify-reload reloads with SIGHUP"
    );
    let start = service_value(&text, "ExecStart").expect("ExecStart");
    assert!(start.ends_with(" run"), "in the foreground: {start}");

    let site = Site::new(FIRST);
    let running = Running::spawn(site.command(&start));
    running.expect_line("first");
    std::fs::write(&site.config, FIRST.replace("first", "second")).expect("edit");
    running.signal(Signal::Hup);
    running.expect_line("configuration reloaded");
    running.expect_line("second");
    running.signal(Signal::Term);
    assert!(running.wait().success(), "a clean stop");
}

#[test]
fn notify_unit_reloads_through_its_exec_reload_command() {
    let text = unit(NOTIFY_EXEC_RELOAD);
    assert_eq!(service_value(&text, "Type").as_deref(), Some("notify"));
    let start = service_value(&text, "ExecStart").expect("ExecStart");
    assert!(start.ends_with(" run"), "in the foreground: {start}");
    let reload = service_value(&text, "ExecReload").expect("ExecReload");
    assert!(reload.ends_with(" reload"), "the runner's reload: {reload}");

    let site = Site::new(FIRST);
    let running = Running::spawn(site.command(&start));
    running.expect_line("ready");
    running.expect_line("first");

    // What `systemctl reload` runs: it must reach the program ExecStart started, and report.
    std::fs::write(&site.config, FIRST.replace("first", "second")).expect("edit");
    let reloaded = site.command(&reload).output().expect("run ExecReload");
    assert!(
        reloaded.status.success(),
        "{}",
        String::from_utf8_lossy(&reloaded.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&reloaded.stdout),
        "hello: reloaded; changed: hello.message\n"
    );
    running.expect_line("second");

    // A rejected configuration fails the reload command, so `systemctl reload` fails too.
    std::fs::write(&site.config, FIRST.replace("1200", "\"fast\"")).expect("break");
    let rejected = site.command(&reload).output().expect("run ExecReload");
    assert!(!rejected.status.success());
    assert!(
        String::from_utf8_lossy(&rejected.stderr).contains("the old one stays in force"),
        "{}",
        String::from_utf8_lossy(&rejected.stderr)
    );
    running.signal(Signal::Term);
    assert!(running.wait().success(), "a clean stop");
}

#[cfg(feature = "systemd")]
/// `systemd-analyze verify` of unit `name`, with the installed program swapped for the built one
/// (verify checks that each command's program exists): its success and what it printed.
fn verify(tool: &Path, name: &str) -> (bool, String) {
    let scratch = ginkgo_tests::process::dir();
    let path = scratch.path().join(name);
    let built = hello().display().to_string();
    std::fs::write(&path, unit(name).replace(INSTALLED, &built)).expect("copy the unit");
    let out = Command::new(tool)
        .args(["verify", "--man=no"])
        .arg(&path)
        .output()
        .expect("run systemd-analyze");
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), printed)
}

#[cfg(feature = "systemd")]
/// The version `systemd-analyze --version` reports ("systemd 252 (252.38-1~deb12u1)").
fn systemd_version(tool: &Path) -> u32 {
    let out = Command::new(tool)
        .arg("--version")
        .output()
        .expect("systemd-analyze --version");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no version in {text:?}"))
}

/// Needs systemd's tools: built with the `systemd` feature, which `.ci/run` turns on.
#[cfg(feature = "systemd")]
#[test]
fn units_pass_systemd_analyze_verify() {
    // Not a skip when the tool is missing: it fails, saying what to install.
    let tool = ginkgo_tests::process::on_path("systemd-analyze").unwrap_or_else(|| {
        panic!("systemd-analyze is not on PATH: install systemd (.ci/run does)")
    });
    let version = systemd_version(&tool);

    let (ok, printed) = verify(&tool, NOTIFY_EXEC_RELOAD);
    assert!(ok && printed.is_empty(), "systemd {version}: {printed}");

    let (ok, printed) = verify(&tool, NOTIFY_RELOAD);
    if version >= 253 {
        assert!(ok && printed.is_empty(), "systemd {version}: {printed}");
    } else {
        // What the unit's header says: this systemd does not know the type.
        assert!(
            printed.contains("notify-reload"),
            "systemd {version} should reject Type=notify-reload: {printed:?}"
        );
    }
}
