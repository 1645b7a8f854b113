//! `tdg promote` against a real registry, read back by skopeo: a dry run that changes nothing,
//! an index copied with every platform and its cosign signature, the same digest twice, release
//! tags that never move, `--allow-move` for moving tags, a spec that gates the tag, and a
//! refused push found before SRC is read.

use std::collections::BTreeMap;
use std::process::Command;

use anyhow::{ensure, Result};

use tdg::oci::image::{Flavor, TarEntry as E};
use tdg::oci::manifest::Compression;

use super::build::{build, spec_path};
use super::cli::{expect_exit, Tdg};
use crate::fixtures::{self, output};
use crate::registry::{Auth, Registry};
use crate::upstream;

fn raw(reference: &str) -> Result<std::process::Output> {
    Ok(Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{reference}"))
        .output()?)
}

pub fn promote_copies_every_platform_and_guards_tags() -> Result<()> {
    let reg = Registry::start(None)?;
    let tmp = tempfile::tempdir()?;
    let r = &reg.addr;
    // An index over two platforms, and a cosign-style signature beside it.
    let multi = tmp.path().join("multi");
    let d = fixtures::layout_index(&multi, "t", &["linux/amd64", "linux/arm64"], Flavor::Oci)?;
    fixtures::push_with_skopeo(&multi, "t", &format!("{r}/src/multi:t"))?;
    let sig = tmp.path().join("sig");
    fixtures::layout_image(
        &sig,
        "s",
        &[(
            vec![E::file("signature", "not really a signature", 0o644)],
            Compression::Gzip,
        )],
        "linux/amd64",
        &BTreeMap::new(),
        Flavor::Oci,
    )?;
    let sig_tag = format!("{}.sig", d.to_string().replace(':', "-"));
    fixtures::push_with_skopeo(&sig, "s", &format!("{r}/src/multi:{sig_tag}"))?;
    let referrer = push_referrer(r, "src/multi", &d, tmp.path())?;
    let other = tmp.path().join("other");
    let d2 = fixtures::layout_index(&other, "t", &["linux/arm64"], Flavor::Oci)?;
    fixtures::push_with_skopeo(&other, "t", &format!("{r}/src/multi:t2"))?;

    let tdg = Tdg::new()?;
    let release = format!("{r}/rel/multi:v1.0.0");
    // A dry run prints the plan and changes nothing.
    let dry = expect_exit(
        &tdg.run([
            "promote",
            &format!("{r}/src/multi:t"),
            &release,
            "--dry-run",
        ])?,
        0,
    )?;
    ensure!(
        dry.contains(&format!(
            "referrer {referrer} (application/spdx+json) of {d}"
        )) && dry.contains(&format!("{r}/src/multi:t: {d}"))
            && dry.contains(&format!("{release}: none -> {d}"))
            && dry.contains("(linux/amd64)")
            && dry.contains("(linux/arm64)")
            && dry.contains("cosign sig")
            && dry.contains("dry run: nothing changed"),
        "{dry}"
    );
    ensure!(
        !raw(&release)?.status.success(),
        "a dry run pushed {release}"
    );
    // The real run: the same bytes, every platform, the signature.
    let done = expect_exit(
        &tdg.run(["promote", &format!("{r}/src/multi:t"), &release])?,
        0,
    )?;
    ensure!(done.contains(&format!("{release}: none -> {d}")), "{done}");
    ensure!(
        fixtures::skopeo_digest(&release)? == d.to_string(),
        "{done}"
    );
    ensure!(
        raw(&format!("{r}/rel/multi:{sig_tag}"))?.status.success(),
        "the signature was not copied"
    );
    // The OCI referrer came along, and DST's referrers tag schema index lists it.
    ensure!(
        raw(&format!("{r}/rel/multi@{referrer}"))?.status.success(),
        "the referrer was not copied"
    );
    let listed = raw(&format!(
        "{r}/rel/multi:{}",
        d.to_string().replace(':', "-")
    ))?;
    ensure!(
        String::from_utf8_lossy(&listed.stdout).contains(&referrer.to_string()),
        "DST's referrers index does not list {referrer}: {}",
        String::from_utf8_lossy(&listed.stdout)
    );
    let copy = tmp.path().join("copy");
    fixtures::run(
        Command::new("skopeo")
            .args(["copy", "--quiet", "--all", "--src-tls-verify=false"])
            .arg(format!("docker://{release}"))
            .arg(format!("oci:{}:c", copy.display())),
    )?;
    for arch in ["amd64", "arm64"] {
        let p = output(
            Command::new("skopeo")
                .args([
                    "inspect",
                    "--override-arch",
                    arch,
                    "--format",
                    "{{.Architecture}}",
                ])
                .arg(format!("oci:{}:c", copy.display())),
        )?;
        ensure!(p.trim() == arch, "{arch}: {p}");
    }
    // The same digest again is a success that copies nothing.
    let again = expect_exit(
        &tdg.run(["promote", &format!("{r}/src/multi:t"), &release])?,
        0,
    )?;
    ensure!(again.contains(&format!("already at {d}")), "{again}");
    // A release tag never moves, --allow-move or not.
    for extra in [None, Some("--allow-move")] {
        let mut args = vec![
            "promote".to_string(),
            format!("{r}/src/multi:t2"),
            release.clone(),
        ];
        args.extend(extra.map(str::to_string));
        let refused = expect_exit(&tdg.run(&args)?, 2)?;
        ensure!(
            refused.contains("is a release tag and already points at")
                && refused.contains(&d.to_string())
                && refused.contains(&d2.to_string()),
            "{refused}"
        );
    }
    ensure!(
        fixtures::skopeo_digest(&release)? == d.to_string(),
        "the release tag moved"
    );
    // A moving tag moves only when asked, and says from which digest to which.
    let stable = format!("{r}/rel/multi:stable");
    expect_exit(
        &tdg.run(["promote", &format!("{r}/src/multi:t2"), &stable])?,
        0,
    )?;
    let refused = expect_exit(
        &tdg.run(["promote", &format!("{r}/src/multi:t"), &stable])?,
        2,
    )?;
    ensure!(refused.contains("--allow-move"), "{refused}");
    ensure!(
        fixtures::skopeo_digest(&stable)? == d2.to_string(),
        "stable moved unasked"
    );
    let moved = expect_exit(
        &tdg.run([
            "promote",
            &format!("{r}/src/multi:t"),
            &stable,
            "--allow-move",
        ])?,
        0,
    )?;
    ensure!(moved.contains(&format!("{stable}: {d2} -> {d}")), "{moved}");
    ensure!(
        fixtures::skopeo_digest(&stable)? == d.to_string(),
        "stable did not move"
    );
    Ok(())
}

/// With `--spec`, SRC is verified at the digest it resolved to; an image that fails is never
/// tagged, one that passes is. A registry that refuses the push is found before SRC is read.
pub fn promote_is_gated_by_a_spec_and_a_push_preflight() -> Result<()> {
    let reg = Registry::start(None)?;
    let tmp = tempfile::tempdir()?;
    upstream::push_all(&reg.addr, tmp.path())?;
    let spec = spec_path("spin-only");
    let tdg = Tdg::new()?;
    expect_exit(&build(&tdg, &reg.addr, &spec, &["--push"])?, 0)?;
    let mirror = format!("ghcr.io=http://{}", reg.addr);
    let src = "ghcr.io/urmanac/talos-cozystack-spin-only:v1.11.5";
    let src_digest = fixtures::skopeo_digest(&format!(
        "{}/urmanac/talos-cozystack-spin-only:v1.11.5",
        reg.addr
    ))?;
    let promote =
        |src: &str, dst: &str| tdg.run(["promote", src, dst, "--spec", &spec, "--mirror", &mirror]);
    // The spec passes: the tag is set, in another repository (whose registry refuses a
    // manifest whose blobs were not copied there first); skopeo reads the same digest.
    let ok = expect_exit(
        &promote(src, "ghcr.io/urmanac/released/spin-only:v1.11.5-rc.1")?,
        0,
    )?;
    ensure!(ok.contains(&format!("none -> {src_digest}")), "{ok}");
    ensure!(
        fixtures::skopeo_digest(&format!(
            "{}/urmanac/released/spin-only:v1.11.5-rc.1",
            reg.addr
        ))? == src_digest,
        "{ok}"
    );
    // An image that is not the spec's (an extension image) fails it and is never tagged.
    let wrong = "ghcr.io/siderolabs/spin:v0.21.0";
    let failed = expect_exit(
        &promote(wrong, "ghcr.io/urmanac/talos-cozystack-spin-only:v9.9.9")?,
        1,
    )?;
    ensure!(failed.contains("not promoted"), "{failed}");
    ensure!(
        !raw(&format!(
            "{}/urmanac/talos-cozystack-spin-only:v9.9.9",
            reg.addr
        ))?
        .status
        .success(),
        "a failing image was tagged"
    );
    // No push access: refused before SRC is read (the cache stays empty).
    let locked = Registry::start(Some(Auth {
        user: "u",
        password: "p",
    }))?;
    let fresh = Tdg::new()?;
    let refused = expect_exit(
        &fresh.run([
            "promote",
            src,
            &format!("{}/rel/x:v1.0.0", locked.addr),
            "--mirror",
            &mirror,
        ])?,
        2,
    )?;
    ensure!(
        refused.contains(&format!("registry {}", locked.addr))
            && refused.contains("push preflight"),
        "{refused}"
    );
    ensure!(
        !refused.contains(&src_digest),
        "SRC was read before the preflight: {refused}"
    );
    Ok(())
}

/// An SBOM artifact whose `subject` is `subject`, listed where a registry without the referrers
/// API keeps it: the index under the tag `sha256-<hex>` (distribution-spec, referrers tag schema).
fn push_referrer(
    registry: &str,
    repository: &str,
    subject: &tdg::digest::Digest,
    work: &std::path::Path,
) -> Result<tdg::digest::Digest> {
    use tdg::digest::Digest;
    use tdg::oci::manifest::{OCI_INDEX, OCI_MANIFEST};
    let src =
        tdg::oci::registry::RegistrySource::new(registry, repository, true, Default::default())?;
    let rt = tokio::runtime::Runtime::new()?;
    let subject_bytes = raw(&format!("{registry}/{repository}@{subject}"))?.stdout;
    let empty = b"{}".to_vec();
    let sbom = br#"{"spdxVersion":"SPDX-2.3"}"#.to_vec();
    for blob in [&empty, &sbom] {
        let path = work.join(Digest::of(blob).hex());
        std::fs::write(&path, blob)?;
        rt.block_on(src.push_blob(&Digest::of(blob), &path))?;
    }
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": "application/spdx+json",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": Digest::of(&empty).to_string(), "size": empty.len()},
        "layers": [{"mediaType": "application/spdx+json", "digest": Digest::of(&sbom).to_string(), "size": sbom.len()}],
        "subject": {"mediaType": OCI_INDEX, "digest": subject.to_string(), "size": subject_bytes.len()},
    }))?;
    let d = Digest::of(&manifest);
    rt.block_on(src.push_manifest(&d.to_string(), manifest.clone(), OCI_MANIFEST))?;
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [{"mediaType": OCI_MANIFEST, "digest": d.to_string(), "size": manifest.len(), "artifactType": "application/spdx+json"}],
    }))?;
    let tag = subject.to_string().replace(':', "-");
    rt.block_on(src.push_manifest(&tag, index, OCI_INDEX))?;
    Ok(d)
}

/// The registry accepts the tag, then fails the read that confirms it (a 500 from
/// `harness/faults/registry.py` in front of a real registry): promote says the tag moved, with
/// a warning, and exits 0, for the tag did move (skopeo reads it). And a push preflight that
/// cannot reach ghcr.io names the network, not the token.
pub fn a_moved_tag_is_reported_moved_when_its_read_back_fails() -> Result<()> {
    let reg = Registry::start(None)?;
    let tmp = tempfile::tempdir()?;
    let layout = tmp.path().join("layout");
    tdg::demo::write_asset_layout(&layout, "spin-only", "v1", 1 << 16)?;
    fixtures::push_with_tdg(&layout, "v1", &format!("{}/x/img:v1", reg.addr))?;
    let digest = fixtures::skopeo_digest(&format!("{}/x/img:v1", reg.addr))?;
    let proxy = super::faults::Faulty::in_front_of(&reg.addr)?;
    let tdg = Tdg::new()?;
    let out = tdg.run([
        "promote",
        "src.test/x/img:v1",
        "dst.test/readback-fails/img:stable",
        "--allow-move",
        "--mirror",
        &format!("src.test=http://{}", reg.addr),
        "--mirror",
        &format!("dst.test=http://{}", proxy.host),
    ])?;
    let text = expect_exit(&out, 0)?;
    ensure!(
        text.contains(&format!(
            "dst.test/readback-fails/img:stable: none -> {digest}"
        )) && text.contains("reading it back failed")
            && text.contains("500"),
        "{text}"
    );
    let moved = fixtures::skopeo_digest(&format!("{}/readback-fails/img:stable", reg.addr))?;
    ensure!(moved == digest, "the tag names {moved}, not {digest}");

    // No network to ghcr.io here: the preflight's error is the network's.
    let out = tdg.run([
        "promote",
        "src.test/x/img:v1",
        "ghcr.io/urmanac/tdg-preflight:stable",
        "--allow-move",
        "--request-timeout",
        "5",
        "--mirror",
        &format!("src.test=http://{}", reg.addr),
    ])?;
    let text = expect_exit(&out, 2)?;
    ensure!(
        !text.contains("packages:write")
            && ["DNS", "cannot connect", "timed out"]
                .iter()
                .any(|w| text.contains(w)),
        "{text}"
    );
    Ok(())
}
