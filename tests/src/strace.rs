//! Reading `strace -f -y` traces, and checking from one that an OCI layout's
//! blobs and `index.json` change only by a rename of a file fsynced before it,
//! with the directory fsynced after it.
//!
//! The trace is what [`command`] records: every process and thread (`-f`), file
//! descriptors shown with their paths (`-y`), and written data left out
//! (`-s 0`). A line order is a time order: a call split over two lines
//! (`<unfinished ...>` and `<... resumed>`) started at the first line and ended
//! at the second.

use crate::require;
use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::{Component, Path, PathBuf};
use std::process::Command;

/// The system calls [`command`] traces.
pub const TRACED: &str =
    "trace=fsync,fdatasync,rename,renameat,renameat2,openat,write,pwrite64,writev,pwritev,pwritev2";

/// `strace` recording `program`'s calls of [`TRACED`] into `trace`; add the
/// program's arguments. Fails the test when strace is missing.
pub fn command(trace: &Path, program: &Path) -> Command {
    let strace = require::program("strace", "strace");
    let mut command = Command::new(strace);
    command
        .args(["-f", "-qq", "-y", "-s", "0", "-e", TRACED, "-o"])
        .arg(trace)
        .arg("--")
        .arg(program);
    command
}

/// One system call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// The thread that made it.
    pub pid: u32,
    /// The call's name, e.g. `renameat2`.
    pub name: String,
    /// Its arguments as strace printed them, split at top-level commas.
    pub args: Vec<String>,
    /// What it returned, as printed: `0`, `5</path>`, `-1 ENOENT (…)`.
    pub result: String,
    /// The line (from 1) where the call started.
    pub start: usize,
    /// The line where it returned.
    pub end: usize,
}

impl Call {
    /// Whether the call succeeded.
    pub fn ok(&self) -> bool {
        !self.result.starts_with('-') && !self.result.starts_with('?')
    }

    /// The path strace showed for the file descriptor in argument `index`
    /// (`5</path>` or `AT_FDCWD</cwd>`).
    pub fn fd_path(&self, index: usize) -> Option<PathBuf> {
        fd_annotation(self.args.get(index)?)
    }

    /// The path in quoted string argument `index`, made absolute against the
    /// directory descriptor in argument `dirfd` (or `cwd` without one).
    pub fn path(&self, index: usize, dirfd: Option<usize>, cwd: &Path) -> Option<PathBuf> {
        let path = unquote(self.args.get(index)?)?;
        let base = match dirfd {
            Some(dirfd) => self.fd_path(dirfd)?,
            None => cwd.to_path_buf(),
        };
        Some(normalize(&base.join(path)))
    }

    /// The source and destination of a rename, `rename`, `renameat` or
    /// `renameat2`.
    pub fn rename_paths(&self, cwd: &Path) -> Option<(PathBuf, PathBuf)> {
        match self.name.as_str() {
            "rename" => Some((self.path(0, None, cwd)?, self.path(1, None, cwd)?)),
            "renameat" | "renameat2" => {
                Some((self.path(1, Some(0), cwd)?, self.path(3, Some(2), cwd)?))
            }
            _ => None,
        }
    }

    /// Whether the call is an fsync or fdatasync.
    pub fn is_sync(&self) -> bool {
        matches!(self.name.as_str(), "fsync" | "fdatasync")
    }

    /// Whether the call writes data to a file descriptor.
    pub fn is_write(&self) -> bool {
        matches!(
            self.name.as_str(),
            "write" | "pwrite64" | "writev" | "pwritev" | "pwritev2"
        )
    }
}

/// `5</path>` → `/path`; `AT_FDCWD</cwd>` → `/cwd`.
fn fd_annotation(arg: &str) -> Option<PathBuf> {
    let open = arg.find("</")?;
    let inner = arg[open + 1..].strip_suffix('>')?;
    let inner = inner.strip_suffix(" (deleted)").unwrap_or(inner);
    Some(PathBuf::from(inner))
}

/// The bytes of a C string as strace quotes it (`"a\"b\x01\12"`), as a path.
fn unquote(arg: &str) -> Option<PathBuf> {
    let inner = arg.strip_prefix('"')?.strip_suffix('"')?;
    let mut bytes = Vec::with_capacity(inner.len());
    let mut chars = inner.bytes().peekable();
    while let Some(b) = chars.next() {
        if b != b'\\' {
            bytes.push(b);
            continue;
        }
        match chars.next()? {
            b'n' => bytes.push(b'\n'),
            b't' => bytes.push(b'\t'),
            b'r' => bytes.push(b'\r'),
            b'v' => bytes.push(0x0b),
            b'f' => bytes.push(0x0c),
            b'x' => {
                let mut value = 0u8;
                for _ in 0..2 {
                    let digit = (*chars.peek()? as char).to_digit(16)?;
                    chars.next();
                    value = value * 16 + u8::try_from(digit).ok()?;
                }
                bytes.push(value);
            }
            d @ b'0'..=b'7' => {
                let mut value = u32::from(d - b'0');
                for _ in 0..2 {
                    match chars.peek() {
                        Some(&n @ b'0'..=b'7') => {
                            value = value * 8 + u32::from(n - b'0');
                            chars.next();
                        }
                        _ => break,
                    }
                }
                bytes.push(u8::try_from(value).ok()?);
            }
            other => bytes.push(other),
        }
    }
    Some(PathBuf::from(OsString::from_vec(bytes)))
}

/// `path` with `.` and `..` resolved without looking at the file system.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// Splits strace's argument text at commas outside strings, `{}`, `[]`
/// and `-y`'s `<path>` annotations.
fn split_args(text: &str) -> Vec<String> {
    let mut args = Vec::new();
    let mut current = String::new();
    let (mut depth, mut in_string, mut escaped, mut in_path) = (0usize, false, false, false);
    for c in text.chars() {
        if in_string {
            current.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
            continue;
        }
        if in_path {
            current.push(c);
            in_path = c != '>';
            continue;
        }
        match c {
            '"' => in_string = true,
            '<' => in_path = true,
            '{' | '[' => depth += 1,
            '}' | ']' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                args.push(current.trim().to_owned());
                current.clear();
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    if !current.trim().is_empty() {
        args.push(current.trim().to_owned());
    }
    args
}

/// The index of the `)` closing the argument list in `text` (which starts
/// just after the `(`), skipping strings and annotations.
fn closing_paren(text: &str) -> Option<usize> {
    let (mut depth, mut in_string, mut escaped, mut in_path) = (0usize, false, false, false);
    for (i, c) in text.char_indices() {
        if in_string {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
            continue;
        }
        if in_path {
            in_path = c != '>';
            continue;
        }
        match c {
            '"' => in_string = true,
            '<' => in_path = true,
            '(' | '{' | '[' => depth += 1,
            ')' if depth == 0 => return Some(i),
            ')' | '}' | ']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    None
}

/// `) = 0` (after the closing parenthesis) → `0`.
fn result_after(text: &str) -> Option<String> {
    let rest = text.trim_start().strip_prefix('=')?;
    Some(rest.trim().to_owned())
}

/// The calls in a trace, in the order they started. Lines that are not calls
/// (signals, exits) are skipped.
pub fn parse(trace: &str) -> Vec<Call> {
    const UNFINISHED: &str = " <unfinished ...>";
    let mut calls = Vec::new();
    // Per thread: the call waiting for its `resumed` line.
    let mut pending: std::collections::HashMap<u32, Call> = std::collections::HashMap::new();
    for (number, line) in trace.lines().enumerate() {
        let number = number + 1;
        let (pid, text) = match line.split_once(char::is_whitespace) {
            Some((pid, rest)) if pid.bytes().all(|b| b.is_ascii_digit()) => {
                (pid.parse().unwrap_or(0), rest.trim_start())
            }
            _ => (0, line),
        };
        if let Some(rest) = text.strip_prefix("<... ") {
            // `<... NAME resumed>REST_OF_ARGS) = RESULT`
            let Some((name, tail)) = rest.split_once(" resumed>") else {
                continue;
            };
            let Some(mut call) = pending.remove(&pid) else {
                continue;
            };
            if call.name != name {
                continue;
            }
            let Some(close) = closing_paren(tail) else {
                continue;
            };
            call.args.extend(split_args(&tail[..close]));
            call.result = result_after(&tail[close + 1..]).unwrap_or_default();
            call.end = number;
            calls.push(call);
            continue;
        }
        let Some(open) = text.find('(') else {
            continue;
        };
        let name = &text[..open];
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            continue;
        }
        let body = &text[open + 1..];
        let mut call = Call {
            pid,
            name: name.to_owned(),
            args: Vec::new(),
            result: String::new(),
            start: number,
            end: number,
        };
        if let Some(partial) = body.strip_suffix(UNFINISHED) {
            call.args = split_args(partial);
            pending.insert(pid, call);
            continue;
        }
        let Some(close) = closing_paren(body) else {
            continue;
        };
        call.args = split_args(&body[..close]);
        call.result = result_after(&body[close + 1..]).unwrap_or_default();
        calls.push(call);
    }
    calls.sort_by_key(|call| call.start);
    calls
}

/// What [`check_layout`] found.
#[derive(Debug, Default)]
pub struct LayoutReport {
    /// Renames into `blobs/`: (source, destination).
    pub blob_renames: Vec<(PathBuf, PathBuf)>,
    /// Renames onto `index.json`: (source, destination).
    pub index_renames: Vec<(PathBuf, PathBuf)>,
    /// Every broken rule, one sentence each, naming the trace line.
    pub violations: Vec<String>,
}

/// The successful fsyncs and fdatasyncs of a file descriptor open on `path`.
fn syncs_of<'a>(calls: &'a [Call], path: &'a Path) -> impl Iterator<Item = &'a Call> + 'a {
    calls
        .iter()
        .filter(|call| call.is_sync() && call.ok())
        .filter(move |call| call.fd_path(0).as_deref() == Some(path))
}

/// Checks the writes of an OCI layout whose blobs are under `blobs` and whose
/// index is `index`, from a parsed trace of processes that started in `cwd`:
///
/// - every rename into `blobs` or onto `index` moves a file that was fsynced
///   (or fdatasynced) after its last write and before the rename, and the
///   destination's directory is fsynced after the rename;
/// - a blob's directory is fsynced before the next `index.json` is renamed
///   into place, so that a tag never names a blob a power loss can take away;
/// - nothing writes to, or opens for writing, a blob or `index.json` in
///   place: they change only by a rename.
pub fn check_layout(calls: &[Call], cwd: &Path, blobs: &Path, index: &Path) -> LayoutReport {
    let mut report = LayoutReport::default();
    let in_layout = |path: &Path| path.starts_with(blobs) || path == index;
    let renames: Vec<(&Call, PathBuf, PathBuf)> = calls
        .iter()
        .filter(|call| call.ok())
        .filter_map(|call| {
            let (from, to) = call.rename_paths(cwd)?;
            Some((call, from, to))
        })
        .collect();
    for (rename, from, to) in &renames {
        if !in_layout(to) {
            continue;
        }
        let what = format!(
            "rename of {} to {} (line {})",
            from.display(),
            to.display(),
            rename.start
        );
        // Writes to the source since it last appeared (an earlier rename
        // moving a file of the same name away).
        let since = renames
            .iter()
            .filter(|(other, other_from, other_to)| {
                other.end < rename.start && (other_from == from || other_to == from)
            })
            .map(|(other, _, _)| other.end)
            .max()
            .unwrap_or(0);
        let last_write = calls
            .iter()
            .filter(|call| call.is_write() && call.ok())
            .filter(|call| call.start > since && call.end < rename.start)
            .filter(|call| call.fd_path(0).as_deref() == Some(from.as_path()))
            .map(|call| call.end)
            .max()
            .unwrap_or(since);
        let synced =
            syncs_of(calls, from).any(|sync| sync.start > last_write && sync.end < rename.start);
        if !synced {
            report.violations.push(format!(
                "{what}: the source was not fsynced between its last write and the rename"
            ));
        }
        let dir = to.parent().unwrap_or(Path::new("/"));
        let dir_sync = syncs_of(calls, dir)
            .filter(|sync| sync.start > rename.end)
            .map(|sync| sync.end)
            .min();
        match dir_sync {
            None => report.violations.push(format!(
                "{what}: {} was not fsynced after the rename",
                dir.display()
            )),
            Some(dir_synced) if to.starts_with(blobs) => {
                let named_first = renames.iter().find(|(other, _, other_to)| {
                    other_to == index && other.start > rename.end && other.start < dir_synced
                });
                if let Some((other, _, _)) = named_first {
                    report.violations.push(format!(
                        "{what}: index.json was replaced (line {}) before {} was fsynced \
                         (line {dir_synced})",
                        other.start,
                        dir.display()
                    ));
                }
            }
            Some(_) => {}
        }
        if to.starts_with(blobs) {
            report.blob_renames.push((from.clone(), to.clone()));
        } else {
            report.index_renames.push((from.clone(), to.clone()));
        }
    }
    for call in calls.iter().filter(|call| call.ok()) {
        if call.is_write()
            && let Some(path) = call.fd_path(0)
            && in_layout(&path)
        {
            report.violations.push(format!(
                "{} to {} in place (line {})",
                call.name,
                path.display(),
                call.start
            ));
        }
        if call.name == "openat"
            && let Some(path) = call.path(1, Some(0), cwd)
            && in_layout(&path)
            && call.args.get(2).is_some_and(|flags| {
                ["O_WRONLY", "O_RDWR", "O_CREAT", "O_TRUNC"]
                    .iter()
                    .any(|flag| flags.contains(flag))
            })
        {
            report.violations.push(format!(
                "{} opened for writing in place (line {}): {}",
                path.display(),
                call.start,
                call.args.get(2).map_or("", String::as_str)
            ));
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_complete_unfinished_and_resumed_calls() {
        let trace = "\
10  openat(AT_FDCWD</w>, \"/s/tmp/a, b\", O_WRONLY|O_CREAT|O_CLOEXEC, 0666) = 3</s/tmp/a, b>
11  fsync(3</s/tmp/a, b> <unfinished ...>
10  rename(\"/s/tmp/x\", \"/s/y\" <unfinished ...>
11  <... fsync resumed>)              = 0
10  <... rename resumed>)             = -1 ENOENT (No such file or directory)
10  renameat2(AT_FDCWD</w>, \"rel/\\\"q\\\"\", 4</s/oci>, \"b\\x41\\101\", RENAME_NOREPLACE) = 0
10  --- SIGCHLD {si_signo=SIGCHLD, si_code=CLD_EXITED} ---
10  +++ exited with 0 +++
";
        let calls = parse(trace);
        let names: Vec<_> = calls
            .iter()
            .map(|c| (c.name.as_str(), c.start, c.end, c.ok()))
            .collect();
        assert_eq!(
            names,
            [
                ("openat", 1, 1, true),
                ("fsync", 2, 4, true),
                ("rename", 3, 5, false),
                ("renameat2", 6, 6, true),
            ]
        );
        assert_eq!(calls[0].args.len(), 4, "{:?}", calls[0].args);
        assert_eq!(
            calls[0].path(1, Some(0), Path::new("/")),
            Some(PathBuf::from("/s/tmp/a, b"))
        );
        assert_eq!(calls[1].fd_path(0), Some(PathBuf::from("/s/tmp/a, b")));
        assert_eq!(calls[2].pid, 10);
        assert_eq!(
            calls[3].rename_paths(Path::new("/")),
            Some((PathBuf::from("/w/rel/\"q\""), PathBuf::from("/s/oci/bAA")))
        );
    }

    const GOOD: &str = "\
1 openat(AT_FDCWD</>, \"/r/tmp/t1\", O_WRONLY|O_CREAT|O_TRUNC|O_CLOEXEC, 0666) = 3</r/tmp/t1>
1 write(3</r/tmp/t1>, \"\"..., 5) = 5
1 fsync(3</r/tmp/t1>) = 0
1 rename(\"/r/tmp/t1\", \"/r/oci/blobs/sha256/aa\") = 0
1 openat(AT_FDCWD</>, \"/r/oci/blobs/sha256\", O_RDONLY|O_CLOEXEC) = 4</r/oci/blobs/sha256>
1 fsync(4</r/oci/blobs/sha256>) = 0
1 openat(AT_FDCWD</>, \"/r/oci/.tmp-index.json\", O_WRONLY|O_CREAT|O_TRUNC|O_CLOEXEC, 0666) = 3</r/oci/.tmp-index.json>
1 write(3</r/oci/.tmp-index.json>, \"\"..., 9) = 9
1 fdatasync(3</r/oci/.tmp-index.json>) = 0
1 renameat(AT_FDCWD</r>, \"oci/.tmp-index.json\", AT_FDCWD</r>, \"oci/index.json\") = 0
1 openat(AT_FDCWD</>, \"/r/oci\", O_RDONLY|O_CLOEXEC) = 4</r/oci>
1 fsync(4</r/oci>) = 0
";

    fn check(trace: &str) -> LayoutReport {
        let root = Path::new("/r/oci");
        check_layout(
            &parse(trace),
            Path::new("/"),
            &root.join("blobs"),
            &root.join("index.json"),
        )
    }

    #[test]
    fn an_fsynced_rename_with_its_directory_synced_passes() {
        let report = check(GOOD);
        assert!(report.violations.is_empty(), "{:?}", report.violations);
        assert_eq!(report.blob_renames.len(), 1);
        assert_eq!(report.index_renames.len(), 1);
    }

    /// Each edit of the good trace breaks one rule; the report names it.
    #[test]
    fn each_broken_rule_is_reported() {
        // (what, line to replace, its replacement, lines to append, expected)
        let cases: &[(&str, &str, &str, &str, &str)] = &[
            (
                "no fsync of the blob",
                "1 fsync(3</r/tmp/t1>) = 0\n",
                "",
                "",
                "/r/tmp/t1 to /r/oci/blobs/sha256/aa (line 3): the source was not fsynced",
            ),
            (
                "a failed fsync",
                "1 fsync(3</r/tmp/t1>) = 0\n",
                "1 fsync(3</r/tmp/t1>) = -1 EIO (Input/output error)\n",
                "",
                "the source was not fsynced",
            ),
            (
                "a write after the fsync",
                "1 fsync(3</r/tmp/t1>) = 0\n",
                "1 fsync(3</r/tmp/t1>) = 0\n1 write(3</r/tmp/t1>, \"\"..., 5) = 5\n",
                "",
                "/r/tmp/t1 to /r/oci/blobs/sha256/aa (line 5): the source was not fsynced",
            ),
            (
                "the fsync still running when the rename starts",
                "1 fsync(3</r/tmp/t1>) = 0\n1 rename(\"/r/tmp/t1\", \"/r/oci/blobs/sha256/aa\") = 0\n",
                "1 fsync(3</r/tmp/t1> <unfinished ...>\n2 rename(\"/r/tmp/t1\", \"/r/oci/blobs/sha256/aa\") = 0\n1 <... fsync resumed>) = 0\n",
                "",
                "the source was not fsynced",
            ),
            (
                "the index's directory not fsynced",
                "1 fsync(4</r/oci>) = 0\n",
                "",
                "",
                "index.json (line 10): /r/oci was not fsynced after the rename",
            ),
            (
                "the blob directory fsynced only after the index",
                "1 fsync(4</r/oci/blobs/sha256>) = 0\n",
                "",
                "1 fsync(4</r/oci/blobs/sha256>) = 0\n",
                "index.json was replaced (line 9) before /r/oci/blobs/sha256 was fsynced",
            ),
            (
                "an index written in place",
                "\"/r/oci/.tmp-index.json\", O_WRONLY",
                "\"/r/oci/index.json\", O_WRONLY",
                "",
                "/r/oci/index.json opened for writing in place (line 7)",
            ),
            (
                "a blob written in place",
                "1 write(3</r/oci/.tmp-index.json>",
                "1 write(3</r/oci/blobs/sha256/bb>",
                "",
                "write to /r/oci/blobs/sha256/bb in place (line 8)",
            ),
        ];
        for (what, from, to, append, expected) in cases {
            assert!(GOOD.contains(from), "{what}: the edit does not apply");
            let trace = GOOD.replacen(from, to, 1) + append;
            let report = check(&trace);
            assert!(
                report.violations.iter().any(|v| v.contains(expected)),
                "{what}: expected a violation containing {expected:?}, got {:?}",
                report.violations
            );
        }
    }

    #[test]
    fn renames_outside_the_layout_and_failed_ones_are_not_checked() {
        let trace = "\
1 rename(\"/r/tmp/a\", \"/r/snapshots/aa\") = 0
1 rename(\"/r/tmp/b\", \"/r/oci/blobs/sha256/bb\") = -1 EXDEV (Invalid cross-device link)
1 rename(\"/r/tmp/c\", \"/r/oci/index.json.bak\") = 0
";
        let report = check(trace);
        assert!(report.violations.is_empty(), "{:?}", report.violations);
        assert!(report.blob_renames.is_empty() && report.index_renames.is_empty());
    }
}
