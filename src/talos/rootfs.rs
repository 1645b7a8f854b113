//! The rootfs an initramfs unpacks into, modelled as the kernel's ramfs sees the unpacker's
//! syscalls (`init/initramfs.c` calls `init_mkdir`, `init_symlink`, `init_link`, `init_unlink`,
//! `init_rmdir` and `filp_open`; `fs/namei.c` resolves their paths). Only the shape is kept:
//! which node each name reaches, and for regular files their size and which cpio entry's body
//! they hold, never the bytes.

use std::collections::BTreeMap;

/// Symlinks followed in one lookup before `ELOOP` (`MAXSYMLINKS`, `include/linux/namei.h`).
const MAX_SYMLINKS: u32 = 40;
/// A component longer than this fails (`NAME_MAX`; `simple_lookup` in `fs/libfs.c`).
const NAME_MAX: usize = 255;
const ROOT: Id = 0;

pub type Id = u32;

#[derive(Clone, Debug)]
pub enum Node {
    Dir {
        parent: Id,
        children: BTreeMap<Box<[u8]>, Id>,
    },
    File(File),
    Symlink(Box<[u8]>),
    /// A device node, FIFO or socket.
    Special,
}

/// A regular file's inode: shared by every hard link to it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct File {
    pub size: u64,
    /// The cpio entry (its ordinal in the whole initramfs) whose body the file holds; `None`
    /// for an empty file.
    pub body: Option<u64>,
}

/// Why an operation failed, as the errno the kernel would return; the unpacker ignores all of
/// them (it carries on with the next entry), so they only matter to tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Errno {
    NoEnt,
    NotDir,
    IsDir,
    Exist,
    Loop,
    NameTooLong,
    NotEmpty,
    Perm,
    Busy,
}

/// Where a path leads: the directory holding its last component, the component's name (none
/// for `/`, `.` and `..`), and the node there if any.
#[derive(Debug)]
struct At {
    dir: Id,
    name: Option<Box<[u8]>>,
    node: Option<Id>,
}

#[derive(Clone, Debug)]
pub struct Rootfs {
    nodes: Vec<Node>,
}

impl Default for Rootfs {
    fn default() -> Self {
        Rootfs {
            nodes: vec![Node::Dir {
                parent: ROOT,
                children: BTreeMap::new(),
            }],
        }
    }
}

impl Rootfs {
    pub fn node(&self, id: Id) -> &Node {
        &self.nodes[id as usize]
    }

    /// The node `path` names, following symlinks all the way (as `open` does).
    pub fn lookup(&self, path: &[u8]) -> Option<Id> {
        self.at(path, true).ok()?.node
    }

    /// The regular file `path` leads to, following symlinks.
    pub fn file(&self, path: &[u8]) -> Option<File> {
        match self.node(self.lookup(path)?) {
            Node::File(f) => Some(*f),
            _ => None,
        }
    }

    /// `clean_path`: whatever `path` names (not following a final symlink) is removed when its
    /// type differs from `kind` (`None` for "any": the unpacker passes mode 0).
    pub fn clean_path(&mut self, path: &[u8], kind: Option<Kind>) {
        let Ok(At {
            dir,
            name: Some(name),
            node: Some(id),
        }) = self.at(path, false)
        else {
            return;
        };
        if kind == Some(self.kind(id)) {
            return;
        }
        match &self.nodes[id as usize] {
            // `rmdir` only empties what is empty.
            Node::Dir { children, .. } if !children.is_empty() => {}
            _ => {
                self.children(dir).remove(&name);
            }
        }
    }

    pub fn kind(&self, id: Id) -> Kind {
        match self.node(id) {
            Node::Dir { .. } => Kind::Dir,
            Node::File(_) => Kind::File,
            Node::Symlink(_) => Kind::Symlink,
            Node::Special => Kind::Special,
        }
    }

    /// `mkdir`, `mknod` and `symlink`: a new node where nothing is, never following a final
    /// symlink.
    pub fn create(&mut self, path: &[u8], node: Node) -> Result<Id, Errno> {
        if matches!(&node, Node::Symlink(t) if t.is_empty()) {
            return Err(Errno::NoEnt);
        }
        let at = self.at(path, false)?;
        let (dir, name) = match (at.name, at.node) {
            (Some(name), None) => (at.dir, name),
            _ => return Err(Errno::Exist),
        };
        if path.ends_with(b"/") && !matches!(node, Node::Dir { .. }) {
            return Err(Errno::NoEnt);
        }
        let node = match node {
            Node::Dir { children, .. } => Node::Dir {
                parent: dir,
                children,
            },
            n => n,
        };
        Ok(self.insert(dir, name, node))
    }

    /// `link(old, new)`: `old` is not followed if it is a symlink (`linkat` without
    /// `AT_SYMLINK_FOLLOW`), and may not be a directory.
    pub fn link(&mut self, old: &[u8], new: &[u8]) -> Result<(), Errno> {
        let target = self.at(old, false)?.node.ok_or(Errno::NoEnt)?;
        if self.kind(target) == Kind::Dir {
            return Err(Errno::Perm);
        }
        let at = self.at(new, false)?;
        match (at.name, at.node) {
            (Some(name), None) => {
                self.children(at.dir).insert(name, target);
                Ok(())
            }
            _ => Err(Errno::Exist),
        }
    }

    /// `open(path, O_WRONLY | O_CREAT [| O_TRUNC])`: follows symlinks, the final one too
    /// (creating a dangling link's target), and fails on anything but a regular file.
    pub fn open_create(&mut self, path: &[u8], truncate: bool) -> Result<Id, Errno> {
        let at = self.at(path, true)?;
        match at.node {
            Some(id) => match &mut self.nodes[id as usize] {
                Node::File(f) => {
                    if truncate {
                        *f = File::default();
                    }
                    Ok(id)
                }
                Node::Dir { .. } => Err(Errno::IsDir),
                // Writing to a device or FIFO puts nothing in the rootfs.
                _ => Err(Errno::Perm),
            },
            None => {
                let name = at.name.ok_or(Errno::IsDir)?;
                if path.ends_with(b"/") {
                    return Err(Errno::IsDir);
                }
                Ok(self.insert(at.dir, name, Node::File(File::default())))
            }
        }
    }

    pub fn file_mut(&mut self, id: Id) -> &mut File {
        match &mut self.nodes[id as usize] {
            Node::File(f) => f,
            _ => unreachable!("open_create only returns regular files"),
        }
    }

    fn insert(&mut self, dir: Id, name: Box<[u8]>, node: Node) -> Id {
        let id = self.nodes.len() as Id;
        self.nodes.push(node);
        self.children(dir).insert(name, id);
        id
    }

    fn children(&mut self, dir: Id) -> &mut BTreeMap<Box<[u8]>, Id> {
        match &mut self.nodes[dir as usize] {
            Node::Dir { children, .. } => children,
            _ => unreachable!("lookups only stop at directories"),
        }
    }

    fn at(&self, path: &[u8], follow: bool) -> Result<At, Errno> {
        let mut links = 0;
        self.resolve(ROOT, path, follow, &mut links)
    }

    /// `fs/namei.c`'s walk: relative to `start` (or the root for an absolute path), `..` at
    /// the root staying there, every symlink before the last component followed, the last
    /// one when `follow` or a trailing `/` asks.
    fn resolve(&self, start: Id, path: &[u8], follow: bool, links: &mut u32) -> Result<At, Errno> {
        if path.is_empty() {
            return Err(Errno::NoEnt);
        }
        let mut cur = if path[0] == b'/' { ROOT } else { start };
        let comps: Vec<&[u8]> = path
            .split(|b| *b == b'/')
            .filter(|c| !c.is_empty())
            .collect();
        let trailing = path.ends_with(b"/");
        let Some((last, init)) = comps.split_last() else {
            return Ok(At {
                dir: cur,
                name: None,
                node: Some(cur),
            });
        };
        for c in init {
            cur = match self.step(cur, c)? {
                Some(id) => self.enter(cur, id, links)?,
                None => return Err(Errno::NoEnt),
            };
        }
        match *last {
            b"." | b".." => {
                let id = self.step(cur, last)?.expect("dot entries exist");
                Ok(At {
                    dir: id,
                    name: None,
                    node: Some(id),
                })
            }
            name => {
                let found = self.step(cur, name)?;
                match found.map(|id| self.node(id)) {
                    Some(Node::Symlink(target)) if follow || trailing => {
                        *links += 1;
                        if *links > MAX_SYMLINKS {
                            return Err(Errno::Loop);
                        }
                        self.resolve(cur, target, true, links)
                    }
                    Some(Node::Dir { .. }) | None => Ok(At {
                        dir: cur,
                        name: Some(name.into()),
                        node: found,
                    }),
                    Some(_) if trailing => Err(Errno::NotDir),
                    Some(_) => Ok(At {
                        dir: cur,
                        name: Some(name.into()),
                        node: found,
                    }),
                }
            }
        }
    }

    /// One component from directory `dir`: `None` when the name is free.
    fn step(&self, dir: Id, c: &[u8]) -> Result<Option<Id>, Errno> {
        let Node::Dir { parent, children } = self.node(dir) else {
            return Err(Errno::NotDir);
        };
        Ok(match c {
            b"." => Some(dir),
            b".." => Some(*parent),
            c if c.len() > NAME_MAX => return Err(Errno::NameTooLong),
            c => children.get(c).copied(),
        })
    }

    /// The directory an intermediate component leads to, through symlinks.
    fn enter(&self, from: Id, id: Id, links: &mut u32) -> Result<Id, Errno> {
        match self.node(id) {
            Node::Dir { .. } => Ok(id),
            Node::Symlink(target) => {
                *links += 1;
                if *links > MAX_SYMLINKS {
                    return Err(Errno::Loop);
                }
                let at = self.resolve(from, target, true, links)?;
                match at.node {
                    Some(d) if self.kind(d) == Kind::Dir => Ok(d),
                    Some(_) => Err(Errno::NotDir),
                    None => Err(Errno::NoEnt),
                }
            }
            _ => Err(Errno::NotDir),
        }
    }

    /// Every path in the tree, depth first, with what it names (symlinks not followed).
    pub fn walk(&self, mut f: impl FnMut(&[u8], Id)) {
        let mut stack: Vec<(Vec<u8>, Id)> = vec![(Vec::new(), ROOT)];
        while let Some((prefix, dir)) = stack.pop() {
            let Node::Dir { children, .. } = self.node(dir) else {
                continue;
            };
            for (name, id) in children.iter().rev() {
                let mut path = prefix.clone();
                if !path.is_empty() {
                    path.push(b'/');
                }
                path.extend_from_slice(name);
                f(&path, *id);
                if self.kind(*id) == Kind::Dir {
                    stack.push((path, *id));
                }
            }
        }
    }

    pub fn mkdir_node() -> Node {
        Node::Dir {
            parent: ROOT,
            children: BTreeMap::new(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Dir,
    File,
    Symlink,
    Special,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(fs: &mut Rootfs, path: &str, body: u64) {
        let id = fs.open_create(path.as_bytes(), true).unwrap();
        *fs.file_mut(id) = File {
            size: 1,
            body: Some(body),
        };
    }

    #[test]
    fn writes_follow_symlinked_directories_and_dot_dot_stops_at_the_root() {
        let mut fs = Rootfs::default();
        fs.create(b"d", Node::Symlink((*b".").into())).unwrap();
        file(&mut fs, "d/extensions.yaml", 7);
        assert_eq!(fs.file(b"extensions.yaml").unwrap().body, Some(7));
        file(&mut fs, "../../x", 8);
        assert_eq!(fs.file(b"/x").unwrap().body, Some(8));
        fs.create(b"loop", Node::Symlink((*b"loop").into()))
            .unwrap();
        assert_eq!(fs.open_create(b"loop/a", true), Err(Errno::Loop));
        assert_eq!(fs.open_create(b"missing/a", true), Err(Errno::NoEnt));
        assert_eq!(fs.open_create(&[b'a'; 256], true), Err(Errno::NameTooLong));
    }

    #[test]
    fn hard_links_share_the_inode_and_clean_path_replaces_other_types() {
        let mut fs = Rootfs::default();
        file(&mut fs, "a", 1);
        fs.link(b"a", b"b").unwrap();
        file(&mut fs, "b", 2);
        assert_eq!(fs.file(b"a").unwrap().body, Some(2));
        fs.clean_path(b"a", Some(Kind::Dir));
        assert!(fs.lookup(b"a").is_none());
        assert_eq!(fs.file(b"b").unwrap().body, Some(2));
        fs.create(b"dir", Rootfs::mkdir_node()).unwrap();
        file(&mut fs, "dir/f", 3);
        fs.clean_path(b"dir", None);
        assert!(
            fs.lookup(b"dir/f").is_some(),
            "rmdir leaves a full directory"
        );
        assert_eq!(fs.link(b"dir", b"d2"), Err(Errno::Perm));
    }
}
