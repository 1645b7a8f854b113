//! One way to read images whatever holds them: a registry or an OCI layout. Everything after
//! this (resolution, flattening, checks) reads bytes through a `Source` and never knows which.

use std::path::PathBuf;

use anyhow::Context;

use crate::error::Result;

use super::cache::BlobCache;
use super::layout::LayoutSource;
use super::manifest::{Descriptor, MAX_DOCUMENT};
use super::mirror::Endpoint;
use super::registry::RegistrySource;
use crate::digest::Digest;
use crate::reference::ImageRef;

pub enum Source {
    Registry(Box<RegistrySource>),
    Layout(LayoutSource),
}

/// A layer blob on disk: in the cache or in a layout.
pub struct BlobFile {
    pub path: PathBuf,
    pub descriptor: Descriptor,
    pub cached: bool,
    /// Hashed on its way into the cache by this run; anything else is verified as it is read.
    pub verified: bool,
}

impl Source {
    pub fn open(endpoint: &Endpoint) -> Result<Self> {
        Ok(match endpoint {
            Endpoint::Registry {
                host,
                repository,
                plain_http,
                timeouts,
            } => Source::Registry(Box::new(RegistrySource::new(
                host,
                repository,
                *plain_http,
                *timeouts,
            )?)),
            Endpoint::Layout { dir } => Source::Layout(LayoutSource::open(dir)?),
            Endpoint::Archive { kind, file } => {
                let unpacked = super::archive::unpack(*kind, file)?;
                let mut l = LayoutSource::open(&unpacked.layout())?;
                l.label = Some(format!("{}:{}", kind.prefix(), file.display()));
                l.keep = Some(std::sync::Arc::new(unpacked));
                Source::Layout(l)
            }
        })
    }

    /// Where the bytes come from, for messages.
    pub fn describe(&self) -> String {
        match self {
            Source::Registry(r) => format!("{}/{}", r.host, r.repository),
            Source::Layout(l) => l
                .label
                .clone()
                .unwrap_or_else(|| format!("oci:{}", l.dir.display())),
        }
    }

    /// The document the reference names (an index or a manifest) and its digest. A reference
    /// pinned by digest must get exactly those bytes.
    pub async fn top(&self, image: &ImageRef) -> Result<(Vec<u8>, Digest)> {
        let bytes = match self {
            Source::Registry(r) => r.manifest(&image.registry_reference()).await?,
            Source::Layout(l) => {
                let d = l.top(image.tag.as_deref(), image.digest.as_ref())?;
                l.document(&d.digest, Some(d.size))?
            }
        };
        if bytes.len() as u64 > MAX_DOCUMENT {
            return Err(anyhow::anyhow!(
                "{}: manifest larger than {MAX_DOCUMENT} bytes",
                self.describe()
            )
            .into());
        }
        let got = Digest::of(&bytes);
        if let Some(want) = &image.digest {
            if &got != want {
                return Err(crate::error::Error::integrity(format!(
                    "{}: manifest digest mismatch: asked for {want}, got {got}",
                    self.describe()
                )));
            }
        }
        Ok((bytes, got))
    }

    /// Every tag: the registry's tag list, or the ref names of a layout's index.
    pub async fn tags(&self) -> Result<Vec<String>> {
        match self {
            Source::Registry(r) => r.tags().await,
            Source::Layout(l) => Ok(l.tags()?),
        }
    }

    /// The manifest a tag names, or `None` when the source has no such tag (cosign's
    /// `sha256-<hex>.sig`, which most images lack).
    pub async fn tagged(&self, tag: &str) -> Result<Option<Vec<u8>>> {
        match self {
            Source::Registry(r) => r.manifest_if_any(tag).await,
            Source::Layout(l) => match l.top(Some(tag), None) {
                Ok(d) => Ok(Some(l.document(&d.digest, Some(d.size))?)),
                Err(_) => Ok(None),
            },
        }
    }

    /// The manifests that name `subject` as their subject: the registry's referrers (API, or
    /// the tag-schema fallback), or, in a layout, the index under the tag `sha256-<hex>`.
    pub async fn referrers(&self, subject: &Digest) -> Result<Vec<super::registry::Referrer>> {
        match self {
            Source::Registry(r) => r.referrers(subject).await,
            Source::Layout(_) => {
                let tag = format!("sha256-{}", subject.hex());
                let Some(bytes) = self.tagged(&tag).await? else {
                    return Ok(Vec::new());
                };
                #[derive(serde::Deserialize)]
                struct Index {
                    #[serde(default)]
                    manifests: Vec<super::registry::Referrer>,
                }
                let index: Index = serde_json::from_slice(&bytes)
                    .with_context(|| format!("{}: {tag} is not an image index", self.describe()))?;
                Ok(index.manifests)
            }
        }
    }

    /// A small blob (a signature payload) read whole, at most `cap` bytes, digest-checked.
    pub async fn small_blob(
        &self,
        desc: &Descriptor,
        cache: &BlobCache,
        cap: u64,
    ) -> Result<Vec<u8>> {
        if desc.size > cap {
            return Err(anyhow::anyhow!(
                "{}: blob {} is {} bytes, over the {cap}-byte limit",
                self.describe(),
                desc.digest,
                desc.size
            )
            .into());
        }
        let file = self.layer(desc, cache).await?;
        let bytes = crate::located::read_bounded(&file.path, cap)
            .with_context(|| format!("reading {}", file.path.display()))?;
        self.check_document(desc, bytes)
    }

    /// A manifest named by an index entry, checked against the entry's digest and size.
    pub async fn child(&self, desc: &Descriptor) -> Result<Vec<u8>> {
        let bytes = match self {
            Source::Registry(r) => r.manifest(&desc.digest.to_string()).await?,
            Source::Layout(l) => l.document(&desc.digest, None)?,
        };
        self.check_document(desc, bytes)
    }

    /// A config blob, read whole (configs are small and capped).
    pub async fn config(&self, desc: &Descriptor, cache: &BlobCache) -> Result<Vec<u8>> {
        if desc.size > MAX_DOCUMENT {
            return Err(anyhow::anyhow!(
                "{}: config {} is {} bytes, over the {MAX_DOCUMENT}-byte limit",
                self.describe(),
                desc.digest,
                desc.size
            )
            .into());
        }
        let bytes = match self {
            Source::Registry(r) => {
                let (p, _) = r.blob(desc, cache).await?;
                std::fs::read(&p).with_context(|| format!("reading {}", p.display()))?
            }
            Source::Layout(l) => l.document(&desc.digest, None)?,
        };
        let checked = self.check_document(desc, bytes);
        if checked.is_err() {
            cache.evict(&desc.digest);
        }
        checked
    }

    fn check_document(&self, desc: &Descriptor, bytes: Vec<u8>) -> Result<Vec<u8>> {
        let got = Digest::of(&bytes);
        if got != desc.digest || bytes.len() as u64 != desc.size {
            return Err(crate::error::Error::integrity(format!(
                "{}: {} {} does not match its descriptor (got {got}, {} bytes; expected {} bytes)",
                self.describe(),
                desc.media_type,
                desc.digest,
                bytes.len(),
                desc.size
            )));
        }
        Ok(bytes)
    }

    /// Makes a layer available on disk.
    pub async fn layer(&self, desc: &Descriptor, cache: &BlobCache) -> Result<BlobFile> {
        match self {
            Source::Registry(r) => {
                let (path, fetched) = r.blob(desc, cache).await?;
                Ok(BlobFile {
                    path,
                    descriptor: desc.clone(),
                    cached: true,
                    verified: fetched,
                })
            }
            Source::Layout(l) => {
                let path = l.blob_path(&desc.digest);
                if std::fs::symlink_metadata(&path).is_err() {
                    return Err(anyhow::anyhow!(
                        "{}: layer {} is missing from the layout",
                        self.describe(),
                        desc.digest
                    )
                    .into());
                }
                // A FIFO, device or symlink out of the layout is refused here, at once.
                l.open_file(&path)?;
                Ok(BlobFile {
                    path,
                    descriptor: desc.clone(),
                    cached: false,
                    verified: false,
                })
            }
        }
    }
}
