//! The workload executor: libcontainer's default, with runc's environment.

use libcontainer::workload::default::DefaultExecutor;
use libcontainer::workload::{
    Executor, ExecutorError, ExecutorSetEnvsError, ExecutorValidationError,
};
use oci_spec::runtime::Spec;
use std::collections::HashMap;

/// Executes the process like libcontainer's default executor, but sets the
/// environment as runc does: a user without a passwd entry (or without a home
/// in it) gets `HOME=/` instead of no HOME at all.
#[derive(Clone)]
pub(crate) struct RuncExecutor {
    inner: DefaultExecutor,
}

impl RuncExecutor {
    pub(crate) fn new() -> RuncExecutor {
        RuncExecutor {
            inner: DefaultExecutor {},
        }
    }
}

impl Executor for RuncExecutor {
    fn exec(&self, spec: &Spec) -> Result<(), ExecutorError> {
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
