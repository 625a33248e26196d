//! Image management on the local store, driven through the `berth` binary:
//! tag, images, inspect, history, rmi, prune, save and load, with podman as
//! the peer for archives.

// Helpers outside #[test] functions fail loudly too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod build_common;

use berth_e2e::podman::Podman;
use berth_e2e::{bins, require};
use build_common::BuildEnv;
use serde_json::Value;
use std::collections::BTreeSet;
use std::fs;
use std::path::Path;
use std::process::{Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

/// Runs `berth --root STORE args…`.
fn berth(env: &BuildEnv, args: &[&str]) -> Output {
    Command::new(bins::berth())
        .arg("--root")
        .arg(env.store.path())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// Runs berth and fails the test unless it succeeds; returns stdout.
fn berth_ok(env: &BuildEnv, args: &[&str]) -> String {
    let out = berth(env, args);
    assert!(
        out.status.success(),
        "berth {args:?} failed:\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs berth, expects a failure, returns stderr.
fn berth_err(env: &BuildEnv, args: &[&str]) -> String {
    let out = berth(env, args);
    assert!(
        !out.status.success(),
        "berth {args:?} should have failed:\nstdout: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8(out.stderr).unwrap()
}

/// Runs berth with stdout a pipe whose reader is gone before berth starts,
/// as `berth … | head -1` leaves it once head has exited; returns the exit
/// status and stderr.
fn berth_into_closed_pipe(env: &BuildEnv, args: &[&str]) -> (ExitStatus, String) {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = Command::new(bins::berth())
        .arg("--root")
        .arg(env.store.path())
        .args(args)
        .stdin(Stdio::null())
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    (out.status, String::from_utf8(out.stderr).unwrap())
}

/// Runs the image with `berth run --rm`; returns its output.
fn run(env: &BuildEnv, image: &str) -> String {
    berth_ok(env, &["run", "--rm", image])
}

/// The blobs in the store.
fn blobs(env: &BuildEnv) -> BTreeSet<String> {
    fs::read_dir(env.layout().join("blobs/sha256"))
        .unwrap()
        .map(|e| format!("sha256:{}", e.unwrap().file_name().to_string_lossy()))
        .collect()
}

/// The snapshots in the store (diffIDs).
fn snapshots(env: &BuildEnv) -> BTreeSet<String> {
    fs::read_dir(env.store.path().join("snapshots"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.len() == 64)
        .map(|n| format!("sha256:{n}"))
        .collect()
}

/// The manifest, config and layer digests of a tagged image.
fn image_blobs(env: &BuildEnv, tag: &str) -> BTreeSet<String> {
    let manifest = env.manifest_of(tag);
    let mut set: BTreeSet<String> = build_common::layers(&manifest).into_iter().collect();
    set.insert(manifest["config"]["digest"].as_str().unwrap().to_string());
    set.insert(manifest_digest(env, tag));
    set
}

/// The manifest digest a tag points at.
fn manifest_digest(env: &BuildEnv, tag: &str) -> String {
    let inspect: Value = serde_json::from_str(&berth_ok(env, &["inspect", tag])).unwrap();
    inspect[0]["Digest"].as_str().unwrap().to_string()
}

/// The diffIDs of a tagged image.
fn diff_ids(env: &BuildEnv, tag: &str) -> Vec<String> {
    env.config_of(tag)["rootfs"]["diff_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap().to_string())
        .collect()
}

/// A container record as `berth run` writes it, for an image.
fn write_container_record(env: &BuildEnv, id: &str, image: &str) {
    let dir = env.store.path().join("containers").join(id);
    fs::create_dir_all(&dir).unwrap();
    let record = serde_json::json!({
        "id": id,
        "image": image,
        "image_digest": manifest_digest(env, image),
    });
    fs::write(dir.join("container.json"), record.to_string()).unwrap();
}

#[test]
fn tag_images_inspect_and_history_describe_the_store() {
    let env = BuildEnv::new();
    env.write(
        "Dockerfile",
        "FROM busybox\nENV GREETING=hi\nRUN echo built > /built\nCMD [\"cat\", \"/built\"]\n",
    );
    let (digest, _) = env.build_ok(&["-t", "app"]);
    berth_ok(&env, &["tag", "app", "localhost:5000/team/app:1"]);
    let config_digest = env.manifest_of("app")["config"]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let id = &config_digest["sha256:".len()..];

    // Every way of naming the image finds the same one.
    for reference in [
        "app",
        "app:latest",
        "localhost:5000/team/app:1",
        &id[..8],
        &config_digest,
        &digest,
        &format!("app@{digest}"),
    ] {
        let inspect: Value =
            serde_json::from_str(&berth_ok(&env, &["inspect", reference])).unwrap();
        assert_eq!(inspect[0]["Id"], config_digest.as_str(), "{reference}");
        assert_eq!(inspect[0]["Digest"], digest.as_str(), "{reference}");
        assert_eq!(
            inspect[0]["Manifest"]["layers"].as_array().unwrap().len(),
            2
        );
        assert_eq!(inspect[0]["Config"]["Cmd"][0], "cat");
        assert_eq!(
            inspect[0]["RepoTags"],
            serde_json::json!(["app:latest", "localhost:5000/team/app:1"])
        );
    }

    // docker's --format templates.
    assert_eq!(
        berth_ok(
            &env,
            &["inspect", "--format", "{{.Id}} {{json .Config.Cmd}}", "app"]
        ),
        format!("{config_digest} [\"cat\",\"/built\"]\n")
    );

    // Bad references and names: a clear error and a failure exit.
    for (args, message) in [
        (vec!["inspect", "missing"], "no such image: 'missing'"),
        (vec!["tag", "missing", "x"], "no such image: 'missing'"),
        (
            vec!["tag", "app", "Upper/Case"],
            "invalid image name 'Upper/Case'",
        ),
        (vec!["tag", "app", "app@sha256:00"], "cannot carry a digest"),
        (vec!["history", "nope:1"], "no such image: 'nope:1'"),
        (vec!["rmi", "missing"], "no such image: 'missing'"),
        (vec!["save", "-o", "/dev/null", "missing"], "no such image"),
    ] {
        let stderr = berth_err(&env, &args);
        assert!(stderr.contains(message), "{args:?}: {stderr}");
    }

    // The table: one row per name, docker's columns.
    let table = berth_ok(&env, &["images"]);
    let mut lines = table.lines();
    let header: Vec<&str> = lines.next().unwrap().split("   ").map(str::trim).collect();
    assert!(header.starts_with(&["REPOSITORY"]), "{table}");
    for column in ["TAG", "IMAGE ID", "CREATED", "SIZE"] {
        assert!(table.lines().next().unwrap().contains(column), "{table}");
    }
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split_whitespace().collect()).collect();
    let row_of = |repo: &str| rows.iter().find(|r| r[0] == repo).cloned().unwrap();
    assert_eq!(row_of("app")[1], "latest");
    assert_eq!(row_of("app")[2], &id[..12]);
    assert_eq!(row_of("localhost:5000/team/app")[1], "1");
    assert_eq!(row_of("busybox")[1], "latest");
    assert_eq!(rows.len(), 3, "{table}");

    // -q: each image once; JSON: every name.
    let quiet = berth_ok(&env, &["images", "-q"]);
    assert_eq!(quiet.lines().count(), 2, "{quiet}");
    assert!(quiet.lines().any(|l| l == &id[..12]));
    // JSON: one object per line, as docker's.
    let json: Vec<Value> = berth_ok(&env, &["images", "--format", "json", "--no-trunc"])
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let app = json.iter().find(|i| i["Repository"] == "app").unwrap();
    assert_eq!(app["ID"], config_digest.as_str());
    assert_eq!(app["Digest"], digest.as_str());
    let templated = berth_ok(
        &env,
        &["images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"],
    );
    assert_eq!(
        templated,
        format!(
            "app:latest {short}\nbusybox:latest {}\nlocalhost:5000/team/app:1 {short}\n",
            &berth_ok(&env, &["inspect", "--format", "{{.Id}}", "busybox"])[7..19],
            short = &id[..12]
        )
    );
    let filtered = berth_ok(&env, &["images", "busybox"]);
    assert_eq!(filtered.lines().count(), 2, "{filtered}");

    // History: newest first, metadata steps have size 0, layers their size.
    let history = berth_ok(&env, &["history", "--no-trunc", "--human=false", "app"]);
    // Columns are at least three spaces apart; cells have single spaces.
    let rows: Vec<Vec<&str>> = history
        .lines()
        .skip(1)
        .map(|l| {
            l.split("   ")
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .collect()
        })
        .collect();
    let manifest = env.manifest_of("app");
    let run_size = manifest["layers"][1]["size"].as_u64().unwrap().to_string();
    let base_size = manifest["layers"][0]["size"].as_u64().unwrap().to_string();
    let summary: Vec<(&str, &str, &str)> = rows.iter().map(|r| (r[0], r[2], r[3])).collect();
    assert_eq!(
        summary,
        vec![
            (config_digest.as_str(), "CMD [\"cat\", \"/built\"]", "0"),
            (
                "<missing>",
                "RUN echo built > /built # buildkit",
                run_size.as_str()
            ),
            ("<missing>", "ENV GREETING=hi", "0"),
            ("<missing>", rows[3][2], base_size.as_str()),
        ],
        "{history}"
    );
    assert!(rows[3][2].starts_with("berth import "), "{history}");
    let run_size: u64 = run_size.parse().unwrap();
    let json: Value = serde_json::from_str(&berth_ok(&env, &["history", "--json", "app"])).unwrap();
    assert_eq!(json[1]["Size"], run_size);
    assert_eq!(json[0]["Size"], 0);
}

#[test]
fn rmi_untags_then_removes_only_what_nothing_else_needs() {
    let env = BuildEnv::new();
    env.write(
        "Dockerfile",
        "FROM busybox\nRUN echo one > /one\nCMD [\"cat\", \"/one\"]\n",
    );
    env.build_ok(&["-t", "app"]);
    berth_ok(&env, &["tag", "app", "app:2"]);
    let app = image_blobs(&env, "app");
    let base = image_blobs(&env, "busybox");
    let app_config = env.manifest_of("app")["config"]["digest"]
        .as_str()
        .unwrap()
        .to_string();

    // An ID with two tags needs --force; a tag is just untagged.
    let stderr = berth_err(&env, &["rmi", &app_config[7..19]]);
    assert!(stderr.contains("has several tags"), "{stderr}");
    assert_eq!(berth_ok(&env, &["rmi", "app:2"]), "Untagged: app:2\n");
    assert!(blobs(&env).is_superset(&app));

    // A container uses the image: refused without --force.
    let container = "c".repeat(64);
    write_container_record(&env, &container, "app");
    let stderr = berth_err(&env, &["rmi", "app"]);
    assert!(
        stderr.contains("in use by container cccccccccccc"),
        "{stderr}"
    );
    assert!(blobs(&env).is_superset(&app));
    // With --force the tag goes, but the container keeps the image.
    assert_eq!(
        berth_ok(&env, &["rmi", "-f", "app"]),
        "Untagged: app:latest\n"
    );
    assert!(
        blobs(&env).is_superset(&app),
        "the container's image must stay"
    );
    fs::remove_dir_all(env.store.path().join("containers").join(&container)).unwrap();

    // Removing the base keeps the layer the build cache still names, and
    // removes the base's own manifest and config.
    env.build_ok(&["-t", "app"]);
    let out = berth_ok(&env, &["rmi", "busybox"]);
    assert!(
        out.starts_with("Untagged: busybox:latest\nDeleted: sha256:"),
        "{out}"
    );
    let left = blobs(&env);
    let base_layer = build_common::layers(&env.manifest_of("app"))[0].clone();
    assert!(left.contains(&base_layer), "the app's base layer must stay");
    let removed: BTreeSet<&String> = base.difference(&left).collect();
    assert_eq!(
        removed.len(),
        2,
        "manifest and config of busybox: {removed:?}"
    );
    assert_eq!(run(&env, "app:latest"), "one\n");
    let listed = berth_ok(&env, &["images", "-q"]);
    assert_eq!(listed.lines().count(), 1, "{listed}");
}

#[test]
fn prune_removes_exactly_the_unreferenced_and_keeps_tagged_images_whole() {
    let env = BuildEnv::new();
    // COPY makes the build keep a hash cache of its context.
    env.write("data", "data");
    let dockerfile = |v: &str| {
        format!("FROM busybox\nCOPY data /data\nRUN echo {v} > /v\nCMD [\"cat\", \"/v\"]\n")
    };
    env.write("Dockerfile", &dockerfile("v1"));
    env.build_ok(&["-t", "app"]);
    let v1_manifest = env.manifest_of("app");
    let v1_run_layer = build_common::layers(&v1_manifest)[2].clone();
    let v1_run_diff = diff_ids(&env, "app")[2].clone();
    let v1_digest = manifest_digest(&env, "app");
    env.write("Dockerfile", &dockerfile("v2"));
    env.build_ok(&["-t", "app"]);

    // A crash leftover: a blob and a snapshot nothing names.
    let orphan_hex = "0".repeat(64);
    fs::write(env.layout().join("blobs/sha256").join(&orphan_hex), b"x").unwrap();
    let orphan_snapshot = env.store.path().join("snapshots").join("1".repeat(64));
    fs::create_dir_all(orphan_snapshot.join("etc")).unwrap();
    fs::write(orphan_snapshot.join("etc/file"), b"12345").unwrap();
    // The hash cache of a context that is gone.
    let gone = tempfile::tempdir().unwrap();
    fs::write(
        gone.path().join("Dockerfile"),
        "FROM busybox\nCOPY Dockerfile /\n",
    )
    .unwrap();
    let out = Command::new(bins::berth())
        .args(["build", "--progress", "plain", "--root"])
        .arg(env.store.path())
        .arg(gone.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let contexts = || {
        fs::read_dir(env.store.path().join("context"))
            .unwrap()
            .count()
    };
    assert_eq!(contexts(), 2);
    drop(gone);

    // The partial download of an interrupted pull, kept for resuming.
    let ingest = env.layout().join(".ingest");
    fs::create_dir_all(&ingest).unwrap();
    fs::write(ingest.join(format!("{}.partial", "2".repeat(64))), b"part").unwrap();

    let before = blobs(&env);
    let out = berth_ok(&env, &["prune"]);
    assert!(out.contains("Total reclaimed space: "), "{out}");
    // What stays: the tagged images and what the cache records name.
    let mut expected = image_blobs(&env, "app");
    expected.extend(image_blobs(&env, "busybox"));
    expected.insert(v1_run_layer.clone());
    let cache_layers: BTreeSet<String> = before
        .iter()
        .filter(|b| {
            fs::read_dir(env.store.path().join("cache"))
                .unwrap()
                .any(|r| {
                    fs::read_to_string(r.unwrap().path())
                        .unwrap()
                        .contains(b.as_str())
                })
        })
        .cloned()
        .collect();
    expected.extend(cache_layers);
    assert_eq!(blobs(&env), expected);
    assert!(!before.is_subset(&blobs(&env)));
    assert!(!blobs(&env).contains(&v1_digest), "the old manifest goes");
    assert!(!orphan_snapshot.exists());
    assert!(
        snapshots(&env).contains(&v1_run_diff),
        "cache snapshots stay"
    );
    assert_eq!(contexts(), 1, "only the live context's hash cache stays");
    assert_eq!(fs::read_dir(&ingest).unwrap().count(), 1, "resumable");
    assert_eq!(run(&env, "app:latest"), "v2\n");

    // A second prune finds nothing.
    assert_eq!(berth_ok(&env, &["prune"]), "Total reclaimed space: 0B\n");

    // --all drops the build cache and what only it kept.
    let out = berth_ok(&env, &["prune", "--all"]);
    assert_ne!(out, "Total reclaimed space: 0B\n");
    let mut tagged = image_blobs(&env, "app");
    tagged.extend(image_blobs(&env, "busybox"));
    assert_eq!(blobs(&env), tagged);
    assert!(!snapshots(&env).contains(&v1_run_diff));
    assert_eq!(fs::read_dir(&ingest).unwrap().count(), 0);
    assert_eq!(contexts(), 0);
    assert_eq!(
        fs::read_dir(env.store.path().join("cache"))
            .unwrap()
            .count(),
        0
    );
    assert_eq!(run(&env, "app:latest"), "v2\n");
    let archive = env.store.path().join("after-prune.tar");
    berth_ok(&env, &["save", "-o", archive.to_str().unwrap(), "app"]);
}

/// Waits until the build with this pid has a RUN container staged.
fn wait_for_run_step(store: &Path, pid: u32) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let prefix = format!("{pid}-");
    while Instant::now() < deadline {
        let running = build_common::staging_entries(store)
            .iter()
            .any(|n| n.starts_with(&prefix) && n.ends_with("-run"));
        if running {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("the build never reached its RUN step");
}

#[test]
fn rmi_and_prune_during_a_running_build_never_remove_what_it_needs() {
    let env = BuildEnv::new();
    env.write(
        "Dockerfile",
        "FROM busybox\nRUN sleep 2 && echo built > /out\nCMD [\"cat\", \"/out\"]\n",
    );
    let build = env
        .command(&["-t", "app"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_run_step(env.store.path(), build.id());
    let spawn = |args: &[&str]| {
        Command::new(bins::berth())
            .arg("--root")
            .arg(env.store.path())
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let rmi = spawn(&["rmi", "busybox"]);
    let prune = spawn(&["prune", "--all"]);
    let built = build.wait_with_output().unwrap();
    assert!(
        built.status.success(),
        "the build failed: {}",
        String::from_utf8_lossy(&built.stderr)
    );
    for (what, child) in [("rmi", rmi), ("prune", prune)] {
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{what} failed: {stderr}");
        assert!(
            stderr.contains("waiting for running builds to finish"),
            "{what} should have waited: {stderr}"
        );
    }
    // The built image is complete and runs; the base's layer stayed for it.
    let needed = image_blobs(&env, "app");
    assert!(blobs(&env).is_superset(&needed));
    assert_eq!(run(&env, "app:latest"), "built\n");
    let stderr = berth_err(&env, &["inspect", "busybox"]);
    assert!(stderr.contains("no such image"), "{stderr}");
}

#[test]
fn berth_save_loads_and_runs_in_podman_in_both_formats() {
    let env = BuildEnv::new();
    env.write(
        "Dockerfile",
        "FROM busybox\nRUN echo from berth > /msg\nCMD [\"cat\", \"/msg\"]\n",
    );
    env.build_ok(&["-t", "app"]);
    let config = env.manifest_of("app")["config"]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    for (format, file) in [("docker-archive", "d.tar"), ("oci-archive", "o.tar")] {
        let podman = Podman::new();
        let archive = podman.dir().join(file);
        // Through stdout, as `docker save > file` is used.
        let out = Command::new(bins::berth())
            .arg("--root")
            .arg(env.store.path())
            .args(["save", "--format", format, "app"])
            .stdout(fs::File::create(&archive).unwrap())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let loaded = podman.ok(&["load", "-i", archive.to_str().unwrap()]);
        assert!(loaded.contains("app:latest"), "{format}: {loaded}");
        assert_eq!(podman.run("app:latest", &[]), "from berth\n", "{format}");
        let id = podman.ok(&["inspect", "--format", "{{.Id}}", "app:latest"]);
        assert_eq!(format!("sha256:{}", id.trim()), config, "{format}");
    }
}

#[test]
fn podman_save_loads_into_berth_with_the_same_digests() {
    let env = BuildEnv::new();
    let podman = Podman::new();
    let tar = podman.dir().join("rootfs.tar");
    let status = Command::new(require::program("tar", "tar"))
        .arg("-C")
        .arg(bins::fixtures().join("busybox/rootfs"))
        .arg("-cf")
        .arg(&tar)
        .arg(".")
        .status()
        .unwrap();
    assert!(status.success());
    podman.ok(&[
        "import",
        "--change",
        "CMD [\"echo\", \"from podman\"]",
        tar.to_str().unwrap(),
        "made-by-podman",
    ]);
    let id = podman.ok(&["inspect", "--format", "{{.Id}}", "made-by-podman"]);
    let id = format!("sha256:{}", id.trim());
    let layers: Value = serde_json::from_str(&podman.ok(&[
        "inspect",
        "--format",
        "{{json .RootFS.Layers}}",
        "made-by-podman",
    ]))
    .unwrap();

    for (format, file) in [("docker-archive", "d.tar"), ("oci-archive", "o.tar")] {
        let archive = podman.dir().join(file);
        podman.ok(&[
            "save",
            "--format",
            format,
            "-o",
            archive.to_str().unwrap(),
            "made-by-podman",
        ]);
        let out = berth_ok(&env, &["load", "-i", archive.to_str().unwrap()]);
        assert_eq!(
            out, "Loaded image: localhost/made-by-podman:latest\n",
            "{format}"
        );
        let inspect: Value =
            serde_json::from_str(&berth_ok(&env, &["inspect", "localhost/made-by-podman"]))
                .unwrap();
        assert_eq!(inspect[0]["Id"], id.as_str(), "{format}");
        assert_eq!(inspect[0]["RootFS"]["Layers"], layers, "{format}");
        if format == "oci-archive" {
            // The OCI layout's manifest is kept as podman wrote it.
            let index = archive_file(&archive, "index.json");
            let digest = index["manifests"][0]["digest"].as_str().unwrap();
            assert_eq!(inspect[0]["Digest"], digest, "{format}");
        }
        berth_ok(&env, &["tag", "localhost/made-by-podman", "loaded"]);
        assert_eq!(run(&env, "loaded:latest"), "from podman\n", "{format}");
        berth_ok(&env, &["rmi", "loaded", "localhost/made-by-podman"]);
    }
    // Garbage from a bad archive is refused, and nothing is left behind.
    let junk = podman.dir().join("junk.tar");
    fs::write(&junk, vec![0u8; 4096]).unwrap();
    let stderr = berth_err(&env, &["load", "-i", junk.to_str().unwrap()]);
    assert!(stderr.contains("neither an OCI image layout"), "{stderr}");
    assert!(build_common::staging_entries(env.store.path()).is_empty());
}

/// A JSON file inside a tar.
fn archive_file(archive: &Path, name: &str) -> Value {
    let out = Command::new("tar")
        .arg("-xOf")
        .arg(archive)
        .arg(name)
        .output()
        .unwrap();
    assert!(out.status.success());
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn save_and_load_round_trip_several_images_in_both_formats() {
    let env = BuildEnv::new();
    env.write("Dockerfile", "FROM busybox\nRUN echo a > /a\n");
    env.build_ok(&["-t", "one"]);
    env.write("Dockerfile", "FROM busybox\nRUN echo b > /b\n");
    env.build_ok(&["-t", "two"]);
    let ids = |env: &BuildEnv| -> Vec<(String, Vec<String>)> {
        ["one", "two", "busybox"]
            .iter()
            .map(|t| {
                let config = env.manifest_of(t)["config"]["digest"]
                    .as_str()
                    .unwrap()
                    .to_string();
                (config, diff_ids(env, t))
            })
            .collect()
    };
    let want = ids(&env);
    for format in ["docker-archive", "oci-archive"] {
        let archive = env.store.path().join(format!("{format}.tar"));
        berth_ok(
            &env,
            &[
                "save",
                "--format",
                format,
                "-o",
                archive.to_str().unwrap(),
                "one",
                "two",
                "busybox",
            ],
        );
        let fresh = BuildEnv::new();
        berth_ok(&fresh, &["rmi", "busybox"]);
        let out = berth_ok(&fresh, &["load", "-i", archive.to_str().unwrap()]);
        let mut names: Vec<&str> = out.lines().collect();
        names.sort();
        assert_eq!(
            names,
            vec![
                "Loaded image: busybox:latest",
                "Loaded image: one:latest",
                "Loaded image: two:latest"
            ],
            "{format}"
        );
        assert_eq!(ids(&fresh), want, "{format}");
        if format == "oci-archive" {
            assert_eq!(
                manifest_digest(&fresh, "one"),
                manifest_digest(&env, "one"),
                "an OCI archive keeps the manifests"
            );
        }
    }
}

/// Every tagged image has all its blobs, and the snapshots of the images
/// `deep` names, where present, are complete (as many entries as the
/// layer's tar).
fn assert_consistent(env: &BuildEnv, deep: &[&str]) {
    let present = blobs(env);
    let index: Value =
        serde_json::from_slice(&fs::read(env.layout().join("index.json")).unwrap()).unwrap();
    for entry in index["manifests"].as_array().unwrap() {
        let name = entry["annotations"]["org.opencontainers.image.ref.name"]
            .as_str()
            .unwrap();
        let needed = image_blobs(env, name);
        assert!(
            present.is_superset(&needed),
            "{name} lost blobs: {:?}",
            needed.difference(&present).collect::<Vec<_>>()
        );
    }
    for name in deep {
        let manifest = env.manifest_of(name);
        for (layer, diff_id) in build_common::layers(&manifest)
            .iter()
            .zip(diff_ids(env, name))
        {
            let snapshot = env.store.path().join("snapshots").join(&diff_id[7..]);
            if snapshot.exists() {
                let files = walk_count(&snapshot);
                let entries = env.layer_entries(layer).len();
                assert_eq!(files, entries, "snapshot {diff_id} of {name} is incomplete");
            }
        }
    }
}

/// Entries below a directory (0 once it is gone).
fn walk_count(dir: &Path) -> usize {
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    let mut count = 0;
    for entry in entries.flatten() {
        count += 1;
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            count += walk_count(&entry.path());
        }
    }
    count
}

/// How a round of the kill test picks its moment.
#[derive(Debug, Clone, Copy)]
enum KillAt {
    /// As soon as the snapshot starts to disappear.
    SnapshotRemoval,
    /// After this many milliseconds.
    Delay(u64),
}

#[test]
fn killing_rmi_or_prune_at_any_point_leaves_a_consistent_store() {
    let env = BuildEnv::new();
    env.write(
        "Dockerfile",
        "FROM busybox\nRUN echo kept > /kept\nCMD [\"cat\", \"/kept\"]\n",
    );
    env.build_ok(&["-t", "app"]);
    let rootfs = tempfile::tempdir().unwrap();
    // Imports a directory of 300 files whose content depends on `seed` (the
    // same seed gives the same layer and snapshot); returns the snapshot.
    let import = |seed: &str, name: &str| {
        for i in 0..300 {
            fs::write(rootfs.path().join(format!("f{i}")), format!("{seed}-{i}")).unwrap();
        }
        berth_ok(&env, &["import", rootfs.path().to_str().unwrap(), name]);
        let diff_id = diff_ids(&env, name)[0].clone();
        env.store.path().join("snapshots").join(&diff_id[7..])
    };
    let moments = [
        KillAt::SnapshotRemoval,
        KillAt::SnapshotRemoval,
        KillAt::SnapshotRemoval,
        KillAt::SnapshotRemoval,
        KillAt::Delay(0),
        KillAt::Delay(4),
        KillAt::Delay(8),
        KillAt::Delay(12),
    ];
    for (round, moment) in moments.into_iter().enumerate() {
        let seed = format!("a{round}");
        let snapshot = import(&seed, &format!("junk:{round}"));
        let full = walk_count(&snapshot);
        let args: Vec<String> = if round % 2 == 0 {
            vec!["rmi".into(), format!("junk:{round}"), "busybox".into()]
        } else {
            // The tag moves on, so prune has the old layer to remove.
            import(&format!("b{round}"), &format!("junk:{round}"));
            vec!["prune".into(), "--all".into()]
        };
        let mut child = Command::new(bins::berth())
            .arg("--root")
            .arg(env.store.path())
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        match moment {
            KillAt::Delay(ms) => std::thread::sleep(Duration::from_millis(ms)),
            KillAt::SnapshotRemoval => {
                while child.try_wait().unwrap().is_none() && walk_count(&snapshot) == full {}
            }
        }
        let _ = child.kill();
        child.wait().unwrap();
        // Opening the store clears what the killed process staged.
        berth_ok(&env, &["images"]);
        assert!(build_common::staging_entries(env.store.path()).is_empty());
        // The same layer again: a half-removed snapshot would be reused.
        let again = format!("again:{round}");
        import(&seed, &again);
        assert_consistent(&env, &["app", &again]);
        if round % 2 == 0 {
            // Put busybox back under its name for the next round.
            let _ = berth(&env, &["rmi", "busybox"]);
            let base = bins::fixtures().join("busybox/rootfs");
            berth_ok(
                &env,
                &["import", base.to_str().unwrap(), "busybox", "--cmd", "sh"],
            );
        }
    }
    assert_eq!(run(&env, "app:latest"), "kept\n");
    // A full prune after all of it leaves exactly the tagged images.
    berth_ok(&env, &["prune", "--all"]);
    let index: Value =
        serde_json::from_slice(&fs::read(env.layout().join("index.json")).unwrap()).unwrap();
    let mut tagged = BTreeSet::new();
    for entry in index["manifests"].as_array().unwrap() {
        let name = entry["annotations"]["org.opencontainers.image.ref.name"]
            .as_str()
            .unwrap();
        tagged.extend(image_blobs(&env, name));
    }
    assert_eq!(blobs(&env), tagged);
}

#[test]
fn a_container_from_berth_run_keeps_its_image_until_it_is_removed() {
    let env = BuildEnv::new();
    let base = image_blobs(&env, "busybox");
    let said = berth_ok(&env, &["run", "--name", "keeper", "busybox", "echo", "hi"]);
    assert_eq!(said, "hi\n");
    let stderr = berth_err(&env, &["rmi", "busybox"]);
    assert!(stderr.contains("is in use by container"), "{stderr}");
    assert_eq!(
        berth_ok(&env, &["rmi", "--force", "busybox"]),
        "Untagged: busybox:latest\n"
    );
    // Untagged, but the stopped container still needs it: image prune keeps it.
    berth_ok(&env, &["image", "prune", "-a", "-f"]);
    assert!(blobs(&env).is_superset(&base));
    // A system prune removes the stopped container, then what it kept.
    let out = berth_ok(&env, &["prune", "--all"]);
    assert!(out.starts_with("Deleted Containers:\n"), "{out}");
    assert!(!berth_ok(&env, &["ps", "-a"]).contains("keeper"));
    assert!(blobs(&env).is_empty(), "{:?}", blobs(&env));
    assert!(snapshots(&env).is_empty());
}

#[test]
fn a_closed_stdout_ends_listings_quietly_and_successfully() {
    let env = BuildEnv::new();
    // One exited container, so that `ps -a` has a row to write.
    berth_ok(&env, &["run", "--name", "listed", "busybox", "true"]);
    let listings: [&[&str]; 5] = [
        &["images"],
        &["images", "--format", "json"],
        &["ps", "-a", "--format", "json"],
        &["ps", "-a"],
        &["history", "busybox"],
    ];
    for args in listings {
        // Each output is there to be written when stdout is open.
        assert!(!berth_ok(&env, args).is_empty(), "{args:?}");
        // Repeated: the old failure (a panic on the first write) depended on
        // when the reader went away.
        for _ in 0..3 {
            let (status, stderr) = berth_into_closed_pipe(&env, args);
            assert!(
                !stderr.contains("panicked") && !stderr.contains("Broken pipe"),
                "berth {args:?}: {stderr}"
            );
            assert!(stderr.is_empty(), "berth {args:?} said: {stderr}");
            assert_eq!(status.code(), Some(0), "berth {args:?}: {stderr}");
        }
    }
}
