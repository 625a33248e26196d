//! Read-only cgroup v1 mounts inside the container.
//!
//! The runtime-spec's `/sys/fs/cgroup` mount usually carries `ro`, and runc
//! mounts each v1 hierarchy read-only. libcontainer 0.7 mounts the v1
//! hierarchies read-write whatever the options say, which would let the
//! container rewrite its own limits. After `create`, while the init process
//! still waits for `start`, this remounts them read-only from inside the
//! container's mount namespace.

use crate::error::{Error, Result};
use nix::errno::Errno;
use nix::unistd::Pid;
use oci_spec::runtime::{LinuxNamespaceType, Spec};
use std::os::fd::OwnedFd;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

/// The destination of a read-only `cgroup` mount in the spec, if any.
pub(crate) fn readonly_cgroup_destination(spec: &Spec) -> Option<PathBuf> {
    spec.mounts().as_ref()?.iter().find_map(|mount| {
        let is_cgroup = mount.typ().as_deref() == Some("cgroup");
        let readonly = mount
            .options()
            .as_ref()
            .is_some_and(|o| o.iter().any(|opt| opt == "ro"));
        (is_cgroup && readonly).then(|| mount.destination().clone())
    })
}

/// Whether the config gives the container a mount namespace of its own (a
/// new one, not one joined by path). Without one, the container's mounts
/// are the caller's, and remounting them would change the host's.
pub(crate) fn has_new_mount_namespace(spec: &Spec) -> bool {
    spec.linux()
        .as_ref()
        .and_then(|linux| linux.namespaces().as_ref())
        .is_some_and(|namespaces| {
            namespaces
                .iter()
                .any(|ns| ns.typ() == LinuxNamespaceType::Mount && ns.path().is_none())
        })
}

/// Remounts every cgroup v1 mount below `destination` in the mount namespace
/// of the container's init `pid` read-only. The process is pinned with a
/// pidfd, so a reused pid cannot redirect the remounts, and its namespace
/// must not be the runtime's own. Joining a mount namespace changes the
/// caller's root and working directory, so this process joins it only for
/// the remounts and then restores both; where it cannot join (a
/// multi-threaded process) a forked child does the work.
pub(crate) fn cgroup_v1_readonly(pid: Pid, destination: &std::path::Path) -> Result<()> {
    let pidfd = crate::pidfd::open(pid)?;
    let ns_path = format!("/proc/{}/ns/mnt", pid.as_raw());
    let target_ns =
        std::fs::metadata(&ns_path).map_err(|e| Error::io("inspecting", &ns_path, e))?;
    let own_ns = std::fs::metadata("/proc/self/ns/mnt")
        .map_err(|e| Error::io("inspecting", "/proc/self/ns/mnt", e))?;
    let prefix = format!("{}/", destination.display());
    // The container's procfs does not know this process, so its mount table
    // is read from the host's /proc, where paths are relative to its root.
    let mountinfo_path = format!("/proc/{}/mountinfo", pid.as_raw());
    let mountinfo = std::fs::read_to_string(&mountinfo_path)
        .map_err(|e| Error::io("reading", &mountinfo_path, e))?;
    // Alive now, so the namespace and mount table read above were the
    // pinned process's, not those of a process that reused its pid.
    if !crate::pidfd::alive(&pidfd) {
        return Err(Error::InvalidInput(format!(
            "the container's init process {pid} exited before its cgroups could be made read-only"
        )));
    }
    if (target_ns.dev(), target_ns.ino()) == (own_ns.dev(), own_ns.ino()) {
        return Err(Error::InvalidInput(format!(
            "the container's init process {pid} is in the runtime's own mount namespace; \
             refusing to remount the host's cgroup hierarchies read-only"
        )));
    }
    let targets = cgroup_mounts(&mountinfo, &prefix);
    if targets.is_empty() {
        return Ok(());
    }
    match remount_in_place(&pidfd, &targets) {
        InPlace::Done(result) => return result,
        InPlace::CannotJoin(errno) => {
            tracing::debug!(%errno, "joining the container's mount namespace in place; forking instead");
        }
    }
    // SAFETY: the child only makes system calls before _exit; the runtime
    // is single-threaded here, so no lock can be held.
    match unsafe { libc::fork() } {
        -1 => Err(Error::Sys {
            action: "forking to remount cgroups read-only",
            source: Errno::last(),
        }),
        0 => {
            let code = match remount_in_child(&pidfd, &targets) {
                Ok(()) => 0,
                Err(errno) => errno as i32,
            };
            // SAFETY: _exit is always safe; it skips the parent's atexit state.
            unsafe { libc::_exit(code) }
        }
        child => {
            let status = nix::sys::wait::waitpid(Pid::from_raw(child), None).map_err(|source| {
                Error::Sys {
                    action: "waiting for the cgroup remount",
                    source,
                }
            })?;
            match status {
                nix::sys::wait::WaitStatus::Exited(_, 0) => Ok(()),
                nix::sys::wait::WaitStatus::Exited(_, errno) => Err(Error::Sys {
                    action: "remounting the container's cgroup hierarchies read-only",
                    source: Errno::from_raw(errno),
                }),
                other => Err(Error::InvalidInput(format!(
                    "the cgroup remount helper ended with {other:?}"
                ))),
            }
        }
    }
}

/// The cgroup mounts below `prefix` in a mount table, each with the flags to
/// remount it read-only while keeping its other flags.
fn cgroup_mounts(mountinfo: &str, prefix: &str) -> Vec<(std::ffi::CString, libc::c_ulong)> {
    let mut targets = Vec::new();
    for line in mountinfo.lines() {
        // Fields: id parent major:minor root mountpoint options ... - fstype source superoptions
        let mut fields = line.split(' ');
        let mountpoint = fields.nth(4).unwrap_or_default();
        let options = fields.next().unwrap_or_default();
        let fstype = line
            .split(" - ")
            .nth(1)
            .and_then(|rest| rest.split(' ').next())
            .unwrap_or_default();
        if fstype != "cgroup" || !mountpoint.starts_with(prefix) {
            continue;
        }
        let mut flags = libc::MS_REMOUNT | libc::MS_BIND | libc::MS_RDONLY;
        for (name, flag) in [
            ("nosuid", libc::MS_NOSUID),
            ("nodev", libc::MS_NODEV),
            ("noexec", libc::MS_NOEXEC),
            ("relatime", libc::MS_RELATIME),
            ("noatime", libc::MS_NOATIME),
        ] {
            if options.split(',').any(|o| o == name) {
                flags |= flag;
            }
        }
        if let Ok(target) = std::ffi::CString::new(mountpoint) {
            targets.push((target, flags));
        }
    }
    targets
}

/// What [`remount_in_place`] did.
enum InPlace {
    /// It joined the namespace; the remounts' outcome.
    Done(Result<()>),
    /// It could not join the namespace and changed nothing.
    CannotJoin(Errno),
}

/// Joins the mount namespace of the process pinned by the pidfd `ns`, remounts `targets`, and returns to this
/// process's own mount namespace, root and working directory. This saves the
/// fork, exit and wait of a helper process on every create.
fn remount_in_place(ns: &OwnedFd, targets: &[(std::ffi::CString, libc::c_ulong)]) -> InPlace {
    use std::os::fd::AsRawFd;
    let open_own = |path: &str, flags: libc::c_int| -> std::result::Result<std::fs::File, Errno> {
        let path = std::ffi::CString::new(path).map_err(|_| Errno::EINVAL)?;
        // SAFETY: open with a valid C string; the fd is owned by the File.
        let fd = unsafe { libc::open(path.as_ptr(), flags | libc::O_CLOEXEC) };
        if fd < 0 {
            return Err(Errno::last());
        }
        // SAFETY: open returned a new fd that nothing else owns.
        Ok(unsafe { std::os::fd::FromRawFd::from_raw_fd(fd) })
    };
    let saved = open_own("/proc/self/ns/mnt", libc::O_RDONLY).and_then(|own| {
        Ok((
            own,
            open_own("/", libc::O_PATH | libc::O_DIRECTORY)?,
            open_own(".", libc::O_PATH | libc::O_DIRECTORY)?,
        ))
    });
    let (own_ns, root, cwd) = match saved {
        Ok(saved) => saved,
        Err(errno) => return InPlace::CannotJoin(errno),
    };
    // SAFETY: setns on a pidfd we own (Linux 5.8) joins only the process's
    // mount namespace; it fails (EINVAL) unless this process is
    // single-threaded, and then nothing changed.
    if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNS) } != 0 {
        return InPlace::CannotJoin(Errno::last());
    }
    let remounted = remount(targets).map_err(|source| Error::Sys {
        action: "remounting the container's cgroup hierarchies read-only",
        source,
    });
    // SAFETY: setns, fchdir and chroot on fds we own and a valid C string;
    // they put back the namespace, root and directory saved above. Joining
    // the namespace set the root to the namespace's; a runtime that ran
    // chrooted is chrooted again.
    let restored = unsafe {
        libc::setns(own_ns.as_raw_fd(), libc::CLONE_NEWNS) == 0
            && (same_directory(&root, c"/")
                || (libc::fchdir(root.as_raw_fd()) == 0 && libc::chroot(c".".as_ptr()) == 0))
            && libc::fchdir(cwd.as_raw_fd()) == 0
    };
    if !restored {
        return InPlace::Done(Err(Error::Sys {
            action: "returning to the runtime's own mount namespace after remounting cgroups",
            source: Errno::last(),
        }));
    }
    InPlace::Done(remounted)
}

/// Whether `dir` is the directory at `path`.
fn same_directory(dir: &std::fs::File, path: &std::ffi::CStr) -> bool {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = dir.metadata() else {
        return false;
    };
    // SAFETY: an all-zero stat is valid; stat fills it.
    let mut other: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: stat with a valid C string and out-pointer.
    if unsafe { libc::stat(path.as_ptr(), &mut other) } != 0 {
        return false;
    }
    meta.dev() == other.st_dev && meta.ino() == other.st_ino
}

fn remount_in_child(
    ns: &OwnedFd,
    targets: &[(std::ffi::CString, libc::c_ulong)],
) -> std::result::Result<(), Errno> {
    use std::os::fd::AsRawFd;
    // SAFETY: setns on an fd we own; the child is single-threaded.
    if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNS) } != 0 {
        return Err(Errno::last());
    }
    remount(targets)
}

/// Remounts each target with its flags, in the current mount namespace.
fn remount(targets: &[(std::ffi::CString, libc::c_ulong)]) -> std::result::Result<(), Errno> {
    for (target, flags) in targets {
        // SAFETY: a remount with a valid path and no data.
        let rc = unsafe {
            libc::mount(
                std::ptr::null(),
                target.as_ptr(),
                std::ptr::null(),
                *flags,
                std::ptr::null(),
            )
        };
        if rc != 0 {
            return Err(Errno::last());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_new_mount_namespace_counts_as_the_containers_own() {
        use oci_spec::runtime::{LinuxBuilder, LinuxNamespaceBuilder};
        let with = |namespaces: Vec<oci_spec::runtime::LinuxNamespace>| {
            let mut spec = Spec::default();
            spec.set_linux(Some(
                LinuxBuilder::default()
                    .namespaces(namespaces)
                    .build()
                    .unwrap(),
            ));
            spec
        };
        let mount = |path: Option<&str>| {
            let builder = LinuxNamespaceBuilder::default().typ(LinuxNamespaceType::Mount);
            match path {
                Some(path) => builder.path(path).build().unwrap(),
                None => builder.build().unwrap(),
            }
        };
        assert!(has_new_mount_namespace(&Spec::default()));
        assert!(has_new_mount_namespace(&with(vec![mount(None)])));
        assert!(!has_new_mount_namespace(&with(Vec::new())));
        assert!(!has_new_mount_namespace(&with(vec![mount(Some(
            "/proc/1/ns/mnt"
        ))])));
        let mut no_linux = Spec::default();
        no_linux.set_linux(None);
        assert!(!has_new_mount_namespace(&no_linux));
    }

    #[test]
    fn finds_the_cgroup_mounts_below_the_destination() {
        let mountinfo = "\
1 0 8:1 / / rw,relatime - ext4 /dev/vda rw
2 1 0:5 / /sys/fs/cgroup rw,nosuid - tmpfs tmpfs rw,mode=755
3 2 0:6 /c /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime - cgroup cgroup rw,memory
4 2 0:7 / /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw
5 1 0:6 / /elsewhere rw - cgroup cgroup rw,memory";
        let found = cgroup_mounts(mountinfo, "/sys/fs/cgroup/");
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].0.to_str().unwrap(), "/sys/fs/cgroup/memory");
        let flags = found[0].1;
        assert!(flags & libc::MS_RDONLY != 0 && flags & libc::MS_NOEXEC != 0);
        assert!(flags & libc::MS_NOATIME == 0);
    }
}
