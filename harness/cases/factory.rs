//! The Image Factory path: schematic IDs against go-yaml v4 itself on generated schematics,
//! URLs, and `tdg factory release` and `build.source.factory` against a stand-in factory on
//! loopback (Go, computing IDs with go-yaml v4) and a real registry for the installer image.

use std::path::{Path, PathBuf};

use anyhow::{ensure, Context, Result};

use tdg::factory::schematic::Schematic;

use super::cli::{expect_exit, text, Tdg};
use super::schematic_gen::{generate, has_yaml11_break, HAND_WRITTEN};
use crate::factory::{self, Behaviour, FakeFactory, WELL};
use crate::fixtures::{output, push_with_skopeo};
use crate::{upstream, world};

/// Thousands of generated schematics, as JSON and as block YAML: tdg's canonical bytes are
/// go-yaml v4's, byte for byte, and tdg refuses exactly what go-yaml v4 refuses.
pub fn schematic_ids_match_go_yaml_v4_on_generated_schematics() -> Result<()> {
    // The project's own schematics first, then hand-written and generated ones.
    let mut docs = Vec::new();
    for e in std::fs::read_dir(world::repo_root().join("schematics"))? {
        docs.push(std::fs::read_to_string(e?.path())?);
    }
    ensure!(docs.len() >= 2, "schematics/ holds the two variants");
    docs.extend(HAND_WRITTEN.iter().map(|d| d.to_string()));
    docs.extend(generate(3000));
    let go = factory::canonical_batch(&docs)?;
    let (mut same, mut both_refuse, mut mismatches) = (0, 0, Vec::new());
    for (doc, want) in docs.iter().zip(&go) {
        let got = Schematic::parse(Path::new("gen.yaml"), doc).map(|s| s.canonical());
        match (&got, want) {
            (Ok(a), Ok(b)) if a == b => same += 1,
            (Err(_), Err(_)) => both_refuse += 1,
            (Err(e), Ok(_)) if has_yaml11_break(doc) && e.message.contains("line break") => {}
            _ => mismatches.push(format!(
                "--- input {doc:?}\n    tdg {:?}\n    go  {want:?}",
                got.map_err(|e| e.to_string())
            )),
        }
    }
    ensure!(
        mismatches.is_empty(),
        "{} of {} differ from go-yaml v4:\n{}",
        mismatches.len(),
        docs.len(),
        mismatches[..mismatches.len().min(40)].join("\n")
    );
    ensure!(
        same > 2500 && both_refuse > 0,
        "too few comparisons: {same} same, {both_refuse} refused by both"
    );
    eprintln!(
        "schematics: {same} same bytes, {both_refuse} refused by both, of {}",
        docs.len()
    );
    Ok(())
}

/// The published IDs through the CLI, the canonical bytes, and errors at file:line:col.
pub fn schematic_cli_prints_ids_and_located_errors() -> Result<()> {
    let tdg = Tdg::new()?;
    let dir = tempfile::tempdir()?;
    let cases = [
        ("customization: {}\n", "376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba"),
        ("customization:\n  extraKernelArgs:\n    - noapic\n    - nolapic\n", "9cba8e32753f91a16c1837ab8abf356af021706ef284aef07380780177d9a06c"),
        ("{\"customization\": {\"systemExtensions\": {\"officialExtensions\": [\"siderolabs/gvisor\"]}}}", "d9ff89777e246792e7642abd3220a616afb4e49822382e4213a2e528ab826fe5"),
    ];
    for (i, (body, id)) in cases.iter().enumerate() {
        let f = dir.path().join(format!("s{i}.yaml"));
        std::fs::write(&f, body)?;
        let out = tdg.run(["schematic".as_ref(), "id".as_ref(), f.as_os_str()])?;
        ensure!(
            expect_exit(&out, 0)?.trim() == *id,
            "{body}: {}",
            text(&out)
        );
        let out = tdg.run(["schematic".as_ref(), "canonical".as_ref(), f.as_os_str()])?;
        let canonical = expect_exit(&out, 0)?;
        ensure!(
            output(std::process::Command::new("sh").arg("-c").arg(format!(
                "printf '%s' '{}' | sha256sum",
                canonical.replace('\'', "'\\''")
            )))?
            .starts_with(id),
            "sha256sum of the canonical bytes is the ID"
        );
    }
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "customization:\n  systemExtension:\n    officialExtensions: [siderolabs/spin]\n",
    )?;
    let out = tdg.run(["schematic".as_ref(), "id".as_ref(), bad.as_os_str()])?;
    let t = expect_exit(&out, 2)?;
    ensure!(
        t.contains(&format!(
            "{}:2:3: field systemExtension not found",
            bad.display()
        )) && t.contains("2 |   systemExtension:"),
        "{t}"
    );
    let out = tdg.run(["schematic", "id", "/nonexistent/schematic.yaml"])?;
    ensure!(
        expect_exit(&out, 2)?.contains("cannot read schematic"),
        "{}",
        text(&out)
    );
    Ok(())
}

fn write_schematic(dir: &Path) -> Result<PathBuf> {
    let f = dir.join("schematic.yaml");
    std::fs::write(
        &f,
        "customization:\n  systemExtensions:\n    officialExtensions:\n      - siderolabs/spin\n",
    )?;
    Ok(f)
}

pub fn factory_urls_in_human_and_json() -> Result<()> {
    let tdg = Tdg::new()?;
    let dir = tempfile::tempdir()?;
    let s = write_schematic(dir.path())?;
    let id = Schematic::load(&s).map_err(|e| e.with_snippet())?.id();
    let s = s.to_str().context("utf-8")?;
    let args = |extra: &[&'static str]| {
        let mut a = target_args("urls", s);
        a.extend_from_slice(extra);
        a
    };
    let human = expect_exit(&tdg.run(args(&[]))?, 0)?;
    ensure!(
        human.contains(&format!(
            "installer           factory.talos.dev/metal-installer/{id}:v1.11.5"
        )),
        "{human}"
    );
    let out = tdg.run(args(&["--secureboot", "--format", "json"]))?;
    let j: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let img = format!("https://factory.talos.dev/image/{id}/v1.11.5");
    for (k, v) in [
        ("kernel", format!("{img}/kernel-arm64")),
        ("initramfs", format!("{img}/initramfs-arm64.xz")),
        ("cmdline", format!("{img}/cmdline-metal-arm64-secureboot")),
        ("iso", format!("{img}/metal-arm64-secureboot.iso")),
        ("uki", format!("{img}/metal-arm64-secureboot-uki.efi")),
        ("diskImage", format!("{img}/metal-arm64-secureboot.raw.zst")),
        (
            "installerTarball",
            format!("{img}/metal-installer-arm64-secureboot.tar"),
        ),
        (
            "pxe",
            format!("https://factory.talos.dev/pxe/{id}/v1.11.5/metal-arm64-secureboot"),
        ),
        (
            "installer",
            format!("factory.talos.dev/metal-installer-secureboot/{id}:v1.11.5"),
        ),
        (
            "installerLegacy",
            format!("factory.talos.dev/installer-secureboot/{id}:v1.11.5"),
        ),
    ] {
        ensure!(j[k] == v.as_str(), "{k}: {} != {v}", j[k]);
    }
    // Talos's platform names and formats (pkg/machinery/platforms/platforms.go).
    let on = |platform: &'static str, extra: &[&'static str]| {
        let mut a = target_args("urls", s);
        a.truncate(a.len() - 2);
        a.extend_from_slice(&["--platform", platform]);
        a.extend_from_slice(extra);
        a
    };
    let out = tdg.run(on("equinixMetal", &["--format", "json"]))?;
    expect_exit(&out, 0)?;
    let j: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    ensure!(
        j["diskImage"].is_null()
            && j["installer"].is_null()
            && j["pxe"]
                == format!("https://factory.talos.dev/pxe/{id}/v1.11.5/equinixMetal-arm64")
                    .as_str(),
        "{j}"
    );
    let out = tdg.run(on("oracle", &["--format", "json"]))?;
    let j: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    ensure!(
        j["diskImage"] == format!("{img}/oracle-arm64.qcow2").as_str(),
        "{j}"
    );
    let out = tdg.run(on("equinix-metal", &[]))?;
    ensure!(
        expect_exit(&out, 2)?.contains("equinixMetal"),
        "{}",
        text(&out)
    );
    let out = tdg.run(["factory", "urls", "--schematic", s, "--talos", "1.11.5"])?;
    ensure!(
        expect_exit(&out, 2)?.contains("must start with 'v'"),
        "{}",
        text(&out)
    );
    Ok(())
}

/// `tdg factory COMMAND --schematic S` for Talos v1.11.5, arm64, metal.
fn target_args<'a>(command: &'a str, schematic: &'a str) -> Vec<&'a str> {
    vec![
        "factory",
        command,
        "--schematic",
        schematic,
        "--talos",
        "v1.11.5",
        "--arch",
        "arm64",
        "--platform",
        "metal",
    ]
}

fn release_args<'a>(schematic: &'a str, factory: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut a = target_args("release", schematic);
    a.extend_from_slice(&[
        "--version",
        "v0.3.0",
        "--channel",
        "stable",
        "--kubernetes",
        "v1.34.1",
        "--factory",
        factory,
    ]);
    a.extend_from_slice(extra);
    a
}

fn release_schema() -> Result<jsonschema::Validator> {
    let schema: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(
        world::repo_root().join("schema/release-v1.schema.json"),
    )?)?;
    jsonschema::validator_for(&schema).map_err(|e| anyhow::anyhow!("{e}"))
}

/// A dry run needs no network (the factory named is unreachable) and its manifest validates
/// against the shipped schema; the same manifest missing a field does not.
pub fn release_dry_run_validates_offline() -> Result<()> {
    let tdg = Tdg::new()?;
    let dir = tempfile::tempdir()?;
    let s = write_schematic(dir.path())?;
    let out = tdg.run(release_args(
        s.to_str().unwrap(),
        "http://127.0.0.1:1",
        &["--dry-run"],
    ))?;
    expect_exit(&out, 0)?;
    let m: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let v = release_schema()?;
    ensure!(v.is_valid(&m), "{m}");
    ensure!(
        m["dryRun"] == true && m["os"]["iso"]["sha256"].is_null(),
        "{m}"
    );
    ensure!(
        m["os"]["installer"]["image"]
            .as_str()
            .unwrap()
            .starts_with("127.0.0.1:1/metal-installer/"),
        "{m}"
    );
    let mut broken = m.clone();
    broken["os"].as_object_mut().unwrap().remove("installer");
    ensure!(
        !v.is_valid(&broken),
        "a manifest without os.installer must not validate"
    );
    let printed = expect_exit(&tdg.run(["schema", "--release"])?, 0)?;
    ensure!(
        printed
            == std::fs::read_to_string(world::repo_root().join("schema/release-v1.schema.json"))?
    );
    Ok(())
}

fn iso_root() -> Result<(tempfile::TempDir, String)> {
    let root = tempfile::tempdir()?;
    let iso = root.path().join("metal-arm64.iso");
    std::fs::write(&iso, tdg::demo::filler(3 << 20, 7))?;
    let sum = output(std::process::Command::new("sha256sum").arg(&iso))?;
    Ok((
        root,
        sum.split_whitespace()
            .next()
            .unwrap_or_default()
            .to_string(),
    ))
}

/// The online path: the schematic is submitted and the factory's ID checked, the ISO streamed
/// to disk and hashed (sha256sum agrees), the installer digest resolved from a registry
/// (skopeo agrees), and the manifest written and valid.
pub fn release_online_against_a_loopback_factory() -> Result<()> {
    let w = world::world()?;
    let tdg = Tdg::new()?;
    let dir = tempfile::tempdir()?;
    let s = write_schematic(dir.path())?;
    let id = Schematic::load(&s).map_err(|e| e.with_snippet())?.id();
    let (root, iso_sum) = iso_root()?;
    let f = FakeFactory::start(root.path(), WELL)?;
    // The installer the factory would build, in a real registry under the factory's name.
    let layout = dir.path().join("installer");
    upstream::layout_multi(&layout, "v1.11.5", upstream::installer_entries)?;
    let repo = format!("{}/metal-installer/{id}:v1.11.5", w.registry.addr);
    push_with_skopeo(&layout, "v1.11.5", &repo)?;
    let raw = dir.path().join("installer.json");
    let skopeo_digest = output(std::process::Command::new("sh").arg("-c").arg(format!(
        "skopeo inspect --raw --tls-verify=false docker://{repo} > {raw} && skopeo manifest-digest {raw}",
        raw = raw.display()
    )))?;
    let skopeo_digest = skopeo_digest.trim();
    let mirror = format!("{}=http://{}", f.host(), w.registry.addr);
    let manifest = dir.path().join("out/release.json");
    std::fs::create_dir_all(manifest.parent().unwrap())?;
    let dl = dir.path().join("dist");
    let out = tdg.run(release_args(
        s.to_str().unwrap(),
        &f.url,
        &[
            "--download",
            dl.to_str().unwrap(),
            "--output",
            manifest.to_str().unwrap(),
            "--mirror",
            &mirror,
        ],
    ))?;
    expect_exit(&out, 0)?;
    let m: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&manifest)?)?;
    ensure!(release_schema()?.is_valid(&m), "{m}");
    ensure!(
        m["dryRun"] == false && m["talos"]["schematicId"] == id.as_str(),
        "{m}"
    );
    ensure!(
        m["os"]["iso"]["sha256"] == iso_sum.as_str(),
        "sha256sum says {iso_sum}: {m}"
    );
    let local = m["os"]["iso"]["localPath"].as_str().context("localPath")?;
    let kept = output(std::process::Command::new("sha256sum").arg(local))?;
    ensure!(
        kept.starts_with(&iso_sum),
        "the kept ISO is the served one: {kept}"
    );
    ensure!(
        m["os"]["installer"]["digest"] == skopeo_digest,
        "skopeo says {skopeo_digest}: {m}"
    );
    let reqs = f.requests();
    ensure!(
        reqs.first().map(String::as_str) == Some("POST /schematics")
            && reqs
                .iter()
                .any(|r| r == &format!("GET /image/{id}/v1.11.5/metal-arm64.iso")),
        "{reqs:?}"
    );
    // An installer the registry holds without an arm64 image is an error, not a missing digest.
    let empty = dir.path().join("empty.yaml");
    std::fs::write(&empty, "customization: {}\n")?;
    let amd64_only = dir.path().join("amd64-only");
    crate::fixtures::layout_index(
        &amd64_only,
        "v1.11.5",
        &["linux/amd64"],
        tdg::oci::image::Flavor::Oci,
    )?;
    let empty_id = tdg::factory::schematic::EMPTY_ID;
    push_with_skopeo(
        &amd64_only,
        "v1.11.5",
        &format!("{}/metal-installer/{empty_id}:v1.11.5", w.registry.addr),
    )?;
    std::fs::remove_file(&manifest)?;
    let out = tdg.run(release_args(
        empty.to_str().unwrap(),
        &f.url,
        &["--output", manifest.to_str().unwrap(), "--mirror", &mirror],
    ))?;
    let t = expect_exit(&out, 2)?;
    ensure!(
        t.contains("no linux/arm64 manifest in the index") && !manifest.exists(),
        "{t}"
    );
    Ok(())
}

/// Each failure is a clear error, exit 2, and leaves no manifest and no ISO behind.
pub fn release_failures_write_nothing() -> Result<()> {
    let tdg = Tdg::new()?;
    let dir = tempfile::tempdir()?;
    let s = write_schematic(dir.path())?;
    let s = s.to_str().unwrap();
    let (root, _) = iso_root()?;
    let cases: [(&str, Behaviour<'_>, &str); 6] = [
        (
            "no ID",
            Behaviour {
                post: "no-id",
                download: "ok",
            },
            "returned no schematic ID",
        ),
        (
            "another ID",
            Behaviour {
                post: "wrong-id",
                download: "ok",
            },
            "but the schematic's ID is",
        ),
        (
            "503",
            Behaviour {
                post: "fail",
                download: "ok",
            },
            "POST /schematics answered 503",
        ),
        (
            "truncated",
            Behaviour {
                post: "ok",
                download: "truncate",
            },
            "was cut short: 1572864 of the 3145728 bytes promised",
        ),
        (
            "broken off",
            Behaviour {
                post: "ok",
                download: "abort",
            },
            "so its SHA-256 cannot be computed",
        ),
        (
            "404",
            Behaviour {
                post: "ok",
                download: "missing",
            },
            "metal-arm64.iso answered 404",
        ),
    ];
    let manifest = dir.path().join("release.json");
    let dl = dir.path().join("dist");
    let extra = [
        "--download",
        dl.to_str().unwrap(),
        "--output",
        manifest.to_str().unwrap(),
    ];
    for (what, b, want) in cases {
        let f = FakeFactory::start(root.path(), b)?;
        let out = tdg.run(release_args(s, &f.url, &extra))?;
        let t = expect_exit(&out, 2).with_context(|| what.to_string())?;
        ensure!(t.contains(want) && t.contains(f.host()), "{what}: {t}");
        ensure!(!manifest.exists(), "{what}: a manifest was written");
        let left: Vec<_> = std::fs::read_dir(&dl)
            .map(|d| d.flatten().map(|e| e.file_name()).collect())
            .unwrap_or_default();
        ensure!(left.is_empty(), "{what}: left behind {left:?}");
    }
    let f = FakeFactory::start(root.path(), WELL)?;
    let missing = dir.path().join("missing.yaml");
    let out = tdg.run(release_args(missing.to_str().unwrap(), &f.url, &extra))?;
    ensure!(
        expect_exit(&out, 2)?.contains("missing.yaml: cannot read schematic"),
        "{}",
        text(&out)
    );
    // The installer reference cannot be derived from a platform or version it cannot name.
    for (flag, bad, want) in [
        ("--platform", "Metal/x", "platform 'Metal/x'"),
        ("--talos", "v1.11", "not vMAJOR.MINOR.PATCH"),
    ] {
        let mut args = release_args(s, &f.url, &["--output", manifest.to_str().unwrap()]);
        let at = args.iter().position(|a| *a == flag).context("flag")? + 1;
        args[at] = bad;
        let out = tdg.run(args)?;
        ensure!(expect_exit(&out, 2)?.contains(want), "{}", text(&out));
    }
    ensure!(
        !manifest.exists() && f.requests().is_empty(),
        "nothing asked of the factory: {:?}",
        f.requests()
    );
    Ok(())
}

/// `build.source.factory`: kernel and initramfs come from the factory, the other stages are
/// the same, and the result passes its spec; a factory that disagrees on the ID stops the
/// build before anything is written.
pub fn build_takes_kernel_and_initramfs_from_the_factory() -> Result<()> {
    let tdg = Tdg::new()?;
    let dir = tempfile::tempdir()?;
    write_schematic(dir.path())?;
    let root = tempfile::tempdir()?;
    std::fs::write(
        root.path().join("kernel-arm64"),
        tdg::demo::kernel("arm64", 700 << 10),
    )?;
    let initramfs = tdg::demo::initramfs(
        "arm64",
        &[tdg::demo::spin()],
        tdg::talos::initramfs::Compression::Zstd,
    )?;
    std::fs::write(root.path().join("initramfs-arm64.xz"), initramfs)?;
    for (b, code) in [
        (
            Behaviour {
                post: "wrong-id",
                download: "ok",
            },
            2,
        ),
        (WELL, 0),
    ] {
        let f = FakeFactory::start(root.path(), b)?;
        let spec = world::write_spec(dir.path(), "factory-spin", &format!(
            "apiVersion: tdg/v1\nname: factory-spin\nimage: oci:{out}:spin\nplatform: linux/arm64\ntalos: v1.11.5\n\
             expect:\n  files:\n    - path: assets/talos/arm64/boot/vmlinuz\n      kernel: {{arch: arm64}}\n\
             \x20   - path: assets/talos/arm64/boot/initramfs.xz\n      initramfs: {{compression: zstd, extensions: {{exact: [spin]}}}}\n\
             \x20   - path: assets/talos/arm64/validation/build-report.txt\n      report: {{fields: {{Base Source: Image Factory kernel + initramfs}}}}\n\
             \x20   - path: assets/talos/arm64/checksums.sha256\n      checksums: {{root: assets/talos/arm64, complete: true}}\n\
             build:\n  arch: arm64\n  source:\n    factory: {{url: '{url}', schematic: schematic.yaml}}\n",
            out = dir.path().join("oci").display(),
            url = f.url
        ))?;
        let out_arg = format!("oci:{}:spin", dir.path().join("oci").display());
        let out = tdg.run([
            "build".as_ref(),
            spec.as_os_str(),
            "--output".as_ref(),
            out_arg.as_ref(),
            "--verify".as_ref(),
        ])?;
        let t = expect_exit(&out, code)?;
        if code == 2 {
            ensure!(t.contains("but the schematic's ID is"), "{t}");
            ensure!(
                !dir.path().join("oci").exists(),
                "a refused build wrote its output"
            );
            ensure!(
                !f.requests().iter().any(|r| r.starts_with("GET")),
                "{:?}",
                f.requests()
            );
        } else {
            ensure!(
                t.contains("submit schematic") && t.contains("0 failed"),
                "{t}"
            );
            let reqs = f.requests();
            ensure!(reqs.len() == 3 && reqs[0] == "POST /schematics", "{reqs:?}");
        }
    }
    Ok(())
}
