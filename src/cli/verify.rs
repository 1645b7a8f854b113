//! `tdg verify` and `tdg bless`.

use std::path::{Path, PathBuf};

use anyhow::Result;

use super::{outcomes, platform, runtime, Global};
use tdg::check::golden::Mode;
use tdg::check::{plan, Plan};
use tdg::error::Error;
use tdg::exit::Exit;
use tdg::partition::{Partition, Partitioned};
use tdg::reference::ImageRef;
use tdg::report::Format;

#[derive(clap::Args)]
pub struct VerifyArgs {
    /// Spec files (`specs/*.yaml`), each verified against the image it names; `-` reads one
    /// from standard input.
    #[arg(required_unless_present = "from_evidence", value_name = "SPEC")]
    specs: Vec<PathBuf>,
    #[command(flatten)]
    target: TargetArgs,
    /// The report: human (a line per check), json (`tdg schema --report`), junit, or github
    /// (annotations and a job summary) [default: github under GitHub Actions, else human].
    #[arg(long, value_enum, value_name = "FORMAT")]
    format: Option<Format>,
    /// Write the report here instead of standard output.
    #[arg(long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Write an auditor's evidence bundle per spec into DIR/<spec>/.
    #[arg(long, value_name = "DIR")]
    evidence: Option<PathBuf>,
    /// Re-check the verdicts recorded in evidence bundles, offline, instead of pulling.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["image", "evidence"])]
    from_evidence: Option<PathBuf>,
    /// Verify only this part of the specs given (slice:K/N or hash:K/N of their paths); merge
    /// the parts' JSON reports with `tdg report merge`.
    #[arg(long, value_name = "SLICE", conflicts_with = "from_evidence")]
    partition: Option<Partition>,
}

#[derive(clap::Args)]
pub struct BlessArgs {
    /// Spec files whose golden trees and reports to write.
    #[arg(required = true, value_name = "SPEC")]
    specs: Vec<PathBuf>,
    #[command(flatten)]
    target: TargetArgs,
}

/// Which image to check instead of the spec's, and which platform of it.
#[derive(clap::Args)]
struct TargetArgs {
    /// Check this image instead of the one each spec names (e.g. a pinned digest).
    #[arg(long, value_name = "REF")]
    image: Option<String>,
    /// Platform to pick from an index, overriding the spec's.
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    platform: Option<String>,
}

impl TargetArgs {
    fn plans(&self, specs: &[PathBuf], repo: Option<&Path>) -> Result<Vec<Plan>> {
        if specs.iter().filter(|p| p.as_os_str() == "-").count() > 1 {
            return Err(Error::usage("`-` (a spec on standard input) can be given once").into());
        }
        let image: Option<ImageRef> = self.image.as_deref().map(str::parse).transpose()?;
        let platform = platform(&self.platform)?;
        specs
            .iter()
            .map(|p| {
                let spec = tdg::spec::load_file(p, repo).map_err(Error::from)?;
                Ok(plan::plan(spec, image.clone(), platform.clone()))
            })
            .collect()
    }
}

pub fn verify(g: &Global, a: &VerifyArgs) -> Result<Exit> {
    let v = match &a.from_evidence {
        Some(dir) => runtime()?.block_on(tdg::run::recheck(&g.env()?, dir))?,
        None => {
            // Every spec is read before anything is fetched: a typo fails at once, in every
            // partition.
            let plans = a.target.plans(&a.specs, g.repo.as_deref())?;
            let total = plans.len();
            let (positions, plans): (Vec<usize>, Vec<Plan>) = plans
                .into_iter()
                .enumerate()
                .filter(|(i, _)| {
                    a.partition
                        .is_none_or(|p| p.keeps(*i, &a.specs[*i].to_string_lossy()))
                })
                .unzip();
            let mut v = runtime()?.block_on(tdg::run::run(
                &g.env()?,
                &plans,
                Mode::from_env(),
                a.evidence.as_deref(),
            ))?;
            for (run, at) in v.runs.iter_mut().zip(positions) {
                run.position = at;
            }
            v.partition = a.partition.map(|p| Partitioned {
                partition: p.to_string(),
                total,
            });
            v
        }
    };
    outcomes::present(&v, a.format, a.output.as_deref(), g.style())
}

pub fn bless(g: &Global, a: &BlessArgs) -> Result<Exit> {
    if Mode::from_env() == Mode::ReadOnly {
        return Err(Error::usage(
            "CI is set: goldens are never written in CI; bless them locally and commit them",
        )
        .into());
    }
    let plans = a.target.plans(&a.specs, g.repo.as_deref())?;
    let env = g.env()?;
    let v = runtime()?.block_on(tdg::run::run(&env, &plans, Mode::Bless, None))?;
    outcomes::present(&v, None, None, g.style())
}
