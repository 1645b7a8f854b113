//! Walking an initramfs: concatenated segments, each an uncompressed newc cpio or a zstd, xz or
//! gzip compressed one, in any order and number, with NUL padding between them (as the kernel
//! reads them). Streams throughout: only `extensions.yaml` and squashfs superblocks are kept.
//! Decompressed bytes per segment and entries are capped, so a bomb ends in an error.

use std::io::{self, BufRead, Read};

use anyhow::{anyhow, bail, Context, Result};
use serde::Serialize;

use super::extensions::{self, ExtensionsConfig};
use super::newc;

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
    pub segments: Vec<Segment>,
    /// `extensions.yaml`, from the segment that holds it.
    pub extensions: Option<ExtensionsConfig>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Segment {
    pub offset: u64,
    /// Bytes of the initramfs this segment takes (compressed size for compressed ones).
    pub size: u64,
    pub compression: Compression,
    pub uncompressed_size: u64,
    pub entries: Vec<CpioEntry>,
}

#[derive(Clone, Debug, Serialize)]
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
    pub fn entry(&self, name: &str) -> Option<&CpioEntry> {
        self.segments
            .iter()
            .flat_map(|s| &s.entries)
            .find(|e| e.name == name)
    }
}

/// Walks an initramfs read from `r` (`size` bytes, for messages and the summary).
pub fn walk<R: Read>(r: R, limits: Limits) -> Result<Initramfs> {
    walk_inner(r, limits, None)
}

/// Writes the entries named in `names` (regular files) into `dir`, one file each, as the
/// kernel would leave them: a later entry of the same name replaces an earlier one. Returns
/// where each found name was written.
pub fn extract<R: Read>(
    r: R,
    limits: Limits,
    names: &[String],
    dir: &std::path::Path,
) -> Result<std::collections::HashMap<String, std::path::PathBuf>> {
    let mut found = std::collections::HashMap::new();
    let mut x = Extract {
        names,
        dir,
        found: &mut found,
    };
    walk_inner(r, limits, Some(&mut x))?;
    Ok(found)
}

struct Extract<'a> {
    names: &'a [String],
    dir: &'a std::path::Path,
    found: &'a mut std::collections::HashMap<String, std::path::PathBuf>,
}

fn walk_inner<R: Read>(
    r: R,
    limits: Limits,
    mut extract: Option<&mut Extract<'_>>,
) -> Result<Initramfs> {
    let mut input = Input::new(r);
    let mut segments = Vec::new();
    let mut extensions = None;
    let mut entries_seen = 0u64;
    loop {
        input.skip_zeros()?;
        let offset = input.pos;
        let head = input.peek(6)?;
        if head.is_empty() {
            break;
        }
        let compression = if head.starts_with(NEWC_MAGIC) || head.starts_with(NEWC_CRC_MAGIC) {
            Compression::None
        } else if head.starts_with(ZSTD_MAGIC) {
            Compression::Zstd
        } else if head.starts_with(XZ_MAGIC) {
            Compression::Xz
        } else if head.starts_with(GZIP_MAGIC) {
            Compression::Gzip
        } else {
            bail!("unrecognised data at offset {offset}: {:02x?} is neither newc cpio nor zstd, xz or gzip", &head[..head.len().min(6)]);
        };
        let what = format!("{} segment at offset {offset}", word(compression));
        let mut seg = Segment {
            offset,
            size: 0,
            compression,
            uncompressed_size: 0,
            entries: Vec::new(),
        };
        let mut state = Walk {
            limits,
            entries_seen: &mut entries_seen,
            extensions: &mut extensions,
            what: &what,
            extract: extract.as_deref_mut(),
        };
        match compression {
            Compression::None => {
                let mut capped = Capped::new(&mut input, limits.max_segment_bytes);
                state.archive(&mut capped, &mut seg.entries)?;
                seg.uncompressed_size = capped.count;
            }
            Compression::Zstd => {
                let mut d = zstd::stream::read::Decoder::with_buffer(&mut input)
                    .with_context(|| what.clone())?
                    .single_frame();
                seg.uncompressed_size = state.archives(&mut d, &mut seg.entries)?;
            }
            Compression::Xz => {
                let mut d = liblzma::bufread::XzDecoder::new(&mut input);
                seg.uncompressed_size = state.archives(&mut d, &mut seg.entries)?;
            }
            Compression::Gzip => {
                let mut d = flate2::bufread::GzDecoder::new(&mut input);
                seg.uncompressed_size = state.archives(&mut d, &mut seg.entries)?;
            }
        }
        seg.size = input.pos - offset;
        segments.push(seg);
    }
    if segments.is_empty() {
        bail!("empty: no cpio segments");
    }
    Ok(Initramfs {
        size: input.pos,
        segments,
        extensions,
    })
}

fn word(c: Compression) -> &'static str {
    match c {
        Compression::None => "uncompressed",
        Compression::Zstd => "zstd",
        Compression::Xz => "xz",
        Compression::Gzip => "gzip",
    }
}

struct Walk<'a, 'x> {
    limits: Limits,
    entries_seen: &'a mut u64,
    extensions: &'a mut Option<ExtensionsConfig>,
    what: &'a str,
    extract: Option<&'a mut Extract<'x>>,
}

impl Walk<'_, '_> {
    /// One or more cpio archives in a decompressed stream, then its padding; returns the
    /// decompressed size.
    fn archives(&mut self, d: &mut dyn Read, out: &mut Vec<CpioEntry>) -> Result<u64> {
        let mut capped = Capped::new(d, self.limits.max_segment_bytes);
        let mut buffered = io::BufReader::with_capacity(64 << 10, &mut capped);
        loop {
            self.archive(&mut buffered, out)?;
            // After TRAILER!!! comes padding, or another archive in the same stream.
            let more = loop {
                let buf = buffered.fill_buf().map_err(|e| self.io(e))?;
                if buf.is_empty() {
                    break false;
                }
                match buf.iter().position(|b| *b != 0) {
                    Some(i) => {
                        buffered.consume(i);
                        break true;
                    }
                    None => {
                        let n = buf.len();
                        buffered.consume(n);
                    }
                }
            };
            if !more {
                break;
            }
        }
        drop(buffered);
        Ok(capped.count)
    }

    /// One newc archive, up to and including its `TRAILER!!!`.
    fn archive<R: Read>(&mut self, r: &mut R, out: &mut Vec<CpioEntry>) -> Result<()> {
        loop {
            let h = newc::read_header(&mut *r).map_err(|e| self.io(e))?;
            if h.is_trailer() {
                return self.skip(r, h.file_size as u64 + h.body_pad as u64);
            }
            *self.entries_seen += 1;
            if *self.entries_seen > self.limits.max_entries {
                bail!(
                    "{}: more than {} cpio entries (the limit)",
                    self.what,
                    self.limits.max_entries
                );
            }
            // The kernel skips an entry whose name is empty or over PATH_MAX.
            let Some(raw) = &h.name else {
                self.skip(r, h.file_size as u64 + h.body_pad as u64)?;
                continue;
            };
            let name = clean_name(raw).map_err(|m| anyhow!("{}: {m}", self.what))?;
            let mut rec = CpioEntry {
                name: name.clone(),
                mode: format!("{:06o}", h.mode),
                uid: h.uid,
                gid: h.gid,
                size: h.file_size,
                squashfs: None,
            };
            let mut body = (&mut *r).take(h.file_size as u64);
            if name == "extensions.yaml" {
                let mut text = String::new();
                (&mut body)
                    .take(crate::limits::MAX_EXTENSIONS_YAML)
                    .read_to_string(&mut text)
                    .map_err(|e| self.io(e))?;
                *self.extensions = Some(
                    extensions::parse_config(&text).map_err(|m| anyhow!("{}: {m}", self.what))?,
                );
            } else if let Some(x) = self
                .extract
                .as_deref_mut()
                .filter(|x| x.names.contains(&name) && h.mode & 0o170000 == 0o100000)
            {
                let dest = x
                    .dir
                    .join(format!("{}.{}", x.found.len(), name.replace('/', "_")));
                let mut f = std::fs::File::create(&dest)
                    .with_context(|| format!("creating {}", dest.display()))?;
                let what = self.what;
                io::copy(&mut body, &mut f).map_err(|e| io_error(what, e))?;
                x.found.insert(name.clone(), dest);
            } else if name.ends_with(".sqsh") {
                let mut sb = [0u8; 96];
                let n = read_up_to(&mut body, &mut sb).map_err(|e| self.io(e))?;
                rec.squashfs = Some(squashfs_compression(&sb[..n]));
            }
            let rest = body.limit();
            self.skip(r, rest + h.body_pad as u64)?;
            out.push(rec);
        }
    }

    /// Skips `n` bytes of `r`; fewer is a truncated archive.
    fn skip<R: Read>(&self, r: &mut R, n: u64) -> Result<()> {
        let got = io::copy(&mut r.take(n), &mut io::sink()).map_err(|e| self.io(e))?;
        if got < n {
            return Err(self.io(io::ErrorKind::UnexpectedEof.into()));
        }
        Ok(())
    }

    fn io(&self, e: io::Error) -> anyhow::Error {
        io_error(self.what, e)
    }
}

fn io_error(what: &str, e: io::Error) -> anyhow::Error {
    let reason = match e.kind() {
        io::ErrorKind::UnexpectedEof => "truncated".to_string(),
        _ => e.to_string(),
    };
    anyhow!("{what}: {reason}")
}

fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
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

/// cpio names are relative to the root; `..` would escape it.
fn clean_name(raw: &str) -> Result<String, String> {
    let mut parts = Vec::new();
    for c in raw.split('/') {
        match c {
            "" | "." => {}
            ".." => return Err(format!("cpio entry '{raw}' escapes the root")),
            c => parts.push(c),
        }
    }
    Ok(parts.join("/"))
}

/// A counting reader that fails once more than `cap` bytes come through.
struct Capped<'a, R: ?Sized> {
    inner: &'a mut R,
    cap: u64,
    count: u64,
}

impl<'a, R: Read + ?Sized> Capped<'a, R> {
    fn new(inner: &'a mut R, cap: u64) -> Self {
        Capped {
            inner,
            cap,
            count: 0,
        }
    }
}

impl<R: Read + ?Sized> Read for Capped<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        if self.count > self.cap {
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
    use crate::talos::assemble::{compress, newc, FileSpec};

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
        let i = walk(&data[..], Limits::default()).unwrap();
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
        assert_eq!(i.entry("0.sqsh").unwrap().squashfs.as_deref(), Some("zstd"));
        assert_eq!(i.size, data.len() as u64);
    }

    #[test]
    fn every_compression_in_any_order() {
        let seg = |name: &str| newc(&[FileSpec::file(name, "x", 0o644)]).unwrap();
        let mut data = compress(&seg("a"), Compression::Xz, 6).unwrap();
        data.extend(seg("b"));
        data.extend([0u8; 7]);
        data.extend(compress(&seg("c"), Compression::Gzip, 6).unwrap());
        data.extend(compress(&seg("d"), Compression::Zstd, 3).unwrap());
        let i = walk(&data[..], Limits::default()).unwrap();
        let got: Vec<(Compression, &str)> = i
            .segments
            .iter()
            .map(|s| (s.compression, s.entries[0].name.as_str()))
            .collect();
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
    fn truncated_corrupt_and_hostile_inputs_fail_clearly() {
        let data = crate::demo::initramfs(
            "arm64",
            &crate::demo::variant_extensions("spin-only"),
            Compression::Zstd,
        )
        .unwrap();
        let err = walk(&data[..data.len() - 100], Limits::default())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("zstd segment at offset")
                && (err.contains("truncated") || err.contains("incomplete")),
            "{err}"
        );
        let mut bad = data.clone();
        let mid = bad.len() / 3;
        bad[mid..mid + 64].fill(0xAA);
        let err = walk(&bad[..], Limits::default()).unwrap_err().to_string();
        assert!(err.contains("zstd segment at offset 0"), "{err}");
        let mut bad = data.clone();
        bad[4] ^= 0xFF; // the frame header descriptor
        let err = walk(&bad[..], Limits::default()).unwrap_err().to_string();
        assert!(err.contains("zstd segment at offset 0"), "{err}");
        let evil = newc(&[FileSpec::file("../x", "x", 0o644)]).unwrap();
        let err = walk(&evil[..], Limits::default()).unwrap_err().to_string();
        assert!(err.contains("cpio entry '../x' escapes the root"), "{err}");
        let err = walk(&b"garbage!"[..], Limits::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("unrecognised data at offset 0"), "{err}");
    }

    #[test]
    fn limits_stop_bombs() {
        let big = newc(&[FileSpec::file("zeros", vec![0u8; 8 << 20], 0o644)]).unwrap();
        let bomb = compress(&big, Compression::Zstd, 3).unwrap();
        assert!(bomb.len() < 4096);
        let err = walk(
            &bomb[..],
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
        let err = walk(
            &newc(&many).unwrap()[..],
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
