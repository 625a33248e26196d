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
//!
//! All this is needed only where the container's processes join through
//! `cgroup.procs`: on a unified (v2) host, and under the systemd driver. On a
//! v1 or hybrid host berth's copy of libcgroups (`runtime/vendor`) moves the
//! single-threaded intermediate process by writing `0` to each hierarchy's
//! `tasks` file, which takes no global lock and so has no grace period to
//! wait for. A warm-up there would only hold `cgroup_mutex` through its own
//! grace period and delay that write; [`helps`] says when to do one.

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

/// Whether the container's processes will join their cgroup through
/// `cgroup.procs`, so that a warm-up shortens their start: under the systemd
/// driver, or on a unified (cgroup v2 only) host.
pub fn helps(systemd_cgroup: bool) -> bool {
    systemd_cgroup || unified_host()
}

/// Whether the host is unified (cgroup v2 only), as libcgroups sees it.
fn unified_host() -> bool {
    matches!(
        libcgroups::common::get_cgroup_setup(),
        Ok(libcgroups::common::CgroupSetup::Unified)
    )
}

/// Starts the no-op migration where it [`helps`], unless an adopted helper is
/// doing it already. Best effort: where no `cgroup.procs` of this process can
/// be written (no cgroupfs, no permission), nothing happens and nothing
/// fails.
pub(crate) fn start(systemd_cgroup: bool) -> Warmup {
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
    if !helps(systemd_cgroup) {
        return idle;
    }
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

    /// berth's libcgroups (runtime/vendor) moves a process that joins a v1
    /// cgroup itself by writing `0` to `tasks` when it has one thread. That
    /// moves the calling thread only, so a process with more threads must
    /// still be moved whole, through `cgroup.procs`.
    #[test]
    fn a_process_joining_a_v1_cgroup_goes_whole_with_one_thread_or_several() {
        use libcgroups::common::CgroupManager;
        // SAFETY: geteuid has no preconditions.
        let euid = unsafe { libc::geteuid() };
        assert_eq!(euid, 0, "this test needs root: it creates cgroups");
        let hierarchy = std::path::Path::new("/sys/fs/cgroup/pids");
        assert!(
            hierarchy.join("tasks").exists(),
            "this test needs a cgroup v1 pids hierarchy at {} (a v1 or hybrid host)",
            hierarchy.display()
        );
        for extra_threads in [0, 2] {
            let relative = PathBuf::from(format!(
                "berth-join-test-{}-{extra_threads}",
                std::process::id()
            ));
            let manager = libcgroups::v1::manager::Manager::new(&relative).unwrap();
            let child = fork_joiner(&manager, extra_threads);
            let members = sorted_ids(
                std::fs::read_to_string(hierarchy.join(&relative).join("tasks"))
                    .unwrap()
                    .lines()
                    .map(str::to_owned),
            );
            let threads = sorted_ids(
                std::fs::read_dir(format!("/proc/{child}/task"))
                    .unwrap()
                    .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned()),
            );
            // SAFETY: killing and reaping our own child.
            unsafe {
                libc::kill(child, libc::SIGKILL);
                libc::waitpid(child, std::ptr::null_mut(), 0);
            }
            manager.remove().unwrap();
            assert_eq!(threads.len(), extra_threads + 1, "threads of the joiner");
            assert_eq!(
                members, threads,
                "the cgroup's tasks against the joiner's threads ({extra_threads} extra)"
            );
        }
    }

    fn sorted_ids(ids: impl Iterator<Item = String>) -> Vec<i32> {
        let mut ids: Vec<i32> = ids.map(|id| id.trim().parse().unwrap()).collect();
        ids.sort_unstable();
        ids
    }

    /// Forks a child that starts `extra_threads` idle threads and then joins
    /// `manager`'s cgroups as libcontainer's intermediate process does
    /// (`add_task` with its own pid), and waits to be killed. Returns its pid
    /// once it has joined.
    fn fork_joiner(manager: &libcgroups::v1::manager::Manager, extra_threads: usize) -> i32 {
        use libcgroups::common::CgroupManager;
        let mut fds = [0; 2];
        // SAFETY: pipe writes two fds into the array.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        // SAFETY: the child only starts threads, joins and waits.
        match unsafe { libc::fork() } {
            -1 => panic!("fork: {}", std::io::Error::last_os_error()),
            0 => {
                for _ in 0..extra_threads {
                    std::thread::spawn(|| {
                        loop {
                            std::thread::park();
                        }
                    });
                }
                // SAFETY: getpid has no preconditions.
                let pid = nix::unistd::Pid::from_raw(unsafe { libc::getpid() });
                let joined = if manager.add_task(pid).is_ok() {
                    b'1'
                } else {
                    b'0'
                };
                // SAFETY: writing one byte from a valid buffer, then waiting
                // for the parent's SIGKILL.
                unsafe {
                    libc::write(fds[1], [joined].as_ptr().cast(), 1);
                    loop {
                        libc::pause();
                    }
                }
            }
            child => {
                let mut joined = [0u8];
                // SAFETY: reading one byte into a valid buffer.
                unsafe {
                    libc::close(fds[1]);
                    libc::read(fds[0], joined.as_mut_ptr().cast(), 1);
                    libc::close(fds[0]);
                }
                assert_eq!(joined, [b'1'], "the child could not join its cgroup");
                child
            }
        }
    }
}
