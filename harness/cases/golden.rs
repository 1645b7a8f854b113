//! The golden-tree workflow on a throw-away repository: a missing golden goes to review, a
//! bless writes it, one added, removed or changed file fails with a diff of a few lines, CI
//! never writes, and `tdg bless` accepts the new tree.

use std::path::Path;
use std::process::{Command, Output};

use anyhow::{ensure, Context, Result};

use tdg::demo::AssetParts;
use tdg::oci::image::{Flavor, TarEntry};
use tdg::oci::manifest::Compression;

use super::cli::expect_exit;
use crate::fixtures;

/// Runs tdg with its own cache and the given environment, without the harness's CI=1.
fn tdg(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Result<Output> {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tdg"));
    c.env("TDG_CACHE", dir.join("cache"))
        .env("DOCKER_CONFIG", dir)
        .env_remove("CI")
        .env_remove("TDG_BLESS")
        .env_remove("TDG_MIRROR");
    for (k, v) in env {
        c.env(k, v);
    }
    Ok(c.args(args).output()?)
}

/// `tdg verify SPEC --image IMAGE` under CI (no golden is written), expecting exit `code`.
fn verify_in_ci(d: &Path, spec: &str, image: &str, code: i32) -> Result<String> {
    expect_exit(
        &tdg(d, &[("CI", "1")], &["verify", spec, "--image", image])?,
        code,
    )
}

/// The demo's spin-only parts written as `oci:LAYOUT:a`, and a copy built on another `date`.
fn built_and_rebuilt(layout: &Path, date: &str) -> Result<(AssetParts, AssetParts)> {
    let parts = AssetParts::new("spin-only", "arm64", 64 << 10)?;
    image(layout, "a", parts.entries())?;
    let mut later = parts.clone();
    later.report = later.report.replace(
        "Build Date: 2026-01-01T00:00:00Z",
        &format!("Build Date: {date}T00:00:00Z"),
    );
    Ok((parts, later))
}

fn image(layout: &Path, tag: &str, entries: Vec<TarEntry>) -> Result<()> {
    fixtures::layout_image(
        layout,
        tag,
        &[(entries, Compression::Gzip)],
        "linux/arm64",
        &Default::default(),
        Flavor::Oci,
    )?;
    Ok(())
}

pub fn golden_review_bless_and_ci() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let d = tmp.path();
    let layout = d.join("layout");
    let parts = AssetParts::new("spin-only", "arm64", 64 << 10)?;
    image(&layout, "base", parts.entries())?;
    let mut added = parts.entries();
    added.push(TarEntry::file(
        "assets/talos/arm64/boot/debug.bin",
        "leftover",
        0o755,
    ));
    image(&layout, "added", added)?;
    let removed: Vec<TarEntry> = parts
        .entries()
        .into_iter()
        .filter(|e| !e.path.ends_with("build-report.json"))
        .collect();
    image(&layout, "removed", removed)?;
    let mut changed = parts.clone();
    changed.vmlinuz[5000] ^= 1;
    image(&layout, "changed", changed.entries())?;

    std::fs::create_dir_all(d.join("specs"))?;
    let spec = d.join("specs/g.yaml");
    std::fs::write(&spec, format!("apiVersion: tdg/v1\nname: g\nimage: oci:{}:base\nexpect:\n  tree: {{golden: ../golden/g.tree}}\n", layout.display()))?;
    let spec = spec.to_str().context("utf-8")?;
    let golden = d.join("golden/g.tree");
    let new = d.join("golden/g.tree.new");

    // No golden yet: CI fails and writes nothing; a local run leaves a .new to review.
    let out = expect_exit(&tdg(d, &[("CI", "true")], &["verify", spec])?, 1)?;
    ensure!(
        out.contains("FAIL tree: golden") && out.contains("is missing"),
        "{out}"
    );
    ensure!(!golden.exists() && !new.exists(), "CI wrote a golden");
    expect_exit(&tdg(d, &[], &["verify", spec])?, 1)?;
    ensure!(new.exists() && !golden.exists(), "no .new for review");
    // Blessing writes the golden, removes the .new, and passes.
    let out = expect_exit(&tdg(d, &[("TDG_BLESS", "1")], &["verify", spec])?, 0)?;
    ensure!(
        out.contains("blessed") && golden.exists() && !new.exists(),
        "{out}"
    );
    // Written as a plain create writes (0666 less the umask), not as a private temporary.
    {
        use std::os::unix::fs::PermissionsExt;
        // SAFETY: umask only reads and restores this process's mask.
        let mask = unsafe {
            let m = libc::umask(0o022);
            libc::umask(m);
            m
        };
        let mode = std::fs::metadata(&golden)?.permissions().mode() & 0o777;
        ensure!(
            mode == 0o666 & !mask,
            "the golden is {mode:o}, umask {mask:o}"
        );
    }
    expect_exit(&tdg(d, &[], &["verify", spec])?, 0)?;

    // One change each: a short diff naming exactly that entry.
    for (tag, removed_lines, added_lines, needle) in [
        ("added", 0, 1, "+f 0755 0:0 8 "),
        ("removed", 1, 0, "-f 0644 0:0 "),
        // The kernel and, with it, the checksums file.
        ("changed", 2, 2, "assets/talos/arm64/boot/vmlinuz"),
    ] {
        let img = format!("oci:{}:{tag}", layout.display());
        let out = verify_in_ci(d, spec, &img, 1)?;
        ensure!(
            out.contains(&format!(
                "{removed_lines} line(s) removed, {added_lines} added"
            )) && out.contains(needle),
            "{tag}: {out}"
        );
        let diff_lines = out
            .lines()
            .filter(|l| {
                l.starts_with('+')
                    || l.starts_with('-')
                    || l.starts_with(' ')
                    || l.starts_with("@@")
            })
            .count();
        ensure!(
            diff_lines <= 12,
            "{tag}: the diff is not short ({diff_lines} lines):\n{out}"
        );
        ensure!(!new.exists(), "{tag}: CI wrote a .new");
    }
    // tdg bless accepts the new tree; CI refuses to.
    let added = format!("oci:{}:added", layout.display());
    let out = expect_exit(
        &tdg(d, &[("CI", "1")], &["bless", spec, "--image", &added])?,
        2,
    )?;
    ensure!(out.contains("goldens are never written in CI"), "{out}");
    expect_exit(&tdg(d, &[], &["bless", spec, "--image", &added])?, 0)?;
    ensure!(
        std::fs::read_to_string(&golden)?.contains("boot/debug.bin"),
        "bless did not update the golden"
    );
    verify_in_ci(d, spec, &added, 0)?;
    Ok(())
}

/// Redactions mask the fields they name, so a volatile report does not fail the tree.
pub fn redactions_mask_volatile_fields() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let d = tmp.path();
    let layout = d.join("layout");
    let (_, mut later) = built_and_rebuilt(&layout, "2026-02-02")?;
    later.report_json = later
        .report_json
        .map(|j| j.replace("2026-01-01", "2026-02-02"));
    image(&layout, "b", later.entries())?;
    let spec = d.join("g.yaml");
    std::fs::write(
        &spec,
        format!(
            "apiVersion: tdg/v1\nname: g\nimage: oci:{}:a\nexpect:\n  tree:\n    golden: g.tree\n    redactions:\n      dates: {{paths: [\"assets/talos/*/validation/*\", \"**/checksums.sha256\"], fields: [size, sha256]}}\n",
            layout.display()
        ),
    )?;
    let spec = spec.to_str().context("utf-8")?;
    expect_exit(&tdg(d, &[("TDG_BLESS", "1")], &["verify", spec])?, 0)?;
    let g = std::fs::read_to_string(d.join("g.tree"))?;
    ensure!(
        g.contains("f 0644 0:0 [dates] [dates] assets/talos/arm64/validation/build-report.txt"),
        "{g}"
    );
    let b = format!("oci:{}:b", layout.display());
    verify_in_ci(d, spec, &b, 0)?;
    Ok(())
}

/// A golden that no spec references is reported by name; `.new` files and the README are not.
pub fn unreferenced_golden_is_reported() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path();
    for f in ["README.md", "used.tree", "used.tree.new", "forgotten.tree"] {
        std::fs::write(dir.join(f), "x\n")?;
    }
    let used = vec![dir.join("used.tree")];
    let err = crate::world::unreferenced_goldens(dir, &used)
        .err()
        .context("a stray golden went unreported")?;
    ensure!(
        err.message() == Some("goldens no spec references: forgotten.tree"),
        "{:?}",
        err.message()
    );
    std::fs::remove_file(dir.join("forgotten.tree"))?;
    ensure!(
        crate::world::unreferenced_goldens(dir, &used).is_ok(),
        "a clean golden dir was reported"
    );
    Ok(())
}

/// A report golden ignores the keys it redacts and catches any other change.
pub fn report_golden_redacts_dates_and_catches_changes() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let d = tmp.path();
    let layout = d.join("layout");
    let (parts, later) = built_and_rebuilt(&layout, "2027-07-07")?;
    image(&layout, "later", later.entries())?;
    let mut other = parts.clone();
    other.report = other
        .report
        .replace("Talos Version: v1.11.5", "Talos Version: v1.11.6");
    image(&layout, "other", other.entries())?;
    let spec = d.join("r.yaml");
    std::fs::write(
        &spec,
        format!(
            "apiVersion: tdg/v1\nname: r\nimage: oci:{}:a\nexpect:\n  files:\n    - path: assets/talos/arm64/validation/build-report.txt\n      report: {{golden: r.report.txt, redact: [Build Date]}}\n",
            layout.display()
        ),
    )?;
    let spec = spec.to_str().context("utf-8")?;
    expect_exit(&tdg(d, &[("TDG_BLESS", "1")], &["verify", spec])?, 0)?;
    ensure!(
        std::fs::read_to_string(d.join("r.report.txt"))?.contains("Build Date: [redacted]"),
        "the date is not redacted"
    );
    verify_in_ci(d, spec, &format!("oci:{}:later", layout.display()), 0)?;
    let out = verify_in_ci(d, spec, &format!("oci:{}:other", layout.display()), 1)?;
    ensure!(
        out.contains("report::golden: differs from r.report.txt: 1 line(s) removed, 1 added")
            && out.contains("+Talos Version: v1.11.6"),
        "{out}"
    );
    Ok(())
}

/// Goldens stay inside the spec's repository: `/proc/self/environ` is never read into a
/// report, `../../elsewhere` gets no `.new` and is never blessed, and a symlink planted at the
/// `.new` path is replaced, not written through.
pub fn goldens_outside_the_repository_are_refused() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let d = tmp.path().join("repo");
    let layout = d.join("layout");
    let parts = AssetParts::new("spin-only", "arm64", 64 << 10)?;
    image(&layout, "a", parts.entries())?;
    std::fs::create_dir_all(d.join("specs"))?;
    let elsewhere = tmp.path().join("elsewhere");
    std::fs::create_dir_all(&elsewhere)?;
    std::fs::write(elsewhere.join("passwd"), "root:x:0:0\n")?;
    let spec_with = |name: &str, golden: &str| -> Result<String> {
        let spec = d.join(format!("specs/{name}.yaml"));
        std::fs::write(&spec, format!("apiVersion: tdg/v1\nname: {name}\nimage: oci:{}:a\nexpect:\n  tree: {{golden: '{golden}'}}\n", layout.display()))?;
        Ok(spec.to_str().context("utf-8")?.to_string())
    };
    let secret = "TDG_GOLDEN_SECRET=do-not-print";
    let spec = spec_with("environ", "/proc/self/environ")?;
    let out = expect_exit(
        &tdg(
            &d,
            &[("TDG_GOLDEN_SECRET", "do-not-print")],
            &["verify", &spec],
        )?,
        1,
    )?;
    ensure!(out.contains("outside the spec's repository"), "{out}");
    ensure!(!out.contains(secret), "the environment was echoed: {out}");
    let spec = spec_with("climb", "../../elsewhere/passwd")?;
    for args in [vec!["verify", spec.as_str()], vec!["bless", spec.as_str()]] {
        let out = expect_exit(&tdg(&d, &[], &args)?, 1)?;
        ensure!(out.contains("outside the spec's repository"), "{out}");
    }
    ensure!(
        std::fs::read_to_string(elsewhere.join("passwd"))? == "root:x:0:0\n"
            && !elsewhere.join("passwd.new").exists(),
        "a golden outside the repository was written"
    );
    // Inside the repository, but with its .new planted as a symlink to a file outside.
    std::fs::create_dir_all(d.join("golden"))?;
    std::os::unix::fs::symlink(elsewhere.join("passwd"), d.join("golden/in.tree.new"))?;
    let spec = spec_with("in", "../golden/in.tree")?;
    expect_exit(&tdg(&d, &[], &["verify", &spec])?, 1)?;
    ensure!(
        std::fs::read_to_string(elsewhere.join("passwd"))? == "root:x:0:0\n",
        "the review copy was written through a planted symlink"
    );
    ensure!(std::fs::symlink_metadata(d.join("golden/in.tree.new"))?.is_file());
    Ok(())
}

/// A golden of 1 GiB (sparse: it costs no disk) is refused by the tree check for its size, and
/// is not copied into an evidence bundle either.
pub fn an_oversized_golden_is_never_copied_into_evidence() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let d = tmp.path();
    expect_exit(
        &tdg(d, &[], &["demo", d.join("demo").to_str().context("utf-8")?])?,
        0,
    )?;
    let spec = d.join("demo/spec.yaml");
    std::fs::write(
        &spec,
        std::fs::read_to_string(&spec)?.replace(
            "  absent: [assets/talos/amd64]",
            "  absent: [assets/talos/amd64]\n  tree: {golden: big.tree}",
        ),
    )?;
    let big = std::fs::File::create(d.join("demo/big.tree"))?;
    big.set_len(1 << 30)?;
    let evidence = d.join("evidence");
    let out = tdg(
        d,
        &[("CI", "1")],
        &[
            "verify",
            spec.to_str().context("utf-8")?,
            "--evidence",
            evidence.to_str().context("utf-8")?,
        ],
    )?;
    let text = expect_exit(&out, 1)?;
    ensure!(text.contains("tree"), "{text}");
    let mut bytes = 0;
    let mut stack = vec![evidence.clone()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir)? {
            let e = e?;
            if e.file_type()?.is_dir() {
                stack.push(e.path());
            } else {
                ensure!(
                    e.file_name() != "golden.tree",
                    "the oversized golden was bundled"
                );
                bytes += e.metadata()?.len();
            }
        }
    }
    ensure!(bytes < 64 << 20, "the bundle holds {bytes} bytes");
    Ok(())
}
