//! End to end: `--format` on `images` and `ps`, `inspect` of containers and
//! images (field sets compared with podman's on the same image), `image
//! prune`, `system df` and `system prune`, on the busybox fixture.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod build_common;

use berth_e2e::bins;
use berth_e2e::podman::Podman;
use build_common::BuildEnv;
use serde_json::Value;
use std::fs;
use std::process::{Command, Output, Stdio};

/// A store holding `busybox`; removes its containers when dropped, so a
/// failing test leaves no running process behind.
struct Env {
    build: BuildEnv,
}

impl Env {
    fn new() -> Env {
        Env {
            build: BuildEnv::new(),
        }
    }

    fn berth(&self, args: &[&str]) -> Output {
        Command::new(bins::berth())
            .arg("--root")
            .arg(self.build.store.path())
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
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

    /// Runs berth and fails the test unless it fails; returns stderr.
    fn err(&self, args: &[&str]) -> String {
        let out = self.berth(args);
        assert!(!out.status.success(), "berth {args:?} succeeded");
        String::from_utf8(out.stderr).unwrap()
    }

    fn blob_count(&self) -> usize {
        fs::read_dir(self.build.layout().join("blobs/sha256"))
            .map(|dir| dir.count())
            .unwrap_or(0)
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let ids = self.berth(&["ps", "-aq"]);
        for id in String::from_utf8_lossy(&ids.stdout).split_whitespace() {
            let _ = self.berth(&["rm", "-f", id]);
        }
    }
}

#[test]
fn images_format_prints_tabs_and_one_table_header() {
    let env = Env::new();
    env.ok(&["tag", "busybox", "second:v1"]);
    // The shell passes backslash-t; docker prints a tab.
    let lines = env.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}\\t{{.Size}}"]);
    let rows: Vec<&str> = lines.lines().collect();
    assert_eq!(rows.len(), 2, "{lines}");
    for row in &rows {
        let (name, size) = row
            .split_once('\t')
            .unwrap_or_else(|| panic!("no tab: {row:?}"));
        assert!(name == "busybox:latest" || name == "second:v1", "{row}");
        assert!(size.ends_with('B'), "{row}");
    }
    // `table`: one header, aligned, and no "table" on any row.
    let table = env.ok(&["images", "--format", "table {{.Repository}}\\t{{.Tag}}"]);
    let rows: Vec<&str> = table.lines().collect();
    assert_eq!(
        rows,
        ["REPOSITORY   TAG", "busybox      latest", "second       v1"]
    );
    // json: one object per line, with docker's keys.
    for line in env.ok(&["images", "--format", "json"]).lines() {
        let row: Value = serde_json::from_str(line).unwrap();
        for key in [
            "Repository",
            "Tag",
            "ID",
            "CreatedSince",
            "CreatedAt",
            "Size",
            "Digest",
        ] {
            assert!(row.get(key).is_some(), "{key} missing from {line}");
        }
    }
    // A field images do not have fails with Go's words.
    let stderr = env.err(&["images", "--format", "{{.Nope}}"]);
    assert!(
        stderr.contains("template: :1:2: executing \"\" at <.Nope>: can't evaluate field Nope"),
        "{stderr}"
    );
    let stderr = env.err(&["images", "--format", "{{.ID"]);
    assert!(stderr.contains("template parsing error"), "{stderr}");
}

#[test]
fn ps_and_inspect_formats_read_container_state() {
    let env = Env::new();
    let done = env.berth(&["run", "--name", "fmt-done", "busybox", "sh", "-c", "exit 3"]);
    assert_eq!(done.status.code(), Some(3));
    let id = env.ok(&["run", "-d", "--name", "fmt-up", "busybox", "sleep", "60"]);
    let id = id.trim();
    assert_eq!(
        env.ok(&[
            "inspect",
            "-f",
            "{{.State.Status}} {{.State.ExitCode}} {{.Name}}",
            "fmt-done"
        ]),
        "exited 3 /fmt-done\n"
    );
    assert_eq!(
        env.ok(&[
            "inspect",
            "-f",
            "{{.State.Status}} {{.State.Running}} {{.Id}}",
            "fmt-up"
        ]),
        format!("running true {id}\n")
    );
    // --type image does not find a container; a missing key is <no value>.
    env.err(&["inspect", "--type", "image", "fmt-up"]);
    assert_eq!(
        env.ok(&["inspect", "-f", "{{.Nope}}", "fmt-up"]),
        "<no value>\n"
    );
    assert_eq!(
        env.ok(&["inspect", "-f", "{{json .Config.Cmd}}", "fmt-up"]),
        "[\"sleep\",\"60\"]\n"
    );
    let table = env.ok(&["ps", "-a", "--format", "table {{.Names}}\\t{{.State}}"]);
    // Both were created in the same second: their order is not the test's.
    let mut rows: Vec<&str> = table.lines().skip(1).collect();
    rows.sort();
    assert!(table.starts_with("NAMES      STATE\n"), "{table}");
    assert_eq!(rows, ["fmt-done   exited", "fmt-up     running"], "{table}");
    let plain = env.ok(&["ps", "--format", "{{.ID}}\\t{{upper .Names}}"]);
    assert_eq!(plain, format!("{}\tFMT-UP\n", &id[..12]));
    env.ok(&["rm", "-f", "fmt-up"]);
}

/// The JSON kind of a value: podman and docker must agree on it; null goes
/// with anything (an empty list is null in one, `[]` in the other).
fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Asserts berth has every key docker's set names (`A.B` for nested keys),
/// and that where podman has the key too, the two have the same kind.
fn compare_fields(
    what: &str,
    required: &[&str],
    berth: &Value,
    podman: &Value,
    podman_differs: &[&str],
) {
    let at = |doc: &Value, path: &str| -> Option<Value> {
        path.split('.')
            .try_fold(doc.clone(), |v, key| v.get(key).cloned())
    };
    let mut shared = 0;
    for path in required {
        let ours = at(berth, path).unwrap_or_else(|| panic!("{what}: berth lacks {path}"));
        if let Some(theirs) = at(podman, path) {
            shared += 1;
            let (a, b) = (kind(&ours), kind(&theirs));
            if a != b && a != "null" && b != "null" && !podman_differs.contains(path) {
                panic!("{what}: {path} is {a} in berth, {b} in podman");
            }
        }
    }
    // Most of docker's set is podman's too: the comparison means something.
    assert!(
        shared * 10 >= required.len() * 8,
        "{what}: only {shared} shared keys"
    );
}

#[test]
fn inspect_and_ps_field_sets_match_podmans() {
    let env = Env::new();
    let podman = Podman::new();
    let archive = podman.dir().join("busybox.tar");
    env.ok(&["save", "-o", archive.to_str().unwrap(), "busybox"]);
    podman.ok(&["load", "-i", archive.to_str().unwrap()]);
    env.ok(&["run", "--name", "fmt-fields", "busybox", "true"]);
    podman.ok(&["create", "--name", "fmt-fields", "busybox", "true"]);

    let ours: Value = serde_json::from_str(&env.ok(&["inspect", "fmt-fields"])).unwrap();
    let theirs: Value = serde_json::from_str(&podman.ok(&["inspect", "fmt-fields"])).unwrap();
    let container = [
        "Id",
        "Created",
        "Path",
        "Args",
        "State",
        "Image",
        "Name",
        "RestartCount",
        "Driver",
        "Platform",
        "MountLabel",
        "HostConfig",
        "Mounts",
        "Config",
        "NetworkSettings",
        "State.Status",
        "State.Running",
        "State.Paused",
        "State.Restarting",
        "State.OOMKilled",
        "State.Dead",
        "State.Pid",
        "State.ExitCode",
        "State.Error",
        "State.StartedAt",
        "State.FinishedAt",
        "Config.Hostname",
        "Config.User",
        "Config.Env",
        "Config.Cmd",
        "Config.Image",
        "Config.WorkingDir",
        "Config.Entrypoint",
        "Config.Labels",
        "NetworkSettings.Ports",
        "NetworkSettings.Networks",
        "HostConfig.RestartPolicy",
        "HostConfig.Memory",
        "HostConfig.NanoCpus",
        "HostConfig.AutoRemove",
    ];
    // podman 4.3 keeps Entrypoint as a string; docker (and berth) a list.
    compare_fields(
        "container",
        &container,
        &ours[0],
        &theirs[0],
        &["Config.Entrypoint"],
    );
    assert_eq!(ours[0]["Name"], "/fmt-fields");

    let ours: Value = serde_json::from_str(&env.ok(&["image", "inspect", "busybox"])).unwrap();
    let theirs: Value = serde_json::from_str(&podman.ok(&["image", "inspect", "busybox"])).unwrap();
    let image = [
        "Id",
        "RepoTags",
        "RepoDigests",
        "Parent",
        "Comment",
        "Created",
        "Author",
        "Config",
        "Architecture",
        "Os",
        "Size",
        "RootFS",
        "RootFS.Type",
        "RootFS.Layers",
        "Metadata",
    ];
    compare_fields("image", &image, &ours[0], &theirs[0], &[]);
    // The same image: the same layers, under docker's key names.
    assert_eq!(ours[0]["RootFS"]["Layers"], theirs[0]["RootFS"]["Layers"]);

    // ps: podman's JSON is its own (Names is a list), but docker's template
    // fields are both tools' vocabulary.
    let line = env.ok(&["ps", "-a", "--format", "json"]);
    let row: Value = serde_json::from_str(line.trim()).unwrap();
    let ps = [
        "ID",
        "Image",
        "Command",
        "CreatedAt",
        "RunningFor",
        "Status",
        "Names",
        "State",
        "Ports",
        "Labels",
        "Mounts",
        "Networks",
        "LocalVolumes",
        "Size",
    ];
    for key in ps {
        assert!(row.get(key).is_some(), "ps json lacks {key}: {line}");
    }
    // podman 4.3 has no LocalVolumes, and Size only with --size.
    let both = &ps[..12];
    let template: String = both.iter().map(|k| format!("{{{{.{k}}}}}|")).collect();
    let ours = env.ok(&["ps", "-a", "--format", &template]);
    let theirs = podman.ok(&["ps", "-a", "--format", &template]);
    assert_eq!(ours.matches('|').count(), both.len(), "{ours}");
    assert_eq!(theirs.matches('|').count(), both.len(), "{theirs}");
    assert!(
        ours.starts_with(&format!(
            "{}|busybox|\"true\"|",
            &row["ID"].as_str().unwrap()
        )),
        "{ours}"
    );
    podman.ok(&["rm", "fmt-fields"]);
}

/// The figure after "Total reclaimed space: ".
fn reclaimed(out: &str) -> &str {
    out.lines()
        .find_map(|l| l.strip_prefix("Total reclaimed space: "))
        .unwrap_or_else(|| panic!("no total in {out}"))
}

/// `system df --format json` as a map from TYPE to its row.
fn df(env: &Env) -> std::collections::BTreeMap<String, Value> {
    env.ok(&["system", "df", "--format", "json"])
        .lines()
        .map(|l| {
            let row: Value = serde_json::from_str(l).unwrap();
            (row["Type"].as_str().unwrap().to_string(), row)
        })
        .collect()
}

#[test]
fn image_prune_frees_space_that_system_df_counted() {
    let env = Env::new();
    // A second image with a layer of its own.
    let rootfs = tempfile::tempdir().unwrap();
    fs::write(rootfs.path().join("only-here"), vec![7u8; 100_000]).unwrap();
    env.ok(&["import", rootfs.path().to_str().unwrap(), "extra"]);
    env.ok(&["run", "--name", "fmt-user", "busybox", "true"]);

    let usage = df(&env);
    assert_eq!(usage["Images"]["TotalCount"], "2");
    assert_eq!(usage["Images"]["Active"], "1");
    assert_eq!(usage["Containers"]["TotalCount"], "1");
    assert_eq!(usage["Containers"]["Active"], "0");
    assert_eq!(usage["Local Volumes"]["TotalCount"], "0");
    let extra_bytes = usage["Images"]["Reclaimable"].as_str().unwrap().to_string();
    assert!(extra_bytes.ends_with("%)"), "{extra_bytes}");

    // Nothing is dangling: the plain prune removes nothing.
    assert_eq!(
        env.ok(&["image", "prune", "-f"]),
        "Total reclaimed space: 0B\n"
    );
    // -a: the image no container uses goes, blobs and all; what it frees is
    // what df called reclaimable.
    let before = env.blob_count();
    let out = env.ok(&["image", "prune", "-a", "-f"]);
    assert!(
        out.starts_with("Deleted Images:\nuntagged: extra:latest\ndeleted: sha256:"),
        "{out}"
    );
    assert!(
        extra_bytes.starts_with(&format!("{} (", reclaimed(&out))),
        "df said {extra_bytes}, prune freed: {out}"
    );
    assert_eq!(
        env.blob_count(),
        before - 3,
        "manifest, config and layer go"
    );
    assert!(env.ok(&["images", "-q"]).lines().count() == 1);
    let usage = df(&env);
    assert_eq!(usage["Images"]["TotalCount"], "1");
    assert!(
        usage["Images"]["Reclaimable"]
            .as_str()
            .unwrap()
            .starts_with("0B")
    );

    // Once its container is gone, busybox goes too.
    env.ok(&["rm", "fmt-user"]);
    let out = env.ok(&["image", "prune", "-a", "-f"]);
    assert!(out.contains("untagged: busybox:latest\n"), "{out}");
    assert_eq!(env.blob_count(), 0);
    let usage = df(&env);
    assert_eq!(usage["Images"]["Size"], "0B");
}

#[test]
fn system_prune_removes_stopped_containers_and_keeps_running_ones() {
    let env = Env::new();
    let stopped = env.ok(&["run", "-d", "--name", "fmt-stopped", "busybox", "true"]);
    env.ok(&[
        "run",
        "-d",
        "--name",
        "fmt-running",
        "busybox",
        "sleep",
        "60",
    ]);
    // Until the short-lived one has exited (bounded: 20 s).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while env.ok(&["inspect", "-f", "{{.State.Status}}", "fmt-stopped"]) != "exited\n" {
        assert!(
            std::time::Instant::now() < deadline,
            "fmt-stopped never exited"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    // Without -f and with no answer on stdin, nothing is removed.
    env.ok(&["system", "prune"]);
    assert!(env.ok(&["ps", "-a"]).contains("fmt-stopped"));

    let out = env.ok(&["system", "prune", "-f"]);
    assert!(
        out.starts_with(&format!("Deleted Containers:\n{}\n\n", stopped.trim())),
        "{out}"
    );
    let all = env.ok(&["ps", "-a", "--format", "{{.Names}}"]);
    assert_eq!(all, "fmt-running\n");
    // busybox is in use by the running container: it stays.
    assert_eq!(
        env.ok(&["images", "--format", "{{.Repository}}"]),
        "busybox\n"
    );
    env.ok(&["rm", "-f", "fmt-running"]);
}
