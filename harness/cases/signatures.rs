//! `expect.signature.key`: cosign keyed signatures beside an image in the test registry, made
//! with openssl by the harness's test PKI and pushed by skopeo. A good one passes against the
//! test trusted root; each way of breaking one fails with its own message.

use anyhow::{ensure, Context, Result};

use tdg::oci::image::{Flavor, TarEntry as E};
use tdg::oci::manifest::Compression;

use super::cli::Tdg;
use crate::fixtures;
use crate::signing::{Pki, Spoil};
use crate::world;

pub fn keyed_signatures_verify_offline_and_each_fault_is_named() -> Result<()> {
    let w = world::world()?;
    let tmp = tempfile::tempdir()?;
    let pki = Pki::new(&tmp.path().join("pki"))?;
    let image_layout = tmp.path().join("image");
    fixtures::layout_image(
        &image_layout,
        "v1",
        &[(
            vec![E::dir("etc", 0o755), E::file("etc/release", "v1\n", 0o644)],
            Compression::Gzip,
        )],
        "linux/arm64",
        &Default::default(),
        Flavor::Oci,
    )?;
    let tdg = Tdg::new()?;
    // One repository per case: the signature tag is per digest and repository.
    let case = |name: &str,
                spoil: Option<Spoil>,
                key: &std::path::Path,
                root: bool|
     -> Result<String> {
        let repo = format!("{}/signed/{name}", w.registry.addr);
        let digest = fixtures::push_with_tdg(&image_layout, "v1", &format!("{repo}:v1"))?;
        if let Some(spoil) = spoil {
            let sig = tmp.path().join(format!("sig-{name}"));
            let tag = pki.signature_layout(&sig, &format!("{repo}:v1"), &digest, spoil)?;
            fixtures::push_with_skopeo(&sig, &tag, &format!("{repo}:{tag}"))?;
        }
        let spec = world::write_spec(
            tmp.path(),
            name,
            &format!(
                "apiVersion: tdg/v1\nname: {name}\nimage: {repo}:v1\nexpect:\n  signature:\n    key: {}\n",
                key.display()
            ),
        )?;
        let mut args = vec!["verify".to_string(), spec.to_str().context("utf-8")?.into()];
        if root {
            args.extend([
                "--trusted-root".into(),
                pki.trusted_root.display().to_string(),
            ]);
        }
        let out = tdg.run(&args)?;
        let code = out.status.code().unwrap_or(-1);
        Ok(format!("exit {code}\n{}", super::cli::text(&out)))
    };
    let signer = pki.signer.public_pem.clone();
    let good = case("good", Some(Spoil::None), &signer, true)?;
    ensure!(
        good.starts_with("exit 0") && good.contains("ok   signature"),
        "{good}"
    );

    let fails: [(&str, Option<Spoil>, &std::path::Path, bool, &str); 9] = [
        ("unsigned", None, &signer, true, "no signature of sha256:"),
        (
            "stranger",
            Some(Spoil::None),
            &pki.stranger.public_pem,
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
    for (name, spoil, key, root, want) in fails {
        let out = case(name, spoil, key, root)?;
        ensure!(
            out.starts_with("exit 1") && out.contains("FAIL signature") && out.contains(want),
            "{name}: wanted exit 1 and {want:?}:\n{out}"
        );
    }
    // A key that is not a public key is an error of the check, not a failure of the image.
    let junk = tmp.path().join("junk.pub");
    std::fs::write(&junk, "not a key\n")?;
    let out = case("junk-key", Some(Spoil::None), &junk, true)?;
    ensure!(
        out.starts_with("exit 2") && out.contains("not a PEM public key"),
        "{out}"
    );
    Ok(())
}
