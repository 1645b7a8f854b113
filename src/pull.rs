//! The pull stage every pipeline shares: a reference resolved to one platform's manifest
//! (digest-checked), its layers brought into the blob cache, and the layers flattened into a
//! tree index with the content of the wanted paths spooled to disk. It knows nothing of specs.
//!
//! A warm run skips the layers: the tree index of a manifest already flattened comes from the
//! cache (`layers::index_cache`), and the wanted files from the cache's content store, each
//! re-hashed before use. `verify_cache` (and every evidence run) reads and hashes it all again,
//! and so does every run of a local source (an OCI layout or archive).

use std::collections::HashSet;
use std::sync::Arc;

use anyhow::Context as _;
use futures_util::StreamExt as _;

use crate::digest::Digest;
use crate::error::Result;
use crate::layers::flatten::{Flattened, Flattener, LayerBlob, Spool, Wanted};
use crate::layers::index_cache::TreeCache;
use crate::layers::tree::Kind;
use crate::oci::cache::BlobCache;
use crate::oci::mirror::Mirrors;
use crate::oci::platform::Platform;
use crate::oci::resolve::{self, Resolved};
use crate::oci::source::{BlobFile, Source};
use crate::reference::ImageRef;

/// Where images come from and go to for one run: mirrors, the blob cache, and the caps on
/// what a hostile image may make tdg decompress.
#[derive(Clone)]
pub struct Env {
    pub mirrors: Mirrors,
    pub cache: Arc<BlobCache>,
    /// Caps on initramfs decompression.
    pub limits: crate::talos::initramfs::Limits,
    /// Whether specs' `expect.boot` runs QEMU (`--no-boot` clears it: those checks are skipped).
    pub boot: bool,
    /// Bytes of file content a pull may spool (`tdg export --max-export-size`).
    pub max_spooled: u64,
    /// Ignore the tree-index cache: read and hash every layer again (`--verify-cache`).
    pub verify_cache: bool,
    /// The Sigstore trusted root signatures are judged against (`--trusted-root`); `None` is
    /// the embedded production root.
    pub trusted_root: Option<std::path::PathBuf>,
}

impl Env {
    pub fn new(mirrors: Mirrors, cache: BlobCache) -> Self {
        Env {
            mirrors,
            cache: Arc::new(cache),
            limits: Default::default(),
            boot: true,
            max_spooled: u64::MAX,
            verify_cache: false,
            trusted_root: None,
        }
    }

    fn trees(&self) -> TreeCache {
        TreeCache::new(self.cache.root())
    }

    /// The cache's content store: file contents by sha256, kept across runs.
    fn content_store(&self) -> Result<Spool> {
        let root = self.cache.root();
        Ok(Spool::with_tmp(
            root.join("content/sha256"),
            root.join("tmp"),
        )?)
    }
}

/// An image resolved, pulled and flattened, with the spool its content went to.
pub struct Pulled {
    pub resolved: Resolved,
    pub flat: Flattened,
    pub spool: Spool,
    /// The layer blobs on disk, as fetched (for an evidence bundle); none on a warm run.
    pub layers: Vec<BlobFile>,
    /// Whether the tree came from the tree-index cache, no layer read.
    pub warm: bool,
    /// The signatures found beside the image, once a check asked for them.
    pub signatures: crate::sign::State,
    _spool_dir: Option<crate::temps::Dir>,
}

/// Resolves, fetches and flattens an image, keeping the content of `wanted` paths. Runs on a
/// multi-thread tokio runtime: the layers are read on threads of their own beside the downloads
/// (`tokio::task::block_in_place`).
pub async fn pull(
    ctx: &Env,
    image: &ImageRef,
    platform: Option<&Platform>,
    wanted: Wanted,
) -> Result<Pulled> {
    let source = Arc::new(Source::open(&ctx.mirrors.endpoint(image))?);
    let resolved = resolve::resolve(&source, image, platform, &ctx.cache).await?;
    // Everything (an export, a build's extension) would copy the whole image into the content
    // store; those pulls spool to a temporary directory, as before.
    let store = !matches!(wanted, Wanted::Everything);
    // Only a registry serves the warm cache: what it holds is addressed by digest on the
    // server. A local layout or archive can change under its digests, so it is read and
    // hashed again on every run (a byte flipped in a layer blob fails, warm or cold).
    let warm_allowed = matches!(*source, Source::Registry(_));
    if store && warm_allowed && !ctx.verify_cache {
        let spool = ctx.content_store()?;
        if let Some(flat) = warm(ctx, &resolved, &wanted, &spool) {
            return Ok(Pulled {
                resolved,
                flat,
                spool,
                layers: Vec::new(),
                warm: true,
                signatures: Default::default(),
                _spool_dir: None,
            });
        }
    }
    let (spool, spool_dir) = if store {
        (ctx.content_store()?, None)
    } else {
        let dir = crate::temps::Dir::new(&ctx.cache.root().join("tmp"), "spool-")
            .context("creating a spool directory in the cache")?;
        (Spool::new(dir.path().to_path_buf())?, Some(dir))
    };
    let wanted_paths = match &wanted {
        Wanted::Paths(p) => Some(p.clone()),
        _ => None,
    };
    let diff_ids = diff_ids(&resolved)?;
    let (layers, mut flat) = fetch_and_flatten(ctx, &source, &resolved, &diff_ids, wanted, &spool)?;
    // A wanted hardlink or symlink whose target was not spooled (a manifest.yaml linked into
    // rootfs/, which Talos's os.Open follows): read again, keeping the targets too.
    if let Some(paths) = wanted_paths {
        let paths = Wanted::expand(&paths, &flat.tree);
        let targets: HashSet<String> = paths
            .iter()
            .filter(|p| !flat.tree.captured(p))
            .filter_map(|p| link_target(&flat, p))
            .filter(|t| !flat.tree.captured(t))
            .collect();
        if !targets.is_empty() {
            let paths = Wanted::Paths(paths.union(&targets).cloned().collect());
            flat = flatten(ctx, &layers, &diff_ids, paths, &spool)?;
        }
    }
    // Every layer was read and verified just now: the tree may serve the next run.
    ctx.trees().store(
        &resolved.manifest_digest,
        &flat.tree,
        &ctx.cache.root().join("tmp"),
    );
    Ok(Pulled {
        resolved,
        flat,
        spool,
        layers,
        warm: false,
        signatures: Default::default(),
        _spool_dir: spool_dir,
    })
}

/// The file a wanted path's content comes from when the path itself holds none: a hardlink's
/// target, or where a symlink leads within the image.
fn link_target(flat: &Flattened, p: &str) -> Option<String> {
    let e = flat.tree.get(p)?;
    match e.kind {
        Kind::Hardlink => e.link.clone(),
        Kind::Symlink => {
            let t = flat.tree.resolve(p, true).ok()?;
            match flat.tree.get(&t)? {
                te if te.kind == Kind::Hardlink => te.link.clone(),
                te if te.kind.has_content() => Some(t),
                _ => None,
            }
        }
        _ => None,
    }
}

/// The flattened image from the caches, when the tree index is there and every wanted file's
/// content is in the store and still hashes to what the index says. `None` sends the pull
/// the cold way, which rebuilds what was missing or unsound.
fn warm(ctx: &Env, resolved: &Resolved, wanted: &Wanted, spool: &Spool) -> Option<Flattened> {
    let mut tree = ctx.trees().load(&resolved.manifest_digest)?;
    if let Wanted::Paths(paths) = wanted {
        for p in &Wanted::expand(paths, &tree) {
            let Some(e) = tree.get(p).filter(|e| e.kind.has_content()) else {
                continue;
            };
            let (d, size) = (e.sha256.clone()?, e.size?);
            if !spool.holds(&d, size) {
                return None;
            }
            tree.set_captured(p, true);
        }
    }
    Some(Flattened { tree })
}

/// The config's `rootfs.diff_ids`, one per layer, as containerd's unpacker requires.
fn diff_ids(r: &Resolved) -> Result<Vec<Digest>> {
    let ids = r
        .config
        .rootfs
        .as_ref()
        .map(|f| f.diff_ids.as_slice())
        .unwrap_or_default();
    if ids.len() != r.manifest.layers.len() {
        return Err(crate::error::Error::integrity(format!(
            "image {}: its config lists {} diff_ids for {} layers",
            r.manifest_digest,
            ids.len(),
            r.manifest.layers.len()
        )));
    }
    ids.iter()
        .map(|d| {
            d.parse::<Digest>().map_err(|e| {
                crate::error::Error::integrity(format!(
                    "image {}: diff_id {d:?}: {e}",
                    r.manifest_digest
                ))
            })
        })
        .collect()
}

/// A fetched layer as the flattener reads it.
fn blob(l: &BlobFile, diff_id: &Digest) -> LayerBlob {
    LayerBlob {
        path: l.path.clone(),
        desc: l.descriptor.clone(),
        verified: l.verified,
        diff_id: Some(diff_id.clone()),
    }
}

/// Bad bytes never stay in the cache: the next run fetches them again.
fn evicting(ctx: &Env, l: &BlobFile, e: crate::error::Error) -> crate::error::Error {
    if l.cached && e.is_integrity() {
        ctx.cache.evict(&l.descriptor.digest);
    }
    e
}

fn limits(ctx: &Env) -> crate::layers::flatten::Limits {
    crate::layers::flatten::Limits {
        max_spooled: ctx.max_spooled,
        ..Default::default()
    }
}

/// Fetches the layers into the cache and flattens them as they arrive: a layer is read as soon
/// as it is in the cache, beside the downloads of the layers above it, and applied in order.
fn fetch_and_flatten(
    ctx: &Env,
    source: &Arc<Source>,
    resolved: &Resolved,
    diff_ids: &[Digest],
    wanted: Wanted,
    spool: &Spool,
) -> Result<(Vec<BlobFile>, Flattened)> {
    tokio::task::block_in_place(|| {
        let runtime = tokio::runtime::Handle::current();
        let (tx, rx) = std::sync::mpsc::channel();
        let (fetched, flattened) = std::thread::scope(|scope| {
            let flattening = scope.spawn(|| {
                let mut f = Flattener::new(wanted.clone(), Some(spool)).with_limits(limits(ctx));
                let done = f.apply_blobs(rx);
                (f, done)
            });
            let fetched = runtime.block_on(async {
                let mut layers = Vec::new();
                let mut stream =
                    std::pin::pin!(resolve::fetch_layers(source, resolved, &ctx.cache)?);
                while let Some(l) = stream.next().await {
                    let l = l?;
                    let sent = tx.send(blob(&l, &diff_ids[layers.len()]));
                    layers.push(l);
                    // The flattener stopped at a bad layer: the rest is not needed.
                    if sent.is_err() {
                        break;
                    }
                }
                Ok::<_, crate::error::Error>(layers)
            });
            drop(tx);
            let flattened = flattening.join().expect("flattening does not panic");
            (fetched, flattened)
        });
        let (f, done) = flattened;
        // A download that failed is the fault, as when every layer was fetched first.
        let layers = fetched?;
        done.map_err(|(i, e)| evicting(ctx, &layers[i], e))?;
        let flat = settle(ctx, &layers, diff_ids, f, wanted, spool)?;
        Ok((layers, flat))
    })
}

/// The layers flattened, read side by side; read again one by one when that missed a wanted
/// file (one reached only through a lower layer's symlink), which only the tree below shows.
fn flatten(
    ctx: &Env,
    layers: &[BlobFile],
    diff_ids: &[Digest],
    wanted: Wanted,
    spool: &Spool,
) -> Result<Flattened> {
    let mut f = Flattener::new(wanted.clone(), Some(spool)).with_limits(limits(ctx));
    f.apply_blobs(layers.iter().zip(diff_ids).map(|(l, id)| blob(l, id)))
        .map_err(|(i, e)| evicting(ctx, &layers[i], e))?;
    settle(ctx, layers, diff_ids, f, wanted, spool)
}

/// The flattened image, once no wanted file was missed by reading the layers side by side: a
/// file reached through a lower layer's symlink shows only in the tree below it, so then the
/// layers are read again one by one, each after those below it are applied.
fn settle(
    ctx: &Env,
    layers: &[BlobFile],
    diff_ids: &[Digest],
    f: Flattener<'_>,
    wanted: Wanted,
    spool: &Spool,
) -> Result<Flattened> {
    if !f.missed() {
        return Ok(f.finish());
    }
    let mut f = Flattener::new(wanted, Some(spool)).with_limits(limits(ctx));
    for (l, id) in layers.iter().zip(diff_ids) {
        f.apply_blob(&l.path, &l.descriptor, l.verified, Some(id))
            .map_err(|e| evicting(ctx, l, e))?;
    }
    Ok(f.finish())
}

/// Referrers read for signatures at most: each costs a manifest fetch.
const MAX_REFERRERS: usize = 256;

/// The layers of `media_type` in the manifest a cosign tag names (`.sig`, `.att`), each payload
/// fetched and digest-checked; none when the tag is not there.
async fn tagged_payloads(
    ctx: &Env,
    source: &Source,
    tag: &str,
    media_type: &str,
) -> Result<Vec<crate::sign::cosign::Found>> {
    use crate::sign::cosign;
    let Some(bytes) = source.tagged(tag).await? else {
        return Ok(Vec::new());
    };
    let m = match crate::oci::manifest::parse(&bytes, None).map_err(anyhow::Error::msg)? {
        crate::oci::manifest::Manifest::Image(m) => m,
        crate::oci::manifest::Manifest::Index(_) => {
            return Err(anyhow::anyhow!("{tag} is an index, not a signature manifest").into())
        }
    };
    let mut found = Vec::new();
    for layer in m.layers.iter().filter(|l| l.media_type == media_type) {
        let payload = source
            .small_blob(layer, &ctx.cache, cosign::MAX_PAYLOAD)
            .await?;
        found.push(cosign::Found {
            layer: layer.clone(),
            payload,
        });
    }
    Ok(found)
}

/// The signatures stored beside `subject` (cosign's `sha256-<hex>.sig` tag), each payload
/// fetched and digest-checked, with the trusted root they are judged against. A fault is the
/// state's, so the check reports it as an error rather than the run failing.
pub async fn signatures(ctx: &Env, image: &ImageRef, subject: &Digest) -> crate::sign::State {
    use crate::sign::{cosign, Material, State, TrustedRoot};
    let found = async {
        let root = TrustedRoot::load(ctx.trusted_root.as_deref())?;
        let source = Source::open(&ctx.mirrors.endpoint(image))?;
        let tag = cosign::signature_tag(subject);
        let looked = format!("looked for the tag {tag} in {}", source.describe());
        let found = tagged_payloads(ctx, &source, &tag, cosign::SIMPLE_SIGNING).await?;
        let att = cosign::attestation_tag(subject);
        let attestations = tagged_payloads(ctx, &source, &att, cosign::DSSE_ENVELOPE).await?;
        let looked = format!("{looked} and {att}");
        let mut bundles = Vec::new();
        // Every referrer is read, then judged by its manifest's own artifactType (else its
        // config's media type, OCI image-spec 1.1 `manifest.md`), as cosign does
        // (`pkg/oci/remote` `Referrers` then the manifest): cosign 3.1's referrers-tag
        // fallback lists its bundles with the empty config's type on the index entry.
        let referrers = source.referrers(subject).await?;
        if referrers.len() > MAX_REFERRERS {
            return Err(anyhow::anyhow!(
                "{subject} has {} referrers, more than the {MAX_REFERRERS} tdg reads",
                referrers.len()
            )
            .into());
        }
        for r in referrers {
            let desc = crate::oci::manifest::Descriptor {
                media_type: r.media_type.clone(),
                digest: r
                    .digest
                    .parse()
                    .map_err(|e| anyhow::anyhow!("a referrer of {subject}: {e}"))?,
                size: r.size,
                platform: None,
                annotations: Default::default(),
            };
            let manifest = source.child(&desc).await?;
            let m =
                match crate::oci::manifest::parse(&manifest, None).map_err(anyhow::Error::msg)? {
                    crate::oci::manifest::Manifest::Image(m) => m,
                    crate::oci::manifest::Manifest::Index(_) => continue,
                };
            let kind = m.artifact_type.as_deref().unwrap_or(&m.config.media_type);
            let is_bundle = |t: &str| t.starts_with(crate::sign::bundle::BUNDLE_MEDIA_TYPE_PREFIX);
            let Some(layer) = m.layers.first().cloned() else {
                continue;
            };
            if !is_bundle(kind) || !is_bundle(&layer.media_type) {
                continue;
            }
            let bundle = source
                .small_blob(&layer, &ctx.cache, cosign::MAX_PAYLOAD)
                .await?;
            bundles.push(crate::sign::Referred {
                referrer: r,
                manifest,
                layer,
                bundle,
            });
        }
        let looked = format!("{looked}, and its referrers");
        Ok::<_, crate::error::Error>(Material {
            root,
            looked,
            found,
            attestations,
            bundles,
            subject: subject.clone(),
        })
    };
    match found.await {
        Ok(m) => State::Fetched(Box::new(m)),
        Err(e) => State::Failed(format!("fetching signatures: {e:#}")),
    }
}
