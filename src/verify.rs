//! The verify pipeline: plan → endpoint → resolve → fetch layers → flatten → evaluate. Each
//! stage reads what the one before produced. A failure to evaluate becomes `error` outcomes
//! for every check; nothing is ever reported as a pass without being checked.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context as _, Result};
use serde::Serialize;

use crate::check::evaluate::{self, Subject};
use crate::check::{Outcome, Plan, Status, What};
use crate::digest::IntegrityError;
use crate::layers::flatten::{Flattened, Flattener, Spool, Wanted};
use crate::layers::tree::Kind;
use crate::oci::cache::{BlobCache, FetchStats};
use crate::oci::mirror::Mirrors;
use crate::oci::platform::Platform;
use crate::oci::resolve::{self, PlatformChoiceError, Resolved};
use crate::oci::source::{BlobFile, Source};
use crate::reference::ImageRef;

pub struct Env {
    pub mirrors: Mirrors,
    pub cache: Arc<BlobCache>,
    /// Caps on initramfs decompression.
    pub limits: crate::talos::initramfs::Limits,
}

impl Env {
    pub fn new(mirrors: Mirrors, cache: BlobCache) -> Self {
        Env {
            mirrors,
            cache: Arc::new(cache),
            limits: Default::default(),
        }
    }
}

/// What one spec's run found, for every reporter.
#[derive(Debug, Serialize, schemars::JsonSchema)]
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
    /// Why the image could not be evaluated, when it could not.
    #[schemars(required, extend("type" = ["string", "null"]))]
    pub error: Option<String>,
    /// Golden listings for `settle`; not part of the report.
    #[serde(skip)]
    #[schemars(skip)]
    pub goldens: Vec<crate::check::golden::Pending>,
}

impl SpecRun {
    pub fn worst(&self) -> Status {
        self.outcomes
            .iter()
            .map(|o| o.status)
            .max()
            .unwrap_or(Status::Pass)
    }
}

/// An image resolved, pulled and flattened, with the spool its content went to.
pub struct Pulled {
    pub resolved: Resolved,
    pub flat: Flattened,
    pub spool: Spool,
    /// The layer blobs on disk, as fetched (for an evidence bundle).
    pub layers: Vec<BlobFile>,
    _spool_dir: tempfile::TempDir,
}

/// Resolves, fetches and flattens an image, keeping the content of `wanted` paths.
pub async fn pull(
    ctx: &Env,
    image: &ImageRef,
    platform: Option<&Platform>,
    wanted: Wanted,
) -> Result<Pulled> {
    let source = Source::open(&ctx.mirrors.endpoint(image))?;
    let resolved = resolve::resolve(&source, image, platform, &ctx.cache).await?;
    let layers = resolve::fetch_layers(&source, &resolved, &ctx.cache).await?;
    let spool_dir = tempfile::Builder::new()
        .prefix("spool-")
        .tempdir_in(ctx.cache.root().join("tmp"))
        .context("creating a spool directory in the cache")?;
    let spool = Spool::new(spool_dir.path().to_path_buf())?;
    let wanted_paths = match &wanted {
        Wanted::Paths(p) => Some(p.clone()),
        _ => None,
    };
    let mut flat = flatten(ctx, &layers, wanted, &spool)?;
    // A wanted hardlink whose target was not spooled: read again, keeping the targets too.
    if let Some(paths) = wanted_paths {
        let targets: HashSet<String> = paths
            .iter()
            .filter(|p| !flat.content.contains_key(*p))
            .filter_map(|p| {
                flat.tree
                    .get(p)
                    .filter(|e| e.kind == Kind::Hardlink)
                    .and_then(|e| e.link.clone())
            })
            .collect();
        if !targets.is_empty() {
            flat = flatten(
                ctx,
                &layers,
                Wanted::Paths(paths.union(&targets).cloned().collect()),
                &spool,
            )?;
        }
    }
    Ok(Pulled {
        resolved,
        flat,
        spool,
        layers,
        _spool_dir: spool_dir,
    })
}

fn flatten(ctx: &Env, layers: &[BlobFile], wanted: Wanted, spool: &Spool) -> Result<Flattened> {
    let mut f = Flattener::new(wanted, Some(spool));
    for l in layers {
        if let Err(e) = f.apply_blob(&l.path, &l.descriptor, l.verified) {
            // Bad bytes never stay in the cache: the next run fetches them again.
            if l.cached && is_integrity(&e) {
                ctx.cache.evict(&l.descriptor.digest);
            }
            return Err(e);
        }
    }
    Ok(f.finish())
}

pub fn is_integrity(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.is::<IntegrityError>()
            || c.downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
                .is_some_and(|i| i.is::<IntegrityError>())
    })
}

/// Runs one planned spec.
pub async fn run(ctx: &Env, plan: &Plan) -> SpecRun {
    run_keeping(ctx, plan).await.0
}

/// Runs one planned spec and keeps what was pulled, for an evidence bundle.
pub async fn run_keeping(ctx: &Env, plan: &Plan) -> (SpecRun, Option<Pulled>) {
    let start = Instant::now();
    let before = ctx.cache.stats();
    let mut run = SpecRun {
        spec: plan.spec.name.clone(),
        spec_path: plan.spec.path.display().to_string(),
        spec_sha256: plan.spec.file_digest.to_string(),
        image: plan.image.to_string(),
        source: None,
        digest: None,
        manifest_digest: None,
        platform: None,
        outcomes: Vec::new(),
        duration_ms: 0.0,
        fetched: FetchStats::default(),
        error: None,
        goldens: Vec::new(),
    };
    let wanted = Wanted::Paths(plan.content_paths());
    let mut kept = None;
    match pull(ctx, &plan.image, plan.platform.as_ref(), wanted).await {
        Ok(p) => {
            run.source = Some(p.resolved.source.clone());
            run.digest = Some(p.resolved.digest.to_string());
            run.manifest_digest = Some(p.resolved.manifest_digest.to_string());
            run.platform = Some(p.resolved.platform.to_string());
            let goldens = crate::check::golden::pending(plan, &p.flat, &p.spool);
            run.outcomes = evaluate::evaluate(
                plan,
                &Subject {
                    resolved: &p.resolved,
                    flat: &p.flat,
                    spool: &p.spool,
                    limits: ctx.limits,
                    walks: Default::default(),
                    goldens: &goldens,
                },
            );
            run.goldens = goldens;
            kept = Some(p);
        }
        Err(e) => match e.downcast_ref::<PlatformChoiceError>() {
            // The image lacks the platform: that check fails; the rest cannot be evaluated.
            Some(PlatformChoiceError::Missing { digest, .. }) => {
                run.digest = Some(digest.to_string());
                let msg = e.to_string();
                run.outcomes = plan
                    .checks
                    .iter()
                    .map(|c| match &c.what {
                        What::Platform(_) => Outcome::new(&c.id, Status::Fail, msg.clone()),
                        What::Digest(d) if d == digest => Outcome::new(&c.id, Status::Pass, ""),
                        _ => Outcome::new(&c.id, Status::Skipped, format!("not evaluated: {msg}")),
                    })
                    .collect();
            }
            _ => {
                let msg = format!("{e:#}");
                run.outcomes = plan
                    .checks
                    .iter()
                    .map(|c| Outcome::new(&c.id, Status::Error, msg.clone()))
                    .collect();
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
            let golden_check = |c: &str| c == "tree" || c.ends_with("::report::golden");
            for o in run
                .outcomes
                .iter_mut()
                .filter(|o| golden_check(&o.check) && o.status == Status::Fail)
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
