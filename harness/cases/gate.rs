//! Nothing unverified is published: `tdg build --push` verifies the built layout against its
//! spec and pushes only what passed (the registry read back by skopeo); `--no-verify` is for
//! moving tags only. And the spec's verdict does not depend on how its path is written.

use std::path::Path;

use anyhow::{ensure, Context, Result};

use super::build::build;
use super::cli::{expect_exit, Tdg};
use crate::fixtures::skopeo_digest;
use crate::registry::Registry;
use crate::{upstream, world};

/// The release's failure: a spin-only spec whose build pulled in tailscale. With `--push` it is
/// verified first, fails, and the registry never hears of it; the same build without the
/// mistake is verified and pushed.
pub fn a_build_that_fails_its_spec_pushes_nothing() -> Result<()> {
    let reg = Registry::start(None)?;
    let tmp = tempfile::tempdir()?;
    upstream::push_all(&reg.addr, tmp.path())?;
    let good = world::spec_without_goldens("spin-only", tmp.path())?;
    let text = std::fs::read_to_string(&good)?;
    let spin = "    - ghcr.io/siderolabs/spin:v0.21.0\n";
    ensure!(
        text.contains(spin),
        "the spec no longer lists spin as {spin:?}"
    );
    let bad_text = text.replace(
        spin,
        &format!("{spin}    - ghcr.io/siderolabs/tailscale:1.88.1\n"),
    );
    let bad = world::write_spec(tmp.path(), "with-tailscale", &bad_text)?;
    let (good, bad) = (path_str(&good)?, path_str(&bad)?);
    let repo = format!("{}/urmanac/talos-cozystack-spin-only", reg.addr);
    let absent = |tag: &str| -> Result<()> {
        let found = skopeo_digest(&format!("{repo}:{tag}"));
        ensure!(found.is_err(), "{repo}:{tag} was pushed: {found:?}");
        Ok(())
    };
    let tdg = Tdg::new()?;

    // The default: verify, then push. It fails on tailscale; nothing is pushed.
    let out = build(&tdg, &reg.addr, &bad, &["--push", "--format", "json"])?;
    expect_exit(&out, 1)?;
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    ensure!(
        doc["pushed"].is_null()
            && doc["not_pushed"]
                .as_str()
                .is_some_and(|w| w.contains("nothing pushed")),
        "{doc}"
    );
    let failed: Vec<&str> = doc["verify"]["specs"][0]["outcomes"]
        .as_array()
        .context("outcomes")?
        .iter()
        .filter(|o| o["status"] == "fail")
        .filter_map(|o| o["check"].as_str())
        .collect();
    ensure!(
        failed.iter().any(|c| c.contains("extensions")),
        "no extensions check failed: {failed:?}"
    );
    absent("v1.11.5")?;
    let human = expect_exit(&build(&tdg, &reg.addr, &bad, &["--push"])?, 1)?;
    ensure!(
        human.contains("nothing pushed") && !human.contains("tdg: pushed"),
        "{human}"
    );
    absent("v1.11.5")?;

    // --no-verify is refused for a release tag, before anything is pulled or pushed.
    let refused = expect_exit(
        &build(&tdg, &reg.addr, &bad, &["--push", "--no-verify"])?,
        2,
    )?;
    ensure!(
        refused.contains("--no-verify") && refused.contains("release tag"),
        "{refused}"
    );
    absent("v1.11.5")?;

    // For a moving tag it pushes, unverified, and says so.
    let moving = format!("{repo}:edge");
    let pushed = expect_exit(
        &build(&tdg, &reg.addr, &bad, &["--push", &moving, "--no-verify"])?,
        0,
    )?;
    ensure!(pushed.contains("unverified"), "{pushed}");
    skopeo_digest(&moving)?;

    // The fixed spec passes and is pushed; what the registry holds is what was verified.
    let out = build(&tdg, &reg.addr, &good, &["--push", "--format", "json"])?;
    expect_exit(&out, 0)?;
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let digest = doc["digest"].as_str().context("digest")?;
    ensure!(
        doc["verify"]["exit_code"] == 0 && doc["not_pushed"].is_null(),
        "{doc}"
    );
    ensure!(
        skopeo_digest(&format!("{repo}:v1.11.5"))? == digest,
        "the registry holds another digest than the verified {digest}"
    );
    Ok(())
}

fn path_str(p: &Path) -> Result<String> {
    Ok(p.to_str().context("utf-8 path")?.to_string())
}

/// `specs/x.yaml`, `./specs/x.yaml`, an absolute path, and relative paths from other
/// directories give one verdict: the golden is found through the same repository root.
pub fn a_spec_path_gives_one_verdict_however_it_is_written() -> Result<()> {
    let w = world::world()?;
    let root = world::repo_root();
    let mirror = format!("ghcr.io=http://{}", w.registry.addr);
    let abs = root.join("specs/spin-only-arm64.yaml");
    let other = tempfile::tempdir()?;
    let cases: [(&Path, String); 5] = [
        (&root, "specs/spin-only-arm64.yaml".into()),
        (&root, "./specs/spin-only-arm64.yaml".into()),
        (&root.join("specs"), "spin-only-arm64.yaml".into()),
        (&root.join("golden"), "../specs/spin-only-arm64.yaml".into()),
        (other.path(), path_str(&abs)?),
    ];
    let tdg = Tdg::new()?;
    let mut summaries = Vec::new();
    for (dir, spec) in &cases {
        let out = tdg.run_in(dir, ["verify", spec.as_str(), "--mirror", &mirror])?;
        let text =
            expect_exit(&out, 0).with_context(|| format!("{spec} from {}", dir.display()))?;
        ensure!(
            text.contains("ok   tree"),
            "{spec}: no tree check passed:\n{text}"
        );
        let summary = text
            .lines()
            .find(|l| l.contains(" passed, "))
            .context("no summary")?
            .to_string();
        summaries.push(summary);
    }
    ensure!(
        summaries.windows(2).all(|p| p[0] == p[1]),
        "the verdicts differ: {summaries:#?}"
    );
    Ok(())
}
