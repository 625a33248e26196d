//! Differential test of `.dockerignore`: for real context trees, the entries
//! the context walk of berth's builds keeps (`context::Context::walk` under
//! the ignore rules), with the directories above them that COPY adds, must
//! be exactly what Debian's buildah puts in an image built `FROM scratch`
//! with `COPY . /ctx/` and the same ignore file.
//!
//! buildah runs as root with `--isolation chroot` and vfs storage in a
//! temporary directory; the image is inspected through `buildah from` and
//! `buildah mount`.
//!
//! One place where buildah 1.28 follows the legacy Docker builder instead of
//! BuildKit: an exception with a wildcard that points inside an excluded
//! directory (`subdir` plus `!*/sub1*`). BuildKit looks inside `subdir/` and
//! keeps what the exception matches; buildah drops the whole directory. berth
//! follows BuildKit, so those cases are checked against BuildKit's result,
//! written out below, and buildah's differing answer is checked too so the
//! note stays true.

// Test helpers outside #[test] functions fail loudly too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use berth_builder::context::{Context, FileKind, Visit};
use berth_dockerfile::dockerignore::{self, Matcher};
use berth_e2e::require;
use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A throwaway buildah with its storage in a temporary directory.
struct Buildah {
    program: PathBuf,
    storage: tempfile::TempDir,
}

impl Buildah {
    fn new() -> Buildah {
        require::root();
        let program = require::program("buildah", "buildah");
        Buildah {
            program,
            storage: tempfile::tempdir().unwrap(),
        }
    }

    fn run(&self, args: &[&str]) -> String {
        let root = self.storage.path().join("root");
        let runroot = self.storage.path().join("runroot");
        let out = Command::new(&self.program)
            .arg("--root")
            .arg(&root)
            .arg("--runroot")
            .arg(&runroot)
            .args(["--storage-driver", "vfs"])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "buildah {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Builds `COPY . /ctx/` from `context` and lists what landed under /ctx.
    fn copied(&self, context: &Path, tag: &str) -> BTreeSet<String> {
        let dockerfile = self.storage.path().join("Dockerfile");
        fs::write(&dockerfile, "FROM scratch\nCOPY . /ctx/\n").unwrap();
        let image = format!("localhost/berth-ignore-{tag}");
        self.run(&[
            "build",
            "--quiet",
            "--isolation",
            "chroot",
            "-f",
            dockerfile.to_str().unwrap(),
            "-t",
            &image,
            context.to_str().unwrap(),
        ]);
        let container = self.run(&["from", "--quiet", &image]);
        let mountpoint = PathBuf::from(self.run(&["mount", &container]));
        let listed = list_tree(&mountpoint.join("ctx"));
        self.run(&["umount", &container]);
        self.run(&["rm", &container]);
        listed
    }
}

/// Every path under `root`, relative, `/`-separated, directories with a
/// trailing `/`; symlinks are listed, not followed.
fn list_tree(root: &Path) -> BTreeSet<String> {
    let mut paths = BTreeSet::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let entry = entry.unwrap();
            let path = entry.path();
            let relative = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let file_type = entry.file_type().unwrap();
            if file_type.is_dir() {
                paths.insert(format!("{relative}/"));
                stack.push(path);
            } else {
                paths.insert(relative);
            }
        }
    }
    paths
}

/// What berth's walk keeps, in the same form.
fn berth_keeps(context: &Path) -> BTreeSet<String> {
    let (matcher, _) =
        dockerignore::for_build(&context.join("no-such-Dockerfile"), context).unwrap();
    walk_with(context, &matcher)
}

/// The walk builds do; an excluded directory that holds kept entries is not
/// itself kept, but COPY adds it above them, so it is listed as buildah
/// lists it.
fn walk_with(context: &Path, matcher: &Matcher) -> BTreeSet<String> {
    let walked = Context::walk(context, &|rel, is_dir| {
        Visit::by_ignore_rules(matcher, rel, is_dir)
    })
    .unwrap();
    let mut paths = BTreeSet::new();
    for file in walked.files() {
        for (end, _) in file.rel.match_indices('/') {
            paths.insert(format!("{}/", &file.rel[..end]));
        }
        paths.insert(match file.kind {
            FileKind::Dir => format!("{}/", file.rel),
            _ => file.rel.clone(),
        });
    }
    paths
}

/// Writes a context tree: `dir/` makes an empty directory, `a -> b` a symlink.
fn make_tree(root: &Path, entries: &[&str]) {
    for entry in entries {
        if let Some((link, target)) = entry.split_once(" -> ") {
            let path = root.join(link);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::os::unix::fs::symlink(target, path).unwrap();
        } else if let Some(dir) = entry.strip_suffix('/') {
            fs::create_dir_all(root.join(dir)).unwrap();
        } else {
            let path = root.join(entry);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, entry.as_bytes()).unwrap();
        }
    }
}

const TREE: &[&str] = &[
    "a.txt",
    "b.md",
    "sp ace.txt",
    "docs/README.md",
    "docs/guide/intro.md",
    "docs/x.txt",
    "src/main.rs",
    "src/lib/util.rs",
    "src/lib/util_test.rs",
    "build/out.o",
    "build/keep/me.txt",
    ".git/HEAD",
    "node_modules/pkg/index.js",
    "empty/",
    "deep/a/b/c/d.txt",
    "link -> a.txt",
    "dirlink -> docs",
];

/// .dockerignore contents checked against buildah.
const IGNORE_FILES: &[&str] = &[
    "",
    "*.md\n",
    "**/*.md\n",
    "docs\n!docs/README.md\n",
    "build\n!build/keep\n",
    "*\n!src\n",
    "**/*_test.rs\n.git\nnode_modules\n",
    "/docs/guide\n# a comment\n\n  src/lib/  \n",
    "deep/**/d.txt\n",
    "?.txt\n",
    "[ab].*\n",
    "!a.txt\n*.txt\n",
    "*.txt\n!a.txt\n",
    "docs/*\n!docs/guide\n",
    "link\ndirlink\n",
    "**\n!src/**\n",
    "empty\n",
    "./src/../build\n",
    "sp ace.txt\n",
];

#[test]
fn kept_files_match_buildah() {
    let buildah = Buildah::new();
    let mut failures = Vec::new();
    for (index, ignore) in IGNORE_FILES.iter().enumerate() {
        let context = tempfile::tempdir().unwrap();
        make_tree(context.path(), TREE);
        if !ignore.is_empty() {
            fs::write(context.path().join(".dockerignore"), ignore).unwrap();
        }
        let theirs = buildah.copied(context.path(), &index.to_string());
        let ours = berth_keeps(context.path());
        if theirs != ours {
            failures.push(format!(
                ".dockerignore {ignore:?}:\n  only berth keeps: {:?}\n  only buildah keeps: {:?}",
                ours.difference(&theirs).collect::<Vec<_>>(),
                theirs.difference(&ours).collect::<Vec<_>>()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn wildcard_exception_inside_excluded_dir_follows_buildkit() {
    let buildah = Buildah::new();
    let context = tempfile::tempdir().unwrap();
    make_tree(
        context.path(),
        &[
            "subdir/sub1.txt",
            "subdir/sub2.txt",
            "subdir/nested/sub1x",
            "top.txt",
        ],
    );
    fs::write(context.path().join(".dockerignore"), "subdir\n!*/sub1*\n").unwrap();
    let ours = berth_keeps(context.path());
    // BuildKit looks inside subdir/ and keeps what the exception matches.
    let buildkit: BTreeSet<String> = [".dockerignore", "subdir/", "subdir/sub1.txt", "top.txt"]
        .into_iter()
        .map(str::to_string)
        .collect();
    assert_eq!(ours, buildkit);
    // buildah 1.28 drops the whole directory (the legacy builder's behaviour).
    let theirs = buildah.copied(context.path(), "divergent");
    let legacy: BTreeSet<String> = [".dockerignore", "top.txt"]
        .into_iter()
        .map(str::to_string)
        .collect();
    assert_eq!(
        theirs, legacy,
        "buildah's behaviour changed; revisit the note at the top of this file"
    );
}
