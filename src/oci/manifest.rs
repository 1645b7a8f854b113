//! The manifest, index and config documents tdg reads: OCI image-spec v1 and Docker v2 schema 2.
//! Parsed leniently for fields tdg does not use, strictly for the ones it does.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::platform::Platform;
use crate::digest::Digest;
use crate::error::Reason;

pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
pub const DOCKER_LAYER_TAR: &str = "application/vnd.docker.image.rootfs.diff.tar";
pub const DOCKER_LAYER_ZSTD: &str = "application/vnd.docker.image.rootfs.diff.tar.zstd";

/// Every manifest media type tdg accepts, sent as `Accept` to registries.
pub const ACCEPTED: &[&str] = &[OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST];

/// Manifests and configs larger than this are refused (distribution's own limit is 4 MiB).
pub use crate::limits::MAX_DOCUMENT;

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    #[serde(deserialize_with = "de_digest", serialize_with = "ser_display")]
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<PlatformJson>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct PlatformJson {
    pub os: String,
    pub architecture: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl PlatformJson {
    pub fn platform(&self) -> Platform {
        Platform::new(&self.os, &self.architecture, self.variant.as_deref())
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    pub schema_version: u32,
    pub manifests: Vec<Descriptor>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageManifest {
    pub schema_version: u32,
    /// OCI 1.1: what kind of artifact this manifest is (else its config's media type says).
    #[serde(default)]
    pub artifact_type: Option<String>,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

#[derive(Clone, Debug, Deserialize, Default)]
pub struct ImageConfig {
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(default)]
    pub variant: Option<String>,
    #[serde(default)]
    pub config: Option<ContainerConfig>,
    #[serde(default)]
    pub rootfs: Option<RootFs>,
}

#[derive(Clone, Debug, Deserialize, Default)]
pub struct ContainerConfig {
    #[serde(rename = "Labels", default)]
    pub labels: Option<BTreeMap<String, String>>,
}

#[derive(Clone, Debug, Deserialize, Default)]
pub struct RootFs {
    #[serde(default)]
    pub diff_ids: Vec<String>,
}

impl ImageConfig {
    pub fn platform(&self) -> Platform {
        Platform::new(&self.os, &self.architecture, self.variant.as_deref())
    }
    pub fn labels(&self) -> BTreeMap<String, String> {
        self.config
            .as_ref()
            .and_then(|c| c.labels.clone())
            .unwrap_or_default()
    }
}

/// A parsed top-level document. (A few per run: the variants' sizes do not matter.)
#[derive(Clone, Debug)]
#[allow(clippy::large_enum_variant)]
pub enum Manifest {
    Index(Index),
    Image(ImageManifest),
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Probe {
    #[serde(default)]
    schema_version: Option<u32>,
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    manifests: Option<serde::de::IgnoredAny>,
}

/// Parses a manifest or index. The `mediaType` field wins over the transport's content type;
/// OCI documents may omit it, in which case the shape (`manifests` or `layers`) decides.
pub fn parse(bytes: &[u8], content_type: Option<&str>) -> Result<Manifest, Reason> {
    let probe: Probe = serde_json::from_slice(bytes)
        .map_err(|e| Reason(format!("manifest is not valid JSON: {e}")))?;
    if probe.schema_version != Some(2) {
        return Err(format!(
            "unsupported manifest schemaVersion {:?} (Docker schema 1 is not supported; only schema 2 and OCI)",
            probe.schema_version
        ).into());
    }
    let media_type = probe.media_type.as_deref().or(content_type).unwrap_or("");
    let is_index = match media_type {
        OCI_INDEX | DOCKER_LIST => true,
        OCI_MANIFEST | DOCKER_MANIFEST => false,
        "" | "application/json" | "application/octet-stream" => probe.manifests.is_some(),
        other => return Err(format!("unsupported manifest media type '{other}'").into()),
    };
    if is_index {
        serde_json::from_slice(bytes)
            .map(Manifest::Index)
            .map_err(|e| Reason(format!("malformed image index: {e}")))
    } else {
        serde_json::from_slice(bytes)
            .map(Manifest::Image)
            .map_err(|e| Reason(format!("malformed image manifest: {e}")))
    }
}

/// How a layer's bytes are compressed, from its media type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

pub fn layer_compression(media_type: &str) -> Result<Compression, Reason> {
    let base = media_type.replace(".nondistributable", "");
    match base.as_str() {
        OCI_LAYER_TAR | DOCKER_LAYER_TAR => Ok(Compression::None),
        OCI_LAYER_GZIP
        | DOCKER_LAYER_GZIP
        | "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip" => Ok(Compression::Gzip),
        OCI_LAYER_ZSTD | DOCKER_LAYER_ZSTD => Ok(Compression::Zstd),
        other => Err(format!("unsupported layer media type '{other}'").into()),
    }
}

fn de_digest<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Digest, D::Error> {
    let s = String::deserialize(d)?;
    s.parse().map_err(serde::de::Error::custom)
}

fn ser_display<S: serde::Serializer>(v: &Digest, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

/// Whether an index entry is a build attestation rather than a runnable image (BuildKit writes
/// these as `unknown/unknown` with a reference-type annotation); they are not platforms.
pub fn is_attestation(d: &Descriptor) -> bool {
    d.annotations
        .get("vnd.docker.reference.type")
        .is_some_and(|t| t == "attestation-manifest")
        || d.platform
            .as_ref()
            .is_some_and(|p| p.os == "unknown" && p.architecture == "unknown")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_index_without_media_type() {
        let idx = br#"{"schemaVersion":2,"manifests":[]}"#;
        assert!(matches!(parse(idx, None).unwrap(), Manifest::Index(_)));
        let m = format!(
            r#"{{"schemaVersion":2,"config":{{"mediaType":"{OCI_CONFIG}","digest":"sha256:{}","size":2}},"layers":[]}}"#,
            "a".repeat(64)
        );
        assert!(matches!(
            parse(m.as_bytes(), None).unwrap(),
            Manifest::Image(_)
        ));
    }

    #[test]
    fn rejects_schema1_and_unknown_types() {
        assert!(parse(br#"{"schemaVersion":1,"fsLayers":[]}"#, None)
            .unwrap_err()
            .contains("schema 1"));
        assert!(
            parse(br#"{"schemaVersion":2,"mediaType":"text/plain"}"#, None)
                .unwrap_err()
                .contains("unsupported")
        );
        assert!(layer_compression("application/vnd.oci.image.layer.v1.tar+bzip2").is_err());
        assert_eq!(
            layer_compression("application/vnd.oci.image.layer.nondistributable.v1.tar+gzip")
                .unwrap(),
            Compression::Gzip
        );
    }
}
