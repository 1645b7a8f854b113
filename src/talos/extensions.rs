//! System extensions: `extensions.yaml` in a built initramfs (siderolabs/talos
//! `pkg/machinery/extensions/config.go`) and `manifest.yaml` in an extension image, the paths
//! Talos accepts under `/rootfs`, and expectations about which extensions are there.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::version::{Range, SemVer, VersionError};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExtensionError {
    #[error("malformed {file}: {detail}")]
    Malformed { file: &'static str, detail: String },
    #[error("manifest.yaml version is '{0}', expected v1alpha1")]
    ManifestVersion(String),
    #[error("manifest.yaml has no metadata.{0}")]
    MissingField(&'static str),
    #[error("'{0}' is not an extension name with an optional version constraint")]
    BadRequirement(String),
    #[error(transparent)]
    Version(#[from] VersionError),
    #[error("{name} {version}: {inner}")]
    LayerVersion {
        name: String,
        version: String,
        inner: VersionError,
    },
    #[error("{name} is {version}, which does not satisfy {constraint}")]
    Unsatisfied {
        name: String,
        version: String,
        constraint: String,
    },
    #[error("{name}: compatibility.talos.version {inner}")]
    BadCompatibility { name: String, inner: VersionError },
    #[error("{name} {version} requires Talos {constraint}, not {talos}")]
    Incompatible {
        name: String,
        version: String,
        constraint: String,
        talos: String,
    },
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct ExtensionsConfig {
    #[serde(default)]
    pub layers: Vec<Layer>,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct Layer {
    pub image: String,
    pub metadata: Metadata,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq, Default)]
pub struct Metadata {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub author: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub compatibility: Compatibility,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq, Default)]
pub struct Compatibility {
    #[serde(default)]
    pub talos: TalosCompat,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq, Default)]
pub struct TalosCompat {
    #[serde(default)]
    pub version: String,
}

/// An extension image's `/manifest.yaml`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub version: String,
    pub metadata: Metadata,
}

/// An extension image's manifest, at its root.
pub const MANIFEST: &str = "manifest.yaml";

/// Where Talos accepts extension files (siderolabs/talos `pkg/machinery/extensions`).
pub const ALLOWED_ROOTFS_PATHS: &[&str] = &[
    "etc/cri/conf.d",
    "usr/lib/firmware",
    "usr/lib/modules",
    "usr/local",
];

/// Whether a path below `rootfs/` is one Talos accepts: under an allowed prefix, or one of the
/// directories leading to one.
pub fn rootfs_path_allowed(rel: &str) -> bool {
    ALLOWED_ROOTFS_PATHS.iter().any(|a| {
        rel == *a || rel.starts_with(&format!("{a}/")) || a.starts_with(&format!("{rel}/"))
    })
}

/// What an entry of an extension image's tree is to Talos: the manifest, the `rootfs`
/// directory, a path below it (relative to it) that Talos accepts, or one it refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageEntry<'a> {
    Manifest,
    RootfsDir,
    Accepted(&'a str),
    Refused,
}

/// The one rule for an extension image's paths, used by its checks, `tdg inspect extension`
/// and the build's input validation.
pub fn image_entry(path: &str) -> ImageEntry<'_> {
    match path.split_once('/') {
        None if path == MANIFEST => ImageEntry::Manifest,
        None if path == "rootfs" => ImageEntry::RootfsDir,
        Some(("rootfs", rel)) if rootfs_path_allowed(rel) => ImageEntry::Accepted(rel),
        _ => ImageEntry::Refused,
    }
}

/// The paths of an extension image Talos refuses, as `/path`.
pub fn refused_paths<'a>(paths: impl IntoIterator<Item = &'a String>) -> Vec<String> {
    paths
        .into_iter()
        .filter(|p| image_entry(p) == ImageEntry::Refused)
        .map(|p| format!("/{p}"))
        .collect()
}

/// `N paths outside what Talos accepts (...): the first three, …`.
pub fn describe_refused(refused: &[String]) -> String {
    let n = refused.len();
    format!(
        "{n} path{} outside what Talos accepts (/rootfs/{{{}}}): {}{}",
        if n == 1 { "" } else { "s" },
        ALLOWED_ROOTFS_PATHS.join(","),
        refused
            .iter()
            .take(3)
            .cloned()
            .collect::<Vec<_>>()
            .join(", "),
        if n > 3 { ", …" } else { "" }
    )
}

pub fn parse_config(text: &str) -> Result<ExtensionsConfig, ExtensionError> {
    serde_saphyr::from_str(text).map_err(|e| ExtensionError::Malformed {
        file: "extensions.yaml",
        detail: e.without_snippet().to_string(),
    })
}

pub fn parse_manifest(text: &str) -> Result<Manifest, ExtensionError> {
    let m: Manifest = serde_saphyr::from_str(text).map_err(|e| ExtensionError::Malformed {
        file: "manifest.yaml",
        detail: e.without_snippet().to_string(),
    })?;
    if m.version != "v1alpha1" {
        return Err(ExtensionError::ManifestVersion(m.version));
    }
    for (field, v) in [
        ("name", &m.metadata.name),
        ("version", &m.metadata.version),
        ("author", &m.metadata.author),
        ("description", &m.metadata.description),
    ] {
        if v.trim().is_empty() {
            return Err(ExtensionError::MissingField(field));
        }
    }
    Ok(m)
}

/// `name` or `name <range>`, e.g. `tailscale >= 1.88.0`: the range in the syntax Talos reads
/// compatibility in (blang/semver), matched against the layer's version read tolerantly.
#[derive(Clone, Debug)]
pub struct Requirement {
    pub name: String,
    pub version: Option<Range>,
}

impl Requirement {
    pub fn parse(s: &str) -> Result<Self, ExtensionError> {
        let s = s.trim();
        let (name, rest) = match s.find(|c: char| c.is_whitespace() || "<>=!~".contains(c)) {
            Some(i) => (&s[..i], s[i..].trim()),
            None => (s, ""),
        };
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_./".contains(&b))
        {
            return Err(ExtensionError::BadRequirement(s.into()));
        }
        let version = if rest.is_empty() {
            None
        } else {
            Some(Range::parse(rest)?)
        };
        Ok(Requirement {
            name: name.to_string(),
            version,
        })
    }

    /// Whether a layer satisfies this requirement; `Err` says why a same-named layer does not.
    pub fn check(&self, m: &Metadata) -> Result<bool, ExtensionError> {
        if m.name != self.name {
            return Ok(false);
        }
        let Some(c) = &self.version else {
            return Ok(true);
        };
        let v =
            SemVer::parse_tolerant(&m.version).map_err(|inner| ExtensionError::LayerVersion {
                name: m.name.clone(),
                version: m.version.clone(),
                inner,
            })?;
        if c.matches(&v) {
            Ok(true)
        } else {
            Err(ExtensionError::Unsatisfied {
                name: m.name.clone(),
                version: m.version.clone(),
                constraint: c.to_string(),
            })
        }
    }
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.version {
            Some(c) => write!(f, "{} {c}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

/// `Err` with the reason when the extension cannot run on `talos`, by Talos's own rule
/// (`pkg/machinery/extensions/validate.go`, `validateConstraints`): an empty constraint admits
/// any version; otherwise it is a blang/semver range that must admit the Talos version's core
/// `MAJOR.MINOR.PATCH` (so `v1.12.0-beta.1` satisfies `>= v1.12.0`).
pub fn compatible(m: &Metadata, talos: &str) -> Result<(), ExtensionError> {
    let want = &m.compatibility.talos.version;
    if want.is_empty() {
        return Ok(());
    }
    let c = Range::parse(want).map_err(|inner| ExtensionError::BadCompatibility {
        name: m.name.clone(),
        inner,
    })?;
    let v = SemVer::parse_tolerant(talos)?.core();
    if c.matches(&v) {
        Ok(())
    } else {
        Err(ExtensionError::Incompatible {
            name: m.name.clone(),
            version: m.version.clone(),
            constraint: c.to_string(),
            talos: talos.into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requirements() {
        let m = Metadata {
            name: "tailscale".into(),
            version: "1.88.1".into(),
            ..Default::default()
        };
        assert_eq!(
            Requirement::parse("tailscale >= 1.88.0").unwrap().check(&m),
            Ok(true)
        );
        assert!(Requirement::parse("tailscale >= 1.90.0")
            .unwrap()
            .check(&m)
            .unwrap_err()
            .to_string()
            .contains("does not satisfy >= 1.90.0"));
        // The range syntax is Talos's (blang/semver): space is AND, `||` is OR.
        let r = Requirement::parse("tailscale >= 1.80.0 < 1.89.0 || >= 2.0.0").unwrap();
        assert_eq!(r.check(&m), Ok(true));
        assert!(
            Requirement::parse("tailscale >= 1.90").is_err(),
            "short versions"
        );
        assert_eq!(Requirement::parse("spin").unwrap().check(&m), Ok(false));
        assert!(Requirement::parse("bad name!").is_err());
        assert!(Requirement::parse("spin >=").is_err());
    }

    #[test]
    fn rootfs_paths() {
        assert!(rootfs_path_allowed("usr/local/bin/x"));
        assert!(rootfs_path_allowed("usr") && rootfs_path_allowed("usr/lib"));
        assert!(rootfs_path_allowed("etc/cri/conf.d/10-spin.part"));
        assert!(!rootfs_path_allowed("etc/passwd"));
        assert!(!rootfs_path_allowed("usr/bin/evil"));
        assert!(!rootfs_path_allowed("usr/localx"));
    }

    #[test]
    fn manifest_schema() {
        let good = "version: v1alpha1\nmetadata:\n  name: spin\n  version: v0.21.0\n  author: A\n  description: D\n  compatibility:\n    talos:\n      version: '>= v1.0.0'\n";
        let m = parse_manifest(good).unwrap();
        assert_eq!(compatible(&m.metadata, "v1.11.5"), Ok(()));
        assert!(compatible(&m.metadata, "v0.9.0")
            .unwrap_err()
            .to_string()
            .contains("requires Talos >= v1.0.0, not v0.9.0"));
        assert!(parse_manifest(&good.replace("v1alpha1", "v2"))
            .unwrap_err()
            .to_string()
            .contains("expected v1alpha1"));
        assert!(parse_manifest(&good.replace("  author: A\n", ""))
            .unwrap_err()
            .to_string()
            .contains("metadata.author"));
    }
}
