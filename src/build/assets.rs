//! Laying out one arch's boot assets: the initramfs (base, then the appended extensions
//! segment, as the imager appends it), the kernel, the build report (text and JSON) and
//! `checksums.sha256` (every file but itself, `./` paths, as `sha256sum` writes them).

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::Path;

use anyhow::{Context, Result};
use serde_json::json;

use super::inputs::{BaseAssets, Extension};
use crate::digest::{Digest, HashingWriter};
use crate::imager::bake::{self, Quirks, Rebuilt};
use crate::talos::extensions::{is_machinery, Layer};
use crate::talos::initramfs::Limits;

/// A file under the asset root: its path relative to the root, digest and size.
#[derive(Clone, Debug)]
pub struct Written {
    pub rel: String,
    pub digest: Digest,
    pub size: u64,
}

/// Copies `src` to `dest` through a hasher.
fn copy_hashed(src: &Path, dest: &Path) -> Result<(Digest, u64)> {
    let mut w = HashingWriter::new(BufWriter::new(
        File::create(dest).with_context(|| format!("creating {}", dest.display()))?,
    ));
    io::copy(
        &mut File::open(src).with_context(|| format!("opening {}", src.display()))?,
        &mut w,
    )?;
    w.flush()?;
    Ok(w.hasher.finish())
}

fn write_hashed(dest: &Path, bytes: &[u8]) -> Result<(Digest, u64)> {
    fs::write(dest, bytes).with_context(|| format!("writing {}", dest.display()))?;
    Ok((Digest::of(bytes), bytes.len() as u64))
}

/// The initramfs with the extensions baked in as the imager bakes them ([`bake::rebuild`]),
/// written to `dest`. No extensions: the base bytes alone.
pub fn initramfs(
    base: &BaseAssets,
    exts: &[Extension],
    quirks: &Quirks,
    limits: Limits,
    dest: &Path,
    work: &Path,
) -> Result<(Digest, u64, Option<Rebuilt>)> {
    let mut w = HashingWriter::new(BufWriter::new(
        File::create(dest).with_context(|| format!("creating {}", dest.display()))?,
    ));
    let rebuilt = if exts.is_empty() {
        io::copy(&mut File::open(&base.initramfs)?, &mut w)
            .context("copying the base initramfs")?;
        None
    } else {
        let inputs: Vec<_> = exts.iter().map(|e| e.input.clone()).collect();
        let (out, r) = bake::rebuild(&base.initramfs, &inputs, quirks, limits, work, w)?;
        w = out;
        Some(r)
    };
    w.flush()?;
    let (d, n) = w.hasher.finish();
    Ok((d, n, rebuilt))
}

pub struct ReportFacts<'a> {
    pub arch: &'a str,
    pub talos: &'a str,
    pub spec: &'a str,
    pub base: &'a BaseAssets,
    pub extensions: &'a [Extension],
    /// Every layer of the built `extensions.yaml`: the base's, the extensions', the machinery's.
    pub layers: &'a [Layer],
    pub extra: &'a BTreeMap<String, String>,
    pub revision: Option<&'a str>,
    pub date: String,
}

/// Lays out kernel, initramfs, reports and checksums under `root`; returns every file written.
pub fn layout(
    root: &Path,
    kernel: &Path,
    initramfs: &Path,
    facts: &ReportFacts<'_>,
) -> Result<Vec<Written>> {
    for d in ["boot", "validation"] {
        fs::create_dir_all(root.join(d))?;
    }
    let mut files = Vec::new();
    for (rel, src) in [("boot/vmlinuz", kernel), ("boot/initramfs.xz", initramfs)] {
        let (digest, size) = copy_hashed(src, &root.join(rel))?;
        files.push(Written {
            rel: rel.into(),
            digest,
            size,
        });
    }
    let (txt, json) = reports(facts, &files);
    for (rel, bytes) in [
        ("validation/build-report.json", json.as_bytes()),
        ("validation/build-report.txt", txt.as_bytes()),
    ] {
        let (digest, size) = write_hashed(&root.join(rel), bytes)?;
        files.push(Written {
            rel: rel.into(),
            digest,
            size,
        });
    }
    files.sort_by(|a, b| a.rel.cmp(&b.rel));
    let sums: String = files
        .iter()
        .map(|f| format!("{}  ./{}\n", f.digest.hex(), f.rel))
        .collect();
    let (digest, size) = write_hashed(&root.join("checksums.sha256"), sums.as_bytes())?;
    files.push(Written {
        rel: "checksums.sha256".into(),
        digest,
        size,
    });
    files.sort_by(|a, b| a.rel.cmp(&b.rel));
    Ok(files)
}

/// The human report (`Key: Value` lines, then an inventory) and its JSON twin.
fn reports(f: &ReportFacts<'_>, files: &[Written]) -> (String, String) {
    let exts: Vec<String> = f
        .extensions
        .iter()
        .map(|e| format!("{} {}", e.input.metadata.name, e.input.metadata.version))
        .collect();
    let mut fields: Vec<(String, String)> = vec![
        ("Target".into(), f.arch.into()),
        ("Talos Version".into(), f.talos.into()),
        ("Spec".into(), f.spec.into()),
        ("Base Image".into(), f.base.describe()),
        ("Base Source".into(), f.base.source().into()),
        (
            "Extensions".into(),
            if exts.is_empty() {
                "none".into()
            } else {
                exts.join(", ")
            },
        ),
    ];
    // The layers nobody chose (modules.dep, the factory's schematic) and the ones the base
    // brought, apart from the extensions built in.
    let named = |l: &Layer| format!("{} {}", l.metadata.name, l.metadata.version);
    let machinery: Vec<String> = f
        .layers
        .iter()
        .filter(|l| is_machinery(&l.metadata))
        .map(named)
        .collect();
    let from_base: Vec<String> = f
        .layers
        .iter()
        .filter(|l| !is_machinery(&l.metadata))
        .take(
            f.layers
                .len()
                .saturating_sub(f.extensions.len() + machinery.len()),
        )
        .map(named)
        .collect();
    if !from_base.is_empty() {
        fields.push(("Base Extensions".into(), from_base.join(", ")));
    }
    if !machinery.is_empty() {
        fields.push(("Machinery Layers".into(), machinery.join(", ")));
    }
    if let Some(r) = f.revision {
        fields.push(("Source Commit".into(), r.into()));
    }
    for (k, v) in f.extra {
        fields.retain(|(fk, _)| fk != k);
        fields.push((k.clone(), v.clone()));
    }
    fields.push(("Build Date".into(), f.date.clone()));
    let mut txt = String::from("Talos Build Report\n==================\n");
    for (k, v) in &fields {
        txt += &format!("{k}: {v}\n");
    }
    txt += "Extension Images:\n";
    for e in f.extensions {
        txt += &format!("  {}@{}\n", e.image, e.digest);
    }
    txt += "Inventory:\n";
    for w in files {
        txt += &format!("  {}  {} bytes  sha256:{}\n", w.rel, w.size, w.digest.hex());
    }
    let json = json!({
        "fields": fields.iter().cloned().collect::<BTreeMap<String, String>>(),
        "layers": f.layers.iter().map(|l| json!({
            "image": l.image, "name": l.metadata.name, "version": l.metadata.version,
            "machinery": is_machinery(&l.metadata),
        })).collect::<Vec<_>>(),
        "extensions": f.extensions.iter().map(|e| json!({
            "name": e.input.metadata.name, "version": e.input.metadata.version, "image": e.image, "digest": e.digest,
        })).collect::<Vec<_>>(),
        "inventory": files.iter().map(|w| json!({"path": w.rel, "size": w.size, "sha256": w.digest.hex()})).collect::<Vec<_>>(),
    });
    (
        txt,
        serde_json::to_string_pretty(&json).unwrap_or_default() + "\n",
    )
}
