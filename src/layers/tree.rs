//! The flattened image as an index: path → type, mode, owner, size, sha256, link target. No
//! file content lives here; content that checks need is spooled to disk by digest.

use std::collections::{BTreeMap, HashMap, VecDeque};

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
    pub fn from_letter(c: char) -> Option<Kind> {
        KINDS.into_iter().find(|k| k.letter() == c)
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

/// No entry, or no node.
const NONE: u32 = u32::MAX;
/// The image root: a node without an entry, parent of every top-level name.
const ROOT: u32 = 0;

/// Owner ids that do not fit `u32` (or are `u32::MAX`) are kept beside the nodes.
const WIDE: u32 = u32::MAX;
const HAS_SIZE: u8 = 1;
const HAS_SHA256: u8 = 2;
/// The content is spooled (`Flattened::spooled`).
const CAPTURED: u8 = 4;
const KINDS: [Kind; 7] = [
    Kind::File,
    Kind::Dir,
    Kind::Symlink,
    Kind::Hardlink,
    Kind::Char,
    Kind::Block,
    Kind::Fifo,
];

fn kind_code(k: Kind) -> u8 {
    KINDS
        .iter()
        .position(|x| *x == k)
        .expect("every kind is listed") as u8
        + 1
}

/// One name in the tree: an entry, or a bare ancestor of entries (a tree may hold `dev/null`
/// without `dev`). Its path is its parent's path and its own name, so a million entries hold
/// their names once each and a deep path its components once. The entry is packed (88 bytes
/// a node); link targets, devices and wide owners, which few entries have, live beside it.
#[derive(Clone, Debug)]
struct Node {
    parent: u32,
    /// Children, as an unordered doubly linked list (order is made when walking).
    first: u32,
    next: u32,
    prev: u32,
    /// The name, `name_len` bytes at `name_at` in the tree's name arena.
    name_at: usize,
    name_len: u32,
    /// Index in `links`, or NONE.
    link: u32,
    size: u64,
    mode: u32,
    uid: u32,
    gid: u32,
    /// 0: no entry; else `kind_code`.
    kind: u8,
    flags: u8,
    sha256: [u8; 32],
}

impl Node {
    fn bare(parent: u32, name_at: usize, name_len: u32, next: u32) -> Self {
        Node {
            parent,
            first: NONE,
            next,
            prev: NONE,
            name_at,
            name_len,
            link: NONE,
            size: 0,
            mode: 0,
            uid: 0,
            gid: 0,
            kind: 0,
            flags: 0,
            sha256: [0; 32],
        }
    }

    fn has_entry(&self) -> bool {
        self.kind != 0
    }

    fn is(&self, k: Kind) -> bool {
        self.kind == kind_code(k)
    }
}

/// The image as path → entry, walked in sorted path order. Paths are relative to the image
/// root, `/`-separated, without `./`.
#[derive(Clone)]
pub struct Tree {
    nodes: Vec<Node>,
    names: String,
    links: Vec<String>,
    free_links: Vec<u32>,
    devices: HashMap<u32, (u32, u32)>,
    wide: HashMap<u32, (u64, u64)>,
    /// Node ids, found by (parent, name).
    index: hashbrown::HashTable<u32>,
    hasher: std::hash::RandomState,
    free: Vec<u32>,
    len: usize,
    /// The last parent `insert` found, while no node has been freed: entries come sorted, so
    /// most find their parent here without walking their path.
    hint: Option<(String, u32)>,
    /// The last directory `make_parents` made sure of, likewise.
    made: Option<String>,
    /// Hard links to symlinks, path → the first name of the symlink's inode. Each such path is
    /// a `Symlink` entry (what any reader sees there); this keeps the shared inode for an
    /// export, which links only while both are still that symlink.
    pub symlink_links: BTreeMap<String, String>,
}

impl Default for Tree {
    fn default() -> Self {
        Tree {
            nodes: vec![Node::bare(NONE, 0, 0, NONE)],
            names: String::new(),
            links: Vec::new(),
            free_links: Vec::new(),
            devices: HashMap::new(),
            wide: HashMap::new(),
            index: hashbrown::HashTable::new(),
            hasher: Default::default(),
            free: Vec::new(),
            len: 0,
            hint: None,
            made: None,
            symlink_links: BTreeMap::new(),
        }
    }
}

impl PartialEq for Tree {
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len
            && self.symlink_links == other.symlink_links
            && self.iter().eq(other.iter())
    }
}
impl Eq for Tree {}

impl std::fmt::Debug for Tree {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl FromIterator<(String, Entry)> for Tree {
    fn from_iter<I: IntoIterator<Item = (String, Entry)>>(iter: I) -> Self {
        let mut t = Tree::default();
        for (p, e) in iter {
            t.insert(&p, e);
        }
        t
    }
}

impl Tree {
    fn name(&self, id: u32) -> &str {
        let n = &self.nodes[id as usize];
        &self.names[n.name_at..n.name_at + n.name_len as usize]
    }

    fn hash(&self, parent: u32, name: &str) -> u64 {
        use std::hash::BuildHasher;
        self.hasher.hash_one((parent, name))
    }

    fn child(&self, parent: u32, name: &str) -> Option<u32> {
        let h = self.hash(parent, name);
        self.index
            .find(h, |&id| {
                self.nodes[id as usize].parent == parent && self.name(id) == name
            })
            .copied()
    }

    /// The node of `path` (`""` is the root).
    /// Starts from the last parent `insert` found when `path` is in it: entries come
    /// sorted, so flattening looks up most paths without walking them again.
    fn find(&self, path: &str) -> Option<u32> {
        if let (Some((dir, id)), Some((parent, name))) = (&self.hint, path.rsplit_once('/')) {
            if dir == parent && !name.is_empty() {
                return self.child(*id, name);
            }
        }
        path.split('/')
            .filter(|c| !c.is_empty())
            .try_fold(ROOT, |at, c| self.child(at, c))
    }

    fn add_child(&mut self, parent: u32, name: &str) -> u32 {
        let name_at = self.names.len();
        self.names.push_str(name);
        let next = self.nodes[parent as usize].first;
        let name_len = u32::try_from(name.len()).expect("a path component under 4 GiB");
        let node = Node::bare(parent, name_at, name_len, next);
        let id = match self.free.pop() {
            Some(id) => {
                self.nodes[id as usize] = node;
                id
            }
            None => {
                self.nodes.push(node);
                u32::try_from(self.nodes.len() - 1).expect("fewer than 2^32 nodes")
            }
        };
        if next != NONE {
            self.nodes[next as usize].prev = id;
        }
        self.nodes[parent as usize].first = id;
        let h = self.hash(parent, name);
        let Tree { index, nodes, .. } = self;
        let hasher = &self.hasher;
        let names = &self.names;
        index.insert_unique(h, id, |&other| {
            use std::hash::BuildHasher;
            let n = &nodes[other as usize];
            hasher.hash_one((n.parent, &names[n.name_at..n.name_at + n.name_len as usize]))
        });
        id
    }

    /// The node of `path`, made (as a bare ancestor) where missing.
    fn make(&mut self, path: &str) -> u32 {
        let mut at = ROOT;
        for c in path.split('/').filter(|c| !c.is_empty()) {
            at = match self.child(at, c) {
                Some(id) => id,
                None => self.add_child(at, c),
            };
        }
        at
    }

    fn children(&self, id: u32) -> impl Iterator<Item = u32> + '_ {
        std::iter::successors(
            Some(self.nodes[id as usize].first).filter(|&c| c != NONE),
            |&c| Some(self.nodes[c as usize].next).filter(|&n| n != NONE),
        )
    }

    /// Frees `id` and everything below it.
    fn free_subtree(&mut self, id: u32) {
        let n = &self.nodes[id as usize];
        let (parent, prev, next) = (n.parent, n.prev, n.next);
        if prev != NONE {
            self.nodes[prev as usize].next = next;
        } else {
            self.nodes[parent as usize].first = next;
        }
        if next != NONE {
            self.nodes[next as usize].prev = prev;
        }
        let mut todo = vec![id];
        while let Some(at) = todo.pop() {
            todo.extend(self.children(at));
            let h = self.hash(self.nodes[at as usize].parent, self.name(at));
            if let Ok(slot) = self.index.find_entry(h, |&x| x == at) {
                slot.remove();
            }
            self.clear(at);
            self.nodes[at as usize].first = NONE;
            self.free.push(at);
        }
        self.hint = None;
        self.made = None;
        self.prune(parent);
    }

    /// A bare ancestor left with no children goes too.
    fn prune(&mut self, mut id: u32) {
        while id != ROOT {
            let n = &self.nodes[id as usize];
            if n.has_entry() || n.first != NONE {
                return;
            }
            let parent = n.parent;
            self.free_subtree(id);
            id = parent;
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The entry of node `id`, unpacked.
    fn entry(&self, id: u32) -> Option<Entry> {
        let n = &self.nodes[id as usize];
        if !n.has_entry() {
            return None;
        }
        let (uid, gid) = if n.uid == WIDE {
            self.wide[&id]
        } else {
            (u64::from(n.uid), u64::from(n.gid))
        };
        Some(Entry {
            kind: KINDS[n.kind as usize - 1],
            mode: n.mode,
            uid,
            gid,
            size: (n.flags & HAS_SIZE != 0).then_some(n.size),
            sha256: (n.flags & HAS_SHA256 != 0).then(|| Digest::from_raw(n.sha256)),
            link: (n.link != NONE).then(|| self.links[n.link as usize].clone()),
            device: self.devices.get(&id).copied(),
        })
    }

    /// Removes node `id`'s entry, keeping the node.
    fn clear(&mut self, id: u32) {
        let n = &mut self.nodes[id as usize];
        if n.has_entry() {
            self.len -= 1;
        }
        n.kind = 0;
        n.flags = 0;
        if n.link != NONE {
            self.links[n.link as usize] = String::new();
            self.free_links.push(n.link);
            n.link = NONE;
        }
        if n.uid == WIDE {
            self.wide.remove(&id);
        }
        n.uid = 0;
        self.devices.remove(&id);
    }

    /// Puts `e` in node `id`, replacing any entry there.
    fn set(&mut self, id: u32, e: Entry) {
        self.clear(id);
        self.len += 1;
        let link = match e.link {
            Some(l) => match self.free_links.pop() {
                Some(slot) => {
                    self.links[slot as usize] = l;
                    slot
                }
                None => {
                    self.links.push(l);
                    u32::try_from(self.links.len() - 1).expect("fewer than 2^32 links")
                }
            },
            None => NONE,
        };
        if let Some(d) = e.device {
            self.devices.insert(id, d);
        }
        let (uid, gid) = match (u32::try_from(e.uid), u32::try_from(e.gid)) {
            (Ok(u), Ok(g)) if u != WIDE && g != WIDE => (u, g),
            _ => {
                self.wide.insert(id, (e.uid, e.gid));
                (WIDE, WIDE)
            }
        };
        let n = &mut self.nodes[id as usize];
        n.kind = kind_code(e.kind);
        n.mode = e.mode;
        n.uid = uid;
        n.gid = gid;
        n.link = link;
        n.flags = 0;
        if let Some(size) = e.size {
            n.size = size;
            n.flags |= HAS_SIZE;
        }
        if let Some(d) = e.sha256 {
            n.sha256 = d.raw();
            n.flags |= HAS_SHA256;
        }
    }

    pub fn get(&self, path: &str) -> Option<Entry> {
        self.find(path).and_then(|id| self.entry(id))
    }

    /// The kind of the entry at `path`, without unpacking the rest of it.
    pub fn kind(&self, path: &str) -> Option<Kind> {
        self.find(path)
            .map(|id| &self.nodes[id as usize])
            .filter(|n| n.has_entry())
            .map(|n| KINDS[n.kind as usize - 1])
    }

    pub fn contains(&self, path: &str) -> bool {
        self.kind(path).is_some()
    }

    /// Puts `entry` at `path`, keeping what is below it; returns the entry it replaced.
    pub fn insert(&mut self, path: &str, entry: Entry) -> Option<Entry> {
        let (parent, name) = path.rsplit_once('/').unwrap_or(("", path));
        let at = match &self.hint {
            Some((dir, id)) if dir == parent => *id,
            _ => {
                let id = self.make(parent);
                self.hint = Some((parent.to_string(), id));
                id
            }
        };
        if name.is_empty() {
            return None;
        }
        let id = self
            .child(at, name)
            .unwrap_or_else(|| self.add_child(at, name));
        if entry.kind != Kind::Dir && self.made.as_deref() == Some(path) {
            self.made = None;
        }
        let old = self.entry(id);
        self.set(id, entry);
        old
    }

    /// Removes `path` and everything below it.
    pub fn remove_subtree(&mut self, path: &str) {
        if let Some(id) = self.find(path).filter(|&id| id != ROOT) {
            self.free_subtree(id);
        }
    }

    /// Removes everything strictly below `path` (`""` is the root).
    pub fn remove_below(&mut self, path: &str) {
        if let Some(id) = self.find(path) {
            let kids: Vec<u32> = self.children(id).collect();
            for k in kids {
                self.free_subtree(k);
            }
        }
    }

    /// Whether `path`'s content was spooled while flattening.
    pub fn captured(&self, path: &str) -> bool {
        self.find(path)
            .is_some_and(|id| self.nodes[id as usize].flags & CAPTURED != 0)
    }

    pub fn set_captured(&mut self, path: &str, captured: bool) {
        if let Some(id) = self.find(path).filter(|&id| id != ROOT) {
            let n = &mut self.nodes[id as usize];
            if captured {
                n.flags |= CAPTURED;
            } else {
                n.flags &= !CAPTURED;
            }
        }
    }

    /// Makes every ancestor of `path` a directory: a missing one, or one that is not a
    /// directory, becomes an implicit directory (what an unpacker's `mkdir -p` leaves).
    pub fn make_parents(&mut self, path: &str) {
        let Some((dir, _)) = path.rsplit_once('/') else {
            return;
        };
        if self.made.as_deref() == Some(dir) {
            return;
        }
        let mut at = ROOT;
        for c in dir.split('/').filter(|c| !c.is_empty()) {
            at = match self.child(at, c) {
                Some(id) => id,
                None => self.add_child(at, c),
            };
            if !self.nodes[at as usize].is(Kind::Dir) {
                self.set(at, Entry::implicit_dir());
            }
        }
        self.made = Some(dir.to_string());
        self.hint = Some((dir.to_string(), at));
    }

    /// Every entry, in sorted path order.
    pub fn iter(&self) -> Walk<'_> {
        Walk::new(self, ROOT, String::new(), false)
    }

    /// Every entry, each directory after everything below it (to set directories' modes last).
    pub fn iter_dirs_last(&self) -> Walk<'_> {
        Walk::new(self, ROOT, String::new(), true)
    }

    /// The entries strictly below `path` (`""` is the root), in sorted path order.
    pub fn iter_below(&self, path: &str) -> Walk<'_> {
        match self.find(path) {
            Some(ROOT) => self.iter(),
            Some(id) => Walk::new(self, id, format!("{path}/"), false),
            None => Walk {
                tree: self,
                stack: Vec::new(),
                prefix: String::new(),
                dirs_last: false,
            },
        }
    }

    /// The paths strictly below `path` (`""` is the root), sorted.
    pub fn paths_below(&self, path: &str) -> Vec<String> {
        self.iter_below(path).map(|(p, _)| p).collect()
    }

    /// The paths directly in `dir`, sorted.
    pub fn paths_in(&self, dir: &str) -> Vec<String> {
        let Some(id) = self.find(dir) else {
            return Vec::new();
        };
        let mut out: Vec<String> = self
            .children(id)
            .filter(|&c| self.nodes[c as usize].has_entry())
            .map(|c| {
                if id == ROOT {
                    self.name(c).to_string()
                } else {
                    format!("{dir}/{}", self.name(c))
                }
            })
            .collect();
        out.sort();
        out
    }

    /// Resolves a path through the symlinks in the tree, like a chroot would: absolute
    /// targets start at the image root and `..` stops there. The last component is followed
    /// only when `follow_last` (a directory named by an opaque marker). Each component costs
    /// one lookup from its parent's node, never a walk of the path so far.
    pub fn resolve(&self, path: &str, follow_last: bool) -> anyhow::Result<String> {
        let mut out = String::new();
        // The node of each component of `out` (NONE below a missing one).
        let mut nodes: Vec<u32> = Vec::new();
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
                    nodes.pop();
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
            let id = match nodes.last().copied().unwrap_or(ROOT) {
                NONE => NONE,
                at => self.child(at, &c).unwrap_or(NONE),
            };
            if (!last || follow_last) && id != NONE {
                let n = &self.nodes[id as usize];
                if n.is(Kind::Symlink) && n.link != NONE {
                    let target = &self.links[n.link as usize];
                    hops += 1;
                    if hops > 40 {
                        anyhow::bail!("too many levels of symbolic links resolving '{path}'");
                    }
                    if target.starts_with('/') {
                        out.clear();
                        nodes.clear();
                    } else {
                        out.truncate(before);
                    }
                    for comp in target.split('/').filter(|s| !s.is_empty()).rev() {
                        todo.push_front(comp.to_string());
                    }
                    continue;
                }
            }
            nodes.push(id);
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
        for (path, e) in self.iter() {
            w.write_all(line(&path, &e).as_bytes())?;
            w.write_all(b"\n")?;
        }
        Ok(())
    }
}

/// A walk of a tree's entries, yielding each path whole. In sorted order, a directory's own
/// entry (`a`) and what is below it (`a/…`) sort apart: `a-b` falls between them. So each
/// directory's children are ordered by name for their entries and by `name/` for their
/// contents, which is exactly byte order of the whole paths.
pub struct Walk<'a> {
    tree: &'a Tree,
    stack: Vec<Frame>,
    prefix: String,
    dirs_last: bool,
}

struct Frame {
    node: u32,
    /// (child, whether this is the walk into it rather than its own entry)
    events: Vec<(u32, bool)>,
    at: usize,
    /// `prefix`'s length before this frame's name was added.
    base: usize,
}

impl<'a> Walk<'a> {
    fn new(tree: &'a Tree, node: u32, prefix: String, dirs_last: bool) -> Self {
        let mut w = Walk {
            tree,
            stack: Vec::new(),
            prefix,
            dirs_last,
        };
        let base = w.prefix.len();
        w.push(node, base);
        w
    }

    fn push(&mut self, node: u32, base: usize) {
        let t = self.tree;
        let mut events = Vec::new();
        for c in t.children(node) {
            let n = &t.nodes[c as usize];
            let below = n.first != NONE;
            if n.has_entry() && !(self.dirs_last && below) {
                events.push((c, false));
            }
            if below {
                events.push((c, true));
            }
        }
        if !self.dirs_last {
            let key = |&(c, into): &(u32, bool)| t.name(c).bytes().chain(into.then_some(b'/'));
            events.sort_unstable_by(|a, b| key(a).cmp(key(b)));
        }
        self.stack.push(Frame {
            node,
            events,
            at: 0,
            base,
        });
    }
}

impl<'a> Iterator for Walk<'a> {
    type Item = (String, Entry);

    fn next(&mut self) -> Option<Self::Item> {
        let t = self.tree;
        loop {
            let frame = self.stack.last_mut()?;
            if frame.at == frame.events.len() {
                let done = self.stack.pop().expect("a frame");
                self.prefix.truncate(done.base);
                if self.dirs_last && !self.stack.is_empty() {
                    if let Some(e) = t.entry(done.node) {
                        return Some((format!("{}{}", self.prefix, t.name(done.node)), e));
                    }
                }
                continue;
            }
            let (c, into) = frame.events[frame.at];
            frame.at += 1;
            if into {
                let base = self.prefix.len();
                self.prefix.push_str(t.name(c));
                self.prefix.push('/');
                self.push(c, base);
                continue;
            }
            let e = t.entry(c).expect("an entry event");
            return Some((format!("{}{}", self.prefix, t.name(c)), e));
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn file(n: u64) -> Entry {
        Entry {
            kind: Kind::File,
            size: Some(n),
            sha256: Some(Digest::of(&n.to_le_bytes())),
            ..Entry::implicit_dir()
        }
    }

    /// Paths from a small alphabet that holds the bytes either side of `/` (`-`, `.`, `0`),
    /// where walking a tree and sorting whole paths disagree unless done with care.
    fn paths(seed: u64, n: usize) -> Vec<String> {
        let mut x = seed;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let alphabet = ["a", "a-", "a.b", "a0", "b", " ", "ab", "-"];
        (0..n)
            .map(|_| {
                let depth = 1 + next() % 4;
                (0..depth)
                    .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                    .collect::<Vec<_>>()
                    .join("/")
            })
            .collect()
    }

    #[test]
    fn a_walk_is_in_byte_order_of_whole_paths_as_a_sorted_map_is() {
        for seed in 1..40 {
            let mut want = BTreeMap::new();
            let mut t = Tree::default();
            for (i, p) in paths(seed, 60).into_iter().enumerate() {
                want.insert(p.clone(), file(i as u64));
                t.insert(&p, file(i as u64));
            }
            let got: Vec<(String, Entry)> = t.iter().map(|(p, e)| (p, e.clone())).collect();
            let want: Vec<(String, Entry)> = want.into_iter().collect();
            assert_eq!(got, want, "seed {seed}");
            assert_eq!(t.len(), got.len());
        }
    }

    #[test]
    fn dirs_last_puts_each_entry_after_everything_below_it() {
        let mut t = Tree::default();
        for p in paths(7, 200) {
            t.insert(&p, Entry::implicit_dir());
        }
        let order: Vec<String> = t.iter_dirs_last().map(|(p, _)| p).collect();
        assert_eq!(order.len(), t.len());
        for (i, p) in order.iter().enumerate() {
            let below = format!("{p}/");
            assert!(
                !order[i..].iter().any(|q| q.starts_with(&below)),
                "{p} before something below it"
            );
        }
    }

    #[test]
    fn removal_takes_the_subtree_or_what_is_below_and_bare_ancestors_with_it() {
        let mut t: Tree = ["a", "a/b", "a/b/c", "a-b", "x/y/z"]
            .into_iter()
            .map(|p| (p.to_string(), Entry::implicit_dir()))
            .collect();
        assert!(t.get("x/y").is_none(), "a bare ancestor is not an entry");
        t.remove_subtree("a/b");
        assert_eq!(t.paths_below(""), ["a", "a-b", "x/y/z"]);
        t.remove_below("a");
        t.remove_subtree("x/y/z");
        assert_eq!(t.paths_below(""), ["a", "a-b"]);
        assert!(
            t.find("x").is_none(),
            "bare ancestors went with their last entry"
        );
        t.remove_below("");
        assert!(t.is_empty());
        // Freed nodes are reused and found again.
        t.insert("a/b", file(1));
        assert_eq!(t.get("a/b"), Some(file(1)));
        assert_eq!(t.paths_in("a"), ["a/b"]);
    }

    #[test]
    fn an_entry_reads_back_as_put_whatever_it_holds() {
        let odd = [
            Entry {
                kind: Kind::Char,
                device: Some((u32::MAX, 3)),
                uid: 1 << 32,
                gid: 7,
                mode: 0o7777,
                ..Entry::implicit_dir()
            },
            Entry {
                uid: u64::from(u32::MAX),
                gid: u64::MAX,
                ..file(0)
            },
            Entry {
                kind: Kind::Hardlink,
                link: Some("x\n".into()),
                ..file(9)
            },
            Entry {
                kind: Kind::Symlink,
                link: Some(String::new()),
                ..Entry::implicit_dir()
            },
            Entry {
                kind: Kind::File,
                size: None,
                sha256: None,
                ..Entry::implicit_dir()
            },
        ];
        let mut t = Tree::default();
        for (i, e) in odd.iter().enumerate() {
            t.insert(&format!("d/{i}"), e.clone());
        }
        for (i, e) in odd.iter().enumerate() {
            assert_eq!(t.get(&format!("d/{i}")).as_ref(), Some(e), "{i}");
        }
        // Replacing and removing frees what sat beside the node; what is put again is whole.
        for round in 0..3 {
            for (i, e) in odd.iter().rev().enumerate() {
                assert!(t.insert(&format!("d/{i}"), e.clone()).is_some());
            }
            t.remove_below("d");
            assert!(t.is_empty(), "round {round}");
            for (i, e) in odd.iter().enumerate() {
                t.insert(&format!("d/{i}"), e.clone());
            }
        }
        assert_eq!((t.wide.len(), t.devices.len()), (2, 1));
        // At most three links were held at once (two, and one replacing another).
        assert_eq!(t.links.len(), 3, "link slots are reused");
    }

    #[test]
    fn resolve_follows_symlinks_within_the_root() {
        let link = |to: &str| Entry {
            kind: Kind::Symlink,
            link: Some(to.into()),
            ..Entry::implicit_dir()
        };
        let mut t = Tree::default();
        t.insert("usr", Entry::implicit_dir());
        t.insert("usr/lib", Entry::implicit_dir());
        t.insert("lib", link("usr/lib"));
        t.insert("up", link("../../../usr"));
        t.insert("abs", link("/lib"));
        t.insert("loop", link("loop"));
        assert_eq!(t.resolve("lib/x", false).unwrap(), "usr/lib/x");
        assert_eq!(t.resolve("up/lib", false).unwrap(), "usr/lib");
        assert_eq!(t.resolve("abs/m", false).unwrap(), "usr/lib/m");
        assert_eq!(t.resolve("lib", false).unwrap(), "lib");
        assert_eq!(t.resolve("lib", true).unwrap(), "usr/lib");
        assert_eq!(t.resolve("no/such/../lib", true).unwrap(), "no/lib");
        assert!(t.resolve("loop/x", false).is_err());
    }
}
