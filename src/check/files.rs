//! Checks on paths of the image: a file's existence, type, mode, size, sha256 and text, and
//! paths that must be absent.

use std::io::Read;
use std::sync::Arc;

use super::subject::{bytes, clip, content_size, describe, fail, Judged, Subject, Verdict};
use super::{Needs, Planned};
use crate::digest::Digest;
use crate::layers::tree::{Entry, Kind as EntryKind};
use crate::limits::MAX_CONTENT_TEXT;
use crate::spec::{FileExpectation, FileType, SizeBounds};

pub const FILES: &str = "files";
pub const ABSENT: &str = "absent";
pub const EXISTS: &str = "exists";
pub const TYPE: &str = "type";
pub const MODE: &str = "mode";
pub const SIZE: &str = "size";
pub const SHA256: &str = "sha256";
pub const CONTAINS: &str = "contains";
pub const MATCHES: &str = "matches";
pub const LACKS: &str = "lacks";
pub const LACKS_MATCHING: &str = "lacks_matching";
pub const OWNER: &str = "owner";
pub const EXECUTABLE: &str = "executable";

/// `files::<path>::<what>`: the name of a check on one file, for every family.
pub fn file_check_name(path: &str, what: &str) -> String {
    format!("{FILES}::{path}::{what}")
}

/// A check on one path of the image, as the other families shape theirs.
#[derive(Debug)]
pub struct Check {
    pub path: String,
    pub what: What,
}

#[derive(Debug)]
pub enum What {
    Exists,
    Type(FileType),
    Mode(u32),
    Size(SizeBounds),
    Sha256(Digest),
    Contains(Vec<String>),
    Matches(Vec<regex::bytes::Regex>),
    Lacks(Vec<String>),
    LacksMatching(Vec<regex::bytes::Regex>),
    Owner((u64, u64)),
    Executable(bool),
    /// `absent::<path>`: nothing may be there.
    Absent,
}

pub fn plan(f: &FileExpectation) -> Vec<Arc<dyn Planned>> {
    let mut whats: Vec<What> = Vec::new();
    whats.extend(f.kind.map(What::Type));
    whats.extend(f.mode.map(What::Mode));
    whats.extend(f.size.map(What::Size));
    whats.extend(f.sha256.clone().map(What::Sha256));
    if !f.contains.is_empty() {
        whats.push(What::Contains(f.contains.clone()));
    }
    if !f.matches.is_empty() {
        whats.push(What::Matches(f.matches.clone()));
    }
    if !f.lacks.is_empty() {
        whats.push(What::Lacks(f.lacks.clone()));
    }
    if !f.lacks_matching.is_empty() {
        whats.push(What::LacksMatching(f.lacks_matching.clone()));
    }
    whats.extend(f.owner.map(What::Owner));
    whats.extend(f.executable.map(What::Executable));
    whats.into_iter().map(|w| on(&f.path, w)).collect()
}

fn on(path: &str, what: What) -> Arc<dyn Planned> {
    Arc::new(Check {
        path: path.to_string(),
        what,
    })
}

/// A file entry no family checks anything of: it must exist.
pub fn exists(f: &FileExpectation) -> Arc<dyn Planned> {
    on(&f.path, What::Exists)
}

pub fn plan_absent(paths: &[String]) -> Vec<Arc<dyn Planned>> {
    paths.iter().map(|p| on(p, What::Absent)).collect()
}

impl Planned for Check {
    fn name(&self) -> String {
        let what = match self.what {
            What::Absent => return format!("{ABSENT}::{}", self.path),
            What::Exists => EXISTS,
            What::Type(_) => TYPE,
            What::Mode(_) => MODE,
            What::Size(_) => SIZE,
            What::Sha256(_) => SHA256,
            What::Contains(_) => CONTAINS,
            What::Matches(_) => MATCHES,
            What::Lacks(_) => LACKS,
            What::LacksMatching(_) => LACKS_MATCHING,
            What::Owner(_) => OWNER,
            What::Executable(_) => EXECUTABLE,
        };
        file_check_name(&self.path, what)
    }

    fn needs(&self) -> Needs {
        match self.what {
            What::Contains(_) | What::Matches(_) | What::Lacks(_) | What::LacksMatching(_) => {
                Needs::paths([self.path.clone()])
            }
            _ => Needs::default(),
        }
    }

    fn judge(&self, s: &Subject<'_>) -> Judged {
        if let What::Absent = self.what {
            return absent(s, &self.path);
        }
        let (path, e) = s.locate(&self.path)?;
        match &self.what {
            What::Exists | What::Absent => Ok(()),
            What::Contains(_) | What::Matches(_) | What::Lacks(_) | What::LacksMatching(_) => {
                text(&self.what, &read_bytes(s, &path, &e)?)
            }
            what => metadata(what, &e),
        }
    }
}

/// What the tree index says of an entry: type, mode, size, digest, owner.
fn metadata(what: &What, e: &Entry) -> Judged {
    let failed = |ok: bool, why: &dyn Fn() -> String| if ok { Ok(()) } else { fail(why()) };
    match what {
        What::Type(want) => {
            let ok = match want {
                FileType::File => e.kind.has_content(),
                FileType::Dir => e.kind == EntryKind::Dir,
                FileType::Symlink => e.kind == EntryKind::Symlink,
            };
            failed(ok, &|| {
                format!("expected {}, found {}", type_word(*want), describe(e))
            })
        }
        What::Mode(want) => failed(e.mode == *want, &|| {
            format!("expected mode {want:04o}, found {:04o}", e.mode)
        }),
        What::Size(b) => size(b, content_size(e)?),
        What::Sha256(want) => {
            content_size(e)?;
            match &e.sha256 {
                Some(got) => failed(got == want, &|| {
                    format!("expected sha256 {}, found {}", want.hex(), got.hex())
                }),
                None => fail("has no content"),
            }
        }
        What::Owner((uid, gid)) => failed((e.uid, e.gid) == (*uid, *gid), &|| {
            format!("expected owner {uid}:{gid}, found {}:{}", e.uid, e.gid)
        }),
        What::Executable(want) => {
            let x = e.mode & 0o111 != 0;
            failed(x == *want, &|| {
                let not = if *want { "not " } else { "" };
                format!("{not}executable (mode {:04o})", e.mode)
            })
        }
        // Judged by `judge` or `text`; listed so a new variant cannot pass unjudged.
        What::Exists
        | What::Absent
        | What::Contains(_)
        | What::Matches(_)
        | What::Lacks(_)
        | What::LacksMatching(_) => unreachable!("not a metadata check"),
    }
}

fn size(b: &SizeBounds, size: u64) -> Judged {
    if let (Some(min), Some(max)) = (b.min, b.max) {
        if min == max && size != min {
            return fail(format!(
                "size {} is not the expected {}",
                bytes(size),
                bytes(min)
            ));
        }
    }
    if let Some(min) = b.min.filter(|m| size < *m) {
        return fail(format!(
            "size {} is below the minimum {}",
            bytes(size),
            bytes(min)
        ));
    }
    if let Some(max) = b.max.filter(|m| size > *m) {
        return fail(format!(
            "size {} is above the maximum {}",
            bytes(size),
            bytes(max)
        ));
    }
    Ok(())
}

/// What a file's bytes hold or lack.
fn text(what: &What, text: &[u8]) -> Judged {
    let quoted = |n: &String| format!("'{}'", clip(n));
    let pattern = |re: &regex::bytes::Regex| format!("/{}/", clip(re.as_str()));
    let (verb, listed): (&str, Vec<String>) = match what {
        What::Contains(needles) => (
            "does not contain",
            needles
                .iter()
                .filter(|n| !contains(text, n.as_bytes()))
                .map(quoted)
                .collect(),
        ),
        What::Matches(res) => (
            "has no match for",
            res.iter()
                .filter(|re| !re.is_match(text))
                .map(pattern)
                .collect(),
        ),
        What::Lacks(needles) => (
            "contains",
            needles
                .iter()
                .filter(|n| !n.is_empty() && contains(text, n.as_bytes()))
                .map(quoted)
                .collect(),
        ),
        What::LacksMatching(res) => (
            "matches",
            res.iter()
                .filter_map(|re| {
                    re.find(text)
                        .map(|m| format!("{} at byte {}", pattern(re), m.start()))
                })
                .collect(),
        ),
        What::Exists
        | What::Absent
        | What::Type(_)
        | What::Mode(_)
        | What::Size(_)
        | What::Sha256(_)
        | What::Owner(_)
        | What::Executable(_) => unreachable!("not a text check"),
    };
    lacking(verb, &listed, text.len())
}

fn lacking(verb: &str, missing: &[String], len: usize) -> Judged {
    if missing.is_empty() {
        Ok(())
    } else {
        fail(format!("{verb} {} ({len} bytes)", missing.join(", ")))
    }
}

fn absent(s: &Subject<'_>, path: &str) -> Judged {
    let tree = &s.flat.tree;
    let p = tree
        .resolve(path, false)
        .unwrap_or_else(|_| path.to_string());
    match tree.get(&p) {
        None => Ok(()),
        Some(e) => {
            let extra = if e.kind == EntryKind::Dir {
                format!(", {} entries below", tree.paths_below(&p).len())
            } else {
                String::new()
            };
            fail(format!("present: {} ({}{extra})", p, e.kind.name()))
        }
    }
}

/// A file's content for the text checks, up to [`MAX_CONTENT_TEXT`].
fn read_bytes(
    s: &Subject<'_>,
    path: &str,
    e: &crate::layers::tree::Entry,
) -> Result<Vec<u8>, Verdict> {
    let size = content_size(e)?;
    if size > MAX_CONTENT_TEXT {
        return fail(format!(
            "{} is too large for text checks (limit {})",
            bytes(size),
            bytes(MAX_CONTENT_TEXT)
        ));
    }
    let mut buf = Vec::with_capacity(size as usize);
    s.open(path)?
        .take(MAX_CONTENT_TEXT)
        .read_to_end(&mut buf)
        .map_err(|err| Verdict::Error(format!("reading spooled content of {path}: {err}")))?;
    Ok(buf)
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

fn type_word(t: FileType) -> &'static str {
    match t {
        FileType::File => "a file",
        FileType::Dir => "a dir",
        FileType::Symlink => "a symlink",
    }
}
