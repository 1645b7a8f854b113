//! Matchbox output in the shape CozyStack uses: `assets/` (served as `/assets/`), a profile
//! that boots `/assets/vmlinuz` with initrd `/assets/initramfs.xz` and the Talos kernel
//! arguments, and a group selecting it. With several arches, assets and profiles are per arch
//! and groups select on `arch`.

use std::fs;
use std::path::Path;

use anyhow::{Context, Result};
use serde_json::json;

use super::assets::Written;
use crate::spec::Arch;

pub fn write(
    dir: &Path,
    name: &str,
    arch: Arch,
    multi: bool,
    root: &Path,
    files: &[Written],
    kernel_args: &[String],
) -> Result<()> {
    let a = arch.as_str();
    let (assets, url, id) = if multi {
        (
            dir.join("assets").join(a),
            format!("/assets/{a}"),
            format!("{name}-{a}"),
        )
    } else {
        (dir.join("assets"), "/assets".to_string(), name.to_string())
    };
    for sub in ["profiles", "groups"] {
        fs::create_dir_all(dir.join(sub))?;
    }
    fs::create_dir_all(&assets)?;
    let mut sums = String::new();
    for (rel, served) in [
        ("boot/vmlinuz", "vmlinuz"),
        ("boot/initramfs.xz", "initramfs.xz"),
    ] {
        fs::copy(root.join(rel), assets.join(served))
            .with_context(|| format!("copying {rel} to {}", assets.display()))?;
        let w = files
            .iter()
            .find(|f| f.rel == rel)
            .context("asset not written")?;
        sums += &format!("{}  ./{served}\n", w.digest.hex());
    }
    fs::write(assets.join("checksums.sha256"), sums)?;
    let profile = json!({
        "id": id,
        "name": id,
        "boot": {"kernel": format!("{url}/vmlinuz"), "initrd": [format!("{url}/initramfs.xz")], "args": kernel_args},
    });
    let mut group = json!({"id": id, "name": id, "profile": id});
    if multi {
        group["selector"] = json!({"arch": a});
    }
    fs::write(
        dir.join("profiles").join(format!("{id}.json")),
        serde_json::to_string_pretty(&profile)? + "\n",
    )?;
    fs::write(
        dir.join("groups").join(format!("{id}.json")),
        serde_json::to_string_pretty(&group)? + "\n",
    )?;
    Ok(())
}

/// A matchbox profile read back: the files it boots, found under `dir`, and its arguments.
#[derive(Debug)]
pub struct Profile {
    pub kernel: std::path::PathBuf,
    pub initrd: Option<std::path::PathBuf>,
    pub args: Vec<String>,
}

/// `dir/profiles/<name>.json` (or the only profile there), with its `/assets/...` paths
/// resolved under `dir`.
pub fn read_profile(dir: &Path, name: Option<&str>) -> Result<Profile> {
    let profiles = dir.join("profiles");
    let path = match name {
        Some(n) => profiles.join(format!("{n}.json")),
        None => {
            let found: Vec<_> = fs::read_dir(&profiles)
                .with_context(|| format!("reading {}", profiles.display()))?
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "json"))
                .collect();
            match found.as_slice() {
                [one] => one.clone(),
                _ => anyhow::bail!(
                    "{} holds {} profiles; name one with --profile",
                    profiles.display(),
                    found.len()
                ),
            }
        }
    };
    let text = crate::located::read_capped(&path, crate::limits::MAX_MANIFEST)?;
    let v: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{}: not JSON", path.display()))?;
    let under = |p: &str| -> Result<std::path::PathBuf> {
        let rel = crate::image_path::normalize(p)?;
        Ok(dir.join(rel))
    };
    let kernel = under(
        v["boot"]["kernel"]
            .as_str()
            .with_context(|| format!("{}: no boot.kernel", path.display()))?,
    )?;
    let initrd = v["boot"]["initrd"][0].as_str().map(under).transpose()?;
    let args = v["boot"]["args"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    Ok(Profile {
        kernel,
        initrd,
        args,
    })
}
