//! The verify pipeline: plan → endpoint → resolve → fetch layers → flatten → evaluate. Each
//! stage reads what the one before produced. A failure to evaluate becomes `error` outcomes
//! for every check; nothing is ever reported as a pass without being checked.

use std::time::Instant;

use anyhow::Result;
use serde::Serialize;

use crate::check::boot::BootState;
use crate::check::{self, Kind, Outcome, Plan, Status, Subject};
use crate::error::ErrorKind;
use crate::layers::flatten::Wanted;
use crate::oci::cache::FetchStats;
use crate::pull::{pull, Env, Pulled};

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
    pub goldens: Vec<crate::check::golden::Pending>,
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

/// The spec's boot under QEMU, when it asks for one and `--no-boot` was not given.
fn booted(ctx: &Env, plan: &Plan, p: &Pulled) -> BootState {
    let Some(b) = &plan.spec.expect.boot else {
        return BootState::NotAsked;
    };
    if !ctx.boot {
        return BootState::Disabled;
    }
    let arch = crate::check::boot::arch(plan.platform.as_ref());
    let file = |path: &str| {
        p.flat
            .tree
            .resolve(path, true)
            .map_err(|e| e.to_string())
            .and_then(|r| p.flat.spooled(&p.spool, &r).map_err(|e| e.to_string()))
            .map_err(|e| format!("nothing to boot at /{path}: {e}"))
    };
    let (kernel, initrd) = match (file(&b.kernel_for(arch)), file(&b.initrd_for(arch))) {
        (Ok(k), Ok(i)) => (k, i),
        (Err(e), _) | (_, Err(e)) => return BootState::Unbootable(e),
    };
    let mut append = crate::boot::default_append(arch);
    if let Some(extra) = &b.append {
        append = format!("{append} {extra}");
    }
    // A zboot kernel (Talos's arm64 vmlinuz) boots through UEFI, as on a node.
    let uefi = match crate::boot::Firmware::Auto.uefi_for(&kernel) {
        Ok(u) => u,
        Err(e) => return BootState::Failed(e.to_string()),
    };
    let opts = crate::boot::Options {
        machine: crate::boot::Machine {
            arch,
            boot: crate::boot::Payload::Kernel {
                kernel,
                initrd: Some(initrd),
                append,
                uefi,
            },
            memory_mib: crate::boot::DEFAULT_MEMORY_MIB,
        },
        timeout: b.timeout,
        until: b.until.clone(),
        console: None,
    };
    // QEMU runs on this thread: the boot blocks, the runtime's other workers go on.
    match tokio::task::block_in_place(|| crate::boot::boot(&opts)) {
        Ok(booted) => BootState::Done(booted),
        Err(e) => BootState::Failed(e.to_string()),
    }
}

/// Runs one planned spec.
pub async fn run(ctx: &Env, plan: &Plan) -> SpecRun {
    run_keeping(ctx, plan).await.0
}

/// Runs one planned spec and keeps what was pulled, for an evidence bundle.
pub async fn run_keeping(ctx: &Env, plan: &Plan) -> (SpecRun, Option<Pulled>) {
    let start = Instant::now();
    let before = ctx.cache.stats();
    let mut run = SpecRun::new(
        &plan.spec.name,
        &plan.spec.path.display().to_string(),
        &plan.spec.file_digest.to_string(),
        &plan.image.to_string(),
    );
    let wanted = Wanted::Paths(plan.content_paths());
    let mut kept = None;
    match pull(ctx, &plan.image, plan.platform.as_ref(), wanted).await {
        Ok(mut p) => {
            run.source = Some(p.resolved.source.clone());
            run.digest = Some(p.resolved.digest.to_string());
            run.manifest_digest = Some(p.resolved.manifest_digest.to_string());
            run.platform = Some(p.resolved.platform.to_string());
            let goldens = crate::check::golden::pending(plan, &p.flat, &p.spool);
            let boot = booted(ctx, plan, &p);
            if plan.spec.expect.signature.is_some() || plan.spec.expect.provenance.is_some() {
                p.signatures = crate::pull::signatures(ctx, &plan.image, &p.resolved.digest).await;
            }
            if let BootState::Done(b) = &boot {
                run.console = Some(b.log.clone());
            }
            run.outcomes = check::evaluate(
                plan,
                &Subject {
                    resolved: &p.resolved,
                    flat: &p.flat,
                    spool: &p.spool,
                    limits: ctx.limits,
                    walks: Default::default(),
                    goldens: &goldens,
                    boot,
                    signatures: &p.signatures,
                },
            );
            run.goldens = goldens;
            kept = Some(p);
        }
        Err(e) => match e.kind() {
            // The image lacks the platform: that check fails; the rest cannot be evaluated.
            ErrorKind::PlatformMissing { digest } => {
                run.digest = Some(digest.to_string());
                run.outcomes = check::without_platform(plan, digest, &e.to_string());
            }
            _ => {
                let msg = format!("{e:#}");
                run.outcomes = check::unevaluated(plan, &msg);
                run.error = Some(msg);
            }
        },
    }
    let after = ctx.cache.stats();
    run.fetched = FetchStats {
        blobs: after.blobs - before.blobs,
        bytes: after.bytes - before.bytes,
    };
    run.duration_ms = start.elapsed().as_secs_f64() * 1e3;
    (run, kept)
}

/// Applies the golden mode to finished runs: writes what it allows and, when blessing, turns
/// the tree checks it just wrote into passes. Returns notes for the user.
pub fn settle_goldens(
    runs: &mut [SpecRun],
    mode: crate::check::golden::Mode,
) -> Result<Vec<String>> {
    let mut notes = Vec::new();
    for run in runs.iter_mut() {
        notes.extend(crate::check::golden::settle(&run.goldens, mode).map_err(anyhow::Error::msg)?);
        if mode == crate::check::golden::Mode::Bless && !run.goldens.is_empty() {
            // A refused golden (outside the repository) was not written and stays failed.
            let refused: Vec<&String> = run
                .goldens
                .iter()
                .filter_map(|g| g.refused.as_ref())
                .collect();
            for o in run
                .outcomes
                .iter_mut()
                .filter(|o| o.kind == Kind::Golden && o.status == Status::Fail)
                .filter(|o| !refused.contains(&&o.message))
            {
                o.status = Status::Pass;
                o.message = "blessed".into();
            }
        }
    }
    Ok(notes)
}

/// The CLI's exit code for a set of runs: 2 if anything could not be evaluated, else 1 if any
/// check failed, else 0.
pub fn exit_code(runs: &[SpecRun]) -> i32 {
    let worst = runs
        .iter()
        .map(SpecRun::worst)
        .max()
        .unwrap_or(Status::Pass);
    match worst {
        Status::Error => 2,
        Status::Fail => 1,
        Status::Skipped => 1,
        Status::Pass => 0,
    }
}
