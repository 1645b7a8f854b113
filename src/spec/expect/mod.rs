//! The `expect` sections, one module per check family: each holds its section as written
//! (serde and JSON Schema), its validated form, and the validation that turns one into the
//! other, beside `check/<family>.rs`, which judges it. A new key touches its family's file here
//! and its check (and the regenerated schema).

pub mod boot;
pub mod checksums;
pub mod extension;
pub mod files;
pub mod initramfs;
pub mod kernel;
pub mod provenance;
pub mod report;
pub mod signature;
pub mod tree;

pub use boot::{BootExpect, ConsoleExpect, ServicesExpect};
pub use boot::{BootExpectation, ServicesExpectation, DEFAULT_TIMEOUT, DEFAULT_UNTIL};
pub use checksums::ChecksumsExpect;
pub use checksums::ChecksumsExpectation;
pub use extension::ExtensionImageExpect;
pub use extension::ExtensionImageExpectation;
pub use files::{FileExpect, FileType, SizeRange, SizeSpec};
pub use files::{FileExpectation, SizeBounds};
pub use initramfs::{ExtensionsExpect, InitramfsExpect, InitramfsServicesExpect};
pub use initramfs::{InitramfsExpectation, LayerServicesExpectation};
pub use kernel::UkiExpectation;
pub use kernel::{KernelExpect, UkiExpect};
pub use provenance::ProvenanceExpect;
pub use provenance::ProvenanceExpectation;
pub use report::ReportExpect;
pub use report::{GoldenFile, ReportExpectation, ReportGolden};
pub use signature::{SignatureExpect, SignatureSpec, SignerPreset};
pub use signature::{
    SignatureExpectation, GITHUB_ACTIONS_ISSUER, SIDEROLABS_IDENTITY, SIDEROLABS_ISSUER,
};
use std::collections::BTreeMap;
pub use tree::{Redaction, TreeExpectation};
pub use tree::{RedactionSpec, TreeExpect, TreeField};

use schemars::JsonSchema;
use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::located::LocatedError;
use crate::oci::platform::Platform;
use crate::spec::validator::Validator;
use crate::spec::{KeyMatch, ValueMatch};

// As written.

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

// Validated.

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

impl Validator<'_> {
    pub(in crate::spec) fn expect(
        &self,
        raw: &Spanned<Expect>,
    ) -> Result<Expectations, LocatedError> {
        let e = &raw.value;
        let platforms = match &e.platforms {
            Some(list) => Some(
                list.iter()
                    .map(|p| self.platform(p))
                    .collect::<Result<Vec<_>, _>>()?,
            ),
            None => None,
        };
        let mut labels = Vec::new();
        for (k, v) in e.labels.iter().flatten() {
            labels.push(KeyMatch {
                key: k.clone(),
                want: ValueMatch::parse(&v.value).map_err(|m| self.err(&v.referenced, m))?,
            });
        }
        let (files, absent) = self.files_and_absent(&e.files, &e.absent)?;
        let exp = Expectations {
            platforms,
            labels,
            files,
            absent,
            extension: e
                .extension
                .as_ref()
                .map(|x| self.extension(x))
                .transpose()?,
            tree: e.tree.as_ref().map(|t| self.tree(t)).transpose()?,
            boot: e.boot.as_ref().map(|b| self.boot(b)).transpose()?,
            signature: e
                .signature
                .as_ref()
                .map(|s| self.signature(s))
                .transpose()?,
            provenance: e
                .provenance
                .as_ref()
                .map(|p| self.provenance(p))
                .transpose()?,
        };
        if exp.is_empty() {
            let keys: Vec<&str> = exp.sections().iter().map(|(k, _)| *k).collect();
            return Err(self.err(
                &raw.referenced,
                format!(
                    "the spec checks nothing: give expect at least one of {}",
                    keys.join(", ")
                ),
            ));
        }
        Ok(exp)
    }

    /// `files` (each path once) and `absent` (none of them expected present).
    pub(in crate::spec) fn files_and_absent(
        &self,
        raw_files: &[Spanned<FileExpect>],
        raw_absent: &[Spanned<String>],
    ) -> Result<(Vec<FileExpectation>, Vec<String>), LocatedError> {
        let mut files: Vec<FileExpectation> = Vec::new();
        for f in raw_files {
            let fe = self.file(f)?;
            if files.iter().any(|o| o.path == fe.path) {
                return Err(self.err(
                    &f.referenced,
                    format!("'{}' is listed twice under files", fe.path),
                ));
            }
            files.push(fe);
        }
        let mut absent = Vec::new();
        for a in raw_absent {
            let p = self.path(&a.value, &a.referenced)?;
            if files
                .iter()
                .any(|f| f.path == p || f.path.starts_with(&format!("{p}/")))
            {
                return Err(self.err(
                    &a.referenced,
                    format!("'{p}' is expected both present (files) and absent"),
                ));
            }
            absent.push(p);
        }
        Ok((files, absent))
    }
}
