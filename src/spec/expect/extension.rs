//! `expect.extension`: the image is a Talos system extension (checked by `check::extension`).
//!
//! The section as written (YAML, JSON Schema), its validated form, and its validation.

use schemars::JsonSchema;
use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::located::LocatedError;
use crate::spec::validator::Validator;

// As written.

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

// Validated.

#[derive(Debug, Clone)]
pub struct ExtensionImageExpectation {
    pub name: String,
    pub version: Option<String>,
    pub talos: Option<String>,
    /// The extensions validator's rules (`strict: true`), not only the imager's.
    pub strict: bool,
}

impl Validator<'_> {
    pub(in crate::spec) fn extension(
        &self,
        x: &Spanned<ExtensionImageExpect>,
    ) -> Result<ExtensionImageExpectation, LocatedError> {
        let talos = x
            .value
            .talos
            .as_ref()
            .map(|t| self.talos_version(t))
            .transpose()?;
        if x.value.name.trim().is_empty() {
            return Err(self.err(&x.referenced, "extension needs a name"));
        }
        Ok(ExtensionImageExpectation {
            name: x.value.name.clone(),
            version: x.value.version.clone(),
            talos,
            strict: x.value.strict,
        })
    }
}
