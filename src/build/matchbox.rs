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
