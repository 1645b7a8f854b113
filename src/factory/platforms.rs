//! Talos's platforms as the Image Factory names and builds them: siderolabs/talos
//! `pkg/machinery/platforms/platforms.go` (`MetalPlatform`, `CloudPlatforms`; read at v1.14),
//! data only. A platform not in this table is an error before any URL is made.

use crate::talos::version::SemVer;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Boot {
    Iso,
    DiskImage,
    Pxe,
}

#[derive(Debug, Clone, Copy)]
pub struct Platform {
    pub name: &'static str,
    pub amd64: bool,
    pub arm64: bool,
    /// The disk image's suffix (`metal-arm64.raw.zst`); `None`: no disk image is built.
    pub disk_suffix: Option<&'static str>,
    pub boot: &'static [Boot],
    pub secureboot: bool,
    /// The first Talos version the platform exists in (`MinVersion`).
    pub min_version: Option<&'static str>,
}

const fn p(
    name: &'static str,
    arches: (bool, bool),
    disk_suffix: Option<&'static str>,
    boot: &'static [Boot],
    secureboot: bool,
    min_version: Option<&'static str>,
) -> Platform {
    Platform {
        name,
        amd64: arches.0,
        arm64: arches.1,
        disk_suffix,
        boot,
        secureboot,
        min_version,
    }
}

const BOTH: (bool, bool) = (true, true);
const AMD64: (bool, bool) = (true, false);
use Boot::{DiskImage as D, Iso as I, Pxe as X};

pub const PLATFORMS: &[Platform] = &[
    p("metal", BOTH, Some("raw.zst"), &[I, D, X], true, None),
    p("aws", BOTH, Some("raw.xz"), &[D], false, None),
    p("gcp", BOTH, Some("raw.tar.gz"), &[D], false, None),
    p("equinixMetal", BOTH, None, &[X], false, None),
    p("azure", BOTH, Some("vhd.xz"), &[D], false, None),
    p("digital-ocean", AMD64, Some("raw.gz"), &[D], false, None),
    p("nocloud", BOTH, Some("raw.xz"), &[D, I, X], true, None),
    p("openstack", BOTH, Some("raw.xz"), &[D, I, X], false, None),
    p("vmware", BOTH, Some("ova"), &[D, I], false, None),
    p("akamai", AMD64, Some("raw.gz"), &[D], false, Some("1.7.0")),
    p(
        "cloudstack",
        BOTH,
        Some("raw.gz"),
        &[D],
        true,
        Some("1.8.0-alpha.2"),
    ),
    p("hcloud", AMD64, Some("raw.xz"), &[D], false, None),
    p("oracle", BOTH, Some("qcow2"), &[D], false, None),
    p("upcloud", AMD64, Some("raw.xz"), &[D], false, None),
    p("vultr", AMD64, None, &[I, X], false, None),
    p("exoscale", BOTH, Some("qcow2"), &[D], false, Some("1.3.0")),
    p(
        "opennebula",
        BOTH,
        Some("raw.zst"),
        &[D, I],
        false,
        Some("1.7.0"),
    ),
    p("scaleway", BOTH, Some("raw.zst"), &[D, I], false, None),
    p(
        "alibabacloud",
        BOTH,
        Some("qcow2"),
        &[D],
        false,
        Some("1.14.0-beta.2"),
    ),
];

impl Platform {
    pub fn find(name: &str) -> Option<&'static Platform> {
        PLATFORMS.iter().find(|p| p.name == name)
    }

    pub fn names() -> String {
        PLATFORMS
            .iter()
            .map(|p| p.name)
            .collect::<Vec<_>>()
            .join(", ")
    }

    pub fn has_arch(&self, arch: &str) -> bool {
        match arch {
            "amd64" => self.amd64,
            "arm64" => self.arm64,
            _ => false,
        }
    }

    /// Whether the platform exists in `talos`.
    pub fn exists_in(&self, talos: &SemVer) -> bool {
        self.min_version
            .is_none_or(|m| SemVer::parse(m).is_ok_and(|m| *talos >= m))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_reads_as_upstream() {
        let metal = Platform::find("metal").unwrap();
        assert_eq!(metal.disk_suffix, Some("raw.zst"));
        assert!(metal.secureboot && metal.boot.contains(&Boot::Pxe));
        assert_eq!(Platform::find("equinixMetal").unwrap().disk_suffix, None);
        assert!(!Platform::find("digital-ocean").unwrap().has_arch("arm64"));
        assert!(Platform::find("equinix-metal").is_none());
        let v = |s| SemVer::parse_tolerant(s).unwrap();
        let ali = Platform::find("alibabacloud").unwrap();
        assert!(!ali.exists_in(&v("v1.13.2")) && !ali.exists_in(&v("v1.14.0-beta.1")));
        assert!(ali.exists_in(&v("v1.14.0-beta.2")) && ali.exists_in(&v("v1.14.1")));
    }
}
