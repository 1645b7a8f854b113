//! `tdg export`: writes a flattened tree to a directory. Every create, write, link, chown and
//! chmod is made relative to a directory handle opened beneath the target without following a
//! symlink (`openat2` with `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS`), and modes are set on the
//! file's own handle, never through a path: so nothing lands outside the directory whatever the
//! image holds, nor when the directory is changed under the export. The tree is written into a
//! temporary sibling and renamed into place at the end, so a failed or interrupted export leaves
//! nothing.
//! Hard links are made after everything else, to the inode's first name, so they hold in any
//! name order and across layers, as tar and umoci keep them.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use anyhow::{bail, Context, Result};

use super::flatten::{Flattened, Spool};
use super::tree::Kind;

/// What could not be reproduced exactly (device nodes without privilege, ownership as non-root).
#[derive(Debug, Default)]
pub struct ExportNotes {
    pub skipped_devices: Vec<String>,
    pub ownership_kept: bool,
}

/// Refuses a destination that is not an empty real directory (or absent): checked before the
/// image is fetched and spooled, and again before writing.
pub fn check_destination(dest: &Path) -> Result<()> {
    match fs::symlink_metadata(dest) {
        Err(_) => Ok(()),
        Ok(m) if m.file_type().is_symlink() || !m.is_dir() => bail!(
            "{} is not a directory; export writes into an empty directory",
            dest.display()
        ),
        Ok(_) if fs::read_dir(dest)?.next().is_some() => bail!(
            "{} is not empty; export writes into an empty directory",
            dest.display()
        ),
        Ok(_) => Ok(()),
    }
}

pub fn write_tree(flat: &Flattened, spool: &Spool, dest: &Path) -> Result<ExportNotes> {
    check_destination(dest)?;
    let parent = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    // Removed on error, on drop and on SIGINT/SIGTERM (`temps`).
    let staging = crate::temps::Dir::new(parent, ".tdg-export-")
        .with_context(|| format!("creating a directory in {}", parent.display()))?;
    let notes = write_into(flat, spool, staging.path())?;
    fs::set_permissions(staging.path(), fs::Permissions::from_mode(0o755))?;
    check_destination(dest)?;
    // rename(2) replaces an empty directory.
    staging
        .rename_to(dest)
        .with_context(|| format!("moving the export into {}", dest.display()))?;
    Ok(notes)
}

fn write_into(flat: &Flattened, spool: &Spool, dest: &Path) -> Result<ExportNotes> {
    let root = is_root();
    let mut notes = ExportNotes {
        ownership_kept: root,
        ..Default::default()
    };
    let mut at = Beneath::open(dest)?;
    let pause = pause_hook();
    for (path, e) in flat.tree.iter() {
        let path = path.as_str();
        if let Some((at_path, fifo)) = &pause {
            if at_path == path {
                // A test's hook: wait here until the test says go (by writing to the FIFO).
                let _ = std::io::Read::read(&mut fs::File::open(fifo)?, &mut [0u8; 1]);
            }
        }
        let (dir, name) = at.parent(path)?;
        let owner = (e.uid as u32, e.gid as u32);
        let made = match e.kind {
            Kind::Dir => {
                rfs::mkdirat(dir, name, Mode::from_raw_mode(0o700)).map_err(|err| io_at(path, err))
            }
            Kind::File => write_file(flat, spool, path, dir, name, e.mode, root.then_some(owner)),
            // Once every file is there (below).
            Kind::Hardlink => continue,
            Kind::Symlink if flat.tree.symlink_links.contains_key(path) => continue,
            Kind::Symlink => make_symlink(
                dir,
                name,
                e.link.as_deref().unwrap_or_default(),
                path,
                root.then_some(owner),
            ),
            Kind::Char | Kind::Block | Kind::Fifo => {
                if !mknod(dir, name, e.kind, e.mode, e.device.unwrap_or((0, 0))) {
                    notes.skipped_devices.push(path.to_string());
                    continue;
                }
                own_and_mode(dir, name, root.then_some(owner), Some(e.mode), path)
            }
        };
        made?;
    }
    links(flat, spool, &mut at, root)?;
    // Directories' modes and owners last, deepest first, so a read-only directory does not
    // stop its children; each set on a handle opened without following a symlink.
    for (path, e) in flat.tree.iter_dirs_last() {
        if e.kind == Kind::Dir {
            let path = path.as_str();
            let fd = at.open_dir(path)?;
            if root {
                rfs::fchown(&fd, Some(uid(e.uid)), Some(gid(e.gid)))
                    .map_err(|err| io_at(path, err))?;
            }
            rfs::fchmod(&fd, Mode::from_raw_mode(e.mode & 0o7777))
                .map_err(|err| io_at(path, err))?;
        }
    }
    Ok(notes)
}

use rustix::fs::{self as rfs, AtFlags, Mode, OFlags, ResolveFlags};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

/// The export directory, as a handle every write is made relative to: a path below it is
/// opened with `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)` (or one `O_NOFOLLOW` component
/// at a time where the kernel lacks `openat2`), so a directory swapped for a symlink while the
/// export runs makes the write fail instead of land outside. The last parent is kept open:
/// entries come sorted, so each path costs one open of its parent at most.
struct Beneath {
    root: OwnedFd,
    last: Option<(String, OwnedFd)>,
}

impl Beneath {
    fn open(dir: &Path) -> Result<Self> {
        let root = rfs::open(
            dir,
            OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .with_context(|| format!("opening {}", dir.display()))?;
        Ok(Beneath { root, last: None })
    }

    /// The directory holding `path`, and the last component.
    fn parent<'p>(&mut self, path: &'p str) -> Result<(BorrowedFd<'_>, &'p str)> {
        let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
        if dir.is_empty() {
            return Ok((self.root.as_fd(), name));
        }
        if self.last.as_ref().is_none_or(|(d, _)| d != dir) {
            let fd = self.open_dir(dir)?;
            self.last = Some((dir.to_string(), fd));
        }
        let (_, fd) = self.last.as_ref().expect("set just above");
        Ok((fd.as_fd(), name))
    }

    fn open_dir(&self, rel: &str) -> Result<OwnedFd> {
        let flags = OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::RDONLY | OFlags::CLOEXEC;
        let rel = if rel.is_empty() { "." } else { rel };
        let resolve =
            ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS;
        match rfs::openat2(&self.root, rel, flags, Mode::empty(), resolve) {
            Err(rustix::io::Errno::NOSYS) => {
                let mut fd = rfs::openat(&self.root, ".", flags, Mode::empty())
                    .map_err(|e| io_at(rel, e))?;
                for c in rel.split('/').filter(|c| !c.is_empty() && *c != ".") {
                    if c == ".." {
                        bail!("refusing to write through {rel}: it climbs out");
                    }
                    fd = rfs::openat(&fd, c, flags, Mode::empty()).map_err(|e| io_at(rel, e))?;
                }
                Ok(fd)
            }
            r => r.map_err(|e| io_at(rel, e)),
        }
    }
}

fn io_at(path: &str, e: rustix::io::Errno) -> anyhow::Error {
    anyhow::anyhow!("writing /{path}: {}", std::io::Error::from(e))
}

fn uid(id: u64) -> rfs::Uid {
    rfs::Uid::from_raw(id as u32)
}

fn gid(id: u64) -> rfs::Gid {
    rfs::Gid::from_raw(id as u32)
}

/// A regular file, created beside nothing (`O_EXCL`, `O_NOFOLLOW`), its content copied in and
/// its owner and mode set on the handle.
fn write_file(
    flat: &Flattened,
    spool: &Spool,
    path: &str,
    dir: BorrowedFd<'_>,
    name: &str,
    mode: u32,
    owner: Option<(u32, u32)>,
) -> Result<()> {
    let spooled = flat
        .spooled(spool, path)
        .with_context(|| format!("no content spooled for {path}"))?;
    let fd = rfs::openat(
        dir,
        name,
        OFlags::CREATE | OFlags::EXCL | OFlags::WRONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o600),
    )
    .map_err(|e| io_at(path, e))?;
    let mut out = fs::File::from(fd);
    let mut src =
        fs::File::open(spooled).with_context(|| format!("reading the spooled /{path}"))?;
    std::io::copy(&mut src, &mut out).with_context(|| format!("writing /{path}"))?;
    // The owner first: chown clears setuid and setgid.
    if let Some((u, g)) = owner {
        rfs::fchown(
            &out,
            Some(rfs::Uid::from_raw(u)),
            Some(rfs::Gid::from_raw(g)),
        )
        .map_err(|e| io_at(path, e))?;
    }
    rfs::fchmod(&out, Mode::from_raw_mode(mode & 0o7777)).map_err(|e| io_at(path, e))?;
    Ok(())
}

fn make_symlink(
    dir: BorrowedFd<'_>,
    name: &str,
    target: &str,
    path: &str,
    owner: Option<(u32, u32)>,
) -> Result<()> {
    rfs::symlinkat(target, dir, name).map_err(|e| io_at(path, e))?;
    own_and_mode(dir, name, owner, None, path)
}

/// Owner (not following a symlink) and, for a node, mode, set relative to its directory.
fn own_and_mode(
    dir: BorrowedFd<'_>,
    name: &str,
    owner: Option<(u32, u32)>,
    mode: Option<u32>,
    path: &str,
) -> Result<()> {
    if let Some((u, g)) = owner {
        rfs::chownat(
            dir,
            name,
            Some(rfs::Uid::from_raw(u)),
            Some(rfs::Gid::from_raw(g)),
            AtFlags::SYMLINK_NOFOLLOW,
        )
        .map_err(|e| io_at(path, e))?;
    }
    if let Some(m) = mode {
        // A device node or FIFO, opened as a path only (never read or written) and changed
        // through that handle: its /proc link leads to that very inode, whatever its name is
        // now, where a chmod by name could follow a symlink swapped in.
        let fd = rfs::openat(
            dir,
            name,
            OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| io_at(path, e))?;
        use std::os::fd::AsRawFd;
        rfs::chmod(
            format!("/proc/self/fd/{}", fd.as_raw_fd()),
            Mode::from_raw_mode(m & 0o7777),
        )
        .map_err(|e| io_at(path, e))?;
    }
    Ok(())
}

/// Hard links, to files and to symlinks, each to its inode's first name, written in pass one.
/// A link is made only while that name still is what the link was made to; a first name
/// replaced in a later layer leaves the link with the old content, as a copy.
fn links(flat: &Flattened, spool: &Spool, at: &mut Beneath, root: bool) -> Result<()> {
    for (path, e) in flat.tree.iter() {
        let path = path.as_str();
        let first = match (e.kind, &e.link, flat.tree.symlink_links.get(path)) {
            (Kind::Hardlink, Some(first), _) | (Kind::Symlink, _, Some(first)) => first.as_str(),
            (Kind::Hardlink, None, _) => "",
            _ => continue,
        };
        let same = flat.tree.get(first).is_some_and(|f| {
            f.kind
                == if e.kind == Kind::Hardlink {
                    Kind::File
                } else {
                    Kind::Symlink
                }
                && f.sha256 == e.sha256
                && f.link
                    == if e.kind == Kind::Symlink {
                        e.link.clone()
                    } else {
                        f.link.clone()
                    }
                && f.mode == e.mode
                && f.uid == e.uid
                && f.gid == e.gid
        });
        let owner = root.then_some((e.uid as u32, e.gid as u32));
        if same {
            let (first_dir, first_name) = first.rsplit_once('/').unwrap_or(("", first));
            let from = at.open_dir(first_dir)?;
            let (dir, name) = at.parent(path)?;
            // linkat without AT_SYMLINK_FOLLOW: a symlink is linked itself.
            if rfs::linkat(&from, first_name, dir, name, AtFlags::empty()).is_ok() {
                continue;
            }
        }
        let (dir, name) = at.parent(path)?;
        match e.kind {
            Kind::Hardlink => write_file(flat, spool, path, dir, name, e.mode, owner)?,
            _ => make_symlink(
                dir,
                name,
                e.link.as_deref().unwrap_or_default(),
                path,
                owner,
            )?,
        }
    }
    Ok(())
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

fn mknod(
    dir: BorrowedFd<'_>,
    name: &str,
    kind: Kind,
    mode: u32,
    (major, minor): (u32, u32),
) -> bool {
    let ty = match kind {
        Kind::Char => rfs::FileType::CharacterDevice,
        Kind::Block => rfs::FileType::BlockDevice,
        _ => rfs::FileType::Fifo,
    };
    rfs::mknodat(
        dir,
        name,
        ty,
        Mode::from_raw_mode(mode & 0o7777),
        rfs::makedev(major, minor),
    )
    .is_ok()
}

/// `TDG_TEST_EXPORT_PAUSE=PATH:FIFO`: a test hook that makes the export wait before writing
/// PATH until FIFO is written to, so a trial can change the destination at a fixed point.
fn pause_hook() -> Option<(String, String)> {
    let v = std::env::var("TDG_TEST_EXPORT_PAUSE").ok()?;
    let (p, f) = v.split_once(':')?;
    Some((p.to_string(), f.to_string()))
}
