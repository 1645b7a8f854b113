//! The embedded default: a Talos boot-asset image like the published spin-only / spin-tailscale
//! images (arm64 kernel header, zstd initramfs, checksums, build report), written to an OCI
//! layout with a spec that describes it, so `tdg demo DIR` shows the whole verify path with no
//! network. The test harness builds its registry fixtures from the same pieces.

mod extensions;

pub use extensions::{
    cozystack_arm64, firmware, modules_dep_layer, spin, tailscale, variant_extensions,
    with_parents, KERNEL_RELEASE,
};

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::digest::Digest;
use crate::imager::assemble::{self, Content, ExtensionInput, FileSpec};
use crate::oci::image::{self, Flavor, Layer, TarEntry};
use crate::oci::layout::LayoutWriter;
use crate::oci::manifest::Compression;
use crate::oci::platform::Platform;
use crate::talos::initramfs::Compression as Segment;

pub const TALOS: &str = "v1.11.5";
/// The commit of the repository that built the image (its revision label).
pub const COMMIT: &str = "0123abcdef0123abcdef0123abcdef0123abcdef";
/// The CozyStack commit the assets were built from.
pub const COZYSTACK: &str = "9f3c2e1d4b5a69788796a5b4c3d2e1f0a9b8c7d6";

/// Deterministic filler bytes (xorshift), so stand-ins have a realistic size but no pattern a
/// compressor would flatten.
pub fn filler(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// An arm64 `Image` stand-in: the 64-byte header (with `MZ` for the EFI stub and `ARM\x64` at
/// 0x38) followed by filler. An amd64 stand-in carries `HdrS` at 0x202 instead.
pub fn kernel(arch: &str, len: usize) -> Vec<u8> {
    let mut k = filler(len.max(1024), 7);
    match arch {
        "arm64" => {
            k[..64].fill(0);
            k[0..2].copy_from_slice(b"MZ");
            k[8..16].copy_from_slice(&0u64.to_le_bytes()); // text_offset
            k[16..24].copy_from_slice(&(len as u64).to_le_bytes()); // image_size
            k[24..32].copy_from_slice(&0xAu64.to_le_bytes()); // flags: LE, 4K pages
            k[0x38..0x3c].copy_from_slice(b"ARM\x64");
        }
        _ => {
            k[0..2].copy_from_slice(b"MZ");
            k[0x1fe..0x200].copy_from_slice(&[0x55, 0xAA]);
            k[0x202..0x206].copy_from_slice(b"HdrS");
        }
    }
    k
}

/// A Talos-like initramfs: on amd64 an uncompressed microcode cpio first, then the base zstd
/// cpio (`init`, `rootfs.sqsh`), then the appended extensions segment.
pub fn initramfs(arch: &str, exts: &[ExtensionInput], compression: Segment) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    if arch == "amd64" {
        out.extend(assemble::newc(&[
            FileSpec::dir("kernel"),
            FileSpec::dir("kernel/x86"),
            FileSpec::dir("kernel/x86/microcode"),
            FileSpec::file(
                "kernel/x86/microcode/GenuineIntel.bin",
                filler(4096, 40),
                0o644,
            ),
        ])?);
    }
    out.extend(base_initramfs(&[], compression)?);
    if !exts.is_empty() {
        out.extend(extensions_segment(exts, compression)?);
    }
    Ok(out)
}

/// The appended segment of a built image: the extensions, and (when they ship modules) the
/// stand-in `modules.dep` layer last, as `modules.dep.sqsh`.
fn extensions_segment(exts: &[ExtensionInput], c: Segment) -> Result<Vec<u8>> {
    use crate::imager::bake::{prepare, write_appended, Quirks};
    use crate::talos::extensions::{ExtensionsConfig, Layer};
    let q = Quirks::new(if c == Segment::Xz { "v1.7.0" } else { TALOS });
    let p = prepare(exts, &q, 0)?;
    let mut layers: Vec<(Layer, Vec<FileSpec>)> = p.layers;
    let modules = exts.iter().any(|e| {
        e.rootfs
            .iter()
            .any(|f| f.path.starts_with("usr/lib/modules/"))
    });
    if modules {
        let dep = modules_dep_layer();
        let layer = Layer {
            image: "modules.dep.sqsh".into(),
            metadata: dep.metadata,
        };
        layers.push((layer, dep.rootfs));
    }
    let config = ExtensionsConfig {
        layers: layers.iter().map(|(l, _)| l.clone()).collect(),
    };
    let images: Vec<(String, Vec<FileSpec>)> =
        layers.into_iter().map(|(l, f)| (l.image, f)).collect();
    let work = tempfile::tempdir()?;
    write_appended(Vec::new(), &config, &images, &p.firmware, c, work.path())
}

/// A base initramfs as the imager image carries it: one compressed cpio of `init` and
/// `rootfs.sqsh` (`etc/os-release`, and `rootfs` besides, e.g. `usr/lib/modules/...`).
pub fn base_initramfs(rootfs: &[FileSpec], compression: Segment) -> Result<Vec<u8>> {
    let mut files = vec![
        FileSpec::dir("etc"),
        FileSpec::file(
            "etc/os-release",
            format!("NAME=Talos\nVERSION_ID={TALOS}\n"),
            0o644,
        ),
    ];
    files.extend(rootfs.iter().cloned());
    let rootfs = assemble::squashfs(&files, compression)?;
    let base = assemble::newc(&[
        FileSpec::file("init", filler(256 << 10, 41), 0o755),
        FileSpec::file("rootfs.sqsh", rootfs, 0o444),
    ])?;
    assemble::compress(&base, compression, 3)
}

/// The files of one variant's boot assets, before they are laid out; tests break one at a
/// time to make negative fixtures.
#[derive(Clone, Debug)]
pub struct AssetParts {
    pub arch: String,
    pub vmlinuz: Vec<u8>,
    pub initramfs: Vec<u8>,
    pub report: String,
    /// `validation/build-report.json`, when the image carries one.
    pub report_json: Option<String>,
    /// `None`: computed from the files, as a correct build writes it.
    pub checksums: Option<String>,
}

impl AssetParts {
    pub fn new(variant: &str, arch: &str, kernel_len: usize) -> Result<Self> {
        let vmlinuz = kernel(arch, kernel_len);
        let exts = variant_extensions(variant);
        let initramfs = initramfs(arch, &exts, Segment::Zstd)?;
        let names: Vec<String> = exts
            .iter()
            .map(|e| format!("{} {}", e.metadata.name, e.metadata.version))
            .collect();
        let report = format!(
            "Talos Build Report\n==================\nTarget: {arch}\nVariant: {variant}\nTalos Version: {TALOS}\n\
             CozyStack Commit: {COZYSTACK}\nSource Commit: {COMMIT}\nExtensions: {}\nBuild Date: 2026-01-01T00:00:00Z\n\
             Outputs:\n  boot/vmlinuz {} bytes\n  boot/initramfs.xz {} bytes\n",
            names.join(", "),
            vmlinuz.len(),
            initramfs.len()
        );
        // The JSON twin carries the same facts, as a build writes both.
        let fields = crate::talos::report::fields(&report);
        let json = serde_json::json!({"fields": fields, "inventory": names});
        let report_json = Some(serde_json::to_string_pretty(&json)? + "\n");
        Ok(AssetParts {
            arch: arch.into(),
            vmlinuz,
            initramfs,
            report,
            report_json,
            checksums: None,
        })
    }

    /// The files under the asset root but the checksums file, relative to it.
    fn files(&self) -> Vec<(&'static str, &[u8])> {
        let mut f: Vec<(&'static str, &[u8])> = vec![
            ("boot/vmlinuz", &self.vmlinuz),
            ("boot/initramfs.xz", &self.initramfs),
        ];
        if let Some(j) = &self.report_json {
            f.push(("validation/build-report.json", j.as_bytes()));
        }
        f.push(("validation/build-report.txt", self.report.as_bytes()));
        f
    }

    /// `sha256sum` lines for every file but the checksums file itself, with `./` paths.
    pub fn computed_checksums(&self) -> String {
        self.files()
            .iter()
            .map(|(p, d)| format!("{}  ./{p}\n", Digest::of(d).hex()))
            .collect()
    }

    pub fn entries(&self) -> Vec<TarEntry> {
        let root = crate::image_path::assets(&self.arch);
        let mut out = vec![
            TarEntry::dir("assets", 0o755),
            TarEntry::dir("assets/talos", 0o755),
            TarEntry::dir(&root, 0o755),
        ];
        out.push(TarEntry::dir(&format!("{root}/boot"), 0o755));
        out.push(TarEntry::dir(&format!("{root}/validation"), 0o755));
        for (p, d) in self.files() {
            out.push(TarEntry::file(&format!("{root}/{p}"), d.to_vec(), 0o644));
        }
        let sums = self
            .checksums
            .clone()
            .unwrap_or_else(|| self.computed_checksums());
        out.push(TarEntry::file(
            &format!("{root}/checksums.sha256"),
            sums,
            0o644,
        ));
        out
    }
}

/// The boot-asset tree of one variant for one arch, as the published images lay it out.
pub fn asset_entries(variant: &str, arch: &str, kernel_len: usize) -> Result<Vec<TarEntry>> {
    Ok(AssetParts::new(variant, arch, kernel_len)?.entries())
}

pub fn labels(variant: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (
            "org.opencontainers.image.source".to_string(),
            "https://github.com/urmanac/talos-cozystack-demo".to_string(),
        ),
        (
            "org.opencontainers.image.revision".to_string(),
            COMMIT.to_string(),
        ),
        (
            "org.opencontainers.image.title".to_string(),
            format!("talos-cozystack-{variant}"),
        ),
    ])
}

/// Writes the asset image of `variant` for arm64 into an OCI layout, tagged `tag`.
pub fn write_asset_layout(
    dir: &Path,
    variant: &str,
    tag: &str,
    kernel_len: usize,
) -> Result<Digest> {
    let mut out = LayoutWriter::create(dir)?;
    let layer = Layer::new(
        &asset_entries(variant, "arm64", kernel_len)?,
        Compression::Gzip,
        Flavor::Oci,
    )?;
    let d = image::write_image(
        &out,
        &Platform::new("linux", "arm64", None),
        &[layer],
        &labels(variant),
        Flavor::Oci,
    )?;
    let bytes = image::manifest_bytes(&out, &d)?;
    out.add_manifest(&d.media_type, &bytes, Some(tag))?;
    Ok(d.digest)
}

pub const SPEC_TEMPLATE: &str = include_str!("spec.yaml");

/// Writes `DIR/layout` and `DIR/spec.yaml`; returns the spec's path.
pub fn write(dir: &Path) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let dir = dir.canonicalize()?;
    let layout = dir.join("layout");
    write_asset_layout(&layout, "spin-only", TALOS, 1 << 20)?;
    let spec = dir.join("spec.yaml");
    std::fs::write(
        &spec,
        SPEC_TEMPLATE.replace("@LAYOUT@", &layout.display().to_string()),
    )?;
    Ok(spec)
}

/// A system extension image's tree, as siderolabs/extensions builds it `FROM scratch`:
/// `/manifest.yaml` and the rootfs under `/rootfs`.
pub fn extension_image_entries(ext: &ExtensionInput) -> Result<Vec<TarEntry>> {
    let manifest = crate::talos::extensions::Manifest {
        version: "v1alpha1".into(),
        metadata: ext.metadata.clone(),
    };
    let yaml = serde_saphyr::to_string(&manifest).context("serialising manifest.yaml")?;
    let mut out = vec![
        TarEntry::file("manifest.yaml", yaml, 0o644),
        TarEntry::dir("rootfs", 0o755),
    ];
    for f in &ext.rootfs {
        let p = format!("rootfs/{}", f.path);
        out.push(match &f.content {
            Content::Dir => TarEntry::dir(&p, f.mode),
            Content::Bytes(d) => TarEntry::file(&p, d.clone(), f.mode),
            Content::Path(src) => TarEntry::file(&p, std::fs::read(src)?, f.mode),
            Content::Symlink(t) => TarEntry::symlink(&p, t),
        });
    }
    Ok(out)
}
