//! `history`: the steps that made an image, newest first, each with the
//! layer it added (or none), like `docker history`.

use super::LocalImage;
use crate::Digest;

/// One step of an image's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryRow {
    /// When the step ran (RFC 3339), if recorded.
    pub created: Option<String>,
    /// The instruction that made the step.
    pub created_by: String,
    /// The layer it added (its blob), or none for a metadata-only step.
    pub layer: Option<Digest>,
    /// The stored (compressed) size of that layer; 0 without one.
    pub size: u64,
    /// The step's comment.
    pub comment: String,
}

/// The image's steps, newest first. Steps are matched to layers in order:
/// every history entry that is not an empty layer consumes the next layer;
/// layers no entry accounts for get a row of their own.
pub fn history(image: &LocalImage) -> Vec<HistoryRow> {
    let mut layers = image.image.manifest.layers.iter();
    let mut rows = Vec::new();
    for entry in &image.image.config.history {
        let layer = if entry.empty_layer {
            None
        } else {
            layers.next()
        };
        rows.push(HistoryRow {
            created: entry.created.clone(),
            created_by: entry.created_by.clone().unwrap_or_default(),
            layer: layer.map(|l| l.digest.clone()),
            size: layer.map_or(0, |l| l.size),
            comment: entry.comment.clone().unwrap_or_default(),
        });
    }
    for layer in layers {
        rows.push(HistoryRow {
            created: None,
            created_by: String::new(),
            layer: Some(layer.digest.clone()),
            size: layer.size,
            comment: String::new(),
        });
    }
    rows.reverse();
    rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::StoredImage;
    use crate::oci::{
        Descriptor, History, ImageConfig, MEDIA_LAYER_GZIP, MEDIA_MANIFEST, Manifest,
    };

    fn layer(n: u8, size: u64) -> Descriptor {
        Descriptor {
            artifact_type: None,
            unknown: Default::default(),
            urls: None,
            media_type: MEDIA_LAYER_GZIP.into(),
            digest: Digest::of(&[n]),
            size,
            annotations: Default::default(),
            platform: None,
        }
    }

    fn step(created_by: &str, empty_layer: bool) -> History {
        History {
            created_by: Some(created_by.into()),
            empty_layer,
            ..Default::default()
        }
    }

    fn image(layers: Vec<Descriptor>, history: Vec<History>) -> LocalImage {
        let top = layer(0, 0);
        LocalImage {
            names: Vec::new(),
            top: Descriptor {
                media_type: MEDIA_MANIFEST.into(),
                ..top.clone()
            },
            image: StoredImage {
                descriptor: top.clone(),
                manifest: Manifest {
                    schema_version: 2,
                    media_type: None,
                    config: top,
                    layers,
                    annotations: Default::default(),
                },
                config: ImageConfig {
                    history,
                    ..Default::default()
                },
            },
        }
    }

    #[test]
    fn steps_take_layers_in_order_and_list_newest_first() {
        let rows = history(&image(
            vec![layer(1, 100), layer(2, 20)],
            vec![
                step("import", false),
                step("ENV A=1", true),
                step("RUN make", false),
                step("CMD [\"sh\"]", true),
            ],
        ));
        let summary: Vec<(&str, u64, bool)> = rows
            .iter()
            .map(|r| (r.created_by.as_str(), r.size, r.layer.is_some()))
            .collect();
        assert_eq!(
            summary,
            vec![
                ("CMD [\"sh\"]", 0, false),
                ("RUN make", 20, true),
                ("ENV A=1", 0, false),
                ("import", 100, true),
            ]
        );
    }

    #[test]
    fn layers_without_history_get_rows_of_their_own() {
        let rows = history(&image(vec![layer(1, 5), layer(2, 7)], Vec::new()));
        assert_eq!(rows.iter().map(|r| r.size).collect::<Vec<_>>(), vec![7, 5]);
    }
}
