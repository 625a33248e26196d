//! A filesystem step's layer: its cache record (the local store first, then
//! the imported `--cache-from` records), writing a new layer blob together
//! with its snapshot, and the snapshots and blobs of the layers below it.

use super::schedule::Build;
use super::{BuildError, Event, StepId, progress};
use crate::cache::{CacheRecord, CacheStore, LayerRecord};
use berth_store::Digest;
use berth_store::layer::{WriteOptions, extract};
use berth_store::oci::Descriptor;
use std::path::PathBuf;

impl Build<'_> {
    pub(super) fn write_options(&self) -> WriteOptions {
        WriteOptions {
            compression: self.options.compression,
            source_date_epoch: self.options.source_date_epoch,
        }
    }

    pub(super) fn lookup(
        &self,
        key: &Digest,
        id: &StepId,
    ) -> Result<Option<CacheRecord>, BuildError> {
        if self.options.no_cache {
            return Ok(None);
        }
        let mut hit = self.store.cache_lookup(key)?;
        if hit.is_none()
            && let Some(record) = self.imported.and_then(|i| i.lookup(key))
        {
            // Kept locally too: the next build finds it once the blob is here.
            self.store.cache_store(key, &record)?;
            tracing::debug!(%key, "step found in the imported build cache");
            hit = Some(record);
        }
        if hit.is_some() {
            self.progress.event(Event::StepCached { id: id.clone() });
        }
        Ok(hit)
    }

    /// Fetches the blobs of `layers` the store lacks from the imported cache.
    pub(super) fn fetch_missing(&self, layers: &[LayerRecord]) -> Result<(), BuildError> {
        let missing: Vec<Descriptor> = layers
            .iter()
            .filter(|l| !self.store.blobs().contains(&l.descriptor.digest))
            .map(|l| l.descriptor.clone())
            .collect();
        match self.imported {
            Some(imported) if !missing.is_empty() => imported
                .fetch_blobs(self.store, &missing)
                .map_err(BuildError::CacheBlob),
            _ => Ok(()),
        }
    }

    /// Writes a layer blob from `entries` and, at the same time, its snapshot
    /// straight from the same sources (no second pass through the blob).
    pub(super) fn layer_and_snapshot(
        &self,
        entries: Vec<berth_store::layer::Entry>,
        id: &StepId,
    ) -> Result<LayerRecord, BuildError> {
        let ordered = berth_store::layer::entry::canonical_order(entries);
        let total: u64 = ordered.iter().map(|e| e.content_size()).sum();
        let mut bytes = progress::BytesReporter::new(self.progress, id, Some(total));
        let staging = self.store.snapshot_staging()?;
        let epoch = self.options.source_date_epoch;
        let (layer, snapshot) = std::thread::scope(|scope| {
            let snapshot = scope
                .spawn(|| berth_store::layer::materialize::materialize(&ordered, &staging, epoch));
            let layer = berth_store::layer::write::write_layer_reporting(
                self.store.blobs(),
                ordered.clone(),
                self.write_options(),
                &mut |done| bytes.report(done),
            );
            bytes.finish();
            (layer, snapshot.join())
        });
        let layer = match layer {
            Ok(layer) => layer,
            Err(e) => {
                let _ = berth_store::tmp::remove_tree(&staging);
                return Err(e.into());
            }
        };
        match snapshot {
            Ok(Ok(())) => {
                self.store.commit_snapshot(&staging, &layer.diff_id)?;
            }
            other => {
                // The blob is good; unpack it instead.
                tracing::warn!(error = ?other.map_err(|_| "panicked"), "writing a snapshot directly failed; unpacking the layer");
                let _ = berth_store::tmp::remove_tree(&staging);
                extract::ensure_snapshot(self.store, &layer.descriptor.digest, &layer.diff_id)?;
            }
        }
        Ok(layer)
    }

    /// The snapshots of `layers`, top first, unpacking any that are missing.
    pub(super) fn lowers(&self, layers: &[LayerRecord]) -> Result<Vec<PathBuf>, BuildError> {
        let unpacked = |l: &&LayerRecord| self.store.has_snapshot(&l.diff_id);
        let needed: Vec<LayerRecord> = layers.iter().filter(|l| !unpacked(l)).cloned().collect();
        self.fetch_missing(&needed)?;
        let mut out = Vec::with_capacity(layers.len());
        for l in layers.iter().rev() {
            out.push(extract::ensure_snapshot(
                self.store,
                &l.descriptor.digest,
                &l.diff_id,
            )?);
        }
        Ok(out)
    }
}
