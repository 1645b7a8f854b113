//! tdg inside GitHub Actions: with `GITHUB_ACTIONS=true`, a failing check is an `::error`
//! workflow command at the line of the spec key it comes from, a spec error one at its
//! file:line:col, and the verdict is appended to `$GITHUB_STEP_SUMMARY` as Markdown. Run from
//! the repository root with a relative spec path, as a workflow step does.

use std::path::Path;
use std::process::{Command, Output};

use anyhow::{ensure, Context, Result};

use tdg::oci::image::{Flavor, TarEntry as E};
use tdg::oci::manifest::Compression;

use super::cli::expect_exit;
use crate::fixtures;

/// Line 7 is the failing `size`, line 9 the `mode` that passes; line 10's `lacks` fails on
/// the bad image only.
const SPEC: &str = "apiVersion: tdg/v1
name: gh-NAME
image: oci:layout:TAG
expect:
  files:
    - path: etc/motd
      size: SIZE
    - path: etc/issue
      mode: \"0644\"
      lacks: [TOKEN=]
";

fn run(root: &Path, args: &[&str]) -> Result<Output> {
    Ok(Command::new(env!("CARGO_BIN_EXE_tdg"))
        .current_dir(root)
        .env("TDG_CACHE", root.join("cache"))
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_STEP_SUMMARY", root.join("summary.md"))
        .args(args)
        .output()?)
}

fn spec(root: &Path, name: &str, tag: &str, size: &str) -> Result<()> {
    std::fs::create_dir_all(root.join("specs"))?;
    let text = SPEC
        .replace("NAME", name)
        .replace("TAG", tag)
        .replace("SIZE", size);
    Ok(std::fs::write(
        root.join(format!("specs/gh-{name}.yaml")),
        text,
    )?)
}

fn summary(root: &Path) -> Result<String> {
    let s = std::fs::read_to_string(root.join("summary.md")).context("no step summary")?;
    std::fs::remove_file(root.join("summary.md"))?;
    Ok(s)
}

pub fn annotations_and_a_step_summary_in_github_actions() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let root = tmp.path();
    for (tag, issue) in [("good", "welcome\n"), ("bad", "TOKEN=x\n")] {
        fixtures::layout_image(
            &root.join("layout"),
            tag,
            &[(
                vec![
                    E::dir("etc", 0o755),
                    E::file("etc/motd", "0123456789", 0o644),
                    E::file("etc/issue", issue, 0o644),
                ],
                Compression::Gzip,
            )],
            "linux/amd64",
            &Default::default(),
            Flavor::Oci,
        )?;
    }
    spec(root, "pass", "good", "10B")?;
    spec(root, "fail", "bad", "11B")?;

    // A passing run: the human report, no annotation, a one-line summary.
    let out = expect_exit(&run(root, &["verify", "specs/gh-pass.yaml"])?, 0)?;
    ensure!(!out.contains("::error"), "{out}");
    let s = summary(root)?;
    ensure!(
        s.trim().lines().count() == 1 && s.contains("gh-pass") && s.contains("3 checks passed"),
        "{s}"
    );

    // A failing run: one error per failed check, at its key's line, escaped as the toolkit does.
    let o = run(root, &["verify", "specs/gh-fail.yaml"])?;
    let out = expect_exit(&o, 1)?;
    let stdout = String::from_utf8_lossy(&o.stdout);
    let errors: Vec<&str> = stdout.lines().filter(|l| l.starts_with("::")).collect();
    ensure!(
        errors
            == [
                "::error file=specs/gh-fail.yaml,line=7,col=7,title=gh-fail%3A files%3A%3Aetc/motd%3A%3Asize::size 10 bytes is not the expected 11 bytes",
                "::error file=specs/gh-fail.yaml,line=10,col=7,title=gh-fail%3A files%3A%3Aetc/issue%3A%3Alacks::contains 'TOKEN=' (8 bytes)",
            ],
        "{out}"
    );
    let s = summary(root)?;
    for want in [
        "### ❌ tdg: `gh-fail`",
        "| ❌ gh-fail | `oci:layout:bad` |",
        "| gh-fail | `files::etc/motd::size` | fail | `specs/gh-fail.yaml:7` |",
        "| gh-fail | `files::etc/issue::lacks` | fail | `specs/gh-fail.yaml:10` |",
        "1 passed, 2 failed, 0 errors, 0 skipped",
    ] {
        ensure!(s.contains(want), "summary lacks {want:?}:\n{s}");
    }

    // Both specs at once: the summary's table has a row per spec.
    expect_exit(
        &run(
            root,
            &["verify", "specs/gh-pass.yaml", "specs/gh-fail.yaml"],
        )?,
        1,
    )?;
    let s = summary(root)?;
    ensure!(
        s.contains("### ❌ tdg: 2 specs") && s.contains("| ✅ gh-pass |"),
        "{s}"
    );

    // JSON on stdout stays JSON: positions in it, annotations and summary elsewhere.
    let o = run(root, &["verify", "--format", "json", "specs/gh-fail.yaml"])?;
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).context("stdout is not JSON")?;
    let at = &v["specs"][0]["outcomes"]
        .as_array()
        .context("outcomes")?
        .iter()
        .find(|o| o["check"] == "files::etc/motd::size")
        .context("size outcome")?["at"];
    ensure!(at["line"] == 7 && at["column"] == 7, "{at}");
    ensure!(summary(root)?.contains("`files::etc/motd::size`"));
    // The report in a file: the annotations still go to stdout, where GitHub reads them.
    for format in ["json", "github"] {
        let o = run(
            root,
            &[
                "verify",
                "--format",
                format,
                "--output",
                "report.out",
                "specs/gh-fail.yaml",
            ],
        )?;
        let stdout = String::from_utf8_lossy(&o.stdout);
        ensure!(
            stdout
                .lines()
                .filter(|l| l.starts_with("::error file=specs/gh-fail.yaml,line="))
                .count()
                == 2,
            "{format}: {stdout}"
        );
        summary(root)?;
    }

    // A spec error: an annotation at its file:line:col, exit 2.
    std::fs::write(
        root.join("specs/typo.yaml"),
        SPEC.replace("size: SIZE", "sise: 1B"),
    )?;
    let o = run(root, &["verify", "specs/typo.yaml"])?;
    let out = expect_exit(&o, 2)?;
    let stdout = String::from_utf8_lossy(&o.stdout);
    ensure!(
        stdout.starts_with("::error file=specs/typo.yaml,line=7,col=7,title=tdg::unknown field"),
        "{out}"
    );
    Ok(())
}
