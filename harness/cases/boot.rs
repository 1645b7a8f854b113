//! Booting what tdg built under QEMU (Debian's arm64 cloud kernel, TCG), with the harness's
//! stand-in for Talos's init (`harness/boot/init.sh`): the layers the kernel's own unpacker and
//! squashfs driver mount, and every way a boot fails named in the kernel's or init's words.

use std::path::Path;

use std::process::Command;

use anyhow::{ensure, Context, Result};

use tdg::digest::Digest;
use tdg::imager::assemble::{Content, ExtensionInput};

use super::cli::{expect_exit, Tdg};
use crate::{upstream, world};

/// `sha256sum` of a layer's files as the init prints it: the listing of `find . -type f | sort
/// | xargs sha256sum`, hashed. Firmware is left out: the imager moves it into the cpio.
fn layer_sum(x: &ExtensionInput) -> Result<String> {
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    for f in &x.rootfs {
        if f.path.starts_with("usr/lib/firmware") {
            continue;
        }
        let bytes = match &f.content {
            Content::Bytes(b) => b.clone(),
            Content::Path(p) => std::fs::read(p)?,
            _ => continue,
        };
        files.push((format!("./{}", f.path), bytes));
    }
    files.sort_by(|a, b| a.0.cmp(&b.0));
    let listing: String = files
        .iter()
        .map(|(p, b)| format!("{}  {p}\n", Digest::of(b).hex()))
        .collect();
    Ok(Digest::of(listing.as_bytes()).hex().to_string())
}

fn boot(args: &[&str]) -> Result<(i32, serde_json::Value, String)> {
    let w = world::world()?;
    let tmp = tempfile::tempdir()?;
    let console = tmp.path().join("console.log");
    let mirror = format!("ghcr.io=http://{}", w.registry.addr);
    let mut a: Vec<String> = vec!["boot".into()];
    a.extend(args.iter().map(|s| s.to_string()));
    a.extend([
        "--mirror".into(),
        mirror,
        "--format".into(),
        "json".into(),
        "--console".into(),
        console.display().to_string(),
        "--timeout".into(),
        "120s".into(),
    ]);
    let out = Tdg::new()?.run(a.iter().map(String::as_str))?;
    let code = out.status.code().unwrap_or(-1);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).with_context(|| {
        format!(
            "tdg boot printed no JSON: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })?;
    let log = std::fs::read_to_string(&console).unwrap_or_default();
    Ok((code, v, log))
}

/// Both variants, as `tdg build` made and pushed them, boot: Talos's init enables every layer
/// in Talos's order (the last first), and each layer the kernel mounted holds its input's
/// files.
pub fn built_variants_boot_with_their_extensions() -> Result<()> {
    for variant in ["spin-only", "spin-tailscale"] {
        let image = format!("ghcr.io/urmanac/talos-cozystack-{variant}:v1.11.5");
        let (code, v, log) = boot(&[&image])?;
        ensure!(
            code == 0 && v["reached"] == true && v["panic"].is_null(),
            "{variant}: {v}\n{log}"
        );
        let mut want: Vec<String> = vec![
            "bnx2-bnx2x",
            "intel-ice-firmware",
            "qlogic-firmware",
            "drbd",
            "zfs",
            "spin",
        ]
        .into_iter()
        .map(String::from)
        .collect();
        if variant == "spin-tailscale" {
            want.push("tailscale".into());
        }
        want.push("modules.dep".into());
        want.reverse();
        let got: Vec<String> = v["extensions"]
            .as_array()
            .context("extensions")?
            .iter()
            .map(|e| e["name"].as_str().unwrap_or("").to_string())
            .collect();
        ensure!(got == want, "{variant}: {got:?}");
        let mut inputs = vec![tdg::demo::spin()];
        if variant == "spin-tailscale" {
            inputs.push(tdg::demo::tailscale());
        }
        inputs.push(upstream::cozystack_extension("drbd", "arm64")?);
        inputs.push(upstream::cozystack_extension("zfs", "arm64")?);
        for x in inputs {
            let line = format!(
                "[tdg-init] layer {} sha256 {}",
                x.metadata.name,
                layer_sum(&x)?
            );
            ensure!(log.contains(&line), "{variant}: no {line:?} in:\n{log}");
        }
    }
    Ok(())
}

/// Writes a spec that boots the world's spin-only image with `boot`.
fn boot_spec(dir: &Path, name: &str, boot: &str) -> Result<std::path::PathBuf> {
    world::write_spec(
        dir,
        name,
        &format!("apiVersion: tdg/v1\nname: {name}\nimage: ghcr.io/urmanac/talos-cozystack-spin-only:v1.11.5\nplatform: linux/arm64\ntalos: v1.11.5\nexpect:\n  boot:\n{boot}"),
    )
}

/// `tdg verify` of a spec with `expect.boot`, its JSON outcomes.
fn verify(spec: &Path, image: Option<&str>, extra: &[&str]) -> Result<(i32, serde_json::Value)> {
    let w = world::world()?;
    let mirror = format!("ghcr.io=http://{}", w.registry.addr);
    let mut a = vec![
        "verify".to_string(),
        spec.display().to_string(),
        "--mirror".into(),
        mirror,
        "--format".into(),
        "json".into(),
    ];
    if let Some(i) = image {
        a.extend(["--image".into(), i.into()]);
    }
    a.extend(extra.iter().map(|s| s.to_string()));
    let out = Tdg::new()?.run(a.iter().map(String::as_str))?;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .with_context(|| String::from_utf8_lossy(&out.stderr).to_string())?;
    Ok((out.status.code().unwrap_or(-1), v))
}

fn outcome<'a>(v: &'a serde_json::Value, check: &str) -> Result<&'a serde_json::Value> {
    v["specs"][0]["outcomes"]
        .as_array()
        .context("outcomes")?
        .iter()
        .find(|o| o["check"] == check)
        .with_context(|| format!("no {check} in {v}"))
}

/// Each way a boot fails, through `tdg verify` and a spec's `expect.boot`, with the message of
/// the kernel or the init: tailscale where it must be absent, an extension missing, a kernel
/// panic, a timeout; and `--no-boot` skipping (never passing) the boot checks.
pub fn boot_failures_are_named_in_the_kernels_words() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path();
    let ok = boot_spec(dir, "boot-ok", "    timeout: 120s\n    extensions: {present: [spin, modules.dep], absent: [tailscale]}\n    console: {contains: ['[tdg-init] layer spin sha256'], lacks: ['Kernel panic']}\n")?;
    let (code, v) = verify(&ok, None, &[])?;
    ensure!(code == 0, "{v}");
    for c in ["boot::reached", "boot::extensions", "boot::console"] {
        ensure!(outcome(&v, c)?["status"] == "pass", "{c}: {v}");
    }
    // Evidence bundles keep the console.
    let evidence = dir.join("evidence");
    let (code, _) = verify(
        &ok,
        None,
        &["--evidence", evidence.to_str().context("utf-8")?],
    )?;
    let console = std::fs::read_to_string(evidence.join("boot-ok/console.log"))?;
    ensure!(
        code == 0 && console.contains("entering maintenance service"),
        "console.log: {console}"
    );
    let (code, v) = verify(&ok, None, &["--no-boot"])?;
    ensure!(
        code == 1 && outcome(&v, "boot::reached")?["status"] == "skipped",
        "--no-boot: {v}"
    );
    let cases = [
        (
            "tailscale-present",
            "    timeout: 120s\n    extensions: {absent: [tailscale]}\n",
            Some("ghcr.io/urmanac/talos-cozystack-spin-tailscale:v1.11.5"),
            "boot::extensions",
            "tailscale 1.88.1 is present",
        ),
        (
            "extension-missing",
            "    timeout: 120s\n    extensions: {present: [nvidia-toolkit]}\n",
            None,
            "boot::extensions",
            "nvidia-toolkit is missing",
        ),
        (
            "panic",
            "    timeout: 120s\n    append: rdinit=/nonexistent\n",
            None,
            "boot::reached",
            "the kernel panicked: Kernel panic - not syncing",
        ),
        (
            // The init hangs before its last line, as a node that never comes up.
            "timeout",
            "    timeout: 20s\n    append: tdg.hang\n",
            None,
            "boot::reached",
            "the boot did not reach its end: timeout after 20s",
        ),
    ];
    for (name, boot, image, check, fragment) in cases {
        let spec = boot_spec(dir, name, boot)?;
        let (code, v) = verify(&spec, image, &[])?;
        let o = outcome(&v, check)?;
        ensure!(
            code == 1
                && o["status"] == "fail"
                && o["message"].as_str().unwrap_or("").contains(fragment),
            "{name}: {o}"
        );
    }
    Ok(())
}

/// An appended segment corrupted after the build: the kernel's unpacker says so, and the init
/// finds no extension to enable.
pub fn a_corrupted_segment_is_caught_by_the_kernel() -> Result<()> {
    let w = world::world()?;
    let tmp = tempfile::tempdir()?;
    let export = tmp.path().join("x");
    expect_exit(
        &Tdg::new()?.run([
            "export",
            "ghcr.io/urmanac/talos-cozystack-spin-only:v1.11.5",
            export.to_str().context("utf-8")?,
            "--mirror",
            &format!("ghcr.io=http://{}", w.registry.addr),
        ])?,
        0,
    )?;
    let boot_dir = export.join("assets/talos/arm64/boot");
    let mut data = std::fs::read(boot_dir.join("initramfs.xz"))?;
    let walked = tdg::talos::initramfs::walk_bytes(&data, Default::default())?;
    let last = walked.segments.last().context("segments")?;
    // Past the frame's magic: the block headers the decoder reads first.
    let at = last.offset as usize + 6;
    data[at..at + 64].fill(0x5a);
    let broken = tmp.path().join("initramfs.xz");
    std::fs::write(&broken, &data)?;
    let kernel = boot_dir.join("vmlinuz");
    let (code, v, log) = boot(&[
        "--kernel",
        kernel.to_str().context("utf-8")?,
        "--initrd",
        broken.to_str().context("utf-8")?,
    ])?;
    ensure!(
        v["extensions"].as_array().is_some_and(|e| e.is_empty()),
        "extensions enabled from a corrupt segment: {v}"
    );
    ensure!(
        log.contains("Initramfs unpacking failed"),
        "the kernel did not say it (exit {code}):\n{log}"
    );
    Ok(())
}

/// A UKI (systemd-boot-efi's arm64 stub with Debian's kernel, the harness's initramfs and the
/// spin-tailscale layers as `.linux`/`.initrd`, assembled by binutils' objcopy as systemd
/// documents it) boots under UEFI firmware (AAVMF), with every layer enabled.
pub fn a_uki_boots_under_uefi_firmware() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path();
    let k = crate::debian::arm64_kernel()?;
    std::fs::write(dir.join("vmlinuz"), k.vmlinuz()?)?;
    let exts = tdg::demo::variant_extensions("spin-tailscale");
    let mut initrd = upstream::boot_base_initramfs()?;
    initrd.extend(tdg::imager::bake::extensions_segment(
        &exts,
        tdg::talos::initramfs::Compression::Zstd,
    )?);
    std::fs::write(dir.join("initrd"), &initrd)?;
    std::fs::write(
        dir.join("osrel"),
        "NAME=Talos\nID=talos\nVERSION_ID=v1.11.5\n",
    )?;
    std::fs::write(dir.join("cmdline"), "talos.platform=metal console=ttyAMA0")?;
    // Sections after the stub's (it ends below 0x20000), 4 KiB aligned.
    let align = |n: u64| n.div_ceil(0x1000) * 0x1000;
    let linux = 0x40000u64;
    let initrd_at = align(linux + k.vmlinuz()?.len() as u64);
    let uki = dir.join("uki.efi");
    crate::fixtures::run(
        std::process::Command::new("aarch64-linux-gnu-objcopy")
            .current_dir(dir)
            .args([
                "--add-section",
                ".osrel=osrel",
                "--change-section-vma",
                ".osrel=0x20000",
            ])
            .args([
                "--add-section",
                ".cmdline=cmdline",
                "--change-section-vma",
                ".cmdline=0x30000",
            ])
            .args(["--add-section", ".linux=vmlinuz", "--change-section-vma"])
            .arg(format!(".linux={linux:#x}"))
            .args(["--add-section", ".initrd=initrd", "--change-section-vma"])
            .arg(format!(".initrd={initrd_at:#x}"))
            .arg(crate::debian::arm64_uki_stub()?)
            .arg(&uki),
    )?;
    // tdg reads what objcopy wrote as the UKI it is.
    let shown = expect_exit(
        &Tdg::new()?.run(["inspect".as_ref(), "uki".as_ref(), uki.as_os_str()])?,
        0,
    )?;
    ensure!(shown.contains("embedded kernel: arm64 Image"), "{shown}");
    let (code, v, log) = boot(&["--uki", uki.to_str().context("utf-8")?])?;
    ensure!(code == 0 && v["reached"] == true, "{v}\n{log}");
    let got: Vec<&str> = v["extensions"]
        .as_array()
        .context("extensions")?
        .iter()
        .filter_map(|e| e["name"].as_str())
        .collect();
    let want: Vec<&str> = exts
        .iter()
        .rev()
        .map(|x| x.metadata.name.as_str())
        .collect();
    ensure!(got == want, "{got:?}");
    for x in exts
        .iter()
        .filter(|x| x.metadata.name == "spin" || x.metadata.name == "tailscale")
    {
        let line = format!(
            "[tdg-init] layer {} sha256 {}",
            x.metadata.name,
            layer_sum(x)?
        );
        ensure!(log.contains(&line), "no {line:?} in:\n{log}");
    }
    Ok(())
}

/// What `tdg build --matchbox DIR` wrote boots with its profile's kernel arguments.
pub fn matchbox_output_boots_with_its_profile() -> Result<()> {
    let w = world::world()?;
    let tmp = tempfile::tempdir()?;
    let mb = tmp.path().join("matchbox");
    let spec = world::repo_root().join("specs/spin-only-arm64.yaml");
    expect_exit(
        &Tdg::new()?.run([
            "build".as_ref(),
            spec.as_os_str(),
            "--mirror".as_ref(),
            format!("ghcr.io=http://{}", w.registry.addr).as_ref(),
            "--matchbox".as_ref(),
            mb.as_os_str(),
        ])?,
        0,
    )?;
    let (code, v, log) = boot(&["--matchbox", mb.to_str().context("utf-8")?])?;
    ensure!(code == 0 && v["reached"] == true, "{v}\n{log}");
    ensure!(
        log.contains("slab_nomerge") && log.contains("talos.platform=metal"),
        "the profile's arguments are not on the kernel command line:\n{log}"
    );
    ensure!(
        v["extensions"].as_array().is_some_and(|e| e.len() == 7),
        "{v}"
    );
    Ok(())
}

/// SIGINT while QEMU runs: tdg stops it and exits 2, and no QEMU is left behind.
pub fn an_interrupted_boot_leaves_no_qemu_behind() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let k = crate::debian::arm64_kernel()?;
    let kernel = tmp.path().join("vmlinuz-interrupted");
    std::fs::write(&kernel, k.vmlinuz()?)?;
    let initrd = tmp.path().join("initrd-interrupted");
    std::fs::write(&initrd, upstream::boot_base_initramfs()?)?;
    let tdg = Tdg::new()?;
    let mut child = Command::new(env!("CARGO_BIN_EXE_tdg"))
        .env("TDG_CACHE", &tdg.cache)
        .args(["boot", "--kernel"])
        .arg(&kernel)
        .arg("--initrd")
        .arg(&initrd)
        .args(["--append", "tdg.hang", "--timeout", "300s"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    let running = || -> Result<bool> {
        let out = Command::new("pgrep")
            .arg("-f")
            .arg(initrd.to_str().context("utf-8")?)
            .output()?;
        Ok(out.status.success())
    };
    // Wait for QEMU to be up, then interrupt tdg as a terminal's Ctrl-C would.
    let start = std::time::Instant::now();
    while !running()? {
        ensure!(start.elapsed().as_secs() < 30, "QEMU never started");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    std::thread::sleep(std::time::Duration::from_secs(2));
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
    let status = child.wait()?;
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().context("stderr")?, &mut err)?;
    ensure!(
        status.code() == Some(2) && err.contains("interrupted"),
        "{status:?}: {err}"
    );
    std::thread::sleep(std::time::Duration::from_millis(300));
    ensure!(
        !running()?,
        "QEMU is still running after tdg was interrupted"
    );
    Ok(())
}

/// amd64 too: Debian's amd64 cloud kernel under `qemu-system-x86_64 -M q35` (KVM where
/// /dev/kvm opens), with the same init and the spin-tailscale layers.
pub fn amd64_boots_under_q35() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let k = crate::debian::amd64_kernel()?;
    let kernel = tmp.path().join("vmlinuz");
    std::fs::write(&kernel, k.vmlinuz()?)?;
    let exts = vec![tdg::demo::spin(), tdg::demo::tailscale()];
    let mut initrd = upstream::boot_base_initramfs_for("amd64")?;
    initrd.extend(tdg::imager::bake::extensions_segment(
        &exts,
        tdg::talos::initramfs::Compression::Zstd,
    )?);
    let initrd_path = tmp.path().join("initrd");
    std::fs::write(&initrd_path, &initrd)?;
    let (code, v, log) = boot(&[
        "--arch",
        "amd64",
        "--kernel",
        kernel.to_str().context("utf-8")?,
        "--initrd",
        initrd_path.to_str().context("utf-8")?,
    ])?;
    ensure!(code == 0 && v["reached"] == true, "{v}\n{log}");
    let got: Vec<&str> = v["extensions"]
        .as_array()
        .context("extensions")?
        .iter()
        .filter_map(|e| e["name"].as_str())
        .collect();
    ensure!(got == ["tailscale", "spin"], "{got:?}");
    for x in &exts {
        let line = format!(
            "[tdg-init] layer {} sha256 {}",
            x.metadata.name,
            layer_sum(x)?
        );
        ensure!(log.contains(&line), "no {line:?} in:\n{log}");
    }
    Ok(())
}
