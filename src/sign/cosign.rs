//! cosign's signatures as it stores them beside an image: a manifest under the tag
//! `sha256-<hex>.sig` whose layers are simple-signing payloads, each with its signature and
//! Rekor entry in annotations (sigstore/cosign `pkg/oci/static/signature.go`,
//! `pkg/types/media.go`). A keyed signature is judged as `cosign verify --key` judges it
//! (`pkg/cosign/verify.go` `verifyInternal`): the Rekor entry, the signature over the
//! payload, then the payload's claim (`SimpleClaimVerifier`); a keyless one also by its
//! Fulcio certificate, chained at the log entry's time, for the identity and issuer asked.

use base64::Engine as _;
use serde::Deserialize;

use super::fulcio;
use super::rekor::{self, RekorBundle, Signed};
use super::trusted_root::TrustedRoot;
use crate::digest::Digest;
use crate::error::Reason;
use crate::oci::manifest::Descriptor;

pub const SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
pub const CERTIFICATE_ANNOTATION: &str = "dev.sigstore.cosign/certificate";
pub const BUNDLE_ANNOTATION: &str = "dev.sigstore.cosign/bundle";
/// An attestation layer under `sha256-<hex>.att` (`pkg/types/media.go` `DssePayloadType`).
pub const DSSE_ENVELOPE: &str = "application/vnd.dsse.envelope.v1+json";
/// A payload larger than this is not a simple-signing document.
pub const MAX_PAYLOAD: u64 = 1 << 20;

/// The tag cosign stores an image's signatures under.
pub fn signature_tag(subject: &Digest) -> String {
    format!("sha256-{}.sig", subject.hex())
}

/// The tag cosign stores an image's attestations under (without the bundle format).
pub fn attestation_tag(subject: &Digest) -> String {
    format!("sha256-{}.att", subject.hex())
}

/// One signature: its payload (fetched, digest-checked) and its layer's annotations.
#[derive(Debug, Clone)]
pub struct Found {
    pub layer: Descriptor,
    pub payload: Vec<u8>,
}

impl Found {
    fn annotation(&self, key: &str) -> Option<&str> {
        self.layer.annotations.get(key).map(String::as_str)
    }
}

#[derive(Deserialize)]
struct Payload {
    critical: Critical,
}

#[derive(Deserialize)]
struct Critical {
    #[serde(rename = "type")]
    kind: String,
    image: ImageClaim,
}

#[derive(Deserialize)]
struct ImageClaim {
    #[serde(rename = "docker-manifest-digest")]
    digest: String,
}

/// A public key as cosign writes it (`cosign.pub`): PEM `PUBLIC KEY`, ECDSA P-256. Returns the
/// DER SubjectPublicKeyInfo.
pub fn public_key(pem: &str) -> Result<Vec<u8>, Reason> {
    if !pem.contains("-----BEGIN PUBLIC KEY-----") {
        return Err("not a PEM public key (-----BEGIN PUBLIC KEY-----)".into());
    }
    let der = rekor::pem_der(pem.as_bytes()).ok_or("its PEM body is not base64")?;
    use p256::pkcs8::DecodePublicKey as _;
    p256::ecdsa::VerifyingKey::from_public_key_der(&der)
        .map_err(|e| format!("not an ECDSA P-256 public key ({e})"))?;
    Ok(der)
}

/// Who must have signed: a key, or a keyless identity from an OIDC issuer.
pub enum Signer<'a> {
    Key {
        /// DER SPKI of an ECDSA P-256 key.
        spki: &'a [u8],
        /// Whether a transparency-log entry is required. `false` is `cosign verify
        /// --insecure-ignore-tlog`: the log is neither required nor read.
        tlog: bool,
    },
    Keyless {
        /// Whether a certificate identity (SAN email or URI) is the one asked for.
        identity: &'a dyn Fn(&str) -> bool,
        /// The identity asked for, for messages.
        shown: String,
        issuer: &'a str,
    },
}

/// What a signature without a log entry says, so the check can add, once, how to accept one.
pub const NO_LOG: &str = "no transparency-log entry";

/// Judges one signature: `Ok` with the Rekor entry's time (`None` when the log was not asked
/// for), or why it fails. The steps are cosign's: the log entry, the certificate (keyless),
/// the signature, the claim.
pub fn verify(
    found: &Found,
    signer: &Signer<'_>,
    subject: &Digest,
    root: &TrustedRoot,
) -> Result<Option<i64>, Reason> {
    let sig_b64 = found
        .annotation(SIGNATURE_ANNOTATION)
        .ok_or("it has no signature annotation")?;
    let cert = match signer {
        Signer::Key { .. } => None,
        Signer::Keyless { .. } => {
            let pem = found.annotation(CERTIFICATE_ANNOTATION).ok_or(
                "it has no certificate (dev.sigstore.cosign/certificate): not a keyless signature",
            )?;
            Some(fulcio::Cert::from_pem(pem).map_err(|e| format!("its certificate: {e}"))?)
        }
    };
    let (recorded, key) = match (signer, &cert) {
        (Signer::Key { spki, .. }, _) => (spki.to_vec(), spki.to_vec()),
        (_, Some(c)) => (c.der.clone(), c.spki()),
        (_, None) => unreachable!("a keyless signer has a certificate"),
    };
    // cosign requires a transparency-log entry unless told to ignore the log
    // (`--insecure-ignore-tlog`, which then reads none); offline, that entry is the bundle
    // annotation.
    let time = match signer {
        Signer::Key { tlog: false, .. } => None,
        _ => {
            let bundle = found.annotation(BUNDLE_ANNOTATION).ok_or_else(|| {
                format!("it has {NO_LOG} (dev.sigstore.cosign/bundle); cosign verify requires one")
            })?;
            let bundle: RekorBundle = serde_json::from_str(bundle)
                .map_err(|e| format!("its Rekor bundle annotation is malformed: {e}"))?;
            let signed = Signed {
                signature_b64: sig_b64,
                recorded: &recorded,
                payload: &found.payload,
            };
            Some(rekor::verify(&bundle, &signed, root)?)
        }
    };
    if let (
        Signer::Keyless {
            identity,
            shown,
            issuer,
        },
        Some(c),
    ) = (signer, &cert)
    {
        let times: Vec<i64> = time.into_iter().collect();
        fulcio::check_signer(c, root, &times, *identity, shown, issuer)?;
    }
    let sig = base64::engine::general_purpose::STANDARD
        .decode(sig_b64)
        .map_err(|e| format!("its signature is not base64: {e}"))?;
    rekor::ecdsa_verify(&key, &found.payload, &sig)
        .map_err(|e| format!("the key does not verify its payload: {e}"))?;
    let claim: Payload = serde_json::from_slice(&found.payload)
        .map_err(|e| format!("its payload is not a simple-signing document: {e}"))?;
    if claim.critical.kind != "cosign container image signature" {
        return Err(format!(
            "its payload is a {:?}, not a cosign container image signature",
            claim.critical.kind
        )
        .into());
    }
    if claim.critical.image.digest != subject.to_string() {
        return Err(format!(
            "it signs {}, not this image's {subject}",
            claim.critical.image.digest
        )
        .into());
    }
    Ok(time)
}
