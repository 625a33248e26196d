//! Lists what of a build context is sent to the build: every entry the
//! `.dockerignore` matcher keeps, walked without following symlinks (so a
//! path never leads out of the context) and without descending into an
//! excluded directory unless an exception could keep something inside it.
//! Excluded directories that hold kept entries are listed, as their parents.

use super::dockerignore::Matcher;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use thiserror::Error;

/// What kind of file system entry a context entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryKind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link (not followed).
    Symlink,
    /// A device, socket or FIFO.
    Other,
}

/// One kept entry of the context.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The path relative to the context root, `/`-separated.
    pub path: String,
    /// What it is.
    pub kind: EntryKind,
}

/// Why the context could not be walked.
#[derive(Debug, Error)]
#[error("cannot walk the build context at {}: {message}", path.display())]
pub struct WalkError {
    /// The path that failed.
    pub path: PathBuf,
    /// What failed.
    pub message: String,
}

/// Walks `context` and returns the kept entries in depth-first, name order.
pub fn walk(context: &Path, matcher: &Matcher) -> Result<Vec<Entry>, WalkError> {
    walk_observed(context, matcher, &mut |_| {})
}

/// [`walk`], calling `visited` with every path the walk looks at.
fn walk_observed(
    context: &Path,
    matcher: &Matcher,
    visited: &mut dyn FnMut(&str),
) -> Result<Vec<Entry>, WalkError> {
    let metadata = std::fs::metadata(context).map_err(|err| WalkError {
        path: context.to_path_buf(),
        message: err.to_string(),
    })?;
    if !metadata.is_dir() {
        return Err(WalkError {
            path: context.to_path_buf(),
            message: "not a directory".to_string(),
        });
    }
    let mut kept = Vec::new();
    // Excluded directories walked for their exceptions: (depth, entry, listed yet).
    let mut pending: Vec<(usize, Entry, bool)> = Vec::new();
    let mut walker = walkdir::WalkDir::new(context)
        .follow_links(false)
        .min_depth(1)
        .sort_by_file_name()
        .into_iter();
    while let Some(next) = walker.next() {
        let entry = next.map_err(|err| WalkError {
            path: err.path().unwrap_or(context).to_path_buf(),
            message: err.to_string(),
        })?;
        let depth = entry.depth();
        while pending.last().is_some_and(|(d, _, _)| *d >= depth) {
            pending.pop();
        }
        let relative = entry
            .path()
            .strip_prefix(context)
            .unwrap_or(entry.path())
            .to_string_lossy()
            .replace(std::path::MAIN_SEPARATOR, "/");
        let file_type = entry.file_type();
        let kind = if file_type.is_symlink() {
            EntryKind::Symlink
        } else if file_type.is_dir() {
            EntryKind::Dir
        } else if file_type.is_file() {
            EntryKind::File
        } else {
            EntryKind::Other
        };
        visited(&relative);
        let excluded = matcher.is_excluded(&relative);
        let item = Entry {
            path: relative,
            kind,
        };
        if excluded {
            if kind == EntryKind::Dir {
                if matcher.may_keep_inside(&item.path) {
                    pending.push((depth, item, false));
                } else {
                    walker.skip_current_dir();
                }
            }
            continue;
        }
        // A kept entry inside excluded directories brings them along.
        for (_, parent, listed) in pending.iter_mut() {
            if !*listed {
                kept.push(parent.clone());
                *listed = true;
            }
        }
        kept.push(item);
    }
    Ok(kept)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn tree(files: &[&str]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for file in files {
            let path = dir.path().join(file);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, file).unwrap();
        }
        dir
    }

    fn kept(dir: &Path, patterns: &[&str]) -> Vec<String> {
        let matcher = Matcher::new(patterns).unwrap();
        walk(dir, &matcher)
            .unwrap()
            .into_iter()
            .map(|e| match e.kind {
                EntryKind::Dir => format!("{}/", e.path),
                _ => e.path,
            })
            .collect()
    }

    #[test]
    fn walk_table() {
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
            assert_eq!(kept(dir.path(), patterns), *expected, "{patterns:?}");
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
            let mut seen = Vec::new();
            walk_observed(dir.path(), &matcher, &mut |path| {
                seen.push(path.to_string())
            })
            .unwrap();
            assert_eq!(seen, *expected, "{patterns:?}");
        }
    }

    #[test]
    fn symlinks_are_listed_not_followed() {
        let dir = tree(&["inside"]);
        let outside = tree(&["outside-secret"]);
        std::os::unix::fs::symlink(outside.path(), dir.path().join("link")).unwrap();
        let entries = walk(dir.path(), &Matcher::default()).unwrap();
        assert_eq!(
            entries,
            [
                Entry {
                    path: "inside".into(),
                    kind: EntryKind::File
                },
                Entry {
                    path: "link".into(),
                    kind: EntryKind::Symlink
                },
            ]
        );
    }
}
