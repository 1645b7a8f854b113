//! GNU long names and PAX records, read by tdg rather than by the `tar` crate, which buffers
//! whatever size they claim: a 418-byte gzip layer took 4.9 GB. The caps are Go's
//! (`archive/tar`'s `maxSpecialFileSize`, behind skopeo, umoci and containerd) and Linux's.

use std::io::Read;

use anyhow::{anyhow, bail, Context, Result};

/// Go's `archive/tar/common.go` `maxSpecialFileSize`: a PAX or GNU long-name record.
pub const MAX_SPECIAL: u64 = 1 << 20;
/// Linux's `PATH_MAX`: a longer path cannot be opened on a node, and it bounds the depth.
pub const MAX_PATH: usize = 4096;
/// Linux's `NAME_MAX`: one path component.
pub const MAX_NAME: usize = 255;

/// What the special entries before a member say about it.
#[derive(Default)]
pub struct Extensions {
    long_name: Option<Vec<u8>>,
    long_link: Option<Vec<u8>>,
    pax: Option<Vec<u8>>,
}

/// A member of a tar stream: its name as written, the clean path, and what its special
/// entries said.
pub struct Member {
    pub raw: String,
    pub path: String,
    pub over: Overrides,
}

/// The member `e` is, with the special entries before it applied and its path checked and
/// normalised; `None` when `e` is itself a special entry (taken into `ext`). Layers and image
/// archives read their tars through this one function.
pub fn member<R: Read>(ext: &mut Extensions, e: &mut tar::Entry<'_, R>) -> Result<Option<Member>> {
    if ext.absorb(e)? {
        return Ok(None);
    }
    let over = ext
        .take(e.header())
        .with_context(|| format!("entry {}", shown(&e.path_bytes())))?;
    let raw = over
        .path
        .clone()
        .unwrap_or_else(|| e.path_bytes().into_owned());
    let raw = String::from_utf8(raw)
        .map_err(|b| anyhow!("entry name is not UTF-8: {}", shown(b.as_bytes())))?;
    let path = check_path(&raw)
        .and_then(|()| crate::image_path::normalize(&raw))
        .with_context(|| format!("entry {}", shown(raw.as_bytes())))?;
    Ok(Some(Member { raw, path, over }))
}

/// An entry name for a message: quoted, and cut short when long.
pub fn shown(raw: &[u8]) -> String {
    let s = String::from_utf8_lossy(raw);
    match s.char_indices().nth(120) {
        Some((i, _)) => format!("'{}…' ({} bytes)", &s[..i], raw.len()),
        None => format!("'{s}'"),
    }
}

/// A member's attributes once its special entries are applied.
pub struct Overrides {
    pub path: Option<Vec<u8>>,
    pub link: Option<Vec<u8>>,
    pub uid: Option<u64>,
    pub gid: Option<u64>,
}

impl Extensions {
    /// Takes in `e` when it is a special entry (and so not a member); `Ok(false)` otherwise.
    pub fn absorb<R: Read>(&mut self, e: &mut tar::Entry<'_, R>) -> Result<bool> {
        use tar::EntryType as T;
        let et = e.header().entry_type();
        let (slot, what) = match et {
            T::GNULongName => (&mut self.long_name, "GNU long name"),
            T::GNULongLink => (&mut self.long_link, "GNU long link name"),
            T::XHeader => (&mut self.pax, "PAX header"),
            // Global PAX headers apply to nothing Go reads them into; moby's and containerd's
            // appliers skip them (pkg/archive, `TypeXGlobalHeader`).
            T::XGlobalHeader => (&mut None, "global PAX header"),
            _ => return Ok(false),
        };
        let size = e.header().entry_size().context("bad size")?;
        if size > MAX_SPECIAL {
            bail!("a {what} of {size} bytes, over the {MAX_SPECIAL}-byte limit");
        }
        if slot.is_some() {
            bail!("two {what}s describe the same entry");
        }
        let mut buf = Vec::with_capacity(size as usize);
        e.take(MAX_SPECIAL).read_to_end(&mut buf)?;
        *slot = Some(buf);
        Ok(true)
    }

    /// Whether special entries wait for a member that never came.
    pub fn pending(&self) -> bool {
        self.long_name.is_some() || self.long_link.is_some() || self.pax.is_some()
    }

    /// What applies to the member `header` describes, clearing the pending entries. PAX
    /// records win over GNU names, as in Go's `Reader.Next` (`mergePAX` runs last).
    pub fn take(&mut self, header: &tar::Header) -> Result<Overrides> {
        let mut o = Overrides {
            path: self.long_name.take().map(trim_nul),
            link: self.long_link.take().map(trim_nul),
            uid: None,
            gid: None,
        };
        if let Some(pax) = self.pax.take() {
            for rec in tar::PaxExtensions::new(&pax) {
                let rec = rec.context("bad PAX record")?;
                let key = rec.key().context("PAX key is not UTF-8")?;
                let num = || -> Result<u64> {
                    let v = rec.value().context("PAX value is not UTF-8")?;
                    v.parse().with_context(|| format!("bad PAX {key} {v:?}"))
                };
                match key {
                    "path" => o.path = Some(rec.value_bytes().to_vec()),
                    "linkpath" => o.link = Some(rec.value_bytes().to_vec()),
                    "uid" => o.uid = Some(num()?),
                    "gid" => o.gid = Some(num()?),
                    // The `tar` crate sizes a member by its header; a PAX size (files over
                    // 8 GiB) would desynchronise the stream, so it is refused, not misread.
                    "size" if num()? != header.entry_size()? => {
                        bail!("a PAX size record (a file over 8 GiB) is not supported")
                    }
                    k if k.starts_with("GNU.sparse.") => {
                        bail!("GNU sparse files are not supported in image layers")
                    }
                    _ => {}
                }
            }
        }
        Ok(o)
    }
}

fn trim_nul(mut b: Vec<u8>) -> Vec<u8> {
    if let Some(n) = b.iter().position(|c| *c == 0) {
        b.truncate(n);
    }
    b
}

/// A path a Linux node could create: at most `PATH_MAX` bytes, each component `NAME_MAX`.
pub fn check_path(raw: &str) -> Result<()> {
    if raw.len() > MAX_PATH {
        bail!(
            "a path of {} bytes, over Linux's {MAX_PATH}-byte PATH_MAX",
            raw.len()
        );
    }
    if let Some(c) = raw.split('/').find(|c| c.len() > MAX_NAME) {
        bail!(
            "a path component of {} bytes, over Linux's {MAX_NAME}-byte NAME_MAX",
            c.len()
        );
    }
    Ok(())
}
