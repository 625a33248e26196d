//! End to end: `berth commit` (the round trip from a running container to a
//! new image, whiteouts, left-out bind mounts, a planted symlink committed as
//! a symlink), `berth import` from stdin and from a local URL with a real
//! creation time, and the build flags `-q`, `--iidfile` and `--label`, with
//! a fully cached rebuild giving the same image id.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod build_common;

use berth_e2e::{bins, http};
use build_common::BuildEnv;
use serde_json::Value;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// A store holding `busybox`, with containers run by berth-runtime.
struct Env {
    build: BuildEnv,
}

/// Removes a container when the test ends, also when it fails.
struct Container<'a> {
    env: &'a Env,
    name: String,
}

impl Drop for Container<'_> {
    fn drop(&mut self) {
        let _ = self.env.berth(&["rm", "-f", &self.name]);
    }
}

impl Env {
    fn new() -> Env {
        Env {
            build: BuildEnv::new(),
        }
    }

    fn store(&self) -> &Path {
        self.build.store.path()
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(bins::berth());
        cmd.arg("--root").arg(self.store()).args(args);
        cmd
    }

    fn berth(&self, args: &[&str]) -> Output {
        self.command(args).stdin(Stdio::null()).output().unwrap()
    }

    /// Runs berth and fails the test unless it succeeds; returns stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.berth(args);
        assert!(
            out.status.success(),
            "berth {args:?} failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Starts a detached container running `script`, removed at the end.
    fn run_detached(&self, name: &str, script: &str) -> Container<'_> {
        let runtime = bins::berth_runtime();
        let container = Container {
            env: self,
            name: name.to_string(),
        };
        self.ok(&[
            "run",
            "-d",
            "--runtime",
            runtime.to_str().unwrap(),
            "--name",
            name,
            "busybox",
            "sh",
            "-c",
            script,
        ]);
        container
    }

    /// Runs `script` in a new container of `image`; returns stdout.
    fn run(&self, image: &str, script: &str) -> String {
        let runtime = bins::berth_runtime();
        self.ok(&[
            "run",
            "--rm",
            "--runtime",
            runtime.to_str().unwrap(),
            image,
            "sh",
            "-c",
            script,
        ])
    }

    /// The blob file of a digest in the store.
    fn blob(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap();
        self.store().join("oci/blobs/sha256").join(hex)
    }

    /// The manifest of the image tagged `name` (a `repo:tag` as stored).
    fn manifest(&self, name: &str) -> Value {
        let index: Value =
            serde_json::from_slice(&fs::read(self.store().join("oci/index.json")).unwrap())
                .unwrap();
        let wanted = format!("docker.io/library/{name}");
        let entry = index["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| {
                m["annotations"]["org.opencontainers.image.ref.name"]
                    .as_str()
                    .is_some_and(|n| n == wanted || n == name)
            })
            .unwrap_or_else(|| panic!("no {name} in index.json: {index:#}"));
        let digest = entry["digest"].as_str().unwrap();
        serde_json::from_slice(&fs::read(self.blob(digest)).unwrap()).unwrap()
    }

    /// The config of the image tagged `name`.
    fn config(&self, name: &str) -> Value {
        let manifest = self.manifest(name);
        let digest = manifest["config"]["digest"].as_str().unwrap();
        serde_json::from_slice(&fs::read(self.blob(digest)).unwrap()).unwrap()
    }

    /// `tar -tv` of the top layer of the image tagged `name`.
    fn top_layer_listing(&self, name: &str) -> Vec<String> {
        let manifest = self.manifest(name);
        let layers = manifest["layers"].as_array().unwrap();
        let top = layers.last().unwrap()["digest"].as_str().unwrap();
        let out = Command::new("tar")
            .arg("-tvzf")
            .arg(self.blob(top))
            .output()
            .unwrap();
        assert!(out.status.success(), "tar failed on the committed layer");
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect()
    }
}

/// The names in a `tar -tv` listing, with symlink targets (`a -> b`).
fn names(listing: &[String]) -> Vec<String> {
    listing
        .iter()
        .map(|l| l.split_whitespace().skip(5).collect::<Vec<_>>().join(" "))
        .collect()
}

#[test]
fn commit_round_trip_keeps_changes_deletions_and_additions() {
    let env = Env::new();
    let script = "echo changed > /etc/motd && rm /bin/vi && mkdir -p /newdir/sub \
                  && echo added > /newdir/file && ln -s /etc/shadow /evil \
                  && ln -s / /up && touch /ready && sleep 1000";
    let _container = env.run_detached("commit-round-trip", script);
    let started = std::time::Instant::now();
    while !env
        .ok(&["exec", "commit-round-trip", "ls", "/"])
        .contains("ready")
    {
        assert!(
            started.elapsed().as_secs() < 20,
            "the container never got ready"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }

    let id = env.ok(&[
        "commit",
        "-m",
        "the round trip",
        "-a",
        "Jane <jane@example.com>",
        "-c",
        "ENV COMMITTED=yes",
        "-c",
        "CMD [\"cat\", \"/newdir/file\"]",
        "commit-round-trip",
        "committed:v1",
    ]);
    assert!(id.starts_with("sha256:") && id.trim().len() == 71, "{id}");
    // --pause (the default) resumes the container afterwards.
    env.ok(&["exec", "commit-round-trip", "true"]);

    let listing = env.top_layer_listing("committed:v1");
    let names = names(&listing);
    for want in [
        "bin/.wh.vi",
        "etc/motd",
        "newdir/",
        "newdir/sub/",
        "newdir/file",
        "evil -> /etc/shadow",
        "up -> /",
    ] {
        assert!(
            names.iter().any(|n| n == want),
            "{want} missing: {names:#?}"
        );
    }
    for left_out in [
        "etc/hosts",
        "etc/hostname",
        "etc/resolv.conf",
        "proc/",
        "dev/",
    ] {
        assert!(
            !names.iter().any(|n| n == left_out),
            "{left_out} committed: {names:#?}"
        );
    }

    let config = env.config("committed:v1");
    assert_eq!(config["author"], "Jane <jane@example.com>");
    let history = config["history"].as_array().unwrap();
    assert_eq!(history.last().unwrap()["comment"], "the round trip");
    let envs: Vec<&str> = config["config"]["Env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(envs.contains(&"COMMITTED=yes"), "{envs:?}");

    // The new image has all three kinds of change; its planted symlinks are
    // symlinks inside the new container, and unpacked without escaping.
    let out = env.run(
        "committed:v1",
        "cat /etc/motd /newdir/file; test -e /bin/vi || echo vi-gone; \
         test -d /newdir/sub && echo sub-dir; readlink /evil; echo $COMMITTED",
    );
    assert_eq!(
        out, "changed\nadded\nvi-gone\nsub-dir\n/etc/shadow\nyes\n",
        "the committed image"
    );
    let runtime = bins::berth_runtime();
    let out = env.ok(&[
        "run",
        "--rm",
        "--runtime",
        runtime.to_str().unwrap(),
        "committed:v1",
    ]);
    assert_eq!(out, "added\n", "CMD from --change");
}

#[test]
fn commit_refuses_changes_docker_refuses_and_unknown_containers() {
    let env = Env::new();
    let _container = env.run_detached("commit-refusals", "sleep 1000");
    let out = env.berth(&["commit", "-c", "RUN rm -rf /", "commit-refusals", "x:y"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("RUN is not a valid change command"), "{err}");
    let out = env.berth(&["commit", "no-such-container-commit", "x:y"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no-such-container-commit"), "{err}");
}

/// A tarball of the busybox fixture's root filesystem.
fn rootfs_tar() -> Vec<u8> {
    let rootfs = bins::fixtures().join("busybox/rootfs");
    let out = Command::new("tar")
        .arg("-C")
        .arg(&rootfs)
        .args(["-c", "."])
        .output()
        .unwrap();
    assert!(out.status.success(), "tar of the fixture failed");
    out.stdout
}

/// The seconds since the epoch of an RFC 3339 `created`, by its year only.
fn year(created: &str) -> u32 {
    created[..4].parse().unwrap()
}

#[test]
fn import_from_stdin_with_changes_and_a_real_date() {
    let env = Env::new();
    let mut child = env
        .command(&[
            "import",
            "-c",
            "CMD [\"echo\", \"imported\"]",
            "-m",
            "from stdin",
            "-",
            "imported:stdin",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&rootfs_tar())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "import -: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let id = String::from_utf8(out.stdout).unwrap();
    assert!(id.starts_with("sha256:"), "{id}");
    let config = env.config("imported:stdin");
    assert!(
        year(config["created"].as_str().unwrap()) >= 2025,
        "{config}"
    );
    assert_eq!(config["history"][0]["comment"], "from stdin");
    let runtime = bins::berth_runtime();
    let out = env.ok(&[
        "run",
        "--rm",
        "--runtime",
        runtime.to_str().unwrap(),
        "imported:stdin",
    ]);
    assert_eq!(out, "imported\n");
}

#[test]
fn import_from_a_local_url() {
    let env = Env::new();
    let tar = rootfs_tar();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let server = runtime.block_on(http::Server::start(move |_request| {
        let tar = tar.clone();
        async move { hyper::Response::new(http::full(tar)) }
    }));
    let url = format!("{}/rootfs.tar", server.url());
    let out = env.ok(&["import", &url, "imported:url"]);
    assert!(out.starts_with("sha256:"), "{out}");
    let config = env.config("imported:url");
    assert!(
        year(config["created"].as_str().unwrap()) >= 2025,
        "{config}"
    );
    assert_eq!(
        config["history"][0]["comment"],
        format!("Imported from {url}")
    );
    assert_eq!(env.run("imported:url", "echo from-url"), "from-url\n");
    drop(server);
}

#[test]
fn build_quiet_iidfile_label_and_a_cached_rebuild_with_the_same_id() {
    let env = Env::new();
    env.build.write(
        "Dockerfile",
        "FROM busybox\nRUN echo built > /built\nCOPY f /f\nENV STAGE=final\nLABEL from=dockerfile\n",
    );
    env.build.write("f", "context file\n");
    let iidfile = env.build.ctx.path().join("../commit-cp-iid");
    let build = |extra: &[&str]| {
        let out = env.build.build(extra);
        assert!(
            out.status.success(),
            "build {extra:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        (
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        )
    };
    let (first, stderr) = build(&[
        "-q",
        "--iidfile",
        iidfile.to_str().unwrap(),
        "--label",
        "team=db",
        "-t",
        "labelled:v1",
    ]);
    // -q: the image id alone on stdout, nothing on stderr.
    assert!(
        first.starts_with("sha256:") && first.len() == 72,
        "{first:?}"
    );
    assert_eq!(stderr, "", "-q printed status");
    let written = fs::read_to_string(&iidfile).unwrap();
    let _ = fs::remove_file(&iidfile);
    assert_eq!(written, first.trim(), "--iidfile");
    let inspect = env.ok(&["inspect", "labelled:v1"]);
    assert!(inspect.contains("\"team\": \"db\""), "{inspect}");
    assert!(inspect.contains("\"from\": \"dockerfile\""), "{inspect}");

    // Fully cached rebuilds, a second later: the same image id.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let (second, _) = build(&["-q", "--label", "team=db"]);
    assert_eq!(second, first, "a fully cached rebuild changed the image id");
    let (unlabelled, _) = build(&["-q"]);
    assert_ne!(unlabelled, first, "--label did not change the config");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let (again, _) = build(&["-q"]);
    assert_eq!(
        again, unlabelled,
        "a fully cached rebuild changed the image id"
    );
}

/// Waits until `path` exists in the running container `name`.
fn wait_for(env: &Env, name: &str, path: &str) {
    let started = std::time::Instant::now();
    while !env
        .berth(&["exec", name, "test", "-e", path])
        .status
        .success()
    {
        assert!(
            started.elapsed().as_secs() < 20,
            "{path} never appeared in {name}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

#[test]
fn cp_out_and_in_through_planted_symlinks_stays_in_the_container() {
    let env = Env::new();
    let host = tempfile::tempdir().unwrap();
    // The host has a file where the container's symlinks point.
    let marker = host.path().join("host-secret");
    fs::write(&marker, "host\n").unwrap();
    let script = format!(
        "mkdir -p /data/sub && echo inside > /data/sub/f && ln -s / /evil \
         && ln -s {marker} /data/leak && ln -s /tmp /drop && echo container > /etc/id \
         && touch /ready && sleep 1000",
        marker = marker.display(),
    );
    let _container = env.run_detached("cp-hostile", &script);
    wait_for(&env, "cp-hostile", "/ready");

    // Out: `/evil/etc/id` is the container's own file, not the host's.
    let out = host.path().join("id");
    env.ok(&["cp", "cp-hostile:/evil/etc/id", out.to_str().unwrap()]);
    assert_eq!(fs::read_to_string(&out).unwrap(), "container\n");
    // A directory comes out whole, its symlinks as symlinks, never read through.
    let tree = host.path().join("tree");
    env.ok(&["cp", "cp-hostile:/data", tree.to_str().unwrap()]);
    assert_eq!(fs::read_to_string(tree.join("sub/f")).unwrap(), "inside\n");
    let leak = fs::symlink_metadata(tree.join("leak")).unwrap();
    assert!(leak.file_type().is_symlink(), "leak was copied as a file");
    // -L follows a symlink, inside the container: its target is missing there.
    let out = env.berth(&[
        "cp",
        "-L",
        "cp-hostile:/data/leak",
        host.path().join("l").to_str().unwrap(),
    ]);
    assert!(
        !out.status.success(),
        "-L read through a symlink to the host"
    );
    assert_eq!(fs::read_to_string(&marker).unwrap(), "host\n");

    // In: a planted symlink to a directory the host has too (/tmp) leads
    // to the container's own, and one to a host file is replaced, not
    // written through.
    let name = format!("berth-cp-payload-{}", std::process::id());
    let src = host.path().join(&name);
    fs::write(&src, "payload\n").unwrap();
    env.ok(&["cp", src.to_str().unwrap(), "cp-hostile:/drop/"]);
    assert!(
        !Path::new("/tmp").join(&name).exists(),
        "a copy in through /drop -> /tmp reached the host's /tmp"
    );
    let inside = env.ok(&["exec", "cp-hostile", "cat", &format!("/tmp/{name}")]);
    assert_eq!(inside, "payload\n");
    env.ok(&["cp", src.to_str().unwrap(), "cp-hostile:/data/leak"]);
    assert_eq!(
        fs::read_to_string(&marker).unwrap(),
        "host\n",
        "a copy in wrote through a planted symlink"
    );
    let replaced = env.ok(&[
        "exec",
        "cp-hostile",
        "sh",
        "-c",
        "test -L /data/leak && echo link || cat /data/leak",
    ]);
    assert_eq!(replaced, "payload\n");
    // A destination that ends in / must be a directory, as docker says.
    let out = env.berth(&["cp", src.to_str().unwrap(), "cp-hostile:/missing-dir/"]);
    assert!(!out.status.success(), "copied into a missing directory");
}

#[test]
fn cp_tar_streams_both_ways_and_a_stopped_container() {
    let env = Env::new();
    let container = env.run_detached(
        "cp-streams",
        "mkdir /box && echo one > /box/a && touch /ready && sleep 1000",
    );
    wait_for(&env, "cp-streams", "/ready");
    // Out to stdout: a tar stream named from the last path element.
    let out = env.berth(&["cp", "cp-streams:/box", "-"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut names: Vec<String> = tar::Archive::new(&out.stdout[..])
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["box/", "box/a"]);
    // In from stdin.
    let mut tar = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(4);
    header.set_mode(0o644);
    header.set_cksum();
    tar.append_data(&mut header, "streamed", &b"two\n"[..])
        .unwrap();
    let bytes = tar.into_inner().unwrap();
    let mut child = env
        .command(&["cp", "-", "cp-streams:/box"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&bytes).unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(
        env.ok(&["exec", "cp-streams", "cat", "/box/streamed"]),
        "two\n"
    );

    // A stopped container: its files are copied out of and into its layers.
    env.ok(&["stop", "-t", "1", "cp-streams"]);
    let host = tempfile::tempdir().unwrap();
    let out = host.path().join("a");
    env.ok(&["cp", "cp-streams:/box/streamed", out.to_str().unwrap()]);
    assert_eq!(fs::read_to_string(&out).unwrap(), "two\n");
    fs::write(host.path().join("later"), "three\n").unwrap();
    env.ok(&[
        "cp",
        host.path().join("later").to_str().unwrap(),
        "cp-streams:/box/",
    ]);
    let out = env.berth(&["cp", "cp-streams:/box/later", "-"]);
    assert!(out.status.success());
    let mut archive = tar::Archive::new(&out.stdout[..]);
    let mut entry = archive.entries().unwrap().next().unwrap().unwrap();
    let mut text = String::new();
    std::io::Read::read_to_string(&mut entry, &mut text).unwrap();
    assert_eq!(text, "three\n");
    let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap();
    let store = env.store().to_string_lossy().into_owned();
    assert!(
        !mounts
            .lines()
            .any(|l| l.contains(&store) && l.contains("cp-view")),
        "a copy view stayed mounted"
    );
    drop(container);
}

#[test]
fn build_pull_fetches_the_base_again_even_when_the_store_has_it() {
    let registry = berth_e2e::registry::TestRegistry::start();
    let base = format!("{}/e2e/pull-base:1", registry.host());
    let publisher = Env::new();
    publisher.ok(&["tag", "busybox", &base]);
    publisher.ok(&["push", &base]);

    let builder = Env::new();
    builder
        .build
        .write("Dockerfile", &format!("FROM {base}\nENV STAGE=app\n"));
    let build = |extra: &[&str]| {
        let out = builder.build.build(extra);
        assert!(
            out.status.success(),
            "build {extra:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let first = build(&["-q"]);

    // The registry's base moves on.
    publisher
        .build
        .write("Dockerfile", "FROM busybox\nRUN echo v2 > /v2\n");
    let out = publisher.build.build(&["-t", &base, "--push"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    assert_eq!(
        build(&["-q"]),
        first,
        "without --pull the stored base is used"
    );
    let pulled = build(&["-q", "--pull"]);
    assert_ne!(pulled, first, "--pull kept the stored base");
    let runtime = bins::berth_runtime();
    let out = builder.ok(&[
        "run",
        "--rm",
        "--runtime",
        runtime.to_str().unwrap(),
        &base,
        "cat",
        "/v2",
    ]);
    assert_eq!(out, "v2\n", "the store's base is the registry's new one");
}

#[test]
fn build_add_host_reaches_run_steps_hosts_file() {
    let env = Env::new();
    env.build.write(
        "Dockerfile",
        "FROM busybox\nRUN grep -w commit-cp-db /etc/hosts > /found\n",
    );
    let out = env
        .build
        .build(&["--add-host", "commit-cp-db:10.123.45.67", "-t", "addhost:1"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let found = env.run(
        "addhost:1",
        "cat /found; test -e /etc/hosts && echo hosts-kept",
    );
    assert!(found.starts_with("10.123.45.67\tcommit-cp-db\n"), "{found}");
    // The bound file never becomes part of the layer.
    let listing = names(&env.top_layer_listing("addhost:1"));
    assert!(
        !listing.iter().any(|n| n.starts_with("etc/")),
        "{listing:?}"
    );
}
