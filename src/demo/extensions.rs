//! The extensions of the published variants, as stand-ins with the real extensions' shape:
//! spin and tailscale (siderolabs/extensions), and CozyStack's Talos profile for arm64
//! (firmware packages, drbd, zfs). The demo's drbd and zfs carry placeholder module files and
//! the image a stand-in `modules.dep` layer; `tdg build` makes the real one with depmod.

use super::filler;
use crate::imager::assemble::{ExtensionInput, FileSpec};
use crate::talos::extensions::{
    Compatibility, Metadata, TalosCompat, MACHINERY_AUTHOR, MODULES_DEP,
};

/// The kernel release of Talos v1.11.5, whose modules directory the stand-ins use.
pub const KERNEL_RELEASE: &str = "6.12.57-talos";

fn metadata(name: &str, version: &str, author: &str, description: &str) -> Metadata {
    Metadata {
        name: name.into(),
        version: version.into(),
        author: author.into(),
        description: description.into(),
        compatibility: Compatibility {
            talos: TalosCompat {
                version: ">= v1.0.0".into(),
            },
        },
        extra_info: String::new(),
    }
}

/// The spin extension as siderolabs/extensions ships it (v0.21.0 for Talos 1.11): the shim and
/// its containerd runtime config.
pub fn spin() -> ExtensionInput {
    ExtensionInput {
        metadata: metadata("spin", "v0.21.0", "Sven Pfennig", "This system extension provides the Spin WebAssembly runtime shim for containerd."),
        rootfs: vec![
            FileSpec::dir("usr"),
            FileSpec::dir("usr/local"),
            FileSpec::dir("usr/local/bin"),
            FileSpec::file("usr/local/bin/containerd-shim-spin-v2", filler(64 << 10, 21), 0o755),
            FileSpec::dir("usr/local/share"),
            FileSpec::dir("usr/local/share/spdx"),
            FileSpec::file("usr/local/share/spdx/spin.spdx.json", "{\"spdxVersion\":\"SPDX-2.3\"}\n", 0o644),
            FileSpec::dir("etc"),
            FileSpec::dir("etc/cri"),
            FileSpec::dir("etc/cri/conf.d"),
            FileSpec::file("etc/cri/conf.d/10-spin.part", "[plugins.\"io.containerd.cri.v1.runtime\".containerd.runtimes.spin]\n  runtime_type = \"io.containerd.spin.v2\"\n", 0o644),
        ],
    }
}

/// The tailscale extension (1.88.1 for Talos 1.11): binaries under its container root and the
/// extension service definition.
pub fn tailscale() -> ExtensionInput {
    let bin = "usr/local/lib/containers/tailscale/usr/local/bin";
    let mut rootfs = vec![
        FileSpec::dir("usr"),
        FileSpec::dir("usr/local"),
        FileSpec::dir("usr/local/lib"),
        FileSpec::dir("usr/local/lib/containers"),
    ];
    for d in [
        "tailscale",
        "tailscale/usr",
        "tailscale/usr/local",
        "tailscale/usr/local/bin",
    ] {
        rootfs.push(FileSpec::dir(&format!("usr/local/lib/containers/{d}")));
    }
    for (i, b) in ["tailscale", "tailscaled", "containerboot"]
        .iter()
        .enumerate()
    {
        rootfs.push(FileSpec::file(
            &format!("{bin}/{b}"),
            filler(32 << 10, 30 + i as u64),
            0o755,
        ));
    }
    rootfs.extend([
        FileSpec::dir("usr/local/etc"),
        FileSpec::dir("usr/local/etc/containers"),
        FileSpec::file(
            "usr/local/etc/containers/tailscale.yaml",
            // Shaped like siderolabs/extensions' network/tailscale/tailscale.yaml: it waits for
            // the network and for its ExtensionServiceConfig.
            "name: tailscale\ndepends:\n  - service: cri\n  - network:\n    - addresses\n  - configuration: true\ncontainer:\n  entrypoint: /usr/local/bin/containerboot\nrestart: always\n",
            0o644,
        ),
    ]);
    ExtensionInput {
        metadata: metadata(
            "tailscale",
            "1.88.1",
            "Siderolabs",
            "This system extension provides Tailscale.",
        ),
        rootfs,
    }
}

/// The extensions of a published variant: CozyStack's for arm64, then spin (and tailscale).
pub fn variant_extensions(variant: &str) -> Vec<ExtensionInput> {
    let mut out = cozystack_arm64();
    out.push(spin());
    if variant == "spin-tailscale" {
        out.push(tailscale());
    }
    out
}

/// Every directory the files need, before them.
pub fn with_parents(files: Vec<FileSpec>) -> Vec<FileSpec> {
    let mut dirs = std::collections::BTreeSet::new();
    for f in &files {
        let parts: Vec<&str> = f.path.split('/').collect();
        for i in 1..parts.len() {
            dirs.insert(parts[..i].join("/"));
        }
    }
    let mut out: Vec<FileSpec> = dirs.iter().map(|d| FileSpec::dir(d)).collect();
    out.extend(files);
    out
}

fn sidero(name: &str, version: &str, description: &str, files: Vec<FileSpec>) -> ExtensionInput {
    let mut m = metadata(name, version, "Sidero Labs", description);
    m.compatibility.talos.version = ">= v1.11.0".into();
    ExtensionInput {
        metadata: m,
        rootfs: with_parents(files),
    }
}

/// Firmware files under `usr/lib/firmware/`, filled deterministically from `seed`.
pub fn firmware(files: &[(&str, usize)], seed: u64) -> Vec<FileSpec> {
    files
        .iter()
        .enumerate()
        .map(|(i, (p, n))| {
            FileSpec::file(
                &format!("usr/lib/firmware/{p}"),
                filler(*n, seed + i as u64),
                0o644,
            )
        })
        .collect()
}

/// A placeholder module under the stand-in kernel's `extras/`.
fn module(name: &str, seed: u64) -> FileSpec {
    FileSpec::file(
        &format!("usr/lib/modules/{KERNEL_RELEASE}/extras/{name}"),
        filler(16 << 10, seed),
        0o644,
    )
}

/// CozyStack's Talos extensions that exist for arm64, in its profile's order
/// (`packages/core/installer/images/talos/profiles`: amd-ucode, amdgpu, i915 and intel-ucode
/// are x86-only).
pub fn cozystack_arm64() -> Vec<ExtensionInput> {
    vec![
        sidero(
            "bnx2-bnx2x",
            "20250917",
            "Broadcom NetXtreme II firmware",
            firmware(
                &[
                    ("bnx2/bnx2-mips-09-6.2.1b.fw", 8 << 10),
                    ("bnx2x/bnx2x-e2-7.13.21.0.fw", 8 << 10),
                ],
                60,
            ),
        ),
        sidero(
            "intel-ice-firmware",
            "20250917",
            "Intel ice firmware",
            firmware(&[("intel/ice/ddp/ice-1.3.36.0.pkg", 8 << 10)], 62),
        ),
        sidero(
            "qlogic-firmware",
            "20250917",
            "QLogic firmware",
            firmware(&[("ql2500_fw.bin", 8 << 10)], 63),
        ),
        sidero(
            "drbd",
            "9.2.14-v1.11.5",
            "DRBD kernel module",
            vec![module("drbd.ko", 64), module("drbd_transport_tcp.ko", 65)],
        ),
        sidero(
            "zfs",
            "2.3.3-v1.11.5",
            "ZFS kernel module and tools",
            vec![
                module("zfs.ko", 66),
                module("spl.ko", 67),
                FileSpec::file("usr/local/sbin/zpool", filler(4 << 10, 68), 0o755),
            ],
        ),
    ]
}

/// A stand-in for the `modules.dep` layer a build adds when extensions ship modules.
pub fn modules_dep_layer() -> ExtensionInput {
    let dir = format!("usr/lib/modules/{KERNEL_RELEASE}");
    ExtensionInput {
        metadata: Metadata {
            name: MODULES_DEP.into(),
            version: KERNEL_RELEASE.into(),
            author: MACHINERY_AUTHOR.into(),
            description: "Combined modules.dep for all extensions".into(),
            ..Default::default()
        },
        rootfs: with_parents(vec![FileSpec::file(
            &format!("{dir}/modules.dep"),
            "extras/drbd_transport_tcp.ko: extras/drbd.ko\nextras/drbd.ko:\nextras/zfs.ko: extras/spl.ko\nextras/spl.ko:\n",
            0o644,
        )]),
    }
}
