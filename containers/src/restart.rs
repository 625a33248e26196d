//! Restart policies in the process that owns a detached container (the
//! monitor), and `berth update`.
//!
//! When the container's process exits, [`keep_for_restart`] asks the policy
//! (docker's restart manager: [`resources::should_restart`]); a restart
//! keeps the bundle and its mounted root filesystem, records the
//! `Restarting` state and one more `RestartCount`, and the monitor waits
//! docker's backoff ([`wait_backoff`]) and runs the container again through
//! the one start path, `supervise::run`. A user's `stop` or `kill` leaves a
//! mark ([`mark_stopped_by_user`]) that no policy overrides. It is a file
//! beside the record, not a record field, because the start path saves the
//! record it loaded before the mark may have been made.

use super::resources::{self, Host, LimitError, Update};
use super::supervise::{finish, runtime_of};
use super::{ContainerError, ContainerRecord, State, cio, container_dir, find, load};
use berth_store::{Store, atomic};
use std::fs;
use std::io;
use std::time::{Duration, Instant};

/// The file whose presence says the user stopped the container.
pub const STOPPED_BY_USER: &str = "stopped-by-user";

/// Records that the user stopped or killed the container `id`, before it is
/// signalled, so its restart policy leaves it down.
pub fn mark_stopped_by_user(store: &Store, id: &str) -> Result<(), ContainerError> {
    let path = container_dir(store, id).join(STOPPED_BY_USER);
    match fs::write(&path, b"") {
        Ok(()) => Ok(()),
        // Removed meanwhile (`--rm`): nothing is left to restart.
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(cio("writing", &path)(e)),
    }
}

/// Forgets the user's stop: a start by the user lets the policy act again.
pub fn clear_stopped_by_user(store: &Store, id: &str) -> Result<(), ContainerError> {
    let path = container_dir(store, id).join(STOPPED_BY_USER);
    match fs::remove_file(&path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(cio("removing", &path)(e)),
    }
}

/// Whether the user stopped the container `id`.
pub fn stopped_by_user(store: &Store, id: &str) -> bool {
    container_dir(store, id).join(STOPPED_BY_USER).exists()
}

/// After the process of a detached container exited with `code`: when its
/// policy restarts it, deletes the runtime's container but keeps the bundle
/// mounted, records `Restarting` and one more restart, and returns `true`;
/// else returns `false` and the caller finishes the container as usual. A
/// container in the foreground is never restarted here (docker's client
/// would detach from it; berth's foreground run ends with the process).
pub fn keep_for_restart(
    store: &Store,
    record: &ContainerRecord,
    started: i64,
    code: i32,
) -> Result<bool, ContainerError> {
    if !record.detached || record.restart_policy.is_none() {
        return Ok(false);
    }
    let dir = container_dir(store, &record.id);
    if !dir.join(super::RECORD_FILE).exists() {
        return Ok(false);
    }
    let _lock = super::lock(store, &record.id)?;
    let mut current = load(store, &record.id)?;
    if !resources::should_restart(
        current.restart_policy,
        code,
        current.restart_count,
        stopped_by_user(store, &record.id),
    ) {
        return Ok(false);
    }
    // A container already gone is what is wanted.
    let _ = runtime_of(store, &current).delete(&current.id, true);
    current.restart_count = current.restart_count.saturating_add(1);
    let me = std::process::id() as i32;
    current.state = State::Restarting {
        code,
        started,
        finished: super::now(),
        owner: (me, super::process_start(me).unwrap_or(0)),
    };
    super::save(store, &current)?;
    Ok(true)
}

/// What the monitor does after a run that [`keep_for_restart`] kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterBackoff {
    /// Run the container again.
    Restart,
    /// The user stopped it (or removed it) meanwhile; it is finished.
    Stopped,
}

/// Waits the restart delay `delay`, watching for the user's stop; a stop
/// finishes the container (exited, with the last run's code).
pub fn wait_backoff(
    store: &Store,
    id: &str,
    delay: Duration,
) -> Result<AfterBackoff, ContainerError> {
    let deadline = Instant::now() + delay;
    loop {
        let record = match load(store, id) {
            Ok(record) => record,
            Err(ContainerError::NotFound(_)) => return Ok(AfterBackoff::Stopped),
            Err(e) => return Err(e),
        };
        if stopped_by_user(store, id) {
            if let State::Restarting { code, started, .. } = record.state {
                finish(store, &record, started, code)?;
            }
            return Ok(AfterBackoff::Stopped);
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(AfterBackoff::Restart);
        }
        std::thread::sleep((deadline - now).min(Duration::from_millis(50)));
    }
}

/// Finishes a container left `Restarting` by a monitor that died (killed
/// between two runs): exited, with the last run's code. Returns the record
/// as it is now.
pub fn reconcile_restarting(
    store: &Store,
    record: ContainerRecord,
) -> Result<ContainerRecord, ContainerError> {
    let State::Restarting {
        code,
        started,
        owner: (pid, start),
        ..
    } = record.state
    else {
        return Ok(record);
    };
    if pid > 0 && super::process_start(pid) == Some(start) {
        return Ok(record);
    }
    tracing::warn!(container = %record.id, "the monitor of the restarting container is gone; cleaning up");
    finish(store, &record, started, code)?;
    load(store, &record.id)
}

/// How long `stop` waits for the monitor of a restarting container to
/// record its end.
const RESTARTING_GRACE: Duration = Duration::from_secs(5);

/// For `stop` of a container between two runs: waits for its monitor to see
/// the mark and finish it; finishes it itself if the monitor does not.
pub fn stop_restarting(store: &Store, id: &str) -> Result<(), ContainerError> {
    let deadline = Instant::now() + RESTARTING_GRACE;
    loop {
        let record = match load(store, id) {
            Ok(record) => record,
            Err(ContainerError::NotFound(_)) => return Ok(()),
            Err(e) => return Err(e),
        };
        match record.state {
            State::Restarting { code, started, .. } if Instant::now() >= deadline => {
                tracing::warn!(container = %id, "the monitor did not end the restarting container; cleaning up");
                return finish(store, &record, started, code);
            }
            State::Restarting { .. } => std::thread::sleep(Duration::from_millis(50)),
            _ => return Ok(()),
        }
    }
}

/// `berth update`: changes the limits and restart policy of the container
/// `wanted`, in the runtime when it runs (the runtime's `update`), and in
/// the record and the bundle's config so later starts keep them. Returns
/// the record as it is now.
pub fn update(
    store: &Store,
    wanted: &str,
    update: &Update,
) -> Result<ContainerRecord, ContainerError> {
    let found = find(store, wanted)?;
    let _lock = super::lock(store, &found.id)?;
    let mut record = load(store, &found.id)?;
    let new = resources::updated(&record.resources, update, Host::detect())?;
    if let Some(policy) = update.restart {
        if record.auto_remove && !policy.is_none() {
            return Err(LimitError::Rule(
                "Restart policy cannot be updated because AutoRemove is enabled for the container",
            )
            .into());
        }
        record.restart_policy = policy;
    }
    if record.is_running() {
        runtime_of(store, &record).update(&record.id, &resources::linux_resources(&new))?;
    }
    let config = container_dir(store, &record.id).join("config.json");
    let bytes = fs::read(&config).map_err(cio("reading", &config))?;
    let bytes = resources::apply_to_config(&bytes, &new)
        .map_err(|e| cio("rendering", &config)(io::Error::other(e)))?;
    atomic::write(&config, &bytes).map_err(cio("writing", &config))?;
    record.resources = new;
    super::save(store, &record)?;
    Ok(record)
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_store::Digest;
    use std::path::PathBuf;

    fn stored(store: &Store, policy: &str, detached: bool) -> ContainerRecord {
        let record = ContainerRecord {
            id: "c0ffee".repeat(10) + "abcd",
            image: "busybox".into(),
            image_digest: Digest::of(b"m"),
            name: "box".into(),
            command: vec!["sh".into()],
            created: 1,
            runtime: PathBuf::from("/bin/true"),
            auto_remove: false,
            stop_signal: None,
            detached,
            network: None,
            state: State::Created,
            ports: Vec::new(),
            resources: Default::default(),
            restart_policy: resources::parse_restart(policy).unwrap(),
            restart_count: 0,
        };
        fs::create_dir_all(container_dir(store, &record.id)).unwrap();
        super::super::save(store, &record).unwrap();
        record
    }

    #[test]
    fn only_a_detached_container_with_a_policy_is_kept_for_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let record = stored(&store, "on-failure:2", true);
        assert!(!keep_for_restart(&store, &record, 5, 0).unwrap());
        assert!(keep_for_restart(&store, &record, 5, 1).unwrap());
        assert!(keep_for_restart(&store, &record, 5, 1).unwrap());
        assert!(!keep_for_restart(&store, &record, 5, 1).unwrap());
        let now = load(&store, &record.id).unwrap();
        assert_eq!(now.restart_count, 2);
        assert!(matches!(
            now.state,
            State::Restarting {
                code: 1,
                started: 5,
                ..
            }
        ));

        let foreground = stored(&store, "always", false);
        assert!(!keep_for_restart(&store, &foreground, 5, 1).unwrap());
    }

    #[test]
    fn a_users_stop_is_never_undone() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let record = stored(&store, "always", true);
        mark_stopped_by_user(&store, &record.id).unwrap();
        assert!(!keep_for_restart(&store, &record, 5, 137).unwrap());
        clear_stopped_by_user(&store, &record.id).unwrap();
        assert!(keep_for_restart(&store, &record, 5, 137).unwrap());
        mark_stopped_by_user(&store, &record.id).unwrap();
        let waited = wait_backoff(&store, &record.id, Duration::from_secs(30)).unwrap();
        assert_eq!(waited, AfterBackoff::Stopped);
        assert!(matches!(
            load(&store, &record.id).unwrap().state,
            State::Exited { code: 137, .. }
        ));
        // A container removed meanwhile has nothing to mark.
        mark_stopped_by_user(&store, "gone").unwrap();
    }

    #[test]
    fn a_restarting_container_whose_monitor_died_is_finished() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut record = stored(&store, "always", true);
        assert!(keep_for_restart(&store, &record, 5, 2).unwrap());
        // Kept while its monitor (this process) lives.
        let kept = reconcile_restarting(&store, load(&store, &record.id).unwrap()).unwrap();
        assert!(matches!(kept.state, State::Restarting { .. }));
        record.state = State::Restarting {
            code: 2,
            started: 5,
            finished: 6,
            owner: (i32::MAX, 1),
        };
        super::super::save(&store, &record).unwrap();
        let now = reconcile_restarting(&store, record).unwrap();
        assert!(matches!(now.state, State::Exited { code: 2, .. }));
    }

    #[test]
    fn update_of_a_stopped_container_changes_record_and_bundle() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let record = stored(&store, "no", true);
        let config = container_dir(&store, &record.id).join("config.json");
        fs::write(
            &config,
            r#"{"ociVersion":"1.0.2","process":{"user":{"uid":0,"gid":0},"args":["sh"],"cwd":"/"},"linux":{}}"#,
        )
        .unwrap();
        let change = Update {
            memory: Some(256 << 20),
            pids_limit: Some(10),
            restart: Some(resources::parse_restart("always").unwrap()),
            ..Default::default()
        };
        let now = update(&store, "box", &change).unwrap();
        assert_eq!(now.resources.memory, 256 << 20);
        assert_eq!(now.restart_policy.to_string(), "always");
        let v: serde_json::Value = serde_json::from_slice(&fs::read(&config).unwrap()).unwrap();
        assert_eq!(v["linux"]["resources"]["memory"]["limit"], 256 << 20);
        assert_eq!(v["linux"]["resources"]["pids"]["limit"], 10);
        let mut removed_at_exit = load(&store, &record.id).unwrap();
        removed_at_exit.auto_remove = true;
        super::super::save(&store, &removed_at_exit).unwrap();
        let err = update(&store, "box", &change).unwrap_err().to_string();
        assert!(err.contains("AutoRemove is enabled"), "{err}");
        let too_small = Update {
            memory: Some(1024),
            ..Default::default()
        };
        assert!(
            update(&store, "box", &too_small)
                .unwrap_err()
                .to_string()
                .contains("Minimum memory limit allowed is 6MB")
        );
    }
}
