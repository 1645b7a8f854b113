//! Specs: the YAML model ([`model`]), strict loading with file:line:col errors ([`load`]), and
//! the validated form the rest of tdg reads ([`Spec`]).

pub mod load;
pub mod model;
pub mod positions;
pub mod size;

use std::path::PathBuf;

pub use load::{load_file, load_file_within, load_str, LocatedError};
pub use model::{Arch, FileType};
pub use positions::{Positions, SpecPos};

use crate::talos::extensions::Requirement;
use crate::talos::initramfs::Compression;

use crate::digest::Digest;
use crate::oci::platform::Platform;
use crate::reference::ImageRef;

/// A loaded, validated spec.
#[derive(Debug, Clone)]
pub struct Spec {
    pub path: PathBuf,
    /// sha256 of the spec file's bytes, for reports and evidence.
    pub file_digest: Digest,
    pub name: String,
    pub image: ImageRef,
    pub platform: Option<Platform>,
    pub digest: Option<Digest>,
    pub talos: Option<String>,
    pub expect: Expectations,
    pub build: Option<Build>,
    /// Where each check's key is written, for reports that point at it.
    pub positions: Positions,
}

/// The validated `build:` section.
#[derive(Debug, Clone)]
pub struct Build {
    pub arches: Vec<Arch>,
    pub base: BaseSource,
    pub extensions: Vec<ImageRef>,
    /// With `{arch}` still in it.
    pub layout: String,
    pub report: std::collections::BTreeMap<String, String>,
    pub labels: std::collections::BTreeMap<String, String>,
    pub annotations: std::collections::BTreeMap<String, String>,
    pub push: Option<ImageRef>,
    pub kernel_args: Vec<String>,
    /// Tags a push never moves to another digest.
    pub immutable_tags: regex::Regex,
    /// Who must have signed every input image (`build.signatures`).
    pub signatures: Option<SignatureExpectation>,
    /// Judge extension inputs by the extensions validator's rules (`build.strict`).
    pub strict: bool,
}

/// Release tags: `v?MAJOR.MINOR.PATCH[-PRE]`.
pub const RELEASE_TAGS: &str = r"^v?[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$";

/// Where a build's kernel and initramfs come from.
#[derive(Debug, Clone)]
pub enum BaseSource {
    /// An imager or installer image.
    Image(ImageRef),
    /// The Image Factory, for a schematic kept beside the spec.
    Factory {
        factory: crate::factory::urls::Factory,
        /// The schematic file, resolved against the spec's directory.
        schematic: std::path::PathBuf,
        schematic_id: String,
        /// The text the ID was computed from, submitted as it is.
        schematic_text: String,
    },
}

/// The kernel arguments CozyStack's matchbox profile boots Talos with.
pub const COZYSTACK_KERNEL_ARGS: &[&str] = &[
    "initrd=initramfs.xz",
    "init_on_alloc=1",
    "slab_nomerge",
    "pti=on",
    "console=tty0",
    "console=ttyS0",
    "printk.devkmsg=on",
    "talos.platform=metal",
];

impl Build {
    pub fn layout_for(&self, arch: Arch) -> String {
        self.layout.replace("{arch}", arch.as_str())
    }
}

#[derive(Debug, Clone, Default)]
pub struct Expectations {
    pub platforms: Option<Vec<Platform>>,
    pub labels: Vec<KeyMatch>,
    pub files: Vec<FileExpectation>,
    pub absent: Vec<String>,
    pub extension: Option<ExtensionImageExpectation>,
    pub tree: Option<TreeExpectation>,
    pub boot: Option<BootExpectation>,
    pub signature: Option<SignatureExpectation>,
    pub provenance: Option<ProvenanceExpectation>,
}

impl Expectations {
    /// Each `expect` section by its key, and whether the spec gives it: the one list "the spec
    /// checks nothing" is judged and said from (a unit test keeps it equal to the schema's).
    pub fn sections(&self) -> [(&'static str, bool); 9] {
        [
            ("platforms", self.platforms.is_some()),
            ("labels", !self.labels.is_empty()),
            ("files", !self.files.is_empty()),
            ("absent", !self.absent.is_empty()),
            ("extension", self.extension.is_some()),
            ("tree", self.tree.is_some()),
            ("boot", self.boot.is_some()),
            ("signature", self.signature.is_some()),
            ("provenance", self.provenance.is_some()),
        ]
    }

    pub fn is_empty(&self) -> bool {
        self.sections().iter().all(|(_, given)| !given)
    }
}

/// The validated `expect.provenance`.
#[derive(Debug, Clone)]
pub struct ProvenanceExpectation {
    /// Who signed the attestation: a key, or a keyless identity (issuer default: GitHub
    /// Actions').
    pub signer: SignatureExpectation,
    /// (what, JSON pointer into the predicate, expected value).
    pub fields: Vec<(&'static str, &'static str, ValueMatch)>,
}

/// `signature: siderolabs`: the identities the Image Factory accepts on Sidero Labs' images
/// (siderolabs/image-factory `cmd/image-factory/cmd/options.go`, `DefaultOptions.ContainerSignature`:
/// `SubjectRegExp` `(@siderolabs\.com$|^releasemgr-svc@talos-production\.iam\.gserviceaccount\.com$)`,
/// searched unanchored as Go's `regexp.MatchString` does), anchored here as `ValueMatch` reads
/// a regex, and `(?s)` so `.` crosses a line break as that search would.
pub const SIDEROLABS_IDENTITY: &str =
    r"^((?s:.*)@siderolabs\.com|releasemgr-svc@talos-production\.iam\.gserviceaccount\.com)$";
pub const SIDEROLABS_ISSUER: &str = "https://accounts.google.com";

/// GitHub Actions' OIDC issuer, the default for `expect.provenance`.
pub const GITHUB_ACTIONS_ISSUER: &str = "https://token.actions.githubusercontent.com";

/// The validated `expect.signature`: a cosign public key, or a keyless signer.
#[derive(Debug, Clone)]
pub enum SignatureExpectation {
    Key {
        /// Resolved against the spec file's directory.
        key: PathBuf,
        /// As the spec writes it.
        written: String,
        /// Whether a transparency-log entry is required (`tlog: false` says it is not).
        tlog: bool,
    },
    Keyless {
        /// Matched against the certificate's SAN emails and URIs.
        identity: ValueMatch,
        /// The OIDC issuer, exactly.
        issuer: String,
    },
}

/// `expect.boot.until` when a spec leaves it out: Talos's line once machined runs unconfigured.
pub const DEFAULT_UNTIL: &str = "entering maintenance service";
/// `expect.boot.timeout` when a spec leaves it out.
pub const DEFAULT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(300);

/// The validated `expect.boot`.
#[derive(Debug, Clone)]
pub struct BootExpectation {
    pub timeout: std::time::Duration,
    pub until: regex::Regex,
    pub append: Option<String>,
    /// Paths in the image; `{arch}` still in them.
    pub kernel: String,
    pub initrd: String,
    pub extensions: Option<InitramfsExpectation>,
    pub console_contains: Vec<String>,
    pub console_lacks: Vec<String>,
    pub services: Option<ServicesExpectation>,
}

/// The validated `expect.boot.services`: the last state of each named service.
#[derive(Debug, Clone, Default)]
pub struct ServicesExpectation {
    pub running: Vec<String>,
    pub waiting: Vec<String>,
    pub failed: Vec<String>,
    pub absent: Vec<String>,
}

impl BootExpectation {
    pub fn kernel_for(&self, arch: Arch) -> String {
        self.kernel.replace("{arch}", arch.as_str())
    }
    pub fn initrd_for(&self, arch: Arch) -> String {
        self.initrd.replace("{arch}", arch.as_str())
    }
}

#[derive(Debug, Clone)]
pub struct TreeExpectation {
    /// Resolved against the spec file's directory.
    pub golden: PathBuf,
    /// As the spec writes it, for messages that read the same wherever the spec is run.
    pub written: String,
    /// The directory the golden must stay inside ([`crate::located::repo_root`]).
    pub repo: PathBuf,
    pub redactions: Vec<Redaction>,
}

/// A named mask: in paths matching `paths`, the `fields` of the listing read `[name]`.
#[derive(Debug, Clone)]
pub struct Redaction {
    pub name: String,
    pub paths: globset::GlobSet,
    pub fields: Vec<model::TreeField>,
}

/// A key whose value must match: a label, a report field.
#[derive(Debug, Clone)]
pub struct KeyMatch {
    pub key: String,
    pub want: ValueMatch,
}

/// Inclusive size bounds; at least one is set.
#[derive(Debug, Clone, Copy)]
pub struct SizeBounds {
    pub min: Option<u64>,
    pub max: Option<u64>,
}

/// A `sha256sum` listing's expectation.
#[derive(Debug, Clone)]
pub struct ChecksumsExpectation {
    /// The directory the listed paths are relative to, normalised.
    pub root: String,
    /// Every regular file under `root` but the listing itself must be listed.
    pub complete: bool,
}

/// A golden file of the repository: where it is, and how the spec writes it (for messages
/// that read the same wherever the spec is run).
#[derive(Debug, Clone)]
pub struct GoldenFile {
    pub path: PathBuf,
    pub written: String,
    /// The directory the golden must stay inside ([`crate::located::repo_root`]).
    pub repo: PathBuf,
}

/// A build report's golden, compared once the values of `redact` keys read `[redacted]`.
#[derive(Debug, Clone)]
pub struct ReportGolden {
    pub file: GoldenFile,
    pub redact: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct ExtensionImageExpectation {
    pub name: String,
    pub version: Option<String>,
    pub talos: Option<String>,
    /// The extensions validator's rules (`strict: true`), not only the imager's.
    pub strict: bool,
}

#[derive(Debug, Clone, Default)]
pub struct InitramfsExpectation {
    pub present: Vec<Requirement>,
    pub absent: Vec<Requirement>,
    pub exact: Option<Vec<Requirement>>,
    pub compression: Option<Compression>,
    pub services: Option<LayerServicesExpectation>,
    /// Nothing in it may serve another architecture (`arch:`).
    pub arch: Option<crate::talos::foreign::Arch>,
}

/// The extension services an initramfs's layers carry, by name without `ext-`.
#[derive(Debug, Clone, Default)]
pub struct LayerServicesExpectation {
    pub present: Vec<String>,
    pub absent: Vec<String>,
    pub wait_for_config: Option<Vec<String>>,
}

impl InitramfsExpectation {
    pub fn checks_extensions(&self) -> bool {
        !self.present.is_empty() || !self.absent.is_empty() || self.exact.is_some()
    }
}

#[derive(Debug, Clone)]
pub struct UkiExpectation {
    pub cmdline_contains: Vec<String>,
    pub initramfs: Option<InitramfsExpectation>,
}

#[derive(Debug, Clone)]
pub struct ReportExpectation {
    pub fields: Vec<KeyMatch>,
    pub revision: Option<String>,
    pub golden: Option<ReportGolden>,
}

/// An expected string: exact, or a regex when the spec writes it `^...$`.
#[derive(Debug, Clone)]
pub enum ValueMatch {
    Exact(String),
    Regex(regex::Regex),
}

impl ValueMatch {
    pub fn parse(s: &str) -> Result<Self, String> {
        if s.len() >= 2 && s.starts_with('^') && s.ends_with('$') {
            regex::Regex::new(s)
                .map(ValueMatch::Regex)
                .map_err(|e| format!("invalid regex: {}", last_line(&e.to_string())))
        } else {
            Ok(ValueMatch::Exact(s.to_string()))
        }
    }
    pub fn matches(&self, v: &str) -> bool {
        match self {
            ValueMatch::Exact(s) => s == v,
            ValueMatch::Regex(r) => r.is_match(v),
        }
    }
}

impl std::fmt::Display for ValueMatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ValueMatch::Exact(s) => write!(f, "'{s}'"),
            ValueMatch::Regex(r) => write!(f, "/{}/", r.as_str()),
        }
    }
}

#[derive(Debug, Clone)]
pub struct FileExpectation {
    pub path: String,
    pub kind: Option<FileType>,
    pub mode: Option<u32>,
    pub size: Option<SizeBounds>,
    pub sha256: Option<Digest>,
    pub contains: Vec<String>,
    pub matches: Vec<regex::bytes::Regex>,
    pub lacks: Vec<String>,
    pub lacks_matching: Vec<regex::bytes::Regex>,
    /// `(uid, gid)`.
    pub owner: Option<(u64, u64)>,
    pub executable: Option<bool>,
    pub description: Option<String>,
    pub kernel: Option<Arch>,
    pub uki: Option<UkiExpectation>,
    pub initramfs: Option<InitramfsExpectation>,
    pub checksums: Option<ChecksumsExpectation>,
    pub report: Option<ReportExpectation>,
}

/// The last non-empty line of a multi-line error (regex puts the reason there).
pub(crate) fn last_line(s: &str) -> String {
    s.lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .unwrap_or("")
        .to_string()
}

/// The JSON Schema of spec v1, generated from the model.
pub fn json_schema() -> String {
    let schema = schemars::schema_for!(model::Spec);
    serde_json::to_string_pretty(&schema).expect("schema serializes") + "\n"
}

#[cfg(test)]
mod tests;
