//! The workload executor: libcontainer's default, with runc's environment.

use libcontainer::workload::default::DefaultExecutor;
use libcontainer::workload::{
    Executor, ExecutorError, ExecutorSetEnvsError, ExecutorValidationError,
};
use oci_spec::runtime::Spec;
use std::collections::HashMap;

/// Executes the process like libcontainer's default executor, but as runc
/// does: a user without a passwd entry (or without a home in it) gets
/// `HOME=/` instead of no HOME at all, and a container's init process joins a
/// new session keyring named `_ses.ID` (unless `--no-new-keyring`), so
/// containers do not share the caller's keys.
#[derive(Clone)]
pub(crate) struct RuncExecutor {
    inner: DefaultExecutor,
    session_keyring: Option<String>,
}

impl RuncExecutor {
    /// The executor of exec'd processes, which keep the container's keyring.
    pub(crate) fn new() -> RuncExecutor {
        RuncExecutor {
            inner: DefaultExecutor {},
            session_keyring: None,
        }
    }

    /// The executor of a container's init process.
    pub(crate) fn for_init(id: &str, new_keyring: bool) -> RuncExecutor {
        RuncExecutor {
            inner: DefaultExecutor {},
            session_keyring: new_keyring.then(|| format!("_ses.{id}")),
        }
    }
}

/// `KEYCTL_JOIN_SESSION_KEYRING` from linux/keyctl.h.
const KEYCTL_JOIN_SESSION_KEYRING: libc::c_long = 1;

impl Executor for RuncExecutor {
    fn exec(&self, spec: &Spec) -> Result<(), ExecutorError> {
        if let Some(name) = &self.session_keyring
            && let Ok(name) = std::ffi::CString::new(name.as_bytes())
        {
            // SAFETY: keyctl with a valid NUL-terminated name. It runs after
            // libcontainer applied seccomp, so a profile that denies keyctl
            // leaves the inherited keyring: best effort, as the kernel may
            // also lack keys support.
            let rc = unsafe {
                libc::syscall(libc::SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, name.as_ptr())
            };
            if rc < 0 {
                tracing::debug!(
                    err = %std::io::Error::last_os_error(),
                    "joining a new session keyring"
                );
            }
        }
        exec_workload(spec)
    }

    fn validate(&self, spec: &Spec) -> Result<(), ExecutorValidationError> {
        self.inner.validate(spec)
    }

    fn setup_envs(&self, mut envs: HashMap<String, String>) -> Result<(), ExecutorSetEnvsError> {
        with_home(&mut envs);
        self.inner.setup_envs(envs)
    }
}

/// Replaces this process with the workload, as libcontainer's default
/// executor does (`execvp`, with the environment `setup_envs` set), but
/// failing with the errno: libcontainer's message is "failed to execute
/// workload", whose cause is lost on the way to the runtime, and it carries
/// every argument, which a large argument list makes too long to send. After
/// `start` no runtime process is left to report to, so the error is also
/// logged here, to the runtime's log or the container's stderr, as runc's
/// init does ("exec /x: no such file or directory").
fn exec_workload(spec: &Spec) -> Result<(), ExecutorError> {
    let args = spec
        .process()
        .as_ref()
        .and_then(|p| p.args().as_ref())
        .filter(|args| !args.is_empty())
        .ok_or(ExecutorError::InvalidArg)?;
    let argv = args
        .iter()
        .map(|arg| std::ffi::CString::new(arg.as_bytes()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| {
            ExecutorError::Other("process.args: an argument contains a NUL byte".into())
        })?;
    let Err(errno) = nix::unistd::execvp(&argv[0], &argv);
    let message = exec_error_message(&args[0], errno);
    tracing::error!("{message}");
    Err(ExecutorError::Other(message))
}

/// What failed and why when the program cannot be executed, naming the
/// program (cut short: it may be huge) and the errno.
fn exec_error_message(program: &str, errno: nix::errno::Errno) -> String {
    let shown: String = program.chars().take(256).collect();
    let cause = std::io::Error::from_raw_os_error(errno as i32);
    let mut message = format!("exec {shown:?}: {cause}");
    // ENOENT for a file that exists: the kernel could not find what the
    // file needs to run.
    if errno == nix::errno::Errno::ENOENT
        && program.contains('/')
        && std::path::Path::new(program).exists()
    {
        message.push_str(
            "; hint: the file exists, so its interpreter (#! line) or dynamic loader is missing",
        );
    }
    message
}

fn with_home(envs: &mut HashMap<String, String>) {
    if envs.get("HOME").is_none_or(|home| home.is_empty()) {
        envs.insert("HOME".to_owned(), "/".to_owned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_errors_name_the_program_and_the_errno() {
        let msg = exec_error_message("/no/such/program", nix::errno::Errno::ENOENT);
        assert_eq!(
            msg,
            "exec \"/no/such/program\": No such file or directory (os error 2)"
        );
        let msg = exec_error_message("/bin/sh", nix::errno::Errno::ENOENT);
        assert!(msg.contains("interpreter"), "{msg}");
        let long = "x".repeat(100_000);
        let msg = exec_error_message(&long, nix::errno::Errno::E2BIG);
        assert!(
            msg.len() < 400 && msg.contains("Argument list too long"),
            "{msg}"
        );
    }

    #[test]
    fn home_defaults_to_root_directory_only_when_missing() {
        let mut envs = HashMap::new();
        with_home(&mut envs);
        assert_eq!(envs["HOME"], "/");
        let mut envs = HashMap::from([("HOME".to_owned(), "/root".to_owned())]);
        with_home(&mut envs);
        assert_eq!(envs["HOME"], "/root");
    }
}
