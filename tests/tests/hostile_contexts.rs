//! Hostile build contexts and images (issue #12): symlinks in the context, in
//! the image and made by a step never lead COPY, WORKDIR, RUN mounts or user
//! lookup to the host; ignored files stay hidden; a FIFO never hangs a build;
//! a pull is announced; a RUN that cannot start says why. Each test checks
//! that a canary directory outside the context and the store is untouched.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod build_common;

use build_common::BuildEnv;
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// A directory outside every store and context that a hostile input aims at.
struct Canary {
    dir: TempDir,
    before: BTreeMap<String, String>,
}

impl Canary {
    /// A canary holding a setuid file, a plain file, an empty directory and
    /// an empty file (what a mount point cleanup would remove).
    fn new() -> Canary {
        let dir = tempfile::Builder::new()
            .prefix("berth-canary-")
            .tempdir()
            .unwrap();
        let d = dir.path();
        fs::write(d.join("evil"), "original\n").unwrap();
        fs::set_permissions(d.join("evil"), fs::Permissions::from_mode(0o644)).unwrap();
        fs::write(d.join("passwd"), "evil:x:4242:4242::/:/bin/sh\n").unwrap();
        fs::write(d.join("ignore"), "keep.txt\n").unwrap();
        fs::create_dir(d.join("b")).unwrap();
        fs::write(d.join("empty"), "").unwrap();
        fs::create_dir(d.join("sub")).unwrap();
        fs::write(d.join("sub/file"), "sub\n").unwrap();
        let before = Self::state(d);
        Canary { dir, before }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Every entry: kind, mode, owner, size, mtime and content.
    fn state(root: &Path) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        let mut pending = vec![root.to_path_buf()];
        while let Some(dir) = pending.pop() {
            let meta = fs::symlink_metadata(&dir).unwrap();
            out.insert(
                format!("{}/", dir.strip_prefix(root).unwrap().display()),
                format!(
                    "{:o} {} {}.{}",
                    meta.mode(),
                    meta.uid(),
                    meta.mtime(),
                    meta.mtime_nsec()
                ),
            );
            for entry in fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                let meta = fs::symlink_metadata(&path).unwrap();
                if meta.is_dir() {
                    pending.push(path);
                    continue;
                }
                let content = if meta.is_file() {
                    String::from_utf8_lossy(&fs::read(&path).unwrap()).into_owned()
                } else {
                    String::new()
                };
                out.insert(
                    path.strip_prefix(root).unwrap().display().to_string(),
                    format!(
                        "{:o} {} {} {}.{} {content:?}",
                        meta.mode(),
                        meta.uid(),
                        meta.len(),
                        meta.mtime(),
                        meta.mtime_nsec()
                    ),
                );
            }
        }
        out
    }

    /// Fails the test if anything in the canary changed.
    fn assert_untouched(&self) {
        let after = Self::state(self.path());
        assert_eq!(
            after,
            self.before,
            "the canary directory {} outside the context and store was changed",
            self.path().display()
        );
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn layer_listing(env: &BuildEnv, digest: &str) -> String {
    let out = std::process::Command::new("tar")
        .arg("-tvf")
        .arg(env.blob(digest))
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `berth build`, failing the test if it takes longer than `limit` (the
/// build is killed then, so a hang fails instead of blocking the suite).
fn build_within(env: &BuildEnv, limit: Duration) -> Output {
    let mut child = env
        .command(&[])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if started.elapsed() > limit {
            child.kill().unwrap();
            let out = child.wait_with_output().unwrap();
            panic!(
                "the build hung (killed after {limit:?}):\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Case 4: a later symlink source replaces a directory of an earlier one in
/// the copy; the directory's children must not be written through it.
#[test]
fn copy_never_writes_through_a_symlink_that_replaces_a_directory() {
    let env = BuildEnv::new();
    let canary = Canary::new();
    env.write("d/x/evil", "pwned\n");
    env.write("d/x/new", "created\n");
    fs::set_permissions(
        env.ctx.path().join("d/x/evil"),
        fs::Permissions::from_mode(0o4755),
    )
    .unwrap();
    symlink(canary.path(), env.ctx.path().join("x")).unwrap();
    env.write("Dockerfile", "FROM busybox\nCOPY d/ x /dst/\n");
    let out = env.build(&["-t", "case4"]);
    canary.assert_untouched();
    assert!(out.status.success(), "{}", stderr(&out));
    let manifest = env.manifest_of("case4");
    let layers = build_common::layers(&manifest);
    let listing = layer_listing(&env, layers.last().unwrap());
    assert!(
        listing.contains(&format!("dst/x -> {}", canary.path().display())),
        "{listing}"
    );
    assert!(!listing.contains("dst/x/"), "{listing}");
}

/// Case 5: `WORKDIR` below an image symlink to a host directory is created
/// inside the root, where the container sees it.
#[test]
fn workdir_below_an_image_symlink_is_created_inside_the_root() {
    let env = BuildEnv::new();
    let canary = Canary::new();
    env.write(
        "Dockerfile",
        &format!(
            "FROM busybox\nRUN ln -s {} /app\nWORKDIR /app/newdir\nRUN pwd > /where\n",
            canary.path().display()
        ),
    );
    let out = env.build(&["-t", "case5"]);
    canary.assert_untouched();
    assert!(out.status.success(), "{}", stderr(&out));
}

/// Case 5, user lookup: the image's `/etc` is a symlink to a host directory
/// holding a passwd file; `USER` must not resolve from the host's file.
#[test]
fn user_lookup_never_reads_account_files_from_the_host() {
    let env = BuildEnv::new();
    let canary = Canary::new();
    symlink(canary.path(), env.ctx.path().join("etc")).unwrap();
    env.write(
        "Dockerfile",
        "FROM busybox\nCOPY etc /\nUSER evil\nRUN id -u\n",
    );
    let out = env.build(&[]);
    canary.assert_untouched();
    let err = stderr(&out);
    assert!(
        !out.status.success(),
        "the build resolved 'evil' from the host: {err}"
    );
    assert!(
        err.contains("user 'evil' is not in the image's /etc/passwd"),
        "{err}"
    );
}

/// Case 6: a step that replaces the parent of its tmpfs mount point with a
/// symlink to a host directory; the mount point cleanup must not follow it.
#[test]
fn mount_point_cleanup_never_follows_a_symlink_the_step_made() {
    let env = BuildEnv::new();
    let canary = Canary::new();
    env.write(
        "Dockerfile",
        &format!(
            "FROM busybox\nRUN --mount=type=tmpfs,target=/a/b --mount=type=tmpfs,target=/c/empty \
             mv /a /a.old && ln -s {0} /a && mv /c /c.old && ln -s {0} /c\n",
            canary.path().display()
        ),
    );
    let out = env.build(&[]);
    canary.assert_untouched();
    assert!(out.status.success(), "{}", stderr(&out));
}

/// Case 7: a `.dockerignore` symlinked out of the context is not read.
#[test]
fn dockerignore_symlinked_out_of_the_context_is_not_read() {
    let env = BuildEnv::new();
    let canary = Canary::new();
    env.write("keep.txt", "kept\n");
    symlink(
        canary.path().join("ignore"),
        env.ctx.path().join(".dockerignore"),
    )
    .unwrap();
    env.write("Dockerfile", "FROM busybox\nCOPY keep.txt /\n");
    let out = env.build(&[]);
    canary.assert_untouched();
    assert!(
        out.status.success(),
        "the symlinked .dockerignore was read: {}",
        stderr(&out)
    );
}

/// Case 7: context symlinks are copied as symlinks, and a source path through
/// a symlinked directory never resolves outside the context.
#[test]
fn copy_never_reads_through_context_symlinks() {
    let env = BuildEnv::new();
    let canary = Canary::new();
    symlink(canary.path().join("passwd"), env.ctx.path().join("link")).unwrap();
    symlink("/", env.ctx.path().join("a")).unwrap();
    env.write("Dockerfile", "FROM busybox\nCOPY link /x\n");
    let out = env.build(&["-t", "case7"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let manifest = env.manifest_of("case7");
    let layers = build_common::layers(&manifest);
    let listing = layer_listing(&env, layers.last().unwrap());
    assert!(
        listing.contains(&format!("x -> {}", canary.path().display())),
        "{listing}"
    );
    let through = canary.path().join("passwd");
    let through = through.to_string_lossy();
    env.write("Dockerfile", &format!("FROM busybox\nCOPY a{through} /y\n"));
    let out = env.build(&[]);
    let err = stderr(&out);
    assert!(!out.status.success(), "COPY read through 'a -> /': {err}");
    assert!(err.contains("not found in the build context"), "{err}");
    canary.assert_untouched();
}

/// Case 20: a FIFO in the context never blocks a rw bind mount's copy.
#[test]
fn rw_bind_mount_of_a_context_with_a_fifo_does_not_hang() {
    let env = BuildEnv::new();
    let canary = Canary::new();
    let fifo = std::ffi::CString::new(
        env.ctx
            .path()
            .join("pipe")
            .into_os_string()
            .into_encoded_bytes(),
    )
    .unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
    env.write("data", "data\n");
    env.write(
        "Dockerfile",
        "FROM busybox\nRUN --mount=type=bind,rw,target=/ctx cat /ctx/data && echo x > /ctx/new\n",
    );
    let out = build_within(&env, Duration::from_secs(60));
    canary.assert_untouched();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        !env.ctx.path().join("new").exists(),
        "a rw bind mount wrote to the context"
    );
}

/// Case 21: what `.dockerignore` excludes is not visible through a bind
/// mount of the context, read-only or read-write.
#[test]
fn ignored_files_are_hidden_from_context_bind_mounts() {
    let env = BuildEnv::new();
    let canary = Canary::new();
    env.write("secret.txt", "secret\n");
    env.write("dir/hidden.key", "key\n");
    env.write("dir/shown", "shown\n");
    env.write(".dockerignore", "secret.txt\n**/*.key\n");
    env.write(
        "Dockerfile",
        "FROM busybox\n\
         RUN --mount=type=bind,target=/ctx test ! -e /ctx/secret.txt && test ! -e /ctx/dir/hidden.key && test -e /ctx/dir/shown\n\
         RUN --mount=type=bind,rw,target=/ctx test ! -e /ctx/secret.txt && test ! -e /ctx/dir/hidden.key && test -e /ctx/dir/shown\n\
         RUN --mount=type=bind,source=dir,target=/d test ! -e /d/hidden.key && test -e /d/shown\n",
    );
    let out = env.build(&[]);
    canary.assert_untouched();
    assert!(
        out.status.success(),
        "an ignored file was visible: {}",
        stderr(&out)
    );
}

/// Case 22: a base image missing from the store is pulled, as docker does,
/// but that is said before the network is touched.
#[test]
fn a_missing_base_image_is_announced_before_the_pull() {
    let env = BuildEnv::new();
    // Port 1 on loopback: the pull fails at once, and nothing leaves the host.
    env.write("Dockerfile", "FROM 127.0.0.1:1/nosuchimage-xyz\nRUN true\n");
    let out = env.build(&[]);
    let err = stderr(&out);
    assert!(!out.status.success(), "{err}");
    let announced = err
        .to_lowercase()
        .find("unable to find image '127.0.0.1:1/nosuchimage-xyz");
    let failed = err.find("is not in the local store");
    assert!(
        announced.is_some() && failed.is_some() && announced < failed,
        "the pull was not announced before it failed:\n{err}"
    );
}

/// A RUN line too long to start as a program: the error says why, and does
/// not repeat the 10 MB line.
#[test]
fn an_argument_too_long_is_named_as_the_cause() {
    let env = BuildEnv::new();
    let long = "a".repeat(10 << 20);
    env.write("Dockerfile", &format!("FROM busybox\nRUN echo {long}\n"));
    let out = env.build(&[]);
    let err = stderr(&out);
    assert!(!out.status.success());
    let line = err
        .lines()
        .find(|l| l.contains("RUN failed"))
        .unwrap_or_else(|| panic!("no RUN error in {} bytes of output", err.len()));
    assert!(
        line.len() < 1000,
        "the error repeats the {}-byte line",
        line.len()
    );
    assert!(
        err.contains("argument list too long"),
        "{}",
        &err[err.len().saturating_sub(2000)..]
    );
}

/// A RUN whose command the runtime cannot start: the error carries what the
/// runtime said, apart from the command's output.
#[test]
fn a_command_the_runtime_cannot_start_names_the_runtime_error() {
    let env = BuildEnv::new();
    env.write("Dockerfile", "FROM busybox\nRUN [\"/no-such-program\"]\n");
    let out = env.build(&[]);
    let err = stderr(&out);
    assert!(!out.status.success(), "{err}");
    let reported = err
        .lines()
        .find(|l| l.starts_with("the runtime reported: "))
        .unwrap_or_else(|| panic!("no runtime error in the RUN error:\n{err}"));
    assert!(reported.contains("/no-such-program"), "{err}");
}
