//! What the consumers of a published image accept, for each layer compression tdg could
//! package with: the ground for keeping the package stage at gzip (docs/testing.md, "Packaging").
//! Each image is pushed by tdg to the test registry, then read by skopeo (into a layout and
//! into a docker-archive), by umoci (unpacked, its files hashed) and by tdg.

use std::process::Command;

use anyhow::{ensure, Result};

use tdg::digest::Digest;
use tdg::oci::image::{Flavor, TarEntry as E};
use tdg::oci::manifest::Compression;

use crate::fixtures;
use crate::world;

/// Whether a command succeeded (its failure is an answer here, not an error).
fn accepts(cmd: &mut Command) -> Result<bool> {
    Ok(cmd.output()?.status.success())
}

pub fn consumers_accept_gzip_and_plain_tar_layers_and_refuse_zstd_ones() -> Result<()> {
    let w = world::world()?;
    let tmp = tempfile::tempdir()?;
    let kernel = tdg::demo::kernel("arm64", 1 << 20);
    let initramfs = tdg::demo::filler(2 << 20, 9);
    let entries = vec![
        E::dir("assets", 0o755),
        E::dir("assets/talos", 0o755),
        E::dir("assets/talos/arm64", 0o755),
        E::dir("assets/talos/arm64/boot", 0o755),
        E::file("assets/talos/arm64/boot/vmlinuz", kernel.clone(), 0o644),
        E::file("assets/talos/arm64/boot/initramfs.xz", initramfs, 0o644),
    ];
    let mut seen = Vec::new();
    for (name, c) in [
        ("gzip", Compression::Gzip),
        ("tar", Compression::None),
        ("zstd", Compression::Zstd),
    ] {
        let dir = tmp.path().join(name);
        let layout = dir.join("layout");
        fixtures::layout_image(
            &layout,
            "t",
            &[(entries.clone(), c)],
            "linux/arm64",
            &Default::default(),
            Flavor::Oci,
        )?;
        let image = format!("{}/consumers/{name}:t", w.registry.addr);
        fixtures::push_with_tdg(&layout, "t", &image)?;
        let pulled = dir.join("pulled");
        let skopeo = accepts(
            Command::new("skopeo")
                .args(["copy", "--quiet", "--src-tls-verify=false"])
                .arg(format!("docker://{image}"))
                .arg(format!("oci:{}:t", pulled.display())),
        )?;
        let bundle = dir.join("bundle");
        let umoci = skopeo
            && accepts(
                Command::new("umoci")
                    .args(["unpack", "--image"])
                    .arg(format!("{}:t", pulled.display()))
                    .arg(&bundle),
            )?;
        if umoci {
            let got = std::fs::read(bundle.join("rootfs/assets/talos/arm64/boot/vmlinuz"))?;
            ensure!(
                Digest::of(&got) == Digest::of(&kernel),
                "{name}: umoci unpacked another vmlinuz"
            );
        }
        let archive = accepts(
            Command::new("skopeo")
                .args(["copy", "--quiet", "--src-tls-verify=false"])
                .arg(format!("docker://{image}"))
                .arg(format!(
                    "docker-archive:{}:x:t",
                    dir.join("a.tar").display()
                )),
        )?;
        let ours = accepts(
            Command::new(env!("CARGO_BIN_EXE_tdg"))
                .env("TDG_CACHE", dir.join("cache"))
                .args(["tree", &image]),
        )?;
        seen.push((name, [skopeo, umoci, archive, ours]));
    }
    // skopeo into a layout, umoci unpack, skopeo into a docker-archive, tdg.
    let want = [
        ("gzip", [true, true, true, true]),
        ("tar", [true, true, true, true]),
        ("zstd", [true, false, false, true]),
    ];
    ensure!(
        seen == want,
        "consumers changed their minds (skopeo→oci, umoci, skopeo→docker-archive, tdg): {seen:?}; revisit docs/testing.md, \"Packaging\""
    );
    Ok(())
}
