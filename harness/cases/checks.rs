//! Every check kind fails on an image that breaks it, with a short expected-vs-found message.
//! The broken image is checked against the real spec in `specs/`, through the registry.

use std::collections::BTreeMap;

use anyhow::{ensure, Context, Result};

use tdg::check::{plan, Status};
use tdg::oci::image::{Flavor, TarEntry as E};
use tdg::oci::manifest::Compression;

use crate::fixtures;
use crate::world;

/// The spin-only layout with everything wrong that a spec can notice.
fn broken_entries() -> Vec<E> {
    let r = "assets/talos/arm64";
    vec![
        E::dir("assets", 0o755),
        E::dir("assets/talos", 0o755),
        E::dir(r, 0o755),
        E::dir(&format!("{r}/boot"), 0o755),
        E::file(&format!("{r}/boot/vmlinuz"), vec![0u8; 100], 0o755),
        E::dir(&format!("{r}/boot/initramfs.xz"), 0o755),
        E::file(&format!("{r}/boot/initramfs"), "stray", 0o644),
        E::file(
            &format!("{r}/checksums.sha256"),
            format!("{}  ./boot/vmlinuz\nnot a checksum line\n", "0".repeat(64)),
            0o644,
        ),
        E::dir(&format!("{r}/validation"), 0o755),
        E::file(
            &format!("{r}/validation/build-report.txt"),
            "Talos Version: v1.10.0\nVariant: spin-tailscale\nCozyStack Commit: XYZ\n",
            0o644,
        ),
        E::dir("assets/talos/amd64", 0o755),
        E::file("assets/talos/amd64/vmlinuz", "x86", 0o644),
    ]
}

fn run_spec(spec_path: &std::path::Path, image: &str) -> Result<tdg::check::SpecRun> {
    let w = world::world()?;
    let spec = tdg::spec::load_file(spec_path, None).map_err(|e| anyhow::anyhow!("{e}"))?;
    let plan = plan::plan(spec, Some(image.parse()?), None);
    Ok(tokio::runtime::Runtime::new()?.block_on(tdg::run::pipeline::run(&w.env, &plan)))
}

fn expect_failures(run: &tdg::check::SpecRun, want: &[(&str, &str)]) -> Result<()> {
    ensure!(run.error.is_none(), "could not evaluate: {:?}", run.error);
    for (check, fragment) in want {
        let o = run
            .outcomes
            .iter()
            .find(|o| o.check == *check)
            .with_context(|| format!("no check {check}"))?;
        ensure!(
            o.status == Status::Fail,
            "{check} should fail, got {:?}: {}",
            o.status,
            o.message
        );
        ensure!(
            o.message.contains(fragment),
            "{check}: message {:?} lacks {fragment:?}",
            o.message
        );
        ensure!(
            o.message.len() < 240,
            "{check}: message is not short: {}",
            o.message
        );
    }
    Ok(())
}

pub fn every_check_of_the_real_spec_fails_on_a_broken_image() -> Result<()> {
    let w = world::world()?;
    let tmp = tempfile::tempdir()?;
    let layout = tmp.path().join("l");
    let labels = BTreeMap::from([
        (
            "org.opencontainers.image.source".to_string(),
            "https://github.com/urmanac/talos-cozystack-demo".to_string(),
        ),
        (
            "org.opencontainers.image.title".to_string(),
            "talos-cozystack-spin-tailscale".to_string(),
        ),
    ]);
    fixtures::layout_image(
        &layout,
        "broken",
        &[(broken_entries(), Compression::Gzip)],
        "linux/amd64",
        &labels,
        Flavor::Oci,
    )?;
    let image = format!(
        "{}/urmanac/talos-cozystack-spin-only:broken",
        w.registry.addr
    );
    fixtures::push_with_skopeo(&layout, "broken", &image)?;
    // The stand-in's kernel boots nothing: the spec without its boot (whose checks fail in
    // `boot.rs` on images that break them).
    let run = run_spec(&world::spec_without_boot("spin-only", tmp.path())?, &image)?;
    let f = "files::assets/talos/arm64";
    expect_failures(
        &run,
        &[
            ("platform", "expected platform linux/arm64, the image is linux/amd64"),
            ("platforms", "expected [linux/arm64], found [linux/amd64]; missing linux/arm64; unexpected linux/amd64"),
            ("labels::org.opencontainers.image.revision", "label org.opencontainers.image.revision is missing"),
            ("labels::org.opencontainers.image.title", "is 'talos-cozystack-spin-tailscale', expected 'talos-cozystack-spin-only'"),
            (&format!("{f}/boot/vmlinuz::mode"), "expected mode 0644, found 0755"),
            (&format!("{f}/boot/vmlinuz::size"), "size 100 bytes is below the minimum 524288 bytes"),
            (&format!("{f}/boot/initramfs.xz::type"), "expected a file, found a dir"),
            (&format!("{f}/boot/initramfs.xz::mode"), "expected mode 0644, found 0755"),
            (&format!("{f}/boot/initramfs.xz::size"), "expected a file, found a dir"),
            (&format!("{f}/boot/vmlinuz::kernel"), "not a kernel: no arm64 Image magic at 0x38"),
            (&format!("{f}/boot/initramfs.xz::initramfs::extensions"), "expected a file, found a dir"),
            (&format!("{f}/checksums.sha256::checksums"), "line 2: not a sha256sum line: 'not a checksum line'"),
            (&format!("{f}/validation/build-report.txt::report"), "CozyStack Commit is 'XYZ', expected /^[0-9a-f]{7,40}$/; Talos Version is 'v1.10.0', expected 'v1.11.5'; no 'Target' field; Variant is 'spin-tailscale', expected 'spin-only'"),
            (&format!("{f}/validation/build-report.txt::report::revision"), "the report has no 'Source Commit' field"),
            ("absent::assets/talos/amd64", "present: assets/talos/amd64 (dir, 1 entries below)"),
            ("absent::assets/talos/arm64/boot/initramfs", "present: assets/talos/arm64/boot/initramfs (file)"),
        ],
    )
}

/// The kinds the real spec does not use: a digest pin, sha256, plain existence, a symlink
/// type, a size maximum, and a regex label.
pub fn remaining_check_kinds_fail_with_short_messages() -> Result<()> {
    let w = world::world()?;
    let tmp = tempfile::tempdir()?;
    let image = format!(
        "{}/urmanac/talos-cozystack-spin-only:v1.11.5",
        w.registry.addr
    );
    let spec = world::write_spec(
        tmp.path(),
        "kinds",
        &format!(
            "apiVersion: tdg/v1\nname: kinds\nimage: {image}\ndigest: sha256:{zeros}\nexpect:\n  labels:\n    org.opencontainers.image.revision: \"^[0-9]{{3}}$\"\n  files:\n    - path: assets/talos/arm64/boot/vmlinux\n    - path: assets/talos/arm64/boot\n      type: symlink\n    - path: assets/talos/arm64/boot/vmlinuz\n      sha256: {zeros}\n      size: {{max: 1KiB}}\n",
            zeros = "0".repeat(64)
        ),
    )?;
    let run = run_spec(&spec, &image)?;
    let f = "files::assets/talos/arm64/boot";
    expect_failures(
        &run,
        &[
            (
                "digest",
                &format!(
                    "pinned sha256:{}, but the image resolved to sha256:",
                    "0".repeat(64)
                ),
            ),
            (
                "labels::org.opencontainers.image.revision",
                "expected /^[0-9]{3}$/",
            ),
            (
                &format!("{f}/vmlinux::exists"),
                "missing (assets/talos/arm64/boot/ holds: initramfs.xz, vmlinuz)",
            ),
            (&format!("{f}::type"), "expected a symlink, found a dir"),
            (
                &format!("{f}/vmlinuz::sha256"),
                &format!("expected sha256 {}, found ", "0".repeat(64)),
            ),
            (
                &format!("{f}/vmlinuz::size"),
                // The image is built from Debian's arm64 kernel.
                &format!(
                    "size {} is above the maximum 1024 bytes (1.0 KiB)",
                    tdg::spec::size::ByteSize(
                        crate::debian::arm64_kernel()?.vmlinuz()?.len() as u64
                    )
                ),
            ),
        ],
    )
}
