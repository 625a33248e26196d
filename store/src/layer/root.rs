//! Writing entries under a root directory that the entries themselves can
//! never leave. Parents are resolved inside the root with libpathrs
//! (`openat2` with `RESOLVE_IN_ROOT`: a symlink, absolute or with `..`, is
//! followed as if the root were `/`), and every change to the entry itself
//! is a `*at` call on that parent's descriptor with a single name, which
//! never follows a symlink in the name's place. Metadata is set through the
//! new file's own descriptor, or with `AT_SYMLINK_NOFOLLOW`.

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{FchmodatFlags, Mode, SFlag, UtimensatFlags};
use nix::sys::time::TimeSpec;
use nix::unistd::UnlinkatFlags;
use pathrs::flags::OpenFlags;
use pathrs::{Root, RootRef};
use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Parent directories kept open at once: layers list many entries per
/// directory, so most lookups hit; the cache is emptied when full.
const PARENT_CACHE: usize = 512;

/// Owner, permission bits and modification time of an entry.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Meta {
    /// Owner; `None` leaves it as created.
    pub uid: Option<u32>,
    /// Group; `None` leaves it as created.
    pub gid: Option<u32>,
    /// Permission bits, setuid, setgid and sticky included.
    pub mode: u32,
    /// Seconds since the epoch.
    pub mtime: i64,
}

/// What kind of special file to create.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Node {
    /// A character device.
    Char(u32, u32),
    /// A block device.
    Block(u32, u32),
    /// A named pipe.
    Fifo,
}

/// A root directory being filled. Paths given to it are relative, made of
/// plain components only (the callers check this and name the entry).
pub(crate) struct RootWriter {
    root: Root,
    top: File,
    parents: HashMap<PathBuf, File>,
    dirs: Vec<(PathBuf, i64)>,
}

fn nix_io(e: Errno) -> io::Error {
    io::Error::from_raw_os_error(e as i32)
}

fn pathrs_io(e: pathrs::error::Error) -> io::Error {
    let kind = match e.kind() {
        pathrs::error::ErrorKind::OsError(Some(errno)) => {
            io::Error::from_raw_os_error(errno).kind()
        }
        _ => io::ErrorKind::Other,
    };
    io::Error::new(kind, e)
}

/// A parent directory that could not be had inside the root.
#[derive(Debug, thiserror::Error)]
#[error(
    "parent '{}' is not a directory inside the root (a symlink to a missing or outside \
     path, or a file)",
    parent.display()
)]
pub(crate) struct ParentError {
    pub parent: PathBuf,
    pub source: pathrs::error::Error,
}

impl ParentError {
    /// The parent error inside `e`, or `e` back if it is another error.
    pub(crate) fn take(e: io::Error) -> Result<ParentError, io::Error> {
        if e.get_ref().is_some_and(|inner| inner.is::<ParentError>()) {
            let kind = e.kind();
            match e.into_inner().map(|inner| inner.downcast::<ParentError>()) {
                Some(Ok(parent)) => Ok(*parent),
                Some(Err(other)) => Err(io::Error::new(kind, other)),
                None => Err(io::Error::from(kind)),
            }
        } else {
            Err(e)
        }
    }
}

fn parent_error(rel: &Path, source: pathrs::error::Error) -> io::Error {
    let kind = match source.kind() {
        pathrs::error::ErrorKind::OsError(Some(errno)) => {
            io::Error::from_raw_os_error(errno).kind()
        }
        _ => io::ErrorKind::Other,
    };
    io::Error::new(
        kind,
        ParentError {
            parent: rel.to_path_buf(),
            source,
        },
    )
}

/// Splits a relative path into its parent and its last component.
fn split(rel: &Path) -> io::Result<(&Path, &OsStr)> {
    match (rel.parent(), rel.file_name()) {
        (Some(parent), Some(name)) => Ok((parent, name)),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the entry names the root itself",
        )),
    }
}

fn timespec(mtime: i64) -> TimeSpec {
    TimeSpec::new(mtime, 0)
}

impl RootWriter {
    /// Opens `dest`, a directory the caller created and trusts, as the root.
    pub(crate) fn open(dest: &Path) -> io::Result<RootWriter> {
        let root = Root::open(dest).map_err(pathrs_io)?;
        let top = File::open(dest)?;
        Ok(RootWriter {
            root,
            top,
            parents: HashMap::new(),
            dirs: Vec::new(),
        })
    }

    /// A writer rooted at an open directory (a directory that was resolved
    /// inside another, untrusted root).
    pub(crate) fn from_dir(top: File) -> io::Result<RootWriter> {
        let root = Root::from_fd(top.try_clone()?);
        Ok(RootWriter {
            root,
            top,
            parents: HashMap::new(),
            dirs: Vec::new(),
        })
    }

    /// The directory `rel` inside the root, created (with mode 0755) with its
    /// missing ancestors if needed.
    fn dir_fd(&mut self, rel: &Path) -> io::Result<RawFd> {
        if rel.as_os_str().is_empty() {
            return Ok(self.top.as_raw_fd());
        }
        if let Some(f) = self.parents.get(rel) {
            return Ok(f.as_raw_fd());
        }
        let handle = self
            .root
            .mkdir_all(rel, &std::fs::Permissions::from_mode(0o755))
            .map_err(|e| parent_error(rel, e))?;
        let file = handle
            .reopen(OpenFlags::O_RDONLY | OpenFlags::O_DIRECTORY)
            .map_err(|e| parent_error(rel, e))?;
        Ok(self.remember(rel.to_path_buf(), file))
    }

    /// The existing directory `rel` inside the root (symlinks on the way
    /// followed as if the root were `/`), as a descriptor of its own.
    fn existing_dir(&self, rel: &Path) -> io::Result<OwnedFd> {
        if rel.as_os_str().is_empty() {
            return self.top.as_fd().try_clone_to_owned();
        }
        let handle = self.root.resolve(rel).map_err(|e| parent_error(rel, e))?;
        Ok(handle.into())
    }

    fn remember(&mut self, rel: PathBuf, file: File) -> RawFd {
        if self.parents.len() >= PARENT_CACHE {
            self.parents.clear();
        }
        let fd = file.as_raw_fd();
        self.parents.insert(rel, file);
        fd
    }

    /// Removes whatever `name` is in `dir` (the directory `parent`), a
    /// directory with its contents, without following a symlink in its place.
    fn remove(&mut self, parent: &Path, dir: RawFd, name: &OsStr) -> io::Result<()> {
        match nix::unistd::unlinkat(Some(dir), name, UnlinkatFlags::NoRemoveDir) {
            Ok(()) | Err(Errno::ENOENT) => Ok(()),
            Err(Errno::EISDIR) => {
                // SAFETY: `dir` is open for this whole call: it is the root or
                // the cached `parent`, which the cache keeps below.
                let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(dir) };
                RootRef::from_fd(borrowed)
                    .remove_all(name)
                    .map_err(pathrs_io)?;
                // Cached directories may have been under the removed one, by
                // any path; only `parent` itself is certainly still in place.
                self.parents.retain(|k, _| k == parent);
                Ok(())
            }
            Err(e) => Err(nix_io(e)),
        }
    }

    /// Runs `create` for `name` in `dir`; if something is in the way, removes
    /// it and tries once more.
    fn replace<T>(
        &mut self,
        parent: &Path,
        dir: RawFd,
        name: &OsStr,
        mut create: impl FnMut(RawFd) -> nix::Result<T>,
    ) -> io::Result<T> {
        match create(dir) {
            Err(Errno::EEXIST) => {
                self.remove(parent, dir, name)?;
                create(dir).map_err(nix_io)
            }
            other => other.map_err(nix_io),
        }
    }

    fn set_link_meta(dir: RawFd, name: &OsStr, meta: &Meta) -> io::Result<()> {
        let name = std::ffi::CString::new(name.as_encoded_bytes()).map_err(io::Error::other)?;
        // SAFETY: `dir` is an open descriptor, `name` is NUL-terminated, and
        // -1 (as unsigned) leaves an id unchanged.
        let rc = unsafe {
            libc::fchownat(
                dir,
                name.as_ptr(),
                meta.uid.unwrap_or(u32::MAX),
                meta.gid.unwrap_or(u32::MAX),
                libc::AT_SYMLINK_NOFOLLOW,
            )
        };
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    fn set_link_mtime(dir: RawFd, name: &OsStr, mtime: i64) -> io::Result<()> {
        let t = timespec(mtime);
        nix::sys::stat::utimensat(Some(dir), name, &t, &t, UtimensatFlags::NoFollowSymlink)
            .map_err(nix_io)
    }

    /// Owner first, then mode: chown clears the setuid and setgid bits.
    fn set_fd_meta(file: &File, meta: &Meta) -> io::Result<()> {
        std::os::unix::fs::fchown(file, meta.uid, meta.gid)?;
        file.set_permissions(std::fs::Permissions::from_mode(meta.mode & 0o7777))
    }

    /// A directory. An existing directory is kept (its contents too) and gets
    /// the new owner and mode; anything else in the way is replaced. Its
    /// mtime is set by [`RootWriter::finish`], after its children.
    pub(crate) fn dir(&mut self, rel: &Path, meta: &Meta) -> io::Result<()> {
        if rel.as_os_str().is_empty() {
            let top = self.top.try_clone()?;
            Self::set_fd_meta(&top, meta)?;
            self.dirs.push((PathBuf::new(), meta.mtime));
            return Ok(());
        }
        let (parent, name) = split(rel)?;
        let dir = self.dir_fd(parent)?;
        let open = |dir: RawFd| {
            nix::fcntl::openat(
                Some(dir),
                name,
                OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
        };
        let fd = match nix::sys::stat::mkdirat(Some(dir), name, Mode::from_bits_truncate(0o700)) {
            Ok(()) => open(dir),
            Err(Errno::EEXIST) => match open(dir) {
                // Not a directory (or a symlink): replace it.
                Err(Errno::ENOTDIR | Errno::ELOOP) => {
                    self.remove(parent, dir, name)?;
                    nix::sys::stat::mkdirat(Some(dir), name, Mode::from_bits_truncate(0o700))
                        .map_err(nix_io)?;
                    open(dir)
                }
                other => other,
            },
            Err(e) => Err(e),
        }
        .map_err(nix_io)?;
        // SAFETY: `openat` returned a fresh descriptor we now own.
        let file = unsafe { File::from_raw_fd(fd) };
        Self::set_fd_meta(&file, meta)?;
        self.remember(rel.to_path_buf(), file);
        self.dirs.push((rel.to_path_buf(), meta.mtime));
        Ok(())
    }

    /// A regular file with `content`, replacing anything in its place.
    pub(crate) fn file(
        &mut self,
        rel: &Path,
        meta: &Meta,
        content: &mut dyn io::Read,
    ) -> io::Result<()> {
        let (parent, name) = split(rel)?;
        let dir = self.dir_fd(parent)?;
        let fd = self.replace(parent, dir, name, |dir| {
            nix::fcntl::openat(
                Some(dir),
                name,
                OFlag::O_WRONLY
                    | OFlag::O_CREAT
                    | OFlag::O_EXCL
                    | OFlag::O_NOFOLLOW
                    | OFlag::O_CLOEXEC,
                Mode::from_bits_truncate(0o600),
            )
        })?;
        // SAFETY: `openat` returned a fresh descriptor we now own.
        let mut file = unsafe { File::from_raw_fd(fd) };
        io::copy(content, &mut file)?;
        Self::set_fd_meta(&file, meta)?;
        let t = timespec(meta.mtime);
        nix::sys::stat::futimens(file.as_raw_fd(), &t, &t).map_err(nix_io)
    }

    /// A regular file copied from a host file (a build's own source).
    pub(crate) fn copy_file(&mut self, rel: &Path, meta: &Meta, source: &Path) -> io::Result<()> {
        let mut source = File::open(source)?;
        self.file(rel, meta, &mut source)
    }

    /// A symbolic link; its target is data, never resolved here.
    pub(crate) fn symlink(&mut self, rel: &Path, target: &Path, meta: &Meta) -> io::Result<()> {
        let (parent, name) = split(rel)?;
        let dir = self.dir_fd(parent)?;
        self.replace(parent, dir, name, |dir| {
            nix::unistd::symlinkat(target, Some(dir), name)
        })?;
        Self::set_link_meta(dir, name, meta)?;
        Self::set_link_mtime(dir, name, meta.mtime)
    }

    /// A hard link to `target`, an earlier entry; both are resolved inside
    /// the root, and a symlink at `target` is linked itself, not followed.
    pub(crate) fn hardlink(&mut self, rel: &Path, target: &Path) -> io::Result<()> {
        let (target_parent, target_name) = split(target)?;
        let target_handle = self.existing_dir(target_parent)?;
        let target_dir = target_handle.as_raw_fd();
        let (parent, name) = split(rel)?;
        let dir = self.dir_fd(parent)?;
        self.replace(parent, dir, name, |dir| {
            nix::unistd::linkat(
                Some(target_dir),
                target_name,
                Some(dir),
                name,
                AtFlags::empty(),
            )
        })
    }

    /// A device node or a named pipe, replacing anything in its place.
    pub(crate) fn node(&mut self, rel: &Path, node: Node, meta: &Meta) -> io::Result<()> {
        let (parent, name) = split(rel)?;
        let dir = self.dir_fd(parent)?;
        let (kind, dev) = match node {
            Node::Char(major, minor) => (SFlag::S_IFCHR, libc::makedev(major, minor)),
            Node::Block(major, minor) => (SFlag::S_IFBLK, libc::makedev(major, minor)),
            Node::Fifo => (SFlag::S_IFIFO, 0),
        };
        self.replace(parent, dir, name, |dir| {
            nix::sys::stat::mknodat(Some(dir), name, kind, Mode::from_bits_truncate(0o600), dev)
        })?;
        Self::set_link_meta(dir, name, meta)?;
        // The name is the node just made, not a symlink, so following is moot.
        nix::sys::stat::fchmodat(
            Some(dir),
            name,
            Mode::from_bits_truncate(meta.mode & 0o7777),
            FchmodatFlags::FollowSymlink,
        )
        .map_err(nix_io)?;
        Self::set_link_mtime(dir, name, meta.mtime)
    }

    /// An overlayfs whiteout (a 0/0 character device) in place of `rel`,
    /// whatever was there.
    pub(crate) fn whiteout(&mut self, rel: &Path) -> io::Result<()> {
        let (parent, name) = split(rel)?;
        let dir = self.dir_fd(parent)?;
        self.replace(parent, dir, name, |dir| {
            nix::sys::stat::mknodat(Some(dir), name, SFlag::S_IFCHR, Mode::empty(), 0)
        })
    }

    /// Marks the directory `rel` (created if missing) opaque for overlayfs.
    pub(crate) fn opaque(&mut self, rel: &Path) -> io::Result<()> {
        let fd = self.dir_fd(rel)?;
        super::xattr::set_opaque_fd(fd)
    }

    /// Sets the directories' mtimes, deepest last-written first, now that
    /// their children are in place. A directory since replaced by something
    /// else gets nothing: its path is no longer followed.
    pub(crate) fn finish(mut self) -> io::Result<()> {
        self.parents.clear();
        for (rel, mtime) in std::mem::take(&mut self.dirs).into_iter().rev() {
            if rel.as_os_str().is_empty() {
                let t = timespec(mtime);
                nix::sys::stat::futimens(self.top.as_raw_fd(), &t, &t).map_err(nix_io)?;
                continue;
            }
            let (parent, name) = split(&rel)?;
            let Ok(handle) = self.existing_dir(parent) else {
                continue;
            };
            let dir = handle.as_raw_fd();
            let is_dir = nix::sys::stat::fstatat(Some(dir), name, AtFlags::AT_SYMLINK_NOFOLLOW)
                .is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFDIR);
            if is_dir {
                Self::set_link_mtime(dir, name, mtime)?;
            }
        }
        Ok(())
    }
}
