//! The errors of the runtime library.
//!
//! Messages follow runc where orchestrators parse them: containerd classifies a
//! failed kill or delete by the substrings "container not running" and
//! "does not exist", so those words appear verbatim.

use std::path::PathBuf;

/// Everything a runtime operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No container with this id exists under the state root.
    #[error("container {id} does not exist")]
    NotFound {
        /// The container id.
        id: String,
    },
    /// A container with this id already exists under the state root.
    #[error("container with id {id} already exists; hint: delete it first or pick another id")]
    AlreadyExists {
        /// The container id.
        id: String,
    },
    /// The id cannot name a container.
    #[error("invalid container id {id:?}: {reason}")]
    InvalidId {
        /// The rejected id.
        id: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The container has no live process to act on.
    #[error("container not running: {id} is {status}")]
    NotRunning {
        /// The container id.
        id: String,
        /// Its current status.
        status: String,
    },
    /// The operation needs another status than the one the container is in.
    #[error("cannot {action} container {id}: it is {status}{hint}")]
    WrongStatus {
        /// What was attempted (`start`, `delete`, `pause`, ...).
        action: &'static str,
        /// The container id.
        id: String,
        /// Its current status.
        status: String,
        /// A hint that starts with "; " or is empty.
        hint: &'static str,
    },
    /// The signal is neither a known name nor a valid number.
    #[error(
        "invalid signal {0:?}; hint: use a name such as TERM or SIGKILL, or a number from 1 to 64"
    )]
    InvalidSignal(String),
    /// The bundle or its configuration is missing or invalid.
    #[error("bundle {path}: {reason}")]
    Bundle {
        /// The file or directory involved.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A file read or written by the runtime failed.
    #[error("{action} {path}")]
    Io {
        /// What was being done ("reading", "creating", ...).
        action: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The config's process could not be started as it is; the source is
    /// the errno its init would have failed with.
    #[error("bundle {path}: {field}: {reason}")]
    Process {
        /// The config file.
        path: PathBuf,
        /// The setting at fault (`process.cwd`, `process.env`, ...).
        field: &'static str,
        /// What is wrong with it.
        reason: String,
        /// The errno.
        #[source]
        source: std::io::Error,
    },
    /// Input other than the bundle (a process file, resources, flags) is invalid.
    #[error("{0}")]
    InvalidInput(String),
    /// youki's libcontainer failed.
    #[error("{action} container {id}")]
    Container {
        /// What was being done.
        action: &'static str,
        /// The container id.
        id: String,
        /// The libcontainer error, whose chain is kept for the log (boxed:
        /// it is large and errors travel through every return).
        #[source]
        source: Box<libcontainer::error::LibcontainerError>,
    },
    /// A cgroup operation failed.
    #[error("{action} cgroup {path} of container {id}: {reason}")]
    Cgroup {
        /// What was being done.
        action: &'static str,
        /// The container id.
        id: String,
        /// The cgroup path from the container's config.
        path: PathBuf,
        /// The cgroup library's message.
        reason: String,
    },
    /// A system call failed.
    #[error("{action}")]
    Sys {
        /// What was being done.
        action: &'static str,
        /// The errno.
        #[source]
        source: nix::Error,
    },
}

/// The result type of the runtime library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        Error::Io {
            action,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn container(
        action: &'static str,
        id: &str,
        source: libcontainer::error::LibcontainerError,
    ) -> Self {
        Error::Container {
            action,
            id: id.to_owned(),
            source: Box::new(source),
        }
    }
}

/// Formats an error with its whole source chain, "outer: inner: innermost",
/// as runc prints its errors. Every cause is printed: the runtime's own
/// errors never repeat their source. youki's errors below an
/// [`Error::Container`] are printed as [`youki_chain`] does.
pub fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = String::new();
    let mut next = Some(err);
    while let Some(current) = next {
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&current.to_string());
        if let Some(Error::Container { source, .. }) = current.downcast_ref::<Error>() {
            text.push_str(": ");
            text.push_str(&youki_chain(source.as_ref()));
            break;
        }
        next = current.source();
    }
    text
}

/// Formats an error of youki's libraries with its source chain. Many of them
/// repeat their source in their own message (`"failed to X: {0}"` over a
/// `#[source]`), which berth cannot change, so a cause whose text ends the
/// message of the error it caused is not printed twice.
pub fn youki_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut outer = text.clone();
    let mut source = err.source();
    while let Some(inner) = source {
        let inner_text = inner.to_string();
        if !inner_text.is_empty() && !outer.ends_with(&inner_text) {
            text.push_str(": ");
            text.push_str(&inner_text);
        }
        outer = inner_text;
        source = inner.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kill_errors_carry_the_words_containerd_classifies() {
        let not_running = Error::NotRunning {
            id: "c1".into(),
            status: "stopped".into(),
        };
        assert!(not_running.to_string().contains("container not running"));
        let missing = Error::NotFound { id: "c1".into() };
        assert!(missing.to_string().contains("does not exist"));
    }

    #[test]
    fn chain_prints_each_cause_once() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "gone");
        let err = Error::io("reading", "/x/config.json", io);
        assert_eq!(err.to_string(), "reading /x/config.json");
        assert_eq!(chain(&err), "reading /x/config.json: gone");

        // A cause that happens to end its parent's message is still printed:
        // only youki's errors are trusted to repeat their sources.
        let io = std::io::Error::other("gone");
        let err = Error::io("reading", "/x/gone", io);
        assert_eq!(chain(&err), "reading /x/gone: gone");

        let err = Error::InvalidInput(String::new());
        assert_eq!(chain(&err), "");

        let sys = Error::Sys {
            action: "joining",
            source: nix::Error::EPERM,
        };
        assert_eq!(chain(&sys), "joining: EPERM: Operation not permitted");
    }

    #[test]
    fn youki_errors_that_repeat_their_source_print_it_once() {
        #[derive(Debug, thiserror::Error)]
        #[error("failed to open: {0}")]
        struct Repeats(#[source] std::io::Error);
        let repeats = Repeats(std::io::Error::from_raw_os_error(libc::ENOENT));
        assert_eq!(
            youki_chain(&repeats),
            "failed to open: No such file or directory (os error 2)"
        );
        let container = Error::container(
            "creating",
            "c1",
            libcontainer::error::LibcontainerError::OtherIO(std::io::Error::other("gone")),
        );
        assert_eq!(chain(&container), "creating container c1: io error: gone");
    }
}
