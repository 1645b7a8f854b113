//! The record of one spec's run, as every reporter reads it: its outcomes, what was resolved
//! and fetched, and the goldens it rendered; the exit a set of runs gives, and the settling of
//! their goldens once the runs are done.

use std::path::Path;

use serde::Serialize;

use super::golden::{self, Mode, Pending};
use super::outcome::{Outcome, Status};
use crate::error::Reason;
use crate::exit::Exit;
use crate::oci::cache::FetchStats;

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
    pub goldens: Vec<Pending>,
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
    runs.iter()
        .map(SpecRun::worst)
        .max()
        .unwrap_or(Status::Pass)
        .exit()
}

/// Applies the mode to finished runs: writes what it allows and, when blessing, turns the
/// failure of each check whose golden it wrote into a pass. A refused golden (outside the
/// repository) is not written, and a golden never rendered (its report unreadable) is not
/// pending: their checks stay failed. Returns notes for the user.
pub fn settle_goldens(runs: &mut [SpecRun], mode: Mode) -> Result<Vec<String>, Reason> {
    let mut notes = Vec::new();
    for run in runs.iter_mut() {
        notes.extend(golden::settle(&run.goldens, mode)?);
        if mode != Mode::Bless {
            continue;
        }
        let written: Vec<&Path> = run
            .goldens
            .iter()
            .filter(|g| g.refused.is_none())
            .map(|g| g.golden.as_path())
            .collect();
        for o in run.outcomes.iter_mut().filter(|o| o.status == Status::Fail) {
            if o.golden.as_deref().is_some_and(|g| written.contains(&g)) {
                o.status = Status::Pass;
                o.message = "blessed".into();
            }
        }
    }
    Ok(notes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::golden::new_path;

    fn failed(check: &str, golden: &Path) -> Outcome {
        Outcome {
            check: check.into(),
            golden: Some(golden.to_path_buf()),
            status: Status::Fail,
            message: "differs".into(),
            description: None,
            at: None,
            duration_ms: 0.0,
        }
    }

    /// Blessing passes the checks whose golden it wrote, by the golden they name: not one
    /// refused, nor one never rendered (a report that could not be read).
    #[test]
    fn blessing_passes_exactly_the_checks_whose_golden_it_wrote() {
        let repo = tempfile::tempdir().unwrap();
        let (written, refused, unrendered) = (
            repo.path().join("golden/a.tree"),
            std::env::temp_dir().join("elsewhere.tree"),
            repo.path().join("golden/report.txt"),
        );
        let mut run = SpecRun::new("s", "specs/s.yaml", "", "oci:l:t");
        run.outcomes = vec![
            failed("tree", &written),
            failed("other::tree", &refused),
            failed("files::r::report::golden", &unrendered),
        ];
        run.goldens = vec![
            Pending::new(&written, repo.path(), "a.tree", "x\n".into()),
            Pending::new(&refused, repo.path(), "elsewhere.tree", "y\n".into()),
        ];
        assert!(run.goldens[1].refused.is_some());
        let mut runs = [run];
        let notes = settle_goldens(&mut runs, Mode::Bless).unwrap();
        let got: Vec<Status> = runs[0].outcomes.iter().map(|o| o.status).collect();
        assert_eq!(got, [Status::Pass, Status::Fail, Status::Fail]);
        assert_eq!(std::fs::read_to_string(&written).unwrap(), "x\n");
        assert_eq!(notes.len(), 1, "{notes:?}");
        // Review mode writes `.new` and passes nothing.
        runs[0].outcomes[0].status = Status::Fail;
        runs[0].goldens[0].actual = "z\n".into();
        settle_goldens(&mut runs, Mode::Review).unwrap();
        assert_eq!(runs[0].outcomes[0].status, Status::Fail);
        assert!(new_path(&written).exists());
    }
}
