//! Multi-stage builds: COPY --from by name and index, --target pruning (a
//! stage the target does not need is never built), and stages on stages.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod build_common;

use build_common::BuildEnv;

const DOCKERFILE: &str = r#"FROM busybox AS base
RUN echo base > /base.txt

FROM base AS left
RUN --mount=type=cache,id=counter,target=/counter echo left >> /counter/left && echo left > /left.txt

FROM busybox AS broken
RUN echo "this stage must never build" && exit 3

FROM busybox AS right
RUN --mount=type=cache,id=counter,target=/counter echo right >> /counter/right && echo right > /right.txt

FROM busybox
COPY --from=left /base.txt /left.txt /out/
COPY --from=3 /right.txt /out/
CMD ["cat", "/out/base.txt", "/out/left.txt", "/out/right.txt"]
"#;

#[test]
fn final_stage_needs_left_and_right_but_never_broken() {
    let env = BuildEnv::new();
    env.write("Dockerfile", DOCKERFILE);
    let (_, progress) = env.build_ok(&["-t", "multi"]);
    assert!(!progress.contains("must never build"), "{progress}");
    assert_eq!(env.run_image("multi:latest"), "base\nleft\nright\n");
    assert_eq!(
        (env.runs("counter", "left"), env.runs("counter", "right")),
        (1, 1)
    );
}

#[test]
fn target_prunes_to_the_stages_it_needs() {
    let env = BuildEnv::new();
    env.write("Dockerfile", DOCKERFILE);
    let (_, progress) = env.build_ok(&["--target", "left", "-t", "left-only"]);
    assert_eq!(
        (env.runs("counter", "left"), env.runs("counter", "right")),
        (1, 0),
        "{progress}"
    );
    assert!(!progress.contains("[right"), "{progress}");
    let config = env.config_of("left-only");
    let history: Vec<&str> = config["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|h| h["created_by"].as_str())
        .collect();
    assert!(
        history.iter().any(|h| h.contains("echo base")),
        "{history:?}"
    );

    let failed = env.build(&["--target", "broken"]);
    assert!(!failed.status.success());
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(stderr.contains("exit code 3"), "{stderr}");
    assert!(
        stderr.contains("this stage must never build"),
        "the output tail is shown: {stderr}"
    );
}

#[test]
fn copy_from_a_local_image_and_bind_mount_from_a_stage() {
    let env = BuildEnv::new();
    env.write(
        "Dockerfile",
        "FROM scratch\nCOPY --from=busybox /bin/busybox /bin/busybox\n",
    );
    env.build_ok(&["-t", "just-busybox"]);
    let config = env.config_of("just-busybox");
    assert_eq!(config["rootfs"]["diff_ids"].as_array().unwrap().len(), 1);

    env.write(
        "Dockerfile",
        "FROM busybox AS gen\nRUN echo generated > /gen.txt\n\
         FROM busybox\nRUN --mount=type=bind,from=gen,source=/gen.txt,target=/mnt/gen.txt cp /mnt/gen.txt /copied.txt\n\
         CMD [\"cat\", \"/copied.txt\"]\n",
    );
    env.build_ok(&["-t", "bound"]);
    assert_eq!(env.run_image("bound:latest"), "generated\n");
}

#[test]
fn independent_stages_build_in_parallel() {
    let env = BuildEnv::new();
    // Each stage records when its RUN starts and ends; overlapping intervals
    // show the two stages ran at the same time.
    let stage = |name: &str| {
        format!(
            "FROM busybox AS {name}\n\
             RUN --mount=type=cache,id=clock,target=/clock \
             echo start $(cut -d' ' -f1 /proc/uptime) > /clock/{name} && sleep 1 && echo end $(cut -d' ' -f1 /proc/uptime) >> /clock/{name} && touch /{name}\n"
        )
    };
    env.write(
        "Dockerfile",
        &format!(
            "{}{}FROM busybox\nCOPY --from=one /one /one\nCOPY --from=two /two /two\n",
            stage("one"),
            stage("two")
        ),
    );
    env.build_ok(&[]);
    let id = {
        use sha2::{Digest, Sha256};
        format!("{:x}", Sha256::digest(b"clock"))
    };
    let read = |name: &str| -> (u128, u128) {
        let text =
            std::fs::read_to_string(env.store.path().join("cache-mounts").join(&id).join(name))
                .unwrap();
        // /proc/uptime has centiseconds: compare in hundredths.
        let nums: Vec<u128> = text
            .lines()
            .map(|l| {
                l.split(' ')
                    .nth(1)
                    .unwrap()
                    .replace('.', "")
                    .parse()
                    .unwrap()
            })
            .collect();
        (nums[0], nums[1])
    };
    let (a, b) = (read("one"), read("two"));
    assert!(
        a.0 < b.1 && b.0 < a.1,
        "the stages ran one after the other: {a:?} {b:?}"
    );
}
