//! The verify pipeline: plan → endpoint → resolve → fetch layers → flatten → evaluate. Each
//! stage reads what the one before produced. A failure to evaluate becomes `error` outcomes
//! for every check; nothing is ever reported as a pass without being checked.

use std::time::Instant;

use crate::check::boot::Request;
use crate::check::subject::BootState;
use crate::check::{self, Plan, SpecRun, Subject};
use crate::error::ErrorKind;
use crate::layers::flatten::Wanted;
use crate::oci::cache::FetchStats;
use crate::pull::{pull, Env, Pulled};

/// The boot a check asked for, unless `--no-boot` was given.
fn booted(ctx: &Env, request: Option<&Request>, p: &Pulled) -> BootState {
    let Some(b) = request else {
        return BootState::NotAsked;
    };
    if !ctx.boot {
        return BootState::Disabled;
    }
    let arch = b.arch;
    let file = |path: &str| {
        p.flat
            .tree
            .resolve(path, true)
            .map_err(|e| e.to_string())
            .and_then(|r| p.flat.spooled(&p.spool, &r).map_err(|e| e.to_string()))
            .map_err(|e| format!("nothing to boot at /{path}: {e}"))
    };
    let (kernel, initrd) = match (file(&b.kernel), file(&b.initrd)) {
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
    let needs = plan.needs();
    let wanted = Wanted::Paths(needs.paths.into_iter().collect());
    let mut kept = None;
    match pull(ctx, &plan.image, plan.platform.as_ref(), wanted).await {
        Ok(mut p) => {
            run.source = Some(p.resolved.source.clone());
            run.digest = Some(p.resolved.digest.to_string());
            run.manifest_digest = Some(p.resolved.manifest_digest.to_string());
            run.platform = Some(p.resolved.platform.to_string());
            let goldens = crate::check::golden::pending(&plan.spec, &p.flat, &p.spool);
            let boot = booted(ctx, needs.boot.as_ref(), &p);
            if needs.referrers {
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
