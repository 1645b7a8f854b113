//! Applying layers, bottom to top, into a [`Tree`], by the OCI layer rules
//! (image-spec `layer.md`): `.wh.<name>` deletes `<name>` from lower layers; `<dir>/.wh..wh..opq`
//! hides everything under `<dir>` from lower layers wherever it stands in the tar; a directory
//! over a directory keeps the children and takes the new attributes; anything else over an
//! existing path replaces it and everything below it. Parent paths resolve through symlinks
//! already in the image, clamped at the root, so no entry lands outside it.

use std::cell::RefCell;
use std::collections::HashSet;
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use anyhow::{bail, ensure, Context, Result};

use super::tree::{Entry, Kind, Tree};
use crate::digest::{Digest, Hasher, HashingWriter, VerifyingReader};
use crate::image_path::normalize;
use crate::oci::manifest::{layer_compression, Compression, Descriptor};
use crate::oci::tarext::{self, shown, Extensions, Overrides};

/// Where spooled content goes: files named by their sha256, so a hardlink and its target, or
/// two identical files, share one copy. A file is written beside `tmp` and renamed into place
/// once hashed, so the store never holds a partial or misnamed file.
pub struct Spool {
    dir: PathBuf,
    tmp: PathBuf,
    /// Small contents this run has written, by sha256: a million copies of one file (empty
    /// ones, a licence) are written once. Capped; past the cap a copy is just written again.
    written: std::sync::Mutex<HashSet<[u8; 32]>>,
}

/// Contents up to this size are read into memory and hashed before they are written.
const SMALL: usize = 64 << 10;
/// Small contents remembered as written (2 MiB of digests).
const WRITTEN_CAP: usize = 1 << 16;

impl Spool {
    /// A spool that is its own scratch directory (a run's temporary spool).
    pub fn new(dir: PathBuf) -> Result<Self> {
        Self::with_tmp(dir.clone(), dir)
    }

    /// A spool that outlives the run (the cache's content store), written through `tmp`.
    pub fn with_tmp(dir: PathBuf, tmp: PathBuf) -> Result<Self> {
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(Spool {
            dir,
            tmp,
            written: Default::default(),
        })
    }

    pub fn path(&self, d: &Digest) -> PathBuf {
        self.dir.join(d.hex())
    }

    /// The scratch directory beside the store, for temporaries of this run.
    pub fn scratch(&self) -> &std::path::Path {
        &self.tmp
    }

    /// Whether the spooled copy of `d` is there and still hashes to it (`size` bytes). A copy
    /// that does not is removed.
    pub fn holds(&self, d: &Digest, size: u64) -> bool {
        let path = self.path(d);
        let sound = crate::located::open_regular(&path).is_ok_and(|f| {
            VerifyingReader::new(BufReader::new(f), d.clone(), size, "spooled content")
                .finish()
                .is_ok()
        });
        if !sound {
            let _ = std::fs::remove_file(&path);
        }
        sound
    }
}

/// What to keep the content of. A wanted path ending in `/` stands for every file directly
/// in that directory (an extension's service specs).
pub enum Wanted {
    Nothing,
    Paths(HashSet<String>),
    Everything,
}

impl Wanted {
    fn wants(&self, a: &str, b: &str) -> bool {
        let in_dir =
            |p: &HashSet<String>, x: &str| x.rfind('/').is_some_and(|i| p.contains(&x[..=i]));
        match self {
            Wanted::Nothing => false,
            Wanted::Paths(p) => p.contains(a) || p.contains(b) || in_dir(p, a) || in_dir(p, b),
            Wanted::Everything => true,
        }
    }

    /// The tree paths a `Paths` set names: each path as given, and for a directory (`dir/`)
    /// the entries directly in it.
    pub fn expand(paths: &HashSet<String>, tree: &super::tree::Tree) -> HashSet<String> {
        let mut out: HashSet<String> = paths
            .iter()
            .filter(|p| !p.ends_with('/'))
            .cloned()
            .collect();
        for dir in paths.iter().filter(|p| p.ends_with('/')) {
            out.extend(tree.paths_in(dir.trim_end_matches('/')));
        }
        out
    }
}

pub struct Limits {
    pub max_entries: usize,
    /// Bytes of file content spooled in all (`tdg export --max-export-size`): a
    /// decompression bomb ends here rather than filling the disk.
    pub max_spooled: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_entries: crate::limits::MAX_TREE_ENTRIES,
            max_spooled: u64::MAX,
        }
    }
}

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
    tree: Tree,
    wanted: Wanted,
    spool: Option<&'a Spool>,
    limits: Limits,
    spooled: u64,
    /// A directory known to resolve to itself (no symlink on its way): entries directly in
    /// it resolve without walking their path again, so a deep tree costs its depth once per
    /// entry, not the square of it. Only a symlink inserted on its way changes that.
    plain_dir: std::cell::RefCell<Option<String>>,
}

/// One tar entry of a layer, read and hashed.
#[derive(Debug, PartialEq)]
struct LayerEntry {
    path: String,
    entry: Entry,
    spooled: bool,
}

/// The paths a layer has named so far, to refuse one named twice. Kept as 128-bit keyed
/// hashes, not strings: a layer of a million long names costs 16 bytes a name. The keys are
/// random per run, so no input can aim for a collision.
#[derive(Default)]
struct Seen {
    keys: (std::hash::RandomState, std::hash::RandomState),
    set: HashSet<u128>,
}

impl Seen {
    fn insert(&mut self, path: &str) -> bool {
        use std::hash::BuildHasher;
        let h =
            (u128::from(self.keys.0.hash_one(path)) << 64) | u128::from(self.keys.1.hash_one(path));
        self.set.insert(h)
    }

    fn len(&self) -> usize {
        self.set.len()
    }
}

/// A layer's entries, held until its deletions are applied (they refer to lower layers only,
/// wherever they stand in the tar): in memory up to [`HELD_IN_MEMORY`] bytes, then in an unnamed
/// file in the scratch directory, which the kernel removes however the run ends.
struct Held<'a> {
    memory: Vec<LayerEntry>,
    file: Option<io::BufWriter<std::fs::File>>,
    scratch: Option<&'a Path>,
    /// Bytes held in memory so far, and the most that may be.
    held: usize,
    limit: usize,
}

const HELD_IN_MEMORY: usize = 16 << 20;

impl<'a> Held<'a> {
    fn new(scratch: Option<&'a Path>) -> Self {
        Held {
            memory: Vec::new(),
            file: None,
            scratch,
            held: 0,
            limit: HELD_IN_MEMORY,
        }
    }

    fn push(&mut self, e: LayerEntry) -> Result<()> {
        if self.file.is_none() {
            match self.scratch {
                Some(dir) if self.held >= self.limit => {
                    let f = tempfile::tempfile_in(dir)
                        .with_context(|| format!("creating a file in {}", dir.display()))?;
                    self.file = Some(io::BufWriter::with_capacity(1 << 20, f));
                }
                _ => {
                    self.held += std::mem::size_of::<LayerEntry>()
                        + e.path.len()
                        + e.entry.link.as_ref().map_or(0, String::len);
                    self.memory.push(e);
                    return Ok(());
                }
            }
        }
        let w = self.file.as_mut().expect("a file once spilling");
        write_held(w, &e).context("writing a layer's entries to the scratch directory")
    }

    /// Every entry, in the order pushed.
    fn drain(self) -> Result<impl Iterator<Item = Result<LayerEntry>>> {
        let file = match self.file {
            Some(w) => {
                let mut f = w.into_inner().map_err(|e| e.into_error())?;
                io::Seek::rewind(&mut f)?;
                Some(io::BufReader::with_capacity(1 << 20, f))
            }
            None => None,
        };
        let spilled = file
            .into_iter()
            .flat_map(|mut r| std::iter::from_fn(move || read_held(&mut r).transpose()));
        Ok(self.memory.into_iter().map(Ok).chain(spilled))
    }
}

fn write_held(w: &mut impl Write, e: &LayerEntry) -> io::Result<()> {
    let text = |w: &mut dyn Write, s: &str| -> io::Result<()> {
        w.write_all(&(s.len() as u64).to_le_bytes())?;
        w.write_all(s.as_bytes())
    };
    let x = &e.entry;
    text(w, &e.path)?;
    w.write_all(&[x.kind.letter() as u8, u8::from(e.spooled)])?;
    w.write_all(&x.mode.to_le_bytes())?;
    w.write_all(&x.uid.to_le_bytes())?;
    w.write_all(&x.gid.to_le_bytes())?;
    w.write_all(&[u8::from(x.size.is_some())])?;
    w.write_all(&x.size.unwrap_or(0).to_le_bytes())?;
    w.write_all(&[u8::from(x.sha256.is_some())])?;
    w.write_all(&x.sha256.as_ref().map_or([0; 32], Digest::raw))?;
    w.write_all(&[u8::from(x.link.is_some())])?;
    text(w, x.link.as_deref().unwrap_or_default())?;
    w.write_all(&[u8::from(x.device.is_some())])?;
    let (ma, mi) = x.device.unwrap_or_default();
    w.write_all(&ma.to_le_bytes())?;
    w.write_all(&mi.to_le_bytes())
}

/// One entry as `write_held` wrote it; `None` at the end of the file.
fn read_held(r: &mut impl Read) -> Result<Option<LayerEntry>> {
    fn bytes<const N: usize>(r: &mut impl Read) -> io::Result<[u8; N]> {
        let mut b = [0u8; N];
        r.read_exact(&mut b)?;
        Ok(b)
    }
    fn text(r: &mut impl Read, len: [u8; 8]) -> Result<String> {
        let n = u64::from_le_bytes(len);
        let mut s = Vec::new();
        r.take(n).read_to_end(&mut s)?;
        ensure!(s.len() as u64 == n, "held entries end early");
        Ok(String::from_utf8(s)?)
    }
    let mut len = [0u8; 8];
    match r.read(&mut len[..1])? {
        0 => return Ok(None),
        _ => r.read_exact(&mut len[1..])?,
    }
    let path = text(r, len)?;
    let [kind, spooled] = bytes(r)?;
    let kind = Kind::from_letter(kind as char).context("an unknown kind in held entries")?;
    let mode = u32::from_le_bytes(bytes(r)?);
    let uid = u64::from_le_bytes(bytes(r)?);
    let gid = u64::from_le_bytes(bytes(r)?);
    let [has_size] = bytes(r)?;
    let size = u64::from_le_bytes(bytes(r)?);
    let [has_sha] = bytes(r)?;
    let sha = bytes::<32>(r)?;
    let [has_link] = bytes(r)?;
    let link_len = bytes(r)?;
    let link = text(r, link_len)?;
    let [has_device] = bytes(r)?;
    let device = (u32::from_le_bytes(bytes(r)?), u32::from_le_bytes(bytes(r)?));
    Ok(Some(LayerEntry {
        path,
        spooled: spooled != 0,
        entry: Entry {
            kind,
            mode,
            uid,
            gid,
            size: (has_size != 0).then_some(size),
            sha256: (has_sha != 0).then(|| Digest::from_raw(sha)),
            link: (has_link != 0).then_some(link),
            device: (has_device != 0).then_some(device),
        },
    }))
}

impl<'a> Flattener<'a> {
    pub fn new(wanted: Wanted, spool: Option<&'a Spool>) -> Self {
        Flattener {
            tree: Tree::default(),
            wanted,
            spool,
            limits: Limits::default(),
            spooled: 0,
            plain_dir: Default::default(),
        }
    }

    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    pub fn finish(self) -> Flattened {
        Flattened { tree: self.tree }
    }

    /// Applies one layer blob from a file, verifying its size and digest as it is read: every
    /// byte up to the end of the blob, not just up to the end of the tar. `verified` skips the
    /// hashing for a blob this run has just verified on its way into the cache.
    /// `diff_id`, the config's digest of the uncompressed layer, is checked on the same read
    /// (umoci and containerd refuse a mismatch; the tar bytes are what an unpacker applies).
    pub fn apply_blob(
        &mut self,
        path: &Path,
        desc: &Descriptor,
        verified: bool,
        diff_id: Option<&Digest>,
    ) -> crate::error::Result<()> {
        let compression = layer_compression(&desc.media_type).map_err(anyhow::Error::msg)?;
        // Never blocks on a FIFO put where a blob was expected; only regular files are read.
        let file = crate::located::open_regular(path)
            .with_context(|| format!("opening {}", path.display()))?;
        let what = format!("layer {}", desc.digest);
        // Two threads, as `gzip -dc | tar` would be: one reads the blob, checks its digest,
        // decompresses and hashes the tar stream for the diff_id; this one parses the tar,
        // hashes each file and builds the tree. At most CHUNKS_IN_FLIGHT chunks sit between.
        let (tx, rx) = std::sync::mpsc::sync_channel(CHUNKS_IN_FLIGHT);
        let (applied, (verified, drained, uncompressed)) = std::thread::scope(|scope| {
            let producer = scope.spawn(|| decompress(file, desc, verified, compression, &what, tx));
            let mut reader = ChannelReader {
                rx,
                chunk: Vec::new(),
                at: 0,
            };
            let applied = self.apply_tar(&mut reader, &what);
            // What the tar did not take the producer still reads and hashes, on its own.
            drop(reader);
            let done = producer
                .join()
                .expect("the decompressing thread does not panic");
            (applied, done)
        });
        // Integrity first: a broken blob explains any parse error that came out of it.
        verified?;
        drained.with_context(|| format!("{what}: decompressing"))?;
        if let Some(want) = diff_id.filter(|d| **d != uncompressed) {
            return Err(crate::error::Error::integrity(format!(
                "{what}: uncompressed digest {uncompressed} is not the config's diff_id {want}"
            )));
        }
        Ok(applied?)
    }

    /// Applies one uncompressed tar stream.
    pub fn apply_tar(&mut self, reader: &mut dyn Read, what: &str) -> Result<()> {
        let mut archive = tar::Archive::new(reader);
        let mut adds = Held::new(self.spool.map(Spool::scratch));
        let mut whiteouts: Vec<String> = Vec::new();
        let mut opaques: Vec<String> = Vec::new();
        let mut seen = Seen::default();
        let mut ext = Extensions::default();
        // Raw entries: tdg applies GNU long names and PAX records itself, with Go's caps.
        for item in archive
            .entries()
            .with_context(|| format!("{what}: reading tar"))?
            .raw(true)
        {
            let mut e = item.with_context(|| format!("{what}: reading tar"))?;
            let Some(tarext::Member { raw, path, over }) =
                tarext::member(&mut ext, &mut e).with_context(|| what.to_string())?
            else {
                continue;
            };
            if path.is_empty() {
                continue;
            }
            if !seen.insert(&path) {
                bail!("{what}: holds '{path}' twice (a layer must not hold the same path twice)");
            }
            if seen.len() > self.limits.max_entries {
                bail!("{what}: more than {} entries", self.limits.max_entries);
            }
            let (parent, name) = path.rsplit_once('/').unwrap_or(("", &path));
            if name == ".wh..wh..opq" {
                opaques.push(parent.to_string());
                continue;
            }
            if let Some(target) = name.strip_prefix(".wh.") {
                // `.wh..` and `.wh...` would white out the directory itself or its parent
                // (the whole tree, at the root); umoci refuses them, and so does tdg.
                if target.is_empty() {
                    bail!("{what}: '{raw}' is a bare whiteout marker with no name");
                }
                if target == "." || target == ".." {
                    bail!("{what}: entry '{raw}' whites out '{target}', which names no file");
                }
                if target.starts_with(".wh.") {
                    continue; // aufs bookkeeping (.wh..wh.plnk and friends), not a deletion
                }
                whiteouts.push(if parent.is_empty() {
                    target.to_string()
                } else {
                    format!("{parent}/{target}")
                });
                continue;
            }
            let resolved = self.resolve(&path, false)?;
            let spool = self.spool.filter(|_| self.wanted.wants(&path, &resolved));
            let room = self.limits.max_spooled.saturating_sub(self.spooled);
            let (entry, spooled) = read_entry(&mut e, over, spool, room)
                .with_context(|| format!("{what}: entry {}", shown(raw.as_bytes())))?;
            if spooled {
                self.spooled += entry.size.unwrap_or(0);
            }
            adds.push(LayerEntry {
                path,
                entry,
                spooled,
            })?;
        }
        if ext.pending() {
            bail!("{what}: ends with a long-name or PAX header that describes no entry");
        }
        // Deletions refer to lower layers only, so they apply before this layer's entries.
        for dir in opaques {
            let dir = self.resolve(&dir, true)?;
            self.tree.remove_below(&dir);
        }
        for w in whiteouts {
            let w = self.resolve(&w, false)?;
            self.tree.remove_subtree(&w);
        }
        for add in adds.drain()? {
            let add = add?;
            self.insert(add, what)?;
        }
        Ok(())
    }

    fn insert(&mut self, add: LayerEntry, what: &str) -> Result<()> {
        let path = self.resolve(&add.path, false)?;
        if path.is_empty() {
            return Ok(());
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

    pub fn resolve(&self, path: &str, follow_last: bool) -> Result<String> {
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

fn read_entry<R: Read>(
    e: &mut tar::Entry<'_, R>,
    over: Overrides,
    spool: Option<&Spool>,
    room: u64,
) -> Result<(Entry, bool)> {
    let h = e.header();
    let old = h.as_old();
    let mut uid = numeric(h.uid(), &old.uid).context("bad uid")?;
    let mut gid = numeric(h.gid(), &old.gid).context("bad gid")?;
    let mode = numeric(h.mode().map(u64::from), &old.mode).context("bad mode")? as u32 & 0o7777;
    let et = h.entry_type();
    let device = match et {
        tar::EntryType::Char | tar::EntryType::Block => Some((
            h.device_major()?.unwrap_or(0),
            h.device_minor()?.unwrap_or(0),
        )),
        _ => None,
    };
    uid = over.uid.unwrap_or(uid);
    gid = over.gid.unwrap_or(gid);
    let link = over
        .link
        .or_else(|| e.header().link_name_bytes().map(|l| l.into_owned()))
        .map(|l| String::from_utf8_lossy(&l).into_owned());
    let base = Entry {
        kind: Kind::File,
        mode,
        uid,
        gid,
        size: None,
        sha256: None,
        link: None,
        device,
    };
    let entry = match et {
        tar::EntryType::Regular | tar::EntryType::Continuous => {
            let (digest, size, spooled) = hash_content(e, spool, room)?;
            return Ok((
                Entry {
                    size: Some(size),
                    sha256: Some(digest),
                    ..base
                },
                spooled,
            ));
        }
        tar::EntryType::Directory => Entry {
            kind: Kind::Dir,
            ..base
        },
        tar::EntryType::Symlink => Entry {
            kind: Kind::Symlink,
            link: Some(link.context("symlink without a target")?),
            ..base
        },
        tar::EntryType::Link => Entry {
            kind: Kind::Hardlink,
            link: Some(link.context("hardlink without a target")?),
            ..base
        },
        tar::EntryType::Char => Entry {
            kind: Kind::Char,
            ..base
        },
        tar::EntryType::Block => Entry {
            kind: Kind::Block,
            ..base
        },
        tar::EntryType::Fifo => Entry {
            kind: Kind::Fifo,
            ..base
        },
        other => bail!("unsupported tar entry type {other:?}"),
    };
    Ok((entry, false))
}

/// Go's archive/tar (behind skopeo, umoci, containerd) reads a numeric field of only NULs or
/// spaces as 0; so does tdg, rather than refuse images those tools accept.
fn numeric(parsed: io::Result<u64>, raw: &[u8]) -> io::Result<u64> {
    match parsed {
        Err(_) if raw.iter().all(|b| *b == 0 || *b == b' ') => Ok(0),
        other => other,
    }
}

fn hash_content(
    r: &mut impl Read,
    spool: Option<&Spool>,
    room: u64,
) -> Result<(Digest, u64, bool)> {
    match spool {
        None => {
            let mut w = HashingWriter::new(io::sink());
            io::copy(r, &mut w)?;
            let (d, n) = w.hasher.finish();
            Ok((d, n, false))
        }
        Some(spool) => {
            let too_much = "the image's files add up to more than --max-export-size allows; raise it (or TDG_MAX_EXPORT_SIZE) to export a larger image";
            let mut head = Vec::new();
            r.take(room.min(SMALL as u64).saturating_add(1))
                .read_to_end(&mut head)?;
            if head.len() <= SMALL {
                ensure!(head.len() as u64 <= room, "{too_much}");
                let d = Digest::of(&head);
                let mut written = spool.written.lock().expect("no panic while holding it");
                if !written.contains(&d.raw()) {
                    let mut tmp = tempfile::NamedTempFile::new_in(&spool.tmp)?;
                    tmp.write_all(&head)?;
                    tmp.persist(spool.path(&d)).map_err(|e| e.error)?;
                    if written.len() < WRITTEN_CAP {
                        written.insert(d.raw());
                    }
                }
                return Ok((d, head.len() as u64, true));
            }
            let tmp = tempfile::NamedTempFile::new_in(&spool.tmp)?;
            let mut w = HashingWriter::new(io::BufWriter::new(tmp));
            w.write_all(&head)?;
            io::copy(
                &mut r.take(room.saturating_add(1) - head.len() as u64),
                &mut w,
            )?;
            ensure!(w.hasher.len() <= room, "{too_much}");
            w.flush()?;
            let (d, n) = w.hasher.finish();
            let tmp = w.inner.into_inner().map_err(|e| e.into_error())?;
            tmp.persist(spool.path(&d)).map_err(|e| e.error)?;
            Ok((d, n, true))
        }
    }
}

/// Chunks of a layer's tar stream between the decompressing thread and the tar reader.
const CHUNK: usize = 256 << 10;
const CHUNKS_IN_FLIGHT: usize = 4;

type Chunk = io::Result<Vec<u8>>;

/// The producing half of `apply_blob`: reads the whole blob (verifying its size and digest
/// unless `trusted`), decompresses it and sends the tar stream on, hashing it. Returns the
/// blob's verification, the decompression's outcome and the tar stream's digest. When the
/// receiver is gone (the tar ended, or failed) it reads on to the end without sending.
fn decompress(
    file: std::fs::File,
    desc: &Descriptor,
    trusted: bool,
    compression: Compression,
    what: &str,
    tx: std::sync::mpsc::SyncSender<Chunk>,
) -> (
    std::result::Result<(), crate::digest::VerifyError>,
    io::Result<()>,
    Digest,
) {
    let verifying = Rc::new(RefCell::new(VerifyingReader::new(
        BufReader::with_capacity(1 << 20, file),
        desc.digest.clone(),
        desc.size,
        what.to_string(),
    )));
    if trusted {
        verifying.borrow_mut().trust();
    }
    let shared = SharedReader(verifying.clone());
    let mut hasher = Hasher::default();
    // A plain tar layer is its own uncompressed stream: its diff_id is the blob's digest, which
    // the blob's verification (now, or on its way into the cache) already answers for.
    let plain = matches!(compression, Compression::None);
    let decoded: io::Result<Box<dyn Read>> = match compression {
        Compression::None => Ok(Box::new(shared)),
        Compression::Gzip => Ok(Box::new(flate2::read::MultiGzDecoder::new(shared))),
        Compression::Zstd => {
            zstd::stream::read::Decoder::new(shared).map(|d| Box::new(d) as Box<dyn Read>)
        }
    };
    let drained = decoded.and_then(|mut decoded| {
        let mut receiver = true;
        loop {
            let mut chunk = vec![0u8; CHUNK];
            let n = match read_chunk(&mut decoded, &mut chunk) {
                Ok(n) => n,
                Err(e) => {
                    let _ = tx.send(Err(io::Error::new(e.kind(), e.to_string())));
                    return Err(e);
                }
            };
            if n == 0 {
                return Ok(());
            }
            chunk.truncate(n);
            if !plain {
                hasher.update(&chunk);
            }
            receiver = receiver && tx.send(Ok(chunk)).is_ok();
        }
    });
    drop(tx);
    let verified = Rc::try_unwrap(verifying)
        .ok()
        .expect("reader released")
        .into_inner()
        .finish();
    let uncompressed = if plain {
        desc.digest.clone()
    } else {
        hasher.finish().0
    };
    (verified, drained, uncompressed)
}

/// Fills `buf` as far as the stream goes; the count is short only at its end.
fn read_chunk(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// The tar reader's end of the channel.
struct ChannelReader {
    rx: std::sync::mpsc::Receiver<Chunk>,
    chunk: Vec<u8>,
    at: usize,
}

impl Read for ChannelReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.at == self.chunk.len() {
            match self.rx.recv() {
                Ok(Ok(chunk)) => {
                    self.chunk = chunk;
                    self.at = 0;
                }
                Ok(Err(e)) => return Err(e),
                // The producer is done: the stream's end.
                Err(_) => return Ok(0),
            }
        }
        let n = out.len().min(self.chunk.len() - self.at);
        out[..n].copy_from_slice(&self.chunk[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

struct SharedReader<R>(Rc<RefCell<R>>);

impl<R: Read> Read for SharedReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.borrow_mut().read(buf)
    }
}

#[cfg(test)]
mod held_tests {
    use super::*;

    #[test]
    fn held_entries_come_back_in_order_from_memory_and_from_the_spill_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut held = Held::new(Some(dir.path()));
        held.limit = 1000;
        let entry = |i: u32| LayerEntry {
            path: format!("d/é{i}"),
            spooled: i % 2 == 0,
            entry: Entry {
                kind: Kind::from_letter(['f', 'd', 'l', 'h', 'c', 'b', 'p'][i as usize % 7])
                    .unwrap(),
                mode: i,
                uid: u64::MAX - u64::from(i),
                gid: 1 << 40,
                size: (i % 3 == 0).then_some(u64::from(i) << 33),
                sha256: (i % 3 == 0).then(|| Digest::of(&i.to_le_bytes())),
                link: (i % 4 == 1).then(|| "/a/../b\n".repeat(i as usize)),
                device: (i % 5 == 2).then_some((i, u32::MAX)),
            },
        };
        for i in 0..20 {
            held.push(entry(i)).unwrap();
        }
        assert!(
            held.file.is_some(),
            "past the limit, entries went to a file"
        );
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "the file has no name"
        );
        let back: Vec<LayerEntry> = held.drain().unwrap().map(Result::unwrap).collect();
        assert_eq!(back, (0..20).map(entry).collect::<Vec<_>>());
    }
}
