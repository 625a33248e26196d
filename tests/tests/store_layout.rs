//! The local store's OCI layout (`<root>/oci`) as the `berth` commands leave
//! it on disk: `index.json` fields berth does not know survive its edits, and
//! every blob and `index.json` reaches its place by a rename of a file fsynced
//! before it, with the directory fsynced after it (issue #13: one layout
//! implementation, "fsync before every rename", "`berth tag` after a pull keeps
//! unknown `index.json` fields").

// Helpers outside #[test] functions fail loudly too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use berth_e2e::hostile::{self, Layer, Raw};
use berth_e2e::registry::TestRegistry;
use berth_e2e::{bins, require, strace};
use serde_json::{Value, json};
use std::fs;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use tempfile::TempDir;

const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// A store root with a private Docker config, so no host credential or
/// setting reaches the commands.
struct Store {
    dir: TempDir,
    /// The root, with symlinks resolved: strace shows descriptors' paths
    /// resolved, and the trace checks compare them with paths under it.
    root: PathBuf,
}

impl Store {
    fn new() -> Store {
        let dir = tempfile::Builder::new()
            .prefix("berth-layout-")
            .tempdir()
            .unwrap();
        let base = fs::canonicalize(dir.path()).unwrap();
        for sub in ["docker", "home", "run", "context"] {
            fs::create_dir_all(base.join(sub)).unwrap();
        }
        Store {
            root: base.join("root"),
            dir,
        }
    }

    fn layout(&self) -> PathBuf {
        self.root.join("oci")
    }

    fn index_path(&self) -> PathBuf {
        self.layout().join("index.json")
    }

    fn index(&self) -> Value {
        serde_json::from_slice(&fs::read(self.index_path()).unwrap()).unwrap()
    }

    fn write_index(&self, index: &Value) {
        fs::write(self.index_path(), serde_json::to_vec_pretty(index).unwrap()).unwrap();
    }

    fn context(&self) -> PathBuf {
        fs::canonicalize(self.dir.path()).unwrap().join("context")
    }

    /// Sets up `command` to run `berth --root ROOT ARGS…` in the store's
    /// private environment.
    fn prepare<'c>(&self, command: &'c mut Command, args: &[&str]) -> &'c mut Command {
        let base = fs::canonicalize(self.dir.path()).unwrap();
        command
            .arg("--root")
            .arg(&self.root)
            .args(args)
            .current_dir(&base)
            .env("DOCKER_CONFIG", base.join("docker"))
            .env("HOME", base.join("home"))
            .env("XDG_RUNTIME_DIR", base.join("run"))
            .env_remove("REGISTRY_AUTH_FILE")
            .env_remove("BERTH_INSECURE_REGISTRIES")
            .env_remove("SOURCE_DATE_EPOCH")
            .stdin(Stdio::null())
    }

    fn run(&self, args: &[&str]) -> Output {
        self.prepare(&mut Command::new(bins::berth()), args)
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "berth {args:?} failed ({}):\nstdout: {}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs `berth ARGS…` under strace; returns the parsed trace's layout
    /// report.
    fn traced(&self, args: &[&str]) -> strace::LayoutReport {
        let trace = self.dir.path().join("trace");
        let out = self
            .prepare(&mut strace::command(&trace, &bins::berth()), args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "strace berth {args:?} failed ({}):\nstdout: {}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let calls = strace::parse(&fs::read_to_string(&trace).unwrap());
        assert!(
            !calls.is_empty(),
            "strace recorded no calls of berth {args:?}"
        );
        strace::check_layout(
            &calls,
            &fs::canonicalize(self.dir.path()).unwrap(),
            &self.layout().join("blobs"),
            &self.index_path(),
        )
    }
}

/// Pushes a one-layer image of one small file to `reference` with skopeo.
fn push_small_image(reference: &str) {
    let layer = hostile::tar_layer(&[
        Raw::Dir("etc/".into()),
        Raw::File("etc/hello".into(), b"hello from the registry\n".to_vec()),
    ]);
    hostile::push(&[Layer::honest(layer)], reference);
}

/// The `index.json` entry named `name`.
fn entry<'i>(index: &'i Value, name: &str) -> Option<&'i Value> {
    index["manifests"]
        .as_array()?
        .iter()
        .find(|m| m["annotations"][REF_NAME] == name)
}

/// Adds fields berth does not interpret to `index.json` and to its entry
/// named `name`: what another tool (skopeo, containerd, a newer berth) may
/// have written there. Returns each as (JSON pointer, value).
fn add_unknown_fields(index: &mut Value, name: &str) -> Vec<(String, Value)> {
    let position = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .position(|m| m["annotations"][REF_NAME] == name)
        .unwrap_or_else(|| panic!("{name} is not in index.json: {index}"));
    let added = vec![
        (
            "/org.example.unknown".to_owned(),
            json!({"kept": true, "list": [1, 2]}),
        ),
        (
            "/annotations".to_owned(),
            json!({"org.example.index-note": "kept"}),
        ),
        (
            format!("/manifests/{position}/urls"),
            json!(["https://mirror.example/blobs/the-manifest"]),
        ),
        (
            format!("/manifests/{position}/artifactType"),
            json!("application/vnd.example.artifact+json"),
        ),
        (
            format!("/manifests/{position}/org.example.unknown"),
            json!({"nested": ["kept"]}),
        ),
        (
            format!("/manifests/{position}/annotations/org.example.entry-note"),
            json!("kept"),
        ),
    ];
    for (pointer, value) in &added {
        let (parent, key) = pointer.rsplit_once('/').unwrap();
        let parent = if parent.is_empty() {
            &mut *index
        } else {
            index.pointer_mut(parent).unwrap()
        };
        parent[key] = value.clone();
    }
    added
}

/// The added fields of the entry named `name` (found again by name, since
/// an edit may reorder the entries) that are no longer there, as sentences.
fn lost_fields(index: &Value, name: &str, added: &[(String, Value)], after: &str) -> Vec<String> {
    let Some(entry) = entry(index, name) else {
        return vec![format!("after {after}, {name} is no longer in index.json")];
    };
    added
        .iter()
        .filter_map(|(pointer, value)| {
            let (found, what) = match pointer.strip_prefix("/manifests/") {
                Some(rest) => {
                    let (_, field) = rest.split_once('/').unwrap();
                    (
                        entry.pointer(&format!("/{field}")),
                        format!("{field} of the entry {name}"),
                    )
                }
                None => (index.pointer(pointer), format!("index.json's {pointer}")),
            };
            (found != Some(value)).then(|| {
                format!(
                    "after {after}, {what} is {} (it was {value})",
                    found.map_or("missing".to_owned(), Value::to_string)
                )
            })
        })
        .collect()
}

/// The check itself: an index that kept every added field passes, however
/// its entries are ordered and whatever entries were added; one that lost a
/// field is reported.
#[test]
fn the_lost_fields_check_passes_only_when_every_field_is_kept() {
    let mut index = json!({
        "schemaVersion": 2,
        "manifests": [
            {"mediaType": "m", "digest": "sha256:aa", "size": 1, "annotations": {REF_NAME: "other:1"}},
            {"mediaType": "m", "digest": "sha256:bb", "size": 2, "annotations": {REF_NAME: "app:1"}},
        ],
    });
    let added = add_unknown_fields(&mut index, "app:1");
    assert_eq!(
        lost_fields(&index, "app:1", &added, "nothing"),
        Vec::<String>::new()
    );
    let mut reordered = index.clone();
    let manifests = reordered["manifests"].as_array_mut().unwrap();
    manifests.reverse();
    manifests.push(json!({"mediaType": "m", "digest": "sha256:bb", "size": 2, "annotations": {REF_NAME: "copy:1"}}));
    assert_eq!(
        lost_fields(&reordered, "app:1", &added, "a tag"),
        Vec::<String>::new()
    );

    let mut dropped = reordered.clone();
    dropped["manifests"][0]
        .as_object_mut()
        .unwrap()
        .remove("artifactType");
    dropped.as_object_mut().unwrap().remove("annotations");
    let lost = lost_fields(&dropped, "app:1", &added, "a bad tag");
    assert_eq!(lost.len(), 2, "{lost:?}");
    assert!(
        lost[0].contains("index.json's /annotations is missing"),
        "{lost:?}"
    );
    assert!(
        lost[1].contains("artifactType of the entry app:1 is missing"),
        "{lost:?}"
    );
    let lost = lost_fields(&json!({"manifests": []}), "app:1", &added, "a bad rmi");
    assert_eq!(lost, ["after a bad rmi, app:1 is no longer in index.json"]);
}

/// Expected to FAIL until the store has one OCI layout implementation that
/// keeps unknown fields (issue #13): `berth tag` and `berth rmi` rewrite
/// `index.json` through berth-builder's `Index`, whose `Descriptor` has no
/// `urls`, `artifactType` or room for unknown keys, and which has no room for
/// unknown top-level keys or annotations either.
#[test]
fn berth_tag_and_rmi_after_a_pull_keep_unknown_index_fields() {
    let registry = TestRegistry::start();
    let store = Store::new();
    let reference = format!("{}/layout/app:1", registry.host());
    push_small_image(&reference);
    let digest = store.ok(&["pull", "-q", &reference]);
    let pulled = store.index();
    let manifests = pulled["manifests"].as_array().unwrap();
    assert_eq!(manifests.len(), 1, "{pulled}");
    let name = manifests[0]["annotations"][REF_NAME]
        .as_str()
        .unwrap_or_else(|| panic!("the pulled entry has no name: {pulled}"))
        .to_owned();
    assert_eq!(manifests[0]["digest"], digest.trim(), "{pulled}");

    // Each command starts from an index with the fields in place, so a loss
    // is charged to the command that caused it.
    let mut lost = Vec::new();
    let mut index = pulled.clone();
    let added = add_unknown_fields(&mut index, &name);
    store.write_index(&index);
    store.ok(&["tag", &reference, "copy:1"]);
    let tagged = store.index();
    let copy = entry(&tagged, "copy:1")
        .unwrap_or_else(|| panic!("berth tag did not name copy:1: {tagged}"));
    assert_eq!(copy["digest"], digest.trim(), "{tagged}");
    lost.extend(lost_fields(&tagged, &name, &added, "berth tag"));

    let mut index = tagged.clone();
    let added = add_unknown_fields(&mut index, &name);
    store.write_index(&index);
    store.ok(&["rmi", "copy:1"]);
    let removed = store.index();
    assert!(entry(&removed, "copy:1").is_none(), "{removed}");
    lost.extend(lost_fields(&removed, &name, &added, "berth rmi copy:1"));

    assert!(
        lost.is_empty(),
        "index.json lost fields berth does not interpret:\n{}\n\nlast index.json: {removed:#}",
        lost.join("\n")
    );
}

/// Expected to FAIL for `berth pull` until the store has one OCI layout
/// implementation (issue #13): the registry client's `OciLayout` renames
/// downloaded blobs from `.ingest/` and writes `index.json` without any
/// fsync, so after a power loss a tag written by a pull can name a torn or
/// missing blob. The build and tag steps go through berth-builder's store,
/// which fsyncs.
#[test]
fn every_blob_and_index_write_is_fsynced_before_its_rename() {
    // The build writes a layer whose files root owns.
    require::root();
    let registry = TestRegistry::start();
    let store = Store::new();
    let reference = format!("{}/layout/traced:1", registry.host());
    push_small_image(&reference);
    let context = store.context();
    fs::write(context.join("greeting"), "hello from the context\n").unwrap();
    fs::write(
        context.join("Dockerfile"),
        format!("FROM {reference}\nCOPY greeting /greeting\n"),
    )
    .unwrap();

    let context = context.to_str().unwrap().to_owned();
    let steps: [(&str, Vec<&str>, usize); 3] = [
        // Config, layer and manifest.
        ("berth pull", vec!["pull", "-q", &reference], 3),
        // The COPY layer, the config and the manifest.
        (
            "berth build",
            vec!["build", "--progress", "plain", "-t", "built:1", &context],
            3,
        ),
        ("berth tag", vec!["tag", "built:1", "again:1"], 0),
    ];
    let mut violations = Vec::new();
    for (step, args, blobs) in steps {
        let report = store.traced(&args);
        // A trace that missed the writes would pass every rule.
        assert!(
            report.blob_renames.len() >= blobs && !report.index_renames.is_empty(),
            "{step}: the trace shows {} renames into blobs/ (expected at least {blobs}) and \
             {} onto index.json (expected at least one); violations so far: {violations:#?}",
            report.blob_renames.len(),
            report.index_renames.len(),
        );
        violations.extend(report.violations.iter().map(|v| format!("{step}: {v}")));
    }
    assert_eq!(
        store
            .ok(&["inspect", "--format", "{{.Id}}", "again:1"])
            .trim(),
        store
            .ok(&["inspect", "--format", "{{.Id}}", "built:1"])
            .trim(),
        "the traced commands did not leave a usable store"
    );
    assert!(
        violations.is_empty(),
        "{} layout writes are not durable:\n{}",
        violations.len(),
        violations.join("\n")
    );
}
