//! Packaging: a `FROM scratch` OCI image of one gzip layer holding the asset tree (entries
//! sorted, uid/gid 0, mtime from SOURCE_DATE_EPOCH, so the same inputs give the same digest),
//! a config with the labels, a manifest with the annotations, and an index when several
//! arches are built. Layers stream from disk through gzip into the layout.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use anyhow::{Context, Result};
use serde_json::json;

use crate::digest::HashingWriter;
use crate::oci::layout::LayoutWriter;
use crate::oci::manifest::{self, Descriptor, PlatformJson};
use crate::oci::platform::Platform;

/// One arch's tree to package: every directory and file below `stage`, as `(path, is_dir)`.
pub fn tree_entries(stage: &Path) -> Result<Vec<(String, bool)>> {
    let mut out = Vec::new();
    let mut todo = vec![stage.to_path_buf()];
    while let Some(dir) = todo.pop() {
        for e in std::fs::read_dir(&dir)? {
            let e = e?;
            let rel = e.path().strip_prefix(stage)?.to_string_lossy().into_owned();
            let is_dir = e.file_type()?.is_dir();
            if is_dir {
                todo.push(e.path());
            }
            out.push((rel, is_dir));
        }
    }
    out.sort();
    Ok(out)
}

/// The gzip level of the asset layer (see docs/testing.md, "Packaging", for the measurements).
pub const GZIP_LEVEL: u32 = 6;

/// Writes the layer for `stage` into the layout; returns its descriptor and diff id.
pub fn layer(out: &LayoutWriter, stage: &Path, epoch: u64) -> Result<(serde_json::Value, String)> {
    layer_at(out, stage, epoch, GZIP_LEVEL)
}

/// [`layer`] at another gzip level, for measuring.
pub fn layer_at(
    out: &LayoutWriter,
    stage: &Path,
    epoch: u64,
    level: u32,
) -> Result<(serde_json::Value, String)> {
    let tmp = tempfile::NamedTempFile::new_in(out.dir())?;
    let compressed = HashingWriter::new(BufWriter::with_capacity(1 << 20, tmp.reopen()?));
    // Both cores (or all): gzip in parallel members, as pigz does (`pgzip`).
    let gz = super::pgzip::ParallelGz::new(compressed, level);
    let mut tar = tar::Builder::new(HashingWriter::new(gz));
    for (rel, is_dir) in tree_entries(stage)? {
        let mut h = tar::Header::new_ustar();
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(epoch);
        if is_dir {
            h.set_entry_type(tar::EntryType::Directory);
            h.set_mode(0o755);
            h.set_size(0);
            tar.append_data(&mut h, format!("{rel}/"), std::io::empty())?;
        } else {
            let f = File::open(stage.join(&rel))?;
            h.set_entry_type(tar::EntryType::Regular);
            h.set_mode(0o644);
            h.set_size(f.metadata()?.len());
            tar.append_data(&mut h, &rel, f)?;
        }
    }
    let uncompressed = tar.into_inner()?;
    let (diff_id, _) = uncompressed.hasher.clone().finish();
    let mut compressed = uncompressed.inner.finish()?;
    compressed.flush()?;
    let (digest, size) = compressed.hasher.clone().finish();
    drop(compressed);
    tmp.persist(out.dir().join("blobs/sha256").join(digest.hex()))
        .map_err(|e| e.error)?;
    Ok((
        json!({"mediaType": manifest::OCI_LAYER_GZIP, "digest": digest.to_string(), "size": size}),
        diff_id.to_string(),
    ))
}

/// Writes one arch's image (layer, config, manifest) and returns the manifest descriptor.
pub fn image(
    out: &LayoutWriter,
    stage: &Path,
    platform: &Platform,
    labels: &BTreeMap<String, String>,
    annotations: &BTreeMap<String, String>,
    epoch: u64,
    created: &str,
) -> Result<Descriptor> {
    let (layer, diff_id) = layer(out, stage, epoch).context("packaging the asset layer")?;
    let config = json!({
        "created": created,
        "architecture": platform.arch,
        "os": platform.os,
        "config": {"Labels": labels},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": created, "created_by": format!("tdg build {}", env!("CARGO_PKG_VERSION")), "comment": "Talos boot assets"}],
    });
    let (cd, cs) = out.write_blob(&serde_json::to_vec(&config)?)?;
    let m = json!({
        "schemaVersion": 2,
        "mediaType": manifest::OCI_MANIFEST,
        "config": {"mediaType": manifest::OCI_CONFIG, "digest": cd.to_string(), "size": cs},
        "layers": [layer],
        "annotations": annotations,
    });
    let bytes = serde_json::to_vec(&m)?;
    let (digest, size) = out.write_blob(&bytes)?;
    Ok(Descriptor {
        media_type: manifest::OCI_MANIFEST.into(),
        digest,
        size,
        platform: Some(PlatformJson {
            os: platform.os.clone(),
            architecture: platform.arch.clone(),
            variant: None,
        }),
        annotations: BTreeMap::new(),
    })
}

/// Tags the single manifest, or an index over several, in the layout.
pub fn finish(
    out: &mut LayoutWriter,
    manifests: Vec<Descriptor>,
    annotations: &BTreeMap<String, String>,
    tag: &str,
) -> Result<Descriptor> {
    if manifests.len() == 1 {
        let d = &manifests[0];
        let bytes = std::fs::read(out.dir().join("blobs/sha256").join(d.digest.hex()))?;
        return out.add_manifest(&d.media_type, &bytes, Some(tag));
    }
    let index = json!({"schemaVersion": 2, "mediaType": manifest::OCI_INDEX, "manifests": manifests, "annotations": annotations});
    out.add_manifest(manifest::OCI_INDEX, &serde_json::to_vec(&index)?, Some(tag))
}
