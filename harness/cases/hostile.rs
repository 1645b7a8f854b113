//! Hostile input and hostile conditions, each reproducing a defect a probe found: what tdg
//! must refuse, bound or clean up, checked through the real binary.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{ensure, Result};

use tdg::oci::image::{Flavor, TarEntry as E};
use tdg::oci::manifest::Compression;

use super::cli::expect_exit;
use crate::fixtures;

/// A layout `oci:LAYOUT:t` of one gzip layer holding one file.
fn one_file_image(layout: &Path, name: &str, content: Vec<u8>) -> Result<()> {
    fixtures::layout_image(
        layout,
        "t",
        &[(vec![E::file(name, content, 0o644)], Compression::Gzip)],
        "linux/amd64",
        &Default::default(),
        Flavor::Oci,
    )?;
    Ok(())
}

/// Runs `cmd` under a fresh, small python3, which reports the child's peak RSS: a child of the
/// (large) harness would inherit its high-water mark through exec. Returns the output, the
/// stderr without the report line, and the peak in MiB.
pub(crate) fn with_peak_rss(cmd: &Command) -> Result<(std::process::Output, String, f64)> {
    let mut m = Command::new("python3");
    m.args([
        "-c",
        "import resource,subprocess,sys\n\
         r=subprocess.run(sys.argv[1:]).returncode\n\
         print('TDG_PEAK_RSS_KIB=%d' % resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr)\n\
         sys.exit(r if r >= 0 else 128 - r)\n",
    ])
    .arg(cmd.get_program())
    .args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => m.env(k, v),
            None => m.env_remove(k),
        };
    }
    let out = m.output()?;
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let (text, kib) = stderr
        .rsplit_once("TDG_PEAK_RSS_KIB=")
        .map(|(t, k)| (t.to_string(), k.trim().parse::<f64>().unwrap_or(f64::MAX)))
        .unwrap_or((stderr.clone(), f64::MAX));
    Ok((out, text, kib / 1024.0))
}

/// Writes `tar` (raw bytes, as hostile as they come) as the one gzip layer of `oci:DIR:t`.
fn raw_layer_image(dir: &Path, tar: &[u8]) -> Result<()> {
    use tdg::oci::image::{self, Layer};
    let layer = Layer {
        blob: image::compress(tar, Compression::Gzip)?,
        media_type: tdg::oci::manifest::OCI_LAYER_GZIP.into(),
        diff_id: tdg::digest::Digest::of(tar),
    };
    fixtures::one_layer_layout(dir, "t", layer)?;
    Ok(())
}

/// One raw tar member: a header of `kind` claiming `size` bytes, then `data`, padded.
fn member(kind: u8, name: &str, size: u64, data: &[u8]) -> Vec<u8> {
    let mut h = tar::Header::new_gnu();
    h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
    h.set_size(size);
    h.set_mode(0o644);
    h.set_entry_type(tar::EntryType::new(kind));
    h.set_cksum();
    let mut out = h.as_bytes().to_vec();
    out.extend(data);
    out.resize(out.len().next_multiple_of(512), 0);
    out
}

fn tdg(cache: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tdg"));
    c.env("TDG_CACHE", cache).env_remove("TDG_MIRROR");
    c
}

/// A SIGTERM in the middle of an export leaves nothing in the cache's `tmp/` (it left 2.4 GB
/// of `spool-*`), and a stale temporary from a crashed run is swept at the next start while a
/// fresh one is left alone.
pub fn a_signal_mid_export_leaves_no_temporaries() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let layout = tmp.path().join("layout");
    // 256 MiB of zeros: a small gzip blob that takes a while to spool.
    one_file_image(&layout, "big", vec![0u8; 256 << 20])?;
    let cache = tmp.path().join("cache");
    let spools = |cache: &Path| -> Vec<String> {
        std::fs::read_dir(cache.join("tmp"))
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut child = tdg(&cache)
        .arg("export")
        .arg(format!("oci:{}:t", layout.display()))
        .arg(tmp.path().join("out"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let start = Instant::now();
    while !spools(&cache).iter().any(|n| n.starts_with("spool-")) {
        ensure!(
            start.elapsed() < Duration::from_secs(60),
            "no spool directory appeared"
        );
        if child.try_wait()?.is_some() {
            anyhow::bail!("the export finished before it could be interrupted");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait()?;
    ensure!(status.code() == Some(143), "exit {status:?} after SIGTERM");
    ensure!(
        spools(&cache).is_empty(),
        "left behind: {:?}",
        spools(&cache)
    );
    // A crash's leftovers: an old one is swept at the next start, a fresh one kept.
    let old = cache.join("tmp/spool-crashed");
    std::fs::create_dir_all(old.join("x"))?;
    let day_ago = std::time::SystemTime::now() - Duration::from_secs(25 * 3600);
    std::fs::File::open(&old)?.set_modified(day_ago)?;
    let fresh = cache.join("tmp/ingest-fresh");
    std::fs::write(&fresh, "x")?;
    expect_exit(
        &tdg(&cache)
            .arg("tree")
            .arg(format!("oci:{}:t", layout.display()))
            .output()?,
        0,
    )?;
    ensure!(!old.exists(), "a day-old temporary was not swept");
    ensure!(fresh.exists(), "a fresh temporary was swept");
    Ok(())
}

/// `export` refuses a non-empty directory before it fetches anything (it used to spool the
/// whole image first), and `--max-export-size` stops a decompression bomb before it fills
/// the disk, leaving no partial spool.
pub fn export_checks_its_directory_first_and_caps_what_it_writes() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let cache = tmp.path().join("cache");
    let busy = tmp.path().join("busy");
    std::fs::create_dir_all(&busy)?;
    std::fs::write(busy.join("keep"), "x")?;
    // Port 9 on loopback refuses: the error must be about the directory, not the registry.
    let out = expect_exit(
        &tdg(&cache)
            .args(["export", "127.0.0.1:9/none/such:t"])
            .arg(&busy)
            .output()?,
        2,
    )?;
    ensure!(
        out.contains("is not empty") && !out.contains("127.0.0.1:9"),
        "{out}"
    );
    let layout = tmp.path().join("bomb");
    one_file_image(&layout, "zeros", vec![0u8; 96 << 20])?;
    let dest = tmp.path().join("out");
    let out = expect_exit(
        &tdg(&cache)
            .args(["export", "--max-export-size", "32MiB"])
            .arg(format!("oci:{}:t", layout.display()))
            .arg(&dest)
            .output()?,
        2,
    )?;
    ensure!(out.contains("--max-export-size"), "{out}");
    ensure!(!dest.exists(), "a refused export created its directory");
    ensure!(
        std::fs::read_dir(cache.join("tmp"))?.next().is_none(),
        "spool left behind"
    );
    expect_exit(
        &tdg(&cache)
            .args(["export", "--max-export-size", "128MiB"])
            .arg(format!("oci:{}:t", layout.display()))
            .arg(&dest)
            .output()?,
        0,
    )?;
    ensure!(std::fs::metadata(dest.join("zeros"))?.len() == 96 << 20);
    Ok(())
}

/// Hostile inputs a probe found, through the binary, each with its exit code, its message and
/// a bounded peak RSS: a PE whose `.linux` is the whole file (a stack overflow, exit 134), a
/// 1 GiB GNU long name and a 100 KB PAX path in tiny layers (6.4 GB and 4.9 GB), and a zstd
/// initramfs whose cpio entry claims a 4 GiB name (4.2 GB).
pub fn hostile_files_end_in_short_errors_in_little_memory() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let cache = tmp.path().join("cache");
    let budget = 200.0; // MiB: tdg's own footprint, far below what the defects took
    let check = |cmd: &Command, code: i32, want: &str| -> Result<()> {
        let (out, text, mib) = with_peak_rss(cmd)?;
        ensure!(
            out.status.code() == Some(code),
            "exit {:?}: {text}",
            out.status.code()
        );
        // Errors go to stderr; a finding about the file (exit 1) is in the report on stdout.
        let text = format!("{text}{}", String::from_utf8_lossy(&out.stdout));
        ensure!(text.contains(want), "no {want:?} in: {text}");
        ensure!(text.len() < 2000, "a long message: {} bytes", text.len());
        ensure!(mib < budget, "{mib:.0} MiB for {want:?}");
        Ok(())
    };
    // The self-referencing PE.
    let mut pe =
        tdg::talos::kernel::write_pe(tdg::talos::kernel::MACHINE_ARM64, &[(".linux", &[0u8; 16])]);
    let len = pe.len() as u32;
    let entry = 0x80 + 24 + 0xF0;
    for (off, v) in [(8, len), (16, len), (20, 0)] {
        pe[entry + off..entry + off + 4].copy_from_slice(&v.to_le_bytes());
    }
    let pe_file = tmp.path().join("self.efi");
    std::fs::write(&pe_file, &pe)?;
    let mut c = tdg(&cache);
    c.args(["inspect", "kernel"]).arg(&pe_file);
    check(&c, 2, "a .linux inside a .linux")?;
    // A GNU long name claiming 1 GiB, and a PAX path of 100 KB ("a/" x 50000).
    let long = member(b'L', "././@LongLink", 1 << 30, b"x");
    let deep = format!("{}f", "a/".repeat(50_000));
    let rec = format!(" path={deep}\n");
    let n = rec.len() + 6;
    let pax = format!("{n}{rec}");
    let mut pax_tar = member(b'x', "PaxHeader", pax.len() as u64, pax.as_bytes());
    pax_tar.extend(member(b'0', "f", 0, b""));
    pax_tar.extend([0u8; 1024]);
    for (name, tar, want) in [
        ("long", long, "over the 1048576-byte limit"),
        ("pax", pax_tar, "PATH_MAX"),
    ] {
        let dir = tmp.path().join(name);
        raw_layer_image(&dir, &tar)?;
        let mut c = tdg(&cache);
        c.args(["tree", &format!("oci:{}:t", dir.display())]);
        check(&c, 2, want)?;
    }
    // A cpio entry claiming a name of 4 GiB, in a zstd segment of a few hundred bytes.
    let mut cpio = b"070701".to_vec();
    for v in [1u32, 0o100644, 0, 0, 1, 0, 0, 0, 0, 0, 0, u32::MAX, 0] {
        cpio.extend(format!("{v:08X}").bytes());
    }
    cpio.extend(vec![b'n'; 4096]);
    let initrd = tmp.path().join("initramfs.zst");
    std::fs::write(&initrd, zstd::encode_all(&cpio[..], 19)?)?;
    let mut c = tdg(&cache);
    c.args(["inspect", "initramfs"]).arg(&initrd);
    check(&c, 1, "ends inside an entry")?;
    Ok(())
}

/// A million entries, and 100k entries of 4 KiB names (as an image's layer and as an
/// initramfs), cost tdg less than 256 MiB in `tree`, `export`, `verify` and `inspect`, each
/// measured as a fresh process. They took 715 MB to 1.29 GB.
pub fn a_million_entries_and_long_names_stay_under_256_mib() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let cache = tmp.path().join("cache");
    let budget = 256.0;
    let run = |what: &str, args: &[&str], codes: &[i32]| -> Result<()> {
        let mut c = tdg(&cache);
        c.args(args).stdout(Stdio::null());
        let t = Instant::now();
        let (out, text, mib) = with_peak_rss(&c)?;
        ensure!(
            out.status.code().is_some_and(|c| codes.contains(&c)),
            "{what}: exit {:?}: {text}",
            out.status.code()
        );
        eprintln!("{what}: {mib:.0} MiB, {:.1}s", t.elapsed().as_secs_f64());
        ensure!(mib < budget, "{what}: peak RSS {mib:.0} MiB");
        Ok(())
    };
    let images: [(&str, usize, fixtures::Names); 2] = [
        ("a million entries", 1_000_100, fixtures::many_name),
        ("100k long names", fixtures::LONG_NAMES, fixtures::long_name),
    ];
    for (what, n, path) in images {
        let probe = path(n - 1);
        let dir = tmp.path().join(what.replace(' ', "-"));
        let layer = fixtures::streamed_layer(n, path)?;
        fixtures::one_layer_layout(&dir, "t", layer)?;
        let image = format!("oci:{}:t", dir.display());
        let spec = tmp.path().join(format!("{}.yaml", what.replace(' ', "-")));
        std::fs::write(&spec, format!("apiVersion: tdg/v1\nname: many\nimage: {image}\nexpect:\n  files:\n    - path: {probe}\n      type: file\n"))?;
        let out = tmp.path().join("out");
        run(&format!("tree, {what}"), &["tree", &image], &[0])?;
        run(
            &format!("export, {what}"),
            &["export", &image, &out.to_string_lossy()],
            &[0],
        )?;
        ensure!(out.join(&probe).is_file(), "{what}: /{probe} not exported");
        std::fs::remove_dir_all(&out)?;
        run(
            &format!("verify, {what}"),
            &["verify", &spec.to_string_lossy()],
            &[0],
        )?;
    }
    // The initramfs: 100k entries of 4 KiB names in one zstd segment of a few hundred KiB.
    let cpio = fixtures::cpio_of((0..fixtures::LONG_NAMES).map(fixtures::long_name));
    let initrd = zstd::encode_all(&cpio[..], 3)?;
    drop(cpio);
    let file = tmp.path().join("initramfs.zst");
    std::fs::write(&file, &initrd)?;
    let f = file.to_string_lossy();
    run("inspect initramfs", &["inspect", "initramfs", &f], &[0, 1])?;
    run(
        "inspect initramfs --format json",
        &["inspect", "initramfs", "--format", "json", &f],
        &[0, 1],
    )?;
    let layout = tmp.path().join("initramfs-image");
    one_file_image(&layout, "initramfs.zst", initrd)?;
    let spec = tmp.path().join("initramfs.yaml");
    std::fs::write(&spec, format!("apiVersion: tdg/v1\nname: initramfs\nimage: oci:{}:t\nexpect:\n  files:\n    - path: initramfs.zst\n      initramfs:\n        compression: zstd\n", layout.display()))?;
    run(
        "verify, initramfs",
        &["verify", &spec.to_string_lossy()],
        &[0, 1],
    )?;
    Ok(())
}
