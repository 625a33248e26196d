//! Deleting a stopped container without libcontainer's cgroup manager.
//!
//! libcontainer's `delete` builds a cgroup manager to remove the container's
//! cgroups, and on a v1 or hybrid host that opens a fresh procfs (a new mount
//! through `fsopen`) and parses the mount table twice for each of twelve
//! controllers: about 2.5 ms, 40% of a `delete` and the largest part of
//! `run`'s cleanup. For the common case (a stopped container, cgroupfs
//! driver, v1 controllers, no poststop hooks, no Intel RDT) this removes the
//! same directories from one read of the mount table; every other case goes
//! to libcontainer.

use libcontainer::config::YoukiConfig;
use libcontainer::container::{Container, ContainerStatus};
use std::path::{Component, Path, PathBuf};

/// The v1 controllers libcgroups' v1 manager creates a directory in.
const CONTROLLERS: &[&str] = &[
    "cpu",
    "cpuacct",
    "cpuset",
    "devices",
    "hugetlb",
    "memory",
    "pids",
    "perf_event",
    "blkio",
    "net_prio",
    "net_cls",
    "freezer",
];

/// What [`delete_stopped`] did.
pub(crate) enum Outcome {
    /// The container's cgroups and state directory are gone.
    Deleted,
    /// The container is not the common case; nothing was changed.
    NotApplicable,
    /// Removing failed; the message names the path.
    Failed(std::io::Error, PathBuf),
}

/// Removes a stopped container's v1 cgroups and its state directory, when
/// the container is in the case this module handles.
pub(crate) fn delete_stopped(container: &Container) -> Outcome {
    if container.status() != ContainerStatus::Stopped
        || container.systemd()
        || container.intel_rdt_dir().is_some()
    {
        return Outcome::NotApplicable;
    }
    let Ok(config) = YoukiConfig::load(&container.root) else {
        return Outcome::NotApplicable;
    };
    let has_poststop = config
        .hooks
        .as_ref()
        .and_then(|h| h.poststop().as_ref())
        .is_some_and(|hooks| !hooks.is_empty());
    let Some(relative) = relative_cgroup_path(&config.cgroup_path) else {
        return Outcome::NotApplicable;
    };
    let v1 = matches!(
        libcgroups::common::get_cgroup_setup(),
        Ok(libcgroups::common::CgroupSetup::Legacy | libcgroups::common::CgroupSetup::Hybrid)
    );
    if has_poststop || !v1 {
        return Outcome::NotApplicable;
    }
    let Ok(mountinfo) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return Outcome::NotApplicable;
    };
    for hierarchy in controller_mounts(&mountinfo) {
        let dir = hierarchy.join(&relative);
        if let Err(err) = remove_cgroup(&dir) {
            return Outcome::Failed(err, dir);
        }
    }
    match std::fs::remove_dir_all(&container.root) {
        Ok(()) => Outcome::Deleted,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Outcome::Deleted,
        Err(err) => Outcome::Failed(err, container.root.clone()),
    }
}

/// The container's cgroup path relative to a hierarchy's root, as
/// libcgroups joins it; `None` for an empty path (the runtime's own cgroup)
/// or one that climbs with `..`.
fn relative_cgroup_path(path: &Path) -> Option<PathBuf> {
    let mut relative = PathBuf::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => relative.push(part),
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir | Component::Prefix(_) => return None,
        }
    }
    (!relative.as_os_str().is_empty()).then_some(relative)
}

/// The mount points of the roots of the cgroup v1 hierarchies that hold one
/// of [`CONTROLLERS`], each once.
fn controller_mounts(mountinfo: &str) -> Vec<PathBuf> {
    let mut mounts: Vec<PathBuf> = Vec::new();
    for line in mountinfo.lines() {
        // Fields: id parent major:minor root mountpoint options ... - fstype source superoptions
        let Some((before, after)) = line.split_once(" - ") else {
            continue;
        };
        let mut fields = before.split(' ');
        let root = fields.nth(3).unwrap_or_default();
        let mount_point = fields.next().unwrap_or_default();
        let mut after = after.split(' ');
        let (Some(fstype), Some(_source), Some(options)) =
            (after.next(), after.next(), after.next())
        else {
            continue;
        };
        // Only a hierarchy's own root: a bind mount of a subtree elsewhere
        // would put the same relative path on another cgroup.
        if fstype != "cgroup" || root != "/" {
            continue;
        }
        let holds_controller = options.split(',').any(|o| CONTROLLERS.contains(&o));
        let mount_point = PathBuf::from(unescape_octal(mount_point));
        if holds_controller && !mounts.contains(&mount_point) {
            mounts.push(mount_point);
        }
    }
    mounts
}

/// Undoes mountinfo's octal escapes (`\040` for a space).
fn unescape_octal(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 3 < bytes.len()
            && bytes[i + 1..i + 4]
                .iter()
                .all(|b| (b'0'..=b'7').contains(b))
        {
            let value = bytes[i + 1..i + 4]
                .iter()
                .fold(0u32, |acc, b| acc * 8 + u32::from(b - b'0'));
            out.push(u8::try_from(value).unwrap_or(b'?'));
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Removes one cgroup directory, killing what is left in it first as
/// libcgroups does; a cgroup whose last process is still exiting refuses
/// removal (EBUSY) for a moment, so that is retried briefly.
fn remove_cgroup(dir: &Path) -> std::io::Result<()> {
    if !dir.exists() {
        return Ok(());
    }
    if let Ok(procs) = std::fs::read_to_string(dir.join("cgroup.procs")) {
        for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
            // SAFETY: kill has no memory-safety preconditions.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
    let mut delay = std::time::Duration::from_millis(5);
    for _ in 0..8 {
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(err) if err.raw_os_error() == Some(libc::EBUSY) => {
                std::thread::sleep(delay);
                delay *= 2;
            }
            Err(err) => return Err(err),
        }
    }
    std::fs::remove_dir(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroup_paths_are_made_relative_and_checked() {
        let cases: &[(&str, Option<&str>)] = &[
            (":youki:abc", Some(":youki:abc")),
            ("/kubepods/pod1/c1", Some("kubepods/pod1/c1")),
            ("a/./b", Some("a/b")),
            ("", None),
            ("/", None),
            ("/a/../../etc", None),
        ];
        for (path, want) in cases {
            assert_eq!(
                relative_cgroup_path(Path::new(path)),
                want.map(PathBuf::from),
                "{path}"
            );
        }
    }

    #[test]
    fn controller_hierarchies_are_found_once_each() {
        let mountinfo = "\
1 0 8:1 / / rw,relatime - ext4 /dev/vda rw
2 1 0:5 / /sys/fs/cgroup rw,nosuid - tmpfs tmpfs rw,mode=755
3 2 0:6 / /sys/fs/cgroup/memory rw,nosuid - cgroup cgroup rw,memory
4 2 0:7 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct
5 2 0:8 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd
6 2 0:9 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw
7 1 0:6 /sub /elsewhere rw - cgroup cgroup rw,memory
8 1 0:6 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
9 1 0:10 / /with\\040space rw - cgroup cgroup rw,pids";
        assert_eq!(
            controller_mounts(mountinfo),
            [
                PathBuf::from("/sys/fs/cgroup/memory"),
                PathBuf::from("/sys/fs/cgroup/cpu,cpuacct"),
                PathBuf::from("/with space"),
            ]
        );
    }
}
