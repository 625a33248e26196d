//! The content hash cache of one build context, keyed by the file's stat data.
//!
//! Stored as a tab-separated file in the store so that the next build of the
//! same context re-reads only files whose (size, mtime, inode, mode) changed.

use super::walk::{ContextFile, FileKind, hash_file};
use berth_store::{Digest, Store, StoreError, atomic};
use sha2::{Digest as _, Sha256};
use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    size: u64,
    mtime: i64,
    mtime_nsec: i64,
    ino: u64,
    mode: u32,
}

impl Stamp {
    fn of(file: &ContextFile) -> Stamp {
        Stamp {
            size: file.size,
            mtime: file.mtime,
            mtime_nsec: file.mtime_nsec,
            ino: file.ino,
            mode: file.mode,
        }
    }
}

/// Cached content hashes of one context.
#[derive(Debug)]
pub struct HashCache {
    path: Option<PathBuf>,
    /// The context directory, recorded in the file so `berth prune` can drop
    /// the caches of contexts that no longer exist.
    context: PathBuf,
    entries: Mutex<HashMap<String, (Stamp, Digest)>>,
    dirty: Mutex<bool>,
}

impl HashCache {
    /// An empty cache that is never saved.
    pub fn in_memory() -> HashCache {
        HashCache {
            path: None,
            context: PathBuf::new(),
            entries: Mutex::new(HashMap::new()),
            dirty: Mutex::new(false),
        }
    }

    /// Loads the cache of the context at `root` from the store.
    pub fn load(store: &Store, root: &Path) -> HashCache {
        let id = Sha256::digest(root.as_os_str().as_encoded_bytes());
        let path = store.root().join("context").join(format!("{id:x}.tsv"));
        let mut entries = HashMap::new();
        if let Ok(text) = fs::read_to_string(&path) {
            for line in text.lines() {
                if let Some((rel, entry)) = parse_line(line) {
                    entries.insert(rel, entry);
                }
            }
        }
        HashCache {
            path: Some(path),
            context: root.to_path_buf(),
            entries: Mutex::new(entries),
            dirty: Mutex::new(false),
        }
    }

    /// The content hash of a regular file of the context, from the cache when
    /// its stat data is unchanged, else by reading it.
    pub fn hash(&self, root: &Path, file: &ContextFile) -> io::Result<Digest> {
        let stamp = Stamp::of(file);
        if let Ok(entries) = self.entries.lock()
            && let Some((cached, digest)) = entries.get(&file.rel)
            && *cached == stamp
        {
            return Ok(digest.clone());
        }
        let digest = hash_file(&root.join(&file.rel))?;
        if let Ok(mut entries) = self.entries.lock() {
            entries.insert(file.rel.clone(), (stamp, digest.clone()));
        }
        if let Ok(mut dirty) = self.dirty.lock() {
            *dirty = true;
        }
        Ok(digest)
    }

    /// Hashes, on several threads, the regular files among `files` whose
    /// stat data the cache does not know yet, so a cold build reads the
    /// context in parallel.
    pub fn prehash<'a>(
        &self,
        root: &Path,
        files: impl Iterator<Item = &'a ContextFile>,
    ) -> io::Result<()> {
        let missing: Vec<&ContextFile> = {
            let Ok(entries) = self.entries.lock() else {
                return Ok(());
            };
            files
                .filter(|f| f.kind == FileKind::File)
                .filter(|f| {
                    entries
                        .get(&f.rel)
                        .is_none_or(|(stamp, _)| *stamp != Stamp::of(f))
                })
                .collect()
        };
        if missing.is_empty() {
            return Ok(());
        }
        let workers = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .clamp(1, 8);
        let per = missing.len().div_ceil(workers);
        std::thread::scope(|scope| {
            let handles: Vec<_> = missing
                .chunks(per.max(1))
                .map(|chunk| {
                    scope.spawn(move || {
                        chunk
                            .iter()
                            .try_for_each(|f| self.hash(root, f).map(|_| ()))
                    })
                })
                .collect();
            handles.into_iter().try_for_each(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(io::Error::other("a hashing thread panicked")))
            })
        })
    }

    /// Writes the cache back if anything was added; files no longer in the
    /// context are dropped.
    pub fn save(&self, keep: &dyn Fn(&str) -> bool) -> Result<(), StoreError> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        if !self.dirty.lock().map(|d| *d).unwrap_or(true) {
            return Ok(());
        }
        let mut text = format!("{CONTEXT_LINE}{}\n", self.context.to_string_lossy());
        if let Ok(entries) = self.entries.lock() {
            let mut rels: Vec<&String> = entries.keys().filter(|r| keep(r)).collect();
            rels.sort();
            for rel in rels {
                if let Some((s, d)) = entries.get(rel) {
                    text.push_str(&format!(
                        "{}\t{}\t{}\t{}\t{}\t{}\t{}\n",
                        s.size,
                        s.mtime,
                        s.mtime_nsec,
                        s.ino,
                        s.mode,
                        d.hex(),
                        rel
                    ));
                }
            }
        }
        atomic::write(path, text.as_bytes()).map_err(berth_store::io_err("writing", path))
    }
}

/// The first line of a cache file names its context directory.
const CONTEXT_LINE: &str = "#context\t";

/// The context directory a stored cache file belongs to, if it says.
pub fn context_of(cache_file: &Path) -> Option<PathBuf> {
    let text = fs::read_to_string(cache_file).ok()?;
    let first = text.lines().next()?;
    first.strip_prefix(CONTEXT_LINE).map(PathBuf::from)
}

fn parse_line(line: &str) -> Option<(String, (Stamp, Digest))> {
    let mut parts = line.splitn(7, '\t');
    let size = parts.next()?.parse().ok()?;
    let mtime = parts.next()?.parse().ok()?;
    let mtime_nsec = parts.next()?.parse().ok()?;
    let ino = parts.next()?.parse().ok()?;
    let mode = parts.next()?.parse().ok()?;
    let digest = Digest::parse(&format!("sha256:{}", parts.next()?)).ok()?;
    let rel = parts.next()?.to_string();
    Some((
        rel,
        (
            Stamp {
                size,
                mtime,
                mtime_nsec,
                ino,
                mode,
            },
            digest,
        ),
    ))
}

/// Digest of a selection of context entries as a cache-key input: names,
/// kinds, modes and contents (or link targets), never times or owners.
pub fn selection_digest<'a>(
    cache: &HashCache,
    root: &Path,
    files: impl Iterator<Item = (&'a str, &'a ContextFile)>,
) -> io::Result<Digest> {
    let mut hasher = Sha256::new();
    for (dest, file) in files {
        hasher.update(dest.as_bytes());
        hasher.update([0]);
        let (tag, detail) = match file.kind {
            FileKind::File => ("f", cache.hash(root, file)?.hex().to_string()),
            FileKind::Dir => ("d", String::new()),
            FileKind::Symlink => (
                "l",
                file.link
                    .as_ref()
                    .map(|l| l.to_string_lossy().into_owned())
                    .unwrap_or_default(),
            ),
            FileKind::Other => ("o", String::new()),
        };
        hasher.update(format!("{tag}\0{:o}\0{detail}\n", file.mode).as_bytes());
    }
    Ok(Digest::from_hasher(hasher))
}

#[cfg(test)]
mod tests {
    use super::super::walk::{Context, Visit};
    use super::*;

    #[test]
    fn unchanged_files_are_not_reread_and_changes_are_seen() {
        let store_dir = tempfile::tempdir().unwrap();
        let store = Store::open(store_dir.path()).unwrap();
        let ctx_dir = tempfile::tempdir().unwrap();
        let file = ctx_dir.path().join("f");
        fs::write(&file, b"one").unwrap();
        let walk = || Context::walk(ctx_dir.path(), &|_, _| Visit::Include).unwrap();

        let cache = HashCache::load(&store, ctx_dir.path());
        let ctx = walk();
        let first = cache.hash(ctx.root(), ctx.get("f").unwrap()).unwrap();
        assert_eq!(first, Digest::of(b"one"));
        cache.save(&|_| true).unwrap();
        let saved = fs::read_dir(store.root().join("context"))
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        assert_eq!(context_of(&saved).as_deref(), Some(ctx_dir.path()));

        // Same stat data, different bytes: the cached hash is used, which
        // proves the file was not read again.
        let meta = fs::metadata(&file).unwrap();
        fs::write(&file, b"two").unwrap();
        fs::File::options()
            .write(true)
            .open(&file)
            .unwrap()
            .set_modified(meta.modified().unwrap())
            .unwrap();
        let cache = HashCache::load(&store, ctx_dir.path());
        let ctx = walk();
        assert_eq!(
            cache.hash(ctx.root(), ctx.get("f").unwrap()).unwrap(),
            first
        );

        // A change of size is seen.
        fs::write(&file, b"three").unwrap();
        let ctx = walk();
        assert_eq!(
            cache.hash(ctx.root(), ctx.get("f").unwrap()).unwrap(),
            Digest::of(b"three")
        );
    }

    #[test]
    fn selection_digest_ignores_mtime_but_not_mode_or_content() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("a"), b"a").unwrap();
        let cache = HashCache::in_memory();
        let digest = || {
            let ctx = Context::walk(dir.path(), &|_, _| Visit::Include).unwrap();
            let files: Vec<ContextFile> = ctx.files().cloned().collect();
            selection_digest(
                &cache,
                dir.path(),
                files.iter().map(|f| (f.rel.as_str(), f)),
            )
            .unwrap()
        };
        let base = digest();
        fs::File::options()
            .write(true)
            .open(dir.path().join("a"))
            .unwrap()
            .set_modified(std::time::UNIX_EPOCH)
            .unwrap();
        assert_eq!(digest(), base);
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(dir.path().join("a"), fs::Permissions::from_mode(0o600)).unwrap();
        assert_ne!(digest(), base);
    }
}
