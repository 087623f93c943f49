//! A real systemd for the unit tests: the system's own `systemd` binary booted as PID 1 of a
//! PID and mount namespace of the test's, with its own `/run`, its own unit directory and its
//! own cgroup, so that `systemctl start`, `reload`, `stop`, `kill`, the watchdog, the file
//! descriptor store and `MAINPID=` are systemd's, not a stand-in's.
//!
//! The namespace shares the machine's file systems and network, so the booted systemd starts
//! nothing but what a test installs: each installed unit gets `DefaultDependencies=no` (no
//! `sysinit.target`, which would run `systemd-tmpfiles` on the machine's `/tmp` and more), and
//! the units of the boot itself are masked. Dropping [`Systemd`] kills the namespace (every
//! process in it) and removes its cgroups.
//!
//! Needs root, `systemd`, and util-linux's `unshare` and `nsenter`; without them [`Systemd::boot`]
//! fails saying what is missing.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// Where Debian and most distributions keep systemd itself.
const SYSTEMD: [&str; 2] = ["/lib/systemd/systemd", "/usr/lib/systemd/systemd"];

/// The (empty) target the namespace's systemd boots into.
const TARGET: &str = "ginkgo-test.target";

/// The units a boot pulls in, masked: none of them may touch the machine.
const MASKED: &[&str] = &[
    "sysinit.target",
    "basic.target",
    "sockets.target",
    "local-fs.target",
    "swap.target",
    "timers.target",
    "paths.target",
    "tmp.mount",
    "dev-hugepages.mount",
    "dev-mqueue.mount",
    "ldconfig.service",
    "systemd-journald.service",
    "systemd-journald.socket",
    "systemd-journald-dev-log.socket",
    "systemd-journald-audit.socket",
    "systemd-journal-flush.service",
    "systemd-random-seed.service",
    "systemd-sysctl.service",
    "systemd-sysusers.service",
    "systemd-tmpfiles-clean.service",
    "systemd-tmpfiles-clean.timer",
    "systemd-tmpfiles-setup.service",
    "systemd-tmpfiles-setup-dev.service",
    "systemd-tmpfiles-setup-dev-early.service",
    "systemd-udevd.service",
    "systemd-update-utmp.service",
];

/// Moves the shell into a cgroup of its own (in each hierarchy systemd tracks processes in),
/// gives the namespace its own `/run` and unit directory, and becomes systemd.
const BOOT: &str = r#"set -e
name=$1 units=$2 systemd=$3
for dir in /sys/fs/cgroup/systemd /sys/fs/cgroup/unified /sys/fs/cgroup; do
    if [ "$dir" != /sys/fs/cgroup ] || [ -f /sys/fs/cgroup/cgroup.controllers ]; then
        if [ -d "$dir" ]; then mkdir "$dir/$name" && echo $$ > "$dir/$name/cgroup.procs"; fi
    fi
done
mount --make-rprivate /
mount -t tmpfs tmpfs /run
mkdir -p /run/systemd/system
mount --bind "$units" /etc/systemd/system
if [ -n "$4" ]; then
    # Another systemd, unpacked in $4: it and its libraries over the machine's, here only.
    mount --bind "$4/lib/systemd" /usr/lib/systemd
    for lib in "$4"/usr/lib/*/systemd; do mount --bind "$lib" "${lib#"$4"}"; done
    mount --bind "$4/bin/systemctl" /usr/bin/systemctl
    systemd=/usr/lib/systemd/systemd
fi
exec env container=ginkgo-test "$systemd" --system --unit=ginkgo-test.target --log-target=null
"#;

/// Names the directory where `tests/tools/systemd-newer.sh` unpacked a systemd of version 253
/// or later, for [`Systemd::boot_newer`].
pub const NEWER: &str = "GINKGO_TEST_SYSTEMD_NEWER";

/// A systemd booted as PID 1 of a namespace of its own (see the module docs).
pub struct Systemd {
    unshare: Child,
    /// The namespace's PID 1, as this process sees it.
    init: u32,
    /// The name of its cgroup, in each hierarchy.
    cgroup: String,
    units: TempDir,
    /// The version of the systemd booted ("252").
    pub version: u32,
}

impl Systemd {
    /// Boots the machine's systemd, and waits until it runs.
    pub fn boot() -> Self {
        Self::boot_from(None)
    }

    /// Boots the systemd unpacked where `$GINKGO_TEST_SYSTEMD_NEWER` says (253 or later, for
    /// the units the machine's 252 cannot run), and waits until it runs.
    pub fn boot_newer() -> Self {
        let root = std::env::var_os(NEWER)
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                panic!(
                    "{NEWER} is not set: tests/tools/systemd-newer.sh DIR unpacks a systemd of 253 \
                 or later there, then set {NEWER}=DIR (.ci/run does)"
                )
            });
        assert!(
            root.join("lib/systemd/systemd").exists(),
            "{NEWER}={}: no lib/systemd/systemd there (tests/tools/systemd-newer.sh unpacks one)",
            root.display()
        );
        Self::boot_from(Some(&root))
    }

    fn boot_from(root: Option<&Path>) -> Self {
        let systemd = SYSTEMD
            .iter()
            .map(Path::new)
            .find(|path| path.exists())
            .unwrap_or_else(|| {
                panic!("no systemd in {SYSTEMD:?}: apt-get install systemd (.ci/run does)")
            });
        for tool in ["unshare", "nsenter", "timeout"] {
            assert!(
                crate::process::on_path(tool).is_some(),
                "{tool} is not on PATH: apt-get install util-linux coreutils"
            );
        }
        assert!(
            rustix::process::geteuid().is_root(),
            "booting systemd in a namespace needs root (.ci/run runs as root)"
        );
        let units = crate::process::dir();
        std::fs::write(
            units.path().join(TARGET),
            "[Unit]\nDescription=ginkgo-rs tests\nDefaultDependencies=no\n",
        )
        .expect("write the target");
        for unit in MASKED {
            std::os::unix::fs::symlink("/dev/null", units.path().join(unit)).expect("mask");
        }
        static BOOTED: AtomicU32 = AtomicU32::new(0);
        let cgroup = format!(
            "ginkgo-test-{}-{}",
            std::process::id(),
            BOOTED.fetch_add(1, Ordering::Relaxed)
        );
        let unshare = Command::new("unshare")
            .args([
                "--pid",
                "--fork",
                "--mount",
                "--mount-proc",
                "sh",
                "-c",
                BOOT,
                "sh",
            ])
            .arg(&cgroup)
            .arg(units.path())
            .arg(systemd)
            .arg(root.unwrap_or(Path::new("")))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run unshare");
        let mut booting = Self {
            init: 0,
            unshare,
            cgroup,
            units,
            version: 0,
        };
        booting.init = booting.find_init();
        booting.wait_running();
        booting.version = booting.running_version();
        booting
    }

    /// The version the booted systemd reports ("252.39-1~deb12u2" gives 252).
    fn running_version(&self) -> u32 {
        let text = self.must(&["show", "--value", "-p", "Version"]);
        text.split(|c: char| !c.is_ascii_digit())
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no version in {text:?}"))
    }

    /// The namespace's PID 1: the child `unshare` forked.
    fn find_init(&mut self) -> u32 {
        let pid = self.unshare.id();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
                .unwrap_or_default();
            if let Some(init) = children
                .split_whitespace()
                .next()
                .and_then(|p| p.parse().ok())
            {
                return init;
            }
            if let Ok(Some(status)) = self.unshare.try_wait() {
                let mut err = String::new();
                if let Some(mut stderr) = self.unshare.stderr.take() {
                    let _ = std::io::Read::read_to_string(&mut stderr, &mut err);
                }
                panic!("unshare exited ({status}) before systemd ran: {err}");
            }
            assert!(Instant::now() < deadline, "unshare started no process");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn wait_running(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let out = self.systemctl(&["is-system-running"]);
            let state = String::from_utf8_lossy(&out.stdout).trim().to_owned();
            if state == "running" || state == "degraded" {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "systemd did not come up: {state:?} {}",
                String::from_utf8_lossy(&out.stderr)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `command` run inside the namespace (bounded to 60 s).
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut command = Command::new("timeout");
        command
            .args([
                "60",
                "nsenter",
                "-t",
                &self.init.to_string(),
                "-m",
                "-p",
                "--",
            ])
            .arg(program)
            .stdin(Stdio::null());
        command
    }

    /// `systemctl ARGS` against this systemd.
    pub fn systemctl(&self, args: &[&str]) -> Output {
        self.command("systemctl")
            .args(args)
            .output()
            .expect("run systemctl")
    }

    /// `systemctl ARGS`, which must succeed; what it printed.
    pub fn must(&self, args: &[&str]) -> String {
        let out = self.systemctl(args);
        assert!(
            out.status.success(),
            "systemctl {}: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The value of `unit`'s `property` (`systemctl show -p`).
    pub fn show(&self, unit: &str, property: &str) -> String {
        self.must(&["show", "--value", "-p", property, unit])
            .trim()
            .to_owned()
    }

    /// Waits (up to 20 s) until `unit`'s `property` satisfies `ok`; its value then.
    pub fn wait_for(&self, unit: &str, property: &str, ok: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let value = self.show(unit, property);
            if ok(&value) {
                return value;
            }
            assert!(
                Instant::now() < deadline,
                "{unit} {property}={value}\n{}",
                self.status(unit)
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `systemctl status UNIT`, for failure messages.
    pub fn status(&self, unit: &str) -> String {
        let out = self.systemctl(&["status", "--no-pager", "--lines=0", unit]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Installs unit `name` with `text`, and a drop-in that keeps it off the boot's
    /// dependencies and adds `service` to its `[Service]` section; reloads systemd.
    pub fn install(&self, name: &str, text: &str, service: &str) {
        std::fs::write(self.units.path().join(name), text).expect("write the unit");
        let dropins = self.units.path().join(format!("{name}.d"));
        std::fs::create_dir_all(&dropins).expect("drop-in directory");
        std::fs::write(
            dropins.join("test.conf"),
            format!("[Unit]\nDefaultDependencies=no\n[Service]\n{service}\n"),
        )
        .expect("write the drop-in");
        self.must(&["daemon-reload"]);
    }

    /// Installs unit `name` with `text` as it is (which must keep it off the boot's
    /// dependencies itself, with `DefaultDependencies=no`); reloads systemd.
    pub fn install_as_is(&self, name: &str, text: &str) {
        assert!(
            text.contains("DefaultDependencies=no"),
            "{name} would pull in the boot"
        );
        std::fs::write(self.units.path().join(name), text).expect("write the unit");
        self.must(&["daemon-reload"]);
    }

    /// The socket inodes (`socket:[N]`) process `pid` of the namespace has open.
    pub fn sockets_of(&self, pid: &str) -> Vec<String> {
        let out = self
            .command("ls")
            .args(["-l", &format!("/proc/{pid}/fd")])
            .output()
            .expect("list the descriptors");
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .filter_map(|word| word.strip_prefix("socket:[")?.strip_suffix(']'))
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for Systemd {
    fn drop(&mut self) {
        // Killing a PID namespace's init kills every process in it.
        let _ = Command::new("kill")
            .args(["-9", &self.init.to_string()])
            .status();
        let _ = self.unshare.wait();
        // Then its cgroups go, innermost first (a cgroup is removed with rmdir once empty).
        let deadline = Instant::now() + Duration::from_secs(5);
        for root in cgroup_roots(&self.cgroup) {
            while root.exists() && !remove_tree(&root) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

/// Every directory named `name` at the top of a cgroup hierarchy.
fn cgroup_roots(name: &str) -> Vec<PathBuf> {
    let base = Path::new("/sys/fs/cgroup");
    let mut roots = vec![base.join(name)];
    if let Ok(entries) = std::fs::read_dir(base) {
        roots.extend(entries.flatten().map(|entry| entry.path().join(name)));
    }
    roots.retain(|path| path.is_dir());
    roots
}

/// Removes the cgroup directory `dir` and those below it; whether it is gone.
fn remove_tree(dir: &Path) -> bool {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                remove_tree(&entry.path());
            }
        }
    }
    std::fs::remove_dir(dir).is_ok()
}
