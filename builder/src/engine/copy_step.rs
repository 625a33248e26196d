//! Executing a `COPY` or `ADD` step: downloading URL sources, the step's
//! cache key, selecting sources from the context, another stage or an image,
//! unpacking local archives for `ADD`, and writing the layer.

use super::schedule::{Build, StageState};
use super::step::{CopyStep, Step};
use super::{BuildError, StepId, copy, fetch, key, metadata, progress};
use crate::cache::{CacheRecord, CacheStore};
use crate::context::{Context, HashCache};
use berth_containers::executor::view;
use berth_store::layer::extract;
use berth_store::{Digest, Store};
use std::path::{Path, PathBuf};
use std::time::Instant;

impl Build<'_> {
    /// Downloads an `ADD` URL source, reporting the bytes received.
    fn download(
        &self,
        url: &str,
        dir: &Path,
        checksum: Option<&str>,
        id: &StepId,
    ) -> Result<fetch::Downloaded, BuildError> {
        let mut bytes = progress::BytesReporter::new(self.progress, id, None);
        let downloaded = fetch::download(url, dir, checksum, &mut |done, total| {
            bytes.set_total(total);
            bytes.report(done);
        })?;
        bytes.finish();
        Ok(downloaded)
    }

    pub(super) fn copy_step(
        &self,
        state: &StageState,
        step: &Step,
        copy: &CopyStep,
        normalized: &str,
        id: &StepId,
    ) -> Result<(Digest, CacheRecord, bool), BuildError> {
        // http(s) sources of ADD are downloaded; the rest come from the context.
        let (urls, local_sources): (Vec<String>, Vec<String>) = copy
            .sources
            .iter()
            .cloned()
            .partition(|s| copy.add && copy.from.is_none() && fetch::is_url(s));
        if let Some(git) = local_sources
            .iter()
            .find(|s| s.contains("://") || s.starts_with("git@"))
        {
            return Err(BuildError::Unsupported(format!(
                "ADD from a git repository or a non-http URL is not supported: {git}"
            )));
        }
        let checksum = match (&copy.checksum, urls.len()) {
            (None, _) => None,
            (Some(c), 1) => Some(fetch::parse_checksum(c)?),
            (Some(_), _) => {
                return Err(BuildError::Unsupported(format!(
                    "ADD --checksum needs exactly one http(s) source: {}",
                    copy.sources.join(" ")
                )));
            }
        };
        let local = CopyStep {
            sources: local_sources,
            ..copy.clone()
        };
        let copy = &local;
        let download_dir = if urls.is_empty() {
            None
        } else {
            Some(TreeGuard(self.store.snapshot_staging()?))
        };
        let mut downloads = Vec::new();
        let mut url_inputs = Vec::new();
        for url in &urls {
            match (&checksum, &download_dir) {
                // The checksum pins the content: no download unless the step runs.
                (Some(sum), _) => {
                    url_inputs.push(format!("url\0{}\0{sum}", fetch::file_name(url)));
                }
                (None, Some(dir)) => {
                    let d = self.download(url, &dir.0, None, id)?;
                    url_inputs.push(format!(
                        "url\0{}\0{}\0{}",
                        d.name,
                        d.digest,
                        d.mtime.unwrap_or(0)
                    ));
                    downloads.push(d);
                }
                (None, None) => {}
            }
        }
        let started = Instant::now();
        let parent = (!copy.link).then_some(&state.key);
        // Sources from another stage or image are pinned by that state's key;
        // sources from the context by their content.
        let inputs = match &copy.from {
            Some(from) => vec![format!("from\0{}", self.state_of(from)?.key)],
            None if copy.sources.is_empty() => {
                copy::key_inputs(&HashCache::in_memory(), Path::new("/"), &[], &copy.heredocs)?
            }
            None => {
                let (ctx, cache) = self.context()?;
                let selected = copy::select(ctx, copy)?;
                copy::key_inputs(cache, ctx.root(), &selected, &copy.heredocs)?
            }
        };
        let mut key_inputs = inputs;
        key_inputs.append(&mut url_inputs);
        key_inputs.push(format!(
            "workdir\0{}",
            state.config.config.working_dir.as_deref().unwrap_or("/")
        ));
        let key = key::step_key(parent, normalized, &step.build_args, &key_inputs);
        tracing::debug!(step = %step.text, key = %key, elapsed = ?started.elapsed(), "copy key computed");
        if let Some(record) = self.lookup(&key, id)? {
            return Ok((key, record, true));
        }
        if let (Some(sum), Some(dir)) = (&checksum, &download_dir) {
            for url in &urls {
                downloads.push(self.download(url, &dir.0, Some(sum), id)?);
            }
        }
        let fetched: Vec<copy::Selected> = downloads
            .iter()
            .map(|d| copy::Selected {
                // An absolute path ending in the file name: the entry reads it
                // wherever the other sources' root is, and is named `d.name`.
                path: d.path.to_string_lossy().into_owned(),
                wildcard: false,
                files: vec![crate::context::ContextFile {
                    rel: d.path.to_string_lossy().into_owned(),
                    kind: crate::context::FileKind::File,
                    mode: 0o600,
                    size: d.size,
                    mtime: d.mtime.unwrap_or(0),
                    mtime_nsec: 0,
                    ino: 0,
                    link: None,
                }],
            })
            .collect();

        let lowers = if copy.link {
            Vec::new()
        } else {
            self.lowers(&state.layers)?
        };
        let lower_view = view::View::mount(self.store, &lowers)?;
        let owner = match &copy.chown {
            Some(spec) => copy::resolve_chown(spec, Some(lower_view.root()))?,
            None => (0, 0),
        };
        let chmod = copy::parse_chmod(copy)?;
        let workdir = state
            .config
            .config
            .working_dir
            .clone()
            .unwrap_or_else(|| "/".into());
        let options = copy::EntryOptions {
            workdir: &workdir,
            lower: (!copy.link).then(|| lower_view.root()),
            owner,
            chmod,
            created_dir_mtime: self.options.source_date_epoch.unwrap_or(self.now),
        };
        let layer = match &copy.from {
            Some(from) => {
                let other = self.state_of(from)?;
                let other_lowers = self.lowers(&other.layers)?;
                let source_view = view::View::mount(self.store, &other_lowers)?;
                let mut selected = Vec::new();
                for source in &copy.sources {
                    // Symlinks along the literal part resolve inside the
                    // stage's filesystem; the wildcard part is matched below it.
                    let trimmed = source.trim_start_matches('/');
                    let literal = literal_prefix(source);
                    let resolved = view::resolve_in_root(source_view.root(), &literal, true)
                        .map_err(|e| {
                            BuildError::Unsupported(format!("resolving '{source}': {e}"))
                        })?;
                    let tree = Context::walk_under(source_view.root(), &resolved)?;
                    let mut single = copy.clone();
                    single.sources = vec![format!(
                        "{resolved}{}",
                        trimmed.get(literal.len()..).unwrap_or("")
                    )];
                    single.heredocs.clear();
                    let mut found = copy::select(&tree, &single).map_err(|e| match e {
                        copy::CopyError::Missing(_) => copy::CopyError::Missing(source.clone()),
                        other => other,
                    })?;
                    selected.append(&mut found);
                }
                let entries = copy::plan_entries(copy, &selected, source_view.root(), &options)?;
                self.layer_and_snapshot(entries, id)?
            }
            None => {
                let mut selected = if copy.sources.is_empty() {
                    Vec::new()
                } else {
                    let (ctx, _) = self.context()?;
                    copy::select(ctx, copy)?
                };
                let fetched_count = fetched.len();
                selected.extend(fetched);
                let root = self.options.context.clone();
                let mut unpacked = Vec::new();
                let entries = if copy.add {
                    add_entries(
                        self.store,
                        copy,
                        &selected,
                        fetched_count,
                        &root,
                        &options,
                        &mut unpacked,
                    )?
                } else {
                    copy::plan_entries(copy, &selected, &root, &options)?
                };
                let layer = self.layer_and_snapshot(entries, id);
                for dir in unpacked {
                    let _ = berth_store::tmp::remove_tree(&dir);
                }
                layer?
            }
        };
        drop(lower_view);
        tracing::debug!(step = %step.text, elapsed = ?started.elapsed(), bytes = layer.descriptor.size, "copy layer and snapshot written");
        let record = CacheRecord {
            layer: Some(layer),
            created: self.created(),
        };
        self.store.cache_store(&key, &record)?;
        Ok((key, record, false))
    }
}

/// The part of a source path before its first wildcard component.
fn literal_prefix(source: &str) -> String {
    let trimmed = source.trim_start_matches('/');
    let mut parts = Vec::new();
    for part in trimmed.split('/') {
        if part.contains(['*', '?', '[']) {
            break;
        }
        parts.push(part);
    }
    if parts.len() == trimmed.split('/').count() {
        trimmed.to_string()
    } else {
        parts.join("/")
    }
}

/// `ADD`: local tar archives (gzip, zstd or plain, detected by content) are
/// extracted into the destination; other sources are copied as `COPY` does.
fn add_entries(
    store: &Store,
    copy: &CopyStep,
    selected: &[copy::Selected],
    downloaded: usize,
    root: &Path,
    options: &copy::EntryOptions<'_>,
    unpacked: &mut Vec<PathBuf>,
) -> Result<Vec<berth_store::layer::Entry>, BuildError> {
    let mut plain = Vec::new();
    let mut entries = Vec::new();
    // Downloaded sources (the last `downloaded` ones) are never extracted.
    let local = selected.len().saturating_sub(downloaded);
    for (i, s) in selected.iter().enumerate() {
        let is_archive = i < local
            && s.files.len() == 1
            && s.files[0].kind == crate::context::FileKind::File
            && is_tar_archive(&root.join(&s.files[0].rel));
        if !is_archive {
            plain.push(s.clone());
            continue;
        }
        let staging = store.snapshot_staging()?;
        unpacked.push(staging.clone());
        let file = std::fs::File::open(root.join(&s.files[0].rel))
            .map_err(berth_store::io_err("opening", &root.join(&s.files[0].rel)))?;
        extract::unpack(std::io::BufReader::new(file), &staging, &s.path)?;
        let dest = metadata::resolve_path(options.workdir, &copy.dest);
        let dest_rel = dest.trim_start_matches('/');
        let scanned = berth_store::layer::scan::scan_tree(
            &staging,
            berth_store::layer::scan::TreeKind::Plain,
        )
        .map_err(|e| BuildError::Unsupported(crate::text::error_chain(&e)))?;
        for mut e in scanned {
            e.path = if dest_rel.is_empty() {
                e.path
            } else {
                format!("{dest_rel}/{}", e.path)
            };
            if let berth_store::layer::EntryKind::Hardlink(t) = &e.kind {
                e.kind = berth_store::layer::EntryKind::Hardlink(if dest_rel.is_empty() {
                    t.clone()
                } else {
                    format!("{dest_rel}/{t}")
                });
            }
            entries.push(e);
        }
    }
    let mut rest_step = copy.clone();
    rest_step.sources = plain.iter().map(|s| s.path.clone()).collect();
    let mut planned = if plain.is_empty() && copy.heredocs.is_empty() {
        Vec::new()
    } else {
        copy::plan_entries(&rest_step, &plain, root, options)?
    };
    planned.append(&mut entries);
    Ok(planned)
}

/// Whether a file is a tar archive, compressed or not, judged by its content.
fn is_tar_archive(path: &Path) -> bool {
    let Ok(file) = std::fs::File::open(path) else {
        return false;
    };
    let Ok(mut reader) = berth_store::layer::compress::decompress(std::io::BufReader::new(file))
    else {
        return false;
    };
    let mut header = [0u8; 512];
    let mut read = 0;
    while read < header.len() {
        match std::io::Read::read(&mut reader, &mut header[read..]) {
            Ok(0) | Err(_) => break,
            Ok(n) => read += n,
        }
    }
    read == 512 && &header[257..262] == b"ustar"
}

/// A staging directory removed when dropped.
struct TreeGuard(PathBuf);

impl Drop for TreeGuard {
    fn drop(&mut self) {
        let _ = berth_store::tmp::remove_tree(&self.0);
    }
}
