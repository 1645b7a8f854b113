//! `tdg report merge`: partial JSON reports (from `--partition` jobs) as one verdict.

use std::path::PathBuf;

use anyhow::Result;

use super::outcomes;
use tdg::error::{Error, ErrorKind};
use tdg::exit::Exit;
use tdg::report::{self, Format, ReadReport};
use tdg::run::Verification;

#[derive(clap::Subcommand)]
pub enum ReportCommand {
    /// Merge the JSON reports of a partitioned verify or audit into one report and one exit
    /// code; a missing or doubled partition is an error.
    Merge(MergeArgs),
}

#[derive(clap::Args)]
pub struct MergeArgs {
    /// JSON reports (`--format json`), one per partition.
    #[arg(required = true, value_name = "REPORT")]
    reports: Vec<PathBuf>,
    /// The merged report: human, json, junit or github [default: github under GitHub
    /// Actions, else human].
    #[arg(long, value_enum, value_name = "FORMAT")]
    format: Option<Format>,
    /// Write the merged report here instead of standard output.
    #[arg(long, value_name = "FILE")]
    output: Option<PathBuf>,
}

pub fn report(g: &super::Global, what: &ReportCommand) -> Result<Exit> {
    let ReportCommand::Merge(a) = what;
    let mut parts = Vec::new();
    for path in &a.reports {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let r = ReadReport::parse(&text)
            .map_err(|e| Error::new(ErrorKind::Input, format!("{name}: {e}")))?;
        parts.push((name, r));
    }
    let runs = report::merge(parts).map_err(|e| Error::new(ErrorKind::Input, e))?;
    let v = Verification {
        runs,
        notes: Vec::new(),
        verdict_differs: false,
        partition: None,
    };
    outcomes::present(&v, a.format, a.output.as_deref(), g.style())
}
