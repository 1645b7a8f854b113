//! `tdg build`: the stages that make an image pass its spec. Pull the base and extension
//! images (platform = arch); validate every extension (manifest, Talos compatibility, allowed
//! rootfs paths) before building anything; append the extensions to the base initramfs as the
//! imager does; lay out kernel, initramfs, reports and checksums; package a scratch image (an
//! index for several arches) into an OCI layout. Each stage is timed.
//!
//! Publishing is a separate step ([`publish`]): the caller verifies the layout against the spec
//! first, and pushes (blobs first, the tag last) only what passed. A build proves the token may
//! push before it pulls anything, but pushes nothing itself.

pub mod assets;
pub mod inputs;
pub mod matchbox;
pub mod package;
pub mod pgzip;
pub mod served;

use std::path::PathBuf;
use std::time::{Duration, Instant, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use serde::Serialize;

use crate::factory::client::Client;
use crate::imager::bake::Quirks;
use crate::oci::layout::{LayoutSource, LayoutWriter};
use crate::pull::Env;
use crate::reference::ImageRef;
use crate::spec::{Arch, BaseSource, Spec};
use crate::talos::report::REVISION_LABEL;
use crate::talos::version::SemVer;

pub struct Options {
    /// Write the image to this OCI layout (created or added to).
    pub output: Option<Output>,
    /// Where the image is to be published once verified (`publish`); checked before building.
    pub push: Option<PushTarget>,
    /// The push goes out unverified (`--no-verify`): refused for a release tag.
    pub no_verify: bool,
    /// Also write the assets and a matchbox profile and group here.
    pub matchbox: Option<PathBuf>,
    /// mtime of every layer entry and the image's `created`, from SOURCE_DATE_EPOCH.
    pub epoch: u64,
}

/// An OCI layout to write the image into, and the tag it gets there.
#[derive(Debug, Clone)]
pub struct Output {
    pub dir: PathBuf,
    pub tag: Option<String>,
}

/// Where `--push` sends the image.
#[derive(Debug, Clone)]
pub enum PushTarget {
    /// The spec's `build.push`.
    SpecDefault,
    To(ImageRef),
}

#[derive(Debug, Serialize, Clone)]
pub struct Stage {
    pub name: String,
    pub arch: Option<String>,
    pub duration_ms: f64,
    pub detail: String,
}

#[derive(Debug, Serialize)]
pub struct Built {
    pub spec: String,
    pub digest: String,
    /// The OCI layout the image was written to: `--output`'s, or a temporary one.
    pub layout: String,
    pub tag: String,
    /// `REF@digest` once [`publish`] pushed it.
    pub pushed: Option<String>,
    /// Why nothing was pushed although a push was asked for (the spec failed), once decided.
    pub not_pushed: Option<String>,
    pub stages: Vec<Stage>,
    /// What Talos accepts but tdg would be stricter about, once each.
    pub warnings: Vec<String>,
    /// Keeps a temporary layout (no `--output`) alive while the caller reads it.
    #[serde(skip)]
    pub temporary: Option<crate::temps::Dir>,
    /// Where [`publish`] sends the image, and the release-tag rule it obeys.
    #[serde(skip)]
    target: Option<(ImageRef, regex::Regex)>,
}

struct Timer(Vec<Stage>);

impl Timer {
    fn run<T>(
        &mut self,
        name: &str,
        arch: Option<Arch>,
        f: impl FnOnce() -> Result<(T, String)>,
    ) -> Result<T> {
        let start = Instant::now();
        let (v, detail) = f().with_context(|| {
            format!(
                "stage {name}{}",
                arch.map(|a| format!(" ({})", a.as_str()))
                    .unwrap_or_default()
            )
        })?;
        self.record(name, arch, start.elapsed(), detail);
        Ok(v)
    }
    fn record(&mut self, name: &str, arch: Option<Arch>, d: Duration, detail: String) {
        self.0.push(Stage {
            name: name.into(),
            arch: arch.map(|a| a.as_str().into()),
            duration_ms: d.as_secs_f64() * 1e3,
            detail,
        });
    }
}

fn mib(n: u64) -> String {
    format!("{:.1} MiB", n as f64 / 1048576.0)
}

impl Built {
    /// The built image in its layout, by digest: what is verified before anything is pushed.
    pub fn image(&self) -> Result<ImageRef> {
        Ok(format!("oci:{}@{}", self.layout, self.digest).parse()?)
    }

    /// Where the image is to be pushed, when a push was asked for.
    pub fn push_target(&self) -> Option<&ImageRef> {
        self.target.as_ref().map(|(r, _)| r)
    }
}

/// What one build is made of, resolved from the spec and options before any input is pulled.
struct Plan<'a> {
    spec: &'a Spec,
    build: &'a crate::spec::Build,
    talos: &'a str,
    /// The Talos-version quirks the initramfs is rebuilt by.
    quirks: Quirks,
    push: Option<ImageRef>,
    tag: String,
    /// `org.opencontainers.image.created`, from the epoch.
    created: String,
    epoch: u64,
}

/// One arch's inputs, pulled and validated.
struct ArchInputs {
    arch: Arch,
    base: inputs::BaseAssets,
    extensions: Vec<inputs::Extension>,
}

pub async fn build(env: &Env, spec: &Spec, opts: &Options) -> Result<Built> {
    let mut plan = plan(spec, opts)?;
    let mut t = Timer(Vec::new());
    // Who made the inputs, before anything else: a refusal builds and pushes nothing.
    let pinned;
    if let Some(policy) = &plan.build.signatures {
        let start = Instant::now();
        let (b, detail) = inputs::signed(env, plan.build, policy).await?;
        pinned = b;
        plan.build = &pinned;
        t.record("verify input signatures", None, start.elapsed(), detail);
    }
    let work = crate::temps::Dir::new(&env.cache.root().join("tmp"), "build-")
        .context("creating a build directory in the cache")?;
    if let Some(target) = &plan.push {
        // An hour's build for a token that cannot push is the failure this prevents.
        let start = Instant::now();
        crate::oci::push::preflight(target, &env.mirrors).await?;
        t.record(
            "push preflight",
            None,
            start.elapsed(),
            format!("{target}: may push"),
        );
    }
    let inputs = resolve_inputs(env, &plan, work.path(), &mut t).await?;
    let mut warnings: Vec<String> = inputs
        .iter()
        .flat_map(|i| i.extensions.iter().flat_map(|e| e.warnings.clone()))
        .collect();
    warnings.sort();
    warnings.dedup();
    let (out_dir, temporary) = match &opts.output {
        Some(o) => (o.dir.clone(), None),
        None => {
            let d = crate::temps::Dir::new(&env.cache.root().join("tmp"), "image-")?;
            (d.path().to_path_buf(), Some(d))
        }
    };
    let mut layout = LayoutWriter::create(&out_dir)?;
    let mut manifests = Vec::new();
    for i in &inputs {
        manifests.push(build_arch(
            &plan,
            i,
            &layout,
            opts,
            env.limits,
            work.path(),
            &mut t,
        )?);
    }
    let mut annotations = plan.build.annotations.clone();
    annotations.insert(
        "org.opencontainers.image.created".into(),
        plan.created.clone(),
    );
    let top = t.run("tag", None, || {
        let d = package::finish(&mut layout, manifests, &annotations, &plan.tag)?;
        let detail = format!("{} -> {}", plan.tag, d.digest);
        Ok((d, detail))
    })?;
    Ok(Built {
        spec: spec.name.clone(),
        digest: top.digest.to_string(),
        layout: out_dir.display().to_string(),
        tag: plan.tag,
        pushed: None,
        not_pushed: None,
        stages: t.0,
        warnings,
        temporary,
        target: plan.push.map(|r| (r, plan.build.immutable_tags.clone())),
    })
}

/// Pushes a built image to its target: call it only for an image that passed its spec.
/// Records the push stage and `pushed`; a build without a push target is left as it is.
pub async fn publish(env: &Env, b: &mut Built) -> Result<()> {
    let Some((target, immutable)) = b.target.clone() else {
        return Ok(());
    };
    let mut t = Timer(Vec::new());
    let built: crate::digest::Digest = b.digest.parse()?;
    let pushed = push(
        env,
        std::path::Path::new(&b.layout),
        &b.tag,
        &target,
        &built,
        &immutable,
        &mut t,
    )
    .await?;
    b.stages.extend(t.0);
    b.pushed = Some(pushed);
    Ok(())
}

fn plan<'a>(spec: &'a Spec, opts: &Options) -> Result<Plan<'a>> {
    let b = spec
        .build
        .as_ref()
        .with_context(|| format!("{} has no build section", spec.path.display()))?;
    let talos = spec.talos.as_deref().context("build needs talos")?;
    SemVer::parse_tolerant(talos)?;
    let quirks = Quirks::new(talos);
    let push = match &opts.push {
        Some(PushTarget::To(r)) => Some(r.clone()),
        Some(PushTarget::SpecDefault) => Some(
            b.push
                .clone()
                .context("--push, but the spec's build has no push reference")?,
        ),
        None => None,
    };
    let tag = opts
        .output
        .as_ref()
        .and_then(|o| o.tag.clone())
        .or_else(|| push.as_ref().and_then(|r| r.tag.clone()))
        .unwrap_or_else(|| "latest".into());
    if let (Some(target), true) = (&push, opts.no_verify) {
        let target_tag = target.tag.as_deref().unwrap_or(&tag);
        if b.immutable_tags.is_match(target_tag) {
            return Err(crate::error::Error::usage(format!(
                "--no-verify pushes an unverified image, and {target} is a release tag, which never moves: verify it (drop --no-verify), or push a moving tag"
            ))
            .into());
        }
    }
    let created =
        humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(opts.epoch)).to_string();
    Ok(Plan {
        spec,
        build: b,
        talos,
        quirks,
        push,
        tag,
        created,
        epoch: opts.epoch,
    })
}

/// Inputs for every arch first: a bad extension or base fails before anything is built.
async fn resolve_inputs(
    env: &Env,
    plan: &Plan<'_>,
    work: &std::path::Path,
    t: &mut Timer,
) -> Result<Vec<ArchInputs>> {
    let b = plan.build;
    let base_image = match &b.base {
        BaseSource::Image(r) => Some(r),
        BaseSource::Factory { .. } => None,
    };
    for r in base_image.into_iter().chain(&b.extensions) {
        inputs::check_pin(env, r).await?;
    }
    let client = match &b.base {
        BaseSource::Factory {
            factory,
            schematic,
            schematic_id,
            schematic_text,
        } => {
            // Submitted once, first: a factory that reads the schematic differently stops
            // the build before a byte of its assets is used.
            let start = Instant::now();
            let client = Client::new(factory.clone())?;
            let text = schematic_text.clone().into_bytes();
            client.submit(text, schematic_id, schematic).await?;
            t.record(
                "submit schematic",
                None,
                start.elapsed(),
                format!("{} agrees: {}", client.host(), &schematic_id[..12]),
            );
            Some((client, factory, schematic_id))
        }
        BaseSource::Image(_) => None,
    };
    let mut out = Vec::new();
    for &arch in &b.arches {
        let start = Instant::now();
        let base = match (&b.base, &client) {
            (_, Some((c, factory, id))) => {
                inputs::factory_base(c, factory, id, plan.talos, arch, work).await?
            }
            (BaseSource::Image(r), None) => inputs::base(env, r, arch, work).await?,
            (BaseSource::Factory { .. }, None) => unreachable!("the client is made above"),
        };
        t.record(
            "pull base",
            Some(arch),
            start.elapsed(),
            base.describe().replace(&base.digest, &base.digest[..19]),
        );
        let start = Instant::now();
        let mut extensions = Vec::new();
        for e in &b.extensions {
            extensions.push(inputs::extension(env, e, arch, plan.talos, b.strict).await?);
        }
        let names: Vec<String> = extensions
            .iter()
            .map(|e| format!("{} {}", e.input.metadata.name, e.input.metadata.version))
            .collect();
        t.record(
            "pull + validate extensions",
            Some(arch),
            start.elapsed(),
            names.join(", "),
        );
        out.push(ArchInputs {
            arch,
            base,
            extensions,
        });
    }
    Ok(out)
}

/// One arch: the initramfs with its extensions, the asset tree with report and checksums,
/// the matchbox files when asked, and the arch's image manifest in the layout.
fn build_arch(
    plan: &Plan<'_>,
    i: &ArchInputs,
    layout: &LayoutWriter,
    opts: &Options,
    limits: crate::talos::initramfs::Limits,
    work: &std::path::Path,
    t: &mut Timer,
) -> Result<crate::oci::manifest::Descriptor> {
    let (b, arch) = (plan.build, i.arch);
    let stage = work.join(format!("stage-{}", arch.as_str()));
    let root = stage.join(b.layout_for(arch));
    std::fs::create_dir_all(&root)?;
    let initramfs = work.join(format!("initramfs-{}", arch.as_str()));
    let scratch = work.join(format!("rebuild-{}", arch.as_str()));
    std::fs::create_dir_all(&scratch)?;
    let (_, _, rebuilt) = t.run("initramfs", Some(arch), || {
        let r = assets::initramfs(
            &i.base,
            &i.extensions,
            &plan.quirks,
            limits,
            &initramfs,
            &scratch,
        )?;
        let mut detail = format!(
            "{} base + {} extensions ({:?}) = {}",
            mib(std::fs::metadata(&i.base.initramfs)?.len()),
            i.extensions.len(),
            plan.quirks.compression(),
            mib(r.1)
        )
        .to_lowercase();
        if let Some(rb) = &r.2 {
            if let Some(k) = &rb.modules_for {
                detail += &format!(", modules.dep for {k}");
            }
            if !rb.microcode.is_empty() {
                detail += &format!(", microcode {}", rb.microcode.len());
            }
            if rb.from_base > 0 {
                detail += &format!(", {} layers kept from the base", rb.from_base);
            }
        }
        Ok((r, detail))
    })?;
    let facts = assets::ReportFacts {
        arch: arch.as_str(),
        talos: plan.talos,
        spec: &plan.spec.name,
        base: &i.base,
        extensions: &i.extensions,
        layers: rebuilt.as_ref().map(|r| r.layers.as_slice()).unwrap_or(&[]),
        extra: &b.report,
        revision: b.labels.get(REVISION_LABEL).map(String::as_str),
        date: plan.created.clone(),
    };
    let written = t.run("layout, report, checksums", Some(arch), || {
        let w = assets::layout(&root, &i.base.kernel, &initramfs, &facts)?;
        let n = w.len();
        Ok((w, format!("{n} files under {}", b.layout_for(arch))))
    })?;
    if let Some(dir) = &opts.matchbox {
        t.run("matchbox", Some(arch), || {
            let multi = b.arches.len() > 1;
            let name = &plan.spec.name;
            matchbox::write(dir, name, arch, multi, &root, &written, &b.kernel_args)?;
            Ok(((), dir.display().to_string()))
        })?;
    }
    let platform = inputs::platform(arch);
    let mut annotations = b.annotations.clone();
    annotations.insert(
        "org.opencontainers.image.created".into(),
        plan.created.clone(),
    );
    t.run("package", Some(arch), || {
        let d = package::image(
            layout,
            &stage,
            &platform,
            &b.labels,
            &annotations,
            plan.epoch,
            &plan.created,
        )?;
        let detail = format!("manifest {}", &d.digest.to_string()[..19]);
        Ok((d, detail))
    })
}

/// Blobs first, the tag last; what the registry holds must be what was built. A tag that
/// matches `immutable` and already names another digest is not moved (nothing is pushed); the
/// same digest again is a success; any other tag moves, and the stage says from where.
async fn push(
    env: &Env,
    out_dir: &std::path::Path,
    tag: &str,
    target: &ImageRef,
    built: &crate::digest::Digest,
    immutable: &regex::Regex,
    t: &mut Timer,
) -> Result<String> {
    let start = Instant::now();
    let before = crate::oci::push::current_digest(target, &env.mirrors).await?;
    let target_tag = target.tag.clone().unwrap_or_else(|| tag.to_string());
    let moved = match &before {
        Some(d) if d == built => {
            t.record(
                "push",
                None,
                start.elapsed(),
                format!("{target} already at {built}: nothing to push"),
            );
            return Ok(format!("{target}@{built}"));
        }
        Some(d) if target.digest.is_none() && immutable.is_match(&target_tag) => {
            return Err(crate::error::Error::usage(format!(
                "{target} is a release tag and already points at {d}; the build made {built}. Release tags never move: push another tag, or fix the build"
            ))
            .into());
        }
        Some(d) => format!(", tag moved from {d}"),
        None => String::new(),
    };
    let src = LayoutSource::open(out_dir)?;
    let digest =
        crate::oci::push::push_layout_over(&src, Some(tag), target, &env.mirrors, Some(before))
            .await
            .with_context(|| format!("pushing to {target}"))?;
    if &digest != built {
        bail!("pushed {digest}, but the build made {built}");
    }
    t.record(
        "push",
        None,
        start.elapsed(),
        format!("{target}@{digest}{moved}"),
    );
    Ok(format!("{target}@{digest}"))
}

pub fn human(b: &Built) -> String {
    let mut s = format!("built {} = {}\n", b.spec, b.digest);
    for st in &b.stages {
        s += &human_stage(st);
    }
    for w in &b.warnings {
        s += &format!("  warning: {w}\n");
    }
    if b.temporary.is_none() {
        s += &format!("  layout oci:{}:{}\n", b.layout, b.tag);
    }
    s
}

/// One timed stage, as `human` lists it.
pub fn human_stage(st: &Stage) -> String {
    format!(
        "  {:>9.1} ms  {:<28} {:<6} {}\n",
        st.duration_ms,
        st.name,
        st.arch.as_deref().unwrap_or(""),
        st.detail
    )
}
