//! The kernel-module side of the imager (siderolabs/talos
//! `internal/pkg/extensions/kernel_modules.go`): the base rootfs's `/usr/lib/modules` taken out
//! of its squashfs, every extension's modules copied over it, kmod's `depmod` run on the tree
//! with `search extras built-in` (`hack/extra-modules.conf`), and the resulting `modules.*`
//! files gathered for the `modules.dep` layer. Modules built for another kernel are refused
//! before any of that: the imager would silently drop them (it copies only the base's kernel
//! version directory), and the node could not load them.

use std::fs::{self, File};
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use super::assemble::{Content, FileSpec};

/// `hack/extra-modules.conf`, which the imager passes to depmod.
pub const DEPMOD_CONF: &str = "search extras built-in\n";

/// Copies the part of a squashfs under `prefix` (e.g. `usr/lib/modules`) into `dest`, keeping
/// its paths. Returns how many files it wrote.
pub fn extract_squashfs(sqsh: &Path, prefix: &str, dest: &Path) -> Result<usize> {
    use backhand::{FilesystemReader, InnerNode};
    let f = File::open(sqsh).with_context(|| format!("opening {}", sqsh.display()))?;
    let fs = FilesystemReader::from_reader(BufReader::new(f))
        .with_context(|| format!("{}: not a squashfs tdg can read", sqsh.display()))?;
    let prefix = prefix.trim_matches('/');
    let mut written = 0;
    for node in fs.files() {
        let rel = node.fullpath.to_string_lossy();
        let rel = rel.trim_start_matches('/');
        if rel != prefix && !rel.starts_with(&format!("{prefix}/")) {
            continue;
        }
        // Paths come from the squashfs: none may climb out of `dest`.
        if rel.split('/').any(|c| c == ".." || c.is_empty()) {
            bail!("{}: entry /{rel} escapes the tree", sqsh.display());
        }
        // Nor may a symlink the squashfs made earlier carry a later entry outside.
        through_symlink(dest, rel).with_context(|| format!("{}: entry /{rel}", sqsh.display()))?;
        let out = dest.join(rel);
        match &node.inner {
            InnerNode::Dir(_) => fs::create_dir_all(&out)?,
            InnerNode::File(file) => {
                if let Some(parent) = out.parent() {
                    fs::create_dir_all(parent)?;
                }
                let mut w = File::create(&out)?;
                io::copy(&mut fs.file(file).reader(), &mut w)
                    .with_context(|| format!("{}: reading /{rel}", sqsh.display()))?;
                written += 1;
            }
            InnerNode::Symlink(l) => {
                if let Some(parent) = out.parent() {
                    fs::create_dir_all(parent)?;
                }
                std::os::unix::fs::symlink(&l.link, &out)?;
            }
            _ => {}
        }
    }
    Ok(written)
}

/// Refuses a path under `dest` whose parent directories include a symlink (or whose last
/// component already exists), so writing it cannot leave `dest`.
fn through_symlink(dest: &Path, rel: &str) -> Result<()> {
    let mut at = dest.to_path_buf();
    let parts: Vec<&str> = rel.split('/').collect();
    for (i, part) in parts.iter().enumerate() {
        at.push(part);
        match fs::symlink_metadata(&at) {
            Ok(m) if m.file_type().is_symlink() => {
                bail!("goes through the symlink /{}", parts[..=i].join("/"))
            }
            Ok(m) if i + 1 == parts.len() && !m.is_dir() => bail!("is in the squashfs twice"),
            Ok(_) => {}
            Err(_) => break,
        }
    }
    Ok(())
}

/// The one kernel version directory under `modules` (`<tree>/usr/lib/modules`), as the
/// imager requires ("invalid kernel modules path" otherwise).
pub fn kernel_version(modules: &Path) -> Result<String> {
    let mut dirs = Vec::new();
    for e in fs::read_dir(modules).with_context(|| format!("reading {}", modules.display()))? {
        let e = e?;
        dirs.push((
            e.file_name().to_string_lossy().into_owned(),
            e.file_type()?.is_dir(),
        ));
    }
    match dirs.as_slice() {
        [(name, true)] => Ok(name.clone()),
        _ => {
            bail!(
            "the base rootfs's modules directory must hold exactly one kernel version, it holds {}",
            if dirs.is_empty() {
                "nothing".to_string()
            } else {
                dirs.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(", ")
            }
        )
        }
    }
}

/// The `vermagic` a module was built with (its first word is the kernel release), read from
/// its `.modinfo`; `.ko.xz`, `.ko.zst` and `.ko.gz` are decompressed first.
pub fn vermagic(path: &Path) -> Result<Option<String>> {
    let f = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let name = path.to_string_lossy();
    let mut r: Box<dyn Read> = if name.ends_with(".xz") {
        Box::new(liblzma::read::XzDecoder::new(f))
    } else if name.ends_with(".zst") {
        Box::new(zstd::stream::read::Decoder::new(f)?)
    } else if name.ends_with(".gz") {
        Box::new(flate2::read::GzDecoder::new(f))
    } else {
        Box::new(f)
    };
    let mut bytes = Vec::new();
    r.by_ref()
        .take(crate::limits::MAX_MODULE_BYTES)
        .read_to_end(&mut bytes)
        .with_context(|| format!("reading {}", path.display()))?;
    const KEY: &[u8] = b"\0vermagic=";
    Ok(bytes.windows(KEY.len()).position(|w| w == KEY).map(|i| {
        let v = &bytes[i + KEY.len()..];
        let end = v.iter().position(|b| *b == 0).unwrap_or(v.len());
        String::from_utf8_lossy(&v[..end]).into_owned()
    }))
}

/// Whether a path names a kernel module file.
pub fn is_module(path: &str) -> bool {
    [".ko", ".ko.xz", ".ko.zst", ".ko.gz"]
        .iter()
        .any(|s| path.ends_with(s))
}

/// Checks that an extension's modules (rootfs entries under `modules_path`) are all for
/// `kver`: under `<modules_path>/<kver>/`, and each module's vermagic names `kver`.
pub fn check_extension_modules(
    extension: &str,
    rootfs: &[FileSpec],
    modules_path: &str,
    kver: &str,
) -> Result<()> {
    let under = format!("{modules_path}/");
    for f in rootfs {
        let Some(rel) = f.path.strip_prefix(&under) else {
            continue;
        };
        let dir = rel.split('/').next().unwrap_or_default();
        let is_file = !matches!(f.content, Content::Dir);
        if dir != kver && (is_file || rel.contains('/')) {
            bail!(
                "the extension {extension} ships modules for kernel {dir} (/{}), but the base kernel is {kver}",
                f.path
            );
        }
        if let (true, Content::Path(p)) = (is_module(&f.path), &f.content) {
            match vermagic(p)? {
                Some(v) if v.split_whitespace().next() == Some(kver) => {}
                Some(v) => bail!(
                    "the extension {extension}'s module /{} was built for {}, not the base kernel {kver}",
                    f.path,
                    v.split_whitespace().next().unwrap_or("")
                ),
                None => bail!(
                    "the extension {extension}'s module /{} has no vermagic: not a kernel module",
                    f.path
                ),
            }
        }
    }
    Ok(())
}

/// Runs `depmod --all --basedir <basedir> --config <conf> <kver>`, as the imager does.
pub fn depmod(basedir: &Path, conf: &Path, kver: &str) -> Result<()> {
    let bin = ["/usr/sbin/depmod", "/sbin/depmod", "depmod"]
        .into_iter()
        .find(|b| !b.starts_with('/') || Path::new(b).exists())
        .unwrap_or("depmod");
    let out = Command::new(bin)
        .arg("--all")
        .arg("--basedir")
        .arg(basedir)
        .arg("--config")
        .arg(conf)
        .arg(kver)
        .output();
    let out = match out {
        Ok(o) => o,
        Err(e) if e.kind() == io::ErrorKind::NotFound => bail!(
            "depmod is not installed: extensions with kernel modules need kmod's depmod (apt-get install kmod)"
        ),
        Err(e) => return Err(e).context("running depmod"),
    };
    if !out.status.success() {
        bail!(
            "depmod failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// The `modules.*` files of a kernel version directory, as rootfs entries under
/// `<modules_path>/<kver>/` (`findAndMoveKernelModulesDepFiles`), with their directories.
pub fn dep_files(kver_dir: &Path, modules_path: &str, kver: &str) -> Result<Vec<FileSpec>> {
    let mut names: Vec<(String, PathBuf)> = Vec::new();
    for e in fs::read_dir(kver_dir)? {
        let e = e?;
        let name = e.file_name().to_string_lossy().into_owned();
        if !e.file_type()?.is_dir() && name.starts_with("modules.") {
            names.push((name, e.path()));
        }
    }
    names.sort();
    let mut out = Vec::new();
    let mut dir = String::new();
    for part in modules_path.split('/').chain([kver]) {
        dir = if dir.is_empty() {
            part.to_string()
        } else {
            format!("{dir}/{part}")
        };
        out.push(FileSpec::dir(&dir));
    }
    for (name, path) in names {
        out.push(FileSpec::from_path(&format!("{dir}/{name}"), path, 0o644));
    }
    Ok(out)
}
