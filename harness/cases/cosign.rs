//! cosign 3 (Debian's package) as the real signer: keyed signatures and SLSA attestations made
//! without a transparency log (`--tlog-upload=false`, as a key that signs offline does), in the
//! bundle format (OCI 1.1 referrers, found through the registry's referrers-tag fallback) and
//! in the legacy `.sig`/`.att` tags. tdg passes them with the right key and `tlog: false`,
//! refuses them without it (saying what to add), refuses another key, a changed signature and
//! a changed image; `cosign verify --insecure-ignore-tlog` agrees where it can be asked.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use anyhow::{ensure, Context, Result};

use tdg::oci::image::{Flavor, TarEntry as E};
use tdg::oci::manifest::Compression;

use super::cli::{expect_exit, Tdg};
use crate::fixtures;
use crate::registry::Registry;

struct Cosign {
    bin: PathBuf,
    home: PathBuf,
}

impl Cosign {
    fn run(&self, args: &[&str]) -> Result<Output> {
        Ok(Command::new(&self.bin)
            .args(args)
            .env("HOME", &self.home)
            .env("COSIGN_PASSWORD", "")
            .env("COSIGN_YES", "true")
            .current_dir(&self.home)
            .output()?)
    }

    fn ok(&self, args: &[&str]) -> Result<()> {
        let o = self.run(args)?;
        ensure!(
            o.status.success(),
            "cosign {args:?}: {}",
            super::cli::text(&o)
        );
        Ok(())
    }

    /// Signs (or attests) `image` with `key`, no log, in the bundle format or the legacy tags.
    fn sign(&self, key: &str, image: &str, bundle: bool) -> Result<()> {
        let fmt = format!("--new-bundle-format={bundle}");
        let key = format!("{key}.key");
        self.ok(&[
            "sign",
            "--key",
            &key,
            "--tlog-upload=false",
            "--use-signing-config=false",
            &fmt,
            "--allow-insecure-registry",
            image,
        ])
    }

    fn attest(&self, key: &str, image: &str, bundle: bool) -> Result<()> {
        let fmt = format!("--new-bundle-format={bundle}");
        let key = format!("{key}.key");
        self.ok(&[
            "attest",
            "--key",
            &key,
            "--type",
            "slsaprovenance1",
            "--predicate",
            "predicate.json",
            "--tlog-upload=false",
            "--use-signing-config=false",
            &fmt,
            "--allow-insecure-registry",
            image,
        ])
    }

    /// `cosign verify --key KEY --insecure-ignore-tlog`: whether cosign accepts the signature.
    fn verifies(&self, key: &str, image: &str) -> Result<bool> {
        let key = format!("{key}.pub");
        Ok(self
            .run(&[
                "verify",
                "--key",
                &key,
                "--insecure-ignore-tlog=true",
                "--allow-insecure-registry",
                image,
            ])?
            .status
            .success())
    }
}

/// A spec for `image` asking for `key`'s signature and provenance, with `tlog: false` or not.
fn spec(
    dir: &Path,
    name: &str,
    image: &str,
    key: &str,
    tlog: Option<bool>,
    repo: &str,
) -> Result<PathBuf> {
    let tlog = tlog.map_or(String::new(), |t| format!("    tlog: {t}\n"));
    let text = format!(
        "apiVersion: tdg/v1\nname: {name}\nimage: {image}\nexpect:\n  signature:\n    key: {key}.pub\n{tlog}  provenance:\n    key: {key}.pub\n{tlog}    repository: {repo}\n    workflow: .github/workflows/release.yml\n"
    );
    let path = dir.join(format!("{name}.yaml"));
    std::fs::write(&path, text)?;
    Ok(path)
}

fn push_image(reg: &str, work: &Path, repo: &str, content: &str) -> Result<String> {
    let layout = work.join(format!("layout-{}", content.len()));
    fixtures::layout_image(
        &layout,
        "t",
        &[(
            vec![E::dir("etc", 0o755), E::file("etc/motd", content, 0o644)],
            Compression::Gzip,
        )],
        "linux/arm64",
        &Default::default(),
        Flavor::Oci,
    )?;
    let digest = fixtures::push_with_tdg(&layout, "t", &format!("{reg}/{repo}:v1"))?;
    Ok(format!("{reg}/{repo}@{digest}"))
}

pub fn cosign_3_keyed_signatures_without_a_log() -> Result<()> {
    // Removed however the trial ends.
    let home = tempfile::tempdir()?;
    let cosign = Cosign {
        bin: crate::debian::cosign()?,
        home: home.path().to_path_buf(),
    };
    let dir = cosign.home.clone();
    let reg = Registry::start(None)?;
    let r = reg.addr.clone();
    cosign.ok(&["generate-key-pair", "--output-key-prefix", "release"])?;
    cosign.ok(&["generate-key-pair", "--output-key-prefix", "other"])?;
    std::fs::write(
        dir.join("predicate.json"),
        r#"{"buildDefinition":{"buildType":"https://actions.github.io/buildtypes/workflow/v1","externalParameters":{"workflow":{"repository":"https://github.com/urmanac/tdg","ref":"refs/tags/v1.0.0","path":".github/workflows/release.yml"}}},"runDetails":{"builder":{"id":"https://github.com/actions/runner"}}}"#,
    )?;
    let tdg = Tdg::new()?;
    let mirror = format!("{r}=http://{r}");
    let verify = |spec: &Path| -> Result<Output> {
        tdg.run([
            "verify".as_ref(),
            spec.as_os_str(),
            "--mirror".as_ref(),
            mirror.as_ref(),
        ])
    };
    let repo_url = "https://github.com/urmanac/tdg";

    for (repo, bundle) in [("cosign/bundle", true), ("cosign/legacy", false)] {
        let image = push_image(&r, &dir, repo, "signed by release\n")?;
        cosign.sign("release", &image, bundle)?;
        cosign.attest("release", &image, bundle)?;
        let tag = image.replace(
            &format!("@{}", image.rsplit('@').next().unwrap_or("")),
            ":v1",
        );
        let what = if bundle { "bundle" } else { "legacy" };
        // What cosign wrote: referrers under the fallback tag, or the .sig and .att tags.
        let tags = fixtures::output(
            Command::new("skopeo")
                .args(["list-tags", "--tls-verify=false"])
                .arg(format!("docker://{r}/{repo}")),
        )?;
        let hex = image.rsplit(':').next().context("digest")?;
        for suffix in if bundle {
            vec![""]
        } else {
            vec![".sig", ".att"]
        } {
            ensure!(
                tags.contains(&format!("\"sha256-{hex}{suffix}\"")),
                "{what}: no sha256-…{suffix} tag: {tags}"
            );
        }

        // The right key, no log said out loud: both checks pass, as cosign agrees.
        let good = spec(
            &dir,
            &format!("{what}-good"),
            &tag,
            "release",
            Some(false),
            repo_url,
        )?;
        let out = expect_exit(&verify(&good)?, 0)?;
        ensure!(
            out.contains("ok   signature") && out.contains("ok   provenance"),
            "{what}: {out}"
        );
        ensure!(!out.contains("over a year old"), "no root was used: {out}");
        ensure!(
            cosign.verifies("release", &image)?,
            "cosign refuses its own signature"
        );

        // Without `tlog: false`: refused, saying what to add.
        let strict = spec(
            &dir,
            &format!("{what}-strict"),
            &tag,
            "release",
            None,
            repo_url,
        )?;
        let out = expect_exit(&verify(&strict)?, 1)?;
        ensure!(
            out.contains("FAIL signature")
                && out.contains("no transparency-log entry")
                && out.contains("add `tlog: false` beside `key:`"),
            "{what}: {out}"
        );

        // Another key: refused by tdg and by cosign.
        let other = spec(
            &dir,
            &format!("{what}-other"),
            &tag,
            "other",
            Some(false),
            repo_url,
        )?;
        let out = expect_exit(&verify(&other)?, 1)?;
        ensure!(
            out.contains("FAIL signature: no signature verifies for other.pub")
                && out.contains("FAIL provenance: no provenance verifies for other.pub"),
            "{what}: {out}"
        );
        ensure!(
            !cosign.verifies("other", &image)?,
            "cosign accepts another key"
        );

        // Provenance of another repository: refused, naming the field.
        let fork = spec(
            &dir,
            &format!("{what}-fork"),
            &tag,
            "release",
            Some(false),
            "https://github.com/fork/tdg",
        )?;
        let out = expect_exit(&verify(&fork)?, 1)?;
        ensure!(
            out.contains("ok   signature")
                && out.contains("repository is 'https://github.com/urmanac/tdg'"),
            "{what}: {out}"
        );
    }

    // A changed signature: one byte of the legacy .sig's signature altered, pushed back.
    let image = format!("{r}/cosign/legacy");
    let tags = fixtures::output(
        Command::new("skopeo")
            .args(["list-tags", "--tls-verify=false"])
            .arg(format!("docker://{image}")),
    )?;
    let sig_tag = tags
        .split('"')
        .find(|t| t.ends_with(".sig"))
        .context("no .sig tag")?
        .to_string();
    let url = format!("http://{r}/v2/cosign/legacy/manifests/{sig_tag}");
    let manifest = fixtures::output(Command::new("curl").args([
        "-fsS",
        "-H",
        "Accept: application/vnd.oci.image.manifest.v1+json",
        &url,
    ]))?;
    let mut m: serde_json::Value = serde_json::from_str(&manifest)?;
    let sig = m["layers"][0]["annotations"]["dev.cosignproject.cosign/signature"]
        .as_str()
        .context("signature annotation")?
        .to_string();
    let flipped: String = sig
        .char_indices()
        .map(|(i, c)| {
            if i == 20 {
                if c == 'A' {
                    'B'
                } else {
                    'A'
                }
            } else {
                c
            }
        })
        .collect();
    m["layers"][0]["annotations"]["dev.cosignproject.cosign/signature"] = flipped.into();
    let file = dir.join("tampered.json");
    std::fs::write(&file, serde_json::to_vec(&m)?)?;
    fixtures::run(Command::new("curl").args([
        "-fsS",
        "-X",
        "PUT",
        "-H",
        "Content-Type: application/vnd.oci.image.manifest.v1+json",
        "--data-binary",
        &format!("@{}", file.display()),
        &url,
    ]))?;
    let legacy = dir.join("legacy-good.yaml");
    let out = expect_exit(&verify(&legacy)?, 1)?;
    ensure!(
        out.contains("FAIL signature")
            && out.contains("does not verify")
            && out.contains("ok   provenance"),
        "{out}"
    );

    // A changed image: the tag moved to new content, which nobody signed.
    push_image(&r, &dir, "cosign/bundle", "changed after signing\n")?;
    let out = expect_exit(&verify(&dir.join("bundle-good.yaml"))?, 1)?;
    ensure!(
        out.contains("FAIL signature: no signature of")
            && out.contains("FAIL provenance: no SLSA provenance attestation of"),
        "{out}"
    );
    Ok(())
}
