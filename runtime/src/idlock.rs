//! A lock per container id, so that two runtime processes never create (or
//! delete) one container at the same time.
//!
//! runc serialises operations on one container with a file lock; without
//! one, two `create` of one id can both find the id free, and the loser's
//! cleanup then removes the winner's state. The lock is a `flock` on
//! `ROOT/@locks/ID`: `@` cannot appear in an id, so the directory never
//! shadows a container. A lock file is removed when its container goes; a
//! process that locked a file another one removed meanwhile sees that the
//! path no longer names its file and locks the new one.

use crate::error::{Error, Result};
use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The directory under the state root that holds the lock files.
const LOCK_DIR: &str = "@locks";

/// How long to wait for another runtime process to finish with the id. A
/// create with slow hooks can hold it a while; a wait without end would let
/// one stuck process hang every later one.
const WAIT: Duration = Duration::from_secs(60);

/// An exclusive lock on one container id, released on drop.
#[derive(Debug)]
pub(crate) struct IdLock {
    file: File,
    path: PathBuf,
}

impl IdLock {
    /// Takes the lock of `id` under `root`, creating the root if needed (a
    /// create's first use of it), and waits for a holder to finish.
    pub(crate) fn acquire(root: &Path, id: &str) -> Result<IdLock> {
        let dir = root.join(LOCK_DIR);
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(|e| Error::io("creating", &dir, e))?;
        Self::lock(&dir, id)
    }

    /// Takes the lock of `id` for work on a container that may already be
    /// gone (delete): `None` when `root` does not exist. It never creates
    /// `root`, so a lock taken after a caller removed the whole state root
    /// (a build removing its RUN step's staging) cannot bring it back.
    pub(crate) fn acquire_existing(root: &Path, id: &str) -> Result<Option<IdLock>> {
        let dir = root.join(LOCK_DIR);
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io("creating", &dir, e)),
        }
        match Self::lock(&dir, id) {
            Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                Ok(None)
            }
            other => other.map(Some),
        }
    }

    /// Takes the lock of `id` in the lock directory `dir`.
    fn lock(dir: &Path, id: &str) -> Result<IdLock> {
        let path = dir.join(id);
        let deadline = Instant::now() + WAIT;
        loop {
            let file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o600)
                .custom_flags(libc::O_CLOEXEC)
                .open(&path)
                .map_err(|e| Error::io("opening the lock", &path, e))?;
            // SAFETY: flock on a descriptor this function owns.
            if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
                let err = std::io::Error::last_os_error();
                if err.raw_os_error() != Some(libc::EWOULDBLOCK) {
                    return Err(Error::io("locking", &path, err));
                }
                if Instant::now() >= deadline {
                    return Err(Error::InvalidInput(format!(
                        "container {id} is locked by another runtime process for over {}s (lock file {})",
                        WAIT.as_secs(),
                        path.display()
                    )));
                }
                std::thread::sleep(Duration::from_millis(2));
                continue;
            }
            // The holder before us may have removed the file it locked; the
            // lock is ours only if the path still names the file we hold.
            let held = file
                .metadata()
                .map_err(|e| Error::io("inspecting the lock", &path, e))?;
            match std::fs::metadata(&path) {
                Ok(now) if now.dev() == held.dev() && now.ino() == held.ino() => {
                    return Ok(IdLock { file, path });
                }
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io("inspecting the lock", &path, e)),
            }
        }
    }

    /// Releases the lock and removes its file, once the container is gone.
    pub(crate) fn remove(self) {
        // Removed while held: a waiter then finds the path changed and
        // retries on a new file (see `acquire`).
        if let Err(err) = std::fs::remove_file(&self.path)
            && err.kind() != std::io::ErrorKind::NotFound
        {
            tracing::debug!(path = %self.path.display(), %err, "removing a container's lock file");
        }
    }
}

impl Drop for IdLock {
    /// Unlocks explicitly: libcontainer clones the container's init from
    /// this process, so the init shares the locked file description until
    /// it execs, and closing only this process's descriptor would leave the
    /// id locked while the container waits for `start`.
    fn drop(&mut self) {
        // SAFETY: flock on a descriptor this value owns.
        unsafe { libc::flock(self.file.as_raw_fd(), libc::LOCK_UN) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_waits_until_the_first_is_done() {
        let root = tempfile::tempdir().unwrap();
        let first = IdLock::acquire(root.path(), "c1").unwrap();
        let root_path = root.path().to_owned();
        let (tx, rx) = std::sync::mpsc::channel();
        let waiter = std::thread::spawn(move || {
            let second = IdLock::acquire(&root_path, "c1").unwrap();
            tx.send(()).unwrap();
            second.remove();
        });
        // The second cannot have it while the first holds it.
        assert!(rx.recv_timeout(Duration::from_millis(100)).is_err());
        // Another id is independent.
        IdLock::acquire(root.path(), "c2").unwrap().remove();
        first.remove();
        rx.recv_timeout(Duration::from_secs(5)).unwrap();
        waiter.join().unwrap();
        assert!(!root.path().join(LOCK_DIR).join("c1").exists());
    }
}
