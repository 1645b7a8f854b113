//! `files[].checksums`: a `checksums.sha256` and the files it lists (checked by `check::checksums`).
//!
//! The section as written (YAML, JSON Schema), its validated form, and its validation.

use schemars::JsonSchema;
use serde::Deserialize;

// As written.

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ChecksumsExpect {
    /// The directory the paths in the file are relative to.
    pub root: String,
    /// Every regular file under `root`, except the checksums file, must be listed.
    #[serde(default)]
    pub complete: bool,
}

// Validated.

/// A `sha256sum` listing's expectation.
#[derive(Debug, Clone)]
pub struct ChecksumsExpectation {
    /// The directory the listed paths are relative to, normalised.
    pub root: String,
    /// Every regular file under `root` but the listing itself must be listed.
    pub complete: bool,
}
