//! Finding the cgroups a container left behind, on v1, hybrid and v2 hosts.

use std::path::PathBuf;

/// Cgroup directories whose name contains `name`, down to three levels below
/// each hierarchy under `/sys/fs/cgroup` (runtimes put a container's cgroup
/// at the top, as youki's `:youki:<id>`, or under a parent such as
/// `/youki/<id>` or `system.slice/...`).
pub fn dirs_naming(name: &str) -> Vec<PathBuf> {
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
            if entry.file_name().to_string_lossy().contains(name) {
                found.push(path.clone());
            }
            if depth < 4 {
                stack.push((path, depth + 1));
            }
        }
    }
    found
}
