//! The upstream inputs a build pulls, made by code in the shape siderolabs publishes them:
//! the imager (`/usr/install/<arch>/{vmlinuz,initramfs.xz,...}`; on arm64 its rootfs carries
//! real modules of Debian's arm64 cloud kernel), the installer (a UKI `vmlinuz.efi` per arch,
//! Talos >= 1.10), spin and tailscale, and CozyStack's extensions (the firmware packages,
//! drbd and zfs with real Debian modules on arm64, the microcode packages), each an index of
//! linux/amd64 and linux/arm64, pushed under their GHCR names to a test registry.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Result;

use tdg::demo;
use tdg::imager::assemble::{ExtensionInput, FileSpec};
use tdg::oci::image::{self, Flavor, Layer, TarEntry};
use tdg::oci::layout::LayoutWriter;
use tdg::oci::manifest::Compression as LayerCompression;
use tdg::talos::extensions::{Compatibility, Metadata, TalosCompat};
use tdg::talos::initramfs::Compression;
use tdg::talos::kernel;

use crate::{debian, fixtures};

pub const ARCHES: [&str; 2] = ["amd64", "arm64"];
pub const IMAGER: &str = "siderolabs/imager:v1.11.5";
pub const INSTALLER: &str = "siderolabs/installer:v1.11.5";
pub const SPIN: &str = "siderolabs/spin:v0.21.0";
pub const TAILSCALE: &str = "siderolabs/tailscale:1.88.1";
// CozyStack's Talos profile (packages/core/installer/images/talos/profiles, v1.11.3), tags
// for Talos v1.11.5.
pub const BNX2: &str = "siderolabs/bnx2-bnx2x:20250917";
pub const ICE: &str = "siderolabs/intel-ice-firmware:20250917";
pub const QLOGIC: &str = "siderolabs/qlogic-firmware:20250917";
pub const DRBD: &str = "siderolabs/drbd:9.2.14-v1.11.5";
pub const ZFS: &str = "siderolabs/zfs:2.3.3-v1.11.5";
pub const INTEL_UCODE: &str = "siderolabs/intel-ucode:20250812";
pub const AMD_UCODE: &str = "siderolabs/amd-ucode:20250917";

/// Modules of the arm64 base rootfs (Debian's kernel has no zfs: curve25519 stands in for
/// its module pair, so depmod still resolves a dependency inside one extension).
const BASE_MODULES: &[&str] = &[
    "kernel/lib/libcrc32c.ko",
    "kernel/lib/lru_cache.ko",
    "kernel/lib/crypto/libcurve25519-generic.ko",
    "kernel/drivers/block/loop.ko",
    "kernel/fs/squashfs/squashfs.ko",
];

/// The base rootfs's `usr/lib/modules/<kver>`: the kernel's own lists and [`BASE_MODULES`].
pub fn base_modules() -> Result<Vec<FileSpec>> {
    let k = debian::arm64_kernel()?;
    let root = format!("usr/lib/modules/{}", k.kver);
    let mut files = Vec::new();
    for rel in [
        "modules.order",
        "modules.builtin",
        "modules.builtin.modinfo",
    ]
    .iter()
    .chain(BASE_MODULES)
    {
        files.push(FileSpec::file(
            &format!("{root}/{rel}"),
            k.module(rel)?,
            0o644,
        ));
    }
    Ok(demo::with_parents(files))
}

/// The stand-in for Talos's init (`harness/boot/init.sh`).
pub const INIT: &str = include_str!("boot/init.sh");

/// A base initramfs that boots under QEMU with Debian's arm64 kernel: busybox, the init
/// above, loop.ko and squashfs.ko for it to mount layers with, and `rootfs.sqsh` carrying the
/// kernel's modules (what the modules.dep layer is built from).
pub fn boot_base_initramfs() -> Result<Vec<u8>> {
    boot_base_initramfs_for("arm64")
}

/// [`boot_base_initramfs`] for `arch` (amd64: Debian's amd64 kernel and busybox; the rootfs
/// without modules).
pub fn boot_base_initramfs_for(arch: &str) -> Result<Vec<u8>> {
    use tdg::imager::assemble::{compress, newc, squashfs};
    let k = if arch == "arm64" {
        debian::arm64_kernel()?
    } else {
        debian::amd64_kernel()?
    };
    let mut rootfs = vec![
        FileSpec::dir("etc"),
        FileSpec::file("etc/os-release", "NAME=Talos\nVERSION_ID=v1.11.5\n", 0o644),
    ];
    if arch == "arm64" {
        rootfs.extend(base_modules()?);
    }
    let mut files: Vec<FileSpec> = ["bin", "dev", "proc", "sys", "lib", "lib/tdg"]
        .iter()
        .map(|d| FileSpec::dir(d))
        .collect();
    files.push(FileSpec::file("bin/busybox", debian::busybox(arch)?, 0o755));
    files.push(FileSpec::file("init", INIT, 0o755));
    files.push(FileSpec::file(
        "lib/tdg/loop.ko",
        k.module("kernel/drivers/block/loop.ko")?,
        0o644,
    ));
    files.push(FileSpec::file(
        "lib/tdg/squashfs.ko",
        k.module("kernel/fs/squashfs/squashfs.ko")?,
        0o644,
    ));
    files.push(FileSpec::file(
        "rootfs.sqsh",
        squashfs(&rootfs, Compression::Zstd)?,
        0o444,
    ));
    compress(&newc(&files)?, Compression::Zstd, 3)
}

fn metadata(name: &str, version: &str, description: &str) -> Metadata {
    Metadata {
        name: name.into(),
        version: version.into(),
        author: "Sidero Labs".into(),
        description: description.into(),
        compatibility: Compatibility {
            talos: TalosCompat {
                version: ">= v1.11.0".into(),
            },
        },
        extra_info: String::new(),
    }
}

/// One of CozyStack's extensions for `arch`, as an [`ExtensionInput`].
pub fn cozystack_extension(name: &str, arch: &str) -> Result<ExtensionInput> {
    let fw = |files: &[(&str, usize)]| demo::firmware(files, 90);
    let tag = |image: &str| image.rsplit(':').next().unwrap_or_default().to_string();
    let modules = |rels: &[&str]| -> Result<Vec<FileSpec>> {
        if arch != "arm64" {
            return Ok(Vec::new());
        }
        let k = debian::arm64_kernel()?;
        rels.iter()
            .map(|rel| {
                let file = rel.rsplit('/').next().unwrap_or(rel);
                Ok(FileSpec::file(
                    &format!("usr/lib/modules/{}/extras/{file}", k.kver),
                    k.module(rel)?,
                    0o644,
                ))
            })
            .collect()
    };
    let (meta, files) = match name {
        "bnx2-bnx2x" => (
            metadata(name, &tag(BNX2), "Broadcom NetXtreme II firmware"),
            fw(&[
                ("bnx2/bnx2-mips-09-6.2.1b.fw", 20 << 10),
                ("bnx2x/bnx2x-e2-7.13.21.0.fw", 30 << 10),
            ]),
        ),
        "intel-ice-firmware" => (
            metadata(name, &tag(ICE), "Intel ice firmware"),
            fw(&[("intel/ice/ddp/ice-1.3.36.0.pkg", 40 << 10)]),
        ),
        "qlogic-firmware" => (
            metadata(name, &tag(QLOGIC), "QLogic firmware"),
            fw(&[
                ("qed/qed_init_values_zipped-8.59.1.0.bin", 24 << 10),
                ("ql2500_fw.bin", 12 << 10),
            ]),
        ),
        "drbd" => {
            let mut f = modules(&["kernel/drivers/block/drbd/drbd.ko"])?;
            f.push(FileSpec::file(
                "usr/local/share/drbd/README",
                "DRBD kernel module\n",
                0o644,
            ));
            (metadata(name, &tag(DRBD), "DRBD kernel module"), f)
        }
        "zfs" => {
            let mut f = modules(&[
                "kernel/crypto/curve25519-generic.ko",
                "kernel/lib/crypto/libcurve25519.ko",
            ])?;
            f.push(FileSpec::file(
                "usr/local/sbin/zpool",
                demo::filler(8 << 10, 95),
                0o755,
            ));
            f.push(FileSpec::file(
                "usr/local/sbin/zfs",
                demo::filler(8 << 10, 96),
                0o755,
            ));
            (metadata(name, &tag(ZFS), "ZFS kernel module and tools"), f)
        }
        "intel-ucode" => (
            metadata(name, &tag(INTEL_UCODE), "Intel microcode"),
            fw(&[
                ("intel-ucode/06-4f-01", 8 << 10),
                ("intel-ucode/06-55-04", 16 << 10),
            ]),
        ),
        "amd-ucode" => (
            metadata(name, &tag(AMD_UCODE), "AMD microcode"),
            fw(&[
                ("amd-ucode/microcode_amd_fam17h.bin", 12 << 10),
                ("amd-ucode/README", 100),
            ]),
        ),
        other => anyhow::bail!("no CozyStack fixture for {other}"),
    };
    Ok(ExtensionInput {
        metadata: meta,
        rootfs: demo::with_parents(files),
    })
}

/// The image and fixture name of each CozyStack extension.
pub const COZYSTACK: &[(&str, &str)] = &[
    (BNX2, "bnx2-bnx2x"),
    (ICE, "intel-ice-firmware"),
    (QLOGIC, "qlogic-firmware"),
    (DRBD, "drbd"),
    (ZFS, "zfs"),
    (INTEL_UCODE, "intel-ucode"),
    (AMD_UCODE, "amd-ucode"),
];

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
    let vmlinuz = if arch == "arm64" {
        debian::arm64_kernel()?.vmlinuz()?
    } else {
        demo::kernel(arch, kernel_len)
    };
    e.push(TarEntry::file(&format!("{d}/vmlinuz"), vmlinuz, 0o644));
    // arm64 boots: Debian's kernel and a busybox initramfs whose init acts as Talos's.
    let initramfs = if arch == "arm64" {
        boot_base_initramfs()?
    } else {
        demo::base_initramfs(&[], Compression::Zstd)?
    };
    e.push(TarEntry::file(
        &format!("{d}/initramfs.xz"),
        initramfs,
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
    let mut inputs: Vec<(&str, Box<EntriesFor>)> = vec![
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
    for (image, name) in COZYSTACK {
        inputs.push((
            image,
            Box::new(move |a| demo::extension_image_entries(&cozystack_extension(name, a)?)),
        ));
    }
    for (name, entries) in inputs {
        let layout = work.join(name.replace(['/', ':'], "_"));
        layout_multi(&layout, "t", entries)?;
        fixtures::push_with_tdg(&layout, "t", &format!("{registry}/{name}"))?;
    }
    Ok(())
}
