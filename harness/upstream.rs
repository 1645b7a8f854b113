//! The upstream inputs a build pulls, made by code in the shape siderolabs publishes them:
//! the imager (`/usr/install/<arch>/{vmlinuz,initramfs.xz,...}`), the installer (a UKI
//! `vmlinuz.efi` per arch, Talos >= 1.10) and the spin and tailscale extension images, each an
//! index of linux/amd64 and linux/arm64, pushed under their GHCR names to a test registry.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Result;

use tdg::demo;
use tdg::oci::image::{self, Flavor, Layer, TarEntry};
use tdg::oci::layout::LayoutWriter;
use tdg::oci::manifest::Compression as LayerCompression;
use tdg::talos::initramfs::Compression;
use tdg::talos::kernel;

use crate::fixtures;

pub const ARCHES: [&str; 2] = ["amd64", "arm64"];
pub const IMAGER: &str = "siderolabs/imager:v1.11.5";
pub const INSTALLER: &str = "siderolabs/installer:v1.11.5";
pub const SPIN: &str = "siderolabs/spin:v0.21.0";
pub const TAILSCALE: &str = "siderolabs/tailscale:1.88.1";

/// Kernel stand-ins are this big; a realistic 60 MiB kernel is for the benchmark.
pub const KERNEL_LEN: usize = 1 << 20;

fn dirs(path: &str) -> Vec<TarEntry> {
    let mut out = Vec::new();
    let mut at = String::new();
    for c in path.split('/') {
        at = if at.is_empty() {
            c.to_string()
        } else {
            format!("{at}/{c}")
        };
        out.push(TarEntry::dir(&at, 0o755));
    }
    out
}

pub fn imager_entries(arch: &str, kernel_len: usize) -> Result<Vec<TarEntry>> {
    let d = format!("usr/install/{arch}");
    let machine = if arch == "arm64" {
        kernel::MACHINE_ARM64
    } else {
        kernel::MACHINE_AMD64
    };
    let mut e = dirs(&d);
    e.push(TarEntry::file(
        &format!("{d}/vmlinuz"),
        demo::kernel(arch, kernel_len),
        0o644,
    ));
    e.push(TarEntry::file(
        &format!("{d}/initramfs.xz"),
        demo::initramfs(arch, &[], Compression::Zstd)?,
        0o644,
    ));
    e.push(TarEntry::file(
        &format!("{d}/systemd-stub.efi"),
        kernel::write_pe(machine, &[(".text", b"stub")]),
        0o644,
    ));
    e.push(TarEntry::file(
        &format!("{d}/systemd-boot.efi"),
        kernel::write_pe(machine, &[(".text", b"boot")]),
        0o644,
    ));
    e.push(TarEntry::file(
        &format!("{d}/talos.spdx.json"),
        "{\"spdxVersion\":\"SPDX-2.3\"}\n",
        0o644,
    ));
    Ok(e)
}

pub fn uki(arch: &str, kernel_len: usize) -> Result<Vec<u8>> {
    let machine = if arch == "arm64" {
        kernel::MACHINE_ARM64
    } else {
        kernel::MACHINE_AMD64
    };
    let initrd = demo::initramfs(arch, &[], Compression::Zstd)?;
    let linux = demo::kernel(arch, kernel_len);
    Ok(kernel::write_pe(
        machine,
        &[
            (".osrel", b"NAME=Talos\nID=talos\nVERSION_ID=v1.11.5\n"),
            (".cmdline", b"talos.platform=metal"),
            (".uname", b"6.12.57-talos"),
            (".linux", &linux),
            (".initrd", &initrd),
        ],
    ))
}

pub fn installer_entries(arch: &str) -> Result<Vec<TarEntry>> {
    let d = format!("usr/install/{arch}");
    let mut e = dirs("bin");
    e.push(TarEntry::file("bin/installer", "#!installer\n", 0o755));
    e.extend(dirs(&d));
    e.push(TarEntry::file(
        &format!("{d}/vmlinuz.efi"),
        uki(arch, KERNEL_LEN)?,
        0o644,
    ));
    e.push(TarEntry::file(
        &format!("{d}/systemd-boot.efi"),
        kernel::write_pe(
            if arch == "arm64" {
                kernel::MACHINE_ARM64
            } else {
                kernel::MACHINE_AMD64
            },
            &[(".text", b"boot")],
        ),
        0o644,
    ));
    Ok(e)
}

/// Writes an index with one image per arch into a layout.
pub fn layout_multi(
    dir: &Path,
    tag: &str,
    per_arch: impl Fn(&str) -> Result<Vec<TarEntry>>,
) -> Result<()> {
    let mut out = LayoutWriter::create(dir)?;
    let mut descs = Vec::new();
    for arch in ARCHES {
        let layer = Layer::new(&per_arch(arch)?, LayerCompression::Gzip, Flavor::Oci)?;
        descs.push(image::write_image(
            &out,
            &format!("linux/{arch}").parse()?,
            &[layer],
            &BTreeMap::new(),
            Flavor::Oci,
        )?);
    }
    let (mt, bytes) = image::index_bytes(&descs, Flavor::Oci)?;
    out.add_manifest(&mt, &bytes, Some(tag))?;
    Ok(())
}

/// An image's entries for one arch.
type EntriesFor = dyn Fn(&str) -> Result<Vec<TarEntry>>;

/// Pushes every upstream input to `registry` (host:port) under its GHCR repository name.
pub fn push_all(registry: &str, work: &Path) -> Result<()> {
    let inputs: [(&str, Box<EntriesFor>); 4] = [
        (IMAGER, Box::new(|a| imager_entries(a, KERNEL_LEN))),
        (INSTALLER, Box::new(installer_entries)),
        (
            SPIN,
            Box::new(|_| demo::extension_image_entries(&demo::spin())),
        ),
        (
            TAILSCALE,
            Box::new(|_| demo::extension_image_entries(&demo::tailscale())),
        ),
    ];
    for (name, entries) in inputs {
        let layout = work.join(name.replace(['/', ':'], "_"));
        layout_multi(&layout, "t", entries)?;
        fixtures::push_with_tdg(&layout, "t", &format!("{registry}/{name}"))?;
    }
    Ok(())
}
