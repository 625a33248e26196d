//! Checks of the config's process that name the real cause of a failure.
//!
//! libcontainer's init process sends its error to the runtime as one line
//! of text, the error's own message without its causes ("failed to unix
//! syscall", "io error"), or not at all when that line is too long. The
//! failures a config can cause there are checked before anything is
//! created, with the errno the init would have met.

use crate::error::{Error, Result};
use nix::errno::Errno;
use oci_spec::runtime::{PosixRlimitType, Spec};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// File descriptors libcontainer's init opens for itself before it execs the
/// workload (procfs handles, /dev/null, the notify socket): with an
/// RLIMIT_NOFILE below this the init fails with EMFILE.
pub(crate) const MIN_NOFILE: u64 = 16;

/// Checks what the init process would fail on: argument and environment
/// sizes, the working directory and RLIMIT_NOFILE. `config` names the
/// config file in errors; `rootfs` is the container's root filesystem.
pub(crate) fn process(spec: &Spec, rootfs: &Path, config: &Path) -> Result<()> {
    let Some(process) = spec.process().as_ref() else {
        return Ok(());
    };
    let fail = |field: &'static str, reason: String, errno: Errno| Error::Process {
        path: config.to_owned(),
        field,
        reason,
        source: std::io::Error::from_raw_os_error(errno as i32),
    };
    let args = process.args().clone().unwrap_or_default();
    let env = process.env().clone().unwrap_or_default();
    let stack = process
        .rlimits()
        .as_ref()
        .and_then(|limits| {
            limits
                .iter()
                .find(|l| l.typ() == PosixRlimitType::RlimitStack)
                .map(|l| l.soft())
        })
        .unwrap_or_else(own_stack_limit);
    if let Some((field, reason)) = exec_size_problem(&args, &env, page_size(), stack) {
        return Err(fail(field, reason, Errno::E2BIG));
    }
    if let Some(nofile) = process.rlimits().as_ref().and_then(|limits| {
        limits
            .iter()
            .find(|l| l.typ() == PosixRlimitType::RlimitNofile)
            .map(|l| l.soft())
    }) && nofile < MIN_NOFILE
    {
        return Err(fail(
            "process.rlimits",
            format!(
                "RLIMIT_NOFILE soft limit {nofile} leaves the container's init too few file \
                 descriptors to start the process (it needs {MIN_NOFILE}); hint: raise the limit, \
                 the process can lower it itself"
            ),
            Errno::EMFILE,
        ));
    }
    let cwd = process.cwd();
    if let Some(errno) = prepare_cwd(spec, rootfs, cwd) {
        return Err(fail(
            "process.cwd",
            format!(
                "{:?} cannot be entered in the root filesystem",
                cwd.display()
            ),
            errno,
        ));
    }
    Ok(())
}

/// Why execve would fail with E2BIG for these arguments and environment, as
/// the kernel counts (fs/exec.c): each string, with its NUL, at most
/// MAX_ARG_STRLEN (32 pages); all strings and their pointers at most a
/// quarter of the stack limit, capped at 6 MiB, and never below 128 KiB.
fn exec_size_problem(
    args: &[String],
    env: &[String],
    page: u64,
    stack: u64,
) -> Option<(&'static str, String)> {
    let max_string = 32 * page;
    for (field, list) in [("process.args", args), ("process.env", env)] {
        for (index, item) in list.iter().enumerate() {
            let size = item.len() as u64 + 1;
            if size > max_string {
                let head: String = item.chars().take(32).collect();
                return Some((
                    field,
                    format!(
                        "entry {index} ({head:?}...) is {size} bytes, over the kernel's limit of \
                         {max_string} bytes for one argument or variable"
                    ),
                ));
            }
        }
    }
    let limit = (6 * 1024 * 1024 / 4 * 3).min(stack / 4).max(128 * 1024);
    let strings: u64 = args.iter().chain(env).map(|s| s.len() as u64 + 1).sum();
    let pointers = (args.len().max(1) + env.len()) as u64 * 8;
    let total = strings + pointers;
    (total > limit).then(|| {
        (
            "process.args and process.env",
            format!(
                "together take {total} bytes, over the kernel's limit of {limit} bytes (a quarter \
                 of the stack limit)"
            ),
        )
    })
}

/// Creates a missing `cwd` inside `rootfs`, as runc does (mode 0755), and
/// gives the errno with which entering it would still fail (ENOTDIR where a
/// file stands in the way, EROFS on a read-only rootfs). Everything is
/// resolved inside the rootfs, so a symlink in the image never makes this
/// create a directory on the host. A cwd at or below a mount's destination
/// is left to the mount and not checked.
fn prepare_cwd(spec: &Spec, rootfs: &Path, cwd: &Path) -> Option<Errno> {
    if cwd.as_os_str().is_empty() {
        return None;
    }
    let mounted = spec.mounts().as_ref().is_some_and(|mounts| {
        mounts
            .iter()
            .any(|m| cwd.starts_with(m.destination()) && m.destination() != Path::new("/"))
    });
    if mounted {
        return None;
    }
    let root = pathrs::Root::open(rootfs).ok()?;
    let relative: PathBuf = cwd.components().collect();
    let os_error = |err: &pathrs::error::Error| match err.kind() {
        pathrs::error::ErrorKind::OsError(Some(code)) => Some(Errno::from_raw(code)),
        _ => None,
    };
    let handle = match root.resolve(&relative) {
        Ok(handle) => handle,
        Err(err) if os_error(&err) == Some(Errno::ENOENT) => {
            return root
                .mkdir_all(&relative, &std::fs::Permissions::from_mode(0o755))
                .err()
                .map(|err| os_error(&err).unwrap_or(Errno::ENOENT));
        }
        Err(err) => {
            return match os_error(&err) {
                Some(Errno::ENOTDIR) => Some(Errno::ENOTDIR),
                _ => None,
            };
        }
    };
    let is_dir = handle
        .reopen(pathrs::flags::OpenFlags::O_DIRECTORY | pathrs::flags::OpenFlags::O_PATH)
        .is_ok();
    (!is_dir).then_some(Errno::ENOTDIR)
}

fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(size).unwrap_or(4096)
}

/// This process's RLIMIT_STACK, which the container's init inherits.
fn own_stack_limit() -> u64 {
    nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_STACK)
        .map(|(soft, _)| soft)
        .unwrap_or(8 * 1024 * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_counted_as_the_kernel_counts_them() {
        let page = 4096;
        let stack = 8 * 1024 * 1024;
        let small = vec!["/bin/true".to_owned()];
        assert!(exec_size_problem(&small, &[], page, stack).is_none());
        let one_huge = vec!["x".repeat(200_000)];
        let (field, reason) = exec_size_problem(&small, &one_huge, page, stack).unwrap();
        assert_eq!(field, "process.env");
        assert!(reason.contains("131072"), "{reason}");
        let (field, _) = exec_size_problem(&one_huge, &[], page, stack).unwrap();
        assert_eq!(field, "process.args");
        // Just under the per-string limit passes; 30 of them exceed 2 MiB.
        let big = "y".repeat(100_000);
        assert!(exec_size_problem(std::slice::from_ref(&big), &[], page, stack).is_none());
        let many = vec![big; 30];
        let (field, reason) = exec_size_problem(&many, &[], page, stack).unwrap();
        assert_eq!(field, "process.args and process.env");
        assert!(reason.contains("2097152"), "{reason}");
        // A larger stack limit allows more, up to 6 MiB.
        assert!(exec_size_problem(&many, &[], page, 64 * 1024 * 1024).is_none());
    }

    #[test]
    fn cwd_is_created_inside_the_rootfs_and_mounts_are_trusted() {
        let rootfs = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(rootfs.path().join("work")).unwrap();
        std::fs::write(rootfs.path().join("file"), "").unwrap();
        // A symlink out of the rootfs resolves inside it.
        std::os::unix::fs::symlink("/etc", rootfs.path().join("etc-link")).unwrap();
        let spec = Spec::default();
        let check = |cwd: &str| prepare_cwd(&spec, rootfs.path(), Path::new(cwd));
        assert_eq!(check("/work"), None);
        assert_eq!(check("/"), None);
        assert_eq!(check(""), None);
        // A missing cwd is created, as runc creates it.
        assert_eq!(check("/no/such/dir"), None);
        assert!(rootfs.path().join("no/such/dir").is_dir());
        assert_eq!(check("/file"), Some(Errno::ENOTDIR));
        assert_eq!(check("/file/below"), Some(Errno::ENOTDIR));
        // Through a symlink to /etc, the directory is made in the rootfs.
        std::fs::create_dir(rootfs.path().join("etc")).unwrap();
        assert_eq!(check("/etc-link/berth-new"), None);
        assert!(rootfs.path().join("etc/berth-new").is_dir());
        assert!(!Path::new("/etc/berth-new").exists());
        // /proc and /dev are mounts of the default spec.
        assert_eq!(check("/proc/self"), None);
        assert_eq!(check("/dev/shm"), None);
    }
}
