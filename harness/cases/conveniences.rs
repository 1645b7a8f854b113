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
    let image = |tag: &str, motd: &str, tool_mode: u32, uid: u64| {
        fixtures::layout_image(
            &layout,
            tag,
            &[(
                vec![
                    E::dir("etc", 0o755),
                    E::file("etc/motd", motd, 0o644).owned(uid, 0),
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
    image("good", "welcome to talos", 0o755, 0)?;
    image("bad", "TOKEN=x password=y", 0o644, 1000)?;
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
