//! `tdg build` doing what Talos's imager does, read back by the reference tools: early
//! microcode in an uncompressed cpio before the base (`cpio -t`, `cpio -i --to-stdout`), a base
//! that already holds extensions keeping them when the kernel unpacks the segments in order
//! (`cpio -idu` over each segment in turn), and modules for another kernel refused before
//! anything is written.

use std::path::Path;

use anyhow::{ensure, Context, Result};

use tdg::demo;
use tdg::imager::assemble::FileSpec;
use tdg::oci::image::TarEntry;
use tdg::talos::initramfs::{self, Compression};

use super::build::{build, build_spec, sh};
use super::cli::{expect_exit, Tdg};
use crate::{fixtures, upstream, world};

/// Pushes an image whose per-arch entries `entries` makes, as `ghcr.io/<name>` would be.
fn publish(name: &str, tmp: &Path, entries: impl Fn(&str) -> Result<Vec<TarEntry>>) -> Result<()> {
    let w = world::world()?;
    let layout = tmp.join(name.replace(['/', ':'], "_"));
    upstream::layout_multi(&layout, "t", entries)?;
    fixtures::push_with_tdg(&layout, "t", &format!("{}/{name}", w.registry.addr))?;
    Ok(())
}

/// Writes each segment of an initramfs to `dir/seg<i>` (decompressed) and returns them.
fn segments(data: &[u8], dir: &Path) -> Result<Vec<(Compression, String)>> {
    let walked = initramfs::walk_bytes(data, Default::default())?;
    let mut out = Vec::new();
    for (i, seg) in walked.segments.iter().enumerate() {
        let raw = &data[seg.offset as usize..(seg.offset + seg.size) as usize];
        let name = format!("seg{i}");
        std::fs::write(dir.join(format!("{name}.raw")), raw)?;
        let tool = match seg.compression {
            Compression::None => "cat",
            Compression::Zstd => "zstd -dc",
            Compression::Xz => "xz -dc",
            Compression::Gzip => "gzip -dc",
        };
        sh(&format!("{tool} {name}.raw > {name}.cpio"), dir)?;
        out.push((seg.compression, format!("{name}.cpio")));
    }
    Ok(out)
}

fn built_initramfs(out_dir: &Path, arch: &str) -> Result<Vec<u8>> {
    let export = out_dir.join("export");
    expect_exit(
        &Tdg::new()?.run([
            "export".as_ref(),
            format!("oci:{}:t", out_dir.join("oci").display()).as_ref(),
            export.as_os_str(),
            "--platform".as_ref(),
            format!("linux/{arch}").as_ref(),
        ])?,
        0,
    )?;
    Ok(std::fs::read(
        export.join(format!("assets/talos/{arch}/boot/initramfs.xz")),
    )?)
}

/// amd64 with CozyStack's microcode packages: the blobs joined in glob order into
/// kernel/x86/microcode/*.bin, in an uncompressed cpio placed first; the rest of the firmware
/// (not microcode) moves into the appended cpio.
pub fn microcode_goes_into_an_uncompressed_cpio_before_the_base() -> Result<()> {
    let w = world::world()?;
    let tmp = tempfile::tempdir()?;
    let out = tmp.path().join("oci");
    let spec = build_spec(
        tmp.path(),
        "ucode",
        "amd64",
        "ghcr.io/siderolabs/imager:v1.11.5",
        &[
            &format!("ghcr.io/{}", upstream::AMD_UCODE),
            &format!("ghcr.io/{}", upstream::INTEL_UCODE),
            "ghcr.io/siderolabs/spin:v0.21.0",
        ],
        "  files:\n    - path: assets/talos/amd64/boot/initramfs.xz\n      initramfs: {extensions: {exact: [amd-ucode, intel-ucode, spin]}}\n",
        None,
    )?;
    let o = format!("oci:{}:t", out.display());
    let text = expect_exit(
        &build(&Tdg::new()?, &w.registry.addr, &spec, &["--output", &o])?,
        0,
    )?;
    ensure!(text.contains("microcode 2"), "{text}");
    let data = built_initramfs(tmp.path(), "amd64")?;
    let dir = tmp.path();
    let segs = segments(&data, dir)?;
    ensure!(
        segs.len() == 3 && segs[0].0 == Compression::None,
        "segments: {:?}",
        segs.iter().map(|s| s.0).collect::<Vec<_>>()
    );
    let listing = sh(&format!("cpio -t --quiet < {}", segs[0].1), dir)?;
    ensure!(
        listing == "kernel\nkernel/x86\nkernel/x86/microcode\nkernel/x86/microcode/AuthenticAMD.bin\nkernel/x86/microcode/GenuineIntel.bin\n",
        "{listing:?}"
    );
    let intel = sh(
        &format!(
            "cpio -i --quiet --to-stdout kernel/x86/microcode/GenuineIntel.bin < {} | sha256sum",
            segs[0].1
        ),
        dir,
    )?;
    let x = upstream::cozystack_extension("intel-ucode", "amd64")?;
    let blob = |name: &str| -> Result<Vec<u8>> {
        let f = x
            .rootfs
            .iter()
            .find(|f| f.path.ends_with(name))
            .context("fixture file")?;
        match &f.content {
            tdg::imager::assemble::Content::Bytes(b) => Ok(b.clone()),
            _ => anyhow::bail!("not bytes"),
        }
    };
    let mut joined = blob("06-4f-01")?;
    joined.extend(blob("06-55-04")?);
    ensure!(
        intel.starts_with(tdg::digest::Digest::of(&joined).hex()),
        "GenuineIntel.bin is not 06-4f-01 then 06-55-04: {intel}"
    );
    let appended = sh(&format!("cpio -t --quiet < {}", segs[2].1), dir)?;
    ensure!(
        appended.contains("usr/lib/firmware/amd-ucode/README\n")
            && !appended.contains("microcode_amd")
            && !appended.contains("06-55-04"),
        "{appended}"
    );
    Ok(())
}

/// A base whose initramfs already carries extensions (the factory's `schematic` layer and
/// spin): after the build, the kernel's view (every segment unpacked in order over the same
/// root) has an extensions.yaml listing the base's layers and the new one, and every image it
/// names.
pub fn a_base_with_extensions_keeps_them() -> Result<()> {
    let w = world::world()?;
    let tmp = tempfile::tempdir()?;
    let schematic = tdg::imager::assemble::ExtensionInput {
        metadata: tdg::talos::extensions::Metadata {
            name: "schematic".into(),
            version: "376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba".into(),
            author: "Image Factory (https://factory.talos.dev)".into(),
            description:
                "Virtual extension which specifies the schematic of the image built with schematic."
                    .into(),
            extra_info: "customization: {}\n".into(),
            ..Default::default()
        },
        rootfs: vec![FileSpec::dir("usr"), FileSpec::dir("usr/local")],
    };
    let base_exts = vec![demo::spin(), schematic];
    let base = {
        let mut b = demo::base_initramfs(&upstream::base_modules()?, Compression::Zstd)?;
        b.extend(tdg::imager::bake::extensions_segment(
            &base_exts,
            Compression::Zstd,
        )?);
        b
    };
    publish("siderolabs/imager:with-extensions", tmp.path(), |arch| {
        let mut e = upstream::imager_entries(arch, upstream::KERNEL_LEN)?;
        let path = format!("usr/install/{arch}/initramfs.xz");
        e.retain(|t| t.path != path);
        e.push(TarEntry::file(&path, base.clone(), 0o644));
        Ok(e)
    })?;
    let spec = build_spec(
        tmp.path(),
        "on-factory",
        "arm64",
        "ghcr.io/siderolabs/imager:with-extensions",
        &["ghcr.io/siderolabs/tailscale:1.88.1"],
        "  files:\n    - path: assets/talos/arm64/boot/initramfs.xz\n      initramfs: {extensions: {exact: [spin, tailscale], present: [schematic]}}\n",
        None,
    )?;
    let o = format!("oci:{}:t", tmp.path().join("oci").display());
    let text = expect_exit(
        &build(
            &Tdg::new()?,
            &w.registry.addr,
            &spec,
            &["--output", &o, "--verify"],
        )?,
        0,
    )?;
    ensure!(
        text.contains("2 layers kept from the base") && text.contains("0 failed"),
        "{text}"
    );
    let data = built_initramfs(tmp.path(), "arm64")?;
    let dir = tmp.path();
    let root = dir.join("root");
    std::fs::create_dir_all(&root)?;
    for (_, cpio) in segments(&data, dir)? {
        sh(&format!("cpio -idu --quiet < ../{cpio}"), &root)?;
    }
    let yaml = std::fs::read_to_string(root.join("extensions.yaml"))?;
    let config: tdg::talos::extensions::ExtensionsConfig = serde_saphyr::from_str(&yaml)?;
    let names: Vec<&str> = config
        .layers
        .iter()
        .map(|l| l.metadata.name.as_str())
        .collect();
    ensure!(
        names == ["spin", "schematic", "tailscale"],
        "{names:?}\n{yaml}"
    );
    let images: Vec<&str> = config.layers.iter().map(|l| l.image.as_str()).collect();
    ensure!(images == ["0.sqsh", "1.sqsh", "2.sqsh"], "{images:?}");
    for l in &config.layers {
        let sq = sh(&format!("unsquashfs -l {}", l.image), &root)?;
        ensure!(sq.contains("squashfs-root"), "{}: {sq}", l.image);
    }
    ensure!(
        yaml.contains("extraInfo"),
        "the schematic layer keeps its extraInfo: {yaml}"
    );
    let spin_sq = sh("unsquashfs -l 0.sqsh", &root)?;
    ensure!(spin_sq.contains("containerd-shim-spin-v2"), "{spin_sq}");
    // tdg inspect tells the user's extensions from the machinery's layers.
    let file = dir.join("initramfs.xz");
    std::fs::write(&file, &data)?;
    let shown = expect_exit(
        &Tdg::new()?.run(["inspect".as_ref(), "initramfs".as_ref(), file.as_os_str()])?,
        0,
    )?;
    let machinery = shown
        .split("machinery layers (1):")
        .nth(1)
        .unwrap_or_default();
    ensure!(
        shown.contains("extensions (2):") && machinery.contains("schematic"),
        "{shown}"
    );
    Ok(())
}

/// Modules for another kernel than the base's are refused before anything is written: by
/// their directory, and by their vermagic.
pub fn modules_for_another_kernel_are_refused() -> Result<()> {
    let w = world::world()?;
    let tmp = tempfile::tempdir()?;
    let k = crate::debian::arm64_kernel()?;
    let drbd = k.module("kernel/drivers/block/drbd/drbd.ko")?;
    let mut fake = b"\x7fELF....\0vermagic=5.10.0-other SMP mod_unload aarch64\0".to_vec();
    fake.extend(demo::filler(1024, 3));
    let ext = |dir: String, bytes: Vec<u8>| {
        let mut x = upstream::cozystack_extension("drbd", "amd64").expect("fixture");
        x.rootfs
            .push(FileSpec::dir(&format!("usr/lib/modules/{dir}")));
        x.rootfs
            .push(FileSpec::dir(&format!("usr/lib/modules/{dir}/extras")));
        x.rootfs.push(FileSpec::file(
            &format!("usr/lib/modules/{dir}/extras/m.ko"),
            bytes,
            0o644,
        ));
        x
    };
    let cases = [
        (
            "other-dir",
            ext("6.0.0-other".into(), drbd),
            "ships modules for kernel 6.0.0-other",
        ),
        (
            "other-vermagic",
            ext(k.kver.clone(), fake),
            "was built for 5.10.0-other",
        ),
    ];
    for (tag, x, fragment) in cases {
        let name = format!("siderolabs/drbd:{tag}");
        let mut rootfs = vec![
            FileSpec::dir("usr"),
            FileSpec::dir("usr/lib"),
            FileSpec::dir("usr/lib/modules"),
        ];
        rootfs.extend(x.rootfs.iter().cloned());
        let mut seen = std::collections::HashSet::new();
        rootfs.retain(|f| seen.insert(f.path.clone()));
        let x = tdg::imager::assemble::ExtensionInput {
            metadata: x.metadata.clone(),
            rootfs,
        };
        publish(&name, tmp.path(), |_| demo::extension_image_entries(&x))?;
        let target = format!("ghcr.io/bad/modules-{tag}:t");
        let spec = build_spec(
            tmp.path(),
            tag,
            "arm64",
            "ghcr.io/siderolabs/imager:v1.11.5",
            &[&format!("ghcr.io/{name}")],
            "  files:\n    - path: assets/talos/arm64/boot/initramfs.xz\n",
            Some(&target),
        )?;
        let text = expect_exit(
            &build(&Tdg::new()?, &w.registry.addr, &spec, &["--push"])?,
            2,
        )?;
        ensure!(text.contains(fragment), "{tag}: {text}");
        let pushed = std::process::Command::new("skopeo")
            .args(["inspect", "--tls-verify=false"])
            .arg(format!("docker://{}/bad/modules-{tag}:t", w.registry.addr))
            .output()?;
        ensure!(!pushed.status.success(), "{tag}: something was pushed");
    }
    Ok(())
}
