//! The Talos checks on real bytes: negative fixtures that each break one thing, reference
//! tools (cpio, zstd, xz, unsquashfs, sha256sum, objdump) reading what tdg writes, tdg reading
//! what those tools write, UKIs, and system extension images.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use anyhow::{ensure, Context, Result};

use tdg::demo::{self, AssetParts};
use tdg::imager::assemble::{self, FileSpec};
use tdg::oci::image::{Flavor, TarEntry};
use tdg::oci::manifest::Compression as Layer;
use tdg::talos::initramfs::Compression;
use tdg::talos::kernel;

use super::cli::{expect_exit, Tdg};
use crate::fixtures::{self, output, run};
use crate::world;

/// Pushes an image of `entries` to the shared registry and returns its reference.
fn push(tag: &str, entries: Vec<TarEntry>, labels: &BTreeMap<String, String>) -> Result<String> {
    let w = world::world()?;
    let tmp = tempfile::tempdir()?;
    let layout = tmp.path().join("l");
    fixtures::layout_image(
        &layout,
        "t",
        &[(entries, Layer::Gzip)],
        "linux/arm64",
        labels,
        Flavor::Oci,
    )?;
    let image = format!("{}/fixtures/talos:{tag}", w.registry.addr);
    fixtures::push_with_tdg(&layout, "t", &image)?;
    Ok(image)
}

/// Runs `tdg verify SPEC --image IMAGE --format json`, expecting exit 1, and returns the
/// outcome of `check`.
fn failing_check(spec: &Path, image: &str, check: &str) -> Result<(String, String)> {
    outcome(spec, image, check, 1)
}

/// One check's status and message from `tdg verify SPEC --image IMAGE`, which exits `code`.
fn outcome(spec: &Path, image: &str, check: &str, code: i32) -> Result<(String, String)> {
    let out = Tdg::new()?.run([
        "verify".as_ref(),
        spec.as_os_str(),
        "--image".as_ref(),
        image.as_ref(),
        "--format".as_ref(),
        "json".as_ref(),
    ])?;
    let text = expect_exit(&out, code)?;
    let v: serde_json::Value = serde_json::from_str(&String::from_utf8_lossy(&out.stdout))
        .with_context(|| text.clone())?;
    let o = v["specs"][0]["outcomes"]
        .as_array()
        .context("outcomes")?
        .iter()
        .find(|o| o["check"] == check)
        .with_context(|| format!("no check {check}"))?
        .clone();
    Ok((
        o["status"].as_str().unwrap_or("").to_string(),
        o["message"].as_str().unwrap_or("").to_string(),
    ))
}

/// `tdg verify SPEC --image IMAGE` passes.
fn passes(spec: &Path, image: &str) -> Result<()> {
    let out = Tdg::new()?.run([
        "verify".as_ref(),
        spec.as_os_str(),
        "--image".as_ref(),
        image.as_ref(),
    ])?;
    expect_exit(&out, 0).map(|_| ())
}

fn spin(compat: &str) -> assemble::ExtensionInput {
    let mut s = demo::spin();
    s.metadata.compatibility.talos.version = compat.into();
    s
}

pub fn negative_fixtures_fail_the_real_specs_with_specific_messages() -> Result<()> {
    // The fixtures' kernels are stand-ins that boot nothing: the real specs without their boot.
    let tmp = tempfile::tempdir()?;
    for variant in ["spin-only", "spin-tailscale"] {
        world::spec_without_boot(variant, tmp.path())?;
    }
    let specs = tmp.path().join("specs");
    let f = "files::assets/talos/arm64";
    let initramfs =
        |exts: Vec<assemble::ExtensionInput>| demo::initramfs("arm64", &exts, Compression::Zstd);
    type Break = Box<dyn Fn(&mut AssetParts) -> Result<()>>;
    let cases: Vec<(&str, &str, Break, String, &str)> = vec![
        ("amd64-kernel", "spin-only", Box::new(|p| { p.vmlinuz = kernel_bytes("amd64"); Ok(()) }), format!("{f}/boot/vmlinuz::kernel"), "expected an arm64 kernel, found amd64 (bzImage)"),
        ("tailscale-in-spin-only", "spin-only", Box::new(move |p| { p.initramfs = initramfs(demo::variant_extensions("spin-tailscale"))?; Ok(()) }), format!("{f}/boot/initramfs.xz::initramfs::extensions"), "tailscale 1.88.1 is present; not in exact: tailscale"),
        ("tailscale-service-on-a-worker", "spin-only", Box::new(move |p| { p.initramfs = initramfs(demo::variant_extensions("spin-tailscale"))?; Ok(()) }), format!("{f}/boot/initramfs.xz::initramfs::services"), "service tailscale is present; ext-tailscale waits for its ExtensionServiceConfig (not in waitForConfig)"),
        ("service-rootfs-missing", "spin-tailscale", Box::new(move |p| {
            let mut e = demo::variant_extensions("spin-tailscale");
            for x in e.iter_mut() { x.rootfs.retain(|f| !f.path.starts_with("usr/local/lib/containers")); }
            p.initramfs = initramfs(e)?;
            Ok(())
        }), format!("{f}/boot/initramfs.xz::initramfs::services"), "its container rootfs /usr/local/lib/containers/tailscale is missing"),
        ("service-spec-invalid", "spin-tailscale", Box::new(move |p| {
            let mut e = demo::variant_extensions("spin-tailscale");
            for x in e.iter_mut() {
                for f in x.rootfs.iter_mut().filter(|f| f.path.ends_with("containers/tailscale.yaml")) {
                    *f = FileSpec::file(&f.path.clone(), "name: tailscale\ncontainer: {entrypoint: /usr/local/bin/containerboot}\ndepends: [{configuration: true, service: cri}]\nrestart: sometimes\n", 0o644);
                }
            }
            p.initramfs = initramfs(e)?;
            Ok(())
        }), format!("{f}/boot/initramfs.xz::initramfs::services"), "sometimes does not belong to RestartKind values"),
        // systemd-boot's own arm64 EFI binary (Debian's systemd-boot-efi): a PE for arm64 that
        // boots no kernel.
        ("systemd-boot-as-kernel", "spin-only", Box::new(|p| {
            p.vmlinuz = std::fs::read(crate::debian::arm64_uki_stub()?.with_file_name("systemd-bootaa64.efi"))?;
            Ok(())
        }), format!("{f}/boot/vmlinuz::kernel"), "not a Linux kernel: a PE image for arm64 with no Linux header"),
        ("x86-firmware-on-arm64", "spin-only", Box::new(move |p| {
            let mut e = demo::variant_extensions("spin-only");
            e.push(tdg::imager::assemble::ExtensionInput {
                metadata: tdg::talos::extensions::Metadata { name: "i915".into(), version: "20250917".into(), ..Default::default() },
                rootfs: demo::with_parents(vec![FileSpec::file("usr/lib/firmware/i915/adlp_dmc.bin", "fw", 0o644)]),
            });
            p.initramfs = initramfs(e)?;
            Ok(())
        }), format!("{f}/boot/initramfs.xz::initramfs::arch"), "/usr/lib/firmware/i915/adlp_dmc.bin: Intel i915 GPU firmware (x86 only)"),
        ("x86-binary-on-arm64", "spin-only", Box::new(move |p| {
            let mut e = demo::variant_extensions("spin-only");
            let mut elf = b"\x7fELF\x02\x01\x01".to_vec();
            elf.resize(18, 0);
            elf.extend([62, 0, 1, 0, 0, 0]);
            for x in e.iter_mut().filter(|x| x.metadata.name == "spin") {
                x.rootfs.retain(|f| !f.path.ends_with("containerd-shim-spin-v2"));
                x.rootfs.push(FileSpec::file("usr/local/bin/containerd-shim-spin-v2", elf.clone(), 0o755));
            }
            p.initramfs = initramfs(e)?;
            Ok(())
        }), format!("{f}/boot/initramfs.xz::initramfs::arch"), "/usr/local/bin/containerd-shim-spin-v2: an ELF for x86-64 (in spin)"),
        ("spin-missing", "spin-tailscale", Box::new(move |p| { let mut e = demo::variant_extensions("spin-tailscale"); e.retain(|x| x.metadata.name != "spin"); p.initramfs = initramfs(e)?; Ok(()) }), format!("{f}/boot/initramfs.xz::initramfs::extensions"), "spin is missing"),
        ("no-modules-dep", "spin-only", Box::new(move |p| { let mut e = demo::variant_extensions("spin-only"); for x in e.iter_mut() { x.rootfs.retain(|f| !f.path.starts_with("usr/lib/modules")); } p.initramfs = initramfs(e)?; Ok(()) }), format!("{f}/boot/initramfs.xz::initramfs::extensions"), "modules.dep is missing"),
        ("incompatible", "spin-only", Box::new(move |p| { p.initramfs = initramfs(vec![spin(">= v1.12.0")])?; Ok(()) }), format!("{f}/boot/initramfs.xz::initramfs::compatibility"), "spin v0.21.0 requires Talos >= v1.12.0, not v1.11.5"),
        ("checksum-mismatch", "spin-only", Box::new(|p| { p.checksums = Some(p.computed_checksums().replacen(&tdg::digest::Digest::of(&p.vmlinuz).hex()[..8], "00000000", 1)); Ok(()) }), format!("{f}/checksums.sha256::checksums"), "./boot/vmlinuz: expected 00000000"),
        ("not-listed", "spin-only", Box::new(|p| { p.checksums = Some(p.computed_checksums().lines().take(2).map(|l| format!("{l}\n")).collect()); Ok(()) }), format!("{f}/checksums.sha256::checksums"), "./validation/build-report.txt: not listed"),
        ("other-commit", "spin-only", Box::new(|p| { p.report = p.report.replace(&format!("Source Commit: {}", demo::COMMIT), "Source Commit: 5555555aaaaaaa"); Ok(()) }), format!("{f}/validation/build-report.txt::report::revision"), "the report's Source Commit is 5555555aaaaaaa, but the image's org.opencontainers.image.revision is 0123abcdef"),
        ("json-twin-disagrees", "spin-only", Box::new(|p| { p.report_json = Some(r#"{"fields": {"Talos Version": "v1.10.9", "Variant": "spin-only", "Target": "arm64", "CozyStack Commit": "9f3c2e1"}}"#.into()); Ok(()) }), format!("{f}/validation/build-report.txt::report"), "build-report.json: Talos Version is 'v1.10.9', expected 'v1.11.5'"),
        ("truncated", "spin-only", Box::new(|p| { p.initramfs.truncate(p.initramfs.len() - 500); Ok(()) }), format!("{f}/boot/initramfs.xz::initramfs::extensions"), "decompressor failed"),
        ("corrupt-zstd", "spin-only", Box::new(|p| {
            let n = p.initramfs.len();
            p.initramfs[n - 2000..n - 1900].fill(0x55);
            Ok(())
        }), format!("{f}/boot/initramfs.xz::initramfs::extensions"), "zstd segment at offset"),
        // A later segment's file replaces a layer, as the kernel unpacks it (`..` at the root
        // stays there): Talos could not mount it.
        ("layer-replaced", "spin-only", Box::new(|p| {
            let evil = assemble::compress(&assemble::newc(&[FileSpec::file("../0.sqsh", "not a squashfs", 0o644)])?, Compression::Zstd, 3)?;
            p.initramfs.extend(evil);
            Ok(())
        }), format!("{f}/boot/initramfs.xz::initramfs::extensions"), "extensions.yaml names 0.sqsh, which is not a squashfs"),
    ];
    let mut problems = Vec::new();
    for (tag, variant, breaker, check, fragment) in cases {
        let mut parts = AssetParts::new(variant, "arm64", 1 << 20)?;
        breaker(&mut parts)?;
        let image = push(tag, parts.entries(), &demo::labels(variant))?;
        let (status, message) =
            failing_check(&specs.join(format!("{variant}-arm64.yaml")), &image, &check)?;
        if status != "fail" || !message.contains(fragment) || message.len() > 240 {
            problems.push(format!(
                "{tag}: {check} is {status}: {message:?}, wanted {fragment:?}"
            ));
        }
    }
    ensure!(problems.is_empty(), "{}", problems.join("\n"));
    Ok(())
}

fn kernel_bytes(arch: &str) -> Vec<u8> {
    demo::kernel(arch, 1 << 20)
}

fn sh(script: &str, dir: &Path) -> Result<String> {
    output(Command::new("sh").arg("-c").arg(script).current_dir(dir))
}

pub fn reference_tools_read_what_tdg_writes() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path();
    for (compression, tool) in [(Compression::Zstd, "zstd -dc"), (Compression::Xz, "xz -dc")] {
        let data = demo::initramfs(
            "amd64",
            &demo::variant_extensions("spin-tailscale"),
            compression,
        )?;
        let walked = tdg::talos::initramfs::walk_bytes(&data, Default::default())?;
        ensure!(
            walked.segments.len() == 3,
            "{} segments",
            walked.segments.len()
        );
        for (i, seg) in walked.segments.iter().enumerate() {
            let file = dir.join(format!("seg{i}"));
            std::fs::write(
                &file,
                &data[seg.offset as usize..(seg.offset + seg.size) as usize],
            )?;
            let listing = if seg.compression == Compression::None {
                sh(&format!("cpio -t --quiet < seg{i}"), dir)?
            } else {
                sh(&format!("{tool} seg{i} | cpio -t --quiet"), dir)?
            };
            let theirs: Vec<&str> = listing.lines().collect();
            let ours: Vec<String> = seg.entries.iter().map(|e| e.name).collect();
            ensure!(
                theirs == ours,
                "segment {i}: cpio lists {theirs:?}, tdg {ours:?}"
            );
        }
        // The extension squashfs reads in unsquashfs, root-owned, with the extension's files.
        let last = walked.segments.len() - 1;
        let x = dir.join(format!("x{last}-{tool}").replace(' ', ""));
        std::fs::create_dir_all(&x)?;
        sh(&format!("{tool} ../seg{last} | cpio -id --quiet"), &x)?;
        let image = |name: &str| -> Result<String> {
            let layers = &walked
                .extensions
                .as_ref()
                .context("no extensions.yaml")?
                .layers;
            Ok(layers
                .iter()
                .find(|l| l.metadata.name == name)
                .with_context(|| format!("no layer {name}"))?
                .image
                .clone())
        };
        let sq = sh(&format!("unsquashfs -lln {}", image("spin")?), &x)?;
        ensure!(
            sq.contains("squashfs-root/usr/local/bin/containerd-shim-spin-v2")
                && sq.contains(" 0/0 "),
            "{sq}"
        );
        let sq1 = sh(&format!("unsquashfs -l {}", image("tailscale")?), &x)?;
        ensure!(
            sq1.contains("squashfs-root/usr/local/etc/containers/tailscale.yaml"),
            "{sq1}"
        );
        let yaml = std::fs::read_to_string(x.join("extensions.yaml"))?;
        ensure!(
            yaml.contains("name: spin")
                && yaml.contains(&format!("image: {}", image("tailscale")?)),
            "{yaml}"
        );
    }
    // sha256sum -c verifies the checksums in an exported asset image.
    let layout = dir.join("layout");
    demo::write_asset_layout(&layout, "spin-only", "t", 1 << 20)?;
    let export = dir.join("export");
    expect_exit(
        &Tdg::new()?.run([
            "export".as_ref(),
            format!("oci:{}:t", layout.display()).as_ref(),
            export.as_os_str(),
        ])?,
        0,
    )?;
    let ok = sh(
        "sha256sum -c checksums.sha256",
        &export.join("assets/talos/arm64"),
    )?;
    ensure!(
        ok.lines().count() == 4 && ok.lines().all(|l| l.ends_with(": OK")),
        "{ok}"
    );
    Ok(())
}

pub fn tdg_reads_an_initramfs_built_by_cpio_zstd_and_mksquashfs() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let d = tmp.path();
    for (dir, files) in [
        ("base", vec![("init", "#!/init\n")]),
        (
            "spin-root/usr/local/bin",
            vec![("containerd-shim-spin-v2", "shim")],
        ),
        (
            "ts-root/usr/local/etc/containers",
            vec![(
                "tailscale.yaml",
                "name: tailscale\ndepends:\n  - service: cri\n  - configuration: true\ncontainer:\n  entrypoint: /usr/local/bin/containerboot\nrestart: always\n",
            )],
        ),
        (
            "ts-root/usr/local/lib/containers/tailscale/usr/local/bin",
            vec![("containerboot", "boot")],
        ),
        ("ext", vec![]),
    ] {
        std::fs::create_dir_all(d.join(dir))?;
        for (name, content) in files {
            std::fs::write(d.join(dir).join(name), content)?;
        }
    }
    let yaml = "layers:\n  - image: 0.sqsh\n    metadata:\n      name: spin\n      version: v0.21.0\n      author: Sven Pfennig\n      description: Spin\n      compatibility:\n        talos:\n          version: '>= v1.0.0'\n  - image: 1.sqsh\n    metadata:\n      name: tailscale\n      version: 1.88.1\n      author: Siderolabs\n      description: Tailscale\n      compatibility:\n        talos:\n          version: '>= v1.0.0'\n";
    std::fs::write(d.join("ext/extensions.yaml"), yaml)?;
    for (root, image) in [("spin-root", "ext/0.sqsh"), ("ts-root", "ext/1.sqsh")] {
        run(Command::new("mksquashfs")
            .args([
                root,
                image,
                "-comp",
                "zstd",
                "-all-root",
                "-noappend",
                "-quiet",
            ])
            .current_dir(d))?;
    }
    sh(
        "cd base && find . | cpio -o -H newc --quiet | zstd -q -o ../base.zst",
        d,
    )?;
    sh("cd ext && printf 'extensions.yaml\\n0.sqsh\\n1.sqsh\\n' | cpio -o -H newc --quiet --reproducible -R +0:+0 | zstd -18 -q -o ../ext.zst", d)?;
    sh("cat base.zst ext.zst > initramfs.xz", d)?;
    let out = Tdg::new()?.run([
        "inspect",
        "initramfs",
        "--format",
        "json",
        d.join("initramfs.xz").to_str().context("utf-8")?,
    ])?;
    expect_exit(&out, 0)?;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let names: Vec<&str> = v["extensions"]["layers"]
        .as_array()
        .context("layers")?
        .iter()
        .filter_map(|l| l["metadata"]["name"].as_str())
        .collect();
    ensure!(names == ["spin", "tailscale"], "{names:?}");
    let segs = v["segments"].as_array().context("segments")?;
    ensure!(
        segs.len() == 2 && segs.iter().all(|s| s["compression"] == "zstd"),
        "{segs:?}"
    );
    let sq: Vec<&str> = segs[1]["entries"]
        .as_array()
        .context("entries")?
        .iter()
        .filter_map(|e| e["squashfs"].as_str())
        .collect();
    ensure!(sq == ["zstd", "zstd"], "{sq:?}");
    // The service spec, read out of the squashfs mksquashfs wrote, as the node would run it.
    let services = v["services"].as_array().context("services")?;
    ensure!(
        services.len() == 1
            && services[0]["name"] == "ext-tailscale"
            && services[0]["waits_for_config"] == true
            && services[0].get("problems").is_none(),
        "{services:?}"
    );
    let human = Tdg::new()?.run([
        "inspect",
        "initramfs",
        d.join("initramfs.xz").to_str().context("utf-8")?,
    ])?;
    let text = expect_exit(&human, 0)?;
    ensure!(
        text.contains("1.sqsh   tailscale") && text.contains("Talos >= v1.0.0"),
        "{text}"
    );
    Ok(())
}

fn uki(arch: &str, cmdline: &str) -> Result<Vec<u8>> {
    uki_with(arch, cmdline, &[demo::spin()], Compression::Zstd)
}

fn uki_with(
    arch: &str,
    cmdline: &str,
    exts: &[assemble::ExtensionInput],
    c: Compression,
) -> Result<Vec<u8>> {
    let machine = if arch == "arm64" {
        kernel::MACHINE_ARM64
    } else {
        kernel::MACHINE_AMD64
    };
    let initrd = demo::initramfs(arch, exts, c)?;
    let linux = kernel_bytes(arch);
    Ok(kernel::write_pe(
        machine,
        &[
            (".osrel", b"NAME=Talos\nID=talos\nVERSION_ID=v1.11.5\n"),
            (".cmdline", cmdline.as_bytes()),
            (".uname", b"6.12.57-talos"),
            (".linux", &linux),
            (".initrd", &initrd),
        ],
    ))
}

pub fn uki_sections_are_checked_and_read_by_objdump() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let spec = world::write_spec(
        tmp.path(),
        "uki",
        "apiVersion: tdg/v1\nname: uki\nimage: x/y:z\ntalos: v1.11.5\nexpect:\n  files:\n    - path: usr/install/arm64/vmlinuz.efi\n      kernel: {arch: arm64}\n      uki:\n        cmdline_contains: [talos.platform=metal, console=ttyS0]\n        initramfs:\n          compression: zstd\n          extensions: {present: [spin], absent: [tailscale]}\n",
    )?;
    let good = push(
        "uki-good",
        vec![
            TarEntry::dir("usr", 0o755),
            TarEntry::dir("usr/install", 0o755),
            TarEntry::dir("usr/install/arm64", 0o755),
            TarEntry::file(
                "usr/install/arm64/vmlinuz.efi",
                uki("arm64", "talos.platform=metal console=ttyS0")?,
                0o644,
            ),
        ],
        &BTreeMap::new(),
    )?;
    passes(&spec, &good)?;
    let bad = push(
        "uki-bad",
        vec![TarEntry::file(
            "usr/install/arm64/vmlinuz.efi",
            uki_with(
                "amd64",
                "talos.platform=aws",
                &[demo::spin(), demo::tailscale()],
                Compression::Xz,
            )?,
            0o644,
        )],
        &BTreeMap::new(),
    )?;
    let f = "files::usr/install/arm64/vmlinuz.efi";
    let (s, m) = failing_check(&spec, &bad, &format!("{f}::kernel"))?;
    ensure!(
        s == "fail" && m == "expected an arm64 kernel, found amd64 (UKI)",
        "{s}: {m}"
    );
    let (s, m) = failing_check(&spec, &bad, &format!("{f}::uki"))?;
    ensure!(s == "fail" && m.starts_with(".cmdline lacks 'talos.platform=metal', 'console=ttyS0' (it is 'talos.platform=aws')"), "{s}: {m}");
    let (s, m) = failing_check(&spec, &bad, &format!("{f}::uki::initramfs::extensions"))?;
    ensure!(
        s == "fail" && m.starts_with("tailscale 1.88.1 is present"),
        "{s}: {m}"
    );
    let (s, m) = failing_check(&spec, &bad, &format!("{f}::uki::initramfs::compression"))?;
    ensure!(
        s == "fail" && m == "expected zstd segments: segment at offset 4744 is xz, segment at offset 267612 is xz",
        "{s}: {m}"
    );
    // binutils reads the sections tdg wrote.
    let file = tmp.path().join("vmlinuz.efi");
    std::fs::write(&file, uki("amd64", "talos.platform=metal")?)?;
    let sections = output(Command::new("objdump").arg("-h").arg(&file))?;
    for s in [".osrel", ".cmdline", ".uname", ".linux", ".initrd"] {
        ensure!(
            sections.contains(s),
            "objdump does not see {s}:\n{sections}"
        );
    }
    let human = expect_exit(
        &Tdg::new()?.run(["inspect".as_ref(), "uki".as_ref(), file.as_os_str()])?,
        0,
    )?;
    ensure!(
        human.contains("embedded kernel: bzImage for amd64")
            && human.contains("cmdline: talos.platform=metal"),
        "{human}"
    );
    Ok(())
}

pub fn extension_images_are_checked_against_what_talos_accepts() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let spec = world::write_spec(tmp.path(), "ext", "apiVersion: tdg/v1\nname: ext\nimage: x/y:z\ntalos: v1.11.5\nexpect:\n  extension: {name: spin, version: v0.21.0}\n")?;
    let good = push(
        "ext-good",
        demo::extension_image_entries(&demo::spin())?,
        &BTreeMap::new(),
    )?;
    passes(&spec, &good)?;
    // A manifest as Talos's loader reads it: unknown keys ignored, extraInfo kept, only the
    // version required (pkg/machinery/extensions/load.go).
    let mut lax = demo::extension_image_entries(&demo::spin())?;
    lax.retain(|e| e.path != "manifest.yaml");
    lax.push(TarEntry::file(
        "manifest.yaml",
        "version: v1alpha1\nmetadata:\n  name: spin\n  version: v0.21.0\n  extraInfo: |\n    customization: {}\n  maintainers: [someone]\nannotations: {a: b}\n",
        0o644,
    ));
    passes(&spec, &push("ext-lax-manifest", lax, &BTreeMap::new())?)?;
    let inspect = expect_exit(&Tdg::new()?.run(["inspect", "extension", &good])?, 0)?;
    ensure!(
        inspect.contains("spin v0.21.0 by Sven Pfennig")
            && inspect.contains("accepted by Talos: yes"),
        "{inspect}"
    );
    // A file off Talos's list: Talos through 1.8 refuses it; from 1.9 the imager builds it
    // without checking (pkg/imager/extensions/extensions.go), so it passes with a warning.
    let mut unlisted = demo::extension_image_entries(&demo::spin())?;
    unlisted.push(TarEntry::dir("rootfs/etc/ssh", 0o755));
    unlisted.push(TarEntry::file(
        "rootfs/etc/ssh/sshd_config",
        "PermitRootLogin yes\n",
        0o644,
    ));
    // A string prefix, as Talos compares: /usr/localx is under /usr/local.
    unlisted.push(TarEntry::file("rootfs/usr/localx", "x\n", 0o644));
    let unlisted = push("ext-unlisted", unlisted, &BTreeMap::new())?;
    let (s, m) = outcome(&spec, &unlisted, "extension::rootfs", 0)?;
    ensure!(
        s == "pass"
            && m.starts_with("warning: 1 path outside the paths Talos lists")
            && m.contains("Talos v1.11.5 builds without checking: /rootfs/etc/ssh/sshd_config"),
        "{s}: {m}"
    );
    let old = world::write_spec(tmp.path(), "old", "apiVersion: tdg/v1\nname: old\nimage: x/y:z\ntalos: v1.8.4\nexpect:\n  extension: {name: spin}\n")?;
    let (s, m) = failing_check(&old, &unlisted, "extension::rootfs")?;
    ensure!(
        s == "fail"
            && m.starts_with(
                "1 path outside what Talos v1.8.4 accepts (/rootfs{/etc/cri/conf.d,/lib/firmware"
            ),
        "{s}: {m}"
    );
    let mut entries = demo::extension_image_entries(&spin(">= v1.12.0"))?;
    entries.push(TarEntry::file("README.md", "stray\n", 0o644));
    let bad = push("ext-bad", entries, &BTreeMap::new())?;
    let (s, m) = failing_check(&spec, &bad, "extension::rootfs")?;
    ensure!(
        s == "fail"
            && m == "1 entry outside /manifest.yaml and /rootfs, which Talos's loader refuses: /README.md",
        "{s}: {m}"
    );
    let (s, m) = failing_check(&spec, &bad, "extension::compatibility")?;
    ensure!(
        s == "fail" && m == "spin v0.21.0 requires Talos >= v1.12.0, not v1.11.5",
        "{s}: {m}"
    );
    let wrong_name = push(
        "ext-tailscale",
        demo::extension_image_entries(&demo::tailscale())?,
        &BTreeMap::new(),
    )?;
    let (s, m) = failing_check(&spec, &wrong_name, "extension::manifest")?;
    ensure!(
        s == "fail" && m == "manifest names 'tailscale', expected 'spin'",
        "{s}: {m}"
    );
    // Its service, listed by `inspect extension` with what it waits for; a broken copy of it
    // is a warning (the imager builds it, the node never runs it).
    let text = expect_exit(&Tdg::new()?.run(["inspect", "extension", &wrong_name])?, 0)?;
    ensure!(
        text.contains("service ext-tailscale (/usr/local/etc/containers/tailscale.yaml): waits for service cri; network addresses; its ExtensionServiceConfig"),
        "{text}"
    );
    let mut broken = demo::extension_image_entries(&demo::tailscale())?;
    broken.retain(|e| !e.path.starts_with("rootfs/usr/local/lib/containers"));
    let broken = push("ext-tailscale-no-rootfs", broken, &BTreeMap::new())?;
    let text = expect_exit(&Tdg::new()?.run(["inspect", "extension", &broken])?, 0)?;
    ensure!(
        text.contains("warning: service ext-tailscale (/usr/local/etc/containers/tailscale.yaml): its container rootfs /usr/local/lib/containers/tailscale is missing"),
        "{text}"
    );
    let no_manifest = push(
        "ext-no-manifest",
        vec![
            TarEntry::dir("rootfs", 0o755),
            TarEntry::dir("rootfs/usr", 0o755),
        ],
        &BTreeMap::new(),
    )?;
    let (s, m) = failing_check(&spec, &no_manifest, "extension::manifest")?;
    ensure!(s == "fail" && m == "/manifest.yaml is missing", "{s}: {m}");
    let out = Tdg::new()?.run(["inspect", "extension", &bad])?;
    let text = expect_exit(&out, 1)?;
    ensure!(
        text.contains("problem: 1 entry outside /manifest.yaml and /rootfs"),
        "{text}"
    );
    // Strict mode: siderolabs/extensions' validator. The path list is enforced whatever the
    // Talos version; the version must have one of its shapes; every service spec must be valid.
    let strict = world::write_spec(tmp.path(), "strict", "apiVersion: tdg/v1\nname: strict\nimage: x/y:z\ntalos: v1.11.5\nexpect:\n  extension: {name: spin, strict: true}\n")?;
    passes(&strict, &good)?;
    let (s, m) = failing_check(&strict, &unlisted, "extension::rootfs")?;
    ensure!(
        s == "fail"
            && m.starts_with(
                "1 path outside what the extensions validator (Talos v1.11.5's list) accepts"
            ),
        "{s}: {m}"
    );
    let mut latest = tdg::demo::spin();
    latest.metadata.version = "latest".into();
    let latest = push(
        "ext-version-latest",
        demo::extension_image_entries(&latest)?,
        &BTreeMap::new(),
    )?;
    let (s, m) = failing_check(&strict, &latest, "extension::validator")?;
    ensure!(
        s == "fail" && m == "invalid version format latest for extension: spin",
        "{s}: {m}"
    );
    let mut bad_service = demo::tailscale();
    for f in bad_service
        .rootfs
        .iter_mut()
        .filter(|f| f.path.ends_with("tailscale.yaml"))
    {
        *f = tdg::imager::assemble::FileSpec::file(&f.path.clone(), "name: Tailscale\ncontainer: {entrypoint: /usr/local/bin/containerboot}\nrestart: always\ndepends: [{path: run/x}]\n", 0o644);
    }
    let bad_service = push(
        "ext-bad-service",
        demo::extension_image_entries(&bad_service)?,
        &BTreeMap::new(),
    )?;
    let ts_strict = world::write_spec(tmp.path(), "ts-strict", "apiVersion: tdg/v1\nname: ts-strict\nimage: x/y:z\ntalos: v1.11.5\nexpect:\n  extension: {name: tailscale, strict: true}\n")?;
    let (s, m) = failing_check(&ts_strict, &bad_service, "extension::validator")?;
    ensure!(
        s == "fail" && m == "error validating service spec file tailscale.yaml: name \"Tailscale\" is invalid; path is not absolute: \"run/x\"",
        "{s}: {m}"
    );
    passes(&ts_strict, &wrong_name)?;
    let out = Tdg::new()?.run(["inspect", "extension", &latest, "--strict"])?;
    let text = expect_exit(&out, 1)?;
    ensure!(
        text.contains("problem: invalid version format latest for extension: spin"),
        "{text}"
    );
    let out = Tdg::new()?.run(["inspect", "extension", &unlisted, "--talos", "v1.8.4"])?;
    let text = expect_exit(&out, 1)?;
    ensure!(
        text.contains("problem: 1 path outside what Talos v1.8.4 accepts"),
        "{text}"
    );
    // The constraint, judged as verify and the imager judge it: `>= v1.12.0` on Talos 1.11.5
    // is refused, and said by the exit code; without --talos there is nothing to judge.
    let mut incompatible = demo::extension_image_entries(&spin(">= v1.99.0"))?;
    incompatible.retain(|e| e.path != "README.md");
    let incompatible = push("ext-incompatible", incompatible, &BTreeMap::new())?;
    let out = Tdg::new()?.run(["inspect", "extension", &incompatible, "--talos", "1.12.0"])?;
    let text = expect_exit(&out, 1)?;
    ensure!(
        text.contains("problem: spin v0.21.0 requires Talos >= v1.99.0, not 1.12.0")
            && !text.contains("accepted by Talos: yes"),
        "{text}"
    );
    expect_exit(
        &Tdg::new()?.run(["inspect", "extension", &incompatible])?,
        0,
    )?;
    // A manifest with null and empty values, as Talos's decoder reads it (zero values, the
    // first document only).
    let mut nulls = demo::extension_image_entries(&demo::spin())?;
    nulls.retain(|e| e.path != "manifest.yaml");
    nulls.push(TarEntry::file(
        "manifest.yaml",
        "version: v1alpha1\nmetadata:\n  name: spin\n  version: v0.21.0\n  author: ~\n  compatibility:\n---\n",
        0o644,
    ));
    let nulls = push("ext-nulls", nulls, &BTreeMap::new())?;
    passes(&spec, &nulls)?;
    // A manifest.yaml that is a symlink into rootfs/: Talos's os.Open follows it.
    let mut linked = demo::extension_image_entries(&demo::spin())?;
    let text = linked
        .iter()
        .find_map(|e| match (&e.path[..], &e.body) {
            ("manifest.yaml", tdg::oci::image::Body::File(b)) => Some(b.clone()),
            _ => None,
        })
        .context("the demo manifest")?;
    linked.retain(|e| e.path != "manifest.yaml");
    linked.push(TarEntry::file(
        "rootfs/usr/local/share/spin-manifest.yaml",
        text,
        0o644,
    ));
    linked.push(TarEntry::symlink(
        "manifest.yaml",
        "rootfs/usr/local/share/spin-manifest.yaml",
    ));
    let linked = push("ext-linked-manifest", linked, &BTreeMap::new())?;
    passes(&spec, &linked)?;
    let text = expect_exit(&Tdg::new()?.run(["inspect", "extension", &linked])?, 0)?;
    ensure!(text.contains("spin v0.21.0"), "{text}");
    let text = expect_exit(&Tdg::new()?.run(["inspect", "extension", &unlisted])?, 0)?;
    ensure!(
        text.contains("warning: 1 path outside the paths Talos lists")
            && text.contains("accepted by Talos: yes"),
        "{text}"
    );
    Ok(())
}
