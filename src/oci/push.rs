//! Pushing an image from an OCI layout to a registry: every blob first, then child manifests by
//! digest, and the tag last, so a tag never points at a partial image.

use anyhow::{bail, Result};

use super::layout::LayoutSource;
use super::manifest::{self, Descriptor, Manifest};
use super::mirror::{Endpoint, Mirrors};
use super::registry::RegistrySource;
use crate::digest::Digest;
use crate::reference::ImageRef;

/// The registry `target` is pushed to, through mirrors; a layout is not a push target.
pub(crate) fn registry(target: &ImageRef, mirrors: &Mirrors) -> Result<RegistrySource> {
    match mirrors.endpoint(target) {
        Endpoint::Registry {
            host,
            repository,
            plain_http,
            timeouts,
        } => Ok(RegistrySource::new(
            &host,
            &repository,
            plain_http,
            timeouts,
        )?),
        Endpoint::Layout { dir } => bail!(
            "cannot push {target}: it maps to the OCI layout {}; push to a registry",
            dir.display()
        ),
        Endpoint::Archive { .. } => {
            bail!("cannot push {target}: it is an archive; push to a registry")
        }
    }
}

/// Fails unless the credentials at hand may push to `target`'s repository.
pub async fn preflight(target: &ImageRef, mirrors: &Mirrors) -> Result<()> {
    Ok(registry(target, mirrors)?.preflight_push().await?)
}

/// The digest a registry tag names now, or `None` when the tag (or repository) is not there.
pub async fn current_digest(target: &ImageRef, mirrors: &Mirrors) -> Result<Option<Digest>> {
    let Some(tag) = &target.tag else {
        return Ok(None);
    };
    if let Endpoint::Layout { .. } | Endpoint::Archive { .. } = mirrors.endpoint(target) {
        return Ok(None);
    }
    let registry = registry(target, mirrors)?;
    Ok(registry.manifest_if_any(tag).await?.map(|b| Digest::of(&b)))
}

/// Pushes the layout's image named by `layout_tag` (or its only one) to `target`, through
/// mirrors. Returns the pushed top-level digest.
pub async fn push_layout(
    layout: &LayoutSource,
    layout_tag: Option<&str>,
    target: &ImageRef,
    mirrors: &Mirrors,
) -> Result<Digest> {
    push_layout_over(layout, layout_tag, target, mirrors, None).await
}

/// As `push_layout`, for a tag that must still name `seen` (what it named when the push was
/// planned) when the tag is written, and ours after. The distribution API has no
/// compare-and-set, so this narrows a race with another pusher to the moment of the tag's PUT
/// instead of the whole upload, and the loser of what remains hears of it.
pub async fn push_layout_over(
    layout: &LayoutSource,
    layout_tag: Option<&str>,
    target: &ImageRef,
    mirrors: &Mirrors,
    seen: Option<Option<Digest>>,
) -> Result<Digest> {
    let registry = registry(target, mirrors)?;
    let top = layout.top(layout_tag, None)?;
    let bytes = layout.document(&top.digest, Some(top.size))?;
    match manifest::parse(&bytes, Some(&top.media_type)).map_err(anyhow::Error::msg)? {
        Manifest::Index(index) => {
            for child in &index.manifests {
                push_image(layout, &registry, child).await?;
            }
        }
        Manifest::Image(_) => push_image(layout, &registry, &top).await?,
    }
    let reference = target.tag.clone().unwrap_or_else(|| top.digest.to_string());
    if let Some(d) = &target.digest {
        if d != &top.digest {
            bail!(
                "cannot push {target}: the layout's image is {}, not the pinned digest",
                top.digest
            );
        }
    }
    let raced = |now: Option<Digest>| {
        crate::error::Error::usage(format!(
            "{target}: another push set the tag to {} while this one ran; it was {} when this push began",
            now.map_or("nothing".into(), |d| d.to_string()),
            seen.clone().flatten().map_or("not there".into(), |d| d.to_string()),
        ))
    };
    if let Some(seen) = &seen {
        let now = current_digest(target, mirrors).await?;
        if &now != seen && now.as_ref() != Some(&top.digest) {
            return Err(raced(now).into());
        }
    }
    registry
        .push_manifest(&reference, bytes, &top.media_type)
        .await?;
    if seen.is_some() {
        // A read-back that fails says nothing of the tag: the registry accepted our PUT.
        if let Ok(now) = current_digest(target, mirrors).await {
            if now.as_ref() != Some(&top.digest) {
                return Err(raced(now).into());
            }
        }
    }
    Ok(top.digest)
}

async fn push_image(
    layout: &LayoutSource,
    registry: &RegistrySource,
    desc: &Descriptor,
) -> Result<()> {
    let bytes = layout.document(&desc.digest, Some(desc.size))?;
    let m = match manifest::parse(&bytes, Some(&desc.media_type)).map_err(anyhow::Error::msg)? {
        Manifest::Image(m) => m,
        Manifest::Index(_) => bail!("nested image indexes are not supported"),
    };
    for blob in std::iter::once(&m.config).chain(m.layers.iter()) {
        let path = layout.blob_path(&blob.digest);
        if !path.is_file() {
            bail!(
                "layout {}: blob {} is missing",
                layout.dir.display(),
                blob.digest
            );
        }
        registry.push_blob(&blob.digest, &path).await?;
    }
    Ok(registry
        .push_manifest(&desc.digest.to_string(), bytes, &desc.media_type)
        .await?)
}
