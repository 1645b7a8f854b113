//! `tdg build` end to end through the CLI, against upstream fixtures in a real registry: the
//! build + push + verify flow of a release, independent readers of what it made, the same
//! digest twice, matchbox output and the bastion check, UKI bases, several arches, and each
//! kind of bad input failing before anything is pushed.

use std::path::Path;
use std::process::{Child, Command};

use anyhow::{ensure, Context, Result};

use tdg::oci::image::TarEntry;

use super::cli::{expect_exit, Tdg};
use crate::fixtures::{self, output};
use crate::registry::{Auth, Registry};
use crate::{upstream, world};

pub(super) fn spec_path(variant: &str) -> String {
    world::repo_root()
        .join(format!("specs/{variant}-arm64.yaml"))
        .display()
        .to_string()
}

/// `tdg build SPEC --mirror ghcr.io=http://REG ARGS…` with SOURCE_DATE_EPOCH set.
pub(super) fn build(
    tdg: &Tdg,
    registry: &str,
    spec: &str,
    args: &[&str],
) -> Result<std::process::Output> {
    let mirror = format!("ghcr.io=http://{registry}");
    let mut a = vec!["build", spec, "--mirror", &mirror];
    a.extend_from_slice(args);
    Ok(Command::new(env!("CARGO_BIN_EXE_tdg"))
        .env("TDG_CACHE", &tdg.cache)
        .env("DOCKER_CONFIG", &tdg.docker_config)
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .args(a)
        .output()?)
}

pub(super) fn sh(script: &str, dir: &Path) -> Result<String> {
    output(Command::new("sh").arg("-c").arg(script).current_dir(dir))
}

/// The flow of the "done when", for both variants: build, push, verify the pushed
/// image; then read it with skopeo, umoci, sha256sum, zstd, cpio and unsquashfs.
pub fn build_push_verify_and_independent_readers() -> Result<()> {
    let reg = Registry::start(None)?;
    let tmp = tempfile::tempdir()?;
    upstream::push_all(&reg.addr, tmp.path())?;
    for variant in ["spin-only", "spin-tailscale"] {
        let tdg = Tdg::new()?;
        let out = expect_exit(
            &build(
                &tdg,
                &reg.addr,
                &spec_path(variant),
                &["--push", "--verify"],
            )?,
            0,
        )?;
        for stage in [
            "pull base",
            "pull + validate extensions",
            "initramfs",
            "layout, report, checksums",
            "package",
            "tag",
            "push",
        ] {
            ensure!(
                out.contains(&format!(" {stage} ")),
                "no stage {stage}:\n{out}"
            );
        }
        ensure!(out.contains("0 failed, 0 errors, 0 skipped"), "{out}");
        let image = format!("{}/urmanac/talos-cozystack-{variant}:v1.11.5", reg.addr);
        let inspect: serde_json::Value = serde_json::from_str(&output(
            Command::new("skopeo")
                .args(["inspect", "--tls-verify=false"])
                .arg(format!("docker://{image}")),
        )?)?;
        ensure!(
            inspect["Architecture"] == "arm64"
                && inspect["Labels"]["org.opencontainers.image.title"]
                    == format!("talos-cozystack-{variant}"),
            "{inspect}"
        );
        let dir = tmp.path().join(variant);
        std::fs::create_dir_all(&dir)?;
        fixtures::run(
            Command::new("skopeo")
                .args(["copy", "--quiet", "--src-tls-verify=false"])
                .arg(format!("docker://{image}"))
                .arg(format!("oci:{}:t", dir.join("l").display())),
        )?;
        fixtures::run(
            Command::new("umoci")
                .arg("unpack")
                .arg("--image")
                .arg(format!("{}:t", dir.join("l").display()))
                .arg(dir.join("b")),
        )?;
        let root = dir.join("b/rootfs/assets/talos/arm64");
        let ok = sh("sha256sum -c checksums.sha256", &root)?;
        ensure!(
            ok.lines().count() == 4 && ok.lines().all(|l| l.ends_with(": OK")),
            "{ok}"
        );
        // The appended segment, read by the reference tools.
        let data = std::fs::read(root.join("boot/initramfs.xz"))?;
        let walked = tdg::talos::initramfs::walk_bytes(&data, Default::default())?;
        let last = walked.segments.last().context("no segments")?;
        std::fs::write(dir.join("ext.zst"), &data[last.offset as usize..])?;
        let listing = sh("zstd -dc ext.zst | cpio -t --quiet", &dir)?;
        // In the imager's order: the directory read sorted by name (contents.go): every
        // extension's image, extensions.yaml, the modules.dep layer, then the firmware moved
        // out of the firmware packages.
        let n = if variant == "spin-only" { 6 } else { 7 };
        let images: String = (0..n).map(|i| format!("{i}.sqsh\n")).collect();
        let head =
            format!("{images}extensions.yaml\nmodules.dep.sqsh\nusr\nusr/lib\nusr/lib/firmware\n");
        ensure!(
            listing.starts_with(&head)
                && listing.contains("usr/lib/firmware/bnx2x/bnx2x-e2-7.13.21.0.fw\n"),
            "{variant}: cpio lists {listing:?}"
        );
        std::fs::create_dir_all(dir.join("x"))?;
        sh(
            "zstd -dc ../ext.zst | cpio -id --quiet && unsquashfs -l 5.sqsh",
            &dir.join("x"),
        )
        .and_then(|l| {
            ensure!(
                l.contains("squashfs-root/usr/local/bin/containerd-shim-spin-v2"),
                "{l}"
            );
            Ok(())
        })?;
        modules_dep_is_depmods(&dir.join("x"))?;
        let report = std::fs::read_to_string(root.join("validation/build-report.txt"))?;
        ensure!(
            report.contains("Base Image: ghcr.io/siderolabs/imager:v1.11.5@sha256:")
                && report.contains("Source Commit: 0123abcdef")
                && report.contains(&format!("Machinery Layers: modules.dep {}", crate::debian::arm64_kernel()?.kver))
                && report.contains("Extensions: bnx2-bnx2x 20250917, intel-ice-firmware 20250917, qlogic-firmware 20250917, drbd 9.2.14-v1.11.5, zfs 2.3.3-v1.11.5, spin v0.21.0"),
            "{report}"
        );
    }
    Ok(())
}

/// The modules.dep layer holds what kmod's depmod writes for the base rootfs's modules plus
/// drbd's and zfs's, run here by hand on a tree of the same real modules; and Talos's
/// extensions.yaml names it as the imager does.
fn modules_dep_is_depmods(x: &Path) -> Result<()> {
    let k = crate::debian::arm64_kernel()?;
    let ours = x.join("ours");
    sh(
        &format!("unsquashfs -q -d {} modules.dep.sqsh", ours.display()),
        x,
    )?;
    let dep_dir = ours.join(format!("usr/lib/modules/{}", k.kver));
    let got = std::fs::read_to_string(dep_dir.join("modules.dep"))?;
    // The same tree, made by hand from the Debian package, and depmod run on it.
    let tree = x.join("ref");
    let mods = tree.join(format!("usr/lib/modules/{}", k.kver));
    for f in [
        "modules.order",
        "modules.builtin",
        "modules.builtin.modinfo",
    ] {
        std::fs::create_dir_all(&mods)?;
        std::fs::copy(k.modules().join(f), mods.join(f))?;
    }
    for (rel, dest) in [
        ("kernel/lib/libcrc32c.ko", "kernel/lib/libcrc32c.ko"),
        ("kernel/lib/lru_cache.ko", "kernel/lib/lru_cache.ko"),
        (
            "kernel/lib/crypto/libcurve25519-generic.ko",
            "kernel/lib/crypto/libcurve25519-generic.ko",
        ),
        (
            "kernel/drivers/block/loop.ko",
            "kernel/drivers/block/loop.ko",
        ),
        (
            "kernel/fs/squashfs/squashfs.ko",
            "kernel/fs/squashfs/squashfs.ko",
        ),
        ("kernel/drivers/block/drbd/drbd.ko", "extras/drbd.ko"),
        (
            "kernel/crypto/curve25519-generic.ko",
            "extras/curve25519-generic.ko",
        ),
        (
            "kernel/lib/crypto/libcurve25519.ko",
            "extras/libcurve25519.ko",
        ),
    ] {
        let d = mods.join(dest);
        std::fs::create_dir_all(d.parent().context("parent")?)?;
        std::fs::copy(k.modules().join(rel), d)?;
    }
    std::fs::write(x.join("extra.conf"), "search extras built-in\n")?;
    fixtures::run(
        Command::new("depmod")
            .args(["--all", "--basedir"])
            .arg(tree.join("usr"))
            .arg("--config")
            .arg(x.join("extra.conf"))
            .arg(&k.kver),
    )?;
    let want = std::fs::read_to_string(mods.join("modules.dep"))?;
    ensure!(
        got == want,
        "modules.dep differs from depmod's:\n{got}\n---\n{want}"
    );
    ensure!(
        got.contains("extras/drbd.ko: kernel/lib/libcrc32c.ko kernel/lib/lru_cache.ko"),
        "drbd's dependencies on the base's modules: {got}"
    );
    for f in [
        "modules.alias",
        "modules.symbols",
        "modules.dep.bin",
        "modules.builtin",
    ] {
        ensure!(dep_dir.join(f).is_file(), "no {f} in the modules.dep layer");
    }
    let yaml = std::fs::read_to_string(x.join("extensions.yaml"))?;
    ensure!(
        yaml.contains("image: modules.dep.sqsh")
            && yaml.contains(&format!("version: {}", k.kver))
            && yaml.contains("author: Talos Machinery"),
        "{yaml}"
    );
    Ok(())
}

/// The same inputs and SOURCE_DATE_EPOCH give the same digest, from different caches and
/// output directories; another epoch gives another digest.
pub fn two_builds_give_the_same_digest() -> Result<()> {
    let w = world::world()?;
    let tmp = tempfile::tempdir()?;
    let digest = |out: &std::process::Output| -> Result<String> {
        let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
        Ok(v["digest"].as_str().context("digest")?.to_string())
    };
    let mut digests = Vec::new();
    for i in 0..2 {
        let o = format!("oci:{}:v1", tmp.path().join(format!("out{i}")).display());
        let out = build(
            &Tdg::new()?,
            &w.registry.addr,
            &spec_path("spin-tailscale"),
            &["--output", &o, "--format", "json"],
        )?;
        expect_exit(&out, 0)?;
        digests.push(digest(&out)?);
    }
    ensure!(digests[0] == digests[1], "two builds: {digests:?}");
    let other = Command::new(env!("CARGO_BIN_EXE_tdg"))
        .env("TDG_CACHE", tmp.path().join("c"))
        .env("SOURCE_DATE_EPOCH", "1800000000")
        .args([
            "build",
            &spec_path("spin-tailscale"),
            "--mirror",
            &format!("ghcr.io=http://{}", w.registry.addr),
            "--format",
            "json",
        ])
        .output()?;
    expect_exit(&other, 0)?;
    ensure!(
        digest(&other)? != digests[0],
        "another SOURCE_DATE_EPOCH gave the same digest"
    );
    // With neither --output nor --push, --verify checks the temporary layout before it goes.
    let verified = build(
        &Tdg::new()?,
        &w.registry.addr,
        &spec_path("spin-tailscale"),
        &["--verify"],
    )?;
    let text = expect_exit(&verified, 0)?;
    ensure!(
        text.contains("0 failed, 0 errors") && !text.contains("layout oci:"),
        "{text}"
    );
    Ok(())
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Serves a directory over HTTP on loopback with Python's http.server.
fn serve(dir: &Path) -> Result<(Server, u16)> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let child = Command::new("python3")
        .args([
            "-m",
            "http.server",
            "--bind",
            "127.0.0.1",
            &port.to_string(),
            "--directory",
        ])
        .arg(dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()?;
    let server = Server(child);
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok((server, port));
        }
        std::thread::sleep(std::time::Duration::from_millis(30));
    }
    anyhow::bail!("python3 -m http.server did not start")
}

pub fn matchbox_output_and_the_bastion_check() -> Result<()> {
    let w = world::world()?;
    let tmp = tempfile::tempdir()?;
    let mb = tmp.path().join("matchbox");
    expect_exit(
        &build(
            &Tdg::new()?,
            &w.registry.addr,
            &spec_path("spin-only"),
            &["--matchbox", mb.to_str().context("utf-8")?],
        )?,
        0,
    )?;
    let profile: serde_json::Value =
        serde_json::from_slice(&std::fs::read(mb.join("profiles/spin-only-arm64.json"))?)?;
    ensure!(
        profile["boot"]["kernel"] == "/assets/vmlinuz"
            && profile["boot"]["initrd"][0] == "/assets/initramfs.xz",
        "{profile}"
    );
    let args: Vec<&str> = profile["boot"]["args"]
        .as_array()
        .context("args")?
        .iter()
        .filter_map(|a| a.as_str())
        .collect();
    ensure!(args == tdg::spec::COZYSTACK_KERNEL_ARGS, "{args:?}");
    let group: serde_json::Value =
        serde_json::from_slice(&std::fs::read(mb.join("groups/spin-only-arm64.json"))?)?;
    ensure!(group["profile"] == "spin-only-arm64", "{group}");
    let (_server, port) = serve(&mb)?;
    let url = format!("http://127.0.0.1:{port}/assets");
    let sums = mb.join("assets/checksums.sha256");
    let tdg = Tdg::new()?;
    let served = |code| {
        expect_exit(
            &tdg.run([
                "verify-served".as_ref(),
                url.as_ref(),
                "--checksums".as_ref(),
                sums.as_os_str(),
            ])?,
            code,
        )
    };
    let out = served(0)?;
    ensure!(
        out.contains("ok   ./vmlinuz") && out.contains("2 passed, 0 failed"),
        "{out}"
    );
    // A bastion serving a stale initramfs fails; a missing one too.
    std::fs::write(mb.join("assets/initramfs.xz"), b"stale")?;
    let out = served(1)?;
    ensure!(
        out.contains("FAIL ./initramfs.xz: expected ")
            && out.contains("served ")
            && out.contains("(5 bytes)"),
        "{out}"
    );
    std::fs::remove_file(mb.join("assets/vmlinuz"))?;
    let out = served(1)?;
    ensure!(
        out.contains("FAIL ./vmlinuz: ") && out.contains("404"),
        "{out}"
    );
    drop(_server);
    let out = served(2)?;
    ensure!(
        out.contains("127.0.0.1:")
            && out.contains(": cannot fetch http://127.0.0.1:")
            && out.contains("cannot connect"),
        "{out}"
    );
    Ok(())
}

/// A spec written by a test, building `extensions` onto `base` for `arch`.
pub(super) fn build_spec(
    dir: &Path,
    name: &str,
    arch: &str,
    base: &str,
    extensions: &[&str],
    expect: &str,
    push: Option<&str>,
) -> Result<String> {
    let exts: String = extensions.iter().map(|e| format!("    - {e}\n")).collect();
    let push = push.map(|p| format!("  push: {p}\n")).unwrap_or_default();
    let text = format!("apiVersion: tdg/v1\nname: {name}\nimage: ghcr.io/x/{name}:t\nplatform: linux/arm64\ntalos: v1.11.5\nexpect:\n{expect}build:\n  arch: {arch}\n  base: {base}\n  extensions:\n{exts}{push}");
    Ok(world::write_spec(dir, name, &text)?.display().to_string())
}

pub fn uki_base_and_several_arches() -> Result<()> {
    let w = world::world()?;
    let tmp = tempfile::tempdir()?;
    let expect = "  platforms: [linux/amd64, linux/arm64]\n  files:\n    - path: assets/talos/arm64/boot/initramfs.xz\n      initramfs: {extensions: {exact: [spin]}, compression: zstd}\n    - path: assets/talos/arm64/validation/build-report.txt\n      report: {fields: {Base Source: UKI sections}}\n";
    let spec = build_spec(
        tmp.path(),
        "uki-multi",
        "[amd64, arm64]",
        "ghcr.io/siderolabs/installer:v1.11.5",
        &["ghcr.io/siderolabs/spin:v0.21.0"],
        expect,
        None,
    )?;
    let out = build(
        &Tdg::new()?,
        &w.registry.addr,
        &spec,
        &[
            "--output",
            &format!("oci:{}:t", tmp.path().join("o").display()),
            "--verify",
        ],
    )?;
    let text = expect_exit(&out, 0)?;
    ensure!(
        text.contains("pull base") && text.contains("amd64") && text.contains("0 failed"),
        "{text}"
    );
    // The amd64 image of the index carries an amd64 kernel in its own layout.
    let tdg = Tdg::new()?;
    let k = expect_exit(
        &tdg.run([
            "inspect",
            "kernel",
            "--platform",
            "linux/amd64",
            &format!(
                "oci:{}:t//assets/talos/amd64/boot/vmlinuz",
                tmp.path().join("o").display()
            ),
        ])?,
        0,
    )?;
    ensure!(k.starts_with("bzImage for amd64"), "{k}");
    Ok(())
}

/// Each bad input stops the build with a clear error, before anything is pushed.
pub fn bad_inputs_fail_before_anything_is_pushed() -> Result<()> {
    let w = world::world()?;
    let tmp = tempfile::tempdir()?;
    let reg = &w.registry.addr;
    // Extension images that Talos would refuse, published under ghcr.io names.
    let mut incompatible = tdg::demo::spin();
    incompatible.metadata.compatibility.talos.version = ">= v1.12.0".into();
    // Outside /rootfs: Talos's loader refuses it (pkg/machinery/extensions/load.go).
    let mut outside = tdg::demo::extension_image_entries(&tdg::demo::spin())?;
    outside.push(TarEntry::dir("etc", 0o755));
    outside.push(TarEntry::file("etc/evil.service", "[Service]\n", 0o644));
    // Under /rootfs but off Talos's list: Talos 1.11 builds it unchecked, so tdg warns.
    let mut unlisted = tdg::demo::extension_image_entries(&tdg::demo::spin())?;
    unlisted.push(TarEntry::dir("rootfs/etc/systemd", 0o755));
    unlisted.push(TarEntry::file(
        "rootfs/etc/systemd/evil.service",
        "[Service]\n",
        0o644,
    ));
    // x86-only GPU firmware, which an arm64 build carries without use (image-factory #240).
    let i915 = tdg::imager::assemble::ExtensionInput {
        metadata: tdg::talos::extensions::Metadata {
            name: "i915".into(),
            version: "20250917".into(),
            ..Default::default()
        },
        rootfs: tdg::demo::with_parents(vec![tdg::imager::assemble::FileSpec::file(
            "usr/lib/firmware/i915/adlp_dmc.bin",
            "fw",
            0o644,
        )]),
    };
    for (name, entries) in [
        (
            "siderolabs/i915:x86",
            tdg::demo::extension_image_entries(&i915)?,
        ),
        (
            "siderolabs/spin:incompatible",
            tdg::demo::extension_image_entries(&incompatible)?,
        ),
        ("siderolabs/spin:outside", outside),
        ("siderolabs/spin:unlisted", unlisted),
    ] {
        let layout = tmp.path().join(name.replace(['/', ':'], "_"));
        upstream::layout_multi(&layout, "t", |_| Ok(entries.clone()))?;
        fixtures::push_with_tdg(&layout, "t", &format!("{reg}/{name}"))?;
    }
    let spin_digest = output(
        Command::new("skopeo")
            .args(["inspect", "--tls-verify=false", "--format", "{{.Digest}}"])
            .arg(format!("docker://{reg}/siderolabs/tailscale:1.88.1")),
    )?;
    let expect = "  files:\n    - path: assets/talos/arm64/boot/vmlinuz\n";
    let cases = [
        (
            "incompatible",
            "ghcr.io/siderolabs/imager:v1.11.5",
            "ghcr.io/siderolabs/spin:incompatible",
            "is incompatible: spin v0.21.0 requires Talos >= v1.12.0, not v1.11.5",
        ),
        (
            "outside",
            "ghcr.io/siderolabs/imager:v1.11.5",
            "ghcr.io/siderolabs/spin:outside",
            "1 entry outside /manifest.yaml and /rootfs, which Talos's loader refuses: /etc",
        ),
        (
            "no-kernel",
            "ghcr.io/siderolabs/spin:v0.21.0",
            "ghcr.io/siderolabs/spin:v0.21.0",
            "the base image ghcr.io/siderolabs/spin:v0.21.0 has no kernel for arm64",
        ),
        (
            "pin",
            "ghcr.io/siderolabs/imager:v1.11.5",
            &format!("ghcr.io/siderolabs/spin:v0.21.0@{}", spin_digest.trim()),
            "is pinned to sha256:",
        ),
    ];
    for (name, base, ext, fragment) in cases {
        let target = format!("ghcr.io/bad/{name}:t");
        let spec = build_spec(
            tmp.path(),
            name,
            "arm64",
            base,
            &[ext],
            expect,
            Some(&target),
        )?;
        let text = expect_exit(&build(&Tdg::new()?, reg, &spec, &["--push"])?, 2)?;
        ensure!(text.contains(fragment), "{name}: {text}");
        ensure!(
            text.lines().filter(|l| l.starts_with("tdg: error")).count() == 1 && text.len() < 600,
            "{name}: not short:\n{text}"
        );
        let gone = Command::new("skopeo")
            .args(["inspect", "--tls-verify=false"])
            .arg(format!("docker://{reg}/bad/{name}:t"))
            .output()?;
        ensure!(!gone.status.success(), "{name}: something was pushed");
    }
    let spec = build_spec(
        tmp.path(),
        "unlisted",
        "arm64",
        "ghcr.io/siderolabs/imager:v1.11.5",
        &["ghcr.io/siderolabs/spin:unlisted"],
        expect,
        None,
    )?;
    let o = format!("oci:{}:t", tmp.path().join("unlisted-out").display());
    let text = expect_exit(&build(&Tdg::new()?, reg, &spec, &["--output", &o])?, 0)?;
    ensure!(
        text.contains("warning: the extension ghcr.io/siderolabs/spin:unlisted: 1 path outside the paths Talos lists")
            && text.contains("/rootfs/etc/systemd/evil.service"),
        "unlisted: {text}"
    );
    // x86-only firmware in an arm64 build: a warning, and under build.strict a refusal.
    let x86 = build_spec(
        tmp.path(),
        "x86",
        "arm64",
        "ghcr.io/siderolabs/imager:v1.11.5",
        &["ghcr.io/siderolabs/i915:x86"],
        expect,
        None,
    )?;
    let o = format!("oci:{}:t", tmp.path().join("x86-out").display());
    let text = expect_exit(&build(&Tdg::new()?, reg, &x86, &["--output", &o])?, 0)?;
    ensure!(
        text.contains("warning: the extension ghcr.io/siderolabs/i915:x86 holds 1 file serving another architecture than arm64: /usr/lib/firmware/i915/adlp_dmc.bin: Intel i915 GPU firmware (x86 only)"),
        "x86: {text}"
    );
    std::fs::write(
        &x86,
        std::fs::read_to_string(&x86)?.replace("build:\n", "build:\n  strict: true\n"),
    )?;
    let o = format!("oci:{}:t", tmp.path().join("x86-strict-out").display());
    let text = expect_exit(&build(&Tdg::new()?, reg, &x86, &["--output", &o])?, 2)?;
    ensure!(
        text.contains("holds 1 file serving another architecture than arm64"),
        "x86 strict: {text}"
    );
    // The same input under `build.strict: true`: the extensions validator enforces the list,
    // and the build stops before anything is built.
    std::fs::write(
        &spec,
        std::fs::read_to_string(&spec)?.replace("build:\n", "build:\n  strict: true\n"),
    )?;
    let o = format!("oci:{}:t", tmp.path().join("strict-out").display());
    let text = expect_exit(&build(&Tdg::new()?, reg, &spec, &["--output", &o])?, 2)?;
    ensure!(
        text.contains("the extension ghcr.io/siderolabs/spin:unlisted: 1 path outside what the extensions validator (Talos v1.11.5's list) accepts")
            && !tmp.path().join("strict-out").exists(),
        "strict: {text}"
    );
    // A registry that refuses the push (no credentials) leaves no tag behind.
    let locked = Registry::start(Some(Auth {
        user: "u",
        password: "p",
    }))?;
    let spec = build_spec(
        tmp.path(),
        "refused",
        "arm64",
        "ghcr.io/siderolabs/imager:v1.11.5",
        &["ghcr.io/siderolabs/spin:v0.21.0"],
        expect,
        None,
    )?;
    let tdg = Tdg::new()?;
    let text = expect_exit(
        &build(
            &tdg,
            reg,
            &spec,
            &["--push", &format!("{}/refused:t", locked.addr)],
        )?,
        2,
    )?;
    ensure!(
        text.contains(&format!("registry {}", locked.addr))
            && text.contains("401")
            && text.contains("push preflight, before any input is pulled"),
        "{text}"
    );
    // The preflight refused before any input was pulled: the cache holds no blob.
    let blobs = tdg.cache.join("blobs/sha256");
    let cached = std::fs::read_dir(&blobs).map(|d| d.count()).unwrap_or(0);
    ensure!(
        cached == 0,
        "{cached} blobs were pulled before the push was refused"
    );
    let gone = Command::new("skopeo")
        .args(["inspect", "--tls-verify=false", "--creds", "u:p"])
        .arg(format!("docker://{}/refused:t", locked.addr))
        .output()?;
    ensure!(!gone.status.success(), "a tag exists after a refused push");
    Ok(())
}
