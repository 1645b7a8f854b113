//! Writes the seed corpus of each fuzz target (`fuzz/corpus/<target>/`) from the same
//! fixtures the tests use: the demo's kernels, initramfs, reports and layout documents, the
//! repository's specs and schematics. `cargo run --example fuzz_seeds -- fuzz/corpus`, then
//! minimise with `cargo fuzz cmin`. Structure-aware targets (`layers*`, `initramfs_roundtrip`)
//! start from nothing: their inputs are `arbitrary` encodings, not files.

use std::path::{Path, PathBuf};

use anyhow::Result;
use tdg::demo;
use tdg::imager::assemble::{self, FileSpec};
use tdg::talos::initramfs::Compression;

fn put(root: &Path, target: &str, name: &str, bytes: impl AsRef<[u8]>) -> Result<()> {
    let dir = root.join(target);
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join(name), bytes)?;
    Ok(())
}

fn main() -> Result<()> {
    let root = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "fuzz/corpus".into()),
    );
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    for (dir, target) in [("specs", "spec"), ("schematics", "schematic")] {
        for e in std::fs::read_dir(repo.join(dir))? {
            let p = e?.path();
            put(
                &root,
                target,
                &p.file_name().unwrap().to_string_lossy(),
                std::fs::read(&p)?,
            )?;
        }
    }
    put(
        &root,
        "spec",
        "demo.yaml",
        include_str!("../src/demo/spec.yaml"),
    )?;
    put(
        &root,
        "schematic",
        "json.json",
        r#"{"customization":{"systemExtensions":{"officialExtensions":["siderolabs/zfs"]},"extraKernelArgs":["console=ttyS0"]}}"#,
    )?;

    // Kernels: both arches, and a UKI carrying one.
    put(&root, "kernel", "arm64", demo::kernel("arm64", 4096))?;
    put(&root, "kernel", "amd64", demo::kernel("amd64", 4096))?;
    let uki = tdg::talos::kernel::write_pe(
        tdg::talos::kernel::MACHINE_ARM64,
        &[
            (".linux", &demo::kernel("arm64", 4096)),
            (".cmdline", b"console=ttyAMA0"),
            (".osrel", b"ID=talos"),
        ],
    );
    put(&root, "kernel", "uki", uki)?;

    // Initramfs: every compression, extensions appended, amd64 microcode first.
    let exts = [demo::spin()];
    for (c, name) in [
        (Compression::Zstd, "zstd"),
        (Compression::Xz, "xz"),
        (Compression::Gzip, "gzip"),
        (Compression::None, "none"),
    ] {
        put(
            &root,
            "initramfs",
            name,
            tdg::imager::bake::extensions_segment(&exts, c)?,
        )?;
    }
    put(
        &root,
        "initramfs",
        "newc",
        assemble::newc(&[
            FileSpec::dir("etc"),
            FileSpec::file("etc/a", b"x".to_vec(), 0o644),
        ])?,
    )?;

    // Reports, checksums and extension documents of the demo assets.
    let parts = demo::AssetParts::new("spin-tailscale", "arm64", 4096)?;
    put(&root, "build_report", "text", &parts.report)?;
    put(
        &root,
        "build_report",
        "json",
        parts.report_json.as_deref().unwrap_or("{}"),
    )?;
    put(&root, "checksums", "demo", parts.computed_checksums())?;
    put(&root, "checksums", "mixed", "0000000000000000000000000000000000000000000000000000000000000000 *boot/vmlinuz\n# comment\n")?;
    let segment = tdg::imager::bake::extensions_segment(&exts, Compression::None)?;
    let walked = tdg::talos::initramfs::walk_bytes(&segment, Default::default())?;
    if let Some(c) = walked.extensions {
        put(
            &root,
            "extensions",
            "extensions.yaml",
            serde_saphyr::to_string(&c)?,
        )?;
    }
    for e in demo::extension_image_entries(&demo::tailscale())? {
        if e.path == "manifest.yaml" {
            if let tdg::oci::image::Body::File(b) = &e.body {
                put(&root, "extensions", "manifest.yaml", b)?;
            }
        }
    }
    put(&root, "extensions", "range", ">= v1.12.0, < 1.13.0 || 2.x")?;

    // OCI documents of the demo layout, each behind the byte that picks its Content-Type.
    let tmp = tempfile::tempdir()?;
    demo::write_asset_layout(tmp.path(), "spin-only", "v1.12.0", 4096)?;
    for e in std::fs::read_dir(tmp.path().join("blobs/sha256"))? {
        let p = e?.path();
        let b = std::fs::read(&p)?;
        if b.first() == Some(&b'{') {
            let mut doc = vec![0u8];
            doc.extend(&b);
            put(
                &root,
                "oci_document",
                &p.file_name().unwrap().to_string_lossy()[..16],
                doc,
            )?;
        }
    }

    // A squashfs holding a module tree, as a base rootfs does.
    let sq = assemble::squashfs(
        &demo::with_parents(vec![FileSpec::file(
            "usr/lib/modules/6.18.0/kernel/a.ko",
            b"\x7fELF".to_vec(),
            0o644,
        )]),
        Compression::Zstd,
    )?;
    put(&root, "squashfs", "modules", sq)?;

    for (i, r) in ["ghcr.io/org/img:v1", "localhost:5000/a/b@sha256:0000000000000000000000000000000000000000000000000000000000000000", "busybox", "oci:/tmp/layout:tag"].iter().enumerate() {
        put(&root, "reference", &format!("r{i}"), r)?;
    }
    put(
        &root,
        "docker_config",
        "auths",
        r#"{"auths":{"ghcr.io":{"auth":"dTpw"},"https://index.docker.io/v1/":{"username":"u","password":"p"}},"credHelpers":{"localhost:5000":"test"}}"#,
    )?;
    put(
        &root,
        "docker_config",
        "store",
        r#"{"credsStore":"desktop"}"#,
    )?;
    Ok(())
}
