//! Resolution: from a reference to one image manifest, its config and its layers, choosing a
//! platform from an index. Every document is digest-checked on the way.

use anyhow::Context;

use crate::error::{Error, ErrorKind, Result};
use futures_util::StreamExt;

use super::cache::BlobCache;
use super::manifest::{self, Descriptor, ImageConfig, ImageManifest, Manifest};
use super::platform::Platform;
use super::source::{BlobFile, Source};
use crate::digest::Digest;
use crate::reference::ImageRef;

/// The raw documents as fetched, kept for evidence and re-checking.
#[derive(Clone, Debug, Default)]
pub struct RawDocuments {
    pub top: Vec<u8>,
    pub manifest: Vec<u8>,
    pub config: Vec<u8>,
}

/// An image resolved to one platform's manifest.
#[derive(Clone, Debug)]
pub struct Resolved {
    pub source: String,
    /// The digest the reference resolved to (the index's when it is an index).
    pub digest: Digest,
    /// The platforms an index lists (attestations left out); `None` for a single manifest.
    pub index_platforms: Option<Vec<Platform>>,
    pub manifest_digest: Digest,
    pub manifest: ImageManifest,
    pub config: ImageConfig,
    pub platform: Platform,
    pub raw: RawDocuments,
}

/// Why no manifest could be chosen: an image problem (the platform is not there) or a request
/// problem (an index, and no platform named).
#[derive(Debug, thiserror::Error)]
pub enum PlatformChoiceError {
    #[error("no {wanted} manifest in the index (it has {})", list(.available))]
    Missing {
        wanted: Platform,
        available: Vec<Platform>,
        digest: Digest,
    },
    #[error("the image is an index of {}; set `platform` in the spec or pass --platform", list(.0))]
    Ambiguous(Vec<Platform>),
}

/// A missing platform is the image's fault (its `platform` check fails); an ambiguous one the
/// request's.
impl From<PlatformChoiceError> for Error {
    fn from(e: PlatformChoiceError) -> Self {
        let kind = match &e {
            PlatformChoiceError::Missing { digest, .. } => ErrorKind::PlatformMissing {
                digest: digest.clone(),
            },
            PlatformChoiceError::Ambiguous(_) => ErrorKind::Usage,
        };
        Error::new(kind, e.to_string())
    }
}

fn list(p: &[Platform]) -> String {
    if p.is_empty() {
        return "no platforms".into();
    }
    p.iter()
        .map(|p| p.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

pub async fn resolve(
    source: &Source,
    image: &ImageRef,
    wanted: Option<&Platform>,
    cache: &BlobCache,
) -> Result<Resolved> {
    let (top, digest) = source.top(image).await?;
    let parsed =
        manifest::parse(&top, None).map_err(|e| anyhow::anyhow!("{}: {e}", source.describe()))?;
    let (index_platforms, manifest_digest, manifest_raw) = match parsed {
        Manifest::Image(_) => (None, digest.clone(), top.clone()),
        Manifest::Index(index) => {
            let entries: Vec<&Descriptor> = index
                .manifests
                .iter()
                .filter(|d| !manifest::is_attestation(d))
                .collect();
            let platforms: Vec<Platform> = entries
                .iter()
                .filter_map(|d| d.platform.as_ref().map(|p| p.platform()))
                .collect();
            let chosen = match wanted {
                Some(w) => entries
                    .iter()
                    .find(|d| {
                        d.platform
                            .as_ref()
                            .is_some_and(|p| p.platform().satisfies(w))
                    })
                    .copied()
                    .ok_or_else(|| PlatformChoiceError::Missing {
                        wanted: w.clone(),
                        available: platforms.clone(),
                        digest: digest.clone(),
                    })?,
                None if entries.len() == 1 => entries[0],
                None => return Err(PlatformChoiceError::Ambiguous(platforms).into()),
            };
            let raw = source.child(chosen).await?;
            (Some(platforms), chosen.digest.clone(), raw)
        }
    };
    let manifest = match manifest::parse(&manifest_raw, None)
        .map_err(|e| anyhow::anyhow!("{}: {e}", source.describe()))?
    {
        Manifest::Image(m) => m,
        Manifest::Index(_) => {
            return Err(anyhow::anyhow!(
                "{}: nested image indexes are not supported",
                source.describe()
            )
            .into())
        }
    };
    let config_raw = source.config(&manifest.config, cache).await?;
    let config: ImageConfig = serde_json::from_slice(&config_raw)
        .with_context(|| format!("{}: malformed image config", source.describe()))?;
    Ok(Resolved {
        source: source.describe(),
        digest,
        index_platforms,
        manifest_digest,
        platform: config.platform(),
        manifest,
        config,
        raw: RawDocuments {
            top,
            manifest: manifest_raw,
            config: config_raw,
        },
    })
}

/// Brings every layer of a resolved image onto disk, a few at a time, each yielded in the
/// manifest's order as soon as it and the layers before it are there. Each download is a task
/// of its own, so the blobs' SHA-256 runs on every worker thread. Refuses a layer media type
/// tdg cannot read before fetching anything.
pub fn fetch_layers(
    source: &std::sync::Arc<Source>,
    resolved: &Resolved,
    cache: &std::sync::Arc<BlobCache>,
) -> Result<impl futures_util::Stream<Item = Result<BlobFile>> + 'static> {
    for l in &resolved.manifest.layers {
        manifest::layer_compression(&l.media_type)
            .map_err(|e| anyhow::anyhow!("{}: layer {}: {e}", source.describe(), l.digest))?;
    }
    let (source, cache) = (source.clone(), cache.clone());
    let layers = resolved.manifest.layers.clone();
    Ok(futures_util::stream::iter(layers)
        .map(move |d| {
            let (source, cache) = (source.clone(), cache.clone());
            Task(tokio::spawn(async move { source.layer(&d, &cache).await }))
        })
        .buffered(4))
}

/// A spawned download, aborted when the stream it belongs to is dropped (a failure elsewhere
/// ends the pull): nothing goes on downloading in the background.
struct Task<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for Task<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl<T> std::future::Future for Task<Result<T>> {
    type Output = Result<T>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        std::pin::Pin::new(&mut self.0).poll(cx).map(|joined| {
            joined.unwrap_or_else(|e| Err(anyhow::anyhow!("a layer download stopped: {e}").into()))
        })
    }
}
