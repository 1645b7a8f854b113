//! The checks container-structure-test users expect, on a passing and a failing image:
//! `lacks`/`lacks_matching`, `owner`, `executable`, `size` as one exact size, and a
//! `description` shown with failures and as the JUnit case's system-out.

use std::path::Path;
use std::process::Command;

use anyhow::{ensure, Result};

use tdg::oci::image::{Flavor, TarEntry as E};
use tdg::oci::manifest::Compression;

use super::cli::expect_exit;
use crate::fixtures;

const SPEC: &str = r#"apiVersion: tdg/v1
name: cst
image: oci:@LAYOUT@:@TAG@
expect:
  files:
    - path: etc/motd
      description: the login banner, without build secrets
      size: 16B
      owner: "0:0"
      executable: false
      lacks: [TOKEN=]
      lacks_matching: ['(?i)password\s*=']
    - path: usr/bin/tool
      executable: true
      owner: "0:0"
"#;

fn run(dir: &Path, layout: &Path, tag: &str, format: &str) -> Result<std::process::Output> {
    let spec = dir.join(format!("{tag}.yaml"));
    std::fs::write(
        &spec,
        SPEC.replace("@LAYOUT@", &layout.display().to_string())
            .replace("@TAG@", tag),
    )?;
    Ok(Command::new(env!("CARGO_BIN_EXE_tdg"))
        .env("TDG_CACHE", dir.join("cache"))
        .args(["verify", "--format", format])
        .arg(&spec)
        .output()?)
}

pub fn container_structure_test_style_checks() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let layout = tmp.path().join("layout");
    let image = |tag: &str, motd: &str, motd_mode: u32, tool_mode: u32, uid: u64| {
        fixtures::layout_image(
            &layout,
            tag,
            &[(
                vec![
                    E::dir("etc", 0o755),
                    E::file("etc/motd", motd, motd_mode).owned(uid, 0),
                    E::dir("usr", 0o755),
                    E::dir("usr/bin", 0o755),
                    E::file("usr/bin/tool", "#!/bin/sh\n", tool_mode),
                ],
                Compression::Gzip,
            )],
            "linux/amd64",
            &Default::default(),
            Flavor::Oci,
        )
    };
    image("good", "welcome to talos", 0o644, 0o755, 0)?;
    // Every check of the spec fails on this one: `executable` both ways.
    image("bad", "TOKEN=x password=y", 0o755, 0o644, 1000)?;
    let out = expect_exit(&run(tmp.path(), &layout, "good", "human")?, 0)?;
    for check in ["lacks", "lacks_matching", "owner", "executable", "size"] {
        ensure!(
            out.contains(&format!("files::etc/motd::{check}")),
            "{check}: {out}"
        );
    }
    let out = expect_exit(&run(tmp.path(), &layout, "bad", "human")?, 1)?;
    for want in [
        "files::etc/motd::lacks: contains 'TOKEN='",
        "files::etc/motd::lacks_matching: matches /(?i)password\\s*=/ at byte 8",
        "files::etc/motd::owner: expected owner 0:0, found 1000:0",
        "files::etc/motd::size: size 18 bytes is not the expected 16 bytes",
        "files::usr/bin/tool::executable: not executable (mode 0644)",
        "files::etc/motd::executable: executable (mode 0755)",
        "(the login banner, without build secrets)",
    ] {
        ensure!(out.contains(want), "missing {want:?} in:\n{out}");
    }
    let junit = String::from_utf8(run(tmp.path(), &layout, "bad", "junit")?.stdout)?;
    ensure!(
        junit.contains("<system-out>the login banner, without build secrets</system-out>"),
        "{junit}"
    );
    Ok(())
}

/// `-q` keeps failures and the summary; `--color always|never` decides colour off a
/// terminal; `--output` writes the file in `--format` and the human report to stderr.
pub fn quiet_color_and_a_file_report_beside_the_human_one() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let layout = tmp.path().join("layout");
    fixtures::layout_image(
        &layout,
        "bad",
        &[(
            vec![
                E::dir("etc", 0o755),
                E::file("etc/motd", "TOKEN=x password=y", 0o644),
                E::dir("usr", 0o755),
                E::dir("usr/bin", 0o755),
                E::file("usr/bin/tool", "#!/bin/sh\n", 0o755),
            ],
            Compression::Gzip,
        )],
        "linux/amd64",
        &Default::default(),
        Flavor::Oci,
    )?;
    let spec = tmp.path().join("bad.yaml");
    std::fs::write(
        &spec,
        SPEC.replace("@LAYOUT@", &layout.display().to_string())
            .replace("@TAG@", "bad"),
    )?;
    let tdg = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_tdg"))
            .env("TDG_CACHE", tmp.path().join("cache"))
            .env_remove("NO_COLOR")
            .args(args)
            .arg(&spec)
            .output()
    };
    let out = expect_exit(&tdg(&["verify", "-q"])?, 1)?;
    ensure!(out.contains("FAIL files::etc/motd::lacks"), "{out}");
    ensure!(!out.contains("ok   "), "quiet printed passes:\n{out}");
    ensure!(out.contains("4 passed, 3 failed"), "{out}");
    let coloured = expect_exit(&tdg(&["verify", "--color", "always"])?, 1)?;
    ensure!(
        coloured.contains("\u{1b}[31;1mFAIL"),
        "no colour with --color always"
    );
    let plain = expect_exit(&tdg(&["verify", "--color", "never"])?, 1)?;
    ensure!(!plain.contains('\u{1b}'), "colour with --color never");
    let file = tmp.path().join("report.xml");
    let o = tdg(&[
        "verify",
        "--format",
        "junit",
        "--output",
        file.to_str().unwrap_or(""),
    ])?;
    ensure!(o.status.code() == Some(1));
    let (stdout, stderr) = (String::from_utf8(o.stdout)?, String::from_utf8(o.stderr)?);
    ensure!(stdout.is_empty(), "stdout with --output: {stdout}");
    ensure!(
        stderr.contains("FAIL files::etc/motd::lacks") && stderr.contains("3 failed"),
        "{stderr}"
    );
    ensure!(
        std::fs::read_to_string(&file)?.contains("<testsuites"),
        "not JUnit"
    );
    Ok(())
}

/// Shell completions that the shells themselves load and complete with, and a man page groff
/// renders: `tdg completions bash|zsh|fish|elvish|powershell`, `tdg man`.
pub fn completions_and_a_man_page() -> Result<()> {
    let tdg = super::cli::Tdg::new()?;
    let bash = expect_exit(&tdg.run(["completions", "bash"])?, 0)?;
    let tmp = tempfile::tempdir()?;
    let script = tmp.path().join("tdg.bash");
    std::fs::write(&script, &bash)?;
    // bash itself sources it and completes `tdg ver` and `tdg inspect i`.
    let out = crate::fixtures::output(Command::new("bash").arg("-c").arg(format!(
        "source {}; COMP_WORDS=(tdg ver); COMP_CWORD=1; _tdg tdg ver tdg; echo \"${{COMPREPLY[@]}}\"; \
         COMP_WORDS=(tdg inspect i); COMP_CWORD=2; _tdg tdg i inspect; echo \"${{COMPREPLY[@]}}\"",
        script.display()
    )))?;
    let lines: Vec<&str> = out.lines().collect();
    ensure!(
        lines.len() == 2
            && lines[0].split_whitespace().any(|w| w == "verify")
            && lines[1].split_whitespace().any(|w| w == "initramfs"),
        "bash completed: {out:?}"
    );
    for shell in ["zsh", "fish", "elvish", "powershell"] {
        let s = expect_exit(&tdg.run(["completions", shell])?, 0)?;
        ensure!(
            s.contains("verify") && s.contains("inspect"),
            "{shell}: {s:.200}"
        );
    }
    let man = expect_exit(&tdg.run(["man"])?, 0)?;
    let page = tmp.path().join("tdg.1");
    std::fs::write(&page, &man)?;
    let out = Command::new("groff")
        .args(["-man", "-Tutf8", "-ww", "-z"])
        .arg(&page)
        .output()?;
    ensure!(
        out.status.success() && out.stderr.is_empty(),
        "groff: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    ensure!(
        man.starts_with(".ie") && man.contains(".TH tdg 1") && man.contains("verify"),
        "{man:.300}"
    );
    Ok(())
}

/// `tdg digest` and `tdg ls`, crane's habits, against skopeo on a real registry: the digest of
/// an index and of one of its platforms' manifests, and a repository of 1,201 tags listed
/// through the registry's pagination (`Link: rel="next"`, 1,000 a page), in the same order
/// `skopeo list-tags` gives. A tag is refused where a repository is meant.
pub fn digest_and_ls_agree_with_skopeo() -> Result<()> {
    let reg = crate::registry::Registry::start(None)?;
    let tmp = tempfile::tempdir()?;
    let layout = super::pull::three_platform_index(tmp.path(), Flavor::Oci)?;
    let image = format!("{}/crane/index:v1", reg.addr);
    fixtures::push_with_skopeo(&layout, "t", &image)?;
    let tdg = super::cli::Tdg::new()?;
    let mirror = format!("{}=http://{}", reg.addr, reg.addr);
    let run = |args: &[&str]| -> Result<String> {
        let mut all = args.to_vec();
        all.extend(["--mirror", &mirror]);
        let o = tdg.run(&all)?;
        expect_exit(&o, 0)?;
        Ok(String::from_utf8(o.stdout)?)
    };
    let top = fixtures::skopeo_digest(&image)?;
    ensure!(run(&["digest", &image])? == format!("{top}\n"));
    // The arm64 manifest's digest, as the index skopeo reads lists it.
    let raw = Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{image}"))
        .output()?;
    let index: serde_json::Value = serde_json::from_slice(&raw.stdout)?;
    let arm64 = index["manifests"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|m| m["platform"]["architecture"] == "arm64")
        .and_then(|m| m["digest"].as_str())
        .map(str::to_string);
    let got = run(&["digest", "--platform", "linux/arm64", &image])?;
    ensure!(Some(got.trim().to_string()) == arm64, "{got} vs {arm64:?}");
    // Pinned by digest, the same answer; a layout too.
    ensure!(run(&["digest", &format!("{}/crane/index@{top}", reg.addr)])?.trim() == top);
    let l = format!("oci:{}:t", layout.display());
    ensure!(run(&["digest", &l])?.trim() == top);

    // 1,200 more tags on one manifest, PUT by curl as any client would.
    let manifest = tmp.path().join("manifest.json");
    std::fs::write(&manifest, &raw.stdout)?;
    let media = index["mediaType"]
        .as_str()
        .unwrap_or("application/vnd.oci.image.index.v1+json");
    let urls: Vec<String> = (0..1200)
        .map(|i| format!("http://{}/v2/crane/index/manifests/t{i:04}", reg.addr))
        .collect();
    for chunk in urls.chunks(400) {
        fixtures::run(
            Command::new("curl")
                .args(["-fsS", "--parallel", "-X", "PUT", "-o", "/dev/null"])
                .args(["-H", &format!("Content-Type: {media}")])
                .arg("--data-binary")
                .arg(format!("@{}", manifest.display()))
                .args(chunk),
        )?;
    }
    let listed = run(&["ls", &format!("{}/crane/index", reg.addr)])?;
    let skopeo = Command::new("skopeo")
        .args(["list-tags", "--tls-verify=false"])
        .arg(format!("docker://{}/crane/index", reg.addr))
        .output()?;
    ensure!(skopeo.status.success(), "skopeo list-tags failed");
    let tags: serde_json::Value = serde_json::from_slice(&skopeo.stdout)?;
    let want: Vec<&str> = tags["Tags"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t.as_str())
        .collect();
    let got: Vec<&str> = listed.lines().collect();
    ensure!(
        got.len() == 1201 && got == want,
        "{} tags vs skopeo's {}",
        got.len(),
        want.len()
    );
    ensure!(run(&["ls", &format!("oci:{}", layout.display())])? == "t\n");
    let o = tdg.run(["ls", &image, "--mirror", &mirror])?;
    let said = expect_exit(&o, 2)?;
    ensure!(
        said.contains("name a repository without a tag or digest"),
        "{said}"
    );
    Ok(())
}
