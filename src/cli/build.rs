//! `tdg build` and `tdg verify-served`.

use std::path::PathBuf;

use anyhow::Result;

use super::{outcomes, runtime, Global};
use tdg::build::{Options, Output, PushTarget};
use tdg::check::golden::Mode;
use tdg::check::plan;
use tdg::error::Error;
use tdg::reference::{ImageRef, Location};
use tdg::report::Format;

#[derive(clap::Args)]
pub struct BuildArgs {
    #[arg(required = true, value_name = "SPEC")]
    specs: Vec<PathBuf>,
    /// Write the image to an OCI layout (created, or added to).
    #[arg(long, value_name = "oci:DIR[:TAG]")]
    output: Option<String>,
    /// Push to the spec's build.push, or to REF.
    #[arg(long, value_name = "REF", num_args = 0..=1, default_missing_value = "")]
    push: Option<String>,
    /// Also write the assets and a matchbox profile and group here.
    #[arg(long, value_name = "DIR")]
    matchbox: Option<PathBuf>,
    /// After building, verify the result against the same spec.
    #[arg(long)]
    verify: bool,
    /// Set a label, over the spec's (e.g. org.opencontainers.image.revision=$GITHUB_SHA).
    #[arg(long = "label", value_name = "KEY=VALUE")]
    labels: Vec<String>,
    /// Set a build-report fact, over the spec's.
    #[arg(long = "report", value_name = "KEY=VALUE")]
    report_facts: Vec<String>,
    /// human: stages on stderr, the verify report on stdout; json: a document per spec on
    /// stdout (with `verify`, its report under "verify").
    #[arg(long, value_enum, default_value = "human")]
    format: BuildFormat,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum BuildFormat {
    Human,
    Json,
}

#[derive(clap::Args)]
pub struct ServedArgs {
    /// Base URL the assets are served under, e.g. http://bastion:8080/assets
    url: String,
    #[arg(long, value_name = "FILE")]
    checksums: PathBuf,
}

impl BuildArgs {
    fn options(&self) -> Result<Options> {
        let output = match &self.output {
            Some(o) => match o.parse::<ImageRef>()? {
                ImageRef {
                    location: Location::Layout { dir },
                    tag,
                    ..
                } => Some(Output { dir, tag }),
                _ => {
                    return Err(
                        Error::usage(format!("--output takes oci:DIR[:TAG], not {o}")).into(),
                    )
                }
            },
            None => None,
        };
        let push = match self.push.as_deref() {
            None => None,
            Some("") => Some(PushTarget::SpecDefault),
            Some(r) => Some(PushTarget::To(r.parse()?)),
        };
        Ok(Options {
            output,
            push,
            matchbox: self.matchbox.clone(),
            epoch: tdg::epoch::source_date_epoch()?,
        })
    }
}

pub fn build(g: &Global, a: &BuildArgs) -> Result<u8> {
    let opts = a.options()?;
    let (labels, facts) = (pairs(&a.labels)?, pairs(&a.report_facts)?);
    let env = g.env()?;
    let rt = runtime()?;
    // Built images stay alive (a temporary layout with them) until they are verified.
    let mut built = Vec::new();
    let mut plans = Vec::new();
    for path in &a.specs {
        let mut spec = tdg::spec::load_file(path).map_err(Error::from)?;
        if let Some(b) = spec.build.as_mut() {
            b.labels.extend(labels.iter().cloned());
            b.report.extend(facts.iter().cloned());
        }
        let b = rt.block_on(tdg::build::build(&env, &spec, &opts))?;
        if a.format == BuildFormat::Human {
            eprint!("{}", tdg::build::human(&b));
        }
        if a.verify {
            plans.push(plan::plan(spec, Some(b.image()?), None));
        }
        built.push(b);
    }
    let v = match a.verify {
        true => Some(rt.block_on(tdg::verification::run(&env, &plans, Mode::from_env(), None))?),
        false => None,
    };
    match (a.format, &v) {
        (BuildFormat::Human, Some(v)) => outcomes::present(v, Format::Human, None),
        (BuildFormat::Human, None) => Ok(0),
        (BuildFormat::Json, _) => {
            // One document per spec, as without --verify, each with its own verify report.
            for (i, b) in built.iter().enumerate() {
                let mut doc = serde_json::to_value(b)?;
                if let Some(run) = v.as_ref().and_then(|v| v.runs.get(i)) {
                    let report = tdg::report::json(std::slice::from_ref(run))?;
                    doc["verify"] = serde_json::from_str(&report)?;
                }
                println!("{}", serde_json::to_string_pretty(&doc)?);
            }
            if let Some(v) = &v {
                for note in &v.notes {
                    eprintln!("tdg: {note}");
                }
            }
            Ok(v.map_or(0, |v| v.exit_code()))
        }
    }
}

/// `KEY=VALUE` arguments.
fn pairs(args: &[String]) -> Result<Vec<(String, String)>> {
    args.iter()
        .map(|a| match a.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() && !v.contains('\n') => {
                Ok((k.trim().to_string(), v.to_string()))
            }
            _ => Err(Error::usage(format!("'{a}' is not KEY=VALUE")).into()),
        })
        .collect()
}

pub fn served(a: &ServedArgs) -> Result<u8> {
    let text = tdg::located::read_capped(&a.checksums, tdg::limits::MAX_REPORT_TEXT)?;
    let report = runtime()?.block_on(tdg::build::served::verify(&a.url, &text))?;
    print!("{}", report.human());
    Ok(report.exit_code() as u8)
}
