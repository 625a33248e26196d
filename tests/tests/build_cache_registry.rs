//! Build caches shared between machines: `--cache-to` on one store,
//! `--cache-from` on a fresh one, through a real docker-registry and through
//! an OCI layout directory. RUN executions are counted through a cache mount,
//! which lives in each store: a count of zero on the second store proves no
//! RUN step ran there.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod build_common;

use berth_e2e::registry::TestRegistry;
use build_common::{BuildEnv, layers};
use serde_json::Value;
use std::fs;

/// A build stage whose result only the final stage's `COPY --from` uses,
/// and a final stage of four filesystem steps.
const DOCKERFILE: &str = r#"FROM busybox AS build
COPY src.txt /src/src.txt
RUN --mount=type=cache,id=counter,target=/count echo build >> /count/runs && mkdir /out && tr a-z A-Z < /src/src.txt > /out/app
FROM busybox
RUN --mount=type=cache,id=counter,target=/count echo base >> /count/runs && echo base > /base
COPY --from=build /out/app /app
COPY conf.txt /conf.txt
RUN --mount=type=cache,id=counter,target=/count echo final >> /count/runs && cat /app /conf.txt > /result
CMD ["cat", "/result"]
"#;

/// A "machine": a fresh store with the busybox base and the same context
/// content, in a context directory of its own.
fn machine() -> BuildEnv {
    let env = BuildEnv::new();
    env.write("Dockerfile", DOCKERFILE);
    env.write("src.txt", "hello\n");
    env.write("conf.txt", "conf 1\n");
    env
}

/// Builds with a fixed SOURCE_DATE_EPOCH (image and history times then do
/// not depend on when the build ran); returns (digest, stderr).
fn build(env: &BuildEnv, args: &[&str]) -> (String, String) {
    let out = env
        .command(args)
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "berth build {args:?} failed:\n{stderr}"
    );
    (
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
        stderr,
    )
}

/// The steps run and cached, from berth's closing line.
fn steps(stderr: &str) -> (usize, usize) {
    let line = stderr
        .lines()
        .find(|l| l.starts_with("built "))
        .unwrap_or_else(|| panic!("no 'built' line in:\n{stderr}"));
    let number_before = |word: &str| -> usize {
        let head = &line[..line.find(word).unwrap()];
        head.rsplit(['(', ' ', ','])
            .find(|w| !w.is_empty())
            .unwrap()
            .parse()
            .unwrap()
    };
    (number_before(" steps run"), number_before(" cached"))
}

/// The RUN steps that ran in this store, in order (each appends its name
/// to a file in the store's cache mount `counter`).
fn runs(env: &BuildEnv) -> Vec<String> {
    use sha2::{Digest, Sha256};
    let id = format!("{:x}", Sha256::digest(b"counter"));
    let path = env.store.path().join("cache-mounts").join(id).join("runs");
    fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn a_fresh_store_rebuilds_from_the_registry_cache_running_nothing() {
    let registry = TestRegistry::start();
    let cache = format!("{}/ci/app-cache:main", registry.host());
    let cache_to = format!("type=registry,ref={cache},mode=max");
    let cache_from = format!("type=registry,ref={cache}");

    // Machine A pushes the image, then the cache: the four layers the two
    // share are mounted from the image's repository, not uploaded again;
    // only the build stage's two layers and the cache config are.
    let a = machine();
    let app = format!("{}/ci/app:1", registry.host());
    let (image_a, out_a) = build(&a, &["-t", &app, "--push", "--cache-to", &cache_to]);
    assert_eq!(steps(&out_a), (6, 0), "{out_a}");
    assert!(
        out_a.contains("exported the build cache") && out_a.contains("(6 records, 6 layers)"),
        "{out_a}"
    );
    assert_eq!(
        registry.count_requests("PUT", "/v2/ci/app-cache/blobs/uploads/"),
        3,
        "{}",
        registry.log()
    );
    assert_eq!(
        registry.count_requests("POST", "/v2/ci/app-cache/blobs/uploads/?mount="),
        4,
        "{}",
        registry.log()
    );

    // Machine B: an empty store (busybox only), another context path.
    let b = machine();
    assert_ne!(a.ctx.path(), b.ctx.path());
    let blob_gets = || registry.count_requests("GET", "/v2/ci/app-cache/blobs/");
    let before = blob_gets();
    let (image_b, out_b) = build(&b, &["-t", "app", "--cache-from", &cache_from]);
    assert_eq!(steps(&out_b), (0, 6), "{out_b}");
    assert!(runs(&b).is_empty(), "no RUN step may run on B: {out_b}");
    assert_eq!(image_b, image_a, "the same image on both machines");
    // The cache config and the final image's four layers; the build stage's
    // two layers are never needed, since COPY --from was a hit too.
    assert_eq!(blob_gets() - before, 5, "{}", registry.log());
    assert_eq!(layers(&b.manifest_of("app")).len(), 5);
    assert_eq!(b.run_image("app:latest"), "HELLO\nconf 1\n");

    // A change to one file rebuilds only the steps from it on.
    b.write("conf.txt", "conf 2\n");
    let (_, out) = build(&b, &["-t", "app", "--cache-from", &cache_from]);
    assert_eq!(steps(&out), (2, 4), "{out}");
    assert_eq!(runs(&b), ["final"]);
    assert_eq!(b.run_image("app:latest"), "HELLO\nconf 2\n");
}

#[test]
fn mode_min_exports_only_the_steps_of_the_image() {
    let registry = TestRegistry::start();
    let cache = format!("{}/ci/min-cache:main", registry.host());
    let a = machine();
    let (image_a, out_a) = build(&a, &["--cache-to", &format!("type=registry,ref={cache}")]);
    assert!(out_a.contains("(4 records, 4 layers)"), "{out_a}");

    let b = machine();
    let (image_b, out_b) = build(&b, &["--cache-from", &cache]);
    // The build stage is not in a mode=min cache and runs again; the final
    // stage's keys only depend on content, so all of its steps hit.
    assert_eq!(steps(&out_b), (2, 4), "{out_b}");
    assert_eq!(runs(&b), ["build"]);
    assert_eq!(image_b, image_a);
}

#[test]
fn local_cache_directories_work_both_ways() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let a = machine();
    let (image_a, _) = build(
        &a,
        &[
            "--cache-to",
            &format!("type=local,dest={},mode=max", cache.display()),
        ],
    );
    // A plain OCI image layout naming the cache manifest by tag.
    assert!(cache.join("oci-layout").is_file());
    let index: Value =
        serde_json::from_slice(&fs::read(cache.join("index.json")).unwrap()).unwrap();
    let entry = &index["manifests"][0];
    assert_eq!(
        entry["annotations"]["org.opencontainers.image.ref.name"],
        "latest"
    );
    let blob = |digest: &str| {
        cache
            .join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:"))
    };
    let manifest: Value =
        serde_json::from_slice(&fs::read(blob(entry["digest"].as_str().unwrap())).unwrap())
            .unwrap();
    assert_eq!(
        manifest["config"]["mediaType"],
        "application/vnd.berth.build-cache.config.v1+json"
    );
    for layer in layers(&manifest) {
        assert!(blob(&layer).is_file(), "layer {layer} is in the directory");
    }

    let b = machine();
    let (image_b, out_b) = build(
        &b,
        &[
            "--cache-from",
            &format!("type=local,src={}", cache.display()),
        ],
    );
    assert_eq!(steps(&out_b), (0, 6), "{out_b}");
    assert!(runs(&b).is_empty());
    assert_eq!(image_b, image_a);
}

#[test]
fn a_missing_cache_only_warns_and_a_failed_export_fails() {
    let registry = TestRegistry::start();
    let env = BuildEnv::new();
    env.write("Dockerfile", "FROM busybox\nRUN echo x > /x\n");
    let missing = format!("{}/ci/none:main", registry.host());
    let (_, out) = build(
        &env,
        &[
            "--cache-from",
            &missing,
            "--cache-from",
            &format!(
                "type=local,src={}",
                env.ctx.path().join("nothing").display()
            ),
        ],
    );
    assert_eq!(steps(&out), (1, 0), "{out}");
    assert!(
        out.contains(&format!("warning: --cache-from {missing}: not used")),
        "{out}"
    );
    assert!(out.contains("has no index.json"), "{out}");

    // Nothing listens on port 1: the export fails the build, naming it.
    let out = env
        .command(&["--cache-to", "type=registry,ref=127.0.0.1:1/ci/cache:x"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("the build cache 127.0.0.1:1/ci/cache:x"),
        "{stderr}"
    );
}
