//! A verification: planned specs run against their images one after another, evidence
//! written when asked, goldens settled by the mode; or bundles re-checked offline. The one
//! path `tdg verify`, `tdg bless`, `tdg build --verify`, `tdg demo` and `--from-evidence`
//! take, so every one of them reports the same outcomes in every format.
//!
//! [`pipeline`] runs one spec (pull, boot, judge); [`evidence`] writes and re-checks bundles.

pub mod evidence;
pub mod pipeline;

use std::path::Path;

use crate::check::golden::Mode;
use crate::check::{Plan, SpecRun};
use crate::error::Result;
use crate::exit::Exit;
use crate::pull::Env;

pub struct Verification {
    pub runs: Vec<SpecRun>,
    /// What was written or found along the way, one line each, for the user.
    pub notes: Vec<String>,
    /// Re-checked evidence came out differently from what it records.
    pub verdict_differs: bool,
    /// Set when the runs are one partition of a larger whole (`--partition`).
    pub partition: Option<crate::partition::Partitioned>,
}

impl Verification {
    /// The runs' exit; a re-checked verdict that differs from its evidence could not be
    /// evaluated.
    pub fn exit(&self) -> Exit {
        if self.verdict_differs {
            Exit::Unevaluated
        } else {
            crate::check::exit(&self.runs)
        }
    }
}

/// Runs each plan; with `evidence`, writes a bundle per spec into `evidence/<spec>/`.
pub async fn run(
    env: &Env,
    plans: &[Plan],
    mode: Mode,
    evidence: Option<&Path>,
) -> Result<Verification> {
    // An auditor's bundle holds the layers, read and hashed in this run: no warm cache.
    let cold;
    let env = match evidence {
        Some(_) if !env.verify_cache => {
            cold = Env {
                verify_cache: true,
                ..env.clone()
            };
            &cold
        }
        _ => env,
    };
    let mut runs = Vec::new();
    let mut notes = Vec::new();
    for plan in plans {
        let (run, pulled) = pipeline::run_keeping(env, plan).await;
        if let (Some(dir), Some(pulled)) = (evidence, &pulled) {
            let bundle = dir.join(&plan.spec.name);
            evidence::write(&bundle, plan, &run, pulled)?;
            notes.push(format!(
                "evidence for {} in {}",
                plan.spec.name,
                bundle.display()
            ));
        }
        runs.push(run);
    }
    notes
        .extend(crate::check::record::settle_goldens(&mut runs, mode).map_err(anyhow::Error::msg)?);
    Ok(Verification {
        partition: None,
        runs,
        notes,
        verdict_differs: false,
    })
}

/// Re-checks every evidence bundle under `dir` offline; goldens are never written there.
pub async fn recheck(env: &Env, dir: &Path) -> Result<Verification> {
    let mut runs = Vec::new();
    let mut notes = Vec::new();
    for bundle in evidence::bundles(dir)? {
        let (run, differs) = evidence::recheck(env, &bundle).await?;
        notes.extend(
            differs
                .into_iter()
                .map(|m| format!("verdict differs: {}: {m}", run.spec)),
        );
        runs.push(run);
    }
    let verdict_differs = !notes.is_empty();
    if !verdict_differs {
        notes.push("the re-checked verdict matches the evidence".into());
    }
    Ok(Verification {
        partition: None,
        runs,
        notes,
        verdict_differs,
    })
}
