//! `tdg audit --fleet FILE`: the fleet's components as one verify report.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;

use super::{outcomes, runtime, Global};
use tdg::error::Error;
use tdg::exit::Exit;
use tdg::fleet::{self, Options};
use tdg::partition::{Partition, Partitioned};
use tdg::report::Format;
use tdg::run::Verification;

#[derive(clap::Args)]
pub struct AuditArgs {
    /// The fleet file: every repository of one release.
    #[arg(long, value_name = "FILE")]
    fleet: PathBuf,
    /// The release tag to audit, over the fleet file's `tag`.
    #[arg(long, value_name = "T")]
    tag: Option<String>,
    /// The revision every component must carry [default: the majority's].
    #[arg(long, value_name = "R")]
    revision: Option<String>,
    /// Components checked at once [default: 4 per core].
    #[arg(long, value_name = "N")]
    jobs: Option<usize>,
    /// How long one component may take before it is an error.
    #[arg(long, value_name = "DURATION", default_value = "120s", value_parser = humantime::parse_duration)]
    timeout: Duration,
    /// The report: human, json, junit or github [default: github under GitHub Actions, else
    /// human].
    #[arg(long, value_enum, value_name = "FORMAT")]
    format: Option<Format>,
    /// Write the report here instead of standard output.
    #[arg(long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Check only this part of the fleet's components (slice:K/N or hash:K/N); merge the
    /// parts' JSON reports with `tdg report merge`.
    #[arg(long, value_name = "SLICE")]
    partition: Option<Partition>,
}

pub fn audit(g: &Global, a: &AuditArgs) -> Result<Exit> {
    let (fleet, tag) = fleet::load_file(&a.fleet, g.repo.as_deref()).map_err(Error::from)?;
    let jobs = a
        .jobs
        .unwrap_or_else(|| 4 * std::thread::available_parallelism().map_or(1, |n| n.get()));
    let opts = Options {
        tag: a.tag.clone(),
        revision: a.revision.clone(),
        jobs,
        timeout: a.timeout,
        partition: a.partition,
    };
    let env = g.env()?;
    let audit = runtime()?.block_on(fleet::audit(&env, &fleet, tag.as_deref(), &opts));
    let mut notes = vec![match &audit.revision {
        Some((r, true)) => format!("fleet {}: the majority is at revision {r}", fleet.name),
        Some((r, false)) => format!("fleet {}: held to revision {r}", fleet.name),
        None => format!(
            "fleet {}: no revision has a majority; pass --revision",
            fleet.name
        ),
    }];
    let findings = audit
        .runs
        .iter()
        .filter(|r| {
            r.outcomes
                .iter()
                .any(|o| o.status != tdg::check::Status::Pass)
        })
        .count();
    notes.push(format!(
        "{} of {} components consistent",
        audit.runs.len() - findings,
        audit.runs.len()
    ));
    let v = Verification {
        runs: audit.runs,
        notes,
        verdict_differs: false,
        partition: a.partition.map(|p| Partitioned {
            partition: p.to_string(),
            total: fleet.components.len(),
        }),
    };
    outcomes::present(&v, a.format, a.output.as_deref(), g.style())
}
