//! `berth build --check`: parses and plans a Dockerfile without building,
//! reports every error and warning with its line, and exits non-zero when the
//! Dockerfile is invalid.

// Test helpers outside #[test] functions fail loudly too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use berth_e2e::bins;
use std::fs;
use std::path::Path;
use std::process::{Command, Output};

fn berth_build(dir: &Path, args: &[&str]) -> Output {
    Command::new(bins::berth())
        .arg("build")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn context(dockerfile: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("Dockerfile"), dockerfile).unwrap();
    dir
}

#[test]
fn valid_dockerfile_passes() {
    let dir = context(
        "# syntax=docker/dockerfile:1\nARG BASE=alpine:3.20\nFROM $BASE AS build\nRUN <<EOF\nset -e\necho hi\nEOF\nFROM scratch\nCOPY --from=build /etc/os-release /\nENTRYPOINT [\"/bin/true\"]\n",
    );
    let out = berth_build(dir.path(), &["--check", "."]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(stdout(&out).trim(), "Check complete, no warnings found.");
}

#[test]
fn every_error_is_reported_with_its_line_and_the_exit_code_fails() {
    let dir = context(
        "FROM alpine\nRUNN echo hi\nCOPY --bogus=1 a b\nCOPY --from=7 a b\nCMD echo warn\n",
    );
    let out = berth_build(dir.path(), &["--check", "."]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let text = stdout(&out);
    for expected in [
        "error: unknown instruction: RUNN (did you mean RUN?)\n --> ./Dockerfile:2\n2 | RUNN echo hi\n  | ^^^^\n",
        "error: unknown flag: --bogus for COPY",
        "3 | COPY --bogus=1 a b\n  |      ^^^^^^^\n",
        " --> ./Dockerfile:3\n",
        "error: invalid stage index 7: the Dockerfile has 1 stage(s)\n --> ./Dockerfile:4\n",
        "warning: JSONArgsRecommended: JSON arguments recommended for CMD",
        " --> ./Dockerfile:5\n",
        "Check failed: 3 errors and 1 warning found.",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
}

#[test]
fn warnings_alone_do_not_fail() {
    let dir = context("FROM alpine\nMAINTAINER someone\n");
    let out = berth_build(dir.path(), &["--check", "--build-arg", "UNUSED=1", "."]);
    assert!(out.status.success(), "{out:?}");
    let text = stdout(&out);
    assert!(text.contains("warning: MaintainerDeprecated"), "{text}");
    assert!(
        text.contains("warning: UnusedBuildArg: one or more build args were not consumed: UNUSED"),
        "{text}"
    );
    assert!(text.contains("Check complete, 2 warnings found."), "{text}");
}

#[test]
fn parse_errors_name_file_and_line() {
    let dir = context("FROM alpine\nRUN <<EOF\necho never ends\n");
    let out = berth_build(dir.path(), &["--check", "."]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let text = stdout(&out);
    assert!(
        text.contains("error: unterminated heredoc \"EOF\"\n --> ./Dockerfile:2\n"),
        "{text}"
    );
    let empty = context("# only a comment\n");
    let out = berth_build(empty.path(), &["--check", "."]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        stdout(&out).contains("file with no instructions"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn invalid_dockerignore_is_an_error_naming_the_file() {
    let dir = context("FROM alpine\n");
    fs::write(dir.path().join(".dockerignore"), "ok\n[\n").unwrap();
    let out = berth_build(dir.path(), &["--check", "."]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "./.dockerignore: invalid .dockerignore pattern \"[\": syntax error in pattern"
        ),
        "{stderr}"
    );
}

#[test]
fn file_target_platform_and_build_args_are_honoured() {
    let dir = context("");
    fs::create_dir(dir.path().join("sub")).unwrap();
    fs::write(
        dir.path().join("sub/app.Dockerfile"),
        "ARG VARIANT\nFROM alpine:${VARIANT:?} AS base\nFROM base AS test\nRUN --mount=from=missing,target=/m true\nFROM base AS release\nARG TARGETARCH\nRUN echo $TARGETARCH\n",
    )
    .unwrap();
    let file = dir.path().join("sub/app.Dockerfile");
    let file = file.to_str().unwrap();
    let ok = berth_build(
        dir.path(),
        &[
            "--check",
            "-f",
            file,
            "--build-arg",
            "VARIANT=3.20",
            "--target",
            "release",
            "--platform",
            "linux/arm64",
            ".",
        ],
    );
    assert!(ok.status.success(), "{ok:?}");
    let missing_arg = berth_build(dir.path(), &["--check", "-f", file, "."]);
    assert_eq!(missing_arg.status.code(), Some(1));
    assert!(
        stdout(&missing_arg).contains("VARIANT: is not allowed to be unset"),
        "{}",
        stdout(&missing_arg)
    );
    let bad_target = berth_build(
        dir.path(),
        &[
            "--check",
            "-f",
            file,
            "--build-arg",
            "VARIANT=1",
            "--target",
            "relase",
            ".",
        ],
    );
    assert_eq!(bad_target.status.code(), Some(1));
    let text = stdout(&bad_target);
    assert!(
        text.contains("target stage \"relase\" could not be found"),
        "{text}"
    );
    assert!(text.contains("hint: did you mean \"release\"?"), "{text}");
}
