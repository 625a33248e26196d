//! A container's life as docker tells it: the seven statuses `docker ps`
//! and `inspect` show, which lifecycle command each status allows, and
//! docker's own words when it does not.
//!
//! The status of a running container is read where it lives: the record
//! says the process was started, the process table whether it still runs,
//! and the freezer of its cgroup whether it is paused (also when it was
//! paused through the runtime directly, behind berth's back).

use super::{ContainerError, ContainerRecord, State, cio, container_dir};
use crate::executor::{ExecError, mount};
use berth_store::{Store, StoreError, tmp};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// Docker's container statuses (`State.Status`, `ps --filter status=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    /// Made, never started (or reset for a new start).
    Created,
    /// Its process runs.
    Running,
    /// Its processes are frozen.
    Paused,
    /// Its restart policy is bringing it back.
    Restarting,
    /// Its process ended.
    Exited,
    /// Its removal failed half-way; only `rm -f` helps.
    Dead,
    /// It is being removed.
    Removing,
}

impl Status {
    /// Every status, in docker's order.
    pub const ALL: [Status; 7] = [
        Status::Created,
        Status::Running,
        Status::Paused,
        Status::Restarting,
        Status::Exited,
        Status::Dead,
        Status::Removing,
    ];

    /// The lowercase name docker prints and filters on.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Restarting => "restarting",
            Status::Exited => "exited",
            Status::Dead => "dead",
            Status::Removing => "removing",
        }
    }

    /// The status named `name`, as `--filter status=` takes it.
    pub fn parse(name: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl State {
    /// The docker status of this state, given whether its process is still
    /// alive and whether its cgroup is frozen. A `Running` state whose
    /// process is gone counts as exited: its owner is recording the exit.
    pub fn status(&self, alive: bool, frozen: bool) -> Status {
        match self {
            State::Created => Status::Created,
            State::Running { .. } if alive && frozen => Status::Paused,
            State::Running { .. } if alive => Status::Running,
            State::Running { .. } | State::Exited { .. } => Status::Exited,
            State::Dead { .. } => Status::Dead,
            State::Removing => Status::Removing,
            State::Restarting { .. } => Status::Restarting,
        }
    }
}

impl ContainerRecord {
    /// The container's docker status now: the process table and the
    /// freezer are read, so a container paused through the runtime shows
    /// paused.
    pub fn status(&self) -> Status {
        let alive = self.is_running();
        let frozen = match self.state {
            State::Running { pid, .. } if alive => is_frozen(pid),
            _ => false,
        };
        self.state.status(alive, frozen)
    }
}

/// Whether the cgroup of process `pid` is frozen: cgroup v1's
/// `freezer.state` (FROZEN, or FREEZING on its way there), or v2's
/// `cgroup.events` (`frozen 1`), on a v1, hybrid or v2 host.
pub fn is_frozen(pid: i32) -> bool {
    let Ok(cgroups) = fs::read_to_string(format!("/proc/{pid}/cgroup")) else {
        return false;
    };
    frozen_in(&cgroups, Path::new("/sys/fs/cgroup"))
}

/// [`is_frozen`] over the text of `/proc/PID/cgroup`, with the cgroup
/// filesystem mounted at `base`.
fn frozen_in(cgroups: &str, base: &Path) -> bool {
    for line in cgroups.lines() {
        let mut fields = line.splitn(3, ':');
        let (Some(_), Some(controllers), Some(path)) =
            (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        let relative = path.trim_start_matches('/');
        if controllers.split(',').any(|c| c == "freezer") {
            let state =
                fs::read_to_string(base.join("freezer").join(relative).join("freezer.state"));
            if let Ok(state) = state
                && matches!(state.trim(), "FROZEN" | "FREEZING")
            {
                return true;
            }
        } else if controllers.is_empty() {
            // The v2 hierarchy: at the root of a v2 host, under `unified` on a hybrid one.
            for root in [base.to_path_buf(), base.join("unified")] {
                if let Ok(events) = fs::read_to_string(root.join(relative).join("cgroup.events"))
                    && events.lines().any(|l| l.trim() == "frozen 1")
                {
                    return true;
                }
            }
        }
    }
    false
}

/// The file in a container's directory that lists its root filesystem's
/// lower directories (the image's layer snapshots, topmost first), so an
/// exited container's root filesystem can be mounted again for `start`.
pub const LOWERS_FILE: &str = "lowers.json";

/// Remembers the lower directories of the container in `dir`.
pub(crate) fn save_lowers(dir: &Path, lowers: &[PathBuf]) -> Result<(), ContainerError> {
    let path = dir.join(LOWERS_FILE);
    let text =
        serde_json::to_vec(lowers).map_err(|e| cio("rendering", &path)(io::Error::other(e)))?;
    fs::write(&path, text).map_err(cio("writing", &path))
}

/// Mounts the root filesystem of a container that exited (its owner
/// unmounted it) again: the same lowers, its own upper directory, so what
/// it wrote is still there.
pub(crate) fn remount_rootfs(
    store: &Store,
    record: &ContainerRecord,
) -> Result<(), ContainerError> {
    let dir = container_dir(store, &record.id);
    let path = dir.join(LOWERS_FILE);
    let bytes = fs::read(&path).map_err(cio("reading", &path))?;
    let lowers: Vec<PathBuf> =
        serde_json::from_slice(&bytes).map_err(|source| StoreError::Corrupt {
            path: path.clone(),
            source,
        })?;
    // Whatever an owner left mounted goes first, so mounts never stack.
    tmp::unmount_under(&dir);
    let rootfs = dir.join("rootfs");
    mount::mount_overlay(
        &rootfs,
        &lowers,
        Some((&dir.join("upper"), &dir.join("work"))),
    )
    .map_err(|source| ExecError::Mount {
        path: rootfs,
        source,
    })?;
    Ok(())
}

/// Whether the container's root filesystem is mounted: a mount point is on
/// another device than the directory holding it.
pub(crate) fn rootfs_mounted(store: &Store, record: &ContainerRecord) -> bool {
    use std::os::unix::fs::MetadataExt;
    let dir = container_dir(store, &record.id);
    match (fs::metadata(&dir), fs::metadata(dir.join("rootfs"))) {
        (Ok(parent), Ok(rootfs)) => parent.dev() != rootfs.dev(),
        _ => false,
    }
}

/// Puts a container whose `start` failed back as it was: its root
/// filesystem unmounted and its record in its state before the attempt.
pub(crate) fn restore_after_failed_start(store: &Store, id: &str, state: &State) {
    tmp::unmount_under(&container_dir(store, id));
    if let Ok(mut record) = super::load(store, id) {
        record.state = state.clone();
        if let Err(e) = super::save(store, &record) {
            tracing::warn!(container = id, error = %e, "restoring the record after a failed start");
        }
    }
}

/// Whether the container's bundle gives its process a terminal (`-t`).
pub fn has_terminal(store: &Store, record: &ContainerRecord) -> bool {
    let path = container_dir(store, &record.id).join("config.json");
    fs::read(path)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
        .and_then(|config| config["process"]["terminal"].as_bool())
        .unwrap_or(false)
}

/// The bytes the regular files under `root` hold, walked without following
/// symlinks and without recursion (a container's tree may be deep).
pub fn tree_size(root: &Path) -> u64 {
    let mut total = 0;
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(meta) = entry.metadata() else {
                continue;
            };
            if meta.is_dir() {
                pending.push(entry.path());
            } else if meta.is_file() {
                total += meta.len();
            }
        }
    }
    total
}

/// A lifecycle command, as the transition table knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// `start`.
    Start,
    /// `stop`.
    Stop,
    /// `restart`.
    Restart,
    /// `kill`.
    Kill,
    /// `pause`.
    Pause,
    /// `unpause`.
    Unpause,
    /// `rm`, forced or not.
    Remove {
        /// `-f`.
        force: bool,
    },
    /// `attach`.
    Attach,
    /// `exec`.
    Exec,
    /// `wait`.
    Wait,
}

/// What the table allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Allowed {
    /// Do it.
    Proceed,
    /// Nothing to do, and no error: docker's `stop` of a stopped container
    /// and `start` of a running one succeed quietly.
    AlreadyDone,
}

/// A command the container's status does not allow, in docker's words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    /// `pause` and `exec` of a container that does not run.
    #[error("Container {id} is not running")]
    NotRunning {
        /// The container's id.
        id: String,
    },
    /// `pause` of a paused container.
    #[error("Container {id} is already paused")]
    AlreadyPaused {
        /// The container's id.
        id: String,
    },
    /// `unpause` of a container that is not paused.
    #[error("Container {id} is not paused")]
    NotPaused {
        /// The container's id.
        id: String,
    },
    /// A command that waits for a restarting container to run.
    #[error("Container {id} is restarting, wait until the container is running")]
    Restarting {
        /// The container's id.
        id: String,
    },
    /// `exec` in a paused container.
    #[error("Container {id} is paused, unpause the container before exec")]
    ExecPaused {
        /// The container's id.
        id: String,
    },
    /// `start` of a paused container.
    #[error("cannot start a paused container, try unpause instead")]
    StartPaused,
    /// `start` or `restart` of a dead or departing container.
    #[error("container is marked for removal and cannot be started")]
    MarkedForRemoval,
    /// `kill` of a container that does not run.
    #[error("Cannot kill container: {name}: Container {id} is not running")]
    KillNotRunning {
        /// What the user called it.
        name: String,
        /// The container's id.
        id: String,
    },
    /// `attach` to a container that does not run.
    #[error("You cannot attach to a stopped container, start it first")]
    AttachStopped,
    /// `attach` to a paused container.
    #[error("You cannot attach to a paused container, unpause it first")]
    AttachPaused,
    /// `rm` without `-f` of a container that runs.
    #[error("cannot remove container \"/{name}\": container is {status}: {procedure}")]
    RemoveActive {
        /// The container's name.
        name: String,
        /// Its status.
        status: Status,
        /// What to do first, as docker says it.
        procedure: &'static str,
    },
    /// `rm` of a container being removed.
    #[error("removal of container {id} is already in progress")]
    RemovalInProgress {
        /// The container's id.
        id: String,
    },
}

/// Whether `action` is allowed on a container in `status`; the error is
/// docker's for the pair. `id` is the container's full id, `name` its name.
pub fn check(
    action: Action,
    status: Status,
    id: &str,
    name: &str,
) -> Result<Allowed, TransitionError> {
    use Action as A;
    use Allowed::{AlreadyDone, Proceed};
    use Status as S;
    let id = || id.to_string();
    match (action, status) {
        (A::Wait, _) => Ok(Proceed),
        (A::Start, S::Created | S::Exited) => Ok(Proceed),
        (A::Start, S::Running | S::Restarting) => Ok(AlreadyDone),
        (A::Start, S::Paused) => Err(TransitionError::StartPaused),
        (A::Start | A::Restart, S::Dead | S::Removing) => Err(TransitionError::MarkedForRemoval),
        (A::Restart, _) => Ok(Proceed),
        (A::Stop, S::Running | S::Paused | S::Restarting) => Ok(Proceed),
        (A::Stop, _) => Ok(AlreadyDone),
        (A::Kill, S::Running | S::Paused | S::Restarting) => Ok(Proceed),
        (A::Kill, _) => Err(TransitionError::KillNotRunning {
            name: name.to_string(),
            id: id(),
        }),
        (A::Pause, S::Running) => Ok(Proceed),
        (A::Pause, S::Paused) => Err(TransitionError::AlreadyPaused { id: id() }),
        (A::Pause, S::Restarting) => Err(TransitionError::Restarting { id: id() }),
        (A::Pause, _) => Err(TransitionError::NotRunning { id: id() }),
        (A::Unpause, S::Paused) => Ok(Proceed),
        (A::Unpause, _) => Err(TransitionError::NotPaused { id: id() }),
        (A::Exec, S::Running) => Ok(Proceed),
        (A::Exec, S::Paused) => Err(TransitionError::ExecPaused { id: id() }),
        (A::Exec, S::Restarting) => Err(TransitionError::Restarting { id: id() }),
        (A::Exec, _) => Err(TransitionError::NotRunning { id: id() }),
        (A::Attach, S::Running) => Ok(Proceed),
        (A::Attach, S::Paused) => Err(TransitionError::AttachPaused),
        (A::Attach, S::Restarting) => Err(TransitionError::Restarting { id: id() }),
        (A::Attach, _) => Err(TransitionError::AttachStopped),
        (A::Remove { .. }, S::Removing) => Err(TransitionError::RemovalInProgress { id: id() }),
        (A::Remove { force: true }, _) => Ok(Proceed),
        (A::Remove { force: false }, S::Created | S::Exited | S::Dead) => Ok(Proceed),
        (A::Remove { force: false }, S::Paused) => Err(TransitionError::RemoveActive {
            name: name.to_string(),
            status,
            procedure: "unpause and then stop the container before attempting removal or force remove",
        }),
        (A::Remove { force: false }, S::Running | S::Restarting) => {
            Err(TransitionError::RemoveActive {
                name: name.to_string(),
                status,
                procedure: "stop the container before removing or force remove",
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "0123456789ab";

    /// The expected outcome of one pair: `Ok` of what is allowed, or `Err`
    /// of docker's message.
    type Expected = Result<Allowed, &'static str>;

    fn expected(action: Action, status: Status) -> Expected {
        use Action as A;
        use Allowed::{AlreadyDone as Done, Proceed as Go};
        use Status as S;
        let not_running = "Container 0123456789ab is not running";
        let restarting =
            "Container 0123456789ab is restarting, wait until the container is running";
        let marked = "container is marked for removal and cannot be started";
        let in_progress = "removal of container 0123456789ab is already in progress";
        let kill = "Cannot kill container: web: Container 0123456789ab is not running";
        match (action, status) {
            (A::Wait, _) => Ok(Go),
            (A::Start, S::Created | S::Exited) => Ok(Go),
            (A::Start, S::Running | S::Restarting) => Ok(Done),
            (A::Start, S::Paused) => Err("cannot start a paused container, try unpause instead"),
            (A::Start, S::Dead | S::Removing) => Err(marked),
            (A::Restart, S::Dead | S::Removing) => Err(marked),
            (A::Restart, _) => Ok(Go),
            (A::Stop, S::Running | S::Paused | S::Restarting) => Ok(Go),
            (A::Stop, S::Created | S::Exited | S::Dead | S::Removing) => Ok(Done),
            (A::Kill, S::Running | S::Paused | S::Restarting) => Ok(Go),
            (A::Kill, S::Created | S::Exited | S::Dead | S::Removing) => Err(kill),
            (A::Pause, S::Running) => Ok(Go),
            (A::Pause, S::Paused) => Err("Container 0123456789ab is already paused"),
            (A::Pause, S::Restarting) => Err(restarting),
            (A::Pause, S::Created | S::Exited | S::Dead | S::Removing) => Err(not_running),
            (A::Unpause, S::Paused) => Ok(Go),
            (A::Unpause, _) => Err("Container 0123456789ab is not paused"),
            (A::Exec, S::Running) => Ok(Go),
            (A::Exec, S::Paused) => {
                Err("Container 0123456789ab is paused, unpause the container before exec")
            }
            (A::Exec, S::Restarting) => Err(restarting),
            (A::Exec, S::Created | S::Exited | S::Dead | S::Removing) => Err(not_running),
            (A::Attach, S::Running) => Ok(Go),
            (A::Attach, S::Paused) => {
                Err("You cannot attach to a paused container, unpause it first")
            }
            (A::Attach, S::Restarting) => Err(restarting),
            (A::Attach, S::Created | S::Exited | S::Dead | S::Removing) => {
                Err("You cannot attach to a stopped container, start it first")
            }
            (A::Remove { .. }, S::Removing) => Err(in_progress),
            (A::Remove { force: true }, _) => Ok(Go),
            (A::Remove { force: false }, S::Created | S::Exited | S::Dead) => Ok(Go),
            (A::Remove { force: false }, S::Running) => Err(
                "cannot remove container \"/web\": container is running: stop the container before removing or force remove",
            ),
            (A::Remove { force: false }, S::Restarting) => Err(
                "cannot remove container \"/web\": container is restarting: stop the container before removing or force remove",
            ),
            (A::Remove { force: false }, S::Paused) => Err(
                "cannot remove container \"/web\": container is paused: unpause and then stop the container before attempting removal or force remove",
            ),
        }
    }

    #[test]
    fn every_action_and_status_pair_gets_dockers_answer() {
        let actions = [
            Action::Start,
            Action::Stop,
            Action::Restart,
            Action::Kill,
            Action::Pause,
            Action::Unpause,
            Action::Remove { force: false },
            Action::Remove { force: true },
            Action::Attach,
            Action::Exec,
            Action::Wait,
        ];
        for action in actions {
            for status in Status::ALL {
                let got = check(action, status, ID, "web").map_err(|e| e.to_string());
                let want = expected(action, status).map_err(str::to_string);
                assert_eq!(got, want, "{action:?} on a {status} container");
            }
        }
    }

    #[test]
    fn statuses_parse_from_their_names() {
        for status in Status::ALL {
            assert_eq!(Status::parse(status.as_str()), Some(status));
        }
        assert_eq!(Status::parse("up"), None);
        assert_eq!(Status::parse("Running"), None);
    }

    #[test]
    fn states_map_to_dockers_statuses() {
        let running = State::Running {
            pid: 1,
            pid_start: 1,
            started: 0,
            owner: (0, 0),
        };
        let exited = State::Exited {
            code: 0,
            started: 0,
            finished: 0,
        };
        for (state, alive, frozen, want) in [
            (State::Created, false, false, Status::Created),
            (running.clone(), true, false, Status::Running),
            (running.clone(), true, true, Status::Paused),
            (running.clone(), false, true, Status::Exited),
            (running, false, false, Status::Exited),
            (exited, false, false, Status::Exited),
            (State::Dead { finished: 0 }, false, false, Status::Dead),
            (State::Removing, false, false, Status::Removing),
        ] {
            assert_eq!(state.status(alive, frozen), want, "{state:?}");
        }
    }

    #[test]
    fn the_freezer_is_read_on_v1_hybrid_and_v2_hosts() {
        let base = tempfile::tempdir().unwrap();
        let b = base.path();
        let write = |path: &str, text: &str| {
            let file = b.join(path);
            fs::create_dir_all(file.parent().unwrap()).unwrap();
            fs::write(file, text).unwrap();
        };
        write("freezer/berth/a/freezer.state", "FROZEN\n");
        write("freezer/berth/b/freezer.state", "THAWED\n");
        write("unified/berth/c/cgroup.events", "populated 1\nfrozen 1\n");
        write("berth/d/cgroup.events", "populated 1\nfrozen 1\n");
        write("berth/e/cgroup.events", "populated 1\nfrozen 0\n");
        for (cgroups, want) in [
            ("7:freezer:/berth/a\n0::/berth/x\n", true),
            ("7:freezer:/berth/b\n0::/berth/x\n", false),
            ("7:freezer:/berth/z\n0::/berth/c\n", true),
            ("0::/berth/d\n", true),
            ("0::/berth/e\n", false),
            ("0::/../../etc\n", false),
            ("garbage\n", false),
            ("", false),
        ] {
            assert_eq!(frozen_in(cgroups, b), want, "{cgroups:?}");
        }
    }
}
