//! Debian's arm64 cloud kernel package, unpacked by `.ci/run` (`apt-get download` of the
//! package `linux-image-cloud-arm64` depends on, then `dpkg-deb -x`): real kernel modules with
//! real `.modinfo`, so `depmod` reads what it reads on a real build. Looked up in
//! `$TDG_DEBIAN_DIR` or `target/debian` beside the manifest.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::{anyhow, bail, Context, Result};

pub struct Kernel {
    /// The unpacked package.
    pub root: PathBuf,
    /// The kernel release, the one directory under `lib/modules`.
    pub kver: String,
}

impl Kernel {
    /// A module of the package, by its path below `lib/modules/<kver>/`.
    pub fn module(&self, rel: &str) -> Result<Vec<u8>> {
        let p = self.modules().join(rel);
        std::fs::read(&p).with_context(|| format!("reading {}", p.display()))
    }

    pub fn modules(&self) -> PathBuf {
        self.root.join("lib/modules").join(&self.kver)
    }
}

fn dir() -> PathBuf {
    std::env::var_os("TDG_DEBIAN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/debian"))
}

/// cosign from Debian's newer suite (`.ci/fetch-newer`: bookworm has none).
pub fn cosign() -> Result<PathBuf> {
    let p = dir().join("cosign/usr/bin/cosign");
    if !p.is_file() {
        bail!(
            "no cosign at {} (bash .ci/run downloads Debian's cosign package)",
            p.display()
        );
    }
    Ok(p)
}

/// busybox-static's binary for `arch`, unpacked by `.ci/fetch-arm64`.
pub fn busybox(arch: &str) -> Result<Vec<u8>> {
    let p = dir().join(format!("busybox-{arch}/bin/busybox"));
    std::fs::read(&p).with_context(|| {
        format!(
            "no {arch} busybox at {} (bash .ci/run downloads busybox-static:{arch})",
            p.display()
        )
    })
}

/// systemd-boot-efi:arm64's UKI stub (`linuxaa64.efi.stub`), unpacked by `.ci/run`.
pub fn arm64_uki_stub() -> Result<PathBuf> {
    let p = dir().join("systemd-boot-efi-arm64/usr/lib/systemd/boot/efi/linuxaa64.efi.stub");
    if !p.is_file() {
        bail!(
            "no arm64 UKI stub at {} (bash .ci/run downloads systemd-boot-efi:arm64)",
            p.display()
        );
    }
    Ok(p)
}

/// The arm64 EFI zboot kernel (zstd payload, as Talos ships) that `.ci/build-zboot` builds from
/// Debian's `linux-source-6.1`: `vmlinuz.efi`, and the source package's version.
pub fn zboot_kernel() -> Result<(PathBuf, String)> {
    let d = dir().join("zboot-arm64");
    let p = d.join("vmlinuz.efi");
    if !p.is_file() {
        bail!(
            "no zboot kernel at {} (bash .ci/build-zboot builds it; .ci/run runs that)",
            p.display()
        );
    }
    let version = std::fs::read_to_string(d.join("source-version")).unwrap_or_default();
    Ok((p, version.trim().to_string()))
}

impl Kernel {
    /// The kernel image (`boot/vmlinuz-<kver>`): an arm64 `Image` with the EFI stub.
    pub fn vmlinuz(&self) -> Result<Vec<u8>> {
        let p = self.root.join(format!("boot/vmlinuz-{}", self.kver));
        std::fs::read(&p).with_context(|| format!("reading {}", p.display()))
    }
}

/// The unpacked `linux-image-*-cloud-amd64`, or why it is not there.
pub fn amd64_kernel() -> Result<&'static Kernel> {
    static K: OnceLock<Result<Kernel, String>> = OnceLock::new();
    K.get_or_init(|| find(&dir().join("linux-image-cloud-amd64")).map_err(|e| format!("{e:#}")))
        .as_ref()
        .map_err(|e| anyhow!("{e}"))
}

/// The unpacked `linux-image-*-cloud-arm64`, or why it is not there.
pub fn arm64_kernel() -> Result<&'static Kernel> {
    static K: OnceLock<Result<Kernel, String>> = OnceLock::new();
    K.get_or_init(|| find(&dir().join("linux-image-cloud-arm64")).map_err(|e| format!("{e:#}")))
        .as_ref()
        .map_err(|e| anyhow!("{e}"))
}

fn find(root: &Path) -> Result<Kernel> {
    let modules = root.join("lib/modules");
    let kvers: Vec<String> = std::fs::read_dir(&modules)
        .with_context(|| {
            format!(
                "no Debian arm64 kernel at {} (bash .ci/run downloads it: apt-get download linux-image-<version>-cloud-arm64, dpkg-deb -x)",
                root.display()
            )
        })?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    match kvers.as_slice() {
        [k] => Ok(Kernel {
            root: root.to_path_buf(),
            kver: k.clone(),
        }),
        _ => bail!(
            "{} holds {kvers:?}, not one kernel release",
            modules.display()
        ),
    }
}
