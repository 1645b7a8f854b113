//! The validator of a spec: where it was read from, the repository its files must stay in, and
//! the checks every section shares (a path, a platform, a Talos version), each error at its
//! `file:line:col`. Each section's own validation lives with its family (`spec/expect/`).

use std::path::{Path, PathBuf};

use serde_saphyr::{Location, Spanned};

use crate::located::LocatedError;
use crate::oci::platform::Platform;

/// Turns the spec as written into its validated form; each family's part of it lives with the
/// family (`spec/expect/`).
pub(crate) struct Validator<'a> {
    pub(in crate::spec) file: &'a Path,
    /// Every file the spec names must stay inside this directory.
    pub(in crate::spec) repo: PathBuf,
}

impl Validator<'_> {
    pub(in crate::spec) fn err(&self, at: &Location, message: impl Into<String>) -> LocatedError {
        LocatedError {
            file: self.file.to_path_buf(),
            line: at.line(),
            column: at.column(),
            message: message.into(),
            snippet: None,
        }
    }

    pub(in crate::spec) fn talos_version(
        &self,
        t: &Spanned<String>,
    ) -> Result<String, LocatedError> {
        crate::talos::version::SemVer::parse_tolerant(&t.value)
            .map_err(|m| self.err(&t.referenced, format!("invalid Talos version: {m}")))?;
        Ok(t.value.clone())
    }

    pub(in crate::spec) fn platform(&self, p: &Spanned<String>) -> Result<Platform, LocatedError> {
        p.value
            .parse()
            .map_err(|e: crate::oci::platform::PlatformError| {
                self.err(&p.referenced, e.to_string())
            })
    }

    pub(in crate::spec) fn path(&self, p: &str, at: &Location) -> Result<String, LocatedError> {
        if p.contains('\0') {
            return Err(self.err(
                at,
                format!("path {p:?} holds a NUL byte, which no file name can"),
            ));
        }
        if p.len() > 1 && p.ends_with('/') {
            return Err(self.err(
                at,
                format!("path '{p}' ends with '/': write it without (a directory is `type: dir`)"),
            ));
        }
        let norm = crate::image_path::normalize(p).map_err(|e| self.err(at, e.to_string()))?;
        if norm.is_empty() {
            return Err(self.err(
                at,
                format!("path '{p}' names the image root; name a path inside it"),
            ));
        }
        Ok(norm)
    }
}
