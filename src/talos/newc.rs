//! newc cpio headers as the kernel reads them (`init/initramfs.c`, Linux 6.12: `do_header`,
//! `parse_header`): `070701`, or `070702` whose data checksum the unpacker verifies; thirteen
//! 8-digit hex fields read by `simple_strntoul`, which stops at the first character that is not
//! hex rather than failing.

/// The fixed part of a header: the magic and thirteen 8-digit fields.
pub const HEADER: usize = 110;
/// `PATH_MAX`: a longer name (NUL included) or symlink target makes the kernel skip the entry.
pub const PATH_MAX: u32 = 4096;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Header {
    /// `070702`: the body's byte sum must equal `check`.
    pub crc: bool,
    pub ino: u32,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub nlink: u32,
    pub mtime: u32,
    pub file_size: u32,
    pub major: u32,
    pub minor: u32,
    pub name_len: u32,
    pub check: u32,
}

pub const S_IFMT: u32 = 0o170000;
pub const S_IFREG: u32 = 0o100000;
pub const S_IFDIR: u32 = 0o040000;
pub const S_IFLNK: u32 = 0o120000;
const S_IFCHR: u32 = 0o020000;
const S_IFBLK: u32 = 0o060000;
const S_IFIFO: u32 = 0o010000;
const S_IFSOCK: u32 = 0o140000;

impl Header {
    pub fn file_type(&self) -> u32 {
        self.mode & S_IFMT
    }
    pub fn is_special(&self) -> bool {
        matches!(self.file_type(), S_IFCHR | S_IFBLK | S_IFIFO | S_IFSOCK)
    }
    /// Bytes of name and its padding after the header (`N_ALIGN`).
    pub fn name_field(&self) -> u64 {
        n_align(self.name_len as u64)
    }
}

/// `N_ALIGN(len)`: the name padded so that header and name end on a 4-byte boundary.
pub fn n_align(len: u64) -> u64 {
    ((len + 1) & !3) + 2
}

/// Parses one header, with the kernel's message when the magic is wrong.
pub fn parse(h: &[u8; HEADER]) -> Result<Header, &'static str> {
    let crc = match &h[..6] {
        b"070701" => false,
        b"070702" => true,
        b"070707" => return Err("incorrect cpio method used: use -H newc option"),
        _ => return Err("no cpio magic"),
    };
    let f = |i: usize| strntoul_hex(&h[6 + i * 8..6 + (i + 1) * 8]);
    Ok(Header {
        crc,
        ino: f(0),
        mode: f(1),
        uid: f(2),
        gid: f(3),
        nlink: f(4),
        mtime: f(5),
        file_size: f(6),
        major: f(7),
        minor: f(8),
        name_len: f(11),
        check: f(12),
    })
}

/// One entry with the header fields of `h` that a writer chooses (`crc`, `ino`, `mode`, `uid`,
/// `gid`, `nlink`, `mtime`, `major`, `minor`, `check`), its name (a NUL added) and body, each
/// padded to 4 bytes: for fixtures the `cpio` crate does not write (chosen inode numbers and
/// link counts, `070702` checksums).
pub fn write_entry(h: &Header, name: &[u8], body: &[u8]) -> Vec<u8> {
    let mut out = if h.crc { b"070702" } else { b"070701" }.to_vec();
    let fields = [
        h.ino,
        h.mode,
        h.uid,
        h.gid,
        h.nlink,
        h.mtime,
        body.len() as u32,
        h.major,
        h.minor,
        0,
        0,
        name.len() as u32 + 1,
        h.check,
    ];
    for v in fields {
        out.extend(format!("{v:08X}").bytes());
    }
    out.extend(name);
    out.push(0);
    out.resize(out.len().next_multiple_of(4), 0);
    out.extend(body);
    out.resize(out.len().next_multiple_of(4), 0);
    out
}

/// The `070702` checksum of `body`: its bytes summed, modulo 2^32.
pub fn checksum(body: &[u8]) -> u32 {
    body.iter().fold(0u32, |s, b| s.wrapping_add(*b as u32))
}

/// `simple_strntoul(s, NULL, 16, 8)` (`lib/vsprintf.c`): an optional `0x`, then hex digits up
/// to the first other character.
fn strntoul_hex(s: &[u8]) -> u32 {
    let s = match s {
        [b'0', b'x' | b'X', rest @ ..] if rest.first().is_some_and(u8::is_ascii_hexdigit) => rest,
        s => s,
    };
    let mut v: u32 = 0;
    for b in s {
        let Some(d) = (*b as char).to_digit(16) else {
            break;
        };
        v = v.wrapping_mul(16).wrapping_add(d);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(magic: &[u8], fields: [&str; 13]) -> [u8; HEADER] {
        let mut h = magic.to_vec();
        for f in fields {
            h.extend(format!("{f:0>8}").bytes());
        }
        h.try_into().unwrap()
    }

    #[test]
    fn fields_parse_as_simple_strntoul_does() {
        let z = "0";
        let h = header(
            b"070702",
            ["65", "81A4", z, z, "2", z, "0x1G", z, z, z, z, "b", "zz"],
        );
        let p = parse(&h).unwrap();
        assert!(p.crc);
        assert_eq!((p.ino, p.mode, p.nlink), (0x65, 0o100644, 2));
        assert_eq!(p.file_size, 0, "0000 then 0x1G: stops at the x");
        assert_eq!(p.name_len, 0xb);
        assert_eq!(p.check, 0);
        assert_eq!(p.name_field(), 14, "110 + 11 rounds up to 124");
        assert_eq!(strntoul_hex(b"0x1f"), 0x1f);
        assert_eq!(strntoul_hex(b"12G4"), 0x12);
        let odc = header(b"070707", [z; 13]);
        assert!(parse(&odc).unwrap_err().contains("-H newc"));
        assert_eq!(parse(&header(b"07070X", [z; 13])), Err("no cpio magic"));
    }

    #[test]
    fn written_entries_parse_back() {
        let h = Header {
            crc: true,
            ino: 7,
            mode: S_IFREG | 0o644,
            nlink: 2,
            check: checksum(b"abc"),
            ..Default::default()
        };
        let e = write_entry(&h, b"name", b"abc");
        assert_eq!(e.len() % 4, 0);
        let p = parse(e[..HEADER].try_into().unwrap()).unwrap();
        assert_eq!(
            (p.ino, p.nlink, p.file_size, p.name_len, p.check),
            (7, 2, 3, 5, 294)
        );
        assert_eq!(&e[HEADER..HEADER + 5], b"name\0");
    }
}
