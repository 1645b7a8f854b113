//! Applying layers, bottom to top, into a [`Tree`], by the OCI layer rules
//! (image-spec `layer.md`): `.wh.<name>` deletes `<name>` from lower layers; `<dir>/.wh..wh..opq`
//! hides everything under `<dir>` from lower layers wherever it stands in the tar; a directory
//! over a directory keeps the children and takes the new attributes; anything else over an
//! existing path replaces it and everything below it. Parent paths resolve through symlinks
//! already in the image, clamped at the root, so no entry lands outside it.
//!
//! Each layer is read on its own (`read`): blobs are verified, decompressed and hashed side by
//! side, as many at once as there are cores, and applied here one by one, in order.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use anyhow::{bail, Result};

use super::held::LayerEntry;
use super::read::{Parsed, Reading};
use super::tree::{Entry, Kind, Tree};
use crate::digest::Digest;
use crate::image_path::normalize;
use crate::oci::manifest::Descriptor;

pub use super::read::{LayerBlob, Limits, Wanted};
pub use super::spool::Spool;

/// Layers read at once, at most: each is two threads (decompressing, parsing) and holds up to
/// `held::HELD_IN_MEMORY` of entries and a name set. Two a core, so that a slow layer at the
/// front (a gzip one, inflating) does not leave a core idle once a quick one behind it is read.
const MAX_LAYERS_AT_ONCE: usize = 4;

/// The result: the tree, whose entries mark what content was spooled.
pub struct Flattened {
    pub tree: Tree,
}

/// Why a path's content cannot be opened from a flattened image.
#[derive(Debug, thiserror::Error)]
pub enum ContentError {
    #[error("/{0} is missing")]
    Missing(String),
    #[error("expected a file, found a {}", .0.name())]
    NotAFile(Kind),
    #[error("content of {0} was not captured")]
    NotCaptured(String),
}

impl Flattened {
    /// The spooled file that holds `path`'s content (`path` as the tree keys it). The one way
    /// every check, inspection and build input opens a file of an image.
    pub fn spooled(&self, spool: &Spool, path: &str) -> Result<PathBuf, ContentError> {
        let e = self
            .tree
            .get(path)
            .ok_or_else(|| ContentError::Missing(path.to_string()))?;
        if !e.kind.has_content() {
            return Err(ContentError::NotAFile(e.kind));
        }
        match &e.sha256 {
            Some(d) if self.tree.captured(path) => Ok(spool.path(d)),
            _ => Err(ContentError::NotCaptured(path.to_string())),
        }
    }
}

pub struct Flattener<'a> {
    reading: Reading<'a>,
    applied: Applied,
}

/// The tree so far, as layers are applied to it.
#[derive(Default)]
struct Applied {
    tree: Tree,
    /// A directory known to resolve to itself (no symlink on its way): entries directly in
    /// it resolve without walking their path again, so a deep tree costs its depth once per
    /// entry, not the square of it. Only a symlink inserted on its way changes that.
    plain_dir: RefCell<Option<String>>,
    /// A wanted file whose content was not kept: a layer read beside the others judged its
    /// path as the tar writes it, and the path reaches a wanted one only through a symlink of
    /// a layer below.
    missed: bool,
}

impl<'a> Flattener<'a> {
    pub fn new(wanted: Wanted, spool: Option<&'a Spool>) -> Self {
        Flattener {
            reading: Reading::new(wanted, spool, Limits::default()),
            applied: Applied::default(),
        }
    }

    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.reading.limits = limits;
        self
    }

    /// Whether a wanted file's content was missed by layers read side by side
    /// ([`Self::apply_blobs`]); reading the layers again one by one ([`Self::apply_blob`]) keeps it.
    pub fn missed(&self) -> bool {
        self.applied.missed
    }

    pub fn finish(self) -> Flattened {
        Flattened {
            tree: self.applied.tree,
        }
    }

    /// Applies one layer blob, read after the layers below it were applied: a path that
    /// reaches a wanted one through their symlinks is kept.
    pub fn apply_blob(
        &mut self,
        path: &Path,
        desc: &Descriptor,
        verified: bool,
        diff_id: Option<&Digest>,
    ) -> crate::error::Result<()> {
        let blob = LayerBlob {
            path: path.to_path_buf(),
            desc: desc.clone(),
            verified,
            diff_id: diff_id.cloned(),
        };
        let what = format!("layer {}", desc.digest);
        let resolve = |p: &str| self.applied.resolve(p, false);
        let parsed = self.reading.parse_blob(&blob, Some(&resolve))?;
        Ok(self.applied.apply(parsed, &what, &self.reading)?)
    }

    /// Applies layer blobs bottom to top as they come (a download still under way blocks
    /// the iterator), reading up to two a core at once. On a failure, the index of the layer
    /// that failed first, bottom up.
    pub fn apply_blobs(
        &mut self,
        blobs: impl IntoIterator<Item = LayerBlob>,
    ) -> std::result::Result<(), (usize, crate::error::Error)> {
        let at_once = std::thread::available_parallelism()
            .map_or(1, std::num::NonZero::get)
            .saturating_mul(2)
            .clamp(1, MAX_LAYERS_AT_ONCE);
        let Flattener { reading, applied } = self;
        let reading = &*reading;
        let mut blobs = blobs.into_iter().fuse();
        std::thread::scope(|scope| {
            let mut reads = VecDeque::new();
            let mut i = 0;
            loop {
                while reads.len() < at_once {
                    let Some(b) = blobs.next() else { break };
                    let what = format!("layer {}", b.desc.digest);
                    reads.push_back((what, scope.spawn(move || reading.parse_blob(&b, None))));
                }
                let Some((what, read)) = reads.pop_front() else {
                    return Ok(());
                };
                let done = read
                    .join()
                    .expect("reading a layer does not panic")
                    .and_then(|p| Ok(applied.apply(p, &what, reading)?));
                if let Err(e) = done {
                    // The layers above are not needed now: they stop at their next entry.
                    reading.cancelled.store(true, Ordering::Relaxed);
                    return Err((i, e));
                }
                i += 1;
            }
        })
    }

    /// Applies one uncompressed tar stream.
    pub fn apply_tar(&mut self, reader: &mut dyn Read, what: &str) -> Result<()> {
        let resolve = |p: &str| self.applied.resolve(p, false);
        let parsed = self.reading.parse_tar(reader, what, Some(&resolve))?;
        self.applied.apply(parsed, what, &self.reading)
    }
}

impl Applied {
    /// Applies a layer read: its deletions first (they refer to lower layers only), then its
    /// entries in tar order.
    fn apply(&mut self, parsed: Parsed<'_>, what: &str, reading: &Reading<'_>) -> Result<()> {
        let wanted = reading.spool.map(|_| &reading.wanted);
        for dir in parsed.opaques {
            let dir = self.resolve(&dir, true)?;
            self.tree.remove_below(&dir);
        }
        for w in parsed.whiteouts {
            let w = self.resolve(&w, false)?;
            self.tree.remove_subtree(&w);
        }
        for add in parsed.adds.drain()? {
            self.insert(add?, what, wanted)?;
        }
        Ok(())
    }

    fn insert(&mut self, add: LayerEntry, what: &str, wanted: Option<&Wanted>) -> Result<()> {
        let path = self.resolve(&add.path, false)?;
        if path.is_empty() {
            return Ok(());
        }
        if !add.spooled
            && add.entry.kind == Kind::File
            && wanted.is_some_and(|w| w.wants(&add.path, &path))
        {
            self.missed = true;
        }
        let mut entry = add.entry;
        // Whether a hard link's target content is spooled, which the link then shares.
        let mut shared = false;
        if entry.kind == Kind::Hardlink {
            let raw_target = entry.link.clone().unwrap_or_default();
            let target = self.resolve(&normalize(&raw_target)?, false)?;
            match self.tree.get(&target) {
                // A hardlink shares its target's inode: content, mode and owner are the target's
                // as of now; a later change to the target path does not reach it. A link to a
                // link names the same inode, so it records the first name.
                Some(t) if t.kind.has_content() => {
                    let first = match t.kind {
                        Kind::Hardlink => t.link.clone().unwrap_or(target.clone()),
                        _ => target.clone(),
                    };
                    entry = Entry {
                        kind: Kind::Hardlink,
                        link: Some(first),
                        ..t.clone()
                    };
                    shared = self.tree.captured(&target);
                }
                // tar and the OCI layer format allow a hard link to a symlink: another name
                // for the symlink itself.
                Some(t) if t.kind == Kind::Symlink => {
                    let first = self
                        .tree
                        .symlink_links
                        .get(&target)
                        .cloned()
                        .unwrap_or(target.clone());
                    entry = t.clone();
                    self.tree.symlink_links.insert(path.clone(), first);
                }
                Some(t) => bail!(
                    "{what}: hardlink '{}' points at a {} '{target}'",
                    add.path,
                    t.kind.name()
                ),
                None => bail!(
                    "{what}: hardlink '{}' points at '{raw_target}', which is not in the image",
                    add.path
                ),
            }
        }
        self.tree.make_parents(&path);
        match self.tree.kind(&path) {
            Some(Kind::Dir) if entry.kind == Kind::Dir => {}
            Some(_) => self.tree.remove_subtree(&path),
            None => {}
        }
        let captured = shared || (add.spooled && entry.sha256.is_some());
        if entry.kind == Kind::Symlink {
            self.forget(&path);
        }
        self.tree.insert(&path, entry);
        self.tree.set_captured(&path, captured);
        Ok(())
    }

    fn resolve(&self, path: &str, follow_last: bool) -> Result<String> {
        let parent = path.rsplit_once('/').map(|(d, _)| d);
        if !follow_last && parent.is_some() && self.plain_dir.borrow().as_deref() == parent {
            return Ok(path.to_string());
        }
        let resolved = self.tree.resolve(path, follow_last)?;
        // Paths come normalized (no `.`, `..` or empty components): one that resolves to
        // itself crossed no symlink.
        if !follow_last && resolved == path {
            *self.plain_dir.borrow_mut() = parent.map(str::to_string);
        }
        Ok(resolved)
    }

    /// A symlink at `p`: a cached directory below (or at) it no longer resolves to itself.
    fn forget(&self, p: &str) {
        let mut c = self.plain_dir.borrow_mut();
        if c.as_deref()
            .is_some_and(|d| d == p || d.strip_prefix(p).is_some_and(|r| r.starts_with('/')))
        {
            *c = None;
        }
    }
}
