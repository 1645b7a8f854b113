//! `tdg export`: writes a flattened tree to a directory. Every path is created by tdg below the
//! target, parents before children, and no symlink is ever followed while writing, so nothing
//! lands outside the directory whatever the image holds.

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
    fs::create_dir_all(dest).with_context(|| format!("creating {}", dest.display()))?;
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
            Kind::Hardlink => {
                let t = e.link.as_deref().unwrap_or_default();
                // Link only while the target still is the file the link was made to; a target
                // replaced in a later layer leaves the link with the old content, as a copy.
                let same = flat.tree.get(t).is_some_and(|te| {
                    te.kind == Kind::File
                        && te.sha256 == e.sha256
                        && te.mode == e.mode
                        && te.uid == e.uid
                        && te.gid == e.gid
                });
                if !(same && fs::hard_link(dest.join(t), &target).is_ok()) {
                    copy_content(flat, spool, path, &target)?;
                }
            }
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
    // Modes last, deepest first, so a read-only directory does not stop its children.
    for (path, e) in flat.tree.entries.iter().rev() {
        if matches!(e.kind, Kind::Symlink) || notes.skipped_devices.contains(path) {
            continue;
        }
        fs::set_permissions(dest.join(path), fs::Permissions::from_mode(e.mode))?;
    }
    Ok(notes)
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
