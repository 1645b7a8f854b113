//! A layer's entries held between reading its tar and applying it to the tree: in memory up to
//! a bound, then in an unnamed scratch file.

use std::io::{self, Read, Write};
use std::path::Path;

use anyhow::{ensure, Context, Result};

use super::tree::{Entry, Kind};
use crate::digest::Digest;

/// One tar entry of a layer, read and hashed.
#[derive(Debug, PartialEq)]
pub(super) struct LayerEntry {
    pub path: String,
    pub entry: Entry,
    pub spooled: bool,
}

/// A layer's entries, held until its deletions are applied (they refer to lower layers only,
/// wherever they stand in the tar): in memory up to [`HELD_IN_MEMORY`] bytes, then in an unnamed
/// file in the scratch directory, which the kernel removes however the run ends.
pub(super) struct Held<'a> {
    memory: Vec<LayerEntry>,
    file: Option<io::BufWriter<std::fs::File>>,
    scratch: Option<&'a Path>,
    /// Bytes held in memory so far, and the most that may be.
    held: usize,
    limit: usize,
}

const HELD_IN_MEMORY: usize = 16 << 20;

impl<'a> Held<'a> {
    pub fn new(scratch: Option<&'a Path>) -> Self {
        Held {
            memory: Vec::new(),
            file: None,
            scratch,
            held: 0,
            limit: HELD_IN_MEMORY,
        }
    }

    pub fn push(&mut self, e: LayerEntry) -> Result<()> {
        if self.file.is_none() {
            match self.scratch {
                Some(dir) if self.held >= self.limit => {
                    let f = tempfile::tempfile_in(dir)
                        .with_context(|| format!("creating a file in {}", dir.display()))?;
                    self.file = Some(io::BufWriter::with_capacity(1 << 20, f));
                }
                _ => {
                    self.held += std::mem::size_of::<LayerEntry>()
                        + e.path.len()
                        + e.entry.link.as_ref().map_or(0, String::len);
                    self.memory.push(e);
                    return Ok(());
                }
            }
        }
        let w = self.file.as_mut().expect("a file once spilling");
        write_held(w, &e).context("writing a layer's entries to the scratch directory")
    }

    /// Every entry, in the order pushed.
    pub fn drain(self) -> Result<impl Iterator<Item = Result<LayerEntry>>> {
        let file = match self.file {
            Some(w) => {
                let mut f = w.into_inner().map_err(|e| e.into_error())?;
                io::Seek::rewind(&mut f)?;
                Some(io::BufReader::with_capacity(1 << 20, f))
            }
            None => None,
        };
        let spilled = file
            .into_iter()
            .flat_map(|mut r| std::iter::from_fn(move || read_held(&mut r).transpose()));
        Ok(self.memory.into_iter().map(Ok).chain(spilled))
    }
}

fn write_held(w: &mut impl Write, e: &LayerEntry) -> io::Result<()> {
    let text = |w: &mut dyn Write, s: &str| -> io::Result<()> {
        w.write_all(&(s.len() as u64).to_le_bytes())?;
        w.write_all(s.as_bytes())
    };
    let x = &e.entry;
    text(w, &e.path)?;
    w.write_all(&[x.kind.letter() as u8, u8::from(e.spooled)])?;
    w.write_all(&x.mode.to_le_bytes())?;
    w.write_all(&x.uid.to_le_bytes())?;
    w.write_all(&x.gid.to_le_bytes())?;
    w.write_all(&[u8::from(x.size.is_some())])?;
    w.write_all(&x.size.unwrap_or(0).to_le_bytes())?;
    w.write_all(&[u8::from(x.sha256.is_some())])?;
    w.write_all(&x.sha256.as_ref().map_or([0; 32], Digest::raw))?;
    w.write_all(&[u8::from(x.link.is_some())])?;
    text(w, x.link.as_deref().unwrap_or_default())?;
    w.write_all(&[u8::from(x.device.is_some())])?;
    let (ma, mi) = x.device.unwrap_or_default();
    w.write_all(&ma.to_le_bytes())?;
    w.write_all(&mi.to_le_bytes())
}

/// One entry as `write_held` wrote it; `None` at the end of the file.
fn read_held(r: &mut impl Read) -> Result<Option<LayerEntry>> {
    fn bytes<const N: usize>(r: &mut impl Read) -> io::Result<[u8; N]> {
        let mut b = [0u8; N];
        r.read_exact(&mut b)?;
        Ok(b)
    }
    fn text(r: &mut impl Read, len: [u8; 8]) -> Result<String> {
        let n = u64::from_le_bytes(len);
        let mut s = Vec::new();
        r.take(n).read_to_end(&mut s)?;
        ensure!(s.len() as u64 == n, "held entries end early");
        Ok(String::from_utf8(s)?)
    }
    let mut len = [0u8; 8];
    match r.read(&mut len[..1])? {
        0 => return Ok(None),
        _ => r.read_exact(&mut len[1..])?,
    }
    let path = text(r, len)?;
    let [kind, spooled] = bytes(r)?;
    let kind = Kind::from_letter(kind as char).context("an unknown kind in held entries")?;
    let mode = u32::from_le_bytes(bytes(r)?);
    let uid = u64::from_le_bytes(bytes(r)?);
    let gid = u64::from_le_bytes(bytes(r)?);
    let [has_size] = bytes(r)?;
    let size = u64::from_le_bytes(bytes(r)?);
    let [has_sha] = bytes(r)?;
    let sha = bytes::<32>(r)?;
    let [has_link] = bytes(r)?;
    let link_len = bytes(r)?;
    let link = text(r, link_len)?;
    let [has_device] = bytes(r)?;
    let device = (u32::from_le_bytes(bytes(r)?), u32::from_le_bytes(bytes(r)?));
    Ok(Some(LayerEntry {
        path,
        spooled: spooled != 0,
        entry: Entry {
            kind,
            mode,
            uid,
            gid,
            size: (has_size != 0).then_some(size),
            sha256: (has_sha != 0).then(|| Digest::from_raw(sha)),
            link: (has_link != 0).then_some(link),
            device: (has_device != 0).then_some(device),
        },
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_entries_come_back_in_order_from_memory_and_from_the_spill_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut held = Held::new(Some(dir.path()));
        held.limit = 1000;
        let entry = |i: u32| LayerEntry {
            path: format!("d/é{i}"),
            spooled: i % 2 == 0,
            entry: Entry {
                kind: Kind::from_letter(['f', 'd', 'l', 'h', 'c', 'b', 'p'][i as usize % 7])
                    .unwrap(),
                mode: i,
                uid: u64::MAX - u64::from(i),
                gid: 1 << 40,
                size: (i % 3 == 0).then_some(u64::from(i) << 33),
                sha256: (i % 3 == 0).then(|| Digest::of(&i.to_le_bytes())),
                link: (i % 4 == 1).then(|| "/a/../b\n".repeat(i as usize)),
                device: (i % 5 == 2).then_some((i, u32::MAX)),
            },
        };
        for i in 0..20 {
            held.push(entry(i)).unwrap();
        }
        assert!(
            held.file.is_some(),
            "past the limit, entries went to a file"
        );
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "the file has no name"
        );
        let back: Vec<LayerEntry> = held.drain().unwrap().map(Result::unwrap).collect();
        assert_eq!(back, (0..20).map(entry).collect::<Vec<_>>());
    }
}
