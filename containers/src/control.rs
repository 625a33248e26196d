//! Stopping and removing containers (`berth stop`, `berth rm`).
//!
//! The process that owns a running container (berth in the foreground, or
//! the monitor of a detached one) records its exit and cleans up after it;
//! `stop` only signals it and waits for that. A container whose owner died
//! (a killed monitor) is cleaned up here instead.

use super::supervise::{finish, runtime_of};
use super::{ContainerError, ContainerRecord, State, container_dir, find, load};
use crate::runc::RuncError;
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
    let record = find(store, wanted)?;
    // Before any signal, so the restart policy leaves it stopped.
    super::restart::mark_stopped_by_user(store, &record.id)?;
    if matches!(record.state, State::Restarting { .. }) {
        super::restart::stop_restarting(store, &record.id)?;
        return Ok(record);
    }
    if !record.is_running() {
        if matches!(record.state, State::Running { .. }) {
            settle(store, &record.id)?;
        }
        return Ok(record);
    }
    let stop_signal = record.stop_signal.as_deref().unwrap_or("SIGTERM");
    signal(store, &record, stop_signal)?;
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
    let restarting = matches!(record.state, State::Restarting { .. });
    if (record.is_running() || restarting) && !force {
        return Err(ContainerError::Running(record.name.clone()));
    }
    if record.is_running() || restarting {
        // So the restart policy does not bring it back while it goes.
        super::restart::mark_stopped_by_user(store, &record.id)?;
    }
    if record.is_running() {
        signal(store, &record, "SIGKILL")?;
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
    // A container already gone is what is wanted.
    let _ = runtime_of(store, &record).delete(&record.id, true);
    tmp::remove_tree(&dir)?;
    Ok(record)
}
