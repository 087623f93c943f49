//! Dropping privileges after the tree has started (so privileged ports are bound first):
//! optional chroot, then the supplementary groups, the group, the user, then a check that
//! root cannot be regained. Each step is the libc call, which applies to every thread.

use std::ffi::CString;
use std::path::PathBuf;

use nix::unistd::{Gid, Group, Uid, User};

/// What to drop to.
#[derive(Debug, Clone, Default)]
pub(super) struct Drop {
    /// The user to become.
    pub(super) user: Option<String>,
    /// The group to become (default: the user's primary group).
    pub(super) group: Option<String>,
    /// A directory to chroot into first.
    pub(super) chroot: Option<PathBuf>,
}

impl Drop {
    /// Whether anything is to be done.
    pub(super) fn is_needed(&self) -> bool {
        self.user.is_some() || self.group.is_some() || self.chroot.is_some()
    }

    /// Looks the user and group up, so that a name that does not exist is reported before
    /// anything starts.
    ///
    /// # Errors
    ///
    /// Names the user or group that does not exist.
    pub(super) fn resolve(&self) -> Result<Resolved, String> {
        let user = match &self.user {
            Some(name) => Some(
                User::from_name(name)
                    .map_err(|err| format!("cannot look up user {name:?}: {err}"))?
                    .ok_or_else(|| format!("user {name:?} does not exist"))?,
            ),
            None => None,
        };
        let gid = match (&self.group, &user) {
            (Some(name), _) => Some(
                Group::from_name(name)
                    .map_err(|err| format!("cannot look up group {name:?}: {err}"))?
                    .ok_or_else(|| format!("group {name:?} does not exist"))?
                    .gid,
            ),
            (None, Some(user)) => Some(user.gid),
            (None, None) => None,
        };
        Ok(Resolved {
            user,
            gid,
            chroot: self.chroot.clone(),
        })
    }
}

/// A checked privilege drop, ready to apply.
#[derive(Debug)]
pub(super) struct Resolved {
    user: Option<User>,
    gid: Option<Gid>,
    chroot: Option<PathBuf>,
}

impl Resolved {
    /// Applies it: chroot, setgroups/initgroups, setgid, setuid, and verifies.
    ///
    /// # Errors
    ///
    /// Says which step failed; the caller stops the tree.
    pub(super) fn apply(&self) -> Result<(), String> {
        let is_root = Uid::effective().is_root();
        if !is_root {
            let same_user = self.user.as_ref().is_none_or(|u| u.uid == Uid::effective());
            let same_group = self.gid.is_none_or(|g| g == Gid::effective());
            if same_user && same_group && self.chroot.is_none() {
                return Ok(());
            }
            return Err("changing user, group or root directory needs root; start as root or leave user, group and chroot unset".into());
        }
        if let Some(dir) = &self.chroot {
            nix::unistd::chroot(dir.as_path())
                .map_err(|err| format!("chroot to {}: {err}", dir.display()))?;
            nix::unistd::chdir("/").map_err(|err| format!("chdir / after chroot: {err}"))?;
        }
        if let Some(gid) = self.gid {
            match &self.user {
                Some(user) => {
                    let name = CString::new(user.name.as_str())
                        .map_err(|_| format!("user name {:?} contains a NUL byte", user.name))?;
                    nix::unistd::initgroups(&name, gid)
                        .map_err(|err| format!("initgroups for {}: {err}", user.name))?;
                }
                None => {
                    nix::unistd::setgroups(&[gid]).map_err(|err| format!("setgroups: {err}"))?
                }
            }
            nix::unistd::setgid(gid).map_err(|err| format!("setgid {gid}: {err}"))?;
        }
        if let Some(user) = &self.user {
            nix::unistd::setuid(user.uid).map_err(|err| format!("setuid {}: {err}", user.uid))?;
            if !user.uid.is_root() && nix::unistd::setuid(Uid::from_raw(0)).is_ok() {
                return Err(
                    "root could be regained after dropping privileges; refusing to run".into(),
                );
            }
        }
        tracing::info!(
            uid = %Uid::effective(),
            gid = %Gid::effective(),
            "dropped privileges"
        );
        Ok(())
    }
}
