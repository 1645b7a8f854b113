//! Reporters: the same [`SpecRun`]s printed for people (human), scripts (json), CI
//! dashboards (junit) and GitHub Actions (github: the human report, annotations and a job
//! summary).

pub mod github;

use std::fmt::Write as _;

use anyhow::Result;

use crate::check::SpecRun;
use crate::check::Status;
use crate::error::Reason;
use crate::partition::Partitioned;

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

/// How the human report looks: `-q/--quiet` lists only what did not pass (and the summary);
/// `colour` paints the statuses (`--color`, [`crate::progress::colour`]).
#[derive(Clone, Copy, Debug, Default)]
pub struct Style {
    pub quiet: bool,
    pub colour: bool,
}

/// `partition`: the runs are one part of a larger whole, recorded in the JSON report for
/// `tdg report merge`.
pub fn render(
    format: Format,
    runs: &[SpecRun],
    partition: Option<&Partitioned>,
    style: Style,
) -> Result<String> {
    match format {
        Format::Human => Ok(human(runs, style)),
        Format::Json => json(runs, partition),
        Format::Junit => junit(runs),
        Format::Github => Ok(human(runs, style) + &github::annotations(runs)),
    }
}

pub fn human(runs: &[SpecRun], style: Style) -> String {
    let quiet = style.quiet;
    let paint = |text: &str, code: &str| crate::progress::paint(text, code, style.colour);
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
                Status::Pass => paint("ok  ", "32"),
                Status::Fail => paint("FAIL", "31;1"),
                Status::Error => paint("ERR ", "35;1"),
                Status::Skipped => paint("skip", "33"),
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
    /// Present in a partial report (`--partition`): which part, of how many runs in all.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partition: Option<&'a Partitioned>,
    pub specs: &'a [SpecRun],
}

const SCHEMA: &str = "tdg.report/v1";

pub fn json(runs: &[SpecRun], partition: Option<&Partitioned>) -> Result<String> {
    let v = JsonReport {
        schema: SCHEMA,
        tdg_version: env!("CARGO_PKG_VERSION"),
        exit_code: crate::check::exit(runs).code().into(),
        partition,
        specs: runs,
    };
    Ok(serde_json::to_string_pretty(&v)? + "\n")
}

/// A JSON report read back: what `tdg report merge` takes.
#[derive(serde::Deserialize)]
pub struct ReadReport {
    pub schema: String,
    #[serde(default)]
    pub partition: Option<Partitioned>,
    pub specs: Vec<SpecRun>,
}

impl ReadReport {
    pub fn parse(text: &str) -> std::result::Result<ReadReport, Reason> {
        let r: ReadReport = serde_json::from_str(text).map_err(|e| e.to_string())?;
        if r.schema != SCHEMA {
            return Err(format!("schema is '{}', not {SCHEMA}", r.schema).into());
        }
        Ok(r)
    }
}

/// Partial reports as one: runs in the whole's order. Partitions of one whole must cover it
/// exactly once each (a missing job is never a smaller pass); whole reports are appended.
pub fn merge(parts: Vec<(String, ReadReport)>) -> std::result::Result<Vec<SpecRun>, Reason> {
    let totals: std::collections::BTreeSet<usize> = parts
        .iter()
        .filter_map(|(_, r)| r.partition.as_ref().map(|p| p.total))
        .collect();
    if totals.len() > 1 {
        return Err(format!(
            "the partial reports are of different wholes ({} runs in all)",
            totals
                .iter()
                .map(|t| t.to_string())
                .collect::<Vec<_>>()
                .join(" vs ")
        )
        .into());
    }
    let mut seen: std::collections::BTreeMap<usize, String> = Default::default();
    let mut partial = Vec::new();
    let mut whole = Vec::new();
    for (name, r) in parts {
        match &r.partition {
            Some(p) => {
                for run in r.specs {
                    if run.position >= p.total {
                        return Err(format!(
                            "{name}: run {} is at position {}, past the whole's {}",
                            run.spec, run.position, p.total
                        )
                        .into());
                    }
                    if let Some(other) = seen.insert(run.position, name.clone()) {
                        return Err(format!(
                            "{name} and {other} both hold run {} ({}): a partition given twice",
                            run.position, run.spec
                        )
                        .into());
                    }
                    partial.push(run);
                }
            }
            None => whole.extend(r.specs),
        }
    }
    if let Some(total) = totals.first() {
        let missing: Vec<String> = (0..*total)
            .filter(|i| !seen.contains_key(i))
            .map(|i| i.to_string())
            .collect();
        if !missing.is_empty() {
            return Err(format!(
                "runs {} of {total} are in no report: a partition is missing",
                missing.join(", ")
            )
            .into());
        }
    }
    partial.sort_by_key(|r| r.position);
    partial.extend(whole);
    Ok(partial)
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
