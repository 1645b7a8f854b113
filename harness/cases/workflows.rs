//! The GitHub workflows parse, have the jobs the project relies on, and every `tdg` command in
//! them names a real subcommand with real flags (read from the binary's own `--help`).

use std::collections::BTreeSet;
use std::process::Command;

use anyhow::{ensure, Context, Result};
use serde_json::Value;

use crate::world;

fn help(args: &[&str]) -> Result<String> {
    let out = Command::new(env!("CARGO_BIN_EXE_tdg"))
        .args(args)
        .arg("--help")
        .output()?;
    ensure!(out.status.success(), "tdg {args:?} --help failed");
    Ok(String::from_utf8(out.stdout)?)
}

fn subcommands() -> Result<BTreeSet<String>> {
    let h = help(&[])?;
    let section = h
        .split("Commands:")
        .nth(1)
        .context("no Commands section")?
        .split("Options:")
        .next()
        .unwrap_or("");
    Ok(section
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|w| *w != "help")
        .map(str::to_string)
        .collect())
}

fn flags(sub: &str) -> Result<BTreeSet<String>> {
    let h = help(&[sub])?;
    let re = regex::Regex::new(r"--[a-z][a-z-]*")?;
    Ok(re.find_iter(&h).map(|m| m.as_str().to_string()).collect())
}

/// Every `tdg SUB …` in a shell script, with line continuations joined.
fn invocations(script: &str) -> Vec<(String, Vec<String>)> {
    let joined = script.replace("\\\n", " ");
    let re = regex::Regex::new(r"(?:^|[\s/])tdg\s+([a-z][a-z-]*)([^\n|;&]*)").expect("regex");
    re.captures_iter(&joined)
        .map(|c| {
            let args = c[2]
                .split_whitespace()
                .filter(|a| a.starts_with("--"))
                .map(|a| a.split('=').next().unwrap_or(a).to_string())
                .collect();
            (c[1].to_string(), args)
        })
        .collect()
}

pub fn workflows_parse_and_name_real_tdg_commands() -> Result<()> {
    let dir = world::repo_root().join(".github/workflows");
    let subs = subcommands()?;
    let mut seen = BTreeSet::new();
    let mut all_runs = String::new();
    for name in ["ci.yml", "release.yml", "audit.yml", "fuzz.yml"] {
        let text =
            std::fs::read_to_string(dir.join(name)).with_context(|| format!("reading {name}"))?;
        let options = serde_saphyr::options! { strict_booleans: true };
        let wf: Value = serde_saphyr::from_str_with_options(&text, options)
            .map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
        ensure!(
            wf.get("on").is_some() && wf.get("name").is_some(),
            "{name}: needs name and on"
        );
        let jobs = wf["jobs"]
            .as_object()
            .with_context(|| format!("{name}: no jobs"))?;
        for (job, j) in jobs {
            ensure!(j["runs-on"].is_string(), "{name}/{job}: no runs-on");
            let steps = j["steps"]
                .as_array()
                .with_context(|| format!("{name}/{job}: no steps"))?;
            ensure!(!steps.is_empty(), "{name}/{job}: no steps");
            for s in steps {
                ensure!(
                    s.get("uses").is_some() != s.get("run").is_some(),
                    "{name}/{job}: a step needs exactly one of uses and run: {s}"
                );
                let Some(script) = s["run"].as_str() else {
                    continue;
                };
                all_runs.push_str(script);
                all_runs.push('\n');
                for (sub, args) in invocations(script) {
                    ensure!(
                        subs.contains(&sub),
                        "{name}/{job}: `tdg {sub}` is not a tdg command (commands: {subs:?})"
                    );
                    let known = flags(&sub)?;
                    for a in &args {
                        ensure!(
                            known.contains(a),
                            "{name}/{job}: `tdg {sub}` has no flag {a}"
                        );
                    }
                    seen.insert(format!("{name}:{sub}"));
                }
            }
        }
    }
    // The jobs the project depends on are there.
    ensure!(
        all_runs.contains("bash .ci/run"),
        "ci.yml does not run .ci/run"
    );
    ensure!(
        all_runs.contains("fuzz/run 60") && all_runs.contains("fuzz/run 1200"),
        "no fuzz job in ci.yml (fuzz/run 60) or fuzz.yml (fuzz/run 1200)"
    );
    ensure!(
        all_runs.contains("sha256sum tdg-linux-") && all_runs.contains("gh release upload"),
        "release.yml does not attach the binaries with their checksums"
    );
    ensure!(
        all_runs.contains("cargo nextest run --partition slice:"),
        "ci.yml does not partition nextest"
    );
    ensure!(
        all_runs.contains("cargo clippy --all-targets -- -D warnings")
            && all_runs.contains("cargo fmt --all -- --check"),
        "ci.yml lacks lint steps"
    );
    for want in [
        "release.yml:build",
        "release.yml:verify",
        "release.yml:promote",
        "release.yml:audit",
        "audit.yml:verify",
        "audit.yml:audit",
    ] {
        ensure!(
            seen.contains(want),
            "no `tdg {}` in {}",
            want.split(':').nth(1).unwrap_or(""),
            want.split(':').next().unwrap_or("")
        );
    }
    let audit: Value = serde_saphyr::from_str_with_options(
        &std::fs::read_to_string(dir.join("audit.yml"))?,
        serde_saphyr::options! { strict_booleans: true },
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    ensure!(
        audit["on"]["schedule"].is_array(),
        "audit.yml is not scheduled"
    );
    // A workflow that names a command tdg lacks is caught.
    ensure!(
        invocations("./target/release/tdg verfiy x")
            .iter()
            .all(|(s, _)| !subs.contains(s)),
        "the check cannot fail"
    );
    Ok(())
}
