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
        self.inner.exec(spec)
    }

    fn validate(&self, spec: &Spec) -> Result<(), ExecutorValidationError> {
        self.inner.validate(spec)
    }

    fn setup_envs(&self, mut envs: HashMap<String, String>) -> Result<(), ExecutorSetEnvsError> {
        with_home(&mut envs);
        self.inner.setup_envs(envs)
    }
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
    fn home_defaults_to_root_directory_only_when_missing() {
        let mut envs = HashMap::new();
        with_home(&mut envs);
        assert_eq!(envs["HOME"], "/");
        let mut envs = HashMap::from([("HOME".to_owned(), "/root".to_owned())]);
        with_home(&mut envs);
        assert_eq!(envs["HOME"], "/root");
    }
}
