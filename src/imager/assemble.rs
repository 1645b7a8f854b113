//! Writing Talos boot-asset pieces the way the imager does (siderolabs/talos
//! `pkg/imager/extensions/rebuild.go`): newc cpio archives with uid/gid 0 and a fixed mtime,
//! squashfs images of extension rootfs (all root-owned), `extensions.yaml`, firmware moved out
//! of the extensions into the cpio, and compressed segments appended to a base initramfs.
//! Content streams from files where it lives in files. The demo, the fixtures and `tdg build`
//! use it.

use std::fs::File;
use std::io::{self, Cursor, Read, Seek, Write};
use std::path::PathBuf;

use anyhow::{bail, Context, Result};

use crate::talos::extensions::Metadata;
use crate::talos::initramfs::Compression;

/// One entry for a cpio archive or a squashfs.
#[derive(Clone, Debug)]
pub struct FileSpec {
    pub path: String,
    pub mode: u32,
    pub content: Content,
}

#[derive(Clone, Debug)]
pub enum Content {
    Dir,
    Bytes(Vec<u8>),
    /// A file on disk, read when the archive is written.
    Path(PathBuf),
    Symlink(String),
}

impl FileSpec {
    pub fn file(path: &str, data: impl Into<Vec<u8>>, mode: u32) -> Self {
        FileSpec {
            path: path.into(),
            mode,
            content: Content::Bytes(data.into()),
        }
    }
    pub fn from_path(path: &str, source: PathBuf, mode: u32) -> Self {
        FileSpec {
            path: path.into(),
            mode,
            content: Content::Path(source),
        }
    }
    pub fn dir(path: &str) -> Self {
        FileSpec {
            path: path.into(),
            mode: 0o755,
            content: Content::Dir,
        }
    }
    pub fn symlink(path: &str, target: &str) -> Self {
        FileSpec {
            path: path.into(),
            mode: 0o777,
            content: Content::Symlink(target.into()),
        }
    }

    fn size(&self) -> Result<u64> {
        Ok(match &self.content {
            Content::Dir => 0,
            Content::Bytes(b) => b.len() as u64,
            Content::Path(p) => std::fs::metadata(p)
                .with_context(|| format!("reading {}", p.display()))?
                .len(),
            Content::Symlink(t) => t.len() as u64,
        })
    }

    fn reader(&self) -> Result<Box<dyn Read + '_>> {
        Ok(match &self.content {
            Content::Dir => Box::new(io::empty()),
            Content::Bytes(b) => Box::new(&b[..]),
            Content::Path(p) => {
                Box::new(File::open(p).with_context(|| format!("opening {}", p.display()))?)
            }
            Content::Symlink(t) => Box::new(t.as_bytes()),
        })
    }
}

/// A newc archive to `out`, entries in the order given, inode numbers from 1, uid/gid 0,
/// mtime 0 (`cpio --reproducible -R +0:+0`), then the trailer.
pub fn write_newc<W: Write>(mut out: W, files: &[FileSpec]) -> Result<W> {
    for (i, f) in files.iter().enumerate() {
        let kind = match f.content {
            Content::Dir => cpio::newc::ModeFileType::Directory,
            Content::Symlink(_) => cpio::newc::ModeFileType::Symlink,
            _ => cpio::newc::ModeFileType::Regular,
        };
        let size = f.size()?;
        if size > u32::MAX as u64 {
            bail!("{} is {size} bytes, more than newc can hold", f.path);
        }
        let nlink = if matches!(f.content, Content::Dir) {
            2
        } else {
            1
        };
        let b = cpio::newc::Builder::new(&f.path)
            .ino(i as u32 + 1)
            .mode(f.mode & 0o7777)
            .set_mode_file_type(kind)
            .uid(0)
            .gid(0)
            .mtime(0)
            .nlink(nlink);
        let mut w = b.write(&mut out, size as u32);
        io::copy(&mut f.reader()?, &mut w)
            .with_context(|| format!("writing {} into the cpio", f.path))?;
        w.finish()?;
    }
    Ok(cpio::newc::trailer(out)?)
}

pub fn newc(files: &[FileSpec]) -> Result<Vec<u8>> {
    write_newc(Vec::new(), files)
}

/// A compressing writer: zstd at `level` with a content checksum (as the zstd CLI writes by
/// default, so a corrupted frame fails instead of decoding to garbage), xz with a crc32 check
/// (what the kernel's unxz reads), gzip, or none.
pub fn compressor<'a, W: Write + 'a>(
    out: W,
    c: Compression,
    level: i32,
) -> Result<Box<dyn FinishWrite<W> + 'a>> {
    Ok(match c {
        Compression::None => Box::new(Plain(out)),
        Compression::Zstd => {
            let mut w = zstd::stream::write::Encoder::new(out, level)?;
            w.include_checksum(true)?;
            Box::new(w)
        }
        Compression::Xz => {
            let stream =
                liblzma::stream::Stream::new_easy_encoder(6, liblzma::stream::Check::Crc32)?;
            Box::new(liblzma::write::XzEncoder::new_stream(out, stream))
        }
        Compression::Gzip => Box::new(flate2::write::GzEncoder::new(
            out,
            flate2::Compression::default(),
        )),
    })
}

/// A writer that must be finished to flush its last frame.
pub trait FinishWrite<W>: Write {
    fn finish_boxed(self: Box<Self>) -> io::Result<W>;
}

struct Plain<W>(W);

impl<W: Write> Write for Plain<W> {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.0.write(b)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

impl<W: Write> FinishWrite<W> for Plain<W> {
    fn finish_boxed(self: Box<Self>) -> io::Result<W> {
        Ok(self.0)
    }
}

impl<W: Write> FinishWrite<W> for zstd::stream::write::Encoder<'_, W> {
    fn finish_boxed(self: Box<Self>) -> io::Result<W> {
        (*self).finish()
    }
}

impl<W: Write> FinishWrite<W> for liblzma::write::XzEncoder<W> {
    fn finish_boxed(self: Box<Self>) -> io::Result<W> {
        (*self).finish()
    }
}

impl<W: Write> FinishWrite<W> for flate2::write::GzEncoder<W> {
    fn finish_boxed(self: Box<Self>) -> io::Result<W> {
        (*self).finish()
    }
}

pub fn compress(data: &[u8], c: Compression, level: i32) -> Result<Vec<u8>> {
    let mut w = compressor(Vec::new(), c, level)?;
    w.write_all(data)?;
    Ok(w.finish_boxed()?)
}

/// A squashfs of `files` written to `out`: every entry owned by root, mtime 0, compressed
/// with zstd or xz (`mksquashfs -all-root`).
pub fn write_squashfs<W: Write + Seek>(out: W, files: &[FileSpec], c: Compression) -> Result<()> {
    use backhand::compression::Compressor;
    use backhand::{FilesystemCompressor, FilesystemWriter, NodeHeader};
    let mut fs = FilesystemWriter::default();
    let compressor = match c {
        Compression::Xz => Compressor::Xz,
        _ => Compressor::Zstd,
    };
    fs.set_compressor(FilesystemCompressor::new(compressor, None).context("squashfs compressor")?);
    fs.set_time(0);
    fs.set_root_mode(0o755);
    fs.set_root_uid(0);
    fs.set_root_gid(0);
    for f in files {
        let header = NodeHeader::new((f.mode & 0o7777) as u16, 0, 0, 0);
        // backhand's errors carry no text without its error-strings feature: say which entry.
        match &f.content {
            Content::Dir => fs.push_dir(&f.path, header),
            Content::Bytes(d) => fs.push_file(Cursor::new(d.clone()), &f.path, header),
            Content::Path(p) => fs.push_file_from_path(p.clone(), &f.path, header),
            Content::Symlink(t) => fs.push_symlink(t, &f.path, header),
        }
        .with_context(|| {
            format!(
                "adding /{} to a squashfs (is its directory listed first?)",
                f.path
            )
        })?;
    }
    let mut out = out;
    fs.write(&mut out).context("writing squashfs")?;
    Ok(())
}

pub fn squashfs(files: &[FileSpec], c: Compression) -> Result<Vec<u8>> {
    let mut out = Cursor::new(Vec::new());
    write_squashfs(&mut out, files, c)?;
    Ok(out.into_inner())
}

/// One extension to bake in: its metadata and its rootfs (paths relative to `/rootfs`).
#[derive(Clone, Debug)]
pub struct ExtensionInput {
    pub metadata: Metadata,
    pub rootfs: Vec<FileSpec>,
}
