//! Running another command in a running container (`berth exec`), through
//! the runtime's own `exec`: the runtime that started the container joins
//! its namespaces and cgroup, and the new process gets the container's
//! environment with the `-e` values on top.

use super::lifecycle::{self, Action, TransitionError};
use super::lookup::{self, Unrunnable};
use super::options::{env_flag, set_env};
use super::supervise::{BundleProcess, runtime_of};
use super::{ContainerError, find};
use crate::executor::user;
use crate::runc;
use berth_store::Store;
use std::path::Path;
use std::process::{Command, Stdio};

/// What to run and how.
#[derive(Debug, Clone, Default)]
pub struct ExecOptions {
    /// The command and its arguments.
    pub command: Vec<String>,
    /// `-e` values: `KEY=value`, or `KEY` to copy berth's own value.
    pub env: Vec<String>,
    /// `-u`: a user name or uid, with an optional `:group` (the container's
    /// user by default).
    pub user: Option<String>,
    /// `-w`: the absolute working directory (the container's by default).
    pub workdir: Option<String>,
    /// `-t`: give the process the caller's terminal.
    pub tty: bool,
    /// `-i`: keep standard input open.
    pub interactive: bool,
    /// `-d`: start it and return.
    pub detach: bool,
}

/// The runtime's `exec` command line for running `options` in the container
/// `wanted`, checked as far as it can be beforehand: the container runs, the
/// user exists and the command is there and executable (Docker's 126 and
/// 127 otherwise). The caller runs it, typically by replacing itself with
/// it, so that signals, the terminal and the exit code pass straight through.
pub fn command(
    store: &Store,
    wanted: &str,
    options: &ExecOptions,
) -> Result<Command, ContainerError> {
    let record = find(store, wanted)?;
    if let Err(refused @ TransitionError::ExecPaused { .. }) =
        lifecycle::check(Action::Exec, record.status(), &record.id, &record.name)
    {
        // The runtime's exec would wait for the frozen container forever.
        return Err(ContainerError::Start {
            message: refused.to_string(),
            code: 125,
        });
    }
    if !record.is_running() {
        return Err(ContainerError::Start {
            message: format!(
                "container {} is not running\nhint: start a new one with berth run",
                record.short_id()
            ),
            code: 125,
        });
    }
    let Some(program) = options.command.first() else {
        return Err(ContainerError::Start {
            message: "exec needs a command: berth exec CONTAINER COMMAND [ARG...]".into(),
            code: 125,
        });
    };
    if let Some(dir) = &options.workdir
        && !dir.starts_with('/')
    {
        return Err(ContainerError::Start {
            message: format!("the working directory '{dir}' must be absolute"),
            code: 125,
        });
    }
    let dir = super::container_dir(store, &record.id);
    let rootfs = dir.join("rootfs");
    let mut env = Vec::new();
    for flag in &options.env {
        if let Some(entry) = env_flag(flag, |key| std::env::var(key).ok())? {
            env.push(entry);
        }
    }
    let mut process = runc::ExecProcess {
        args: options.command.clone(),
        cwd: options.workdir.clone(),
        ..runc::ExecProcess::default()
    };
    if let Some(spec) = &options.user {
        let resolved = user::resolve(&rootfs, spec).map_err(crate::executor::ExecError::from)?;
        process.user = Some((resolved.uid, resolved.gid));
        process.additional_gids = resolved.additional_gids.clone();
        // The container's HOME is its own user's; another user gets theirs,
        // unless -e says otherwise.
        if !env.iter().any(|e| e.starts_with("HOME=")) {
            env.push(format!("HOME={}", resolved.home));
        }
    }
    check_runnable(&dir, program, options, &env)?;
    process.env = env;
    let io = if options.detach {
        runc::ProcessIo::default()
    } else {
        // The caller's own streams, but no input without -i or -t.
        let inherit = || Some(Stdio::inherit());
        runc::ProcessIo {
            stdin: if options.interactive || options.tty {
                inherit()
            } else {
                None
            },
            stdout: inherit(),
            stderr: inherit(),
        }
    };
    Ok(runtime_of(store, &record).exec_command(
        &record.id,
        runc::ProcessSpec::Flags(&process),
        runc::ExecOptions {
            tty: options.tty,
            detach: options.detach,
            io,
            ..runc::ExecOptions::default()
        },
    ))
}

/// Fails with Docker's exit code when the command is not in the container
/// or cannot be executed there, looked up as the runtime will run it: in
/// its working directory, with the container's environment and the `-e`
/// values on top.
fn check_runnable(
    dir: &Path,
    program: &str,
    options: &ExecOptions,
    env: &[String],
) -> Result<(), ContainerError> {
    let bundle = BundleProcess::read(dir);
    let cwd = options.workdir.as_deref().unwrap_or(&bundle.cwd);
    let mut merged = bundle.env;
    for entry in env {
        set_env(&mut merged, entry.clone());
    }
    match lookup::check(&dir.join("rootfs"), program, cwd, &merged) {
        Ok(()) => Ok(()),
        Err(why) => Err(ContainerError::Start {
            message: match &why {
                Unrunnable::NotFound => {
                    format!("exec: \"{program}\": executable file not found in $PATH")
                }
                Unrunnable::NotExecutable(reason) => format!("exec: {reason}"),
            },
            code: why.exit_code(),
        }),
    }
}
