//! Pushes (distribution-spec `spec.md`, "Pushing blobs" and "Pushing Manifests"): a blob is
//! checked for, then uploaded in one `POST` + `PUT` from its file, streamed; a manifest is
//! `PUT` by tag or digest. Pushes fetch push-scoped tokens as the registry's challenge asks.

use std::path::Path;
use std::time::Instant;

use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE, LOCATION};

use super::fault::{retry, Fault};
use super::{Access, Distribution};
use crate::digest::Digest;

impl Distribution {
    /// Whether the repository has the blob (`HEAD`; 404 is no).
    pub async fn has_blob(&self, digest: &Digest) -> Result<bool, Fault> {
        let url = self.url(&format!("blobs/{digest}"));
        let build = |c: &reqwest::Client| Ok(c.head(&url));
        let clock = (Instant::now(), self.timeouts.request);
        match retry(|| self.send(&build, Access::Push, clock)).await {
            Ok(_) => Ok(true),
            Err(f) if f.is_not_found() => Ok(false),
            Err(f) => Err(f),
        }
    }

    /// Uploads `path` as the blob `digest`: an upload session, then one `PUT` of the whole
    /// file. Started over from the file on a transient fault; blobs are content-addressed, so
    /// a repeated upload cannot store anything else.
    pub async fn upload(&self, digest: &Digest, path: &Path) -> Result<(), Fault> {
        let size = std::fs::metadata(path)
            .map_err(|e| Fault::Local(format!("{}: {e}", path.display())))?
            .len();
        let deadline = self.timeouts.blob(size);
        retry(|| async {
            let start = Instant::now();
            let session = self.url("blobs/uploads/");
            let build = |c: &reqwest::Client| Ok(c.post(&session).header(CONTENT_LENGTH, 0));
            let resp = self.send(&build, Access::Push, (start, deadline)).await?;
            let mut put = self.location(&resp)?;
            put.query_pairs_mut()
                .append_pair("digest", &digest.to_string());
            let build = |c: &reqwest::Client| {
                let file = std::fs::File::open(path)
                    .map_err(|e| Fault::Local(format!("{}: {e}", path.display())))?;
                let body = reqwest::Body::wrap_stream(file_stream(file));
                Ok(c.put(put.clone())
                    .header(CONTENT_TYPE, "application/octet-stream")
                    .header(CONTENT_LENGTH, size)
                    .body(body))
            };
            self.send(&build, Access::Push, (start, deadline)).await?;
            Ok(())
        })
        .await
    }

    /// Proves the credentials may push: an upload session for the empty blob, completed
    /// (content-addressed, so harmless).
    pub async fn preflight(&self) -> Result<(), Fault> {
        let empty = tempfile::NamedTempFile::new()
            .map_err(|e| Fault::Local(format!("a temporary file: {e}")))?;
        self.upload(&Digest::of(b""), empty.path()).await
    }

    /// `PUT`s a manifest or index under a tag or its digest.
    pub async fn put_manifest(
        &self,
        tag_or_digest: &str,
        bytes: &[u8],
        media_type: &str,
    ) -> Result<(), Fault> {
        let url = self.url(&format!("manifests/{tag_or_digest}"));
        let build = |c: &reqwest::Client| {
            Ok(c.put(&url)
                .header(CONTENT_TYPE, media_type)
                .body(bytes.to_vec()))
        };
        let clock = (Instant::now(), self.timeouts.request);
        retry(|| self.send(&build, Access::Push, clock)).await?;
        Ok(())
    }

    /// Where an upload session continues: its `Location`, relative to the registry.
    fn location(&self, resp: &reqwest::Response) -> Result<reqwest::Url, Fault> {
        let loc = resp
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| Fault::Protocol("the upload session has no Location".into()))?;
        reqwest::Url::parse(&self.base)
            .and_then(|b| b.join(loc))
            .map_err(|e| Fault::Protocol(format!("the upload Location {loc:?}: {e}")))
    }
}

/// A file as a stream of chunks, for uploads that must not hold the blob in memory.
fn file_stream(
    file: std::fs::File,
) -> impl futures_util::Stream<Item = std::io::Result<bytes::Bytes>> + Send + 'static {
    futures_util::stream::try_unfold(tokio::fs::File::from_std(file), |mut f| async move {
        use tokio::io::AsyncReadExt;
        let mut buf = vec![0u8; 1 << 20];
        let n = f.read(&mut buf).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.truncate(n);
        Ok(Some((bytes::Bytes::from(buf), f)))
    })
}
