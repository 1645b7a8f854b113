//! Reading newc cpio headers as the kernel does (`init/initramfs.c`), with the name bounded
//! before anything is allocated: the `cpio` crate allocates whatever `c_namesize` claims, so a
//! 141 KiB zstd segment could ask for 4 GiB.

use std::io::{self, Read};

/// `PATH_MAX`, which `do_header` in `init/initramfs.c` compares `name_len` (NUL included) with.
pub const MAX_NAME: u32 = 4096;
/// The fixed part of a newc header: the magic and thirteen 8-digit hex fields.
const HEADER: usize = 110;

/// One entry's header. `name` is `None` for an entry the kernel skips (a name of 0 or more
/// than `PATH_MAX` bytes); its body must still be skipped.
#[derive(Debug)]
pub struct Header {
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub file_size: u32,
    pub name: Option<String>,
    /// Bytes of padding after the body, up to the next 4-byte boundary.
    pub body_pad: u32,
}

impl Header {
    pub fn is_trailer(&self) -> bool {
        self.name.as_deref() == Some("TRAILER!!!")
    }
}

/// Reads one header and its (padded) name from `r`, which starts 4-byte aligned.
pub fn read_header<R: Read + ?Sized>(r: &mut R) -> io::Result<Header> {
    let mut h = [0u8; HEADER];
    r.read_exact(&mut h)?;
    if &h[..6] != b"070701" && &h[..6] != b"070702" {
        return Err(invalid(if &h[..6] == b"070707" {
            "an odc cpio header, not newc (use cpio -H newc)".into()
        } else {
            format!("no newc cpio magic: {:02x?}", &h[..6])
        }));
    }
    let field = |i: usize| -> io::Result<u32> {
        let raw = &h[6 + i * 8..6 + (i + 1) * 8];
        std::str::from_utf8(raw)
            .ok()
            .and_then(|s| u32::from_str_radix(s, 16).ok())
            .ok_or_else(|| {
                invalid(format!(
                    "newc header field {i} is not hex: {:?}",
                    String::from_utf8_lossy(raw)
                ))
            })
    };
    // c_ino c_mode c_uid c_gid c_nlink c_mtime c_filesize c_devmajor c_devminor
    // c_rdevmajor c_rdevminor c_namesize c_check
    let (mode, uid, gid, file_size, name_len) =
        (field(1)?, field(2)?, field(3)?, field(6)?, field(11)?);
    // N_ALIGN(name_len): header and name padded to a multiple of 4.
    let padded = (HEADER as u64 + name_len as u64).next_multiple_of(4) - HEADER as u64;
    let name = if name_len == 0 || name_len > MAX_NAME {
        if io::copy(&mut r.take(padded), &mut io::sink())? < padded {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        None
    } else {
        let mut buf = vec![0u8; padded as usize];
        r.read_exact(&mut buf)?;
        buf.truncate(name_len as usize);
        // The name ends at its first NUL, as the kernel reads it.
        if let Some(nul) = buf.iter().position(|b| *b == 0) {
            buf.truncate(nul);
        }
        Some(String::from_utf8(buf).map_err(|e| {
            invalid(format!(
                "cpio entry name is not UTF-8: {:?}",
                String::from_utf8_lossy(e.as_bytes())
            ))
        })?)
    };
    Ok(Header {
        mode,
        uid,
        gid,
        file_size,
        name,
        body_pad: (4 - file_size % 4) % 4,
    })
}

fn invalid(m: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, m)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(name_len: u32, size: u32) -> Vec<u8> {
        let mut h = b"070701".to_vec();
        for v in [1, 0o100644, 0, 0, 1, 0, size, 0, 0, 0, 0, name_len, 0] {
            h.extend(format!("{v:08X}").bytes());
        }
        h
    }

    #[test]
    fn a_huge_name_is_skipped_without_allocating_it() {
        // The kernel skips entries whose name is over PATH_MAX; the reader must not buffer it.
        let mut data = header(u32::MAX, 0);
        data.extend(vec![b'a'; 8192]);
        let e = read_header(&mut data.as_slice()).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof, "{e}");
        let mut data = header(5000, 3);
        data.extend(vec![b'a'; 5000 + 2]);
        data.extend(b"xyz");
        let mut r = data.as_slice();
        let h = read_header(&mut r).unwrap();
        assert!(h.name.is_none());
        assert_eq!((h.file_size, h.body_pad), (3, 1));
        assert_eq!(r, b"xyz");
    }

    #[test]
    fn names_are_padded_from_the_header_start() {
        let mut data = header(4, 0);
        data.extend(b"abc\0"); // 110 + 4 = 114, padded to 116
        data.extend(b"\0\0NEXT");
        let mut r = data.as_slice();
        let h = read_header(&mut r).unwrap();
        assert_eq!(h.name.as_deref(), Some("abc"));
        assert_eq!(r, b"NEXT");
        let mut bad = header(4, 0);
        bad[20] = b'G';
        assert!(read_header(&mut bad.as_slice())
            .unwrap_err()
            .to_string()
            .contains("not hex"));
        assert!(read_header(&mut &b"070707"[..]).is_err());
    }
}
