//! Finding the cgroups a container left behind, on v1, hybrid and v2 hosts.
//!
//! `cargo xtask ci` includes this file too (`#[path]`), to check after the
//! whole suite that no test left a container cgroup behind.

use std::path::PathBuf;

/// Cgroup directories whose name contains `name`: see [`dirs_where`].
pub fn dirs_naming(name: &str) -> Vec<PathBuf> {
    dirs_where(|dir| dir.contains(name))
}

/// Cgroup directories whose name satisfies `wanted`, down to four levels
/// below `/sys/fs/cgroup` (runtimes put a container's cgroup at the top of
/// each hierarchy, as youki's `:youki:<id>`, or under a parent such as
/// `/<containerd namespace>/<id>` or `system.slice/...`).
pub fn dirs_where(wanted: impl Fn(&str) -> bool) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![(PathBuf::from("/sys/fs/cgroup"), 0)];
    while let Some((dir, depth)) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            if !entry.file_type().is_ok_and(|kind| kind.is_dir()) {
                continue;
            }
            let path = entry.path();
            if wanted(&entry.file_name().to_string_lossy()) {
                found.push(path.clone());
            }
            if depth < 4 {
                stack.push((path, depth + 1));
            }
        }
    }
    found
}
