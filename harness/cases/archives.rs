//! `oci-archive:` and `docker-archive:` references, written by skopeo and read by tdg: the same
//! tree as the layout they came from, a tampered layer caught, a bare path refused without a
//! lookup, and a crashed run's unpacked archive swept.

use std::process::Command;

use anyhow::{ensure, Context, Result};

use tdg::oci::image::Flavor;
use tdg::oci::manifest::Compression;

use super::cli::expect_exit;
use crate::fixtures::{self, run};

fn tdg_tree(cache: &std::path::Path, reference: &str) -> Result<std::process::Output> {
    Ok(Command::new(env!("CARGO_BIN_EXE_tdg"))
        .env("TDG_CACHE", cache)
        .args(["tree", reference])
        .output()?)
}

pub fn archives_written_by_skopeo_read_as_their_layout() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let cache = tmp.path().join("cache");
    let layout = tmp.path().join("layout");
    fixtures::layout_image(
        &layout,
        "t",
        // Docker archives hold no zstd layers (skopeo refuses the conversion).
        &fixtures::whiteout_layers()
            .into_iter()
            .map(|(l, c)| {
                (
                    l,
                    if c == Compression::Zstd {
                        Compression::Gzip
                    } else {
                        c
                    },
                )
            })
            .collect::<Vec<_>>(),
        "linux/amd64",
        &Default::default(),
        Flavor::Oci,
    )?;
    let want = expect_exit(
        &tdg_tree(&cache, &format!("oci:{}:t", layout.display()))?,
        0,
    )?;
    let docker = tmp.path().join("saved.tar");
    let oci = tmp.path().join("oci.tar");
    for dest in [
        format!("docker-archive:{}:ghcr.io/a/b:v1", docker.display()),
        format!("oci-archive:{}:t", oci.display()),
    ] {
        run(Command::new("skopeo")
            .args(["copy", "--quiet"])
            .arg(format!("oci:{}:t", layout.display()))
            .arg(&dest))?;
    }
    for reference in [
        format!("docker-archive:{}", docker.display()),
        format!("docker-archive:{}:ghcr.io/a/b:v1", docker.display()),
        format!("oci-archive:{}:t", oci.display()),
    ] {
        let got = expect_exit(&tdg_tree(&cache, &reference)?, 0)?;
        ensure!(
            got == want,
            "{reference} reads another tree:\n{got}\nvs\n{want}"
        );
    }
    let out = expect_exit(
        &tdg_tree(
            &cache,
            &format!("docker-archive:{}:ghcr.io/a/b:v2", docker.display()),
        )?,
        2,
    )?;
    ensure!(out.contains("ghcr.io/a/b:v2"), "{out}");
    // One byte of a layer changed inside the saved archive: its diff_id no longer matches.
    let mut bytes = std::fs::read(&docker)?;
    let at = bytes
        .windows(b"deleted by a whiteout".len())
        .position(|w| w == b"deleted by a whiteout")
        .context("the fixture's content is in the archive")?;
    bytes[at] ^= 0x20;
    let tampered = tmp.path().join("tampered.tar");
    std::fs::write(&tampered, bytes)?;
    let out = expect_exit(
        &tdg_tree(&cache, &format!("docker-archive:{}", tampered.display()))?,
        2,
    )?;
    ensure!(out.contains("diff_id"), "{out}");
    // Paths that are none of the forms: an error naming them, never a Docker Hub lookup.
    for bare in ["good.tar", "./x", "/abs/dir", "../up.tar.gz"] {
        let out = expect_exit(&tdg_tree(&cache, bare)?, 2)?;
        ensure!(
            out.contains("looks like a local path") && out.contains("docker-archive:FILE"),
            "{bare}: {out}"
        );
        ensure!(
            !out.contains("docker.io"),
            "{bare} went to Docker Hub: {out}"
        );
    }
    // Archives unpack under `$TMPDIR/tdg-archives-<uid>`: what a crash left there a day ago is
    // swept at the next archive read, a fresh one is left alone, and the run's own is removed.
    let systmp = tmp.path().join("systmp");
    // SAFETY: geteuid has no preconditions.
    let scratch = systmp.join(format!("tdg-archives-{}", unsafe { libc::geteuid() }));
    for name in ["tdg-archive-stale", "tdg-archive-fresh"] {
        std::fs::create_dir_all(scratch.join(name).join("layout"))?;
    }
    let two_days_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(2 * 86400);
    std::fs::File::open(scratch.join("tdg-archive-stale"))?.set_modified(two_days_ago)?;
    expect_exit(
        &Command::new(env!("CARGO_BIN_EXE_tdg"))
            .env("TDG_CACHE", &cache)
            .env("TMPDIR", &systmp)
            .args(["tree", &format!("oci-archive:{}:t", oci.display())])
            .output()?,
        0,
    )?;
    let left: Vec<_> = std::fs::read_dir(&scratch)?
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect();
    ensure!(
        left == ["tdg-archive-fresh"],
        "left under {}: {left:?}",
        scratch.display()
    );
    Ok(())
}
