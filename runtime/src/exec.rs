//! `exec`: a new process inside a running container.

use crate::error::{Error, Result};
use crate::foreground;
use crate::lifecycle::Runtime;
use crate::terminal::{self, ConsoleSocket};
use libcontainer::container::builder::ContainerBuilder;
use libcontainer::syscall::syscall::SyscallType;
use oci_spec::runtime::{Capability, Process, Spec};
use std::collections::HashSet;
use std::path::PathBuf;
use std::str::FromStr;

/// What `exec` runs and how.
#[derive(Debug, Clone, Default)]
pub struct ExecOptions {
    /// A `process.json` (the runtime-spec process object) to run; when set,
    /// `args` and the single-setting options below are ignored, as in runc.
    pub process: Option<PathBuf>,
    /// The command and its arguments.
    pub args: Vec<String>,
    /// Return once the process runs instead of waiting for it.
    pub detach: bool,
    /// Give the process a pseudo-terminal (sent to `console_socket` when detached).
    pub tty: bool,
    /// The unix socket that receives the pty master.
    pub console_socket: Option<PathBuf>,
    /// A unix socket that receives a pidfd of the process once it runs.
    pub pidfd_socket: Option<PathBuf>,
    /// Where to write the process id.
    pub pid_file: Option<PathBuf>,
    /// The working directory, absolute; the container's by default.
    pub cwd: Option<PathBuf>,
    /// `KEY=VALUE` entries added to (or replacing those of) the container's environment.
    pub env: Vec<String>,
    /// `UID[:GID]` to run as; the container's user by default.
    pub user: Option<(u32, Option<u32>)>,
    /// Supplementary group ids.
    pub additional_gids: Vec<u32>,
    /// Capabilities added to the container's sets (`CAP_NET_ADMIN` or `NET_ADMIN`).
    pub caps: Vec<String>,
    /// Set `no_new_privs` for the process.
    pub no_new_privs: bool,
    /// Pass this many file descriptors after stdio to the process.
    pub preserve_fds: i32,
    /// Allow exec into a paused container.
    pub ignore_paused: bool,
}

impl Runtime {
    /// Runs a process in a running container. Detached, returns 0 once it runs;
    /// attached, waits for it while forwarding signals and returns its exit code.
    pub fn exec(&self, id: &str, options: &ExecOptions) -> Result<i32> {
        let container = self.load(id)?;
        // Attached, a process that wants a terminal but has no console
        // socket shares the caller's terminal, as with runc; see `terminal`.
        let mut console = None;
        if options.console_socket.is_none() && wants_terminal(options)? {
            if options.detach || !terminal::stdin_is_terminal() {
                return Err(Error::InvalidInput(format!(
                    "exec --tty: {}",
                    crate::lifecycle::NO_CONSOLE_SOCKET
                )));
            }
            console = Some(ConsoleSocket::listen(self.root(), id)?);
        }
        let console_socket = console
            .as_ref()
            .map(|c| c.path().to_owned())
            .or_else(|| options.console_socket.clone());
        // The exec'd process joins the container's cgroup; see `migration`.
        let warmup = crate::migration::start(container.systemd());
        let process_path = match &options.process {
            Some(path) => {
                if !path.is_file() {
                    return Err(Error::InvalidInput(format!(
                        "process file {} does not exist",
                        path.display()
                    )));
                }
                None
            }
            None => {
                let spec_path = container.bundle().join("config.json");
                let spec = Spec::load(&spec_path).map_err(|e| Error::Bundle {
                    path: spec_path.clone(),
                    reason: format!("cannot load the config: {e}"),
                })?;
                let process = exec_process(&spec, options)?;
                // libcontainer reads a process only from a file; keep it in
                // the container's state directory, unique per exec.
                let path = self.container_dir(id).join(format!(
                    "exec-process-{}-{}.json",
                    std::process::id(),
                    std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map(|d| d.subsec_nanos())
                        .unwrap_or(0)
                ));
                let text = serde_json::to_vec(&process)
                    .map_err(|e| Error::InvalidInput(format!("encoding the exec process: {e}")))?;
                std::fs::write(&path, text).map_err(|e| Error::io("writing", &path, e))?;
                Some(path)
            }
        };
        let process_file = options.process.clone().or_else(|| process_path.clone());
        let built = ContainerBuilder::new(id.to_owned(), SyscallType::default())
            .with_executor(crate::executor::RuncExecutor::new())
            .with_root_path(self.root())
            .and_then(|b| b.with_pid_file(options.pid_file.as_ref()))
            .map(|b| {
                b.with_console_socket(console_socket.as_ref())
                    .with_preserved_fds(options.preserve_fds)
                    .as_tenant()
                    // libcontainer hands the pty to a console socket only
                    // when "detached"; the flag changes nothing else.
                    .with_detach(options.detach || console.is_some())
                    .with_process(process_file.as_ref())
                    .with_ignore_paused(options.ignore_paused)
            })
            .and_then(|b| b.build());
        drop(warmup);
        if let Some(path) = &process_path {
            let _ = std::fs::remove_file(path);
        }
        let pid = match built {
            Ok(pid) => pid,
            Err(source) => {
                if let Some(console) = console {
                    console.abandon();
                }
                return Err(Error::container("executing in", id, source));
            }
        };
        // A process whose caller cannot have what it asked for (its pidfd,
        // its terminal) is of no use to anyone: it is killed, not left.
        let kill_on_error = |err: Error| {
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            err
        };
        if let Some(socket) = &options.pidfd_socket {
            crate::pidfd::send(socket, pid).map_err(kill_on_error)?;
        }
        if options.detach {
            return Ok(0);
        }
        let proxy = match console {
            // Signals are blocked before the terminal threads start, so that
            // every signal is left for forwarding to the process.
            Some(console) => Some(
                nix::sys::signal::SigSet::all()
                    .thread_block()
                    .map_err(|source| Error::Sys {
                        action: "blocking signals before bridging the terminal",
                        source,
                    })
                    .and_then(|()| console.master())
                    .and_then(terminal::Proxy::start)
                    .map_err(kill_on_error)?,
            ),
            None => None,
        };
        let status = foreground::wait_forwarding_signals(pid, &|| {
            if let Some(proxy) = &proxy {
                proxy.resize();
            }
        });
        if let Some(proxy) = proxy {
            proxy.finish();
        }
        status
    }
}

/// Whether the exec'd process asks for a terminal: `--tty`, or
/// `"terminal": true` in the `--process` file.
fn wants_terminal(options: &ExecOptions) -> Result<bool> {
    let Some(path) = &options.process else {
        return Ok(options.tty);
    };
    let text = match std::fs::read(path) {
        Ok(text) => text,
        // A missing file is reported below, with the rest of the checks.
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(err) => return Err(Error::io("reading", path, err)),
    };
    let process: serde_json::Value = serde_json::from_slice(&text).map_err(|e| {
        Error::InvalidInput(format!("process file {}: not JSON: {e}", path.display()))
    })?;
    Ok(process.get("terminal").and_then(serde_json::Value::as_bool) == Some(true))
}

/// The exec process: the container's own process as the template (user, cwd,
/// rlimits, capabilities, apparmor, ...) with the exec options applied, as runc
/// builds it.
fn exec_process(spec: &Spec, options: &ExecOptions) -> Result<Process> {
    if options.args.is_empty() {
        return Err(Error::InvalidInput(
            "exec needs a command or --process; hint: berth-runtime exec ID COMMAND [ARG...]"
                .into(),
        ));
    }
    let mut process = spec.process().clone().unwrap_or_default();
    process.set_args(Some(options.args.clone()));
    process.set_terminal(Some(options.tty));
    // The init process's notify and console settings do not carry over.
    process.set_console_size(None);
    if let Some(cwd) = &options.cwd {
        if !cwd.is_absolute() {
            return Err(Error::InvalidInput(format!(
                "--cwd {} must be an absolute path",
                cwd.display()
            )));
        }
        process.set_cwd(cwd.clone());
    }
    if !options.env.is_empty() {
        let mut env = process.env().clone().unwrap_or_default();
        for entry in &options.env {
            let Some((key, _)) = entry.split_once('=') else {
                return Err(Error::InvalidInput(format!(
                    "--env {entry:?} must have the form KEY=VALUE"
                )));
            };
            env.retain(|existing| existing.split_once('=').map(|(k, _)| k) != Some(key));
            env.push(entry.clone());
        }
        process.set_env(Some(env));
    }
    if let Some((uid, gid)) = options.user {
        let mut user = process.user().clone();
        user.set_uid(uid);
        if let Some(gid) = gid {
            user.set_gid(gid);
        }
        process.set_user(user);
    }
    if !options.additional_gids.is_empty() {
        let mut user = process.user().clone();
        user.set_additional_gids(Some(options.additional_gids.clone()));
        process.set_user(user);
    }
    if options.no_new_privs {
        process.set_no_new_privileges(Some(true));
    }
    if !options.caps.is_empty() {
        let mut added = HashSet::new();
        for name in &options.caps {
            // The spec's names carry a CAP_ prefix; the enum's parser wants none.
            let upper = name.to_ascii_uppercase();
            let bare = upper.strip_prefix("CAP_").unwrap_or(&upper);
            let cap = Capability::from_str(bare)
                .map_err(|_| Error::InvalidInput(format!("--cap {name}: unknown capability")))?;
            added.insert(cap);
        }
        let mut caps = process.capabilities().clone().unwrap_or_default();
        let extend = |set: &Option<HashSet<Capability>>| {
            let mut set = set.clone().unwrap_or_default();
            set.extend(added.iter().copied());
            Some(set)
        };
        // As runc: the permitted, effective and bounding sets only. In the
        // inheritable and ambient sets the capability would pass on to every
        // program the process execs (the pattern of CVE-2022-29162).
        caps.set_bounding(extend(caps.bounding()));
        caps.set_effective(extend(caps.effective()));
        caps.set_permitted(extend(caps.permitted()));
        process.set_capabilities(Some(caps));
    }
    Ok(process)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_process_starts_from_the_container_process() {
        let spec = Spec::default();
        let options = ExecOptions {
            args: vec!["/bin/echo".into(), "hi".into()],
            env: vec!["TERM=dumb".into(), "EXTRA=1".into()],
            cwd: Some("/tmp".into()),
            user: Some((1000, Some(1001))),
            caps: vec!["NET_ADMIN".into()],
            tty: true,
            ..ExecOptions::default()
        };
        let process = exec_process(&spec, &options).unwrap();
        assert_eq!(process.args().as_ref().unwrap(), &options.args);
        let env = process.env().as_ref().unwrap();
        assert!(env.iter().any(|e| e == "TERM=dumb"));
        assert!(!env.iter().any(|e| e == "TERM=xterm"));
        assert!(env.iter().any(|e| e.starts_with("PATH=")));
        assert_eq!(process.cwd(), &PathBuf::from("/tmp"));
        assert_eq!(process.user().uid(), 1000);
        assert_eq!(process.user().gid(), 1001);
        assert_eq!(process.terminal(), Some(true));
        let caps = process.capabilities().as_ref().unwrap();
        for (set, name) in [
            (caps.bounding(), "bounding"),
            (caps.effective(), "effective"),
            (caps.permitted(), "permitted"),
        ] {
            assert!(
                set.as_ref().unwrap().contains(&Capability::NetAdmin),
                "{name}"
            );
        }
        for (set, name) in [
            (caps.inheritable(), "inheritable"),
            (caps.ambient(), "ambient"),
        ] {
            assert!(
                !set.as_ref()
                    .is_some_and(|s| s.contains(&Capability::NetAdmin)),
                "{name}"
            );
        }
    }

    #[test]
    fn exec_process_rejects_bad_options() {
        let spec = Spec::default();
        for options in [
            ExecOptions::default(),
            ExecOptions {
                args: vec!["x".into()],
                cwd: Some("relative".into()),
                ..ExecOptions::default()
            },
            ExecOptions {
                args: vec!["x".into()],
                env: vec!["NOEQUALS".into()],
                ..ExecOptions::default()
            },
            ExecOptions {
                args: vec!["x".into()],
                caps: vec!["NOT_A_CAP".into()],
                ..ExecOptions::default()
            },
        ] {
            assert!(exec_process(&spec, &options).is_err(), "{options:?}");
        }
    }
}
