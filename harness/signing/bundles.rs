//! Sigstore bundles (DSSE, in-toto) as cosign 3 and `attest-build-provenance` write them,
//! their Rekor entries with inclusion proofs and checkpoints, and OCI 1.1 referrers.

use std::path::Path;

use anyhow::{Context, Result};
use base64::Engine as _;
use serde_json::json;

use tdg::digest::Digest;
use tdg::oci::layout::LayoutWriter;
use tdg::oci::manifest;

use super::{der_of, sha, By, Pki, B64};

pub const BUNDLE_V03: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";

/// How to spoil a bundle.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum BundleSpoil {
    None,
    /// The statement is about another digest.
    OtherSubject,
    /// The envelope's payload changed after signing (the log entry's payload hash no longer
    /// matches it).
    TamperedPayload,
    /// The envelope's signature is over other bytes; the log entry records it faithfully.
    BadSignature,
    /// No log entry: only an RFC 3161 timestamp from the trusted TSA says when.
    TimestampOnly,
    /// No log entry, and the timestamp is from a TSA the trusted root does not name.
    UntrustedTimestamp,
    /// No log entry, and the timestamp is over other bytes than the signature.
    TimestampOfOtherBytes,
    /// The log entry's inclusion proof has a wrong hash on its path.
    BadInclusionProof,
    /// The checkpoint is signed by another key than the log's.
    ForeignCheckpoint,
    /// No log entry; the timestamp is the bare token, not the TimeStampResp the bundle format
    /// holds.
    BareToken,
    /// No log entry; the timestamp response says "rejection" (status 2) and holds no token.
    RefusedTimestamp,
    /// A v0.3 bundle whose log entry has its promise (SET) but no inclusion proof.
    NoInclusionProof,
    /// Logged in a Rekor v2 log (a hashedrekord 0.0.2 entry: no promise, an inclusion proof
    /// and an Ed25519 checkpoint), timed by the TSA.
    RekorV2,
    /// Rekor v2, and no timestamp: nothing says when.
    RekorV2Untimed,
    /// Rekor v2, its entry recording another signature than the envelope's.
    RekorV2OtherSignature,
}

impl BundleSpoil {
    fn rekor_v2(self) -> bool {
        matches!(
            self,
            BundleSpoil::RekorV2 | BundleSpoil::RekorV2Untimed | BundleSpoil::RekorV2OtherSignature
        )
    }
}

/// RFC 9162's Merkle tree hash of leaf hashes, by its recursive definition.
fn tree_hash(leaves: &[Vec<u8>]) -> Vec<u8> {
    if leaves.len() == 1 {
        return leaves[0].clone();
    }
    let k = leaves.len().next_power_of_two() / 2;
    sha(&[&[1], &tree_hash(&leaves[..k]), &tree_hash(&leaves[k..])])
}

/// RFC 9162's audit path PATH(m, D[n]).
fn audit_path(m: usize, leaves: &[Vec<u8>]) -> Vec<Vec<u8>> {
    if leaves.len() == 1 {
        return Vec::new();
    }
    let k = leaves.len().next_power_of_two() / 2;
    let (mut p, sibling) = if m < k {
        (audit_path(m, &leaves[..k]), tree_hash(&leaves[k..]))
    } else {
        (audit_path(m - k, &leaves[k..]), tree_hash(&leaves[..k]))
    };
    p.push(sibling);
    p
}

impl Pki {
    /// A Sigstore bundle v0.3, as cosign 3 and `attest-build-provenance` write them: a DSSE
    /// envelope of `statement` signed by `leaf`, with a Rekor `dsse` entry and its SET.
    pub fn bundle(
        &self,
        by: &By<'_>,
        statement: &serde_json::Value,
        logged_at: i64,
        spoil: BundleSpoil,
    ) -> Result<Vec<u8>> {
        let payload_type = "application/vnd.in-toto+json";
        let payload = serde_json::to_vec(statement)?;
        // DSSE's pre-authentication encoding, written out here from the protocol's text.
        let mut pae = format!(
            "DSSEv1 {} {payload_type} {} ",
            payload_type.len(),
            payload.len()
        )
        .into_bytes();
        pae.extend_from_slice(&payload);
        let (key, cert_pem) = match by {
            By::Key(k) => (*k, std::fs::read(&k.public_pem)?),
            By::Cert(leaf, _) => (&leaf.key, std::fs::read(&leaf.pem)?),
        };
        let sig_b64 = B64.encode(match spoil {
            BundleSpoil::BadSignature => key.sign(b"other bytes")?,
            _ => key.sign(&pae)?,
        });
        let v1_body = serde_json::to_vec(&json!({
            "apiVersion": "0.0.1",
            "kind": "dsse",
            "spec": {
                "payloadHash": {"algorithm": "sha256", "value": Digest::of(&payload).hex()},
                "signatures": [{"signature": sig_b64, "verifier": B64.encode(&cert_pem)}]
            }
        }))?;
        // Rekor v2's hashedrekord 0.0.2: the PAE's digest, the signature and its verifier
        // (rekor-tiles `api/proto/rekor/v2/hashedrekord.proto`).
        let v2_body = || -> Result<Vec<u8>> {
            let verifier = match by {
                By::Key(k) => {
                    json!({"publicKey": {"rawBytes": B64.encode(&k.spki)}, "keyDetails": "PKIX_ECDSA_P256_SHA_256"})
                }
                By::Cert(leaf, _) => {
                    json!({"x509Certificate": {"rawBytes": B64.encode(der_of(&leaf.pem)?)}, "keyDetails": "PKIX_ECDSA_P256_SHA_256"})
                }
            };
            let content = match spoil {
                BundleSpoil::RekorV2OtherSignature => B64.encode(key.sign(b"another")?),
                _ => sig_b64.clone(),
            };
            Ok(serde_json::to_vec(&json!({
                "apiVersion": "0.0.2",
                "kind": "hashedrekord",
                "spec": {"hashedRekordV002": {
                    "data": {"algorithm": "SHA2_256", "digest": B64.encode(sha(&[&pae]))},
                    "signature": {"content": content, "verifier": verifier}
                }}
            }))?)
        };
        let body = if spoil.rekor_v2() {
            v2_body()?
        } else {
            v1_body
        };
        let body_b64 = B64.encode(&body);
        let index = 7i64;
        let canonical = format!(
            "{{\"body\":\"{body_b64}\",\"integratedTime\":{logged_at},\"logID\":\"{}\",\"logIndex\":{index}}}",
            self.rekor.log_id()
        );
        let set = self.rekor.sign(canonical.as_bytes())?;
        let payload = match spoil {
            BundleSpoil::TamperedPayload => {
                let mut p = payload.clone();
                p.push(b' ');
                p
            }
            _ => payload,
        };

        let sig_bytes = B64.decode(&sig_b64)?;
        let (tlog, stamp) = match spoil {
            BundleSpoil::TimestampOnly => (false, Some(self.tsa.stamp(&sig_bytes)?)),
            BundleSpoil::UntrustedTimestamp => (false, Some(self.rogue_tsa.stamp(&sig_bytes)?)),
            BundleSpoil::TimestampOfOtherBytes => (false, Some(self.tsa.stamp(b"other bytes")?)),
            BundleSpoil::BareToken => (false, Some(self.tsa.stamp_token(&sig_bytes)?)),
            // TimeStampResp { status PKIStatusInfo { status 2 } }, DER.
            BundleSpoil::RefusedTimestamp => (false, Some(vec![0x30, 5, 0x30, 3, 2, 1, 2])),
            BundleSpoil::RekorV2 | BundleSpoil::RekorV2OtherSignature => {
                (true, Some(self.tsa.stamp(&sig_bytes)?))
            }
            _ => (true, None),
        };
        // The entry as leaf 3 of a five-entry log, its audit path and a checkpoint of that tree.
        let (at, size) = (3usize, 5usize);
        let leaves: Vec<Vec<u8>> = (0..size)
            .map(|i| {
                if i == at {
                    sha(&[&[0], &body])
                } else {
                    sha(&[&[0], format!("entry {i}").as_bytes()])
                }
            })
            .collect();
        let root_hash = tree_hash(&leaves);
        let mut path = audit_path(at, &leaves);
        if spoil == BundleSpoil::BadInclusionProof {
            path[0][0] ^= 1;
        }
        let (checkpoint, log_id) = if spoil.rekor_v2() {
            // A signed note by the v2 log's Ed25519 key, named as its origin.
            let log = &self.rekor_v2;
            let note = format!("{}\n{size}\n{}\n", log.name, B64.encode(&root_hash));
            let mut note_sig = log.log_id()[..4].to_vec();
            note_sig.extend(log.sign(note.as_bytes())?);
            let line = format!("\u{2014} {} {}", log.name, B64.encode(note_sig));
            (format!("{note}\n{line}\n"), log.log_id())
        } else {
            let note = format!(
                "rekor.tdg.test - 1234\n{size}\n{}\n",
                B64.encode(&root_hash)
            );
            let signer = if spoil == BundleSpoil::ForeignCheckpoint {
                &self.rogue_log
            } else {
                &self.rekor
            };
            let mut note_sig = hex::decode(self.rekor.log_id())?[..4].to_vec();
            note_sig.extend(signer.sign(note.as_bytes())?);
            let line = format!("\u{2014} rekor.tdg.test {}", B64.encode(note_sig));
            (
                format!("{note}\n{line}\n"),
                hex::decode(self.rekor.log_id())?,
            )
        };
        let mut entries = if tlog {
            json!([{
                "logIndex": index.to_string(),
                "logId": {"keyId": B64.encode(hex::decode(self.rekor.log_id())?)},
                "kindVersion": {"kind": "dsse", "version": "0.0.1"},
                "integratedTime": logged_at.to_string(),
                "inclusionPromise": {"signedEntryTimestamp": B64.encode(set)},
                "inclusionProof": {
                    "logIndex": at.to_string(),
                    "rootHash": B64.encode(&root_hash),
                    "treeSize": size.to_string(),
                    "hashes": path.iter().map(|h| B64.encode(h)).collect::<Vec<_>>(),
                    "checkpoint": {"envelope": checkpoint}
                },
                "canonicalizedBody": body_b64
            }])
        } else {
            json!([])
        };
        if spoil.rekor_v2() {
            // Rekor v2: no promise, no integrated time; its own kind version and log ID.
            let e = entries[0].as_object_mut().context("entry")?;
            e.remove("inclusionPromise");
            e.remove("integratedTime");
            e.insert(
                "kindVersion".into(),
                json!({"kind": "hashedrekord", "version": "0.0.2"}),
            );
            e.insert("logId".into(), json!({"keyId": B64.encode(&log_id)}));
        }
        if spoil == BundleSpoil::NoInclusionProof {
            entries[0]
                .as_object_mut()
                .context("entry")?
                .remove("inclusionProof");
        }
        let mut material = match by {
            By::Key(_) => json!({"publicKey": {"hint": ""}, "tlogEntries": entries}),
            By::Cert(leaf, _) => json!({
                "certificate": {"rawBytes": B64.encode(der_of(&leaf.pem)?)},
                "tlogEntries": entries
            }),
        };
        if let Some(token) = stamp {
            material["timestampVerificationData"] =
                json!({"rfc3161Timestamps": [{"signedTimestamp": B64.encode(token)}]});
        }
        Ok(serde_json::to_vec(&json!({
            "mediaType": BUNDLE_V03,
            "verificationMaterial": material,
            "dsseEnvelope": {
                "payload": B64.encode(&payload),
                "payloadType": payload_type,
                "signatures": [{"sig": sig_b64, "keyid": ""}]
            }
        }))?)
    }
}

/// An in-toto v1 statement about `subject`.
pub fn statement(
    subject: &Digest,
    name: &str,
    predicate_type: &str,
    predicate: serde_json::Value,
) -> serde_json::Value {
    json!({
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": name, "digest": {"sha256": subject.hex()}}],
        "predicateType": predicate_type,
        "predicate": predicate
    })
}

/// GitHub's SLSA provenance v1 predicate for a workflow run (build type
/// `https://actions.github.io/buildtypes/workflow/v1`), with the facts `expect.provenance` reads.
pub fn github_provenance(
    repository: &str,
    git_ref: &str,
    commit: &str,
    path: &str,
) -> serde_json::Value {
    json!({
        "buildDefinition": {
            "buildType": "https://actions.github.io/buildtypes/workflow/v1",
            "externalParameters": {"workflow": {"ref": git_ref, "repository": repository, "path": path}},
            "internalParameters": {"github": {"event_name": "push"}},
            "resolvedDependencies": [{"uri": format!("git+{repository}@{git_ref}"), "digest": {"gitCommit": commit}}]
        },
        "runDetails": {
            "builder": {"id": "https://github.com/actions/runner/github-hosted"},
            "metadata": {"invocationId": format!("{repository}/actions/runs/1/attempts/1")}
        }
    })
}

/// Writes `bundles` as OCI 1.1 referrers of `subject` into `layout`: one artifact manifest
/// each (`artifactType` the bundle's, an empty config, the bundle as its layer, `subject` set),
/// listed by the referrers tag schema's index under `sha256-<hex>` when `tag_index`.
pub fn referrers_layout(
    layout: &Path,
    subject: &Digest,
    subject_size: u64,
    bundles: &[Vec<u8>],
    tag_index: bool,
) -> Result<String> {
    let mut out = LayoutWriter::create(layout)?;
    let (ed, es) = out.write_blob(b"{}")?;
    let mut entries = Vec::new();
    for b in bundles {
        let (bd, bs) = out.write_blob(b)?;
        let m = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": manifest::OCI_MANIFEST,
            "artifactType": BUNDLE_V03,
            "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": ed.to_string(), "size": es},
            "layers": [{"mediaType": BUNDLE_V03, "digest": bd.to_string(), "size": bs}],
            "subject": {"mediaType": manifest::OCI_MANIFEST, "digest": subject.to_string(), "size": subject_size}
        }))?;
        let d = out.add_manifest(manifest::OCI_MANIFEST, &m, None)?;
        entries.push(json!({"mediaType": manifest::OCI_MANIFEST, "digest": d.digest.to_string(), "size": d.size, "artifactType": BUNDLE_V03}));
    }
    let tag = format!("sha256-{}", subject.hex());
    if tag_index {
        let index = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": manifest::OCI_INDEX,
            "manifests": entries
        }))?;
        out.add_manifest(manifest::OCI_INDEX, &index, Some(&tag))?;
    }
    Ok(tag)
}
