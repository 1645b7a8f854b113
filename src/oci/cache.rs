//! A content-addressed blob cache (`<root>/blobs/sha256/<hex>`). Blobs are streamed into a
//! temporary file beside the store, hashed and counted on the way, and renamed into place only
//! when size and digest match; a mismatch leaves nothing behind.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, Result};
use futures_util::{Stream, StreamExt};

use crate::digest::{Digest, Hasher};

pub struct BlobCache {
    root: PathBuf,
    fetched_blobs: AtomicU64,
    fetched_bytes: AtomicU64,
}

/// What a run fetched over the network (blobs served from the cache are not counted).
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    serde::Serialize,
    serde::Deserialize,
    schemars::JsonSchema,
)]
pub struct FetchStats {
    pub blobs: u64,
    pub bytes: u64,
}

impl BlobCache {
    pub fn open(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        for sub in ["blobs/sha256", "tmp"] {
            fs::create_dir_all(root.join(sub)).with_context(|| {
                format!("creating cache directory {}", root.join(sub).display())
            })?;
        }
        // Junk a crash or a kill -9 left, which no live tdg holds.
        crate::temps::sweep(&root.join("tmp"));
        Ok(BlobCache {
            root,
            fetched_blobs: AtomicU64::new(0),
            fetched_bytes: AtomicU64::new(0),
        })
    }

    /// `TDG_CACHE`, else `<user cache dir>/tdg`.
    pub fn default_root() -> PathBuf {
        match std::env::var_os("TDG_CACHE") {
            Some(p) if !p.is_empty() => PathBuf::from(p),
            _ => dirs::cache_dir()
                .unwrap_or_else(std::env::temp_dir)
                .join("tdg"),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn path(&self, digest: &Digest) -> PathBuf {
        self.root.join("blobs/sha256").join(digest.hex())
    }

    /// A blob counts as cached when its file exists with the expected size; its digest is
    /// checked again by whoever reads it.
    pub fn has(&self, digest: &Digest, size: u64) -> bool {
        fs::metadata(self.path(digest)).is_ok_and(|m| m.is_file() && m.len() == size)
    }

    /// Removes a blob whose bytes failed verification on read.
    pub fn evict(&self, digest: &Digest) {
        let _ = fs::remove_file(self.path(digest));
    }

    pub fn stats(&self) -> FetchStats {
        FetchStats {
            blobs: self.fetched_blobs.load(Ordering::Relaxed),
            bytes: self.fetched_bytes.load(Ordering::Relaxed),
        }
    }

    /// Streams a blob into the cache, checking size and digest as it arrives. `what` names the
    /// blob in errors (e.g. `layer sha256:… of ghcr.io/x:y`).
    pub async fn ingest<S>(
        &self,
        digest: &Digest,
        size: u64,
        mut stream: S,
        what: &str,
    ) -> crate::error::Result<PathBuf>
    where
        S: Stream<Item = io::Result<bytes::Bytes>> + Unpin,
    {
        let final_path = self.path(digest);
        let bar = crate::progress::bytes(size, format!("{} {what}", digest.short()));
        // The bar goes away however the download ends.
        let _clear = ClearOnDrop(bar.clone());
        let (tmp, _held) = crate::temps::made(
            || {
                tempfile::Builder::new()
                    .prefix("ingest-")
                    .tempfile_in(self.root.join("tmp"))
            },
            |t| t.path(),
        )
        .context("creating a temporary file in the cache")?;
        let mut out = io::BufWriter::with_capacity(1 << 20, tmp);
        let mut hasher = Hasher::default();
        while let Some(chunk) = stream.next().await {
            // Stop at the first error. One that comes after every byte arrived (a connection
            // reset at the end) leaves the bytes to judge: do so, so that an integrity failure
            // always reads the same.
            let chunk = match chunk {
                Ok(c) => c,
                Err(e) if hasher.len() == size => {
                    let (got, _) = hasher.finish();
                    if &got != digest {
                        return Err(crate::error::Error::integrity(format!(
                            "{what}: digest mismatch: expected {digest}, got {got}"
                        )));
                    }
                    return Err(e)
                        .with_context(|| format!("{what}: download failed"))
                        .map_err(Into::into);
                }
                Err(e) => {
                    return Err(e)
                        .with_context(|| format!("{what}: download failed"))
                        .map_err(Into::into)
                }
            };
            hasher.update(&chunk);
            bar.inc(chunk.len() as u64);
            if hasher.len() > size {
                return Err(crate::error::Error::integrity(format!(
                    "{what}: registry sent more than the expected {size} bytes"
                )));
            }
            out.write_all(&chunk).context("writing to the cache")?;
        }
        let (got, len) = hasher.finish();
        if len != size {
            return Err(crate::error::Error::integrity(format!(
                "{what}: size mismatch: expected {size} bytes, got {len}"
            )));
        }
        if &got != digest {
            return Err(crate::error::Error::integrity(format!(
                "{what}: digest mismatch: expected {digest}, got {got}"
            )));
        }
        let tmp = out
            .into_inner()
            .map_err(|e| e.into_error())
            .context("flushing to the cache")?;
        tmp.persist(&final_path)
            .map_err(|e| e.error)
            .with_context(|| format!("storing {}", final_path.display()))?;
        self.fetched_blobs.fetch_add(1, Ordering::Relaxed);
        self.fetched_bytes.fetch_add(len, Ordering::Relaxed);
        Ok(final_path)
    }
}

struct ClearOnDrop(indicatif::ProgressBar);

impl Drop for ClearOnDrop {
    fn drop(&mut self) {
        self.0.finish_and_clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks(data: &'static [u8]) -> impl Stream<Item = io::Result<bytes::Bytes>> + Unpin {
        futures_util::stream::iter(data.chunks(3).map(|c| Ok(bytes::Bytes::from_static(c))))
    }

    #[tokio::test]
    async fn mismatch_leaves_nothing_in_the_cache() {
        let dir = tempfile::tempdir().unwrap();
        let cache = BlobCache::open(dir.path()).unwrap();
        let want = Digest::of(b"hello world");
        let err = cache
            .ingest(&want, 11, chunks(b"hello w0rld"), "blob")
            .await
            .unwrap_err();
        assert!(err.to_string().contains("digest mismatch"), "{err}");
        assert!(!cache.path(&want).exists());
        assert_eq!(fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);
        let err = cache
            .ingest(&want, 11, chunks(b"hello world!!"), "blob")
            .await
            .unwrap_err();
        assert!(err.to_string().contains("more than"), "{err}");
        let p = cache
            .ingest(&want, 11, chunks(b"hello world"), "blob")
            .await
            .unwrap();
        assert_eq!(fs::read(p).unwrap(), b"hello world");
        assert!(cache.has(&want, 11));
        assert_eq!(
            cache.stats(),
            FetchStats {
                blobs: 1,
                bytes: 11
            }
        );
    }
}
