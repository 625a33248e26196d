//! Manifests and indexes: the four media types, the blobs they reference, and
//! platform selection.
//!
//! Manifests are kept as the exact bytes the registry or store served; this
//! module only reads them, so digests never change on the way through.

use berth_store::digest::Digest;
pub use berth_store::oci::{Descriptor, Platform};
use serde::Deserialize;

/// The OCI image manifest media type.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// The OCI image index media type.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Docker's image manifest (schema 2) media type.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker's manifest list media type.
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// The largest manifest accepted, as in the reference registry: anything larger
/// is refused before it is read whole.
pub const MAX_MANIFEST_SIZE: u64 = 4 * 1024 * 1024;

/// The `Accept` header value listing every manifest type this client reads.
pub const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
    application/vnd.oci.image.manifest.v1+json, \
    application/vnd.docker.distribution.manifest.list.v2+json, \
    application/vnd.docker.distribution.manifest.v2+json";

/// The annotation that names a manifest in an OCI layout's `index.json`.
pub const REF_NAME_ANNOTATION: &str = "org.opencontainers.image.ref.name";

/// What a manifest document turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Manifest {
    /// An image manifest (OCI or Docker schema2): a config and layers.
    Image {
        /// The image configuration blob.
        config: Box<Descriptor>,
        /// The layers, bottom first.
        layers: Vec<Descriptor>,
        /// The manifest this one refers to (OCI referrers), if any.
        subject: Option<Box<Descriptor>>,
    },
    /// An index or manifest list: one manifest per platform (or artifact).
    Index {
        /// The manifests it lists.
        manifests: Vec<Descriptor>,
    },
}

/// Why manifest bytes could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// Not JSON of the expected shape.
    #[error("malformed manifest {digest}")]
    Malformed {
        /// The digest of the bytes.
        digest: Digest,
        /// The JSON error.
        source: serde_json::Error,
    },
    /// Neither layers nor manifests.
    #[error("manifest {digest} has unsupported media type '{media_type}'")]
    Unsupported {
        /// The digest of the bytes.
        digest: Digest,
        /// The media type it declared or was served with.
        media_type: String,
    },
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawManifest {
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    config: Option<Descriptor>,
    #[serde(default)]
    layers: Option<Vec<Descriptor>>,
    #[serde(default)]
    manifests: Option<Vec<Descriptor>>,
    #[serde(default)]
    subject: Option<Descriptor>,
}

impl Manifest {
    /// Reads a manifest or index. `served_as` is the Content-Type or descriptor
    /// media type, used when the document does not declare its own.
    pub fn parse(bytes: &[u8], served_as: Option<&str>) -> Result<Manifest, ManifestError> {
        let raw: RawManifest =
            serde_json::from_slice(bytes).map_err(|source| ManifestError::Malformed {
                digest: Digest::of(bytes),
                source,
            })?;
        let media_type = raw
            .media_type
            .clone()
            .or_else(|| served_as.map(str::to_owned))
            .unwrap_or_default();
        match (raw.config, raw.layers, raw.manifests) {
            (Some(config), layers, None) => Ok(Manifest::Image {
                config: Box::new(config),
                layers: layers.unwrap_or_default(),
                subject: raw.subject.map(Box::new),
            }),
            (None, None, Some(manifests)) => Ok(Manifest::Index { manifests }),
            _ => Err(ManifestError::Unsupported {
                digest: Digest::of(bytes),
                media_type,
            }),
        }
    }

    /// The media type for a manifest body: the declared one, else guessed from
    /// its shape (OCI).
    pub fn media_type_of(bytes: &[u8]) -> Option<String> {
        let raw: RawManifest = serde_json::from_slice(bytes).ok()?;
        raw.media_type.or_else(|| {
            if raw.manifests.is_some() {
                Some(OCI_INDEX.to_owned())
            } else {
                Some(OCI_MANIFEST.to_owned())
            }
        })
    }

    /// The blobs an image manifest references (config first, then layers);
    /// empty for an index.
    pub fn blobs(&self) -> Vec<&Descriptor> {
        match self {
            Manifest::Image { config, layers, .. } => {
                std::iter::once(&**config).chain(layers.iter()).collect()
            }
            Manifest::Index { .. } => Vec::new(),
        }
    }

    /// The index entry to use for `platform`: the first whose platform matches.
    pub fn select_platform(&self, platform: &Platform) -> Option<&Descriptor> {
        match self {
            Manifest::Index { manifests } => manifests.iter().find(|entry| {
                entry
                    .platform
                    .as_ref()
                    .is_some_and(|candidate| platform.matches(candidate))
            }),
            Manifest::Image { .. } => None,
        }
    }
}

/// Whether a media type names an index or manifest list.
pub fn is_index(media_type: &str) -> bool {
    media_type == OCI_INDEX || media_type == DOCKER_MANIFEST_LIST
}

/// Whether a media type names a manifest or index (as opposed to a blob).
pub fn is_manifest(media_type: &str) -> bool {
    is_index(media_type) || media_type == OCI_MANIFEST || media_type == DOCKER_MANIFEST
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(os: &str, arch: &str, variant: Option<&str>) -> String {
        let variant = variant.map_or(String::new(), |v| format!(r#","variant":"{v}""#));
        format!(
            r#"{{"mediaType":"{OCI_MANIFEST}","digest":"{}","size":1,"platform":{{"os":"{os}","architecture":"{arch}"{variant}}}}}"#,
            Digest::of(format!("{os}{arch}").as_bytes())
        )
    }

    #[test]
    fn selects_platform_from_index() {
        let index = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[{},{},{},{}]}}"#,
            entry("linux", "amd64", None),
            entry("linux", "arm", Some("v6")),
            entry("linux", "arm", Some("v7")),
            entry("linux", "arm64", Some("v8")),
        );
        let manifest = Manifest::parse(index.as_bytes(), None).unwrap_or_else(|e| panic!("{e}"));
        let cases = [
            ("linux/amd64", Some("linuxamd64")),
            ("linux/arm/v7", Some("linuxarm")),
            ("linux/arm64", Some("linuxarm64")),
            ("linux/s390x", None),
            ("windows/amd64", None),
        ];
        for (wanted, expected) in cases {
            let platform = Platform::parse(wanted).unwrap_or_else(|| panic!("{wanted}"));
            let found = manifest
                .select_platform(&platform)
                .map(|d| d.digest.clone());
            assert_eq!(
                found,
                expected.map(|s| Digest::of(s.as_bytes())),
                "{wanted}"
            );
        }
        let v7 =
            manifest.select_platform(&Platform::parse("linux/arm/v7").unwrap_or_else(|| panic!()));
        assert_eq!(
            v7.and_then(|d| d.platform.as_ref()?.variant.clone()),
            Some("v7".into())
        );
    }

    #[test]
    fn reads_docker_schema2_and_lists_blobs() {
        let config = Digest::of(b"config");
        let layer = Digest::of(b"layer");
        let doc = format!(
            r#"{{"schemaVersion":2,"mediaType":"{DOCKER_MANIFEST}",
              "config":{{"mediaType":"application/vnd.docker.container.image.v1+json","size":6,"digest":"{config}"}},
              "layers":[{{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","size":5,"digest":"{layer}"}}]}}"#
        );
        let manifest = Manifest::parse(doc.as_bytes(), None).unwrap_or_else(|e| panic!("{e}"));
        let blobs: Vec<_> = manifest.blobs().iter().map(|d| d.digest.clone()).collect();
        assert_eq!(blobs, vec![config, layer]);
        assert_eq!(
            Manifest::media_type_of(doc.as_bytes()).as_deref(),
            Some(DOCKER_MANIFEST)
        );
    }

    #[test]
    fn media_types_are_oci_specs() {
        use oci_spec::image::{MediaType, ToDockerV2S2};
        let docker = |media_type: MediaType| {
            media_type
                .to_docker_v2s2()
                .map(str::to_owned)
                .unwrap_or_else(|_| panic!("no docker media type"))
        };
        assert_eq!(OCI_MANIFEST, MediaType::ImageManifest.as_ref());
        assert_eq!(OCI_INDEX, MediaType::ImageIndex.as_ref());
        assert_eq!(DOCKER_MANIFEST, docker(MediaType::ImageManifest));
        assert_eq!(DOCKER_MANIFEST_LIST, docker(MediaType::ImageIndex));
        let accepted: Vec<&str> = ACCEPT.split(", ").collect();
        assert_eq!(
            accepted,
            [
                OCI_INDEX,
                OCI_MANIFEST,
                DOCKER_MANIFEST_LIST,
                DOCKER_MANIFEST
            ]
        );
    }

    #[test]
    fn rejects_documents_that_are_not_manifests() {
        let err = Manifest::parse(b"not json", None).err();
        let message = err.as_ref().map(ToString::to_string).unwrap_or_default();
        assert_eq!(
            message,
            format!("malformed manifest {}", Digest::of(b"not json"))
        );
        // The JSON error is the source, for the caller to print after it.
        let cause = err
            .as_ref()
            .and_then(std::error::Error::source)
            .map(ToString::to_string);
        assert!(
            cause.is_some_and(|cause| cause.starts_with("expected ident")),
            "{err:?}"
        );
        assert!(Manifest::parse(br#"{"schemaVersion":1,"fsLayers":[]}"#, None).is_err());
    }
}
