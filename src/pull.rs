//! The pull stage every pipeline shares: a reference resolved to one platform's manifest
//! (digest-checked), its layers brought into the blob cache, and the layers flattened into a
//! tree index with the content of the wanted paths spooled to disk. It knows nothing of specs.

use std::collections::HashSet;
use std::sync::Arc;

use anyhow::Context as _;

use crate::error::Result;
use crate::layers::flatten::{Flattened, Flattener, Spool, Wanted};
use crate::layers::tree::Kind;
use crate::oci::cache::BlobCache;
use crate::oci::mirror::Mirrors;
use crate::oci::platform::Platform;
use crate::oci::resolve::{self, Resolved};
use crate::oci::source::{BlobFile, Source};
use crate::reference::ImageRef;

/// Where images come from and go to for one run: mirrors, the blob cache, and the caps on
/// what a hostile image may make tdg decompress.
pub struct Env {
    pub mirrors: Mirrors,
    pub cache: Arc<BlobCache>,
    /// Caps on initramfs decompression.
    pub limits: crate::talos::initramfs::Limits,
    /// Whether specs' `expect.boot` runs QEMU (`--no-boot` clears it: those checks are skipped).
    pub boot: bool,
}

impl Env {
    pub fn new(mirrors: Mirrors, cache: BlobCache) -> Self {
        Env {
            mirrors,
            cache: Arc::new(cache),
            limits: Default::default(),
            boot: true,
        }
    }
}

/// An image resolved, pulled and flattened, with the spool its content went to.
pub struct Pulled {
    pub resolved: Resolved,
    pub flat: Flattened,
    pub spool: Spool,
    /// The layer blobs on disk, as fetched (for an evidence bundle).
    pub layers: Vec<BlobFile>,
    _spool_dir: tempfile::TempDir,
}

/// Resolves, fetches and flattens an image, keeping the content of `wanted` paths.
pub async fn pull(
    ctx: &Env,
    image: &ImageRef,
    platform: Option<&Platform>,
    wanted: Wanted,
) -> Result<Pulled> {
    let source = Source::open(&ctx.mirrors.endpoint(image))?;
    let resolved = resolve::resolve(&source, image, platform, &ctx.cache).await?;
    let layers = resolve::fetch_layers(&source, &resolved, &ctx.cache).await?;
    let spool_dir = tempfile::Builder::new()
        .prefix("spool-")
        .tempdir_in(ctx.cache.root().join("tmp"))
        .context("creating a spool directory in the cache")?;
    let spool = Spool::new(spool_dir.path().to_path_buf())?;
    let wanted_paths = match &wanted {
        Wanted::Paths(p) => Some(p.clone()),
        _ => None,
    };
    let mut flat = flatten(ctx, &layers, wanted, &spool)?;
    // A wanted hardlink whose target was not spooled: read again, keeping the targets too.
    if let Some(paths) = wanted_paths {
        let targets: HashSet<String> = paths
            .iter()
            .filter(|p| !flat.content.contains_key(*p))
            .filter_map(|p| {
                flat.tree
                    .get(p)
                    .filter(|e| e.kind == Kind::Hardlink)
                    .and_then(|e| e.link.clone())
            })
            .collect();
        if !targets.is_empty() {
            flat = flatten(
                ctx,
                &layers,
                Wanted::Paths(paths.union(&targets).cloned().collect()),
                &spool,
            )?;
        }
    }
    Ok(Pulled {
        resolved,
        flat,
        spool,
        layers,
        _spool_dir: spool_dir,
    })
}

fn flatten(ctx: &Env, layers: &[BlobFile], wanted: Wanted, spool: &Spool) -> Result<Flattened> {
    let mut f = Flattener::new(wanted, Some(spool));
    for l in layers {
        if let Err(e) = f.apply_blob(&l.path, &l.descriptor, l.verified) {
            // Bad bytes never stay in the cache: the next run fetches them again.
            if l.cached && e.is_integrity() {
                ctx.cache.evict(&l.descriptor.digest);
            }
            return Err(e);
        }
    }
    Ok(f.finish())
}
