//! Evidence proves itself: `--from-evidence` derives every fact a bundle records from the
//! bundle's own bytes and names each forged one; a bundled spec reads no file outside its
//! bundle (nor a fleet's spec outside its repository), so no error quotes one; and one bad
//! blob is one line of differences, not one per check.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{ensure, Context, Result};

use super::cli::{expect_exit, Tdg};

/// A passing bundle of the demo image, written offline: `(bundle, spec)`.
fn bundle(tmp: &Path) -> Result<PathBuf> {
    let tdg = Tdg::new()?;
    let demo = tmp.join("demo");
    expect_exit(&tdg.run(["demo".as_ref(), demo.as_os_str()])?, 0)?;
    let evidence = tmp.join("evidence");
    expect_exit(
        &tdg.run([
            "verify".as_ref(),
            demo.join("spec.yaml").as_os_str(),
            "--evidence".as_ref(),
            evidence.as_os_str(),
        ])?,
        0,
    )?;
    Ok(evidence.join("demo-spin-only-arm64"))
}

fn recheck(bundle: &Path) -> Result<std::process::Output> {
    Tdg::new()?.run([
        "verify".as_ref(),
        "--from-evidence".as_ref(),
        bundle.as_os_str(),
    ])
}

fn edit_json(path: &Path, pointer: &str, value: serde_json::Value) -> Result<()> {
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(path)?)?;
    *v.pointer_mut(pointer)
        .with_context(|| format!("{} has no {pointer}", path.display()))? = value;
    std::fs::write(path, serde_json::to_vec_pretty(&v)?)?;
    Ok(())
}

fn copy(from: &Path, to: &Path) -> Result<()> {
    crate::fixtures::run(Command::new("cp").arg("-a").arg(from).arg(to))
}

/// Each field of `digests.json` and `report.json` forged alone: the re-check exits 2 and names
/// it. The untouched bundle matches.
pub fn each_forged_evidence_field_is_named() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let good = bundle(tmp.path())?;
    let out = recheck(&good)?;
    let t = expect_exit(&out, 0)?;
    ensure!(t.contains("matches the evidence"), "{t}");
    let other = format!("sha256:{}", "ab".repeat(32));
    let forged: [(&str, &str, serde_json::Value, &str); 12] = [
        (
            "digests.json",
            "/image",
            "ghcr.io/evil/x:v1".into(),
            "image",
        ),
        (
            "digests.json",
            "/manifest_digest",
            other.clone().into(),
            "manifest_digest",
        ),
        (
            "digests.json",
            "/config_digest",
            other.clone().into(),
            "config_digest",
        ),
        ("digests.json", "/layers/0", other.clone().into(), "layers"),
        ("digests.json", "/source", "ghcr.io/evil/x".into(), "source"),
        (
            "digests.json",
            "/tdg_version",
            "9.9.9".into(),
            "tdg_version",
        ),
        (
            "digests.json",
            "/platform",
            "linux/amd64".into(),
            "platform",
        ),
        ("report.json", "/exit_code", 1.into(), "exit_code"),
        (
            "report.json",
            "/specs/0/image",
            "ghcr.io/evil/x:v1".into(),
            "image",
        ),
        (
            "report.json",
            "/specs/0/digest",
            other.clone().into(),
            "report.json digest",
        ),
        (
            "report.json",
            "/specs/0/platform",
            "linux/amd64".into(),
            "report.json platform",
        ),
        (
            "report.json",
            "/specs/0/manifest_digest",
            other.into(),
            "report.json manifest_digest",
        ),
    ];
    for (i, (file, pointer, value, named)) in forged.into_iter().enumerate() {
        let b = tmp.path().join(format!("forged-{i}"));
        copy(&good, &b)?;
        edit_json(&b.join(file), pointer, value)?;
        let t = expect_exit(&recheck(&b)?, 2).with_context(|| format!("{file}{pointer}"))?;
        ensure!(
            t.contains("verdict differs") && t.contains(named),
            "{file}{pointer} forged, not named ({named}):\n{t}"
        );
        ensure!(!t.contains("matches the evidence"), "{file}{pointer}: {t}");
    }
    Ok(())
}

/// A hostile bundle's spec naming a file outside the bundle as its schematic (with
/// `spec_sha256` forged to match): refused, and not a line of that file is printed. A fleet
/// naming a spec outside its repository: the same.
pub fn a_bundled_or_fleet_spec_quotes_no_outside_file() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let good = bundle(tmp.path())?;
    let secret = tmp.path().join("secret");
    std::fs::write(&secret, "SECRET-7f3a: do not print\nroot:$6$x:1:0:::\n")?;
    let b = tmp.path().join("hostile");
    copy(&good, &b)?;
    let spec = std::fs::read_to_string(b.join("spec.yaml"))?;
    let hostile = format!(
        "{spec}build:\n  arch: arm64\n  source:\n    factory:\n      schematic: {}\n",
        secret.display()
    );
    std::fs::write(b.join("spec.yaml"), &hostile)?;
    let sha = tdg::digest::Digest::of(hostile.as_bytes()).to_string();
    edit_json(&b.join("digests.json"), "/spec_sha256", sha.into())?;
    let out = recheck(&b)?;
    let t = super::cli::text(&out);
    ensure!(out.status.code() == Some(2), "{t}");
    ensure!(
        !t.contains("SECRET-7f3a") && !t.contains("root:$6$"),
        "quoted it:\n{t}"
    );
    ensure!(t.contains("outside"), "{t}");

    // A fleet whose component's spec is that file.
    let repo = tmp.path().join("repo");
    std::fs::create_dir_all(&repo)?;
    std::fs::write(
        repo.join("fleet.yaml"),
        format!(
            "apiVersion: tdg/v1\nkind: Fleet\nname: f\ntag: v1\ncomponents:\n  - image: ghcr.io/x/y\n    spec: {}\n",
            secret.display()
        ),
    )?;
    let out = Tdg::new()?.run_in(&repo, ["audit", "--fleet", "fleet.yaml"])?;
    let t = super::cli::text(&out);
    ensure!(out.status.code() == Some(2), "{t}");
    ensure!(
        !t.contains("SECRET-7f3a") && !t.contains("root:$6$"),
        "quoted it:\n{t}"
    );
    ensure!(t.contains("outside"), "{t}");
    Ok(())
}

/// One flipped byte in a bundle's layer blob: every check now errors the same way, which the
/// re-check says once, naming how many checks it affects (it used to print 17 long lines).
pub fn one_bad_blob_is_one_line_of_differences() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let b = bundle(tmp.path())?;
    let digests: serde_json::Value =
        serde_json::from_slice(&std::fs::read(b.join("digests.json"))?)?;
    let layer = digests["layers"][0]
        .as_str()
        .context("layers")?
        .trim_start_matches("sha256:");
    let blob = b.join("image/blobs/sha256").join(layer);
    super::pull::flip_byte(&blob, std::fs::metadata(&blob)?.len() / 2)?;
    let t = expect_exit(&recheck(&b)?, 2)?;
    let lines: Vec<&str> = t
        .lines()
        .filter(|l| l.contains("verdict differs"))
        .collect();
    ensure!(
        lines.len() <= 3 && lines.iter().any(|l| l.contains(" checks (")),
        "{} lines:\n{t}",
        lines.len()
    );
    Ok(())
}
