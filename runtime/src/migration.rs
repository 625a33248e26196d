//! Paying the cgroup migration's grace period ahead of time.
//!
//! Moving a process into a cgroup (writing its pid to `cgroup.procs`) takes
//! the kernel's global `cgroup_threadgroup_rwsem` for writing. The first
//! writer after a quiet spell waits for a full RCU grace period before it gets
//! it (`rcu_sync_enter`); writers arriving during that wait, or within about
//! one grace period after the last writer left, do not wait again. A grace
//! period takes 3 to 20 ms on a busy two-CPU machine, which was the largest
//! single cost of `run`: libcontainer's intermediate process writes its pid
//! into the container's cgroups only after it has been forked and has found
//! the cgroup mounts, and then sat out the whole grace period.
//!
//! So that wait starts as soon as a command knows it will create container
//! processes: a helper moves itself into the cgroup it is already in (a
//! no-op migration that still takes the lock), and the grace period elapses
//! while the runtime re-executes itself sealed, reads the bundle, writes its
//! state and forks. By the time the intermediate process writes, the period
//! is over or partly over. The binary forks that helper ([`fork_helper`])
//! before its sealed re-exec and hands its pid to the new image
//! ([`adopt_helper`]), which reaps it; otherwise [`start`] runs the no-op
//! migration on a thread.

use std::ffi::CString;
use std::io::Write;
use std::os::unix::ffi::OsStringExt;
use std::sync::atomic::{AtomicI32, Ordering};
use std::thread::JoinHandle;

/// The environment variable that carries the helper's pid across the sealed
/// re-exec. The binary removes it first thing, so nothing inherits it.
pub const HELPER_PID_ENV: &str = "_BERTH_RUNTIME_CGROUP_WARMUP_PID";

/// The helper process this image adopted, 0 when there is none (or it was
/// reaped).
static ADOPTED_HELPER: AtomicI32 = AtomicI32::new(0);

/// A running warm-up; dropping it waits for the no-op migration to finish
/// (joining the thread or reaping the helper process).
#[derive(Debug)]
pub(crate) struct Warmup {
    thread: Option<JoinHandle<()>>,
    helper: libc::pid_t,
}

impl Drop for Warmup {
    fn drop(&mut self) {
        if let Some(handle) = self.thread.take()
            && handle.join().is_err()
        {
            tracing::debug!("the cgroup migration warm-up thread panicked");
        }
        if self.helper > 0 {
            let mut status = 0;
            // SAFETY: waiting for our own child; the pointer is valid.
            unsafe { libc::waitpid(self.helper, &mut status, 0) };
        }
    }
}

/// Forks a helper process that does the no-op migration and exits, and
/// returns its pid (a child of this process, to be reaped). Meant for the
/// binary before its sealed re-exec, while it is single-threaded. Best
/// effort: `None` where no `cgroup.procs` of this process is writable.
pub fn fork_helper() -> Option<libc::pid_t> {
    let path = CString::new(own_cgroup_procs()?.into_os_string().into_vec()).ok()?;
    // SAFETY: the child only makes system calls on memory prepared before
    // the fork, then _exits; the caller is single-threaded.
    match unsafe { libc::fork() } {
        -1 => None,
        0 => {
            let mut digits = [0u8; 12];
            // SAFETY: getpid has no preconditions.
            let pid = decimal(unsafe { libc::getpid() }, &mut digits);
            // SAFETY: open and write with a valid C string and buffer;
            // _exit never returns and skips the parent's atexit state.
            unsafe {
                let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
                if fd >= 0 {
                    libc::write(fd, pid.as_ptr().cast(), pid.len());
                }
                libc::_exit(0)
            }
        }
        pid => Some(pid),
    }
}

/// Adopts the helper a previous image of this process forked (its pid from
/// [`HELPER_PID_ENV`]): the next [`start`] waits for it instead of starting
/// another warm-up.
pub fn adopt_helper(pid: libc::pid_t) {
    ADOPTED_HELPER.store(pid, Ordering::SeqCst);
}

/// Writes `value`'s decimal digits at the end of `buf` and returns them,
/// without allocating (for the forked helper).
fn decimal(value: libc::pid_t, buf: &mut [u8; 12]) -> &[u8] {
    let mut rest = value.unsigned_abs();
    let mut start = buf.len();
    loop {
        start -= 1;
        buf[start] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 || start == 0 {
            break;
        }
    }
    &buf[start..]
}

/// Starts the no-op migration, unless an adopted helper is doing it already.
/// Best effort: where no `cgroup.procs` of this process can be written (no
/// cgroupfs, no permission), nothing happens and nothing fails.
pub(crate) fn start() -> Warmup {
    let helper = ADOPTED_HELPER.swap(0, Ordering::SeqCst);
    if helper > 0 {
        return Warmup {
            thread: None,
            helper,
        };
    }
    let idle = Warmup {
        thread: None,
        helper: 0,
    };
    let Some(path) = own_cgroup_procs() else {
        return idle;
    };
    let pid = std::process::id().to_string();
    let spawned = std::thread::Builder::new()
        .name("cgroup-warmup".into())
        .spawn(move || {
            let written = std::fs::OpenOptions::new()
                .write(true)
                .open(&path)
                .and_then(|mut file| file.write_all(pid.as_bytes()));
            if let Err(err) = written {
                tracing::debug!(path = %path.display(), %err, "warming up the cgroup migration");
            }
        });
    match spawned {
        Ok(handle) => Warmup {
            thread: Some(handle),
            helper: 0,
        },
        Err(err) => {
            tracing::debug!(%err, "starting the cgroup migration warm-up thread");
            idle
        }
    }
}

/// The `cgroup.procs` file of the cgroup this process is in, on the first
/// hierarchy whose usual mount point has one.
fn own_cgroup_procs() -> Option<std::path::PathBuf> {
    let table = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    procs_candidates(&table)
        .into_iter()
        .find(|path| path.exists())
}

/// Where the `cgroup.procs` of each line of `/proc/self/cgroup` usually is:
/// v1 hierarchies under `/sys/fs/cgroup/<controller>`, the v2 one at
/// `/sys/fs/cgroup` (unified) or `/sys/fs/cgroup/unified` (hybrid). The v1
/// ones come first: on a hybrid host they hold the controllers the
/// container's cgroup is created in.
fn procs_candidates(table: &str) -> Vec<std::path::PathBuf> {
    let mut v1 = Vec::new();
    let mut v2 = Vec::new();
    for line in table.lines() {
        let mut fields = line.splitn(3, ':');
        let (Some(_), Some(controllers), Some(path)) =
            (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        let relative = path.trim_start_matches('/');
        if controllers.is_empty() {
            for root in ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"] {
                v2.push(
                    std::path::Path::new(root)
                        .join(relative)
                        .join("cgroup.procs"),
                );
            }
        } else if !controllers.starts_with("name=") {
            // Named hierarchies (systemd's) hold no controller, and the
            // container joins them only if the spec says so.
            v1.push(
                std::path::Path::new("/sys/fs/cgroup")
                    .join(controllers)
                    .join(relative)
                    .join("cgroup.procs"),
            );
        }
    }
    v1.extend(v2);
    v1
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn candidates_cover_v1_before_v2() {
        let table = "9:name=systemd:/\n8:pids:/a\n3:cpu,cpuacct:/\n0::/b/c\n";
        assert_eq!(
            procs_candidates(table),
            [
                PathBuf::from("/sys/fs/cgroup/pids/a/cgroup.procs"),
                PathBuf::from("/sys/fs/cgroup/cpu,cpuacct/cgroup.procs"),
                PathBuf::from("/sys/fs/cgroup/b/c/cgroup.procs"),
                PathBuf::from("/sys/fs/cgroup/unified/b/c/cgroup.procs"),
            ]
        );
    }

    #[test]
    fn pids_are_written_in_decimal_without_allocating() {
        let mut buf = [0u8; 12];
        for (pid, want) in [
            (0, "0"),
            (7, "7"),
            (12345, "12345"),
            (i32::MAX, "2147483647"),
        ] {
            assert_eq!(decimal(pid, &mut buf), want.as_bytes());
        }
    }

    #[test]
    fn malformed_lines_are_skipped() {
        assert!(procs_candidates("garbage\n\n").is_empty());
    }
}
