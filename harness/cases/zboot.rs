//! What Talos really ships on arm64: an EFI zboot kernel with a zstd payload, here a real one
//! built from Debian's `linux-source-6.1` by `.ci/build-zboot`. tdg reads it byte for byte
//! (`inspect kernel`, the kernel check: a cut copy fails both) and boots it through UEFI
//! firmware (AAVMF), where QEMU's own loader cannot start it; an image built on a zboot base
//! boots, and its `expect.boot` passes and fails as the console says.

use std::path::Path;

use anyhow::{ensure, Context, Result};

use tdg::oci::image::{Flavor, TarEntry};
use tdg::oci::manifest::Compression;

use super::cli::{expect_exit, Tdg};
use crate::{debian, fixtures, upstream, world};

/// The base initramfs the boot trials use (busybox and the harness's init), with spin and
/// tailscale appended as the imager appends extensions.
fn initrd_with_extensions(dir: &Path) -> Result<std::path::PathBuf> {
    let mut initrd = upstream::boot_base_initramfs_for("arm64")?;
    initrd.extend(tdg::imager::bake::extensions_segment(
        &[tdg::demo::spin(), tdg::demo::tailscale()],
        tdg::talos::initramfs::Compression::Zstd,
    )?);
    let p = dir.join("initrd");
    std::fs::write(&p, initrd)?;
    Ok(p)
}

fn boot_json(tdg: &Tdg, args: &[&str]) -> Result<(i32, serde_json::Value, String)> {
    let out = tdg.run(["boot"].iter().chain(args).chain(&["--format", "json"]))?;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).with_context(|| {
        format!(
            "tdg boot printed no JSON: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })?;
    Ok((out.status.code().unwrap_or(-1), v, super::cli::text(&out)))
}

fn extension_names(v: &serde_json::Value) -> Vec<String> {
    v["extensions"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|e| e["name"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// The real zboot kernel: `inspect kernel` reads its payload to the kernel release; a copy cut
/// to a third fails inspection. It boots through UEFI (chosen by itself) and the init enables
/// the same extensions, in the same order, as on Debian's EFI-stub Image; QEMU's own loader
/// (`--firmware none`) runs it silently until the timeout, as the issue found.
pub fn a_real_zboot_kernel_is_read_and_boots_through_uefi() -> Result<()> {
    let (kernel, version) = debian::zboot_kernel()?;
    let kernel_s = kernel.to_str().context("utf-8")?;
    let tdg = Tdg::new()?;
    let human = expect_exit(&tdg.run(["inspect", "kernel", kernel_s])?, 0)?;
    // linux-source-6.1 6.1.192-3 builds release 6.1.192.
    let release = version.split('-').next().unwrap_or("");
    ensure!(
        human.contains(&format!("EFI zboot (zstd22) arm64, Linux {release}")),
        "{human}"
    );
    let tmp = tempfile::tempdir()?;
    let cut = tmp.path().join("cut.efi");
    let bytes = std::fs::read(&kernel)?;
    std::fs::write(&cut, &bytes[..bytes.len() / 3])?;
    let said = expect_exit(
        &tdg.run(["inspect", "kernel", cut.to_str().context("utf-8")?])?,
        2,
    )?;
    ensure!(said.contains("runs past the end"), "{said}");

    let initrd = initrd_with_extensions(tmp.path())?;
    let initrd_s = initrd.to_str().context("utf-8")?;
    let (code, v, text) = boot_json(
        &tdg,
        &[
            "--kernel",
            kernel_s,
            "--initrd",
            initrd_s,
            "--arch",
            "arm64",
            "--timeout",
            "120s",
        ],
    )?;
    ensure!(code == 0 && v["reached"] == true, "{v}\n{text}");
    ensure!(
        extension_names(&v) == ["tailscale", "spin"],
        "{:?}",
        extension_names(&v)
    );
    // tailscale's service waits for its configuration, as Talos says it.
    ensure!(
        v["services"] == serde_json::json!([{"name": "ext-tailscale", "state": "Waiting"}]),
        "{v}"
    );
    // The same initramfs on Debian's plain EFI-stub Image: the same extensions; `--console -`
    // streams the console to stderr as it comes.
    let debian = tmp.path().join("debian-vmlinuz");
    std::fs::write(&debian, debian::arm64_kernel()?.vmlinuz()?)?;
    let (code, v2, text) = boot_json(
        &tdg,
        &[
            "--kernel",
            debian.to_str().context("utf-8")?,
            "--initrd",
            initrd_s,
            "--arch",
            "arm64",
            "--timeout",
            "120s",
            "--console",
            "-",
        ],
    )?;
    ensure!(
        code == 0 && extension_names(&v2) == extension_names(&v),
        "{v2}\n{text}"
    );
    ensure!(
        text.contains("Linux version") && text.contains("enabling system extension spin"),
        "--console - streamed nothing:\n{text}"
    );
    // QEMU's direct loader cannot start a zstd zboot image.
    let (code, v, _) = boot_json(
        &tdg,
        &[
            "--kernel",
            kernel_s,
            "--initrd",
            initrd_s,
            "--arch",
            "arm64",
            "--firmware",
            "none",
            "--timeout",
            "15s",
        ],
    )?;
    ensure!(code != 0 && v["reached"] == false, "{v}");
    // A silent console is explained.
    ensure!(
        v["hint"].as_str().is_some_and(|h| h.contains("zboot")),
        "no hint: {v}"
    );
    Ok(())
}

/// An image built on an imager whose `vmlinuz` is the zboot kernel: `tdg boot IMAGE` reports
/// the extensions the kernel's init enabled; a spec's `expect.boot` passes, and fails when it
/// asks for tailscale to be absent; the kernel check passes on the zboot kernel and fails on a
/// cut one.
pub fn an_image_built_on_a_zboot_base_boots_and_is_judged() -> Result<()> {
    let (kernel, _) = debian::zboot_kernel()?;
    let reg = crate::registry::Registry::start(None)?;
    let tmp = tempfile::tempdir()?;
    upstream::push_all(&reg.addr, tmp.path())?;
    let zboot = std::fs::read(&kernel)?;
    push_imager(&reg.addr, tmp.path(), "v1.11.5-zboot", zboot.clone())?;
    push_imager(
        &reg.addr,
        tmp.path(),
        "v1.11.5-cut",
        zboot[..zboot.len() / 3].to_vec(),
    )?;
    let spec = |name: &str, base: &str, boot: &str| -> Result<std::path::PathBuf> {
        world::write_spec(
            tmp.path(),
            name,
            &format!(
                "apiVersion: tdg/v1\nname: {name}\nimage: ghcr.io/x/{name}:v1\nplatform: linux/arm64\ntalos: v1.11.5\nexpect:\n  files:\n    - path: assets/talos/arm64/boot/vmlinuz\n      kernel: {{arch: arm64}}\n{boot}build:\n  arch: arm64\n  base: ghcr.io/siderolabs/imager:{base}\n  extensions:\n    - ghcr.io/siderolabs/spin:v0.21.0\n    - ghcr.io/siderolabs/tailscale:1.88.1\n  push: ghcr.io/x/{name}:v1\n"
            ),
        )
    };
    let tdg = Tdg::new()?;
    let mirror = format!("ghcr.io=http://{}", reg.addr);
    let build = |spec: &Path| {
        super::build::build(
            &tdg,
            &reg.addr,
            spec.to_str().unwrap_or_default(),
            &["--push"],
        )
    };
    let boots = "  boot:\n    timeout: 120s\n    extensions: {present: [spin, tailscale]}\n";
    let ok = spec("zboot-ok", "v1.11.5-zboot", boots)?;
    let out = expect_exit(&build(&ok)?, 0)?;
    ensure!(out.contains("ok   boot::extensions"), "{out}");
    let (code, v, text) = boot_json(
        &tdg,
        &[
            "ghcr.io/x/zboot-ok:v1",
            "--mirror",
            &mirror,
            "--timeout",
            "120s",
        ],
    )?;
    ensure!(
        code == 0 && extension_names(&v) == ["tailscale", "spin"],
        "{v}\n{text}"
    );
    // The spin-only rule on this image: the boot shows tailscale, so nothing is pushed.
    let worker = spec(
        "zboot-worker",
        "v1.11.5-zboot",
        "  boot:\n    timeout: 120s\n    extensions: {absent: [tailscale]}\n",
    )?;
    let out = expect_exit(&build(&worker)?, 1)?;
    ensure!(
        out.contains("FAIL boot::extensions") && out.contains("nothing pushed"),
        "{out}"
    );
    // A cut zboot kernel: the build's own kernel sniff refuses it.
    let cut = spec("zboot-cut", "v1.11.5-cut", "")?;
    let out = build(&cut)?;
    ensure!(
        out.status.code() == Some(2) && super::cli::text(&out).contains("runs past the end"),
        "{}",
        super::cli::text(&out)
    );
    // The kernel check on an image whose vmlinuz is the zboot kernel, whole and cut.
    for (tag, bytes, code) in [
        ("whole", &zboot[..], 0),
        ("cut", &zboot[..zboot.len() / 3], 1),
    ] {
        let layout = tmp.path().join(format!("assets-{tag}"));
        let mut entries = vec![
            TarEntry::dir("assets", 0o755),
            TarEntry::dir("assets/talos", 0o755),
            TarEntry::dir("assets/talos/arm64", 0o755),
            TarEntry::dir("assets/talos/arm64/boot", 0o755),
        ];
        entries.push(TarEntry::file(
            "assets/talos/arm64/boot/vmlinuz",
            bytes.to_vec(),
            0o644,
        ));
        fixtures::layout_image(
            &layout,
            tag,
            &[(entries, Compression::Gzip)],
            "linux/arm64",
            &Default::default(),
            Flavor::Oci,
        )?;
        let kspec = world::write_spec(
            tmp.path(),
            &format!("kernel-{tag}"),
            &format!(
                "apiVersion: tdg/v1\nname: kernel-{tag}\nimage: oci:{}:{tag}\nexpect:\n  files:\n    - path: assets/talos/arm64/boot/vmlinuz\n      kernel: {{arch: arm64}}\n",
                layout.display()
            ),
        )?;
        let out = tdg.run(["verify".as_ref(), kspec.as_os_str()])?;
        let text = expect_exit(&out, code)?;
        if code == 1 {
            ensure!(
                text.contains("FAIL files::assets/talos/arm64/boot/vmlinuz::kernel")
                    && text.contains("runs past the end"),
                "{text}"
            );
        }
    }
    Ok(())
}

/// Pushes an imager image whose arm64 `vmlinuz` is `vmlinuz`, as `siderolabs/imager:<tag>`.
fn push_imager(registry: &str, work: &Path, tag: &str, vmlinuz: Vec<u8>) -> Result<()> {
    let mut entries: Vec<TarEntry> = upstream::imager_entries("arm64", 0)?;
    for e in entries.iter_mut() {
        if e.path == "usr/install/arm64/vmlinuz" {
            *e = TarEntry::file("usr/install/arm64/vmlinuz", vmlinuz.clone(), 0o644);
        }
    }
    let layout = work.join(format!("imager-{tag}"));
    fixtures::layout_image(
        &layout,
        tag,
        &[(entries, Compression::Gzip)],
        "linux/arm64",
        &Default::default(),
        Flavor::Oci,
    )?;
    fixtures::push_with_tdg(&layout, tag, &format!("{registry}/siderolabs/imager:{tag}"))?;
    Ok(())
}
