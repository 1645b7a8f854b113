//! `expect.tree`: the whole image against a golden listing (checked by `check::tree`).
//!
//! The section as written (YAML, JSON Schema), its validated form, and its validation.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::located::LocatedError;
use crate::spec::validator::Validator;

// As written.

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TreeExpect {
    /// The golden listing, relative to the spec file's directory.
    pub golden: String,
    /// Named masks for volatile fields: in matching paths the named fields read `[name]`.
    #[serde(default)]
    pub redactions: BTreeMap<String, RedactionSpec>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Redaction")]
pub struct RedactionSpec {
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

// Validated.

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
    pub fields: Vec<TreeField>,
}

impl Validator<'_> {
    pub(in crate::spec) fn tree(
        &self,
        t: &Spanned<TreeExpect>,
    ) -> Result<TreeExpectation, LocatedError> {
        let v = &t.value;
        if v.golden.trim().is_empty() {
            return Err(self.err(&t.referenced, "tree.golden names no file"));
        }
        let base = self.file.parent().unwrap_or(Path::new("."));
        let mut redactions = Vec::new();
        for (name, r) in &v.redactions {
            let mut set = globset::GlobSetBuilder::new();
            for p in &r.paths {
                let g = globset::GlobBuilder::new(p)
                    .literal_separator(true)
                    .build()
                    .map_err(|e| self.err(&t.referenced, format!("redaction {name}: {e}")))?;
                set.add(g);
            }
            if r.fields.is_empty() || r.paths.is_empty() {
                return Err(self.err(
                    &t.referenced,
                    format!("redaction {name} needs paths and fields"),
                ));
            }
            redactions.push(Redaction {
                name: name.clone(),
                paths: set
                    .build()
                    .map_err(|e| self.err(&t.referenced, e.to_string()))?,
                fields: r.fields.clone(),
            });
        }
        Ok(TreeExpectation {
            golden: base.join(&v.golden),
            written: v.golden.clone(),
            repo: self.repo.clone(),
            redactions,
        })
    }
}
