//! Containers that `berth run` starts: one record per container under the
//! store's `containers/<id>/`, beside the bundle it runs from.
//!
//! A container's directory holds `container.json` (the [`ContainerRecord`]),
//! the bundle (`config.json` and `rootfs`, an overlay of the image's layer
//! snapshots with the container's own `upper` and `work` directories), the
//! files bound over `/etc/hosts`, `/etc/hostname` and `/etc/resolv.conf`, the
//! runtime's state (`runtime/`) and its output (`container.log`, JSON lines
//! as Docker's json-file driver writes them), in the foreground too.
//!
//! The records are what `berth ps`, `stop`, `rm` and `logs` work on, and what
//! `berth rmi` consults to refuse removing an image a container still uses.
//!
//! Modules:
//! - [`runc`]: the typed client of the runc command line, the only way
//!   containers and `RUN` steps are run;
//! - [`executor`]: `RUN` steps in containers on an overlay of snapshots;
//! - [`exec`]: another command in a running container (`berth exec`);
//! - [`options`]: what `berth run` asks for, and Docker's rules for its flags;
//! - [`create`]: the record and the bundle from an image and those options;
//! - [`supervise`]: running a created container to its end, in the
//!   foreground or in a detached monitor process;
//! - [`commit`]: a container's changes as a new image (`berth commit`);
//! - [`console`]: the pseudo-terminal of `-t`;
//! - [`logfile`]: the log of a container's output;
//! - [`monitor`]: the process that owns a detached container;
//! - [`control`]: stopping and removing containers;
//! - [`lifecycle`]: docker's statuses and which command each allows;
//! - [`lookup`]: finding the command in the image, for Docker's exit codes;
//! - [`resources`]: resource limits and restart policies, docker's way;
//! - [`restart`]: the monitor's restart policy loop and `berth update`;
//! - [`stats`], [`top`]: a running container's resource use and processes;
//! - [`copy`]: `berth cp`, files out of and into a container, resolved in its root.

pub mod commit;
pub mod console;
pub mod control;
pub mod copy;
pub mod create;
pub mod exec;
pub mod executor;
pub mod lifecycle;
pub mod logfile;
pub mod lookup;
pub mod monitor;
pub mod names;
pub mod network;
pub mod options;
pub mod resources;
pub mod restart;
pub mod runc;
pub mod stats;
pub mod supervise;
pub mod top;

use berth_store::lock::{FileLock, LockMode};
use berth_store::{Digest, Store, StoreError, atomic, io_err};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// The file in a container's directory that holds its record.
pub const RECORD_FILE: &str = "container.json";

/// What berth remembers of a container it started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerRecord {
    /// The container id (also the runtime's id): 64 hex digits.
    pub id: String,
    /// The image name the user gave.
    pub image: String,
    /// The manifest digest of that image when the container was created.
    pub image_digest: Digest,
    /// The container's name, unique in the store.
    #[serde(default)]
    pub name: String,
    /// The command line the container runs.
    #[serde(default)]
    pub command: Vec<String>,
    /// When the container was created, in seconds since the epoch.
    #[serde(default)]
    pub created: i64,
    /// The runtime binary that runs it.
    #[serde(default)]
    pub runtime: PathBuf,
    /// Whether the container is removed when it exits (`--rm`).
    #[serde(default)]
    pub auto_remove: bool,
    /// The signal `berth stop` sends first (the image's `StopSignal`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    /// Whether a monitor process owns it (`-d`).
    #[serde(default)]
    pub detached: bool,
    /// The CNI network it joins (`--network bridge|NAME`) and its address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<network::attach::Endpoint>,
    /// Where it is in its life.
    #[serde(default)]
    pub state: State,
    /// The ports it publishes on the host (`-p`, `-P`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<network::ports::PortMapping>,
    /// The resource limits (`--memory`, `--cpus`, …), with docker's
    /// `HostConfig` names.
    #[serde(default)]
    pub resources: resources::Resources,
    /// `--restart` (docker's `HostConfig.RestartPolicy`).
    #[serde(default)]
    pub restart_policy: resources::RestartPolicy,
    /// How often the restart policy has restarted it (`RestartCount`).
    #[serde(default)]
    pub restart_count: u32,
}

/// A container's state.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum State {
    /// The bundle exists; the process has not started.
    #[default]
    Created,
    /// The process runs.
    Running {
        /// The container's init process, as the host sees it.
        pid: i32,
        /// Its start time (clock ticks after boot), so a reused pid is never
        /// mistaken for it.
        pid_start: u64,
        /// When it started, in seconds since the epoch.
        started: i64,
        /// The process that owns it (berth in the foreground, or the
        /// monitor) and its start time: it records the exit.
        #[serde(default)]
        owner: (i32, u64),
    },
    /// The process ended.
    Exited {
        /// The exit code (128 + N for a death by signal N).
        code: i32,
        /// When it started, in seconds since the epoch.
        started: i64,
        /// When it ended, in seconds since the epoch.
        finished: i64,
    },
    /// Its removal failed half-way: only `rm -f` helps.
    Dead {
        /// When it was marked dead, in seconds since the epoch.
        finished: i64,
    },
    /// It is being removed.
    Removing,
    /// The process ended and the restart policy starts it again after a
    /// delay (docker's "restarting").
    Restarting {
        /// The exit code of the run that ended.
        code: i32,
        /// When that run started, in seconds since the epoch.
        started: i64,
        /// When it ended, in seconds since the epoch.
        finished: i64,
        /// The monitor that restarts it, and its start time.
        #[serde(default)]
        owner: (i32, u64),
    },
}

/// Errors of container operations.
#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// An image operation failed.
    #[error(transparent)]
    Image(#[from] berth_store::image::ImageError),
    /// Setting up the bundle failed.
    #[error(transparent)]
    Exec(#[from] executor::ExecError),
    /// The container's runtime failed.
    #[error(transparent)]
    Runc(#[from] runc::RuncError),
    /// Its network could not be set up or torn down.
    #[error(transparent)]
    Network(#[from] network::NetworkError),
    /// A published port is invalid or taken.
    #[error(transparent)]
    Port(#[from] network::ports::PortError),
    /// Unpacking a layer failed.
    #[error(transparent)]
    Extract(#[from] berth_store::layer::extract::ExtractError),
    /// A filesystem or process operation failed.
    #[error("{action} {}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// No container has this id, id prefix or name.
    #[error("no such container: {0}")]
    NotFound(String),
    /// An id prefix matches more than one container.
    #[error("'{prefix}' matches {count} containers; give more of the id")]
    Ambiguous {
        /// The prefix.
        prefix: String,
        /// How many match.
        count: usize,
    },
    /// The name is taken.
    #[error(
        "the container name '{name}' is already in use by container {id}\nhint: remove that container (berth rm {name}) or choose another name"
    )]
    NameInUse {
        /// The name.
        name: String,
        /// The container holding it.
        id: String,
    },
    /// The name has characters Docker does not allow.
    #[error("invalid container name '{0}': only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")]
    InvalidName(String),
    /// A `-v` value does not parse.
    #[error("invalid volume specification '{spec}': {reason}")]
    InvalidVolume {
        /// The value.
        spec: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A `-v` host path does not exist.
    #[error("the host path {} of volume '{spec}' does not exist", path.display())]
    MissingHostPath {
        /// The value.
        spec: String,
        /// The host path.
        path: PathBuf,
    },
    /// An `-e` value is not `KEY=value` or `KEY`.
    #[error("invalid environment variable '{0}': the name must not be empty")]
    InvalidEnv(String),
    /// A line of an `--env-file` is not `KEY=value` or `KEY`.
    #[error("invalid line {line} of the env file {}: {reason}", path.display())]
    InvalidEnvFile {
        /// The file.
        path: PathBuf,
        /// The line number, from 1.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// The image has no command and none was given.
    #[error("no command given and image '{0}' has neither Entrypoint nor Cmd")]
    NoCommand(String),
    /// The image is not in the local store and fetching it failed.
    #[error("image '{image}' is not in the local store, and fetching it failed")]
    Fetch {
        /// The image reference.
        image: String,
        /// Why the fetch failed.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The container could not be started; `code` is the exit code Docker
    /// gives for it (125, or 126/127 when the command is not runnable).
    #[error("{message}")]
    Start {
        /// What went wrong, with the runtime's own message when there is one.
        message: String,
        /// The exit code.
        code: i32,
    },
    /// The container's status does not allow the command (docker's words).
    #[error(transparent)]
    Transition(#[from] lifecycle::TransitionError),
    /// A resource limit or restart policy docker refuses.
    #[error(transparent)]
    Limits(#[from] resources::LimitError),
    /// The container runs and `rm` was not forced.
    #[error(
        "container {0} is running\nhint: stop it first (berth stop), or force the removal with -f"
    )]
    Running(String),
}

/// Wraps an io error with the action and path.
pub(crate) fn cio(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> ContainerError {
    let path = path.to_path_buf();
    move |source| ContainerError::Io {
        action,
        path,
        source,
    }
}

/// The directory that holds every container's directory.
pub fn containers_dir(store: &Store) -> PathBuf {
    store.root().join("containers")
}

/// The directory of the container `id`.
pub fn container_dir(store: &Store, id: &str) -> PathBuf {
    containers_dir(store).join(id)
}

/// Every container record in the store; unreadable records are skipped with
/// a warning, since a half-written one belongs to a container being created.
pub fn list(store: &Store) -> Result<Vec<ContainerRecord>, StoreError> {
    let dir = containers_dir(store);
    let entries = match fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err("listing", &dir)(e)),
    };
    let mut records = Vec::new();
    for entry in entries {
        let entry = entry.map_err(io_err("listing", &dir))?;
        let path = entry.path().join(RECORD_FILE);
        match fs::read(&path) {
            Ok(bytes) => match serde_json::from_slice(&bytes) {
                Ok(record) => records.push(record),
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "skipping an unreadable container record")
                }
            },
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err("reading", &path)(e)),
        }
    }
    records.sort_by(|a: &ContainerRecord, b| a.id.cmp(&b.id));
    Ok(records)
}

/// The manifest digests of the images that containers in the store use.
pub fn images_in_use(store: &Store) -> Result<BTreeSet<Digest>, StoreError> {
    Ok(list(store)?.into_iter().map(|r| r.image_digest).collect())
}

/// The container records as a root source of the store's collector: every
/// container keeps its image, whatever its state, until it is removed.
#[derive(Debug, Clone, Copy, Default)]
pub struct ContainerRoots;

impl berth_store::collect::RootSource for ContainerRoots {
    fn held_images(
        &self,
        store: &Store,
    ) -> Result<Vec<berth_store::collect::HeldImage>, StoreError> {
        Ok(list(store)?
            .into_iter()
            .map(|r| berth_store::collect::HeldImage {
                digest: r.image_digest,
                holder: r.id.chars().take(12).collect(),
            })
            .collect())
    }
}

/// Reads the record of the container `id`.
pub fn load(store: &Store, id: &str) -> Result<ContainerRecord, ContainerError> {
    let path = container_dir(store, id).join(RECORD_FILE);
    let bytes = match fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(ContainerError::NotFound(id.to_string()));
        }
        Err(e) => return Err(cio("reading", &path)(e)),
    };
    serde_json::from_slice(&bytes).map_err(|source| StoreError::Corrupt { path, source }.into())
}

/// Writes a record atomically into its container's directory.
pub fn save(store: &Store, record: &ContainerRecord) -> Result<(), ContainerError> {
    let path = container_dir(store, &record.id).join(RECORD_FILE);
    let bytes = serde_json::to_vec_pretty(record)
        .map_err(|e| cio("rendering", &path)(io::Error::other(e)))?;
    atomic::write(&path, &bytes).map_err(cio("writing", &path))
}

/// Finds the container a user means: the full id, the name, or a unique id
/// prefix (as Docker resolves them, in that order).
pub fn find(store: &Store, wanted: &str) -> Result<ContainerRecord, ContainerError> {
    let records = list(store)?;
    if let Some(r) = records.iter().find(|r| r.id == wanted || r.name == wanted) {
        return Ok(r.clone());
    }
    let matching: Vec<&ContainerRecord> = records
        .iter()
        .filter(|r| !wanted.is_empty() && r.id.starts_with(wanted))
        .collect();
    match matching.as_slice() {
        [one] => Ok((*one).clone()),
        [] => Err(ContainerError::NotFound(wanted.to_string())),
        many => Err(ContainerError::Ambiguous {
            prefix: wanted.to_string(),
            count: many.len(),
        }),
    }
}

/// Takes the lock that serialises changes to one container (its state
/// transitions, its cleanup, its removal).
pub fn lock(store: &Store, id: &str) -> Result<FileLock, ContainerError> {
    let path = container_dir(store, id).join("lock");
    FileLock::acquire(&path, LockMode::Exclusive).map_err(cio("locking", &path))
}

/// The store-wide lock held while a name is checked and claimed.
pub(crate) fn names_lock(store: &Store) -> Result<FileLock, ContainerError> {
    let path = store.lock_path("containers");
    FileLock::acquire(&path, LockMode::Exclusive).map_err(cio("locking", &path))
}

/// Seconds since the epoch.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The start time of a process (field 22 of `/proc/PID/stat`), or `None` if
/// there is no such process or it has ended (a zombie nobody reaped yet).
pub fn process_start(pid: i32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses; fields follow the last ')'.
    let mut fields = stat.get(stat.rfind(')')? + 1..)?.split_whitespace();
    if matches!(fields.next(), Some("Z" | "X" | "x")) {
        return None;
    }
    fields.nth(18)?.parse().ok()
}

impl ContainerRecord {
    /// Whether the container's process still runs: the state says so and
    /// the same process (pid and start time) is alive.
    pub fn is_running(&self) -> bool {
        match self.state {
            State::Running { pid, pid_start, .. } => process_start(pid) == Some(pid_start),
            _ => false,
        }
    }

    /// Whether the process that owns the container (and records its exit)
    /// still runs.
    pub fn owner_alive(&self) -> bool {
        match self.state {
            State::Running {
                owner: (pid, start),
                ..
            } => pid > 0 && process_start(pid) == Some(start),
            _ => false,
        }
    }

    /// The first 12 digits of the id, as `ps` shows it.
    pub fn short_id(&self) -> &str {
        self.id.get(..12).unwrap_or(&self.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str, name: &str) -> ContainerRecord {
        ContainerRecord {
            id: id.to_string(),
            image: "busybox".into(),
            image_digest: Digest::of(b"manifest"),
            name: name.to_string(),
            command: vec!["sh".into()],
            created: 1,
            runtime: PathBuf::from("runc"),
            auto_remove: false,
            stop_signal: None,
            detached: false,
            network: None,
            state: State::Created,
            ports: Vec::new(),
            resources: Default::default(),
            restart_policy: Default::default(),
            restart_count: 0,
        }
    }

    #[test]
    fn find_takes_ids_names_and_unique_prefixes() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        for r in [record("abc123", "web"), record("abd456", "db")] {
            fs::create_dir_all(container_dir(&store, &r.id)).unwrap();
            save(&store, &r).unwrap();
        }
        assert_eq!(find(&store, "abc123").unwrap().name, "web");
        assert_eq!(find(&store, "db").unwrap().id, "abd456");
        assert_eq!(find(&store, "abc").unwrap().id, "abc123");
        assert!(matches!(
            find(&store, "ab"),
            Err(ContainerError::Ambiguous { count: 2, .. })
        ));
        assert!(matches!(
            find(&store, "zzz"),
            Err(ContainerError::NotFound(_))
        ));
        assert!(matches!(find(&store, ""), Err(ContainerError::NotFound(_))));
        assert_eq!(images_in_use(&store).unwrap().len(), 1);
    }

    #[test]
    fn a_minimal_record_still_reads() {
        let text = format!(
            r#"{{"id":"x","image":"i","image_digest":"{}"}}"#,
            Digest::of(b"m")
        );
        let r: ContainerRecord = serde_json::from_str(&text).unwrap();
        assert_eq!(r.state, State::Created);
    }

    #[test]
    fn running_means_the_same_process_is_alive() {
        let me = std::process::id() as i32;
        let start = process_start(me).unwrap();
        let mut r = record("a", "b");
        r.state = State::Running {
            pid: me,
            pid_start: start,
            started: 0,
            owner: (me, start),
        };
        assert!(r.is_running());
        assert!(r.owner_alive());
        r.state = State::Running {
            pid: me,
            pid_start: start + 1,
            started: 0,
            owner: (0, 0),
        };
        assert!(!r.is_running());
        assert!(!r.owner_alive());
    }
}
