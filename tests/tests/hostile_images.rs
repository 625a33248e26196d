//! Hostile images (issue #12, cases 1, 2, 3 and 9): layers crafted to reach
//! the host through whiteouts, symlinks and lying diffIDs, pushed to a real
//! registry with skopeo, then pulled and run, built `FROM`, and `ADD`ed as a
//! tar. A canary directory outside the store must stay exactly as it was,
//! and every refusal must name the layer entry and the reason.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod build_common;

use berth_e2e::bins;
use berth_e2e::hostile::{Canary, Layer, Raw, busybox_layer, digest, push, tar_layer};
use berth_e2e::registry::TestRegistry;
use build_common::BuildEnv;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// A store with busybox, a registry and a canary.
struct Hostile {
    env: BuildEnv,
    registry: TestRegistry,
    canary: Canary,
}

fn text(out: &Output) -> String {
    format!(
        "status {}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn berth_in(store: &Path, args: &[&str]) -> Output {
    Command::new(bins::berth())
        .arg("--root")
        .arg(store)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn ok(out: Output, what: &str) -> String {
    assert!(out.status.success(), "{what} failed: {}", text(&out));
    String::from_utf8(out.stdout).unwrap()
}

impl Hostile {
    fn new() -> Hostile {
        Hostile {
            env: BuildEnv::new(),
            registry: TestRegistry::start(),
            canary: Canary::new(),
        }
    }

    /// Pushes busybox plus `layers` as `name:1`; returns the reference.
    fn push(&self, name: &str, layers: Vec<Layer>) -> String {
        let reference = format!("{}/hostile/{name}:1", self.registry.host());
        let mut all = vec![Layer::honest(busybox_layer())];
        all.extend(layers);
        push(&all, &reference);
        reference
    }

    fn berth(&self, args: &[&str]) -> Output {
        berth_in(self.env.store.path(), args)
    }

    fn build(&self, dockerfile: &str) -> Output {
        self.env.write("Dockerfile", dockerfile);
        self.env.build(&[])
    }

    fn assert_canary(&self, before: &std::collections::BTreeMap<PathBuf, String>, step: &str) {
        assert_eq!(
            before,
            &self.canary.listing(),
            "the canary outside the store changed after {step}"
        );
    }
}

#[test]
fn case1_whiteouts_under_a_symlink_to_a_host_directory_leave_it_untouched() {
    let h = Hostile::new();
    let layer = tar_layer(&[
        Raw::Symlink("x".into(), h.canary.path_str()),
        Raw::File("x/.wh.victim".into(), vec![]),
        Raw::File("x/.wh.victimdir".into(), vec![]),
    ]);
    let reference = h.push("case1", vec![Layer::honest(layer.clone())]);
    let before = h.canary.listing();

    // The layer may unpack (inside the store) or be refused; a refusal names
    // the entry and says why.
    let contained = |out: Output, step: &str| {
        eprintln!("{step}: {}", text(&out));
        h.assert_canary(&before, step);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success()
                || (stderr.contains("entry 'x/.wh.victim'")
                    && stderr.contains("is not a directory inside the layer root")),
            "{step}: {}",
            text(&out)
        );
    };
    ok(h.berth(&["pull", "--quiet", &reference]), "pull");
    contained(h.berth(&["run", "--rm", &reference, "true"]), "pull + run");
    contained(
        h.build(&format!("FROM {reference}\nRUN true\n")),
        "a build FROM the image",
    );
    fs::write(h.env.ctx.path().join("layer.tar"), &layer).unwrap();
    contained(
        h.build("FROM busybox\nADD layer.tar /x/\n"),
        "ADD layer.tar",
    );
}

#[test]
fn case2_a_top_level_whiteout_of_dotdot_is_refused_and_spares_the_store_tmp() {
    let h = Hostile::new();
    // `.wh.` + `..`: a whiteout of the root's parent.
    let layer = tar_layer(&[Raw::File(".wh...".into(), vec![])]);
    let reference = h.push("case2", vec![Layer::honest(layer.clone())]);
    // Another process's live staging directory (named with a live pid, so no
    // stale-entry cleanup may take it).
    let live = h
        .env
        .store
        .path()
        .join(format!("tmp/{}-0-live", std::process::id()));
    fs::create_dir_all(&live).unwrap();
    fs::write(live.join("keep"), b"in use").unwrap();
    let check = |out: &Output, step: &str| {
        assert!(
            live.join("keep").exists(),
            "{step} removed a live staging directory: {}",
            text(out)
        );
        assert!(!out.status.success(), "{step} succeeded: {}", text(out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("entry '.wh...'") && stderr.contains("whiteout for '..'"),
            "{step}: the error does not name the entry and the reason: {stderr}"
        );
    };

    ok(h.berth(&["pull", "--quiet", &reference]), "pull");
    check(&h.berth(&["run", "--rm", &reference, "true"]), "run");
    check(&h.build(&format!("FROM {reference}\nRUN true\n")), "FROM");
    fs::write(h.env.ctx.path().join("layer.tar"), &layer).unwrap();
    check(&h.build("FROM busybox\nADD layer.tar /x/\n"), "ADD");
}

#[test]
fn case3_a_directory_replaced_by_a_symlink_keeps_the_host_mtime_and_devices_are_devices() {
    let h = Hostile::new();
    let layer = tar_layer(&[
        Raw::Dir("m".into()),
        Raw::File(".wh.m".into(), vec![]),
        Raw::Symlink("m".into(), h.canary.path_str()),
        Raw::Char("mynull".into(), 1, 3),
    ]);
    let reference = h.push("case3", vec![Layer::honest(layer)]);
    let before = h.canary.listing();

    ok(h.berth(&["pull", "--quiet", &reference]), "pull");
    let run = h.berth(&[
        "run", "--rm", &reference, "stat", "-c", "%F %t %T", "/mynull",
    ]);
    h.assert_canary(&before, "pull + run");
    assert_eq!(ok(run, "run"), "character special file 1 3\n");
}

#[test]
fn case9_a_layer_claiming_another_images_diff_id_never_runs_in_its_place() {
    let h = Hostile::new();
    let honest_tar = tar_layer(&[Raw::File("who".into(), b"honest\n".to_vec())]);
    let hostile_tar = tar_layer(&[Raw::File("who".into(), b"hostile\n".to_vec())]);
    let honest = h.push("honest", vec![Layer::honest(honest_tar.clone())]);
    let hostile = h.push(
        "hostile",
        vec![Layer {
            tar: hostile_tar.clone(),
            claimed_diff_id: digest(&honest_tar),
        }],
    );

    // Hostile first: running or building on it must fail, naming both digests;
    // the honest image then runs its own content.
    let store = tempfile::tempdir().unwrap();
    ok(
        berth_in(store.path(), &["pull", "--quiet", &hostile]),
        "pull",
    );
    let run = berth_in(store.path(), &["run", "--rm", &hostile, "cat", "/who"]);
    assert!(!run.status.success(), "the lying image ran: {}", text(&run));
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        stderr.contains(&digest(&honest_tar)) && stderr.contains(&digest(&hostile_tar)),
        "the error does not name the claimed and actual diffIDs: {stderr}"
    );
    ok(
        berth_in(store.path(), &["pull", "--quiet", &honest]),
        "pull",
    );
    let out = ok(
        berth_in(store.path(), &["run", "--rm", &honest, "cat", "/who"]),
        "run honest",
    );
    assert_eq!(out, "honest\n", "hostile first, then honest");

    // A build FROM the lying image fails the same way.
    let env_store = h.env.store.path().to_path_buf();
    ok(berth_in(&env_store, &["pull", "--quiet", &hostile]), "pull");
    let from = h.build(&format!("FROM {hostile}\nRUN cat /who\n"));
    assert!(
        !from.status.success() && String::from_utf8_lossy(&from.stderr).contains("diffID"),
        "a build FROM the lying image: {}",
        text(&from)
    );

    // Honest first: the honest image keeps its content whatever comes next.
    let store = tempfile::tempdir().unwrap();
    ok(
        berth_in(store.path(), &["pull", "--quiet", &honest]),
        "pull",
    );
    let out = ok(
        berth_in(store.path(), &["run", "--rm", &honest, "cat", "/who"]),
        "run honest",
    );
    assert_eq!(out, "honest\n");
    ok(
        berth_in(store.path(), &["pull", "--quiet", &hostile]),
        "pull",
    );
    let run = berth_in(store.path(), &["run", "--rm", &hostile, "cat", "/who"]);
    assert_ne!(
        String::from_utf8_lossy(&run.stdout),
        "hostile\n",
        "the lying image ran its layer"
    );
    let out = ok(
        berth_in(store.path(), &["run", "--rm", &honest, "cat", "/who"]),
        "run honest",
    );
    assert_eq!(out, "honest\n", "honest first, then hostile");
}
