//! Layers end to end: a RUN that deletes files from a lower layer gives OCI
//! whiteouts (and opaque directories), clean builds with SOURCE_DATE_EPOCH are
//! reproducible, and zstd layers are correct.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod build_common;

use berth_e2e::require;
use build_common::{BuildEnv, layers};
use sha2::{Digest, Sha256};
use std::process::Command;

#[test]
fn deleting_lower_files_gives_whiteouts_and_opaque_dirs() {
    let env = BuildEnv::new();
    env.write(
        "Dockerfile",
        "FROM busybox\n\
         RUN mkdir -p /data/old && echo x > /data/old/f && echo y > /data/keep\n\
         RUN rm /etc/hostname /data/keep && rm -r /data/old && mkdir /data/old && echo new > /data/old/g\n\
         CMD [\"sh\", \"-c\", \"ls /data/old; test ! -e /etc/hostname && echo gone\"]\n",
    );
    env.build_ok(&["-t", "wh", "--compression", "uncompressed"]);
    let manifest = env.manifest_of("wh");
    let all = layers(&manifest);
    assert_eq!(all.len(), 3);
    assert_eq!(
        manifest["layers"][2]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar"
    );
    let entries = env.layer_entries(&all[2]);
    for expected in [
        "etc/.wh.hostname",
        "data/.wh.keep",
        "data/old/.wh..wh..opq",
        "data/old/g",
    ] {
        assert!(
            entries.iter().any(|e| e == expected),
            "{expected} missing from {entries:?}"
        );
    }
    assert!(!entries.iter().any(|e| e == "data/old/f"), "{entries:?}");
    assert_eq!(env.run_image("wh:latest"), "g\ngone\n");
}

fn sha256_file(path: &std::path::Path) -> String {
    format!("sha256:{:x}", Sha256::digest(std::fs::read(path).unwrap()))
}

#[test]
fn clean_builds_with_source_date_epoch_are_reproducible() {
    let dockerfile = "FROM busybox AS build\nCOPY . /src\nRUN cd /src && cat a.txt b/c.txt > /joined && touch /stamp\n\
                      FROM busybox\nCOPY --from=build /joined /joined\nLABEL built=yes\n";
    let build = || {
        let env = BuildEnv::new();
        env.write("Dockerfile", dockerfile);
        env.write("a.txt", "a\n");
        env.write("b/c.txt", "c\n");
        let out = env
            .command(&["-t", "repro"])
            .env("SOURCE_DATE_EPOCH", "1700000000")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let digest = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let config = env.config_of("repro");
        (env, digest, config)
    };
    let (env_a, digest_a, config_a) = build();
    // Another second, another store, another context directory with other mtimes.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let (_env_b, digest_b, _) = build();
    assert_eq!(digest_a, digest_b, "two clean builds gave different images");
    assert_eq!(config_a["created"], "2023-11-14T22:13:20Z");
    // The store's digests are true content digests.
    let manifest = env_a.manifest_of("repro");
    for layer in layers(&manifest) {
        assert_eq!(sha256_file(&env_a.blob(&layer)), layer);
    }
}

#[test]
fn zstd_layers_decompress_to_their_diff_ids() {
    let env = BuildEnv::new();
    env.write("big.txt", &"zstd layer content\n".repeat(50_000));
    env.write(
        "Dockerfile",
        "FROM busybox\nCOPY big.txt /big.txt\nRUN wc -l /big.txt > /count\n",
    );
    env.build_ok(&["-t", "z", "--compression", "zstd"]);
    let manifest = env.manifest_of("z");
    let config = env.config_of("z");
    for i in 1..3 {
        assert_eq!(
            manifest["layers"][i]["mediaType"],
            "application/vnd.oci.image.layer.v1.tar+zstd"
        );
        let digest = manifest["layers"][i]["digest"].as_str().unwrap();
        let out = Command::new(require::program("zstd", "zstd"))
            .args(["-d", "-c"])
            .arg(env.blob(digest))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "zstd -d failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            format!("sha256:{:x}", Sha256::digest(&out.stdout)),
            config["rootfs"]["diff_ids"][i].as_str().unwrap()
        );
    }
}
