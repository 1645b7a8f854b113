//! A test PKI for signature trials, made with the `openssl` CLI (an independent signer):
//! signer keys, a key standing in for Rekor's, a CT log key, CAs standing in for Fulcio, a
//! timestamp authority, and the `trusted_root.json` naming them ([`authorities`]); cosign 2's
//! signature images ([`cosign`]); Sigstore bundles and OCI referrers ([`bundles`]). The
//! encodings tdg must check (RFC 8785 forms, DSSE's PAE, SCTs, Merkle paths) are written out
//! by hand here, apart from tdg's code.

mod authorities;
mod bundles;
mod cosign;

pub use authorities::{Ca, Leaf, Tsa};
pub use bundles::{github_provenance, referrers_layout, statement, BundleSpoil};
pub use cosign::{By, Spoil};

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{ensure, Context, Result};
use base64::Engine as _;
use serde_json::json;

use tdg::digest::Digest;

pub(crate) const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

pub(crate) fn openssl(args: &[&str], stdin: &[u8]) -> Result<Vec<u8>> {
    let mut child = Command::new("openssl")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("running openssl")?;
    child.stdin.take().context("stdin")?.write_all(stdin)?;
    let out = child.wait_with_output()?;
    ensure!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(out.stdout)
}

/// An ECDSA P-256 key pair on disk.
pub struct Key {
    pub private: PathBuf,
    /// `cosign.pub`-style PEM.
    pub public_pem: PathBuf,
    pub spki: Vec<u8>,
}

impl Key {
    pub fn new(dir: &Path, name: &str) -> Result<Self> {
        Self::new_on(dir, name, "P-256")
    }

    pub fn new_on(dir: &Path, name: &str, curve: &str) -> Result<Self> {
        let private = dir.join(format!("{name}.key"));
        let public_pem = dir.join(format!("{name}.pub"));
        let p = private.to_str().context("utf-8")?;
        openssl(
            &[
                "genpkey",
                "-algorithm",
                "EC",
                "-pkeyopt",
                &format!("ec_paramgen_curve:{curve}"),
                "-out",
                p,
            ],
            b"",
        )?;
        openssl(
            &[
                "pkey",
                "-in",
                p,
                "-pubout",
                "-out",
                public_pem.to_str().context("utf-8")?,
            ],
            b"",
        )?;
        let spki = openssl(&["pkey", "-in", p, "-pubout", "-outform", "DER"], b"")?;
        Ok(Key {
            private,
            public_pem,
            spki,
        })
    }

    /// An ASN.1 DER ECDSA signature over SHA-256 of `data`.
    pub fn sign(&self, data: &[u8]) -> Result<Vec<u8>> {
        openssl(
            &[
                "dgst",
                "-sha256",
                "-sign",
                self.private.to_str().context("utf-8")?,
            ],
            data,
        )
    }

    /// Rekor v1's log ID for this key: SHA-256 of its SPKI.
    pub fn log_id(&self) -> String {
        Digest::of(&self.spki).hex().to_string()
    }
}

/// A Rekor v2 log's Ed25519 key (openssl), named as signed notes name keys.
pub struct Ed25519Log {
    pub private: PathBuf,
    pub spki: Vec<u8>,
    /// The checkpoint origin and key name.
    pub name: String,
}

impl Ed25519Log {
    fn new(dir: &Path, name: &str) -> Result<Self> {
        let private = dir.join("rekor-v2.key");
        let p = private.to_str().context("utf-8")?;
        openssl(&["genpkey", "-algorithm", "ed25519", "-out", p], b"")?;
        let spki = openssl(&["pkey", "-in", p, "-pubout", "-outform", "DER"], b"")?;
        Ok(Ed25519Log {
            private,
            spki,
            name: name.to_string(),
        })
    }

    /// The c2sp.org signed-note key ID, which Rekor v2 uses as its log ID: SHA-256 of the
    /// name, a newline, 0x01 (Ed25519) and the raw key.
    pub fn log_id(&self) -> Vec<u8> {
        sha(&[
            self.name.as_bytes(),
            b"\n\x01",
            &self.spki[self.spki.len() - 32..],
        ])
    }

    /// A pure Ed25519 signature over `data` (`openssl pkeyutl -rawin`, which signs a file:
    /// one-shot Ed25519 needs its size).
    pub fn sign(&self, data: &[u8]) -> Result<Vec<u8>> {
        let input = tempfile::NamedTempFile::new()?;
        std::fs::write(input.path(), data)?;
        openssl(
            &[
                "pkeyutl",
                "-sign",
                "-rawin",
                "-inkey",
                self.private.to_str().context("utf-8")?,
                "-in",
                input.path().to_str().context("utf-8")?,
            ],
            b"",
        )
    }
}

pub struct Pki {
    pub signer: Key,
    pub stranger: Key,
    pub rekor: Key,
    /// A log key the trusted root does not name.
    pub rogue_log: Key,
    /// A CT log the trusted root names.
    pub ct: Key,
    pub trusted_root: PathBuf,
    /// A root and intermediate standing in for Fulcio, named by the trusted root.
    pub fulcio: Ca,
    /// A CA the trusted root does not name.
    pub rogue_ca: Ca,
    /// A timestamp authority the trusted root names, and one it does not.
    pub tsa: Tsa,
    pub rogue_tsa: Tsa,
    /// A Rekor v2 log (Ed25519, checkpoints only), named by the trusted root.
    pub rekor_v2: Ed25519Log,
}

pub(crate) fn der_of(pem: &Path) -> Result<Vec<u8>> {
    openssl(
        &[
            "x509",
            "-in",
            pem.to_str().context("utf-8")?,
            "-outform",
            "DER",
        ],
        b"",
    )
}

impl Pki {
    pub fn new(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir)?;
        let rekor = Key::new(dir, "rekor")?;
        let fulcio = Ca::new(dir, "fulcio")?;
        let tsa = Tsa::new(dir, "tsa")?;
        let ct = Key::new(dir, "ct")?;
        let rekor_v2 = Ed25519Log::new(dir, "rekor-v2.tdg.test")?;
        let trusted_root = dir.join("trusted_root.json");
        std::fs::write(
            &trusted_root,
            serde_json::to_vec_pretty(&json!({
                "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
                "tlogs": [{
                    "baseUrl": "https://rekor.tdg.test",
                    "hashAlgorithm": "SHA2_256",
                    "publicKey": {
                        "rawBytes": B64.encode(&rekor.spki),
                        "keyDetails": "PKIX_ECDSA_P256_SHA_256",
                        "validFor": {"start": "2020-01-01T00:00:00Z"}
                    },
                    "logId": {"keyId": B64.encode(hex::decode(rekor.log_id())?)}
                }, {
                    "baseUrl": "https://rekor-v2.tdg.test",
                    "hashAlgorithm": "SHA2_256",
                    "publicKey": {
                        "rawBytes": B64.encode(&rekor_v2.spki),
                        "keyDetails": "PKIX_ED25519",
                        "validFor": {"start": "2020-01-01T00:00:00Z"}
                    },
                    "logId": {"keyId": B64.encode(rekor_v2.log_id())}
                }],
                "certificateAuthorities": [{
                    "subject": {"organization": "tdg.test", "commonName": "fulcio-root"},
                    "uri": "https://fulcio.tdg.test",
                    "certChain": {"certificates": [
                        {"rawBytes": B64.encode(der_of(&fulcio.intermediate_pem)?)},
                        {"rawBytes": B64.encode(der_of(&fulcio.root_pem)?)}
                    ]},
                    "validFor": {"start": "2020-01-01T00:00:00Z"}
                }],
                "ctlogs": [{
                    "baseUrl": "https://ctfe.tdg.test",
                    "hashAlgorithm": "SHA2_256",
                    "publicKey": {
                        "rawBytes": B64.encode(&ct.spki),
                        "keyDetails": "PKIX_ECDSA_P256_SHA_256",
                        "validFor": {"start": "2020-01-01T00:00:00Z"}
                    },
                    "logId": {"keyId": B64.encode(hex::decode(ct.log_id())?)}
                }],
                "timestampAuthorities": [{
                    "subject": {"organization": "tdg.test", "commonName": "tsa"},
                    "uri": "https://tsa.tdg.test",
                    "certChain": {"certificates": tsa.chain_der()?.iter().map(|d| json!({"rawBytes": B64.encode(d)})).collect::<Vec<_>>()},
                    "validFor": {"start": "2020-01-01T00:00:00Z"}
                }]
            }))?,
        )?;
        let rogue_ca = Ca::new(dir, "rogue-ca")?;
        let rogue_tsa = Tsa::new(dir, "rogue-tsa")?;
        Ok(Pki {
            ct,
            tsa,
            rogue_tsa,
            fulcio,
            rogue_ca,
            signer: Key::new(dir, "signer")?,
            stranger: Key::new(dir, "stranger")?,
            rogue_log: Key::new(dir, "rogue-log")?,
            rekor,
            rekor_v2,
            trusted_root,
        })
    }
}

pub(crate) fn sha(parts: &[&[u8]]) -> Vec<u8> {
    use sha2::Digest as _;
    let mut h = sha2::Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().to_vec()
}
