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

/// A JSON report without what differs between two runs of the same checks (timings, what the
/// cache already held).
fn steady(report: &[u8]) -> Result<serde_json::Value> {
    let mut v: serde_json::Value = serde_json::from_slice(report).context("not a JSON report")?;
    for run in v["specs"].as_array_mut().context("specs")? {
        let run = run.as_object_mut().context("run")?;
        run.remove("duration_ms");
        run.remove("fetched");
        for o in run["outcomes"].as_array_mut().context("outcomes")? {
            o.as_object_mut().context("outcome")?.remove("duration_ms");
        }
    }
    Ok(v)
}

/// The 30-component fleet audited in 3 partitions (`slice` and `hash`), as a CI matrix would:
/// each part judges its components against the whole fleet's revision, and `tdg report merge`
/// of the parts equals the unpartitioned report, exit code included. A missing or doubled part
/// is an error. `tdg verify --partition` splits specs the same way.
pub fn a_partitioned_audit_merges_into_the_whole() -> Result<()> {
    let reg = Registry::start(None)?;
    let tmp = tempfile::tempdir()?;
    let r = &reg.addr;
    let text = fleet_of(r, tmp.path())?;
    // c00 carries a spec its image fails, so a part holds a spec finding too.
    std::fs::write(
        tmp.path().join("c00.yaml"),
        format!("apiVersion: tdg/v1\nname: c00\nimage: {r}/release/c00:v1.0.0\nexpect:\n  files:\n    - path: etc/missing\n"),
    )?;
    let text = text.replacen(
        &format!("  - image: {r}/release/c00\n"),
        &format!("  - image: {r}/release/c00\n    spec: c00.yaml\n"),
        1,
    );
    let file = tmp.path().join("fleet.yaml");
    std::fs::write(&file, text)?;
    let f = file.display().to_string();
    let tdg = Tdg::new()?;
    let whole = tdg.run(["audit", "--fleet", &f, "--format", "json"])?;
    ensure!(
        whole.status.code() == Some(1),
        "{}",
        super::cli::text(&whole)
    );
    let whole_human = expect_exit(&tdg.run(["audit", "--fleet", &f])?, 1)?;
    for how in ["slice", "hash"] {
        let mut parts = Vec::new();
        for k in 1..=3 {
            let part = tmp.path().join(format!("{how}-{k}.json"));
            let p = format!("{how}:{k}/3");
            let o = tdg.run([
                "audit",
                "--fleet",
                &f,
                "--partition",
                &p,
                "--format",
                "json",
                "--output",
                part.to_str().context("utf-8")?,
            ])?;
            ensure!(
                matches!(o.status.code(), Some(0 | 1)),
                "{p}: {}",
                super::cli::text(&o)
            );
            parts.push(part.display().to_string());
        }
        let mut merge = vec!["report", "merge", "--format", "json"];
        merge.extend(parts.iter().map(String::as_str));
        let merged = tdg.run(&merge)?;
        ensure!(
            merged.status.code() == Some(1),
            "{}",
            super::cli::text(&merged)
        );
        ensure!(
            steady(&merged.stdout)? == steady(&whole.stdout)?,
            "{how}: the merged report differs from the whole:\n{}",
            String::from_utf8_lossy(&merged.stdout)
        );
        // The human verdict of the merge reads as the whole's (the fleet's notes aside).
        merge[3] = "human";
        let human = expect_exit(&tdg.run(&merge)?, 1)?;
        let tail = |s: &str| {
            s.lines()
                .find(|l| l.contains(" passed, "))
                .map(str::to_string)
        };
        ensure!(tail(&human) == tail(&whole_human), "{human}");
        ensure!(human.contains("drifted:") && human.contains("spec::c00::files::etc/missing"));
    }
    // The drifted c28 is in slice 2 (28 % 3 == 1): judged against the whole fleet's majority.
    let two = expect_exit(
        &tdg.run(["audit", "--fleet", &f, "--partition", "slice:2/3"])?,
        1,
    )?;
    ensure!(
        two.contains(&format!("the majority is at revision {GOOD}"))
            && two.contains("drifted:")
            && !two.contains("c00"),
        "{two}"
    );
    // A part missing, or given twice: an error, never a smaller pass.
    let missing = expect_exit(
        &tdg.run([
            "report",
            "merge",
            &tmp.path().join("slice-1.json").display().to_string(),
        ])?,
        2,
    )?;
    ensure!(missing.contains("a partition is missing"), "{missing}");
    let s1 = tmp.path().join("slice-1.json").display().to_string();
    let twice = expect_exit(&tdg.run(["report", "merge", &s1, &s1])?, 2)?;
    ensure!(twice.contains("a partition given twice"), "{twice}");
    let bad = expect_exit(
        &tdg.run(["audit", "--fleet", &f, "--partition", "slice:4/3"])?,
        2,
    )?;
    ensure!(bad.contains("use slice:K/N or hash:K/N"), "{bad}");

    // verify: three specs in two slices merge into the three-spec report.
    let mut specs = Vec::new();
    for (i, want) in ["etc/release", "etc/missing", "etc/release"]
        .iter()
        .enumerate()
    {
        let spec = tmp.path().join(format!("v{i}.yaml"));
        std::fs::write(
            &spec,
            format!("apiVersion: tdg/v1\nname: v{i}\nimage: {r}/release/c{i:02}:v1.0.0\nexpect:\n  files:\n    - path: {want}\n"),
        )?;
        specs.push(spec.display().to_string());
    }
    let mut all = vec!["verify", "--format", "json"];
    all.extend(specs.iter().map(String::as_str));
    let whole = tdg.run(&all)?;
    let mut parts = vec![
        "report".to_string(),
        "merge".into(),
        "--format".into(),
        "json".into(),
    ];
    for k in 1..=2 {
        let part = tmp
            .path()
            .join(format!("verify-{k}.json"))
            .display()
            .to_string();
        let mut args = all.clone();
        let p = format!("slice:{k}/2");
        args.extend(["--partition", &p, "--output", &part]);
        tdg.run(&args)?;
        parts.push(part);
    }
    let merged = tdg.run(&parts)?;
    ensure!(
        merged.status.code() == Some(1) && steady(&merged.stdout)? == steady(&whole.stdout)?,
        "{}",
        super::cli::text(&merged)
    );
    Ok(())
}
