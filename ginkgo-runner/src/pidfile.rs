//! The pid file: created without following symlinks, locked for the life of the process, so
//! two starts can never both run; stale files are recovered; removed on exit.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use rustix::fs::{FlockOperation, OFlags, flock};

/// Why the pid file could not be taken.
#[derive(Debug)]
pub enum PidfileError {
    /// Another live process holds the lock.
    Running {
        /// Its pid, if the file holds one.
        pid: Option<u32>,
        /// The pid file.
        path: PathBuf,
    },
    /// The path is a symbolic link, which is never followed.
    Symlink(PathBuf),
    /// The file could not be opened, locked or written.
    Io(PathBuf, io::Error),
}

impl std::fmt::Display for PidfileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PidfileError::Running {
                pid: Some(pid),
                path,
            } => write!(
                f,
                "already running (pid {pid}, pid file {})",
                path.display()
            ),
            PidfileError::Running { pid: None, path } => {
                write!(f, "already running (pid file {} is locked)", path.display())
            }
            PidfileError::Symlink(path) => write!(
                f,
                "pid file {} is a symbolic link; refusing to follow it (remove it if it is yours)",
                path.display()
            ),
            PidfileError::Io(path, err) => write!(f, "pid file {}: {err}", path.display()),
        }
    }
}

impl std::error::Error for PidfileError {}

fn open(path: &Path, create: bool) -> Result<File, PidfileError> {
    let mut options = OpenOptions::new();
    options
        .read(true)
        .write(create)
        .create(create)
        .mode(0o644)
        .custom_flags((OFlags::NOFOLLOW | OFlags::CLOEXEC).bits() as i32);
    options.open(path).map_err(|err| {
        if err.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) {
            PidfileError::Symlink(path.to_owned())
        } else {
            PidfileError::Io(path.to_owned(), err)
        }
    })
}

fn read_pid(file: &mut File) -> Option<u32> {
    let mut text = String::new();
    file.rewind().ok()?;
    file.read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

/// A held pid file. Dropping it removes the file (while still locked) and releases the lock,
/// unless it was [handed on](Pidfile::hand_on) to the next process of an upgrade.
#[derive(Debug)]
pub struct Pidfile {
    file: File,
    path: PathBuf,
    /// Whether this process removes the file and releases the lock when done with it.
    owned: bool,
}

impl Pidfile {
    /// Creates or takes over `path`, locks it, and writes this process's pid.
    ///
    /// # Errors
    ///
    /// [`PidfileError::Running`] if a live process holds it, [`PidfileError::Symlink`] if the
    /// path is a symlink, [`PidfileError::Io`] otherwise.
    pub fn acquire(path: &Path) -> Result<Self, PidfileError> {
        let mut file = open(path, true)?;
        match flock(&file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {}
            Err(rustix::io::Errno::WOULDBLOCK) => {
                return Err(PidfileError::Running {
                    pid: read_pid(&mut file),
                    path: path.to_owned(),
                });
            }
            Err(err) => return Err(PidfileError::Io(path.to_owned(), err.into())),
        }
        if let Some(stale) = read_pid(&mut file) {
            tracing::warn!(
                pidfile = %path.display(),
                stale,
                "recovered a stale pid file (no live process held it)"
            );
        }
        write_pid(&mut file).map_err(|err| PidfileError::Io(path.to_owned(), err))?;
        Ok(Self {
            file,
            path: path.to_owned(),
            owned: true,
        })
    }

    /// The pid file handed over by the process this one succeeds in an upgrade: the same open
    /// file, so the lock it holds is this process's too. It still names the old process until
    /// [`Pidfile::take_over`].
    pub fn adopt(file: File, path: &Path) -> Self {
        Self {
            file,
            path: path.to_owned(),
            owned: false,
        }
    }

    /// Writes this process's pid into the adopted file, and takes over removing it at exit.
    ///
    /// # Errors
    ///
    /// Fails if the file cannot be written.
    pub fn take_over(&mut self) -> Result<(), PidfileError> {
        write_pid(&mut self.file).map_err(|err| PidfileError::Io(self.path.clone(), err))?;
        self.owned = true;
        Ok(())
    }

    /// A duplicate of the open, locked file, to hand to the next process of an upgrade.
    ///
    /// # Errors
    ///
    /// Fails if the descriptor cannot be duplicated.
    pub fn duplicate(&self) -> std::io::Result<File> {
        self.file.try_clone()
    }

    /// From now on the file and its lock belong to the next process: dropping this leaves both.
    pub fn hand_on(&mut self) {
        self.owned = false;
    }

    /// The pid file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Pidfile {
    fn drop(&mut self) {
        // The lock belongs to the open file, which the other process holds too: closing ours
        // (without unlocking) leaves it to them.
        if !self.owned {
            return;
        }
        // Unlinking may fail after privileges were dropped; the released lock is what counts,
        // and a leftover file is recognised as stale by the next start.
        if let Err(err) = std::fs::remove_file(&self.path) {
            tracing::warn!(pidfile = %self.path.display(), %err, "could not remove the pid file");
        }
        let _ = flock(&self.file, FlockOperation::Unlock);
    }
}

/// Writes this process's pid as the whole content of `file`. The lock is held, so nobody else
/// writes; the pid goes in with one write(2), so a reader sees either nothing yet or the whole
/// pid.
fn write_pid(file: &mut File) -> io::Result<()> {
    let line = format!("{}\n", std::process::id());
    // 0644 whatever the umask: anyone may read which process runs.
    file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644))?;
    file.set_len(0)?;
    file.rewind()?;
    file.write_all(line.as_bytes())?;
    file.sync_all()
}

/// The pid of the live process holding `path`, or `None` when nobody runs (no file, or a stale
/// one).
///
/// # Errors
///
/// [`PidfileError::Symlink`] for a symlink; [`PidfileError::Io`] if it cannot be read.
pub fn running(path: &Path) -> Result<Option<u32>, PidfileError> {
    let mut file = match open(path, false) {
        Ok(file) => file,
        Err(PidfileError::Io(_, err)) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(err),
    };
    match flock(&file, FlockOperation::NonBlockingLockShared) {
        Ok(()) => {
            let _ = flock(&file, FlockOperation::Unlock);
            Ok(None)
        }
        Err(rustix::io::Errno::WOULDBLOCK) => {
            // The holder writes its pid right after locking; give it a moment.
            for _ in 0..50 {
                if let Some(pid) = read_pid(&mut file) {
                    return Ok(Some(pid));
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Ok(read_pid(&mut file))
        }
        Err(err) => Err(PidfileError::Io(path.to_owned(), err.into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh directory, removed with whatever a test leaves in it when dropped.
    fn temp() -> tempfile::TempDir {
        tempfile::Builder::new()
            .prefix("ginkgo-pid-")
            .tempdir()
            .expect("create directory")
    }

    #[test]
    fn acquire_writes_locks_and_removes() {
        let dir = temp();
        let path = dir.path().join("basic.pid");
        let held = Pidfile::acquire(&path).expect("acquire");
        let text = std::fs::read_to_string(&path).expect("read");
        assert_eq!(text, format!("{}\n", std::process::id()));
        // flock locks belong to the open file description: a second open in this same
        // process conflicts just as another process would.
        match Pidfile::acquire(&path) {
            Err(PidfileError::Running { pid, .. }) => assert_eq!(pid, Some(std::process::id())),
            other => panic!("expected Running, got {other:?}"),
        }
        assert_eq!(running(&path).expect("running"), Some(std::process::id()));
        drop(held);
        assert!(!path.exists(), "removed on drop");
        assert_eq!(running(&path).expect("running"), None);
    }

    #[test]
    fn stale_file_is_recovered() {
        let dir = temp();
        let path = dir.path().join("stale.pid");
        std::fs::write(&path, "999999\n").expect("stale file");
        assert_eq!(
            running(&path).expect("running"),
            None,
            "nobody holds the lock"
        );
        let held = Pidfile::acquire(&path).expect("a stale file is taken over");
        assert_eq!(
            std::fs::read_to_string(&path).expect("read"),
            format!("{}\n", std::process::id())
        );
        drop(held);
    }

    #[test]
    fn symlink_is_refused() {
        let dir = temp();
        let target = dir.path().join("target");
        let link = dir.path().join("link.pid");
        std::fs::write(&target, "precious").expect("target");
        std::os::unix::fs::symlink(&target, &link).expect("symlink");
        let err = Pidfile::acquire(&link).expect_err("symlink refused");
        assert!(matches!(err, PidfileError::Symlink(_)), "{err}");
        assert!(err.to_string().contains("symbolic link"));
        assert_eq!(std::fs::read_to_string(&target).expect("read"), "precious");
        assert!(matches!(running(&link), Err(PidfileError::Symlink(_))));
    }
}
