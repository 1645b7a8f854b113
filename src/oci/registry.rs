//! Reading from and writing to one repository of a registry, over the distribution API
//! (`distribution`: every body capped, every request with a deadline). tdg checks every byte
//! it reads itself: a blob's digest and size on its way into the cache, documents by their
//! callers.

use std::path::PathBuf;

use crate::error::{Error, ErrorKind, Result};

use super::cache::BlobCache;
use super::distribution::{Distribution, Fault};
use super::manifest::{self, Descriptor, ACCEPTED, MAX_DOCUMENT};
use crate::digest::Digest;

pub struct RegistrySource {
    api: Distribution,
    pub host: String,
    pub repository: String,
}

/// Tags asked for per page, and the most tdg lists (memory stays bounded).
const TAGS_PAGE: usize = 1000;
pub const MAX_TAGS: usize = 1_000_000;

/// A blob's download is tried this often when the connection breaks mid-body.
const ATTEMPTS: u32 = 3;
const BACKOFF: std::time::Duration = std::time::Duration::from_millis(150);

/// An entry of a referrers index, kept whole: an index rewritten for the referrers tag schema
/// must carry every field of what it lists.
#[derive(Clone, Debug, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Referrer {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    #[serde(flatten)]
    pub rest: serde_json::Map<String, serde_json::Value>,
}

impl RegistrySource {
    pub fn new(
        host: &str,
        repository: &str,
        plain_http: bool,
        timeouts: super::distribution::Timeouts,
    ) -> Result<Self> {
        let auth = super::auth::for_host(host)?;
        Ok(RegistrySource {
            api: Distribution::new(host, repository, plain_http, auth, timeouts)?,
            host: host.to_string(),
            repository: repository.to_string(),
        })
    }

    async fn get_manifest(&self, tag_or_digest: &str) -> Result<Vec<u8>, Fault> {
        let path = format!("manifests/{tag_or_digest}");
        self.api
            .document(&path, ACCEPTED, MAX_DOCUMENT, "manifest")
            .await
    }

    /// Fetches a manifest or index by tag or digest, at most [`MAX_DOCUMENT`] bytes. Returns
    /// its bytes; the caller hashes them.
    pub async fn manifest(&self, tag_or_digest: &str) -> Result<Vec<u8>> {
        self.get_manifest(tag_or_digest).await.map_err(|f| {
            let doing = format!("fetching manifest {}:{tag_or_digest}", self.repository);
            self.api.error(&doing, &f)
        })
    }

    /// A manifest by tag or digest, or `None` when the registry says it is unknown (a tag not
    /// pushed yet, a repository not there: distribution answers 404 for both).
    pub async fn manifest_if_any(&self, tag_or_digest: &str) -> Result<Option<Vec<u8>>> {
        match self.get_manifest(tag_or_digest).await {
            Ok(bytes) => Ok(Some(bytes)),
            Err(f) if f.is_not_found() => Ok(None),
            Err(f) => {
                let doing = format!("looking up {}:{tag_or_digest}", self.repository);
                Err(self.api.error(&doing, &f))
            }
        }
    }

    /// Every tag of the repository, in the order the registry lists them, page by page. At
    /// most [`MAX_TAGS`] tags, and every page adds some: a registry that pages forever ends in
    /// an error.
    pub async fn tags(&self) -> Result<Vec<String>> {
        #[derive(serde::Deserialize)]
        struct Page {
            #[serde(default)]
            tags: Option<Vec<String>>,
        }
        let doing = format!("listing the tags of {}", self.repository);
        let mut path = format!("tags/list?n={TAGS_PAGE}");
        let mut all = Vec::new();
        loop {
            let (body, next) = self
                .api
                .tags_page(&path, MAX_DOCUMENT)
                .await
                .map_err(|f| self.api.error(&doing, &f))?;
            let page: Page = serde_json::from_slice(&body).map_err(|e| {
                Error::new(
                    ErrorKind::Registry {
                        host: self.host.clone(),
                    },
                    format!("registry {}: {doing}: not a tag list: {e}", self.host),
                )
            })?;
            let tags = page.tags.unwrap_or_default();
            // A page that adds nothing yet names another would let a registry page forever.
            if tags.is_empty() && next.is_some() {
                return Err(Error::new(
                    ErrorKind::Registry {
                        host: self.host.clone(),
                    },
                    format!(
                        "registry {}: {doing}: an empty page names a next one",
                        self.host
                    ),
                ));
            }
            all.extend(tags);
            if all.len() > MAX_TAGS {
                return Err(Error::new(
                    ErrorKind::Registry {
                        host: self.host.clone(),
                    },
                    format!("registry {}: {doing}: more than {MAX_TAGS} tags", self.host),
                ));
            }
            match next {
                Some(n) if n != path => path = n,
                _ => return Ok(all),
            }
        }
    }

    /// Downloads a blob into the cache unless it is already there. Returns its path and
    /// whether this call fetched (and so verified) it.
    pub async fn blob(&self, desc: &Descriptor, cache: &BlobCache) -> Result<(PathBuf, bool)> {
        if cache.has(&desc.digest, desc.size) {
            return Ok((cache.path(&desc.digest), false));
        }
        let what = format!("blob {} of {}/{}", desc.digest, self.host, self.repository);
        let digest = desc.digest.to_string();
        let mut attempt = 1;
        loop {
            let stream = self
                .api
                .blob(&digest, desc.size)
                .await
                .map_err(|f| self.api.error(&format!("fetching {what}"), &f))?;
            match cache.ingest(&desc.digest, desc.size, stream, &what).await {
                Ok(path) => return Ok((path, true)),
                // A connection cut mid-blob is fetched again; bad bytes never are.
                Err(e) if attempt < ATTEMPTS && !e.is_integrity() => {
                    attempt += 1;
                    tokio::time::sleep(BACKOFF * attempt).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Proves the credentials may push to this repository, before anything is built: the
    /// empty blob (content-addressed, so harmless) is uploaded, which needs push access.
    pub async fn preflight_push(&self) -> Result<()> {
        self.api.preflight().await.map_err(|f| {
            // The token hint only when the registry answered and refused: a DNS or connect
            // failure is the network's, whatever the token may do.
            let hint = if self.host == "ghcr.io" && f.is_auth() {
                " (a GitHub token needs packages:write)"
            } else {
                ""
            };
            let err = self
                .api
                .error(&format!("may not push to {}{hint}", self.repository), &f);
            err.context("push preflight, before any input is pulled")
        })
    }

    /// Uploads a blob from a file unless the registry has it already.
    pub async fn push_blob(&self, digest: &Digest, path: &std::path::Path) -> Result<()> {
        let have = self
            .api
            .has_blob(digest)
            .await
            .map_err(|f| self.api.error(&format!("checking blob {digest}"), &f))?;
        if have {
            return Ok(());
        }
        self.api
            .upload(digest, path)
            .await
            .map_err(|f| self.api.error(&format!("uploading blob {digest}"), &f))
    }

    pub async fn push_manifest(
        &self,
        tag_or_digest: &str,
        bytes: Vec<u8>,
        media_type: &str,
    ) -> Result<()> {
        self.api
            .put_manifest(tag_or_digest, &bytes, media_type)
            .await
            .map_err(|f| {
                let doing = format!("pushing manifest {}:{tag_or_digest}", self.repository);
                self.api.error(&doing, &f)
            })
    }

    /// The manifests that name `subject` as their subject (signatures, SBOMs, attestations):
    /// the referrers API, or the referrers tag schema (`sha256-<hex>`) where the registry has
    /// no API (a 404), as the distribution spec says a client must fall back. No index under
    /// that tag is no referrers.
    pub async fn referrers(&self, subject: &Digest) -> Result<Vec<Referrer>> {
        let doing = format!("listing referrers of {subject}");
        let api = self
            .api
            .document(
                &format!("referrers/{subject}"),
                &[manifest::OCI_INDEX],
                MAX_DOCUMENT,
                "referrers index",
            )
            .await;
        let bytes = match api {
            Ok(b) => b,
            Err(f) if f.is_not_found() => {
                let tag = format!("sha256-{}", subject.hex());
                match self.manifest_if_any(&tag).await? {
                    Some(b) => b,
                    None => return Ok(Vec::new()),
                }
            }
            Err(f) => return Err(self.api.error(&doing, &f)),
        };
        #[derive(serde::Deserialize)]
        struct Index {
            #[serde(default)]
            manifests: Vec<Referrer>,
        }
        let index: Index = serde_json::from_slice(&bytes).map_err(|e| {
            Error::new(
                ErrorKind::Registry {
                    host: self.host.clone(),
                },
                format!("registry {}: {doing}: not an image index: {e}", self.host),
            )
        })?;
        Ok(index.manifests)
    }
}
