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

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq, Default)]
pub struct ExtensionsConfig {
    #[serde(default, deserialize_with = "zero")]
    pub layers: Vec<Layer>,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq, Default)]
pub struct Layer {
    #[serde(default, deserialize_with = "zero")]
    pub image: String,
    #[serde(default, deserialize_with = "zero")]
    pub metadata: Metadata,
}

/// Go's YAML decoders leave a missing or null value at its zero value; so does this.
fn zero<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq, Default)]
pub struct Metadata {
    #[serde(default, deserialize_with = "zero")]
    pub name: String,
    #[serde(default, deserialize_with = "zero")]
    pub version: String,
    #[serde(default, deserialize_with = "zero")]
    pub author: String,
    #[serde(default, deserialize_with = "zero")]
    pub description: String,
    #[serde(default, deserialize_with = "zero")]
    pub compatibility: Compatibility,
    /// Free text (`extraInfo,omitempty`, `pkg/machinery/extensions/metadata.go`): the
    /// factory's `schematic` layer carries the schematic in it.
    #[serde(
        default,
        deserialize_with = "zero",
        rename = "extraInfo",
        skip_serializing_if = "String::is_empty"
    )]
    pub extra_info: String,
}

/// The layers Talos's machinery adds rather than a user: the combined `modules.dep`
/// (`internal/pkg/extensions/kernel_modules.go`) and the Image Factory's virtual `schematic`
/// extension (image-factory `internal/artifacts/schematic.go`).
pub fn is_machinery(m: &Metadata) -> bool {
    (m.name == MODULES_DEP && m.author == MACHINERY_AUTHOR)
        || (m.name == "schematic" && m.author.starts_with("Image Factory"))
}

/// The `modules.dep` layer's name and author.
pub const MODULES_DEP: &str = "modules.dep";
pub const MACHINERY_AUTHOR: &str = "Talos Machinery";

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq, Default)]
pub struct Compatibility {
    #[serde(default, deserialize_with = "zero")]
    pub talos: TalosCompat,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq, Default)]
pub struct TalosCompat {
    #[serde(default, deserialize_with = "zero")]
    pub version: String,
}

/// An extension image's `/manifest.yaml`. Unknown keys are ignored, as Talos's decoder
/// ignores them (`pkg/machinery/extensions/load.go`).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq, Default)]
pub struct Manifest {
    #[serde(default, deserialize_with = "zero")]
    pub version: String,
    #[serde(default, deserialize_with = "zero")]
    pub metadata: Metadata,
}

/// An extension image's manifest, at its root.
pub const MANIFEST: &str = "manifest.yaml";

/// `extensions.yaml` as Talos's init reads it (`pkg/machinery/extensions/config.go`,
/// `LoadConfig`): the first document, missing and null values at their zero value.
pub fn parse_config(text: &str) -> Result<ExtensionsConfig, ExtensionError> {
    decode("extensions.yaml", text)
}

/// As Go's `yaml.NewDecoder(r).Decode(&v)` reads: the first document only (what follows is
/// never looked at), an empty or null document the zero value.
fn decode<T: serde::de::DeserializeOwned + Default>(
    file: &'static str,
    text: &str,
) -> Result<T, ExtensionError> {
    let first = first_document(text);
    if first.trim().is_empty() || first.trim() == "---" {
        return Ok(T::default());
    }
    let v: Option<T> = serde_saphyr::from_str(first).map_err(|e| ExtensionError::Malformed {
        file,
        detail: plain(&e.without_snippet().to_string()),
    })?;
    Ok(v.unwrap_or_default())
}

/// The text of the first YAML document: up to where a second one starts.
fn first_document(text: &str) -> &str {
    use granit_parser::{Event, Parser};
    let mut docs = 0;
    for item in Parser::new_from_str(text) {
        let Ok((event, span)) = item else { break };
        if let Event::DocumentStart(..) = event {
            docs += 1;
            if docs == 2 {
                let at = span.start.byte_offset().unwrap_or(text.len());
                return text.get(..at).unwrap_or(text);
            }
        }
    }
    text
}

/// A decoder message for people: serde's Rust vocabulary said in YAML's.
fn plain(m: &str) -> String {
    m.replace("invalid type: ", "")
        .replace("expected a string", "expected text")
        .replace("struct ", "")
        .replace("sequence", "list")
        .replace("Option<String>", "text")
}

/// An extension image's `manifest.yaml` as Talos loads it (`pkg/machinery/extensions/load.go`,
/// `loadManifest`: go-yaml v4's `Decoder.Decode` into `Manifest`, `metadata.go`), then the
/// version must be `v1alpha1`.
pub fn parse_manifest(text: &str) -> Result<Manifest, ExtensionError> {
    let m = manifest_v4::decode(text).map_err(|detail| ExtensionError::Malformed {
        file: "manifest.yaml",
        detail: detail.into(),
    })?;
    // Talos's loader requires only the manifest version (`loadManifest`).
    if m.version != "v1alpha1" {
        return Err(ExtensionError::ManifestVersion(m.version));
    }
    Ok(m)
}

/// Talos's `Manifest` (`metadata.go`) decoded by go-yaml v4's rules ([`crate::goyaml`]).
mod manifest_v4 {
    use super::{Manifest, Metadata};
    use crate::goyaml::node::Node;
    use crate::goyaml::{document, entries, key, text, Result};

    pub fn decode(source: &str) -> Result<Manifest> {
        let root = document(source)?;
        let mut m = Manifest::default();
        for (k, v) in entries(&root, "extensions.Manifest")? {
            match key(k)?.as_str() {
                "version" => m.version = text(v)?,
                "metadata" => m.metadata = metadata(v)?,
                _ => {}
            }
        }
        Ok(m)
    }

    fn metadata(n: &Node) -> Result<Metadata> {
        let mut md = Metadata::default();
        for (k, v) in entries(n, "extensions.Metadata")? {
            match key(k)?.as_str() {
                "name" => md.name = text(v)?,
                "version" => md.version = text(v)?,
                "author" => md.author = text(v)?,
                "description" => md.description = text(v)?,
                "extraInfo" => md.extra_info = text(v)?,
                "compatibility" => {
                    for (k, v) in entries(v, "extensions.Compatibility")? {
                        if key(k)? == "talos" {
                            for (k, v) in entries(v, "extensions.Constraint")? {
                                if key(k)? == "version" {
                                    md.compatibility.talos.version = text(v)?;
                                }
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(md)
    }
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
        // Talos requires only the version; unknown keys are ignored, extraInfo kept.
        let lax = good.replace(
            "  author: A\n",
            "  extraInfo: |\n    customization: {}\n  future: x\n",
        );
        let m = parse_manifest(&format!("{lax}annotations: {{a: b}}\n")).unwrap();
        assert_eq!(m.metadata.author, "");
        assert_eq!(m.metadata.extra_info, "customization: {}\n");
    }
}

#[cfg(test)]
mod decode_tests {
    use super::*;

    /// Talos's decoder (`yaml.NewDecoder(f).Decode`) on what real and hostile manifests write.
    #[test]
    fn manifests_decode_as_talos_decodes_them() {
        let ok = |text: &str| parse_manifest(text).unwrap_or_else(|e| panic!("{text:?}: {e}"));
        let m = ok("version: v1alpha1\nmetadata:\n  name: spin\n  author: ~\n  compatibility:\n");
        assert_eq!(
            (m.metadata.name.as_str(), m.metadata.author.as_str()),
            ("spin", "")
        );
        assert_eq!(
            ok("version: v1alpha1\nmetadata: ~\n").metadata,
            Metadata::default()
        );
        assert_eq!(ok("version: v1alpha1\n").metadata, Metadata::default());
        let m = ok("version: v1alpha1\nmetadata: {name: a}\n---\n");
        assert_eq!(m.metadata.name, "a");
        // What follows the first document is never read, even when it is not YAML.
        ok("version: v1alpha1\n---\n[: : not yaml\n");
        // A scalar of any kind into a string field keeps its text.
        assert_eq!(
            ok("version: v1alpha1\nmetadata: {version: 1.10}\n")
                .metadata
                .version,
            "1.10"
        );
        let e = parse_manifest("version: v1alpha2\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("v1alpha2"), "{e}");
        let e = parse_manifest("version: v1alpha1\nmetadata: [1]\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("line 2: cannot construct !!seq into extensions.Metadata"),
            "{e}"
        );
        // Talos's v4 decoder takes no timestamp into a string; a key twice is an error.
        let e = parse_manifest("version: v1alpha1\nmetadata: {version: 2001-12-14}\n").unwrap_err();
        assert!(e.to_string().contains("!!timestamp"), "{e}");
        let e = parse_manifest("version: v1alpha1\nversion: v1alpha1\n").unwrap_err();
        assert!(e.to_string().contains("already defined"), "{e}");
    }

    #[test]
    fn an_extensions_yaml_with_no_layers_is_an_empty_list() {
        assert!(parse_config("layers:\n").unwrap().layers.is_empty());
        assert!(parse_config("").unwrap().layers.is_empty());
        let c = parse_config("layers:\n- image: 0.sqsh\n  metadata: ~\n").unwrap();
        assert_eq!(c.layers[0].image, "0.sqsh");
    }
}
