//! Running `RUN` steps in real containers through a runc-compatible runtime's
//! command line, on an overlayfs root made of the parent's snapshots.
//!
//! A step's staging directory holds the overlay's `upper` and `work`
//! directories, the mounted `rootfs`, `config.json`, the runtime's state and the
//! container's pid file. After the run the upper directory is the step's
//! change set: the caller turns it into a layer and keeps it as a snapshot.

pub mod config;
pub mod mount;
pub mod seccomp;
pub mod user;
pub mod view;

use crate::runc::{RunOptions, Runc};
pub use crate::runc::{Runtime, Stream};
use berth_store::{Store, StoreError, tmp};
pub use config::{BundleMount, Network};
use std::fs;
use std::io;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Errors of a `RUN` step.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// Setting up or tearing down the container failed.
    #[error("{action} {}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// The overlay could not be mounted.
    #[error("mounting the overlay root at {}\nhint: containers and RUN steps need root and overlayfs", path.display())]
    Mount {
        /// The mount point.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// The runtime could not be started.
    #[error(
        "running the container through the OCI runtime\nhint: install berth-runtime next to berth or pass --runtime runc"
    )]
    Runtime {
        /// The underlying error.
        source: crate::runc::RuncError,
    },
    /// The user does not resolve.
    #[error(transparent)]
    User(#[from] user::UserError),
    /// The runtime configuration could not be built.
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn io_err(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> ExecError {
    let path = path.to_path_buf();
    move |source| ExecError::Io {
        action,
        path,
        source,
    }
}

/// Renders `config` and writes it as the bundle's `config.json` in `bundle`.
pub fn write_config(bundle: &Path, config: &config::BundleConfig<'_>) -> Result<(), ExecError> {
    let path = bundle.join("config.json");
    let spec = config::render(config)?;
    let bytes = serde_json::to_vec_pretty(&spec)
        .map_err(|e| io_err("rendering", &path)(io::Error::other(e)))?;
    fs::write(&path, bytes).map_err(io_err("writing", &path))
}

/// A mount a `RUN` step asked for, resolved to host paths by the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepMount {
    /// A host directory or file bound in (context, stage or cache).
    Bind {
        /// Host path.
        source: PathBuf,
        /// Container path.
        target: String,
        /// Whether writes are refused.
        readonly: bool,
    },
    /// A fresh tmpfs.
    Tmpfs {
        /// Container path.
        target: String,
        /// Size limit in bytes, if any.
        size: Option<u64>,
    },
}

/// Everything a `RUN` step's container needs.
#[derive(Debug, Clone)]
pub struct RunSpec {
    /// The command line (the shell form already wrapped in the stage's shell).
    pub args: Vec<String>,
    /// The environment, `KEY=value`: stage env plus the build args used.
    pub env: Vec<String>,
    /// `USER` (empty for root).
    pub user: String,
    /// `WORKDIR` (absolute).
    pub workdir: String,
    /// The network mode.
    pub network: Network,
    /// Extra mounts.
    pub mounts: Vec<StepMount>,
    /// `build --add-host`: `(name, address)` lines added to `/etc/hosts`.
    pub extra_hosts: Vec<(String, String)>,
}

/// The outcome of a run: the exit and the staging directory with the upper dir.
#[derive(Debug)]
pub struct RunOutput {
    /// The container's exit code and output tail.
    pub exit: crate::runc::RunExit,
    /// The staging directory; removed on drop.
    pub staging: Staging,
}

/// A run's staging directory, unmounted and removed on drop.
#[derive(Debug)]
pub struct Staging {
    dir: PathBuf,
}

impl Staging {
    /// The overlay upper directory: the change set.
    pub fn upper(&self) -> PathBuf {
        self.dir.join("upper")
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = tmp::remove_tree(&self.dir);
    }
}

/// The file in a run's staging directory that names the runtime binary
/// running its container, so that whoever removes the directory after the
/// build was killed can delete the container through that runtime.
const RUNTIME_FILE: &str = "runtime";

/// The runtime's JSON log in a run's staging directory.
const RUNTIME_LOG: &str = "runtime.log";

/// Stops and deletes the container a `RUN` step left in its staging
/// directory `dir` when its build was killed: through the recorded runtime
/// (`delete --force`, which also removes the container's cgroup), then by
/// killing the pid in the step's pid file if that process still has its
/// root in `dir` (so a reused pid is never hit). Does nothing for a
/// directory with no container left in it.
pub fn stop_leftover_container(dir: &Path) {
    let state = dir.join("state");
    let leftovers: Vec<String> = fs::read_dir(&state)
        .into_iter()
        .flatten()
        .flatten()
        // Runtimes keep their own files beside the containers' directories
        // (berth-runtime's `@locks`); no container id starts with '@'.
        .filter(|entry| {
            entry.path().is_dir() && !entry.file_name().as_encoded_bytes().starts_with(b"@")
        })
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    if !leftovers.is_empty()
        && let Ok(binary) = fs::read(dir.join(RUNTIME_FILE))
    {
        let runtime = Runc::new(std::ffi::OsString::from_vec(binary)).root(&state);
        for id in &leftovers {
            tracing::info!(id, runtime = %runtime.binary.display(), "deleting the container of a killed build");
            // A container already gone is what is wanted.
            let _ = runtime.delete(id, true);
        }
    }
    let Ok(text) = fs::read_to_string(dir.join("pid")) else {
        return;
    };
    let Ok(pid) = text.trim().parse::<i32>() else {
        return;
    };
    let root = fs::read_link(format!("/proc/{pid}/root")).unwrap_or_default();
    if pid > 1 && root.starts_with(dir) {
        // SAFETY: kill has no memory-safety preconditions.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
        }
    }
}

/// Runs `spec` on an overlay of `lowers` (top first; empty for scratch).
pub fn run_step(
    store: &Store,
    runtime: &Runtime,
    lowers: &[PathBuf],
    spec: &RunSpec,
    on_line: &(dyn Fn(Stream, &str) + Sync),
) -> Result<RunOutput, ExecError> {
    let dir = tmp::fresh(&store.tmp_dir(), "run");
    let staging = Staging { dir: dir.clone() };
    let (upper, work, rootfs, state) = (
        dir.join("upper"),
        dir.join("work"),
        dir.join("rootfs"),
        dir.join("state"),
    );
    for d in [&upper, &work, &rootfs, &state] {
        fs::create_dir_all(d).map_err(io_err("creating", d))?;
    }
    let runtime_file = dir.join(RUNTIME_FILE);
    fs::write(&runtime_file, runtime.binary.as_os_str().as_bytes())
        .map_err(io_err("writing", &runtime_file))?;
    let lowers = if lowers.is_empty() {
        vec![store.empty_dir()?]
    } else {
        lowers.to_vec()
    };
    mount::mount_overlay(&rootfs, &lowers, Some((&upper, &work))).map_err(|source| {
        ExecError::Mount {
            path: rootfs.clone(),
            source,
        }
    })?;
    let result = run_mounted(store, runtime, &dir, &rootfs, spec, on_line);
    let _ = mount::unmount(&rootfs);
    let exit = result?;
    let _ = fs::remove_dir_all(&work);
    Ok(RunOutput { exit, staging })
}

fn run_mounted(
    _store: &Store,
    runtime: &Runtime,
    dir: &Path,
    rootfs: &Path,
    spec: &RunSpec,
    on_line: &(dyn Fn(Stream, &str) + Sync),
) -> Result<crate::runc::RunExit, ExecError> {
    let user = user::resolve(rootfs, &spec.user)?;
    let workdir = if spec.workdir.is_empty() {
        "/"
    } else {
        &spec.workdir
    };
    // Every path of the image resolves inside its root, never on the host: a
    // symlink in the image to a host path leads to that path in the image.
    let root = mount::open_root(rootfs).map_err(io_err("opening the root", rootfs))?;
    // Like Docker, a missing working directory is created, and belongs in the
    // layer. As in BuildKit, symlinks on the way resolve inside the root,
    // dangling ones too (their target is created there); pathrs then creates
    // what is missing without ever leaving the root.
    let resolved = view::resolve_in_root(rootfs, workdir, true).map_err(io_err(
        "resolving the working directory",
        Path::new(workdir),
    ))?;
    root.mkdir_all(format!("/{resolved}"), &fs::Permissions::from_mode(0o755))
        .map_err(|e| {
            io_err("creating the working directory", Path::new(workdir))(mount::pathrs_io(e))
        })?;

    let mut mounts = config::standard_mounts();
    // The host's name resolution files, only over files the image has, so the
    // mount never creates anything in the layer.
    let mut host_files = vec!["/etc/hosts"];
    if spec.network != Network::None {
        host_files.push("/etc/resolv.conf");
    }
    if !spec.extra_hosts.is_empty() {
        // The host's names plus --add-host's, in a file of the staging
        // directory bound over the image's /etc/hosts.
        let mut text = fs::read_to_string("/etc/hosts").unwrap_or_default();
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        for (name, address) in &spec.extra_hosts {
            text.push_str(&format!("{address}\t{name}\n"));
        }
        let hosts = dir.join("hosts");
        fs::write(&hosts, text).map_err(io_err("writing", &hosts))?;
        host_files.retain(|f| *f != "/etc/hosts");
        if mount::stat_in_root(&root, "/etc/hosts").is_ok_and(|m| m.is_file()) {
            mounts.push(BundleMount::bind(
                &hosts.to_string_lossy(),
                "/etc/hosts",
                true,
            ));
        }
    }
    for file in host_files {
        let is_file = mount::stat_in_root(&root, file).is_ok_and(|m| m.is_file());
        if is_file && Path::new(file).is_file() {
            mounts.push(BundleMount::bind(file, file, true));
        }
    }
    for m in &spec.mounts {
        mounts.push(match m {
            StepMount::Bind {
                source,
                target,
                readonly,
            } => BundleMount::bind(&source.to_string_lossy(), target, *readonly),
            StepMount::Tmpfs { target, size } => BundleMount {
                destination: target.clone(),
                kind: "tmpfs".into(),
                source: "tmpfs".into(),
                options: {
                    let mut o = vec!["nosuid".to_string(), "nodev".into()];
                    if let Some(size) = size {
                        o.push(format!("size={size}"));
                    }
                    o
                },
            },
        });
    }
    // Mount points the runtime will create for us are not part of the step's
    // result; remember which ones did not exist so they can be removed.
    let created: Vec<String> = mounts
        .iter()
        .map(|m| m.destination.clone())
        .filter(|d| mount::stat_in_root(&root, d).is_err())
        .collect();
    drop(root);

    let mut env = spec.env.clone();
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.push("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into());
    }
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!("HOME={}", user.home));
    }
    write_config(
        dir,
        &config::BundleConfig {
            args: &spec.args,
            env: &env,
            cwd: workdir,
            user: &user,
            network: spec.network,
            mounts: &mounts,
            hostname: "buildkitsandbox",
            terminal: false,
            nofile: None,
        },
    )?;

    let id = dir
        .file_name()
        .map(|n| format!("berth-{}", n.to_string_lossy()))
        .unwrap_or_else(|| "berth-run".into());
    // The runtime's own errors go to a log of their own, so a failure to
    // start the command is told apart from the command's output.
    let runc = runtime.at(&dir.join("state")).log(dir.join(RUNTIME_LOG));
    let options = RunOptions {
        pid_file: Some(dir.join("pid")),
        ..RunOptions::default()
    };
    let exit = runc
        .run(&id, dir, &options, on_line)
        .map_err(|source| ExecError::Runtime { source });
    // A container already gone is what is wanted.
    let _ = runc.delete(&id, true);
    let exit = exit?;

    for dest in created.iter().rev() {
        remove_created_mountpoint(&dir.join("upper"), dest);
    }
    Ok(exit)
}

/// Removes a mount point the runtime created in the upper directory, and its
/// parents up to the first that holds anything else. The path is resolved in
/// the upper directory with no symlink allowed on the way: a step that made a
/// component of it a symlink (to anywhere) keeps what it made.
fn remove_created_mountpoint(upper: &Path, dest: &str) {
    let Ok(root) = pathrs::Root::open(upper) else {
        return;
    };
    let root = root.with_resolver_flags(pathrs::flags::ResolverFlags::NO_SYMLINKS);
    let mut path = PathBuf::from(dest.trim_start_matches('/'));
    if path.as_os_str().is_empty() {
        return;
    }
    let Ok(meta) = mount::stat_in_root(&root, &path.to_string_lossy()) else {
        return;
    };
    // A directory only goes when empty (rmdir refuses anything else).
    let removed = if meta.is_dir() {
        root.remove_dir(&path).is_ok()
    } else if meta.is_file() && meta.len() == 0 {
        root.remove_file(&path).is_ok()
    } else {
        false
    };
    if !removed {
        return;
    }
    // Bounded by the number of components of the path.
    while let Some(parent) = path.parent().map(Path::to_path_buf) {
        if parent.as_os_str().is_empty() || root.remove_dir(&parent).is_err() {
            break;
        }
        path = parent;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn mount_point_cleanup_stays_inside_the_upper_directory() {
        let host = tempfile::tempdir().unwrap();
        fs::create_dir(host.path().join("b")).unwrap();
        fs::write(host.path().join("f"), "").unwrap();
        let upper = tempfile::tempdir().unwrap();
        let u = upper.path();
        fs::create_dir_all(u.join("made/deep/point")).unwrap();
        fs::create_dir_all(u.join("kept/point")).unwrap();
        fs::write(u.join("kept/other"), "x").unwrap();
        fs::create_dir_all(u.join("full")).unwrap();
        fs::write(u.join("full/data"), "x").unwrap();
        symlink(host.path(), u.join("a")).unwrap();
        symlink(host.path(), u.join("abs")).unwrap();
        // (mount point, what must exist after, what must be gone after)
        let cases: &[(&str, &[&str], &[&str])] = &[
            // The step made /a a symlink to a host directory: nothing is removed.
            ("/a/b", &["a"], &[]),
            ("/abs/f", &["abs"], &[]),
            // An empty mount point and its empty parents go.
            ("/made/deep/point", &[], &["made"]),
            // A parent with other content stays.
            ("/kept/point", &["kept/other"], &["kept/point"]),
            // A mount point the step filled stays.
            ("/full", &["full/data"], &[]),
            ("/", &[], &[]),
        ];
        for (dest, present, gone) in cases {
            remove_created_mountpoint(u, dest);
            for p in *present {
                assert!(
                    fs::symlink_metadata(u.join(p)).is_ok(),
                    "{dest}: {p} was removed"
                );
            }
            for p in *gone {
                assert!(
                    fs::symlink_metadata(u.join(p)).is_err(),
                    "{dest}: {p} is left"
                );
            }
        }
        assert!(
            host.path().join("b").is_dir(),
            "the host directory was removed"
        );
        assert!(host.path().join("f").is_file(), "the host file was removed");
    }
}
