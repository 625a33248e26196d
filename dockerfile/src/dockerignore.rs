//! `.dockerignore` with Docker's semantics (moby's patternmatcher and
//! ignorefile), not gitignore's: patterns are anchored at the context root,
//! the last matching pattern wins, a pattern matching a parent directory
//! matches everything under it, and `!` re-includes.

use super::glob::Glob;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// Why an ignore file could not be used.
#[derive(Debug, Error)]
pub enum IgnoreError {
    /// The file exists but could not be read.
    #[error("cannot read the ignore file {}", path.display())]
    Read {
        /// The ignore file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A pattern is invalid.
    #[error("invalid .dockerignore pattern {pattern:?}: {reason}")]
    Pattern {
        /// The pattern as cleaned.
        pattern: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A pattern of an ignore file is invalid.
    #[error("{}: {error}", path.display())]
    File {
        /// The ignore file.
        path: PathBuf,
        /// The pattern error (part of the message, so not a separate cause).
        error: Box<IgnoreError>,
    },
}

/// One pattern, with whether it is an exception (`!`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    /// The compiled pattern.
    pub glob: Glob,
    /// `!pattern`: paths it matches are kept.
    pub exception: bool,
}

/// A compiled list of patterns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Matcher {
    patterns: Vec<Pattern>,
}

impl Matcher {
    /// Compiles patterns (as [`read_patterns`] returns them). Blank ones are
    /// skipped; a lone `!` and malformed patterns are errors.
    pub fn new<S: AsRef<str>>(patterns: &[S]) -> Result<Matcher, IgnoreError> {
        let mut compiled = Vec::with_capacity(patterns.len());
        for pattern in patterns {
            let trimmed = pattern.as_ref().trim();
            if trimmed.is_empty() {
                continue;
            }
            let mut cleaned = clean(trimmed);
            let exception = cleaned.starts_with('!');
            if exception {
                if cleaned.len() == 1 {
                    return Err(IgnoreError::Pattern {
                        pattern: cleaned,
                        reason: "illegal exclusion pattern: \"!\"".to_string(),
                    });
                }
                cleaned.remove(0);
            }
            let glob = Glob::new(&cleaned).map_err(|reason| IgnoreError::Pattern {
                pattern: cleaned.clone(),
                reason,
            })?;
            compiled.push(Pattern { glob, exception });
        }
        Ok(Matcher { patterns: compiled })
    }

    /// The compiled patterns, in order.
    pub fn patterns(&self) -> &[Pattern] {
        &self.patterns
    }

    /// Whether any pattern is an exception.
    pub fn has_exceptions(&self) -> bool {
        self.patterns.iter().any(|p| p.exception)
    }

    /// Whether `path` (slash-separated, relative to the context root) is left
    /// out of the context: the last pattern matching it or one of its parent
    /// directories decides. The context root itself is never excluded.
    pub fn is_excluded(&self, path: &str) -> bool {
        let file = clean(path);
        if file == "." {
            return false;
        }
        let parent = dir(&file);
        let parent_dirs: Vec<&str> = if parent == "." {
            Vec::new()
        } else {
            parent.split('/').collect()
        };
        let mut excluded = false;
        for pattern in &self.patterns {
            // An exclusion can only change a kept path and an exception an
            // excluded one.
            if pattern.exception != excluded {
                continue;
            }
            let mut matched = pattern.glob.matches(&file);
            if !matched {
                matched = (1..=parent_dirs.len())
                    .any(|n| pattern.glob.matches(&parent_dirs[..n].join("/")));
            }
            if matched {
                excluded = !pattern.exception;
            }
        }
        excluded
    }

    /// Whether an exception could keep something inside the excluded
    /// directory `dir`, so the walk must look inside it.
    pub fn may_keep_inside(&self, dir: &str) -> bool {
        let prefix = format!("{}/", clean(dir));
        self.patterns
            .iter()
            .any(|p| p.exception && p.glob.could_match_under(&prefix))
    }
}

/// Reads the pattern lines of an ignore file: BOM stripped, `#` comment lines
/// and blank lines dropped, each pattern trimmed and cleaned, a leading `/`
/// removed (so `/a` and `a` are the same).
pub fn read_patterns(text: &str) -> Vec<String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut patterns = Vec::new();
    for line in text.lines() {
        if line.starts_with('#') {
            continue;
        }
        let mut pattern = line.trim();
        if pattern.is_empty() {
            continue;
        }
        let invert = pattern.starts_with('!');
        if invert {
            pattern = pattern[1..].trim();
        }
        let mut cleaned = String::new();
        if !pattern.is_empty() {
            cleaned = clean(pattern);
            if cleaned.len() > 1 && cleaned.starts_with('/') {
                cleaned.remove(0);
            }
        }
        if invert {
            cleaned.insert(0, '!');
        }
        patterns.push(cleaned);
    }
    patterns
}

/// The largest ignore file read.
const IGNORE_FILE_LIMIT: u64 = 16 << 20;

/// Reads an ignore file when it is a regular file. A symlink is never
/// followed (it could point outside the context) and, like anything that is
/// not a regular file, counts as no ignore file: BuildKit reads the file
/// through the context's own tree, where such a link leads nowhere.
fn read_ignore_file(path: &Path) -> Result<Option<Vec<u8>>, IgnoreError> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let read_err = |source| IgnoreError::Read {
        path: path.to_path_buf(),
        source,
    };
    let file = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
    {
        Ok(file) => file,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(err) if err.raw_os_error() == Some(libc::ELOOP) => {
            tracing::warn!(path = %path.display(), "ignoring an ignore file that is a symlink");
            return Ok(None);
        }
        Err(err) => return Err(read_err(err)),
    };
    let meta = file.metadata().map_err(read_err)?;
    if !meta.is_file() {
        tracing::warn!(path = %path.display(), "ignoring an ignore file that is not a regular file");
        return Ok(None);
    }
    if meta.len() > IGNORE_FILE_LIMIT {
        return Err(read_err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "{} bytes, over the limit of {IGNORE_FILE_LIMIT}",
                meta.len()
            ),
        )));
    }
    let mut bytes = Vec::new();
    file.take(IGNORE_FILE_LIMIT)
        .read_to_end(&mut bytes)
        .map_err(read_err)?;
    Ok(Some(bytes))
}

/// The ignore file for a build: `<Dockerfile name>.dockerignore` next to the
/// Dockerfile wins over `.dockerignore` at the context root. Returns the
/// matcher and the file used (none: nothing is excluded).
pub fn for_build(
    dockerfile: &Path,
    context: &Path,
) -> Result<(Matcher, Option<PathBuf>), IgnoreError> {
    let mut candidates = Vec::new();
    if let Some(name) = dockerfile.file_name() {
        let mut specific = name.to_os_string();
        specific.push(".dockerignore");
        candidates.push(dockerfile.with_file_name(specific));
    }
    candidates.push(context.join(".dockerignore"));
    for candidate in candidates {
        if let Some(bytes) = read_ignore_file(&candidate)? {
            let patterns = read_patterns(&String::from_utf8_lossy(&bytes));
            let matcher = Matcher::new(&patterns).map_err(|err| IgnoreError::File {
                path: candidate.clone(),
                error: Box::new(err),
            })?;
            return Ok((matcher, Some(candidate)));
        }
    }
    Ok((Matcher::default(), None))
}

/// Go's `path.Clean`: the shortest equivalent path, purely lexical.
pub fn clean(path: &str) -> String {
    if path.is_empty() {
        return ".".to_string();
    }
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|last| *last != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            other => parts.push(other),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_string(),
        (false, false) => joined,
    }
}

/// Go's `path.Dir`: everything before the last `/`, cleaned.
fn dir(path: &str) -> String {
    match path.rfind('/') {
        Some(index) => clean(&path[..=index]),
        None => ".".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_rules() {
        let text =
            "\u{feff}# comment\n\n  /abs/path/  \n!  /keep\n  # not a comment\n./a/../b\n!\n";
        assert_eq!(
            read_patterns(text),
            ["abs/path", "!keep", "# not a comment", "b", "!"]
        );
        assert!(Matcher::new(&read_patterns("a\n!\n")).is_err());
    }

    #[test]
    fn clean_like_go() {
        let cases = [
            ("", "."),
            ("a/b/", "a/b"),
            ("/../a", "/a"),
            ("../a/./b/../c", "../a/c"),
            ("a/..", "."),
            ("//x", "/x"),
            ("**/", "**"),
        ];
        for (input, expected) in cases {
            assert_eq!(clean(input), expected, "{input}");
        }
    }

    #[test]
    fn exceptions_and_last_match() {
        let matcher = Matcher::new(&["*.md", "!README.md", "docs", "!docs/keep/**"]).unwrap();
        let cases = [
            ("a.md", true),
            ("README.md", false),
            ("docs", true),
            ("docs/x.txt", true),
            ("docs/keep/a", false),
            ("src/a.md", false),
        ];
        for (path, excluded) in cases {
            assert_eq!(matcher.is_excluded(path), excluded, "{path}");
        }
        assert!(matcher.may_keep_inside("docs"));
        assert!(!matcher.may_keep_inside("other"));
    }

    #[test]
    fn invalid_file_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(".dockerignore"), "ok\n[\n").unwrap();
        let err = for_build(&dir.path().join("Dockerfile"), dir.path()).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "{}: invalid .dockerignore pattern \"[\": syntax error in pattern",
                dir.path().join(".dockerignore").display()
            )
        );
    }

    #[test]
    fn ignore_files_that_are_not_regular_files_are_absent() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), "*\n").unwrap();
        let fifo = |path: &Path| {
            let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
            // SAFETY: a valid NUL-terminated path.
            assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
        };
        type Setup = fn(&Path, &Path, &dyn Fn(&Path));
        let cases: &[(&str, Setup)] = &[
            ("a symlink out of the context", |ctx, out, _| {
                std::os::unix::fs::symlink(out.join("secret"), ctx.join(".dockerignore")).unwrap();
            }),
            ("a symlink inside the context", |ctx, _, _| {
                std::fs::write(ctx.join("real"), "*\n").unwrap();
                std::os::unix::fs::symlink("real", ctx.join(".dockerignore")).unwrap();
            }),
            ("a Dockerfile-specific symlink", |ctx, out, _| {
                std::os::unix::fs::symlink(out.join("secret"), ctx.join("Dockerfile.dockerignore"))
                    .unwrap();
            }),
            ("a FIFO (reading it would block)", |ctx, _, fifo| {
                fifo(&ctx.join(".dockerignore"));
            }),
            ("a directory", |ctx, _, _| {
                std::fs::create_dir(ctx.join(".dockerignore")).unwrap();
            }),
        ];
        for (what, setup) in cases {
            let ctx = tempfile::tempdir().unwrap();
            setup(ctx.path(), outside.path(), &fifo);
            let (matcher, used) = for_build(&ctx.path().join("Dockerfile"), ctx.path()).unwrap();
            assert_eq!(used, None, "{what}");
            assert!(!matcher.is_excluded("anything"), "{what}");
        }
    }

    #[test]
    fn dockerfile_specific_ignore_file_wins() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(".dockerignore"), "a\n").unwrap();
        std::fs::write(dir.path().join("build.Dockerfile.dockerignore"), "b\n").unwrap();
        let (matcher, used) = for_build(&dir.path().join("build.Dockerfile"), dir.path()).unwrap();
        assert_eq!(used, Some(dir.path().join("build.Dockerfile.dockerignore")));
        assert!(matcher.is_excluded("b") && !matcher.is_excluded("a"));
        let (matcher, used) = for_build(&dir.path().join("Dockerfile"), dir.path()).unwrap();
        assert_eq!(used, Some(dir.path().join(".dockerignore")));
        assert!(matcher.is_excluded("a"));
    }
}
