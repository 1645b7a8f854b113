//! `cargo bench`: a multi-layer image of at least 1 GiB in a real registry on loopback, and in
//! one run: `tdg verify` cold, `tdg verify` warm (the tree index and checked files cached),
//! `tdg verify --verify-cache` (every cached blob read and hashed again), `skopeo copy` + `umoci unpack`
//! of the same image, and `sha256sum` over the same blob bytes. Prints the ratios and tdg's
//! peak RSS. Sizes: `TDG_BENCH_LAYERS` (default 8) × `TDG_BENCH_LAYER_MIB` (default 136).
//! Then `tdg tree` and `tdg export` of one layer of `TDG_BENCH_ENTRIES` (default 1,000,000)
//! empty files, with their time and peak RSS: what a large tree costs in memory.

#[path = "registry.rs"]
#[allow(dead_code)]
mod registry;

#[path = "factory.rs"]
#[allow(dead_code)]
mod factory;

#[path = "debian.rs"]
#[allow(dead_code)]
mod debian;

#[path = "fixtures.rs"]
#[allow(dead_code)]
mod fixtures;

#[path = "upstream.rs"]
#[allow(dead_code)]
mod upstream;

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{ensure, Result};
use serde_json::json;

use tdg::digest::HashingWriter;
use tdg::oci::layout::LayoutWriter;
use tdg::oci::manifest;

fn env_num(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Streams one layer of `files` × `file_mib` MiB of incompressible data to the layout.
fn write_layer(
    out: &LayoutWriter,
    index: usize,
    mib: usize,
    gzip: bool,
) -> Result<serde_json::Value> {
    let tmp = tempfile::NamedTempFile::new_in(out.dir())?;
    let file = std::io::BufWriter::with_capacity(1 << 20, tmp.reopen()?);
    let sink: Box<dyn Write> = if gzip {
        Box::new(flate2::write::GzEncoder::new(
            file,
            flate2::Compression::fast(),
        ))
    } else {
        Box::new(file)
    };
    let mut hashing = HashingWriter::new(sink);
    {
        let mut b = tar::Builder::new(&mut hashing);
        let dir = format!("data/layer{index}");
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o755);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_size(0);
        b.append_data(&mut h, format!("{dir}/"), std::io::empty())?;
        let file_mib = 8;
        for f in 0..mib.div_ceil(file_mib) {
            let data = tdg::demo::filler(file_mib << 20, (index * 1000 + f) as u64);
            let mut h = tar::Header::new_gnu();
            h.set_mode(0o644);
            h.set_uid(0);
            h.set_gid(0);
            h.set_mtime(0);
            h.set_size(data.len() as u64);
            b.append_data(&mut h, format!("{dir}/blob{f:03}.bin"), &data[..])?;
        }
        b.finish()?;
    }
    hashing.flush()?;
    let (diff_id, _) = hashing.hasher.clone().finish();
    drop(hashing);
    let (digest, size) = out.write_blob_from(std::fs::File::open(tmp.path())?)?;
    let media_type = if gzip {
        manifest::OCI_LAYER_GZIP
    } else {
        manifest::OCI_LAYER_TAR
    };
    Ok(
        json!({"mediaType": media_type, "digest": digest.to_string(), "size": size, "diff_id": diff_id.to_string()}),
    )
}

fn build_image(dir: &Path, layers: usize, mib: usize) -> Result<u64> {
    let mut out = LayoutWriter::create(dir)?;
    let mut descs = Vec::new();
    for i in 0..layers {
        descs.push(write_layer(&out, i, mib, i % 2 == 0)?);
    }
    let mut text = Vec::new();
    writeln!(text, "Talos Version: v1.11.5")?;
    let small = tdg::oci::image::Layer::new(
        &[tdg::oci::image::TarEntry::file("report.txt", text, 0o644)],
        manifest::Compression::Gzip,
        tdg::oci::image::Flavor::Oci,
    )?;
    let (sd, ss) = out.write_blob(&small.blob)?;
    descs.push(json!({"mediaType": small.media_type, "digest": sd.to_string(), "size": ss, "diff_id": small.diff_id.to_string()}));
    let diff_ids: Vec<_> = descs.iter().map(|d| d["diff_id"].clone()).collect();
    let config = serde_json::to_vec(
        &json!({"architecture": "arm64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": diff_ids}, "config": {}}),
    )?;
    let (cd, cs) = out.write_blob(&config)?;
    let layers_json: Vec<_> = descs
        .iter()
        .map(|d| json!({"mediaType": d["mediaType"], "digest": d["digest"], "size": d["size"]}))
        .collect();
    let total: u64 = descs.iter().map(|d| d["size"].as_u64().unwrap_or(0)).sum();
    let m = serde_json::to_vec(
        &json!({"schemaVersion": 2, "mediaType": manifest::OCI_MANIFEST, "config": {"mediaType": manifest::OCI_CONFIG, "digest": cd.to_string(), "size": cs}, "layers": layers_json}),
    )?;
    out.add_manifest(manifest::OCI_MANIFEST, &m, Some("1"))?;
    Ok(total)
}

fn timed(cmd: &mut Command) -> Result<Duration> {
    let start = Instant::now();
    let out = cmd.output()?;
    let took = start.elapsed();
    ensure!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(took)
}

/// Runs a command and returns its time and its own peak RSS (MiB). On Linux, exec folds the
/// old address space's high-water mark into `ru_maxrss`, so a child of this (large) process
/// would report our memory: a fresh, small copy of this binary (`--measure`) spawns it instead.
fn measured(cmd: &mut Command) -> Result<(Duration, f64)> {
    let mut m = Command::new(std::env::current_exe()?);
    m.arg("--measure")
        .arg(cmd.get_program())
        .args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => m.env(k, v),
            None => m.env_remove(k),
        };
    }
    let out = m.output()?;
    ensure!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout)?;
    let mut it = text.split_whitespace();
    let secs: f64 = it.next().unwrap_or("").parse()?;
    let kib: f64 = it.next().unwrap_or("").parse()?;
    Ok((Duration::from_secs_f64(secs), kib / 1024.0))
}

/// The `--measure` side: run argv, wait4 it, print seconds and peak RSS in KiB.
fn measure_child(argv: &[String]) -> Result<()> {
    let start = Instant::now();
    let stdout = match std::env::var_os("TDG_BENCH_STDOUT") {
        Some(p) => std::process::Stdio::from(std::fs::File::create(p)?),
        None => std::process::Stdio::null(),
    };
    let child = Command::new(&argv[0])
        .args(&argv[1..])
        .stdout(stdout)
        .spawn()?;
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: wait4 on our own child fills `status` and `ru`; the Child is not waited on again.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
    std::mem::forget(child);
    ensure!(
        r == pid && libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "{argv:?} failed (status {status})"
    );
    println!("{} {}", start.elapsed().as_secs_f64(), ru.ru_maxrss);
    Ok(())
}

/// A Talos-like initramfs of about `mib` MiB: a base zstd cpio whose rootfs.sqsh is
/// incompressible filler, and the spin + tailscale extensions segment.
fn big_initramfs(path: &Path, mib: usize) -> Result<()> {
    use tdg::imager::assemble::{compress, newc, FileSpec};
    use tdg::imager::bake::extensions_segment;
    use tdg::talos::initramfs::Compression;
    let base = newc(&[
        FileSpec::file("init", tdg::demo::filler(1 << 20, 1), 0o755),
        FileSpec::file("rootfs.sqsh", tdg::demo::filler(mib << 20, 2), 0o444),
    ])?;
    let mut out = compress(&base, Compression::Zstd, 1)?;
    drop(base);
    out.extend(extensions_segment(
        &tdg::demo::variant_extensions("spin-tailscale"),
        Compression::Zstd,
    )?);
    std::fs::write(path, out)?;
    Ok(())
}

/// `tdg boot` of the arm64 fixture under TCG, to the end line: Debian's cloud kernel (a plain
/// EFI-stub Image, loaded by QEMU) and the EFI zboot kernel `.ci/build-zboot` makes (through
/// UEFI, as Talos's arm64 vmlinuz boots), each with the harness's busybox init and the
/// spin-tailscale variant's layers (stand-ins).
fn boot_bench(dir: &Path, tdg: &str) -> Result<()> {
    use tdg::talos::initramfs::Compression;
    let k = debian::arm64_kernel()?;
    let debian_kernel = dir.join("boot-vmlinuz");
    std::fs::write(&debian_kernel, k.vmlinuz()?)?;
    let mut initramfs = upstream::boot_base_initramfs()?;
    initramfs.extend(tdg::imager::bake::extensions_segment(
        &tdg::demo::variant_extensions("spin-tailscale"),
        Compression::Zstd,
    )?);
    let initrd = dir.join("boot-initramfs.xz");
    std::fs::write(&initrd, &initramfs)?;
    let mut kernels = vec![(
        format!("Debian {} EFI-stub Image, direct", k.kver),
        debian_kernel,
    )];
    match debian::zboot_kernel() {
        Ok((z, version)) => kernels.push((
            format!("zboot (zstd) from linux-source-6.1 {version}, UEFI"),
            z,
        )),
        Err(e) => println!("tdg boot of the zboot kernel: not measured ({e:#})"),
    }
    for (what, kernel) in kernels {
        let json = dir.join("boot.json");
        let (took, rss) = measured(
            Command::new(tdg)
                .env("TDG_BENCH_STDOUT", &json)
                .arg("boot")
                .arg("--kernel")
                .arg(&kernel)
                .arg("--initrd")
                .arg(&initrd)
                .args(["--format", "json"]),
        )?;
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json)?)?;
        ensure!(
            v["reached"] == true,
            "{what}: the boot did not reach its end: {v}"
        );
        println!(
            "tdg boot (arm64 under TCG, {what}, {} layers, to 'entering maintenance service'): {:.2}s, peak RSS {rss:.1} MiB",
            v["extensions"].as_array().map_or(0, |e| e.len()),
            took.as_secs_f64()
        );
    }
    Ok(())
}

/// Upstream inputs of realistic size in the registry (a 60 MiB kernel; a ~90 MiB base
/// initramfs whose rootfs carries real arm64 modules; CozyStack's firmware packages, drbd and
/// zfs with real modules and firmware of their real sizes; spin and tailscale with binaries of
/// their real sizes), and `tdg build --push` of the spin-tailscale spec against them (depmod
/// included), with each stage's time.
fn build_bench(dir: &Path, registry: &str, tdg: &str) -> Result<()> {
    use std::collections::BTreeMap;
    use tdg::imager::assemble::{compress, newc, Content, FileSpec};
    use tdg::oci::image::{self as img, Flavor, Layer, TarEntry};
    use tdg::talos::initramfs::Compression;
    let push = |name: &str, entries: Vec<TarEntry>| -> Result<()> {
        let layout = dir.join(name.replace(['/', ':'], "_"));
        let mut out = LayoutWriter::create(&layout)?;
        let layer = Layer::new(&entries, manifest::Compression::Gzip, Flavor::Oci)?;
        let d = img::write_image(
            &out,
            &"linux/arm64".parse()?,
            &[layer],
            &BTreeMap::new(),
            Flavor::Oci,
        )?;
        let (mt, bytes) = img::index_bytes(&[d], Flavor::Oci)?;
        out.add_manifest(&mt, &bytes, Some("t"))?;
        timed(
            Command::new("skopeo")
                .args(["copy", "--quiet", "--all", "--dest-tls-verify=false"])
                .arg(format!("oci:{}:t", layout.display()))
                .arg(format!("docker://{registry}/{name}")),
        )?;
        Ok(())
    };
    // The rootfs: 88 MiB of filler beside the real modules, as one squashfs.
    let mut rootfs = upstream::base_modules()?;
    rootfs.push(FileSpec::dir("usr/bin"));
    rootfs.push(FileSpec::file(
        "usr/bin/bulk",
        tdg::demo::filler(88 << 20, 4),
        0o755,
    ));
    let rootfs = tdg::imager::assemble::squashfs(&rootfs, Compression::Zstd)?;
    let base = newc(&[
        FileSpec::file("init", tdg::demo::filler(2 << 20, 3), 0o755),
        FileSpec::file("rootfs.sqsh", rootfs, 0o444),
    ])?;
    let initramfs = compress(&base, Compression::Zstd, 1)?;
    drop(base);
    let d = "usr/install/arm64";
    push(
        "siderolabs/imager:v1.11.5",
        vec![
            TarEntry::dir("usr", 0o755),
            TarEntry::dir("usr/install", 0o755),
            TarEntry::dir(d, 0o755),
            TarEntry::file(
                &format!("{d}/vmlinuz"),
                tdg::demo::kernel("arm64", 60 << 20),
                0o644,
            ),
            TarEntry::file(&format!("{d}/initramfs.xz"), initramfs, 0o644),
        ],
    )?;
    // Real sizes: the spin shim is about 40 MiB; tailscale's three binaries about 30 MiB each.
    let mut spin = tdg::demo::spin();
    let mut ts = tdg::demo::tailscale();
    for (ext, mib) in [(&mut spin, 40usize), (&mut ts, 30)] {
        for (i, f) in ext.rootfs.iter_mut().enumerate() {
            if f.mode == 0o755 && matches!(f.content, Content::Bytes(_)) {
                f.content = Content::Bytes(tdg::demo::filler(mib << 20, 100 + i as u64));
            }
        }
    }
    push(
        "siderolabs/spin:v0.21.0",
        tdg::demo::extension_image_entries(&spin)?,
    )?;
    // CozyStack's arm64 extensions; firmware at roughly its real size (bnx2x 10 MiB, ice
    // 1 MiB, qlogic 12 MiB), zfs's tools 2 MiB.
    for (image, name, mib) in [
        (upstream::BNX2, "bnx2-bnx2x", 10usize),
        (upstream::ICE, "intel-ice-firmware", 1),
        (upstream::QLOGIC, "qlogic-firmware", 12),
        (upstream::DRBD, "drbd", 0),
        (upstream::ZFS, "zfs", 2),
    ] {
        let mut x = upstream::cozystack_extension(name, "arm64")?;
        let files = x
            .rootfs
            .iter()
            .filter(|f| matches!(f.content, Content::Bytes(_)) && !f.path.ends_with(".ko"))
            .count()
            .max(1);
        for (i, f) in x.rootfs.iter_mut().enumerate() {
            if mib > 0 && matches!(f.content, Content::Bytes(_)) && !f.path.ends_with(".ko") {
                f.content = Content::Bytes(tdg::demo::filler((mib << 20) / files, 200 + i as u64));
            }
        }
        push(image, tdg::demo::extension_image_entries(&x)?)?;
    }
    push(
        "siderolabs/tailscale:1.88.1",
        tdg::demo::extension_image_entries(&ts)?,
    )?;
    // The spec without its boot: these inputs are realistic in size, but the kernel is a
    // stand-in that boots nothing (`boot_bench` times real boots). The rest is verified before
    // the push, as a release builds.
    let spec = fixtures::spec_without_boot("spin-tailscale", dir)?;
    let json = dir.join("build.json");
    let (took, rss) = measured(
        Command::new(tdg)
            .env("TDG_CACHE", dir.join("build-cache"))
            .env("DOCKER_CONFIG", dir)
            .env("SOURCE_DATE_EPOCH", "1700000000")
            .env("TDG_BENCH_STDOUT", &json)
            .arg("build")
            .arg(&spec)
            .args([
                "--mirror",
                &format!("ghcr.io=http://{registry}"),
                "--push",
                "--format",
                "json",
            ]),
    )?;
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json)?)?;
    println!("tdg build specs/spin-tailscale-arm64.yaml --push (kernel 60 MiB, base initramfs 90 MiB with real modules, CozyStack's firmware, drbd and zfs, spin, tailscale; depmod included): {:.2}s, peak RSS {rss:.1} MiB", took.as_secs_f64());
    for st in v["stages"].as_array().into_iter().flatten() {
        println!(
            "  {:>8.0} ms  {:<28} {}",
            st["duration_ms"].as_f64().unwrap_or(0.0),
            st["name"].as_str().unwrap_or(""),
            st["detail"].as_str().unwrap_or("")
        );
    }
    Ok(())
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--measure") {
        return measure_child(&args[2..]);
    }
    // `cargo bench` passes --bench; `cargo test --benches` would run this too, so do the work
    // only when benchmarking.
    if !std::env::args().any(|a| a == "--bench") {
        return Ok(());
    }
    // `TDG_BENCH_ONLY=many,build` runs only those parts (verify, inspect, many, build, boot,
    // release, fleet).
    let only = std::env::var("TDG_BENCH_ONLY").unwrap_or_default();
    let wanted = |part: &str| only.is_empty() || only.split(',').any(|p| p.trim() == part);
    // For profiling by hand: `TDG_BENCH_DIR` keeps the work directory (spec, cache, layout) and
    // `TDG_BENCH_REGISTRY` names a registry already running, which outlives the bench.
    let removed;
    let tmp = match std::env::var_os("TDG_BENCH_DIR") {
        Some(d) => tempfile::Builder::new()
            .prefix("bench")
            .tempdir_in(d)?
            .keep(),
        None => {
            removed = tempfile::tempdir()?;
            removed.path().to_path_buf()
        }
    };
    let tdg = env!("CARGO_BIN_EXE_tdg");
    let started;
    let registry = match std::env::var("TDG_BENCH_REGISTRY") {
        Ok(a) => a,
        Err(_) => {
            started = registry::Registry::start(None)?;
            started.addr.clone()
        }
    };
    if wanted("verify") {
        verify_bench(&tmp, &registry, tdg)?;
    }
    if wanted("inspect") {
        inspect_bench(&tmp, tdg)?;
    }
    if wanted("many") {
        many_entries_bench(&tmp, tdg)?;
    }
    if wanted("build") {
        build_bench(&tmp, &registry, tdg)?;
    }
    if wanted("boot") {
        boot_bench(&tmp, tdg)?;
    }
    if wanted("release") {
        release_bench(&tmp, tdg)?;
    }
    if wanted("fleet") {
        fleet_bench(&tmp, &registry, tdg)?;
    }
    Ok(())
}

/// A multi-layer image in the registry: tdg verify cold, warm and re-verified, against skopeo +
/// umoci and sha256sum.
fn verify_bench(dir: &Path, registry: &str, tdg: &str) -> Result<()> {
    let (layers, mib) = (
        env_num("TDG_BENCH_LAYERS", 8),
        env_num("TDG_BENCH_LAYER_MIB", 136),
    );
    let layout = dir.join("layout");
    let t = Instant::now();
    let total = build_image(&layout, layers, mib)?;
    eprintln!(
        "built a {layers}+1-layer image, {:.0} MiB of blobs, in {:.1}s",
        total as f64 / 1048576.0,
        t.elapsed().as_secs_f64()
    );
    let image = format!("{}/bench/big:1", registry);
    timed(
        Command::new("skopeo")
            .args([
                "copy",
                "--quiet",
                "--preserve-digests",
                "--dest-tls-verify=false",
            ])
            .arg(format!("oci:{}:1", layout.display()))
            .arg(format!("docker://{image}")),
    )?;

    let spec = dir.join("bench.yaml");
    std::fs::write(
        &spec,
        format!("apiVersion: tdg/v1\nname: bench\nimage: {image}\nexpect:\n  files:\n    - path: data/layer0/blob000.bin\n      size: {{min: 8MiB, max: 8MiB}}\n    - path: report.txt\n      contains: [\"Talos Version: v1.11.5\"]\n  absent: [etc]\n"),
    )?;
    let cache = dir.join("cache");
    let verify = || {
        let mut c = Command::new(tdg);
        c.env("TDG_CACHE", &cache)
            .env("DOCKER_CONFIG", dir)
            .arg("verify")
            .arg(&spec);
        c
    };
    let (cold, rss_cold) = measured(&mut verify())?;
    let (warm, rss_warm) = measured(&mut verify())?;
    let (reverified, rss_re) = measured(verify().arg("--verify-cache"))?;
    let rss = rss_cold.max(rss_warm).max(rss_re);

    let pulled = dir.join("pulled");
    let bundle = dir.join("bundle");
    let t = Instant::now();
    timed(
        Command::new("skopeo")
            .args(["copy", "--quiet", "--src-tls-verify=false"])
            .arg(format!("docker://{image}"))
            .arg(format!("oci:{}:1", pulled.display())),
    )?;
    timed(
        Command::new("umoci")
            .arg("unpack")
            .arg("--image")
            .arg(format!("{}:1", pulled.display()))
            .arg(&bundle),
    )?;
    let skopeo_umoci = t.elapsed();

    let blobs: Vec<_> = std::fs::read_dir(layout.join("blobs/sha256"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    let sha = timed(Command::new("sha256sum").args(&blobs))?;

    let mib_total = total as f64 / 1048576.0;
    let row = |name: &str, d: Duration| {
        println!(
            "{name:<34} {:>8.3}s {:>8.0} MiB/s {:>7.3}x",
            d.as_secs_f64(),
            mib_total / d.as_secs_f64(),
            d.as_secs_f64() / cold.as_secs_f64()
        )
    };
    println!(
        "image: {} layers, {mib_total:.0} MiB of blobs (half gzip, half plain tar)",
        layers + 1
    );
    println!(
        "{:<34} {:>9} {:>13} {:>8}",
        "", "time", "throughput", "vs cold"
    );
    row("tdg verify, cold cache", cold);
    row("tdg verify, warm cache", warm);
    row("tdg verify --verify-cache", reverified);
    row("skopeo copy + umoci unpack", skopeo_umoci);
    row("sha256sum over the blobs", sha);
    println!("tdg peak RSS: {rss:.1} MiB");

    Ok(())
}

/// `tdg inspect` of a large initramfs.
fn inspect_bench(dir: &Path, tdg: &str) -> Result<()> {
    let initramfs_mib = env_num("TDG_BENCH_INITRAMFS_MIB", 200);
    let path = dir.join("initramfs.xz");
    big_initramfs(&path, initramfs_mib)?;
    let size = std::fs::metadata(&path)?.len() as f64 / 1048576.0;
    let (took, rss) = measured(Command::new(tdg).arg("inspect").arg("initramfs").arg(&path))?;
    println!("tdg inspect initramfs ({size:.0} MiB, 2 zstd segments, 2 extensions): {:.2}s, peak RSS {rss:.1} MiB", took.as_secs_f64());

    Ok(())
}

/// One gzip layer of `TDG_BENCH_ENTRIES` empty files in 100 directories, and one of 100k
/// entries with 4 KiB names: `tdg tree` (twice), `tdg export` and `tdg verify` of each, and
/// `tdg inspect initramfs` of 100k long names, each timed with its peak RSS.
fn many_entries_bench(dir: &Path, tdg: &str) -> Result<()> {
    let n = env_num("TDG_BENCH_ENTRIES", 1_000_000);
    let cache = dir.join("many-cache");
    let run = |args: &[&str]| {
        let mut c = Command::new(tdg);
        c.env("TDG_CACHE", &cache)
            .args(args)
            .stdout(std::process::Stdio::null());
        c
    };
    let report = |what: &str, args: &[&str]| -> Result<()> {
        let (took, rss) = measured(&mut run(args))?;
        println!(
            "  {what:<24} {:>7.2}s, peak RSS {rss:.0} MiB",
            took.as_secs_f64()
        );
        Ok(())
    };
    let shapes: [(String, usize, fixtures::Names); 2] = [
        (format!("{n} empty files"), n + 100, fixtures::many_name),
        (
            "100k entries of 4 KiB names".into(),
            fixtures::LONG_NAMES,
            fixtures::long_name,
        ),
    ];
    for (i, (what, count, path)) in shapes.into_iter().enumerate() {
        let probe = path(count - 1);
        let layer = fixtures::streamed_layer(count, path)?;
        let layout = dir.join(format!("many-{i}"));
        let size = layer.blob.len();
        fixtures::one_layer_layout(&layout, "1", layer)?;
        let image = format!("oci:{}:1", layout.display());
        let spec = dir.join(format!("many-{i}.yaml"));
        std::fs::write(
            &spec,
            format!("apiVersion: tdg/v1\nname: many\nimage: {image}\nexpect:\n  files:\n    - path: {probe}\n      type: file\n"),
        )?;
        println!(
            "{what} in one {:.1} MiB gzip layer:",
            size as f64 / 1048576.0
        );
        report("tdg tree", &["tree", &image])?;
        let target = dir.join("many-export");
        let target = target.to_string_lossy().into_owned();
        report("tdg export", &["export", &image, &target])?;
        std::fs::remove_dir_all(&target)?;
        report("tdg verify", &["verify", &spec.to_string_lossy()])?;
    }
    // The same 100k long names as an initramfs (newc, one zstd segment).
    let cpio = fixtures::cpio_of((0..fixtures::LONG_NAMES).map(fixtures::long_name));
    let file = dir.join("many-initramfs.zst");
    std::fs::write(&file, zstd::encode_all(&cpio[..], 3)?)?;
    let f = file.to_string_lossy();
    println!(
        "100k entries of 4 KiB names as a {:.0} KiB initramfs:",
        std::fs::metadata(&file)?.len() as f64 / 1024.0
    );
    report("tdg inspect initramfs", &["inspect", "initramfs", &f])?;
    report(
        "... --format json",
        &["inspect", "initramfs", "--format", "json", &f],
    )?;
    Ok(())
}

/// `tdg audit --fleet` over 30 repositories on loopback, each run with a cold cache: one
/// component at a time against the default concurrency.
fn fleet_bench(dir: &Path, registry: &str, tdg: &str) -> Result<()> {
    use std::collections::BTreeMap;
    use tdg::oci::image::{Flavor, TarEntry as E};
    let layout = dir.join("fleet-image");
    let labels = BTreeMap::from([(
        "org.opencontainers.image.revision".to_string(),
        "0123456789abcdef".to_string(),
    )]);
    fixtures::layout_image(
        &layout,
        "t",
        &[(
            vec![E::file("etc/release", "x", 0o644)],
            manifest::Compression::Gzip,
        )],
        "linux/arm64",
        &labels,
        Flavor::Oci,
    )?;
    let mut fleet =
        String::from("apiVersion: tdg/v1\nkind: Fleet\nname: bench\ntag: v1.0.0\ncomponents:\n");
    for i in 0..30 {
        let repo = format!("{registry}/fleet/c{i:02}");
        fixtures::push_with_tdg(&layout, "t", &format!("{repo}:v1.0.0"))?;
        fleet += &format!("  - image: {repo}\n");
    }
    let file = dir.join("fleet.yaml");
    std::fs::write(&file, fleet)?;
    let run = |jobs: Option<&str>, n: usize| -> Result<Duration> {
        let cache = dir.join(format!("fleet-cache-{n}"));
        let mut c = Command::new(tdg);
        c.env("TDG_CACHE", &cache)
            .env("DOCKER_CONFIG", dir)
            .args(["audit", "--fleet"])
            .arg(&file);
        if let Some(j) = jobs {
            c.args(["--jobs", j]);
        }
        timed(&mut c)
    };
    let serial = run(Some("1"), 0)?;
    let concurrent = run(None, 1)?;
    println!(
        "tdg audit --fleet (30 components): --jobs 1 {:.2}s, default jobs {:.2}s ({:.1}x)",
        serial.as_secs_f64(),
        concurrent.as_secs_f64(),
        serial.as_secs_f64() / concurrent.as_secs_f64()
    );
    Ok(())
}

/// `tdg factory release` streaming an ISO from the Go stand-in factory on loopback: the
/// download is hashed as it arrives and written through, so memory stays flat.
fn release_bench(dir: &Path, tdg: &str) -> Result<()> {
    let mib = env_num("TDG_BENCH_ISO_MIB", 1024);
    let root = dir.join("factory");
    std::fs::create_dir_all(&root)?;
    let iso = root.join("metal-arm64.iso");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&iso)?);
    for i in 0..mib {
        f.write_all(&tdg::demo::filler(1 << 20, i as u64))?;
    }
    f.flush()?;
    drop(f);
    let schematic = dir.join("schematic.yaml");
    std::fs::write(&schematic, "customization: {}\n")?;
    let fake = factory::FakeFactory::start(&root, factory::WELL)?;
    let out = dir.join("release.json");
    let (took, rss) = measured(
        Command::new(tdg)
            .args(["factory", "release", "--schematic"])
            .arg(&schematic)
            .args([
                "--talos",
                "v1.11.5",
                "--version",
                "v0.1.0",
                "--channel",
                "bench",
            ])
            .args([
                "--kubernetes",
                "v1.34.1",
                "--factory",
                &fake.url,
                "--download",
            ])
            .arg(dir.join("dist"))
            .arg("--output")
            .arg(&out),
    )?;
    let sha = timed(Command::new("sha256sum").arg(&iso))?;
    println!(
        "tdg factory release ({mib} MiB ISO, download + SHA-256 + write): {:.2}s, {:.0} MiB/s, peak RSS {rss:.1} MiB; sha256sum alone {:.2}s",
        took.as_secs_f64(),
        mib as f64 / took.as_secs_f64(),
        sha.as_secs_f64()
    );
    Ok(())
}
