//! Registries that need credentials: basic auth from a Docker config file.

use anyhow::{ensure, Context, Result};

use super::cli::{expect_exit, Tdg};
use crate::fixtures;
use crate::registry::{write_docker_config, Auth, Registry};
use crate::world;

/// A registry that wants `user:password`, holding the demo's spin-only image as `repo_tag`.
fn private_registry(
    (user, password): (&str, &str),
    tmp: &std::path::Path,
    repo_tag: &str,
) -> Result<(Registry, String)> {
    let reg = Registry::start(Some(Auth { user, password }))?;
    let layout = tmp.join("l");
    tdg::demo::write_asset_layout(&layout, "spin-only", "v1.11.5", 64 << 10)?;
    let image = format!("{}/{repo_tag}", reg.addr);
    let creds = format!("{user}:{password}");
    fixtures::push_with_skopeo_as(&layout, "v1.11.5", &image, &creds)?;
    Ok((reg, image))
}

pub fn basic_auth_credentials_come_from_the_docker_config() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let (reg, image) = private_registry(
        ("release", "s3cret"),
        tmp.path(),
        "urmanac/talos-cozystack-spin-only:v1.11.5",
    )?;
    let spec = world::write_spec(tmp.path(), "auth", &format!("apiVersion: tdg/v1\nname: auth\nimage: {image}\nexpect:\n  files:\n    - path: assets/talos/arm64/boot/vmlinuz\n      type: file\n"))?;
    let spec = spec.to_str().context("utf-8")?;

    let tdg = Tdg::new()?;
    write_docker_config(&tdg.docker_config, &reg.addr, "release", "s3cret")?;
    expect_exit(&tdg.run(["verify", spec])?, 0)?;

    let wrong = Tdg::new()?;
    write_docker_config(&wrong.docker_config, &reg.addr, "release", "wrong")?;
    let out = expect_exit(&wrong.run(["verify", spec])?, 2)?;
    ensure!(
        out.contains(&format!("registry {}", reg.addr)) && out.contains("credentials rejected"),
        "{out}"
    );

    let anonymous = Tdg::new()?;
    let out = expect_exit(&anonymous.run(["verify", spec])?, 2)?;
    ensure!(
        out.contains(&format!("registry {}", reg.addr)) && out.contains("401"),
        "{out}"
    );
    Ok(())
}

pub fn malformed_docker_config_is_a_clear_error() -> Result<()> {
    let w = world::world()?;
    let tdg = Tdg::new()?;
    std::fs::write(
        tdg.docker_config.join("config.json"),
        r#"{"auths": {"HOST": {"auth": "not base64!"}}}"#.replace("HOST", &w.registry.addr),
    )?;
    let spec = world::repo_root().join("specs/spin-only-arm64.yaml");
    let out = expect_exit(&tdg.verify_through(&spec, &w.registry.addr)?, 2)?;
    ensure!(
        out.contains(&format!("credentials for {}", w.registry.addr)),
        "{out}"
    );
    Ok(())
}

/// `credsStore` in the Docker config runs `docker-credential-<name> get`, as Docker does.
pub fn credential_helper_supplies_the_password() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let (_reg, image) = private_registry(("helper", "from-helper"), tmp.path(), "x/helper:v1")?;
    let bin = tmp.path().join("bin");
    std::fs::create_dir(&bin)?;
    let helper = bin.join("docker-credential-tdgtest");
    std::fs::write(&helper, "#!/bin/sh\nread host\necho \"{\\\"ServerURL\\\":\\\"$host\\\",\\\"Username\\\":\\\"helper\\\",\\\"Secret\\\":\\\"from-helper\\\"}\"\n")?;
    std::fs::set_permissions(&helper, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
    let tdg = Tdg::new()?;
    std::fs::write(
        tdg.docker_config.join("config.json"),
        r#"{"credsStore": "tdgtest"}"#,
    )?;
    let spec = world::write_spec(
        tmp.path(),
        "helper",
        &format!("apiVersion: tdg/v1\nname: helper\nimage: {image}\nexpect:\n  absent: [etc]\n"),
    )?;
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tdg"))
        .env("TDG_CACHE", &tdg.cache)
        .env("DOCKER_CONFIG", &tdg.docker_config)
        .env("PATH", path)
        .arg("verify")
        .arg(&spec)
        .output()?;
    expect_exit(&out, 0)?;
    Ok(())
}
