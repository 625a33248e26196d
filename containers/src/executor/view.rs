//! A read-only view of a stage's filesystem: an overlay of its snapshots
//! mounted in a staging directory (or the one snapshot itself), plus path
//! resolution that follows symlinks without ever leaving the view's root.

use crate::executor::mount;
use berth_store::{Store, StoreError, tmp};
use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};

/// A mounted view; unmounted and removed on drop.
#[derive(Debug)]
pub struct View {
    root: PathBuf,
    staging: Option<PathBuf>,
}

impl View {
    /// Mounts the snapshots `lowers` (top first).
    pub fn mount(store: &Store, lowers: &[PathBuf]) -> Result<View, StoreError> {
        match lowers {
            [] => Ok(View {
                root: store.empty_dir()?,
                staging: None,
            }),
            // One snapshot needs no overlay; whiteouts in it hide nothing.
            [only] => Ok(View {
                root: only.clone(),
                staging: None,
            }),
            _ => {
                let dir = tmp::fresh(&store.tmp_dir(), "view");
                let root = dir.join("root");
                fs::create_dir_all(&root).map_err(berth_store::io_err("creating", &root))?;
                let view = View {
                    root: root.clone(),
                    staging: Some(dir),
                };
                mount::mount_overlay(&root, lowers, None).map_err(berth_store::io_err(
                    "mounting a read-only overlay at",
                    &root,
                ))?;
                Ok(view)
            }
        }
    }

    /// The root directory of the view.
    pub fn root(&self) -> &Path {
        &self.root
    }
}

impl Drop for View {
    fn drop(&mut self) {
        if let Some(dir) = &self.staging {
            let _ = tmp::remove_tree(dir);
        }
    }
}

/// Resolves `rel` inside `root`, following symlinks (at most 40) as if `root`
/// were `/`. With `follow_last` false the last component is not followed.
/// Returns the resolved path relative to `root`; missing components are kept
/// lexically.
pub fn resolve_in_root(root: &Path, rel: &str, follow_last: bool) -> io::Result<String> {
    let mut resolved: Vec<String> = Vec::new();
    let mut pending: Vec<String> = rel
        .split('/')
        .filter(|p| !p.is_empty())
        .rev()
        .map(str::to_string)
        .collect();
    let mut hops = 0;
    while let Some(part) = pending.pop() {
        match part.as_str() {
            "." => continue,
            ".." => {
                resolved.pop();
                continue;
            }
            _ => {}
        }
        let candidate = root.join(resolved.join("/")).join(&part);
        let is_last = pending.is_empty();
        match fs::symlink_metadata(&candidate) {
            Ok(m) if m.file_type().is_symlink() && (follow_last || !is_last) => {
                hops += 1;
                if hops > 40 {
                    return Err(io::Error::other(format!(
                        "too many symlinks resolving {rel}"
                    )));
                }
                let target = fs::read_link(&candidate)?;
                if target.is_absolute() {
                    resolved.clear();
                }
                for c in target.components().rev() {
                    if let Component::Normal(p) = c {
                        pending.push(p.to_string_lossy().into_owned());
                    } else if c == Component::ParentDir {
                        pending.push("..".into());
                    }
                }
            }
            _ => resolved.push(part),
        }
    }
    Ok(resolved.join("/"))
}

/// Reads a small file inside a view, following symlinks within it.
pub fn read_in_root(root: &Path, rel: &str) -> Option<String> {
    let resolved = resolve_in_root(root, rel, true).ok()?;
    let path = root.join(resolved);
    fs::symlink_metadata(&path)
        .ok()
        .filter(|m| m.is_file())
        .and_then(|_| fs::read_to_string(path).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn symlinks_resolve_inside_the_root_only() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("usr/bin")).unwrap();
        symlink("usr/bin", root.join("bin")).unwrap();
        symlink("/etc", root.join("usr/bin/etc-link")).unwrap();
        symlink("../../../../..", root.join("usr/up")).unwrap();
        assert_eq!(resolve_in_root(root, "bin/sh", true).unwrap(), "usr/bin/sh");
        assert_eq!(
            resolve_in_root(root, "/bin/etc-link/passwd", true).unwrap(),
            "etc/passwd"
        );
        assert_eq!(resolve_in_root(root, "usr/up/etc", true).unwrap(), "etc");
        assert_eq!(resolve_in_root(root, "bin", false).unwrap(), "bin");
    }
}
