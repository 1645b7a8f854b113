//! Attestations beside an image and signatures of a build's inputs: Sigstore bundles as OCI
//! 1.1 referrers (cosign 3 signatures and GitHub build provenance, through the referrers tag
//! schema and through a referrers API), the audit workflow's specs, and `build.signatures`.

use anyhow::{ensure, Context, Result};

use tdg::oci::image::{Flavor, TarEntry as E};
use tdg::oci::manifest::Compression;

use super::cli::Tdg;
use super::signatures::{fails, now, Bench};
use crate::fixtures;
use crate::signing::{By, Pki, Spoil};
use crate::world;

/// `build.signatures: siderolabs` (the Image Factory's own policy, one word): the base and every
/// extension are judged before anything is built, as the Image Factory does; one unsigned
/// input stops the build, exit 2, before any stage and with nothing pulled or pushed.
pub fn build_inputs_are_verified_before_anything_is_built() -> Result<()> {
    let reg = crate::registry::Registry::start(None)?;
    let tmp = tempfile::tempdir()?;
    crate::upstream::push_all(&reg.addr, tmp.path())?;
    let pki = Pki::new(&tmp.path().join("pki"))?;
    let google = "https://accounts.google.com";
    let leaf = pki.fulcio.leaf(
        &tmp.path().join("pki"),
        "sidero",
        "release@siderolabs.com",
        google,
        Some((&pki.ct, &pki.ct)),
    )?;
    let sign = |image: &str| -> Result<()> {
        let reference = format!("{}/{image}", reg.addr);
        let digest: tdg::digest::Digest = fixtures::skopeo_digest(&reference)?.parse()?;
        let layout = tmp
            .path()
            .join(format!("sig-{}", image.replace(['/', ':'], "_")));
        let tag = pki.signature_layout(
            &layout,
            &reference,
            &digest,
            Spoil::None,
            &By::Cert(&leaf, &pki.fulcio),
            now(),
        )?;
        let repo = reference
            .rsplit_once(':')
            .map_or(reference.as_str(), |(r, _)| r);
        fixtures::push_with_skopeo(&layout, &tag, &format!("{repo}:{tag}"))
    };
    sign(crate::upstream::IMAGER)?;
    sign(crate::upstream::SPIN)?;
    let spec = |name: &str, extensions: &str| -> Result<std::path::PathBuf> {
        world::write_spec(
            tmp.path(),
            name,
            &format!(
                "apiVersion: tdg/v1\nname: {name}\nimage: ghcr.io/urmanac/{name}:v1\nplatform: linux/arm64\ntalos: v1.11.5\nbuild:\n  arch: arm64\n  base: ghcr.io/siderolabs/imager:v1.11.5\n  extensions: [{extensions}]\n  signatures: siderolabs\nexpect:\n  files:\n    - path: assets/talos/arm64/boot/vmlinuz\n"
            ),
        )
    };
    let run = |spec: &std::path::Path| -> Result<(std::process::Output, Tdg)> {
        let tdg = Tdg::new()?;
        let root = pki.trusted_root.display().to_string();
        let out = super::build::build(
            &tdg,
            &reg.addr,
            spec.to_str().context("utf-8")?,
            &["--trusted-root", &root],
        )?;
        Ok((out, tdg))
    };
    let (out, _) = run(&spec("signed", "ghcr.io/siderolabs/spin:v0.21.0")?)?;
    let text = super::cli::expect_exit(&out, 0)?;
    ensure!(
        text.contains("verify input signatures") && text.contains("2 input images signed"),
        "{text}"
    );
    let (out, tdg) = run(&spec(
        "unsigned",
        "ghcr.io/siderolabs/spin:v0.21.0, ghcr.io/siderolabs/tailscale:1.88.1",
    )?)?;
    let text = super::cli::expect_exit(&out, 2)?;
    ensure!(
        text.contains("build.signatures: ghcr.io/siderolabs/tailscale:1.88.1")
            && text.contains("no signature of sha256:")
            && text.contains("nothing was built")
            && !text.contains("pull base"),
        "{text}"
    );
    let blobs = std::fs::read_dir(tdg.cache.join("blobs/sha256"))
        .map(|d| d.count())
        .unwrap_or(0);
    // Only the two signatures' payloads were fetched; no layer of any input.
    ensure!(blobs <= 2, "the refused build fetched {blobs} blobs");
    Ok(())
}

/// A keyless certificate for the release workflow of `github.com/<owner>/talos-cozystack-demo`
/// at tag v1.11.5, from the test PKI standing in for Fulcio (keyless signing needs an OIDC
/// token and Fulcio, which no offline run has).
fn release_workflow_leaf(
    pki: &Pki,
    work: &std::path::Path,
    name: &str,
    owner: &str,
) -> Result<crate::signing::Leaf> {
    let workflow = format!(
        "https://github.com/{owner}/talos-cozystack-demo/.github/workflows/release.yml@refs/tags/v1.11.5"
    );
    pki.fulcio.leaf(
        &work.join("pki"),
        name,
        &workflow,
        "https://token.actions.githubusercontent.com",
        Some((&pki.ct, &pki.ct)),
    )
}

/// What the release workflow's `cosign sign` step (cosign 2, keyless) stores for `repo@digest`
/// in a test registry: the signature under `sha256-<hex>.sig`.
pub(crate) fn sign_as_release_workflow(
    pki: &Pki,
    work: &std::path::Path,
    repo: &str,
    digest: &tdg::digest::Digest,
    owner: &str,
) -> Result<()> {
    let name = format!("sig-{owner}-{}", &digest.hex()[..12]);
    let leaf = release_workflow_leaf(pki, work, &name, owner)?;
    let sig = work.join(&name);
    let tag = pki.signature_layout(
        &sig,
        repo,
        digest,
        Spoil::None,
        &By::Cert(&leaf, &pki.fulcio),
        now(),
    )?;
    fixtures::push_with_skopeo(&sig, &tag, &format!("{repo}:{tag}"))
}

/// What the release workflow's `actions/attest-build-provenance` step pushes beside
/// `repo@digest`: a SLSA provenance bundle as an OCI referrer (tag schema).
pub(crate) fn attest_as_release_workflow(
    pki: &Pki,
    work: &std::path::Path,
    repo: &str,
    digest: &tdg::digest::Digest,
    owner: &str,
) -> Result<()> {
    let name = format!("att-{owner}-{}", &digest.hex()[..12]);
    let leaf = release_workflow_leaf(pki, work, &name, owner)?;
    let prov = pki.bundle(
        &By::Cert(&leaf, &pki.fulcio),
        &crate::signing::statement(
            digest,
            repo,
            tdg::sign::bundle::SLSA_PROVENANCE_V1,
            crate::signing::github_provenance(
                &format!("https://github.com/{owner}/talos-cozystack-demo"),
                "refs/tags/v1.11.5",
                "0123456789abcdef0123456789abcdef01234567",
                ".github/workflows/release.yml",
            ),
        ),
        now(),
        crate::signing::BundleSpoil::None,
    )?;
    let size = fixtures::output(
        std::process::Command::new("skopeo")
            .args(["inspect", "--raw", "--tls-verify=false"])
            .arg(format!("docker://{repo}@{digest}")),
    )?
    .len() as u64;
    let referrers = work.join(format!("referrers-{name}"));
    let rtag = crate::signing::referrers_layout(&referrers, digest, size, &[prov], true)?;
    fixtures::push_with_tdg(&referrers, &rtag, &format!("{repo}:{rtag}"))?;
    Ok(())
}

/// The audit workflow's signature specs (`audit/*.yaml`) accept what the release workflow's
/// keyless signature carries (GitHub's workflow identity, its Actions issuer) and refuse the
/// same workflow run from a fork.
pub fn audit_specs_accept_the_release_workflow_and_refuse_a_fork() -> Result<()> {
    let reg = crate::registry::Registry::start(None)?;
    let tmp = tempfile::tempdir()?;
    let pki = Pki::new(&tmp.path().join("pki"))?;
    for (variant, owner, code) in [("spin-only", "urmanac", 0), ("spin-tailscale", "a-fork", 1)] {
        let layout = tmp.path().join(variant);
        tdg::demo::write_asset_layout(&layout, variant, "v1.11.5", 1 << 20)?;
        let repo = format!("{}/urmanac/talos-cozystack-{variant}", reg.addr);
        fixtures::push_with_skopeo(&layout, "v1.11.5", &format!("{repo}:v1.11.5"))?;
        let digest: tdg::digest::Digest =
            fixtures::skopeo_digest(&format!("{repo}:v1.11.5"))?.parse()?;
        sign_as_release_workflow(&pki, tmp.path(), &repo, &digest, owner)?;
        attest_as_release_workflow(&pki, tmp.path(), &repo, &digest, owner)?;
        let spec = world::repo_root().join(format!("audit/{variant}-arm64.yaml"));
        let mirror = format!("ghcr.io=http://{}", reg.addr);
        let root = pki.trusted_root.display().to_string();
        let out = Tdg::new()?.run([
            "verify",
            spec.to_str().context("utf-8")?,
            "--mirror",
            &mirror,
            "--trusted-root",
            &root,
        ])?;
        let text = super::cli::expect_exit(&out, code)?;
        if code == 1 {
            ensure!(
                text.contains("FAIL signature")
                    && text.contains("FAIL provenance")
                    && text.contains("its certificate is for https://github.com/a-fork/"),
                "{text}"
            );
        } else {
            ensure!(text.contains("ok   provenance"), "{text}");
        }
    }
    Ok(())
}

/// Sigstore bundles as OCI 1.1 referrers: a cosign 3 signature and a GitHub build-provenance
/// attestation, found through the referrers tag schema on Debian's registry (it has no
/// referrers API) and through the referrers API of the harness's own server; each way of
/// breaking a bundle fails with its message.
pub fn bundles_in_referrers_verify_signatures_and_provenance() -> Result<()> {
    use crate::signing::{github_provenance, referrers_layout, statement, BundleSpoil};
    let b = Bench::new()?;
    let pki = &b.pki;
    let dir = b.tmp.path().join("leaves");
    std::fs::create_dir_all(&dir)?;
    let google = "https://accounts.google.com";
    let actions = "https://token.actions.githubusercontent.com";
    let repo_url = "https://github.com/urmanac/talos-cozystack-demo";
    let workflow = format!("{repo_url}/.github/workflows/release.yml@refs/tags/v1.11.5");
    let signer = pki.fulcio.leaf(
        &dir,
        "cosign3",
        "release@siderolabs.com",
        google,
        Some((&pki.ct, &pki.ct)),
    )?;
    let builder = pki.fulcio.leaf(
        &dir,
        "actions",
        &workflow,
        actions,
        Some((&pki.ct, &pki.ct)),
    )?;
    let commit = "0123456789abcdef0123456789abcdef01234567";
    let t = now();
    let expect = format!(
        "    identity: '^.*@siderolabs\\.com$'\n    issuer: {google}\n  provenance:\n    identity: '^https://github\\.com/urmanac/talos-cozystack-demo/\\.github/workflows/release\\.yml@refs/tags/v.*$'\n    repository: {repo_url}\n    ref: '^refs/tags/v.*$'\n    commit: '^[0-9a-f]{{40}}$'\n    workflow: .github/workflows/release.yml\n"
    );
    // A cosign 3 signature by Sidero's identity and GitHub provenance of `provenance_repo`,
    // both about `about`, spoilt alike.
    let signed_and_attested = |about: &tdg::digest::Digest,
                               name: &str,
                               provenance_repo: &str,
                               spoil: BundleSpoil|
     -> Result<Vec<Vec<u8>>> {
        let sign = statement(
            about,
            name,
            tdg::sign::bundle::COSIGN_SIGN_PREDICATE,
            serde_json::json!({}),
        );
        let provenance = github_provenance(
            provenance_repo,
            "refs/tags/v1.11.5",
            commit,
            ".github/workflows/release.yml",
        );
        let attest = statement(
            about,
            name,
            tdg::sign::bundle::SLSA_PROVENANCE_V1,
            provenance,
        );
        Ok(vec![
            pki.bundle(&By::Cert(&signer, &pki.fulcio), &sign, t, spoil)?,
            pki.bundle(&By::Cert(&builder, &pki.fulcio), &attest, t, spoil)?,
        ])
    };
    // Pushes the image as signed/<name> and its referrers (tag schema) to Debian's registry.
    let case = |name: &str, spoil: BundleSpoil, provenance_repo: &str| -> Result<String> {
        let repo = format!("{}/signed/{name}", b.w.registry.addr);
        let digest = fixtures::push_with_tdg(&b.image, "v1", &format!("{repo}:v1"))?;
        let size =
            std::fs::metadata(b.image.join("blobs/sha256").join(
                fixtures::skopeo_digest(&format!("{repo}:v1"))?.trim_start_matches("sha256:"),
            ))
            .map_or(0, |m| m.len());
        let about = match spoil {
            BundleSpoil::OtherSubject => tdg::digest::Digest::of(b"another image"),
            _ => digest.clone(),
        };
        let both = signed_and_attested(&about, &repo, provenance_repo, spoil)?;
        let layout = b.tmp.path().join(format!("referrers-{name}"));
        let tag = referrers_layout(&layout, &digest, size, &both, true)?;
        fixtures::push_with_tdg(&layout, &tag, &format!("{repo}:{tag}"))?;
        let spec = world::write_spec(
            b.tmp.path(),
            name,
            &format!(
                "apiVersion: tdg/v1\nname: {name}\nimage: {repo}:v1\nexpect:\n  signature:\n{expect}"
            ),
        )?;
        let root = pki.trusted_root.display().to_string();
        let out = b.tdg.run([
            "verify",
            spec.to_str().context("utf-8")?,
            "--trusted-root",
            &root,
        ])?;
        Ok(format!(
            "exit {}\n{}",
            out.status.code().unwrap_or(-1),
            super::cli::text(&out)
        ))
    };
    let good = case("bundles-good", BundleSpoil::None, repo_url)?;
    ensure!(
        good.starts_with("exit 0")
            && good.contains("ok   signature")
            && good.contains("ok   provenance"),
        "{good}"
    );
    // The bundle's evidence holds the referrers: re-judged offline, the verdict holds.
    let evidence = b.tmp.path().join("bundle-evidence");
    let spec = b.tmp.path().join("bundles-good.yaml");
    let root = pki.trusted_root.display().to_string();
    super::cli::expect_exit(
        &b.tdg.run([
            "verify",
            spec.to_str().context("utf-8")?,
            "--trusted-root",
            &root,
            "--evidence",
            evidence.to_str().context("utf-8")?,
        ])?,
        0,
    )?;
    let text = super::cli::expect_exit(
        &b.tdg.run([
            "verify",
            "--from-evidence",
            evidence.to_str().context("utf-8")?,
        ])?,
        0,
    )?;
    ensure!(
        text.contains("ok   provenance") && text.contains("matches the evidence"),
        "{text}"
    );
    let out = case(
        "bundles-fork",
        BundleSpoil::None,
        "https://github.com/a-fork/talos-cozystack-demo",
    )?;
    ensure!(
        out.contains("ok   signature")
            && out.contains("FAIL provenance")
            && out.contains("repository is 'https://github.com/a-fork/talos-cozystack-demo', not 'https://github.com/urmanac/talos-cozystack-demo'"),
        "{out}"
    );
    let out = case("bundles-other-subject", BundleSpoil::OtherSubject, repo_url)?;
    fails(&out, "another subject", "its statement is about sha256:")?;
    ensure!(out.contains("FAIL provenance"), "{out}");
    let out = case("bundles-tampered", BundleSpoil::TamperedPayload, repo_url)?;
    fails(&out, "tampered", "its log entry records another payload")?;
    let out = case("bundles-bad-signature", BundleSpoil::BadSignature, repo_url)?;
    fails(
        &out,
        "bad signature",
        "its envelope signature does not verify",
    )?;
    // The log entries' inclusion proofs and checkpoints are checked too.
    let out = case(
        "bundles-bad-proof",
        BundleSpoil::BadInclusionProof,
        repo_url,
    )?;
    fails(
        &out,
        "a bad inclusion proof",
        "its inclusion proof does not lead to the root it names",
    )?;
    let out = case(
        "bundles-foreign-checkpoint",
        BundleSpoil::ForeignCheckpoint,
        repo_url,
    )?;
    fails(
        &out,
        "a foreign checkpoint",
        "its checkpoint's signature does not verify",
    )?;
    // RFC 3161 timestamps from openssl's TSA: one from the trusted TSA stands in for the log
    // entry; one from another TSA, or over other bytes, does not.
    let out = case("bundles-tsa", BundleSpoil::TimestampOnly, repo_url)?;
    ensure!(
        out.starts_with("exit 0") && out.contains("ok   provenance"),
        "{out}"
    );
    let out = case(
        "bundles-rogue-tsa",
        BundleSpoil::UntrustedTimestamp,
        repo_url,
    )?;
    fails(
        &out,
        "an untrusted TSA",
        "its timestamp is not signed by a timestamp authority",
    )?;
    let out = case(
        "bundles-tsa-other",
        BundleSpoil::TimestampOfOtherBytes,
        repo_url,
    )?;
    fails(
        &out,
        "a timestamp of other bytes",
        "its timestamp is for other bytes than the signature",
    )?;
    // The bundle holds a TimeStampResp (protobuf-specs), granted, with its token: a bare token
    // or a refusal is not a timestamp.
    let out = case("bundles-bare-token", BundleSpoil::BareToken, repo_url)?;
    fails(
        &out,
        "a bare token",
        "its timestamp is not an RFC 3161 TimeStampResp",
    )?;
    let out = case(
        "bundles-refused-tsa",
        BundleSpoil::RefusedTimestamp,
        repo_url,
    )?;
    fails(
        &out,
        "a refused timestamp",
        "its timestamp response has status 2, not granted (0)",
    )?;
    // Rekor v2 (as cosign 3 and the Image Factory log since v1.5.0): no promise; the inclusion
    // proof, an Ed25519 checkpoint by the log the trusted root names, and the TSA's time.
    let out = case("bundles-rekor-v2", BundleSpoil::RekorV2, repo_url)?;
    ensure!(
        out.starts_with("exit 0")
            && out.contains("ok   signature")
            && out.contains("ok   provenance"),
        "{out}"
    );
    let out = case(
        "bundles-rekor-v2-untimed",
        BundleSpoil::RekorV2Untimed,
        repo_url,
    )?;
    fails(
        &out,
        "a Rekor v2 entry without a timestamp",
        "its Rekor v2 entry gives no time, and the bundle has no RFC 3161 timestamp",
    )?;
    let out = case(
        "bundles-rekor-v2-other",
        BundleSpoil::RekorV2OtherSignature,
        repo_url,
    )?;
    fails(
        &out,
        "a Rekor v2 entry of another signature",
        "its log entry records another signature",
    )?;
    // v0.3 requires the inclusion proof: a promise alone is not enough.
    let out = case("bundles-no-proof", BundleSpoil::NoInclusionProof, repo_url)?;
    fails(
        &out,
        "no inclusion proof",
        "its log entry has no inclusion proof, which a v0.3 bundle requires",
    )?;

    // The referrers API of a server that has one: the same bundles, and no tag to fall back on.
    let layout = b.tmp.path().join("served");
    let image = fixtures::layout_image(
        &layout,
        "v1",
        &[(
            vec![E::dir("etc", 0o755), E::file("etc/release", "v1\n", 0o644)],
            Compression::Gzip,
        )],
        "linux/arm64",
        &Default::default(),
        Flavor::Oci,
    )?;
    let size = std::fs::metadata(layout.join("blobs/sha256").join(image.hex()))?.len();
    let both = signed_and_attested(&image, "served", repo_url, BundleSpoil::None)?;
    referrers_layout(&layout, &image, size, &both, false)?;
    // cosign 3 signing with a key: a keyed bundle, judged by `key:`.
    let keyed = pki.bundle(
        &By::Key(&pki.signer),
        &statement(
            &image,
            "served",
            tdg::sign::bundle::COSIGN_SIGN_PREDICATE,
            serde_json::json!({}),
        ),
        t,
        BundleSpoil::None,
    )?;
    referrers_layout(&layout, &image, size, &[keyed], false)?;
    let server = super::faults::Faulty::serving(Some(&layout))?;
    let spec = world::write_spec(
        b.tmp.path(),
        "served",
        &format!(
            "apiVersion: tdg/v1\nname: served\nimage: {}/layout/img:v1\nexpect:\n  signature:\n{expect}",
            server.host
        ),
    )?;
    let root = pki.trusted_root.display().to_string();
    let out = b.tdg.run([
        "verify",
        spec.to_str().context("utf-8")?,
        "--trusted-root",
        &root,
    ])?;
    let text = super::cli::expect_exit(&out, 0)?;
    ensure!(text.contains("ok   provenance"), "{text}");
    for (name, key, code) in [
        ("served-keyed", &pki.signer.public_pem, 0),
        ("served-stranger", &pki.stranger.public_pem, 1),
    ] {
        let spec = world::write_spec(
            b.tmp.path(),
            name,
            &format!(
                "apiVersion: tdg/v1\nname: {name}\nimage: {}/layout/img:v1\nexpect:\n  signature:\n{}",
                server.host,
                Bench::key_yaml(key)
            ),
        )?;
        let out = b.tdg.run([
            "verify",
            spec.to_str().context("utf-8")?,
            "--trusted-root",
            &root,
        ])?;
        let text = super::cli::expect_exit(&out, code)?;
        if code == 1 {
            ensure!(
                text.contains("its log entry records another certificate or key"),
                "{text}"
            );
        }
    }
    Ok(())
}
