//! The build cache end to end: RUN executions are counted through a cache
//! mount (which itself never enters a layer or a key).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod build_common;

use build_common::{BuildEnv, layers};

const DOCKERFILE: &str = r#"FROM busybox
COPY a.txt /a.txt
RUN --mount=type=cache,id=counter,target=/counter echo a >> /counter/a && cat /a.txt > /a.out
COPY b.txt /b.txt
RUN --mount=type=cache,id=counter,target=/counter echo b >> /counter/b && cat /b.txt > /b.out
CMD ["cat", "/a.out", "/b.out"]
"#;

fn setup() -> BuildEnv {
    let env = BuildEnv::new();
    env.write("Dockerfile", DOCKERFILE);
    env.write("a.txt", "A1\n");
    env.write("b.txt", "B1\n");
    env.write("notes.log", "ignored\n");
    env.write(".dockerignore", "*.log\n");
    env
}

fn counts(env: &BuildEnv) -> (usize, usize) {
    (env.runs("counter", "a"), env.runs("counter", "b"))
}

#[test]
fn second_build_runs_nothing_and_says_cached() {
    let env = setup();
    env.build_ok(&["-t", "c"]);
    assert_eq!(counts(&env), (1, 1));
    let (_, progress) = env.build_ok(&["-t", "c"]);
    assert_eq!(counts(&env), (1, 1), "no RUN step may run again");
    assert_eq!(progress.matches("CACHED").count(), 4, "{progress}");
    assert_eq!(layers(&env.manifest_of("c")).len(), 5);
    assert_eq!(env.run_image("c:latest"), "A1\nB1\n");
    // The cache mount's content is not in any layer.
    for layer in layers(&env.manifest_of("c")).iter().skip(1) {
        assert!(
            env.layer_entries(layer)
                .iter()
                .all(|e| !e.starts_with("counter")),
            "a cache mount leaked into a layer"
        );
    }
}

#[test]
fn one_file_change_reruns_only_dependent_steps() {
    let env = setup();
    env.build_ok(&["-t", "c"]);
    env.write("b.txt", "B2\n");
    let (_, progress) = env.build_ok(&["-t", "c"]);
    assert_eq!(
        counts(&env),
        (1, 2),
        "only the RUN after COPY b.txt reruns:\n{progress}"
    );
    assert_eq!(env.run_image("c:latest"), "A1\nB2\n");
    env.write("a.txt", "A2\n");
    env.build_ok(&["-t", "c"]);
    assert_eq!(
        counts(&env),
        (2, 3),
        "a change early invalidates everything after it"
    );
}

#[test]
fn ignored_file_change_reruns_nothing_and_no_cache_reruns_all() {
    let env = setup();
    let (first, _) = env.build_ok(&["-t", "c"]);
    env.write("notes.log", "changed, but ignored\n");
    env.write("other.log", "new, but ignored\n");
    env.build_ok(&["-t", "c"]);
    assert_eq!(counts(&env), (1, 1));
    assert_eq!(layers(&env.manifest_of("c")), layers(&env.json(&first)));
    // Touching a file without changing its content keeps the cache too.
    let path = env.ctx.path().join("a.txt");
    std::fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(std::time::SystemTime::now())
        .unwrap();
    env.build_ok(&["-t", "c"]);
    assert_eq!(counts(&env), (1, 1), "mtimes are not part of the key");
    env.build_ok(&["-t", "c", "--no-cache"]);
    assert_eq!(counts(&env), (2, 2));
}

#[test]
fn build_args_and_env_are_part_of_the_key() {
    let env = BuildEnv::new();
    env.write(
        "Dockerfile",
        "FROM busybox\nARG V=1\nRUN --mount=type=cache,id=counter,target=/counter echo $V >> /counter/v\n",
    );
    env.build_ok(&[]);
    env.build_ok(&[]);
    assert_eq!(env.runs("counter", "v"), 1);
    env.build_ok(&["--build-arg", "V=2"]);
    assert_eq!(env.runs("counter", "v"), 2);
    env.build_ok(&["--build-arg", "V=2"]);
    assert_eq!(env.runs("counter", "v"), 2);
}
