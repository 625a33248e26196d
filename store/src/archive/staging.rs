//! An archive unpacked into a staging directory under the store's `tmp/`,
//! with its symbolic and hard links remembered rather than created, so that
//! nothing of the archive can point outside it.

use super::ArchiveError;
use crate::layer::compress::decompress;
use crate::tmp;
use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, BufReader, Read};
use std::path::{Component, Path, PathBuf};

/// Links followed at most this many times when resolving a name.
const MAX_LINKS: usize = 16;

/// An unpacked archive; removed when dropped.
#[derive(Debug)]
pub struct Staging {
    dir: PathBuf,
    /// Link name -> target name, both relative to the archive root.
    links: BTreeMap<String, String>,
}

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = tmp::remove_tree(&self.dir);
    }
}

/// The normalised relative form of an entry path (`./a/../b` -> `b`);
/// `None` if it leaves the root.
fn clean(path: &Path) -> Option<String> {
    let mut parts: Vec<String> = Vec::new();
    for component in path.components() {
        match component {
            Component::Normal(p) => parts.push(p.to_string_lossy().into_owned()),
            Component::CurDir => {}
            Component::ParentDir => {
                parts.pop()?;
            }
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(parts.join("/"))
}

impl Staging {
    /// Unpacks the (possibly gzip or zstd compressed) tar `input` into `dir`.
    pub fn unpack(dir: &Path, input: impl Read) -> Result<Staging, ArchiveError> {
        fs::create_dir_all(dir).map_err(|source| ArchiveError::Unpack {
            path: dir.to_path_buf(),
            source,
        })?;
        let mut staging = Staging {
            dir: dir.to_path_buf(),
            links: BTreeMap::new(),
        };
        let reader =
            decompress(BufReader::with_capacity(1 << 20, input)).map_err(ArchiveError::Read)?;
        let mut archive = tar::Archive::new(reader);
        for entry in archive.entries().map_err(ArchiveError::Read)? {
            let mut entry = entry.map_err(ArchiveError::Read)?;
            let raw = entry.path().map_err(ArchiveError::Read)?.into_owned();
            let name =
                clean(&raw).ok_or_else(|| ArchiveError::Escape(raw.display().to_string()))?;
            if name.is_empty() {
                continue;
            }
            let kind = entry.header().entry_type();
            if kind.is_symlink() || kind.is_hard_link() {
                let target = entry
                    .link_name()
                    .map_err(ArchiveError::Read)?
                    .unwrap_or_default()
                    .into_owned();
                // A symlink is relative to its directory, a hard link to the root.
                let joined = if kind.is_symlink() {
                    Path::new(&name)
                        .parent()
                        .unwrap_or(Path::new(""))
                        .join(&target)
                } else {
                    target.clone()
                };
                let target = clean(&joined)
                    .ok_or_else(|| ArchiveError::Escape(target.display().to_string()))?;
                staging.links.insert(name, target);
                continue;
            }
            if !kind.is_file() {
                continue;
            }
            let dest = staging.dir.join(&name);
            let unpack_err = |source| ArchiveError::Unpack {
                path: dest.clone(),
                source,
            };
            if let Some(parent) = dest.parent() {
                fs::create_dir_all(parent).map_err(unpack_err)?;
            }
            let mut out = File::create(&dest).map_err(unpack_err)?;
            io::copy(&mut entry, &mut out).map_err(unpack_err)?;
        }
        Ok(staging)
    }

    /// The staged file an archive name refers to, following links.
    pub fn path(&self, name: &str) -> Result<PathBuf, ArchiveError> {
        let mut current =
            clean(Path::new(name)).ok_or_else(|| ArchiveError::Escape(name.to_string()))?;
        for _ in 0..MAX_LINKS {
            match self.links.get(&current) {
                Some(target) => current = target.clone(),
                None => {
                    let path = self.dir.join(&current);
                    return if path.is_file() {
                        Ok(path)
                    } else {
                        Err(ArchiveError::Missing(name.to_string()))
                    };
                }
            }
        }
        Err(ArchiveError::Missing(name.to_string()))
    }

    /// Whether the archive has a file with this name.
    pub fn has(&self, name: &str) -> bool {
        self.path(name).is_ok()
    }

    /// Reads a (small) file of the archive.
    pub fn read(&self, name: &str) -> Result<Vec<u8>, ArchiveError> {
        let path = self.path(name)?;
        fs::read(&path).map_err(|source| ArchiveError::Unpack { path, source })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_paths_are_normalised_and_kept_inside() {
        for (raw, want) in [
            ("a/b", Some("a/b")),
            ("./a/./b", Some("a/b")),
            ("a/../b", Some("b")),
            ("../b", None),
            ("/etc/passwd", None),
        ] {
            assert_eq!(clean(Path::new(raw)).as_deref(), want, "{raw}");
        }
    }

    fn archive(links: &[(&str, &str)]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_size(4);
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        builder
            .append_data(&mut header, "one/layer.tar", &b"data"[..])
            .unwrap();
        for (name, target) in links {
            let mut link = tar::Header::new_gnu();
            link.set_entry_type(tar::EntryType::Symlink);
            link.set_size(0);
            builder.append_link(&mut link, name, target).unwrap();
        }
        builder.into_inner().unwrap()
    }

    #[test]
    fn links_resolve_within_the_archive() {
        let dir = tempfile::tempdir().unwrap();
        let bytes = archive(&[
            ("two/layer.tar", "../one/layer.tar"),
            ("three", "two/layer.tar"),
        ]);
        let staging = Staging::unpack(&dir.path().join("s"), &bytes[..]).unwrap();
        assert_eq!(staging.read("three").unwrap(), b"data");
        assert_eq!(staging.read("./two/layer.tar").unwrap(), b"data");
        assert!(matches!(
            staging.read("four"),
            Err(ArchiveError::Missing(_))
        ));
        drop(staging);
        assert!(!dir.path().join("s").exists(), "staging is removed on drop");
    }

    #[test]
    fn links_out_of_the_archive_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let bytes = archive(&[("evil", "../../etc/passwd")]);
        let staging = Staging::unpack(&dir.path().join("s"), &bytes[..]);
        assert!(matches!(staging, Err(ArchiveError::Escape(_))));
    }
}
