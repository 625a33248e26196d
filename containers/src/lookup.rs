//! Finding a container's command in its root filesystem the way the kernel
//! and `execvp` would from inside, so a failed start gets Docker's exit code:
//! 127 when the command is not there, 126 when it cannot be executed.

use std::ffi::OsString;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

/// Why a command cannot run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unrunnable {
    /// Nothing by that name (exit code 127).
    NotFound,
    /// Found, but a directory or without execute permission (exit code 126).
    NotExecutable(String),
}

impl Unrunnable {
    /// The exit code Docker gives a container whose command this is.
    pub fn exit_code(&self) -> i32 {
        match self {
            Unrunnable::NotFound => 127,
            Unrunnable::NotExecutable(_) => 126,
        }
    }
}

/// The most symlinks followed in one path, as Linux's limit.
const MAX_LINKS: usize = 40;

/// Resolves `path` (absolute inside the container) to a host path under
/// `root`, following symlinks as if `root` were `/`; `None` if a component
/// is missing or the links loop.
pub fn resolve_in_root(root: &Path, path: &Path) -> Option<PathBuf> {
    walk(root, path, false).ok()
}

/// Creates the directory `path` (absolute in the container) and its missing
/// parents inside `root`, following the image's symlinks without leaving it.
pub fn mkdir_in_root(root: &Path, path: &Path) -> std::io::Result<PathBuf> {
    walk(root, path, true)
}

fn walk(root: &Path, path: &Path, create: bool) -> std::io::Result<PathBuf> {
    let missing = || std::io::Error::from(std::io::ErrorKind::NotFound);
    let mut pending: Vec<OsString> = path
        .components()
        .rev()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect();
    let mut resolved: Vec<OsString> = Vec::new();
    let mut links = 0;
    while let Some(part) = pending.pop() {
        if part == ".." {
            resolved.pop();
            continue;
        }
        let mut host = root.to_path_buf();
        host.extend(&resolved);
        host.push(&part);
        let meta = match fs::symlink_metadata(&host) {
            Ok(meta) => meta,
            Err(e) if create && e.kind() == std::io::ErrorKind::NotFound => {
                fs::create_dir(&host)?;
                fs::symlink_metadata(&host)?
            }
            Err(e) => return Err(e),
        };
        if meta.file_type().is_symlink() {
            links += 1;
            if links > MAX_LINKS {
                return Err(std::io::Error::other(format!(
                    "too many levels of symbolic links in {}",
                    path.display()
                )));
            }
            let target = fs::read_link(&host)?;
            if target.is_absolute() {
                resolved.clear();
            }
            for c in target.components().rev() {
                match c {
                    Component::Normal(n) => pending.push(n.to_os_string()),
                    Component::ParentDir => pending.push("..".into()),
                    _ => {}
                }
            }
        } else {
            resolved.push(part);
        }
    }
    let mut host = root.to_path_buf();
    host.extend(&resolved);
    if create && !host.is_dir() {
        return Err(missing());
    }
    Ok(host)
}

/// The `PATH` of an environment list, or the default one.
fn search_path(env: &[String]) -> String {
    env.iter()
        .rev()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        .to_string()
}

fn check_executable(root: &Path, path: &Path) -> Result<(), Unrunnable> {
    let host = resolve_in_root(root, path).ok_or(Unrunnable::NotFound)?;
    let meta = fs::metadata(&host).map_err(|_| Unrunnable::NotFound)?;
    if meta.is_dir() {
        return Err(Unrunnable::NotExecutable(format!(
            "{} is a directory",
            path.display()
        )));
    }
    if meta.permissions().mode() & 0o111 == 0 {
        return Err(Unrunnable::NotExecutable(format!(
            "{}: permission denied",
            path.display()
        )));
    }
    Ok(())
}

/// Checks that `command` runs in the root filesystem `root` with the
/// working directory `cwd` and the environment `env` (for `PATH`).
pub fn check(root: &Path, command: &str, cwd: &str, env: &[String]) -> Result<(), Unrunnable> {
    if command.is_empty() {
        return Err(Unrunnable::NotFound);
    }
    if command.contains('/') {
        let path = Path::new(cwd).join(command);
        return check_executable(root, &path);
    }
    let mut first_denied = None;
    for dir in search_path(env).split(':').filter(|d| !d.is_empty()) {
        match check_executable(root, &Path::new(dir).join(command)) {
            Ok(()) => return Ok(()),
            Err(Unrunnable::NotExecutable(why)) if first_denied.is_none() => {
                first_denied = Some(why)
            }
            Err(_) => {}
        }
    }
    Err(first_denied.map_or(Unrunnable::NotFound, Unrunnable::NotExecutable))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn finds_commands_as_execvp_would_inside_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("bin")).unwrap();
        fs::create_dir_all(root.join("usr/bin")).unwrap();
        fs::write(root.join("bin/busybox"), b"").unwrap();
        fs::set_permissions(root.join("bin/busybox"), fs::Permissions::from_mode(0o755)).unwrap();
        fs::write(root.join("bin/data"), b"").unwrap();
        symlink("busybox", root.join("bin/sh")).unwrap();
        // An absolute link must resolve inside the root, not on the host.
        symlink("/bin/busybox", root.join("usr/bin/env")).unwrap();
        symlink("../../../../../bin/sh", root.join("usr/bin/up")).unwrap();
        symlink("loop", root.join("bin/loop")).unwrap();
        let env = vec!["PATH=/usr/bin:/bin".to_string()];
        let cases: &[(&str, Result<(), i32>)] = &[
            ("sh", Ok(())),
            ("env", Ok(())),
            ("up", Ok(())),
            ("/bin/sh", Ok(())),
            ("../bin/busybox", Ok(())),
            ("nope", Err(127)),
            ("/bin/nope", Err(127)),
            ("loop", Err(127)),
            ("data", Err(126)),
            ("/bin", Err(126)),
            ("", Err(127)),
        ];
        for (command, want) in cases {
            let got = check(root, command, "/usr", &env).map_err(|e| e.exit_code());
            assert_eq!(&got, want, "{command}");
        }
    }
}
