//! `tdg build` and `tdg verify-served`.

use std::path::PathBuf;

use anyhow::Result;

use super::{outcomes, runtime, Global};
use tdg::build::{Options, Output, PushTarget};
use tdg::check::golden::Mode;
use tdg::check::plan;
use tdg::error::Error;
use tdg::exit::Exit;
use tdg::reference::{ImageRef, Location};

#[derive(clap::Args)]
pub struct BuildArgs {
    /// Spec files with a `build:` section; each image is built and verified against its spec.
    #[arg(required = true, value_name = "SPEC")]
    specs: Vec<PathBuf>,
    /// Write the image to an OCI layout (created, or added to).
    #[arg(long, value_name = "oci:DIR[:TAG]")]
    output: Option<String>,
    /// Push to the spec's build.push, or to REF, once the built image passed its spec (every
    /// spec given: all are pushed, or none).
    #[arg(long, value_name = "REF", num_args = 0..=1, default_missing_value = "")]
    push: Option<String>,
    /// Also write the assets and a matchbox profile and group here.
    #[arg(long, value_name = "DIR")]
    matchbox: Option<PathBuf>,
    /// Verify the result against the same spec (always done before a push).
    #[arg(long, conflicts_with = "no_verify")]
    verify: bool,
    /// Push without verifying first: only for a moving tag, never a release tag.
    #[arg(long, requires = "push")]
    no_verify: bool,
    /// Set a label, over the spec's (e.g. org.opencontainers.image.revision=$GITHUB_SHA).
    #[arg(long = "label", value_name = "KEY=VALUE")]
    labels: Vec<String>,
    /// Set a build-report fact, over the spec's.
    #[arg(long = "report", value_name = "KEY=VALUE")]
    report_facts: Vec<String>,
    /// human: stages on stderr, the verify report on stdout; json: a document per spec on
    /// stdout (its verify report under "verify", "pushed" the pushed reference or null, and
    /// "not_pushed" why not).
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
    /// The checksums file (`sha256sum` format) listing the assets to fetch and check.
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
            no_verify: self.no_verify,
            matchbox: self.matchbox.clone(),
            epoch: tdg::epoch::source_date_epoch()?,
        })
    }
}

pub fn build(g: &Global, a: &BuildArgs) -> Result<Exit> {
    let opts = a.options()?;
    let (labels, facts) = (pairs(&a.labels)?, pairs(&a.report_facts)?);
    let env = g.env()?;
    let rt = runtime()?;
    let human = a.format == BuildFormat::Human;
    // The spec gates every push: verified unless the user said --no-verify (moving tags only).
    let verify = a.verify || (opts.push.is_some() && !a.no_verify);
    // Built images stay alive (a temporary layout with them) until they are verified and pushed.
    let mut built = Vec::new();
    let mut plans = Vec::new();
    let mut notes = Vec::new();
    for path in &a.specs {
        let mut spec = tdg::spec::load_file(path, g.repo.as_deref()).map_err(Error::from)?;
        if let Some(b) = spec.build.as_mut() {
            b.labels.extend(labels.iter().cloned());
            b.report.extend(facts.iter().cloned());
        }
        let b = rt.block_on(tdg::build::build(&env, &spec, &opts))?;
        if human {
            eprint!("{}", tdg::build::human(&b));
        }
        if verify {
            let (p, note) = plan::before_publishing(spec, b.image()?);
            notes.extend(note);
            plans.push(p);
        }
        built.push(b);
    }
    // Never bless while deciding a push: a golden that differs fails the gate.
    let mode = match (Mode::from_env(), opts.push.is_some()) {
        (Mode::Bless, true) => Mode::Review,
        (m, _) => m,
    };
    let mut v = match verify {
        true => Some(rt.block_on(tdg::run::run(&env, &plans, mode, None))?),
        false => None,
    };
    if let Some(v) = v.as_mut() {
        v.notes.extend(notes);
    }
    let code = v
        .as_ref()
        .map_or(Exit::Passed, tdg::run::Verification::exit);
    if opts.push.is_some() {
        if code == Exit::Passed {
            for b in &mut built {
                let before = b.stages.len();
                rt.block_on(tdg::build::publish(&env, b))?;
                if human {
                    for st in &b.stages[before..] {
                        eprint!("{}", tdg::build::human_stage(st));
                    }
                }
            }
        } else {
            let why =
                "the built image did not pass its spec: nothing pushed, the registry untouched";
            for b in &mut built {
                b.not_pushed = Some(why.into());
            }
            if let Some(v) = v.as_mut() {
                v.notes.push(why.into());
            }
        }
    }
    match (a.format, &v) {
        (BuildFormat::Human, Some(v)) => {
            for b in built.iter().filter_map(|b| b.pushed.as_ref()) {
                eprintln!("tdg: pushed {b}");
            }
            outcomes::present(v, None, None, g.style())
        }
        (BuildFormat::Human, None) => {
            for b in built.iter().filter_map(|b| b.pushed.as_ref()) {
                eprintln!("tdg: pushed {b} (unverified: --no-verify)");
            }
            Ok(Exit::Passed)
        }
        (BuildFormat::Json, _) => {
            // One document per spec, each with its own verify report.
            for (i, b) in built.iter().enumerate() {
                let mut doc = serde_json::to_value(b)?;
                if let Some(run) = v.as_ref().and_then(|v| v.runs.get(i)) {
                    let report = tdg::report::json(std::slice::from_ref(run), None)?;
                    doc["verify"] = serde_json::from_str(&report)?;
                }
                super::stdout::println(serde_json::to_string_pretty(&doc)?)?;
            }
            if let Some(v) = &v {
                for note in &v.notes {
                    eprintln!("tdg: {note}");
                }
            }
            Ok(code)
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

pub fn served(a: &ServedArgs) -> Result<Exit> {
    let text = tdg::located::read_capped(&a.checksums, tdg::limits::MAX_REPORT_TEXT)?;
    let report = runtime()?.block_on(tdg::build::served::verify(&a.url, &text))?;
    super::stdout::print(&report.human())?;
    Ok(report.exit())
}
