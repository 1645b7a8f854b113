//! `tdg export`: writes a flattened tree to a directory. Every path is created by tdg below the
//! target, parents before children, and no symlink is ever followed while writing, so nothing
//! lands outside the directory whatever the image holds. The tree is written into a temporary
//! sibling and renamed into place at the end, so a failed or interrupted export leaves nothing.
//! Hard links are made after everything else, to the inode's first name, so they hold in any
//! name order and across layers, as tar and umoci keep them.

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
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
    for (path, e) in &flat.tree.entries {
        let target = dest.join(path);
        // Parents were written earlier in sorted order as real directories; check anyway,
        // since a symlinked parent is the one way a write could leave `dest`.
        if let Some(parent) = target.parent() {
            let meta = fs::symlink_metadata(parent)
                .with_context(|| format!("{}: parent missing", target.display()))?;
            if !meta.is_dir() {
                bail!(
                    "refusing to write {}: its parent is not a directory",
                    target.display()
                );
            }
        }
        match e.kind {
            Kind::Dir => fs::create_dir(&target)?,
            Kind::File => copy_content(flat, spool, path, &target)?,
            // Once every file is there (below).
            Kind::Hardlink => continue,
            Kind::Symlink if flat.tree.symlink_links.contains_key(path) => continue,
            Kind::Symlink => symlink(e.link.as_deref().unwrap_or_default(), &target)?,
            Kind::Char | Kind::Block | Kind::Fifo => {
                if !mknod(&target, e.kind, e.mode, e.device.unwrap_or((0, 0))) {
                    notes.skipped_devices.push(path.clone());
                    continue;
                }
            }
        }
        if root {
            let c = std::ffi::CString::new(target.as_os_str().as_encoded_bytes())?;
            // SAFETY: c is a valid NUL-terminated path; lchown does not follow symlinks.
            unsafe { libc::lchown(c.as_ptr(), e.uid as libc::uid_t, e.gid as libc::gid_t) };
        }
    }
    links(flat, spool, dest, root)?;
    // Modes last, deepest first, so a read-only directory does not stop its children.
    for (path, e) in flat.tree.entries.iter().rev() {
        if matches!(e.kind, Kind::Symlink) || notes.skipped_devices.contains(path) {
            continue;
        }
        fs::set_permissions(dest.join(path), fs::Permissions::from_mode(e.mode))?;
    }
    Ok(notes)
}

/// Hard links, to files and to symlinks, each to its inode's first name, written in pass one.
/// A link is made only while that name still is what the link was made to; a first name
/// replaced in a later layer leaves the link with the old content, as a copy.
fn links(flat: &Flattened, spool: &Spool, dest: &Path, root: bool) -> Result<()> {
    for (path, e) in &flat.tree.entries {
        let target = dest.join(path);
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
        // std's hard_link is linkat(2) without AT_SYMLINK_FOLLOW: a symlink is linked itself.
        if same && fs::hard_link(dest.join(first), &target).is_ok() {
            continue;
        }
        match e.kind {
            Kind::Hardlink => copy_content(flat, spool, path, &target)?,
            _ => symlink(e.link.as_deref().unwrap_or_default(), &target)?,
        }
        if root {
            let c = std::ffi::CString::new(target.as_os_str().as_encoded_bytes())?;
            // SAFETY: c is a valid NUL-terminated path; lchown does not follow symlinks.
            unsafe { libc::lchown(c.as_ptr(), e.uid as libc::uid_t, e.gid as libc::gid_t) };
        }
    }
    Ok(())
}

fn copy_content(flat: &Flattened, spool: &Spool, path: &str, target: &Path) -> Result<()> {
    let d = flat
        .content
        .get(path)
        .with_context(|| format!("no content spooled for {path}"))?;
    fs::copy(spool.path(d), target).with_context(|| format!("writing {}", target.display()))?;
    Ok(())
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn mknod(path: &Path, kind: Kind, mode: u32, (major, minor): (u32, u32)) -> bool {
    let ty = match kind {
        Kind::Char => libc::S_IFCHR,
        Kind::Block => libc::S_IFBLK,
        _ => libc::S_IFIFO,
    };
    let Ok(c) = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()) else {
        return false;
    };
    // SAFETY: c is a valid NUL-terminated path.
    unsafe {
        libc::mknod(
            c.as_ptr(),
            ty | (mode & 0o7777),
            libc::makedev(major, minor),
        ) == 0
    }
}
