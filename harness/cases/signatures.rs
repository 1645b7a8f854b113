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
pub(super) struct Bench {
    pub(super) w: Arc<World>,
    pub(super) tmp: tempfile::TempDir,
    pub(super) pki: Pki,
    pub(super) image: std::path::PathBuf,
    pub(super) tdg: Tdg,
}

/// Now, as Unix seconds: keyless certificates are valid from the moment they are issued.
pub(super) fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

impl Bench {
    pub(super) fn new() -> Result<Self> {
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
    pub(super) fn case(
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

    pub(super) fn key_yaml(key: &Path) -> String {
        format!("    key: {}\n", key.display())
    }
}

pub(super) fn fails(out: &str, name: &str, want: &str) -> Result<()> {
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
            "it has no transparency-log entry",
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
