//! OCI image layouts on disk (`oci-layout`, `index.json`, `blobs/sha256/…`): reading one as a
//! source, and writing one (fixtures, build output).

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde_json::json;

use super::manifest::{Descriptor, Index, MAX_DOCUMENT};
use crate::digest::{Digest, HashingWriter};

pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

pub struct LayoutSource {
    pub dir: PathBuf,
    /// How to name it in messages when it is not the user's directory (an unpacked archive).
    pub label: Option<String>,
    /// Keeps what the layout lives in (an unpacked archive's directory) alive while it is read.
    pub keep: Option<std::sync::Arc<dyn std::any::Any + Send + Sync>>,
}

impl LayoutSource {
    pub fn open(dir: &Path) -> Result<Self> {
        let marker = dir.join("oci-layout");
        let text = crate::located::read_capped(&marker, crate::limits::MAX_DOCUMENT).with_context(
            || {
                format!(
                    "{} is not an OCI image layout (no readable oci-layout file)",
                    dir.display()
                )
            },
        )?;
        let v: serde_json::Value = serde_json::from_str(&text)
            .with_context(|| format!("{}: malformed oci-layout file", marker.display()))?;
        if v.get("imageLayoutVersion").and_then(|v| v.as_str()) != Some("1.0.0") {
            bail!(
                "{}: unsupported imageLayoutVersion (expected 1.0.0)",
                marker.display()
            );
        }
        Ok(LayoutSource {
            dir: dir.to_path_buf(),
            label: None,
            keep: None,
        })
    }

    fn index(&self) -> Result<Index> {
        let p = self.dir.join("index.json");
        let bytes = self.read_capped(&p, MAX_DOCUMENT)?;
        serde_json::from_slice(&bytes)
            .with_context(|| format!("{}: malformed index.json", p.display()))
    }

    /// The tags `index.json` names (`org.opencontainers.image.ref.name`), in its order.
    pub fn tags(&self) -> Result<Vec<String>> {
        Ok(self
            .index()?
            .manifests
            .iter()
            .filter_map(|d| d.annotations.get(REF_NAME).cloned())
            .collect())
    }

    /// The top-level manifest for a tag (`org.opencontainers.image.ref.name`), a digest, or,
    /// with neither, the layout's only manifest.
    pub fn top(&self, tag: Option<&str>, digest: Option<&Digest>) -> Result<Descriptor> {
        let index = self.index()?;
        let name = |d: &Descriptor| d.annotations.get(REF_NAME).cloned();
        if let Some(digest) = digest {
            if let Some(d) = index.manifests.iter().find(|d| &d.digest == digest) {
                return Ok(d.clone());
            }
            bail!("{}: no manifest {digest} in index.json", self.dir.display());
        }
        match tag {
            Some(tag) => index
                .manifests
                .iter()
                .find(|d| name(d).is_some_and(|n| n == tag || n.ends_with(&format!(":{tag}"))))
                .cloned()
                .with_context(|| {
                    let tags: Vec<String> = index.manifests.iter().filter_map(name).collect();
                    format!(
                        "{}: no tag '{tag}' (tags: {})",
                        self.dir.display(),
                        if tags.is_empty() {
                            "none".into()
                        } else {
                            tags.join(", ")
                        }
                    )
                }),
            None if index.manifests.len() == 1 => Ok(index.manifests[0].clone()),
            None => bail!(
                "{}: the layout holds {} manifests; name one as oci:<dir>:<tag>",
                self.dir.display(),
                index.manifests.len()
            ),
        }
    }

    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.dir.join("blobs/sha256").join(digest.hex())
    }

    /// Reads a small blob (manifest, config) whole, checking its size and digest.
    pub fn document(&self, digest: &Digest, size: Option<u64>) -> Result<Vec<u8>> {
        let p = self.blob_path(digest);
        let bytes = self.read_capped(&p, MAX_DOCUMENT)?;
        if size.is_some_and(|s| s != bytes.len() as u64) || &Digest::of(&bytes) != digest {
            return Err(crate::error::Error::integrity(format!(
                "{}: blob {digest} does not match its digest or size",
                self.dir.display()
            ))
            .into());
        }
        Ok(bytes)
    }

    /// Opens a file of the layout for reading: without blocking (a FIFO would hang the read),
    /// and only a regular file, reached through no symlink that leaves the layout.
    pub fn open_file(&self, p: &Path) -> Result<fs::File> {
        let what = || format!("reading {}", p.display());
        if fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_symlink()) {
            let inside = match (p.canonicalize(), self.dir.canonicalize()) {
                (Ok(target), Ok(root)) => target.starts_with(root),
                _ => false,
            };
            if !inside {
                bail!(
                    "{}: a symlink out of the layout {}",
                    p.display(),
                    self.dir.display()
                );
            }
        }
        crate::located::open_regular(p).with_context(what)
    }

    fn read_capped(&self, p: &Path, cap: u64) -> Result<Vec<u8>> {
        read_capped_from(self.open_file(p)?, p, cap)
    }
}

fn read_capped_from(f: fs::File, p: &Path, cap: u64) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    f.take(cap + 1)
        .read_to_end(&mut buf)
        .with_context(|| format!("reading {}", p.display()))?;
    if buf.len() as u64 > cap {
        bail!(
            "{}: larger than the {cap}-byte limit for manifests and configs",
            p.display()
        );
    }
    Ok(buf)
}

/// Writes an OCI image layout. Blobs are content-addressed, so writing one twice is harmless.
pub struct LayoutWriter {
    dir: PathBuf,
    manifests: Vec<Descriptor>,
}

impl LayoutWriter {
    /// Opens `dir` for writing, creating it. An existing layout is added to, but nothing in
    /// it is trusted: its directories must be real ones (a symlinked `blobs/` would carry the
    /// writes elsewhere), files are replaced by rename, and a blob already there is kept only
    /// when its bytes hash to its name.
    pub fn create(dir: &Path) -> Result<Self> {
        fs::create_dir_all(dir.join("blobs/sha256"))
            .with_context(|| format!("creating {}", dir.display()))?;
        for d in [
            dir.to_path_buf(),
            dir.join("blobs"),
            dir.join("blobs/sha256"),
        ] {
            if fs::symlink_metadata(&d)?.file_type().is_symlink() {
                bail!(
                    "{} is a symlink; tdg writes layouts only into real directories",
                    d.display()
                );
            }
        }
        crate::located::write_replacing(
            &dir.join("oci-layout"),
            br#"{"imageLayoutVersion":"1.0.0"}"#,
        )
        .with_context(|| format!("writing {}", dir.join("oci-layout").display()))?;
        // Adding to an existing layout keeps what it holds.
        let index = dir.join("index.json");
        let manifests = match fs::symlink_metadata(&index) {
            Err(_) => Vec::new(),
            Ok(m) if !m.is_file() => bail!("{} is not a regular file", index.display()),
            Ok(_) => {
                let bytes = crate::located::read_bounded(&index, crate::limits::MAX_DOCUMENT)
                    .with_context(|| format!("reading {}", index.display()))?;
                serde_json::from_slice::<Index>(&bytes)
                    .with_context(|| format!("{}: malformed index.json", dir.display()))?
                    .manifests
            }
        };
        Ok(LayoutWriter {
            dir: dir.to_path_buf(),
            manifests,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn write_blob(&self, bytes: &[u8]) -> Result<(Digest, u64)> {
        let d = Digest::of(bytes);
        let p = self.dir.join("blobs/sha256").join(d.hex());
        if !holds(&p, &d) {
            crate::located::write_replacing(&p, bytes)
                .with_context(|| format!("writing {}", p.display()))?;
        }
        Ok((d, bytes.len() as u64))
    }

    /// Streams a blob from a reader into the layout.
    pub fn write_blob_from(&self, mut r: impl Read) -> Result<(Digest, u64)> {
        let tmp = tempfile::NamedTempFile::new_in(self.dir.join("blobs"))?;
        let mut w = HashingWriter::new(std::io::BufWriter::new(tmp));
        std::io::copy(&mut r, &mut w)?;
        w.flush()?;
        let (d, n) = w.hasher.finish();
        let tmp = w.inner.into_inner().map_err(|e| e.into_error())?;
        tmp.persist(self.dir.join("blobs/sha256").join(d.hex()))
            .map_err(|e| e.error)?;
        Ok((d, n))
    }

    /// Adds a top-level manifest or index to `index.json`, tagged when `tag` is given.
    pub fn add_manifest(
        &mut self,
        media_type: &str,
        bytes: &[u8],
        tag: Option<&str>,
    ) -> Result<Descriptor> {
        let (digest, size) = self.write_blob(bytes)?;
        let mut annotations = std::collections::BTreeMap::new();
        if let Some(t) = tag {
            annotations.insert(REF_NAME.to_string(), t.to_string());
        }
        let d = Descriptor {
            media_type: media_type.to_string(),
            digest,
            size,
            platform: None,
            annotations,
        };
        // A tag names one manifest: the new one replaces an older one with the same tag.
        if tag.is_some() {
            self.manifests
                .retain(|m| m.annotations.get(REF_NAME).map(String::as_str) != tag);
        }
        self.manifests.push(d.clone());
        let index = json!({
            "schemaVersion": 2,
            "mediaType": super::manifest::OCI_INDEX,
            "manifests": self.manifests,
        });
        let path = self.dir.join("index.json");
        crate::located::write_replacing(&path, &serde_json::to_vec(&index)?)
            .with_context(|| format!("writing {}", path.display()))?;
        Ok(d)
    }
}

/// Whether `p` is a regular file whose bytes hash to `d` (a blob a layout may keep).
fn holds(p: &Path, d: &Digest) -> bool {
    let Ok(m) = fs::symlink_metadata(p) else {
        return false;
    };
    if !m.is_file() {
        return false;
    }
    let Ok(f) = fs::File::open(p) else {
        return false;
    };
    let mut w = HashingWriter::new(std::io::sink());
    std::io::copy(&mut std::io::BufReader::new(f), &mut w).is_ok() && w.hasher.finish().0 == *d
}

#[cfg(test)]
mod writer_tests {
    use super::*;

    #[test]
    fn an_existing_layout_is_added_to_but_not_trusted() {
        // A planted corrupt blob was kept and planted symlinks were written through (issue 15).
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("out");
        let outside = tmp.path().join("outside");
        fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
        fs::write(&outside, "precious").unwrap();
        let d = Digest::of(b"{}");
        fs::write(dir.join("blobs/sha256").join(d.hex()), "corrupt").unwrap();
        std::os::unix::fs::symlink(&outside, dir.join("index.json")).unwrap();
        std::os::unix::fs::symlink(&outside, dir.join("oci-layout")).unwrap();
        let err = LayoutWriter::create(&dir)
            .err()
            .expect("a symlinked index.json");
        assert!(err.to_string().contains("not a regular file"), "{err:#}");
        fs::remove_file(dir.join("index.json")).unwrap();
        let mut w = LayoutWriter::create(&dir).unwrap();
        w.add_manifest(OCI_MANIFEST_TYPE, b"{}", Some("t")).unwrap();
        assert_eq!(fs::read_to_string(&outside).unwrap(), "precious");
        assert_eq!(
            fs::read(dir.join("blobs/sha256").join(d.hex())).unwrap(),
            b"{}"
        );
        assert!(fs::symlink_metadata(dir.join("oci-layout"))
            .unwrap()
            .is_file());
        LayoutSource::open(&dir).unwrap();
        // A symlinked blobs directory would carry every write elsewhere.
        let other = tmp.path().join("other");
        fs::create_dir_all(other.join("blobs")).unwrap();
        std::os::unix::fs::symlink(tmp.path().join("out/blobs"), other.join("blobs/sha256"))
            .unwrap();
        let err = LayoutWriter::create(&other)
            .err()
            .expect("a symlinked blobs/sha256");
        assert!(err.to_string().contains("is a symlink"), "{err:#}");
    }

    const OCI_MANIFEST_TYPE: &str = crate::oci::manifest::OCI_MANIFEST;
}
