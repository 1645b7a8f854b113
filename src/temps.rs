//! Temporaries in the cache (`tmp/spool-*`, `tmp/ingest-*`, build work directories) that do not
//! outlive the run: each is registered while alive and removed on SIGINT/SIGTERM before tdg
//! exits, and each holds a shared `flock` so a later run's sweep can tell a live one (another
//! tdg on the same cache, even in another container) from junk a crash left. The sweep removes
//! entries older than [`STALE_AFTER`] that nobody holds.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

/// A temporary nobody holds and nobody touched for this long is junk.
pub const STALE_AFTER: Duration = Duration::from_secs(24 * 3600);

static LIVE: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
static DEFER: AtomicBool = AtomicBool::new(false);
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Keeps a temporary registered (and locked) while alive.
#[derive(Debug)]
pub struct Held {
    path: PathBuf,
    _lock: Option<File>,
}

fn live() -> std::sync::MutexGuard<'static, Vec<PathBuf>> {
    LIVE.lock().unwrap_or_else(|e| e.into_inner())
}

/// Makes a temporary with `make` and registers it for removal on a signal, under the
/// registry's lock, which a signal's cleanup holds until tdg exits: a temporary is either not
/// made yet or registered, never made and missed (a signal landing between the two used to
/// leave it behind). Takes a shared lock on it.
pub fn made<T>(
    make: impl FnOnce() -> std::io::Result<T>,
    path_of: impl Fn(&T) -> &Path,
) -> std::io::Result<(T, Held)> {
    let mut live = live();
    let t = make()?;
    let path = path_of(&t).to_path_buf();
    live.push(path.clone());
    drop(live);
    let lock = File::open(&path).ok().filter(|f| {
        // SAFETY: flock on an fd we own.
        unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_SH | libc::LOCK_NB) == 0 }
    });
    Ok((t, Held { path, _lock: lock }))
}

impl Drop for Held {
    fn drop(&mut self) {
        let mut l = live();
        if let Some(i) = l.iter().rposition(|p| *p == self.path) {
            l.swap_remove(i);
        }
    }
}

/// A temporary directory under `parent`, held.
#[derive(Debug)]
pub struct Dir {
    // Dropped first: unregistered, then removed.
    _held: Held,
    dir: tempfile::TempDir,
}

impl Dir {
    pub fn new(parent: &Path, prefix: &str) -> std::io::Result<Self> {
        let (dir, held) = made(
            || tempfile::Builder::new().prefix(prefix).tempdir_in(parent),
            |d| d.path(),
        )?;
        Ok(Dir { _held: held, dir })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Renames the directory to `to` and stops treating it as temporary.
    pub fn rename_to(self, to: &Path) -> std::io::Result<()> {
        std::fs::rename(self.dir.path(), to)?;
        // Already moved: nothing left to remove.
        let _ = self.dir.keep();
        Ok(())
    }
}

/// Removes what nobody holds and nobody touched for [`STALE_AFTER`] from `tmp`.
pub fn sweep(tmp: &Path) {
    let Ok(entries) = std::fs::read_dir(tmp) else {
        return;
    };
    let now = SystemTime::now();
    for e in entries.flatten() {
        let p = e.path();
        let old = e
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|t| now.duration_since(t).unwrap_or_default() > STALE_AFTER);
        if !old {
            continue;
        }
        // Held by a live tdg: its shared lock makes this exclusive one fail.
        let free = File::open(&p).is_ok_and(|f| {
            // SAFETY: flock on an fd we own; released when `f` closes.
            unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) == 0 }
        });
        if free {
            let _ = if p.is_dir() {
                std::fs::remove_dir_all(&p)
            } else {
                std::fs::remove_file(&p)
            };
        }
    }
}

/// Removes every registered temporary and exits with `code`, holding the registry's lock to
/// the end so no temporary is made (and left) after the cleanup: what a signal does.
fn remove_all_and_exit(code: i32) -> ! {
    let live = live();
    for p in live.iter() {
        let _ = if p.is_dir() {
            std::fs::remove_dir_all(p)
        } else {
            std::fs::remove_file(p)
        };
    }
    std::process::exit(code)
}

/// Takes SIGINT and SIGTERM on a thread of their own, for the whole process: call first in
/// `main`, before any thread starts (the mask is inherited; child processes get a clean one
/// from `std::process`). A signal removes the temporaries and exits 128+signal, unless
/// [`defer`] is on: then it is only noted, for a loop that cleans up itself (a QEMU boot).
pub fn handle_signals() {
    // SAFETY: sigset manipulation on a local; the mask is set before other threads exist.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        if libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) != 0 {
            return;
        }
        std::thread::spawn(move || loop {
            let mut sig = 0;
            if libc::sigwait(&set, &mut sig) != 0 {
                continue;
            }
            INTERRUPTED.store(true, Ordering::SeqCst);
            if DEFER.load(Ordering::SeqCst) {
                continue;
            }
            remove_all_and_exit(128 + sig);
        });
    }
}

/// While on, a signal is only noted ([`interrupted`]) and the running loop cleans up.
pub fn defer(on: bool) {
    DEFER.store(on, Ordering::SeqCst);
}

/// Whether SIGINT or SIGTERM arrived (when [`handle_signals`] took them).
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn age(p: &Path) {
        let old = SystemTime::now() - STALE_AFTER - Duration::from_secs(60);
        File::open(p).unwrap().set_modified(old).unwrap();
    }

    #[test]
    fn the_sweep_removes_old_unheld_temporaries_only() {
        let tmp = tempfile::tempdir().unwrap();
        let junk = tmp.path().join("spool-junk");
        std::fs::create_dir(&junk).unwrap();
        std::fs::write(junk.join("f"), "x").unwrap();
        let live = Dir::new(tmp.path(), "spool-").unwrap();
        let file = tmp.path().join("ingest-old");
        std::fs::write(&file, "x").unwrap();
        let fresh = tmp.path().join("ingest-fresh");
        std::fs::write(&fresh, "x").unwrap();
        for p in [&junk, &file, &live.path().to_path_buf()] {
            age(p);
        }
        sweep(tmp.path());
        assert!(!junk.exists() && !file.exists(), "stale junk stayed");
        assert!(live.path().exists(), "a held directory was swept");
        assert!(fresh.exists(), "a fresh temporary was swept");
        assert!(LIVE.lock().unwrap().contains(&live.path().to_path_buf()));
        let p = live.path().to_path_buf();
        drop(live);
        assert!(!p.exists() && !LIVE.lock().unwrap().contains(&p));
    }
}
