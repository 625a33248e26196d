//! Layer extraction on fuzzed entry sequences: whatever the layer holds,
//! nothing beside the root may change. The input is either a structured
//! entry list (names from a small alphabet that includes `..`, whiteouts and
//! the canary's absolute path, so the fuzzer reaches the dangerous cases) or
//! raw bytes given to the tar reader as they are.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

#[derive(Debug, Arbitrary)]
enum Part {
    A,
    B,
    Dot,
    DotDot,
    Wh,
    WhDotDot,
    Opaque,
    Canary,
    Other(String),
}

#[derive(Debug, Arbitrary)]
enum Kind {
    Dir(u16),
    File(u16, Vec<u8>),
    Symlink(Vec<Part>),
    Hardlink(Vec<Part>),
    Char(u8, u8),
    Block(u8, u8),
    Fifo,
}

#[derive(Debug, Arbitrary)]
struct Entry {
    path: Vec<Part>,
    kind: Kind,
}

#[derive(Debug, Arbitrary)]
enum Input {
    Entries(Vec<Entry>),
    Raw(Vec<u8>),
}

fn join(parts: &[Part], canary: &str) -> String {
    let names: Vec<String> = parts
        .iter()
        .take(6)
        .map(|p| match p {
            Part::A => "a".into(),
            Part::B => "b".into(),
            Part::Dot => ".".into(),
            Part::DotDot => "..".into(),
            Part::Wh => ".wh.a".into(),
            Part::WhDotDot => ".wh..".into(),
            Part::Opaque => ".wh..wh..opq".into(),
            Part::Canary => canary.to_string(),
            Part::Other(s) => s.chars().take(20).collect(),
        })
        .collect();
    names.join("/")
}

fn tar_of(entries: &[Entry], canary: &str) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for entry in entries.iter().take(32) {
        let mut header = tar::Header::new_gnu();
        header.set_mtime(5);
        let name = join(&entry.path, canary);
        let mut data: &[u8] = &[];
        let mut link = None;
        match &entry.kind {
            Kind::Dir(mode) => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_mode(u32::from(*mode) & 0o7777);
            }
            Kind::File(mode, content) => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_mode(u32::from(*mode) & 0o7777);
                data = &content[..content.len().min(64)];
            }
            Kind::Symlink(target) | Kind::Hardlink(target) => {
                header.set_entry_type(if matches!(entry.kind, Kind::Symlink(_)) {
                    tar::EntryType::Symlink
                } else {
                    tar::EntryType::Link
                });
                header.set_mode(0o777);
                link = Some(join(target, canary));
            }
            Kind::Char(major, minor) | Kind::Block(major, minor) => {
                header.set_entry_type(if matches!(entry.kind, Kind::Char(..)) {
                    tar::EntryType::Char
                } else {
                    tar::EntryType::Block
                });
                header.set_mode(0o600);
                let _ = header.set_device_major(u32::from(*major));
                let _ = header.set_device_minor(u32::from(*minor));
            }
            Kind::Fifo => {
                header.set_entry_type(tar::EntryType::Fifo);
                header.set_mode(0o600);
            }
        }
        let old = header.as_old_mut();
        let n = name.len().min(100);
        old.name = [0; 100];
        old.name[..n].copy_from_slice(&name.as_bytes()[..n]);
        if let Some(link) = link {
            let n = link.len().min(100);
            old.linkname = [0; 100];
            old.linkname[..n].copy_from_slice(&link.as_bytes()[..n]);
        }
        header.set_size(data.len() as u64);
        header.set_cksum();
        let _ = builder.append(&header, data);
    }
    builder.into_inner().unwrap_or_default()
}

fn listing(dir: &Path) -> BTreeMap<PathBuf, (u32, u64, i64, i64, u64)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        let Ok(m) = fs::symlink_metadata(&path) else {
            continue;
        };
        out.insert(path.clone(), (m.mode(), m.len(), m.mtime(), m.mtime_nsec(), m.rdev()));
        if m.is_dir() {
            for e in fs::read_dir(&path).into_iter().flatten().flatten() {
                stack.push(e.path());
            }
        }
    }
    out
}

fuzz_target!(|input: Input| {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let canary = dir.path().join("canary");
    fs::create_dir_all(canary.join("victimdir/inner")).unwrap();
    fs::write(canary.join("victim"), b"host").unwrap();
    fs::create_dir(&root).unwrap();
    let before = listing(dir.path());
    let bytes = match &input {
        Input::Entries(entries) => tar_of(entries, &canary.display().to_string()),
        Input::Raw(bytes) => bytes.clone(),
    };
    let _ = berth_store::layer::extract::unpack(&bytes[..], &root, "fuzz");
    let after: BTreeMap<_, _> = listing(dir.path())
        .into_iter()
        .filter(|(p, _)| !p.starts_with(&root))
        .collect();
    let before: BTreeMap<_, _> = before
        .into_iter()
        .filter(|(p, _)| !p.starts_with(&root))
        .collect();
    assert_eq!(before, after, "something outside the root changed");
});
