//! What a failed build tells the user: a Dockerfile error shows the file, the
//! line and a caret; a failing RUN shows its exit code and the tail of its
//! output; an unknown base image is named with a hint.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod build_common;

use build_common::BuildEnv;

fn failure(env: &BuildEnv) -> String {
    let out = env.build(&[]);
    assert!(!out.status.success(), "the build should fail");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn dockerfile_errors_show_file_line_and_caret() {
    let env = BuildEnv::new();
    env.write("Dockerfile", "FROM busybox\nRUN true\nCOPPY a b\n");
    let stderr = failure(&env);
    assert!(stderr.contains("Dockerfile:3"), "{stderr}");
    assert!(stderr.contains("COPPY a b"), "{stderr}");
    assert!(stderr.contains('^'), "{stderr}");
}

#[test]
fn failing_run_shows_exit_code_and_output_tail() {
    let env = BuildEnv::new();
    env.write(
        "Dockerfile",
        "FROM busybox\nRUN for i in $(seq 1 50); do echo step$i; done; echo broken >&2; exit 42\n",
    );
    let stderr = failure(&env);
    assert!(stderr.contains("exit code 42"), "{stderr}");
    assert!(stderr.contains("Dockerfile:2"), "{stderr}");
    let after_error = stderr.split("exit code 42").nth(1).unwrap();
    assert!(
        after_error.contains("step50") && after_error.contains("broken"),
        "{stderr}"
    );
    assert!(
        !after_error.contains("step10\n"),
        "only the tail is repeated: {stderr}"
    );
    // Nothing of the failed step is cached: a fixed step runs.
    env.write("Dockerfile", "FROM busybox\nRUN echo fixed\n");
    let (_, progress) = env.build_ok(&[]);
    assert!(progress.contains("fixed"), "{progress}");
}

#[test]
fn unknown_base_image_is_named() {
    let env = BuildEnv::new();
    env.write("Dockerfile", "FROM no-such-image:1\nRUN true\n");
    let stderr = failure(&env);
    assert!(stderr.contains("no-such-image:1"), "{stderr}");
}
