//! Checks on paths of the image: a file's existence, type, mode, size, sha256 and text, and
//! paths that must be absent.

use std::io::Read;
use std::sync::Arc;

use super::subject::{bytes, clip, content_size, describe, fail, Judged, Subject, Verdict};
use super::{Needs, Planned};
use crate::digest::Digest;
use crate::layers::tree::Kind as EntryKind;
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

#[derive(Debug)]
pub enum Check {
    Exists(String),
    Type(String, FileType),
    Mode(String, u32),
    Size(String, SizeBounds),
    Sha256(String, Digest),
    Contains(String, Vec<String>),
    Matches(String, Vec<regex::bytes::Regex>),
    Lacks(String, Vec<String>),
    LacksMatching(String, Vec<regex::bytes::Regex>),
    Owner(String, (u64, u64)),
    Executable(String, bool),
    Absent(String),
}

pub fn plan(f: &FileExpectation) -> Vec<Arc<dyn Planned>> {
    let p = || f.path.clone();
    let mut out: Vec<Check> = Vec::new();
    if let Some(t) = f.kind {
        out.push(Check::Type(p(), t));
    }
    if let Some(m) = f.mode {
        out.push(Check::Mode(p(), m));
    }
    if let Some(b) = f.size {
        out.push(Check::Size(p(), b));
    }
    if let Some(d) = &f.sha256 {
        out.push(Check::Sha256(p(), d.clone()));
    }
    if !f.contains.is_empty() {
        out.push(Check::Contains(p(), f.contains.clone()));
    }
    if !f.matches.is_empty() {
        out.push(Check::Matches(p(), f.matches.clone()));
    }
    if !f.lacks.is_empty() {
        out.push(Check::Lacks(p(), f.lacks.clone()));
    }
    if !f.lacks_matching.is_empty() {
        out.push(Check::LacksMatching(p(), f.lacks_matching.clone()));
    }
    if let Some(o) = f.owner {
        out.push(Check::Owner(p(), o));
    }
    if let Some(x) = f.executable {
        out.push(Check::Executable(p(), x));
    }
    out.into_iter()
        .map(|c| Arc::new(c) as Arc<dyn Planned>)
        .collect()
}

/// A file entry no family checks anything of: it must exist.
pub fn exists(f: &FileExpectation) -> Arc<dyn Planned> {
    Arc::new(Check::Exists(f.path.clone()))
}

pub fn plan_absent(paths: &[String]) -> Vec<Arc<dyn Planned>> {
    paths
        .iter()
        .map(|p| Arc::new(Check::Absent(p.clone())) as Arc<dyn Planned>)
        .collect()
}

impl Planned for Check {
    fn name(&self) -> String {
        let (path, what) = match self {
            Check::Absent(p) => return format!("{ABSENT}::{p}"),
            Check::Exists(p) => (p, EXISTS),
            Check::Type(p, _) => (p, TYPE),
            Check::Mode(p, _) => (p, MODE),
            Check::Size(p, _) => (p, SIZE),
            Check::Sha256(p, _) => (p, SHA256),
            Check::Contains(p, _) => (p, CONTAINS),
            Check::Matches(p, _) => (p, MATCHES),
            Check::Lacks(p, _) => (p, LACKS),
            Check::LacksMatching(p, _) => (p, LACKS_MATCHING),
            Check::Owner(p, _) => (p, OWNER),
            Check::Executable(p, _) => (p, EXECUTABLE),
        };
        file_check_name(path, what)
    }

    fn needs(&self) -> Needs {
        match self {
            Check::Contains(p, _)
            | Check::Matches(p, _)
            | Check::Lacks(p, _)
            | Check::LacksMatching(p, _) => Needs::paths([p.clone()]),
            _ => Needs::default(),
        }
    }

    fn judge(&self, s: &Subject<'_>) -> Judged {
        let path = match self {
            Check::Absent(p) => return absent(s, p),
            Check::Exists(p)
            | Check::Type(p, _)
            | Check::Mode(p, _)
            | Check::Size(p, _)
            | Check::Sha256(p, _)
            | Check::Contains(p, _)
            | Check::Matches(p, _)
            | Check::Lacks(p, _)
            | Check::LacksMatching(p, _)
            | Check::Owner(p, _)
            | Check::Executable(p, _) => p,
        };
        let (path, e) = s.locate(path)?;
        let e = &e;
        match self {
            Check::Exists(_) | Check::Absent(_) => Ok(()),
            Check::Type(_, want) => {
                let ok = match want {
                    FileType::File => e.kind.has_content(),
                    FileType::Dir => e.kind == EntryKind::Dir,
                    FileType::Symlink => e.kind == EntryKind::Symlink,
                };
                if ok {
                    Ok(())
                } else {
                    fail(format!(
                        "expected {}, found {}",
                        type_word(*want),
                        describe(e)
                    ))
                }
            }
            Check::Mode(_, want) => {
                if e.mode == *want {
                    Ok(())
                } else {
                    fail(format!("expected mode {want:04o}, found {:04o}", e.mode))
                }
            }
            Check::Size(_, b) => {
                let size = content_size(e)?;
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
            Check::Sha256(_, want) => {
                content_size(e)?;
                match &e.sha256 {
                    Some(got) if got == want => Ok(()),
                    Some(got) => fail(format!(
                        "expected sha256 {}, found {}",
                        want.hex(),
                        got.hex()
                    )),
                    None => fail("has no content"),
                }
            }
            Check::Contains(_, needles) => {
                let text = read_bytes(s, &path, e)?;
                let missing: Vec<String> = needles
                    .iter()
                    .filter(|n| !contains(&text, n.as_bytes()))
                    .map(|n| format!("'{}'", clip(n)))
                    .collect();
                lacking("does not contain", &missing, text.len())
            }
            Check::Matches(_, res) => {
                let text = read_bytes(s, &path, e)?;
                let missing: Vec<String> = res
                    .iter()
                    .filter(|re| !re.is_match(&text))
                    .map(|re| format!("/{}/", clip(re.as_str())))
                    .collect();
                lacking("has no match for", &missing, text.len())
            }
            Check::Lacks(_, needles) => {
                let text = read_bytes(s, &path, e)?;
                let found: Vec<String> = needles
                    .iter()
                    .filter(|n| !n.is_empty() && contains(&text, n.as_bytes()))
                    .map(|n| format!("'{}'", clip(n)))
                    .collect();
                lacking("contains", &found, text.len())
            }
            Check::LacksMatching(_, res) => {
                let text = read_bytes(s, &path, e)?;
                let found: Vec<String> = res
                    .iter()
                    .filter_map(|re| {
                        re.find(&text)
                            .map(|m| format!("/{}/ at byte {}", clip(re.as_str()), m.start()))
                    })
                    .collect();
                lacking("matches", &found, text.len())
            }
            Check::Owner(_, (uid, gid)) => {
                if (e.uid, e.gid) == (*uid, *gid) {
                    Ok(())
                } else {
                    fail(format!(
                        "expected owner {uid}:{gid}, found {}:{}",
                        e.uid, e.gid
                    ))
                }
            }
            Check::Executable(_, want) => {
                let x = e.mode & 0o111 != 0;
                if x == *want {
                    Ok(())
                } else if *want {
                    fail(format!("not executable (mode {:04o})", e.mode))
                } else {
                    fail(format!("executable (mode {:04o})", e.mode))
                }
            }
        }
    }
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
