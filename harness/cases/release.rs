//! Release safety of `tdg build`: what `--verify` reports, and release tags that never move.

use std::process::Command;

use anyhow::{ensure, Context, Result};

use super::build::{build, spec_path};
use super::cli::{expect_exit, Tdg};
use crate::fixtures::skopeo_digest;
use crate::registry::Registry;
use crate::{upstream, world};

/// `build --verify --format json` carries each spec's verify report beside its build, the
/// same report `tdg verify --format json` writes; a label that breaks the spec makes it exit 1.
pub fn build_verify_reports_outcomes_in_json() -> Result<()> {
    let w = world::world()?;
    for (label, code) in [("talos-cozystack-spin-tailscale", 0), ("wrong", 1)] {
        let title = format!("org.opencontainers.image.title={label}");
        let out = build(
            &Tdg::new()?,
            &w.registry.addr,
            &spec_path("spin-tailscale"),
            &["--verify", "--format", "json", "--label", &title],
        )?;
        expect_exit(&out, code)?;
        let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
        ensure!(
            v["digest"]
                .as_str()
                .is_some_and(|d| d.starts_with("sha256:")),
            "{v}"
        );
        let report = &v["verify"];
        ensure!(
            report["schema"] == "tdg.report/v1" && report["exit_code"] == code,
            "{report}"
        );
        let outcomes = report["specs"][0]["outcomes"]
            .as_array()
            .context("outcomes")?;
        ensure!(outcomes.len() > 20, "{} outcomes", outcomes.len());
        let title_check = outcomes
            .iter()
            .find(|o| o["check"] == "labels::org.opencontainers.image.title")
            .context("no title check")?;
        let want = if code == 0 { "pass" } else { "fail" };
        ensure!(title_check["status"] == want, "{title_check}");
    }
    Ok(())
}

/// Release tags never move: pushing the same build again says it is already there, another
/// build is refused before any blob moves (naming both digests, the registry unchanged), and a
/// moving tag moves, saying from which digest.
pub fn release_tags_never_move() -> Result<()> {
    let reg = Registry::start(None)?;
    let tmp = tempfile::tempdir()?;
    upstream::push_all(&reg.addr, tmp.path())?;
    let spec = spec_path("spin-only");
    let digest_at = |tag: &str| {
        skopeo_digest(&format!(
            "{}/urmanac/talos-cozystack-spin-only:{tag}",
            reg.addr
        ))
    };
    let tdg = Tdg::new()?;
    let first = expect_exit(&build(&tdg, &reg.addr, &spec, &["--push"])?, 0)?;
    let d1 = digest_at("v1.11.5")?;
    let again = expect_exit(&build(&tdg, &reg.addr, &spec, &["--push"])?, 0)?;
    ensure!(
        again.contains(&format!("already at {d1}")),
        "{first}\n---\n{again}"
    );
    let other = [
        "--push",
        "--label",
        "org.opencontainers.image.revision=89abcdef89abcdef",
    ];
    let refused = expect_exit(&build(&tdg, &reg.addr, &spec, &other)?, 2)?;
    ensure!(
        refused.contains("is a release tag and already points at")
            && refused.contains(&d1)
            && refused
                .lines()
                .filter(|l| l.starts_with("tdg: error"))
                .count()
                == 1,
        "{refused}"
    );
    ensure!(digest_at("v1.11.5")? == d1, "the release tag moved");
    // A moving tag moves, and says from where.
    let moving = "ghcr.io/urmanac/talos-cozystack-spin-only:demo-stable";
    expect_exit(&build(&tdg, &reg.addr, &spec, &["--push", moving])?, 0)?;
    let moved = expect_exit(
        &build(
            &tdg,
            &reg.addr,
            &spec,
            &[
                "--push",
                moving,
                "--label",
                "org.opencontainers.image.revision=89abcdef89abcdef",
            ],
        )?,
        0,
    )?;
    ensure!(moved.contains(&format!("tag moved from {d1}")), "{moved}");
    ensure!(digest_at("demo-stable")? != d1, "demo-stable did not move");
    Ok(())
}

/// Two processes push different builds to one new release tag at once. The distribution API
/// has no compare-and-set; tdg re-reads the tag just before and just after writing it, so one
/// wins and the other is told (exit 2), naming the digest that won.
pub fn concurrent_pushes_of_one_release_tag_leave_one_winner() -> Result<()> {
    let reg = Registry::start(None)?;
    let tmp = tempfile::tempdir()?;
    upstream::push_all(&reg.addr, tmp.path())?;
    let spec = spec_path("spin-only");
    let mirror = format!("ghcr.io=http://{}", reg.addr);
    let (a, b) = (Tdg::new()?, Tdg::new()?);
    let spawn = |tdg: &Tdg, revision: &str| {
        Command::new(env!("CARGO_BIN_EXE_tdg"))
            .env("TDG_CACHE", &tdg.cache)
            .env("DOCKER_CONFIG", &tdg.docker_config)
            .env("SOURCE_DATE_EPOCH", "1700000000")
            .args(["build", &spec, "--mirror", &mirror, "--push", "--label"])
            .arg(format!("org.opencontainers.image.revision={revision}"))
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
    };
    let first = spawn(&a, "1111111111111111")?;
    let second = spawn(&b, "2222222222222222")?;
    let outs = [first.wait_with_output()?, second.wait_with_output()?];
    let codes: Vec<Option<i32>> = outs.iter().map(|o| o.status.code()).collect();
    let text: Vec<String> = outs.iter().map(super::cli::text).collect();
    let tag = format!("{}/urmanac/talos-cozystack-spin-only:v1.11.5", reg.addr);
    let now = skopeo_digest(&tag)?;
    let now = now.as_str();
    let winner = codes.iter().position(|c| *c == Some(0));
    ensure!(
        codes.iter().filter(|c| **c == Some(0)).count() == 1
            && codes.iter().filter(|c| **c == Some(2)).count() == 1,
        "exit codes {codes:?}:\n{}\n---\n{}",
        text[0],
        text[1]
    );
    let loser = &text[1 - winner.context("a winner")?];
    ensure!(
        loser.contains(now)
            && (loser.contains("another push set the tag") || loser.contains("is a release tag")),
        "{loser}"
    );
    ensure!(
        text[winner.context("a winner")?].contains(now),
        "the tag names {now}, not the winner's build:\n{}",
        text[winner.context("a winner")?]
    );
    Ok(())
}
