//! COPY and ADD edge cases end to end: directory contents, wildcards, trailing
//! slashes, --chown, --chmod, --parents, --exclude, heredocs, symlinks,
//! archives, and the error for a missing source.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod build_common;

use build_common::BuildEnv;

#[test]
fn copy_rules_owners_modes_and_heredocs() {
    let env = BuildEnv::new();
    env.write("src/main.c", "int main;\n");
    env.write("src/lib/util.c", "int util;\n");
    env.write("docs/a.md", "a\n");
    env.write("docs/b.md", "b\n");
    env.write("docs/skip.txt", "skip\n");
    env.write("tool.sh", "#!/bin/sh\necho tool-ran\n");
    std::os::unix::fs::symlink("main.c", env.ctx.path().join("src/link.c")).unwrap();
    env.write(
        "Dockerfile",
        r#"FROM busybox
COPY src /code
COPY docs/*.md /docs/
COPY --chown=65534:65534 --chmod=750 tool.sh /usr/local/bin/tool
COPY --chmod=u=rw,go=r docs/a.md /modes/a.md
COPY --parents src/lib/util.c /tree/
COPY --exclude=*.c src /nosrc/
COPY <<MOTD /etc/motd
welcome $HOSTNAME
MOTD
RUN set -e; cd /; \
    echo "code: $(ls /code | tr '\n' ' ')"; \
    echo "docs: $(ls /docs | tr '\n' ' ')"; \
    echo "tool: $(stat -c '%u:%g %a' /usr/local/bin/tool)"; \
    echo "mode: $(stat -c '%a' /modes/a.md)"; \
    echo "tree: $(ls /tree/src/lib)"; \
    echo "link: $(readlink /code/link.c)"; \
    echo "nosrc: $(find /nosrc | sort | tr '\n' ' ')"; \
    echo "motd: $(cat /etc/motd)"; \
    /usr/local/bin/tool
"#,
    );
    let (_, progress) = env.build_ok(&[]);
    for expected in [
        "code: lib link.c main.c ",
        "docs: a.md b.md ",
        "tool: 65534:65534 750",
        "mode: 644",
        "tree: util.c",
        "link: main.c",
        // As in BuildKit, `*` does not cross `/`: only top-level .c files go.
        "nosrc: /nosrc /nosrc/lib /nosrc/lib/util.c ",
        "motd: welcome $HOSTNAME",
        "tool-ran",
    ] {
        assert!(
            progress.contains(expected),
            "missing {expected:?} in:\n{progress}"
        );
    }
}

#[test]
fn add_extracts_local_archives_and_copies_other_files() {
    let env = BuildEnv::new();
    env.write("payload/inner/file.txt", "from the archive\n");
    let status = std::process::Command::new("tar")
        .arg("-czf")
        .arg(env.ctx.path().join("payload.tgz"))
        .arg("-C")
        .arg(env.ctx.path().join("payload"))
        .arg(".")
        .status()
        .unwrap();
    assert!(status.success());
    env.write("plain.txt", "plain\n");
    env.write(
        "Dockerfile",
        "FROM busybox\nADD payload.tgz /unpacked/\nADD plain.txt /plain.txt\nCOPY payload.tgz /kept.tgz\n\
         RUN cat /unpacked/inner/file.txt /plain.txt && test -f /kept.tgz\n",
    );
    let (_, progress) = env.build_ok(&[]);
    assert!(progress.contains("from the archive"), "{progress}");
}

#[test]
fn missing_source_names_the_path() {
    let env = BuildEnv::new();
    env.write("present.txt", "x");
    env.write(
        "Dockerfile",
        "FROM busybox\nCOPY present.txt absent/thing.txt /dst/\n",
    );
    let out = env.build(&[]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("absent/thing.txt"), "{stderr}");
    assert!(
        stderr.contains("Dockerfile:2"),
        "the error names the Dockerfile line: {stderr}"
    );

    // A file excluded by .dockerignore is missing too.
    env.write(".dockerignore", "present.txt\n");
    env.write("Dockerfile", "FROM busybox\nCOPY present.txt /dst/\n");
    let out = env.build(&[]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("present.txt"));
}
