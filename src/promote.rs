//! `tdg promote SRC DST`: put the image SRC names on the tag DST, by digest, with every
//! platform of an index and every referrer (signatures, SBOMs), across repositories and
//! registries. The plan is made first, from the documents alone; a dry run prints it and a
//! real run carries it out in an order that never lets DST name a partial image: blobs, child
//! manifests, the image by digest, its referrers, and the tag last.

use std::collections::BTreeSet;

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::oci::manifest::{self, Descriptor, Manifest};
use crate::oci::registry::RegistrySource;
use crate::oci::source::Source;
use crate::pull::Env;
use crate::reference::ImageRef;

pub struct Request {
    pub source: ImageRef,
    pub target: ImageRef,
    /// Lets a tag that already names another image move; never a release tag.
    pub allow_move: bool,
    /// Tags that never move once set (`build.immutable_tags`' default).
    pub immutable: regex::Regex,
}

/// The image SRC resolved to, with its top document.
pub struct Resolved {
    source: Source,
    top: Vec<u8>,
    pub digest: Digest,
}

/// What a promotion did (or, dry, would do).
pub struct Promotion {
    pub digest: Digest,
    /// What DST named before: `None` when the tag was not there.
    pub before: Option<Digest>,
    /// One line per document or blob copied, in order.
    pub steps: Vec<String>,
    /// DST already named the image: nothing was copied.
    pub unchanged: bool,
    /// The registry accepted the tag, but reading it back failed: why, for the user.
    pub unconfirmed: Option<String>,
}

impl Promotion {
    /// `DST: <old or none> -> <new>`.
    pub fn summary(&self, target: &ImageRef) -> String {
        let before = self
            .before
            .as_ref()
            .map_or("none".to_string(), |d| d.to_string());
        format!("{target}: {before} -> {}", self.digest)
    }
}

/// The digest SRC names now, through mirrors.
pub async fn resolve(env: &Env, source: &ImageRef) -> Result<Resolved> {
    let src = Source::open(&env.mirrors.endpoint(source))?;
    let (top, digest) = src.top(source).await?;
    Ok(Resolved {
        source: src,
        top,
        digest,
    })
}

/// Proves the credentials may push to DST, before anything is read or verified.
pub async fn preflight(env: &Env, target: &ImageRef) -> Result<()> {
    Ok(crate::oci::push::preflight(target, &env.mirrors).await?)
}

/// DST's current digest, after rule 2: a release tag that names another image is never moved,
/// and no other tag moves without `allow_move`. Checked before anything is copied.
pub async fn guard(env: &Env, req: &Request, digest: &Digest) -> Result<Option<Digest>> {
    let tag =
        req.target.tag.as_deref().ok_or_else(|| {
            Error::usage(format!("{}: promote to a tag, not a digest", req.target))
        })?;
    if req.target.digest.is_some() {
        return Err(Error::usage(format!(
            "{}: promote to a tag without a pinned digest",
            req.target
        )));
    }
    let before = crate::oci::push::current_digest(&req.target, &env.mirrors).await?;
    match &before {
        Some(old) if old != digest && req.immutable.is_match(tag) => Err(Error::usage(format!(
            "{} is a release tag and already points at {old}, not {digest}; release tags never move (--allow-move does not lift this)",
            req.target
        ))),
        Some(old) if old != digest && !req.allow_move => Err(Error::usage(format!(
            "{} already points at {old}, not {digest}; pass --allow-move to move it",
            req.target
        ))),
        _ => Ok(before),
    }
}

/// One thing to put on DST.
enum Item {
    Blob(Descriptor),
    /// A manifest under a digest or a tag.
    Manifest {
        reference: String,
        bytes: Vec<u8>,
        media_type: String,
        label: String,
    },
    /// The referrers tag schema's index for a subject, for a DST without the referrers API.
    FallbackIndex {
        subject: Digest,
        entries: Vec<crate::oci::registry::Referrer>,
    },
}

/// Copies the resolved image to DST (or, `dry_run`, only plans it).
pub async fn promote(
    env: &Env,
    req: &Request,
    resolved: &Resolved,
    before: Option<Digest>,
    dry_run: bool,
) -> Result<Promotion> {
    let digest = resolved.digest.clone();
    if before.as_ref() == Some(&digest) {
        return Ok(Promotion {
            steps: vec![format!(
                "{} already at {digest}: nothing to copy",
                req.target
            )],
            digest,
            before,
            unchanged: true,
            unconfirmed: None,
        });
    }
    let items = plan(req, resolved).await?;
    let steps = items.iter().map(describe).collect();
    let mut unconfirmed = None;
    if !dry_run {
        let dst = crate::oci::push::registry(&req.target, &env.mirrors)?;
        let (tag, rest) = items.split_last().expect("a plan ends with the tag");
        for item in rest {
            carry_out(env, &resolved.source, &dst, item).await?;
        }
        // No compare-and-set in the distribution API: re-read DST just before writing it, so a
        // push that raced this copy is found, not overwritten.
        let now = crate::oci::push::current_digest(&req.target, &env.mirrors).await?;
        if now != before {
            return Err(Error::usage(format!(
                "{}: another push set the tag to {} during the copy; it was {} before",
                req.target,
                now.map_or("nothing".into(), |d| d.to_string()),
                before
                    .as_ref()
                    .map_or("not there".into(), |d| d.to_string())
            )));
        }
        carry_out(env, &resolved.source, &dst, tag).await?;
        // The registry accepted the tag: it moved. A read that then fails leaves only the
        // confirmation unknown, which is said, not turned into "nothing happened".
        match crate::oci::push::current_digest(&req.target, &env.mirrors).await {
            Ok(now) if now.as_ref() == Some(&digest) => {}
            Ok(now) => {
                return Err(Error::integrity(format!(
                    "{} names {} after the copy, not {digest}",
                    req.target,
                    now.map_or("nothing".into(), |d| d.to_string())
                )))
            }
            Err(e) => unconfirmed = Some(format!("{e:#}")),
        }
    }
    Ok(Promotion {
        digest,
        before,
        steps,
        unchanged: false,
        unconfirmed,
    })
}

async fn plan(req: &Request, resolved: &Resolved) -> Result<Vec<Item>> {
    let src = &resolved.source;
    let mut items = Vec::new();
    let mut seen = BTreeSet::new();
    let top_type = media_type(&resolved.top)?;
    let top_label = format!("{} {}", kind(&top_type), resolved.digest);
    let mut subjects = vec![resolved.digest.clone()];
    // The image itself by digest (after its blobs, or its platforms' manifests) before its
    // referrers; the tag last of all.
    match parse(&resolved.top, &top_type)? {
        Manifest::Index(index) => {
            for child in &index.manifests {
                let bytes = src.child(child).await?;
                let platform = child
                    .platform
                    .as_ref()
                    .map(|p| p.platform().to_string())
                    .unwrap_or_else(|| "no platform".into());
                image(
                    &mut items,
                    &mut seen,
                    child.digest.to_string(),
                    bytes,
                    &child.media_type,
                    format!("manifest {} ({platform})", child.digest),
                )?;
                subjects.push(child.digest.clone());
            }
            items.push(Item::Manifest {
                reference: resolved.digest.to_string(),
                bytes: resolved.top.clone(),
                media_type: top_type.clone(),
                label: top_label,
            });
        }
        Manifest::Image(_) => image(
            &mut items,
            &mut seen,
            resolved.digest.to_string(),
            resolved.top.clone(),
            &top_type,
            top_label,
        )?,
    }
    for subject in &subjects {
        referrers(&mut items, &mut seen, src, subject).await?;
    }
    let tag = req.target.tag.clone().unwrap_or_default();
    items.push(Item::Manifest {
        reference: tag.clone(),
        bytes: resolved.top.clone(),
        media_type: top_type,
        label: format!("tag {tag} -> {}", resolved.digest),
    });
    Ok(items)
}

/// An image manifest and its blobs, blobs first.
fn image(
    items: &mut Vec<Item>,
    seen: &mut BTreeSet<Digest>,
    reference: String,
    bytes: Vec<u8>,
    descriptor_type: &str,
    label: String,
) -> Result<()> {
    let media_type = media_type(&bytes).unwrap_or_else(|_| descriptor_type.to_string());
    let m = match parse(&bytes, &media_type)? {
        Manifest::Image(m) => m,
        Manifest::Index(_) => {
            return Err(anyhow::anyhow!("{label}: nested image indexes are not supported").into())
        }
    };
    for b in std::iter::once(m.config).chain(m.layers) {
        if seen.insert(b.digest.clone()) {
            items.push(Item::Blob(b));
        }
    }
    items.push(Item::Manifest {
        reference,
        bytes,
        media_type,
        label,
    });
    Ok(())
}

/// Cosign keeps signatures, attestations and SBOMs under these tags of the subject's digest
/// (sigstore/cosign pkg/oci/remote: `sha256-<hex>.sig` and friends), outside the referrers API.
const COSIGN_SUFFIXES: &[&str] = &["sig", "att", "sbom"];

/// A layout source has no referrers to copy: its index holds no subjects' artifacts.
async fn referrers(
    items: &mut Vec<Item>,
    seen: &mut BTreeSet<Digest>,
    source: &Source,
    subject: &Digest,
) -> Result<()> {
    let Source::Registry(src) = source else {
        return Ok(());
    };
    let entries = src.referrers(subject).await?;
    for entry in &entries {
        let d: Digest = entry
            .digest
            .parse()
            .map_err(|e| anyhow::anyhow!("referrer of {subject}: {e}"))?;
        let desc = Descriptor {
            media_type: entry.media_type.clone(),
            digest: d.clone(),
            size: entry.size,
            platform: None,
            annotations: Default::default(),
        };
        let bytes = source.child(&desc).await?;
        let kind = entry.artifact_type.as_deref().unwrap_or("artifact");
        image(
            items,
            seen,
            d.to_string(),
            bytes,
            &entry.media_type,
            format!("referrer {d} ({kind}) of {subject}"),
        )?;
    }
    if !entries.is_empty() {
        items.push(Item::FallbackIndex {
            subject: subject.clone(),
            entries,
        });
    }
    let base = subject.to_string().replace(':', "-");
    for suffix in COSIGN_SUFFIXES {
        let tag = format!("{base}.{suffix}");
        if let Some(bytes) = src.manifest_if_any(&tag).await? {
            let d = Digest::of(&bytes);
            image(
                items,
                seen,
                tag.clone(),
                bytes,
                manifest::OCI_MANIFEST,
                format!("tag {tag} -> {d} (cosign {suffix})"),
            )?;
        }
    }
    Ok(())
}

async fn carry_out(env: &Env, src: &Source, dst: &RegistrySource, item: &Item) -> Result<()> {
    match item {
        Item::Blob(desc) => {
            let file = src.layer(desc, &env.cache).await?;
            dst.push_blob(&desc.digest, &file.path).await
        }
        Item::Manifest {
            reference,
            bytes,
            media_type,
            ..
        } => {
            dst.push_manifest(reference, bytes.clone(), media_type)
                .await
        }
        Item::FallbackIndex { subject, entries } => fallback_index(dst, subject, entries).await,
    }
}

/// A DST without the referrers API lists a subject's referrers under the tag `sha256-<hex>`
/// (distribution-spec "Referrers Tag Schema"): what it lists already, plus what was copied.
async fn fallback_index(
    dst: &RegistrySource,
    subject: &Digest,
    wanted: &[crate::oci::registry::Referrer],
) -> Result<()> {
    let mut have = dst.referrers(subject).await?;
    let missing: Vec<_> = wanted
        .iter()
        .filter(|w| !have.iter().any(|h| h.digest == w.digest))
        .cloned()
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    have.extend(missing);
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": manifest::OCI_INDEX,
        "manifests": have,
    });
    let tag = subject.to_string().replace(':', "-");
    let bytes = serde_json::to_vec(&index).map_err(anyhow::Error::from)?;
    dst.push_manifest(&tag, bytes, manifest::OCI_INDEX).await
}

fn describe(item: &Item) -> String {
    match item {
        Item::Blob(d) => format!("blob {} ({} bytes)", d.digest, d.size),
        Item::Manifest { label, .. } => label.clone(),
        Item::FallbackIndex { subject, .. } => {
            format!("referrers index for {subject} (tag schema, if DST lacks the API)")
        }
    }
}

fn kind(media_type: &str) -> &'static str {
    if media_type == manifest::OCI_INDEX || media_type == manifest::DOCKER_LIST {
        "index"
    } else {
        "manifest"
    }
}

fn parse(bytes: &[u8], media_type: &str) -> Result<Manifest> {
    Ok(manifest::parse(bytes, Some(media_type)).map_err(anyhow::Error::msg)?)
}

/// The document's own `mediaType`, else what its shape says (OCI documents may omit it).
fn media_type(bytes: &[u8]) -> Result<String> {
    let v: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| anyhow::anyhow!("manifest is not JSON: {e}"))?;
    Ok(match v.get("mediaType").and_then(|m| m.as_str()) {
        Some(m) => m.to_string(),
        None if v.get("manifests").is_some() => manifest::OCI_INDEX.to_string(),
        None => manifest::OCI_MANIFEST.to_string(),
    })
}
