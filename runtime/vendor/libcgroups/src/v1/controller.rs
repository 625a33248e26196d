use std::fs;
use std::path::Path;

use nix::unistd::Pid;

use crate::common::{self, CGROUP_PROCS, ControllerOpt, WrapIoResult, WrappedIoError};

/// The v1 file that moves a single thread; `0` names the writing thread.
const CGROUP_TASKS: &str = "tasks";

/// Moves the process `pid` into the cgroup at `cgroup_path`.
///
/// berth patch: a single-threaded process that moves itself writes `0` to
/// `tasks` instead of its pid to `cgroup.procs`. Both move the whole process
/// when it has one thread, but the kernel takes the global
/// `cgroup_threadgroup_rwsem` for writing only for the second, and the first
/// writer after a quiet spell waits a full RCU grace period for it (5 to
/// 15 ms on a busy machine). libcontainer's intermediate process moves itself
/// this way on every container start.
pub(super) fn join_cgroup(pid: Pid, cgroup_path: &Path) -> Result<(), WrappedIoError> {
    if pid == nix::unistd::getpid() && is_single_threaded() {
        common::write_cgroup_file(cgroup_path.join(CGROUP_TASKS), 0)
    } else {
        common::write_cgroup_file(cgroup_path.join(CGROUP_PROCS), pid)
    }
}

/// Whether the calling process has exactly one thread, so that moving the
/// calling thread moves the whole process. Unknown counts as no.
fn is_single_threaded() -> bool {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("Threads:"))
                .map(|count| count.trim() == "1")
        })
        .unwrap_or(false)
}

pub(super) trait Controller {
    type Error: From<WrappedIoError>;
    type Resource;

    /// Adds a new task specified by its pid to the cgroup
    fn add_task(pid: Pid, cgroup_path: &Path) -> Result<(), Self::Error> {
        fs::create_dir_all(cgroup_path).wrap_create_dir(cgroup_path)?;
        join_cgroup(pid, cgroup_path)?;
        Ok(())
    }

    /// Applies resource restrictions to the cgroup
    fn apply(controller_opt: &ControllerOpt, cgroup_root: &Path) -> Result<(), Self::Error>;

    /// Checks if the controller needs to handle this request
    fn needs_to_handle<'a>(controller_opt: &'a ControllerOpt) -> Option<&'a Self::Resource>;
}
