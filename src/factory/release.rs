//! `tdg factory release`: a release manifest that pins one Image Factory artifact pair, the
//! ISO (by URL and SHA-256) and the installer image (by reference and digest), derived from a
//! schematic in the repository. The manifest is validated against its published schema before
//! it is written; any failure writes nothing.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use serde::Serialize;

use super::client::Client;
use crate::error::ErrorKind;
use crate::factory::schematic::Schematic;
use crate::factory::urls::{self, Factory, Target, Urls};
use crate::located::read_text;
use crate::oci::platform::Platform;
use crate::oci::resolve;
use crate::oci::source::Source;
use crate::pull::Env;
use crate::reference::{ImageRef, Location};

/// The manifest's JSON Schema, shipped in `schema/` and printed by `tdg schema --release`.
pub const SCHEMA: &str = include_str!("../../schema/release-v1.schema.json");

pub struct Request {
    pub schematic: PathBuf,
    pub factory: Factory,
    pub target: Target,
    pub release_version: String,
    pub channel: String,
    pub kubernetes: String,
    pub app_version: String,
    pub values_profile: String,
    pub dry_run: bool,
    /// Keep the ISO in this directory (created if missing).
    pub download: Option<PathBuf>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub release_version: String,
    pub generated_at: String,
    pub channel: String,
    pub dry_run: bool,
    pub talos: Talos,
    pub kubernetes: Kubernetes,
    pub os: Os,
    pub app: App,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Talos {
    pub version: String,
    pub schematic_id: String,
    pub schematic_path: String,
}

#[derive(Debug, Serialize)]
pub struct Kubernetes {
    pub version: String,
}

#[derive(Debug, Serialize)]
pub struct Os {
    pub platform: String,
    pub architecture: String,
    pub iso: Iso,
    pub installer: Installer,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Iso {
    pub url: String,
    pub local_path: Option<String>,
    pub sha256: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Installer {
    pub image: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct App {
    pub version: String,
    pub values_profile: String,
}

/// What a release run did besides the manifest, for the user.
pub struct Outcome {
    pub manifest: Manifest,
    pub urls: Urls,
    pub notes: Vec<String>,
}

pub async fn release(env: &Env, req: &Request) -> Result<Outcome> {
    // Read once: the text submitted is the text the ID was computed from.
    let text = read_text(&req.schematic, "schematic").map_err(|e| e.with_snippet())?;
    let schematic = Schematic::parse(&req.schematic, &text).map_err(|e| e.with_snippet())?;
    let id = schematic.id();
    let urls = urls::render(&req.factory, &id, &req.target)?;
    let installer = derived_installer(&urls)?;
    let mut notes = Vec::new();
    let (mut local_path, mut sha256, mut digest) = (None, None, None);
    if !req.dry_run {
        let client = Client::new(req.factory.clone())?;
        client
            .submit(text.into_bytes(), &id, &req.schematic)
            .await?;
        let dest = match &req.download {
            Some(dir) => {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
                Some(dir.join(req.target.iso_name()))
            }
            None => None,
        };
        let iso = client
            .download(&urls.iso, dest.as_deref(), &req.target.iso_name())
            .await
            .context("downloading the ISO")?;
        notes.push(format!(
            "iso: {} bytes, sha256 {}",
            iso.size,
            iso.digest.hex()
        ));
        sha256 = Some(iso.digest.hex().to_string());
        local_path = dest.map(|d| d.display().to_string());
        match installer_digest(env, &installer, &req.target.arch).await? {
            Lookup::Found(d) => digest = Some(d),
            Lookup::Unreachable(e) => {
                notes.push(format!("warning: the installer digest is left out: {e:#}"))
            }
        }
    }
    let manifest = Manifest {
        release_version: req.release_version.clone(),
        generated_at: generated_at()?,
        channel: req.channel.clone(),
        dry_run: req.dry_run,
        talos: Talos {
            version: req.target.talos.clone(),
            schematic_id: id,
            schematic_path: req.schematic.display().to_string(),
        },
        kubernetes: Kubernetes {
            version: req.kubernetes.clone(),
        },
        os: Os {
            platform: req.target.platform.clone(),
            architecture: req.target.arch.clone(),
            iso: Iso {
                url: urls.iso.clone(),
                local_path,
                sha256,
            },
            installer: Installer {
                image: installer.clone(),
                digest,
            },
        },
        app: App {
            version: req.app_version.clone(),
            values_profile: req.values_profile.clone(),
        },
    };
    validate(&serde_json::to_value(&manifest)?)?;
    Ok(Outcome {
        manifest,
        urls,
        notes,
    })
}

/// The installer reference must name this schematic ID and Talos version, in the factory's
/// registry: anything else would pin an installer built from another schematic.
fn derived_installer(u: &Urls) -> Result<String> {
    let installer = u.installer.clone().with_context(|| {
        format!(
            "the {} platform has no installer image (its name cannot be an image reference)",
            u.platform
        )
    })?;
    let r: ImageRef = installer
        .parse()
        .with_context(|| format!("the installer reference '{installer}'"))?;
    let repo_ok = matches!(&r.location, Location::Registry { repository, .. }
        if repository.rsplit('/').next() == Some(u.schematic_id.as_str()));
    if !repo_ok || r.tag.as_deref() != Some(u.talos.as_str()) {
        bail!(
            "the installer reference {installer} is not derived from schematic {} and Talos {}",
            u.schematic_id,
            u.talos
        );
    }
    Ok(installer)
}

enum Lookup {
    Found(String),
    /// The registry could not be asked (offline, refused, unknown): the manifest goes without.
    Unreachable(anyhow::Error),
}

/// The installer index's digest, checked to hold an image for `arch`. An installer without
/// that image, or bytes that do not match their digest, are errors, not a missing digest.
async fn installer_digest(env: &Env, image: &str, arch: &str) -> Result<Lookup> {
    let r: ImageRef = image.parse()?;
    let source = Source::open(&env.mirrors.endpoint(&r))?;
    let wanted = Platform::new("linux", arch, None);
    let resolved = match resolve::resolve(&source, &r, Some(&wanted), &env.cache).await {
        Ok(resolved) => resolved,
        Err(e)
            if matches!(
                e.kind(),
                ErrorKind::PlatformMissing { .. } | ErrorKind::Usage | ErrorKind::Integrity
            ) =>
        {
            return Err(e.context(format!("the installer {image}")).into());
        }
        Err(e) => {
            return Ok(Lookup::Unreachable(
                anyhow::Error::from(e).context(format!("resolving {image}")),
            ))
        }
    };
    if !resolved.platform.satisfies(&wanted) {
        bail!(
            "the installer {image} is a {} image, not {wanted}",
            resolved.platform
        );
    }
    Ok(Lookup::Found(resolved.digest.to_string()))
}

fn generated_at() -> Result<String> {
    let now = match crate::epoch::source_date_epoch_set()? {
        Some(s) => UNIX_EPOCH + Duration::from_secs(s),
        None => SystemTime::now(),
    };
    Ok(humantime::format_rfc3339_seconds(now).to_string())
}

/// Checks a manifest against [`SCHEMA`]; every violation is listed with its JSON path.
pub fn validate(manifest: &serde_json::Value) -> Result<()> {
    let schema: serde_json::Value =
        serde_json::from_str(SCHEMA).context("the release schema is not JSON")?;
    let validator = jsonschema::validator_for(&schema)
        .map_err(|e| anyhow::anyhow!("the release schema does not compile: {e}"))?;
    let errors: Vec<String> = validator
        .iter_errors(manifest)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect();
    if !errors.is_empty() {
        bail!(
            "the release manifest does not match schema/release-v1.schema.json:\n  {}",
            errors.join("\n  ")
        );
    }
    Ok(())
}

/// Writes the manifest to `path` through a temporary file beside it.
pub fn write(manifest: &Manifest, path: &Path) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".tdg-release-")
        .tempfile_in(dir)
        .with_context(|| format!("writing {}", path.display()))?;
    serde_json::to_writer_pretty(&mut tmp, manifest)?;
    std::io::Write::write_all(&mut tmp, b"\n")?;
    crate::http::set_mode(tmp.as_file())?;
    tmp.persist(path)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(dry_run: bool) -> serde_json::Value {
        let id = "376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba";
        serde_json::json!({
            "releaseVersion": "v0.3.0",
            "generatedAt": "2026-11-22T10:00:00Z",
            "channel": "stable",
            "dryRun": dry_run,
            "talos": {"version": "v1.11.5", "schematicId": id, "schematicPath": "schematics/spin.yaml"},
            "kubernetes": {"version": "v1.34.1"},
            "os": {
                "platform": "metal",
                "architecture": "arm64",
                "iso": {"url": format!("https://factory.talos.dev/image/{id}/v1.11.5/metal-arm64.iso"), "localPath": null, "sha256": null},
                "installer": {"image": format!("factory.talos.dev/metal-installer/{id}:v1.11.5")}
            },
            "app": {"version": "v0.3.0", "valuesProfile": "default"}
        })
    }

    #[test]
    fn a_dry_run_manifest_validates() {
        validate(&manifest(true)).unwrap();
    }

    #[test]
    fn every_required_field_is_required() {
        let paths = [
            "/releaseVersion",
            "/generatedAt",
            "/channel",
            "/dryRun",
            "/talos/version",
            "/talos/schematicId",
            "/talos/schematicPath",
            "/kubernetes/version",
            "/os/platform",
            "/os/architecture",
            "/os/iso/url",
            "/os/iso/localPath",
            "/os/iso/sha256",
            "/os/installer/image",
            "/app/version",
            "/app/valuesProfile",
        ];
        for p in paths {
            let mut m = manifest(true);
            let (parent, field) = p.rsplit_once('/').unwrap();
            m.pointer_mut(if parent.is_empty() { "" } else { parent })
                .and_then(|v| v.as_object_mut())
                .unwrap()
                .remove(field);
            let e = validate(&m).expect_err(p).to_string();
            assert!(
                e.contains(&format!("\"{field}\" is a required property")),
                "{p}: {e}"
            );
        }
    }

    #[test]
    fn a_real_run_needs_the_iso_checksum() {
        let mut m = manifest(false);
        assert!(validate(&m).is_err(), "sha256 null outside a dry run");
        m["os"]["iso"]["sha256"] = "ab".repeat(32).into();
        validate(&m).unwrap();
        m["os"]["iso"]["sha256"] = "AB".repeat(32).into();
        assert!(validate(&m).is_err());
        m["os"]["iso"]["sha256"] = "ab".repeat(32).into();
        m["os"]["installer"]["digest"] = "sha256:1234".into();
        assert!(validate(&m)
            .unwrap_err()
            .to_string()
            .contains("/os/installer/digest"));
        m["os"]["installer"]["digest"] = format!("sha256:{}", "0".repeat(64)).into();
        validate(&m).unwrap();
        m["extra"] = 1.into();
        assert!(validate(&m).is_err(), "unknown fields are refused");
    }
}
