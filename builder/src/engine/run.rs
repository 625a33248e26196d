//! `RUN`: the container's command line, environment and mounts, and turning
//! its upper directory into a layer and a snapshot.

use super::metadata;
use super::progress::BytesReporter;
use super::step::{CommandForm, MountSpec, RunStep};
use crate::cache::LayerRecord;
use crate::context::{Context, ContextFile, FileKind};
use berth_containers::executor::{
    self, ExecError, RunSpec, Runtime, StepMount, Stream, mount, view,
};
use berth_store::layer::scan::{TreeKind, scan_tree};
use berth_store::layer::write::write_layer_reporting;
use berth_store::layer::{LayerError, WriteOptions};
use berth_store::lock::{FileLock, LockMode};
use berth_store::oci::ImageConfig;
use berth_store::{Digest, Store, StoreError, tmp};
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt, chown};
use std::path::{Path, PathBuf};

/// Errors of a `RUN` step.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The command exited non-zero.
    #[error("RUN failed with exit code {code}: {}{}\n{}", shorten(command), runtime_said(runtime_errors), tail.join("\n"))]
    Failed {
        /// The command.
        command: String,
        /// Its exit code.
        code: i32,
        /// The last lines of its output.
        tail: Vec<String>,
        /// What the runtime itself reported (it could not start the command).
        runtime_errors: Vec<String>,
    },
    /// An argument is longer than the kernel lets a program be started with.
    #[error(
        "RUN failed: its command line has an argument of {len} bytes: {}\n\
         the kernel refuses to start a program with an argument over {MAX_ARG_STRLEN} bytes \
         (argument list too long, E2BIG)\n\
         hint: put the script in a file (COPY it, or use a heredoc to write it) and run that",
        shorten(command)
    )]
    ArgumentTooLong {
        /// The command.
        command: String,
        /// The longest argument's length.
        len: usize,
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
    Scan(#[from] berth_store::layer::scan::ScanError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The kernel's limit on one argument or environment string (32 pages):
/// `execve` fails with E2BIG over it.
const MAX_ARG_STRLEN: usize = 32 * 4096;

/// The most of a command shown in an error.
const COMMAND_SHOWN: usize = 200;

/// `command`, cut to a length that fits in an error message.
pub(crate) fn shorten(command: &str) -> String {
    if command.len() <= COMMAND_SHOWN {
        return command.to_string();
    }
    let mut end = COMMAND_SHOWN;
    while !command.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes)", &command[..end], command.len())
}

/// The runtime's own errors, as a line of an error message.
fn runtime_said(errors: &[String]) -> String {
    if errors.is_empty() {
        String::new()
    } else {
        format!("\nthe runtime reported: {}", errors.join("; "))
    }
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
    /// The walked context (what `.dockerignore` keeps), when a bind mount
    /// reads the context.
    pub context_tree: Option<&'a Context>,
    /// `--add-host` entries for `/etc/hosts`.
    pub extra_hosts: &'a [(String, String)],
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
                    fs::create_dir_all(&dir).map_err(berth_store::io_err("creating", &dir))?;
                    // The step's user must be able to write its cache: a mode or
                    // owner that did not take is an error, not a surprise later.
                    fs::set_permissions(&dir, fs::Permissions::from_mode(*mode))
                        .map_err(berth_store::io_err("setting the mode of", &dir))?;
                    chown(&dir, Some(*uid), Some(*gid))
                        .map_err(berth_store::io_err("changing the owner of", &dir))?;
                }
                if *locked {
                    let lock_path = store
                        .lock_path(&format!("cache-mount-{}", Digest::of(id.as_bytes()).hex()));
                    guards._locks.push(
                        FileLock::acquire(&lock_path, LockMode::Exclusive)
                            .map_err(berth_store::io_err("locking", &lock_path))?,
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
                let rel = view::resolve_in_root(&root, source, true)
                    .map_err(|_| RunError::MissingBindSource(source.clone()))?;
                let tree =
                    mount::open_root(&root).map_err(berth_store::io_err("opening", &root))?;
                if mount::stat_in_root(&tree, &rel).is_err() {
                    return Err(RunError::MissingBindSource(source.clone()));
                }
                let mut host = root.join(&rel);
                // The context is exposed as the build sees it: with what
                // .dockerignore leaves out taken out, as BuildKit does.
                let context_tree = inputs.context_tree.filter(|_| from.is_none());
                let filtered = context_tree.is_some_and(|c| c.excludes_at_or_below(&rel));
                if *readwrite || filtered {
                    // Writes to a rw bind mount are discarded: give the step a copy.
                    let scratch = tmp::fresh(&store.tmp_dir(), "bind-copy");
                    guards.scratch.push(scratch.clone());
                    fs::create_dir_all(&scratch)
                        .map_err(berth_store::io_err("creating", &scratch))?;
                    let listing: Vec<ContextFile> = match context_tree {
                        Some(ctx) => ctx.under(&rel).cloned().collect(),
                        None => Context::walk_under(&root, &rel)
                            .map_err(|e| berth_store::io_err("listing", &e.path)(e.source))?
                            .files()
                            .cloned()
                            .collect(),
                    };
                    if !rel.is_empty() && !listing.iter().any(|f| f.rel == rel) {
                        return Err(RunError::MissingBindSource(source.clone()));
                    }
                    let copy = scratch.join("source");
                    copy_entries(&tree, &rel, &listing, &copy)
                        .map_err(berth_store::io_err("copying", &host))?;
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

/// Copies the listed entries at and below `base` of the tree `root` to `to`,
/// the way the listing has them: directories, regular files (read inside the
/// root with no symlink followed, never blocking), symlinks as symlinks.
/// Devices, FIFOs and sockets are left out: opening one to copy it could
/// block the build or reach a host device. The listing is bounded, so is the
/// copy; nothing recurses.
fn copy_entries(
    root: &pathrs::Root,
    base: &str,
    listing: &[ContextFile],
    to: &Path,
) -> std::io::Result<()> {
    use std::io::ErrorKind;
    let strict = root
        .try_clone()
        .map_err(mount::pathrs_io)?
        .with_resolver_flags(pathrs::flags::ResolverFlags::NO_SYMLINKS);
    if base.is_empty() || !listing.iter().any(|f| f.rel == base) {
        fs::create_dir(to)?;
    }
    for file in listing {
        let relative = if file.rel == base {
            ""
        } else if base.is_empty() {
            file.rel.as_str()
        } else {
            match file
                .rel
                .strip_prefix(base)
                .and_then(|r| r.strip_prefix('/'))
            {
                Some(r) => r,
                None => continue,
            }
        };
        let dest = if relative.is_empty() {
            to.to_path_buf()
        } else {
            to.join(relative)
        };
        match file.kind {
            FileKind::Dir => {
                match fs::create_dir(&dest) {
                    Err(e) if e.kind() != ErrorKind::AlreadyExists => return Err(e),
                    _ => {}
                }
                fs::set_permissions(&dest, fs::Permissions::from_mode(file.mode))?;
            }
            FileKind::Symlink => {
                if let Some(link) = &file.link {
                    std::os::unix::fs::symlink(link, &dest)?;
                }
            }
            FileKind::File => {
                let flags = pathrs::flags::OpenFlags::O_RDONLY
                    | pathrs::flags::OpenFlags::O_NOFOLLOW
                    | pathrs::flags::OpenFlags::O_NONBLOCK;
                let mut source = strict
                    .open_subpath(&file.rel, flags)
                    .map_err(mount::pathrs_io)?;
                if !source.metadata()?.is_file() {
                    // Swapped for something else since the walk: left out.
                    continue;
                }
                let mut out = fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(file.mode)
                    .open(&dest)?;
                std::io::copy(&mut source, &mut out)?;
                fs::set_permissions(&dest, fs::Permissions::from_mode(file.mode))?;
            }
            FileKind::Other => {}
        }
    }
    Ok(())
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
        extra_hosts: inputs.extra_hosts.to_vec(),
    };
    if let Some(len) = spec
        .args
        .iter()
        .map(|a| a.len() + 1)
        .filter(|len| *len > MAX_ARG_STRLEN)
        .max()
    {
        return Err(RunError::ArgumentTooLong {
            command: argv.join(" "),
            len: len - 1,
        });
    }
    let out = executor::run_step(store, runtime, lowers, &spec, on_line)?;
    if out.exit.code != 0 {
        // The runtime's errors also reach its stderr: say them once.
        let runtime_errors = out.exit.runtime_errors.clone();
        let mut tail = out.exit.tail.clone();
        tail.retain(|line| !runtime_errors.iter().any(|e| line.ends_with(e.as_str())));
        return Err(RunError::Failed {
            command: argv.join(" "),
            code: out.exit.code,
            tail,
            runtime_errors,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::Visit;

    #[test]
    fn bind_copies_keep_only_listed_files_and_never_open_special_files() {
        let ctx = tempfile::tempdir().unwrap();
        let r = ctx.path();
        fs::create_dir_all(r.join("dir/sub")).unwrap();
        fs::write(r.join("dir/kept"), "kept").unwrap();
        fs::write(r.join("dir/sub/secret.key"), "secret").unwrap();
        fs::write(r.join("top"), "top").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", r.join("dir/link")).unwrap();
        let fifo = std::ffi::CString::new(r.join("dir/pipe").into_os_string().into_encoded_bytes())
            .unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
        let walked = Context::walk(r, &|rel, _| {
            if rel.ends_with(".key") {
                Visit::Exclude
            } else {
                Visit::Include
            }
        })
        .unwrap();
        assert!(walked.excludes_at_or_below("dir"));
        assert!(walked.excludes_at_or_below(""));
        assert!(!walked.excludes_at_or_below("top"));
        let root = mount::open_root(r).unwrap();
        // (source, listing base, what the copy holds)
        let cases: &[(&str, &[&str])] = &[("dir", &["kept", "link", "sub"]), ("", &["dir", "top"])];
        for (base, want) in cases {
            let out = tempfile::tempdir().unwrap();
            let to = out.path().join("copy");
            let listing: Vec<ContextFile> = walked.under(base).cloned().collect();
            copy_entries(&root, base, &listing, &to).unwrap();
            let mut names: Vec<String> = fs::read_dir(&to)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            assert_eq!(names, *want, "{base:?}");
        }
        let out = tempfile::tempdir().unwrap();
        let to = out.path().join("copy");
        let listing: Vec<ContextFile> = walked.under("dir").cloned().collect();
        copy_entries(&root, "dir", &listing, &to).unwrap();
        assert_eq!(
            fs::read_link(to.join("link")).unwrap(),
            Path::new("/etc/passwd")
        );
        assert!(!to.join("sub/secret.key").exists());
        assert_eq!(fs::read_to_string(to.join("kept")).unwrap(), "kept");
    }
}
