//! `files[].report`: a build report's fields, revision and golden (checked by `check::report`).
//!
//! The section as written (YAML, JSON Schema), its validated form, and its validation.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::Deserialize;
use serde_saphyr::{Location, Spanned};

use crate::located::LocatedError;
use crate::spec::validator::Validator;
use crate::spec::{KeyMatch, ValueMatch};

// As written.

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

// Validated.

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
pub struct ReportExpectation {
    pub fields: Vec<KeyMatch>,
    pub revision: Option<String>,
    pub golden: Option<ReportGolden>,
}

impl Validator<'_> {
    pub(in crate::spec) fn report(
        &self,
        r: &ReportExpect,
        at: &Location,
    ) -> Result<ReportExpectation, LocatedError> {
        let mut fields = Vec::new();
        for (k, val) in &r.fields {
            fields.push(KeyMatch {
                key: k.clone(),
                want: ValueMatch::parse(&val.value).map_err(|m| self.err(&val.referenced, m))?,
            });
        }
        if fields.is_empty() && r.revision.is_none() && r.golden.is_none() {
            return Err(self.err(at, "report checks nothing: give fields, revision or golden"));
        }
        let base = self.file.parent().unwrap_or(Path::new("."));
        let golden = r.golden.as_ref().map(|g| ReportGolden {
            file: GoldenFile {
                path: base.join(g),
                written: g.clone(),
                repo: self.repo.clone(),
            },
            redact: r.redact.clone(),
        });
        Ok(ReportExpectation {
            fields,
            revision: r.revision.clone(),
            golden,
        })
    }
}
