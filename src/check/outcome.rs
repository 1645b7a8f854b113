//! The result of one check, as every reporter sees it.

use serde::{Deserialize, Serialize};

use super::plan::Check;
use super::subject::{Judged, Verdict};
use crate::exit::Exit;
use crate::oci::cache::FetchStats;

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

/// What one spec's run found, for every reporter.
#[derive(Debug, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct SpecRun {
    pub spec: String,
    pub spec_path: String,
    pub spec_sha256: String,
    pub image: String,
    #[schemars(required, extend("type" = ["string", "null"]))]
    pub source: Option<String>,
    #[schemars(required, extend("type" = ["string", "null"]))]
    pub digest: Option<String>,
    #[schemars(required, extend("type" = ["string", "null"]))]
    pub manifest_digest: Option<String>,
    #[schemars(required, extend("type" = ["string", "null"]))]
    pub platform: Option<String>,
    pub outcomes: Vec<Outcome>,
    pub duration_ms: f64,
    pub fetched: FetchStats,
    /// The run's place among all the command's specs (or fleet components), partitioned or
    /// not: `tdg report merge` orders by it.
    #[serde(default)]
    pub position: usize,
    /// Why the image could not be evaluated, when it could not.
    #[schemars(required, extend("type" = ["string", "null"]))]
    pub error: Option<String>,
    /// Golden listings for `settle`; not part of the report.
    #[serde(skip)]
    #[schemars(skip)]
    pub goldens: Vec<super::golden::Pending>,
    /// The serial console of the spec's boot, when it booted (kept in evidence bundles).
    #[serde(skip)]
    #[schemars(skip)]
    pub console: Option<String>,
}

impl SpecRun {
    /// A run that has found nothing yet.
    pub fn new(spec: &str, spec_path: &str, spec_sha256: &str, image: &str) -> Self {
        SpecRun {
            spec: spec.to_string(),
            spec_path: spec_path.to_string(),
            spec_sha256: spec_sha256.to_string(),
            image: image.to_string(),
            source: None,
            digest: None,
            manifest_digest: None,
            platform: None,
            outcomes: Vec::new(),
            duration_ms: 0.0,
            fetched: FetchStats::default(),
            position: 0,
            error: None,
            goldens: Vec::new(),
            console: None,
        }
    }

    pub fn worst(&self) -> Status {
        self.outcomes
            .iter()
            .map(|o| o.status)
            .max()
            .unwrap_or(Status::Pass)
    }
}

/// The exit for a set of runs: 2 if anything could not be evaluated, else 1 if any check
/// failed or was skipped, else 0.
pub fn exit(runs: &[SpecRun]) -> Exit {
    Exit::worst(runs.iter().map(SpecRun::worst))
}
