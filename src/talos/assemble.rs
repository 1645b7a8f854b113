//! Writing Talos boot-asset pieces the way the imager does (siderolabs/talos
//! `pkg/imager/extensions/rebuild.go`): newc cpio archives with uid/gid 0 and a fixed mtime,
//! squashfs images of extension rootfs (all root-owned), `extensions.yaml`, and compressed
//! segments appended to a base initramfs. The demo, the test fixtures and `tdg build` use it.

use std::io::{Cursor, Write};

use anyhow::{Context, Result};

use super::extensions::{ExtensionsConfig, Layer, Metadata};
use super::initramfs::Compression;

/// One file or directory for a cpio archive or a squashfs.
#[derive(Clone, Debug)]
pub struct FileSpec {
    pub path: String,
    pub mode: u32,
    /// `None` for a directory.
    pub data: Option<Vec<u8>>,
}

impl FileSpec {
    pub fn file(path: &str, data: impl Into<Vec<u8>>, mode: u32) -> Self {
        FileSpec {
            path: path.into(),
            mode,
            data: Some(data.into()),
        }
    }
    pub fn dir(path: &str) -> Self {
        FileSpec {
            path: path.into(),
            mode: 0o755,
            data: None,
        }
    }
}

/// A newc archive, entries in the order given, inode numbers from 1, uid/gid 0, mtime 0
/// (`cpio --reproducible -R +0:+0`).
pub fn newc(files: &[FileSpec]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    for (i, f) in files.iter().enumerate() {
        let (kind, size) = match &f.data {
            Some(d) => (cpio::newc::ModeFileType::Regular, d.len()),
            None => (cpio::newc::ModeFileType::Directory, 0),
        };
        let b = cpio::newc::Builder::new(&f.path)
            .ino(i as u32 + 1)
            .mode(f.mode)
            .set_mode_file_type(kind)
            .uid(0)
            .gid(0)
            .mtime(0)
            .nlink(if f.data.is_some() { 1 } else { 2 });
        let mut w = b.write(&mut out, size as u32);
        if let Some(d) = &f.data {
            w.write_all(d)?;
        }
        w.finish()?;
    }
    cpio::newc::trailer(&mut out)?;
    Ok(out)
}

/// Compresses a segment: zstd at `level` (the imager uses 18), xz with a crc32 check (as the
/// kernel's unxz needs), or gzip.
pub fn compress(data: &[u8], c: Compression, level: i32) -> Result<Vec<u8>> {
    Ok(match c {
        Compression::None => data.to_vec(),
        Compression::Zstd => {
            // With a content checksum, as the zstd CLI writes by default, so a corrupted frame
            // fails to decode instead of decoding to garbage.
            let mut w = zstd::stream::write::Encoder::new(Vec::new(), level)?;
            w.include_checksum(true)?;
            w.write_all(data)?;
            w.finish()?
        }
        Compression::Xz => {
            let stream =
                liblzma::stream::Stream::new_easy_encoder(6, liblzma::stream::Check::Crc32)?;
            let mut w = liblzma::write::XzEncoder::new_stream(Vec::new(), stream);
            w.write_all(data)?;
            w.finish()?
        }
        Compression::Gzip => {
            let mut w = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            w.write_all(data)?;
            w.finish()?
        }
    })
}

/// A squashfs of `files`, every entry owned by root, mtime 0, compressed with zstd or xz.
pub fn squashfs(files: &[FileSpec], c: Compression) -> Result<Vec<u8>> {
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
        let header = NodeHeader::new(f.mode as u16, 0, 0, 0);
        match &f.data {
            Some(d) => fs.push_file(Cursor::new(d.clone()), &f.path, header)?,
            None => fs.push_dir(&f.path, header)?,
        }
    }
    let mut out = Cursor::new(Vec::new());
    fs.write(&mut out).context("writing squashfs")?;
    Ok(out.into_inner())
}

/// One extension to bake in: its metadata and its rootfs.
#[derive(Clone, Debug)]
pub struct ExtensionInput {
    pub metadata: Metadata,
    pub rootfs: Vec<FileSpec>,
}

/// The appended segment: `extensions.yaml` and `<i>.sqsh` per extension, as a compressed cpio.
pub fn extensions_segment(exts: &[ExtensionInput], c: Compression) -> Result<Vec<u8>> {
    let config = ExtensionsConfig {
        layers: exts
            .iter()
            .enumerate()
            .map(|(i, e)| Layer {
                image: format!("{i}.sqsh"),
                metadata: e.metadata.clone(),
            })
            .collect(),
    };
    let yaml = serde_saphyr::to_string(&config).context("serialising extensions.yaml")?;
    let mut files = vec![FileSpec::file("extensions.yaml", yaml, 0o644)];
    for (i, e) in exts.iter().enumerate() {
        files.push(FileSpec::file(
            &format!("{i}.sqsh"),
            squashfs(&e.rootfs, c)?,
            0o444,
        ));
    }
    compress(&newc(&files)?, c, 18)
}
