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

/// The release workflow's `release` job and then the audit workflow's `audit` job, step by
/// step, each `run:` script executed as GitHub runs it (`bash --noprofile --norc -eo pipefail`)
/// from the root of a checkout, with its relative paths as written: only `./target/release/tdg`
/// becomes the binary under test, `${{ … }}` expressions take fixed values (or the outputs
/// earlier steps wrote to `$GITHUB_OUTPUT`), and the environment points `ghcr.io` at a loopback
/// registry holding the upstream fixtures. Keyless signing needs Fulcio and an OIDC token, so
/// the test PKI signs and attests what the workflow's `cosign sign` and attest steps name, as
/// the workflow's identity. Every step must succeed.
pub fn workflow_commands_run_as_written_from_the_repository_root() -> Result<()> {
    let reg = crate::registry::Registry::start(None)?;
    let tmp = tempfile::tempdir()?;
    crate::upstream::push_all(&reg.addr, tmp.path())?;
    let checkout = checkout(tmp.path())?;
    let pki = crate::signing::Pki::new(&tmp.path().join("pki"))?;
    let bin = tmp.path().join("bin");
    std::fs::create_dir_all(&bin)?;
    let cosign_log = tmp.path().join("cosign.log");
    // Records what the step asks cosign to sign; the signing itself is the PKI's (below).
    write_executable(
        &bin.join("cosign"),
        &format!("#!/bin/sh\necho \"$@\" >> '{}'\n", cosign_log.display()),
    )?;
    let outputs = tmp.path().join("github_output");
    std::fs::write(&outputs, "")?;
    let docker = tmp.path().join("docker");
    std::fs::create_dir_all(&docker)?;
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let env: Vec<(&str, String)> = vec![
        ("PATH", path),
        ("TDG_MIRROR", format!("ghcr.io=http://{}", reg.addr)),
        ("TDG_CACHE", tmp.path().join("cache").display().to_string()),
        ("TDG_TRUSTED_ROOT", pki.trusted_root.display().to_string()),
        ("DOCKER_CONFIG", docker.display().to_string()),
        ("GITHUB_OUTPUT", outputs.display().to_string()),
        ("CI", "true".into()),
        ("NO_COLOR", "1".into()),
    ];
    let sha = "0123456789abcdef0123456789abcdef01234567";
    let tdg = env!("CARGO_BIN_EXE_tdg");
    let mut ran = Vec::new();
    for (file, job) in [("release.yml", "release"), ("audit.yml", "audit")] {
        let text = std::fs::read_to_string(checkout.join(".github/workflows").join(file))?;
        let wf: Value = serde_saphyr::from_str_with_options(
            &text,
            serde_saphyr::options! { strict_booleans: true },
        )
        .map_err(|e| anyhow::anyhow!("{file}: {e}"))?;
        let steps = wf["jobs"][job]["steps"]
            .as_array()
            .with_context(|| format!("{file}: no job {job}"))?;
        for (i, step) in steps.iter().enumerate() {
            let name = format!("{file}/{job} step {}", i + 1);
            let expand = |s: &str| expressions(s, sha, &outputs);
            if let Some(uses) = step["uses"].as_str() {
                if uses.starts_with("actions/attest-build-provenance") {
                    let subject = expand(step["with"]["subject-name"].as_str().unwrap_or(""))?;
                    let digest = expand(step["with"]["subject-digest"].as_str().unwrap_or(""))?;
                    let repo = subject.replacen("ghcr.io", &reg.addr, 1);
                    super::referrers::attest_as_release_workflow(
                        &pki,
                        tmp.path(),
                        &repo,
                        &digest.parse()?,
                        "urmanac",
                    )?;
                    ran.push(format!("{name}: attested {subject}@{digest}"));
                }
                continue;
            }
            let script = step["run"].as_str().context("a step without uses or run")?;
            if !script.contains("tdg") && !script.contains("cosign") {
                // `cargo build --release`: the binary under test is cargo test's own build.
                continue;
            }
            let script = expand(script)?.replace("./target/release/tdg", tdg);
            let out = Command::new("bash")
                .args(["--noprofile", "--norc", "-eo", "pipefail", "-c", &script])
                .current_dir(&checkout)
                .env_clear()
                .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
                .env("HOME", tmp.path())
                .output()?;
            let said = super::cli::text(&out);
            ensure!(
                out.status.success(),
                "{name} failed ({:?}):\n{script}\n---\n{said}",
                out.status.code()
            );
            // What the step asked cosign to sign, signed as the workflow.
            for line in std::fs::read_to_string(&cosign_log)
                .unwrap_or_default()
                .lines()
            {
                let r = line.split_whitespace().last().context("cosign args")?;
                let (repo, digest) = r.split_once('@').context("cosign signs by digest")?;
                let repo = repo.replacen("ghcr.io", &reg.addr, 1);
                super::referrers::sign_as_release_workflow(
                    &pki,
                    tmp.path(),
                    &repo,
                    &digest.parse()?,
                    "urmanac",
                )?;
                ran.push(format!("{name}: signed {r}"));
            }
            let _ = std::fs::remove_file(&cosign_log);
            ran.push(format!("{name}: ok"));
        }
    }
    // What the steps left behind is what they promise.
    let recheck: Value = serde_json::from_slice(&std::fs::read(checkout.join("recheck.json"))?)?;
    ensure!(recheck["exit_code"] == 0, "{recheck}");
    for f in [
        "build.json",
        "junit-spin-only-arm64.xml",
        "junit-signatures.xml",
        "junit-fleet.xml",
        "audit.xml",
        "signatures.xml",
        "fleet.xml",
        "evidence/spin-only-arm64/digests.json",
        "audit-evidence/spin-tailscale-arm64/digests.json",
    ] {
        ensure!(checkout.join(f).is_file(), "no {f} after the workflows");
    }
    let stable = crate::fixtures::skopeo_digest(&format!(
        "{}/urmanac/talos-cozystack-spin-only:stable",
        reg.addr
    ))?;
    let release = crate::fixtures::skopeo_digest(&format!(
        "{}/urmanac/talos-cozystack-spin-only:v1.11.5",
        reg.addr
    ))?;
    ensure!(
        stable == release,
        "stable {stable} is not the release {release}"
    );
    ensure!(
        ran.iter().filter(|r| r.contains("signed ")).count() == 2
            && ran.iter().filter(|r| r.contains("attested ")).count() == 2,
        "{ran:#?}"
    );
    Ok(())
}

/// A checkout of the repository as `actions/checkout` makes one: the files the workflows read,
/// in a git repository with one commit (`git log -1 --format=%ct` works).
fn checkout(tmp: &std::path::Path) -> Result<std::path::PathBuf> {
    let root = world::repo_root();
    let dir = tmp.join("checkout");
    std::fs::create_dir_all(&dir)?;
    for p in [".github", "specs", "golden", "audit", "fleet.yaml"] {
        crate::fixtures::run(Command::new("cp").arg("-a").arg(root.join(p)).arg(&dir))?;
    }
    let git = |args: &[&str]| {
        crate::fixtures::run(
            Command::new("git")
                .args(["-c", "user.name=tdg", "-c", "user.email=tdg@test"])
                .args(args)
                .current_dir(&dir)
                .env("GIT_AUTHOR_DATE", "1700000000 +0000")
                .env("GIT_COMMITTER_DATE", "1700000000 +0000"),
        )
    };
    git(&["init", "-q"])?;
    git(&["add", "-A"])?;
    git(&["commit", "-q", "-m", "checkout"])?;
    Ok(dir)
}

fn write_executable(path: &std::path::Path, text: &str) -> Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::write(path, text)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))?;
    Ok(())
}

/// `${{ … }}` in a workflow's text: `github.sha`, and `steps.<id>.outputs.<name>` from what
/// earlier steps wrote to `$GITHUB_OUTPUT`. Any other expression is an error, so a workflow
/// that grows one makes this trial say so.
fn expressions(text: &str, sha: &str, outputs: &std::path::Path) -> Result<String> {
    let re = regex::Regex::new(r"\$\{\{\s*([^}]*?)\s*\}\}")?;
    let written = std::fs::read_to_string(outputs).unwrap_or_default();
    let mut out = String::new();
    let mut last = 0;
    for c in re.captures_iter(text) {
        let m = c.get(0).context("match")?;
        let expr = &c[1];
        let value = if expr == "github.sha" {
            sha.to_string()
        } else if let Some(name) = expr
            .strip_prefix("steps.")
            .and_then(|r| r.split_once(".outputs."))
            .map(|(_, n)| n)
        {
            written
                .lines()
                .find_map(|l| l.strip_prefix(&format!("{name}=")))
                .with_context(|| format!("no step wrote the output {name}"))?
                .to_string()
        } else {
            anyhow::bail!("the workflow trial has no value for ${{{{ {expr} }}}}");
        };
        out.push_str(&text[last..m.start()]);
        out.push_str(&value);
        last = m.end();
    }
    out.push_str(&text[last..]);
    Ok(out)
}
