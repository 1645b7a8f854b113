//! `expect.signature`: cosign signatures beside an image in the test registry, made with
//! openssl by the harness's test PKI (signer keys, a Rekor key, a CA standing in for Fulcio)
//! and pushed by skopeo. A good one passes against the test trusted root; each way of
//! breaking one fails with its own message.

use std::path::Path;
use std::sync::Arc;

use anyhow::{ensure, Context, Result};

use tdg::oci::image::{Flavor, TarEntry as E};
use tdg::oci::manifest::Compression;

use super::cli::Tdg;
use crate::fixtures;
use crate::signing::{By, Pki, Spoil};
use crate::world::{self, World};

/// An image pushed once per case (the signature tag is per digest and repository), signed as
/// the case says, and verified against a spec's `expect.signature`.
struct Bench {
    w: Arc<World>,
    tmp: tempfile::TempDir,
    pki: Pki,
    image: std::path::PathBuf,
    tdg: Tdg,
}

/// Now, as Unix seconds: keyless certificates are valid from the moment they are issued.
fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

impl Bench {
    fn new() -> Result<Self> {
        let tmp = tempfile::tempdir()?;
        let pki = Pki::new(&tmp.path().join("pki"))?;
        let image = tmp.path().join("image");
        fixtures::layout_image(
            &image,
            "v1",
            &[(
                vec![E::dir("etc", 0o755), E::file("etc/release", "v1\n", 0o644)],
                Compression::Gzip,
            )],
            "linux/arm64",
            &Default::default(),
            Flavor::Oci,
        )?;
        Ok(Bench {
            w: world::world()?,
            tmp,
            pki,
            image,
            tdg: Tdg::new()?,
        })
    }

    /// Pushes the image as `signed/<name>`, signs it as asked, verifies a spec whose
    /// `expect.signature` is `signature` (YAML lines); returns "exit N" and the output.
    fn case(
        &self,
        name: &str,
        sign: Option<(Spoil, By<'_>, i64)>,
        signature: &str,
        test_root: bool,
    ) -> Result<String> {
        let repo = format!("{}/signed/{name}", self.w.registry.addr);
        let digest = fixtures::push_with_tdg(&self.image, "v1", &format!("{repo}:v1"))?;
        if let Some((spoil, by, at)) = sign {
            let sig = self.tmp.path().join(format!("sig-{name}"));
            let tag =
                self.pki
                    .signature_layout(&sig, &format!("{repo}:v1"), &digest, spoil, &by, at)?;
            fixtures::push_with_skopeo(&sig, &tag, &format!("{repo}:{tag}"))?;
        }
        let spec = world::write_spec(
            self.tmp.path(),
            name,
            &format!(
                "apiVersion: tdg/v1\nname: {name}\nimage: {repo}:v1\nexpect:\n  signature:\n{signature}"
            ),
        )?;
        let mut args = vec!["verify".to_string(), spec.to_str().context("utf-8")?.into()];
        if test_root {
            args.extend([
                "--trusted-root".into(),
                self.pki.trusted_root.display().to_string(),
            ]);
        }
        let out = self.tdg.run(&args)?;
        let code = out.status.code().unwrap_or(-1);
        Ok(format!("exit {code}\n{}", super::cli::text(&out)))
    }

    fn key_yaml(key: &Path) -> String {
        format!("    key: {}\n", key.display())
    }
}

fn fails(out: &str, name: &str, want: &str) -> Result<()> {
    ensure!(
        out.starts_with("exit 1") && out.contains("FAIL signature") && out.contains(want),
        "{name}: wanted exit 1 and {want:?}:\n{out}"
    );
    Ok(())
}

pub fn keyed_signatures_verify_offline_and_each_fault_is_named() -> Result<()> {
    let b = Bench::new()?;
    let pki = &b.pki;
    let at = 1_764_547_200;
    let signer = Bench::key_yaml(&pki.signer.public_pem);
    let by = || By::Key(&pki.signer);
    let good = b.case("good", Some((Spoil::None, by(), at)), &signer, true)?;
    ensure!(
        good.starts_with("exit 0") && good.contains("ok   signature"),
        "{good}"
    );
    // An auditor's bundle keeps the signature and the trusted root: re-judged offline from the
    // bundle alone, the verdict holds; judged against another root, it differs (exit 2).
    let evidence = b.tmp.path().join("evidence");
    let spec = b.tmp.path().join("good.yaml");
    let root = pki.trusted_root.display().to_string();
    let run = |args: &[&str]| -> Result<String> {
        let out = b.tdg.run(args)?;
        Ok(format!(
            "exit {}\n{}",
            out.status.code().unwrap_or(-1),
            super::cli::text(&out)
        ))
    };
    let out = run(&[
        "verify",
        spec.to_str().context("utf-8")?,
        "--trusted-root",
        &root,
        "--evidence",
        evidence.to_str().context("utf-8")?,
    ])?;
    ensure!(out.starts_with("exit 0"), "{out}");
    let bundle = evidence.join("good");
    ensure!(
        bundle.join("trusted_root.json").is_file(),
        "no trusted root in the bundle"
    );
    let out = run(&[
        "verify",
        "--from-evidence",
        evidence.to_str().context("utf-8")?,
    ])?;
    ensure!(
        out.starts_with("exit 0") && out.contains("matches the evidence"),
        "{out}"
    );
    std::fs::write(
        bundle.join("trusted_root.json"),
        tdg::sign::TrustedRoot::production().raw,
    )?;
    let out = run(&[
        "verify",
        "--from-evidence",
        evidence.to_str().context("utf-8")?,
    ])?;
    ensure!(
        out.starts_with("exit 2") && out.contains("verdict differs") && out.contains("signature"),
        "{out}"
    );

    let stranger = Bench::key_yaml(&pki.stranger.public_pem);
    let cases: [(&str, Option<Spoil>, &str, bool, &str); 9] = [
        ("unsigned", None, &signer, true, "no signature of sha256:"),
        (
            "stranger",
            Some(Spoil::None),
            &stranger,
            true,
            "its Rekor entry records another public key",
        ),
        (
            "other-digest",
            Some(Spoil::OtherDigest),
            &signer,
            true,
            "it signs sha256:",
        ),
        (
            "tampered",
            Some(Spoil::TamperedPayload),
            &signer,
            true,
            "its Rekor entry records the payload hash",
        ),
        (
            "no-log-entry",
            Some(Spoil::NoLogEntry),
            &signer,
            true,
            "it has no Rekor entry",
        ),
        (
            "untrusted-log",
            Some(Spoil::UntrustedLog),
            &signer,
            true,
            "trusted_root.json does not trust",
        ),
        (
            "bad-set",
            Some(Spoil::BadSet),
            &signer,
            true,
            "its Rekor SET does not verify",
        ),
        (
            "bad-signature",
            Some(Spoil::BadSignature),
            &signer,
            true,
            "the key does not verify its payload",
        ),
        // The good signature, judged against the embedded production root: its log is not there.
        (
            "production-root",
            Some(Spoil::None),
            &signer,
            false,
            "which the embedded Sigstore production root (2025-09-22) does not trust",
        ),
    ];
    for (name, spoil, yaml, root, want) in cases {
        let out = b.case(name, spoil.map(|s| (s, by(), at)), yaml, root)?;
        fails(&out, name, want)?;
    }
    // A key that is not a public key is an error of the check, not a failure of the image.
    let junk = b.tmp.path().join("junk.pub");
    std::fs::write(&junk, "not a key\n")?;
    let out = b.case(
        "junk-key",
        Some((Spoil::None, by(), at)),
        &Bench::key_yaml(&junk),
        true,
    )?;
    ensure!(
        out.starts_with("exit 2") && out.contains("not a PEM public key"),
        "{out}"
    );
    Ok(())
}

/// Keyless: a certificate from the stand-in Fulcio for `release@siderolabs.com` through
/// Google, as Sidero signs its images, judged as the Image Factory's policy
/// (`@siderolabs\.com$` via `https://accounts.google.com`) judges it.
pub fn keyless_signatures_verify_by_identity_and_issuer() -> Result<()> {
    let b = Bench::new()?;
    let pki = &b.pki;
    let dir = b.tmp.path().join("leaves");
    std::fs::create_dir_all(&dir)?;
    let google = "https://accounts.google.com";
    let sidero = pki.fulcio.leaf(
        &dir,
        "sidero",
        "release@siderolabs.com",
        google,
        Some((&pki.ct, &pki.ct)),
    )?;
    let elsewhere = pki.rogue_ca.leaf(
        &dir,
        "rogue",
        "release@siderolabs.com",
        google,
        Some((&pki.ct, &pki.ct)),
    )?;
    let badly_logged = pki.fulcio.leaf(
        &dir,
        "badly-logged",
        "release@siderolabs.com",
        google,
        Some((&pki.ct, &pki.rogue_log)),
    )?;
    let unlogged = pki
        .fulcio
        .leaf(&dir, "unlogged", "release@siderolabs.com", google, None)?;
    let elsewhere_logged = pki.fulcio.leaf(
        &dir,
        "elsewhere-logged",
        "release@siderolabs.com",
        google,
        Some((&pki.rogue_log, &pki.rogue_log)),
    )?;
    let policy = format!("    identity: '^.*@siderolabs\\.com$'\n    issuer: {google}\n");
    let t = now();
    let by = || By::Cert(&sidero, &pki.fulcio);
    let good = b.case("keyless-good", Some((Spoil::None, by(), t)), &policy, true)?;
    ensure!(
        good.starts_with("exit 0") && good.contains("ok   signature"),
        "{good}"
    );
    let exact = format!("    identity: release@siderolabs.com\n    issuer: {google}\n");
    let out = b.case("keyless-exact", Some((Spoil::None, by(), t)), &exact, true)?;
    ensure!(out.starts_with("exit 0"), "{out}");

    let other_identity = format!("    identity: release@example.com\n    issuer: {google}\n");
    let other_issuer = "    identity: release@siderolabs.com\n    issuer: https://token.actions.githubusercontent.com\n";
    let cert = |leaf| By::Cert(leaf, &pki.fulcio);
    // (case, how it is signed, when it was logged, the spec's policy, what the failure says)
    let cases: Vec<(&str, Spoil, By<'_>, i64, &str, &str)> = vec![
        ("keyless-identity", Spoil::None, by(), t, &other_identity,
         "its certificate is for release@siderolabs.com, not 'release@example.com'"),
        ("keyless-issuer", Spoil::None, by(), t, other_issuer,
         "issued through https://accounts.google.com, not https://token.actions.githubusercontent.com"),
        // Logged two days before the certificate was issued, with no timestamp saying otherwise.
        ("keyless-expired", Spoil::None, by(), t - 2 * 86400, &policy,
         "its certificate was not valid at the signature's log time"),
        ("keyless-untrusted-ca", Spoil::None, By::Cert(&elsewhere, &pki.rogue_ca), t, &policy,
         "does not chain to a certificate authority"),
        ("keyless-other-digest", Spoil::OtherDigest, by(), t, &policy, "it signs sha256:"),
        // Fulcio logs every certificate to CT; cosign refuses one without a trusted SCT.
        ("keyless-no-sct", Spoil::None, cert(&unlogged), t, &policy,
         "its certificate has no signed certificate timestamp"),
        ("keyless-foreign-sct", Spoil::None, cert(&elsewhere_logged), t, &policy,
         "its certificate has no SCT that verifies"),
        ("keyless-bad-sct", Spoil::None, cert(&badly_logged), t, &policy,
         "the SCT of https://ctfe.tdg.test: the signature does not match"),
        // A keyed signature does not satisfy a keyless expectation.
        ("keyless-but-keyed", Spoil::None, By::Key(&pki.signer), t, &policy, "not a keyless signature"),
    ];
    for (name, spoil, signed_by, at, yaml, want) in cases {
        fails(
            &b.case(name, Some((spoil, signed_by, at)), yaml, true)?,
            name,
            want,
        )?;
    }
    Ok(())
}

/// `build.signatures`: the base and every extension are judged before anything is built, as
/// the Image Factory does; one unsigned input stops the build, exit 2, before any stage and
/// with nothing pulled or pushed.
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
                "apiVersion: tdg/v1\nname: {name}\nimage: ghcr.io/urmanac/{name}:v1\nplatform: linux/arm64\ntalos: v1.11.5\nbuild:\n  arch: arm64\n  base: ghcr.io/siderolabs/imager:v1.11.5\n  extensions: [{extensions}]\n  signatures:\n    identity: '^.*@siderolabs\\.com$'\n    issuer: {google}\nexpect:\n  files:\n    - path: assets/talos/arm64/boot/vmlinuz\n"
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

/// The audit workflow's signature specs (`audit/*.yaml`) accept what the release workflow's
/// keyless signature carries (GitHub's workflow identity, its Actions issuer) and refuse the
/// same workflow run from a fork.
pub fn audit_specs_accept_the_release_workflow_and_refuse_a_fork() -> Result<()> {
    let reg = crate::registry::Registry::start(None)?;
    let tmp = tempfile::tempdir()?;
    let pki = Pki::new(&tmp.path().join("pki"))?;
    let actions = "https://token.actions.githubusercontent.com";
    let workflow = |owner: &str| {
        format!("https://github.com/{owner}/talos-cozystack-demo/.github/workflows/release.yml@refs/tags/v1.11.5")
    };
    for (variant, owner, code) in [("spin-only", "urmanac", 0), ("spin-tailscale", "a-fork", 1)] {
        let layout = tmp.path().join(variant);
        tdg::demo::write_asset_layout(&layout, variant, "v1.11.5", 1 << 20)?;
        let repo = format!("{}/urmanac/talos-cozystack-{variant}", reg.addr);
        fixtures::push_with_skopeo(&layout, "v1.11.5", &format!("{repo}:v1.11.5"))?;
        let digest: tdg::digest::Digest =
            fixtures::skopeo_digest(&format!("{repo}:v1.11.5"))?.parse()?;
        let leaf = pki.fulcio.leaf(
            &tmp.path().join("pki"),
            variant,
            &workflow(owner),
            actions,
            Some((&pki.ct, &pki.ct)),
        )?;
        let sig = tmp.path().join(format!("sig-{variant}"));
        let tag = pki.signature_layout(
            &sig,
            &format!("{repo}:v1.11.5"),
            &digest,
            Spoil::None,
            &By::Cert(&leaf, &pki.fulcio),
            now(),
        )?;
        fixtures::push_with_skopeo(&sig, &tag, &format!("{repo}:{tag}"))?;
        // The provenance the attest action pushes beside it, as a referrer (tag schema).
        let prov = pki.bundle(
            &By::Cert(&leaf, &pki.fulcio),
            &crate::signing::statement(
                &digest,
                &repo,
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
                .arg(format!("docker://{repo}:v1.11.5")),
        )?
        .len() as u64;
        let referrers = tmp.path().join(format!("referrers-{variant}"));
        let rtag = crate::signing::referrers_layout(&referrers, &digest, size, &[prov], true)?;
        fixtures::push_with_tdg(&referrers, &rtag, &format!("{repo}:{rtag}"))?;
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
        let sig = pki.bundle(
            &By::Cert(&signer, &pki.fulcio),
            &statement(
                &about,
                &repo,
                tdg::sign::bundle::COSIGN_SIGN_PREDICATE,
                serde_json::json!({}),
            ),
            t,
            spoil,
        )?;
        let prov = pki.bundle(
            &By::Cert(&builder, &pki.fulcio),
            &statement(
                &about,
                &repo,
                tdg::sign::bundle::SLSA_PROVENANCE_V1,
                github_provenance(
                    provenance_repo,
                    "refs/tags/v1.11.5",
                    commit,
                    ".github/workflows/release.yml",
                ),
            ),
            t,
            spoil,
        )?;
        let layout = b.tmp.path().join(format!("referrers-{name}"));
        let tag = referrers_layout(&layout, &digest, size, &[sig, prov], true)?;
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
    let sig = pki.bundle(
        &By::Cert(&signer, &pki.fulcio),
        &statement(
            &image,
            "served",
            tdg::sign::bundle::COSIGN_SIGN_PREDICATE,
            serde_json::json!({}),
        ),
        t,
        BundleSpoil::None,
    )?;
    let prov = pki.bundle(
        &By::Cert(&builder, &pki.fulcio),
        &statement(
            &image,
            "served",
            tdg::sign::bundle::SLSA_PROVENANCE_V1,
            github_provenance(
                repo_url,
                "refs/tags/v1.11.5",
                commit,
                ".github/workflows/release.yml",
            ),
        ),
        t,
        BundleSpoil::None,
    )?;
    referrers_layout(&layout, &image, size, &[sig, prov], false)?;
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
