//! Hostile layers: crafted tar streams that try to write, remove or change
//! anything outside the directory they are unpacked into. A canary directory
//! beside the root must come out of every case exactly as it went in.

use super::extract::{self, ExtractError};
use crate::{Digest, Store};
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

/// One crafted tar entry; names and link targets are written raw, so `..`
/// and absolute paths reach the unpacker as an attacker would send them.
#[derive(Debug, Clone)]
pub(crate) enum Raw {
    Dir(String, u32),
    File(String, u32, Vec<u8>),
    Symlink(String, String),
    Hardlink(String, String),
    Char(String, u32, u32),
    Block(String, u32, u32),
    Fifo(String),
}

/// The tar stream of `entries`, in order, with an mtime of 5 everywhere.
pub(crate) fn tar_of(entries: &[Raw]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for entry in entries {
        let mut header = tar::Header::new_gnu();
        header.set_mtime(5);
        header.set_uid(0);
        header.set_gid(0);
        let (name, link, data): (&str, Option<&str>, &[u8]) = match entry {
            Raw::Dir(name, mode) => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_mode(*mode);
                (name, None, &[])
            }
            Raw::File(name, mode, data) => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_mode(*mode);
                (name, None, data)
            }
            Raw::Symlink(name, target) => {
                header.set_entry_type(tar::EntryType::Symlink);
                header.set_mode(0o777);
                (name, Some(target), &[])
            }
            Raw::Hardlink(name, target) => {
                header.set_entry_type(tar::EntryType::Link);
                header.set_mode(0o644);
                (name, Some(target), &[])
            }
            Raw::Char(name, major, minor) | Raw::Block(name, major, minor) => {
                header.set_entry_type(if matches!(entry, Raw::Char(..)) {
                    tar::EntryType::Char
                } else {
                    tar::EntryType::Block
                });
                header.set_mode(0o620);
                header.set_device_major(*major).unwrap();
                header.set_device_minor(*minor).unwrap();
                (name, None, &[])
            }
            Raw::Fifo(name) => {
                header.set_entry_type(tar::EntryType::Fifo);
                header.set_mode(0o640);
                (name, None, &[])
            }
        };
        let old = header.as_old_mut();
        old.name = [0; 100];
        old.name[..name.len()].copy_from_slice(name.as_bytes());
        if let Some(link) = link {
            old.linkname = [0; 100];
            old.linkname[..link.len()].copy_from_slice(link.as_bytes());
        }
        header.set_size(data.len() as u64);
        header.set_cksum();
        builder.append(&header, data).unwrap();
    }
    builder.into_inner().unwrap()
}

/// A root to unpack into and a canary directory beside it holding a file,
/// a directory with a child, and an empty directory.
pub(crate) struct Scene {
    _dir: tempfile::TempDir,
    pub root: PathBuf,
    pub canary: PathBuf,
}

impl Scene {
    pub(crate) fn new() -> Scene {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        let canary = dir.path().join("canary");
        fs::create_dir(&root).unwrap();
        fs::create_dir_all(canary.join("victimdir/inner")).unwrap();
        fs::write(canary.join("victim"), b"host data").unwrap();
        fs::write(canary.join("victimdir/inner/file"), b"more").unwrap();
        fs::set_permissions(
            canary.join("victim"),
            std::os::unix::fs::PermissionsExt::from_mode(0o644),
        )
        .unwrap();
        // Old times, so a change made now shows.
        for p in ["victim", "victimdir", "victimdir/inner", ""] {
            let t = fs::FileTimes::new()
                .set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(1000));
            fs::File::open(canary.join(p))
                .unwrap()
                .set_times(t)
                .unwrap();
        }
        Scene {
            _dir: dir,
            root,
            canary,
        }
    }

    /// Every entry of the canary tree with its type, mode, size, mtime,
    /// link count, device, content and opaque attribute.
    pub(crate) fn listing(&self) -> BTreeMap<PathBuf, String> {
        let mut out = BTreeMap::new();
        let mut stack = vec![self.canary.clone()];
        while let Some(path) = stack.pop() {
            let Ok(m) = fs::symlink_metadata(&path) else {
                out.insert(path, "gone".into());
                continue;
            };
            let content = if m.is_file() {
                String::from_utf8_lossy(&fs::read(&path).unwrap_or_default()).into_owned()
            } else {
                String::new()
            };
            out.insert(
                path.clone(),
                format!(
                    "{:?} mode {:o} size {} mtime {} nlink {} rdev {} opaque {} {content}",
                    m.file_type(),
                    m.mode(),
                    m.len(),
                    m.mtime(),
                    m.nlink(),
                    m.rdev(),
                    super::xattr::is_opaque(&path),
                ),
            );
            if m.is_dir() {
                for e in fs::read_dir(&path).unwrap() {
                    stack.push(e.unwrap().path());
                }
            }
        }
        out
    }
}

fn unpack(scene: &Scene, entries: &[Raw]) -> Result<(), ExtractError> {
    let tar = tar_of(entries);
    extract::unpack(&tar[..], &scene.root, "sha256:test")
}

/// What a case must end with, besides an untouched canary.
enum Expect {
    /// Unpacking succeeds and the check holds inside the root.
    Ok(fn(&Path)),
    /// Unpacking fails with an error containing these words.
    Refused(&'static [&'static str]),
    /// Unpacking may succeed (inside the root) or be refused with an error
    /// that names this entry.
    Contained(&'static str),
}

/// An error with its causes, as the binary prints it.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(&format!(": {s}"));
        source = s.source();
    }
    text
}

fn s(x: &str) -> String {
    x.to_string()
}

fn canary_path(scene: &Scene, rel: &str) -> String {
    scene.canary.join(rel).display().to_string()
}

#[test]
fn hostile_layers_never_touch_anything_outside_the_root() {
    use Expect::*;
    use Raw::*;
    type Case = (&'static str, fn(&Scene) -> Vec<Raw>, Expect);
    let cases: Vec<Case> = vec![
        (
            "case 1: whiteouts under a symlink to a host directory",
            |sc| {
                vec![
                    Symlink(s("x"), canary_path(sc, "")),
                    File(s("x/.wh.victim"), 0o644, vec![]),
                    File(s("x/.wh.victimdir"), 0o644, vec![]),
                ]
            },
            Contained("x/.wh.victim"),
        ),
        (
            "case 2: a top-level whiteout of '..'",
            |_| vec![File(s(".wh..."), 0o644, vec![])],
            Refused(&["'.wh...'", "whiteout for '..'"]),
        ),
        (
            "case 2: a top-level whiteout of '.'",
            |_| vec![File(s(".wh.."), 0o644, vec![])],
            Refused(&["'.wh..'", "whiteout for '.'"]),
        ),
        (
            "case 2: a whiteout of '.'",
            |_| vec![Dir(s("d"), 0o755), File(s("d/.wh."), 0o644, vec![])],
            Refused(&["d/.wh.", "whiteout"]),
        ),
        (
            "case 3: a directory, its whiteout, then a symlink in its place",
            |sc| {
                vec![
                    Dir(s("m"), 0o755),
                    File(s(".wh.m"), 0o644, vec![]),
                    Symlink(s("m"), canary_path(sc, "")),
                ]
            },
            Ok(|root| {
                assert!(
                    fs::symlink_metadata(root.join("m"))
                        .unwrap()
                        .file_type()
                        .is_symlink()
                )
            }),
        ),
        (
            "a directory entry over a symlink to a host directory",
            |sc| {
                vec![
                    Symlink(s("d"), canary_path(sc, "victimdir")),
                    Dir(s("d"), 0o777),
                ]
            },
            Ok(|root| assert!(fs::symlink_metadata(root.join("d")).unwrap().is_dir())),
        ),
        (
            "a file over a symlink to a host file",
            |sc| {
                vec![
                    Symlink(s("f"), canary_path(sc, "victim")),
                    File(s("f"), 0o4755, b"pwned".to_vec()),
                ]
            },
            Ok(|root| assert_eq!(fs::read(root.join("f")).unwrap(), b"pwned")),
        ),
        (
            "a file under a symlink to a host directory",
            |sc| {
                vec![
                    Symlink(s("d"), canary_path(sc, "")),
                    File(s("d/victim"), 0o644, b"pwned".to_vec()),
                    File(s("d/new"), 0o644, b"pwned".to_vec()),
                ]
            },
            Contained("d/victim"),
        ),
        (
            "a chain of symlinks ending at a host directory",
            |sc| {
                vec![
                    Symlink(s("a"), s("b")),
                    Symlink(s("b"), s("c")),
                    Symlink(s("c"), canary_path(sc, "victimdir")),
                    File(s("a/inner/file"), 0o644, b"pwned".to_vec()),
                    File(s("a/.wh.inner"), 0o644, vec![]),
                ]
            },
            Contained("a/inner/file"),
        ),
        (
            "a relative symlink climbing out, then a file under it",
            |sc| {
                vec![
                    Symlink(s("up"), s("../../../../../../../../..")),
                    File(
                        format!("up{}", canary_path(sc, "new")),
                        0o644,
                        b"pwned".to_vec(),
                    ),
                ]
            },
            Ok(|_| {}),
        ),
        (
            "an opaque marker under a symlink to a host directory",
            |sc| {
                vec![
                    Symlink(s("o"), canary_path(sc, "victimdir")),
                    File(s("o/.wh..wh..opq"), 0o644, vec![]),
                ]
            },
            Contained("o/.wh..wh..opq"),
        ),
        (
            "a device node under a symlink to a host directory",
            |sc| {
                vec![
                    Symlink(s("d"), canary_path(sc, "")),
                    Char(s("d/victim"), 1, 3),
                    Fifo(s("d/fifo")),
                ]
            },
            Contained("d/victim"),
        ),
        (
            "a path with '..'",
            |_| vec![File(s("a/../../escaped"), 0o644, b"pwned".to_vec())],
            Refused(&["a/../../escaped", "outside"]),
        ),
        (
            "an absolute path lands inside the root",
            |sc| vec![File(canary_path(sc, "victim"), 0o644, b"pwned".to_vec())],
            Ok(|_| {}),
        ),
        (
            "a hardlink out of the root",
            |_| vec![Hardlink(s("h1"), s("../../etc/passwd"))],
            Refused(&["h1", "hardlink", "../../etc/passwd", "outside"]),
        ),
        (
            "a hardlink to an absolute host path",
            |sc| vec![Hardlink(s("h1"), canary_path(sc, "victim"))],
            Refused(&["h1", "hardlink"]),
        ),
        (
            "a hardlink through a symlink to a host directory",
            |sc| {
                vec![
                    Symlink(s("s"), canary_path(sc, "")),
                    Hardlink(s("h"), s("s/victim")),
                ]
            },
            Refused(&["'h'", "hardlink", "s/victim"]),
        ),
        (
            "a hardlink to a symlink links the symlink itself",
            |sc| {
                vec![
                    Symlink(s("s"), canary_path(sc, "victim")),
                    Hardlink(s("h"), s("s")),
                    File(s("h"), 0o644, b"pwned".to_vec()),
                ]
            },
            Ok(|root| assert!(fs::symlink_metadata(root.join("s")).unwrap().is_symlink())),
        ),
        (
            "a setuid file keeps its mode inside the root",
            |_| vec![File(s("bin/su"), 0o4755, b"#!".to_vec())],
            Ok(|root| {
                assert_eq!(
                    fs::metadata(root.join("bin/su")).unwrap().mode() & 0o7777,
                    0o4755
                )
            }),
        ),
        (
            "device nodes and fifos are created as what they are",
            |_| {
                vec![
                    Dir(s("dev"), 0o755),
                    Char(s("dev/null"), 1, 3),
                    Block(s("dev/loop0"), 7, 0),
                    Fifo(s("dev/pipe")),
                ]
            },
            Ok(|root| {
                let null = fs::symlink_metadata(root.join("dev/null")).unwrap();
                assert!(null.file_type().is_char_device());
                assert_eq!(null.rdev(), libc::makedev(1, 3));
                assert_eq!(null.mode() & 0o7777, 0o620);
                let block = fs::symlink_metadata(root.join("dev/loop0")).unwrap();
                assert!(block.file_type().is_block_device());
                assert_eq!(block.rdev(), libc::makedev(7, 0));
                let fifo = fs::symlink_metadata(root.join("dev/pipe")).unwrap();
                assert!(fifo.file_type().is_fifo());
            }),
        ),
        (
            "whiteouts inside the root still work",
            |_| {
                vec![
                    Dir(s("etc"), 0o755),
                    File(s("etc/.wh.passwd"), 0o644, vec![]),
                    Dir(s("opaque"), 0o755),
                    File(s("opaque/.wh..wh..opq"), 0o644, vec![]),
                ]
            },
            Ok(|root| {
                let w = fs::symlink_metadata(root.join("etc/passwd")).unwrap();
                assert!(w.file_type().is_char_device());
                assert_eq!(w.rdev(), 0);
                assert!(super::xattr::is_opaque(&root.join("opaque")));
            }),
        ),
    ];
    let mut failures = Vec::new();
    for (name, entries, expect) in cases {
        let scene = Scene::new();
        let before = scene.listing();
        let result = unpack(&scene, &entries(&scene));
        let after = scene.listing();
        if before != after {
            failures.push(format!("{name}: the canary changed: {after:#?}"));
            continue;
        }
        match (expect, result) {
            (Ok(check), Result::Ok(())) => {
                if let Err(panic) =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(&scene.root)))
                {
                    failures.push(format!("{name}: check failed: {panic:?}"));
                }
            }
            (Ok(_), Err(e)) => failures.push(format!("{name}: refused: {}", chain(&e))),
            (Refused(words), Err(e)) => {
                let text = chain(&e);
                if let Some(w) = words.iter().find(|w| !text.contains(*w)) {
                    failures.push(format!("{name}: error lacks '{w}': {text}"));
                }
            }
            (Refused(_), Result::Ok(())) => failures.push(format!("{name}: was not refused")),
            (Contained(_), Result::Ok(())) => {}
            (Contained(entry), Err(e)) => {
                let text = chain(&e);
                if !text.contains(&format!("entry '{entry}'")) {
                    failures.push(format!("{name}: error does not name '{entry}': {text}"));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn a_layer_whose_content_differs_from_its_claimed_diff_id_is_not_snapshotted() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let honest = tar_of(&[Raw::File("who".into(), 0o644, b"honest".to_vec())]);
    let hostile = tar_of(&[Raw::File("who".into(), 0o644, b"hostile".to_vec())]);
    let claimed = Digest::of(&honest);
    let blob = store.blobs().put(&hostile).unwrap();
    let err = extract::ensure_snapshot(&store, &blob, &claimed).unwrap_err();
    let text = err.to_string();
    for word in [
        blob.as_str(),
        claimed.as_str(),
        Digest::of(&hostile).as_str(),
    ] {
        assert!(text.contains(word), "error lacks {word}: {text}");
    }
    assert!(!store.has_snapshot(&claimed));
    // The honest layer still unpacks under its own diff_id.
    let honest_blob = store.blobs().put(&honest).unwrap();
    let snapshot = extract::ensure_snapshot(&store, &honest_blob, &claimed).unwrap();
    assert_eq!(fs::read(snapshot.join("who")).unwrap(), b"honest");
}

#[test]
fn trailing_bytes_after_the_tar_end_count_towards_the_diff_id() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let mut tar = tar_of(&[Raw::File("a".into(), 0o644, b"a".to_vec())]);
    let claimed = Digest::of(&tar);
    tar.extend_from_slice(&[0; 512]);
    let blob = store.blobs().put(&tar).unwrap();
    assert!(extract::ensure_snapshot(&store, &blob, &claimed).is_err());
    let snapshot = extract::ensure_snapshot(&store, &blob, &Digest::of(&tar)).unwrap();
    assert_eq!(fs::read(snapshot.join("a")).unwrap(), b"a");
}

mod random {
    use super::*;
    use proptest::prelude::*;

    /// Whole paths rather than random components, so that a symlink and an
    /// entry beneath it meet often.
    fn name() -> impl Strategy<Value = String> {
        prop_oneof![
            4 => Just("a"),
            2 => Just("b"),
            1 => Just("a/b"),
            1 => Just("a/victim"),
            2 => Just("a/.wh.victim"),
            2 => Just("a/.wh.victimdir"),
            1 => Just("a/.wh..wh..opq"),
            1 => Just("a/b/.wh.inner"),
            1 => Just(".wh.a"),
            1 => Just(".wh.."),
            1 => Just("a/.wh.."),
            1 => Just("../x"),
            1 => Just("b/../../x"),
            1 => Just("/a/victim"),
        ]
        .prop_map(str::to_string)
    }

    fn target(canary: String) -> impl Strategy<Value = String> {
        prop_oneof![
            2 => name(),
            4 => Just(canary.clone()),
            1 => Just(format!("{canary}/victim")),
            1 => Just(format!("{canary}/victimdir")),
            1 => Just("../../..".to_string()),
            1 => Just("/".to_string()),
        ]
    }

    fn entry(canary: String) -> impl Strategy<Value = Raw> {
        prop_oneof![
            2 => (name(), prop_oneof![Just(0o755u32), Just(0o7777)]).prop_map(|(n, m)| Raw::Dir(n, m)),
            2 => (name(), prop_oneof![Just(0o644u32), Just(0o4755)])
                .prop_map(|(n, m)| Raw::File(n, m, b"pwned".to_vec())),
            4 => (name(), target(canary.clone())).prop_map(|(n, t)| Raw::Symlink(n, t)),
            1 => (name(), target(canary)).prop_map(|(n, t)| Raw::Hardlink(n, t)),
            1 => name().prop_map(|n| Raw::Char(n, 1, 3)),
            1 => name().prop_map(|n| Raw::Block(n, 7, 0)),
            1 => name().prop_map(Raw::Fifo),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]
        #[test]
        fn random_entry_sequences_write_nothing_outside_the_root(
            seed in prop::collection::vec(entry("CANARY".into()), 1..8)
        ) {
            let scene = Scene::new();
            let canary = scene.canary.display().to_string();
            let entries: Vec<Raw> = seed
                .into_iter()
                .map(|e| match e {
                    Raw::Symlink(n, t) => Raw::Symlink(n, t.replace("CANARY", &canary)),
                    Raw::Hardlink(n, t) => Raw::Hardlink(n, t.replace("CANARY", &canary)),
                    other => other,
                })
                .collect();
            let before = scene.listing();
            let _ = unpack(&scene, &entries);
            prop_assert_eq!(before, scene.listing(), "entries: {:?}", entries);
        }
    }
}
