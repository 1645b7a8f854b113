//! The flattened image as an index: path → type, mode, owner, size, sha256, link target. No
//! file content lives here; content that checks need is spooled to disk by digest.

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;

use crate::digest::Digest;

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    File,
    Dir,
    Symlink,
    Hardlink,
    Char,
    Block,
    Fifo,
}

impl Kind {
    pub fn letter(self) -> char {
        match self {
            Kind::File => 'f',
            Kind::Dir => 'd',
            Kind::Symlink => 'l',
            Kind::Hardlink => 'h',
            Kind::Char => 'c',
            Kind::Block => 'b',
            Kind::Fifo => 'p',
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Kind::File => "file",
            Kind::Dir => "dir",
            Kind::Symlink => "symlink",
            Kind::Hardlink => "hardlink",
            Kind::Char => "char device",
            Kind::Block => "block device",
            Kind::Fifo => "fifo",
        }
    }
    /// Regular content: a file, or a hardlink (which shares its target's content).
    pub fn has_content(self) -> bool {
        matches!(self, Kind::File | Kind::Hardlink)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub kind: Kind,
    /// Permission bits plus setuid/setgid/sticky (`mode & 0o7777`).
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    /// Content size and digest, for files and hardlinks.
    pub size: Option<u64>,
    pub sha256: Option<Digest>,
    /// Symlink target as written, or the hardlink's target path in the image.
    pub link: Option<String>,
    pub device: Option<(u32, u32)>,
}

impl Entry {
    pub fn implicit_dir() -> Self {
        Entry {
            kind: Kind::Dir,
            mode: 0o755,
            uid: 0,
            gid: 0,
            size: None,
            sha256: None,
            link: None,
            device: None,
        }
    }
}

/// Sorted path → entry. Paths are relative to the image root, `/`-separated, without `./`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tree {
    pub entries: BTreeMap<String, Entry>,
    /// Hard links to symlinks, path → the first name of the symlink's inode. Each such path is
    /// a `Symlink` entry (what any reader sees there); this keeps the shared inode for an
    /// export, which links only while both are still that symlink.
    pub symlink_links: BTreeMap<String, String>,
}

impl Tree {
    pub fn get(&self, path: &str) -> Option<&Entry> {
        self.entries.get(path)
    }

    /// `path` and everything below it.
    pub fn subtree_keys(&self, path: &str) -> Vec<String> {
        let mut keys: Vec<String> = self.children_keys(path);
        if self.entries.contains_key(path) {
            keys.push(path.to_string());
        }
        keys
    }

    /// Everything strictly below `path` (`""` is the root).
    pub fn children_keys(&self, path: &str) -> Vec<String> {
        if path.is_empty() {
            return self.entries.keys().cloned().collect();
        }
        // '0' is the character after '/', so this range is exactly the keys under "path/".
        let (lo, hi) = (format!("{path}/"), format!("{path}0"));
        self.entries.range(lo..hi).map(|(k, _)| k.clone()).collect()
    }

    pub fn remove_subtree(&mut self, path: &str) {
        for k in self.subtree_keys(path) {
            self.entries.remove(&k);
        }
    }

    /// Resolves a path through the symlinks in the tree so far, like a chroot would: absolute
    /// targets start at the image root and `..` stops there. The last component is followed
    /// only when `follow_last` (a directory named by an opaque marker).
    pub fn resolve(&self, path: &str, follow_last: bool) -> anyhow::Result<String> {
        // The resolved path so far, grown and cut in place: each component costs its own
        // length, not the path's.
        let mut out = String::new();
        let mut todo: VecDeque<String> = path
            .split('/')
            .filter(|c| !c.is_empty())
            .map(str::to_string)
            .collect();
        let mut hops = 0;
        while let Some(c) = todo.pop_front() {
            match c.as_str() {
                "." => continue,
                ".." => {
                    out.truncate(out.rfind('/').unwrap_or(0));
                    continue;
                }
                _ => {}
            }
            let last = todo.is_empty();
            let before = out.len();
            if !out.is_empty() {
                out.push('/');
            }
            out.push_str(&c);
            if !last || follow_last {
                if let Some(Entry {
                    kind: Kind::Symlink,
                    link: Some(target),
                    ..
                }) = self.get(&out)
                {
                    hops += 1;
                    if hops > 40 {
                        anyhow::bail!("too many levels of symbolic links resolving '{path}'");
                    }
                    out.truncate(if target.starts_with('/') { 0 } else { before });
                    for comp in target.split('/').filter(|s| !s.is_empty()).rev() {
                        todo.push_front(comp.to_string());
                    }
                    continue;
                }
            }
        }
        Ok(out)
    }

    /// The `tdg tree` listing, one line per entry, sorted by path.
    pub fn listing(&self) -> String {
        let mut out = Vec::new();
        self.write_listing(&mut out)
            .expect("writing to memory does not fail");
        String::from_utf8(out).expect("paths are UTF-8")
    }

    /// The listing, a line at a time: a million entries never sit in memory as text.
    pub fn write_listing(&self, w: &mut (impl std::io::Write + ?Sized)) -> std::io::Result<()> {
        for (path, e) in &self.entries {
            w.write_all(line(path, e).as_bytes())?;
            w.write_all(b"\n")?;
        }
        Ok(())
    }
}

/// `<type> <mode> <uid>:<gid> <size> <sha256> <path>[ -> symlink | => hardlink | = major:minor]`
pub fn line(path: &str, e: &Entry) -> String {
    let mut s = String::with_capacity(120 + path.len());
    let size = e.size.map_or("-".to_string(), |n| n.to_string());
    let sha = e.sha256.as_ref().map_or("-", |d| d.hex());
    let _ = write!(
        s,
        "{} {:04o} {}:{} {} {} {}",
        e.kind.letter(),
        e.mode,
        e.uid,
        e.gid,
        size,
        sha,
        escape(path)
    );
    match (e.kind, &e.link, e.device) {
        (Kind::Symlink, Some(t), _) => {
            let _ = write!(s, " -> {}", escape(t));
        }
        (Kind::Hardlink, Some(t), _) => {
            let _ = write!(s, " => {}", escape(t));
        }
        (Kind::Char | Kind::Block, _, Some((ma, mi))) => {
            let _ = write!(s, " = {ma}:{mi}");
        }
        _ => {}
    }
    s
}

/// Keeps one entry per line whatever bytes a path holds.
fn escape(p: &str) -> std::borrow::Cow<'_, str> {
    if p.chars().any(|c| c.is_control() || c == '\\') {
        p.chars()
            .flat_map(|c| {
                if c.is_control() || c == '\\' {
                    c.escape_default().collect::<Vec<_>>()
                } else {
                    vec![c]
                }
            })
            .collect::<String>()
            .into()
    } else {
        p.into()
    }
}
