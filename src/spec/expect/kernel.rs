//! `files[].kernel` and `files[].uki`: which kernel a file is (checked by `check::kernel`).
//!
//! The section as written (YAML, JSON Schema), its validated form, and its validation.

use schemars::JsonSchema;
use serde::Deserialize;

use super::initramfs::{InitramfsExpect, InitramfsExpectation};
use crate::spec::arch::Arch;

// As written.

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

// Validated.

#[derive(Debug, Clone)]
pub struct UkiExpectation {
    pub cmdline_contains: Vec<String>,
    pub initramfs: Option<InitramfsExpectation>,
}
