//! Sigstore bundles (protobuf-specs `sigstore_bundle.proto`, v0.1–v0.3, JSON) holding a DSSE
//! envelope: cosign 3's image signatures (an in-toto statement of predicate
//! `https://sigstore.dev/cosign/sign/v1`) and GitHub's build-provenance attestations (SLSA
//! provenance v1), stored as OCI 1.1 referrers of the image. Verified offline, as
//! sigstore-go's verifier does for these: the Rekor v1 entry (its SET, and a `dsse` body that
//! records this envelope's payload, signature and certificate), the certificate chained at the
//! entry's time to the trusted root with the identity and issuer asked for, the DSSE signature
//! over the pre-authentication encoding, and the statement's subject.

use base64::Engine as _;
use serde::Deserialize;

pub use super::cosign::Signer;
use super::fulcio::{self, Cert};
use super::rekor::{self, RekorBundle, RekorPayload};
use super::trusted_root::TrustedRoot;
use crate::digest::Digest;
use crate::error::Reason;

pub const BUNDLE_MEDIA_TYPE_PREFIX: &str = "application/vnd.dev.sigstore.bundle";
/// cosign 3's predicate for an image signature (`pkg/types` `CosignSignPredicateType`).
pub const COSIGN_SIGN_PREDICATE: &str = "https://sigstore.dev/cosign/sign/v1";
pub const SLSA_PROVENANCE_V1: &str = "https://slsa.dev/provenance/v1";
const IN_TOTO_PAYLOAD: &str = "application/vnd.in-toto+json";

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BundleJson {
    media_type: String,
    verification_material: Material,
    #[serde(default)]
    dsse_envelope: Option<Envelope>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Material {
    #[serde(default)]
    certificate: Option<Raw>,
    #[serde(default)]
    x509_certificate_chain: Option<Chain>,
    #[serde(default)]
    tlog_entries: Vec<TlogEntry>,
    #[serde(default)]
    timestamp_verification_data: Option<TimestampData>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TimestampData {
    #[serde(default)]
    rfc3161_timestamps: Vec<SignedTimestamp>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SignedTimestamp {
    signed_timestamp: String,
}

#[derive(Deserialize)]
struct Chain {
    certificates: Vec<Raw>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Raw {
    raw_bytes: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TlogEntry {
    log_index: StringInt,
    log_id: LogId,
    /// Rekor v1's; Rekor v2 entries have none (protobuf-json leaves a zero out).
    #[serde(default = "StringInt::zero")]
    integrated_time: StringInt,
    #[serde(default)]
    inclusion_promise: Option<Promise>,
    #[serde(default)]
    inclusion_proof: Option<ProofJson>,
    canonicalized_body: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ProofJson {
    log_index: StringInt,
    root_hash: String,
    tree_size: StringInt,
    #[serde(default)]
    hashes: Vec<String>,
    checkpoint: CheckpointJson,
}

#[derive(Deserialize)]
struct CheckpointJson {
    envelope: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LogId {
    key_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Promise {
    signed_entry_timestamp: String,
}

/// protobuf-json writes 64-bit integers as strings.
#[derive(Deserialize)]
#[serde(untagged)]
enum StringInt {
    S(String),
    N(i64),
}

impl StringInt {
    fn zero() -> Self {
        StringInt::N(0)
    }

    fn get(&self) -> Result<i64, Reason> {
        match self {
            StringInt::S(s) => s
                .parse()
                .map_err(|_| Reason(format!("{s:?} is not an integer"))),
            StringInt::N(n) => Ok(*n),
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Envelope {
    payload: String,
    payload_type: String,
    signatures: Vec<EnvelopeSignature>,
}

#[derive(Deserialize)]
struct EnvelopeSignature {
    sig: String,
}

/// An in-toto statement that verified.
#[derive(Debug, Clone)]
pub struct Statement {
    pub predicate_type: String,
    pub predicate: serde_json::Value,
    /// When the log or a timestamp authority saw it (Unix seconds); `None` for a keyed bundle
    /// judged without its log (`tlog: false`).
    pub logged_at: Option<i64>,
}

/// DSSE's pre-authentication encoding (secure-systems-lab/dsse `protocol.md`).
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {} {} ",
        payload_type.len(),
        payload_type,
        payload.len()
    )
    .into_bytes();
    out.extend_from_slice(payload);
    out
}

/// Verifies a bundle for `subject`; `Ok` with its statement, or the step that failed.
pub fn verify(
    bytes: &[u8],
    subject: &Digest,
    signer: &Signer<'_>,
    root: &TrustedRoot,
) -> Result<Statement, Reason> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let bundle: BundleJson =
        serde_json::from_slice(bytes).map_err(|e| format!("it is not a Sigstore bundle: {e}"))?;
    let version = bundle_version(&bundle.media_type)?;
    structure(version, &bundle.verification_material)?;
    let env = bundle
        .dsse_envelope
        .ok_or("it holds a message signature, not a DSSE envelope; tdg reads DSSE bundles")?;
    let m = bundle.verification_material;
    let cert_b64 = match (&m.certificate, &m.x509_certificate_chain) {
        (Some(c), _) => Some(&c.raw_bytes),
        (None, Some(chain)) if !chain.certificates.is_empty() => {
            Some(&chain.certificates[0].raw_bytes)
        }
        _ => None,
    };
    // Keyless bundles carry a certificate; keyed ones only a hint at a public key.
    let (cert, key, recorded) = match (signer, cert_b64) {
        (Signer::Keyless { .. }, Some(c)) => {
            let cert = Cert::from_der(b64.decode(c).map_err(|e| format!("its certificate: {e}"))?)?;
            let (key, der) = (cert.spki(), cert.der.clone());
            (Some(cert), key, der)
        }
        (Signer::Keyless { .. }, None) => {
            return Err("it is a keyed bundle (no certificate), not a keyless signature".into())
        }
        (Signer::Key { spki, .. }, None) => (None, spki.to_vec(), spki.to_vec()),
        (Signer::Key { .. }, Some(_)) => {
            return Err("it is a keyless bundle (a certificate), not signed by the key".into())
        }
    };
    let (payload, sig, sig_bytes) = opened(&env)?;

    // 1. When it was signed: each RFC 3161 timestamp from an authority of the trusted root,
    // and each log entry. At least one; every one present must verify.
    let mut times = timestamps(&m, &sig_bytes, root)?;
    // `tlog: false` (cosign's `--insecure-ignore-tlog`): the log is neither required nor read.
    let read_log = !matches!(signer, Signer::Key { tlog: false, .. });
    let signed = Signed {
        payload_type: &env.payload_type,
        payload: &payload,
        sig_b64: &sig.sig,
        sig: &sig_bytes,
        recorded: &recorded,
    };
    // A Rekor v2 entry has no time of its own: the timestamps' say when.
    let stamped = times.clone();
    for entry in m.tlog_entries.iter().filter(|_| read_log) {
        times.extend(logged(entry, &signed, &stamped, root)?);
    }
    let logged_at = times.last().copied();
    if logged_at.is_none() && read_log {
        return Err(format!("it has {} and no timestamp", super::cosign::NO_LOG).into());
    }

    // 2. Keyless: the certificate, at every verified time, for whom the policy asks.
    if let (
        Signer::Keyless {
            identity,
            shown,
            issuer,
        },
        Some(cert),
    ) = (signer, &cert)
    {
        fulcio::check_signer(cert, root, &times, *identity, shown, issuer)?;
    }

    // 3 and 4. The envelope's signature over the PAE, and a statement about this image.
    let (predicate_type, predicate) =
        dsse_statement(&env.payload_type, &payload, &sig_bytes, &key, subject)?;
    Ok(Statement {
        predicate_type,
        predicate,
        logged_at,
    })
}

/// What a log entry must record: the envelope's payload and type, its signature (as written
/// and decoded), and the certificate's DER or the key's SPKI.
struct Signed<'a> {
    payload_type: &'a str,
    payload: &'a [u8],
    sig_b64: &'a str,
    sig: &'a [u8],
    recorded: &'a [u8],
}

/// The times the bundle's RFC 3161 timestamps vouch for, each verified.
fn timestamps(m: &Material, sig: &[u8], root: &TrustedRoot) -> Result<Vec<i64>, Reason> {
    let b64 = base64::engine::general_purpose::STANDARD;
    m.timestamp_verification_data
        .iter()
        .flat_map(|d| &d.rfc3161_timestamps)
        .map(|t| {
            let response = b64
                .decode(&t.signed_timestamp)
                .map_err(|e| format!("its timestamp: {e}"))?;
            Ok(super::timestamp::verify(&response, sig, root)?.0)
        })
        .collect()
}

/// One log entry, verified: Rekor v1 (a promise) gives its time; Rekor v2 gives none.
fn logged(
    entry: &TlogEntry,
    signed: &Signed<'_>,
    stamped: &[i64],
    root: &TrustedRoot,
) -> Result<Option<i64>, Reason> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let log_id = hex::encode(
        b64.decode(&entry.log_id.key_id)
            .map_err(|e| format!("its log ID: {e}"))?,
    );
    let decode = |s: &str| b64.decode(s).map_err(|e| format!("its log entry: {e}"));
    let body = decode(&entry.canonicalized_body)?;
    let proof = match &entry.inclusion_proof {
        Some(p) => Some(super::inclusion::Proof {
            log_index: p.log_index.get()? as u64,
            tree_size: p.tree_size.get()? as u64,
            root_hash: decode(&p.root_hash)?,
            hashes: p
                .hashes
                .iter()
                .map(|h| decode(h))
                .collect::<Result<_, _>>()?,
            checkpoint: &p.checkpoint.envelope,
        }),
        None => None,
    };
    match &entry.inclusion_promise {
        // Rekor v1: the log's promise (SET) says when, and the dsse body what.
        Some(promise) => {
            let rekor = RekorBundle {
                set: promise.signed_entry_timestamp.clone(),
                payload: RekorPayload {
                    body: entry.canonicalized_body.clone(),
                    integrated_time: entry.integrated_time.get()?,
                    log_index: entry.log_index.get()?,
                    log_id: log_id.clone(),
                },
            };
            let time = rekor::verify_set(&rekor, root)?;
            dsse_body(
                &rekor.payload.body,
                signed.payload,
                signed.sig_b64,
                signed.recorded,
            )?;
            // An inclusion proof, when the entry has one, must hold too.
            if let (Some(p), Some(log)) = (&proof, root.log(&log_id)) {
                super::inclusion::verify(&body, p, log)?;
            }
            Ok(Some(time))
        }
        // Rekor v2 (rekor-tiles): no promise; the inclusion proof and its checkpoint, signed
        // by the log's key, vouch for the entry, and a timestamp for its time (sigstore-go
        // `verify/tlog.go`, `VerifyTlogEntry`).
        None => {
            let log = root.log(&log_id).ok_or_else(|| {
                format!(
                    "its log entry is from a log {} does not name (ID {log_id})",
                    root.origin
                )
            })?;
            let p = proof.as_ref().ok_or(
                "its log entry has neither a promise (Rekor v1) nor an inclusion proof (Rekor v2)",
            )?;
            super::inclusion::verify(&body, p, log)?;
            if stamped.is_empty() {
                return Err("its Rekor v2 entry gives no time, and the bundle has no RFC 3161 timestamp to give one".into());
            }
            if !stamped.iter().any(|t| log.valid_at(*t)) {
                return Err(format!(
                    "the key of {} was not valid when the bundle was timestamped",
                    log.base_url
                )
                .into());
            }
            v2_body(
                &body,
                signed.payload_type,
                signed.payload,
                signed.sig,
                signed.recorded,
            )?;
            Ok(None)
        }
    }
}

/// An envelope's payload, its one signature as written (base64) and decoded.
fn opened(env: &Envelope) -> Result<(Vec<u8>, &EnvelopeSignature, Vec<u8>), Reason> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let [sig] = env.signatures.as_slice() else {
        return Err(format!(
            "its envelope has {} signatures, not one",
            env.signatures.len()
        )
        .into());
    };
    let payload = b64
        .decode(&env.payload)
        .map_err(|e| format!("its payload: {e}"))?;
    let bytes = b64
        .decode(&sig.sig)
        .map_err(|e| format!("its signature: {e}"))?;
    Ok((payload, sig, bytes))
}

/// A DSSE envelope's signature over its pre-authentication encoding by `key` (DER SPKI), and
/// the in-toto statement it carries, which must name `subject`. Returns the predicate type and
/// the predicate.
pub fn dsse_statement(
    payload_type: &str,
    payload: &[u8],
    sig: &[u8],
    key: &[u8],
    subject: &Digest,
) -> Result<(String, serde_json::Value), Reason> {
    if payload_type != IN_TOTO_PAYLOAD {
        return Err(format!("its payload is {payload_type:?}, not an in-toto statement").into());
    }
    let hash = <sha2::Sha256 as sha2::Digest>::digest(pae(payload_type, payload));
    fulcio::verify_prehash(key, &hash, sig)
        .map_err(|e| format!("its envelope signature does not verify: {e}"))?;
    let st: serde_json::Value =
        serde_json::from_slice(payload).map_err(|e| format!("its statement is not JSON: {e}"))?;
    let about = st["subject"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|s| s["digest"]["sha256"] == subject.hex());
    if !about {
        let named: Vec<String> = st["subject"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| {
                s["digest"]["sha256"]
                    .as_str()
                    .map(|d| format!("sha256:{d}"))
            })
            .collect();
        return Err(format!(
            "its statement is about {}, not this image's {subject}",
            if named.is_empty() {
                "nothing".into()
            } else {
                named.join(", ")
            }
        )
        .into());
    }
    Ok((
        st["predicateType"].as_str().unwrap_or_default().to_string(),
        st["predicate"].clone(),
    ))
}

/// An attestation as cosign stores it without the bundle format: a DSSE envelope layer
/// (`application/vnd.dsse.envelope.v1+json`) of the manifest under `sha256-<hex>.att`
/// (cosign `pkg/oci/static`, `pkg/types/media.go` `DssePayloadType`). tdg judges these for a
/// key without a log (`tlog: false`, `cosign verify-attestation --insecure-ignore-tlog`);
/// logged or keyless attestations it reads as bundles.
pub fn verify_attestation(
    found: &super::cosign::Found,
    subject: &Digest,
    signer: &Signer<'_>,
) -> Result<Statement, Reason> {
    let Signer::Key { spki, tlog: false } = signer else {
        return Err(match signer {
            Signer::Key { .. } => Reason::from("it is a legacy .att attestation, which tdg verifies only for a key without a log; add `tlog: false` beside `key:` if this key attests without one, or attest in the bundle format"),
            Signer::Keyless { .. } => "it is a legacy .att attestation; tdg verifies keyless attestations in the bundle format".into(),
        });
    };
    let env: Envelope = serde_json::from_slice(&found.payload)
        .map_err(|e| format!("it is not a DSSE envelope: {e}"))?;
    let (payload, _, sig) = opened(&env)?;
    let (predicate_type, predicate) =
        dsse_statement(&env.payload_type, &payload, &sig, spki, subject)?;
    Ok(Statement {
        predicate_type,
        predicate,
        logged_at: None,
    })
}

/// A bundle's version from its media type: `application/vnd.dev.sigstore.bundle+json;version=0.1`
/// or `application/vnd.dev.sigstore.bundle.v0.3+json` (sigstore-go `pkg/bundle/bundle.go`
/// `getBundleVersion`). Versions 0.1 to 0.3 are read.
fn bundle_version(media_type: &str) -> Result<(u32, u32), Reason> {
    let v = media_type
        .strip_prefix("application/vnd.dev.sigstore.bundle+json;version=")
        .or_else(|| {
            media_type
                .strip_prefix("application/vnd.dev.sigstore.bundle.v")
                .and_then(|r| r.strip_suffix("+json"))
        })
        .ok_or_else(|| format!("its media type {media_type:?} is not a Sigstore bundle's"))?;
    let (major, minor) = v
        .split_once('.')
        .and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)))
        .ok_or_else(|| format!("its media type {media_type:?} has no version tdg reads"))?;
    if (major, minor) < (0, 1) || (major, minor) >= (0, 4) {
        return Err(format!("it is a v{major}.{minor} bundle; tdg reads v0.1 to v0.3").into());
    }
    Ok((major, minor))
}

/// What each bundle version requires of its material (sigstore-go `ProtobufBundle.validate`):
/// v0.1 log entries carry an inclusion promise, v0.2 and later an inclusion proof (with its
/// checkpoint); v0.3 names one certificate, never a chain.
fn structure(version: (u32, u32), m: &Material) -> Result<(), Reason> {
    let entries = &m.tlog_entries;
    if version == (0, 1) {
        if !entries.is_empty() && !entries.iter().any(|e| e.inclusion_promise.is_some()) {
            return Err(
                "its log entry has no inclusion promise, which a v0.1 bundle requires".into(),
            );
        }
    } else if !entries.is_empty() && !entries.iter().any(|e| e.inclusion_proof.is_some()) {
        return Err(format!(
            "its log entry has no inclusion proof, which a v0.{} bundle requires",
            version.1
        )
        .into());
    }
    if version >= (0, 3) && m.x509_certificate_chain.is_some() {
        return Err("a v0.3 bundle names one certificate, not a chain".into());
    }
    Ok(())
}

/// A Rekor v2 entry's body (rekor-tiles `api/proto/rekor/v2`: `hashedrekord` or `dsse`, API
/// version 0.0.2) must record this envelope: the SHA-256 of its pre-authentication encoding
/// (hashedrekord) or of its payload (dsse), its signature, and this certificate or key.
fn v2_body(
    body: &[u8],
    payload_type: &str,
    payload: &[u8],
    sig: &[u8],
    recorded: &[u8],
) -> Result<(), Reason> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let body: serde_json::Value =
        serde_json::from_slice(body).map_err(|_| "its log entry's body is not JSON")?;
    if body["apiVersion"] != "0.0.2" {
        return Err(format!(
            "its log entry is version {}, neither Rekor v1's promise nor v2's 0.0.2",
            body["apiVersion"]
        )
        .into());
    }
    let bytes = |v: &serde_json::Value| v.as_str().and_then(|s| b64.decode(s).ok());
    let (hash, want, signature) = match body["kind"].as_str() {
        Some("hashedrekord") => {
            let spec = &body["spec"]["hashedRekordV002"];
            let pae = <sha2::Sha256 as sha2::Digest>::digest(pae(payload_type, payload));
            (&spec["data"], pae.to_vec(), &spec["signature"])
        }
        Some("dsse") => {
            let spec = &body["spec"]["dsseV002"];
            let hash = <sha2::Sha256 as sha2::Digest>::digest(payload);
            let first = spec["signatures"]
                .as_array()
                .and_then(|s| s.first())
                .ok_or("its log entry records no signature")?;
            (&spec["payloadHash"], hash.to_vec(), first)
        }
        other => {
            return Err(format!(
                "its log entry is a {}, not a hashedrekord or dsse entry",
                other.unwrap_or("?")
            )
            .into())
        }
    };
    if hash["algorithm"] != "SHA2_256" || bytes(&hash["digest"]).as_deref() != Some(&want[..]) {
        return Err("its log entry records another payload".into());
    }
    if bytes(&signature["content"]).as_deref() != Some(sig) {
        return Err("its log entry records another signature".into());
    }
    let verifier = &signature["verifier"];
    let logged = bytes(&verifier["x509Certificate"]["rawBytes"])
        .or_else(|| bytes(&verifier["publicKey"]["rawBytes"]));
    if logged.as_deref() != Some(recorded) {
        return Err("its log entry records another certificate or key".into());
    }
    Ok(())
}

/// The Rekor `dsse` v0.0.1 body must record this payload's hash, this signature and this
/// certificate (rekor `pkg/types/dsse/v0.0.1`).
fn dsse_body(body_b64: &str, payload: &[u8], sig_b64: &str, recorded: &[u8]) -> Result<(), Reason> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let body: serde_json::Value = b64
        .decode(body_b64)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or("its log entry's body is not base64 JSON")?;
    if body["kind"] != "dsse" {
        return Err(format!("its log entry is a {}, not a dsse entry", body["kind"]).into());
    }
    let spec = &body["spec"];
    if spec["payloadHash"]["algorithm"] != "sha256"
        || spec["payloadHash"]["value"] != Digest::of(payload).hex()
    {
        return Err("its log entry records another payload".into());
    }
    let entry = spec["signatures"]
        .as_array()
        .and_then(|s| s.first())
        .ok_or("its log entry records no signature")?;
    if entry["signature"] != sig_b64 {
        return Err("its log entry records another signature".into());
    }
    let verifier = entry["verifier"]
        .as_str()
        .and_then(|v| b64.decode(v).ok())
        .and_then(|pem| rekor::pem_der(&pem))
        .ok_or("its log entry records no readable certificate or key")?;
    if verifier != recorded {
        return Err("its log entry records another certificate or key".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pae_is_the_dsse_protocols_encoding() {
        // secure-systems-lab/dsse protocol.md's example.
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
        );
    }

    #[test]
    fn a_bundle_without_an_envelope_or_a_log_entry_says_which_step_failed() {
        let root = TrustedRoot::production();
        let any = |_: &str| true;
        let policy = Signer::Keyless {
            identity: &any,
            shown: "anyone".into(),
            issuer: "https://accounts.google.com",
        };
        let subject = Digest::of(b"image");
        let e = verify(b"{}", &subject, &policy, &root).unwrap_err();
        assert!(e.contains("not a Sigstore bundle"), "{e}");
        let message = br#"{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","verificationMaterial":{"tlogEntries":[]},"messageSignature":{}}"#;
        let e = verify(message, &subject, &policy, &root).unwrap_err();
        assert!(e.contains("not a DSSE envelope"), "{e}");
    }
}
