//! Fixture images, built by code: OCI layouts written with tdg's image writer, pushed to the
//! test registry either by tdg or by skopeo, so each client checks the other.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context, Result};

use tdg::digest::Digest;
use tdg::oci::image::{self, Body, Flavor, Layer, TarEntry as E};
use tdg::oci::layout::{LayoutSource, LayoutWriter};
use tdg::oci::manifest::Compression;
use tdg::oci::mirror::Mirrors;
use tdg::oci::platform::Platform;

/// Every layer rule in three layers (gzip, plain tar, zstd), plus every entry type.
pub fn whiteout_layers() -> Vec<(Vec<E>, Compression)> {
    let dev = |p: &str, body: Body| E {
        path: p.into(),
        body,
        mode: 0o660,
        uid: 0,
        gid: 6,
    };
    let l1 = vec![
        E::dir("etc", 0o755),
        E::file("etc/a", "deleted by a whiteout", 0o644),
        E::file("etc/b", "kept", 0o600).owned(1000, 1000),
        E::dir("opq", 0o755),
        E::file("opq/old", "hidden by the opaque marker", 0o644),
        E::dir("opq/sub", 0o755),
        E::file("opq/sub/old2", "hidden too", 0o644),
        E::dir("del", 0o755),
        E::file("del/x", "gone with its dir", 0o644),
        E::dir("recreate", 0o755),
        E::file("recreate/old", "must not come back", 0o644),
        E::dir("dir2file", 0o755),
        E::file("dir2file/child", "gone when the dir becomes a file", 0o644),
        E::file("file2dir", "becomes a dir", 0o644),
        E::dir("usr", 0o755),
        E::dir("usr/lib", 0o755),
        E::symlink("lib", "usr/lib"),
        E::file("data", "original data", 0o640).owned(0, 42),
        E::hardlink("data.link", "data"),
        E::dir("dev", 0o755),
        dev("dev/null", Body::Char(1, 3)),
        dev("dev/loop0", Body::Block(7, 0)),
        dev("dev/fifo", Body::Fifo),
        E::file("suid", "#!/bin/sh\n", 0o4755),
        E::dir("sticky", 0o1777),
    ];
    let l2 = vec![
        E::whiteout("etc/a"),
        E::dir("opq", 0o700),
        E::file("opq/new", "written before the marker", 0o644),
        E::opaque("opq"),
        E::whiteout("del"),
        E::whiteout("recreate"),
        E::dir("recreate", 0o750),
        E::file("recreate/new", "new child", 0o644),
        E::file("dir2file", "a file now", 0o644),
        E::dir("file2dir", 0o755),
        E::file("file2dir/inner", "inside", 0o644),
        E::file("lib/libx.so", "through the lib symlink", 0o755),
        E::file("data", "replaced data", 0o644),
    ];
    let l3 = vec![
        E::dir("dir2file", 0o711),
        E::file("dir2file/again", "a dir again", 0o644),
        E::symlink("abs", "/etc/b"),
        E::symlink("dangling", "../nowhere"),
        E::hardlink("data.link2", "data"),
    ];
    vec![
        (l1, Compression::Gzip),
        (l2, Compression::None),
        (l3, Compression::Zstd),
    ]
}

/// Writes a single-platform image into a layout, tagged.
pub fn layout_image(
    dir: &Path,
    tag: &str,
    layers: &[(Vec<E>, Compression)],
    platform: &str,
    labels: &BTreeMap<String, String>,
    flavor: Flavor,
) -> Result<Digest> {
    let layers: Vec<Layer> = layers
        .iter()
        .map(|(e, c)| Layer::new(e, *c, flavor))
        .collect::<Result<_>>()?;
    layout_of_layers(dir, tag, &layers, platform, labels, flavor)
}

/// Writes a single-platform image of ready-made layers (hostile blobs, wrong diff_ids).
/// `oci:DIR:TAG` of one layer, as an OCI image for linux/amd64.
pub fn one_layer_layout(dir: &Path, tag: &str, layer: Layer) -> Result<Digest> {
    layout_of_layers(
        dir,
        tag,
        &[layer],
        "linux/amd64",
        &Default::default(),
        Flavor::Oci,
    )
}

pub fn layout_of_layers(
    dir: &Path,
    tag: &str,
    layers: &[Layer],
    platform: &str,
    labels: &BTreeMap<String, String>,
    flavor: Flavor,
) -> Result<Digest> {
    let mut out = LayoutWriter::create(dir)?;
    let d = image::write_image(&out, &platform.parse()?, layers, labels, flavor)?;
    let bytes = image::manifest_bytes(&out, &d)?;
    out.add_manifest(&d.media_type, &bytes, Some(tag))?;
    Ok(d.digest)
}

/// Writes an index over one small image per platform; each image names its platform in a file.
pub fn layout_index(dir: &Path, tag: &str, platforms: &[&str], flavor: Flavor) -> Result<Digest> {
    let mut out = LayoutWriter::create(dir)?;
    let mut descs = Vec::new();
    for p in platforms {
        let plat: Platform = p.parse()?;
        let entries = vec![
            E::dir("etc", 0o755),
            E::file("etc/platform", p.to_string(), 0o644),
            E::file(&format!("arch-{}", plat.arch), "", 0o644),
        ];
        let layer = Layer::new(&entries, Compression::Gzip, flavor)?;
        descs.push(image::write_image(
            &out,
            &plat,
            &[layer],
            &BTreeMap::new(),
            flavor,
        )?);
    }
    let (mt, bytes) = image::index_bytes(&descs, flavor)?;
    Ok(out.add_manifest(&mt, &bytes, Some(tag))?.digest)
}

/// tdg pushes.
pub fn push_with_tdg(layout: &Path, tag: &str, target: &str) -> Result<Digest> {
    let rt = tokio::runtime::Runtime::new()?;
    let src = LayoutSource::open(layout)?;
    rt.block_on(tdg::oci::push::push_layout(
        &src,
        Some(tag),
        &target.parse()?,
        &Mirrors::default(),
    ))
}

/// skopeo pushes, keeping manifests byte for byte.
pub fn push_with_skopeo(layout: &Path, tag: &str, target: &str) -> Result<()> {
    run(Command::new("skopeo")
        .args([
            "copy",
            "--quiet",
            "--all",
            "--preserve-digests",
            "--dest-tls-verify=false",
        ])
        .arg(format!("oci:{}:{tag}", layout.display()))
        .arg(format!("docker://{target}")))
}

/// skopeo pushes to a registry that needs credentials.
pub fn push_with_skopeo_as(layout: &Path, tag: &str, target: &str, creds: &str) -> Result<()> {
    run(Command::new("skopeo")
        .args([
            "copy",
            "--quiet",
            "--dest-tls-verify=false",
            "--dest-creds",
            creds,
        ])
        .arg(format!("oci:{}:{tag}", layout.display()))
        .arg(format!("docker://{target}")))
}

pub fn run(cmd: &mut Command) -> Result<()> {
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// The digest a reference names in a plaintext registry: its top document (index or
/// manifest) as skopeo, not tdg, fetches it.
pub fn skopeo_digest(reference: &str) -> Result<String> {
    let out = Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{reference}"))
        .output()?;
    if !out.status.success() {
        bail!(
            "skopeo inspect {reference}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(Digest::of(&out.stdout).to_string())
}

pub fn output(cmd: &mut Command) -> Result<String> {
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8(out.stdout)?)
}

/// A copy of `specs/<variant>-arm64.yaml` without its `expect.boot`, at `dir/specs/` beside a
/// copy of its golden: for fixtures whose kernel is a stand-in that boots nothing (the
/// harness's hand-made images, the bench's inputs of realistic size).
pub fn spec_without_boot(variant: &str, dir: &Path) -> Result<std::path::PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let name = format!("{variant}-arm64");
    let text = std::fs::read_to_string(root.join(format!("specs/{name}.yaml")))?;
    let mut out = String::new();
    let mut skipping = false;
    for line in text.lines() {
        if line.starts_with("  boot:") {
            skipping = true;
            continue;
        }
        if skipping && (line.starts_with("    ") || line.trim().is_empty()) {
            continue;
        }
        skipping = false;
        out += line;
        out.push('\n');
    }
    std::fs::create_dir_all(dir.join("specs"))?;
    std::fs::create_dir_all(dir.join("golden"))?;
    let golden = format!("golden/{name}.tree");
    std::fs::copy(root.join(&golden), dir.join(&golden))?;
    let spec = dir.join(format!("specs/{name}.yaml"));
    std::fs::write(&spec, out)?;
    Ok(spec)
}

/// One gzip layer of `n` entries, `path(i)` each (a directory where the name ends in `/`,
/// else an empty file), built as it is compressed: a million entries never sit in memory as
/// a tar.
pub fn streamed_layer(n: usize, path: impl Fn(usize) -> String) -> Result<Layer> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut hashing = tdg::digest::HashingWriter::new(gz);
    {
        let mut b = tar::Builder::new(&mut hashing);
        for i in 0..n {
            let p = path(i);
            let mut h = tar::Header::new_gnu();
            let dir = p.ends_with('/');
            h.set_entry_type(if dir {
                tar::EntryType::Directory
            } else {
                tar::EntryType::Regular
            });
            h.set_mode(if dir { 0o755 } else { 0o644 });
            h.set_size(0);
            h.set_mtime(0);
            b.append_data(&mut h, &p, std::io::empty())?;
        }
        b.finish()?;
    }
    let (diff_id, _) = hashing.hasher.clone().finish();
    Ok(Layer {
        blob: hashing.inner.finish()?,
        media_type: tdg::oci::manifest::OCI_LAYER_GZIP.into(),
        diff_id,
    })
}

/// A newc cpio of `names` (a directory where the name ends in `/`, else an empty file).
pub fn cpio_of(names: impl Iterator<Item = String>) -> Vec<u8> {
    let mut out = Vec::new();
    let mut put = |ino: usize, name: &str, mode: u32| {
        out.extend(b"070701");
        let size = name.len() as u32 + 1;
        for v in [ino as u32, mode, 0, 0, 1, 0, 0, 0, 0, 0, 0, size, 0] {
            out.extend(format!("{v:08X}").bytes());
        }
        out.extend(name.as_bytes());
        out.push(0);
        out.resize(out.len().next_multiple_of(4), 0);
    };
    for (i, n) in names.enumerate() {
        match n.strip_suffix('/') {
            Some(dir) => put(i + 1, dir, 0o040755),
            None => put(i + 1, &n, 0o100644),
        }
    }
    put(0, "TRAILER!!!", 0);
    out
}

/// Entry `i` of a tree of 4 KiB names: 16 directories of 250-byte names, then files in the
/// deepest (`LONG_NAMES` entries in all).
pub fn long_name(i: usize) -> String {
    let dirs = |n: u8| -> String {
        (0..n)
            .map(|c| format!("{}/", char::from(b'a' + c).to_string().repeat(250)))
            .collect()
    };
    match u8::try_from(i) {
        Ok(i) if i < 16 => dirs(i + 1),
        _ => format!("{}f{i}", dirs(16)),
    }
}

/// Names a tree's entries by their ordinal (`many_name`, `long_name`).
pub type Names = fn(usize) -> String;

pub const LONG_NAMES: usize = 100_016;

/// Entry `i` of a flat tree: 100 directories, then files spread over them.
pub fn many_name(i: usize) -> String {
    if i < 100 {
        format!("d{i:03}/")
    } else {
        format!("d{:03}/f{i}", i % 100)
    }
}
