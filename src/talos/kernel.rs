//! Which kernel a file is, from its bytes: an arm64 `Image` (`ARM\x64` at 0x38), an x86
//! bzImage (`HdrS` at 0x202), an EFI zboot image (Talos's arm64 `vmlinuz` since 1.8), a
//! PE/EFI-stub kernel (COFF machine 0xAA64 / 0x8664), or a UKI (a PE with `.linux`, `.initrd`,
//! `.cmdline`, `.osrel`, `.uname` sections, whose embedded kernel is sniffed in turn).
//!
//! A zboot image is read as Linux lays it out (`drivers/firmware/efi/libstub/zboot-header.S`)
//! and as Talos reads it (`internal/pkg/zboot/zboot.go`): `MZ`, `zimg` at 4, the payload's
//! offset and size as little-endian u32 at 8 and 12, the compression's name at 24. The payload
//! is decompressed (zstd or gzip, bounded) and the `Image` inside must be a whole arm64 Image.

use std::io::{Read, Seek, SeekFrom};

use anyhow::{bail, Context, Result};
use serde::Serialize;

pub const ARM64_MAGIC_OFFSET: usize = 0x38;
pub const ARM64_MAGIC: &[u8; 4] = b"ARM\x64";
pub const BZIMAGE_MAGIC_OFFSET: usize = 0x202;
pub const BZIMAGE_MAGIC: &[u8; 4] = b"HdrS";
pub const MACHINE_ARM64: u16 = 0xAA64;
pub const MACHINE_AMD64: u16 = 0x8664;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// An arm64 `Image`, with or without the EFI stub.
    Arm64Image,
    /// An x86 bzImage, with or without the EFI stub.
    BzImage,
    /// A PE image whose machine says the arch, and no Linux header tdg knows.
    Pe,
    Uki,
    /// An EFI zboot image: a PE decompressor carrying a compressed arm64 `Image`.
    Zboot,
}

impl Format {
    pub fn describe(&self) -> &'static str {
        match self {
            Format::Arm64Image => "arm64 Image",
            Format::BzImage => "bzImage",
            Format::Pe => "PE image",
            Format::Uki => "UKI",
            Format::Zboot => "EFI zboot image",
        }
    }
}

/// What a zboot image's header says and what its payload held.
#[derive(Clone, Debug, Serialize)]
pub struct ZbootInfo {
    /// The compression's name as the header spells it (`zstd22`, `gzip`).
    pub compression: String,
    pub payload_offset: u64,
    pub payload_size: u64,
    /// The size of the `Image` the payload decompresses to.
    pub image_size: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct KernelInfo {
    pub format: Format,
    /// `arm64`, `amd64`, or `i386`, in Go/OCI spelling.
    pub arch: String,
    /// The PE machine field, when the file is a PE (EFI stub or UKI).
    pub pe_machine: Option<String>,
    pub size: u64,
    /// For a UKI: what its sections hold.
    pub uki: Option<UkiInfo>,
    /// For an EFI zboot image: its header and payload.
    pub zboot: Option<ZbootInfo>,
    /// The kernel release its banner names (`Linux version 6.1.0 …`), when read.
    pub release: Option<String>,
}

impl KernelInfo {
    /// "EFI zboot (zstd22) arm64, Linux 6.1.192", or "arm64 Image for arm64".
    pub fn summary(&self) -> String {
        let mut s = match &self.zboot {
            Some(z) => format!("EFI zboot ({}) {}", z.compression, self.arch),
            None => format!("{} for {}", self.format.describe(), self.arch),
        };
        if let Some(r) = &self.release {
            s += &format!(", Linux {r}");
        }
        s
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct UkiInfo {
    pub sections: Vec<Section>,
    pub kernel: Box<KernelInfo>,
    pub cmdline: Option<String>,
    pub os_release: Option<String>,
    pub uname: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Section {
    pub name: String,
    pub offset: u64,
    pub size: u64,
}

impl UkiInfo {
    pub fn section(&self, name: &str) -> Option<&Section> {
        self.sections.iter().find(|s| s.name == name)
    }
}

/// The largest text section (`.cmdline`, `.osrel`, `.uname`) read whole.
use crate::limits::MAX_TEXT_SECTION;

pub fn sniff<R: Read + Seek>(r: &mut R) -> Result<KernelInfo> {
    let size = r.seek(SeekFrom::End(0))?;
    sniff_range(r, 0, size, false)
}

/// Sniffs the kernel stored at `[base, base+size)` of `r` (a whole file, or a UKI's `.linux`,
/// `nested`). One level only: systemd-stub boots the `.linux` it carries as a plain EFI kernel,
/// so a `.linux` that is itself a UKI (or the whole file again) is refused, not recursed into.
fn sniff_range<R: Read + Seek>(
    r: &mut R,
    base: u64,
    size: u64,
    nested: bool,
) -> Result<KernelInfo> {
    let mut head = vec![0u8; 4096.min(size as usize)];
    r.seek(SeekFrom::Start(base))?;
    r.read_exact(&mut head)
        .context("reading the kernel header")?;
    let at = |off: usize, magic: &[u8]| head.get(off..off + magic.len()) == Some(magic);
    let pe = if at(0, b"MZ") {
        pe_header(r, base, size, &head)?
    } else {
        None
    };
    if at(0, b"MZ") && at(4, ZBOOT_MAGIC) {
        return zboot(r, base, size, &head, pe.as_ref());
    }
    if let Some(pe) = &pe {
        if pe.sections.iter().any(|s| s.name == ".linux") {
            if nested {
                bail!("the UKI's .linux section is itself a UKI (a .linux inside a .linux)");
            }
            return uki(r, size, pe);
        }
    }
    let pe_machine = pe.as_ref().map(|p| format!("0x{:04X}", p.machine));
    let (format, arch) = if at(ARM64_MAGIC_OFFSET, ARM64_MAGIC) {
        (Format::Arm64Image, "arm64".to_string())
    } else if at(BZIMAGE_MAGIC_OFFSET, BZIMAGE_MAGIC) {
        // xloadflags bit 0 (XLF_KERNEL_64) at 0x236 marks a 64-bit kernel.
        let xload = head.get(0x236).copied().unwrap_or(0);
        let arch = if xload & 1 == 1 || pe.as_ref().is_some_and(|p| p.machine == MACHINE_AMD64) {
            "amd64"
        } else {
            "i386"
        };
        (Format::BzImage, arch.to_string())
    } else if let Some(p) = &pe {
        match p.machine {
            MACHINE_ARM64 => (Format::Pe, "arm64".into()),
            MACHINE_AMD64 => (Format::Pe, "amd64".into()),
            m => bail!("a PE image for machine 0x{m:04X}, not an arm64 or amd64 kernel"),
        }
    } else {
        bail!(
            "not a kernel: no arm64 Image magic at 0x38, no bzImage 'HdrS' at 0x202, no PE header"
        );
    };
    // An EFI stub whose PE machine contradicts the Linux header is a broken image, not a kernel.
    if let Some(p) = &pe {
        let pe_arch = match p.machine {
            MACHINE_ARM64 => "arm64",
            MACHINE_AMD64 => "amd64",
            _ => "",
        };
        if !pe_arch.is_empty() && pe_arch != arch && !(arch == "i386" && pe_arch == "amd64") {
            bail!("the Linux header says {arch} but the PE machine is {pe_arch}");
        }
    }
    let release = match format {
        Format::BzImage => bzimage_release(r, base, size, &head)?,
        _ => None,
    };
    Ok(KernelInfo {
        format,
        arch,
        pe_machine,
        size,
        uki: None,
        zboot: None,
        release,
    })
}

pub const ZBOOT_MAGIC: &[u8; 4] = b"zimg";

/// The Image inside a zboot payload may decompress to at most this much: a kernel is tens of
/// MiB; a payload that grows past this is a bomb, stopped in little memory.
pub const MAX_ZBOOT_IMAGE: u64 = 512 << 20;

/// Reads a zboot image: the header against the file, the payload decompressed in a stream,
/// the inner Image's header and banner.
fn zboot<R: Read + Seek>(
    r: &mut R,
    base: u64,
    size: u64,
    head: &[u8],
    pe: Option<&PeHeader>,
) -> Result<KernelInfo> {
    let field = |off: usize| {
        le32(head, off)
            .map(u64::from)
            .context("zboot header cut short")
    };
    let (offset, payload) = (field(8)?, field(12)?);
    let name_bytes = head.get(24..ARM64_MAGIC_OFFSET).unwrap_or_default();
    let name_len = name_bytes
        .iter()
        .position(|&b| b == 0)
        .unwrap_or(name_bytes.len());
    let compression = String::from_utf8_lossy(&name_bytes[..name_len]).to_string();
    let machine = pe
        .map(|p| p.machine)
        .context("a zboot header without a PE header")?;
    if machine != MACHINE_ARM64 {
        bail!("a zboot image for PE machine 0x{machine:04X}; tdg reads arm64 zboot kernels");
    }
    if offset < 64 || offset.checked_add(payload).is_none_or(|end| end > size) {
        bail!(
            "the zboot payload ({payload} bytes at offset {offset}) runs past the end of the {size}-byte file: cut short?"
        );
    }
    r.seek(SeekFrom::Start(base + offset))?;
    let compressed = (&mut *r).take(payload);
    let decoder: Box<dyn Read + '_> = if compression.starts_with("zstd") {
        let mut d = zstd::stream::read::Decoder::new(compressed)?;
        // The kernel's zstd22 (--ultra) uses windows up to 2^27; nothing larger is a kernel.
        d.window_log_max(27)?;
        Box::new(d)
    } else if compression == "gzip" {
        Box::new(flate2::read::MultiGzDecoder::new(compressed))
    } else {
        bail!("the zboot payload is compressed with {compression:?}; tdg reads zstd and gzip");
    };
    let (image_size, header, release) = scan_image(decoder, MAX_ZBOOT_IMAGE)
        .with_context(|| format!("the zboot payload ({compression}) is corrupt or cut short"))?;
    if header.get(ARM64_MAGIC_OFFSET..ARM64_MAGIC_OFFSET + 4) != Some(&ARM64_MAGIC[..]) {
        bail!("the zboot payload is not an arm64 Image (no ARM\\x64 magic at 0x38 inside)");
    }
    Ok(KernelInfo {
        format: Format::Zboot,
        arch: "arm64".into(),
        pe_machine: Some(format!("0x{machine:04X}")),
        size,
        uki: None,
        zboot: Some(ZbootInfo {
            compression,
            payload_offset: offset,
            payload_size: payload,
            image_size,
        }),
        release,
    })
}

/// Reads a decompressed Image to its end, at most `cap` bytes: its size, its first 64 bytes
/// (the arm64 header) and the release its `Linux version …` banner names.
fn scan_image(mut d: impl Read, cap: u64) -> Result<(u64, Vec<u8>, Option<String>)> {
    const BANNER: &[u8] = b"Linux version ";
    let mut header = Vec::with_capacity(64);
    let mut release = None;
    let mut total = 0u64;
    let mut buf = vec![0u8; 1 << 16];
    // The tail of the previous read, so a banner split across two reads is still found.
    let mut carry: Vec<u8> = Vec::new();
    loop {
        let n = d.read(&mut buf)?;
        if n == 0 {
            break;
        }
        total += n as u64;
        if total > cap {
            bail!("it decompresses past {cap} bytes (a decompression bomb?)");
        }
        if header.len() < 64 {
            let take = (64 - header.len()).min(n);
            header.extend_from_slice(&buf[..take]);
        }
        if release.is_none() {
            carry.extend_from_slice(&buf[..n]);
            release = banner_release(&carry, BANNER);
            let keep = carry.len().saturating_sub(BANNER.len() + 64);
            carry.drain(..keep);
        }
    }
    Ok((total, header, release))
}

/// The release after the first `Linux version ` that a digit follows (the banner, not a format
/// string), up to a space.
fn banner_release(bytes: &[u8], banner: &[u8]) -> Option<String> {
    let mut from = 0;
    while let Some(i) = find(&bytes[from..], banner) {
        let start = from + i + banner.len();
        let rest = &bytes[start..];
        if rest.first().is_some_and(u8::is_ascii_digit) {
            let end = rest
                .iter()
                .position(|&b| b == b' ' || b == 0 || b == b'\n')?;
            return Some(String::from_utf8_lossy(&rest[..end]).to_string());
        }
        from = start;
    }
    None
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// A bzImage's `kernel_version` string: the setup header's pointer at 0x20E, plus 0x200
/// (Documentation/arch/x86/boot.rst).
fn bzimage_release<R: Read + Seek>(
    r: &mut R,
    base: u64,
    size: u64,
    head: &[u8],
) -> Result<Option<String>> {
    let Some(ptr) = le16(head, 0x20E).filter(|&p| p != 0) else {
        return Ok(None);
    };
    let at = 0x200 + ptr as u64;
    if at + 1 >= size {
        return Ok(None);
    }
    let mut buf = vec![0u8; 128.min((size - at) as usize)];
    r.seek(SeekFrom::Start(base + at))?;
    r.read_exact(&mut buf)?;
    let end = buf
        .iter()
        .position(|&b| b == b' ' || b == 0)
        .unwrap_or(buf.len());
    let release = String::from_utf8_lossy(&buf[..end]).to_string();
    Ok((!release.is_empty() && release.as_bytes()[0].is_ascii_digit()).then_some(release))
}

struct PeHeader {
    machine: u16,
    sections: Vec<Section>,
}

fn le16(b: &[u8], off: usize) -> Option<u16> {
    b.get(off..off + 2)
        .map(|s| u16::from_le_bytes([s[0], s[1]]))
}

fn le32(b: &[u8], off: usize) -> Option<u32> {
    b.get(off..off + 4)
        .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

/// The COFF header and section table, when `e_lfanew` points at a `PE\0\0` signature.
fn pe_header<R: Read + Seek>(
    r: &mut R,
    base: u64,
    size: u64,
    head: &[u8],
) -> Result<Option<PeHeader>> {
    let Some(lfanew) = le32(head, 0x3c).map(u64::from) else {
        return Ok(None);
    };
    if lfanew + 24 > size {
        return Ok(None);
    }
    let mut coff = [0u8; 24];
    r.seek(SeekFrom::Start(base + lfanew))?;
    r.read_exact(&mut coff)?;
    if &coff[..4] != b"PE\0\0" {
        return Ok(None);
    }
    let machine = le16(&coff, 4).unwrap_or(0);
    let nsections = le16(&coff, 6).unwrap_or(0) as u64;
    let opt_size = le16(&coff, 20).unwrap_or(0) as u64;
    let table = lfanew + 24 + opt_size;
    if nsections > 96 || table + nsections * 40 > size {
        bail!("PE header claims {nsections} sections past the end of the file");
    }
    let mut raw = vec![0u8; (nsections * 40) as usize];
    r.seek(SeekFrom::Start(base + table))?;
    r.read_exact(&mut raw)?;
    let mut sections = Vec::new();
    for s in raw.chunks(40) {
        let name = String::from_utf8_lossy(&s[..8])
            .trim_end_matches('\0')
            .to_string();
        let (vsize, rsize, ptr) = (
            le32(s, 8).unwrap_or(0),
            le32(s, 16).unwrap_or(0),
            le32(s, 20).unwrap_or(0),
        );
        // The bytes that matter are min(virtual, raw) at the raw pointer (raw is file-aligned).
        let len = if vsize == 0 { rsize } else { vsize.min(rsize) } as u64;
        if ptr as u64 + len > size {
            bail!("PE section {name} runs past the end of the file");
        }
        sections.push(Section {
            name,
            offset: base + ptr as u64,
            size: len,
        });
    }
    Ok(Some(PeHeader { machine, sections }))
}

fn uki<R: Read + Seek>(r: &mut R, size: u64, pe: &PeHeader) -> Result<KernelInfo> {
    let linux = pe
        .sections
        .iter()
        .find(|s| s.name == ".linux")
        .expect("checked by the caller");
    let kernel =
        sniff_range(r, linux.offset, linux.size, true).context("the UKI's .linux section")?;
    let mut text = |name: &str| -> Result<Option<String>> {
        let Some(s) = pe.sections.iter().find(|s| s.name == name) else {
            return Ok(None);
        };
        if s.size > MAX_TEXT_SECTION {
            bail!(
                "UKI section {name} is {} bytes, over the {MAX_TEXT_SECTION}-byte limit",
                s.size
            );
        }
        let mut buf = vec![0u8; s.size as usize];
        r.seek(SeekFrom::Start(s.offset))?;
        r.read_exact(&mut buf)?;
        Ok(Some(
            String::from_utf8_lossy(&buf)
                .trim_end_matches('\0')
                .trim_end()
                .to_string(),
        ))
    };
    let (cmdline, os_release, uname) = (text(".cmdline")?, text(".osrel")?, text(".uname")?);
    let pe_arch = match pe.machine {
        MACHINE_ARM64 => "arm64",
        MACHINE_AMD64 => "amd64",
        m => bail!("a UKI for PE machine 0x{m:04X}"),
    };
    if pe_arch != kernel.arch {
        bail!(
            "the UKI's stub is {pe_arch} but its .linux kernel is {}",
            kernel.arch
        );
    }
    Ok(KernelInfo {
        format: Format::Uki,
        arch: kernel.arch.clone(),
        pe_machine: Some(format!("0x{:04X}", pe.machine)),
        size,
        release: kernel.release.clone(),
        uki: Some(UkiInfo {
            sections: pe.sections.clone(),
            kernel: Box::new(kernel),
            cmdline,
            os_release,
            uname,
        }),
        zboot: None,
    })
}

/// Writes an EFI zboot image around `image` (an arm64 `Image`), as Linux's zboot-header.S
/// lays it out: a PE32+ for arm64 whose DOS header carries `zimg`, the payload's offset and
/// size, and `compression` (`zstd22` or `gzip`), with the compressed payload after the headers.
/// For stand-ins in tests; the trials also boot a real one built from Linux's sources.
pub fn write_zboot(image: &[u8], compression: &str) -> Result<Vec<u8>> {
    let payload = match compression {
        "gzip" => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
            std::io::Write::write_all(&mut e, image)?;
            e.finish()?
        }
        _ => {
            // With a checksum, as the zstd CLI the kernel's Makefile.zboot runs writes one.
            let mut e = zstd::stream::write::Encoder::new(Vec::new(), 19)?;
            e.include_checksum(true)?;
            std::io::Write::write_all(&mut e, image)?;
            e.finish()?
        }
    };
    let mut out = write_pe(MACHINE_ARM64, &[(".text", &[0u8; 64])]);
    let offset = out.len() as u32;
    out.extend_from_slice(&payload);
    out[4..8].copy_from_slice(ZBOOT_MAGIC);
    out[8..12].copy_from_slice(&offset.to_le_bytes());
    out[12..16].copy_from_slice(&(payload.len() as u32).to_le_bytes());
    let name = compression.as_bytes();
    out[24..24 + name.len()].copy_from_slice(name);
    // zboot images carry the compressed size after the payload (ZBOOT_SIZE_LEN), and padding.
    out.extend_from_slice(&(image.len() as u32).to_le_bytes());
    out.resize(out.len().div_ceil(512) * 512, 0);
    Ok(out)
}

/// Writes a minimal PE32+ image with the given sections, for UKI stand-ins: a real DOS
/// header, COFF header, optional header and section table, as `objcopy --add-section` leaves.
pub fn write_pe(machine: u16, sections: &[(&str, &[u8])]) -> Vec<u8> {
    const ALIGN: usize = 0x200;
    let lfanew = 0x80usize;
    let opt_size = 0xF0usize; // PE32+ optional header with 16 data directories
    let header_end = lfanew + 24 + opt_size + 40 * sections.len();
    let mut out = vec![0u8; header_end.div_ceil(ALIGN) * ALIGN];
    out[0..2].copy_from_slice(b"MZ");
    out[0x3c..0x40].copy_from_slice(&(lfanew as u32).to_le_bytes());
    out[lfanew..lfanew + 4].copy_from_slice(b"PE\0\0");
    let coff = lfanew + 4;
    out[coff..coff + 2].copy_from_slice(&machine.to_le_bytes());
    out[coff + 2..coff + 4].copy_from_slice(&(sections.len() as u16).to_le_bytes());
    out[coff + 16..coff + 18].copy_from_slice(&(opt_size as u16).to_le_bytes());
    out[coff + 18..coff + 20].copy_from_slice(&0x0206u16.to_le_bytes()); // executable, large-address aware
    let opt = coff + 20;
    out[opt..opt + 2].copy_from_slice(&0x20Bu16.to_le_bytes()); // PE32+
    out[opt + 68..opt + 70].copy_from_slice(&10u16.to_le_bytes()); // subsystem: EFI application
    out[opt + 108..opt + 112].copy_from_slice(&16u32.to_le_bytes());
    let mut table = opt + opt_size;
    let mut vaddr = 0x1000u32;
    for (name, data) in sections {
        let ptr = out.len();
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(ALIGN) * ALIGN, 0);
        let raw = (out.len() - ptr) as u32;
        let mut n = [0u8; 8];
        n[..name.len().min(8)].copy_from_slice(&name.as_bytes()[..name.len().min(8)]);
        out[table..table + 8].copy_from_slice(&n);
        out[table + 8..table + 12].copy_from_slice(&(data.len() as u32).to_le_bytes());
        out[table + 12..table + 16].copy_from_slice(&vaddr.to_le_bytes());
        out[table + 16..table + 20].copy_from_slice(&raw.to_le_bytes());
        out[table + 20..table + 24].copy_from_slice(&(ptr as u32).to_le_bytes());
        out[table + 36..table + 40].copy_from_slice(&0x4000_0040u32.to_le_bytes()); // initialized data, readable
        vaddr += raw.div_ceil(0x1000) * 0x1000;
        table += 40;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn sniff_bytes(b: Vec<u8>) -> Result<KernelInfo> {
        sniff(&mut Cursor::new(b))
    }

    #[test]
    fn arm64_and_amd64_stand_ins() {
        let k = sniff_bytes(crate::demo::kernel("arm64", 8192)).unwrap();
        assert_eq!(
            (k.format.clone(), k.arch.as_str()),
            (Format::Arm64Image, "arm64")
        );
        let k = sniff_bytes(crate::demo::kernel("amd64", 8192)).unwrap();
        assert_eq!((k.format, k.arch.as_str()), (Format::BzImage, "amd64"));
    }

    #[test]
    fn a_uki_whose_linux_is_the_whole_file_is_refused_not_recursed() {
        // A 4 KiB PE whose .linux covers the file itself overflowed the stack (issue 15).
        let mut pe = write_pe(MACHINE_ARM64, &[(".linux", &[0u8; 16])]);
        let len = pe.len() as u32;
        let entry = 0x80 + 24 + 0xF0;
        for (off, v) in [(8, len), (16, len), (20, 0)] {
            pe[entry + off..entry + off + 4].copy_from_slice(&v.to_le_bytes());
        }
        let err = format!("{:#}", sniff_bytes(pe).unwrap_err());
        assert!(err.contains("a .linux inside a .linux"), "{err}");
    }

    /// An arm64 Image stand-in with a banner where a real one has it.
    fn image_with_banner() -> Vec<u8> {
        let mut k = crate::demo::kernel("arm64", 200_000);
        let banner = b"Linux version %s\0Linux version 6.1.192 (tdg@test) (gcc) #1 SMP\n";
        k[100_000..100_000 + banner.len()].copy_from_slice(banner);
        k
    }

    #[test]
    fn zboot_payloads_are_read_through_to_the_banner() {
        for compression in ["zstd22", "gzip"] {
            let z = write_zboot(&image_with_banner(), compression).unwrap();
            let k = sniff_bytes(z).unwrap();
            assert_eq!(
                (k.format.clone(), k.arch.as_str()),
                (Format::Zboot, "arm64")
            );
            let info = k.zboot.clone().unwrap();
            assert_eq!(
                (info.compression.as_str(), info.image_size),
                (compression, 200_000)
            );
            assert_eq!(k.release.as_deref(), Some("6.1.192"));
            assert_eq!(
                k.summary(),
                format!("EFI zboot ({compression}) arm64, Linux 6.1.192")
            );
        }
    }

    #[test]
    fn broken_zboot_images_fail_with_the_reason() {
        let good = write_zboot(&image_with_banner(), "zstd22").unwrap();
        let offset = u32::from_le_bytes(good[8..12].try_into().unwrap()) as usize;
        let size = u32::from_le_bytes(good[12..16].try_into().unwrap()) as usize;
        let err = |b: Vec<u8>| match sniff_bytes(b) {
            Ok(k) => format!("accepted: {k:?}"),
            Err(e) => format!("{e:#}"),
        };
        // Cut to a third: the header names bytes the file lacks.
        let cut = good[..good.len() / 3].to_vec();
        assert!(err(cut).contains("runs past the end"), "cut");
        // A byte flipped inside the payload.
        let mut corrupt = good.clone();
        corrupt[offset + size / 2] ^= 0xff;
        let e = err(corrupt);
        assert!(e.contains("corrupt or cut short"), "corrupt: {e}");
        // A payload size that lies, either way.
        for lie in [size - 64, size + 4] {
            let mut b = good.clone();
            b[12..16].copy_from_slice(&(lie as u32).to_le_bytes());
            let e = err(b);
            assert!(
                e.contains("corrupt or cut short"),
                "size {lie} of {size}: {e}"
            );
        }
        // An amd64 kernel inside.
        let x86 = write_zboot(&crate::demo::kernel("amd64", 8192), "zstd22").unwrap();
        assert!(err(x86).contains("not an arm64 Image"), "x86 inside");
        // A compression tdg does not read is named.
        let mut lz4 = good.clone();
        lz4[24..32].copy_from_slice(b"lz4\0\0\0\0\0");
        assert!(err(lz4).contains("\"lz4\""), "lz4");
        // A payload that decompresses without end stops at the cap, in little memory.
        let bomb = zstd::stream::encode_all(&vec![0u8; 8 << 20][..], 3).unwrap();
        let e = scan_image(
            zstd::stream::read::Decoder::new(&bomb[..]).unwrap(),
            1 << 20,
        );
        assert!(format!("{:#}", e.unwrap_err()).contains("decompression bomb"));
    }

    #[test]
    fn garbage_is_not_a_kernel() {
        let err = sniff_bytes(vec![7u8; 4096]).unwrap_err();
        assert!(err.to_string().contains("not a kernel"), "{err}");
    }

    #[test]
    fn uki_sections_and_embedded_kernel() {
        let linux = crate::demo::kernel("arm64", 8192);
        let pe = write_pe(
            MACHINE_ARM64,
            &[
                (".osrel", b"ID=talos\n"),
                (".cmdline", b"talos.platform=metal console=ttyS0\0"),
                (".uname", b"6.12.57-talos"),
                (".linux", &linux),
                (".initrd", b"070701"),
            ],
        );
        let k = sniff_bytes(pe).unwrap();
        assert_eq!((k.format.clone(), k.arch.as_str()), (Format::Uki, "arm64"));
        let u = k.uki.unwrap();
        assert_eq!(
            u.cmdline.as_deref(),
            Some("talos.platform=metal console=ttyS0")
        );
        assert_eq!(u.os_release.as_deref(), Some("ID=talos"));
        assert_eq!(u.section(".initrd").unwrap().size, 6);
        assert_eq!(u.kernel.format, Format::Arm64Image);
    }

    #[test]
    fn uki_whose_stub_and_kernel_disagree_is_an_error() {
        let linux = crate::demo::kernel("amd64", 8192);
        let pe = write_pe(MACHINE_ARM64, &[(".linux", &linux)]);
        let err = sniff_bytes(pe).unwrap_err();
        assert!(
            err.to_string()
                .contains("stub is arm64 but its .linux kernel is amd64"),
            "{err}"
        );
    }
}
