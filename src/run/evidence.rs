//! An auditor's evidence bundle, and re-checking a verdict from one offline.
//!
//! `tdg verify --evidence DIR` writes, per spec, `DIR/<spec>/`:
//! `image/` (an OCI layout of exactly the documents and layer blobs that were checked, the top
//! one tagged `evidence`), `spec.yaml` as run, `golden.tree` when the spec has one,
//! `report.json`, `tree.txt` (the `tdg tree` listing) and `digests.json` (what was resolved,
//! the spec's sha256 and tdg's version; `signature.pub` for a keyed signature). `tdg verify
//! --from-evidence DIR` runs the bundled spec against the bundled image with no network and
//! fails unless every check comes out as it did and every recorded fact is what the bundle's
//! own bytes give. A bundled spec reads no file outside its bundle.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde_json::json;

use crate::check::{plan, Plan};
use crate::check::{SpecRun, Status};
use crate::digest::Digest;
use crate::oci::layout::LayoutWriter;
use crate::oci::manifest;
use crate::pull::{Env, Pulled};

const TAG: &str = "evidence";
/// The public key a keyed `expect.signature` was judged with, in the bundle.
const KEY: &str = "signature.pub";

fn put_file(p: &Path, bytes: &[u8]) -> Result<()> {
    fs::write(p, bytes).with_context(|| format!("writing {}", p.display()))
}

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

/// Copies a golden into the bundle, when it is a regular file inside the spec's repository
/// and within the size the check reads (`limits::MAX_TEXT_INPUT`): one the check refuses for
/// its size (a sparse file of 1 GiB) is never copied.
fn copy_golden(golden: &Path, repo: &Path, dest: &Path) -> Result<()> {
    if !golden.exists() || crate::located::confine(golden, repo).is_err() {
        return Ok(());
    }
    let Ok(f) = crate::located::open_regular(golden) else {
        return Ok(());
    };
    if f.metadata()?.len() > crate::limits::MAX_TEXT_INPUT {
        return Ok(());
    }
    if let Some(d) = dest.parent() {
        fs::create_dir_all(d)?;
    }
    let mut out = fs::File::create(dest).with_context(|| format!("writing {}", dest.display()))?;
    std::io::copy(
        &mut std::io::Read::take(f, crate::limits::MAX_TEXT_INPUT),
        &mut out,
    )
    .with_context(|| format!("copying {}", golden.display()))?;
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
    if let Some(crate::spec::SignatureExpectation::Key { key, .. }) = &plan.spec.expect.signature {
        // The public key the signature was judged with, read as the check read it.
        let text = crate::located::read_capped(key, 64 << 10)?;
        put_file(&dir.join(KEY), text.as_bytes())?;
    }
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
        crate::report::json(std::slice::from_ref(run), None)?.as_bytes(),
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
/// `sha256-<hex>.sig` and `.att` tags, each layer with its annotations; bundles as referrers),
/// and the trusted root they were
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
    let sig = crate::sign::cosign::signature_tag(&m.subject);
    payloads_under(out, &m.found, &sig)?;
    let att = crate::sign::cosign::attestation_tag(&m.subject);
    payloads_under(out, &m.attestations, &att)
}

/// Payloads as cosign stores them under a tag: one manifest, a layer each, annotations kept.
fn payloads_under(
    out: &mut LayoutWriter,
    found: &[crate::sign::cosign::Found],
    tag: &str,
) -> Result<()> {
    if found.is_empty() {
        return Ok(());
    }
    let mut layers = Vec::new();
    for f in found {
        out.write_blob(&f.payload)?;
        layers.push(serde_json::to_value(&f.layer)?);
    }
    let config = serde_json::to_vec(&json!({
        "architecture": "", "os": "", "config": {},
        "rootfs": {"type": "layers", "diff_ids": found.iter().map(|f| f.layer.digest.to_string()).collect::<Vec<_>>()}
    }))?;
    let (cd, cs) = out.write_blob(&config)?;
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": manifest::OCI_MANIFEST,
        "config": {"mediaType": manifest::OCI_CONFIG, "digest": cd.to_string(), "size": cs},
        "layers": layers,
    }))?;
    out.add_manifest(manifest::OCI_MANIFEST, &manifest, Some(tag))?;
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

/// Re-runs a bundle offline. Returns the new run and what differs from the bundle's record,
/// one line per cause: every fact `digests.json` and `report.json` record is derived again from
/// the bundle's own bytes, and the checks that changed are grouped by what they now say.
pub async fn recheck(env: &Env, bundle: &Path) -> Result<(SpecRun, Vec<String>)> {
    let digests = read_json(bundle, "digests.json", crate::limits::MAX_DOCUMENT)?;
    let recorded = read_json(bundle, "report.json", crate::limits::MAX_REPORT_TEXT)?;
    let field = |k: &str| {
        digests[k]
            .as_str()
            .map(str::to_string)
            .with_context(|| format!("digests.json has no {k}"))
    };
    // Every file the bundled spec names must be the bundle's own: it came from elsewhere, and
    // no error may quote a file outside it.
    let mut spec = crate::spec::load_file_within(&bundle.join("spec.yaml"), bundle)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    if spec.file_digest.to_string() != field("spec_sha256")? {
        bail!(
            "{}: spec.yaml is not the spec the verdict was given for (sha256 differs)",
            bundle.display()
        );
    }
    rebase(&mut spec, bundle);
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
    let (run, pulled) = crate::run::pipeline::run_keeping(&env, &plan).await;
    let mut differs = facts(&run, pulled.as_ref(), &digests, &recorded);
    if pulled.is_none() {
        // Nothing could be derived: say whether the recorded digest is even in the bundle.
        let layout = crate::oci::layout::LayoutSource::open(&bundle.join("image"))?;
        if let Err(e) = layout.top(None, Some(&digest)) {
            differs.push(format!("digests.json digest: {e:#}"));
        }
    }
    if let Some(p) = &pulled {
        let listed = read_text_in(bundle, "tree.txt")?;
        if listed != p.flat.tree.listing() {
            differs.push("tree.txt is not the listing of the bundled image".into());
        }
    }
    differs.extend(outcome_changes(&run, &recorded));
    Ok((run, differs))
}

/// Points the goldens and the signing key of a bundled spec at the copies in the bundle.
fn rebase(spec: &mut crate::spec::Spec, bundle: &Path) {
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
    if let Some(crate::spec::SignatureExpectation::Key { key, .. }) = spec.expect.signature.as_mut()
    {
        *key = bundle.join(KEY);
    }
}

fn read_json(bundle: &Path, name: &str, cap: u64) -> Result<serde_json::Value> {
    let bytes = crate::located::read_bounded(&bundle.join(name), cap)
        .with_context(|| format!("reading {}", bundle.join(name).display()))?;
    serde_json::from_slice(&bytes).with_context(|| format!("{}: not JSON", name))
}

fn read_text_in(bundle: &Path, name: &str) -> Result<String> {
    crate::located::read_capped(&bundle.join(name), crate::limits::MAX_TEXT_INPUT)
}

/// Each recorded fact against what the bundle's bytes give now: one line per fact that
/// differs. Names (the image reference, the source) are claims no byte proves; they must agree
/// wherever the bundle records them, and a reference pinned by digest must name the image.
fn facts(
    run: &SpecRun,
    pulled: Option<&Pulled>,
    digests: &serde_json::Value,
    recorded: &serde_json::Value,
) -> Vec<String> {
    let mut f = Differences::default();
    let report = &recorded["specs"][0];
    f.expect(
        "report.json schema",
        &recorded["schema"],
        json!("tdg.report/v1"),
    );
    f.expect(
        "report.json specs",
        &json!(recorded["specs"].as_array().map(Vec::len)),
        json!(1),
    );
    f.expect("report.json spec", &report["spec"], json!(run.spec));
    f.expect(
        "report.json spec_sha256",
        &report["spec_sha256"],
        json!(run.spec_sha256),
    );
    // What only the image's bytes give: derived when they could be read (when not, the
    // checks' errors say why, and nothing is compared with a fact unknown).
    if let Some(p) = pulled {
        f.image(run, p, digests, report);
    }
    f.expect(
        "report.json exit_code",
        &recorded["exit_code"],
        json!(recorded_exit(report).code()),
    );
    f.names(run, digests, recorded);
    f.0
}

/// Lines saying which recorded facts differ from what the bundle gives.
#[derive(Default)]
struct Differences(Vec<String>);

impl Differences {
    fn expect(&mut self, what: &str, recorded: &serde_json::Value, now: serde_json::Value) {
        if *recorded != now {
            self.0.push(format!(
                "{what}: recorded {recorded}, the bundle gives {now}"
            ));
        }
    }

    /// Digests and platform, each recorded in digests.json and report.json, and the config and
    /// layers the manifest names.
    fn image(
        &mut self,
        run: &SpecRun,
        p: &Pulled,
        digests: &serde_json::Value,
        report: &serde_json::Value,
    ) {
        for (key, now) in [
            ("digest", &run.digest),
            ("manifest_digest", &run.manifest_digest),
            ("platform", &run.platform),
        ] {
            self.expect(&format!("digests.json {key}"), &digests[key], json!(now));
            self.expect(&format!("report.json {key}"), &report[key], json!(now));
        }
        let m = &p.resolved.manifest;
        self.expect(
            "digests.json config_digest",
            &digests["config_digest"],
            json!(m.config.digest.to_string()),
        );
        self.expect(
            "digests.json layers",
            &digests["layers"],
            json!(m
                .layers
                .iter()
                .map(|l| l.digest.to_string())
                .collect::<Vec<_>>()),
        );
    }

    /// Names recorded twice must agree, and a reference pinned by digest must name the image.
    fn names(&mut self, run: &SpecRun, digests: &serde_json::Value, recorded: &serde_json::Value) {
        let report = &recorded["specs"][0];
        for (what, in_digests, in_report) in [
            ("image", &digests["image"], &report["image"]),
            ("source", &digests["source"], &report["source"]),
            (
                "tdg_version",
                &digests["tdg_version"],
                &recorded["tdg_version"],
            ),
        ] {
            if in_digests != in_report {
                self.0.push(format!(
                    "{what}: digests.json records {in_digests}, report.json {in_report}"
                ));
            }
        }
        match digests["image"]
            .as_str()
            .map(str::parse::<crate::reference::ImageRef>)
        {
            Some(Ok(r)) => {
                if let (Some(pinned), Some(d)) = (&r.digest, &run.digest) {
                    if &pinned.to_string() != d {
                        self.0.push(format!(
                            "digests.json image: {r} names {pinned}, the bundle's image is {d}"
                        ));
                    }
                }
            }
            _ => self.0.push(format!(
                "digests.json image: {} is not an image reference",
                digests["image"]
            )),
        }
    }
}

/// The exit the recorded outcomes give, by the same rule as a run's (an unknown status is an
/// error).
fn recorded_exit(report: &serde_json::Value) -> crate::exit::Exit {
    report["outcomes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|o| serde_json::from_value::<Status>(o["status"].clone()).unwrap_or(Status::Error))
        .max()
        .unwrap_or(Status::Pass)
        .exit()
}

/// The checks whose status or message changed, grouped: one line per (recorded status, new
/// status, new message), naming the checks it affects.
fn outcome_changes(run: &SpecRun, recorded: &serde_json::Value) -> Vec<String> {
    let before = recorded["specs"][0]["outcomes"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut groups: Vec<(String, Vec<&str>)> = Vec::new();
    for o in &run.outcomes {
        let was = before.iter().find(|b| b["check"] == o.check.as_str());
        let cause = match was {
            Some(b) if b["status"] == o.status.word() && b["message"] == o.message.as_str() => {
                continue
            }
            Some(b) if b["status"] == o.status.word() => format!(
                "recorded {} ({}), now {} ({})",
                o.status.word(),
                b["message"].as_str().unwrap_or(""),
                o.status.word(),
                o.message
            ),
            Some(b) => format!(
                "recorded {}, now {}{}",
                b["status"].as_str().unwrap_or("?"),
                o.status.word(),
                if o.message.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", o.message)
                }
            ),
            None => "not in the recorded report".to_string(),
        };
        match groups.iter_mut().find(|(c, _)| *c == cause) {
            Some((_, checks)) => checks.push(&o.check),
            None => groups.push((cause, vec![&o.check])),
        }
    }
    let mut out: Vec<String> = groups
        .into_iter()
        .map(|(cause, checks)| {
            let shown = checks
                .iter()
                .take(4)
                .copied()
                .collect::<Vec<_>>()
                .join(", ");
            let more = match checks.len() {
                n if n > 4 => format!(" and {} more", n - 4),
                _ => String::new(),
            };
            let n = checks.len();
            let noun = if n == 1 { "check" } else { "checks" };
            format!("{n} {noun} ({shown}{more}): {cause}")
        })
        .collect();
    if before.len() != run.outcomes.len() {
        out.push(format!(
            "the recorded report has {} checks, the re-check {}",
            before.len(),
            run.outcomes.len()
        ));
    }
    out
}
