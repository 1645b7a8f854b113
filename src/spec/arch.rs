//! The architectures a spec names (`build.arch`, a boot's arch), as Talos spells them.

use schemars::JsonSchema;
use serde::Deserialize;

#[derive(Debug, Deserialize, JsonSchema, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Arch {
    Arm64,
    Amd64,
}

impl Arch {
    pub fn as_str(self) -> &'static str {
        match self {
            Arch::Arm64 => "arm64",
            Arch::Amd64 => "amd64",
        }
    }
}

/// The architecture content must serve (`initramfs.arch`, a build's arch).
impl From<Arch> for crate::talos::foreign::Arch {
    fn from(a: Arch) -> Self {
        match a {
            Arch::Arm64 => crate::talos::foreign::Arch::Arm64,
            Arch::Amd64 => crate::talos::foreign::Arch::Amd64,
        }
    }
}
