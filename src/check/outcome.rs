//! The result of one check, as every reporter sees it.

use serde::{Deserialize, Serialize};

use super::plan::Check;
use super::subject::{Judged, Verdict};
use crate::exit::Exit;

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
    /// The exit for a run whose worst outcome has this status: a skipped check is not a pass.
    pub fn exit(self) -> Exit {
        match self {
            Status::Pass => Exit::Passed,
            Status::Fail | Status::Skipped => Exit::Failed,
            Status::Error => Exit::Unevaluated,
        }
    }

    pub fn word(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Fail => "fail",
            Status::Error => "error",
            Status::Skipped => "skipped",
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Outcome {
    /// The check's name within its spec (`files::<path>::size`).
    pub check: String,
    /// The golden file the check compares with ([`super::Planned::golden`]): what a bless
    /// settles.
    #[serde(skip)]
    #[schemars(skip)]
    pub golden: Option<std::path::PathBuf>,
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
            golden: check.check.golden().map(std::path::Path::to_path_buf),
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
