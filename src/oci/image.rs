//! Writing images: tar layers from a list of entries (deterministic headers) and
//! single-platform or multi-platform images into an OCI layout.

use std::collections::BTreeMap;
use std::io::Write;

use anyhow::Result;
use serde_json::json;

use super::layout::LayoutWriter;
use super::manifest::{self, Compression, Descriptor, PlatformJson};
use super::platform::Platform;
use crate::digest::Digest;

/// One tar entry to write.
#[derive(Clone, Debug)]
pub struct TarEntry {
    pub path: String,
    pub body: Body,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
}

#[derive(Clone, Debug)]
pub enum Body {
    File(Vec<u8>),
    Dir,
    Symlink(String),
    Hardlink(String),
    Char(u32, u32),
    Block(u32, u32),
    Fifo,
}

impl TarEntry {
    pub fn file(path: &str, content: impl Into<Vec<u8>>, mode: u32) -> Self {
        TarEntry {
            path: path.into(),
            body: Body::File(content.into()),
            mode,
            uid: 0,
            gid: 0,
        }
    }
    pub fn dir(path: &str, mode: u32) -> Self {
        TarEntry {
            path: path.into(),
            body: Body::Dir,
            mode,
            uid: 0,
            gid: 0,
        }
    }
    pub fn symlink(path: &str, target: &str) -> Self {
        TarEntry {
            path: path.into(),
            body: Body::Symlink(target.into()),
            mode: 0o777,
            uid: 0,
            gid: 0,
        }
    }
    pub fn hardlink(path: &str, target: &str) -> Self {
        TarEntry {
            path: path.into(),
            body: Body::Hardlink(target.into()),
            mode: 0o644,
            uid: 0,
            gid: 0,
        }
    }
    /// A whiteout marker deleting `path` from lower layers.
    pub fn whiteout(path: &str) -> Self {
        let (dir, name) = path.rsplit_once('/').map_or(("", path), |(d, n)| (d, n));
        let p = if dir.is_empty() {
            format!(".wh.{name}")
        } else {
            format!("{dir}/.wh.{name}")
        };
        TarEntry::file(&p, Vec::new(), 0o644)
    }
    /// An opaque marker hiding everything under `dir` from lower layers.
    pub fn opaque(dir: &str) -> Self {
        TarEntry::file(&format!("{dir}/.wh..wh..opq"), Vec::new(), 0o644)
    }
    pub fn owned(mut self, uid: u64, gid: u64) -> Self {
        self.uid = uid;
        self.gid = gid;
        self
    }
}

/// Serialises entries as a tar, in the order given, with a fixed mtime.
pub fn tar_bytes(entries: &[TarEntry], mtime: u64) -> Result<Vec<u8>> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_gnu();
        h.set_mode(e.mode);
        h.set_uid(e.uid);
        h.set_gid(e.gid);
        h.set_mtime(mtime);
        h.set_size(0);
        let path = e.path.clone();
        if path.split('/').any(|c| c == "..") {
            // The tar crate refuses such names; hostile fixtures need them, so write the
            // name field directly.
            append_raw_name(&mut b, &mut h, e)?;
            continue;
        }
        match &e.body {
            Body::File(data) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_size(data.len() as u64);
                b.append_data(&mut h, &path, data.as_slice())?;
                continue;
            }
            Body::Dir => h.set_entry_type(tar::EntryType::Directory),
            Body::Symlink(t) => {
                h.set_entry_type(tar::EntryType::Symlink);
                append_link_literal(&mut b, &mut h, &path, t)?;
                continue;
            }
            Body::Hardlink(t) => {
                h.set_entry_type(tar::EntryType::Link);
                append_link_literal(&mut b, &mut h, &path, t)?;
                continue;
            }
            Body::Char(ma, mi) | Body::Block(ma, mi) => {
                h.set_entry_type(if matches!(e.body, Body::Char(..)) {
                    tar::EntryType::Char
                } else {
                    tar::EntryType::Block
                });
                h.set_device_major(*ma)?;
                h.set_device_minor(*mi)?;
            }
            Body::Fifo => h.set_entry_type(tar::EntryType::Fifo),
        }
        let p = if matches!(e.body, Body::Dir) && !path.ends_with('/') {
            format!("{path}/")
        } else {
            path
        };
        b.append_data(&mut h, &p, std::io::empty())?;
    }
    Ok(b.into_inner()?)
}

/// A link whose target is written as given: `append_link` canonicalises it (`/` becomes
/// `//`, `a//b` becomes `a/b`), which changes what the image says. A target of 100 bytes or
/// more goes in a GNU long-link record first, as GNU tar writes it.
fn append_link_literal(
    b: &mut tar::Builder<Vec<u8>>,
    h: &mut tar::Header,
    path: &str,
    target: &str,
) -> Result<()> {
    if target.len() >= 100 {
        let mut long = tar::Header::new_gnu();
        long.as_old_mut().name[..13].copy_from_slice(b"././@LongLink");
        long.set_mode(0o644);
        long.set_entry_type(tar::EntryType::GNULongLink);
        long.set_size(target.len() as u64 + 1);
        long.set_cksum();
        b.append(&long, [target.as_bytes(), b"\0"].concat().as_slice())?;
    }
    h.set_link_name_literal(&target.as_bytes()[..target.len().min(99)])?;
    b.append_data(h, path, std::io::empty())?;
    Ok(())
}

fn append_raw_name(b: &mut tar::Builder<Vec<u8>>, h: &mut tar::Header, e: &TarEntry) -> Result<()> {
    let name = e.path.as_bytes();
    anyhow::ensure!(
        name.len() < 100,
        "raw tar names must be shorter than 100 bytes"
    );
    h.as_old_mut().name[..name.len()].copy_from_slice(name);
    let data: &[u8] = match &e.body {
        Body::File(d) => d,
        _ => anyhow::bail!("raw tar names are only written for files"),
    };
    h.set_entry_type(tar::EntryType::Regular);
    h.set_size(data.len() as u64);
    h.set_cksum();
    b.append(h, data)?;
    Ok(())
}

pub fn compress(tar: &[u8], c: Compression) -> Result<Vec<u8>> {
    Ok(match c {
        Compression::None => tar.to_vec(),
        Compression::Gzip => {
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            enc.write_all(tar)?;
            enc.finish()?
        }
        Compression::Zstd => zstd::encode_all(tar, 3)?,
    })
}

/// Which media types to write: OCI, or Docker v2 schema 2.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    Oci,
    Docker,
}

/// A layer ready to be written: its blob, media type and uncompressed digest.
pub struct Layer {
    pub blob: Vec<u8>,
    pub media_type: String,
    pub diff_id: Digest,
}

impl Layer {
    pub fn new(entries: &[TarEntry], c: Compression, flavor: Flavor) -> Result<Self> {
        let tar = tar_bytes(entries, 0)?;
        let media_type = match (flavor, c) {
            (Flavor::Oci, Compression::None) => manifest::OCI_LAYER_TAR,
            (Flavor::Oci, Compression::Gzip) => manifest::OCI_LAYER_GZIP,
            (Flavor::Oci, Compression::Zstd) => manifest::OCI_LAYER_ZSTD,
            (Flavor::Docker, Compression::Gzip) => manifest::DOCKER_LAYER_GZIP,
            (Flavor::Docker, Compression::None) => manifest::DOCKER_LAYER_TAR,
            (Flavor::Docker, Compression::Zstd) => manifest::DOCKER_LAYER_ZSTD,
        };
        Ok(Layer {
            diff_id: Digest::of(&tar),
            blob: compress(&tar, c)?,
            media_type: media_type.into(),
        })
    }
}

/// Writes one platform's image (config, layers, manifest) into the layout and returns the
/// manifest's descriptor; the caller tags it or puts it in an index.
pub fn write_image(
    out: &LayoutWriter,
    platform: &Platform,
    layers: &[Layer],
    labels: &BTreeMap<String, String>,
    flavor: Flavor,
) -> Result<Descriptor> {
    let config = json!({
        "architecture": platform.arch,
        "os": platform.os,
        "variant": platform.variant,
        "config": { "Labels": labels },
        "rootfs": { "type": "layers", "diff_ids": layers.iter().map(|l| l.diff_id.to_string()).collect::<Vec<_>>() },
        "history": [],
    });
    let mut config = config;
    if platform.variant.is_none() {
        config.as_object_mut().expect("object").remove("variant");
    }
    let config_bytes = serde_json::to_vec(&config)?;
    let (cd, cs) = out.write_blob(&config_bytes)?;
    let (manifest_type, config_type) = match flavor {
        Flavor::Oci => (manifest::OCI_MANIFEST, manifest::OCI_CONFIG),
        Flavor::Docker => (manifest::DOCKER_MANIFEST, manifest::DOCKER_CONFIG),
    };
    let mut layer_descs = Vec::new();
    for l in layers {
        let (d, s) = out.write_blob(&l.blob)?;
        layer_descs.push(json!({"mediaType": l.media_type, "digest": d.to_string(), "size": s}));
    }
    let m = json!({
        "schemaVersion": 2,
        "mediaType": manifest_type,
        "config": {"mediaType": config_type, "digest": cd.to_string(), "size": cs},
        "layers": layer_descs,
    });
    let bytes = serde_json::to_vec(&m)?;
    let (digest, size) = out.write_blob(&bytes)?;
    Ok(Descriptor {
        media_type: manifest_type.into(),
        digest,
        size,
        platform: Some(PlatformJson {
            os: platform.os.clone(),
            architecture: platform.arch.clone(),
            variant: platform.variant.clone(),
        }),
        annotations: BTreeMap::new(),
    })
}

/// The bytes of an index over the given manifests.
pub fn index_bytes(manifests: &[Descriptor], flavor: Flavor) -> Result<(String, Vec<u8>)> {
    let media_type = match flavor {
        Flavor::Oci => manifest::OCI_INDEX,
        Flavor::Docker => manifest::DOCKER_LIST,
    };
    let v = json!({"schemaVersion": 2, "mediaType": media_type, "manifests": manifests});
    Ok((media_type.to_string(), serde_json::to_vec(&v)?))
}

/// The bytes of a manifest stored in the layout, to tag it.
pub fn manifest_bytes(out: &LayoutWriter, d: &Descriptor) -> Result<Vec<u8>> {
    Ok(std::fs::read(
        out.dir().join("blobs/sha256").join(d.digest.hex()),
    )?)
}
