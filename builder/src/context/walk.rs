//! The stat walk of a build context.

use berth_dockerfile::dockerignore::Matcher;
use berth_store::Digest;
use sha2::{Digest as _, Sha256};
use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex};

/// What a context entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link (never followed).
    Symlink,
    /// A device, pipe or socket: listed, but never copied.
    Other,
}

/// One context entry and its stat data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextFile {
    /// The path relative to the context root, `/`-separated.
    pub rel: String,
    /// What it is.
    pub kind: FileKind,
    /// Permission bits.
    pub mode: u32,
    /// Size in bytes.
    pub size: u64,
    /// Modification time, seconds.
    pub mtime: i64,
    /// Modification time, nanosecond part.
    pub mtime_nsec: i64,
    /// Inode number.
    pub ino: u64,
    /// The symlink target.
    pub link: Option<PathBuf>,
}

/// What the walk does with a path, as the ignore rules decide.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Visit {
    /// Keep it (and descend, for a directory).
    Include,
    /// Leave it out, but descend into a directory because an exception may
    /// re-include something below it.
    ExcludeButDescend,
    /// Leave it out entirely.
    Exclude,
}

impl Visit {
    /// What a build does with the context path `rel` under the ignore rules:
    /// keeps it, leaves out a directory but enters it because an exception
    /// may keep something below it, or leaves it out entirely.
    pub fn by_ignore_rules(ignore: &Matcher, rel: &str, is_dir: bool) -> Visit {
        if !ignore.is_excluded(rel) {
            Visit::Include
        } else if is_dir && ignore.may_keep_inside(rel) {
            Visit::ExcludeButDescend
        } else {
            Visit::Exclude
        }
    }
}

/// Errors of the context walk.
#[derive(Debug, thiserror::Error)]
#[error("reading the build context at {}", path.display())]
pub struct WalkError {
    /// The path that failed.
    pub path: PathBuf,
    /// The underlying error.
    pub source: io::Error,
}

/// A walked build context.
#[derive(Debug, Clone)]
pub struct Context {
    root: PathBuf,
    files: BTreeMap<String, ContextFile>,
    /// The paths the ignore rules left out (a directory stands for what is
    /// below it, except what is kept there).
    excluded: Vec<String>,
}

impl Context {
    /// Walks `root`, asking `visit(rel, is_dir)` about each path. Directories
    /// are read by several threads at once: a no-op rebuild costs one stat per
    /// entry, and this keeps it close to the cost of a bare stat walk.
    pub fn walk(
        root: &Path,
        visit: &(dyn Fn(&str, bool) -> Visit + Sync),
    ) -> Result<Context, WalkError> {
        let meta = fs::metadata(root).map_err(|source| WalkError {
            path: root.to_path_buf(),
            source,
        })?;
        if !meta.is_dir() {
            return Err(WalkError {
                path: root.to_path_buf(),
                source: io::Error::other("the build context is not a directory"),
            });
        }
        let shared = Mutex::new(Queue {
            dirs: vec![(root.to_path_buf(), String::new())],
            busy: 0,
            error: None,
        });
        let wake = Condvar::new();
        let workers = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .clamp(1, 8);
        let parts: Vec<(Vec<ContextFile>, Vec<String>)> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..workers)
                .map(|_| scope.spawn(|| walk_worker(&shared, &wake, visit)))
                .collect();
            handles.into_iter().filter_map(|h| h.join().ok()).collect()
        });
        if let Ok(mut queue) = shared.lock()
            && let Some(error) = queue.error.take()
        {
            return Err(error);
        }
        let mut files = BTreeMap::new();
        let mut excluded = Vec::new();
        for (kept, left_out) in parts {
            for file in kept {
                files.insert(file.rel.clone(), file);
            }
            excluded.extend(left_out);
        }
        excluded.sort();
        Ok(Context {
            root: root.to_path_buf(),
            files,
            excluded,
        })
    }

    /// Walks only `root/sub` (everything kept), naming entries relative to
    /// `root`; the entry for `sub` itself is included. A missing `sub` gives an
    /// empty listing.
    pub fn walk_under(root: &Path, sub: &str) -> Result<Context, WalkError> {
        let mut files = BTreeMap::new();
        let top = root.join(sub);
        let meta = match fs::symlink_metadata(&top) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Ok(Context {
                    root: root.to_path_buf(),
                    files,
                    excluded: Vec::new(),
                });
            }
            Err(source) => return Err(WalkError { path: top, source }),
        };
        if !sub.is_empty() {
            let entry = stat_entry(sub.to_string(), &top, &meta)?;
            files.insert(sub.to_string(), entry);
        }
        if meta.is_dir() {
            let inner = Context::walk(&top, &|_, _| Visit::Include)?;
            for (rel, mut file) in inner.files {
                let full = if sub.is_empty() {
                    rel
                } else {
                    format!("{sub}/{rel}")
                };
                file.rel = full.clone();
                files.insert(full, file);
            }
        }
        Ok(Context {
            root: root.to_path_buf(),
            files,
            excluded: Vec::new(),
        })
    }

    /// Whether the ignore rules left out anything at or below `rel` (`""`
    /// for the whole context), or `rel` itself through a parent.
    pub fn excludes_at_or_below(&self, rel: &str) -> bool {
        self.excluded.iter().any(|e| {
            rel.is_empty()
                || e == rel
                || e.strip_prefix(rel).is_some_and(|r| r.starts_with('/'))
                || rel
                    .strip_prefix(e.as_str())
                    .is_some_and(|r| r.starts_with('/'))
        })
    }

    /// The context root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Every kept entry, sorted by path.
    pub fn files(&self) -> impl Iterator<Item = &ContextFile> {
        self.files.values()
    }

    /// The entry at `rel`.
    pub fn get(&self, rel: &str) -> Option<&ContextFile> {
        self.files.get(rel)
    }

    /// Entries at or below `rel` (`""` for all), in path order.
    pub fn under<'a>(&'a self, rel: &'a str) -> impl Iterator<Item = &'a ContextFile> + 'a {
        let prefix = if rel.is_empty() {
            String::new()
        } else {
            format!("{rel}/")
        };
        self.files
            .range(rel.to_string()..)
            .take_while(move |(k, _)| {
                // Keys between `rel` and `rel/` (such as `rel-x` or `rel.y`)
                // sort inside the range but are not below `rel`.
                rel.is_empty()
                    || k.as_str() == rel
                    || k.as_str() < prefix.as_str()
                    || k.starts_with(&prefix)
            })
            .filter(move |(k, _)| {
                rel.is_empty() || k.as_str() == rel || k.starts_with(&format!("{rel}/"))
            })
            .map(|(_, v)| v)
    }

    /// The host path of an entry.
    pub fn host_path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }
}

fn kind_of(meta: &fs::Metadata) -> FileKind {
    let ft = meta.file_type();
    if ft.is_dir() {
        FileKind::Dir
    } else if ft.is_symlink() {
        FileKind::Symlink
    } else if ft.is_file() {
        FileKind::File
    } else {
        FileKind::Other
    }
}

fn stat_entry(rel: String, path: &Path, meta: &fs::Metadata) -> Result<ContextFile, WalkError> {
    let kind = kind_of(meta);
    let link = if kind == FileKind::Symlink {
        Some(fs::read_link(path).map_err(|source| WalkError {
            path: path.to_path_buf(),
            source,
        })?)
    } else {
        None
    };
    Ok(ContextFile {
        rel,
        kind,
        mode: meta.mode() & 0o7777,
        size: meta.len(),
        mtime: meta.mtime(),
        mtime_nsec: meta.mtime_nsec(),
        ino: meta.ino(),
        link,
    })
}

/// Directories still to read, shared by the walk's threads.
struct Queue {
    dirs: Vec<(PathBuf, String)>,
    busy: usize,
    error: Option<WalkError>,
}

/// One walk thread: takes directories off the queue until none are left and
/// no other thread can add more; returns the entries it kept.
fn walk_worker(
    shared: &Mutex<Queue>,
    wake: &Condvar,
    visit: &(dyn Fn(&str, bool) -> Visit + Sync),
) -> (Vec<ContextFile>, Vec<String>) {
    let mut kept = Vec::new();
    let mut excluded = Vec::new();
    loop {
        let (dir, rel_dir) = {
            let Ok(mut queue) = shared.lock() else {
                return (kept, excluded);
            };
            loop {
                if queue.error.is_some() {
                    return (kept, excluded);
                }
                if let Some(next) = queue.dirs.pop() {
                    queue.busy += 1;
                    break next;
                }
                if queue.busy == 0 {
                    wake.notify_all();
                    return (kept, excluded);
                }
                queue = match wake.wait(queue) {
                    Ok(q) => q,
                    Err(_) => return (kept, excluded),
                };
            }
        };
        let mut subdirs = Vec::new();
        let result = read_one_dir(
            &dir,
            &rel_dir,
            visit,
            &mut kept,
            &mut excluded,
            &mut subdirs,
        );
        let Ok(mut queue) = shared.lock() else {
            return (kept, excluded);
        };
        queue.busy -= 1;
        match result {
            Ok(()) => queue.dirs.extend(subdirs),
            Err(e) => {
                if queue.error.is_none() {
                    queue.error = Some(e);
                }
            }
        }
        wake.notify_all();
    }
}

fn read_one_dir(
    dir: &Path,
    rel_dir: &str,
    visit: &(dyn Fn(&str, bool) -> Visit + Sync),
    kept: &mut Vec<ContextFile>,
    excluded: &mut Vec<String>,
    subdirs: &mut Vec<(PathBuf, String)>,
) -> Result<(), WalkError> {
    let err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| WalkError { path, source }
    };
    for child in fs::read_dir(dir).map_err(err(dir))? {
        let child = child.map_err(err(dir))?;
        let name = child.file_name();
        let Some(name) = name.to_str() else {
            tracing::warn!(dir = %dir.display(), "skipping a context file whose name is not UTF-8");
            continue;
        };
        let rel = if rel_dir.is_empty() {
            name.to_string()
        } else {
            format!("{rel_dir}/{name}")
        };
        let path = child.path();
        let meta = fs::symlink_metadata(&path).map_err(err(&path))?;
        let kind = kind_of(&meta);
        let decision = visit(&rel, kind == FileKind::Dir);
        if kind == FileKind::Dir && decision != Visit::Exclude {
            subdirs.push((path.clone(), rel.clone()));
        }
        if decision == Visit::Include {
            kept.push(stat_entry(rel, &path, &meta)?);
        } else {
            excluded.push(rel);
        }
    }
    Ok(())
}

/// Hashes a regular file's content. The file is opened without following a
/// symlink and without blocking, and must still be a regular file: a context
/// entry swapped for a symlink or a FIFO after the walk is refused, never
/// followed out of the context nor waited on.
pub fn hash_file(path: &Path) -> io::Result<Digest> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)?;
    if !file.metadata()?.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} is no longer a regular file", path.display()),
        ));
    }
    let mut hasher = Sha256::new();
    io::copy(&mut file, &mut hasher)?;
    Ok(Digest::from_hasher(hasher))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn walk_keeps_symlinks_and_honours_visit() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("src/deep")).unwrap();
        fs::create_dir_all(root.join("target/x")).unwrap();
        fs::write(root.join("src/deep/a.rs"), b"a").unwrap();
        fs::write(root.join("target/x/big"), b"b").unwrap();
        fs::write(root.join("target/keep"), b"k").unwrap();
        symlink("/etc/passwd", root.join("src/outside")).unwrap();
        let ctx = Context::walk(root, &|rel, _| match rel {
            "target" => Visit::ExcludeButDescend,
            "target/x" => Visit::Exclude,
            _ => Visit::Include,
        })
        .unwrap();
        let names: Vec<&str> = ctx.files().map(|f| f.rel.as_str()).collect();
        assert_eq!(
            names,
            [
                "src",
                "src/deep",
                "src/deep/a.rs",
                "src/outside",
                "target/keep"
            ]
        );
        let link = ctx.get("src/outside").unwrap();
        assert_eq!(link.kind, FileKind::Symlink);
        assert_eq!(link.link.as_deref(), Some(Path::new("/etc/passwd")));
        let under: Vec<&str> = ctx.under("src/deep").map(|f| f.rel.as_str()).collect();
        assert_eq!(under, ["src/deep", "src/deep/a.rs"]);
    }

    fn tree(files: &[&str]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for file in files {
            let path = dir.path().join(file);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, file).unwrap();
        }
        dir
    }

    fn walk_ignoring(dir: &Path, patterns: &[&str]) -> Context {
        let matcher = Matcher::new(patterns).unwrap();
        Context::walk(dir, &|rel, is_dir| {
            Visit::by_ignore_rules(&matcher, rel, is_dir)
        })
        .unwrap()
    }

    /// What `COPY . /dest/` copies: the kept entries and, as COPY adds them,
    /// the directories above them; directories end in `/`.
    fn copied(ctx: &Context) -> Vec<String> {
        let mut paths = std::collections::BTreeSet::new();
        for file in ctx.files() {
            for (i, _) in file.rel.match_indices('/') {
                paths.insert(format!("{}/", &file.rel[..i]));
            }
            paths.insert(match file.kind {
                FileKind::Dir => format!("{}/", file.rel),
                _ => file.rel.clone(),
            });
        }
        paths.into_iter().collect()
    }

    #[test]
    fn ignore_rules_table() {
        let files = [
            "a.txt",
            "docs/README.md",
            "docs/x.md",
            "src/lib.rs",
            "src/sub/deep.md",
            "subdir/sub1.txt",
            "subdir/other",
        ];
        let dir = tree(&files);
        let cases: &[(&[&str], &[&str])] = &[
            (
                &[],
                &[
                    "a.txt",
                    "docs/",
                    "docs/README.md",
                    "docs/x.md",
                    "src/",
                    "src/lib.rs",
                    "src/sub/",
                    "src/sub/deep.md",
                    "subdir/",
                    "subdir/other",
                    "subdir/sub1.txt",
                ],
            ),
            (
                &["docs", "src"],
                &["a.txt", "subdir/", "subdir/other", "subdir/sub1.txt"],
            ),
            (
                &["docs", "!docs/README.md"],
                &[
                    "a.txt",
                    "docs/",
                    "docs/README.md",
                    "src/",
                    "src/lib.rs",
                    "src/sub/",
                    "src/sub/deep.md",
                    "subdir/",
                    "subdir/other",
                    "subdir/sub1.txt",
                ],
            ),
            (
                &["**/*.md"],
                &[
                    "a.txt",
                    "docs/",
                    "src/",
                    "src/lib.rs",
                    "src/sub/",
                    "subdir/",
                    "subdir/other",
                    "subdir/sub1.txt",
                ],
            ),
            (
                &["*", "!src/**/*.md"],
                &["src/", "src/sub/", "src/sub/deep.md"],
            ),
            (
                &["subdir", "!*/sub1*"],
                &[
                    "a.txt",
                    "docs/",
                    "docs/README.md",
                    "docs/x.md",
                    "src/",
                    "src/lib.rs",
                    "src/sub/",
                    "src/sub/deep.md",
                    "subdir/",
                    "subdir/sub1.txt",
                ],
            ),
        ];
        for (patterns, expected) in cases {
            let ctx = walk_ignoring(dir.path(), patterns);
            assert_eq!(copied(&ctx), *expected, "{patterns:?}");
        }
    }

    #[test]
    fn excluded_directories_without_exceptions_are_not_entered() {
        let dir = tree(&[
            "keep",
            "secret/file",
            "secret/deeper/file",
            "docs/a",
            "docs/keep.md",
        ]);
        let cases: &[(&[&str], &[&str])] = &[
            (
                &["secret"],
                &["docs", "docs/a", "docs/keep.md", "keep", "secret"],
            ),
            (
                &["secret", "docs", "!docs/*.md"],
                &["docs", "docs/a", "docs/keep.md", "keep", "secret"],
            ),
            (
                &["secret", "!other/*"],
                &["docs", "docs/a", "docs/keep.md", "keep", "secret"],
            ),
            (
                &["secret", "!secret/deeper"],
                &[
                    "docs",
                    "docs/a",
                    "docs/keep.md",
                    "keep",
                    "secret",
                    "secret/deeper",
                    "secret/deeper/file",
                    "secret/file",
                ],
            ),
        ];
        for (patterns, expected) in cases {
            let matcher = Matcher::new(patterns).unwrap();
            let seen = Mutex::new(Vec::new());
            Context::walk(dir.path(), &|rel, is_dir| {
                if let Ok(mut seen) = seen.lock() {
                    seen.push(rel.to_string());
                }
                Visit::by_ignore_rules(&matcher, rel, is_dir)
            })
            .unwrap();
            // The walk's threads look at paths in any order.
            let mut seen = seen.into_inner().unwrap();
            seen.sort();
            assert_eq!(seen, *expected, "{patterns:?}");
        }
    }

    #[test]
    fn symlinks_are_listed_not_followed() {
        let dir = tree(&["inside"]);
        let outside = tree(&["outside-secret"]);
        symlink(outside.path(), dir.path().join("link")).unwrap();
        let ctx = walk_ignoring(dir.path(), &[]);
        let entries: Vec<(&str, FileKind)> =
            ctx.files().map(|f| (f.rel.as_str(), f.kind)).collect();
        assert_eq!(
            entries,
            [("inside", FileKind::File), ("link", FileKind::Symlink)]
        );
    }
}
