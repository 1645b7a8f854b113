//! `tdg inspect`: what a kernel, UKI, initramfs or extension image holds, from a local file or
//! a path inside an image (`REF//path/in/image`), for people (human) and scripts (json).

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use serde::Serialize;

use crate::error::Reason;
use crate::layers::flatten::{ContentError, Wanted};
use crate::limits::MAX_MANIFEST;
use crate::located::read_capped;
use crate::oci::platform::Platform;
use crate::pull::{self, Env, Pulled};
use crate::reference::ImageRef;
use crate::talos::extension_paths::{self, ImageEntry, PathRules};
use crate::talos::extensions::{self, Manifest, MANIFEST};
use crate::talos::initramfs::{self, Initramfs};
use crate::talos::kernel::{self, KernelInfo};

/// A file to inspect: on disk, or inside an image.
pub enum Target {
    File(PathBuf),
    InImage { image: ImageRef, path: String },
}

pub fn parse_target(s: &str) -> Result<Target> {
    match s.split_once("//") {
        Some((image, path)) if !image.is_empty() => {
            let path = crate::image_path::normalize(path)?;
            if path.is_empty() {
                bail!("'{s}': name a file after '//'");
            }
            Ok(Target::InImage {
                image: image.parse()?,
                path,
            })
        }
        _ => Ok(Target::File(PathBuf::from(s))),
    }
}

/// The file's bytes on disk; the pulled image (when there is one) keeps its spool alive.
pub struct Opened {
    pub path: PathBuf,
    _pulled: Option<Pulled>,
}

pub async fn open(env: &Env, target: &Target, platform: Option<&Platform>) -> Result<Opened> {
    match target {
        Target::File(p) => {
            if !p.is_file() {
                bail!("{}: no such file", p.display());
            }
            Ok(Opened {
                path: p.clone(),
                _pulled: None,
            })
        }
        Target::InImage { image, path } => {
            let pulled =
                pull::pull(env, image, platform, Wanted::Paths([path.clone()].into())).await?;
            let resolved = pulled.flat.tree.resolve(path, false)?;
            let spooled = match pulled.flat.spooled(&pulled.spool, &resolved) {
                Ok(p) => p,
                Err(ContentError::Missing(_)) => bail!("{image} has no {path}"),
                Err(ContentError::NotAFile(k)) => {
                    bail!("{image}//{path} is a {}, not a file", k.name())
                }
                Err(e) => bail!("{image}//{path}: {e}"),
            };
            Ok(Opened {
                path: spooled,
                _pulled: Some(pulled),
            })
        }
    }
}

pub fn kernel(path: &std::path::Path) -> Result<KernelInfo> {
    let mut f = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    kernel::sniff(&mut f)
}

/// An initramfs as the kernel unpacks it, with the extension services its layers carry
/// (read through a scratch directory under `work`).
pub fn initramfs(
    path: &std::path::Path,
    limits: initramfs::Limits,
    work: &std::path::Path,
) -> Result<Initramfs> {
    let f = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut i = initramfs::walk_file(&f, 0, u64::MAX, limits)?;
    if i.stopped.is_none() {
        std::fs::create_dir_all(work).with_context(|| format!("creating {}", work.display()))?;
        let scratch = crate::temps::Dir::new(work, "services-")
            .with_context(|| format!("creating a directory in {}", work.display()))?;
        let scan = initramfs::scan_file(&f, 0, u64::MAX, &i, limits, scratch.path(), None)?;
        i.services = Some(scan.services);
    }
    Ok(i)
}

/// What an extension image holds and whether Talos would accept it.
#[derive(Debug, Serialize)]
pub struct ExtensionImage {
    pub image: String,
    pub digest: String,
    pub manifest: Option<Manifest>,
    pub rootfs: Vec<String>,
    /// Why Talos refuses the extension (empty: it accepts it).
    pub problems: Vec<String>,
    /// What Talos accepts although tdg would be stricter.
    pub warnings: Vec<String>,
    /// The extension services it carries, as the node would treat them.
    pub services: Vec<crate::talos::services::Service>,
}

pub async fn extension(
    env: &Env,
    image: &ImageRef,
    platform: Option<&Platform>,
    talos: Option<&str>,
    strict: bool,
) -> Result<ExtensionImage> {
    // The manifest, and every file in the service spec directory (a `dir/` wants them all).
    let wanted = [
        MANIFEST.to_string(),
        format!("rootfs/{}/", crate::talos::services::CONFIG_DIR),
    ];
    let pulled = pull::pull(env, image, platform, Wanted::Paths(wanted.into())).await?;
    let read = service_specs(&pulled)?;
    let tree = &pulled.flat.tree;
    let services =
        crate::talos::services::judge(&read, |p| tree.get(&format!("rootfs/{p}")).is_some());
    let mut problems = Vec::new();
    let manifest = match manifest_of(&pulled)? {
        Ok(m) => Some(m),
        Err(e) => {
            problems.push(e.into());
            None
        }
    };
    // The imager's `Validate(WithValidateConstraints(), WithTalosVersion(…))`: the same rule
    // `verify` and `build` apply (`extensions::compatible`).
    if let (Some(m), Some(t)) = (&manifest, talos) {
        if let Err(e) = extensions::compatible(&m.metadata, t) {
            problems.push(e.to_string());
        }
    }
    let mut rules = PathRules::for_talos(talos);
    if strict {
        rules = rules.strict();
    }
    let review = extension_paths::review(&pulled.flat.tree, &rules);
    problems.extend(review.refusal(&rules));
    let mut warnings: Vec<String> = review.warning(&rules).into_iter().collect();
    if strict {
        // The extensions validator's own checks.
        if let Some(m) = &manifest {
            problems.extend(
                crate::talos::validator::version(&m.metadata.name, &m.metadata.version)
                    .err()
                    .map(String::from),
            );
        }
        let files: Vec<(String, Vec<u8>)> = read
            .iter()
            .map(|(p, _, b)| (format!("rootfs/{p}"), b.clone()))
            .collect();
        problems.extend(crate::talos::validator::service_specs(&files));
    } else {
        // The imager builds it; the node logs such a service and never runs it.
        for sv in &services {
            for p in &sv.problems {
                warnings.push(format!("service {} ({}): {p}", sv.name, sv.file));
            }
        }
    }
    let rootfs = pulled
        .flat
        .tree
        .iter()
        .filter(|(p, e)| {
            matches!(extension_paths::image_entry(p), ImageEntry::Rootfs(_)) && e.kind.has_content()
        })
        .map(|(p, _)| format!("/{p}"))
        .collect();
    Ok(ExtensionImage {
        image: image.to_string(),
        digest: pulled.resolved.digest.to_string(),
        manifest,
        rootfs,
        problems,
        warnings,
        services,
    })
}

/// Each extension service spec in the image: its path below `/rootfs`, and its bytes.
fn service_specs(pulled: &Pulled) -> Result<Vec<(String, String, Vec<u8>)>> {
    let tree = &pulled.flat.tree;
    let mut read = Vec::new();
    for p in crate::talos::validator::service_files(tree) {
        let at = tree.resolve(&p, true).unwrap_or_else(|_| p.clone());
        let f = pulled
            .flat
            .spooled(&pulled.spool, &at)
            .with_context(|| format!("/{p}"))?;
        let bytes = read_capped(&f, MAX_MANIFEST)?.into_bytes();
        read.push((
            p.trim_start_matches("rootfs/").to_string(),
            String::new(),
            bytes,
        ));
    }
    Ok(read)
}

/// The extension's manifest, or what is wrong with it.
fn manifest_of(pulled: &Pulled) -> Result<std::result::Result<extensions::Manifest, Reason>> {
    // Through a symlink within the image, as Talos's `os.Open` follows it.
    let at = pulled
        .flat
        .tree
        .resolve(MANIFEST, true)
        .unwrap_or_else(|_| MANIFEST.to_string());
    let Ok(path) = pulled.flat.spooled(&pulled.spool, &at) else {
        return Ok(Err("no /manifest.yaml".into()));
    };
    Ok(
        extensions::parse_manifest(&read_capped(&path, MAX_MANIFEST)?)
            .map_err(|e| Reason(e.to_string())),
    )
}

pub fn human_kernel(k: &KernelInfo) -> String {
    let mut s = format!("{}, {} bytes", k.summary(), k.size);
    if let Some(z) = &k.zboot {
        let _ = write!(
            s,
            " (payload {} bytes at {}, Image {} bytes)",
            z.payload_size, z.payload_offset, z.image_size
        );
    }
    if let Some(m) = &k.pe_machine {
        let _ = write!(s, ", PE machine {m}");
    }
    s.push('\n');
    if let Some(u) = &k.uki {
        let _ = writeln!(
            s,
            "embedded kernel: {} for {}, {} bytes",
            u.kernel.format.describe(),
            u.kernel.arch,
            u.kernel.size
        );
        for sec in &u.sections {
            let _ = writeln!(
                s,
                "  section {:<9} offset {:>10}  {:>10} bytes",
                sec.name, sec.offset, sec.size
            );
        }
        if let Some(c) = &u.cmdline {
            let _ = writeln!(s, "cmdline: {c}");
        }
        if let Some(u) = &u.uname {
            let _ = writeln!(s, "uname: {u}");
        }
        if let Some(o) = &u.os_release {
            for line in o.lines() {
                let _ = writeln!(s, "os-release: {line}");
            }
        }
    }
    s
}

pub fn human_initramfs(i: &Initramfs) -> String {
    let mut s = format!(
        "initramfs, {} bytes, {} segments\n",
        i.size,
        i.segments.len()
    );
    for seg in &i.segments {
        let names: Vec<String> = seg
            .entries
            .iter()
            .take(6)
            .map(|e| match &e.squashfs {
                Some(c) => format!("{} (squashfs {c})", e.name),
                None => e.name.clone(),
            })
            .collect();
        let more = if seg.entries.len() > 6 {
            format!(", … {} more", seg.entries.len() - 6)
        } else {
            String::new()
        };
        let _ = writeln!(
            s,
            "  offset {:>10}  {:<12} {:>10} bytes -> {:>10}  {} entries: {}{more}",
            seg.offset,
            format!("{:?}", seg.compression).to_lowercase(),
            seg.size,
            seg.uncompressed_size,
            seg.entries.len(),
            names.join(", ")
        );
    }
    match &i.extensions {
        Some(c) => {
            // The user's extensions, then the layers the machinery added (modules.dep, the
            // factory's schematic).
            let (user, machinery) = crate::imager::bake::split_layers(&c.layers);
            for (title, layers) in [("extensions", user), ("machinery layers", machinery)] {
                if title != "extensions" && layers.is_empty() {
                    continue;
                }
                let _ = writeln!(s, "{title} ({}):", layers.len());
                for l in layers {
                    let compat = &l.metadata.compatibility.talos.version;
                    let _ = writeln!(
                        s,
                        "  {:<8} {:<20} {:<12} Talos {}",
                        l.image,
                        l.metadata.name,
                        l.metadata.version,
                        if compat.is_empty() { "any" } else { compat }
                    );
                }
            }
        }
        None => s.push_str("extensions: none (no extensions.yaml)\n"),
    }
    if let Some(services) = &i.services {
        if services.is_empty() {
            s.push_str("services: none\n");
        } else {
            let _ = writeln!(s, "services ({}):", services.len());
        }
        for sv in services {
            let waits = if sv.waits_for.is_empty() {
                "nothing".to_string()
            } else {
                sv.waits_for.join("; ")
            };
            let _ = writeln!(
                s,
                "  {:<16} restart {:<12} waits for {waits}  ({})",
                sv.name,
                if sv.restart.is_empty() {
                    "?"
                } else {
                    &sv.restart
                },
                sv.file
            );
        }
    }
    for p in i.problems() {
        let _ = writeln!(s, "problem: {p}");
    }
    for sv in i.services.iter().flatten() {
        for p in &sv.problems {
            let _ = writeln!(s, "problem: {} ({}): {p}", sv.name, sv.file);
        }
    }
    s
}

pub fn human_extension(x: &ExtensionImage) -> String {
    let mut s = format!("{}@{}\n", x.image, x.digest);
    if let Some(m) = &x.manifest {
        let md = &m.metadata;
        let _ = writeln!(
            s,
            "{} {} by {}: {}",
            md.name,
            md.version,
            md.author,
            md.description.trim()
        );
        let _ = writeln!(
            s,
            "Talos {}",
            if md.compatibility.talos.version.is_empty() {
                "any"
            } else {
                &md.compatibility.talos.version
            }
        );
    }
    for f in &x.rootfs {
        let _ = writeln!(s, "  {f}");
    }
    for sv in &x.services {
        let waits = if sv.waits_for.is_empty() {
            "nothing".to_string()
        } else {
            sv.waits_for.join("; ")
        };
        let _ = writeln!(s, "service {} ({}): waits for {waits}", sv.name, sv.file);
    }
    for w in &x.warnings {
        let _ = writeln!(s, "warning: {w}");
    }
    if x.problems.is_empty() {
        s.push_str("accepted by Talos: yes\n");
    } else {
        for p in &x.problems {
            let _ = writeln!(s, "problem: {p}");
        }
    }
    s
}
