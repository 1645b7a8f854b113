//! Image archives, in skopeo's spelling: `oci-archive:FILE[:TAG]` (a tarred OCI layout) and
//! `docker-archive:FILE[:REF]` (`docker save`: `manifest.json`, configs and layer tars). Each is
//! unpacked into a held temporary directory as an OCI layout, and read from there like any
//! layout: every blob is digest-checked as it is read. Only regular files at clean paths are
//! taken out of the archive, with the same tar caps as layers.

use std::fs::{self, File};
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Deserialize;
use serde_json::json;

use super::layout::LayoutWriter;
use super::manifest;
use super::tarext::{self, Extensions};

/// Which archive format: defined beside the reference syntax that names it.
pub use crate::reference::ArchiveKind as Kind;

/// An archive unpacked as an OCI layout; the directory lives as long as this does.
pub struct Unpacked {
    pub dir: crate::temps::Dir,
}

impl Unpacked {
    pub fn layout(&self) -> PathBuf {
        self.dir.path().join("layout")
    }
}

/// Where archives are unpacked: `<temp>/tdg-archives-<uid>`, this user's own directory, so
/// what a crash left there can be swept at the next start as the cache's `tmp/` is. A path
/// there that is not a directory of ours (a planted symlink) is not used: the system temp
/// directory is, unswept.
fn scratch() -> PathBuf {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    // SAFETY: geteuid has no preconditions.
    let uid = unsafe { libc::geteuid() };
    let dir = std::env::temp_dir().join(format!("tdg-archives-{uid}"));
    let _ = fs::DirBuilder::new().mode(0o700).create(&dir);
    match fs::symlink_metadata(&dir) {
        Ok(m) if m.is_dir() && m.uid() == uid => {
            crate::temps::sweep(&dir);
            dir
        }
        _ => std::env::temp_dir(),
    }
}

pub fn unpack(kind: Kind, file: &Path) -> Result<Unpacked> {
    let what = format!("{}:{}", kind.prefix(), file.display());
    let f = crate::located::open_regular(file).with_context(|| format!("{what}: cannot read"))?;
    let dir = crate::temps::Dir::new(&scratch(), "tdg-archive-")?;
    let raw = dir.path().join("raw");
    fs::create_dir(&raw)?;
    extract(BufReader::new(f), &raw).with_context(|| what.clone())?;
    let out = Unpacked { dir };
    match kind {
        Kind::Oci => fs::rename(&raw, out.layout())?,
        Kind::Docker => from_docker_save(&raw, &out.layout()).with_context(|| what.clone())?,
    }
    Ok(out)
}

/// Writes the archive's regular files under `dest`; directories are implied. Symlinks (skopeo
/// links a `docker-archive`'s repeated layers) become copies of the file they name inside the
/// archive; any other link or device is refused.
fn extract(r: impl Read, dest: &Path) -> Result<()> {
    let mut archive = tar::Archive::new(r);
    let mut ext = Extensions::default();
    let mut links: Vec<(String, String)> = Vec::new();
    for item in archive.entries()?.raw(true) {
        let mut e = item?;
        let Some(tarext::Member { raw, path, over }) = tarext::member(&mut ext, &mut e)? else {
            continue;
        };
        match e.header().entry_type() {
            tar::EntryType::Directory => continue,
            tar::EntryType::Regular | tar::EntryType::Continuous => {}
            tar::EntryType::Symlink => {
                let target = over
                    .link
                    .or_else(|| e.header().link_name_bytes().map(|l| l.into_owned()))
                    .context("a symlink without a target")?;
                let target = String::from_utf8(target).context("a link target is not UTF-8")?;
                let (parent, _) = path.rsplit_once('/').unwrap_or(("", &path));
                links.push((path.clone(), within(parent, &target)?));
                continue;
            }
            other => bail!(
                "entry '{raw}' is a {other:?}; an image archive holds only files and symlinks"
            ),
        }
        if path.is_empty() {
            continue;
        }
        let target = dest.join(&path);
        if target.exists() {
            bail!("holds '{path}' twice");
        }
        if let Some(p) = target.parent() {
            fs::create_dir_all(p)?;
        }
        io::copy(&mut e, &mut File::create(&target)?)
            .with_context(|| format!("extracting '{path}'"))?;
    }
    // Links to links resolve in as many rounds as the chain is long; a cycle never does.
    for _ in 0..=links.len() {
        let before = links.len();
        links.retain(|(link, target)| {
            let (from, to) = (dest.join(target), dest.join(link));
            if !from.is_file() || to.exists() {
                return true;
            }
            let _ = to.parent().map(fs::create_dir_all);
            fs::hard_link(&from, &to)
                .or_else(|_| fs::copy(&from, &to).map(|_| ()))
                .is_err()
        });
        if links.is_empty() || links.len() == before {
            break;
        }
    }
    if let Some((link, target)) = links.first() {
        bail!("symlink '{link}' points at '{target}', which is not a file in the archive");
    }
    Ok(())
}

/// A symlink target, relative to the link's directory, as a clean path inside the archive.
fn within(parent: &str, target: &str) -> Result<String> {
    let mut parts: Vec<&str> = if target.starts_with('/') {
        Vec::new()
    } else {
        parent.split('/').filter(|c| !c.is_empty()).collect()
    };
    for c in target.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    bail!("a symlink to '{target}' leaves the archive");
                }
            }
            c => parts.push(c),
        }
    }
    Ok(parts.join("/"))
}

/// One image of `manifest.json`, as `docker save` writes it.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SavedImage {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

/// Turns a `docker save` tree into an OCI layout: each config and layer a blob (layers keep
/// their bytes, so a layer's digest is its diff_id when uncompressed), one Docker v2 manifest
/// per image, tagged in `index.json` with its first `RepoTags` entry.
fn from_docker_save(raw: &Path, layout: &Path) -> Result<()> {
    let listing = raw.join("manifest.json");
    let text = crate::located::read_capped(&listing, crate::limits::MAX_DOCUMENT)
        .context("not a docker-archive: no readable manifest.json")?;
    let images: Vec<SavedImage> = serde_json::from_str(&text).context("malformed manifest.json")?;
    if images.is_empty() {
        bail!("manifest.json lists no image");
    }
    let mut out = LayoutWriter::create(layout)?;
    for img in &images {
        let config_path = inside(raw, &img.config)?;
        let config = crate::located::read_bounded(&config_path, crate::limits::MAX_DOCUMENT)
            .with_context(|| format!("reading config {}", img.config))?;
        let (config_digest, config_size) = out.write_blob(&config)?;
        let mut layers = Vec::new();
        for l in &img.layers {
            let p = inside(raw, l)?;
            let media_type = sniff_layer(&p)?;
            let (digest, size) = out
                .write_blob_from(BufReader::new(File::open(&p)?))
                .with_context(|| format!("reading layer {l}"))?;
            layers
                .push(json!({"mediaType": media_type, "digest": digest.to_string(), "size": size}));
        }
        let m = json!({
            "schemaVersion": 2,
            "mediaType": manifest::DOCKER_MANIFEST,
            "config": {"mediaType": manifest::DOCKER_CONFIG, "digest": config_digest.to_string(), "size": config_size},
            "layers": layers,
        });
        let bytes = serde_json::to_vec(&m)?;
        let tag = img.repo_tags.as_ref().and_then(|t| t.first());
        out.add_manifest(manifest::DOCKER_MANIFEST, &bytes, tag.map(String::as_str))?;
        // Every further RepoTags name selects the same manifest.
        for t in img.repo_tags.iter().flatten().skip(1) {
            out.add_manifest(manifest::DOCKER_MANIFEST, &bytes, Some(t))?;
        }
    }
    Ok(())
}

/// A path `manifest.json` names, which must be a file the archive held.
fn inside(raw: &Path, name: &str) -> Result<PathBuf> {
    let clean = crate::image_path::normalize(name)
        .with_context(|| format!("manifest.json names '{name}'"))?;
    let p = raw.join(&clean);
    if clean.is_empty() || !p.is_file() {
        bail!("manifest.json names '{name}', which the archive does not hold");
    }
    Ok(p)
}

/// A saved layer's media type, from its first bytes (docker 25+ may store them compressed).
fn sniff_layer(p: &Path) -> Result<&'static str> {
    let mut head = [0u8; 4];
    let n = File::open(p)?.read(&mut head)?;
    let head = &head[..n];
    Ok(if head.starts_with(&[0x1f, 0x8b]) {
        manifest::DOCKER_LAYER_GZIP
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        manifest::DOCKER_LAYER_ZSTD
    } else {
        manifest::DOCKER_LAYER_TAR
    })
}
