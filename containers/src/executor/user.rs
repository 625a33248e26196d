//! Resolving a `USER` value (`name`, `uid`, `name:group`, `uid:gid`) against
//! the image's `/etc/passwd` and `/etc/group`, read with every symlink
//! resolved inside the image's root, never on the host.

use super::mount;
use std::path::{Path, PathBuf};

/// A resolved user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedUser {
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
    /// Supplementary groups the user is listed in.
    pub additional_gids: Vec<u32>,
    /// The home directory, for `HOME`.
    pub home: String,
}

/// Errors resolving a user.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    /// The user name is not in `/etc/passwd`.
    #[error("user '{0}' is not in the image's /etc/passwd")]
    UnknownUser(String),
    /// The group name is not in `/etc/group`.
    #[error("group '{0}' is not in the image's /etc/group")]
    UnknownGroup(String),
    /// The image's root could not be opened.
    #[error("opening the image root {} to read its users", path.display())]
    Root {
        /// The root.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

/// The most of an account file (`/etc/passwd`, `/etc/group`) that is read.
const ACCOUNT_FILE_LIMIT: u64 = 16 << 20;

/// Reads an account file of the image rooted at `root`, every symlink
/// resolved inside that root (as the container would see it); empty when
/// it is missing, not a regular file or too big.
pub fn read_account_file(root: &pathrs::Root, rel: &str) -> String {
    mount::read_in_root(root, rel, ACCOUNT_FILE_LIMIT)
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .unwrap_or_default()
}

/// Resolves `spec` (empty means root) in the image rooted at `root`.
pub fn resolve(root: &Path, spec: &str) -> Result<ResolvedUser, UserError> {
    let tree = mount::open_root(root).map_err(|source| UserError::Root {
        path: root.to_path_buf(),
        source,
    })?;
    let passwd = read_account_file(&tree, "/etc/passwd");
    let group = read_account_file(&tree, "/etc/group");
    resolve_with(&passwd, &group, spec)
}

/// Resolves `spec` against the given file contents.
pub fn resolve_with(passwd: &str, group: &str, spec: &str) -> Result<ResolvedUser, UserError> {
    let (user_part, group_part) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let user_part = if user_part.is_empty() { "0" } else { user_part };
    let users: Vec<Vec<&str>> = passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .filter(|f| f.len() >= 7)
        .collect();
    let found = match user_part.parse::<u32>() {
        Ok(uid) => users.iter().find(|f| f[2].parse() == Ok(uid)),
        Err(_) => users.iter().find(|f| f[0] == user_part),
    };
    let (uid, mut gid, name, home) = match (user_part.parse::<u32>(), found) {
        (_, Some(f)) => (
            f[2].parse().unwrap_or(0),
            f[3].parse().unwrap_or(0),
            f[0].to_string(),
            f[5].to_string(),
        ),
        (Ok(uid), None) => (uid, 0, String::new(), "/".to_string()),
        (Err(_), None) => return Err(UserError::UnknownUser(user_part.to_string())),
    };
    let groups: Vec<Vec<&str>> = group
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .filter(|f| f.len() >= 4)
        .collect();
    let mut additional_gids = Vec::new();
    if let Some(g) = group_part {
        gid = match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => groups
                .iter()
                .find(|f| f[0] == g)
                .and_then(|f| f[2].parse().ok())
                .ok_or_else(|| UserError::UnknownGroup(g.to_string()))?,
        };
    } else if !name.is_empty() {
        for f in &groups {
            if f[3].split(',').any(|member| member == name)
                && let Ok(n) = f[2].parse::<u32>()
                && n != gid
            {
                additional_gids.push(n);
            }
        }
    }
    Ok(ResolvedUser {
        uid,
        gid,
        additional_gids,
        home,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n";
    const GROUP: &str = "root:x:0:\napp:x:1000:\nwheel:x:10:app,other\n";

    #[test]
    fn account_files_are_read_inside_the_root_only() {
        let host = tempfile::tempdir().unwrap();
        std::fs::write(host.path().join("passwd"), "evil:x:4242:4242::/:/bin/sh\n").unwrap();
        let image = tempfile::tempdir().unwrap();
        let r = image.path();
        std::fs::create_dir_all(r.join("real")).unwrap();
        std::fs::write(
            r.join("real/passwd"),
            "app:x:1000:1000::/home/app:/bin/sh\n",
        )
        .unwrap();
        std::os::unix::fs::symlink(host.path(), r.join("etc")).unwrap();
        // /etc points at a host directory: inside the root it does not exist.
        assert!(matches!(resolve(r, "evil"), Err(UserError::UnknownUser(_))));
        std::fs::remove_file(r.join("etc")).unwrap();
        std::fs::create_dir(r.join("etc")).unwrap();
        // A symlink that stays inside the image is followed, as in the container.
        std::os::unix::fs::symlink("../real/passwd", r.join("etc/passwd")).unwrap();
        assert_eq!(resolve(r, "app").unwrap().uid, 1000);
        // A FIFO is not read (the read would block).
        std::fs::remove_file(r.join("etc/passwd")).unwrap();
        let fifo =
            std::ffi::CString::new(r.join("etc/passwd").into_os_string().into_encoded_bytes())
                .unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
        assert!(matches!(resolve(r, "app"), Err(UserError::UnknownUser(_))));
    }

    #[test]
    fn resolves_names_numbers_and_groups() {
        type Case<'a> = (&'a str, (u32, u32, &'a [u32]));
        let cases: &[Case] = &[
            ("", (0, 0, &[])),
            ("root", (0, 0, &[])),
            ("app", (1000, 1000, &[10])),
            ("1000", (1000, 1000, &[10])),
            ("app:wheel", (1000, 10, &[])),
            ("4242", (4242, 0, &[])),
            ("4242:77", (4242, 77, &[])),
        ];
        for (spec, (uid, gid, extra)) in cases {
            let got = resolve_with(PASSWD, GROUP, spec).unwrap();
            assert_eq!(
                (got.uid, got.gid, &got.additional_gids[..]),
                (*uid, *gid, *extra),
                "{spec}"
            );
        }
        assert!(matches!(
            resolve_with(PASSWD, GROUP, "nobody"),
            Err(UserError::UnknownUser(_))
        ));
        assert!(matches!(
            resolve_with(PASSWD, GROUP, "app:staff"),
            Err(UserError::UnknownGroup(_))
        ));
    }
}
