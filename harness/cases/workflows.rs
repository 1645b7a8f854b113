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

/// The flags of `tdg SUB` and of its own subcommands (`tdg report merge`).
fn flags(sub: &str) -> Result<BTreeSet<String>> {
    let h = help(&[sub])?;
    let re = regex::Regex::new(r"--[a-z][a-z-]*")?;
    let mut all: BTreeSet<String> = re.find_iter(&h).map(|m| m.as_str().to_string()).collect();
    if let Some(section) = h.split("Commands:").nth(1) {
        let section = section.split("Options:").next().unwrap_or("");
        for nested in section.lines().filter_map(|l| l.split_whitespace().next()) {
            if nested != "help" {
                let h = help(&[sub, nested])?;
                all.extend(re.find_iter(&h).map(|m| m.as_str().to_string()));
            }
        }
    }
    Ok(all)
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
                // The repository's own action runs `tdg <args>`.
                let action_args = (s["uses"] == "./")
                    .then(|| s["with"]["args"].as_str().map(|a| format!("tdg {a}")))
                    .flatten();
                if s["uses"] == "./" && action_args.is_none() {
                    anyhow::bail!("{name}/{job}: a step uses ./ without args: {s}");
                }
                let Some(script) = action_args.as_deref().or(s["run"].as_str()) else {
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
        "audit.yml:report",
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
    // The fleet is audited in a matrix of parts and merged by a job that runs even when a part
    // failed.
    let jobs = &audit["jobs"];
    ensure!(
        jobs["fleet"]["strategy"]["matrix"]["part"]
            .as_array()
            .map(Vec::len)
            == Some(3)
            && jobs["fleet"]["strategy"]["fail-fast"] == false
            && jobs["fleet-verdict"]["needs"] == "fleet"
            && jobs["fleet-verdict"]["if"] == "always()",
        "audit.yml does not split the fleet and merge the parts: {jobs}"
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
    let runs: Vec<(&str, &str, Option<&str>)> = vec![
        ("release.yml", "release", None),
        ("audit.yml", "audit", None),
        ("audit.yml", "fleet", Some("1")),
        ("audit.yml", "fleet", Some("2")),
        ("audit.yml", "fleet", Some("3")),
        ("audit.yml", "fleet-verdict", None),
    ];
    for (file, job, part) in runs {
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
            let expand = |s: &str| expressions(s, sha, part, &outputs);
            if step["uses"] == "./" {
                let with = |k: &str| -> Result<String> {
                    Ok(expand(step["with"][k].as_str().unwrap_or(""))?
                        .replace("./target/release/tdg", tdg))
                };
                let said = run_action(
                    &checkout,
                    &[("args", with("args")?), ("binary", with("binary")?)],
                    &env,
                    tmp.path(),
                )
                .with_context(|| format!("{name} (uses: ./)"))?;
                ran.push(format!("{name}: ok\n{said}"));
                continue;
            }
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
        "fleet-1.json",
        "fleet-3.json",
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
    for p in [
        ".github",
        "specs",
        "golden",
        "audit",
        "fleet.yaml",
        "action.yml",
    ] {
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

/// `${{ … }}` in a workflow's text: `github.sha`, `matrix.part` in a matrix job, and `steps.<id>.outputs.<name>` from what
/// earlier steps wrote to `$GITHUB_OUTPUT`. Any other expression is an error, so a workflow
/// that grows one makes this trial say so.
fn expressions(
    text: &str,
    sha: &str,
    part: Option<&str>,
    outputs: &std::path::Path,
) -> Result<String> {
    let re = regex::Regex::new(r"\$\{\{\s*([^}]*?)\s*\}\}")?;
    let written = std::fs::read_to_string(outputs).unwrap_or_default();
    let mut out = String::new();
    let mut last = 0;
    for c in re.captures_iter(text) {
        let m = c.get(0).context("match")?;
        let expr = &c[1];
        let value = if expr == "github.sha" {
            sha.to_string()
        } else if let (Some(p), "matrix.part") = (part, expr) {
            p.to_string()
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

/// The repository's action (`uses: ./`) as the runner runs a composite action: each step's
/// `run:` under `bash --noprofile --norc -eo pipefail`, with its `env:` evaluated from the
/// inputs (their defaults where not given), the `github` context and earlier steps' outputs.
/// Returns what the steps printed.
fn run_action(
    checkout: &std::path::Path,
    given: &[(&str, String)],
    env: &[(&str, String)],
    temp: &std::path::Path,
) -> Result<String> {
    let text = std::fs::read_to_string(checkout.join("action.yml"))?;
    let action: Value = serde_saphyr::from_str_with_options(
        &text,
        serde_saphyr::options! { strict_booleans: true },
    )
    .map_err(|e| anyhow::anyhow!("action.yml: {e}"))?;
    ensure!(
        action["runs"]["using"] == "composite",
        "not a composite action"
    );
    let mut inputs: Vec<(String, String)> = Vec::new();
    for (k, v) in action["inputs"]
        .as_object()
        .context("action.yml: no inputs")?
    {
        let value = given
            .iter()
            .find(|(g, _)| g == k)
            .map(|(_, v)| v.clone())
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| v["default"].as_str().unwrap_or("").to_string());
        if v["required"] == true && value.is_empty() {
            anyhow::bail!("input {k} is required");
        }
        inputs.push((k.clone(), value));
    }
    let github = [("action_ref", ""), ("action_repository", "urmanac/tdg")];
    let mut outputs: Vec<(String, String)> = Vec::new();
    let mut said = String::new();
    for step in action["runs"]["steps"].as_array().context("no steps")? {
        ensure!(
            step["shell"] == "bash",
            "a step without shell: bash: {step}"
        );
        let script = step["run"]
            .as_str()
            .context("a composite step without run")?;
        let mut step_env: Vec<(String, String)> = Vec::new();
        for (k, v) in step["env"].as_object().into_iter().flatten() {
            let v = action_expressions(v.as_str().unwrap_or(""), &inputs, &github, &outputs)?;
            step_env.push((k.clone(), v));
        }
        let output_file = tempfile::NamedTempFile::new_in(temp)?;
        let out = Command::new("bash")
            .args(["--noprofile", "--norc", "-eo", "pipefail", "-c", script])
            .current_dir(checkout)
            .env_clear()
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .envs(step_env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("HOME", temp)
            .env("RUNNER_TEMP", temp)
            .env("GITHUB_OUTPUT", output_file.path())
            .output()?;
        said += &super::cli::text(&out);
        ensure!(
            out.status.success(),
            "action step {:?} failed ({:?}):\n{said}",
            step["name"],
            out.status.code()
        );
        if let Some(id) = step["id"].as_str() {
            for line in std::fs::read_to_string(output_file.path())?.lines() {
                if let Some((k, v)) = line.split_once('=') {
                    outputs.push((format!("steps.{id}.outputs.{k}"), v.to_string()));
                }
            }
        }
    }
    Ok(said)
}

/// `${{ a || b }}` in the action's `env:`: `inputs.*`, `github.*` and `steps.*.outputs.*`, the
/// first non-empty operand winning, as GitHub's `||` does for strings.
fn action_expressions(
    text: &str,
    inputs: &[(String, String)],
    github: &[(&str, &str)],
    outputs: &[(String, String)],
) -> Result<String> {
    let re = regex::Regex::new(r"\$\{\{\s*([^}]*?)\s*\}\}")?;
    let mut out = String::new();
    let mut last = 0;
    for c in re.captures_iter(text) {
        let m = c.get(0).context("match")?;
        let mut value = String::new();
        for operand in c[1].split("||").map(str::trim) {
            let v = if let Some(k) = operand.strip_prefix("inputs.") {
                inputs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
            } else if let Some(k) = operand.strip_prefix("github.") {
                github
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            } else {
                outputs
                    .iter()
                    .find(|(n, _)| n == operand)
                    .map(|(_, v)| v.clone())
            };
            let v = v.with_context(|| format!("action.yml: no value for {operand}"))?;
            if !v.is_empty() {
                value = v;
                break;
            }
        }
        out.push_str(&text[last..m.start()]);
        out.push_str(&value);
        last = m.end();
    }
    out.push_str(&text[last..]);
    Ok(out)
}

/// The action installs a released binary only when it matches the release's `.sha256`: a
/// release served from a directory (`release-url: file://…`, as a mirror would serve it) with
/// the binary under test installs and runs `tdg <args>`; the same release with one byte changed,
/// or a checksum file naming another file, fails before the binary is run, and installs nothing.
pub fn the_action_installs_a_checked_release_and_runs_tdg() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let checkout = tmp.path().join("checkout");
    std::fs::create_dir_all(&checkout)?;
    std::fs::copy(
        world::repo_root().join("action.yml"),
        checkout.join("action.yml"),
    )?;
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => anyhow::bail!("no release name for {other}"),
    };
    let release = tmp.path().join("releases/v9.9.9");
    std::fs::create_dir_all(&release)?;
    let name = format!("tdg-linux-{arch}");
    std::fs::copy(env!("CARGO_BIN_EXE_tdg"), release.join(&name))?;
    // The checksum file exactly as release.yml writes it.
    let sum = Command::new("sha256sum")
        .arg(&name)
        .current_dir(&release)
        .output()?;
    ensure!(sum.status.success());
    std::fs::write(release.join(format!("{name}.sha256")), &sum.stdout)?;
    let env = vec![
        ("PATH", std::env::var("PATH").unwrap_or_default()),
        ("GITHUB_ACTIONS", "true".to_string()),
        ("NO_COLOR", "1".to_string()),
    ];
    let url = format!("file://{}", tmp.path().join("releases").display());
    let inputs = |args: &str| {
        vec![
            ("args", args.to_string()),
            ("version", "v9.9.9".to_string()),
            ("release-url", url.clone()),
        ]
    };
    let said = run_action(&checkout, &inputs("schema --release"), &env, tmp.path())?;
    let installed = tmp.path().join("tdg-v9.9.9/tdg");
    ensure!(
        installed.is_file()
            && said.contains(concat!("tdg ", env!("CARGO_PKG_VERSION")))
            && said.contains("\"$schema\""),
        "{said}"
    );
    std::fs::remove_dir_all(tmp.path().join("tdg-v9.9.9"))?;

    // One byte changed: refused before it runs, nothing installed.
    let mut bytes = std::fs::read(release.join(&name))?;
    bytes.push(0);
    std::fs::write(release.join(&name), &bytes)?;
    let err = run_action(&checkout, &inputs("--version"), &env, tmp.path())
        .err()
        .context("a tampered binary was installed")?;
    let err = format!("{err:#}");
    ensure!(
        err.contains(&format!(
            "::error title=tdg::{name} from {url}/v9.9.9 has sha256"
        )) && !installed.exists(),
        "{err}"
    );
    // A checksum file that names another file: refused too.
    std::fs::copy(env!("CARGO_BIN_EXE_tdg"), release.join(&name))?;
    let other = String::from_utf8(sum.stdout)?.replace(&name, "tdg-linux-other");
    std::fs::write(release.join(format!("{name}.sha256")), other)?;
    let err = run_action(&checkout, &inputs("--version"), &env, tmp.path())
        .err()
        .context("a binary without its checksum line was installed")?;
    ensure!(
        format!("{err:#}").contains(&format!("its .sha256 says 'nothing for {name}'")),
        "{err:#}"
    );
    Ok(())
}

/// The fuzz targets build against today's library: CI's fuzz job (`fuzz/run`) needs a nightly
/// toolchain, which `cargo test` does not, so a moved or changed API would otherwise only show
/// there. `cargo check` on stable type-checks every target (libfuzzer-sys builds on stable).
pub fn fuzz_targets_build_against_the_library() -> Result<()> {
    let root = world::repo_root();
    let out = Command::new(env!("CARGO"))
        .args(["check", "--quiet", "--locked", "--bins", "--manifest-path"])
        .arg(root.join("fuzz/Cargo.toml"))
        .env("CARGO_TARGET_DIR", root.join("target/fuzz-check"))
        .output()
        .context("running cargo check on fuzz/")?;
    ensure!(
        out.status.success(),
        "the fuzz targets do not build:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}
