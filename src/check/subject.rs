//! What every check reads: the resolved image, its flattened tree and spooled content, the
//! goldens of the run; and the verdict a check gives. Opening a file of the image is done here,
//! once, for every family.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fs::File;
use std::io::Read;

use crate::error::Reason;
use crate::layers::flatten::{ContentError, Flattened, Spool};
use crate::layers::tree::{Entry, Kind};
use crate::oci::resolve::Resolved;
use crate::talos::initramfs::{Initramfs, LayerScan, Limits};

pub struct Subject<'a> {
    pub resolved: &'a Resolved,
    pub flat: &'a Flattened,
    pub spool: &'a Spool,
    pub limits: Limits,
    /// Initramfs walks (of a file, or of a UKI's `.initrd`), shared by the checks on one file.
    pub walks: Walks,
    /// The goldens of this run, rendered once (`golden::pending`).
    pub goldens: &'a [super::golden::Pending],
    /// The boot the spec asked for.
    pub boot: BootState,
    /// The signatures found beside the image, when the spec asked for them.
    pub signatures: &'a crate::sign::State,
}

/// Walks of initramfs files, keyed by path and whether it is a UKI's `.initrd`; and the scans
/// of their layers (services, foreign content), done once for the checks that need them.
#[derive(Default)]
pub struct Walks(
    pub(super) RefCell<HashMap<WalkKey, Result<Initramfs, Reason>>>,
    pub(super) RefCell<HashMap<WalkKey, Result<std::rc::Rc<LayerScan>, Reason>>>,
);

/// An initramfs file's tree key, and whether the walk is of its UKI `.initrd`.
pub type WalkKey = (String, bool);

/// Why a check did not pass: the image is wrong (`Fail`), or it could not be judged (`Error`).
#[derive(Debug)]
pub enum Verdict {
    Fail(String),
    Error(String),
    /// A pass, with what tdg would be stricter about than Talos is.
    Warn(String),
    /// Not judged, on purpose (`--no-boot`): never a pass.
    Skip(String),
}

pub type Judged = Result<(), Verdict>;

impl Verdict {
    /// A reader's error as a failure of the image.
    pub fn failed(e: impl std::fmt::Display) -> Self {
        Verdict::Fail(e.to_string())
    }
}

pub fn fail<T>(m: impl Into<String>) -> Result<T, Verdict> {
    Err(Verdict::Fail(m.into()))
}

impl Subject<'_> {
    pub(super) fn golden(&self, path: &std::path::Path) -> Option<&super::golden::Pending> {
        self.goldens.iter().find(|g| g.golden == path)
    }

    /// A file a check names: its tree key (symlinks in its parents followed) and entry, or a
    /// failure that says what is there instead.
    pub(super) fn locate(&self, path: &str) -> Result<(String, Entry), Verdict> {
        let tree = &self.flat.tree;
        let p = tree
            .resolve(path, false)
            .map_err(|e| Verdict::Error(e.to_string()))?;
        match tree.get(&p) {
            Some(e) => Ok((p, e)),
            None => fail(format!("missing{}", near(self, &p))),
        }
    }

    /// The spooled content of a path (as the tree keys it).
    pub(super) fn open(&self, path: &str) -> Result<File, Verdict> {
        let p = self.flat.spooled(self.spool, path).map_err(|e| match e {
            ContentError::NotCaptured(_) => Verdict::Error(e.to_string()),
            _ => Verdict::Fail(e.to_string()),
        })?;
        File::open(p).map_err(|e| Verdict::Error(format!("reading spooled {path}: {e}")))
    }

    /// At most `cap` bytes of a path's content, as UTF-8 text.
    pub(super) fn read_text(&self, path: &str, cap: u64) -> Result<String, Verdict> {
        let mut text = String::new();
        self.open(path)?
            .take(cap)
            .read_to_string(&mut text)
            .map_err(|_| Verdict::Fail("is not UTF-8 text".into()))?;
        Ok(text)
    }
}

/// The size of a file's content; anything else fails.
pub(super) fn content_size(e: &Entry) -> Result<u64, Verdict> {
    match (e.kind.has_content(), e.size) {
        (true, Some(n)) => Ok(n),
        _ => fail(format!("expected a file, found {}", describe(e))),
    }
}

pub(super) fn describe(e: &Entry) -> String {
    match (&e.kind, &e.link) {
        (Kind::Symlink, Some(t)) => format!("a symlink -> {t}"),
        (k, _) => format!("a {}", k.name()),
    }
}

/// Up to five siblings of a missing path, to make a typo obvious.
fn near(s: &Subject<'_>, path: &str) -> String {
    let tree = &s.flat.tree;
    let mut parent = path;
    while let Some((p, _)) = parent.rsplit_once('/') {
        parent = p;
        if tree.get(parent).is_some_and(|e| e.kind == Kind::Dir) {
            let kids: Vec<String> = tree.paths_in(parent);
            let names: Vec<&str> = kids
                .iter()
                .take(5)
                .map(|k| k.rsplit('/').next().unwrap_or(k))
                .collect();
            let more = if kids.len() > 5 {
                format!(", … {} more", kids.len() - 5)
            } else {
                String::new()
            };
            return format!(
                " ({parent}/ holds: {}{more})",
                if names.is_empty() {
                    "nothing".to_string()
                } else {
                    names.join(", ")
                }
            );
        }
    }
    String::new()
}

pub(super) fn bytes(n: u64) -> String {
    crate::spec::size::ByteSize(n).to_string()
}

/// At most 80 characters of a value, for a message.
pub(super) fn clip(s: &str) -> String {
    if s.chars().count() > 80 {
        format!("{}…", s.chars().take(80).collect::<String>())
    } else {
        s.to_string()
    }
}

pub(super) fn join<T: std::fmt::Display>(v: &[T]) -> String {
    v.iter()
        .map(|x| x.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether and how the spec's boot ran.
#[derive(Debug, Default)]
pub enum BootState {
    /// No check asked for a boot.
    #[default]
    NotAsked,
    /// `--no-boot`.
    Disabled,
    Done(crate::boot::Booted),
    /// The image has nothing to boot (no kernel or initramfs where the spec says): the image
    /// is wrong, so the checks fail.
    Unbootable(String),
    /// The boot could not be run (no QEMU, no firmware): not evaluated.
    Failed(String),
}
