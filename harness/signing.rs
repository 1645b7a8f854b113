//! A test PKI for signature trials, made with the `openssl` CLI (an independent signer): a
//! signer's ECDSA P-256 key, a key standing in for Rekor's, the `trusted_root.json` naming
//! that log, and cosign-style signature images (`sha256-<hex>.sig`) built as cosign writes
//! them (simple-signing payload, `dev.cosignproject.cosign/signature`, and a Rekor v1 bundle
//! whose SET is signed over the RFC 8785 form of its payload, written out by hand here).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{ensure, Context, Result};
use base64::Engine as _;
use serde_json::json;

use tdg::digest::Digest;
use tdg::oci::layout::LayoutWriter;
use tdg::oci::manifest;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

fn openssl(args: &[&str], stdin: &[u8]) -> Result<Vec<u8>> {
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
}

/// A root (P-384, self-signed) and an intermediate (P-384) CA, as Fulcio's chain is.
pub struct Ca {
    pub root: Key,
    pub root_pem: PathBuf,
    pub intermediate: Key,
    pub intermediate_pem: PathBuf,
}

fn der_of(pem: &Path) -> Result<Vec<u8>> {
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

impl Ca {
    fn new(dir: &Path, name: &str) -> Result<Self> {
        let root = Key::new_on(dir, &format!("{name}-root"), "P-384")?;
        let intermediate = Key::new_on(dir, &format!("{name}-intermediate"), "P-384")?;
        let root_pem = dir.join(format!("{name}-root.pem"));
        openssl(
            &[
                "req",
                "-x509",
                "-new",
                "-sha384",
                "-days",
                "3650",
                "-key",
                root.private.to_str().context("utf-8")?,
                "-subj",
                &format!("/O=tdg.test/CN={name}-root"),
                "-addext",
                "basicConstraints=critical,CA:true",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
                "-out",
                root_pem.to_str().context("utf-8")?,
            ],
            b"",
        )?;
        let intermediate_pem = dir.join(format!("{name}-intermediate.pem"));
        let ext = dir.join(format!("{name}-intermediate.cnf"));
        std::fs::write(
            &ext,
            "basicConstraints=critical,CA:true,pathlen:0\nkeyUsage=critical,keyCertSign\nextendedKeyUsage=codeSigning\n",
        )?;
        let ca = Ca {
            root,
            root_pem,
            intermediate,
            intermediate_pem,
        };
        ca.issue(
            &ca.intermediate,
            &format!("/O=tdg.test/CN={name}-intermediate"),
            &ext,
            &ca.root_pem,
            &ca.root,
            3650,
            &ca.intermediate_pem,
        )?;
        Ok(ca)
    }

    /// A certificate for `key`, signed by `(issuer_pem, issuer_key)`, with the extensions of
    /// the file `ext`, valid from now for `days`.
    #[allow(clippy::too_many_arguments)]
    fn issue(
        &self,
        key: &Key,
        subject: &str,
        ext: &Path,
        issuer_pem: &Path,
        issuer_key: &Key,
        days: u32,
        out: &Path,
    ) -> Result<()> {
        let csr = openssl(
            &[
                "req",
                "-new",
                "-key",
                key.private.to_str().context("utf-8")?,
                "-subj",
                subject,
            ],
            b"",
        )?;
        openssl(
            &[
                "x509",
                "-req",
                "-sha384",
                "-days",
                &days.to_string(),
                "-CA",
                issuer_pem.to_str().context("utf-8")?,
                "-CAkey",
                issuer_key.private.to_str().context("utf-8")?,
                "-set_serial",
                &format!(
                    "{}",
                    std::process::id() as u64 * 1000 + days as u64 + subject.len() as u64
                ),
                "-extfile",
                ext.to_str().context("utf-8")?,
                "-out",
                out.to_str().context("utf-8")?,
            ],
            &csr,
        )?;
        Ok(())
    }

    /// A Fulcio-style leaf for an ephemeral P-256 key: code signing, the SAN `identity`
    /// (an email, or a URI when it has a scheme), the issuer in both Fulcio extensions, and,
    /// with `ct` (the log an SCT names, the key that signs it), an embedded SCT. Issued twice through `openssl ca` with the
    /// same serial and dates: the first certificate's TBS is the precertificate the SCT signs,
    /// the second is that TBS with the SCT list appended (RFC 6962 §3.1).
    pub fn leaf(
        &self,
        dir: &Path,
        name: &str,
        identity: &str,
        issuer: &str,
        ct: Option<(&Key, &Key)>,
    ) -> Result<Leaf> {
        let key = Key::new(dir, &format!("{name}-ephemeral"))?;
        let csr = dir.join(format!("{name}.csr"));
        openssl(
            &[
                "req",
                "-new",
                "-key",
                key.private.to_str().context("utf-8")?,
                "-subj",
                "/O=tdg.test",
                "-out",
                csr.to_str().context("utf-8")?,
            ],
            b"",
        )?;
        let san = if identity.contains("://") {
            format!("URI:{identity}")
        } else {
            format!("email:{identity}")
        };
        let base = format!(
            "basicConstraints=critical,CA:false\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=codeSigning\nsubjectAltName=critical,{san}\n1.3.6.1.4.1.57264.1.1=DER:{}\n1.3.6.1.4.1.57264.1.8=ASN1:UTF8String:{issuer}\n",
            hex::encode(issuer)
        );
        // Valid from an hour ago for a day, fixed for both passes.
        let stamp = |t: std::time::SystemTime| {
            humantime::format_rfc3339_seconds(t)
                .to_string()
                .replace(['-', ':', 'T'], "")
        };
        let now = std::time::SystemTime::now();
        let (start, end) = (
            stamp(now - std::time::Duration::from_secs(3600)),
            stamp(now + std::time::Duration::from_secs(86400)),
        );
        let pem = dir.join(format!("{name}-leaf.pem"));
        let issue = |ext: &str| -> Result<()> {
            let db = dir.join(format!("{name}-ca"));
            let _ = std::fs::remove_dir_all(&db);
            std::fs::create_dir_all(db.join("new"))?;
            std::fs::write(db.join("index.txt"), "")?;
            std::fs::write(db.join("serial"), "1000\n")?;
            let cnf = db.join("ca.cnf");
            std::fs::write(
                &cnf,
                format!(
                    "[ ca ]\ndefault_ca = tdg\n[ tdg ]\ndatabase = {0}/index.txt\nnew_certs_dir = {0}/new\nserial = {0}/serial\ndefault_md = sha384\npolicy = anything\nunique_subject = no\ncopy_extensions = none\n[ anything ]\norganizationName = optional\n",
                    db.display()
                ),
            )?;
            let extfile = db.join("ext.cnf");
            std::fs::write(&extfile, ext)?;
            openssl(
                &[
                    "ca",
                    "-batch",
                    "-notext",
                    "-config",
                    cnf.to_str().context("utf-8")?,
                    "-cert",
                    self.intermediate_pem.to_str().context("utf-8")?,
                    "-keyfile",
                    self.intermediate.private.to_str().context("utf-8")?,
                    "-in",
                    csr.to_str().context("utf-8")?,
                    "-out",
                    pem.to_str().context("utf-8")?,
                    "-startdate",
                    &start,
                    "-enddate",
                    &end,
                    "-extfile",
                    extfile.to_str().context("utf-8")?,
                ],
                b"",
            )?;
            Ok(())
        };
        issue(&base)?;
        if let Some((log, signer)) = ct {
            let tbs = tbs_of(&der_of(&pem)?)?;
            let millis = now.duration_since(std::time::UNIX_EPOCH)?.as_millis() as u64;
            let issuer_key_hash = sha(&[&self.intermediate.spki]);
            // RFC 6962 §3.2's digitally-signed struct for a precert_entry, written out by hand.
            let mut signed = vec![0u8, 0];
            signed.extend(millis.to_be_bytes());
            signed.extend([0u8, 1]);
            signed.extend(&issuer_key_hash);
            signed.extend(&(tbs.len() as u32).to_be_bytes()[1..]);
            signed.extend(&tbs);
            signed.extend([0u8, 0]);
            let sig = signer.sign(&signed)?;
            let mut sct = vec![0u8];
            sct.extend(hex::decode(log.log_id())?);
            sct.extend(millis.to_be_bytes());
            sct.extend([0u8, 0, 4, 3]);
            sct.extend((sig.len() as u16).to_be_bytes());
            sct.extend(&sig);
            let mut entry = (sct.len() as u16).to_be_bytes().to_vec();
            entry.extend(&sct);
            let mut list = (entry.len() as u16).to_be_bytes().to_vec();
            list.extend(&entry);
            let mut octets = vec![0x04u8];
            octets.extend(der_len(list.len()));
            octets.extend(&list);
            issue(&format!(
                "{base}1.3.6.1.4.1.11129.2.4.2=DER:{}\n",
                hex::encode(octets)
            ))?;
        }
        Ok(Leaf { key, pem })
    }
}

/// A DER length.
fn der_len(n: usize) -> Vec<u8> {
    match n {
        0..=127 => vec![n as u8],
        128..=255 => vec![0x81, n as u8],
        _ => vec![0x82, (n >> 8) as u8, n as u8],
    }
}

/// The TBSCertificate of a DER certificate: the first element of its outer SEQUENCE.
fn tbs_of(cert: &[u8]) -> Result<Vec<u8>> {
    let header = |at: usize| -> Result<(usize, usize)> {
        ensure!(cert.get(at) == Some(&0x30), "not a SEQUENCE at {at}");
        let first = *cert.get(at + 1).context("cut short")? as usize;
        Ok(match first {
            0x81 => (3, cert[at + 2] as usize),
            0x82 => (4, (cert[at + 2] as usize) << 8 | cert[at + 3] as usize),
            n if n < 0x80 => (2, n),
            _ => anyhow::bail!("a length tdg's fixtures never write"),
        })
    };
    let (outer, _) = header(0)?;
    let (h, len) = header(outer)?;
    Ok(cert[outer..outer + h + len].to_vec())
}

/// A timestamp authority: a leaf for time stamping under its own CA, and the `openssl ts`
/// configuration that answers requests with it.
pub struct Tsa {
    pub ca: Ca,
    pub leaf_pem: PathBuf,
    config: PathBuf,
    dir: PathBuf,
}

impl Tsa {
    fn new(dir: &Path, name: &str) -> Result<Self> {
        let ca = Ca::new(dir, name)?;
        let key = Key::new(dir, &format!("{name}-leaf"))?;
        let ext = dir.join(format!("{name}-leaf.cnf"));
        std::fs::write(
            &ext,
            "basicConstraints=critical,CA:false\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=critical,timeStamping\n",
        )?;
        let leaf_pem = dir.join(format!("{name}-leaf.pem"));
        ca.issue(
            &key,
            &format!("/O=tdg.test/CN={name}"),
            &ext,
            &ca.intermediate_pem,
            &ca.intermediate,
            3650,
            &leaf_pem,
        )?;
        let chain = dir.join(format!("{name}-chain.pem"));
        std::fs::write(
            &chain,
            [
                std::fs::read_to_string(&ca.intermediate_pem)?,
                std::fs::read_to_string(&ca.root_pem)?,
            ]
            .concat(),
        )?;
        let serial = dir.join(format!("{name}-serial"));
        std::fs::write(&serial, "01\n")?;
        let config = dir.join(format!("{name}-tsa.cnf"));
        std::fs::write(
            &config,
            format!(
                "[ tsa ]\ndefault_tsa = tsa_config\n[ tsa_config ]\nserial = {}\ncrypto_device = builtin\nsigner_cert = {}\ncerts = {}\nsigner_key = {}\nsigner_digest = sha256\ndefault_policy = 1.2.3.4.1\ndigests = sha256\naccuracy = secs:1\nordering = yes\ntsa_name = no\ness_cert_id_chain = no\ness_cert_id_alg = sha256\n",
                serial.display(),
                leaf_pem.display(),
                chain.display(),
                key.private.display()
            ),
        )?;
        Ok(Tsa {
            ca,
            leaf_pem,
            config,
            dir: dir.to_path_buf(),
        })
    }

    /// An RFC 3161 time-stamp token (DER) over `data`, made by `openssl ts -reply`.
    pub fn stamp(&self, data: &[u8]) -> Result<Vec<u8>> {
        let query = self.dir.join("query.tsq");
        let token = self.dir.join("token.der");
        openssl(
            &[
                "ts",
                "-query",
                "-digest",
                Digest::of(data).hex(),
                "-sha256",
                "-cert",
                "-out",
                query.to_str().context("utf-8")?,
            ],
            b"",
        )?;
        openssl(
            &[
                "ts",
                "-reply",
                "-config",
                self.config.to_str().context("utf-8")?,
                "-queryfile",
                query.to_str().context("utf-8")?,
                "-token_out",
                "-out",
                token.to_str().context("utf-8")?,
            ],
            b"",
        )?;
        Ok(std::fs::read(&token)?)
    }

    fn chain_der(&self) -> Result<Vec<Vec<u8>>> {
        Ok(vec![
            der_of(&self.leaf_pem)?,
            der_of(&self.ca.intermediate_pem)?,
            der_of(&self.ca.root_pem)?,
        ])
    }
}

/// A keyless signer: an ephemeral key and its certificate.
pub struct Leaf {
    pub key: Key,
    pub pem: PathBuf,
}

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
    pub fn new(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir)?;
        let rekor = Key::new(dir, "rekor")?;
        let fulcio = Ca::new(dir, "fulcio")?;
        let tsa = Tsa::new(dir, "tsa")?;
        let ct = Key::new(dir, "ct")?;
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
            trusted_root,
        })
    }

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
}

fn sha(parts: &[&[u8]]) -> Vec<u8> {
    use sha2::Digest as _;
    let mut h = sha2::Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().to_vec()
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
        let body = serde_json::to_vec(&json!({
            "apiVersion": "0.0.1",
            "kind": "dsse",
            "spec": {
                "payloadHash": {"algorithm": "sha256", "value": Digest::of(&payload).hex()},
                "signatures": [{"signature": sig_b64, "verifier": B64.encode(&cert_pem)}]
            }
        }))?;
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
        let checkpoint = format!("{note}\n\u{2014} rekor.tdg.test {}\n", B64.encode(note_sig));
        let entries = if tlog {
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
