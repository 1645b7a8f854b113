//! The authorities of the test PKI: CAs standing in for Fulcio (and a rogue one), their
//! keyless leaves with embedded SCTs, and timestamp authorities answering through `openssl ts`.

use std::path::{Path, PathBuf};

use anyhow::{ensure, Context, Result};

use tdg::digest::Digest;

use super::{der_of, openssl, sha, Key};

/// A root (P-384, self-signed) and an intermediate (P-384) CA, as Fulcio's chain is.
pub struct Ca {
    pub root: Key,
    pub root_pem: PathBuf,
    pub intermediate: Key,
    pub intermediate_pem: PathBuf,
}

impl Ca {
    pub(super) fn new(dir: &Path, name: &str) -> Result<Self> {
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
    pub(super) fn new(dir: &Path, name: &str) -> Result<Self> {
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

    /// An RFC 3161 `TimeStampResp` (DER) over `data`, as a timestamp authority answers: made by
    /// `openssl ts -reply` (without `-token_out`, which would give the bare token).
    pub fn stamp(&self, data: &[u8]) -> Result<Vec<u8>> {
        self.reply(data, false)
    }

    /// The bare time-stamp token (`-token_out`), which is not what a bundle holds.
    pub fn stamp_token(&self, data: &[u8]) -> Result<Vec<u8>> {
        self.reply(data, true)
    }

    fn reply(&self, data: &[u8], token_only: bool) -> Result<Vec<u8>> {
        let query = self.dir.join("query.tsq");
        let token = self.dir.join("response.tsr");
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
        let mut args = vec![
            "ts",
            "-reply",
            "-config",
            self.config.to_str().context("utf-8")?,
            "-queryfile",
            query.to_str().context("utf-8")?,
            "-out",
            token.to_str().context("utf-8")?,
        ];
        if token_only {
            args.push("-token_out");
        }
        openssl(&args, b"")?;
        Ok(std::fs::read(&token)?)
    }

    pub(super) fn chain_der(&self) -> Result<Vec<Vec<u8>>> {
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
