//! `files[].initramfs`: what an initramfs holds, as Linux and Talos read it (checked by
//! `check::initramfs`).
//!
//! The section as written (YAML, JSON Schema), its validated form, and its validation.

use schemars::JsonSchema;
use serde::Deserialize;
use serde_saphyr::{Location, Spanned};

use crate::located::LocatedError;
use crate::spec::arch::Arch;
use crate::spec::validator::Validator;
use crate::talos::extensions::Requirement;
use crate::talos::initramfs::Compression;

// As written.

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

// Validated.

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

impl Validator<'_> {
    pub(in crate::spec) fn initramfs(
        &self,
        i: &InitramfsExpect,
        at: &Location,
    ) -> Result<InitramfsExpectation, LocatedError> {
        let bare = |n: &String| n.strip_prefix("ext-").unwrap_or(n).to_string();
        let mut out = InitramfsExpectation {
            compression: i.compression,
            arch: i.arch.map(Into::into),
            services: i
                .services
                .as_ref()
                .map(|s| crate::spec::LayerServicesExpectation {
                    present: s.present.iter().map(bare).collect(),
                    absent: s.absent.iter().map(bare).collect(),
                    wait_for_config: s
                        .wait_for_config
                        .as_ref()
                        .map(|w| w.iter().map(bare).collect()),
                }),
            ..Default::default()
        };
        if let Some(e) = &i.extensions {
            out.present = self.requirements(&e.present)?;
            out.absent = self.requirements(&e.absent)?;
            out.exact = e.exact.as_ref().map(|x| self.requirements(x)).transpose()?;
            for p in &out.present {
                if out
                    .absent
                    .iter()
                    .any(|a| a.name == p.name && a.version.is_none())
                {
                    return Err(self.err(
                        at,
                        format!("extension '{}' is expected both present and absent", p.name),
                    ));
                }
            }
        }
        if !out.checks_extensions()
            && out.compression.is_none()
            && out.services.is_none()
            && out.arch.is_none()
        {
            return Err(self.err(
                at,
                "initramfs checks nothing: give extensions, compression, services or arch",
            ));
        }
        Ok(out)
    }

    pub(in crate::spec) fn requirements(
        &self,
        list: &[Spanned<String>],
    ) -> Result<Vec<Requirement>, LocatedError> {
        list.iter()
            .map(|r| {
                Requirement::parse(&r.value).map_err(|m| self.err(&r.referenced, m.to_string()))
            })
            .collect()
    }
}
