//! Reporters: the same [`SpecRun`]s printed for people (human), scripts (json), CI
//! dashboards (junit) and GitHub Actions (github: the human report, annotations and a job
//! summary).

pub mod github;

use std::fmt::Write as _;

use anyhow::Result;

use crate::check::Status;
use crate::verify::SpecRun;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Human,
    Json,
    Junit,
    /// The human report with GitHub workflow commands (`::error file=…,line=…`).
    Github,
}

impl Format {
    /// What a run prints when no `--format` is given: GitHub's own output inside GitHub
    /// Actions (`GITHUB_ACTIONS=true`), the human report elsewhere.
    pub fn default_here() -> Format {
        if in_github_actions() {
            Format::Github
        } else {
            Format::Human
        }
    }
}

/// GitHub Actions sets `GITHUB_ACTIONS=true` in every step.
pub fn in_github_actions() -> bool {
    std::env::var_os("GITHUB_ACTIONS").is_some_and(|v| v == "true")
}

pub fn render(format: Format, runs: &[SpecRun]) -> Result<String> {
    match format {
        Format::Human => Ok(human(runs)),
        Format::Json => json(runs),
        Format::Junit => junit(runs),
        Format::Github => Ok(human(runs) + &github::annotations(runs)),
    }
}

/// `-q/--quiet`: the human report lists only what did not pass, and the summary.
static QUIET: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

pub fn set_quiet(q: bool) {
    QUIET.store(q, std::sync::atomic::Ordering::Relaxed);
}

pub fn human(runs: &[SpecRun]) -> String {
    let quiet = QUIET.load(std::sync::atomic::Ordering::Relaxed);
    let mut out = String::new();
    let (mut pass, mut fail, mut error, mut skipped) = (0, 0, 0, 0);
    for r in runs {
        let bad = |s: Status| matches!(s, Status::Fail | Status::Error);
        if quiet && r.error.is_none() && !r.outcomes.iter().any(|o| bad(o.status)) {
            for o in &r.outcomes {
                match o.status {
                    Status::Skipped => skipped += 1,
                    _ => pass += 1,
                }
            }
            continue;
        }
        let _ = writeln!(out, "{} ({})", r.spec, r.spec_path);
        let _ = write!(out, "  image {}", r.image);
        if let Some(d) = r.digest.as_ref().filter(|d| !r.image.ends_with(d.as_str())) {
            let _ = write!(out, "@{}", d);
        }
        if let Some(p) = &r.platform {
            let _ = write!(out, " [{p}]");
        }
        out.push('\n');
        if let Some(e) = &r.error {
            // Nothing was evaluated: one line says why instead of the same error per check.
            let _ = writeln!(
                out,
                "  error: {e}\n  {} checks not evaluated",
                r.outcomes.len()
            );
            error += r.outcomes.len();
            continue;
        }
        for o in &r.outcomes {
            let word = match o.status {
                Status::Pass => crate::progress::paint("ok  ", "32"),
                Status::Fail => crate::progress::paint("FAIL", "31;1"),
                Status::Error => crate::progress::paint("ERR ", "35;1"),
                Status::Skipped => crate::progress::paint("skip", "33"),
            };
            let counted = |s: Status| matches!(s, Status::Pass | Status::Skipped);
            if quiet && counted(o.status) {
                match o.status {
                    Status::Pass => pass += 1,
                    _ => skipped += 1,
                }
                continue;
            }
            let _ = write!(out, "  {word} {}", o.check);
            if !o.message.is_empty() {
                let _ = write!(out, ": {}", o.message);
            }
            if let Some(d) = o.description.as_ref().filter(|_| o.status != Status::Pass) {
                let _ = write!(out, "\n         ({d})");
            }
            out.push('\n');
            match o.status {
                Status::Pass => pass += 1,
                Status::Fail => fail += 1,
                Status::Error => error += 1,
                Status::Skipped => skipped += 1,
            }
        }
    }
    let _ = writeln!(
        out,
        "{pass} passed, {fail} failed, {error} errors, {skipped} skipped"
    );
    out
}

/// The JSON report (`--format json`). Its JSON Schema is generated from these types, committed
/// as `schema/report-v1.schema.json`, and printed by `tdg schema --report`.
#[derive(serde::Serialize, schemars::JsonSchema)]
#[schemars(title = "tdg report v1")]
pub struct JsonReport<'a> {
    /// Always `tdg.report/v1`.
    pub schema: &'static str,
    pub tdg_version: &'static str,
    /// What `tdg verify` exits with: 0 all passed, 1 a check failed, 2 not evaluated.
    pub exit_code: i32,
    pub specs: &'a [SpecRun],
}

pub fn json(runs: &[SpecRun]) -> Result<String> {
    let v = JsonReport {
        schema: "tdg.report/v1",
        tdg_version: env!("CARGO_PKG_VERSION"),
        exit_code: crate::verify::exit_code(runs),
        specs: runs,
    };
    Ok(serde_json::to_string_pretty(&v)? + "\n")
}

pub fn json_schema() -> String {
    serde_json::to_string_pretty(&schemars::schema_for!(JsonReport<'static>))
        .expect("schema serializes")
        + "\n"
}

pub fn junit(runs: &[SpecRun]) -> Result<String> {
    use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
    let mut report = Report::new("tdg");
    for r in runs {
        let mut suite = TestSuite::new(r.spec.clone());
        suite.set_time(std::time::Duration::from_secs_f64(r.duration_ms / 1e3));
        for o in &r.outcomes {
            let status = match o.status {
                Status::Pass => TestCaseStatus::success(),
                Status::Fail => {
                    let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                    s.set_message(o.message.clone());
                    s
                }
                Status::Error => {
                    let mut s = TestCaseStatus::non_success(NonSuccessKind::Error);
                    s.set_message(o.message.clone());
                    s
                }
                Status::Skipped => {
                    let mut s = TestCaseStatus::skipped();
                    s.set_message(o.message.clone());
                    s
                }
            };
            let mut case = TestCase::new(o.check.clone(), status);
            case.set_classname(r.spec.clone());
            if let Some(d) = &o.description {
                case.set_system_out(d.clone());
            }
            case.set_time(std::time::Duration::from_secs_f64(o.duration_ms / 1e3));
            suite.add_test_case(case);
        }
        report.add_test_suite(suite);
    }
    Ok(report.to_string()?)
}

#[cfg(test)]
mod tests {
    #[test]
    fn committed_report_schema_is_current() {
        let committed = include_str!("../../schema/report-v1.schema.json");
        assert_eq!(
            committed,
            super::json_schema(),
            "run `cargo run -- schema --report > schema/report-v1.schema.json`"
        );
    }
}
