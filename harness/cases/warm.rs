//! Warm runs: a second verify of an image reads no layer (its tree index and the checked files
//! come from the cache), a corrupt index or content file is caught and rebuilt, never used,
//! and `--verify-cache` reads every layer again.

use std::path::{Path, PathBuf};

use anyhow::{ensure, Context, Result};

use tdg::digest::Digest;
use tdg::oci::image::{Flavor, TarEntry as E};
use tdg::oci::manifest::Compression;

use super::cli::{expect_exit, Tdg};
use super::pull::flip_byte;
use crate::fixtures;

const MOTD: &str = "welcome to talos";

/// A two-layer image: the checked file in the lower layer, a filler in the upper.
fn image(layout: &Path) -> Result<Vec<PathBuf>> {
    fixtures::layout_image(
        layout,
        "t",
        &[
            (
                vec![E::dir("etc", 0o755), E::file("etc/motd", MOTD, 0o644)],
                Compression::Gzip,
            ),
            (
                vec![E::file("etc/hostname", "node\n", 0o644)],
                Compression::None,
            ),
        ],
        "linux/amd64",
        &Default::default(),
        Flavor::Oci,
    )?;
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json"))?)?;
    let blob = |d: &str| {
        layout
            .join("blobs/sha256")
            .join(d.trim_start_matches("sha256:"))
    };
    let m: serde_json::Value = serde_json::from_slice(&std::fs::read(blob(
        index["manifests"][0]["digest"]
            .as_str()
            .context("manifest")?,
    ))?)?;
    Ok(m["layers"]
        .as_array()
        .context("layers")?
        .iter()
        .filter_map(|l| l["digest"].as_str().map(blob))
        .collect())
}

/// The one document under `<cache>/trees/sha256`.
fn tree_document(cache: &Path) -> Result<PathBuf> {
    let docs: Vec<_> = std::fs::read_dir(cache.join("trees/sha256"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    ensure!(docs.len() == 1, "tree documents: {docs:?}");
    Ok(docs[0].clone())
}

/// Over a registry, the only source the warm cache serves (a local layout is read every time,
/// `local.rs`): the registry's own access log counts the layer fetches.
pub fn a_warm_run_reads_no_layer_and_a_corrupt_cache_is_never_used() -> Result<()> {
    let reg = crate::registry::Registry::start(None)?;
    let tmp = tempfile::tempdir()?;
    let layout = tmp.path().join("layout");
    let spec = tmp.path().join("warm.yaml");
    std::fs::write(
        &spec,
        "apiVersion: tdg/v1\nname: warm\nimage: ghcr.io/x/warm:t\nexpect:\n  files:\n    - path: etc/motd\n      contains: [welcome]\n      lacks: [TOKEN]\n    - path: etc/hostname\n  absent: [etc/shadow]\n",
    )?;
    let mirror = format!("ghcr.io=http://{}", reg.addr);
    let tdg = Tdg::new()?;
    let verify = |extra: &[&str]| -> Result<std::process::Output> {
        let mut args = vec![
            "verify",
            spec.to_str().context("utf-8")?,
            "--mirror",
            &mirror,
        ];
        args.extend_from_slice(extra);
        tdg.run(args)
    };
    let layers = image(&layout)?;
    fixtures::push_with_tdg(&layout, "t", &format!("{}/x/warm:t", reg.addr))?;
    let hex = |l: &PathBuf| l.file_name().unwrap().to_string_lossy().to_string();
    // The layers in tdg's blob cache, and in the registry's storage.
    let cached: Vec<PathBuf> = layers
        .iter()
        .map(|l| tdg.cache.join("blobs/sha256").join(hex(l)))
        .collect();
    let stored: Vec<PathBuf> = layers
        .iter()
        .map(|l| reg.blob_file(&hex(l)).context("storage"))
        .collect::<Result<_>>()?;
    let forget = || -> Result<()> {
        for c in &cached {
            let _ = std::fs::remove_file(c);
        }
        Ok(())
    };
    let listing = expect_exit(
        &tdg.run(["tree", "ghcr.io/x/warm:t", "--mirror", &mirror])?,
        0,
    )?;
    expect_exit(&verify(&[])?, 0)?;

    // Warm: with the layers gone from tdg's cache, the run and the listing still work and the
    // registry serves no blob, so neither read a layer.
    forget()?;
    let gets = reg.blob_gets();
    let out = expect_exit(&verify(&[])?, 0)?;
    ensure!(out.contains("files::etc/motd::contains"), "{out}");
    let warm_listing = expect_exit(
        &tdg.run(["tree", "ghcr.io/x/warm:t", "--mirror", &mirror])?,
        0,
    )?;
    ensure!(
        warm_listing == listing,
        "warm listing differs:\n{warm_listing}"
    );
    ensure!(reg.blob_gets() == gets, "the warm runs fetched blobs");
    ensure!(
        cached.iter().all(|c| !c.exists()),
        "a warm run cached a layer"
    );

    // --verify-cache reads every layer again: the registry serves each of them.
    expect_exit(&verify(&["--verify-cache"])?, 0)?;
    ensure!(
        reg.blob_gets() >= gets + layers.len(),
        "--verify-cache fetched {} blobs",
        reg.blob_gets() - gets
    );

    // A corrupt tree index is a miss, not a tree: the run reads the layers and rebuilds it.
    let doc = tree_document(&tdg.cache)?;
    flip_byte(&doc, 20)?;
    forget()?;
    let gets = reg.blob_gets();
    expect_exit(&verify(&[])?, 0)?;
    ensure!(reg.blob_gets() > gets, "the corrupt index was used");
    let doc = tree_document(&tdg.cache)?;
    let named: Digest = format!("sha256:{}", doc.file_name().unwrap().to_string_lossy()).parse()?;
    ensure!(
        Digest::of(&std::fs::read(&doc)?) == named,
        "the rebuilt index does not hash to its name"
    );

    // Content that would pass `lacks` no more: the store's copy is tampered (same size), and
    // the run notices, reads the layers, and judges the real bytes.
    let motd = tdg
        .cache
        .join("content/sha256")
        .join(Digest::of(MOTD.as_bytes()).hex());
    ensure!(motd.exists(), "etc/motd is not in the content store");
    std::fs::write(&motd, "TOKEN=1 talos ok")?;
    expect_exit(&verify(&[])?, 0)?;
    ensure!(
        std::fs::read_to_string(&motd)? == MOTD,
        "the store kept the tampered copy"
    );
    // And with the layers nowhere (not cached, not served), a tampered copy makes the run
    // fail, never pass.
    std::fs::write(&motd, "TOKEN=1 talos ok")?;
    forget()?;
    for s in &stored {
        std::fs::rename(s, s.with_extension("away"))?;
    }
    expect_exit(&verify(&[])?, 2)?;
    Ok(())
}
