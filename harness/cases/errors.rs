//! Faults that stop evaluation: each a short error naming what failed, and exit 2.

use anyhow::{ensure, Context, Result};

use super::cli::{expect_exit, Tdg};
use crate::world;

fn spec() -> Result<String> {
    Ok(world::repo_root()
        .join("specs/spin-only-arm64.yaml")
        .to_str()
        .context("utf-8")?
        .to_string())
}

pub fn connection_refused_names_the_host() -> Result<()> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let mirror = format!("ghcr.io=http://127.0.0.1:{port}");
    let out = expect_exit(
        &Tdg::new()?.run(["verify", &spec()?, "--mirror", &mirror])?,
        2,
    )?;
    ensure!(out.contains(&format!("error: registry 127.0.0.1:{port}: fetching manifest urmanac/talos-cozystack-spin-only:v1.11.5: cannot connect")), "{out}");
    ensure!(out.lines().count() < 8, "error output is not short:\n{out}");
    Ok(())
}

pub fn unknown_tag_is_a_clear_error() -> Result<()> {
    let w = world::world()?;
    let image = format!(
        "{}/urmanac/talos-cozystack-spin-only:v9.9.9",
        w.registry.addr
    );
    let out = expect_exit(
        &Tdg::new()?.run(["verify", &spec()?, "--image", &image])?,
        2,
    )?;
    ensure!(
        out.contains("MANIFEST_UNKNOWN") && out.contains("v9.9.9"),
        "{out}"
    );
    Ok(())
}

pub fn unknown_repository_is_a_clear_error() -> Result<()> {
    let w = world::world()?;
    let mirror = format!("ghcr.io=http://{}/nothing-here", w.registry.addr);
    let out = expect_exit(
        &Tdg::new()?.run(["verify", &spec()?, "--mirror", &mirror])?,
        2,
    )?;
    ensure!(
        out.contains("NAME_UNKNOWN") || out.contains("MANIFEST_UNKNOWN"),
        "{out}"
    );
    Ok(())
}

pub fn pinned_digest_reference_that_does_not_exist_is_an_error() -> Result<()> {
    let w = world::world()?;
    let image = format!(
        "{}/urmanac/talos-cozystack-spin-only@sha256:{}",
        w.registry.addr,
        "0".repeat(64)
    );
    let out = expect_exit(
        &Tdg::new()?.run(["verify", &spec()?, "--image", &image])?,
        2,
    )?;
    ensure!(out.contains("MANIFEST_UNKNOWN"), "{out}");
    Ok(())
}

pub fn bad_spec_names_file_line_column_and_exits_2() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let path = world::write_spec(tmp.path(), "bad", "apiVersion: tdg/v1\nname: bad\nimage: ghcr.io/a/b:c\nexpect:\n  files:\n    - path: x\n      sha265: abc\n")?;
    let out = expect_exit(&Tdg::new()?.run(["verify".as_ref(), path.as_os_str()])?, 2)?;
    ensure!(
        out.contains(&format!(
            "tdg: error: {}:7:7: unknown field `sha265`",
            path.display()
        )) && out.contains("(did you mean `sha256`?)")
            && out.contains(&format!("--> {}:7:7\n", path.display()))
            && out.contains("7 |       sha265: abc\n"),
        "{out}"
    );
    // A size of the wrong shape names the forms it may take, in YAML's words.
    let text = "apiVersion: tdg/v1\nname: bad\nimage: ghcr.io/a/b:c\nexpect:\n  files:\n    - path: x\n      size: [1, 2]\n";
    let path = world::write_spec(tmp.path(), "shape", text)?;
    let out = expect_exit(&Tdg::new()?.run(["verify".as_ref(), path.as_os_str()])?, 2)?;
    ensure!(
        out.contains(":7:7: a list, expected a size like 512KiB (or bytes, 4096), or {min, max}")
            && !out.contains("SizeSpec"),
        "{out}"
    );
    // The same spec on standard input (`-`): named <stdin>, read once.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_tdg"))
        .args(["verify", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    std::io::Write::write_all(child.stdin.as_mut().context("stdin")?, text.as_bytes())?;
    drop(child.stdin.take());
    let out = expect_exit(&child.wait_with_output()?, 2)?;
    ensure!(
        out.contains("tdg: error: <stdin>:7:7: a list") && out.contains("--> <stdin>:7:7"),
        "{out}"
    );
    let out = expect_exit(&Tdg::new()?.run(["verify", "-", "-"])?, 2)?;
    ensure!(out.contains("can be given once"), "{out}");
    Ok(())
}

pub fn missing_spec_file_exits_2() -> Result<()> {
    let out = expect_exit(&Tdg::new()?.run(["verify", "/nonexistent/spec.yaml"])?, 2)?;
    ensure!(
        out.contains("/nonexistent/spec.yaml") && out.contains("cannot read spec"),
        "{out}"
    );
    Ok(())
}
