//! Pulling: platforms from an index, OCI and Docker media types, the cache, and integrity.

use anyhow::{ensure, Context, Result};
use std::process::Command;

use tdg::oci::image::Flavor;

use super::cli::{expect_exit, Tdg};
use crate::fixtures;
use crate::registry::Registry;
use crate::world;

fn index_spec(
    dir: &std::path::Path,
    image: &str,
    platform: Option<&str>,
) -> Result<std::path::PathBuf> {
    let platform = platform
        .map(|p| format!("platform: {p}\n"))
        .unwrap_or_default();
    world::write_spec(
        dir,
        "index",
        &format!(
            "apiVersion: tdg/v1\nname: index\nimage: {image}\n{platform}expect:\n  platforms: [linux/amd64, linux/arm64, linux/arm/v7]\n  files:\n    - path: etc/platform\n      contains: [linux/arm64]\n  absent: [arch-amd64]\n"
        ),
    )
}

pub(crate) fn three_platform_index(
    dir: &std::path::Path,
    flavor: Flavor,
) -> Result<std::path::PathBuf> {
    let layout = dir.join("l");
    let platforms = ["linux/amd64", "linux/arm64", "linux/arm/v7"];
    fixtures::layout_index(&layout, "t", &platforms, flavor)?;
    Ok(layout)
}

pub fn index_selects_the_requested_platform() -> Result<()> {
    let w = world::world()?;
    let tmp = tempfile::tempdir()?;
    let layout = three_platform_index(tmp.path(), Flavor::Oci)?;
    let image = format!("{}/fixtures/index:oci", w.registry.addr);
    fixtures::push_with_skopeo(&layout, "t", &image)?;
    let tdg = Tdg::new()?;
    let spec = index_spec(tmp.path(), &image, Some("linux/arm64"))?;
    expect_exit(&tdg.run(["verify".as_ref(), spec.as_os_str()])?, 0)?;
    // Another platform of the same index is a different image: its content check fails.
    let out = expect_exit(
        &tdg.run([
            "verify".as_ref(),
            spec.as_os_str(),
            "--platform".as_ref(),
            "linux/amd64".as_ref(),
        ])?,
        1,
    )?;
    ensure!(
        out.contains("FAIL files::etc/platform::contains: does not contain 'linux/arm64'"),
        "{out}"
    );
    ensure!(out.contains("FAIL absent::arch-amd64"), "{out}");
    // A platform the index lacks fails the platform check and evaluates nothing else.
    let out = expect_exit(
        &tdg.run([
            "verify".as_ref(),
            spec.as_os_str(),
            "--platform".as_ref(),
            "linux/s390x".as_ref(),
        ])?,
        1,
    )?;
    ensure!(out.contains("FAIL platform: no linux/s390x manifest in the index (it has linux/amd64, linux/arm64, linux/arm/v7)"), "{out}");
    ensure!(
        out.contains("skip files::etc/platform::contains: not evaluated"),
        "{out}"
    );
    // No platform at all: an index cannot be checked as one image.
    let spec = index_spec(tmp.path(), &image, None)?;
    let out = expect_exit(&tdg.run(["verify".as_ref(), spec.as_os_str()])?, 2)?;
    ensure!(
        out.contains("set `platform` in the spec or pass --platform"),
        "{out}"
    );
    Ok(())
}

pub fn docker_media_types_pushed_by_tdg_verify() -> Result<()> {
    let w = world::world()?;
    let tmp = tempfile::tempdir()?;
    let layout = three_platform_index(tmp.path(), Flavor::Docker)?;
    let image = format!("{}/fixtures/index:docker", w.registry.addr);
    fixtures::push_with_tdg(&layout, "t", &image)?;
    let raw = fixtures::output(
        Command::new("skopeo")
            .args(["inspect", "--raw", "--tls-verify=false"])
            .arg(format!("docker://{image}")),
    )?;
    ensure!(
        raw.contains("application/vnd.docker.distribution.manifest.list.v2+json"),
        "skopeo sees {raw}"
    );
    let spec = index_spec(tmp.path(), &image, Some("linux/arm64"))?;
    expect_exit(&Tdg::new()?.run(["verify".as_ref(), spec.as_os_str()])?, 0)?;
    Ok(())
}

fn fetched_blobs(json: &str) -> Result<u64> {
    let v: serde_json::Value = serde_json::from_str(json).context("report is not JSON")?;
    v["specs"][0]["fetched"]["blobs"]
        .as_u64()
        .context("no fetched.blobs in the report")
}

/// A registry of the test's own (its log and storage are read) serving the spin-only image,
/// pushed by skopeo from `<tmp>/l`.
fn own_registry_with_spin_only() -> Result<(Registry, tempfile::TempDir)> {
    let reg = Registry::start(None)?;
    let tmp = tempfile::tempdir()?;
    let layout = tmp.path().join("l");
    tdg::demo::write_asset_layout(&layout, "spin-only", "v1.11.5", 1 << 20)?;
    let target = format!("{}/urmanac/talos-cozystack-spin-only:v1.11.5", reg.addr);
    fixtures::push_with_skopeo(&layout, "v1.11.5", &target)?;
    Ok((reg, tmp))
}

pub fn second_run_fetches_no_blob() -> Result<()> {
    let (reg, tmp) = own_registry_with_spin_only()?;
    let tdg = Tdg::new()?;
    let spec = world::spec_without_goldens("spin-only", tmp.path())?;
    let mirror = format!("ghcr.io=http://{}", reg.addr);
    let args = [
        "verify",
        spec.to_str().context("utf-8")?,
        "--mirror",
        &mirror,
        "--format",
        "json",
    ];
    let first = expect_exit(&tdg.run(args)?, 0)?;
    let gets_after_first = reg.blob_gets();
    ensure!(
        fetched_blobs(&first)? == 2 && gets_after_first == 2,
        "first run: tdg fetched {}, registry served {gets_after_first}",
        fetched_blobs(&first)?
    );
    let second = expect_exit(&tdg.run(args)?, 0)?;
    ensure!(
        fetched_blobs(&second)? == 0,
        "second run fetched {} blobs",
        fetched_blobs(&second)?
    );
    ensure!(
        reg.blob_gets() == gets_after_first,
        "the registry served {} more blob GETs",
        reg.blob_gets() - gets_after_first
    );
    Ok(())
}

/// Flips one byte of a file in place, keeping its size.
pub(crate) fn flip_byte(path: &std::path::Path, at: u64) -> Result<()> {
    use std::io::{Read, Seek, SeekFrom, Write};
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    let mut b = [0u8];
    f.seek(SeekFrom::Start(at))?;
    f.read_exact(&mut b)?;
    f.seek(SeekFrom::Start(at))?;
    f.write_all(&[b[0] ^ 0xff])?;
    Ok(())
}

fn layer_digest(layout: &std::path::Path) -> Result<String> {
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json"))?)?;
    let m = index["manifests"][0]["digest"]
        .as_str()
        .context("no manifest")?;
    let hex = m.trim_start_matches("sha256:");
    let man: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("blobs/sha256").join(hex))?)?;
    Ok(man["layers"][0]["digest"]
        .as_str()
        .context("no layer")?
        .to_string())
}

pub fn tampered_registry_blob_is_an_error_and_never_cached() -> Result<()> {
    let (reg, tmp) = own_registry_with_spin_only()?;
    let layout = tmp.path().join("l");
    let layer = layer_digest(&layout)?;
    let hex = layer.trim_start_matches("sha256:");
    flip_byte(&reg.blob_file(hex).context("own registry")?, 4096)?;
    let tdg = Tdg::new()?;
    let spec = world::repo_root().join("specs/spin-only-arm64.yaml");
    for _ in 0..2 {
        let out = expect_exit(&tdg.verify_through(&spec, &reg.addr)?, 2)?;
        ensure!(
            out.contains(&format!("blob {layer}")) && out.contains("digest mismatch"),
            "{out}"
        );
        ensure!(
            !tdg.cache.join("blobs/sha256").join(hex).exists(),
            "the tampered blob stayed in the cache"
        );
    }
    Ok(())
}

/// `--verify-cache` re-reads and re-hashes the cached blobs.
pub fn corrupted_cache_blob_is_caught_evicted_and_fetched_again() -> Result<()> {
    let w = world::world()?;
    let tdg = Tdg::new()?;
    let spec = world::repo_root().join("specs/spin-only-arm64.yaml");
    let mirror = format!("ghcr.io=http://{}", w.registry.addr);
    let args = [
        "verify",
        spec.to_str().context("utf-8")?,
        "--mirror",
        &mirror,
    ];
    expect_exit(&tdg.run(args)?, 0)?;
    // Corrupt the largest cached blob (the layer) in place.
    let blobs = tdg.cache.join("blobs/sha256");
    let layer = std::fs::read_dir(&blobs)?
        .filter_map(|e| e.ok())
        .max_by_key(|e| e.metadata().map(|m| m.len()).unwrap_or(0))
        .context("empty cache")?
        .path();
    flip_byte(&layer, 100)?;
    // A warm run reads no layer (the tree index is cached); --verify-cache reads them all.
    let out = expect_exit(&tdg.run(args.iter().chain(&["--verify-cache"]))?, 2)?;
    ensure!(out.contains("digest mismatch"), "{out}");
    ensure!(!layer.exists(), "the corrupted blob was not evicted");
    expect_exit(&tdg.run(args)?, 0)?;
    Ok(())
}

pub fn tampered_layout_blob_is_an_error() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let layout = tmp.path().join("l");
    tdg::demo::write_asset_layout(&layout, "spin-only", "v1.11.5", 1 << 20)?;
    let layer = layer_digest(&layout)?;
    flip_byte(
        &layout
            .join("blobs/sha256")
            .join(layer.trim_start_matches("sha256:")),
        10,
    )?;
    let spec = world::repo_root().join("specs/spin-only-arm64.yaml");
    let out = expect_exit(
        &Tdg::new()?.run([
            "verify",
            spec.to_str().context("utf-8")?,
            "--image",
            &format!("oci:{}:v1.11.5", layout.display()),
        ])?,
        2,
    )?;
    ensure!(
        out.contains(&format!("layer {layer}")) && out.contains("digest mismatch"),
        "{out}"
    );
    Ok(())
}

/// `--mirror ghcr.io=oci:/root` reads `ghcr.io/org/name:tag` from `oci:/root/org/name:tag`,
/// and `TDG_MIRROR` carries the same rules.
pub fn layout_mirror_and_tdg_mirror_env() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let root = tmp.path().join("layouts");
    tdg::demo::write_asset_layout(
        &root.join("urmanac/talos-cozystack-spin-only"),
        "spin-only",
        "v1.11.5",
        1 << 20,
    )?;
    let spec = world::spec_without_goldens("spin-only", tmp.path())?;
    let spec = spec.to_str().context("utf-8")?;
    let mirror = format!("ghcr.io=oci:{}", root.display());
    let tdg = Tdg::new()?;
    expect_exit(&tdg.run(["verify", spec, "--mirror", &mirror])?, 0)?;
    let out = Command::new(env!("CARGO_BIN_EXE_tdg"))
        .env("TDG_CACHE", &tdg.cache)
        .env("DOCKER_CONFIG", &tdg.docker_config)
        .env(
            "TDG_MIRROR",
            format!("quay.io=http://127.0.0.1:1, {mirror}"),
        )
        .args(["verify", spec])
        .output()?;
    expect_exit(&out, 0)?;
    // A flag overrides the environment's rule for the same host.
    let out = Command::new(env!("CARGO_BIN_EXE_tdg"))
        .env("TDG_CACHE", &tdg.cache)
        .env("DOCKER_CONFIG", &tdg.docker_config)
        .env("TDG_MIRROR", &mirror)
        .args(["verify", spec, "--mirror", "ghcr.io=oci:/nonexistent"])
        .output()?;
    let text = expect_exit(&out, 2)?;
    ensure!(
        text.contains("/nonexistent/urmanac/talos-cozystack-spin-only is not an OCI image layout"),
        "{text}"
    );
    Ok(())
}
