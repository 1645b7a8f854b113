//! Paths inside an image: the one rule every reader applies to a tar entry's name, and where
//! Talos's boot assets live in the images tdg builds and checks.

use anyhow::{bail, Result};

/// Tar entry names are relative to the root: leading `/` and `./` are dropped. `..` is refused
/// outright; no image tool writes it and an extractor that honours it writes outside the root.
pub fn normalize(raw: &str) -> Result<String> {
    let mut parts = Vec::new();
    for c in raw.split('/') {
        match c {
            "" | "." => {}
            ".." => bail!("'{raw}' has a '..' component, which would escape the image root"),
            c => parts.push(c),
        }
    }
    Ok(parts.join("/"))
}

/// The asset root of one arch, with `{arch}` to fill in: as the images this project publishes
/// lay it out (design.md, "Images").
pub const ASSETS: &str = "assets/talos/{arch}";
/// The kernel, below the asset root.
pub const KERNEL: &str = "boot/vmlinuz";
/// The initramfs, below the asset root.
pub const INITRD: &str = "boot/initramfs.xz";

/// `assets/talos/<arch>`.
pub fn assets(arch: &str) -> String {
    ASSETS.replace("{arch}", arch)
}
