//! The lifecycle commands on existing containers: `stop`, `rm`, `pause`,
//! `unpause`, `kill`, `rename`, `wait`, `container prune`, and the checks
//! before `start` and `restart`, each allowed or refused by
//! [`lifecycle::check`] in docker's words.
//!
//! The process that owns a running container (berth in the foreground, or
//! the monitor of a detached one) records its exit and cleans up after it;
//! `stop` only signals it and waits for that. A container whose owner died
//! (a killed monitor) is cleaned up here instead.

use super::lifecycle::{self, Action, Allowed, Status};
use super::supervise::{finish, runtime_of};
use super::{ContainerError, ContainerRecord, State, container_dir, find, load};
use crate::runc::RuncError;
use berth_store::lock::FileLock;
use berth_store::{Store, tmp};
use std::time::{Duration, Instant};

/// How long to wait for a killed container's process to go.
const KILL_GRACE: Duration = Duration::from_secs(10);

/// How long the owner gets to record an exit before `stop` does it.
const OWNER_GRACE: Duration = Duration::from_secs(5);

/// Polls `done` every 50 ms until it holds or `limit` passes.
fn wait_until(limit: Duration, done: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Sends the container `signal` through its runtime. A runtime that reports
/// a failure (the container ended meanwhile) is no error: the caller waits
/// for the process to go either way, and kills it itself if it stays.
fn signal(store: &Store, record: &ContainerRecord, signal: &str) -> Result<(), ContainerError> {
    match runtime_of(store, record).kill(&record.id, signal, false) {
        Ok(()) => Ok(()),
        Err(e @ RuncError::Failed { .. }) => {
            tracing::debug!(error = %e, container = %record.id, signal, "the runtime could not signal the container");
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

/// Kills the container's process directly when the runtime could not.
fn kill_process(record: &ContainerRecord) {
    if let State::Running { pid, .. } = record.state
        && record.is_running()
    {
        // SAFETY: kill has no memory-safety preconditions; is_running
        // checked the pid's start time, so it is the container's process.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
}

/// Brings a record up to date when its container's process has ended but
/// nobody recorded it because the owner died (a killed `berth run` or
/// monitor): records the exit with Docker's 255 for an unknown code and
/// cleans up as the owner would have (with `--rm`, the container goes).
/// Returns the record as it is now, `None` if the container is gone.
pub fn reconcile(
    store: &Store,
    record: ContainerRecord,
) -> Result<Option<ContainerRecord>, ContainerError> {
    if matches!(record.state, State::Created) {
        // A start cut short (berth killed) leaves an attachment behind.
        // Listing goes on if it fails: the error is the plugins', for the log.
        if let Err(e) = crate::network::attach::detach_abandoned(store, &record.id) {
            tracing::warn!(error = %e, container = %record.id, "detaching an abandoned network attachment");
        }
    }
    let record = super::restart::reconcile_restarting(store, record)?;
    if !matches!(record.state, State::Running { .. }) || record.is_running() || record.owner_alive()
    {
        return Ok(Some(record));
    }
    settle(store, &record.id)?;
    match load(store, &record.id) {
        Ok(record) => Ok(Some(record)),
        Err(ContainerError::NotFound(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Waits for the owner to record the exit (not at all if the owner is dead);
/// if it does not, does its cleanup. Returns without error when the
/// container is gone (`--rm`).
fn settle(store: &Store, id: &str) -> Result<(), ContainerError> {
    wait_until(OWNER_GRACE, || match load(store, id) {
        Ok(
            r @ ContainerRecord {
                state: State::Running { .. },
                ..
            },
        ) => !r.owner_alive(),
        _ => true,
    });
    let record = match load(store, id) {
        Ok(record) => record,
        Err(ContainerError::NotFound(_)) => return Ok(()),
        Err(e) => return Err(e),
    };
    if !matches!(record.state, State::Running { .. }) {
        return Ok(());
    }
    let started = match record.state {
        State::Running { started, .. } => started,
        _ => record.created,
    };
    tracing::warn!(container = %id, "the container's owner did not record its exit; cleaning up");
    // The exit code is unknown: Docker reports 255 for such containers.
    finish(store, &record, started, 255)
}

/// Stops the container `wanted`: its stop signal (the image's `StopSignal`,
/// else SIGTERM), then SIGKILL after `timeout`. Returns its record as it was.
pub fn stop(
    store: &Store,
    wanted: &str,
    timeout: Duration,
) -> Result<ContainerRecord, ContainerError> {
    let mut record = find(store, wanted)?;
    // Before any signal, so the restart policy leaves it stopped.
    super::restart::mark_stopped_by_user(store, &record.id)?;
    if matches!(record.state, State::Restarting { .. }) {
        super::restart::stop_restarting(store, &record.id)?;
        // A restart already under way runs it once more: stop that run.
        record = match load(store, &record.id) {
            Ok(now) => now,
            Err(ContainerError::NotFound(_)) => return Ok(record),
            Err(e) => return Err(e),
        };
    }
    if !record.is_running() {
        if matches!(record.state, State::Running { .. }) {
            settle(store, &record.id)?;
        }
        return Ok(record);
    }
    let paused = record.status() == Status::Paused;
    let stop_signal = record.stop_signal.as_deref().unwrap_or("SIGTERM");
    signal(store, &record, stop_signal)?;
    if paused {
        // A frozen process cannot act on the signal: thaw it, as docker does.
        let _ = runtime_of(store, &record).resume(&record.id);
    }
    if !wait_until(timeout, || !record.is_running()) {
        tracing::info!(container = %record.id, "the container did not stop in time; killing it");
        signal(store, &record, "SIGKILL")?;
        if !wait_until(KILL_GRACE, || !record.is_running()) {
            kill_process(&record);
            wait_until(KILL_GRACE, || !record.is_running());
        }
    }
    settle(store, &record.id)?;
    Ok(record)
}

/// Removes the container `wanted`; a running one only with `force` (it is
/// killed first). Returns its record.
pub fn remove(store: &Store, wanted: &str, force: bool) -> Result<ContainerRecord, ContainerError> {
    let record = find(store, wanted)?;
    let status = record.status();
    allowed(&record, status, Action::Remove { force })?;
    if record.is_running() || status == Status::Restarting {
        // So the restart policy does not bring it back while it goes.
        super::restart::mark_stopped_by_user(store, &record.id)?;
    }
    if record.is_running() {
        signal(store, &record, "SIGKILL")?;
        if status == Status::Paused {
            // A frozen process dies only once thawed.
            let _ = runtime_of(store, &record).resume(&record.id);
        }
        if !wait_until(KILL_GRACE, || !record.is_running()) {
            kill_process(&record);
        }
    }
    let dir = container_dir(store, &record.id);
    let _lock = match super::lock(store, &record.id) {
        Ok(lock) => lock,
        // Its owner removed it meanwhile (`--rm`).
        Err(_) if !dir.exists() => return Ok(record),
        Err(e) => return Err(e),
    };
    // Marked first, so that `ps` shows it going and a failure leaves it dead.
    if let Ok(mut marked) = load(store, &record.id) {
        marked.state = State::Removing;
        super::save(store, &marked)?;
    }
    // A container already gone is what is wanted.
    let _ = runtime_of(store, &record).delete(&record.id, true);
    crate::network::attach::detach(store, &record.id)?;
    tmp::unmount_under(&dir);
    if let Err(e) = tmp::remove_tree(&dir) {
        if let Ok(mut dead) = load(store, &record.id) {
            dead.state = State::Dead {
                finished: super::now(),
            };
            let _ = super::save(store, &dead);
        }
        return Err(e.into());
    }
    Ok(record)
}

/// Checks `action` against the container's `status`, in docker's words.
fn allowed(
    record: &ContainerRecord,
    status: Status,
    action: Action,
) -> Result<Allowed, ContainerError> {
    Ok(lifecycle::check(action, status, &record.id, &record.name)?)
}

/// The container `wanted`, its record brought up to date (an exit its dead
/// owner did not record is recorded now).
pub fn current(store: &Store, wanted: &str) -> Result<ContainerRecord, ContainerError> {
    let record = find(store, wanted)?;
    reconcile(store, record)?.ok_or_else(|| ContainerError::NotFound(wanted.to_string()))
}

/// `pause`: freezes every process of the container `wanted`.
pub fn pause(store: &Store, wanted: &str) -> Result<ContainerRecord, ContainerError> {
    let record = current(store, wanted)?;
    allowed(&record, record.status(), Action::Pause)?;
    runtime_of(store, &record).pause(&record.id)?;
    Ok(record)
}

/// `unpause`: thaws the paused container `wanted`.
pub fn unpause(store: &Store, wanted: &str) -> Result<ContainerRecord, ContainerError> {
    let record = current(store, wanted)?;
    allowed(&record, record.status(), Action::Unpause)?;
    runtime_of(store, &record).resume(&record.id)?;
    Ok(record)
}

/// `kill -s SIGNAL`: sends `signal` (a name, with or without `SIG`, or a
/// number) to the container's init process.
pub fn kill(store: &Store, wanted: &str, signal: &str) -> Result<ContainerRecord, ContainerError> {
    let record = current(store, wanted)?;
    let status = record.status();
    allowed(&record, status, Action::Kill)?;
    // A kill by the user is not undone by the restart policy, as docker's.
    super::restart::mark_stopped_by_user(store, &record.id)?;
    runtime_of(store, &record).kill(&record.id, signal, false)?;
    if status == Status::Paused && matches!(signal, "KILL" | "SIGKILL" | "9") {
        // A frozen process dies only once thawed.
        let _ = runtime_of(store, &record).resume(&record.id);
    }
    Ok(record)
}

/// Checks that the container `wanted` may start: `Ok(None)` when it runs
/// already (docker's `start` of a running container succeeds quietly), else
/// its record, ready for a monitor or the foreground to start it (an exited
/// container gets its root filesystem mounted again), with the container's
/// lock: held until the container runs, so two `start`s never both start it.
/// Drop the lock before running the container in this process (its end
/// takes the lock).
pub fn prepare_start(
    store: &Store,
    wanted: &str,
) -> Result<Option<(ContainerRecord, FileLock)>, ContainerError> {
    let found = current(store, wanted)?;
    let lock = super::lock(store, &found.id)?;
    // As it is now, under the lock: another start may have run meanwhile.
    let record = load(store, &found.id)?;
    let status = record.status();
    if allowed(&record, status, Action::Start)? == Allowed::AlreadyDone {
        return Ok(None);
    }
    // An exited container's owner unmounted its root filesystem; so did a
    // failed start of a created one.
    if status == Status::Exited || !lifecycle::rootfs_mounted(store, &record) {
        lifecycle::remount_rootfs(store, &record)?;
    }
    Ok(Some((record, lock)))
}

/// Checks that the container `wanted` may restart; returns its record.
pub fn check_restart(store: &Store, wanted: &str) -> Result<ContainerRecord, ContainerError> {
    let record = current(store, wanted)?;
    allowed(&record, record.status(), Action::Restart)?;
    Ok(record)
}

/// Gives the container `wanted` the name `new`, unless another container
/// has it (docker's wording for both refusals).
pub fn rename(store: &Store, wanted: &str, new: &str) -> Result<ContainerRecord, ContainerError> {
    let new = new.strip_prefix('/').unwrap_or(new);
    super::names::validate(new)?;
    let _names = super::names_lock(store)?;
    let record = find(store, wanted)?;
    if record.name == new {
        return Err(ContainerError::Start {
            message: "Renaming a container with the same name as its current name".into(),
            code: 1,
        });
    }
    if let Some(other) = super::list(store)?.iter().find(|r| r.name == new) {
        return Err(ContainerError::NameInUse {
            name: new.to_string(),
            id: other.id.clone(),
        });
    }
    let _lock = super::lock(store, &record.id)?;
    let mut renamed = load(store, &record.id)?;
    renamed.name = new.to_string();
    super::save(store, &renamed)?;
    Ok(renamed)
}

/// `wait`: blocks until the container `wanted` has stopped and returns its
/// exit code. A running container's init is watched through a pidfd (no
/// polling, and a reused pid is never mistaken for it); its owner then
/// records the exit. A created container is waited for until it has run.
pub fn wait(store: &Store, wanted: &str) -> Result<i32, ContainerError> {
    let id = find(store, wanted)?.id;
    loop {
        let record = match load(store, &id) {
            Ok(record) => record,
            // Removed meanwhile (`--rm`): docker reports 0 then too... only
            // if it had exited; berth cannot tell, and says so.
            Err(ContainerError::NotFound(_)) => {
                return Err(ContainerError::NotFound(wanted.to_string()));
            }
            Err(e) => return Err(e),
        };
        match record.state {
            // docker's `wait` returns at an exit the restart policy undoes too.
            State::Exited { code, .. } | State::Restarting { code, .. } => return Ok(code),
            State::Dead { .. } | State::Removing => return Ok(255),
            State::Created => std::thread::sleep(Duration::from_millis(200)),
            State::Running { pid, .. } => {
                if record.is_running()
                    && let Ok(pidfd) = crate::runc::pidfd_open(pid)
                    && record.is_running()
                {
                    wait_readable(&pidfd);
                }
                // The process is gone: its owner records the exit, or
                // `settle` does it for a dead owner.
                settle(store, &id)?;
            }
        }
    }
}

/// Blocks until `fd` (a pidfd) is readable: its process has ended.
fn wait_readable(fd: &impl std::os::fd::AsFd) {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    loop {
        let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::NONE) {
            Err(nix::errno::Errno::EINTR) => continue,
            _ => return,
        }
    }
}

/// `container prune`: removes every container that does not run (created,
/// exited or dead). Returns the ids removed and the bytes their own
/// writable layers held.
pub fn prune(store: &Store) -> Result<(Vec<String>, u64), ContainerError> {
    let mut removed = Vec::new();
    let mut reclaimed = 0;
    for record in super::list(store)? {
        let Some(record) = reconcile(store, record)? else {
            continue;
        };
        if !matches!(
            record.status(),
            Status::Created | Status::Exited | Status::Dead
        ) {
            continue;
        }
        let size = lifecycle::tree_size(&container_dir(store, &record.id).join("upper"));
        match remove(store, &record.id, false) {
            Ok(_) => {
                reclaimed += size;
                removed.push(record.id);
            }
            // Started or removed by someone else meanwhile.
            Err(ContainerError::Transition(_) | ContainerError::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok((removed, reclaimed))
}
