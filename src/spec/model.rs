//! The spec format, v1: what an image must contain. Field names are the user contract; the JSON
//! Schema (`tdg schema`) is generated from these types.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_saphyr::Spanned;

use super::size::ByteSize;

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

#[derive(Debug, Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// The exact set of platforms an index lists (attestation manifests are not platforms).
    #[serde(default)]
    #[schemars(with = "Option<Vec<String>>")]
    pub platforms: Option<Vec<Spanned<String>>>,
    /// Config labels. A value is matched exactly, or as a regex when written `^...$`.
    #[serde(default)]
    #[schemars(with = "Option<BTreeMap<String, String>>")]
    pub labels: Option<BTreeMap<String, Spanned<String>>>,
    /// Paths that must exist, with optional properties.
    #[serde(default)]
    #[schemars(with = "Vec<FileExpect>")]
    pub files: Vec<Spanned<FileExpect>>,
    /// Paths that must not exist (nor anything below them).
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub absent: Vec<Spanned<String>>,
    /// The image is a system extension: `/manifest.yaml` and `/rootfs` as Talos accepts them.
    #[serde(default)]
    #[schemars(with = "Option<ExtensionImageExpect>")]
    pub extension: Option<Spanned<ExtensionImageExpect>>,
    /// The whole flattened image must equal a golden `tdg tree` listing.
    #[serde(default)]
    #[schemars(with = "Option<TreeExpect>")]
    pub tree: Option<Spanned<TreeExpect>>,
    /// Boot the image's kernel and initramfs under QEMU and check what Talos's init says.
    #[serde(default)]
    #[schemars(with = "Option<BootExpect>")]
    pub boot: Option<Spanned<BootExpect>>,
    /// At least one signature of the image's digest verifies (offline, against the trusted
    /// root): by a cosign public key, or keyless by an identity and issuer.
    #[serde(default)]
    #[schemars(with = "Option<SignatureSpec>")]
    pub signature: Option<Spanned<SignatureSpec>>,
    /// A SLSA provenance v1 attestation (GitHub's `attest-build-provenance`) among the image's
    /// referrers verifies, and says what built it.
    #[serde(default)]
    #[schemars(with = "Option<ProvenanceExpect>")]
    pub provenance: Option<Spanned<ProvenanceExpect>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProvenanceExpect {
    /// Who signed the attestation: the certificate's SAN (GitHub: the workflow's URL at its
    /// ref), exactly or as a `^...$` regex. Or `key` instead.
    #[serde(default)]
    pub identity: Option<String>,
    /// A cosign public key (PEM, ECDSA P-256) that signed the attestation, relative to the
    /// spec file; instead of `identity`.
    #[serde(default)]
    pub key: Option<String>,
    /// With `key`: `false` accepts an attestation that has no transparency-log entry (`cosign
    /// attest --tlog-upload=false`, verified by `cosign verify-attestation
    /// --insecure-ignore-tlog`). Default `true`.
    #[serde(default)]
    pub tlog: Option<bool>,
    /// The OIDC issuer (default: GitHub Actions', `https://token.actions.githubusercontent.com`).
    #[serde(default)]
    pub issuer: Option<String>,
    /// The source repository (`buildDefinition.externalParameters.workflow.repository`).
    #[serde(default)]
    pub repository: Option<String>,
    /// The ref built (`…workflow.ref`, `refs/tags/v1.11.5`).
    #[serde(default)]
    pub r#ref: Option<String>,
    /// The commit built (`resolvedDependencies[0].digest.gitCommit`).
    #[serde(default)]
    pub commit: Option<String>,
    /// The workflow file (`…workflow.path`, `.github/workflows/release.yml`).
    #[serde(default)]
    pub workflow: Option<String>,
    /// The builder (`runDetails.builder.id`).
    #[serde(default)]
    pub builder_id: Option<String>,
}

/// Who must have signed: a named upstream signer (`siderolabs`), or the key or keyless signer
/// spelled out.
#[derive(Debug, JsonSchema)]
#[serde(untagged)]
pub enum SignatureSpec {
    Preset(SignerPreset),
    Signer(SignatureExpect),
}

/// Upstream signers by name.
#[derive(Debug, Deserialize, JsonSchema, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SignerPreset {
    /// Sidero Labs' own images, as the Image Factory verifies them
    /// (`cmd/image-factory/cmd/options.go`, `ContainerSignature`): keyless, from
    /// `https://accounts.google.com`, a `@siderolabs.com` address or their release service
    /// account.
    Siderolabs,
}

/// By hand rather than `untagged`: a word is a preset, a mapping the signer spelled out, and a
/// mistake in either says so in its own terms.
impl<'de> Deserialize<'de> for SignatureSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = SignatureSpec;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a signer's name (siderolabs), or {key} or {identity, issuer}")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<SignatureSpec, E> {
                SignerPreset::deserialize(serde::de::value::StrDeserializer::new(v))
                    .map(SignatureSpec::Preset)
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                m: A,
            ) -> Result<SignatureSpec, A::Error> {
                SignatureExpect::deserialize(serde::de::value::MapAccessDeserializer::new(m))
                    .map(SignatureSpec::Signer)
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SignatureExpect {
    /// A cosign public key (PEM, ECDSA P-256), relative to the spec file.
    #[serde(default)]
    pub key: Option<String>,
    /// A keyless signer's identity: the certificate's SAN email or URI, exactly or as a
    /// `^...$` regex.
    #[serde(default)]
    pub identity: Option<String>,
    /// A keyless signer's OIDC issuer (`https://accounts.google.com`,
    /// `https://token.actions.githubusercontent.com`).
    #[serde(default)]
    pub issuer: Option<String>,
    /// With `key`: `false` accepts a signature that has no transparency-log entry (a key that
    /// signs offline, as the Image Factory's does; `cosign verify --insecure-ignore-tlog`).
    /// Default `true`: a log entry is required, as `cosign verify` requires one.
    #[serde(default)]
    pub tlog: Option<bool>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BootExpect {
    /// Give up after this long (`300s`, `5m`).
    #[serde(default)]
    pub timeout: Option<String>,
    /// The console line (a regex) that ends a successful boot (default: `entering maintenance
    /// service`).
    #[serde(default)]
    pub until: Option<String>,
    /// Kernel arguments added to Talos's metal ones.
    #[serde(default)]
    pub append: Option<String>,
    /// The kernel to boot (default `assets/talos/<arch>/boot/vmlinuz`).
    #[serde(default)]
    pub kernel: Option<String>,
    /// The initramfs (default `assets/talos/<arch>/boot/initramfs.xz`).
    #[serde(default)]
    pub initrd: Option<String>,
    /// Which extensions Talos's init enables, as for an initramfs's `extensions`.
    #[serde(default)]
    pub extensions: Option<ExtensionsExpect>,
    /// Text the console must and must not show.
    #[serde(default)]
    pub console: Option<ConsoleExpect>,
    /// Talos's services as the console reports them (`[talos] service[NAME](STATE)`): the
    /// last state each named one reported.
    #[serde(default)]
    pub services: Option<ServicesExpect>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServicesExpect {
    /// Services whose last state is `Running` (`ext-spin`).
    #[serde(default)]
    pub running: Vec<String>,
    /// Services whose last state is `Waiting` (tailscale's, until its
    /// `ExtensionServiceConfig` arrives).
    #[serde(default)]
    pub waiting: Vec<String>,
    /// Services whose last state is `Failed`.
    #[serde(default)]
    pub failed: Vec<String>,
    /// Services the console never names (`ext-tailscale` on a worker).
    #[serde(default)]
    pub absent: Vec<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsoleExpect {
    #[serde(default)]
    pub contains: Vec<String>,
    #[serde(default)]
    pub lacks: Vec<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TreeExpect {
    /// The golden listing, relative to the spec file's directory.
    pub golden: String,
    /// Named masks for volatile fields: in matching paths the named fields read `[name]`.
    #[serde(default)]
    pub redactions: BTreeMap<String, Redaction>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Redaction {
    /// Glob patterns of paths (`*` stays within a path component, `**` crosses them).
    pub paths: Vec<String>,
    /// Which fields to mask.
    pub fields: Vec<TreeField>,
}

#[derive(Debug, Deserialize, JsonSchema, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum TreeField {
    Mode,
    Owner,
    Size,
    Sha256,
    Link,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExtensionImageExpect {
    /// `metadata.name` of the manifest.
    pub name: String,
    /// `metadata.version`, exactly.
    #[serde(default)]
    pub version: Option<String>,
    /// A Talos version the extension must be compatible with (defaults to the spec's `talos`).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub talos: Option<Spanned<String>>,
    /// Judge it as siderolabs/extensions' validator does (version format, service specs,
    /// allowed paths enforced), not only as the imager does.
    #[serde(default)]
    pub strict: bool,
}

#[derive(Debug, Deserialize, JsonSchema, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Arch {
    Arm64,
    Amd64,
}

impl Arch {
    pub fn as_str(self) -> &'static str {
        match self {
            Arch::Arm64 => "arm64",
            Arch::Amd64 => "amd64",
        }
    }
}

/// The architecture content must serve (`initramfs.arch`, a build's arch).
impl From<Arch> for crate::talos::foreign::Arch {
    fn from(a: Arch) -> Self {
        match a {
            Arch::Arm64 => crate::talos::foreign::Arch::Arm64,
            Arch::Amd64 => crate::talos::foreign::Arch::Amd64,
        }
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KernelExpect {
    /// The architecture the bytes say: arm64 `Image`, bzImage, PE machine, or a UKI's kernel.
    pub arch: Arch,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UkiExpect {
    /// Substrings of the `.cmdline` section.
    #[serde(default)]
    pub cmdline_contains: Vec<String>,
    /// Checks on the `.initrd` section, as for `initramfs`.
    #[serde(default)]
    pub initramfs: Option<InitramfsExpect>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InitramfsExpect {
    /// Which extensions `extensions.yaml` lists.
    #[serde(default)]
    pub extensions: Option<ExtensionsExpect>,
    /// The compression of every compressed segment (uncompressed ones, like microcode, are allowed).
    #[serde(default)]
    pub compression: Option<crate::talos::initramfs::Compression>,
    /// The extension services the node will start from the layers
    /// (`/usr/local/etc/containers/NAME.yaml`).
    #[serde(default)]
    pub services: Option<InitramfsServicesExpect>,
    /// The architecture the content must serve: x86 microcode, x86-only GPU firmware (i915,
    /// amdgpu) and ELF files for another machine fail it.
    #[serde(default)]
    pub arch: Option<Arch>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InitramfsServicesExpect {
    /// Services that must be there (`tailscale` or `ext-tailscale`).
    #[serde(default)]
    pub present: Vec<String>,
    /// Services that must not be there.
    #[serde(default)]
    pub absent: Vec<String>,
    /// Exactly the services that wait for an `ExtensionServiceConfig` document
    /// (`depends: [{configuration: true}]`); `[]` says none does, as on a worker.
    #[serde(default, rename = "waitForConfig")]
    pub wait_for_config: Option<Vec<String>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExtensionsExpect {
    /// Names that must be there, each with an optional constraint: `tailscale >= 1.88.0`.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub present: Vec<Spanned<String>>,
    /// Names (or name + constraint) that must not be there.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub absent: Vec<Spanned<String>>,
    /// The exact set of extensions, in any order.
    #[serde(default)]
    #[schemars(with = "Option<Vec<String>>")]
    pub exact: Option<Vec<Spanned<String>>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ChecksumsExpect {
    /// The directory the paths in the file are relative to.
    pub root: String,
    /// Every regular file under `root`, except the checksums file, must be listed.
    #[serde(default)]
    pub complete: bool,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReportExpect {
    /// `Key: Value` fields; a value is exact, or a regex when written `^...$`. Also checked in
    /// `build-report.json` beside the file when the image has one.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, String>")]
    pub fields: BTreeMap<String, Spanned<String>>,
    /// A field naming the commit built, which must match the `org.opencontainers.image.revision`
    /// label (catches a moving tag that points at an old build).
    #[serde(default)]
    pub revision: Option<String>,
    /// The whole report must equal this golden file (relative to the spec), once the values of
    /// the `redact` keys read `[redacted]`.
    #[serde(default)]
    pub golden: Option<String>,
    /// Keys whose values change from build to build (`Build Date`).
    #[serde(default)]
    pub redact: Vec<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileExpect {
    /// Path inside the image, relative to its root.
    pub path: String,
    /// `file`, `dir` or `symlink`. A hardlink counts as a file.
    #[serde(default, rename = "type")]
    pub kind: Option<FileType>,
    /// Permission bits as 3 or 4 octal digits, quoted: `"0644"`.
    #[serde(default)]
    #[schemars(with = "Option<String>", regex(pattern = r"^[0-7]{3,4}$"))]
    pub mode: Option<Spanned<String>>,
    /// What this entry is for: shown with its failures and as the JUnit case's system-out.
    #[serde(default)]
    pub description: Option<String>,
    /// An exact size (`32MiB`, `4096`) or inclusive bounds `{min, max}`: bytes or a string with
    /// a unit (`1MiB`, `200MB`).
    #[serde(default)]
    #[schemars(with = "Option<SizeSpec>")]
    pub size: Option<Spanned<SizeSpec>>,
    /// Owner as `"UID:GID"` (numeric), e.g. `"0:0"`.
    #[serde(default)]
    #[schemars(with = "Option<String>", regex(pattern = r"^[0-9]+:[0-9]+$"))]
    pub owner: Option<Spanned<String>>,
    /// Whether any execute bit is set (`true`) or none is (`false`).
    #[serde(default)]
    pub executable: Option<bool>,
    /// Expected sha256 of the content, 64 hex digits (a `sha256:` prefix is allowed).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub sha256: Option<Spanned<String>>,
    /// Substrings the content must contain.
    #[serde(default)]
    pub contains: Vec<String>,
    /// Regexes (Rust `regex` syntax) the content must match somewhere; `(?m)` for line anchors.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub matches: Vec<Spanned<String>>,
    /// Substrings the content must not contain.
    #[serde(default)]
    pub lacks: Vec<String>,
    /// Regexes the content must match nowhere.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub lacks_matching: Vec<Spanned<String>>,
    /// The file is a kernel of this architecture.
    #[serde(default)]
    pub kernel: Option<KernelExpect>,
    /// The file is a UKI.
    #[serde(default)]
    pub uki: Option<UkiExpect>,
    /// The file is an initramfs.
    #[serde(default)]
    pub initramfs: Option<InitramfsExpect>,
    /// The file is a `sha256sum` listing that verifies.
    #[serde(default)]
    pub checksums: Option<ChecksumsExpect>,
    /// The file is a build report with these facts.
    #[serde(default)]
    pub report: Option<ReportExpect>,
}

#[derive(Debug, Deserialize, JsonSchema, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum FileType {
    File,
    Dir,
    Symlink,
}

/// `size:` as one size (exactly that) or as bounds.
#[derive(Debug, JsonSchema, Clone, Copy)]
#[serde(untagged)]
pub enum SizeSpec {
    Exact(ByteSize),
    Range(SizeRange),
}

/// By hand rather than `untagged`, whose error names the Rust type and which would take a list
/// for `{min, max}` by position.
impl<'de> Deserialize<'de> for SizeSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        const FORMS: &str = "a size like 512KiB (or bytes, 4096), or {min, max}";
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = SizeSpec;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str(FORMS)
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<SizeSpec, E> {
                Ok(SizeSpec::Exact(ByteSize(v)))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<SizeSpec, E> {
                u64::try_from(v)
                    .map(|v| SizeSpec::Exact(ByteSize(v)))
                    .map_err(|_| E::custom(format!("a size cannot be negative; write {FORMS}")))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<SizeSpec, E> {
                super::size::parse(v)
                    .map(|v| SizeSpec::Exact(ByteSize(v)))
                    .map_err(|e| E::custom(format!("{e}; write {FORMS}")))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, m: A) -> Result<SizeSpec, A::Error> {
                SizeRange::deserialize(serde::de::value::MapAccessDeserializer::new(m))
                    .map(SizeSpec::Range)
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Debug, Deserialize, JsonSchema, Clone, Copy)]
#[serde(deny_unknown_fields)]
pub struct SizeRange {
    #[serde(default)]
    pub min: Option<ByteSize>,
    #[serde(default)]
    pub max: Option<ByteSize>,
}
