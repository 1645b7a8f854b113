//! Specs: the YAML model ([`model`]), strict loading with file:line:col errors ([`load`]), and
//! the validated form the rest of tdg reads ([`Spec`]).

pub mod arch;
pub mod expect;
pub mod load;
pub mod model;
pub mod positions;
pub mod size;
pub mod validator;

use std::path::PathBuf;

pub use expect::{
    BootExpectation, ChecksumsExpectation, Expectations, ExtensionImageExpectation,
    FileExpectation, GoldenFile, InitramfsExpectation, LayerServicesExpectation,
    ProvenanceExpectation, Redaction, ReportExpectation, ReportGolden, ServicesExpectation,
    SignatureExpectation, SizeBounds, TreeExpectation, UkiExpectation, DEFAULT_TIMEOUT,
    DEFAULT_UNTIL, GITHUB_ACTIONS_ISSUER, SIDEROLABS_IDENTITY, SIDEROLABS_ISSUER,
};
pub use load::{load_file, load_file_within, load_str, LocatedError};
pub use model::{Arch, FileType};
pub use positions::{Positions, SpecPos};

use crate::digest::Digest;
use crate::error::Reason;
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

/// A key whose value must match: a label, a report field.
#[derive(Debug, Clone)]
pub struct KeyMatch {
    pub key: String,
    pub want: ValueMatch,
}

/// An expected string: exact, or a regex when the spec writes it `^...$`.
#[derive(Debug, Clone)]
pub enum ValueMatch {
    Exact(String),
    Regex(regex::Regex),
}

impl ValueMatch {
    pub fn parse(s: &str) -> Result<Self, Reason> {
        if s.len() >= 2 && s.starts_with('^') && s.ends_with('$') {
            regex::Regex::new(s)
                .map(ValueMatch::Regex)
                .map_err(|e| Reason(format!("invalid regex: {}", last_line(&e.to_string()))))
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
