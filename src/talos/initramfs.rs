//! Walking an initramfs as Linux unpacks it (`init/initramfs.c`, Linux 6.12): concatenated
//! segments, each an uncompressed newc cpio or a zstd, xz or gzip compressed one, in any order
//! and number, with NUL padding between them; `070702` checksums verified; every entry applied
//! to a modelled rootfs ([`super::rootfs`]) with the kernel's hard-link, replace and symlink
//! semantics, so what tdg reports (`extensions.yaml`, its layers) is the final state the node
//! sees, and an unpack the kernel would stop early says where and why. Streams throughout:
//! bodies are never kept, except the one `extensions.yaml` and squashfs superblock ids.
//! Decompressed bytes per segment and entries are capped, so a bomb ends in an error.

use std::collections::HashMap;
use std::fs;
use std::io::{self, BufRead, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use serde::Serialize;

use super::extensions::{self, ExtensionsConfig};
use super::foreign;
use super::newc;
use super::rootfs::{self, Rootfs};
use super::services;

pub const ZSTD_MAGIC: &[u8] = &[0x28, 0xB5, 0x2F, 0xFD];
pub const XZ_MAGIC: &[u8] = &[0xFD, b'7', b'z', b'X', b'Z', 0x00];
pub const GZIP_MAGIC: &[u8] = &[0x1F, 0x8B];
pub const NEWC_MAGIC: &[u8] = b"070701";
pub const NEWC_CRC_MAGIC: &[u8] = b"070702";

#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Decompressed bytes one segment may hold.
    pub max_segment_bytes: u64,
    /// cpio entries in the whole initramfs.
    pub max_entries: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_segment_bytes: crate::limits::DEFAULT_MAX_SEGMENT_BYTES,
            max_entries: crate::limits::DEFAULT_MAX_INITRAMFS_ENTRIES,
        }
    }
}

#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    None,
    Zstd,
    Xz,
    Gzip,
}

#[derive(Clone, Debug, Serialize)]
pub struct Initramfs {
    pub size: u64,
    /// The segments and the entries each holds, in archive order.
    pub segments: Vec<Segment>,
    /// `/extensions.yaml` as the unpacked rootfs holds it.
    pub extensions: Option<ExtensionsConfig>,
    /// Each layer image `extensions.yaml` names, as the unpacked rootfs holds it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub layer_images: Vec<LayerImage>,
    /// Where and why the kernel stops unpacking before the end (what came before stays).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped: Option<String>,
    /// The extension services the layers carry, when asked for ([`services`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub services: Option<Vec<services::Service>>,
    /// The rootfs the kernel leaves: what every other answer here is read from.
    #[serde(skip)]
    pub rootfs: Rootfs,
}

/// A layer `extensions.yaml` lists, as Talos's init will find it: `/<image>`, mounted as a
/// squashfs (siderolabs/talos `internal/app/init/main.go`).
#[derive(Clone, Debug, Serialize)]
pub struct LayerImage {
    pub image: String,
    /// The squashfs compressor, when the file's superblock reads.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub squashfs: Option<String>,
    /// Why Talos could not mount it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Segment {
    pub offset: u64,
    /// Bytes of the initramfs this segment takes (compressed size for compressed ones).
    pub size: u64,
    pub compression: Compression,
    pub uncompressed_size: u64,
    pub entries: CpioEntries,
}

/// A segment's entries, packed: JSON lines in one zstd frame, unpacked when listed. An
/// initramfs of 100k entries with 4 KiB names costs what its own compressed bytes cost, not
/// 400 MB of names (and an `inspect --format json` of it streams them out one at a time).
#[derive(Clone, Debug, Default)]
pub struct CpioEntries {
    len: usize,
    packed: std::sync::Arc<[u8]>,
}

impl CpioEntries {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The entries in archive order.
    pub fn iter(&self) -> impl Iterator<Item = CpioEntry> + '_ {
        let lines: Box<dyn Iterator<Item = CpioEntry>> = if self.len == 0 {
            Box::new(std::iter::empty())
        } else {
            let d = zstd::stream::read::Decoder::new(&self.packed[..])
                .expect("a zstd decoder over memory");
            Box::new(
                serde_json::Deserializer::from_reader(d)
                    .into_iter::<CpioEntry>()
                    .map(|e| e.expect("entries read back as they were packed")),
            )
        };
        lines.take(self.len)
    }
}

impl Serialize for CpioEntries {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

/// Packs entries as the unpacker meets them.
struct CpioList {
    len: usize,
    encoder: zstd::stream::write::Encoder<'static, Vec<u8>>,
}

impl CpioList {
    fn new() -> Self {
        CpioList {
            len: 0,
            encoder: zstd::stream::write::Encoder::new(Vec::new(), 1)
                .expect("a zstd encoder into memory"),
        }
    }

    fn push(&mut self, e: CpioEntry) {
        serde_json::to_writer(&mut self.encoder, &e).expect("writing to memory");
        self.encoder.write_all(b"\n").expect("writing to memory");
        self.len += 1;
    }

    fn finish(self) -> CpioEntries {
        CpioEntries {
            len: self.len,
            packed: self.encoder.finish().expect("writing to memory").into(),
        }
    }
}

/// One named cpio entry as the archive has it (the rootfs may hold something else there by
/// the end).
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct CpioEntry {
    pub name: String,
    pub mode: String,
    pub uid: u32,
    pub gid: u32,
    pub size: u32,
    /// For `*.sqsh` entries: the squashfs compression, read from the superblock.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub squashfs: Option<String>,
}

impl Initramfs {
    /// The regular file the unpacked rootfs has at `path`, symlinks followed.
    pub fn file(&self, path: &str) -> Option<rootfs::File> {
        self.rootfs.file(path.as_bytes())
    }

    /// What makes this initramfs unfit to boot as its `extensions.yaml` says: an unpack the
    /// kernel stops early, a layer that is not there as a squashfs.
    pub fn problems(&self) -> Vec<String> {
        let mut out: Vec<String> = self.stopped.iter().cloned().collect();
        for l in &self.layer_images {
            if let Some(p) = &l.problem {
                out.push(format!("extensions.yaml names {}, which {p}", l.image));
            }
        }
        out
    }
}

/// Walks an initramfs as the kernel unpacks it. `open` gives its bytes from the start, and is
/// called again only in the rare case the final `extensions.yaml` is a body read earlier under
/// another name (a hard link, a symlinked directory).
pub fn walk<R: Read>(mut open: impl FnMut() -> io::Result<R>, limits: Limits) -> Result<Initramfs> {
    let mut u = Unpack::new(limits, HashMap::new());
    let (size, segments) = u.run(open()?)?;
    let rootfs = std::mem::take(&mut u.rootfs);
    let extensions = match rootfs.file(EXTENSIONS_YAML.as_bytes()) {
        None => None,
        Some(f) => {
            if f.size > crate::limits::MAX_EXTENSIONS_YAML {
                bail!(
                    "extensions.yaml is {} bytes, over the {} bytes tdg reads of it (the imager writes a few KiB)",
                    f.size,
                    crate::limits::MAX_EXTENSIONS_YAML
                );
            }
            let bytes = match (f.body, u.yaml.take()) {
                (None, _) => Vec::new(),
                (Some(o), Some((kept, bytes))) if kept == o => bytes,
                (Some(o), _) => {
                    let mut again = Unpack::new(limits, HashMap::from([(o, Grab::Memory)]));
                    again.run(open()?)?;
                    again.grabbed.remove(&o).unwrap_or_default()
                }
            };
            let text = String::from_utf8(bytes)
                .map_err(|_| anyhow!("extensions.yaml is not UTF-8 text"))?;
            Some(extensions::parse_config(&text)?)
        }
    };
    let layer_images = extensions
        .iter()
        .flat_map(|c| &c.layers)
        .map(|l| layer_image(&rootfs, &u.squashfs, &l.image))
        .collect();
    Ok(Initramfs {
        size,
        segments,
        extensions,
        layer_images,
        stopped: u.stopped,
        services: None,
        rootfs,
    })
}

const EXTENSIONS_YAML: &str = "extensions.yaml";

/// [`walk`] over bytes in memory.
pub fn walk_bytes(data: &[u8], limits: Limits) -> Result<Initramfs> {
    walk(|| Ok(data), limits)
}

/// [`walk`] over `len` bytes of `f` from `offset` (a whole file, or a UKI's `.initrd`).
pub fn walk_file(f: &fs::File, offset: u64, len: u64, limits: Limits) -> Result<Initramfs> {
    walk(|| section(f, offset, len), limits)
}

/// [`scan_layers`] of `len` bytes of `f` from `offset`.
pub fn scan_file(
    f: &fs::File,
    offset: u64,
    len: u64,
    walked: &Initramfs,
    limits: Limits,
    work: &Path,
    arch: Option<foreign::Arch>,
) -> Result<LayerScan> {
    scan_layers(|| section(f, offset, len), walked, limits, work, arch)
}

fn section(f: &fs::File, offset: u64, len: u64) -> io::Result<io::Take<fs::File>> {
    use std::io::Seek;
    let mut g = f.try_clone()?;
    g.seek(io::SeekFrom::Start(offset))?;
    Ok(g.take(len))
}

fn layer_image(fs: &Rootfs, squashfs: &HashMap<u64, String>, image: &str) -> LayerImage {
    let (squashfs, problem) = match fs.lookup(image.as_bytes()).map(|id| fs.node(id)) {
        None => (None, "is not in the initramfs"),
        Some(rootfs::Node::File(f)) => match f.body.and_then(|o| squashfs.get(&o)) {
            Some(c) => (Some(c.clone()), ""),
            None if f.size == 0 => (None, "is empty"),
            None => (None, "is not a squashfs"),
        },
        Some(_) => (None, "is not a regular file"),
    };
    LayerImage {
        image: image.to_string(),
        squashfs,
        problem: (!problem.is_empty()).then(|| problem.to_string()),
    }
}

/// What the layers hold that tdg judges: the extension services the node will start, and (for
/// `arch`) the files that serve another architecture, in the layers and in the initramfs itself
/// (early microcode).
#[derive(Debug, Default)]
pub struct LayerScan {
    pub services: Vec<services::Service>,
    pub foreign: Vec<String>,
}

/// Each layer's squashfs is taken out into `work` (a second pass over the input) and read, the
/// layers merged as Talos's init stacks them (a later layer over an earlier one), and every
/// `/usr/local/etc/containers/*.yaml` judged as the node judges it ([`services::judge`]).
pub fn scan_layers<R: Read>(
    mut open: impl FnMut() -> io::Result<R>,
    walked: &Initramfs,
    limits: Limits,
    work: &Path,
    arch: Option<foreign::Arch>,
) -> Result<LayerScan> {
    let layers: Vec<(&LayerImage, String)> = walked
        .layer_images
        .iter()
        .filter(|l| l.squashfs.is_some())
        .zip(walked.extensions.iter().flat_map(|c| &c.layers))
        .map(|(img, l)| (img, l.metadata.name.clone()))
        .collect();
    let mut grab = HashMap::new();
    let mut files = Vec::new();
    for (i, (img, name)) in layers.iter().enumerate() {
        if let Some(o) = walked.file(&img.image).and_then(|f| f.body) {
            let dest = work.join(format!("layer-{i}.sqsh"));
            grab.insert(o, Grab::File(dest.clone()));
            files.push((dest, name.clone()));
        }
    }
    if !grab.is_empty() {
        Unpack::new(limits, grab).run(open()?)?;
    }
    let mut scan = LayerScan::default();
    if let Some(a) = arch {
        walked.rootfs.walk(|p, _| {
            let p = String::from_utf8_lossy(p);
            scan.foreign.extend(foreign::foreign(&p, b"", a));
        });
    }
    let mut present = std::collections::HashSet::new();
    let mut specs: std::collections::BTreeMap<String, (String, Vec<u8>)> = Default::default();
    for (path, extension) in &files {
        squashfs_tree(path, arch.is_some(), |rel, head, content| {
            present.insert(rel.to_string());
            if let Some(bytes) = content {
                specs.insert(rel.to_string(), (extension.clone(), bytes));
            }
            if let Some(a) = arch {
                if let Some(why) = foreign::foreign(rel, head, a) {
                    scan.foreign.push(format!("{why} (in {extension})"));
                }
            }
        })
        .with_context(|| format!("reading the {extension} layer"))?;
    }
    let specs: Vec<(String, String, Vec<u8>)> =
        specs.into_iter().map(|(p, (e, b))| (p, e, b)).collect();
    scan.services = services::judge(&specs, |p| present.contains(p));
    Ok(scan)
}

/// Every path of a squashfs, with the first bytes of each file (`heads`: for ELF headers) and
/// the content of the service specs in it (at most 1 MiB each).
fn squashfs_tree(
    path: &Path,
    heads: bool,
    mut each: impl FnMut(&str, &[u8], Option<Vec<u8>>),
) -> Result<()> {
    use backhand::{FilesystemReader, InnerNode};
    let f = fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let sq = FilesystemReader::from_reader(io::BufReader::new(f))
        .map_err(|e| anyhow!("not a squashfs tdg can read: {e}"))?;
    for node in sq.files() {
        let rel = node.fullpath.to_string_lossy();
        let rel = rel.trim_start_matches('/');
        if rel.is_empty() {
            continue;
        }
        let spec = rel
            .strip_prefix(services::CONFIG_DIR)
            .and_then(|r| r.strip_prefix('/'))
            .is_some_and(|n| !n.contains('/') && n.ends_with(".yaml"));
        let mut head = Vec::new();
        let mut content = None;
        if let InnerNode::File(file) = &node.inner {
            if spec {
                let mut bytes = Vec::new();
                sq.file(file)
                    .reader()
                    .take(crate::limits::MAX_MANIFEST)
                    .read_to_end(&mut bytes)
                    .with_context(|| format!("reading /{rel}"))?;
                head = bytes.iter().take(20).copied().collect();
                content = Some(bytes);
            } else if heads {
                sq.file(file)
                    .reader()
                    .take(20)
                    .read_to_end(&mut head)
                    .with_context(|| format!("reading /{rel}"))?;
            }
        }
        each(rel, &head, content);
    }
    Ok(())
}

/// Writes the regular files `names` leads to in the unpacked rootfs into `dir`, one file each,
/// and returns where each found name was written.
pub fn extract<R: Read>(
    mut open: impl FnMut() -> io::Result<R>,
    limits: Limits,
    names: &[String],
    dir: &Path,
) -> Result<HashMap<String, PathBuf>> {
    let walked = walk(&mut open, limits)?;
    if let Some(s) = &walked.stopped {
        bail!("{s}");
    }
    let mut found = HashMap::new();
    let mut grab = HashMap::new();
    for (i, name) in names.iter().enumerate() {
        let Some(f) = walked.file(name) else { continue };
        let dest = dir.join(format!("{i}.{}", name.replace('/', "_")));
        match f.body {
            Some(o) => {
                grab.insert(o, Grab::File(dest.clone()));
            }
            None => {
                fs::File::create(&dest).with_context(|| format!("creating {}", dest.display()))?;
            }
        }
        found.insert(name.clone(), dest);
    }
    if !grab.is_empty() {
        let mut again = Unpack::new(limits, grab);
        again.run(open()?)?;
        for (o, g) in &again.grab {
            if let Grab::File(p) = g {
                if !again.grabbed.contains_key(o) {
                    bail!("{} was not written a second time", p.display());
                }
            }
        }
    }
    Ok(found)
}

/// A body wanted from the second pass.
#[derive(Debug)]
enum Grab {
    Memory,
    File(PathBuf),
}

/// A read failure of the segment's bytes (a corrupt compressed stream), as opposed to
/// tdg's own limits or its writes.
#[derive(Debug)]
struct ReadFailed(io::Error);

impl std::fmt::Display for ReadFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0.kind() {
            io::ErrorKind::UnexpectedEof => f.write_str("truncated"),
            _ => write!(f, "{}", self.0),
        }
    }
}

impl std::error::Error for ReadFailed {}

fn read_failed(e: io::Error) -> anyhow::Error {
    anyhow::Error::new(ReadFailed(e))
}

/// The kernel's unpacker state (`init/initramfs.c`, Linux 6.12) driving a modelled rootfs.
struct Unpack {
    limits: Limits,
    rootfs: Rootfs,
    /// `find_link`'s table: (ino, major, minor, file type) to the first name, until the next
    /// `TRAILER!!!`.
    links: HashMap<(u32, u32, u32, u32), Vec<u8>>,
    /// cpio entries read so far; an entry's ordinal names its body.
    ordinal: u64,
    /// The state machine is in `Reset` (between entries) rather than `Start`.
    after_entry: bool,
    stopped: Option<String>,
    /// The squashfs compressor of every body that starts with a squashfs superblock.
    squashfs: HashMap<u64, String>,
    /// The last body written to the file at `/extensions.yaml` while it was there.
    yaml: Option<(u64, Vec<u8>)>,
    grab: HashMap<u64, Grab>,
    grabbed: HashMap<u64, Vec<u8>>,
    what: String,
}

impl Unpack {
    fn new(limits: Limits, grab: HashMap<u64, Grab>) -> Self {
        Unpack {
            limits,
            rootfs: Rootfs::default(),
            links: HashMap::new(),
            ordinal: 0,
            after_entry: false,
            stopped: None,
            squashfs: HashMap::new(),
            yaml: None,
            grab,
            grabbed: HashMap::new(),
            what: String::new(),
        }
    }

    /// `unpack_to_rootfs`: segments in order until the end or the first error.
    fn run<R: Read>(&mut self, r: R) -> Result<(u64, Vec<Segment>)> {
        let mut input = Input::new(r);
        let mut segments = Vec::new();
        while self.stopped.is_none() {
            input.skip_zeros()?;
            let offset = input.pos;
            let head = input.peek(6)?.to_vec();
            if head.is_empty() {
                break;
            }
            let compression = if head[0] == b'0' && offset % 4 == 0 {
                Compression::None
            } else if head.starts_with(ZSTD_MAGIC) {
                Compression::Zstd
            } else if head.starts_with(XZ_MAGIC) {
                Compression::Xz
            } else if head.starts_with(GZIP_MAGIC) {
                Compression::Gzip
            } else {
                let why = match unsupported(&head) {
                    Some(name) => format!("compressed with {name}, which tdg does not read"),
                    None => "invalid magic at start of compressed archive".to_string(),
                };
                self.stop(offset, &why);
                break;
            };
            self.what = format!("{} segment at offset {offset}", word(compression));
            let mut seg = Segment {
                offset,
                size: 0,
                compression,
                uncompressed_size: 0,
                entries: CpioEntries::default(),
            };
            let mut list = CpioList::new();
            match compression {
                Compression::None => {
                    match self.entries(&mut input, false, &mut list) {
                        Ok(()) => {}
                        Err(e) => match e.downcast::<ReadFailed>() {
                            Ok(r) => bail!("{}: {r}", self.what),
                            Err(e) => return Err(e),
                        },
                    }
                    seg.uncompressed_size = input.pos - offset;
                }
                Compression::Zstd => {
                    let d = zstd::stream::read::Decoder::with_buffer(&mut input)
                        .with_context(|| self.what.clone())?
                        .single_frame();
                    seg.uncompressed_size = self.decompressed(d, &mut list)?;
                }
                Compression::Xz => {
                    let d = liblzma::bufread::XzDecoder::new(&mut input);
                    seg.uncompressed_size = self.decompressed(d, &mut list)?;
                }
                Compression::Gzip => {
                    let d = flate2::bufread::GzDecoder::new(&mut input);
                    seg.uncompressed_size = self.decompressed(d, &mut list)?;
                }
            }
            seg.size = input.pos - offset;
            seg.entries = list.finish();
            segments.push(seg);
        }
        if segments.is_empty() && self.stopped.is_none() {
            bail!("empty: no cpio segments");
        }
        Ok((input.pos, segments))
    }

    /// One compressed segment; returns its decompressed size.
    fn decompressed(&mut self, mut d: impl Read, out: &mut CpioList) -> Result<u64> {
        let mut capped = Capped::new(&mut d, self.limits.max_segment_bytes);
        let mut src = Counted {
            inner: io::BufReader::with_capacity(64 << 10, &mut capped),
            pos: 0,
        };
        let r = self.entries(&mut src, true, out);
        drop(src);
        if let Err(e) = r {
            if capped.exceeded {
                bail!(
                    "{}: decompresses to more than {} bytes (the limit)",
                    self.what,
                    self.limits.max_segment_bytes
                );
            }
            match e.downcast::<ReadFailed>() {
                Ok(r) => {
                    let why = format!("decompressor failed ({r})");
                    let at = self.what.clone();
                    self.stopped = Some(format!("{at}: {why}"));
                }
                Err(e) => return Err(e),
            }
        }
        Ok(capped.count)
    }

    /// Entries until the stream ends, or (uncompressed) a byte that starts no header.
    fn entries<S: BufRead + Pos>(
        &mut self,
        r: &mut S,
        compressed: bool,
        out: &mut CpioList,
    ) -> Result<()> {
        while self.stopped.is_none() {
            let zeros = skip_zeros(r).map_err(read_failed)?;
            let pos = r.pos();
            let Some(&b) = r.fill_buf().map_err(read_failed)?.first() else {
                return Ok(());
            };
            // `do_reset`: padding after an entry must end on a 4-byte boundary; a compressed
            // stream that opens with zeros has no header where `do_start` reads one.
            if zeros > 0 && self.after_entry && pos % 4 != 0 {
                self.stop(pos, "broken padding");
            } else if compressed && zeros > 0 && !self.after_entry {
                self.stop(pos, "no cpio magic");
            } else if b != b'0' {
                if compressed {
                    let why = if self.after_entry {
                        "junk within compressed archive"
                    } else {
                        "no cpio magic"
                    };
                    self.stop(pos, why);
                }
                return Ok(());
            } else {
                self.entry(r, compressed, out)?;
            }
        }
        Ok(())
    }

    fn stop(&mut self, at: u64, why: &str) {
        if self.stopped.is_none() {
            let what = if self.what.is_empty() {
                format!("offset {at}")
            } else {
                format!("{}, byte {at}", self.what)
            };
            self.stopped = Some(format!("the kernel stops unpacking at {what}: {why}"));
        }
    }

    /// The stream ended inside an entry: the kernel keeps what it wrote and, for a
    /// compressed segment, says so.
    fn truncated(&mut self, at: u64, compressed: bool) {
        self.stop(
            at,
            if compressed {
                "junk at the end of compressed archive (it ends inside an entry)"
            } else {
                "truncated inside an entry (the kernel says nothing, keeping what came before)"
            },
        );
    }

    /// One entry, `do_header` to `do_copy`.
    fn entry<S: BufRead + Pos>(
        &mut self,
        r: &mut S,
        compressed: bool,
        out: &mut CpioList,
    ) -> Result<()> {
        let start = r.pos();
        let mut raw = [0u8; newc::HEADER];
        if !read_full(r, &mut raw)? {
            self.truncated(start, compressed);
            return Ok(());
        }
        let h = match newc::parse(&raw) {
            Ok(h) => h,
            Err(m) => {
                self.stop(start, m);
                return Ok(());
            }
        };
        self.ordinal += 1;
        if self.ordinal > self.limits.max_entries {
            bail!(
                "{}: more than {} cpio entries (the limit)",
                self.what,
                self.limits.max_entries
            );
        }
        self.after_entry = false;
        let next = (r.pos() + h.name_field() + h.file_size as u64).next_multiple_of(4);
        let named = h.name_len != 0 && h.name_len <= newc::PATH_MAX;
        let ty = h.file_type();
        if named && ty == newc::S_IFLNK && h.file_size <= newc::PATH_MAX {
            let mut buf = vec![0u8; (h.name_field() + h.file_size as u64) as usize];
            if !read_full(r, &mut buf)? {
                self.truncated(start, compressed);
                return Ok(());
            }
            let Some(name) = self.name(&h, &buf, start) else {
                return Ok(());
            };
            let target = cstr(&buf[h.name_field() as usize..]);
            out.push(record(&h, name, None));
            self.rootfs.clean_path(name, None);
            let _ = self
                .rootfs
                .create(name, rootfs::Node::Symlink(target.into()));
        } else if named && (ty == newc::S_IFREG || h.file_size == 0) {
            let mut buf = vec![0u8; h.name_field() as usize];
            if !read_full(r, &mut buf)? {
                self.truncated(start, compressed);
                return Ok(());
            }
            let Some(name) = self.name(&h, &buf, start) else {
                return Ok(());
            };
            let name = name.to_vec();
            if name == b"TRAILER!!!" {
                self.links.clear();
            } else {
                self.named(r, &h, &name, start, compressed, out)?;
            }
        }
        if self.stopped.is_none() {
            let left = next.saturating_sub(r.pos());
            if skip(r, left)? < left {
                self.truncated(start, compressed);
            } else {
                self.after_entry = true;
            }
        }
        Ok(())
    }

    /// The name up to its first NUL; `None` (and unpacking stopped) when the name field
    /// does not end in a NUL (`do_name`: "malformed archive").
    fn name<'b>(&mut self, h: &newc::Header, buf: &'b [u8], start: u64) -> Option<&'b [u8]> {
        if buf[h.name_len as usize - 1] != 0 {
            self.stop(start, "malformed archive (a name without its NUL)");
            return None;
        }
        Some(cstr(&buf[..h.name_len as usize]))
    }

    /// `do_name` for everything but the trailer: the path cleaned, then the file, directory or
    /// node made.
    fn named<S: BufRead + Pos>(
        &mut self,
        r: &mut S,
        h: &newc::Header,
        name: &[u8],
        start: u64,
        compressed: bool,
        out: &mut CpioList,
    ) -> Result<()> {
        let ty = h.file_type();
        let kind = match ty {
            newc::S_IFREG => Some(rootfs::Kind::File),
            newc::S_IFDIR => Some(rootfs::Kind::Dir),
            newc::S_IFLNK => Some(rootfs::Kind::Symlink),
            _ if h.is_special() => Some(rootfs::Kind::Special),
            _ => None,
        };
        self.rootfs.clean_path(name, kind);
        let mut rec = record(h, name, None);
        if ty == newc::S_IFREG {
            let ml = self.maybe_link(h, name);
            let opened = (ml >= 0)
                .then(|| self.rootfs.open_create(name, ml != 1).ok())
                .flatten();
            if let Some(id) = opened {
                rec.squashfs = self.copy(r, h, id, start, compressed)?;
                if !name.ends_with(b".sqsh") {
                    rec.squashfs = None;
                }
            }
        } else if ty == newc::S_IFDIR {
            let _ = self.rootfs.create(name, Rootfs::mkdir_node());
        } else if h.is_special() && self.maybe_link(h, name) == 0 {
            let _ = self.rootfs.create(name, rootfs::Node::Special);
        }
        out.push(rec);
        Ok(())
    }

    /// `maybe_link`: 1 when the entry became a hard link to an earlier name, -1 when that
    /// failed, 0 when it is the first of its inode (or not a link at all).
    fn maybe_link(&mut self, h: &newc::Header, name: &[u8]) -> i32 {
        if h.nlink < 2 {
            return 0;
        }
        let key = (h.ino, h.major, h.minor, h.file_type());
        match self.links.get(&key) {
            Some(old) => {
                let old = old.clone();
                self.rootfs.clean_path(name, None);
                if self.rootfs.link(&old, name).is_ok() {
                    1
                } else {
                    -1
                }
            }
            None => {
                self.links.insert(key, name.to_vec());
                0
            }
        }
    }

    /// `do_copy`: the body into the opened file, then the `070702` checksum. Returns the
    /// squashfs compressor when the body starts with a superblock.
    fn copy<S: BufRead + Pos>(
        &mut self,
        r: &mut S,
        h: &newc::Header,
        id: rootfs::Id,
        start: u64,
        compressed: bool,
    ) -> Result<Option<String>> {
        let ordinal = self.ordinal;
        let size = h.file_size as u64;
        if size > 0 {
            *self.rootfs.file_mut(id) = rootfs::File {
                size,
                body: Some(ordinal),
            };
        }
        let at_yaml = self.rootfs.lookup(EXTENSIONS_YAML.as_bytes()) == Some(id)
            && size <= crate::limits::MAX_EXTENSIONS_YAML;
        let mut keep: Option<Vec<u8>> = match self.grab.get(&ordinal) {
            Some(Grab::Memory) => Some(Vec::new()),
            _ if at_yaml => Some(Vec::new()),
            _ => None,
        };
        let mut file = match self.grab.get(&ordinal) {
            Some(Grab::File(p)) => {
                Some(fs::File::create(p).with_context(|| format!("creating {}", p.display()))?)
            }
            _ => None,
        };
        let mut head = Vec::with_capacity(22);
        let mut sum: u32 = 0;
        let mut left = size;
        while left > 0 {
            let buf = r.fill_buf().map_err(read_failed)?;
            if buf.is_empty() {
                self.truncated(start, compressed);
                return Ok(None);
            }
            let n = buf.len().min(left as usize);
            let chunk = &buf[..n];
            if h.crc {
                sum = chunk.iter().fold(sum, |s, b| s.wrapping_add(*b as u32));
            }
            if head.len() < 22 {
                let k = (22 - head.len()).min(n);
                head.extend_from_slice(&chunk[..k]);
            }
            if let Some(k) = keep.as_mut() {
                k.extend_from_slice(chunk);
            }
            if let Some(f) = file.as_mut() {
                f.write_all(chunk)
                    .with_context(|| format!("writing a file taken out of {}", self.what))?;
            }
            r.consume(n);
            left -= n as u64;
        }
        if let Some(k) = keep {
            if self.grab.contains_key(&ordinal) {
                self.grabbed.insert(ordinal, k);
            } else {
                self.yaml = Some((ordinal, k));
            }
        } else if file.is_some() {
            self.grabbed.insert(ordinal, Vec::new());
        }
        let squashfs = (head.len() >= 22 && head.starts_with(b"hsqs")).then(|| {
            let c = squashfs_compression(&head);
            self.squashfs.insert(ordinal, c.clone());
            c
        });
        if h.crc && sum != h.check {
            self.stop(start, "bad data checksum");
        }
        Ok(squashfs)
    }
}

/// Compressions the kernel may know and tdg does not read (`lib/decompress.c`).
fn unsupported(head: &[u8]) -> Option<&'static str> {
    [
        (&b"BZh"[..], "bzip2"),
        (&[0x5d, 0, 0][..], "lzma"),
        (&[0x89, 0x4c, 0x5a][..], "lzo"),
        (&[0x02, 0x21, 0x4c, 0x18][..], "lz4"),
        (&[0x1f, 0x9e][..], "gzip (old)"),
    ]
    .into_iter()
    .find(|(m, _)| head.starts_with(m))
    .map(|(_, n)| n)
}

fn record(h: &newc::Header, name: &[u8], squashfs: Option<String>) -> CpioEntry {
    CpioEntry {
        name: String::from_utf8_lossy(name).into_owned(),
        mode: format!("{:06o}", h.mode),
        uid: h.uid,
        gid: h.gid,
        size: h.file_size,
        squashfs,
    }
}

/// A C string: the bytes before the first NUL.
fn cstr(b: &[u8]) -> &[u8] {
    b.iter().position(|c| *c == 0).map_or(b, |n| &b[..n])
}

/// Fills `buf`; `false` when the stream ends first.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> Result<bool> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]).map_err(read_failed)? {
            0 => return Ok(false),
            k => n += k,
        }
    }
    Ok(true)
}

/// Skips up to `n` bytes; returns how many there were.
fn skip(r: &mut impl Read, n: u64) -> Result<u64> {
    io::copy(&mut r.take(n), &mut io::sink()).map_err(read_failed)
}

fn skip_zeros(r: &mut impl BufRead) -> io::Result<u64> {
    let mut n = 0;
    loop {
        let buf = r.fill_buf()?;
        if buf.is_empty() {
            return Ok(n);
        }
        let zeros = buf.iter().take_while(|b| **b == 0).count();
        let all = zeros == buf.len();
        r.consume(zeros);
        n += zeros as u64;
        if !all {
            return Ok(n);
        }
    }
}

/// A reader that knows how far it has come: the kernel's `this_header`.
trait Pos {
    fn pos(&self) -> u64;
}

struct Counted<R> {
    inner: R,
    pos: u64,
}

impl<R> Pos for Counted<R> {
    fn pos(&self) -> u64 {
        self.pos
    }
}

impl<R: BufRead> Read for Counted<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(out)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl<R: BufRead> BufRead for Counted<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.inner.fill_buf()
    }
    fn consume(&mut self, n: usize) {
        self.pos += n as u64;
        self.inner.consume(n);
    }
}

fn word(c: Compression) -> &'static str {
    match c {
        Compression::None => "uncompressed",
        Compression::Zstd => "zstd",
        Compression::Xz => "xz",
        Compression::Gzip => "gzip",
    }
}

/// The squashfs compressor, from the superblock's id at offset 20.
pub fn squashfs_compression(sb: &[u8]) -> String {
    if sb.len() < 22 || &sb[..4] != b"hsqs" {
        return "not squashfs".into();
    }
    match u16::from_le_bytes([sb[20], sb[21]]) {
        1 => "gzip",
        2 => "lzma",
        3 => "lzo",
        4 => "xz",
        5 => "lz4",
        6 => "zstd",
        _ => "unknown",
    }
    .into()
}

/// A counting reader that fails once more than `cap` bytes come through.
struct Capped<'a, R: ?Sized> {
    inner: &'a mut R,
    cap: u64,
    count: u64,
    exceeded: bool,
}

impl<'a, R: Read + ?Sized> Capped<'a, R> {
    fn new(inner: &'a mut R, cap: u64) -> Self {
        Capped {
            inner,
            cap,
            count: 0,
            exceeded: false,
        }
    }
}

impl<R: Read + ?Sized> Read for Capped<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        if self.count > self.cap {
            self.exceeded = true;
            return Err(io::Error::other(format!(
                "decompresses to more than {} bytes (the limit)",
                self.cap
            )));
        }
        Ok(n)
    }
}

/// The raw input: a buffered reader that knows its offset and can peek a few bytes ahead.
struct Input<R> {
    inner: R,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    pos: u64,
}

impl<R: Read> Input<R> {
    fn new(inner: R) -> Self {
        Input {
            inner,
            buf: vec![0; 1 << 20],
            start: 0,
            end: 0,
            pos: 0,
        }
    }

    /// Up to `n` bytes without consuming them (fewer only at the end of input).
    fn peek(&mut self, n: usize) -> io::Result<&[u8]> {
        if self.end - self.start < n {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
            while self.end < n {
                match self.inner.read(&mut self.buf[self.end..])? {
                    0 => break,
                    k => self.end += k,
                }
            }
        }
        Ok(&self.buf[self.start..self.end.min(self.start + n)])
    }

    fn skip_zeros(&mut self) -> io::Result<()> {
        loop {
            let buf = self.fill_buf()?;
            if buf.is_empty() {
                return Ok(());
            }
            let zeros = buf.iter().take_while(|b| **b == 0).count();
            let all = zeros == buf.len();
            self.consume(zeros);
            if !all {
                return Ok(());
            }
        }
    }
}

impl<R> Pos for Input<R> {
    fn pos(&self) -> u64 {
        self.pos
    }
}

impl<R: Read> Read for Input<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let buf = self.fill_buf()?;
        let n = buf.len().min(out.len());
        out[..n].copy_from_slice(&buf[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl<R: Read> BufRead for Input<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.start == self.end {
            self.start = 0;
            self.end = self.inner.read(&mut self.buf)?;
        }
        Ok(&self.buf[self.start..self.end])
    }
    fn consume(&mut self, n: usize) {
        self.start += n;
        self.pos += n as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imager::assemble::{compress, newc, FileSpec};

    fn names(i: &Initramfs) -> Vec<String> {
        i.extensions
            .iter()
            .flat_map(|c| &c.layers)
            .map(|l| l.metadata.name.clone())
            .collect()
    }

    #[test]
    fn demo_initramfs_has_its_segments_and_extensions() {
        let data = crate::demo::initramfs(
            "amd64",
            &crate::demo::variant_extensions("spin-tailscale"),
            Compression::Zstd,
        )
        .unwrap();
        let i = walk_bytes(&data, Limits::default()).unwrap();
        let kinds: Vec<Compression> = i.segments.iter().map(|s| s.compression).collect();
        assert_eq!(
            kinds,
            [Compression::None, Compression::Zstd, Compression::Zstd]
        );
        let names = names(&i);
        assert_eq!(
            names[names.len() - 3..],
            ["spin", "tailscale", "modules.dep"]
        );
        assert!(i.file("0.sqsh").is_some());
        let sq: Vec<_> = i
            .layer_images
            .iter()
            .map(|l| l.squashfs.as_deref())
            .collect();
        assert!(sq.iter().all(|c| *c == Some("zstd")), "{sq:?}");
        assert!(i.problems().is_empty(), "{:?}", i.problems());
        assert_eq!(i.size, data.len() as u64);
    }

    #[test]
    fn services_are_read_from_the_layers_as_the_node_reads_them() {
        let dir = tempfile::tempdir().unwrap();
        for (variant, want) in [("spin-only", 0), ("spin-tailscale", 1)] {
            let data = crate::demo::initramfs(
                "arm64",
                &crate::demo::variant_extensions(variant),
                Compression::Zstd,
            )
            .unwrap();
            let walked = walk_bytes(&data, Limits::default()).unwrap();
            let got = scan_layers(
                || Ok(&data[..]),
                &walked,
                Limits::default(),
                dir.path(),
                None,
            )
            .unwrap()
            .services;
            assert_eq!(got.len(), want, "{variant}: {got:?}");
            if let Some(t) = got.first() {
                assert_eq!(
                    (t.name.as_str(), t.extension.as_str(), t.waits_for_config),
                    ("ext-tailscale", "tailscale", true)
                );
                assert!(t.problems.is_empty(), "{:?}", t.problems);
            }
        }
    }

    #[test]
    fn every_compression_in_any_order() {
        let seg = |name: &str| newc(&[FileSpec::file(name, "x", 0o644)]).unwrap();
        let mut data = compress(&seg("a"), Compression::Xz, 6).unwrap();
        data.extend(seg("b"));
        // Padding after an uncompressed cpio ends on a 4-byte boundary (`do_reset`).
        let mut misaligned = data.clone();
        data.extend([0u8; 8]);
        misaligned.extend([0u8; 7]);
        misaligned.extend(compress(&seg("c"), Compression::Gzip, 6).unwrap());
        let stop = walk_bytes(&misaligned, Limits::default()).unwrap().stopped;
        assert!(stop.unwrap().contains("broken padding"));
        data.extend(compress(&seg("c"), Compression::Gzip, 6).unwrap());
        data.extend(compress(&seg("d"), Compression::Zstd, 3).unwrap());
        let i = walk_bytes(&data, Limits::default()).unwrap();
        let got: Vec<(Compression, String)> = i
            .segments
            .iter()
            .map(|s| (s.compression, s.entries.iter().next().unwrap().name))
            .collect();
        let got: Vec<(Compression, &str)> = got.iter().map(|(c, n)| (*c, n.as_str())).collect();
        assert_eq!(
            got,
            [
                (Compression::Xz, "a"),
                (Compression::None, "b"),
                (Compression::Gzip, "c"),
                (Compression::Zstd, "d")
            ]
        );
    }

    #[test]
    fn truncated_and_corrupt_inputs_stop_where_the_kernel_stops() {
        let data = crate::demo::initramfs(
            "arm64",
            &crate::demo::variant_extensions("spin-only"),
            Compression::Zstd,
        )
        .unwrap();
        let i = walk_bytes(&data[..data.len() - 100], Limits::default()).unwrap();
        let stop = i.stopped.unwrap();
        assert!(
            stop.contains("zstd segment at offset") && stop.contains("decompressor failed"),
            "{stop}"
        );
        let mut bad = data.clone();
        bad[4] ^= 0xFF; // the frame header descriptor
        let stop = walk_bytes(&bad, Limits::default())
            .unwrap()
            .stopped
            .unwrap();
        assert!(stop.contains("zstd segment at offset 0"), "{stop}");
        let stop = walk_bytes(b"garbage!", Limits::default())
            .unwrap()
            .stopped
            .unwrap();
        assert!(
            stop.contains("invalid magic at start of compressed archive"),
            "{stop}"
        );
        // `..` at the root stays at the root, as the kernel's path walk has it.
        let up = newc(&[FileSpec::file("../x", "x", 0o644)]).unwrap();
        assert!(walk_bytes(&up, Limits::default())
            .unwrap()
            .file("x")
            .is_some());
    }

    /// One newc entry with every field chosen: (magic, ino, mode, nlink, name, body, check).
    fn raw(
        magic: &str,
        ino: u32,
        mode: u32,
        nlink: u32,
        name: &str,
        body: &[u8],
        check: u32,
    ) -> Vec<u8> {
        let h = newc::Header {
            crc: magic == "070702",
            ino,
            mode,
            nlink,
            check,
            ..Default::default()
        };
        newc::write_entry(&h, name.as_bytes(), body)
    }

    fn yaml(names: &[&str]) -> Vec<u8> {
        let mut y = "layers:\n".to_string();
        for n in names {
            y += &format!(
                "  - image: {n}.sqsh\n    metadata:\n      name: {n}\n      version: v1\n"
            );
        }
        y.into_bytes()
    }

    fn extensions_seen(i: &Initramfs) -> Vec<String> {
        names(i)
    }

    const REG: u32 = 0o100644;

    #[test]
    fn hard_links_write_into_the_shared_inode_in_either_order() {
        let spin = yaml(&["spin"]);
        let both = yaml(&["spin", "tailscale"]);
        // The later entry of the same inode carries the data the kernel writes last.
        let mut a = raw("070701", 101, REG, 2, "extensions.yaml", &spin, 0);
        a.extend(raw("070701", 101, REG, 2, "zz", &both, 0));
        a.extend(raw("070701", 0, 0, 1, "TRAILER!!!", b"", 0));
        let i = walk_bytes(&a, Limits::default()).unwrap();
        assert_eq!(extensions_seen(&i), ["spin", "tailscale"]);
        // The data first under another name, then `extensions.yaml` as an empty link to it:
        // read back in a second pass.
        let mut b = raw("070701", 7, REG, 2, "zz", &both, 0);
        b.extend(raw("070701", 7, REG, 2, "extensions.yaml", b"", 0));
        let i = walk_bytes(&b, Limits::default()).unwrap();
        assert_eq!(extensions_seen(&i), ["spin", "tailscale"]);
        // A trailer ends the link table: the same inode number later is a new file.
        let mut c = raw("070701", 7, REG, 2, "zz", &both, 0);
        c.extend(raw("070701", 0, 0, 1, "TRAILER!!!", b"", 0));
        c.extend(raw("070701", 7, REG, 2, "extensions.yaml", &spin, 0));
        let i = walk_bytes(&c, Limits::default()).unwrap();
        assert_eq!(extensions_seen(&i), ["spin"]);
    }

    #[test]
    fn writes_go_through_a_symlinked_directory() {
        let mut a = raw("070701", 1, REG, 1, "extensions.yaml", &yaml(&["spin"]), 0);
        a.extend(raw("070701", 2, 0o120777, 1, "d", b".", 0));
        a.extend(raw(
            "070701",
            3,
            REG,
            1,
            "d/extensions.yaml",
            &yaml(&["spin", "tailscale"]),
            0,
        ));
        let i = walk_bytes(&a, Limits::default()).unwrap();
        assert_eq!(extensions_seen(&i), ["spin", "tailscale"]);
    }

    #[test]
    fn an_oversized_extensions_yaml_is_an_error_naming_the_limit() {
        let mut big = b"# padding\n".repeat(110_000);
        big.extend(yaml(&["spin", "tailscale"]));
        let a = raw("070701", 1, REG, 1, "extensions.yaml", &big, 0);
        let err = walk_bytes(&a, Limits::default()).unwrap_err().to_string();
        assert!(err.contains("over the 1048576 bytes tdg reads"), "{err}");
    }

    #[test]
    fn a_bad_crc_checksum_stops_the_unpack_after_that_file() {
        let spin = yaml(&["spin"]);
        let both = yaml(&["spin", "tailscale"]);
        let sum = newc::checksum;
        let mut a = raw("070702", 1, REG, 1, "extensions.yaml", &spin, sum(&spin));
        a.extend(raw(
            "070702",
            2,
            REG,
            1,
            "extensions.yaml",
            &both,
            sum(&both) + 1,
        ));
        a.extend(raw("070702", 3, REG, 1, "later", b"x", sum(b"x")));
        let i = walk_bytes(&a, Limits::default()).unwrap();
        // `do_copy` writes the body, then compares the sums.
        assert_eq!(extensions_seen(&i), ["spin", "tailscale"]);
        assert!(i.stopped.as_deref().unwrap().contains("bad data checksum"));
        assert!(i.file("later").is_none(), "nothing after the bad entry");
        let mut good = raw("070702", 1, REG, 1, "extensions.yaml", &spin, sum(&spin));
        good.extend(raw("070702", 3, REG, 1, "later", b"x", sum(b"x")));
        let i = walk_bytes(&good, Limits::default()).unwrap();
        assert!(i.stopped.is_none() && i.file("later").is_some());
    }

    #[test]
    fn a_layer_extensions_yaml_names_must_be_a_squashfs() {
        let mut a = raw(
            "070701",
            1,
            REG,
            1,
            "extensions.yaml",
            &yaml(&["spin", "zfs"]),
            0,
        );
        a.extend(raw(
            "070701",
            2,
            REG,
            1,
            "spin.sqsh",
            b"not a squashfs at all, no",
            0,
        ));
        let i = walk_bytes(&a, Limits::default()).unwrap();
        let p = i.problems();
        assert_eq!(
            p,
            [
                "extensions.yaml names spin.sqsh, which is not a squashfs",
                "extensions.yaml names zfs.sqsh, which is not in the initramfs"
            ]
        );
    }

    #[test]
    fn names_without_their_nul_and_broken_padding_stop_the_unpack() {
        let mut a = raw("070701", 1, REG, 1, "a", b"x", 0);
        let mut bad = raw("070701", 2, REG, 1, "bb", b"", 0);
        bad[110 + 2] = b'!'; // the NUL after the name
        a.extend(bad);
        let i = walk_bytes(&a, Limits::default()).unwrap();
        assert!(i.stopped.unwrap().contains("malformed archive"));
        let mut a = raw("070701", 1, REG, 1, "a", b"x", 0);
        a.extend([0, 0]);
        a.extend(raw("070701", 2, REG, 1, "b", b"y", 0));
        let i = walk_bytes(&a, Limits::default()).unwrap();
        assert!(i.stopped.as_deref().unwrap().contains("broken padding"));
        assert!(i.file("a").is_some() && i.file("b").is_none());
    }

    #[test]
    fn limits_stop_bombs() {
        let big = newc(&[FileSpec::file("zeros", vec![0u8; 8 << 20], 0o644)]).unwrap();
        let bomb = compress(&big, Compression::Zstd, 3).unwrap();
        assert!(bomb.len() < 4096);
        let err = walk_bytes(
            &bomb,
            Limits {
                max_segment_bytes: 1 << 20,
                max_entries: 10,
            },
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("more than 1048576 bytes (the limit)"), "{err}");
        let many: Vec<FileSpec> = (0..20)
            .map(|i| FileSpec::file(&format!("f{i}"), "", 0o644))
            .collect();
        let err = walk_bytes(
            &newc(&many).unwrap(),
            Limits {
                max_segment_bytes: 1 << 30,
                max_entries: 10,
            },
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("more than 10 cpio entries"), "{err}");
    }
}
