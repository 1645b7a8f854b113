//! The CLI's outputs: exit codes, JSON and JUnit reports read by independent parsers, the
//! schema, and the offline demo of the Quick start.

use std::process::Command;

use anyhow::{ensure, Context, Result};

use super::cli::{expect_exit, Tdg};
use crate::world;

fn spec_and_broken_tag() -> Result<(String, String, String)> {
    let w = world::world()?;
    let spec = world::repo_root()
        .join("specs/spin-only-arm64.yaml")
        .to_str()
        .context("utf-8")?
        .to_string();
    let mirror = format!("ghcr.io=http://{}", w.registry.addr);
    // The spin-tailscale image checked against the spin-only spec: labels and report differ.
    let wrong = format!(
        "{}/urmanac/talos-cozystack-spin-tailscale:v1.11.5",
        w.registry.addr
    );
    Ok((spec, mirror, wrong))
}

pub fn json_report_carries_every_outcome() -> Result<()> {
    let (spec, mirror, wrong) = spec_and_broken_tag()?;
    let tmp = tempfile::tempdir()?;
    let file = tmp.path().join("r.json");
    let tdg = Tdg::new()?;
    expect_exit(
        &tdg.run([
            "verify",
            &spec,
            "--mirror",
            &mirror,
            "--image",
            &wrong,
            "--format",
            "json",
            "--output",
            file.to_str().context("utf-8")?,
        ])?,
        1,
    )?;
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&file)?)?;
    ensure!(v["schema"] == "tdg.report/v1" && v["exit_code"] == 1, "{v}");
    let s = &v["specs"][0];
    ensure!(
        s["spec"] == "spin-only-arm64"
            && s["digest"]
                .as_str()
                .is_some_and(|d| d.starts_with("sha256:")),
        "{s}"
    );
    let outcomes = s["outcomes"].as_array().context("outcomes")?;
    ensure!(outcomes.len() == 29, "{} outcomes", outcomes.len());
    let failed: Vec<&str> = outcomes
        .iter()
        .filter(|o| o["status"] == "fail")
        .filter_map(|o| o["check"].as_str())
        .collect();
    let want = [
        "labels::org.opencontainers.image.title",
        "files::assets/talos/arm64/boot/initramfs.xz::initramfs::extensions",
        // tailscale's service in the layers, which waits for a config a worker never gets.
        "files::assets/talos/arm64/boot/initramfs.xz::initramfs::services",
        "files::assets/talos/arm64/validation/build-report.txt::report",
        // The boot shows tailscale's layer and its service, which a worker must not carry.
        "boot::extensions",
        "boot::services",
    ];
    ensure!(failed == want, "{failed:?}");
    Ok(())
}

/// The JSON report validates against its published schema, passing or failing, and the
/// schema is strict enough to reject a report that lacks a field.
pub fn json_report_validates_against_its_schema() -> Result<()> {
    let (spec, mirror, wrong) = spec_and_broken_tag()?;
    let schema: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(
        world::repo_root().join("schema/report-v1.schema.json"),
    )?)?;
    let validator = jsonschema::validator_for(&schema)
        .map_err(|e| anyhow::anyhow!("the report schema does not compile: {e}"))?;
    let tdg = Tdg::new()?;
    for (image, code) in [(None, 0), (Some(wrong.as_str()), 1)] {
        let mut args = vec![
            "verify",
            spec.as_str(),
            "--mirror",
            mirror.as_str(),
            "--format",
            "json",
        ];
        if let Some(i) = image {
            args.extend(["--image", i]);
        }
        let out = tdg.run(args)?;
        expect_exit(&out, code)?;
        let report: serde_json::Value = serde_json::from_slice(&out.stdout)?;
        let errors: Vec<String> = validator
            .iter_errors(&report)
            .map(|e| e.to_string())
            .collect();
        ensure!(errors.is_empty(), "report does not validate: {errors:?}");
        let mut broken = report.clone();
        broken["specs"][0]
            .as_object_mut()
            .context("spec object")?
            .remove("digest");
        ensure!(
            !validator.is_valid(&broken),
            "a report without digest validated"
        );
    }
    Ok(())
}

/// The JUnit report of the spin-tailscale image checked against the spin-only spec.
fn junit_of_the_wrong_image(dir: &std::path::Path) -> Result<std::path::PathBuf> {
    let (spec, mirror, wrong) = spec_and_broken_tag()?;
    let file = dir.join("r.xml");
    let out = file.to_str().context("utf-8")?;
    expect_exit(
        &Tdg::new()?.run([
            "verify", &spec, "--mirror", &mirror, "--image", &wrong, "--format", "junit",
            "--output", out,
        ])?,
        1,
    )?;
    Ok(file)
}

/// The JUnit file passes an XML Schema check with xmllint (schema/junit.xsd).
pub fn junit_report_passes_the_junit_schema() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let file = junit_of_the_wrong_image(tmp.path())?;
    let xsd = world::repo_root().join("schema/junit.xsd");
    let out = Command::new("xmllint")
        .arg("--noout")
        .arg("--schema")
        .arg(&xsd)
        .arg(&file)
        .output()
        .context("running xmllint (apt-get install libxml2-utils)")?;
    ensure!(
        out.status.success(),
        "xmllint: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The schema is not a rubber stamp: a testcase without a name fails it.
    let bad = tmp.path().join("bad.xml");
    std::fs::write(
        &bad,
        std::fs::read_to_string(&file)?.replacen("<testcase name=\"platform\"", "<testcase", 1),
    )?;
    let out = Command::new("xmllint")
        .arg("--noout")
        .arg("--schema")
        .arg(&xsd)
        .arg(&bad)
        .output()?;
    ensure!(!out.status.success(), "a testcase without a name validated");
    Ok(())
}

pub fn junit_report_parses_and_counts_failures() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let file = junit_of_the_wrong_image(tmp.path())?;
    // Python's XML parser, not ours, reads the file.
    let script = "import sys, xml.etree.ElementTree as E\nr = E.parse(sys.argv[1]).getroot()\ns = r.find('testsuite')\nprint(r.tag, s.get('name'), s.get('tests'), s.get('failures'), s.get('errors'), len(s.findall('testcase')), len(s.findall('testcase/failure')))";
    let out = crate::fixtures::output(Command::new("python3").arg("-c").arg(script).arg(&file))?;
    ensure!(
        out.trim() == "testsuites spin-only-arm64 29 6 0 29 6",
        "python read: {out}"
    );
    Ok(())
}

pub fn schema_command_prints_the_committed_schema() -> Result<()> {
    let out = Tdg::new()?.run(["schema"])?;
    let printed = expect_exit(&out, 0)?;
    let committed = std::fs::read_to_string(world::repo_root().join("schema/spec-v1.schema.json"))?;
    ensure!(
        printed == committed,
        "tdg schema differs from schema/spec-v1.schema.json"
    );
    let v: serde_json::Value = serde_json::from_str(&printed)?;
    ensure!(
        v["$schema"] == "https://json-schema.org/draft/2020-12/schema",
        "{}",
        v["$schema"]
    );
    Ok(())
}

pub fn demo_verifies_offline_and_a_broken_demo_fails() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path().join("demo");
    let tdg = Tdg::new()?;
    let out = expect_exit(&tdg.run(["demo".as_ref(), dir.as_os_str()])?, 0)?;
    ensure!(
        out.contains("17 passed, 0 failed, 0 errors, 0 skipped"),
        "{out}"
    );
    // The spec it wrote verifies on its own, and fails once the image is not what it says.
    let spec = dir.join("spec.yaml");
    expect_exit(&tdg.run(["verify".as_ref(), spec.as_os_str()])?, 0)?;
    let text = std::fs::read_to_string(&spec)?.replace("min: 512KiB", "min: 2MiB");
    std::fs::write(&spec, text)?;
    let out = expect_exit(&tdg.run(["verify".as_ref(), spec.as_os_str()])?, 1)?;
    ensure!(out.contains("FAIL files::assets/talos/arm64/boot/vmlinuz::size: size 1048576 bytes (1.0 MiB) is below the minimum 2097152 bytes (2.0 MiB)"), "{out}");
    Ok(())
}

pub fn tree_prints_sorted_listing() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    tdg::demo::write_asset_layout(&tmp.path().join("l"), "spin-only", "v1.11.5", 1 << 20)?;
    let out = Tdg::new()?.run([
        "tree",
        &format!("oci:{}:v1.11.5", tmp.path().join("l").display()),
    ])?;
    let text = expect_exit(&out, 0)?;
    let paths: Vec<&str> = text
        .lines()
        .map(|l| l.split(' ').nth(5).unwrap_or(""))
        .collect();
    let mut sorted = paths.clone();
    sorted.sort();
    ensure!(paths == sorted && paths.len() == 10, "{text}");
    let vmlinuz = text
        .lines()
        .find(|l| l.ends_with(" assets/talos/arm64/boot/vmlinuz"))
        .context("no vmlinuz")?;
    let expected = tdg::digest::Digest::of(&tdg::demo::kernel("arm64", 1 << 20));
    ensure!(
        vmlinuz
            == format!(
                "f 0644 0:0 1048576 {} assets/talos/arm64/boot/vmlinuz",
                expected.hex()
            ),
        "{vmlinuz}"
    );
    Ok(())
}

/// An evidence bundle re-checks offline to the same verdict, passing or failing, and a bundle
/// whose blobs or recorded report were altered does not.
pub fn evidence_bundle_rechecks_offline() -> Result<()> {
    let (spec, mirror, wrong) = spec_and_broken_tag()?;
    let tmp = tempfile::tempdir()?;
    for (name, image, code) in [("pass", None, 0), ("fail", Some(wrong.as_str()), 1)] {
        let dir = tmp.path().join(name);
        let d = dir.to_str().context("utf-8")?;
        let mut args = vec![
            "verify",
            spec.as_str(),
            "--mirror",
            mirror.as_str(),
            "--evidence",
            d,
        ];
        if let Some(i) = image {
            args.extend(["--image", i]);
        }
        expect_exit(&Tdg::new()?.run(args)?, code)?;
        let bundle = dir.join("spin-only-arm64");
        for f in [
            "spec.yaml",
            "golden.tree",
            "report.json",
            "tree.txt",
            "digests.json",
            "image/index.json",
        ] {
            ensure!(bundle.join(f).is_file(), "{name}: the bundle lacks {f}");
        }
        // A fresh cache and a mirror that goes nowhere: only the bundle can answer.
        let offline = Tdg::new()?;
        let out = offline.run([
            "verify",
            "--from-evidence",
            d,
            "--mirror",
            "ghcr.io=http://127.0.0.1:9",
        ])?;
        let text = expect_exit(&out, code)?;
        ensure!(
            text.contains("the re-checked verdict matches the evidence"),
            "{name}: {text}"
        );
    }
    // Alter the recorded verdict: the re-check says so and exits 2.
    let bundle = tmp.path().join("pass/spin-only-arm64");
    let recheck = || -> Result<String> {
        let out = Tdg::new()?.run([
            "verify",
            "--from-evidence",
            bundle.to_str().context("utf-8")?,
        ])?;
        expect_exit(&out, 2)
    };
    let report = std::fs::read_to_string(bundle.join("report.json"))?;
    std::fs::write(
        bundle.join("report.json"),
        report.replacen("\"status\": \"pass\"", "\"status\": \"fail\"", 1),
    )?;
    let text = recheck()?;
    ensure!(
        text.contains(
            "verdict differs: spin-only-arm64: 1 check (platform): recorded fail, now pass"
        ) && text.contains("report.json exit_code: recorded 0"),
        "{text}"
    );
    std::fs::write(bundle.join("report.json"), report)?;
    // Alter a layer blob: integrity fails, so the verdict cannot be reproduced.
    let digests: serde_json::Value =
        serde_json::from_slice(&std::fs::read(bundle.join("digests.json"))?)?;
    let layer = digests["layers"][0]
        .as_str()
        .context("layer")?
        .trim_start_matches("sha256:")
        .to_string();
    let blob = bundle.join("image/blobs/sha256").join(&layer);
    super::pull::flip_byte(&blob, std::fs::metadata(&blob)?.len() / 2)?;
    let text = recheck()?;
    ensure!(
        text.contains("digest mismatch") && text.contains("verdict differs"),
        "{text}"
    );
    Ok(())
}

/// On a terminal (a pseudo-terminal from `script`), downloads draw progress bars and the report
/// is coloured; NO_COLOR turns colour off, and CI turns the bars off.
pub fn terminal_bars_and_colour_follow_tty_no_color_and_ci() -> Result<()> {
    let w = world::world()?;
    let tmp = tempfile::tempdir()?;
    let spec = world::repo_root().join("specs/spin-only-arm64.yaml");
    let run = |name: &str, env: &str| -> Result<String> {
        let log = tmp.path().join(format!("{name}.log"));
        let cache = tmp.path().join(format!("cache-{name}"));
        let cmd = format!(
            "env -u CI -u NO_COLOR {env} TERM=xterm TDG_CACHE={} {} verify {} --mirror ghcr.io=http://{}",
            cache.display(),
            env!("CARGO_BIN_EXE_tdg"),
            spec.display(),
            w.registry.addr
        );
        let out = Command::new("script")
            .arg("-qec")
            .arg(&cmd)
            .arg(&log)
            .output()
            .context("running script (util-linux)")?;
        ensure!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(std::fs::read_to_string(&log)?)
    };
    let tty = run("tty", "")?;
    ensure!(
        tty.contains("blob sha256:") && tty.contains("MiB"),
        "no progress bar on a terminal:\n{tty}"
    );
    ensure!(
        tty.contains("\x1b[32mok  \x1b[0m"),
        "no colour on a terminal"
    );
    let plain = run("no-color", "NO_COLOR=1")?;
    ensure!(
        !plain.contains("\x1b[32m") && plain.contains("ok   platform"),
        "colour despite NO_COLOR"
    );
    let ci = run("ci", "CI=true")?;
    ensure!(!ci.contains("blob sha256:"), "a progress bar under CI");
    Ok(())
}
