//! `RUN`: the container's command line, environment and mounts, and turning
//! its upper directory into a layer and a snapshot.

use super::metadata;
use super::progress::BytesReporter;
use super::step::{CommandForm, MountSpec, RunStep};
use crate::executor::{self, ExecError, RunSpec, Runtime, StepMount, Stream};
use crate::layer::scan::{TreeKind, scan_tree};
use crate::layer::write::write_layer_reporting;
use crate::layer::{LayerError, WriteOptions};
use crate::oci::ImageConfig;
use crate::store::cache::LayerRecord;
use crate::store::lock::{FileLock, LockMode};
use crate::store::{Digest, Store, StoreError, tmp};
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{PermissionsExt, chown};
use std::path::{Path, PathBuf};

/// Errors of a `RUN` step.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The command exited non-zero.
    #[error("RUN failed with exit code {code}: {command}\n{}", tail.join("\n"))]
    Failed {
        /// The command.
        command: String,
        /// Its exit code.
        code: i32,
        /// The last lines of its output.
        tail: Vec<String>,
    },
    /// A required secret was not given.
    #[error("RUN needs the secret '{0}'\nhint: pass it with --secret id={0},src=FILE")]
    MissingSecret(String),
    /// A bind mount source is missing.
    #[error("RUN --mount: bind source '{0}' does not exist")]
    MissingBindSource(String),
    /// The container could not run.
    #[error(transparent)]
    Exec(#[from] ExecError),
    /// The layer could not be written.
    #[error(transparent)]
    Layer(#[from] LayerError),
    /// The layer could not be scanned.
    #[error(transparent)]
    Scan(#[from] crate::layer::scan::ScanError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The argv of a `RUN`: shell form through the stage's shell, with heredoc
/// bodies appended so the shell feeds them to the command; a bare heredoc is
/// run as a script.
pub fn argv(config: &ImageConfig, run: &RunStep) -> Vec<String> {
    match &run.command {
        CommandForm::Shell(line) if !run.heredocs.is_empty() => {
            let trimmed = line.trim();
            if run.heredocs.len() == 1 && trimmed.starts_with("<<") && !trimmed.contains(' ') {
                let mut argv = metadata::shell(config);
                argv.push(run.heredocs[0].content.clone());
                return argv;
            }
            let mut script = line.clone();
            for h in &run.heredocs {
                script.push('\n');
                script.push_str(&h.content);
                if !h.content.ends_with('\n') {
                    script.push('\n');
                }
                script.push_str(&h.name);
            }
            metadata::argv(config, &CommandForm::Shell(script))
        }
        form => metadata::argv(config, form),
    }
}

/// What a `RUN` needs beyond the stage: the context, other stages' views and
/// the secrets given on the command line.
pub struct RunInputs<'a> {
    /// The build context directory.
    pub context: &'a Path,
    /// Host directories of `from=` sources (stage views or images), by the
    /// `from` text.
    pub from_roots: &'a BTreeMap<String, PathBuf>,
    /// `--secret id=…,src=…`.
    pub secrets: &'a BTreeMap<String, PathBuf>,
}

/// Held resources of the mounts: cache locks and scratch copies.
#[derive(Default)]
struct MountGuards {
    _locks: Vec<FileLock>,
    scratch: Vec<PathBuf>,
}

impl Drop for MountGuards {
    fn drop(&mut self) {
        for dir in &self.scratch {
            let _ = tmp::remove_tree(dir);
        }
    }
}

fn resolve_mounts(
    store: &Store,
    mounts: &[MountSpec],
    inputs: &RunInputs<'_>,
    workdir: &str,
) -> Result<(Vec<StepMount>, MountGuards), RunError> {
    let mut out = Vec::new();
    let mut guards = MountGuards::default();
    for m in mounts {
        match m {
            MountSpec::Cache {
                target,
                id,
                locked,
                private,
                readonly,
                mode,
                uid,
                gid,
            } => {
                let dir = if *private {
                    let d = tmp::fresh(&store.tmp_dir(), "cache-mount");
                    guards.scratch.push(d.clone());
                    d
                } else {
                    store
                        .root()
                        .join("cache-mounts")
                        .join(Digest::of(id.as_bytes()).hex())
                };
                if !dir.exists() {
                    fs::create_dir_all(&dir).map_err(crate::store::io_err("creating", &dir))?;
                    // The step's user must be able to write its cache: a mode or
                    // owner that did not take is an error, not a surprise later.
                    fs::set_permissions(&dir, fs::Permissions::from_mode(*mode))
                        .map_err(crate::store::io_err("setting the mode of", &dir))?;
                    chown(&dir, Some(*uid), Some(*gid))
                        .map_err(crate::store::io_err("changing the owner of", &dir))?;
                }
                if *locked {
                    let lock_path = store
                        .lock_path(&format!("cache-mount-{}", Digest::of(id.as_bytes()).hex()));
                    guards._locks.push(
                        FileLock::acquire(&lock_path, LockMode::Exclusive)
                            .map_err(crate::store::io_err("locking", &lock_path))?,
                    );
                }
                out.push(StepMount::Bind {
                    source: dir,
                    target: metadata::resolve_path(workdir, target),
                    readonly: *readonly,
                });
            }
            MountSpec::Bind {
                target,
                source,
                from,
                readwrite,
            } => {
                let root = match from {
                    None => inputs.context.to_path_buf(),
                    Some(f) => inputs
                        .from_roots
                        .get(&format!("{f:?}"))
                        .cloned()
                        .ok_or_else(|| RunError::MissingBindSource(source.clone()))?,
                };
                let rel = super::view::resolve_in_root(&root, source, true)
                    .map_err(|_| RunError::MissingBindSource(source.clone()))?;
                let mut host = root.join(rel);
                if !host.exists() {
                    return Err(RunError::MissingBindSource(source.clone()));
                }
                if *readwrite {
                    // Writes to a rw bind mount are discarded: give the step a copy.
                    let copy = tmp::fresh(&store.tmp_dir(), "bind-rw");
                    copy_tree(&host, &copy).map_err(crate::store::io_err("copying", &host))?;
                    guards.scratch.push(copy.clone());
                    host = copy;
                }
                out.push(StepMount::Bind {
                    source: host,
                    target: metadata::resolve_path(workdir, target),
                    readonly: !*readwrite,
                });
            }
            MountSpec::Tmpfs { target, size } => out.push(StepMount::Tmpfs {
                target: metadata::resolve_path(workdir, target),
                size: *size,
            }),
            MountSpec::Secret {
                id,
                target,
                required,
            } => match inputs.secrets.get(id) {
                Some(src) => out.push(StepMount::Bind {
                    source: src.clone(),
                    target: metadata::resolve_path(workdir, target),
                    readonly: true,
                }),
                None if *required => return Err(RunError::MissingSecret(id.clone())),
                None => {}
            },
        }
    }
    Ok((out, guards))
}

fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    let meta = fs::symlink_metadata(from)?;
    if meta.is_dir() {
        fs::create_dir_all(to)?;
        for entry in fs::read_dir(from)? {
            let entry = entry?;
            copy_tree(&entry.path(), &to.join(entry.file_name()))?;
        }
        Ok(())
    } else if meta.file_type().is_symlink() {
        std::os::unix::fs::symlink(fs::read_link(from)?, to)
    } else {
        fs::copy(from, to).map(|_| ())
    }
}

/// Runs the step and returns its layer (none when it changed nothing).
#[allow(clippy::too_many_arguments)]
pub fn execute(
    store: &Store,
    runtime: &Runtime,
    config: &ImageConfig,
    lowers: &[PathBuf],
    run: &RunStep,
    build_args: &BTreeMap<String, String>,
    inputs: &RunInputs<'_>,
    write: WriteOptions,
    on_line: &(dyn Fn(Stream, &str) + Sync),
    bytes: &mut BytesReporter<'_>,
) -> Result<Option<LayerRecord>, RunError> {
    let workdir = config
        .config
        .working_dir
        .clone()
        .unwrap_or_else(|| "/".into());
    let (mounts, _guards) = resolve_mounts(store, &run.mounts, inputs, &workdir)?;
    // The container sees the stage's env and the build args it used; ENV wins
    // over an ARG of the same name, as in Docker.
    let mut env = config.config.env.clone();
    for (k, v) in build_args {
        if metadata::get_env(&env, k).is_none() {
            env.push(format!("{k}={v}"));
        }
    }
    let argv = argv(config, run);
    let spec = RunSpec {
        args: argv.clone(),
        env,
        user: config.config.user.clone().unwrap_or_default(),
        workdir,
        network: run.network,
        mounts,
    };
    let out = executor::run_step(store, runtime, lowers, &spec, on_line)?;
    if out.exit.code != 0 {
        return Err(RunError::Failed {
            command: argv.join(" "),
            code: out.exit.code,
            tail: out.exit.tail.clone(),
        });
    }
    let upper = out.staging.upper();
    let entries = scan_tree(&upper, TreeKind::OverlayUpper)?;
    if entries.is_empty() {
        return Ok(None);
    }
    bytes.set_total(Some(entries.iter().map(|e| e.content_size()).sum()));
    let layer = write_layer_reporting(store.blobs(), entries, write, &mut |done| {
        bytes.report(done);
    })?;
    bytes.finish();
    // The upper directory already is the layer in overlay form: keep it as
    // the snapshot instead of unpacking the blob again.
    store.commit_snapshot(&upper, &layer.diff_id)?;
    Ok(Some(layer))
}
