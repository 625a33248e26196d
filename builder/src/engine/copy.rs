//! `COPY` and `ADD`: selecting sources with Docker's rules (wildcards,
//! directory contents, trailing slashes, `--parents`, `--exclude`), the inputs
//! of the cache key, and the layer entries with `--chown`/`--chmod` applied.

use super::chmod::{self, Chmod};
use super::metadata::resolve_path;
use super::step::{CopyStep, HeredocBody};
use crate::context::{Context, ContextFile, FileKind, HashCache};
use berth_containers::executor::mount;
use berth_containers::executor::view;
use berth_dockerfile::glob::Glob;
use berth_store::layer::{Entry, EntryKind};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Errors selecting or planning a copy.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    /// A source does not exist (or is excluded by `.dockerignore`).
    #[error("COPY failed: '{0}' not found in the build context (or excluded by .dockerignore)")]
    Missing(String),
    /// A wildcard matched nothing.
    #[error("COPY failed: no source files were specified: '{0}' matched nothing")]
    NoMatch(String),
    /// A source path leaves the context.
    #[error("COPY failed: '{0}' is outside the build context")]
    Outside(String),
    /// Several sources need a directory destination.
    #[error("COPY failed: when copying several sources, the destination '{0}' must end with '/'")]
    DestNotDir(String),
    /// A bad pattern or flag.
    #[error("COPY failed: {0}")]
    Invalid(String),
    /// Hashing a source failed.
    #[error("COPY failed: reading {path}")]
    Read {
        /// The file.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
}

/// One matched source: the path it was matched at and every entry at or below it.
#[derive(Debug, Clone)]
pub struct Selected {
    /// The matched path, relative to the source root.
    pub path: String,
    /// Whether the source pattern had wildcards.
    pub wildcard: bool,
    /// The entries, the matched one first.
    pub files: Vec<ContextFile>,
}

fn has_wildcard(pattern: &str) -> bool {
    pattern.contains(['*', '?', '['])
}

/// Cleans a source path to a root-relative path; `None` when it leaves the root.
fn clean_source(source: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for part in source.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            p => parts.push(p),
        }
    }
    Some(parts.join("/"))
}

/// Selects the step's sources in `tree` (the walked context or a stage view).
pub fn select(tree: &Context, step: &CopyStep) -> Result<Vec<Selected>, CopyError> {
    let mut selected = Vec::new();
    for source in &step.sources {
        let clean = clean_source(source).ok_or_else(|| CopyError::Outside(source.clone()))?;
        if has_wildcard(&clean) {
            let glob = Glob::new(&clean)
                .map_err(|e| CopyError::Invalid(format!("pattern '{source}': {e}")))?;
            let depth = clean.split('/').count();
            let mut any = false;
            for file in tree.files() {
                if file.rel.split('/').count() == depth && glob.matches(&file.rel) {
                    any = true;
                    selected.push(Selected {
                        path: file.rel.clone(),
                        wildcard: true,
                        files: tree.under(&file.rel).cloned().collect(),
                    });
                }
            }
            if !any {
                return Err(CopyError::NoMatch(source.clone()));
            }
        } else if clean.is_empty() {
            selected.push(Selected {
                path: String::new(),
                wildcard: false,
                files: tree.files().cloned().collect(),
            });
        } else {
            let files: Vec<ContextFile> = tree.under(&clean).cloned().collect();
            if files.first().is_none_or(|f| f.rel != clean) {
                return Err(CopyError::Missing(source.clone()));
            }
            selected.push(Selected {
                path: clean,
                wildcard: false,
                files,
            });
        }
    }
    let excludes: Vec<Glob> = step
        .excludes
        .iter()
        .map(|p| {
            clean_source(p)
                .and_then(|c| Glob::new(&c).ok())
                .ok_or_else(|| CopyError::Invalid(format!("bad --exclude pattern '{p}'")))
        })
        .collect::<Result<_, _>>()?;
    if !excludes.is_empty() {
        for s in &mut selected {
            let base = s.path.clone();
            s.files.retain(|f| {
                let relative = relative_to(&base, &f.rel);
                !excludes.iter().any(|g| {
                    g.matches(&f.rel)
                        || (!relative.is_empty() && g.matches(relative))
                        || ancestors(relative).any(|a| g.matches(a))
                })
            });
        }
    }
    Ok(selected)
}

fn relative_to<'a>(base: &str, rel: &'a str) -> &'a str {
    if base.is_empty() {
        rel
    } else if rel == base {
        ""
    } else {
        rel.strip_prefix(base)
            .and_then(|r| r.strip_prefix('/'))
            .unwrap_or(rel)
    }
}

fn ancestors(rel: &str) -> impl Iterator<Item = &str> {
    rel.match_indices('/').map(move |(i, _)| &rel[..i])
}

/// The cache-key inputs of a selection: each file's name, kind, mode and
/// content digest (never mtimes), plus heredoc contents.
pub fn key_inputs(
    cache: &HashCache,
    root: &Path,
    selected: &[Selected],
    heredocs: &[HeredocBody],
) -> Result<Vec<String>, CopyError> {
    cache
        .prehash(root, selected.iter().flat_map(|s| s.files.iter()))
        .map_err(|source| CopyError::Read {
            path: root.display().to_string(),
            source,
        })?;
    let mut inputs = Vec::new();
    for s in selected {
        let digest = crate::context::hashcache::selection_digest(
            cache,
            root,
            s.files.iter().map(|f| (f.rel.as_str(), f)),
        )
        .map_err(|source| CopyError::Read {
            path: s.path.clone(),
            source,
        })?;
        inputs.push(format!("{}\0{}", s.path, digest));
    }
    for h in heredocs {
        inputs.push(format!("heredoc\0{}\0{}", h.name, h.content));
    }
    Ok(inputs)
}

/// The owner `--chown` asks for, resolved in the destination image.
pub fn resolve_chown(spec: &str, image_root: Option<&Path>) -> Result<(u64, u64), CopyError> {
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let tree = image_root.and_then(|r| mount::open_root(r).ok());
    let read = |file: &str| {
        tree.as_ref()
            .map(|t| berth_containers::executor::user::read_account_file(t, file))
            .unwrap_or_default()
    };
    let lookup = |text: &str, name: &str| -> Option<u64> {
        text.lines()
            .map(|l| l.split(':').collect::<Vec<_>>())
            .find(|f| f.len() > 2 && f[0] == name)
            .and_then(|f| f[2].parse().ok())
    };
    let uid = match user.parse::<u64>() {
        Ok(n) => n,
        Err(_) => lookup(&read("etc/passwd"), user).ok_or_else(|| {
            CopyError::Invalid(format!(
                "--chown: user '{user}' is not in the image's /etc/passwd"
            ))
        })?,
    };
    let gid = match group {
        None => uid,
        Some(g) => match g.parse::<u64>() {
            Ok(n) => n,
            Err(_) => lookup(&read("etc/group"), g).ok_or_else(|| {
                CopyError::Invalid(format!(
                    "--chown: group '{g}' is not in the image's /etc/group"
                ))
            })?,
        },
    };
    Ok((uid, gid))
}

/// How entries are made.
#[derive(Debug, Clone)]
pub struct EntryOptions<'a> {
    /// The stage's working directory (relative destinations resolve against it).
    pub workdir: &'a str,
    /// The parent's filesystem, to find existing directories and to follow
    /// symlinks in the destination; `None` for `--link` and scratch.
    pub lower: Option<&'a Path>,
    /// Owner for every entry.
    pub owner: (u64, u64),
    /// `--chmod`.
    pub chmod: Option<Chmod>,
    /// The mtime of directories the copy creates.
    pub created_dir_mtime: i64,
}

/// Parses `--chmod`, if any.
pub fn parse_chmod(step: &CopyStep) -> Result<Option<Chmod>, CopyError> {
    step.chmod
        .as_deref()
        .map(|c| chmod::parse(c).map_err(CopyError::Invalid))
        .transpose()
}

/// The layer entries of a copy from the source tree rooted at `source_root`.
pub fn plan_entries(
    step: &CopyStep,
    selected: &[Selected],
    source_root: &Path,
    options: &EntryOptions<'_>,
) -> Result<Vec<Entry>, CopyError> {
    let dest_text = if step.dest.is_empty() {
        "."
    } else {
        &step.dest
    };
    let dest_abs = resolve_path(options.workdir, dest_text);
    let mut dest_rel = dest_abs.trim_start_matches('/').to_string();
    // Follow symlinks the image has along the destination (e.g. /bin -> usr/bin).
    if let Some(lower) = options.lower {
        dest_rel = view::resolve_in_root(lower, &dest_rel, true)
            .map_err(|e| CopyError::Invalid(format!("resolving '{}': {e}", step.dest)))?;
    }
    let dest_exists_as_dir = options
        .lower
        .is_some_and(|l| stat_in_root(l, &dest_rel).is_some_and(|m| m.is_dir()));
    let several = selected.len() + step.heredocs.len() > 1 || selected.iter().any(|s| s.wildcard);
    let dest_is_dir = dest_text.ends_with('/') || dest_text == "." || dest_exists_as_dir;
    if several && !dest_is_dir && !step.parents {
        return Err(CopyError::DestNotDir(step.dest.clone()));
    }

    let join = |base: &str, rel: &str| -> String {
        match (base.is_empty(), rel.is_empty()) {
            (true, _) => rel.to_string(),
            (_, true) => base.to_string(),
            _ => format!("{base}/{rel}"),
        }
    };
    let mut entries: BTreeMap<String, Entry> = BTreeMap::new();
    let make = |path: String, file: &ContextFile| -> Option<Entry> {
        let kind = match file.kind {
            FileKind::File => EntryKind::File {
                source: source_root.join(&file.rel),
                size: file.size,
            },
            FileKind::Dir => EntryKind::Dir,
            FileKind::Symlink => EntryKind::Symlink(file.link.clone().unwrap_or_default()),
            FileKind::Other => return None,
        };
        let mode = match &options.chmod {
            Some(c) => c.apply(file.mode, file.kind == FileKind::Dir),
            None => file.mode,
        };
        Some(Entry {
            path,
            kind,
            mode,
            uid: options.owner.0,
            gid: options.owner.1,
            mtime: file.mtime,
        })
    };
    for s in selected {
        let Some(top) = s.files.first() else { continue };
        let name = s.path.rsplit('/').next().unwrap_or(&s.path);
        let base = if step.parents {
            join(&dest_rel, &s.path)
        } else if top.kind == FileKind::Dir && top.rel == s.path {
            dest_rel.clone()
        } else if dest_is_dir || several {
            join(&dest_rel, name)
        } else {
            dest_rel.clone()
        };
        for file in &s.files {
            let relative = relative_to(&s.path, &file.rel);
            let path = join(&base, relative);
            if path.is_empty() {
                continue;
            }
            // The directory copied is the destination itself: the destination
            // keeps the lower's metadata when it exists.
            if relative.is_empty()
                && top.kind == FileKind::Dir
                && !step.parents
                && dest_exists_as_dir
            {
                continue;
            }
            if let Some(entry) = make(path, file) {
                insert_entry(&mut entries, entry)?;
            }
        }
    }
    for h in &step.heredocs {
        let path = if dest_is_dir || several {
            join(&dest_rel, &h.name)
        } else {
            dest_rel.clone()
        };
        let mode = options
            .chmod
            .as_ref()
            .map_or(0o644, |c| c.apply(0o644, false));
        insert_entry(
            &mut entries,
            Entry {
                path,
                kind: EntryKind::Bytes(h.content.as_bytes().to_vec()),
                mode,
                uid: options.owner.0,
                gid: options.owner.1,
                mtime: options.created_dir_mtime,
            },
        )?;
    }
    add_parents(&mut entries, options);
    Ok(entries.into_values().collect())
}

/// The metadata of `rel` in the tree at `root` (its last component not
/// followed), with every symlink on the way resolved inside that root.
fn stat_in_root(root: &Path, rel: &str) -> Option<std::fs::Metadata> {
    let root = mount::open_root(root).ok()?;
    mount::stat_in_root(&root, rel).ok()
}

/// Adds `entry` to the plan the way Docker merges sources: a later source
/// overwrites an earlier one, and a non-directory that replaces a directory
/// takes the directory's whole subtree out of the plan, so nothing is ever
/// written below a symlink (or file) the copy itself creates.
fn insert_entry(entries: &mut BTreeMap<String, Entry>, entry: Entry) -> Result<(), CopyError> {
    if let Some(ancestor) = ancestors(&entry.path).find(|a| {
        entries
            .get(*a)
            .is_some_and(|e| !matches!(e.kind, EntryKind::Dir))
    }) {
        return Err(CopyError::Invalid(format!(
            "'{}' would be written below '{ancestor}', which this copy makes a non-directory",
            entry.path
        )));
    }
    if !matches!(entry.kind, EntryKind::Dir) {
        let prefix = format!("{}/", entry.path);
        let below: Vec<String> = entries
            .range(prefix.clone()..)
            .map(|(k, _)| k)
            .take_while(|k| k.starts_with(&prefix))
            .cloned()
            .collect();
        for key in below {
            entries.remove(&key);
        }
    }
    entries.insert(entry.path.clone(), entry);
    Ok(())
}

/// Adds every missing ancestor directory: with the lower's metadata when it
/// has the directory (so the layer does not change it), else root-owned 0755.
fn add_parents(entries: &mut BTreeMap<String, Entry>, options: &EntryOptions<'_>) {
    let mut missing = BTreeSet::new();
    for path in entries.keys() {
        for ancestor in ancestors(path) {
            if !entries.contains_key(ancestor) {
                missing.insert(ancestor.to_string());
            }
        }
    }
    for dir in missing {
        let lower_meta = options
            .lower
            .and_then(|l| stat_in_root(l, &dir))
            .filter(|m| m.is_dir());
        use std::os::unix::fs::MetadataExt;
        let entry = match lower_meta {
            Some(m) => Entry {
                path: dir.clone(),
                kind: EntryKind::Dir,
                mode: m.mode() & 0o7777,
                uid: u64::from(m.uid()),
                gid: u64::from(m.gid()),
                mtime: m.mtime(),
            },
            None => Entry {
                path: dir.clone(),
                kind: EntryKind::Dir,
                mode: 0o755,
                uid: 0,
                gid: 0,
                mtime: options.created_dir_mtime,
            },
        };
        entries.insert(dir, entry);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::Visit;
    use std::fs;

    fn tree() -> (tempfile::TempDir, Context) {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        fs::create_dir_all(r.join("src/sub")).unwrap();
        fs::write(r.join("src/a.rs"), "a").unwrap();
        fs::write(r.join("src/sub/b.rs"), "b").unwrap();
        fs::write(r.join("README.md"), "r").unwrap();
        fs::write(r.join("notes.md"), "n").unwrap();
        let ctx = Context::walk(r, &|_, _| Visit::Include).unwrap();
        (dir, ctx)
    }

    fn paths(
        step: &CopyStep,
        ctx: &Context,
        lower: Option<&Path>,
    ) -> Result<Vec<String>, CopyError> {
        let selected = select(ctx, step)?;
        let entries = plan_entries(
            step,
            &selected,
            ctx.root(),
            &EntryOptions {
                workdir: "/app",
                lower,
                owner: (0, 0),
                chmod: None,
                created_dir_mtime: 0,
            },
        )?;
        Ok(entries.into_iter().map(|e| e.path).collect())
    }

    fn copy(sources: &[&str], dest: &str) -> CopyStep {
        CopyStep {
            sources: sources.iter().map(|s| s.to_string()).collect(),
            dest: dest.into(),
            ..Default::default()
        }
    }

    #[test]
    fn docker_rules_for_files_dirs_wildcards_and_slashes() {
        let (_d, ctx) = tree();
        let cases: Vec<(CopyStep, Vec<&str>)> = vec![
            // A file to a path without slash: renamed.
            (copy(&["README.md"], "/doc"), vec!["doc"]),
            // A file to a directory destination.
            (copy(&["README.md"], "/doc/"), vec!["doc", "doc/README.md"]),
            // A directory: its contents, not itself.
            (
                copy(&["src"], "/code"),
                vec!["code", "code/a.rs", "code/sub", "code/sub/b.rs"],
            ),
            // Relative destination resolves against WORKDIR.
            (copy(&["notes.md"], "."), vec!["app", "app/notes.md"]),
            // Wildcards match at their depth only.
            (
                copy(&["*.md"], "/d/"),
                vec!["d", "d/README.md", "d/notes.md"],
            ),
            // --parents keeps the source path.
            (
                CopyStep {
                    parents: true,
                    ..copy(&["src/sub/b.rs", "README.md"], "/p/")
                },
                vec!["p", "p/README.md", "p/src", "p/src/sub", "p/src/sub/b.rs"],
            ),
            // --exclude drops matches below a directory source.
            (
                CopyStep {
                    excludes: vec!["sub".into()],
                    ..copy(&["src"], "/e/")
                },
                vec!["e", "e/a.rs"],
            ),
        ];
        for (step, want) in cases {
            assert_eq!(paths(&step, &ctx, None).unwrap(), want, "{step:?}");
        }
    }

    #[test]
    fn a_later_non_directory_drops_the_subtree_it_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        fs::create_dir_all(r.join("d/x/sub")).unwrap();
        fs::write(r.join("d/x/evil"), "e").unwrap();
        fs::write(r.join("d/x/sub/deep"), "e").unwrap();
        std::os::unix::fs::symlink("/tmp/host-dir", r.join("x")).unwrap();
        fs::write(r.join("f"), "f").unwrap();
        fs::create_dir_all(r.join("e/f")).unwrap();
        fs::write(r.join("e/f/kept"), "k").unwrap();
        let ctx = Context::walk(r, &|_, _| Visit::Include).unwrap();
        let cases: Vec<(CopyStep, Vec<&str>)> = vec![
            // The symlink comes last: the directory's children go with it.
            (copy(&["d/", "x"], "/dst/"), vec!["dst", "dst/x"]),
            // The directory comes last: it replaces the symlink, children kept.
            (
                copy(&["x", "d/"], "/dst/"),
                vec!["dst", "dst/x", "dst/x/evil", "dst/x/sub", "dst/x/sub/deep"],
            ),
            // A regular file replacing a directory drops its subtree too.
            (copy(&["e/", "f"], "/dst/"), vec!["dst", "dst/f"]),
        ];
        for (step, want) in cases {
            assert_eq!(paths(&step, &ctx, None).unwrap(), want, "{step:?}");
        }
        let selected = select(&ctx, &copy(&["d/", "x"], "/dst/")).unwrap();
        let options = EntryOptions {
            workdir: "/",
            lower: None,
            owner: (0, 0),
            chmod: None,
            created_dir_mtime: 0,
        };
        let entries = plan_entries(&copy(&["d/", "x"], "/dst/"), &selected, r, &options).unwrap();
        let link = entries.iter().find(|e| e.path == "dst/x").unwrap();
        assert!(matches!(link.kind, EntryKind::Symlink(_)), "{link:?}");
    }

    #[test]
    fn an_entry_below_a_planned_non_directory_is_refused() {
        let mut entries = BTreeMap::new();
        let entry = |path: &str, kind: EntryKind| Entry {
            path: path.into(),
            kind,
            mode: 0o644,
            uid: 0,
            gid: 0,
            mtime: 0,
        };
        insert_entry(&mut entries, entry("a", EntryKind::Symlink("/etc".into()))).unwrap();
        let err =
            insert_entry(&mut entries, entry("a/passwd", EntryKind::Bytes(vec![]))).unwrap_err();
        assert!(err.to_string().contains("'a/passwd'"), "{err}");
    }

    #[test]
    fn errors_name_the_source() {
        let (_d, ctx) = tree();
        let err = paths(&copy(&["missing.txt"], "/x"), &ctx, None).unwrap_err();
        assert!(err.to_string().contains("'missing.txt'"), "{err}");
        assert!(matches!(
            paths(&copy(&["*.zz"], "/x/"), &ctx, None),
            Err(CopyError::NoMatch(_))
        ));
        assert!(matches!(
            paths(&copy(&["../etc"], "/x/"), &ctx, None),
            Err(CopyError::Outside(_))
        ));
        assert!(matches!(
            paths(&copy(&["README.md", "notes.md"], "/x"), &ctx, None),
            Err(CopyError::DestNotDir(_))
        ));
    }

    #[test]
    fn existing_directories_and_symlinks_in_the_lower_are_respected() {
        let (_d, ctx) = tree();
        let lower = tempfile::tempdir().unwrap();
        fs::create_dir_all(lower.path().join("usr/bin")).unwrap();
        std::os::unix::fs::symlink("usr/bin", lower.path().join("bin")).unwrap();
        // /bin is a symlink to usr/bin, a directory: the file lands inside it.
        assert_eq!(
            paths(&copy(&["README.md"], "/bin"), &ctx, Some(lower.path())).unwrap(),
            ["usr", "usr/bin", "usr/bin/README.md"]
        );
    }

    #[test]
    fn chown_resolves_names_and_defaults_gid_to_uid() {
        let root = tempfile::tempdir().unwrap();
        fs::create_dir_all(root.path().join("etc")).unwrap();
        fs::write(
            root.path().join("etc/passwd"),
            "app:x:1000:1000::/:/bin/sh\n",
        )
        .unwrap();
        fs::write(root.path().join("etc/group"), "staff:x:50:\n").unwrap();
        assert_eq!(resolve_chown("55", None).unwrap(), (55, 55));
        assert_eq!(
            resolve_chown("app:staff", Some(root.path())).unwrap(),
            (1000, 50)
        );
        assert_eq!(resolve_chown("1:2", None).unwrap(), (1, 2));
        assert!(resolve_chown("ghost", Some(root.path())).is_err());
    }
}
