//! Which kernel a file is, from its bytes: an arm64 `Image` (`ARM\x64` at 0x38), an x86
//! bzImage (`HdrS` at 0x202), a PE/EFI-stub kernel (COFF machine 0xAA64 / 0x8664), or a UKI (a
//! PE with `.linux`, `.initrd`, `.cmdline`, `.osrel`, `.uname` sections, whose embedded kernel is
//! sniffed in turn).

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
}

impl Format {
    pub fn describe(&self) -> &'static str {
        match self {
            Format::Arm64Image => "arm64 Image",
            Format::BzImage => "bzImage",
            Format::Pe => "PE image",
            Format::Uki => "UKI",
        }
    }
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
    Ok(KernelInfo {
        format,
        arch,
        pe_machine,
        size,
        uki: None,
    })
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
        uki: Some(UkiInfo {
            sections: pe.sections.clone(),
            kernel: Box::new(kernel),
            cmdline,
            os_release,
            uname,
        }),
    })
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
