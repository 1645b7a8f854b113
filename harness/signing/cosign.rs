//! cosign 2's signature images (`sha256-<hex>.sig`), built as cosign writes them.

use std::path::Path;

use anyhow::Result;
use base64::Engine as _;
use serde_json::json;

use tdg::digest::Digest;
use tdg::oci::layout::LayoutWriter;
use tdg::oci::manifest;

use super::{Ca, Key, Leaf, Pki, B64};

/// Who signs a signature image.
pub enum By<'a> {
    Key(&'a Key),
    Cert(&'a Leaf, &'a Ca),
}

/// How to spoil a signature, for the negative cases.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Spoil {
    None,
    /// Signs another digest (a sound signature of the wrong image).
    OtherDigest,
    /// The payload changed after signing.
    TamperedPayload,
    /// No Rekor bundle annotation.
    NoLogEntry,
    /// The SET signed by a log the trusted root does not name.
    UntrustedLog,
    /// The SET's signature over other bytes.
    BadSet,
    /// The signature is over other bytes; the log entry records it faithfully.
    BadSignature,
}

impl Pki {
    /// Writes the signature image of `subject` (signed by `self.signer`, spoilt as asked) into
    /// `layout` under the tag cosign uses.
    pub fn signature_layout(
        &self,
        layout: &Path,
        reference: &str,
        subject: &Digest,
        spoil: Spoil,
        by: &By<'_>,
        logged_at: i64,
    ) -> Result<String> {
        let (signer, recorded_pem, cert_annotations) = match by {
            By::Key(k) => (*k, std::fs::read(&k.public_pem)?, None),
            By::Cert(leaf, ca) => {
                let chain = [
                    std::fs::read_to_string(&ca.intermediate_pem)?,
                    std::fs::read_to_string(&ca.root_pem)?,
                ]
                .concat();
                let cert = std::fs::read_to_string(&leaf.pem)?;
                (&leaf.key, cert.clone().into_bytes(), Some((cert, chain)))
            }
        };
        let signed_digest = match spoil {
            Spoil::OtherDigest => Digest::of(b"another image"),
            _ => subject.clone(),
        };
        let payload = serde_json::to_vec(&json!({
            "critical": {
                "identity": {"docker-reference": reference},
                "image": {"docker-manifest-digest": signed_digest.to_string()},
                "type": "cosign container image signature"
            },
            "optional": null
        }))?;
        let signed = match spoil {
            Spoil::BadSignature => signer.sign(b"something else")?,
            _ => signer.sign(&payload)?,
        };
        let sig_b64 = B64.encode(signed);
        let body = serde_json::to_vec(&json!({
            "apiVersion": "0.0.1",
            "kind": "hashedrekord",
            "spec": {
                "data": {"hash": {"algorithm": "sha256", "value": Digest::of(&payload).hex()}},
                "signature": {
                    "content": sig_b64,
                    "publicKey": {"content": B64.encode(&recorded_pem)}
                }
            }
        }))?;
        let log = if spoil == Spoil::UntrustedLog {
            &self.rogue_log
        } else {
            &self.rekor
        };
        let (body_b64, time, index) = (B64.encode(&body), logged_at, 4242i64);
        // RFC 8785: keys in order, no whitespace; every value an integer or a plain string.
        let canonical = format!(
            "{{\"body\":\"{body_b64}\",\"integratedTime\":{time},\"logID\":\"{}\",\"logIndex\":{index}}}",
            log.log_id()
        );
        let set = match spoil {
            Spoil::BadSet => log.sign(b"not the entry")?,
            _ => log.sign(canonical.as_bytes())?,
        };
        let bundle = json!({
            "SignedEntryTimestamp": B64.encode(set),
            "Payload": {"body": body_b64, "integratedTime": time, "logIndex": index, "logID": log.log_id()}
        });
        let payload = match spoil {
            Spoil::TamperedPayload => String::from_utf8(payload)?
                .replace("\"optional\":null", "\"optional\":{\"x\":1}")
                .into_bytes(),
            _ => payload,
        };
        let mut annotations = json!({"dev.cosignproject.cosign/signature": sig_b64});
        if spoil != Spoil::NoLogEntry {
            annotations["dev.sigstore.cosign/bundle"] = json!(bundle.to_string());
        }
        if let Some((cert, chain)) = cert_annotations {
            annotations["dev.sigstore.cosign/certificate"] = json!(cert);
            annotations["dev.sigstore.cosign/chain"] = json!(chain);
        }
        let mut out = LayoutWriter::create(layout)?;
        let (pd, ps) = out.write_blob(&payload)?;
        let config = serde_json::to_vec(&json!({
            "architecture": "", "os": "", "config": {},
            "rootfs": {"type": "layers", "diff_ids": [pd.to_string()]}
        }))?;
        let (cd, cs) = out.write_blob(&config)?;
        let m = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": manifest::OCI_MANIFEST,
            "config": {"mediaType": manifest::OCI_CONFIG, "digest": cd.to_string(), "size": cs},
            "layers": [{
                "mediaType": "application/vnd.dev.cosign.simplesigning.v1+json",
                "digest": pd.to_string(), "size": ps, "annotations": annotations
            }]
        }))?;
        let tag = format!("sha256-{}.sig", subject.hex());
        out.add_manifest(manifest::OCI_MANIFEST, &m, Some(&tag))?;
        Ok(tag)
    }
}
