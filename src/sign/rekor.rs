//! A Rekor v1 entry as cosign attaches it to a signature (`dev.sigstore.cosign/bundle`): the
//! signed entry timestamp (SET) checked with the log's key from the trusted root, and the
//! entry's body checked to be this signature, this key and this payload. As cosign's
//! `VerifyBundle` and `VerifySET` do (sigstore/cosign `pkg/cosign/verify.go`).

use base64::Engine as _;
use p256::ecdsa::signature::Verifier as _;
use serde::Deserialize;

use super::trusted_root::TrustedRoot;
use crate::digest::Digest;
use crate::error::Reason;

/// The annotation's JSON (cosign `pkg/cosign/bundle/rekor.go`).
#[derive(Debug, Deserialize)]
pub struct RekorBundle {
    #[serde(rename = "SignedEntryTimestamp")]
    pub set: String,
    #[serde(rename = "Payload")]
    pub payload: RekorPayload,
}

#[derive(Debug, Deserialize, serde::Serialize)]
pub struct RekorPayload {
    pub body: String,
    #[serde(rename = "integratedTime")]
    pub integrated_time: i64,
    #[serde(rename = "logIndex")]
    pub log_index: i64,
    #[serde(rename = "logID")]
    pub log_id: String,
}

/// What the entry must record.
pub struct Signed<'a> {
    /// The signature as base64, as the annotation holds it.
    pub signature_b64: &'a str,
    /// What the entry must record as the signer: the key's DER SPKI, or the certificate's DER.
    pub recorded: &'a [u8],
    /// The signed payload.
    pub payload: &'a [u8],
}

/// Verifies the entry; returns its integrated time (Unix seconds). Each error names the
/// step that failed.
pub fn verify(
    bundle: &RekorBundle,
    signed: &Signed<'_>,
    root: &TrustedRoot,
) -> Result<i64, Reason> {
    let time = verify_set(bundle, root)?;
    hashedrekord_body(&bundle.payload.body, signed)?;
    Ok(time)
}

/// The SET: the log is in the trusted root, valid at the entry's time, and its key signed the
/// entry. Returns the integrated time.
pub fn verify_set(bundle: &RekorBundle, root: &TrustedRoot) -> Result<i64, Reason> {
    let p = &bundle.payload;
    let log = root.log(&p.log_id).ok_or_else(|| {
        format!(
            "its Rekor entry is from log {}, which {} does not trust",
            short(&p.log_id),
            root.origin
        )
    })?;
    if !log.valid_at(p.integrated_time) {
        return Err(format!(
            "its Rekor entry's time {} is outside the validity of the log key of {}",
            p.integrated_time, log.base_url
        )
        .into());
    }
    if log.details != "PKIX_ECDSA_P256_SHA_256" {
        return Err(format!(
            "the log key of {} is {}; tdg checks Rekor v1 SETs of ECDSA P-256 keys",
            log.base_url, log.details
        )
        .into());
    }
    // The SET signs the RFC 8785 canonical JSON of the payload: keys sorted, no spaces. Every
    // value here is an integer or a base64/hex string, for which serde_json's compact output
    // of sorted keys is that form.
    let canonical = serde_json::to_vec(&serde_json::json!({
        "body": p.body,
        "integratedTime": p.integrated_time,
        "logID": p.log_id,
        "logIndex": p.log_index,
    }))
    .map_err(|e| e.to_string())?;
    let b64 = base64::engine::general_purpose::STANDARD;
    let set = b64
        .decode(&bundle.set)
        .map_err(|e| format!("its SET is not base64: {e}"))?;
    ecdsa_verify(&log.spki, &canonical, &set).map_err(|e| {
        format!(
            "its Rekor SET does not verify with the key of {}: {e}",
            log.base_url
        )
    })?;
    Ok(p.integrated_time)
}

/// A `hashedrekord` body must be this signature over this payload by this key.
fn hashedrekord_body(body: &str, signed: &Signed<'_>) -> Result<(), Reason> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let body = b64
        .decode(body)
        .map_err(|e| format!("its Rekor entry's body is not base64: {e}"))?;
    let entry: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|e| format!("its Rekor entry's body is not JSON: {e}"))?;
    let kind = entry["kind"].as_str().unwrap_or_default();
    if kind != "hashedrekord" {
        return Err(format!(
            "its Rekor entry is a {kind:?}; tdg reads hashedrekord entries for image signatures"
        )
        .into());
    }
    let spec = &entry["spec"];
    let hash = &spec["data"]["hash"];
    let want = Digest::of(signed.payload);
    if hash["algorithm"] != "sha256" || hash["value"] != want.hex() {
        return Err(format!(
            "its Rekor entry records the payload hash {}, not {}",
            hash["value"].as_str().unwrap_or("(none)"),
            want.hex()
        )
        .into());
    }
    if spec["signature"]["content"] != signed.signature_b64 {
        return Err("its Rekor entry records another signature".into());
    }
    let key_pem = spec["signature"]["publicKey"]["content"]
        .as_str()
        .and_then(|k| b64.decode(k).ok())
        .and_then(|pem| pem_der(&pem))
        .ok_or("its Rekor entry records no readable public key")?;
    if key_pem != signed.recorded {
        return Err("its Rekor entry records another public key or certificate".into());
    }
    Ok(())
}

/// Verifies an ASN.1 DER ECDSA P-256 signature over SHA-256 of `message`.
pub fn ecdsa_verify(spki: &[u8], message: &[u8], der_sig: &[u8]) -> Result<(), Reason> {
    use p256::pkcs8::DecodePublicKey as _;
    let key = p256::ecdsa::VerifyingKey::from_public_key_der(spki)
        .map_err(|e| format!("not an ECDSA P-256 key ({e})"))?;
    let sig = p256::ecdsa::DerSignature::from_bytes(der_sig)
        .map_err(|e| format!("not a DER ECDSA signature ({e})"))?;
    key.verify(message, &sig)
        .map_err(|_| Reason::from("the signature does not match"))
}

/// The DER of the one PEM block in `pem` (a certificate or public key).
pub fn pem_der(pem: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(pem).ok()?;
    let body: String = text
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN "))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END "))
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(body.trim())
        .ok()
}

fn short(hex: &str) -> &str {
    &hex[..hex.len().min(12)]
}
