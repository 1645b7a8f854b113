//! The spec format, v1: what an image must contain. Field names are the user contract; the JSON
//! Schema (`tdg schema`) is generated from these types.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_saphyr::Spanned;

pub use super::arch::Arch;
pub use super::expect::{
    BootExpect, ChecksumsExpect, ConsoleExpect, Expect, ExtensionImageExpect, ExtensionsExpect,
    FileExpect, FileType, InitramfsExpect, InitramfsServicesExpect, KernelExpect, ProvenanceExpect,
    RedactionSpec, ReportExpect, ServicesExpect, SignatureExpect, SignatureSpec, SignerPreset,
    SizeRange, SizeSpec, TreeExpect, TreeField, UkiExpect,
};

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(
    title = "tdg spec v1",
    description = "What a Talos boot-asset image must contain."
)]
pub struct Spec {
    /// Always `tdg/v1`.
    #[serde(rename = "apiVersion")]
    pub api_version: ApiVersion,
    /// Names the spec's checks: trials are `<name>::<check>`. Lowercase letters, digits, `.`, `_`, `-`.
    #[schemars(with = "String")]
    pub name: Spanned<String>,
    /// The image to verify: `registry/repo:tag`, `...@sha256:...`, or `oci:<dir>[:tag]`.
    #[schemars(with = "String")]
    pub image: Spanned<String>,
    /// `os/arch[/variant]` to pick from an index; optional for single-platform images.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub platform: Option<Spanned<String>>,
    /// Pin: the digest the reference must resolve to (the index's or the platform manifest's).
    #[serde(default)]
    #[schemars(with = "Option<String>", regex(pattern = r"^sha256:[0-9a-f]{64}$"))]
    pub digest: Option<Spanned<String>>,
    /// The Talos version the image is for (`v1.11.5`); extensions must be compatible with it.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub talos: Option<Spanned<String>>,
    /// What the image must contain.
    #[schemars(with = "Expect")]
    pub expect: Spanned<Expect>,
    /// How to make an image that passes `expect` (`tdg build`).
    #[serde(default)]
    #[schemars(with = "Option<BuildSpec>")]
    pub build: Option<Spanned<BuildSpec>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BuildSpec {
    /// `arm64`, or a list for a multi-arch index.
    #[schemars(with = "ArchList")]
    pub arch: Spanned<ArchList>,
    /// The imager image (`/usr/install/<arch>/vmlinuz` and `initramfs.xz`) or an installer
    /// image (`/usr/install/<arch>/vmlinuz.efi`, a UKI, Talos >= 1.10). Either this or
    /// `source.factory`.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub base: Option<Spanned<String>>,
    /// Take the kernel and initramfs from somewhere other than a base image.
    #[serde(default)]
    #[schemars(with = "Option<SourceSpec>")]
    pub source: Option<Spanned<SourceSpec>>,
    /// System extension images, each optionally pinned `@sha256:…`.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub extensions: Vec<Spanned<String>>,
    /// Where the assets go in the image; `{arch}` is replaced.
    #[serde(default = "default_layout")]
    pub layout: String,
    /// Extra `Key: Value` facts for the build report.
    #[serde(default)]
    pub report: BTreeMap<String, String>,
    /// Image config labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Manifest annotations.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// Who must have signed the base and every extension image, checked before anything is
    /// built (as the Image Factory checks extensions): a cosign key, or identity and issuer.
    #[serde(default)]
    #[schemars(with = "Option<SignatureSpec>")]
    pub signatures: Option<Spanned<SignatureSpec>>,
    /// Where `tdg build --push` pushes the image.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub push: Option<Spanned<String>>,
    /// Kernel arguments for the matchbox profile (default: CozyStack's).
    #[serde(default)]
    pub kernel_args: Option<Vec<String>>,
    /// Tags that never move once pushed (a regex; default: release tags,
    /// `^v?MAJOR.MINOR.PATCH[-PRE]$`). Others (`latest`, `demo-stable`) move.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub immutable_tags: Option<Spanned<String>>,
    /// Judge every extension image by siderolabs/extensions' validator before anything is
    /// built (version format, service specs, allowed paths enforced), not only as the imager
    /// does.
    #[serde(default)]
    pub strict: bool,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SourceSpec {
    /// The Talos Image Factory: `kernel-<arch>` and `initramfs-<arch>.xz` for the schematic's
    /// ID and the spec's Talos version, after submitting the schematic.
    pub factory: FactorySourceSpec,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FactorySourceSpec {
    /// The factory (default https://factory.talos.dev).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub url: Option<Spanned<String>>,
    /// The schematic file, relative to the spec.
    #[schemars(with = "String")]
    pub schematic: Spanned<String>,
}

fn default_layout() -> String {
    crate::image_path::ASSETS.into()
}

/// One architecture, or several.
#[derive(Debug, JsonSchema, Clone)]
#[serde(untagged)]
pub enum ArchList {
    One(Arch),
    Many(Vec<Arch>),
}

impl ArchList {
    pub fn to_vec(&self) -> Vec<Arch> {
        match self {
            ArchList::One(a) => vec![*a],
            ArchList::Many(v) => v.clone(),
        }
    }
}

impl<'de> Deserialize<'de> for ArchList {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = ArchList;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("arm64, amd64, or a list of them")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<ArchList, E> {
                Arch::deserialize(serde::de::value::StrDeserializer::new(v)).map(ArchList::One)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<ArchList, A::Error> {
                let mut out = Vec::new();
                while let Some(a) = seq.next_element::<Arch>()? {
                    out.push(a);
                }
                Ok(ArchList::Many(out))
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Debug, Deserialize, JsonSchema, Clone, Copy, PartialEq, Eq)]
pub enum ApiVersion {
    #[serde(rename = "tdg/v1")]
    V1,
}
