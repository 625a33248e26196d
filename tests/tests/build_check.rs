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

/// Where BuildKit's full check (`docker build --check`, no build args)
/// accepts or rejects a Dockerfile, berth agrees, with BuildKit's messages.
#[test]
fn agrees_with_buildkit_check() {
    let mount = "--mount=type=bind,target=/src,z";
    let mount_caret = format!("  |     {}\n", "^".repeat(mount.len()));
    let cases: Vec<(&str, Vec<String>)> = vec![
        // A bare RUN is an empty shell-form command.
        ("FROM alpine\nRUN\n", vec![]),
        ("FROM alpine\nRUN --network=none\n", vec![]),
        (
            "FROM alpine\nRUN --mount=type=secret,id=t,required --mount=target=/s,ro true\n",
            vec![],
        ),
        // SELinux's z is no key=value field.
        (
            "FROM alpine\nRUN --mount=type=bind,target=/src,z true\n",
            vec![
                "error: invalid field 'z' must be a key=value pair\n --> ./Dockerfile:2\n2 | RUN --mount=type=bind,target=/src,z true\n".to_string(),
                mount_caret,
            ],
        ),
        (
            "FROM alpine\nRUN --network=bridge true\n",
            vec![
                "error: invalid network mode \"bridge\" (RUN --network takes default, none, host)\n --> ./Dockerfile:2\n2 | RUN --network=bridge true\n  |     ^^^^^^^^^^^^^^^^\n".to_string(),
            ],
        ),
        // Without build args, an ARG without a default expands to nothing.
        (
            "ARG TAG\nFROM alpine:$TAG\n",
            vec![
                "warning: InvalidDefaultArgInFrom: default value for ARG alpine:$TAG results in empty or invalid base image name\n --> ./Dockerfile:2\n".to_string(),
                "error: failed to parse stage name \"alpine:\": invalid reference format\n --> ./Dockerfile:2\n".to_string(),
                "Check failed: 1 error and 1 warning found.".to_string(),
            ],
        ),
        (
            "FROM alpine AS base\nFROM Base\n",
            vec![
                "error: failed to parse stage name \"Base\": invalid reference format: repository name (library/Base) must be lowercase\n --> ./Dockerfile:2\n".to_string(),
            ],
        ),
        (
            "FROM alpine AS 1st\n",
            vec![
                "error: invalid name for build stage: \"1st\", name can't start with a number or contain symbols\n --> ./Dockerfile:1\n".to_string(),
            ],
        ),
    ];
    for (dockerfile, expected) in cases {
        let dir = context(dockerfile);
        let out = berth_build(dir.path(), &["--check", "."]);
        let text = stdout(&out);
        if expected.is_empty() {
            assert!(out.status.success(), "{dockerfile:?}: {out:?}");
            assert_eq!(
                text.trim(),
                "Check complete, no warnings found.",
                "{dockerfile:?}"
            );
            continue;
        }
        assert_eq!(out.status.code(), Some(1), "{dockerfile:?}: {out:?}");
        for part in expected {
            assert!(
                text.contains(&part),
                "{dockerfile:?}: missing {part:?} in:\n{text}"
            );
        }
    }
}
