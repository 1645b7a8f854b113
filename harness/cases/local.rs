//! Local sources are read every time and only as regular files: a tampered layout blob fails
//! on a warm run too; a FIFO, device or symlink out of the layout is refused at once; and a
//! reader that closes tdg's standard output ends tdg quietly.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};

use super::cli::{expect_exit, text, Tdg};

/// `tdg demo DIR`'s layout and spec, verified once (cold) by `tdg`.
fn demo(tdg: &Tdg, dir: &Path) -> Result<(PathBuf, PathBuf)> {
    expect_exit(&tdg.run(["demo".as_ref(), dir.as_os_str()])?, 0)?;
    Ok((dir.join("layout"), dir.join("spec.yaml")))
}

/// The layout's layer blobs (the largest first): every one the image's manifest names.
fn layer_blobs(layout: &Path) -> Result<Vec<PathBuf>> {
    let mut blobs: Vec<(u64, PathBuf)> = std::fs::read_dir(layout.join("blobs/sha256"))?
        .flatten()
        .map(|e| (e.metadata().map(|m| m.len()).unwrap_or(0), e.path()))
        .collect();
    blobs.sort_by_key(|b| std::cmp::Reverse(b.0));
    Ok(blobs.into_iter().map(|(_, p)| p).collect())
}

/// A byte flipped in a layout's layer after a passing run: the warm run reads the layout again
/// and fails on the digest, as the cold run does; `oci-archive:` likewise.
pub fn a_tampered_layout_blob_fails_warm_and_cold() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let tdg = Tdg::new()?;
    let (layout, spec) = demo(&tdg, &tmp.path().join("demo"))?;
    let spec = spec.to_str().context("utf-8")?;
    // Warm: the tree index of this manifest is cached now.
    expect_exit(&tdg.run(["verify", spec])?, 0)?;
    let layer = layer_blobs(&layout)?
        .into_iter()
        .next()
        .context("no blob")?;
    super::pull::flip_byte(&layer, std::fs::metadata(&layer)?.len() / 2)?;
    for run in ["warm", "again"] {
        let out = tdg.run(["verify", spec])?;
        let t = text(&out);
        ensure!(
            out.status.code() != Some(0) && t.contains("digest"),
            "{run}: a tampered blob passed:\n{t}"
        );
    }
    // A fresh cache: the same.
    let out = Tdg::new()?.run(["verify", spec])?;
    ensure!(out.status.code() != Some(0), "cold: {}", text(&out));
    Ok(())
}

/// Runs `tdg` with `args`, killing it after `limit`: returns its output, or fails if it hung.
fn within(tdg: &Tdg, args: &[&str], limit: Duration) -> Result<(std::process::Output, Duration)> {
    let start = Instant::now();
    let mut child = tdg
        .command(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    loop {
        if child.try_wait()?.is_some() {
            return Ok((child.wait_with_output()?, start.elapsed()));
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            anyhow::bail!("tdg {args:?} hung for {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn mkfifo(path: &Path) -> Result<()> {
    let c = std::ffi::CString::new(path.to_str().context("utf-8")?)?;
    ensure!(
        unsafe { libc::mkfifo(c.as_ptr(), 0o600) } == 0,
        "mkfifo {}",
        path.display()
    );
    Ok(())
}

/// A FIFO as `index.json` or as a layer blob, a symlink out of the layout, and a device: each
/// ends in a short error naming the file (the FIFO used to hang `tdg tree` forever).
pub fn a_layout_of_fifos_devices_or_outward_symlinks_is_refused_at_once() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let tdg = Tdg::new()?;
    let (layout, _) = demo(&tdg, &tmp.path().join("demo"))?;
    let secret = tmp.path().join("outside");
    std::fs::write(&secret, "not the layout's\n")?;
    let layer = layer_blobs(&layout)?
        .into_iter()
        .next()
        .context("no blob")?;
    type Spoil = fn(&Path, &Path) -> Result<()>;
    let cases: [(&str, &str, Spoil); 4] = [
        ("fifo index", "not a regular file", |l, _| {
            let i = l.join("index.json");
            std::fs::remove_file(&i)?;
            mkfifo(&i)
        }),
        ("fifo blob", "not a regular file", |_, b| {
            std::fs::remove_file(b)?;
            mkfifo(b)
        }),
        ("device blob", "not a regular file", |_, b| {
            std::fs::remove_file(b)?;
            // /dev/zero's numbers (1, 5): read, it never ends.
            let c = std::ffi::CString::new(b.to_str().context("utf-8")?)?;
            let dev = libc::makedev(1, 5);
            ensure!(
                unsafe { libc::mknod(c.as_ptr(), libc::S_IFCHR | 0o600, dev) } == 0,
                "mknod (the trials run as root)"
            );
            Ok(())
        }),
        ("outward symlink", "symlink out of the layout", |l, b| {
            std::fs::remove_file(b)?;
            Ok(std::os::unix::fs::symlink(l.join("../../outside"), b)?)
        }),
    ];
    for (name, says, spoil) in cases {
        let copy = tmp.path().join(name.replace(' ', "-"));
        crate::fixtures::run(Command::new("cp").arg("-a").arg(&layout).arg(&copy))?;
        let blob = copy
            .join("blobs/sha256")
            .join(layer.file_name().context("name")?);
        spoil(&copy, &blob)?;
        let image = format!("oci:{}:v1.11.5", copy.display());
        let (out, took) = within(&tdg, &["tree", &image], Duration::from_secs(20))?;
        let t = expect_exit(&out, 2).with_context(|| name.to_string())?;
        ensure!(t.contains(says), "{name}: {t}");
        ensure!(
            !t.contains("not the layout's"),
            "{name}: quoted the outside file: {t}"
        );
        eprintln!("  {name}: refused in {took:?}");
    }
    Ok(())
}

/// `tdg tree … | true`: the reader has closed the pipe before tdg writes. tdg ends with 0 and
/// no panic (it used to exit 101, "failed printing to stdout: Broken pipe").
pub fn a_closed_pipe_ends_tdg_quietly() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let tdg = Tdg::new()?;
    let (layout, _) = demo(&tdg, &tmp.path().join("demo"))?;
    let image = format!("oci:{}:v1.11.5", layout.display());
    let mut fds = [0; 2];
    ensure!(unsafe { libc::pipe(fds.as_mut_ptr()) } == 0, "pipe");
    // The read end closed first: every write tdg makes meets EPIPE.
    unsafe { libc::close(fds[0]) };
    let write_end = unsafe { <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(fds[1]) };
    let out = tdg
        .command(["tree", image.as_str()])
        .stdout(Stdio::from(write_end))
        .stderr(Stdio::piped())
        .output()?;
    let err = String::from_utf8_lossy(&out.stderr);
    ensure!(
        out.status.code() == Some(0) && !err.contains("panicked") && !err.contains("error"),
        "exit {:?}: {err}",
        out.status.code()
    );
    // And through a shell, as a user types it.
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "'{}' tree '{image}' | true",
            env!("CARGO_BIN_EXE_tdg")
        ))
        .env("TDG_CACHE", &tdg.cache)
        .output()?;
    ensure!(
        !String::from_utf8_lossy(&out.stderr).contains("panicked"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}
