//! Where the Image Factory serves a schematic's assets for a Talos version, and the installer
//! image it builds, rendered offline. The same code renders `https://factory.talos.dev` and a
//! test factory on loopback.

use anyhow::{bail, Context, Result};
use serde::Serialize;

use crate::factory::platforms::Platform;
use crate::reference::ImageRef;
use crate::talos::version::SemVer;

pub const DEFAULT_FACTORY: &str = "https://factory.talos.dev";

/// What the asset names depend on.
#[derive(Debug, Clone)]
pub struct Target {
    /// `vX.Y.Z`, as the factory names versions.
    pub talos: String,
    pub arch: String,
    pub platform: String,
    pub secureboot: bool,
}

impl Target {
    /// Checks the parts a URL and an image reference are built from, so a typo is an error
    /// here and not a 404 (or a malformed reference) later.
    pub fn new(talos: &str, arch: &str, platform: &str, secureboot: bool) -> Result<Self> {
        let v = talos.strip_prefix('v').with_context(|| {
            format!("Talos version '{talos}' must start with 'v' (as in v1.11.5)")
        })?;
        let version = SemVer::parse(v).map_err(|_| {
            anyhow::anyhow!("Talos version '{talos}' is not vMAJOR.MINOR.PATCH[-PRE]")
        })?;
        if !matches!(arch, "amd64" | "arm64") {
            bail!("architecture '{arch}' is not one the factory builds (amd64, arm64)");
        }
        let Some(p) = Platform::find(platform) else {
            bail!(
                "platform '{platform}' is not a Talos platform name ({})",
                Platform::names()
            );
        };
        if !p.has_arch(arch) {
            bail!("Talos builds no {arch} image for the {platform} platform");
        }
        if secureboot && !p.secureboot {
            bail!("the {platform} platform has no Secure Boot images");
        }
        if !p.exists_in(&version) {
            bail!(
                "the {platform} platform first exists in Talos v{}",
                p.min_version.unwrap_or_default()
            );
        }
        Ok(Target {
            talos: talos.into(),
            arch: arch.into(),
            platform: platform.into(),
            secureboot,
        })
    }

    fn sb(&self) -> &'static str {
        if self.secureboot {
            "-secureboot"
        } else {
            ""
        }
    }

    /// The disk image's file suffix on this platform, if it has a disk image
    /// (`DiskImageSuffix`, talos `pkg/machinery/platforms/platforms.go`).
    fn disk_suffix(&self) -> Option<&'static str> {
        Platform::find(&self.platform).and_then(|p| p.disk_suffix)
    }

    /// The ISO's file name, also its name on disk when downloaded.
    pub fn iso_name(&self) -> String {
        format!("{}-{}{}.iso", self.platform, self.arch, self.sb())
    }
}

/// A factory's base URL: `http(s)://host[:port][/prefix]`, no trailing slash.
#[derive(Debug, Clone)]
pub struct Factory {
    pub base: String,
    /// `host[:port]`: the factory's registry, where installer images are pulled from.
    pub registry: String,
}

impl Factory {
    pub fn parse(url: &str) -> Result<Self> {
        let base = url.trim_end_matches('/');
        let rest = base
            .strip_prefix("https://")
            .or_else(|| base.strip_prefix("http://"))
            .with_context(|| format!("factory URL '{url}' must start with https:// or http://"))?;
        let host = rest.split('/').next().unwrap_or_default();
        if host.is_empty() || host.contains(['@', '?', '#', ' ']) {
            bail!("factory URL '{url}' has no usable host");
        }
        Ok(Factory {
            base: base.into(),
            registry: host.to_ascii_lowercase(),
        })
    }
}

/// Every URL and reference for one schematic ID on one target.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Urls {
    pub schematic_id: String,
    pub talos: String,
    pub arch: String,
    pub platform: String,
    pub secureboot: bool,
    pub kernel: String,
    pub initramfs: String,
    pub cmdline: String,
    pub iso: String,
    pub uki: String,
    /// `None` on a platform with no disk image (equinixMetal, vultr).
    pub disk_image: Option<String>,
    /// `<platform>-installer-<arch>[-secureboot].tar` (image-factory
    /// `internal/profile/profile.go`).
    pub installer_tarball: String,
    pub pxe: String,
    /// What the factory shows as the installer (image-factory `internal/frontend/http/ui.go`):
    /// `<registry>/<platform>-installer[-secureboot]/<id>:<talos>` for Talos >= 1.10
    /// (`SupportsUnifiedInstaller`), the legacy form before. `None` where the platform's name
    /// cannot be an image reference (`equinixMetal`).
    pub installer: Option<String>,
    /// `<registry>/installer[-secureboot]/<id>:<talos>`, which the factory reads as metal.
    pub installer_legacy: String,
}

pub fn render(factory: &Factory, id: &str, t: &Target) -> Result<Urls> {
    if id.len() != 64 || !id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        bail!("schematic ID '{id}' is not 64 lowercase hex digits");
    }
    let (base, v, arch, p, sb) = (&factory.base, &t.talos, &t.arch, &t.platform, t.sb());
    let image = |file: String| format!("{base}/image/{id}/{v}/{file}");
    let installer_legacy = format!("{}/installer{sb}/{id}:{v}", factory.registry);
    installer_legacy.parse::<ImageRef>().with_context(|| {
        format!("the installer reference '{installer_legacy}' is not an image reference")
    })?;
    let unified = SemVer::parse_tolerant(v)?.core() >= SemVer::new(1, 10, 0);
    let installer = if !unified {
        Some(installer_legacy.clone())
    } else if p.bytes().any(|b| b.is_ascii_uppercase()) {
        None
    } else {
        let r = format!("{}/{p}-installer{sb}/{id}:{v}", factory.registry);
        r.parse::<ImageRef>()
            .with_context(|| format!("the installer reference '{r}' is not an image reference"))?;
        Some(r)
    };
    Ok(Urls {
        schematic_id: id.into(),
        talos: v.clone(),
        arch: arch.clone(),
        platform: p.clone(),
        secureboot: t.secureboot,
        kernel: image(format!("kernel-{arch}")),
        initramfs: image(format!("initramfs-{arch}.xz")),
        cmdline: image(format!("cmdline-{p}-{arch}{sb}")),
        iso: image(t.iso_name()),
        uki: image(format!("{p}-{arch}{sb}-uki.efi")),
        disk_image: t
            .disk_suffix()
            .map(|suffix| image(format!("{p}-{arch}{sb}.{suffix}"))),
        installer_tarball: image(format!("{p}-installer-{arch}{sb}.tar")),
        pxe: format!("{base}/pxe/{id}/{v}/{p}-{arch}{sb}"),
        installer,
        installer_legacy,
    })
}

pub fn human(u: &Urls) -> String {
    let rows = [
        ("schematic", u.schematic_id.as_str()),
        ("talos", u.talos.as_str()),
        ("kernel", u.kernel.as_str()),
        ("initramfs", u.initramfs.as_str()),
        ("cmdline", u.cmdline.as_str()),
        ("iso", u.iso.as_str()),
        ("uki", u.uki.as_str()),
        (
            "disk image",
            u.disk_image.as_deref().unwrap_or("(none on this platform)"),
        ),
        ("installer tar", u.installer_tarball.as_str()),
        ("pxe", u.pxe.as_str()),
        (
            "installer",
            u.installer
                .as_deref()
                .unwrap_or("(none: the platform name cannot be an image reference)"),
        ),
        ("installer (legacy)", u.installer_legacy.as_str()),
    ];
    rows.iter().map(|(k, v)| format!("{k:<19} {v}\n")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba";

    fn urls(p: &str, sb: bool) -> Urls {
        let f = Factory::parse("https://factory.talos.dev/").unwrap();
        render(&f, ID, &Target::new("v1.11.5", "arm64", p, sb).unwrap()).unwrap()
    }

    #[test]
    fn metal_arm64() {
        let u = urls("metal", false);
        let img = format!("https://factory.talos.dev/image/{ID}/v1.11.5");
        assert_eq!(u.kernel, format!("{img}/kernel-arm64"));
        assert_eq!(u.initramfs, format!("{img}/initramfs-arm64.xz"));
        assert_eq!(u.cmdline, format!("{img}/cmdline-metal-arm64"));
        assert_eq!(u.iso, format!("{img}/metal-arm64.iso"));
        assert_eq!(u.uki, format!("{img}/metal-arm64-uki.efi"));
        // metal disk images are zstd raw; the tarball is <platform>-installer-<arch>.tar
        // (talos pkg/machinery/platforms, image-factory internal/profile/profile.go).
        assert_eq!(u.disk_image, Some(format!("{img}/metal-arm64.raw.zst")));
        assert_eq!(
            u.installer_tarball,
            format!("{img}/metal-installer-arm64.tar")
        );
        assert_eq!(
            u.pxe,
            format!("https://factory.talos.dev/pxe/{ID}/v1.11.5/metal-arm64")
        );
        assert_eq!(
            u.installer,
            Some(format!("factory.talos.dev/metal-installer/{ID}:v1.11.5"))
        );
        assert_eq!(
            u.installer_legacy,
            format!("factory.talos.dev/installer/{ID}:v1.11.5")
        );
    }

    #[test]
    fn secureboot_adds_its_suffix_before_the_extension() {
        let u = urls("metal", true);
        assert!(u.iso.ends_with("/metal-arm64-secureboot.iso"), "{}", u.iso);
        assert!(
            u.uki.ends_with("/metal-arm64-secureboot-uki.efi"),
            "{}",
            u.uki
        );
        assert!(u.cmdline.ends_with("/cmdline-metal-arm64-secureboot"));
        assert!(u
            .installer_tarball
            .ends_with("/metal-installer-arm64-secureboot.tar"));
        assert!(u.pxe.ends_with("/metal-arm64-secureboot"));
        assert!(u
            .disk_image
            .unwrap()
            .ends_with("/metal-arm64-secureboot.raw.zst"));
        assert!(
            u.kernel.ends_with("/kernel-arm64"),
            "the kernel has no secure boot variant"
        );
        assert_eq!(
            u.installer,
            Some(format!(
                "factory.talos.dev/metal-installer-secureboot/{ID}:v1.11.5"
            ))
        );
        assert_eq!(
            u.installer_legacy,
            format!("factory.talos.dev/installer-secureboot/{ID}:v1.11.5")
        );
    }

    #[test]
    fn platforms_have_their_disk_formats() {
        let disk = |p: &str| urls(p, false).disk_image.unwrap_or_default();
        for (p, suffix) in [
            ("aws", "raw.xz"),
            ("gcp", "raw.tar.gz"),
            ("azure", "vhd.xz"),
            ("cloudstack", "raw.gz"),
            ("oracle", "qcow2"),
            ("exoscale", "qcow2"),
            ("opennebula", "raw.zst"),
            ("scaleway", "raw.zst"),
            ("vmware", "ova"),
        ] {
            assert!(
                disk(p).ends_with(&format!("/{p}-arm64.{suffix}")),
                "{p}: {}",
                disk(p)
            );
        }
        assert_eq!(urls("equinixMetal", false).disk_image, None);
        assert!(urls("equinixMetal", false)
            .pxe
            .ends_with("/equinixMetal-arm64"));
        assert!(urls("nocloud", false).iso.ends_with("/nocloud-arm64.iso"));
        assert_eq!(
            urls("nocloud", false).installer,
            Some(format!("factory.talos.dev/nocloud-installer/{ID}:v1.11.5"))
        );
        assert_eq!(urls("equinixMetal", false).installer, None);
    }

    #[test]
    fn a_local_factory_keeps_its_scheme_port_and_names_its_registry() {
        let f = Factory::parse("http://127.0.0.1:5080").unwrap();
        let u = render(
            &f,
            ID,
            &Target::new("v1.12.0-beta.1", "amd64", "metal", false).unwrap(),
        )
        .unwrap();
        assert!(u.kernel.starts_with("http://127.0.0.1:5080/image/"));
        assert_eq!(
            u.installer,
            Some(format!(
                "127.0.0.1:5080/metal-installer/{ID}:v1.12.0-beta.1"
            ))
        );
        // Before 1.10 the factory names the legacy installer (SupportsUnifiedInstaller).
        let old = render(
            &f,
            ID,
            &Target::new("v1.9.5", "amd64", "metal", false).unwrap(),
        )
        .unwrap();
        assert_eq!(
            old.installer.as_deref(),
            Some(old.installer_legacy.as_str())
        );
    }

    #[test]
    fn bad_parts_are_errors_that_say_which() {
        let e = |t: &str, a: &str, p: &str| Target::new(t, a, p, false).unwrap_err().to_string();
        assert!(e("1.11.5", "arm64", "metal").contains("must start with 'v'"));
        assert!(e("v1.11", "arm64", "metal").contains("not vMAJOR.MINOR.PATCH"));
        assert!(e("v1.11.5", "aarch64", "metal").contains("architecture 'aarch64'"));
        assert!(e("v1.11.5", "arm64", "Metal").contains("platform 'Metal'"));
        assert!(e("v1.11.5", "arm64", "metal/x").contains("platform 'metal/x'"));
        assert!(e("v1.11.5", "arm64", "equinix-metal").contains("equinixMetal"));
        assert!(e("v1.11.5", "arm64", "digital-ocean").contains("no arm64 image"));
        assert!(
            e("v1.11.5", "amd64", "alibabacloud").contains("first exists in Talos v1.14.0-beta.2")
        );
        assert!(Target::new("v1.11.5", "arm64", "aws", true)
            .unwrap_err()
            .to_string()
            .contains("no Secure Boot"));
        let f = Factory::parse("https://factory.talos.dev").unwrap();
        let t = Target::new("v1.11.5", "arm64", "metal", false).unwrap();
        assert!(render(&f, "ABC", &t).is_err());
        assert!(Factory::parse("ftp://x").is_err());
        assert!(Factory::parse("https://").is_err());
    }
}
