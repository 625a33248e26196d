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
//! [`start`] begins that wait on a helper thread as soon as a command knows
//! it will create container processes: the thread moves this process into
//! the cgroup it is already in (a no-op migration that still takes the
//! lock), so the grace period elapses while the runtime reads the bundle,
//! writes its state and forks. By the time the intermediate process writes,
//! the period is over or partly over.

use std::io::Write;
use std::thread::JoinHandle;

/// The helper thread of [`start`]; joining it (or dropping this) waits for
/// the no-op migration to finish.
#[derive(Debug)]
pub(crate) struct Warmup(Option<JoinHandle<()>>);

impl Drop for Warmup {
    fn drop(&mut self) {
        if let Some(handle) = self.0.take()
            && handle.join().is_err()
        {
            tracing::debug!("the cgroup migration warm-up thread panicked");
        }
    }
}

/// Starts the no-op migration of this process on a helper thread. Best
/// effort: where no `cgroup.procs` of this process can be written (no
/// cgroupfs, no permission), nothing happens and nothing fails.
pub(crate) fn start() -> Warmup {
    let Some(path) = own_cgroup_procs() else {
        return Warmup(None);
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
        Ok(handle) => Warmup(Some(handle)),
        Err(err) => {
            tracing::debug!(%err, "starting the cgroup migration warm-up thread");
            Warmup(None)
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
    fn malformed_lines_are_skipped() {
        assert!(procs_candidates("garbage\n\n").is_empty());
    }
}
