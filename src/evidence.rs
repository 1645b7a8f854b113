//! An auditor's evidence bundle, and re-checking a verdict from one offline.
//!
//! `tdg verify --evidence DIR` writes, per spec, `DIR/<spec>/`:
//! `image/` (an OCI layout of exactly the documents and layer blobs that were checked, the top
//! one tagged `evidence`), `spec.yaml` as run, `golden.tree` when the spec has one,
//! `report.json`, `tree.txt` (the `tdg tree` listing) and `digests.json` (what was resolved,
//! the spec's sha256 and tdg's version). `tdg verify --from-evidence DIR` runs the bundled spec
//! against the bundled image with no network and fails unless every check comes out as it did.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde_json::json;

use crate::check::{plan, Plan};
use crate::digest::Digest;
use crate::oci::layout::LayoutWriter;
use crate::oci::manifest;
use crate::pull::{Env, Pulled};
use crate::verify::SpecRun;

const TAG: &str = "evidence";

/// Writes one spec's bundle into `dir` (created; must be empty, and not a symlink). A bundle
/// that cannot be finished (a full disk) is removed rather than left half written.
pub fn write(dir: &Path, plan: &Plan, run: &SpecRun, pulled: &Pulled) -> Result<()> {
    if pulled.warm {
        bail!("evidence needs the layers read in this run; pass --verify-cache");
    }
    if fs::symlink_metadata(dir).is_ok_and(|m| m.file_type().is_symlink()) {
        bail!(
            "{} is a symlink; an evidence bundle goes into a real, empty directory",
            dir.display()
        );
    }
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    if fs::read_dir(dir)?.next().is_some() {
        bail!(
            "{} is not empty; an evidence bundle goes into an empty directory",
            dir.display()
        );
    }
    write_into(dir, plan, run, pulled).map_err(|e| {
        let _ = fs::remove_dir_all(dir);
        e.context(format!(
            "writing the evidence bundle {} (removed, not left partial)",
            dir.display()
        ))
    })
}

/// Copies a golden into the bundle, when it exists and lies inside the spec's repository.
fn copy_golden(golden: &Path, repo: &Path, dest: &Path) -> Result<()> {
    if golden.exists() && crate::located::confine(golden, repo).is_ok() {
        if let Some(d) = dest.parent() {
            fs::create_dir_all(d)?;
        }
        fs::copy(golden, dest).with_context(|| format!("copying {}", golden.display()))?;
    }
    Ok(())
}

fn write_into(dir: &Path, plan: &Plan, run: &SpecRun, pulled: &Pulled) -> Result<()> {
    let r = &pulled.resolved;
    let mut out = LayoutWriter::create(&dir.join("image"))?;
    for l in &pulled.layers {
        let dest = dir
            .join("image/blobs/sha256")
            .join(l.descriptor.digest.hex());
        fs::copy(&l.path, &dest)
            .with_context(|| format!("copying layer {}", l.descriptor.digest))?;
    }
    out.write_blob(&r.raw.config)?;
    out.write_blob(&r.raw.manifest)?;
    let top_type = match manifest::parse(&r.raw.top, None).map_err(anyhow::Error::msg)? {
        manifest::Manifest::Index(_) => manifest::OCI_INDEX,
        manifest::Manifest::Image(_) => manifest::OCI_MANIFEST,
    };
    // The index, when there is one, is kept as fetched: its digest is the one the tag named.
    let top = out.add_manifest(top_type, &r.raw.top, Some(TAG))?;
    if let crate::sign::State::Fetched(m) = &pulled.signatures {
        signatures_into(&mut out, dir, m)?;
    }
    if top.digest != r.digest {
        bail!(
            "evidence: the stored top document hashes to {}, not {}",
            top.digest,
            r.digest
        );
    }
    fs::copy(&plan.spec.path, dir.join("spec.yaml"))
        .with_context(|| format!("copying {}", plan.spec.path.display()))?;
    if let Some(t) = &plan.spec.expect.tree {
        copy_golden(&t.golden, &t.repo, &dir.join("golden.tree"))?;
    }
    for f in &plan.spec.expect.files {
        if let Some(g) = f.report.as_ref().and_then(|r| r.golden.as_ref()) {
            let dest = dir.join("goldens").join(report_golden_name(&f.path));
            copy_golden(&g.file.path, &g.file.repo, &dest)?;
        }
    }
    let put = |name: &str, bytes: &[u8]| {
        let p = dir.join(name);
        fs::write(&p, bytes).with_context(|| format!("writing {}", p.display()))
    };
    put(
        "report.json",
        crate::report::json(std::slice::from_ref(run))?.as_bytes(),
    )?;
    put("tree.txt", pulled.flat.tree.listing().as_bytes())?;
    if let Some(console) = &run.console {
        put("console.log", console.as_bytes())?;
    }
    let digests = json!({
        "image": plan.image.to_string(),
        "digest": r.digest.to_string(),
        "manifest_digest": r.manifest_digest.to_string(),
        "config_digest": r.manifest.config.digest.to_string(),
        "layers": r.manifest.layers.iter().map(|l| l.digest.to_string()).collect::<Vec<_>>(),
        "platform": r.platform.to_string(),
        "source": r.source,
        "spec_sha256": plan.spec.file_digest.to_string(),
        "tdg_version": env!("CARGO_PKG_VERSION"),
    });
    put(
        "digests.json",
        (serde_json::to_string_pretty(&digests)? + "\n").as_bytes(),
    )?;
    Ok(())
}

/// The signatures judged, kept as cosign stores them (their payloads under the subject's
/// `sha256-<hex>.sig` tag, each layer with its annotations), and the trusted root they were
/// judged against, so `--from-evidence` judges them again offline.
fn signatures_into(out: &mut LayoutWriter, dir: &Path, m: &crate::sign::Material) -> Result<()> {
    fs::write(dir.join("trusted_root.json"), &m.root.raw)
        .with_context(|| format!("writing {}", dir.join("trusted_root.json").display()))?;
    if !m.bundles.is_empty() {
        // Referrers, as a registry without the referrers API lists them: an index under the
        // subject's `sha256-<hex>` tag (distribution-spec, "Referrers Tag Schema").
        let mut entries = Vec::new();
        for b in &m.bundles {
            out.write_blob(&b.bundle)?;
            out.write_blob(b"{}")?;
            out.add_manifest(&b.referrer.media_type, &b.manifest, None)?;
            entries.push(serde_json::to_value(&b.referrer)?);
        }
        let index = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": manifest::OCI_INDEX,
            "manifests": entries,
        }))?;
        let tag = format!("sha256-{}", m.subject.hex());
        out.add_manifest(manifest::OCI_INDEX, &index, Some(&tag))?;
    }
    if m.found.is_empty() {
        return Ok(());
    }
    let mut layers = Vec::new();
    for f in &m.found {
        out.write_blob(&f.payload)?;
        layers.push(serde_json::to_value(&f.layer)?);
    }
    let config = serde_json::to_vec(&json!({
        "architecture": "", "os": "", "config": {},
        "rootfs": {"type": "layers", "diff_ids": m.found.iter().map(|f| f.layer.digest.to_string()).collect::<Vec<_>>()}
    }))?;
    let (cd, cs) = out.write_blob(&config)?;
    let sig_manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": manifest::OCI_MANIFEST,
        "config": {"mediaType": manifest::OCI_CONFIG, "digest": cd.to_string(), "size": cs},
        "layers": layers,
    }))?;
    let tag = crate::sign::cosign::signature_tag(&m.subject);
    out.add_manifest(manifest::OCI_MANIFEST, &sig_manifest, Some(&tag))?;
    Ok(())
}

/// Where a report's golden goes in a bundle: named for the report's path in the image.
fn report_golden_name(path: &str) -> String {
    format!("{}.golden", path.replace('/', "_"))
}

/// The bundles under `dir`: `dir` itself, or each subdirectory holding a `digests.json`.
pub fn bundles(dir: &Path) -> Result<Vec<PathBuf>> {
    if dir.join("digests.json").is_file() {
        return Ok(vec![dir.to_path_buf()]);
    }
    let mut out: Vec<PathBuf> = fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("digests.json").is_file())
        .collect();
    out.sort();
    if out.is_empty() {
        bail!(
            "{} holds no evidence bundle (no digests.json)",
            dir.display()
        );
    }
    Ok(out)
}

/// Re-runs a bundle offline. Returns the new run and the checks whose status or message
/// differs from the recorded report.
pub async fn recheck(env: &Env, bundle: &Path) -> Result<(SpecRun, Vec<String>)> {
    let digests: serde_json::Value = serde_json::from_slice(&crate::located::read_bounded(
        &bundle.join("digests.json"),
        crate::limits::MAX_DOCUMENT,
    )?)
    .context("digests.json")?;
    let field = |k: &str| {
        digests[k]
            .as_str()
            .map(str::to_string)
            .with_context(|| format!("digests.json has no {k}"))
    };
    let mut spec =
        crate::spec::load_file(&bundle.join("spec.yaml")).map_err(|e| anyhow::anyhow!("{e}"))?;
    if spec.file_digest.to_string() != field("spec_sha256")? {
        bail!(
            "{}: spec.yaml is not the spec the verdict was given for (sha256 differs)",
            bundle.display()
        );
    }
    if let Some(t) = spec.expect.tree.as_mut() {
        t.golden = bundle.join("golden.tree");
        t.repo = bundle.to_path_buf();
    }
    for f in spec.expect.files.iter_mut() {
        let name = report_golden_name(&f.path);
        if let Some(g) = f.report.as_mut().and_then(|r| r.golden.as_mut()) {
            g.file.path = bundle.join("goldens").join(name);
            g.file.repo = bundle.to_path_buf();
        }
    }
    let digest: Digest = field("digest")?.parse()?;
    let image = format!("oci:{}@{digest}", bundle.join("image").display()).parse()?;
    // The platform the run chose, only when the spec named one: naming it otherwise would add
    // a `platform` check the recorded run never had.
    let platform = match spec.platform {
        Some(_) => Some(field("platform")?.parse()?),
        None => None,
    };
    let plan = plan::plan(spec, Some(image), platform);
    // Signatures are judged against the trusted root the bundle recorded, when it has one.
    let root = bundle.join("trusted_root.json");
    let env = Env {
        verify_cache: true,
        trusted_root: root
            .is_file()
            .then_some(root)
            .or_else(|| env.trusted_root.clone()),
        ..env.clone()
    };
    let run = crate::verify::run(&env, &plan).await;
    let recorded: serde_json::Value = serde_json::from_slice(&crate::located::read_bounded(
        &bundle.join("report.json"),
        crate::limits::MAX_REPORT_TEXT,
    )?)
    .context("report.json")?;
    let before = recorded["specs"][0]["outcomes"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut differs = Vec::new();
    for o in &run.outcomes {
        let was = before.iter().find(|b| b["check"] == o.check.as_str());
        match was {
            Some(b) if b["status"] == o.status.word() && b["message"] == o.message.as_str() => {}
            Some(b) => differs.push(format!(
                "{}: recorded {} ({}), now {} ({})",
                o.check,
                b["status"].as_str().unwrap_or("?"),
                b["message"].as_str().unwrap_or(""),
                o.status.word(),
                o.message
            )),
            None => differs.push(format!("{}: not in the recorded report", o.check)),
        }
    }
    if before.len() != run.outcomes.len() {
        differs.push(format!(
            "the recorded report has {} checks, the re-check {}",
            before.len(),
            run.outcomes.len()
        ));
    }
    Ok((run, differs))
}
