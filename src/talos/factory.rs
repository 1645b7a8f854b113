//! Where the Image Factory serves a schematic's assets for a Talos version, and the installer
//! image it builds, rendered offline. The same code renders `https://factory.talos.dev` and a
//! test factory on loopback.

use anyhow::{bail, Context, Result};
use serde::Serialize;

use crate::reference::ImageRef;

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
        if semver::Version::parse(v).is_err() {
            bail!("Talos version '{talos}' is not vMAJOR.MINOR.PATCH[-PRE]");
        }
        if !matches!(arch, "amd64" | "arm64") {
            bail!("architecture '{arch}' is not one the factory builds (amd64, arm64)");
        }
        let ok = !platform.is_empty()
            && platform.starts_with(|c: char| c.is_ascii_lowercase())
            && platform
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !ok {
            bail!("platform '{platform}' is not a Talos platform name (metal, aws, nocloud, ...)");
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

    /// The disk image's file suffix on this platform (the factory's per-platform format).
    fn disk_suffix(&self) -> &'static str {
        match self.platform.as_str() {
            "gcp" => "raw.tar.gz",
            "azure" => "vhd.xz",
            "vmware" => "ova",
            "digital-ocean" => "raw.gz",
            _ => "raw.xz",
        }
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
    pub disk_image: String,
    pub installer_tarball: String,
    pub pxe: String,
    /// `<registry>/<platform>-installer[-secureboot]/<id>:<talos>`
    pub installer: String,
    /// `<registry>/installer[-secureboot]/<id>:<talos>`, which the factory reads as metal.
    pub installer_legacy: String,
}

pub fn render(factory: &Factory, id: &str, t: &Target) -> Result<Urls> {
    if id.len() != 64 || !id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        bail!("schematic ID '{id}' is not 64 lowercase hex digits");
    }
    let (base, v, arch, p, sb) = (&factory.base, &t.talos, &t.arch, &t.platform, t.sb());
    let image = |file: String| format!("{base}/image/{id}/{v}/{file}");
    let installer = format!("{}/{p}-installer{sb}/{id}:{v}", factory.registry);
    let installer_legacy = format!("{}/installer{sb}/{id}:{v}", factory.registry);
    // Both references must parse as the image references they are meant to be.
    for r in [&installer, &installer_legacy] {
        r.parse::<ImageRef>()
            .with_context(|| format!("the installer reference '{r}' is not an image reference"))?;
    }
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
        disk_image: image(format!("{p}-{arch}{sb}.{}", t.disk_suffix())),
        installer_tarball: image(format!("installer-{arch}{sb}.tar")),
        pxe: format!("{base}/pxe/{id}/{v}/{p}-{arch}{sb}"),
        installer,
        installer_legacy,
    })
}

pub fn human(u: &Urls) -> String {
    let rows = [
        ("schematic", &u.schematic_id),
        ("talos", &u.talos),
        ("kernel", &u.kernel),
        ("initramfs", &u.initramfs),
        ("cmdline", &u.cmdline),
        ("iso", &u.iso),
        ("uki", &u.uki),
        ("disk image", &u.disk_image),
        ("installer tar", &u.installer_tarball),
        ("pxe", &u.pxe),
        ("installer", &u.installer),
        ("installer (legacy)", &u.installer_legacy),
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
        assert_eq!(u.disk_image, format!("{img}/metal-arm64.raw.xz"));
        assert_eq!(u.installer_tarball, format!("{img}/installer-arm64.tar"));
        assert_eq!(
            u.pxe,
            format!("https://factory.talos.dev/pxe/{ID}/v1.11.5/metal-arm64")
        );
        assert_eq!(
            u.installer,
            format!("factory.talos.dev/metal-installer/{ID}:v1.11.5")
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
            .ends_with("/installer-arm64-secureboot.tar"));
        assert!(u.pxe.ends_with("/metal-arm64-secureboot"));
        assert!(u.disk_image.ends_with("/metal-arm64-secureboot.raw.xz"));
        assert!(
            u.kernel.ends_with("/kernel-arm64"),
            "the kernel has no secure boot variant"
        );
        assert_eq!(
            u.installer,
            format!("factory.talos.dev/metal-installer-secureboot/{ID}:v1.11.5")
        );
        assert_eq!(
            u.installer_legacy,
            format!("factory.talos.dev/installer-secureboot/{ID}:v1.11.5")
        );
    }

    #[test]
    fn platforms_have_their_disk_formats() {
        assert!(urls("aws", false).disk_image.ends_with("/aws-arm64.raw.xz"));
        assert!(urls("gcp", false)
            .disk_image
            .ends_with("/gcp-arm64.raw.tar.gz"));
        assert!(urls("azure", false)
            .disk_image
            .ends_with("/azure-arm64.vhd.xz"));
        assert!(urls("nocloud", false).iso.ends_with("/nocloud-arm64.iso"));
        assert_eq!(
            urls("nocloud", false).installer,
            format!("factory.talos.dev/nocloud-installer/{ID}:v1.11.5")
        );
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
            format!("127.0.0.1:5080/metal-installer/{ID}:v1.12.0-beta.1")
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
        let f = Factory::parse("https://factory.talos.dev").unwrap();
        let t = Target::new("v1.11.5", "arm64", "metal", false).unwrap();
        assert!(render(&f, "ABC", &t).is_err());
        assert!(Factory::parse("ftp://x").is_err());
        assert!(Factory::parse("https://").is_err());
    }
}
