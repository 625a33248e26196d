//! The container lifecycle: create, start, run, state, kill, delete, list,
//! pause and resume, on the state kept under one root directory.

use crate::error::{Error, Result};
use crate::idlock::IdLock;
use crate::state::{self, State, status_name};
use crate::terminal::{self, ConsoleSocket};
use crate::{foreground, signal};
use libcontainer::container::builder::ContainerBuilder;
use libcontainer::container::state::StateError;
use libcontainer::container::{Container, ContainerStatus};
use libcontainer::error::LibcontainerError;
use libcontainer::syscall::syscall::SyscallType;
use oci_spec::runtime::Spec;
use std::path::{Path, PathBuf};

/// The runtime bound to one state root (`--root`).
#[derive(Debug, Clone)]
pub struct Runtime {
    root: PathBuf,
    systemd_cgroup: bool,
}

/// How `create` and `run` set up a container.
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    /// The bundle directory holding `config.json`.
    pub bundle: PathBuf,
    /// Where to write the init process id.
    pub pid_file: Option<PathBuf>,
    /// The unix socket that receives the pty master when `process.terminal` is set.
    pub console_socket: Option<PathBuf>,
    /// A unix socket that receives a pidfd of the init process once it exists.
    pub pidfd_socket: Option<PathBuf>,
    /// Use `MS_MOVE` and `chroot` instead of `pivot_root` (for rootfs on ramfs).
    pub no_pivot: bool,
    /// Keep the caller's session keyring instead of joining a new one.
    pub no_new_keyring: bool,
    /// Pass this many file descriptors after stdio (3, 4, ...) to the process.
    pub preserve_fds: i32,
}

impl Runtime {
    /// A runtime keeping container state under `root`, which is created on first use.
    pub fn new(root: impl Into<PathBuf>, systemd_cgroup: bool) -> Runtime {
        Runtime {
            root: root.into(),
            systemd_cgroup,
        }
    }

    /// The state root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The state directory of a container.
    pub fn container_dir(&self, id: &str) -> PathBuf {
        self.root.join(id)
    }

    /// Creates a container from a bundle: the init process is set up and
    /// waits for `start`. On failure nothing of the container is left: no state
    /// directory and no cgroup.
    pub fn create(&self, id: &str, options: &CreateOptions) -> Result<Container> {
        self.create_with(id, options, true)
            .map(|(container, _)| container)
    }

    /// Creates a container; attached (`detached` false), a process that
    /// wants a terminal but has no console socket gets the caller's terminal
    /// through a console socket of the runtime's own, returned here.
    fn create_with(
        &self,
        id: &str,
        options: &CreateOptions,
        detached: bool,
    ) -> Result<(Container, Option<ConsoleSocket>)> {
        validate_id(id)?;
        // Held until the container exists or its remains are gone, so that a
        // concurrent create of the id finds it taken (see `idlock`).
        let lock = IdLock::acquire(&self.root, id)?;
        let created = self.create_locked(id, options, detached);
        match &created {
            Ok(_) => drop(lock),
            // An existing container keeps its lock file; a failed create
            // leaves no container, so none.
            Err(Error::AlreadyExists { .. }) => drop(lock),
            Err(_) => lock.remove(),
        }
        created
    }

    /// [`Runtime::create_with`] once the id is locked.
    fn create_locked(
        &self,
        id: &str,
        options: &CreateOptions,
        detached: bool,
    ) -> Result<(Container, Option<ConsoleSocket>)> {
        let dir = self.container_dir(id);
        if dir.exists() {
            return Err(Error::AlreadyExists { id: id.to_owned() });
        }
        // The intermediate process joins the container's cgroup in a few
        // milliseconds; start the kernel's wait for that now.
        let warmup = crate::migration::start(self.systemd_cgroup);
        let (bundle, spec) = check_bundle(&options.bundle)?;
        let terminal = spec
            .process()
            .as_ref()
            .and_then(|p| p.terminal())
            .unwrap_or(false);
        let mut console = None;
        if terminal && options.console_socket.is_none() {
            if detached || !terminal::stdin_is_terminal() {
                return Err(Error::Bundle {
                    path: bundle.join("config.json"),
                    reason: NO_CONSOLE_SOCKET.into(),
                });
            }
            console = Some(ConsoleSocket::listen(&self.root, id)?);
        }
        let console_socket = console
            .as_ref()
            .map(|c| c.path().to_owned())
            .or_else(|| options.console_socket.clone());
        let built = ContainerBuilder::new(id.to_owned(), SyscallType::default())
            .with_executor(crate::executor::RuncExecutor::for_init(
                id,
                !options.no_new_keyring,
            ))
            .with_pid_file(options.pid_file.as_ref())
            .and_then(|b| b.with_root_path(&self.root))
            .map(|b| {
                b.with_console_socket(console_socket.as_ref())
                    .with_preserved_fds(options.preserve_fds)
            })
            .and_then(|b| {
                b.as_init(&bundle)
                    .with_systemd(self.systemd_cgroup)
                    // libcontainer hands the pty to a console socket only
                    // when "detached"; the flag changes nothing else.
                    .with_detach(detached || console.is_some())
                    .with_no_pivot(options.no_pivot)
                    .build()
            });
        // The helper thread is long done; join it so that this process is
        // single-threaded again for the cgroup remount.
        drop(warmup);
        match built {
            Ok(mut container) => {
                if let Err(err) = readonly_cgroups(&container, &spec) {
                    if let Err(cleanup) = container.delete(true) {
                        tracing::warn!(id, err = %crate::error::chain(&cleanup), "deleting a container whose cgroups stayed writable");
                    }
                    return Err(err);
                }
                if let Err(err) = send_pidfd(&container, options.pidfd_socket.as_deref()) {
                    if let Err(cleanup) = container.delete(true) {
                        tracing::warn!(id, err = %crate::error::chain(&cleanup), "deleting a container whose pidfd could not be sent");
                    }
                    return Err(err);
                }
                Ok((container, console))
            }
            Err(source) => {
                if let Some(console) = console {
                    console.abandon();
                }
                // libcontainer removes what it made once the process was
                // spawned, but not a state directory it made before failing
                // earlier (console socket, rootfs, config). The directory did
                // not exist when this call began, so it is ours to remove.
                if dir.exists()
                    && let Err(err) = std::fs::remove_dir_all(&dir)
                {
                    tracing::warn!(dir = %dir.display(), %err, "removing the state of a failed create");
                }
                Err(Error::container("creating", id, source))
            }
        }
    }

    /// Starts the user process of a created container.
    pub fn start(&self, id: &str) -> Result<()> {
        let mut container = self.load(id)?;
        match container.status() {
            ContainerStatus::Created => {}
            ContainerStatus::Stopped => {
                return Err(Error::WrongStatus {
                    action: "start",
                    id: id.to_owned(),
                    status: "stopped".into(),
                    hint: "; a stopped container cannot be started again, create a new one",
                });
            }
            other => {
                return Err(Error::WrongStatus {
                    action: "start",
                    id: id.to_owned(),
                    status: status_name(other).into(),
                    hint: "; only a created container can be started",
                });
            }
        }
        container
            .start()
            .map_err(|source| Error::container("starting", id, source))
    }

    /// Creates and starts a container. Detached, it returns once the process
    /// runs, with 0. Attached, it forwards signals to the process, waits for it,
    /// deletes the container unless `keep` is set, and returns its exit code
    /// (128 + the signal number when a signal killed it).
    pub fn run(&self, id: &str, options: &CreateOptions, detach: bool, keep: bool) -> Result<i32> {
        let (mut container, console) = self.create_with(id, options, detach)?;
        // Signals are blocked before any terminal thread starts, so that
        // every signal is left for forwarding to the container.
        let proxy = match console {
            Some(console) => {
                let master = nix::sys::signal::SigSet::all()
                    .thread_block()
                    .map_err(|source| Error::Sys {
                        action: "blocking signals before bridging the terminal",
                        source,
                    })
                    .and_then(|()| console.master())
                    .and_then(terminal::Proxy::start);
                match master {
                    Ok(proxy) => Some(proxy),
                    Err(err) => {
                        self.delete_failed_run(
                            &mut container,
                            id,
                            "deleting a container whose terminal failed",
                        );
                        return Err(err);
                    }
                }
            }
            None => None,
        };
        if let Err(err) = container.start() {
            // A container that cannot start is of no use to anyone: remove it
            // as runc does, so a failed run leaves nothing behind.
            self.delete_failed_run(
                &mut container,
                id,
                "deleting a container that failed to start",
            );
            return Err(Error::container("starting", id, err));
        }
        if detach {
            return Ok(0);
        }
        let pid = container.pid().ok_or_else(|| Error::NotRunning {
            id: id.to_owned(),
            status: "without an init process".into(),
        })?;
        let status = foreground::wait_forwarding_signals(pid, &|| {
            if let Some(proxy) = &proxy {
                proxy.resize();
            }
        });
        if let Some(proxy) = proxy {
            proxy.finish();
        }
        if !keep {
            // The caller may have removed the whole state root meanwhile
            // (a build cancelling its step): then nothing is left to delete.
            let deleted = IdLock::acquire_existing(&self.root, id).and_then(|lock| match lock {
                Some(lock) => delete_container(&mut container, id, true).map(|()| Some(lock)),
                None => Ok(None),
            });
            match deleted {
                Ok(lock) => lock.into_iter().for_each(IdLock::remove),
                // The exit status of the workload matters more than a failed
                // cleanup; runc logs it too and keeps the status.
                Err(err) => {
                    tracing::error!(id, err = %crate::error::chain(&err), "deleting the container after it exited");
                }
            }
        }
        status
    }

    /// Deletes a container `run` cannot go on with, and its lock file; a
    /// failure is logged under `what`, since the run's own error matters more.
    fn delete_failed_run(&self, container: &mut Container, id: &str, what: &str) {
        let deleted = IdLock::acquire_existing(&self.root, id).and_then(|lock| match lock {
            Some(lock) => container
                .delete(true)
                .map_err(|source| Error::container("deleting", id, source))
                .map(|()| Some(lock)),
            None => Ok(None),
        });
        match deleted {
            Ok(lock) => lock.into_iter().for_each(IdLock::remove),
            Err(err) => tracing::warn!(id, err = %crate::error::chain(&err), "{what}"),
        }
    }

    /// The state of a container.
    pub fn state(&self, id: &str) -> Result<State> {
        let container = self.load(id)?;
        Ok(state::of_container(&container))
    }

    /// Every container under the root, sorted by id, with the owner filled in.
    pub fn list(&self) -> Result<Vec<State>> {
        let entries = match std::fs::read_dir(&self.root) {
            Ok(entries) => entries,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(err) => return Err(Error::io("reading", &self.root, err)),
        };
        let mut states = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| Error::io("reading", &self.root, e))?;
            let path = entry.path();
            // A directory without a loadable state is a create in progress or
            // one that failed half way; runc's list skips those too.
            let Ok(container) = load_dir(path.clone()) else {
                continue;
            };
            let mut state = state::of_container(&container);
            state.owner = state::owner_of(&path).unwrap_or_default();
            states.push(state);
        }
        states.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(states)
    }

    /// Sends a signal, given as a name or number, to the init process, or with
    /// `all` to every process of the container.
    pub fn kill(&self, id: &str, signal_text: &str, all: bool) -> Result<()> {
        let number = signal::parse(signal_text)?;
        let mut container = self.load(id)?;
        let status = container.status();
        if !status.can_kill() {
            return Err(Error::NotRunning {
                id: id.to_owned(),
                status: status_name(status).into(),
            });
        }
        if all {
            let signal = nix::sys::signal::Signal::try_from(number)
                .map_err(|_| Error::InvalidSignal(signal_text.to_owned()))?;
            container
                .kill(signal, true)
                .map_err(|source| Error::container("signalling", id, source))?;
            // libcontainer records every signalled container as stopped; put
            // back the status the processes really have.
            container.set_status(status);
            container
                .refresh_status()
                .and_then(|()| container.save())
                .map_err(|source| Error::container("saving the state of", id, source))?;
            return Ok(());
        }
        let pid = container.pid().ok_or_else(|| Error::NotRunning {
            id: id.to_owned(),
            status: status_name(status).into(),
        })?;
        // SAFETY: kill has no memory-safety preconditions.
        let rc = unsafe { libc::kill(pid.as_raw(), number) };
        if rc != 0 {
            let errno = nix::errno::Errno::last();
            if errno == nix::errno::Errno::ESRCH {
                return Err(Error::NotRunning {
                    id: id.to_owned(),
                    status: "stopped".into(),
                });
            }
            return Err(Error::Sys {
                action: "sending the signal",
                source: errno,
            });
        }
        Ok(())
    }

    /// Deletes a container: its state, cgroup and, with `force`, its processes.
    /// A created container is deleted without `force`, as runc does. With
    /// `force`, a container that does not exist is not an error.
    pub fn delete(&self, id: &str, force: bool) -> Result<()> {
        validate_id(id)?;
        let Some(lock) = IdLock::acquire_existing(&self.root, id)? else {
            // No state root: no container, and nothing is created for it.
            return if force {
                Ok(())
            } else {
                Err(Error::NotFound { id: id.to_owned() })
            };
        };
        let deleted = self.delete_locked(id, force);
        if deleted.is_ok() || !self.container_dir(id).exists() {
            lock.remove();
        }
        deleted
    }

    /// [`Runtime::delete`] once the id is locked.
    fn delete_locked(&self, id: &str, force: bool) -> Result<()> {
        let dir = self.container_dir(id);
        let mut container = match load_dir(dir.clone()) {
            Ok(container) => container,
            Err(_) => {
                // A directory without a loadable state is what an aborted
                // create, or a runtime killed while it rewrote the state,
                // leaves. Its container may still run: with `force`, kill
                // what its cgroup holds and remove the cgroup first.
                if dir.exists() {
                    if force {
                        crate::cgroup::remove_orphaned(&dir, id, self.systemd_cgroup)?;
                    }
                    std::fs::remove_dir_all(&dir).map_err(|e| Error::io("removing", &dir, e))?;
                }
                return if force {
                    Ok(())
                } else {
                    Err(Error::NotFound { id: id.to_owned() })
                };
            }
        };
        let status = container.status();
        if !force
            && matches!(
                status,
                ContainerStatus::Running | ContainerStatus::Paused | ContainerStatus::Creating
            )
        {
            return Err(Error::WrongStatus {
                action: "delete",
                id: id.to_owned(),
                status: status_name(status).into(),
                hint: "; stop it first or use 'delete --force'",
            });
        }
        delete_container(&mut container, id, force)
    }

    /// Freezes every process of a running container.
    pub fn pause(&self, id: &str) -> Result<()> {
        let mut container = self.load(id)?;
        let status = container.status();
        if !status.can_pause() {
            return Err(Error::WrongStatus {
                action: "pause",
                id: id.to_owned(),
                status: status_name(status).into(),
                hint: "; only a running container can be paused",
            });
        }
        container
            .pause()
            .map_err(|source| Error::container("pausing", id, source))
    }

    /// Thaws a paused container.
    pub fn resume(&self, id: &str) -> Result<()> {
        let mut container = self.load(id)?;
        let status = container.status();
        if !status.can_resume() {
            return Err(Error::WrongStatus {
                action: "resume",
                id: id.to_owned(),
                status: status_name(status).into(),
                hint: "; only a paused container can be resumed",
            });
        }
        container
            .resume()
            .map_err(|source| Error::container("resuming", id, source))
    }

    /// Loads a container's state, with its status refreshed from /proc.
    pub(crate) fn load(&self, id: &str) -> Result<Container> {
        validate_id(id)?;
        let dir = self.container_dir(id);
        if !dir.join("state.json").exists() {
            return Err(Error::NotFound { id: id.to_owned() });
        }
        load_dir(dir).map_err(|source| Error::container("loading", id, source))
    }
}

/// Deletes a loaded container: a stopped one in the common case directly
/// (see `teardown`), everything else through libcontainer.
fn delete_container(container: &mut Container, id: &str, force: bool) -> Result<()> {
    container
        .refresh_status()
        .map_err(|source| Error::container("reading the status of", id, source))?;
    match crate::teardown::delete_stopped(container) {
        crate::teardown::Outcome::Deleted => Ok(()),
        crate::teardown::Outcome::Failed(err, path) => Err(Error::io("removing", path, err)),
        crate::teardown::Outcome::NotApplicable => match container.delete(force) {
            // libcontainer runs the poststop hooks last, once the processes
            // and cgroups are gone, and stops before removing the state when
            // one fails. The container is gone but for its state; as runc
            // does, log the hook's failure and finish the delete, so that it
            // can never be undeletable.
            Err(LibcontainerError::Hook(err)) => {
                tracing::warn!(
                    id,
                    err = %crate::error::chain(&err),
                    "a poststop hook failed; deleting the container anyway"
                );
                match std::fs::remove_dir_all(&container.root) {
                    Ok(()) => Ok(()),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                    Err(e) => Err(Error::io("removing", &container.root, e)),
                }
            }
            other => other.map_err(|source| Error::container("deleting", id, source)),
        },
    }
}

/// Loads the container whose state is in `dir`. libcontainer rewrites
/// state.json in place (truncate, then write), so a reader racing a writer can
/// see it empty or cut short; such a read is retried briefly instead of failing.
fn load_dir(dir: PathBuf) -> std::result::Result<Container, LibcontainerError> {
    let mut attempts = 0;
    loop {
        match Container::load(dir.clone()) {
            Err(LibcontainerError::State(StateError::ParseStateFile { .. })) if attempts < 100 => {
                attempts += 1;
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
            other => return other,
        }
    }
}

/// Why a pty without a console socket is refused where there is no caller's
/// terminal to share (detached, or stdin is no terminal); without this the
/// process would silently run without a terminal.
/// Sends a pidfd of a new container's init process to `socket`, if given.
fn send_pidfd(container: &Container, socket: Option<&Path>) -> Result<()> {
    let Some(socket) = socket else {
        return Ok(());
    };
    let pid = container.pid().ok_or_else(|| Error::NotRunning {
        id: container.id().to_owned(),
        status: "without an init process".into(),
    })?;
    crate::pidfd::send(socket, pid)
}

pub(crate) const NO_CONSOLE_SOCKET: &str = "process.terminal is true but there is no --console-socket to hand the pty to, nor a terminal on stdin to share; hint: pass --console-socket, run attached from a terminal, or set process.terminal to false";

/// Rejects ids that cannot name a state directory, with runc's rule: letters,
/// digits, `_`, `+`, `-` and `.`, but not `.` or `..`.
pub fn validate_id(id: &str) -> Result<()> {
    let invalid = |reason| {
        Err(Error::InvalidId {
            id: id.to_owned(),
            reason,
        })
    };
    if id.is_empty() {
        return invalid("it is empty");
    }
    if id == "." || id == ".." {
        return invalid("it is a relative directory name");
    }
    if id.len() > 1024 {
        return invalid("it is longer than 1024 bytes");
    }
    if !id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'+' | b'-' | b'.'))
    {
        return invalid("only letters, digits, '_', '+', '-' and '.' are allowed");
    }
    Ok(())
}

/// Checks a bundle before anything is created, so that a bad bundle fails
/// with a message naming the file and the problem, and leaves nothing behind.
/// Returns the absolute bundle path.
fn check_bundle(bundle: &Path) -> Result<(PathBuf, Spec)> {
    let bundle_error = |path: &Path, reason: String| Error::Bundle {
        path: path.to_owned(),
        reason,
    };
    let absolute = std::fs::canonicalize(bundle)
        .map_err(|e| bundle_error(bundle, format!("cannot open the bundle directory: {e}")))?;
    let config_path = absolute.join("config.json");
    let text = std::fs::read(&config_path)
        .map_err(|e| bundle_error(&config_path, format!("cannot read the config: {e}")))?;
    let spec: Spec = serde_json::from_slice(&text)
        .map_err(|e| bundle_error(&config_path, format!("invalid config: {e}")))?;
    if !spec.version().starts_with("1.") {
        return Err(bundle_error(
            &config_path,
            format!(
                "unsupported ociVersion {:?}; this runtime implements 1.x",
                spec.version()
            ),
        ));
    }
    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| bundle_error(&config_path, "the config has no process".into()))?;
    if process.args().as_ref().is_none_or(|a| a.is_empty()) {
        return Err(bundle_error(
            &config_path,
            "process.args is empty; it must name the program to run".into(),
        ));
    }
    let root = spec
        .root()
        .as_ref()
        .ok_or_else(|| bundle_error(&config_path, "the config has no root".into()))?;
    let rootfs = if root.path().is_absolute() {
        root.path().clone()
    } else {
        absolute.join(root.path())
    };
    if !rootfs.is_dir() {
        return Err(bundle_error(
            &rootfs,
            "the root filesystem (root.path in config.json) is not a directory".into(),
        ));
    }
    if spec.linux().is_none() {
        return Err(bundle_error(
            &config_path,
            "the config has no linux section".into(),
        ));
    }
    crate::precheck::process(&spec, &rootfs, &config_path)?;
    Ok((absolute, spec))
}

/// Makes the container's cgroup v1 mounts read-only when the spec asks for it
/// (see the `remount` module for why libcontainer needs the help).
fn readonly_cgroups(container: &Container, spec: &Spec) -> Result<()> {
    let Some(destination) = crate::remount::readonly_cgroup_destination(spec) else {
        return Ok(());
    };
    // Without a mount namespace of its own the container has no cgroup
    // mounts of its own: the ones there are the caller's (the host's).
    if !crate::remount::has_new_mount_namespace(spec) {
        return Ok(());
    }
    let unified = matches!(
        libcgroups::common::get_cgroup_setup(),
        Ok(libcgroups::common::CgroupSetup::Unified)
    );
    let Some(pid) = container.pid() else {
        return Ok(());
    };
    if unified {
        return Ok(());
    }
    crate::remount::cgroup_v1_readonly(pid, &destination)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_follow_runc_rules() {
        for good in ["a", "abc-123", "A_b.c+d", "x.."] {
            assert!(validate_id(good).is_ok(), "{good} should be valid");
        }
        for bad in ["", ".", "..", "a/b", "a b", "../x", "é"] {
            assert!(validate_id(bad).is_err(), "{bad} should be invalid");
        }
    }

    #[test]
    fn bad_bundles_are_rejected_naming_the_problem() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        let err = check_bundle(&missing).unwrap_err().to_string();
        assert!(err.contains("nope"), "{err}");

        std::fs::write(dir.path().join("config.json"), "{ not json").unwrap();
        let err = check_bundle(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("config.json") && err.contains("invalid config"),
            "{err}"
        );

        let spec = Spec::default();
        spec.save(dir.path().join("config.json")).unwrap();
        let err = check_bundle(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("rootfs") && err.contains("not a directory"),
            "{err}"
        );

        std::fs::create_dir(dir.path().join("rootfs")).unwrap();
        assert!(check_bundle(dir.path()).is_ok());
    }
}
