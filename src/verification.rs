//! A verification: planned specs run against their images one after another, evidence
//! written when asked, goldens settled by the mode; or bundles re-checked offline. The one
//! path `tdg verify`, `tdg bless`, `tdg build --verify`, `tdg demo` and `--from-evidence`
//! take, so every one of them reports the same outcomes in every format.

use std::path::Path;

use crate::check::golden::Mode;
use crate::check::Plan;
use crate::error::Result;
use crate::pull::Env;
use crate::verify::{self, SpecRun};

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
    /// 0 every check passed, 1 a check failed, 2 the run could not be evaluated or a
    /// re-checked verdict differs from its evidence.
    pub fn exit_code(&self) -> u8 {
        if self.verdict_differs {
            2
        } else {
            verify::exit_code(&self.runs) as u8
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
        let (run, pulled) = verify::run_keeping(env, plan).await;
        if let (Some(dir), Some(pulled)) = (evidence, &pulled) {
            let bundle = dir.join(&plan.spec.name);
            crate::evidence::write(&bundle, plan, &run, pulled)?;
            notes.push(format!(
                "evidence for {} in {}",
                plan.spec.name,
                bundle.display()
            ));
        }
        runs.push(run);
    }
    notes.extend(verify::settle_goldens(&mut runs, mode)?);
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
    for bundle in crate::evidence::bundles(dir)? {
        let (run, differs) = crate::evidence::recheck(env, &bundle).await?;
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
