//! The result of one check, as every reporter sees it.

use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, PartialOrd, Ord, schemars::JsonSchema)]
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

#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct Outcome {
    /// The check's name within its spec (`files::<path>::size`).
    pub check: String,
    pub status: Status,
    /// Expected vs found, for anything but a pass; never a whole file's content.
    pub message: String,
    pub duration_ms: f64,
}

impl Outcome {
    pub fn new(check: &str, status: Status, message: impl Into<String>) -> Self {
        Outcome {
            check: check.to_string(),
            status,
            message: message.into(),
            duration_ms: 0.0,
        }
    }
}
