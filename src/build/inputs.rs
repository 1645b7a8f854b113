//! Stage inputs: the base image's kernel and initramfs for one arch (from an imager image's
//! `/usr/install/<arch>/{vmlinuz,initramfs.xz}` or an installer's UKI `vmlinuz.efi`), and the
//! system extension images, validated before anything is built.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::factory::client::Client;
use crate::factory::urls::{self, Factory, Target};
use crate::imager::assemble::{ExtensionInput, FileSpec};
use crate::layers::flatten::Wanted;
use crate::layers::tree::Kind;
use crate::limits::MAX_MANIFEST;
use crate::located::read_capped;
use crate::oci::platform::Platform;
use crate::pull::{self, Env, Pulled};
use crate::reference::ImageRef;
use crate::spec::Arch;
use crate::talos::extension_paths::{self, ImageEntry, PathRules};
use crate::talos::extensions::{self, Metadata, MANIFEST};
use crate::talos::kernel;

/// A kernel and base initramfs on disk, and where they came from.
pub struct BaseAssets {
    pub kernel: PathBuf,
    pub initramfs: PathBuf,
    /// The image, or the factory's `.../image/<id>/<version>`.
    pub image: String,
    /// The image's digest, or the factory kernel's.
    pub digest: String,
    pub origin: Origin,
    _pulled: Option<Pulled>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// `vmlinuz` + `initramfs.xz` of an imager image.
    Imager,
    /// The sections of an installer's `vmlinuz.efi`.
    Uki,
    /// `kernel-<arch>` + `initramfs-<arch>.xz` from the Image Factory.
    Factory,
}

impl BaseAssets {
    /// For the build report: what the kernel and initramfs were taken from, pinned.
    pub fn describe(&self) -> String {
        match self.origin {
            Origin::Factory => format!("{} (kernel {})", self.image, self.digest),
            _ => format!("{}@{}", self.image, self.digest),
        }
    }

    pub fn source(&self) -> &'static str {
        match self.origin {
            Origin::Imager => "vmlinuz + initramfs.xz",
            Origin::Uki => "UKI sections",
            Origin::Factory => "Image Factory kernel + initramfs",
        }
    }
}

pub fn platform(arch: Arch) -> Platform {
    Platform::new("linux", arch.as_str(), None)
}

pub async fn base(env: &Env, image: &ImageRef, arch: Arch, work: &Path) -> Result<BaseAssets> {
    let dir = format!("usr/install/{}", arch.as_str());
    let (k, i, uki) = (
        format!("{dir}/vmlinuz"),
        format!("{dir}/initramfs.xz"),
        format!("{dir}/vmlinuz.efi"),
    );
    let wanted = Wanted::Paths([k.clone(), i.clone(), uki.clone()].into());
    let pulled = pull::pull(env, image, Some(&platform(arch)), wanted)
        .await
        .with_context(|| format!("pulling the base image {image} for {}", arch.as_str()))?;
    let file = |p: &str| pulled.flat.spooled(&pulled.spool, p).ok();
    let digest = pulled.resolved.digest.to_string();
    let (kernel, initramfs, origin) = match (file(&k), file(&i), file(&uki)) {
        (Some(k), Some(i), _) => (k, i, Origin::Imager),
        (_, _, Some(u)) => {
            let (k, i) = uki_sections(&u, work, arch).with_context(|| format!("{image}: {uki}"))?;
            (k, i, Origin::Uki)
        }
        _ => bail!(
            "the base image {image} has no kernel for {}: neither /{k} with /{i} nor /{uki}",
            arch.as_str()
        ),
    };
    kernel_is(&kernel, arch, &format!("the base image {image}"))?;
    Ok(BaseAssets {
        kernel,
        initramfs,
        image: image.to_string(),
        digest,
        origin,
        _pulled: Some(pulled),
    })
}

fn kernel_is(kernel: &Path, arch: Arch, from: &str) -> Result<()> {
    let info = kernel::sniff(&mut std::fs::File::open(kernel)?)
        .with_context(|| format!("{from}: the {} kernel", arch.as_str()))?;
    if info.arch != arch.as_str() {
        bail!(
            "{from} holds an {} kernel where {} was asked for",
            info.arch,
            arch.as_str()
        );
    }
    Ok(())
}

/// The factory's kernel and initramfs for a schematic already submitted, downloaded and
/// hashed; the kernel must be for `arch`.
pub async fn factory_base(
    client: &Client,
    factory: &Factory,
    schematic_id: &str,
    talos: &str,
    arch: Arch,
    work: &Path,
) -> Result<BaseAssets> {
    let v = format!("v{}", talos.trim_start_matches('v'));
    let target = Target::new(&v, arch.as_str(), "metal", false)?;
    let u = urls::render(factory, schematic_id, &target)?;
    let a = arch.as_str();
    let kernel = work.join(format!("factory-{a}-vmlinuz"));
    let initramfs = work.join(format!("factory-{a}-initramfs.xz"));
    let k = client
        .download(&u.kernel, Some(&kernel), &format!("kernel-{a}"))
        .await
        .context("downloading the factory kernel")?;
    client
        .download(&u.initramfs, Some(&initramfs), &format!("initramfs-{a}.xz"))
        .await
        .context("downloading the factory initramfs")?;
    let image = format!("{}/image/{schematic_id}/{v}", factory.base);
    kernel_is(&kernel, arch, &format!("the factory's {}", u.kernel))?;
    Ok(BaseAssets {
        kernel,
        initramfs,
        image,
        digest: k.digest.to_string(),
        origin: Origin::Factory,
        _pulled: None,
    })
}

/// Copies a UKI's `.linux` and `.initrd` sections out to files.
fn uki_sections(uki: &Path, work: &Path, arch: Arch) -> Result<(PathBuf, PathBuf)> {
    let mut f = std::fs::File::open(uki)?;
    let info = kernel::sniff(&mut f)?;
    let u = info
        .uki
        .context("vmlinuz.efi is not a UKI (no .linux section)")?;
    let mut out = Vec::new();
    for (name, file) in [(".linux", "vmlinuz"), (".initrd", "initramfs.xz")] {
        let s = u
            .section(name)
            .with_context(|| format!("the UKI has no {name} section"))?;
        let dest = work.join(format!("uki-{}-{file}", arch.as_str()));
        f.seek(SeekFrom::Start(s.offset))?;
        let mut w = std::io::BufWriter::new(std::fs::File::create(&dest)?);
        std::io::copy(&mut (&mut f).take(s.size), &mut w)?;
        w.flush()?;
        out.push(dest);
    }
    Ok((out.remove(0), out.remove(0)))
}

/// An extension image, pulled and read: its manifest and rootfs, content in the spool.
pub struct Extension {
    pub image: String,
    pub digest: String,
    pub input: ExtensionInput,
    /// What Talos builds although tdg would be stricter (paths off Talos's list).
    pub warnings: Vec<String>,
    _pulled: Pulled,
}

/// A reference pinned `tag@sha256:…` must still be what the tag names: a moved tag is an
/// error, not a silent switch to other bytes.
/// `build.signatures`: each input image (the base, every extension) resolved to its digest and
/// judged by its signatures, as the Image Factory checks extensions before it builds. Returns
/// the build with every input pinned to the digest that was judged, so no stage reads another.
pub async fn signed(
    env: &Env,
    build: &crate::spec::Build,
    policy: &crate::spec::SignatureExpectation,
) -> Result<(crate::spec::Build, String)> {
    use crate::check::Verdict;
    let mut b = build.clone();
    let mut refs: Vec<&mut ImageRef> = Vec::new();
    if let crate::spec::BaseSource::Image(r) = &mut b.base {
        refs.push(r);
    }
    refs.extend(b.extensions.iter_mut());
    let n = refs.len();
    for r in refs {
        let source = crate::oci::source::Source::open(&env.mirrors.endpoint(r))?;
        let (_, digest) = source
            .top(r)
            .await
            .with_context(|| format!("build.signatures: resolving {r}"))?;
        let m = match pull::signatures(env, r, &digest).await {
            crate::sign::State::Fetched(m) => m,
            crate::sign::State::Failed(e) => bail!("build.signatures: {r}: {e}"),
            crate::sign::State::NotAsked => bail!("build.signatures: {r}: not looked up"),
        };
        match crate::check::signature::judge(policy, &m) {
            Ok(()) | Err(Verdict::Warn(_)) => {}
            Err(Verdict::Fail(why) | Verdict::Error(why) | Verdict::Skip(why)) => {
                bail!("build.signatures: {r}: {why}; nothing was built")
            }
        }
        r.digest = Some(digest);
    }
    Ok((
        b,
        format!("{n} input images signed as build.signatures asks"),
    ))
}

pub async fn check_pin(env: &Env, image: &ImageRef) -> Result<()> {
    let (Some(tag), Some(pin)) = (&image.tag, &image.digest) else {
        return Ok(());
    };
    let unpinned = ImageRef {
        digest: None,
        ..image.clone()
    };
    let source = crate::oci::source::Source::open(&env.mirrors.endpoint(&unpinned))?;
    let (_, now) = source
        .top(&unpinned)
        .await
        .with_context(|| format!("resolving the pinned {image}"))?;
    if &now != pin {
        bail!(
            "{} is pinned to {pin}, but the tag {tag} now points at {now}",
            unpinned
        );
    }
    Ok(())
}

/// An extension input, judged as the imager judges it, or (`strict`, `build.strict`) as
/// siderolabs/extensions' validator does, before anything is built.
pub async fn extension(
    env: &Env,
    image: &ImageRef,
    arch: Arch,
    talos: &str,
    strict: bool,
) -> Result<Extension> {
    let pulled = pull::pull(env, image, Some(&platform(arch)), Wanted::Everything)
        .await
        .with_context(|| format!("pulling the extension {image} for {}", arch.as_str()))?;
    let tree = &pulled.flat.tree;
    // Through a symlink within the image, as Talos's `os.Open` follows it.
    let manifest_at = tree
        .resolve(MANIFEST, true)
        .unwrap_or_else(|_| MANIFEST.to_string());
    let manifest_path = pulled
        .flat
        .spooled(&pulled.spool, &manifest_at)
        .with_context(|| format!("the extension {image} has no /manifest.yaml"))?;
    let m = extensions::parse_manifest(&read_capped(&manifest_path, MAX_MANIFEST)?)
        .map_err(|e| anyhow::anyhow!("the extension {image}: {e}"))?;
    extensions::compatible(&m.metadata, talos)
        .map_err(|e| anyhow::anyhow!("the extension {image} is incompatible: {e}"))?;
    let mut rules = PathRules::for_talos(Some(talos));
    if strict {
        rules = rules.strict();
        let problems = validator_problems(&pulled, &m.metadata)?;
        if !problems.is_empty() {
            bail!(
                "the extension {image} fails the extensions validator (build.strict): {}",
                problems.join("; ")
            );
        }
    }
    let review = extension_paths::review(tree, &rules);
    if let Some(why) = review.refusal(&rules) {
        bail!("the extension {image}: {why}");
    }
    let mut warnings: Vec<String> = review
        .warning(&rules)
        .map(|w| format!("the extension {image}: {w}"))
        .into_iter()
        .collect();
    // Content that serves another architecture: a warning, or (strict) a refusal.
    if let Some(what) = foreign_content(&pulled, arch) {
        if strict {
            bail!("the extension {image} holds {what}");
        }
        warnings.push(format!("the extension {image} holds {what}"));
    }
    let rootfs = rootfs_of(&pulled, image)?;
    Ok(Extension {
        image: image.to_string(),
        digest: pulled.resolved.digest.to_string(),
        input: ExtensionInput {
            metadata: m.metadata,
            rootfs,
        },
        warnings,
        _pulled: pulled,
    })
}

/// What siderolabs/extensions' validator finds wrong: the version, and each extension
/// service's spec.
fn validator_problems(pulled: &Pulled, metadata: &Metadata) -> Result<Vec<String>> {
    let tree = &pulled.flat.tree;
    let mut problems: Vec<String> =
        crate::talos::validator::version(&metadata.name, &metadata.version)
            .err()
            .into_iter()
            .map(String::from)
            .collect();
    let mut files = Vec::new();
    for p in crate::talos::validator::service_files(tree) {
        let at = tree.resolve(&p, true).unwrap_or_else(|_| p.clone());
        let text = read_capped(&pulled.flat.spooled(&pulled.spool, &at)?, MAX_MANIFEST)?;
        files.push((p, text.into_bytes()));
    }
    problems.extend(crate::talos::validator::service_specs(&files));
    Ok(problems)
}

/// The rootfs files that serve another architecture than `arch`, said in one phrase.
fn foreign_content(pulled: &Pulled, arch: Arch) -> Option<String> {
    let target = arch.into();
    let mut foreign = Vec::new();
    for (p, e) in pulled.flat.tree.iter() {
        let (ImageEntry::Rootfs(rel), true) =
            (extension_paths::image_entry(&p), e.kind.has_content())
        else {
            continue;
        };
        let mut head = [0u8; 20];
        let n = match pulled.flat.spooled(&pulled.spool, &p) {
            Ok(f) => std::fs::File::open(f)
                .and_then(|mut f| std::io::Read::read(&mut f, &mut head))
                .unwrap_or(0),
            Err(_) => 0,
        };
        foreign.extend(crate::talos::foreign::foreign(rel, &head[..n], target));
    }
    if foreign.is_empty() {
        return None;
    }
    Some(format!(
        "{} serving another architecture than {}: {}{}",
        if foreign.len() == 1 {
            "1 file"
        } else {
            "files"
        },
        arch.as_str(),
        foreign
            .iter()
            .take(3)
            .cloned()
            .collect::<Vec<_>>()
            .join(", "),
        if foreign.len() > 3 { ", …" } else { "" }
    ))
}

/// The extension's `/rootfs`, as the files of its squashfs.
fn rootfs_of(pulled: &Pulled, image: &ImageRef) -> Result<Vec<FileSpec>> {
    let mut rootfs = Vec::new();
    for (p, e) in pulled.flat.tree.iter() {
        let ImageEntry::Rootfs(rel) = extension_paths::image_entry(&p) else {
            continue;
        };
        rootfs.push(match e.kind {
            Kind::Dir => FileSpec {
                mode: e.mode,
                ..FileSpec::dir(rel)
            },
            Kind::File | Kind::Hardlink => {
                FileSpec::from_path(rel, pulled.flat.spooled(&pulled.spool, &p)?, e.mode)
            }
            Kind::Symlink => FileSpec::symlink(rel, e.link.as_deref().unwrap_or_default()),
            other => bail!(
                "the extension {image} holds a {} at /{p}, which a squashfs for Talos cannot carry",
                other.name()
            ),
        });
    }
    Ok(rootfs)
}
