//! One layer read on its own, before it meets the layers below: the blob's size and digest
//! checked, the blob decompressed and its diff_id checked, the tar's entries parsed (GNU long
//! names and PAX records with Go's caps), every file hashed and the wanted ones spooled.
//! Nothing here looks at the tree, so layers are read side by side and applied in order
//! (`flatten`).

use std::cell::RefCell;
use std::collections::HashSet;
use std::io::{self, BufReader, Read, Write};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use anyhow::{bail, ensure, Context, Result};

use super::held::{Held, LayerEntry};
use super::spool::{Spool, SMALL};
use super::tree::{Entry, Kind};
use crate::digest::{Digest, Hasher, HashingWriter, VerifyingReader};
use crate::oci::manifest::{layer_compression, Compression, Descriptor};
use crate::oci::tarext::{self, shown, Extensions, Overrides};

/// What to keep the content of. A wanted path ending in `/` stands for every file directly
/// in that directory (an extension's service specs).
#[derive(Clone)]
pub enum Wanted {
    Nothing,
    Paths(HashSet<String>),
    Everything,
}

impl Wanted {
    pub(super) fn wants(&self, a: &str, b: &str) -> bool {
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

#[derive(Clone)]
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

/// One layer blob to read: where it is, what it must be, and the config's diff_id for it.
#[derive(Clone)]
pub struct LayerBlob {
    pub path: std::path::PathBuf,
    pub desc: Descriptor,
    /// Verified on its way into the cache by this run: its digest is not computed again.
    pub verified: bool,
    pub diff_id: Option<Digest>,
}

/// Where a wanted path is once the layers below have had their say: `None` judges a path as
/// it is written in the tar, which is all a layer read beside the others can see.
pub(super) type Resolver<'r> = Option<&'r dyn Fn(&str) -> Result<String>>;

/// What every layer of one flatten reads with, shared by the layers read at once.
pub(super) struct Reading<'a> {
    pub wanted: Wanted,
    pub spool: Option<&'a Spool>,
    pub limits: Limits,
    /// Bytes of content spooled by every layer so far, held to `limits.max_spooled`.
    spooled: AtomicU64,
    /// Set when a lower layer failed: the layers above stop at their next entry.
    pub cancelled: AtomicBool,
}

/// A layer read: its entries in tar order, and the deletions it makes in the layers below.
pub(super) struct Parsed<'a> {
    pub adds: Held<'a>,
    pub opaques: Vec<String>,
    pub whiteouts: Vec<String>,
}

const TOO_MUCH: &str = "the image's files add up to more than --max-export-size allows; raise it (or TDG_MAX_EXPORT_SIZE) to export a larger image";

impl<'a> Reading<'a> {
    pub fn new(wanted: Wanted, spool: Option<&'a Spool>, limits: Limits) -> Self {
        Reading {
            wanted,
            spool,
            limits,
            spooled: AtomicU64::new(0),
            cancelled: AtomicBool::new(false),
        }
    }

    /// Counts `n` more bytes spooled; false once the total passes `max_spooled`. Layers read
    /// at once share the count, so together they never spool more than it allows.
    fn reserve(&self, n: u64) -> bool {
        let before = self.spooled.fetch_add(n, Ordering::Relaxed);
        before.saturating_add(n) <= self.limits.max_spooled
    }

    /// Reads one layer blob from a file, verifying its size and digest as it is read: every
    /// byte up to the end of the blob, not just up to the end of the tar. `diff_id`, the
    /// config's digest of the uncompressed layer, is checked on the same read (umoci and
    /// containerd refuse a mismatch; the tar bytes are what an unpacker applies).
    pub fn parse_blob(
        &self,
        blob: &LayerBlob,
        resolve: Resolver<'_>,
    ) -> crate::error::Result<Parsed<'a>> {
        let LayerBlob {
            path,
            desc,
            verified,
            diff_id,
        } = blob;
        let verified = *verified;
        let compression = layer_compression(&desc.media_type).map_err(anyhow::Error::msg)?;
        // Never blocks on a FIFO put where a blob was expected; only regular files are read.
        let file = crate::located::open_regular(path)
            .with_context(|| format!("opening {}", path.display()))?;
        let what = format!("layer {}", desc.digest);
        // Two threads, as `gzip -dc | tar` would be: one reads the blob, checks its digest,
        // decompresses and hashes the tar stream for the diff_id; this one parses the tar and
        // hashes each file. At most CHUNKS_IN_FLIGHT chunks sit between.
        let (tx, rx) = std::sync::mpsc::sync_channel(CHUNKS_IN_FLIGHT);
        // Read chunks go back to be filled again: no allocation or zeroing per chunk.
        let (used, reuse) = std::sync::mpsc::channel();
        let (parsed, (verified, drained, uncompressed)) = std::thread::scope(|scope| {
            let producer =
                scope.spawn(|| decompress(file, desc, verified, compression, &what, (tx, reuse)));
            let mut reader = ChannelReader {
                rx,
                used,
                chunk: Vec::new(),
                at: 0,
            };
            let parsed = self.parse_tar(&mut reader, &what, resolve);
            // What the tar did not take the producer still reads and hashes, on its own.
            drop(reader);
            let done = producer
                .join()
                .expect("the decompressing thread does not panic");
            (parsed, done)
        });
        // Integrity first: a broken blob explains any parse error that came out of it.
        verified?;
        drained.with_context(|| format!("{what}: decompressing"))?;
        if let Some(want) = diff_id.as_ref().filter(|d| **d != uncompressed) {
            return Err(crate::error::Error::integrity(format!(
                "{what}: uncompressed digest {uncompressed} is not the config's diff_id {want}"
            )));
        }
        Ok(parsed?)
    }

    /// Reads one uncompressed tar stream.
    pub fn parse_tar(
        &self,
        reader: &mut dyn Read,
        what: &str,
        resolve: Resolver<'_>,
    ) -> Result<Parsed<'a>> {
        let mut archive = tar::Archive::new(reader);
        let mut parsed = Parsed {
            adds: Held::new(self.spool.map(Spool::scratch)),
            opaques: Vec::new(),
            whiteouts: Vec::new(),
        };
        let mut seen = Seen::default();
        let mut ext = Extensions::default();
        // Raw entries: tdg applies GNU long names and PAX records itself, with Go's caps.
        for item in archive
            .entries()
            .with_context(|| format!("{what}: reading tar"))?
            .raw(true)
        {
            if self.cancelled.load(Ordering::Relaxed) {
                bail!("{what}: not read, a layer below it failed");
            }
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
                parsed.opaques.push(parent.to_string());
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
                parsed.whiteouts.push(if parent.is_empty() {
                    target.to_string()
                } else {
                    format!("{parent}/{target}")
                });
                continue;
            }
            let resolved = match resolve {
                Some(r) => Some(r(&path)?),
                None => None,
            };
            let wants = self
                .wanted
                .wants(&path, resolved.as_deref().unwrap_or(&path));
            let spool = self.spool.filter(|_| wants);
            let (entry, spooled) = self
                .read_entry(&mut e, over, spool)
                .with_context(|| format!("{what}: entry {}", shown(raw.as_bytes())))?;
            parsed.adds.push(LayerEntry {
                path,
                entry,
                spooled,
            })?;
        }
        if ext.pending() {
            bail!("{what}: ends with a long-name or PAX header that describes no entry");
        }
        Ok(parsed)
    }

    fn read_entry<R: Read>(
        &self,
        e: &mut tar::Entry<'_, R>,
        over: Overrides,
        spool: Option<&Spool>,
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
                let (digest, size, spooled) = self.hash_content(e, spool)?;
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

    /// Hashes a file's content, spooling it when `spool` is given.
    fn hash_content(
        &self,
        r: &mut impl Read,
        spool: Option<&Spool>,
    ) -> Result<(Digest, u64, bool)> {
        let Some(spool) = spool else {
            let mut w = HashingWriter::new(io::sink());
            io::copy(r, &mut w)?;
            let (d, n) = w.hasher.finish();
            return Ok((d, n, false));
        };
        let mut head = Vec::new();
        r.take(SMALL as u64 + 1).read_to_end(&mut head)?;
        ensure!(self.reserve(head.len() as u64), "{TOO_MUCH}");
        if head.len() <= SMALL {
            let d = spool.put_small(&head)?;
            return Ok((d, head.len() as u64, true));
        }
        let tmp = spool.temp()?;
        let mut w = HashingWriter::new(io::BufWriter::new(tmp));
        w.write_all(&head)?;
        let mut chunk = vec![0u8; 1 << 16];
        loop {
            let n = match r.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e.into()),
            };
            ensure!(self.reserve(n as u64), "{TOO_MUCH}");
            w.write_all(&chunk[..n])?;
        }
        w.flush()?;
        let (d, n) = w.hasher.finish();
        let tmp = w.inner.into_inner().map_err(|e| e.into_error())?;
        spool.keep(tmp, &d)?;
        Ok((d, n, true))
    }
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

/// Go's archive/tar (behind skopeo, umoci, containerd) reads a numeric field of only NULs or
/// spaces as 0; so does tdg, rather than refuse images those tools accept.
fn numeric(parsed: io::Result<u64>, raw: &[u8]) -> io::Result<u64> {
    match parsed {
        Err(_) if raw.iter().all(|b| *b == 0 || *b == b' ') => Ok(0),
        other => other,
    }
}

/// Chunks of a layer's tar stream between the decompressing thread and the tar reader.
const CHUNK: usize = 128 << 10;
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
    (tx, reuse): (
        std::sync::mpsc::SyncSender<Chunk>,
        std::sync::mpsc::Receiver<Vec<u8>>,
    ),
) -> (
    std::result::Result<(), crate::digest::VerifyError>,
    io::Result<()>,
    Digest,
) {
    let verifying = Rc::new(RefCell::new(VerifyingReader::new(
        BufReader::with_capacity(128 << 10, file),
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
            let mut chunk = reuse.try_recv().unwrap_or_default();
            chunk.resize(CHUNK, 0);
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
    /// Where a chunk read to its end goes back to the producer.
    used: std::sync::mpsc::Sender<Vec<u8>>,
    chunk: Vec<u8>,
    at: usize,
}

impl Read for ChannelReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.at == self.chunk.len() {
            match self.rx.recv() {
                Ok(Ok(chunk)) => {
                    let done = std::mem::replace(&mut self.chunk, chunk);
                    // The producer may be gone (the stream ended); the chunk is then freed.
                    let _ = self.used.send(done);
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
