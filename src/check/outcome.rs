//! The result of one check, as every reporter sees it.

use serde::{Deserialize, Serialize};

use super::plan::Check;
use super::subject::{Judged, Verdict};

#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, PartialOrd, Ord, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Skipped,
    Fail,
    Error,
}

impl Status {
    pub fn word(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Fail => "fail",
            Status::Error => "error",
            Status::Skipped => "skipped",
        }
    }
}

/// What a check judges, for whoever treats some checks apart (blessing writes goldens).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Kind {
    #[default]
    Image,
    File,
    Kernel,
    Initramfs,
    Checksums,
    Report,
    Extension,
    /// A whole listing compared with a golden file: the tree, a report's golden.
    Golden,
    /// What a boot under QEMU showed.
    Boot,
    /// Who signed the image.
    Signature,
}

#[derive(Clone, Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Outcome {
    /// The check's name within its spec (`files::<path>::size`).
    pub check: String,
    #[serde(skip)]
    #[schemars(skip)]
    pub kind: Kind,
    pub status: Status,
    /// Expected vs found, for anything but a pass (on a pass, a `warning:` where tdg would be
    /// stricter than Talos); never a whole file's content.
    pub message: String,
    /// The spec's `description` of the file entry the check belongs to, or `null`.
    pub description: Option<String>,
    /// The line and column of the spec key the check comes from.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub at: Option<crate::spec::SpecPos>,
    pub duration_ms: f64,
}

impl Outcome {
    pub fn new(check: &Check, status: Status, message: impl Into<String>) -> Self {
        Outcome {
            check: check.id.clone(),
            kind: check.check.kind(),
            status,
            message: message.into(),
            description: check.description.clone(),
            at: check.at,
            duration_ms: 0.0,
        }
    }

    pub fn judged(check: &Check, j: Judged) -> Self {
        match j {
            Ok(()) => Outcome::new(check, Status::Pass, ""),
            Err(Verdict::Fail(m)) => Outcome::new(check, Status::Fail, m),
            Err(Verdict::Error(m)) => Outcome::new(check, Status::Error, m),
            Err(Verdict::Warn(m)) => Outcome::new(check, Status::Pass, format!("warning: {m}")),
            Err(Verdict::Skip(m)) => Outcome::new(check, Status::Skipped, m),
        }
    }
}
