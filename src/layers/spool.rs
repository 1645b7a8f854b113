//! The content store a flatten writes the wanted files to.

use std::collections::HashSet;
use std::io::{BufReader, Write};
use std::path::PathBuf;

use anyhow::{Context, Result};

use crate::digest::{Digest, VerifyingReader};

/// Where spooled content goes: files named by their sha256, so a hardlink and its target, or
/// two identical files, share one copy. A file is written beside `tmp` and renamed into place
/// once hashed, so the store never holds a partial or misnamed file.
pub struct Spool {
    dir: PathBuf,
    tmp: PathBuf,
    /// Small contents this run has written, by sha256: a million copies of one file (empty
    /// ones, a licence) are written once. Capped; past the cap a copy is just written again.
    written: std::sync::Mutex<HashSet<[u8; 32]>>,
}

/// Contents up to this size are read into memory and hashed before they are written.
pub(super) const SMALL: usize = 64 << 10;
/// Small contents remembered as written (2 MiB of digests).
const WRITTEN_CAP: usize = 1 << 16;

impl Spool {
    /// A spool that is its own scratch directory (a run's temporary spool).
    pub fn new(dir: PathBuf) -> Result<Self> {
        Self::with_tmp(dir.clone(), dir)
    }

    /// A spool that outlives the run (the cache's content store), written through `tmp`.
    pub fn with_tmp(dir: PathBuf, tmp: PathBuf) -> Result<Self> {
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(Spool {
            dir,
            tmp,
            written: Default::default(),
        })
    }

    pub fn path(&self, d: &Digest) -> PathBuf {
        self.dir.join(d.hex())
    }

    /// The scratch directory beside the store, for temporaries of this run.
    pub fn scratch(&self) -> &std::path::Path {
        &self.tmp
    }

    /// Whether the spooled copy of `d` is there and still hashes to it (`size` bytes). A copy
    /// that does not is removed.
    pub fn holds(&self, d: &Digest, size: u64) -> bool {
        let path = self.path(d);
        let sound = crate::located::open_regular(&path).is_ok_and(|f| {
            VerifyingReader::new(BufReader::new(f), d.clone(), size, "spooled content")
                .finish()
                .is_ok()
        });
        if !sound {
            let _ = std::fs::remove_file(&path);
        }
        sound
    }

    /// Stores a small content read whole, once per run for each digest. The lock is not held
    /// while writing, so layers read side by side do not queue on it; two that write the same
    /// content at once rename identical bytes into place.
    pub(super) fn put_small(&self, bytes: &[u8]) -> Result<Digest> {
        let d = Digest::of(bytes);
        let lock = || self.written.lock().expect("no panic while holding it");
        if lock().contains(&d.raw()) {
            return Ok(d);
        }
        let mut tmp = tempfile::NamedTempFile::new_in(&self.tmp)?;
        tmp.write_all(bytes)?;
        tmp.persist(self.path(&d)).map_err(|e| e.error)?;
        let mut w = lock();
        if w.len() < WRITTEN_CAP {
            w.insert(d.raw());
        }
        Ok(d)
    }

    /// A temporary file beside the store, for content hashed as it is written.
    pub(super) fn temp(&self) -> Result<tempfile::NamedTempFile> {
        Ok(tempfile::NamedTempFile::new_in(&self.tmp)?)
    }

    /// Moves a written temporary into the store under its digest.
    pub(super) fn keep(&self, tmp: tempfile::NamedTempFile, d: &Digest) -> Result<()> {
        tmp.persist(self.path(d)).map_err(|e| e.error)?;
        Ok(())
    }
}
