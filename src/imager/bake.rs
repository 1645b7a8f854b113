//! Baking extensions into a base initramfs exactly as Talos's imager does
//! (siderolabs/talos `pkg/imager/extensions/{extensions,rebuild,contents}.go`,
//! `internal/pkg/extensions/{compress,kernel_modules,list}.go`):
//!
//! 1. Early CPU microcode (`<firmware>/intel-ucode/*`, `<firmware>/amd-ucode/microcode_amd*.bin`)
//!    is taken out of each extension and joined into `kernel/x86/microcode/GenuineIntel.bin`
//!    and `AuthenticAMD.bin` in an uncompressed cpio placed before the base.
//! 2. The rest of `<firmware>` moves out of the extensions into the appended cpio.
//! 3. When any extension ships `<modules>`, the base rootfs's modules and every extension's
//!    are put in one tree, `depmod` runs over it, and a `modules.dep` layer holding the
//!    `modules.*` files is added last.
//! 4. Each extension becomes `<n>.sqsh`, layered in the order the imager lists its extension
//!    directories (`0`, `1`, `10`, `11`, `2`, …: names sorted as strings).
//! 5. The base bytes stay unchanged; one compressed cpio (`extensions.yaml`, the squashfs
//!    images, the firmware) is appended.
//!
//! Beyond the imager, whose base never holds extensions: when the base already carries an
//! `extensions.yaml` (an Image Factory initramfs, an installer UKI's `.initrd`), its layers are
//! kept, listed first in the new `extensions.yaml` (the kernel unpacks the later file over the
//! earlier one), new images are numbered after the base's, and the base's `modules.dep` layer is
//! rebuilt over the base's extension modules too when new modules arrive.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::assemble::{compressor, write_newc, write_squashfs, Content, ExtensionInput, FileSpec};
use super::modules;
use crate::talos::extensions::{
    self, ExtensionsConfig, Layer, Metadata, MACHINERY_AUTHOR, MODULES_DEP,
};
use crate::talos::initramfs::{self, Compression, Limits};
use crate::talos::version::SemVer;

/// The Talos-version quirks the rebuild depends on (`pkg/machinery/imager/quirks/quirks.go`),
/// decided on the core version.
#[derive(Debug, Clone, Copy)]
pub struct Quirks {
    /// `None`: an unparsable version, which Talos takes for the newest.
    version: Option<(u64, u64, u64)>,
}

impl Quirks {
    pub fn new(talos: &str) -> Self {
        Quirks {
            version: SemVer::parse_tolerant(talos)
                .ok()
                .map(|v| (v.major, v.minor, v.patch)),
        }
    }

    fn at_least(&self, v: (u64, u64, u64)) -> bool {
        self.version.is_none_or(|have| have >= v)
    }

    /// zstd from 1.8 (`UseZSTDCompression`), xz before.
    pub fn compression(&self) -> Compression {
        if self.at_least((1, 8, 0)) {
            Compression::Zstd
        } else {
            Compression::Xz
        }
    }

    /// `/usr/lib/modules` from 1.10 (`KernelModulesPath`), `/lib/modules` before.
    pub fn modules_path(&self) -> &'static str {
        if self.at_least((1, 10, 0)) {
            "usr/lib/modules"
        } else {
            "lib/modules"
        }
    }

    /// `/usr/lib/firmware` from 1.10 (`FirmwarePath`), `/lib/firmware` before.
    pub fn firmware_path(&self) -> &'static str {
        if self.at_least((1, 10, 0)) {
            "usr/lib/firmware"
        } else {
            "lib/firmware"
        }
    }
}

/// Extensions split the way the imager splits them, before anything is written.
#[derive(Debug, Default)]
pub struct Prepared {
    /// In layer order: the layer and its squashfs content.
    pub layers: Vec<(Layer, Vec<FileSpec>)>,
    /// Moved out of the extensions into the appended cpio.
    pub firmware: Vec<FileSpec>,
    /// `kernel/x86/microcode/*.bin` and their joined bytes.
    pub microcode: Vec<(String, Vec<u8>)>,
}

/// Microcode globs and destinations (`earlyCPUUcode`).
fn ucode_destination(fw: &str, path: &str) -> Option<&'static str> {
    let rel = path.strip_prefix(fw)?.strip_prefix('/')?;
    let (dir, name) = rel.split_once('/')?;
    if name.contains('/') {
        return None;
    }
    match dir {
        "intel-ucode" => Some("kernel/x86/microcode/GenuineIntel.bin"),
        "amd-ucode" if name.starts_with("microcode_amd") && name.ends_with(".bin") => {
            Some("kernel/x86/microcode/AuthenticAMD.bin")
        }
        _ => None,
    }
}

fn read_all(f: &FileSpec) -> Result<Vec<u8>> {
    Ok(match &f.content {
        Content::Bytes(b) => b.clone(),
        Content::Path(p) => fs::read(p).with_context(|| format!("reading {}", p.display()))?,
        Content::Dir | Content::Symlink(_) => Vec::new(),
    })
}

/// Microcode and firmware out of each extension, images named from `first_index`, layers in
/// the imager's order.
pub fn prepare(exts: &[ExtensionInput], q: &Quirks, first_index: usize) -> Result<Prepared> {
    let fw = q.firmware_path();
    let mut out = Prepared::default();
    let mut ucode: BTreeMap<&'static str, Vec<u8>> = BTreeMap::new();
    let mut firmware: BTreeMap<String, FileSpec> = BTreeMap::new();
    // The imager checks extensions out into directories named 0, 1, … and lists them sorted by
    // name (`internal/pkg/extensions/list.go`).
    let mut order: Vec<usize> = (0..exts.len()).collect();
    order.sort_by_key(|i| i.to_string());
    for i in order {
        let e = &exts[i];
        let mut rest = Vec::new();
        // Globs come back sorted; the blobs are appended in that order.
        let mut files: Vec<&FileSpec> = e.rootfs.iter().collect();
        files.sort_by(|a, b| a.path.cmp(&b.path));
        for f in files {
            if let Some(dst) = ucode_destination(fw, &f.path) {
                if !matches!(f.content, Content::Dir) {
                    ucode.entry(dst).or_default().extend(read_all(f)?);
                    continue;
                }
            }
            if f.path == fw || f.path.starts_with(&format!("{fw}/")) {
                firmware.insert(f.path.clone(), f.clone());
            } else {
                rest.push(f.clone());
            }
        }
        let layer = Layer {
            image: format!("{}.sqsh", first_index + i),
            metadata: e.metadata.clone(),
        };
        out.layers.push((layer, rest));
    }
    if !firmware.is_empty() {
        // The directories leading to the firmware, as the cpio listing has them.
        let mut dir = String::new();
        for part in fw.split('/') {
            dir = if dir.is_empty() {
                part.to_string()
            } else {
                format!("{dir}/{part}")
            };
            firmware
                .entry(dir.clone())
                .or_insert_with(|| FileSpec::dir(&dir));
        }
    }
    out.firmware = firmware.into_values().collect();
    out.microcode = ucode.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
    Ok(out)
}

/// Paths in the order `find` lists a tree whose directories are read sorted by name.
fn tree_order(files: &mut [FileSpec]) {
    files.sort_by(|a, b| a.path.split('/').cmp(b.path.split('/')));
}

/// The uncompressed microcode cpio placed before the base.
pub fn write_microcode<W: Write>(out: W, microcode: &[(String, Vec<u8>)]) -> Result<W> {
    let mut files = vec![
        FileSpec::dir("kernel"),
        FileSpec::dir("kernel/x86"),
        FileSpec::dir("kernel/x86/microcode"),
    ];
    for (path, bytes) in microcode {
        files.push(FileSpec::file(path, bytes.clone(), 0o644));
    }
    tree_order(&mut files);
    write_newc(out, &files)
}

/// zstd level of the appended segment: the imager runs `zstd -18`, but the squashfs images
/// inside are compressed already; measured on 40 MiB, -18 takes 13.8 s and -9 0.13 s for the
/// same size.
pub const SEGMENT_LEVEL: i32 = 9;

/// The appended segment: `extensions.yaml` for `config`, each layer's squashfs (content from
/// `images`; layers without one, the base's, are already in the base), and the firmware.
pub fn write_appended<W: Write>(
    out: W,
    config: &ExtensionsConfig,
    images: &[(String, Vec<FileSpec>)],
    firmware: &[FileSpec],
    c: Compression,
    work: &Path,
) -> Result<W> {
    let yaml = serde_saphyr::to_string(config).context("serialising extensions.yaml")?;
    let mut files = vec![FileSpec::file("extensions.yaml", yaml, 0o644)];
    for (image, content) in images {
        let sq = work.join(image);
        write_squashfs(
            File::create(&sq).with_context(|| format!("creating {}", sq.display()))?,
            content,
            c,
        )?;
        files.push(FileSpec::from_path(image, sq, 0o444));
    }
    files.extend(firmware.iter().cloned());
    tree_order(&mut files);
    let w = compressor(out, c, SEGMENT_LEVEL)?;
    let w = write_newc(w, &files)?;
    Ok(w.finish_boxed()?)
}

/// What a rebuild baked in.
#[derive(Debug, Clone)]
pub struct Rebuilt {
    /// The final `extensions.yaml`: the base's layers first, then the new ones.
    pub layers: Vec<Layer>,
    /// How many of `layers` came from the base.
    pub from_base: usize,
    /// The microcode files written before the base.
    pub microcode: Vec<String>,
    /// The kernel version the `modules.dep` layer was made for, when one was.
    pub modules_for: Option<String>,
}

/// Rebuilds `base` (an initramfs file) with `exts`, writing the result to `out`.
pub fn rebuild<W: Write>(
    base: &Path,
    exts: &[ExtensionInput],
    q: &Quirks,
    limits: Limits,
    work: &Path,
    mut out: W,
) -> Result<(W, Rebuilt)> {
    let c = q.compression();
    let walked = initramfs::walk_file(&open(base)?, 0, u64::MAX, limits)
        .context("reading the base initramfs")?;
    let mut base_layers = walked.extensions.map(|e| e.layers).unwrap_or_default();
    let first_index = base_layers
        .iter()
        .filter_map(|l| l.image.strip_suffix(".sqsh")?.parse::<usize>().ok())
        .max()
        .map_or(0, |n| n + 1);
    let prepared = prepare(exts, q, first_index)?;
    let modules_path = q.modules_path();
    let provides = |files: &[FileSpec]| {
        files
            .iter()
            .any(|f| f.path == modules_path || f.path.starts_with(&format!("{modules_path}/")))
    };
    let mut new_layers = Vec::new();
    let mut images = Vec::new();
    for (layer, content) in &prepared.layers {
        new_layers.push(layer.clone());
        images.push((layer.image.clone(), content.clone()));
    }
    let mut modules_for = None;
    if prepared.layers.iter().any(|(_, f)| provides(f)) {
        let base_dep = base_layers.iter().position(|l| is_modules_dep(&l.metadata));
        let dep = modules_dep(
            base,
            &base_layers,
            base_dep.is_some(),
            &prepared,
            q,
            limits,
            work,
        )?;
        if let Some(i) = base_dep {
            base_layers.remove(i);
        }
        new_layers.push(dep.0.clone());
        images.push((dep.0.image.clone(), dep.1));
        modules_for = Some(dep.0.metadata.version.clone());
    }
    let from_base = base_layers.len();
    let mut layers = base_layers;
    layers.extend(new_layers);
    if !prepared.microcode.is_empty() {
        out = write_microcode(out, &prepared.microcode)?;
    }
    io::copy(&mut open(base)?, &mut out).context("copying the base initramfs")?;
    let config = ExtensionsConfig {
        layers: layers.clone(),
    };
    let out = write_appended(out, &config, &images, &prepared.firmware, c, work)?;
    Ok((
        out,
        Rebuilt {
            layers,
            from_base,
            microcode: prepared.microcode.iter().map(|(p, _)| p.clone()).collect(),
            modules_for,
        },
    ))
}

fn open(p: &Path) -> Result<File> {
    File::open(p).with_context(|| format!("opening {}", p.display()))
}

fn is_modules_dep(m: &Metadata) -> bool {
    m.name == MODULES_DEP && m.author == MACHINERY_AUTHOR
}

/// The `modules.dep` layer (`GenerateKernelModuleDependencyTreeExtension`): its layer and
/// squashfs content.
fn modules_dep(
    base: &Path,
    base_layers: &[Layer],
    with_base_extensions: bool,
    prepared: &Prepared,
    q: &Quirks,
    limits: Limits,
    work: &Path,
) -> Result<(Layer, Vec<FileSpec>)> {
    let modules_path = q.modules_path();
    let extracted = work.join("modules-from-base");
    fs::create_dir_all(&extracted)?;
    // The base's rootfs, and (when its modules.dep is to be rebuilt) its extensions' images.
    let wanted: Vec<String> = std::iter::once("rootfs.sqsh".to_string())
        .chain(
            base_layers
                .iter()
                .filter(|l| with_base_extensions && !is_modules_dep(&l.metadata))
                .map(|l| l.image.clone()),
        )
        .collect();
    let files = initramfs::extract(
        || open(base).map_err(std::io::Error::other),
        limits,
        &wanted,
        &extracted,
    )
    .context("reading the base initramfs")?;
    let rootfs = files
        .get("rootfs.sqsh")
        .context("the base initramfs has no rootfs.sqsh to take kernel modules from")?;
    let tree = work.join("modules-tree");
    modules::extract_squashfs(rootfs, modules_path, &tree)
        .context("taking the kernel modules out of the base rootfs.sqsh")?;
    let modules_dir = tree.join(modules_path);
    let kver = modules::kernel_version(&modules_dir)?;
    for l in base_layers {
        if let Some(sq) = files.get(&l.image) {
            modules::extract_squashfs(sq, &format!("{modules_path}/{kver}"), &tree)
                .with_context(|| format!("reading the base layer {}", l.image))?;
        }
    }
    let under = format!("{modules_path}/{kver}/");
    for (layer, content) in &prepared.layers {
        modules::check_extension_modules(&layer.metadata.name, content, modules_path, &kver)?;
        for f in content.iter().filter(|f| f.path.starts_with(&under)) {
            let dest = tree.join(&f.path);
            match &f.content {
                Content::Dir => fs::create_dir_all(&dest)?,
                Content::Symlink(t) => {
                    if let Some(p) = dest.parent() {
                        fs::create_dir_all(p)?;
                    }
                    let _ = fs::remove_file(&dest);
                    std::os::unix::fs::symlink(t, &dest)?;
                }
                _ => {
                    if let Some(p) = dest.parent() {
                        fs::create_dir_all(p)?;
                    }
                    fs::write(&dest, read_all(f)?)?;
                }
            }
        }
    }
    let conf = work.join("10-extra-modules.conf");
    fs::write(&conf, modules::DEPMOD_CONF)?;
    // depmod reads <basedir>/lib/modules/<kver>: /usr is kept (`depmod` in kernel_modules.go).
    let basedir: PathBuf = tree.join(modules_path.strip_suffix("lib/modules").unwrap_or(""));
    modules::depmod(&basedir, &conf, &kver)?;
    let content = modules::dep_files(&modules_dir.join(&kver), modules_path, &kver)?;
    let layer = Layer {
        image: format!("{MODULES_DEP}.sqsh"),
        metadata: Metadata {
            name: MODULES_DEP.into(),
            version: kver,
            author: MACHINERY_AUTHOR.into(),
            description: "Combined modules.dep for all extensions".into(),
            ..Default::default()
        },
    };
    Ok((layer, content))
}

/// Reads the metadata a rebuild wrote back (for tests and `inspect`): user layers apart from
/// the machinery's.
pub fn split_layers(layers: &[Layer]) -> (Vec<&Layer>, Vec<&Layer>) {
    layers
        .iter()
        .partition(|l| !extensions::is_machinery(&l.metadata))
}

/// The appended segment for `exts` on a base without extensions, written compressed to
/// `out`, as the imager writes it (as [`rebuild`] does); microcode is not split out here (the
/// fixtures write their own).
pub fn write_extensions_segment<W: Write>(
    out: W,
    exts: &[ExtensionInput],
    c: Compression,
    work: &Path,
) -> Result<W> {
    let q = Quirks::new(match c {
        Compression::Xz => "v1.7.0",
        _ => "v1.12.0",
    });
    let p = prepare(exts, &q, 0)?;
    let config = ExtensionsConfig {
        layers: p.layers.iter().map(|(l, _)| l.clone()).collect(),
    };
    let images: Vec<(String, Vec<FileSpec>)> = p
        .layers
        .into_iter()
        .map(|(l, content)| (l.image, content))
        .collect();
    write_appended(out, &config, &images, &p.firmware, c, work)
}

pub fn extensions_segment(exts: &[ExtensionInput], c: Compression) -> Result<Vec<u8>> {
    let work = tempfile::tempdir()?;
    write_extensions_segment(Vec::new(), exts, c, work.path())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quirks_by_core_version() {
        let q = Quirks::new("v1.8.0-beta.1");
        assert_eq!(q.compression(), Compression::Zstd, "pre-release dropped");
        assert_eq!(Quirks::new("v1.7.6").compression(), Compression::Xz);
        assert_eq!(Quirks::new("v1.9.5").modules_path(), "lib/modules");
        assert_eq!(Quirks::new("v1.10.0").firmware_path(), "usr/lib/firmware");
        assert_eq!(Quirks::new("banana").modules_path(), "usr/lib/modules");
    }

    #[test]
    fn layers_in_the_imagers_order_with_microcode_and_firmware_moved() {
        let ext = |name: &str, files: Vec<FileSpec>| ExtensionInput {
            metadata: Metadata {
                name: name.into(),
                ..Default::default()
            },
            rootfs: files,
        };
        let mut exts: Vec<ExtensionInput> =
            (0..11).map(|i| ext(&format!("e{i}"), vec![])).collect();
        exts[0] = ext(
            "intel-ucode",
            vec![
                FileSpec::dir("usr/lib/firmware/intel-ucode"),
                FileSpec::file("usr/lib/firmware/intel-ucode/06-55-04", "b", 0o644),
                FileSpec::file("usr/lib/firmware/intel-ucode/06-4f-01", "a", 0o644),
                FileSpec::file("usr/lib/firmware/i915/x.bin", "fw", 0o644),
                FileSpec::file("usr/local/bin/x", "x", 0o755),
            ],
        );
        exts[1] = ext(
            "amd-ucode",
            vec![
                FileSpec::file(
                    "usr/lib/firmware/amd-ucode/microcode_amd_fam17h.bin",
                    "c",
                    0o644,
                ),
                FileSpec::file("usr/lib/firmware/amd-ucode/README", "r", 0o644),
            ],
        );
        let p = prepare(&exts, &Quirks::new("v1.12.0"), 0).unwrap();
        let names: Vec<&str> = p
            .layers
            .iter()
            .map(|(l, _)| l.metadata.name.as_str())
            .collect();
        assert_eq!(names[..4], ["intel-ucode", "amd-ucode", "e10", "e2"]);
        assert_eq!(p.layers[2].0.image, "10.sqsh");
        assert_eq!(
            p.microcode,
            [
                (
                    "kernel/x86/microcode/AuthenticAMD.bin".to_string(),
                    b"c".to_vec()
                ),
                (
                    "kernel/x86/microcode/GenuineIntel.bin".to_string(),
                    b"ab".to_vec()
                ),
            ]
        );
        let fw: Vec<&str> = p.firmware.iter().map(|f| f.path.as_str()).collect();
        assert!(fw.contains(&"usr/lib/firmware/i915/x.bin"));
        assert!(
            fw.contains(&"usr/lib/firmware/amd-ucode/README"),
            "not microcode: firmware"
        );
        assert!(!fw.iter().any(|f| f.contains("06-55-04")));
        let rest: Vec<&str> = p.layers[0].1.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(rest, ["usr/local/bin/x"]);
    }
}
