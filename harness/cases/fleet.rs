//! `tdg audit --fleet` over 30 repositories of one release in a real registry: one drifted and
//! one missing are found and named, the 28 others pass; a component whose spec fails is a
//! finding; a registry that never answers makes its component an error in bounded time.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::TcpListener;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};

use tdg::oci::image::{Flavor, TarEntry as E};
use tdg::oci::manifest::Compression;

use super::cli::{expect_exit, Tdg};
use crate::fixtures;
use crate::registry::Registry;

const GOOD: &str = "0123456789abcdef0123456789abcdef01234567";
const DRIFT: &str = "fedcba9876543210fedcba9876543210fedcba98";

/// A small image carrying `revision` in its revision label, as a layout under `dir`.
fn image(dir: &Path, revision: &str) -> Result<()> {
    let labels = BTreeMap::from([(
        "org.opencontainers.image.revision".to_string(),
        revision.to_string(),
    )]);
    fixtures::layout_image(
        dir,
        "t",
        &[(
            vec![
                E::dir("etc", 0o755),
                E::file("etc/release", revision, 0o644),
            ],
            Compression::Gzip,
        )],
        "linux/arm64",
        &labels,
        Flavor::Oci,
    )?;
    Ok(())
}

/// Pushes the 30 components: c00..c27 at the good revision, c28 drifted, c29 without v1.0.0.
pub fn fleet_of(reg: &str, work: &Path) -> Result<String> {
    let (good, drift) = (work.join("good"), work.join("drift"));
    image(&good, GOOD)?;
    image(&drift, DRIFT)?;
    let mut fleet = String::from(
        "apiVersion: tdg/v1\nkind: Fleet\nname: cozystack-talos\ntag: v1.0.0\ncomponents:\n",
    );
    for i in 0..30 {
        let (layout, tag) = match i {
            28 => (&drift, "v1.0.0"),
            29 => (&good, "v0.9.0"),
            _ => (&good, "v1.0.0"),
        };
        let repo = format!("{reg}/release/c{i:02}");
        fixtures::push_with_tdg(layout, "t", &format!("{repo}:{tag}"))?;
        writeln!(fleet, "  - image: {repo}")?;
    }
    Ok(fleet)
}

pub fn fleet_audit_names_drift_and_missing_tags() -> Result<()> {
    let reg = Registry::start(None)?;
    let tmp = tempfile::tempdir()?;
    let r = &reg.addr;
    let mut text = fleet_of(r, tmp.path())?;
    let file = tmp.path().join("fleet.yaml");
    std::fs::write(&file, &text)?;
    let tdg = Tdg::new()?;
    let f = file.display().to_string();
    let out = expect_exit(&tdg.run(["audit", "--fleet", &f])?, 1)?;
    ensure!(
        out.contains(&format!("the majority is at revision {GOOD}"))
            && out.contains("28 of 30 components consistent")
            && out.contains(&format!(
                "drifted: {r}/release/c28:v1.0.0 is at revision {DRIFT}"
            ))
            && out.contains(&format!("{r}/release/c29:v1.0.0: the tag is missing")),
        "{out}"
    );
    // JSON, as verify writes it: one run per component, the drift a failed check.
    let json = tdg.run(["audit", "--fleet", &f, "--format", "json"])?;
    let v: serde_json::Value = serde_json::from_slice(&json.stdout)?;
    let runs = v["specs"].as_array().context("specs")?;
    ensure!(runs.len() == 30 && v["exit_code"] == 1, "{v}");
    let failed: Vec<&str> = runs
        .iter()
        .filter(|s| {
            s["outcomes"]
                .as_array()
                .is_some_and(|o| o.iter().any(|o| o["status"] != "pass"))
        })
        .filter_map(|s| s["image"].as_str())
        .collect();
    ensure!(
        failed
            == [
                format!("{r}/release/c28:v1.0.0"),
                format!("{r}/release/c29:v1.0.0")
            ],
        "{failed:?}"
    );
    // Two components split evenly: no majority, and both are findings.
    let tie = tmp.path().join("tie.yaml");
    std::fs::write(
        &tie,
        format!("apiVersion: tdg/v1\nkind: Fleet\nname: tie\ntag: v1.0.0\ncomponents:\n  - image: {r}/release/c00\n  - image: {r}/release/c28\n"),
    )?;
    let split = expect_exit(
        &tdg.run(["audit", "--fleet", tie.to_str().context("utf-8")?])?,
        1,
    )?;
    ensure!(
        split.contains("no revision has a majority")
            && split.contains("0 of 2 components consistent"),
        "{split}"
    );
    // Held to the drifted revision, the 28 drift instead.
    let held = expect_exit(&tdg.run(["audit", "--fleet", &f, "--revision", DRIFT])?, 1)?;
    ensure!(held.contains("1 of 30 components consistent"), "{held}");
    // The release tag given on the command line: v0.9.0 exists only on c29.
    let other = expect_exit(&tdg.run(["audit", "--fleet", &f, "--tag", "v0.9.0"])?, 1)?;
    ensure!(other.contains("1 of 30 components consistent"), "{other}");
    // A component with a spec its image fails is a finding.
    let spec = tmp.path().join("c00.yaml");
    std::fs::write(
        &spec,
        format!("apiVersion: tdg/v1\nname: c00\nimage: {r}/release/c00:v1.0.0\nexpect:\n  files:\n    - path: etc/missing\n"),
    )?;
    let gated = text.replacen(
        &format!("  - image: {r}/release/c00\n"),
        &format!("  - image: {r}/release/c00\n    spec: c00.yaml\n"),
        1,
    );
    std::fs::write(&file, &gated)?;
    let failing = expect_exit(&tdg.run(["audit", "--fleet", &f])?, 1)?;
    ensure!(
        failing.contains("spec::c00::files::etc/missing") && failing.contains("27 of 30"),
        "{failing}"
    );
    // A registry that accepts connections and never answers: that component is an error, the
    // others are still judged, and the audit ends in bounded time.
    let stall = TcpListener::bind("127.0.0.1:0")?;
    let stalled = format!("{}/release/stalled", stall.local_addr()?);
    writeln!(text, "  - image: {stalled}")?;
    std::fs::write(&file, &text)?;
    let start = Instant::now();
    let out = expect_exit(&tdg.run(["audit", "--fleet", &f, "--timeout", "2s"])?, 2)?;
    ensure!(
        start.elapsed() < Duration::from_secs(30),
        "the audit took {:?}",
        start.elapsed()
    );
    ensure!(
        out.contains("no answer within 2s")
            && out.contains(&stalled)
            && out.contains("28 of 31 components consistent")
            && out.contains("drifted:"),
        "{out}"
    );
    drop(stall);
    // A malformed fleet file names file:line:col and fetches nothing.
    std::fs::write(
        &file,
        "apiVersion: tdg/v1\nkind: Fleet\nname: x\ncomponent: []\n",
    )?;
    let bad = expect_exit(&tdg.run(["audit", "--fleet", &f])?, 2)?;
    ensure!(bad.contains(&format!("{f}:4:1")), "{bad}");
    Ok(())
}

/// The project's own fleet file, as the audit workflow runs it, against the published variants
/// as the world built them: both tags present, both specs passing, one revision.
pub fn the_projects_fleet_file_audits_the_published_variants() -> Result<()> {
    let w = crate::world::world()?;
    let file = crate::world::repo_root().join("fleet.yaml");
    let mirror = format!("ghcr.io=http://{}", w.registry.addr);
    let out = Tdg::new()?.run([
        "audit".as_ref(),
        "--fleet".as_ref(),
        file.as_os_str(),
        "--mirror".as_ref(),
        mirror.as_ref(),
    ])?;
    let text = expect_exit(&out, 0)?;
    ensure!(
        text.contains("2 of 2 components consistent") && text.contains("spec::"),
        "{text}"
    );
    Ok(())
}
