//! Network namespaces kept alive by a bind mount on a file, as `ip netns`
//! keeps them, under `/run/berth/netns/<container id>`: created before the
//! runtime's `create`, which joins it by path, and removed at teardown.

use super::NetworkError;
use std::ffi::CString;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Where the namespaces are bound.
pub const NETNS_DIR: &str = "/run/berth/netns";

/// The path of the container `id`'s network namespace.
pub fn path_of(id: &str) -> PathBuf {
    Path::new(NETNS_DIR).join(id)
}

fn cstring(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes()).map_err(io::Error::other)
}

/// Creates a network namespace bound at `path`. A thread unshares its own
/// network namespace and binds it there; the process's stays as it was.
pub fn create(path: &Path) -> Result<(), NetworkError> {
    let io_err = NetworkError::io("creating the network namespace", path);
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(NetworkError::io("creating", dir))?;
    }
    fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(NetworkError::io("creating", path))?;
    let target = cstring(path).map_err(NetworkError::io("creating", path))?;
    let bound = std::thread::spawn(move || -> io::Result<()> {
        // SAFETY: unshare takes a flag; it changes only this thread, which
        // ends right after.
        if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
            return Err(io::Error::last_os_error());
        }
        let source = c"/proc/thread-self/ns/net";
        // SAFETY: both paths are NUL-terminated strings that outlive the call.
        let rc = unsafe {
            libc::mount(
                source.as_ptr(),
                target.as_ptr(),
                std::ptr::null(),
                libc::MS_BIND,
                std::ptr::null(),
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    })
    .join()
    .unwrap_or_else(|_| Err(io::Error::other("the namespace thread panicked")));
    if let Err(e) = bound {
        let _ = fs::remove_file(path);
        return Err(io_err(e));
    }
    Ok(())
}

/// Unbinds and removes the namespace at `path`; a missing one is no error.
pub fn remove(path: &Path) -> Result<(), NetworkError> {
    let target = cstring(path).map_err(NetworkError::io("removing", path))?;
    // SAFETY: the path is a NUL-terminated string that outlives the call.
    let rc = unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) };
    if rc != 0 {
        let e = io::Error::last_os_error();
        // Not mounted (EINVAL) or already gone (ENOENT) is what is wanted.
        if !matches!(e.raw_os_error(), Some(libc::EINVAL | libc::ENOENT)) {
            return Err(NetworkError::io("unmounting the network namespace", path)(
                e,
            ));
        }
    }
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(NetworkError::io("removing", path)(e)),
    }
}

/// Whether `path` holds a bound network namespace.
pub fn exists(path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    // A bound namespace lives on nsfs, a device of its own.
    match (fs::metadata(path), path.parent().map(fs::metadata)) {
        (Ok(ns), Some(Ok(dir))) => ns.dev() != dir.dev(),
        _ => false,
    }
}

/// The runtime configuration `spec` with its network namespace joined by
/// `path` (the runtime then joins it instead of making a new one).
pub fn join_by_path(spec: &[u8], path: &Path) -> io::Result<Vec<u8>> {
    let mut value: serde_json::Value = serde_json::from_slice(spec).map_err(io::Error::other)?;
    let entry = serde_json::json!({"type": "network", "path": path});
    match value["linux"]["namespaces"].as_array_mut() {
        Some(namespaces) => {
            namespaces.retain(|n| n["type"] != "network");
            namespaces.push(entry);
        }
        None => {
            return Err(io::Error::other(
                "the configuration has no linux.namespaces",
            ));
        }
    }
    serde_json::to_vec_pretty(&value).map_err(io::Error::other)
}

/// Deletes the host link `name` (a network's bridge), if it exists.
pub fn delete_link(name: &str) {
    let status = std::process::Command::new("ip")
        .args(["link", "delete", name])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
    tracing::debug!(link = name, ?status, "deleting a bridge");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_network_namespace_is_joined_by_path() {
        let spec = br#"{"linux": {"namespaces": [{"type": "pid"}, {"type": "network"}]}}"#;
        let joined = join_by_path(spec, Path::new("/run/berth/netns/abc")).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&joined).unwrap();
        assert_eq!(
            v["linux"]["namespaces"],
            serde_json::json!([{"type": "pid"}, {"type": "network", "path": "/run/berth/netns/abc"}])
        );
        assert!(join_by_path(b"{}", Path::new("/x")).is_err());
    }

    #[test]
    fn a_namespace_is_bound_then_removed_twice_without_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ns");
        create(&path).unwrap();
        assert!(exists(&path));
        // The namespace has only its own loopback.
        let out = std::process::Command::new("nsenter")
            .arg(format!("--net={}", path.display()))
            .args(["ip", "-o", "link"])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{out:?}");
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(text.contains(": lo:"), "{text}");
        remove(&path).unwrap();
        assert!(!path.exists());
        remove(&path).unwrap();
    }
}
